//! Elementwise activations (other than a ReLU fused into the convolution before it) as one
//! op on dfdx's tape: the forward values and the derivative in one pass each, in parallel
//! chunks.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::contiguous_vec;
use super::layer::Activation;
use super::layout::Act;

const CHUNK: usize = 8192;

impl Activation {
    /// f(x).
    #[inline(always)]
    pub(crate) fn value(self, x: f32) -> f32 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Activation::Elu => {
                if x > 0.0 {
                    x
                } else {
                    x.exp_m1()
                }
            }
            Activation::Gelu => {
                let x = x as f64;
                (0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))) as f32
            }
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
        }
    }

    /// f′(x), given x and y = f(x).
    #[inline(always)]
    pub(crate) fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            Activation::Relu => (x > 0.0) as u8 as f32,
            Activation::LeakyRelu { alpha } => {
                if x > 0.0 {
                    1.0
                } else {
                    alpha
                }
            }
            Activation::Elu => {
                if x > 0.0 {
                    1.0
                } else {
                    y + 1.0
                }
            }
            Activation::Gelu => {
                let x = x as f64;
                let cdf = 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                (cdf + x * pdf) as f32
            }
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Tanh => 1.0 - y * y,
        }
    }
}

/// The error function, to within 1.2e-7 (Numerical Recipes' `erfc` by Chebyshev fit), in f64
/// so that GELU's f32 values are exact to the last bit or two.
fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - erfc
    } else {
        erfc - 1.0
    }
}

/// `f` applied to every value.
pub(crate) fn activate<T: Tape<f32, Cpu>>(x: Act<T>, f: Activation) -> Act<T> {
    let (x, mut tape) = x.split_tape();
    let shape = *x.shape();
    let input = contiguous_vec(&x);
    let mut out = vec![0.0; input.len()];
    out.par_chunks_mut(CHUNK)
        .zip(input.par_chunks(CHUNK))
        .for_each(|(y, x)| y.iter_mut().zip(x).for_each(|(y, x)| *y = f.value(*x)));
    let y = x.device().tensor_from_vec(out.clone(), shape);
    if T::OWNS_TAPE {
        let (x_ghost, y_ghost) = (x.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            let dx = grads.get_or_alloc_mut(&x_ghost)?;
            dx.par_chunks_mut(CHUNK)
                .zip(dy.par_chunks(CHUNK))
                .zip(input.par_chunks(CHUNK).zip(out.par_chunks(CHUNK)))
                .for_each(|((dx, dy), (x, y))| {
                    for i in 0..dx.len() {
                        dx[i] += dy[i] * f.derivative(x[i], y[i]);
                    }
                });
            **grads.get_or_alloc_mut(&y_ghost)? = dy;
            Ok(())
        });
    }
    y.put_tape(tape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences() {
        let kinds = [
            Activation::Relu,
            Activation::LeakyRelu { alpha: 0.2 },
            Activation::Elu,
            Activation::Gelu,
            Activation::Sigmoid,
            Activation::Tanh,
        ];
        for f in kinds {
            for x in [-2.5f32, -0.7, -0.1, 0.3, 1.1, 3.0] {
                let h = 1e-3f64;
                let v = |x: f64| f.value(x as f32) as f64;
                let numeric = (v(x as f64 + h) - v(x as f64 - h)) / (2.0 * h);
                let exact = f.derivative(x, f.value(x)) as f64;
                assert!(
                    (numeric - exact).abs() < 2e-3,
                    "{f:?} at {x}: {numeric} vs {exact}"
                );
            }
        }
        assert!((erf(0.5) - 0.520_499_877_8).abs() < 2e-7);
        assert!((erf(-1.5) + 0.966_105_146_5).abs() < 2e-7);
    }
}
