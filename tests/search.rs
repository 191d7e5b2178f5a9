//! `[search]` end to end on small synthetic images: a resumed search equals an uninterrupted
//! one, Test labels cannot change anything before the search ends, halving stops trials at
//! its documented rungs, and every search key error names the key.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// 6 trials in rounds of 3, 3 folds, halving over rungs of 1, 3 and 9 epochs.
fn search_file(data: &str) -> String {
    format!(
        r#"
name = "small-search"
{data}
[model]
kind = "wavelet-mlp"
[model.wavelet]
family = "haar"
level = 2
features = "subband-stats"
[train]
epochs = 9
batch_size = 16
[search]
trials = 6
batch = 3
seed = 4
[search.space]
"train.lr" = {{ log_uniform = [1e-3, 1e-1] }}
"model.mlp.hidden" = {{ choice = [[8], [16, 8]] }}
[search.halving]
min_epochs = 1
factor = 3
"#
    )
}

const SYNTHETIC: &str = "[data]\nsource = \"synthetic\"\nimage_size = 16\nsynthetic_train_per_class = 24\nsynthetic_test_per_class = 8\nsplit = \"kfold\"\nfolds = 3";

fn run_search(dir: &Path, text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let file = dir.join("search.toml");
    fs::write(&file, text).unwrap();
    let table = dir.join("t.csv");
    let out = microcal_run(&[file.to_str().unwrap(), "--results", table.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    read_csv(&table)
}

/// (role, trial, rung, fold, epochs, lr, hidden, auc, accuracy) of every row, sorted.
fn outcomes(header: &[String], rows: &[Vec<String>]) -> BTreeSet<Vec<String>> {
    let cols = [
        "search_role",
        "search_trial",
        "search_rung",
        "fold",
        "train.epochs",
        "train.lr",
        "model.mlp.hidden",
        "auc",
        "accuracy",
        "loss",
    ];
    let idx: Vec<usize> = cols
        .iter()
        .map(|c| {
            header
                .iter()
                .position(|h| h == c)
                .unwrap_or_else(|| panic!("{c}"))
        })
        .collect();
    rows.iter()
        .map(|r| idx.iter().map(|&i| r[i].clone()).collect())
        .collect()
}

#[test]
fn a_resumed_search_equals_an_uninterrupted_one_and_halves_at_its_rungs() {
    let whole = tempfile::tempdir().unwrap();
    let (header, rows) = run_search(whole.path(), &search_file(SYNTHETIC));

    // Halving: each round of 3 trials runs 3 at 1 epoch, 1 at 3, 1 at 9 (3 folds each),
    // then the best trial once on Test.
    let role = |r: &Vec<String>| r[header.iter().position(|h| h == "search_role").unwrap()].clone();
    let epochs =
        |r: &Vec<String>| r[header.iter().position(|h| h == "train.epochs").unwrap()].clone();
    let trials: Vec<&Vec<String>> = rows.iter().filter(|r| role(r) == "trial").collect();
    let count = |e: &str| trials.iter().filter(|r| epochs(r) == e).count();
    assert_eq!((count("1"), count("3"), count("9")), (18, 6, 6));
    let results: Vec<&Vec<String>> = rows.iter().filter(|r| role(r) == "result").collect();
    assert_eq!(results.len(), 1, "one row scored on Test");
    let split = header.iter().position(|h| h == "data.split").unwrap();
    assert_eq!(
        results[0][split], "given",
        "the result trains on all of Train"
    );

    // Interrupted after 10 rows: the rerun finds them, proposes the same trials, and ends
    // with the same table.
    let resumed = tempfile::tempdir().unwrap();
    let text: String = fs::read_to_string(whole.path().join("t.csv"))
        .unwrap()
        .lines()
        .take(11)
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(resumed.path().join("t.csv"), text).unwrap();
    let (h2, rows2) = run_search(resumed.path(), &search_file(SYNTHETIC));
    assert_eq!(outcomes(&header, &rows), outcomes(&h2, &rows2));
    let id = |h: &[String], rs: &[Vec<String>]| -> BTreeSet<String> {
        let i = h.iter().position(|c| c == "job_id").unwrap();
        rs.iter().map(|r| r[i].clone()).collect()
    };
    assert_eq!(id(&header, &rows), id(&h2, &rows2));

    // A finished search adds nothing.
    let again = microcal_run(&[
        resumed.path().join("search.toml").to_str().unwrap(),
        "--results",
        resumed.path().join("t.csv").to_str().unwrap(),
    ]);
    assert!(stdout(&again).contains(" 0 run,"), "{}", stdout(&again));
}

/// Writes the synthetic images of SYNTHETIC as a folder, Test labels swapped if `poison`.
fn write_folder(root: &Path, poison: bool) {
    let data: microcal::config::DataConfig = toml::from_str::<toml::Table>(SYNTHETIC).unwrap()
        ["data"]
        .clone()
        .try_into()
        .unwrap();
    for s in microcal::data::load(&data).unwrap().samples {
        let test = s.origin == microcal::data::Origin::Test;
        let label = if test && poison { 1 - s.label } else { s.label };
        let part = if test { "Test" } else { "Train" };
        let name = s.id.replace('/', "_") + ".pgm";
        write_pgm(
            &root.join(part).join(label.to_string()).join(name),
            16,
            16,
            |y, x| s.pixels[y * 16 + x] as u8,
        );
    }
}

#[test]
fn test_labels_cannot_change_anything_before_the_search_ends() {
    let mut trial_rows = Vec::new();
    for poison in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_folder(&dir.path().join("data"), poison);
        let data =
            "[data]\nsource = \"folder\"\nroot = \"data\"\nimage_size = 16\nsplit = \"given\"\n";
        let text = search_file(data).replace(
            "batch_size = 16",
            "batch_size = 16\nvalidation_fraction = 0.25",
        );
        let (header, rows) = run_search(dir.path(), &text);
        let role = header.iter().position(|h| h == "search_role").unwrap();
        let trials: Vec<Vec<String>> = rows
            .iter()
            .filter(|r| r[role] == "trial")
            .cloned()
            .collect();
        assert_eq!(
            trials.len(),
            6 + 2 + 2,
            "two rounds of 3 trials, halved at 1, 3, 9 epochs"
        );
        for column in ["test_auc", "test_accuracy"] {
            if let Some(i) = header.iter().position(|h| h == column) {
                assert!(
                    trials.iter().all(|r| r[i].is_empty()),
                    "a trial scored Test"
                );
            }
        }
        trial_rows.push(outcomes(&header, &trials));
    }
    assert_eq!(
        trial_rows[0], trial_rows[1],
        "trials moved when Test labels changed"
    );
}

#[test]
fn search_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = search_file(SYNTHETIC);
    let cases = [
        (
            base.replace("\"train.lr\"", "\"train.lrx\""),
            "search.space.\"train.lrx\"",
        ),
        (
            base.replace("[[8], [16, 8]]", "[[8], [0]]"),
            "search.space.\"model.mlp.hidden\"",
        ),
        (
            base.replace("seed = 4", "seed = 4\nmetric = \"auroc\""),
            "search.metric",
        ),
        (
            base.replace("split = \"kfold\"\nfolds = 3", "split = \"given\""),
            "train.validation_fraction",
        ),
        (
            base.replace(
                "kind = \"wavelet-mlp\"",
                "kind = \"wavelet-classical\"\nclassifier = \"svm\"",
            ),
            "search.halving",
        ),
        (format!("{base}\n[grid]\n\"train.lr\" = [0.1]\n"), "search"),
    ];
    for (text, key) in cases {
        let file = dir.path().join("bad.toml");
        fs::write(&file, &text).unwrap();
        let out = microcal_run(&["--plan", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{key}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("`{key}`")) && err.contains("bad.toml"),
            "{key}: {err}"
        );
    }
}

/// Two processes given the same search and table share each round's trials; one killed
/// with SIGKILL while it holds a trial: the other takes the trial over once it sees the
/// holder gone, and the table ends as one uninterrupted process leaves it.
#[test]
fn processes_share_a_search_and_one_killed_mid_round_loses_nothing() {
    let data = "[data]\nsource = \"synthetic\"\nimage_size = 32\nsynthetic_train_per_class = 150\nsynthetic_test_per_class = 20\nsplit = \"kfold\"\nfolds = 3";
    let text = search_file(data);
    let whole = tempfile::tempdir().unwrap();
    let (header, rows) = run_search(whole.path(), &text);

    let shared = tempfile::tempdir().unwrap();
    let file = shared.path().join("search.toml");
    fs::write(&file, &text).unwrap();
    let table = shared.path().join("t.csv");
    let start = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_microcal-run"))
            .args([file.to_str().unwrap(), "--jobs", "1", "--results"])
            .arg(&table)
            .current_dir(repo())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut doomed = start();
    let survivor = start();
    // Wait until the doomed process holds a claim, then kill it there.
    let claims = shared.path().join("t.csv.claims");
    let pid = doomed.id().to_string();
    let started = std::time::Instant::now();
    let held = loop {
        let holds = fs::read_dir(&claims).ok().and_then(|entries| {
            entries.flatten().find_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let text = fs::read_to_string(e.path()).unwrap_or_default();
                (!name.starts_with('.')
                    && !name.ends_with(".done")
                    && text.starts_with(&format!("{pid} ")))
                .then_some(name)
            })
        });
        if let Some(job) = holds {
            break job;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the first process never claimed a trial"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let out = survivor.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (h2, rows2) = read_csv(&table);
    assert_eq!(outcomes(&header, &rows), outcomes(&h2, &rows2));
    let ids = |h: &[String], rs: &[Vec<String>]| -> Vec<String> {
        let i = h.iter().position(|c| c == "job_id").unwrap();
        let mut v: Vec<String> = rs.iter().map(|r| r[i].clone()).collect();
        v.sort();
        v
    };
    let (a, b) = (ids(&header, &rows), ids(&h2, &rows2));
    assert_eq!(a, b, "same jobs, none twice");
    assert!(
        b.contains(&held),
        "the killed process's trial {held} was taken over"
    );
}
