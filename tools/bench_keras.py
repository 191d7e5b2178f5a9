#!/usr/bin/env python3
"""Keras (TensorFlow CPU) on the reference CNN, timed as `microcal bench cnn` times
microcal (see cnn_bench_common.py): 4 conv3x3 32-64-128-128 with ReLU and 2x2 max-pool,
dropouts .25/.25/.5, dense 256-128-1, Adam 1e-3, binary cross-entropy.
`--network batchnorm`: the same with batch norm after each convolution (`microcal bench
cnn --experiment` of such a file); `--network modern`: experiments/base/modern-cnn.toml's
network and optimiser, without augmentation (as `microcal bench cnn --experiment
experiments/cnn_modern.toml` includes it, compare training with care).

    python3 -m venv /tmp/keras && /tmp/keras/bin/pip install tensorflow-cpu pillow
    /tmp/keras/bin/python tools/bench_keras.py ../shared/data/microcal [--repeats 5] [--network NAME]
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from cnn_bench_common import BATCH, INFER_BATCH, args, images, report  # noqa: E402


def modern(learning_rate=1e-3):
    """experiments/base/modern-cnn.toml's network: conv-BN(0.9)-ReLU twice per stage
    (16, 32), a residual stage (64, 1x1 projection), global average pooling, dropout 0.3;
    AdamW (weight decay 1e-4) at `learning_rate` (a number or a Keras schedule)."""
    def conv_bn(x, n, relu=True):
        x = layers.Conv2D(n, 3, padding="same")(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        return layers.ReLU()(x) if relu else x

    inputs = keras.Input((60, 60, 1))
    x = inputs
    for n in (16, 32):
        x = layers.MaxPooling2D(2)(conv_bn(conv_bn(x, n), n))
    skip = layers.Conv2D(64, 1, padding="same")(x)
    x = layers.Add()([conv_bn(conv_bn(x, 64), 64, relu=False), skip])
    x = layers.MaxPooling2D(2)(layers.ReLU()(x))
    x = layers.Dropout(0.3)(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, layers.Dense(1)(x))
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=1e-4),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    return model


def network(batchnorm=False):
    if batchnorm:
        def conv(n):
            return [layers.Conv2D(n, 3, padding="same"), layers.BatchNormalization(), layers.ReLU()]
    else:
        def conv(n):
            return [layers.Conv2D(n, 3, padding="same", activation="relu")]
    model = keras.Sequential(
        [
            keras.Input((60, 60, 1)),
            *conv(32),
            layers.MaxPooling2D(2),
            *conv(64),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            *conv(128),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            *conv(128),
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
    name = "reference"
    if "--network" in sys.argv:
        at = sys.argv.index("--network")
        name = sys.argv[at + 1]
        del sys.argv[at : at + 2]
    root, repeats = args()
    x, y, source = images(root)
    x = x[..., None]
    model = {"reference": network, "batchnorm": lambda: network(True), "modern": modern}[name]()
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
    report(f"Keras {keras.__version__} ({keras.backend.backend()}), {name} network, {len(x)} images from {source}", train, infer)


if __name__ == "__main__":
    main()
