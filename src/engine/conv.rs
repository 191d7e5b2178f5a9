//! 2-D convolution ('same' padding, stride 1) and 2×2 max-pooling as ops on dfdx's tape.
//!
//! dfdx 0.13 has these only behind its `nightly` feature. Activations here are NHWC images
//! stored as 2-D tensors of shape (batch·height·width, channels). A convolution has three
//! products (output, weight gradient, input gradient, the last a convolution of the output
//! gradient with the kernel turned 180°), computed in one of three ways:
//! - 3×3 kernels over several channels (all but the first layer of the reference network):
//!   Winograd's F(2×2, 3×3) (`winograd`), 2.25× fewer multiplications;
//! - one input channel: tap by tap (`taps`) going forward, and k·k shifted copies of the
//!   image for the weight gradient;
//! - other kernels: matrix products whose patch operand is read in place from a zero-padded
//!   copy of the image or gradient (`linalg::Windows`: with NHWC, a patch is k runs of k·cin
//!   contiguous floats), so no im2col matrix is built.
//!
//! Each op computes its forward pass on plain vectors and registers a backward closure with
//! `Tape::add_backward_op`, reading the output gradient and accumulating into the input,
//! weight and bias gradients through `Gradients::get_or_alloc_mut`.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::contiguous_vec;
use super::kernel::MR;
use super::linalg::{matmul, matmul_windows, Operand, PackedB, Windows};
use super::taps;
use super::winograd::{self, KernelGradient, TransformedKernel};

/// Spatial layout of a batch of NHWC images held as (batch·h·w, channels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub batch: usize,
    pub h: usize,
    pub w: usize,
}

impl Geometry {
    pub fn positions(&self) -> usize {
        self.batch * self.h * self.w
    }
}

pub(crate) type Act<T> = Tensor<(usize, usize), f32, Cpu, T>;

/// A convolution ('same' padding, stride 1) with what directly follows it in the layer list,
/// computed in one op so that the full-resolution activations never leave the thread's
/// cache: `relu` clips the output, `pool` max-pools it 2×2. `input_grad`: whether to
/// propagate into the input (not needed for the first layer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvBlock {
    pub kernel: usize,
    pub relu: bool,
    pub pool: bool,
    pub input_grad: bool,
}

/// Where each output's gradient goes: for pooled outputs the position (0-3) of the maximum in
/// its 2×2 window, for unpooled ones 0; `CLIPPED` where a ReLU zeroed the output.
const CLIPPED: u8 = u8::MAX;

/// Floats of one strip's full-resolution activations (or their gradients), kept in L2
/// until pooled.
const ACT_FLOATS: usize = 16 * 1024;

/// Floats of one strip of shifted planes going backward (single-channel weight gradient),
/// larger: the strip's positions are the depth of the product. Its strips also fix the
/// order in which that gradient is summed, which the committed results depend on.
const BACKWARD_STRIP_FLOATS: usize = 64 * 1024;

/// The convolution block on a batch of NHWC images (rows: positions, columns: channels)
/// with a (k·k·cin, cout) weight (rows ordered ky, kx, ci) and a bias. Returns the output
/// and its geometry (halved when pooled).
///
/// Work is split by image across threads; each image's convolution runs in strips of output
/// positions (or of 2×2 output blocks), with weights prepared once per batch (packed or
/// transformed), and is pooled before anything is written to the output. The backward pass
/// reads the input again rather than keeping patches or transformed blocks.
pub(crate) fn conv_block<T: Tape<f32, Cpu>>(
    x: Act<T>,
    geometry: Geometry,
    spec: ConvBlock,
    weight: &Tensor<(usize, usize), f32, Cpu>,
    bias: &Tensor<(usize,), f32, Cpu>,
) -> (Act<T>, Geometry) {
    let (x, mut tape) = x.split_tape();
    let shape = ConvShape {
        cin: x.shape().1,
        cout: bias.shape().0,
        kernel: spec.kernel,
        h: geometry.h,
        w: geometry.w,
    };
    let out_g = if spec.pool {
        Geometry {
            batch: geometry.batch,
            h: geometry.h / 2,
            w: geometry.w / 2,
        }
    } else {
        geometry
    };
    let out_per_image = out_g.h * out_g.w * shape.cout;
    let input = contiguous_vec(&x);
    let w = contiguous_vec(weight);
    let b = contiguous_vec(bias);
    let packed_w = shape.pack_weights(&w);
    let mut out = vec![0.0; out_g.batch * out_per_image];
    let mut routes = vec![0u8; if T::OWNS_TAPE { out.len() } else { 0 }];
    let items: Vec<_> = out
        .chunks_mut(out_per_image)
        .zip(
            routes
                .chunks_mut(out_per_image)
                .map(Some)
                .chain(std::iter::repeat_with(|| None)),
        )
        .zip(input.chunks(shape.per_image() * shape.cin))
        .collect();
    // One task per image: threads take images as they finish, so a core slowed by the
    // rest of the machine does not hold the other back at the end of the op.
    items
        .into_par_iter()
        .with_max_len(1)
        .for_each(|((out_img, mut routes_img), img)| {
            with_scratch(|scratch| {
                let routes = routes_img.as_deref_mut();
                shape.forward(img, spec.pool, (&packed_w, &b), out_img, routes, scratch);
            });
            // After pooling (max and ReLU commute, and there are 4× fewer values).
            if spec.relu {
                relu_in_place(out_img, routes_img);
            }
        });
    let y = x
        .device()
        .tensor_from_vec(out, (out_g.positions(), shape.cout));
    if T::OWNS_TAPE {
        let (x_ghost, w_ghost, b_ghost, y_ghost) =
            (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            // Taken out (not copied) while the input's gradient is written, then put back.
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            let flipped_w = spec.input_grad.then(|| shape.pack_flipped_weights(&w));
            let mut dx_all = Vec::new();
            if spec.input_grad {
                dx_all = std::mem::take(&mut **grads.get_or_alloc_mut(&x_ghost)?);
            }
            let dx_items = dx_all
                .chunks_mut(shape.per_image() * shape.cin)
                .map(Some)
                .chain(std::iter::repeat_with(|| None));
            let items: Vec<_> = dy
                .chunks(out_per_image)
                .zip(routes.chunks(out_per_image))
                .zip(input.chunks(shape.per_image() * shape.cin))
                .zip(dx_items)
                .collect();
            // Groups of images, taken as threads come free; each group sums its own weight
            // gradient, and the sums are added in group order, so the result does not
            // depend on which thread ran what.
            let partials: Vec<(Vec<f32>, Vec<f32>)> = image_groups(items, GRADIENT_GROUPS)
                .into_par_iter()
                .with_max_len(1)
                .map(|group| {
                    let mut dw = vec![0.0; shape.kk() * shape.cout];
                    let mut db = vec![0.0; shape.cout];
                    with_scratch(|scratch| {
                        scratch.kernel_grad.start(shape.cin, shape.cout);
                        for (((dy_img, routes_img), img), dx_img) in group {
                            shape.backward(
                                img,
                                (dy_img, routes_img, spec),
                                flipped_w.as_ref().zip(dx_img),
                                (&mut dw, &mut db),
                                scratch,
                            );
                        }
                        scratch.kernel_grad.finish(&mut dw);
                    });
                    (dw, db)
                })
                .collect();
            if spec.input_grad {
                **grads.get_or_alloc_mut(&x_ghost)? = dx_all;
            }
            **grads.get_or_alloc_mut(&y_ghost)? = dy;
            add_partials(
                grads.get_or_alloc_mut(&w_ghost)?,
                partials.iter().map(|p| &p.0),
            );
            add_partials(
                grads.get_or_alloc_mut(&b_ghost)?,
                partials.iter().map(|p| &p.1),
            );
            Ok(())
        });
    }
    (y.put_tape(tape), out_g)
}

/// Adds per-group sums into `total`, in parallel over slices of it and in group order.
fn add_partials<'a>(total: &mut [f32], parts: impl Iterator<Item = &'a Vec<f32>>) {
    const SLICE: usize = 8192;
    let parts: Vec<&Vec<f32>> = parts.collect();
    total
        .par_chunks_mut(SLICE)
        .enumerate()
        .for_each(|(i, total)| {
            for part in &parts {
                for (t, p) in total.iter_mut().zip(&part[i * SLICE..]) {
                    *t += p;
                }
            }
        });
}

/// Weight-gradient groups of a batch (or part of one) in the backward pass: enough for
/// threads to even out when one runs slower, few enough that the per-group sums stay cheap
/// to transform and add. A constant, not a multiple of the number of threads, so that the
/// order of summation (and so the results) does not depend on the machine's core count.
const GRADIENT_GROUPS: usize = 4;

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// This thread's working buffers (kept between ops, so they are allocated once).
fn with_scratch<R>(work: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|scratch| work(&mut scratch.borrow_mut()))
}

/// Per-thread working buffers: a strip of patches, full-resolution activations (or their
/// gradients), a zero-padded image (or gradient), the window starts into it, a packed
/// output gradient, and the buffers of the Winograd products.
#[derive(Default)]
struct Scratch {
    cols: Vec<f32>,
    act: Vec<f32>,
    padded: Vec<f32>,
    starts: Vec<usize>,
    packed: PackedB,
    winograd: winograd::Buffers,
    kernel_grad: KernelGradient,
}

/// A convolution's weights prepared once per batch for the products that use them.
enum Weights {
    /// Packed for a direct product with the patches.
    Direct(PackedB),
    /// Transformed for Winograd's F(2×2, 3×3).
    Winograd(TransformedKernel),
    /// As they are, (k·k, cout), for a single-channel image ([`taps::convolve`]).
    Taps(Vec<f32>),
}

/// Sizes of one convolution over one image.
#[derive(Debug, Clone, Copy)]
struct ConvShape {
    cin: usize,
    cout: usize,
    kernel: usize,
    h: usize,
    w: usize,
}

impl ConvShape {
    fn kk(&self) -> usize {
        self.kernel * self.kernel * self.cin
    }

    fn per_image(&self) -> usize {
        self.h * self.w
    }

    /// Strips (first position, positions) of one pass over the image, each strip's patches
    /// at most about `budget` floats and its activations about `ACT_FLOATS`. Pooled, they
    /// are whole pairs of image rows (and a multiple of the tile height where that costs
    /// at most twice the budget), so that each strip pools into its own output rows; an
    /// odd last row, which pooling drops, is never computed. Otherwise the positions are
    /// split evenly in multiples of the tile height.
    fn strips(&self, pooled: bool, budget: usize) -> Vec<(usize, usize)> {
        let (kk, total) = (self.kk(), self.per_image());
        if pooled {
            let unit = 2 * self.w;
            let units = self.h / 2;
            let mut per = (budget / (unit * kk))
                .min(ACT_FLOATS / (unit * self.cout))
                .max(1);
            if !(unit * per).is_multiple_of(MR)
                && per.next_multiple_of(3) * unit * kk <= budget.saturating_mul(2)
            {
                per = per.next_multiple_of(3);
            }
            return (0..units)
                .step_by(per)
                .map(|u0| (u0 * unit, per.min(units - u0) * unit))
                .collect();
        }
        let most = (budget / kk).min(ACT_FLOATS / self.cout).max(MR);
        let rows = total
            .div_ceil(total.div_ceil(most).max(1))
            .next_multiple_of(MR)
            .max(MR);
        (0..total)
            .step_by(rows)
            .map(|p0| (p0, rows.min(total - p0)))
            .collect()
    }

    fn pad(&self) -> usize {
        self.kernel / 2
    }

    /// Whether the patches are read in place from a zero-padded copy of the image (as
    /// windows), rather than copied out: with more than one channel, where each window row
    /// is k·cin contiguous floats.
    fn windowed(&self) -> bool {
        self.cin > 1
    }

    /// Whether a convolution with `cin` input channels runs by Winograd's F(2×2, 3×3):
    /// 3×3 kernels over more than one channel (a single-channel image has too few
    /// products to gain from it; it runs tap by tap).
    fn winograd(&self, cin: usize) -> bool {
        self.kernel == 3 && cin > 1
    }

    /// The weights prepared for the forward product (packed in blocks aligned to window
    /// rows, transformed, or as they are for a single-channel image).
    fn pack_weights(&self, w: &[f32]) -> Weights {
        if self.cin == 1 {
            return Weights::Taps(w.to_vec());
        }
        if self.winograd(self.cin) {
            return Weights::Winograd(TransformedKernel::new(w, self.cin, self.cout));
        }
        let b = Operand::rows(w, self.cout);
        Weights::Direct(PackedB::aligned(
            b,
            self.kk(),
            self.cout,
            self.kernel * self.cin,
        ))
    }

    /// The weights for the input gradient, which is the 'same' convolution of the output
    /// gradient with the kernel turned by 180° and its channel axes swapped: rows
    /// (ty, tx, co), columns ci, from w[(k−1−ty, k−1−tx, ci), co].
    fn pack_flipped_weights(&self, w: &[f32]) -> Weights {
        let (k, cin, cout) = (self.kernel, self.cin, self.cout);
        let mut flipped = vec![0.0; k * k * cout * cin];
        for (tap, rows) in flipped.chunks_mut(cout * cin).enumerate() {
            let source_tap = k * k - 1 - tap;
            for (co, row) in rows.chunks_mut(cin).enumerate() {
                for (ci, v) in row.iter_mut().enumerate() {
                    *v = w[(source_tap * cin + ci) * cout + co];
                }
            }
        }
        if self.winograd(cout) {
            return Weights::Winograd(TransformedKernel::new(&flipped, cout, cin));
        }
        Weights::Direct(PackedB::aligned(
            Operand::rows(&flipped, cin),
            k * k * cout,
            cin,
            k * cout,
        ))
    }

    /// Window starts (in a zero-padded copy with `c` channels) of positions p0..p0+rows.
    fn window_starts(&self, c: usize, (p0, rows): (usize, usize), starts: &mut Vec<usize>) {
        let pw = self.w + 2 * self.pad();
        starts.clear();
        starts.extend((p0..p0 + rows).map(|p| (p / self.w * pw + p % self.w) * c));
    }

    /// The windows of a zero-padded copy with `c` channels, for a product with packed
    /// weights of k·k·c rows.
    fn windows<'a>(&self, padded: &'a [f32], c: usize, starts: &'a [usize]) -> Windows<'a> {
        Windows {
            data: padded,
            starts,
            step: 1,
            seg_len: self.kernel * c,
            seg_stride: (self.w + 2 * self.pad()) * c,
        }
    }

    /// Copies `rows` image rows (w×c each) into `padded` with a zero border of `pad()`
    /// around an h×w image (rows past `rows` stay zero).
    fn pad_into(&self, src: &[f32], c: usize, rows: usize, padded: &mut Vec<f32>) {
        let p = self.pad();
        let pw = self.w + 2 * p;
        padded.clear();
        padded.resize((self.h + 2 * p) * pw * c, 0.0);
        for (y, row) in src.chunks(self.w * c).take(rows).enumerate() {
            padded[((y + p) * pw + p) * c..][..self.w * c].copy_from_slice(row);
        }
    }

    /// One image's convolution (bias included), pooled when `pooled`, into `out`, with the
    /// pooling routes when given.
    fn forward(
        &self,
        img: &[f32],
        pooled: bool,
        (weights, bias): (&Weights, &[f32]),
        out: &mut [f32],
        mut routes: Option<&mut [u8]>,
        scratch: &mut Scratch,
    ) {
        let cout = self.cout;
        let Scratch {
            act,
            padded,
            starts,
            winograd,
            ..
        } = scratch;
        let output = |out, routes| {
            if pooled {
                Output::Pooled { out, routes }
            } else {
                Output::Full {
                    out,
                    accumulate: false,
                }
            }
        };
        let weights = match weights {
            Weights::Winograd(kernel) => {
                let dims = (self.h, self.w, self.h);
                let output = output(out, routes);
                winograd::convolve(img, dims, kernel, Some(bias), output, winograd);
                return;
            }
            Weights::Taps(taps) => {
                let dims = (self.h, self.w, self.kernel);
                taps::convolve(img, dims, (taps, bias), output(out, routes), padded);
                return;
            }
            Weights::Direct(packed) => packed,
        };
        // Read in place, the patches limit the strips no more.
        self.pad_into(img, self.cin, self.h, padded);
        for (p0, rows) in self.strips(pooled, usize::MAX) {
            let mut fill = |dst: &mut [f32]| {
                for row in dst.chunks_mut(cout) {
                    row.copy_from_slice(bias);
                }
                self.window_starts(self.cin, (p0, rows), starts);
                let windows = self.windows(padded, self.cin, starts);
                matmul_windows(dst, true, &windows, weights);
            };
            if pooled {
                act.resize(rows * cout, 0.0);
                let act = &mut act[..rows * cout];
                fill(act);
                let (o0, n) = self.pooled_range(p0, rows);
                let routes = routes.as_deref_mut().map(|r| &mut r[o0..o0 + n]);
                pool2(
                    act,
                    rows / self.w,
                    self.w,
                    cout,
                    &mut out[o0..o0 + n],
                    routes,
                );
            } else {
                fill(&mut out[p0 * cout..(p0 + rows) * cout]);
            }
        }
    }

    /// The pooled outputs (first value, values) that the strip p0..p0+rows (whole pairs of
    /// image rows) pools into.
    fn pooled_range(&self, p0: usize, rows: usize) -> (usize, usize) {
        let per_pair = (self.w / 2) * self.cout;
        (p0 / (2 * self.w) * per_pair, rows / (2 * self.w) * per_pair)
    }

    /// The gradient with respect to the pooled strip's convolution outputs (before ReLU and
    /// pooling): each pooled output's gradient goes to the position its route names.
    fn route_back_pooled(
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
    /// gradient to the thread's `kernel_grad` sum instead) and, given the flipped weights
    /// and the image's input-gradient slice, its input gradient; from the block output's
    /// gradient and the routes recorded going forward.
    fn backward(
        &self,
        img: &[f32],
        (dy, routes, spec): (&[f32], &[u8], ConvBlock),
        input_grad: Option<(&Weights, &mut [f32])>,
        (dw, db): (&mut [f32], &mut [f32]),
        scratch: &mut Scratch,
    ) {
        let (kk, cout) = (self.kk(), self.cout);
        let Scratch {
            cols,
            act,
            padded,
            starts,
            packed,
            winograd,
            kernel_grad,
        } = scratch;
        // The gradient of the convolution's outputs (before ReLU and pooling) at every
        // position the forward pass computed (pooling skips an odd last row).
        let computed = if spec.pool {
            2 * (self.h / 2) * self.w
        } else {
            self.per_image()
        };
        let dconv = if spec.pool {
            self.route_back_pooled(dy, routes, (0, computed), act);
            &act[..]
        } else if spec.relu {
            act.clear();
            let masked = dy.iter().zip(routes);
            act.extend(masked.map(|(g, r)| if *r == CLIPPED { 0.0 } else { *g }));
            &act[..]
        } else {
            dy
        };
        for row in dconv.chunks(cout) {
            for (d, g) in db.iter_mut().zip(row) {
                *d += g;
            }
        }
        if self.winograd(self.cin) {
            kernel_grad.add_image(img, dconv, (self.h, self.w), spec.pool);
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
            for (p0, rows) in self.strips(spec.pool, BACKWARD_STRIP_FLOATS) {
                let grad = Operand::rows(&dconv[p0 * cout..(p0 + rows) * cout], cout);
                cols.resize(rows * kk, 0.0);
                self.shifted_planes(img, p0, rows, cols);
                let patches_t = Operand::rows(cols, rows);
                matmul(kk, cout, rows, dw, true, patches_t, grad);
            }
        }
        match input_grad {
            Some((Weights::Winograd(flipped), dx)) => {
                let output = Output::Full {
                    out: dx,
                    accumulate: true,
                };
                let dims = (self.h, self.w, computed / self.w);
                winograd::convolve(dconv, dims, flipped, None, output, winograd);
            }
            Some((Weights::Direct(flipped), dx)) => {
                self.pad_into(dconv, cout, computed / self.w, padded);
                self.window_starts(cout, (0, self.per_image()), starts);
                matmul_windows(dx, true, &self.windows(padded, cout, starts), flipped);
            }
            Some((Weights::Taps(_), _)) => {
                unreachable!("flipped weights are packed or transformed")
            }
            None => {}
        }
    }

    /// For a single-channel image: row (ky·k + kx) of `planes` holds, for each position of
    /// p0..p0+rows, the pixel that kernel tap (ky, kx) reads (0 outside the image).
    fn shifted_planes(&self, img: &[f32], p0: usize, rows: usize, planes: &mut [f32]) {
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

/// Where a convolution's outputs go.
pub(crate) enum Output<'a> {
    /// Max-pooled 2×2 ((h/2)·(w/2)·cout), with the route of each maximum (first corner
    /// holding it, corners numbered row by row) when given.
    Pooled {
        out: &'a mut [f32],
        routes: Option<&'a mut [u8]>,
    },
    /// Every output (h·w·cout), written or added to what is there.
    Full {
        out: &'a mut [f32],
        accumulate: bool,
    },
}

/// The 2×2 output blocks over an h×w image, (rows, columns): when `pooled`, exactly the
/// pooling windows (an odd last row or column is dropped), otherwise enough to cover every
/// output (edge blocks hang over the border).
pub(crate) fn output_blocks(h: usize, w: usize, pooled: bool) -> (usize, usize) {
    if pooled {
        (h / 2, w / 2)
    } else {
        (h.div_ceil(2), w.div_ceil(2))
    }
}

impl Output<'_> {
    /// The 2×2 output blocks over an h×w image ([`output_blocks`]).
    pub(crate) fn blocks(&self, h: usize, w: usize) -> (usize, usize) {
        output_blocks(h, w, matches!(self, Output::Pooled { .. }))
    }

    /// Pools or stores the four corners (row by row) of output block (by, bx) of an h×w
    /// output with `c` channels, for the `L` channels from `ch`.
    #[inline(always)]
    pub(crate) fn emit_block<const L: usize>(
        &mut self,
        corners: &[[f32; L]; 4],
        (by, bx, ch): (usize, usize, usize),
        c: usize,
        (h, w): (usize, usize),
    ) {
        match self {
            Output::Pooled { out, routes } => {
                let o = (by * (w / 2) + bx) * c + ch;
                let routes = routes.as_deref_mut().map(|r| &mut r[o..o + L]);
                let [c0, c1, c2, c3] = corners;
                pool_corners([c0, c1, c2, c3], &mut out[o..o + L], routes);
            }
            Output::Full { out, accumulate } => {
                for (corner, values) in corners.iter().enumerate() {
                    let (oy, ox) = (2 * by + corner / 2, 2 * bx + corner % 2);
                    if oy >= h || ox >= w {
                        continue;
                    }
                    let dst = &mut out[(oy * w + ox) * c + ch..][..L];
                    for l in 0..L {
                        dst[l] = if *accumulate {
                            dst[l] + values[l]
                        } else {
                            values[l]
                        };
                    }
                }
            }
        }
    }
}

/// The maximum of four corners (positions numbered row by row in a 2×2 window), channel
/// by channel, into `out`, and in `routes` (when given) which corner first holds it.
/// Branch-free: the comparisons are coin flips to a branch predictor.
#[inline(always)]
fn pool_corners(corners: [&[f32]; 4], out: &mut [f32], routes: Option<&mut [u8]>) {
    let n = out.len();
    let [c0, c1, c2, c3] = corners.map(|corner| &corner[..n]);
    for ch in 0..n {
        out[ch] = c0[ch].max(c1[ch]).max(c2[ch].max(c3[ch]));
    }
    if let Some(routes) = routes {
        // The first corner holding the maximum: 0 if c0 does, else 1 if c1 does, ...
        for (ch, route) in routes[..n].iter_mut().enumerate() {
            let m = out[ch];
            let not0 = (c0[ch] != m) as u8;
            let not1 = not0 & (c1[ch] != m) as u8;
            let not2 = not1 & (c2[ch] != m) as u8;
            *route = not0 + not1 + not2;
        }
    }
}

/// Max-pools one image (h×w×c, NHWC) 2×2 into `out` ((h/2)×(w/2)×c); records in `routes`
/// (when given) which of the four positions held the maximum (first one on ties). Loops
/// run along the channels so that they vectorise.
fn pool2(img: &[f32], h: usize, w: usize, c: usize, out: &mut [f32], routes: Option<&mut [u8]>) {
    let (oh, ow) = (h / 2, w / 2);
    let mut routes = routes;
    for oy in 0..oh {
        for ox in 0..ow {
            let o = (oy * ow + ox) * c;
            let corner = |r: usize| &img[((2 * oy + (r >> 1)) * w + 2 * ox + (r & 1)) * c..][..c];
            let routes = routes.as_deref_mut().map(|r| &mut r[o..o + c]);
            pool_corners([0, 1, 2, 3].map(corner), &mut out[o..o + c], routes);
        }
    }
}

/// ReLU on one image's outputs, marking the clipped ones in `routes` (when given).
fn relu_in_place(values: &mut [f32], routes: Option<&mut [u8]>) {
    match routes {
        Some(routes) => {
            for (v, r) in values.iter_mut().zip(routes) {
                if *v <= 0.0 {
                    *v = 0.0;
                    *r = CLIPPED;
                }
            }
        }
        None => values.iter_mut().for_each(|v| *v = v.max(0.0)),
    }
}

/// Splits per-image items into at most `groups` contiguous groups.
fn image_groups<I>(items: Vec<I>, groups: usize) -> Vec<Vec<I>> {
    let per_task = items.len().div_ceil(groups.max(1)).max(1);
    let mut groups: Vec<Vec<I>> = Vec::new();
    for item in items {
        if groups.last().is_none_or(|g| g.len() == per_task) {
            groups.push(Vec::with_capacity(per_task));
        }
        groups.last_mut().expect("just pushed").push(item);
    }
    groups
}

/// 2×2 max-pooling with stride 2 on its own (when the layer before it is not a convolution);
/// odd sizes drop the last row/column (15 → 7). Returns the pooled activations and their
/// geometry.
pub(crate) fn maxpool2<T: Tape<f32, Cpu>>(x: Act<T>, g: Geometry) -> (Act<T>, Geometry) {
    let (x, mut tape) = x.split_tape();
    let c = x.shape().1;
    let out_g = Geometry {
        batch: g.batch,
        h: g.h / 2,
        w: g.w / 2,
    };
    let data = contiguous_vec(&x);
    let (in_per_image, out_per_image) = (g.h * g.w * c, out_g.h * out_g.w * c);
    let mut out = vec![0.0; out_g.positions() * c];
    let mut routes = vec![0u8; out.len()];
    out.par_chunks_mut(out_per_image)
        .zip(routes.par_chunks_mut(out_per_image))
        .zip(data.par_chunks(in_per_image))
        .for_each(|((out, routes), img)| {
            pool2(img, g.h, g.w, c, out, Some(routes));
        });
    let y = x.device().tensor_from_vec(out, (out_g.positions(), c));
    if T::OWNS_TAPE {
        let (x_ghost, y_ghost) = (x.ghost(), y.ghost());
        let shape = ConvShape {
            cin: c,
            cout: c,
            kernel: 1,
            h: g.h,
            w: g.w,
        };
        tape.add_backward_op(move |grads| {
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            let dx = grads.get_or_alloc_mut(&x_ghost)?;
            dx.par_chunks_mut(in_per_image)
                .zip(dy.par_chunks(out_per_image))
                .zip(routes.par_chunks(out_per_image))
                .for_each(|((dx, dy), routes)| {
                    let mut dconv = Vec::new();
                    let rows = 2 * (g.h / 2) * g.w;
                    shape.route_back_pooled(dy, routes, (0, rows), &mut dconv);
                    for (d, g) in dx.iter_mut().zip(&dconv) {
                        *d += g;
                    }
                });
            **grads.get_or_alloc_mut(&y_ghost)? = dy;
            Ok(())
        });
    }
    (y.put_tape(tape), out_g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.normal() as f32).collect()
    }

    /// Loss = Σ y·r for fixed random r, so dLoss/dy = r; compares analytic gradients of x, w
    /// and b with central finite differences.
    #[test]
    fn conv_gradients_match_finite_differences() {
        check_conv_gradients(false, false, (3, 5, 4), 3);
    }

    #[test]
    fn fused_relu_conv_gradients_match_finite_differences() {
        check_conv_gradients(true, false, (3, 5, 4), 3);
    }

    #[test]
    fn fused_relu_and_pool_gradients_match_finite_differences() {
        check_conv_gradients(true, true, (3, 5, 4), 3);
        check_conv_gradients(false, true, (2, 7, 6), 5);
        check_conv_gradients(true, true, (4, 7, 5), 3); // odd width: a dropped column
    }

    /// One input channel: the patches are built as shifted planes (transposed).
    #[test]
    fn single_channel_patches_give_the_same_gradients() {
        check_conv_gradients(false, false, (1, 7, 6), 3);
        check_conv_gradients(true, true, (1, 9, 8), 5);
    }

    /// Wide layers (several strips per image, weight blocks of several window rows),
    /// against the definition computed in f64: output, and the gradients of Σ y·r. (Finite
    /// differences in f32 are too noisy at this width.) 3×3 kernels run by Winograd, 5×5
    /// ones by the direct product.
    #[test]
    fn wide_layers_match_the_definition_in_f64() {
        let direct = ConvShape {
            cin: 32,
            cout: 200,
            kernel: 5,
            h: 11,
            w: 9,
        };
        assert!(!direct.winograd(direct.cin));
        assert!(direct.strips(false, usize::MAX).len() > 1);
        check_against_definition((64, 200), (15, 13), 3);
        check_against_definition((32, 200), (11, 9), 5);
        check_against_definition((24, 17), (9, 8), 5);
        // One input channel: tap by tap, 16 output channels at a time and the rest one by one.
        check_against_definition((1, 37), (9, 8), 3);
        check_against_definition((1, 20), (7, 6), 5);
    }

    fn check_against_definition((cin, cout): (usize, usize), (h, w): (usize, usize), k: usize) {
        let dev = Cpu::seed_from_u64(0);
        let mut rng = Rng::new(11);
        let g = Geometry { batch: 2, h, w };
        let pad = k / 2;
        let x = random(g.positions() * cin, &mut rng);
        let wt = random(k * k * cin * cout, &mut rng);
        let bias = random(cout, &mut rng);
        let r = random(g.positions() * cout, &mut rng);
        let mut y = vec![0.0f64; g.positions() * cout];
        let mut dx = vec![0.0f64; x.len()];
        let mut dw = vec![0.0f64; wt.len()];
        for b in 0..g.batch {
            for oy in 0..h {
                for ox in 0..w {
                    let o = (b * h + oy) * w + ox;
                    for co in 0..cout {
                        y[o * cout + co] = bias[co] as f64;
                    }
                    for ky in 0..k {
                        for kx in 0..k {
                            let (iy, ix) =
                                ((oy + ky).wrapping_sub(pad), (ox + kx).wrapping_sub(pad));
                            if iy >= h || ix >= w {
                                continue;
                            }
                            let i = (b * h + iy) * w + ix;
                            for ci in 0..cin {
                                for co in 0..cout {
                                    let wi = ((ky * k + kx) * cin + ci) * cout + co;
                                    y[o * cout + co] += x[i * cin + ci] as f64 * wt[wi] as f64;
                                    dw[wi] += x[i * cin + ci] as f64 * r[o * cout + co] as f64;
                                    dx[i * cin + ci] += wt[wi] as f64 * r[o * cout + co] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        let xt = dev.tensor_from_vec(x, (g.positions(), cin));
        let w_t = dev.tensor_from_vec(wt, (k * k * cin, cout));
        let b_t = dev.tensor_from_vec(bias, (cout,));
        let spec = ConvBlock {
            kernel: k,
            relu: false,
            pool: false,
            input_grad: true,
        };
        let (out, _) = conv_block(xt.leaky_trace(), g, spec, &w_t, &b_t);
        let close = |got: &[f32], want: &[f64], what: &str| {
            for (i, (a, b)) in got.iter().zip(want).enumerate() {
                assert!(
                    (*a as f64 - b).abs() < 1e-4 * (1.0 + b.abs()) * (cin as f64).sqrt(),
                    "{what}[{i}]: {a} vs {b}"
                );
            }
        };
        close(&out.as_vec(), &y, "y");
        let rt = dev.tensor_from_vec(r, (g.positions(), cout));
        let grads = (out * rt).sum().backward();
        close(&grads.get(&xt).as_vec(), &dx, "dx");
        close(&grads.get(&w_t).as_vec(), &dw, "dw");
    }

    fn check_conv_gradients(relu: bool, pool: bool, (cin, h, w): (usize, usize, usize), k: usize) {
        let dev = Cpu::seed_from_u64(0);
        let mut rng = Rng::new(5);
        let g = Geometry { batch: 2, h, w };
        let cout = 3;
        let spec = ConvBlock {
            kernel: k,
            relu,
            pool,
            input_grad: true,
        };
        let out_positions = if pool {
            2 * (h / 2) * (w / 2)
        } else {
            g.positions()
        };
        let x0 = random(g.positions() * cin, &mut rng);
        let w0 = random(k * k * cin * cout, &mut rng);
        let b0 = random(cout, &mut rng);
        let r = random(out_positions * cout, &mut rng);
        let loss_of = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
            let xt = dev.tensor_from_vec(x.to_vec(), (g.positions(), cin));
            let wt = dev.tensor_from_vec(w.to_vec(), (k * k * cin, cout));
            let bt = dev.tensor_from_vec(b.to_vec(), (cout,));
            let y = conv_block(xt, g, spec, &wt, &bt).0.as_vec();
            y.iter()
                .zip(&r)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum()
        };
        let xt = dev.tensor_from_vec(x0.clone(), (g.positions(), cin));
        let wt = dev.tensor_from_vec(w0.clone(), (k * k * cin, cout));
        let bt = dev.tensor_from_vec(b0.clone(), (cout,));
        let (y, out_g) = conv_block(xt.leaky_trace(), g, spec, &wt, &bt);
        assert_eq!(out_g.positions(), out_positions);
        let rt = dev.tensor_from_vec(r.clone(), (out_positions, cout));
        let grads = (y * rt).sum().backward();
        let analytic = [
            grads.get(&xt).as_vec(),
            grads.get(&wt).as_vec(),
            grads.get(&bt).as_vec(),
        ];
        // Small enough that no bump crosses a ReLU kink or swaps a pooling window's maximum.
        let eps = 1e-3;
        for (which, base) in [(0, &x0), (1, &w0), (2, &b0)] {
            for i in (0..base.len()).step_by(base.len() / 150 + 1) {
                let bump = |d: f32| {
                    let mut v = base.clone();
                    v[i] += d;
                    match which {
                        0 => loss_of(&v, &w0, &b0),
                        1 => loss_of(&x0, &v, &b0),
                        _ => loss_of(&x0, &w0, &v),
                    }
                };
                let numeric = (bump(eps) - bump(-eps)) / (2.0 * eps as f64);
                let a = analytic[which][i] as f64;
                assert!(
                    (a - numeric).abs() < 1e-2 * (1.0 + numeric.abs()),
                    "param {which}[{i}]: {a} vs {numeric}"
                );
            }
        }
    }

    /// Shifted planes (one input channel) hold the transpose of the ordinary patch matrix,
    /// for strips that start and end inside image rows.
    #[test]
    fn shifted_planes_are_the_transposed_patches() {
        let mut rng = Rng::new(3);
        for kernel in [3, 5] {
            let shape = ConvShape {
                cin: 1,
                cout: 1,
                kernel,
                h: 6,
                w: 7,
            };
            let img = random(42, &mut rng);
            let kk = shape.kk();
            for (p0, rows) in [(0, 42), (5, 11), (13, 29)] {
                // The patch matrix by its definition.
                let mut cols = vec![0.0; rows * kk];
                for (r, row) in cols.chunks_mut(kk).enumerate() {
                    let (oy, ox) = ((p0 + r) / shape.w, (p0 + r) % shape.w);
                    for (t, v) in row.iter_mut().enumerate() {
                        let (iy, ix) = (oy + t / kernel, ox + t % kernel);
                        let (iy, ix) = (iy.wrapping_sub(kernel / 2), ix.wrapping_sub(kernel / 2));
                        if iy < shape.h && ix < shape.w {
                            *v = img[iy * shape.w + ix];
                        }
                    }
                }
                let mut planes = vec![f32::NAN; rows * kk];
                shape.shifted_planes(&img, p0, rows, &mut planes);
                for r in 0..rows {
                    for t in 0..kk {
                        assert_eq!(
                            planes[t * rows + r],
                            cols[r * kk + t],
                            "k{kernel} p{p0}+{r} tap {t}"
                        );
                    }
                }
            }
        }
    }

    /// The fused block computes exactly what its layers compute one after another (by
    /// Winograd and, for one input channel, tap by tap).
    #[test]
    fn fused_block_equals_convolution_then_relu_then_pool() {
        for (cin, cout) in [(4, 5), (1, 21)] {
            let dev = Cpu::seed_from_u64(0);
            let mut rng = Rng::new(8);
            let g = Geometry {
                batch: 3,
                h: 7,
                w: 6,
            };
            let x = random(g.positions() * cin, &mut rng);
            let x = dev.tensor_from_vec(x, (g.positions(), cin));
            let w = dev.tensor_from_vec(random(9 * cin * cout, &mut rng), (9 * cin, cout));
            let b = dev.tensor_from_vec(random(cout, &mut rng), (cout,));
            let spec = |relu, pool| ConvBlock {
                kernel: 3,
                relu,
                pool,
                input_grad: true,
            };
            let (fused, fused_g) = conv_block(x.clone(), g, spec(true, true), &w, &b);
            let (plain, _) = conv_block(x, g, spec(false, false), &w, &b);
            let (stepwise, step_g) = maxpool2(plain.relu(), g);
            assert_eq!(fused_g, step_g);
            assert_eq!(fused.as_vec(), stepwise.as_vec(), "{cin} → {cout} channels");
        }
    }

    #[test]
    fn maxpool_routes_gradients_to_the_maximum_and_floors_odd_sizes() {
        let dev = Cpu::seed_from_u64(0);
        let g = Geometry {
            batch: 1,
            h: 3,
            w: 5,
        };
        let x: Vec<f32> = (0..15).map(|v| ((v * 7) % 11) as f32).collect();
        let xt = dev.tensor_from_vec(x.clone(), (15usize, 1usize));
        let (y, out_g) = maxpool2(xt.leaky_trace(), g);
        assert_eq!(
            out_g,
            Geometry {
                batch: 1,
                h: 1,
                w: 2
            }
        );
        let values = y.as_vec();
        assert_eq!(
            values,
            vec![
                x[0].max(x[1]).max(x[5]).max(x[6]),
                x[2].max(x[3]).max(x[7]).max(x[8])
            ]
        );
        let grads = y.sum().backward();
        let dx = grads.get(&xt).as_vec();
        assert_eq!(dx.iter().sum::<f32>(), 2.0);
        for (i, d) in dx.iter().enumerate() {
            if *d == 1.0 {
                assert!(values.contains(&x[i]));
            }
        }
    }
}
