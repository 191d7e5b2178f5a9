//! The `[model]` section: which model family, and the settings of its parts (features,
//! network, classifier), each type living with the code it configures.

use serde::{Deserialize, Serialize};

use super::{ClassifierKind, MlpConfig};
use crate::data::{DataSource, SplitKind};
use crate::wavelet::WaveletConfig;

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

/// Whether a configuration key can change the numbers of a job with this model kind, data
/// source and split. Training-loop settings mean nothing to the classical classifiers and
/// the baseline (they have no epochs or learning rate), the generator's settings nothing to
/// a folder, the group pattern and fold count nothing to a fixed split.
pub fn key_applies(kind: ModelKind, source: DataSource, split: SplitKind, key: &str) -> bool {
    let engine = matches!(kind, ModelKind::WaveletMlp | ModelKind::Cnn);
    let kfold = matches!(split, SplitKind::Kfold | SplitKind::GroupKfold);
    if key == "train.seeds" {
        return true;
    }
    if key.starts_with("train.") {
        return engine;
    }
    if key.starts_with("data.synthetic_") {
        return source == DataSource::Synthetic;
    }
    match key {
        "data.root" => source == DataSource::Folder,
        "data.group_pattern" => split == SplitKind::GroupKfold,
        "data.folds" | "data.split_seed" => kfold,
        _ => true,
    }
}
