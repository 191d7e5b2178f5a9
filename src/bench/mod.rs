//! Throughput benchmarks behind `microcal bench ...` (speed targets live here, never in tests).

pub mod layers;
pub mod reports;

use std::time::Instant;

use rayon::prelude::*;

use crate::config::{ClassifierKind, ClassifierParams};
use crate::data::Dataset;
use crate::models::classifiers::{ClassicalError, Scorer};
use crate::models::cnn::CnnClassifier;
use crate::models::Network;
use crate::train::Matrix;
use crate::train::{TrainConfig, Trainable};
use crate::wavelet::{Array2, FeatureKind, FeatureSpec, Wavelet, LANES};

/// Result of a throughput run.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub images: usize,
    pub seconds: f64,
}

impl Throughput {
    pub fn images_per_s(&self) -> f64 {
        self.images as f64 / self.seconds.max(1e-12)
    }
}

/// The reference feature setting: db5, level 4, detail levels 2-4, raw coefficients.
pub fn reference_wavelet_spec() -> FeatureSpec {
    FeatureSpec {
        wavelet: Wavelet::from_name("db5").expect("db5 exists"),
        level: 4,
        keep_levels: vec![2, 3, 4],
        keep_approx: false,
        kind: FeatureKind::Coefficients,
    }
}

/// Extracts features of every image repeatedly for at least `min_seconds` (after one warm-up
/// pass), in parallel or on one thread. Image decoding is not timed: images are converted to
/// `f64` arrays once, before the clock starts.
pub fn wavelet_throughput(
    data: &Dataset,
    spec: &FeatureSpec,
    min_seconds: f64,
    parallel: bool,
) -> Throughput {
    let images: Vec<Array2> = data
        .samples
        .iter()
        .map(|s| Array2::new(s.rows, s.cols, s.pixels.iter().map(|&v| v as f64).collect()))
        .collect();
    let chunk = 8 * LANES;
    let width = spec.feature_count(images[0].rows, images[0].cols);
    let pass = || {
        let extract = |buffer: &mut Vec<f64>, group: &[Array2]| {
            buffer.resize(group.len() * width, 0.0);
            spec.extract_into(group, buffer).expect("valid spec");
            std::hint::black_box(&buffer);
        };
        if parallel {
            images.par_chunks(chunk).for_each_init(Vec::new, extract);
        } else {
            let mut buffer = Vec::new();
            images.chunks(chunk).for_each(|g| extract(&mut buffer, g));
        }
    };
    pass();
    let start = Instant::now();
    let mut passes = 0;
    while passes == 0 || start.elapsed().as_secs_f64() < min_seconds {
        pass();
        passes += 1;
    }
    Throughput {
        images: images.len() * passes,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// One classical classifier's timings and test AUC (see [`classical_timings`]).
#[derive(Debug, Clone)]
pub struct ClassicalTiming {
    pub kind: ClassifierKind,
    pub fit_seconds: f64,
    pub predict_seconds: f64,
    pub test_auc: f64,
}

/// Each classical classifier with default parameters: fitted on `train`, then scoring
/// `test`, each step timed.
pub fn classical_timings(
    (x, y): (&Matrix, &[u8]),
    (test_x, test_y): (&Matrix, &[u8]),
    seed: u64,
) -> Result<Vec<ClassicalTiming>, ClassicalError> {
    ClassifierKind::ALL
        .iter()
        .map(|&kind| {
            let params =
                ClassifierParams::parse(kind, &toml::Table::new()).expect("defaults are valid");
            let start = Instant::now();
            let fitted = params.fit(x, y, seed)?;
            let fit_seconds = start.elapsed().as_secs_f64();
            let start = Instant::now();
            let scores = fitted.score(test_x);
            let predict_seconds = start.elapsed().as_secs_f64();
            Ok(ClassicalTiming {
                kind,
                fit_seconds,
                predict_seconds,
                test_auc: crate::metrics::roc_auc(test_y, &scores),
            })
        })
        .collect()
}

/// One network's timed epochs of training and passes of inference, in the order run.
#[derive(Debug, Clone, Default)]
pub struct NetworkRuns {
    pub train: Vec<Throughput>,
    pub infer: Vec<Throughput>,
}

/// Training and inference throughput of CNNs over `images` (n × size², already scaled),
/// each trained as a job would be with its `TrainConfig` (optimiser, batch size and
/// augmentation): after a warm-up of a few batches, `repeats` timed epochs of training and
/// `repeats` timed passes of inference, each list in the order run. Report the median: on a
/// shared machine single epochs vary by ±15%.
///
/// With more than one network, their epochs (and then their passes) are timed in turns,
/// one each per round, so that a slow minute of the host falls on all of them alike and
/// their ratio is measured in one run.
pub fn cnn_throughput(
    networks: &[(&Network, &TrainConfig)],
    size: usize,
    (images, labels): (&[f32], &[f32]),
    repeats: usize,
) -> Result<Vec<NetworkRuns>, crate::data::augment::UnknownAugment> {
    let per = size * size;
    let n = labels.len();
    let classes: Vec<u8> = labels.iter().map(|&l| l as u8).collect();
    let mut models = Vec::with_capacity(networks.len());
    for &(network, train) in networks {
        let mut model = CnnClassifier::new(network, size, train, &classes, 0)?;
        let batch = train.batch_size;
        for b in 0..3.min(n / batch) {
            model.train_batch(
                &images[b * batch * per..(b + 1) * batch * per],
                &labels[b * batch..(b + 1) * batch],
            );
        }
        models.push((model, batch));
    }
    let mut runs = vec![NetworkRuns::default(); models.len()];
    for _ in 0..repeats.max(1) {
        for ((model, batch), runs) in models.iter_mut().zip(&mut runs) {
            runs.train.push(timed(n, || {
                for (x, y) in images.chunks(*batch * per).zip(labels.chunks(*batch)) {
                    model.train_batch(x, y);
                }
            }));
        }
    }
    let all = Matrix {
        rows: n,
        cols: per,
        data: images.to_vec(),
    };
    for _ in 0..repeats.max(1) {
        for ((model, _), runs) in models.iter().zip(&mut runs) {
            runs.infer.push(timed(n, || {
                std::hint::black_box(model.predict_rows(&all));
            }));
        }
    }
    Ok(runs)
}

/// `work` (a pass over `images` images), timed.
fn timed(images: usize, work: impl FnOnce()) -> Throughput {
    let start = Instant::now();
    work();
    Throughput {
        images,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// The median of the runs' images/s.
pub fn median_images_per_s(runs: &[Throughput]) -> f64 {
    median(runs.iter().map(Throughput::images_per_s).collect())
}

/// The median of `values` (0 when there are none).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
