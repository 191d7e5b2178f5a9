//! Tests of the convolutional network: parameter count, batch parts, learning.

use super::*;

fn conv(filters: usize) -> Layer {
    Layer::conv(filters, 3)
}

#[test]
fn reference_network_has_568449_parameters() {
    let layers = vec![
        conv(32),
        Layer::RELU,
        Layer::MAXPOOL,
        conv(64),
        Layer::RELU,
        Layer::MAXPOOL,
        Layer::Dropout { p: 0.25 },
        conv(128),
        Layer::RELU,
        Layer::MAXPOOL,
        Layer::Dropout { p: 0.25 },
        conv(128),
        Layer::RELU,
        Layer::MAXPOOL,
        Layer::Flatten,
        Layer::Dropout { p: 0.5 },
        Layer::Dense { units: 256 },
        Layer::RELU,
        Layer::Dense { units: 128 },
        Layer::RELU,
        Layer::Dense { units: 1 },
    ];
    let net = ConvNet::new(&layers, 60, 0);
    assert_eq!(net.parameter_count(), 568_449);
    let logits = net.predict_logits(&vec![0.5; 2 * 3600]);
    assert_eq!(logits.len(), 2);
    assert!(logits.iter().all(|l| l.is_finite()));
}

/// A batch split into parts gives the gradients of the whole batch (no dropout here, so
/// the parts see the same network), and training in parts is deterministic.
#[test]
fn parts_of_a_batch_add_up_to_the_batch() {
    let layers = vec![
        conv(6),
        Layer::RELU,
        Layer::MAXPOOL,
        conv(8),
        Layer::RELU,
        Layer::MAXPOOL,
        Layer::Flatten,
        Layer::Dense { units: 8 },
        Layer::RELU,
        Layer::Dense { units: 1 },
    ];
    let mut rng = Rng::new(4);
    let n = 7;
    let x: Vec<f32> = (0..n * 144).map(|_| rng.normal() as f32).collect();
    let y: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
    let net = ConvNet::new(&layers, 12, 5);
    let whole = on_worker(|| net.batch_gradients(&x, &y, 1, 0));
    for parts in [2, 3, 7] {
        let split = on_worker(|| net.batch_gradients(&x, &y, parts, 0));
        assert!(
            (split.loss - whole.loss).abs() < 1e-5,
            "{parts} parts: loss"
        );
        assert_eq!(split.logits.len(), n);
        for (a, b) in split.logits.iter().zip(&whole.logits) {
            assert!((a - b).abs() < 1e-5, "{parts} parts: logits {a} vs {b}");
        }
        assert_eq!(split.grads.len(), whole.grads.len());
        for (g, w) in split.grads.iter().zip(&whole.grads) {
            for (a, b) in g.iter().zip(w) {
                assert!(
                    (a - b).abs() < 1e-5 * (1.0 + b.abs()),
                    "{parts} parts: {a} vs {b}"
                );
            }
        }
    }
    let train = || {
        let mut net = ConvNet::new(&layers, 12, 5);
        let mut adam = Optimizer::adam(0.01, 0.0);
        for _ in 0..3 {
            net.train_batch(&x, &y, &mut adam);
        }
        net.predict_logits(&x)
    };
    assert_eq!(train(), train());
}

/// A bright square vs. a dark one: a small net with batch norm learns it, and the same
/// seed gives the same numbers.
#[test]
fn small_network_learns_and_is_deterministic() {
    let layers = vec![
        conv(4),
        Layer::BATCHNORM,
        Layer::RELU,
        Layer::MAXPOOL,
        conv(4),
        Layer::RELU,
        Layer::MAXPOOL,
        Layer::Flatten,
        Layer::Dropout { p: 0.1 },
        Layer::Dense { units: 8 },
        Layer::RELU,
        Layer::Dense { units: 1 },
    ];
    let mut rng = Rng::new(2);
    let n = 32;
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let label = (i % 2) as f32;
        for r in 0..8 {
            for c in 0..8 {
                let inside = (2..6).contains(&r) && (2..6).contains(&c);
                x.push(if inside { label } else { 0.0 } + 0.1 * rng.normal() as f32);
            }
        }
        y.push(label);
    }
    let run = || {
        let mut net = ConvNet::new(&layers, 8, 3);
        let mut adam = Optimizer::adam(0.01, 0.0);
        for _ in 0..40 {
            net.train_batch(&x, &y, &mut adam);
        }
        net.predict_logits(&x)
    };
    let logits = run();
    let correct = logits
        .iter()
        .zip(&y)
        .filter(|(l, t)| (**l > 0.0) == (**t > 0.5))
        .count();
    assert!(correct >= 30, "{correct}/32 correct");
    assert_eq!(run(), logits);
}

/// Scoring runs the leading blocks on plain values (`scoring_prefix`) and gives the logits
/// of the whole network on dfdx's tape-free path bit for bit: convolutions with batch norm
/// folded in (after training, so its running statistics are not the initial ones), ReLU
/// and pooling fused or not, a 5×5 kernel, dropouts, residual blocks with and without a
/// projection, activations and 2×2 max-pools on their own, average and 3×3 max-pools,
/// strided convolutions, and the rest (global pooling, flattening, dense layers) handed
/// over; and a network whose first block has no forward function on plain values.
#[test]
fn scoring_on_plain_values_gives_the_taped_paths_logits() {
    let strided = Layer::Conv {
        filters: 4,
        kernel: 3,
        stride: 2,
        padding: crate::layer::Padding::Same,
    };
    let networks = [
        vec![
            conv(4),
            Layer::BATCHNORM,
            Layer::RELU,
            Layer::MAXPOOL,
            Layer::Dropout { p: 0.3 },
            Layer::conv(6, 5),
            Layer::RELU,
            conv(6),
            Layer::Residual(vec![conv(6), Layer::RELU]),
            Layer::GlobalAvgPool,
            Layer::Dense { units: 1 },
        ],
        vec![
            conv(4),
            Layer::Residual(vec![
                conv(8),
                Layer::BATCHNORM,
                Layer::RELU,
                strided.clone(),
            ]),
            Layer::Activation(crate::layer::Activation::Tanh),
            Layer::MAXPOOL,
            Layer::Flatten,
            Layer::Dense { units: 1 },
        ],
        vec![
            strided.clone(),
            Layer::RELU,
            Layer::Flatten,
            Layer::Dense { units: 1 },
        ],
        vec![
            Layer::BATCHNORM,
            conv(3),
            Layer::Flatten,
            Layer::Dense { units: 1 },
        ],
        vec![
            conv(4),
            Layer::AvgPool { size: 2, stride: 2 },
            Layer::MaxPool { size: 3, stride: 1 },
            Layer::Flatten,
            Layer::Dense { units: 1 },
        ],
    ];
    let mut rng = Rng::new(8);
    let (n, size) = (6, 10);
    let x: Vec<f32> = (0..n * size * size).map(|_| rng.normal() as f32).collect();
    let y: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
    for (k, layers) in networks.iter().enumerate() {
        let mut net = ConvNet::new(layers, size, 5);
        let mut adam = Optimizer::adam(0.01, 0.0);
        for _ in 0..3 {
            net.train_batch(&x, &y, &mut adam);
        }
        let scored = net.predict_logits(&x);
        let mut pass = Pass {
            dropout_seed: None,
            stats: &mut Vec::new(),
            first_conv: true,
        };
        let taped = run(
            &net.blocks,
            net.input_tensor(&x, n),
            net.geometry(n),
            &mut pass,
            0,
        );
        assert_eq!(scored, taped.0.as_vec(), "network {k}");
        let prefix = leading_blocks(&net.blocks, &x, 1, net.geometry(n));
        assert_eq!(
            prefix.map(|p| p.blocks),
            [Some(9), Some(4), Some(2), None, Some(3)][k]
        );
    }
}
