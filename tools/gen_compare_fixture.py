#!/usr/bin/env python3
"""Writes tests/fixtures/compare.json: paired scores with known DeLong and McNemar results,
from an implementation independent of microcal's: the fast DeLong algorithm of Sun & Xu
(2014) in NumPy, the normal tail from SciPy, and McNemar's exact test as SciPy's two-sided
binomial test of the discordant pairs.

    python3 -m venv /tmp/stats && /tmp/stats/bin/pip install numpy scipy
    /tmp/stats/bin/python tools/gen_compare_fixture.py
"""
import json
import pathlib

import numpy as np
from scipy import stats


def midrank(x):
    order = np.argsort(x, kind="mergesort")
    z = x[order]
    n = len(x)
    t = np.zeros(n)
    i = 0
    while i < n:
        j = i
        while j < n and z[j] == z[i]:
            j += 1
        t[i:j] = 0.5 * (i + j - 1) + 1
        i = j
    out = np.empty(n)
    out[order] = t
    return out


def fast_delong(predictions, m):
    """predictions: k × n with the m positives first (Sun & Xu's layout)."""
    n = predictions.shape[1] - m
    k = predictions.shape[0]
    pos, neg = predictions[:, :m], predictions[:, m:]
    tx = np.array([midrank(pos[r]) for r in range(k)])
    ty = np.array([midrank(neg[r]) for r in range(k)])
    tz = np.array([midrank(predictions[r]) for r in range(k)])
    aucs = tz[:, :m].sum(axis=1) / m / n - (m + 1.0) / 2.0 / n
    v01 = (tz[:, :m] - tx) / n
    v10 = 1.0 - (tz[:, m:] - ty) / m
    cov = np.cov(v01) / m + np.cov(v10) / n
    return aucs, cov


def case(rng, n, correlation, ties):
    labels = (rng.random(n) < 0.45).astype(int)
    labels[:2], labels[2:4] = 1, 0
    base = rng.normal(size=n) + 1.2 * labels
    a = base + rng.normal(scale=0.6, size=n)
    b = correlation * base + rng.normal(scale=1.0, size=n) + 0.4 * labels
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    a, b = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b))
    order = np.argsort(-labels, kind="mergesort")
    m = int(labels.sum())
    aucs, cov = fast_delong(np.vstack([a[order], b[order]]), m)
    delta = aucs[0] - aucs[1]
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    z = delta / np.sqrt(var)
    p = 2 * stats.norm.sf(abs(z))
    right_a = (a >= 0.5) == (labels == 1)
    right_b = (b >= 0.5) == (labels == 1)
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    p_mcnemar = stats.binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {
        "labels": labels.tolist(),
        "a": a.tolist(),
        "b": b.tolist(),
        "auc_a": aucs[0],
        "auc_b": aucs[1],
        "delta": delta,
        "z": z,
        "p": p,
        "only_a": only_a,
        "only_b": only_b,
        "p_mcnemar": p_mcnemar,
    }


def main():
    rng = np.random.default_rng(20261202)
    cases = [
        case(rng, 40, 0.9, False),
        case(rng, 161, 0.7, False),
        case(rng, 161, 0.5, True),
        case(rng, 300, 0.95, True),
    ]
    out = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/compare.json"
    out.write_text(json.dumps({"cases": cases}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
