#!/usr/bin/env python3
"""gen_keras_loss_fixtures.py: the Keras 3 (JAX) loss values and gradients that
tests/test_losses.c checks, and a small .keras file compiled with
SparseCategoricalCrossentropy(from_logits=True) with its weights after one training step.

How to run (from the repository root):
    KERAS_BACKEND=jax python3 tests/gen_keras_loss_fixtures.py
It rewrites tests/fixtures/keras_losses/cases.txt, sparse_logits.keras and sparse_logits.txt.

cases.txt is plain text, one block per case:
    case <name>
    spec <function name> <from_logits> <label_smoothing> <has_ignore> <ignore_class> <gamma>
         <alpha> <delta> <apply_class_balancing> <reduction>      (one line; 0 = the default)
    shape <batch> <cols> <sparse: y_true holds batch class indices>
    y_true <floats>
    y_pred <floats>                       (logits where from_logits)
    value <the loss, as compile reduces it>
    grad <d value / d y_pred, batch * cols floats>
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

if keras.backend.backend() != "jax":
    raise SystemExit("run with KERAS_BACKEND=jax")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras_losses")
B, C = 4, 3
rng = np.random.default_rng(7)


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def logits():
    return rng.uniform(-2, 2, (B, C)).astype("float32")


def probs():
    return softmax(logits()).astype("float32")


def sig():
    return (1 / (1 + np.exp(-logits()))).astype("float32")


def onehot():
    return np.eye(C, dtype="float32")[rng.integers(0, C, B)]


def soft():
    return probs()


def binary():
    return rng.integers(0, 2, (B, C)).astype("float32")


def real():
    return rng.uniform(-1, 1, (B, C)).astype("float32")


def positive():
    return rng.uniform(0.2, 2, (B, C)).astype("float32")


def sparse():
    return np.array([0, 2, 1, 2], dtype="float32")


def sparse_ignored():
    return np.array([1, 2, 1, 0], dtype="float32")


# (name, function name, class, kwargs, y_true maker, y_pred maker)
CASES = [
    ("cce_logits", "categorical_crossentropy", "CategoricalCrossentropy", dict(from_logits=True), soft, logits),
    ("cce_ls", "categorical_crossentropy", "CategoricalCrossentropy", dict(label_smoothing=0.1), onehot, probs),
    ("cce_logits_ls", "categorical_crossentropy", "CategoricalCrossentropy",
     dict(from_logits=True, label_smoothing=0.2), onehot, logits),
    ("cce_sum", "categorical_crossentropy", "CategoricalCrossentropy", dict(reduction="sum"), onehot, probs),
    ("scce_logits", "sparse_categorical_crossentropy", "SparseCategoricalCrossentropy",
     dict(from_logits=True), sparse, logits),
    ("scce_ignore", "sparse_categorical_crossentropy", "SparseCategoricalCrossentropy",
     dict(ignore_class=1), sparse_ignored, probs),
    ("scce_logits_ignore", "sparse_categorical_crossentropy", "SparseCategoricalCrossentropy",
     dict(from_logits=True, ignore_class=2), sparse, logits),
    ("bce_logits", "binary_crossentropy", "BinaryCrossentropy", dict(from_logits=True), binary, logits),
    ("bce_ls", "binary_crossentropy", "BinaryCrossentropy", dict(label_smoothing=0.1), binary, sig),
    ("bce_logits_ls", "binary_crossentropy", "BinaryCrossentropy",
     dict(from_logits=True, label_smoothing=0.3), binary, logits),
    ("bce_sum", "binary_crossentropy", "BinaryCrossentropy", dict(reduction="sum"), binary, sig),
    ("bfce", "binary_focal_crossentropy", "BinaryFocalCrossentropy", dict(), binary, sig),
    ("bfce_balanced", "binary_focal_crossentropy", "BinaryFocalCrossentropy",
     dict(apply_class_balancing=True, alpha=0.3, gamma=1.5), binary, sig),
    ("bfce_logits_ls", "binary_focal_crossentropy", "BinaryFocalCrossentropy",
     dict(from_logits=True, label_smoothing=0.1, apply_class_balancing=True), binary, logits),
    ("cfce", "categorical_focal_crossentropy", "CategoricalFocalCrossentropy", dict(), onehot, probs),
    ("cfce_logits_ls", "categorical_focal_crossentropy", "CategoricalFocalCrossentropy",
     dict(from_logits=True, label_smoothing=0.1, gamma=3.0, alpha=0.5), onehot, logits),
    ("mse_sum", "mean_squared_error", "MeanSquaredError", dict(reduction="sum"), real, real),
    ("mae", "mean_absolute_error", "MeanAbsoluteError", dict(), real, real),
    ("mape", "mean_absolute_percentage_error", "MeanAbsolutePercentageError", dict(), positive, real),
    ("msle", "mean_squared_logarithmic_error", "MeanSquaredLogarithmicError", dict(), positive, positive),
    ("huber", "huber", "Huber", dict(), real, real),
    ("huber_delta", "huber", "Huber", dict(delta=0.4), real, real),
    ("log_cosh", "log_cosh", "LogCosh", dict(), real, real),
    ("kld", "kl_divergence", "KLDivergence", dict(), soft, probs),
    ("poisson", "poisson", "Poisson", dict(), positive, positive),
    ("hinge_binary", "hinge", "Hinge", dict(), binary, real),
    ("hinge_signed", "hinge", "Hinge", dict(), lambda: 2 * binary() - 1, real),
    ("squared_hinge", "squared_hinge", "SquaredHinge", dict(), binary, real),
    ("categorical_hinge", "categorical_hinge", "CategoricalHinge", dict(), onehot, real),
    ("cosine_similarity", "cosine_similarity", "CosineSimilarity", dict(), real, real),
]


def fmt(a):
    return " ".join("%.9g" % v for v in np.asarray(a, dtype="float64").ravel())


def spec_line(fn, kw):
    return "spec %s %d %.9g %d %d %.9g %.9g %.9g %d %s" % (
        fn, int(kw.get("from_logits", False)), kw.get("label_smoothing", 0.0),
        int("ignore_class" in kw), kw.get("ignore_class", 0), kw.get("gamma", 0.0),
        kw.get("alpha", 0.0), kw.get("delta", 0.0), int(kw.get("apply_class_balancing", False)),
        kw.get("reduction", "sum_over_batch_size"))


def cases():
    lines = ["# Keras %s, JAX %s" % (keras.__version__, jax.__version__)]
    for name, fn, cls, kw, yt_f, yp_f in CASES:
        yt, yp = yt_f(), yp_f()
        loss = getattr(keras.losses, cls)(**kw)
        value, grad = jax.value_and_grad(lambda p: loss(yt, p))(yp)
        is_sparse = yt.ndim == 1
        lines += ["case " + name, spec_line(fn, kw), "shape %d %d %d" % (B, C, is_sparse),
                  "y_true " + fmt(yt), "y_pred " + fmt(yp), "value " + fmt([value]),
                  "grad " + fmt(grad)]
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def keras_file():
    keras.utils.set_random_seed(3)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"),
                          keras.layers.Dense(3)])
    m.compile(optimizer=keras.optimizers.SGD(0.1),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.uniform(-1, 1, (6, 4)).astype("float32")
    y = np.array([0, 1, 2, 2, 1, 0], dtype="float32")
    m.save(os.path.join(OUT, "sparse_logits.keras"))
    loss = m.train_on_batch(x, y)
    w = np.concatenate([v.ravel() for v in m.get_weights()])
    with open(os.path.join(OUT, "sparse_logits.txt"), "w") as f:
        f.write("# Keras %s, JAX %s: one train_on_batch of sparse_logits.keras\n"
                % (keras.__version__, jax.__version__))
        f.write("x %s\ny %s\nloss %s\nafter %d %s\n" % (fmt(x), fmt(y), fmt([loss]), w.size, fmt(w)))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    cases()
    keras_file()
