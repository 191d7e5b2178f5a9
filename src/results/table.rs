//! The results table: a CSV file with one row per job, keyed by job id.
//!
//! Rows from different experiments carry different parameter columns, so the header is the
//! union of all rows' columns (new columns are appended). Every change rewrites the file
//! through a temporary file and an atomic rename, under an exclusive lock, so an interrupted
//! run or a second runner never leaves a half-written table.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

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
        read_table(&self.path)
    }

    /// Ids of every job already in the table.
    pub fn job_ids(&self) -> Result<HashSet<String>, ResultsError> {
        let (_, rows) = self.read()?;
        Ok(rows
            .iter()
            .filter_map(|r| r.get("job_id").map(str::to_string))
            .collect())
    }

    /// Adds `row`, replacing any row with the same `job_id` (a forced re-run), atomically.
    pub fn upsert(&self, row: &Row) -> Result<(), ResultsError> {
        self.update(|header, rows| {
            let id = row.get("job_id");
            rows.retain(|r| id.is_none() || r.get("job_id") != id);
            for (column, _) in &row.columns {
                if !header.contains(column) {
                    header.push(column.clone());
                }
            }
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
        let write_err = |cause| ResultsError::Write {
            path: self.path.clone(),
            cause,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(write_err)?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(&self.path))
            .map_err(write_err)?;
        lock.lock().map_err(write_err)?;
        let (mut header, mut rows) = self.read()?;
        let result = change(&mut header, &mut rows)
            .and_then(|_| write_table(&self.path, &header, &rows).map_err(E::from));
        lock.unlock().map_err(write_err)?;
        result
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

fn read_table(path: &Path) -> Result<(Vec<String>, Vec<Row>), ResultsError> {
    let read_err = |message: String| ResultsError::Read {
        path: path.to_path_buf(),
        message,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(read_err(e.to_string())),
    };
    let mut reader = csv::Reader::from_reader(file);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| read_err(e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    if !header.is_empty() && !header.iter().any(|h| h == "job_id") {
        return Err(read_err(
            "it has no job_id column, so it is not a microcal results table".into(),
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| read_err(e.to_string()))?;
        let columns = header
            .iter()
            .zip(record.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| (h.clone(), v.to_string()))
            .collect();
        rows.push(Row { columns });
    }
    Ok((header, rows))
}

fn write_table(path: &Path, header: &[String], rows: &[Row]) -> Result<(), ResultsError> {
    let write_err = |cause| ResultsError::Write {
        path: path.to_path_buf(),
        cause,
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut buffer = Vec::new();
    {
        let mut writer = csv::Writer::from_writer(&mut buffer);
        let csv_err = |e: csv::Error| std::io::Error::other(e.to_string());
        writer
            .write_record(header)
            .map_err(csv_err)
            .map_err(write_err)?;
        for row in rows {
            let values: BTreeMap<&str, &str> = row
                .columns
                .iter()
                .map(|(c, v)| (c.as_str(), v.as_str()))
                .collect();
            let record: Vec<&str> = header
                .iter()
                .map(|h| values.get(h.as_str()).copied().unwrap_or(""))
                .collect();
            writer
                .write_record(&record)
                .map_err(csv_err)
                .map_err(write_err)?;
        }
        writer.flush().map_err(write_err)?;
    }
    let mut file = File::create(&tmp).map_err(write_err)?;
    file.write_all(&buffer).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    fs::rename(&tmp, path).map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, extra: &[(&str, &str)]) -> Row {
        let mut r = Row::default();
        r.push("job_id", id);
        for (c, v) in extra {
            r.push(*c, *v);
        }
        r
    }

    #[test]
    fn union_header_upsert_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let table = ResultsTable::new(dir.path().join("sub/results.csv"));
        table
            .upsert(&row(
                "a",
                &[("auc", "0.9"), ("model.wavelet.family", "db5")],
            ))
            .unwrap();
        table
            .upsert(&row("b", &[("auc", "0.8"), ("classifier", "svm, rbf")]))
            .unwrap();
        table.upsert(&row("a", &[("auc", "0.95")])).unwrap();
        let (header, rows) = table.read().unwrap();
        assert_eq!(
            header,
            vec!["job_id", "auc", "model.wavelet.family", "classifier"]
        );
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
        let err = table.upsert(&row("a", &[])).unwrap_err();
        assert!(err.to_string().contains("no job_id column"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "x,y\n1,2\n");
    }
}
