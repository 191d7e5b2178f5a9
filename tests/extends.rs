//! `extends`: experiment files built on base files resolve to the same jobs as their flat
//! equivalents; cycles, missing bases and errors inside a base are refused naming the files.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use microcal::config::{parse_override, Experiment};

fn ids(file: &Path, set: &[&str]) -> Vec<String> {
    let set: Vec<_> = set.iter().map(|s| parse_override(s).unwrap()).collect();
    Experiment::load(file, &set)
        .unwrap_or_else(|e| panic!("{e}"))
        .jobs(|_| Ok::<_, anyhow::Error>("the same data".to_string()))
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect()
}

const DATA_BASE: &str = r#"
[data]
source = "synthetic"
synthetic_train_per_class = 40
synthetic_test_per_class = 20

[output]
results = "../tables/results.csv"   # relative to this base

[train]
epochs = 3
seeds = [0, 1]
"#;

const MODEL_BASE: &str = r#"
extends = "data.toml"

[model]
kind = "wavelet-mlp"

[model.wavelet]
family = "db2"
level = 3
keep_levels = [1, 2, 3]

[model.mlp]
hidden = [32, 16]
"#;

const EXPERIMENT: &str = r#"
extends = ["base/model.toml"]
name = "composed"

[model.wavelet]
level = 2             # a scalar replaces the base's

[model.mlp]
hidden = [8]          # an array replaces the base's

[grid]
"model.wavelet.family" = ["haar", "db2"]
"#;

const FLAT: &str = r#"
name = "composed"

[data]
source = "synthetic"
synthetic_train_per_class = 40
synthetic_test_per_class = 20

[output]
results = "tables/results.csv"

[model]
kind = "wavelet-mlp"

[model.wavelet]
family = "db2"
level = 2
keep_levels = [1, 2, 3]

[model.mlp]
hidden = [8]

[train]
epochs = 3
seeds = [0, 1]

[grid]
"model.wavelet.family" = ["haar", "db2"]
"#;

fn write_tree(dir: &Path) {
    fs::create_dir_all(dir.join("base")).unwrap();
    fs::write(dir.join("base/data.toml"), DATA_BASE).unwrap();
    fs::write(dir.join("base/model.toml"), MODEL_BASE).unwrap();
    fs::write(dir.join("composed.toml"), EXPERIMENT).unwrap();
    fs::write(dir.join("flat.toml"), FLAT).unwrap();
}

#[test]
fn a_composed_file_and_its_flat_equivalent_give_the_same_jobs() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path());
    let composed = ids(&dir.path().join("composed.toml"), &[]);
    assert_eq!(composed.len(), 4, "2 families x 2 seeds");
    assert_eq!(composed, ids(&dir.path().join("flat.toml"), &[]));

    let exp = Experiment::load(&dir.path().join("composed.toml"), &[]).unwrap();
    let (config, _) = &exp.configs().unwrap()[0];
    assert_eq!(config.model.wavelet.as_ref().unwrap().level, 2);
    assert_eq!(
        config.model.wavelet.as_ref().unwrap().keep_levels,
        Some(vec![1, 2]),
        "tables merge deeply: the base's keep_levels stay (level 3 dropped at level 2)"
    );
    assert_eq!(config.model.mlp.as_ref().unwrap().hidden, vec![8]);
    assert_eq!(
        exp.results_path,
        dir.path().join("tables/results.csv"),
        "a base's paths are relative to the base"
    );
}

#[test]
fn set_applies_after_the_bases_and_show_prints_the_flat_file() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path());
    let composed = dir.path().join("composed.toml");
    let set = ["train.epochs=2", "model.wavelet.family=sym4"];
    let with_set = ids(&composed, &set);
    assert_eq!(with_set.len(), 2, "the overridden grid axis is gone");
    assert_ne!(with_set, ids(&composed, &[])[..2].to_vec());

    let show = microcal_run(&[
        "--show",
        composed.to_str().unwrap(),
        "--set",
        set[0],
        "--set",
        set[1],
    ]);
    assert!(show.status.success(), "{}", stderr(&show));
    let text = stdout(&show);
    assert!(!text.contains("extends"), "{text}");
    assert!(text.contains("family = \"sym4\""), "{text}");
    // The printed file, saved where the experiment is, plans exactly the same jobs.
    let shown = dir.path().join("shown.toml");
    fs::write(&shown, &text).unwrap();
    assert_eq!(ids(&shown, &[]), with_set);
}

#[test]
fn later_bases_win_and_chains_resolve() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path());
    fs::write(
        dir.path().join("base/small.toml"),
        "[model.mlp]\nhidden = [4]\n[train]\nepochs = 1\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("two.toml"),
        "extends = [\"base/model.toml\", \"base/small.toml\"]\nname = \"two\"\n",
    )
    .unwrap();
    let exp = Experiment::load(&dir.path().join("two.toml"), &[]).unwrap();
    let (config, _) = &exp.configs().unwrap()[0];
    assert_eq!(config.model.mlp.as_ref().unwrap().hidden, vec![4]);
    assert_eq!(config.train.epochs, 1);
    assert_eq!(config.model.wavelet.as_ref().unwrap().family, "db2");
    assert_eq!(
        config.data.synthetic_train_per_class, 40,
        "from the chain's end"
    );
}

fn refused(file: &Path) -> String {
    let out = microcal_run(&["--plan", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    stderr(&out)
}

#[test]
fn cycles_and_missing_bases_are_refused_naming_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.toml"),
        dir.path().join("b.toml"),
        dir.path().join("c.toml"),
    );
    fs::write(&a, "extends = \"b.toml\"\nname = \"a\"\n").unwrap();
    fs::write(&b, "extends = \"c.toml\"\n").unwrap();
    fs::write(&c, "extends = \"a.toml\"\n").unwrap();
    let err = refused(&a);
    assert!(err.contains("cycle"), "{err}");
    for file in [&a, &b, &c] {
        assert!(err.contains(&file.display().to_string()), "{err}");
    }

    fs::write(&c, "extends = \"gone/base.toml\"\n").unwrap();
    let err = refused(&a);
    for name in ["a.toml", "b.toml", "c.toml", "gone/base.toml"] {
        assert!(err.contains(name), "{name} in {err}");
    }

    fs::write(&c, "extends = 3\n").unwrap();
    let err = refused(&a);
    assert!(err.contains("c.toml") && err.contains("`extends`"), "{err}");
}

#[test]
fn an_error_inside_a_base_names_the_base_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path());
    fs::write(
        dir.path().join("base/data.toml"),
        DATA_BASE.replace("synthetic_test_per_class", "synthetic_tset_per_class"),
    )
    .unwrap();
    let err = refused(&dir.path().join("composed.toml"));
    assert!(err.contains("base/data.toml"), "{err}");
    assert!(err.contains("line 5, column 1"), "{err}");
    assert!(err.contains("synthetic_tset_per_class"), "{err}");

    fs::write(dir.path().join("base/data.toml"), "[data\n").unwrap();
    let err = refused(&dir.path().join("composed.toml"));
    assert!(
        err.contains("base/data.toml") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn a_base_is_not_an_experiment() {
    let err = refused(&repo().join("experiments/base/real-data.toml"));
    assert!(err.contains("`name`") && err.contains("base"), "{err}");
}

#[test]
fn every_committed_experiment_but_the_quickstart_extends_a_shared_base() {
    let mut files: Vec<_> = fs::read_dir(repo().join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let standalone = file.ends_with("quickstart.toml");
        assert_eq!(
            text.contains("\nextends = "),
            !standalone,
            "{}",
            file.display()
        );
        assert!(
            !text.contains("root = "),
            "{}: data root in a base",
            file.display()
        );
    }
}
