#!/usr/bin/env python3
"""gen_keras_files.py: model-file fixtures written by real Keras, and the check that real Keras
loads what kerac writes.

    KERAS_BACKEND=jax python3 tests/gen_keras_files.py keras3   # Keras 3 fixtures
    <python with tensorflow 2.15> tests/gen_keras_files.py tf2  # tf.keras 2 fixtures
    KERAS_BACKEND=jax python3 tests/gen_keras_files.py check    # Keras 3 loads kerac's files
    <python with tensorflow 2.15> tests/gen_keras_files.py check-tf2       # tf.keras 2 loads kerac's .h5
    KERAS_BACKEND=jax python3 tests/gen_keras_files.py keras3-conv   # Keras 3 convnet fixtures
    KERAS_BACKEND=jax python3 tests/gen_keras_files.py check-conv    # Keras 3 loads kerac's convnets
    KERAS_BACKEND=jax python3 tests/gen_keras_files.py mnist [EPOCHS]      # the done-when check
    <python with tensorflow 2.15> tests/gen_keras_files.py mnist-tf2 [EPOCHS]

mnist (MNIST from $KERAC_DATA/mnist, default /work/shared/datasets): trains the tutorial's
784-512-512-10 network with build/mnist_mlp --save, evaluates the .keras file in Keras 3; then
trains the same network in Keras 3, saves .keras and evaluates it with build/mnist_mlp --load
--epochs 0. mnist-tf2 does the second half with tf.keras 2 and a legacy .h5 file. Each prints
both accuracies and their difference.

keras3 and tf2 rewrite tests/fixtures/saved/: for each model a file and <name>.json with the
inputs x, Keras's predictions, and (models without Dropout) the weights after one more
train_on_batch on the first 16 samples, which kerac must reproduce from the saved optimizer
state. tf.keras 2 came from `pip install tensorflow-cpu==2.15.*` in a separate venv.

check builds build/tools/write_models (make), lets it train and save two models as .keras,
.h5 and .weights.h5, loads each with keras.saving.load_model (the weights file into the
.keras model), compares the predictions, and for the model without Dropout takes one more
train_on_batch step in Keras from the loaded optimizer state and compares it with kerac's.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "saved")
N = 48


def data():
    # the same arithmetic inputs as tests/tools/write_models.c and tests/test_saving.c
    x = np.array([[((i * 7 + j * 5) % 13) / 13.0 - 0.3 for j in range(4)] for i in range(N)],
                 dtype=np.float32).reshape(N, 2, 2)
    y = np.array([[float((i + i // 5) % 3 == j) for j in range(3)] for i in range(N)],
                 dtype=np.float32)
    return x, y


def flat_weights(model):
    return np.concatenate([np.asarray(w).reshape(-1) for w in model.get_weights()])


def write_expect(name, x, pred, after=None, extra=None):
    d = {"x_shape": list(x.shape), "x": x.reshape(-1).tolist(), "pred": pred.reshape(-1).tolist()}
    if after is not None:
        d["after_step"] = after.tolist()
    d.update(extra or {})
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(d, f)


def build(keras, adam):
    L = keras.layers
    layers = [L.Input((2, 2)), L.Flatten(), L.Dense(8, activation="relu")]
    if adam:
        layers += [L.Dense(3), L.Activation("softmax")]
    else:
        layers += [L.Dropout(0.25), L.Dense(3, activation="softmax")]
    m = keras.Sequential(layers)
    opt = keras.optimizers.Adam(0.01) if adam else keras.optimizers.RMSprop(0.005)
    m.compile(loss="categorical_crossentropy", optimizer=opt, metrics=["accuracy"])
    return m


def keras3():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    os.makedirs(OUT, exist_ok=True)
    x, y = data()
    for adam in (False, True):
        name = "k3_adam" if adam else "k3_rmsprop"
        keras.utils.set_random_seed(3)
        m = build(keras, adam)
        m.fit(x, y, epochs=3, batch_size=16, verbose=0)
        m.save(os.path.join(OUT, name + ".keras"))
        if not adam:
            m.save_weights(os.path.join(OUT, name + ".weights.h5"))
            legacy_h5_format.save_model_to_hdf5(m, os.path.join(OUT, name + "_legacy.h5"))
        pred = m.predict(x, verbose=0)
        after = None
        if adam:
            m.train_on_batch(x[:16], y[:16])
            after = flat_weights(m)
        write_expect(name, x, pred, after, {"iterations": 9})
    print("wrote Keras", keras.__version__, "fixtures to", OUT)


def tf2():
    import tensorflow as tf

    keras = tf.keras
    if not tf.__version__.startswith("2."):
        raise SystemExit("needs TensorFlow 2")
    os.makedirs(OUT, exist_ok=True)
    x, y = data()
    tf.keras.utils.set_random_seed(3)
    m = build(keras, adam=False)
    m.fit(x, y, epochs=3, batch_size=16, verbose=0)
    m.save(os.path.join(OUT, "tf2_rmsprop.h5"))  # the legacy HDF5 full-model file
    m.save_weights(os.path.join(OUT, "tf2_rmsprop_weights.h5"))
    write_expect("tf2_rmsprop", x, m.predict(x, verbose=0), None,
                 {"tensorflow": tf.__version__})
    print("wrote tf.keras", tf.__version__, "fixtures to", OUT)


def check():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    subprocess.run(["make", "-s", "-C", ROOT, "build/tools/write_models"], check=True)
    worst = 0.0
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([os.path.join(ROOT, "build", "tools", "write_models"), d], check=True)
        for name in ("kerac_rmsprop", "kerac_adam"):
            e = json.load(open(os.path.join(d, name + ".json")))
            x = np.array(e["x"], dtype=np.float32).reshape(e["x_shape"])
            y = np.array(e["y"], dtype=np.float32).reshape(-1, 3)
            pred = np.array(e["pred"], dtype=np.float32).reshape(-1, 3)
            for ext in (".keras", ".h5", ".weights.h5"):
                if ext == ".weights.h5":
                    m = keras.saving.load_model(os.path.join(d, name + ".keras"))
                    m.load_weights(os.path.join(d, name + ext))
                else:
                    m = keras.saving.load_model(os.path.join(d, name + ext))
                diff = float(np.abs(m.predict(x, verbose=0) - pred).max())
                worst = max(worst, diff)
                line = f"{name}{ext}: Keras {keras.__version__} loads it, max |pred diff| {diff:.3g}"
                if ext == ".keras" and not e["has_dropout"]:
                    it = int(np.asarray(m.optimizer.iterations))
                    m.train_on_batch(x[:16], y[:16])
                    sd = float(np.abs(flat_weights(m) - np.array(e["after_step"])).max())
                    worst = max(worst, sd)
                    line += f"; optimizer iterations {it}, one more step: max |weight diff| {sd:.3g}"
                print(line)
    print("check:", "PASS" if worst < 1e-5 else "FAIL", f"(worst {worst:.3g})")
    return worst < 1e-5


def check_tf2():
    import tensorflow as tf

    subprocess.run(["make", "-s", "-C", ROOT, "build/tools/write_models"], check=True)
    worst = 0.0
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([os.path.join(ROOT, "build", "tools", "write_models"), d], check=True)
        for name in ("kerac_rmsprop", "kerac_adam"):
            e = json.load(open(os.path.join(d, name + ".json")))
            x = np.array(e["x"], dtype=np.float32).reshape(e["x_shape"])
            pred = np.array(e["pred"], dtype=np.float32).reshape(-1, 3)
            m = tf.keras.models.load_model(os.path.join(d, name + ".h5"))
            diff = float(np.abs(m.predict(x, verbose=0) - pred).max())
            worst = max(worst, diff)
            print(f"{name}.h5: tf.keras {tf.__version__} loads it ({type(m.optimizer).__name__}), "
                  f"max |pred diff| {diff:.3g}")
    print("check-tf2:", "PASS" if worst < 1e-5 else "FAIL", f"(worst {worst:.3g})")
    return worst < 1e-5


# ---- the convnet of tests/conv_models.h ----

CN = 24


def conv_data():
    i = np.arange(CN)[:, None, None]
    r = np.arange(12)[None, :, None]
    c = np.arange(12)[None, None, :]
    x = (((i * 7 + r * 5 + c * 3) % 17).astype(np.float32) / np.float32(17.0)
         - np.float32(0.4)).reshape(CN, 12, 12, 1).astype(np.float32)
    y = np.array([[float((k + k // 4) % 3 == j) for j in range(3)] for k in range(CN)],
                 dtype=np.float32)
    return x, y


def conv_model(keras, opt):
    L = keras.layers
    m = keras.Sequential([
        L.Input((12, 12, 1)),
        L.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
        L.BatchNormalization(),
        L.MaxPooling2D(2),
        L.AveragePooling2D(2, strides=1, padding="same"),
        L.Conv2D(6, 2, activation="relu"),
        L.Flatten(),
        L.Reshape((2, 2, 6)),
        L.GlobalAveragePooling2D(),
        L.Dense(3, activation="softmax"),
    ])
    O = keras.optimizers
    opt = {"nadam": lambda: O.Nadam(0.01), "adamw": lambda: O.AdamW(0.01, weight_decay=0.05),
           "adam": lambda: O.Adam(0.01)}[opt]()
    m.compile(loss="categorical_crossentropy", optimizer=opt, metrics=["accuracy"])
    return m


def keras3_conv():
    """k3_conv_nadam and k3_conv_adamw: the convnet trained 2 epochs (6 steps) by Keras 3,
    saved as .keras; <name>.json: x, y, Keras's predictions, and the weights after one more
    train_on_batch on the first 8 samples"""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    os.makedirs(OUT, exist_ok=True)
    x, y = conv_data()
    for opt in ("nadam", "adamw"):
        name = "k3_conv_" + opt
        keras.utils.set_random_seed(5)
        m = conv_model(keras, opt)
        m.fit(x, y, epochs=2, batch_size=8, verbose=0)
        m.save(os.path.join(OUT, name + ".keras"))
        pred = m.predict(x, verbose=0)
        m.train_on_batch(x[:8], y[:8])
        def short(a):  # float32 values in 9 significant digits: exact, and a smaller file
            return [float("%.9g" % v) for v in np.asarray(a, np.float32).reshape(-1)]

        d = {"x_shape": list(x.shape), "x": short(x), "y": short(y), "pred": short(pred),
             "after_step": short(flat_weights(m)), "iterations": 6}
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(d, f)
    print("wrote Keras", keras.__version__, "convnet fixtures to", OUT)


def check_conv():
    """build/tools/write_conv_models trains the convnet with Nadam, AdamW, Adadelta, Adagrad
    and saves .keras, .h5, .weights.h5: Keras 3 loads each with the same predictions, and from
    the .keras file's optimizer state one more step lands on kerac's weights"""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    subprocess.run(["make", "-s", "-C", ROOT, "build/tools/write_conv_models"], check=True)
    worst = 0.0
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([os.path.join(ROOT, "build", "tools", "write_conv_models"), d], check=True)
        for opt in ("nadam", "adamw", "adadelta", "adagrad"):
            name = "kerac_conv_" + opt
            e = json.load(open(os.path.join(d, name + ".json")))
            x = np.array(e["x"], dtype=np.float32).reshape(e["x_shape"])
            y = np.array(e["y"], dtype=np.float32).reshape(-1, 3)
            pred = np.array(e["pred"], dtype=np.float32).reshape(-1, 3)
            for ext in (".keras", ".h5", ".weights.h5"):
                if ext == ".weights.h5":
                    m = keras.saving.load_model(os.path.join(d, name + ".keras"))
                    m.load_weights(os.path.join(d, name + ext))
                else:
                    m = keras.saving.load_model(os.path.join(d, name + ext))
                diff = float(np.abs(m.predict(x, verbose=0) - pred).max())
                worst = max(worst, diff)
                line = (f"{name}{ext}: Keras {keras.__version__} loads it "
                        f"({type(m.optimizer).__name__}), max |pred diff| {diff:.3g}")
                if ext == ".keras":
                    it = int(np.asarray(m.optimizer.iterations))
                    m.train_on_batch(x[:8], y[:8])
                    sd = float(np.abs(flat_weights(m) - np.array(e["after_step"])).max())
                    worst = max(worst, sd)
                    line += f"; iterations {it}, one more step: max |weight diff| {sd:.3g}"
                print(line)
    ok = worst < 2e-5
    print("check-conv:", "PASS" if ok else "FAIL", f"(worst {worst:.3g})")
    return ok


def mnist_data():
    import gzip

    d = os.path.join(os.environ.get("KERAC_DATA", "/work/shared/datasets"), "mnist")

    def idx(name, offset):
        with gzip.open(os.path.join(d, name)) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    x_test = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype("float32") / 255
    y_test = np.eye(10, dtype="float32")[idx("t10k-labels-idx1-ubyte.gz", 8)]
    x_train = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype("float32") / 255
    y_train = np.eye(10, dtype="float32")[idx("train-labels-idx1-ubyte.gz", 8)]
    return x_train, y_train, x_test, y_test


def run_mlp(args):
    env = dict(os.environ, KERAC_DATA=os.environ.get("KERAC_DATA", "/work/shared/datasets"))
    out = subprocess.run([os.path.join(ROOT, "build", "mnist_mlp")] + args, env=env,
                         check=True, capture_output=True, text=True).stdout
    lines = out.strip().splitlines()
    return float(lines[-1].split()[-1]), lines[-2:]


def keras_mlp(keras):
    L = keras.layers
    m = keras.Sequential([L.Input((784,)), L.Dense(512, activation="relu"), L.Dropout(0.2),
                          L.Dense(512, activation="relu"), L.Dropout(0.2),
                          L.Dense(10, activation="softmax")])
    m.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.RMSprop(),
              metrics=["accuracy"])
    return m


def mnist(epochs, tf2_mode):
    subprocess.run(["make", "-s", "-C", ROOT, "build/mnist_mlp"], check=True)
    x_train, y_train, x_test, y_test = mnist_data()
    d = tempfile.mkdtemp(prefix="kerac-mnist-")
    if not tf2_mode:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras

        path = os.path.join(d, "kerac.keras")
        acc_c, lines = run_mlp(["--epochs", str(epochs), "--verbose", "0", "--save", path])
        m = keras.saving.load_model(path)
        loss_k, acc_k = m.evaluate(x_test, y_test, batch_size=128, verbose=0)
        print(f"kerac trained, saved {path}: kerac {lines}; Keras {keras.__version__} "
              f"evaluate: loss {loss_k:.6f} accuracy {acc_k:.6f}; |diff| {abs(acc_c - acc_k):.2g}")
        keras.utils.set_random_seed(1337)
        path = os.path.join(d, "keras3.keras")
    else:
        import tensorflow as tf

        keras = tf.keras
        keras.utils.set_random_seed(1337)
        path = os.path.join(d, "tf2.h5")
    m = keras_mlp(keras)
    m.fit(x_train, y_train, batch_size=128, epochs=epochs, verbose=0,
          validation_data=(x_test, y_test))
    loss_k, acc_k = m.evaluate(x_test, y_test, batch_size=128, verbose=0)
    m.save(path)
    acc_c, lines = run_mlp(["--load", path, "--epochs", "0"])
    print(f"Keras {getattr(keras, '__version__', None) or 'tf.keras ' + __import__('tensorflow').__version__} trained, saved {path}: Keras evaluate: loss {loss_k:.6f} "
          f"accuracy {acc_k:.6f}; build/mnist_mlp --load {os.path.basename(path)} --epochs 0: "
          f"{lines}; |diff| {abs(acc_c - acc_k):.2g}")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "keras3"
    if what == "keras3":
        keras3()
    elif what == "tf2":
        tf2()
    elif what in ("mnist", "mnist-tf2"):
        mnist(int(sys.argv[2]) if len(sys.argv) > 2 else 3, what == "mnist-tf2")
    elif what == "check-tf2":
        sys.exit(0 if check_tf2() else 1)
    elif what == "check":
        sys.exit(0 if check() else 1)
    elif what == "keras3-conv":
        keras3_conv()
    elif what == "check-conv":
        sys.exit(0 if check_conv() else 1)
    else:
        raise SystemExit(__doc__)
