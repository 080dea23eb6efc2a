#!/usr/bin/env python3
"""gen_keras_seqloss_fixtures.py: Keras 3's categorical crossentropy and accuracy on a
sequence output (batch, steps, classes), for tests/test_seqloss.c.

How to run (from the repository root):
    KERAS_BACKEND=jax /work/venvs/k3/bin/python tests/gen_keras_seqloss_fixtures.py
Writes tests/fixtures/keras_seqloss/<case>.txt for the model
    Sequential([Input((T, F)), Dense(C, activation)]) compiled with
    CategoricalCrossentropy(from_logits) and metrics=["accuracy"]
(Dense on a 3-D input works on the last axis: the output is (batch, T, C)), cases
"softmax" (activation softmax, from_logits False) and "logits" (linear, from_logits True):
    tensor x (B, T, F); y (B, T, C) one-hot; weights (kernel (F, C), bias (C));
    loss (the loss of the whole batch: Keras's sum_over_batch_size, the mean over samples and
    steps); grads (d loss / d weights, kernel then bias); eval (model.evaluate(x, y,
    batch_size=2): loss, accuracy; batches of 2 and 1 samples, so the batch means are weighted).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np  # noqa: E402
import jax  # noqa: E402
import keras  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras_seqloss")
B, T, F, C = 3, 4, 3, 5


def write_tensor(f, name, values):
    values = np.asarray(values, dtype=np.float32).ravel()
    f.write(f"tensor {name} {values.size}\n")
    for i in range(0, values.size, 8):
        f.write(" ".join("%.9g" % v for v in values[i:i + 8]) + "\n")


def case(name, activation, from_logits, seed):
    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input((T, F)), keras.layers.Dense(C, activation=activation)])
    loss = keras.losses.CategoricalCrossentropy(from_logits=from_logits)
    model.compile(loss=loss, optimizer="sgd", metrics=["accuracy"])
    weights = [rng.normal(0, 0.8, w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(weights)
    x = rng.normal(0, 1, (B, T, F)).astype(np.float32)
    # about half of the steps labelled with the model's own argmax: accuracy between 0 and 1
    labels = rng.integers(0, C, (B, T))
    hit = rng.random((B, T)) < 0.5
    labels[hit] = np.argmax(np.asarray(model.predict(x, verbose=0)), axis=-1)[hit]
    y = np.eye(C, dtype=np.float32)[labels]

    def f(tv):
        y_pred, _ = model.stateless_call(tv, [], x)
        return loss(y, y_pred)

    tv = [v.value for v in model.trainable_variables]
    value, grads = jax.value_and_grad(f)(tv)
    ev = model.evaluate(x, y, batch_size=2, verbose=0, return_dict=True)
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, name + ".txt"), "w") as out:
        out.write(f"# {name}: Keras {keras.__version__} ({keras.backend.backend()}), Dense({C}, "
                  f"{activation}) on ({T}, {F}), CategoricalCrossentropy(from_logits="
                  f"{from_logits}), batch {B}\n")
        write_tensor(out, "x", x)
        write_tensor(out, "y", y)
        write_tensor(out, "weights", np.concatenate([w.ravel() for w in weights]))
        write_tensor(out, "loss", [value])
        write_tensor(out, "grads", np.concatenate([np.asarray(g).ravel() for g in grads]))
        write_tensor(out, "eval", [ev["loss"], ev["accuracy"]])
    print(name, float(value), ev)


case("softmax", "softmax", False, 1)
case("logits", None, True, 2)
