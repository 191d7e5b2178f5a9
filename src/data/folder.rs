//! Reading the `Train|Test/{0,1}` folder layout with the `image` crate.

use std::path::{Path, PathBuf};

use image::DynamicImage;
use rayon::prelude::*;
use regex::Regex;

use super::{DataError, Dataset, Origin, Sample};

const EXTENSIONS: &[&str] = &["pgm", "png", "tif", "tiff"];

/// Loads every image under `root/{Train,Test}/{0,1}`; all must be `size`×`size`.
/// Files with other extensions are ignored; a folder that is missing entirely is an error,
/// since it almost always means `root` points at the wrong place.
pub fn load_folder(
    root: &Path,
    size: usize,
    group_pattern: &str,
    skip_unreadable: bool,
) -> Result<Dataset, DataError> {
    let group_re = Regex::new(group_pattern)
        .map_err(|e| DataError::Split(format!("bad group pattern: {e}")))?;
    let entries = list_images(root, skip_unreadable)?;
    let samples = entries
        .into_par_iter()
        .map(|(path, id, origin, label)| {
            let bytes = read_bytes(&path)?;
            let (rows, cols, pixels) = decode_image(&bytes, &path)?;
            if rows != size || cols != size {
                return Err(DataError::WrongSize {
                    path,
                    rows,
                    cols,
                    expected: size,
                });
            }
            let file_name = path.file_name().unwrap_or_default().to_string_lossy();
            Ok(Sample {
                group: group_of(&group_re, &file_name),
                id,
                label,
                origin,
                rows,
                cols,
                pixels,
                content_hash: content_hash(&bytes),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Dataset::new(samples))
}

/// One image file of the layout.
pub(crate) type Entry = (PathBuf, String, Origin, u8);

/// Every image file under `root/{Train,Test}/{0,1}` as (path, id relative to root, origin,
/// label), sorted within each folder. An entry named like an image that is not a readable
/// regular file (a dangling link, a folder, a named pipe) stops the experiment, naming every
/// such path, unless `skip_unreadable` (`data.skip_unreadable`), which skips them with a
/// warning that counts them.
pub(crate) fn list_images(root: &Path, skip_unreadable: bool) -> Result<Vec<Entry>, DataError> {
    let (entries, not_files) = list_entries(root)?;
    if !not_files.is_empty() {
        if !skip_unreadable {
            return Err(DataError::NotImages { paths: not_files });
        }
        tracing::warn!(
            "skipping {} entries named like images that are not readable regular files (data.skip_unreadable = true): {}",
            not_files.len(),
            not_files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(entries)
}

/// The layout's image files, and the entries named like images that are not regular files.
pub(crate) fn list_entries(root: &Path) -> Result<(Vec<Entry>, Vec<PathBuf>), DataError> {
    if !root.is_dir() {
        return Err(DataError::MissingFolder {
            path: root.to_path_buf(),
        });
    }
    let mut entries = Vec::new();
    let mut not_files = Vec::new();
    for origin in [Origin::Train, Origin::Test] {
        for label in [0u8, 1] {
            let dir = root.join(origin.folder_name()).join(label.to_string());
            if !dir.is_dir() {
                return Err(DataError::MissingFolder { path: dir });
            }
            let listing = std::fs::read_dir(&dir).map_err(|cause| DataError::List {
                path: dir.clone(),
                cause,
            })?;
            let (mut files, odd): (Vec<PathBuf>, Vec<PathBuf>) = listing
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| has_image_extension(p))
                .partition(|p| p.is_file());
            not_files.extend(odd);
            files.sort();
            for path in files {
                let id = format!(
                    "{}/{}/{}",
                    origin.folder_name(),
                    label,
                    path.file_name().unwrap_or_default().to_string_lossy()
                );
                entries.push((path, id, origin, label));
            }
        }
    }
    if entries.is_empty() {
        return Err(DataError::Empty {
            path: root.to_path_buf(),
        });
    }
    not_files.sort();
    Ok((entries, not_files))
}

/// An image file itself, or every image file under a folder, recursively (sorted by path
/// within each folder).
pub fn find_images(path: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    walk(path, &mut out)?;
    Ok(out)
}

fn walk(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|cause| DataError::List {
            path: path.to_path_buf(),
            cause,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            walk(&entry, out)?;
        } else if has_image_extension(&entry) {
            out.push(entry);
        }
    }
    Ok(())
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// First capture group of the pattern, or the whole file name when it does not match.
pub(crate) fn group_of(re: &Regex, file_name: &str) -> String {
    re.captures(file_name)
        .and_then(|c| c.get(1).or_else(|| c.get(0)))
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| file_name.to_string())
}

/// First 64 bits of the SHA-256 of some bytes.
pub fn content_hash(bytes: &[u8]) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Decodes an image file to (rows, cols, pixels) with 0..255-scaled values (16-bit divided
/// by 257, colour converted to luma).
pub fn read_image(path: &Path) -> Result<(usize, usize, Vec<f32>), DataError> {
    decode_image(&read_bytes(path)?, path)
}

/// A file's bytes, or an error naming it.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Decodes image bytes (format guessed from the content); `path` is for messages.
pub(crate) fn decode_image(
    bytes: &[u8],
    path: &Path,
) -> Result<(usize, usize, Vec<f32>), DataError> {
    let img = decode_dynamic(bytes, path)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let pixels: Vec<f32> = match img {
        DynamicImage::ImageLuma8(buf) => buf.into_raw().into_iter().map(f32::from).collect(),
        DynamicImage::ImageLuma16(buf) => buf
            .into_raw()
            .into_iter()
            .map(|v| v as f32 / 257.0)
            .collect(),
        other => other
            .to_luma8()
            .into_raw()
            .into_iter()
            .map(f32::from)
            .collect(),
    };
    Ok((h, w, pixels))
}

pub(crate) fn decode_dynamic(bytes: &[u8], path: &Path) -> Result<DynamicImage, DataError> {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())
        .and_then(|r| r.decode().map_err(|e| e.to_string()))
        .map_err(|message| DataError::Unreadable {
            path: path.to_path_buf(),
            message,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_16_bit_png_and_8_bit_tiff_on_the_0_255_scale() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("a.png");
        let values16: Vec<u16> = (0..12).map(|i| i * 5000).collect();
        image::ImageBuffer::<image::Luma<u16>, _>::from_raw(4, 3, values16.clone())
            .unwrap()
            .save(&png)
            .unwrap();
        let (rows, cols, pixels) = read_image(&png).unwrap();
        assert_eq!((rows, cols), (3, 4));
        for (p, v) in pixels.iter().zip(&values16) {
            assert!((p - *v as f32 / 257.0).abs() < 1e-3);
        }
        let tif = dir.path().join("b.tif");
        let values8: Vec<u8> = (0..12).map(|i| i * 20).collect();
        image::GrayImage::from_raw(4, 3, values8.clone())
            .unwrap()
            .save(&tif)
            .unwrap();
        let (_, _, pixels) = read_image(&tif).unwrap();
        assert_eq!(
            pixels,
            values8.iter().map(|&v| v as f32).collect::<Vec<_>>()
        );
    }

    #[test]
    fn unreadable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.png");
        std::fs::write(&bad, b"not an image").unwrap();
        let err = read_image(&bad).unwrap_err().to_string();
        assert!(
            err.contains("bad.png") && err.contains("PGM, PNG or TIFF"),
            "{err}"
        );
    }

    #[test]
    fn group_is_the_mammogram_id() {
        let re = Regex::new("^([^_]+)_").unwrap();
        assert_eq!(group_of(&re, "0231u1_1_1_1.pgm_5.pgm"), "0231u1");
        assert_eq!(group_of(&re, "nounderscore.pgm"), "nounderscore.pgm");
    }
}
