#!/usr/bin/env python3
"""PyWavelets baseline for `microcal bench wavelet`: db5, level 4, detail levels 2-4 kept as
one flat vector (the reference study's 2,430 features), over every image of the dataset.

    pip install pywavelets && python3 tools/bench_pywt.py ../shared/data/microcal
"""
import pathlib
import sys
import time

import warnings

import numpy as np
import pywt

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from gen_fixtures import read_pgm  # noqa: E402


def features(img):
    coeffs = pywt.wavedec2(img, "db5", mode="symmetric", level=4)
    return np.concatenate([b.ravel() for t in coeffs[1:4] for b in t])


def main():
    warnings.simplefilter("ignore")  # "level too high" for db5 on 60 px: PyWavelets still computes it
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/microcal")
    images = [read_pgm(p) for p in sorted(root.glob("*/*/*.pgm"))]
    assert features(images[0]).size == 2430
    features(images[0])
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 3.0:
        for img in images:
            features(img)
        n += len(images)
    per_image = n / (time.perf_counter() - start)
    print(f"PyWavelets {pywt.__version__}, one call per image: {per_image:.0f} images/s")
    # The fastest PyWavelets use: one call on the whole (n, 60, 60) stack.
    stack = np.stack(images)
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 3.0:
        coeffs = pywt.wavedec2(stack, "db5", mode="symmetric", level=4, axes=(-2, -1))
        np.concatenate([b.reshape(len(images), -1) for t in coeffs[1:4] for b in t], axis=1)
        n += len(images)
    batched = n / (time.perf_counter() - start)
    print(f"PyWavelets {pywt.__version__}, one call on the stack of {len(images)}: {batched:.0f} images/s")
    print(f"images_per_s={max(per_image, batched):.0f}")


if __name__ == "__main__":
    main()
