//! Running a `[search]`: rounds of `search.batch` trials proposed from the scores of earlier
//! rounds (`crate::search`), each trial a job per seed and fold evaluated on validation data
//! (`data.evaluate = "validation"`), optionally halved over rungs of epochs; then the best
//! trial's configuration trained once more, on all of Train (the folds and the hold-out were
//! for comparing trials, unless early stopping or a Youden threshold needs the hold-out),
//! and scored on Test.
//!
//! Nothing is kept between runs but the table: a round's proposals depend only on the seed,
//! the round number and the rows of earlier rounds, so a search that stops and starts again
//! finds its finished trials in the table and goes on from the first missing one, and a
//! finished search adds nothing.

use std::path::{Path, PathBuf};

use toml::Value;

use super::{DataCache, RunError, RunOptions, RunSummary};
use crate::config::{rung_epochs, rung_values, Experiment, Job, SearchRole, SearchTag, SplitKind};
use crate::results::ResultsTable;
use crate::search::{promoted, propose, Direction, Observation, SearchConfig};
use crate::train::{Threshold, ThresholdRule};

/// The jobs of one trial at one rung.
fn trial_jobs(
    experiment: &Experiment,
    values: &[(String, Value)],
    tag: SearchTag,
    cache: &mut DataCache,
) -> Result<Vec<Job>, RunError> {
    experiment.jobs_with(values, Some(tag), |d| {
        cache.identity(d).map_err(|cause| RunError::Data {
            file: experiment.path.clone(),
            cause,
        })
    })
}

/// Runs the search of `experiment`: every missing trial, then the best configuration on Test.
pub(super) fn run_search(
    experiment: &Experiment,
    search: &SearchConfig,
    options: &RunOptions,
    cache: &mut DataCache,
) -> Result<RunSummary, RunError> {
    let table = options
        .results
        .clone()
        .unwrap_or_else(|| experiment.results_path.clone());
    let mut summary = RunSummary {
        table: table.clone(),
        ..Default::default()
    };
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
                let trial = trial_jobs(
                    experiment,
                    &rung_values(search, &proposals[i], epochs),
                    tag,
                    cache,
                )?;
                per_trial.push((i, trial.iter().map(|j| j.id.clone()).collect::<Vec<_>>()));
                jobs.extend(trial);
            }
            run_and_wait(experiment, &jobs, &table, options, cache, &mut summary)?;
            let wanted = jobs.iter().map(|j| j.id.clone()).collect();
            let rows = metric_by_job(&table, &options.done_in, &search.metric, &wanted)?;
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
        return Ok(summary);
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
    let result = trial_jobs(experiment, &values, tag, cache)?;
    run_and_wait(experiment, &result, &table, options, cache, &mut summary)?;
    Ok(summary)
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

/// `metric` of the successful rows of `ids` in the table (and the `--done-in` tables), by
/// job id; only those rows are read (see `results::job_index`).
fn metric_by_job(
    table: &Path,
    done_in: &[PathBuf],
    metric: &str,
    ids: &std::collections::HashSet<String>,
) -> Result<std::collections::HashMap<String, f64>, RunError> {
    let mut out = std::collections::HashMap::new();
    for path in done_in.iter().map(PathBuf::as_path).chain([table]) {
        let rows = ResultsTable::new(path).rows_of(ids)?;
        out.extend(
            rows.iter()
                .filter(|r| r.get("status") == Some("ok"))
                .filter_map(|r| {
                    let value = r.get(metric)?.parse::<f64>().ok()?;
                    Some((r.get("job_id")?.to_string(), value))
                }),
        );
    }
    Ok(out)
}

/// How often a process waiting for other processes' trials looks at the tables again.
const POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs the jobs of `jobs` that nobody else holds, then waits until every one has a row in
/// `table` or a `--done-in` table, running any whose holder died meanwhile (see
/// `results::claims`). So processes and Slurm tasks given the same search share each round's
/// trials, and a round's scores are complete before the next round is proposed, whoever ran
/// them: the rows equal those of one process.
fn run_and_wait(
    experiment: &Experiment,
    jobs: &[Job],
    table: &PathBuf,
    options: &RunOptions,
    cache: &mut DataCache,
    summary: &mut RunSummary,
) -> Result<(), RunError> {
    run_list(experiment, jobs, table, options, cache, summary, true)?;
    let claims = crate::results::claims_dir(options.claims_in.as_deref().unwrap_or(table));
    let mut announced = false;
    loop {
        // A job is finished when it has a row and no live process holds it (a rerun of a
        // failed job is still running while its old row is there).
        let present = ids_with_rows(table, &options.done_in)?;
        let missing = jobs
            .iter()
            .filter(|j| {
                !present.contains(&j.id)
                    || crate::results::live_holder(&claims.join(&j.id)).is_some()
            })
            .count();
        if missing == 0 {
            return Ok(());
        }
        if !announced {
            tracing::info!(missing, "waiting for the trials other processes hold");
            announced = true;
        }
        std::thread::sleep(POLL);
        run_list(experiment, jobs, table, options, cache, summary, false)?;
    }
}

/// Job ids with a row, whatever its status, in `table` and the `--done-in` tables.
fn ids_with_rows(
    table: &Path,
    done_in: &[PathBuf],
) -> Result<std::collections::HashSet<String>, RunError> {
    let mut ids = ResultsTable::new(table).job_ids()?;
    for other in done_in {
        ids.extend(ResultsTable::new(other).job_ids()?);
    }
    Ok(ids)
}

/// Runs the jobs of `jobs` not yet in `table` (all with `--force`) on the workers. After the
/// first pass (`first` false) only jobs without any row whose claim no live process holds
/// are run, and only what runs is counted.
fn run_list(
    experiment: &Experiment,
    jobs: &[Job],
    table: &PathBuf,
    options: &RunOptions,
    cache: &mut DataCache,
    summary: &mut RunSummary,
    first: bool,
) -> Result<(), RunError> {
    let done = if first {
        let mut done = ResultsTable::new(table).done_ids(options.rerun_failed)?;
        for other in &options.done_in {
            done.extend(ResultsTable::new(other).done_ids(options.rerun_failed)?);
        }
        summary.planned += jobs.len();
        done
    } else {
        ids_with_rows(table, &options.done_in)?
    };
    let claims = crate::results::claims_dir(options.claims_in.as_deref().unwrap_or(table));
    let mut tasks = Vec::new();
    for job in jobs {
        if first {
            if done.contains(&job.id) && !options.force {
                summary.skipped += 1;
                continue;
            }
        } else if done.contains(&job.id)
            || crate::results::live_holder(&claims.join(&job.id)).is_some()
        {
            continue;
        }
        tasks.push(super::task(job, 0, table, &experiment.path, cache)?);
    }
    if tasks.is_empty() {
        return Ok(());
    }
    let later = RunOptions {
        force: options.force && first,
        rerun_failed: options.rerun_failed && first,
        ..options.clone()
    };
    let outcome = super::run_tasks(&tasks, 1, &later, &experiment.path.display().to_string());
    let outcome = outcome?.remove(0);
    summary.ran += outcome.ran;
    summary.failed += outcome.failed;
    if first {
        summary.elsewhere += outcome.elsewhere;
    }
    Ok(())
}
