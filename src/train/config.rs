//! The `[train]` section: the training loop's settings.

use serde::{Deserialize, Serialize};

use super::options::{ClassWeight, OptimizerName, ScheduleName};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training part, at least 1.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Images per gradient step, at least 1.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// The optimiser's (initial) learning rate, a positive number.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Weight decay of the kernels (not biases or batch norm), ≥ 0: with "adam" an L2 term
    /// added to the gradient (coupled, like Keras's `l2`); with "adamw" and "sgd" decoupled
    /// (the weights shrunk by lr·weight_decay each step, as Keras's `weight_decay`).
    #[serde(default)]
    pub weight_decay: f64,
    /// "adam" (Keras's defaults: β1 0.9, β2 0.999, ε 1e-7), "adamw" (Adam with decoupled
    /// weight decay) or "sgd" (with `momentum` and `nesterov`).
    #[serde(default)]
    pub optimizer: OptimizerName,
    /// SGD's momentum, in [0, 1) (Keras's default 0).
    #[serde(default)]
    pub momentum: f64,
    /// SGD with Nesterov momentum.
    #[serde(default)]
    pub nesterov: bool,
    /// The learning rate over the epochs: "constant"; "cosine" (from `lr` down to 0 over the
    /// steps after warm-up, Keras's `CosineDecay`); "step" (times `step_factor` every
    /// `step_epochs` epochs); "plateau" (times `plateau_factor` when the validation loss has
    /// not improved for `plateau_patience` epochs, Keras's `ReduceLROnPlateau`; needs
    /// `validation_fraction` > 0).
    #[serde(default)]
    pub schedule: ScheduleName,
    /// Epochs of linear warm-up from 0 to `lr` (step by step) before the schedule; fewer
    /// than `epochs`.
    #[serde(default)]
    pub warmup_epochs: usize,
    /// For "step": epochs between decays, at least 1.
    #[serde(default = "default_step_epochs")]
    pub step_epochs: usize,
    /// For "step": the factor applied at each decay, in (0, 1).
    #[serde(default = "default_factor")]
    pub step_factor: f64,
    /// For "plateau": epochs without a better validation loss before the rate drops, ≥ 1.
    #[serde(default = "default_patience")]
    pub plateau_patience: usize,
    /// For "plateau": the factor applied at each drop, in (0, 1).
    #[serde(default = "default_factor")]
    pub plateau_factor: f64,
    /// "none" or "balanced": each image's loss weighted by n / (2·n_class) of the training
    /// images (scikit-learn's and Keras users' "balanced").
    #[serde(default)]
    pub class_weight: ClassWeight,
    /// Targets pulled towards ½: y·(1 − s) + s/2, in [0, 1) (Keras's `label_smoothing`).
    #[serde(default)]
    pub label_smoothing: f64,
    /// Largest global L2 norm of a step's gradients (scaled down above it, Keras's
    /// `global_clipnorm`); unset: no clipping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_norm: Option<f64>,
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
            optimizer: OptimizerName::default(),
            momentum: 0.0,
            nesterov: false,
            schedule: ScheduleName::default(),
            warmup_epochs: 0,
            step_epochs: default_step_epochs(),
            step_factor: default_factor(),
            plateau_patience: default_patience(),
            plateau_factor: default_factor(),
            class_weight: ClassWeight::default(),
            label_smoothing: 0.0,
            clip_norm: None,
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
fn default_step_epochs() -> usize {
    10
}
fn default_factor() -> f64 {
    0.1
}
fn default_patience() -> usize {
    10
}
