//! The `[model]` section: which model family, and the settings of its parts (features,
//! network, classifier), each type living with the code it configures.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::classifiers::{ClassifierKind, ClassifierParams, ParamsError};
use super::features::Features;
use super::layers::{parse_layers, reference_layer_values, LayerError, Network};
use super::learner::LearnerSpec;
use super::MlpConfig;
use crate::data::{DataSource, SplitKind};
use crate::wavelet::WaveletConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Wavelet features and a multilayer perceptron trained with the engine.
    WaveletMlp,
    /// Wavelet features and a classical classifier, chosen by `model.classifier`.
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

    pub const ALL: [ModelKind; 4] = [
        ModelKind::WaveletMlp,
        ModelKind::WaveletClassical,
        ModelKind::Cnn,
        ModelKind::Baseline,
    ];

    /// Whether a model of this kind reads the dotted key `key` of an experiment file: the
    /// settings of its own parts, the training loop for the kinds the engine trains, and
    /// every other key (data, output, labels).
    pub fn reads(self, key: &str) -> bool {
        let engine = matches!(self, ModelKind::WaveletMlp | ModelKind::Cnn);
        let under = |section: &str| key == section || key.starts_with(&format!("{section}."));
        if under("model.wavelet") {
            self.uses_wavelets()
        } else if under("model.mlp") {
            self == ModelKind::WaveletMlp
        } else if under("model.classifier") || under("model.params") {
            self == ModelKind::WaveletClassical
        } else if under("model.layers") || key == "train.augment" {
            self == ModelKind::Cnn
        } else if [
            "train.seeds",
            "train.threshold",
            "train.validation_fraction",
        ]
        .contains(&key)
        {
            true
        } else if key.starts_with("train.") {
            engine
        } else {
            true
        }
    }

    /// Whether the model reads wavelet features (and so `[model.wavelet]`).
    pub fn uses_wavelets(self) -> bool {
        matches!(self, ModelKind::WaveletMlp | ModelKind::WaveletClassical)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model family; it decides which other `[model]` keys apply.
    pub kind: ModelKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wavelet: Option<WaveletConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp: Option<MlpConfig>,
    /// For `wavelet-classical`: which classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ClassifierKind>,
    /// For `wavelet-classical`: the classifier's parameters (see the sections per classifier
    /// below); unknown keys are errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<std::collections::BTreeMap<String, serde_json::Value>>")]
    pub params: Option<toml::Table>,
    /// For `cnn`: the layer list (default: the reference network), see docs/models.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub layers: Option<Vec<toml::Value>>,
}

/// Whether a configuration key can change the numbers of a job with this model kind, data
/// source and split. Training-loop settings mean nothing to the classical classifiers and
/// the baseline (they have no epochs or learning rate), the generator's settings nothing to
/// a folder, the group pattern and fold count nothing to a fixed split.
pub fn key_applies(kind: ModelKind, source: DataSource, split: SplitKind, key: &str) -> bool {
    let engine = matches!(kind, ModelKind::WaveletMlp | ModelKind::Cnn);
    let kfold = matches!(split, SplitKind::Kfold | SplitKind::GroupKfold);
    if key == "train.seeds" || key == "train.threshold" {
        return true;
    }
    if key.starts_with("train.") {
        return engine;
    }
    if key.starts_with("data.synthetic_") {
        return source == DataSource::Synthetic;
    }
    match key {
        "data.root" | "data.skip_unreadable" => source == DataSource::Folder,
        "data.group_pattern" => split == SplitKind::GroupKfold,
        "data.folds" | "data.split_seed" => kfold,
        _ => true,
    }
}

/// A model as the code uses it, parsed once when the file is read: `kind` selects the
/// variant, which holds the typed settings of its parts.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    WaveletMlp {
        wavelet: WaveletConfig,
        mlp: MlpConfig,
    },
    WaveletClassical {
        wavelet: WaveletConfig,
        classifier: ClassifierParams,
    },
    Cnn {
        layers: Network,
    },
    /// Intensity statistics and logistic regression with default settings.
    Baseline {
        classifier: ClassifierParams,
    },
}

/// Why a `[model]` section does not describe a model; each names its key.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum ModelSpecError {
    #[error("is required for kind = \"wavelet-classical\"; one of {}", ClassifierKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "))]
    MissingClassifier,
    #[error("{cause} (for classifier = \"{classifier}\")")]
    Params {
        classifier: &'static str,
        #[source]
        cause: ParamsError,
    },
    #[error("{cause}")]
    Layers {
        #[source]
        cause: LayerError,
    },
}

impl ModelSpecError {
    /// The dotted key at fault.
    pub fn key(&self) -> &'static str {
        match self {
            ModelSpecError::MissingClassifier => "model.classifier",
            ModelSpecError::Params { .. } => "model.params",
            ModelSpecError::Layers { .. } => "model.layers",
        }
    }
}

impl ModelConfig {
    /// The typed model this section describes (defaults filled in where a part is absent).
    pub fn spec(&self) -> Result<ModelSpec, ModelSpecError> {
        let wavelet = || self.wavelet.clone().unwrap_or_default();
        let classifier = |kind: ClassifierKind, table: &toml::Table| {
            ClassifierParams::parse(kind, table).map_err(|cause| ModelSpecError::Params {
                classifier: kind.name(),
                cause,
            })
        };
        Ok(match self.kind {
            ModelKind::WaveletMlp => ModelSpec::WaveletMlp {
                wavelet: wavelet(),
                mlp: self.mlp.clone().unwrap_or_default(),
            },
            ModelKind::WaveletClassical => {
                let kind = self.classifier.ok_or(ModelSpecError::MissingClassifier)?;
                ModelSpec::WaveletClassical {
                    wavelet: wavelet(),
                    classifier: classifier(kind, &self.params.clone().unwrap_or_default())?,
                }
            }
            ModelKind::Cnn => {
                let values = self.layers.clone().unwrap_or_else(reference_layer_values);
                let layers =
                    parse_layers(&values).map_err(|cause| ModelSpecError::Layers { cause })?;
                ModelSpec::Cnn { layers }
            }
            ModelKind::Baseline => ModelSpec::Baseline {
                classifier: classifier(ClassifierKind::Logistic, &toml::Table::new())?,
            },
        })
    }
}

impl ModelSpec {
    pub fn kind(&self) -> ModelKind {
        match self {
            ModelSpec::WaveletMlp { .. } => ModelKind::WaveletMlp,
            ModelSpec::WaveletClassical { .. } => ModelKind::WaveletClassical,
            ModelSpec::Cnn { .. } => ModelKind::Cnn,
            ModelSpec::Baseline { .. } => ModelKind::Baseline,
        }
    }

    /// What the learner sees.
    pub fn features(&self) -> Features {
        match self {
            ModelSpec::WaveletMlp { wavelet, .. } | ModelSpec::WaveletClassical { wavelet, .. } => {
                Features::Wavelet(wavelet.clone())
            }
            ModelSpec::Cnn { .. } => Features::Pixels,
            ModelSpec::Baseline { .. } => Features::Intensity,
        }
    }

    /// What learns from the features.
    pub fn learner(&self) -> LearnerSpec {
        match self {
            ModelSpec::WaveletMlp { mlp, .. } => LearnerSpec::Mlp(mlp.clone()),
            ModelSpec::Cnn { layers } => LearnerSpec::Cnn(layers.clone()),
            ModelSpec::WaveletClassical { classifier, .. } | ModelSpec::Baseline { classifier } => {
                LearnerSpec::Classifier(classifier.clone())
            }
        }
    }
}
