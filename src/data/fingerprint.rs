//! The identity of a data set: what a job's numbers depend on, whatever path it is read from.
//!
//! A folder's fingerprint is a SHA-256 over every image's path relative to the root (which
//! carries its split and label) and the SHA-256 of its bytes, so moving the folder keeps it,
//! and relabelling, adding, removing or editing an image changes it. Hashing the bytes of a
//! 100k-image folder on every run would cost seconds to minutes, so each file's hash is
//! cached with its size and modification time (in `$MICROCAL_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/microcal`, else `~/.cache/microcal`) and recomputed only when either
//! moves. A cache that cannot be read or written is skipped, never an error. Synthetic data
//! is identified by its generator settings, which the job's configuration already holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::folder::list_images;
use super::DataError;

/// Version of the synthetic generator, part of a synthetic data set's identity.
const SYNTHETIC_IDENTITY: &str = "synthetic-v1";

/// Identity of the synthetic generator's output (its settings are part of the job's config).
pub fn synthetic_fingerprint() -> String {
    SYNTHETIC_IDENTITY.to_string()
}

/// `sha256:` and the first 16 hex digits of the folder's content hash (see the module doc).
pub fn folder_fingerprint(root: &Path, skip_unreadable: bool) -> Result<String, DataError> {
    let entries = list_images(root, skip_unreadable)?;
    let cache_path = cache_file(root);
    let cached = cache_path.as_deref().map(read_cache).unwrap_or_default();
    let hashed: Vec<(String, CachedFile)> = entries
        .par_iter()
        .map(|(path, id, _, _)| {
            let meta = std::fs::metadata(path).map_err(|cause| DataError::List {
                path: path.clone(),
                cause,
            })?;
            let stamp = (meta.len(), modified_ns(&meta));
            if let Some(c) = cached.get(id).filter(|c| (c.size, c.mtime_ns) == stamp) {
                return Ok((id.clone(), c.clone()));
            }
            let bytes = super::folder::read_bytes(path)?;
            let sha = hex(&Sha256::digest(&bytes));
            Ok((
                id.clone(),
                CachedFile {
                    size: stamp.0,
                    mtime_ns: stamp.1,
                    sha256: sha,
                },
            ))
        })
        .collect::<Result<_, DataError>>()?;
    let mut overall = Sha256::new();
    for (id, file) in &hashed {
        overall.update(id.as_bytes());
        overall.update(b"\0");
        overall.update(file.sha256.as_bytes());
        overall.update(b"\n");
    }
    let fresh: BTreeMap<String, CachedFile> = hashed.into_iter().collect();
    if let Some(path) = cache_path.filter(|_| fresh != cached) {
        write_cache(&path, &fresh);
    }
    Ok(format!("sha256:{}", &hex(&overall.finalize())[..16]))
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct CachedFile {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

fn modified_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache file of one data folder (named by a hash of its canonical path).
fn cache_file(root: &Path) -> Option<PathBuf> {
    let dir = std::env::var_os("MICROCAL_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("microcal")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/microcal")))?;
    let canonical = root.canonicalize().ok()?;
    let key = hex(&Sha256::digest(canonical.to_string_lossy().as_bytes()));
    Some(dir.join(format!("fingerprint-{}.json", &key[..16])))
}

fn read_cache(path: &Path) -> BTreeMap<String, CachedFile> {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Writes the cache through a temporary file and a rename, so a reader never sees half of it.
fn write_cache(path: &Path, files: &BTreeMap<String, CachedFile>) {
    let Some(dir) = path.parent() else { return };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(&tmp, serde_json::to_vec(files).unwrap_or_default()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::debug!("fingerprint cache {} not written: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pgm(path: &Path, value: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut bytes = b"P5\n8 8\n255\n".to_vec();
        bytes.extend(std::iter::repeat_n(value, 64));
        std::fs::write(path, bytes).unwrap();
    }

    fn folder(dir: &Path) {
        for (split, label, name, value) in [
            ("Train", 0, "a_1.pgm", 10),
            ("Train", 1, "b_1.pgm", 200),
            ("Test", 0, "c_1.pgm", 20),
            ("Test", 1, "d_1.pgm", 220),
        ] {
            write_pgm(&dir.join(split).join(label.to_string()).join(name), value);
        }
    }

    #[test]
    fn follows_content_and_labels_not_location() {
        let cache = tempfile::tempdir().unwrap();
        std::env::set_var("MICROCAL_CACHE_DIR", cache.path());
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        folder(a.path());
        folder(b.path());
        let fa = folder_fingerprint(a.path(), false).unwrap();
        assert!(fa.starts_with("sha256:") && fa.len() == 7 + 16, "{fa}");
        assert_eq!(
            fa,
            folder_fingerprint(b.path(), false).unwrap(),
            "same images elsewhere"
        );
        assert_eq!(
            fa,
            folder_fingerprint(a.path(), false).unwrap(),
            "cached: unchanged"
        );
        // Edited pixels (same size; the modification time moves).
        write_pgm(&b.path().join("Train/0/a_1.pgm"), 11);
        let edited = folder_fingerprint(b.path(), false).unwrap();
        assert_ne!(edited, fa);
        // A relabelled image: same bytes under the other label.
        write_pgm(&b.path().join("Train/0/a_1.pgm"), 10);
        assert_eq!(folder_fingerprint(b.path(), false).unwrap(), fa);
        std::fs::rename(
            b.path().join("Train/0/a_1.pgm"),
            b.path().join("Train/1/a_1.pgm"),
        )
        .unwrap();
        assert_ne!(folder_fingerprint(b.path(), false).unwrap(), fa);
    }
}
