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
pub fn wavedec2(image: &Array2, wavelet: &Wavelet, level: usize) -> Result<Decomposition, WaveletError> {
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
    if level == 0 {
        return Err(WaveletError::ZeroLevel(level));
    }
    if image.rows == 0 || image.cols == 0 {
        return Err(WaveletError::EmptyImage {
            rows: image.rows,
            cols: image.cols,
        });
    }
    let lo: Vec<f64> = wavelet.dec_lo.iter().rev().copied().collect();
    let hi: Vec<f64> = wavelet.dec_hi.iter().rev().copied().collect();
    let mut approx = image.clone();
    let mut details = Vec::new();
    for current in 1..=level {
        if keep_levels.contains(&current) {
            let [l, h] = analyze_axis0(&approx, &[&lo, &hi]);
            let [ll, lh] = analyze_axis1(&l, &[&lo, &hi]);
            let [hl, hh] = analyze_axis1(&h, &[&lo, &hi]);
            details.push((
                current,
                DetailBands {
                    horizontal: hl,
                    vertical: lh,
                    diagonal: hh,
                },
            ));
            approx = ll;
        } else {
            let [l] = analyze_axis0(&approx, &[&lo]);
            let [ll] = analyze_axis1(&l, &[&lo]);
            approx = ll;
        }
    }
    details.reverse();
    Ok(Decomposition {
        level,
        approx,
        details,
    })
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

/// Filters every column of `x` (i.e. along axis 0) with each reversed filter and keeps every
/// second output, starting at the second one, as PyWavelets' `downsampling_convolution` does.
/// Working on whole rows keeps the inner loop a contiguous multiply-add that the compiler
/// vectorises.
fn analyze_axis0<const K: usize>(x: &Array2, reversed_filters: &[&[f64]; K]) -> [Array2; K] {
    let f = reversed_filters[0].len();
    let n = x.rows;
    let cols = x.cols;
    let out_rows = coeff_len(n, f);
    let pad = f - 1;
    let source_rows: Vec<usize> = (0..n + 2 * pad).map(|t| symmetric_index(t, pad, n)).collect();
    let mut outputs: [Vec<f64>; K] = std::array::from_fn(|_| vec![0.0; out_rows * cols]);
    for o in 0..out_rows {
        for k in 0..f {
            let src = &x.data[source_rows[2 * o + 1 + k] * cols..][..cols];
            for (out, filter) in outputs.iter_mut().zip(reversed_filters) {
                let g = filter[k];
                let dst = &mut out[o * cols..][..cols];
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += g * s;
                }
            }
        }
    }
    outputs.map(|data| Array2::new(out_rows, cols, data))
}

/// Filtering along axis 1: transpose, filter along axis 0, transpose back.
fn analyze_axis1<const K: usize>(x: &Array2, reversed_filters: &[&[f64]; K]) -> [Array2; K] {
    analyze_axis0(&x.transposed(), reversed_filters).map(|a| a.transposed())
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
