#!/usr/bin/env python3
"""gen_keras2_list_file.py: a model file in the form Keras 2.0 and 2.1 wrote (`model.save` of a
Sequential model: model_config's "config" is the bare list of layers, Dense layers named
dense_1, dense_2, weights as "dense_1/kernel:0", training_config with Keras 2.0's optimizer
config, "lr" and "decay"), written with h5py from fixed weights, since Keras 2.0 itself no
longer installs on Python 3.11. tests/test_keras_functional.c loads it and compares kerac's
predictions with the ones numpy computes here.

How to run (from the repository root; needs numpy and h5py):
    python3 tests/gen_keras2_list_file.py
It writes tests/fixtures/keras2/keras20_list.h5 and keras20_list.txt (x and the expected
outputs).
"""
import json
import os

import h5py
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras2")
rng = np.random.RandomState(20)
w1 = rng.uniform(-0.5, 0.5, (6, 5)).astype("float32")
b1 = rng.uniform(-0.1, 0.1, (5,)).astype("float32")
w2 = rng.uniform(-0.5, 0.5, (5, 3)).astype("float32")
b2 = rng.uniform(-0.1, 0.1, (3,)).astype("float32")
x = rng.uniform(0, 1, (4, 6)).astype("float32")

def dense(name, units, act, first):
    cfg = {"name": name, "trainable": True, "units": units, "activation": act, "use_bias": True,
           "kernel_initializer": {"class_name": "VarianceScaling",
                                  "config": {"scale": 1.0, "mode": "fan_avg",
                                             "distribution": "uniform", "seed": None}},
           "bias_initializer": {"class_name": "Zeros", "config": {}},
           "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
           "kernel_constraint": None, "bias_constraint": None}
    if first:
        cfg["batch_input_shape"] = [None, 6]
        cfg["dtype"] = "float32"
    return {"class_name": "Dense", "config": cfg}

config = {"class_name": "Sequential",
          "config": [dense("dense_1", 5, "relu", True), dense("dense_2", 3, "softmax", False)]}
training = {"optimizer_config": {"class_name": "RMSprop",
                                 "config": {"lr": 0.001, "rho": 0.9, "epsilon": 1e-08,
                                            "decay": 0.0}},
            "loss": "categorical_crossentropy", "metrics": ["accuracy"],
            "sample_weight_mode": None, "loss_weights": None}
os.makedirs(OUT, exist_ok=True)
with h5py.File(os.path.join(OUT, "keras20_list.h5"), "w") as f:
    f.attrs["keras_version"] = b"2.0.8"
    f.attrs["backend"] = b"tensorflow"
    f.attrs["model_config"] = json.dumps(config).encode()
    f.attrs["training_config"] = json.dumps(training).encode()
    g = f.create_group("model_weights")
    g.attrs["layer_names"] = [b"dense_1", b"dense_2"]
    for name, (k, b) in {"dense_1": (w1, b1), "dense_2": (w2, b2)}.items():
        lg = g.create_group(name)
        lg.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
        lg.create_dataset(f"{name}/kernel:0", data=k)
        lg.create_dataset(f"{name}/bias:0", data=b)

h = np.maximum(x @ w1 + b1, 0)
z = h @ w2 + b2
p = np.exp(z - z.max(1, keepdims=True))
p /= p.sum(1, keepdims=True)
with open(os.path.join(OUT, "keras20_list.txt"), "w") as f:
    f.write("# Keras 2.0-form Sequential file, written by tests/gen_keras2_list_file.py\n")
    f.write("x " + " ".join("%.9g" % v for v in x.ravel()) + "\n")
    f.write("output " + " ".join("%.9g" % v for v in p.ravel()) + "\n")
