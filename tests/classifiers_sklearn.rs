//! Our classifiers against scikit-learn's on identical features (the fixture written by
//! `tools/gen_classifier_fixture.py`): the same probabilities for naive Bayes, logistic
//! regression and k-NN, the same SVM decision values, and forest and tree AUCs close to
//! scikit-learn's (their random draws differ).

use microcal::metrics::roc_auc;
use microcal::models::classifiers::Scorer;
use microcal::models::{ClassifierKind, ClassifierParams};
use microcal::train::Matrix;
use serde_json::Value;

const COLS: usize = 40;

/// The fixture's formula-made matrix (see the script).
fn matrix(rows: usize, offset: usize) -> (Matrix, Vec<u8>) {
    let mut data = Vec::with_capacity(rows * COLS);
    let mut labels = Vec::with_capacity(rows);
    for i in 0..rows {
        let k = i + offset;
        let y = ((k * 7 + k / 3) % 2) as u8;
        labels.push(y);
        for j in 0..COLS {
            let noise = (k as f64 * 12.9898 + j as f64 * 78.233).sin() * 43758.5453;
            let noise = (noise - noise.floor()) * 2.0 - 1.0;
            let signal = if j % 3 == 0 {
                0.6 * y as f64 * (j as f64 * 0.5).cos()
            } else {
                0.0
            };
            data.push((noise + signal) as f32);
        }
    }
    (
        Matrix {
            rows,
            cols: COLS,
            data,
        },
        labels,
    )
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn scores(kind: ClassifierKind, x: &Matrix, y: &[u8], t: &Matrix) -> Vec<f64> {
    let params = ClassifierParams::parse(kind, &toml::Table::new()).unwrap();
    params.fit(x, y, 0).unwrap().score(t)
}

fn max_gap(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max)
}

#[test]
fn classifiers_agree_with_scikit_learn_on_identical_features() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/classifiers_sklearn.json"),
    )
    .unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let (x, y) = matrix(golden["rows"].as_u64().unwrap() as usize, 0);
    let (t, ty) = matrix(golden["test"].as_u64().unwrap() as usize, 1000);

    let nb = scores(ClassifierKind::NaiveBayes, &x, &y, &t);
    assert!(
        max_gap(&nb, &numbers(&golden["naive_bayes"])) < 1e-4,
        "naive Bayes"
    );
    let logistic = scores(ClassifierKind::Logistic, &x, &y, &t);
    let gap = max_gap(&logistic, &numbers(&golden["logistic"]));
    // Both optimisers stop at the same gradient tolerance, by different paths.
    assert!(gap < 5e-3, "logistic regression: {gap}");
    let knn = scores(ClassifierKind::Knn, &x, &y, &t);
    assert_eq!(knn, numbers(&golden["knn"]), "k-NN");
    // Our SVM score is σ(decision value).
    let decision: Vec<f64> = scores(ClassifierKind::Svm, &x, &y, &t)
        .iter()
        .map(|p| (p / (1.0 - p)).ln())
        .collect();
    let gap = max_gap(&decision, &numbers(&golden["svm_decision"]));
    assert!(gap < 1e-2, "SVM decision values: {gap}");
    for (kind, key, within) in [
        (ClassifierKind::RandomForest, "random_forest_auc", 0.03),
        (ClassifierKind::DecisionTree, "decision_tree_auc", 0.1),
    ] {
        let auc = roc_auc(&ty, &scores(kind, &x, &y, &t));
        let theirs = golden[key].as_f64().unwrap();
        assert!(
            (auc - theirs).abs() < within,
            "{kind:?}: AUC {auc} vs scikit-learn {theirs}"
        );
    }
}
