#!/usr/bin/env python3
"""gen_keras_activation_fixtures.py: Keras 3 reference values of every activation function
kerac has (keras.activations, JAX backend) and a saved .keras model using several of them and
the activation layers, checked by tests/test_activations.c.

How to run (from the repository root):
    KERAS_BACKEND=jax python3 tests/gen_keras_activation_fixtures.py        # Keras 3
    python3 tests/gen_keras_activation_fixtures.py tf2   # tf.keras 2.15: the .h5 model only
It rewrites tests/fixtures/keras_activations/:
  values.txt   the inputs x (4, 6) (negatives, zero, positives, large magnitudes, away from
               the kinks at +-0.5, +-1, +-3 and 6), weights r (4, 6), then per activation
               "act <name>", act(x) and jax.grad(sum(act(x) * r)) (= r * act'(x)); softmax and
               log_softmax act on the rows (last axis). %.9g, 24 values a line.
  model.keras  Sequential Dense and activation layers (see build), x_model / y_model in
  model.txt    (its inputs and its predictions).
  tf2.h5, tf2.txt   the same kind of model in tf.keras 2 (its config forms: LeakyReLU's
               alpha). No hard_sigmoid there: tf.keras 2's is clip(0.2 x + 0.5, 0, 1), the
               name kerac reads as Keras 3's relu6(x + 3) / 6.
"""
import os
import sys

TF2 = len(sys.argv) > 1 and sys.argv[1] == "tf2"
if not TF2:
    os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras_activations")

NAMES = ["linear", "relu", "softmax", "sigmoid", "tanh", "elu", "selu", "gelu", "softplus",
         "softsign", "silu", "mish", "hard_sigmoid", "hard_silu", "hard_tanh", "exponential",
         "leaky_relu", "relu6", "celu", "log_sigmoid", "log_softmax", "tanh_shrink",
         "squareplus", "sparse_plus", "sparse_sigmoid", "soft_shrink", "hard_shrink"]

X = np.array([-50.0, -20.0, -7.3, -3.5, -2.2, -1.3, -0.7, -0.3, -0.05, 0.0, 0.05, 0.3,
              0.7, 1.3, 2.2, 3.5, 5.1, 7.3, 20.0, 50.0, -0.9, 0.45, 2.9, -2.9],
             dtype=np.float32).reshape(4, 6)


def line(v):
    return " ".join("%.9g" % float(t) for t in np.asarray(v, dtype=np.float32).ravel())


def values():
    import jax
    import jax.numpy as jnp
    import keras

    r = np.random.default_rng(11).uniform(0.5, 1.5, X.shape).astype(np.float32)
    with open(os.path.join(OUT, "values.txt"), "w") as f:
        f.write("# Keras %s, JAX %s: x, r, then per activation act(x) and "
                "jax.grad(sum(act(x) * r))\n" % (keras.__version__, jax.__version__))
        f.write("x " + line(X) + "\nr " + line(r) + "\n")
        for name in NAMES:
            fn = keras.activations.get(name)
            y = fn(jnp.asarray(X))
            g = jax.grad(lambda x: jnp.sum(fn(x) * r))(jnp.asarray(X))
            f.write("act %s\ny %s\ng %s\n" % (name, line(y), line(g)))


def build(keras, tf2):
    L = keras.layers
    leaky = L.LeakyReLU(alpha=0.1) if tf2 else L.LeakyReLU(negative_slope=0.1)
    acts = (["gelu", "selu", "swish", "mish", "softsign", "softplus", "elu"] if tf2 else
            ["gelu", "selu", "swish", "mish", "hard_sigmoid", "log_softmax", "celu"])
    layers = [keras.Input((5,)),
              L.Dense(8, activation=acts[0]), L.Dense(8, activation=acts[1]),
              L.Activation(acts[2]), L.Dense(8, activation=acts[3]),
              L.ReLU(max_value=2.5, negative_slope=0.05, threshold=0.1),
              L.Dense(8, activation=acts[4]), L.Dense(6), leaky,
              L.PReLU(alpha_initializer=keras.initializers.Constant(0.25)), L.ELU(alpha=0.7),
              L.Dense(6, activation=acts[5]), L.Dense(4, activation=acts[6]), L.Softmax()]
    return keras.Sequential(layers)


def model_file(tf2):
    if tf2:
        import tensorflow as tf
        keras = tf.keras
    else:
        import keras
    keras.utils.set_random_seed(5)
    m = build(keras, tf2)
    # PReLU's alpha made uneven, so that its weights matter
    for layer in m.layers:
        if layer.__class__.__name__ == "PReLU":
            layer.alpha.assign(np.linspace(-0.3, 0.6, layer.alpha.shape[-1]).astype(np.float32))
    x = np.random.default_rng(3).normal(0, 1.5, (7, 5)).astype(np.float32)
    y = m.predict(x, verbose=0)
    stem = "tf2" if tf2 else "model"
    m.save(os.path.join(OUT, stem + (".h5" if tf2 else ".keras")))
    with open(os.path.join(OUT, stem + ".txt"), "w") as f:
        version = __import__("tensorflow").__version__ if tf2 else keras.__version__
        f.write("# %s %s\n" % ("tf.keras (TensorFlow)" if tf2 else "Keras", version))
        f.write("x " + line(x) + "\ny " + line(y) + "\n")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    if TF2:
        model_file(True)
    else:
        values()
        model_file(False)
    print("wrote", OUT)
