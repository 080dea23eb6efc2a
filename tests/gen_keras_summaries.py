#!/usr/bin/env python3
"""gen_keras_summaries.py: tf.keras 2.15's model.summary() of the functional fixtures, which
tests/test_keras_functional.c compares kerac's kc_summary with line for line.

How to run (from the repository root, with tf.keras 2: pip install "tensorflow-cpu<2.16"):
    python3 tests/gen_keras_summaries.py
It writes tests/fixtures/functional/<name>.tf2_summary.txt for each model below, loading the
<name>.tf2.h5 file tests/gen_keras_functional_fixtures.py wrote.
"""
import os

import tensorflow as tf

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "functional")
NAMES = ["siamese", "two_inputs", "finetune_frozen", "merge_all", "residual_cnn",
         "conv_autoencoder", "nested_sequential", "frozen_layer"]

for name in NAMES:
    model = tf.keras.models.load_model(os.path.join(DIR, name + ".tf2.h5"), compile=False)
    lines = []
    model.summary(print_fn=lines.append)
    with open(os.path.join(DIR, name + ".tf2_summary.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", name)
