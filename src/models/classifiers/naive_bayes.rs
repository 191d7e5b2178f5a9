//! Gaussian naive Bayes, as scikit-learn's `GaussianNB`: per class, each feature's mean and
//! variance in one pass, every variance smoothed by `var_smoothing` × the largest feature
//! variance of the whole matrix. Our own code because it is one pass over the data (linfa-bayes
//! 0.8 takes as long as scikit-learn and brings ndarray with it).

use serde::{Deserialize, Serialize};

use super::{sigmoid, Classifier, ParamError, Scorer};
use crate::train::Matrix;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NaiveBayes {
    /// Added to every variance, as a fraction of the largest one (scikit-learn's var_smoothing).
    #[serde(default = "default_smoothing")]
    pub var_smoothing: f64,
}

fn default_smoothing() -> f64 {
    1e-9
}

/// Per class (0, then 1): log prior, feature means and smoothed variances.
#[derive(Debug, Serialize, Deserialize)]
pub struct FittedNaiveBayes {
    log_prior: [f64; 2],
    mean: [Vec<f64>; 2],
    var: [Vec<f64>; 2],
}

/// Mean and population variance of each column over `rows` of `x`.
fn moments(x: &Matrix, rows: impl Iterator<Item = usize> + Clone) -> (Vec<f64>, Vec<f64>) {
    let n = rows.clone().count().max(1) as f64;
    let mut mean = vec![0.0; x.cols];
    for r in rows.clone() {
        mean.iter_mut()
            .zip(x.row(r))
            .for_each(|(m, &v)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0; x.cols];
    for r in rows {
        var.iter_mut()
            .zip(x.row(r))
            .zip(&mean)
            .for_each(|((s, &v), m)| *s += (v as f64 - m).powi(2));
    }
    var.iter_mut().for_each(|s| *s /= n);
    (mean, var)
}

impl Classifier for NaiveBayes {
    type Fitted = FittedNaiveBayes;

    fn check(&self) -> Result<(), ParamError> {
        ParamError::non_negative("var_smoothing", self.var_smoothing)
    }

    fn fit(&self, x: &Matrix, y: &[u8], _seed: u64) -> FittedNaiveBayes {
        let (_, all_var) = moments(x, 0..x.rows);
        let epsilon = self.var_smoothing * all_var.iter().cloned().fold(0.0, f64::max);
        let class = |label: u8| {
            let rows = (0..x.rows).filter(move |&r| y[r] == label);
            let count = rows.clone().count();
            let (mean, mut var) = moments(x, rows);
            var.iter_mut().for_each(|v| *v += epsilon);
            ((count as f64 / x.rows as f64).ln(), mean, var)
        };
        let ((p0, m0, v0), (p1, m1, v1)) = (class(0), class(1));
        FittedNaiveBayes {
            log_prior: [p0, p1],
            mean: [m0, m1],
            var: [v0, v1],
        }
    }
}

impl FittedNaiveBayes {
    fn log_joint(&self, class: usize, row: &[f32]) -> f64 {
        let mut lj = self.log_prior[class];
        for ((&v, m), var) in row.iter().zip(&self.mean[class]).zip(&self.var[class]) {
            lj -= 0.5 * (2.0 * std::f64::consts::PI * var).ln()
                + (v as f64 - m).powi(2) / (2.0 * var);
        }
        lj
    }
}

impl Scorer for FittedNaiveBayes {
    fn score(&self, x: &Matrix) -> Vec<f64> {
        (0..x.rows)
            .map(|r| {
                let row = x.row(r);
                sigmoid(self.log_joint(1, row) - self.log_joint(0, row))
            })
            .collect()
    }
}
