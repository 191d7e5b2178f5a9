#!/usr/bin/env python3
"""Keras's counterpart of one `experiments/cnn_modern.toml` job, timed as a job: the same
network and optimiser as `bench_keras.py --network modern`, AdamW (1e-3, weight decay 1e-4)
with cosine decay to 0 over every step, random horizontal and vertical flips and a random
quarter turn per image, batch 32, 40 epochs on all of Train, then Test AUC and accuracy
(logit > 0). `train_seconds` is the time `fit` took, as microcal's `train_seconds` column
is its training time. So "in under a third of Keras's training time" (results/README.md)
can be measured in one sitting:

    python3 -m venv /tmp/keras && /tmp/keras/bin/pip install tensorflow-cpu pillow
    /tmp/keras/bin/python tools/keras_modern_job.py ../shared/data/microcal [--seed 0] [--epochs 40]
"""
import argparse
import math
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from PIL import Image  # noqa: E402

from bench_keras import modern  # noqa: E402

BATCH = 32


def split(root, part):
    """(x: n×60×60×1 in 0-1, y: n) of Train or Test, in path order."""
    xs, ys = [], []
    for label in (0, 1):
        for path in sorted((root / part / str(label)).glob("*.pgm")):
            xs.append(np.asarray(Image.open(path), dtype=np.float32) / 255.0)
            ys.append(float(label))
    return np.stack(xs)[..., None], np.array(ys, dtype=np.float32)


def augment(x, y):
    x = tf.image.random_flip_left_right(x)
    x = tf.image.random_flip_up_down(x)
    x = tf.image.rot90(x, k=tf.random.uniform([], 0, 4, dtype=tf.int32))
    return x, y


def auc(scores, labels):
    """ROC AUC as the Mann-Whitney statistic (ties count one half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return (greater + 0.5 * ties) / (len(pos) * len(neg))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=pathlib.Path, help="folder with Train/ and Test/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)
    (x, y), (tx, ty) = split(args.data, "Train"), split(args.data, "Test")
    steps = args.epochs * math.ceil(len(x) / BATCH)
    model = modern(keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=steps))
    train = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=args.seed, reshuffle_each_iteration=True)
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(BATCH)
        .prefetch(tf.data.AUTOTUNE)
    )
    start = time.perf_counter()
    model.fit(train, epochs=args.epochs, verbose=0)
    seconds = time.perf_counter() - start
    logits = model.predict(tx, batch_size=128, verbose=0)[:, 0]
    accuracy = float(((logits > 0) == (ty == 1)).mean())
    print(
        f"Keras {keras.__version__} ({keras.backend.backend()}), modern network, seed {args.seed}, "
        f"{args.epochs} epochs on {len(x)} Train images, {os.cpu_count()} cores"
    )
    print(f"train_seconds={seconds:.1f} test_auc={auc(logits, ty):.4f} test_accuracy={accuracy:.3f}")


if __name__ == "__main__":
    main()
