//! Several jobs at once: the same numbers whatever --jobs is, processes sharing a table run
//! each job once, and shards split a job list between processes.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// A 12-job synthetic sweep (3 families × 2 levels × 2 seeds) of small MLPs.
fn sweep(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("sweep.toml");
    std::fs::write(
        &file,
        "name = \"sweep\"\n[data]\nsource = \"synthetic\"\nsynthetic_train_per_class = 40\n\
         synthetic_test_per_class = 20\n[model]\nkind = \"wavelet-mlp\"\n[model.mlp]\nhidden = [16]\n\
         [train]\nepochs = 4\nseeds = [0, 1]\n[grid]\n\"model.wavelet.family\" = [\"haar\", \"db2\", \"db4\"]\n\
         \"model.wavelet.level\" = [2, 3]\n",
    )
    .unwrap();
    file
}

#[test]
fn the_numbers_do_not_depend_on_how_many_jobs_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep(dir.path());
    let mut tables = Vec::new();
    for jobs in ["1", "3"] {
        let table = dir.path().join(format!("jobs{jobs}.csv"));
        let out = microcal_run(&[
            file.to_str().unwrap(),
            "--jobs",
            jobs,
            "--results",
            table.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("12 jobs, 12 run"), "{}", stdout(&out));
        tables.push(numbers(&table));
    }
    assert_eq!(tables[0].len(), 12);
    assert_eq!(tables[0], tables[1]);
}

#[test]
fn processes_sharing_a_table_run_each_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep(dir.path());
    let table = dir.path().join("shared.csv");
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_microcal-run"))
                .args([
                    file.to_str().unwrap(),
                    "--jobs",
                    "1",
                    "--set",
                    "train.epochs=300",
                    "--results",
                    table.to_str().unwrap(),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ran = 0;
    let mut busy = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let n: usize = text
            .split(" jobs, ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{text}"));
        ran += n;
        busy += usize::from(n > 0);
    }
    assert_eq!(ran, 12, "each job ran once between the three processes");
    eprintln!("{busy} of 3 processes ran jobs");
    assert_eq!(numbers(&table).len(), 12, "one row per job");
}

#[test]
fn shards_split_the_jobs_and_cover_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep(dir.path());
    let table = dir.path().join("t.csv");
    let mut ran = 0;
    for shard in ["0/3", "1/3", "2/3"] {
        let out = microcal_run(&[
            file.to_str().unwrap(),
            "--shard",
            shard,
            "--results",
            table.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("in other shards"), "{text}");
        ran += text
            .split(" jobs, ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap();
    }
    assert_eq!(ran, 12);
    assert_eq!(numbers(&table).len(), 12);
    let bad = microcal_run(&[file.to_str().unwrap(), "--shard", "3/3"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("0 <= I < N"), "{}", stderr(&bad));
}

#[test]
fn killing_a_parallel_sweep_again_and_again_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep(dir.path());
    let seeds = [
        "--set",
        "train.seeds=[0, 1, 2, 3, 4, 5, 6, 7]",
        "--set",
        "train.epochs=300",
        "--set",
        "model.mlp.hidden=[256, 64]",
    ];
    let reference = dir.path().join("reference.csv");
    let mut args = vec![
        file.to_str().unwrap(),
        "--results",
        reference.to_str().unwrap(),
    ];
    args.extend(seeds);
    let out = microcal_run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = numbers(&reference);
    assert_eq!(expected.len(), 48);

    let table = dir.path().join("killed.csv");
    let mut args = vec![
        file.to_str().unwrap(),
        "--jobs",
        "2",
        "--results",
        table.to_str().unwrap(),
    ];
    args.extend(seeds);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..15 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = 20 + state % 250;
        let mut child = Command::new(env!("CARGO_BIN_EXE_microcal-run"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let partial = if table.exists() {
        numbers(&table).len()
    } else {
        0
    };
    assert!(
        partial < 48,
        "the kills came too late to interrupt anything"
    );
    eprintln!("{partial} of 48 jobs done after 15 kills");
    let out = microcal_run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        numbers(&table),
        expected,
        "every job once, with the clean run's numbers"
    );
}

#[test]
fn files_given_together_share_the_workers_and_give_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep(dir.path());
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("name = \"sweep\"", "name = \"other\"")
            .replace("hidden = [16]", "hidden = [8]"),
    )
    .unwrap();
    let apart = dir.path().join("apart.csv");
    for f in [&file, &other] {
        let out = microcal_run(&[
            f.to_str().unwrap(),
            "--jobs",
            "1",
            "--results",
            apart.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let together = dir.path().join("together.csv");
    let out = microcal_run(&[
        file.to_str().unwrap(),
        other.to_str().unwrap(),
        "--jobs",
        "2",
        "--results",
        together.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("sweep.toml: 12 jobs, 12 run")
            && text.contains("other.toml: 12 jobs, 12 run"),
        "{text}"
    );
    assert_eq!(numbers(&apart), numbers(&together));
}
