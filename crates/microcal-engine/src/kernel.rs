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
//! A product with one panel (16 columns or fewer: the 16-channel layers, the last dense
//! layer) runs two row tiles at once on AVX-512 instead, 12×16 sums in 12 registers, the
//! second tile's rows addressed from the first's (twelve row pointers were spilled to the
//! stack and made it slower than one tile). On 120×16×16, 120×16×32 and 60×16×64 products
//! the pair ran at 28-37, 41-58 and 52-73 GFLOP/s against one tile's 21-24, 32-45 and
//! 35-47 (three alternated rounds, Xeon with AVX-512, 2026-12-02).

use crate::simd::SimdPath;

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

/// How many packed panels of B a tile should take on `path`: two on `avx512` (6×32 sums
/// in 12 registers, enough independent chains to keep both FMA units busy), one elsewhere.
pub(crate) fn panels_per_tile(path: SimdPath) -> usize {
    if path == SimdPath::Avx512 {
        2
    } else {
        1
    }
}

/// One tile on `path` (callers pass the process's, `simd::active()`; tests pass others).
///
/// # Safety
/// The CPU must support `path`, and the pointers in `tile` must be valid for the reads and
/// writes its fields describe: `rows_a[r]` for `kc` columns (`a_step` apart, `seg_skip`
/// more after every `seg_len`), `b` for `panels` panels of `kc * NR` floats,
/// `panel_stride` apart, `c` for `rows` rows of `cols` floats, `ldc` apart.
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

/// Whether one-panel tiles should run in pairs ([`run_row_pair_on`]) on `path`: on
/// `avx512`.
pub(crate) fn pairs_one_panel_tiles(path: SimdPath) -> bool {
    path == SimdPath::Avx512
}

/// Two one-panel tiles that share B, the second's rows right after the first's: on
/// `avx512` as one 12×16 tile (12 independent chains), elsewhere one after the other.
///
/// # Safety
/// As for [`run_on`], for each tile; both have `panels == 1` and the same `kc`, `a_step`,
/// `seg_len`, `seg_skip` and `b`.
pub(crate) unsafe fn run_row_pair_on(path: SimdPath, first: &Tile, second: &Tile) {
    let shared = |t: &Tile| (t.kc, t.a_step, t.seg_len, t.seg_skip, t.b, t.panels);
    assert!(
        shared(first) == shared(second) && first.panels == 1,
        "a row pair shares one panel of B"
    );
    #[cfg(target_arch = "x86_64")]
    if path == SimdPath::Avx512 {
        // SAFETY: the CPU has AVX-512F, AVX2 and FMA (the caller's contract); the pointers
        // of both tiles are valid per this function's contract, and they share B (above).
        return unsafe { avx512::row_pair_tile(first, second) };
    }
    // SAFETY: as above, one tile at a time.
    unsafe {
        run_on(path, first);
        run_on(path, second);
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
        let b = &*(t.b.add(p * NR) as *const [f32; NR]);
        let x: [f32; MR] = std::array::from_fn(|r| *t.rows_a[r].add(off));
        add_scaled_rows(&mut acc, &x, b);
        off += t.a_step;
    }
    store(t, &acc);
}

/// acc[r] += x[r]·b for every row, lane by lane (a product rounded, then a sum: no fused
/// multiply-add). Fixed-size arrays, so that the loops unroll into vectors: written as
/// slice loops over the rows, LLVM vectorised them in one build and left them scalar in
/// another (2× slower).
#[inline(always)]
fn add_scaled_rows(acc: &mut [[f32; NR]; MR], x: &[f32; MR], b: &[f32; NR]) {
    for r in 0..MR {
        for j in 0..NR {
            acc[r][j] += x[r] * b[j];
        }
    }
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
/// inside an `unsafe` block, with `$t`'s pointers valid as [`run_on`] requires.
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
        // SAFETY: the caller's contract.
        unsafe { store_sums(t, [c0, c1, c2, c3, c4, c5]) }
    }

    /// Two one-panel tiles with the same B, rows of A and C `MR` apart: 12×16 sums in 12
    /// registers, for products with one panel (16 columns or fewer), where [`tile`]'s 6
    /// chains leave the FMA units waiting. Each sum is the same chain as in [`tile`], so
    /// the bits are the same.
    ///
    /// # Safety
    /// As for [`tile`], for each of `t` and `u`, which must agree on `kc`, `a_step`,
    /// `seg_len`, `seg_skip` and `b`.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn row_pair_tile(t: &Tile, u: &Tile) {
        // The second tile's rows, as offsets from the first's: one register for all six
        // (twelve pointers would not fit in the general registers).
        let delta = (u.rows_a[0] as isize - t.rows_a[0] as isize) / 4;
        if (0..MR).any(|r| t.rows_a[r].wrapping_offset(delta) != u.rows_a[r]) {
            // SAFETY: the caller's contract, for each tile.
            unsafe {
                tile(t);
                tile(u);
            }
            return;
        }
        let [mut a0, mut a1, mut a2, mut a3, mut a4, mut a5] = t.rows_a;
        let z = _mm512_setzero_ps();
        let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5) = (z, z, z, z, z, z);
        let (mut c6, mut c7, mut c8, mut c9, mut c10, mut c11) = (z, z, z, z, z, z);
        let mut bp = t.b;
        let mut left = t.kc;
        while left > 0 {
            let steps = left.min(t.seg_len);
            for _ in 0..steps {
                let b = _mm512_loadu_ps(bp);
                c0 = _mm512_fmadd_ps(_mm512_set1_ps(*a0), b, c0);
                c1 = _mm512_fmadd_ps(_mm512_set1_ps(*a1), b, c1);
                c2 = _mm512_fmadd_ps(_mm512_set1_ps(*a2), b, c2);
                c3 = _mm512_fmadd_ps(_mm512_set1_ps(*a3), b, c3);
                c4 = _mm512_fmadd_ps(_mm512_set1_ps(*a4), b, c4);
                c5 = _mm512_fmadd_ps(_mm512_set1_ps(*a5), b, c5);
                c6 = _mm512_fmadd_ps(_mm512_set1_ps(*a0.offset(delta)), b, c6);
                c7 = _mm512_fmadd_ps(_mm512_set1_ps(*a1.offset(delta)), b, c7);
                c8 = _mm512_fmadd_ps(_mm512_set1_ps(*a2.offset(delta)), b, c8);
                c9 = _mm512_fmadd_ps(_mm512_set1_ps(*a3.offset(delta)), b, c9);
                c10 = _mm512_fmadd_ps(_mm512_set1_ps(*a4.offset(delta)), b, c10);
                c11 = _mm512_fmadd_ps(_mm512_set1_ps(*a5.offset(delta)), b, c11);
                bp = bp.add(NR);
                a0 = a0.wrapping_add(t.a_step);
                a1 = a1.wrapping_add(t.a_step);
                a2 = a2.wrapping_add(t.a_step);
                a3 = a3.wrapping_add(t.a_step);
                a4 = a4.wrapping_add(t.a_step);
                a5 = a5.wrapping_add(t.a_step);
            }
            a0 = a0.wrapping_add(t.seg_skip);
            a1 = a1.wrapping_add(t.seg_skip);
            a2 = a2.wrapping_add(t.seg_skip);
            a3 = a3.wrapping_add(t.seg_skip);
            a4 = a4.wrapping_add(t.seg_skip);
            a5 = a5.wrapping_add(t.seg_skip);
            left -= steps;
        }
        // SAFETY: the caller's contract, for each tile.
        unsafe {
            store_sums(t, [c0, c1, c2, c3, c4, c5]);
            store_sums(u, [c6, c7, c8, c9, c10, c11]);
        }
    }

    /// Writes (or adds) a one-panel tile's sums to its part of C.
    ///
    /// # Safety
    /// `t.c` as for [`tile`].
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn store_sums(t: &Tile, sums: [__m512; MR]) {
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

    /// Two one-panel tiles run as a pair (AVX-512's 12×16 tile), on every path this CPU
    /// has, give the bits of the two tiles run one after the other on the same path, and
    /// AVX-512's pair gives AVX2's bits; full and partial, with window segments. The rows
    /// of A are one buffer's, evenly spaced (the 12-row loop), or with the second tile's
    /// in another order (the pair falls back to two tiles).
    #[test]
    fn row_pairs_give_the_bits_of_their_two_tiles() {
        let mut rng = Rng::new(5);
        for (kc, second_rows, cols, accumulate, seg_len, even) in [
            (1, 6, 16, false, usize::MAX, true),
            (16, 6, 16, true, usize::MAX, true),
            (37, 3, 9, true, 5, true),
            (384, 1, 16, false, usize::MAX, true),
            (16, 6, 16, true, usize::MAX, false),
        ] {
            let (a_step, seg_skip) = (2, 3);
            let len = kc * a_step + (kc / seg_len.min(kc)) * seg_skip + 1;
            let a: Vec<f32> = (0..2 * MR * len).map(|_| rng.normal() as f32).collect();
            let row = |half: usize, r: usize| {
                let r = if even || half == 0 { r } else { MR - 1 - r };
                a[(half * MR + r) * len..].as_ptr()
            };
            let b: Vec<f32> = (0..kc * NR).map(|_| rng.normal() as f32).collect();
            let c0: Vec<f32> = (0..2 * MR * NR).map(|_| rng.normal() as f32).collect();
            let result = |path: SimdPath, paired: bool| {
                let mut c = c0.clone();
                let tile = |half: usize, c: &mut [f32]| Tile {
                    kc,
                    rows_a: std::array::from_fn(|r| row(half, r)),
                    a_step,
                    seg_len,
                    seg_skip,
                    b: b.as_ptr(),
                    panels: 1,
                    panel_stride: kc * NR,
                    c: c[half * MR * NR..].as_mut_ptr(),
                    ldc: NR,
                    rows: if half == 0 { MR } else { second_rows },
                    cols,
                    accumulate,
                };
                let (first, second) = (tile(0, &mut c), tile(1, &mut c));
                // SAFETY: each row of `a` holds every column the tiles read (kc steps of
                // a_step, seg_skip after each segment), `b` one panel of kc·NR floats, `c`
                // 2·MR rows of NR; the path is one this CPU supports (from `available`).
                unsafe {
                    if paired {
                        run_row_pair_on(path, &first, &second);
                    } else {
                        run_on(path, &first);
                        run_on(path, &second);
                    }
                }
                c
            };
            for path in SimdPath::available() {
                let paired = result(path, true);
                assert_eq!(paired, result(path, false), "{path:?} kc={kc}");
                if path == SimdPath::Avx512 {
                    assert_eq!(
                        paired,
                        result(SimdPath::Avx2, true),
                        "AVX-512 gives AVX2's bits"
                    );
                }
            }
        }
    }
}
