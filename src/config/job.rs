//! A job: one fully resolved configuration with one seed and (for k-fold splits) one fold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::identity::job_id;
use super::schema::{ExperimentConfig, SplitKind};
use crate::models::ModelSpec;

#[derive(Debug, Clone)]
pub struct Job {
    /// Hash of what the job's numbers depend on (see `config::identity`): the key of the
    /// results table.
    pub id: String,
    pub file: PathBuf,
    pub config: ExperimentConfig,
    /// The typed model `config.model` describes, parsed when the file was read.
    pub model: ModelSpec,
    pub seed: u64,
    pub fold: Option<usize>,
    /// The grid values that produced this job, as (dotted key, value).
    pub grid: Vec<(String, String)>,
    /// The data's identity (content fingerprint or generator version), part of the id.
    pub data_identity: String,
    /// For a search's jobs: which trial, rung and role (recorded in the row, not the id).
    pub search: Option<SearchTag>,
}

/// A search job's place in its search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchTag {
    pub trial: usize,
    /// The halving rung (0 = fewest epochs), when the search halves.
    pub rung: Option<usize>,
    pub role: SearchRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchRole {
    /// Trained and compared on validation data.
    Trial,
    /// The best trial's configuration, scored once on Test after the search.
    Result,
}

impl SearchRole {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchRole::Trial => "trial",
            SearchRole::Result => "result",
        }
    }
}

impl Job {
    /// One job per seed and fold of a resolved configuration.
    pub(crate) fn expand(
        file: &Path,
        config: ExperimentConfig,
        model: ModelSpec,
        grid: Vec<(String, String)>,
        data_identity: &str,
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
                    id: job_id(&single, data_identity, seed, fold),
                    file: file.to_path_buf(),
                    config: single.clone(),
                    model: model.clone(),
                    seed,
                    fold,
                    grid: grid.clone(),
                    data_identity: data_identity.to_string(),
                    search: None,
                });
            }
        }
        jobs
    }

    /// The resolved config as TOML (its `train.seeds` is this job's seed alone), for the
    /// job's artefacts in `run_dir`: it runs again as an experiment file of its own, so its
    /// data root is written relative to that folder.
    pub fn resolved_toml(&self, run_dir: &Path) -> String {
        let mut config = self.config.clone();
        if let Some(root) = &config.data.root_dir {
            config.data.root = Some(relative_path(run_dir, root));
        }
        let mut text = toml::to_string_pretty(&config).unwrap_or_default();
        text.push_str(&format!("\n# job {}\n", self.id));
        if let Some(fold) = self.fold {
            text.push_str(&format!("# fold = {fold}\n"));
        }
        text
    }
}

/// `to` as a path relative to the folder `from` (both made absolute against the current
/// folder, symbolic links resolved where they exist), with `/` separators.
pub fn relative_path(from: &Path, to: &Path) -> String {
    let absolute = |p: &Path| {
        let p = std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or(p.to_path_buf());
        p.canonicalize().unwrap_or(p)
    };
    let (from, to) = (absolute(from), absolute(to));
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

/// The config as dotted keys and display values (`model.wavelet.family` → `db5`), the
/// columns that let rows of different experiments be compared. `train.seeds` is left out:
/// a job has one seed, and the `seed` column says it.
pub fn flatten_config(config: &ExperimentConfig) -> Vec<(String, String)> {
    dotted_config(config)
        .into_iter()
        .filter(|(key, _)| key != "train.seeds")
        .map(|(key, value)| match value {
            Value::String(s) => (key, s),
            other => (key, other.to_string()),
        })
        .collect()
}

/// The config as dotted keys with canonical JSON values (zero without a sign); unset
/// options are absent.
pub(crate) fn dotted_config(config: &ExperimentConfig) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    flatten(
        "",
        &serde_json::to_value(config).expect("configs serialise"),
        &mut out,
    );
    out
}

fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => {}
        other => {
            out.insert(prefix.to_string(), canonical(other));
        }
    }
}

fn canonical(value: &Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() && n.as_f64() == Some(0.0) => Value::from(0.0),
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        other => other.clone(),
    }
}
