//! `train.threshold`: a fixed number or "youden" (chosen on the validation hold-out); the row
//! records the threshold its accuracy was computed at.

mod common;

use common::*;
use std::fs;

const BASE: &str = r#"
name = "threshold"
[data]
source = "synthetic"
image_size = 16
synthetic_train_per_class = 40
synthetic_test_per_class = 20
[model]
kind = "wavelet-classical"
classifier = "logistic"
[model.wavelet]
family = "haar"
level = 2
features = "subband-stats"
[train]
"#;

fn run(
    dir: &std::path::Path,
    train: &str,
) -> (Vec<String>, Vec<Vec<String>>, std::process::Output) {
    let file = dir.join("t.toml");
    fs::write(&file, format!("{BASE}{train}\n")).unwrap();
    let table = dir.join("t.csv");
    let out = microcal_run(&[file.to_str().unwrap(), "--results", table.to_str().unwrap()]);
    if !out.status.success() {
        return (Vec::new(), Vec::new(), out);
    }
    let (h, r) = read_csv(&table);
    (h, r, out)
}

#[test]
fn the_row_records_the_threshold_its_metrics_use() {
    let dir = tempfile::tempdir().unwrap();
    let (h, rows, out) = run(dir.path(), "threshold = 0.3");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(column(&h, &rows, "threshold"), vec!["0.300000"]);

    let dir = tempfile::tempdir().unwrap();
    let (h, rows, out) = run(
        dir.path(),
        "threshold = \"youden\"\nvalidation_fraction = 0.25",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let threshold: f64 = column(&h, &rows, "threshold")[0].parse().unwrap();
    assert!(threshold > 0.0 && threshold < 1.0, "{threshold}");
    // The recorded accuracy is the Test predictions' accuracy at that threshold.
    let id = column(&h, &rows, "job_id")[0];
    let predictions =
        fs::read_to_string(dir.path().join("runs").join(id).join("predictions.csv")).unwrap();
    let (mut right, mut n) = (0, 0);
    for line in predictions.lines().skip(1) {
        let parts: Vec<&str> = line.split(',').collect();
        let (label, score): (u8, f64) = (parts[1].parse().unwrap(), parts[2].parse().unwrap());
        right += usize::from((score >= threshold) == (label == 1));
        n += 1;
    }
    let accuracy: f64 = column(&h, &rows, "accuracy")[0].parse().unwrap();
    assert!((accuracy - right as f64 / n as f64).abs() < 1e-6);
    assert_eq!(
        column(&h, &rows, "n_train"),
        vec!["60"],
        "a quarter of 80 held out to choose it"
    );

    let dir = tempfile::tempdir().unwrap();
    let (_, _, out) = run(dir.path(), "threshold = \"youden\"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`train.threshold`"),
        "{}",
        stderr(&out)
    );
    let (_, _, out) = run(dir.path(), "threshold = 1.5");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`train.threshold`"),
        "{}",
        stderr(&out)
    );
}
