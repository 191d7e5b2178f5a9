#!/usr/bin/env python3
"""Keras (TensorFlow CPU) on the reference CNN, timed as `microcal bench cnn` times
microcal (see cnn_bench_common.py): 4 conv3x3 32-64-128-128 with ReLU and 2x2 max-pool,
dropouts .25/.25/.5, dense 256-128-1, Adam 1e-3, binary cross-entropy.

    python3 -m venv /tmp/keras && /tmp/keras/bin/pip install tensorflow-cpu pillow
    /tmp/keras/bin/python tools/bench_keras.py ../shared/data/microcal [--repeats 5]
"""
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from cnn_bench_common import BATCH, INFER_BATCH, args, images, report  # noqa: E402


def network():
    model = keras.Sequential(
        [
            keras.Input((60, 60, 1)),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Conv2D(128, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Conv2D(128, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(256, activation="relu"),
            layers.Dense(128, activation="relu"),
            layers.Dense(1),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    return model


def main():
    root, repeats = args()
    x, y, source = images(root)
    x = x[..., None]
    model = network()
    model.fit(x[: 3 * BATCH], y[: 3 * BATCH], batch_size=BATCH, epochs=1, verbose=0)
    model.predict(x[:INFER_BATCH], batch_size=INFER_BATCH, verbose=0)
    train, infer = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
        train.append(len(x) / (time.perf_counter() - start))
        start = time.perf_counter()
        model.predict(x, batch_size=INFER_BATCH, verbose=0)
        infer.append(len(x) / (time.perf_counter() - start))
    report(f"Keras {keras.__version__} ({keras.backend.backend()}), {len(x)} images from {source}", train, infer)


if __name__ == "__main__":
    main()
