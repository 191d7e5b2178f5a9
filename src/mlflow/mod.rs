//! MLflow tracking: `microcal export mlflow` posts one MLflow run per row of a results
//! table, and `microcal-run` logs each finished job the same way when
//! `MLFLOW_TRACKING_URI` is set (MLflow's own convention). Both speak MLflow's REST API
//! directly (there is no Rust MLflow client to prefer), and both are idempotent: a job is
//! found on the server by its `job_id` tag.
//!
//! The table stays the record: a server that is down or slow costs a warning and, for a
//! sweep, at most one time limit, never a row.

mod client;
mod export;
mod live;

pub use client::{Client, RunInfo};
pub use export::{export_rows, ExportSummary};
pub use live::{log_finished_row, LIVE_TIMEOUT};

use thiserror::Error;

use crate::results::ResultsError;

#[derive(Debug, Error)]
pub enum MlflowError {
    #[error("tracking URI `{0}` is not an http:// or https:// address (for example http://127.0.0.1:5000)")]
    Uri(String),
    #[error("MLflow at {uri} did not answer: {cause}; is `mlflow server` running there?")]
    Unreachable { uri: String, cause: String },
    #[error("MLflow refused {call}: HTTP {status} {code}: {message}")]
    Refused {
        call: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error(transparent)]
    Table(#[from] ResultsError),
}
