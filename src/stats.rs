//! Small statistics shared by the features, the baseline and the bootstrap intervals.

/// NumPy's default (`linear`) percentile of sorted data.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4, 10], 95) == 8.8
        assert!((percentile_sorted(&[1.0, 2.0, 3.0, 4.0, 10.0], 95.0) - 8.8).abs() < 1e-12);
        assert_eq!(percentile_sorted(&[5.0], 95.0), 5.0);
    }
}
