//! The experiment file's schema. Every struct rejects unknown keys, so a typo is an error
//! that lists the valid keys instead of a silently ignored setting.

use serde::{Deserialize, Serialize};

// The sections' types live with the code they configure; the file composes them.
pub use crate::data::{DataConfig, DataSource, SplitKind};
pub use crate::models::{MlpConfig, ModelConfig, ModelKind};
pub use crate::train::TrainConfig;
pub use crate::wavelet::WaveletConfig;

/// One experiment file, after the `[grid]` has been applied (the grid itself is handled on
/// the raw TOML table, see [`super::grid`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Base files this one is built on (see `config::extends`); merged before this struct
    /// is read, so it is only present while a single file is checked on its own.
    #[serde(default, skip_serializing)]
    pub extends: Option<toml::Value>,
    /// Experiment name; goes into every row of the results table.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub data: DataConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default, skip_serializing)]
    pub output: OutputConfig,
    /// How `--launcher` submits the jobs (resources, account); never part of a job's id.
    #[serde(default, skip_serializing)]
    pub launcher: LauncherConfig,
    /// The `[grid]` as written. Only present while the file itself is checked; the grid is
    /// expanded on the raw table (see `config::grid`), so a resolved config never has one.
    #[serde(default, skip_serializing)]
    pub grid: Option<toml::Table>,
    /// The `[search]` as written, likewise (see `config::search`).
    #[serde(default, skip_serializing)]
    pub search: Option<toml::Table>,
}

/// `[launcher]`: settings of the launchers that submit jobs elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LauncherConfig {
    #[serde(default)]
    pub slurm: Option<SlurmSettings>,
}

/// `[launcher.slurm]`: what each array task asks Slurm for. Every field becomes an
/// `#SBATCH` line; `--sbatch` arguments on the command line come after them and win.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Wall-clock limit of one task, as Slurm writes it (`30`, `2:00:00`, `1-00:00:00`).
    pub time: Option<String>,
    pub cpus_per_task: Option<u32>,
    /// Memory per node, as Slurm writes it (`4G`, `500M`).
    pub mem: Option<String>,
    /// Further sbatch options, each as `--option=value`.
    #[serde(default)]
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Results table (CSV); relative paths resolve against the experiment file's folder.
    #[serde(default = "default_results")]
    pub results: String,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            results: default_results(),
        }
    }
}

fn default_results() -> String {
    "results/results.csv".to_string()
}
