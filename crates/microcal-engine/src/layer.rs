//! A network layer as the engine builds it (the experiment file's list is parsed into these
//! by the application), and the walk over a layer list that gives every layer's output
//! shape and parameter count: the one place that decides whether a stack fits its input,
//! used to check a file, to estimate its memory and to build the network.

use serde::{Deserialize, Serialize};

/// One layer. Pooling windows and strided convolutions drop what does not fill a window
/// (Keras's 'valid' pooling); 'same' convolutions pad as Keras does (the extra row or column,
/// when the padding is odd, at the bottom and right).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    Conv {
        filters: usize,
        kernel: usize,
        stride: usize,
        padding: Padding,
    },
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
    BatchNorm {
        momentum: f64,
        eps: f64,
    },
    /// The block's output plus its input (through a 1×1 convolution when channels or size
    /// differ).
    Residual(Vec<Layer>),
    Dropout {
        p: f64,
    },
    Flatten,
    Dense {
        units: usize,
    },
}

impl Layer {
    /// A 'same' convolution with stride 1 (the reference network's).
    pub fn conv(filters: usize, kernel: usize) -> Layer {
        Layer::Conv {
            filters,
            kernel,
            stride: 1,
            padding: Padding::Same,
        }
    }

    /// 2×2 max-pooling with stride 2 (`"maxpool"`).
    pub const MAXPOOL: Layer = Layer::MaxPool { size: 2, stride: 2 };
    /// ReLU (`"relu"`).
    pub const RELU: Layer = Layer::Activation(Activation::Relu);
    /// Batch normalisation with Keras's defaults (momentum 0.99, ε 1e-3).
    pub const BATCHNORM: Layer = Layer::BatchNorm {
        momentum: 0.99,
        eps: 1e-3,
    };
}

/// How a convolution treats the border.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Padding {
    /// Zero-padded so that the output has ⌈size / stride⌉ positions.
    Same,
    /// No padding: ⌊(size − kernel) / stride⌋ + 1 positions.
    Valid,
}

/// An elementwise activation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    Relu,
    /// x for x > 0, αx otherwise.
    LeakyRelu {
        alpha: f32,
    },
    /// x for x > 0, eˣ − 1 otherwise (α = 1, as Keras's default).
    Elu,
    /// x·Φ(x), the exact form (Keras's `approximate=False` default).
    Gelu,
    Sigmoid,
    Tanh,
}

/// The shape of the values between two layers, per image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Image { h: usize, w: usize, c: usize },
    Vector(usize),
}

impl Shape {
    /// Values per image.
    pub fn len(&self) -> usize {
        match *self {
            Shape::Image { h, w, c } => h * w * c,
            Shape::Vector(n) => n,
        }
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a layer cannot follow what comes before it: the index of the layer (in the list
/// given, or of the residual block holding it) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeError {
    pub index: usize,
    pub message: String,
}

/// What a layer list amounts to on a given input.
#[derive(Debug, Clone, PartialEq)]
pub struct Walk {
    /// Output shape of each layer, in order.
    pub outputs: Vec<Shape>,
    /// Trainable parameters of the whole list.
    pub parameters: usize,
    /// The largest number of values per image between two layers (inside residual blocks
    /// too), input included.
    pub widest: usize,
}

impl Walk {
    /// The shape after the last layer (the input's when there is none).
    pub fn output(&self, input: Shape) -> Shape {
        self.outputs.last().copied().unwrap_or(input)
    }
}

/// Output size of a 'same' or 'valid' window of `k` with stride `s` over `n` positions, or
/// `None` when the window does not fit.
pub fn window_output(n: usize, k: usize, s: usize, padding: Padding) -> Option<usize> {
    match padding {
        Padding::Same => Some(n.div_ceil(s)),
        Padding::Valid => (n >= k).then(|| (n - k) / s + 1),
    }
}

/// Top (or left) zero padding of a 'same' window: Keras's, half the total rounded down.
pub fn same_padding_before(n: usize, k: usize, s: usize) -> usize {
    let out = n.div_ceil(s);
    ((out - 1) * s + k).saturating_sub(n) / 2
}

/// The stride of the 1×1 projection a residual block needs to bring its input (`from`) to
/// its output (`to`), or why none can.
pub fn residual_projection(from: Shape, to: Shape) -> Result<Option<usize>, String> {
    match (from, to) {
        (
            Shape::Image { h, w, c },
            Shape::Image {
                h: oh,
                w: ow,
                c: oc,
            },
        ) => {
            if (h, w, c) == (oh, ow, oc) {
                return Ok(None);
            }
            let stride = h / oh.max(1);
            if stride >= 1 && h.div_ceil(stride) == oh && w.div_ceil(stride) == ow {
                Ok(Some(stride))
            } else {
                Err(format!(
                    "the block turns {h}x{w} into {oh}x{ow}, which no strided 1x1 \
                     projection of its input matches"
                ))
            }
        }
        _ => Err(
            "a residual block must take and give an image (no flatten, dense or \
                  global pooling inside)"
                .into(),
        ),
    }
}

/// Walks `layers` over `input`, giving each layer's output shape and the parameter count,
/// or the first layer that cannot follow its input.
pub fn walk(layers: &[Layer], input: Shape) -> Result<Walk, ShapeError> {
    let mut shape = input;
    let mut parameters = 0;
    let mut widest = input.len();
    let mut outputs = Vec::with_capacity(layers.len());
    for (index, layer) in layers.iter().enumerate() {
        let fail = |message: String| ShapeError { index, message };
        let image = |what: &str| match shape {
            Shape::Image { h, w, c } => Ok((h, w, c)),
            Shape::Vector(_) => Err(fail(format!(
                "{what} needs an image, but the input was flattened"
            ))),
        };
        shape = match layer {
            Layer::Conv {
                filters,
                kernel,
                stride,
                padding,
            } => {
                let (h, w, c) = image("a convolution")?;
                let size = |n| window_output(n, *kernel, *stride, *padding);
                let (Some(oh), Some(ow)) = (size(h), size(w)) else {
                    return Err(fail(format!(
                        "a {kernel}x{kernel} 'valid' convolution does not fit a {h}x{w} image"
                    )));
                };
                parameters += kernel * kernel * c * filters + filters;
                Shape::Image {
                    h: oh,
                    w: ow,
                    c: *filters,
                }
            }
            Layer::MaxPool { size, stride } | Layer::AvgPool { size, stride } => {
                let (h, w, c) = image("pooling")?;
                let out = |n| window_output(n, *size, *stride, Padding::Valid);
                let (Some(oh), Some(ow)) = (out(h), out(w)) else {
                    return Err(fail(format!(
                        "cannot pool a {h}x{w} image with a {size}x{size} window: too much \
                         pooling for the input"
                    )));
                };
                Shape::Image { h: oh, w: ow, c }
            }
            Layer::GlobalAvgPool => Shape::Vector(image("global pooling")?.2),
            Layer::BatchNorm { .. } => {
                parameters += 2 * match shape {
                    Shape::Image { c, .. } => c,
                    Shape::Vector(n) => n,
                };
                shape
            }
            Layer::Residual(inner) => {
                image("a residual block")?;
                let block = walk(inner, shape).map_err(|e| {
                    fail(format!(
                        "inside the block, layer {}: {}",
                        e.index, e.message
                    ))
                })?;
                let out = block.output(shape);
                let projection = residual_projection(shape, out).map_err(fail)?;
                parameters += block.parameters;
                widest = widest.max(block.widest);
                if let (Some(_), Shape::Image { c: from, .. }, Shape::Image { c: to, .. }) =
                    (projection, shape, out)
                {
                    parameters += from * to + to;
                }
                out
            }
            Layer::Flatten => match shape {
                Shape::Image { h, w, c } => Shape::Vector(h * w * c),
                Shape::Vector(_) => return Err(fail("already flat".into())),
            },
            Layer::Dense { units } => match shape {
                Shape::Vector(n) => {
                    parameters += n * units + units;
                    Shape::Vector(*units)
                }
                Shape::Image { .. } => {
                    return Err(fail(
                        "dense layers need \"flatten\" or \"globalavgpool\" before them".into(),
                    ))
                }
            },
            Layer::Activation(_) | Layer::Dropout { .. } => shape,
        };
        if shape.is_empty() {
            return Err(fail("its output would be empty".into()));
        }
        widest = widest.max(shape.len());
        outputs.push(shape);
    }
    Ok(Walk {
        outputs,
        parameters,
        widest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_keras() {
        // Keras: 'same' gives ceil(n/s), 'valid' floor((n-k)/s)+1.
        assert_eq!(window_output(60, 3, 2, Padding::Same), Some(30));
        assert_eq!(window_output(15, 3, 2, Padding::Same), Some(8));
        assert_eq!(window_output(60, 3, 1, Padding::Valid), Some(58));
        assert_eq!(window_output(15, 2, 2, Padding::Valid), Some(7));
        assert_eq!(window_output(2, 3, 1, Padding::Valid), None);
        // tf.nn: pad total max((out-1)s+k-n, 0), top half of it rounded down.
        assert_eq!(same_padding_before(60, 3, 1), 1);
        assert_eq!(same_padding_before(60, 3, 2), 0);
        assert_eq!(same_padding_before(15, 3, 2), 1);
        assert_eq!(same_padding_before(8, 4, 1), 1);
    }

    #[test]
    fn a_residual_block_projects_when_it_must_and_refuses_what_it_cannot() {
        let input = Shape::Image { h: 8, w: 8, c: 4 };
        let same = walk(
            &[Layer::Residual(vec![Layer::conv(4, 3), Layer::RELU])],
            input,
        )
        .unwrap();
        assert_eq!(same.parameters, 3 * 3 * 4 * 4 + 4);
        let strided = Layer::Conv {
            filters: 8,
            kernel: 3,
            stride: 2,
            padding: Padding::Same,
        };
        let down = walk(&[Layer::Residual(vec![strided])], input).unwrap();
        assert_eq!(down.outputs, vec![Shape::Image { h: 4, w: 4, c: 8 }]);
        assert_eq!(down.parameters, 3 * 3 * 4 * 8 + 8 + 4 * 8 + 8);
        let flat = walk(&[Layer::Residual(vec![Layer::GlobalAvgPool])], input).unwrap_err();
        assert!(
            flat.message.contains("must take and give an image"),
            "{flat:?}"
        );
        let valid = Layer::Conv {
            filters: 4,
            kernel: 3,
            stride: 1,
            padding: Padding::Valid,
        };
        let err = walk(&[Layer::Residual(vec![valid])], input).unwrap_err();
        assert!(err.message.contains("8x8 into 6x6"), "{err:?}");
    }
}
