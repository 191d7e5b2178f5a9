//! Small inline SVG charts for the HTML report: line charts with bands and markers, a
//! confusion matrix and parallel coordinates. Written by hand rather than with plotters'
//! SVG backend because a page holds a chart per group: plotters' ROC figure is 36 kB (each
//! glyph and segment an element), these are 2-5 kB, and text stays text that the browser
//! renders and searches. Coordinates are rounded (paths to whole pixels), so a page is
//! byte-identical for the same rows.

use std::fmt::Write;

/// Colours of series, in order (matplotlib's tab10, as the PNG figures use).
pub const PALETTE: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

const W: f64 = 420.0;
const H: f64 = 300.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 40.0;

/// Text with `<`, `>`, `&` and quotes escaped for HTML and SVG.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    Line,
    Dashed,
    /// Points only, hollow when `false`.
    Points(bool),
    /// A line that steps (running best).
    Step,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// (x, low, high): a shaded band.
    pub band: Vec<(f64, f64, f64)>,
    pub color: &'static str,
    pub mark: Mark,
}

impl Series {
    pub fn new(
        label: impl Into<String>,
        points: Vec<(f64, f64)>,
        color: usize,
        mark: Mark,
    ) -> Self {
        Self {
            label: label.into(),
            points,
            band: Vec::new(),
            color: PALETTE[color % PALETTE.len()],
            mark,
        }
    }
}

/// A line chart.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x: (f64, f64),
    pub y: (f64, f64),
    pub series: Vec<Series>,
    /// Draw the diagonal y = x (chance on an ROC).
    pub diagonal: bool,
}

/// A number on an axis, with as many decimals as the step between ticks needs.
fn tick_text(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

/// About five round tick values covering `lo..=hi`.
fn ticks(lo: f64, hi: f64) -> (Vec<f64>, f64) {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    ((first..=last).map(|i| i as f64 * step).collect(), step)
}

impl Chart {
    pub fn to_svg(&self) -> String {
        let (x0, x1) = self.x;
        let (y0, y1) = if self.y.1 > self.y.0 {
            self.y
        } else {
            (self.y.0 - 0.5, self.y.0 + 0.5)
        };
        let px = |x: f64| LEFT + (x - x0) / (x1 - x0).max(1e-12) * (W - LEFT - RIGHT);
        let py = |y: f64| H - BOTTOM - (y - y0) / (y1 - y0).max(1e-12) * (H - TOP - BOTTOM);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" class=\"chart\" role=\"img\" aria-label=\"{}\">",
            escape(&self.title)
        );
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"18\" class=\"title\">{}</text>",
            W / 2.0,
            escape(&self.title)
        );
        // Grid lines as one path per axis, tick labels as plain text (classes carry the
        // styling): a page holds hundreds of charts.
        let (xt, xs) = ticks(x0, x1);
        let (yt, ys) = ticks(y0, y1);
        let mut grid = String::new();
        for &t in &xt {
            let _ = write!(grid, "M{:.0} {TOP}V{:.0}", px(t), H - BOTTOM);
        }
        for &t in &yt {
            let _ = write!(grid, "M{LEFT} {:.0}H{:.0}", py(t), W - RIGHT);
        }
        let _ = write!(s, "<path class=\"grid\" d=\"{grid}\"/>");
        for &t in &xt {
            let _ = write!(
                s,
                "<text x=\"{:.0}\" y=\"{:.0}\" class=\"tx\">{}</text>",
                px(t),
                H - BOTTOM + 14.0,
                tick_text(t, xs)
            );
        }
        for &t in &yt {
            let _ = write!(
                s,
                "<text x=\"{:.0}\" y=\"{:.0}\" class=\"ty\">{}</text>",
                LEFT - 4.0,
                py(t) + 4.0,
                tick_text(t, ys)
            );
        }
        let _ = write!(
            s,
            "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" class=\"frame\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{}</text>\
             <text transform=\"translate(13 {:.1}) rotate(-90)\" class=\"axis\" text-anchor=\"middle\">{}</text>",
            W - LEFT - RIGHT,
            H - TOP - BOTTOM,
            (LEFT + W - RIGHT) / 2.0,
            H - 6.0,
            escape(&self.x_label),
            (TOP + H - BOTTOM) / 2.0,
            escape(&self.y_label)
        );
        if self.diagonal {
            let _ = write!(
                s,
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" class=\"chance\"/>",
                px(x0.max(y0)),
                py(x0.max(y0)),
                px(x1.min(y1)),
                py(x1.min(y1))
            );
        }
        // Whole pixels, and a point that rounds to the one before it left out: a chart
        // holds a path per series and a page a chart per group.
        let path = |points: &mut dyn Iterator<Item = (f64, f64)>| -> String {
            let mut d = String::new();
            let mut last = None;
            for (x, y) in points {
                let here = (px(x).round() as i64, py(y).round() as i64);
                if last == Some(here) {
                    continue;
                }
                let _ = write!(
                    d,
                    "{}{} {}",
                    if last.is_none() { "M" } else { "L" },
                    here.0,
                    here.1
                );
                last = Some(here);
            }
            d
        };
        for series in &self.series {
            if !series.band.is_empty() {
                let mut outline = series
                    .band
                    .iter()
                    .map(|&(x, _, hi)| (x, hi))
                    .chain(series.band.iter().rev().map(|&(x, lo, _)| (x, lo)));
                let _ = write!(
                    s,
                    "<path d=\"{}Z\" fill=\"{}\" fill-opacity=\"0.18\" stroke=\"none\"/>",
                    path(&mut outline),
                    series.color
                );
            }
            match series.mark {
                Mark::Line | Mark::Dashed => {
                    let _ = write!(
                        s,
                        "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>",
                        path(&mut series.points.iter().copied()),
                        series.color,
                        if series.mark == Mark::Dashed {
                            " stroke-dasharray=\"5 3\""
                        } else {
                            ""
                        }
                    );
                }
                Mark::Step => {
                    let mut stepped = Vec::new();
                    for (i, &(x, y)) in series.points.iter().enumerate() {
                        if i > 0 {
                            stepped.push((x, series.points[i - 1].1));
                        }
                        stepped.push((x, y));
                    }
                    let _ = write!(
                        s,
                        "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
                        path(&mut stepped.into_iter()),
                        series.color
                    );
                }
                Mark::Points(filled) => {
                    for &(x, y) in &series.points {
                        let _ = write!(
                            s,
                            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" stroke=\"{c}\" fill=\"{}\"/>",
                            px(x),
                            py(y),
                            if filled { series.color } else { "white" },
                            c = series.color
                        );
                    }
                }
            }
        }
        // Legend inside the frame, in whichever right-hand corner the data leaves freer
        // (an ROC's empty corner is bottom right, a falling loss's top right).
        let labelled: Vec<&Series> = self.series.iter().filter(|s| !s.label.is_empty()).collect();
        if !labelled.is_empty() {
            let width = labelled
                .iter()
                .map(|s| s.label.chars().count())
                .max()
                .unwrap_or(0) as f64
                * 6.2
                + 34.0;
            let height = 15.0 * labelled.len() as f64 + 4.0;
            // Bottom right, unless more of the data lies there than in the top right.
            let crowd = |top: bool| {
                self.series
                    .iter()
                    .flat_map(|s| &s.points)
                    .filter(|&&(x, y)| {
                        let (x, y) = (px(x), py(y));
                        x >= W - RIGHT - width - 6.0
                            && if top {
                                y <= TOP + height + 8.0
                            } else {
                                y >= H - BOTTOM - height - 8.0
                            }
                    })
                    .count()
            };
            let ly = if crowd(false) > crowd(true) {
                TOP + 4.0
            } else {
                H - BOTTOM - 4.0 - height
            };
            let lx = W - RIGHT - width - 6.0;
            let _ = write!(
                s,
                "<rect x=\"{lx:.1}\" y=\"{ly:.1}\" width=\"{width:.1}\" height=\"{height:.1}\" class=\"legend\"/>"
            );
            for (i, series) in labelled.iter().enumerate() {
                let y = ly + 12.0 + 15.0 * i as f64;
                let _ = write!(
                    s,
                    "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"3\"{}/><text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\">{}</text>",
                    lx + 5.0,
                    lx + 25.0,
                    y - 4.0,
                    y - 4.0,
                    series.color,
                    if series.mark == Mark::Dashed {
                        " stroke-dasharray=\"5 3\""
                    } else {
                        ""
                    },
                    lx + 30.0,
                    y,
                    escape(&series.label)
                );
            }
        }
        s.push_str("</svg>");
        s
    }
}

/// A 2×2 confusion matrix: rows the true class, columns the predicted one, each cell shaded
/// by its share of its row.
pub fn confusion(title: &str, tn: usize, fp: usize, fn_: usize, tp: usize) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 300 260\" class=\"chart confusion\" role=\"img\" aria-label=\"{0}\"><text x=\"150\" y=\"18\" class=\"title\">{0}</text>",
        escape(title)
    );
    let cells = [
        (0, 0, tn, tn + fp),
        (0, 1, fp, tn + fp),
        (1, 0, fn_, fn_ + tp),
        (1, 1, tp, fn_ + tp),
    ];
    for (row, col, count, total) in cells {
        let share = if total == 0 {
            0.0
        } else {
            count as f64 / total as f64
        };
        let (x, y) = (90.0 + 95.0 * col as f64, 40.0 + 85.0 * row as f64);
        let right = row == col;
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"{y}\" width=\"93\" height=\"83\" fill=\"{}\" fill-opacity=\"{:.2}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"count\" text-anchor=\"middle\">{count}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{:.1}%</text>",
            if right { "#2ca02c" } else { "#d62728" },
            0.1 + 0.6 * share,
            x + 46.5,
            y + 42.0,
            x + 46.5,
            y + 62.0,
            100.0 * share
        );
    }
    s.push_str(
        "<text x=\"185\" y=\"230\" class=\"axis\" text-anchor=\"middle\">predicted: 0 (normal) · 1 (cluster)</text>\
         <text x=\"84\" y=\"86\" class=\"tick\" text-anchor=\"end\">true 0</text>\
         <text x=\"84\" y=\"171\" class=\"tick\" text-anchor=\"end\">true 1</text></svg>",
    );
    s
}

/// One axis of a parallel-coordinates view: its name and each line's value on it.
pub struct Axis {
    pub name: String,
    pub values: Vec<String>,
}

/// Where each value falls on its axis, 0..=1: numbers on a linear scale (logarithmic when
/// they are positive and span two decades or more), other values evenly spaced in sorted
/// order. Returns the positions and the axis's end labels.
fn place(values: &[String]) -> (Vec<f64>, String, String) {
    let numbers: Option<Vec<f64>> = values
        .iter()
        .map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect();
    if let Some(numbers) = numbers.filter(|n| !n.is_empty()) {
        let (lo, hi) = numbers
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let log = lo > 0.0 && hi / lo >= 100.0;
        let f = |x: f64| if log { x.ln() } else { x };
        let span = f(hi) - f(lo);
        let pos = numbers
            .iter()
            .map(|&x| {
                if span > 0.0 {
                    (f(x) - f(lo)) / span
                } else {
                    0.5
                }
            })
            .collect();
        let label = |x: f64| {
            if x.abs() >= 100.0 || x == x.trunc() {
                format!("{x}")
            } else {
                format!("{x:.3e}")
                    .parse::<f64>()
                    .map_or_else(|_| x.to_string(), |v| v.to_string())
            }
        };
        return (pos, label(lo), label(hi));
    }
    let mut distinct: Vec<&String> = values.iter().collect();
    distinct.sort();
    distinct.dedup();
    let n = distinct.len();
    let pos = values
        .iter()
        .map(|v| {
            let i = distinct.binary_search(&v).unwrap_or(0);
            if n > 1 {
                i as f64 / (n - 1) as f64
            } else {
                0.5
            }
        })
        .collect();
    let short = |v: &String| v.chars().take(14).collect::<String>();
    (
        pos,
        distinct.first().map_or_else(String::new, |v| short(v)),
        distinct.last().map_or_else(String::new, |v| short(v)),
    )
}

/// Parallel coordinates: a line per trial across `axes`, coloured from grey (worst score)
/// to blue (best) by `scores` (higher is better when `maximize`), the best in orange.
pub fn parallel_coordinates(title: &str, axes: &[Axis], scores: &[f64], maximize: bool) -> String {
    let width = 120.0 + 110.0 * axes.len().max(1) as f64;
    let (top, bottom) = (50.0, 250.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width:.0} 290\" class=\"chart wide\" role=\"img\" aria-label=\"{0}\"><text x=\"{1:.1}\" y=\"18\" class=\"title\">{0}</text>",
        escape(title),
        width / 2.0
    );
    let x = |i: usize| 60.0 + 110.0 * i as f64;
    let placed: Vec<(Vec<f64>, String, String)> = axes.iter().map(|a| place(&a.values)).collect();
    let finite: Vec<f64> = scores.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let goodness = |v: f64| {
        if !v.is_finite() || hi <= lo {
            0.5
        } else if maximize {
            (v - lo) / (hi - lo)
        } else {
            (hi - v) / (hi - lo)
        }
    };
    let best = (0..scores.len())
        .filter(|&i| scores[i].is_finite())
        .max_by(|&a, &b| {
            goodness(scores[a])
                .total_cmp(&goodness(scores[b]))
                .then(b.cmp(&a))
        });
    // Worse lines first, so the better ones are drawn on top.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        goodness(scores[a])
            .total_cmp(&goodness(scores[b]))
            .then(a.cmp(&b))
    });
    for line in order {
        let g = goodness(scores[line]);
        let color = if Some(line) == best {
            "#ff7f0e".to_string()
        } else {
            let mix = |a: f64, b: f64| (a + (b - a) * g).round() as u8;
            format!(
                "#{:02x}{:02x}{:02x}",
                mix(200.0, 31.0),
                mix(200.0, 119.0),
                mix(200.0, 180.0)
            )
        };
        let mut d = String::new();
        for (i, (pos, _, _)) in placed.iter().enumerate() {
            let y = bottom - pos[line] * (bottom - top);
            let _ = write!(d, "{}{:.1} {:.1}", if i == 0 { "M" } else { "L" }, x(i), y);
        }
        let _ = write!(
            s,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{}\" stroke-opacity=\"0.85\"><title>trial {}: {}</title></path>",
            if Some(line) == best { 3 } else { 1 },
            line,
            if scores[line].is_finite() {
                format!("{:.4}", scores[line])
            } else {
                "failed".to_string()
            }
        );
    }
    for (i, (axis, (_, low, high))) in axes.iter().zip(&placed).enumerate() {
        let _ = write!(
            s,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{top}\" y2=\"{bottom}\" class=\"paxis\"/>\
             <text x=\"{0:.1}\" y=\"38\" class=\"axis\" text-anchor=\"middle\">{1}</text>\
             <text x=\"{2:.1}\" y=\"{bottom}\" class=\"tick\">{3}</text>\
             <text x=\"{2:.1}\" y=\"{top}\" class=\"tick\">{4}</text>",
            x(i),
            escape(axis.name.rsplit('.').next().unwrap_or(&axis.name)),
            x(i) + 4.0,
            escape(low),
            escape(high)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (t, step) = ticks(0.0, 1.0);
        assert_eq!(step, 0.2);
        assert_eq!(t.len(), 6);
        assert_eq!(tick_text(0.4, step), "0.4");
        let (t, step) = ticks(1.0, 25.0);
        assert_eq!(step, 5.0);
        assert_eq!(t.first(), Some(&5.0));
    }

    #[test]
    fn text_is_escaped_and_charts_are_deterministic() {
        let chart = Chart {
            title: "ROC <a & b>".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x: (0.0, 1.0),
            y: (0.0, 1.0),
            series: vec![Series::new(
                "mean",
                vec![(0.0, 0.0), (0.5, 0.9), (1.0, 1.0)],
                0,
                Mark::Line,
            )],
            diagonal: true,
        };
        let svg = chart.to_svg();
        assert!(
            svg.contains("ROC &lt;a &amp; b&gt;") && !svg.contains("<a &"),
            "{svg}"
        );
        assert_eq!(svg, chart.to_svg());
        assert!(svg.contains("M52 260L230 "), "{svg}");
    }

    #[test]
    fn parallel_coordinates_place_numbers_on_log_scales_and_mark_the_best() {
        let axes = [
            Axis {
                name: "train.lr".into(),
                values: vec!["0.0001".into(), "0.01".into(), "0.001".into()],
            },
            Axis {
                name: "model.kind".into(),
                values: vec!["b".into(), "a".into(), "b".into()],
            },
        ];
        let (pos, low, high) = place(&axes[0].values);
        assert_eq!((low.as_str(), high.as_str()), ("0.0001", "0.01"));
        assert!((pos[2] - 0.5).abs() < 1e-12, "log scale: {pos:?}");
        let svg = parallel_coordinates("t", &axes, &[0.9, 0.95, f64::NAN], true);
        assert!(svg.contains("stroke=\"#ff7f0e\" stroke-width=\"3\" stroke-opacity=\"0.85\"><title>trial 1: 0.9500"), "{svg}");
        assert!(svg.contains("trial 2: failed"));
    }

    #[test]
    fn confusion_shades_by_row_share() {
        let svg = confusion("c", 8, 2, 1, 9);
        assert!(svg.contains(">80.0%<") && svg.contains(">90.0%<") && svg.contains(">10.0%<"));
    }
}
