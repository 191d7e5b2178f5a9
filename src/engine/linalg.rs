//! Matrix products on `f32` slices through the `gemm` crate (the kernel dfdx itself uses),
//! with strides so that transposed operands need no copy.

use gemm::Parallelism;

/// An operand: data with its row and column strides (row-major m×k: `(k, 1)`;
/// the transpose of a row-major k×m matrix: `(1, m)`).
#[derive(Clone, Copy)]
pub(crate) struct Operand<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Operand<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }

    fn covers(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `c` (m×n, row-major) = (`accumulate` ? `c` : 0) + `a` (m×k) · `b` (k×n).
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    accumulate: bool,
    a: Operand,
    b: Operand,
) {
    assert!(
        c.len() >= m * n && a.covers(m, k) && b.covers(k, n),
        "matmul operands too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // Callers parallelise over images; a product inside a rayon task stays on its thread.
    let parallelism = if m * n * k >= 1 << 18 && rayon::current_thread_index().is_none() {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    };
    // SAFETY: the assertion above keeps every index gemm touches inside the slices; `c` is
    // borrowed mutably and cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_with_transposes_match_the_definition() {
        let a: Vec<f32> = (0..6).map(|v| v as f32).collect(); // 2×3
        let b: Vec<f32> = (0..12).map(|v| (v % 5) as f32 - 2.0).collect(); // 3×4
        let mut c = vec![1.0; 8];
        matmul(
            2,
            4,
            3,
            &mut c,
            true,
            Operand::rows(&a, 3),
            Operand::rows(&b, 4),
        );
        for i in 0..2 {
            for j in 0..4 {
                let want: f32 = 1.0 + (0..3).map(|k| a[i * 3 + k] * b[k * 4 + j]).sum::<f32>();
                assert_eq!(c[i * 4 + j], want);
            }
        }
        // aᵀ·a (3×3) from a stored 2×3.
        let mut g = vec![0.0; 9];
        matmul(
            3,
            3,
            2,
            &mut g,
            false,
            Operand::transposed(&a, 3),
            Operand::rows(&a, 3),
        );
        assert_eq!(g[1], a[0] * a[1] + a[3] * a[4], "row 0, column 1");
    }
}
