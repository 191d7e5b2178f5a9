//! Per-job artefacts beside the table: `runs/<job id>/{config.toml, predictions.csv, history.csv}`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ResultsError;
use crate::models::MODEL_FILE;
use crate::train::EpochRecord;

/// One scored image.
#[derive(Debug, Clone, Serialize)]
pub struct PredictionRecord {
    pub path: String,
    pub label: u8,
    pub score: f64,
    /// `eval` (the job's headline set) or `test` (the Test part scored by a k-fold job).
    pub set: &'static str,
    pub fold: Option<usize>,
}

/// The folder of a job's artefacts: `runs/<job id>` beside the table.
pub fn run_dir(table_path: &Path, job_id: &str) -> PathBuf {
    table_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("runs")
        .join(job_id)
}

/// Writes the job's resolved config, predictions, history and fitted model (`model`, a
/// model file's bytes); returns the job's folder.
pub fn write_artefacts(
    table_path: &Path,
    job_id: &str,
    resolved_config: &str,
    predictions: &[PredictionRecord],
    history: &[EpochRecord],
    model: &[u8],
) -> Result<PathBuf, ResultsError> {
    let dir = run_dir(table_path, job_id);
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| ResultsError::Write { path, cause }
    };
    fs::create_dir_all(&dir).map_err(write_err(&dir))?;
    let config_path = dir.join("config.toml");
    fs::write(&config_path, resolved_config).map_err(write_err(&config_path))?;
    write_csv(&dir.join("predictions.csv"), predictions)?;
    write_csv(&dir.join("history.csv"), history)?;
    let path = dir.join(MODEL_FILE);
    fs::write(&path, model).map_err(write_err(&path))?;
    Ok(dir)
}

fn write_csv<T: Serialize>(path: &Path, records: &[T]) -> Result<(), ResultsError> {
    let err = |e: csv::Error| ResultsError::Write {
        path: path.to_path_buf(),
        cause: std::io::Error::other(e.to_string()),
    };
    let mut writer = csv::Writer::from_path(path).map_err(err)?;
    for r in records {
        writer.serialize(r).map_err(err)?;
    }
    writer.flush().map_err(|cause| ResultsError::Write {
        path: path.to_path_buf(),
        cause,
    })
}

/// One job's scored images: (path, label, score) of its evaluation set.
pub(crate) fn read_predictions(run_dir: &Path) -> Option<Vec<(String, u8, f64)>> {
    let mut reader = csv::Reader::from_path(run_dir.join("predictions.csv")).ok()?;
    let mut out = Vec::new();
    for record in reader.records() {
        let r = record.ok()?;
        if r.get(3) == Some("eval") {
            out.push((
                r.get(0)?.to_string(),
                r.get(1)?.parse().ok()?,
                r.get(2)?.parse().ok()?,
            ));
        }
    }
    Some(out)
}
