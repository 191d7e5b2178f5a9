//! Turning a finished (or failed) job into its results-table row.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Finished, JobStatus};
use crate::config::{flatten_config, relative_path, Job};
use crate::metrics::BinaryMetrics;
use crate::models::ModelError;
use crate::results::Row;
use crate::train::TrainError;

/// Row for `job`: identity, status, metrics of the evaluation set (and `test_*` for k-fold
/// jobs), cost, model facts, then every resolved config key as its own column.
pub(super) fn build(
    job: &Job,
    started: &str,
    result: &Result<Finished, ModelError>,
) -> (JobStatus, Row) {
    let mut row = Row::default();
    row.push("time", started);
    row.push("experiment", &job.config.name);
    row.push("file", portable_file(&job.file));
    row.push("job_id", &job.id);
    let status = match result {
        Ok(_) => JobStatus::Ok,
        Err(ModelError::Train(TrainError::Diverged { .. })) => JobStatus::Diverged,
        Err(_) => JobStatus::Failed,
    };
    row.push("status", status.as_str());
    row.push(
        "error",
        result
            .as_ref()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default(),
    );
    row.push("git_rev", crate::GIT_REV);
    // The instruction-set path the engine ran on: avx2 and avx512 give the same numbers,
    // portable differs in the last bits.
    row.push("simd", crate::engine::simd::active().name());
    row.push("machine", crate::host::machine());
    row.push("seed", job.seed);
    row.push("fold", job.fold.map(|f| f.to_string()).unwrap_or_default());
    if let Some(tag) = job.search {
        row.push("search_role", tag.role.as_str());
        row.push("search_trial", tag.trial);
        row.push(
            "search_rung",
            tag.rung.map(|r| r.to_string()).unwrap_or_default(),
        );
    }
    if let Ok(done) = result {
        push_metrics(&mut row, "", &done.eval);
        let ci = &done.eval_ci;
        row.push("auc_ci_low", format!("{:.6}", ci.auc.0));
        row.push("auc_ci_high", format!("{:.6}", ci.auc.1));
        row.push("accuracy_ci_low", format!("{:.6}", ci.accuracy.0));
        row.push("accuracy_ci_high", format!("{:.6}", ci.accuracy.1));
        row.push("n_train", done.n_train);
        row.push("threshold", format!("{:.6}", done.outcome.threshold));
        row.push("n_dropped_duplicates", done.dropped_duplicates);
        if let Some(test) = &done.test {
            push_metrics(&mut row, "test_", test);
        }
        let fit = &done.outcome.fit;
        row.push("train_seconds", format!("{:.3}", fit.seconds));
        row.push("images_per_s", format!("{:.1}", fit.images_per_s));
        row.push("epochs_run", fit.history.len());
        for (k, v) in &done.outcome.facts {
            row.push(k.as_str(), v);
        }
    }
    for (key, value) in flatten_config(&job.config) {
        if key != "name" {
            row.push(key, value);
        }
    }
    row.push("data.fingerprint", &job.data_identity);
    row.push("microcal_version", crate::VERSION);
    (status, row)
}

/// The experiment file as the row records it: as given on the command line, or relative to
/// the current folder when given as an absolute path, so rows hold no machine's paths.
pub(super) fn portable_file(file: &std::path::Path) -> String {
    if file.is_absolute() {
        let here = std::env::current_dir().unwrap_or_default();
        relative_path(&here, file)
    } else {
        file.display().to_string()
    }
}

fn push_metrics(row: &mut Row, prefix: &str, m: &BinaryMetrics) {
    for (name, value) in [
        ("accuracy", m.accuracy),
        ("precision", m.precision),
        ("recall", m.recall),
        ("specificity", m.specificity),
        ("f1", m.f1),
        ("auc", m.auc),
        ("loss", m.loss),
    ] {
        row.push(format!("{prefix}{name}"), format!("{value:.6}"));
    }
    let c = &m.confusion;
    for (name, value) in [
        ("tn", c.tn),
        ("fp", c.fp),
        ("fn", c.fn_),
        ("tp", c.tp),
        ("n", m.n),
    ] {
        row.push(format!("{prefix}{name}"), value);
    }
}

/// Current time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn timestamp_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs)
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_795_700_096), "2026-11-26T13:34:56Z");
    }
}
