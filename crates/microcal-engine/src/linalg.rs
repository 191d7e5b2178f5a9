//! Matrix products on `f32` slices, with strides so that transposed operands need no copy:
//! blocked over slices of B (packed) at most `KC_MAX` deep and `MR`×`NR` tiles of C computed by
//! `kernel`. A is read in place: each 6-row strip is re-read from L1 for every 16 columns.

use super::aligned::AlignedFloats;
use super::kernel::{self, Tile, MR, NR};
use crate::simd::{self, SimdPath};

/// An operand: data with its row and column strides (row-major m×k: `(k, 1)`;
/// the transpose of a row-major k×m matrix: `(1, m)`).
#[derive(Clone, Copy)]
pub(crate) struct Operand<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Operand<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }

    pub(crate) fn covers(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// B (k×n) copied once into the layout the tile code reads: for each block of `depth` rows,
/// panels of `NR` columns, each `depth` rows of `NR` floats, the last panel padded with zeros.
/// A convolution packs its weights once per batch and reuses them for every image. Every
/// panel starts on a cache line ([`AlignedFloats`]), so the tile's loads of B never
/// straddle two.
#[derive(Default)]
pub(crate) struct PackedB {
    data: AlignedFloats,
    k: usize,
    n: usize,
    /// Rows per block: k split evenly into blocks of at most `KC_MAX` (a short last block
    /// would load and store C for little work), or for [`PackedB::aligned`] the largest
    /// multiple of the segment within `KC_MAX` (at least one segment).
    depth: usize,
}

/// Deepest block of the product: a packed panel (`KC_MAX`×`NR` floats) stays in L1 and a
/// block of panels in L2.
pub(crate) const KC_MAX: usize = 384;

impl PackedB {
    pub fn new(b: Operand, k: usize, n: usize) -> Self {
        let mut packed = Self::default();
        packed.pack(b, k, n);
        packed
    }

    /// Packed in blocks whose depth is a multiple of `segment` (the rows of A of
    /// [`matmul_windows`] jump at segment boundaries, which must fall between blocks).
    pub fn aligned(b: Operand, k: usize, n: usize, segment: usize) -> Self {
        let mut packed = Self::default();
        packed.pack_aligned(b, k, n, segment);
        packed
    }

    /// [`PackedB::aligned`] into this buffer.
    pub fn pack_aligned(&mut self, b: Operand, k: usize, n: usize, segment: usize) {
        self.pack_in_blocks(b, k, n, (KC_MAX / segment).max(1) * segment);
    }

    /// Re-packs into the same buffer (no allocation once it is large enough).
    pub fn pack(&mut self, b: Operand, k: usize, n: usize) {
        self.pack_in_blocks(b, k, n, k.div_ceil(k.div_ceil(KC_MAX).max(1)));
    }

    /// Makes this an empty B of up to `capacity` rows (one block, at most `KC_MAX`) and
    /// `n` columns, for a producer that writes its values in place (at [`PackedB::index`])
    /// rather than packing a finished matrix; the padding columns are zero. Rows past
    /// those set with [`PackedB::set_rows`] are never read, so the buffer keeps its old
    /// values (no refill), unless `n` leaves padding columns in a new layout (zeroed).
    pub fn reserve_in_place(&mut self, capacity: usize, n: usize) {
        assert!(
            (1..=KC_MAX).contains(&capacity),
            "one block of at most KC_MAX rows"
        );
        let len = n.div_ceil(NR) * capacity * NR;
        let same_layout = (self.n, self.depth, self.data.len()) == (n, capacity, len);
        if n.is_multiple_of(NR) {
            self.data.resize_for_overwrite(len);
        } else if !same_layout {
            self.data.clear();
            self.data.resize(len, 0.0);
        }
        (self.k, self.n, self.depth) = (0, n, capacity);
    }

    /// Where (row r, column j) lives in [`PackedB::values_mut`] (in-place B only).
    #[inline(always)]
    pub fn index(&self, r: usize, j: usize) -> usize {
        (j / NR) * self.depth * NR + r * NR + j % NR
    }

    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// How many rows (from the first) the product uses (in-place B only).
    pub fn set_rows(&mut self, k: usize) {
        assert!(k <= self.depth, "more rows than reserved");
        self.k = k;
    }

    fn pack_in_blocks(&mut self, b: Operand, k: usize, n: usize, depth: usize) {
        assert!(b.covers(k, n), "matmul operand B too small");
        let panels = n.div_ceil(NR);
        self.k = k;
        self.n = n;
        self.depth = depth.max(1);
        let depth = self.depth;
        // Every value the tiles read is written below (rows past k in the last block are
        // not read).
        self.data
            .resize_for_overwrite(k.div_ceil(depth) * panels * depth * NR);
        for (block, chunk) in self.data.chunks_mut(panels * depth * NR).enumerate() {
            let k0 = block * depth;
            let kc = depth.min(k - k0);
            for (p, panel) in chunk.chunks_mut(depth * NR).enumerate() {
                let j0 = p * NR;
                let cols = NR.min(n - j0);
                for (r, dst) in panel.chunks_mut(NR).take(kc).enumerate() {
                    let row = (k0 + r) * b.row_stride;
                    if b.col_stride == 1 {
                        dst[..cols].copy_from_slice(&b.data[row + j0..][..cols]);
                    } else {
                        for (j, d) in dst[..cols].iter_mut().enumerate() {
                            *d = b.data[row + (j0 + j) * b.col_stride];
                        }
                    }
                    dst[cols..].fill(0.0);
                }
            }
        }
    }

    fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }
}

/// `c` (m×n, row-major) = (`accumulate` ? `c` : 0) + `a` (m×k) · `b` (k×n).
///
/// Single-threaded: callers split their work (images) over threads.
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    accumulate: bool,
    a: Operand,
    b: Operand,
) {
    thread_local! {
        static PACKED: std::cell::RefCell<PackedB> = std::cell::RefCell::default();
    }
    PACKED.with(|packed| {
        let mut packed = packed.borrow_mut();
        packed.pack(b, k, n);
        matmul_packed(m, c, accumulate, a, &packed);
    });
}

/// `c` (m×n, row-major) = (`accumulate` ? `c` : 0) + `a` (m×k) · `b`, with B packed.
pub(crate) fn matmul_packed(m: usize, c: &mut [f32], accumulate: bool, a: Operand, b: &PackedB) {
    assert!(a.covers(m, b.k), "matmul operand A too small");
    product(m, c, accumulate, RowsOfA::of(a), b, simd::active());
}

/// A matrix A whose rows are windows of one buffer: row i starts at `starts[i]` and is
/// made of segments of `seg_len` values `step` apart, the segments `seg_stride` apart.
/// For a k×k convolution over a zero-padded NHWC image, the patch of an output position
/// is k segments of k·cin contiguous floats (step 1), one per kernel row, a padded image
/// row apart; and the transposed patches (for the weight gradient) are, per kernel tap and
/// channel, the image's pixels at that offset: segments of w positions, step cin. The
/// product reads them in place instead of from a copied patch matrix.
pub(crate) struct Windows<'a> {
    pub data: &'a [f32],
    pub starts: &'a [usize],
    pub step: usize,
    pub seg_len: usize,
    pub seg_stride: usize,
}

/// `c` (m×n, row-major, m = number of windows) (+)= `a` · `b`; `b`'s blocks must be
/// [`PackedB::aligned`] to `a.seg_len`.
pub(crate) fn matmul_windows(c: &mut [f32], accumulate: bool, a: &Windows, b: &PackedB) {
    let (k, seg) = (b.k, a.seg_len);
    assert!(
        seg > 0
            && k.is_multiple_of(seg)
            && b.depth.is_multiple_of(seg)
            && a.seg_stride >= seg * a.step,
        "windows do not match the packed operand"
    );
    let span = (k / seg).saturating_sub(1) * a.seg_stride + (seg - 1) * a.step + 1;
    assert!(
        a.starts.iter().all(|s| s + span <= a.data.len()),
        "windows outside the buffer"
    );
    let rows = RowsOfA {
        at: |i: usize, k0: usize| a.data[a.starts[i] + k0 / seg * a.seg_stride..].as_ptr(),
        step: a.step,
        seg_len: seg,
        seg_skip: a.seg_stride - seg * a.step,
        row_stride: None,
    };
    product(a.starts.len(), c, accumulate, rows, b, simd::active());
}

/// How the tile code walks A: `at(i, k0)` points at row i, column k0 (k0 at a block
/// start); columns are `step` apart, with `seg_skip` more after every `seg_len`.
struct RowsOfA<F> {
    at: F,
    step: usize,
    seg_len: usize,
    seg_skip: usize,
    /// Floats from one row's start to the next's, where every row is that far from the
    /// one before (an ordinary matrix; windows start where their positions say).
    row_stride: Option<usize>,
}

impl<'a> RowsOfA<()> {
    /// An ordinary strided matrix (no segments).
    fn of(a: Operand<'a>) -> RowsOfA<impl Fn(usize, usize) -> *const f32 + 'a> {
        RowsOfA {
            at: move |i: usize, k0: usize| a.data[i * a.row_stride + k0 * a.col_stride..].as_ptr(),
            step: a.col_stride,
            seg_len: usize::MAX,
            seg_skip: 0,
            row_stride: Some(a.row_stride),
        }
    }
}

/// The blocked product. Callers have checked that every element of A the tile code reads
/// (from `a.at`, by `step` and the segments) lies inside A's buffer.
fn product<F: Fn(usize, usize) -> *const f32>(
    m: usize,
    c: &mut [f32],
    accumulate: bool,
    a: RowsOfA<F>,
    b: &PackedB,
    path: SimdPath,
) {
    let (n, k) = (b.n, b.k);
    assert!(c.len() >= m * n, "matmul result too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    let panels = b.panels();
    let depth = b.depth;
    // One or two panels: row tiles two at a time where the path pairs them
    // (`run_row_pair_on`).
    let row_step = if panels <= kernel::paired_panels(path) {
        2 * MR
    } else {
        MR
    };
    for (block, packed) in b.data.chunks(panels * depth * NR).enumerate() {
        let k0 = block * depth;
        let kc = depth.min(k - k0);
        // The tile of C at row i0, across all the block's panels (`run_on` takes them as
        // widely as the path allows).
        let tile = |i0: usize, c: &mut [f32]| {
            let rows = MR.min(m - i0);
            // Rows past the end repeat the last one; their sums are discarded.
            let rows_a: [*const f32; MR] =
                std::array::from_fn(|r| (a.at)(i0 + r.min(rows - 1), k0));
            Tile {
                kc,
                rows_a,
                a_step: a.step,
                seg_len: a.seg_len,
                seg_skip: a.seg_skip,
                b: packed.as_ptr(),
                panels,
                panel_stride: depth * NR,
                c: c[i0 * n..].as_mut_ptr(),
                ldc: n,
                rows,
                cols: n,
                accumulate: accumulate || block > 0,
            }
        };
        if let Some(stride) = a.row_stride {
            let first = tile(0, c);
            // SAFETY: as below, for every row tile (and pair): row i of A is `stride`
            // floats after row i − 1 (`a.row_stride`), and C's rows are `n` apart.
            unsafe { kernel::run_rows_on(path, &first, m, stride) };
            continue;
        }
        for i0 in (0..m).step_by(row_step) {
            if row_step > MR && i0 + MR < m {
                let (first, second) = (tile(i0, c), tile(i0 + MR, c));
                // SAFETY: as below, for each tile; both read the block's panels of B with
                // the same depth and steps of A.
                unsafe { kernel::run_row_pair_on(path, &first, &second) };
                continue;
            }
            let t = tile(i0, c);
            // SAFETY: the caller checked that every element of A the tile reads from
            // `rows_a` lies in A's buffer; the block holds `panels` panels of
            // `depth * NR >= kc * NR` floats, and the tile reads all of them; `c` holds m×n
            // floats (asserted above), and the tile writes `rows` rows of `n` floats from
            // row i0, `n` apart, all inside it.
            unsafe { kernel::run_on(path, &t) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_with_transposes_match_the_definition() {
        let a: Vec<f32> = (0..6).map(|v| v as f32).collect(); // 2×3
        let b: Vec<f32> = (0..12).map(|v| (v % 5) as f32 - 2.0).collect(); // 3×4
        let mut c = vec![1.0; 8];
        matmul(
            2,
            4,
            3,
            &mut c,
            true,
            Operand::rows(&a, 3),
            Operand::rows(&b, 4),
        );
        for i in 0..2 {
            for j in 0..4 {
                let want: f32 = 1.0 + (0..3).map(|k| a[i * 3 + k] * b[k * 4 + j]).sum::<f32>();
                assert_eq!(c[i * 4 + j], want);
            }
        }
        // aᵀ·a (3×3) from a stored 2×3.
        let mut g = vec![0.0; 9];
        matmul(
            3,
            3,
            2,
            &mut g,
            false,
            Operand::transposed(&a, 3),
            Operand::rows(&a, 3),
        );
        assert_eq!(g[1], a[0] * a[1] + a[3] * a[4], "row 0, column 1");
    }

    /// Edge sizes (rows not a multiple of 6, columns not a multiple of 16, depth over one
    /// block), transposed operands and accumulation, against the definition in f64, with
    /// both the tile code this CPU runs and the portable one.
    #[test]
    fn blocked_products_match_the_definition_at_every_edge() {
        let mut rng = crate::rng::Rng::new(9);
        for (m, n, k) in [
            (1, 1, 1),
            (7, 17, 5),
            (13, 33, 300),
            (6, 16, 384),
            (29, 16, 40),
            (49, 128, 800),
        ] {
            for (ta, tb, acc) in [
                (false, false, false),
                (true, false, true),
                (false, true, true),
            ] {
                let a: Vec<f32> = (0..m * k).map(|_| rng.normal() as f32).collect();
                let b: Vec<f32> = (0..k * n).map(|_| rng.normal() as f32).collect();
                let c0: Vec<f32> = (0..m * n).map(|_| rng.normal() as f32).collect();
                // Stored as given: a is m×k (or its transpose, k×m), b is k×n (or n×k).
                let a_at = |i: usize, p: usize| if ta { a[p * m + i] } else { a[i * k + p] };
                let b_at = |p: usize, j: usize| if tb { b[j * k + p] } else { b[p * n + j] };
                let op_a = if ta {
                    Operand::transposed(&a, m)
                } else {
                    Operand::rows(&a, k)
                };
                let op_b = if tb {
                    Operand::transposed(&b, k)
                } else {
                    Operand::rows(&b, n)
                };
                let mut fast = c0.clone();
                matmul(m, n, k, &mut fast, acc, op_a, op_b);
                let mut plain = c0.clone();
                let packed = PackedB::new(op_b, k, n);
                product(
                    m,
                    &mut plain,
                    acc,
                    RowsOfA::of(op_a),
                    &packed,
                    SimdPath::Portable,
                );
                for i in 0..m {
                    for j in 0..n {
                        let dot: f64 = (0..k).map(|p| a_at(i, p) as f64 * b_at(p, j) as f64).sum();
                        let want = dot + if acc { c0[i * n + j] as f64 } else { 0.0 };
                        for got in [fast[i * n + j], plain[i * n + j]] {
                            assert!(
                                (got as f64 - want).abs() < 1e-4 * (1.0 + want.abs()) * (k as f64).sqrt(),
                                "{m}x{n}x{k} ta={ta} tb={tb} acc={acc} at ({i},{j}): {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Rows read as windows (segments of a buffer) give the product of the gathered
    /// matrix, with both tile codes, including blocks that hold several segments.
    #[test]
    fn window_rows_match_the_gathered_matrix() {
        let mut rng = crate::rng::Rng::new(4);
        for (seg_len, segments, n, m, step) in [
            (5, 3, 7, 11, 1),
            (96, 3, 20, 13, 1),
            (200, 3, 16, 6, 1),
            (7, 9, 16, 30, 4),
        ] {
            let seg_stride = seg_len * step + 9;
            let k = seg_len * segments;
            let data: Vec<f32> = (0..m * 3 + seg_stride * segments + seg_len * step)
                .map(|_| rng.normal() as f32)
                .collect();
            let starts: Vec<usize> = (0..m).map(|i| i * 3).collect();
            let gathered: Vec<f32> = starts
                .iter()
                .flat_map(|s| (0..k).map(move |p| (s, p)))
                .map(|(s, p)| data[s + p / seg_len * seg_stride + p % seg_len * step])
                .collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.normal() as f32).collect();
            let packed = PackedB::aligned(Operand::rows(&b, n), k, n, seg_len);
            let windows = Windows {
                data: &data,
                starts: &starts,
                step,
                seg_len,
                seg_stride,
            };
            let mut want = vec![0.0; m * n];
            matmul(
                m,
                n,
                k,
                &mut want,
                false,
                Operand::rows(&gathered, k),
                Operand::rows(&b, n),
            );
            let mut fast = vec![0.0; m * n];
            matmul_windows(&mut fast, false, &windows, &packed);
            let rows = RowsOfA {
                at: |i: usize, k0: usize| data[starts[i] + k0 / seg_len * seg_stride..].as_ptr(),
                step,
                seg_len,
                seg_skip: seg_stride - seg_len * step,
                row_stride: None,
            };
            let mut plain = vec![0.0; m * n];
            product(m, &mut plain, false, rows, &packed, SimdPath::Portable);
            for ((w, f), p) in want.iter().zip(&fast).zip(&plain) {
                assert!((w - f).abs() < 1e-3 && (w - p).abs() < 1e-3, "{w} {f} {p}");
            }
        }
    }
}
