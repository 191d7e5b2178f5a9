//! microcal's numerical engine: dfdx tensors, our own ops and optimiser, and the networks
//! built on them.
//!
//! This crate is the only code of microcal that names dfdx types or CPU intrinsics; the
//! application hands it plain `f32` slices and layer specs and gets plain numbers back, so
//! the engine can change (custom kernels, another tensor crate) without touching the rest.
//!
//! API: build a network from layer specs ([`ConvNet::new`], [`DenseNet`]; [`layer::walk`]
//! checks a list against its input), train a step with an [`Optimizer`]
//! and evaluate through them, get and set parameters; [`simd`] says which instruction set
//! the kernels run on; [`rng`] is the one seeded generator every random choice uses.

mod activation;
mod add;
mod aligned;
mod batchnorm;
mod blocks;
mod cnn;
mod conv;
mod conv_backward;
mod conv_batchnorm;
mod copies;
mod dense;
mod dropout;
mod gram;
mod groups;
mod kernel;
pub mod lanes;
pub mod layer;
mod layout;
mod linalg;
mod loss;
mod maxpool;
mod moments;
mod optimizer;
mod peak;
mod pooling;
pub mod rng;
mod scoring_prefix;
pub mod simd;
mod stack;
mod strided_conv;
mod taps;
mod winograd;

pub use cnn::ConvNet;
pub use dense::DenseNet;
pub use gram::gram;
pub use layer::{Activation, Layer, Padding};
pub use loss::Objective;
pub use optimizer::{Optimizer, OptimizerKind};
pub use winograd::point_product_shape;

/// What [`gflops_interleaved`] times.
#[derive(Debug, Clone, Copy)]
pub enum Workload {
    /// The FMA peak of one core on a path the CPU supports: a register-only loop of fused
    /// multiply-adds.
    FmaPeak(simd::SimdPath),
    /// The engine's single-threaded matrix product, m×k times k×n (both row-major). B is
    /// packed once before the timed products, as a convolution packs its weights once per
    /// batch; with `pack_each`, it is packed again for every product (as a product with a
    /// new B is).
    Product {
        m: usize,
        k: usize,
        n: usize,
        pack_each: bool,
    },
}

/// GFLOP/s of each workload on one core, timed in turns: each gets one window of every
/// round (ten rounds over at least `min_seconds` each), and its best window counts. A
/// product and the peak it is compared with are thus timed over the same seconds of a
/// shared host, so a slow moment cannot fall on one of them alone.
pub fn gflops_interleaved(workloads: &[Workload], min_seconds: f64) -> Vec<f64> {
    let mut steps: Vec<Box<dyn FnMut() -> f64>> = workloads.iter().map(|w| w.step()).collect();
    let rates = peak::best_window_rates(min_seconds, &mut steps);
    rates.into_iter().map(|r| r / 1e9).collect()
}

impl Workload {
    /// One unit of the work (run once untimed here), returning its operations.
    fn step(&self) -> Box<dyn FnMut() -> f64> {
        let mut step: Box<dyn FnMut() -> f64> = match *self {
            Workload::FmaPeak(path) => Box::new(peak::fma_loop(path)),
            Workload::Product { m, k, n, pack_each } => {
                let mut rng = Rng::new(1);
                let a: Vec<f32> = (0..m * k).map(|_| rng.normal() as f32).collect();
                let b: Vec<f32> = (0..k * n).map(|_| rng.normal() as f32).collect();
                let mut c = vec![0.0; m * n];
                let packed = linalg::PackedB::new(linalg::Operand::rows(&b, n), k, n);
                Box::new(move || {
                    let (a, b) = (linalg::Operand::rows(&a, k), linalg::Operand::rows(&b, n));
                    match pack_each {
                        true => linalg::matmul(m, n, k, &mut c, false, a, b),
                        false => linalg::matmul_packed(m, &mut c, false, a, &packed),
                    }
                    std::hint::black_box(&c);
                    2.0 * (m * n * k) as f64
                })
            }
        };
        step();
        step
    }
}

use crate::rng::Rng;

/// Glorot/Xavier uniform initial weights (Keras' default for Dense and Conv2D).
pub(crate) fn glorot_uniform(fan_in: usize, fan_out: usize, n: usize, rng: &mut Rng) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    (0..n).map(|_| rng.range(-limit, limit) as f32).collect()
}

/// Keeps freed memory in the process instead of returning it to the system after every
/// mini-batch. Training allocates and frees the same tens of megabytes each step; with
/// glibc's defaults each large block is a fresh `mmap`, so the kernel zeroes its pages again
/// every time (measured: a quarter of the CNN's training time went to page faults).
pub(crate) fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator thresholds; called once, before the
            // engine allocates its working buffers.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 512 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            }
        });
    }
}

/// The values of a tensor that this engine created (contiguous, not broadcast) as one
/// `memcpy`; dfdx's `as_vec` walks the elements one by one through their strides.
pub(crate) fn contiguous_vec<S: dfdx::shapes::Shape, T>(
    t: &dfdx::tensor::Tensor<S, f32, dfdx::tensor::Cpu, T>,
) -> Vec<f32> {
    use dfdx::shapes::HasShape;
    let mut out = zeros(t.shape().num_elements());
    t.copy_into(&mut out);
    out
}

/// `n` values, made chunk by chunk in parallel: `fill(k, chunk)` gets chunk `k` (`chunk`
/// values, the last one maybe fewer) set to `T::default()` on the thread that runs it, so
/// that it is in the cache when `fill` writes it; returns the values and what `fill`
/// returned, in chunk order.
pub(crate) fn filled_in_parallel<T: Copy + Default + Send, R: Send>(
    n: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [T]) -> R + Sync,
) -> (Vec<T>, Vec<R>) {
    use rayon::prelude::*;
    let mut out = Vec::with_capacity(n);
    let results = out.spare_capacity_mut()[..n]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .with_max_len(1)
        .map(|(k, values)| {
            values.fill(std::mem::MaybeUninit::new(T::default()));
            // SAFETY: every value of the chunk was written just above, and MaybeUninit<T>
            // has T's layout.
            let values = unsafe { &mut *(values as *mut [std::mem::MaybeUninit<T>] as *mut [T]) };
            fill(k, values)
        })
        .collect();
    // SAFETY: the chunks cover the first `n` values, and every one was written above (a
    // panic in `fill` would have ended this function before here).
    unsafe { out.set_len(n) };
    (out, results)
}

/// `n` zeros (`T::default()`); a large buffer's are written in parallel, since zeroing it
/// on one thread is a serial pass during which the other threads of a training step wait.
pub(crate) fn zeros<T: Copy + Default + Send + Sync>(n: usize) -> Vec<T> {
    const SERIAL: usize = 1 << 16;
    if n < SERIAL {
        return vec![T::default(); n];
    }
    filled_in_parallel(n, SERIAL, |_, _: &mut [T]| ()).0
}
