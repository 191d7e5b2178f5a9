//! The innermost loop of the matrix product: one `MR`×`NR` tile of C from a strip of A and
//! a packed panel of B, in AVX2/FMA where the CPU has it and in portable code otherwise.
//!
//! Why our own: the `gemm` crate reaches ~55 GFLOP/s on one core of the development machine
//! (FMA peak ~97) for the convolution shapes (m = positions, n = channels ≤ 128,
//! k = 9·cin ≤ 1152); this tile keeps 6×16 sums of C in 12 registers and reaches 80-90.

/// Rows of C per tile (broadcasts of A).
pub(crate) const MR: usize = 6;
/// Columns of C per tile (two 8-lane vectors of B).
pub(crate) const NR: usize = 16;

/// One tile: C[rows, cols] (+)= A[rows, kc] · B[kc, NR].
///
/// `rows_a` points at each of the `MR` rows of A at the block's first column (rows past
/// `rows` repeat a valid row; their sums are discarded); consecutive columns of A are
/// `a_step` floats apart, and after every `seg_len` columns the next one is `seg_skip`
/// floats further (a row of A that is a window of an image: k contiguous pixels of each
/// of k image rows). `b` is `kc` packed rows of `NR` floats. `c` is the tile's first
/// element, rows `ldc` apart.
pub(crate) struct Tile {
    pub kc: usize,
    pub rows_a: [*const f32; MR],
    pub a_step: usize,
    pub seg_len: usize,
    pub seg_skip: usize,
    pub b: *const f32,
    pub c: *mut f32,
    pub ldc: usize,
    pub rows: usize,
    pub cols: usize,
    pub accumulate: bool,
}

/// Whether this CPU has AVX2 and FMA, decided once.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2() -> bool {
    static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX2.get_or_init(|| {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    })
}

/// Defines method `$name`, which runs the `#[inline(always)]` method `$body` (same
/// arguments) compiled for AVX2 when the CPU has it, through a `#[target_feature]` copy
/// named `$avx2`, and as portable code otherwise: loops over fixed 8-lane arrays become
/// single instructions. (A helper taking a closure would not do: a closure is compiled
/// without its caller's target features.) The copy adds no fused multiply-adds, so both
/// give the same results.
macro_rules! with_avx2 {
    ($(#[$meta:meta])* fn $name:ident / $avx2:ident => $body:ident(&self $(, $arg:ident: $ty:ty)* $(,)?)) => {
        $crate::engine::kernel::with_avx2!(@define [&self] self $(#[$meta])* $name $avx2 $body $($arg: $ty),*);
    };
    ($(#[$meta:meta])* fn $name:ident / $avx2:ident => $body:ident(&mut self $(, $arg:ident: $ty:ty)* $(,)?)) => {
        $crate::engine::kernel::with_avx2!(@define [&mut self] self $(#[$meta])* $name $avx2 $body $($arg: $ty),*);
    };
    // The receiver and `self` are passed on from the arm above so that they share its
    // hygiene (a `self` written here would not be the method's).
    (@define [$($receiver:tt)*] $this:tt $(#[$meta:meta])* $name:ident $avx2:ident $body:ident $($arg:ident: $ty:ty),*) => {
        $(#[$meta])*
        fn $name($($receiver)* $(, $arg: $ty)*) {
            #[cfg(target_arch = "x86_64")]
            if $crate::engine::kernel::has_avx2() {
                // SAFETY: the CPU has AVX2.
                unsafe { $this.$avx2($($arg),*) };
                return;
            }
            $this.$body($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn $avx2($($receiver)* $(, $arg: $ty)*) {
            $this.$body($($arg),*)
        }
    };
}
pub(crate) use with_avx2;

/// Which tile code this CPU runs.
///
/// # Safety
/// The pointers in `tile` must be valid for the reads and writes its fields describe:
/// `rows_a[r]` for `kc` columns (`a_step` apart, `seg_skip` more after every `seg_len`),
/// `b` for `kc * NR` floats, `c` for `rows` rows of `cols` floats, `ldc` apart.
pub(crate) unsafe fn run(tile: &Tile) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            // SAFETY: the CPU has AVX2 and FMA; the pointers are valid per this function's
            // contract.
            unsafe { avx2::tile(tile) };
            return;
        }
    }
    // SAFETY: the pointers are valid per this function's contract.
    unsafe { portable(tile) }
}

/// The same tile in plain Rust (the compiler vectorises the 16-wide rows).
///
/// # Safety
/// The pointers in `tile` must be valid for the reads and writes its fields describe.
pub(crate) unsafe fn portable(t: &Tile) {
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

/// Writes (or adds) the valid part of a finished tile.
unsafe fn store(t: &Tile, acc: &[[f32; NR]; MR]) {
    for (r, row) in acc.iter().enumerate().take(t.rows) {
        let dst = std::slice::from_raw_parts_mut(t.c.add(r * t.ldc), t.cols);
        for (d, v) in dst.iter_mut().zip(row) {
            *d = if t.accumulate { *d + v } else { *v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{store, Tile, MR, NR};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX2 and FMA; the pointers as for [`super::portable`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile(t: &Tile) {
        let [a0, a1, a2, a3, a4, a5] = t.rows_a;
        let z = _mm256_setzero_ps();
        let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21) = (z, z, z, z, z, z);
        let (mut c30, mut c31, mut c40, mut c41, mut c50, mut c51) = (z, z, z, z, z, z);
        let mut off = 0;
        let mut bp = t.b;
        let mut left = t.kc;
        while left > 0 {
            let steps = left.min(t.seg_len);
            for _ in 0..steps {
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                let x = _mm256_broadcast_ss(&*a0.add(off));
                c00 = _mm256_fmadd_ps(x, b0, c00);
                c01 = _mm256_fmadd_ps(x, b1, c01);
                let x = _mm256_broadcast_ss(&*a1.add(off));
                c10 = _mm256_fmadd_ps(x, b0, c10);
                c11 = _mm256_fmadd_ps(x, b1, c11);
                let x = _mm256_broadcast_ss(&*a2.add(off));
                c20 = _mm256_fmadd_ps(x, b0, c20);
                c21 = _mm256_fmadd_ps(x, b1, c21);
                let x = _mm256_broadcast_ss(&*a3.add(off));
                c30 = _mm256_fmadd_ps(x, b0, c30);
                c31 = _mm256_fmadd_ps(x, b1, c31);
                let x = _mm256_broadcast_ss(&*a4.add(off));
                c40 = _mm256_fmadd_ps(x, b0, c40);
                c41 = _mm256_fmadd_ps(x, b1, c41);
                let x = _mm256_broadcast_ss(&*a5.add(off));
                c50 = _mm256_fmadd_ps(x, b0, c50);
                c51 = _mm256_fmadd_ps(x, b1, c51);
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
        if t.cols == NR {
            for (r, [lo, hi]) in sums.iter().enumerate().take(t.rows) {
                let dst = t.c.add(r * t.ldc);
                let (mut lo, mut hi) = (*lo, *hi);
                if t.accumulate {
                    lo = _mm256_add_ps(lo, _mm256_loadu_ps(dst));
                    hi = _mm256_add_ps(hi, _mm256_loadu_ps(dst.add(8)));
                }
                _mm256_storeu_ps(dst, lo);
                _mm256_storeu_ps(dst.add(8), hi);
            }
        } else {
            let mut acc = [[0.0f32; NR]; MR];
            for (row, [lo, hi]) in acc.iter_mut().zip(&sums) {
                _mm256_storeu_ps(row.as_mut_ptr(), *lo);
                _mm256_storeu_ps(row.as_mut_ptr().add(8), *hi);
            }
            store(t, &acc);
        }
    }
}
