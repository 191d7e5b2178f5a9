//! Convolution of a single-channel image tap by tap.
//!
//! Why not a matrix product: with one input channel each output is only k·k products per
//! output channel (9 for the reference network's first layer), too shallow for the tile
//! code to pay for building the patches and loading and storing its tile of sums. Here each
//! output's sums for 8 channels stay in one vector register while the k·k pixels are
//! broadcast against the kernel's rows, and pooled outputs are pooled at once.
//!
//! On AVX-512 the 32 channels' four corners are pooled in their registers (`wide_window`).
//! Stored to arrays of floats first, as the other paths pool, they were reloaded in pieces
//! of other widths, and pooling took longer than the products: the layer had 4.5% of a
//! `bench cnn` profile's samples (AMD EPYC Zen 5, 2026-12-04), 3.2% after.

use super::blocks::{BlockOutput, Output};
use crate::simd::SimdPath;

/// Output channels computed together: two 8-lane vectors (for a pooling window, 8 sums in
/// flight, enough to hide the latency of the multiply-adds). The AVX-512 path computes
/// twice as many, in two 16-lane vectors ([`avx512`]).
const LANES: usize = 16;

/// The 'same' k×k convolution of one h×w single-channel image with weights (k·k, cout)
/// (rows ordered ky, kx) plus `bias`, into `output`.
pub(crate) fn convolve(
    img: &[f32],
    dims: (usize, usize, usize),
    params: (&[f32], &[f32]),
    output: Output,
    padded: &mut Vec<f32>,
) {
    convolve_on(crate::simd::active(), img, dims, params, output, padded)
}

/// [`convolve`] on a given path, which the CPU must support.
fn convolve_on(
    path: SimdPath,
    img: &[f32],
    (h, w, k): (usize, usize, usize),
    (weights, bias): (&[f32], &[f32]),
    mut output: Output,
    padded: &mut Vec<f32>,
) {
    assert!(path.is_supported(), "{} is not supported", path.name());
    // One more zero row and column than 'same' needs: an odd last row or column is
    // computed as part of a 2×2 window whose other half is discarded.
    let pad = k / 2;
    let pw = w + 2 * pad + 1;
    padded.clear();
    padded.resize((h + 2 * pad + 1) * pw, 0.0);
    for (y, row) in img.chunks(w).take(h).enumerate() {
        padded[(y + pad) * pw + pad..][..w].copy_from_slice(row);
    }
    let image = Padded {
        data: padded,
        pw,
        k,
    };
    #[cfg(target_arch = "x86_64")]
    match path {
        SimdPath::Avx512 => {
            // SAFETY: the CPU supports the path (asserted): it has AVX-512F and FMA.
            unsafe { avx512::convolve(&image, (h, w), (weights, bias), &mut output) };
            return;
        }
        SimdPath::Avx2 => {
            // SAFETY: the CPU supports the path (asserted): it has AVX2 and FMA.
            unsafe { convolve_fma(&image, (h, w), (weights, bias), &mut output) };
            return;
        }
        SimdPath::Portable => {}
    }
    convolve_here::<false, false>(&image, (h, w), (weights, bias), &mut output);
}

/// A zero-padded image: output (y, x) reads rows y..y+k, columns x..x+k (for every output
/// of the image, and one row and column past it).
struct Padded<'a> {
    data: &'a [f32],
    pw: usize,
    k: usize,
}

/// The same, compiled for AVX2 with fused multiply-adds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn convolve_fma(
    image: &Padded,
    dims: (usize, usize),
    params: (&[f32], &[f32]),
    output: &mut Output,
) {
    convolve_here::<true, false>(image, dims, params, output);
}

/// Every 2×2 window's outputs, `LANES` channels at a time, then one by one; with `WIDE`
/// (only from [`avx512::convolve`]), first 32 channels at a time by AVX-512's
/// [`avx512::wide_window`].
#[inline(always)]
fn convolve_here<const FUSED: bool, const WIDE: bool>(
    image: &Padded,
    (h, w): (usize, usize),
    (weights, bias): (&[f32], &[f32]),
    output: &mut Output,
) {
    let cout = bias.len();
    let (rows, cols) = output.blocks(h, w);
    for by in 0..rows {
        for bx in 0..cols {
            let window = (2 * by, 2 * bx);
            let mut block = output.block((by, bx), cout, (h, w));
            let mut ch = 0;
            #[cfg(target_arch = "x86_64")]
            while WIDE && ch + 2 * LANES <= cout {
                // SAFETY: WIDE is true only in the copy `avx512::convolve` compiles, which
                // runs only where the CPU has AVX-512F and FMA.
                unsafe { avx512::wide_window(image, window, (weights, bias), ch, &mut block) };
                ch += 2 * LANES;
            }
            while ch + LANES <= cout {
                let corners = window_sums::<LANES, FUSED>(image, window, (weights, bias), ch);
                block.emit(&corners, ch);
                ch += LANES;
            }
            for ch in ch..cout {
                let corners = window_sums::<1, FUSED>(image, window, (weights, bias), ch);
                block.emit(&corners, ch);
            }
        }
    }
}

/// Bias plus the k·k taps' products for the four outputs of the 2×2 window at (y, x)
/// (corners row by row), `L` channels from `ch`, with fused multiply-adds when `FUSED`.
/// Computed together: each tap's weights are loaded once, and the four sums do not wait
/// on one another.
#[inline(always)]
fn window_sums<const L: usize, const FUSED: bool>(
    image: &Padded,
    (y, x): (usize, usize),
    (weights, bias): (&[f32], &[f32]),
    ch: usize,
) -> [[f32; L]; 4] {
    let (cout, k) = (bias.len(), image.k);
    let start: [f32; L] = bias[ch..ch + L].try_into().expect("L lanes");
    let mut acc = [start; 4];
    for ky in 0..k {
        let top = &image.data[(y + ky) * image.pw + x..][..k + 1];
        let bottom = &image.data[(y + ky + 1) * image.pw + x..][..k + 1];
        for kx in 0..k {
            let tap: &[f32; L] = weights[(ky * k + kx) * cout + ch..][..L]
                .try_into()
                .expect("L lanes");
            let pixels = [top[kx], top[kx + 1], bottom[kx], bottom[kx + 1]];
            for (sum, pixel) in acc.iter_mut().zip(pixels) {
                for l in 0..L {
                    sum[l] = if FUSED {
                        pixel.mul_add(tap[l], sum[l])
                    } else {
                        sum[l] + pixel * tap[l]
                    };
                }
            }
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{BlockOutput, Output, Padded, LANES};
    use std::arch::x86_64::*;

    /// Channels computed together: two 16-lane vectors, 8 sums in flight per window.
    const WIDE: usize = 2 * LANES;

    /// [`super::convolve_here`] on AVX-512F, 32 channels at a time: each channel's sum is
    /// the same chain of fused multiply-adds, in the same order, as on AVX2, so the bits
    /// are the same. (Written with intrinsics: the compiler's own vectorisation of 32-lane
    /// arrays spills them.)
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) fn convolve(
        image: &Padded,
        dims: (usize, usize),
        params: (&[f32], &[f32]),
        output: &mut Output,
    ) {
        super::convolve_here::<true, true>(image, dims, params, output);
    }

    /// [`super::window_sums`] for 32 channels from `ch`, as two halves of 16, written to
    /// `block` as [`BlockOutput::emit`] writes them. A pooled block is pooled in the
    /// registers: through arrays of floats, the sums were stored and reloaded in pieces
    /// of other widths, and pooling them took longer than computing them.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) fn wide_window(
        image: &Padded,
        (y, x): (usize, usize),
        (weights, bias): (&[f32], &[f32]),
        ch: usize,
        block: &mut BlockOutput,
    ) {
        let (cout, k) = (bias.len(), image.k);
        let load = |values: &[f32]| {
            let values = &values[..WIDE];
            // SAFETY: `values` holds WIDE = 2·16 floats (the slice above is checked).
            unsafe {
                [
                    _mm512_loadu_ps(values.as_ptr()),
                    _mm512_loadu_ps(values.as_ptr().add(LANES)),
                ]
            }
        };
        let mut acc = [load(&bias[ch..]); 4];
        for ky in 0..k {
            let top = &image.data[(y + ky) * image.pw + x..][..k + 1];
            let bottom = &image.data[(y + ky + 1) * image.pw + x..][..k + 1];
            for kx in 0..k {
                let [tap0, tap1] = load(&weights[(ky * k + kx) * cout + ch..]);
                let pixels = [top[kx], top[kx + 1], bottom[kx], bottom[kx + 1]];
                for (sum, pixel) in acc.iter_mut().zip(pixels) {
                    let pixel = _mm512_set1_ps(pixel);
                    sum[0] = _mm512_fmadd_ps(pixel, tap0, sum[0]);
                    sum[1] = _mm512_fmadd_ps(pixel, tap1, sum[1]);
                }
            }
        }
        if let BlockOutput::Pooled { out, routes } = block {
            let out = &mut out[ch..ch + WIDE];
            let mut routes = routes.as_deref_mut().map(|r| &mut r[ch..ch + WIDE]);
            for half in 0..2 {
                let [c0, c1, c2, c3] = acc.map(|corner| corner[half]);
                let max = max_like_f32(max_like_f32(c0, c1), max_like_f32(c2, c3));
                // SAFETY: `out` holds 2·16 floats (sliced above).
                unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(half * LANES), max) };
                let Some(routes) = routes.as_deref_mut() else {
                    continue;
                };
                // As `pool_corners`: the first corner holding the maximum (`!=` is true
                // for NaN, so an unordered compare).
                let not0 = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(c0, max);
                let not1 = not0 & _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(c1, max);
                let not2 = not1 & _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(c2, max);
                let one = _mm512_set1_epi32(1);
                let counts = _mm512_add_epi32(
                    _mm512_add_epi32(
                        _mm512_maskz_mov_epi32(not0, one),
                        _mm512_maskz_mov_epi32(not1, one),
                    ),
                    _mm512_maskz_mov_epi32(not2, one),
                );
                // SAFETY: `routes` holds 2·16 bytes (sliced above); the 16 counts narrowed
                // to bytes are 16 bytes.
                unsafe {
                    _mm_storeu_si128(
                        routes.as_mut_ptr().add(half * LANES).cast(),
                        _mm512_cvtepi32_epi8(counts),
                    )
                };
            }
            return;
        }
        let mut halves = [[[0.0; LANES]; 4]; 2];
        for (corner, sum) in acc.iter().enumerate() {
            for (half, vector) in sum.iter().enumerate() {
                // SAFETY: each corner of a half holds LANES = 16 floats.
                unsafe { _mm512_storeu_ps(halves[half][corner].as_mut_ptr(), *vector) };
            }
        }
        block.emit(&halves[0], ch);
        block.emit(&halves[1], ch + LANES);
    }

    /// `a.max(b)` of every lane, with the result `f32::max` gives on x86 (LLVM's
    /// lowering of `maxnum`): `b` where `a` is NaN, otherwise MAXPS with `b` first, which
    /// gives `a` where the two are equal (so the sign of a zero tie is `a`'s) or `b` is
    /// NaN. The same bits as the pooling of the other paths, including those cases.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn max_like_f32(a: __m512, b: __m512) -> __m512 {
        let max = _mm512_max_ps(b, a);
        _mm512_mask_mov_ps(max, _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, a), b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The convolution of an h×w image on `path`: pooled (the pooled outputs and their
    /// routes) or stored (every output; no routes).
    fn convolved(
        path: SimdPath,
        img: &[f32],
        (h, w, k): (usize, usize, usize),
        params: (&[f32], &[f32]),
        pooled: bool,
    ) -> (Vec<f32>, Vec<u8>) {
        let cout = params.1.len();
        let n = if pooled { (h / 2) * (w / 2) } else { h * w } * cout;
        let (mut out, mut routes) = (vec![0.0; n], vec![0; n]);
        let output = if pooled {
            Output::Pooled {
                out: &mut out,
                routes: Some(&mut routes),
            }
        } else {
            Output::Full {
                out: &mut out,
                accumulate: false,
            }
        };
        convolve_on(path, img, (h, w, k), params, output, &mut Vec::new());
        (out, routes)
    }

    /// Every path this CPU has, pooled (with routes) and stored, with channel counts that
    /// use each width (32 on AVX-512, 16, single channels): AVX-512 gives AVX2's bits, and
    /// every path comes within 1e-5 of the portable one (which rounds each product).
    #[test]
    fn every_available_path_matches_the_portable_one() {
        let mut rng = Rng::new(5);
        let (h, w, k) = (9, 7, 3);
        let img: Vec<f32> = (0..h * w).map(|_| rng.normal() as f32).collect();
        for cout in [32, 53, 8] {
            let weights: Vec<f32> = (0..k * k * cout).map(|_| rng.normal() as f32).collect();
            let bias: Vec<f32> = (0..cout).map(|_| rng.normal() as f32).collect();
            let run = |path: SimdPath, pooled: bool| {
                convolved(path, &img, (h, w, k), (&weights, &bias), pooled)
            };
            for pooled in [true, false] {
                let portable = run(SimdPath::Portable, pooled);
                for path in SimdPath::available() {
                    let result = run(path, pooled);
                    for (x, y) in result.0.iter().zip(&portable.0) {
                        assert!(
                            (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                            "{path:?}: {x} vs {y}"
                        );
                    }
                    if path == SimdPath::Avx512 {
                        assert!(result == run(SimdPath::Avx2, pooled), "cout {cout}");
                    }
                }
            }
        }
    }

    /// Pooling's corner cases on AVX-512 (pooled in its registers) give AVX2's bits and
    /// routes: NaN pixels (NaN sums in some corners of a window), and windows of zero
    /// pixels with signed-zero biases (zero sums, so ties between corners).
    #[test]
    fn nans_and_ties_pool_as_on_avx2() {
        if !SimdPath::available().contains(&SimdPath::Avx512) {
            return;
        }
        let (h, w, k, cout) = (8, 8, 3, 32);
        let mut rng = Rng::new(9);
        let mut img: Vec<f32> = (0..h * w).map(|_| rng.normal() as f32).collect();
        img[2 * w + 3] = f32::NAN;
        img[6 * w..].fill(0.0);
        let weights: Vec<f32> = (0..k * k * cout).map(|_| rng.normal() as f32).collect();
        let bias: Vec<f32> = (0..cout)
            .map(|c| if c % 2 == 0 { 0.0 } else { -0.0 })
            .collect();
        let run = |path: SimdPath| {
            let (out, routes) = convolved(path, &img, (h, w, k), (&weights, &bias), true);
            (out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), routes)
        };
        let (wide, narrow) = (run(SimdPath::Avx512), run(SimdPath::Avx2));
        assert!(
            wide.0.iter().any(|v| f32::from_bits(*v).is_nan()),
            "some NaN"
        );
        assert!(wide.0.contains(&0), "some zero");
        assert_eq!(wide, narrow);
    }
}
