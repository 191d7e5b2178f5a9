"""What the Keras and PyTorch CNN benchmarks share with `microcal bench cnn`: the same 640
images (the first of Train/0, Train/1, Test/0, Test/1 in path order, as microcal loads
them, scaled to 0-1), batch 32, a 3-batch warm-up, `repeats` timed epochs and as many
timed inference passes (batch 128), the median reported, the last line machine-readable."""
import os
import pathlib
import statistics
import sys

import numpy as np
from PIL import Image

IMAGES = 640
BATCH = 32
INFER_BATCH = 128


def images(root):
    """(x: n×60×60 float32 in 0-1, y: n float32) from a data folder, or noise without one."""
    if root is None:
        rng = np.random.default_rng(0)
        x = rng.random((IMAGES, 60, 60), dtype=np.float32)
        y = (rng.random(IMAGES) < 0.5).astype(np.float32)
        return x, y, "random images"
    root = pathlib.Path(root)
    xs, ys = [], []
    for part in ("Train", "Test"):
        for label in (0, 1):
            for path in sorted((root / part / str(label)).glob("*.pgm")):
                xs.append(np.asarray(Image.open(path), dtype=np.float32) / 255.0)
                ys.append(float(label))
    x, y = np.stack(xs)[:IMAGES], np.array(ys, dtype=np.float32)[:IMAGES]
    return x, y, f"{root}"


def report(name, train, infer):
    """Prints each run and the medians, then the machine-readable line."""
    t, i = statistics.median(train), statistics.median(infer)
    print(f"{name}, {os.cpu_count()} cores")
    print(f"training:  {t:.0f} images/s median of {len(train)} epochs ({' '.join(f'{r:.0f}' for r in train)})")
    print(f"inference: {i:.0f} images/s median of {len(infer)} passes ({' '.join(f'{r:.0f}' for r in infer)})")
    print(f"train_images_per_s={t:.0f} infer_images_per_s={i:.0f}")


def args():
    """`[DATA_FOLDER] [--repeats N]`."""
    argv = sys.argv[1:]
    repeats = 5
    if "--repeats" in argv:
        at = argv.index("--repeats")
        repeats = int(argv[at + 1])
        del argv[at : at + 2]
    return (argv[0] if argv else None), repeats
