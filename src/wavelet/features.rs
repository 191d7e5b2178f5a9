//! Turning a decomposition into a feature vector for a classifier.

use serde::{Deserialize, Serialize};

use super::{transform, Array2, Wavelet, WaveletError};

/// How kept sub-bands become features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
        let dec = transform::wavedec2_selective(image, &self.wavelet, self.level, &self.keep_levels)?;
        let mut bands: Vec<&Array2> = Vec::new();
        if self.keep_approx {
            bands.push(&dec.approx);
        }
        for (level, detail) in &dec.details {
            if self.keep_levels.contains(level) {
                bands.extend(detail.named().map(|(_, a)| a));
            }
        }
        Ok(match self.kind {
            FeatureKind::Coefficients => bands.iter().flat_map(|a| a.data.iter().copied()).collect(),
            FeatureKind::SubbandStats => bands.iter().flat_map(|a| subband_stats(&a.data)).collect(),
        })
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

/// NumPy's default (`linear`) percentile of sorted data.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4, 10], 95) == 8.8
        assert!((percentile_sorted(&[1.0, 2.0, 3.0, 4.0, 10.0], 95.0) - 8.8).abs() < 1e-12);
        assert_eq!(percentile_sorted(&[5.0], 95.0), 5.0);
    }

    #[test]
    fn stats_of_a_symmetric_two_point_band() {
        let [rms, mean_abs, max_abs, p95, kurt] = subband_stats(&[-2.0, 2.0, -2.0, 2.0]);
        assert_eq!((rms, mean_abs, max_abs, p95), (2.0, 2.0, 2.0, 2.0));
        assert!((kurt - (-2.0)).abs() < 1e-12);
        assert_eq!(subband_stats(&[1.0, 1.0])[4], 0.0);
    }
}
