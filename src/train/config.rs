//! The `[train]` section: the training loop's settings.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training part, at least 1.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Images per gradient step, at least 1.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Adam's learning rate, a positive number.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// L2 penalty added to the gradient (Adam with coupled weight decay, like Keras' `l2`), ≥ 0.
    #[serde(default)]
    pub weight_decay: f64,
    /// Fraction of the training part held out (stratified) for validation loss/accuracy, in
    /// [0, 0.9); 0 = no hold-out.
    #[serde(default)]
    pub validation_fraction: f64,
    /// Patience in epochs on validation loss; 0 = off. Needs `validation_fraction` > 0.
    #[serde(default)]
    pub early_stopping: usize,
    /// One job per seed; the seed drives initial weights, shuffling and dropout.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// CNN training-time augmentation: any of "hflip", "vflip", "rot90", "shift:N"; none when
    /// unset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub augment: Vec<String>,
    /// Decision threshold on the score: a number in (0, 1), or "youden" (chosen on the
    /// validation hold-out, so it needs `validation_fraction` > 0); 0.5 when unset.
    #[serde(default, skip_serializing_if = "Threshold::is_default")]
    pub threshold: Threshold,
}

/// How the decision threshold is set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Threshold {
    Fixed(f64),
    Rule(ThresholdRule),
}

/// A threshold chosen from validation scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ThresholdRule {
    /// Maximise Youden's J = sensitivity + specificity − 1.
    Youden,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold::Fixed(0.5)
    }
}

impl Threshold {
    fn is_default(&self) -> bool {
        *self == Threshold::default()
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: default_epochs(),
            batch_size: default_batch_size(),
            lr: default_lr(),
            weight_decay: 0.0,
            validation_fraction: 0.0,
            early_stopping: 0,
            seeds: default_seeds(),
            augment: Vec::new(),
            threshold: Threshold::default(),
        }
    }
}

fn default_epochs() -> usize {
    50
}
fn default_batch_size() -> usize {
    32
}
fn default_lr() -> f64 {
    1e-3
}
fn default_seeds() -> Vec<u64> {
    vec![0]
}
