//! Every committed experiment file parses, validates and plans; grid variants resolve.

mod common;

use common::*;
use microcal::config::{ClassifierKind, DataConfig, Experiment, ModelKind};

fn identity(data: &DataConfig) -> anyhow::Result<String> {
    Ok(microcal::data::fingerprint(data)?)
}

#[test]
#[ignore = "needs the real data in ../shared/data/microcal; .ci/run runs it whenever the data is there"]
fn on_real_data_every_committed_experiment_file_plans() {
    real_data();
    let mut files: Vec<_> = std::fs::read_dir(repo().join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        let exp = Experiment::load(&file, &[]).unwrap_or_else(|e| panic!("{e}"));
        let jobs = microcal::search::planned_jobs(&exp, identity).unwrap();
        assert!(!jobs.is_empty(), "{}", file.display());
        let plan = microcal_run(&["--plan", file.to_str().unwrap()]);
        assert!(plan.status.success(), "{}", stderr(&plan));
        assert_eq!(
            stdout(&plan).lines().count(),
            2 + jobs.len(),
            "a line per job, a header and a total"
        );
    }
}

#[test]
fn the_quickstart_plans_without_the_real_data() {
    let exp = Experiment::load(&repo().join("experiments/quickstart.toml"), &[]).unwrap();
    let jobs = exp.jobs(identity).unwrap();
    let plan = microcal_run(&["--plan", "experiments/quickstart.toml"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert_eq!(stdout(&plan).lines().count(), 2 + jobs.len());
}

#[test]
fn the_reference_comparison_has_seven_models() {
    let exp = Experiment::load(&repo().join("experiments/seed_wavelet_ml.toml"), &[]).unwrap();
    // The ids are not what this test is about: no need for the data's fingerprint.
    let jobs = exp
        .jobs(|_| Ok::<_, anyhow::Error>("any data".to_string()))
        .unwrap();
    let configs = exp.configs().unwrap();
    let seeds = configs[0].0.train.seeds.len();
    assert_eq!(configs.len(), 7);
    let mlp = configs
        .iter()
        .filter(|(c, _)| c.model.kind == ModelKind::WaveletMlp)
        .count();
    assert_eq!(mlp, 1);
    let classifiers: Vec<ClassifierKind> = configs
        .iter()
        .filter_map(|(c, _)| c.model.classifier)
        .collect();
    assert_eq!(classifiers, ClassifierKind::ALL.to_vec());
    for (c, _) in &configs {
        let w = c.model.wavelet.as_ref().unwrap();
        assert_eq!(
            (w.family.as_str(), w.level, w.keep_levels.clone()),
            ("db5", 4, Some(vec![2, 3, 4]))
        );
    }
    // Defaults are written into the resolved parameters (and so into the job id).
    let svm = configs
        .iter()
        .find(|(c, _)| c.model.classifier == Some(ClassifierKind::Svm))
        .unwrap();
    let params = svm.0.model.params.as_ref().unwrap();
    assert_eq!(params["kernel"].as_str(), Some("rbf"));
    assert_eq!(params["c"].as_float(), Some(1.0));
    assert_eq!(jobs.len(), 7 * seeds);
}

const BASE: &str = "name = \"x\"\n[data]\nsource = \"synthetic\"\n";

fn load_err(text: &str) -> String {
    match Experiment::from_str(text, std::path::Path::new("t.toml"), &[]) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn classifier_settings_are_validated_per_classifier() {
    let err = load_err(&format!("{BASE}[model]\nkind = \"wavelet-classical\"\n"));
    assert!(
        err.contains("model.classifier") && err.contains("random-forest, svm"),
        "{err}"
    );

    let err = load_err(&format!("{BASE}[model]\nkind = \"wavelet-classical\"\nclassifier = \"svm\"\n[model.params]\nn_trees = 5\n"));
    assert!(
        err.contains("model.params") && err.contains("n_trees") && err.contains("kernel"),
        "{err}"
    );

    let err = load_err(&format!("{BASE}[model]\nkind = \"wavelet-classical\"\nclassifier = \"knn\"\n[model.params]\nk = 0\n"));
    assert!(err.contains("`k` must be at least 1"), "{err}");

    let err = load_err(&format!(
        "{BASE}[model]\nkind = \"wavelet-mlp\"\nclassifier = \"svm\"\n"
    ));
    assert!(
        err.contains("model.classifier") && err.contains("not used by kind = \"wavelet-mlp\""),
        "{err}"
    );

    let err = load_err(&format!(
        "{BASE}[model]\nkind = \"wavelet-classical\"\nclassifier = \"forest\"\n"
    ));
    assert!(
        err.contains("unknown variant `forest`") && err.contains("random-forest"),
        "{err}"
    );
}

#[test]
fn every_classifier_runs_end_to_end_on_synthetic_data() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("classical.toml");
    std::fs::write(
        &file,
        format!(
            "{BASE}[model]\nkind = \"wavelet-classical\"\n\
             [model.wavelet]\nfamily = \"haar\"\nlevel = 3\nkeep_levels = [1, 2, 3]\nfeatures = \"subband-stats\"\n[model.params]\n\
             [grid]\n\"model.classifier\" = [\"random-forest\", \"svm\", \"logistic\", \"naive-bayes\", \"knn\", \"decision-tree\"]\n"
        ),
    )
    .unwrap();
    let table = dir.path().join("t.csv");
    let out = microcal_run(&[file.to_str().unwrap(), "--results", table.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (header, rows) = read_csv(&table);
    assert_eq!(rows.len(), 6);
    assert!(column(&header, &rows, "status").iter().all(|s| *s == "ok"));
    let aucs: Vec<f64> = column(&header, &rows, "auc")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(aucs.iter().all(|a| *a > 0.6), "{aucs:?}");
    assert!(
        header.iter().any(|h| h == "model.params.n_trees"),
        "{header:?}"
    );
}
