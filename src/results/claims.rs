//! Claims on jobs, so that processes sharing a results table run each job once.
//!
//! Before running a job, a process links `<table>.claims/<job id>` into place (one creator
//! wins; the file already holds its process id and host name when it appears). When the job's row is written the
//! claim becomes `<job id>.done`; a process that dies leaves its claim behind, and another
//! process on the same host sees that its pid no longer runs and takes the job over. A claim
//! from another host is taken as live: on a cluster every array task writes its own table
//! (see the Slurm launcher), so claims never cross hosts there.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::table::process_alive;
use super::ResultsError;

/// A job this process holds; dropped without [`Claim::finish`] (an error, a panic), the
/// claim is released and another process may run the job.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    done: bool,
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

fn host() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".to_string())
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
        fs::write(&mine, format!("{} {}\n", std::process::id(), host()))
            .map_err(write_err(&mine))?;
        let mut outcome = Ok(ClaimOutcome::Busy);
        for _ in 0..2 {
            match fs::hard_link(&mine, &path) {
                Ok(()) => {
                    outcome = Ok(ClaimOutcome::Claimed(Claim {
                        path: path.clone(),
                        done: false,
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

    /// Marks the job done (its row is written) and releases the claim.
    pub fn finish(mut self) -> Result<(), ResultsError> {
        let done = self.done_path();
        fs::rename(&self.path, &done).map_err(|cause| ResultsError::Write { path: done, cause })?;
        self.done = true;
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

/// A claim whose process ran on this host and no longer does. One that names no process
/// (damaged by hand or by the file system) counts as stale after a minute.
fn stale(holder: &str, path: &Path) -> bool {
    let mut parts = holder.split_whitespace();
    match (
        parts.next().and_then(|p| p.parse::<u32>().ok()),
        parts.next(),
    ) {
        (Some(pid), Some(h)) => h == host() && !process_alive(pid),
        _ => fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 60),
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
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
        // One held by a live process (pid 1) elsewhere is left alone.
        fs::write(claims_dir(&table).join("j3"), "1 another-host\n").unwrap();
        assert!(matches!(
            Claim::acquire(&table, "j3").unwrap(),
            ClaimOutcome::Busy
        ));
    }
}
