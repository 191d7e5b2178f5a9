//! Metrics against scikit-learn fixtures (`tools/gen_fixtures.py`).

use microcal::metrics::BinaryMetrics;
use serde_json::Value;

#[test]
fn metrics_match_scikit_learn() {
    let path = format!(
        "{}/tests/fixtures/metrics_sklearn.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 6);
    for (k, case) in cases.iter().enumerate() {
        let labels: Vec<u8> = serde_json::from_value(case["labels"].clone()).unwrap();
        let scores: Vec<f64> = serde_json::from_value(case["scores"].clone()).unwrap();
        let m = BinaryMetrics::compute(&labels, &scores, 0.5);
        for (name, ours) in [
            ("accuracy", m.accuracy),
            ("precision", m.precision),
            ("recall", m.recall),
            ("specificity", m.specificity),
            ("f1", m.f1),
            ("auc", m.auc),
            ("log_loss", m.loss),
        ] {
            let theirs = case[name].as_f64().unwrap();
            assert!(
                (ours - theirs).abs() < 1e-12,
                "case {k} {name}: ours {ours}, scikit-learn {theirs}"
            );
        }
        let c = &case["confusion"];
        assert_eq!(
            [
                m.confusion.tn,
                m.confusion.fp,
                m.confusion.fn_,
                m.confusion.tp
            ],
            ["tn", "fp", "fn", "tp"].map(|k| c[k].as_u64().unwrap() as usize),
            "case {k} confusion"
        );
    }
}
