//! The `[data]` section: where the images come from and how they are split.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// A folder with `Train/{0,1}` and `Test/{0,1}` image folders.
    Folder,
    /// Patches generated from a seed (see `data::synthetic`); needs no files.
    Synthetic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// What a job's headline metrics are computed on.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Evaluate {
    /// The split's evaluation part: Test for the given split, the held-out fold for k-fold
    /// splits (whose models also score Test).
    #[default]
    Test,
    /// The training part only: the hold-out of `train.validation_fraction` for the given and
    /// swapped splits, the held-out fold for k-fold splits; Test is never scored. What a
    /// search compares its trials on.
    Validation,
}

impl Evaluate {
    fn is_test(&self) -> bool {
        *self == Evaluate::Test
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Where the images come from.
    pub source: DataSource,
    /// Folder holding `Train/` and `Test/` (source = "folder") as written in the file;
    /// relative paths resolve against the experiment file's folder (see `root_dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// `root` resolved against the experiment file's folder, set when the file is loaded.
    /// Never written out: rows, job ids and artefacts must not hold this machine's paths.
    #[serde(skip)]
    pub root_dir: Option<PathBuf>,
    /// How the images are split into the parts a model trains and is evaluated on.
    #[serde(default = "default_split")]
    pub split: SplitKind,
    /// Number of folds for k-fold splits, at least 2.
    #[serde(default = "default_folds")]
    pub folds: usize,
    /// Seed of the fold assignment; fixed apart from the training seeds so that seeds are
    /// compared on the same folds.
    #[serde(default)]
    pub split_seed: u64,
    /// Regular expression whose first capture group is the group (mammogram) id of a file name.
    #[serde(default = "default_group_pattern")]
    pub group_pattern: String,
    /// Expected image side in pixels, at least 8; other sizes are an error naming the file.
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
    /// Skip entries named like images that are not readable regular files (dangling links,
    /// folders, named pipes), with a warning that counts them, instead of stopping.
    #[serde(default)]
    pub skip_unreadable: bool,
    /// What a job's headline metrics are computed on.
    #[serde(default, skip_serializing_if = "Evaluate::is_test")]
    pub evaluate: Evaluate,
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
