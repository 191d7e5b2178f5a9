//! The layer list built into blocks with their parameters: construction (initial weights
//! drawn in layer order), the walks over parameters and batch-norm layers that training
//! and saving share, and a convolution's batch norm folded into its weights for scoring.

use dfdx::prelude::*;

use super::batchnorm::BatchNorm;
use super::conv::ConvBlock;
use super::dense::Dense;
use super::glorot_uniform;
use super::layer::{residual_projection, walk, Activation, Layer, Padding, Shape};
use super::optimizer::{AnyParam, Param};
use super::strided_conv::Strided;
use crate::rng::Rng;

/// A convolution's weight matrix (k·k·cin, cout) and bias (cout).
pub(crate) type Weight = Tensor<(usize, usize), f32, Cpu>;
pub(crate) type Bias = Tensor<(usize,), f32, Cpu>;

/// A convolution's weights and geometry.
pub(crate) struct Conv {
    pub(crate) weight: Param<(usize, usize)>,
    pub(crate) bias: Param<(usize,)>,
    pub(crate) kernel: usize,
    pub(crate) stride: usize,
    pub(crate) padding: Padding,
}

impl Conv {
    /// Glorot-uniform weights (Keras's default), zero bias.
    pub(crate) fn new(
        dev: &Cpu,
        (cin, filters): (usize, usize),
        kernel: usize,
        rng: &mut Rng,
    ) -> Self {
        let fan_in = kernel * kernel * cin;
        let fan_out = kernel * kernel * filters;
        let weight = glorot_uniform(fan_in, fan_out, fan_in * filters, rng);
        Conv {
            weight: Param::new(dev, weight, (fan_in, filters), true),
            bias: Param::new(dev, vec![0.0; filters], (filters,), false),
            kernel,
            stride: 1,
            padding: Padding::Same,
        }
    }

    /// The weight and bias with batch norm `bn`'s running statistics folded in (evaluation:
    /// bn(x·W + c) = x·(W·a) + (c·a + b) per output channel).
    pub(crate) fn folded(&self, bn: &BatchNorm, dev: &Cpu) -> (Weight, Bias) {
        let (weight, bias) = self.folded_values(bn);
        let cout = bias.len();
        (
            dev.tensor_from_vec(weight, *self.weight.tensor.shape()),
            dev.tensor_from_vec(bias, (cout,)),
        )
    }

    /// The convolution by patch matrices (any stride, padding and kernel) for this layer;
    /// `input_grad`: whether to propagate into the input.
    pub(crate) fn strided_spec(&self, input_grad: bool) -> Strided {
        Strided {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            cout: self.bias.len(),
            input_grad,
        }
    }

    /// [`Conv::folded`]'s values.
    pub(crate) fn folded_values(&self, bn: &BatchNorm) -> (Vec<f32>, Vec<f32>) {
        let (a, b) = bn.eval_affine();
        let mut weight = self.weight.values();
        let cout = a.len();
        for row in weight.chunks_mut(cout) {
            row.iter_mut().zip(&a).for_each(|(w, a)| *w *= a);
        }
        let bias: Vec<f32> = self
            .bias
            .values()
            .iter()
            .zip(&a)
            .zip(&b)
            .map(|((c, a), b)| c * a + b)
            .collect();
        (weight, bias)
    }

    /// Whether `conv`'s fast path (Winograd, taps, in-place windows, with a ReLU and 2×2
    /// max-pool fused) computes it.
    pub(crate) fn is_plain(&self) -> bool {
        self.stride == 1 && self.padding == Padding::Same && self.kernel % 2 == 1
    }
}

/// Whether a ReLU starts at `at` in `blocks`, and whether a 2×2 max-pool follows it (or
/// starts at `at` when no ReLU does): what an op can apply in its own pass.
pub(crate) fn relu_and_pool_at(blocks: &[Block], at: usize) -> (bool, bool) {
    let relu = matches!(blocks.get(at), Some(Block::Activation(Activation::Relu)));
    let pool = matches!(
        blocks.get(at + relu as usize),
        Some(Block::MaxPool { size: 2, stride: 2 })
    );
    (relu, pool)
}

/// What a plain convolution at `at` in `blocks` applies in its own op: the batch norm right
/// after it, folded into its weights (when `fold_bn`: scoring), then the ReLU and 2×2
/// max-pool that follow; `blocks` counts the convolution and these.
pub(crate) struct AfterConv<'a> {
    pub(crate) bn: Option<&'a BatchNorm>,
    pub(crate) relu: bool,
    pub(crate) pool: bool,
    pub(crate) blocks: usize,
}

impl AfterConv<'_> {
    /// The fused op for `conv` with what follows it (`input_grad`: whether to propagate
    /// into the input).
    pub(crate) fn spec(&self, conv: &Conv, input_grad: bool) -> ConvBlock {
        ConvBlock {
            kernel: conv.kernel,
            relu: self.relu,
            pool: self.pool,
            input_grad,
        }
    }
}

/// [`AfterConv`] for the plain convolution at `at`.
pub(crate) fn after_conv(blocks: &[Block], at: usize, fold_bn: bool) -> AfterConv<'_> {
    let bn = match blocks.get(at + 1) {
        Some(Block::BatchNorm(bn)) if fold_bn => Some(bn),
        _ => None,
    };
    let after = 1 + bn.is_some() as usize;
    let (relu, pool) = relu_and_pool_at(blocks, at + after);
    AfterConv {
        bn,
        relu,
        pool,
        blocks: after + relu as usize + pool as usize,
    }
}

pub(crate) enum Block {
    Conv(Conv),
    Activation(Activation),
    MaxPool {
        size: usize,
        stride: usize,
    },
    AvgPool {
        size: usize,
        stride: usize,
    },
    GlobalAvgPool,
    BatchNorm(BatchNorm),
    /// The inner blocks' output plus the input, through a strided 1×1 convolution when
    /// channels or size differ.
    Residual {
        inner: Vec<Block>,
        projection: Option<Conv>,
    },
    Dropout(f32),
    Flatten,
    Dense(Dense),
}

impl Block {
    /// Builds `layers` over `input` (shapes already checked by `layer::walk`), drawing
    /// initial weights from `rng` in layer order.
    pub(crate) fn build(layers: &[Layer], input: Shape, dev: &Cpu, rng: &mut Rng) -> Vec<Block> {
        let shapes = walk(layers, input).expect("checked: the layers fit their input");
        let inputs = std::iter::once(input).chain(shapes.outputs.iter().copied());
        layers
            .iter()
            .zip(inputs)
            .zip(&shapes.outputs)
            .map(|((layer, shape), out)| match layer {
                Layer::Conv {
                    filters,
                    kernel,
                    stride,
                    padding,
                } => Block::Conv(Conv {
                    stride: *stride,
                    padding: *padding,
                    ..Conv::new(dev, (channels(shape), *filters), *kernel, rng)
                }),
                Layer::Activation(f) => Block::Activation(*f),
                Layer::MaxPool { size, stride } => Block::MaxPool {
                    size: *size,
                    stride: *stride,
                },
                Layer::AvgPool { size, stride } => Block::AvgPool {
                    size: *size,
                    stride: *stride,
                },
                Layer::GlobalAvgPool => Block::GlobalAvgPool,
                Layer::BatchNorm { momentum, eps } => {
                    Block::BatchNorm(BatchNorm::new(dev, channels(shape), *momentum, *eps))
                }
                Layer::Residual(layers) => {
                    let inner = Block::build(layers, shape, dev, rng);
                    let stride = residual_projection(shape, *out).expect("checked");
                    let projection = stride.map(|stride| Conv {
                        stride,
                        ..Conv::new(dev, (channels(shape), channels(*out)), 1, rng)
                    });
                    Block::Residual { inner, projection }
                }
                Layer::Dropout { p } => Block::Dropout(*p as f32),
                Layer::Flatten => Block::Flatten,
                Layer::Dense { units } => Block::Dense(Dense::new(dev, shape.len(), *units, rng)),
            })
            .collect()
    }

    /// Every parameter of `blocks`, in order (a residual block's inner ones, then its
    /// projection's).
    pub(crate) fn params(blocks: &[Block]) -> Vec<&dyn AnyParam> {
        let mut out: Vec<&dyn AnyParam> = Vec::new();
        for block in blocks {
            match block {
                Block::Conv(c) => out.extend([&c.weight as &dyn AnyParam, &c.bias]),
                Block::Dense(d) => out.extend([&d.weight as &dyn AnyParam, &d.bias]),
                Block::BatchNorm(bn) => out.extend([&bn.gamma as &dyn AnyParam, &bn.beta]),
                Block::Residual { inner, projection } => {
                    out.extend(Block::params(inner));
                    if let Some(c) = projection {
                        out.extend([&c.weight as &dyn AnyParam, &c.bias]);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// [`Block::params`], to update them.
    pub(crate) fn params_mut(blocks: &mut [Block]) -> Vec<&mut dyn AnyParam> {
        let mut out: Vec<&mut dyn AnyParam> = Vec::new();
        for block in blocks {
            match block {
                Block::Conv(c) => out.extend([&mut c.weight as &mut dyn AnyParam, &mut c.bias]),
                Block::Dense(d) => out.extend([&mut d.weight as &mut dyn AnyParam, &mut d.bias]),
                Block::BatchNorm(bn) => {
                    out.extend([&mut bn.gamma as &mut dyn AnyParam, &mut bn.beta])
                }
                Block::Residual { inner, projection } => {
                    out.extend(Block::params_mut(inner));
                    if let Some(c) = projection {
                        out.extend([&mut c.weight as &mut dyn AnyParam, &mut c.bias]);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The batch-norm layers of `blocks`, in the order their forward passes run.
    pub(crate) fn batch_norms_mut(blocks: &mut [Block]) -> Vec<&mut BatchNorm> {
        let mut out = Vec::new();
        for block in blocks {
            match block {
                Block::BatchNorm(bn) => out.push(bn),
                Block::Residual { inner, .. } => out.extend(Block::batch_norms_mut(inner)),
                _ => {}
            }
        }
        out
    }

    /// Parameters and running statistics with names (`layer3.weight`, inside a residual
    /// block `layer3.1.weight`, its projection `layer3.projection.weight`).
    pub(crate) fn named_values(blocks: &[Block], prefix: &str, out: &mut Vec<(String, Vec<f32>)>) {
        for (i, block) in blocks.iter().enumerate() {
            let mut push = |name: &str, v: Vec<f32>| out.push((format!("{prefix}{i}.{name}"), v));
            match block {
                Block::Conv(c) => {
                    push("weight", c.weight.values());
                    push("bias", c.bias.values());
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
                Block::Residual { inner, projection } => {
                    Block::named_values(inner, &format!("{prefix}{i}."), out);
                    if let Some(c) = projection {
                        out.push((format!("{prefix}{i}.projection.weight"), c.weight.values()));
                        out.push((format!("{prefix}{i}.projection.bias"), c.bias.values()));
                    }
                }
                _ => {}
            }
        }
    }

    /// Restores values in the order of [`Block::named_values`].
    pub(crate) fn load_values<'a>(
        blocks: &mut [Block],
        values: &mut impl Iterator<Item = &'a Vec<f32>>,
    ) {
        for block in blocks {
            if let Block::Residual { inner, projection } = block {
                Block::load_values(inner, values);
                if let Some(c) = projection {
                    c.weight.set_values(values.next().expect("checked"));
                    c.bias.set_values(values.next().expect("checked"));
                }
                continue;
            }
            let mut next = || values.next().expect("checked: one value per name");
            match block {
                Block::Conv(c) => {
                    c.weight.set_values(next());
                    c.bias.set_values(next());
                }
                Block::Dense(d) => {
                    d.weight.set_values(next());
                    d.bias.set_values(next());
                }
                Block::BatchNorm(bn) => {
                    bn.gamma.set_values(next());
                    bn.beta.set_values(next());
                    bn.running_mean = next().clone();
                    bn.running_var = next().clone();
                }
                _ => {}
            }
        }
    }
}

fn channels(shape: Shape) -> usize {
    match shape {
        Shape::Image { c, .. } => c,
        Shape::Vector(n) => n,
    }
}
