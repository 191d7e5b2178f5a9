//! Filter banks applied to up to four images at once: the inner loop of microcal's 2-D
//! discrete wavelet transform (`wavelet::transform` drives it).
//!
//! Why here: each coefficient is a vector of four lanes, one per image, so every
//! multiply-add of the transform is one SIMD operation; on the `avx2` and `avx512` paths the
//! loop is compiled for AVX2 with fused multiply-adds, on `portable` without (the engine
//! holds every target-feature switch, see `simd`). Measured on the development machine: 61,100
//! images/s on two threads against PyWavelets' 4,400 (docs/benchmarks.md).

/// Images processed together: each coefficient is a vector of this many lanes, one per
/// image, so every multiply-add of the transform is a full SIMD operation (4 × f64 = AVX2).
pub const LANES: usize = 4;
pub type Lane = [f64; LANES];

/// A 2-D array whose elements hold the same position of up to [`LANES`] images.
#[derive(Default)]
pub struct LaneArray {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<Lane>,
}

impl LaneArray {
    /// Reshapes in place, keeping the allocation (contents are overwritten by the caller).
    pub fn reset(&mut self, rows: usize, cols: usize) {
        self.rows = rows;
        self.cols = cols;
        self.data.resize(rows * cols, [0.0; LANES]);
    }

    /// The values of one lane (image).
    pub fn lane(&self, lane: usize) -> impl Iterator<Item = f64> + '_ {
        self.data.iter().map(move |v| v[lane])
    }
}

/// Output length of one step: `floor((n + f - 1) / 2)`, PyWavelets' `dwt_coeff_len` for
/// the symmetric mode.
pub fn coeff_len(n: usize, filter_len: usize) -> usize {
    (n + filter_len - 1) / 2
}

/// Source index of position `t` of the extended signal, which starts `pad` samples before
/// the real one: half-sample symmetric extension (`... x1 x0 | x0 x1 ... xn-1 | xn-1 ...`),
/// repeated as often as needed when the filter is longer than the signal.
fn symmetric_index(t: usize, pad: usize, n: usize) -> usize {
    let period = 2 * n as i64;
    let m = (t as i64 - pad as i64).rem_euclid(period) as usize;
    if m < n {
        m
    } else {
        2 * n - 1 - m
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Axis {
    /// Along axis 0: each column is filtered.
    Rows,
    /// Along axis 1: each row is filtered.
    Cols,
}

/// One analysis step along `axis` with each reversed filter: output `o` is
/// `Σ_k g[k] · x_ext[2o + 1 + k]`, PyWavelets' `downsampling_convolution`. Every output
/// lane vector is accumulated in registers over the taps. On CPUs with AVX2 and FMA a copy
/// compiled for them (with fused multiply-add) is used.
pub fn analyze<const K: usize>(
    x: &LaneArray,
    axis: Axis,
    filters: [&[f64]; K],
    outputs: [&mut LaneArray; K],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::simd::active() >= crate::simd::SimdPath::Avx2 {
            // SAFETY: the active SIMD path is one the CPU supports, and avx2 and avx512 both
            // include AVX2 and FMA, the features the function is compiled for.
            return unsafe { analyze_avx2_fma(x, axis, filters, outputs) };
        }
    }
    analyze_generic::<K, false>(x, axis, filters, outputs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn analyze_avx2_fma<const K: usize>(
    x: &LaneArray,
    axis: Axis,
    filters: [&[f64]; K],
    outputs: [&mut LaneArray; K],
) {
    analyze_generic::<K, true>(x, axis, filters, outputs)
}

#[inline(always)]
fn analyze_generic<const K: usize, const FMA: bool>(
    x: &LaneArray,
    axis: Axis,
    filters: [&[f64]; K],
    mut outputs: [&mut LaneArray; K],
) {
    let f = filters[0].len();
    let (n, other) = match axis {
        Axis::Rows => (x.rows, x.cols),
        Axis::Cols => (x.cols, x.rows),
    };
    let out_n = coeff_len(n, f);
    let pad = f - 1;
    // Offset of each extended-signal position along the filtered axis.
    let (step_in, step_other) = match axis {
        Axis::Rows => (x.cols, 1),
        Axis::Cols => (1, x.cols),
    };
    let offsets: Vec<usize> = (0..n + 2 * pad)
        .map(|t| symmetric_index(t, pad, n) * step_in)
        .collect();
    let (out_rows, out_cols) = match axis {
        Axis::Rows => (out_n, x.cols),
        Axis::Cols => (x.rows, out_n),
    };
    let (out_step, out_other) = match axis {
        Axis::Rows => (out_cols, 1),
        Axis::Cols => (1, out_cols),
    };
    for out in outputs.iter_mut() {
        out.reset(out_rows, out_cols);
    }
    for j in 0..other {
        let base = j * step_other;
        for o in 0..out_n {
            let window = &offsets[2 * o + 1..2 * o + 1 + f];
            let mut acc = [[0.0; LANES]; K];
            for (k, &off) in window.iter().enumerate() {
                let s = &x.data[base + off];
                for q in 0..K {
                    let g = filters[q][k];
                    for l in 0..LANES {
                        acc[q][l] = if FMA {
                            g.mul_add(s[l], acc[q][l])
                        } else {
                            acc[q][l] + g * s[l]
                        };
                    }
                }
            }
            for q in 0..K {
                outputs[q].data[o * out_step + j * out_other] = acc[q];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_extension_mirrors_including_the_edge_sample() {
        // n = 3, pad = 4: x2 x2 x1 x0 | x0 x1 x2 | x2 x1 x0 x0 (reflected again past 2n)
        let idx: Vec<usize> = (0..11).map(|t| symmetric_index(t, 4, 3)).collect();
        assert_eq!(idx, vec![2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0]);
    }
}
