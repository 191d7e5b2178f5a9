//! Loading an experiment file, applying `--set` overrides, and expanding the `[grid]`.
//!
//! The grid works on the raw TOML table: each combination writes its values at dotted paths
//! and the result is deserialised into the typed schema, so a grid can sweep any key.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::extends::merge;
use super::job::Job;
use super::schema::{DataConfig, ExperimentConfig};
use super::validate::{resolve, validate};
use super::ConfigError;
use crate::models::ModelSpec;

/// A resolved configuration and the grid values (dotted key, value) that produced it.
pub type ResolvedCombination = (ExperimentConfig, Vec<(String, String)>);

/// A loaded experiment file: the base table plus the grid axes.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub path: PathBuf,
    base: Table,
    /// Error from deserialising the file (or one of its bases) on its own, with the file
    /// that has it and its line and column; reported if the grid does not supply what is
    /// missing.
    base_error: Option<(PathBuf, String)>,
    /// The resolved file as one table (bases merged, `--set` applied), for `--show`.
    composed: Table,
    axes: Vec<(String, Vec<Value>)>,
    /// `--set` values, written after each grid combination so that they always win.
    overrides: Vec<(String, Value)>,
    /// Results table named by the file (resolved against its folder).
    pub results_path: PathBuf,
    /// The `[search]` table as written, parsed and checked by `search::SearchConfig::of`.
    pub search: Option<Table>,
}

/// Parses `key=value` from the command line; the value is TOML (`3`, `[2, 3]`, `"db5"`) or,
/// failing that, a bare string (`family=db5`).
pub fn parse_override(spec: &str) -> Result<(String, Value), ConfigError> {
    let (key, raw) = spec.split_once('=').ok_or_else(|| ConfigError::Override {
        spec: spec.to_string(),
        message: "expected KEY=VALUE, e.g. --set model.wavelet.family=db5".to_string(),
    })?;
    let key = key.trim().to_string();
    if key.is_empty() {
        return Err(ConfigError::Override {
            spec: spec.to_string(),
            message: "the key is empty".to_string(),
        });
    }
    let raw = raw.trim();
    let value = toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()));
    Ok((key, value))
}

impl Experiment {
    /// Reads and checks `path`; `overrides` (from `--set`) replace base values and grid axes.
    pub fn load(path: &Path, overrides: &[(String, Value)]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::from_str(&text, path, overrides)
    }

    /// As [`Experiment::load`], from text already read.
    pub fn from_str(
        text: &str,
        path: &Path,
        overrides: &[(String, Value)],
    ) -> Result<Self, ConfigError> {
        let (mut base, mut sources) = super::extends::compose(text, path)?;
        if !base.contains_key("name") {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                key: "name".to_string(),
                message: "missing: a file without `name` is a base for experiments to extend (bases live in experiments/base/), not an experiment to run".to_string(),
            });
        }
        let mut composed = base.clone();
        let mut axes = take_grid(&mut base, path)?;
        let search = match base.remove("search") {
            None => None,
            Some(Value::Table(table)) => Some(table),
            Some(_) => {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    key: "search".into(),
                    message: "must be a table: [search]".into(),
                })
            }
        };
        if search.is_some() && !axes.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                key: "search".to_string(),
                message: "a file has a [grid] or a [search], not both".to_string(),
            });
        }
        for (key, value) in overrides {
            if key == "search" || key.starts_with("search.") {
                return Err(ConfigError::Override {
                    spec: format!("{key}={value}"),
                    message: "--set cannot change [search]; edit the file".into(),
                });
            }
            if key == "extends" {
                return Err(ConfigError::Override {
                    spec: format!("{key}={value}"),
                    message: "--set cannot change `extends`: bases are merged before --set applies; edit the file".into(),
                });
            }
            if key == "grid" || key.starts_with("grid.") {
                return Err(ConfigError::Override {
                    spec: format!("{key}={value}"),
                    message: "--set cannot change [grid]; set the key itself (--set model.wavelet.family=db2 replaces that axis), or edit the file".into(),
                });
            }
            // An axis at or below an overridden key has nothing left to vary.
            axes.retain(|(k, _)| k != key && !k.starts_with(&format!("{key}.")));
            let set_err = |e: NotATable| ConfigError::Override {
                spec: format!("{key}={value}"),
                message: e.to_string(),
            };
            set_dotted(&mut base, key, value.clone()).map_err(set_err)?;
            if let Some(Value::Table(grid)) = composed.get_mut("grid") {
                grid.retain(|k, _| k != key && !k.starts_with(&format!("{key}.")));
            }
            set_dotted(&mut composed, key, value.clone()).map_err(set_err)?;
        }
        let base_error = if sources.is_empty() {
            toml::from_str::<ExperimentConfig>(text)
                .err()
                .map(|e| (path.to_path_buf(), e.to_string().trim_end().to_string()))
        } else {
            sources.push(super::extends::Source {
                path: path.to_path_buf(),
                text: text.to_string(),
            });
            super::extends::first_local_error(&sources)
        };
        let results = ExperimentConfig::deserialize_table(&base)
            .map(|c| c.output.results)
            .unwrap_or_else(|_| super::schema::OutputConfig::default().results);
        let exp = Experiment {
            path: path.to_path_buf(),
            base,
            base_error,
            composed,
            axes,
            overrides: overrides.to_vec(),
            results_path: normalize(&base_dir(path).join(results)),
            search,
        };
        let too_many = |key: &str, what: String| {
            ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message: format!(
                "{what}; a file may declare at most {MAX_JOBS} jobs (split the sweep into several files)"
            ),
        }
        };
        let combinations = exp
            .axes
            .iter()
            .fold(1u64, |n, (_, values)| n.saturating_mul(values.len() as u64));
        if combinations > MAX_JOBS {
            return Err(too_many(
                "grid",
                format!("expands to {combinations} combinations"),
            ));
        }
        // Resolve every combination now so that errors surface before anything runs.
        let jobs: u64 = exp
            .configs()?
            .iter()
            .map(|(c, _)| {
                let folds = match c.data.split {
                    crate::data::SplitKind::Kfold | crate::data::SplitKind::GroupKfold => {
                        c.data.folds
                    }
                    _ => 1,
                };
                (c.train.seeds.len() * folds) as u64
            })
            .sum();
        if jobs > MAX_JOBS {
            return Err(too_many(
                "train.seeds",
                format!("the file expands to {jobs} jobs (combinations × seeds × folds)"),
            ));
        }
        Ok(exp)
    }

    /// The experiment as one TOML file: every base merged in and `--set` applied, `[grid]` and
    /// `[search]` as written (`microcal-run --show`).
    pub fn resolved_toml(&self) -> String {
        toml::to_string(&self.composed).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// The resolved configuration of each grid combination, with its grid values.
    pub fn configs(&self) -> Result<Vec<ResolvedCombination>, ConfigError> {
        cartesian(&self.axes)
            .iter()
            .map(|combo| self.combination(combo))
            .collect()
    }

    /// The resolved configuration with `values` (dotted key, value) written over the base,
    /// as a grid combination is, `--set` values still winning.
    pub fn with_values(
        &self,
        values: &[(String, Value)],
    ) -> Result<ResolvedCombination, ConfigError> {
        let combo: Vec<(&str, &Value)> = values.iter().map(|(k, v)| (k.as_str(), v)).collect();
        self.combination(&combo)
    }

    fn combination(&self, combo: &[(&str, &Value)]) -> Result<ResolvedCombination, ConfigError> {
        let mut table = self.base.clone();
        let mut labels = Vec::new();
        for (key, value) in combo {
            set_dotted(&mut table, key, (*value).clone()).map_err(|e| ConfigError::Grid {
                path: self.path.clone(),
                key: key.to_string(),
                message: e.to_string(),
            })?;
            labels.push((key.to_string(), value_label(value)));
        }
        for (key, value) in &self.overrides {
            set_dotted(&mut table, key, value.clone()).map_err(|e| ConfigError::Override {
                spec: format!("{key}={value}"),
                message: e.to_string(),
            })?;
        }
        let config = ExperimentConfig::deserialize_table(&table).map_err(|e| {
            let e = e.message().trim_end().to_string();
            match (&self.base_error, combo.is_empty()) {
                (Some((path, message)), _) => ConfigError::Parse {
                    path: path.clone(),
                    message: message.clone(),
                },
                (None, true) => ConfigError::Parse {
                    path: self.path.clone(),
                    message: e,
                },
                (None, false) => ConfigError::Grid {
                    path: self.path.clone(),
                    key: describe_combo(combo),
                    message: e,
                },
            }
        })?;
        let config = resolve(config, &base_dir(&self.path));
        validate(&config).map_err(|(key, message)| ConfigError::Invalid {
            path: self.path.clone(),
            key,
            message: if combo.is_empty() {
                message
            } else {
                format!("{message} (in grid combination {})", describe_combo(combo))
            },
        })?;
        Ok((config, labels))
    }

    /// The typed model of a resolved configuration of this file.
    fn model_spec(&self, config: &ExperimentConfig) -> Result<ModelSpec, ConfigError> {
        config.model.spec().map_err(|e| ConfigError::Invalid {
            path: self.path.clone(),
            key: e.key().to_string(),
            message: e.to_string(),
        })
    }

    /// The jobs (per seed and fold) of the configuration with `values` written over the
    /// base, tagged as a search's jobs when `tag` is given.
    pub fn jobs_with<E: From<ConfigError>>(
        &self,
        values: &[(String, Value)],
        tag: Option<super::SearchTag>,
        mut identify: impl FnMut(&DataConfig) -> Result<String, E>,
    ) -> Result<Vec<Job>, E> {
        let (config, grid) = self.with_values(values)?;
        let data_identity = identify(&config.data)?;
        let model = self.model_spec(&config)?;
        let mut jobs = Job::expand(&self.path, config, model, grid, &data_identity);
        for job in &mut jobs {
            job.search = tag;
        }
        Ok(jobs)
    }

    /// Every job: grid combinations × seeds × folds, in that order. `identify` gives the
    /// identity of a combination's data (see `data::fingerprint`), which enters the job id.
    /// Combinations that resolve to the same job (an override can make them equal) appear
    /// once. For a search: the jobs of its first round at its first rung (later rounds
    /// depend on the scores; see `runner::search`).
    pub fn jobs<E: From<ConfigError>>(
        &self,
        mut identify: impl FnMut(&DataConfig) -> Result<String, E>,
    ) -> Result<Vec<Job>, E> {
        if self.search.is_some() {
            return Err(ConfigError::Invalid {
                path: self.path.clone(),
                key: "search".into(),
                message: "a search's jobs follow from its rounds: see search::planned_jobs".into(),
            }
            .into());
        }
        let mut jobs: Vec<Job> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (config, grid) in self.configs()? {
            let data_identity = identify(&config.data)?;
            let model = self.model_spec(&config)?;
            for job in Job::expand(&self.path, config, model, grid, &data_identity) {
                if seen.insert(job.id.clone()) {
                    jobs.push(job);
                }
            }
        }
        Ok(jobs)
    }
}

impl ExperimentConfig {
    /// Deserialises a (grid-applied) table; the message has no line numbers, since the table
    /// was assembled in memory.
    pub(crate) fn deserialize_table(table: &Table) -> Result<ExperimentConfig, toml::de::Error> {
        Value::Table(table.clone()).try_into()
    }
}

/// The folder that relative paths in the file are resolved against.
pub(crate) fn base_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes `.` and `dir/..` pairs without touching the file system, so paths print as people
/// would write them (`results/x.csv`, not `experiments/../results/x.csv`).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// Removes `[grid]` from the table and checks its shape: dotted keys mapping to non-empty arrays.
fn take_grid(base: &mut Table, path: &Path) -> Result<Vec<(String, Vec<Value>)>, ConfigError> {
    let Some(grid) = base.remove("grid") else {
        return Ok(Vec::new());
    };
    let Value::Table(grid) = grid else {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            key: "grid".to_string(),
            message: "must be a table of \"dotted.key\" = [values, ...]".to_string(),
        });
    };
    let mut axes = Vec::new();
    for (key, values) in flatten_grid_keys(&grid) {
        let grid_err = |message: String| ConfigError::Grid {
            path: path.to_path_buf(),
            key: key.clone(),
            message,
        };
        let Value::Array(values) = values else {
            return Err(grid_err(format!(
                "must be an array of values to sweep, e.g. \"{key}\" = [..., ...]"
            )));
        };
        if values.is_empty() {
            return Err(grid_err("must list at least one value".to_string()));
        }
        if let Some(why) = unsweepable(&key) {
            return Err(grid_err(format!("cannot be swept: {why}")));
        }
        axes.push((key, values));
    }
    Ok(axes)
}

/// Why a key cannot vary between the jobs of one file (in `[grid]` or `[search.space]`), or
/// None where it can.
pub fn unsweepable(key: &str) -> Option<&'static str> {
    let section = key.split('.').next().unwrap_or(key);
    Some(match section {
        "name" | "description" => "it labels the experiment, not a job; write one file per name",
        "extends" => "base files are merged before the grid is expanded; write one file per base",
        "output" => "every job of a file goes to one results table; write one file per table, or use --results",
        "launcher" => "launcher settings apply to a whole submission, not to a job",
        "grid" | "search" => "a grid or a search cannot be nested",
        _ => return None,
    })
}

/// Most jobs one file may expand to. A grid past this is almost surely a mistake (planning
/// alone takes ~0.2 ms a combination, and even trivial jobs ~0.4 ms each), and refusing it
/// before expanding keeps `--plan` quick.
pub const MAX_JOBS: u64 = 100_000;

/// `[grid] "model.level" = [..]` and `[grid.model] level = [..]` both mean the key `model.level`.
fn flatten_grid_keys(grid: &Table) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (k, v) in grid {
        match v {
            Value::Table(inner) => {
                for (ik, iv) in flatten_grid_keys(inner) {
                    out.push((format!("{k}.{ik}"), iv));
                }
            }
            other => out.push((k.clone(), other.clone())),
        }
    }
    out
}

/// Writes `value` at a dotted path, creating intermediate tables. A table value is merged
/// into a table already there, so a grid can sweep whole variants
/// (`model = [{ kind = "wavelet-mlp" }, { kind = "wavelet-classical", classifier = "svm" }]`)
/// while keeping the file's other settings of that table.
fn set_dotted(table: &mut Table, key: &str, value: Value) -> Result<(), NotATable> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, parents) = parts.split_last().expect("split yields at least one part");
    let mut current = table;
    for (i, part) in parents.iter().enumerate() {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        current = match entry {
            Value::Table(t) => t,
            _ => {
                return Err(NotATable {
                    prefix: parts[..=i].join("."),
                    key: key.to_string(),
                })
            }
        };
    }
    match (current.get_mut(*last), value) {
        (Some(Value::Table(existing)), Value::Table(update)) => merge(existing, update),
        (_, value) => {
            current.insert(last.to_string(), value);
        }
    }
    Ok(())
}

/// A dotted key that runs through a value: `a.b` cannot be set when `a` is a number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{prefix}` is a value, not a table, so `{key}` cannot be set")]
pub struct NotATable {
    pub prefix: String,
    pub key: String,
}

fn cartesian(axes: &[(String, Vec<Value>)]) -> Vec<Vec<(&str, &Value)>> {
    let mut combos: Vec<Vec<(&str, &Value)>> = vec![Vec::new()];
    for (key, values) in axes {
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut c = prefix.clone();
                    c.push((key.as_str(), v));
                    c
                })
            })
            .collect();
    }
    combos
}

/// A value as it appears in table columns: strings bare, everything else as TOML.
pub(crate) fn value_label(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Table(t) => t
            .iter()
            .map(|(k, v)| format!("{k}={}", value_label(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

fn describe_combo(combo: &[(&str, &Value)]) -> String {
    combo
        .iter()
        .map(|(k, v)| format!("{k}={}", value_label(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_drops_dot_and_dotdot_pairs() {
        assert_eq!(
            normalize(Path::new("experiments/../results/x.csv")),
            PathBuf::from("results/x.csv")
        );
        assert_eq!(normalize(Path::new("./a/./b")), PathBuf::from("a/b"));
        assert_eq!(normalize(Path::new("../../x")), PathBuf::from("../../x"));
        assert_eq!(normalize(Path::new("a/..")), PathBuf::from("."));
    }

    #[test]
    fn overrides_parse_toml_or_fall_back_to_strings() {
        assert_eq!(
            parse_override("train.epochs=5").unwrap(),
            ("train.epochs".into(), Value::Integer(5))
        );
        assert_eq!(
            parse_override("model.wavelet.family=db5").unwrap().1,
            Value::String("db5".into())
        );
        assert_eq!(
            parse_override("x=[2, 3]").unwrap().1,
            Value::Array(vec![Value::Integer(2), Value::Integer(3)])
        );
        assert!(parse_override("novalue").is_err());
    }

    fn test_identity(_: &crate::config::DataConfig) -> Result<String, ConfigError> {
        Ok("test data".to_string())
    }

    #[test]
    fn grid_expands_to_the_cartesian_product_times_seeds() {
        let text = "name = \"g\"\n[data]\nsource = \"synthetic\"\n[model]\nkind = \"wavelet-mlp\"\n[train]\nseeds = [1, 2]\n[grid]\n\"model.wavelet.family\" = [\"haar\", \"db2\", \"db5\"]\n[grid.model.wavelet]\nlevel = [3, 4]\n";
        let exp = Experiment::from_str(text, Path::new("g.toml"), &[]).unwrap();
        let jobs = exp.jobs(test_identity).unwrap();
        assert_eq!(jobs.len(), 3 * 2 * 2);
        let ids: std::collections::BTreeSet<_> = jobs.iter().map(|j| j.id.clone()).collect();
        assert_eq!(ids.len(), jobs.len(), "ids are distinct");
        let again = Experiment::from_str(text, Path::new("g.toml"), &[])
            .unwrap()
            .jobs(test_identity)
            .unwrap();
        assert_eq!(
            jobs.iter().map(|j| &j.id).collect::<Vec<_>>(),
            again.iter().map(|j| &j.id).collect::<Vec<_>>()
        );
        // keep_levels defaults to 2..=level, resolved per combination.
        let l3 = jobs
            .iter()
            .find(|j| j.config.model.wavelet.as_ref().unwrap().level == 3)
            .unwrap();
        assert_eq!(
            l3.config.model.wavelet.as_ref().unwrap().keep_levels,
            Some(vec![2, 3])
        );
    }

    #[test]
    fn set_replaces_a_grid_axis() {
        let text = "name = \"g\"\n[data]\nsource = \"synthetic\"\n[model]\nkind = \"wavelet-mlp\"\n[grid]\n\"model.wavelet.family\" = [\"haar\", \"db2\"]\n";
        let set = [parse_override("model.wavelet.family=sym4").unwrap()];
        let jobs = Experiment::from_str(text, Path::new("g.toml"), &set)
            .unwrap()
            .jobs(test_identity)
            .unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            jobs[0].config.model.wavelet.as_ref().unwrap().family,
            "sym4"
        );
    }
}
