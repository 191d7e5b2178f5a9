//! Turning a decomposition into a feature vector for a classifier.

use serde::{Deserialize, Serialize};

use super::{transform, Array2, Wavelet, WaveletError};
use crate::stats::percentile_sorted;

/// How kept sub-bands become features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureKind {
    /// The reference study's features: every kept coefficient, flattened in PyWavelets order
    /// (coarsest level first, `cH`, `cV`, `cD`, each row-major). 2,430 for db5/level 4/levels 2-4.
    Coefficients,
    /// Five position-free statistics per kept sub-band: RMS, mean |c|, max |c|, 95th
    /// percentile of |c| and excess kurtosis of c. A cluster of bright spots anywhere in the
    /// patch moves these the same way, which is why small classifiers generalise on them.
    SubbandStats,
}

/// Number of statistics `SubbandStats` computes per sub-band.
pub const STATS_PER_BAND: usize = 5;

/// Everything needed to turn an image into wavelet features.
#[derive(Debug, Clone)]
pub struct FeatureSpec {
    pub wavelet: Wavelet,
    pub level: usize,
    /// Detail levels kept (1 = finest).
    pub keep_levels: Vec<usize>,
    /// Whether the coarsest approximation is kept too.
    pub keep_approx: bool,
    pub kind: FeatureKind,
}

impl FeatureSpec {
    /// Features of one image (pixel values as stored, e.g. 0..255).
    pub fn extract(&self, image: &Array2) -> Result<Vec<f64>, WaveletError> {
        let mut out = self.extract_many(std::slice::from_ref(image))?;
        Ok(out.pop().expect("one feature vector per image"))
    }

    /// Features of many images; transforming them together lets every SIMD lane work (see
    /// [`transform::LANES`]), so prefer this for more than one image.
    pub fn extract_many(&self, images: &[Array2]) -> Result<Vec<Vec<f64>>, WaveletError> {
        let Some(first) = images.first() else {
            return Ok(Vec::new());
        };
        let width = self.feature_count(first.rows, first.cols);
        let mut out = vec![0.0; width * images.len()];
        if images
            .iter()
            .all(|i| (i.rows, i.cols) == (first.rows, first.cols))
        {
            self.extract_into(images, &mut out)?;
            return Ok(out.chunks(width).map(<[f64]>::to_vec).collect());
        }
        images.iter().map(|i| self.extract(i)).collect()
    }

    /// Number of features of an image of `rows`×`cols` pixels.
    pub fn feature_count(&self, rows: usize, cols: usize) -> usize {
        let (mut r, mut c) = (rows, cols);
        let f = self.wavelet.len();
        let mut bands = Vec::new();
        for level in 1..=self.level {
            r = transform::coeff_len(r, f);
            c = transform::coeff_len(c, f);
            if self.keep_levels.contains(&level) {
                bands.extend([r * c; 3]);
            }
        }
        if self.keep_approx {
            bands.push(r * c);
        }
        match self.kind {
            FeatureKind::Coefficients => bands.iter().sum(),
            FeatureKind::SubbandStats => bands.len() * STATS_PER_BAND,
        }
    }

    /// Writes the features of same-sized `images` into `out`, one row of
    /// [`FeatureSpec::feature_count`] values per image, without allocating per image.
    pub fn extract_into(&self, images: &[Array2], out: &mut [f64]) -> Result<(), WaveletError> {
        let Some(first) = images.first() else {
            return Ok(());
        };
        if let Some(other) = images
            .iter()
            .find(|i| (i.rows, i.cols) != (first.rows, first.cols))
        {
            return Err(WaveletError::MixedShapes {
                first: (first.rows, first.cols),
                other: (other.rows, other.cols),
            });
        }
        let width = self.feature_count(first.rows, first.cols);
        assert_eq!(
            out.len(),
            width * images.len(),
            "output holds one row per image"
        );
        let mut band_values = Vec::new();
        transform::for_each_group(
            images,
            &self.wavelet,
            self.level,
            &self.keep_levels,
            |group, start| {
                // Kept bands in PyWavelets order: approximation, then coarsest level first.
                let mut bands = Vec::new();
                if self.keep_approx {
                    bands.push(&group.approx);
                }
                for level in (1..=self.level).rev() {
                    if self.keep_levels.contains(&level) {
                        bands.extend(group.details[level - 1].iter());
                    }
                }
                for lane in 0..group.lanes {
                    let row = &mut out[(start + lane) * width..(start + lane + 1) * width];
                    let mut pos = 0;
                    for band in &bands {
                        match self.kind {
                            FeatureKind::Coefficients => {
                                for v in band.lane(lane) {
                                    row[pos] = v;
                                    pos += 1;
                                }
                            }
                            FeatureKind::SubbandStats => {
                                band_values.clear();
                                band_values.extend(band.lane(lane));
                                row[pos..pos + STATS_PER_BAND]
                                    .copy_from_slice(&subband_stats(&band_values));
                                pos += STATS_PER_BAND;
                            }
                        }
                    }
                }
            },
        )
    }
}

/// RMS, mean |c|, max |c|, 95th percentile of |c| (linear interpolation, NumPy's default) and
/// excess kurtosis (population moments; 0 for a constant band).
pub fn subband_stats(c: &[f64]) -> [f64; STATS_PER_BAND] {
    let n = c.len() as f64;
    let mut abs: Vec<f64> = c.iter().map(|v| v.abs()).collect();
    let rms = (c.iter().map(|v| v * v).sum::<f64>() / n).sqrt();
    let mean_abs = abs.iter().sum::<f64>() / n;
    abs.sort_by(f64::total_cmp);
    let max_abs = *abs.last().unwrap_or(&0.0);
    let p95 = percentile_sorted(&abs, 95.0);
    let mean = c.iter().sum::<f64>() / n;
    let m2 = c.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let m4 = c.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / n;
    let kurtosis = if m2 > 0.0 { m4 / (m2 * m2) - 3.0 } else { 0.0 };
    [rms, mean_abs, max_abs, p95, kurtosis]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_a_symmetric_two_point_band() {
        let [rms, mean_abs, max_abs, p95, kurt] = subband_stats(&[-2.0, 2.0, -2.0, 2.0]);
        assert_eq!((rms, mean_abs, max_abs, p95), (2.0, 2.0, 2.0, 2.0));
        assert!((kurt - (-2.0)).abs() < 1e-12);
        assert_eq!(subband_stats(&[1.0, 1.0])[4], 0.0);
    }
}
