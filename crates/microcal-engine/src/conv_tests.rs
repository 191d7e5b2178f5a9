//! Tests of the convolution and pooling ops against finite differences and f64 definitions.

use super::*;
use crate::maxpool::maxpool2;
use crate::rng::Rng;

fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32).collect()
}

/// Loss = Σ y·r for fixed random r, so dLoss/dy = r; compares analytic gradients of x, w
/// and b with central finite differences.
#[test]
fn conv_gradients_match_finite_differences() {
    check_conv_gradients(false, false, (3, 5, 4), 3);
}

#[test]
fn fused_relu_conv_gradients_match_finite_differences() {
    check_conv_gradients(true, false, (3, 5, 4), 3);
}

#[test]
fn fused_relu_and_pool_gradients_match_finite_differences() {
    check_conv_gradients(true, true, (3, 5, 4), 3);
    check_conv_gradients(false, true, (2, 7, 6), 5);
    check_conv_gradients(true, true, (4, 7, 5), 3); // odd width: a dropped column
}

/// One input channel: the patches are built as shifted planes (transposed).
#[test]
fn single_channel_patches_give_the_same_gradients() {
    check_conv_gradients(false, false, (1, 7, 6), 3);
    check_conv_gradients(true, true, (1, 9, 8), 5);
}

/// Wide layers (several strips per image, weight blocks of several window rows),
/// against the definition computed in f64: output, and the gradients of Σ y·r. (Finite
/// differences in f32 are too noisy at this width.) 3×3 kernels run by Winograd, 5×5
/// ones by the direct product.
#[test]
fn wide_layers_match_the_definition_in_f64() {
    let direct = ConvShape {
        cin: 32,
        cout: 200,
        kernel: 5,
        h: 11,
        w: 9,
    };
    assert!(!direct.winograd(direct.cin));
    assert!(direct.strips(false, usize::MAX).len() > 1);
    check_against_definition((64, 200), (15, 13), 3);
    check_against_definition((32, 200), (11, 9), 5);
    check_against_definition((24, 17), (9, 8), 5);
    // One input channel: tap by tap, 16 output channels at a time and the rest one by one.
    check_against_definition((1, 37), (9, 8), 3);
    check_against_definition((1, 20), (7, 6), 5);
}

fn check_against_definition((cin, cout): (usize, usize), (h, w): (usize, usize), k: usize) {
    let dev = Cpu::seed_from_u64(0);
    let mut rng = Rng::new(11);
    let g = Geometry { batch: 2, h, w };
    let pad = k / 2;
    let x = random(g.positions() * cin, &mut rng);
    let wt = random(k * k * cin * cout, &mut rng);
    let bias = random(cout, &mut rng);
    let r = random(g.positions() * cout, &mut rng);
    let mut y = vec![0.0f64; g.positions() * cout];
    let mut dx = vec![0.0f64; x.len()];
    let mut dw = vec![0.0f64; wt.len()];
    for b in 0..g.batch {
        for oy in 0..h {
            for ox in 0..w {
                let o = (b * h + oy) * w + ox;
                for co in 0..cout {
                    y[o * cout + co] = bias[co] as f64;
                }
                for ky in 0..k {
                    for kx in 0..k {
                        let (iy, ix) = ((oy + ky).wrapping_sub(pad), (ox + kx).wrapping_sub(pad));
                        if iy >= h || ix >= w {
                            continue;
                        }
                        let i = (b * h + iy) * w + ix;
                        for ci in 0..cin {
                            for co in 0..cout {
                                let wi = ((ky * k + kx) * cin + ci) * cout + co;
                                y[o * cout + co] += x[i * cin + ci] as f64 * wt[wi] as f64;
                                dw[wi] += x[i * cin + ci] as f64 * r[o * cout + co] as f64;
                                dx[i * cin + ci] += wt[wi] as f64 * r[o * cout + co] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    let xt = dev.tensor_from_vec(x, (g.positions(), cin));
    let w_t = dev.tensor_from_vec(wt, (k * k * cin, cout));
    let b_t = dev.tensor_from_vec(bias, (cout,));
    let spec = ConvBlock {
        kernel: k,
        relu: false,
        pool: false,
        input_grad: true,
    };
    let (out, _) = conv_block(xt.leaky_trace(), g, spec, &w_t, &b_t);
    let close = |got: &[f32], want: &[f64], what: &str| {
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (*a as f64 - b).abs() < 1e-4 * (1.0 + b.abs()) * (cin as f64).sqrt(),
                "{what}[{i}]: {a} vs {b}"
            );
        }
    };
    close(&out.as_vec(), &y, "y");
    let rt = dev.tensor_from_vec(r, (g.positions(), cout));
    let grads = (out * rt).sum().backward();
    close(&grads.get(&xt).as_vec(), &dx, "dx");
    close(&grads.get(&w_t).as_vec(), &dw, "dw");
}

fn check_conv_gradients(relu: bool, pool: bool, (cin, h, w): (usize, usize, usize), k: usize) {
    let dev = Cpu::seed_from_u64(0);
    let mut rng = Rng::new(5);
    let g = Geometry { batch: 2, h, w };
    let cout = 3;
    let spec = ConvBlock {
        kernel: k,
        relu,
        pool,
        input_grad: true,
    };
    let out_positions = if pool {
        2 * (h / 2) * (w / 2)
    } else {
        g.positions()
    };
    let x0 = random(g.positions() * cin, &mut rng);
    let w0 = random(k * k * cin * cout, &mut rng);
    let b0 = random(cout, &mut rng);
    let r = random(out_positions * cout, &mut rng);
    let loss_of = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
        let xt = dev.tensor_from_vec(x.to_vec(), (g.positions(), cin));
        let wt = dev.tensor_from_vec(w.to_vec(), (k * k * cin, cout));
        let bt = dev.tensor_from_vec(b.to_vec(), (cout,));
        let y = conv_block(xt, g, spec, &wt, &bt).0.as_vec();
        y.iter()
            .zip(&r)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum()
    };
    let xt = dev.tensor_from_vec(x0.clone(), (g.positions(), cin));
    let wt = dev.tensor_from_vec(w0.clone(), (k * k * cin, cout));
    let bt = dev.tensor_from_vec(b0.clone(), (cout,));
    let (y, out_g) = conv_block(xt.leaky_trace(), g, spec, &wt, &bt);
    assert_eq!(out_g.positions(), out_positions);
    let rt = dev.tensor_from_vec(r.clone(), (out_positions, cout));
    let grads = (y * rt).sum().backward();
    let analytic = [
        grads.get(&xt).as_vec(),
        grads.get(&wt).as_vec(),
        grads.get(&bt).as_vec(),
    ];
    // Small enough that no bump crosses a ReLU kink or swaps a pooling window's maximum.
    let eps = 1e-3;
    for (which, base) in [(0, &x0), (1, &w0), (2, &b0)] {
        for i in (0..base.len()).step_by(base.len() / 150 + 1) {
            let bump = |d: f32| {
                let mut v = base.clone();
                v[i] += d;
                match which {
                    0 => loss_of(&v, &w0, &b0),
                    1 => loss_of(&x0, &v, &b0),
                    _ => loss_of(&x0, &w0, &v),
                }
            };
            let numeric = (bump(eps) - bump(-eps)) / (2.0 * eps as f64);
            let a = analytic[which][i] as f64;
            assert!(
                (a - numeric).abs() < 1e-2 * (1.0 + numeric.abs()),
                "param {which}[{i}]: {a} vs {numeric}"
            );
        }
    }
}

/// Shifted planes (one input channel) hold the transpose of the ordinary patch matrix,
/// for strips that start and end inside image rows.
#[test]
fn shifted_planes_are_the_transposed_patches() {
    let mut rng = Rng::new(3);
    for kernel in [3, 5] {
        let shape = ConvShape {
            cin: 1,
            cout: 1,
            kernel,
            h: 6,
            w: 7,
        };
        let img = random(42, &mut rng);
        let kk = shape.kk();
        for (p0, rows) in [(0, 42), (5, 11), (13, 29)] {
            // The patch matrix by its definition.
            let mut cols = vec![0.0; rows * kk];
            for (r, row) in cols.chunks_mut(kk).enumerate() {
                let (oy, ox) = ((p0 + r) / shape.w, (p0 + r) % shape.w);
                for (t, v) in row.iter_mut().enumerate() {
                    let (iy, ix) = (oy + t / kernel, ox + t % kernel);
                    let (iy, ix) = (iy.wrapping_sub(kernel / 2), ix.wrapping_sub(kernel / 2));
                    if iy < shape.h && ix < shape.w {
                        *v = img[iy * shape.w + ix];
                    }
                }
            }
            let mut planes = vec![f32::NAN; rows * kk];
            shape.shifted_planes(&img, p0, rows, &mut planes);
            for r in 0..rows {
                for t in 0..kk {
                    assert_eq!(
                        planes[t * rows + r],
                        cols[r * kk + t],
                        "k{kernel} p{p0}+{r} tap {t}"
                    );
                }
            }
        }
    }
}

/// The fused block computes exactly what its layers compute one after another (by
/// Winograd and, for one input channel, tap by tap).
#[test]
fn fused_block_equals_convolution_then_relu_then_pool() {
    for (cin, cout) in [(4, 5), (1, 21)] {
        let dev = Cpu::seed_from_u64(0);
        let mut rng = Rng::new(8);
        let g = Geometry {
            batch: 3,
            h: 7,
            w: 6,
        };
        let x = random(g.positions() * cin, &mut rng);
        let x = dev.tensor_from_vec(x, (g.positions(), cin));
        let w = dev.tensor_from_vec(random(9 * cin * cout, &mut rng), (9 * cin, cout));
        let b = dev.tensor_from_vec(random(cout, &mut rng), (cout,));
        let spec = |relu, pool| ConvBlock {
            kernel: 3,
            relu,
            pool,
            input_grad: true,
        };
        let (fused, fused_g) = conv_block(x.clone(), g, spec(true, true), &w, &b);
        let (plain, _) = conv_block(x, g, spec(false, false), &w, &b);
        let (stepwise, step_g) = maxpool2(plain.relu(), g);
        assert_eq!(fused_g, step_g);
        assert_eq!(fused.as_vec(), stepwise.as_vec(), "{cin} → {cout} channels");
    }
}

#[test]
fn maxpool_routes_gradients_to_the_maximum_and_floors_odd_sizes() {
    let dev = Cpu::seed_from_u64(0);
    let g = Geometry {
        batch: 1,
        h: 3,
        w: 5,
    };
    let x: Vec<f32> = (0..15).map(|v| ((v * 7) % 11) as f32).collect();
    let xt = dev.tensor_from_vec(x.clone(), (15usize, 1usize));
    let (y, out_g) = maxpool2(xt.leaky_trace(), g);
    assert_eq!(
        out_g,
        Geometry {
            batch: 1,
            h: 1,
            w: 2
        }
    );
    let values = y.as_vec();
    assert_eq!(
        values,
        vec![
            x[0].max(x[1]).max(x[5]).max(x[6]),
            x[2].max(x[3]).max(x[7]).max(x[8])
        ]
    );
    let grads = y.sum().backward();
    let dx = grads.get(&xt).as_vec();
    assert_eq!(dx.iter().sum::<f32>(), 2.0);
    for (i, d) in dx.iter().enumerate() {
        if *d == 1.0 {
            assert!(values.contains(&x[i]));
        }
    }
}
