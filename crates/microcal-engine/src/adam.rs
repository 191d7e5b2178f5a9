//! Adam, applied to parameter tensors through their gradients as plain vectors.
//!
//! dfdx's own optimiser needs its module traits on compile-time-shaped layers; our layers
//! have shapes known only at run time, and a twenty-line Adam keeps the update explicit and
//! deterministic.

use dfdx::prelude::*;

use super::kernel::with_avx2;

/// A trainable tensor with its Adam moments.
#[derive(Debug, Clone)]
pub struct Param<S: Shape> {
    pub(crate) tensor: Tensor<S, f32, Cpu>,
    m: Vec<f32>,
    v: Vec<f32>,
    /// Whether weight decay applies (weights yes, biases no).
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

    /// One Adam step from this parameter's gradient in `grads`.
    pub(crate) fn step(&mut self, grads: &Gradients<f32, Cpu>, adam: &Adam) {
        let grad = super::contiguous_vec(&grads.get(&self.tensor));
        self.step_with(&grad, adam);
    }

    /// One Adam step from an explicit gradient (in parallel chunks for large tensors).
    pub(crate) fn step_with(&mut self, grad: &[f32], adam: &Adam) {
        use rayon::prelude::*;
        let mut values = self.values();
        let t = adam.step.max(1) as i32;
        let (b1, b2, lr, eps) = (adam.beta1, adam.beta2, adam.lr, adam.eps);
        let correction1 = 1.0 - b1.powi(t);
        let correction2 = 1.0 - b2.powi(t);
        let wd = if self.decay { adam.weight_decay } else { 0.0 };
        let rule = Rule {
            b1,
            b2,
            lr,
            eps,
            wd,
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
        self.tensor.copy_from(&values);
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
    with_avx2! {
        /// Updates values `v` and moments `m`, `s` from gradient `g`, elementwise.
        fn apply / apply_avx2 => apply_here(
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

/// Adam's hyper-parameters and step counter (Keras defaults: β1 0.9, β2 0.999, ε 1e-7).
#[derive(Debug, Clone)]
pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub(crate) step: u64,
}

impl Adam {
    pub fn new(lr: f64, weight_decay: f64) -> Self {
        Self {
            lr: lr as f32,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            weight_decay: weight_decay as f32,
            step: 0,
        }
    }

    /// Advances the step counter; call once per mini-batch before updating parameters.
    pub fn next_step(&mut self) {
        self.step += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_minimises_a_quadratic() {
        let dev = Cpu::seed_from_u64(0);
        let mut p = Param::new(&dev, vec![3.0, -2.0], (2usize,), false);
        let mut adam = Adam::new(0.1, 0.0);
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
        let mut adam = Adam::new(0.01, 0.0);
        adam.next_step();
        p.step_with(&[5.0, -0.1], &adam);
        let v = p.values();
        assert!(
            (v[0] - 0.99).abs() < 1e-5 && (v[1] - 1.01).abs() < 1e-5,
            "{v:?}"
        );
    }
}
