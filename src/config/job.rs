//! A job: one fully resolved configuration with one seed and (for k-fold splits) one fold.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::schema::{ExperimentConfig, SplitKind};

#[derive(Debug, Clone)]
pub struct Job {
    /// Hash of the resolved config, seed and fold: the key of the results table.
    pub id: String,
    pub file: PathBuf,
    pub config: ExperimentConfig,
    pub seed: u64,
    pub fold: Option<usize>,
    /// The grid values that produced this job, as (dotted key, value).
    pub grid: Vec<(String, String)>,
}

#[derive(Serialize)]
struct Identity<'a> {
    config: &'a ExperimentConfig,
    seed: u64,
    fold: Option<usize>,
}

impl Job {
    /// One job per seed and fold of a resolved configuration.
    pub(crate) fn expand(
        file: &Path,
        config: ExperimentConfig,
        grid: Vec<(String, String)>,
    ) -> Vec<Job> {
        let folds: Vec<Option<usize>> = match config.data.split {
            SplitKind::Kfold | SplitKind::GroupKfold => (0..config.data.folds).map(Some).collect(),
            SplitKind::Given | SplitKind::Swapped => vec![None],
        };
        let mut jobs = Vec::new();
        for &seed in &config.train.seeds {
            let mut single = config.clone();
            single.train.seeds = vec![seed];
            for &fold in &folds {
                jobs.push(Job {
                    id: job_id(&single, seed, fold),
                    file: file.to_path_buf(),
                    config: single.clone(),
                    seed,
                    fold,
                    grid: grid.clone(),
                });
            }
        }
        jobs
    }

    /// The resolved config as TOML (its `train.seeds` is this job's seed alone), for the
    /// job's artefacts: it runs again as an experiment file of its own.
    pub fn resolved_toml(&self) -> String {
        let mut text = toml::to_string_pretty(&self.config).unwrap_or_default();
        text.push_str(&format!("\n# job {}\n", self.id));
        if let Some(fold) = self.fold {
            text.push_str(&format!("# fold = {fold}\n"));
        }
        text
    }
}

/// First 16 hex digits of SHA-256 over the canonical JSON of config, seed and fold.
fn job_id(config: &ExperimentConfig, seed: u64, fold: Option<usize>) -> String {
    let json = serde_json::to_string(&Identity { config, seed, fold }).expect("configs serialise");
    let digest = Sha256::digest(json.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The config as dotted keys and display values (`model.wavelet.family` → `db5`), the
/// columns that let rows of different experiments be compared.
pub fn flatten_config(config: &ExperimentConfig) -> Vec<(String, String)> {
    let value = serde_json::to_value(config).expect("configs serialise");
    let mut out = Vec::new();
    flatten_value("", &value, &mut out);
    out
}

fn flatten_value(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_value(&key, v, out);
            }
        }
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        serde_json::Value::Null => {}
        _ if prefix == "train.seeds" => {} // one seed per job: the `seed` column says it
        other => out.push((prefix.to_string(), other.to_string())),
    }
}
