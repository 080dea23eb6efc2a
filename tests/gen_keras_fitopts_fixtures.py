#!/usr/bin/env python3
"""gen_keras_fitopts_fixtures.py: what Keras 3 (JAX) does with fit's sample_weight,
class_weight, steps_per_epoch and validation options, and evaluate's sample_weight, on a small
model with fixed initial weights; tests/test_fitopts.c reproduces every case.

How to run (from the repository root):
    KERAS_BACKEND=jax python3 tests/gen_keras_fitopts_fixtures.py
It rewrites tests/fixtures/keras_fitopts/cases.txt.

cases.txt is plain text, one "key values..." line each:
    data lines first: x (N*6), y (N class indices), ybin (N), w (N), xv, yv, wv, and the
    initial weights init_softmax / init_sigmoid (kernel (in, out) row-major, then bias, per
    Dense layer: kc_get_weights order)
    then one block per case, starting with "case <name>":
    model <softmax|logits|sigmoid>   the output layer: Dense(3, softmax), Dense(3), Dense(1, sigmoid)
    loss <name> <from_logits> <reduction> <ignore_class or -1>
    <option lines>                   what the case passes (see the case table below)
    hist_<key> <one value per epoch> History.history[key]
    warned <0|1>                     whether Keras warned that the input ran out of data
    final <weights>                  after training
    eval_<key> <value>               evaluate's results (the eval cases)
"""
import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

if keras.backend.backend() != "jax":
    raise SystemExit("run with KERAS_BACKEND=jax")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras_fitopts")
N, D, H, C, NV = 10, 6, 5, 3, 6
rng = np.random.default_rng(2026)
f32 = "float32"
x = rng.normal(size=(N, D)).astype(f32)
y = np.array([0, 1, 2, 1, 0, 2, 2, 1, 0, 1], dtype="int32")
ybin = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0], dtype=f32)
w = rng.uniform(0.2, 2.0, N).astype(f32)
xv = rng.normal(size=(NV, D)).astype(f32)
yv = np.array([2, 0, 1, 1, 0, 2], dtype="int32")
wv = rng.uniform(0.2, 2.0, NV).astype(f32)
k1 = rng.normal(0, 0.5, (D, H)).astype(f32)
b1 = rng.normal(0, 0.1, H).astype(f32)
k2 = rng.normal(0, 0.5, (H, C)).astype(f32)
b2 = rng.normal(0, 0.1, C).astype(f32)
k2b = rng.normal(0, 0.5, (H, 1)).astype(f32)
b2b = rng.normal(0, 0.1, 1).astype(f32)
onehot = np.eye(C, dtype=f32)[y]
onehot_v = np.eye(C, dtype=f32)[yv]

lines = []


def put(key, values):
    values = np.asarray(values, dtype="float64").ravel()
    lines.append(key + " " + " ".join(repr(float(v)) for v in values))


put("x", x)
put("y", y)
put("ybin", ybin)
put("w", w)
put("xv", xv)
put("yv", yv)
put("wv", wv)
put("init_softmax", np.concatenate([k1.ravel(), b1, k2.ravel(), b2]))
put("init_sigmoid", np.concatenate([k1.ravel(), b1, k2b.ravel(), b2b]))


def build(kind):
    inp = keras.Input((D,))
    h = keras.layers.Dense(H, activation="relu")(inp)
    if kind == "sigmoid":
        out = keras.layers.Dense(1, activation="sigmoid")(h)
        weights = [k1, b1, k2b, b2b]
    else:
        out = keras.layers.Dense(C, activation="softmax" if kind == "softmax" else None)(h)
        weights = [k1, b1, k2, b2]
    m = keras.Model(inp, out)
    m.set_weights(weights)
    return m


def make_loss(name, from_logits, reduction, ignore_class):
    kw = {"reduction": reduction}
    if name == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy(from_logits=bool(from_logits), **kw)
    if name == "sparse_categorical_crossentropy":
        if ignore_class >= 0:
            kw["ignore_class"] = ignore_class
        return keras.losses.SparseCategoricalCrossentropy(from_logits=bool(from_logits), **kw)
    if name == "binary_crossentropy":
        return keras.losses.BinaryCrossentropy(from_logits=bool(from_logits), **kw)
    if name == "mean_squared_error":
        return keras.losses.MeanSquaredError(**kw)
    raise ValueError(name)


def flat_weights(m):
    return np.concatenate([v.ravel() for v in m.get_weights()])


def case(name, kind, loss, targets, fit=None, evaluate=None, train_on_batch=None,
         from_logits=0, reduction="sum_over_batch_size", ignore_class=-1):
    """targets: 'onehot', 'sparse' or 'bin'. fit: fit's keyword arguments, written as option
    lines (arrays by name)."""
    lines.append("case " + name)
    lines.append("model " + kind)
    lines.append(f"loss {loss} {from_logits} {reduction} {ignore_class}")
    lines.append("targets " + targets)
    m = build(kind)
    m.compile(optimizer=keras.optimizers.SGD(0.1),
              loss=make_loss(loss, from_logits, reduction, ignore_class), metrics=["accuracy"])
    ytr = {"onehot": onehot, "sparse": y, "bin": ybin[:, None]}[targets]
    yva = {"onehot": onehot_v, "sparse": yv, "bin": None}[targets]
    if fit is not None:
        kw = dict(fit)
        for k, v in fit.items():
            if k == "class_weight":
                cw = [v.get(c, -1.0) for c in range(max(v) + 1)]  # -1: absent from the dict
                put("opt_class_weight", cw)
            elif k == "sample_weight":
                lines.append("opt_sample_weight w")
                kw[k] = w
            elif k == "validation_data":
                lines.append("opt_validation " + v)
                kw[k] = (xv, yva, wv) if v == "weighted" else (xv, yva)
            else:
                lines.append(f"opt_{k} {v if v is not None else 0}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            h = m.fit(x, ytr, shuffle=False, verbose=0, **kw)
        warned = any("ran out of data" in str(c.message) for c in caught)
        lines.append(f"warned {int(warned)}")
        for key in sorted(h.history):
            put("hist_" + key, h.history[key])
    if evaluate is not None:
        kw = dict(evaluate)
        if kw.pop("sample_weight", False):
            kw["sample_weight"] = w
            lines.append("opt_sample_weight w")
        lines.append(f"opt_batch_size {kw['batch_size']}")
        r = m.evaluate(x, ytr, verbose=0, return_dict=True, **kw)
        for key in sorted(r):
            put("eval_" + key, [r[key]])
    if train_on_batch is not None:
        b = train_on_batch
        lines.append(f"opt_batch_size {b}")
        lines.append("opt_sample_weight w")
        r = m.train_on_batch(x[:b], ytr[:b], sample_weight=w[:b], return_dict=True)
        for key in sorted(r):
            put("tob_" + key, [r[key]])
    put("final", flat_weights(m))


cce, scce, bce = ("categorical_crossentropy", "sparse_categorical_crossentropy",
                  "binary_crossentropy")
# (a) sample_weight, with weighted validation data; and validation_split splitting the weights
case("sw_onehot", "softmax", cce, "onehot",
     fit=dict(batch_size=4, epochs=2, sample_weight=True, validation_data="weighted"))
case("sw_split", "softmax", cce, "onehot",
     fit=dict(batch_size=4, epochs=2, sample_weight=True, validation_split=0.3))
case("sw_sparse", "softmax", scce, "sparse",
     fit=dict(batch_size=4, epochs=2, sample_weight=True, validation_data="weighted"))
case("sw_sum", "softmax", cce, "onehot", reduction="sum",
     fit=dict(batch_size=4, epochs=2, sample_weight=True))
case("sw_mean_sw", "softmax", cce, "onehot", reduction="mean_with_sample_weight",
     fit=dict(batch_size=4, epochs=2, sample_weight=True, validation_data="weighted"))
case("sw_mse", "softmax", "mean_squared_error", "onehot",
     fit=dict(batch_size=4, epochs=2, sample_weight=True))
case("sw_ignore", "logits", scce, "sparse", from_logits=1, ignore_class=1,
     fit=dict(batch_size=4, epochs=2, sample_weight=True))
case("sw_bce", "sigmoid", bce, "bin", fit=dict(batch_size=4, epochs=2, sample_weight=True))
# (b) class_weight with one-hot targets (class 1 absent from the dict: weight 1); validation
# data is not class-weighted
case("cw_onehot", "softmax", cce, "onehot",
     fit=dict(batch_size=4, epochs=2, class_weight={0: 2.0, 2: 0.5}, validation_data="plain"))
# (c) class_weight with class indices and a from_logits sparse loss
case("cw_sparse_logits", "logits", scce, "sparse", from_logits=1,
     fit=dict(batch_size=4, epochs=2, class_weight={0: 0.5, 1: 3.0, 2: 1.5}))
# (d) steps_per_epoch: fewer batches than the data has (the next epoch goes on where this one
# stopped), more (each epoch ends with the data, Keras warns), and no batch_size
case("steps_less", "softmax", cce, "onehot",
     fit=dict(batch_size=4, epochs=3, steps_per_epoch=2))
case("steps_more", "softmax", cce, "onehot",
     fit=dict(batch_size=4, epochs=2, steps_per_epoch=5))
case("steps_no_batch", "softmax", cce, "onehot",
     fit=dict(batch_size=None, epochs=2, steps_per_epoch=2))
case("val_opts", "softmax", cce, "onehot",
     fit=dict(batch_size=4, epochs=2, validation_data="weighted", validation_batch_size=4,
              validation_steps=1, sample_weight=True))
# (e) evaluate with sample_weight (accuracy is a plain metric: not weighted)
case("eval_sw", "softmax", cce, "onehot", evaluate=dict(batch_size=4, sample_weight=True))
case("eval_sw_sparse", "softmax", scce, "sparse", evaluate=dict(batch_size=3, sample_weight=True))
# (f) binary_crossentropy with class_weight on a 1-column sigmoid output
case("cw_bce", "sigmoid", bce, "bin", fit=dict(batch_size=4, epochs=2, class_weight={0: 1.0, 1: 3.0}))
# train_on_batch with sample_weight: the loss before the step, the weights after
case("tob_sw", "softmax", cce, "onehot", train_on_batch=4)

os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "cases.txt"), "w") as f:
    f.write("# written by tests/gen_keras_fitopts_fixtures.py (Keras %s, JAX)\n" % keras.__version__)
    f.write("\n".join(lines) + "\n")
print("wrote", os.path.join(OUT, "cases.txt"), len(lines), "lines")
