//! The FMA peak of one core on a SIMD path, measured with a loop that touches no memory:
//! the ceiling that `microcal bench matmul` reports its products against.

use crate::simd::SimdPath;

/// Independent accumulators: enough to cover the FMA latency on two ports.
const CHAINS: usize = 12;

/// GFLOP/s of multiply-adds on `path` (which the CPU must support), over at least
/// `min_seconds`. A fused multiply-add counts as two operations, as in the products.
pub fn fma_peak_gflops(path: SimdPath, min_seconds: f64) -> f64 {
    assert!(path.is_supported(), "{} is not supported here", path.name());
    let rounds = 1u64 << 20;
    let start = std::time::Instant::now();
    let mut flops = 0f64;
    while flops == 0.0 || start.elapsed().as_secs_f64() < min_seconds {
        flops += match path {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU supports the path (asserted above).
            SimdPath::Avx512 => unsafe { x86::avx512(rounds) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            SimdPath::Avx2 => unsafe { x86::avx2(rounds) },
            _ => portable(rounds),
        };
    }
    flops / start.elapsed().as_secs_f64() / 1e9
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
