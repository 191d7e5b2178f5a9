//! The multilevel transform itself: separable step-2 filtering with half-sample symmetric
//! extension, vectorised by filtering whole rows at a time.

use super::{Array2, Wavelet, WaveletError};

/// The three detail sub-bands of one level, named as PyWavelets returns them.
#[derive(Debug, Clone, PartialEq)]
pub struct DetailBands {
    /// `cH`: detail along axis 0, approximation along axis 1.
    pub horizontal: Array2,
    /// `cV`: approximation along axis 0, detail along axis 1.
    pub vertical: Array2,
    /// `cD`: detail along both axes.
    pub diagonal: Array2,
}

impl DetailBands {
    /// The bands in PyWavelets' tuple order `(cH, cV, cD)` with their one-letter names.
    pub fn named(&self) -> [(char, &Array2); 3] {
        [
            ('h', &self.horizontal),
            ('v', &self.vertical),
            ('d', &self.diagonal),
        ]
    }
}

/// Result of a multilevel decomposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Decomposition {
    pub level: usize,
    /// Approximation coefficients of the coarsest level (`cA_level`).
    pub approx: Array2,
    /// `(level, bands)` for each computed detail level, coarsest first (PyWavelets' order).
    pub details: Vec<(usize, DetailBands)>,
}

impl Decomposition {
    /// The bands of one detail level, if it was computed.
    pub fn detail(&self, level: usize) -> Option<&DetailBands> {
        self.details
            .iter()
            .find(|(l, _)| *l == level)
            .map(|(_, b)| b)
    }

    /// Every array with its PyWavelets-style name: `aL`, then `hK`, `vK`, `dK` from K = L down.
    pub fn named_arrays(&self) -> Vec<(String, &Array2)> {
        let mut out = vec![(format!("a{}", self.level), &self.approx)];
        for (level, bands) in &self.details {
            for (letter, array) in bands.named() {
                out.push((format!("{letter}{level}"), array));
            }
        }
        out
    }
}

/// Full decomposition, equal to `pywt.wavedec2(image, wavelet, mode='symmetric', level=level)`.
pub fn wavedec2(
    image: &Array2,
    wavelet: &Wavelet,
    level: usize,
) -> Result<Decomposition, WaveletError> {
    let all: Vec<usize> = (1..=level).collect();
    wavedec2_selective(image, wavelet, level, &all)
}

/// Decomposition that computes detail bands only for `keep_levels`.
///
/// Levels whose details are not wanted only need the low-pass half of each filter pass, which
/// quarters the work of the finest (and most expensive) level in the reference setting.
pub fn wavedec2_selective(
    image: &Array2,
    wavelet: &Wavelet,
    level: usize,
    keep_levels: &[usize],
) -> Result<Decomposition, WaveletError> {
    let mut out = wavedec2_many(std::slice::from_ref(image), wavelet, level, keep_levels)?;
    Ok(out.pop().expect("one decomposition per image"))
}

/// Images processed together: each coefficient is a vector of this many lanes, one per
/// image, so every multiply-add of the transform is a full SIMD operation (4 × f64 = AVX2).
pub const LANES: usize = 4;
type Lane = [f64; LANES];

/// A 2-D array whose elements hold the same position of up to [`LANES`] images.
#[derive(Default)]
pub(crate) struct LaneArray {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) data: Vec<Lane>,
}

impl LaneArray {
    /// Reshapes in place, keeping the allocation (contents are overwritten by the caller).
    fn reset(&mut self, rows: usize, cols: usize) {
        self.rows = rows;
        self.cols = cols;
        self.data.resize(rows * cols, [0.0; LANES]);
    }

    /// The values of one lane (image).
    pub(crate) fn lane(&self, lane: usize) -> impl Iterator<Item = f64> + '_ {
        self.data.iter().map(move |v| v[lane])
    }

    fn to_array(&self, lane: usize) -> Array2 {
        Array2::new(self.rows, self.cols, self.lane(lane).collect())
    }
}

/// The decomposition of one group of images, with buffers reused from group to group (the
/// arrays are small, and allocating them afresh costs more than transforming them).
#[derive(Default)]
pub(crate) struct GroupDecomposition {
    /// Number of images (lanes in use).
    pub(crate) lanes: usize,
    pub(crate) approx: LaneArray,
    /// `[cH, cV, cD]` of level `index + 1`; valid for kept levels only.
    pub(crate) details: Vec<[LaneArray; 3]>,
    scratch_low: LaneArray,
    scratch_high: LaneArray,
    scratch_next: LaneArray,
}

thread_local! {
    static WORKSPACE: std::cell::RefCell<GroupDecomposition> = std::cell::RefCell::default();
}

/// Decomposes `images` in groups of up to [`LANES`] same-shaped images and calls `visit`
/// with each group's decomposition and the index of its first image.
pub(crate) fn for_each_group(
    images: &[Array2],
    wavelet: &Wavelet,
    level: usize,
    keep_levels: &[usize],
    mut visit: impl FnMut(&GroupDecomposition, usize),
) -> Result<(), WaveletError> {
    if level == 0 {
        return Err(WaveletError::ZeroLevel(level));
    }
    if let Some(bad) = images.iter().find(|i| i.rows == 0 || i.cols == 0) {
        return Err(WaveletError::EmptyImage {
            rows: bad.rows,
            cols: bad.cols,
        });
    }
    let lo: Vec<f64> = wavelet.dec_lo.iter().rev().copied().collect();
    let hi: Vec<f64> = wavelet.dec_hi.iter().rev().copied().collect();
    WORKSPACE.with_borrow_mut(|ws| {
        let mut start = 0;
        while start < images.len() {
            let shape = (images[start].rows, images[start].cols);
            let mut end = start + 1;
            while end < images.len()
                && end - start < LANES
                && (images[end].rows, images[end].cols) == shape
            {
                end += 1;
            }
            decompose_group(&images[start..end], &lo, &hi, level, keep_levels, ws);
            visit(ws, start);
            start = end;
        }
    });
    Ok(())
}

/// [`wavedec2_selective`] of many images at once; results are in input order.
pub fn wavedec2_many(
    images: &[Array2],
    wavelet: &Wavelet,
    level: usize,
    keep_levels: &[usize],
) -> Result<Vec<Decomposition>, WaveletError> {
    let mut out = Vec::with_capacity(images.len());
    for_each_group(images, wavelet, level, keep_levels, |group, _| {
        for lane in 0..group.lanes {
            let mut details: Vec<(usize, DetailBands)> = (1..=level)
                .filter(|l| keep_levels.contains(l))
                .map(|l| {
                    let [h, v, d] = &group.details[l - 1];
                    let bands = DetailBands {
                        horizontal: h.to_array(lane),
                        vertical: v.to_array(lane),
                        diagonal: d.to_array(lane),
                    };
                    (l, bands)
                })
                .collect();
            details.reverse();
            out.push(Decomposition {
                level,
                approx: group.approx.to_array(lane),
                details,
            });
        }
    })?;
    Ok(out)
}

fn decompose_group(
    group: &[Array2],
    lo: &[f64],
    hi: &[f64],
    level: usize,
    keep_levels: &[usize],
    ws: &mut GroupDecomposition,
) {
    let (rows, cols) = (group[0].rows, group[0].cols);
    ws.lanes = group.len();
    ws.approx.reset(rows, cols);
    ws.approx.data.fill([0.0; LANES]);
    for (lane, image) in group.iter().enumerate() {
        for (d, v) in ws.approx.data.iter_mut().zip(&image.data) {
            d[lane] = *v;
        }
    }
    ws.details
        .resize_with(level.max(ws.details.len()), Default::default);
    for current in 1..=level {
        if keep_levels.contains(&current) {
            let [h, v, d] = &mut ws.details[current - 1];
            analyze(
                &ws.approx,
                Axis::Rows,
                [lo, hi],
                [&mut ws.scratch_low, &mut ws.scratch_high],
            );
            analyze(
                &ws.scratch_low,
                Axis::Cols,
                [lo, hi],
                [&mut ws.scratch_next, v],
            );
            analyze(&ws.scratch_high, Axis::Cols, [lo, hi], [h, d]);
        } else {
            analyze(&ws.approx, Axis::Rows, [lo], [&mut ws.scratch_low]);
            analyze(&ws.scratch_low, Axis::Cols, [lo], [&mut ws.scratch_next]);
        }
        std::mem::swap(&mut ws.approx, &mut ws.scratch_next);
    }
}

/// Output length of one step: `floor((n + f - 1) / 2)`, PyWavelets' `dwt_coeff_len` for
/// the symmetric mode.
pub(crate) fn coeff_len(n: usize, filter_len: usize) -> usize {
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
enum Axis {
    /// Along axis 0: each column is filtered.
    Rows,
    /// Along axis 1: each row is filtered.
    Cols,
}

/// One analysis step along `axis` with each reversed filter: output `o` is
/// `Σ_k g[k] · x_ext[2o + 1 + k]`, PyWavelets' `downsampling_convolution`. Every output
/// lane vector is accumulated in registers over the taps. On CPUs with AVX2 and FMA a copy
/// compiled for them (with fused multiply-add) is used.
fn analyze<const K: usize>(
    x: &LaneArray,
    axis: Axis,
    filters: [&[f64]; K],
    outputs: [&mut LaneArray; K],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::engine::simd::active() >= crate::engine::simd::SimdPath::Avx2 {
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

    #[test]
    fn reference_sizes_for_db5() {
        let mut n = 60;
        let sizes: Vec<usize> = (0..4)
            .map(|_| {
                n = coeff_len(n, 10);
                n
            })
            .collect();
        assert_eq!(sizes, vec![34, 21, 15, 12]);
    }

    #[test]
    fn haar_of_a_constant_has_no_detail() {
        let img = Array2::new(4, 4, vec![3.0; 16]);
        let w = Wavelet::from_name("haar").unwrap();
        let d = wavedec2(&img, &w, 1).unwrap();
        assert_eq!(d.approx.rows, 2);
        for v in &d.approx.data {
            assert!((v - 6.0).abs() < 1e-12);
        }
        for (_, a) in d.detail(1).unwrap().named() {
            assert!(a.data.iter().all(|v| v.abs() < 1e-12));
        }
    }

    #[test]
    fn selective_matches_full_on_kept_levels() {
        let img = Array2::new(20, 17, (0..340).map(|i| ((i * 37) % 101) as f64).collect());
        let w = Wavelet::from_name("sym4").unwrap();
        let full = wavedec2(&img, &w, 3).unwrap();
        let sel = wavedec2_selective(&img, &w, 3, &[2]).unwrap();
        assert_eq!(full.approx, sel.approx);
        assert_eq!(full.detail(2), sel.detail(2));
        assert!(sel.detail(1).is_none() && sel.detail(3).is_none());
    }

    #[test]
    fn zero_level_is_an_error() {
        let img = Array2::new(4, 4, vec![0.0; 16]);
        let w = Wavelet::from_name("db2").unwrap();
        assert_eq!(wavedec2(&img, &w, 0), Err(WaveletError::ZeroLevel(0)));
    }
}
