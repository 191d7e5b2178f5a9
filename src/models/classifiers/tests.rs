use super::*;
use crate::metrics::roc_auc;
use crate::rng::Rng;

fn random_matrix(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut rng = Rng::new(seed);
    Matrix {
        rows,
        cols,
        data: (0..rows * cols).map(|_| rng.normal() as f32).collect(),
    }
}

/// Two Gaussian clouds whose means differ by `shift` in every coordinate.
fn clouds(n: usize, cols: usize, shift: f32, seed: u64) -> (Matrix, Vec<u8>) {
    let mut m = random_matrix(n, cols, seed);
    let labels: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
    for (r, &l) in labels.iter().enumerate() {
        for c in 0..cols {
            m.data[r * cols + c] += l as f32 * shift;
        }
    }
    (m, labels)
}

fn defaults(kind: ClassifierKind) -> ClassifierParams {
    ClassifierParams::parse(kind, &toml::Table::new()).unwrap()
}

#[test]
fn every_classifier_scores_a_separable_problem() {
    let (x, y) = clouds(24, 30, 1.2, 3);
    let (t, ty) = clouds(40, 30, 1.2, 4);
    for &kind in ClassifierKind::ALL {
        let scores = defaults(kind).fit(&x, &y, 0).unwrap().score(&t);
        assert_eq!(scores.len(), 40);
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)), "{kind:?}");
        let auc = roc_auc(&ty, &scores);
        // One tree on 24 images splits on a single noisy feature: a weaker bar.
        let bar = if kind == ClassifierKind::DecisionTree {
            0.65
        } else {
            0.8
        };
        assert!(auc > bar, "{kind:?}: AUC {auc}");
    }
}

#[test]
fn fits_are_deterministic_and_survive_a_save() {
    let (x, y) = clouds(60, 12, 0.8, 5);
    let (t, _) = clouds(20, 12, 0.8, 6);
    for &kind in ClassifierKind::ALL {
        let params = defaults(kind);
        let first = params.fit(&x, &y, 7).unwrap();
        let again = params.fit(&x, &y, 7).unwrap().score(&t);
        assert_eq!(first.score(&t), again, "{kind:?}");
        let saved = serde_json::to_value(&first).unwrap();
        let loaded: FittedClassifier = serde_json::from_value(saved).unwrap();
        assert_eq!(loaded.score(&t), again, "{kind:?} after a save");
    }
}

#[test]
fn a_training_part_with_one_label_is_an_error() {
    let (x, _) = clouds(10, 4, 1.0, 1);
    let err = defaults(ClassifierKind::Svm)
        .fit(&x, &[1; 10], 0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "svm: the training part has only label 1; it needs both 0 and 1"
    );
}

#[test]
fn a_fully_grown_tree_fits_its_training_data() {
    let (x, y) = clouds(50, 6, 0.3, 8);
    let tree = defaults(ClassifierKind::DecisionTree)
        .fit(&x, &y, 0)
        .unwrap();
    let scores = tree.score(&x);
    for (s, &l) in scores.iter().zip(&y) {
        assert_eq!(*s, l as f64, "pure leaves reproduce the labels");
    }
    let mut t = toml::Table::new();
    t.insert("max_depth".into(), toml::Value::Integer(1));
    let stump = ClassifierParams::parse(ClassifierKind::DecisionTree, &t).unwrap();
    let distinct: std::collections::BTreeSet<u64> = stump
        .fit(&x, &y, 0)
        .unwrap()
        .score(&x)
        .iter()
        .map(|s| s.to_bits())
        .collect();
    assert!(distinct.len() <= 2, "a stump has two leaves");
}

#[test]
fn knn_scores_are_neighbour_fractions() {
    // 1-D points 0..10, labels 1 from 5 up.
    let x = Matrix {
        rows: 10,
        cols: 1,
        data: (0..10).map(|v| v as f32).collect(),
    };
    let y: Vec<u8> = (0..10).map(|v| u8::from(v >= 5)).collect();
    let q = Matrix {
        rows: 2,
        cols: 1,
        data: vec![0.2, 4.6],
    };
    let mut t = toml::Table::new();
    t.insert("k".into(), toml::Value::Integer(3));
    let knn = ClassifierParams::parse(ClassifierKind::Knn, &t).unwrap();
    // Nearest to 0.2: 0, 1, 2 → 0/3; to 4.6: 5, 4, 6 → 2/3.
    let scores = knn.fit(&x, &y, 0).unwrap().score(&q);
    assert_eq!(scores[0], 0.0);
    assert!((scores[1] - 2.0 / 3.0).abs() < 1e-12, "{scores:?}");
}

#[test]
fn params_fill_defaults_and_name_the_bad_key() {
    let p = defaults(ClassifierKind::RandomForest);
    assert_eq!(p.to_table()["n_trees"].as_integer(), Some(100));
    let mut t = toml::Table::new();
    t.insert("n_trees".into(), toml::Value::Integer(10));
    let err = ClassifierParams::parse(ClassifierKind::Svm, &t)
        .unwrap_err()
        .to_string();
    assert!(err.contains("n_trees") && err.contains("kernel"), "{err}");
    t.insert("n_trees".into(), toml::Value::Integer(0));
    let err = ClassifierParams::parse(ClassifierKind::RandomForest, &t).unwrap_err();
    assert_eq!(err.to_string(), "`n_trees` must be at least 1, got 0");
}
