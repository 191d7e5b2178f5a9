//! Running an experiment: plan its jobs, skip those already in the table, and for the rest
//! load data → split → train and score → metrics → artefacts → one table row.

mod bars;
mod migrate;
mod predict;
mod row;
mod search;
mod slurm;
mod status;
mod workers;

pub use migrate::{legacy_job_id, migrate_ids, Migration};
pub use predict::{predict_paths, sample_sheet};
pub use slurm::{launch_slurm, SlurmError, SlurmLaunch, SlurmReport};
pub use status::{render as render_status, status, FileStatus};
pub use workers::Shard;

pub use row::timestamp_utc;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use indicatif::ProgressBar;
use thiserror::Error;

use crate::config::{ConfigError, Experiment, Job};
use crate::data::{self, DataError, Dataset, Partition};
use crate::metrics::{bootstrap_ci, BinaryMetrics, BootstrapCi};
use crate::models::{self, ModelError, ModelOutcome};
use crate::results::{PredictionRecord, ResultsError, ResultsTable};

#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{file}: {cause}")]
    Data {
        file: PathBuf,
        #[source]
        cause: DataError,
    },
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    SavedModel(#[from] crate::models::saved::SavedModelError),
    #[error("{table}: {} rows match no job of the given experiment files (ids {}); pass every file whose rows are in the table, unchanged since those rows were made; nothing was written", ids.len(), ids.join(", "))]
    UnmatchedRows { table: PathBuf, ids: Vec<String> },
}

/// Choices from the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Results table to use instead of the one the file names.
    pub results: Option<PathBuf>,
    /// Re-run jobs already in the table (their rows are replaced).
    pub force: bool,
    /// Re-run only the jobs whose rows say failed or diverged (their rows are replaced).
    pub rerun_failed: bool,
    /// Draw progress bars (on a terminal).
    pub progress: bool,
    /// Jobs run at once (None: as many as the cores allow for the jobs' own threads).
    pub jobs: Option<usize>,
    /// Run only this part of the job list.
    pub shard: Option<Shard>,
    /// Further tables whose jobs count as done (a Slurm task reads the main table here
    /// while it writes its own).
    pub done_in: Vec<PathBuf>,
    /// Claim jobs in this table's claims folder instead of the results table's: the Slurm
    /// tasks of a search share one, so that each trial runs once across tasks.
    pub claims_in: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    pub planned: usize,
    pub ran: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Jobs left to other processes: held by one, or finished by one after the plan.
    pub elsewhere: usize,
    /// Jobs of other shards.
    pub other_shards: usize,
    pub table: PathBuf,
}

/// Datasets already loaded and identified in this process, keyed by their data config and
/// resolved folder.
#[derive(Default)]
pub struct DataCache {
    loaded: HashMap<String, Arc<Dataset>>,
    identities: HashMap<String, String>,
}

fn cache_key(config: &crate::config::DataConfig) -> String {
    let json = serde_json::to_string(config).expect("configs serialise");
    format!("{json}\0{}", config.root_path().display())
}

impl DataCache {
    /// The data's identity for job ids (see `data::fingerprint`), computed once per folder.
    pub fn identity(&mut self, config: &crate::config::DataConfig) -> Result<String, DataError> {
        let key = config.root_path().display().to_string();
        let key = match config.source {
            crate::config::DataSource::Folder => key,
            crate::config::DataSource::Synthetic => String::new(),
        };
        if let Some(id) = self.identities.get(&key) {
            return Ok(id.clone());
        }
        let id = data::fingerprint(config)?;
        self.identities.insert(key, id.clone());
        Ok(id)
    }

    pub fn get(&mut self, config: &crate::config::DataConfig) -> Result<Arc<Dataset>, DataError> {
        let key = cache_key(config);
        if let Some(d) = self.loaded.get(&key) {
            return Ok(d.clone());
        }
        if config.source == crate::config::DataSource::Folder {
            warn_about_traps(config);
        }
        let dataset = Arc::new(data::load(config)?);
        self.loaded.insert(key, dataset.clone());
        Ok(dataset)
    }
}

/// Logs, as warnings, what `microcal data check` finds that inflates naive numbers.
fn warn_about_traps(config: &crate::config::DataConfig) {
    let root = config.root_path();
    match data::check_folder(&root, &config.group_pattern) {
        Ok(report) => {
            for warning in report.warnings() {
                tracing::warn!(
                    "{}: {warning} (details: microcal data check {})",
                    root.display(),
                    root.display()
                );
            }
        }
        Err(e) => tracing::debug!("data check skipped: {e}"),
    }
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Ok,
    /// The loss became NaN or infinite.
    Diverged,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Ok => "ok",
            JobStatus::Diverged => "diverged",
            JobStatus::Failed => "failed",
        }
    }
}

/// An experiment's jobs, each with whether the table already has its row.
pub struct Plan {
    pub table: PathBuf,
    pub jobs: Vec<(Job, bool)>,
}

impl Plan {
    /// Jobs already in the table.
    pub fn done(&self) -> usize {
        self.jobs.iter().filter(|(_, done)| *done).count()
    }
}

/// Every job of `experiment`, its data identified (see `data::fingerprint`).
/// For a search, the jobs it would run first (see [`Experiment::jobs`]).
pub fn experiment_jobs(
    experiment: &Experiment,
    cache: &mut DataCache,
) -> Result<Vec<Job>, RunError> {
    let identify = |d: &crate::data::DataConfig| {
        cache.identity(d).map_err(|cause| RunError::Data {
            file: experiment.path.clone(),
            cause,
        })
    };
    crate::search::planned_jobs(experiment, identify)
}

/// Expands `experiment` into jobs (identifying its data) and looks each up in the table.
pub fn plan_experiment(
    experiment: &Experiment,
    options: &RunOptions,
    cache: &mut DataCache,
) -> Result<Plan, RunError> {
    Ok(plan_experiments(std::slice::from_ref(experiment), options, cache)?.remove(0))
}

/// [`plan_experiment`] for each file, reading each results table (and `--done-in` table)
/// once however many files share it.
pub fn plan_experiments(
    experiments: &[Experiment],
    options: &RunOptions,
    cache: &mut DataCache,
) -> Result<Vec<Plan>, RunError> {
    let mut read: HashMap<PathBuf, std::collections::HashSet<String>> = HashMap::new();
    let mut ids_in = |path: &PathBuf| -> Result<std::collections::HashSet<String>, RunError> {
        if !read.contains_key(path) {
            read.insert(
                path.clone(),
                ResultsTable::new(path).done_ids(options.rerun_failed)?,
            );
        }
        Ok(read[path].clone())
    };
    let mut plans = Vec::with_capacity(experiments.len());
    for experiment in experiments {
        let jobs = experiment_jobs(experiment, cache)?;
        let table = options
            .results
            .clone()
            .unwrap_or_else(|| experiment.results_path.clone());
        let mut done = ids_in(&table)?;
        for other in &options.done_in {
            done.extend(ids_in(other)?);
        }
        let jobs = jobs
            .into_iter()
            .map(|job| {
                let present = done.contains(&job.id);
                (job, present)
            })
            .collect();
        plans.push(Plan { table, jobs });
    }
    Ok(plans)
}

/// Runs every job of `experiment` that is not yet in its results table (see
/// [`run_experiments`]).
pub fn run_experiment(
    experiment: &Experiment,
    options: &RunOptions,
    cache: &mut DataCache,
) -> Result<RunSummary, RunError> {
    Ok(run_experiments(std::slice::from_ref(experiment), options, cache)?.remove(0))
}

/// Runs every job of `experiments` that is not yet in its results table, all files' jobs
/// sharing one set of workers (so a one-job file does not leave cores idle). Every file is
/// planned and its data loaded before any job runs.
///
/// Problems that concern a whole experiment (unreadable data, impossible split, unwritable
/// table) stop the run with an error; a job that fails on its own (diverged loss) gets a row
/// with its status and the sweep goes on.
pub fn run_experiments(
    experiments: &[Experiment],
    options: &RunOptions,
    cache: &mut DataCache,
) -> Result<Vec<RunSummary>, RunError> {
    let (searches, plain): (Vec<_>, Vec<_>) = experiments
        .iter()
        .enumerate()
        .partition(|(_, e)| e.search.is_some());
    if !searches.is_empty() {
        // A search is not split by shard: every process given it takes the trials nobody
        // holds and waits for the others' (see `search`).
        let plain_experiments: Vec<Experiment> = plain.iter().map(|(_, e)| (*e).clone()).collect();
        let mut plain_summaries = run_experiments(&plain_experiments, options, cache)?.into_iter();
        let mut summaries = Vec::with_capacity(experiments.len());
        for experiment in experiments {
            summaries.push(match crate::search::SearchConfig::of(experiment)? {
                Some(s) => search::run_search(experiment, &s, options, cache)?,
                None => plain_summaries.next().expect("one summary per plain file"),
            });
        }
        return Ok(summaries);
    }
    let in_shard = |job: &Job| options.shard.is_none_or(|s| s.contains(&job.id));
    let plans = plan_experiments(experiments, options, cache)?;
    let mut summaries = Vec::new();
    let mut tasks = Vec::new();
    for (index, (experiment, plan)) in experiments.iter().zip(&plans).enumerate() {
        let todo: Vec<&Job> = plan
            .jobs
            .iter()
            .filter(|(job, done)| (options.force || !done) && in_shard(job))
            .map(|(job, _)| job)
            .collect();
        summaries.push(RunSummary {
            planned: plan.jobs.len(),
            skipped: plan
                .jobs
                .iter()
                .filter(|(job, done)| *done && !options.force && in_shard(job))
                .count(),
            other_shards: plan.jobs.iter().filter(|(job, _)| !in_shard(job)).count(),
            table: plan.table.clone(),
            ..Default::default()
        });
        tracing::info!(
            file = %experiment.path.display(),
            jobs = plan.jobs.len(),
            to_run = todo.len(),
            table = %plan.table.display(),
            "experiment planned"
        );
        // Data is loaded once, before the workers start, and shared by them.
        for job in todo {
            tasks.push(task(job, index, &plan.table, &experiment.path, cache)?);
        }
    }
    if tasks.is_empty() {
        return Ok(summaries);
    }
    let label = match experiments {
        [one] => one.path.display().to_string(),
        many => format!("{} files", many.len()),
    };
    let outcomes = run_tasks(&tasks, experiments.len(), options, &label);
    for (summary, outcome) in summaries.iter_mut().zip(outcomes?) {
        summary.ran = outcome.ran;
        summary.failed = outcome.failed;
        summary.elsewhere = outcome.elsewhere;
    }
    Ok(summaries)
}

/// The task of running `job` (of experiment `index`, from `file`) into `table`, its data
/// loaded once per data configuration and shared.
fn task<'a>(
    job: &'a Job,
    index: usize,
    table: &'a std::path::Path,
    file: &std::path::Path,
    cache: &mut DataCache,
) -> Result<workers::Task<'a>, RunError> {
    let dataset = cache
        .get(&job.config.data)
        .map_err(|cause| RunError::Data {
            file: file.to_path_buf(),
            cause,
        })?;
    Ok(workers::Task {
        job,
        experiment: index,
        table,
        dataset,
    })
}

/// Runs `tasks` (of `experiments` experiments) on `--jobs` workers, or as many as the cores
/// allow for the jobs' own threads, with progress bars headed `label`.
fn run_tasks(
    tasks: &[workers::Task],
    experiments: usize,
    options: &RunOptions,
    label: &str,
) -> Result<Vec<workers::Outcome>, RunError> {
    let mut tables: Vec<&std::path::Path> = tasks.iter().map(|t| t.table).collect();
    tables.sort();
    tables.dedup();
    for table in tables {
        crate::results::prepare_table(table)?;
    }
    let jobs: Vec<&Job> = tasks.iter().map(|t| t.job).collect();
    let workers = options
        .jobs
        .unwrap_or_else(|| workers::default_workers(&jobs, rayon::current_num_threads()))
        .clamp(1, tasks.len().max(1));
    let bars = bars::Bars::new(tasks.len(), workers, options.progress, label);
    let replace = workers::Replace {
        force: options.force,
        failed: options.rerun_failed,
        claims_in: options.claims_in.as_deref(),
        done_in: &options.done_in,
    };
    let outcomes = workers::run_jobs(tasks, experiments, workers, replace, &bars);
    bars.finish();
    outcomes
}

/// A finished job: model outcome, metrics and the per-image predictions.
pub(crate) struct Finished {
    pub outcome: ModelOutcome,
    pub eval: BinaryMetrics,
    pub eval_ci: BootstrapCi,
    pub test: Option<BinaryMetrics>,
    pub predictions: Vec<PredictionRecord>,
    pub n_train: usize,
    pub dropped_duplicates: usize,
}

pub(crate) fn execute(
    job: &Job,
    data: &Dataset,
    partition: &Partition,
    epoch_bar: &ProgressBar,
) -> Result<Finished, ModelError> {
    let cfg = &job.config;
    epoch_bar.set_length(cfg.train.epochs as u64);
    epoch_bar.set_position(0);
    let outcome = models::train_and_score(
        &job.model,
        &cfg.train,
        cfg.data.image_size,
        job.seed,
        data,
        partition,
        &mut |record| {
            epoch_bar.set_position(record.epoch as u64);
            epoch_bar.set_message(format!("loss {:.4}", record.train_loss));
            tracing::debug!(job = %job.id, epoch = record.epoch, loss = record.train_loss, val_loss = ?record.val_loss, "epoch");
        },
    )?;
    let eval_labels = data.labels(&partition.eval);
    let threshold = outcome.threshold;
    let eval = BinaryMetrics::compute(&eval_labels, &outcome.eval_scores, threshold);
    let eval_ci = bootstrap_ci(
        &eval_labels,
        &outcome.eval_scores,
        threshold,
        1000,
        job.seed,
    );
    let test = match (&partition.test, &outcome.test_scores) {
        (Some(idx), Some(scores)) => {
            Some(BinaryMetrics::compute(&data.labels(idx), scores, threshold))
        }
        _ => None,
    };
    let mut predictions = Vec::new();
    let sets = [
        ("eval", Some((&partition.eval, &outcome.eval_scores))),
        (
            "test",
            partition.test.as_ref().zip(outcome.test_scores.as_ref()),
        ),
    ];
    for (set, part) in sets {
        let Some((indices, scores)) = part else {
            continue;
        };
        for (&i, &score) in indices.iter().zip(scores.iter()) {
            let s = &data.samples[i];
            predictions.push(PredictionRecord {
                path: s.id.clone(),
                label: s.label,
                score,
                set,
                fold: job.fold,
            });
        }
    }
    Ok(Finished {
        n_train: partition.train.len(),
        dropped_duplicates: data.dropped_duplicates,
        outcome,
        eval,
        eval_ci,
        test,
        predictions,
    })
}
