//! Working buffers of `f32` whose first value starts a cache line (64 bytes).
//!
//! Why: the tile code loads one 64-byte row of packed B at every step, and the Winograd
//! transforms load and store 16-float vectors. A `Vec<f32>` starts wherever the allocator
//! puts it (16-byte aligned here), so most of those vectors straddle two cache lines, and
//! a load that does costs about two. Measured with the AVX-512 tile on products with B and
//! C at each offset within a line (Xeon with AVX-512, 2026-12-03, three alternated rounds,
//! GFLOP/s, aligned against the three other offsets): 36×128×128, 87-96 against 75-84;
//! 30×32×64, 82-84 against 73-78; 9×128×128, 62-66 against 55-59; 6×384×32, 88-90
//! against 73-81. No crate in the dependency tree offers an aligned vector, and this one is
//! a few lines.
//!
//! Alignment changes no arithmetic, so results keep their bits.

use std::ops::{Deref, DerefMut};

/// Floats per cache line.
const LINE: usize = 16;

/// One cache line of floats: `repr(C)` with no padding, so lines in a row are floats in a
/// row.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([f32; LINE]);

/// A growable run of floats starting on a cache line; dereferences to `[f32]`.
#[derive(Clone, Default)]
pub(crate) struct AlignedFloats {
    lines: Vec<Line>,
    /// Floats in use: at most `LINE * lines.len()`.
    len: usize,
}

impl AlignedFloats {
    /// Like `Vec::resize`: keeps the first `len` values there are and sets any new ones to
    /// `value`.
    pub fn resize(&mut self, len: usize, value: f32) {
        let old = self.len;
        self.resize_for_overwrite(len);
        if len > old {
            // Values past the old length may be left from a longer past.
            self[old..].fill(value);
        }
    }

    /// Makes the length `len` without setting any value: those within the longest length
    /// the buffer has had keep what they held, memory beyond it is zero. For a buffer whose
    /// users write every value before they read it: a scratch buffer that shrinks and grows
    /// again between uses is not cleared each time (the memory is never given back).
    pub fn resize_for_overwrite(&mut self, len: usize) {
        let lines = len.div_ceil(LINE);
        if lines > self.lines.len() {
            self.lines.resize(lines, Line([0.0; LINE]));
        }
        self.len = len;
    }

    /// Empties the buffer (keeping its memory).
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl Deref for AlignedFloats {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        // SAFETY: `Line` is `repr(C)` around `[f32; LINE]` with no padding, so the vector's
        // lines are `LINE * lines.len()` initialised floats in a row, and `len` never
        // exceeds that (`resize_for_overwrite` sets it after growing the lines to match,
        // `clear` to 0, and lines are never removed).
        // An empty vector's pointer is dangling but aligned and non-null, as a slice of
        // length 0 requires.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<f32>(), self.len) }
    }
}

impl DerefMut for AlignedFloats {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as for `deref`; the borrow of `self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first value starts a cache line however the buffer grows, and resizing keeps
    /// old values and sets new ones, including those of a line that shrank and grew again.
    #[test]
    fn starts_a_cache_line_and_resizes_like_a_vec() {
        let mut buffer = AlignedFloats::default();
        let mut reference: Vec<f32> = Vec::new();
        for (len, value) in [
            (5, 1.0),
            (40, 2.0),
            (17, 3.0),
            (33, 4.0),
            (0, 5.0),
            (70, 6.0),
        ] {
            buffer.resize(len, value);
            reference.resize(len, value);
            assert_eq!(&buffer[..], &reference[..], "after resizing to {len}");
            if len > 0 {
                assert_eq!(buffer.as_ptr() as usize % 64, 0, "length {len}");
            }
            for (i, v) in buffer.iter_mut().enumerate() {
                *v = i as f32;
            }
            for (i, v) in reference.iter_mut().enumerate() {
                *v = i as f32;
            }
        }
        buffer.clear();
        buffer.resize(3, 9.0);
        assert_eq!(&buffer[..], &[9.0; 3]);
        // Shrunk and grown again for overwriting: the old values are still there.
        buffer.resize(40, 1.0);
        buffer[39] = 7.0;
        buffer.resize_for_overwrite(2);
        buffer.resize_for_overwrite(40);
        assert_eq!(
            (buffer.len(), buffer[2], buffer[3], buffer[39]),
            (40, 9.0, 1.0, 7.0)
        );
        // The longest length so far, 70, took 5 lines (80 values); lines past them are new.
        buffer.resize_for_overwrite(200);
        assert_eq!(&buffer[80..], &[0.0; 120], "new memory is zero");
        assert_eq!(buffer.as_ptr() as usize % 64, 0);
    }
}
