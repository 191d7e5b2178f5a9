//! `microcal status FILES…`: how far a sweep has got, the morning after, read-only.
//!
//! For each file's jobs: done (an `ok` row in the table, or in a Slurm task's table not yet
//! merged), running (a live claim: host and pid, or the Slurm task, and since when), failed
//! (a row that says failed or diverged, with its error's first line), and still to do, with
//! an ETA from the train seconds of the file's finished jobs. It reads the table and the
//! claims folders and writes nothing, so it can run while a sweep runs, also on a table
//! shared over a network file system (it takes no lock).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{experiment_jobs, DataCache, RunError};
use crate::config::Experiment;
use crate::results::{claims_dir, live_holder, ResultsTable, Row};

/// A job a live process holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub job_id: String,
    /// `pid on host`, or `Slurm task N, pid on host`.
    pub holder: String,
    /// Seconds since the claim was made.
    pub seconds: u64,
}

/// A job whose row says it did not finish well.
#[derive(Debug, Clone, PartialEq)]
pub struct Failed {
    pub job_id: String,
    pub status: String,
    pub error: String,
}

/// One file's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileStatus {
    pub file: PathBuf,
    pub table: PathBuf,
    pub jobs: usize,
    pub done: usize,
    /// Of `done`: rows in Slurm task tables not merged into the table yet.
    pub done_in_tasks: usize,
    pub running: Vec<Running>,
    pub failed: Vec<Failed>,
    pub todo: usize,
    /// Mean train seconds of the file's finished jobs.
    pub mean_seconds: Option<f64>,
}

impl FileStatus {
    /// Seconds until the jobs left have run one after another at the mean pace.
    pub fn eta_seconds(&self) -> Option<f64> {
        self.mean_seconds
            .map(|s| s * (self.todo + self.running.len()) as f64)
    }
}

/// The state of every file's jobs in `results` (or each file's own table).
pub fn status(
    experiments: &[Experiment],
    results: Option<&Path>,
    cache: &mut DataCache,
) -> Result<Vec<FileStatus>, RunError> {
    let mut out = Vec::new();
    for experiment in experiments {
        let table = results
            .map(Path::to_path_buf)
            .unwrap_or_else(|| experiment.results_path.clone());
        let jobs = experiment_jobs(experiment, cache)?;
        let mut rows: BTreeMap<String, Row> = BTreeMap::new();
        let tasks = task_tables(&table);
        // Task tables first: the main table's row wins where both have one.
        let mut in_main = std::collections::HashSet::new();
        for path in tasks.iter().chain([&table]) {
            let (_, read) = ResultsTable::new(path).read()?;
            for row in read {
                if let Some(id) = row.get("job_id").map(str::to_string) {
                    if path == &table {
                        in_main.insert(id.clone());
                    }
                    rows.insert(id, row);
                }
            }
        }
        let mut claims: Vec<(PathBuf, Option<usize>)> = std::iter::once((claims_dir(&table), None))
            .chain(tasks.iter().map(|t| (claims_dir(t), task_index(t))))
            .collect();
        // The tasks of a search on Slurm claim its trials in their launch folder.
        let mut launches: Vec<PathBuf> = tasks
            .iter()
            .filter_map(|t| Some(t.parent()?.parent()?.to_path_buf()))
            .collect();
        launches.dedup();
        claims.extend(
            launches
                .into_iter()
                .map(|l| (claims_dir(&l.join("search.csv")), None)),
        );
        let mut state = FileStatus {
            file: experiment.path.clone(),
            table: table.clone(),
            jobs: jobs.len(),
            ..Default::default()
        };
        let mut seconds = Vec::new();
        for job in &jobs {
            match rows.get(&job.id) {
                Some(row) if row.get("status") == Some("ok") => {
                    state.done += 1;
                    if !in_main.contains(job.id.as_str()) {
                        state.done_in_tasks += 1;
                    }
                    if let Some(s) = row.get("train_seconds").and_then(|s| s.parse().ok()) {
                        seconds.push(s);
                    }
                }
                Some(row) => state.failed.push(Failed {
                    job_id: job.id.clone(),
                    status: row.get("status").unwrap_or("unknown").to_string(),
                    error: row
                        .get("error")
                        .and_then(|e| e.lines().next())
                        .unwrap_or("")
                        .to_string(),
                }),
                None => match live_claim(&claims, &job.id) {
                    Some(running) => state.running.push(running),
                    None => state.todo += 1,
                },
            }
        }
        state.mean_seconds =
            (!seconds.is_empty()).then(|| seconds.iter().sum::<f64>() / seconds.len() as f64);
        out.push(state);
    }
    Ok(out)
}

/// The tables of the Slurm launcher's tasks beside `table` (`slurm/<stamp>/task-N/`).
fn task_tables(table: &Path) -> Vec<PathBuf> {
    let folder = table.parent().unwrap_or(Path::new(".")).join("slurm");
    let name = table.file_name().unwrap_or_default();
    let mut out = Vec::new();
    for launch in std::fs::read_dir(folder).into_iter().flatten().flatten() {
        for task in std::fs::read_dir(launch.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let candidate = task.path().join(name);
            if task.file_name().to_string_lossy().starts_with("task-") && candidate.is_file() {
                out.push(candidate);
            }
        }
    }
    out.sort();
    out
}

/// N of a task table `…/task-N/results.csv`.
fn task_index(table: &Path) -> Option<usize> {
    table
        .parent()?
        .file_name()?
        .to_str()?
        .strip_prefix("task-")?
        .parse()
        .ok()
}

/// The claim of `job_id` in any of the claims folders, unless it is stale (its process
/// ended on this host; see `results::claims`).
fn live_claim(claims: &[(PathBuf, Option<usize>)], job_id: &str) -> Option<Running> {
    claims.iter().find_map(|(dir, task)| {
        let path = dir.join(job_id);
        let (pid, host) = live_holder(&path)?;
        let seconds = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map_or(0, |d| d.as_secs());
        let holder = match task {
            Some(n) => format!("Slurm task {n}, pid {pid} on {host}"),
            None => format!("pid {pid} on {host}"),
        };
        Some(Running {
            job_id: job_id.to_string(),
            holder,
            seconds,
        })
    })
}

/// Minutes and seconds, or hours and minutes.
fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// The report `microcal status` prints; its last line is machine-readable.
pub fn render(states: &[FileStatus]) -> String {
    let mut out = String::new();
    let (mut done, mut running, mut failed, mut todo) = (0, 0, 0, 0);
    for s in states {
        out += &format!(
            "{} → {}: {} jobs: {} done{}, {} running, {} failed, {} to do{}\n",
            s.file.display(),
            s.table.display(),
            s.jobs,
            s.done,
            if s.done_in_tasks > 0 {
                format!(
                    " ({} in Slurm task tables, not merged yet)",
                    s.done_in_tasks
                )
            } else {
                String::new()
            },
            s.running.len(),
            s.failed.len(),
            s.todo,
            match s.eta_seconds() {
                Some(eta) if s.todo + s.running.len() > 0 => format!(
                    "; ETA {} at {:.1} s a job, one at a time",
                    duration(eta),
                    s.mean_seconds.unwrap_or(0.0)
                ),
                _ => String::new(),
            }
        );
        for r in &s.running {
            out += &format!(
                "  running {}: {}, for {}\n",
                r.job_id,
                r.holder,
                duration(r.seconds as f64)
            );
        }
        for f in &s.failed {
            out += &format!("  {} {}: {}\n", f.status, f.job_id, f.error);
        }
        done += s.done;
        running += s.running.len();
        failed += s.failed.len();
        todo += s.todo;
    }
    out += &format!("done={done} running={running} failed={failed} todo={todo}\n");
    out
}
