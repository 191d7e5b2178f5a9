//! `microcal-run FILE...`: expand experiment files into jobs, run the ones not yet in the
//! results table, append a row per job.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use microcal::cli;
use microcal::config::{parse_override, Experiment};
use microcal::runner::{
    launch_slurm, plan_experiments, run_experiments, DataCache, RunOptions, Shard, SlurmLaunch,
};

/// Run classification experiments declared in TOML files.
#[derive(Parser)]
#[command(
    version = microcal::LONG_VERSION,
    about,
    after_help = "Every key of an experiment file, with its type, default and bound: docs/experiment-file.md"
)]
struct Args {
    /// Experiment files (TOML).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print the resolved jobs (and whether each is already in the table); run nothing.
    #[arg(long)]
    plan: bool,
    /// Print each file as the runner reads it (bases merged, --set applied) as TOML; run
    /// nothing.
    #[arg(long)]
    show: bool,
    /// Override a key of every file, e.g. --set train.epochs=5 --set model.wavelet.family=db2.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Results table to use instead of the one each file names.
    #[arg(long, value_name = "PATH")]
    results: Option<PathBuf>,
    /// Re-run jobs already in the table (their rows are replaced).
    #[arg(long)]
    force: bool,
    /// Do not draw progress bars.
    #[arg(long)]
    no_progress: bool,
    /// Jobs to run at once, each on its share of the cores (default: as many as the cores
    /// allow for the jobs' own threads; 1 runs them one after another).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: Option<u32>,
    /// Run only part I of N (0 <= I < N) of the job list, chosen by job id: N processes
    /// given the same files and shards 0/N..N-1/N run every job once between them.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    shard: Option<Shard>,
    /// Jobs in this table count as done too (repeatable); Slurm tasks read the main table so.
    #[arg(long, value_name = "TABLE")]
    done_in: Vec<PathBuf>,
    /// Submit the jobs elsewhere instead of running them here.
    #[arg(long, value_enum)]
    launcher: Option<Launcher>,
    /// With --launcher slurm: array tasks (each runs one shard of the job list).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10000))]
    tasks: u32,
    /// With --launcher slurm: wait for the array and the merge, then count the jobs.
    #[arg(long)]
    wait: bool,
    /// With --launcher slurm: an sbatch option for each task (repeatable), e.g.
    /// --sbatch=--time=2:00:00; after those of [launcher.slurm].
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    sbatch: Vec<String>,
    /// With --launcher slurm: print the scripts, submit nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Launcher {
    /// A Slurm job array and a job that merges the tasks' tables (see README).
    Slurm,
}

fn main() -> ExitCode {
    cli::end_quietly_on_closed_pipe();
    cli::init_logging();
    cli::exit_with(run(Args::parse()))
}

fn run(args: Args) -> Result<ExitCode> {
    let overrides = args
        .set
        .iter()
        .map(|s| parse_override(s))
        .collect::<Result<Vec<_>, _>>()?;
    // Check every file before running any, so a typo in the last file costs nothing.
    let experiments = args
        .files
        .iter()
        .map(|f| Experiment::load(f, &overrides))
        .collect::<Result<Vec<_>, _>>()?;
    let options = RunOptions {
        results: args.results.clone(),
        force: args.force,
        progress: !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        jobs: args.jobs.map(|n| n as usize),
        shard: args.shard,
        done_in: args.done_in.clone(),
    };
    if args.show {
        for exp in &experiments {
            println!("# {}\n{}", exp.path.display(), exp.resolved_toml());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(Launcher::Slurm) = args.launcher {
        return submit_to_slurm(&experiments, &args);
    }
    if args.plan {
        print_plan(&experiments, &options)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut cache = DataCache::default();
    let mut failed = 0;
    // Errors name the file, key or path themselves.
    let summaries = run_experiments(&experiments, &options, &mut cache)?;
    for (exp, summary) in experiments.iter().zip(summaries) {
        let mut line = format!(
            "{}: {} jobs, {} run, {} already in {}, {} failed",
            exp.path.display(),
            summary.planned,
            summary.ran,
            summary.skipped,
            summary.table.display(),
            summary.failed
        );
        if summary.elsewhere > 0 {
            line += &format!(", {} left to other processes", summary.elsewhere);
        }
        if summary.other_shards > 0 {
            line += &format!(", {} in other shards", summary.other_shards);
        }
        println!("{line}");
        failed += summary.failed;
    }
    Ok(if failed > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn submit_to_slurm(experiments: &[Experiment], args: &Args) -> Result<ExitCode> {
    let launch = SlurmLaunch {
        tasks: args.tasks as usize,
        wait: args.wait,
        dry_run: args.dry_run,
        sbatch: args.sbatch.clone(),
        overrides: args.set.clone(),
        results: args.results.clone(),
    };
    let report = launch_slurm(experiments, &launch)?;
    if args.dry_run {
        println!(
            "# {}/array.sh\n{}",
            report.folder.display(),
            report.array_script
        );
        println!(
            "# {}/merge.sh\n{}",
            report.folder.display(),
            report.merge_script
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "submitted array job {} ({} tasks) and merge job {}; scripts and logs in {}",
        report.array_id.as_deref().unwrap_or("?"),
        args.tasks,
        report.merge_id.as_deref().unwrap_or("?"),
        report.folder.display()
    );
    Ok(match report.counts {
        Some((ok, failed, missing)) => {
            println!(
                "slurm: {} jobs: {} ran ({failed} of them failed), {missing} missing",
                ok + failed + missing,
                ok + failed
            );
            if failed + missing > 0 {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        None => ExitCode::SUCCESS,
    })
}

/// One line per job (todo or done), then a line of totals over all files.
fn print_plan(experiments: &[Experiment], options: &RunOptions) -> Result<()> {
    let mut cache = DataCache::default();
    let (mut total, mut done) = (0, 0);
    for (exp, plan) in experiments
        .iter()
        .zip(plan_experiments(experiments, options, &mut cache)?)
    {
        println!(
            "{} → {} ({} jobs)",
            exp.path.display(),
            plan.table.display(),
            plan.jobs.len()
        );
        for (job, present) in &plan.jobs {
            let fold = job.fold.map(|f| format!(" fold={f}")).unwrap_or_default();
            let grid: Vec<String> = job.grid.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let state = if *present { "done" } else { "todo" };
            println!(
                "  {} {state} seed={}{fold} {}",
                job.id,
                job.seed,
                grid.join(" ")
            );
        }
        total += plan.jobs.len();
        done += plan.done();
    }
    if options.force {
        println!("total: {total} jobs, {total} to run ({done} already in the table, rerun because of --force)");
    } else {
        println!(
            "total: {total} jobs, {} to run, {done} already in the table (--force would rerun them)",
            total - done
        );
    }
    Ok(())
}
