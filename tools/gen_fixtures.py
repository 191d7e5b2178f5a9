#!/usr/bin/env python3
"""Golden numbers from PyWavelets / NumPy / scikit-learn for the Rust tests.

    pip install pywavelets scikit-learn && python3 tools/gen_fixtures.py [--data ../shared/data/microcal]

Writes tests/fixtures/*.json. Real dataset images are never copied: for them only
checksums of the coefficients (shape, sum, sum of squares, a weighted sum) are stored.
"""
import argparse
import json
import pathlib
import re

import numpy as np
import pywt
from sklearn import metrics

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"


def formula_image(rows, cols):
    """Deterministic integer test image; the Rust tests build the same one."""
    r = np.arange(rows)[:, None]
    c = np.arange(cols)[None, :]
    return ((r * 7 + c * 13 + (r * c) % 11 + (r * r) % 17) % 256).astype(np.float64)


def weights(n):
    """Pseudo-random weights in [-0.5, 0.5), same integer formula as the Rust tests."""
    idx = np.arange(n, dtype=np.uint64)
    return ((idx * np.uint64(2654435761)) % np.uint64(1000)).astype(np.float64) / 1000.0 - 0.5


def named_arrays(coeffs):
    level = len(coeffs) - 1
    out = [(f"a{level}", coeffs[0])]
    for i, (h, v, d) in enumerate(coeffs[1:]):
        lv = level - i
        out += [(f"h{lv}", h), (f"v{lv}", v), (f"d{lv}", d)]
    return out


def checksum(name, a, full=False):
    flat = a.ravel()
    w = weights(flat.size)
    entry = {
        "name": name,
        "shape": list(a.shape),
        "sum": float(flat.sum()),
        "sum_abs": float(np.abs(flat).sum()),
        "sumsq": float((flat * flat).sum()),
        "wdot": float((w * flat).sum()),
        "wdot_abs": float(np.abs(w * flat).sum()),
    }
    if full:
        entry["data"] = [float(x) for x in flat]
    return entry


def kurtosis_excess(x):
    m = x.mean()
    m2 = ((x - m) ** 2).mean()
    m4 = ((x - m) ** 4).mean()
    return float(m4 / (m2 * m2) - 3.0) if m2 > 0 else 0.0


def subband_stats(coeffs, keep):
    level = len(coeffs) - 1
    feats = []
    for i, bands in enumerate(coeffs[1:]):
        lv = level - i
        if lv not in keep:
            continue
        for band in bands:
            c = band.ravel()
            a = np.abs(c)
            feats += [
                float(np.sqrt((c * c).mean())),
                float(a.mean()),
                float(a.max()),
                float(np.percentile(a, 95)),
                kurtosis_excess(c),
            ]
    return feats


def wavelet_fixture():
    img = formula_image(60, 47)
    cases = []
    for name in pywt.wavelist(kind="discrete"):
        for level in (1, 4):
            coeffs = pywt.wavedec2(img, name, mode="symmetric", level=level)
            full = name in ("db5", "bior2.4") and level == 4
            cases.append(
                {
                    "family": name,
                    "level": level,
                    "arrays": [checksum(n, a, full) for n, a in named_arrays(coeffs)],
                }
            )
    coeffs = pywt.wavedec2(img, "db5", mode="symmetric", level=4)
    keep = [2, 3, 4]
    kept = np.concatenate([b.ravel() for i, t in enumerate(coeffs[1:]) if 4 - i in keep for b in t])
    return {
        "image": {"rows": 60, "cols": 47},
        "pywt_version": pywt.__version__,
        "cases": cases,
        "features_db5_l4_keep234": {
            "coefficients_len": int(kept.size),
            "coefficients_checksum": checksum("kept", kept),
            "subband_stats": subband_stats(coeffs, keep),
        },
    }


def read_pgm(path):
    """Minimal binary PGM (P5, 8-bit) reader: header tokens, then raw bytes."""
    raw = path.read_bytes()
    tokens, pos = [], 0
    while len(tokens) < 4:
        m = re.compile(rb"\s*(#[^\n]*\n\s*)*(\S+)").match(raw, pos)
        tokens.append(m.group(2))
        pos = m.end()
    assert tokens[0] == b"P5" and int(tokens[3]) < 256, path
    w, h = int(tokens[1]), int(tokens[2])
    pixels = np.frombuffer(raw[pos + 1 : pos + 1 + w * h], dtype=np.uint8)
    return pixels.reshape(h, w).astype(np.float64)


def real_fixture(data_root):
    files = []
    for split in ("Test", "Train"):
        for label in ("0", "1"):
            d = data_root / split / label
            files += sorted(d.glob("*.pgm"))[:4]
    out = []
    for f in files:
        img = read_pgm(f)
        coeffs = pywt.wavedec2(img, "db5", mode="symmetric", level=4)
        out.append(
            {
                "path": str(f.relative_to(data_root)),
                "arrays": [checksum(n, a) for n, a in named_arrays(coeffs)],
            }
        )
    return out


def metrics_fixture():
    rng = np.random.default_rng(7)
    cases = []
    for n, ties in ((40, False), (101, True), (16, True)):
        y = rng.integers(0, 2, n)
        s = rng.random(n)
        if ties:
            s = np.round(s * 5) / 5  # heavy ties, including exactly 0.5
        cases.append((y, s))
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0]); cases.append((y, np.full(8, 0.7)))  # all predicted positive
    y = np.array([0, 0, 1, 1]); cases.append((y, np.array([0.1, 0.2, 0.8, 0.9])))  # perfect
    y = np.array([0, 1, 0, 1, 1]); cases.append((y, np.array([0.9, 0.1, 0.3, 0.2, 0.6])))  # mostly wrong
    out = []
    for y, s in cases:
        pred = (s >= 0.5).astype(int)
        tn, fp, fn, tp = metrics.confusion_matrix(y, pred, labels=[0, 1]).ravel()
        out.append(
            {
                "labels": [int(v) for v in y],
                "scores": [float(v) for v in s],
                "accuracy": metrics.accuracy_score(y, pred),
                "precision": metrics.precision_score(y, pred, zero_division=0),
                "recall": metrics.recall_score(y, pred, zero_division=0),
                "specificity": float(tn / (tn + fp)) if tn + fp else 0.0,
                "f1": metrics.f1_score(y, pred, zero_division=0),
                "auc": metrics.roc_auc_score(y, s),
                "log_loss": metrics.log_loss(y, np.clip(s, 1e-7, 1 - 1e-7), labels=[0, 1]),
                "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
            }
        )
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "microcal"))
    args = ap.parse_args()
    FIX.mkdir(parents=True, exist_ok=True)
    (FIX / "wavedec2_formula.json").write_text(json.dumps(wavelet_fixture()))
    (FIX / "metrics_sklearn.json").write_text(json.dumps(metrics_fixture(), indent=1))
    data_root = pathlib.Path(args.data)
    if data_root.exists():
        (FIX / "wavedec2_real_checksums.json").write_text(json.dumps(real_fixture(data_root), indent=1))
    for f in sorted(FIX.glob("*.json")):
        print(f, f.stat().st_size)


if __name__ == "__main__":
    main()
