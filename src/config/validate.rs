//! Filling defaults that depend on other keys, and rejecting impossible values before any
//! job runs.

use std::path::Path;

use super::schema::*;
use crate::models::{check_shapes, reference_layer_values, ClassifierParams, ModelSpec};
use crate::wavelet::Wavelet;

/// Makes a config complete and canonical: sections the model kind uses get their defaults,
/// derived defaults are filled in, and the data root is resolved (`data.root_dir`; `data.root`
/// stays as written). Job ids hash the result (see `config::identity`), so two spellings of
/// the same experiment get the same id.
pub(crate) fn resolve(mut config: ExperimentConfig, base_dir: &Path) -> ExperimentConfig {
    config.grid = None;
    config.search = None;
    if config.model.kind.uses_wavelets() {
        let wavelet = config
            .model
            .wavelet
            .get_or_insert_with(WaveletConfig::default);
        if wavelet.keep_levels.is_none() {
            wavelet.keep_levels = Some((2.min(wavelet.level)..=wavelet.level).collect());
        }
        if let Some(levels) = wavelet.keep_levels.as_mut() {
            levels.sort_unstable();
            levels.dedup();
            // Levels deeper than the decomposition are dropped, so that one list serves a
            // sweep over `level` (keep [2, 3, 4] at level 3 keeps 2 and 3). If none would
            // remain, the list is left alone for `validate` to reject.
            let level = wavelet.level;
            if levels.iter().any(|&l| l <= level) {
                levels.retain(|&l| l <= level);
            }
        }
    }
    match config.model.kind {
        ModelKind::WaveletMlp => {
            config.model.mlp.get_or_insert_with(MlpConfig::default);
        }
        ModelKind::Cnn => {
            config
                .model
                .layers
                .get_or_insert_with(reference_layer_values);
        }
        ModelKind::Baseline => {}
        ModelKind::WaveletClassical => {
            // Record every parameter, defaults included, so the job id pins them.
            if let Some(kind) = config.model.classifier {
                let table = config.model.params.clone().unwrap_or_default();
                if let Ok(params) = ClassifierParams::parse(kind, &table) {
                    config.model.params = Some(params.to_table());
                }
            }
        }
    }
    match config.data.source {
        DataSource::Folder => {
            if let Some(root) = &config.data.root {
                let joined = base_dir.join(root);
                config.data.root_dir = Some(joined.canonicalize().unwrap_or(joined));
            }
        }
        DataSource::Synthetic => {
            config.data.root = None;
            config.data.root_dir = None;
        }
    }
    if !matches!(config.data.split, SplitKind::Kfold | SplitKind::GroupKfold) {
        // Folds mean nothing for a fixed split; keep them out of the job id.
        config.data.folds = default_folds_marker();
    }
    config
}

/// Folds recorded for fixed splits.
fn default_folds_marker() -> usize {
    1
}

/// Largest synthetic patch side: the generator's use is 60-pixel patches, and its cost grows
/// with the side squared.
const MAX_SYNTHETIC_SIZE: usize = 256;

/// Returns the first impossible setting as (dotted key, what would be valid).
pub(crate) fn validate(c: &ExperimentConfig) -> Result<(), (String, String)> {
    let fail = |key: &str, msg: String| Err((key.to_string(), msg));
    if c.name.trim().is_empty() {
        return fail("name", "must not be empty".into());
    }
    for (key, text) in [
        ("name", Some(&c.name)),
        ("description", c.description.as_ref()),
    ] {
        if let Some(bad) = text.and_then(|t| t.chars().find(|ch| ch.is_control())) {
            return fail(
                key,
                format!(
                    "must be one line of printable text; it holds the control character {:?} (a line break or tab would break every row it is in)",
                    bad
                ),
            );
        }
    }
    if c.output.results.trim().is_empty() {
        return fail(
            "output.results",
            "must name a results table file, e.g. \"results/results.csv\"".into(),
        );
    }
    super::bounds::check(c)?;
    let d = &c.data;
    if d.source == DataSource::Folder && d.root.is_none() {
        return fail(
            "data.root",
            "is required when data.source = \"folder\": the folder holding Train/ and Test/".into(),
        );
    }
    if matches!(d.split, SplitKind::Kfold | SplitKind::GroupKfold) && d.folds < 2 {
        return fail(
            "data.folds",
            format!("must be at least 2 for a k-fold split, got {}", d.folds),
        );
    }
    if let Err(e) = regex::Regex::new(&d.group_pattern) {
        return fail(
            "data.group_pattern",
            format!("is not a valid regular expression: {e}"),
        );
    }
    if d.source == DataSource::Synthetic && d.image_size > MAX_SYNTHETIC_SIZE {
        return fail(
            "data.image_size",
            format!(
                "must be at most {MAX_SYNTHETIC_SIZE} for synthetic data (the generator draws each patch through an FFT of its side squared; a 3,000-pixel side takes minutes per image set), got {}",
                d.image_size
            ),
        );
    }
    if d.image_size < 8 {
        return fail(
            "data.image_size",
            format!("must be at least 8 pixels, got {}", d.image_size),
        );
    }
    if d.source == DataSource::Synthetic
        && (d.synthetic_train_per_class < 2 || d.synthetic_test_per_class < 1)
    {
        return fail(
            "data.synthetic_train_per_class",
            "needs at least 2 training and 1 test image per class".into(),
        );
    }
    if let Some(w) = &c.model.wavelet {
        if let Err(e) = Wavelet::from_name(&w.family) {
            return fail("model.wavelet.family", e.to_string());
        }
        if w.level == 0 || w.level > 8 {
            return fail(
                "model.wavelet.level",
                format!("must be between 1 and 8, got {}", w.level),
            );
        }
        let keep = w.keep_levels.as_deref().unwrap_or(&[]);
        if let Some(bad) = keep.iter().find(|&&l| l == 0 || l > w.level) {
            return fail(
                "model.wavelet.keep_levels",
                format!(
                    "level {bad} does not exist; valid detail levels are 1..={}",
                    w.level
                ),
            );
        }
        if keep.is_empty() && !w.keep_approx {
            return fail(
                "model.wavelet.keep_levels",
                "keeps nothing: list at least one detail level or set keep_approx = true".into(),
            );
        }
    }
    let spec = c
        .model
        .spec()
        .map_err(|e| (e.key().to_string(), e.to_string()))?;
    match &spec {
        ModelSpec::WaveletClassical { .. } => {
            reject_sections(c, &["model.mlp"])?;
        }
        ModelSpec::Baseline { .. } => {
            reject_sections(c, WAVELET_SECTIONS)?;
        }
        ModelSpec::Cnn { layers } => {
            check_shapes(layers, d.image_size).map_err(|e| {
                (
                    "model.layers".to_string(),
                    format!("{e} (input {0}x{0}x1)", d.image_size),
                )
            })?;
            reject_sections(c, WAVELET_SECTIONS)?;
        }
        ModelSpec::WaveletMlp { .. } => {
            reject_sections(c, &["model.classifier", "model.params"])?;
        }
    }
    if let Some(m) = &c.model.mlp {
        if m.hidden.contains(&0) {
            return fail("model.mlp.hidden", "layer widths must be at least 1".into());
        }
        if !(0.0..1.0).contains(&m.dropout) {
            return fail(
                "model.mlp.dropout",
                format!("must be in [0, 1), got {}", m.dropout),
            );
        }
    }
    let t = &c.train;
    if t.epochs == 0 {
        return fail("train.epochs", "must be at least 1".into());
    }
    if t.batch_size == 0 {
        return fail("train.batch_size", "must be at least 1".into());
    }
    t.check_options()?;
    if !(t.lr.is_finite() && t.lr > 0.0) {
        return fail(
            "train.lr",
            format!("must be a positive number, got {}", t.lr),
        );
    }
    if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
        return fail(
            "train.weight_decay",
            format!("must be >= 0, got {}", t.weight_decay),
        );
    }
    if !(0.0..0.9).contains(&t.validation_fraction) {
        return fail(
            "train.validation_fraction",
            format!("must be in [0, 0.9), got {}", t.validation_fraction),
        );
    }
    match t.threshold {
        crate::train::Threshold::Fixed(v) if !(v > 0.0 && v < 1.0) => {
            return fail(
                "train.threshold",
                format!("must be a number in (0, 1) or \"youden\", got {v}"),
            );
        }
        crate::train::Threshold::Rule(_) if t.validation_fraction == 0.0 => {
            return fail(
                "train.threshold",
                "\"youden\" is chosen on a validation hold-out: set train.validation_fraction > 0"
                    .into(),
            );
        }
        _ => {}
    }
    if c.data.evaluate == crate::data::Evaluate::Validation
        && matches!(c.data.split, SplitKind::Given | SplitKind::Swapped)
        && t.validation_fraction == 0.0
    {
        return fail(
            "data.evaluate",
            "\"validation\" on a fixed split evaluates on the hold-out of the training part: set train.validation_fraction > 0".into(),
        );
    }
    if t.early_stopping > 0 && t.validation_fraction == 0.0 {
        return fail(
            "train.early_stopping",
            "needs train.validation_fraction > 0 to watch a validation loss".into(),
        );
    }
    for a in &t.augment {
        if let Err(e) = crate::data::augment::Augment::parse(a) {
            return fail("train.augment", e.to_string());
        }
    }
    if !t.augment.is_empty() && c.model.kind != ModelKind::Cnn {
        return fail("train.augment", "applies to kind = \"cnn\" only".into());
    }
    if c.model.kind != ModelKind::Cnn && c.model.layers.is_some() {
        return fail(
            "model.layers",
            format!(
                "is only used by kind = \"cnn\", not \"{}\"",
                c.model.kind.name()
            ),
        );
    }
    if t.seeds.is_empty() {
        return fail("train.seeds", "must list at least one seed".into());
    }
    if let Some(slurm) = &c.launcher.slurm {
        validate_slurm(slurm)?;
    }
    Ok(())
}

/// The sections only the wavelet kinds read.
const WAVELET_SECTIONS: &[&str] = &[
    "model.wavelet",
    "model.mlp",
    "model.classifier",
    "model.params",
];

/// Sections a model kind does not read are errors, not silently ignored settings.
fn reject_sections(c: &ExperimentConfig, sections: &[&str]) -> Result<(), (String, String)> {
    for &key in sections {
        let present = match key {
            "model.wavelet" => c.model.wavelet.is_some(),
            "model.mlp" => c.model.mlp.is_some(),
            "model.classifier" => c.model.classifier.is_some(),
            "model.params" => c.model.params.is_some(),
            _ => false,
        };
        if present {
            return Err((
                key.to_string(),
                format!(
                    "is not used by kind = \"{}\"; remove it",
                    c.model.kind.name()
                ),
            ));
        }
    }
    Ok(())
}

/// Slurm settings must be what sbatch accepts, or the array is refused only after submission.
fn validate_slurm(s: &SlurmSettings) -> Result<(), (String, String)> {
    let fail = |key: &str, msg: String| Err((format!("launcher.slurm.{key}"), msg));
    for (key, value) in [
        ("partition", &s.partition),
        ("account", &s.account),
        ("mem", &s.mem),
    ] {
        if let Some(v) = value {
            if v.is_empty()
                || v.chars()
                    .any(|c| c.is_whitespace() || c == '\'' || c == '"')
            {
                return fail(key, format!("must be one word without quotes, got {v:?}"));
            }
        }
    }
    if let Some(time) = &s.time {
        let valid = !time.is_empty()
            && time
                .chars()
                .all(|c| c.is_ascii_digit() || c == ':' || c == '-')
            && time.chars().next().is_some_and(|c| c.is_ascii_digit());
        if !valid {
            return fail(
                "time",
                format!("must be a Slurm time such as 30, 2:00:00 or 1-00:00:00, got {time:?}"),
            );
        }
    }
    if s.cpus_per_task == Some(0) || s.cpus_per_task.is_some_and(|c| c > 4096) {
        return fail("cpus_per_task", "must be between 1 and 4096".into());
    }
    if s.max_running == Some(0) || s.max_running.is_some_and(|m| m > 10_000) {
        return fail("max_running", "must be between 1 and 10000".into());
    }
    if let Some(bad) = s
        .extra
        .iter()
        .find(|e| !e.starts_with("--") || e.contains('\n') || e.contains('\''))
    {
        return fail(
            "extra",
            format!("each entry must be one sbatch option such as \"--qos=long\", got {bad:?}"),
        );
    }
    Ok(())
}
