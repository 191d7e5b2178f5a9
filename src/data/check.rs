//! `microcal data check`: what a folder holds and the traps in it — counts, image formats,
//! exact duplicates (and whether they cross splits or labels), and mammograms whose patches
//! sit in both Train and Test.

use std::collections::BTreeMap;
use std::path::Path;

use image::GenericImageView;
use rayon::prelude::*;
use regex::Regex;
use serde::Serialize;

use super::folder::{content_hash, decode_dynamic, group_of, list_entries, read_bytes};
use super::{DataError, Origin};

#[derive(Debug, Clone, Serialize)]
pub struct SplitCount {
    pub split: &'static str,
    pub label: u8,
    pub images: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct FormatCount {
    pub width: u32,
    pub height: u32,
    /// Pixel type as the image crate reports it (`L8`, `L16`, `Rgb8`, ...).
    pub pixel: String,
    pub images: usize,
}

/// Files with byte-identical content.
#[derive(Debug, Clone, Serialize)]
pub struct DuplicateSet {
    pub files: Vec<String>,
    pub crosses_splits: bool,
    pub crosses_labels: bool,
}

/// A group (mammogram) with patches in both Train and Test.
#[derive(Debug, Clone, Serialize)]
pub struct SharedGroup {
    pub group: String,
    pub train: usize,
    pub test: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct DataReport {
    pub root: String,
    pub images: usize,
    pub counts: Vec<SplitCount>,
    pub formats: Vec<FormatCount>,
    pub groups: usize,
    pub duplicate_pairs: usize,
    pub cross_split_pairs: usize,
    pub duplicates: Vec<DuplicateSet>,
    pub shared_groups: Vec<SharedGroup>,
    /// Entries named like images that are not readable regular files (dangling links,
    /// folders, named pipes): an experiment on this folder stops on them.
    pub not_images: Vec<String>,
}

/// Reads every image under `root` and reports on it.
pub fn check_folder(root: &Path, group_pattern: &str) -> Result<DataReport, DataError> {
    let group_re = Regex::new(group_pattern)
        .map_err(|e| DataError::Split(format!("bad group pattern: {e}")))?;
    let (entries, not_files) = list_entries(root)?;
    struct Seen {
        id: String,
        origin: Origin,
        label: u8,
        hash: u64,
        group: String,
        format: (u32, u32, String),
    }
    let seen: Vec<Seen> = entries
        .into_par_iter()
        .map(|(path, id, origin, label)| {
            let bytes = read_bytes(&path)?;
            let img = decode_dynamic(&bytes, &path)?;
            let (w, h) = img.dimensions();
            let file_name = path.file_name().unwrap_or_default().to_string_lossy();
            Ok(Seen {
                id,
                origin,
                label,
                hash: content_hash(&bytes),
                group: group_of(&group_re, &file_name),
                format: (w, h, format!("{:?}", img.color())),
            })
        })
        .collect::<Result<_, DataError>>()?;

    let mut counts = BTreeMap::new();
    let mut formats = BTreeMap::new();
    let mut by_hash: BTreeMap<u64, Vec<&Seen>> = BTreeMap::new();
    let mut by_group: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in &seen {
        *counts.entry((s.origin, s.label)).or_insert(0) += 1;
        *formats.entry(s.format.clone()).or_insert(0) += 1;
        by_hash.entry(s.hash).or_default().push(s);
        let g = by_group.entry(s.group.as_str()).or_default();
        match s.origin {
            Origin::Train => g.0 += 1,
            Origin::Test => g.1 += 1,
        }
    }
    let mut duplicates: Vec<DuplicateSet> = by_hash
        .values()
        .filter(|set| set.len() > 1)
        .map(|set| DuplicateSet {
            files: set.iter().map(|s| s.id.clone()).collect(),
            crosses_splits: set.iter().any(|s| s.origin != set[0].origin),
            crosses_labels: set.iter().any(|s| s.label != set[0].label),
        })
        .collect();
    duplicates.sort_by(|a, b| a.files.cmp(&b.files));
    let pairs = |set: &[&Seen], cross: bool| {
        let mut n = 0;
        for i in 0..set.len() {
            for j in i + 1..set.len() {
                if !cross || set[i].origin != set[j].origin {
                    n += 1;
                }
            }
        }
        n
    };
    let duplicate_pairs = by_hash.values().map(|s| pairs(s, false)).sum();
    let cross_split_pairs = by_hash.values().map(|s| pairs(s, true)).sum();
    Ok(DataReport {
        root: root.display().to_string(),
        images: seen.len(),
        not_images: not_files.iter().map(|p| p.display().to_string()).collect(),
        counts: counts
            .into_iter()
            .map(|((origin, label), images)| SplitCount {
                split: origin.folder_name(),
                label,
                images,
            })
            .collect(),
        formats: formats
            .into_iter()
            .map(|((width, height, pixel), images)| FormatCount {
                width,
                height,
                pixel,
                images,
            })
            .collect(),
        groups: by_group.len(),
        duplicate_pairs,
        cross_split_pairs,
        duplicates,
        shared_groups: by_group
            .into_iter()
            .filter(|(_, (train, test))| *train > 0 && *test > 0)
            .map(|(group, (train, test))| SharedGroup {
                group: group.to_string(),
                train,
                test,
            })
            .collect(),
    })
}

impl DataReport {
    /// Findings that make naive numbers look better than they are, one line each.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.not_images.is_empty() {
            out.push(format!(
                "{} entries named like images are not readable regular files: {} (an experiment stops on them unless data.skip_unreadable = true)",
                self.not_images.len(),
                self.not_images.join(", ")
            ));
        }
        if self.duplicate_pairs > 0 {
            out.push(format!(
                "{} pairs of byte-identical images ({} across Train/Test); `[data] dedupe = true` drops them",
                self.duplicate_pairs, self.cross_split_pairs
            ));
        }
        if !self.shared_groups.is_empty() {
            out.push(format!(
                "{} groups (mammograms) have patches in both Train and Test: {}",
                self.shared_groups.len(),
                self.shared_groups
                    .iter()
                    .map(|g| g.group.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "data check of {}: {} images, {} groups\n\ncounts:\n",
            self.root, self.images, self.groups
        );
        for c in &self.counts {
            s += &format!("  {:<5} label {}: {}\n", c.split, c.label, c.images);
        }
        s += "\nformats:\n";
        for f in &self.formats {
            s += &format!("  {}x{} {}: {}\n", f.width, f.height, f.pixel, f.images);
        }
        s += &format!(
            "\nexact duplicates: {} pairs, {} across Train/Test\n",
            self.duplicate_pairs, self.cross_split_pairs
        );
        for d in &self.duplicates {
            let mut tags = Vec::new();
            if d.crosses_splits {
                tags.push("crosses splits");
            }
            if d.crosses_labels {
                tags.push("crosses labels");
            }
            let tags = if tags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", tags.join(", "))
            };
            s += &format!("  {}{tags}\n", d.files.join("  =  "));
        }
        s += &format!(
            "\ngroups in both Train and Test: {}\n",
            self.shared_groups.len()
        );
        for g in &self.shared_groups {
            s += &format!("  {}: {} in Train, {} in Test\n", g.group, g.train, g.test);
        }
        s += &format!(
            "\nnamed like images but not readable regular files: {}\n",
            self.not_images.len()
        );
        for path in &self.not_images {
            s += &format!("  {path}\n");
        }
        s
    }
}
