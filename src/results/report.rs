//! `microcal report`: rows of the results table grouped by the configuration that differs,
//! with mean ± standard deviation over seeds and folds, as Markdown, LaTeX or CSV.

use std::collections::BTreeMap;

use super::cells::{escape_csv, escape_markdown};
use super::{ResultsError, Row};
use crate::data::{DataSource, SplitKind};
use crate::models::{key_applies, ModelKind};

/// Metrics summarised per group, with their column names and headings.
const METRICS: &[(&str, &str)] = &[
    ("accuracy", "accuracy"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("specificity", "specificity"),
    ("f1", "F1"),
    ("auc", "ROC AUC"),
    ("test_accuracy", "Test accuracy"),
    ("test_auc", "Test AUC"),
    ("train_seconds", "train s"),
];

/// Columns that identify a run rather than configure it.
const RUN_COLUMNS: &[&str] = &["seed", "fold", "data.root"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Markdown,
    Latex,
    Csv,
}

/// A `--filter` that is neither KEY=VALUE nor KEY!=VALUE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter `{0}`: expected KEY=VALUE or KEY!=VALUE")]
pub struct InvalidFilter(pub String);

/// One `key=value` or `key!=value` condition on rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    key: String,
    /// The row matches when its value is one of these (or none of them, negated).
    values: Vec<String>,
    negate: bool,
}

impl Filter {
    pub fn parse(expr: &str) -> Result<Self, InvalidFilter> {
        let (key, value, negate) = match expr.split_once("!=") {
            Some((k, v)) => (k, v, true),
            None => match expr.split_once('=') {
                Some((k, v)) => (k, v, false),
                None => return Err(InvalidFilter(expr.to_string())),
            },
        };
        Ok(Self {
            key: key.trim().to_string(),
            values: vec![value.trim().to_string()],
            negate,
        })
    }

    /// Rows whose `key` is one of `values`.
    pub fn any_of(key: &str, values: impl IntoIterator<Item = String>) -> Self {
        Self {
            key: key.to_string(),
            values: values.into_iter().collect(),
            negate: false,
        }
    }

    pub fn matches(&self, row: &Row) -> bool {
        let value = row.get(&self.key).unwrap_or("");
        self.values.iter().any(|v| v == value) != self.negate
    }
}

/// Summary of one metric over a group's successful runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub mean: f64,
    pub sd: f64,
    pub n: usize,
    /// The run's bootstrap interval, for single-run groups that have one.
    pub ci: Option<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The grouping values, in the order of [`Report::keys`].
    pub values: Vec<String>,
    pub runs: usize,
    /// Rows whose status is not `ok` (counted, never averaged).
    pub failed: usize,
    pub metrics: BTreeMap<&'static str, Summary>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Keys whose values differ between groups (the columns shown).
    pub keys: Vec<String>,
    pub groups: Vec<Group>,
    /// Each group's standing against the best group on its images (None: not comparable);
    /// empty when not asked for (see `against_best`).
    pub against_best: Vec<Option<AgainstBest>>,
}

/// A group's standing against the best group on its images.
#[derive(Debug, Clone, PartialEq)]
pub enum AgainstBest {
    /// The best group of its images.
    Best,
    /// DeLong's two-sided p of the difference, and the difference (this − best).
    P { p: f64, delta: f64 },
}

impl AgainstBest {
    /// `best`, or the p-value with three significant digits.
    pub fn text(&self) -> String {
        match self {
            AgainstBest::Best => "best".to_string(),
            AgainstBest::P { p, .. } => format_p(*p),
        }
    }
}

/// A p-value as a reader wants it: three decimals, or scientific below 0.001.
pub fn format_p(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

/// Rows split into groups: the keys that tell groups apart, and each group's values for
/// them with its rows.
pub struct Grouping<'a> {
    pub keys: Vec<String>,
    pub groups: Vec<(Vec<String>, Vec<&'a Row>)>,
}

/// Groups `rows` by `by` (default: every configuration column except seed and fold, of which
/// only those that differ are kept as keys), after `filters`. A `by` or filter key that is
/// not a column of the table is an error listing the columns. In the default grouping a key
/// that does not apply to a row's model (`train.epochs` of a random forest) counts as blank.
pub fn group_rows<'a>(
    header: &[String],
    rows: &'a [Row],
    by: Option<&[String]>,
    filters: &[Filter],
) -> Result<Grouping<'a>, ResultsError> {
    let known = |key: &str, what: &'static str| {
        if header.is_empty() || header.iter().any(|h| h == key) {
            Ok(())
        } else {
            Err(ResultsError::UnknownColumn {
                key: key.to_string(),
                what,
                columns: header.to_vec(),
            })
        }
    };
    for key in by.unwrap_or_default() {
        known(key, "--by")?;
    }
    for filter in filters {
        known(&filter.key, "--filter")?;
    }
    let rows: Vec<&Row> = rows
        .iter()
        .filter(|r| filters.iter().all(|f| f.matches(r)))
        .collect();
    let keys: Vec<String> = match by {
        Some(keys) => keys.to_vec(),
        None => header
            .iter()
            .filter(|h| {
                (h.contains('.') || *h == "experiment") && !RUN_COLUMNS.contains(&h.as_str())
            })
            .cloned()
            .collect(),
    };
    let mut grouped: BTreeMap<Vec<String>, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        let setting = model_setting(row);
        let applies = |key: &str| {
            setting.is_none_or(|(kind, source, split)| key_applies(kind, source, split, key))
        };
        let values = keys
            .iter()
            .map(|k| match row.get(k) {
                Some(v) if by.is_some() || applies(k) => v.to_string(),
                _ => String::new(),
            })
            .collect();
        grouped.entry(values).or_default().push(row);
    }
    let first = grouped.keys().next().cloned().unwrap_or_default();
    let shown: Vec<usize> = (0..keys.len())
        .filter(|&i| by.is_some() || grouped.keys().any(|v| v[i] != first[i]))
        .collect();
    Ok(Grouping {
        keys: shown.iter().map(|&i| keys[i].clone()).collect(),
        groups: grouped
            .into_iter()
            .map(|(values, members)| (shown.iter().map(|&i| values[i].clone()).collect(), members))
            .collect(),
    })
}

/// The row's model kind, data source and split, which decide the configuration columns
/// that mean something for it (see `models::key_applies`); None for rows that do not say,
/// which are taken to use every column.
fn model_setting(row: &Row) -> Option<(ModelKind, DataSource, SplitKind)> {
    fn parse<T: serde::de::DeserializeOwned>(row: &Row, column: &str) -> Option<T> {
        serde_json::from_value(serde_json::Value::String(row.get(column)?.to_string())).ok()
    }
    Some((
        parse(row, "model.kind")?,
        parse(row, "data.source")?,
        parse(row, "data.split")?,
    ))
}

/// Groups `rows` (see [`group_rows`]) and summarises each group's metrics.
pub fn build_report(
    header: &[String],
    rows: &[Row],
    by: Option<&[String]>,
    filters: &[Filter],
) -> Result<Report, ResultsError> {
    let (keys, groups) = summarised_groups(header, rows, by, filters)?;
    Ok(Report {
        keys,
        groups: groups.into_iter().map(|(g, _)| g).collect(),
        against_best: Vec::new(),
    })
}

/// The grouping keys, and each group's summary with its rows.
pub type SummarisedGroups<'a> = (Vec<String>, Vec<(Group, Vec<&'a Row>)>);

/// The grouping keys, and each group's summary with its rows, best mean AUC first.
pub fn summarised_groups<'a>(
    header: &[String],
    rows: &'a [Row],
    by: Option<&[String]>,
    filters: &[Filter],
) -> Result<SummarisedGroups<'a>, ResultsError> {
    let grouping = group_rows(header, rows, by, filters)?;
    let mut groups: Vec<(Group, Vec<&Row>)> = grouping
        .groups
        .into_iter()
        .map(|(values, members)| (summarise_group(values, &members), members))
        .collect();
    groups.sort_by(|(a, _), (b, _)| b.mean_auc().total_cmp(&a.mean_auc()));
    Ok((grouping.keys, groups))
}

fn summarise_group(values: Vec<String>, members: &[&Row]) -> Group {
    let ok: Vec<&&Row> = members
        .iter()
        .filter(|r| r.get("status") == Some("ok"))
        .collect();
    let mut metrics = BTreeMap::new();
    for (column, _) in METRICS {
        let v: Vec<f64> = ok
            .iter()
            .filter_map(|r| r.get(column)?.parse().ok())
            .filter(|x: &f64| x.is_finite())
            .collect();
        if v.is_empty() {
            continue;
        }
        let ci = (v.len() == 1)
            .then(|| {
                let low = ok[0].get(&format!("{column}_ci_low"))?.parse().ok()?;
                let high = ok[0].get(&format!("{column}_ci_high"))?.parse().ok()?;
                Some((low, high))
            })
            .flatten();
        metrics.insert(*column, summarise(&v, ci));
    }
    Group {
        values,
        runs: members.len(),
        failed: members.len() - ok.len(),
        metrics,
    }
}

impl Group {
    /// The group's mean ROC AUC, or −∞ without one (so it sorts last).
    pub fn mean_auc(&self) -> f64 {
        self.metrics
            .get("auc")
            .map_or(f64::NEG_INFINITY, |s| s.mean)
    }
}

fn summarise(v: &[f64], ci: Option<(f64, f64)>) -> Summary {
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let sd = if n > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    Summary { mean, sd, n, ci }
}

impl Report {
    /// The metrics that at least one group has, with their headings.
    pub fn metric_columns(&self) -> Vec<(&'static str, &'static str)> {
        METRICS
            .iter()
            .filter(|(c, _)| self.groups.iter().any(|g| g.metrics.contains_key(c)))
            .copied()
            .collect()
    }

    /// A metric's cell: mean ± s.d., or one run's value with its interval.
    pub fn cell(&self, g: &Group, column: &str, latex: bool) -> String {
        let Some(s) = g.metrics.get(column) else {
            return "–".to_string();
        };
        let digits = if column == "train_seconds" { 1 } else { 3 };
        let pm = if latex { " $\\pm$ " } else { " ± " };
        match (s.n, s.ci) {
            (1, Some((lo, hi))) => format!("{:.d$} [{lo:.d$}, {hi:.d$}]", s.mean, d = digits),
            (1, None) => format!("{:.d$}", s.mean, d = digits),
            _ => format!("{:.d$}{pm}{:.d$}", s.mean, s.sd, d = digits),
        }
    }

    pub fn render(&self, format: ReportFormat) -> String {
        let metrics = self.metric_columns();
        let mut head: Vec<String> = self.keys.clone();
        head.extend(["runs".to_string(), "failed".to_string()]);
        match format {
            ReportFormat::Csv => {
                let mut w = csv::Writer::from_writer(Vec::new());
                let mut h = head.clone();
                for (c, _) in &metrics {
                    h.extend([format!("{c}_mean"), format!("{c}_sd")]);
                }
                if !self.against_best.is_empty() {
                    h.push("p_vs_best".to_string());
                }
                let escaped = |cells: &[String]| -> Vec<String> {
                    cells.iter().map(|c| escape_csv(c).into_owned()).collect()
                };
                w.write_record(escaped(&h)).expect("in-memory csv");
                for (i, g) in self.groups.iter().enumerate() {
                    let mut r: Vec<String> = escaped(&g.values);
                    r.extend([g.runs.to_string(), g.failed.to_string()]);
                    for (c, _) in &metrics {
                        match g.metrics.get(c) {
                            Some(s) => r.extend([format!("{:.6}", s.mean), format!("{:.6}", s.sd)]),
                            None => r.extend([String::new(), String::new()]),
                        }
                    }
                    if let Some(a) = self.against_best.get(i) {
                        r.push(match a {
                            Some(AgainstBest::Best) => "best".to_string(),
                            Some(AgainstBest::P { p, .. }) => format!("{p:.6e}"),
                            None => String::new(),
                        });
                    }
                    w.write_record(&r).expect("in-memory csv");
                }
                String::from_utf8(w.into_inner().expect("in-memory csv")).expect("utf-8")
            }
            ReportFormat::Markdown => {
                head.extend(metrics.iter().map(|(_, t)| t.to_string()));
                if !self.against_best.is_empty() {
                    head.push("p vs best".to_string());
                }
                let head: Vec<String> = head.iter().map(|h| escape_markdown(h)).collect();
                let mut s = format!(
                    "| {} |\n|{}|\n",
                    head.join(" | "),
                    vec!["---"; head.len()].join("|")
                );
                for (i, g) in self.groups.iter().enumerate() {
                    let mut r: Vec<String> = g.values.iter().map(|v| escape_markdown(v)).collect();
                    r.extend([g.runs.to_string(), g.failed.to_string()]);
                    r.extend(metrics.iter().map(|(c, _)| self.cell(g, c, false)));
                    if let Some(a) = self.against_best.get(i) {
                        r.push(
                            a.as_ref()
                                .map_or_else(|| "–".to_string(), AgainstBest::text),
                        );
                    }
                    s += &format!("| {} |\n", r.join(" | "));
                }
                s
            }
            ReportFormat::Latex => {
                head.extend(metrics.iter().map(|(_, t)| t.to_string()));
                if !self.against_best.is_empty() {
                    head.push("p vs best".to_string());
                }
                let align = "l".repeat(self.keys.len()) + &"r".repeat(head.len() - self.keys.len());
                let mut s = format!(
                    "\\begin{{tabular}}{{{align}}}\n\\toprule\n{} \\\\\n\\midrule\n",
                    head.iter()
                        .map(|h| latex_escape(h))
                        .collect::<Vec<_>>()
                        .join(" & ")
                );
                for (i, g) in self.groups.iter().enumerate() {
                    let mut r: Vec<String> = g.values.iter().map(|v| latex_escape(v)).collect();
                    r.extend([g.runs.to_string(), g.failed.to_string()]);
                    r.extend(metrics.iter().map(|(c, _)| self.cell(g, c, true)));
                    if let Some(a) = self.against_best.get(i) {
                        r.push(
                            a.as_ref()
                                .map_or_else(|| "--".to_string(), AgainstBest::text),
                        );
                    }
                    s += &format!("{} \\\\\n", r.join(" & "));
                }
                s += "\\bottomrule\n\\end{tabular}\n";
                s
            }
        }
    }
}

fn latex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '_' | '%' | '&' | '#' | '$' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '\\' => out.push_str("\\textbackslash{}"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> Row {
        let mut r = Row::default();
        for (k, v) in pairs {
            r.push(*k, *v);
        }
        r
    }

    fn table() -> (Vec<String>, Vec<Row>) {
        let rows = vec![
            row(&[
                ("experiment", "e"),
                ("status", "ok"),
                ("seed", "0"),
                ("model.kind", "cnn"),
                ("train.lr", "0.001"),
                ("auc", "0.90"),
                ("accuracy", "0.8"),
            ]),
            row(&[
                ("experiment", "e"),
                ("status", "ok"),
                ("seed", "1"),
                ("model.kind", "cnn"),
                ("train.lr", "0.001"),
                ("auc", "0.94"),
                ("accuracy", "0.9"),
            ]),
            row(&[
                ("experiment", "e"),
                ("status", "diverged"),
                ("seed", "2"),
                ("model.kind", "cnn"),
                ("train.lr", "0.001"),
            ]),
            row(&[
                ("experiment", "e"),
                ("status", "ok"),
                ("seed", "0"),
                ("model.kind", "baseline"),
                ("train.lr", "0.001"),
                ("auc", "0.95"),
                ("auc_ci_low", "0.91"),
                ("auc_ci_high", "0.98"),
            ]),
        ];
        let header = [
            "experiment",
            "status",
            "seed",
            "model.kind",
            "train.lr",
            "auc",
            "accuracy",
            "auc_ci_low",
            "auc_ci_high",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        (header, rows)
    }

    #[test]
    fn groups_by_differing_config_counts_failures_and_sorts_by_auc() {
        let (header, rows) = table();
        let report = build_report(&header, &rows, None, &[]).unwrap();
        assert_eq!(
            report.keys,
            vec!["model.kind"],
            "only keys that differ are shown"
        );
        assert_eq!(report.groups.len(), 2);
        let (best, cnn) = (&report.groups[0], &report.groups[1]);
        assert_eq!(best.values, vec!["baseline"]);
        assert_eq!((cnn.runs, cnn.failed), (3, 1));
        let auc = &cnn.metrics["auc"];
        assert!(
            (auc.mean - 0.92).abs() < 1e-12 && (auc.sd - 0.0282842712).abs() < 1e-8 && auc.n == 2
        );
        assert_eq!(best.metrics["auc"].ci, Some((0.91, 0.98)));
        let md = report.render(ReportFormat::Markdown);
        assert!(md.contains("| cnn | 3 | 1 | 0.850 ± 0.071 |"), "{md}");
        assert!(md.contains("0.950 [0.910, 0.980]"), "{md}");
        let tex = report.render(ReportFormat::Latex);
        assert!(
            tex.starts_with("\\begin{tabular}{lrr")
                && tex.contains("\\toprule")
                && tex.contains("$\\pm$"),
            "{tex}"
        );
        assert!(tex.contains("model.kind"));
        let csv = report.render(ReportFormat::Csv);
        assert!(csv.lines().next().unwrap().contains("auc_mean,auc_sd"));
    }

    #[test]
    fn filters_and_explicit_keys() {
        let (header, rows) = table();
        let only_cnn = [Filter::parse("model.kind=cnn").unwrap()];
        let report =
            build_report(&header, &rows, Some(&["train.lr".to_string()]), &only_cnn).unwrap();
        assert_eq!(report.groups.len(), 1);
        assert_eq!(report.groups[0].values, vec!["0.001"]);
        let not_cnn = [Filter::parse("model.kind!=cnn").unwrap()];
        assert_eq!(
            build_report(&header, &rows, None, &not_cnn).unwrap().groups[0].runs,
            1
        );
        assert!(Filter::parse("nonsense").is_err());
    }

    #[test]
    fn unknown_keys_are_errors_that_list_the_columns() {
        let (header, rows) = table();
        let err = build_report(&header, &rows, Some(&["train.epoch".to_string()]), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`train.epoch`") && err.contains("--by") && err.contains("train.lr"),
            "{err}"
        );
        let typo = [Filter::parse("model.knd=cnn").unwrap()];
        let err = build_report(&header, &rows, None, &typo)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`model.knd`") && err.contains("--filter"),
            "{err}"
        );
    }

    #[test]
    fn keys_a_model_does_not_read_stay_out_of_default_groups() {
        let cols = [
            ("experiment", "e"),
            ("status", "ok"),
            ("data.source", "folder"),
            ("data.split", "given"),
        ];
        let forest = |epochs: &str, classifier: &str| {
            let mut r = row(&cols);
            r.push("model.kind", "wavelet-classical");
            r.push("model.classifier", classifier);
            r.push("train.epochs", epochs);
            r
        };
        let mut mlp = row(&cols);
        mlp.push("model.kind", "wavelet-mlp");
        mlp.push("train.epochs", "50");
        // Forests with different (unread) epochs form one group; the MLP's epochs are
        // shown only through its own row.
        let rows = vec![forest("50", "svm"), forest("25", "svm"), mlp];
        let header: Vec<String> = [
            "experiment",
            "status",
            "data.source",
            "data.split",
            "model.kind",
            "model.classifier",
            "train.epochs",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let grouping = group_rows(&header, &rows, None, &[]).unwrap();
        assert_eq!(grouping.groups.len(), 2, "{:?}", grouping.keys);
        let svm = grouping
            .groups
            .iter()
            .find(|(v, _)| v.contains(&"svm".to_string()))
            .unwrap();
        assert_eq!(svm.1.len(), 2);
    }
}
