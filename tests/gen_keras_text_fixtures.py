#!/usr/bin/env python3
"""gen_keras_text_fixtures.py: Keras reference outputs for kerac's text and sequence data,
checked by tests/test_text.c.

How to run (from the repository root):
    KERAS_BACKEND=jax /work/venvs/k3/bin/python tests/gen_keras_text_fixtures.py
    /work/venvs/tf2/bin/python tests/gen_keras_text_fixtures.py --tv
The first (Keras 3.15 + numpy) writes, under tests/fixtures/text/:
    imdb_tiny.npz, reuters_tiny.npz   np.savez of object arrays of lists of ints (as Keras's
                                      imdb.npz / reuters.npz), int64 label arrays
    imdb_<case>.txt, reuters_<case>.txt   keras.datasets.{imdb,reuters}.load_data outputs
    pad_<case>.txt                    keras.utils.pad_sequences
    perm.txt                          np.random.RandomState(seed).shuffle(np.arange(n))
    dir_<case>.txt                    dataset_utils.index_directory + the training/validation
                                      split of text_dataset_from_directory, on the corpus
                                      written under fixtures/text/corpus/
The second (--tv) needs TensorFlow: Keras 3's TextVectorization imports TensorFlow, which the
Keras 3 environment here lacks, so these run on tf.keras 2.15, whose TextVectorization and
IndexLookup (standardize regex, ASCII lowercasing, whitespace split, adapt's count-then-token
ordering, idf = log(1 + N / (1 + df)), the OOV idf = mean) are the code Keras 3 ported:
    tv_<case>.txt

Text formats (whitespace separated, one record per line):
    seqs <name> <n>  then n lines "<len> v1 .. vlen | label"
    matrix <name> <rows> <cols>  then rows lines of values
    strings <name> <n>  then n lines, each string's UTF-8 bytes in hex ("-": empty)
    files <n>  then n lines "<label> <path relative to the corpus>"
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "text")

# A small corpus for TextVectorization: punctuation, capitals, ties, runs of whitespace,
# non-ASCII bytes (kept as they are: only A-Z is lowercased), an empty text.
CORPUS = [
    "The cat sat on the mat.",
    "The dog ate my homework!!  The DOG.",
    "A cat, a dog; a bird?\tnaïve CAFÉ",
    "mat mat\nhat  -- [bat] {rat} it's",
    "",
    "Zebra's (zoo) & \"quotes\" #1 2+2=4 a@b.c_d e|f g~h `tick` ^up\\down/slash",
]
INPUTS = [
    "the cat and the dog",
    "Unknown words: zebra, ZOO, and cafÉ!",
    "",
    "mat mat mat hat the the the the the the the the",
]


def write_seqs(f, name, xs, ys):
    f.write(f"seqs {name} {len(xs)}\n")
    for x, y in zip(xs, ys):
        f.write(f"{len(x)} " + " ".join(str(int(v)) for v in x) + f" | {int(y)}\n")


def write_strings(f, name, strings):
    f.write(f"strings {name} {len(strings)}\n")
    for t in strings:
        f.write((t.encode("utf-8").hex() or "-") + "\n")


def write_matrix(f, name, m, fmt):
    import numpy as np

    m = np.asarray(m)
    f.write(f"matrix {name} {m.shape[0]} {m.shape[1]}\n")
    for row in m:
        f.write(" ".join(fmt % v for v in row) + "\n")


def gen_keras3():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import numpy as np
    import keras
    from keras.src.datasets import imdb, reuters
    from keras.src.utils import dataset_utils

    os.makedirs(OUT, exist_ok=True)
    rng = np.random.RandomState(7)

    def ragged(n, lo, hi, vocab):
        arr = np.empty(n, dtype=object)
        for i in range(n):
            arr[i] = [int(v) for v in rng.randint(1, vocab, size=rng.randint(lo, hi))]
        return arr

    # imdb: words 1..29 (Keras's files index words from 1); reuters: 46 topics
    imdb_path = os.path.join(OUT, "imdb_tiny.npz")
    np.savez(imdb_path, x_train=ragged(24, 1, 12, 30), y_train=rng.randint(0, 2, 24).astype(np.int64),
             x_test=ragged(20, 1, 12, 30), y_test=rng.randint(0, 2, 20).astype(np.int64))
    reuters_path = os.path.join(OUT, "reuters_tiny.npz")
    np.savez(reuters_path, x=ragged(37, 1, 15, 40), y=rng.randint(0, 46, 37).astype(np.int64))

    imdb.get_file = lambda *a, **k: imdb_path
    reuters.get_file = lambda *a, **k: reuters_path
    imdb_cases = {
        "default": {},
        "num_words": dict(num_words=12, skip_top=2),
        "maxlen": dict(maxlen=8, seed=5),
        "nostart": dict(start_char=None, oov_char=None, index_from=0, num_words=20, skip_top=3),
        "chars": dict(start_char=7, oov_char=9, index_from=10, seed=0),
    }
    for name, kw in imdb_cases.items():
        (xtr, ytr), (xte, yte) = imdb.load_data(**kw)
        with open(os.path.join(OUT, f"imdb_{name}.txt"), "w") as f:
            write_seqs(f, "train", xtr, ytr)
            write_seqs(f, "test", xte, yte)
    reuters_cases = {
        "default": {},
        "split": dict(test_split=0.5, num_words=25, skip_top=1, seed=1),
        "maxlen": dict(maxlen=10, oov_char=None),
    }
    for name, kw in reuters_cases.items():
        (xtr, ytr), (xte, yte) = reuters.load_data(**kw)
        with open(os.path.join(OUT, f"reuters_{name}.txt"), "w") as f:
            write_seqs(f, "train", xtr, ytr)
            write_seqs(f, "test", xte, yte)

    # pad_sequences
    seqs = [[1, 2, 3], [4, 5], [], [6, 7, 8, 9, 10], [11]]
    pad_cases = {
        "default": {},
        "post": dict(padding="post"),
        "maxlen3": dict(maxlen=3),
        "maxlen3_post_post": dict(maxlen=3, padding="post", truncating="post"),
        "maxlen7_value": dict(maxlen=7, value=-1),
        "maxlen2_pre_post": dict(maxlen=2, padding="pre", truncating="post"),
    }
    for name, kw in pad_cases.items():
        with open(os.path.join(OUT, f"pad_{name}.txt"), "w") as f:
            f.write(f"# pad_sequences({seqs}, **{kw})\n")
            write_matrix(f, "out", keras.utils.pad_sequences(seqs, **kw), "%d")

    # NumPy's legacy shuffle
    with open(os.path.join(OUT, "perm.txt"), "w") as f:
        for seed, n in [(113, 25000), (0, 10), (1, 1000), (4294967295, 77), (12345, 2)]:
            idx = np.arange(n)
            np.random.RandomState(seed).shuffle(idx)
            f.write(f"perm {seed} {n}\n" + " ".join(str(v) for v in idx) + "\n")

    # text_dataset_from_directory's order: a corpus of three classes, nested folders, other
    # extensions (skipped), a hidden folder (skipped), an empty file, an empty class
    corpus = os.path.join(OUT, "corpus")
    files = {
        "neg/a.txt": "bad film", "neg/b.TXT": "awful", "neg/c.md": "not text",
        "neg/sub/d.txt": "deep file", "neg/sub/e.txt": "", "neg/z.txt": "zzz",
        "pos/1.txt": "great", "pos/10.txt": "fine film indeed", "pos/2.txt": "good",
        "pos/x/y/3.txt": "nested\nlines", "pos/ü.txt": "unicode name",
        "neutral/m.txt": "meh", "neutral/n.txt": "so so", ".hidden/h.txt": "hidden",
    }
    for rel, text in files.items():
        p = os.path.join(corpus, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as fh:
            fh.write(text)
    os.makedirs(os.path.join(corpus, "empty"), exist_ok=True)
    with open(os.path.join(corpus, "empty", ".keep"), "w"):
        pass
    dir_cases = {
        "noshuffle": dict(shuffle=False),
        "seed42": dict(shuffle=True, seed=42),
        "train": dict(shuffle=True, seed=7, validation_split=0.25, subset="training"),
        "val": dict(shuffle=True, seed=7, validation_split=0.25, subset="validation"),
        "names": dict(shuffle=False, class_names=["pos", "neg"]),
    }
    for name, kw in dir_cases.items():
        split, subset = kw.pop("validation_split", None), kw.pop("subset", None)
        paths, labels, class_names = dataset_utils.index_directory(
            corpus, "inferred", formats=(".txt",), verbose=False, **kw)
        paths, labels = dataset_utils.get_training_or_validation_split(paths, labels, split, subset)
        with open(os.path.join(OUT, f"dir_{name}.txt"), "w") as f:
            f.write("classes " + " ".join(class_names) + "\n")
            f.write(f"files {len(paths)}\n")
            for p, y in zip(paths, labels):
                f.write(f"{int(y)} {os.path.relpath(p, corpus)}\n")


def gen_tv():
    import numpy as np
    import tensorflow as tf

    TV = tf.keras.layers.TextVectorization
    cases = {
        "int": dict(),
        "int_len": dict(output_sequence_length=4),
        "int_max": dict(max_tokens=8, output_sequence_length=6),
        "multi_hot": dict(output_mode="multi_hot"),
        "count": dict(output_mode="count", max_tokens=10),
        "tf_idf": dict(output_mode="tf_idf"),
        "tf_idf_pad": dict(output_mode="tf_idf", max_tokens=30, pad_to_max_tokens=True),
        "lower": dict(standardize="lower"),
        "strip": dict(standardize="strip_punctuation", output_mode="count"),
        "nostd": dict(standardize=None),
        "nosplit": dict(split=None, output_mode="multi_hot"),
        "bigrams": dict(ngrams=2),
        "trigrams_count": dict(ngrams=3, output_mode="count", max_tokens=20),
    }
    for name, kw in cases.items():
        layer = TV(**kw)
        layer.adapt(CORPUS)
        vocab = layer.get_vocabulary()
        inputs = tf.constant(INPUTS)
        if "split" in kw:  # no split: one string per row, shaped (n, 1) as Keras expects
            inputs = inputs[:, None]
        out = layer(inputs).numpy()
        with open(os.path.join(OUT, f"tv_{name}.txt"), "w") as f:
            f.write(f"# TextVectorization(**{kw}).adapt(CORPUS)(INPUTS)\n")
            write_strings(f, "corpus", CORPUS)
            write_strings(f, "inputs", INPUTS)
            write_strings(f, "vocab", vocab)
            if kw.get("output_mode") == "tf_idf":
                idf = layer._lookup_layer.idf_weights.numpy()
                write_matrix(f, "idf", idf.reshape(1, -1), "%.9g")
            write_matrix(f, "out", out, "%d" if out.dtype.kind == "i" else "%.9g")


if __name__ == "__main__":
    if "--tv" in sys.argv:
        sys.path = [p for p in sys.path if p]
        gen_tv()
    else:
        gen_keras3()
