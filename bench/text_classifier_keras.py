"""Keras 3 on the same split as examples/text_classifier.c: the example's --dump-ids PREFIX
writes the vectorized texts (its TextVectorization: Keras's vocabulary rules), and this trains
the same architecture on those ids (Keras 3's TextVectorization needs TensorFlow).

    build/text_classifier /tmp/man --dump-ids /tmp/man_ids --epochs 0
    KERAS_BACKEND=jax python bench/text_classifier_keras.py /tmp/man_ids --model cnn --epochs 5
"""
import argparse
import os
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
from keras import layers  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("prefix")
ap.add_argument("--model", choices=["fasttext", "cnn"], default="fasttext")
ap.add_argument("--epochs", type=int, default=10)
ap.add_argument("--batch-size", type=int, default=32)
ap.add_argument("--embedding-dim", type=int, default=50)
ap.add_argument("--seed", type=int, default=1337)
ap.add_argument("--verbose", type=int, default=2)
a = ap.parse_args()

n_train, n_val, length, max_tokens, k = map(int, open(a.prefix + ".meta.txt").read().split())
def ids(what, shape):
    return np.fromfile(f"{a.prefix}.{what}.i32", dtype=np.int32).reshape(shape)
x_train, y_train = ids("train_x", (n_train, length)), ids("train_y", (n_train,))
x_val, y_val = ids("val_x", (n_val, length)), ids("val_y", (n_val,))

keras.utils.set_random_seed(a.seed)
model = keras.Sequential([keras.Input((length,), dtype="int32"),
                          layers.Embedding(max_tokens, a.embedding_dim)])
if a.model == "cnn":  # Keras 2's examples/imdb_cnn.py
    model.add(layers.Dropout(0.2))
    model.add(layers.Conv1D(250, 3, padding="valid", activation="relu", strides=1))
    model.add(layers.GlobalMaxPooling1D())
    model.add(layers.Dense(250))
    model.add(layers.Dropout(0.2))
    model.add(layers.Activation("relu"))
else:  # examples/imdb_fasttext.py
    model.add(layers.GlobalAveragePooling1D())
if k == 2:
    model.add(layers.Dense(1, activation="sigmoid"))
    loss, y_train, y_val = "binary_crossentropy", y_train.astype("float32"), y_val.astype("float32")
else:
    model.add(layers.Dense(k, activation="softmax"))
    loss = "sparse_categorical_crossentropy"
model.compile(loss=loss, optimizer="adam", metrics=["accuracy"])
t0 = time.time()
model.fit(x_train, y_train, batch_size=a.batch_size, epochs=a.epochs,
          validation_data=(x_val, y_val), verbose=a.verbose)
t = time.time() - t0
loss_v, acc = model.evaluate(x_val, y_val, batch_size=a.batch_size, verbose=0)
print(f"Keras {keras.__version__} ({keras.backend.backend()}): {a.model}, {a.epochs} epochs in "
      f"{t:.1f} s (includes compilation)\nValidation loss: {loss_v:.6f}\n"
      f"Validation accuracy: {acc:.6f} ({n_val} files)")
