//! microcal: declarative, reproducible classification experiments on mammogram patches.
//!
//! Data flows one way: [`config`] (an experiment file, expanded into jobs) → [`data`]
//! (images and splits) → [`models`] (features and classifiers, trained by [`train`] on the
//! [`engine`]) → [`metrics`] → [`results`] (the table and per-job artefacts).

/// The microcal version (Cargo.toml).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision this build came from, `-dirty` when its code had uncommitted changes
/// (see build.rs).
pub const GIT_REV: &str = env!("MICROCAL_GIT_REV");
/// What `--version` prints after the program name.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("MICROCAL_GIT_REV"),
    ")"
);

pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub use microcal_engine as engine;
pub mod host;
pub mod metrics;
pub mod mlflow;
pub mod models;
pub mod reference;
pub mod results;
pub use microcal_engine::rng;
pub mod runner;
pub mod search;
pub mod stats;
pub mod train;
pub mod wavelet;
