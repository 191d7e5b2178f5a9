//! Classical classifiers on wavelet features, fitted with smartcore.
//!
//! Every classifier yields a continuous score in [0, 1] for ROC AUC, with 0.5 at its own
//! decision boundary:
//! - random forest: the fraction of trees voting 1 (each tree a one-tree smartcore forest on
//!   its own bootstrap sample with √features tried per split; trees are fitted in parallel);
//! - SVM: the logistic function of the decision value (uncalibrated, but rank-exact);
//! - logistic regression: its probability;
//! - naive Bayes: the Gaussian posterior, computed from smartcore's fitted means, variances
//!   and priors (with scikit-learn's variance smoothing);
//! - k-NN: the (optionally distance-weighted) fraction of neighbours with label 1;
//! - decision tree: the class of the leaf (0 or 1), so its ROC has a single operating point.

use rayon::prelude::*;
use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};
use smartcore::naive_bayes::gaussian::{GaussianNB, GaussianNBParameters};
use smartcore::neighbors::knn_classifier::{KNNClassifier, KNNClassifierParameters};
use smartcore::neighbors::KNNWeightFunction;
use smartcore::svm::svc::{SVCParameters, SVC};
use smartcore::svm::Kernels;
use smartcore::tree::decision_tree_classifier::{
    DecisionTreeClassifier, DecisionTreeClassifierParameters, SplitCriterion,
};

use super::{ClassifierParams, KnnWeights, SvmKernel, TreeCriterion};
use crate::rng::Rng;
use crate::train::Matrix;

/// What smartcore reported when a fit or prediction failed.
#[derive(Debug, thiserror::Error)]
#[error("{classifier}: {message}")]
pub struct ClassicalError {
    pub classifier: &'static str,
    pub message: String,
}

fn dense(x: &Matrix) -> DenseMatrix<f64> {
    DenseMatrix::new(
        x.rows,
        x.cols,
        x.data.iter().map(|&v| v as f64).collect(),
        false,
    )
    .expect("matrix shape matches its data")
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// Fits the classifier on `x`/`y` (labels 0/1) and scores each matrix of `score_sets`.
pub fn fit_and_score(
    params: &ClassifierParams,
    seed: u64,
    x: &Matrix,
    y: &[u8],
    score_sets: &[&Matrix],
) -> Result<Vec<Vec<f64>>, ClassicalError> {
    let train = dense(x);
    let labels: Vec<i32> = y.iter().map(|&l| l as i32).collect();
    // Only the classifiers that predict through smartcore need the score sets converted.
    let dense_sets = || -> Vec<DenseMatrix<f64>> { score_sets.iter().map(|m| dense(m)).collect() };
    let err = |classifier: &'static str| {
        move |e: smartcore::error::Failed| ClassicalError {
            classifier,
            message: e.to_string(),
        }
    };
    match params {
        ClassifierParams::RandomForest(p) => {
            let mtry = p
                .max_features
                .unwrap_or(((x.cols as f64).sqrt().floor() as usize).max(1));
            let mut rng = Rng::derived(seed, "random-forest");
            let seeds: Vec<u64> = (0..p.n_trees).map(|_| rng.next_u64()).collect();
            let trees = seeds
                .par_iter()
                .map(|&tree_seed| {
                    let mut tp = RandomForestClassifierParameters::default()
                        .with_n_trees(1)
                        .with_m(mtry.min(x.cols))
                        .with_min_samples_leaf(p.min_samples_leaf)
                        .with_min_samples_split(p.min_samples_split)
                        .with_seed(tree_seed);
                    if let Some(depth) = p.max_depth {
                        tp = tp.with_max_depth(depth);
                    }
                    RandomForestClassifier::fit(&train, &labels, tp)
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(err("random-forest"))?;
            dense_sets()
                .iter()
                .map(|set| {
                    let mut votes = vec![0.0; set.shape().0];
                    for tree in &trees {
                        let predicted: Vec<i32> =
                            tree.predict(set).map_err(err("random-forest"))?;
                        for (v, p) in votes.iter_mut().zip(predicted) {
                            *v += p as f64;
                        }
                    }
                    Ok(votes.iter().map(|v| v / trees.len() as f64).collect())
                })
                .collect()
        }
        ClassifierParams::Svm(p) => {
            // smartcore's SVC keeps only the first n_samples features of each vector
            // (`take(n)` in its optimiser), so with more features than training images it
            // trains on a truncated problem and panics when predicting. Re-express the data
            // exactly in fewer dimensions: after subtracting the training mean, coordinates in an
            // orthonormal basis of the training rows' span (at most n - 1 vectors), plus the
            // length of the part outside it (zero for training rows). Distances to every
            // training row are unchanged (RBF kernel), and so are inner products up to the
            // shift, which the SVM dual cancels (Σ αᵢyᵢ = 0): the fitted decision function is
            // the same as on the original features.
            let gamma = p.gamma.unwrap_or_else(|| scale_gamma(x));
            let (train, sets) = if x.cols + 1 >= x.rows {
                let basis = SpanBasis::of_rows(x);
                let projected: Vec<DenseMatrix<f64>> = score_sets
                    .iter()
                    .map(|m| dense(&basis.project(m)))
                    .collect();
                (dense(&basis.project(x)), projected)
            } else {
                (train, dense_sets())
            };
            let kernel = match p.kernel {
                SvmKernel::Linear => Kernels::linear(),
                SvmKernel::Rbf => Kernels::rbf().with_gamma(gamma),
            };
            let sp = SVCParameters::default()
                .with_c(p.c)
                .with_tol(p.tol)
                .with_epoch(p.epochs)
                .with_kernel(kernel);
            let model = SVC::fit(&train, &labels, &sp).map_err(err("svm"))?;
            sets.iter()
                .map(|set| {
                    let decision = model.decision_function(set).map_err(err("svm"))?;
                    Ok(decision.into_iter().map(sigmoid).collect())
                })
                .collect()
        }
        ClassifierParams::Logistic(p) => {
            let lp = LogisticRegressionParameters::default().with_alpha(p.alpha);
            let model = LogisticRegression::fit(&train, &labels, lp).map_err(err("logistic"))?;
            let coefficients: Vec<f64> = model.coefficients().iterator(0).copied().collect();
            let intercept: f64 = *model.intercept().iterator(0).next().unwrap_or(&0.0);
            let positive_is_second = model.classes().last() == Some(&1);
            Ok(score_sets
                .iter()
                .map(|m| {
                    (0..m.rows)
                        .map(|r| {
                            let z: f64 = m
                                .row(r)
                                .iter()
                                .zip(&coefficients)
                                .map(|(a, w)| *a as f64 * w)
                                .sum::<f64>()
                                + intercept;
                            let p1 = sigmoid(z);
                            if positive_is_second {
                                p1
                            } else {
                                1.0 - p1
                            }
                        })
                        .collect()
                })
                .collect())
        }
        ClassifierParams::NaiveBayes(p) => {
            let unsigned: Vec<u32> = y.iter().map(|&l| l as u32).collect();
            let model = GaussianNB::fit(&train, &unsigned, GaussianNBParameters::default())
                .map_err(err("naive-bayes"))?;
            let max_var = model.var().iter().flatten().fold(0.0f64, |a, &b| a.max(b));
            let epsilon = p.var_smoothing * max_var;
            let classes = model.classes().clone();
            Ok(score_sets
                .iter()
                .map(|m| {
                    (0..m.rows)
                        .map(|r| {
                            let log_joint: Vec<f64> = (0..classes.len())
                                .map(|c| {
                                    let mut lj = model.class_priors()[c].ln();
                                    for ((v, mean), var) in
                                        m.row(r).iter().zip(&model.theta()[c]).zip(&model.var()[c])
                                    {
                                        let var = var + epsilon;
                                        lj -= 0.5 * (2.0 * std::f64::consts::PI * var).ln()
                                            + (*v as f64 - mean).powi(2) / (2.0 * var);
                                    }
                                    lj
                                })
                                .collect();
                            let positive = classes.iter().position(|&c| c == 1).unwrap_or(0);
                            let max = log_joint.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                            let total: f64 = log_joint.iter().map(|l| (l - max).exp()).sum();
                            (log_joint[positive] - max).exp() / total
                        })
                        .collect()
                })
                .collect())
        }
        ClassifierParams::Knn(p) => {
            let weight = match p.weights {
                KnnWeights::Uniform => KNNWeightFunction::Uniform,
                KnnWeights::Distance => KNNWeightFunction::Distance,
            };
            let kp = KNNClassifierParameters::default()
                .with_k(p.k.min(x.rows))
                .with_weight(weight);
            let model = KNNClassifier::fit(&train, &labels, kp).map_err(err("knn"))?;
            dense_sets()
                .iter()
                .map(|set| {
                    let proba = model.predict_proba(set).map_err(err("knn"))?;
                    Ok(proba
                        .iter()
                        .map(|row| row.last().copied().unwrap_or(0.0))
                        .collect())
                })
                .collect()
        }
        ClassifierParams::DecisionTree(p) => {
            let criterion = match p.criterion {
                TreeCriterion::Gini => SplitCriterion::Gini,
                TreeCriterion::Entropy => SplitCriterion::Entropy,
            };
            let mut tp = DecisionTreeClassifierParameters::default()
                .with_criterion(criterion)
                .with_min_samples_leaf(p.min_samples_leaf)
                .with_min_samples_split(p.min_samples_split);
            tp.seed = Some(seed);
            if let Some(depth) = p.max_depth {
                tp = tp.with_max_depth(depth);
            }
            let model =
                DecisionTreeClassifier::fit(&train, &labels, tp).map_err(err("decision-tree"))?;
            dense_sets()
                .iter()
                .map(|set| {
                    let predicted: Vec<i32> = model.predict(set).map_err(err("decision-tree"))?;
                    Ok(predicted.into_iter().map(|p| p as f64).collect())
                })
                .collect()
        }
    }
}

/// [`fit_and_score`], with a panic inside smartcore turned into an error, so that one bad
/// fit fails its job instead of the whole sweep.
pub fn fit_and_score_guarded(
    params: &ClassifierParams,
    seed: u64,
    x: &Matrix,
    y: &[u8],
    score_sets: &[&Matrix],
) -> Result<Vec<Vec<f64>>, ClassicalError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fit_and_score(params, seed, x, y, score_sets)
    }))
    .unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "smartcore panicked".to_string());
        Err(ClassicalError {
            classifier: params.kind().name(),
            message: format!("smartcore panicked: {message}"),
        })
    })
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

/// An orthonormal basis of the span of a matrix's rows (modified Gram-Schmidt, applied
/// twice for numerical orthogonality; rows already in the span of earlier ones are skipped).
struct SpanBasis {
    /// Mean of the training rows, subtracted before projecting.
    mean: Vec<f64>,
    /// Basis vectors, each of the original width.
    vectors: Vec<Vec<f64>>,
}

impl SpanBasis {
    fn of_rows(x: &Matrix) -> Self {
        let mut mean = vec![0.0; x.cols];
        for r in 0..x.rows {
            for (m, &a) in mean.iter_mut().zip(x.row(r)) {
                *m += a as f64 / x.rows as f64;
            }
        }
        let mut vectors: Vec<Vec<f64>> = Vec::new();
        for r in 0..x.rows {
            let mut v: Vec<f64> = x
                .row(r)
                .iter()
                .zip(&mean)
                .map(|(&a, m)| a as f64 - m)
                .collect();
            let norm0 = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            for _ in 0..2 {
                for b in &vectors {
                    let dot: f64 = v.iter().zip(b).map(|(a, c)| a * c).sum();
                    v.iter_mut().zip(b).for_each(|(a, c)| *a -= dot * c);
                }
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm > 1e-7 * norm0 {
                v.iter_mut().for_each(|a| *a /= norm);
                vectors.push(v);
            }
        }
        Self { mean, vectors }
    }

    /// Coordinates in the basis, then the norm of the remainder.
    fn project(&self, x: &Matrix) -> Matrix {
        let cols = self.vectors.len() + 1;
        let mut data = Vec::with_capacity(x.rows * cols);
        for r in 0..x.rows {
            let row: Vec<f64> = x
                .row(r)
                .iter()
                .zip(&self.mean)
                .map(|(&a, m)| a as f64 - m)
                .collect();
            let total: f64 = row.iter().map(|a| a * a).sum();
            let mut inside = 0.0;
            for b in &self.vectors {
                let c: f64 = row.iter().zip(b).map(|(a, v)| a * v).sum();
                inside += c * c;
                data.push(c as f32);
            }
            data.push((total - inside).max(0.0).sqrt() as f32);
        }
        Matrix {
            rows: x.rows,
            cols,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_matrix(rows: usize, cols: usize, seed: u64) -> Matrix {
        let mut rng = Rng::new(seed);
        Matrix {
            rows,
            cols,
            data: (0..rows * cols).map(|_| rng.normal() as f32).collect(),
        }
    }

    #[test]
    fn span_projection_keeps_distances_to_training_rows() {
        let train = random_matrix(6, 20, 1);
        let test = random_matrix(3, 20, 2);
        let basis = SpanBasis::of_rows(&train);
        assert_eq!(basis.vectors.len(), 5, "centred rows span n - 1 dimensions");
        let (pt, pq) = (basis.project(&train), basis.project(&test));
        assert_eq!(
            pt.cols, 6,
            "n - 1 coordinates + the outside length: no more than n"
        );
        let dist = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| ((x - y) as f64).powi(2))
                .sum::<f64>()
        };
        for i in 0..3 {
            for j in 0..6 {
                let before = dist(test.row(i), train.row(j));
                let after = dist(pq.row(i), pt.row(j));
                assert!(
                    (before - after).abs() < 1e-3 * before,
                    "{before} vs {after}"
                );
            }
        }
    }

    /// Two shifted Gaussian clouds; every classifier must rank them well.
    #[test]
    fn every_classifier_scores_a_separable_problem() {
        use crate::metrics::roc_auc;
        use crate::models::{ClassifierKind, ClassifierParams};
        let make = |n: usize, seed: u64| {
            let mut m = random_matrix(n, 30, seed);
            let labels: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
            for (r, &l) in labels.iter().enumerate() {
                for c in 0..30 {
                    m.data[r * 30 + c] += l as f32 * 1.2;
                }
            }
            (m, labels)
        };
        let (x, y) = make(24, 3);
        let (t, ty) = make(40, 4);
        for &kind in ClassifierKind::ALL {
            let params = ClassifierParams::parse(kind, &toml::Table::new()).unwrap();
            let scores = fit_and_score(&params, 0, &x, &y, &[&t])
                .unwrap()
                .pop()
                .unwrap();
            assert_eq!(scores.len(), 40);
            assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)), "{kind:?}");
            let auc = roc_auc(&ty, &scores);
            // One tree on 24 images splits on a single noisy feature: a weaker bar.
            let bar = if kind == ClassifierKind::DecisionTree {
                0.65
            } else {
                0.8
            };
            assert!(auc > bar, "{kind:?}: AUC {auc}");
        }
    }
}
