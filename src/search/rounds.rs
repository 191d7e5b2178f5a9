//! A search's rounds: `search.batch` trials proposed from the scores of earlier rounds, each
//! trial a job per seed and fold evaluated on validation data (`data.evaluate =
//! "validation"`), optionally halved over rungs of epochs; then the best trial's
//! configuration trained once more, on all of Train (the folds and the hold-out were for
//! comparing trials, unless early stopping or a Youden threshold needs the hold-out), and
//! scored on Test.
//!
//! Who runs the jobs is behind [`RunJobs`]: the runner runs them on this machine's workers,
//! sharing each round with any other process or Slurm task given the same search (see
//! `runner::search`). Nothing is kept between runs but the table: a round's proposals depend
//! only on the seed, the round number and the scores of earlier rounds, so a search that
//! stops and starts again finds its finished trials and goes on from the first missing one,
//! and a finished search adds nothing.

use std::collections::HashMap;

use toml::Value;

use super::{promoted, propose, rung_epochs, rung_values, Direction, Observation, SearchConfig};
use crate::config::{ConfigError, Experiment, Job, SearchRole, SearchTag, SplitKind};
use crate::train::{Threshold, ThresholdRule};

/// What a search needs of whoever runs its jobs.
pub trait RunJobs {
    type Error: From<ConfigError>;

    /// The jobs of the experiment with `values` written over it, tagged `tag` (one per seed
    /// and fold, their data identified).
    fn jobs(
        &mut self,
        experiment: &Experiment,
        values: &[(String, Value)],
        tag: SearchTag,
    ) -> Result<Vec<Job>, Self::Error>;

    /// Runs those of `jobs` that have no row yet and returns once every one has a row,
    /// whoever ran it; with the `metric` of the jobs whose row is ok, by job id.
    fn run(
        &mut self,
        experiment: &Experiment,
        jobs: &[Job],
        metric: &str,
    ) -> Result<HashMap<String, f64>, Self::Error>;
}

/// Runs the search of `experiment`: every missing trial, then the best configuration on Test.
pub fn run_rounds<R: RunJobs>(
    experiment: &Experiment,
    search: &SearchConfig,
    runner: &mut R,
) -> Result<(), R::Error> {
    let rung_list = rung_epochs(experiment, search)?;
    let better = |a: f64, b: f64| match search.direction() {
        Direction::Maximize => a > b,
        Direction::Minimize => a < b,
    };
    let mut history: Vec<Observation> = Vec::new();
    // (trial, highest rung reached, score there)
    let mut reached: Vec<(usize, usize, f64)> = Vec::new();
    let mut round = 0;
    while history.len() < search.trials {
        let count = search.batch.min(search.trials - history.len());
        let first_trial = history.len();
        let proposals = propose(search, &history, round, count);
        let mut alive: Vec<usize> = (0..count).collect();
        let mut scores = vec![f64::NAN; count];
        let mut top_rung = vec![0; count];
        for (rung, &epochs) in rung_list.iter().enumerate() {
            let mut per_trial = Vec::new();
            let mut jobs = Vec::new();
            for &i in &alive {
                let tag = SearchTag {
                    trial: first_trial + i,
                    rung: epochs.map(|_| rung),
                    role: SearchRole::Trial,
                };
                let trial =
                    runner.jobs(experiment, &rung_values(search, &proposals[i], epochs), tag)?;
                per_trial.push((i, trial.iter().map(|j| j.id.clone()).collect::<Vec<_>>()));
                jobs.extend(trial);
            }
            let rows = runner.run(experiment, &jobs, &search.metric)?;
            for (i, ids) in &per_trial {
                scores[*i] = mean_of(
                    ids.iter()
                        .map(|id| rows.get(id).copied().unwrap_or(f64::NAN)),
                );
                top_rung[*i] = rung;
            }
            if rung + 1 < rung_list.len() {
                let mut ranked = alive.clone();
                ranked.sort_by(|&a, &b| order(scores[a], scores[b], &better).then(a.cmp(&b)));
                ranked.truncate(promoted(
                    alive.len(),
                    search.halving.as_ref().map_or(2, |h| h.factor),
                ));
                ranked.sort_unstable();
                alive = ranked;
            }
        }
        for (i, values) in proposals.into_iter().enumerate() {
            history.push(Observation {
                values,
                score: scores[i],
            });
            reached.push((first_trial + i, top_rung[i], scores[i]));
        }
        tracing::info!(round, trials = history.len(), "search round done");
        round += 1;
    }
    // The best trial among those that reached the highest rung any trial reached.
    let highest = reached.iter().map(|r| r.1).max().unwrap_or(0);
    let best = reached
        .iter()
        .filter(|r| r.1 == highest && r.2.is_finite())
        .min_by(|a, b| order(a.2, b.2, &better).then(a.0.cmp(&b.0)));
    let Some(&(best_trial, _, best_score)) = best else {
        tracing::warn!("no trial finished; nothing to score on Test");
        return Ok(());
    };
    tracing::info!(trial = best_trial, score = best_score, "best trial");
    let mut values: Vec<(String, Value)> = search
        .space
        .keys()
        .cloned()
        .zip(history[best_trial].values.iter().cloned())
        .collect();
    let (base, _) = experiment.with_values(&values)?;
    if matches!(base.data.split, SplitKind::Kfold | SplitKind::GroupKfold) {
        // Folds were for comparing trials; the result trains on all of Train once.
        values.push(("data.split".into(), Value::String("given".into())));
    }
    let youden = base.train.threshold == Threshold::Rule(ThresholdRule::Youden);
    if base.train.early_stopping == 0 && !youden {
        // The hold-out was for comparing trials; nothing in training needs it any more.
        values.push(("train.validation_fraction".into(), Value::Float(0.0)));
    }
    let tag = SearchTag {
        trial: best_trial,
        rung: None,
        role: SearchRole::Result,
    };
    let result = runner.jobs(experiment, &values, tag)?;
    runner.run(experiment, &result, &search.metric)?;
    Ok(())
}

/// `a` before `b` when better; NaN (a failed trial) last.
fn order(a: f64, b: f64, better: &impl Fn(f64, f64) -> bool) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Equal,
        (true, false) => Greater,
        (false, true) => Less,
        _ if better(a, b) => Less,
        _ if better(b, a) => Greater,
        _ => Equal,
    }
}

/// The mean, NaN if any value is NaN (a failed fold fails the trial).
fn mean_of(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}
