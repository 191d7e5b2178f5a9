#!/usr/bin/env python3
"""Golden numbers from Keras 3 on TensorFlow CPU for the engine's layers and training options.

    python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install tensorflow-cpu
    /tmp/kvenv/bin/python tools/gen_keras_fixtures.py

Writes two small fixtures:
- crates/microcal-engine/fixtures/keras_layers.json: for every layer kind and option, a
  fixed input and fixed weights, the forward output (training mode) and the gradients of
  L = sum(output * R) (R fixed) with respect to the input and every parameter; batch norm's
  running statistics after three training steps; one step of each optimiser (three steps,
  to exercise their state), global-norm clipping; the loss with label smoothing and class
  weights and its gradient.
- tests/fixtures/keras_schedules.json: each learning-rate schedule over ten epochs.

Layers are written as the engine's serde form of `Layer` (so the Rust test builds exactly
the same stack); parameters are listed in the engine's order (per layer kernel then bias,
batch norm gamma then beta, a residual block's inner layers then its projection).
"""
import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
rng = np.random.default_rng(7)


def arr(a):
    """Values as floats with 9 significant digits (every float32 exactly)."""
    return [float(f"{v:.9g}") for v in np.asarray(a, dtype=np.float32).ravel()]


def conv(filters, kernel=3, stride=1, padding="same"):
    spec = {"conv": {"filters": filters, "kernel": kernel, "stride": stride, "padding": padding}}
    layer = keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding)
    return spec, [layer]


def act(name, keras_layer):
    return {"activation": name}, [keras_layer]


def pool(kind, size, stride):
    spec = {kind: {"size": size, "stride": stride}}
    cls = keras.layers.MaxPooling2D if kind == "max-pool" else keras.layers.AveragePooling2D
    return spec, [cls(size, strides=stride, padding="valid")]


def batchnorm(momentum, eps):
    spec = {"batch-norm": {"momentum": momentum, "eps": eps}}
    return spec, [keras.layers.BatchNormalization(momentum=momentum, epsilon=eps)]


class Residual(keras.layers.Layer):
    """inner(x) + x, or + a strided 1x1 projection of x when the shapes differ."""

    def __init__(self, inner, projection=None):
        super().__init__()
        self.inner = inner
        self.projection = projection

    def call(self, x, training=None):
        h = x
        for layer in self.inner:
            h = layer(h, training=training)
        skip = self.projection(x) if self.projection is not None else x
        return h + skip


def residual(parts, projection=None):
    spec = {"residual": [p[0] for p in parts]}
    inner = [layer for p in parts for layer in p[1]]
    proj = None
    if projection is not None:
        filters, stride = projection
        proj = keras.layers.Conv2D(filters, 1, strides=stride, padding="same")
    return spec, [Residual(inner, proj)], inner + ([proj] if proj is not None else [])


def engine_params(layers):
    """Trainable variables in the engine's order."""
    out = []
    for layer in layers:
        if isinstance(layer, Residual):
            out += engine_params(layer.inner)
            if layer.projection is not None:
                out += engine_params([layer.projection])
        elif isinstance(layer, keras.layers.BatchNormalization):
            out += [layer.gamma, layer.beta]
        elif hasattr(layer, "kernel"):
            out += [layer.kernel, layer.bias]
    return out


def case(name, input_shape, parts, steps=1):
    """One stack: its spec, input, weights, output and gradients (training mode)."""
    specs = [p[0] for p in parts]
    keras_layers = [layer for p in parts for layer in p[1]]
    x = rng.normal(size=input_shape).astype(np.float32)
    model = keras.Sequential([keras.Input(shape=input_shape[1:])] + keras_layers)
    params = engine_params(keras_layers)
    for v in params:
        v.assign(rng.normal(scale=0.5, size=v.shape).astype(np.float32))
    # Batch norm's scale and shift away from 1 and 0, so their gradients matter.
    xt = tf.constant(x)
    extra = [tf.constant(rng.normal(size=input_shape).astype(np.float32)) for _ in range(steps - 1)]
    for e in extra:  # earlier training steps (batch norm's running statistics)
        model(e, training=True)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = model(xt, training=True)
        r = tf.constant(rng.normal(size=y.shape).astype(np.float32))
        loss = tf.reduce_sum(y * r)
    grads = tape.gradient(loss, [xt] + params)
    entry = {
        "name": name,
        "layers": specs,
        "input_shape": list(input_shape),
        "input": arr(x),
        "earlier_inputs": [arr(e) for e in extra],
        "params": [arr(v.numpy()) for v in params],
        "output_shape": list(y.shape),
        "output": arr(y),
        "r": arr(r),
        "grad_input": arr(grads[0]),
        "grad_params": [arr(g) for g in grads[1:]],
    }
    def batch_norms(layers):
        for layer in layers:
            if isinstance(layer, Residual):
                yield from batch_norms(layer.inner)
            elif isinstance(layer, keras.layers.BatchNormalization):
                yield layer

    bns = list(batch_norms(keras_layers))
    entry["running"] = [[arr(b.moving_mean.numpy()), arr(b.moving_variance.numpy())] for b in bns]
    # Evaluation mode (running statistics) output.
    entry["eval_output"] = arr(model(xt, training=False))
    return entry


def layers_fixture():
    cases = [
        case("conv3 same stride1 (winograd)", (2, 6, 6, 2), [conv(3)]),
        case("conv3 on one channel (taps) + relu + maxpool fused", (2, 6, 6, 1),
             [conv(4), act("relu", keras.layers.ReLU()), pool("max-pool", 2, 2)]),
        case("conv3 same stride2", (2, 7, 7, 2), [conv(3, 3, 2)]),
        case("conv3 valid", (2, 6, 6, 2), [conv(3, 3, 1, "valid")]),
        case("conv2 same (even kernel)", (2, 5, 5, 2), [conv(2, 2, 1)]),
        case("conv5 valid stride2", (2, 9, 9, 1), [conv(2, 5, 2, "valid")]),
        case("maxpool 3 stride 2", (2, 7, 7, 2), [pool("max-pool", 3, 2)]),
        case("avgpool 2", (2, 6, 5, 2), [pool("avg-pool", 2, 2)]),
        case("avgpool 3 stride 1", (2, 5, 5, 2), [pool("avg-pool", 3, 1)]),
        case("globalavgpool + dense", (2, 4, 4, 3),
             [("global-avg-pool", [keras.layers.GlobalAveragePooling2D()]),
              ({"dense": {"units": 2}}, [keras.layers.Dense(2)])]),
        case("flatten + dense", (2, 3, 3, 2),
             [("flatten", [keras.layers.Flatten()]), ({"dense": {"units": 3}}, [keras.layers.Dense(3)])]),
        case("batchnorm (Keras defaults) on images", (4, 3, 3, 2), [batchnorm(0.99, 1e-3)], steps=3),
        case("conv + batchnorm momentum 0.9 eps 1e-5 + relu", (3, 4, 4, 2),
             [conv(3), batchnorm(0.9, 1e-5), act("relu", keras.layers.ReLU())], steps=3),
        case("conv + batchnorm + relu + maxpool (fused), odd size", (2, 7, 7, 3),
             [conv(4), batchnorm(0.9, 1e-3), act("relu", keras.layers.ReLU()), pool("max-pool", 2, 2)],
             steps=2),
        case("batchnorm + maxpool (no relu)", (2, 4, 4, 2), [batchnorm(0.99, 1e-3), pool("max-pool", 2, 2)]),
        case("dense + batchnorm + relu", (4, 2, 2, 2),
             [("flatten", [keras.layers.Flatten()]), ({"dense": {"units": 3}}, [keras.layers.Dense(3)]),
              batchnorm(0.9, 1e-3), act("relu", keras.layers.ReLU())], steps=2),
        case("batchnorm on a flat vector", (5, 2, 2, 1),
             [("flatten", [keras.layers.Flatten()]), batchnorm(0.9, 1e-3)], steps=3),
        case("leaky_relu 0.2", (2, 3, 3, 2),
             [({"activation": {"leaky-relu": {"alpha": 0.2}}}, [keras.layers.LeakyReLU(negative_slope=0.2)])]),
        case("elu", (2, 3, 3, 2), [act("elu", keras.layers.ELU())]),
        case("gelu", (2, 3, 3, 2), [act("gelu", keras.layers.Activation("gelu"))]),
        case("sigmoid", (2, 3, 3, 2), [act("sigmoid", keras.layers.Activation("sigmoid"))]),
        case("tanh", (2, 3, 3, 2), [act("tanh", keras.layers.Activation("tanh"))]),
        case("residual identity", (2, 4, 4, 3),
             [residual([conv(3), act("relu", keras.layers.ReLU()), conv(3)])[:2]]),
    ]
    spec, layers, _ = residual([conv(4, 3, 2), batchnorm(0.9, 1e-3), act("relu", keras.layers.ReLU())], (4, 2))
    cases.append(case("residual with strided projection", (2, 6, 6, 2), [(spec, layers)], steps=2))
    return cases


def optimiser_fixture():
    out = []
    settings = [
        ("adam", keras.optimizers.Adam(learning_rate=0.01), 0.0),
        ("adamw", keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1), 0.1),
        ("sgd", keras.optimizers.SGD(learning_rate=0.1), 0.0),
        ("sgd momentum", keras.optimizers.SGD(learning_rate=0.1, momentum=0.9), 0.0),
        ("sgd nesterov", keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True), 0.0),
        ("sgd weight decay", keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.01), 0.01),
        ("sgd global clipnorm 1", keras.optimizers.SGD(learning_rate=0.1, global_clipnorm=1.0), 0.0),
    ]
    for name, opt, wd in settings:
        start = rng.normal(size=5).astype(np.float32)
        v = keras.Variable(start)
        grads = [rng.normal(size=5).astype(np.float32) * 2 for _ in range(3)]
        values = []
        for g in grads:
            opt.apply_gradients([(tf.constant(g), v)])
            values.append(arr(v.numpy()))
        out.append({"name": name, "weight_decay": wd, "start": arr(start),
                    "grads": [arr(g) for g in grads], "values": values})
    return out


def loss_fixture():
    out = []
    z = rng.normal(size=(6, 1)).astype(np.float32) * 2
    y = np.array([[1], [0], [1], [1], [0], [0]], dtype=np.float32)
    for smoothing, weights in [(0.0, None), (0.1, None), (0.0, (0.75, 1.5)), (0.2, (2.0, 0.5))]:
        bce = keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=smoothing)
        zt = tf.constant(z)
        sw = None if weights is None else tf.constant([weights[int(t)] for t in y.ravel()])
        with tf.GradientTape() as tape:
            tape.watch(zt)
            loss = bce(tf.constant(y), zt, sample_weight=sw)
        grad = tape.gradient(loss, zt)
        out.append({"label_smoothing": smoothing, "class_weights": weights, "logits": arr(z),
                    "targets": arr(y), "loss": float(loss), "grad": arr(grad)})
    return out


def schedules_fixture():
    lr, epochs, spe = 0.01, 10, 4
    steps = [e * spe + b for e in range(epochs) for b in (0, 2)]
    out = {"lr": lr, "epochs": epochs, "steps_per_epoch": spe, "steps": steps}
    cos = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=(epochs - 2) * spe, warmup_target=lr,
                                                  warmup_steps=2 * spe)
    out["cosine_warmup2"] = [float(cos(s)) for s in steps]
    cos0 = keras.optimizers.schedules.CosineDecay(lr, decay_steps=epochs * spe)
    out["cosine"] = [float(cos0(s)) for s in steps]
    step = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=3 * spe, decay_rate=0.5, staircase=True)
    out["step_3_0.5"] = [float(step(s)) for s in steps]
    # ReduceLROnPlateau, patience 2, factor 0.5, on scripted validation losses.
    losses = [1.0, 0.8, 0.79995, 0.81, 0.7, 0.71, 0.72, 0.73, 0.69, 0.70]
    model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse")
    cb = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2)
    cb.set_model(model)
    cb.on_train_begin()
    rates = []
    for epoch, v in enumerate(losses):
        rates.append(float(model.optimizer.learning_rate.numpy()))
        cb.on_epoch_end(epoch, {"val_loss": v})
    out["plateau_2_0.5"] = {"val_losses": losses, "rates": rates}
    return out


def main():
    versions = {"keras": keras.__version__, "tensorflow": tf.__version__}
    engine = ROOT / "crates" / "microcal-engine" / "fixtures"
    engine.mkdir(parents=True, exist_ok=True)
    fixture = {"versions": versions, "layers": layers_fixture(), "optimizers": optimiser_fixture(),
               "losses": loss_fixture()}
    (engine / "keras_layers.json").write_text(json.dumps(fixture) + "\n")
    schedules = {"versions": versions, **schedules_fixture()}
    (ROOT / "tests" / "fixtures" / "keras_schedules.json").write_text(json.dumps(schedules, indent=1) + "\n")
    print("wrote", engine / "keras_layers.json", "and tests/fixtures/keras_schedules.json")


if __name__ == "__main__":
    main()
