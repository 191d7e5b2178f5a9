//! Before the first job trains: can its row and artefacts be written, and what did killed
//! runs leave behind?
//!
//! Why: a table that cannot be written was found only after training, leaving `runs/`
//! folders without rows; and claims of killed runs stayed forever. Both are settled here,
//! once per table, before any work is spent.

use std::fs::{self, OpenOptions};
use std::path::Path;

use super::artefacts::run_dir;
use super::claims::{claims_dir, clean_stale_claims};
use super::ResultsError;

/// Checks that the table's folder, the table, its `runs/` and its claims folder can be
/// written (creating the folders), then removes what killed runs left in the claims folder.
pub fn prepare_table(table: &Path) -> Result<(), ResultsError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| ResultsError::Write { path, cause }
    };
    let folder = table
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let runs = run_dir(table, "x");
    let runs = runs.parent().unwrap_or(folder);
    let claims = claims_dir(table);
    for dir in [folder, runs, claims.as_path()] {
        fs::create_dir_all(dir).map_err(write_err(dir))?;
        probe(dir).map_err(write_err(dir))?;
    }
    if table.exists() {
        OpenOptions::new()
            .append(true)
            .open(table)
            .map_err(write_err(table))?;
    }
    clean_stale_claims(table);
    Ok(())
}

/// Creates and removes a file in `dir`: a folder's permissions and a read-only mount both
/// answer only to a real write.
fn probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(format!(".microcal-probe.{}", std::process::id()));
    let written = fs::write(&path, b"");
    let _ = fs::remove_file(&path);
    written
}
