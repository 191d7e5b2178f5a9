//! The SIMD paths end to end: `MICROCAL_SIMD` chooses one (a path the CPU lacks is refused),
//! every row records it, AVX-512 gives AVX2's numbers bit for bit, and the portable path
//! comes within a stated tolerance of them.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

const CNN: &str = r#"
name = "paths"
[data]
source = "synthetic"
image_size = 16
synthetic_train_per_class = 30
synthetic_test_per_class = 10
[model]
kind = "cnn"
layers = [{ conv = 8 }, "relu", "maxpool", { conv = 16 }, "relu", "maxpool",
          "flatten", { dense = 16 }, "relu", { dense = 1 }]
[train]
epochs = 3
batch_size = 16
lr = 3e-3
"#;

/// The paths this CPU supports, as `microcal bench matmul` lists them.
fn available() -> Vec<String> {
    let out = microcal(&["bench", "matmul", "--seconds", "0.01"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find_map(|l| l.split_once("MICROCAL_SIMD chooses among: "))
        .expect("the benchmark lists the paths")
        .1;
    line.trim_end_matches(')')
        .split(", ")
        .map(str::to_string)
        .collect()
}

fn run_on(path: &str, dir: &Path) -> Vec<(String, String)> {
    let file = dir.join("cnn.toml");
    fs::write(&file, CNN).unwrap();
    let table = dir.join(format!("{path}.csv"));
    let out = Command::new(env!("CARGO_BIN_EXE_microcal-run"))
        .args([
            file.to_str().unwrap(),
            "--no-progress",
            "--results",
            table.to_str().unwrap(),
        ])
        .env("MICROCAL_SIMD", path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{path}: {}", stderr(&out));
    let (header, rows) = read_csv(&table);
    assert_eq!(
        column(&header, &rows, "simd"),
        vec![path],
        "the row records its path"
    );
    numbers(&table).into_values().next().unwrap()
}

fn value(row: &[(String, String)], key: &str) -> f64 {
    row.iter()
        .find(|(k, _)| k == key)
        .unwrap()
        .1
        .parse()
        .unwrap()
}

#[test]
fn every_path_trains_and_avx512_gives_avx2s_bits() {
    let paths = available();
    assert_eq!(paths[0], "portable");
    let dir = tempfile::tempdir().unwrap();
    let portable = run_on("portable", dir.path());
    let without_path = |row: &[(String, String)]| -> Vec<(String, String)> {
        row.iter().filter(|(k, _)| k != "simd").cloned().collect()
    };
    if paths.iter().any(|p| p == "avx2") {
        let avx2 = run_on("avx2", dir.path());
        // Products rounded once (FMA) or twice (portable): the losses agree closely.
        let (a, b) = (value(&avx2, "loss"), value(&portable, "loss"));
        assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "loss {a} vs {b}");
        if paths.iter().any(|p| p == "avx512") {
            let avx512 = run_on("avx512", dir.path());
            assert_eq!(without_path(&avx512), without_path(&avx2), "bit for bit");
        }
    }
}

#[test]
fn a_path_the_cpu_lacks_or_an_unknown_one_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_microcal-run"))
        .args(["--plan", "experiments/quickstart.toml"])
        .current_dir(repo())
        .env("MICROCAL_SIMD", "avx1024")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("MICROCAL_SIMD=avx1024"),
        "{}",
        stderr(&out)
    );
    let paths = available();
    for missing in ["avx2", "avx512"]
        .iter()
        .filter(|p| !paths.contains(&p.to_string()))
    {
        let out = Command::new(env!("CARGO_BIN_EXE_microcal-run"))
            .args(["--plan", "experiments/quickstart.toml"])
            .current_dir(repo())
            .env("MICROCAL_SIMD", missing)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("does not support"),
            "{}",
            stderr(&out)
        );
    }
}
