#!/usr/bin/env python3
"""gen_keras_custom_files.py: the custom-layer fixtures (keras.io's Antirectifier example
layer, registered with keras.saving.register_keras_serializable()) and the check that Keras
loads kerac's files holding it.

    KERAS_BACKEND=jax /work/venvs/k3/bin/python tests/gen_keras_custom_files.py keras3
    /work/venvs/tf2/bin/python tests/gen_keras_custom_files.py tf2
    KERAS_BACKEND=jax /work/venvs/k3/bin/python tests/gen_keras_custom_files.py check
    /work/venvs/tf2/bin/python tests/gen_keras_custom_files.py check-tf2

keras3 writes tests/fixtures/custom/: k3_antirectifier.keras and k3_antirectifier_legacy.h5
(Input(5) -> Dense(6) -> Antirectifier -> Dense(3, softmax), RMSprop, 3 epochs) and
k3_antirectifier.json: x, y, the flat weights, Keras's predictions, the gradient of the mean
categorical crossentropy w.r.t. every weight (jax.grad: Keras's autodiff, what kerac's hand
written backward must give) and the weights after one more train_on_batch(x, y); and
antirectifier_rank3.json: the layer alone on samples of shape (3, 4) (x, kernel, output).
tf2 writes tf2_antirectifier.h5 and .json (tf.keras 2.15, the keras.io source as it is).

check builds build/tools/write_custom_models, which trains the same network in kerac and saves
it as .keras and .h5; Keras 3 loads both with the class registered, compares the predictions,
and takes one more train_on_batch step from the loaded optimizer state (.keras). check-tf2
loads the .h5 in tf.keras 2.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "custom")
N = 16


def data():
    # the same arithmetic inputs as tests/test_custom.c and tests/tools/write_custom_models.c
    x = np.array([[((i * 7 + j * 5) % 13) / 13.0 - 0.4 for j in range(5)] for i in range(N)],
                 dtype=np.float32)
    y = np.array([[float((i + i // 3) % 3 == j) for j in range(3)] for i in range(N)],
                 dtype=np.float32)
    return x, y


def antirectifier_class(keras, ops):
    @keras.saving.register_keras_serializable()
    class Antirectifier(keras.layers.Layer):
        def __init__(self, initializer="he_normal", **kwargs):
            super().__init__(**kwargs)
            self.initializer = keras.initializers.get(initializer)

        def build(self, input_shape):
            output_dim = input_shape[-1]
            self.kernel = self.add_weight(
                shape=(output_dim * 2, output_dim),
                initializer=self.initializer,
                name="kernel",
                trainable=True,
            )

        def call(self, inputs):
            inputs = inputs - ops.mean(inputs, axis=-1, keepdims=True)
            pos = ops.relu(inputs)
            neg = ops.relu(-inputs)
            concatenated = ops.concatenate([pos, neg], axis=-1)
            mixed = ops.matmul(concatenated, self.kernel)
            return mixed

        def get_config(self):
            base_config = super().get_config()
            config = {"initializer": keras.initializers.serialize(self.initializer)}
            return dict(list(base_config.items()) + list(config.items()))

    return Antirectifier


def flat(ws):
    return np.concatenate([np.asarray(w).reshape(-1) for w in ws])


def build(keras, Antirectifier):
    L = keras.layers
    m = keras.Sequential([L.Input((5,)), L.Dense(6), Antirectifier(), L.Dense(3, activation="softmax")])
    m.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.RMSprop(0.01),
              metrics=["accuracy"])
    return m


def dump(name, d):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(d, f)


def keras3():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax
    import keras
    from keras import ops
    from keras.src.legacy.saving import legacy_h5_format

    Antirectifier = antirectifier_class(keras, ops)
    os.makedirs(OUT, exist_ok=True)
    x, y = data()
    keras.utils.set_random_seed(5)
    m = build(keras, Antirectifier)
    m.fit(x, y, epochs=3, batch_size=8, verbose=0)
    m.save(os.path.join(OUT, "k3_antirectifier.keras"))
    legacy_h5_format.save_model_to_hdf5(m, os.path.join(OUT, "k3_antirectifier_legacy.h5"))
    pred = m.predict(x, verbose=0)

    # Keras's gradient: jax.grad of the compiled loss at these weights
    tv = [v.value for v in m.trainable_variables]
    ntv = [v.value for v in m.non_trainable_variables]

    def loss_fn(tv):
        yp, _ = m.stateless_call(tv, ntv, x, training=False)
        return keras.losses.categorical_crossentropy(y, yp).mean()

    loss, grads = jax.value_and_grad(loss_fn)(tv)
    weights = flat(m.get_weights())
    m.train_on_batch(x, y)
    dump("k3_antirectifier.json", {
        "keras": keras.__version__, "x": x.reshape(-1).tolist(), "y": y.reshape(-1).tolist(),
        "weights": weights.tolist(), "pred": pred.reshape(-1).tolist(), "loss": float(loss),
        "grads": flat(grads).tolist(), "after_step": flat(m.get_weights()).tolist(),
        "iterations": 6})

    # the layer alone on samples of rank 2: the last axis is the one it works along
    keras.utils.set_random_seed(6)
    a = keras.Sequential([keras.layers.Input((3, 4)), Antirectifier(initializer="glorot_uniform")])
    xr = (np.arange(5 * 12, dtype=np.float32).reshape(5, 3, 4) * 0.37 % 1.9 - 0.8).astype(np.float32)
    dump("antirectifier_rank3.json", {
        "x": xr.reshape(-1).tolist(), "kernel": flat(a.get_weights()).tolist(),
        "out": a.predict(xr, verbose=0).reshape(-1).tolist(),
        "config": a.layers[0].get_config()["initializer"]})
    print("wrote Keras", keras.__version__, "fixtures to", OUT)


def tf2():
    import tensorflow as tf

    keras = tf.keras

    # keras.io's source as it is (tf ops)
    @keras.saving.register_keras_serializable()
    class Antirectifier(keras.layers.Layer):
        def __init__(self, initializer="he_normal", **kwargs):
            super().__init__(**kwargs)
            self.initializer = keras.initializers.get(initializer)

        def build(self, input_shape):
            output_dim = input_shape[-1]
            self.kernel = self.add_weight(shape=(output_dim * 2, output_dim),
                                          initializer=self.initializer, name="kernel",
                                          trainable=True)

        def call(self, inputs):
            inputs -= tf.reduce_mean(inputs, axis=-1, keepdims=True)
            pos = tf.nn.relu(inputs)
            neg = tf.nn.relu(-inputs)
            concatenated = tf.concat([pos, neg], axis=-1)
            return tf.matmul(concatenated, self.kernel)

        def get_config(self):
            base_config = super().get_config()
            config = {"initializer": keras.initializers.serialize(self.initializer)}
            return dict(list(base_config.items()) + list(config.items()))

    os.makedirs(OUT, exist_ok=True)
    x, y = data()
    tf.keras.utils.set_random_seed(5)
    m = build(keras, Antirectifier)
    m.fit(x, y, epochs=3, batch_size=8, verbose=0)
    m.save(os.path.join(OUT, "tf2_antirectifier.h5"))
    dump("tf2_antirectifier.json", {"tensorflow": tf.__version__, "x": x.reshape(-1).tolist(),
                                     "pred": m.predict(x, verbose=0).reshape(-1).tolist()})
    print("wrote tf.keras", tf.__version__, "fixtures to", OUT)


def run_tool(d):
    subprocess.run(["make", "-s", "-C", ROOT, "build/tools/write_custom_models"], check=True)
    subprocess.run([os.path.join(ROOT, "build", "tools", "write_custom_models"), d], check=True)
    return json.load(open(os.path.join(d, "kerac_antirectifier.json")))


def check():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    from keras import ops

    antirectifier_class(keras, ops)
    worst = 0.0
    with tempfile.TemporaryDirectory() as d:
        e = run_tool(d)
        x = np.array(e["x"], dtype=np.float32).reshape(-1, 5)
        y = np.array(e["y"], dtype=np.float32).reshape(-1, 3)
        pred = np.array(e["pred"], dtype=np.float32).reshape(-1, 3)
        for ext in (".keras", ".h5"):
            m = keras.saving.load_model(os.path.join(d, "kerac_antirectifier" + ext))
            kind = type(m.layers[1]).__name__
            diff = float(np.abs(m.predict(x, verbose=0) - pred).max())
            worst = max(worst, diff)
            line = f"kerac_antirectifier{ext}: Keras {keras.__version__} loads it (layer 1: {kind}), max |pred diff| {diff:.3g}"
            if ext == ".keras":
                m.train_on_batch(x, y)
                sd = float(np.abs(flat(m.get_weights()) - np.array(e["after_step"])).max())
                worst = max(worst, sd)
                line += f"; one more step: max |weight diff| {sd:.3g}"
            print(line)
    print("check:", "PASS" if worst < 1e-5 else "FAIL", f"(worst {worst:.3g})")
    return worst < 1e-5


def check_tf2():
    import tensorflow as tf

    keras = tf.keras

    @keras.saving.register_keras_serializable()
    class Antirectifier(keras.layers.Layer):
        def __init__(self, initializer="he_normal", **kwargs):
            super().__init__(**kwargs)
            self.initializer = keras.initializers.get(initializer)

        def build(self, input_shape):
            d = input_shape[-1]
            self.kernel = self.add_weight(shape=(d * 2, d), initializer=self.initializer,
                                          name="kernel", trainable=True)

        def call(self, inputs):
            inputs -= tf.reduce_mean(inputs, axis=-1, keepdims=True)
            return tf.matmul(tf.concat([tf.nn.relu(inputs), tf.nn.relu(-inputs)], axis=-1),
                             self.kernel)

        def get_config(self):
            return {**super().get_config(),
                    "initializer": keras.initializers.serialize(self.initializer)}

    with tempfile.TemporaryDirectory() as d:
        e = run_tool(d)
        x = np.array(e["x"], dtype=np.float32).reshape(-1, 5)
        pred = np.array(e["pred"], dtype=np.float32).reshape(-1, 3)
        m = tf.keras.models.load_model(os.path.join(d, "kerac_antirectifier.h5"))
        diff = float(np.abs(m.predict(x, verbose=0) - pred).max())
        print(f"kerac_antirectifier.h5: tf.keras {tf.__version__} loads it "
              f"(layer 1: {type(m.layers[1]).__name__}), max |pred diff| {diff:.3g}")
    print("check-tf2:", "PASS" if diff < 1e-5 else "FAIL")
    return diff < 1e-5


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "keras3"
    ok = {"keras3": keras3, "tf2": tf2, "check": check, "check-tf2": check_tf2}[mode]()
    sys.exit(0 if ok in (None, True) else 1)
