//! A convolutional network built from the experiment file's layer list, trained on dfdx's
//! tape with our convolution, pooling, batch-norm and activation ops.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::activation::activate;
use super::add::add;
use super::batchnorm::{Follow, Moments};
use super::conv::conv_block;
use super::conv_batchnorm::conv_batchnorm;
use super::dropout::dropout;
use super::layer::{Layer, Shape};
use super::layout::{Act, Geometry};
use super::loss::{bce_loss, Objective};
use super::maxpool::maxpool2;
use super::optimizer::Optimizer;
use super::pooling::{global_avg_pool, pool, Reduce};
use super::scoring_prefix::leading_blocks;
use super::stack::{after_conv, relu_and_pool_at, Block, Conv};
use super::strided_conv::strided_conv;
use crate::rng::Rng;

/// What a forward pass carries besides the activations.
struct Pass<'a> {
    /// `Some` in training (dropout on, batch statistics), `None` in evaluation.
    dropout_seed: Option<u64>,
    /// The batch-norm statistics of a training pass, in order.
    stats: &'a mut Vec<Moments>,
    /// Whether a convolution has run yet (the first needs no input gradient).
    first_conv: bool,
}

/// Runs `blocks` on `h` (geometry `g`); `salt` keeps the dropout masks of nested blocks
/// apart from the top level's.
fn run<T: Tape<f32, Cpu>>(
    blocks: &[Block],
    mut h: Act<T>,
    mut g: Geometry,
    pass: &mut Pass,
    salt: u64,
) -> (Act<T>, Geometry) {
    let train = pass.dropout_seed.is_some();
    // Layers applied inside the convolution before them (ReLU, max-pool).
    let mut fused = 0;
    for (i, block) in blocks.iter().enumerate() {
        if fused > 0 {
            fused -= 1;
            continue;
        }
        h = match block {
            Block::Conv(conv) if conv.is_plain() => {
                let next = |k: usize| blocks.get(i + k);
                if let (true, Some(Block::BatchNorm(bn))) = (train, next(1)) {
                    let (relu, pool) = relu_and_pool_at(blocks, i + 2);
                    let follow = Follow {
                        relu,
                        pool: pool && g.h > 1,
                    };
                    let conv = (conv, !pass.first_conv);
                    let (y, next_g) = conv_batchnorm(h, g, conv, (bn, follow), pass.stats);
                    pass.first_conv = false;
                    fused = 1 + relu as usize + follow.pool as usize;
                    g = next_g;
                    h = y;
                    continue;
                }
                // In evaluation a batch norm right after folds into the weights.
                let after = after_conv(blocks, i, !train);
                let folded = after.bn.map(|bn| conv.folded(bn, h.device()));
                let spec = after.spec(conv, !pass.first_conv);
                let (weight, bias) = match &folded {
                    Some((w, b)) => (w, b),
                    None => (&conv.weight.tensor, &conv.bias.tensor),
                };
                let (y, next_g) = conv_block(h, g, spec, weight, bias);
                pass.first_conv = false;
                fused = after.blocks - 1;
                g = next_g;
                y
            }
            Block::Conv(conv) => {
                let (y, next_g) = strided(conv, h, g, !pass.first_conv);
                pass.first_conv = false;
                g = next_g;
                y
            }
            Block::Activation(f) => activate(h, *f),
            Block::MaxPool { size: 2, stride: 2 } => {
                let (y, next) = maxpool2(h, g);
                g = next;
                y
            }
            Block::MaxPool { size, stride } => {
                let (y, next) = pool(h, g, (*size, *stride), Reduce::Max);
                g = next;
                y
            }
            Block::AvgPool { size, stride } => {
                let (y, next) = pool(h, g, (*size, *stride), Reduce::Mean);
                g = next;
                y
            }
            Block::GlobalAvgPool => {
                let y = global_avg_pool(h, g);
                g = Geometry { h: 1, w: 1, ..g };
                y
            }
            Block::BatchNorm(bn) => {
                let (relu, pool) = relu_and_pool_at(blocks, i + 1);
                let pool = pool && g.h > 1;
                let (y, next_g) = bn.forward(h, g, Follow { relu, pool }, train, pass.stats);
                fused = relu as usize + pool as usize;
                g = next_g;
                y
            }
            Block::Residual { inner, projection } => {
                let skip = h.retaped::<T>();
                let first_conv = pass.first_conv;
                let inner_salt = salt
                    .wrapping_add(i as u64 + 1)
                    .wrapping_mul(0x2545_f491_4f6c_dd1d);
                let (main, out_g) = run(inner, h, g, pass, inner_salt);
                let skip = match projection {
                    Some(conv) => strided(conv, skip, g, !first_conv).0,
                    None => skip,
                };
                g = out_g;
                add(main, skip)
            }
            Block::Dropout(p) => match pass.dropout_seed {
                Some(seed) if *p > 0.0 => {
                    let layer = (i as u64) ^ salt;
                    let layer_seed = seed ^ layer.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    dropout(h, *p, Rng::new(layer_seed).next_u64())
                }
                _ => h,
            },
            Block::Flatten => {
                let width = h.shape().1 * g.h * g.w;
                g = Geometry { h: 1, w: 1, ..g };
                h.reshape_like(&(g.batch, width))
            }
            Block::Dense(d) => d.forward(h),
        };
    }
    (h, g)
}

/// A convolution by patch matrices (any stride, padding and kernel; `conv`'s fast path
/// does the plain ones).
fn strided<T: Tape<f32, Cpu>>(
    conv: &Conv,
    x: Act<T>,
    g: Geometry,
    input_grad: bool,
) -> (Act<T>, Geometry) {
    let spec = conv.strided_spec(input_grad);
    strided_conv(x, g, spec, &conv.weight.tensor, &conv.bias.tensor)
}

/// Runs `work` on one of rayon's threads (the caller waits, asleep). Called from outside
/// the pool, the serial parts of a step would run on a third thread while the pool's
/// workers spin waiting for the next parallel section, on a machine with two cores
/// (measured: 1.15× instead of 1.6-1.8× from the second core).
fn on_worker<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        work()
    } else {
        rayon::scope(|_| work())
    }
}

/// Parts a training batch is split into, each run forward and backward on its own, in
/// parallel, with the gradients added in part order. Why: each op splits its images
/// over the threads and waits for all of them at its end; two parts let each thread run
/// mostly on its own part and take the other's images only when it runs ahead, which on
/// the two-core development machine trains faster than one part (the threads no
/// longer meet at every op). A constant, not the number of threads, so that results do not
/// depend on the machine's core count.
const STEP_PARTS: usize = 2;

/// Image ranges of a batch split into at most `parts` nearly equal parts (the first ones
/// one image larger).
fn part_ranges(batch: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, batch.max(1));
    let (per, extra) = (batch / parts, batch % parts);
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let len = per + usize::from(i < extra);
            start += len;
            start - len..start
        })
        .collect()
}

/// What one part of a training batch gives: its scaled loss, its logits, the gradient of
/// every parameter (in layer order) and its batch-norm statistics.
struct PartGradients {
    loss: f32,
    logits: Vec<f32>,
    grads: Vec<Vec<f32>>,
    stats: Vec<Moments>,
}

/// A binary classifier over h×w images with c channels.
pub struct ConvNet {
    dev: Cpu,
    blocks: Vec<Block>,
    input: (usize, usize, usize),
    objective: Objective,
    /// Draws the dropout masks: with `steps`, a new mask each training step.
    dropout_rng_seed: u64,
    steps: u64,
}

impl ConvNet {
    /// Builds the layers (Glorot-uniform weights, zero biases, as Keras) over single-channel
    /// `size`×`size` images from `seed`, which also drives dropout. The layer list must fit
    /// (see [`crate::layer::walk`]).
    pub fn new(layers: &[Layer], size: usize, seed: u64) -> Self {
        Self::with_input(layers, (size, size, 1), seed)
    }

    /// [`ConvNet::new`] over h×w images with c channels.
    pub fn with_input(layers: &[Layer], (h, w, c): (usize, usize, usize), seed: u64) -> Self {
        super::keep_freed_memory();
        let dev = Cpu::seed_from_u64(seed);
        let mut rng = Rng::derived(seed, "cnn-init");
        let blocks = Block::build(layers, Shape::Image { h, w, c }, &dev, &mut rng);
        Self {
            dev,
            blocks,
            input: (h, w, c),
            objective: Objective::default(),
            dropout_rng_seed: Rng::derived(seed, "cnn-dropout").next_u64(),
            steps: 0,
        }
    }

    /// Sets what the training loss weighs (plain binary cross-entropy by default).
    pub fn set_objective(&mut self, objective: Objective) {
        self.objective = objective;
    }

    /// Values per image the network expects.
    pub fn input_len(&self) -> usize {
        self.input.0 * self.input.1 * self.input.2
    }

    pub fn parameter_count(&self) -> usize {
        Block::params(&self.blocks).iter().map(|p| p.len()).sum()
    }

    fn geometry(&self, batch: usize) -> Geometry {
        Geometry {
            batch,
            h: self.input.0,
            w: self.input.1,
        }
    }

    fn input_tensor(&self, x: &[f32], batch: usize) -> Act<NoneTape> {
        let (h, w, c) = self.input;
        self.dev.tensor_from_vec(x.to_vec(), (batch * h * w, c))
    }

    /// One optimiser step on a batch of images (`x`: batch × values per image) with 0/1
    /// targets `y`. Returns the mean loss and the logits.
    pub fn train_batch(&mut self, x: &[f32], y: &[f32], opt: &mut Optimizer) -> (f32, Vec<f32>) {
        on_worker(|| self.train_batch_here(x, y, opt))
    }

    fn train_batch_here(&mut self, x: &[f32], y: &[f32], opt: &mut Optimizer) -> (f32, Vec<f32>) {
        self.steps += 1;
        let step_seed = Rng::new(self.dropout_rng_seed ^ self.steps).next_u64();
        // Batch statistics must see the whole batch, so a network with batch norm runs it as
        // one part (its ops still split the images over the threads).
        let has_batchnorm = !Block::batch_norms_mut(&mut self.blocks).is_empty();
        let parts = if has_batchnorm { 1 } else { STEP_PARTS };
        let PartGradients {
            loss,
            logits,
            mut grads,
            stats,
        } = self.batch_gradients(x, y, parts, step_seed);
        opt.next_step();
        opt.clip(&mut grads);
        for (param, grad) in Block::params_mut(&mut self.blocks).into_iter().zip(&grads) {
            param.step_with(grad, opt);
        }
        for (bn, moments) in Block::batch_norms_mut(&mut self.blocks)
            .into_iter()
            .zip(&stats)
        {
            bn.update_running(moments);
        }
        (loss, logits)
    }

    /// The batch's loss, logits and gradients, from `parts` parts run in parallel (the
    /// gradients added in part order). Part 0 draws its dropout masks from `step_seed`, the
    /// others from seeds derived from it.
    fn batch_gradients(&self, x: &[f32], y: &[f32], parts: usize, step_seed: u64) -> PartGradients {
        let batch = y.len();
        let size = self.input_len();
        let results: Vec<PartGradients> = part_ranges(batch, parts)
            .into_par_iter()
            .enumerate()
            .with_max_len(1)
            .map(|(part, range)| {
                let seed = if part == 0 {
                    step_seed
                } else {
                    let salt = (part as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    Rng::new(step_seed ^ salt).next_u64()
                };
                let images = &x[range.start * size..range.end * size];
                let weight = range.len() as f32 / batch as f32;
                self.part_gradients(images, &y[range], weight, seed)
            })
            .collect();
        let mut results = results.into_iter();
        let mut total = results.next().expect("a batch has at least one part");
        for part in results {
            total.loss += part.loss;
            total.logits.extend(part.logits);
            for (sum, g) in total.grads.iter_mut().zip(&part.grads) {
                sum.par_iter_mut().zip(g).for_each(|(s, g)| *s += g);
            }
        }
        total
    }

    /// Forward and backward on one part of a batch (images `x`, targets `y`), its mean loss
    /// scaled by `weight` (its share of the batch) so that the parts' gradients add up to
    /// the batch's.
    fn part_gradients(
        &self,
        x: &[f32],
        y: &[f32],
        weight: f32,
        dropout_seed: u64,
    ) -> PartGradients {
        let batch = y.len();
        let traced = self.input_tensor(x, batch).traced(Gradients::leaky());
        let mut stats = Vec::new();
        let mut pass = Pass {
            dropout_seed: Some(dropout_seed),
            stats: &mut stats,
            first_conv: true,
        };
        let (logits, _) = run(&self.blocks, traced, self.geometry(batch), &mut pass, 0);
        let logit_values = logits.as_vec();
        let (loss_value, loss) = bce_loss(logits, y, weight, &self.objective);
        let mut grads = loss.backward();
        PartGradients {
            loss: loss_value,
            logits: logit_values,
            grads: Block::params(&self.blocks)
                .iter()
                .map(|p| p.take_grad(&mut grads))
                .collect(),
            stats,
        }
    }

    /// Logits in evaluation mode (no dropout, running batch-norm statistics).
    pub fn predict_logits(&self, x: &[f32]) -> Vec<f32> {
        on_worker(|| self.predict_logits_here(x))
    }

    fn predict_logits_here(&self, x: &[f32]) -> Vec<f32> {
        let batch = x.len() / self.input_len();
        let mut pass = Pass {
            dropout_seed: None,
            stats: &mut Vec::new(),
            first_conv: true,
        };
        let geometry = self.geometry(batch);
        let Some(scored) = leading_blocks(&self.blocks, x, self.input.2, geometry) else {
            let input = self.input_tensor(x, batch);
            return run(&self.blocks, input, geometry, &mut pass, 0).0.as_vec();
        };
        pass.first_conv = false;
        let (positions, channels) = (scored.geometry.positions(), scored.channels);
        let h = self
            .dev
            .tensor_from_vec(scored.values, (positions, channels));
        let rest = &self.blocks[scored.blocks..];
        run(rest, h, scored.geometry, &mut pass, 0).0.as_vec()
    }

    /// Every trainable parameter and batch-norm statistic, in layer order, with names
    /// (`layer3.weight`, ...) for saving.
    pub fn named_values(&self) -> Vec<(String, Vec<f32>)> {
        let mut out = Vec::new();
        Block::named_values(&self.blocks, "layer", &mut out);
        out
    }

    /// Restores values in the order of [`ConvNet::named_values`]; false if they do not fit.
    pub fn load_values(&mut self, values: &[Vec<f32>]) -> bool {
        let expected: Vec<usize> = self.named_values().iter().map(|(_, v)| v.len()).collect();
        if expected != values.iter().map(Vec::len).collect::<Vec<_>>() {
            return false;
        }
        Block::load_values(&mut self.blocks, &mut values.iter());
        true
    }
}

#[cfg(test)]
#[path = "cnn_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "keras_parity_tests.rs"]
mod keras_parity;
