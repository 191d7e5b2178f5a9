//! Classical classifiers: each file holds one classifier's parameters (the `[model.params]`
//! table, checked against its own schema), its fit, and its fitted model, which scores new
//! rows and can be saved. The list at the bottom registers them: adding a classifier is a new
//! file and one line there.
//!
//! Every classifier yields a continuous score in [0, 1] for ROC AUC, with 0.5 at its own
//! decision boundary. All of them are our own code: on the reference's 636 × 2,430 matrix the
//! maintained crates we measured (smartcore 0.7, linfa 0.8) fit 3-100× slower than
//! scikit-learn for the forest, the SVM and logistic regression; each file says what it does
//! differently. The numbers are in docs/benchmarks.md.

mod decision_tree;
mod knn;
mod logistic;
mod naive_bayes;
mod random_forest;
mod svm;
mod tree;

pub use decision_tree::{DecisionTree, TreeCriterion};
pub use knn::{Knn, KnnWeights};
pub use logistic::Logistic;
pub use naive_bayes::NaiveBayes;
pub use random_forest::RandomForest;
pub use svm::{Svm, SvmKernel};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::train::Matrix;

/// A classifier's settings: what `[model.params]` holds for it.
pub trait Classifier: Clone + std::fmt::Debug + PartialEq + Serialize + DeserializeOwned {
    /// The fitted model.
    type Fitted: Scorer + Serialize + DeserializeOwned + std::fmt::Debug;
    /// Rejects impossible values, naming the key.
    fn check(&self) -> Result<(), ParamError>;
    /// Fits on `x` (one row per sample) and labels `y` (0/1, both present).
    fn fit(&self, x: &Matrix, y: &[u8], seed: u64) -> Self::Fitted;
}

/// A fitted model: a score in [0, 1] per row (the probability of label 1, or a monotone
/// stand-in for it).
pub trait Scorer {
    fn score(&self, x: &Matrix) -> Vec<f64>;
}

/// A `[model.params]` value out of range.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("`{key}` {expected}")]
pub struct ParamError {
    pub key: &'static str,
    pub expected: String,
}

impl ParamError {
    fn new(key: &'static str, expected: impl Into<String>) -> Self {
        Self {
            key,
            expected: expected.into(),
        }
    }

    /// `value` must be finite and > 0.
    fn positive(key: &'static str, value: f64) -> Result<(), Self> {
        if value.is_finite() && value > 0.0 {
            Ok(())
        } else {
            Err(Self::new(
                key,
                format!("must be a positive number, got {value}"),
            ))
        }
    }

    /// `value` must be finite and >= 0.
    fn non_negative(key: &'static str, value: f64) -> Result<(), Self> {
        if value.is_finite() && value >= 0.0 {
            Ok(())
        } else {
            Err(Self::new(key, format!("must be >= 0, got {value}")))
        }
    }

    /// `value` must be at least `min`.
    fn at_least(key: &'static str, value: usize, min: usize) -> Result<(), Self> {
        if value >= min {
            Ok(())
        } else {
            Err(Self::new(
                key,
                format!("must be at least {min}, got {value}"),
            ))
        }
    }
}

/// Why `[model.params]` does not describe the chosen classifier.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum ParamsError {
    /// An unknown key or a wrong type (serde's message lists the valid keys).
    #[error("{0}")]
    Schema(String),
    #[error(transparent)]
    Value(#[from] ParamError),
}

/// Why a fit could not start.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum ClassicalError {
    #[error("{classifier}: the training part has no rows")]
    NoRows { classifier: &'static str },
    #[error("{classifier}: the training part has only label {label}; it needs both 0 and 1")]
    OneClass { classifier: &'static str, label: u8 },
}

fn typed<T: DeserializeOwned>(table: &toml::Table) -> Result<T, ParamsError> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| ParamsError::Schema(e.message().trim_end().to_string()))
}

/// Declares the registered classifiers: the kind named in the file, its parameters, and its
/// fitted model, with the dispatch between them.
macro_rules! classifiers {
    ($($variant:ident($params:ty) = $name:literal),* $(,)?) => {
        /// Which classifier (`model.classifier`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        pub enum ClassifierKind {
            $(#[serde(rename = $name)] $variant,)*
        }

        impl ClassifierKind {
            pub const ALL: &'static [ClassifierKind] = &[$(ClassifierKind::$variant,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(ClassifierKind::$variant => $name,)*
                }
            }

            /// The JSON schema of this classifier's `[model.params]` (for the key reference).
            pub fn params_schema(self) -> serde_json::Value {
                match self {
                    $(ClassifierKind::$variant => schemars::schema_for!($params).to_value(),)*
                }
            }
        }

        /// The parameters of one classifier, checked against its own schema.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ClassifierParams {
            $($variant($params),)*
        }

        impl ClassifierParams {
            pub fn kind(&self) -> ClassifierKind {
                match self {
                    $(ClassifierParams::$variant(_) => ClassifierKind::$variant,)*
                }
            }

            /// Parses `[model.params]` for `kind`: defaults filled, unknown keys and
            /// impossible values rejected (the error lists the keys the classifier takes).
            pub fn parse(kind: ClassifierKind, table: &toml::Table) -> Result<Self, ParamsError> {
                let params = match kind {
                    $(ClassifierKind::$variant => {
                        let p: $params = typed(table)?;
                        p.check()?;
                        ClassifierParams::$variant(p)
                    })*
                };
                Ok(params)
            }

            /// Every parameter, defaults included, as a table (what the resolved config
            /// records).
            pub fn to_table(&self) -> toml::Table {
                let table = match self {
                    $(ClassifierParams::$variant(p) => toml::Table::try_from(p),)*
                };
                table.expect("parameter structs serialise to tables")
            }

            /// Fits on `x`/`y` (labels 0/1); both labels must be present.
            pub fn fit(&self, x: &Matrix, y: &[u8], seed: u64) -> Result<FittedClassifier, ClassicalError> {
                let classifier = self.kind().name();
                if x.rows == 0 {
                    return Err(ClassicalError::NoRows { classifier });
                }
                if let Some(label) = [0, 1].into_iter().find(|l| !y.contains(l)) {
                    return Err(ClassicalError::OneClass { classifier, label: 1 - label });
                }
                Ok(match self {
                    $(ClassifierParams::$variant(p) => FittedClassifier::$variant(p.fit(x, y, seed)),)*
                })
            }
        }

        /// A fitted classifier of any registered kind, as saved with its job.
        #[derive(Debug, Serialize, Deserialize)]
        #[serde(tag = "classifier", content = "model")]
        pub enum FittedClassifier {
            $(#[serde(rename = $name)] $variant(<$params as Classifier>::Fitted),)*
        }

        impl Scorer for FittedClassifier {
            fn score(&self, x: &Matrix) -> Vec<f64> {
                match self {
                    $(FittedClassifier::$variant(m) => m.score(x),)*
                }
            }
        }
    };
}

classifiers! {
    RandomForest(RandomForest) = "random-forest",
    Svm(Svm) = "svm",
    Logistic(Logistic) = "logistic",
    NaiveBayes(NaiveBayes) = "naive-bayes",
    Knn(Knn) = "knn",
    DecisionTree(DecisionTree) = "decision-tree",
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// Dot product of two equal-length rows, accumulated in eight lanes so that it vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `a · bᵀ` for row-major `a` (m × k) and `b` (n × k): an m × n row-major matrix (the
/// engine's product, see `microcal_engine::gram`).
fn gram(a: &Matrix, b: &Matrix) -> Vec<f32> {
    assert_eq!(a.cols, b.cols, "rows of equal width");
    assert!(
        a.data.len() == a.rows * a.cols && b.data.len() == b.rows * b.cols,
        "matrix shapes match their data"
    );
    if a.cols == 0 {
        return vec![0.0; a.rows * b.rows];
    }
    crate::engine::gram(&a.data, &b.data, a.cols)
}

#[cfg(test)]
mod tests;
