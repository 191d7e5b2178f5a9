//! A search as an experiment file declares it: the `[search]` table that `config` keeps raw
//! is parsed here, and its space checked against the schema by applying each key's extreme
//! values and choices, so that `--plan` rejects what a trial would fail on; then the rungs,
//! each trial's settings and the first round's jobs.

use toml::Value;

use super::{Domain, SearchConfig};
use crate::config::{
    unsweepable, ConfigError, DataConfig, Experiment, Job, ModelKind, SearchRole, SearchTag,
    SplitKind,
};

impl SearchConfig {
    /// The experiment's search, parsed and checked against it; None for a file without one.
    pub fn of(experiment: &Experiment) -> Result<Option<SearchConfig>, ConfigError> {
        let Some(table) = &experiment.search else {
            return Ok(None);
        };
        let search = SearchConfig::parse(table).map_err(|e| ConfigError::Invalid {
            path: experiment.path.clone(),
            key: e.key,
            message: e.message,
        })?;
        check_space(experiment, &search)?;
        Ok(Some(search))
    }
}

/// The rungs' epochs (see `search::rungs`), or one rung of the file's epochs without halving.
pub fn rung_epochs(
    experiment: &Experiment,
    search: &SearchConfig,
) -> Result<Vec<Option<usize>>, ConfigError> {
    Ok(match &search.halving {
        Some(h) => {
            let (base, _) = experiment.with_values(&[])?;
            super::rungs(h.min_epochs, h.factor, base.train.epochs)
                .into_iter()
                .map(Some)
                .collect()
        }
        None => vec![None],
    })
}

/// The values written over the base for a trial at a rung of `epochs` (None: the file's).
pub fn rung_values(
    search: &SearchConfig,
    sampled: &[Value],
    epochs: Option<usize>,
) -> Vec<(String, Value)> {
    let mut values = trial_values(search, sampled);
    if let Some(epochs) = epochs {
        values.push(("train.epochs".into(), Value::Integer(epochs as i64)));
    }
    values
}

/// The jobs an experiment file declares: a grid's every job, a search's first round (see
/// [`first_round_jobs`]).
pub fn planned_jobs<E: From<ConfigError>>(
    experiment: &Experiment,
    identify: impl FnMut(&DataConfig) -> Result<String, E>,
) -> Result<Vec<Job>, E> {
    match SearchConfig::of(experiment)? {
        Some(search) => first_round_jobs(experiment, &search, identify),
        None => experiment.jobs(identify),
    }
}

/// The jobs a search runs first: its first round at its first rung (later rounds depend on
/// the scores; see `rounds`).
pub fn first_round_jobs<E: From<ConfigError>>(
    experiment: &Experiment,
    search: &SearchConfig,
    mut identify: impl FnMut(&DataConfig) -> Result<String, E>,
) -> Result<Vec<Job>, E> {
    let epochs = rung_epochs(experiment, search)?[0];
    let mut jobs = Vec::new();
    for (trial, sampled) in super::propose(search, &[], 0, search.batch.min(search.trials))
        .iter()
        .enumerate()
    {
        let tag = SearchTag {
            trial,
            rung: epochs.map(|_| 0),
            role: SearchRole::Trial,
        };
        jobs.extend(experiment.jobs_with(
            &rung_values(search, sampled, epochs),
            Some(tag),
            &mut identify,
        )?);
    }
    Ok(jobs)
}

/// The values written over the base for a trial: the sampled ones, and evaluation on the
/// training part's validation data.
pub fn trial_values(search: &SearchConfig, sampled: &[Value]) -> Vec<(String, Value)> {
    let mut values: Vec<(String, Value)> = search
        .space
        .keys()
        .cloned()
        .zip(sampled.iter().cloned())
        .collect();
    values.push(("data.evaluate".into(), Value::String("validation".into())));
    values
}

/// Checks that every key of the space can take its extreme values and every choice, and
/// that the experiment has validation data to compare trials on.
fn check_space(experiment: &Experiment, search: &SearchConfig) -> Result<(), ConfigError> {
    let invalid = |key: String, message: String| ConfigError::Invalid {
        path: experiment.path.clone(),
        key,
        message,
    };
    let (base, _) = experiment.with_values(&[])?;
    if matches!(base.data.split, SplitKind::Given | SplitKind::Swapped)
        && base.train.validation_fraction == 0.0
        && !search.space.contains_key("train.validation_fraction")
    {
        return Err(invalid(
            "train.validation_fraction".into(),
            "must be > 0 for a search on a fixed split: trials are compared on this hold-out of the training part, never on Test".into(),
        ));
    }
    if search.halving.is_some()
        && !matches!(base.model.kind, ModelKind::Cnn | ModelKind::WaveletMlp)
    {
        return Err(invalid(
            "search.halving".into(),
            format!(
                "halves on epochs, which kind = \"{}\" does not train in; use cnn or wavelet-mlp, or drop [search.halving]",
                base.model.kind.name()
            ),
        ));
    }
    let examples = search.domains().into_iter().map(|(key, domain)| {
        let values = match domain {
            Domain::Uniform(low, high) | Domain::LogUniform(low, high) => {
                vec![Value::Float(low), Value::Float(high)]
            }
            Domain::Int { low, high, .. } => vec![Value::Integer(low), Value::Integer(high)],
            Domain::Choice(choices) => choices,
        };
        (key, values)
    });
    for (key, values) in examples {
        if let Some(why) = unsweepable(&key) {
            return Err(invalid(
                format!("search.space.\"{key}\""),
                format!("cannot be searched: {why}"),
            ));
        }
        for value in values {
            let mut assignment = vec![(key.clone(), value.clone())];
            assignment.push(("data.evaluate".into(), Value::String("validation".into())));
            if let Err(e) = experiment.with_values(&assignment) {
                return Err(invalid(
                    format!("search.space.\"{key}\""),
                    format!("{key} = {value}: {}", detail(&e)),
                ));
            }
        }
    }
    Ok(())
}

/// An error's message without the file name (the caller names the file).
fn detail(e: &ConfigError) -> String {
    match e {
        ConfigError::Invalid { key, message, .. } | ConfigError::Grid { key, message, .. } => {
            format!("`{key}` {message}")
        }
        ConfigError::Parse { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
