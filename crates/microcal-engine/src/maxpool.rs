//! 2×2 max-pooling with stride 2 as an op on dfdx's tape, for a pooling layer that does not
//! directly follow a convolution (after one, `conv` pools inside its own op).

use dfdx::prelude::*;
use rayon::prelude::*;

use super::blocks::pool2;
use super::conv::ConvShape;
use super::copies::copied;
use super::layout::{Act, Geometry};
use super::zeros;

/// 2×2 max-pooling with stride 2 on its own (when the layer before it is not a convolution);
/// odd sizes drop the last row/column (15 → 7). Returns the pooled activations and their
/// geometry.
pub(crate) fn maxpool2<T: Tape<f32, Cpu>>(x: Act<T>, g: Geometry) -> (Act<T>, Geometry) {
    let (x, mut tape) = x.split_tape();
    let c = x.shape().1;
    let data = copied(&x);
    let (out, routes, out_g) = maxpooled(&data, g, c, T::OWNS_TAPE);
    let (in_per_image, out_per_image) = (g.h * g.w * c, out_g.h * out_g.w * c);
    let y = x.device().tensor_from_vec(out, (out_g.positions(), c));
    if T::OWNS_TAPE {
        let (x_ghost, y_ghost) = (x.ghost(), y.ghost());
        let shape = ConvShape {
            cin: c,
            cout: c,
            kernel: 1,
            h: g.h,
            w: g.w,
        };
        tape.add_backward_op(move |grads| {
            let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
            let dx = grads.get_or_alloc_mut(&x_ghost)?;
            dx.par_chunks_mut(in_per_image)
                .zip(dy.par_chunks(out_per_image))
                .zip(routes.par_chunks(out_per_image))
                .for_each(|((dx, dy), routes)| {
                    let mut dconv = Vec::new();
                    let rows = 2 * (g.h / 2) * g.w;
                    shape.route_back_pooled(dy, routes, (0, rows), &mut dconv);
                    for (d, g) in dx.iter_mut().zip(&dconv) {
                        *d += g;
                    }
                });
            **grads.get_or_alloc_mut(&y_ghost)? = dy;
            Ok(())
        });
    }
    (y.put_tape(tape), out_g)
}

/// [`maxpool2`]'s forward pass on plain values (`data`: NHWC images of `g` with `c`
/// channels): the output, which input each output came from when `routes` (for the
/// backward pass; empty otherwise), and the output's geometry. Scoring runs it on the values
/// directly (`scoring_prefix`).
pub(crate) fn maxpooled(
    data: &[f32],
    g: Geometry,
    c: usize,
    routes: bool,
) -> (Vec<f32>, Vec<u8>, Geometry) {
    let out_g = g.pooled_if(true);
    let (in_per_image, out_per_image) = (g.h * g.w * c, out_g.h * out_g.w * c);
    let mut out = zeros(out_g.positions() * c);
    let mut kept = zeros(if routes { out.len() } else { 0 });
    let kept_chunks =
        (kept.chunks_mut(out_per_image).map(Some)).chain(std::iter::repeat_with(|| None));
    let items: Vec<_> = out
        .chunks_mut(out_per_image)
        .zip(kept_chunks)
        .zip(data.chunks(in_per_image))
        .collect();
    items.into_par_iter().for_each(|((out, routes), img)| {
        pool2(img, g.h, g.w, c, out, routes);
    });
    (out, kept, out_g)
}
