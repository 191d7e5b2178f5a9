//! `microcal compare`: DeLong's and McNemar's tests against an independent implementation
//! (tests/fixtures/compare.json from tools/gen_compare_fixture.py: NumPy and SciPy), then the
//! command on real runs: two jobs, two groups pooled over seeds, and refusals.

mod common;

use std::fs;

use common::*;
use microcal::metrics::paired::{delong, mcnemar_exact};

fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs().max(1e-12)
}

#[test]
fn delong_and_mcnemar_match_scipy_on_the_fixture() {
    let text = fs::read_to_string(repo().join("tests/fixtures/compare.json")).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for (i, case) in cases.iter().enumerate() {
        let floats = |key: &str| -> Vec<f64> {
            case[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let labels: Vec<u8> = floats("labels").iter().map(|&v| v as u8).collect();
        let d = delong(&labels, &floats("a"), &floats("b")).unwrap();
        let want = |key: &str| case[key].as_f64().unwrap();
        assert!(
            close(d.auc_a, want("auc_a"), 1e-12),
            "case {i}: auc_a {}",
            d.auc_a
        );
        assert!(close(d.auc_b, want("auc_b"), 1e-12), "case {i}");
        assert!(close(d.delta, want("delta"), 1e-9), "case {i}");
        assert!(
            close(d.z, want("z"), 1e-9),
            "case {i}: z {} vs {}",
            d.z,
            want("z")
        );
        assert!(
            close(d.p, want("p"), 1e-9),
            "case {i}: p {} vs {}",
            d.p,
            want("p")
        );
        let (only_a, only_b) = (want("only_a") as usize, want("only_b") as usize);
        let p = mcnemar_exact(only_a, only_b);
        assert!(
            close(p, want("p_mcnemar"), 1e-9),
            "case {i}: {p} vs {}",
            want("p_mcnemar")
        );
    }
}

/// The last line of `microcal compare` as key → value.
fn summary(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .last()
        .unwrap()
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn compare_two_jobs_and_two_groups_and_refuse_unpaired_ones() {
    let dir = tempfile::tempdir().unwrap();
    let table = quickstart_table(dir.path(), 5);
    let t = table.to_str().unwrap();
    let (header, rows) = read_csv(&table);
    let ids = column(&header, &rows, "job_id");
    assert_eq!(ids.len(), 4);
    let out = microcal(&["compare", "--results", t, ids[0], ids[1]]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = summary(&stdout(&out));
    for key in ["auc_a", "auc_b", "delta", "z", "p_delong", "p_mcnemar"] {
        assert!(s.contains_key(key), "{key}: {}", stdout(&out));
    }
    let aucs = column(&header, &rows, "auc");
    assert!(
        (s["auc_a"] - aucs[0].parse::<f64>().unwrap()).abs() < 1e-6,
        "the row's AUC"
    );
    assert!((s["delta"] - (s["auc_a"] - s["auc_b"])).abs() < 1e-6);
    assert!((0.0..=1.0).contains(&s["p_delong"]) && (0.0..=1.0).contains(&s["p_mcnemar"]));

    // A job against itself: no difference at all.
    let same = microcal(&["compare", "--results", t, ids[2], ids[2]]);
    let s = summary(&stdout(&same));
    assert_eq!((s["delta"], s["p_delong"], s["p_mcnemar"]), (0.0, 1.0, 1.0));

    // Groups: each family pooled over its two seeds.
    let groups = microcal(&[
        "compare",
        "--results",
        t,
        "model.wavelet.family=db5",
        "model.wavelet.family=haar",
    ]);
    assert!(groups.status.success(), "{}", stderr(&groups));
    assert!(
        stdout(&groups).contains("(2 jobs, each image's mean score)"),
        "{}",
        stdout(&groups)
    );

    // Jobs on other images are refused, saying why.
    let other = dir.path().join("other.toml");
    fs::write(
        &other,
        fs::read_to_string(repo().join("experiments/quickstart.toml"))
            .unwrap()
            .replace(
                "synthetic_test_per_class = 100",
                "synthetic_test_per_class = 100\nsynthetic_seed = 7",
            )
            .replace("name = \"quickstart\"", "name = \"other-data\""),
    )
    .unwrap();
    let run = microcal_run(&[
        other.to_str().unwrap(),
        "--results",
        t,
        "--set",
        "train.epochs=2",
        "--set",
        "train.seeds=[0]",
        "--set",
        "model.wavelet.family=haar",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let refused = microcal(&["compare", "--results", t, ids[0], "experiment=other-data"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("not scored on the same labelled images"),
        "{}",
        stderr(&refused)
    );
    let unknown = microcal(&["compare", "--results", t, ids[0], "0123456789abcdef"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("no row"), "{}", stderr(&unknown));
}

#[test]
#[ignore = "needs the real data in ../shared/data/microcal; .ci/run runs it whenever the data is there"]
fn on_real_data_the_reference_cnn_beats_wavelet_svm_by_delong() {
    real_data();
    let out = microcal(&[
        "compare",
        "experiment=seed-cnn,seed=0",
        "experiment=seed-wavelet-ml,model.classifier=svm,seed=0",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = summary(&stdout(&out));
    assert!(
        (s["auc_a"] - 0.989177).abs() < 1e-6 && (s["auc_b"] - 0.940167).abs() < 1e-6,
        "{s:?}"
    );
    // Worked by hand when the comparison was asked for: z = 3.15, p = 0.0016.
    assert!((s["z"] - 3.15).abs() < 0.01, "{s:?}");
    assert!((s["p_delong"] - 0.0016).abs() < 0.0001, "{s:?}");
}

/// `report --against-best` gives each group the p that `compare` gives for it against the
/// best group, each pooled over its seeds.
#[test]
fn against_best_is_compare_of_each_group_with_the_best() {
    let out = microcal(&[
        "report",
        "--against-best",
        "--format",
        "csv",
        "--jobs-of",
        "experiments/seed_wavelet_ml.toml",
        "--by",
        "model.kind,model.classifier",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let p_col = header.iter().position(|h| *h == "p_vs_best").unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0][1], "random-forest");
    assert_eq!(rows[0][p_col], "best");
    let svm = rows.iter().find(|r| r[1] == "svm").unwrap();
    let p: f64 = svm[p_col].parse().unwrap();
    let compare = microcal(&[
        "compare",
        "experiment=seed-wavelet-ml,model.classifier=svm",
        "experiment=seed-wavelet-ml,model.classifier=random-forest",
    ]);
    let last = stdout(&compare).lines().last().unwrap().to_string();
    let p_delong: f64 = last
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("p_delong="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((p - p_delong).abs() < 1e-9, "{p} vs {last}");
    assert!(p < 0.05, "the SVM is worse than the forest: {p}");
    let md = stdout(&microcal(&[
        "report",
        "--against-best",
        "--jobs-of",
        "experiments/seed_wavelet_ml.toml",
        "--by",
        "model.kind,model.classifier",
    ]));
    assert!(
        md.lines().next().unwrap().ends_with("| p vs best |") && md.contains("| 0.012 |"),
        "{md}"
    );
}
