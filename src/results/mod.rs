//! Where finished jobs go: the results table and each job's artefacts.

mod artefacts;
pub mod figures;
pub mod plots;
pub mod report;
mod table;

pub use artefacts::{
    decode_weights, encode_weights, write_artefacts, PredictionRecord, WEIGHTS_FILE,
};
pub use table::{ResultsTable, Row};

use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ResultsError {
    #[error("cannot write {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot read results table {path}: {message}; fix or move the file (it is never overwritten while unreadable)")]
    Read { path: PathBuf, message: String },
}
