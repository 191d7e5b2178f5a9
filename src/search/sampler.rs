//! Proposing trials: random, or TPE conditioned on the trials already scored. A round's
//! proposals depend only on the search seed, the round number and the scores of earlier
//! rounds, so a search that stops and starts again proposes the same trials.

use rand::{Rng, SeedableRng};
/// ChaCha with 12 rounds from rand_chacha, named rather than taken as rand's `StdRng`
/// (which is this generator in rand 0.8, but whose algorithm rand does not promise to keep):
/// rand_chacha promises the same stream for the same seed across versions, so a committed
/// search proposes the same trials after any upgrade (a golden test holds the first ones).
type StdRng = rand_chacha::ChaCha12Rng;
use toml::Value;

use super::tpe::{Estimator, Range, Tpe};
use super::{Direction, Domain, Method, SearchConfig, STARTUP_TRIALS};

/// A scored trial: one value per key of the space (in key order) and its validation score
/// (NaN when it failed).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub values: Vec<Value>,
    pub score: f64,
}

/// `count` proposals for round `round`, each one value per key of the space, in key order.
pub fn propose(
    config: &SearchConfig,
    history: &[Observation],
    round: usize,
    count: usize,
) -> Vec<Vec<Value>> {
    let domains: Vec<Domain> = config.domains().into_iter().map(|(_, d)| d).collect();
    let seed = config
        .seed
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(round as u64 + 1);
    let mut rng = StdRng::seed_from_u64(seed);
    if config.method == Method::Random || history.len() < STARTUP_TRIALS {
        return (0..count)
            .map(|_| domains.iter().map(|d| random_value(d, &mut rng)).collect())
            .collect();
    }
    let sign = match config.direction() {
        Direction::Maximize => -1.0,
        Direction::Minimize => 1.0,
    };
    let mut optimizers: Vec<Optimizer> = domains.iter().map(Optimizer::new).collect();
    for observation in history {
        // The crate minimises; a failed trial is the worst there is.
        let value = if observation.score.is_finite() {
            sign * observation.score
        } else {
            f64::INFINITY
        };
        for (optimizer, v) in optimizers.iter_mut().zip(&observation.values) {
            optimizer.tell(v, value);
        }
    }
    // Constant liar (as Optuna's): each proposal of the round is told to the optimisers as
    // scoring the worst value seen so far, so that the next one looks elsewhere instead of
    // proposing the same point again.
    let worst = history
        .iter()
        .filter(|o| o.score.is_finite())
        .map(|o| sign * o.score)
        .fold(f64::NEG_INFINITY, f64::max);
    let liar = if worst.is_finite() {
        worst
    } else {
        f64::INFINITY
    };
    let mut proposals = Vec::with_capacity(count);
    for _ in 0..count {
        let values: Vec<Value> = optimizers.iter_mut().map(|o| o.ask(&mut rng)).collect();
        for (optimizer, v) in optimizers.iter_mut().zip(&values) {
            optimizer.tell(v, liar);
        }
        proposals.push(values);
    }
    proposals
}

/// Floats are kept to 4 significant digits, so that rows and ids stay readable.
fn round4(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(3 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

fn random_value(domain: &Domain, rng: &mut StdRng) -> Value {
    let u: f64 = rng.gen();
    from_unit(domain, u)
}

/// The value at position `u` ∈ [0, 1) of the domain (on its own scale).
fn from_unit(domain: &Domain, u: f64) -> Value {
    match *domain {
        Domain::Uniform(low, high) => Value::Float(round4(low + u * (high - low)).clamp(low, high)),
        Domain::LogUniform(low, high) => {
            let v = (low.ln() + u * (high.ln() - low.ln())).exp();
            Value::Float(round4(v).clamp(low, high))
        }
        Domain::Int { low, high, log } => {
            let v = if log {
                let (a, b) = ((low as f64 - 0.5).max(0.5).ln(), (high as f64 + 0.5).ln());
                (a + u * (b - a)).exp().round() as i64
            } else {
                low + (u * (high - low + 1) as f64).floor() as i64
            };
            Value::Integer(v.clamp(low, high))
        }
        Domain::Choice(ref choices) => {
            choices[((u * choices.len() as f64) as usize).min(choices.len() - 1)].clone()
        }
    }
}

/// One key's TPE optimiser, working on the key's own scale (log for log ranges, the index
/// for choices).
struct Optimizer {
    domain: Domain,
    tpe: Tpe,
}

impl Optimizer {
    fn new(domain: &Domain) -> Self {
        let range = |a: f64, b: f64| Range::new(a, b).expect("checked: low < high");
        let tpe = match *domain {
            Domain::Uniform(low, high) => Tpe::new(Estimator::Parzen, range(low, high)),
            Domain::LogUniform(low, high) => {
                Tpe::new(Estimator::Parzen, range(low.ln(), high.ln()))
            }
            Domain::Int { low, high, log } => {
                let (a, b) = if log {
                    ((low as f64 - 0.5).max(0.5).ln(), (high as f64 + 0.5).ln())
                } else {
                    (low as f64 - 0.5, high as f64 + 0.5)
                };
                Tpe::new(Estimator::Parzen, range(a, b))
            }
            Domain::Choice(ref choices) => {
                Tpe::new(Estimator::Histogram, range(0.0, choices.len() as f64))
            }
        };
        Self {
            domain: domain.clone(),
            tpe,
        }
    }

    /// The value's position on the optimiser's scale.
    fn param(&self, value: &Value) -> f64 {
        let number = value
            .as_float()
            .or_else(|| value.as_integer().map(|i| i as f64))
            .unwrap_or(f64::NAN);
        match &self.domain {
            Domain::Uniform(..) => number,
            Domain::LogUniform(..) => number.ln(),
            Domain::Int { log: true, .. } => number.ln(),
            Domain::Int { log: false, .. } => number,
            Domain::Choice(choices) => choices
                .iter()
                .position(|c| c == value)
                .map_or(f64::NAN, |i| i as f64),
        }
    }

    fn tell(&mut self, value: &Value, score: f64) {
        let param = self.param(value);
        // A value outside the range (a space edited since) is told as "not used".
        if !self.tpe.tell(param, score) {
            self.tpe.tell(f64::NAN, score);
        }
    }

    fn ask(&mut self, rng: &mut StdRng) -> Value {
        let x = self.tpe.ask(rng);
        match &self.domain {
            Domain::Uniform(low, high) => Value::Float(round4(x).clamp(*low, *high)),
            Domain::LogUniform(low, high) => Value::Float(round4(x.exp()).clamp(*low, *high)),
            Domain::Int { low, high, log } => {
                let v = if *log { x.exp() } else { x };
                Value::Integer((v.round() as i64).clamp(*low, *high))
            }
            Domain::Choice(choices) => choices[(x as usize).min(choices.len() - 1)].clone(),
        }
    }
}
