//! A fitted model: its features, the standardiser fitted on its training rows, and the fitted
//! learner. The runner saves it in the job's folder (`model.safetensors`, beside the
//! `config.toml` that says what the model is) and `microcal predict` loads it back to score
//! new images, for every model kind.

use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

use super::classifiers::FittedClassifier;
use super::cnn::CnnClassifier;
use super::features::{Features, Standardizer};
use super::learner::FittedLearner;
use super::mlp::MlpClassifier;
use super::model_file::{ModelFile, ModelFileError};
use super::spec::ModelSpec;
use crate::data::{Dataset, Origin, Sample};
use crate::train::{Matrix, TrainConfig, Trainable};
use crate::wavelet::WaveletError;

/// File of a job's fitted model inside its folder.
pub const MODEL_FILE: &str = "model.safetensors";

#[derive(Debug, Error)]
pub enum SavedModelError {
    #[error("cannot read {path}: {cause}")]
    Read {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("{path}: {cause}")]
    File {
        path: PathBuf,
        #[source]
        cause: ModelFileError,
    },
    #[error("{path}: the saved model does not fit the model in config.toml")]
    Mismatch { path: PathBuf },
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Wavelet(#[from] WaveletError),
    #[error("{path} is {cols}x{rows} pixels; the model expects {size}x{size}")]
    WrongSize {
        path: PathBuf,
        rows: usize,
        cols: usize,
        size: usize,
    },
}

/// Features → standardise → learner, fitted.
pub struct FittedModel {
    pub features: Features,
    pub scaler: Option<Standardizer>,
    pub learner: FittedLearner,
}

impl FittedModel {
    /// Scores rows of raw (unstandardised) features.
    pub fn score_features(&self, raw: &Matrix) -> Vec<f64> {
        match &self.scaler {
            Some(scaler) => self.learner.score(&scaler.apply(raw)),
            None => self.learner.score(raw),
        }
    }

    /// Scores every sample of `data`, in order.
    pub fn score_dataset(&self, data: &Dataset) -> Result<Vec<f64>, WaveletError> {
        Ok(self.score_features(&self.features.extract(data)?))
    }

    /// The learned state as a model file.
    pub fn encode(&self) -> Vec<u8> {
        let scaler = serde_json::to_value(&self.scaler).expect("a standardiser serialises");
        let (learner, weights) = match &self.learner {
            FittedLearner::Classifier(c) => (
                serde_json::to_value(c).expect("a fitted classifier serialises"),
                Vec::new(),
            ),
            FittedLearner::Mlp(m) => (Value::Null, numbered(m.snapshot())),
            FittedLearner::Cnn(m) => (Value::Null, m.weights()),
        };
        ModelFile {
            state: serde_json::json!({ "scaler": scaler, "classifier": learner }),
            weights,
        }
        .encode()
    }

    /// Loads the model saved in the job folder `run_dir` for `spec` (from its config.toml),
    /// on images of `image_size` pixels a side.
    pub fn load(
        run_dir: &Path,
        spec: &ModelSpec,
        image_size: usize,
    ) -> Result<Self, SavedModelError> {
        let path = run_dir.join(MODEL_FILE);
        let bytes = std::fs::read(&path).map_err(|cause| SavedModelError::Read {
            path: path.clone(),
            cause,
        })?;
        let file = ModelFile::decode(&bytes).map_err(|cause| SavedModelError::File {
            path: path.clone(),
            cause,
        })?;
        let mismatch = || SavedModelError::Mismatch { path: path.clone() };
        let scaler: Option<Standardizer> =
            serde_json::from_value(file.state["scaler"].clone()).map_err(|_| mismatch())?;
        let values: Vec<Vec<f32>> = file.weights.into_iter().map(|(_, v)| v).collect();
        let learner = match spec {
            ModelSpec::WaveletMlp { mlp, .. } => {
                let inputs = scaler
                    .as_ref()
                    .map(Standardizer::width)
                    .ok_or_else(mismatch)?;
                let mut model = MlpClassifier::new(inputs, mlp, &TrainConfig::default(), &[], 0);
                if !model.restore(&values) {
                    return Err(mismatch());
                }
                FittedLearner::Mlp(model)
            }
            ModelSpec::Cnn { layers } => FittedLearner::Cnn(
                CnnClassifier::from_weights(layers, image_size, &values).ok_or_else(mismatch)?,
            ),
            ModelSpec::WaveletClassical { .. } | ModelSpec::Baseline { .. } => {
                let fitted: FittedClassifier =
                    serde_json::from_value(file.state["classifier"].clone())
                        .map_err(|_| mismatch())?;
                FittedLearner::Classifier(fitted)
            }
        };
        Ok(Self {
            features: spec.features(),
            scaler,
            learner,
        })
    }

    /// Scores every image in `inputs` (files, or folders searched recursively), which must be
    /// `size` pixels a side: (path, probability of label 1), in order.
    pub fn score_paths(
        &self,
        inputs: &[PathBuf],
        size: usize,
    ) -> Result<Vec<(PathBuf, f64)>, SavedModelError> {
        let mut files = Vec::new();
        for input in inputs {
            files.extend(crate::data::find_images(input)?);
        }
        let mut samples = Vec::with_capacity(files.len());
        for file in &files {
            let (rows, cols, pixels) = crate::data::read_image(file)?;
            if rows != size || cols != size {
                return Err(SavedModelError::WrongSize {
                    path: file.clone(),
                    rows,
                    cols,
                    size,
                });
            }
            samples.push(Sample {
                id: file.display().to_string(),
                label: 0,
                origin: Origin::Test,
                group: String::new(),
                rows,
                cols,
                pixels,
                content_hash: 0,
            });
        }
        let scores = self.score_dataset(&Dataset::new(samples))?;
        Ok(files.into_iter().zip(scores).collect())
    }
}

/// Snapshot values named by position.
fn numbered(values: Vec<Vec<f32>>) -> Vec<(String, Vec<f32>)> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("p{i}"), v))
        .collect()
}
