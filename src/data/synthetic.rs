//! Synthetic mammogram-like patches, generated deterministically from a seed, so that the
//! tool runs and is tested where the real data is absent.
//!
//! The model (documented in docs/models.md):
//! - Background: a Gaussian random field with a power-law spectrum P(f) ∝ f^-3 (the slope
//!   measured for mammographic tissue), made by an inverse FFT of random-phase coefficients,
//!   rescaled to a per-image brightness drawn from the same range for both classes
//!   (mean 60-150, s.d. 12-30), so mean intensity does not reveal the label.
//! - Positives (label 1): a cluster of 3-8 small bright spots (Gaussian blobs, σ 0.5-1.5 px,
//!   contrast 18-55 grey levels) within 9 px of a random centre.
//! - A third of the negatives carry one isolated spot of the same kind: a lone
//!   calcification is not a cluster, so "any bright dot" is not the answer either.
//! - Noise: white Gaussian, σ 3 grey levels; values are rounded and clipped to 0..255.

use super::{Dataset, Origin, Sample};
use crate::rng::Rng;

#[derive(Debug, Clone)]
pub struct SyntheticSpec {
    pub size: usize,
    pub train_per_class: usize,
    pub test_per_class: usize,
    pub seed: u64,
}

/// The whole synthetic dataset: Train then Test, negatives then positives.
pub fn generate(spec: &SyntheticSpec) -> Dataset {
    let mut samples = Vec::new();
    for (origin, per_class) in [
        (Origin::Train, spec.train_per_class),
        (Origin::Test, spec.test_per_class),
    ] {
        for label in [0u8, 1] {
            for i in 0..per_class {
                let name = format!(
                    "syn{}{}{:05}",
                    origin.folder_name().to_lowercase(),
                    label,
                    i
                );
                let mut rng = Rng::derived(spec.seed, &name);
                let pixels = patch(spec.size, label == 1, &mut rng);
                let bytes: Vec<u8> = pixels.iter().map(|&v| v as u8).collect();
                samples.push(Sample {
                    id: format!("{}/{}/{name}", origin.folder_name(), label),
                    label,
                    origin,
                    group: name,
                    rows: spec.size,
                    cols: spec.size,
                    content_hash: super::content_hash(&bytes),
                    pixels,
                });
            }
        }
    }
    Dataset::new(samples)
}

/// One `size`×`size` patch with values 0..255.
pub fn patch(size: usize, positive: bool, rng: &mut Rng) -> Vec<f32> {
    let field = power_law_field(size, 3.0, rng);
    let mean = rng.range(60.0, 150.0);
    let sd = rng.range(12.0, 30.0);
    let mut img: Vec<f64> = field.iter().map(|v| mean + sd * v).collect();
    let spots = if positive {
        3 + rng.below(6)
    } else if rng.uniform() < 1.0 / 3.0 {
        1
    } else {
        0
    };
    let margin = 10.0f64.min(size as f64 / 4.0);
    let cy = rng.range(margin, size as f64 - margin);
    let cx = rng.range(margin, size as f64 - margin);
    for _ in 0..spots {
        let r = 9.0 * rng.uniform().sqrt();
        let angle = rng.range(0.0, 2.0 * std::f64::consts::PI);
        let (sy, sx) = (cy + r * angle.sin(), cx + r * angle.cos());
        let sigma = rng.range(0.5, 1.5);
        let contrast = rng.range(18.0, 55.0);
        add_blob(&mut img, size, sy, sx, sigma, contrast);
    }
    img.iter()
        .map(|v| (v + 3.0 * rng.normal()).round().clamp(0.0, 255.0) as f32)
        .collect()
}

fn add_blob(img: &mut [f64], size: usize, cy: f64, cx: f64, sigma: f64, amplitude: f64) {
    let reach = (4.0 * sigma).ceil() as i64;
    let (iy, ix) = (cy.round() as i64, cx.round() as i64);
    for y in (iy - reach).max(0)..=(iy + reach).min(size as i64 - 1) {
        for x in (ix - reach).max(0)..=(ix + reach).min(size as i64 - 1) {
            let d2 = (y as f64 - cy).powi(2) + (x as f64 - cx).powi(2);
            img[y as usize * size + x as usize] += amplitude * (-d2 / (2.0 * sigma * sigma)).exp();
        }
    }
}

/// Zero-mean, unit-variance random field whose power spectrum falls as f^-beta, cropped
/// from a power-of-two FFT grid.
fn power_law_field(size: usize, beta: f64, rng: &mut Rng) -> Vec<f64> {
    let n = size.next_power_of_two();
    let mut re = vec![0.0; n * n];
    let mut im = vec![0.0; n * n];
    for ky in 0..n {
        for kx in 0..n {
            let fy = ky.min(n - ky) as f64;
            let fx = kx.min(n - kx) as f64;
            let f = (fx * fx + fy * fy).sqrt();
            if f == 0.0 {
                continue;
            }
            let amplitude = f.powf(-beta / 2.0);
            re[ky * n + kx] = amplitude * rng.normal();
            im[ky * n + kx] = amplitude * rng.normal();
        }
    }
    fft2(&mut re, &mut im, n);
    let crop: Vec<f64> = (0..size)
        .flat_map(|y| (0..size).map(move |x| (y, x)))
        .map(|(y, x)| re[y * n + x])
        .collect();
    let m = crop.iter().sum::<f64>() / crop.len() as f64;
    let sd = (crop.iter().map(|v| (v - m).powi(2)).sum::<f64>() / crop.len() as f64).sqrt();
    crop.iter().map(|v| (v - m) / sd.max(1e-12)).collect()
}

/// In-place 2-D FFT of an n×n complex array (n a power of two), rows then columns.
fn fft2(re: &mut [f64], im: &mut [f64], n: usize) {
    let mut row_re = vec![0.0; n];
    let mut row_im = vec![0.0; n];
    for pass in 0..2 {
        for line in 0..n {
            let idx = |k: usize| {
                if pass == 0 {
                    line * n + k
                } else {
                    k * n + line
                }
            };
            for k in 0..n {
                row_re[k] = re[idx(k)];
                row_im[k] = im[idx(k)];
            }
            fft(&mut row_re, &mut row_im);
            for k in 0..n {
                re[idx(k)] = row_re[k];
                im[idx(k)] = row_im[k];
            }
        }
    }
}

/// Iterative radix-2 Cooley-Tukey FFT.
fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let angle = -2.0 * std::f64::consts::PI / len as f64;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let (wr, wi) = ((angle * k as f64).cos(), (angle * k as f64).sin());
                let (a, b) = (start + k, start + k + len / 2);
                let tr = re[b] * wr - im[b] * wi;
                let ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
        len <<= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_of_an_impulse_is_flat() {
        let mut re = vec![0.0; 8];
        let mut im = vec![0.0; 8];
        re[0] = 1.0;
        fft(&mut re, &mut im);
        assert!(re.iter().all(|v| (v - 1.0).abs() < 1e-12) && im.iter().all(|v| v.abs() < 1e-12));
    }

    #[test]
    fn fft_matches_a_direct_dft() {
        let x: Vec<f64> = (0..16).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
        let (mut re, mut im) = (x.clone(), vec![0.0; 16]);
        fft(&mut re, &mut im);
        for k in 0..16 {
            let (mut dr, mut di) = (0.0, 0.0);
            for (t, v) in x.iter().enumerate() {
                let a = -2.0 * std::f64::consts::PI * (k * t) as f64 / 16.0;
                dr += v * a.cos();
                di += v * a.sin();
            }
            assert!((re[k] - dr).abs() < 1e-9 && (im[k] - di).abs() < 1e-9);
        }
    }

    #[test]
    fn generation_is_deterministic_and_8_bit() {
        let spec = SyntheticSpec {
            size: 60,
            train_per_class: 3,
            test_per_class: 2,
            seed: 5,
        };
        let a = generate(&spec);
        let b = generate(&spec);
        assert_eq!(a.samples.len(), 10);
        for (x, y) in a.samples.iter().zip(&b.samples) {
            assert_eq!(x.pixels, y.pixels);
            assert!(x
                .pixels
                .iter()
                .all(|v| (0.0..=255.0).contains(v) && v.fract() == 0.0));
        }
        let c = generate(&SyntheticSpec { seed: 6, ..spec });
        assert_ne!(a.samples[0].pixels, c.samples[0].pixels);
    }

    #[test]
    fn background_spectrum_falls_like_a_power_law() {
        // Mean squared difference of neighbours grows slower than for white noise: a smooth field.
        let mut rng = Rng::new(1);
        let f = power_law_field(64, 3.0, &mut rng);
        let lag1: f64 = (0..63 * 64)
            .map(|i| (f[i + 64] - f[i]).powi(2))
            .sum::<f64>()
            / (63.0 * 64.0);
        assert!(
            lag1 < 0.3,
            "neighbouring pixels should be strongly correlated, got {lag1}"
        );
    }
}
