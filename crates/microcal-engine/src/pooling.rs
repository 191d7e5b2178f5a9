//! Pooling with any window and stride ('valid': windows that do not fit are dropped), max or
//! average, and global average pooling, as ops on dfdx's tape. The reference network's 2×2
//! max-pool after a convolution runs inside the convolution instead (`conv`), and a lone
//! 2×2 max-pool in `maxpool`, both with the first-corner rule for ties; here ties go to the
//! first position in the window too.
//!
//! Each image's windows are one function compiled per SIMD path, holding 16 channels at a
//! time in registers across a window; scoring keeps no maximum's position, and runs on
//! plain values (`scoring_prefix`) without the input copy of an op on the tape. Before,
//! the mean's loop was compiled for baseline x86-64 and the max's select, written back at
//! every position of the window, became a masked store that the next position's load
//! waited for. AMD EPYC Zen 5, 2 cores, AVX-512, 2026-12-03, `bench layers --repeats 5
//! --steps 40` alternated with the tree before (f051dc8), three rounds, scoring cost over the
//! convolution's: 3×3 max-pool (stride 2) 0.54-0.68 against 0.99-1.11, 2×2 average pool
//! 0.63-0.77 against 1.27-1.36; training, whose passes are the same, 0.35-0.36 against
//! 0.32-0.46 and 0.53-0.70 against 0.53-0.60.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::copies::copied;
use super::kernel::with_simd;
use super::layout::{Act, Geometry};
use super::zeros;

/// Max or average over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reduce {
    Max,
    Mean,
}

/// `reduce` over `size`×`size` windows `stride` apart. Returns the pooled activations and
/// their geometry.
pub(crate) fn pool<T: Tape<f32, Cpu>>(
    x: Act<T>,
    g: Geometry,
    (size, stride): (usize, usize),
    reduce: Reduce,
) -> (Act<T>, Geometry) {
    let (x, mut tape) = x.split_tape();
    let c = x.shape().1;
    let input = copied(&x);
    // For max with a backward pass: the input position (within its image) each output came
    // from.
    let track = reduce == Reduce::Max && T::OWNS_TAPE;
    let (windows, out_g) = Windows::over((c, g), (size, stride), reduce);
    let (out, argmax) = windows.pool(&input, (g, out_g), track);
    let (in_per_image, out_per_image) = (g.h * g.w * c, out_g.h * out_g.w * c);
    let scale = windows.scale();
    let y = x.device().tensor_from_vec(out, (out_g.positions(), c));
    if T::OWNS_TAPE {
        let (x_ghost, y_ghost) = (x.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            let dx = grads.get_or_alloc_mut(&x_ghost)?;
            dx.par_chunks_mut(in_per_image)
                .zip(dy.par_chunks(out_per_image))
                .enumerate()
                .for_each(|(image, (dx, dy))| match reduce {
                    Reduce::Max => {
                        let arg = &argmax[image * out_per_image..][..out_per_image];
                        for (a, d) in arg.iter().zip(dy) {
                            dx[*a as usize] += d;
                        }
                    }
                    Reduce::Mean => {
                        for oy in 0..out_g.h {
                            for ox in 0..out_g.w {
                                let d = &dy[(oy * out_g.w + ox) * c..][..c];
                                for p in windows.window(oy, ox) {
                                    dx[p..p + c]
                                        .iter_mut()
                                        .zip(d)
                                        .for_each(|(x, d)| *x += d * scale);
                                }
                            }
                        }
                    }
                });
            **grads.get_or_alloc_mut(&y_ghost)? = dy;
            Ok(())
        });
    }
    (y.put_tape(tape), out_g)
}

/// `reduce` over `size`×`size` windows `stride` apart, on plain values (`c` channels over
/// `g`): the output and its geometry. Scoring's (`scoring_prefix`).
pub(crate) fn pooled(
    input: &[f32],
    (c, g): (usize, Geometry),
    window: (usize, usize),
    reduce: Reduce,
) -> (Vec<f32>, Geometry) {
    let (windows, out_g) = Windows::over((c, g), window, reduce);
    (windows.pool(input, (g, out_g), false).0, out_g)
}

/// The windows of one pooling op over an image of `in_w` columns and `c` channels.
#[derive(Clone, Copy)]
struct Windows {
    size: usize,
    stride: usize,
    in_w: usize,
    out_w: usize,
    c: usize,
    reduce: Reduce,
}

impl Windows {
    /// The windows over `c` channels of `g`, and the output's geometry.
    fn over(
        (c, g): (usize, Geometry),
        (size, stride): (usize, usize),
        reduce: Reduce,
    ) -> (Self, Geometry) {
        let out_g = Geometry {
            batch: g.batch,
            h: (g.h - size) / stride + 1,
            w: (g.w - size) / stride + 1,
        };
        let windows = Windows {
            size,
            stride,
            in_w: g.w,
            out_w: out_g.w,
            c,
            reduce,
        };
        (windows, out_g)
    }

    /// The pooled outputs of `input` (images of geometry `g`, pooled to `out_g`), and, when
    /// `track`, where each maximum came from (within its image; else nothing), the images
    /// in parallel.
    fn pool(
        &self,
        input: &[f32],
        (g, out_g): (Geometry, Geometry),
        track: bool,
    ) -> (Vec<f32>, Vec<u32>) {
        let c = self.c;
        let (in_per_image, out_per_image) = (g.h * g.w * c, out_g.h * out_g.w * c);
        let mut out = zeros(out_g.positions() * c);
        let mut argmax = vec![0u32; if track { out.len() } else { 0 }];
        let arg_chunks = argmax
            .chunks_mut(out_per_image.max(1))
            .chain(std::iter::repeat_with(|| &mut [][..]));
        let items: Vec<_> = out
            .chunks_mut(out_per_image)
            .zip(input.chunks(in_per_image))
            .zip(arg_chunks)
            .collect();
        items
            .into_par_iter()
            .for_each(|((out, img), arg)| self.pool_image(img, out, arg));
        (out, argmax)
    }

    /// 1 / the window's positions: the mean's factor.
    fn scale(&self) -> f32 {
        1.0 / (self.size * self.size) as f32
    }

    with_simd! {
        /// One image's pooled outputs, window by window: the first position's values, then
        /// each further position's (in row order) kept if larger or added, then, for the
        /// mean, scaled. `arg` (empty: not kept) receives where each maximum came from.
        fn pool_image / pool_image_avx2 / pool_image_avx512 => pool_image_here(
            &self, img: &[f32], out: &mut [f32], arg: &mut [u32],
        )
    }

    #[inline(always)]
    fn pool_image_here(&self, img: &[f32], out: &mut [f32], arg: &mut [u32]) {
        let c = self.c;
        let scale = self.scale();
        for (o, out) in out.chunks_exact_mut(c).enumerate() {
            let mut positions = self.window(o / self.out_w, o % self.out_w);
            let first = positions.next().expect("a window has a position");
            out.copy_from_slice(&img[first..first + c]);
            // One loop per case, each with nothing to decide per channel.
            match (self.reduce, arg.get_mut(o * c..(o + 1) * c)) {
                (Reduce::Max, Some(arg)) => {
                    for (ch, a) in arg.iter_mut().enumerate() {
                        *a = (first + ch) as u32;
                    }
                    for p in positions {
                        max_into(out, arg, &img[p..p + c], p);
                    }
                }
                (Reduce::Max, None) => {
                    // The same select as `max_into`, without the positions.
                    let max = |m: f32, v: f32| if v > m { v } else { m };
                    self.fold_window(img, out, positions, max);
                }
                (Reduce::Mean, _) => {
                    self.fold_window(img, out, positions, |s, v| s + v);
                    out.iter_mut().for_each(|o| *o *= scale);
                }
            }
        }
    }

    /// out = combine(out, values) for each further position of an output's window, in
    /// order (`positions`), 16 channels at a time held in registers over the window. Written
    /// back to `out` at every position, a select became a masked store that the next
    /// position's load waited for: scoring a 3×3 max-pool cost 1.7× the convolution.
    #[inline(always)]
    fn fold_window(
        &self,
        img: &[f32],
        out: &mut [f32],
        positions: impl Iterator<Item = usize> + Clone,
        combine: impl Fn(f32, f32) -> f32,
    ) {
        let mut blocks = out.chunks_exact_mut(16);
        for (b, block) in (&mut blocks).enumerate() {
            let mut acc: [f32; 16] = (&*block).try_into().expect("16 channels");
            for p in positions.clone() {
                let values: &[f32; 16] = img[p + 16 * b..][..16].try_into().expect("16 channels");
                for j in 0..16 {
                    acc[j] = combine(acc[j], values[j]);
                }
            }
            block.copy_from_slice(&acc);
        }
        let (rest, done) = (blocks.into_remainder(), self.c / 16 * 16);
        for p in positions {
            for (a, v) in rest.iter_mut().zip(&img[p + done..p + self.c]) {
                *a = combine(*a, *v);
            }
        }
    }

    /// Where each position of output (oy, ox)'s window starts in its image, in row order.
    #[inline(always)]
    fn window(&self, oy: usize, ox: usize) -> impl Iterator<Item = usize> + Clone {
        let Windows {
            size,
            stride,
            in_w,
            c,
            ..
        } = *self;
        (0..size).flat_map(move |dy| {
            (0..size).map(move |dx| ((oy * stride + dy) * in_w + ox * stride + dx) * c)
        })
    }
}

/// Keeps, channel by channel, the larger of `out` and `values` (the values at position
/// `p`) and where it came from; ties keep the earlier position. Selects, not branches:
/// which value wins is a coin flip to a branch predictor.
#[inline(always)]
fn max_into(out: &mut [f32], arg: &mut [u32], values: &[f32], p: usize) {
    let c = out.len();
    let (arg, values) = (&mut arg[..c], &values[..c]);
    for ch in 0..c {
        let larger = values[ch] > out[ch];
        out[ch] = if larger { values[ch] } else { out[ch] };
        arg[ch] = if larger { (p + ch) as u32 } else { arg[ch] };
    }
}

/// The mean of each channel over an image's positions: (batch·h·w, c) → (batch, c).
pub(crate) fn global_avg_pool<T: Tape<f32, Cpu>>(x: Act<T>, g: Geometry) -> Act<T> {
    let (x, mut tape) = x.split_tape();
    let c = x.shape().1;
    let positions = g.h * g.w;
    let input = copied(&x);
    let scale = 1.0 / positions as f32;
    let mut out = vec![0.0; g.batch * c];
    out.par_chunks_mut(c)
        .zip(input.par_chunks(positions * c))
        .for_each(|(out, img)| {
            for p in img.chunks(c) {
                out.iter_mut().zip(p).for_each(|(o, v)| *o += v);
            }
            out.iter_mut().for_each(|o| *o *= scale);
        });
    let y = x.device().tensor_from_vec(out, (g.batch, c));
    if T::OWNS_TAPE {
        let (x_ghost, y_ghost) = (x.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            let dx = grads.get_or_alloc_mut(&x_ghost)?;
            dx.par_chunks_mut(positions * c)
                .zip(dy.par_chunks(c))
                .for_each(|(dx, dy)| {
                    for p in dx.chunks_mut(c) {
                        p.iter_mut().zip(dy).for_each(|(x, d)| *x += d * scale);
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
    use crate::rng::Rng;

    /// Scoring (no positions kept) and training (positions kept for the backward pass) give
    /// the same outputs, and both the max or mean over each window, for windows that
    /// overlap, tile and leave a remainder.
    #[test]
    fn scoring_and_training_pool_alike_and_match_a_direct_computation() {
        let dev = Cpu::seed_from_u64(0);
        let (g, c) = (
            Geometry {
                batch: 2,
                h: 7,
                w: 6,
            },
            3,
        );
        let mut rng = Rng::new(4);
        let values: Vec<f32> = (0..g.positions() * c)
            .map(|_| rng.normal() as f32)
            .collect();
        for reduce in [Reduce::Max, Reduce::Mean] {
            for (size, stride) in [(2, 2), (3, 2), (2, 1)] {
                let x = dev.tensor_from_vec(values.clone(), (g.positions(), c));
                let (scored, out_g) = pool(x.clone(), g, (size, stride), reduce);
                let (trained, _) = pool(x.leaky_trace(), g, (size, stride), reduce);
                let scored = scored.as_vec();
                assert_eq!(scored, trained.as_vec(), "{reduce:?} {size}/{stride}");
                for (o, got) in scored.iter().enumerate() {
                    let (ch, p) = (o % c, o / c);
                    let (image, oy, ox) =
                        (p / (out_g.h * out_g.w), p / out_g.w % out_g.h, p % out_g.w);
                    let window: Vec<f32> = (0..size * size)
                        .map(|k| {
                            let (y, x) = (oy * stride + k / size, ox * stride + k % size);
                            values[((image * g.h + y) * g.w + x) * c + ch]
                        })
                        .collect();
                    let want = match reduce {
                        Reduce::Max => window.iter().copied().fold(f32::MIN, f32::max),
                        Reduce::Mean => window.iter().sum::<f32>() / window.len() as f32,
                    };
                    assert!(
                        (got - want).abs() <= 1e-6,
                        "{reduce:?} {size}/{stride} at {o}"
                    );
                }
            }
        }
    }
}
