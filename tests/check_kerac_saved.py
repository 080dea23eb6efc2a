#!/usr/bin/env python3
"""check_kerac_saved.py: does real Keras load a model file that kerac wrote, and predict what the
functional fixture says?

Usage (from the repository root; either Keras version, as for gen_keras_functional_fixtures.py):
    KERAS_BACKEND=jax python3 tests/check_kerac_saved.py NAME FILE [WEIGHTS] [options]
    <python with tensorflow 2.15> tests/check_kerac_saved.py NAME FILE [WEIGHTS] [options]
NAME is a model of tests/gen_keras_functional_fixtures.py (residual_cnn, two_inputs, ...) or of
tests/gen_keras_seq_fixtures.py (seq_sparse, masking_seq, ...: int32 token inputs of None
length, whose fixtures also hold a second batch of another length, checked too).
FILE is what kerac wrote: a .keras file, a full-model .h5 file, or a .json architecture
(model.to_json() format), which then needs WEIGHTS (.weights.h5 for Keras 3's load_weights, or
an .h5 weights file in the legacy layout, which both versions read).

It loads the model with keras.saving.load_model (tf.keras.models.load_model in tf.keras 2), or
model_from_json + load_weights, predicts on the fixture's x (batch of 4) and compares with the
fixture's outputs (model(x, training=False) of the fixed weights): it prints the max relative
error |got - want| / max(|want|, FLOOR) per output and exits 1 when one is above TOL.

Options:
    --fixture PATH   the text fixture (default tests/fixtures/functional/NAME.k3.txt under
                     Keras 3, NAME.tf2.txt under tf.keras 2; the other one when it is missing)
    --tol T          default 1e-5
    --floor F        default 1e-3
    --no-compile     load without the file's training config (load_model(compile=False))
    --step OPT       then take one train_on_batch on the fixture's (x, y) with the optimizer the
                     file was compiled with, and compare all weights with the fixture's
                     after_OPT (sgd or adam; the file must hold the fixed weights, compiled with
                     SGD(0.1) or Adam(0.01) and no step taken yet). Keras 3 cannot train a
                     model loaded from a legacy .h5 file that has optimizer weights (a Keras
                     bug: the loader builds the optimizer over no variables), so there the step
                     is skipped with a note.
It also says (without failing) whether the loaded weights equal the fixture's fixed weights.
"""
import argparse
import os
import sys
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import keras  # noqa: E402

warnings.filterwarnings("ignore", message=".*HDF5 file.*")
if keras.__version__.startswith("2."):
    import tensorflow as tf  # noqa: E402

    K = tf.keras
    VERSION = "tf2"
    DESCRIBE = f"tf.keras {keras.__version__} (tensorflow {tf.__version__})"
    load_model = tf.keras.models.load_model
else:
    K = keras
    VERSION = "k3"
    DESCRIBE = f"Keras {keras.__version__} (backend {keras.backend.backend()})"
    load_model = keras.saving.load_model

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "functional")
SEQ_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "seq")


def read_fixture(path):
    """(header lines split into words, {tensor name: float32 array})"""
    header, tensors = [], {}
    with open(path) as f:
        lines = [ln.split() for ln in f if ln.strip() and not ln.startswith("#")]
    i = 0
    while i < len(lines):
        t = lines[i]
        i += 1
        if t[0] != "tensor":
            header.append(t)
            continue
        n, vals = int(t[2]), []
        while len(vals) < n:
            vals += [float(v) for v in lines[i]]
            i += 1
        tensors[t[1]] = np.array(vals, np.float32)
    return header, tensors


def shaped(header, tensors, kind, prefix):
    """the x<i> (kind 'input') or y<i> / output<i> (kind 'output') tensors, batch-shaped; a
    sequence fixture's "shape <tensor> <rank> <dims>" lines give the shapes (None lengths),
    its "input <i> <name> <dtype> ..." lines the dtype (int32 token ids), and class-index
    targets (sparse_categorical_crossentropy) are int32"""
    batch = next(int(t[1]) for t in header if t[0] == "batch")
    shapes = {t[1]: [int(d) for d in t[3:3 + int(t[2])]] for t in header if t[0] == "shape"}
    out = []
    for t in header:
        if t[0] != kind:
            continue
        name = f"{prefix}{t[1]}"
        if name not in tensors:
            continue
        seq = kind == "input" and not t[3].lstrip("-").isdigit()
        if name in shapes:
            dims = shapes[name]
        else:
            rank = int(t[3] if kind == "input" else t[5])
            dims = [int(d) for d in t[(4 if kind == "input" else 6):][:rank]]
        a = tensors[name].reshape([batch] + dims)
        if (seq and t[3] == "int32") or (kind == "output" and prefix == "y" and
                                         t[3] == "sparse_categorical_crossentropy"):
            a = a.astype(np.int32)
        out.append(a)
    return out


def one_or_list(a):
    return a[0] if len(a) == 1 else list(a)


def as_list(a):
    return list(a) if isinstance(a, (list, tuple)) else [a]


def flat(arrays):
    return np.concatenate([np.asarray(a, np.float32).ravel() for a in arrays])


def compiled(model):
    return bool(getattr(model, "compiled", getattr(model, "_is_compiled", False)))


def rel_err(got, want, floor):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), floor)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("name")
    p.add_argument("file")
    p.add_argument("weights", nargs="?")
    p.add_argument("--fixture")
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--floor", type=float, default=1e-3)
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--step", choices=("sgd", "adam"))
    a = p.parse_args()

    fixture = a.fixture
    if fixture is None:
        other = "tf2" if VERSION == "k3" else "k3"
        base = SEQ_FIXTURES if os.path.exists(
            os.path.join(SEQ_FIXTURES, f"{a.name}.k3.txt")) else FIXTURES
        fixture = os.path.join(base, f"{a.name}.{VERSION}.txt")
        if not os.path.exists(fixture):
            fixture = os.path.join(base, f"{a.name}.{other}.txt")
    header, tensors = read_fixture(fixture)
    xs = shaped(header, tensors, "input", "x")
    ys = shaped(header, tensors, "output", "y")
    wants = shaped(header, tensors, "output", "output")
    print(f"{DESCRIBE}; fixture {os.path.relpath(fixture)}")

    ok = True
    if a.file.endswith(".json"):
        if not a.weights:
            raise SystemExit("a .json architecture needs a WEIGHTS file")
        with open(a.file) as f:
            model = K.models.model_from_json(f.read())
        model.load_weights(a.weights)
        how = f"model_from_json({os.path.basename(a.file)}) + load_weights({a.weights})"
    else:
        try:
            model = load_model(a.file, compile=not a.no_compile)
            how = f"load_model({os.path.basename(a.file)})"
        except Exception as e:  # say why, and still check the predictions
            print(f"FAIL: load_model({a.file}) with its training config: "
                  f"{type(e).__name__}: {e}")
            ok = False
            model = load_model(a.file, compile=False)
            how = f"load_model({os.path.basename(a.file)}, compile=False)"
    print(f"{how}: {type(model).__name__} '{model.name}', {len(model.weights)} weights"
          + (f", compiled with {type(model.optimizer).__name__}" if compiled(model) else ""))

    fixed = tensors["weights"]
    loaded = flat(model.get_weights())
    if loaded.size == fixed.size:
        print(f"  weights vs the fixture's fixed weights: max |diff| "
              f"{float(np.max(np.abs(loaded - fixed))):.3g} (information only)")
    else:
        print(f"  {loaded.size} weight values, the fixture has {fixed.size} (information only)")

    gots = as_list(model.predict(one_or_list(xs), batch_size=len(xs[0]), verbose=0))
    if len(gots) != len(wants):
        print(f"FAIL: {len(gots)} outputs, the fixture has {len(wants)}")
        return 1
    for i, (got, want) in enumerate(zip(gots, wants)):
        if got.shape != want.shape:
            print(f"FAIL: output {i} has shape {got.shape}, the fixture's {want.shape}")
            ok = False
            continue
        e = rel_err(got, want, a.floor)
        good = e <= a.tol
        ok &= good
        print(f"  output {i}: max relative error {e:.3g} {'ok' if good else 'FAIL'}")
    xbs = shaped(header, tensors, "input", "xb")
    if xbs:  # a sequence fixture's second batch, of another length
        gots = as_list(model.predict(one_or_list(xbs), batch_size=len(xbs[0]), verbose=0))
        for i, got in enumerate(gots):
            want = tensors[f"outputb{i}"].reshape(got.shape)
            e = rel_err(got, want, a.floor)
            good = e <= a.tol
            ok &= good
            print(f"  output {i} at length {xbs[0].shape[1]}: max relative error {e:.3g} "
                  f"{'ok' if good else 'FAIL'}")

    if a.step:
        if not compiled(model):
            print("FAIL: --step needs a compiled model (a training config in the file)")
            return 1
        try:
            model.train_on_batch(one_or_list(xs), one_or_list(ys))
        except ValueError as e:
            if VERSION == "k3" and "optimizer was built with 0 variables" in str(e):
                # keras/src/legacy/saving/legacy_h5_format.py builds a loaded optimizer over
                # model._trainable_variables, which is empty for a Functional or Sequential
                # model (its layers hold the variables): no legacy .h5 model that has an
                # optimizer_weights group can train after loading in Keras 3.
                print("  --step skipped: Keras 3 cannot train a model loaded from a legacy .h5 "
                      "file with optimizer weights (its loader builds the optimizer over no "
                      "variables); use the .keras file for --step")
                print("PASS" if ok else "FAIL")
                return 0 if ok else 1
            raise
        e = rel_err(flat(model.get_weights()), tensors[f"after_{a.step}"], a.floor)
        good = e <= a.tol
        ok &= good
        print(f"  one train_on_batch ({type(model.optimizer).__name__}) vs after_{a.step}: "
              f"max relative error {e:.3g} {'ok' if good else 'FAIL'}")

    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
