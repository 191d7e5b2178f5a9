//! Paired tests of two classifiers scored on the same images: DeLong's test for the
//! difference of two ROC AUCs and McNemar's exact test for the difference of two accuracies.
//!
//! Why these two: they are what medical-imaging papers report when two models meet the same
//! test set, and both use the pairing (a bootstrap interval per model does not). DeLong's
//! variance follows the fast algorithm of Sun & Xu (2014): midranks within each class and
//! overall give every image's structural components in O(n log n). A committed script
//! (`tools/gen_compare_fixture.py`, NumPy and SciPy) checks both against an independent
//! implementation.

/// DeLong's test of AUC(A) − AUC(B) on the same labelled images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeLong {
    pub auc_a: f64,
    pub auc_b: f64,
    /// AUC(A) − AUC(B).
    pub delta: f64,
    /// Standard error of `delta`.
    pub se: f64,
    pub z: f64,
    /// Two-sided p-value of `z` under the standard normal.
    pub p: f64,
    /// 95% interval of `delta` (normal approximation).
    pub ci: (f64, f64),
}

/// Midranks (1-based, ties share their mean rank) of `x`.
fn midranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// AUC and the structural components (V10 over positives, V01 over negatives) of one score.
fn components(pos: &[f64], neg: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
    let (m, n) = (pos.len() as f64, neg.len() as f64);
    let all: Vec<f64> = pos.iter().chain(neg).copied().collect();
    let tz = midranks(&all);
    let tx = midranks(pos);
    let ty = midranks(neg);
    let auc = (tz[..pos.len()].iter().sum::<f64>() - m * (m + 1.0) / 2.0) / (m * n);
    let v10 = (0..pos.len()).map(|i| (tz[i] - tx[i]) / n).collect();
    let v01 = (0..neg.len())
        .map(|j| 1.0 - (tz[pos.len() + j] - ty[j]) / m)
        .collect();
    (auc, v10, v01)
}

/// Sample covariance of two equally long series.
fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (n - 1.0)
}

/// DeLong's test on `labels` (0/1) and two scores per image; None without at least two
/// images of each class.
pub fn delong(labels: &[u8], a: &[f64], b: &[f64]) -> Option<DeLong> {
    assert!(
        labels.len() == a.len() && a.len() == b.len(),
        "paired scores"
    );
    let split = |s: &[f64], label: u8| -> Vec<f64> {
        s.iter()
            .zip(labels)
            .filter(|(_, &y)| y == label)
            .map(|(v, _)| *v)
            .collect()
    };
    let (pos_a, neg_a, pos_b, neg_b) = (split(a, 1), split(a, 0), split(b, 1), split(b, 0));
    if pos_a.len() < 2 || neg_a.len() < 2 {
        return None;
    }
    let (auc_a, v10_a, v01_a) = components(&pos_a, &neg_a);
    let (auc_b, v10_b, v01_b) = components(&pos_b, &neg_b);
    let (m, n) = (pos_a.len() as f64, neg_a.len() as f64);
    // var(A − B) = var(A) + var(B) − 2 cov(A, B), each from S10/m + S01/n.
    let s = |x10: &[f64], y10: &[f64], x01: &[f64], y01: &[f64]| {
        covariance(x10, y10) / m + covariance(x01, y01) / n
    };
    let var = s(&v10_a, &v10_a, &v01_a, &v01_a) + s(&v10_b, &v10_b, &v01_b, &v01_b)
        - 2.0 * s(&v10_a, &v10_b, &v01_a, &v01_b);
    let delta = auc_a - auc_b;
    let se = var.max(0.0).sqrt();
    let z = if se > 0.0 { delta / se } else { 0.0 };
    let p = if se > 0.0 {
        erfc(z.abs() / std::f64::consts::SQRT_2)
    } else {
        1.0
    };
    let half = 1.959_963_984_540_054 * se;
    Some(DeLong {
        auc_a,
        auc_b,
        delta,
        se,
        z,
        p,
        ci: (delta - half, delta + half),
    })
}

/// McNemar's exact two-sided p-value: `only_a` images that A classified right and B wrong,
/// `only_b` the reverse (a binomial test of `only_a` among the discordant pairs at ½).
pub fn mcnemar_exact(only_a: usize, only_b: usize) -> f64 {
    let n = only_a + only_b;
    if n == 0 {
        return 1.0;
    }
    let k = only_a.min(only_b);
    // Σ_{i ≤ k} C(n, i) / 2ⁿ, in logs so that large n stays finite.
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_c = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_c + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// The complementary error function, to about 1e-15 relative (W. J. Cody's rational
/// approximations, as in most libm implementations). The coefficients are written as Cody
/// published them.
#[allow(clippy::excessive_precision)]
pub fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 0.468_75 {
        return 1.0 - erf_small(x);
    }
    // erfc(x) = exp(-x²) · R(x) (Cody 1969, tables for 0.46875 ≤ x ≤ 4 and x > 4).
    if x < 4.0 {
        const P: [f64; 9] = [
            5.641_884_969_886_700_9e-1,
            8.883_149_794_388_376e0,
            6.611_919_063_714_163e1,
            2.986_351_381_974_001e2,
            8.819_522_212_417_691e2,
            1.712_047_612_634_070_7e3,
            2.051_078_377_826_071_5e3,
            1.230_339_354_797_997_2e3,
            2.153_115_354_744_038_5e-8,
        ];
        const Q: [f64; 8] = [
            1.574_492_611_070_983_5e1,
            1.176_939_508_913_125e2,
            5.371_811_018_620_099e2,
            1.621_389_574_566_690_3e3,
            3.290_799_235_733_459_6e3,
            4.362_619_090_143_247e3,
            3.439_367_674_143_721_6e3,
            1.230_339_354_803_749_5e3,
        ];
        let mut num = P[8] * x;
        let mut den = x;
        for i in 0..7 {
            num = (num + P[i]) * x;
            den = (den + Q[i]) * x;
        }
        let r = (num + P[7]) / (den + Q[7]);
        return (-x * x).exp() * r;
    }
    const P: [f64; 6] = [
        3.053_266_349_612_323_4e-1,
        3.603_448_999_498_044_4e-1,
        1.257_817_261_112_292_6e-1,
        1.608_378_514_874_227_5e-2,
        6.587_491_615_298_378e-4,
        1.631_538_713_730_709_7e-2,
    ];
    const Q: [f64; 5] = [
        2.568_520_192_289_822_4e0,
        1.872_952_849_923_460_4e0,
        5.279_051_029_514_284e-1,
        6.051_834_131_244_132e-2,
        2.335_204_976_268_691_8e-3,
    ];
    let z = 1.0 / (x * x);
    let mut num = P[5] * z;
    let mut den = z;
    for i in 0..4 {
        num = (num + P[i]) * z;
        den = (den + Q[i]) * z;
    }
    let r = z * (num + P[4]) / (den + Q[4]);
    let r = (1.0 / std::f64::consts::PI.sqrt() - r) / x;
    (-x * x).exp() * r
}

/// erf(x) for |x| < 0.46875 (Cody's first table).
#[allow(clippy::excessive_precision)]
fn erf_small(x: f64) -> f64 {
    const A: [f64; 5] = [
        3.161_123_743_870_565_6e0,
        1.138_641_541_510_501_6e2,
        3.774_852_376_853_020_2e2,
        3.209_377_589_138_469_5e3,
        1.857_777_061_846_031_5e-1,
    ];
    const B: [f64; 4] = [
        2.360_129_095_234_412_1e1,
        2.440_246_379_344_441_7e2,
        1.282_616_526_077_372_3e3,
        2.844_236_833_439_170_6e3,
    ];
    let z = x * x;
    let mut num = A[4] * z;
    let mut den = z;
    for i in 0..3 {
        num = (num + A[i]) * z;
        den = (den + B[i]) * z;
    }
    x * (num + A[3]) / (den + B[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_known_values() {
        for (x, want) in [
            (0.0, 1.0),
            (0.3, 0.671_373_240_540_872_8),
            (1.0, 0.157_299_207_050_285_13),
            (2.5, 4.069_520_174_449_59e-4),
            (5.0, 1.537_459_794_428_034_8e-12),
            (-1.0, 1.842_700_792_949_715),
        ] {
            let got = erfc(x);
            assert!(
                (got - want).abs() <= 1e-13 * want.abs().max(1e-300),
                "erfc({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn identical_scores_give_no_difference_and_mcnemar_is_symmetric() {
        let labels = [0, 0, 1, 1, 0, 1];
        let s = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9];
        let d = delong(&labels, &s, &s).unwrap();
        assert_eq!((d.delta, d.z, d.p), (0.0, 0.0, 1.0));
        assert_eq!(mcnemar_exact(3, 7), mcnemar_exact(7, 3));
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // 0 of 6 discordant pairs: 2 / 64.
        assert!((mcnemar_exact(0, 6) - 2.0 / 64.0).abs() < 1e-15);
    }
}
