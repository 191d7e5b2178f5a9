//! What a learner sees: the features of each image (pixels, wavelet coefficients or
//! sub-band statistics, intensity statistics), and standardisation fitted on training rows.
//! Features are computed from one image at a time, so computing them for every sample before
//! splitting leaks nothing.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::baseline::intensity_features;
use crate::data::Dataset;
use crate::train::Matrix;
use crate::wavelet::WaveletConfig;
use crate::wavelet::{Array2, FeatureSpec, Wavelet, WaveletError, LANES};

impl TryFrom<&WaveletConfig> for FeatureSpec {
    type Error = WaveletError;

    fn try_from(c: &WaveletConfig) -> Result<Self, WaveletError> {
        Ok(FeatureSpec {
            wavelet: Wavelet::from_name(&c.family)?,
            level: c.level,
            keep_levels: c.keep_levels.clone().unwrap_or_default(),
            keep_approx: c.keep_approx,
            kind: c.features,
        })
    }
}

/// A model's features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "features", rename_all = "kebab-case")]
pub enum Features {
    /// Pixels scaled to 0..1 (the reference's `rescale=1/255`), for the CNN; not standardised.
    Pixels,
    /// Wavelet coefficients or sub-band statistics (`[model.wavelet]`).
    Wavelet(WaveletConfig),
    /// Mean, s.d. and percentiles of the raw intensities (the baseline).
    Intensity,
}

impl Features {
    /// One row per sample, in dataset order.
    pub fn extract(&self, data: &Dataset) -> Result<Matrix, WaveletError> {
        match self {
            Features::Pixels => Ok(pixel_matrix(data)),
            Features::Wavelet(config) => wavelet_features(data, config),
            Features::Intensity => Ok(intensity_features(data)),
        }
    }

    /// Whether learners see these features z-scored with the training rows' statistics.
    pub fn standardised(&self) -> bool {
        !matches!(self, Features::Pixels)
    }
}

/// Images as network input: one row of size² values per sample, scaled to 0..1.
fn pixel_matrix(data: &Dataset) -> Matrix {
    let cols = data.samples.first().map_or(0, |s| s.pixels.len());
    Matrix {
        rows: data.samples.len(),
        cols,
        data: data
            .samples
            .iter()
            .flat_map(|s| s.pixels.iter().map(|v| v / 255.0))
            .collect(),
    }
}

/// Wavelet features of every sample (one row per sample, in dataset order), computed in
/// parallel. Features depend on one image only, so computing them for all samples before
/// splitting leaks nothing.
pub fn wavelet_features(data: &Dataset, config: &WaveletConfig) -> Result<Matrix, WaveletError> {
    let spec = FeatureSpec::try_from(config)?;
    let Some(first) = data.samples.first() else {
        return Ok(Matrix {
            rows: 0,
            cols: 0,
            data: Vec::new(),
        });
    };
    let cols = spec.feature_count(first.rows, first.cols);
    let chunk = 8 * LANES;
    let mut out = vec![0.0f64; data.samples.len() * cols];
    out.par_chunks_mut(chunk * cols)
        .zip(data.samples.par_chunks(chunk))
        .try_for_each(|(dst, group)| {
            let images: Vec<Array2> = group
                .iter()
                .map(|s| Array2::new(s.rows, s.cols, s.pixels.iter().map(|&v| v as f64).collect()))
                .collect();
            spec.extract_into(&images, dst)
        })?;
    Ok(Matrix {
        rows: data.samples.len(),
        cols,
        data: out.into_iter().map(|v| v as f32).collect(),
    })
}

/// Per-column z-scoring with statistics of the rows it was fitted on (the training part).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl Standardizer {
    /// Mean and population s.d. per column; constant columns get scale 1.
    pub fn fit(x: &Matrix) -> Self {
        let n = x.rows.max(1) as f64;
        let mut mean = vec![0.0; x.cols];
        for r in 0..x.rows {
            for (m, v) in mean.iter_mut().zip(x.row(r)) {
                *m += *v as f64 / n;
            }
        }
        let mut var = vec![0.0; x.cols];
        for r in 0..x.rows {
            for ((s, v), m) in var.iter_mut().zip(x.row(r)).zip(&mean) {
                *s += (*v as f64 - m).powi(2) / n;
            }
        }
        let scale = var
            .into_iter()
            .map(|v| if v > 1e-24 { v.sqrt() } else { 1.0 })
            .collect();
        Self { mean, scale }
    }

    /// Number of columns it was fitted on.
    pub fn width(&self) -> usize {
        self.mean.len()
    }

    pub fn apply(&self, x: &Matrix) -> Matrix {
        let mut out = x.clone();
        for row in out.data.chunks_mut(x.cols.max(1)) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = ((*v as f64 - m) / s) as f32;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardizer_uses_fit_rows_only() {
        let train = Matrix {
            rows: 2,
            cols: 2,
            data: vec![0.0, 5.0, 2.0, 5.0],
        };
        let s = Standardizer::fit(&train);
        let test = Matrix {
            rows: 1,
            cols: 2,
            data: vec![4.0, 7.0],
        };
        assert_eq!(s.apply(&train).data, vec![-1.0, 0.0, 1.0, 0.0]);
        assert_eq!(
            s.apply(&test).data,
            vec![3.0, 2.0],
            "constant column keeps scale 1"
        );
    }
}
