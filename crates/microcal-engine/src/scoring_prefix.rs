//! The blocks at the start of a network, when scoring, on plain values: no tape, no dfdx
//! tensor between them.
//!
//! Why: an op on dfdx's tape reads its input through a copy (dfdx 0.13 lends no view of a
//! tensor's values, `copies`), made by one thread while the other waits. Scoring keeps
//! nothing for a backward pass, so the leading blocks (convolutions with the batch norm,
//! ReLU and 2×2 max-pool they fuse, residual blocks, activations, max and average pools,
//! and dropouts, which do nothing when scoring) read the images and each other's outputs in
//! place, each through its op's own forward function; the rest of the network (from the
//! first other block: pooling to a vector, dense layers) runs on the tape-free dfdx path
//! from their output, moved into a tensor without a copy. Same functions, same numbers.
//!
//! Bake-off (`microcal bench cnn --data ../shared/data/microcal --repeats 3`, Intel Xeon
//! with AVX-512, 2 cores, 2026-12-03, alternated with the tree before, 8c55c80): with the
//! leading convolutions on plain values, the reference network scored 1,745-3,024 images/s
//! against 2,037-2,209 (three rounds), and `--experiment experiments/cnn_modern.toml`
//! 1,564-2,007 against 1,234-1,328; with its residual block, activation and pooling on
//! plain values too, `cnn_modern` scored 1,486-1,697 against 1,117-1,229 (four rounds,
//! later that morning, the host slower), and 1,619-1,693 against 1,423-1,433 with the
//! convolutions only (two rounds). In the reference network's scoring profile before, the
//! blocks' input copies took 7% of the samples, on one thread.

use super::activation::activated;
use super::add::add_into;
use super::conv::{conv_block_forward, ConvForward};
use super::layout::Geometry;
use super::maxpool::maxpooled;
use super::pooling::{pooled, Reduce};
use super::stack::{after_conv, Block, Conv};
use super::strided_conv::strided_forward;

/// What the leading blocks gave: how many they were, and their output (`channels`
/// channels over `geometry`).
pub(crate) struct Scored {
    pub(crate) blocks: usize,
    pub(crate) values: Vec<f32>,
    pub(crate) channels: usize,
    pub(crate) geometry: Geometry,
}

/// Values with their channels and geometry.
type Values<'a> = (&'a [f32], usize, Geometry);

/// A block's output with its channels and geometry.
type Output = (Vec<f32>, usize, Geometry);

/// Runs the blocks at the start of `blocks` that have a forward function on plain values,
/// in evaluation mode as `cnn::run` runs them (a batch norm right after a plain
/// convolution folded into its weights, the ReLU and 2×2 max-pool after it fused), on `x`
/// (`channels` channels over `geometry`). `None` when the first block has none.
pub(crate) fn leading_blocks(
    blocks: &[Block],
    x: &[f32],
    channels: usize,
    geometry: Geometry,
) -> Option<Scored> {
    let mut done: Option<Scored> = None;
    loop {
        let at = done.as_ref().map_or(0, |d| d.blocks);
        let input = match &done {
            Some(d) => (&d.values[..], d.channels, d.geometry),
            None => (x, channels, geometry),
        };
        let (used, (values, channels, geometry)) = match (blocks.get(at), &done) {
            (Some(Block::Dropout(_)), Some(_)) => {
                done.as_mut().expect("matched").blocks += 1;
                continue;
            }
            (Some(block), _) => match one_block(blocks, at, block, input) {
                Some(step) => step,
                None => return done,
            },
            (None, _) => return done,
        };
        done = Some(Scored {
            blocks: at + used,
            values,
            channels,
            geometry,
        });
    }
}

/// The block at `at` (and those it fuses) on `input`: how many blocks it used, and its
/// output; `None` when it has no forward function here.
fn one_block(
    blocks: &[Block],
    at: usize,
    block: &Block,
    (x, c, g): Values,
) -> Option<(usize, Output)> {
    Some(match block {
        Block::Conv(conv) if conv.is_plain() => {
            let after = after_conv(blocks, at, true);
            let spec = after.spec(conv, false);
            let (w, b) = match after.bn {
                Some(bn) => conv.folded_values(bn),
                None => (conv.weight.values(), conv.bias.values()),
            };
            let ConvForward {
                shape,
                out,
                geometry,
                ..
            } = conv_block_forward((x, c), g, spec, (&w, &b), false);
            (after.blocks, (out, shape.cout, geometry))
        }
        Block::Conv(conv) => (1, strided(conv, (x, c, g))),
        Block::Residual { inner, projection } => {
            let main = leading_blocks(inner, x, c, g).filter(|m| m.blocks == inner.len())?;
            let mut sum = main.values;
            match projection {
                Some(conv) => add_into(&mut sum, &strided(conv, (x, c, g)).0),
                None => add_into(&mut sum, x),
            }
            (1, (sum, main.channels, main.geometry))
        }
        Block::Activation(f) => (1, (activated(x, *f), c, g)),
        Block::MaxPool { size: 2, stride: 2 } => {
            let (out, _, geometry) = maxpooled(x, g, c, false);
            (1, (out, c, geometry))
        }
        Block::MaxPool { size, stride } => (1, windows((x, c, g), (*size, *stride), Reduce::Max)),
        Block::AvgPool { size, stride } => (1, windows((x, c, g), (*size, *stride), Reduce::Mean)),
        _ => return None,
    })
}

/// Max or average pooling (`pooling`'s), on plain values.
fn windows((x, c, g): Values, window: (usize, usize), reduce: Reduce) -> Output {
    let (out, geometry) = pooled(x, (c, g), window, reduce);
    (out, c, geometry)
}

/// A convolution by patch matrices (`cnn::strided`'s), on plain values.
fn strided(conv: &Conv, (x, c, g): Values) -> Output {
    let spec = conv.strided_spec(false);
    let (w, b) = (conv.weight.values(), conv.bias.values());
    let (out, patches) = strided_forward((x, c), g, spec, (&w, &b));
    (out, spec.cout, patches.output(g.batch))
}
