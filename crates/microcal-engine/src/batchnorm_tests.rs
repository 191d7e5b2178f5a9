//! Tests of batch norm: its forward pass channel by channel, and its outputs and gradients
//! against a direct computation.

use super::*;

/// One image through `forward_image`, pooled and not, with and without the ReLU, for
/// channel counts below, at and between its 16-channel blocks: outputs, routes and
/// picked inputs are a channel-by-channel computation's, bit for bit.
#[test]
fn forward_image_matches_a_channel_by_channel_computation() {
    let mut rng = crate::rng::Rng::new(11);
    for (c, pool, relu) in [3usize, 16, 19, 35].into_iter().flat_map(|c| {
        [
            (c, false, true),
            (c, true, true),
            (c, true, false),
            (c, false, false),
        ]
    }) {
        let g = Geometry {
            batch: 1,
            h: 5,
            w: 5,
        };
        let shape = Fused {
            g,
            c,
            follow: Follow { relu, pool },
        };
        let img: Vec<f32> = (0..25 * c).map(|_| rng.normal() as f32).collect();
        let a: Vec<f32> = (0..c).map(|_| rng.normal() as f32).collect();
        let b: Vec<f32> = (0..c).map(|_| rng.normal() as f32 * 0.5).collect();
        let o = shape.output();
        let n = o.h * o.w * c;
        let (mut out, mut routes) = (vec![0.0f32; n], vec![0u8; n]);
        let mut picked = vec![0.0f32; if pool { n } else { 0 }];
        let picked_arg = pool.then_some(&mut picked[..]);
        shape.forward_image(&img, &a, &b, &mut out, &mut routes, picked_arg);
        for (p, (&got, &route)) in out.iter().zip(&routes).enumerate() {
            let (pos, j) = (p / c, p % c);
            let at = |y: usize, x: usize| img[(y * 5 + x) * c + j];
            let z = |v: f32| v * a[j] + b[j];
            let (m, corner, input) = if pool {
                let (y, x) = (2 * (pos / o.w), 2 * (pos % o.w));
                let xs = [at(y, x), at(y, x + 1), at(y + 1, x), at(y + 1, x + 1)];
                let m = z(xs[0]).max(z(xs[1])).max(z(xs[2]).max(z(xs[3])));
                let corner = (0..4).find(|&k| z(xs[k]) == m).expect("a maximum");
                (m, corner as u8, xs[corner])
            } else {
                (z(img[p]), 0, img[p])
            };
            let clipped = relu && m <= 0.0;
            let what = format!("{c} channels, pool {pool}, relu {relu}, value {p}");
            assert_eq!(
                got.to_bits(),
                if clipped { 0.0f32 } else { m }.to_bits(),
                "{what}"
            );
            assert_eq!(route, if clipped { CLIPPED } else { corner }, "{what}");
            if pool {
                assert_eq!(picked[p].to_bits(), input.to_bits(), "{what}");
            }
        }
    }
}

/// Against a direct f64 computation: the output, and the gradients of Σ w·y with respect
/// to x, γ and β.
#[test]
fn matches_a_direct_computation() {
    let dev = Cpu::seed_from_u64(0);
    let (rows, c) = (600usize, 3usize);
    let mut rng = crate::rng::Rng::new(3);
    let xs: Vec<f32> = (0..rows * c)
        .map(|i| rng.normal() as f32 + (i % c) as f32)
        .collect();
    let ws: Vec<f32> = (0..rows * c).map(|_| rng.normal() as f32).collect();
    let mut bn = BatchNorm::new(&dev, c, 0.9, 1e-3);
    bn.gamma.set_values(&[1.5, 0.5, -1.0]);
    bn.beta.set_values(&[0.1, 0.2, 0.3]);
    let x = dev.tensor_from_vec(xs.clone(), (rows, c));
    let w = dev.tensor_from_vec(ws.clone(), (rows, c));
    let mut stats = Vec::new();
    let g = Geometry {
        batch: rows,
        h: 1,
        w: 1,
    };
    let (y, _) = bn.forward(x.leaky_trace(), g, Follow::default(), true, &mut stats);
    let ys = y.as_vec();
    let grads = (y * w).sum().backward();
    let dx = grads.get(&x).as_vec();
    let dgamma = grads.get(&bn.gamma.tensor).as_vec();
    let gamma = [1.5f64, 0.5, -1.0];
    for j in 0..c {
        let col: Vec<f64> = (0..rows).map(|r| xs[r * c + j] as f64).collect();
        let wc: Vec<f64> = (0..rows).map(|r| ws[r * c + j] as f64).collect();
        let n = rows as f64;
        let mean = col.iter().sum::<f64>() / n;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let inv = 1.0 / (var + 1e-3).sqrt();
        let xhat: Vec<f64> = col.iter().map(|v| (v - mean) * inv).collect();
        assert!((stats[0].0[j] as f64 - mean).abs() < 1e-5);
        assert!((stats[0].1[j] as f64 - var).abs() < 1e-4);
        let sw: f64 = wc.iter().sum();
        let swx: f64 = wc.iter().zip(&xhat).map(|(w, x)| w * x).sum();
        assert!((dgamma[j] as f64 - swx).abs() < 1e-3);
        for r in 0..rows {
            let y = xhat[r] * gamma[j] + [0.1, 0.2, 0.3][j];
            assert!((ys[r * c + j] as f64 - y).abs() < 1e-4);
            let d = gamma[j] * inv / n * (n * wc[r] - sw - xhat[r] * swx);
            assert!((dx[r * c + j] as f64 - d).abs() < 1e-4, "{r} {j}");
        }
    }
    bn.update_running(&stats[0]);
    let expected = 0.9 * 0.0 + 0.1 * stats[0].0[1];
    assert!((bn.running_mean[1] - expected).abs() < 1e-7);
}
