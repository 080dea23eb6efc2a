#!/usr/bin/env python3
"""gen_keras_initreg_files.py: fixtures for tests/test_initreg.c (initializers, regularizers,
use_bias=False) written by real Keras.

    KERAS_BACKEND=jax /work/venvs/k3/bin/python tests/gen_keras_initreg_files.py keras3
    /work/venvs/tf2/bin/python tests/gen_keras_initreg_files.py tf2
    KERAS_BACKEND=jax /work/venvs/k3/bin/python tests/gen_keras_initreg_files.py check
    /work/venvs/tf2/bin/python tests/gen_keras_initreg_files.py check-tf2

check and check-tf2 run build/tools/write_initreg_models (tests/tools/write_initreg_models.c)
and load its .keras and .h5 files in Keras 3 (both) and tf.keras 2 (.h5): the predictions must
match kerac's, and one more SGD step from the loaded model (the weight regularizers' gradients
included) must reach kerac's weights.

keras3 writes tests/fixtures/saved/k3_initreg.keras: Dense(5, tanh, use_bias=False,
kernel_initializer=HeNormal(seed=1), kernel_regularizer=L2(0.01)) -> Dense(3, softmax,
kernel_initializer="orthogonal", bias_initializer=Constant(0.1), bias_regularizer=L1(0.01)),
SGD(0.1), categorical crossentropy; and k3_initreg.json: the inputs x, targets y, Keras's
predictions, the weights after one train_on_batch (the regularizers' gradients included), that
step's loss (the mean crossentropy plus the penalties, before the step) and the penalties it
holds, and the config of a second model (model.to_json()) using every initializer and
regularizer form, for kerac to parse. It also checks, with asserts, the semantics kerac
documents: the weight penalties enter the loss as they are, an activity regularizer's penalty
divided by the batch size.

tf2 adds "tf2_config" to the same json: the model_config of that second model saved by
tf.keras 2 as a legacy .h5 (its {"class_name", "config"} forms), and checks the same
activity-regularizer semantics.

The .keras zip is rewritten with deflate compression (its entries byte for byte as Keras wrote
them) to keep the fixture small.
"""
import json
import os
import sys
import tempfile
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "saved")
JSON = os.path.join(OUT, "k3_initreg.json")
N = 8


def data():
    x = np.array([[((i * 7 + j * 5) % 13) / 13.0 - 0.3 for j in range(4)] for i in range(N)],
                 dtype=np.float32)
    y = np.array([[float((i + i // 3) % 3 == j) for j in range(3)] for i in range(N)],
                 dtype=np.float32)
    return x, y


def main_model(keras):
    L, I, R = keras.layers, keras.initializers, keras.regularizers
    m = keras.Sequential([
        L.Input((4,)),
        L.Dense(5, activation="tanh", use_bias=False, kernel_initializer=I.HeNormal(seed=1),
                kernel_regularizer=R.L2(0.01)),
        L.Dense(3, activation="softmax", kernel_initializer="orthogonal",
                bias_initializer=I.Constant(0.1), bias_regularizer=R.L1(0.01)),
    ])
    m.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(0.1))
    return m


def config_model(keras):
    """every initializer and regularizer form, for the parser (not trained)"""
    L, I, R = keras.layers, keras.initializers, keras.regularizers
    return keras.Sequential([
        L.Input((6, 6, 2)),
        L.Conv2D(4, 3, use_bias=False, kernel_initializer=I.VarianceScaling(
            2.0, "fan_out", "untruncated_normal", seed=7), kernel_regularizer=R.L1L2(0.01, 0.02),
                 activity_regularizer="l2"),
        L.Conv2D(3, 2, kernel_initializer="lecun_uniform", bias_initializer="ones",
                 bias_regularizer=R.L2(0.5)),
        L.Flatten(),
        L.Dense(6, kernel_initializer=I.RandomUniform(-0.2, 0.3, seed=3),
                bias_initializer=I.RandomNormal(0.5, 0.25), activity_regularizer=R.L1(0.02)),
        L.Dense(6, kernel_initializer=I.Identity(gain=2.0), bias_initializer="zeros",
                kernel_regularizer="l1"),
        L.Dense(4, kernel_initializer=I.Orthogonal(gain=1.5, seed=2),
                bias_initializer=I.TruncatedNormal(0.0, 0.1), use_bias=True),
        L.Dense(3, kernel_initializer="glorot_normal", bias_initializer=I.Constant(-0.25)),
        L.Dense(2, kernel_initializer="he_uniform", use_bias=False),
        L.Dense(2, kernel_initializer="lecun_normal", bias_initializer="he_normal"),
    ])


def keras3():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    x, y = data()
    keras.utils.set_random_seed(5)
    m = main_model(keras)
    path = os.path.join(OUT, "k3_initreg.keras")
    with tempfile.TemporaryDirectory() as d:
        raw = os.path.join(d, "m.keras")
        m.save(raw)
        with zipfile.ZipFile(raw) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED,
                                                          compresslevel=9) as dst:
            for info in src.infolist():
                dst.writestr(info.filename, src.read(info.filename))
    pred = m.predict(x, verbose=0)
    k1 = np.asarray(m.layers[0].kernel)
    b2 = np.asarray(m.layers[1].bias)
    penalty = 0.01 * float(np.sum(k1.astype(np.float64) ** 2)) + 0.01 * float(
        np.sum(np.abs(b2.astype(np.float64))))
    mean_loss = float(np.mean(keras.losses.categorical_crossentropy(y, pred)))
    loss = float(m.train_on_batch(x, y))
    # the loss Keras reports is the mean loss plus the penalties, not scaled by the batch
    assert abs(loss - (mean_loss + penalty)) < 1e-5, (loss, mean_loss, penalty)
    after = np.concatenate([np.asarray(w).reshape(-1) for w in m.get_weights()])

    # an activity regularizer's penalty is divided by the batch size
    L = keras.layers
    a = keras.Sequential([L.Input((4,)), L.Dense(3, kernel_initializer="ones",
                                                  activity_regularizer=keras.regularizers.L2(0.1))])
    a.compile(loss="mse", optimizer="sgd")
    out = a.predict(x, verbose=0)
    mse = float(np.mean((out - y) ** 2))
    act = 0.1 * float(np.sum(out.astype(np.float64) ** 2)) / N
    ev = float(a.evaluate(x, y, batch_size=N, verbose=0))
    assert abs(ev - (mse + act)) < 1e-4 * max(1.0, ev), (ev, mse, act)

    d = {"keras": keras.__version__, "x": x.reshape(-1).tolist(), "y": y.reshape(-1).tolist(),
         "pred": pred.reshape(-1).tolist(), "after_step": after.tolist(),
         "loss": loss, "mean_loss": mean_loss, "penalty": penalty,
         "activity": {"mse": mse, "penalty_over_batch": act, "evaluate_loss": ev},
         "k3_config": config_model(keras).to_json()}
    if os.path.exists(JSON):
        old = json.load(open(JSON))
        for k in ("tf2_config", "tensorflow"):
            if k in old:
                d[k] = old[k]
    with open(JSON, "w") as f:
        json.dump(d, f)
    print("wrote Keras", keras.__version__, "initializer/regularizer fixtures to", OUT,
          f"(loss {loss:.6f} = mean {mean_loss:.6f} + penalty {penalty:.6f};",
          f"activity: evaluate {ev:.6f} = mse {mse:.6f} + penalty/batch {act:.6f})")


def tf2():
    import tensorflow as tf

    keras = tf.keras
    d = json.load(open(JSON))
    x, y = data()
    # the same activity-regularizer semantics in tf.keras 2
    L = keras.layers
    a = keras.Sequential([L.Input((4,)), L.Dense(3, kernel_initializer="ones",
                                                  activity_regularizer=keras.regularizers.L2(0.1))])
    a.compile(loss="mse", optimizer="sgd")
    out = a.predict(x, verbose=0)
    mse = float(np.mean((out - y) ** 2))
    act = 0.1 * float(np.sum(out.astype(np.float64) ** 2)) / N
    ev = float(a.evaluate(x, y, batch_size=N, verbose=0))
    assert abs(ev - (mse + act)) < 1e-4 * max(1.0, ev), (ev, mse, act)
    # a legacy .h5 file's model_config, its initializers and regularizers in tf.keras 2's
    # legacy {"class_name", "config"} form (serialize(..., use_legacy_format=True), as
    # tf.keras before 2.13 wrote them)
    import h5py

    m = config_model(keras)
    with tempfile.TemporaryDirectory() as tmp:
        h5 = os.path.join(tmp, "m.h5")
        m.save(h5)
        with h5py.File(h5, "r") as f:
            cfg = f.attrs["model_config"]
    cfg = json.loads(cfg.decode() if isinstance(cfg, bytes) else str(cfg))
    entries = [e for e in cfg["config"]["layers"] if e["class_name"] != "InputLayer"]
    assert len(entries) == len(m.layers)
    for layer, e in zip(m.layers, entries):
        c = e["config"]
        for name in ("kernel_initializer", "bias_initializer"):
            if name in c:
                c[name] = keras.initializers.serialize(getattr(layer, name),
                                                       use_legacy_format=True)
        for name in ("kernel_regularizer", "bias_regularizer", "activity_regularizer"):
            if c.get(name) is not None:
                c[name] = keras.regularizers.serialize(getattr(layer, name),
                                                       use_legacy_format=True)
    d["tf2_config"] = json.dumps(cfg)
    d["tensorflow"] = tf.__version__
    with open(JSON, "w") as f:
        json.dump(d, f)
    print("added tf.keras", tf.__version__, "config to", JSON,
          f"(activity: evaluate {ev:.6f} = mse {mse:.6f} + penalty/batch {act:.6f})")


def kerac_files(d):
    import subprocess

    subprocess.run(["make", "-s", "-C", ROOT, "build/tools/write_initreg_models"], check=True)
    subprocess.run([os.path.join(ROOT, "build", "tools", "write_initreg_models"), d], check=True)
    e = json.load(open(os.path.join(d, "kerac_initreg.json")))
    x = np.array(e["x"], dtype=np.float32).reshape(-1, 5, 5, 2)
    y = np.array(e["y"], dtype=np.float32).reshape(-1, 3)
    return e, x, y


def check_loaded(name, m, e, x, y, ext, worst):
    key = "pred_act" if name.endswith("_act") else "pred"
    diff = float(np.abs(m.predict(x, verbose=0) - np.array(e[key]).reshape(-1, 3)).max())
    line = f"{name}{ext}: loads, max |pred diff| {diff:.3g}"
    worst = max(worst, diff)
    if key == "pred":
        m.train_on_batch(x, y)
        w = np.concatenate([np.asarray(v).reshape(-1) for v in m.get_weights()])
        sd = float(np.abs(w - np.array(e["after_step"])).max())
        worst = max(worst, sd)
        line += f"; one more SGD step with the regularizers: max |weight diff| {sd:.3g}"
    print(line)
    return worst


def check():
    """Keras 3 loads kerac's files: the same predictions, the same regularized SGD step"""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    worst = 0.0
    with tempfile.TemporaryDirectory() as d:
        e, x, y = kerac_files(d)
        for name in ("kerac_initreg", "kerac_initreg_act"):
            for ext in (".keras", ".h5"):
                m = keras.saving.load_model(os.path.join(d, name + ext))
                if ext == ".keras":
                    c = m.layers[0].get_config()
                    assert c["use_bias"] is False and c["kernel_initializer"]["class_name"] == \
                        "Orthogonal", c
                    assert type(m.layers[2].kernel_regularizer).__name__ == "L1L2"
                    if name.endswith("_act"):
                        assert type(m.layers[0].activity_regularizer).__name__ == "L1"
                if ext == ".h5":
                    # Keras 3's own legacy .h5 files with a stateless SGD cannot train after
                    # loading (the optimizer is built with 0 variables); SGD(0.1) without
                    # momentum has no state, so a fresh one takes the same step
                    m.compile(loss="categorical_crossentropy",
                              optimizer=keras.optimizers.SGD(0.1))
                worst = check_loaded(name, m, e, x, y, ext, worst)
    print("check:", "PASS" if worst < 1e-5 else "FAIL", f"(Keras {keras.__version__}, worst {worst:.3g})")
    return worst < 1e-5


def check_tf2():
    """tf.keras 2 loads kerac's legacy .h5 files"""
    import tensorflow as tf

    worst = 0.0
    with tempfile.TemporaryDirectory() as d:
        e, x, y = kerac_files(d)
        for name in ("kerac_initreg", "kerac_initreg_act"):
            m = tf.keras.models.load_model(os.path.join(d, name + ".h5"))
            assert not m.layers[0].use_bias
            worst = check_loaded(name, m, e, x, y, ".h5", worst)
    print("check-tf2:", "PASS" if worst < 1e-5 else "FAIL",
          f"(tf.keras {tf.__version__}, worst {worst:.3g})")
    return worst < 1e-5


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "keras3":
        keras3()
    elif what == "tf2":
        tf2()
    elif what == "check":
        sys.exit(0 if check() else 1)
    elif what == "check-tf2":
        sys.exit(0 if check_tf2() else 1)
    else:
        raise SystemExit(__doc__)
