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
//!
//! GELU's backward pass reads Φ(x) kept from the forward pass (written in the same pass as
//! the outputs) instead of computing it again: the same numbers, one eˣ a value backward
//! instead of two and a division. AMD EPYC Zen 5, 2 cores, AVX-512, 2026-12-03, `bench
//! layers --repeats 5 --steps 40` alternated with the tree before (f051dc8), three rounds:
//! GELU's training step 0.67-0.70 of the convolution's against 0.91-1.09.
//!
//! eˣ puts its exponent together from the bits of n rather than by `n as i32`, which LLVM
//! compiled lane by lane (Rust's cast saturates): the same numbers, and every loop that
//! computes eˣ runs 16 values at a time. The same sitting, three rounds against the tree
//! before (9b7b20b): GELU 0.25-0.36 / 0.30-0.44 (training / scoring) against 0.64-0.78 /
//! 0.77-0.92, ELU 0.18-0.20 / 0.07-0.19 against 0.31-0.37 / 0.30-0.37, sigmoid and tanh
//! likewise halved or better.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::copies::copied;
use super::kernel::with_simd;
use super::layer::Activation;
use super::layout::Act;
use super::{filled_in_parallel, zeros};

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

    /// Whether [`Activation::derivative`] reads a kept value (so a backward pass keeps
    /// one per input): the output y for ELU, sigmoid and tanh, Φ(x) for GELU.
    fn derivative_reads_kept(self) -> bool {
        matches!(
            self,
            Activation::Elu | Activation::Gelu | Activation::Sigmoid | Activation::Tanh
        )
    }

    /// f(x) and the value a backward pass keeps for f′ ([`Activation::derivative`]): Φ(x)
    /// for GELU, the output itself otherwise. Each is the same number as computed alone.
    #[inline(always)]
    fn value_and_kept(self, x: f32) -> (f32, f32) {
        match self {
            Activation::Gelu => {
                let cdf = normal_cdf(x);
                (x * cdf, cdf)
            }
            f => {
                let y = f.value(x);
                (y, y)
            }
        }
    }

    /// f′(x), given x and k, what [`Activation::value_and_kept`] keeps: Φ(x) for GELU
    /// (from the forward pass rather than again: half of GELU's backward cost), y = f(x)
    /// otherwise.
    #[inline(always)]
    pub(crate) fn derivative(self, x: f32, k: f32) -> f32 {
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
                    k + 1.0
                }
            }
            Activation::Gelu => {
                let pdf = exp(-0.5 * x * x) * FRAC_1_SQRT_2PI;
                k + x * pdf
            }
            Activation::Sigmoid => k * (1.0 - k),
            Activation::Tanh => 1.0 - k * k,
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
        /// y = f(x) and k, what the backward pass keeps, value by value.
        fn apply_keeping / apply_keeping_avx2 / apply_keeping_avx512 => apply_keeping_here(
            &self, x: &[f32], y: &mut [f32], k: &mut [f32],
        )
    }

    #[inline(always)]
    fn apply_keeping_here(&self, x: &[f32], y: &mut [f32], k: &mut [f32]) {
        let n = y.len();
        let (x, k) = (&x[..n], &mut k[..n]);
        for_each_kind!(*self, |f| {
            for i in 0..n {
                (y[i], k[i]) = f.value_and_kept(x[i]);
            }
        })
    }

    with_simd! {
        /// dx += dy·f′(x), value by value, given k (see [`Activation::derivative`]).
        fn add_gradient / add_gradient_avx2 / add_gradient_avx512 => add_gradient_here(
            &self, x: &[f32], k: &[f32], dy: &[f32], dx: &mut [f32],
        )
    }

    #[inline(always)]
    fn add_gradient_here(&self, x: &[f32], k: &[f32], dy: &[f32], dx: &mut [f32]) {
        let n = dx.len();
        let (x, k, dy) = (&x[..n], &k[..n], &dy[..n]);
        for_each_kind!(*self, |f| {
            for i in 0..n {
                dx[i] += dy[i] * f.derivative(x[i], k[i]);
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
    e * f32::from_bits(((whole_to_i32(n) + 127) as u32) << 23)
}

/// `n as i32` for a whole number |n| < 2²², by its bits: n + 1.5·2²³ holds n in the low
/// bits of its mantissa. Rust's `as` saturates (and maps NaN to 0), which LLVM does lane by
/// lane, so it kept every loop that computes eˣ from running 16 values at a time: GELU
/// scored at up to 1.2× a convolution's cost with it (`bench layers`).
#[inline(always)]
fn whole_to_i32(n: f32) -> i32 {
    const SHIFT: f32 = 12_582_912.0; // 1.5·2²³
    (n + SHIFT).to_bits() as i32 - SHIFT.to_bits() as i32
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
    // The backward pass keeps what f′ reads (the outputs, or GELU's Φ(x)), written in the
    // same pass as the outputs.
    let (out, kept) = match T::OWNS_TAPE && f.derivative_reads_kept() {
        true => {
            let (mut out, mut kept) = (zeros(input.len()), zeros(input.len()));
            (out.par_chunks_mut(CHUNK).zip(kept.par_chunks_mut(CHUNK)))
                .zip(input.par_chunks(CHUNK))
                .for_each(|((y, k), x)| f.apply_keeping(x, y, k));
            (out, kept)
        }
        false => (activated(&input, f), Vec::new()),
    };
    let y = x.device().tensor_from_vec(out, shape);
    if T::OWNS_TAPE {
        let (x_ghost, y_ghost) = (x.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            let dx = grads.get_or_alloc_mut(&x_ghost)?;
            // Where f′ reads nothing kept, any values of the right length stand in.
            let kept: &[f32] = if kept.is_empty() { &input } else { &kept };
            dx.par_chunks_mut(CHUNK)
                .zip(dy.par_chunks(CHUNK))
                .zip(input.par_chunks(CHUNK).zip(kept.par_chunks(CHUNK)))
                .for_each(|((dx, dy), (x, k))| f.add_gradient(x, k, dy, dx));
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
                let exact = f.derivative(x, f.value_and_kept(x).1) as f64;
                assert!(
                    (numeric - exact).abs() < 2e-3,
                    "{f:?} at {x}: {numeric} vs {exact}"
                );
            }
        }
        // The forward pass's kept values are the numbers f and f′ compute alone (GELU's
        // Φ(x) kept, not computed again going backward, changes no bit).
        for i in -400..=400 {
            let x = i as f32 * 0.0173;
            for f in kinds {
                let (y, k) = f.value_and_kept(x);
                assert_eq!(y.to_bits(), f.value(x).to_bits(), "{f:?} at {x}");
                let alone = if f == Activation::Gelu {
                    normal_cdf(x)
                } else {
                    y
                };
                assert_eq!(k.to_bits(), alone.to_bits(), "{f:?} at {x}");
            }
        }
        // eˣ's exponent from the bits: `as i32` itself for every whole number it meets.
        for n in -200..=200 {
            assert_eq!(whole_to_i32(n as f32), n);
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
