//! A full disk leaves nothing behind, and a table that cannot be written stops the run before
//! anything trains. These tests mount a small tmpfs and run as an ordinary user, so they need
//! root: they are ignored by default (named `as_root_*`), and `.ci/run` runs them.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use microcal::results::ResultsTable;

/// A tmpfs of a given size, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size_kib: usize) -> Self {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a tmpfs and needs root: {}",
            stderr(&out)
        );
        Tmpfs(dir.to_path_buf())
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn quickstart(table: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "experiments/quickstart.toml",
        "--no-progress",
        "--results",
        table.to_str().unwrap(),
        "--set",
        "train.epochs=2",
    ];
    args.extend_from_slice(extra);
    microcal_run(&args)
}

/// Files a run may leave behind that it should not: temporaries of a table rewrite, private
/// claim files, claims of processes that ended, and done markers holding data.
fn leftovers(folder: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(folder).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".tmp") || name.starts_with(".microcal-probe") {
            found.push(name);
        }
    }
    if let Ok(claims) = fs::read_dir(folder.join("results.csv.claims")) {
        for entry in claims.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let len = entry.metadata().unwrap().len();
            if !name.ends_with(".done") || len > 0 {
                found.push(format!("claims/{name} ({len} bytes)"));
            }
        }
    }
    found
}

#[test]
#[ignore = "mounts a tmpfs, so it needs root; .ci/run runs it"]
fn as_root_a_full_disk_leaves_nothing_behind_and_the_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("small");
    // From too small for a single artefact to almost enough for the whole sweep: the disk
    // fills at a different write each time (artefacts, a row, a rewrite, a claim).
    let mut failures = 0;
    for size_kib in [8, 16, 24, 48, 64, 96, 128, 160] {
        let fs = Tmpfs::mount(&mount, size_kib);
        let table = mount.join("results.csv");
        let run = quickstart(&table, &[]);
        if !run.status.success() {
            failures += 1;
            assert_eq!(
                run.status.code(),
                Some(2),
                "{size_kib} KiB: {}",
                stderr(&run)
            );
            assert!(
                stderr(&run).contains("No space left on device"),
                "{size_kib} KiB: {}",
                stderr(&run)
            );
        }
        assert_eq!(leftovers(&mount), Vec::<String>::new(), "{size_kib} KiB");
        let before = ResultsTable::new(&table).job_ids().unwrap();

        fs.remount("size=8m");
        let rerun = quickstart(&table, &[]);
        assert!(rerun.status.success(), "{size_kib} KiB: {}", stderr(&rerun));
        let (_, rows) = ResultsTable::new(&table).read().unwrap();
        let ids: std::collections::BTreeSet<_> =
            rows.iter().map(|r| r.get("job_id").unwrap()).collect();
        assert_eq!(
            (rows.len(), ids.len()),
            (4, 4),
            "{size_kib} KiB: no job lost or doubled"
        );
        assert!(before.iter().all(|id| ids.contains(id.as_str())));
        assert_eq!(
            leftovers(&mount),
            Vec::<String>::new(),
            "{size_kib} KiB, rerun"
        );
        drop(fs);
    }
    assert!(failures >= 4, "the disk filled in {failures} runs only");
}

#[test]
#[ignore = "runs as the user nobody, so it needs root; .ci/run runs it"]
fn as_root_a_table_that_cannot_be_written_stops_the_run_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("shared");
    fs::create_dir_all(&folder).unwrap();
    let table = folder.join("results.csv");
    let first = quickstart(&table, &["--set", "train.seeds=[0]"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let runs_before = fs::read_dir(folder.join("runs")).unwrap().count();
    // Everything writable by anyone but the table itself, which is read-only.
    for path in [
        dir.path().to_path_buf(),
        folder.clone(),
        folder.join("runs"),
    ] {
        chmod(&path, "777");
    }
    chmod(&folder.join("results.csv.claims"), "777");
    chmod(&folder.join("results.csv.lock"), "666");
    chmod(&table, "444");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_microcal-run"))
        .args([
            "experiments/quickstart.toml",
            "--no-progress",
            "--results",
            table.to_str().unwrap(),
            "--set",
            "train.epochs=2",
            "--set",
            "train.seeds=[1]",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(table.to_str().unwrap()) && err.contains("Permission denied"),
        "{err}"
    );
    assert_eq!(
        fs::read_dir(folder.join("runs")).unwrap().count(),
        runs_before,
        "nothing trained, so no job folder was written"
    );
}

fn chmod(path: &Path, mode: &str) {
    let status = Command::new("chmod").arg(mode).arg(path).status().unwrap();
    assert!(status.success());
}
