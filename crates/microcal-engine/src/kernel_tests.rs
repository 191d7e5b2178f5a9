//! Tests of the matrix tiles: every path against the portable one, AVX-512 against AVX2
//! bit for bit.

use super::*;
use crate::rng::Rng;

/// Every path this CPU has against the portable tile, with one to four panels of B
/// (AVX-512's wide tiles take two and four) and six rows or fewer (three or fewer: its
/// short tiles); AVX-512 against AVX2 bit for bit.
#[test]
fn every_available_path_matches_the_portable_tile() {
    let mut rng = Rng::new(3);
    for (kc, rows, cols, accumulate) in [
        (1, 6, 16, false),
        (37, 5, 9, true),
        (384, 6, 16, true),
        (1, 6, 32, false),
        (37, 5, 25, true),
        (384, 6, 32, true),
        (200, 2, 17, false),
        (1, 6, 64, false),
        (37, 5, 61, true),
        (384, 6, 64, true),
        (29, 4, 48, true),
        (53, 6, 35, false),
        (37, 3, 61, true),
        (11, 2, 32, false),
        (5, 1, 40, true),
    ] {
        let panels = usize::div_ceil(cols, NR);
        let panel_stride = kc * NR + 5;
        let a: Vec<Vec<f32>> = (0..MR)
            .map(|_| (0..kc).map(|_| rng.normal() as f32).collect())
            .collect();
        let b: Vec<f32> = (0..panels * panel_stride)
            .map(|_| rng.normal() as f32)
            .collect();
        let c0: Vec<f32> = (0..MR * 4 * NR).map(|_| rng.normal() as f32).collect();
        let result = |path: SimdPath| {
            let mut c = c0.clone();
            let tile = Tile {
                kc,
                rows_a: std::array::from_fn(|r| a[r].as_ptr()),
                a_step: 1,
                seg_len: usize::MAX,
                seg_skip: 0,
                b: b.as_ptr(),
                panels,
                panel_stride,
                c: c.as_mut_ptr(),
                ldc: 4 * NR,
                rows,
                cols,
                accumulate,
            };
            // SAFETY: each row of `a` holds kc floats, `b` `panels` panels of kc·NR
            // floats `panel_stride` apart, `c` MR rows of 4·NR; the path is one this CPU
            // supports (from `available`).
            unsafe { run_on(path, &tile) };
            c
        };
        let portable = result(SimdPath::Portable);
        for path in SimdPath::available() {
            let c = result(path);
            for (i, (x, y)) in c.iter().zip(&portable).enumerate() {
                let scale = 1.0 + (kc as f32).sqrt();
                assert!(
                    (x - y).abs() <= 2e-6 * scale * (1.0 + y.abs()),
                    "{path:?} {i}: {x} vs {y}"
                );
            }
            if path == SimdPath::Avx512 {
                assert_eq!(c, result(SimdPath::Avx2), "AVX-512 gives AVX2's bits");
            }
        }
    }
}

/// Two tiles of one or two panels run as a pair (AVX-512's 12×16 and 12×32 tiles), on
/// every path this CPU has, give the bits of the two tiles run one after the other on
/// the same path, and AVX-512's pair gives AVX2's bits; full and partial, with window
/// segments. The rows of A are one buffer's, evenly spaced (the 12-row loop), or with
/// the second tile's in another order (the pair falls back to two tiles).
#[test]
fn row_pairs_give_the_bits_of_their_two_tiles() {
    let mut rng = Rng::new(5);
    for (kc, second_rows, cols, accumulate, seg_len, even) in [
        (1, 6, 16, false, usize::MAX, true),
        (16, 6, 16, true, usize::MAX, true),
        (37, 3, 9, true, 5, true),
        (384, 1, 16, false, usize::MAX, true),
        (16, 6, 16, true, usize::MAX, false),
        (1, 6, 32, false, usize::MAX, true),
        (64, 6, 32, true, usize::MAX, true),
        (37, 3, 25, true, 5, true),
        (16, 6, 32, true, usize::MAX, false),
    ] {
        let panels = usize::div_ceil(cols, NR);
        let ldc = panels * NR;
        let (a_step, seg_skip) = (2, 3);
        let len = kc * a_step + (kc / seg_len.min(kc)) * seg_skip + 1;
        let a: Vec<f32> = (0..2 * MR * len).map(|_| rng.normal() as f32).collect();
        let row = |half: usize, r: usize| {
            let r = if even || half == 0 { r } else { MR - 1 - r };
            a[(half * MR + r) * len..].as_ptr()
        };
        let b: Vec<f32> = (0..panels * kc * NR).map(|_| rng.normal() as f32).collect();
        let c0: Vec<f32> = (0..2 * MR * ldc).map(|_| rng.normal() as f32).collect();
        let result = |path: SimdPath, paired: bool| {
            let mut c = c0.clone();
            let tile = |half: usize, c: &mut [f32]| Tile {
                kc,
                rows_a: std::array::from_fn(|r| row(half, r)),
                a_step,
                seg_len,
                seg_skip,
                b: b.as_ptr(),
                panels,
                panel_stride: kc * NR,
                c: c[half * MR * ldc..].as_mut_ptr(),
                ldc,
                rows: if half == 0 { MR } else { second_rows },
                cols,
                accumulate,
            };
            let (first, second) = (tile(0, &mut c), tile(1, &mut c));
            // SAFETY: each row of `a` holds every column the tiles read (kc steps of
            // a_step, seg_skip after each segment), `b` `panels` panels of kc·NR
            // floats, `c` 2·MR rows of `ldc`; the path is one this CPU supports (from
            // `available`).
            unsafe {
                if paired {
                    run_row_pair_on(path, &first, &second);
                } else {
                    run_on(path, &first);
                    run_on(path, &second);
                }
            }
            c
        };
        for path in SimdPath::available() {
            let paired = result(path, true);
            assert_eq!(paired, result(path, false), "{path:?} kc={kc}");
            if path == SimdPath::Avx512 {
                assert_eq!(
                    paired,
                    result(SimdPath::Avx2, true),
                    "AVX-512 gives AVX2's bits"
                );
            }
        }
    }
}

/// A whole product's row tiles walked in one call (`run_rows_on`; on AVX-512 by panel
/// group, then row tile, or in row pairs for one or two panels) give the bits of `run_on`
/// tile by tile, on every path this CPU has, with full and three-row last tiles, pairs
/// with and without a tile left over, and every grouping of panels (4, 2 and 1); and
/// AVX-512's give AVX2's.
#[test]
fn row_walks_give_the_bits_of_their_tiles() {
    let mut rng = Rng::new(7);
    for (m, kc, cols, accumulate) in [
        (1, 8, 64, false),
        (9, 128, 128, true),
        (21, 64, 128, false),
        (30, 32, 64, true),
        (13, 17, 40, false),
        (7, 5, 130, true),
        (4, 33, 72, false),
        (30, 64, 32, true),
        (13, 16, 16, false),
        (12, 9, 20, true),
        (7, 32, 32, false),
        (18, 5, 16, true),
        (1, 3, 9, false),
    ] {
        let panels = usize::div_ceil(cols, NR);
        let row_stride = kc + 3;
        let a: Vec<f32> = (0..m * row_stride).map(|_| rng.normal() as f32).collect();
        let b: Vec<f32> = (0..panels * kc * NR).map(|_| rng.normal() as f32).collect();
        let c0: Vec<f32> = (0..m * cols).map(|_| rng.normal() as f32).collect();
        let result = |path: SimdPath, walked: bool| {
            let mut c = c0.clone();
            let tile = |i0: usize, c: &mut [f32]| {
                let rows = MR.min(m - i0);
                Tile {
                    kc,
                    rows_a: std::array::from_fn(|r| {
                        a[(i0 + r.min(rows - 1)) * row_stride..].as_ptr()
                    }),
                    a_step: 1,
                    seg_len: usize::MAX,
                    seg_skip: 0,
                    b: b.as_ptr(),
                    panels,
                    panel_stride: kc * NR,
                    c: c[i0 * cols..].as_mut_ptr(),
                    ldc: cols,
                    rows,
                    cols,
                    accumulate,
                }
            };
            // SAFETY: `a` holds m rows of kc floats, `row_stride` apart, `b` `panels`
            // panels of kc·NR floats, `c` m rows of `cols`; the path is one this CPU
            // supports (from `available`).
            unsafe {
                if walked {
                    run_rows_on(path, &tile(0, &mut c), m, row_stride);
                } else {
                    for i0 in (0..m).step_by(MR) {
                        run_on(path, &tile(i0, &mut c));
                    }
                }
            }
            c
        };
        for path in SimdPath::available() {
            let walked = result(path, true);
            assert_eq!(walked, result(path, false), "{path:?} m={m} cols={cols}");
            if path == SimdPath::Avx512 {
                assert_eq!(
                    walked,
                    result(SimdPath::Avx2, true),
                    "AVX-512 gives AVX2's bits"
                );
            }
        }
    }
}
