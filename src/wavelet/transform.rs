//! The multilevel transform itself: separable step-2 filtering with half-sample symmetric
//! extension, vectorised by filtering whole rows at a time.

pub(crate) use microcal_engine::lanes::coeff_len;
pub use microcal_engine::lanes::LANES;
use microcal_engine::lanes::{analyze, Axis, LaneArray};

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

/// One lane (image) of a lane array as an [`Array2`].
fn to_array(array: &LaneArray, lane: usize) -> Array2 {
    Array2::new(array.rows, array.cols, array.lane(lane).collect())
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
                        horizontal: to_array(h, lane),
                        vertical: to_array(v, lane),
                        diagonal: to_array(d, lane),
                    };
                    (l, bands)
                })
                .collect();
            details.reverse();
            out.push(Decomposition {
                level,
                approx: to_array(&group.approx, lane),
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

#[cfg(test)]
mod tests {
    use super::*;

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
