//! The optimisers (Adam, AdamW, SGD with momentum), applied to parameter tensors through
//! their gradients as plain vectors, and clipping by the gradients' global norm.
//!
//! dfdx's own optimisers need its module traits on compile-time-shaped layers; our layers
//! have shapes known only at run time, and a few explicit update rules keep every step
//! deterministic. Adam's rule is the one the committed results were trained with (ε added
//! to the bias-corrected root, where Keras adds it to the uncorrected one: the same step
//! to within ε's share, a relative 1e-6 for these gradients).

use dfdx::prelude::*;

use super::kernel::with_simd;

/// A trainable tensor with its optimiser state (Adam's two moments, or SGD's velocity).
#[derive(Debug, Clone)]
pub struct Param<S: Shape> {
    pub(crate) tensor: Tensor<S, f32, Cpu>,
    m: Vec<f32>,
    v: Vec<f32>,
    /// Whether weight decay applies (weights yes; biases and batch norm's scale and shift
    /// no).
    decay: bool,
}

impl<S: Shape> Param<S> {
    pub(crate) fn new(dev: &Cpu, values: Vec<f32>, shape: S, decay: bool) -> Self {
        let n = values.len();
        Self {
            tensor: dev.tensor_from_vec(values, shape),
            m: vec![0.0; n],
            v: vec![0.0; n],
            decay,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.m.len()
    }

    pub(crate) fn values(&self) -> Vec<f32> {
        super::contiguous_vec(&self.tensor)
    }

    pub(crate) fn set_values(&mut self, values: &[f32]) {
        self.tensor.copy_from(values);
    }

    /// This parameter's gradient, taken out of `grads` (moved, not copied: dfdx's `get`
    /// clones it into a new tensor). Zeros where the loss does not depend on it.
    pub(crate) fn take_grad(&self, grads: &mut Gradients<f32, Cpu>) -> Vec<f32> {
        let gradient = grads
            .get_or_alloc_mut(&self.tensor)
            .expect("dfdx's CPU device fails to allocate only when memory runs out");
        std::mem::take(&mut **gradient)
    }

    /// One optimiser step from an explicit gradient (in parallel chunks for large tensors).
    pub(crate) fn step_with(&mut self, grad: &[f32], opt: &Optimizer) {
        use rayon::prelude::*;
        const CHUNK: usize = 1 << 14;
        // A recycled buffer: copied into a new vector, every value was written twice.
        let mut values = super::copies::copied(&self.tensor);
        let wd = if self.decay { opt.weight_decay } else { 0.0 };
        match opt.kind {
            OptimizerKind::Adam => self.adam_step(&mut values, grad, opt, wd, false),
            OptimizerKind::AdamW => self.adam_step(&mut values, grad, opt, wd, true),
            OptimizerKind::Sgd { momentum, nesterov } => {
                let lr = opt.lr;
                values
                    .par_chunks_mut(CHUNK)
                    .zip(grad.par_chunks(CHUNK))
                    .zip(self.m.par_chunks_mut(CHUNK))
                    .for_each(|((v, g), m)| {
                        for i in 0..v.len() {
                            // Keras: decoupled decay first, then the momentum step.
                            v[i] -= lr * wd * v[i];
                            m[i] = momentum * m[i] - lr * g[i];
                            v[i] += if nesterov {
                                momentum * m[i] - lr * g[i]
                            } else {
                                m[i]
                            };
                        }
                    });
            }
        }
        self.tensor.copy_from(&values);
    }

    /// Adam's step; `decoupled`: AdamW's decay (the value shrunk by lr·wd before the step)
    /// instead of Adam's L2 term in the gradient.
    fn adam_step(
        &mut self,
        values: &mut [f32],
        grad: &[f32],
        opt: &Optimizer,
        wd: f32,
        decoupled: bool,
    ) {
        use rayon::prelude::*;
        let t = opt.step.max(1) as i32;
        let (b1, b2, lr, eps) = (opt.beta1, opt.beta2, opt.lr, opt.eps);
        let correction1 = 1.0 - b1.powi(t);
        let correction2 = 1.0 - b2.powi(t);
        if decoupled {
            values.iter_mut().for_each(|v| *v -= lr * wd * *v);
        }
        let rule = Rule {
            b1,
            b2,
            lr,
            eps,
            wd: if decoupled { 0.0 } else { wd },
            correction1,
            correction2,
        };
        const CHUNK: usize = 1 << 14;
        values
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .zip(self.m.par_chunks_mut(CHUNK))
            .zip(self.v.par_chunks_mut(CHUNK))
            .for_each(|(((v, g), m), s)| rule.apply(v, g, m, s));
    }
}

/// A parameter of any shape, as the networks walk their layers for gradients and updates.
pub(crate) trait AnyParam {
    fn len(&self) -> usize;
    fn take_grad(&self, grads: &mut Gradients<f32, Cpu>) -> Vec<f32>;
    fn step_with(&mut self, grad: &[f32], opt: &Optimizer);
}

impl<S: Shape> AnyParam for Param<S> {
    fn len(&self) -> usize {
        Param::len(self)
    }
    fn take_grad(&self, grads: &mut Gradients<f32, Cpu>) -> Vec<f32> {
        Param::take_grad(self, grads)
    }
    fn step_with(&mut self, grad: &[f32], opt: &Optimizer) {
        Param::step_with(self, grad, opt)
    }
}

/// One step's update rule, with its bias corrections.
struct Rule {
    b1: f32,
    b2: f32,
    lr: f32,
    eps: f32,
    wd: f32,
    correction1: f32,
    correction2: f32,
}

impl Rule {
    with_simd! {
        /// Updates values `v` and moments `m`, `s` from gradient `g`, elementwise.
        fn apply / apply_avx2 / apply_avx512 => apply_here(
            &self, v: &mut [f32], g: &[f32], m: &mut [f32], s: &mut [f32]
        )
    }

    #[inline(always)]
    fn apply_here(&self, v: &mut [f32], g: &[f32], m: &mut [f32], s: &mut [f32]) {
        let n = v.len().min(g.len()).min(m.len()).min(s.len());
        let (v, g, m, s) = (&mut v[..n], &g[..n], &mut m[..n], &mut s[..n]);
        for i in 0..n {
            let g = g[i] + self.wd * v[i];
            m[i] = self.b1 * m[i] + (1.0 - self.b1) * g;
            s[i] = self.b2 * s[i] + (1.0 - self.b2) * g * g;
            v[i] -=
                self.lr * (m[i] / self.correction1) / ((s[i] / self.correction2).sqrt() + self.eps);
        }
    }
}

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerKind {
    /// Adam, with `weight_decay` as an L2 term added to the gradient (Keras's `l2`
    /// regulariser on the kernels).
    Adam,
    /// Adam with decoupled weight decay (Loshchilov & Hutter; Keras's `AdamW`).
    AdamW,
    /// Stochastic gradient descent with (Nesterov) momentum and decoupled weight decay, as
    /// Keras's `SGD`.
    Sgd { momentum: f32, nesterov: bool },
}

/// An optimiser's hyper-parameters and step counter (Adam: Keras's β1 0.9, β2 0.999,
/// ε 1e-7); `lr` may change between steps (a schedule sets it).
#[derive(Debug, Clone)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Applies to weights (kernels), not to biases or batch norm's scale and shift.
    pub weight_decay: f32,
    /// Scales all gradients down so that their global L2 norm is at most this (Keras's
    /// `global_clipnorm`).
    pub clip_norm: Option<f32>,
    pub(crate) step: u64,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, lr: f64, weight_decay: f64) -> Self {
        Self {
            kind,
            lr: lr as f32,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            weight_decay: weight_decay as f32,
            clip_norm: None,
            step: 0,
        }
    }

    /// Adam with L2 weight decay (the committed results' optimiser).
    pub fn adam(lr: f64, weight_decay: f64) -> Self {
        Self::new(OptimizerKind::Adam, lr, weight_decay)
    }

    /// Advances the step counter; call once per mini-batch before updating parameters.
    pub fn next_step(&mut self) {
        self.step += 1;
    }

    /// Scales `grads` (all of a step's) down to the clipping norm, if set and exceeded.
    pub(crate) fn clip(&self, grads: &mut [Vec<f32>]) {
        let Some(limit) = self.clip_norm else { return };
        let norm = grads
            .iter()
            .flatten()
            .map(|g| (*g as f64) * (*g as f64))
            .sum::<f64>()
            .sqrt();
        if norm > limit as f64 {
            let scale = (limit as f64 / norm) as f32;
            grads.iter_mut().flatten().for_each(|g| *g *= scale);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_minimises_a_quadratic() {
        let dev = Cpu::seed_from_u64(0);
        let mut p = Param::new(&dev, vec![3.0, -2.0], (2usize,), false);
        let mut adam = Optimizer::adam(0.1, 0.0);
        for _ in 0..300 {
            adam.next_step();
            let v = p.values();
            let grad: Vec<f32> = v.iter().map(|x| 2.0 * x).collect();
            p.step_with(&grad, &adam);
        }
        assert!(
            p.values().iter().all(|x| x.abs() < 0.05),
            "{:?}",
            p.values()
        );
    }

    #[test]
    fn first_step_moves_by_lr_in_the_gradient_sign() {
        let dev = Cpu::seed_from_u64(0);
        let mut p = Param::new(&dev, vec![1.0, 1.0], (2usize,), false);
        let mut adam = Optimizer::adam(0.01, 0.0);
        adam.next_step();
        p.step_with(&[5.0, -0.1], &adam);
        let v = p.values();
        assert!(
            (v[0] - 0.99).abs() < 1e-5 && (v[1] - 1.01).abs() < 1e-5,
            "{v:?}"
        );
    }
}
