//! Copies of a tensor's values for the engine's own ops, in buffers used again once dropped.
//!
//! Why: dfdx 0.13 lends no view of a tensor's values, so each op copies its input out
//! (`copy_into`) and keeps the copy for its backward pass. Copied into a fresh vector, every
//! value was written twice, zero then copied: in `cnn_modern`'s profile the zeroing took
//! about as long as the copy (4-5% of the step each). A dropped copy's buffer goes back to a
//! small pool, and the next copy of at most its size overwrites it without clearing it:
//! every value it exposes is copied in first, so old values are never read. The pool keeps
//! at most `KEPT` buffers, each one a copy that was alive at some point: at most about the
//! memory that a step's copies (and a scoring pass's) held at their peak anyway.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use dfdx::shapes::{HasShape, Shape};
use dfdx::tensor::{Cpu, Tensor};

/// Buffers kept for reuse, at most this many (the largest kept when more come back).
const KEPT: usize = 64;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A tensor's values, in a buffer that returns to the pool when dropped.
pub(crate) struct Copied {
    /// The buffer, every value of it initialised; the copy is its first `len`.
    buffer: Vec<f32>,
    len: usize,
}

/// The values of a tensor that this engine created (contiguous, not broadcast), copied in
/// one `memcpy` into a recycled buffer (dfdx's `as_vec` walks the elements one by one
/// through their strides).
pub(crate) fn copied<S: Shape, T>(t: &Tensor<S, f32, Cpu, T>) -> Copied {
    let len = t.shape().num_elements();
    let mut buffer = take(len);
    t.copy_into(&mut buffer[..len]);
    Copied { buffer, len }
}

/// The smallest pooled buffer that holds `len` values, or a new one.
fn take(len: usize) -> Vec<f32> {
    let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let best = (pool.iter().enumerate())
        .filter(|(_, b)| b.len() >= len)
        .min_by_key(|(_, b)| b.len())
        .map(|(i, _)| i);
    match best {
        Some(i) => pool.swap_remove(i),
        None => {
            drop(pool);
            super::zeros(len)
        }
    }
}

impl Deref for Copied {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.buffer[..self.len]
    }
}

impl DerefMut for Copied {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buffer[..self.len]
    }
}

impl Drop for Copied {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        if buffer.is_empty() {
            return;
        }
        let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        pool.push(buffer);
        if pool.len() > KEPT {
            let smallest = (pool.iter().enumerate())
                .min_by_key(|(_, b)| b.len())
                .map(|(i, _)| i)
                .expect("the pool is not empty");
            pool.swap_remove(smallest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::prelude::*;

    /// A copy holds exactly the tensor's values, also in a reused buffer that held a longer
    /// copy before.
    #[test]
    fn copies_the_values_also_into_a_reused_buffer() {
        let dev = Cpu::default();
        let long: Vec<f32> = (0..5000).map(|v| v as f32).collect();
        let t = dev.tensor_from_vec(long.clone(), (1000usize, 5usize));
        assert_eq!(&copied(&t)[..], &long[..]);
        // The buffer just dropped (or another as large) comes back for a shorter copy.
        let short: Vec<f32> = (0..30).map(|v| -(v as f32)).collect();
        let s = dev.tensor_from_vec(short.clone(), (6usize, 5usize));
        let copy = copied(&s);
        assert_eq!(copy.len(), 30);
        assert_eq!(&copy[..], &short[..]);
    }
}
