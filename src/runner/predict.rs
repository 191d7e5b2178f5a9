//! What needs a job folder's resolved config (`runs/<id>/config.toml`): `microcal predict`
//! (its saved weights applied to images) and the sample sheet of its test images.

use std::path::{Path, PathBuf};

use super::RunError;
use crate::config::{Experiment, ExperimentConfig};
use crate::models::FittedModel;
use crate::results::{figures, run_dir};

/// The resolved config a job folder holds.
fn job_config(run_dir: &Path) -> Result<ExperimentConfig, RunError> {
    let experiment = Experiment::load(&run_dir.join("config.toml"), &[])?;
    Ok(experiment
        .configs()?
        .into_iter()
        .next()
        .expect("a job's config is one combination")
        .0)
}

/// A sheet of `count` test images of the job `job_id` of `table` (most confident mistakes
/// first), drawn into `out`; reads the job's data again.
pub fn sample_sheet(
    table: &Path,
    job_id: &str,
    count: usize,
    out: &Path,
) -> Result<Vec<PathBuf>, RunError> {
    let config = job_config(&run_dir(table, job_id))?;
    let dataset = crate::data::load(&config.data).map_err(|cause| RunError::Data {
        file: run_dir(table, job_id).join("config.toml"),
        cause,
    })?;
    Ok(figures::job_sample_sheet(
        table, job_id, &dataset, count, out,
    )?)
}

/// Scores every image in `inputs` (files, or folders searched recursively) with the model
/// saved in the job folder `run_dir`, of any kind: (path, probability of label 1), in order.
pub fn predict_paths(run_dir: &Path, inputs: &[PathBuf]) -> Result<Vec<(PathBuf, f64)>, RunError> {
    let config = job_config(run_dir)?;
    let spec = config
        .model
        .spec()
        .map_err(|e| crate::config::ConfigError::Invalid {
            path: run_dir.join("config.toml"),
            key: e.key().to_string(),
            message: e.to_string(),
        })?;
    let size = config.data.image_size;
    Ok(FittedModel::load(run_dir, &spec, size)?.score_paths(inputs, size)?)
}
