//! A convolution's backward pass: per image, the gradient of its outputs (sent back
//! through the ReLU and pooling routes, or built by the op that follows, as batch norm's
//! input gradient), then the bias, weight and input gradients from it, by the same three
//! ways as going forward (`conv`). Split from `conv` so that each file has one direction.

use rayon::prelude::*;

use super::blocks::Output;
use super::blocks::CLIPPED;
use super::conv::{with_scratch, ConvBlock, ConvShape, Scratch, Weights};
use super::groups::{image_groups, GRADIENT_GROUPS};
use super::linalg::{matmul, matmul_windows, Operand, Windows};
use super::winograd::{self, KernelGradient};

/// Floats of one strip of shifted planes going backward (single-channel weight gradient),
/// larger: the strip's positions are the depth of the product. Its strips also fix the
/// order in which that gradient is summed, which the committed results depend on.
const BACKWARD_STRIP_FLOATS: usize = 64 * 1024;

/// Where a convolution's backward pass gets each image's output gradient: the gradient of
/// the convolution's own outputs, before what the op applied after it.
pub(crate) trait OutputGradient: Sync {
    /// Image `image`'s gradient at every position the forward pass computed (pooling
    /// skips an odd last row), built in `buffer` where it is not stored as it is.
    fn image<'a>(&'a self, image: usize, buffer: &'a mut Vec<f32>) -> &'a [f32];

    /// Whether the forward pass pooled (so computed no odd last row).
    fn pooled(&self) -> bool;
}

/// The gradient of a plain convolution block's outputs: the block output's gradient sent
/// back through the ReLU and pooling routes recorded going forward.
pub(super) struct Routed<'a> {
    pub(super) shape: ConvShape,
    pub(super) dy: &'a [f32],
    pub(super) routes: &'a [u8],
    pub(super) spec: ConvBlock,
    pub(super) out_per_image: usize,
}

impl OutputGradient for Routed<'_> {
    fn image<'a>(&'a self, image: usize, buffer: &'a mut Vec<f32>) -> &'a [f32] {
        let n = self.out_per_image;
        let (dy, routes) = (&self.dy[image * n..][..n], &self.routes[image * n..][..n]);
        if self.spec.pool {
            let computed = 2 * (self.shape.h / 2) * self.shape.w;
            self.shape
                .route_back_pooled(dy, routes, (0, computed), buffer);
            buffer
        } else if self.spec.relu {
            buffer.clear();
            let masked = dy.iter().zip(routes);
            buffer.extend(masked.map(|(g, r)| if *r == CLIPPED { 0.0 } else { *g }));
            buffer
        } else {
            dy
        }
    }

    fn pooled(&self) -> bool {
        self.spec.pool
    }
}

/// A convolution's backward pass over a batch: the weight and bias gradients of each group
/// of images (to add in group order), and, given `dx` (the batch's input gradient), the
/// input gradient added into it. `w`: the weights, (k·k·cin, cout).
pub(crate) fn backward_batch(
    shape: ConvShape,
    input: &[f32],
    w: &[f32],
    gradient: &impl OutputGradient,
    dx: Option<&mut [f32]>,
) -> Vec<(Vec<f32>, Vec<f32>)> {
    let flipped_w = dx.is_some().then(|| shape.pack_flipped_weights(w));
    let dx_items = dx
        .into_iter()
        .flat_map(|dx| dx.chunks_mut(shape.per_image() * shape.cin).map(Some))
        .chain(std::iter::repeat_with(|| None));
    let items: Vec<_> = input
        .chunks(shape.per_image() * shape.cin)
        .zip(dx_items)
        .enumerate()
        .collect();
    // Groups of images, taken as threads come free; each group sums its own weight
    // gradient, and the sums are added in group order, so the result does not depend on
    // which thread ran what.
    let pooled = gradient.pooled();
    image_groups(items, GRADIENT_GROUPS)
        .into_par_iter()
        .with_max_len(1)
        .map(|group| {
            let mut dw = vec![0.0; shape.kk() * shape.cout];
            let mut db = vec![0.0; shape.cout];
            // The group's own kernel-gradient sum and output-gradient buffer, out of this
            // thread's scratch while the group runs: a thread that waits below may run
            // other work, which uses the scratch too.
            let (mut kernel_grad, mut buffer) = with_scratch(|scratch| {
                let taken = std::mem::take(&mut scratch.kernel_grad);
                (taken, std::mem::take(&mut scratch.act))
            });
            kernel_grad.start(shape.cin, shape.cout);
            for (image, (img, dx_img)) in group {
                let dconv = gradient.image(image, &mut buffer);
                // The image's input gradient may run on a thread that has come free (the
                // groups are few, so threads often finish apart); otherwise it runs here
                // next, while `dconv` is in the cache. Either way the numbers are the same.
                rayon::join(
                    || {
                        with_scratch(|scratch| {
                            let sums = (&mut dw[..], &mut db[..], &mut kernel_grad);
                            shape.backward_weights(img, (dconv, pooled), sums, scratch)
                        })
                    },
                    || {
                        if let Some((flipped, dx)) = flipped_w.as_ref().zip(dx_img) {
                            with_scratch(|scratch| {
                                shape.backward_input(dconv, flipped, dx, scratch)
                            })
                        }
                    },
                );
            }
            kernel_grad.finish(&mut dw);
            with_scratch(|scratch| (scratch.kernel_grad, scratch.act) = (kernel_grad, buffer));
            (dw, db)
        })
        .collect()
}

impl ConvShape {
    /// The gradient with respect to the pooled strip's convolution outputs (before ReLU and
    /// pooling): each pooled output's gradient goes to the position its route names.
    pub(crate) fn route_back_pooled(
        &self,
        dy: &[f32],
        routes: &[u8],
        (p0, rows): (usize, usize),
        dconv: &mut Vec<f32>,
    ) {
        let c = self.cout;
        if self.w % 2 == 1 {
            dconv.clear(); // the dropped last column gets no gradient
        }
        dconv.resize(rows * c, 0.0);
        let (o0, n) = self.pooled_range(p0, rows);
        let (dy, routes) = (&dy[o0..o0 + n], &routes[o0..o0 + n]);
        let ow = self.w / 2;
        for oy in 0..rows / (2 * self.w) {
            for ox in 0..ow {
                let o = (oy * ow + ox) * c;
                let (g, route) = (&dy[o..o + c], &routes[o..o + c]);
                for r in 0..4u8 {
                    let (ry, rx) = (r as usize >> 1, r as usize & 1);
                    let at = ((2 * oy + ry) * self.w + 2 * ox + rx) * c;
                    for ((d, g), rt) in dconv[at..at + c].iter_mut().zip(g).zip(route) {
                        // A select, not a branch: the routes are unpredictable.
                        *d = f32::from_bits(g.to_bits() & 0u32.wrapping_sub((*rt == r) as u32));
                    }
                }
            }
        }
    }

    /// Adds one image's weight and bias gradients to `dw`/`db` (by Winograd, the weight
    /// gradient to the group's `kernel_grad` sum instead), from the gradient of the
    /// convolution's outputs at every position the forward pass computed (`pooled`: it
    /// skipped an odd last row).
    pub(super) fn backward_weights(
        &self,
        img: &[f32],
        (dconv, pooled): (&[f32], bool),
        (dw, db, kernel_grad): (&mut [f32], &mut [f32], &mut KernelGradient),
        scratch: &mut Scratch,
    ) {
        let (kk, cout) = (self.kk(), self.cout);
        let Scratch {
            cols,
            padded,
            starts,
            packed,
            ..
        } = scratch;
        let computed = dconv.len() / cout;
        for row in dconv.chunks(cout) {
            for (d, g) in db.iter_mut().zip(row) {
                *d += g;
            }
        }
        if self.winograd(self.cin) {
            kernel_grad.add_image(img, dconv, (self.h, self.w), pooled);
        } else if self.windowed() {
            // dw (k·k·cin × cout) += patchesᵀ · dconv, the transposed patches read from the
            // padded image: row (ky, kx, ci) is the pixels at that offset from each
            // computed position, row by row of the image.
            let pw = self.w + 2 * self.pad();
            let cin = self.cin;
            self.pad_into(img, cin, self.h, padded);
            starts.clear();
            for ky in 0..self.kernel {
                for kx in 0..self.kernel {
                    starts.extend((0..cin).map(|ci| (ky * pw + kx) * cin + ci));
                }
            }
            let transposed_patches = Windows {
                data: padded,
                starts,
                step: cin,
                seg_len: self.w,
                seg_stride: pw * cin,
            };
            packed.pack_aligned(Operand::rows(dconv, cout), computed, cout, self.w);
            matmul_windows(dw, true, &transposed_patches, packed);
        } else {
            // One channel: a strip's shifted planes are its transposed patches.
            for (p0, rows) in self.strips(pooled, BACKWARD_STRIP_FLOATS) {
                let grad = Operand::rows(&dconv[p0 * cout..(p0 + rows) * cout], cout);
                cols.resize(rows * kk, 0.0);
                self.shifted_planes(img, p0, rows, cols);
                let patches_t = Operand::rows(cols, rows);
                matmul(kk, cout, rows, dw, true, patches_t, grad);
            }
        }
    }

    /// Adds one image's input gradient to `dx`, from the gradient of its convolution's
    /// outputs (as for [`ConvShape::backward_weights`]) and the flipped weights.
    pub(super) fn backward_input(
        &self,
        dconv: &[f32],
        flipped: &Weights,
        dx: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let cout = self.cout;
        let computed = dconv.len() / cout;
        let Scratch {
            padded,
            starts,
            winograd,
            ..
        } = scratch;
        match flipped {
            Weights::Winograd(flipped) => {
                let output = Output::Full {
                    out: dx,
                    accumulate: true,
                };
                let dims = (self.h, self.w, computed / self.w);
                winograd::convolve(dconv, dims, flipped, None, output, winograd);
            }
            Weights::Direct(flipped) => {
                self.pad_into(dconv, cout, computed / self.w, padded);
                self.window_starts(cout, (0, self.per_image()), starts);
                matmul_windows(dx, true, &self.windows(padded, cout, starts), flipped);
            }
            Weights::Taps(_) => unreachable!("flipped weights are packed or transformed"),
        }
    }

    /// For a single-channel image: row (ky·k + kx) of `planes` holds, for each position of
    /// p0..p0+rows, the pixel that kernel tap (ky, kx) reads (0 outside the image).
    pub(super) fn shifted_planes(&self, img: &[f32], p0: usize, rows: usize, planes: &mut [f32]) {
        let k = self.kernel;
        let pad = k / 2;
        for (tap, plane) in planes.chunks_mut(rows).take(k * k).enumerate() {
            let (ky, kx) = (tap / k, tap % k);
            let mut p = p0;
            while p < p0 + rows {
                let (oy, ox) = (p / self.w, p % self.w);
                let run = (self.w - ox).min(p0 + rows - p);
                let dst = &mut plane[p - p0..][..run];
                match self.source_row(oy, ky) {
                    None => dst.fill(0.0),
                    Some(iy) => {
                        // Output column ox + j reads input column ox + j + kx − pad.
                        let lo = pad.saturating_sub(ox + kx).min(run);
                        let hi = (self.w + pad).saturating_sub(ox + kx).clamp(lo, run);
                        let first = ox + lo + kx - pad;
                        dst[..lo].fill(0.0);
                        dst[lo..hi].copy_from_slice(&img[iy * self.w + first..][..hi - lo]);
                        dst[hi..].fill(0.0);
                    }
                }
                p += run;
            }
        }
    }

    /// The input row that kernel row `ky` reads for output row `oy`, if inside the image.
    fn source_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy + ky)
            .checked_sub(self.kernel / 2)
            .filter(|iy| *iy < self.h)
    }
}
