//! A network's wavelet front end (`{ dwt = FAMILY, level = L }` as its first layer): each
//! image becomes four channels, the level-L approximation and its three detail sub-bands
//! (cH, cV, cD), from the same PyWavelets-exact transform as the wavelet features. Not
//! trained; applied to each batch after augmentation, so flips and rotations act on the
//! pixels as for any network.

use crate::wavelet::{wavedec2_many, Array2, Wavelet, WaveletError};

/// The transform a network's first layer asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct DwtFront {
    pub wavelet: Wavelet,
    pub level: usize,
}

impl DwtFront {
    /// The front end for `family` at `level`, or why not for `size`×`size` images (an
    /// unknown family, or a level beyond PyWavelets' `dwt_max_level`).
    pub fn new(family: &str, level: usize, size: usize) -> Result<Self, String> {
        let wavelet = Wavelet::from_name(family).map_err(|e| e.to_string())?;
        // pywt.dwt_max_level: log2(n / (filter length − 1)).
        let max = ((size as f64) / (wavelet.len() as f64 - 1.0))
            .log2()
            .floor()
            .max(0.0) as usize;
        if level == 0 || level > max {
            return Err(format!(
                "level must be in 1..={max} for {family} on {size}x{size} images \
                 (PyWavelets' dwt_max_level), got {level}"
            ));
        }
        Ok(Self { wavelet, level })
    }

    /// Side of the sub-bands of a `size`×`size` image.
    pub fn output_size(&self, size: usize) -> usize {
        (0..self.level).fold(size, |n, _| (n + self.wavelet.len() - 1) / 2)
    }

    /// The four sub-bands of each `size`×`size` image in `images`, interleaved per position
    /// (NHWC: approximation, horizontal, vertical, diagonal).
    pub fn apply(&self, images: &[f32], size: usize) -> Result<Vec<f32>, WaveletError> {
        let arrays: Vec<Array2> = images
            .chunks(size * size)
            .map(|p| Array2::new(size, size, p.iter().map(|&v| v as f64).collect()))
            .collect();
        let decompositions = wavedec2_many(&arrays, &self.wavelet, self.level, &[self.level])?;
        let side = self.output_size(size);
        let mut out = Vec::with_capacity(arrays.len() * side * side * 4);
        for d in &decompositions {
            let bands = d.detail(self.level).expect("the coarsest level was kept");
            let channels = [
                &d.approx,
                &bands.horizontal,
                &bands.vertical,
                &bands.diagonal,
            ];
            for p in 0..side * side {
                out.extend(channels.iter().map(|c| c.data[p] as f32));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_pywt_bands_per_position() {
        let front = DwtFront::new("haar", 1, 4).unwrap();
        assert_eq!(front.output_size(4), 2);
        let image: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let out = front.apply(&image, 4).unwrap();
        // pywt.dwt2(np.arange(16.).reshape(4, 4), 'haar'): cA[0,0] = (0+1+4+5)/2 = 5,
        // cH[0,0] = (0+1-4-5)/2 = -4, cV[0,0] = (0-1+4-5)/2 = -1, cD[0,0] = 0.
        for (got, want) in out[..4].iter().zip([5.0, -4.0, -1.0, 0.0]) {
            assert!((got - want).abs() < 1e-6, "{:?}", &out[..4]);
        }
        assert_eq!(out.len(), 2 * 2 * 4);
        assert!(DwtFront::new("db5", 3, 60).unwrap_err().contains("1..=2"));
        assert!(DwtFront::new("db99", 1, 60)
            .unwrap_err()
            .contains("unknown wavelet"));
    }
}
