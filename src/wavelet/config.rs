//! The `[model.wavelet]` section: which decomposition and which of its coefficients become
//! features.

use serde::{Deserialize, Serialize};

use super::FeatureKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaveletConfig {
    /// PyWavelets name of a discrete wavelet (`db5`, `haar`, `sym5`, `bior2.4`, ...).
    #[serde(default = "default_family")]
    pub family: String,
    /// Decomposition levels, 1 to 8.
    #[serde(default = "default_level")]
    pub level: usize,
    /// Detail levels kept (1 = finest); default: all but the finest. Levels deeper than
    /// `level` are ignored, so one list serves a sweep over levels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_levels: Option<Vec<usize>>,
    /// Keep the approximation sub-band of the deepest level too.
    #[serde(default)]
    pub keep_approx: bool,
    #[serde(default = "default_features")]
    pub features: FeatureKind,
}

impl Default for WaveletConfig {
    fn default() -> Self {
        Self {
            family: default_family(),
            level: default_level(),
            keep_levels: None,
            keep_approx: false,
            features: default_features(),
        }
    }
}

fn default_family() -> String {
    "db5".to_string()
}
fn default_level() -> usize {
    4
}
fn default_features() -> FeatureKind {
    FeatureKind::SubbandStats
}
