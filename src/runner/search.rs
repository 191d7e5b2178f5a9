//! The runner's side of a `[search]` (the rounds themselves: `search::run_rounds`): a
//! round's jobs run on this machine's workers, and every process or Slurm task given the
//! same search claims the trials no one else holds and waits for the round, so they share
//! it and all see the same scores before the next round is proposed.

use std::path::{Path, PathBuf};

use toml::Value;

use super::{DataCache, RunError, RunOptions, RunSummary};
use crate::config::{Experiment, Job, SearchTag};
use crate::results::ResultsTable;
use crate::search::{run_rounds, RunJobs, SearchConfig};

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

/// The runner's side of a search: jobs identified with the data cache, run on this
/// machine's workers and shared with other processes through claims.
struct Local<'a> {
    options: &'a RunOptions,
    cache: &'a mut DataCache,
    table: PathBuf,
    summary: RunSummary,
}

impl RunJobs for Local<'_> {
    type Error = RunError;

    fn jobs(
        &mut self,
        experiment: &Experiment,
        values: &[(String, Value)],
        tag: SearchTag,
    ) -> Result<Vec<Job>, RunError> {
        trial_jobs(experiment, values, tag, self.cache)
    }

    fn run(
        &mut self,
        experiment: &Experiment,
        jobs: &[Job],
        metric: &str,
    ) -> Result<std::collections::HashMap<String, f64>, RunError> {
        run_and_wait(
            experiment,
            jobs,
            &self.table,
            self.options,
            self.cache,
            &mut self.summary,
        )?;
        let wanted = jobs.iter().map(|j| j.id.clone()).collect();
        metric_by_job(&self.table, &self.options.done_in, metric, &wanted)
    }
}

/// Runs the search of `experiment` (see `search::run_rounds`): every missing trial, then the
/// best configuration on Test.
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
    let mut local = Local {
        options,
        cache,
        table: table.clone(),
        summary: RunSummary {
            table,
            ..Default::default()
        },
    };
    run_rounds(experiment, search, &mut local)?;
    Ok(local.summary)
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
    table: &Path,
    options: &RunOptions,
    cache: &mut DataCache,
    summary: &mut RunSummary,
) -> Result<(), RunError> {
    let mut done = ResultsTable::new(table).done_ids(options.rerun_failed)?;
    for other in &options.done_in {
        done.extend(ResultsTable::new(other).done_ids(options.rerun_failed)?);
    }
    summary.planned += jobs.len();
    let todo: Vec<&Job> = jobs
        .iter()
        .filter(|j| options.force || !done.contains(&j.id))
        .collect();
    summary.skipped += jobs.len() - todo.len();
    let outcome = run_now(experiment, &todo, table, options, cache)?;
    summary.ran += outcome.ran;
    summary.failed += outcome.failed;
    summary.elsewhere += outcome.elsewhere;
    let claims = crate::results::claims_dir(options.claims_in.as_deref().unwrap_or(table));
    // Later passes run only jobs without a row that no live process holds (a holder died),
    // as plain runs: no --force or --rerun-failed, and only what runs is counted.
    let plain = RunOptions {
        force: false,
        rerun_failed: false,
        ..options.clone()
    };
    let mut announced = false;
    loop {
        // A job is finished when it has a row and no live process holds it (a rerun of a
        // failed job is still running while its old row is there).
        let present = ids_with_rows(table, &options.done_in)?;
        let mut held = 0;
        let mut orphans = Vec::new();
        for job in jobs {
            if crate::results::live_holder(&claims.join(&job.id)).is_some() {
                held += 1;
            } else if !present.contains(&job.id) {
                orphans.push(job);
            }
        }
        if held == 0 && orphans.is_empty() {
            return Ok(());
        }
        let ran = if orphans.is_empty() {
            0
        } else {
            let outcome = run_now(experiment, &orphans, table, &plain, cache)?;
            summary.ran += outcome.ran;
            summary.failed += outcome.failed;
            outcome.ran
        };
        if ran == 0 {
            if !announced {
                tracing::info!(held, "waiting for the trials other processes hold");
                announced = true;
            }
            std::thread::sleep(POLL);
        }
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

/// Runs `jobs` on the workers (claiming each; one another process holds is left to it).
fn run_now(
    experiment: &Experiment,
    jobs: &[&Job],
    table: &Path,
    options: &RunOptions,
    cache: &mut DataCache,
) -> Result<super::workers::Outcome, RunError> {
    if jobs.is_empty() {
        return Ok(Default::default());
    }
    let tasks = jobs
        .iter()
        .map(|job| super::task(job, 0, table, &experiment.path, cache))
        .collect::<Result<Vec<_>, _>>()?;
    let mut outcomes =
        super::run_tasks(&tasks, 1, options, &experiment.path.display().to_string())?;
    Ok(outcomes.remove(0))
}
