//! How a convolution's outputs are written: stored, added, or max-pooled 2×2 with the route
//! of each maximum, and ReLU with the positions it clipped. Shared by every way of computing
//! a convolution (`conv`'s matrix products, `winograd`, `taps`) and by the pooling op, so
//! that one rule decides which corner wins a window and where its gradient goes.

use super::kernel::with_simd;

/// Where each output's gradient goes: for pooled outputs the position (0-3) of the maximum in
/// its 2×2 window, for unpooled ones 0; `CLIPPED` where a ReLU zeroed the output.
pub(crate) const CLIPPED: u8 = u8::MAX;

/// Where a convolution's outputs go.
pub(crate) enum Output<'a> {
    /// Max-pooled 2×2 ((h/2)·(w/2)·cout), with the route of each maximum (first corner
    /// holding it, corners numbered row by row) when given.
    Pooled {
        out: &'a mut [f32],
        routes: Option<&'a mut [u8]>,
    },
    /// Every output (h·w·cout), written or added to what is there.
    Full {
        out: &'a mut [f32],
        accumulate: bool,
    },
}

/// The 2×2 output blocks over an h×w image, (rows, columns): when `pooled`, exactly the
/// pooling windows (an odd last row or column is dropped), otherwise enough to cover every
/// output (edge blocks hang over the border).
pub(crate) fn output_blocks(h: usize, w: usize, pooled: bool) -> (usize, usize) {
    if pooled {
        (h / 2, w / 2)
    } else {
        (h.div_ceil(2), w.div_ceil(2))
    }
}

impl Output<'_> {
    /// The 2×2 output blocks over an h×w image ([`output_blocks`]).
    pub(crate) fn blocks(&self, h: usize, w: usize) -> (usize, usize) {
        output_blocks(h, w, matches!(self, Output::Pooled { .. }))
    }

    /// The outputs of block (by, bx) of an h×w output with `c` channels, sliced once for
    /// all of the block's channels (the block's pooled output and routes, or its corners
    /// inside the output), so that writing each vector of channels is checked against a
    /// run of `c` values, not against the whole output.
    #[inline(always)]
    pub(crate) fn block(
        &mut self,
        (by, bx): (usize, usize),
        c: usize,
        (h, w): (usize, usize),
    ) -> BlockOutput<'_> {
        match self {
            Output::Pooled { out, routes } => {
                let o = (by * (w / 2) + bx) * c;
                BlockOutput::Pooled {
                    out: &mut out[o..o + c],
                    routes: routes.as_deref_mut().map(|r| &mut r[o..o + c]),
                }
            }
            Output::Full { out, accumulate } => {
                let (oy, ox) = (2 * by, 2 * bx);
                let columns = (w - ox).min(2);
                // The block's two output rows (the second maybe past the last), each split
                // into its one or two corners; the second starts a row (w·c) after the first.
                let (top, rest) = out[(oy * w + ox) * c..].split_at_mut(columns * c);
                let bottom = (oy + 1 < h).then(|| &mut rest[(w - columns) * c..][..columns * c]);
                let mut corners: [Option<&mut [f32]>; 4] = [None, None, None, None];
                for (row, values) in [Some(top), bottom].into_iter().enumerate() {
                    let Some(values) = values else { continue };
                    for (column, corner) in values.chunks_exact_mut(c).enumerate() {
                        corners[2 * row + column] = Some(corner);
                    }
                }
                BlockOutput::Full {
                    corners,
                    accumulate: *accumulate,
                }
            }
        }
    }
}

/// One output block's outputs ([`Output::block`]).
pub(crate) enum BlockOutput<'a> {
    /// Its pooled output and the routes, `c` channels each.
    Pooled {
        out: &'a mut [f32],
        routes: Option<&'a mut [u8]>,
    },
    /// Its corners (row by row) inside the output, `c` channels each.
    Full {
        corners: [Option<&'a mut [f32]>; 4],
        accumulate: bool,
    },
}

impl BlockOutput<'_> {
    /// Pools or stores the four corners (row by row) for the `L` channels from `ch`.
    #[inline(always)]
    pub(crate) fn emit<const L: usize>(&mut self, values: &[[f32; L]; 4], ch: usize) {
        match self {
            BlockOutput::Pooled { out, routes } => {
                let routes = routes.as_deref_mut().map(|r| &mut r[ch..ch + L]);
                let [c0, c1, c2, c3] = values;
                pool_corners([c0, c1, c2, c3], &mut out[ch..ch + L], routes);
            }
            BlockOutput::Full {
                corners,
                accumulate,
            } => {
                for (corner, values) in corners.iter_mut().zip(values) {
                    let Some(corner) = corner else { continue };
                    let dst: &mut [f32; L] =
                        (&mut corner[ch..ch + L]).try_into().expect("L values");
                    // Whole arrays, not a branch per value, so that the copy and the sums
                    // run as vectors; the sums in a local copy (added in place, they stayed
                    // scalar).
                    if *accumulate {
                        let mut sum = *dst;
                        for (s, v) in sum.iter_mut().zip(values) {
                            *s += v;
                        }
                        *dst = sum;
                    } else {
                        *dst = *values;
                    }
                }
            }
        }
    }
}

/// The maximum of four corners (positions numbered row by row in a 2×2 window), channel
/// by channel, into `out`, and in `routes` (when given) which corner first holds it.
/// Branch-free: the comparisons are coin flips to a branch predictor.
#[inline(always)]
pub(crate) fn pool_corners(corners: [&[f32]; 4], out: &mut [f32], routes: Option<&mut [u8]>) {
    let n = out.len();
    let [c0, c1, c2, c3] = corners.map(|corner| &corner[..n]);
    for ch in 0..n {
        out[ch] = c0[ch].max(c1[ch]).max(c2[ch].max(c3[ch]));
    }
    if let Some(routes) = routes {
        // The first corner holding the maximum: 0 if c0 does, else 1 if c1 does, ... The
        // counts are made as 32-bit lanes (like the floats compared), `ROUTE_LANES` at a
        // time, then narrowed: counted in bytes, the compares ran one channel at a time.
        const ROUTE_LANES: usize = 16;
        let routes = &mut routes[..n];
        for (k, routes) in routes.chunks_mut(ROUTE_LANES).enumerate() {
            let at = k * ROUTE_LANES;
            let mut counts = [0u32; ROUTE_LANES];
            for (l, count) in counts.iter_mut().enumerate().take(routes.len()) {
                let (ch, m) = (at + l, out[at + l]);
                let not0 = (c0[ch] != m) as u32;
                let not1 = not0 & (c1[ch] != m) as u32;
                let not2 = not1 & (c2[ch] != m) as u32;
                *count = not0 + not1 + not2;
            }
            for (route, count) in routes.iter_mut().zip(counts) {
                *route = count as u8;
            }
        }
    }
}

/// Max-pools one image (h×w×c, NHWC) 2×2 into `out` ((h/2)×(w/2)×c); records in `routes`
/// (when given) which of the four positions held the maximum (first one on ties). Loops
/// run along the channels so that they vectorise.
pub(crate) fn pool2(
    img: &[f32],
    h: usize,
    w: usize,
    c: usize,
    out: &mut [f32],
    routes: Option<&mut [u8]>,
) {
    let (oh, ow) = (h / 2, w / 2);
    let mut routes = routes;
    for oy in 0..oh {
        for ox in 0..ow {
            let o = (oy * ow + ox) * c;
            let corner = |r: usize| &img[((2 * oy + (r >> 1)) * w + 2 * ox + (r & 1)) * c..][..c];
            let routes = routes.as_deref_mut().map(|r| &mut r[o..o + c]);
            pool_corners([0, 1, 2, 3].map(corner), &mut out[o..o + c], routes);
        }
    }
}

/// ReLU on one image's outputs, marking the clipped ones in `routes` (when given).
pub(crate) fn relu_in_place(values: &mut [f32], routes: Option<&mut [u8]>) {
    Relu.apply(values, routes)
}

/// ReLU as a method, so that [`with_simd`] compiles it for the process's path (compiled
/// for the baseline x86-64, it ran on SSE2's 4-float vectors at most).
struct Relu;

impl Relu {
    with_simd! {
        fn apply / apply_avx2 / apply_avx512 => apply_here(
            &self, values: &mut [f32], routes: Option<&mut [u8]>
        )
    }

    #[inline(always)]
    fn apply_here(&self, values: &mut [f32], routes: Option<&mut [u8]>) {
        match routes {
            Some(routes) => {
                // Selects, not branches: which outputs are clipped is a coin flip. The route
                // is ORed with all ones (`CLIPPED`) or zero and always written back: a route
                // written only where clipped became a test and a branch per value.
                const { assert!(CLIPPED == u8::MAX) };
                for (v, r) in values.iter_mut().zip(routes) {
                    let clipped = *v <= 0.0;
                    *r |= 0u8.wrapping_sub(u8::from(clipped));
                    *v = if clipped { 0.0 } else { *v };
                }
            }
            None => values.iter_mut().for_each(|v| *v = v.max(0.0)),
        }
    }
}
