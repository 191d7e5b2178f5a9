#!/usr/bin/env python3
"""PyTorch (CPU) on the reference CNN, timed as `microcal bench cnn` times microcal (see
cnn_bench_common.py): the same layers as tools/bench_keras.py, Glorot-uniform weights,
Adam 1e-3, binary cross-entropy on the logit; all cores (torch's default threads).

    python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch numpy pillow
    /tmp/torch/bin/python tools/bench_torch.py ../shared/data/microcal [--repeats 5]
"""
import time

import torch
from torch import nn

from cnn_bench_common import BATCH, INFER_BATCH, args, images, report


def network():
    def conv(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

    model = nn.Sequential(
        *conv(1, 32),
        *conv(32, 64),
        nn.Dropout(0.25),
        *conv(64, 128),
        nn.Dropout(0.25),
        *conv(128, 128),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(128 * 3 * 3, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, 1),
    )
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def epoch(model, opt, loss, x, y):
    model.train()
    for i in range(0, len(x), BATCH):
        opt.zero_grad()
        loss(model(x[i : i + BATCH]).squeeze(1), y[i : i + BATCH]).backward()
        opt.step()


def predict(model, x):
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(x), INFER_BATCH):
            model(x[i : i + INFER_BATCH])


def main():
    root, repeats = args()
    x, y, source = images(root)
    x, y = torch.from_numpy(x[:, None]), torch.from_numpy(y)
    model = network()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = nn.BCEWithLogitsLoss()
    epoch(model, opt, loss, x[: 3 * BATCH], y[: 3 * BATCH])
    predict(model, x[:INFER_BATCH])
    train, infer = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        epoch(model, opt, loss, x, y)
        train.append(len(x) / (time.perf_counter() - start))
        start = time.perf_counter()
        predict(model, x)
        infer.append(len(x) / (time.perf_counter() - start))
    report(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, {len(x)} images from {source}", train, infer)


if __name__ == "__main__":
    main()
