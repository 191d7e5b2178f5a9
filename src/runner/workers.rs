//! Running an experiment's jobs on several workers at once, each job on its own share of the
//! cores, and the shards that split a job list between processes.
//!
//! A worker takes the next job, claims it (so processes sharing the table run it once, see
//! `results::claims`), runs it inside a rayon pool of `cores / workers` threads, appends its
//! row and marks it done. A job's numbers do not depend on its thread count (the engine adds
//! its parallel parts in a fixed order), so they are the same whatever `--jobs` is; only the
//! order of the rows in the table changes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::bars::Bars;
use super::{execute, row, timestamp_utc, JobStatus, RunError};
use crate::config::{Job, ModelKind};
use crate::data::{self, Dataset};
use crate::results::{run_dir, write_artefacts, Claim, ClaimOutcome, ResultsTable};

/// A `--shard` value that is not I/N with 0 ≤ I < N.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--shard {0}: expected I/N with 0 <= I < N, e.g. 0/4")]
pub struct InvalidShard(pub String);

/// The I-th of N parts of a job list (0-based), chosen by job id, so that every process
/// given the same files and N gets disjoint parts that together cover every job, whatever
/// the order of the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `I/N` with 0 ≤ I < N.
    pub fn parse(text: &str) -> Result<Self, InvalidShard> {
        let invalid = || InvalidShard(text.to_string());
        let (i, n) = text.split_once('/').ok_or_else(invalid)?;
        let index: usize = i.trim().parse().map_err(|_| invalid())?;
        let count: usize = n.trim().parse().map_err(|_| invalid())?;
        if count == 0 || index >= count {
            return Err(invalid());
        }
        Ok(Self { index, count })
    }

    /// Whether the job with this id belongs to this shard.
    pub fn contains(&self, job_id: &str) -> bool {
        let value = u64::from_str_radix(job_id.get(..16).unwrap_or(job_id), 16).unwrap_or(0);
        (value % self.count as u64) as usize == self.index
    }
}

/// Threads a job of this kind keeps busy: a CNN runs its batch in two parts in parallel.
fn threads_wanted(job: &Job) -> usize {
    if job.config.model.kind == ModelKind::Cnn {
        2
    } else {
        1
    }
}

/// Workers by default: as many as the cores allow for the jobs' own threads.
pub(super) fn default_workers(jobs: &[&Job], cores: usize) -> usize {
    let per_job = jobs.iter().map(|j| threads_wanted(j)).max().unwrap_or(1);
    (cores / per_job).max(1)
}

/// What the workers did for one experiment.
#[derive(Debug, Default, Clone)]
pub(super) struct Outcome {
    pub ran: usize,
    pub failed: usize,
    /// Jobs another process held, or finished after this one planned.
    pub elsewhere: usize,
}

/// One job to run: which experiment (index) it belongs to and the table it goes to.
pub(super) struct Task<'a> {
    pub job: &'a Job,
    pub experiment: usize,
    pub table: &'a Path,
    pub dataset: Arc<Dataset>,
}

enum JobEnd {
    Ran(JobStatus),
    Elsewhere,
}

/// Runs `tasks` (of `experiments` experiments, in any mix) on `workers` workers; returns
/// what happened per experiment. The first error that concerns a whole experiment (a split
/// that cannot be made, an unwritable table) stops every worker after its current job and
/// is returned.
pub(super) fn run_jobs(
    tasks: &[Task],
    experiments: usize,
    workers: usize,
    replace: Replace<'_>,
    bars: &Bars,
) -> Result<Vec<Outcome>, RunError> {
    let cores = rayon::current_num_threads();
    let threads = (cores / workers).max(1);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let outcome = Mutex::new(vec![Outcome::default(); experiments]);
    let error: Mutex<Option<RunError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let (next, stop, outcome, error) = (&next, &stop, &outcome, &error);
            scope.spawn(move || {
                let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
                    Ok(pool) => pool,
                    Err(e) => {
                        tracing::error!("worker {worker}: cannot start its threads: {e}");
                        return;
                    }
                };
                while !stop.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(task) = tasks.get(i) else { break };
                    let table = ResultsTable::new(task.table.to_path_buf());
                    let result = pool.install(|| {
                        run_one(worker, task.job, &task.dataset, &table, replace, bars)
                    });
                    let mut all = outcome.lock().unwrap_or_else(|p| p.into_inner());
                    let o = &mut all[task.experiment];
                    match result {
                        Ok(JobEnd::Ran(status)) => {
                            o.ran += 1;
                            o.failed += usize::from(status != JobStatus::Ok);
                        }
                        Ok(JobEnd::Elsewhere) => {
                            o.elsewhere += 1;
                            bars.skip_job();
                        }
                        Err(e) => {
                            stop.store(true, Ordering::SeqCst);
                            error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(outcome.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// Which rows a run replaces: every row of its jobs (`--force`), or those that say failed
/// or diverged (`--rerun-failed`); otherwise rows are only appended.
/// Also where jobs are claimed (`--claims-in`) and which other tables count as done.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Replace<'a> {
    pub force: bool,
    pub failed: bool,
    pub claims_in: Option<&'a Path>,
    pub done_in: &'a [PathBuf],
}

/// Claims, runs and records one job.
fn run_one(
    worker: usize,
    job: &Job,
    dataset: &Dataset,
    table: &ResultsTable,
    replace: Replace<'_>,
    bars: &Bars,
) -> Result<JobEnd, RunError> {
    let table_file = table.file()?;
    let claims = replace.claims_in.unwrap_or(&table_file);
    let claim = match Claim::acquire(claims, &job.id)? {
        ClaimOutcome::Claimed(claim) => claim,
        ClaimOutcome::Busy => return Ok(JobEnd::Elsewhere),
    };
    // Another process may have written the row after this one planned (with
    // --rerun-failed: an ok row), here or in a table it writes.
    if !replace.force && claim.marked_done() {
        let mut done = table.done_ids(replace.failed)?.contains(&job.id);
        for other in replace.done_in {
            done = done
                || ResultsTable::new(other)
                    .done_ids(replace.failed)?
                    .contains(&job.id);
        }
        if done {
            return Ok(JobEnd::Elsewhere);
        }
    }
    let cfg = &job.config.data;
    let mut partition = data::make_split(dataset, cfg.split, cfg.folds, cfg.split_seed, job.fold)
        .map_err(|cause| RunError::Data {
        file: job.file.clone(),
        cause,
    })?;
    if cfg.evaluate == data::Evaluate::Validation {
        let fraction = job.config.train.validation_fraction;
        partition = partition.validation_only(dataset, cfg.split, fraction, job.seed);
    }
    bars.start_job(worker, job);
    let started = timestamp_utc();
    let result = execute(job, dataset, &partition, &bars.epochs[worker]);
    let (status, row) = row::build(job, &started, &result);
    if let Ok(done) = &result {
        write_artefacts(
            &table_file,
            &job.id,
            &job.resolved_toml(&run_dir(&table_file, &job.id)),
            &done.predictions,
            &done.outcome.fit.history,
            &done.outcome.model.encode(),
        )?;
    }
    if replace.force || replace.failed {
        table.upsert(&row)?;
    } else {
        table.append(&row)?;
    }
    claim.finish()?;
    crate::mlflow::log_finished_row(&table_file, &row);
    bars.finish_job(job, status, &row);
    Ok(JobEnd::Ran(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_ids() {
        assert!(Shard::parse("4/4").is_err() && Shard::parse("x").is_err());
        assert!(Shard::parse("0/0").is_err());
        let shards: Vec<Shard> = (0..3)
            .map(|i| Shard::parse(&format!("{i}/3")).unwrap())
            .collect();
        for n in 0..200u64 {
            let id = format!("{:016x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            assert_eq!(shards.iter().filter(|s| s.contains(&id)).count(), 1, "{id}");
        }
    }
}
