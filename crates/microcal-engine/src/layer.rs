//! A network layer as the engine builds it (the experiment file's list is parsed into these
//! by `config::layers`).

use serde::{Deserialize, Serialize};

/// One layer. Convolutions are 'same'-padded with stride 1; pooling is 2×2 with floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    Conv { filters: usize, kernel: usize },
    Relu,
    Maxpool,
    Batchnorm,
    Dropout { p: f64 },
    Flatten,
    Dense { units: usize },
}
