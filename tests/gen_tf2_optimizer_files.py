#!/usr/bin/env python3
"""gen_tf2_optimizer_files.py: model files tf.keras 2 saved after training, with its optimizer
state, for tests/test_keras_functional.c: kerac loads each with compile on and its next training
step must match tf.keras 2's.

How to run (from the repository root, with tf.keras 2: pip install "tensorflow-cpu<2.16" h5py):
    python3 tests/gen_tf2_optimizer_files.py
For each optimizer it trains Input(5) -> Dense(4, relu) -> Dense(3, softmax) two steps on a
fixed batch, saves tests/fixtures/tf2_opt/<name>.h5, loads that file back in tf.keras 2, takes one step and
writes x, y and the weights after it (Keras's order) to tests/fixtures/tf2_opt/<name>.txt.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "tf2_opt")
OPTS = {
    "adam": lambda: tf.keras.optimizers.Adam(0.01),
    "rmsprop_centered_momentum": lambda: tf.keras.optimizers.RMSprop(0.01, momentum=0.9,
                                                                      centered=True),
    "sgd_momentum": lambda: tf.keras.optimizers.SGD(0.1, momentum=0.9),
    "adadelta": lambda: tf.keras.optimizers.Adadelta(1.0),
    "nadam": lambda: tf.keras.optimizers.Nadam(0.01),
    "adamax": lambda: tf.keras.optimizers.Adamax(0.01),
}
tf.config.threading.set_intra_op_parallelism_threads(1)
os.makedirs(OUT, exist_ok=True)
rng = np.random.RandomState(11)
x = rng.uniform(0, 1, (8, 5)).astype("float32")
y = np.eye(3, dtype="float32")[np.arange(8) % 3]
for name, make in OPTS.items():
    tf.keras.utils.set_random_seed(3)
    m = tf.keras.Sequential([tf.keras.Input((5,)), tf.keras.layers.Dense(4, activation="relu"),
                             tf.keras.layers.Dense(3, activation="softmax")])
    m.compile(make(), "categorical_crossentropy")
    m.train_on_batch(x, y)
    m.train_on_batch(x, y)
    m.save(os.path.join(OUT, name + ".h5"), save_format="h5")
    # what tf.keras 2 does next from the file: load it and step. Nadam's u_product is not in
    # the file: a loaded Nadam starts it at 1, and its update step (traced once) multiplies it
    # by u_t for every variable whose index + 1 differs from iterations + 2 (a trace-time
    # counter), so each variable sees its own product; kerac follows that after loading
    m = tf.keras.models.load_model(os.path.join(OUT, name + ".h5"))
    m.train_on_batch(x, y)
    if name == "nadam":
        print("nadam: u_product after the step", float(m.optimizer._u_product.numpy()),
              "iterations", int(m.optimizer.iterations.numpy()))
    with open(os.path.join(OUT, name + ".txt"), "w") as f:
        f.write("# tf.keras %s, written by tests/gen_tf2_optimizer_files.py\n" % tf.__version__)
        for label, a in (("x", x), ("y", y), ("after", np.concatenate(
                [w.ravel() for w in m.get_weights()]))):
            f.write(label + " " + " ".join("%.9g" % v for v in np.ravel(a)) + "\n")
    print("wrote", name)
