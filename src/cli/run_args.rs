//! The command line of `microcal-run`, here rather than in its binary so that `microcal
//! completions` and `microcal man` can describe both programs.

use std::path::PathBuf;

use clap::Parser;

use crate::runner::Shard;

/// Run classification experiments declared in TOML files.
#[derive(Parser)]
#[command(
    name = "microcal-run",
    version = crate::LONG_VERSION,
    about,
    after_help = "Every key of an experiment file, with its type, default and bound: docs/experiment-file.md"
)]
pub struct RunArgs {
    /// Experiment files (TOML).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print the resolved jobs (and whether each is already in the table); run nothing.
    #[arg(long)]
    pub plan: bool,
    /// Print each file as the runner reads it (bases merged, --set applied) as TOML; run
    /// nothing.
    #[arg(long)]
    pub show: bool,
    /// Override a key of every file, e.g. --set train.epochs=5 --set model.wavelet.family=db2.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Results table to use instead of the one each file names.
    #[arg(long, value_name = "PATH")]
    pub results: Option<PathBuf>,
    /// Re-run jobs already in the table (their rows are replaced).
    #[arg(long)]
    pub force: bool,
    /// Re-run only the jobs whose rows say failed or diverged (their rows are replaced; ok
    /// rows are untouched). Works with --launcher slurm too.
    #[arg(long, conflicts_with = "force")]
    pub rerun_failed: bool,
    /// Do not draw progress bars.
    #[arg(long)]
    pub no_progress: bool,
    /// Jobs to run at once, each on its share of the cores (default: as many as the cores
    /// allow for the jobs' own threads; 1 runs them one after another).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub jobs: Option<u32>,
    /// Run only part I of N (0 <= I < N) of the job list, chosen by job id: N processes
    /// given the same files and shards 0/N..N-1/N run every job once between them.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Jobs in this table count as done too (repeatable); Slurm tasks read the main table so.
    #[arg(long, value_name = "TABLE")]
    pub done_in: Vec<PathBuf>,
    /// Claim jobs in this table's claims folder (`TABLE.claims/`) rather than the results
    /// table's: the Slurm tasks of a search share one, so each trial runs once.
    #[arg(long, value_name = "TABLE")]
    pub claims_in: Option<PathBuf>,
    /// Submit the jobs elsewhere instead of running them here.
    #[arg(long, value_enum)]
    pub launcher: Option<Launcher>,
    /// With --launcher slurm: array tasks (each runs one shard of the job list).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub tasks: u32,
    /// With --launcher slurm: at most N array tasks at once (Slurm's `%N` throttle); wins
    /// over `[launcher.slurm] max_running`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub max_running: Option<u32>,
    /// With --launcher slurm: wait for the array and the merge, then count the jobs.
    #[arg(long)]
    pub wait: bool,
    /// With --launcher slurm: an sbatch option for each task (repeatable), e.g.
    /// --sbatch=--time=2:00:00; after those of [launcher.slurm].
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch: Vec<String>,
    /// With --launcher slurm: print the scripts, submit nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Launcher {
    /// A Slurm job array and a job that merges the tasks' tables (see docs/cluster.md).
    Slurm,
}
