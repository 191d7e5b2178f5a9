//! The floor a model must clear: logistic regression on simple intensity statistics of the
//! raw patch. On the real data the classes differ in brightness (mean 127 vs 79), so this
//! alone reaches a test AUC of about 0.86; a model that does not beat it has learnt little
//! beyond brightness.

use crate::data::Dataset;
use crate::stats::percentile_sorted;
use crate::train::Matrix;

/// Names of the baseline's features, in order.
pub const FEATURES: [&str; 9] = ["mean", "sd", "min", "p5", "p25", "p50", "p75", "p95", "max"];

/// Mean, standard deviation and percentiles (0, 5, 25, 50, 75, 95, 100) of each image.
pub fn intensity_features(data: &Dataset) -> Matrix {
    let mut out = Vec::with_capacity(data.samples.len() * FEATURES.len());
    for s in &data.samples {
        let values: Vec<f64> = s.pixels.iter().map(|&v| v as f64).collect();
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let mut sorted = values;
        sorted.sort_by(f64::total_cmp);
        out.push(mean as f32);
        out.push(sd as f32);
        for q in [0.0, 5.0, 25.0, 50.0, 75.0, 95.0, 100.0] {
            out.push(percentile_sorted(&sorted, q) as f32);
        }
    }
    Matrix {
        rows: data.samples.len(),
        cols: FEATURES.len(),
        data: out,
    }
}
