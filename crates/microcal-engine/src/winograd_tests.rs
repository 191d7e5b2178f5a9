//! Tests of the Winograd products against the f64 definition of the convolution.

use super::*;
use crate::rng::Rng;

fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32).collect()
}

/// The 'same' 3×3 convolution by its definition, in f64 (no bias).
fn definition(
    img: &[f32],
    (h, w): (usize, usize),
    k: &[f32],
    (cin, cout): (usize, usize),
) -> Vec<f64> {
    let mut y = vec![0.0f64; h * w * cout];
    for_each_tap(h, w, h * w, |out, input, tap| {
        for ci in 0..cin {
            let x = img[input * cin + ci] as f64;
            for co in 0..cout {
                y[out * cout + co] += x * k[(tap * cin + ci) * cout + co] as f64;
            }
        }
    });
    y
}

/// Calls `f(output, input, tap)` for every kernel tap of the first `outputs` positions
/// of an h×w image that reads a pixel inside it ('same' padding, 3×3).
fn for_each_tap(h: usize, w: usize, outputs: usize, mut f: impl FnMut(usize, usize, usize)) {
    for out in 0..outputs {
        let (oy, ox) = (out / w, out % w);
        for tap in 0..9 {
            let (iy, ix) = (
                (oy + tap / 3).wrapping_sub(1),
                (ox + tap % 3).wrapping_sub(1),
            );
            if iy < h && ix < w {
                f(out, iy * w + ix, tap);
            }
        }
    }
}

fn assert_close(got: f32, want: f64, what: &str) {
    assert!(
        (got as f64 - want).abs() < 1e-4 * (1.0 + want.abs()) * 4.0,
        "{what}: {got} vs {want}"
    );
}

/// Channel counts that are not multiples of the 8 lanes or the 16 packed columns, odd
/// and even sizes, images given only in part: stored, added and pooled outputs all
/// match the definition.
#[test]
fn convolution_matches_the_definition() {
    let mut rng = Rng::new(21);
    let (cin, cout) = (11, 19);
    let kernel = random(9 * cin * cout, &mut rng);
    let transformed = TransformedKernel::new(&kernel, cin, cout);
    let bias = random(cout, &mut rng);
    let mut buffers = Buffers::default();
    for (h, w, rows) in [(7, 6, 7), (5, 9, 5), (6, 5, 3), (1, 1, 1), (2, 3, 2)] {
        let mut img = random(h * w * cin, &mut rng);
        img[rows * w * cin..].fill(0.0);
        let want = definition(&img, (h, w), &kernel, (cin, cout));
        let given = &img[..rows * w * cin];
        let mut out = vec![f32::NAN; h * w * cout];
        let full = Output::Full {
            out: &mut out,
            accumulate: false,
        };
        convolve(
            given,
            (h, w, rows),
            &transformed,
            Some(&bias),
            full,
            &mut buffers,
        );
        for (i, (got, want)) in out.iter().zip(&want).enumerate() {
            assert_close(
                *got,
                want + bias[i % cout] as f64,
                &format!("{h}x{w} y[{i}]"),
            );
        }
        let before = random(h * w * cout, &mut rng);
        let mut sum = before.clone();
        let added = Output::Full {
            out: &mut sum,
            accumulate: true,
        };
        convolve(given, (h, w, rows), &transformed, None, added, &mut buffers);
        for (i, ((got, want), b)) in sum.iter().zip(&want).zip(&before).enumerate() {
            assert_close(*got, want + *b as f64, &format!("{h}x{w} added[{i}]"));
        }
        let (oh, ow) = (h / 2, w / 2);
        let mut pooled = vec![f32::NAN; oh * ow * cout];
        let mut routes = vec![9u8; pooled.len()];
        let output = Output::Pooled {
            out: &mut pooled,
            routes: Some(&mut routes),
        };
        convolve(
            given,
            (h, w, rows),
            &transformed,
            Some(&bias),
            output,
            &mut buffers,
        );
        for (o, (got, route)) in pooled.iter().zip(&routes).enumerate() {
            let (oy, ox, co) = (o / cout / ow, o / cout % ow, o % cout);
            let corners: Vec<f64> = (0..4)
                .map(|r| {
                    want[((2 * oy + r / 2) * w + 2 * ox + r % 2) * cout + co] + bias[co] as f64
                })
                .collect();
            // The first corner holding the maximum (ties where the image is zero).
            let best = (1..4).fold(0, |b, r| if corners[r] > corners[b] { r } else { b });
            assert_close(*got, corners[best], &format!("{h}x{w} pooled[{o}]"));
            assert_eq!(*route as usize, best, "{h}x{w} route[{o}]");
        }
    }
}

/// The kernel gradient summed over blocks of several images, with products flushed
/// every few blocks (mid-image), equals Σ input × output gradient by the definition.
#[test]
fn kernel_gradient_matches_the_definition() {
    let mut rng = Rng::new(22);
    let (cin, cout) = (11, 19);
    for (h, w, pooled) in [(7, 6, false), (5, 7, true), (6, 6, true), (3, 2, false)] {
        let images: Vec<(Vec<f32>, Vec<f32>)> = (0..3)
            .map(|_| {
                let img = random(h * w * cin, &mut rng);
                let rows = if pooled { 2 * (h / 2) } else { h };
                let mut dconv = random(rows * w * cout, &mut rng);
                if pooled && w % 2 == 1 {
                    // Pooling drops the odd last column: it gets no gradient.
                    for row in dconv.chunks_mut(w * cout) {
                        row[(w - 1) * cout..].fill(0.0);
                    }
                }
                (img, dconv)
            })
            .collect();
        let mut want = vec![0.0f64; 9 * cin * cout];
        for (img, dconv) in &images {
            for_each_tap(h, w, dconv.len() / cout, |out, input, tap| {
                for ci in 0..cin {
                    let x = img[input * cin + ci] as f64;
                    for co in 0..cout {
                        want[(tap * cin + ci) * cout + co] += x * dconv[out * cout + co] as f64;
                    }
                }
            });
        }
        let mut sum = KernelGradient::default();
        sum.start_with_capacity(cin, cout, 4);
        for (img, dconv) in &images {
            sum.add_image(img, dconv, (h, w), pooled);
        }
        let mut dw = vec![1.0; want.len()];
        sum.finish(&mut dw);
        for (i, (got, want)) in dw.iter().zip(&want).enumerate() {
            assert_close(
                *got,
                1.0 + want,
                &format!("{h}x{w} pooled {pooled} dw[{i}]"),
            );
        }
    }
}

/// The point products `microcal bench matmul` times are those of a strip as `convolve`
/// cuts it: the reference network's conv2-4 (pooled) fit 2, 3 and all 3 block rows of
/// 15, 7 and 3 blocks in a strip; unpooled, an odd size gets a last block row and column.
#[test]
fn point_products_have_the_shape_of_a_strip() {
    assert_eq!(point_product_shape(30, 30, (32, 64), true), (30, 32, 64));
    assert_eq!(point_product_shape(15, 15, (64, 128), true), (21, 64, 128));
    assert_eq!(point_product_shape(7, 7, (128, 128), true), (9, 128, 128));
    assert_eq!(point_product_shape(7, 7, (128, 128), false), (16, 128, 128));
    // A strip is at least one block row, however many channels.
    assert_eq!(
        point_product_shape(60, 60, (4096, 4096), false),
        (30, 4096, 4096)
    );
}
