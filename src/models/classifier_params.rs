//! Classical classifiers of the wavelet family and their parameters, validated per
//! classifier (a `[model.params]` key that the chosen classifier does not take is an error).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassifierKind {
    RandomForest,
    Svm,
    Logistic,
    NaiveBayes,
    Knn,
    DecisionTree,
}

impl ClassifierKind {
    pub const ALL: &'static [ClassifierKind] = &[
        ClassifierKind::RandomForest,
        ClassifierKind::Svm,
        ClassifierKind::Logistic,
        ClassifierKind::NaiveBayes,
        ClassifierKind::Knn,
        ClassifierKind::DecisionTree,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ClassifierKind::RandomForest => "random-forest",
            ClassifierKind::Svm => "svm",
            ClassifierKind::Logistic => "logistic",
            ClassifierKind::NaiveBayes => "naive-bayes",
            ClassifierKind::Knn => "knn",
            ClassifierKind::DecisionTree => "decision-tree",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForestParams {
    #[serde(default = "default_trees")]
    pub n_trees: usize,
    /// Features tried at each split; default √(number of features), as scikit-learn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_features: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u16>,
    #[serde(default = "one")]
    pub min_samples_leaf: usize,
    #[serde(default = "two")]
    pub min_samples_split: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SvmKernel {
    Rbf,
    Linear,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SvmParams {
    #[serde(default = "default_kernel")]
    pub kernel: SvmKernel,
    /// Regularisation C.
    #[serde(default = "unit")]
    pub c: f64,
    /// RBF width; default 1 / (features × variance of the training matrix), scikit-learn's "scale".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
    #[serde(default = "default_tol")]
    pub tol: f64,
    /// Passes of the SMO optimiser over the data.
    #[serde(default = "two")]
    pub epochs: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogisticParams {
    /// L2 penalty (smartcore's alpha); 0 = none.
    #[serde(default = "unit")]
    pub alpha: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NaiveBayesParams {
    /// Added to every variance, as a fraction of the largest one (scikit-learn's var_smoothing).
    #[serde(default = "default_smoothing")]
    pub var_smoothing: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KnnWeights {
    Uniform,
    Distance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnnParams {
    #[serde(default = "five")]
    pub k: usize,
    #[serde(default = "default_weights")]
    pub weights: KnnWeights,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TreeCriterion {
    Gini,
    Entropy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeParams {
    #[serde(default = "default_criterion")]
    pub criterion: TreeCriterion,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u16>,
    #[serde(default = "one")]
    pub min_samples_leaf: usize,
    #[serde(default = "two")]
    pub min_samples_split: usize,
}

/// The parameters of one classifier, checked against its own schema.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassifierParams {
    RandomForest(ForestParams),
    Svm(SvmParams),
    Logistic(LogisticParams),
    NaiveBayes(NaiveBayesParams),
    Knn(KnnParams),
    DecisionTree(TreeParams),
}

impl ClassifierParams {
    pub fn kind(&self) -> ClassifierKind {
        match self {
            ClassifierParams::RandomForest(_) => ClassifierKind::RandomForest,
            ClassifierParams::Svm(_) => ClassifierKind::Svm,
            ClassifierParams::Logistic(_) => ClassifierKind::Logistic,
            ClassifierParams::NaiveBayes(_) => ClassifierKind::NaiveBayes,
            ClassifierParams::Knn(_) => ClassifierKind::Knn,
            ClassifierParams::DecisionTree(_) => ClassifierKind::DecisionTree,
        }
    }

    /// Parses `[model.params]` for `kind`; the error lists the keys that classifier takes.
    pub fn parse(kind: ClassifierKind, table: &toml::Table) -> Result<Self, String> {
        fn typed<T: serde::de::DeserializeOwned>(table: &toml::Table) -> Result<T, String> {
            toml::Value::Table(table.clone())
                .try_into()
                .map_err(|e: toml::de::Error| e.message().trim_end().to_string())
        }
        let params = match kind {
            ClassifierKind::RandomForest => ClassifierParams::RandomForest(typed(table)?),
            ClassifierKind::Svm => ClassifierParams::Svm(typed(table)?),
            ClassifierKind::Logistic => ClassifierParams::Logistic(typed(table)?),
            ClassifierKind::NaiveBayes => ClassifierParams::NaiveBayes(typed(table)?),
            ClassifierKind::Knn => ClassifierParams::Knn(typed(table)?),
            ClassifierKind::DecisionTree => ClassifierParams::DecisionTree(typed(table)?),
        };
        params.check()?;
        Ok(params)
    }

    /// Every parameter, defaults included, as a table (what the resolved config records).
    pub fn to_table(&self) -> toml::Table {
        let value = match self {
            ClassifierParams::RandomForest(p) => toml::Table::try_from(p),
            ClassifierParams::Svm(p) => toml::Table::try_from(p),
            ClassifierParams::Logistic(p) => toml::Table::try_from(p),
            ClassifierParams::NaiveBayes(p) => toml::Table::try_from(p),
            ClassifierParams::Knn(p) => toml::Table::try_from(p),
            ClassifierParams::DecisionTree(p) => toml::Table::try_from(p),
        };
        value.expect("parameter structs serialise to tables")
    }

    fn check(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("`{name}` must be a positive number, got {v}"))
            }
        };
        match self {
            ClassifierParams::RandomForest(p) => {
                if p.n_trees == 0
                    || p.max_features == Some(0)
                    || p.min_samples_leaf == 0
                    || p.min_samples_split < 2
                {
                    return Err("n_trees, max_features and min_samples_leaf must be at least 1, min_samples_split at least 2".into());
                }
            }
            ClassifierParams::Svm(p) => {
                positive("c", p.c)?;
                positive("tol", p.tol)?;
                if let Some(g) = p.gamma {
                    positive("gamma", g)?;
                }
                if p.epochs == 0 {
                    return Err("`epochs` must be at least 1".into());
                }
            }
            ClassifierParams::Logistic(p) => {
                if !(p.alpha.is_finite() && p.alpha >= 0.0) {
                    return Err(format!("`alpha` must be >= 0, got {}", p.alpha));
                }
            }
            ClassifierParams::NaiveBayes(p) => {
                if !(p.var_smoothing.is_finite() && p.var_smoothing >= 0.0) {
                    return Err(format!(
                        "`var_smoothing` must be >= 0, got {}",
                        p.var_smoothing
                    ));
                }
            }
            ClassifierParams::Knn(p) => {
                if p.k == 0 {
                    return Err("`k` must be at least 1".into());
                }
            }
            ClassifierParams::DecisionTree(p) => {
                if p.min_samples_leaf == 0 || p.min_samples_split < 2 {
                    return Err(
                        "min_samples_leaf must be at least 1 and min_samples_split at least 2"
                            .into(),
                    );
                }
            }
        }
        Ok(())
    }
}

fn default_trees() -> usize {
    100
}
fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn five() -> usize {
    5
}
fn unit() -> f64 {
    1.0
}
fn default_tol() -> f64 {
    1e-3
}
fn default_smoothing() -> f64 {
    1e-9
}
fn default_kernel() -> SvmKernel {
    SvmKernel::Rbf
}
fn default_weights() -> KnnWeights {
    KnnWeights::Uniform
}
fn default_criterion() -> TreeCriterion {
    TreeCriterion::Gini
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_filled_and_unknown_keys_rejected() {
        let p = ClassifierParams::parse(ClassifierKind::RandomForest, &toml::Table::new()).unwrap();
        assert_eq!(p.to_table()["n_trees"].as_integer(), Some(100));
        let mut t = toml::Table::new();
        t.insert("n_trees".into(), toml::Value::Integer(10));
        let err = ClassifierParams::parse(ClassifierKind::Svm, &t).unwrap_err();
        assert!(err.contains("n_trees") && err.contains("kernel"), "{err}");
        t.insert("n_trees".into(), toml::Value::Integer(0));
        assert!(ClassifierParams::parse(ClassifierKind::RandomForest, &t).is_err());
    }
}
