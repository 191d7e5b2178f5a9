//! The gradient of a Winograd convolution's 3×3 kernel: the forward transform read
//! backwards, summed over the blocks of several images before the final transform (the
//! weight-gradient half of [`super`]'s convolution; the input gradient is a forward
//! convolution with the flipped kernel).

use super::{transform_block_input, Block4, Tiles, NARROW, POINTS};
use crate::aligned::AlignedFloats;
use crate::kernel::with_simd;
use crate::linalg::{matmul_packed, Operand, PackedB, KC_MAX};

/// Floats of the transformed input and output-gradient blocks gathered before their
/// products are summed into a kernel gradient: the depth of those products, so larger
/// than a forward strip (the small layers gather blocks from several images).
const GRADIENT_FLOATS: usize = 256 * 1024;

/// A 3×3 kernel's gradient summed over the 2×2 output blocks of several images, by the
/// same transform read backwards: for a block with input d and output gradient e,
/// dW = Gᵀ[(A e Aᵀ) ⊙ (Bᵀ d B)]G, and the sum over blocks is taken point by point before
/// the (linear) final transform, as 16 products (cin × blocks times blocks × cout).
/// Kept in each thread's scratch between batches (a group of images takes it out while it
/// runs): [`KernelGradient::start`] begins a new sum.
#[derive(Default)]
pub(crate) struct KernelGradient {
    cin: usize,
    cout: usize,
    /// Blocks gathered per product.
    capacity: usize,
    pending: usize,
    /// Whether `sums` holds anything yet (the first product writes rather than adds).
    summed: bool,
    /// Σ over blocks, per point: 16 cin × cout matrices.
    sums: AlignedFloats,
    /// Gathered Bᵀ d B: 16 matrices of `capacity` × cin.
    inputs: AlignedFloats,
    /// Gathered A e Aᵀ, written straight into the packed layout of the products' B.
    grads: Vec<PackedB>,
    padded: AlignedFloats,
}

impl KernelGradient {
    /// Begins the sum for a kernel with `cin` input and `cout` output channels.
    pub fn start(&mut self, cin: usize, cout: usize) {
        let capacity = (GRADIENT_FLOATS / (POINTS * (cin + cout))).clamp(1, KC_MAX);
        self.start_with_capacity(cin, cout, capacity);
    }

    /// [`KernelGradient::start`] with `capacity` blocks per product.
    pub(super) fn start_with_capacity(&mut self, cin: usize, cout: usize, capacity: usize) {
        (self.cin, self.cout, self.capacity) = (cin, cout, capacity);
        (self.pending, self.summed) = (0, false);
        self.sums.resize_for_overwrite(POINTS * cin * cout);
        self.inputs.resize_for_overwrite(POINTS * capacity * cin);
        self.grads.resize_with(POINTS, PackedB::default);
        for z in &mut self.grads {
            z.reserve_in_place(capacity, cout);
        }
    }

    /// Adds one image's blocks: its input (h×w×cin) and the gradient of its convolution
    /// outputs (`dconv`, the first rows of h×w×cout; positions past it are zero). `pooled`:
    /// the outputs were pooled, so only the pooling windows' blocks carry gradient.
    pub fn add_image(&mut self, img: &[f32], dconv: &[f32], (h, w): (usize, usize), pooled: bool) {
        let tiles = Tiles::over(h, w, pooled);
        tiles.pad(img, (h, w, h), self.cin, &mut self.padded);
        self.add_blocks(&tiles, dconv, w);
    }

    with_simd! {
        /// Transforms every block of the padded image into the next free slots, summing
        /// whenever the slots are full. One call an image, not one a block: with few
        /// channels, a call's setup cost as much as the block's transforms.
        fn add_blocks / add_blocks_avx2 / add_blocks_avx512 => add_blocks_here::<lanes>(
            &mut self, tiles: &Tiles, dconv: &[f32], w: usize
        )
    }

    /// The slots are filled in runs: first every block's input, then every block's output
    /// gradient. Both at once wrote 32 streams (16 points each), more than the core's
    /// write buffers keep apart.
    #[inline(always)]
    fn add_blocks_here<const L: usize>(&mut self, tiles: &Tiles, dconv: &[f32], w: usize) {
        let (cin, cout) = (self.cin, self.cout);
        let pw = tiles.padded_width();
        let rows = dconv.len() / (w * cout);
        let blocks = tiles.rows * tiles.cols;
        let mut next = 0;
        while next < blocks {
            let run = (self.capacity - self.pending).min(blocks - next);
            let block = |b: usize| ((next + b) / tiles.cols, (next + b) % tiles.cols);
            for b in 0..run {
                let (ty, tx) = block(b);
                let at = Block4 {
                    base: (2 * ty * pw + 2 * tx) * cin,
                    row: pw * cin,
                    col: cin,
                };
                let slot = (self.pending + b) * cin;
                let inputs = (&mut self.inputs[..], self.capacity * cin, slot);
                transform_block_input::<L>(&self.padded, &at, cin, inputs);
            }
            for b in 0..run {
                let (ty, tx) = block(b);
                let corner = |dy: usize, dx: usize| {
                    let (y, x) = (2 * ty + dy, 2 * tx + dx);
                    (y < rows && x < w).then(|| &dconv[(y * w + x) * cout..][..cout])
                };
                let e = [corner(0, 0), corner(0, 1), corner(1, 0), corner(1, 1)];
                spread_gradient::<L>(e, cout, (&mut self.grads, self.pending + b));
            }
            self.pending += run;
            next += run;
            if self.pending == self.capacity {
                self.flush();
            }
        }
    }

    /// Sums the gathered blocks into `sums`.
    fn flush(&mut self) {
        let (cin, k) = (self.cin, self.pending);
        if k == 0 {
            return;
        }
        for ((u, v), z) in self
            .sums
            .chunks_mut(cin * self.cout)
            .zip(self.inputs.chunks(self.capacity * cin))
            .zip(&mut self.grads)
        {
            z.set_rows(k);
            matmul_packed(cin, u, self.summed, Operand::transposed(v, cin), z);
        }
        (self.pending, self.summed) = (0, true);
    }

    /// Adds the kernel gradient, Gᵀ U G for every channel pair, to `dw` ((ky, kx, ci) × co).
    pub fn finish(&mut self, dw: &mut [f32]) {
        self.flush();
        if self.summed {
            self.add_to(dw);
        }
    }

    with_simd! {
        /// [`KernelGradient::finish`]'s transform, `lanes` output channels at a time (one
        /// channel pair at a time, it stayed scalar).
        fn add_to / add_to_avx2 / add_to_avx512 => add_to_here::<lanes>(&self, dw: &mut [f32])
    }

    #[inline(always)]
    fn add_to_here<const L: usize>(&self, dw: &mut [f32]) {
        for ci in 0..self.cin {
            let mut co = 0;
            while co + L <= self.cout {
                self.add_lanes::<L>(dw, ci * self.cout + co);
                co += L;
            }
            for co in co..self.cout {
                self.add_lanes::<1>(dw, ci * self.cout + co);
            }
        }
    }

    /// Gᵀ U G for `L` channel pairs from (ci, co) at `at` = ci·cout + co of each point's
    /// matrix, added to their taps.
    #[inline(always)]
    fn add_lanes<const L: usize>(&self, dw: &mut [f32], at: usize) {
        let plane = self.cin * self.cout;
        let mut u = [[0.0f32; L]; POINTS];
        for (q, values) in u.iter_mut().enumerate() {
            values.copy_from_slice(&self.sums[q * plane + at..][..L]);
        }
        // Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1], down the columns, then along the rows.
        let mut columns = [[[0.0f32; L]; 3]; 4];
        for (j, column) in columns.iter_mut().enumerate() {
            for l in 0..L {
                let taps = gather(u[j][l], u[4 + j][l], u[8 + j][l], u[12 + j][l]);
                for (ky, value) in taps.into_iter().enumerate() {
                    column[ky][l] = value;
                }
            }
        }
        for ky in 0..3 {
            let mut row = [[0.0f32; L]; 3];
            for l in 0..L {
                let c = |j: usize| columns[j][ky][l];
                let taps = gather(c(0), c(1), c(2), c(3));
                for (kx, value) in taps.into_iter().enumerate() {
                    row[kx][l] = value;
                }
            }
            for (kx, values) in row.iter().enumerate() {
                let tap = &mut dw[(ky * 3 + kx) * plane + at..][..L];
                for (d, v) in tap.iter_mut().zip(values) {
                    *d += v;
                }
            }
        }
    }
}

/// Gᵀ·(a, b, c, d): three kernel taps' gradient from four points.
#[inline(always)]
fn gather(a: f32, b: f32, c: f32, d: f32) -> [f32; 3] {
    [
        a + 0.5 * b + 0.5 * c,
        0.5 * b - 0.5 * c,
        0.5 * b + 0.5 * c + d,
    ]
}

/// A e Aᵀ for one block's output gradient e (corners (0, 0), (0, 1), (1, 0), (1, 1); None
/// outside the computed outputs), `L` channels at a time: point q of each channel goes to
/// row `slot` of `z[q]`.
#[inline(always)]
fn spread_gradient<const L: usize>(e: [Option<&[f32]>; 4], c: usize, z: (&mut [PackedB], usize)) {
    let (z, slot) = z;
    let mut ch = 0;
    while ch + L <= c {
        spread_gradient_lanes::<L>(&e, ch, (z, slot));
        ch += L;
    }
    while L > NARROW && ch + NARROW <= c {
        spread_gradient_lanes::<NARROW>(&e, ch, (z, slot));
        ch += NARROW;
    }
    for ch in ch..c {
        spread_gradient_lanes::<1>(&e, ch, (z, slot));
    }
}

/// The same for `L` channels from `ch` (`L` = 8 from a multiple of 8, or 16 from a multiple
/// of 16, stays in one packed panel of 16 columns).
#[inline(always)]
fn spread_gradient_lanes<const L: usize>(
    e: &[Option<&[f32]>; 4],
    ch: usize,
    (z, slot): (&mut [PackedB], usize),
) {
    let mut g = [[0.0f32; L]; 4];
    for (values, corner) in g.iter_mut().zip(e) {
        if let Some(corner) = corner {
            values.copy_from_slice(&corner[ch..ch + L]);
        }
    }
    // A = [1 0; 1 1; 1 −1; 0 −1], down the columns, then along the rows.
    let mut columns = [[[0.0f32; L]; 4]; 2];
    for (j, column) in columns.iter_mut().enumerate() {
        let (top, bottom) = (&g[j], &g[2 + j]);
        for l in 0..L {
            column[0][l] = top[l];
            column[1][l] = top[l] + bottom[l];
            column[2][l] = top[l] - bottom[l];
            column[3][l] = -bottom[l];
        }
    }
    for i in 0..4 {
        let (left, right) = (&columns[0][i], &columns[1][i]);
        let mut row = [[0.0f32; L]; 4];
        for l in 0..L {
            row[0][l] = left[l];
            row[1][l] = left[l] + right[l];
            row[2][l] = left[l] - right[l];
            row[3][l] = -right[l];
        }
        for (j, values) in row.iter().enumerate() {
            let point = &mut z[i * 4 + j];
            let at = point.index(slot, ch);
            point.values_mut()[at..at + L].copy_from_slice(values);
        }
    }
}
