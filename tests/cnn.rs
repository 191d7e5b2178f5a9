//! CNN jobs end to end on small synthetic images: declared layers, validation and early
//! stopping, augmentation, k-fold with Test scoring, saved weights and `microcal predict`.

mod common;

use common::*;
use std::fs;

const SMALL: &str = r#"
name = "small-cnn"
[data]
source = "synthetic"
image_size = 16
synthetic_train_per_class = 40
synthetic_test_per_class = 10
[model]
kind = "cnn"
layers = [{ conv = 8 }, "batchnorm", "relu", "maxpool", { conv = 8 }, "relu", "maxpool",
          "flatten", { dropout = 0.2 }, { dense = 16 }, "relu", { dense = 1 }]
[train]
epochs = 4
batch_size = 16
lr = 3e-3
validation_fraction = 0.2
early_stopping = 2
augment = ["hflip", "rot90", "shift:2"]
"#;

#[test]
fn a_cnn_job_trains_saves_and_predicts_like_its_own_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small.toml");
    fs::write(&file, SMALL).unwrap();
    let table = dir.path().join("t.csv");
    let out = microcal_run(&[file.to_str().unwrap(), "--results", table.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (header, rows) = read_csv(&table);
    assert_eq!(column(&header, &rows, "status"), vec!["ok"]);
    assert_eq!(
        column(&header, &rows, "n_train"),
        vec!["64"],
        "20% of 80 held out for validation"
    );
    let id = column(&header, &rows, "job_id")[0];
    let run_dir = dir.path().join("runs").join(id);
    let history = fs::read_to_string(run_dir.join("history.csv")).unwrap();
    let second = history.lines().nth(1).unwrap();
    assert_eq!(
        second.split(',').filter(|v| !v.is_empty()).count(),
        6,
        "validation columns filled: {second}"
    );
    assert!(run_dir.join("model.safetensors").is_file());

    // Write the synthetic test images as PGM files and score them with `microcal predict`.
    let dataset = microcal::data::load(
        &toml::from_str::<toml::Table>(SMALL).unwrap()["data"]
            .clone()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    let images = dir.path().join("images");
    for s in dataset
        .samples
        .iter()
        .filter(|s| s.origin == microcal::data::Origin::Test)
    {
        let name = s.id.replace('/', "_") + ".pgm";
        write_pgm(&images.join(&name), 16, 16, |y, x| {
            s.pixels[y * 16 + x] as u8
        });
    }
    let predicted = predict_matches_run(&run_dir, &images);
    assert_eq!(predicted.len(), 20);
    for (score, label) in predicted {
        assert_eq!(label, if score >= 0.5 { "1" } else { "0" });
    }
}

#[test]
fn kfold_cnn_jobs_also_score_the_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cv.toml");
    let text = SMALL
        .replace(
            "image_size = 16",
            "image_size = 16\nsplit = \"kfold\"\nfolds = 2",
        )
        .replace("validation_fraction = 0.2\nearly_stopping = 2\n", "")
        .replace("epochs = 4", "epochs = 1");
    fs::write(&file, text).unwrap();
    let table = dir.path().join("t.csv");
    let out = microcal_run(&[file.to_str().unwrap(), "--results", table.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (header, rows) = read_csv(&table);
    assert_eq!(column(&header, &rows, "fold"), vec!["0", "1"]);
    assert_eq!(
        column(&header, &rows, "n"),
        vec!["40", "40"],
        "each fold holds out half of Train"
    );
    assert_eq!(column(&header, &rows, "test_n"), vec!["20", "20"]);
    assert!(column(&header, &rows, "test_auc")
        .iter()
        .all(|v| v.parse::<f64>().is_ok()));
}

#[test]
fn impossible_networks_are_rejected_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            SMALL.replace(
                "\"flatten\",",
                "\"maxpool\", \"maxpool\", \"maxpool\", \"flatten\",",
            ),
            "cannot pool",
        ),
        (
            SMALL.replace("{ dense = 1 }]", "{ dense = 2 }]"),
            "dense = 1",
        ),
        (SMALL.replace("\"hflip\"", "\"zoom\""), "train.augment"),
        (
            SMALL.replace(
                "{ conv = 8 }, \"batchnorm\"",
                "{ conv = 8, stride = 40 }, \"batchnorm\"",
            ),
            "`stride` must be at most 31",
        ),
        (
            format!("{SMALL}\n[model.wavelet]\nfamily = \"db2\"\n")
                .replace("[train]", "[training]"),
            "unknown field",
        ),
    ];
    for (text, expected) in cases {
        let file = dir.path().join("bad.toml");
        fs::write(&file, text).unwrap();
        let out = microcal_run(&["--plan", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(
            err.contains(expected) && err.contains("bad.toml"),
            "expected `{expected}` in: {err}"
        );
    }
}
