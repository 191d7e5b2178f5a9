//! Random forest (Breiman): trees on bootstrap samples, √features tried per split, scored by
//! the mean of the trees' leaf fractions (scikit-learn's `predict_proba`). Trees are grown in
//! parallel, each from its own seed, so the forest is the same for any number of threads.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::tree::{
    default_min_samples_leaf, default_min_samples_split, Columns, GrowSettings, Tree, TreeCriterion,
};
use super::{Classifier, ParamError, Scorer};
use crate::rng::Rng;
use crate::train::Matrix;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RandomForest {
    /// Trees in the forest, at least 1.
    #[serde(default = "default_trees")]
    pub n_trees: usize,
    /// Features tried at each split; default √(number of features), as scikit-learn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_features: Option<usize>,
    /// Deepest a tree may grow; unlimited when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u16>,
    /// Fewest training rows in a leaf.
    #[serde(default = "default_min_samples_leaf")]
    pub min_samples_leaf: usize,
    /// Fewest training rows a node needs to be split.
    #[serde(default = "default_min_samples_split")]
    pub min_samples_split: usize,
}

impl Default for RandomForest {
    fn default() -> Self {
        Self {
            n_trees: default_trees(),
            max_features: None,
            max_depth: None,
            min_samples_leaf: default_min_samples_leaf(),
            min_samples_split: default_min_samples_split(),
        }
    }
}

fn default_trees() -> usize {
    100
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FittedForest {
    trees: Vec<Tree>,
}

impl Classifier for RandomForest {
    type Fitted = FittedForest;

    fn check(&self) -> Result<(), ParamError> {
        ParamError::at_least("n_trees", self.n_trees, 1)?;
        if let Some(m) = self.max_features {
            ParamError::at_least("max_features", m, 1)?;
        }
        ParamError::at_least("min_samples_leaf", self.min_samples_leaf, 1)?;
        ParamError::at_least("min_samples_split", self.min_samples_split, 2)
    }

    fn fit(&self, x: &Matrix, y: &[u8], seed: u64) -> FittedForest {
        let columns = Columns::of(x);
        let settings = GrowSettings {
            criterion: TreeCriterion::Gini,
            max_depth: self.max_depth.map(usize::from),
            min_samples_leaf: self.min_samples_leaf,
            min_samples_split: self.min_samples_split,
            max_features: self
                .max_features
                .unwrap_or(((x.cols as f64).sqrt().floor() as usize).max(1))
                .min(x.cols),
        };
        let mut rng = Rng::derived(seed, "random-forest");
        let seeds: Vec<u64> = (0..self.n_trees).map(|_| rng.next_u64()).collect();
        let trees = seeds
            .par_iter()
            .map(|&tree_seed| {
                let mut rng = Rng::new(tree_seed);
                let mut counts = vec![0u32; x.rows];
                for _ in 0..x.rows {
                    counts[rng.below(x.rows)] += 1;
                }
                Tree::grow(&columns, y, &counts, &settings, &mut rng)
            })
            .collect();
        FittedForest { trees }
    }
}

impl Scorer for FittedForest {
    fn score(&self, x: &Matrix) -> Vec<f64> {
        (0..x.rows)
            .into_par_iter()
            .map(|r| {
                let row = x.row(r);
                let sum: f64 = self.trees.iter().map(|t| t.predict(row) as f64).sum();
                sum / self.trees.len().max(1) as f64
            })
            .collect()
    }
}
