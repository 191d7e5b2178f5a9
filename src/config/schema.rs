//! The experiment file's schema. Every struct rejects unknown keys, so a typo is an error
//! that lists the valid keys instead of a silently ignored setting.

use serde::{Deserialize, Serialize};

// The sections' types live with the code they configure; the file composes them.
pub use crate::data::{DataConfig, DataSource, SplitKind};
pub use crate::models::{MlpConfig, ModelConfig, ModelKind};
pub use crate::train::TrainConfig;
pub use crate::wavelet::WaveletConfig;

/// One experiment file, after the `[grid]` has been applied (the grid itself is handled on
/// the raw TOML table, see `config::grid`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Base files this one is built on, a path or a list applied in order, relative to this
    /// file; tables merge deeply, this file's values win (bases live in experiments/base/).
    #[serde(default, skip_serializing)]
    #[schemars(with = "Option<Vec<String>>")]
    pub extends: Option<toml::Value>,
    /// Experiment name; goes into every row of the results table.
    pub name: String,
    /// Free text about the experiment, kept with its jobs' configs; not part of any id.
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
    /// Dotted keys and the values to sweep, e.g. `"model.wavelet.level" = [3, 4]`: one job set
    /// per combination (the Cartesian product). A table value merges into the table there.
    /// (Expanded on the raw file, so a resolved config never has one.)
    #[serde(default, skip_serializing)]
    #[schemars(with = "Option<std::collections::BTreeMap<String, Vec<serde_json::Value>>>")]
    pub grid: Option<toml::Table>,
    /// A search over `[search.space]` instead of a grid (see the `[search]` section below).
    #[serde(default, skip_serializing)]
    #[schemars(with = "Option<std::collections::BTreeMap<String, serde_json::Value>>")]
    pub search: Option<toml::Table>,
}

/// `[launcher]`: settings of the launchers that submit jobs elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LauncherConfig {
    #[serde(default)]
    pub slurm: Option<SlurmSettings>,
}

/// `[launcher.slurm]`: what each array task asks Slurm for. Every field becomes an
/// `#SBATCH` line; `--sbatch` arguments on the command line come after them and win.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    /// `#SBATCH --partition`.
    pub partition: Option<String>,
    /// `#SBATCH --account`.
    pub account: Option<String>,
    /// Wall-clock limit of one task, as Slurm writes it (`30`, `2:00:00`, `1-00:00:00`).
    pub time: Option<String>,
    /// `#SBATCH --cpus-per-task`, 1 to 4,096.
    pub cpus_per_task: Option<u32>,
    /// Memory per node, as Slurm writes it (`4G`, `500M`).
    pub mem: Option<String>,
    /// At most this many array tasks run at once (Slurm's `--array=…%N`), 1 to 10,000.
    pub max_running: Option<u32>,
    /// Further sbatch options, each as `--option=value`.
    #[serde(default)]
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
