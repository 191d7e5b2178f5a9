//! Live logging during a sweep: with `MLFLOW_TRACKING_URI` set, each finished job's row is
//! posted as it lands in the table. The first failure (server down, slow past
//! [`LIVE_TIMEOUT`], or refusing) turns logging off for the rest of the process with one
//! warning that says how to export later, so a sweep never waits on, or fails for, MLflow.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::client::Client;
use super::export::post_row;
use super::MlflowError;
use crate::results::Row;

/// How long one call to the server may take during a sweep.
pub const LIVE_TIMEOUT: Duration = Duration::from_secs(5);

struct Live {
    client: Client,
    off: AtomicBool,
    /// Experiment name → id, looked up once.
    experiments: Mutex<HashMap<String, String>>,
}

fn live() -> Option<&'static Live> {
    static LIVE: OnceLock<Option<Live>> = OnceLock::new();
    LIVE.get_or_init(|| {
        let uri = std::env::var("MLFLOW_TRACKING_URI").ok()?;
        let uri = uri.trim();
        if uri.is_empty() {
            return None;
        }
        match Client::new(uri, LIVE_TIMEOUT) {
            Ok(client) => Some(Live {
                client,
                off: AtomicBool::new(false),
                experiments: Mutex::new(HashMap::new()),
            }),
            Err(e) => {
                tracing::warn!("MLFLOW_TRACKING_URI: {e}; jobs are not logged to MLflow");
                None
            }
        }
    })
    .as_ref()
}

/// Posts the finished job's `row` of the table at `table` to the server that
/// `MLFLOW_TRACKING_URI` names, replacing a run of the same job (a forced rerun). Does
/// nothing without the variable or once logging has failed.
pub fn log_finished_row(table: &Path, row: &Row) {
    let Some(live) = live() else {
        return;
    };
    if live.off.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = post(live, table, row) {
        if !live.off.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "{e}; MLflow logging is off for the rest of this run. The rows are in {}; \
                 post them later with `microcal export mlflow --tracking-uri {} --results {}` \
                 (jobs already there are skipped)",
                table.display(),
                live.client.uri(),
                table.display()
            );
        }
    }
}

fn post(live: &Live, table: &Path, row: &Row) -> Result<(), MlflowError> {
    let name = row.get("experiment").unwrap_or("microcal").to_string();
    // Held while looking up, so parallel workers create an experiment once.
    let id = {
        let mut known = live.experiments.lock().unwrap_or_else(|p| p.into_inner());
        match known.get(&name) {
            Some(id) => id.clone(),
            None => {
                let id = live.client.experiment_id(&name)?;
                known.insert(name, id.clone());
                id
            }
        }
    };
    let job = row.get("job_id").unwrap_or_default();
    for old in live.client.runs(&id, Some(job))? {
        live.client.delete_run(&old.run_id)?;
    }
    post_row(&live.client, &id, table, row).map(|_| ())
}
