//! `microcal status`: done, running (a live claim, with its holder), failed (with the error's
//! first line) and to do, with a machine-readable last line; read-only, also while a sweep
//! runs.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use microcal::results::{ResultsTable, Row};

fn status(table: &Path) -> (String, String) {
    let out = microcal(&[
        "status",
        "--results",
        table.to_str().unwrap(),
        "experiments/quickstart.toml",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    (text.lines().last().unwrap().to_string(), text)
}

fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = walk(dir);
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push((path.display().to_string(), entry.metadata().unwrap().len()));
        }
    }
    out
}

#[test]
fn status_counts_done_running_failed_and_todo_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("results.csv");
    let t = table.to_str().unwrap();
    // Two of the quickstart's four jobs: both families, seed 0.
    let run = microcal_run(&[
        "experiments/quickstart.toml",
        "--results",
        t,
        "--set",
        "train.epochs=2",
        "--set",
        "train.seeds=[0]",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let (last, _) = status(&table);
    assert_eq!(
        last, "done=0 running=0 failed=0 todo=4",
        "other epochs: other jobs"
    );

    let run = microcal_run(&[
        "experiments/quickstart.toml",
        "--results",
        t,
        "--set",
        "train.seeds=[0]",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let (last, _) = status(&table);
    assert_eq!(last, "done=2 running=0 failed=0 todo=2");

    // One row says failed; one remaining job is claimed by a live process of this host.
    let rows = ResultsTable::new(&table).read().unwrap().1;
    let quick: Vec<&Row> = rows
        .iter()
        .filter(|r| r.get("train.epochs") == Some("30"))
        .collect();
    let mut failed = quick[0].clone();
    failed.push("status", "failed");
    failed.push("error", "cannot write runs/x: disk full\nmore detail");
    ResultsTable::new(&table).upsert(&failed).unwrap();
    let plan = microcal_run(&["--plan", "experiments/quickstart.toml", "--results", t]);
    let todo: Vec<String> = stdout(&plan)
        .lines()
        .filter(|l| l.contains(" todo "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(todo.len(), 2);
    let claims = dir.path().join("results.csv.claims");
    let host = microcal::host::host_name();
    fs::write(
        claims.join(&todo[0]),
        format!("{} {host}\n", std::process::id()),
    )
    .unwrap();
    // A claim left by a process that ended is no running job.
    fs::write(claims.join(&todo[1]), format!("{} {host}\n", u32::MAX - 1)).unwrap();

    let before = listing(dir.path());
    let (last, text) = status(&table);
    assert_eq!(last, "done=1 running=1 failed=1 todo=1", "{text}");
    assert!(
        text.contains(&format!(
            "running {}: pid {} on {host}",
            todo[0],
            std::process::id()
        )),
        "{text}"
    );
    assert!(
        text.contains("failed") && text.contains("disk full") && !text.contains("more detail"),
        "{text}"
    );
    assert!(text.contains("ETA"), "{text}");
    assert_eq!(listing(dir.path()), before, "status writes nothing");
}

#[test]
fn status_answers_while_a_sweep_runs() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("results.csv");
    let t = table.to_str().unwrap();
    let mut sweep = Command::new(env!("CARGO_BIN_EXE_microcal-run"))
        .args([
            "experiments/quickstart.toml",
            "--no-progress",
            "--jobs",
            "1",
            "--results",
            t,
            "--set",
            "train.epochs=3000",
        ])
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut saw_running = false;
    while sweep.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(60) {
        let out = microcal(&[
            "status",
            "--results",
            t,
            "--set",
            "train.epochs=3000",
            "experiments/quickstart.toml",
        ]);
        if out.status.success() {
            let text = stdout(&out);
            let last = text.lines().last().unwrap_or_default();
            if last.contains("running=1") {
                assert!(text.contains(&format!("pid {}", sweep.id())), "{text}");
                saw_running = true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = sweep.wait();
    assert!(saw_running, "status never saw the sweep's running job");
    let out = microcal(&[
        "status",
        "--results",
        t,
        "--set",
        "train.epochs=3000",
        "experiments/quickstart.toml",
    ]);
    let text = stdout(&out);
    assert_eq!(
        text.lines().last(),
        Some("done=4 running=0 failed=0 todo=0"),
        "{text}"
    );
}
