#!/usr/bin/env python3
"""gen_cli_fixtures.py: the fixtures of tests/test_cli.c (the kerac program), written by Keras 3.

    KERAS_BACKEND=jax python3 tests/gen_cli_fixtures.py

MNIST comes from $KERAC_DATA/mnist (default /work/shared/datasets/mnist). Writes into
tests/fixtures/cli/:
  mlp.json          model.to_json() of an uncompiled Sequential: Input(784), Dense(32, relu),
                    Dropout(0.2), Dense(10, softmax) (kerac train compiles it)
  digits.keras      Input((28, 28)), Flatten, Dense(16, relu), Dense(10, softmax); SGD(0.1),
                    sparse_categorical_crossentropy, accuracy; trained 3 epochs on the first
                    20000 training images, so that its predictions mean something
  test8.npy         the first 8 MNIST test images, uint8 (8, 28, 28)
  test8.csv         the same images, one row of 784 values per line, scaled by 1/255
  test8.txt         per image: its label, Keras's predicted class and probability (digits.keras)
"""
import gzip
import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "cli")
DATA = os.path.join(os.environ.get("KERAC_DATA", "/work/shared/datasets"), "mnist")


def idx(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(dims)


def main():
    os.makedirs(OUT, exist_ok=True)
    keras.utils.set_random_seed(1)
    x_train, y_train = idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz")
    x_test, y_test = idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")

    mlp = keras.Sequential([keras.Input((784,)), keras.layers.Dense(32, activation="relu"),
                            keras.layers.Dropout(0.2), keras.layers.Dense(10, activation="softmax")])
    with open(os.path.join(OUT, "mlp.json"), "w") as f:
        f.write(mlp.to_json())

    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train[:20000] / 255.0, y_train[:20000], batch_size=64, epochs=3, verbose=2)
    model.save(os.path.join(OUT, "digits.keras"))

    x8 = x_test[:8]
    np.save(os.path.join(OUT, "test8.npy"), x8)
    np.savetxt(os.path.join(OUT, "test8.csv"), x8.reshape(8, 784) / 255.0, fmt="%.9g",
               delimiter=",")
    p = model.predict(x8 / 255.0, verbose=0)
    with open(os.path.join(OUT, "test8.txt"), "w") as f:
        f.write("# label, Keras's class, its probability\n")
        for i in range(8):
            f.write("%d %d %.6f\n" % (y_test[i], p[i].argmax(), p[i].max()))
    print(open(os.path.join(OUT, "test8.txt")).read())


if __name__ == "__main__":
    main()
