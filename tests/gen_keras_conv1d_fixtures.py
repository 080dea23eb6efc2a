#!/usr/bin/env python3
"""gen_keras_conv1d_fixtures.py: Keras reference fixtures for Conv1D, MaxPooling1D,
AveragePooling1D, GlobalMaxPooling1D, GlobalAveragePooling1D (with a mask), RepeatVector,
Permute and Dense / Activation on (steps, features) inputs, checked by tests/test_conv1d.c.

How to run (from the repository root):
    KERAS_BACKEND=jax python3 tests/gen_keras_conv1d_fixtures.py          # Keras 3 (jax)
    python3-with-tf2.15 tests/gen_keras_conv1d_fixtures.py tf2            # tf.keras 2 file
    KERAS_BACKEND=jax python3 tests/gen_keras_conv1d_fixtures.py check FILE  # a kerac save
It rewrites tests/fixtures/keras_conv1d/:
  <case>.txt, <case>.json: one layer on a small batch, model = Sequential([Input(shape),
    layer, Flatten()]), loss mean_squared_error. Tensors (format of gen_keras_fixtures.py:
    "tensor <name> <count>" then the floats): x, weights (the layer's, Keras's order, flat),
    y, output, loss, dx (d loss / d x), grads (d loss / d weights), stepped (the layer's
    weights after one model.train_on_batch with SGD(0.1)).
  gap1d_mask.txt: GlobalAveragePooling1D called with a mask: x, mask (0/1), y, output, loss
    (MSE), dx.
  seq_model.keras, seq_model.k3.h5 (Keras 3), seq_model.tf2.h5 (tf.keras 2) and
    seq_model.txt / seq_model.tf2.txt: x and the model's predictions.
"check FILE" loads a model kerac saved (seq_model's architecture and weights) in Keras 3 (or,
run by tf.keras 2's python, a kerac .h5 in tf.keras 2) and compares its predictions on
seq_model.txt's x with the fixture's. kerac's saves come from
    KERAC_CONV1D_OUT=DIR build/tests/test_conv1d --filter 'conv1d_files/*'
(DIR/kerac_seq_model<i>.keras and .h5: the model loaded from seq_model.keras, .k3.h5 and
.tf2.h5, saved again by kerac).
"""
import os
import sys

MODE = sys.argv[1] if len(sys.argv) > 1 else "k3"
if MODE != "tf2":
    os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras_conv1d")
BATCH = 2


def write_tensor(f, name, values):
    values = np.asarray(values, dtype=np.float32).ravel()
    f.write(f"tensor {name} {values.size}\n")
    for i in range(0, values.size, 8):
        f.write(" ".join("%.9g" % v for v in values[i:i + 8]) + "\n")


def read_tensors(path):
    out, name, vals = {}, None, []
    for line in open(path):
        if line.startswith("#"):
            continue
        if line.startswith("tensor "):
            _, name, _n = line.split()
            out[name] = vals = []
        else:
            vals.extend(float(v) for v in line.split())
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def seq_model(keras):
    L = keras.layers
    inp = keras.Input((16, 4))
    h = L.Conv1D(6, 3, padding="causal", dilation_rate=2, activation="relu")(inp)
    h = L.MaxPooling1D(2)(h)                                          # (8, 6)
    h = L.Conv1D(5, 3, strides=2, padding="same", activation="tanh")(h)  # (4, 5)
    h = L.AveragePooling1D(2, strides=1, padding="same")(h)           # (4, 5)
    h = L.Permute((2, 1))(h)                                          # (5, 4)
    h = L.Dense(3)(h)                                                 # (5, 3)
    a = L.GlobalAveragePooling1D()(h)                                 # (3,)
    h = L.RepeatVector(4)(a)                                          # (4, 3)
    h = L.Conv1D(2, 2, use_bias=False)(h)                             # (3, 2)
    h = L.GlobalMaxPooling1D(keepdims=True)(h)                        # (1, 2)
    h = L.Flatten()(h)
    out = L.Dense(3, activation="softmax")(h)
    return keras.Model(inp, out, name="seq_model")


def set_weights(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in ws])


def model_files(keras, tag):
    model = seq_model(keras)
    set_weights(model, 7)
    x = np.random.default_rng(8).normal(0, 1, (3, 16, 4)).astype(np.float32)
    pred = np.asarray(model.predict(x, verbose=0))
    os.makedirs(OUT_DIR, exist_ok=True)
    base = os.path.join(OUT_DIR, "seq_model")
    if tag == "k3":
        model.save(base + ".keras")
        from keras.src.legacy.saving import legacy_h5_format
        legacy_h5_format.save_model_to_hdf5(model, base + ".k3.h5")
        txt = base + ".txt"
    else:
        model.save(base + ".tf2.h5", save_format="h5")
        txt = base + ".tf2.txt"
    with open(txt, "w") as f:
        version = getattr(keras, "__version__", "tf.keras 2")
        f.write(f"# seq_model: keras {version}\n")
        write_tensor(f, "x", x)
        write_tensor(f, "output", pred)
    print(f"seq_model ({tag}): predictions {pred.shape}")


def main_tf2():
    from tensorflow import keras
    model_files(keras, "tf2")


def main_check(path):
    import keras
    model = keras.models.load_model(path)
    t = read_tensors(os.path.join(OUT_DIR, "seq_model.txt"))
    x = t["x"].reshape(-1, 16, 4)
    got = np.asarray(model.predict(x, verbose=0)).ravel()
    err = np.max(np.abs(got - t["output"]) / np.maximum(np.abs(t["output"]), 1e-3))
    print(f"{path}: {len(model.layers)} layers, max relative difference {err:.3g}")
    if err > 1e-5:
        raise SystemExit("FAIL")
    print("PASS")


def main_k3():
    import jax
    import keras
    L = keras.layers
    # name -> (input shape, layer factory, ties); tests/test_conv1d.c builds the same layers
    cases = {
        "conv1d_valid": ((7, 3), lambda: L.Conv1D(4, 3, activation="relu"), False),
        "conv1d_same_strided": ((8, 3), lambda: L.Conv1D(
            3, 3, strides=2, padding="same", activation="tanh"), False),
        "conv1d_same_wide": ((6, 8), lambda: L.Conv1D(3, 3, padding="same"), False),
        "conv1d_causal_dilated": ((9, 2), lambda: L.Conv1D(
            3, 3, padding="causal", dilation_rate=2, activation="sigmoid"), False),
        "conv1d_causal_strided_nobias": ((7, 2), lambda: L.Conv1D(
            2, 2, strides=3, padding="causal", use_bias=False), False),
        "conv1d_valid_dilated": ((10, 6), lambda: L.Conv1D(2, 3, dilation_rate=3), False),
        "max_pool1d": ((7, 3), lambda: L.MaxPooling1D(2), True),
        "max_pool1d_same_s1": ((5, 2), lambda: L.MaxPooling1D(3, strides=1, padding="same"),
                               False),
        "avg_pool1d_same": ((7, 2), lambda: L.AveragePooling1D(3, padding="same"), False),
        "avg_pool1d_valid_s1": ((6, 2), lambda: L.AveragePooling1D(2, strides=1), False),
        "gmp1d": ((5, 3), lambda: L.GlobalMaxPooling1D(), True),
        "gmp1d_keepdims": ((4, 2), lambda: L.GlobalMaxPooling1D(keepdims=True), False),
        "gap1d": ((5, 3), lambda: L.GlobalAveragePooling1D(), False),
        "gap1d_keepdims": ((4, 2), lambda: L.GlobalAveragePooling1D(keepdims=True), False),
        "repeat_vector": ((4,), lambda: L.RepeatVector(3), False),
        "permute_21": ((3, 4), lambda: L.Permute((2, 1)), False),
        "permute_312": ((2, 3, 4), lambda: L.Permute((3, 1, 2)), False),
        "dense_seq": ((4, 3), lambda: L.Dense(5, activation="tanh"), False),
        "dense_seq_softmax": ((3, 4), lambda: L.Dense(3, activation="softmax"), False),
        "activation_seq_softmax": ((3, 4), lambda: L.Activation("softmax"), False),
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    mse = keras.losses.MeanSquaredError()
    for seed, (name, (shape, make, ties)) in enumerate(cases.items()):
        rng = np.random.default_rng(300 + seed)
        layer = make()
        model = keras.Sequential([keras.Input(shape), layer, L.Flatten()])
        weights = [rng.normal(0.0, 0.4, w.shape).astype(np.float32) for w in layer.get_weights()]
        layer.set_weights(weights)
        if ties:
            x = rng.integers(-2, 3, (BATCH,) + shape).astype(np.float32) * 0.5
        else:
            x = rng.normal(0.0, 1.0, (BATCH,) + shape).astype(np.float32)
        output = np.asarray(model(x))
        y = rng.normal(0.0, 0.5, output.shape).astype(np.float32)
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def f(xs, tw):
            out, _ = model.stateless_call(tw, non_trainable, xs)
            return mse(y, out)

        loss, (dx, grads) = jax.value_and_grad(f, argnums=(0, 1))(x, trainable)
        stepped = None
        if weights:
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mean_squared_error")
            model.train_on_batch(x, y)
            stepped = np.concatenate([w.ravel() for w in layer.get_weights()])
        with open(os.path.join(OUT_DIR, name + ".txt"), "w") as out:
            out.write(f"# {name}: keras {keras.__version__}, jax {jax.__version__}, seed "
                      f"{300 + seed}; {layer.__class__.__name__} on {shape}, output "
                      f"{output.shape[1:]}\n")
            write_tensor(out, "x", x)
            if weights:
                write_tensor(out, "weights", np.concatenate([w.ravel() for w in weights]))
            write_tensor(out, "y", y)
            write_tensor(out, "output", output)
            write_tensor(out, "loss", [np.float32(loss)])
            write_tensor(out, "dx", np.asarray(dx))
            if grads:
                write_tensor(out, "grads", np.concatenate([np.asarray(g).ravel() for g in grads]))
                write_tensor(out, "stepped", stepped)
        with open(os.path.join(OUT_DIR, name + ".json"), "w") as out:
            out.write(model.to_json() + "\n")
        print(f"{name}: output {output.shape}, loss {float(loss):.6f}")

    # GlobalAveragePooling1D with a mask: the mean of the unmasked steps
    rng = np.random.default_rng(400)
    x = rng.normal(0, 1, (3, 5, 3)).astype(np.float32)
    mask = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool)
    layer = L.GlobalAveragePooling1D()
    y = rng.normal(0, 0.5, (3, 3)).astype(np.float32)

    def g(xs):
        return mse(y, layer(xs, mask=mask))

    out = np.asarray(layer(x, mask=mask))
    loss, dx = jax.value_and_grad(g)(x)
    assert layer.compute_mask(x, mask) is None and layer.supports_masking
    assert not L.GlobalMaxPooling1D().supports_masking
    with open(os.path.join(OUT_DIR, "gap1d_mask.txt"), "w") as f:
        f.write(f"# gap1d_mask: keras {keras.__version__}; GlobalAveragePooling1D(x, mask)\n")
        write_tensor(f, "x", x)
        write_tensor(f, "mask", mask.astype(np.float32))
        write_tensor(f, "y", y)
        write_tensor(f, "output", out)
        write_tensor(f, "loss", [np.float32(loss)])
        write_tensor(f, "dx", np.asarray(dx))
    print("gap1d_mask:", out.shape)
    model_files(keras, "k3")


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore")
    if MODE == "tf2":
        main_tf2()
    elif MODE == "check":
        main_check(sys.argv[2])
    else:
        main_k3()
