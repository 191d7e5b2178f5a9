//! The learning rate step by step: linear warm-up, then constant, cosine, step or plateau
//! decay, as Keras's `CosineDecay` (with `warmup_target`), `ExponentialDecay` (staircase)
//! and `ReduceLROnPlateau` (min_delta 1e-4, no cooldown) compute it.

use super::options::ScheduleName;
use super::TrainConfig;

/// The learning rate of every step of a run.
#[derive(Debug, Clone)]
pub struct LearningRate {
    lr: f64,
    schedule: ScheduleName,
    steps_per_epoch: usize,
    warmup_steps: usize,
    decay_steps: usize,
    step_every: usize,
    step_factor: f64,
    plateau: Plateau,
}

/// `ReduceLROnPlateau`'s state: the best validation loss, epochs since, and the scale so far.
#[derive(Debug, Clone)]
struct Plateau {
    patience: usize,
    factor: f64,
    best: f64,
    wait: usize,
    scale: f64,
}

/// Keras's `min_delta`: an improvement smaller than this does not count.
const MIN_DELTA: f64 = 1e-4;

impl LearningRate {
    pub fn new(config: &TrainConfig, steps_per_epoch: usize) -> Self {
        let warmup_steps = config.warmup_epochs * steps_per_epoch;
        Self {
            lr: config.lr,
            schedule: config.schedule,
            steps_per_epoch,
            warmup_steps,
            decay_steps: (config.epochs * steps_per_epoch).saturating_sub(warmup_steps),
            step_every: config.step_epochs * steps_per_epoch,
            step_factor: config.step_factor,
            plateau: Plateau {
                patience: config.plateau_patience,
                factor: config.plateau_factor,
                best: f64::INFINITY,
                wait: 0,
                scale: 1.0,
            },
        }
    }

    /// The rate of step `step` (counted from 0 over the whole run).
    pub fn at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * step as f64 / self.warmup_steps as f64;
        }
        let s = step - self.warmup_steps;
        match self.schedule {
            ScheduleName::Constant => self.lr,
            ScheduleName::Cosine => {
                let progress = s.min(self.decay_steps) as f64 / self.decay_steps.max(1) as f64;
                self.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            ScheduleName::Step => {
                self.lr * self.step_factor.powi((s / self.step_every.max(1)) as i32)
            }
            ScheduleName::Plateau => self.lr * self.plateau.scale,
        }
    }

    /// The rate of batch `batch` of epoch `epoch` (both from 0).
    pub fn in_epoch(&self, epoch: usize, batch: usize) -> f64 {
        self.at(epoch * self.steps_per_epoch + batch)
    }

    /// Ends an epoch: the plateau schedule sees its validation loss.
    pub fn end_epoch(&mut self, val_loss: Option<f64>) {
        let (ScheduleName::Plateau, Some(loss)) = (self.schedule, val_loss) else {
            return;
        };
        let p = &mut self.plateau;
        if loss < p.best - MIN_DELTA {
            p.best = loss;
            p.wait = 0;
        } else {
            p.wait += 1;
            if p.wait >= p.patience {
                p.scale *= p.factor;
                p.wait = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each schedule against Keras (`tests/fixtures/keras_schedules.json`, written by
    /// `tools/gen_keras_fixtures.py`), to a relative 1e-6.
    #[test]
    fn schedules_match_keras() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/keras_schedules.json"
        );
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let spe = fixture["steps_per_epoch"].as_u64().unwrap() as usize;
        let steps: Vec<usize> = fixture["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_u64().unwrap() as usize)
            .collect();
        let base = TrainConfig {
            lr: fixture["lr"].as_f64().unwrap(),
            epochs: fixture["epochs"].as_u64().unwrap() as usize,
            validation_fraction: 0.2,
            ..TrainConfig::default()
        };
        let close = |what: &str, got: f64, want: f64| {
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1e-3),
                "{what}: microcal {got}, Keras {want}"
            );
        };
        let cases = [
            ("cosine_warmup2", ScheduleName::Cosine, 2, 10, 0.1),
            ("cosine", ScheduleName::Cosine, 0, 10, 0.1),
            ("step_3_0.5", ScheduleName::Step, 0, 3, 0.5),
        ];
        for (key, schedule, warmup_epochs, step_epochs, step_factor) in cases {
            let config = TrainConfig {
                schedule,
                warmup_epochs,
                step_epochs,
                step_factor,
                ..base.clone()
            };
            let rate = LearningRate::new(&config, spe);
            for (step, want) in steps.iter().zip(fixture[key].as_array().unwrap()) {
                close(
                    &format!("{key} step {step}"),
                    rate.at(*step),
                    want.as_f64().unwrap(),
                );
            }
        }
        let plateau = &fixture["plateau_2_0.5"];
        let config = TrainConfig {
            schedule: ScheduleName::Plateau,
            plateau_patience: 2,
            plateau_factor: 0.5,
            ..base
        };
        let mut rate = LearningRate::new(&config, spe);
        let losses = plateau["val_losses"].as_array().unwrap();
        let rates = plateau["rates"].as_array().unwrap();
        assert!(rates.first() != rates.last(), "the script drops the rate");
        for (epoch, (loss, want)) in losses.iter().zip(rates).enumerate() {
            close(
                &format!("plateau epoch {epoch}"),
                rate.in_epoch(epoch, 1),
                want.as_f64().unwrap(),
            );
            rate.end_epoch(loss.as_f64());
        }
    }
}
