//! Elementwise activations (other than a ReLU fused into the convolution before it) as one
//! op on dfdx's tape: the forward values and the derivative in one pass each, in parallel
//! chunks, each loop compiled for AVX2 where the CPU has it.
//!
//! eˣ, tanh and Φ (GELU's normal distribution function) are our own polynomials in f32
//! rather than libm's: libm is a call per value, which no loop vectorises. Bake-off
//! (`microcal bench layers --repeats 3 --steps 10`, AMD EPYC Zen 3, 2 cores, AVX2,
//! 2026-12-02; cost over a 3×3 convolution with the same output, training / scoring):
//! with libm (GELU in f64), ELU 1.04 / 1.31, GELU 2.63 / 1.92, tanh 1.42 / 2.31; with these
//! polynomials and one loop per activation kind, 0.28 / 0.60, 0.75-0.79 / 0.74-1.05 and
//! 0.28-0.31 / 0.65-0.86. They agree with libm to 3e-7 (relative; the tests check) and with
//! Keras at the parity tests' tolerance.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::copies::copied;
use super::filled_in_parallel;
use super::kernel::with_simd;
use super::layer::Activation;
use super::layout::Act;

const CHUNK: usize = 8192;

/// Runs `$body` with `$f` bound to `$kind` in a match arm of its own, so that the
/// activation is a constant inside each loop and the loop vectorises (a match per value
/// does not).
macro_rules! for_each_kind {
    ($kind:expr, |$f:ident| $body:block) => {
        match $kind {
            Activation::Relu => {
                let $f = Activation::Relu;
                $body
            }
            Activation::LeakyRelu { alpha } => {
                let $f = Activation::LeakyRelu { alpha };
                $body
            }
            Activation::Elu => {
                let $f = Activation::Elu;
                $body
            }
            Activation::Gelu => {
                let $f = Activation::Gelu;
                $body
            }
            Activation::Sigmoid => {
                let $f = Activation::Sigmoid;
                $body
            }
            Activation::Tanh => {
                let $f = Activation::Tanh;
                $body
            }
        }
    };
}

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
                let below = exp(x.min(0.0)) - 1.0;
                if x > 0.0 {
                    x
                } else {
                    below
                }
            }
            Activation::Gelu => x * normal_cdf(x),
            Activation::Sigmoid => 1.0 / (1.0 + exp(-x)),
            Activation::Tanh => tanh(x),
        }
    }

    /// Whether [`Activation::derivative`] reads y (so a backward pass keeps the outputs).
    fn derivative_reads_output(self) -> bool {
        matches!(
            self,
            Activation::Elu | Activation::Sigmoid | Activation::Tanh
        )
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
                let pdf = exp(-0.5 * x * x) * FRAC_1_SQRT_2PI;
                normal_cdf(x) + x * pdf
            }
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Tanh => 1.0 - y * y,
        }
    }

    with_simd! {
        /// y = f(x), value by value.
        fn apply / apply_avx2 / apply_avx512 => apply_here(&self, x: &[f32], y: &mut [f32])
    }

    #[inline(always)]
    fn apply_here(&self, x: &[f32], y: &mut [f32]) {
        for_each_kind!(*self, |f| {
            for (y, x) in y.iter_mut().zip(x) {
                *y = f.value(*x);
            }
        })
    }

    with_simd! {
        /// dx += dy·f′(x), value by value, given y = f(x).
        fn add_gradient / add_gradient_avx2 / add_gradient_avx512 => add_gradient_here(
            &self, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32],
        )
    }

    #[inline(always)]
    fn add_gradient_here(&self, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
        let n = dx.len();
        let (x, y, dy) = (&x[..n], &y[..n], &dy[..n]);
        for_each_kind!(*self, |f| {
            for i in 0..n {
                dx[i] += dy[i] * f.derivative(x[i], y[i]);
            }
        })
    }
}

/// 1/√(2π).
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// eˣ in f32 to about 1 ulp (Cephes' `expf`: x = n·ln 2 + r, a degree-6 polynomial in r,
/// then 2ⁿ put in the exponent). Written without calls or branches, so that the loops
/// above vectorise; libm's `expf` is a call per value.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// tanh(x) in f32 (Cephes' `tanhf`: an odd polynomial below |x| = 0.625, from eˣ above).
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let z = x * x;
    let small = ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 0.133_314_42)
        * z
        - 0.333_332_8)
        * z
        * x
        + x;
    let large = 1.0 - 2.0 / (exp(2.0 * x.abs()) + 1.0);
    if x.abs() < 0.625 {
        small
    } else {
        large.copysign(x)
    }
}

/// Φ(x), the standard normal distribution function, from erfc(|x|/√2) (Numerical Recipes'
/// Chebyshev fit, fractional error under 1.2e-7), without the cancellation of 1 + erf for
/// negative x.
#[inline(always)]
fn normal_cdf(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_204
                                + t * (1.488_515_9 + t * (-0.822_152_2 + t * 0.170_872_77))))))));
    let half_erfc = 0.5 * t * exp(poly);
    if x >= 0.0 {
        1.0 - half_erfc
    } else {
        half_erfc
    }
}

/// `f` applied to every value.
pub(crate) fn activate<T: Tape<f32, Cpu>>(x: Act<T>, f: Activation) -> Act<T> {
    let (x, mut tape) = x.split_tape();
    let shape = *x.shape();
    let input = copied(&x);
    let out = activated(&input, f);
    // The backward pass keeps the outputs where f′ reads them (it is cheaper from them).
    let kept = match T::OWNS_TAPE && f.derivative_reads_output() {
        true => {
            filled_in_parallel(out.len(), CHUNK, |k, y| {
                y.copy_from_slice(&out[k * CHUNK..][..y.len()])
            })
            .0
        }
        false => Vec::new(),
    };
    let y = x.device().tensor_from_vec(out, shape);
    if T::OWNS_TAPE {
        let (x_ghost, y_ghost) = (x.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            let dx = grads.get_or_alloc_mut(&x_ghost)?;
            // Where f′ does not read y, any values of the right length stand in for it.
            let out: &[f32] = if kept.is_empty() { &input } else { &kept };
            dx.par_chunks_mut(CHUNK)
                .zip(dy.par_chunks(CHUNK))
                .zip(input.par_chunks(CHUNK).zip(out.par_chunks(CHUNK)))
                .for_each(|((dx, dy), (x, y))| f.add_gradient(x, y, dy, dx));
            **grads.get_or_alloc_mut(&y_ghost)? = dy;
            Ok(())
        });
    }
    y.put_tape(tape)
}

/// `f` of each value, in parallel chunks: [`activate`]'s output, on plain values (scoring
/// runs it so, `scoring_prefix`).
pub(crate) fn activated(input: &[f32], f: Activation) -> Vec<f32> {
    let apply = |k: usize, y: &mut [f32]| f.apply(&input[k * CHUNK..][..y.len()], y);
    filled_in_parallel(input.len(), CHUNK, apply).0
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
        // Φ against erf's tabled values: Φ(x) = (1 + erf(x/√2)) / 2.
        assert!((normal_cdf(0.5 * std::f32::consts::SQRT_2) - 0.760_249_9).abs() < 2e-7);
        assert!((normal_cdf(-1.5 * std::f32::consts::SQRT_2) - 0.016_947_427).abs() < 2e-8);
        // eˣ and tanh against libm's, across their ranges (relative, or absolute near 0).
        for i in -2000..=2000 {
            let x = i as f32 * 0.04;
            let (e, want) = (exp(x), x.exp());
            assert!((e - want).abs() <= 3e-7 * want, "exp({x}): {e} vs {want}");
            let (t, want) = (tanh(x), x.tanh());
            assert!(
                (t - want).abs() <= 3e-7 * want.abs().max(1e-3),
                "tanh({x}): {t} vs {want}"
            );
        }
    }
}
