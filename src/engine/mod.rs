//! The numerical engine: dfdx tensors, our optimiser, and the networks built on them.
//!
//! This is the only module that names dfdx types; models hand it plain `f32` slices and get
//! plain numbers back, so the engine can change (custom kernels, another crate) without
//! touching the rest.

mod adam;
mod cnn;
mod conv;
mod dense;
mod linalg;

pub use adam::Adam;
pub use cnn::ConvNet;
pub use dense::DenseNet;

use crate::rng::Rng;

/// Glorot/Xavier uniform initial weights (Keras' default for Dense and Conv2D).
pub(crate) fn glorot_uniform(fan_in: usize, fan_out: usize, n: usize, rng: &mut Rng) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    (0..n).map(|_| rng.range(-limit, limit) as f32).collect()
}
