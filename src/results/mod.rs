//! Where finished jobs go: the results table and each job's artefacts.

pub mod against_best;
mod artefacts;
pub mod cells;
mod claims;
pub mod compare;
pub mod figures;
pub mod html;
mod html_assets;
mod job_index;
mod merge;
pub mod plots;
mod preflight;
pub mod report;
mod row_check;
pub mod search_report;
mod svg;
mod table;
mod table_bench;

pub use artefacts::{run_dir, write_artefacts, PredictionRecord};
pub use claims::{claims_dir, clean_stale_claims, live_holder, Claim, ClaimOutcome};
pub use job_index::index_path;
pub use merge::{merge_tables, Merged};
pub use preflight::prepare_table;
pub use table::{ResultsTable, Row};
pub use table_bench::{bench_table, TableTimings};

use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ResultsError {
    #[error("cannot write {path}: {cause}")]
    Write {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("results table {path} is {what}; name a regular file (or a new path) with --results or [output] results")]
    NotATable { path: PathBuf, what: String },
    #[error("cannot read results table {path}: {message}; fix or move the file (it is never overwritten while unreadable)")]
    Read { path: PathBuf, message: String },
    #[error("no readable predictions.csv under {runs} for {} jobs of the table: {}; nothing was drawn (rerun them with `microcal-run --force`, or filter them out)", ids.len(), ids.join(", "))]
    MissingArtefacts { runs: PathBuf, ids: Vec<String> },
    #[error("unknown column `{key}` in {what}; the table's columns are: {}", columns.join(", "))]
    UnknownColumn {
        key: String,
        what: &'static str,
        columns: Vec<String>,
    },
}

/// Writes `bytes` to `path` whole or not at all: into a temporary file beside it, renamed
/// over it once complete, so a reader never sees half a report.
pub fn write_whole(path: &std::path::Path, bytes: &[u8]) -> Result<(), ResultsError> {
    let err = |cause| ResultsError::Write {
        path: path.to_path_buf(),
        cause,
    };
    let mut partial = path.as_os_str().to_os_string();
    partial.push(format!(".partial-{}", std::process::id()));
    let partial = std::path::PathBuf::from(partial);
    let written = std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.map_err(err)
}
