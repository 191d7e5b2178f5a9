//! Models: features (pixels, wavelet coefficients, intensity statistics) separate from
//! learners (MLP, CNN, classical classifiers). A job's model is features → standardise →
//! fit → score; the fitted model can be saved and loaded back to score new images.

pub mod baseline;
pub mod classifiers;
pub mod cnn;
mod dwt_front;
mod features;
mod layers;
mod learner;
mod mlp;
mod model_file;
pub mod saved;
mod spec;

pub use classifiers::{
    ClassicalError, ClassifierKind, ClassifierParams, KnnWeights, SvmKernel, TreeCriterion,
};
pub use features::{wavelet_features, Features, Standardizer};
pub use layers::{
    check_shapes, parse_layers, reference_layer_values, walk_network, Layer, LayerError, Network,
    REFERENCE_LAYERS,
};
pub use learner::{FitContext, FittedLearner, LearnerSpec};
pub use mlp::{MlpClassifier, MlpConfig};
pub use saved::{FittedModel, SavedModelError, MODEL_FILE};
pub use spec::{key_applies, ModelConfig, ModelKind, ModelSpec, ModelSpecError};

use thiserror::Error;

use crate::data::augment::UnknownAugment;
use crate::data::{holdout, Dataset, Partition};
use crate::metrics::youden_threshold;
use crate::train::{EpochRecord, FitReport, Threshold, ThresholdRule, TrainConfig, TrainError};
use crate::wavelet::WaveletError;

#[derive(Debug, Error)]
pub enum ModelError {
    #[error(transparent)]
    Wavelet(#[from] WaveletError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Classical(#[from] ClassicalError),
    #[error(transparent)]
    Augment(#[from] UnknownAugment),
}

/// What a trained model produced for one job.
pub struct ModelOutcome {
    /// Probability of label 1 for each index of `partition.eval`, in order.
    pub eval_scores: Vec<f64>,
    /// Same for `partition.test` when the partition has one.
    pub test_scores: Option<Vec<f64>>,
    pub fit: FitReport,
    /// Model facts for the results row (feature count, parameter count, ...).
    pub facts: Vec<(String, String)>,
    /// The fitted model, to save with the job.
    pub model: FittedModel,
    /// Decision threshold on the scores (`train.threshold`, or chosen on validation rows).
    pub threshold: f64,
}

/// Fits the model `spec` describes (with the training settings `train`, on images of
/// `image_size` pixels a side) on `partition.train` and scores the other parts: features of
/// every image, standardised with the statistics of the rows the learner is fitted on (not a
/// validation hold-out), fitted, scored.
pub fn train_and_score(
    spec: &ModelSpec,
    train: &TrainConfig,
    image_size: usize,
    seed: u64,
    data: &Dataset,
    partition: &Partition,
    on_epoch: &mut dyn FnMut(&EpochRecord),
) -> Result<ModelOutcome, ModelError> {
    let features = spec.features();
    let learner = spec.learner();
    let raw = features.extract(data)?;
    let youden = train.threshold == Threshold::Rule(ThresholdRule::Youden);
    let (fit_idx, val_idx) = if learner.validates() || youden {
        holdout(data, &partition.train, train.validation_fraction, seed)
    } else {
        (partition.train.clone(), Vec::new())
    };
    let scaler = features
        .standardised()
        .then(|| Standardizer::fit(&raw.select(&fit_idx)));
    let x = match &scaler {
        Some(s) => s.apply(&raw),
        None => raw,
    };
    let (fit_x, fit_y) = (x.select(&fit_idx), data.labels(&fit_idx));
    let (val_x, val_y) = (x.select(&val_idx), data.labels(&val_idx));
    let validation = (!val_idx.is_empty()).then_some((&val_x, val_y.as_slice()));
    let context = FitContext {
        train,
        image_size,
        seed,
        on_epoch,
    };
    let (fitted, report) = learner.fit((&fit_x, &fit_y), validation, context)?;
    let score = |idx: &[usize]| fitted.score(&x.select(idx));
    let (eval_scores, test_scores) = (score(&partition.eval), partition.test.as_deref().map(score));
    let threshold = match train.threshold {
        Threshold::Fixed(t) => t,
        Threshold::Rule(ThresholdRule::Youden) => youden_threshold(&val_y, &fitted.score(&val_x)),
    };
    let mut facts = Vec::new();
    if !matches!(features, Features::Pixels) {
        facts.push(("n_features".to_string(), x.cols.to_string()));
    }
    if let Some(count) = fitted.parameter_count() {
        facts.push(("parameters".to_string(), count.to_string()));
    }
    facts.push(("n_train".to_string(), fit_idx.len().to_string()));
    if learner.validates() {
        facts.push(("best_epoch".to_string(), report.best_epoch.to_string()));
    }
    Ok(ModelOutcome {
        eval_scores,
        test_scores,
        fit: report,
        facts,
        model: FittedModel {
            features,
            scaler,
            learner: fitted,
        },
        threshold,
    })
}
