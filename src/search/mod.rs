//! Search beyond the grid: the `[search]` table (random or TPE sampling of a space of dotted
//! keys, optional successive halving with epochs as the budget), its checks, and the
//! samplers, the first round's jobs (`plan`), and the rounds (`rounds`), driven through a
//! small trait that the runner implements (`runner::search`).
//!
//! Trials are compared on validation data only (`data.evaluate = "validation"`: the hold-out
//! of the training part, or the folds); the best configuration is scored on Test once, after
//! the last round.

mod halving;
mod plan;
mod rounds;
mod sampler;
mod tpe;

pub use halving::{promoted, rungs};
pub use plan::{first_round_jobs, planned_jobs, rung_epochs, rung_values, trial_values};
pub use rounds::{run_rounds, RunJobs};
pub use sampler::{propose, Observation};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use toml::Value;

/// How trials are proposed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Independent draws from each key's distribution.
    Random,
    /// Tree-structured Parzen estimator (Bergstra et al. 2011), one per key (the `tpe`
    /// crate's algorithm, ported); random for the first 10 trials (`STARTUP_TRIALS`), as
    /// Optuna.
    #[default]
    Tpe,
}

/// Random trials before TPE models the results (Optuna's `n_startup_trials`).
pub const STARTUP_TRIALS: usize = 10;

/// Whether larger is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Maximize,
    Minimize,
}

/// The metrics a search can compare trials on: columns of a row, on validation data.
pub const METRICS: &[&str] = &[
    "auc",
    "accuracy",
    "f1",
    "precision",
    "recall",
    "specificity",
    "loss",
];

/// The `[search]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// How trials are proposed.
    #[serde(default)]
    pub method: Method,
    /// Trials in all (each a job per seed and fold, and per rung with halving).
    pub trials: usize,
    /// Seed of the sampler: the same seed and rows propose the same trials.
    #[serde(default)]
    pub seed: u64,
    /// The row metric trials are compared on (validation data): auc, accuracy, f1, precision, recall, specificity or loss.
    #[serde(default = "default_metric")]
    pub metric: String,
    /// Default: maximize, minimize for "loss".
    #[serde(default)]
    pub direction: Option<Direction>,
    /// Trials proposed together from the same results (a round); they run in parallel.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Dotted key → distribution, e.g. `"train.lr" = { log_uniform = [1e-4, 1e-2] }`.
    pub space: BTreeMap<String, Distribution>,
    /// Successive halving on epochs (see `[search.halving]`); none when unset.
    #[serde(default)]
    pub halving: Option<Halving>,
}

fn default_metric() -> String {
    "auc".to_string()
}
fn default_batch() -> usize {
    4
}

/// One key's distribution as written: exactly one of the forms.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    /// `[low, high]`: a float drawn uniformly.
    pub uniform: Option<[f64; 2]>,
    /// `[low, high]`: a float drawn uniformly on a log scale.
    pub log_uniform: Option<[f64; 2]>,
    /// `[low, high]`: an integer, both ends included.
    pub int: Option<[i64; 2]>,
    /// With `int`: sample on a log scale.
    #[serde(default)]
    pub log: bool,
    /// A list of values of any type, one drawn.
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub choice: Option<Vec<Value>>,
}

/// `[search.halving]`: successive halving with epochs as the budget (see [`rungs`]).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Halving {
    /// Epochs of the first rung.
    pub min_epochs: usize,
    /// Each rung keeps 1/factor of the trials and trains factor times longer.
    #[serde(default = "default_factor")]
    pub factor: usize,
}

fn default_factor() -> usize {
    3
}

/// A checked distribution.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    Uniform(f64, f64),
    LogUniform(f64, f64),
    Int { low: i64, high: i64, log: bool },
    Choice(Vec<Value>),
}

/// What is wrong with a `[search]` table; the message names the key.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("`{key}` {message}")]
pub struct SearchError {
    pub key: String,
    pub message: String,
}

fn error(key: impl Into<String>, message: impl Into<String>) -> SearchError {
    SearchError {
        key: key.into(),
        message: message.into(),
    }
}

/// Most trials a file may ask for.
pub const MAX_TRIALS: usize = 10_000;

impl SearchConfig {
    /// Parses and checks the `[search]` table (the keys of its space are checked against the
    /// experiment's schema by the loader, which can apply them).
    pub fn parse(table: &toml::Table) -> Result<Self, SearchError> {
        let config: SearchConfig = Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| error("search", e.message().trim_end()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), SearchError> {
        if !(1..=MAX_TRIALS).contains(&self.trials) {
            return Err(error(
                "search.trials",
                format!("must be between 1 and {MAX_TRIALS}, got {}", self.trials),
            ));
        }
        if !(1..=1000).contains(&self.batch) {
            return Err(error(
                "search.batch",
                format!("must be between 1 and 1000, got {}", self.batch),
            ));
        }
        if !METRICS.contains(&self.metric.as_str()) {
            return Err(error(
                "search.metric",
                format!(
                    "must be one of {}, got \"{}\"",
                    METRICS.join(", "),
                    self.metric
                ),
            ));
        }
        if self.space.is_empty() {
            return Err(error(
                "search.space",
                "must list at least one key to search",
            ));
        }
        for (key, dist) in &self.space {
            dist.domain(key)?;
            if key == "train.epochs" && self.halving.is_some() {
                return Err(error(
                    format!("search.space.\"{key}\""),
                    "is the halving budget; search it or halve on it, not both",
                ));
            }
            if key == "name" || key.starts_with("search") || key.starts_with("grid") {
                return Err(error(
                    format!("search.space.\"{key}\""),
                    "cannot be searched",
                ));
            }
        }
        if let Some(h) = &self.halving {
            if h.min_epochs == 0 {
                return Err(error("search.halving.min_epochs", "must be at least 1"));
            }
            if h.factor < 2 {
                return Err(error(
                    "search.halving.factor",
                    format!("must be at least 2, got {}", h.factor),
                ));
            }
        }
        Ok(())
    }

    pub fn direction(&self) -> Direction {
        self.direction.unwrap_or(if self.metric == "loss" {
            Direction::Minimize
        } else {
            Direction::Maximize
        })
    }

    /// The checked domain of every key, in key order.
    pub fn domains(&self) -> Vec<(String, Domain)> {
        self.space
            .iter()
            .map(|(k, d)| (k.clone(), d.domain(k).expect("checked when parsed")))
            .collect()
    }
}

impl Distribution {
    /// The domain this distribution describes; errors name `search.space."<key>"`.
    pub fn domain(&self, key: &str) -> Result<Domain, SearchError> {
        let name = format!("search.space.\"{key}\"");
        let forms = [
            self.uniform.is_some(),
            self.log_uniform.is_some(),
            self.int.is_some(),
            self.choice.is_some(),
        ];
        if forms.iter().filter(|&&f| f).count() != 1 {
            return Err(error(
                name,
                "must give exactly one of { uniform = [low, high] }, { log_uniform = [low, high] }, { int = [low, high] } (optionally log = true), { choice = [...] }",
            ));
        }
        if self.log && self.int.is_none() {
            return Err(error(
                name,
                "`log = true` goes with `int`; use log_uniform for numbers",
            ));
        }
        let ordered = |low: f64, high: f64| {
            if low.is_finite() && high.is_finite() && low < high {
                Ok(())
            } else {
                Err(error(
                    name.clone(),
                    format!("needs finite low < high, got [{low}, {high}]"),
                ))
            }
        };
        let positive = |low: f64| {
            if low > 0.0 {
                Ok(())
            } else {
                Err(error(
                    name.clone(),
                    format!("a log scale needs a positive range, got low = {low}"),
                ))
            }
        };
        Ok(if let Some([low, high]) = self.uniform {
            ordered(low, high)?;
            Domain::Uniform(low, high)
        } else if let Some([low, high]) = self.log_uniform {
            ordered(low, high)?;
            positive(low)?;
            Domain::LogUniform(low, high)
        } else if let Some([low, high]) = self.int {
            ordered(low as f64, high as f64)?;
            if self.log {
                positive(low as f64)?;
            }
            Domain::Int {
                low,
                high,
                log: self.log,
            }
        } else {
            let choices = self.choice.clone().unwrap_or_default();
            if choices.is_empty() {
                return Err(error(name, "must list at least one choice"));
            }
            Domain::Choice(choices)
        })
    }
}

impl Domain {
    /// A value every key can be checked with when the file is read: the low end, or the
    /// first choice.
    pub fn example(&self) -> Value {
        match self {
            Domain::Uniform(low, _) | Domain::LogUniform(low, _) => Value::Float(*low),
            Domain::Int { low, .. } => Value::Integer(*low),
            Domain::Choice(c) => c[0].clone(),
        }
    }
}

#[cfg(test)]
mod tests;
