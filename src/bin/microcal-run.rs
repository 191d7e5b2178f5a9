//! `microcal-run FILE...`: expand experiment files into jobs, run the ones not yet in the
//! results table, append a row per job.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use microcal::cli;
use microcal::config::{parse_override, Experiment};
use microcal::results::ResultsTable;
use microcal::runner::{run_experiment, DataCache, RunOptions};

/// Run classification experiments declared in TOML files.
#[derive(Parser)]
#[command(version, about)]
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
    if args.plan {
        for exp in &experiments {
            print_plan(exp, args.results.as_ref())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let options = RunOptions {
        results: args.results.clone(),
        force: args.force,
        progress: !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let mut cache = DataCache::default();
    let mut failed = 0;
    for exp in &experiments {
        // Errors name the file, key or path themselves.
        let summary = run_experiment(exp, &options, &mut cache)?;
        println!(
            "{}: {} jobs, {} run, {} already in {}, {} failed",
            exp.path.display(),
            summary.planned,
            summary.ran,
            summary.skipped,
            summary.table.display(),
            summary.failed
        );
        failed += summary.failed;
    }
    Ok(if failed > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_plan(exp: &Experiment, results: Option<&PathBuf>) -> Result<()> {
    let table_path = results.cloned().unwrap_or_else(|| exp.results_path.clone());
    let done = ResultsTable::new(&table_path).job_ids()?;
    let jobs = exp.jobs()?;
    println!(
        "{} → {} ({} jobs)",
        exp.path.display(),
        table_path.display(),
        jobs.len()
    );
    for job in &jobs {
        let fold = job.fold.map(|f| format!(" fold={f}")).unwrap_or_default();
        let grid: Vec<String> = job.grid.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let state = if done.contains(&job.id) {
            "done"
        } else {
            "todo"
        };
        println!(
            "  {} {state} seed={}{fold} {}",
            job.id,
            job.seed,
            grid.join(" ")
        );
    }
    Ok(())
}
