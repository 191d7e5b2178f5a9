//! Which jobs a table holds, without reading it whole: `<table>.index` beside the table lists
//! each row's job id, status and byte offset, for a prefix of the table that was read and
//! checked (every row's `row_check`) when the index was written. Planning a sweep, and every
//! search round, asks only this; at 50,000 rows reading the whole table costs most of a
//! second (`microcal bench table`), the index a few milliseconds.
//!
//! Nothing that writes the table needs to know: the index records the table's inode, length
//! and hashes of its first 4 kB and of the 256 bytes before the indexed length. Appends
//! keep all of these, so only the rows after the indexed length are read (and checked) and
//! the index is brought up to date; a rewrite (a new column, `--force`, a merge, an editor
//! saving a new file) changes the inode or the hashes, and the table is read whole once
//! more. An index that is missing, damaged or of another version is rebuilt the same way.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::cells::unescape_csv;
use super::row_check::ROW_CHECK;
use super::ResultsError;

const MAGIC: &str = "microcal-index 1";
const HEAD: u64 = 4096;
const TAIL: u64 = 256;

/// One row of the table: its job id, status and where its line starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub status: String,
    pub offset: u64,
}

/// What the index knows the table by.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    head: String,
    tail: String,
}

/// `<table>.index`.
pub fn index_path(table: &Path) -> PathBuf {
    let mut name = table.file_name().unwrap_or_default().to_os_string();
    name.push(".index");
    table.with_file_name(name)
}

fn read_err(path: &Path, message: String) -> ResultsError {
    ResultsError::Read {
        path: path.to_path_buf(),
        message,
    }
}

#[cfg(unix)]
fn inode(meta: &fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &fs::Metadata) -> u64 {
    0
}

fn hash_range(file: &mut File, start: u64, len: u64) -> std::io::Result<String> {
    let mut bytes = vec![0; len as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut bytes)?;
    Ok(Sha256::digest(&bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The stamp of `file` as if it ended at `len`.
fn stamp(file: &mut File, inode: u64, len: u64) -> std::io::Result<Stamp> {
    Ok(Stamp {
        inode,
        len,
        head: hash_range(file, 0, len.min(HEAD))?,
        tail: hash_range(file, len.saturating_sub(TAIL), len.min(TAIL))?,
    })
}

fn load(path: &Path) -> Option<(Stamp, Vec<Entry>)> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let mut first = lines.next()?.strip_prefix(MAGIC)?.split_whitespace();
    let stamp = Stamp {
        inode: first.next()?.parse().ok()?,
        len: first.next()?.parse().ok()?,
        head: first.next()?.to_string(),
        tail: first.next()?.to_string(),
    };
    let mut entries = Vec::new();
    for line in lines {
        let mut parts = line.split(' ');
        entries.push(Entry {
            id: parts.next()?.to_string(),
            status: parts.next()?.to_string(),
            offset: parts.next()?.parse().ok()?,
        });
    }
    Some((stamp, entries))
}

/// Writes the index whole (see `write_whole`); a failure only costs speed.
fn save(path: &Path, stamp: &Stamp, entries: &[Entry]) {
    let mut text = format!(
        "{MAGIC} {} {} {} {}\n",
        stamp.inode, stamp.len, stamp.head, stamp.tail
    );
    for e in entries {
        text.push_str(&format!("{} {} {}\n", e.id, e.status, e.offset));
    }
    let _ = super::write_whole(path, text.as_bytes());
}

/// Reads the rows in `bytes` (the table from `base` on, without its header line): their
/// entries, each row's check verified. Returns them with the length of whole lines read.
fn scan(
    table: &Path,
    header: &[String],
    bytes: &[u8],
    base: u64,
) -> Result<(Vec<Entry>, u64), ResultsError> {
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(id_at), Some(status_at)) = (column("job_id"), column("status")) else {
        return Err(read_err(
            table,
            "its header lacks job_id or status; it is not a microcal results table".into(),
        ));
    };
    let check_at = column(ROW_CHECK);
    // Columns in name order, as `row_check` hashes them.
    let mut order: Vec<usize> = (0..header.len()).filter(|&i| Some(i) != check_at).collect();
    order.sort_by(|&a, &b| header[a].cmp(&header[b]));
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::StringRecord::new();
    let mut entries = Vec::new();
    let mut indexed = 0u64;
    loop {
        let start = reader.position().byte();
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(read_err(table, e.to_string())),
        }
        let at = base + start;
        if record.iter().eq(header.iter().map(String::as_str)) {
            return Err(read_err(
                table,
                format!("the line at byte {at} repeats the header; remove it (rows are never written there by microcal)"),
            ));
        }
        let whole_line = reader.position().byte() as usize <= complete;
        if let Some(check) = check_at
            .and_then(|i| record.get(i))
            .filter(|c| !c.is_empty())
        {
            let mut hash = Sha256::new();
            for &i in &order {
                let value = unescape_csv(record.get(i).unwrap_or(""));
                if !value.is_empty() {
                    hash.update(header[i].as_bytes());
                    hash.update([0x1f]);
                    hash.update(value.as_bytes());
                    hash.update([0x1e]);
                }
            }
            let digest = hash.finalize();
            let matches = check.len() == 8
                && (0..4).all(|k| {
                    u8::from_str_radix(&check[2 * k..2 * k + 2], 16).ok() == Some(digest[k])
                });
            if !matches {
                if !whole_line {
                    break; // a last line cut short: its job has no row
                }
                return Err(read_err(
                    table,
                    format!("the row at byte {at}: its `{ROW_CHECK}` does not match its values, so the row was edited or damaged after microcal wrote it; restore it, or empty its `{ROW_CHECK}` cell to accept the values as they are"),
                ));
            }
        } else if !whole_line && (record.len() < header.len() || check_at.is_some()) {
            break; // a last line cut short: too few fields, or its check cut off
        }
        entries.push(Entry {
            id: unescape_csv(record.get(id_at).unwrap_or("")).to_string(),
            status: unescape_csv(record.get(status_at).unwrap_or("")).to_string(),
            offset: at,
        });
        if whole_line {
            indexed = reader.position().byte();
        }
    }
    Ok((entries, indexed))
}

/// Every row's entry, from the index where it still describes the table, else from the
/// table (then the index is written). An absent table has no rows.
pub fn entries(table: &Path) -> Result<Vec<Entry>, ResultsError> {
    let io = |e: std::io::Error| read_err(table, e.to_string());
    let mut file = match File::open(table) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    let (inode, len) = (inode(&meta), meta.len());
    let index = index_path(table);
    // The header line alone first: the rows come from the index where it still holds.
    let mut head = Vec::new();
    std::io::BufRead::read_until(&mut std::io::BufReader::new(&mut file), b'\n', &mut head)
        .map_err(io)?;
    let header_end = head.len() as u64;
    let header: Vec<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(head.as_slice())
        .records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(str::to_string).collect())
        .unwrap_or_default();
    if header.is_empty() {
        return Ok(Vec::new());
    }
    let (mut kept, from) = match load(&index) {
        Some((old, entries))
            if old.inode == inode
                && old.len >= header_end
                && old.len <= len
                && stamp(&mut file, inode, old.len).ok().as_ref() == Some(&old) =>
        {
            (entries, old.len)
        }
        _ => (Vec::new(), header_end),
    };
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(from)).map_err(io)?;
    file.read_to_end(&mut bytes).map_err(io)?;
    let (new, indexed) = scan(table, &header, &bytes, from)?;
    let covered = from + indexed;
    let whole: Vec<Entry> = new.iter().filter(|e| e.offset < covered).cloned().collect();
    let changed = !whole.is_empty() || from == header_end;
    kept.extend(whole);
    if changed {
        if let Ok(s) = stamp(&mut file, inode, covered) {
            save(&index, &s, &kept);
        }
    }
    kept.extend(new.into_iter().filter(|e| e.offset >= covered));
    Ok(kept)
}

/// Ids of the table's jobs (with `only_ok`, those whose row says ok).
pub fn ids(table: &Path, only_ok: bool) -> Result<HashSet<String>, ResultsError> {
    Ok(entries(table)?
        .into_iter()
        .filter(|e| !only_ok || e.status == "ok")
        .map(|e| e.id)
        .collect())
}

/// The rows of the jobs in `wanted` (with every value, as `ResultsTable::read` gives them),
/// read at their offsets rather than with the whole table: what a search round needs.
pub fn rows_of(table: &Path, wanted: &HashSet<String>) -> Result<Vec<super::Row>, ResultsError> {
    let io = |e: std::io::Error| read_err(table, e.to_string());
    let entries: Vec<Entry> = entries(table)?
        .into_iter()
        .filter(|e| wanted.contains(&e.id))
        .collect();
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut file = File::open(table).map_err(io)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(std::io::BufReader::new(&mut file));
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| read_err(table, e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::with_capacity(entries.len());
    let mut record = csv::StringRecord::new();
    for entry in entries {
        let mut position = csv::Position::new();
        position.set_byte(entry.offset);
        reader
            .seek(position)
            .map_err(|e| read_err(table, e.to_string()))?;
        if !reader
            .read_record(&mut record)
            .map_err(|e| read_err(table, e.to_string()))?
        {
            continue;
        }
        let columns = header
            .iter()
            .zip(record.iter())
            .filter(|(h, v)| *h != ROW_CHECK && !v.is_empty())
            .map(|(h, v)| (h.clone(), unescape_csv(v).to_string()))
            .collect();
        rows.push(super::Row { columns });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{ResultsTable, Row};

    fn row(id: &str, status: &str) -> Row {
        let mut r = Row::default();
        for (k, v) in [
            ("time", "2026-12-02T00:00:00Z"),
            ("experiment", "e"),
            ("file", "e.toml"),
            ("job_id", id),
            ("status", status),
            ("auc", "0.5"),
        ] {
            r.push(k, v);
        }
        r
    }

    #[test]
    fn the_index_follows_appends_rewrites_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let table = ResultsTable::new(&path);
        assert!(ids(&path, false).unwrap().is_empty(), "no table, no rows");
        table.append(&row("a", "ok")).unwrap();
        table.append(&row("b", "failed")).unwrap();
        assert_eq!(ids(&path, true).unwrap(), HashSet::from(["a".to_string()]));
        let index = fs::read_to_string(index_path(&path)).unwrap();
        assert_eq!(index.lines().count(), 3, "{index}");

        // An append is read from the indexed length on, and indexed.
        table.append(&row("c", "ok")).unwrap();
        assert_eq!(ids(&path, false).unwrap().len(), 3);
        assert_eq!(
            fs::read_to_string(index_path(&path))
                .unwrap()
                .lines()
                .count(),
            4
        );

        // A rewrite (a replaced row) is noticed, whatever the index says.
        let mut replaced = row("b", "ok");
        replaced.push("auc", "0.9");
        table.upsert(&replaced).unwrap();
        assert_eq!(ids(&path, true).unwrap().len(), 3);

        // A damaged index is rebuilt; a row damaged by hand is an error naming the table.
        fs::write(index_path(&path), "microcal-index 1 garbage\nzz").unwrap();
        assert_eq!(ids(&path, false).unwrap().len(), 3);
        let text = fs::read_to_string(&path)
            .unwrap()
            .replacen(",0.9,", ",0.8,", 1);
        fs::write(&path, text).unwrap();
        let err = ids(&path, false).unwrap_err().to_string();
        assert!(err.contains("row_check") && err.contains("t.csv"), "{err}");
    }

    #[test]
    fn a_cut_last_line_is_no_row_and_is_not_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let table = ResultsTable::new(&path);
        table.append(&row("a", "ok")).unwrap();
        table.append(&row("b", "ok")).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, &text[..text.len() - 3]).unwrap();
        assert_eq!(ids(&path, false).unwrap(), HashSet::from(["a".to_string()]));
        let (_, rows) = table.read().unwrap();
        assert_eq!(rows.len(), 1, "the same as reading the table whole");
        // The next append cuts the fragment off; then both are there.
        table.append(&row("c", "ok")).unwrap();
        let all = ids(&path, false).unwrap();
        assert_eq!(all, HashSet::from(["a".to_string(), "c".to_string()]));
        let picked = rows_of(&path, &HashSet::from(["c".to_string()])).unwrap();
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].get("job_id"), Some("c"));
        assert_eq!(picked[0].get("auc"), Some("0.5"));
    }
}
