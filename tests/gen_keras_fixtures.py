#!/usr/bin/env python3
"""gen_keras_fixtures.py: writes the Keras 3 reference fixtures that tests/test_keras_ref.c checks.

How to run (from the repository root):
    pip install keras jax
    KERAS_BACKEND=jax python3 tests/gen_keras_fixtures.py
It rewrites tests/fixtures/keras/<case>.txt. Everything is float32 with fixed numpy seeds, so a
rerun with the same Keras and JAX versions gives the same files (up to JAX's float rounding).

Each file is plain text that C parses line by line:
    # comment lines (the Keras and JAX versions)
    layers <n>
    layer dense <in> <units> <activation>      (one line per layer, in model order)
    layer activation <activation>
    loss <keras loss name>
    batch <n>
    tensor <name> <count>
    <count floats, %.9g, whitespace separated, over as many lines as needed>
    ... more tensors
Tensors: weights (flat, Keras order: per layer kernel (in, units) row-major, then bias), x, y
(class indices as floats for the sparse loss), output (model(x, training=False)), loss (the
batch mean, as compile's loss reduces), grads (d loss / d weights, same order as weights),
train_loss (what the first train_on_batch returns: the loss before the step), and after_<opt>
(the weights after one, or with a _<n> suffix n, train_on_batch calls on the same batch).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

if keras.backend.backend() != "jax":
    raise SystemExit("run with KERAS_BACKEND=jax")

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras")

# (name, input size, layers, loss, target kind, weight scale). A layer is ("dense", units, act)
# or ("activation", act). Target kinds: onehot, sparse, binary, real.
CASES = [
    ("mlp_cce", 6, [("dense", 5, "relu"), ("dense", 4, "tanh"), ("dense", 3, "softmax")],
     "categorical_crossentropy", "onehot", 1.0),
    ("mlp_sparse", 6, [("dense", 5, "sigmoid"), ("dense", 3, "softmax")],
     "sparse_categorical_crossentropy", "sparse", 1.0),
    ("mlp_bce", 5, [("dense", 4, "tanh"), ("dense", 1, "sigmoid")],
     "binary_crossentropy", "binary", 1.0),
    ("mlp_mse", 5, [("dense", 4, "relu"), ("dense", 2, "linear")],
     "mean_squared_error", "real", 1.0),
    # Large weights (x10: x100 underflows probabilities to exactly 0) saturate the softmax, so
    # categorical_crossentropy's clip to [epsilon, 1 - epsilon] decides the loss of a sample
    # and zeroes its gradient (a fused softmax + crossentropy gradient p - y would not).
    ("softmax_clip", 4, [("dense", 3, "softmax")], "categorical_crossentropy", "clip", 10.0),
    ("activation_layer", 4, [("dense", 3, "linear"), ("activation", "softmax")],
     "categorical_crossentropy", "onehot", 1.0),
]

# (tensor name, optimizer factory, number of train_on_batch calls)
OPTIMIZERS = [
    ("after_sgd", lambda: keras.optimizers.SGD(), 1),
    ("after_sgd_momentum_2", lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9), 2),
    ("after_sgd_nesterov_2",
     lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True), 2),
    ("after_rmsprop_2", lambda: keras.optimizers.RMSprop(), 2),
    ("after_adam_2", lambda: keras.optimizers.Adam(), 2),
    # Three steps: Nadam's u_product and the step counts differ from step to step, and each
    # layer of a step must use the same ones. Adadelta's default learning rate (0.001) moves a
    # weight by ~1e-7 of itself, inside the tolerance; the paper's 1.0 shows its rule. AdamW's
    # default decay (4e-6 of a weight a step) is close to the tolerance too, hence a second,
    # stronger one.
    ("after_adadelta_3", lambda: keras.optimizers.Adadelta(learning_rate=1.0), 3),
    ("after_adagrad_3", lambda: keras.optimizers.Adagrad(), 3),
    ("after_nadam_3", lambda: keras.optimizers.Nadam(), 3),
    ("after_adamw_3", lambda: keras.optimizers.AdamW(), 3),
    ("after_adamw_decay_3",
     lambda: keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1), 3),
]

LOSS_CLASSES = {
    "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
    "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
    "binary_crossentropy": keras.losses.BinaryCrossentropy,
    "mean_squared_error": keras.losses.MeanSquaredError,
}
BATCH = 4
EPS = keras.backend.epsilon()


def build_model(n_in, layers):
    model = keras.Sequential([keras.Input((n_in,))])
    for spec in layers:
        if spec[0] == "dense":
            model.add(keras.layers.Dense(spec[1], activation=spec[2]))
        else:
            model.add(keras.layers.Activation(spec[1]))
    return model


def make_weights(rng, model, scale):
    # Normal kernels and small nonzero biases, so the bias path is exercised too.
    weights = []
    for w in model.get_weights():
        std = 0.6 if w.ndim == 2 else 0.2
        weights.append((rng.normal(0.0, std, w.shape) * scale).astype(np.float32))
    return weights


def probs(n_in, layers, weights, x):
    model = build_model(n_in, layers)
    model.set_weights(weights)
    return np.asarray(model(x, training=False))


def make_targets(rng, kind, n_in, layers, weights, x):
    units = [s[1] for s in layers if s[0] == "dense"][-1]
    if kind in ("onehot", "sparse"):
        labels = rng.integers(0, units, BATCH)
        return np.eye(units, dtype=np.float32)[labels] if kind == "onehot" else \
            labels.astype(np.float32)
    if kind == "binary":
        return np.array([[0], [1], [1], [0]], dtype=np.float32)
    if kind == "real":
        return rng.normal(0.0, 1.0, (BATCH, units)).astype(np.float32)
    # clip: even samples take their least likely class when it lies clearly inside the clipped
    # range (p < epsilon / 10), the others (and even ones without such a class) the least likely
    # class that is clearly unclipped (p in [10 epsilon, 1 - 10 epsilon]), so that float
    # rounding cannot move a sample across the clip boundary. Needs one sample of each kind.
    p = probs(n_in, layers, weights, x)
    labels, clipped = [], []
    for i, row in enumerate(p):
        low = int(np.argmin(row))
        moderate = [j for j in np.argsort(row) if 10 * EPS <= row[j] <= 1 - 10 * EPS]
        if i % 2 == 0 and row[low] < EPS / 10:
            labels.append(low)
            clipped.append(True)
        elif moderate:
            labels.append(moderate[0])
            clipped.append(False)
        else:
            raise SystemExit(f"softmax_clip: sample {i} has no suitable class: {row}")
    if all(clipped) or not any(clipped):
        raise SystemExit(f"softmax_clip: need clipped and unclipped samples: {p}")
    return np.eye(p.shape[1], dtype=np.float32)[labels]


def loss_and_grads(model, loss_name, x, y):
    """The compiled loss (mean over the batch) and its gradient, via a stateless JAX call."""
    # compile("name") wraps the per-sample function as these classes do: batch sum / batch size.
    reducer = LOSS_CLASSES[loss_name]()
    non_trainable = [v.value for v in model.non_trainable_variables]

    def f(trainable):
        out, _ = model.stateless_call(trainable, non_trainable, x, training=False)
        return reducer(y, out)

    loss, grads = jax.value_and_grad(f)([v.value for v in model.trainable_variables])
    return np.float32(loss), np.concatenate([np.asarray(g).ravel() for g in grads])


def flat(arrays):
    return np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in arrays])


def write_tensor(f, name, values):
    values = np.asarray(values, dtype=np.float32).ravel()
    f.write(f"tensor {name} {values.size}\n")
    for i in range(0, values.size, 8):
        f.write(" ".join("%.9g" % v for v in values[i:i + 8]) + "\n")


def generate(seed, case):
    name, n_in, layers, loss_name, kind, scale = case
    rng = np.random.default_rng(seed)
    model = build_model(n_in, layers)
    weights = make_weights(rng, model, scale)
    model.set_weights(weights)
    x = rng.normal(0.0, 1.0, (BATCH, n_in)).astype(np.float32)
    y = make_targets(rng, kind, n_in, layers, weights, x)
    y_keras = y.astype(np.int32) if kind == "sparse" else y

    output = np.asarray(model(x, training=False))
    loss, grads = loss_and_grads(model, loss_name, x, y_keras)

    after = {}
    train_losses = []
    for tname, make_opt, steps in OPTIMIZERS:
        m = build_model(n_in, layers)
        m.set_weights(weights)
        m.compile(optimizer=make_opt(), loss=loss_name)
        for step in range(steps):
            step_loss = float(m.train_on_batch(x, y_keras))
            if step == 0:
                train_losses.append(step_loss)
        after[tname] = flat(m.get_weights())
    # Every optimizer's first step sees the same weights, so the same loss; and it is the loss
    # computed above (up to JIT rounding) since these models have no dropout.
    assert max(train_losses) - min(train_losses) <= 1e-6 * max(1.0, abs(loss)), train_losses
    assert abs(train_losses[0] - loss) <= 1e-5 * max(1.0, abs(loss)), (train_losses[0], loss)

    if kind == "clip":
        p = output[np.arange(BATCH), y.argmax(axis=1)]
        for i, pi in enumerate(p):
            state = "clipped" if pi < EPS or pi > 1 - EPS else "not clipped"
            print(f"  softmax_clip sample {i}: p(true class) = {pi:.3g} ({state})")

    # Adam and RMSprop divide by |g| + epsilon, so a gradient near epsilon makes their first
    # step sensitive to the gradient's last bits; say so rather than ship a fragile fixture.
    fragile = np.flatnonzero((np.abs(grads) > 1e-12) & (np.abs(grads) < 1e-5))
    if fragile.size:
        print(f"  warning: {name}: {fragile.size} gradients in (1e-12, 1e-5): {grads[fragile]}")

    path = os.path.join(OUT_DIR, name + ".txt")
    with open(path, "w") as f:
        f.write(f"# kerac reference fixture '{name}', written by tests/gen_keras_fixtures.py\n")
        f.write(f"# keras {keras.__version__}, jax {jax.__version__}, backend jax, seed {seed}\n")
        f.write(f"layers {len(layers)}\n")
        width = n_in
        for spec in layers:
            if spec[0] == "dense":
                f.write(f"layer dense {width} {spec[1]} {spec[2]}\n")
                width = spec[1]
            else:
                f.write(f"layer activation {spec[1]}\n")
        f.write(f"loss {loss_name}\nbatch {BATCH}\n")
        write_tensor(f, "weights", flat(weights))
        write_tensor(f, "x", x)
        write_tensor(f, "y", y)
        write_tensor(f, "output", output)
        write_tensor(f, "loss", [loss])
        write_tensor(f, "grads", grads)
        write_tensor(f, "train_loss", [train_losses[0]])
        for tname, _, _ in OPTIMIZERS:
            write_tensor(f, tname, after[tname])
    print(f"wrote {path} ({os.path.getsize(path)} bytes), loss {loss:.9g}")


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for seed, case in enumerate(CASES, start=1):
        generate(seed, case)


if __name__ == "__main__":
    main()
