//! 2-D convolution ('same' padding, stride 1), with the ReLU and 2×2 max-pool that follow
//! it, as one op on dfdx's tape.
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

use std::sync::Mutex;

use dfdx::prelude::*;

use super::blocks::{pool2, relu_in_place, Output};
use super::conv_backward::{backward_batch, Routed};
use super::copies::copied;
use super::kernel::MR;
use super::layout::{Act, Geometry};
use super::linalg::{matmul_windows, Operand, PackedB, Windows};
use super::taps;
use super::winograd::{self, KernelGradient, TransformedKernel};
use super::{filled_in_parallel, zeros};

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

/// Floats of one strip's full-resolution activations (or their gradients), kept in L2
/// until pooled.
const ACT_FLOATS: usize = 16 * 1024;

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
    let input = copied(&x);
    let w = copied(weight);
    let ConvForward {
        shape,
        out,
        routes,
        geometry: out_g,
    } = conv_block_forward(
        (&input, x.shape().1),
        geometry,
        spec,
        (&w, &copied(bias)),
        T::OWNS_TAPE,
    );
    let out_per_image = out_g.h * out_g.w * shape.cout;
    let y = x
        .device()
        .tensor_from_vec(out, (out_g.positions(), shape.cout));
    if T::OWNS_TAPE {
        let (x_ghost, w_ghost, b_ghost, y_ghost) =
            (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            // Taken out (not copied) while the input's gradient is written, then put back.
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            let mut dx = take_input_gradient!(grads, &x_ghost, spec.input_grad);
            let routed = Routed {
                shape,
                dy: &dy,
                routes: &routes,
                spec,
                out_per_image,
            };
            let partials = backward_batch(shape, &input, &w, &routed, dx.as_deref_mut());
            store_gradients!(
                grads,
                (&x_ghost, &w_ghost, &b_ghost, &y_ghost),
                (dx, dy),
                &partials
            )
        });
    }
    (y.put_tape(tape), out_g)
}

/// What [`conv_block_forward`] gives: the convolution's shape, its output (geometry
/// `geometry`), and, when asked for, which input each pooled output came from.
pub(crate) struct ConvForward {
    pub(crate) shape: ConvShape,
    pub(crate) out: Vec<f32>,
    pub(crate) routes: Vec<u8>,
    pub(crate) geometry: Geometry,
}

/// The convolution block's forward pass on plain values: `input`, NHWC images of
/// `geometry` with `cin` channels (rows: positions, columns: channels), a (k·k·cin, cout)
/// weight and a bias.
/// `routes`: keep what the backward pass needs to route gradients through the pooling.
/// [`conv_block`] runs it on its input's copy; scoring runs it on the values directly
/// (`scoring_prefix`), so the same numbers either way.
pub(crate) fn conv_block_forward(
    (input, cin): (&[f32], usize),
    geometry: Geometry,
    spec: ConvBlock,
    (w, b): (&[f32], &[f32]),
    routes: bool,
) -> ConvForward {
    let shape = ConvShape {
        cin,
        cout: b.len(),
        kernel: spec.kernel,
        h: geometry.h,
        w: geometry.w,
    };
    let out_g = geometry.pooled_if(spec.pool);
    let (per_in, out_per_image) = (shape.per_image() * cin, out_g.h * out_g.w * shape.cout);
    let packed_w = shape.pack_weights(w);
    let mut kept = zeros(if routes {
        out_g.batch * out_per_image
    } else {
        0
    });
    let kept_per_image: Vec<Mutex<&mut [u8]>> =
        kept.chunks_mut(out_per_image).map(Mutex::new).collect();
    // One task per image (threads take images as they finish, so a core slowed by the rest
    // of the machine does not hold the other back at the end of the op), whose output is
    // zeroed right before it is written, while it is in the cache: zeroed all at once, a
    // batch's outputs made one more pass through memory.
    let (out, _) = filled_in_parallel(out_g.batch * out_per_image, out_per_image, |image, out| {
        let mut routes = kept_per_image
            .get(image)
            .map(|r| r.lock().unwrap_or_else(|e| e.into_inner()));
        let img = &input[image * per_in..][..per_in];
        with_scratch(|scratch| {
            let routes = routes.as_deref_mut().map(|r| &mut **r);
            shape.forward(img, spec.pool, (&packed_w, b), out, routes, scratch);
        });
        // After pooling (max and ReLU commute, and there are 4× fewer values).
        if spec.relu {
            relu_in_place(out, routes.as_deref_mut().map(|r| &mut **r));
        }
    });
    drop(kept_per_image);
    ConvForward {
        shape,
        out,
        routes: kept,
        geometry: out_g,
    }
}

/// Puts a convolution's gradients back after its backward pass (a macro: dfdx keeps the
/// ghost tensors' type private): the input's, when computed, and the output's, taken out
/// while they were read and written, and the weight and bias sums of each image group
/// added in group order.
macro_rules! store_gradients {
    ($grads:expr, ($x:expr, $w:expr, $b:expr, $y:expr), ($dx:expr, $dy:expr), $partials:expr) => {{
        if let Some(dx) = $dx {
            **$grads.get_or_alloc_mut($x)? = dx;
        }
        **$grads.get_or_alloc_mut($y)? = $dy;
        let partials: &[(Vec<f32>, Vec<f32>)] = $partials;
        $crate::groups::add_partials($grads.get_or_alloc_mut($w)?, partials.iter().map(|p| &p.0));
        $crate::groups::add_partials($grads.get_or_alloc_mut($b)?, partials.iter().map(|p| &p.1));
        Ok(())
    }};
}
pub(crate) use store_gradients;

/// The input's gradient taken out of `grads` when `$wanted` (to be added to, and put back
/// by [`store_gradients!`]); a macro for the same reason as that one.
macro_rules! take_input_gradient {
    ($grads:expr, $x:expr, $wanted:expr) => {
        $wanted
            .then(|| {
                $grads
                    .get_or_alloc_mut($x)
                    .map(|g| std::mem::take(&mut **g))
            })
            .transpose()?
    };
}
pub(crate) use take_input_gradient;

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// This thread's working buffers (kept between ops, so they are allocated once).
pub(super) fn with_scratch<R>(work: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|scratch| work(&mut scratch.borrow_mut()))
}

/// Per-thread working buffers: a strip of patches, full-resolution activations (or their
/// gradients), a zero-padded image (or gradient), the window starts into it, a packed
/// output gradient, and the buffers of the Winograd products.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) cols: Vec<f32>,
    pub(super) act: Vec<f32>,
    pub(super) padded: Vec<f32>,
    pub(super) starts: Vec<usize>,
    pub(super) packed: PackedB,
    pub(super) winograd: winograd::Buffers,
    pub(super) kernel_grad: KernelGradient,
}

/// A convolution's weights prepared once per batch for the products that use them.
pub(super) enum Weights {
    /// Packed for a direct product with the patches.
    Direct(PackedB),
    /// Transformed for Winograd's F(2×2, 3×3).
    Winograd(TransformedKernel),
    /// As they are, (k·k, cout), for a single-channel image ([`taps::convolve`]).
    Taps(Vec<f32>),
}

/// Sizes of one convolution over one image.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvShape {
    pub(crate) cin: usize,
    pub(crate) cout: usize,
    pub(crate) kernel: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
}

impl ConvShape {
    pub(super) fn kk(&self) -> usize {
        self.kernel * self.kernel * self.cin
    }

    pub(super) fn per_image(&self) -> usize {
        self.h * self.w
    }

    /// Strips (first position, positions) of one pass over the image, each strip's patches
    /// at most about `budget` floats and its activations about `ACT_FLOATS`. Pooled, they
    /// are whole pairs of image rows (and a multiple of the tile height where that costs
    /// at most twice the budget), so that each strip pools into its own output rows; an
    /// odd last row, which pooling drops, is never computed. Otherwise the positions are
    /// split evenly in multiples of the tile height.
    pub(super) fn strips(&self, pooled: bool, budget: usize) -> Vec<(usize, usize)> {
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

    pub(super) fn pad(&self) -> usize {
        self.kernel / 2
    }

    /// Whether the patches are read in place from a zero-padded copy of the image (as
    /// windows), rather than copied out: with more than one channel, where each window row
    /// is k·cin contiguous floats.
    pub(super) fn windowed(&self) -> bool {
        self.cin > 1
    }

    /// Whether a convolution with `cin` input channels runs by Winograd's F(2×2, 3×3):
    /// 3×3 kernels over more than one channel (a single-channel image has too few
    /// products to gain from it; it runs tap by tap).
    pub(super) fn winograd(&self, cin: usize) -> bool {
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
    pub(super) fn pack_flipped_weights(&self, w: &[f32]) -> Weights {
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
    pub(super) fn window_starts(
        &self,
        c: usize,
        (p0, rows): (usize, usize),
        starts: &mut Vec<usize>,
    ) {
        let pw = self.w + 2 * self.pad();
        starts.clear();
        starts.extend((p0..p0 + rows).map(|p| (p / self.w * pw + p % self.w) * c));
    }

    /// The windows of a zero-padded copy with `c` channels, for a product with packed
    /// weights of k·k·c rows.
    pub(super) fn windows<'a>(
        &self,
        padded: &'a [f32],
        c: usize,
        starts: &'a [usize],
    ) -> Windows<'a> {
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
    pub(super) fn pad_into(&self, src: &[f32], c: usize, rows: usize, padded: &mut Vec<f32>) {
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

    /// The convolution (bias included) of a batch of images at every position, in
    /// parallel over the images, and what `after_image` makes of each image's output
    /// (called with the image's index right after it is written, while it is in the cache).
    pub(crate) fn convolve_batch<R: Send>(
        &self,
        input: &[f32],
        (w, bias): (&[f32], &[f32]),
        after_image: impl Fn(usize, &[f32]) -> R + Sync,
    ) -> (Vec<f32>, Vec<R>) {
        let weights = self.pack_weights(w);
        let (per_in, per_out) = (self.per_image() * self.cin, self.per_image() * self.cout);
        let images = input.len() / per_in;
        filled_in_parallel(images * per_out, per_out, |image, out| {
            let img = &input[image * per_in..][..per_in];
            with_scratch(|scratch| {
                self.forward(img, false, (&weights, bias), out, None, scratch);
            });
            after_image(image, out)
        })
    }

    /// The pooled outputs (first value, values) that the strip p0..p0+rows (whole pairs of
    /// image rows) pools into.
    pub(super) fn pooled_range(&self, p0: usize, rows: usize) -> (usize, usize) {
        let per_pair = (self.w / 2) * self.cout;
        (p0 / (2 * self.w) * per_pair, rows / (2 * self.w) * per_pair)
    }
}

#[cfg(test)]
#[path = "conv_tests.rs"]
mod tests;
