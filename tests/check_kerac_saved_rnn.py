#!/usr/bin/env python3
"""check_kerac_saved_rnn.py: Keras 3 (.keras and .h5) and tf.keras 2 (.h5) load the recurrent
model kerac saved and predict what Keras predicted. Run after `KERAC_KEEP_RNN_FILES=1
build/tests/test_rnn --filter rnn_files/round_trip` (which writes /tmp/kerac_rnn_saved.keras
and .h5):
    KERAS_BACKEND=jax /work/venvs/k3/bin/python tests/check_kerac_saved_rnn.py
    /work/venvs/tf2/bin/python tests/check_kerac_saved_rnn.py
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np  # noqa: E402

try:
    import keras
    K3 = keras.__version__.startswith("3")
except ImportError:
    K3 = False
if not K3:
    import tensorflow as tf
    keras = tf.keras

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras_rnn")
tensors, name = {}, None
for line in open(os.path.join(here, "k3_files.txt")):
    if line.startswith("#"):
        continue
    if line.startswith("tensor"):
        name = line.split()[1]
        tensors[name] = []
    else:
        tensors[name] += [float(v) for v in line.split()]
x = np.array(tensors["x"], np.float32).reshape(3, 5, 3)
want = np.array(tensors["output"], np.float32).reshape(3, -1)
bad = 0
paths = ["/tmp/kerac_rnn_saved.keras", "/tmp/kerac_rnn_saved.h5"] if K3 else [
    "/tmp/kerac_rnn_saved.h5"]
for path in paths:
    m = keras.models.load_model(path)
    got = m.predict(x, verbose=0)
    err = float(np.max(np.abs(got - want)))
    print(f"{path}: {'Keras ' + keras.__version__ if K3 else 'tf.keras 2'} loads it, "
          f"max |difference| {err:.3g}")
    bad += err > 1e-5
sys.exit(1 if bad else 0)
