//! The innermost loop of the matrix product: one `MR`×`NR` tile of C from a strip of A and
//! a packed panel of B, on the process's [`SimdPath`]: AVX-512F, AVX2/FMA, or portable code.
//!
//! Why our own: the `gemm` crate reaches ~55 GFLOP/s on one core of the development machine
//! (FMA peak ~97) for the convolution shapes (m = positions, n = channels ≤ 128,
//! k = 9·cin ≤ 1152); this tile keeps 6×16 sums of C in 12 registers and reaches 80-90.
//!
//! AVX-512 has 32 vector registers and, on a Sapphire Rapids core, two 512-bit FMA units,
//! which need many independent chains; its tiles are wider and run the same fused
//! multiply-adds in the same order as the AVX2 tile, so they give its bits:
//! - four panels at once, 6×64 sums in 24 registers, each broadcast of A used for four
//!   vectors of B (then two panels, 6×32, then one, for the rest of B);
//! - three rows instead of six where a tile has no more left (the last of 9 or 21 rows);
//! - with one or two panels (32 columns or fewer), two row tiles at once, 12×16 or 12×32
//!   sums, the second tile's rows addressed from the first's (twelve row pointers were
//!   spilled to the stack and made it slower than one tile);
//! - a product whose rows of A are evenly spaced (all but the windowed ones) walks all its
//!   row tiles, or row pairs, in one call (`run_rows_on`): built and dispatched one call
//!   per tile, setting a tile up took about as long as the smallest tiles spent
//!   multiplying (the driver had 5% of a `bench cnn` profile's samples, and 6.6% of a
//!   `cnn_modern` one's). `microcal bench matmul` alternated with the tree before on the
//!   AMD EPYC Zen 5, three rounds (2026-12-04 00:59 UTC): Winograd's point products of
//!   conv2/3/4 at 76-82%, 89-91% and 87-95% of the peak against 71-79%, 83-89% and 84-92%.
//!
//! Measured on the Intel Xeon with AVX-512 (2 cores, shared host), `microcal bench matmul`
//! alternated with the tree before, 2026-12-03 11:30-11:50 UTC, six rounds (the first four
//! before the three-row tiles and the 12×32 pairs): Winograd's point products of conv2/3/4
//! (30×32 by 32×64, 21×64 by 64×128, 9×128 by 128×128) at 63-86, 67-94 and 67-87 GFLOP/s
//! against 54-71, 54-69 and 45-61 with 6×32 tiles (peak 116-135 but in one run).
//! Earlier: 6×32 against one panel's 6×16, conv2-4 57-65% of the peak against 39-51%;
//! 12×16 pairs against single 6×16 tiles on 120×16×16, 120×16×32 and 60×16×64
//! products, 28-37, 41-58 and 52-73 GFLOP/s against 21-24, 32-45 and 35-47
//! (2026-12-02).

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

/// One tile on `path` (callers pass the process's, `simd::active()`; tests pass others).
///
/// # Safety
/// The CPU must support `path`, and the pointers in `tile` must be valid for the reads and
/// writes its fields describe: `rows_a[r]` for `kc` columns (`a_step` apart, `seg_skip`
/// more after every `seg_len`), `b` for `panels` panels of `kc * NR` floats,
/// `panel_stride` apart, `c` for `rows` rows of `cols` floats, `ldc` apart.
pub(crate) unsafe fn run_on(path: SimdPath, tile: &Tile) {
    for part in tile.panel_groups(path) {
        #[cfg(target_arch = "x86_64")]
        if path == SimdPath::Avx512 {
            // SAFETY: the CPU has AVX-512F, AVX2 and FMA (the caller's contract); the
            // part's pointers lie inside the tile's (`panel_groups`).
            unsafe { avx512::group_tile(&part) };
            continue;
        }
        // SAFETY: as above; off `avx512` a part is a single panel.
        unsafe { run_single(path, &part) };
    }
}

impl Tile {
    /// The tile's panels in the groups that `path` computes at once, left to right: the
    /// widest tile the path has that fits in the panels left, on `avx512` four panels
    /// (6×64 sums in 24 of its 32 registers) or two, elsewhere one (6×16 sums in 12 of
    /// AVX2's 16). Each group's B and C lie inside the tile's (its first column of C is
    /// one past the tile's last only where the group has no columns, and writes nothing).
    fn panel_groups(&self, path: SimdPath) -> PanelGroups {
        PanelGroups {
            tile: *self,
            path,
            panel: 0,
        }
    }
}

/// The iterator of [`Tile::panel_groups`] (a struct: as a closure capturing the tile,
/// rustc 1.95 stopped with an internal error).
struct PanelGroups {
    tile: Tile,
    path: SimdPath,
    panel: usize,
}

impl Iterator for PanelGroups {
    type Item = Tile;

    fn next(&mut self) -> Option<Tile> {
        let (tile, panel) = (&self.tile, self.panel);
        let left = tile.panels.checked_sub(panel).filter(|left| *left > 0)?;
        let take = match self.path {
            _ if !cfg!(target_arch = "x86_64") => 1,
            SimdPath::Avx512 if left >= 4 => 4,
            SimdPath::Avx512 if left >= 2 => 2,
            _ => 1,
        };
        self.panel += take;
        Some(Tile {
            b: tile.b.wrapping_add(panel * tile.panel_stride),
            c: tile.c.wrapping_add((panel * NR).min(tile.cols)),
            panels: take,
            cols: tile.cols.saturating_sub(panel * NR).min(take * NR),
            ..*tile
        })
    }
}

/// All row tiles of a product whose rows of A are `row_stride` floats apart, as
/// [`run_on`] runs each one (on `avx512`, with one or two panels, two at a time as
/// [`run_row_pair_on`] runs them): `first` is the tile of rows 0..MR (its `rows_a` from
/// row 0, its `c` at C's first row, its `rows` at most MR), and the product has `m` rows.
/// On `avx512` one call walks every row tile of each group of panels, where a call per
/// tile spent as long setting the tile up as the smallest tiles spent multiplying.
///
/// # Safety
/// As for [`run_on`], for the tile of every `MR` rows from row 0 to row `m`, with row i of
/// A at `first.rows_a[0] + i * row_stride` and row i of C at `first.c + i * first.ldc`.
pub(crate) unsafe fn run_rows_on(path: SimdPath, first: &Tile, m: usize, row_stride: usize) {
    #[cfg(target_arch = "x86_64")]
    if path == SimdPath::Avx512 {
        // SAFETY: the CPU has AVX-512F, AVX2 and FMA (the caller's contract); the row
        // tiles' pointers as this function's contract says.
        return unsafe { avx512::wide_rows(first, m, row_stride) };
    }
    for i0 in (0..m).step_by(MR) {
        // SAFETY: the caller's contract, for the tile at row i0.
        unsafe { run_on(path, &first.moved_down(i0, m, row_stride)) };
    }
}

impl Tile {
    /// The tile of rows i0.. of the same product, whose rows of A are `row_stride` apart
    /// and which has `m` rows (rows past the end repeat the last, as in every tile).
    fn moved_down(&self, i0: usize, m: usize, row_stride: usize) -> Tile {
        let rows = MR.min(m - i0);
        let top = self.rows_a[0];
        Tile {
            rows_a: std::array::from_fn(|r| top.wrapping_add((i0 + r.min(rows - 1)) * row_stride)),
            c: self.c.wrapping_add(i0 * self.ldc),
            rows,
            ..*self
        }
    }
}

/// The most panels of B that tiles run in pairs ([`run_row_pair_on`]) may have on
/// `path`: two on `avx512` (12×16 or 12×32 sums), none elsewhere.
pub(crate) fn paired_panels(path: SimdPath) -> usize {
    if path == SimdPath::Avx512 {
        2
    } else {
        0
    }
}

/// Two tiles of one or two panels that share B, the second's rows right after the
/// first's: on `avx512` as one tile of 12 rows (12 or 24 independent chains), elsewhere
/// one after the other.
///
/// # Safety
/// As for [`run_on`], for each tile; both have the same `panels` (1 or 2), `kc`,
/// `a_step`, `seg_len`, `seg_skip`, `b` and `panel_stride`.
pub(crate) unsafe fn run_row_pair_on(path: SimdPath, first: &Tile, second: &Tile) {
    let shared = |t: &Tile| {
        let steps = (t.kc, t.a_step, t.seg_len, t.seg_skip);
        (steps, t.b, t.panels, t.panel_stride)
    };
    assert!(
        shared(first) == shared(second) && (1..=2).contains(&first.panels),
        "a row pair shares one or two panels of B"
    );
    #[cfg(target_arch = "x86_64")]
    if path == SimdPath::Avx512 {
        // SAFETY: the CPU has AVX-512F, AVX2 and FMA (the caller's contract); the pointers
        // of both tiles are valid per this function's contract, and they share B (above).
        return unsafe {
            if first.panels == 1 {
                avx512::row_pair_tile::<1>(first, second)
            } else {
                avx512::row_pair_tile::<2>(first, second)
            }
        };
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
        SimdPath::Avx512 => unsafe { avx512::wide_tile::<MR, 1>(tile) },
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

/// `acc[r] += x[r]·b` for every row, lane by lane (a product rounded, then a sum: no fused
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

/// Writes (or adds) the valid part of a finished tile (rows of at least `cols` sums).
unsafe fn store<R: AsRef<[f32]>>(t: &Tile, acc: &[R]) {
    for (r, row) in acc.iter().map(AsRef::as_ref).enumerate().take(t.rows) {
        let dst = std::slice::from_raw_parts_mut(t.c.add(r * t.ldc), t.cols);
        for (d, v) in dst.iter_mut().zip(row) {
            *d = if t.accumulate { *d + v } else { *v };
        }
    }
}

/// The loop of a tile: for each of `t.kc` steps of A (`a_step` apart, `seg_skip` more after
/// every `seg_len`), loads B's vectors at `bp` with the given expression, broadcasts each
/// row's element of A and adds its products to that row of `sums`, one fused multiply-add
/// per sum and step, in order of k (the order every path keeps).
///
/// # Safety
/// Expands to code that must run in a function compiled with the intrinsics' features,
/// with `t`'s pointers valid as [`run_on`] requires.
#[cfg(target_arch = "x86_64")]
macro_rules! accumulate {
    ($t:expr, $sums:ident, |$bp:ident| $load_b:expr, $set1:ident, $fma:ident) => {{
        let t: &Tile = $t;
        let mut off = 0;
        let mut $bp = t.b;
        let mut left = t.kc;
        while left > 0 {
            let steps = left.min(t.seg_len);
            for _ in 0..steps {
                let b = $load_b;
                for (row, a) in $sums.iter_mut().zip(t.rows_a) {
                    let x = $set1(*a.add(off));
                    for (sum, b) in row.iter_mut().zip(b) {
                        *sum = $fma(x, b, *sum);
                    }
                }
                off += t.a_step;
                $bp = $bp.add(NR);
            }
            off += t.seg_skip;
            left -= steps;
        }
    }};
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{store, Tile, MR, NR};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX2 and FMA; the pointers as for [`super::portable_panel`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile(t: &Tile) {
        // A row of C is the panel's two 8-lane halves: 12 sums in registers, each one
        // fused multiply-add a step, in order of k.
        let z = _mm256_setzero_ps();
        let mut sums = [[z; 2]; MR];
        accumulate!(
            t,
            sums,
            |bp| [_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8))],
            _mm256_set1_ps,
            _mm256_fmadd_ps
        );
        // SAFETY: the caller's contract.
        unsafe { store_halves(t, sums) }
    }

    /// Writes (or adds) a tile's sums to its part of C; by value, as the AVX-512 tiles'.
    ///
    /// # Safety
    /// `t.c` as for [`tile`].
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store_halves(t: &Tile, sums: [[__m256; 2]; MR]) {
        if t.cols == NR {
            for (r, [lo, hi]) in sums.into_iter().enumerate().take(t.rows) {
                let dst = t.c.add(r * t.ldc);
                let (mut lo, mut hi) = (lo, hi);
                if t.accumulate {
                    lo = _mm256_add_ps(lo, _mm256_loadu_ps(dst));
                    hi = _mm256_add_ps(hi, _mm256_loadu_ps(dst.add(8)));
                }
                _mm256_storeu_ps(dst, lo);
                _mm256_storeu_ps(dst.add(8), hi);
            }
        } else {
            let mut acc = [[0.0f32; NR]; MR];
            for (row, [lo, hi]) in acc.iter_mut().zip(sums) {
                _mm256_storeu_ps(row.as_mut_ptr(), lo);
                _mm256_storeu_ps(row.as_mut_ptr().add(8), hi);
            }
            store(t, &acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{store, SimdPath, Tile, MR, NR};
    use std::arch::x86_64::*;

    /// Two tiles of `P` panels (1 or 2) with the same B, rows of A and C `MR` apart:
    /// 12×16·`P` sums in 12·`P` registers, for products with one or two panels (32
    /// columns or fewer), where one tile's 6·`P` chains leave the FMA units waiting. Each
    /// sum is the same chain as in [`wide_tile`], so the bits are the same.
    ///
    /// # Safety
    /// As for [`wide_tile`] with `R` = 6, for each of `t` and `u`, which must agree on `kc`,
    /// `a_step`, `seg_len`, `seg_skip`, `b` and `panel_stride`.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn row_pair_tile<const P: usize>(t: &Tile, u: &Tile) {
        // The second tile's rows, as offsets from the first's: one register for all six
        // (twelve pointers would not fit in the general registers).
        let delta = (u.rows_a[0] as isize - t.rows_a[0] as isize) / 4;
        if (0..MR).any(|r| t.rows_a[r].wrapping_offset(delta) != u.rows_a[r]) {
            // SAFETY: the caller's contract, for each tile.
            unsafe {
                wide_tile::<MR, P>(t);
                wide_tile::<MR, P>(u);
            }
            return;
        }
        let stride = t.panel_stride;
        let mut rows = t.rows_a;
        let z = _mm512_setzero_ps();
        let (mut first, mut second) = ([[z; P]; MR], [[z; P]; MR]);
        let mut bp = t.b;
        let mut left = t.kc;
        while left > 0 {
            let steps = left.min(t.seg_len);
            for _ in 0..steps {
                let b: [__m512; P] = std::array::from_fn(|j| _mm512_loadu_ps(bp.add(j * stride)));
                for (sums, a) in first.iter_mut().zip(rows) {
                    let x = _mm512_set1_ps(*a);
                    for (sum, b) in sums.iter_mut().zip(b) {
                        *sum = _mm512_fmadd_ps(x, b, *sum);
                    }
                }
                for (sums, a) in second.iter_mut().zip(rows) {
                    let x = _mm512_set1_ps(*a.offset(delta));
                    for (sum, b) in sums.iter_mut().zip(b) {
                        *sum = _mm512_fmadd_ps(x, b, *sum);
                    }
                }
                bp = bp.add(NR);
                rows = rows.map(|a| a.wrapping_add(t.a_step));
            }
            rows = rows.map(|a| a.wrapping_add(t.seg_skip));
            left -= steps;
        }
        // SAFETY: the caller's contract, for each tile.
        unsafe {
            store_sums(t, first);
            store_sums(u, second);
        }
    }

    /// Every row tile of a product (rows of A `row_stride` apart, `m` rows), a group of
    /// panels at a time as [`super::run_on`] groups them: four, then two, then one; with
    /// one or two panels in all, in row pairs ([`row_pairs`]).
    ///
    /// # Safety
    /// The CPU must have AVX-512F, AVX2 and FMA; the pointers as for
    /// [`super::run_rows_on`].
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn wide_rows(first: &Tile, m: usize, row_stride: usize) {
        if first.panels <= 2 {
            // SAFETY: the caller's contract.
            return unsafe { row_pairs(first, m, row_stride) };
        }
        for group in first.panel_groups(SimdPath::Avx512) {
            for i0 in (0..m).step_by(MR) {
                // SAFETY: the caller's contract for the tile of rows i0.., whose group of
                // panels lies inside its B and C (`panel_groups`).
                unsafe { group_tile(&group.moved_down(i0, m, row_stride)) };
            }
        }
    }

    /// One group of panels of a tile (four, two or one, from `Tile::panel_groups`), on
    /// three rows where it has no more.
    ///
    /// # Safety
    /// As for [`wide_tile`], with `t.panels` 1, 2 or 4.
    #[inline(always)]
    pub(super) unsafe fn group_tile(t: &Tile) {
        // SAFETY: the caller's contract; `t.rows` <= 3 where the three-row tile runs.
        unsafe {
            match (t.panels, t.rows <= MR / 2) {
                (4, false) => wide_tile::<MR, 4>(t),
                (4, true) => wide_tile::<{ MR / 2 }, 4>(t),
                (2, false) => wide_tile::<MR, 2>(t),
                (2, true) => wide_tile::<{ MR / 2 }, 2>(t),
                _ => wide_tile::<MR, 1>(t),
            }
        }
    }

    /// [`wide_rows`] for one or two panels: row tiles two at a time, as
    /// [`super::run_row_pair_on`] runs them, and a last one alone.
    ///
    /// # Safety
    /// As for [`wide_rows`], with `first.panels` 1 or 2.
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn row_pairs(first: &Tile, m: usize, row_stride: usize) {
        for i0 in (0..m).step_by(2 * MR) {
            let t = first.moved_down(i0, m, row_stride);
            // SAFETY: the caller's contract for the tiles of rows i0.. and i0 + MR..,
            // which share B and the steps of A; `t.rows` <= 3 where the three-row tile
            // runs.
            unsafe {
                if i0 + MR < m {
                    let u = first.moved_down(i0 + MR, m, row_stride);
                    if first.panels == 1 {
                        row_pair_tile::<1>(&t, &u);
                    } else {
                        row_pair_tile::<2>(&t, &u);
                    }
                } else {
                    group_tile(&t);
                }
            }
        }
    }

    /// Writes (or adds) the sums of a tile of `P` panels to its part of C. The sums come
    /// by value: passed by reference, LLVM kept some tiles' sums in memory and stored each
    /// after its fused multiply-add, which ran at half the speed.
    ///
    /// # Safety
    /// `t.c` as for [`wide_tile`], with `t.rows` <= `R`.
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn store_sums<const R: usize, const P: usize>(t: &Tile, sums: [[__m512; P]; R]) {
        if t.cols == P * NR {
            for (r, row) in sums.iter().enumerate().take(t.rows) {
                let dst = t.c.add(r * t.ldc);
                for (j, sum) in row.iter().enumerate() {
                    let mut v = *sum;
                    if t.accumulate {
                        v = _mm512_add_ps(v, _mm512_loadu_ps(dst.add(j * NR)));
                    }
                    _mm512_storeu_ps(dst.add(j * NR), v);
                }
            }
        } else {
            let mut acc = [[[0.0f32; NR]; P]; R];
            for (row, sums) in acc.iter_mut().zip(sums) {
                for (lanes, sum) in row.iter_mut().zip(sums) {
                    _mm512_storeu_ps(lanes.as_mut_ptr(), sum);
                }
            }
            store(t, &acc.each_ref().map(|row| row.as_flattened()));
        }
    }

    /// The first `R` rows (3 or 6) of `P` panels at once (1, 2 or 4): R×16·`P` sums in
    /// R·`P` of the 32 registers. Each sum is the same chain of fused multiply-adds, in the
    /// same order, as in the AVX2 tile, so the bits are the same; the wider tile gives the
    /// FMA units more independent chains and loads each broadcast of A once for `P` vectors
    /// of B, and a tile with 3 rows or fewer left does not compute 6.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, AVX2 and FMA; the pointers as for [`super::run_on`],
    /// with `t.panels == P` and `t.rows <= R`.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn wide_tile<const R: usize, const P: usize>(t: &Tile) {
        debug_assert!(t.panels == P && t.rows <= R && R <= MR);
        let stride = t.panel_stride;
        let z = _mm512_setzero_ps();
        let mut sums = [[z; P]; R];
        accumulate!(
            t,
            sums,
            |bp| std::array::from_fn::<__m512, P, _>(|j| _mm512_loadu_ps(bp.add(j * stride))),
            _mm512_set1_ps,
            _mm512_fmadd_ps
        );
        // SAFETY: the caller's contract.
        unsafe { store_sums(t, sums) }
    }
}

#[cfg(test)]
#[path = "kernel_tests.rs"]
mod tests;
