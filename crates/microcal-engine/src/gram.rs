//! `a · bᵀ` for row-major `a` (m × k) and `b` (n × k): the kernel matrices of the SVM and
//! the distances of k-NN.
//!
//! Which product: the engine's tile (`linalg`), so that every product of microcal runs on
//! one kernel, the one `MICROCAL_SIMD` governs (the `matrixmultiply` crate, which the
//! classifiers used before, picks its own kernel at run time). Bake-off on the reference
//! features, AMD EPYC Zen 4, 2026-12-02, alternated rounds:
//! - the product alone, one thread, 636 × 2,430 times its transpose: 21.3-22.7 ms on the
//!   tile (86.7-92.2 GFLOP/s) against 22.7-25.0 ms (78.6-86.8) for matrixmultiply; 161 × 636
//!   (Test against Train) 6.5-7.3 ms against 6.7-8.6;
//! - the whole SVM fit (`microcal bench classical`, 3 rounds): 0.035-0.038 s against
//!   0.030-0.035 s, so end to end the two are within the host's noise, matrixmultiply a
//!   little ahead. One kernel for all products was worth that.

use crate::linalg::{matmul, Operand};

/// `a · bᵀ` (m × n, row-major) for `a` holding m rows and `b` n rows of `k` floats.
///
/// # Panics
/// If `k` is 0 or a slice's length is not a multiple of `k`.
pub fn gram(a: &[f32], b: &[f32], k: usize) -> Vec<f32> {
    assert!(
        k > 0 && a.len().is_multiple_of(k) && b.len().is_multiple_of(k),
        "rows of k floats"
    );
    let (m, n) = (a.len() / k, b.len() / k);
    let mut out = vec![0.0f32; m * n];
    if m == 0 || n == 0 {
        return out;
    }
    let bt = Operand {
        data: b,
        row_stride: 1,
        col_stride: k,
    };
    matmul(m, n, k, &mut out, false, Operand::rows(a, k), bt);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn gram_matches_the_definition() {
        let mut rng = Rng::new(5);
        let k = 37;
        let a: Vec<f32> = (0..7 * k).map(|_| rng.normal() as f32).collect();
        let b: Vec<f32> = (0..19 * k).map(|_| rng.normal() as f32).collect();
        let g = gram(&a, &b, k);
        assert_eq!(g.len(), 7 * 19);
        for i in 0..7 {
            for j in 0..19 {
                let want: f64 = (0..k)
                    .map(|p| a[i * k + p] as f64 * b[j * k + p] as f64)
                    .sum();
                assert!((g[i * 19 + j] as f64 - want).abs() < 1e-4, "{i},{j}");
            }
        }
        assert!(gram(&[], &b, k).is_empty());
    }
}
