//! Binary classification metrics, defined as scikit-learn defines them (checked against it
//! on fixtures), so our numbers can sit next to the Python stack's.

pub mod paired;

use serde::Serialize;

/// Counts at a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Confusion {
    pub tn: usize,
    pub fp: usize,
    pub fn_: usize,
    pub tp: usize,
}

/// Every metric of one evaluation set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BinaryMetrics {
    pub n: usize,
    pub accuracy: f64,
    pub precision: f64,
    /// Recall of the positive class: sensitivity.
    pub recall: f64,
    pub specificity: f64,
    pub f1: f64,
    pub auc: f64,
    /// Binary cross-entropy of the scores (clipped to [1e-7, 1 - 1e-7]).
    pub loss: f64,
    pub confusion: Confusion,
}

impl BinaryMetrics {
    /// `scores` are probabilities of label 1; a score ≥ `threshold` predicts 1.
    /// Ratios with an empty denominator are 0, as scikit-learn's `zero_division=0`.
    pub fn compute(labels: &[u8], scores: &[f64], threshold: f64) -> Self {
        assert_eq!(labels.len(), scores.len(), "one score per label");
        let mut c = Confusion::default();
        for (&y, &s) in labels.iter().zip(scores) {
            match (y == 1, s >= threshold) {
                (true, true) => c.tp += 1,
                (true, false) => c.fn_ += 1,
                (false, true) => c.fp += 1,
                (false, false) => c.tn += 1,
            }
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(c.tp, c.tp + c.fp);
        let recall = ratio(c.tp, c.tp + c.fn_);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        BinaryMetrics {
            n: labels.len(),
            accuracy: ratio(c.tp + c.tn, labels.len()),
            precision,
            recall,
            specificity: ratio(c.tn, c.tn + c.fp),
            f1,
            auc: roc_auc(labels, scores),
            loss: log_loss(labels, scores),
            confusion: c,
        }
    }
}

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting one half. This equals scikit-learn's `roc_auc_score`, whose
/// trapezoidal curve joins tied scores with one diagonal step. NaN with a single class.
pub fn roc_auc(labels: &[u8], scores: &[f64]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let n_pos = labels.iter().filter(|&&y| y == 1).count() as f64;
    let n_neg = labels.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    // Sum of positive ranks with average ranks for ties (Mann-Whitney U).
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&k| labels[k] == 1).count() as f64 * avg_rank;
        i = j + 1;
    }
    (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// The threshold that maximises Youden's J = TPR − FPR on these labels and scores (a score
/// at or above it predicts 1): one of the scores, the highest of equally good ones; 0.5
/// when a class is missing.
pub fn youden_threshold(labels: &[u8], scores: &[f64]) -> f64 {
    let positives = labels.iter().filter(|&&y| y == 1).count();
    if positives == 0 || positives == labels.len() {
        return 0.5;
    }
    let mut best = (f64::NEG_INFINITY, 0.5);
    for (fpr, tpr, threshold) in roc_steps(labels, scores) {
        if tpr - fpr > best.0 {
            best = (tpr - fpr, threshold);
        }
    }
    best.1
}

/// ROC curve points (false positive rate, true positive rate) at every distinct threshold,
/// from (0, 0) to (1, 1), as scikit-learn's `roc_curve(drop_intermediate=False)`.
pub fn roc_curve(labels: &[u8], scores: &[f64]) -> Vec<(f64, f64)> {
    std::iter::once((0.0, 0.0))
        .chain(roc_steps(labels, scores).map(|(fpr, tpr, _)| (fpr, tpr)))
        .collect()
}

/// (FPR, TPR, threshold) at each distinct score from the highest down: predicting 1 for
/// scores at or above the threshold.
fn roc_steps<'a>(
    labels: &'a [u8],
    scores: &'a [f64],
) -> impl Iterator<Item = (f64, f64, f64)> + 'a {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let n_pos = labels.iter().filter(|&&y| y == 1).count().max(1) as f64;
    let n_neg = (labels.len() - labels.iter().filter(|&&y| y == 1).count()).max(1) as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    (0..order.len()).filter_map(move |k| {
        let i = order[k];
        if labels[i] == 1 {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = k + 1 == order.len() || scores[order[k + 1]] != scores[i];
        last_of_tie.then_some((fp / n_neg, tp / n_pos, scores[i]))
    })
}

/// Mean binary cross-entropy with scores clipped away from 0 and 1.
pub fn log_loss(labels: &[u8], scores: &[f64]) -> f64 {
    let eps = 1e-7;
    let total: f64 = labels
        .iter()
        .zip(scores)
        .map(|(&y, &s)| {
            let p = s.clamp(eps, 1.0 - eps);
            if y == 1 {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    total / labels.len().max(1) as f64
}

#[cfg(test)]
mod youden_tests {
    use super::*;

    #[test]
    fn youden_picks_the_cut_that_separates_best() {
        let labels = [0, 0, 0, 1, 0, 1, 1, 1];
        let scores = [0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.9];
        // At 0.35: TPR 1, FPR 0.25 (J 0.75); at 0.6: TPR 0.75, FPR 0 (J 0.75): the first
        // found from the top wins.
        assert_eq!(youden_threshold(&labels, &scores), 0.6);
        let m = BinaryMetrics::compute(&labels, &scores, 0.6);
        assert_eq!(m.accuracy, 7.0 / 8.0);
        assert_eq!(youden_threshold(&[1, 1], &[0.2, 0.3]), 0.5);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(roc_auc(&[0, 1], &[0.5, 0.5]), 0.5);
        assert_eq!(roc_auc(&[0, 0, 1, 1], &[0.1, 0.2, 0.8, 0.9]), 1.0);
        assert_eq!(roc_auc(&[1, 0], &[0.1, 0.9]), 0.0);
        assert!(roc_auc(&[1, 1], &[0.1, 0.9]).is_nan());
    }

    #[test]
    fn roc_curve_is_monotone_and_spans_the_unit_square() {
        let pts = roc_curve(&[0, 1, 0, 1, 1], &[0.9, 0.1, 0.3, 0.2, 0.6]);
        assert_eq!(pts.first(), Some(&(0.0, 0.0)));
        assert_eq!(pts.last(), Some(&(1.0, 1.0)));
        assert!(pts.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
    }
}

/// 95% bootstrap confidence intervals of AUC and accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapCi {
    pub auc: (f64, f64),
    pub accuracy: (f64, f64),
}

/// Percentile bootstrap: `resamples` draws of the evaluation set with replacement (seeded),
/// the 2.5th and 97.5th percentiles of each metric. Draws with a single class are skipped
/// for AUC.
pub fn bootstrap_ci(
    labels: &[u8],
    scores: &[f64],
    threshold: f64,
    resamples: usize,
    seed: u64,
) -> BootstrapCi {
    let mut rng = crate::rng::Rng::derived(seed, "bootstrap");
    let n = labels.len();
    let (mut aucs, mut accs) = (Vec::with_capacity(resamples), Vec::with_capacity(resamples));
    let (mut l, mut s) = (vec![0u8; n], vec![0.0; n]);
    for _ in 0..resamples {
        for k in 0..n {
            let i = rng.below(n);
            l[k] = labels[i];
            s[k] = scores[i];
        }
        let correct = l
            .iter()
            .zip(&s)
            .filter(|(y, p)| (**p >= threshold) == (**y == 1))
            .count();
        accs.push(correct as f64 / n.max(1) as f64);
        let auc = roc_auc(&l, &s);
        if auc.is_finite() {
            aucs.push(auc);
        }
    }
    let interval = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (
            crate::stats::percentile_sorted(&v, 2.5),
            crate::stats::percentile_sorted(&v, 97.5),
        )
    };
    BootstrapCi {
        auc: if aucs.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            interval(aucs)
        },
        accuracy: interval(accs),
    }
}

#[cfg(test)]
mod bootstrap_tests {
    use super::*;

    #[test]
    fn intervals_contain_the_estimate_and_shrink_with_more_data() {
        let mut rng = crate::rng::Rng::new(3);
        let make = |n: usize, rng: &mut crate::rng::Rng| {
            let labels: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
            let scores: Vec<f64> = labels
                .iter()
                .map(|&y| (y as f64 + rng.normal()) / 3.0 + 0.5)
                .collect();
            (labels, scores)
        };
        let (l, s) = make(100, &mut rng);
        let ci = bootstrap_ci(&l, &s, 0.5, 1000, 1);
        let auc = roc_auc(&l, &s);
        assert!(ci.auc.0 < auc && auc < ci.auc.1, "{ci:?} vs {auc}");
        assert_eq!(ci, bootstrap_ci(&l, &s, 0.5, 1000, 1), "seeded");
        let (l2, s2) = make(1600, &mut rng);
        let wide = bootstrap_ci(&l2, &s2, 0.5, 1000, 1);
        assert!(wide.auc.1 - wide.auc.0 < (ci.auc.1 - ci.auc.0) / 2.0);
    }
}
