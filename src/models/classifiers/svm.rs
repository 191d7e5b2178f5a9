//! Support vector machine (C-SVC) solved by SMO with the second-order working-set selection
//! of libsvm (Fan, Chen & Lin 2005), which scikit-learn's `SVC` wraps; stops when the KKT gap
//! is below `tol`. The score is the logistic function of the decision value (uncalibrated,
//! but rank-exact).
//!
//! Our own code because smartcore 0.7's SVC is ~100× slower than scikit-learn here (and keeps
//! only the first n_samples features of each vector) and linfa-svm 0.8 ~8×. The kernel matrix
//! of the training rows is computed once, as one matrix product (the engine's, `gram`), which
//! bounds the training set by memory: n² × 4 bytes (the memory estimate counts it).

use serde::{Deserialize, Serialize};

use super::{gram, sigmoid, Classifier, ParamError, Scorer};
use crate::train::Matrix;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SvmKernel {
    Rbf,
    Linear,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Svm {
    /// Kernel of the support vector machine.
    #[serde(default = "default_kernel")]
    pub kernel: SvmKernel,
    /// Regularisation C.
    #[serde(default = "unit")]
    pub c: f64,
    /// RBF width; default 1 / (features × variance of the training matrix), scikit-learn's "scale".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
    /// Stop when the KKT gap (libsvm's ε) is below this.
    #[serde(default = "default_tol")]
    pub tol: f64,
}

fn default_kernel() -> SvmKernel {
    SvmKernel::Rbf
}
fn unit() -> f64 {
    1.0
}
fn default_tol() -> f64 {
    1e-3
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FittedSvm {
    kernel: SvmKernel,
    gamma: f64,
    cols: usize,
    /// Support vectors, row after row.
    support: Vec<f32>,
    /// αᵢyᵢ of each support vector.
    coef: Vec<f64>,
    /// The decision value is Σ coefᵢ K(svᵢ, x) − rho.
    rho: f64,
}

impl Classifier for Svm {
    type Fitted = FittedSvm;

    fn check(&self) -> Result<(), ParamError> {
        ParamError::positive("c", self.c)?;
        ParamError::positive("tol", self.tol)?;
        if let Some(g) = self.gamma {
            ParamError::positive("gamma", g)?;
        }
        Ok(())
    }

    fn fit(&self, x: &Matrix, y: &[u8], _seed: u64) -> FittedSvm {
        let gamma = self.gamma.unwrap_or_else(|| scale_gamma(x));
        let kernel = kernel_matrix(self.kernel, gamma, x, x);
        let signs: Vec<f64> = y.iter().map(|&l| if l == 1 { 1.0 } else { -1.0 }).collect();
        let (alpha, rho) = smo(&kernel, &signs, self.c, self.tol);
        let mut support = Vec::new();
        let mut coef = Vec::new();
        for (i, &a) in alpha.iter().enumerate() {
            if a > 0.0 {
                support.extend_from_slice(x.row(i));
                coef.push(a * signs[i]);
            }
        }
        FittedSvm {
            kernel: self.kernel,
            gamma,
            cols: x.cols,
            support,
            coef,
            rho,
        }
    }
}

impl Scorer for FittedSvm {
    fn score(&self, x: &Matrix) -> Vec<f64> {
        let support = Matrix {
            rows: self.coef.len(),
            cols: self.cols,
            data: self.support.clone(),
        };
        let k = kernel_matrix(self.kernel, self.gamma, x, &support);
        k.chunks(self.coef.len().max(1))
            .take(x.rows)
            .map(|row| {
                let decision: f64 = row.iter().zip(&self.coef).map(|(&k, c)| k as f64 * c).sum();
                sigmoid(decision - self.rho)
            })
            .chain(std::iter::repeat(sigmoid(-self.rho)))
            .take(x.rows)
            .collect()
    }
}

/// scikit-learn's `gamma="scale"`: 1 / (number of features × variance of all training values).
fn scale_gamma(x: &Matrix) -> f64 {
    let n = x.data.len().max(1) as f64;
    let mean = x.data.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x
        .data
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    1.0 / (x.cols as f64 * if var > 0.0 { var } else { 1.0 })
}

/// K(aᵢ, bⱼ) for every pair, row-major (a.rows × b.rows).
fn kernel_matrix(kernel: SvmKernel, gamma: f64, a: &Matrix, b: &Matrix) -> Vec<f32> {
    let mut k = gram(a, b);
    if kernel == SvmKernel::Rbf {
        let norms = |m: &Matrix| -> Vec<f64> {
            (0..m.rows)
                .map(|r| m.row(r).iter().map(|&v| (v as f64).powi(2)).sum())
                .collect()
        };
        let (na, nb) = (norms(a), norms(b));
        for (i, row) in k.chunks_mut(b.rows.max(1)).enumerate().take(a.rows) {
            for (j, v) in row.iter_mut().enumerate() {
                let d2 = (na[i] + nb[j] - 2.0 * *v as f64).max(0.0);
                *v = (-gamma * d2).exp() as f32;
            }
        }
    }
    k
}

/// SMO on the dual min ½αᵀQα − Σα, 0 ≤ α ≤ c, yᵀα = 0 (Q = yyᵀ ∘ K), with libsvm's
/// second-order working-set selection (WSS 3). Returns α and rho.
fn smo(kernel: &[f32], y: &[f64], c: f64, tol: f64) -> (Vec<f64>, f64) {
    const TAU: f64 = 1e-12;
    let n = y.len();
    let k = |i: usize, j: usize| kernel[i * n + j] as f64;
    let mut alpha = vec![0.0; n];
    let mut grad = vec![-1.0; n];
    let up = |a: f64, y: f64| (y > 0.0 && a < c) || (y < 0.0 && a > 0.0);
    let low = |a: f64, y: f64| (y > 0.0 && a > 0.0) || (y < 0.0 && a < c);
    let max_iter = (100 * n).max(10_000_000);
    for _ in 0..max_iter {
        // i: the most violating index of I_up.
        let (mut g_max, mut i) = (f64::NEG_INFINITY, usize::MAX);
        for t in 0..n {
            if up(alpha[t], y[t]) && -y[t] * grad[t] >= g_max {
                g_max = -y[t] * grad[t];
                i = t;
            }
        }
        // j: the best second-order gain among I_low.
        let (mut g_min, mut j, mut best) = (f64::INFINITY, usize::MAX, f64::INFINITY);
        for t in 0..n {
            if !low(alpha[t], y[t]) {
                continue;
            }
            let v = -y[t] * grad[t];
            g_min = g_min.min(v);
            if i != usize::MAX && v < g_max {
                let b = g_max - v;
                let a = k(i, i) + k(t, t) - 2.0 * k(i, t);
                let gain = -(b * b) / if a > 0.0 { a } else { TAU };
                if gain <= best {
                    best = gain;
                    j = t;
                }
            }
        }
        if i == usize::MAX || j == usize::MAX || g_max - g_min < tol {
            break;
        }
        let (old_i, old_j) = (alpha[i], alpha[j]);
        let quad = (k(i, i) + k(j, j) - 2.0 * k(i, j)).max(TAU);
        if y[i] != y[j] {
            let delta = (-grad[i] - grad[j]) / quad;
            let diff = alpha[i] - alpha[j];
            alpha[i] += delta;
            alpha[j] += delta;
            if diff > 0.0 && alpha[j] < 0.0 {
                alpha[j] = 0.0;
                alpha[i] = diff;
            } else if diff <= 0.0 && alpha[i] < 0.0 {
                alpha[i] = 0.0;
                alpha[j] = -diff;
            }
            if diff > 0.0 && alpha[i] > c {
                alpha[i] = c;
                alpha[j] = c - diff;
            } else if diff <= 0.0 && alpha[j] > c {
                alpha[j] = c;
                alpha[i] = c + diff;
            }
        } else {
            let delta = (grad[i] - grad[j]) / quad;
            let sum = alpha[i] + alpha[j];
            alpha[i] -= delta;
            alpha[j] += delta;
            if sum > c && alpha[i] > c {
                alpha[i] = c;
                alpha[j] = sum - c;
            } else if sum <= c && alpha[j] < 0.0 {
                alpha[j] = 0.0;
                alpha[i] = sum;
            }
            if sum > c && alpha[j] > c {
                alpha[j] = c;
                alpha[i] = sum - c;
            } else if sum <= c && alpha[i] < 0.0 {
                alpha[i] = 0.0;
                alpha[j] = sum;
            }
        }
        let (di, dj) = (alpha[i] - old_i, alpha[j] - old_j);
        // K is symmetric: read rows i and j instead of columns.
        let (row_i, row_j) = (&kernel[i * n..(i + 1) * n], &kernel[j * n..(j + 1) * n]);
        let (si, sj) = (y[i] * di, y[j] * dj);
        for t in 0..n {
            grad[t] += y[t] * (si * row_i[t] as f64 + sj * row_j[t] as f64);
        }
    }
    (alpha.clone(), rho(&alpha, &grad, y, c))
}

/// libsvm's offset: the mean of yᵢ∇ᵢ over free α, else the middle of the feasible interval.
fn rho(alpha: &[f64], grad: &[f64], y: &[f64], c: f64) -> f64 {
    let (mut upper, mut lower) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut sum, mut free) = (0.0, 0usize);
    for t in 0..y.len() {
        let yg = y[t] * grad[t];
        if alpha[t] >= c {
            if y[t] < 0.0 {
                upper = upper.min(yg)
            } else {
                lower = lower.max(yg)
            }
        } else if alpha[t] <= 0.0 {
            if y[t] > 0.0 {
                upper = upper.min(yg)
            } else {
                lower = lower.max(yg)
            }
        } else {
            free += 1;
            sum += yg;
        }
    }
    if free > 0 {
        sum / free as f64
    } else {
        (upper + lower) / 2.0
    }
}
