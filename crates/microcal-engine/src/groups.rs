//! Splitting a batch's images into a fixed number of groups for the weight gradient, and
//! adding the groups' partial sums in group order. Why fixed: the sum's order, and so its
//! rounding, then does not depend on how many threads ran the groups, and a job gives the
//! same numbers on any number of cores.

use rayon::prelude::*;

/// Weight-gradient groups of a batch (or part of one) in the backward pass: enough for
/// threads to even out when one runs slower, few enough that the per-group sums stay cheap
/// to transform and add. A constant, not a multiple of the number of threads, so that the
/// order of summation (and so the results) does not depend on the machine's core count.
pub(crate) const GRADIENT_GROUPS: usize = 4;

/// Adds per-group sums into `total`, in parallel over slices of it and in group order.
pub(crate) fn add_partials<'a>(total: &mut [f32], parts: impl Iterator<Item = &'a Vec<f32>>) {
    const SLICE: usize = 8192;
    let parts: Vec<&Vec<f32>> = parts.collect();
    total
        .par_chunks_mut(SLICE)
        .enumerate()
        .for_each(|(i, total)| {
            for part in &parts {
                for (t, p) in total.iter_mut().zip(&part[i * SLICE..]) {
                    *t += p;
                }
            }
        });
}

/// Splits per-image items into at most `groups` contiguous groups.
pub(crate) fn image_groups<I>(items: Vec<I>, groups: usize) -> Vec<Vec<I>> {
    let per_task = items.len().div_ceil(groups.max(1)).max(1);
    let mut groups: Vec<Vec<I>> = Vec::new();
    for item in items {
        if groups.last().is_none_or(|g| g.len() == per_task) {
            groups.push(Vec::with_capacity(per_task));
        }
        groups.last_mut().expect("just pushed").push(item);
    }
    groups
}
