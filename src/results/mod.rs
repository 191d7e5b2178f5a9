//! Where finished jobs go: the results table and each job's artefacts.

mod artefacts;
pub mod cells;
mod claims;
pub mod compare;
pub mod figures;
mod merge;
pub mod plots;
mod preflight;
pub mod report;
mod row_check;
pub mod search_report;
mod table;
mod table_bench;

pub use artefacts::{run_dir, write_artefacts, PredictionRecord};
pub use claims::{claims_dir, clean_stale_claims, live_holder, Claim, ClaimOutcome};
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
