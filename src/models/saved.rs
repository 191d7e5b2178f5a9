//! Loading a trained CNN back from its job folder (`config.toml` + `model.safetensors`) to
//! score new images.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::cnn::CnnClassifier;
use super::{decode_weights, parse_layers, ModelConfig, ModelKind, WEIGHTS_FILE};
use crate::train::Matrix;

#[derive(Debug, Error)]
pub enum SavedModelError {
    #[error("{path}: only CNN jobs save weights; this job is kind = \"{kind}\"")]
    NotCnn { path: PathBuf, kind: &'static str },
    #[error("cannot read weights {path}: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("{path}: the saved weights do not fit the layers in config.toml")]
    Mismatch { path: PathBuf },
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error("{path} is {cols}x{rows} pixels; the model expects {size}x{size}")]
    WrongSize {
        path: PathBuf,
        rows: usize,
        cols: usize,
        size: usize,
    },
}

/// A trained CNN and the image size it expects.
pub struct SavedCnn {
    pub model: CnnClassifier,
    pub image_size: usize,
}

impl SavedCnn {
    /// Loads the weights in a job folder written by the runner (`results/runs/<job id>`),
    /// for the model its `config.toml` describes (`model`, on `size`-pixel images).
    pub fn load(run_dir: &Path, model: &ModelConfig, size: usize) -> Result<Self, SavedModelError> {
        let config_path = run_dir.join("config.toml");
        if model.kind != ModelKind::Cnn {
            return Err(SavedModelError::NotCnn {
                path: config_path,
                kind: model.kind.name(),
            });
        }
        let layers = parse_layers(model.layers.as_deref().unwrap_or(&[])).map_err(|_| {
            SavedModelError::Mismatch {
                path: config_path.clone(),
            }
        })?;
        let weights_path = run_dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&weights_path).map_err(|e| SavedModelError::Weights {
            path: weights_path.clone(),
            message: e.to_string(),
        })?;
        let named = decode_weights(&bytes).map_err(|message| SavedModelError::Weights {
            path: weights_path.clone(),
            message,
        })?;
        let values: Vec<Vec<f32>> = named.into_iter().map(|(_, v)| v).collect();
        let model = CnnClassifier::from_weights(&layers, size, &values)
            .ok_or(SavedModelError::Mismatch { path: weights_path })?;
        Ok(Self {
            model,
            image_size: size,
        })
    }

    /// Scores every image in `inputs` (files, or folders searched recursively): (path,
    /// probability of label 1), in order.
    pub fn score_paths(&self, inputs: &[PathBuf]) -> Result<Vec<(PathBuf, f64)>, SavedModelError> {
        let mut files = Vec::new();
        for input in inputs {
            files.extend(crate::data::find_images(input)?);
        }
        let mut images = Vec::with_capacity(files.len());
        for file in &files {
            let (rows, cols, pixels) = crate::data::read_image(file)?;
            if rows != self.image_size || cols != self.image_size {
                return Err(SavedModelError::WrongSize {
                    path: file.clone(),
                    rows,
                    cols,
                    size: self.image_size,
                });
            }
            images.push(pixels);
        }
        let scores = self.score(&images);
        Ok(files.into_iter().zip(scores).collect())
    }

    /// Probability of label 1 for each image (pixels on the 0..255 scale, size² each).
    pub fn score(&self, images: &[Vec<f32>]) -> Vec<f64> {
        let cols = self.image_size * self.image_size;
        let x = Matrix {
            rows: images.len(),
            cols,
            data: images
                .iter()
                .flat_map(|img| img.iter().map(|v| v / 255.0))
                .collect(),
        };
        self.model.predict_rows(&x)
    }
}
