//! Training-time augmentation of square images: flips, quarter turns and shifts, drawn per
//! image from the job's seed.

use crate::rng::Rng;

/// An augmentation name that is not one of the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown augmentation `{0}`; valid: \"hflip\", \"vflip\", \"rot90\", \"shift:N\" (N ≥ 1 pixels)")]
pub struct UnknownAugment(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Augment {
    /// Mirror left-right with probability 1/2.
    HFlip,
    /// Mirror top-bottom with probability 1/2.
    VFlip,
    /// Rotate by 0, 90, 180 or 270 degrees.
    Rot90,
    /// Translate by up to ±n pixels in each direction, filling with the nearest edge pixel.
    Shift(usize),
}

impl Augment {
    /// Parses `hflip`, `vflip`, `rot90` or `shift:N`.
    pub fn parse(text: &str) -> Result<Self, UnknownAugment> {
        match text {
            "hflip" => Ok(Augment::HFlip),
            "vflip" => Ok(Augment::VFlip),
            "rot90" => Ok(Augment::Rot90),
            other => match other.strip_prefix("shift:").map(str::parse::<usize>) {
                Some(Ok(n)) if n > 0 => Ok(Augment::Shift(n)),
                _ => Err(UnknownAugment(other.to_string())),
            },
        }
    }

    /// Applies this augmentation (with its random choice) to one `size`×`size` image.
    pub fn apply(self, image: &mut [f32], size: usize, rng: &mut Rng) {
        let source = image.to_vec();
        let at = |y: usize, x: usize| source[y * size + x];
        let last = size - 1;
        match self {
            Augment::HFlip if rng.uniform() < 0.5 => remap(image, size, |y, x| at(y, last - x)),
            Augment::VFlip if rng.uniform() < 0.5 => remap(image, size, |y, x| at(last - y, x)),
            Augment::Rot90 => match rng.below(4) {
                1 => remap(image, size, |y, x| at(x, last - y)),
                2 => remap(image, size, |y, x| at(last - y, last - x)),
                3 => remap(image, size, |y, x| at(last - x, y)),
                _ => {}
            },
            Augment::Shift(n) => {
                let dy = rng.below(2 * n + 1) as isize - n as isize;
                let dx = rng.below(2 * n + 1) as isize - n as isize;
                let clamp = |v: isize| v.clamp(0, last as isize) as usize;
                remap(image, size, |y, x| {
                    at(clamp(y as isize - dy), clamp(x as isize - dx))
                });
            }
            _ => {}
        }
    }
}

fn remap(image: &mut [f32], size: usize, value: impl Fn(usize, usize) -> f32) {
    for y in 0..size {
        for x in 0..size {
            image[y * size + x] = value(y, x);
        }
    }
}

/// Applies each augmentation in turn to every image of a batch (`images`: n × size²).
pub fn augment_batch(augments: &[Augment], images: &mut [f32], size: usize, rng: &mut Rng) {
    for image in images.chunks_mut(size * size) {
        for a in augments {
            a.apply(image, size, rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(Augment::parse("shift:6"), Ok(Augment::Shift(6)));
        assert!(Augment::parse("shift:0").is_err());
        assert!(Augment::parse("zoom")
            .unwrap_err()
            .to_string()
            .contains("rot90"));
    }

    #[test]
    fn transforms_permute_pixels_and_keep_content() {
        let original: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut rng = Rng::new(1);
        let mut seen_changed = false;
        for a in [Augment::HFlip, Augment::VFlip, Augment::Rot90] {
            for _ in 0..8 {
                let mut img = original.clone();
                a.apply(&mut img, 4, &mut rng);
                let mut sorted = img.clone();
                sorted.sort_by(f32::total_cmp);
                assert_eq!(sorted, original, "{a:?} permutes pixels");
                seen_changed |= img != original;
            }
        }
        assert!(seen_changed);
        let mut img = original.clone();
        Augment::HFlip.apply(&mut img, 4, &mut Rng::new(0));
        Augment::HFlip.apply(&mut img, 4, &mut Rng::new(0));
        assert_eq!(img, original, "the same draw twice undoes a flip");
    }
}
