//! `microcal report --format html`: one self-contained page of a results table, for the
//! morning after a sweep. Everything is inline (style, script, figures as SVG), nothing is
//! fetched, so it works from `file://` and can be mailed. It holds:
//! - the groups table, sortable by any column (click its header) and filterable by any
//!   column (a box under each header) or all of them (the box above);
//! - per group: the mean ROC with a ±1 s.d. band, the summed confusion matrix, the mean
//!   learning curves, and each job with its provenance and links to its artefacts;
//! - per search: the optimisation history and a parallel-coordinates view of the trials;
//! - provenance: the microcal versions and revisions, data fingerprints, SIMD paths and
//!   machines the rows record.
//!
//! The page depends only on the rows and artefacts (no clock, no host), so the same inputs
//! give the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Component, Path};

use super::against_best::{against_best, AgainstBest};
use super::artefacts::read_predictions;
use super::figures::{group_labels, read_history};
use super::html_assets::{SCRIPT, STYLE};
use super::plots::mean_roc;
use super::report::{summarised_groups, Filter, Group, Report};
use super::search_report::{trials, TrialSummary};
use super::svg::{self, escape, Axis, Chart, Mark, Series};
use super::{ResultsError, ResultsTable, Row};
use crate::metrics::{roc_auc, roc_curve};

/// What the page shows and where it will be saved.
pub struct HtmlOptions<'a> {
    pub by: Option<&'a [String]>,
    pub filters: &'a [Filter],
    /// The folder the page is saved in, so links to artefacts resolve from it; None: the
    /// current folder.
    pub page_dir: Option<&'a Path>,
    /// The metric searches rank trials by (`loss` is minimised).
    pub metric: &'a str,
}

/// Columns of a row shown per job as its provenance.
const PROVENANCE: &[(&str, &str)] = &[
    ("microcal_version", "microcal"),
    ("git_rev", "revision"),
    ("data.fingerprint", "data fingerprint"),
    ("simd", "SIMD path"),
    ("machine", "machine"),
];

/// The page for the table at `table`.
pub fn html_report(table: &Path, options: &HtmlOptions) -> Result<String, ResultsError> {
    let (header, rows) = ResultsTable::new(table).read()?;
    let (keys, groups) = summarised_groups(&header, &rows, options.by, options.filters)?;
    let scored: Vec<(Vec<&Row>, f64)> = groups
        .iter()
        .map(|(g, members)| (members.clone(), g.mean_auc()))
        .collect();
    let standing = against_best(table, &scored);
    let grouping: Vec<(Vec<String>, Vec<&Row>)> = groups
        .iter()
        .map(|(g, members)| (g.values.clone(), members.clone()))
        .collect();
    let labels = group_labels(&keys, &grouping);
    let report = Report {
        keys: keys.clone(),
        groups: groups.iter().map(|(g, _)| g.clone()).collect(),
        against_best: Vec::new(),
    };
    let runs = runs_link(table, options.page_dir);
    let selected: Vec<&Row> = groups.iter().flat_map(|(_, m)| m.iter().copied()).collect();

    let mut page = String::new();
    let title = format!("microcal results: {}", table.display());
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header><h1>microcal results</h1>\
         <p>{} · {} rows · {} groups · {}</p></header>\n<main>\n",
        escape(&title),
        escape(&table.display().to_string()),
        selected.len(),
        groups.len(),
        escape(&describe_filters(options))
    );
    page += &provenance(&selected);
    page += &groups_table(&report, &groups, &standing, &labels);
    page += &searches(&rows, &selected, options.metric);
    page += "<section id=\"details\"><h2>Groups</h2>\n";
    for (i, (group, members)) in groups.iter().enumerate() {
        page += &group_details(table, i, &labels[i], group, members, &runs);
    }
    page += "</section>\n</main>\n<script>";
    page += SCRIPT;
    page += "</script>\n</body>\n</html>\n";
    Ok(page)
}

fn describe_filters(options: &HtmlOptions) -> String {
    let mut parts = Vec::new();
    if let Some(by) = options.by {
        parts.push(format!("grouped by {}", by.join(", ")));
    } else {
        parts.push("grouped by the configuration that differs".to_string());
    }
    if !options.filters.is_empty() {
        parts.push(format!("{} filters", options.filters.len()));
    }
    parts.join(", ")
}

/// The link from the page's folder to the table's `runs/` folder, with `/` separators.
fn runs_link(table: &Path, page_dir: Option<&Path>) -> String {
    let runs = table.parent().unwrap_or(Path::new("")).join("runs");
    match page_dir {
        Some(dir) => crate::config::relative_path(dir, &runs),
        None => runs
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
    }
}

fn provenance(rows: &[&Row]) -> String {
    let mut s = String::from("<section id=\"provenance\"><h2>Provenance</h2><dl>");
    for (column, name) in PROVENANCE {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in rows {
            *counts.entry(r.get(column).unwrap_or("")).or_default() += 1;
        }
        let values: Vec<String> = counts
            .iter()
            .map(|(v, n)| {
                let v = if v.is_empty() { "not recorded" } else { v };
                format!("<code>{}</code> ({n} rows)", escape(v))
            })
            .collect();
        let _ = write!(s, "<dt>{name}</dt><dd>{}</dd>", values.join(", "));
    }
    s + "</dl></section>\n"
}

/// Whether every non-empty value parses as a number.
fn numeric(values: impl IntoIterator<Item = impl AsRef<str>>) -> bool {
    values
        .into_iter()
        .all(|v| v.as_ref().is_empty() || v.as_ref().parse::<f64>().is_ok())
}

fn groups_table(
    report: &Report,
    groups: &[(Group, Vec<&Row>)],
    standing: &[Option<AgainstBest>],
    labels: &[String],
) -> String {
    let metrics = report.metric_columns();
    let mut columns: Vec<(String, &str)> = vec![("group".to_string(), "num")];
    columns.extend(metrics.iter().map(|(_, t)| (t.to_string(), "num")));
    columns.push(("p vs best".to_string(), "num"));
    columns.push(("runs".to_string(), "num"));
    columns.push(("failed".to_string(), "num"));
    for (i, key) in report.keys.iter().enumerate() {
        let kind = if numeric(groups.iter().map(|(g, _)| &g.values[i])) {
            "num"
        } else {
            "text"
        };
        columns.push((key.clone(), kind));
    }
    let mut s = format!(
        "<section id=\"groups-section\"><h2>Groups of runs</h2>\
         <p class=\"hint\">Click a header to sort; type in the boxes to filter. <span id=\"shown\">{}</span> of {} groups shown. \
         ROC AUC and accuracy are on each job's evaluation set (Test, or the held-out fold); ± is the s.d. over seeds and folds, [ ] a single run's bootstrap 95% interval. \
         <em>p vs best</em>: DeLong's test against the best group scored on the same images (each side each image's mean score over its jobs).</p>\
         <input id=\"filter\" type=\"search\" placeholder=\"filter groups (any column)\" aria-label=\"filter groups\">\
         <div class=\"scroll\"><table id=\"groups\"><thead><tr>",
        groups.len(),
        groups.len()
    );
    for (name, kind) in &columns {
        let _ = write!(
            s,
            "<th class=\"sort\" data-type=\"{kind}\" title=\"sort by {0}\">{0}</th>",
            escape(name)
        );
    }
    s += "</tr><tr class=\"filters\">";
    for (i, (name, _)) in columns.iter().enumerate() {
        let _ = write!(
            s,
            "<th><input data-col=\"{i}\" type=\"search\" aria-label=\"filter {0}\" placeholder=\"{0}\"></th>",
            escape(name)
        );
    }
    s += "</tr></thead><tbody>\n";
    for (i, (group, _)) in groups.iter().enumerate() {
        let _ = write!(
            s,
            "<tr><td data-v=\"{n}\" class=\"label\" title=\"{label}\"><a href=\"#g{n:03}\">g{n:03}</a> {label}</td>",
            n = i + 1,
            label = escape(&labels[i]),
        );
        for (column, _) in &metrics {
            let text = report.cell(group, column, false);
            match group.metrics.get(column) {
                Some(m) => {
                    let bar = if column.ends_with("auc") {
                        format!(
                            " class=\"bar\" style=\"--v:{:.3}\"",
                            ((m.mean - 0.5) * 2.0).clamp(0.0, 1.0)
                        )
                    } else {
                        String::new()
                    };
                    let _ = write!(s, "<td data-v=\"{}\"{bar}>{}</td>", m.mean, escape(&text));
                }
                None => s += "<td data-v=\"\">–</td>",
            }
        }
        match &standing[i] {
            Some(a @ AgainstBest::P { p, delta }) => {
                let _ = write!(
                    s,
                    "<td data-v=\"{p}\" title=\"ΔAUC {delta:+.4} against the best group\">{}</td>",
                    a.text()
                );
            }
            Some(best) => {
                let _ = write!(s, "<td data-v=\"1\">{}</td>", best.text());
            }
            None => s += "<td data-v=\"\">–</td>",
        }
        let _ = write!(s, "<td>{}</td><td>{}</td>", group.runs, group.failed);
        for value in &group.values {
            let _ = write!(s, "<td title=\"{0}\">{0}</td>", escape(value));
        }
        s += "</tr>\n";
    }
    s + "</tbody></table></div></section>\n"
}

fn searches(all: &[Row], selected: &[&Row], metric: &str) -> String {
    let mut names: Vec<&str> = selected
        .iter()
        .filter(|r| r.get("search_role") == Some("trial"))
        .filter_map(|r| r.get("experiment"))
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return String::new();
    }
    let maximize = metric != "loss";
    let mut s = String::from("<section id=\"searches\"><h2>Searches</h2>\n");
    for name in names {
        let filter = [Filter::any_of("experiment", [name.to_string()])];
        let found: Vec<TrialSummary> = trials(all, &filter, metric);
        let _ = write!(
            s,
            "<h3 id=\"search-{0}\">{0}</h3><p>{1} trials; validation {2} per trial (filled: reached the last rung), and the running best.</p><div class=\"charts\">",
            escape(name),
            found.len(),
            escape(metric)
        );
        let top = found.iter().filter_map(|t| t.rung).max();
        let point = |t: &TrialSummary| (t.trial as f64, t.score);
        let finished: Vec<(f64, f64)> = found
            .iter()
            .filter(|t| t.rung == top && t.score.is_finite())
            .map(point)
            .collect();
        let stopped: Vec<(f64, f64)> = found
            .iter()
            .filter(|t| t.rung != top && t.score.is_finite())
            .map(point)
            .collect();
        let mut best = Vec::new();
        let mut running = f64::NAN;
        for &(x, y) in &finished {
            if running.is_nan() || (maximize && y > running) || (!maximize && y < running) {
                running = y;
            }
            best.push((x, running));
        }
        let ys: Vec<f64> = finished.iter().chain(&stopped).map(|p| p.1).collect();
        let (lo, hi) = range(&ys);
        let chart = Chart {
            title: format!("Optimisation history: {name}"),
            x_label: "trial".into(),
            y_label: format!("validation {metric}"),
            x: (
                0.0,
                found.iter().map(|t| t.trial).max().unwrap_or(1).max(1) as f64,
            ),
            y: pad(lo, hi),
            series: vec![
                Series::new("last rung", finished.clone(), 0, Mark::Points(true)),
                Series::new("stopped early", stopped, 0, Mark::Points(false)),
                Series::new("running best", best, 1, Mark::Step),
            ],
            diagonal: false,
        };
        s += &chart.to_svg();
        if let Some(first) = found.first() {
            let mut axes: Vec<Axis> = first
                .values
                .iter()
                .enumerate()
                .map(|(i, (key, _))| Axis {
                    name: key.clone(),
                    values: found.iter().map(|t| t.values[i].1.clone()).collect(),
                })
                .collect();
            axes.push(Axis {
                name: metric.to_string(),
                values: found
                    .iter()
                    .map(|t| {
                        if t.score.is_finite() {
                            format!("{}", t.score)
                        } else {
                            String::new()
                        }
                    })
                    .collect(),
            });
            let scores: Vec<f64> = found.iter().map(|t| t.score).collect();
            s += &svg::parallel_coordinates(
                &format!("Trials of {name} (orange: best)"),
                &axes,
                &scores,
                maximize,
            );
        }
        s += "</div>\n";
    }
    s + "</section>\n"
}

fn range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}

/// A range with 5% room on each side (or a unit range when empty).
fn pad(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let room = ((hi - lo) * 0.05).max(1e-3);
    (lo - room, hi + room)
}

fn group_details(
    table: &Path,
    index: usize,
    label: &str,
    group: &Group,
    members: &[&Row],
    runs: &str,
) -> String {
    let id = format!("g{:03}", index + 1);
    let ok: Vec<&Row> = members
        .iter()
        .copied()
        .filter(|r| r.get("status") == Some("ok"))
        .collect();
    let mut s = format!(
        "<details class=\"group\" id=\"{id}\"><summary><b>{id}</b> {} <span class=\"muted\">({} runs{})</span></summary>\n<div class=\"charts\">",
        escape(label),
        group.runs,
        if group.failed > 0 {
            format!(", {} failed", group.failed)
        } else {
            String::new()
        }
    );
    let mut curves = Vec::new();
    let mut aucs = Vec::new();
    let mut missing = 0;
    for r in &ok {
        let dir = super::run_dir(table, r.get("job_id").unwrap_or_default());
        match read_predictions(&dir) {
            Some(p) => {
                let labels: Vec<u8> = p.iter().map(|x| x.1).collect();
                let scores: Vec<f64> = p.iter().map(|x| x.2).collect();
                aucs.push(roc_auc(&labels, &scores));
                curves.push(roc_curve(&labels, &scores));
            }
            None => missing += 1,
        }
    }
    if !curves.is_empty() {
        let mean = aucs.iter().sum::<f64>() / aucs.len() as f64;
        let roc = mean_roc(String::new(), &curves);
        let mut series = Series::new(
            format!("mean of {} (AUC {mean:.3})", curves.len()),
            roc.fpr
                .iter()
                .copied()
                .zip(roc.tpr.iter().copied())
                .collect(),
            0,
            Mark::Line,
        );
        series.band = roc
            .fpr
            .iter()
            .zip(roc.tpr.iter().zip(&roc.sd))
            .map(|(&x, (&y, &sd))| (x, (y - sd).max(0.0), (y + sd).min(1.0)))
            .collect();
        s += &Chart {
            title: "ROC (mean ± 1 s.d.)".into(),
            x_label: "false positive rate".into(),
            y_label: "true positive rate".into(),
            x: (0.0, 1.0),
            y: (0.0, 1.0),
            series: vec![series],
            diagonal: true,
        }
        .to_svg();
    }
    if !ok.is_empty() {
        let count = |c: &str| {
            ok.iter()
                .filter_map(|r| r.get(c)?.parse::<usize>().ok())
                .sum::<usize>()
        };
        s += &svg::confusion(
            &format!("Confusion, summed over {} runs", ok.len()),
            count("tn"),
            count("fp"),
            count("fn"),
            count("tp"),
        );
    }
    let histories: Vec<_> = ok
        .iter()
        .filter_map(|r| read_history(&super::run_dir(table, r.get("job_id")?)))
        .filter(|h| !h.is_empty())
        .collect();
    if !histories.is_empty() {
        let epochs = histories.iter().map(Vec::len).max().unwrap_or(0);
        let mean = |f: &dyn Fn(&super::plots::EpochPoint) -> Option<f64>| -> Vec<(f64, f64)> {
            (0..epochs)
                .filter_map(|i| {
                    let v: Vec<f64> = histories
                        .iter()
                        .filter_map(|h| h.get(i).and_then(f))
                        .filter(|v| v.is_finite())
                        .collect();
                    (!v.is_empty())
                        .then(|| ((i + 1) as f64, v.iter().sum::<f64>() / v.len() as f64))
                })
                .collect()
        };
        for (name, train, validation) in [
            ("loss", mean(&|p| Some(p.0)), mean(&|p| p.2)),
            ("accuracy", mean(&|p| Some(p.1)), mean(&|p| p.3)),
        ] {
            let ys: Vec<f64> = train.iter().chain(&validation).map(|p| p.1).collect();
            let (lo, hi) = range(&ys);
            let mut series = vec![Series::new("training", train, 0, Mark::Line)];
            if !validation.is_empty() {
                series.push(Series::new("validation", validation, 1, Mark::Dashed));
            }
            s += &Chart {
                title: format!("{name} per epoch (mean of {})", histories.len()),
                x_label: "epoch".into(),
                y_label: name.into(),
                x: (1.0, epochs.max(2) as f64),
                y: pad(lo, hi),
                series,
                diagonal: false,
            }
            .to_svg();
        }
    }
    s += "</div>";
    if missing > 0 {
        let _ = write!(
            s,
            "<p class=\"warn\">{missing} jobs have no readable predictions.csv; the ROC leaves them out.</p>"
        );
    }
    s += &jobs_table(members, runs);
    s + "</details>\n"
}

fn jobs_table(members: &[&Row], runs: &str) -> String {
    let mut s = String::from(
        "<table class=\"jobs\"><thead><tr><th>job</th><th>seed</th><th>fold</th><th>status</th><th>ROC AUC</th><th>accuracy</th>",
    );
    for (_, name) in PROVENANCE {
        let _ = write!(s, "<th>{name}</th>");
    }
    s += "<th>artefacts</th></tr></thead><tbody>";
    for r in members {
        let id = r.get("job_id").unwrap_or_default();
        let get = |c: &str| escape(r.get(c).unwrap_or(""));
        let status = r.get("status").unwrap_or("");
        let status_cell = if status == "ok" {
            "ok".to_string()
        } else {
            format!(
                "<span class=\"bad\" title=\"{}\">{}</span>",
                get("error"),
                escape(status)
            )
        };
        let _ = write!(
            s,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{status_cell}</td><td>{}</td><td>{}</td>",
            escape(id),
            get("seed"),
            get("fold"),
            short_number(r.get("auc")),
            short_number(r.get("accuracy"))
        );
        for (column, _) in PROVENANCE {
            let _ = write!(s, "<td>{}</td>", get(column));
        }
        let base = if runs.is_empty() {
            escape(id)
        } else {
            format!("{}/{}", escape(runs), escape(id))
        };
        let _ = write!(
            s,
            "<td><a href=\"{base}/config.toml\">config</a> · <a href=\"{base}/predictions.csv\">predictions</a> · <a href=\"{base}/history.csv\">history</a> · <a href=\"{base}/\">folder</a></td></tr>"
        );
    }
    s + "</tbody></table>"
}

fn short_number(value: Option<&str>) -> String {
    match value.and_then(|v| v.parse::<f64>().ok()) {
        Some(v) => format!("{v:.4}"),
        None => escape(value.unwrap_or("")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_to_runs_resolve_from_the_page_folder() {
        let table = Path::new("/data/sweeps/results.csv");
        assert_eq!(runs_link(table, Some(Path::new("/data/sweeps"))), "runs");
        assert_eq!(
            runs_link(table, Some(Path::new("/data/pages"))),
            "../sweeps/runs"
        );
        assert_eq!(
            runs_link(Path::new("results/results.csv"), None),
            "results/runs"
        );
    }
}
