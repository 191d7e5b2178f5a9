//! Learners: what fits a feature matrix (MLP, CNN, or a classical classifier) into a fitted
//! model that scores rows, reports its facts and saves its learned state. The networks train
//! with the shared loop (mini-batches, validation, early stopping); a classifier fits in one
//! call.

use super::classifiers::{ClassifierParams, FittedClassifier, Scorer};
use super::cnn::CnnClassifier;
use super::layers::Network;
use super::mlp::{MlpClassifier, MlpConfig};
use super::ModelError;
use crate::train::{fit, EpochRecord, FitReport, Matrix, TrainConfig};

/// What learns from the features.
#[derive(Debug, Clone, PartialEq)]
pub enum LearnerSpec {
    Mlp(MlpConfig),
    Cnn(Network),
    Classifier(ClassifierParams),
}

/// What a fit needs besides the data.
pub struct FitContext<'a> {
    pub train: &'a TrainConfig,
    pub image_size: usize,
    pub seed: u64,
    pub on_epoch: &'a mut dyn FnMut(&EpochRecord),
}

/// A fitted learner.
pub enum FittedLearner {
    Mlp(MlpClassifier),
    Cnn(CnnClassifier),
    Classifier(FittedClassifier),
}

impl LearnerSpec {
    /// Whether the learner holds out validation rows from its training part (the networks,
    /// for their per-epoch validation and early stopping).
    pub fn validates(&self) -> bool {
        !matches!(self, LearnerSpec::Classifier(_))
    }

    /// Fits on `x`/`y`, validating on `validation` where the learner validates.
    pub fn fit(
        &self,
        (x, y): (&Matrix, &[u8]),
        validation: Option<(&Matrix, &[u8])>,
        ctx: FitContext,
    ) -> Result<(FittedLearner, FitReport), ModelError> {
        let FitContext {
            train,
            image_size,
            seed,
            on_epoch,
        } = ctx;
        match self {
            LearnerSpec::Mlp(mlp) => {
                let mut model = MlpClassifier::new(x.cols, mlp, train, y, seed);
                let report = fit(&mut model, x, y, validation, train, seed, on_epoch)?;
                Ok((FittedLearner::Mlp(model), report))
            }
            LearnerSpec::Cnn(layers) => {
                let mut model = CnnClassifier::new(layers, image_size, train, y, seed)?;
                tracing::info!(parameters = model.parameter_count(), "CNN built");
                let report = fit(&mut model, x, y, validation, train, seed, on_epoch)?;
                Ok((FittedLearner::Cnn(model), report))
            }
            LearnerSpec::Classifier(params) => {
                let start = std::time::Instant::now();
                let fitted = params.fit(x, y, seed)?;
                let seconds = start.elapsed().as_secs_f64();
                let report = FitReport {
                    history: Vec::new(),
                    best_epoch: 0,
                    seconds,
                    images_per_s: x.rows as f64 / seconds.max(1e-9),
                };
                Ok((FittedLearner::Classifier(fitted), report))
            }
        }
    }
}

impl FittedLearner {
    /// Probability of label 1 (or a monotone stand-in) for each row.
    pub fn score(&self, x: &Matrix) -> Vec<f64> {
        match self {
            FittedLearner::Mlp(m) => m.predict_rows(x),
            FittedLearner::Cnn(m) => m.predict_rows(x),
            FittedLearner::Classifier(m) => m.score(x),
        }
    }

    /// Trainable parameters of a network; None for a classifier.
    pub fn parameter_count(&self) -> Option<usize> {
        match self {
            FittedLearner::Mlp(m) => Some(m.parameter_count()),
            FittedLearner::Cnn(m) => Some(m.parameter_count()),
            FittedLearner::Classifier(_) => None,
        }
    }
}
