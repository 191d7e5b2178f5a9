//! Merging the tables that separate processes wrote (one per Slurm array task) into one.

use std::path::{Path, PathBuf};

use super::{run_dir, ResultsError, ResultsTable};

/// What a merge did.
#[derive(Debug, Default, PartialEq)]
pub struct Merged {
    /// Rows added to the main table.
    pub added: usize,
    /// Rows whose job the main table already had (merged before, or run twice).
    pub already: usize,
    /// Rows that replaced a failed or diverged row of the same job (`--rerun-failed`).
    pub replaced: usize,
}

/// Appends to `main` every row of `parts` whose job it does not have yet, and replaces a row
/// that says failed or diverged by a part's `ok` row of the same job, moving each such job's
/// artefacts folder (`runs/<id>` beside the part) beside `main` first. Missing parts are
/// skipped (a task that never started wrote none). Merging again adds nothing.
pub fn merge_tables(main: &Path, parts: &[PathBuf]) -> Result<Merged, ResultsError> {
    let table = ResultsTable::new(main);
    let target = table.file()?;
    let (_, rows) = table.read()?;
    let mut have: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut failed = std::collections::HashSet::new();
    for row in &rows {
        if let Some(id) = row.get("job_id") {
            have.insert(id.to_string());
            if row.get("status") != Some("ok") {
                failed.insert(id.to_string());
            }
        }
    }
    let mut merged = Merged::default();
    for part in parts.iter().filter(|p| p.exists()) {
        let (header, rows) = ResultsTable::new(part).read()?;
        // The part's columns, empty ones included, so the merged table has the header a
        // single run would have written.
        table.ensure_columns(&header)?;
        for row in rows {
            let Some(id) = row.get("job_id").map(str::to_string) else {
                continue;
            };
            let replaces = failed.contains(&id) && row.get("status") == Some("ok");
            if have.contains(&id) && !replaces {
                merged.already += 1;
                continue;
            }
            let (from, to) = (run_dir(part, &id), run_dir(&target, &id));
            if replaces && from.is_dir() && to.is_dir() {
                std::fs::remove_dir_all(&to).map_err(|cause| ResultsError::Write {
                    path: to.clone(),
                    cause,
                })?;
            }
            if from.is_dir() && !to.exists() {
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(|cause| ResultsError::Write {
                        path: parent.to_path_buf(),
                        cause,
                    })?;
                }
                std::fs::rename(&from, &to).map_err(|cause| ResultsError::Write {
                    path: to.clone(),
                    cause,
                })?;
            }
            if replaces {
                table.upsert(&row)?;
                failed.remove(&id);
                merged.replaced += 1;
            } else {
                table.append(&row)?;
                merged.added += 1;
            }
            have.insert(id);
        }
    }
    Ok(merged)
}
