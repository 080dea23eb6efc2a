"""Reference .keras files with a TextVectorization layer on a string input, for
tests/test_tv_layer.c. Keras 3's TextVectorization needs TensorFlow (absent from the Keras 3
venv), so tf.keras 2.15's .keras (v3) format writes them:

    /work/venvs/tf2/bin/python tests/gen_keras_tv_files.py

Writes tests/fixtures/tv/{int,tfidf}.keras and {int,tfidf}_pred.txt (one line per text of
TEXTS: the model's outputs, %.9g)."""
import os

import numpy as np
import tensorflow as tf

keras = tf.keras
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "tv")
TRAIN = [
    "The cat sat on the mat.",
    "A dog ate my homework!",
    "the cat and the dog",
    "Birds fly; fish swim.",
    "my cat likes fish",
]
TEXTS = ["the cat", "A DOG, a cat, a bird", "unknown words here", "", "fish fish fish dog"]


def write(name, model):
    model.save(os.path.join(HERE, name + ".keras"))
    out = model.predict(np.array(TEXTS, dtype=object).reshape(-1, 1), verbose=0)
    with open(os.path.join(HERE, name + "_pred.txt"), "w") as f:
        for row in out:
            f.write(" ".join("%.9g" % v for v in row) + "\n")


def main():
    os.makedirs(HERE, exist_ok=True)
    keras.utils.set_random_seed(1)
    tv = keras.layers.TextVectorization(max_tokens=12, output_sequence_length=6)
    tv.adapt(TRAIN)
    inp = keras.Input(shape=(1,), dtype="string")
    x = tv(inp)
    x = keras.layers.Embedding(12, 4)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    out = keras.layers.Dense(1, activation="sigmoid")(x)
    write("int", keras.Model(inp, out))

    tv2 = keras.layers.TextVectorization(output_mode="tf_idf", ngrams=2)
    tv2.adapt(TRAIN)
    m2 = keras.Sequential([keras.Input(shape=(1,), dtype="string"), tv2,
                           keras.layers.Dense(3, activation="softmax")])
    write("tfidf", m2)


if __name__ == "__main__":
    main()
