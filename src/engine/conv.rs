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

use super::contiguous_vec;
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
/// `input_grad`: whether to propagate into the input (not needed for the first layer);
/// `relu`: apply ReLU to the output inside the op (saves a pass and a tensor per layer).
///
/// Work is split by image across threads; each thread builds one image's patch matrix at a
/// time in its own buffer and runs single-threaded matrix products on it, so the patches
/// stay in cache and nothing the size of the whole batch's patch matrix is ever allocated.
/// The backward pass rebuilds the patches rather than keeping them.
pub(crate) fn conv2d<T: Tape<f32, Cpu>>(
    x: Act<T>,
    geometry: Geometry,
    kernel: usize,
    weight: &Tensor<(usize, usize), f32, Cpu>,
    bias: &Tensor<(usize,), f32, Cpu>,
    input_grad: bool,
    relu: bool,
) -> Act<T> {
    let (x, mut tape) = x.split_tape();
    let cin = x.shape().1;
    let cout = bias.shape().0;
    let shape = ConvShape {
        per_image: geometry.h * geometry.w,
        cin,
        kernel,
        geometry,
    };
    let kk = shape.kk();
    let input = contiguous_vec(&x);
    let w = contiguous_vec(weight);
    let b = contiguous_vec(bias);
    let mut out = vec![0.0; geometry.positions() * cout];
    let items: Vec<(&mut [f32], &[f32])> = out
        .chunks_mut(shape.per_image * cout)
        .zip(input.chunks(shape.per_image * cin))
        .collect();
    for_each_image_group(items, |(dst, img), cols| {
        for row in dst.chunks_mut(cout) {
            row.copy_from_slice(&b);
        }
        cols.resize(shape.per_image * kk, 0.0);
        shape.im2col(img, cols);
        matmul(
            shape.per_image,
            cout,
            kk,
            dst,
            true,
            Operand::rows(cols, kk),
            Operand::rows(&w, cout),
        );
        if relu {
            dst.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    });
    // With a fused ReLU the backward pass needs to know which outputs were clipped.
    let active: Option<Vec<bool>> =
        (relu && T::OWNS_TAPE).then(|| out.par_iter().map(|v| *v > 0.0).collect());
    let y = x
        .device()
        .tensor_from_vec(out, (geometry.positions(), cout));
    if T::OWNS_TAPE {
        let (x_ghost, w_ghost, b_ghost, y_ghost) =
            (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let mut dy = grads.get_or_alloc_mut(&y_ghost)?.clone();
            if let Some(active) = &active {
                dy.par_iter_mut().zip(active.par_iter()).for_each(|(g, a)| {
                    if !a {
                        *g = 0.0;
                    }
                });
            }
            // Weight and bias gradients: per-task partial sums over images, then added.
            let group = images_per_task(geometry.batch);
            let partials: Vec<(Vec<f32>, Vec<f32>)> = dy
                .par_chunks(shape.per_image * cout * group)
                .zip(input.par_chunks(shape.per_image * cin * group))
                .map(|(dy_group, in_group)| {
                    let mut dw = vec![0.0; kk * cout];
                    let mut db = vec![0.0; cout];
                    let mut cols = vec![0.0; shape.per_image * kk];
                    let images = dy_group
                        .chunks(shape.per_image * cout)
                        .zip(in_group.chunks(shape.per_image * cin));
                    for (dy_img, img) in images {
                        shape.im2col(img, &mut cols);
                        let (patches, grad) =
                            (Operand::transposed(&cols, kk), Operand::rows(dy_img, cout));
                        matmul(kk, cout, shape.per_image, &mut dw, true, patches, grad);
                        for row in dy_img.chunks(cout) {
                            for (d, g) in db.iter_mut().zip(row) {
                                *d += g;
                            }
                        }
                    }
                    (dw, db)
                })
                .collect();
            let dw = grads.get_or_alloc_mut(&w_ghost)?;
            for (part, _) in &partials {
                for (d, p) in dw.iter_mut().zip(part) {
                    *d += p;
                }
            }
            let db = grads.get_or_alloc_mut(&b_ghost)?;
            for (_, part) in &partials {
                for (d, p) in db.iter_mut().zip(part) {
                    *d += p;
                }
            }
            if input_grad {
                let dx = grads.get_or_alloc_mut(&x_ghost)?;
                let items: Vec<(&mut [f32], &[f32])> = dx
                    .chunks_mut(shape.per_image * cin)
                    .zip(dy.chunks(shape.per_image * cout))
                    .collect();
                for_each_image_group(items, |(dx_img, dy_img), dcols| {
                    dcols.resize(shape.per_image * kk, 0.0);
                    let (grad, weights) =
                        (Operand::rows(dy_img, cout), Operand::transposed(&w, cout));
                    matmul(shape.per_image, kk, cout, dcols, false, grad, weights);
                    shape.col2im_add(dcols, dx_img);
                });
            }
            Ok(())
        });
    }
    y.put_tape(tape)
}

/// Sizes of one convolution over one image.
#[derive(Clone, Copy)]
struct ConvShape {
    per_image: usize,
    cin: usize,
    kernel: usize,
    geometry: Geometry,
}

impl ConvShape {
    fn kk(&self) -> usize {
        self.kernel * self.kernel * self.cin
    }

    /// One image's (h·w, k·k·cin) patch matrix with zero padding.
    fn im2col(&self, img: &[f32], cols: &mut [f32]) {
        let (g, cin, k, kk) = (self.geometry, self.cin, self.kernel, self.kk());
        let pad = k / 2;
        for oy in 0..g.h {
            for ox in 0..g.w {
                let row = &mut cols[(oy * g.w + ox) * kk..][..kk];
                for ky in 0..k {
                    let iy = oy as isize + ky as isize - pad as isize;
                    for kx in 0..k {
                        let ix = ox as isize + kx as isize - pad as isize;
                        let dst = &mut row[(ky * k + kx) * cin..][..cin];
                        if iy < 0 || iy >= g.h as isize || ix < 0 || ix >= g.w as isize {
                            dst.fill(0.0);
                        } else {
                            dst.copy_from_slice(
                                &img[(iy as usize * g.w + ix as usize) * cin..][..cin],
                            );
                        }
                    }
                }
            }
        }
    }

    /// Adds one image's patch gradients back onto the positions they were copied from.
    fn col2im_add(&self, dcols: &[f32], img: &mut [f32]) {
        let (g, cin, k, kk) = (self.geometry, self.cin, self.kernel, self.kk());
        let pad = k / 2;
        for oy in 0..g.h {
            for ox in 0..g.w {
                let row = &dcols[(oy * g.w + ox) * kk..][..kk];
                for ky in 0..k {
                    let iy = oy as isize + ky as isize - pad as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    for kx in 0..k {
                        let ix = ox as isize + kx as isize - pad as isize;
                        if ix < 0 || ix >= g.w as isize {
                            continue;
                        }
                        let dst = &mut img[(iy as usize * g.w + ix as usize) * cin..][..cin];
                        for (d, s) in dst.iter_mut().zip(&row[(ky * k + kx) * cin..][..cin]) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

/// Images handled by one parallel task: the batch split evenly over the threads.
fn images_per_task(batch: usize) -> usize {
    batch.div_ceil(rayon::current_num_threads().max(1)).max(1)
}

/// Runs `work` on every per-image item, the items split over threads in contiguous groups,
/// each task with one scratch buffer reused across its images.
fn for_each_image_group<I: Send>(items: Vec<I>, work: impl Fn(I, &mut Vec<f32>) + Sync) {
    let per_task = images_per_task(items.len());
    let mut groups: Vec<Vec<I>> = Vec::new();
    for item in items {
        if groups.last().is_none_or(|g| g.len() == per_task) {
            groups.push(Vec::with_capacity(per_task));
        }
        groups.last_mut().expect("just pushed").push(item);
    }
    groups.into_par_iter().for_each(|group| {
        let mut scratch = Vec::new();
        for item in group {
            work(item, &mut scratch);
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
    let data = contiguous_vec(&x);
    let mut out = vec![0.0; out_g.positions() * c];
    let mut argmax = vec![0usize; out_g.positions() * c];
    let per_out = out_g.h * out_g.w * c;
    out.par_chunks_mut(per_out)
        .zip(argmax.par_chunks_mut(per_out))
        .enumerate()
        .for_each(|(b, (out, argmax))| {
            for oy in 0..out_g.h {
                for ox in 0..out_g.w {
                    let o = (oy * out_g.w + ox) * c;
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
        });
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
        check_conv_gradients(false);
    }

    #[test]
    fn fused_relu_conv_gradients_match_finite_differences() {
        check_conv_gradients(true);
    }

    fn check_conv_gradients(relu: bool) {
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
            let y = conv2d(xt, g, k, &wt, &bt, true, relu).as_vec();
            y.iter()
                .zip(&r)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum()
        };
        let xt = dev.tensor_from_vec(x0.clone(), (g.positions(), cin));
        let wt = dev.tensor_from_vec(w0.clone(), (k * k * cin, cout));
        let bt = dev.tensor_from_vec(b0.clone(), (cout,));
        let y = conv2d(xt.leaky_trace(), g, k, &wt, &bt, true, relu);
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
