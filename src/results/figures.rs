//! `microcal figures`: per group of the results table, the ROC curves (mean ± 1 s.d. over
//! seeds and folds), the summed confusion matrix and the mean learning curves, read from the
//! jobs' artefacts; plus a sample sheet of one job's test images.

use std::path::{Path, PathBuf};

use super::artefacts::read_predictions;
use super::plots::{self, History, MeanRoc, RocCurve, SampleImage};
use super::report::{group_rows, Filter};
use super::{ResultsError, ResultsTable, Row};
use crate::metrics::{roc_auc, roc_curve};

/// Most mean curves drawn in one figure (the palette's colours).
const MAX_CURVES: usize = 8;

pub(super) fn read_history(run_dir: &Path) -> Option<History> {
    let mut reader = csv::Reader::from_path(run_dir.join("history.csv")).ok()?;
    let mut out = Vec::new();
    for record in reader.records() {
        let r = record.ok()?;
        let f = |i: usize| r.get(i).and_then(|v| v.parse::<f64>().ok());
        out.push((f(1)?, f(2)?, f(3), f(4)));
    }
    Some(out)
}

/// File-name-safe short form of a group's values.
fn slug(index: usize, values: &[String]) -> String {
    let text: String = values
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let short: String = text.chars().take(60).collect();
    format!("g{index:02}_{short}")
}

/// Writes the figures of every group of `table` into `out`; returns the files written.
pub fn make_figures(
    table: &Path,
    by: Option<&[String]>,
    filters: &[Filter],
    out: &Path,
) -> Result<Vec<PathBuf>, ResultsError> {
    let (header, rows) = ResultsTable::new(table).read()?;
    let runs_dir = table.parent().unwrap_or(Path::new(".")).join("runs");
    let grouping = group_rows(&header, &rows, by, filters)?;
    // Every selected job's predictions, read once; any missing stops the drawing.
    let mut predictions = std::collections::HashMap::new();
    let mut missing = Vec::new();
    for id in grouping
        .groups
        .iter()
        .flat_map(|(_, members)| members)
        .filter(|r| r.get("status") == Some("ok"))
        .filter_map(|r| r.get("job_id"))
    {
        match read_predictions(&runs_dir.join(id)) {
            Some(p) => {
                predictions.insert(id, p);
            }
            None => missing.push(id.to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(ResultsError::MissingArtefacts {
            runs: runs_dir,
            ids: missing,
        });
    }
    let labels = group_labels(&grouping.keys, &grouping.groups);
    let mut written = Vec::new();
    let mut means = Vec::new();
    for (index, (values, members)) in grouping.groups.iter().enumerate() {
        let ok: Vec<&&Row> = members
            .iter()
            .filter(|r| r.get("status") == Some("ok"))
            .collect();
        let name = labels[index].clone();
        let stem = out.join(slug(index + 1, values));
        let mut curves = Vec::new();
        let mut aucs = Vec::new();
        for row in &ok {
            let Some(id) = row.get("job_id") else {
                continue;
            };
            let Some(predictions) = predictions.get(id) else {
                continue;
            };
            let labels: Vec<u8> = predictions.iter().map(|p| p.1).collect();
            let scores: Vec<f64> = predictions.iter().map(|p| p.2).collect();
            aucs.push(roc_auc(&labels, &scores));
            curves.push(roc_curve(&labels, &scores));
        }
        if !curves.is_empty() {
            let mean_auc = aucs.iter().sum::<f64>() / aucs.len() as f64;
            let sd = (aucs.iter().map(|a| (a - mean_auc).powi(2)).sum::<f64>() / aucs.len() as f64)
                .sqrt();
            let label = format!("mean of {} (AUC {mean_auc:.3} ± {sd:.3})", curves.len());
            let mean = mean_roc_labelled(label, &curves);
            let runs: Vec<RocCurve> = if curves.len() <= 6 {
                curves
                    .iter()
                    .zip(&ok)
                    .zip(&aucs)
                    .map(|((points, row), auc)| RocCurve {
                        label: format!(
                            "seed {}{} (AUC {auc:.3})",
                            row.get("seed").unwrap_or("?"),
                            row.get("fold")
                                .map(|f| format!(" fold {f}"))
                                .unwrap_or_default()
                        ),
                        points: points.clone(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            written.extend(plots::roc_figure(
                &stem.with_file_name(format!("{}_roc", file_name(&stem))),
                &format!("ROC: {name}"),
                &runs,
                std::slice::from_ref(&mean),
            )?);
            means.push((
                mean_auc,
                MeanRoc {
                    label: format!("{} (AUC {mean_auc:.3})", truncate(&name, 60)),
                    ..mean
                },
            ));
        }
        let counts = |c: &str| {
            ok.iter()
                .filter_map(|r| r.get(c)?.parse::<usize>().ok())
                .sum::<usize>()
        };
        if !ok.is_empty() {
            written.extend(plots::confusion_figure(
                &stem.with_file_name(format!("{}_confusion", file_name(&stem))),
                &format!("{} (summed over {} runs)", truncate(&name, 40), ok.len()),
                counts("tn"),
                counts("fp"),
                counts("fn"),
                counts("tp"),
            )?);
        }
        let histories: Vec<History> = ok
            .iter()
            .filter_map(|r| read_history(&runs_dir.join(r.get("job_id")?)))
            .filter(|h| !h.is_empty())
            .collect();
        if !histories.is_empty() {
            written.extend(plots::learning_figure(
                &stem.with_file_name(format!("{}_learning", file_name(&stem))),
                &format!(
                    "Learning curves: {} (mean of {})",
                    truncate(&name, 50),
                    histories.len()
                ),
                &histories,
            )?);
        }
    }
    if means.len() > 1 {
        // Eight colours tell curves apart; with more groups, the best eight by mean AUC.
        let title = if means.len() > MAX_CURVES {
            format!(
                "Mean ROC per group (best {MAX_CURVES} of {} by AUC)",
                means.len()
            )
        } else {
            "Mean ROC per group".to_string()
        };
        means.sort_by(|a, b| b.0.total_cmp(&a.0));
        means.truncate(MAX_CURVES);
        let means: Vec<MeanRoc> = means.into_iter().map(|(_, m)| m).collect();
        written.extend(plots::roc_figure(
            &out.join("roc_groups"),
            &title,
            &[],
            &means,
        )?);
    }
    Ok(written)
}

/// A label per group built from the keys whose values differ between the groups shown
/// (`family=db5, level=3`), each key by its last dotted part unless two keys share it; with
/// one group, every key with a value. Empty values are left out.
pub(super) fn group_labels(keys: &[String], groups: &[(Vec<String>, Vec<&Row>)]) -> Vec<String> {
    let differs = |i: usize| groups.iter().any(|(v, _)| v[i] != groups[0].0[i]);
    let shown: Vec<usize> = if groups.len() > 1 {
        (0..keys.len()).filter(|&i| differs(i)).collect()
    } else {
        (0..keys.len()).collect()
    };
    let short = |key: &str| -> String {
        let last = key.rsplit('.').next().unwrap_or(key);
        let shared = shown
            .iter()
            .filter(|&&j| keys[j].rsplit('.').next() == Some(last))
            .count();
        if shared > 1 {
            key.to_string()
        } else {
            last.to_string()
        }
    };
    groups
        .iter()
        .map(|(values, _)| {
            let parts: Vec<String> = shown
                .iter()
                .filter(|&&i| !values[i].is_empty())
                .map(|&i| format!("{}={}", short(&keys[i]), values[i]))
                .collect();
            if parts.is_empty() {
                "all runs".to_string()
            } else {
                parts.join(", ")
            }
        })
        .collect()
}

fn mean_roc_labelled(label: String, curves: &[Vec<(f64, f64)>]) -> MeanRoc {
    plots::mean_roc(label, curves)
}

fn file_name(stem: &Path) -> String {
    stem.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn truncate(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_string()
    } else {
        text.chars().take(n - 1).collect::<String>() + "…"
    }
}

/// A sheet of `count` test images of one job: the most confident mistakes first, then
/// correct ones, each framed by correctness.
pub fn job_sample_sheet(
    table: &Path,
    job_id: &str,
    dataset: &crate::data::Dataset,
    count: usize,
    out: &Path,
) -> Result<Vec<PathBuf>, ResultsError> {
    let run_dir = table
        .parent()
        .unwrap_or(Path::new("."))
        .join("runs")
        .join(job_id);
    let read_err = |message: String| ResultsError::Read {
        path: run_dir.clone(),
        message,
    };
    let predictions =
        read_predictions(&run_dir).ok_or_else(|| read_err("no readable predictions.csv".into()))?;
    let by_id: std::collections::HashMap<&str, &crate::data::Sample> =
        dataset.samples.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut ranked = predictions.clone();
    let wrongness = |p: &(String, u8, f64)| if p.1 == 1 { 1.0 - p.2 } else { p.2 };
    ranked.sort_by(|a, b| wrongness(b).total_cmp(&wrongness(a)));
    let wrong: Vec<_> = ranked
        .iter()
        .filter(|p| wrongness(p) >= 0.5)
        .take(count / 2)
        .collect();
    let right: Vec<_> = ranked
        .iter()
        .rev()
        .filter(|p| wrongness(p) < 0.5)
        .take(count - wrong.len())
        .collect();
    let images: Vec<SampleImage> = wrong
        .into_iter()
        .chain(right)
        .filter_map(|(id, label, score)| {
            let s = by_id.get(id.as_str())?;
            Some(SampleImage {
                pixels: s.pixels.clone(),
                size: s.cols,
                label: *label,
                score: *score,
            })
        })
        .collect();
    plots::sample_sheet(
        &out.join(format!("samples_{job_id}")),
        &format!("Job {job_id}: most confident mistakes (red), then correct (green)"),
        &images,
    )
}
