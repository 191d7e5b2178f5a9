//! `microcal compare A B`: two jobs, or two groups of jobs, on the images both scored, with
//! DeLong's test for their ROC AUCs and McNemar's exact test for their accuracies.
//!
//! A side is a job id, or filters (`key=value,key=value`) that select the table's rows:
//! a group is pooled as each image's mean score over the group's jobs that scored it (over
//! seeds on a fixed split: the mean prediction of the seeds' models; over the folds of a
//! k-fold split: the out-of-fold prediction), thresholded at the mean of their recorded
//! thresholds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::artefacts::{read_predictions, run_dir};
use super::report::{Filter, InvalidFilter};
use super::{ResultsError, ResultsTable, Row};
use crate::metrics::paired::{delong, mcnemar_exact, DeLong};

/// Why two sides cannot be compared.
#[derive(Debug, Error)]
pub enum CompareError {
    #[error(transparent)]
    Table(#[from] ResultsError),
    #[error(transparent)]
    Filter(#[from] InvalidFilter),
    #[error("{side}: no row of {table} has job id {id}")]
    UnknownJob {
        side: &'static str,
        id: String,
        table: PathBuf,
    },
    #[error("{side}: no row of {table} with status ok matches {selector}")]
    NoRows {
        side: &'static str,
        selector: String,
        table: PathBuf,
    },
    #[error("{side}: job {id} has no readable predictions.csv under {runs}; rerun it with `microcal-run --force`")]
    NoPredictions {
        side: &'static str,
        id: String,
        runs: PathBuf,
    },
    #[error("the two sides were not scored on the same labelled images: {0}; compare jobs evaluated on the same split")]
    NotPaired(String),
}

/// One side of a comparison: its pooled scores by image path, and its threshold.
#[derive(Debug, Clone)]
pub struct Side {
    /// How the side was given (a job id or its filters).
    pub selector: String,
    pub jobs: Vec<String>,
    pub threshold: f64,
    /// Path → (label, mean score over the jobs that scored it).
    pub scores: BTreeMap<String, (u8, f64)>,
}

/// The result of `compare`.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub a: Side,
    pub b: Side,
    /// Images both sides scored, and of them the positives.
    pub images: usize,
    pub positives: usize,
    pub delong: DeLong,
    /// Accuracies at each side's threshold on the shared images.
    pub accuracy: (f64, f64),
    /// Images A classified right and B wrong, and the reverse.
    pub discordant: (usize, usize),
    pub p_mcnemar: f64,
}

/// Compares the sides `a` and `b` of the table at `table`.
pub fn compare(table: &Path, a: &str, b: &str) -> Result<Comparison, CompareError> {
    let (_, rows) = ResultsTable::new(table).read()?;
    let a = side("A", a, &rows, table)?;
    let b = side("B", b, &rows, table)?;
    let identities: std::collections::BTreeSet<String> = rows
        .iter()
        .filter(|r| {
            let id = r.get("job_id").unwrap_or_default();
            a.jobs.iter().chain(&b.jobs).any(|j| j == id)
        })
        .map(data_identity)
        .collect();
    if identities.len() > 1 {
        return Err(CompareError::NotPaired(format!(
            "the jobs read different data ({})",
            identities.into_iter().collect::<Vec<_>>().join(" vs ")
        )));
    }
    compare_sides(a, b)
}

/// DeLong's and McNemar's tests of two pooled sides on the images both scored.
pub fn compare_sides(a: Side, b: Side) -> Result<Comparison, CompareError> {
    let mut labels = Vec::new();
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    for (path, (label, score)) in &a.scores {
        if let Some((label_b, score_b)) = b.scores.get(path) {
            if label != label_b {
                return Err(CompareError::NotPaired(format!(
                    "{path} is labelled {label} for A and {label_b} for B"
                )));
            }
            labels.push(*label);
            sa.push(*score);
            sb.push(*score_b);
        }
    }
    let positives = labels.iter().filter(|&&y| y == 1).count();
    let delong = delong(&labels, &sa, &sb).ok_or_else(|| {
        CompareError::NotPaired(format!(
            "they share {} images ({positives} positive); at least 2 of each class are needed",
            labels.len()
        ))
    })?;
    let right = |scores: &[f64], threshold: f64| -> Vec<bool> {
        scores
            .iter()
            .zip(&labels)
            .map(|(s, &y)| (*s >= threshold) == (y == 1))
            .collect()
    };
    let (ra, rb) = (right(&sa, a.threshold), right(&sb, b.threshold));
    let only_a = ra.iter().zip(&rb).filter(|(x, y)| **x && !**y).count();
    let only_b = ra.iter().zip(&rb).filter(|(x, y)| !**x && **y).count();
    let n = labels.len() as f64;
    let accuracy = |r: &[bool]| r.iter().filter(|&&x| x).count() as f64 / n;
    Ok(Comparison {
        images: labels.len(),
        positives,
        delong,
        accuracy: (accuracy(&ra), accuracy(&rb)),
        discordant: (only_a, only_b),
        p_mcnemar: mcnemar_exact(only_a, only_b),
        a,
        b,
    })
}

/// What a row's images were: the data's fingerprint and, for generated data, the settings
/// that generated it (their fingerprint is the generator's version alone).
pub fn data_identity(row: &Row) -> String {
    [
        "data.fingerprint",
        "data.image_size",
        "data.synthetic_seed",
        "data.synthetic_train_per_class",
        "data.synthetic_test_per_class",
        "data.dedupe",
    ]
    .iter()
    .filter_map(|k| row.get(k).map(|v| format!("{k}={v}")))
    .collect::<Vec<_>>()
    .join(" ")
}

/// Whether `text` is a job id (16 hex digits) rather than filters.
fn is_job_id(text: &str) -> bool {
    text.len() == 16 && text.chars().all(|c| c.is_ascii_hexdigit())
}

fn side(
    name: &'static str,
    selector: &str,
    rows: &[Row],
    table: &Path,
) -> Result<Side, CompareError> {
    let chosen: Vec<&Row> = if is_job_id(selector) {
        let found: Vec<&Row> = rows
            .iter()
            .filter(|r| r.get("job_id") == Some(selector))
            .collect();
        if found.is_empty() {
            return Err(CompareError::UnknownJob {
                side: name,
                id: selector.to_string(),
                table: table.to_path_buf(),
            });
        }
        found
    } else {
        let filters = selector
            .split(',')
            .map(|f| Filter::parse(f.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter()
            .filter(|r| r.get("status") == Some("ok") && filters.iter().all(|f| f.matches(r)))
            .collect()
    };
    if chosen.is_empty() {
        return Err(CompareError::NoRows {
            side: name,
            selector: selector.to_string(),
            table: table.to_path_buf(),
        });
    }
    pooled(name, selector, &chosen, table)
}

/// The side made of `chosen` rows: each image's mean score over the rows' jobs, and the mean
/// of their recorded thresholds.
pub fn pooled(
    name: &'static str,
    selector: &str,
    chosen: &[&Row],
    table: &Path,
) -> Result<Side, CompareError> {
    let mut sums: BTreeMap<String, (u8, f64, usize)> = BTreeMap::new();
    let mut jobs = Vec::new();
    let mut thresholds = 0.0;
    for row in chosen {
        let id = row.get("job_id").unwrap_or_default().to_string();
        let dir = run_dir(table, &id);
        let predictions = read_predictions(&dir).ok_or_else(|| CompareError::NoPredictions {
            side: name,
            id: id.clone(),
            runs: dir.parent().unwrap_or(&dir).to_path_buf(),
        })?;
        for (path, label, score) in predictions {
            let entry = sums.entry(path.clone()).or_insert((label, 0.0, 0));
            if entry.0 != label {
                return Err(CompareError::NotPaired(format!(
                    "{path} is labelled {} and {label} within side {name}",
                    entry.0
                )));
            }
            entry.1 += score;
            entry.2 += 1;
        }
        thresholds += row
            .get("threshold")
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.5);
        jobs.push(id);
    }
    Ok(Side {
        selector: selector.to_string(),
        threshold: thresholds / chosen.len() as f64,
        scores: sums
            .into_iter()
            .map(|(path, (label, sum, n))| (path, (label, sum / n as f64)))
            .collect(),
        jobs,
    })
}

impl Comparison {
    /// The report `microcal compare` prints; its last line is machine-readable.
    pub fn to_text(&self) -> String {
        let d = &self.delong;
        let describe = |s: &Side| match s.jobs.as_slice() {
            [one] if one == &s.selector => format!("job {one}"),
            [one] => format!("{} (job {one})", s.selector),
            jobs => format!(
                "{} ({} jobs, each image's mean score)",
                s.selector,
                jobs.len()
            ),
        };
        format!(
            "A: {}\nB: {}\nimages both scored: {} ({} positive, {} negative)\n\
             ROC AUC: A {:.6}, B {:.6}, difference {:+.6} (95% interval {:+.4} to {:+.4})\n\
             DeLong's test: z = {:.4}, two-sided p = {:.3e}\n\
             accuracy: A {:.4} at threshold {:.3}, B {:.4} at threshold {:.3}; A right and B wrong on {} images, the reverse on {}: McNemar's exact p = {:.3e}\n\
             auc_a={:.6} auc_b={:.6} delta={:.6} z={:.6} p_delong={:.6e} p_mcnemar={:.6e}\n",
            describe(&self.a),
            describe(&self.b),
            self.images,
            self.positives,
            self.images - self.positives,
            d.auc_a,
            d.auc_b,
            d.delta,
            d.ci.0,
            d.ci.1,
            d.z,
            d.p,
            self.accuracy.0,
            self.a.threshold,
            self.accuracy.1,
            self.b.threshold,
            self.discordant.0,
            self.discordant.1,
            self.p_mcnemar,
            d.auc_a,
            d.auc_b,
            d.delta,
            d.z,
            d.p,
            self.p_mcnemar
        )
    }
}
