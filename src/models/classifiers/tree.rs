//! One CART classification tree, grown depth-first as scikit-learn's `BestSplitter` does:
//! at each node, features are drawn at random without replacement until `max_features`
//! non-constant ones have been tried; each is sorted over the node's samples and every
//! boundary between distinct values is scored; the threshold is the midpoint. Shared by the
//! decision tree (all features, every sample) and the random forest (√features, bootstrap).
//!
//! Our own code because smartcore's forest sorts every one of the 2,430 columns again for
//! each tree (its trees are grown by a forest of one) while a forest tree only looks at ~49
//! per node, and linfa 0.8 has no random forest; here the columns are laid out once per
//! forest and only the drawn ones are sorted.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::train::Matrix;

/// Split quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TreeCriterion {
    Gini,
    Entropy,
}

/// Default of `min_samples_leaf` (scikit-learn's).
pub(super) fn default_min_samples_leaf() -> usize {
    1
}

/// Default of `min_samples_split` (scikit-learn's).
pub(super) fn default_min_samples_split() -> usize {
    2
}

/// How a tree is grown.
#[derive(Debug, Clone, Copy)]
pub struct GrowSettings {
    pub criterion: TreeCriterion,
    pub max_depth: Option<usize>,
    pub min_samples_leaf: usize,
    pub min_samples_split: usize,
    /// Non-constant features tried per node (at most the number of features).
    pub max_features: usize,
}

/// A training matrix stored column by column, so that a feature's values over a node's
/// samples are read from one contiguous column.
pub struct Columns {
    rows: usize,
    values: Vec<f32>,
}

impl Columns {
    pub fn of(x: &Matrix) -> Self {
        let mut values = vec![0.0; x.data.len()];
        for r in 0..x.rows {
            for (c, &v) in x.row(r).iter().enumerate() {
                values[c * x.rows + r] = v;
            }
        }
        Self {
            rows: x.rows,
            values,
        }
    }

    fn count(&self) -> usize {
        self.values.len().checked_div(self.rows).unwrap_or(0)
    }

    fn column(&self, feature: usize) -> &[f32] {
        &self.values[feature * self.rows..(feature + 1) * self.rows]
    }
}

/// A fitted tree, node by node (node 0 is the root).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Feature each node splits on; -1 for a leaf.
    feature: Vec<i32>,
    /// Rows with `value <= threshold` go left.
    threshold: Vec<f32>,
    left: Vec<u32>,
    right: Vec<u32>,
    /// Weighted fraction of label 1 among the node's training samples.
    value: Vec<f32>,
}

/// The best split of a node found so far.
struct Split {
    feature: usize,
    threshold: f32,
    /// Criterion proxy; larger is better.
    score: f64,
}

impl Tree {
    /// Grows a tree on the samples with non-zero `weights` (bootstrap counts, or all 1).
    pub fn grow(
        columns: &Columns,
        y: &[u8],
        weights: &[u32],
        settings: &GrowSettings,
        rng: &mut Rng,
    ) -> Tree {
        let mut tree = Tree {
            feature: Vec::new(),
            threshold: Vec::new(),
            left: Vec::new(),
            right: Vec::new(),
            value: Vec::new(),
        };
        let mut samples: Vec<u32> = (0..columns.rows as u32)
            .filter(|&i| weights[i as usize] > 0)
            .collect();
        let mut features: Vec<usize> = (0..columns.count()).collect();
        let mut sorted: Vec<(f32, u32)> = Vec::with_capacity(samples.len());
        // (start, end, depth, node id)
        let mut stack = vec![(0usize, samples.len(), 0usize, tree.push_node())];
        while let Some((start, end, depth, node)) = stack.pop() {
            let node_samples = &samples[start..end];
            let (total, positive) = weighted_counts(node_samples, y, weights);
            tree.value[node] = (positive / total.max(1e-12)) as f32;
            let n = end - start;
            let pure = positive == 0.0 || positive == total;
            let deep = settings.max_depth.is_some_and(|d| depth >= d);
            if pure || deep || n < settings.min_samples_split || n < 2 * settings.min_samples_leaf {
                continue;
            }
            let Some(split) = best_split(
                columns,
                node_samples,
                y,
                weights,
                settings,
                &mut features,
                &mut sorted,
                rng,
            ) else {
                continue;
            };
            let column = columns.column(split.feature);
            let mut mid = start;
            for i in start..end {
                if column[samples[i] as usize] <= split.threshold {
                    samples.swap(i, mid);
                    mid += 1;
                }
            }
            let (left, right) = (tree.push_node(), tree.push_node());
            tree.feature[node] = split.feature as i32;
            tree.threshold[node] = split.threshold;
            tree.left[node] = left as u32;
            tree.right[node] = right as u32;
            stack.push((mid, end, depth + 1, right));
            stack.push((start, mid, depth + 1, left));
        }
        tree
    }

    fn push_node(&mut self) -> usize {
        self.feature.push(-1);
        self.threshold.push(0.0);
        self.left.push(0);
        self.right.push(0);
        self.value.push(0.0);
        self.feature.len() - 1
    }

    /// The leaf value (fraction of label 1) reached by `row`.
    pub fn predict(&self, row: &[f32]) -> f32 {
        let mut node = 0;
        while let Ok(feature) = usize::try_from(self.feature[node]) {
            node = if row[feature] <= self.threshold[node] {
                self.left[node]
            } else {
                self.right[node]
            } as usize;
        }
        self.value[node]
    }
}

fn weighted_counts(samples: &[u32], y: &[u8], weights: &[u32]) -> (f64, f64) {
    samples.iter().fold((0.0, 0.0), |(t, p), &i| {
        let w = weights[i as usize] as f64;
        (t + w, p + w * y[i as usize] as f64)
    })
}

/// The best split of a node over up to `max_features` non-constant features drawn at random;
/// None when every feature is constant over the node or no split leaves enough samples.
#[allow(clippy::too_many_arguments)]
fn best_split(
    columns: &Columns,
    samples: &[u32],
    y: &[u8],
    weights: &[u32],
    settings: &GrowSettings,
    features: &mut [usize],
    sorted: &mut Vec<(f32, u32)>,
    rng: &mut Rng,
) -> Option<Split> {
    let (total, positive) = weighted_counts(samples, y, weights);
    let mut best: Option<Split> = None;
    let mut tried = 0;
    let leaf = settings.min_samples_leaf;
    for drawn in 0..features.len() {
        if tried == settings.max_features {
            break;
        }
        let pick = drawn + rng.below(features.len() - drawn);
        features.swap(drawn, pick);
        let feature = features[drawn];
        let column = columns.column(feature);
        sorted.clear();
        sorted.extend(samples.iter().map(|&i| (column[i as usize], i)));
        sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        if sorted[0].0 == sorted[sorted.len() - 1].0 {
            continue;
        }
        tried += 1;
        let (mut left_w, mut left_p) = (0.0, 0.0);
        for k in 0..sorted.len() - 1 {
            let (value, i) = sorted[k];
            let w = weights[i as usize] as f64;
            left_w += w;
            left_p += w * y[i as usize] as f64;
            let next = sorted[k + 1].0;
            if value == next || k + 1 < leaf || sorted.len() - k - 1 < leaf {
                continue;
            }
            let score = split_score(
                settings.criterion,
                (left_w, left_p),
                (total - left_w, positive - left_p),
            );
            if best.as_ref().is_none_or(|b| score > b.score) {
                let mut threshold = value / 2.0 + next / 2.0;
                if threshold == next || !threshold.is_finite() {
                    threshold = value;
                }
                best = Some(Split {
                    feature,
                    threshold,
                    score,
                });
            }
        }
    }
    best
}

/// Larger for purer children: minus the weighted impurity of the two children.
fn split_score(criterion: TreeCriterion, left: (f64, f64), right: (f64, f64)) -> f64 {
    let part = |(w, p): (f64, f64)| -> f64 {
        if w <= 0.0 {
            return 0.0;
        }
        let q = p / w;
        match criterion {
            // w · gini = w (1 - q² - (1-q)²); ranking by -Σ w·gini.
            TreeCriterion::Gini => -w * (1.0 - q * q - (1.0 - q) * (1.0 - q)),
            TreeCriterion::Entropy => {
                let h = |f: f64| if f > 0.0 { -f * f.log2() } else { 0.0 };
                -w * (h(q) + h(1.0 - q))
            }
        }
    };
    part(left) + part(right)
}
