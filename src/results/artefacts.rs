//! Per-job artefacts beside the table: `runs/<job id>/{config.toml, predictions.csv, history.csv}`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ResultsError;
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

/// File of a job's trained weights inside its folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// The folder of a job's artefacts: `runs/<job id>` beside the table.
pub fn run_dir(table_path: &Path, job_id: &str) -> PathBuf {
    table_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("runs")
        .join(job_id)
}

/// Writes the job's resolved config, predictions, history and (if any) weights; returns the
/// job's folder.
pub fn write_artefacts(
    table_path: &Path,
    job_id: &str,
    resolved_config: &str,
    predictions: &[PredictionRecord],
    history: &[EpochRecord],
    weights: Option<&[(String, Vec<f32>)]>,
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
    if let Some(weights) = weights {
        let path = dir.join(WEIGHTS_FILE);
        fs::write(&path, encode_weights(weights)).map_err(write_err(&path))?;
    }
    Ok(dir)
}

/// Named vectors as a safetensors file (F32, one-dimensional tensors, in the given order).
pub fn encode_weights(weights: &[(String, Vec<f32>)]) -> Vec<u8> {
    let bytes: Vec<(String, Vec<u8>, usize)> = weights
        .iter()
        .enumerate()
        // A zero-padded index keeps the order, since safetensors sorts by name.
        .map(|(i, (name, v))| {
            (
                format!("{i:04}.{name}"),
                v.iter().flat_map(|f| f.to_le_bytes()).collect(),
                v.len(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(name, data, len)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![*len], data)
                    .expect("length matches the data");
            (name.clone(), view)
        })
        .collect();
    safetensors::tensor::serialize(views, &None).expect("F32 tensors serialise")
}

/// Reads vectors written by [`encode_weights`], in their original order.
pub fn decode_weights(bytes: &[u8]) -> Result<Vec<(String, Vec<f32>)>, String> {
    let tensors = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut named: Vec<(String, Vec<f32>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, values)
        })
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(named
        .into_iter()
        .map(|(name, v)| {
            (
                name.split_once('.')
                    .map_or(name.clone(), |(_, n)| n.to_string()),
                v,
            )
        })
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_round_trip_in_order() {
        let weights = vec![
            ("layer9.weight".to_string(), vec![1.5, -2.0]),
            ("layer10.bias".to_string(), vec![0.25]),
        ];
        let decoded = decode_weights(&encode_weights(&weights)).unwrap();
        assert_eq!(decoded, weights);
    }
}
