//! One classification tree on every sample, all features tried at each split (scikit-learn's
//! `DecisionTreeClassifier`); its score is the leaf's fraction of label 1, so a fully grown
//! tree's ROC has a single operating point.

use serde::{Deserialize, Serialize};

pub use super::tree::TreeCriterion;
use super::tree::{
    default_min_samples_leaf, default_min_samples_split, Columns, GrowSettings, Tree,
};
use super::{Classifier, ParamError, Scorer};
use crate::rng::Rng;
use crate::train::Matrix;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionTree {
    #[serde(default = "default_criterion")]
    pub criterion: TreeCriterion,
    /// Deepest the tree may grow; unlimited when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u16>,
    /// Fewest training rows in a leaf.
    #[serde(default = "default_min_samples_leaf")]
    pub min_samples_leaf: usize,
    /// Fewest training rows a node needs to be split.
    #[serde(default = "default_min_samples_split")]
    pub min_samples_split: usize,
}

fn default_criterion() -> TreeCriterion {
    TreeCriterion::Gini
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FittedTree {
    tree: Tree,
}

impl Classifier for DecisionTree {
    type Fitted = FittedTree;

    fn check(&self) -> Result<(), ParamError> {
        ParamError::at_least("min_samples_leaf", self.min_samples_leaf, 1)?;
        ParamError::at_least("min_samples_split", self.min_samples_split, 2)
    }

    fn fit(&self, x: &Matrix, y: &[u8], seed: u64) -> FittedTree {
        let settings = GrowSettings {
            criterion: self.criterion,
            max_depth: self.max_depth.map(usize::from),
            min_samples_leaf: self.min_samples_leaf,
            min_samples_split: self.min_samples_split,
            max_features: x.cols,
        };
        let mut rng = Rng::derived(seed, "decision-tree");
        let weights = vec![1u32; x.rows];
        FittedTree {
            tree: Tree::grow(&Columns::of(x), y, &weights, &settings, &mut rng),
        }
    }
}

impl Scorer for FittedTree {
    fn score(&self, x: &Matrix) -> Vec<f64> {
        (0..x.rows)
            .map(|r| self.tree.predict(x.row(r)) as f64)
            .collect()
    }
}
