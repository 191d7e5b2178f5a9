//! Claims on jobs, so that processes sharing a results table run each job once.
//!
//! Before running a job, a process links `<table>.claims/<job id>` into place (one creator
//! wins; the file already holds its process id and host name when it appears). When the
//! job's row is written an empty `<job id>.done` marker appears (no data block) and the
//! claim goes; a process that dies leaves its claim behind, and another process on the same
//! host sees that its pid no longer runs and takes the job over. At the start of every run
//! [`clean_stale_claims`] removes what killed runs left. A process cannot see whether a
//! process on another host runs, so a holder touches its claim every [`HEARTBEAT`]; a claim
//! from another host is live until it has gone [`OTHER_HOST_STALE_AFTER`] untouched (a node
//! lost mid-job, say, among the Slurm tasks of a search, which share one claims folder).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::ResultsError;
use crate::host::{host_name as host, process_alive};

/// Where a platform cannot tell whether a process runs, a claim older than this is taken
/// to be left by a dead run.
pub const UNKNOWN_HOLDER_STALE_AFTER: std::time::Duration =
    std::time::Duration::from_secs(24 * 3600);

/// How often a holder touches its claim, so other hosts see it is alive.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);

/// A claim from another host untouched this long is taken to be left by a dead process
/// (ten heartbeats: room for clock skew between nodes and a network file system's cached
/// attributes).
pub const OTHER_HOST_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// A job this process holds; dropped without [`Claim::finish`] (an error, a panic), the
/// claim is released and another process may run the job.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    done: bool,
    heartbeat: Option<Heartbeat>,
}

/// A thread that touches a claim every [`HEARTBEAT`] until stopped.
#[derive(Debug)]
struct Heartbeat {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Heartbeat {
    fn start(path: PathBuf) -> Option<Self> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("claim-heartbeat".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(HEARTBEAT)
                {
                    let touched = fs::File::options()
                        .write(true)
                        .open(&path)
                        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                    if touched.is_err() {
                        return; // the claim is gone (taken over, or its folder removed)
                    }
                }
            })
            .ok()?;
        Some(Self { stop, thread })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// What trying to claim a job found.
#[derive(Debug)]
pub enum ClaimOutcome {
    /// This process runs the job.
    Claimed(Claim),
    /// A live process is running it.
    Busy,
}

/// The folder of a table's claims.
pub fn claims_dir(table: &Path) -> PathBuf {
    let mut name = table.file_name().unwrap_or_default().to_os_string();
    name.push(".claims");
    table.with_file_name(name)
}

impl Claim {
    /// Tries to claim `job_id` of the table at `table`.
    pub fn acquire(table: &Path, job_id: &str) -> Result<ClaimOutcome, ResultsError> {
        let dir = claims_dir(table);
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |cause| ResultsError::Write { path, cause }
        };
        fs::create_dir_all(&dir).map_err(write_err(&dir))?;
        let path = dir.join(job_id);
        // The claim is written under a private name and linked into place: the link fails
        // if the claim exists, and no reader ever sees a claim without its holder.
        let mine = dir.join(format!(".{job_id}.{}", std::process::id()));
        if let Err(e) = fs::write(&mine, format!("{} {}\n", std::process::id(), host())) {
            // A full disk leaves the file empty: remove it rather than leave it forever.
            let _ = fs::remove_file(&mine);
            return Err(write_err(&mine)(e));
        }
        let mut outcome = Ok(ClaimOutcome::Busy);
        for _ in 0..2 {
            match fs::hard_link(&mine, &path) {
                Ok(()) => {
                    outcome = Ok(ClaimOutcome::Claimed(Claim {
                        path: path.clone(),
                        done: false,
                        heartbeat: Heartbeat::start(path.clone()),
                    }));
                    break;
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(&path).unwrap_or_default();
                    if !stale(&holder, &path) {
                        break;
                    }
                    tracing::warn!(
                        "{}: taking over the claim of a process that no longer runs ({})",
                        path.display(),
                        holder.trim()
                    );
                    let _ = fs::remove_file(&path);
                }
                Err(e) => {
                    outcome = Err(write_err(&path)(e));
                    break;
                }
            }
        }
        let _ = fs::remove_file(&mine);
        outcome
    }

    /// Marks the job done (its row is written) with an empty marker and releases the claim.
    pub fn finish(mut self) -> Result<(), ResultsError> {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.stop();
        }
        let done = self.done_path();
        fs::File::create(&done).map_err(|cause| ResultsError::Write { path: done, cause })?;
        self.done = true;
        let _ = fs::remove_file(&self.path);
        Ok(())
    }

    /// Whether the job has a done marker: some process wrote its row, perhaps after this
    /// process planned. (The caller confirms with the table: a marker outlives a row
    /// deleted by hand.)
    pub fn marked_done(&self) -> bool {
        self.done_path().exists()
    }

    /// `<job id>.done` beside the claim.
    fn done_path(&self) -> PathBuf {
        let mut done = self.path.clone().into_os_string();
        done.push(".done");
        PathBuf::from(done)
    }
}

/// A claim whose process ran on this host and no longer does, or whose process ran on
/// another host and has not touched it for [`OTHER_HOST_STALE_AFTER`]. One that names no process
/// (damaged by hand or by the file system) counts as stale after a minute; where the
/// platform cannot tell whether its process runs, after [`UNKNOWN_HOLDER_STALE_AFTER`].
fn stale(holder: &str, path: &Path) -> bool {
    let age = || {
        fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .unwrap_or_default()
    };
    match parse_holder(holder) {
        Some((pid, h)) if h == host() => match process_alive(pid) {
            Some(alive) => !alive,
            None => {
                let old = age() > UNKNOWN_HOLDER_STALE_AFTER;
                if old {
                    tracing::warn!(
                        "{}: cannot tell here whether process {pid} runs; its claim is over {} hours old, so it is taken over",
                        path.display(),
                        UNKNOWN_HOLDER_STALE_AFTER.as_secs() / 3600
                    );
                }
                old
            }
        },
        Some(_) => age() > OTHER_HOST_STALE_AFTER,
        None => age().as_secs() > 60,
    }
}

/// `pid host`, as a claim file holds it.
fn parse_holder(text: &str) -> Option<(u32, &str)> {
    let mut parts = text.split_whitespace();
    Some((parts.next()?.parse().ok()?, parts.next()?))
}

/// The holder (pid, host) of the claim at `path` if the claim is not stale (see `stale`):
/// what `microcal status` reports as running.
pub fn live_holder(path: &Path) -> Option<(u32, String)> {
    let text = fs::read_to_string(path).ok()?;
    let (pid, host) = parse_holder(&text)?;
    (!stale(&text, path)).then(|| (pid, host.to_string()))
}

/// Removes what killed runs left in the claims folder of `table`: their private
/// temporaries (`.<job id>.<pid>`), claims whose process ran on this host and no longer
/// does, and claims of jobs whose rows are already in the table (unless their process is
/// alive here, between its row and its marker); done markers of earlier versions, which
/// held a line, are emptied. Returns how many files it removed.
pub fn clean_stale_claims(table: &Path) -> usize {
    let Ok(entries) = fs::read_dir(claims_dir(table)) else {
        return 0;
    };
    let mut in_table: Option<std::collections::HashSet<String>> = None;
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with(".microcal-probe.") {
            continue;
        }
        let remove = if let Some(private) = name.strip_prefix('.') {
            // `.<id>.<pid>`: a claim being written, or one a killed run never linked.
            private
                .rsplit_once('.')
                .and_then(|(_, pid)| pid.parse::<u32>().ok())
                .is_some_and(|pid| pid != std::process::id() && process_alive(pid) != Some(true))
        } else if name.ends_with(".done") {
            if entry.metadata().is_ok_and(|m| m.len() > 0) {
                let _ = fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(0));
            }
            false
        } else {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            let alive_here = holder_alive_here(&holder);
            stale(&holder, &path)
                || (!alive_here
                    && in_table
                        .get_or_insert_with(|| {
                            super::ResultsTable::new(table)
                                .job_ids()
                                .unwrap_or_default()
                        })
                        .contains(&name))
        };
        if remove && fs::remove_file(&path).is_ok() {
            tracing::info!("removed {}, left by a run that ended", path.display());
            removed += 1;
        }
    }
    removed
}

/// Whether a claim's holder is a process on this host that runs.
fn holder_alive_here(holder: &str) -> bool {
    parse_holder(holder).is_some_and(|(pid, h)| h == host() && process_alive(pid) == Some(true))
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.stop();
        }
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_wins_and_a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("results.csv");
        let ClaimOutcome::Claimed(claim) = Claim::acquire(&table, "j1").unwrap() else {
            panic!("first claim");
        };
        assert!(matches!(
            Claim::acquire(&table, "j1").unwrap(),
            ClaimOutcome::Busy
        ));
        drop(claim);
        let ClaimOutcome::Claimed(claim) = Claim::acquire(&table, "j1").unwrap() else {
            panic!("released by drop");
        };
        assert!(!claim.marked_done());
        claim.finish().unwrap();
        let ClaimOutcome::Claimed(again) = Claim::acquire(&table, "j1").unwrap() else {
            panic!("a finished job can be claimed again");
        };
        assert!(again.marked_done());
        drop(again);
        // A claim left by a process that died (no process has this pid).
        fs::write(
            claims_dir(&table).join("j2"),
            format!("{} {}\n", u32::MAX - 1, host()),
        )
        .unwrap();
        assert!(matches!(
            Claim::acquire(&table, "j2").unwrap(),
            ClaimOutcome::Claimed(_)
        ));
        // One held on another host is live while it is touched, and taken over once it
        // has gone untouched for OTHER_HOST_STALE_AFTER.
        let foreign = claims_dir(&table).join("j3");
        fs::write(&foreign, "1 another-host\n").unwrap();
        assert!(matches!(
            Claim::acquire(&table, "j3").unwrap(),
            ClaimOutcome::Busy
        ));
        let long_ago = std::time::SystemTime::now() - OTHER_HOST_STALE_AFTER * 2;
        fs::File::options()
            .write(true)
            .open(&foreign)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        assert!(live_holder(&foreign).is_none());
        assert!(matches!(
            Claim::acquire(&table, "j3").unwrap(),
            ClaimOutcome::Claimed(_)
        ));
    }

    #[test]
    fn what_killed_runs_left_is_cleaned_and_markers_hold_no_data() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("results.csv");
        let claims = claims_dir(&table);
        let ClaimOutcome::Claimed(claim) = Claim::acquire(&table, "done-job").unwrap() else {
            panic!("claim");
        };
        claim.finish().unwrap();
        let marker = claims.join("done-job.done");
        assert_eq!(fs::metadata(&marker).unwrap().len(), 0, "no data block");
        assert!(!claims.join("done-job").exists());

        let dead = format!("{} {}\n", u32::MAX - 1, host());
        fs::write(claims.join("killed-job"), &dead).unwrap();
        fs::write(claims.join(format!(".half-written.{}", u32::MAX - 1)), "").unwrap();
        fs::write(claims.join("old.done"), &dead).unwrap();
        let live = format!("{} {}\n", std::process::id(), host());
        fs::write(claims.join("running-job"), &live).unwrap();
        fs::write(claims.join("elsewhere"), "1 another-host\n").unwrap();
        assert_eq!(clean_stale_claims(&table), 2);
        let mut left: Vec<String> = fs::read_dir(&claims)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["done-job.done", "elsewhere", "old.done", "running-job"]
        );
        assert_eq!(fs::metadata(claims.join("old.done")).unwrap().len(), 0);

        // A claim of another host whose job's row is in the table is left by a run that
        // ended there.
        let mut row = super::super::Row::default();
        for (c, v) in [("time", "t"), ("experiment", "e"), ("file", "f")] {
            row.push(c, v);
        }
        row.push("job_id", "elsewhere");
        row.push("status", "ok");
        super::super::ResultsTable::new(&table)
            .append(&row)
            .unwrap();
        assert_eq!(clean_stale_claims(&table), 1);
        assert!(!claims.join("elsewhere").exists());
    }
}
