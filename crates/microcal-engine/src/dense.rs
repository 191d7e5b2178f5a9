//! A fully connected network (ReLU hidden layers, one output logit) on dfdx tensors with
//! run-time shapes.

use dfdx::prelude::*;

use super::glorot_uniform;
use super::loss::{bce_loss, Objective};
use super::optimizer::{Optimizer, Param};
use crate::rng::Rng;

/// A fully connected layer: `x · W + b`.
pub(crate) struct Dense {
    pub(crate) weight: Param<(usize, usize)>,
    pub(crate) bias: Param<(usize,)>,
}

impl Dense {
    /// Glorot-uniform weights, zero bias.
    pub(crate) fn new(dev: &Cpu, fan_in: usize, fan_out: usize, rng: &mut Rng) -> Self {
        Dense {
            weight: Param::new(
                dev,
                glorot_uniform(fan_in, fan_out, fan_in * fan_out, rng),
                (fan_in, fan_out),
                true,
            ),
            bias: Param::new(dev, vec![0.0; fan_out], (fan_out,), false),
        }
    }

    pub(crate) fn forward<T: Tape<f32, Cpu>>(
        &self,
        h: Tensor<(usize, usize), f32, Cpu, T>,
    ) -> Tensor<(usize, usize), f32, Cpu, T> {
        let rows = h.shape().0;
        let out = self.bias.tensor.shape().0;
        h.matmul(self.weight.tensor.clone())
            + self
                .bias
                .tensor
                .clone()
                .broadcast_like::<_, Axis<0>>(&(rows, out))
    }
}

/// Multilayer perceptron for binary classification: `inputs → hidden… → 1 logit`.
pub struct DenseNet {
    dev: Cpu,
    layers: Vec<Dense>,
    inputs: usize,
    dropout: f32,
    objective: Objective,
}

impl DenseNet {
    /// Glorot-uniform weights and zero biases from `seed`; the seed also drives dropout.
    pub fn new(inputs: usize, hidden: &[usize], dropout: f64, seed: u64) -> Self {
        let dev = Cpu::seed_from_u64(seed);
        let mut rng = Rng::derived(seed, "dense-init");
        let mut widths = vec![inputs];
        widths.extend_from_slice(hidden);
        widths.push(1);
        let layers = widths
            .windows(2)
            .map(|w| Dense::new(&dev, w[0], w[1], &mut rng))
            .collect();
        Self {
            dev,
            layers,
            inputs,
            dropout: dropout as f32,
            objective: Objective::default(),
        }
    }

    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weight.len() + l.bias.len())
            .sum()
    }

    /// Sets what the training loss weighs (plain binary cross-entropy by default).
    pub fn set_objective(&mut self, objective: Objective) {
        self.objective = objective;
    }

    /// One optimiser step on a mini-batch (`x`: rows × inputs, `y`: 0/1 targets). Returns
    /// the mean loss and the logits the step saw.
    pub fn train_batch(&mut self, x: &[f32], y: &[f32], opt: &mut Optimizer) -> (f32, Vec<f32>) {
        let rows = y.len();
        let input = self.dev.tensor_from_vec(x.to_vec(), (rows, self.inputs));
        let mut h = input.traced(Gradients::leaky());
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = h.relu();
                if self.dropout > 0.0 {
                    h = h.dropout(self.dropout);
                }
            }
        }
        let logits = h.as_vec();
        let (loss_value, loss) = bce_loss(h, y, 1.0, &self.objective);
        let mut grads = loss.backward();
        let mut values: Vec<Vec<f32>> = self
            .layers
            .iter()
            .flat_map(|l| [l.weight.take_grad(&mut grads), l.bias.take_grad(&mut grads)])
            .collect();
        opt.next_step();
        opt.clip(&mut values);
        let mut values = values.iter();
        for layer in &mut self.layers {
            layer
                .weight
                .step_with(values.next().expect("one per parameter"), opt);
            layer
                .bias
                .step_with(values.next().expect("one per parameter"), opt);
        }
        (loss_value, logits)
    }

    /// Logits for `x` (rows × inputs), without dropout.
    pub fn predict_logits(&self, x: &[f32]) -> Vec<f32> {
        let rows = x.len() / self.inputs;
        let mut h = self.dev.tensor_from_vec(x.to_vec(), (rows, self.inputs));
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = h.relu();
            }
        }
        h.as_vec()
    }

    /// Copies of every parameter, for keeping the best epoch.
    pub fn snapshot(&self) -> Vec<Vec<f32>> {
        self.layers
            .iter()
            .flat_map(|l| [l.weight.values(), l.bias.values()])
            .collect()
    }

    /// Restores parameters taken by [`DenseNet::snapshot`].
    /// Puts back values taken by `snapshot`; false (nothing changed) if their number or
    /// sizes do not fit this network.
    pub fn restore(&mut self, snapshot: &[Vec<f32>]) -> bool {
        let fits = snapshot.len() == 2 * self.layers.len()
            && self
                .layers
                .iter()
                .zip(snapshot.chunks(2))
                .all(|(layer, pair)| {
                    pair[0].len() == layer.weight.len() && pair[1].len() == layer.bias.len()
                });
        if fits {
            for (layer, pair) in self.layers.iter_mut().zip(snapshot.chunks(2)) {
                layer.weight.set_values(&pair[0]);
                layer.bias.set_values(&pair[1]);
            }
        }
        fits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two Gaussian blobs in 4-D: a network must separate them after a few hundred steps.
    #[test]
    fn learns_a_separable_problem_and_is_deterministic() {
        let mut rng = Rng::new(4);
        let n = 128;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let label = (i % 2) as f32;
            for _ in 0..4 {
                x.push((rng.normal() + 2.0 * label as f64 - 1.0) as f32);
            }
            y.push(label);
        }
        let run = || {
            let mut net = DenseNet::new(4, &[8], 0.1, 7);
            let mut adam = Optimizer::adam(0.01, 0.0);
            let mut last = 0.0;
            for _ in 0..60 {
                for b in 0..4 {
                    let (l, _) = net.train_batch(
                        &x[b * 128..(b + 1) * 128],
                        &y[b * 32..(b + 1) * 32],
                        &mut adam,
                    );
                    last = l;
                }
            }
            (last, net.predict_logits(&x))
        };
        let (loss, logits) = run();
        assert!(loss < 0.2, "loss {loss}");
        let correct = logits
            .iter()
            .zip(&y)
            .filter(|(l, t)| (**l > 0.0) == (**t > 0.5))
            .count();
        assert!(correct as f64 / n as f64 > 0.95);
        assert_eq!(run().1, logits, "same seed, same numbers");
    }

    #[test]
    fn counts_parameters_and_restores_snapshots() {
        let mut net = DenseNet::new(10, &[5], 0.0, 0);
        assert_eq!(net.parameter_count(), 10 * 5 + 5 + 5 + 1);
        let snap = net.snapshot();
        let x = vec![0.5; 10];
        let before = net.predict_logits(&x);
        let mut adam = Optimizer::adam(0.1, 0.0);
        net.train_batch(&x, &[1.0], &mut adam);
        assert_ne!(net.predict_logits(&x), before);
        assert!(net.restore(&snap));
        assert_eq!(net.predict_logits(&x), before);
    }
}
