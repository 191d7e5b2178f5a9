//! 3×3 'same' convolution by Winograd's minimal filtering F(2×2, 3×3).
//!
//! Why: the direct product spends 9·cin multiplications on each output value; F(2×2, 3×3)
//! computes a 2×2 block of outputs from a 4×4 block of input with 16 products per channel
//! pair instead of 36 (2.25× fewer), the rest being additions on the input and output
//! blocks. Those 16 products, summed over input channels, are 16 matrix products (tiles ×
//! cin times cin × cout), which the engine's tile code runs at full speed.
//!
//! A 2×2 output block is exactly one 2×2 max-pooling window, so a pooled layer pools each
//! block as it comes out of the output transform, and the full-resolution activations are
//! never stored. The transform coefficients are 0, ±1 and ±½, so rounding stays at the
//! level of the direct product (tests compare both with an f64 definition).
//!
//! Notation (Lavin & Gray, 2016): output Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A for a 3×3 kernel g
//! and a 4×4 input block d.

use super::aligned::AlignedFloats;
use super::blocks::{output_blocks, Output};
use super::kernel::with_simd;
use super::linalg::{matmul_packed, Operand, PackedB};

mod gradient;
pub(crate) use gradient::KernelGradient;

/// Values in a transformed 4×4 block: one matrix product each.
const POINTS: usize = 16;

/// Floats of one strip's transformed input and products (16 per tile and channel), kept
/// in L2 beside the transformed kernel.
const STRIP_FLOATS: usize = 64 * 1024;

/// Channels transformed together on the narrowest lanes the transforms use: one 8-lane
/// vector (the AVX-512 path transforms 16 at a time, then 8, see `with_simd`).
const NARROW: usize = 8;

/// A 3×3 kernel (rows ordered ky, kx, ci; columns co) transformed to U = G g Gᵀ for every
/// channel pair and packed as 16 cin × cout matrices, one per point.
pub(crate) struct TransformedKernel {
    points: Vec<PackedB>,
    cin: usize,
    cout: usize,
}

impl TransformedKernel {
    pub fn new(w: &[f32], cin: usize, cout: usize) -> Self {
        assert_eq!(w.len(), 9 * cin * cout, "not a 3×3 kernel");
        let mut u = vec![0.0; POINTS * cin * cout];
        // Rows y of G g (4×3), then points (y, x) of (G g) Gᵀ (4×4), for every output
        // channel at once; G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
        let mut columns = [vec![0.0; cout], vec![0.0; cout], vec![0.0; cout]];
        for ci in 0..cin {
            let tap = |ky: usize, kx: usize| &w[((ky * 3 + kx) * cin + ci) * cout..][..cout];
            for y in 0..4 {
                for (kx, column) in columns.iter_mut().enumerate() {
                    spread_row(y, [tap(0, kx), tap(1, kx), tap(2, kx)], column);
                }
                for x in 0..4 {
                    let point = &mut u[((y * 4 + x) * cin + ci) * cout..][..cout];
                    spread_row(x, [&columns[0], &columns[1], &columns[2]], point);
                }
            }
        }
        let points = u
            .chunks(cin * cout)
            .map(|point| PackedB::new(Operand::rows(point, cout), cin, cout))
            .collect();
        Self { points, cin, cout }
    }
}

/// Row `i` of G·(a, b, c), the kernel transform of three taps, for each element of the
/// slices: a, ½(a + b + c), ½(a − b + c) or c.
fn spread_row(i: usize, [a, b, c]: [&[f32]; 3], out: &mut [f32]) {
    let n = out.len();
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    match i {
        0 => out.copy_from_slice(a),
        1 => (0..n).for_each(|j| out[j] = 0.5 * (a[j] + b[j] + c[j])),
        2 => (0..n).for_each(|j| out[j] = 0.5 * (a[j] - b[j] + c[j])),
        _ => out.copy_from_slice(c),
    }
}

/// Working buffers: the zero-padded image, the transformed input and the products, each
/// starting on a cache line, so that 16 channels from a multiple of 16 are one line.
#[derive(Default)]
pub(crate) struct Buffers {
    pub padded: AlignedFloats,
    pub transformed: AlignedFloats,
    pub products: AlignedFloats,
}

/// The 'same' 3×3 convolution of one NHWC image (h×w×cin, of which the first `rows` image
/// rows are given in `img` and the rest are zero) plus `bias`, into `output`.
pub(crate) fn convolve(
    img: &[f32],
    (h, w, rows): (usize, usize, usize),
    kernel: &TransformedKernel,
    bias: Option<&[f32]>,
    output: Output,
    buffers: &mut Buffers,
) {
    let (cin, cout) = (kernel.cin, kernel.cout);
    let tiles = Tiles::over(h, w, matches!(output, Output::Pooled { .. }));
    if tiles.rows == 0 || tiles.cols == 0 {
        return; // nothing to pool
    }
    tiles.pad(img, (h, w, rows), cin, &mut buffers.padded);
    let per_strip = tiles.rows_per_strip(cin, cout);
    let mut output = output;
    for ty0 in (0..tiles.rows).step_by(per_strip) {
        let strip = Strip {
            ty0,
            count: per_strip.min(tiles.rows - ty0) * tiles.cols,
            cols: tiles.cols,
        };
        let Buffers {
            padded,
            transformed,
            products,
        } = buffers;
        transformed.resize_for_overwrite(POINTS * strip.count * cin);
        products.resize_for_overwrite(POINTS * strip.count * cout);
        strip.transform_input(padded, tiles.padded_width(), cin, transformed);
        for ((v, m), u) in transformed
            .chunks(strip.count * cin)
            .zip(products.chunks_mut(strip.count * cout))
            .zip(&kernel.points)
        {
            matmul_packed(strip.count, m, false, Operand::rows(v, cin), u);
        }
        strip.transform_output(products, cout, bias, (h, w), &mut output);
    }
}

/// The shape (m, k, n) of the 16 matrix products per strip that a 3×3 convolution of an
/// h×w image with `cin` and `cout` channels runs (`pooled`: with the 2×2 max-pool fused),
/// its first strip's: m blocks, k = `cin`, n = `cout`. For `microcal bench matmul`.
pub fn point_product_shape(
    h: usize,
    w: usize,
    (cin, cout): (usize, usize),
    pooled: bool,
) -> (usize, usize, usize) {
    let tiles = Tiles::over(h, w, pooled);
    (tiles.rows_per_strip(cin, cout) * tiles.cols, cin, cout)
}

/// The 2×2 output blocks over an h×w image ([`output_blocks`]).
struct Tiles {
    rows: usize,
    cols: usize,
}

impl Tiles {
    fn over(h: usize, w: usize, pooled: bool) -> Self {
        let (rows, cols) = output_blocks(h, w, pooled);
        Self { rows, cols }
    }

    /// Block rows per strip: as many as fit in `STRIP_FLOATS` with `cin` and `cout`
    /// channels, at least one.
    fn rows_per_strip(&self, cin: usize, cout: usize) -> usize {
        (STRIP_FLOATS / (POINTS * self.cols * (cin + cout))).clamp(1, self.rows)
    }

    /// Block (ty, tx) reads padded rows 2ty..2ty+4 and columns 2tx..2tx+4.
    fn padded_width(&self) -> usize {
        2 * self.cols + 2
    }

    /// Copies the image into `padded` with one zero row/column above and left and zeros
    /// below and right as far as the blocks read.
    fn pad(
        &self,
        img: &[f32],
        (h, w, rows): (usize, usize, usize),
        c: usize,
        padded: &mut AlignedFloats,
    ) {
        let pw = self.padded_width();
        // Each value is written once, zero or copied: the buffer is reused without clearing
        // it first (zeroing all of it, then copying most of it again, cost a memset).
        padded.resize_for_overwrite((2 * self.rows + 2) * pw * c);
        let (copy_rows, copy_cols) = (rows.min(h).min(2 * self.rows + 1), w.min(2 * self.cols + 1));
        let mut image_rows = img.chunks(w * c).take(copy_rows);
        for (y, dst) in padded.chunks_mut(pw * c).enumerate() {
            // Padded row 0 is the zero row above the image.
            match if y == 0 { None } else { image_rows.next() } {
                Some(row) => {
                    let (left, rest) = dst.split_at_mut(c);
                    let (inside, right) = rest.split_at_mut(copy_cols * c);
                    left.fill(0.0);
                    inside.copy_from_slice(&row[..copy_cols * c]);
                    right.fill(0.0);
                }
                None => dst.fill(0.0),
            }
        }
    }
}

/// Consecutive block rows of one pass: `count` blocks from block row `ty0`, `cols` a row.
struct Strip {
    ty0: usize,
    count: usize,
    cols: usize,
}

impl Strip {
    /// (ty, tx) of the strip's j-th block.
    fn block(&self, j: usize) -> (usize, usize) {
        (self.ty0 + j / self.cols, j % self.cols)
    }

    with_simd! {
        /// V = Bᵀ d B for each block d and channel, stored as 16 matrices (blocks × c).
        fn transform_input / transform_input_avx2 / transform_input_avx512 => transform_input_here::<lanes>(
            &self, padded: &[f32], pw: usize, c: usize, v: &mut [f32]
        )
    }

    #[inline(always)]
    fn transform_input_here<const L: usize>(
        &self,
        padded: &[f32],
        pw: usize,
        c: usize,
        v: &mut [f32],
    ) {
        let plane = self.count * c;
        for j in 0..self.count {
            let (ty, tx) = self.block(j);
            let at = Block4 {
                base: (2 * ty * pw + 2 * tx) * c,
                row: pw * c,
                col: c,
            };
            transform_block_input::<L>(padded, &at, c, (v, plane, j * c));
        }
    }

    with_simd! {
        /// Y = Aᵀ M A for each block and channel (plus the bias), pooled or stored.
        fn transform_output / transform_output_avx2 / transform_output_avx512 => transform_output_here::<lanes>(
            &self, m: &[f32], c: usize, bias: Option<&[f32]>, dims: (usize, usize),
            output: &mut Output,
        )
    }

    #[inline(always)]
    fn transform_output_here<const L: usize>(
        &self,
        m: &[f32],
        c: usize,
        bias: Option<&[f32]>,
        (h, w): (usize, usize),
        output: &mut Output,
    ) {
        let plane = self.count * c;
        let bias = bias.map(|bias| &bias[..c]);
        for j in 0..self.count {
            let (ty, tx) = self.block(j);
            // The block's 16 points' runs of `c` values, sliced once (see `Output::block`).
            let mut p: [&[f32]; POINTS] = [&[]; POINTS];
            for (q, run) in p.iter_mut().enumerate() {
                *run = &m[q * plane + j * c..][..c];
            }
            let mut block = output.block((ty, tx), c, (h, w));
            let mut ch = 0;
            while ch + L <= c {
                block.emit(&transform_output_lanes::<L>(&p, bias, ch), ch);
                ch += L;
            }
            while L > NARROW && ch + NARROW <= c {
                block.emit(&transform_output_lanes::<NARROW>(&p, bias, ch), ch);
                ch += NARROW;
            }
            for ch in ch..c {
                block.emit(&transform_output_lanes::<1>(&p, bias, ch), ch);
            }
        }
    }
}

/// Where a 4×4 input block's values are: value (i, j) at `base + i·row + j·col`.
struct Block4 {
    base: usize,
    row: usize,
    col: usize,
}

/// Bᵀ d B for one block at `at`, every channel, `L` at a time; point q to
/// `v[q·plane + offset..]`. The block's 16 input and 16 output runs of `c` values are
/// sliced once here, so that each vector's access inside is checked against its run, not
/// against the whole buffer.
#[inline(always)]
fn transform_block_input<const L: usize>(
    padded: &[f32],
    at: &Block4,
    c: usize,
    v: (&mut [f32], usize, usize),
) {
    let (v, plane, offset) = v;
    // Loops, not `array::from_fn`: that is not inlined here (a call per block).
    let mut d: [&[f32]; POINTS] = [&[]; POINTS];
    for (q, run) in d.iter_mut().enumerate() {
        *run = &padded[at.base + q / 4 * at.row + q % 4 * at.col..][..c];
    }
    let mut points: [&mut [f32]; POINTS] = Default::default();
    let mut rest = &mut v[offset..];
    for (q, run) in points.iter_mut().enumerate() {
        let (point, after) =
            std::mem::take(&mut rest).split_at_mut(if q + 1 < POINTS { plane } else { c });
        (*run, rest) = (&mut point[..c], after);
    }
    let mut ch = 0;
    while ch + L <= c {
        transform_input_lanes::<L>(&d, ch, &mut points);
        ch += L;
    }
    while L > NARROW && ch + NARROW <= c {
        transform_input_lanes::<NARROW>(&d, ch, &mut points);
        ch += NARROW;
    }
    for ch in ch..c {
        transform_input_lanes::<1>(&d, ch, &mut points);
    }
}

/// Bᵀ d B for `L` channels from `ch` of the block's input runs `runs` (value (i, j) at
/// i·4 + j) into its 16 points' runs.
#[inline(always)]
fn transform_input_lanes<const L: usize>(
    runs: &[&[f32]; POINTS],
    ch: usize,
    points: &mut [&mut [f32]; POINTS],
) {
    let mut d = [[[0.0f32; L]; 4]; 4];
    for (q, run) in runs.iter().enumerate() {
        d[q / 4][q % 4].copy_from_slice(&run[ch..ch + L]);
    }
    // Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], applied down the columns, then along
    // the rows.
    let mut t = [[[0.0f32; L]; 4]; 4];
    for j in 0..4 {
        for l in 0..L {
            t[0][j][l] = d[0][j][l] - d[2][j][l];
            t[1][j][l] = d[1][j][l] + d[2][j][l];
            t[2][j][l] = d[2][j][l] - d[1][j][l];
            t[3][j][l] = d[1][j][l] - d[3][j][l];
        }
    }
    for (i, t) in t.iter().enumerate() {
        let mut row = [[0.0f32; L]; 4];
        for l in 0..L {
            row[0][l] = t[0][l] - t[2][l];
            row[1][l] = t[1][l] + t[2][l];
            row[2][l] = t[2][l] - t[1][l];
            row[3][l] = t[1][l] - t[3][l];
        }
        for (j, values) in row.iter().enumerate() {
            points[i * 4 + j][ch..ch + L].copy_from_slice(values);
        }
    }
}

/// Aᵀ M A (+ bias) for the `L` channels from `ch` of the block's points' runs `points`.
/// Returns the corners (0, 0), (0, 1), (1, 0), (1, 1).
#[inline(always)]
fn transform_output_lanes<const L: usize>(
    points: &[&[f32]; POINTS],
    bias: Option<&[f32]>,
    ch: usize,
) -> [[f32; L]; 4] {
    let mut p = [[[0.0f32; L]; 4]; 4];
    for (q, run) in points.iter().enumerate() {
        p[q / 4][q % 4].copy_from_slice(&run[ch..ch + L]);
    }
    // Aᵀ = [1 1 1 0; 0 1 −1 −1], applied down the columns, then along the rows.
    let mut t = [[[0.0f32; L]; 4]; 2];
    for j in 0..4 {
        for l in 0..L {
            t[0][j][l] = p[0][j][l] + p[1][j][l] + p[2][j][l];
            t[1][j][l] = p[1][j][l] - p[2][j][l] - p[3][j][l];
        }
    }
    let mut corners = [[0.0f32; L]; 4];
    for (i, t) in t.iter().enumerate() {
        for l in 0..L {
            corners[2 * i][l] = t[0][l] + t[1][l] + t[2][l];
            corners[2 * i + 1][l] = t[1][l] - t[2][l] - t[3][l];
        }
    }
    if let Some(bias) = bias {
        let bias = &bias[ch..ch + L];
        for corner in &mut corners {
            for l in 0..L {
                corner[l] += bias[l];
            }
        }
    }
    corners
}

#[cfg(test)]
#[path = "winograd_tests.rs"]
mod tests;
