#!/usr/bin/env python3
"""gen_keras_conv_fixtures.py: Keras 3 reference fixtures for the convolution layers, checked by
tests/test_keras_conv.c.

How to run (from the repository root):
    pip install keras jax
    KERAS_BACKEND=jax python3 tests/gen_keras_conv_fixtures.py
It rewrites tests/fixtures/keras_conv/<case>.txt. The models are fixed here and rebuilt by the
C test from the case name (see CASES); the files hold only tensors, in the format of
gen_keras_fixtures.py:
    # comment lines
    tensor <name> <count>
    <count floats, %.9g>
Tensors: weights (Keras's get_weights order, flat: conv kernels (kh, kw, in, filters), then
bias; BatchNormalization gamma, beta, moving_mean, moving_variance), x (batch, h, w, c), y
(one-hot), output (model(x, training=False)), loss and grads (the compiled
categorical_crossentropy and its gradient with respect to the trainable weights, with
training=True: batch statistics in BatchNormalization; no dropout in these models), and
after_sgd / after_adam_2 (all weights after one SGD(0.1) step, or two Adam steps, by
train_on_batch: BatchNormalization's moving averages move too).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from gen_keras_fixtures import flat, write_tensor  # noqa: E402  (same directory)

if keras.backend.backend() != "jax":
    raise SystemExit("run with KERAS_BACKEND=jax")

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras_conv")
BATCH = 3
L = keras.layers

# name -> (input shape, layer factory). tests/test_keras_conv.c builds the same models.
CASES = {
    "conv_valid_maxpool": ((6, 6, 2), lambda: [
        L.Conv2D(3, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
        L.Dense(4, activation="softmax")]),
    "conv_same_strided_avgpool": ((7, 7, 1), lambda: [
        L.Conv2D(4, (3, 2), strides=2, padding="same", activation="tanh"),
        L.AveragePooling2D(2, strides=1, padding="same"),
        L.Conv2D(2, 1, activation="sigmoid"), L.GlobalAveragePooling2D(),
        L.Dense(3, activation="softmax")]),
    "conv_batchnorm": ((5, 5, 2), lambda: [
        L.Conv2D(3, 3, padding="same"), L.BatchNormalization(), L.Activation("relu"),
        L.MaxPooling2D(2, padding="same"), L.Flatten(), L.Dense(3, activation="softmax")]),
    "reshape_conv_dense_bn": ((12,), lambda: [
        L.Reshape((2, 3, 2)), L.Conv2D(2, 2, activation="relu"), L.Flatten(),
        L.Dense(4), L.BatchNormalization(momentum=0.9, epsilon=0.01),
        L.Dense(3, activation="softmax")]),
}


def build(name):
    shape, layers = CASES[name]
    return keras.Sequential([keras.Input(shape)] + layers())


def make_weights(rng, model):
    weights = []
    for var in model.weights:
        if "moving_variance" in var.path:
            w = rng.uniform(0.5, 1.5, var.shape)
        elif "moving_mean" in var.path:
            w = rng.normal(0.0, 0.2, var.shape)
        elif "gamma" in var.path:
            w = rng.uniform(0.7, 1.3, var.shape)
        elif len(var.shape) >= 2:
            w = rng.normal(0.0, 0.3, var.shape)
        else:
            w = rng.normal(0.0, 0.2, var.shape)
        weights.append(w.astype(np.float32))
    return weights


def loss_and_grads(model, x, y):
    reducer = keras.losses.CategoricalCrossentropy()
    non_trainable = [v.value for v in model.non_trainable_variables]

    def f(trainable):
        out, _ = model.stateless_call(trainable, non_trainable, x, training=True)
        return reducer(y, out)

    loss, grads = jax.value_and_grad(f)([v.value for v in model.trainable_variables])
    return np.float32(loss), np.concatenate([np.asarray(g).ravel() for g in grads])


def generate(seed, name):
    rng = np.random.default_rng(seed)
    model = build(name)
    weights = make_weights(rng, model)
    model.set_weights(weights)
    x = rng.normal(0.0, 1.0, (BATCH,) + CASES[name][0]).astype(np.float32)
    units = model.output_shape[-1]
    y = np.eye(units, dtype=np.float32)[rng.integers(0, units, BATCH)]
    output = np.asarray(model(x, training=False))
    loss, grads = loss_and_grads(model, x, y)
    after = {}
    for tname, make_opt, steps in (("after_sgd", lambda: keras.optimizers.SGD(0.1), 1),
                                   ("after_adam_2", lambda: keras.optimizers.Adam(), 2)):
        m = build(name)
        m.set_weights(weights)
        m.compile(optimizer=make_opt(), loss="categorical_crossentropy")
        for _ in range(steps):
            m.train_on_batch(x, y)
        after[tname] = flat(m.get_weights())
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, name + ".txt"), "w") as f:
        f.write(f"# {name}: keras {keras.__version__}, jax {jax.__version__}, seed {seed}\n")
        write_tensor(f, "weights", flat(weights))
        write_tensor(f, "x", x)
        write_tensor(f, "y", y)
        write_tensor(f, "output", output)
        write_tensor(f, "loss", [loss])
        write_tensor(f, "grads", grads)
        for tname, values in after.items():
            write_tensor(f, tname, values)
    print(f"{name}: {flat(weights).size} weights, loss {loss:.6f}")


if __name__ == "__main__":
    for seed, name in enumerate(CASES):
        generate(100 + seed, name)
