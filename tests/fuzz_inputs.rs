//! Mutated experiment files never crash the runner: a seeded generator rewrites values,
//! drops and repeats lines, cuts files short and changes types, in the committed experiment
//! files and a small synthetic one, and every outcome is an exit status of 0, 2 or 3, never
//! a panic, an abort or a hang, with every error naming the file. The inputs that crashed
//! earlier versions are kept in tests/fixtures/crashing/.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The cases, drawn from microcal's one seeded generator: the same on every run.
struct Cases(microcal::rng::Rng);

impl Cases {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Values that have broken parsers and allocators: zero, negatives, huge counts, the wrong
/// type, not-a-number, empty arrays and strings.
const VALUES: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "-0.0",
    "0.5",
    "3.7",
    "1e9",
    "1e300",
    "-1e300",
    "nan",
    "inf",
    "1000000000",
    "18446744073709551615",
    "9223372036854775807",
    "\"\"",
    "\"x\"",
    "[]",
    "[0]",
    "[1000000000]",
    "[2, 3, 4]",
    "{}",
    "true",
];

/// One mutation of `text`.
fn mutate(text: &str, cases: &mut Cases) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return String::new();
    }
    let i = cases.below(lines.len());
    match cases.below(6) {
        // A value replaced.
        0 | 1 => {
            if let Some((key, _)) = lines[i].split_once('=') {
                lines[i] = format!("{key}= {}", cases.pick(VALUES));
            }
        }
        2 => {
            lines.remove(i);
        }
        3 => {
            let line = lines[i].clone();
            lines.insert(i, line);
        }
        // Cut short anywhere, mid-line included.
        4 => {
            let joined = lines.join("\n");
            let cut = cases.below(joined.len().max(1));
            let mut end = cut;
            while !joined.is_char_boundary(end) {
                end -= 1;
            }
            return joined[..end].to_string();
        }
        _ => {
            let garbage = cases.pick(&["[[", "]", "=", "\"", "x = ", "[data]", "[grid]\nx = [1]"]);
            lines.insert(i, garbage.to_string());
        }
    }
    lines.join("\n") + "\n"
}

/// Runs microcal-run on `file` with `args`, killed after `limit` (a hang fails the test).
fn run_limited(file: &Path, args: &[&str], cwd: &Path, limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_microcal-run"))
        .args(args)
        .arg(file)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let text = fs_text(file);
            panic!("hung for {limit:?} on {}:\n{text}", file.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn fs_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Exit 0, 2 or 3; no panic, no abort; an error names the file.
fn check(out: &Output, file: &Path) {
    let err = stderr(out);
    let text = fs_text(file);
    assert!(
        matches!(out.status.code(), Some(0 | 2 | 3)),
        "status {:?} on {}:\n{text}\n{err}",
        out.status,
        file.display()
    );
    assert!(
        !err.contains("panicked"),
        "panic on {}:\n{text}\n{err}",
        file.display()
    );
    if out.status.code() == Some(2) {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            err.contains(name.as_ref()),
            "the error does not name the file:\n{text}\n{err}"
        );
    }
}

/// Small enough that every mutation that is accepted runs in well under a second.
const SYNTHETIC: &str = "name = \"fuzz\"
[data]
source = \"synthetic\"
split = \"kfold\"
folds = 2
synthetic_train_per_class = 6
synthetic_test_per_class = 3
image_size = 16
[model]
kind = \"wavelet-mlp\"
[model.wavelet]
family = \"haar\"
level = 2
[model.mlp]
hidden = [4]
dropout = 0.1
[train]
epochs = 2
batch_size = 4
validation_fraction = 0.3
seeds = [0]
";

#[test]
fn mutated_experiment_files_never_crash_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Cases(microcal::rng::Rng::new(0x9e37_79b9_7f4a_7c15));
    let mut bases: Vec<(String, String)> = std::fs::read_dir(repo().join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let text = fs_text(&p).replace(
                "../../shared/data/microcal",
                &repo().join("../shared/data/microcal").to_string_lossy(),
            );
            (p.file_stem().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    bases.sort();
    let table = dir.path().join("table.csv");
    let t = table.to_str().unwrap();
    // Mutates a base once or, one time in `twice_in`, twice; writes it; runs microcal-run
    // on it with `args` and checks the outcome.
    let mut try_case = |name: String, base: &str, twice_in: usize, args: &[&str], limit: u64| {
        let mut text = mutate(base, &mut cases);
        if cases.below(twice_in) == 0 {
            text = mutate(&text, &mut cases);
        }
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, &text).unwrap();
        let out = run_limited(&file, args, dir.path(), Duration::from_secs(limit));
        check(&out, &file);
        out.status.code()
    };
    let (mut planned, mut ran) = (0, 0);
    for case in 0..300 {
        let (name, base) = &bases[case % bases.len()];
        try_case(
            format!("case{case:03}_{name}"),
            base,
            3,
            &["--plan", "--results", t],
            30,
        );
        planned += 1;
    }
    // Runs for real: mutations of a tiny synthetic experiment.
    for case in 0..60 {
        let status = try_case(
            format!("run{case:03}"),
            SYNTHETIC,
            2,
            &["--no-progress", "--results", t],
            60,
        );
        ran += usize::from(status == Some(0));
    }
    assert!(planned == 300 && ran > 5, "{ran} of 60 mutated files ran");
}

#[test]
fn inputs_that_crashed_earlier_versions_are_clean_errors() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("table.csv");
    let corpus = repo().join("tests/fixtures/crashing");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let out = run_limited(
            &file,
            &["--no-progress", "--results", table.to_str().unwrap()],
            dir.path(),
            Duration::from_secs(60),
        );
        check(&out, &file);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {}",
            file.display(),
            stderr(&out)
        );
    }
    // One training image per class with a validation hold-out (a panic in the split).
    let data = dir.path().join("data");
    for (split, label) in [("Train", 0), ("Train", 1), ("Test", 0), ("Test", 1)] {
        write_pgm(
            &data.join(format!("{split}/{label}/a_{label}.pgm")),
            16,
            16,
            |y, x| (y * 16 + x) as u8 + 50 * label as u8,
        );
    }
    let file = dir.path().join("one_per_class.toml");
    std::fs::write(
        &file,
        "name = \"one\"\n[data]\nsource = \"folder\"\nroot = \"data\"\nimage_size = 16\n\
         [model]\nkind = \"wavelet-mlp\"\n[model.wavelet]\nfamily = \"haar\"\nlevel = 2\n\
         [train]\nepochs = 2\nvalidation_fraction = 0.5\n",
    )
    .unwrap();
    let out = run_limited(
        &file,
        &["--no-progress", "--results", table.to_str().unwrap()],
        dir.path(),
        Duration::from_secs(60),
    );
    check(&out, &file);
    // Overrides that were misreported or ignored.
    for (set, says) in [
        ("grid.x=[1]", "--set cannot change [grid]"),
        ("train.epoch=5", "unknown field `epoch`"),
    ] {
        let out = microcal_run(&["--plan", "experiments/quickstart.toml", "--set", set]);
        assert_eq!(out.status.code(), Some(2), "{set}");
        assert!(stderr(&out).contains(says), "{set}: {}", stderr(&out));
    }
}
