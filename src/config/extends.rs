//! `extends`: an experiment file built on shared base files.
//!
//! Why: most experiments share their data block and many share a network; writing those once
//! (in `experiments/base/`) means a change of data root or reference network is one edit.
//! The semantics follow the conventions of TOML tools (ruff's `extend`, Cargo's `include`)
//! and Hydra's defaults lists:
//! - `extends = "base.toml"` or a list, applied in order; the file's own keys come last.
//! - Tables merge deeply; scalars and arrays are replaced by the later file.
//! - Paths are relative to the file that names them: an `extends` path, and the path keys of
//!   a base (`data.root`, `output.results`), which are rewritten to be relative to the
//!   extending file, so a base works from any folder.
//! - Chains are allowed; a cycle or a missing file is refused, naming every file involved.
//!
//! The result is an ordinary table, so job ids depend only on the resolved experiment.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::grid::{base_dir, normalize};
use super::schema::ExperimentConfig;
use super::ConfigError;

/// Keys whose values are paths relative to the file that sets them.
const PATH_KEYS: &[(&str, &str)] = &[("data", "root"), ("output", "results")];

/// The most files one chain may hold; deeper is almost surely a mistake.
const MAX_DEPTH: usize = 32;

/// A file parsed on the way: its path and text, kept for error messages with line numbers.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// `text` (the file at `path`) with everything it extends merged under it, and the base files
/// read on the way (outermost first).
pub(crate) fn compose(text: &str, path: &Path) -> Result<(Table, Vec<Source>), ConfigError> {
    let mut bases = Vec::new();
    let table = compose_inner(text, path, &mut vec![path.to_path_buf()], &mut bases)?;
    Ok((table, bases))
}

fn compose_inner(
    text: &str,
    path: &Path,
    chain: &mut Vec<PathBuf>,
    bases: &mut Vec<Source>,
) -> Result<Table, ConfigError> {
    let mut own: Table = toml::from_str(text).map_err(|e| parse_error(path, &e))?;
    let Some(extends) = own.remove("extends") else {
        return Ok(own);
    };
    let names = extends_list(extends, path)?;
    let mut merged = Table::new();
    for name in names {
        let base_path = normalize(&base_dir(path).join(&name));
        let same = |p: &PathBuf| same_file(p, &base_path);
        if chain.iter().any(same) {
            let mut files: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
            files.push(base_path.display().to_string());
            return Err(ConfigError::Extends {
                path: path.to_path_buf(),
                message: format!("`extends` makes a cycle: {}", files.join(" → ")),
            });
        }
        if chain.len() >= MAX_DEPTH {
            return Err(ConfigError::Extends {
                path: path.to_path_buf(),
                message: format!("`extends` chains are limited to {MAX_DEPTH} files"),
            });
        }
        let base_text = std::fs::read_to_string(&base_path).map_err(|cause| {
            let mut files: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
            files.push(base_path.display().to_string());
            ConfigError::Extends {
                path: path.to_path_buf(),
                message: format!(
                    "cannot read base file {} ({cause}); chain: {}",
                    base_path.display(),
                    files.join(" → ")
                ),
            }
        })?;
        chain.push(base_path.clone());
        let mut base = compose_inner(&base_text, &base_path, chain, bases)?;
        chain.pop();
        bases.push(Source {
            path: base_path.clone(),
            text: base_text,
        });
        rebase_paths(
            &mut base,
            Path::new(&name).parent().unwrap_or(Path::new("")),
        );
        merge(&mut merged, base);
    }
    merge(&mut merged, own);
    Ok(merged)
}

/// `extends` as a list of paths: a string or an array of strings.
fn extends_list(value: Value, path: &Path) -> Result<Vec<String>, ConfigError> {
    let invalid = |message: &str| ConfigError::Invalid {
        path: path.to_path_buf(),
        key: "extends".to_string(),
        message: message.to_string(),
    };
    let names = match value {
        Value::String(s) => vec![s],
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(invalid(
                    "must be a path or a list of paths, e.g. extends = [\"base/real-data.toml\"]",
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(
                "must be a path or a list of paths, e.g. extends = \"base/real-data.toml\"",
            ))
        }
    };
    if names.iter().any(|n| n.trim().is_empty()) {
        return Err(invalid("names an empty path"));
    }
    Ok(names)
}

/// Two paths that name the same file (by canonical path where both exist).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => normalize(a) == normalize(b),
    }
}

/// Rewrites a base's relative path keys so that they resolve from the extending file's folder:
/// `offset` is the base's folder as seen from there.
fn rebase_paths(table: &mut Table, offset: &Path) {
    for (section, key) in PATH_KEYS {
        if let Some(Value::Table(t)) = table.get_mut(*section) {
            if let Some(Value::String(value)) = t.get_mut(*key) {
                if Path::new(value.as_str()).is_relative() {
                    *value = normalize(&offset.join(value.as_str()))
                        .to_string_lossy()
                        .into_owned();
                }
            }
        }
    }
}

/// Deep merge: tables merge key by key, anything else is replaced by `update`'s value.
pub(crate) fn merge(into: &mut Table, update: Table) {
    for (k, v) in update {
        match (into.get_mut(&k), v) {
            (Some(Value::Table(existing)), Value::Table(inner)) => merge(existing, inner),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn parse_error(path: &Path, e: &toml::de::Error) -> ConfigError {
    ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    }
}

/// The first error of any single file of a chain that is not about a key another file can
/// supply, as (file, message with line and column): a typo in a base is reported in the base.
pub(crate) fn first_local_error(sources: &[Source]) -> Option<(PathBuf, String)> {
    sources.iter().find_map(|source| {
        let e = toml::from_str::<ExperimentConfig>(&source.text).err()?;
        (!e.message().starts_with("missing field"))
            .then(|| (source.path.clone(), e.to_string().trim_end().to_string()))
    })
}
