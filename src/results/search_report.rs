//! What a search found: its trials ranked by the search metric (`microcal report --best N`)
//! and its optimisation history (the metric per trial with the running best, as Optuna's
//! `plot_optimization_history`), both from the rows of the results table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::cells::escape_markdown;
use super::plots::{both, draw_legend, palette, FONT};
use super::report::Filter;
use super::{ResultsError, Row};

/// One trial: its rows at the highest rung it reached, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialSummary {
    pub trial: usize,
    pub rung: Option<usize>,
    /// Mean of the metric over the trial's folds and seeds at that rung (NaN if one failed).
    pub score: f64,
    /// The trial's values of the keys that differ between trials.
    pub values: Vec<(String, String)>,
}

/// Keys that differ between trials without being searched.
const NOT_SEARCHED: &[&str] = &["train.epochs", "data.evaluate"];

/// Every trial of the selected rows (`search_role` = trial), in trial order.
pub fn trials(rows: &[Row], filters: &[Filter], metric: &str) -> Vec<TrialSummary> {
    let selected: Vec<&Row> = rows
        .iter()
        .filter(|r| r.get("search_role") == Some("trial"))
        .filter(|r| filters.iter().all(|f| f.matches(r)))
        .collect();
    let mut by_trial: BTreeMap<usize, Vec<&Row>> = BTreeMap::new();
    for r in &selected {
        if let Some(t) = r.get("search_trial").and_then(|t| t.parse().ok()) {
            by_trial.entry(t).or_default().push(r);
        }
    }
    let rung = |r: &Row| r.get("search_rung").and_then(|v| v.parse::<usize>().ok());
    let differing: Vec<String> = {
        let mut values: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
        for r in &selected {
            for (k, v) in &r.columns {
                if k.contains('.') && !NOT_SEARCHED.contains(&k.as_str()) && k != "data.fingerprint"
                {
                    values.entry(k).or_default().insert(v);
                }
            }
        }
        values
            .into_iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(k, _)| k.to_string())
            .collect()
    };
    by_trial
        .into_iter()
        .map(|(trial, rows)| {
            let top = rows.iter().filter_map(|r| rung(r)).max();
            let at_top: Vec<&&Row> = rows.iter().filter(|r| rung(r) == top).collect();
            let scores: Vec<f64> = at_top
                .iter()
                .map(|r| {
                    if r.get("status") == Some("ok") {
                        r.get(metric)
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(f64::NAN)
                    } else {
                        f64::NAN
                    }
                })
                .collect();
            let score = scores.iter().sum::<f64>() / scores.len().max(1) as f64;
            let values = differing
                .iter()
                .map(|k| (k.clone(), at_top[0].get(k).unwrap_or("").to_string()))
                .collect();
            TrialSummary {
                trial,
                rung: top,
                score,
                values,
            }
        })
        .collect()
}

/// The `n` best trials (of those that reached the highest rung), best first, as Markdown.
pub fn best_table(trials: &[TrialSummary], n: usize, metric: &str, maximize: bool) -> String {
    let top_rung = trials.iter().filter_map(|t| t.rung).max();
    let mut ranked: Vec<&TrialSummary> = trials
        .iter()
        .filter(|t| t.rung == top_rung && t.score.is_finite())
        .collect();
    ranked.sort_by(|a, b| {
        let order = a.score.total_cmp(&b.score);
        (if maximize { order.reverse() } else { order }).then(a.trial.cmp(&b.trial))
    });
    let keys: Vec<&str> = trials
        .first()
        .map(|t| t.values.iter().map(|(k, _)| k.as_str()).collect())
        .unwrap_or_default();
    let mut out = format!("| rank | trial | validation {metric} |");
    for k in &keys {
        out += &format!(" {} |", escape_markdown(k));
    }
    out += &format!("\n|---|---|---|{}\n", "---|".repeat(keys.len()));
    for (rank, t) in ranked.iter().take(n).enumerate() {
        out += &format!("| {} | {} | {:.4} |", rank + 1, t.trial, t.score);
        for (_, v) in &t.values {
            out += &format!(" {} |", escape_markdown(v));
        }
        out.push('\n');
    }
    out
}

/// The metric of each trial (filled: reached the highest rung; hollow: stopped earlier) and
/// the running best of those that reached it, into `<stem>.png` and `.svg`.
pub fn history_figure(
    stem: &Path,
    title: &str,
    trials: &[TrialSummary],
    metric: &str,
    maximize: bool,
) -> Result<Vec<PathBuf>, ResultsError> {
    let top_rung = trials.iter().filter_map(|t| t.rung).max();
    let finished: Vec<(usize, f64, bool)> = trials
        .iter()
        .filter(|t| t.score.is_finite())
        .map(|t| (t.trial, t.score, t.rung == top_rung))
        .collect();
    let mut best: Option<f64> = None;
    let mut running = Vec::new();
    for &(trial, score, full) in &finished {
        if full && best.is_none_or(|b| if maximize { score > b } else { score < b }) {
            best = Some(score);
        }
        if let Some(b) = best {
            running.push((trial as f64, b));
        }
    }
    let (low, high) = finished
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| {
            (l.min(p.1), h.max(p.1))
        });
    let pad = ((high - low) * 0.05).max(0.005);
    let y_range = if low.is_finite() {
        (low - pad)..(high + pad)
    } else {
        0.0..1.0
    };
    let x_max = trials.iter().map(|t| t.trial).max().unwrap_or(1).max(1) as f64 + 0.5;
    macro_rules! draw_history {
        ($root:expr) => {{
            let root = $root;
            let e = |x: &dyn std::fmt::Display| x.to_string();
            root.fill(&WHITE).map_err(|x| e(&x))?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, (FONT, 22))
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(64)
                .build_cartesian_2d(-0.5..x_max, y_range.clone())
                .map_err(|x| e(&x))?;
            chart
                .configure_mesh()
                .x_desc("trial")
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_desc(format!("validation {metric}"))
                .label_style((FONT, 14))
                .axis_desc_style((FONT, 16))
                .draw()
                .map_err(|x| e(&x))?;
            let (blue, grey) = (palette(0), RGBColor(150, 150, 150));
            chart
                .draw_series(
                    finished
                        .iter()
                        .filter(|p| p.2)
                        .map(|p| Circle::new((p.0 as f64, p.1), 4, blue.filled())),
                )
                .map_err(|x| e(&x))?
                .label("trial, full budget")
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, blue.filled()));
            if finished.iter().any(|p| !p.2) {
                chart
                    .draw_series(
                        finished
                            .iter()
                            .filter(|p| !p.2)
                            .map(|p| Circle::new((p.0 as f64, p.1), 4, grey.stroke_width(1))),
                    )
                    .map_err(|x| e(&x))?
                    .label("trial, stopped early (halving)")
                    .legend(move |(x, y)| Circle::new((x + 10, y), 4, grey.stroke_width(1)));
            }
            let red = palette(3);
            chart
                .draw_series(LineSeries::new(
                    running.iter().copied(),
                    red.stroke_width(2),
                ))
                .map_err(|x| e(&x))?
                .label("best so far")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(3))
                });
            let position = if maximize {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            };
            draw_legend(&mut chart, position)?;
            Ok(())
        }};
    }
    both(
        stem,
        (900, 520),
        |root: &DrawingArea<BitMapBackend, Shift>| draw_history!(root),
        |root: &DrawingArea<SVGBackend, Shift>| draw_history!(root),
    )
}
