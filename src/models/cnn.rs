//! The CNN family: the engine's convolutional network behind the training-loop trait, with
//! seeded augmentation of each training batch.

use crate::data::augment::{augment_batch, Augment, UnknownAugment};
use crate::engine::Layer;
use crate::engine::{Adam, ConvNet};
use crate::rng::Rng;
use crate::train::TrainConfig;
use crate::train::{Matrix, Trainable};

pub struct CnnClassifier {
    net: ConvNet,
    adam: Adam,
    size: usize,
    augments: Vec<Augment>,
    rng: Rng,
}

impl CnnClassifier {
    /// A network with fresh weights; an augmentation name that does not parse is an error
    /// (the file's validation rejects them first).
    pub fn new(
        layers: &[Layer],
        size: usize,
        train: &TrainConfig,
        seed: u64,
    ) -> Result<Self, UnknownAugment> {
        Ok(Self {
            net: ConvNet::new(layers, size, seed),
            adam: Adam::new(train.lr, train.weight_decay),
            size,
            augments: train
                .augment
                .iter()
                .map(|a| Augment::parse(a))
                .collect::<Result<_, _>>()?,
            rng: Rng::derived(seed, "augment"),
        })
    }

    /// Rebuilds a trained network from saved values (see [`CnnClassifier::weights`]).
    pub fn from_weights(layers: &[Layer], size: usize, values: &[Vec<f32>]) -> Option<Self> {
        let mut model = Self::new(layers, size, &TrainConfig::default(), 0).ok()?;
        model.net.load_values(values).then_some(model)
    }

    pub fn parameter_count(&self) -> usize {
        self.net.parameter_count()
    }

    /// Named parameter values, for saving.
    pub fn weights(&self) -> Vec<(String, Vec<f32>)> {
        self.net.named_values()
    }

    /// Probabilities for every row, predicted in batches of 128.
    pub fn predict_rows(&self, x: &Matrix) -> Vec<f64> {
        x.data
            .chunks(128 * self.size * self.size)
            .flat_map(|c| self.net.predict_logits(c))
            .map(|logit| 1.0 / (1.0 + (-logit as f64).exp()))
            .collect()
    }
}

impl Trainable for CnnClassifier {
    fn train_batch(&mut self, x: &[f32], y: &[f32]) -> (f32, Vec<f32>) {
        if self.augments.is_empty() {
            return self.net.train_batch(x, y, &mut self.adam);
        }
        let mut batch = x.to_vec();
        augment_batch(&self.augments, &mut batch, self.size, &mut self.rng);
        self.net.train_batch(&batch, y, &mut self.adam)
    }

    fn predict(&self, x: &Matrix) -> Vec<f64> {
        self.predict_rows(x)
    }

    fn snapshot(&self) -> Vec<Vec<f32>> {
        self.net
            .named_values()
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    fn restore(&mut self, snapshot: &[Vec<f32>]) -> bool {
        self.net.load_values(snapshot)
    }
}
