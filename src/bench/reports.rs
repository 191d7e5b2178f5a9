//! The `microcal bench ...` commands: set up the data, run the timings of this module's
//! parent, and print them, the last line machine-readable (`key=value ...`).

use std::path::PathBuf;

use thiserror::Error;

use crate::config::{check_shapes, parse_layers, reference_layer_values, WaveletConfig};
use crate::data::{self, synthetic, Dataset, Origin};
use crate::wavelet::{Array2, FeatureKind};

/// What can stop a benchmark.
#[derive(Debug, Error)]
pub enum BenchError {
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Wavelet(#[from] crate::wavelet::WaveletError),
    #[error(transparent)]
    Classical(#[from] crate::models::ClassicalError),
    #[error(transparent)]
    Results(#[from] crate::results::ResultsError),
    #[error("reference layers: {0}")]
    Layers(#[from] crate::models::LayerError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Augment(#[from] crate::data::augment::UnknownAugment),
    #[error("{0}: bench cnn needs a file with model.kind = \"cnn\"")]
    NotCnn(PathBuf),
    #[error("cannot make the benchmark's scratch folder: {0}")]
    Scratch(#[from] std::io::Error),
}

/// The real data under `root`, or synthetic images with the real data's counts.
fn dataset(root: Option<&PathBuf>) -> Result<(Dataset, String), BenchError> {
    Ok(match root {
        Some(root) => (
            data::load_folder(root, 60, "^([^_]+)_", false)?,
            root.display().to_string(),
        ),
        None => (
            synthetic::generate(&synthetic::SyntheticSpec {
                size: 60,
                train_per_class: 318,
                test_per_class: 81,
                seed: 0,
            }),
            "synthetic".to_string(),
        ),
    })
}

pub fn wavelet(root: Option<PathBuf>, seconds: f64) -> Result<(), BenchError> {
    let (dataset, source) = dataset(root.as_ref())?;
    let spec = super::reference_wavelet_spec();
    println!(
        "wavelet features: db5 level 4, detail levels 2-4 ({} coefficients) on {} images from {source}",
        spec.extract(&Array2::new(60, 60, vec![0.0; 3600]))?.len(),
        dataset.samples.len()
    );
    let single = super::wavelet_throughput(&dataset, &spec, seconds, false);
    println!("1 thread:  {:.0} images/s", single.images_per_s());
    let all = super::wavelet_throughput(&dataset, &spec, seconds, true);
    println!(
        "{} threads: {:.0} images/s",
        rayon::current_num_threads(),
        all.images_per_s()
    );
    println!("images_per_s={:.0}", all.images_per_s());
    Ok(())
}

pub fn classical(root: Option<PathBuf>) -> Result<(), BenchError> {
    let (dataset, source) = dataset(root.as_ref())?;
    let wavelet = WaveletConfig {
        keep_levels: Some(vec![2, 3, 4]),
        features: FeatureKind::Coefficients,
        ..WaveletConfig::default()
    };
    let (train, test) = (
        dataset.indices_of(Origin::Train),
        dataset.indices_of(Origin::Test),
    );
    let raw = crate::models::wavelet_features(&dataset, &wavelet)?;
    let scaler = crate::models::Standardizer::fit(&raw.select(&train));
    let x = scaler.apply(&raw.select(&train));
    let test_x = scaler.apply(&raw.select(&test));
    println!(
        "fitting on {} x {} (db5 level 4 coefficients, Train part of {source}), scoring {} Test images",
        x.rows, x.cols, test_x.rows
    );
    let (y, test_y) = (dataset.labels(&train), dataset.labels(&test));
    let timings = super::classical_timings((&x, &y), (&test_x, &test_y), 0)?;
    println!(
        "{:<14} {:>8} {:>10} {:>9}",
        "classifier", "fit s", "predict s", "test AUC"
    );
    for t in &timings {
        println!(
            "{:<14} {:>8.3} {:>10.3} {:>9.3}",
            t.kind.name(),
            t.fit_seconds,
            t.predict_seconds,
            t.test_auc
        );
    }
    let line: Vec<String> = timings
        .iter()
        .map(|t| {
            let name = t.kind.name().replace('-', "_");
            format!(
                "fit_s_{name}={:.3} predict_s_{name}={:.3} auc_{name}={:.3}",
                t.fit_seconds, t.predict_seconds, t.test_auc
            )
        })
        .collect();
    println!("{}", line.join(" "));
    Ok(())
}

pub fn table(
    rows: usize,
    appends: usize,
    sweep: usize,
    dir: Option<PathBuf>,
) -> Result<(), BenchError> {
    let temporary = tempfile::tempdir()?;
    if let Some(dir) = &dir {
        std::fs::create_dir_all(dir)?;
    }
    let folder = dir.as_deref().unwrap_or(temporary.path());
    let t = crate::results::bench_table(folder, rows, appends.max(1), sweep)?;
    println!(
        "append one row to a {}-row table: {:.2} ms (median of {appends})",
        t.rows_before, t.append_ms
    );
    println!(
        "which jobs a {}-row table holds (planning, each search round): {:.1} ms from its index, {:.1} ms rebuilding the index; reading it whole (reports): {:.1} ms",
        t.rows_before + appends.max(1), t.plan_ms, t.cold_ms, t.read_ms
    );
    for (i, s) in t.sweep_s_per_thousand.iter().enumerate() {
        println!(
            "sweep rows {:>6}-{:>6}: {s:.3} s",
            i * 1000 + 1,
            (i + 1) * 1000
        );
    }
    let total: f64 = t.sweep_s_per_thousand.iter().sum();
    let first = t.sweep_s_per_thousand.first().copied().unwrap_or(f64::NAN);
    let last = t.sweep_s_per_thousand.last().copied().unwrap_or(f64::NAN);
    println!(
        "append_ms_at_{}={:.3} plan_ms={:.1} plan_cold_ms={:.1} read_ms={:.1} sweep_rows={sweep} sweep_s={total:.3} first_1k_s={first:.3} last_1k_s={last:.3}",
        t.rows_before, t.append_ms, t.plan_ms, t.cold_ms, t.read_ms
    );
    Ok(())
}

pub fn matmul(seconds: f64) {
    // The reference network's conv2-4 on one image: (layer, h = w, channels in, out).
    let layers = [
        ("conv2", 30, 32, 64),
        ("conv3", 15, 64, 128),
        ("conv4", 7, 128, 128),
    ];
    let path = crate::engine::simd::active();
    println!(
        "SIMD path: {} (MICROCAL_SIMD chooses among: {})",
        path.name(),
        available_paths()
    );
    // The peaks and the products, timed in turns over the same seconds (each its best
    // window).
    use crate::engine::Workload;
    let paths = crate::engine::simd::SimdPath::available();
    let mut workloads: Vec<Workload> = paths.iter().map(|p| Workload::FmaPeak(*p)).collect();
    let mut products = Vec::new();
    for (layer, size, cin, cout) in layers {
        let direct = (size * size, 9 * cin, cout);
        let winograd = crate::engine::point_product_shape(size, size, (cin, cout), true);
        products.extend([
            (
                layer.to_string(),
                "direct, weights packed once per batch",
                direct,
                false,
            ),
            (
                format!("{layer}_repacked"),
                "direct, weights packed per product",
                direct,
                true,
            ),
            (
                format!("winograd_{layer}"),
                "Winograd's point products, as the layer runs them",
                winograd,
                false,
            ),
        ]);
    }
    workloads.extend(
        (products.iter()).map(|&(_, _, (m, k, n), pack_each)| Workload::Product {
            m,
            k,
            n,
            pack_each,
        }),
    );
    let gflops = crate::engine::gflops_interleaved(&workloads, seconds);
    let (peaks, timed) = gflops.split_at(paths.len());
    let mut all = vec![format!("simd={}", path.name())];
    for (other, peak) in paths.iter().zip(peaks) {
        println!(
            "FMA peak of one core, {} (register-only loop): {peak:.1} GFLOP/s",
            other.name()
        );
        all.push(format!("peak_gflops_{}={peak:.1}", other.name()));
    }
    let active = paths.iter().position(|p| *p == path);
    let peak = peaks[active.expect("the active path is available")];
    for ((key, what, (m, k, n), _), gflops) in products.iter().zip(timed) {
        let share = 100.0 * gflops / peak;
        println!(
            "{key}: {m}x{k} by {k}x{n}, {what}: {gflops:.1} GFLOP/s, {share:.0}% of the {} peak",
            path.name()
        );
        all.push(format!("gflops_{key}={gflops:.1}"));
        all.push(format!("peak_pct_{key}={share:.0}"));
    }
    println!("{}", all.join(" "));
}

/// `microcal bench cnn`: the reference network, or the network and training settings of
/// `experiment` (its first grid combination); with `with_reference`, the reference network
/// too, timed in turns with the file's, and the file's training speed as a share of it.
pub fn cnn(
    root: Option<PathBuf>,
    experiment: Option<PathBuf>,
    with_reference: bool,
    repeats: usize,
) -> Result<(), BenchError> {
    let reference = || {
        Ok::<_, BenchError>((
            "reference CNN".to_string(),
            parse_layers(&reference_layer_values())?,
            crate::train::TrainConfig::default(),
        ))
    };
    let mut networks = vec![match &experiment {
        None => reference()?,
        Some(path) => {
            let exp = crate::config::Experiment::load(path, &[])?;
            let (config, _) = exp
                .configs()?
                .into_iter()
                .next()
                .expect("a file has a combination");
            match config.model.spec() {
                Ok(crate::models::ModelSpec::Cnn { layers }) => (
                    format!("{} ({})", config.name, path.display()),
                    layers,
                    config.train,
                ),
                _ => return Err(BenchError::NotCnn(path.clone())),
            }
        }
    }];
    if with_reference && experiment.is_some() {
        networks.push(reference()?);
    }
    let (dataset, source) = dataset(root.as_ref())?;
    let n = 640.min(dataset.samples.len());
    let subset = Dataset::new(dataset.samples[..n].to_vec());
    let images = crate::models::Features::Pixels
        .extract(&subset)
        .expect("pixels always extract")
        .data;
    let labels: Vec<f32> = subset.samples.iter().map(|s| s.label as f32).collect();
    for (name, network, train) in &networks {
        let parameters = check_shapes(network, 60)?;
        println!(
            "{name}: {parameters} parameters, {n} images from {source}, batch {}, {} threads, SIMD path {} (of {})",
            train.batch_size,
            rayon::current_num_threads(),
            crate::engine::simd::active().name(),
            available_paths()
        );
    }
    if networks.len() > 1 {
        println!("their epochs and passes timed in turns");
    }
    let settings: Vec<_> = networks.iter().map(|(_, n, t)| (n, t)).collect();
    let runs = super::cnn_throughput(&settings, 60, (&images, &labels), repeats)?;
    let rates = |runs: &[super::Throughput]| {
        let list: Vec<String> = runs
            .iter()
            .map(|r| format!("{:.0}", r.images_per_s()))
            .collect();
        list.join(" ")
    };
    let mut medians = Vec::new();
    for ((name, _, _), super::NetworkRuns { train, infer }) in networks.iter().zip(&runs) {
        let (train_median, infer_median) = (
            super::median_images_per_s(train),
            super::median_images_per_s(infer),
        );
        let of = if networks.len() > 1 {
            format!(" ({name})")
        } else {
            String::new()
        };
        println!(
            "training:  {train_median:.0} images/s median of {} epochs ({}){of}",
            train.len(),
            rates(train)
        );
        println!(
            "inference: {infer_median:.0} images/s median of {} passes ({}){of}",
            infer.len(),
            rates(infer)
        );
        medians.push((train_median, infer_median));
    }
    let (train_median, infer_median) = medians[0];
    let mut last = format!(
        "train_images_per_s={train_median:.0} infer_images_per_s={infer_median:.0} simd={}",
        crate::engine::simd::active().name()
    );
    if let Some(&(reference_train, reference_infer)) = medians.get(1) {
        // Epoch by epoch: each round's two epochs ran next to each other.
        let shares: Vec<f64> = (runs[0].train.iter().zip(&runs[1].train))
            .map(|(file, reference)| file.images_per_s() / reference.images_per_s())
            .collect();
        let listed: Vec<String> = shares.iter().map(|s| format!("{s:.2}")).collect();
        println!(
            "training share of the reference network's images/s, round by round: {}",
            listed.join(" ")
        );
        let share = super::median(shares);
        last += &format!(
            " reference_train_images_per_s={reference_train:.0} reference_infer_images_per_s={reference_infer:.0} train_share_of_reference={share:.2}"
        );
    }
    println!("{last}");
    Ok(())
}

/// The SIMD paths this CPU supports, for the benchmarks' headers.
fn available_paths() -> String {
    crate::engine::simd::SimdPath::available()
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}
