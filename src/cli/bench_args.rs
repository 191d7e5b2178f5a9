//! The `microcal bench ...` command line and its dispatch, here rather than in the binary
//! (which stays clap and dispatch only, and short): the benchmarks themselves are
//! `bench::reports` and `bench::layers`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::bench::layers;
use crate::bench::reports::{self, BenchError};

#[derive(Subcommand)]
pub enum Bench {
    /// Wavelet feature extraction (db5, level 4, detail levels 2-4) in images/s.
    Wavelet {
        /// Folder with Train/ and Test/ (default: 797 synthetic images).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Seconds to measure each setting for.
        #[arg(long, default_value_t = 3.0, value_parser = positive_seconds)]
        seconds: f64,
    },
    /// Training and inference images/s of the reference CNN (640 images, batch 32, one epoch
    /// after a warm-up, repeated; the median is reported).
    Cnn {
        /// Folder with Train/ and Test/ (default: synthetic images).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Timed epochs (and inference passes).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
        repeats: u32,
        /// Benchmark this experiment file's network and training settings instead of the
        /// reference network's (its first grid combination; 60×60 images).
        #[arg(long)]
        experiment: Option<PathBuf>,
        /// Also time the reference network, in turns with the file's (epoch by epoch), and
        /// print the file's training images/s as a share of the reference's.
        #[arg(long, requires = "experiment")]
        with_reference: bool,
    },
    /// What each layer kind costs (training and scoring) against a convolution with the
    /// same output size, on a 30×30×32 activation, batch 32.
    Layers {
        /// Runs per layer kind (alternating with its convolution); the median is reported.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
        repeats: u32,
        /// Batches per run.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        steps: u32,
    },
    /// GFLOP/s of the engine's matrix product (one thread) on the reference CNN's per-image
    /// convolution shapes.
    Matmul {
        /// Seconds per shape.
        #[arg(long, default_value_t = 1.0, value_parser = positive_seconds)]
        seconds: f64,
    },
    /// Cost of a results table: appending one row to a table of --rows rows (median of
    /// --appends), and a sweep of --sweep rows appended one by one (seconds per thousand).
    Table {
        #[arg(long, default_value_t = 50_000)]
        rows: usize,
        #[arg(long, default_value_t = 21)]
        appends: usize,
        #[arg(long, default_value_t = 10_000)]
        sweep: usize,
        /// Folder for the benchmark's tables (default: a temporary folder, removed after).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Fit time of each classical classifier on the reference features of the Train part
    /// (636 × 2,430 on the real data).
    Classical {
        /// Folder with Train/ and Test/ (default: synthetic images of the same counts).
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

impl Bench {
    /// Runs the benchmark; its last line printed is machine-readable.
    pub fn run(self) -> Result<(), BenchError> {
        match self {
            Bench::Wavelet { data, seconds } => reports::wavelet(data, seconds),
            Bench::Table {
                rows,
                appends,
                sweep,
                dir,
            } => reports::table(rows, appends, sweep, dir),
            Bench::Matmul { seconds } => {
                reports::matmul(seconds);
                Ok(())
            }
            Bench::Classical { data } => reports::classical(data),
            Bench::Layers { repeats, steps } => {
                layers::layers(repeats as usize, steps as usize);
                Ok(())
            }
            Bench::Cnn {
                data,
                repeats,
                experiment,
                with_reference,
            } => reports::cnn(data, experiment, with_reference, repeats as usize),
        }
    }
}

fn positive_seconds(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 3600.0 => Ok(s),
        _ => Err(format!(
            "expected seconds above 0 and at most 3600, got {text:?}"
        )),
    }
}
