//! Entries named like images that are not readable regular files stop an experiment, naming
//! each path, unless `data.skip_unreadable` skips them; `microcal data check` lists them.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

fn experiment(dir: &Path, extra: &str) -> std::path::PathBuf {
    let file = dir.join("e.toml");
    fs::write(
        &file,
        format!(
            "name = \"odd-entries\"\n[data]\nsource = \"folder\"\nroot = \"data\"\nimage_size = 16\n{extra}\
             [model]\nkind = \"baseline\"\n[output]\nresults = \"out/results.csv\"\n"
        ),
    )
    .unwrap();
    file
}

#[test]
fn a_dangling_link_a_folder_and_a_fifo_named_like_images_stop_the_experiment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_folder(&data);
    let link = data.join("Train/0/gone.pgm");
    std::os::unix::fs::symlink(dir.path().join("nowhere.pgm"), &link).unwrap();
    let folder = data.join("Train/1/folder.pgm");
    fs::create_dir(&folder).unwrap();
    let fifo = data.join("Test/0/pipe.pgm");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());

    let file = experiment(dir.path(), "");
    let plan = microcal_run(&["--plan", file.to_str().unwrap()]);
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    let err = stderr(&plan);
    assert!(err.contains("3 entries named like images"), "{err}");
    for path in [&link, &folder, &fifo] {
        assert!(
            err.contains(path.to_str().unwrap()),
            "{} in {err}",
            path.display()
        );
    }
    assert!(err.contains("data.skip_unreadable"), "{err}");

    let skipping = experiment(dir.path(), "skip_unreadable = true\n");
    let run = microcal_run(&["--no-progress", skipping.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("skipping 3 entries"),
        "{}",
        stderr(&run)
    );
    let (_, rows) = microcal::results::ResultsTable::new(dir.path().join("out/results.csv"))
        .read()
        .unwrap();
    assert_eq!(
        rows[0].get("n"),
        Some("6"),
        "the 6 real Test images are scored"
    );

    let check = microcal(&["data", "check", data.to_str().unwrap()]);
    assert!(check.status.success(), "{}", stderr(&check));
    let text = format!("{}{}", stdout(&check), stderr(&check));
    for path in [&link, &folder, &fifo] {
        assert!(text.contains(path.to_str().unwrap()), "{text}");
    }
}
