//! What cannot be done is refused when the file is read, naming the key: control characters
//! in labels, per-job keys that cannot vary, absurd sizes; and what people open is escaped.

mod common;

use std::fs;

use common::*;
use microcal::results::{ResultsTable, Row};

const BASE: &str = "[data]\nsource = \"synthetic\"\nsynthetic_train_per_class = 10\nsynthetic_test_per_class = 5\n[model]\nkind = \"baseline\"\n";

fn refused(text: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.toml");
    fs::write(&file, text).unwrap();
    let mut args = vec!["--plan", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = microcal_run(&args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "accepted:\n{text}\n{}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("e.toml") || err.contains("--set"), "{err}");
    err
}

#[test]
fn labels_with_control_characters_are_refused_naming_the_key() {
    let err = refused(&format!("name = \"two\\nlines\"\n{BASE}"), &[]);
    assert!(
        err.contains("`name`") && err.contains("control character"),
        "{err}"
    );
    let err = refused(
        &format!("name = \"ok\"\ndescription = \"a\\rb\"\n{BASE}"),
        &[],
    );
    assert!(err.contains("`description`"), "{err}");
}

#[test]
fn keys_that_cannot_vary_between_jobs_are_refused_in_grids_searches_and_set() {
    for (key, value) in [
        ("output.results", "[\"a.csv\", \"b.csv\"]"),
        (
            "output",
            "[{ results = \"a.csv\" }, { results = \"b.csv\" }]",
        ),
        ("name", "[\"a\", \"b\"]"),
        ("launcher.slurm.time", "[\"1:00:00\", \"2:00:00\"]"),
        ("extends", "[\"a.toml\"]"),
    ] {
        let err = refused(
            &format!("name = \"g\"\n{BASE}[grid]\n\"{key}\" = {value}\n"),
            &[],
        );
        assert!(
            err.contains(&format!("`{key}`")) && err.contains("cannot be swept"),
            "{err}"
        );
    }
    let search = format!(
        "name = \"s\"\n{BASE}[train]\nvalidation_fraction = 0.2\n[search]\ntrials = 2\n[search.space]\n\"output.results\" = {{ choice = [\"a.csv\", \"b.csv\"] }}\n"
    );
    let err = refused(&search, &[]);
    assert!(
        err.contains("search.space.\"output.results\"") && err.contains("cannot be searched"),
        "{err}"
    );
    let err = refused(
        &format!("name = \"x\"\n{BASE}"),
        &["--set", "extends=base.toml"],
    );
    assert!(err.contains("extends"), "{err}");
}

#[test]
fn a_file_that_expands_to_too_many_jobs_is_refused_before_expanding() {
    let values: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let axis = values.join(", ");
    let text = format!(
        "name = \"huge\"\n{BASE}[grid]\n\"data.synthetic_seed\" = [{axis}]\n\"data.split_seed\" = [{axis}]\n"
    );
    let err = refused(&text, &[]);
    assert!(
        err.contains("1000000 combinations") && err.contains("at most 100000"),
        "{err}"
    );
    let seeds: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
    let text = format!(
        "name = \"many-seeds\"\n{BASE}[train]\nseeds = [{}]\n[grid]\n\"data.synthetic_seed\" = [{}]\n",
        seeds.join(", "),
        values[..20].join(", ")
    );
    let err = refused(&text, &[]);
    assert!(err.contains("200000 jobs"), "{err}");
}

#[test]
fn synthetic_patches_are_bounded_by_what_the_generator_is_for() {
    let err = refused(
        &format!("name = \"big\"\n{BASE}"),
        &["--set", "data.image_size=300"],
    );
    assert!(
        err.contains("`data.image_size`") && err.contains("at most 256"),
        "{err}"
    );
}

#[test]
fn report_cells_are_escaped_for_spreadsheets_and_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.csv");
    let table = ResultsTable::new(&path);
    for (experiment, auc) in [
        ("=HYPERLINK(\"http://x\",\"y\")", "0.9"),
        ("a|b <script>", "0.8"),
    ] {
        let mut row = Row::default();
        for (c, v) in [("time", "t"), ("experiment", experiment), ("file", "f")] {
            row.push(c, v);
        }
        row.push("job_id", format!("id{auc}"));
        row.push("status", "ok");
        row.push("auc", auc);
        table.append(&row).unwrap();
    }
    let on_disk = fs::read_to_string(&path).unwrap();
    assert!(on_disk.contains("\"'=HYPERLINK("), "{on_disk}");
    let report = |format: &str| {
        let out = microcal(&[
            "report",
            "--results",
            path.to_str().unwrap(),
            "--by",
            "experiment",
            "--format",
            format,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let csv = report("csv");
    assert!(csv.contains("\"'=HYPERLINK("), "{csv}");
    let md = report("markdown");
    assert!(md.contains("a\\|b &lt;script&gt;"), "{md}");
    assert!(!md.contains("<script>"), "{md}");
}
