//! `microcal-run FILE...`: expand experiment files into jobs, run the ones not yet in the
//! results table, append a row per job.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use microcal::cli;
use microcal::config::{parse_override, Experiment};
use microcal::runner::{plan_experiment, run_experiment, DataCache, RunOptions, Shard};

/// Run classification experiments declared in TOML files.
#[derive(Parser)]
#[command(version = microcal::LONG_VERSION, about)]
struct Args {
    /// Experiment files (TOML).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print the resolved jobs (and whether each is already in the table); run nothing.
    #[arg(long)]
    plan: bool,
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
    };
    if args.plan {
        print_plan(&experiments, &options)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut cache = DataCache::default();
    let mut failed = 0;
    for exp in &experiments {
        // Errors name the file, key or path themselves.
        let summary = run_experiment(exp, &options, &mut cache)?;
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

/// One line per job (todo or done), then a line of totals over all files.
fn print_plan(experiments: &[Experiment], options: &RunOptions) -> Result<()> {
    let mut cache = DataCache::default();
    let (mut total, mut done) = (0, 0);
    for exp in experiments {
        let plan = plan_experiment(exp, options, &mut cache)?;
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
