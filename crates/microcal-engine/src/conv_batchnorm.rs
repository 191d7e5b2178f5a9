//! A convolution and the batch norm after it (with the ReLU and 2×2 max-pool that follow),
//! in training, as one op on dfdx's tape.
//!
//! Batch norm's statistics need the whole batch's convolution outputs, so these are
//! stored; but they are the only full-resolution values that leave the thread's cache.
//! Apart, the two ops also copied them into the batch norm, read them once more for the
//! statistics, wrote the batch norm's input gradient at full resolution, zeroed first,
//! and read it back in the convolution's backward pass. Here the statistics' chunks that
//! lie inside one image are summed as the convolution writes it, and the input gradient
//! (dense, since every output moves the batch's statistics) is built per image, in the
//! convolution's backward pass, right where it is used, from the stored outputs and the
//! batch norm's per-channel terms. The numbers are the two ops' own, bit for bit (same
//! operations in the same order).
//!
//! Bake-off (`microcal bench cnn --experiment tools/bench/reference_batchnorm.toml`,
//! alternated with the plain `microcal bench cnn`, 640 synthetic images, `--repeats 3`, AMD
//! EPYC Zen 3, 2 cores, AVX2, 2026-12-02): the two ops apart trained at 208-214 images/s
//! against the plain network's 480-499 (0.43×); as one op, 265-275 against 403-449; with
//! batch norm's passes also branch-free and compiled for AVX2, 284-322 against 416-497
//! (about 0.65×). With the statistics summed per image inside the convolution (and the
//! engine's serial zeroing, kernel transforms and sums made parallel), on real data, 370-413
//! against 493-539 (0.75-0.77×; docs/benchmarks.md has that sitting against Keras).

use dfdx::prelude::*;

use super::batchnorm::{BatchNorm, Follow, Fused, Gradient, Moments};
use super::conv::{store_gradients, take_input_gradient, ConvShape};
use super::conv_backward::{backward_batch, OutputGradient};
use super::copies::copied;
use super::layout::{Act, Geometry};
use super::moments::{image_chunk_sums, moments_with};
use super::stack::Conv;

/// `conv` ('same' padding, stride 1) then `bn` with the batch's statistics (`stats`
/// receives them), then what `follow` fuses. `input_grad`: whether to propagate into the
/// input (not needed for the first layer). Returns the output and its geometry.
pub(crate) fn conv_batchnorm<T: Tape<f32, Cpu>>(
    x: Act<T>,
    g: Geometry,
    (conv, input_grad): (&Conv, bool),
    (bn, follow): (&BatchNorm, Follow),
    stats: &mut Vec<Moments>,
) -> (Act<T>, Geometry) {
    let (x, mut tape) = x.split_tape();
    let (weight, bias) = (&conv.weight.tensor, &conv.bias.tensor);
    let shape = ConvShape {
        cin: x.shape().1,
        cout: bias.shape().0,
        kernel: conv.kernel,
        h: g.h,
        w: g.w,
    };
    let input = copied(&x);
    let w = copied(weight);
    let c = shape.cout;
    let sum_chunks = |image, out: &[f32]| image_chunk_sums(image, out, c);
    let (convolved, sums) = shape.convolve_batch(&input, (&w, &copied(bias)), sum_chunks);
    let moments = moments_with(&convolved, c, sums.into_iter().flatten().collect());
    let fused = Fused { g, c, follow };
    let (out, saved) = bn.normalise_with(&convolved, fused, Some(moments));
    let saved = saved.expect("a training pass keeps its statistics");
    stats.push(saved.moments.clone());
    let out_g = fused.output();
    let y = x
        .device()
        .tensor_from_vec(out, (out_g.positions(), shape.cout));
    if T::OWNS_TAPE {
        let (x_ghost, w_ghost, b_ghost, y_ghost) =
            (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
        let (gamma_ghost, beta_ghost) = (bn.gamma.tensor.ghost(), bn.beta.tensor.ghost());
        tape.add_backward_op(move |grads| {
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            let gradient = saved.gradient(&dy, &convolved);
            let mut dx = take_input_gradient!(grads, &x_ghost, input_grad);
            let source = Normalised {
                gradient: &gradient,
                convolved: &convolved,
                dy: &dy,
                per_image: shape.h * shape.w * shape.cout,
            };
            let partials = backward_batch(shape, &input, &w, &source, dx.as_deref_mut());
            gradient.store_parameters(grads.get_or_alloc_mut(&gamma_ghost)?, true);
            gradient.store_parameters(grads.get_or_alloc_mut(&beta_ghost)?, false);
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

/// The gradient of the convolution's outputs: batch norm's input gradient, built per image.
struct Normalised<'a> {
    gradient: &'a Gradient<'a>,
    convolved: &'a [f32],
    dy: &'a [f32],
    per_image: usize,
}

impl OutputGradient for Normalised<'_> {
    fn image<'a>(&'a self, image: usize, buffer: &'a mut Vec<f32>) -> &'a [f32] {
        // Written over (no zeroing first); `resize` only zeroes what the buffer grows by.
        buffer.resize(self.per_image, 0.0);
        let img = &self.convolved[image * self.per_image..][..self.per_image];
        self.gradient.add_image(image, img, self.dy, buffer, false);
        buffer
    }

    fn pooled(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::{conv_block, ConvBlock};
    use crate::rng::Rng;

    /// What a training step of conv → batch norm → what follows gives: the output, the
    /// batch's statistics, and the gradients of Σ y·R with respect to the input, the
    /// weights, the bias, γ and β.
    type Step = (Vec<f32>, Vec<Moments>, [Vec<f32>; 5]);

    fn step(cin: usize, follow: Follow, fused: bool) -> Step {
        let dev = Cpu::seed_from_u64(0);
        let mut rng = Rng::new(5);
        let (cout, g) = (
            4,
            Geometry {
                batch: 3,
                h: 7,
                w: 9,
            },
        );
        let mut conv = Conv::new(&dev, (cin, cout), 3, &mut rng);
        conv.bias.set_values(&[0.1, -0.2, 0.3, 0.0]);
        let mut bn = BatchNorm::new(&dev, cout, 0.9, 1e-3);
        bn.gamma.set_values(&[1.5, 0.5, -1.0, 0.8]);
        bn.beta.set_values(&[0.1, 0.2, 0.3, -0.4]);
        let mut values = |n: usize| (0..n).map(|_| rng.normal() as f32).collect::<Vec<_>>();
        let x = dev.tensor_from_vec(values(g.positions() * cin), (g.positions(), cin));
        let mut stats = Vec::new();
        let (y, out_g) = if fused {
            let conv = (&conv, true);
            conv_batchnorm(x.leaky_trace(), g, conv, (&bn, follow), &mut stats)
        } else {
            let spec = ConvBlock {
                kernel: 3,
                relu: false,
                pool: false,
                input_grad: true,
            };
            let weights = (&conv.weight.tensor, &conv.bias.tensor);
            let (h, g) = conv_block(x.leaky_trace(), g, spec, weights.0, weights.1);
            bn.forward(h, g, follow, true, &mut stats)
        };
        let r = dev.tensor_from_vec(values(out_g.positions() * cout), (out_g.positions(), cout));
        let out = y.as_vec();
        let grads = (y * r).sum().backward();
        let gradients = [
            grads.get(&x).as_vec(),
            grads.get(&conv.weight.tensor).as_vec(),
            grads.get(&conv.bias.tensor).as_vec(),
            grads.get(&bn.gamma.tensor).as_vec(),
            grads.get(&bn.beta.tensor).as_vec(),
        ];
        (out, stats, gradients)
    }

    /// The fused op gives the two ops' outputs, statistics and gradients bit for bit, for
    /// every combination of what may follow, on odd sizes (pooling drops a row and a
    /// column) and with one and several input channels.
    #[test]
    fn equals_the_convolution_and_batch_norm_apart() {
        for cin in [1, 3] {
            for (relu, pool) in [(false, false), (true, false), (false, true), (true, true)] {
                let follow = Follow { relu, pool };
                let (fused, apart) = (step(cin, follow, true), step(cin, follow, false));
                assert_eq!(fused, apart, "cin {cin}, relu {relu}, pool {pool}");
                assert!(fused.2.iter().all(|g| g.iter().any(|v| *v != 0.0)));
            }
        }
    }
}
