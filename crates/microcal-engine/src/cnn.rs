//! A convolutional network built from the experiment file's layer list, trained on dfdx's
//! tape with our convolution and pooling ops.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::adam::{Adam, Param};
use super::conv::{conv_block, ConvBlock};
use super::dense::Dense;
use super::dropout::dropout;
use super::layer::Layer;
use super::layout::{Act, Geometry};
use super::maxpool::maxpool2;
use super::{contiguous_vec, glorot_uniform};
use crate::rng::Rng;

enum Block {
    Conv {
        weight: Param<(usize, usize)>,
        bias: Param<(usize,)>,
        kernel: usize,
    },
    Relu,
    Maxpool,
    BatchNorm(BatchNorm),
    Dropout(f32),
    Flatten,
    Dense(Dense),
}

/// Batch normalisation over the channel axis (all positions of all images), with running
/// statistics for evaluation (Keras: momentum 0.99, ε 1e-3).
struct BatchNorm {
    gamma: Param<(usize,)>,
    beta: Param<(usize,)>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
}

const BN_MOMENTUM: f32 = 0.99;
const BN_EPS: f32 = 1e-3;

impl BatchNorm {
    fn forward<T: Tape<f32, Cpu>>(
        &self,
        x: Act<T>,
        train: bool,
        stats: &mut Vec<(Vec<f32>, Vec<f32>)>,
    ) -> Act<T> {
        let (rows, c) = *x.shape();
        let dev = x.device().clone();
        let gamma = self
            .gamma
            .tensor
            .clone()
            .broadcast_like::<_, Axis<0>>(&(rows, c));
        let beta = self
            .beta
            .tensor
            .clone()
            .broadcast_like::<_, Axis<0>>(&(rows, c));
        if train {
            let mean = x.retaped::<T>().mean::<(usize,), Axis<0>>();
            let centered = x - mean.retaped::<T>().broadcast_like::<_, Axis<0>>(&(rows, c));
            let var = centered.retaped::<T>().square().mean::<(usize,), Axis<0>>();
            stats.push((mean.as_vec(), var.as_vec()));
            let inv_std = (var + BN_EPS)
                .sqrt()
                .recip()
                .broadcast_like::<_, Axis<0>>(&(rows, c));
            centered * inv_std * gamma + beta
        } else {
            let mean = dev
                .tensor_from_vec(self.running_mean.clone(), (c,))
                .broadcast_like::<_, Axis<0>>(&(rows, c));
            let inv: Vec<f32> = self
                .running_var
                .iter()
                .map(|v| 1.0 / (v + BN_EPS).sqrt())
                .collect();
            let inv = dev
                .tensor_from_vec(inv, (c,))
                .broadcast_like::<_, Axis<0>>(&(rows, c));
            (x - mean) * inv * gamma + beta
        }
    }
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
    stats: Vec<(Vec<f32>, Vec<f32>)>,
}

/// A binary classifier over `size`×`size` single-channel images.
pub struct ConvNet {
    dev: Cpu,
    blocks: Vec<Block>,
    size: usize,
    /// Draws the dropout masks: with `steps`, a new mask each training step.
    dropout_rng_seed: u64,
    steps: u64,
}

impl ConvNet {
    /// Builds the layers (Glorot-uniform weights, zero biases, as Keras) from `seed`, which
    /// also drives dropout. The layer list must have passed `models::check_shapes`.
    pub fn new(layers: &[Layer], size: usize, seed: u64) -> Self {
        super::keep_freed_memory();
        let dev = Cpu::seed_from_u64(seed);
        let mut rng = Rng::derived(seed, "cnn-init");
        let (mut h, mut w, mut c) = (size, size, 1usize);
        let mut flat: Option<usize> = None;
        let mut blocks = Vec::new();
        for layer in layers {
            blocks.push(match *layer {
                Layer::Conv { filters, kernel } => {
                    let fan_in = kernel * kernel * c;
                    let fan_out = kernel * kernel * filters;
                    let weight = glorot_uniform(fan_in, fan_out, fan_in * filters, &mut rng);
                    let block = Block::Conv {
                        weight: Param::new(&dev, weight, (fan_in, filters), true),
                        bias: Param::new(&dev, vec![0.0; filters], (filters,), false),
                        kernel,
                    };
                    c = filters;
                    block
                }
                Layer::Relu => Block::Relu,
                Layer::Maxpool => {
                    h /= 2;
                    w /= 2;
                    Block::Maxpool
                }
                Layer::Batchnorm => {
                    let n = flat.unwrap_or(c);
                    Block::BatchNorm(BatchNorm {
                        gamma: Param::new(&dev, vec![1.0; n], (n,), false),
                        beta: Param::new(&dev, vec![0.0; n], (n,), false),
                        running_mean: vec![0.0; n],
                        running_var: vec![1.0; n],
                    })
                }
                Layer::Dropout { p } => Block::Dropout(p as f32),
                Layer::Flatten => {
                    flat = Some(h * w * c);
                    Block::Flatten
                }
                Layer::Dense { units } => {
                    let inputs = flat.expect("checked: dense follows flatten");
                    flat = Some(units);
                    Block::Dense(Dense::new(&dev, inputs, units, &mut rng))
                }
            });
        }
        Self {
            dev,
            blocks,
            size,
            dropout_rng_seed: Rng::derived(seed, "cnn-dropout").next_u64(),
            steps: 0,
        }
    }

    /// Pixels per image the network expects.
    pub fn input_len(&self) -> usize {
        self.size * self.size
    }

    pub fn parameter_count(&self) -> usize {
        self.params().iter().map(|p| p.len()).sum()
    }

    /// `dropout_seed`: `Some` in training (dropout on, batch statistics), `None` in evaluation.
    fn forward<T: Tape<f32, Cpu>>(
        &self,
        x: Act<T>,
        batch: usize,
        dropout_seed: Option<u64>,
        stats: &mut Vec<(Vec<f32>, Vec<f32>)>,
    ) -> Act<T> {
        let train = dropout_seed.is_some();
        let mut g = Geometry {
            batch,
            h: self.size,
            w: self.size,
        };
        let mut h = x;
        let mut first_conv = true;
        // Layers applied inside the convolution before them (ReLU, max-pool).
        let mut fused = 0;
        for (i, block) in self.blocks.iter().enumerate() {
            if fused > 0 {
                fused -= 1;
                continue;
            }
            h = match block {
                Block::Conv {
                    weight,
                    bias,
                    kernel,
                } => {
                    let next = |k: usize| self.blocks.get(i + k);
                    let relu = matches!(next(1), Some(Block::Relu));
                    let pool = matches!(next(1 + relu as usize), Some(Block::Maxpool));
                    let spec = ConvBlock {
                        kernel: *kernel,
                        relu,
                        pool,
                        input_grad: !first_conv,
                    };
                    let (y, next_g) = conv_block(h, g, spec, &weight.tensor, &bias.tensor);
                    first_conv = false;
                    fused = relu as usize + pool as usize;
                    g = next_g;
                    y
                }
                Block::Relu => h.relu(),
                Block::Maxpool => {
                    let (y, next) = maxpool2(h, g);
                    g = next;
                    y
                }
                Block::BatchNorm(bn) => bn.forward(h, train, stats),
                Block::Dropout(p) => match dropout_seed {
                    Some(seed) if *p > 0.0 => {
                        let layer_seed = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                        dropout(h, *p, Rng::new(layer_seed).next_u64())
                    }
                    _ => h,
                },
                Block::Flatten => {
                    let width = h.shape().1 * g.h * g.w;
                    h.reshape_like(&(batch, width))
                }
                Block::Dense(d) => d.forward(h),
            };
        }
        h
    }

    /// One Adam step on a batch of images (`x`: batch × size², values as given) with 0/1
    /// targets `y`. Returns the mean loss and the logits.
    pub fn train_batch(&mut self, x: &[f32], y: &[f32], adam: &mut Adam) -> (f32, Vec<f32>) {
        on_worker(|| self.train_batch_here(x, y, adam))
    }

    fn train_batch_here(&mut self, x: &[f32], y: &[f32], adam: &mut Adam) -> (f32, Vec<f32>) {
        self.steps += 1;
        let step_seed = Rng::new(self.dropout_rng_seed ^ self.steps).next_u64();
        // Batch statistics must see the whole batch.
        let has_batchnorm = self.blocks.iter().any(|b| matches!(b, Block::BatchNorm(_)));
        let parts = if has_batchnorm { 1 } else { STEP_PARTS };
        let PartGradients {
            loss: loss_value,
            logits: logit_values,
            grads,
            stats,
        } = self.batch_gradients(x, y, parts, step_seed);
        adam.next_step();
        let mut grads = grads.iter();
        let mut next = || grads.next().expect("one gradient per parameter");
        let mut stats = stats.into_iter();
        for block in &mut self.blocks {
            match block {
                Block::Conv { weight, bias, .. } => {
                    weight.step_with(next(), adam);
                    bias.step_with(next(), adam);
                }
                Block::Dense(d) => {
                    d.weight.step_with(next(), adam);
                    d.bias.step_with(next(), adam);
                }
                Block::BatchNorm(bn) => {
                    bn.gamma.step_with(next(), adam);
                    bn.beta.step_with(next(), adam);
                    if let Some((mean, var)) = stats.next() {
                        for (r, m) in bn.running_mean.iter_mut().zip(mean) {
                            *r = BN_MOMENTUM * *r + (1.0 - BN_MOMENTUM) * m;
                        }
                        for (r, v) in bn.running_var.iter_mut().zip(var) {
                            *r = BN_MOMENTUM * *r + (1.0 - BN_MOMENTUM) * v;
                        }
                    }
                }
                _ => {}
            }
        }
        (loss_value, logit_values)
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
        let input = self
            .dev
            .tensor_from_vec(x.to_vec(), (batch * self.size * self.size, 1usize));
        let mut stats = Vec::new();
        let traced = input.traced(Gradients::leaky());
        let logits = self.forward(traced, batch, Some(dropout_seed), &mut stats);
        let logit_values = logits.as_vec();
        let target = self.dev.tensor_from_vec(y.to_vec(), (batch, 1usize));
        let loss = binary_cross_entropy_with_logits_loss(logits, target) * weight;
        let loss_value = loss.array();
        let grads = loss.backward();
        let mut values = Vec::new();
        for block in &self.blocks {
            match block {
                Block::Conv { weight, bias, .. } => {
                    values.push(contiguous_vec(&grads.get(&weight.tensor)));
                    values.push(contiguous_vec(&grads.get(&bias.tensor)));
                }
                Block::Dense(d) => {
                    values.push(contiguous_vec(&grads.get(&d.weight.tensor)));
                    values.push(contiguous_vec(&grads.get(&d.bias.tensor)));
                }
                Block::BatchNorm(bn) => {
                    values.push(contiguous_vec(&grads.get(&bn.gamma.tensor)));
                    values.push(contiguous_vec(&grads.get(&bn.beta.tensor)));
                }
                _ => {}
            }
        }
        PartGradients {
            loss: loss_value,
            logits: logit_values,
            grads: values,
            stats,
        }
    }

    /// Logits in evaluation mode (no dropout, running batch-norm statistics).
    pub fn predict_logits(&self, x: &[f32]) -> Vec<f32> {
        on_worker(|| self.predict_logits_here(x))
    }

    fn predict_logits_here(&self, x: &[f32]) -> Vec<f32> {
        let batch = x.len() / self.input_len();
        let input = self
            .dev
            .tensor_from_vec(x.to_vec(), (batch * self.size * self.size, 1usize));
        self.forward(input, batch, None, &mut Vec::new()).as_vec()
    }

    /// Every trainable parameter and batch-norm statistic, in layer order, with names
    /// (`layer3.weight`, ...) for saving.
    pub fn named_values(&self) -> Vec<(String, Vec<f32>)> {
        let mut out = Vec::new();
        for (i, block) in self.blocks.iter().enumerate() {
            let mut push = |name: &str, v: Vec<f32>| out.push((format!("layer{i}.{name}"), v));
            match block {
                Block::Conv { weight, bias, .. } => {
                    push("weight", weight.values());
                    push("bias", bias.values());
                }
                Block::Dense(d) => {
                    push("weight", d.weight.values());
                    push("bias", d.bias.values());
                }
                Block::BatchNorm(bn) => {
                    push("gamma", bn.gamma.values());
                    push("beta", bn.beta.values());
                    push("running_mean", bn.running_mean.clone());
                    push("running_var", bn.running_var.clone());
                }
                _ => {}
            }
        }
        out
    }

    /// Restores values in the order of [`ConvNet::named_values`]; false if they do not fit.
    pub fn load_values(&mut self, values: &[Vec<f32>]) -> bool {
        let expected: Vec<usize> = self.named_values().iter().map(|(_, v)| v.len()).collect();
        if expected != values.iter().map(Vec::len).collect::<Vec<_>>() {
            return false;
        }
        let mut it = values.iter();
        for block in &mut self.blocks {
            match block {
                Block::Conv { weight, bias, .. } => {
                    weight.set_values(it.next().expect("checked"));
                    bias.set_values(it.next().expect("checked"));
                }
                Block::Dense(d) => {
                    d.weight.set_values(it.next().expect("checked"));
                    d.bias.set_values(it.next().expect("checked"));
                }
                Block::BatchNorm(bn) => {
                    bn.gamma.set_values(it.next().expect("checked"));
                    bn.beta.set_values(it.next().expect("checked"));
                    bn.running_mean = it.next().expect("checked").clone();
                    bn.running_var = it.next().expect("checked").clone();
                }
                _ => {}
            }
        }
        true
    }

    fn params(&self) -> Vec<Vec<f32>> {
        self.named_values()
            .into_iter()
            .filter(|(n, _)| !n.contains("running"))
            .map(|(_, v)| v)
            .collect()
    }
}

#[cfg(test)]
#[path = "cnn_tests.rs"]
mod tests;
