//! Inverted dropout as an op on dfdx's tape, with masks drawn in parallel.
//!
//! dfdx's own dropout draws every mask value from one ChaCha generator on one thread
//! (measured: ~6% of a training step of the reference CNN, on the step's serial path). Here
//! each chunk of 4,096 values has its own SplitMix64 stream keyed by the call's seed and the
//! chunk's index, so the mask is the same whatever the number of threads.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::contiguous_vec;
use super::kernel::with_simd;
use super::layout::Act;
use crate::rng::Rng;

const CHUNK: usize = 4096;

/// Zeroes each value with probability `p` and scales the kept ones by 1/(1−p), so that the
/// expected activation is unchanged (as dfdx and Keras do). `seed` fixes the mask.
pub(crate) fn dropout<T: Tape<f32, Cpu>>(x: Act<T>, p: f32, seed: u64) -> Act<T> {
    let (x, mut tape) = x.split_tape();
    let shape = *x.shape();
    let scale = 1.0 / (1.0 - p);
    // Keep when a 24-bit uniform draw is at or above p (p·2²⁴ exact enough for any p).
    let threshold = (p as f64 * (1u64 << 24) as f64) as u64;
    let mask = Mask { threshold, scale };
    let mut factors = vec![0.0f32; shape.0 * shape.1];
    factors
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(chunk, factors)| {
            mask.fill(
                seed ^ (chunk as u64).wrapping_mul(0xd1b5_4a32_d192_ed03),
                factors,
            )
        });
    let mut values = contiguous_vec(&x);
    values
        .par_chunks_mut(CHUNK)
        .zip(factors.par_chunks(CHUNK))
        .for_each(|(v, f)| v.iter_mut().zip(f).for_each(|(v, f)| *v *= f));
    let y = x.device().tensor_from_vec(values, shape);
    if T::OWNS_TAPE {
        let (x_ghost, y_ghost) = (x.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            let dx = grads.get_or_alloc_mut(&x_ghost)?;
            dx.par_chunks_mut(CHUNK)
                .zip(dy.par_chunks(CHUNK))
                .zip(factors.par_chunks(CHUNK))
                .for_each(|((dx, dy), f)| {
                    for ((d, g), f) in dx.iter_mut().zip(dy).zip(f) {
                        *d += g * f;
                    }
                });
            **grads.get_or_alloc_mut(&y_ghost)? = dy;
            Ok(())
        });
    }
    y.put_tape(tape)
}

/// Keeps a value when a draw's top 24 bits are at least `threshold`, scaled by `scale`.
struct Mask {
    threshold: u64,
    scale: f32,
}

impl Mask {
    with_simd! {
        /// The chunk's factors from its stream, `seed`: value i from the stream's i-th draw
        /// (computed from i, so the loop runs as vectors).
        fn fill / fill_avx2 / fill_avx512 => fill_here(&self, seed: u64, factors: &mut [f32])
    }

    #[inline(always)]
    fn fill_here(&self, seed: u64, factors: &mut [f32]) {
        for (i, f) in factors.iter_mut().enumerate() {
            let keep = Rng::nth(seed, i as u64) >> 40 >= self.threshold;
            *f = if keep { self.scale } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// About p of the values are dropped, the rest scaled by 1/(1−p); the gradient flows
    /// through exactly the kept ones with the same factor; the seed fixes the mask.
    #[test]
    fn drops_about_p_scales_the_rest_and_routes_gradients_alike() {
        let dev = Cpu::seed_from_u64(0);
        let n = 20_000;
        let x = dev.tensor_from_vec(vec![1.0f32; n], (n / 4, 4usize));
        let y = dropout(x.leaky_trace(), 0.25, 7);
        let values = y.as_vec();
        let kept = values.iter().filter(|v| **v != 0.0).count();
        assert!(
            (kept as f64 / n as f64 - 0.75).abs() < 0.02,
            "kept {kept} of {n}"
        );
        assert!(values
            .iter()
            .all(|v| *v == 0.0 || (*v - 1.0 / 0.75).abs() < 1e-6));
        let grads = y.sum().backward();
        assert_eq!(grads.get(&x).as_vec(), values);
        let again = dropout(x.clone(), 0.25, 7).as_vec();
        assert_eq!(again, values);
        assert_ne!(dropout(x, 0.25, 8).as_vec(), values);
    }
}
