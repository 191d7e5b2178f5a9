#!/usr/bin/env python3
"""Writes tests/fixtures/classifiers_sklearn.json: scikit-learn's scores on a small
formula-made problem (no random numbers, so Rust rebuilds the same matrices), for the test
that our classifiers agree with scikit-learn's on identical features.

    pip install scikit-learn && python3 tools/gen_classifier_fixture.py
"""
import json
import math
import pathlib

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

ROWS, TEST, COLS = 120, 60, 40


def matrix(rows, offset):
    """Row i, column j: a deterministic pseudo-noise plus a class signal in some columns."""
    x = np.zeros((rows, COLS), dtype=np.float32)
    y = np.zeros(rows, dtype=np.int64)
    for i in range(rows):
        k = i + offset
        y[i] = (k * 7 + k // 3) % 2
        for j in range(COLS):
            noise = math.sin(k * 12.9898 + j * 78.233) * 43758.5453
            noise = (noise - math.floor(noise)) * 2.0 - 1.0
            signal = 0.6 * y[i] * math.cos(j * 0.5) if j % 3 == 0 else 0.0
            x[i, j] = np.float32(noise + signal)
    return x, y


def main():
    x, y = matrix(ROWS, 0)
    tx, ty = matrix(TEST, 1000)
    xd, txd = x.astype(np.float64), tx.astype(np.float64)
    out = {"rows": ROWS, "test": TEST, "cols": COLS}
    out["naive_bayes"] = GaussianNB().fit(xd, y).predict_proba(txd)[:, 1].tolist()
    out["logistic"] = LogisticRegression(C=1.0, max_iter=1000).fit(xd, y).predict_proba(txd)[:, 1].tolist()
    out["svm_decision"] = SVC(kernel="rbf", C=1.0, gamma="scale").fit(xd, y).decision_function(txd).tolist()
    out["knn"] = KNeighborsClassifier(n_neighbors=5).fit(xd, y).predict_proba(txd)[:, 1].tolist()
    for name, model in [("random_forest", RandomForestClassifier(n_estimators=100, random_state=0)),
                        ("decision_tree", DecisionTreeClassifier(random_state=0))]:
        out[f"{name}_auc"] = roc_auc_score(ty, model.fit(xd, y).predict_proba(txd)[:, 1])
    path = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/classifiers_sklearn.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
