//! `microcal-run --launcher slurm`: the job list as a Slurm job array.
//!
//! Each of N array tasks runs this microcal-run with `--shard $SLURM_ARRAY_TASK_ID/N` on the
//! same files and overrides. Tasks may run on different nodes, and file locks on a network
//! file system are not always reliable, so a task never writes the main table: it writes its
//! own (`task-<i>/results.csv` in the launch folder, artefacts beside it) and reads the main
//! table only to skip jobs already there. A second job, submitted with
//! `--dependency=afterany:<array>`, runs once every task has ended, however it ended, and
//! merges the task tables into the main table (`microcal merge-tables`), moving each job's
//! artefacts along. Submitting the same command again resumes: jobs already merged are
//! skipped and the rest are spread over a new array. The scripts and the tasks' logs stay in
//! the launch folder, `<table folder>/slurm/<time>/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use thiserror::Error;

use super::{experiment_jobs, DataCache};
use crate::config::{Experiment, SlurmSettings};
use crate::results::{ResultsError, ResultsTable};

#[derive(Debug, Error)]
pub enum SlurmError {
    #[error(
        "the Slurm launcher writes one results table; these files name {0} and {1}: pass --results"
    )]
    TwoTables(PathBuf, PathBuf),
    #[error("cannot write {path}: {cause}")]
    Write {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("cannot run {program} (is Slurm installed and SLURM_CONF set?): {cause}")]
    Spawn {
        program: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("{program} failed: {stderr}")]
    Failed { program: String, stderr: String },
    #[error("`microcal` not found next to {0}: the merge job needs it")]
    NoMerger(PathBuf),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Run(#[from] Box<super::RunError>),
}

/// What the command line asked of the launcher.
#[derive(Debug, Clone, Default)]
pub struct SlurmLaunch {
    pub tasks: usize,
    pub wait: bool,
    /// Printed, not submitted.
    pub dry_run: bool,
    /// Extra sbatch options (after those of `[launcher.slurm]`).
    pub sbatch: Vec<String>,
    /// `--set` overrides, passed on to every task.
    pub overrides: Vec<String>,
    /// `--results`, if given.
    pub results: Option<PathBuf>,
    /// `--rerun-failed`: tasks rerun the jobs whose rows say failed or diverged, and the
    /// merge replaces those rows.
    pub rerun_failed: bool,
    /// `--max-running`: at most this many array tasks at once (Slurm's `%N`); else
    /// `[launcher.slurm] max_running`.
    pub max_running: Option<u32>,
}

/// The outcome of a launch.
#[derive(Debug, Default)]
pub struct SlurmReport {
    pub folder: PathBuf,
    pub array_script: String,
    pub merge_script: String,
    pub array_id: Option<String>,
    pub merge_id: Option<String>,
    /// After `--wait`: jobs with an `ok` row, jobs with another status, jobs without a row.
    pub counts: Option<(usize, usize, usize)>,
}

/// Quotes a word for bash.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn absolute(path: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// `#SBATCH` lines from the experiment's settings and the command line.
fn resource_lines(settings: Option<&SlurmSettings>, extra: &[String]) -> String {
    let mut lines = String::new();
    if let Some(s) = settings {
        let fields = [
            ("partition", s.partition.clone()),
            ("account", s.account.clone()),
            ("time", s.time.clone()),
            ("cpus-per-task", s.cpus_per_task.map(|c| c.to_string())),
            ("mem", s.mem.clone()),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                let _ = writeln!(lines, "#SBATCH --{name}={v}");
            }
        }
        for e in &s.extra {
            let _ = writeln!(lines, "#SBATCH {e}");
        }
    }
    for e in extra {
        let _ = writeln!(lines, "#SBATCH {e}");
    }
    lines
}

/// Writes the scripts and (unless a dry run) submits them; with `wait`, waits for both jobs
/// and counts the experiments' jobs in the table.
pub fn launch_slurm(
    experiments: &[Experiment],
    launch: &SlurmLaunch,
) -> Result<SlurmReport, SlurmError> {
    let table = match &launch.results {
        Some(t) => t.clone(),
        None => {
            let first = experiments[0].results_path.clone();
            if let Some(other) = experiments.iter().find(|e| e.results_path != first) {
                return Err(SlurmError::TwoTables(first, other.results_path.clone()));
            }
            first
        }
    };
    let table = absolute(&table);
    let me = std::env::current_exe().map_err(|cause| SlurmError::Spawn {
        program: "microcal-run".into(),
        cause,
    })?;
    let merger = me.with_file_name("microcal");
    if !merger.exists() {
        return Err(SlurmError::NoMerger(me));
    }
    let stamp = super::timestamp_utc().replace([':', '-'], "");
    let folder = table
        .parent()
        .unwrap_or(Path::new("."))
        .join("slurm")
        .join(format!("{stamp}-{}", std::process::id()));
    let cwd = std::env::current_dir().unwrap_or_default();
    let n = launch.tasks.max(1);
    let files: Vec<String> = experiments
        .iter()
        .map(|e| quote(&absolute(&e.path).to_string_lossy()))
        .collect();
    let sets: Vec<String> = launch
        .overrides
        .iter()
        .map(|s| format!("--set {}", quote(s)))
        .collect();
    let settings = experiments.iter().find_map(|e| {
        e.configs()
            .ok()?
            .into_iter()
            .find_map(|(c, _)| c.launcher.slurm.clone())
    });
    let f = |p: &Path| quote(&p.to_string_lossy());
    // A search is not split by shard: every task takes the trials no other task holds
    // (claims in one folder shared by the tasks) and reads the other tasks' tables for their
    // scores, so a round's trials run across the tasks.
    let shared = if experiments.iter().any(|e| e.search.is_some()) && n > 1 {
        let mut words = format!("--claims-in {} ", f(&folder.join("search.csv")));
        for task in 0..n {
            let _ = write!(
                words,
                "--done-in {} ",
                f(&folder.join(format!("task-{task}")).join("results.csv"))
            );
        }
        words + "\\\n  "
    } else {
        String::new()
    };
    let array_script = format!(
        "#!/bin/bash\n#SBATCH --job-name=microcal\n#SBATCH --array=0-{last}{throttle}\n#SBATCH --output={log}\n{resources}\
         set -euo pipefail\ncd {cwd}\n\
         exec {me} --no-progress --shard \"$SLURM_ARRAY_TASK_ID/{n}\" \\\n  --results {folder}/task-\"$SLURM_ARRAY_TASK_ID\"/results.csv \\\n  --done-in {table} {shared}{rerun}{sets}{files}\n",
        last = n - 1,
        throttle = launch
            .max_running
            .or_else(|| settings.as_ref().and_then(|s| s.max_running))
            .map(|m| format!("%{m}"))
            .unwrap_or_default(),
        log = folder.join("task-%a.log").display(),
        resources = resource_lines(settings.as_ref(), &launch.sbatch),
        cwd = f(&cwd),
        me = f(&me),
        folder = f(&folder),
        table = f(&table),
        sets = sets.iter().map(|s| format!("{s} ")).collect::<String>(),
        shared = shared,
        rerun = if launch.rerun_failed {
            "--rerun-failed "
        } else {
            ""
        },
        files = files.join(" "),
    );
    let merge_script = format!(
        "#!/bin/bash\n#SBATCH --job-name=microcal-merge\n#SBATCH --output={log}\n\
         set -euo pipefail\nexec {merger} merge-tables --into {table} {folder}/task-*/results.csv\n",
        log = folder.join("merge.log").display(),
        merger = f(&merger),
        table = f(&table),
        folder = f(&folder),
    );
    let mut report = SlurmReport {
        folder: folder.clone(),
        array_script,
        merge_script,
        ..Default::default()
    };
    if launch.dry_run {
        return Ok(report);
    }
    let write = |path: PathBuf, text: &str| {
        std::fs::create_dir_all(&folder)
            .and_then(|_| std::fs::write(&path, text))
            .map_err(|cause| SlurmError::Write { path, cause })
    };
    write(folder.join("array.sh"), &report.array_script)?;
    write(folder.join("merge.sh"), &report.merge_script)?;
    let array = sbatch(&[&folder.join("array.sh").to_string_lossy()])?;
    let merge = sbatch(&[
        &format!("--dependency=afterany:{array}"),
        &folder.join("merge.sh").to_string_lossy(),
    ])?;
    report.array_id = Some(array.clone());
    report.merge_id = Some(merge.clone());
    if launch.wait {
        wait_for(&[&array, &merge])?;
        let mut cache = DataCache::default();
        let (_, rows) = ResultsTable::new(&table).read()?;
        let status: std::collections::HashMap<&str, &str> = rows
            .iter()
            .filter_map(|r| Some((r.get("job_id")?, r.get("status").unwrap_or(""))))
            .collect();
        let mut counts = (0, 0, 0);
        for exp in experiments {
            for job in experiment_jobs(exp, &mut cache).map_err(Box::new)? {
                match status.get(job.id.as_str()) {
                    Some(&"ok") => counts.0 += 1,
                    Some(_) => counts.1 += 1,
                    None => counts.2 += 1,
                }
            }
        }
        report.counts = Some(counts);
    }
    Ok(report)
}

/// Submits with `sbatch --parsable`; returns the job id.
fn sbatch(args: &[&str]) -> Result<String, SlurmError> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .output()
        .map_err(|cause| SlurmError::Spawn {
            program: "sbatch".into(),
            cause,
        })?;
    if !out.status.success() {
        return Err(SlurmError::Failed {
            program: "sbatch".into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Polls `squeue` until none of these jobs (and none of an array's tasks) is queued or
/// running. (`sbatch --wait` polls every 10 s; this answers within half a second.)
fn wait_for(ids: &[&str]) -> Result<(), SlurmError> {
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%i", "-j", &ids.join(",")])
            .output()
            .map_err(|cause| SlurmError::Spawn {
                program: "squeue".into(),
                cause,
            })?;
        // squeue fails for ids it has forgotten: then they are long finished.
        if !out.status.success() || out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_bash() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn resources_come_from_the_file_then_the_command_line() {
        let settings = SlurmSettings {
            partition: Some("gpu".into()),
            time: Some("1:00:00".into()),
            cpus_per_task: Some(2),
            extra: vec!["--qos=long".into()],
            ..Default::default()
        };
        let lines = resource_lines(Some(&settings), &["--time=2:00:00".into()]);
        assert_eq!(
            lines,
            "#SBATCH --partition=gpu\n#SBATCH --time=1:00:00\n#SBATCH --cpus-per-task=2\n\
             #SBATCH --qos=long\n#SBATCH --time=2:00:00\n"
        );
    }
}
