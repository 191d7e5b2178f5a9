//! Figures with plotters, each written as PNG and SVG: ROC curves (per run and the mean with
//! a ±1 s.d. band), learning curves, confusion matrices and sample sheets.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::ResultsError;

pub(super) const FONT: &str = "sans-serif";

/// Registers the embedded DejaVu Sans, so text renders the same on every machine.
fn fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, bytes);
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, bytes);
    });
}

/// One ROC curve.
#[derive(Debug, Clone)]
pub struct RocCurve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Mean ROC over runs on a common false-positive-rate grid, with the s.d. of the TPR.
#[derive(Debug, Clone)]
pub struct MeanRoc {
    pub label: String,
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    pub sd: Vec<f64>,
}

/// Interpolates each curve's TPR at 101 FPR values and averages (as scikit-learn's
/// cross-validated ROC example does).
pub fn mean_roc(label: String, curves: &[Vec<(f64, f64)>]) -> MeanRoc {
    let fpr: Vec<f64> = (0..=100).map(|i| i as f64 / 100.0).collect();
    let tprs: Vec<Vec<f64>> = curves
        .iter()
        .map(|c| fpr.iter().map(|&x| interpolate(c, x)).collect())
        .collect();
    let n = tprs.len().max(1) as f64;
    let tpr: Vec<f64> = (0..fpr.len())
        .map(|i| tprs.iter().map(|t| t[i]).sum::<f64>() / n)
        .collect();
    let sd = (0..fpr.len())
        .map(|i| (tprs.iter().map(|t| (t[i] - tpr[i]).powi(2)).sum::<f64>() / n).sqrt())
        .collect();
    MeanRoc {
        label,
        fpr,
        tpr,
        sd,
    }
}

/// TPR at `x` on a monotone ROC polyline (the highest TPR where the curve jumps vertically).
fn interpolate(points: &[(f64, f64)], x: f64) -> f64 {
    let mut best = 0.0;
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x0 <= x && x <= x1 {
            let y = if x1 > x0 {
                y0 + (y1 - y0) * (x - x0) / (x1 - x0)
            } else {
                y1
            };
            best = f64::max(best, y);
        }
    }
    best
}

/// Draws the same figure into `<stem>.png` and `<stem>.svg` (one closure per backend, both
/// from one drawing macro); returns both paths.
pub(super) fn both(
    stem: &Path,
    size: (u32, u32),
    draw_png: impl Fn(&DrawingArea<BitMapBackend, Shift>) -> Result<(), String>,
    draw_svg: impl Fn(&DrawingArea<SVGBackend, Shift>) -> Result<(), String>,
) -> Result<Vec<PathBuf>, ResultsError> {
    fonts();
    let err = |path: &Path, e: String| ResultsError::Write {
        path: path.to_path_buf(),
        cause: std::io::Error::other(e),
    };
    if let Some(dir) = stem.parent() {
        std::fs::create_dir_all(dir).map_err(|cause| ResultsError::Write {
            path: dir.to_path_buf(),
            cause,
        })?;
    }
    let png = with_extension(stem, "png");
    let svg = with_extension(stem, "svg");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw_png(&root).map_err(|e| err(&png, e))?;
        root.present().map_err(|e| err(&png, e.to_string()))?;
    }
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        draw_svg(&root).map_err(|e| err(&svg, e))?;
        root.present().map_err(|e| err(&svg, e.to_string()))?;
    }
    Ok(vec![png, svg])
}

/// `stem` with `.ext` appended. (`Path::with_extension` would replace whatever follows the
/// last dot, so `g01_bior2.4_roc` would become `g01_bior2.png` and overwrite another group's.)
fn with_extension(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_os_string();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// The legend every figure draws: its series' labels in a framed, lightly filled box.
pub(super) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(|e| e.to_string())
}

pub(super) fn palette(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    COLORS[i % COLORS.len()]
}

/// ROC figure: thin per-run curves, and for each mean curve a line with its ±1 s.d. band.
pub fn roc_figure(
    stem: &Path,
    title: &str,
    runs: &[RocCurve],
    means: &[MeanRoc],
) -> Result<Vec<PathBuf>, ResultsError> {
    macro_rules! draw_roc {
        ($root:expr) => {{
            let root = $root;
            let e = |x: &dyn std::fmt::Display| x.to_string();
            root.fill(&WHITE).map_err(|x| e(&x))?;
            let mut chart = ChartBuilder::on(root)
                .caption(title, (FONT, 22))
                .margin(14)
                .x_label_area_size(48)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..1.0, 0.0..1.0)
                .map_err(|x| e(&x))?;
            chart
                .configure_mesh()
                .x_desc("false positive rate (1 - specificity)")
                .y_desc("true positive rate (sensitivity)")
                .label_style((FONT, 15))
                .axis_desc_style((FONT, 17))
                .draw()
                .map_err(|x| e(&x))?;
            chart
                .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
                .map_err(|x| e(&x))?;
            for (i, run) in runs.iter().enumerate() {
                let color = palette(i);
                chart
                    .draw_series(LineSeries::new(
                        run.points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(|x| e(&x))?
                    .label(run.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                    });
            }
            for (i, m) in means.iter().enumerate() {
                let color = palette(i + runs.len());
                let upper: Vec<(f64, f64)> = m
                    .fpr
                    .iter()
                    .zip(m.tpr.iter().zip(&m.sd))
                    .map(|(x, (y, s))| (*x, (y + s).min(1.0)))
                    .collect();
                let lower: Vec<(f64, f64)> = m
                    .fpr
                    .iter()
                    .zip(m.tpr.iter().zip(&m.sd))
                    .map(|(x, (y, s))| (*x, (y - s).max(0.0)))
                    .collect();
                let band: Vec<(f64, f64)> = upper
                    .iter()
                    .copied()
                    .chain(lower.iter().rev().copied())
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(band, color.mix(0.18))))
                    .map_err(|x| e(&x))?;
                chart
                    .draw_series(LineSeries::new(
                        m.fpr.iter().copied().zip(m.tpr.iter().copied()),
                        color.stroke_width(3),
                    ))
                    .map_err(|x| e(&x))?
                    .label(m.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                    });
            }
            draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
            Ok(())
        }};
    }
    both(
        stem,
        (760, 700),
        |root: &DrawingArea<BitMapBackend, Shift>| draw_roc!(root),
        |root: &DrawingArea<SVGBackend, Shift>| draw_roc!(root),
    )
}

/// One epoch: (train loss, train accuracy, validation loss, validation accuracy).
pub type EpochPoint = (f64, f64, Option<f64>, Option<f64>);

/// One training history.
pub type History = Vec<EpochPoint>;

/// Loss and accuracy per epoch (mean over runs), training and validation.
pub fn learning_figure(
    stem: &Path,
    title: &str,
    histories: &[History],
) -> Result<Vec<PathBuf>, ResultsError> {
    let epochs = histories.iter().map(Vec::len).max().unwrap_or(0);
    // Epochs on an integer axis, so ticks fall on whole epochs.
    let mean = |f: &dyn Fn(&EpochPoint) -> Option<f64>| -> Vec<(i32, f64)> {
        (0..epochs)
            .filter_map(|i| {
                let v: Vec<f64> = histories
                    .iter()
                    .filter_map(|h| h.get(i).and_then(f))
                    .collect();
                (!v.is_empty()).then(|| ((i + 1) as i32, v.iter().sum::<f64>() / v.len() as f64))
            })
            .collect()
    };
    let series = [
        ("training loss", mean(&|r| Some(r.0)), 0),
        ("validation loss", mean(&|r| r.2), 0),
        ("training accuracy", mean(&|r| Some(r.1)), 1),
        ("validation accuracy", mean(&|r| r.3), 1),
    ];
    let max_loss = series
        .iter()
        .filter(|s| s.2 == 0)
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold(0.1f64, f64::max);
    macro_rules! draw_learning {
        ($root:expr) => {{
            let root = $root;
            let e = |x: &dyn std::fmt::Display| x.to_string();
            root.fill(&WHITE).map_err(|x| e(&x))?;
            let titled = root.titled(title, (FONT, 22)).map_err(|x| e(&x))?;
            let panels = titled.split_evenly((1, 2));
            for (panel_index, panel) in panels.iter().enumerate() {
                let (y_range, y_desc) = if panel_index == 0 {
                    (0.0..max_loss * 1.05, "binary cross-entropy")
                } else {
                    (0.0..1.0, "accuracy")
                };
                let mut chart = ChartBuilder::on(panel)
                    .margin(12)
                    .x_label_area_size(44)
                    .y_label_area_size(56)
                    .build_cartesian_2d(1i32..(epochs.max(2) as i32), y_range)
                    .map_err(|x| e(&x))?;
                chart
                    .configure_mesh()
                    .x_labels(epochs.clamp(2, 10))
                    .x_desc("epoch")
                    .y_desc(y_desc)
                    .label_style((FONT, 14))
                    .axis_desc_style((FONT, 16))
                    .draw()
                    .map_err(|x| e(&x))?;
                for (i, (name, points, which)) in series.iter().enumerate() {
                    if *which != panel_index || points.is_empty() {
                        continue;
                    }
                    let color = palette(i % 2);
                    chart
                        .draw_series(LineSeries::new(
                            points.iter().copied(),
                            color.stroke_width(2),
                        ))
                        .map_err(|x| e(&x))?
                        .label(*name)
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                        });
                }
                let position = if panel_index == 0 {
                    SeriesLabelPosition::UpperRight
                } else {
                    SeriesLabelPosition::LowerRight
                };
                draw_legend(&mut chart, position)?;
            }
            Ok(())
        }};
    }
    both(
        stem,
        (1100, 480),
        |root: &DrawingArea<BitMapBackend, Shift>| draw_learning!(root),
        |root: &DrawingArea<SVGBackend, Shift>| draw_learning!(root),
    )
}

/// Confusion matrix (rows: true label, columns: predicted) with counts and row percentages.
pub fn confusion_figure(
    stem: &Path,
    title: &str,
    tn: usize,
    fp: usize,
    fn_: usize,
    tp: usize,
) -> Result<Vec<PathBuf>, ResultsError> {
    let cells = [[tn, fp], [fn_, tp]];
    macro_rules! draw_confusion {
        ($root:expr) => {{
            let root = $root;
            let e = |x: &dyn std::fmt::Display| x.to_string();
            root.fill(&WHITE).map_err(|x| e(&x))?;
            let titled = root.titled(title, (FONT, 20)).map_err(|x| e(&x))?;
            let (w, h) = titled.dim_in_pixel();
            let (left, top, cell) = (
                150i32,
                50i32,
                ((w as i32 - 190).min(h as i32 - 110) / 2).max(40),
            );
            let names = ["0 normal", "1 cluster"];
            for r in 0..2 {
                let total = (cells[r][0] + cells[r][1]).max(1);
                for c in 0..2 {
                    let share = cells[r][c] as f64 / total as f64;
                    let x0 = left + c as i32 * cell;
                    let y0 = top + r as i32 * cell;
                    let shade = RGBColor(
                        255 - (200.0 * share) as u8,
                        255 - (120.0 * share) as u8,
                        255,
                    );
                    titled
                        .draw(&Rectangle::new(
                            [(x0, y0), (x0 + cell, y0 + cell)],
                            shade.filled(),
                        ))
                        .map_err(|x| e(&x))?;
                    titled
                        .draw(&Rectangle::new(
                            [(x0, y0), (x0 + cell, y0 + cell)],
                            BLACK.stroke_width(1),
                        ))
                        .map_err(|x| e(&x))?;
                    let text = format!("{} ({:.0}%)", cells[r][c], 100.0 * share);
                    titled
                        .draw(&Text::new(
                            text,
                            (x0 + cell / 2 - 45, y0 + cell / 2 - 10),
                            (FONT, 20).into_font().color(&BLACK),
                        ))
                        .map_err(|x| e(&x))?;
                }
                titled
                    .draw(&Text::new(
                        format!("true {}", names[r]),
                        (10, top + r as i32 * cell + cell / 2 - 8),
                        (FONT, 16),
                    ))
                    .map_err(|x| e(&x))?;
            }
            for (c, name) in names.iter().enumerate() {
                titled
                    .draw(&Text::new(
                        format!("predicted {name}"),
                        (left + c as i32 * cell + 10, top - 28),
                        (FONT, 16),
                    ))
                    .map_err(|x| e(&x))?;
            }
            Ok(())
        }};
    }
    both(
        stem,
        (560, 420),
        |root: &DrawingArea<BitMapBackend, Shift>| draw_confusion!(root),
        |root: &DrawingArea<SVGBackend, Shift>| draw_confusion!(root),
    )
}

/// One image of a sample sheet.
pub struct SampleImage {
    pub pixels: Vec<f32>,
    pub size: usize,
    pub label: u8,
    pub score: f64,
}

/// A grid of test images, correct ones framed green, wrong ones red, each with label and score.
pub fn sample_sheet(
    stem: &Path,
    title: &str,
    images: &[SampleImage],
) -> Result<Vec<PathBuf>, ResultsError> {
    let cols = 8usize;
    let scale = 2i32;
    let tile = images.first().map_or(60, |i| i.size) as i32 * scale;
    let rows = images.len().div_ceil(cols).max(1);
    let width = (cols as i32 * (tile + 16) + 16) as u32;
    let height = (rows as i32 * (tile + 40) + 60) as u32;
    macro_rules! draw_sheet {
        ($root:expr) => {{
            let root = $root;
            let e = |x: &dyn std::fmt::Display| x.to_string();
            root.fill(&WHITE).map_err(|x| e(&x))?;
            let titled = root.titled(title, (FONT, 20)).map_err(|x| e(&x))?;
            for (k, img) in images.iter().enumerate() {
                let x0 = 16 + (k % cols) as i32 * (tile + 16);
                let y0 = 10 + (k / cols) as i32 * (tile + 40);
                let correct = (img.score >= 0.5) == (img.label == 1);
                let frame = if correct {
                    RGBColor(30, 150, 60)
                } else {
                    RGBColor(210, 30, 30)
                };
                titled
                    .draw(&Rectangle::new(
                        [(x0 - 3, y0 - 3), (x0 + tile + 3, y0 + tile + 3)],
                        frame.filled(),
                    ))
                    .map_err(|x| e(&x))?;
                for y in 0..img.size {
                    for x in 0..img.size {
                        let v = img.pixels[y * img.size + x].clamp(0.0, 255.0) as u8;
                        let (px, py) = (x0 + x as i32 * scale, y0 + y as i32 * scale);
                        titled
                            .draw(&Rectangle::new(
                                [(px, py), (px + scale, py + scale)],
                                RGBColor(v, v, v).filled(),
                            ))
                            .map_err(|x| e(&x))?;
                    }
                }
                titled
                    .draw(&Text::new(
                        format!("y={} p={:.2}", img.label, img.score),
                        (x0, y0 + tile + 8),
                        (FONT, 14),
                    ))
                    .map_err(|x| e(&x))?;
            }
            Ok(())
        }};
    }
    // PNG only: a pixel grid as SVG is thousands of rectangles and megabytes of text.
    fonts();
    let png = with_extension(stem, "png");
    if let Some(dir) = png.parent() {
        std::fs::create_dir_all(dir).map_err(|cause| ResultsError::Write {
            path: dir.to_path_buf(),
            cause,
        })?;
    }
    let err = |e: String| ResultsError::Write {
        path: png.clone(),
        cause: std::io::Error::other(e),
    };
    let root = BitMapBackend::new(&png, (width, height)).into_drawing_area();
    let draw =
        |root: &DrawingArea<BitMapBackend, Shift>| -> Result<(), String> { draw_sheet!(root) };
    draw(&root).map_err(err)?;
    root.present().map_err(|e| err(e.to_string()))?;
    drop(root);
    Ok(vec![png])
}
