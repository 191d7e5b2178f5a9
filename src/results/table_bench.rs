//! `microcal bench table`: what a finished job's row costs as the table grows.

use std::path::Path;
use std::time::Instant;

use super::{ResultsError, ResultsTable, Row};

/// Timings of the table benchmark.
#[derive(Debug, Clone)]
pub struct TableTimings {
    /// Median milliseconds to append one row to a table of `rows_before` rows.
    pub append_ms: f64,
    pub rows_before: usize,
    /// Seconds to append each thousand rows of a sweep into an empty table, in order.
    pub sweep_s_per_thousand: Vec<f64>,
    /// Median milliseconds to learn which jobs a table of `rows_before` rows holds (what
    /// planning a sweep, and each search round, reads).
    pub plan_ms: f64,
    /// The same without the index: reading every row's id, status and check, and writing
    /// the index (once per rewrite of the table).
    pub cold_ms: f64,
    /// Median milliseconds to read that table whole (what reports read).
    pub read_ms: f64,
}

/// A row shaped like a real one: the required columns, 20 metrics, 60 configuration keys.
fn typical_row(id: usize) -> Row {
    let mut row = Row::default();
    row.push("time", "2026-11-27T09:00:00Z");
    row.push("experiment", "bench");
    row.push("file", "experiments/bench.toml");
    row.push("job_id", format!("{id:016x}"));
    row.push("status", "ok");
    for m in 0..20 {
        row.push(
            format!("metric_{m}"),
            format!("0.{:06}", (id * 7919 + m) % 1_000_000),
        );
    }
    for k in 0..60 {
        row.push(format!("section.key_{k}"), format!("value-{k}"));
    }
    row
}

/// Builds a table of `rows_before` rows in `dir`, times `appends` single-row appends to it,
/// then times a sweep of `sweep_rows` rows appended one by one into a fresh table.
pub fn bench_table(
    dir: &Path,
    rows_before: usize,
    appends: usize,
    sweep_rows: usize,
) -> Result<TableTimings, ResultsError> {
    let big = ResultsTable::new(dir.join("big.csv"));
    big.update(|header, rows| -> Result<(), ResultsError> {
        for (c, _) in &typical_row(0).columns {
            header.push(c.clone());
        }
        rows.extend((0..rows_before).map(typical_row));
        Ok(())
    })?;
    let mut times = Vec::with_capacity(appends);
    for i in 0..appends {
        let row = typical_row(rows_before + i);
        let start = Instant::now();
        big.append(&row)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = |f: &dyn Fn() -> Result<(), ResultsError>| -> Result<f64, ResultsError> {
        let mut t = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            f()?;
            t.push(start.elapsed().as_secs_f64() * 1e3);
        }
        t.sort_by(f64::total_cmp);
        Ok(t[2])
    };
    let cold_ms = median(&|| {
        let _ = std::fs::remove_file(super::index_path(&big.path));
        big.done_ids(false).map(|_| ())
    })?;
    let plan_ms = median(&|| big.done_ids(false).map(|_| ()))?;
    let read_ms = median(&|| big.read().map(|_| ()))?;
    let sweep = ResultsTable::new(dir.join("sweep.csv"));
    let mut per_thousand = Vec::new();
    let mut start = Instant::now();
    for i in 0..sweep_rows {
        sweep.append(&typical_row(i))?;
        if (i + 1) % 1000 == 0 {
            per_thousand.push(start.elapsed().as_secs_f64());
            start = Instant::now();
        }
    }
    Ok(TableTimings {
        append_ms: times.get(times.len() / 2).copied().unwrap_or(f64::NAN),
        rows_before,
        sweep_s_per_thousand: per_thousand,
        plan_ms,
        cold_ms,
        read_ms,
    })
}
