//! Experiment files: schema, loading with precise errors, validation, and expansion into jobs.

mod bounds;
mod extends;
mod grid;
mod identity;
mod job;
mod schema;
mod validate;

pub use crate::models::{
    check_shapes, key_applies, parse_layers, reference_layer_values, ClassifierKind,
    ClassifierParams, KnnWeights, Layer, ModelSpec, SvmKernel, TreeCriterion, REFERENCE_LAYERS,
};
pub(crate) use bounds::limit;
pub use grid::{parse_override, unsweepable, Experiment};
pub use job::{flatten_config, relative_path, Job, SearchRole, SearchTag};
pub use schema::*;

use std::path::PathBuf;
use thiserror::Error;

/// Everything that can be wrong with an experiment file. Each message names the file and the
/// key, and says what would be valid.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read experiment file {path}: {cause}")]
    Io {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: invalid `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{path}: [grid] key `{key}`: {message}")]
    Grid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Extends { path: PathBuf, message: String },
    #[error("--set {spec}: {message}")]
    Override { spec: String, message: String },
}
