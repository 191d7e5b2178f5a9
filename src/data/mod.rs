//! Images in, labelled samples out: folder loading, the synthetic generator, and splits.

pub mod augment;
mod check;
mod config;
mod fingerprint;
mod folder;
mod split;
pub mod synthetic;

pub use check::{check_folder, DataReport};
pub use config::{DataConfig, DataSource, Evaluate, SplitKind};
pub use fingerprint::{folder_fingerprint, synthetic_fingerprint};
pub use folder::{content_hash, find_images, load_folder, read_image};
pub use split::{holdout, make_split, Partition};

use std::path::PathBuf;
use thiserror::Error;

/// Which half of the given partition a sample came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Train,
    Test,
}

impl Origin {
    pub fn folder_name(self) -> &'static str {
        match self {
            Origin::Train => "Train",
            Origin::Test => "Test",
        }
    }
}

/// One labelled patch.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Path relative to the data root (`Train/1/x.pgm`), or a synthetic name.
    pub id: String,
    /// 1 = microcalcification cluster, 0 = normal tissue.
    pub label: u8,
    pub origin: Origin,
    /// Group (mammogram) id, parsed from the file name.
    pub group: String,
    pub rows: usize,
    pub cols: usize,
    /// Row-major pixel values on the 0..255 scale (16-bit images are divided by 257).
    pub pixels: Vec<f32>,
    /// First 64 bits of the SHA-256 of the file's bytes (synthetic: of the pixels), to find
    /// exact duplicates.
    pub content_hash: u64,
}

/// All samples of a data source, in a deterministic order (origin, label, path).
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub samples: Vec<Sample>,
    /// Exact duplicates removed by `dedupe` (0 when it is off).
    pub dropped_duplicates: usize,
}

impl Dataset {
    pub fn new(samples: Vec<Sample>) -> Self {
        Self {
            samples,
            dropped_duplicates: 0,
        }
    }

    /// Drops exact duplicates (same content hash), keeping the first copy by path, so that no
    /// image can sit on both sides of a split. Order of the kept samples is unchanged.
    pub fn deduplicated(self) -> Self {
        let mut by_path: Vec<usize> = (0..self.samples.len()).collect();
        by_path.sort_by(|&a, &b| self.samples[a].id.cmp(&self.samples[b].id));
        let mut seen = std::collections::HashSet::new();
        let mut keep = vec![false; self.samples.len()];
        for i in by_path {
            keep[i] = seen.insert(self.samples[i].content_hash);
        }
        let before = self.samples.len();
        let samples: Vec<Sample> = self
            .samples
            .into_iter()
            .zip(keep)
            .filter_map(|(s, k)| k.then_some(s))
            .collect();
        Self {
            dropped_duplicates: self.dropped_duplicates + before - samples.len(),
            samples,
        }
    }

    pub fn labels(&self, indices: &[usize]) -> Vec<u8> {
        indices.iter().map(|&i| self.samples[i].label).collect()
    }

    pub fn indices_of(&self, origin: Origin) -> Vec<usize> {
        (0..self.samples.len())
            .filter(|&i| self.samples[i].origin == origin)
            .collect()
    }
}

#[derive(Debug, Error)]
pub enum DataError {
    #[error("data folder {path} does not exist or is not a folder; data.root must name the folder that holds Train/{{0,1}} and Test/{{0,1}}")]
    MissingFolder { path: PathBuf },
    #[error("cannot list {path}: {cause}")]
    List {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("cannot read image {path}: {message} (expected a PGM, PNG or TIFF file, 8 or 16 bit grayscale)")]
    Unreadable { path: PathBuf, message: String },
    #[error("image {path} is {cols}x{rows} pixels; data.image_size = {expected} expects {expected}x{expected}")]
    WrongSize {
        path: PathBuf,
        rows: usize,
        cols: usize,
        expected: usize,
    },
    #[error("no images found under {path} (looked for *.pgm, *.png, *.tif, *.tiff in Train/0, Train/1, Test/0, Test/1)")]
    Empty { path: PathBuf },
    #[error("cannot split: {0}")]
    Split(String),
    #[error("{} entries named like images are not readable regular files (a dangling link, a folder, a named pipe): {}; remove them, or set data.skip_unreadable = true to skip them", paths.len(), paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotImages { paths: Vec<PathBuf> },
}

/// Loads the samples a data config names.
pub fn load(config: &DataConfig) -> Result<Dataset, DataError> {
    let dataset = load_all(config)?;
    Ok(if config.dedupe {
        dataset.deduplicated()
    } else {
        dataset
    })
}

/// The identity of the data a config names (see `fingerprint`): a content hash of the folder,
/// or the synthetic generator's version.
pub fn fingerprint(config: &DataConfig) -> Result<String, DataError> {
    match config.source {
        DataSource::Folder => folder_fingerprint(&config.root_path(), config.skip_unreadable),
        DataSource::Synthetic => Ok(synthetic_fingerprint()),
    }
}

fn load_all(config: &DataConfig) -> Result<Dataset, DataError> {
    match config.source {
        DataSource::Folder => load_folder(
            &config.root_path(),
            config.image_size,
            &config.group_pattern,
            config.skip_unreadable,
        ),
        DataSource::Synthetic => Ok(synthetic::generate(&synthetic::SyntheticSpec {
            size: config.image_size,
            train_per_class: config.synthetic_train_per_class,
            test_per_class: config.synthetic_test_per_class,
            seed: config.synthetic_seed,
        })),
    }
}
