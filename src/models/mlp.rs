//! The wavelet family's MLP: the engine's dense network behind the training-loop trait.

use serde::{Deserialize, Serialize};

use crate::engine::{DenseNet, Optimizer};
use crate::train::TrainConfig;
use crate::train::{Matrix, Trainable};

pub struct MlpClassifier {
    net: DenseNet,
    opt: Optimizer,
}

impl MlpClassifier {
    /// A network with fresh weights, trained with `train`'s optimiser on a loss weighed for
    /// training `labels`.
    pub fn new(
        inputs: usize,
        mlp: &MlpConfig,
        train: &TrainConfig,
        labels: &[u8],
        seed: u64,
    ) -> Self {
        let mut net = DenseNet::new(inputs, &mlp.hidden, mlp.dropout, seed);
        net.set_objective(train.objective(labels));
        Self {
            net,
            opt: train.optimizer(),
        }
    }

    pub fn parameter_count(&self) -> usize {
        self.net.parameter_count()
    }

    /// Probabilities for every row, predicted in chunks to bound memory.
    pub fn predict_rows(&self, x: &Matrix) -> Vec<f64> {
        let chunk = 512 * x.cols.max(1);
        x.data
            .chunks(chunk)
            .flat_map(|c| self.net.predict_logits(c))
            .map(|logit| 1.0 / (1.0 + (-logit as f64).exp()))
            .collect()
    }
}

impl Trainable for MlpClassifier {
    fn train_batch(&mut self, x: &[f32], y: &[f32]) -> (f32, Vec<f32>) {
        self.net.train_batch(x, y, &mut self.opt)
    }

    fn predict(&self, x: &Matrix) -> Vec<f64> {
        self.predict_rows(x)
    }

    fn snapshot(&self) -> Vec<Vec<f32>> {
        self.net.snapshot()
    }

    fn restore(&mut self, snapshot: &[Vec<f32>]) -> bool {
        self.net.restore(snapshot)
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.opt.lr = lr as f32;
    }
}

/// The `[model.mlp]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
