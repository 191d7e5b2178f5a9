//! microcal-run end to end: run, resume, plan, determinism, failures, bad input.

mod common;

use common::*;
use std::fs;

fn quick_args<'a>(table: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "experiments/quickstart.toml",
        "--results",
        table,
        "--set",
        "train.epochs=3",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn quickstart_runs_resumes_and_reproduces() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("results.csv");
    let t = table.to_str().unwrap();

    let first = microcal_run(&quick_args(t, &[]));
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("4 jobs, 4 run, 0 already"),
        "{}",
        stdout(&first)
    );
    let (header, rows) = read_csv(&table);
    assert_eq!(rows.len(), 4);
    assert!(column(&header, &rows, "status").iter().all(|s| *s == "ok"));
    for needed in [
        "time",
        "experiment",
        "job_id",
        "git_rev",
        "seed",
        "fold",
        "accuracy",
        "precision",
        "recall",
        "specificity",
        "f1",
        "auc",
        "loss",
        "tn",
        "fp",
        "fn",
        "tp",
        "train_seconds",
        "images_per_s",
        "model.wavelet.family",
        "train.epochs",
    ] {
        assert!(
            header.iter().any(|h| h == needed),
            "column {needed} missing from {header:?}"
        );
    }
    let families = column(&header, &rows, "model.wavelet.family");
    assert_eq!(families.iter().filter(|f| **f == "haar").count(), 2);
    let aucs: Vec<f64> = column(&header, &rows, "auc")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        aucs.iter().all(|a| *a > 0.6),
        "synthetic clusters are learnable: {aucs:?}"
    );

    // Artefacts of each job.
    let id = column(&header, &rows, "job_id")[0].to_string();
    let run_dir = dir.path().join("runs").join(&id);
    let predictions = fs::read_to_string(run_dir.join("predictions.csv")).unwrap();
    assert_eq!(
        predictions.lines().count(),
        1 + 200,
        "header + one line per test image"
    );
    assert!(predictions.starts_with("path,label,score,set,fold"));
    let history = fs::read_to_string(run_dir.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 1 + 3);
    let config = fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(
        config.contains("seeds = [0]") || config.contains("seeds = [1]"),
        "{config}"
    );

    // A second run adds nothing.
    let again = microcal_run(&quick_args(t, &[]));
    assert!(again.status.success());
    assert!(
        stdout(&again).contains("0 run, 4 already"),
        "{}",
        stdout(&again)
    );
    assert_eq!(read_csv(&table).1.len(), 4);

    // Forced re-run: same rows (replaced, not duplicated), same numbers.
    let forced = microcal_run(&quick_args(t, &["--force"]));
    assert!(forced.status.success());
    let (header2, rows2) = read_csv(&table);
    assert_eq!(rows2.len(), 4);
    let mut before: Vec<(&str, &str)> = column(&header, &rows, "job_id")
        .into_iter()
        .zip(column(&header, &rows, "auc"))
        .collect();
    let mut after: Vec<(&str, &str)> = column(&header2, &rows2, "job_id")
        .into_iter()
        .zip(column(&header2, &rows2, "auc"))
        .collect();
    before.sort();
    after.sort();
    assert_eq!(before, after, "same config + seed = same numbers");
}

#[test]
fn an_interrupted_sweep_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("results.csv");
    let t = table.to_str().unwrap();
    let partial = microcal_run(&quick_args(t, &["--set", "train.seeds=[1]"]));
    assert!(partial.status.success(), "{}", stderr(&partial));
    let (header, rows) = read_csv(&table);
    assert_eq!(rows.len(), 2);
    let done_ids: Vec<String> = column(&header, &rows, "job_id")
        .iter()
        .map(|s| s.to_string())
        .collect();

    let plan = microcal_run(&quick_args(t, &["--plan"]));
    let plan_out = stdout(&plan);
    assert_eq!(plan_out.matches(" done ").count(), 2, "{plan_out}");
    assert_eq!(plan_out.matches(" todo ").count(), 2, "{plan_out}");
    assert!(plan_out.contains("model.wavelet.family=haar"));

    let rest = microcal_run(&quick_args(t, &[]));
    assert!(
        stdout(&rest).contains("4 jobs, 2 run, 2 already"),
        "{}",
        stdout(&rest)
    );
    let (header, rows) = read_csv(&table);
    let ids = column(&header, &rows, "job_id");
    assert_eq!(ids.len(), 4);
    assert!(done_ids.iter().all(|d| ids.contains(&d.as_str())));
}

#[test]
fn a_diverging_job_is_recorded_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("results.csv");
    let out = microcal_run(&quick_args(
        table.to_str().unwrap(),
        &["--set", "train.lr=1e30", "--set", "train.seeds=[0]"],
    ));
    assert_eq!(out.status.code(), Some(3), "failed jobs give exit status 3");
    let (header, rows) = read_csv(&table);
    assert_eq!(rows.len(), 2, "both jobs ran");
    assert!(column(&header, &rows, "status")
        .iter()
        .all(|s| *s == "diverged"));
    assert!(column(&header, &rows, "error")[0].contains("train.lr"));
}

/// Runs a config text and returns (exit code, stderr); asserts no table appeared.
fn run_bad(name: &str, text: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    fs::write(&file, text).unwrap();
    let table = dir.path().join("t.csv");
    let mut args = vec![file.to_str().unwrap(), "--results", table.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = microcal_run(&args);
    assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
    assert!(!table.exists(), "{name}: no table may be written");
    let err = stderr(&out);
    assert!(err.contains(name), "error names the file: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

const BASE: &str =
    "name = \"x\"\n[data]\nsource = \"synthetic\"\n[model]\nkind = \"wavelet-mlp\"\n";

#[test]
fn bad_input_gets_a_clear_error_and_no_table() {
    let err = run_bad(
        "typo.toml",
        &format!("{BASE}[model.wavelet]\nfamly = \"db5\"\n"),
        &[],
    );
    assert!(
        err.contains("line 7") && err.contains("unknown field `famly`") && err.contains("`family`"),
        "{err}"
    );

    let err = run_bad("broken.toml", "name = \"x\"\n[data\n", &[]);
    assert!(err.contains("line 2"), "{err}");

    let err = run_bad(
        "levels.toml",
        &format!("{BASE}[model.wavelet]\nlevel = 3\nkeep_levels = [4]\n"),
        &[],
    );
    assert!(
        err.contains("model.wavelet.keep_levels") && err.contains("1..=3"),
        "{err}"
    );

    let err = run_bad(
        "grid.toml",
        &format!("{BASE}[grid]\n\"model.wavelet.family\" = [\"db5\", \"db99\"]\n"),
        &[],
    );
    assert!(err.contains("db99") && err.contains("sym2-sym20"), "{err}");

    let err = run_bad("lr.toml", BASE, &["--set", "train.lr=-1"]);
    assert!(
        err.contains("train.lr") && err.contains("positive"),
        "{err}"
    );

    let err = run_bad(
        "kind.toml",
        "name = \"x\"\n[data]\nsource = \"synthetic\"\n[model]\nkind = \"nope\"\n",
        &[],
    );
    assert!(
        err.contains("unknown variant `nope`") && err.contains("wavelet-mlp"),
        "{err}"
    );

    let err = run_bad("root.toml", "name = \"x\"\n[data]\nsource = \"folder\"\nroot = \"nowhere\"\n[model]\nkind = \"wavelet-mlp\"\n", &[]);
    assert!(
        err.contains("nowhere") && err.contains("Train/{0,1}"),
        "{err}"
    );
}

fn folder_config(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("exp.toml");
    fs::write(&file, "name = \"folder\"\n[data]\nsource = \"folder\"\nroot = \"data\"\nimage_size = 16\n[model]\nkind = \"wavelet-mlp\"\n[model.wavelet]\nfamily = \"haar\"\nlevel = 2\n[train]\nepochs = 2\n").unwrap();
    for (s, split) in ["Train", "Test"].into_iter().enumerate() {
        for label in 0..2u8 {
            for i in 0..3 {
                let path = dir.join(format!("data/{split}/{label}/m{i}_1_{label}.pgm_1.pgm"));
                write_pgm(&path, 16, 16, |y, x| {
                    ((x * 7 + y * 3 + i * 11 + s * 5) % 200) as u8 + 40 * label
                });
            }
        }
    }
    file
}

#[test]
fn folder_data_runs_and_bad_images_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = folder_config(dir.path());
    let table = dir.path().join("t.csv");
    let ok = microcal_run(&[file.to_str().unwrap(), "--results", table.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let (header, rows) = read_csv(&table);
    assert_eq!(column(&header, &rows, "n"), vec!["6"]);

    // A corrupt file: the error names it; the table keeps its row.
    let corrupt = dir.path().join("data/Test/1/broken.pgm");
    fs::write(&corrupt, b"P5\n16 16\n255\nshort").unwrap();
    let bad = microcal_run(&[
        file.to_str().unwrap(),
        "--results",
        table.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("broken.pgm"), "{}", stderr(&bad));
    assert_eq!(read_csv(&table).1.len(), 1);

    // A wrong size: named with its size and the expected one.
    write_pgm(&corrupt, 20, 16, |_, _| 0);
    let bad = microcal_run(&[
        file.to_str().unwrap(),
        "--results",
        table.to_str().unwrap(),
        "--force",
    ]);
    let err = stderr(&bad);
    assert!(
        err.contains("broken.pgm") && err.contains("20x16") && err.contains("16x16"),
        "{err}"
    );
}

#[test]
fn dedupe_drops_exact_copies_and_reports_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let file = folder_config(dir.path());
    // Two exact copies: one across splits, one within Train.
    fs::copy(
        dir.path().join("data/Train/1/m0_1_1.pgm_1.pgm"),
        dir.path().join("data/Test/1/copy_1_1.pgm_1.pgm"),
    )
    .unwrap();
    fs::copy(
        dir.path().join("data/Train/0/m1_1_0.pgm_1.pgm"),
        dir.path().join("data/Train/0/z_1_0.pgm_1.pgm"),
    )
    .unwrap();
    let check = microcal(&["data", "check", dir.path().join("data").to_str().unwrap()]);
    assert!(
        stdout(&check).contains("exact duplicates: 2 pairs, 1 across Train/Test"),
        "{}",
        stdout(&check)
    );
    let text = fs::read_to_string(&file)
        .unwrap()
        .replace("image_size = 16", "image_size = 16\ndedupe = true");
    fs::write(&file, text).unwrap();
    let table = dir.path().join("t.csv");
    let out = microcal_run(&[file.to_str().unwrap(), "--results", table.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 pairs of byte-identical images"),
        "the run warns: {}",
        stderr(&out)
    );
    let (header, rows) = read_csv(&table);
    assert_eq!(column(&header, &rows, "n_dropped_duplicates"), vec!["2"]);
    // Kept: the first copy by path. "Test/1/copy…" sorts before "Train/1/m0…", so the Test
    // side keeps all 7 images; Train loses m0 (its Test copy stays) and z (a copy of m1).
    assert_eq!(column(&header, &rows, "n"), vec!["7"]);
    assert_eq!(column(&header, &rows, "n_train"), vec!["5"]);
}

/// Output piped into a reader that stops early (`| head`) ends the process quietly, not
/// with a panic on the closed pipe.
#[test]
fn a_closed_output_pipe_is_not_a_panic() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("big.pgm");
    // Large enough that its coefficients (~2.7 MB of text) overflow the pipe's buffer.
    write_pgm(&image, 512, 512, |x, y| ((x * 7 + y * 3) % 256) as u8);
    let mut child = Command::new(env!("CARGO_BIN_EXE_microcal"))
        .args(["wavelet", "--family", "db5", "--level", "1"])
        .arg(&image)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The reader is gone (its end of the pipe dropped above).
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
}

#[test]
fn the_slurm_array_is_throttled_by_flag_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("throttled.toml");
    std::fs::write(
        &file,
        std::fs::read_to_string(repo().join("experiments/quickstart.toml"))
            .unwrap()
            .replace("[output]", "[launcher.slurm]\nmax_running = 3\n\n[output]"),
    )
    .unwrap();
    let table = dir.path().join("t.csv");
    let script = |extra: &[&str]| {
        let mut args = vec![
            "--launcher",
            "slurm",
            "--tasks",
            "5",
            "--dry-run",
            "--results",
            table.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap());
        let out = microcal_run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    assert!(
        script(&[]).contains("#SBATCH --array=0-4%3\n"),
        "{}",
        script(&[])
    );
    assert!(script(&["--max-running", "2"]).contains("#SBATCH --array=0-4%2\n"));
    let bad = microcal_run(&[
        "--plan",
        file.to_str().unwrap(),
        "--set",
        "launcher.slurm.max_running=0",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("launcher.slurm.max_running"),
        "{}",
        stderr(&bad)
    );
}
