//! wavedec2 against PyWavelets fixtures (`tools/gen_fixtures.py`).

use microcal::wavelet::{wavedec2, Array2, FeatureKind, FeatureSpec, Wavelet};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Same integer formula as `formula_image` in tools/gen_fixtures.py.
fn formula_image(rows: usize, cols: usize) -> Array2 {
    let data = (0..rows)
        .flat_map(|r| {
            (0..cols).map(move |c| ((r * 7 + c * 13 + (r * c) % 11 + (r * r) % 17) % 256) as f64)
        })
        .collect();
    Array2::new(rows, cols, data)
}

/// Same pseudo-random weights as `weights` in tools/gen_fixtures.py.
fn weight(i: usize) -> f64 {
    ((i as u64 * 2_654_435_761) % 1000) as f64 / 1000.0 - 0.5
}

fn close(ours: f64, theirs: f64, scale: f64, what: &str) {
    let tol = 1e-9 * scale.max(1e-12);
    assert!(
        (ours - theirs).abs() <= tol,
        "{what}: ours {ours} vs PyWavelets {theirs} (tol {tol})"
    );
}

/// Compares an array with a fixture checksum entry: shape, sums, and a weighted sum, each to
/// 1e-9 relative to the magnitude of the terms.
fn check_array(ours: &Array2, expected: &Value, what: &str) {
    let shape: Vec<usize> = serde_json::from_value(expected["shape"].clone()).unwrap();
    assert_eq!(vec![ours.rows, ours.cols], shape, "{what}: shape");
    let f = |k: &str| expected[k].as_f64().unwrap();
    let sum_abs: f64 = ours.data.iter().map(|v| v.abs()).sum();
    close(
        ours.data.iter().sum(),
        f("sum"),
        f("sum_abs"),
        &format!("{what} sum"),
    );
    close(
        sum_abs,
        f("sum_abs"),
        f("sum_abs"),
        &format!("{what} sum_abs"),
    );
    close(
        ours.data.iter().map(|v| v * v).sum(),
        f("sumsq"),
        f("sumsq"),
        &format!("{what} sumsq"),
    );
    let wdot: f64 = ours
        .data
        .iter()
        .enumerate()
        .map(|(i, v)| weight(i) * v)
        .sum();
    close(wdot, f("wdot"), f("wdot_abs"), &format!("{what} wdot"));
    if let Some(data) = expected.get("data") {
        for (i, (a, b)) in ours.data.iter().zip(data.as_array().unwrap()).enumerate() {
            let b = b.as_f64().unwrap();
            close(*a, b, b.abs().max(1.0), &format!("{what}[{i}]"));
        }
    }
}

#[test]
fn every_family_matches_pywavelets_at_levels_1_and_4() {
    let fx = fixture("wavedec2_formula.json");
    let img = formula_image(60, 47);
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 106 * 2);
    for case in cases {
        let family = case["family"].as_str().unwrap();
        let level = case["level"].as_u64().unwrap() as usize;
        let w = Wavelet::from_name(family).unwrap();
        let dec = wavedec2(&img, &w, level).unwrap();
        let ours = dec.named_arrays();
        let theirs = case["arrays"].as_array().unwrap();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{family} level {level}: number of arrays"
        );
        for ((name, array), expected) in ours.iter().zip(theirs) {
            assert_eq!(name, expected["name"].as_str().unwrap());
            check_array(array, expected, &format!("{family} L{level} {name}"));
        }
    }
}

#[test]
fn reference_features_match_numpy() {
    let fx = fixture("wavedec2_formula.json");
    let expected = &fx["features_db5_l4_keep234"];
    let img = formula_image(60, 47);
    let spec = |kind| FeatureSpec {
        wavelet: Wavelet::from_name("db5").unwrap(),
        level: 4,
        keep_levels: vec![2, 3, 4],
        keep_approx: false,
        kind,
    };
    let coeffs = spec(FeatureKind::Coefficients).extract(&img).unwrap();
    assert_eq!(
        coeffs.len(),
        expected["coefficients_len"].as_u64().unwrap() as usize
    );
    let flat = Array2::new(1, coeffs.len(), coeffs);
    let mut checksum = expected["coefficients_checksum"].clone();
    checksum["shape"] = serde_json::json!([1, flat.cols]);
    check_array(&flat, &checksum, "kept coefficients");
    let stats = spec(FeatureKind::SubbandStats).extract(&img).unwrap();
    let theirs = expected["subband_stats"].as_array().unwrap();
    assert_eq!(stats.len(), theirs.len());
    assert_eq!(stats.len(), 45);
    for (i, (a, b)) in stats.iter().zip(theirs).enumerate() {
        let b = b.as_f64().unwrap();
        close(*a, b, b.abs().max(1.0), &format!("subband stat {i}"));
    }
}

#[test]
fn reference_setting_gives_2430_coefficients_on_60x60() {
    let spec = FeatureSpec {
        wavelet: Wavelet::from_name("db5").unwrap(),
        level: 4,
        keep_levels: vec![2, 3, 4],
        keep_approx: false,
        kind: FeatureKind::Coefficients,
    };
    assert_eq!(spec.extract(&formula_image(60, 60)).unwrap().len(), 2430);
}
