//! The FMA peak of one core on a SIMD path, measured with a loop that touches no memory:
//! the ceiling that `microcal bench matmul` reports its products against; and the timing
//! rule both use ([`best_window_rates`]).

use crate::simd::SimdPath;

/// Independent accumulators: enough to cover the FMA latency on two ports.
const CHAINS: usize = 12;

/// Windows that [`best_window_rates`] splits each workload's time into.
const WINDOWS: u32 = 10;

/// One run of the register-only loop on `path` (which the CPU must support), returning
/// its operations: fused multiply-adds, each counted as two, as in the products.
pub(crate) fn fma_loop(path: SimdPath) -> impl FnMut() -> f64 {
    assert!(path.is_supported(), "{} is not supported here", path.name());
    let rounds = 1u64 << 16;
    move || match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports the path (asserted above).
        SimdPath::Avx512 => unsafe { x86::avx512(rounds) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        SimdPath::Avx2 => unsafe { x86::avx2(rounds) },
        _ => portable(rounds),
    }
}

/// Operations per second of each step (each does some work and returns how many
/// operations it did): in each of [`WINDOWS`] rounds, every step runs in turn for one
/// window of `min_seconds / WINDOWS`, and each step's fastest window counts.
///
/// Why the best window, and in turns: on a shared host another tenant can take the core
/// (or its other hyperthread) for seconds, and a mean over a step's whole time moved by
/// ±30% from run to run (the peak loop once measured 28 GFLOP/s instead of 130, and the
/// products' shares of it went over 100%). The best window is what the core does when it
/// is ours; taken in turns, the steps compared with each other see the same seconds.
pub(crate) fn best_window_rates<F: FnMut() -> f64>(min_seconds: f64, steps: &mut [F]) -> Vec<f64> {
    let window = min_seconds / f64::from(WINDOWS);
    let mut best = vec![0f64; steps.len()];
    for _ in 0..WINDOWS {
        for (step, best) in steps.iter_mut().zip(&mut best) {
            let start = std::time::Instant::now();
            let mut done = 0f64;
            while done == 0.0 || start.elapsed().as_secs_f64() < window {
                done += step();
            }
            *best = best.max(done / start.elapsed().as_secs_f64());
        }
    }
    best
}

/// Plain multiply-adds on 4-lane arrays (what portable code compiles to: SSE, no FMA).
fn portable(rounds: u64) -> f64 {
    let mut acc = [[1.0f32; 4]; CHAINS];
    let (x, y) = (
        std::hint::black_box(0.999_999f32),
        std::hint::black_box(1e-7f32),
    );
    for _ in 0..rounds {
        for chain in acc.iter_mut() {
            for v in chain.iter_mut() {
                *v = *v * x + y;
            }
        }
    }
    std::hint::black_box(&acc);
    (rounds as usize * CHAINS * 4 * 2) as f64
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2(rounds: u64) -> f64 {
        let x = _mm256_set1_ps(std::hint::black_box(0.999_999));
        let y = _mm256_set1_ps(std::hint::black_box(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        for _ in 0..rounds {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, x, y);
            }
        }
        std::hint::black_box(&acc);
        (rounds as usize * CHAINS * 8 * 2) as f64
    }

    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512(rounds: u64) -> f64 {
        let x = _mm512_set1_ps(std::hint::black_box(0.999_999));
        let y = _mm512_set1_ps(std::hint::black_box(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..rounds {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, x, y);
            }
        }
        std::hint::black_box(&acc);
        (rounds as usize * CHAINS * 16 * 2) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A core taken away for the first nine tenths of the time (each step then sleeps
    /// 5 ms), and ours for the last tenth (0.5 ms): the rate is the last windows' (at most
    /// 2,000 steps a second), not the mean over the whole time (about 380).
    #[test]
    fn the_best_window_counts_not_the_mean() {
        let start = Instant::now();
        let rate = best_window_rates(
            0.5,
            &mut [|| {
                let busy = start.elapsed() < Duration::from_millis(450);
                std::thread::sleep(Duration::from_micros(if busy { 5000 } else { 500 }));
                1.0
            }],
        )[0];
        assert!(rate > 600.0 && rate <= 2000.0, "{rate} steps/s");
    }

    /// Two steps, the second twice as costly, timed in turns: each gets its own rate.
    #[test]
    fn each_step_gets_its_own_rate() {
        let sleeper = |micros| {
            move || {
                std::thread::sleep(Duration::from_micros(micros));
                1.0
            }
        };
        let mut steps = [sleeper(1000), sleeper(2000)];
        let rates = best_window_rates(0.2, &mut steps);
        assert!(rates[0] <= 1000.0 && rates[1] <= 500.0, "{rates:?}");
        assert!(rates[0] > 1.5 * rates[1], "{rates:?}");
    }

    #[test]
    fn every_path_here_has_a_positive_peak() {
        for path in SimdPath::available() {
            let peak = best_window_rates(0.05, &mut [fma_loop(path)])[0] / 1e9;
            assert!(peak.is_finite() && peak > 0.1, "{}: {peak}", path.name());
        }
    }
}
