//! The mini-batch training loop shared by every engine-trained model: seeded shuffling,
//! per-epoch history, validation, early stopping, divergence detection.

mod config;
mod options;
mod schedule;

pub use config::{Threshold, ThresholdRule, TrainConfig};
pub use options::{ClassWeight, OptimizerName, ScheduleName};
pub use schedule::LearningRate;

use std::time::Instant;

use serde::Serialize;
use thiserror::Error;

use crate::metrics::{log_loss, BinaryMetrics};
use crate::rng::Rng;

/// A dense row-major matrix of features.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            rows: indices.len(),
            cols: self.cols,
            data,
        }
    }
}

/// What the loop needs from a model.
pub trait Trainable {
    /// One optimiser step on a batch; returns the mean loss and the batch's logits.
    fn train_batch(&mut self, x: &[f32], y: &[f32]) -> (f32, Vec<f32>);
    /// Probabilities of label 1 for every row of `x`.
    fn predict(&self, x: &Matrix) -> Vec<f64>;
    fn snapshot(&self) -> Vec<Vec<f32>>;
    /// Puts back values taken by `snapshot`; false if they do not fit the model.
    fn restore(&mut self, snapshot: &[Vec<f32>]) -> bool;
    /// The learning rate of the next steps (the schedule sets it before each step).
    fn set_learning_rate(&mut self, lr: f64);
}

/// One line of the training history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub seconds: f64,
}

#[derive(Debug, Clone)]
pub struct FitReport {
    pub history: Vec<EpochRecord>,
    /// Epoch whose weights were kept (the best validation loss with early stopping, else the last).
    pub best_epoch: usize,
    pub seconds: f64,
    /// Training images processed per second (images × epochs run / seconds).
    pub images_per_s: f64,
}

#[derive(Debug, Error, PartialEq)]
pub enum TrainError {
    #[error("loss became {loss} in epoch {epoch}; lower train.lr or standardise the inputs")]
    Diverged { epoch: usize, loss: f32 },
    #[error("the weights of epoch {epoch} (best on validation) no longer fit the model")]
    Restore { epoch: usize },
}

/// Trains `model` on `x`/`labels`, validating on `validation` after each epoch if given.
/// `on_epoch` sees every record as it is made (progress bars, logs).
pub fn fit(
    model: &mut dyn Trainable,
    x: &Matrix,
    labels: &[u8],
    validation: Option<(&Matrix, &[u8])>,
    config: &TrainConfig,
    seed: u64,
    on_epoch: &mut dyn FnMut(&EpochRecord),
) -> Result<FitReport, TrainError> {
    let start = Instant::now();
    let mut rng = Rng::derived(seed, "batch-order");
    let mut order: Vec<usize> = (0..x.rows).collect();
    let mut history = Vec::new();
    let mut best: Option<(f64, usize, Vec<Vec<f32>>)> = None;
    let (mut bx, mut by) = (Vec::new(), Vec::new());
    let mut rate = LearningRate::new(config, x.rows.div_ceil(config.batch_size));
    for epoch in 1..=config.epochs {
        let epoch_start = Instant::now();
        rng.shuffle(&mut order);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for (b, batch) in order.chunks(config.batch_size).enumerate() {
            model.set_learning_rate(rate.in_epoch(epoch - 1, b));
            bx.clear();
            by.clear();
            for &i in batch {
                bx.extend_from_slice(x.row(i));
                by.push(labels[i] as f32);
            }
            let (loss, logits) = model.train_batch(&bx, &by);
            if !loss.is_finite() {
                return Err(TrainError::Diverged { epoch, loss });
            }
            loss_sum += loss as f64 * batch.len() as f64;
            correct += logits
                .iter()
                .zip(&by)
                .filter(|(l, t)| (**l >= 0.0) == (**t >= 0.5))
                .count();
        }
        let (val_loss, val_accuracy) = match validation {
            Some((vx, vy)) => {
                let scores = model.predict(vx);
                let m = BinaryMetrics::compute(vy, &scores, 0.5);
                (Some(log_loss(vy, &scores)), Some(m.accuracy))
            }
            None => (None, None),
        };
        rate.end_epoch(val_loss);
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / x.rows as f64,
            train_accuracy: correct as f64 / x.rows as f64,
            val_loss,
            val_accuracy,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        on_epoch(&record);
        history.push(record);
        if config.early_stopping > 0 {
            let v = val_loss.unwrap_or(f64::INFINITY);
            if best.as_ref().is_none_or(|(b, _, _)| v < *b) {
                best = Some((v, epoch, model.snapshot()));
            } else if best
                .as_ref()
                .is_some_and(|(_, e, _)| epoch - e >= config.early_stopping)
            {
                break;
            }
        }
    }
    let best_epoch = match &best {
        Some((_, epoch, snapshot)) => {
            if !model.restore(snapshot) {
                return Err(TrainError::Restore { epoch: *epoch });
            }
            *epoch
        }
        None => history.len(),
    };
    let seconds = start.elapsed().as_secs_f64();
    Ok(FitReport {
        images_per_s: (x.rows * history.len()) as f64 / seconds.max(1e-9),
        history,
        best_epoch,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake model whose validation loss is scripted, to test the loop's bookkeeping.
    struct Scripted {
        step: usize,
        weight: f32,
        loss: f32,
    }

    impl Trainable for Scripted {
        fn train_batch(&mut self, _x: &[f32], y: &[f32]) -> (f32, Vec<f32>) {
            self.step += 1;
            (self.loss, y.iter().map(|t| t - 0.5).collect())
        }
        fn predict(&self, x: &Matrix) -> Vec<f64> {
            // Validation gets worse after the third epoch (3 batches per epoch).
            let epoch = self.step / 3;
            let p = if epoch <= 3 {
                0.5 + 0.1 * epoch as f64
            } else {
                0.6 - 0.1 * (epoch - 3) as f64
            };
            vec![p.clamp(0.01, 0.99); x.rows]
        }
        fn snapshot(&self) -> Vec<Vec<f32>> {
            vec![vec![self.step as f32]]
        }
        fn restore(&mut self, s: &[Vec<f32>]) -> bool {
            self.weight = s[0][0];
            true
        }
        fn set_learning_rate(&mut self, _lr: f64) {}
    }

    fn data(n: usize) -> (Matrix, Vec<u8>) {
        (
            Matrix {
                rows: n,
                cols: 1,
                data: vec![0.0; n],
            },
            vec![1; n],
        )
    }

    #[test]
    fn early_stopping_restores_the_best_epoch() {
        let (x, y) = data(9);
        let cfg = TrainConfig {
            epochs: 20,
            batch_size: 3,
            early_stopping: 2,
            validation_fraction: 0.1,
            ..Default::default()
        };
        let mut model = Scripted {
            step: 0,
            weight: -1.0,
            loss: 0.3,
        };
        let mut seen = 0;
        let report = fit(&mut model, &x, &y, Some((&x, &y)), &cfg, 0, &mut |_| {
            seen += 1
        })
        .unwrap();
        assert_eq!(report.best_epoch, 3);
        assert_eq!(
            report.history.len(),
            5,
            "stops after 2 epochs without improvement"
        );
        assert_eq!(seen, 5);
        assert_eq!(
            model.weight, 9.0,
            "weights of epoch 3 (after 9 steps) restored"
        );
        assert_eq!(report.history[0].train_accuracy, 1.0);
    }

    #[test]
    fn nan_loss_is_reported_as_divergence() {
        let (x, y) = data(4);
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 2,
            ..Default::default()
        };
        let mut model = Scripted {
            step: 0,
            weight: 0.0,
            loss: f32::NAN,
        };
        let err = fit(&mut model, &x, &y, None, &cfg, 0, &mut |_| {}).unwrap_err();
        assert!(matches!(err, TrainError::Diverged { epoch: 1, .. }));
    }
}
