//! The experiment file's schema. Every struct rejects unknown keys, so a typo is an error
//! that lists the valid keys instead of a silently ignored setting.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use super::classifier::ClassifierKind;
use crate::wavelet::FeatureKind;

/// One experiment file, after the `[grid]` has been applied (the grid itself is handled on
/// the raw TOML table, see [`super::grid`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Experiment name; goes into every row of the results table.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub data: DataConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default, skip_serializing)]
    pub output: OutputConfig,
    /// How `--launcher` submits the jobs (resources, account); never part of a job's id.
    #[serde(default, skip_serializing)]
    pub launcher: LauncherConfig,
    /// The `[grid]` as written. Only present while the file itself is checked; the grid is
    /// expanded on the raw table (see `config::grid`), so a resolved config never has one.
    #[serde(default, skip_serializing)]
    pub grid: Option<toml::Table>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// A folder with `Train/{0,1}` and `Test/{0,1}` image folders.
    Folder,
    /// Patches generated from a seed (see `data::synthetic`); needs no files.
    Synthetic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplitKind {
    /// Train on Train, evaluate on Test.
    Given,
    /// Train on Test, evaluate on Train.
    Swapped,
    /// Stratified k-fold on Train; each fold's held-out part is evaluated, and Test too.
    Kfold,
    /// k-fold on Train where all patches of one mammogram stay in one fold.
    GroupKfold,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub source: DataSource,
    /// Folder holding `Train/` and `Test/` (source = "folder") as written in the file;
    /// relative paths resolve against the experiment file's folder (see `root_dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// `root` resolved against the experiment file's folder, set when the file is loaded.
    /// Never written out: rows, job ids and artefacts must not hold this machine's paths.
    #[serde(skip)]
    pub root_dir: Option<PathBuf>,
    #[serde(default = "default_split")]
    pub split: SplitKind,
    /// Number of folds for k-fold splits.
    #[serde(default = "default_folds")]
    pub folds: usize,
    /// Seed of the fold assignment; fixed apart from the training seeds so that seeds are
    /// compared on the same folds.
    #[serde(default)]
    pub split_seed: u64,
    /// Regular expression whose first capture group is the group (mammogram) id of a file name.
    #[serde(default = "default_group_pattern")]
    pub group_pattern: String,
    /// Expected image side in pixels; other sizes are an error naming the file.
    #[serde(default = "default_image_size")]
    pub image_size: usize,
    /// Synthetic source: images per class in the Train part.
    #[serde(default = "default_synthetic_train")]
    pub synthetic_train_per_class: usize,
    /// Synthetic source: images per class in the Test part.
    #[serde(default = "default_synthetic_test")]
    pub synthetic_test_per_class: usize,
    /// Synthetic source: seed of the generated images.
    #[serde(default)]
    pub synthetic_seed: u64,
    /// Drop exact duplicates (same file content), keeping the first by path, before splitting.
    #[serde(default)]
    pub dedupe: bool,
}

impl DataConfig {
    /// The folder to read images from: `root` resolved, or as written when not resolved.
    pub fn root_path(&self) -> PathBuf {
        self.root_dir
            .clone()
            .or_else(|| self.root.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

fn default_split() -> SplitKind {
    SplitKind::Given
}
fn default_folds() -> usize {
    5
}
fn default_group_pattern() -> String {
    "^([^_]+)_".to_string()
}
fn default_image_size() -> usize {
    60
}
fn default_synthetic_train() -> usize {
    300
}
fn default_synthetic_test() -> usize {
    100
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Wavelet features and a multilayer perceptron trained with the engine.
    WaveletMlp,
    /// Wavelet features and a classical classifier (smartcore), chosen by `model.classifier`.
    WaveletClassical,
    /// A convolutional network on the pixels, declared by `model.layers`.
    Cnn,
    /// The floor: logistic regression on intensity statistics (mean, s.d., percentiles).
    Baseline,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::WaveletMlp => "wavelet-mlp",
            ModelKind::WaveletClassical => "wavelet-classical",
            ModelKind::Cnn => "cnn",
            ModelKind::Baseline => "baseline",
        }
    }

    /// Whether the model reads wavelet features (and so `[model.wavelet]`).
    pub fn uses_wavelets(self) -> bool {
        matches!(self, ModelKind::WaveletMlp | ModelKind::WaveletClassical)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub kind: ModelKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wavelet: Option<WaveletConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp: Option<MlpConfig>,
    /// For `wavelet-classical`: which classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ClassifierKind>,
    /// For `wavelet-classical`: the classifier's parameters, checked against its schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<toml::Table>,
    /// For `cnn`: the layer list (default: the reference network), see `config::layers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<toml::Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveletConfig {
    /// PyWavelets name of a discrete wavelet (`db5`, `haar`, `sym5`, `bior2.4`, ...).
    #[serde(default = "default_family")]
    pub family: String,
    #[serde(default = "default_level")]
    pub level: usize,
    /// Detail levels kept (1 = finest); default: all but the finest. Levels deeper than
    /// `level` are ignored, so one list serves a sweep over levels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_levels: Option<Vec<usize>>,
    #[serde(default)]
    pub keep_approx: bool,
    #[serde(default = "default_features")]
    pub features: FeatureKind,
}

impl Default for WaveletConfig {
    fn default() -> Self {
        Self {
            family: default_family(),
            level: default_level(),
            keep_levels: None,
            keep_approx: false,
            features: default_features(),
        }
    }
}

fn default_family() -> String {
    "db5".to_string()
}
fn default_level() -> usize {
    4
}
fn default_features() -> FeatureKind {
    FeatureKind::SubbandStats
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Widths of the hidden layers (ReLU); the output is one logit.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Dropout probability after each hidden layer while training.
    #[serde(default)]
    pub dropout: f64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            hidden: default_hidden(),
            dropout: 0.0,
        }
    }
}

fn default_hidden() -> Vec<usize> {
    vec![256, 64]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// L2 penalty added to the gradient (Adam with coupled weight decay, like Keras' `l2`).
    #[serde(default)]
    pub weight_decay: f64,
    /// Fraction of the training part held out (stratified) for validation loss/accuracy.
    #[serde(default)]
    pub validation_fraction: f64,
    /// Patience in epochs on validation loss; 0 = off. Needs `validation_fraction` > 0.
    #[serde(default)]
    pub early_stopping: usize,
    /// One job per seed; the seed drives initial weights, shuffling and dropout.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// CNN training-time augmentation: any of "hflip", "vflip", "rot90", "shift:N".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub augment: Vec<String>,
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

/// `[launcher]`: settings of the launchers that submit jobs elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LauncherConfig {
    #[serde(default)]
    pub slurm: Option<SlurmSettings>,
}

/// `[launcher.slurm]`: what each array task asks Slurm for. Every field becomes an
/// `#SBATCH` line; `--sbatch` arguments on the command line come after them and win.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Wall-clock limit of one task, as Slurm writes it (`30`, `2:00:00`, `1-00:00:00`).
    pub time: Option<String>,
    pub cpus_per_task: Option<u32>,
    /// Memory per node, as Slurm writes it (`4G`, `500M`).
    pub mem: Option<String>,
    /// Further sbatch options, each as `--option=value`.
    #[serde(default)]
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Results table (CSV); relative paths resolve against the experiment file's folder.
    #[serde(default = "default_results")]
    pub results: String,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            results: default_results(),
        }
    }
}

fn default_results() -> String {
    "results/results.csv".to_string()
}
