//! Bounds on every numeric setting that reflect what a machine can do, checked when the file
//! is read, so `--plan` rejects what a run would crash on (an allocation the machine cannot
//! make aborts the process; a count beyond reason never ends).
//!
//! Two kinds: fixed limits per key (no experiment needs 10⁵ epochs or 4,096-pixel patches),
//! and a coarse estimate of a job's memory (images, parameters with their gradients and Adam
//! moments, activations of a batch) against the machine's memory. The estimate errs high;
//! it names the key that dominates it.

use super::schema::{DataSource, ExperimentConfig, ModelKind};
use crate::models::{Layer, ModelSpec, Network};
use crate::wavelet::FeatureKind;

/// Fixed limits: (dotted key, largest accepted value).
const LIMITS: &[(&str, u64)] = &[
    ("data.image_size", 4096),
    ("data.folds", 100),
    ("data.synthetic_train_per_class", 1_000_000),
    ("data.synthetic_test_per_class", 1_000_000),
    ("train.epochs", 100_000),
    ("train.batch_size", 65_536),
    ("train.early_stopping", 100_000),
    ("train.seeds", 10_000),
    ("model.mlp.hidden", 1 << 20),
];

/// Widest convolution (filters) or dense layer (units); kernels, windows and strides are
/// bounded where the layers are parsed.
const MAX_WIDTH: usize = 65_536;

/// The largest value accepted for `key`.
pub(crate) fn limit(key: &str) -> u64 {
    LIMITS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(u64::MAX, |(_, v)| *v)
}

fn within(key: &str, value: u64) -> Result<(), (String, String)> {
    let max = limit(key);
    if value > max {
        return Err((
            key.to_string(),
            format!("must be at most {max}, got {value}"),
        ));
    }
    Ok(())
}

/// Memory a job may plan to use: 80% of the machine's (16 GiB where it cannot be read),
/// read once per process (every grid combination is checked against it).
fn memory_budget() -> u64 {
    static BUDGET: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        let total = crate::host::physical_memory().unwrap_or(16 << 30);
        total / 10 * 8
    })
}

/// Fixed limits, then the memory estimate.
pub(crate) fn check(c: &ExperimentConfig) -> Result<(), (String, String)> {
    let d = &c.data;
    within("data.image_size", d.image_size as u64)?;
    within("data.folds", d.folds as u64)?;
    within(
        "data.synthetic_train_per_class",
        d.synthetic_train_per_class as u64,
    )?;
    within(
        "data.synthetic_test_per_class",
        d.synthetic_test_per_class as u64,
    )?;
    let t = &c.train;
    within("train.epochs", t.epochs as u64)?;
    within("train.batch_size", t.batch_size as u64)?;
    within("train.early_stopping", t.early_stopping as u64)?;
    within("train.seeds", t.seeds.len() as u64)?;
    if let Some(m) = &c.model.mlp {
        for &w in &m.hidden {
            within("model.mlp.hidden", w as u64)?;
        }
    }
    let network = match c.model.spec() {
        Ok(ModelSpec::Cnn { layers }) => Some(layers),
        Err(e) => return Err((e.key().to_string(), e.to_string())),
        Ok(_) => None,
    };
    if let Some(network) = &network {
        for (i, layer) in network.layers.iter().enumerate() {
            let index = i + usize::from(network.front.is_some());
            if let Some((what, value)) = too_wide(layer) {
                return Err((
                    "model.layers".to_string(),
                    format!("layers[{index}]: {what} must be at most {MAX_WIDTH}, got {value}"),
                ));
            }
        }
    }
    let estimate = estimate(c, network.as_ref());
    let budget = memory_budget();
    if estimate.total() > budget {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        return Err((
            estimate.dominant(c.model.kind).to_string(),
            format!(
                "a job would need about {:.1} GiB of memory (images {:.1}, parameters with \
                 gradients and optimiser state {:.1}, activations of a batch {:.1}); this \
                 machine allows {:.1} GiB: use smaller values",
                gib(estimate.total()),
                gib(estimate.data),
                gib(estimate.parameters),
                gib(estimate.activations),
                gib(budget)
            ),
        ));
    }
    Ok(())
}

/// Bytes a job would hold, by what holds them.
struct Estimate {
    data: u64,
    parameters: u64,
    activations: u64,
}

impl Estimate {
    fn total(&self) -> u64 {
        self.data
            .saturating_add(self.parameters)
            .saturating_add(self.activations)
    }

    /// The key to change to shrink the largest part.
    fn dominant(&self, kind: ModelKind) -> &'static str {
        let model_key = if kind == ModelKind::Cnn {
            "model.layers"
        } else {
            "model.mlp.hidden"
        };
        if self.data >= self.parameters && self.data >= self.activations {
            "data.image_size"
        } else if self.parameters >= self.activations {
            model_key
        } else {
            "train.batch_size"
        }
    }
}

fn estimate(c: &ExperimentConfig, network: Option<&Network>) -> Estimate {
    let d = &c.data;
    let pixels = (d.image_size as u64).saturating_mul(d.image_size as u64);
    // A folder's images are counted and sized when it is read (a wrong size is an error
    // naming the file); generated images are made here, with buffers of the same size.
    let images = match d.source {
        DataSource::Synthetic => {
            2 * (d.synthetic_train_per_class + d.synthetic_test_per_class) as u64
        }
        DataSource::Folder => 0,
    };
    let data = images.saturating_mul(pixels).saturating_mul(4 * 3);
    let batch = c.train.batch_size as u64;
    let (parameters, widest) = match c.model.kind {
        ModelKind::Cnn => network.map_or((0, 0), |n| cnn_size(n, d.image_size)),
        ModelKind::WaveletMlp => {
            let inputs = match c.model.wavelet.as_ref().map(|w| w.features) {
                Some(FeatureKind::Coefficients) => pixels.saturating_mul(2),
                _ => 1_000,
            };
            let hidden = c
                .model
                .mlp
                .as_ref()
                .map(|m| m.hidden.clone())
                .unwrap_or_default();
            let mut params = 0u64;
            let mut previous = inputs;
            let mut widest = inputs;
            for &w in hidden.iter().chain(std::iter::once(&1)) {
                params = params.saturating_add(previous.saturating_mul(w as u64 + 1));
                previous = w as u64;
                widest = widest.max(w as u64);
            }
            (params, widest)
        }
        // The SVM's kernel matrix and k-NN's distances: n² numbers for n training images
        // (known here for generated data; a folder is counted when it is read).
        ModelKind::WaveletClassical if d.source == DataSource::Synthetic => {
            let n = 2 * d.synthetic_train_per_class as u64;
            (n.saturating_mul(n).saturating_mul(4), 0)
        }
        _ => (0, 0),
    };
    Estimate {
        data,
        // Weights, gradients and Adam's two moments.
        parameters: parameters.saturating_mul(4 * 4),
        // Forward values and their gradients, a few live at once.
        activations: batch.saturating_mul(widest).saturating_mul(4 * 4),
    }
}

/// The first filter or unit count of `layer` (inside residual blocks too) over
/// [`MAX_WIDTH`]: what it is and its value.
fn too_wide(layer: &Layer) -> Option<(&'static str, usize)> {
    match layer {
        Layer::Conv { filters, .. } if *filters > MAX_WIDTH => Some(("filters", *filters)),
        Layer::Dense { units } if *units > MAX_WIDTH => Some(("units", *units)),
        Layer::Residual(inner) => inner.iter().find_map(too_wide),
        _ => None,
    }
}

/// Parameter count and the largest activation (values per image) of a network; zero when
/// its layers do not fit (the shape check names the layer).
fn cnn_size(network: &Network, size: usize) -> (u64, u64) {
    crate::models::walk_network(network, size)
        .map_or((0, 0), |walk| (walk.parameters as u64, walk.widest as u64))
}
