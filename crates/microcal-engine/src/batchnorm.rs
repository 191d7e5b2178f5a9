//! Batch normalisation over the channel axis (every position of every image, or every
//! image of a flattened batch) as one fused op on dfdx's tape, with the ReLU and 2×2
//! max-pool that follow it: one pass for the statistics (which `conv_batchnorm` sums
//! instead as its convolution writes each image), one that normalises, pools, keeps the
//! input at each pooled corner and clips; backward, the sums over the pooled outputs
//! only, then one pass for the input gradient. After a convolution, training runs the two
//! as one op (`conv_batchnorm`, from the same pieces); when scoring, the batch norm folds
//! into the convolution's weights instead (`stack`). The passes are branch-free (which
//! corner wins and which outputs a ReLU clips are coin flips to a branch predictor) and
//! compiled for AVX2 where the CPU has it.
//!
//! Bake-off (`microcal bench cnn --experiment tools/bench/reference_batchnorm.toml`, the
//! reference network with batch norm after each convolution, 640 images, AMD EPYC Zen 4, 2
//! cores, AVX-512, 2026-12-02): the chain of dfdx tensor ops this replaces (mean, broadcast,
//! subtract, square, mean, sqrt, recip, three multiplies and an add, each a strided pass
//! with its own backward, and a separate ReLU and pooling op) trained at 205 images/s and
//! scored 594 against 779 and 3,188 for the plain network; this op trains at 360-400 and
//! scores at 2,783. Sums run over fixed chunks of rows added in chunk order, so the
//! statistics do not depend on the number of threads.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::blocks::CLIPPED;
use super::copies::copied;
use super::kernel::with_simd;
use super::layout::{Act, Geometry};
pub(crate) use super::moments::Moments;
use super::moments::{in_channel_blocks, moments};
use super::optimizer::Param;
use super::zeros;

/// A batch-norm layer: scale and shift per channel, and running statistics for evaluation
/// (updated as running = momentum·running + (1 − momentum)·batch, Keras's rule, with the
/// biased batch variance as Keras uses).
pub(crate) struct BatchNorm {
    pub(crate) gamma: Param<(usize,)>,
    pub(crate) beta: Param<(usize,)>,
    pub(crate) running_mean: Vec<f32>,
    pub(crate) running_var: Vec<f32>,
    pub(crate) momentum: f32,
    pub(crate) eps: f32,
}

impl BatchNorm {
    pub(crate) fn new(dev: &Cpu, channels: usize, momentum: f64, eps: f64) -> Self {
        Self {
            gamma: Param::new(dev, vec![1.0; channels], (channels,), false),
            beta: Param::new(dev, vec![0.0; channels], (channels,), false),
            running_mean: vec![0.0; channels],
            running_var: vec![1.0; channels],
            momentum: momentum as f32,
            eps: eps as f32,
        }
    }

    /// Folds a training batch's statistics into the running ones.
    pub(crate) fn update_running(&mut self, (mean, var): &Moments) {
        let m = self.momentum;
        for (r, b) in self.running_mean.iter_mut().zip(mean) {
            *r = m * *r + (1.0 - m) * b;
        }
        for (r, b) in self.running_var.iter_mut().zip(var) {
            *r = m * *r + (1.0 - m) * b;
        }
    }

    /// The running statistics as a scale and shift per channel (y = x·a + b), for
    /// evaluation, and to fold into the convolution before the layer.
    pub(crate) fn eval_affine(&self) -> (Vec<f32>, Vec<f32>) {
        self.affine(&self.running_mean, &self.running_var)
    }

    /// y = x·a + b, with a = γ/σ and b = β − μ·a.
    fn affine(&self, mean: &[f32], var: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (gamma, beta) = (self.gamma.values(), self.beta.values());
        let a: Vec<f32> = (0..gamma.len())
            .map(|j| gamma[j] / (var[j] + self.eps).sqrt())
            .collect();
        let b = (0..a.len()).map(|j| beta[j] - mean[j] * a[j]).collect();
        (a, b)
    }

    /// Normalises with the batch's statistics (`stats` receives them) when training, with
    /// the running ones otherwise, and applies what `follow` fuses (ReLU, 2×2 max-pool) in
    /// the same pass. Returns the output and its geometry.
    pub(crate) fn forward<T: Tape<f32, Cpu>>(
        &self,
        x: Act<T>,
        g: Geometry,
        follow: Follow,
        train: bool,
        stats: &mut Vec<Moments>,
    ) -> (Act<T>, Geometry) {
        let (x, mut tape) = x.split_tape();
        let shape = Fused {
            g,
            c: x.shape().1,
            follow,
        };
        let input = copied(&x);
        let (normalised, saved) = self.normalise(&input, shape, train);
        let out_g = shape.output();
        let y = x
            .device()
            .tensor_from_vec(normalised, (out_g.positions(), shape.c));
        let Some(saved) = saved else {
            return (y.put_tape(tape), out_g);
        };
        stats.push(saved.moments.clone());
        if T::OWNS_TAPE {
            let (x_ghost, y_ghost) = (x.ghost(), y.ghost());
            let (g_ghost, b_ghost) = (self.gamma.tensor.ghost(), self.beta.tensor.ghost());
            tape.add_backward_op(move |grads| {
                let dy = std::mem::take(&mut **grads.get_or_alloc_mut(&y_ghost)?);
                let gradient = saved.gradient(&dy, &input);
                let dx = grads.get_or_alloc_mut(&x_ghost)?;
                let per_image = g.h * g.w * shape.c;
                dx.par_chunks_mut(per_image)
                    .zip(input.par_chunks(per_image))
                    .enumerate()
                    .for_each(|(image, (dx, img))| gradient.add_image(image, img, &dy, dx, true));
                gradient.store_parameters(grads.get_or_alloc_mut(&g_ghost)?, true);
                gradient.store_parameters(grads.get_or_alloc_mut(&b_ghost)?, false);
                **grads.get_or_alloc_mut(&y_ghost)? = dy;
                Ok(())
            });
        }
        (y.put_tape(tape), out_g)
    }

    /// The normalised output of `input` (`shape`'s images, NHWC) with what `shape.follow`
    /// fuses: with the batch's statistics when training (and what its backward pass needs),
    /// with the running ones otherwise.
    pub(crate) fn normalise(
        &self,
        input: &[f32],
        shape: Fused,
        train: bool,
    ) -> (Vec<f32>, Option<Saved>) {
        self.normalise_with(input, shape, train.then(|| moments(input, shape.c)))
    }

    /// `normalise`, given the batch's statistics when training (`None`: scoring).
    pub(crate) fn normalise_with(
        &self,
        input: &[f32],
        shape: Fused,
        moments: Option<Moments>,
    ) -> (Vec<f32>, Option<Saved>) {
        let c = shape.c;
        let (a, b) = match &moments {
            Some((mean, var)) => self.affine(mean, var),
            None => self.eval_affine(),
        };
        let out_g = shape.output();
        let out_per_image = out_g.h * out_g.w * c;
        let mut out = zeros(out_g.positions() * c);
        let mut routes = zeros(out.len());
        // The input value each pooled output came from, for the backward sums.
        let mut picked = zeros(if shape.follow.pool { out.len() } else { 0 });
        let picked_chunks = picked
            .chunks_mut(out_per_image.max(1))
            .map(Some)
            .chain(std::iter::repeat_with(|| None));
        let items: Vec<_> = out
            .chunks_mut(out_per_image)
            .zip(input.chunks(shape.g.h * shape.g.w * c))
            .zip(routes.chunks_mut(out_per_image))
            .zip(picked_chunks)
            .collect();
        items
            .into_par_iter()
            .for_each(|(((out, img), routes), picked)| {
                shape.forward_image(img, &a, &b, out, routes, picked);
            });
        let saved = moments.map(|moments| Saved {
            shape,
            inv: (moments.1.iter())
                .map(|v| 1.0 / (v + self.eps).sqrt())
                .collect(),
            gamma: self.gamma.values(),
            moments,
            routes,
            picked,
        });
        (out, saved)
    }
}

/// What a training pass of batch norm keeps for its backward pass.
pub(crate) struct Saved {
    pub(crate) shape: Fused,
    /// The batch's mean and variance.
    pub(crate) moments: Moments,
    /// 1/σ per channel.
    inv: Vec<f32>,
    gamma: Vec<f32>,
    /// Each output's route: its pooled corner, or `CLIPPED`.
    routes: Vec<u8>,
    /// When pooled, the input value each unclipped output came from.
    picked: Vec<f32>,
}

impl Saved {
    /// The gradients of γ and β, and the input gradient's per-channel terms, from the
    /// output's gradient `dy` and the layer's input (read only where it is unpooled).
    pub(crate) fn gradient(&self, dy: &[f32], input: &[f32]) -> Gradient<'_> {
        let (shape, c) = (self.shape, self.shape.c);
        let mean = &self.moments.0;
        let inv = &self.inv;
        let out_per_image = shape.output().h * shape.output().w * c;
        let in_per_image = shape.g.h * shape.g.w * c;
        // Σ dz and Σ dz·x̂ per channel (dz: the gradient before ReLU and pooling), per
        // image, added in image order.
        let partials: Vec<(Vec<f32>, Vec<f32>)> = dy
            .par_chunks(out_per_image)
            .enumerate()
            .map(|(image, dy)| {
                let routes = &self.routes[image * out_per_image..][..out_per_image];
                // The input value each output came from: the pooled corner's, or its own.
                let values = match shape.follow.pool {
                    true => &self.picked[image * out_per_image..][..out_per_image],
                    false => &input[image * in_per_image..][..in_per_image],
                };
                let (mut sum, mut dot) = (vec![0.0f32; c], vec![0.0f32; c]);
                self.add_sums(dy, routes, values, &mut sum, &mut dot);
                (sum, dot)
            })
            .collect();
        let (mut dbeta, mut dgamma) = (vec![0.0f64; c], vec![0.0f64; c]);
        for (sum, dot) in &partials {
            for j in 0..c {
                dbeta[j] += sum[j] as f64;
                dgamma[j] += dot[j] as f64;
            }
        }
        let n = shape.g.positions() as f32;
        let dbeta: Vec<f32> = dbeta.iter().map(|v| *v as f32).collect();
        let dgamma: Vec<f32> = dgamma.iter().map(|v| *v as f32).collect();
        // dx = γ/(σN) · (N·dz − Σdz − x̂·Σdz·x̂)
        let k: Vec<f32> = (0..c).map(|j| self.gamma[j] * inv[j] / n).collect();
        // The terms every position gets, −k·(Σdz + x̂·Σdz·x̂), as x·slope + offset.
        let slope = (0..c).map(|j| -k[j] * inv[j] * dgamma[j]).collect();
        let offset = (0..c)
            .map(|j| -k[j] * dbeta[j] + k[j] * mean[j] * inv[j] * dgamma[j])
            .collect();
        Gradient {
            saved: self,
            routed: k.iter().map(|k| k * n).collect(),
            slope,
            offset,
            dgamma,
            dbeta,
        }
    }
}

impl Saved {
    with_simd! {
        /// Adds one image's Σ dz and Σ dz·x̂ per channel to `sum` and `dot`, from its
        /// output gradient, routes and the input value of each output.
        fn add_sums / add_sums_avx2 / add_sums_avx512 => add_sums_here(
            &self, dy: &[f32], routes: &[u8], values: &[f32], sum: &mut [f32], dot: &mut [f32],
        )
    }

    #[inline(always)]
    fn add_sums_here(
        &self,
        dy: &[f32],
        routes: &[u8],
        values: &[f32],
        sum: &mut [f32],
        dot: &mut [f32],
    ) {
        // Each channel's terms are still added position by position: the same sums.
        let c = self.shape.c;
        in_channel_blocks!(&mut sum[..c], &mut dot[..c], |at, sums| {
            self.add_channel_sums(dy, routes, values, at, sums)
        });
    }

    /// `add_sums` for the channels `at`, into `sum` and `dot` (theirs only).
    #[inline(always)]
    fn add_channel_sums(
        &self,
        dy: &[f32],
        routes: &[u8],
        values: &[f32],
        at: std::ops::Range<usize>,
        (sum, dot): (&mut [f32], &mut [f32]),
    ) {
        let (c, len) = (self.shape.c, at.len());
        let (mean, inv) = (&self.moments.0[at.clone()], &self.inv[at.clone()]);
        let (sum, dot) = (&mut sum[..len], &mut dot[..len]);
        for ((dy, routes), x) in dy.chunks(c).zip(routes.chunks(c)).zip(values.chunks(c)) {
            let (dy, routes, x) = (&dy[at.clone()], &routes[at.clone()], &x[at.clone()]);
            for j in 0..len {
                // Clipped outputs add a zero (a select, not a branch).
                let dz = if routes[j] == CLIPPED { 0.0 } else { dy[j] };
                sum[j] += dz;
                dot[j] += dz * ((x[j] - mean[j]) * inv[j]);
            }
        }
    }
}

/// Batch norm's gradients for one batch: γ's and β's, and the terms of the input's.
pub(crate) struct Gradient<'a> {
    saved: &'a Saved,
    /// γ/σ per channel: the factor on each routed output's gradient.
    routed: Vec<f32>,
    slope: Vec<f32>,
    offset: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
}

impl Gradient<'_> {
    with_simd! {
        /// Image `image`'s input gradient, added to `dx` (`accumulate`) or written over
        /// it, from its input `img` and the batch's output gradient `dy`: x·slope + offset
        /// at every position, and the output gradients along their routes.
        pub(crate) fn add_image / add_image_avx2 / add_image_avx512 => add_image_here(
            &self, image: usize, img: &[f32], dy: &[f32], dx: &mut [f32], accumulate: bool,
        )
    }

    #[inline(always)]
    fn add_image_here(
        &self,
        image: usize,
        img: &[f32],
        dy: &[f32],
        dx: &mut [f32],
        accumulate: bool,
    ) {
        let shape = self.saved.shape;
        let (c, out_g) = (shape.c, shape.output());
        let out_per_image = out_g.h * out_g.w * c;
        let dy = &dy[image * out_per_image..][..out_per_image];
        let routes = &self.saved.routes[image * out_per_image..][..out_per_image];
        let terms = (&self.slope[..c], &self.offset[..c], accumulate);
        let routed = &self.routed[..c];
        if !shape.follow.pool {
            for (((dx, x), dy), routes) in dx
                .chunks_exact_mut(c)
                .zip(img.chunks_exact(c))
                .zip(dy.chunks_exact(c))
                .zip(routes.chunks_exact(c))
            {
                add_affine_routed(dx, x, terms, (dy, routes), routed, 0);
            }
            return;
        }
        let row = shape.g.w * c;
        for oy in 0..out_g.h {
            // Both image rows of this row of windows, each position once: its affine term
            // and, at the corner its output's route names, the output's gradient (the same
            // sums as the affine pass over the rows, then each output's gradient to its corner).
            for dy_row in 0..2 {
                let base = (2 * oy + dy_row) * row;
                for ox in 0..out_g.w {
                    let at = (oy * out_g.w + ox) * c;
                    let (dy, routes) = (&dy[at..at + c], &routes[at..at + c]);
                    for dx_col in 0..2 {
                        let p = base + (2 * ox + dx_col) * c;
                        let corner = (2 * dy_row + dx_col) as u8;
                        let (dx, x) = (&mut dx[p..p + c], &img[p..p + c]);
                        add_affine_routed(dx, x, terms, (dy, routes), routed, corner);
                    }
                }
                // An odd last column, which pooling drops.
                let rest = base + 2 * out_g.w * c..base + row;
                add_affine(&mut dx[rest.clone()], &img[rest], terms);
            }
        }
        // An odd last row, which pooling drops.
        let rest = 2 * out_g.h * row..shape.g.h * row;
        add_affine(&mut dx[rest.clone()], &img[rest], terms);
    }

    /// Adds γ's gradient (`gamma`) or β's to `sum`.
    pub(crate) fn store_parameters(&self, sum: &mut [f32], gamma: bool) {
        let values = if gamma { &self.dgamma } else { &self.dbeta };
        sum.iter_mut().zip(values).for_each(|(s, v)| *s += v);
    }
}

/// What a batch-norm layer applies in its own pass: the ReLU and the 2×2 max-pool that
/// directly follow it in the layer list.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Follow {
    pub relu: bool,
    pub pool: bool,
}

/// The geometry of a fused batch norm: input images, channels, what follows.
#[derive(Clone, Copy)]
pub(crate) struct Fused {
    pub(crate) g: Geometry,
    pub(crate) c: usize,
    pub(crate) follow: Follow,
}

impl Fused {
    pub(crate) fn output(&self) -> Geometry {
        self.g.pooled_if(self.follow.pool)
    }

    with_simd! {
        /// One image: z = x·a + b, then ReLU and pooling as fused, with the route of each
        /// output (the pooled corner, or `CLIPPED`) when any is, and when pooled, in
        /// `picked`, the input value at each output's corner.
        fn forward_image / forward_image_avx2 / forward_image_avx512 => forward_image_here(
            &self, img: &[f32], a: &[f32], b: &[f32], out: &mut [f32], routes: &mut [u8],
            picked: Option<&mut [f32]>,
        )
    }

    #[inline(always)]
    fn forward_image_here(
        &self,
        img: &[f32],
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
        routes: &mut [u8],
        picked: Option<&mut [f32]>,
    ) {
        let c = self.c;
        let (a, b) = (&a[..c], &b[..c]);
        let Some(picked) = picked else {
            // Unpooled: one pass, normalising and clipping (as `relu_in_place`) each value
            // and writing its route, 0 or `CLIPPED`, with selects (a second pass that
            // writes only the clipped routes compiles to a branch per channel).
            let relu = self.follow.relu;
            let rows = out.chunks_exact_mut(c).zip(routes.chunks_exact_mut(c));
            for ((z, routes), x) in rows.zip(img.chunks_exact(c)) {
                let blocked = c - c % CHANNEL_BLOCK;
                for at in (0..blocked).step_by(CHANNEL_BLOCK) {
                    normalise_lanes::<CHANNEL_BLOCK>((x, a, b), z, routes, relu, at);
                }
                for at in blocked..c {
                    normalise_lanes::<1>((x, a, b), z, routes, relu, at);
                }
            }
            return;
        };
        let (w, o, relu) = (self.g.w, self.output(), self.follow.relu);
        for oy in 0..o.h {
            for ox in 0..o.w {
                let p = ((2 * oy) * w + 2 * ox) * c;
                let (x0, x1) = (&img[p..p + c], &img[p + c..p + 2 * c]);
                let q = p + w * c;
                let (x2, x3) = (&img[q..q + c], &img[q + c..q + 2 * c]);
                let at = (oy * o.w + ox) * c;
                let out = &mut out[at..at + c];
                let routes = &mut routes[at..at + c];
                let picked = &mut picked[at..at + c];
                // One pass along the channels: normalise the four corners, pool them (as
                // `pool_corners`), keep the input at the winning corner, clip (as
                // `relu_in_place`); selects, not branches.
                let corners = [x0, x1, x2, x3];
                let blocked = c - c % CHANNEL_BLOCK;
                for at in (0..blocked).step_by(CHANNEL_BLOCK) {
                    let outputs = (&mut *out, &mut *routes, &mut *picked);
                    pool_normalised_lanes::<CHANNEL_BLOCK>(corners, (a, b), outputs, relu, at);
                }
                for at in blocked..c {
                    let outputs = (&mut *out, &mut *routes, &mut *picked);
                    pool_normalised_lanes::<1>(corners, (a, b), outputs, relu, at);
                }
            }
        }
    }
}

/// The `L` channels from `at` of one unpooled position: z = x·a + b, clipped (as
/// `relu_in_place`) when `relu`, with its route, 0 or `CLIPPED`.
#[inline(always)]
fn normalise_lanes<const L: usize>(
    (x, a, b): (&[f32], &[f32], &[f32]),
    z: &mut [f32],
    routes: &mut [u8],
    relu: bool,
    at: usize,
) {
    let lanes = at..at + L;
    let x: &[f32; L] = x[lanes.clone()].try_into().expect("L channels");
    let a: &[f32; L] = a[lanes.clone()].try_into().expect("L channels");
    let b: &[f32; L] = b[lanes.clone()].try_into().expect("L channels");
    let z: &mut [f32; L] = (&mut z[lanes.clone()]).try_into().expect("L channels");
    let routes: &mut [u8; L] = (&mut routes[lanes]).try_into().expect("L channels");
    for j in 0..L {
        let v = x[j] * a[j] + b[j];
        let clipped = relu && v <= 0.0;
        z[j] = if clipped { 0.0 } else { v };
        routes[j] = if clipped { CLIPPED } else { 0 };
    }
}

/// The `L` channels from `at` of one pooled output: the four `corners` normalised
/// (x·a + b), their maximum (as `pool_corners`), the input at the corner that holds it
/// (`picked`), clipped (as `relu_in_place`) when `relu`, with its route.
#[inline(always)]
fn pool_normalised_lanes<const L: usize>(
    corners: [&[f32]; 4],
    (a, b): (&[f32], &[f32]),
    (out, routes, picked): (&mut [f32], &mut [u8], &mut [f32]),
    relu: bool,
    at: usize,
) {
    let lanes = at..at + L;
    let [x0, x1, x2, x3] =
        corners.map(|x| -> &[f32; L] { x[lanes.clone()].try_into().expect("L channels") });
    let a: &[f32; L] = a[lanes.clone()].try_into().expect("L channels");
    let b: &[f32; L] = b[lanes.clone()].try_into().expect("L channels");
    let out: &mut [f32; L] = (&mut out[lanes.clone()]).try_into().expect("L channels");
    let routes: &mut [u8; L] = (&mut routes[lanes.clone()]).try_into().expect("L channels");
    let picked: &mut [f32; L] = (&mut picked[lanes]).try_into().expect("L channels");
    for j in 0..L {
        let (z0, z1) = (x0[j] * a[j] + b[j], x1[j] * a[j] + b[j]);
        let (z2, z3) = (x2[j] * a[j] + b[j], x3[j] * a[j] + b[j]);
        let m = z0.max(z1).max(z2.max(z3));
        let not0 = (z0 != m) as u8;
        let not1 = not0 & (z1 != m) as u8;
        let not2 = not1 & (z2 != m) as u8;
        let route = not0 + not1 + not2;
        let upper = if route == 0 { x0[j] } else { x1[j] };
        let lower = if route == 2 { x2[j] } else { x3[j] };
        picked[j] = if route < 2 { upper } else { lower };
        let clipped = relu && m <= 0.0;
        out[j] = if clipped { 0.0 } else { m };
        routes[j] = if clipped { CLIPPED } else { route };
    }
}

/// Channels handled as one fixed-size array in `forward_image`'s per-position loops: 16
/// floats, one AVX-512 vector or two AVX2 ones. A loop over a position's `c` channels alone
/// was vectorised 32 at a time, so 16 channels (`cnn_modern`'s first stage, its largest
/// images) ran in its 4-wide remainder loop. `add_affine_routed` keeps its loop: in such
/// blocks LLVM leaves it scalar, with a branch per channel.
const CHANNEL_BLOCK: usize = 16;

/// One position's channels: dx += x·slope + offset (as `add_affine`), then dx += routed·dy
/// where the output's route is `corner`: a select for every channel (the routes are coin
/// flips to a branch predictor, and a zero added changes nothing).
#[inline(always)]
fn add_affine_routed(
    dx: &mut [f32],
    x: &[f32],
    (slope, offset, accumulate): (&[f32], &[f32], bool),
    (dy, routes): (&[f32], &[u8]),
    routed: &[f32],
    corner: u8,
) {
    let c = routed.len();
    let (dx, x, dy, routes) = (&mut dx[..c], &x[..c], &dy[..c], &routes[..c]);
    let (slope, offset) = (&slope[..c], &offset[..c]);
    for j in 0..c {
        let d = if accumulate { dx[j] } else { 0.0 } + (x[j] * slope[j] + offset[j]);
        let g = routed[j] * dy[j];
        dx[j] = d + if routes[j] == corner { g } else { 0.0 };
    }
}

/// dst += x·slope + offset (or, not `accumulate`, dst = 0 + x·slope + offset, the same
/// numbers as added to zeros), channel by channel, over rows of `slope.len()` channels.
#[inline(always)]
fn add_affine(dst: &mut [f32], x: &[f32], (slope, offset, accumulate): (&[f32], &[f32], bool)) {
    let c = slope.len();
    for (d, x) in dst.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        for ((d, x), (p, q)) in d.iter_mut().zip(x).zip(slope.iter().zip(offset)) {
            *d = if accumulate { *d } else { 0.0 } + (x * p + q);
        }
    }
}

#[cfg(test)]
#[path = "batchnorm_tests.rs"]
mod tests;
