//! The training options beyond epochs and batches: which optimiser, what the loss weighs,
//! and their checks. They turn into the engine's `Optimizer` and `Objective` here, so the
//! models only pass them through.

use serde::{Deserialize, Serialize};

use super::TrainConfig;
use crate::engine::{Objective, Optimizer, OptimizerKind};

/// `train.optimizer`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerName {
    #[default]
    Adam,
    Adamw,
    Sgd,
}

/// `train.schedule`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleName {
    #[default]
    Constant,
    Cosine,
    Step,
    Plateau,
}

/// `train.class_weight`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    #[default]
    None,
    Balanced,
}

impl TrainConfig {
    /// The engine's optimiser for these settings, at the initial learning rate.
    pub fn optimizer(&self) -> Optimizer {
        let kind = match self.optimizer {
            OptimizerName::Adam => OptimizerKind::Adam,
            OptimizerName::Adamw => OptimizerKind::AdamW,
            OptimizerName::Sgd => OptimizerKind::Sgd {
                momentum: self.momentum as f32,
                nesterov: self.nesterov,
            },
        };
        let mut opt = Optimizer::new(kind, self.lr, self.weight_decay);
        opt.clip_norm = self.clip_norm.map(|c| c as f32);
        opt
    }

    /// What the loss weighs, for training images with these 0/1 `labels`.
    pub fn objective(&self, labels: &[u8]) -> Objective {
        let class_weights = match self.class_weight {
            ClassWeight::None => None,
            ClassWeight::Balanced => {
                let n = labels.len() as f64;
                let ones = labels.iter().filter(|&&l| l == 1).count() as f64;
                let weight = |count: f64| (n / (2.0 * count.max(1.0))) as f32;
                Some([weight(n - ones), weight(ones)])
            }
        };
        Objective {
            label_smoothing: self.label_smoothing as f32,
            class_weights,
        }
    }

    /// Checks the optimiser, schedule and loss settings: the key and what is wrong.
    pub(crate) fn check_options(&self) -> Result<(), (String, String)> {
        let fail = |key: &str, message: String| Err((format!("train.{key}"), message));
        let sgd = self.optimizer == OptimizerName::Sgd;
        if !(0.0..1.0).contains(&self.momentum) {
            return fail(
                "momentum",
                format!("must be in [0, 1), got {}", self.momentum),
            );
        }
        if !sgd && (self.momentum != 0.0 || self.nesterov) {
            let key = if self.nesterov {
                "nesterov"
            } else {
                "momentum"
            };
            return fail(key, "applies to optimizer = \"sgd\" only".into());
        }
        if self.nesterov && self.momentum == 0.0 {
            return fail("nesterov", "needs train.momentum > 0".into());
        }
        if self.warmup_epochs >= self.epochs {
            return fail(
                "warmup_epochs",
                format!(
                    "must be fewer than train.epochs ({}), got {}",
                    self.epochs, self.warmup_epochs
                ),
            );
        }
        if self.step_epochs == 0 {
            return fail("step_epochs", "must be at least 1".into());
        }
        if self.plateau_patience == 0 {
            return fail("plateau_patience", "must be at least 1".into());
        }
        for (key, factor) in [
            ("step_factor", self.step_factor),
            ("plateau_factor", self.plateau_factor),
        ] {
            if !(factor > 0.0 && factor < 1.0) {
                return fail(key, format!("must be in (0, 1), got {factor}"));
            }
        }
        if self.schedule == ScheduleName::Plateau && self.validation_fraction == 0.0 {
            return fail(
                "schedule",
                "\"plateau\" watches the validation loss: set train.validation_fraction > 0".into(),
            );
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return fail(
                "label_smoothing",
                format!("must be in [0, 1), got {}", self.label_smoothing),
            );
        }
        if let Some(c) = self.clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return fail("clip_norm", format!("must be a positive number, got {c}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_options_name_their_key() {
        let base = TrainConfig::default();
        let cases = [
            (
                TrainConfig {
                    momentum: 0.9,
                    ..base.clone()
                },
                "train.momentum",
                "sgd",
            ),
            (
                TrainConfig {
                    optimizer: OptimizerName::Sgd,
                    momentum: 1.0,
                    ..base.clone()
                },
                "train.momentum",
                "[0, 1)",
            ),
            (
                TrainConfig {
                    optimizer: OptimizerName::Sgd,
                    nesterov: true,
                    ..base.clone()
                },
                "train.nesterov",
                "momentum > 0",
            ),
            (
                TrainConfig {
                    warmup_epochs: 50,
                    ..base.clone()
                },
                "train.warmup_epochs",
                "fewer",
            ),
            (
                TrainConfig {
                    step_factor: 1.5,
                    ..base.clone()
                },
                "train.step_factor",
                "(0, 1)",
            ),
            (
                TrainConfig {
                    plateau_patience: 0,
                    ..base.clone()
                },
                "train.plateau_patience",
                "1",
            ),
            (
                TrainConfig {
                    schedule: ScheduleName::Plateau,
                    ..base.clone()
                },
                "train.schedule",
                "validation_fraction",
            ),
            (
                TrainConfig {
                    label_smoothing: 1.0,
                    ..base.clone()
                },
                "train.label_smoothing",
                "[0, 1)",
            ),
            (
                TrainConfig {
                    clip_norm: Some(0.0),
                    ..base.clone()
                },
                "train.clip_norm",
                "positive",
            ),
        ];
        for (config, key, message) in cases {
            let (k, m) = config.check_options().unwrap_err();
            assert_eq!(k, key);
            assert!(m.contains(message), "{key}: {m}");
        }
        assert_eq!(base.check_options(), Ok(()));
    }

    #[test]
    fn balanced_weights_even_out_the_classes_and_options_reach_the_optimiser() {
        let config = TrainConfig {
            class_weight: ClassWeight::Balanced,
            label_smoothing: 0.1,
            optimizer: OptimizerName::Sgd,
            momentum: 0.5,
            nesterov: true,
            clip_norm: Some(2.0),
            ..TrainConfig::default()
        };
        let objective = config.objective(&[0, 0, 0, 1]);
        // n / (2 n_c): 4 / 6 for the three 0s, 4 / 2 for the one 1.
        assert_eq!(objective.class_weights, Some([4.0 / 6.0, 2.0]));
        assert_eq!(objective.label_smoothing, 0.1);
        let opt = config.optimizer();
        assert_eq!(
            opt.kind,
            OptimizerKind::Sgd {
                momentum: 0.5,
                nesterov: true
            }
        );
        assert_eq!(opt.clip_norm, Some(2.0));
        assert_eq!(
            TrainConfig::default().objective(&[0, 1]),
            Objective::default()
        );
    }
}
