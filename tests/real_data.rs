//! Checks on the real dataset (ignored tests, named `on_real_data_*`, that `.ci/run` runs
//! whenever ../shared has the data, and skips, saying so, where it has not) and the
//! synthetic stand-in.

mod common;

use common::*;
use microcal::config::{parse_override, DataConfig, Experiment};
use microcal::data::{self, Origin};
use microcal::metrics::roc_auc;
use microcal::runner::{run_experiment, DataCache, RunOptions};
use serde_json::Value;

fn mean_intensity_auc(dataset: &data::Dataset, origin: Origin) -> f64 {
    let idx = dataset.indices_of(origin);
    let labels = dataset.labels(&idx);
    let means: Vec<f64> = idx
        .iter()
        .map(|&i| {
            dataset.samples[i]
                .pixels
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>()
                / 3600.0
        })
        .collect();
    roc_auc(&labels, &means)
}

fn default_data(source: &str) -> DataConfig {
    toml::from_str(&format!("source = \"{source}\"")).unwrap()
}

#[test]
fn synthetic_data_is_not_separable_by_mean_intensity() {
    let dataset = data::load(&default_data("synthetic")).unwrap();
    assert_eq!(dataset.samples.len(), 800);
    for origin in [Origin::Train, Origin::Test] {
        let auc = mean_intensity_auc(&dataset, origin);
        assert!(
            (0.35..=0.65).contains(&auc),
            "{origin:?}: mean intensity AUC {auc}"
        );
    }
}

#[test]
#[ignore = "needs the real data in ../shared/data/microcal; .ci/run runs it whenever the data is there"]
fn on_real_data_the_dataset_loads_with_its_known_counts() {
    let root = real_data();
    let mut config = default_data("folder");
    config.root = Some(root.to_string_lossy().into_owned());
    let dataset = data::load(&config).unwrap();
    let count = |o, l| {
        dataset
            .samples
            .iter()
            .filter(|s| s.origin == o && s.label == l)
            .count()
    };
    assert_eq!(
        [
            count(Origin::Train, 0),
            count(Origin::Train, 1),
            count(Origin::Test, 0),
            count(Origin::Test, 1)
        ],
        [330, 306, 84, 77]
    );
    let groups: std::collections::BTreeSet<&str> =
        dataset.samples.iter().map(|s| s.group.as_str()).collect();
    assert_eq!(groups.len(), 142, "mammogram ids from the file names");
    let auc = mean_intensity_auc(&dataset, Origin::Test);
    assert!((auc - 0.86).abs() < 0.02, "the brightness shortcut: {auc}");
}

/// `microcal wavelet --format json` against PyWavelets checksums of real images.
#[test]
#[ignore = "needs the real data in ../shared/data/microcal; .ci/run runs it whenever the data is there"]
fn on_real_data_wavelet_cli_json_matches_pywavelets() {
    let root = real_data();
    let path = repo().join("tests/fixtures/wavedec2_real_checksums.json");
    let fixture: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(fixture.len() >= 16);
    for entry in &fixture {
        let image = root.join(entry["path"].as_str().unwrap());
        let out = microcal(&[
            "wavelet",
            "--family",
            "db5",
            "--level",
            "4",
            "--format",
            "json",
            image.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["family"], "db5");
        let ours = json["coeffs"].as_array().unwrap();
        let theirs = entry["arrays"].as_array().unwrap();
        assert_eq!(ours.len(), 13);
        for (a, b) in ours.iter().zip(theirs) {
            assert_eq!(a["name"], b["name"]);
            assert_eq!(a["shape"], b["shape"]);
            let data: Vec<f64> = serde_json::from_value(a["data"].clone()).unwrap();
            let sum: f64 = data.iter().sum();
            let sumsq: f64 = data.iter().map(|v| v * v).sum();
            let (want_sum, scale) = (b["sum"].as_f64().unwrap(), b["sum_abs"].as_f64().unwrap());
            assert!(
                (sum - want_sum).abs() <= 1e-9 * scale,
                "{image:?} {}: sum",
                a["name"]
            );
            let want_sq = b["sumsq"].as_f64().unwrap();
            assert!(
                (sumsq - want_sq).abs() <= 1e-9 * want_sq,
                "{image:?} {}: sumsq",
                a["name"]
            );
        }
    }
}

/// The acceptance number: db5/level 4 sub-band statistics + the MLP on the given
/// split reach a mean test ROC AUC of at least 0.96 over three seeds.
#[test]
#[ignore = "needs the real data in ../shared/data/microcal; .ci/run runs it whenever the data is there"]
fn on_real_data_subband_stats_mlp_reaches_auc_096() {
    real_data();
    let dir = tempfile::tempdir().unwrap();
    let overrides = [
        "model.wavelet.family=db5",
        "model.wavelet.level=4",
        "model.wavelet.features=subband-stats",
    ]
    .map(|s| parse_override(s).unwrap());
    let exp = Experiment::load(
        &repo().join("experiments/wavelet_db_sweep.toml"),
        &overrides,
    )
    .unwrap();
    let options = RunOptions {
        results: Some(dir.path().join("t.csv")),
        ..Default::default()
    };
    let summary = run_experiment(&exp, &options, &mut DataCache::default()).unwrap();
    assert_eq!((summary.ran, summary.failed), (3, 0));
    let (header, rows) = read_csv(&dir.path().join("t.csv"));
    let aucs: Vec<f64> = column(&header, &rows, "auc")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    let mean = aucs.iter().sum::<f64>() / aucs.len() as f64;
    assert!(mean >= 0.96, "mean test AUC {mean} over seeds: {aucs:?}");
}

/// Random forest on sub-band statistics (scikit-learn: test AUC 0.987) and naive Bayes on
/// raw coefficients (scikit-learn: 0.84) on the given split.
#[test]
#[ignore = "needs the real data in ../shared/data/microcal; .ci/run runs it whenever the data is there"]
fn on_real_data_classical_classifiers_reach_scikit_learn_range() {
    let root = real_data();
    let dir = tempfile::tempdir().unwrap();
    let run = |features: &str, classifier: &str| {
        let text = format!(
            "name = \"check\"\n[data]\nsource = \"folder\"\nroot = {root:?}\n[model]\nkind = \"wavelet-classical\"\n\
             classifier = \"{classifier}\"\n[model.wavelet]\nfamily = \"db5\"\nlevel = 4\nkeep_levels = [2, 3, 4]\n\
             features = \"{features}\"\n"
        );
        let file = dir.path().join(format!("{classifier}.toml"));
        std::fs::write(&file, text).unwrap();
        let exp = Experiment::load(&file, &[]).unwrap();
        let table = dir.path().join(format!("{classifier}.csv"));
        let options = RunOptions {
            results: Some(table.clone()),
            ..Default::default()
        };
        run_experiment(&exp, &options, &mut DataCache::default()).unwrap();
        let (header, rows) = read_csv(&table);
        column(&header, &rows, "auc")[0].parse::<f64>().unwrap()
    };
    let forest = run("subband-stats", "random-forest");
    assert!(
        forest >= 0.97,
        "random forest on sub-band statistics: AUC {forest}"
    );
    let bayes = run("coefficients", "naive-bayes");
    assert!(
        bayes >= 0.84 - 0.03,
        "naive Bayes on raw coefficients: AUC {bayes}"
    );
}

#[test]
#[ignore = "needs the real data in ../shared/data/microcal; .ci/run runs it whenever the data is there"]
fn on_real_data_data_check_finds_duplicates_and_shared_mammograms() {
    let root = real_data();
    let out = microcal(&["data", "check", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("exact duplicates: 14 pairs, 9 across Train/Test"),
        "{text}"
    );
    assert!(text.contains("groups in both Train and Test: 4"), "{text}");
    for group in ["0002s1", "0033f1", "0039n1", "0188b1"] {
        assert!(text.contains(group), "{group} missing");
    }
    let json = microcal(&["data", "check", "--format", "json", root.to_str().unwrap()]);
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["duplicate_pairs"], 14);
    assert_eq!(report["cross_split_pairs"], 9);
    assert_eq!(report["duplicates"].as_array().unwrap().len(), 14);
    assert_eq!(report["shared_groups"].as_array().unwrap().len(), 4);
    assert_eq!(report["formats"][0]["pixel"], "L8");

    let mut config = default_data("folder");
    config.root = Some(root.to_string_lossy().into_owned());
    config.dedupe = true;
    let deduped = data::load(&config).unwrap();
    assert_eq!(
        (deduped.samples.len(), deduped.dropped_duplicates),
        (797 - 14, 14)
    );
    let hashes: std::collections::HashSet<u64> =
        deduped.samples.iter().map(|s| s.content_hash).collect();
    assert_eq!(hashes.len(), deduped.samples.len(), "no duplicates left");
}

/// The intensity baseline: brightness alone ranks the test patches well (mean intensity:
/// 0.86); every row carries bootstrap intervals around its AUC and accuracy.
#[test]
#[ignore = "needs the real data in ../shared/data/microcal; .ci/run runs it whenever the data is there"]
fn on_real_data_baseline_is_a_real_floor_with_confidence_intervals() {
    real_data();
    let dir = tempfile::tempdir().unwrap();
    let exp = Experiment::load(&repo().join("experiments/baseline.toml"), &[]).unwrap();
    let options = RunOptions {
        results: Some(dir.path().join("t.csv")),
        ..Default::default()
    };
    run_experiment(&exp, &options, &mut DataCache::default()).unwrap();
    let (header, rows) = read_csv(&dir.path().join("t.csv"));
    let get = |c: &str| column(&header, &rows, c)[0].parse::<f64>().unwrap();
    let auc = get("auc");
    assert!((0.85..0.95).contains(&auc), "baseline AUC {auc}");
    assert!(get("auc_ci_low") < auc && auc < get("auc_ci_high"));
    assert!(get("accuracy_ci_low") < get("accuracy") && get("accuracy") < get("accuracy_ci_high"));
    assert!(get("auc_ci_high") - get("auc_ci_low") < 0.15);
}
