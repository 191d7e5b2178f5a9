//! `microcal-run FILE...`: expand experiment files into jobs, run the ones not yet in the
//! results table, append a row per job.

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use microcal::cli;
use microcal::cli::run_args::{Launcher, RunArgs as Args};
use microcal::config::{parse_override, Experiment};
use microcal::runner::{
    launch_slurm, plan_experiments, run_experiments, DataCache, RunOptions, SlurmLaunch,
};

fn main() -> ExitCode {
    cli::end_quietly_on_closed_pipe();
    cli::init_logging();
    cli::exit_with(run(Args::parse()))
}

fn run(args: Args) -> Result<ExitCode> {
    microcal::engine::simd::select()?;
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
    for experiment in &experiments {
        microcal::search::SearchConfig::of(experiment)?;
    }
    let options = RunOptions {
        results: args.results.clone(),
        force: args.force,
        rerun_failed: args.rerun_failed,
        progress: !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        jobs: args.jobs.map(|n| n as usize),
        shard: args.shard,
        done_in: args.done_in.clone(),
        claims_in: args.claims_in.clone(),
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
        rerun_failed: args.rerun_failed,
        max_running: args.max_running,
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
            // The same account `microcal status` gives, from the merged table.
            let states = microcal::runner::status(
                experiments,
                args.results.as_deref(),
                &mut DataCache::default(),
            )?;
            print!("{}", microcal::runner::render_status(&states));
            println!(
                "slurm: {} jobs: {} ran ({failed} of them failed), {missing} missing",
                ok + failed + missing,
                ok + failed
            );
            if missing > 0 {
                println!(
                    "{missing} jobs have no row: their tasks may have hit their time limit or lost their node (see {}/task-*.log). Run the same command again to submit only those, with --sbatch=--time=HH:MM:SS (or [launcher.slurm] time) if they need longer.",
                    report.folder.display()
                );
            }
            if failed > 0 {
                println!("{failed} jobs failed: add --rerun-failed to the same command to run only them again.");
            }
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
