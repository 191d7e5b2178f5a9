//! Convolutions other than the reference network's ('same', stride 1, odd kernel, which
//! `conv` computes with Winograd, taps or in-place windows): any stride, 'valid' padding,
//! even kernels, and the 1×1 projections of residual blocks. Each image's patches are copied
//! into a matrix (im2col) and multiplied with the engine's matrix product; the backward pass
//! multiplies by the transposed patches (weight gradient) and scatters the patches'
//! gradient back (input gradient).
//!
//! Why this simpler scheme: these layers are a small share of the networks that use them
//! (a strided convolution has a quarter of the outputs of the one before it), and the
//! products still run on the same AVX2/AVX-512 tile as every other.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::conv::{store_gradients, take_input_gradient};
use super::copies::copied;
use super::groups::{image_groups, GRADIENT_GROUPS};
use super::layer::{same_padding_before, window_output, Padding};
use super::layout::{Act, Geometry};
use super::linalg::{matmul, Operand};
use super::zeros;

/// A convolution's geometry: kernel, stride, padding, channels in and out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strided {
    pub kernel: usize,
    pub stride: usize,
    pub padding: Padding,
    pub cout: usize,
    /// Whether to propagate into the input (not needed for a network's first layer).
    pub input_grad: bool,
}

/// Where each output position's patch comes from in one image.
pub(crate) struct Patches {
    h: usize,
    w: usize,
    cin: usize,
    oh: usize,
    ow: usize,
    top: usize,
    left: usize,
    k: usize,
    s: usize,
}

impl Patches {
    /// The geometry of a batch of `batch` images' outputs.
    pub(crate) fn output(&self, batch: usize) -> Geometry {
        Geometry {
            batch,
            h: self.oh,
            w: self.ow,
        }
    }

    fn len(&self) -> usize {
        self.k * self.k * self.cin
    }

    /// The patch matrix (oh·ow, k·k·cin) of one image, zeros outside it.
    fn gather(&self, img: &[f32], cols: &mut Vec<f32>) {
        cols.clear();
        cols.resize(self.oh * self.ow * self.len(), 0.0);
        self.each(|row, src| {
            cols[row..row + self.cin].copy_from_slice(&img[src..src + self.cin]);
        });
    }

    /// Adds a patch matrix's gradient back into the image's.
    fn scatter(&self, dcols: &[f32], dimg: &mut [f32]) {
        self.each(|row, src| {
            dimg[src..src + self.cin]
                .iter_mut()
                .zip(&dcols[row..row + self.cin])
                .for_each(|(d, g)| *d += g);
        });
    }

    /// Calls `visit(index in the patch matrix, index in the image)` for every tap of every
    /// patch that falls inside the image.
    fn each(&self, mut visit: impl FnMut(usize, usize)) {
        for oy in 0..self.oh {
            for ox in 0..self.ow {
                let base = (oy * self.ow + ox) * self.len();
                for ky in 0..self.k {
                    let y = (oy * self.s + ky).wrapping_sub(self.top);
                    if y >= self.h {
                        continue;
                    }
                    for kx in 0..self.k {
                        let x = (ox * self.s + kx).wrapping_sub(self.left);
                        if x >= self.w {
                            continue;
                        }
                        let tap = ky * self.k + kx;
                        visit(base + tap * self.cin, (y * self.w + x) * self.cin);
                    }
                }
            }
        }
    }
}

/// The convolution on a batch of NHWC images with a (k·k·cin, cout) weight (rows ordered
/// ky, kx, ci) and a bias. Returns the output and its geometry.
pub(crate) fn strided_conv<T: Tape<f32, Cpu>>(
    x: Act<T>,
    g: Geometry,
    spec: Strided,
    weight: &Tensor<(usize, usize), f32, Cpu>,
    bias: &Tensor<(usize,), f32, Cpu>,
) -> (Act<T>, Geometry) {
    let (x, mut tape) = x.split_tape();
    let cin = x.shape().1;
    let cout = spec.cout;
    let input = copied(&x);
    let w = copied(weight);
    let (out, patches) = strided_forward((&input, cin), g, spec, (&w, &copied(bias)));
    let out_g = patches.output(g.batch);
    let (m, depth) = (patches.oh * patches.ow, patches.len());
    let (in_per_image, out_per_image) = (g.h * g.w * cin, m * cout);
    let y = x.device().tensor_from_vec(out, (out_g.positions(), cout));
    if T::OWNS_TAPE {
        let (x_ghost, w_ghost, b_ghost, y_ghost) =
            (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            let mut dx = take_input_gradient!(grads, &x_ghost, spec.input_grad);
            let dx_items = (dx.iter_mut())
                .flat_map(|dx| dx.chunks_mut(in_per_image).map(Some))
                .chain(std::iter::repeat_with(|| None));
            let items: Vec<_> = dy
                .chunks(out_per_image)
                .zip(input.chunks(in_per_image))
                .zip(dx_items)
                .collect();
            let partials: Vec<(Vec<f32>, Vec<f32>)> = image_groups(items, GRADIENT_GROUPS)
                .into_par_iter()
                .with_max_len(1)
                .map(|group| {
                    let (mut dw, mut db) = (vec![0.0; depth * cout], vec![0.0; cout]);
                    let (mut cols, mut dcols) = (Vec::new(), vec![0.0; m * depth]);
                    for ((dy, img), dx) in group {
                        patches.gather(img, &mut cols);
                        let (cols_t, dy_rows) =
                            (Operand::transposed(&cols, depth), Operand::rows(dy, cout));
                        matmul(depth, cout, m, &mut dw, true, cols_t, dy_rows);
                        for row in dy.chunks(cout) {
                            db.iter_mut().zip(row).for_each(|(d, g)| *d += g);
                        }
                        if let Some(dx) = dx {
                            let w_t = Operand::transposed(&w, cout);
                            matmul(m, depth, cout, &mut dcols, false, dy_rows, w_t);
                            patches.scatter(&dcols, dx);
                        }
                    }
                    (dw, db)
                })
                .collect();
            store_gradients!(
                grads,
                (&x_ghost, &w_ghost, &b_ghost, &y_ghost),
                (dx, dy),
                &partials
            )
        });
    }
    (y.put_tape(tape), out_g)
}

/// [`strided_conv`]'s forward pass on plain values (`input`: NHWC images of `g` with `cin`
/// channels): the output, and the patches' geometry (the output's size). Scoring runs it on
/// the values directly (`scoring_prefix`), so the same numbers either way.
pub(crate) fn strided_forward(
    (input, cin): (&[f32], usize),
    g: Geometry,
    spec: Strided,
    (w, b): (&[f32], &[f32]),
) -> (Vec<f32>, Patches) {
    let (k, s, cout) = (spec.kernel, spec.stride, spec.cout);
    let size = |n| window_output(n, k, s, spec.padding).expect("checked by layer::walk");
    let pad = |n| match spec.padding {
        Padding::Same => same_padding_before(n, k, s),
        Padding::Valid => 0,
    };
    let patches = Patches {
        h: g.h,
        w: g.w,
        cin,
        oh: size(g.h),
        ow: size(g.w),
        top: pad(g.h),
        left: pad(g.w),
        k,
        s,
    };
    let (m, depth) = (patches.oh * patches.ow, patches.len());
    let (in_per_image, out_per_image) = (g.h * g.w * cin, m * cout);
    let mut out = zeros(g.batch * out_per_image);
    out.par_chunks_mut(out_per_image)
        .zip(input.par_chunks(in_per_image))
        .with_max_len(1)
        .for_each_init(Vec::new, |cols, (out, img)| {
            patches.gather(img, cols);
            for row in out.chunks_mut(cout) {
                row.copy_from_slice(b);
            }
            matmul(
                m,
                cout,
                depth,
                out,
                true,
                Operand::rows(cols, depth),
                Operand::rows(w, cout),
            );
        });
    (out, patches)
}
