//! `--rerun-failed`: only the jobs whose rows say failed or diverged run again; their rows
//! are replaced, ok rows are untouched, and nothing is duplicated.

mod common;

use std::path::Path;

use common::*;
use microcal::results::{ResultsTable, Row};

/// Rewrites the rows of `ids` with status `status`, as a job that failed would have left them.
pub fn mark(table: &Path, ids: &[&str], status: &str) {
    let t = ResultsTable::new(table);
    let (_, rows) = t.read().unwrap();
    for row in rows
        .into_iter()
        .filter(|r| ids.contains(&r.get("job_id").unwrap()))
    {
        let mut failed = Row::default();
        for (c, v) in &row.columns {
            failed.push(c.clone(), v.clone());
        }
        failed.push("status", status);
        failed.push("error", "node lost (simulated)");
        t.upsert(&failed).unwrap();
    }
}

#[test]
fn only_failed_and_diverged_jobs_run_again_and_their_rows_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let table = quickstart_table(dir.path(), 2);
    let before = numbers(&table);
    let ids: Vec<&str> = before.keys().map(String::as_str).collect();
    assert_eq!(ids.len(), 4);
    mark(&table, &ids[..1], "failed");
    mark(&table, &ids[1..2], "diverged");
    let t = table.to_str().unwrap();
    let args = [
        "experiments/quickstart.toml",
        "--results",
        t,
        "--set",
        "train.epochs=2",
    ];

    let plain = microcal_run(&args);
    assert!(
        stdout(&plain).contains("4 jobs, 0 run"),
        "without the flag: {}",
        stdout(&plain)
    );

    let mut with_flag = args.to_vec();
    with_flag.push("--rerun-failed");
    let plan = microcal_run(&[&with_flag[..], &["--plan"]].concat());
    assert!(stdout(&plan).contains("2 to run"), "{}", stdout(&plan));
    let rerun = microcal_run(&with_flag);
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert!(
        stdout(&rerun).contains("4 jobs, 2 run, 2 already"),
        "{}",
        stdout(&rerun)
    );
    let after = numbers(&table);
    assert_eq!(
        after, before,
        "the same numbers, statuses ok again, one row per job"
    );

    let again = microcal_run(&with_flag);
    assert!(
        stdout(&again).contains("4 jobs, 0 run"),
        "{}",
        stdout(&again)
    );
    let both = microcal_run(&[&with_flag[..], &["--force"]].concat());
    assert_eq!(
        both.status.code(),
        Some(2),
        "--force and --rerun-failed conflict"
    );
}
