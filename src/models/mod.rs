//! Model families. Each turns a job's partition of the data into scores for the evaluation
//! (and, for k-fold jobs, test) images; the runner does everything else.

pub mod baseline;
pub mod classical;
mod classifier_params;
pub mod cnn;
mod features;
mod layers;
mod mlp;
pub mod saved;
mod spec;
mod weights;

pub use classifier_params::*;
pub use features::{wavelet_features, Standardizer};
pub use layers::{check_shapes, parse_layers, reference_layer_values, Layer, REFERENCE_LAYERS};
pub use mlp::{MlpClassifier, MlpConfig};
pub use spec::{key_applies, ModelConfig, ModelKind};
pub use weights::{decode_weights, encode_weights, WEIGHTS_FILE};

use thiserror::Error;

use std::time::Instant;

use crate::data::{holdout, Dataset, Partition};
use crate::train::{fit, EpochRecord, FitReport, Matrix, TrainConfig, TrainError, Trainable};
use crate::wavelet::WaveletError;

#[derive(Debug, Error)]
pub enum ModelError {
    #[error(transparent)]
    Wavelet(#[from] WaveletError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Classical(#[from] classical::ClassicalError),
    #[error("invalid model settings: {0}")]
    Settings(String),
}

/// What a trained model produced for one job.
#[derive(Debug, Clone)]
pub struct ModelOutcome {
    /// Probability of label 1 for each index of `partition.eval`, in order.
    pub eval_scores: Vec<f64>,
    /// Same for `partition.test` when the partition has one.
    pub test_scores: Option<Vec<f64>>,
    pub fit: FitReport,
    /// Model facts for the results row (feature count, parameter count, ...).
    pub facts: Vec<(String, String)>,
    /// Trained parameters worth saving with the job (CNN), by name.
    pub weights: Option<Vec<(String, Vec<f32>)>>,
}

/// Trains the model `spec` describes (with the training settings `train`, on images of
/// `image_size` pixels a side) on `partition.train` and scores the other parts.
pub fn train_and_score(
    spec: &ModelConfig,
    train: &TrainConfig,
    image_size: usize,
    seed: u64,
    data: &Dataset,
    partition: &Partition,
    on_epoch: &mut dyn FnMut(&EpochRecord),
) -> Result<ModelOutcome, ModelError> {
    match spec.kind {
        ModelKind::WaveletMlp => {
            let wavelet = spec.wavelet.clone().unwrap_or_default();
            let mlp = spec.mlp.clone().unwrap_or_default();
            let raw = wavelet_features(data, &wavelet)?;
            // Standardise with the rows the network is fitted on (not the validation hold-out).
            let (fit_idx, _) = holdout(data, &partition.train, train.validation_fraction, seed);
            let x = Standardizer::fit(&raw.select(&fit_idx)).apply(&raw);
            let model = MlpClassifier::new(x.cols, &mlp, train, seed);
            let (model, mut outcome) =
                fit_engine_model(model, &x, train, seed, data, partition, on_epoch)?;
            outcome
                .facts
                .insert(0, ("n_features".to_string(), x.cols.to_string()));
            outcome.facts.insert(
                1,
                (
                    "parameters".to_string(),
                    model.parameter_count().to_string(),
                ),
            );
            Ok(outcome)
        }
        ModelKind::Cnn => {
            let layers = parse_layers(spec.layers.as_deref().unwrap_or(&[]))
                .map_err(ModelError::Settings)?;
            let x = cnn::pixel_matrix(data);
            let model = cnn::CnnClassifier::new(&layers, image_size, train, seed)
                .map_err(ModelError::Settings)?;
            tracing::info!(parameters = model.parameter_count(), "CNN built");
            let (model, mut outcome) =
                fit_engine_model(model, &x, train, seed, data, partition, on_epoch)?;
            outcome.facts.insert(
                0,
                (
                    "parameters".to_string(),
                    model.parameter_count().to_string(),
                ),
            );
            outcome.weights = Some(model.weights());
            Ok(outcome)
        }
        ModelKind::Baseline => {
            let raw = baseline::intensity_features(data);
            let params = ClassifierParams::parse(ClassifierKind::Logistic, &toml::Table::new())
                .map_err(ModelError::Settings)?;
            classical_outcome(&params, seed, data, partition, &raw)
        }
        ModelKind::WaveletClassical => {
            let wavelet = spec.wavelet.clone().unwrap_or_default();
            let kind = spec
                .classifier
                .ok_or_else(|| ModelError::Settings("model.classifier is missing".into()))?;
            let params = ClassifierParams::parse(kind, &spec.params.clone().unwrap_or_default())
                .map_err(ModelError::Settings)?;
            let raw = wavelet_features(data, &wavelet)?;
            classical_outcome(&params, seed, data, partition, &raw)
        }
    }
}

/// Standardises `raw` on the training part, fits a classical classifier and scores the rest.
fn classical_outcome(
    params: &ClassifierParams,
    seed: u64,
    data: &Dataset,
    partition: &Partition,
    raw: &Matrix,
) -> Result<ModelOutcome, ModelError> {
    let scaler = Standardizer::fit(&raw.select(&partition.train));
    let x = scaler.apply(raw);
    let train_x = x.select(&partition.train);
    let eval_x = x.select(&partition.eval);
    let test_x = partition.test.as_deref().map(|t| x.select(t));
    let mut sets = vec![&eval_x];
    sets.extend(test_x.as_ref());
    let start = Instant::now();
    let train_y = data.labels(&partition.train);
    let mut scores = classical::fit_and_score_guarded(params, seed, &train_x, &train_y, &sets)?;
    let seconds = start.elapsed().as_secs_f64();
    let test_scores = test_x.is_some().then(|| scores.pop()).flatten();
    Ok(ModelOutcome {
        eval_scores: scores.swap_remove(0),
        test_scores,
        facts: vec![
            ("n_features".to_string(), x.cols.to_string()),
            ("n_train".to_string(), partition.train.len().to_string()),
        ],
        fit: FitReport {
            history: Vec::new(),
            best_epoch: 0,
            seconds,
            images_per_s: partition.train.len() as f64 / seconds.max(1e-9),
        },
        weights: None,
    })
}

/// Trains an engine model with the shared loop (validation hold-out from the training part
/// when configured) and scores the evaluation and test parts; `x` has one row per sample.
fn fit_engine_model<M: Trainable>(
    mut model: M,
    x: &Matrix,
    train: &TrainConfig,
    seed: u64,
    data: &Dataset,
    partition: &Partition,
    on_epoch: &mut dyn FnMut(&EpochRecord),
) -> Result<(M, ModelOutcome), ModelError> {
    let (fit_idx, val_idx) = holdout(data, &partition.train, train.validation_fraction, seed);
    let (fit_x, fit_y) = (x.select(&fit_idx), data.labels(&fit_idx));
    let (val_x, val_y) = (x.select(&val_idx), data.labels(&val_idx));
    let validation = (!val_idx.is_empty()).then_some((&val_x, val_y.as_slice()));
    let report = fit(
        &mut model, &fit_x, &fit_y, validation, train, seed, on_epoch,
    )?;
    let score = |idx: &[usize]| model.predict(&x.select(idx));
    let outcome = ModelOutcome {
        eval_scores: score(&partition.eval),
        test_scores: partition.test.as_deref().map(score),
        facts: vec![
            ("n_train".to_string(), fit_idx.len().to_string()),
            ("best_epoch".to_string(), report.best_epoch.to_string()),
        ],
        fit: report,
        weights: None,
    };
    Ok((model, outcome))
}
