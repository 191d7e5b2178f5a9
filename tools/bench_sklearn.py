#!/usr/bin/env python3
"""scikit-learn baseline for `microcal bench classical`: the reference study's features (db5,
level 4, detail levels 2-4: 2,430 coefficients per image, PyWavelets), standardised with the
Train part's statistics, each classifier with scikit-learn's defaults (single-threaded, as
microcal's settings mirror them: 100 trees, RBF SVM with C=1 and gamma='scale', L2 logistic
regression with C=1, Gaussian naive Bayes, 5 nearest neighbours, a Gini tree), fitted on Train
and scored on Test. Prints fit and predict seconds and the Test ROC AUC per classifier; the
last line is machine-readable like microcal's.

    pip install scikit-learn pywavelets && python3 tools/bench_sklearn.py ../shared/data/microcal
"""
import pathlib
import sys
import time
import warnings

import numpy as np
import pywt
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from gen_fixtures import read_pgm  # noqa: E402


def features(img):
    coeffs = pywt.wavedec2(img, "db5", mode="symmetric", level=4)
    return np.concatenate([b.ravel() for t in coeffs[1:4] for b in t])


def load(root, part):
    xs, ys = [], []
    for label in (0, 1):
        for path in sorted((root / part / str(label)).glob("*.pgm")):
            xs.append(features(read_pgm(path).astype(np.float64)))
            ys.append(label)
    return np.array(xs), np.array(ys)


def main():
    warnings.simplefilter("ignore")  # "level too high" for db5 on 60 px: PyWavelets still computes it
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/microcal")
    x, y = load(root, "Train")
    tx, ty = load(root, "Test")
    mean, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd == 0] = 1.0
    x, tx = (x - mean) / sd, (tx - mean) / sd
    print(f"fitting on {x.shape[0]} x {x.shape[1]} (db5 level 4 coefficients, Train), "
          f"scoring {tx.shape[0]} Test images; scikit-learn {__import__('sklearn').__version__}")
    models = [
        ("random-forest", RandomForestClassifier(n_estimators=100, random_state=0)),
        ("svm", SVC(kernel="rbf", C=1.0, gamma="scale")),
        ("logistic", LogisticRegression(C=1.0, max_iter=1000)),
        ("naive-bayes", GaussianNB()),
        ("knn", KNeighborsClassifier(n_neighbors=5)),
        ("decision-tree", DecisionTreeClassifier(random_state=0)),
    ]
    print(f"{'classifier':<14} {'fit s':>8} {'predict s':>10} {'test AUC':>9}")
    line = []
    for name, model in models:
        start = time.perf_counter()
        model.fit(x, y)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        scores = (model.decision_function(tx) if hasattr(model, "decision_function")
                  else model.predict_proba(tx)[:, 1])
        predict_s = time.perf_counter() - start
        auc = roc_auc_score(ty, scores)
        print(f"{name:<14} {fit_s:>8.3f} {predict_s:>10.3f} {auc:>9.3f}")
        key = name.replace("-", "_")
        line.append(f"fit_s_{key}={fit_s:.3f} predict_s_{key}={predict_s:.3f} auc_{key}={auc:.3f}")
    print(" ".join(line))


if __name__ == "__main__":
    main()
