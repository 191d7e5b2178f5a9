//! The CNN family: the engine's convolutional network behind the training-loop trait, with
//! seeded augmentation of each training batch and the optional wavelet front end.

use super::dwt_front::DwtFront;
use super::layers::Network;
use crate::data::augment::{augment_batch, Augment, UnknownAugment};
use crate::engine::{ConvNet, Optimizer};
use crate::rng::Rng;
use crate::train::TrainConfig;
use crate::train::{Matrix, Trainable};

pub struct CnnClassifier {
    net: ConvNet,
    opt: Optimizer,
    size: usize,
    front: Option<DwtFront>,
    augments: Vec<Augment>,
    rng: Rng,
}

impl CnnClassifier {
    /// A network with fresh weights, trained with `train`'s optimiser on a loss weighed for
    /// training `labels`; an augmentation name that does not parse is an error (the file's
    /// validation rejects them first).
    pub fn new(
        network: &Network,
        size: usize,
        train: &TrainConfig,
        labels: &[u8],
        seed: u64,
    ) -> Result<Self, UnknownAugment> {
        let mut net = ConvNet::with_input(&network.layers, network.input(size), seed);
        net.set_objective(train.objective(labels));
        Ok(Self {
            net,
            opt: train.optimizer(),
            size,
            front: network.front_end(size),
            augments: train
                .augment
                .iter()
                .map(|a| Augment::parse(a))
                .collect::<Result<_, _>>()?,
            rng: Rng::derived(seed, "augment"),
        })
    }

    /// Rebuilds a trained network from saved values (see [`CnnClassifier::weights`]).
    pub fn from_weights(network: &Network, size: usize, values: &[Vec<f32>]) -> Option<Self> {
        let mut model = Self::new(network, size, &TrainConfig::default(), &[], 0).ok()?;
        model.net.load_values(values).then_some(model)
    }

    pub fn parameter_count(&self) -> usize {
        self.net.parameter_count()
    }

    /// Named parameter values, for saving.
    pub fn weights(&self) -> Vec<(String, Vec<f32>)> {
        self.net.named_values()
    }

    /// What the network sees of `images` (size² pixels each): the pixels, or their wavelet
    /// sub-bands.
    fn network_input<'a>(&self, images: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
        match &self.front {
            None => images.into(),
            Some(front) => front
                .apply(images, self.size)
                .expect("checked when the file was read: the level fits the images")
                .into(),
        }
    }

    /// Probabilities for every row, predicted in batches of 128.
    pub fn predict_rows(&self, x: &Matrix) -> Vec<f64> {
        x.data
            .chunks(128 * self.size * self.size)
            .flat_map(|c| self.net.predict_logits(&self.network_input(c)))
            .map(|logit| 1.0 / (1.0 + (-logit as f64).exp()))
            .collect()
    }
}

impl Trainable for CnnClassifier {
    fn train_batch(&mut self, x: &[f32], y: &[f32]) -> (f32, Vec<f32>) {
        let augmented = (!self.augments.is_empty()).then(|| {
            let mut batch = x.to_vec();
            augment_batch(&self.augments, &mut batch, self.size, &mut self.rng);
            batch
        });
        let input = self.network_input(augmented.as_deref().unwrap_or(x));
        self.net.train_batch(&input, y, &mut self.opt)
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

    fn set_learning_rate(&mut self, lr: f64) {
        self.opt.lr = lr as f32;
    }
}
