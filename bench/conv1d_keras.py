#!/usr/bin/env python3
"""conv1d_keras.py: Keras 3 (JAX) side of build/conv1d_steps (docs/PERFORMANCE.md, "Conv1D"):
the same Conv1D text classifier (Conv1D(128, 5, relu) on (400, 50), GlobalMaxPooling1D,
Dense(1, sigmoid); binary crossentropy, Adam, batch 32) on fixed random data, timed per
train_on_batch step (jit-compiled) on the same cores. Prints one JSON line like
conv1d_steps's: the median ms per step over blocks of 10 steps after 5 warm-up steps.
    KERAS_BACKEND=jax python3 bench/conv1d_keras.py [--blocks N]
"""
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

blocks = int(sys.argv[sys.argv.index("--blocks") + 1]) if "--blocks" in sys.argv else 20
BATCH, STEPS, DIM = 32, 400, 50
keras.utils.set_random_seed(1337)
model = keras.Sequential([
    keras.Input((STEPS, DIM)),
    keras.layers.Conv1D(128, 5, activation="relu"),
    keras.layers.GlobalMaxPooling1D(),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy")
rng = np.random.default_rng(1)
x = rng.uniform(-1, 1, (BATCH, STEPS, DIM)).astype(np.float32)
y = (np.arange(BATCH) % 2).astype(np.float32).reshape(-1, 1)
for _ in range(5):
    model.train_on_batch(x, y)
ms = []
for _ in range(blocks):
    start = time.perf_counter()
    for _ in range(10):
        loss = model.train_on_batch(x, y)
    float(np.asarray(loss))  # the steps are done
    ms.append((time.perf_counter() - start) / 10 * 1e3)
med = float(np.median(ms))
flops = 2.0 * 2.0 * 396 * 250 * 128 * BATCH
print(json.dumps({"case": "train_conv1d_text_classifier", "framework":
                  f"keras {keras.__version__} / jax", "threads": os.cpu_count(), "batch": BATCH,
                  "ms_per_step": round(med, 3), "gflops": round(flops / (med * 1e-3) / 1e9, 1)}))
