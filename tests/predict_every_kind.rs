//! `microcal predict` loads the model a job saved, of every kind (MLP, each classifier, the
//! baseline, CNNs with every layer kind and the wavelet front end, trained with the non-default
//! training options), and scores images exactly as the job scored them.

mod common;

use common::*;
use std::fs;

const SWEEP: &str = r#"
name = "predict-kinds"
[data]
source = "synthetic"
image_size = 16
synthetic_train_per_class = 30
synthetic_test_per_class = 6
[model]
kind = "wavelet-classical"
[train]
epochs = 3
batch_size = 16
optimizer = "adamw"
weight_decay = 1e-4
schedule = "cosine"
warmup_epochs = 1
class_weight = "balanced"
label_smoothing = 0.1
clip_norm = 5.0
[grid]
model = [
  { kind = "wavelet-mlp", mlp = { hidden = [8] }, wavelet = { family = "haar", level = 2 } },
  { classifier = "random-forest", params = { n_trees = 10 }, wavelet = { family = "haar", level = 2 } },
  { classifier = "svm", wavelet = { family = "haar", level = 2 } },
  { classifier = "logistic", wavelet = { family = "haar", level = 2 } },
  { classifier = "naive-bayes", wavelet = { family = "haar", level = 2 } },
  { classifier = "knn", params = { k = 3, weights = "distance" }, wavelet = { family = "haar", level = 2 } },
  { classifier = "decision-tree", wavelet = { family = "haar", level = 2 } },
  { kind = "baseline" },
  { kind = "cnn", layers = [
    { conv = 4, stride = 2 }, { batchnorm = 0.9, eps = 1e-5 }, "relu",
    { residual = [{ conv = 8 }, "batchnorm", "elu", { conv = 8, kernel = 1, padding = "valid" }] },
    { leaky_relu = 0.2 }, { maxpool = 3, stride = 1 }, "avgpool", { avgpool = 2, stride = 1 },
    "globalavgpool", "batchnorm", { dense = 4 }, "tanh", "sigmoid", { dense = 1 },
  ] },
  { kind = "cnn", layers = [
    { dwt = "haar", level = 1 }, { conv = 4, kernel = 2, padding = "valid" }, "gelu",
    "maxpool", "flatten", { dropout = 0.2 }, { dense = 1 },
  ] },
]
"#;

#[test]
fn every_saved_model_kind_predicts_what_its_job_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kinds.toml");
    fs::write(&file, SWEEP).unwrap();
    let table = dir.path().join("t.csv");
    let out = microcal_run(&[file.to_str().unwrap(), "--results", table.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (header, rows) = read_csv(&table);
    let ids = column(&header, &rows, "job_id");
    assert_eq!(ids.len(), 10, "one job per model");
    assert!(column(&header, &rows, "status").iter().all(|s| *s == "ok"));

    let data: microcal::config::DataConfig = toml::from_str::<toml::Table>(SWEEP).unwrap()["data"]
        .clone()
        .try_into()
        .unwrap();
    let dataset = microcal::data::load(&data).unwrap();
    let images = dir.path().join("images");
    for s in &dataset.samples {
        if s.origin == microcal::data::Origin::Test {
            let name = s.id.replace('/', "_") + ".pgm";
            write_pgm(&images.join(&name), 16, 16, |y, x| {
                s.pixels[y * 16 + x] as u8
            });
        }
    }
    for id in ids {
        let run_dir = dir.path().join("runs").join(id);
        let predicted = predict_matches_run(&run_dir, &images);
        assert_eq!(predicted.len(), 12, "{id}");
    }
}
