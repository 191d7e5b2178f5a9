//! `microcal bench layers`: what each layer kind costs against a convolution with the same
//! output size, on a mid-network activation (30×30×32, the reference network's second
//! stage, batch 32).
//!
//! Each case is a network of the layer under test followed by a flatten and a dense unit,
//! set against the same head after a convolution whose output has the same shape (a 3×3
//! 'same' one for layers that keep the shape; a strided 'valid' one for the pools). The
//! head alone, on that output shape, is timed too and taken off both, so the ratio is the
//! layer's own cost over the convolution's: forward and backward (a training step), and
//! forward alone (scoring). Runs alternate between the two networks of a case; the median
//! of `repeats` runs is reported.

use std::time::Instant;

use crate::engine::{Activation, ConvNet, Layer, Optimizer, Padding};
use crate::rng::Rng;

/// The input of every case: (height, width, channels).
const INPUT: (usize, usize, usize) = (30, 30, 32);
const BATCH: usize = 32;

/// One layer kind, and the layers that stand for "a convolution with the same output
/// size" beside it.
struct Case {
    name: &'static str,
    layers: Vec<Layer>,
    conv: Vec<Layer>,
    /// The output shape of both.
    output: (usize, usize, usize),
}

fn conv(filters: usize, kernel: usize, stride: usize, padding: Padding) -> Layer {
    Layer::Conv {
        filters,
        kernel,
        stride,
        padding,
    }
}

fn cases() -> Vec<Case> {
    let (h, w, c) = INPUT;
    let same = || vec![Layer::conv(c, 3)];
    let keeps = |name, layer: Layer| Case {
        name,
        layers: vec![layer],
        conv: same(),
        output: INPUT,
    };
    let mut cases = vec![
        keeps("batchnorm", Layer::BATCHNORM),
        keeps("relu", Layer::RELU),
        keeps(
            "leaky_relu",
            Layer::Activation(Activation::LeakyRelu { alpha: 0.3 }),
        ),
        keeps("elu", Layer::Activation(Activation::Elu)),
        keeps("gelu", Layer::Activation(Activation::Gelu)),
        keeps("sigmoid", Layer::Activation(Activation::Sigmoid)),
        keeps("tanh", Layer::Activation(Activation::Tanh)),
        keeps("dropout", Layer::Dropout { p: 0.5 }),
    ];
    let pooled = |name, layer: Layer, (size, stride): (usize, usize)| {
        let out = ((h - size) / stride + 1, (w - size) / stride + 1, c);
        Case {
            name,
            layers: vec![layer],
            conv: vec![conv(c, size, stride, Padding::Valid)],
            output: out,
        }
    };
    cases.push(pooled("maxpool", Layer::MAXPOOL, (2, 2)));
    cases.push(pooled(
        "maxpool 3/2",
        Layer::MaxPool { size: 3, stride: 2 },
        (3, 2),
    ));
    cases.push(pooled(
        "avgpool",
        Layer::AvgPool { size: 2, stride: 2 },
        (2, 2),
    ));
    cases.push(Case {
        name: "globalavgpool",
        layers: vec![Layer::GlobalAvgPool],
        conv: vec![conv(c, h, 1, Padding::Valid)],
        output: (1, 1, c),
    });
    // A residual block's own cost (the skip and the sum) is what it adds to its inner
    // layers: a block around one convolution against two convolutions.
    cases.push(Case {
        name: "residual (around a conv)",
        layers: vec![Layer::Residual(same())],
        conv: vec![Layer::conv(c, 3), Layer::conv(c, 3)],
        output: INPUT,
    });
    cases
}

/// Seconds of `steps` training steps and of `steps` scoring passes of `layers` + the
/// head over `input`-shaped images.
fn time(layers: &[Layer], input: (usize, usize, usize), steps: usize) -> (f64, f64) {
    let mut network = layers.to_vec();
    // Global pooling leaves the activations flat already.
    if !matches!(layers.last(), Some(Layer::GlobalAvgPool)) {
        network.push(Layer::Flatten);
    }
    network.push(Layer::Dense { units: 1 });
    let mut net = ConvNet::with_input(&network, input, 0);
    let mut rng = Rng::new(1);
    let images: Vec<f32> = (0..BATCH * net.input_len())
        .map(|_| rng.normal() as f32)
        .collect();
    let labels: Vec<f32> = (0..BATCH).map(|i| (i % 2) as f32).collect();
    let mut opt = Optimizer::adam(1e-3, 0.0);
    net.train_batch(&images, &labels, &mut opt); // warm-up
    let start = Instant::now();
    for _ in 0..steps {
        net.train_batch(&images, &labels, &mut opt);
    }
    let train = start.elapsed().as_secs_f64();
    net.predict_logits(&images);
    let start = Instant::now();
    for _ in 0..steps {
        std::hint::black_box(net.predict_logits(&images));
    }
    (train, start.elapsed().as_secs_f64())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs every case `repeats` times (`steps` batches each) and prints a row per layer kind;
/// the last line is `worst_train_ratio=… worst_infer_ratio=…` (the largest cost of a layer
/// over its convolution's).
pub fn layers(repeats: usize, steps: usize) {
    println!(
        "input {}x{}x{}, batch {BATCH}, {steps} steps a run, median of {repeats} runs, {} threads, SIMD path {}",
        INPUT.0,
        INPUT.1,
        INPUT.2,
        rayon::current_num_threads(),
        crate::engine::simd::active().name()
    );
    println!(
        "layer: its cost / a convolution's with the same output (training, scoring), ms per batch"
    );
    let (mut worst_train, mut worst_infer) = (0.0f64, 0.0f64);
    for case in cases() {
        let (mut layer, mut conv, mut head) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..repeats {
            layer.push(time(&case.layers, INPUT, steps));
            conv.push(time(&case.conv, INPUT, steps));
            head.push(time(&[], case.output, steps));
        }
        let per_batch = |runs: &[(f64, f64)], infer: bool| {
            let values = runs.iter().map(|r| if infer { r.1 } else { r.0 });
            1e3 * median(values.collect()) / steps as f64
        };
        let own = |runs: &[(f64, f64)], infer: bool| {
            (per_batch(runs, infer) - per_batch(&head, infer)).max(0.0)
        };
        let ratio = |infer: bool| own(&layer, infer) / own(&conv, infer).max(1e-9);
        let (train, infer) = (ratio(false), ratio(true));
        worst_train = worst_train.max(train);
        worst_infer = worst_infer.max(infer);
        println!(
            "{}: {train:.2}, {infer:.2} (layer {:.2} / {:.2}, conv {:.2} / {:.2}, head {:.2} / {:.2})",
            case.name,
            per_batch(&layer, false),
            per_batch(&layer, true),
            per_batch(&conv, false),
            per_batch(&conv, true),
            per_batch(&head, false),
            per_batch(&head, true),
        );
    }
    println!("worst_train_ratio={worst_train:.2} worst_infer_ratio={worst_infer:.2}");
}
