//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The real dataset beside the checkout. Tests that call this are `#[ignore]`d with that
/// reason and named `on_real_data_*`; run without the data, they fail rather than pass.
pub fn real_data() -> PathBuf {
    let root = repo().join("../shared/data/microcal");
    assert!(
        root.join("Train").is_dir(),
        "this test needs the real data at {}",
        root.display()
    );
    root
}

pub fn run_bin(bin: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("binary runs")
}

pub fn microcal_run(args: &[&str]) -> Output {
    run_bin(env!("CARGO_BIN_EXE_microcal-run"), args, &repo())
}

pub fn microcal(args: &[&str]) -> Output {
    run_bin(env!("CARGO_BIN_EXE_microcal"), args, &repo())
}

/// Runs the quickstart with `epochs` epochs into a table in `dir`; returns the table.
pub fn quickstart_table(dir: &Path, epochs: usize) -> PathBuf {
    let table = dir.join("results.csv");
    let run = microcal_run(&[
        "experiments/quickstart.toml",
        "--results",
        table.to_str().unwrap(),
        "--set",
        &format!("train.epochs={epochs}"),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    table
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Rows of a results table as (header, rows of strings).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).expect("table exists");
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

pub fn column<'a>(header: &[String], rows: &'a [Vec<String>], name: &str) -> Vec<&'a str> {
    let i = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    rows.iter().map(|r| r[i].as_str()).collect()
}

/// Writes an 8-bit binary PGM.
pub fn write_pgm(path: &Path, width: usize, height: usize, value: impl Fn(usize, usize) -> u8) {
    let mut bytes = format!("P5\n{width} {height}\n255\n").into_bytes();
    for y in 0..height {
        for x in 0..width {
            bytes.push(value(y, x));
        }
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// job id → every column that does not depend on timing, of every row.
pub fn numbers(table: &Path) -> BTreeMap<String, Vec<(String, String)>> {
    let (header, rows) = read_csv(table);
    let mut out = BTreeMap::new();
    for row in rows {
        let cells: Vec<(String, String)> = header
            .iter()
            .cloned()
            .zip(row.iter().cloned())
            // Timings differ from run to run, and so does the check over the whole row.
            .filter(|(h, _)| {
                !["time", "train_seconds", "images_per_s", "row_check"].contains(&h.as_str())
            })
            .collect();
        let id = cells.iter().find(|(h, _)| h == "job_id").unwrap().1.clone();
        assert!(
            out.insert(id.clone(), cells).is_none(),
            "job {id} twice in {}",
            table.display()
        );
    }
    out
}

/// Runs `microcal predict` with the model in `run_dir` on the images in `images` (written
/// from a job's samples as `<id with / as _>.pgm`), asserts every score equals the one the
/// job recorded in its predictions.csv, and returns each image's (score, label) as printed.
pub fn predict_matches_run(run_dir: &Path, images: &Path) -> Vec<(f64, String)> {
    let predicted = microcal(&[
        "predict",
        "--model",
        run_dir.to_str().unwrap(),
        images.to_str().unwrap(),
    ]);
    let what = run_dir.display();
    assert!(predicted.status.success(), "{what}: {}", stderr(&predicted));
    let recorded = std::fs::read_to_string(run_dir.join("predictions.csv")).unwrap();
    stdout(&predicted)
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.split('\t').collect();
            let name = Path::new(parts[0])
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string();
            let sample = name.trim_end_matches(".pgm").replacen('_', "/", 2);
            let row = recorded
                .lines()
                .find(|l| l.starts_with(&format!("{sample},")))
                .unwrap_or_else(|| panic!("{what}: {sample}"));
            let saved: f64 = row.split(',').nth(2).unwrap().parse().unwrap();
            let now: f64 = parts[1].parse().unwrap();
            assert!(
                (saved - now).abs() < 1e-5,
                "{what} {sample}: run {saved}, predict {now}"
            );
            (now, parts[2].to_string())
        })
        .collect()
}

/// A tiny Train/Test folder: bright blobs are positives.
pub fn write_folder(root: &Path) {
    for (split, n) in [("Train", 6), ("Test", 3)] {
        for label in [0u8, 1] {
            for i in 0..n {
                let name = format!("m{i}_{label}.pgm");
                write_pgm(
                    &root.join(split).join(label.to_string()).join(name),
                    16,
                    16,
                    |y, x| {
                        let base = 60 + (i * 7 + y * 3 + x * 5) % 40;
                        (base
                            + if label == 1 && (6..10).contains(&y) {
                                90
                            } else {
                                0
                            }) as u8
                    },
                );
            }
        }
    }
}
