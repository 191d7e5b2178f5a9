//! A results row as an MLflow run: the experiment is the row's experiment; params are its
//! configuration columns (and seed and fold); metrics are its numeric results, with the
//! job's per-epoch history (`history.csv`) as metric steps; tags are `job_id`, `git_rev`,
//! `data.fingerprint` and `status` (and the file, SIMD path and machine); `config.toml` and
//! `predictions.csv` go up as artefacts where the server takes uploads.

use std::collections::BTreeMap;
use std::path::Path;

use super::client::{Client, RunInfo};
use super::MlflowError;
use crate::results::{run_dir, Row};

/// Columns that are neither configuration nor metrics.
const NOT_METRICS: &[&str] = &[
    "time",
    "experiment",
    "file",
    "job_id",
    "status",
    "error",
    "git_rev",
    "seed",
    "fold",
    "microcal_version",
    "search_role",
    "search_trial",
    "search_rung",
    "simd",
    "machine",
    "row_check",
];

/// Row columns sent as tags (besides `job_id`), under these names.
const TAGS: &[(&str, &str)] = &[
    ("git_rev", "git_rev"),
    ("data.fingerprint", "data.fingerprint"),
    ("status", "status"),
    ("file", "microcal.file"),
    ("microcal_version", "microcal.version"),
    ("simd", "microcal.simd"),
    ("machine", "microcal.machine"),
    ("search_role", "microcal.search_role"),
    ("search_trial", "microcal.search_trial"),
    ("search_rung", "microcal.search_rung"),
    ("error", "microcal.error"),
];

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSummary {
    pub exported: usize,
    /// Rows whose job the server already had.
    pub already: usize,
    /// Artefact files uploaded.
    pub artefacts: usize,
    /// Runs whose artefacts the server does not proxy (none were uploaded for them).
    pub no_uploads: usize,
}

/// Milliseconds since 1970 of a row's `time` (`2026-11-27T11:01:03Z`), or 0.
pub fn epoch_ms(time: &str) -> i64 {
    let parse = || -> Option<i64> {
        let (date, clock) = time.trim_end_matches('Z').split_once('T')?;
        let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let mut c = clock.split(':').map(|x| x.parse::<f64>().ok());
        let (h, min, s) = (c.next()??, c.next()??, c.next()??);
        // Days from civil (Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(days * 86_400_000 + ((h * 3600.0 + min * 60.0 + s) * 1000.0) as i64)
    };
    parse().unwrap_or(0)
}

fn is_param(column: &str) -> bool {
    (column.contains('.') && column != "data.fingerprint") || column == "seed" || column == "fold"
}

/// A row as MLflow takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFields {
    pub params: Vec<(String, String)>,
    pub metrics: Vec<(String, f64)>,
    pub tags: Vec<(String, String)>,
}

/// The row's params, metrics and tags.
pub fn run_fields(row: &Row) -> RunFields {
    let mut params = Vec::new();
    let mut metrics = Vec::new();
    for (column, value) in &row.columns {
        if value.is_empty() {
            continue;
        }
        if is_param(column) {
            // MLflow keeps at most 6000 characters of a param.
            params.push((column.clone(), value.chars().take(6000).collect()));
        } else if !NOT_METRICS.contains(&column.as_str()) {
            if let Some(v) = value.parse::<f64>().ok().filter(|v| v.is_finite()) {
                metrics.push((column.clone(), v));
            }
        }
    }
    let mut tags = vec![(
        "job_id".to_string(),
        row.get("job_id").unwrap_or_default().to_string(),
    )];
    for (column, tag) in TAGS {
        if let Some(v) = row.get(column).filter(|v| !v.is_empty()) {
            tags.push((tag.to_string(), v.chars().take(5000).collect()));
        }
    }
    RunFields {
        params,
        metrics,
        tags,
    }
}

/// The job's per-epoch history as metric steps (`train_loss`, `val_accuracy`, ... at step
/// = epoch); `seconds` becomes `epoch_seconds`.
fn history_steps(dir: &Path) -> Vec<(String, f64, i64)> {
    let Ok(mut reader) = csv::Reader::from_path(dir.join("history.csv")) else {
        return Vec::new();
    };
    let Ok(header) = reader.headers().cloned() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for record in reader.records().map_while(Result::ok) {
        let Some(epoch) = record.get(0).and_then(|e| e.parse::<i64>().ok()) else {
            continue;
        };
        for (name, value) in header.iter().zip(record.iter()).skip(1) {
            if let Some(v) = value.parse::<f64>().ok().filter(|v| v.is_finite()) {
                let key = if name == "seconds" {
                    "epoch_seconds"
                } else {
                    name
                };
                out.push((key.to_string(), v, epoch));
            }
        }
    }
    out
}

/// Posts `row` as a new run of experiment `experiment_id`; returns the artefacts uploaded,
/// or None where the server takes no uploads.
pub fn post_row(
    client: &Client,
    experiment_id: &str,
    table: &Path,
    row: &Row,
) -> Result<Option<usize>, MlflowError> {
    let RunFields {
        params,
        metrics,
        tags,
    } = run_fields(row);
    let job_id = row.get("job_id").unwrap_or_default();
    let start = epoch_ms(row.get("time").unwrap_or_default());
    let seconds = row
        .get("train_seconds")
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0);
    let end = start + (seconds * 1000.0) as i64;
    let run: RunInfo = client.create_run(experiment_id, job_id, start, &tags)?;
    let dir = run_dir(table, job_id);
    let mut steps: Vec<(String, f64, i64)> = metrics.into_iter().map(|(k, v)| (k, v, 0)).collect();
    steps.extend(history_steps(&dir));
    client.log_batch(&run.run_id, &params, &steps, end)?;
    let mut uploaded = Some(0);
    for name in ["config.toml", "predictions.csv"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            if client.upload(&run, name, &bytes)? {
                uploaded = uploaded.map(|n| n + 1);
            } else {
                uploaded = None;
                break;
            }
        }
    }
    let status = if row.get("status") == Some("ok") {
        "FINISHED"
    } else {
        "FAILED"
    };
    client.end_run(&run.run_id, status, end)?;
    Ok(uploaded)
}

/// Posts every row whose job the server lacks; a run an interrupted export left RUNNING is
/// deleted and posted again.
pub fn export_rows(
    client: &Client,
    table: &Path,
    rows: &[Row],
    mut progress: impl FnMut(usize),
) -> Result<ExportSummary, MlflowError> {
    let mut by_experiment: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        by_experiment
            .entry(row.get("experiment").unwrap_or("microcal"))
            .or_default()
            .push(row);
    }
    let mut summary = ExportSummary::default();
    for (experiment, rows) in by_experiment {
        let id = client.experiment_id(experiment)?;
        let mut present: BTreeMap<String, Vec<RunInfo>> = BTreeMap::new();
        for run in client.runs(&id, None)? {
            if let Some(job) = run.job_id.clone() {
                present.entry(job).or_default().push(run);
            }
        }
        for row in rows {
            let job = row.get("job_id").unwrap_or_default();
            let runs = present.get(job).map(Vec::as_slice).unwrap_or_default();
            if runs.iter().any(|r| r.status != "RUNNING") {
                summary.already += 1;
            } else {
                for stale in runs {
                    client.delete_run(&stale.run_id)?;
                }
                match post_row(client, &id, table, row)? {
                    Some(n) => summary.artefacts += n,
                    None => summary.no_uploads += 1,
                }
                summary.exported += 1;
            }
            progress(1);
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_milliseconds_since_1970() {
        assert_eq!(epoch_ms("1970-01-01T00:00:00Z"), 0);
        assert_eq!(epoch_ms("2000-03-01T00:00:01Z"), 951_868_801_000);
        assert_eq!(epoch_ms("2026-11-27T11:01:03Z"), 1_795_777_263_000);
        assert_eq!(epoch_ms("yesterday"), 0);
    }

    #[test]
    fn config_columns_are_params_results_are_metrics() {
        let mut row = Row::default();
        for (k, v) in [
            ("experiment", "e"),
            ("job_id", "0123456789abcdef"),
            ("status", "ok"),
            ("seed", "3"),
            ("fold", ""),
            ("auc", "0.95"),
            ("loss", "NaN"),
            ("train.lr", "0.001"),
            ("data.fingerprint", "sha256:ab"),
            ("git_rev", "1e03def"),
        ] {
            row.push(k, v);
        }
        let RunFields {
            params,
            metrics,
            tags,
        } = run_fields(&row);
        assert_eq!(
            params,
            vec![
                ("seed".to_string(), "3".to_string()),
                ("train.lr".to_string(), "0.001".to_string())
            ]
        );
        assert_eq!(metrics, vec![("auc".to_string(), 0.95)]);
        let tag = |k: &str| tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.as_str());
        assert_eq!(tag("job_id"), Some("0123456789abcdef"));
        assert_eq!(tag("data.fingerprint"), Some("sha256:ab"));
        assert_eq!(tag("status"), Some("ok"));
        assert_eq!(tag("git_rev"), Some("1e03def"));
    }
}
