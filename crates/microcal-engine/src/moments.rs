//! A batch's statistics per channel for batch norm: mean and biased variance, from sums and
//! sums of squares in f64 over fixed chunks of rows, the chunks added in order, so that
//! they do not depend on the number of threads. The chunks can be summed as they are made
//! (a convolution sums those inside each image as it writes the image, while it is in the
//! cache) and the rest afterwards, with the same numbers.

use rayon::prelude::*;

use super::kernel::with_simd;

/// Rows per chunk of a reduction (fixed, so sums are added in the same order on any machine).
const ROWS: usize = 256;

/// A batch's statistics per channel: mean and (biased) variance.
pub(crate) type Moments = (Vec<f32>, Vec<f32>);

/// Mean and biased variance per channel of (rows, c) values, from one pass of sums and
/// sums of squares (in f64, per fixed chunk of rows, the chunks added in order).
pub(crate) fn moments(x: &[f32], c: usize) -> Moments {
    moments_with(x, c, Vec::new())
}

/// The sums and sums of squares per channel of one chunk of `ROWS` rows (the last chunk
/// may be shorter), in f64, row by row.
pub(crate) struct ChunkSums {
    sum: Vec<f64>,
    squares: Vec<f64>,
}

impl ChunkSums {
    fn of(chunk: &[f32], c: usize) -> Self {
        let mut sums = Self {
            sum: vec![0.0; c],
            squares: vec![0.0; c],
        };
        sums.add_rows(chunk);
        sums
    }

    with_simd! {
        /// Adds the rows of `chunk` (`sum.len()` channels each), in order.
        fn add_rows / add_rows_avx2 / add_rows_avx512 => add_rows_here(&mut self, chunk: &[f32])
    }

    /// Each channel's values are still added row by row: the same sums.
    #[inline(always)]
    fn add_rows_here(&mut self, chunk: &[f32]) {
        let c = self.sum.len();
        in_channel_blocks!(&mut self.sum, &mut self.squares, |at, sums| {
            add_channel_rows(chunk, c, at, sums)
        });
    }
}

/// Runs `$add` with `$at`, a range of channels, and `$sums`, the two per-channel sums
/// `$a` and `$b` of those channels: blocks of 32 channels while they last, then one of 16
/// and one of 8 where that many remain, each copied into arrays so that the block's sums
/// stay in registers across the rows that `$add` runs over (kept in memory, each row's
/// sums waited on the stores of the row before), then the last channels in place. The
/// smaller blocks matter for narrow layers: with 32 alone, 16 channels (`cnn_modern`'s
/// first stage, its largest images) were all summed in memory. A macro, not a function
/// taking a closure: the closure was compiled on its own, without its caller's SIMD
/// target features.
macro_rules! in_channel_blocks {
    ($a:expr, $b:expr, |$at:ident, $sums:ident| $add:expr) => {{
        let (a, b): (&mut [_], &mut [_]) = ($a, $b);
        let (c, mut first) = (a.len(), 0);
        $crate::moments::channel_blocks_of!(32, (a, b, c, first), |$at, $sums| $add, while);
        $crate::moments::channel_blocks_of!(16, (a, b, c, first), |$at, $sums| $add, if);
        $crate::moments::channel_blocks_of!(8, (a, b, c, first), |$at, $sums| $add, if);
        if first < c {
            let ($at, $sums) = (first..c, (&mut a[first..c], &mut b[first..c]));
            $add;
        }
    }};
}

/// One step of [`in_channel_blocks`]: blocks of `$size` channels from `$first` on,
/// repeated (`while`) or at most one (`if`).
macro_rules! channel_blocks_of {
    ($size:literal, ($a:ident, $b:ident, $c:ident, $first:ident), |$at:ident, $sums:ident| $add:expr, $repeat:tt) => {
        $repeat $c - $first >= $size {
            let block = $first..$first + $size;
            let mut x: [_; $size] = $a[block.clone()].try_into().expect("a block");
            let mut y: [_; $size] = $b[block.clone()].try_into().expect("a block");
            {
                let ($at, $sums) = (block.clone(), (&mut x[..], &mut y[..]));
                $add;
            }
            $a[block.clone()].copy_from_slice(&x);
            $b[block].copy_from_slice(&y);
            $first += $size;
        }
    };
}
pub(crate) use channel_blocks_of;
pub(crate) use in_channel_blocks;

/// `ChunkSums::add_rows` for the channels `at` of rows of `c`, into `sum` and `squares`
/// (theirs only).
#[inline(always)]
fn add_channel_rows(
    chunk: &[f32],
    c: usize,
    at: std::ops::Range<usize>,
    (sum, squares): (&mut [f64], &mut [f64]),
) {
    let len = at.len();
    let (sum, squares) = (&mut sum[..len], &mut squares[..len]);
    for row in chunk.chunks_exact(c) {
        let row = &row[at.clone()];
        for j in 0..len {
            let v = row[j] as f64;
            sum[j] += v;
            squares[j] += v * v;
        }
    }
}

/// The chunks of `moments` that lie wholly inside image `image` (`img`, its values, of a
/// batch of images of `img.len()` values each), summed: so that a convolution can sum
/// them as it writes each image, while the image is still in the cache.
pub(crate) fn image_chunk_sums(image: usize, img: &[f32], c: usize) -> Vec<(usize, ChunkSums)> {
    let rows = img.len() / c;
    let (first_row, end_row) = (image * rows, (image + 1) * rows);
    (first_row.div_ceil(ROWS)..)
        .map(|k| (k, k * ROWS, ((k + 1) * ROWS).min(end_row)))
        .take_while(|(_, start, end)| end.saturating_sub(*start) == ROWS)
        .map(|(k, start, end)| {
            let chunk = &img[(start - first_row) * c..(end - first_row) * c];
            (k, ChunkSums::of(chunk, c))
        })
        .collect()
}

/// `moments` of `x`, given the sums of some of its chunks (`image_chunk_sums`): the same
/// numbers, the other chunks summed here.
pub(crate) fn moments_with(x: &[f32], c: usize, known: Vec<(usize, ChunkSums)>) -> Moments {
    let rows = x.len() / c;
    let mut chunks: Vec<Option<ChunkSums>> = (0..rows.div_ceil(ROWS)).map(|_| None).collect();
    for (k, sums) in known {
        chunks[k] = Some(sums);
    }
    chunks
        .par_iter_mut()
        .zip(x.par_chunks(ROWS * c))
        .filter(|(sums, _)| sums.is_none())
        .for_each(|(sums, chunk)| *sums = Some(ChunkSums::of(chunk, c)));
    let (mut sum, mut squares) = (vec![0.0f64; c], vec![0.0f64; c]);
    for chunk in chunks.iter().flatten() {
        for j in 0..c {
            sum[j] += chunk.sum[j];
            squares[j] += chunk.squares[j];
        }
    }
    let n = rows as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let var = (0..c)
        .map(|j| (squares[j] / n - mean[j] * mean[j]).max(0.0) as f32)
        .collect();
    (mean.iter().map(|m| *m as f32).collect(), var)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sums over blocks of channels (32s, then a 16 and an 8, then the channels after the
    /// last block) are the row-by-row sums bit for bit (on the process's SIMD path; CI runs
    /// the engine's tests on each): every mix of block sizes is among these counts.
    #[test]
    fn blocked_sums_are_the_row_by_row_sums() {
        let mut rng = crate::rng::Rng::new(4);
        for c in [1usize, 8, 9, 16, 24, 31, 32, 56, 64, 70, 128] {
            let chunk: Vec<f32> = (0..100 * c)
                .map(|_| (rng.normal() * 2.0 + 0.5) as f32)
                .collect();
            let (mut sum, mut squares) = (vec![0.0f64; c], vec![0.0f64; c]);
            for row in chunk.chunks_exact(c) {
                for j in 0..c {
                    let v = row[j] as f64;
                    sum[j] += v;
                    squares[j] += v * v;
                }
            }
            let sums = ChunkSums::of(&chunk, c);
            assert_eq!(sums.sum, sum, "{c} channels");
            assert_eq!(sums.squares, squares, "{c} channels");
        }
    }

    /// The statistics from chunks summed image by image, as a convolution sums them, are
    /// the one-pass statistics bit for bit: with chunks that cross images, images smaller
    /// than a chunk, and a short last chunk.
    #[test]
    fn chunks_summed_per_image_give_the_same_moments() {
        let mut rng = crate::rng::Rng::new(9);
        for (images, rows, c) in [
            (5usize, 300usize, 3usize),
            (7, 100, 2),
            (3, 512, 4),
            (2, 1, 1),
        ] {
            let x: Vec<f32> = (0..images * rows * c)
                .map(|_| (rng.normal() * 3.0 + 1.0) as f32)
                .collect();
            let sums = x
                .chunks(rows * c)
                .enumerate()
                .flat_map(|(image, img)| image_chunk_sums(image, img, c))
                .collect::<Vec<_>>();
            let summed = sums.len();
            let whole = (0..(images * rows).div_ceil(ROWS))
                .filter(|k| (k * ROWS) / rows == ((k + 1) * ROWS - 1) / rows)
                .filter(|k| (k + 1) * ROWS <= images * rows)
                .count();
            assert_eq!(summed, whole, "{images} images of {rows} rows");
            assert_eq!(moments_with(&x, c, sums), moments(&x, c));
        }
    }
}
