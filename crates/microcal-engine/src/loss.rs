//! The training loss: binary cross-entropy on the logit, with optional label smoothing and
//! class weights.

use dfdx::prelude::*;

/// What the loss weighs: Keras's `label_smoothing` (targets pulled towards ½) and
/// `class_weight` (each image's loss times its class's weight, the sum still divided by the
/// number of images, as Keras's `sum_over_batch_size`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Objective {
    pub label_smoothing: f32,
    /// Weights of class 0 and class 1; `None`: both 1.
    pub class_weights: Option<[f32; 2]>,
}

impl Objective {
    fn is_plain(&self) -> bool {
        self.label_smoothing == 0.0 && self.class_weights.is_none()
    }
}

/// The mean loss of `logits` (batch, 1) against 0/1 targets `y`, times `scale`, on the
/// logits' tape. The plain loss is dfdx's (the committed results' numbers); the weighted or
/// smoothed one is computed here, its gradient put on the tape as that of Σ logit·∂L/∂logit.
pub(crate) fn bce_loss(
    logits: Tensor<(usize, usize), f32, Cpu, OwnedTape<f32, Cpu>>,
    y: &[f32],
    scale: f32,
    objective: &Objective,
) -> (f32, Tensor<Rank0, f32, Cpu, OwnedTape<f32, Cpu>>) {
    let dev = logits.device().clone();
    let batch = y.len();
    if objective.is_plain() {
        let target = dev.tensor_from_vec(y.to_vec(), (batch, 1usize));
        let loss = binary_cross_entropy_with_logits_loss(logits, target) * scale;
        return (loss.array(), loss);
    }
    let z = logits.as_vec();
    let ls = objective.label_smoothing;
    let per_image = scale / batch as f32;
    let mut value = 0.0f64;
    let mut slopes = Vec::with_capacity(batch);
    for (&z, &y) in z.iter().zip(y) {
        let target = y * (1.0 - ls) + 0.5 * ls;
        let w = objective
            .class_weights
            .map_or(1.0, |cw| cw[(y > 0.5) as usize]);
        let zd = z as f64;
        let loss = zd.max(0.0) - zd * target as f64 + (-zd.abs()).exp().ln_1p();
        value += w as f64 * loss;
        let sigmoid = 1.0 / (1.0 + (-z).exp());
        slopes.push(w * (sigmoid - target) * per_image);
    }
    let slopes = dev.tensor_from_vec(slopes, (batch, 1usize));
    let surrogate = (logits * slopes).sum();
    ((value * per_image as f64) as f32, surrogate)
}
