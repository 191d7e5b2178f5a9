//! 2-D convolution ('same' padding, stride 1) and 2×2 max-pooling as ops on dfdx's tape.
//!
//! dfdx 0.13 has these only behind its `nightly` feature. Activations here are NHWC images
//! stored as 2-D tensors of shape (batch·height·width, channels), so that every image row of
//! the im2col matrix is a contiguous copy and the convolution is one matrix product. Each op
//! computes its forward pass on plain vectors and registers a backward closure with
//! `Tape::add_backward_op`, reading the output gradient and accumulating into the input,
//! weight and bias gradients through `Gradients::get_or_alloc_mut`.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::linalg::{matmul, Operand};

/// Spatial layout of a batch of NHWC images held as (batch·h·w, channels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub batch: usize,
    pub h: usize,
    pub w: usize,
}

impl Geometry {
    pub fn positions(&self) -> usize {
        self.batch * self.h * self.w
    }
}

pub(crate) type Act<T> = Tensor<(usize, usize), f32, Cpu, T>;

/// Convolution with a (k·k·cin, cout) weight (rows ordered ky, kx, ci) and a bias.
/// `input_grad`: whether to propagate into the input (not needed for the first layer).
pub(crate) fn conv2d<T: Tape<f32, Cpu>>(
    x: Act<T>,
    geometry: Geometry,
    kernel: usize,
    weight: &Tensor<(usize, usize), f32, Cpu>,
    bias: &Tensor<(usize,), f32, Cpu>,
    input_grad: bool,
) -> Act<T> {
    let (x, mut tape) = x.split_tape();
    let cin = x.shape().1;
    let cout = bias.shape().0;
    let rows = geometry.positions();
    let kk = kernel * kernel * cin;
    let cols = im2col(&x.as_vec(), geometry, cin, kernel);
    let w = weight.as_vec();
    let b = bias.as_vec();
    let mut out = Vec::with_capacity(rows * cout);
    for _ in 0..rows {
        out.extend_from_slice(&b);
    }
    matmul(
        rows,
        cout,
        kk,
        &mut out,
        true,
        Operand::rows(&cols, kk),
        Operand::rows(&w, cout),
    );
    let y = x.device().tensor_from_vec(out, (rows, cout));
    if T::OWNS_TAPE {
        let (x_ghost, w_ghost, b_ghost, y_ghost) =
            (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let dy = grads.get_or_alloc_mut(&y_ghost)?.clone();
            let dw = grads.get_or_alloc_mut(&w_ghost)?;
            matmul(
                kk,
                cout,
                rows,
                dw,
                true,
                Operand::transposed(&cols, kk),
                Operand::rows(&dy, cout),
            );
            let db = grads.get_or_alloc_mut(&b_ghost)?;
            for row in dy.chunks(cout) {
                for (d, g) in db.iter_mut().zip(row) {
                    *d += g;
                }
            }
            if input_grad {
                let mut dcols = vec![0.0; rows * kk];
                matmul(
                    rows,
                    kk,
                    cout,
                    &mut dcols,
                    false,
                    Operand::rows(&dy, cout),
                    Operand::transposed(&w, cout),
                );
                let dx = grads.get_or_alloc_mut(&x_ghost)?;
                col2im_add(&dcols, dx, geometry, cin, kernel);
            }
            Ok(())
        });
    }
    y.put_tape(tape)
}

/// (batch·h·w, k·k·cin) patches with zero padding, one image per parallel task.
fn im2col(x: &[f32], g: Geometry, cin: usize, kernel: usize) -> Vec<f32> {
    let kk = kernel * kernel * cin;
    let pad = kernel / 2;
    let per_image = g.h * g.w;
    let mut cols = vec![0.0; g.positions() * kk];
    cols.par_chunks_mut(per_image * kk)
        .zip(x.par_chunks(per_image * cin))
        .for_each(|(dst, img)| {
            for oy in 0..g.h {
                for ox in 0..g.w {
                    let row = &mut dst[(oy * g.w + ox) * kk..][..kk];
                    for ky in 0..kernel {
                        let iy = oy as isize + ky as isize - pad as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        for kx in 0..kernel {
                            let ix = ox as isize + kx as isize - pad as isize;
                            if ix < 0 || ix >= g.w as isize {
                                continue;
                            }
                            let src = &img[(iy as usize * g.w + ix as usize) * cin..][..cin];
                            row[(ky * kernel + kx) * cin..][..cin].copy_from_slice(src);
                        }
                    }
                }
            }
        });
    cols
}

/// Adds patch gradients back onto the image positions they were copied from.
fn col2im_add(dcols: &[f32], dx: &mut [f32], g: Geometry, cin: usize, kernel: usize) {
    let kk = kernel * kernel * cin;
    let pad = kernel / 2;
    let per_image = g.h * g.w;
    dx.par_chunks_mut(per_image * cin)
        .zip(dcols.par_chunks(per_image * kk))
        .for_each(|(img, src)| {
            for oy in 0..g.h {
                for ox in 0..g.w {
                    let row = &src[(oy * g.w + ox) * kk..][..kk];
                    for ky in 0..kernel {
                        let iy = oy as isize + ky as isize - pad as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        for kx in 0..kernel {
                            let ix = ox as isize + kx as isize - pad as isize;
                            if ix < 0 || ix >= g.w as isize {
                                continue;
                            }
                            let dst = &mut img[(iy as usize * g.w + ix as usize) * cin..][..cin];
                            for (d, s) in
                                dst.iter_mut().zip(&row[(ky * kernel + kx) * cin..][..cin])
                            {
                                *d += s;
                            }
                        }
                    }
                }
            }
        });
}

/// 2×2 max-pooling with stride 2; odd sizes drop the last row/column (15 → 7).
/// Returns the pooled activations and their geometry.
pub(crate) fn maxpool2<T: Tape<f32, Cpu>>(x: Act<T>, g: Geometry) -> (Act<T>, Geometry) {
    let (x, mut tape) = x.split_tape();
    let c = x.shape().1;
    let out_g = Geometry {
        batch: g.batch,
        h: g.h / 2,
        w: g.w / 2,
    };
    let data = x.as_vec();
    let mut out = vec![0.0; out_g.positions() * c];
    let mut argmax = vec![0usize; out_g.positions() * c];
    for b in 0..g.batch {
        for oy in 0..out_g.h {
            for ox in 0..out_g.w {
                let o = ((b * out_g.h + oy) * out_g.w + ox) * c;
                for ch in 0..c {
                    let mut best = usize::MAX;
                    let mut best_v = f32::NEG_INFINITY;
                    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let i = ((b * g.h + 2 * oy + dy) * g.w + 2 * ox + dx) * c + ch;
                        if data[i] > best_v || best == usize::MAX {
                            best_v = data[i];
                            best = i;
                        }
                    }
                    out[o + ch] = best_v;
                    argmax[o + ch] = best;
                }
            }
        }
    }
    let y = x.device().tensor_from_vec(out, (out_g.positions(), c));
    if T::OWNS_TAPE {
        let (x_ghost, y_ghost) = (x.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let dy = grads.get_or_alloc_mut(&y_ghost)?.clone();
            let dx = grads.get_or_alloc_mut(&x_ghost)?;
            for (g, &i) in dy.iter().zip(&argmax) {
                dx[i] += g;
            }
            Ok(())
        });
    }
    (y.put_tape(tape), out_g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.normal() as f32).collect()
    }

    /// Loss = Σ y·r for fixed random r, so dLoss/dy = r; compares analytic gradients of x, w
    /// and b with central finite differences.
    #[test]
    fn conv_gradients_match_finite_differences() {
        let dev = Cpu::seed_from_u64(0);
        let mut rng = Rng::new(5);
        let g = Geometry {
            batch: 2,
            h: 5,
            w: 4,
        };
        let (cin, cout, k) = (3, 2, 3);
        let x0 = random(g.positions() * cin, &mut rng);
        let w0 = random(k * k * cin * cout, &mut rng);
        let b0 = random(cout, &mut rng);
        let r = random(g.positions() * cout, &mut rng);
        let loss_of = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
            let xt = dev.tensor_from_vec(x.to_vec(), (g.positions(), cin));
            let wt = dev.tensor_from_vec(w.to_vec(), (k * k * cin, cout));
            let bt = dev.tensor_from_vec(b.to_vec(), (cout,));
            let y = conv2d(xt, g, k, &wt, &bt, true).as_vec();
            y.iter()
                .zip(&r)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum()
        };
        let xt = dev.tensor_from_vec(x0.clone(), (g.positions(), cin));
        let wt = dev.tensor_from_vec(w0.clone(), (k * k * cin, cout));
        let bt = dev.tensor_from_vec(b0.clone(), (cout,));
        let y = conv2d(xt.leaky_trace(), g, k, &wt, &bt, true);
        let rt = dev.tensor_from_vec(r.clone(), (g.positions(), cout));
        let grads = (y * rt).sum().backward();
        let analytic = [
            grads.get(&xt).as_vec(),
            grads.get(&wt).as_vec(),
            grads.get(&bt).as_vec(),
        ];
        let eps = 1e-2;
        for (which, base) in [(0, &x0), (1, &w0), (2, &b0)] {
            for i in (0..base.len()).step_by(3) {
                let bump = |d: f32| {
                    let mut v = base.clone();
                    v[i] += d;
                    match which {
                        0 => loss_of(&v, &w0, &b0),
                        1 => loss_of(&x0, &v, &b0),
                        _ => loss_of(&x0, &w0, &v),
                    }
                };
                let numeric = (bump(eps) - bump(-eps)) / (2.0 * eps as f64);
                let a = analytic[which][i] as f64;
                assert!(
                    (a - numeric).abs() < 1e-2 * (1.0 + numeric.abs()),
                    "param {which}[{i}]: {a} vs {numeric}"
                );
            }
        }
    }

    #[test]
    fn maxpool_routes_gradients_to_the_maximum_and_floors_odd_sizes() {
        let dev = Cpu::seed_from_u64(0);
        let g = Geometry {
            batch: 1,
            h: 3,
            w: 5,
        };
        let x: Vec<f32> = (0..15).map(|v| ((v * 7) % 11) as f32).collect();
        let xt = dev.tensor_from_vec(x.clone(), (15usize, 1usize));
        let (y, out_g) = maxpool2(xt.leaky_trace(), g);
        assert_eq!(
            out_g,
            Geometry {
                batch: 1,
                h: 1,
                w: 2
            }
        );
        let values = y.as_vec();
        assert_eq!(
            values,
            vec![
                x[0].max(x[1]).max(x[5]).max(x[6]),
                x[2].max(x[3]).max(x[7]).max(x[8])
            ]
        );
        let grads = y.sum().backward();
        let dx = grads.get(&xt).as_vec();
        assert_eq!(dx.iter().sum::<f32>(), 2.0);
        for (i, d) in dx.iter().enumerate() {
            if *d == 1.0 {
                assert!(values.contains(&x[i]));
            }
        }
    }
}
