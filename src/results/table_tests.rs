//! Tests of the results table: appends, rewrites, refusals and recovery from killed runs.

use super::*;

#[test]
fn union_header_upsert_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let table = ResultsTable::new(dir.path().join("sub/results.csv"));
    table
        .upsert(&full_row(
            "a",
            &[("auc", "0.9"), ("model.wavelet.family", "db5")],
        ))
        .unwrap();
    table
        .upsert(&full_row(
            "b",
            &[("auc", "0.8"), ("classifier", "svm, rbf")],
        ))
        .unwrap();
    table.upsert(&full_row("a", &[("auc", "0.95")])).unwrap();
    let (header, rows) = table.read().unwrap();
    assert_eq!(header[5..], ["auc", "model.wavelet.family", "classifier"]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get("classifier"), Some("svm, rbf"));
    assert_eq!(rows[1].get("auc"), Some("0.95"));
    assert_eq!(table.job_ids().unwrap().len(), 2);
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("sub"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_foreign_csv_is_refused_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.csv");
    fs::write(&path, "x,y\n1,2\n").unwrap();
    let table = ResultsTable::new(&path);
    for err in [
        table.upsert(&full_row("a", &[])).unwrap_err(),
        table.append(&full_row("a", &[])).unwrap_err(),
    ] {
        let text = err.to_string();
        assert!(
            text.contains("line 1 is not a complete microcal header"),
            "{text}"
        );
        assert!(text.contains("`job_id`"), "{text}");
    }
    assert_eq!(fs::read_to_string(&path).unwrap(), "x,y\n1,2\n");
}

/// A row with the required columns.
fn full_row(id: &str, extra: &[(&str, &str)]) -> Row {
    let mut r = Row::default();
    for c in ["time", "experiment", "file"] {
        r.push(c, "x");
    }
    r.push("job_id", id);
    r.push("status", "ok");
    for (c, v) in extra {
        r.push(*c, *v);
    }
    r
}

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&fs::metadata(path).unwrap())
}

#[cfg(unix)]
#[test]
fn appends_in_place_and_rewrites_only_for_new_columns() {
    let dir = tempfile::tempdir().unwrap();
    let table = ResultsTable::new(dir.path().join("results.csv"));
    table.append(&full_row("a", &[("auc", "0.9")])).unwrap();
    let first = inode(&table.path);
    table.append(&full_row("b", &[("auc", "0.8")])).unwrap();
    assert_eq!(inode(&table.path), first, "appended in place");
    table
        .append(&full_row("c", &[("auc", "0.7"), ("new", "1")]))
        .unwrap();
    assert_ne!(inode(&table.path), first, "rewritten for a new column");
    let (header, rows) = table.read().unwrap();
    assert_eq!(header.last().map(String::as_str), Some("new"));
    let ids: Vec<_> = rows.iter().map(|r| r.get("job_id").unwrap()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(rows[0].get("new"), None);
}

#[test]
fn a_partial_last_line_is_ignored_then_cut_off_by_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let table = ResultsTable::new(dir.path().join("results.csv"));
    table.append(&full_row("a", &[("auc", "0.9")])).unwrap();
    let mut text = fs::read_to_string(&table.path).unwrap();
    text.push_str("2026-01-01,x,x,half-writ");
    fs::write(&table.path, text).unwrap();
    assert_eq!(table.job_ids().unwrap().len(), 1, "the fragment is no row");
    table.append(&full_row("b", &[("auc", "0.8")])).unwrap();
    let (_, rows) = table.read().unwrap();
    let ids: Vec<_> = rows.iter().map(|r| r.get("job_id").unwrap()).collect();
    assert_eq!(ids, ["a", "b"]);
    // A whole row without its line end (an editor's doing) is a row, and stays one.
    let text = fs::read_to_string(&table.path).unwrap();
    fs::write(&table.path, text.trim_end()).unwrap();
    assert_eq!(table.job_ids().unwrap().len(), 2);
    table.append(&full_row("c", &[("auc", "0.7")])).unwrap();
    let text = fs::read_to_string(&table.path).unwrap();
    assert_eq!(table.job_ids().unwrap().len(), 3, "{text}");
}

#[cfg(unix)]
#[test]
fn a_symlinked_table_is_written_through_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.csv");
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    ResultsTable::new(&real)
        .append(&full_row("a", &[]))
        .unwrap();
    let via_link = ResultsTable::new(&link);
    via_link.append(&full_row("b", &[("auc", "1")])).unwrap();
    via_link.upsert(&full_row("c", &[])).unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(ResultsTable::new(&real).job_ids().unwrap().len(), 3);
}

#[cfg(unix)]
#[test]
fn a_fifo_or_folder_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.csv");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let err = ResultsTable::new(&fifo).job_ids().unwrap_err().to_string();
    assert!(err.contains("named pipe"), "{err}");
    let err = ResultsTable::new(dir.path())
        .read()
        .unwrap_err()
        .to_string();
    assert!(err.contains("a folder"), "{err}");
}

#[test]
fn a_repeated_header_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let table = ResultsTable::new(dir.path().join("results.csv"));
    table.append(&full_row("a", &[])).unwrap();
    let text = fs::read_to_string(&table.path).unwrap();
    let header = text.lines().next().unwrap().to_string();
    fs::write(&table.path, format!("{text}{header}\n")).unwrap();
    let err = table.read().unwrap_err().to_string();
    assert!(err.contains("line 3 repeats the header"), "{err}");
}

#[test]
fn temporaries_of_dead_runs_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let table = ResultsTable::new(dir.path().join("results.csv"));
    // No process has pid u32::MAX - 1; pid 1 always runs.
    let stale = temporary_path(&table.path, u32::MAX - 1);
    let live = temporary_path(&table.path, 1);
    fs::write(&stale, "x").unwrap();
    fs::write(&live, "x").unwrap();
    table.append(&full_row("a", &[])).unwrap();
    assert!(!stale.exists());
    assert!(live.exists());
}

#[test]
fn a_row_cut_inside_its_last_field_is_no_row_and_its_job_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let table = ResultsTable::new(dir.path().join("results.csv"));
    table.append(&full_row("a", &[("auc", "0.9")])).unwrap();
    table
        .append(&full_row("b", &[("microcal_version", "0.1.0")]))
        .unwrap();
    let whole = fs::read(&table.path).unwrap();
    // Every cut of the last row's final bytes (its check, or further into the row) is
    // caught, as `truncate -s -N` or a short write on a full disk leaves it.
    for cut in 2..12 {
        fs::write(&table.path, &whole[..whole.len() - cut]).unwrap();
        let ids = table.job_ids().unwrap();
        assert_eq!(ids.len(), 1, "cut {cut}: {ids:?}");
        assert!(ids.contains("a"));
    }
    // The next append cuts the fragment off and the job's row is written again.
    table
        .append(&full_row("b", &[("microcal_version", "0.1.0")]))
        .unwrap();
    let (_, rows) = table.read().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].get("microcal_version"), Some("0.1.0"));
    // Only the line end missing: the row is whole, and stays.
    fs::write(&table.path, &whole[..whole.len() - 1]).unwrap();
    assert_eq!(table.job_ids().unwrap().len(), 2);
}

#[test]
fn rows_written_before_checks_still_read_and_gain_one_on_the_next_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.csv");
    fs::write(
        &path,
        "time,experiment,file,job_id,status,auc\nt,e,f,old,ok,0.5\n",
    )
    .unwrap();
    let table = ResultsTable::new(&path);
    assert_eq!(table.job_ids().unwrap().len(), 1);
    table.append(&full_row("new", &[("auc", "0.7")])).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.lines().next().unwrap().ends_with(",row_check"),
        "{text}"
    );
    let (header, rows) = table.read().unwrap();
    assert!(!header.iter().any(|h| h == "row_check"), "internal column");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get("auc"), Some("0.5"));
}

#[test]
fn an_edited_row_is_an_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let table = ResultsTable::new(dir.path().join("results.csv"));
    table.append(&full_row("a", &[("auc", "0.9")])).unwrap();
    table.append(&full_row("b", &[("auc", "0.8")])).unwrap();
    let text = fs::read_to_string(&table.path).unwrap();
    fs::write(&table.path, text.replacen("0.9", "0.99", 1)).unwrap();
    let err = table.read().unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("row_check"), "{err}");
}

#[test]
fn formula_cells_are_escaped_on_disk_and_read_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let table = ResultsTable::new(dir.path().join("results.csv"));
    let formula = "=HYPERLINK(\"http://evil\",\"x\")";
    table
        .append(&full_row("a", &[("experiment", formula), ("loss", "-0.5")]))
        .unwrap();
    let text = fs::read_to_string(&table.path).unwrap();
    assert!(text.contains("\"'=HYPERLINK("), "{text}");
    assert!(text.contains(",-0.5,"), "numbers stay numbers: {text}");
    let (_, rows) = table.read().unwrap();
    assert_eq!(rows[0].get("experiment"), Some(formula));
    assert_eq!(rows[0].get("loss"), Some("-0.5"));
}
