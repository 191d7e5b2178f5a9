//! The results table: a CSV file with one row per job, keyed by job id.
//!
//! Rows from different experiments carry different parameter columns, so the header is the
//! union of all rows' columns (new columns are appended). A finished job's row is appended
//! as one line under an exclusive lock, reading only the header, so a sweep costs time linear
//! in its jobs however large the table is. Only when the header gains a column is the file
//! rewritten, through a temporary file and an atomic rename. Either way an interrupted run
//! or a second runner never leaves a half-written table: a partial last line from a killed
//! append is cut off by the next one. Every row ends with a check of its values
//! (`row_check`), so a row cut inside its last field is told from a whole one; cells that a
//! spreadsheet would run as formulas are written with a leading `'` (see `cells`), and read
//! back without it.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::cells::{escape_csv, unescape_csv};
use super::row_check::{is_whole, row_check, ROW_CHECK};
use super::ResultsError;

/// One row: ordered (column, value) pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub columns: Vec<(String, String)>,
}

impl Row {
    pub fn push(&mut self, column: impl Into<String>, value: impl ToString) {
        let column = column.into();
        let value = value.to_string();
        match self.columns.iter_mut().find(|(c, _)| *c == column) {
            Some(slot) => slot.1 = value,
            None => self.columns.push((column, value)),
        }
    }

    pub fn get(&self, column: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, v)| v.as_str())
    }
}

/// Columns every microcal table has; a header without them is not a microcal header.
pub const REQUIRED_COLUMNS: &[&str] = &["time", "experiment", "file", "job_id", "status"];

#[derive(Debug, Clone)]
pub struct ResultsTable {
    pub path: PathBuf,
}

impl ResultsTable {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Header and rows; an absent file is an empty table.
    pub fn read(&self) -> Result<(Vec<String>, Vec<Row>), ResultsError> {
        read_table(&self.file()?)
    }

    /// Ids of every job already in the table.
    pub fn job_ids(&self) -> Result<HashSet<String>, ResultsError> {
        self.done_ids(false)
    }

    /// Ids of the jobs that count as done: every job in the table, or with `only_ok` (for
    /// `--rerun-failed`) only those whose row says `ok`, so that failed and diverged jobs
    /// run again.
    ///
    /// Reads `<table>.index` and the rows appended since it was written (see `job_index`),
    /// not the whole table, and brings the index up to date.
    pub fn done_ids(&self, only_ok: bool) -> Result<HashSet<String>, ResultsError> {
        super::job_index::ids(&self.file()?, only_ok)
    }

    /// The rows of these jobs, read at their offsets (see `job_index`) rather than whole.
    pub fn rows_of(&self, ids: &HashSet<String>) -> Result<Vec<Row>, ResultsError> {
        super::job_index::rows_of(&self.file()?, ids)
    }

    /// Adds a new job's row. When the header already has every column of the row (every
    /// row after an experiment's first), this appends one line under the lock, reading
    /// nothing but the header: O(1) in the table's size. Otherwise the table is rewritten
    /// with the new columns, atomically.
    pub fn append(&self, row: &Row) -> Result<(), ResultsError> {
        let path = self.file()?;
        self.locked(&path, || {
            let header = read_header(&path)?;
            let fits = header.last().is_some_and(|c| c == ROW_CHECK)
                && row.columns.iter().all(|(c, _)| header.contains(c));
            if fits {
                append_line(&path, &header, row)
            } else {
                let (mut header, mut rows) = read_table(&path)?;
                add_columns(&mut header, row);
                rows.push(row.clone());
                write_table(&path, &header, &rows)
            }
        })
    }

    /// Makes the header hold `columns` (in their order, after its own), rewriting the table
    /// only if it lacks some; an absent table gets a header line alone.
    pub fn ensure_columns(&self, columns: &[String]) -> Result<(), ResultsError> {
        let path = self.file()?;
        let header = read_header(&path)?;
        if !header.is_empty() && columns.iter().all(|c| header.contains(c)) {
            return Ok(());
        }
        self.update(|header, _| -> Result<(), ResultsError> {
            for c in columns {
                if !header.contains(c) {
                    header.push(c.clone());
                }
            }
            Ok(())
        })
    }

    /// Adds `row`, replacing any row with the same `job_id` (a forced re-run), atomically.
    pub fn upsert(&self, row: &Row) -> Result<(), ResultsError> {
        self.update(|header, rows| {
            let id = row.get("job_id");
            rows.retain(|r| id.is_none() || r.get("job_id") != id);
            add_columns(header, row);
            rows.push(row.clone());
            Ok(())
        })
    }

    /// Reads the table under its lock, lets `change` edit header and rows, and writes the
    /// result atomically; an error from `change` leaves the file as it was.
    pub fn update<E: From<ResultsError>>(
        &self,
        change: impl FnOnce(&mut Vec<String>, &mut Vec<Row>) -> Result<(), E>,
    ) -> Result<(), E> {
        let path = self.file()?;
        let mut outcome = None;
        self.locked(&path, || {
            let (mut header, mut rows) = read_table(&path)?;
            match change(&mut header, &mut rows) {
                Ok(()) => write_table(&path, &header, &rows),
                Err(e) => {
                    outcome = Some(e);
                    Ok(())
                }
            }
        })?;
        outcome.map_or(Ok(()), Err)
    }

    /// The file the table lives in: symbolic links resolved (so that every process locks
    /// and writes the real table), and refused unless it is a regular file or absent.
    pub fn file(&self) -> Result<PathBuf, ResultsError> {
        let refuse = |path: &Path, what: String| ResultsError::NotATable {
            path: path.to_path_buf(),
            what,
        };
        let target = match fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                fs::canonicalize(&self.path).map_err(|e| {
                    refuse(
                        &self.path,
                        format!("a symbolic link that leads nowhere ({e})"),
                    )
                })?
            }
            Ok(_) => self.path.clone(),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(self.path.clone()),
            Err(e) => return Err(refuse(&self.path, format!("unreadable ({e})"))),
        };
        let meta = fs::metadata(&target).map_err(|e| refuse(&target, e.to_string()))?;
        let kind = meta.file_type();
        if kind.is_file() {
            return Ok(target);
        }
        let what = if kind.is_dir() {
            "a folder"
        } else if is_fifo(&kind) {
            "a named pipe (FIFO)"
        } else {
            "not a regular file"
        };
        Err(refuse(&target, what.to_string()))
    }

    /// Runs `work` holding the exclusive lock of the table at `path`; first removes
    /// temporary files that killed runs left beside it.
    fn locked(
        &self,
        path: &Path,
        work: impl FnOnce() -> Result<(), ResultsError>,
    ) -> Result<(), ResultsError> {
        let write_err = |cause| ResultsError::Write {
            path: path.to_path_buf(),
            cause,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(write_err)?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(path))
            .map_err(write_err)?;
        lock.lock().map_err(write_err)?;
        remove_stale_temporaries_once(path);
        let result = work();
        lock.unlock().map_err(write_err)?;
        result
    }
}

#[cfg(unix)]
fn is_fifo(kind: &fs::FileType) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(kind)
}

#[cfg(not(unix))]
fn is_fifo(_: &fs::FileType) -> bool {
    false
}

fn add_columns(header: &mut Vec<String>, row: &Row) {
    for (column, _) in &row.columns {
        if !header.contains(column) {
            header.push(column.clone());
        }
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// `results.csv.tmp<pid>`: where a rewrite is written before it replaces the table.
fn temporary_path(path: &Path, pid: u32) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{pid}"));
    path.with_file_name(name)
}

/// [`remove_stale_temporaries`] the first time this process writes the table at `path`:
/// a killed run's leftovers are found on the next run's first write, and later appends do
/// not list the folder again.
fn remove_stale_temporaries_once(path: &Path) {
    static CLEANED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut cleaned = CLEANED.lock().unwrap_or_else(|p| p.into_inner());
    if !cleaned.iter().any(|p| p == path) {
        cleaned.push(path.to_path_buf());
        remove_stale_temporaries(path);
    }
}

/// Removes the temporary files of processes that no longer run (killed mid-rewrite, or on a
/// full disk), warning about each. Called under the lock, so no live writer is touched.
fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.tmp", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && crate::host::process_alive(pid) == Some(false) {
            match fs::remove_file(entry.path()) {
                Ok(()) => tracing::warn!(
                    "removed {}, left by a run that was killed",
                    entry.path().display()
                ),
                Err(e) => tracing::warn!("cannot remove stale {}: {e}", entry.path().display()),
            }
        }
    }
}

fn read_err(path: &Path, message: String) -> ResultsError {
    ResultsError::Read {
        path: path.to_path_buf(),
        message,
    }
}

/// The header alone (first line); empty for an absent or empty file.
fn read_header(path: &Path) -> Result<Vec<String>, ResultsError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(path, e.to_string())),
    };
    let mut line = String::new();
    BufReader::new(file)
        .read_line(&mut line)
        .map_err(|e| read_err(path, e.to_string()))?;
    let header: Vec<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes())
        .records()
        .next()
        .transpose()
        .map_err(|e| read_err(path, e.to_string()))?
        .map(|r| r.iter().map(str::to_string).collect())
        .unwrap_or_default();
    check_header(path, &header)?;
    Ok(header)
}

/// A non-empty header must hold every required column.
fn check_header(path: &Path, header: &[String]) -> Result<(), ResultsError> {
    if header.is_empty() {
        return Ok(());
    }
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|c| !header.iter().any(|h| h == c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(read_err(
        path,
        format!(
            "line 1 is not a complete microcal header (no {} column{}), so this is not a microcal results table or its header was cut short",
            missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
            if missing.len() > 1 { "s" } else { "" }
        ),
    ))
}

/// The first CSV record in `bytes`, if any.
fn first_record(bytes: &[u8]) -> Option<csv::StringRecord> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
        .records()
        .next()
        .and_then(Result::ok)
}

/// Whether a last line without its line end is a whole row of a table with `header`: every
/// field there, and its check (where the table has checks) present and matching.
fn tail_is_whole(header: &[String], tail: &[u8]) -> bool {
    let Some(record) = first_record(tail) else {
        return false;
    };
    if record.len() < header.len() {
        return false;
    }
    match header.iter().position(|h| h == ROW_CHECK) {
        None => true,
        Some(at) => {
            let check = record.get(at).unwrap_or("");
            !check.is_empty() && is_whole(check, logical_pairs(header, &record))
        }
    }
}

/// A record's (column, value) pairs without the check, as written before escaping.
fn logical_pairs<'a>(
    header: &'a [String],
    record: &'a csv::StringRecord,
) -> impl Iterator<Item = (&'a str, &'a str)> {
    header
        .iter()
        .zip(record.iter())
        .filter(|(h, _)| *h != ROW_CHECK)
        .map(|(h, v)| (h.as_str(), unescape_csv(v)))
}

/// Appends one row as one line: if an interrupted append left a partial last line, it is
/// cut off first (that job has no row and runs again); a whole last row without its line
/// end gets one.
fn append_line(path: &Path, header: &[String], row: &Row) -> Result<(), ResultsError> {
    let write_err = |cause| ResultsError::Write {
        path: path.to_path_buf(),
        cause,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(write_err)?;
    let complete = complete_length(&mut file).map_err(write_err)?;
    let len = file.metadata().map_err(write_err)?.len();
    let mut line = Vec::new();
    if complete != len {
        let mut tail = vec![0u8; (len - complete) as usize];
        file.seek(SeekFrom::Start(complete)).map_err(write_err)?;
        file.read_exact(&mut tail).map_err(write_err)?;
        if !tail_is_whole(header, &tail) {
            tracing::warn!(
                "{}: cut off an incomplete last line left by an interrupted run",
                path.display()
            );
            file.set_len(complete).map_err(write_err)?;
        } else {
            line.push(b'\n');
        }
    }
    line.extend(encode_rows(header, std::slice::from_ref(row))?);
    file.seek(SeekFrom::End(0)).map_err(write_err)?;
    file.write_all(&line).map_err(write_err)?;
    file.sync_all().map_err(write_err)
}

/// Length of the file up to and including its last newline.
fn complete_length(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Rows as CSV lines in the header's column order.
fn encode_rows(header: &[String], rows: &[Row]) -> Result<Vec<u8>, ResultsError> {
    let mut buffer = Vec::new();
    {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(&mut buffer);
        for row in rows {
            let values: BTreeMap<&str, &str> = row
                .columns
                .iter()
                .map(|(c, v)| (c.as_str(), v.as_str()))
                .collect();
            let check = row_check(values.iter().map(|(c, v)| (*c, *v)));
            let record: Vec<std::borrow::Cow<str>> = header
                .iter()
                .map(|h| match h.as_str() {
                    ROW_CHECK => check.as_str().into(),
                    h => escape_csv(values.get(h).copied().unwrap_or("")),
                })
                .collect();
            writer
                .write_record(record.iter().map(|c| c.as_bytes()))
                .map_err(|e| ResultsError::Write {
                    path: PathBuf::new(),
                    cause: std::io::Error::other(e.to_string()),
                })?;
        }
    }
    Ok(buffer)
}

fn read_table(path: &Path) -> Result<(Vec<String>, Vec<Row>), ResultsError> {
    let mut bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(read_err(path, e.to_string())),
    };
    // microcal ends every line it writes; a last line without its end and with too few
    // fields was cut short by a killed append: that job has no row, and the next append
    // removes the fragment. (A whole row that merely lacks its end, as an editor may leave
    // it, is kept.)
    if let Some(end) = bytes.iter().rposition(|&b| b == b'\n') {
        let header: Vec<String> = first_record(&bytes[..end])
            .map(|r| r.iter().map(str::to_string).collect())
            .unwrap_or_default();
        if bytes.len() > end + 1 && !tail_is_whole(&header, &bytes[end + 1..]) {
            tracing::warn!(
                "{}: ignoring a last line that was not written whole (cut short by an interrupted run); its job runs again",
                path.display()
            );
            bytes.truncate(end + 1);
        }
    }
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let raw_header: Vec<String> = reader
        .headers()
        .map_err(|e| read_err(path, e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    check_header(path, &raw_header)?;
    let check_at = raw_header.iter().position(|h| h == ROW_CHECK);
    let header: Vec<String> = raw_header
        .iter()
        .filter(|h| *h != ROW_CHECK)
        .cloned()
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| read_err(path, e.to_string()))?;
        if record.iter().eq(raw_header.iter().map(String::as_str)) {
            let line = record.position().map_or(0, |p| p.line());
            return Err(read_err(
                path,
                format!("line {line} repeats the header; remove it (rows are never written there by microcal)"),
            ));
        }
        let pairs: Vec<(&str, &str)> = logical_pairs(&raw_header, &record).collect();
        let check = check_at.and_then(|i| record.get(i)).unwrap_or("");
        if !is_whole(check, pairs.iter().copied()) {
            let line = record.position().map_or(0, |p| p.line());
            return Err(read_err(
                path,
                format!("line {line}: its `{ROW_CHECK}` does not match its values, so the row was edited or damaged after microcal wrote it; restore it, or empty its `{ROW_CHECK}` cell to accept the values as they are"),
            ));
        }
        let columns = pairs
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| (h.to_string(), v.to_string()))
            .collect();
        rows.push(Row { columns });
    }
    Ok((header, rows))
}

/// Writes the whole table through a temporary file and an atomic rename; the temporary file
/// is removed on every error path.
fn write_table(path: &Path, header: &[String], rows: &[Row]) -> Result<(), ResultsError> {
    let write_err = |cause| ResultsError::Write {
        path: path.to_path_buf(),
        cause,
    };
    let header: Vec<String> = header
        .iter()
        .filter(|h| *h != ROW_CHECK)
        .cloned()
        .chain([ROW_CHECK.to_string()])
        .collect();
    let header = header.as_slice();
    let mut buffer = Vec::new();
    {
        let mut writer = csv::Writer::from_writer(&mut buffer);
        writer
            .write_record(header)
            .map_err(|e| write_err(std::io::Error::other(e.to_string())))?;
    }
    buffer.extend(encode_rows(header, rows)?);
    let tmp = temporary_path(path, std::process::id());
    let written = File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(&buffer)?;
            file.sync_all()
        })
        .and_then(|_| fs::rename(&tmp, path));
    if let Err(cause) = written {
        let _ = fs::remove_file(&tmp);
        return Err(write_err(cause));
    }
    Ok(())
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
