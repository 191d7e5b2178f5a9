//! Convolution of a single-channel image tap by tap.
//!
//! Why not a matrix product: with one input channel each output is only k·k products per
//! output channel (9 for the reference network's first layer), too shallow for the tile
//! code to pay for building the patches and loading and storing its tile of sums. Here each
//! output's sums for 8 channels stay in one vector register while the k·k pixels are
//! broadcast against the kernel's rows, and pooled outputs are pooled at once.

use super::blocks::Output;

/// Output channels computed together: two 8-lane vectors (for a pooling window, 8 sums in
/// flight, enough to hide the latency of the multiply-adds).
const LANES: usize = 16;

/// The 'same' k×k convolution of one h×w single-channel image with weights (k·k, cout)
/// (rows ordered ky, kx) plus `bias`, into `output`.
pub(crate) fn convolve(
    img: &[f32],
    (h, w, k): (usize, usize, usize),
    (weights, bias): (&[f32], &[f32]),
    mut output: Output,
    padded: &mut Vec<f32>,
) {
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
    if super::kernel::has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { convolve_fma(&image, (h, w), (weights, bias), &mut output) };
        return;
    }
    convolve_here::<false>(&image, (h, w), (weights, bias), &mut output);
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
    convolve_here::<true>(image, dims, params, output);
}

#[inline(always)]
fn convolve_here<const FUSED: bool>(
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
            let mut ch = 0;
            while ch + LANES <= cout {
                let corners = window_sums::<LANES, FUSED>(image, window, (weights, bias), ch);
                output.emit_block(&corners, (by, bx, ch), cout, (h, w));
                ch += LANES;
            }
            for ch in ch..cout {
                let corners = window_sums::<1, FUSED>(image, window, (weights, bias), ch);
                output.emit_block(&corners, (by, bx, ch), cout, (h, w));
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
