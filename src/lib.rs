//! microcal: declarative, reproducible classification experiments on mammogram patches.
//!
//! Data flows one way: [`config`] (an experiment file, expanded into jobs) → [`data`]
//! (images and splits) → [`models`] (features and classifiers, trained by [`train`] on the
//! [`engine`]) → [`metrics`] → [`results`] (the table and per-job artefacts).

pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub mod engine;
pub mod metrics;
pub mod models;
pub mod results;
pub mod rng;
pub mod runner;
pub mod train;
pub mod wavelet;
