//! Pooling with any window and stride ('valid': windows that do not fit are dropped), max or
//! average, and global average pooling, as ops on dfdx's tape. The reference network's 2×2
//! max-pool after a convolution runs inside the convolution instead (`conv`), and a lone
//! 2×2 max-pool in `maxpool`, both with the first-corner rule for ties; here ties go to the
//! first position in the window too.

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
    let out_g = Geometry {
        batch: g.batch,
        h: (g.h - size) / stride + 1,
        w: (g.w - size) / stride + 1,
    };
    let input = copied(&x);
    let (in_per_image, out_per_image) = (g.h * g.w * c, out_g.h * out_g.w * c);
    let mut out = zeros(out_g.positions() * c);
    // For max: the input position (within its image) each output came from.
    let mut argmax = vec![0u32; out.len()];
    let gw = g.w;
    let window = move |oy: usize, ox: usize| {
        (0..size).flat_map(move |dy| {
            (0..size).map(move |dx| ((oy * stride + dy) * gw + ox * stride + dx) * c)
        })
    };
    let scale = 1.0 / (size * size) as f32;
    out.par_chunks_mut(out_per_image)
        .zip(input.par_chunks(in_per_image))
        .zip(argmax.par_chunks_mut(out_per_image))
        .for_each(|((out, img), arg)| {
            for oy in 0..out_g.h {
                for ox in 0..out_g.w {
                    let o = (oy * out_g.w + ox) * c;
                    let out = &mut out[o..o + c];
                    let mut positions = window(oy, ox);
                    let first = positions.next().expect("a window has a position");
                    out.copy_from_slice(&img[first..first + c]);
                    let arg = &mut arg[o..o + c];
                    for (ch, a) in arg.iter_mut().enumerate() {
                        *a = (first + ch) as u32;
                    }
                    for p in positions {
                        let values = &img[p..p + c];
                        match reduce {
                            Reduce::Max => reduce.max_into(out, arg, values, p),
                            Reduce::Mean => out.iter_mut().zip(values).for_each(|(o, v)| *o += v),
                        }
                    }
                    if reduce == Reduce::Mean {
                        out.iter_mut().for_each(|o| *o *= scale);
                    }
                }
            }
        });
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
                                for p in window(oy, ox) {
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

impl Reduce {
    with_simd! {
        /// Keeps, channel by channel, the larger of `out` and `values` (the values at
        /// position `p`) and where it came from; ties keep the earlier position. Selects,
        /// not branches: which value wins is a coin flip to a branch predictor.
        fn max_into / max_into_avx2 / max_into_avx512 => max_into_here(
            &self, out: &mut [f32], arg: &mut [u32], values: &[f32], p: usize,
        )
    }

    #[inline(always)]
    fn max_into_here(&self, out: &mut [f32], arg: &mut [u32], values: &[f32], p: usize) {
        let c = out.len();
        let (arg, values) = (&mut arg[..c], &values[..c]);
        for ch in 0..c {
            let larger = values[ch] > out[ch];
            out[ch] = if larger { values[ch] } else { out[ch] };
            arg[ch] = if larger { (p + ch) as u32 } else { arg[ch] };
        }
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
