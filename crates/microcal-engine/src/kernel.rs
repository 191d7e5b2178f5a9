//! The innermost loop of the matrix product: one `MR`×`NR` tile of C from a strip of A and
//! a packed panel of B, on the process's [`SimdPath`]: AVX-512F, AVX2/FMA, or portable code.
//!
//! Why our own: the `gemm` crate reaches ~55 GFLOP/s on one core of the development machine
//! (FMA peak ~97) for the convolution shapes (m = positions, n = channels ≤ 128,
//! k = 9·cin ≤ 1152); this tile keeps 6×16 sums of C in 12 registers and reaches 80-90.
//! The AVX-512 tile takes two panels at once, 6×32 sums in 12 registers (one panel's 6×16
//! in 6 registers gave the two FMA units of a Sapphire Rapids core too few independent
//! chains: 39-51% of the AVX-512 peak on conv2-4, against 57-65% on conv2-3 with two), and
//! runs the same fused multiply-adds in the same order, so it gives the AVX2 tile's bits.

use crate::simd::{active, SimdPath};

/// Rows of C per tile (broadcasts of A).
pub(crate) const MR: usize = 6;
/// Columns of C per tile (two 8-lane vectors of B).
pub(crate) const NR: usize = 16;

/// One tile: C[rows, cols] (+)= A[rows, kc] · B[kc, panels·NR].
///
/// `rows_a` points at each of the `MR` rows of A at the block's first column (rows past
/// `rows` repeat a valid row; their sums are discarded); consecutive columns of A are
/// `a_step` floats apart, and after every `seg_len` columns the next one is `seg_skip`
/// floats further (a row of A that is a window of an image: k contiguous pixels of each
/// of k image rows). `b` is `panels` packed panels of `kc` rows of `NR` floats, each
/// `panel_stride` floats after the one before. `c` is the tile's first element, rows
/// `ldc` apart; `cols` counts the columns of all its panels.
#[derive(Clone, Copy)]
pub(crate) struct Tile {
    pub kc: usize,
    pub rows_a: [*const f32; MR],
    pub a_step: usize,
    pub seg_len: usize,
    pub seg_skip: usize,
    pub b: *const f32,
    pub panels: usize,
    pub panel_stride: usize,
    pub c: *mut f32,
    pub ldc: usize,
    pub rows: usize,
    pub cols: usize,
    pub accumulate: bool,
}

/// Defines method `$name`, which runs the `#[inline(always)]` method `$body` (same
/// arguments) compiled for the process's path: through a `#[target_feature]` copy named
/// `$avx512` (AVX-512F) or `$avx2` (AVX2) where the path has it, as portable code
/// otherwise. Loops over fixed-size lane arrays become single instructions. (A helper
/// taking a closure would not do: a closure is compiled without its caller's target
/// features.) The copies add no fused multiply-adds and Rust never reorders floating-point
/// sums, so every copy gives the same results.
///
/// `$body::<lanes>` instead of `$body` makes the body generic over its vector width:
/// it is called with 16 lanes (one 512-bit vector of `f32`) on `avx512` and 8 elsewhere.
/// Only for bodies whose lanes are independent (no sum across lanes), so that the width
/// cannot change a result.
macro_rules! with_simd {
    ($(#[$meta:meta])* $vis:vis fn $name:ident / $avx2:ident / $avx512:ident => $body:ident $(::<$lanes:ident>)? (&self $(, $arg:ident: $ty:ty)* $(,)?)) => {
        $crate::kernel::with_simd!(@define [&self] self $(#[$meta])* [$vis] $name $avx2 $avx512 $body [$($lanes 8 16)?] $($arg: $ty),*);
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident / $avx2:ident / $avx512:ident => $body:ident $(::<$lanes:ident>)? (&mut self $(, $arg:ident: $ty:ty)* $(,)?)) => {
        $crate::kernel::with_simd!(@define [&mut self] self $(#[$meta])* [$vis] $name $avx2 $avx512 $body [$($lanes 8 16)?] $($arg: $ty),*);
    };
    // The receiver and `self` are passed on from the arms above so that they share their
    // hygiene (a `self` written here would not be the method's).
    (@define [$($receiver:tt)*] $this:tt $(#[$meta:meta])* [$vis:vis] $name:ident $avx2:ident $avx512:ident $body:ident [$($lanes:ident $narrow:literal $wide:literal)?] $($arg:ident: $ty:ty),*) => {
        $(#[$meta])*
        $vis fn $name($($receiver)* $(, $arg: $ty)*) {
            #[cfg(target_arch = "x86_64")]
            match $crate::simd::active() {
                $crate::simd::SimdPath::Avx512 => {
                    // SAFETY: the active path is one the CPU supports: it has AVX-512F.
                    unsafe { $this.$avx512($($arg),*) };
                    return;
                }
                $crate::simd::SimdPath::Avx2 => {
                    // SAFETY: the active path is one the CPU supports: it has AVX2.
                    unsafe { $this.$avx2($($arg),*) };
                    return;
                }
                $crate::simd::SimdPath::Portable => {}
            }
            $this.$body$(::<$narrow>)?($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn $avx2($($receiver)* $(, $arg: $ty)*) {
            $this.$body$(::<$narrow>)?($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx2")]
        fn $avx512($($receiver)* $(, $arg: $ty)*) {
            $this.$body$(::<$wide>)?($($arg),*)
        }
    };
}
pub(crate) use with_simd;

/// How many packed panels of B a tile should take on the process's path: two on
/// `avx512` (6×32 sums in 12 registers, enough independent chains to keep both FMA units
/// busy), one elsewhere.
pub(crate) fn panels_per_tile() -> usize {
    if active() == SimdPath::Avx512 {
        2
    } else {
        1
    }
}

/// Which tile code this CPU runs.
///
/// # Safety
/// The pointers in `tile` must be valid for the reads and writes its fields describe:
/// `rows_a[r]` for `kc` columns (`a_step` apart, `seg_skip` more after every `seg_len`),
/// `b` for `panels` panels of `kc * NR` floats, `panel_stride` apart, `c` for `rows` rows
/// of `cols` floats, `ldc` apart.
pub(crate) unsafe fn run(tile: &Tile) {
    // SAFETY: the pointers are valid per this function's contract, and the active path is
    // one this CPU supports (`simd` only selects supported paths).
    unsafe { run_on(active(), tile) }
}

/// [`run`] on a given path.
///
/// # Safety
/// As for [`run`]; and the CPU must support `path`.
pub(crate) unsafe fn run_on(path: SimdPath, tile: &Tile) {
    #[cfg(target_arch = "x86_64")]
    if path == SimdPath::Avx512 && tile.panels == 2 {
        // SAFETY: the CPU has AVX-512F, AVX2 and FMA (the caller's contract); the pointers
        // are valid per this function's contract, for both panels.
        return unsafe { avx512::double_tile(tile) };
    }
    for panel in 0..tile.panels {
        // SAFETY: panel < panels, so this panel of B lies inside the tile's (per the
        // contract), and its first column of C is inside the tile's columns unless the
        // panel has none (then the offset is `cols`, one past the end, and `cols` below is
        // 0, so nothing is written).
        let (b, c) = unsafe {
            (
                tile.b.add(panel * tile.panel_stride),
                tile.c.add((panel * NR).min(tile.cols)),
            )
        };
        let single = Tile {
            b,
            c,
            panels: 1,
            cols: tile.cols.saturating_sub(panel * NR).min(NR),
            ..*tile
        };
        // SAFETY: as above; the single panel's pointers are inside the tile's.
        unsafe { run_single(path, &single) };
    }
}

/// One panel's tile on `path`.
///
/// # Safety
/// As for [`run_on`], with `tile.panels == 1`.
unsafe fn run_single(path: SimdPath, tile: &Tile) {
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512F, AVX2 and FMA (the caller's contract); the pointers
        // are valid per this function's contract.
        SimdPath::Avx512 => unsafe { avx512::tile(tile) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and FMA; the pointers are valid per the contract.
        SimdPath::Avx2 => unsafe { avx2::tile(tile) },
        // SAFETY: the pointers are valid per this function's contract.
        _ => unsafe { portable_panel(tile) },
    }
}

/// The tile in plain Rust, whatever the process's path (tests compare the others with it).
///
/// # Safety
/// As for [`run`].
#[cfg(test)]
pub(crate) unsafe fn portable(tile: &Tile) {
    // SAFETY: as for this function; every CPU runs the portable path.
    unsafe { run_on(SimdPath::Portable, tile) }
}

/// One panel's tile in plain Rust (the compiler vectorises the 16-wide rows).
///
/// # Safety
/// The pointers in `tile` must be valid for the reads and writes its fields describe, with
/// `tile.panels == 1`.
unsafe fn portable_panel(t: &Tile) {
    let mut acc = [[0.0f32; NR]; MR];
    let mut off = 0;
    for p in 0..t.kc {
        if p > 0 && p % t.seg_len == 0 {
            off += t.seg_skip;
        }
        let b = std::slice::from_raw_parts(t.b.add(p * NR), NR);
        for (row, a) in acc.iter_mut().zip(&t.rows_a) {
            let x = *a.add(off);
            for (s, bv) in row.iter_mut().zip(b) {
                *s += x * bv;
            }
        }
        off += t.a_step;
    }
    store(t, &acc);
}

/// Writes (or adds) the valid part of a finished tile (`W` columns of sums a row).
unsafe fn store<const W: usize>(t: &Tile, acc: &[[f32; W]; MR]) {
    for (r, row) in acc.iter().enumerate().take(t.rows) {
        let dst = std::slice::from_raw_parts_mut(t.c.add(r * t.ldc), t.cols);
        for (d, v) in dst.iter_mut().zip(row) {
            *d = if t.accumulate { *d + v } else { *v };
        }
    }
}

/// The body of a tile whose rows of C are two vectors of `$lanes` lanes (`$bits`-bit
/// intrinsics), the second `$second` floats after the first in each packed row of B:
/// AVX2's 6×16 (both halves of one panel) and AVX-512's 6×32 (one vector of each of two
/// panels). 12 sums in registers, each one fused multiply-add a step, in order of k.
///
/// # Safety
/// Expands to code that must run in a function compiled with the intrinsics' features,
/// inside an `unsafe` block, with `$t`'s pointers valid as [`run`] requires.
#[cfg(target_arch = "x86_64")]
macro_rules! two_vector_tile {
    ($t:expr, $lanes:expr, $second:expr, 256) => {
        $crate::kernel::two_vector_tile!(@body $t, $lanes, $second,
            _mm256_setzero_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_fmadd_ps,
            _mm256_add_ps, _mm256_storeu_ps)
    };
    ($t:expr, $lanes:expr, $second:expr, 512) => {
        $crate::kernel::two_vector_tile!(@body $t, $lanes, $second,
            _mm512_setzero_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_fmadd_ps,
            _mm512_add_ps, _mm512_storeu_ps)
    };
    (@body $t:expr, $lanes:expr, $second:expr, $zero:ident, $load:ident, $set1:ident,
        $fma:ident, $add:ident, $store:ident) => {{
        let t: &Tile = $t;
        let second: usize = $second;
        let [a0, a1, a2, a3, a4, a5] = t.rows_a;
        let z = $zero();
        let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21) = (z, z, z, z, z, z);
        let (mut c30, mut c31, mut c40, mut c41, mut c50, mut c51) = (z, z, z, z, z, z);
        let mut off = 0;
        let mut bp = t.b;
        let mut left = t.kc;
        while left > 0 {
            let steps = left.min(t.seg_len);
            for _ in 0..steps {
                let b0 = $load(bp);
                let b1 = $load(bp.add(second));
                let x = $set1(*a0.add(off));
                c00 = $fma(x, b0, c00);
                c01 = $fma(x, b1, c01);
                let x = $set1(*a1.add(off));
                c10 = $fma(x, b0, c10);
                c11 = $fma(x, b1, c11);
                let x = $set1(*a2.add(off));
                c20 = $fma(x, b0, c20);
                c21 = $fma(x, b1, c21);
                let x = $set1(*a3.add(off));
                c30 = $fma(x, b0, c30);
                c31 = $fma(x, b1, c31);
                let x = $set1(*a4.add(off));
                c40 = $fma(x, b0, c40);
                c41 = $fma(x, b1, c41);
                let x = $set1(*a5.add(off));
                c50 = $fma(x, b0, c50);
                c51 = $fma(x, b1, c51);
                off += t.a_step;
                bp = bp.add(NR);
            }
            off += t.seg_skip;
            left -= steps;
        }
        let sums = [
            [c00, c01],
            [c10, c11],
            [c20, c21],
            [c30, c31],
            [c40, c41],
            [c50, c51],
        ];
        if t.cols == 2 * $lanes {
            for (r, [lo, hi]) in sums.iter().enumerate().take(t.rows) {
                let dst = t.c.add(r * t.ldc);
                let (mut lo, mut hi) = (*lo, *hi);
                if t.accumulate {
                    lo = $add(lo, $load(dst));
                    hi = $add(hi, $load(dst.add($lanes)));
                }
                $store(dst, lo);
                $store(dst.add($lanes), hi);
            }
        } else {
            let mut acc = [[0.0f32; 2 * $lanes]; MR];
            for (row, [lo, hi]) in acc.iter_mut().zip(&sums) {
                $store(row.as_mut_ptr(), *lo);
                $store(row.as_mut_ptr().add($lanes), *hi);
            }
            store(t, &acc);
        }
    }};
}
#[cfg(target_arch = "x86_64")]
pub(crate) use two_vector_tile;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{store, Tile, MR, NR};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX2 and FMA; the pointers as for [`super::portable_panel`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile(t: &Tile) {
        // SAFETY: the caller's contract; a row of C is the panel's two 8-lane halves.
        unsafe { super::two_vector_tile!(t, 8, 8, 256) }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{store, Tile, MR, NR};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX-512F, AVX2 and FMA; the pointers as for [`super::portable_panel`].
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn tile(t: &Tile) {
        let [a0, a1, a2, a3, a4, a5] = t.rows_a;
        let z = _mm512_setzero_ps();
        let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5) = (z, z, z, z, z, z);
        let mut off = 0;
        let mut bp = t.b;
        let mut left = t.kc;
        while left > 0 {
            let steps = left.min(t.seg_len);
            for _ in 0..steps {
                let b = _mm512_loadu_ps(bp);
                c0 = _mm512_fmadd_ps(_mm512_set1_ps(*a0.add(off)), b, c0);
                c1 = _mm512_fmadd_ps(_mm512_set1_ps(*a1.add(off)), b, c1);
                c2 = _mm512_fmadd_ps(_mm512_set1_ps(*a2.add(off)), b, c2);
                c3 = _mm512_fmadd_ps(_mm512_set1_ps(*a3.add(off)), b, c3);
                c4 = _mm512_fmadd_ps(_mm512_set1_ps(*a4.add(off)), b, c4);
                c5 = _mm512_fmadd_ps(_mm512_set1_ps(*a5.add(off)), b, c5);
                off += t.a_step;
                bp = bp.add(NR);
            }
            off += t.seg_skip;
            left -= steps;
        }
        let sums = [c0, c1, c2, c3, c4, c5];
        if t.cols == NR {
            for (r, sum) in sums.iter().enumerate().take(t.rows) {
                let dst = t.c.add(r * t.ldc);
                let mut v = *sum;
                if t.accumulate {
                    v = _mm512_add_ps(v, _mm512_loadu_ps(dst));
                }
                _mm512_storeu_ps(dst, v);
            }
        } else {
            let mut acc = [[0.0f32; NR]; MR];
            for (row, sum) in acc.iter_mut().zip(&sums) {
                _mm512_storeu_ps(row.as_mut_ptr(), *sum);
            }
            store(t, &acc);
        }
    }

    /// Two panels at once: 6×32 sums in 12 registers. Each sum is the same chain of fused
    /// multiply-adds, in the same order, as in [`tile`] (and the AVX2 tile), so the bits
    /// are the same; the wider tile only gives the FMA units twice the independent chains.
    ///
    /// # Safety
    /// As for [`tile`], with `t.panels == 2`.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn double_tile(t: &Tile) {
        // SAFETY: the caller's contract; a row of C is one 16-lane vector from each panel.
        unsafe { super::two_vector_tile!(t, 16, t.panel_stride, 512) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Every path this CPU has against the portable tile, with one panel of B and with
    /// two (AVX-512's double tile); AVX-512 against AVX2 bit for bit.
    #[test]
    fn every_available_path_matches_the_portable_tile() {
        let mut rng = Rng::new(3);
        for (kc, rows, cols, accumulate) in [
            (1, 6, 16, false),
            (37, 5, 9, true),
            (384, 6, 16, true),
            (1, 6, 32, false),
            (37, 5, 25, true),
            (384, 6, 32, true),
            (200, 2, 17, false),
        ] {
            let panels = usize::div_ceil(cols, NR);
            let panel_stride = kc * NR + 5;
            let a: Vec<Vec<f32>> = (0..MR)
                .map(|_| (0..kc).map(|_| rng.normal() as f32).collect())
                .collect();
            let b: Vec<f32> = (0..panels * panel_stride)
                .map(|_| rng.normal() as f32)
                .collect();
            let c0: Vec<f32> = (0..MR * 2 * NR).map(|_| rng.normal() as f32).collect();
            let result = |path: SimdPath| {
                let mut c = c0.clone();
                let tile = Tile {
                    kc,
                    rows_a: std::array::from_fn(|r| a[r].as_ptr()),
                    a_step: 1,
                    seg_len: usize::MAX,
                    seg_skip: 0,
                    b: b.as_ptr(),
                    panels,
                    panel_stride,
                    c: c.as_mut_ptr(),
                    ldc: 2 * NR,
                    rows,
                    cols,
                    accumulate,
                };
                // SAFETY: each row of `a` holds kc floats, `b` `panels` panels of kc·NR
                // floats `panel_stride` apart, `c` MR rows of 2·NR; the path is one this CPU
                // supports (from `available`).
                unsafe { run_on(path, &tile) };
                c
            };
            let portable = result(SimdPath::Portable);
            for path in SimdPath::available() {
                let c = result(path);
                for (i, (x, y)) in c.iter().zip(&portable).enumerate() {
                    let scale = 1.0 + (kc as f32).sqrt();
                    assert!(
                        (x - y).abs() <= 2e-6 * scale * (1.0 + y.abs()),
                        "{path:?} {i}: {x} vs {y}"
                    );
                }
                if path == SimdPath::Avx512 {
                    assert_eq!(c, result(SimdPath::Avx2), "AVX-512 gives AVX2's bits");
                }
            }
        }
    }
}
