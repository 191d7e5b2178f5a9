//! The convolutions at the start of a network, when scoring, on plain values: no tape, no
//! dfdx tensor between them.
//!
//! Why: an op on dfdx's tape reads its input through a copy (dfdx 0.13 lends no view of a
//! tensor's values, `copies`), made by one thread while the other waits. Scoring keeps
//! nothing for a backward pass, so the leading convolutions (with the ReLU, 2×2 max-pool
//! and batch norm they fuse, and the dropouts between them, which do nothing when scoring)
//! read the images and each other's outputs in place; the rest of the network runs on the
//! tape-free dfdx path from their output, moved into a tensor without a copy. Same kernels,
//! same numbers.
//!
//! Bake-off (`microcal bench cnn --data ../shared/data/microcal --repeats 3`, Intel Xeon
//! with AVX-512, 2 cores, 2026-12-03, alternated with the tree before over three rounds):
//! the reference network scored 1,745-3,024 images/s against 2,037-2,209, and
//! `--experiment experiments/cnn_modern.toml` 1,564-2,007 against 1,234-1,328. In the
//! reference network's scoring profile before, the blocks' input copies took 7% of the
//! samples, on one thread.

use super::conv::{conv_block_forward, ConvBlock, ConvForward};
use super::layout::Geometry;
use super::stack::{relu_and_pool_at, Block};

/// What the leading convolutions gave: the blocks they stand for, and their output
/// (`channels` channels over `geometry`).
pub(crate) struct Scored {
    pub(crate) blocks: usize,
    pub(crate) values: Vec<f32>,
    pub(crate) channels: usize,
    pub(crate) geometry: Geometry,
}

/// Runs the plain convolutions (stride 1, 'same', odd kernel) at the start of `blocks` in
/// evaluation mode, each with the batch norm right after it folded into its weights and
/// the ReLU and 2×2 max-pool that follow fused, as `cnn::run` does when scoring, on `x`
/// (`channels` channels over `geometry`). `None` when the network does not start with one.
pub(crate) fn leading_convolutions(
    blocks: &[Block],
    x: &[f32],
    channels: usize,
    geometry: Geometry,
) -> Option<Scored> {
    let mut done: Option<Scored> = None;
    let mut at = 0;
    loop {
        match blocks.get(at) {
            Some(Block::Conv(conv)) if conv.is_plain() => {
                let folded = match blocks.get(at + 1) {
                    Some(Block::BatchNorm(bn)) => Some(conv.folded_values(bn)),
                    _ => None,
                };
                let after = 1 + folded.is_some() as usize;
                let (relu, pool) = relu_and_pool_at(blocks, at + after);
                let spec = ConvBlock {
                    kernel: conv.kernel,
                    relu,
                    pool,
                    input_grad: false,
                };
                let (w, b) = folded.unwrap_or_else(|| (conv.weight.values(), conv.bias.values()));
                let input = match &done {
                    Some(previous) => (&previous.values[..], previous.channels),
                    None => (x, channels),
                };
                let g = done.as_ref().map_or(geometry, |d| d.geometry);
                let ConvForward {
                    shape,
                    out,
                    geometry,
                    ..
                } = conv_block_forward(input, g, spec, (&w, &b), false);
                at += after + relu as usize + pool as usize;
                done = Some(Scored {
                    blocks: at,
                    values: out,
                    channels: shape.cout,
                    geometry,
                });
            }
            Some(Block::Dropout(_)) if done.is_some() => {
                at += 1;
                if let Some(d) = done.as_mut() {
                    d.blocks = at;
                }
            }
            _ => return done,
        }
    }
}
