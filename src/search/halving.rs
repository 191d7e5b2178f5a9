//! Successive halving with epochs as the budget. Every trial of a round is trained for the
//! first rung's epochs; the best 1/factor of them (rounded up) are trained again, from
//! scratch, for the next rung's epochs; and so on up to `train.epochs`. Retraining rather
//! than resuming keeps every rung an ordinary job whose row says what it ran.

/// The rungs' epochs: `max / factor^(K−k)` rounded, for k = 0..=K, where K is the largest
/// integer with `min × factor^K ≤ max`; e.g. min 5, factor 3, max 45 gives 5, 15, 45, and
/// max 50 gives 6, 17, 50. Just `max` when `min ≥ max`.
pub fn rungs(min_epochs: usize, factor: usize, max_epochs: usize) -> Vec<usize> {
    let (min, factor) = (min_epochs.max(1), factor.max(2));
    let mut top = 0u32;
    while min.saturating_mul(factor.saturating_pow(top + 1)) <= max_epochs {
        top += 1;
    }
    (0..=top)
        .map(|k| {
            let epochs = max_epochs as f64 / (factor as f64).powi((top - k) as i32);
            (epochs.round() as usize).clamp(1, max_epochs.max(1))
        })
        .collect()
}

/// How many of `n` trials go on to the next rung.
pub fn promoted(n: usize, factor: usize) -> usize {
    n.div_ceil(factor.max(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_grow_by_the_factor_up_to_the_budget() {
        assert_eq!(rungs(5, 3, 45), vec![5, 15, 45]);
        assert_eq!(rungs(5, 3, 50), vec![6, 17, 50]);
        assert_eq!(rungs(1, 3, 9), vec![1, 3, 9]);
        assert_eq!(rungs(10, 2, 10), vec![10]);
        assert_eq!(rungs(20, 3, 10), vec![10]);
        assert_eq!(promoted(6, 3), 2);
        assert_eq!(promoted(2, 3), 1);
    }
}
