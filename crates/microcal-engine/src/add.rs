//! The sum of two activations of the same shape (a residual block's output and its
//! input), as one op on dfdx's tape, in parallel chunks. dfdx's own `+` runs on one
//! thread going forward and backward, and the step's other threads wait meanwhile: in
//! `cnn_modern` it was, after copying and zeroing buffers, the largest part of a step that
//! ran on one core (273 of 1,034 such samples, `perf` at 2 kHz, AMD EPYC Zen 3,
//! 2026-12-02). The numbers are dfdx's: the same additions, one per value.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::contiguous_vec;
use super::copies::copied;
use super::layout::Act;

/// Values per parallel chunk.
const CHUNK: usize = 8192;

/// a + b, value by value.
pub(crate) fn add<T: Tape<f32, Cpu>>(a: Act<T>, b: Act<T>) -> Act<T> {
    assert_eq!(
        a.shape(),
        b.shape(),
        "adding activations of different shapes"
    );
    let (a, tape_a) = a.split_tape();
    let (b, tape_b) = b.split_tape();
    let mut tape = tape_a.merge(tape_b);
    let (left, right) = (contiguous_vec(&a), copied(&b));
    let mut out = left;
    add_into(&mut out, &right);
    let y = a.device().tensor_from_vec(out, *a.shape());
    if T::OWNS_TAPE {
        let (a_ghost, b_ghost, y_ghost) = (a.ghost(), b.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            for ghost in [&a_ghost, &b_ghost] {
                let dx = grads.get_or_alloc_mut(ghost)?;
                dx.par_chunks_mut(CHUNK)
                    .zip(dy.par_chunks(CHUNK))
                    .for_each(|(dx, dy)| dx.iter_mut().zip(dy).for_each(|(d, g)| *d += g));
            }
            **grads.get_or_alloc_mut(&y_ghost)? = dy;
            Ok(())
        });
    }
    y.put_tape(tape)
}

/// `out` += `right`, value by value, in parallel chunks: [`add`]'s sum on plain values
/// (scoring runs it so, `scoring_prefix`).
pub(crate) fn add_into(out: &mut [f32], right: &[f32]) {
    out.par_chunks_mut(CHUNK)
        .zip(right.par_chunks(CHUNK))
        .for_each(|(out, right)| out.iter_mut().zip(right).for_each(|(o, r)| *o += r));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The output and the input's gradient with `add` or with dfdx's `+`, in a residual
    /// block's pattern: an input used twice, once through another op and once as it is.
    fn residual(ours: bool) -> (Vec<f32>, Vec<f32>) {
        let dev = Cpu::seed_from_u64(0);
        let mut rng = crate::rng::Rng::new(4);
        let shape = (CHUNK / 4 + 3, 5); // more than one chunk
        let mut values = || {
            let v = (0..shape.0 * shape.1).map(|_| rng.normal() as f32);
            dev.tensor_from_vec(v.collect(), shape)
        };
        let (a, r, w) = (values(), values(), values());
        let x = a.leaky_trace();
        let skip = x.retaped();
        let main = x * r;
        let sum = if ours { add(main, skip) } else { main + skip };
        let out = sum.as_vec();
        let grads = (sum * w).sum().backward();
        (out, grads.get(&a).as_vec())
    }

    #[test]
    fn equals_dfdx_addition() {
        let ours = residual(true);
        assert_eq!(ours, residual(false));
        assert!(ours.1.iter().all(|g| *g != 0.0));
    }
}
