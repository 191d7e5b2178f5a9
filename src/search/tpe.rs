//! The tree-structured Parzen estimator for one key (Bergstra et al. 2011), as the `tpe`
//! crate 0.2 (Takeru Ohta, MIT/Apache-2.0) implements it, ported here line for line.
//!
//! Why ours: the crate pulls in statrs 0.15 and, through it, nalgebra 0.27, which cargo flags
//! as future-incompatible on every build; the crate uses them for the normal distribution's
//! density and CDF alone. A port rather than a new TPE because a committed search must
//! propose the same trials after the change: the port keeps the crate's choices (a prior
//! at the range's midpoint, its bandwidth rule, 24 candidates from the better estimator,
//! γ = 0.1, and even the histogram estimator's "log density" being a probability), draws
//! from the generator in the same order, and reproduces the crate's own test to the last
//! bit. The committed searches replan to zero jobs with it (see the closing notes).

use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::Rng;

use crate::metrics::paired::erfc;

/// ln √(2π), as statrs spells it.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_741_780_329_736_405_6;

/// A half-open interval `[start, end)` of a parameter's own scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    start: f64,
    end: f64,
}

impl Range {
    /// None unless `start < end`, both finite.
    pub fn new(start: f64, end: f64) -> Option<Self> {
        ((end - start).is_finite() && start < end).then_some(Self { start, end })
    }

    fn width(self) -> f64 {
        self.end - self.start
    }

    fn contains(self, v: f64) -> bool {
        self.start <= v && v < self.end
    }
}

/// How a key's values are modelled: Parzen windows of normals for numbers, a histogram for
/// choices (their index on `[0, choices)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    Parzen,
    Histogram,
}

#[derive(Debug, Clone)]
struct Normal {
    mean: f64,
    stddev: f64,
}

impl Normal {
    fn ln_pdf(&self, x: f64) -> f64 {
        let d = (x - self.mean) / self.stddev;
        (-0.5 * d * d) - LN_SQRT_2PI - self.stddev.ln()
    }

    fn cdf(&self, x: f64) -> f64 {
        0.5 * erfc((self.mean - x) / (self.stddev * std::f64::consts::SQRT_2))
    }
}

/// A density over the range, fitted to some parameter values.
enum Density {
    Parzen {
        samples: Vec<Normal>,
        range: Range,
        p_accept: f64,
    },
    Histogram {
        probabilities: Vec<f64>,
        distribution: WeightedIndex<f64>,
    },
}

impl Density {
    fn fit(kind: Estimator, xs: &[f64], range: Range) -> Density {
        match kind {
            Estimator::Parzen => {
                let prior = (range.start + range.end) * 0.5;
                let mut samples: Vec<Normal> = xs
                    .iter()
                    .copied()
                    .chain(std::iter::once(prior))
                    .map(|mean| Normal {
                        mean,
                        stddev: f64::NAN,
                    })
                    .collect();
                samples.sort_by(|a, b| nan_greatest(a.mean, b.mean));
                let n = samples.len();
                for i in 0..n {
                    let prev = if i == 0 {
                        range.start
                    } else {
                        samples[i - 1].mean
                    };
                    let curr = samples[i].mean;
                    let succ = samples.get(i + 1).map_or(range.end, |x| x.mean);
                    samples[i].stddev = (curr - prev).max(succ - curr);
                }
                if n >= 2 {
                    samples[0].stddev = samples[1].mean - samples[0].mean;
                    samples[n - 1].stddev = samples[n - 1].mean - samples[n - 2].mean;
                }
                let max_stddev = range.width();
                let min_stddev = range.width() / 100f64.min(1.0 + n as f64);
                for s in &mut samples {
                    s.stddev = s.stddev.max(min_stddev).min(max_stddev);
                }
                let p_accept = samples
                    .iter()
                    .map(|s| s.cdf(range.end) - s.cdf(range.start))
                    .sum::<f64>()
                    / n as f64;
                Density::Parzen {
                    samples,
                    range,
                    p_accept,
                }
            }
            Estimator::Histogram => {
                let cardinality = range.width().ceil() as usize;
                let weight = 1.0 / (xs.len() + cardinality) as f64;
                let mut probabilities = vec![weight; cardinality];
                for &x in xs {
                    probabilities[x.floor() as usize] += weight;
                }
                let distribution =
                    WeightedIndex::new(probabilities.iter()).expect("positive weights");
                Density::Histogram {
                    probabilities,
                    distribution,
                }
            }
        }
    }

    /// The crate's "log density": a log-sum-exp of the windows for Parzen; for a histogram,
    /// the bin's probability itself (not its logarithm, kept as the crate has it).
    fn log_pdf(&self, x: f64) -> f64 {
        match self {
            Density::Parzen {
                samples, p_accept, ..
            } => {
                let weight = 1.0 / samples.len() as f64;
                let xs: Vec<f64> = samples
                    .iter()
                    .map(|s| s.ln_pdf(x) + (weight / p_accept).ln())
                    .collect();
                let max = xs
                    .iter()
                    .copied()
                    .max_by(|a, b| nan_greatest(*a, *b))
                    .expect("at least the prior");
                xs.iter().map(|&v| (v - max).exp()).sum::<f64>().ln() + max
            }
            Density::Histogram { probabilities, .. } => probabilities[x.floor() as usize],
        }
    }

    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self {
            Density::Parzen { samples, range, .. } => loop {
                let s = samples.choose(rng).expect("at least the prior");
                let draw = rand_distr::Normal::new(s.mean, s.stddev)
                    .expect("a positive bandwidth")
                    .sample(rng);
                if range.contains(draw) {
                    return draw;
                }
            },
            Density::Histogram { distribution, .. } => distribution.sample(rng) as f64,
        }
    }
}

/// The optimiser of one key: told (value, score) pairs, asked for the next value. Lower
/// scores are better.
#[derive(Debug, Clone)]
pub struct Tpe {
    kind: Estimator,
    range: Range,
    /// (parameter, score); a NaN parameter is a trial that did not use the key.
    trials: Vec<(f64, f64)>,
}

/// γ: the share of trials that model the better density.
const GAMMA: f64 = 0.1;
/// Candidates drawn from the better density per proposal.
const CANDIDATES: usize = 24;

impl Tpe {
    pub fn new(kind: Estimator, range: Range) -> Self {
        Self {
            kind,
            range,
            trials: Vec::new(),
        }
    }

    /// Records a trial; false (nothing recorded) for a NaN score or a parameter outside the
    /// range.
    pub fn tell(&mut self, param: f64, score: f64) -> bool {
        if score.is_nan() || !(param.is_nan() || self.range.contains(param)) {
            return false;
        }
        self.trials.push((param, score));
        true
    }

    /// The candidate, of 24 drawn from the better trials' density, with the highest ratio
    /// of better to worse density.
    pub fn ask<R: Rng + ?Sized>(&mut self, rng: &mut R) -> f64 {
        self.trials.sort_by(|a, b| nan_greatest(a.1, b.1));
        let split = (self.trials.len() as f64 * GAMMA).ceil() as usize;
        let (better, worse) = self.trials.split_at(split);
        let finite = |ts: &[(f64, f64)]| -> Vec<f64> {
            ts.iter().map(|t| t.0).filter(|p| p.is_finite()).collect()
        };
        let better = Density::fit(self.kind, &finite(better), self.range);
        let worse = Density::fit(self.kind, &finite(worse), self.range);
        let mut best: Option<(f64, f64)> = None;
        for _ in 0..CANDIDATES {
            let candidate = better.sample(rng);
            let ei = better.log_pdf(candidate) - worse.log_pdf(candidate);
            // The last of equal maxima wins, as `Iterator::max_by_key` picks it, and NaN
            // ranks above every number, as `OrderedFloat` ranks it.
            if best.is_none_or(|(top, _)| nan_greatest(ei, top).is_ge()) {
                best = Some((ei, candidate));
            }
        }
        best.expect("24 candidates").1
    }
}

/// Order with NaN above every number (and equal to itself), as `ordered_float` has it.
fn nan_greatest(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).expect("numbers"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The `tpe` crate's own test (`optimizer_works`), whose best value it pins: the same
    /// generator (rand 0.8's `StdRng` is ChaCha12), the same objective, the same result.
    #[test]
    fn reproduces_the_crates_own_test_to_the_last_bit() {
        let choices = [1, 10, 100];
        let mut x_opt = Tpe::new(Estimator::Parzen, Range::new(-5.0, 5.0).unwrap());
        let mut y_opt = Tpe::new(Estimator::Histogram, Range::new(0.0, 3.0).unwrap());
        let mut rng = rand_chacha::ChaCha12Rng::from_seed(Default::default());
        let mut best = f64::INFINITY;
        for _ in 0..100 {
            let x = x_opt.ask(&mut rng);
            let y = y_opt.ask(&mut rng);
            let v = x.powi(2) + choices[y as usize] as f64;
            assert!(x_opt.tell(x, v) && y_opt.tell(y, v));
            best = best.min(v);
        }
        assert_eq!(best, 1.000054276671888);
    }

    #[test]
    fn out_of_range_and_nan_are_refused() {
        let mut t = Tpe::new(Estimator::Parzen, Range::new(0.0, 1.0).unwrap());
        assert!(!t.tell(1.0, 0.5) && !t.tell(0.5, f64::NAN));
        assert!(t.tell(f64::NAN, 0.5) && t.tell(0.25, 0.1));
        assert!(Range::new(1.0, 1.0).is_none() && Range::new(0.0, f64::INFINITY).is_none());
    }
}
