//! `microcal migrate-ids`: rewrites a results table made before job ids became portable
//! (scheme 1 hashed the whole resolved config with its absolute data root) to today's ids,
//! without touching a metric.
//!
//! Each row is matched to a job of the given experiment files by recomputing that job's
//! scheme-1 id with the row's own absolute `data.root`; the row then gets the job's id, its
//! data root as written in the file, the data's fingerprint and a portable `file`, and its
//! artefacts folder `runs/<old id>` moves to `runs/<new id>` with a config.toml whose data
//! root is relative. A row that matches no job stops the migration before anything is
//! written; rows already under today's ids are left as they are, so running it twice is
//! harmless.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{experiment_jobs, DataCache, RunError};
use crate::config::{Experiment, ExperimentConfig, Job};
use crate::results::{run_dir, ResultsError, ResultsTable};

/// What a migration changed.
#[derive(Debug, Default, PartialEq)]
pub struct Migration {
    /// Rows given today's ids.
    pub rewritten: usize,
    /// Rows that already had them.
    pub current: usize,
    /// Artefact folders moved to their new id.
    pub moved_runs: usize,
    /// Rows dropped because an earlier row is the same job: two experiment files that
    /// declare one job (same settings, seed and data) under different names share its row.
    pub merged: usize,
}

#[derive(Serialize)]
struct LegacyIdentity<'a> {
    config: &'a ExperimentConfig,
    seed: u64,
    fold: Option<usize>,
}

/// The id scheme 1 gave `job` when its data root resolved to `absolute_root`.
pub fn legacy_job_id(job: &Job, absolute_root: Option<&str>) -> String {
    let mut config = job.config.clone();
    config.data.root = absolute_root.map(str::to_string);
    let identity = LegacyIdentity {
        config: &config,
        seed: job.seed,
        fold: job.fold,
    };
    let json = serde_json::to_string(&identity).expect("configs serialise");
    let digest = Sha256::digest(json.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Migrates `table` (see the module doc) to the ids of `experiments`' jobs.
pub fn migrate_ids(table: &Path, experiments: &[Experiment]) -> Result<Migration, RunError> {
    let mut cache = DataCache::default();
    let mut jobs = Vec::new();
    for exp in experiments {
        jobs.extend(experiment_jobs(exp, &mut cache)?);
    }
    let table = ResultsTable::new(table);
    let mut migration = Migration::default();
    let mut renames = Vec::new();
    table.update(|header, rows| {
        let roots: Vec<Option<String>> = {
            let mut r: Vec<Option<String>> = rows
                .iter()
                .map(|row| row.get("data.root").map(str::to_string))
                .collect();
            r.sort();
            r.dedup();
            r
        };
        let mut by_legacy: HashMap<String, &Job> = HashMap::new();
        for job in &jobs {
            for root in &roots {
                by_legacy.insert(legacy_job_id(job, root.as_deref()), job);
            }
        }
        let current: HashSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
        let mut kept: HashSet<String> = HashSet::new();
        let mut unmatched = Vec::new();
        let before = rows.len();
        rows.retain_mut(|row| {
            let id = row.get("job_id").unwrap_or_default().to_string();
            if current.contains(id.as_str()) {
                migration.current += 1;
                return kept.insert(id);
            }
            let Some(job) = by_legacy.get(&id) else {
                unmatched.push(id);
                return true;
            };
            if !kept.insert(job.id.clone()) {
                renames.push((id, *job));
                return false;
            }
            row.push("job_id", &job.id);
            row.push("file", super::row::portable_file(&job.file));
            row.push(
                "data.root",
                job.config.data.root.clone().unwrap_or_default(),
            );
            row.push("data.fingerprint", &job.data_identity);
            renames.push((id, *job));
            migration.rewritten += 1;
            true
        });
        migration.merged = before - rows.len();
        if !unmatched.is_empty() {
            return Err(RunError::UnmatchedRows {
                table: table.path.clone(),
                ids: unmatched,
            });
        }
        if !header.iter().any(|h| h == "data.fingerprint") {
            header.push("data.fingerprint".to_string());
        }
        Ok(())
    })?;
    for (old, job) in renames {
        let (from, to) = (run_dir(&table.path, &old), run_dir(&table.path, &job.id));
        if !from.is_dir() {
            continue;
        }
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |cause| RunError::Results(ResultsError::Write { path, cause })
        };
        if to.is_dir() {
            // A merged row's artefacts: the job's own folder is already in place.
            std::fs::remove_dir_all(&from).map_err(write_err(&from))?;
            continue;
        }
        std::fs::rename(&from, &to).map_err(write_err(&to))?;
        let config = to.join("config.toml");
        std::fs::write(&config, job.resolved_toml(&to)).map_err(write_err(&config))?;
        migration.moved_runs += 1;
    }
    Ok(migration)
}
