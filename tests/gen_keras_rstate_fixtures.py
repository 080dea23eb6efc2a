#!/usr/bin/env python3
"""gen_keras_rstate_fixtures.py: reference fixtures for the recurrent layers' return_state,
initial_state and Bidirectional(merge_mode=None) (tests/test_rstate.c).

How to run (from the repository root):
    KERAS_BACKEND=jax /work/venvs/k3/bin/python tests/gen_keras_rstate_fixtures.py
    KERAS_BACKEND=jax /work/venvs/k3/bin/python tests/gen_keras_rstate_fixtures.py check DIR
    /work/venvs/tf2/bin/python tests/gen_keras_rstate_fixtures.py            # tf.keras 2.15
    /work/venvs/tf2/bin/python tests/gen_keras_rstate_fixtures.py check DIR
With Keras 3 the first writes tests/fixtures/rstate/<case>.keras, <case>.h5 (Keras 3's legacy
HDF5) and <case>.txt per case; with tf.keras 2 it writes <case>.tf2.h5 and <case>.tf2.txt (the
inputs and the predictions only). "check DIR" loads kerac's saves DIR/<case>.keras and
DIR/<case>.h5 (written by tests/test_rstate.c when KERAC_RSTATE_SAVE_DIR is set) in that Keras
(tf.keras 2: the .h5 only) and compares their predictions with the fixtures'.

bidi_mask, mask_state and bidi_mask_state (Masking before the recurrent layers) get no Keras 3
files (Keras 3 records their mask as op layers, NotEqual and Any): test_rstate.c builds them
and checks kerac's saves of them here.

<case>.txt: lines "tensor NAME COUNT" and the values (8 a line, %.9g):
    x<i>       each input's batch
    y          the targets (the one output's shape)
    weights    model.weights, flat, in order
    output     model.predict(x)
    loss       mean squared error of the output against y (training=True)
    grads      d loss / d each weight
    after_sgd  the weights after one train_on_batch with SGD(learning_rate=0.1), loss "mse"
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np  # noqa: E402
import keras  # noqa: E402

L = keras.layers
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "rstate")
B = 3


def enc_lstm():
    x = keras.Input((5, 3), name="x")
    _, h, c = L.LSTM(4, return_state=True, name="enc")(x)
    out = L.Dense(2, name="head")(L.Concatenate(name="hc")([h, c]))
    return keras.Model(x, out, name="enc_lstm"), [(5, 3)]


def gru_seq():
    x = keras.Input((5, 3), name="x")
    seq, h = L.GRU(4, return_sequences=True, return_state=True, name="gru")(x)
    s, hs = L.SimpleRNN(3, return_state=True, go_backwards=True, name="srnn")(seq)
    both = L.Concatenate(name="cat")([L.Flatten(name="flat")(seq), h, s, hs])
    return keras.Model(x, L.Dense(2, name="head")(both), name="gru_seq"), [(5, 3)]


def bidi_none():
    x = keras.Input((5, 3), name="x")
    f, b = L.Bidirectional(L.LSTM(3, return_sequences=True, name="lstm"), merge_mode=None,
                           name="bi")(x)
    cat = L.Concatenate(name="cat")([f, L.Dense(2, name="bd")(b)])
    return keras.Model(x, L.Dense(2, name="head")(L.Flatten(name="flat")(cat)),
                       name="bidi_none"), [(5, 3)]


def bidi_state():
    x = keras.Input((5, 3), name="x")
    f, b, fh, fc, bh, bc = L.Bidirectional(
        L.LSTM(3, return_sequences=True, return_state=True, name="lstm"), merge_mode=None,
        name="bi")(x)
    o, gf, gb = L.Bidirectional(L.GRU(2, return_state=True, name="gru"), name="bi2")(f)
    flat = L.Flatten(name="flat")(L.Concatenate(name="fb")([f, b]))
    cat = L.Concatenate(name="cat")([flat, fh, fc, bh, bc, o, gf, gb])
    return keras.Model(x, L.Dense(2, name="head")(cat), name="bidi_state"), [(5, 3)]


def bidi_mask():
    x = keras.Input((5, 3), name="x")
    m = L.Masking(name="masking")(x)
    f, b = L.Bidirectional(L.GRU(3, return_sequences=True, name="gru"), merge_mode=None,
                           name="bi")(m)
    return keras.Model(x, L.Dense(2, name="head")(L.Concatenate(name="cat")([f, b])),
                       name="bidi_mask"), [(5, 3)]


def mask_state():
    """the sequence output of a return_state LSTM carries Masking's mask (its states none): the
    GRU after it skips the masked steps"""
    x = keras.Input((5, 3), name="x")
    m = L.Masking(name="masking")(x)
    seq, h, c = L.LSTM(4, return_sequences=True, return_state=True, name="lstm")(m)
    g = L.GRU(3, name="gru")(seq)
    return keras.Model(x, L.Dense(2, name="head")(L.Concatenate(name="cat")([g, h, c])),
                       name="mask_state"), [(5, 3)]


def bidi_mask_state():
    """Bidirectional return_state after Masking: its outputs carry the mask, its states none"""
    x = keras.Input((5, 3), name="x")
    m = L.Masking(name="masking")(x)
    f, b, fh, fc, bh, bc = L.Bidirectional(
        L.LSTM(3, return_sequences=True, return_state=True, name="lstm"), merge_mode=None,
        name="bi")(m)
    o, gh, gb = L.Bidirectional(L.GRU(2, return_sequences=True, return_state=True, name="gru"),
                                name="bi2")(f)
    g = L.SimpleRNN(2, name="srnn")(L.Concatenate(name="ob")([o, b]))
    cat = L.Concatenate(name="cat")([g, fh, fc, bh, bc, gh, gb])
    return keras.Model(x, L.Dense(2, name="head")(cat), name="bidi_mask_state"), [(5, 3)]


def seq2seq():
    x = keras.Input((5, 3), name="enc_in")
    y = keras.Input((4, 2), name="dec_in")
    _, h, c = L.LSTM(4, return_state=True, name="enc")(x)
    d = L.LSTM(4, return_sequences=True, name="dec")(y, initial_state=[h, c])
    g = L.GRU(3, name="gdec")(y, initial_state=[L.Dense(3, name="bridge")(h)])
    out = L.Dense(2, name="head")(L.Concatenate(name="cat")([L.Flatten(name="flat")(d), g]))
    return keras.Model([x, y], out, name="seq2seq"), [(5, 3), (4, 2)]


CASES = {"enc_lstm": enc_lstm, "gru_seq": gru_seq, "bidi_none": bidi_none, "seq2seq": seq2seq,
         "bidi_mask": bidi_mask, "bidi_state": bidi_state, "mask_state": mask_state,
         "bidi_mask_state": bidi_mask_state}


def masked(name, xs):
    """bidi_mask, mask_state: some steps all zeros (Masking's masked steps)"""
    if name in ("bidi_mask", "mask_state", "bidi_mask_state"):
        xs[0][1, 3:] = 0
        xs[0][2, 1] = 0
    return xs


def write_tensor(f, name, values):
    values = np.asarray(values, dtype=np.float32).ravel()
    f.write(f"tensor {name} {values.size}\n")
    for i in range(0, values.size, 8):
        f.write(" ".join("%.9g" % v for v in values[i:i + 8]) + "\n")


def read_fixture(path):
    out, name, left, vals = {}, None, 0, []
    for line in open(path):
        if line.startswith("#"):
            continue
        if line.startswith("tensor "):
            _, name, n = line.split()
            left, vals = int(n), []
            continue
        vals += [float(v) for v in line.split()]
        if len(vals) == left:
            out[name] = np.array(vals, dtype=np.float32)
    return out


TF2 = keras.__version__.startswith("2.")


def gen_tf2(name):
    model, in_shapes = CASES[name]()
    rng = np.random.default_rng(len(name) * 31 + 5)
    model.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    xs = masked(name, [rng.normal(0, 1, (B,) + s).astype(np.float32) for s in in_shapes])
    pred = np.asarray(model.predict(xs if len(xs) > 1 else xs[0], verbose=0))
    os.makedirs(OUT, exist_ok=True)
    model.save(os.path.join(OUT, name + ".tf2.h5"), save_format="h5")
    with open(os.path.join(OUT, name + ".tf2.txt"), "w") as f:
        f.write(f"# kerac rstate fixture '{name}': tf.keras {keras.__version__}\n")
        for i, x in enumerate(xs):
            write_tensor(f, f"x{i}", x)
        write_tensor(f, "output", pred)
    print(name, "tf2", pred.shape)


def gen(name):
    if TF2:
        return gen_tf2(name)
    import jax
    model, in_shapes = CASES[name]()
    rng = np.random.default_rng(len(name) * 31 + 5)
    model.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    xs = masked(name, [rng.normal(0, 1, (B,) + s).astype(np.float32) for s in in_shapes])
    xs_in = xs if len(xs) > 1 else xs[0]
    pred = np.asarray(model.predict(xs_in, verbose=0))
    y = rng.normal(0, 1, pred.shape).astype(np.float32)
    weights = [np.asarray(v.value) for v in model.weights]
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]

    def loss_fn(tv):
        p, _ = model.stateless_call(tv, ntv, xs_in, training=True)
        sq = jax.numpy.mean((p - y) ** 2, axis=-1)
        if name == "bidi_mask":  # Keras 3: masked rows weigh 0, the mean over the rest
            keep = jax.numpy.asarray(np.any(xs[0] != 0, axis=-1), dtype=np.float32)
            return jax.numpy.sum(sq * keep) / jax.numpy.sum(keep)
        return jax.numpy.mean(sq)

    loss, grads = jax.value_and_grad(loss_fn)(tv)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    os.makedirs(OUT, exist_ok=True)
    if name not in ("bidi_mask", "mask_state", "bidi_mask_state"):  # their Keras 3 files record the mask as op
        # layers (NotEqual, Any); the C test builds them
        model.save(os.path.join(OUT, name + ".keras"))
        model.save(os.path.join(OUT, name + ".h5"))
    model.train_on_batch(xs_in, y)
    after = [np.asarray(v.value) for v in model.weights]
    with open(os.path.join(OUT, name + ".txt"), "w") as f:
        f.write(f"# kerac rstate fixture '{name}': keras {keras.__version__}, "
                f"{keras.backend.backend()}\n")
        for i, x in enumerate(xs):
            write_tensor(f, f"x{i}", x)
        write_tensor(f, "y", y)
        write_tensor(f, "weights", np.concatenate([w.ravel() for w in weights]))
        write_tensor(f, "output", pred)
        write_tensor(f, "loss", [float(loss)])
        write_tensor(f, "grads", np.concatenate([np.asarray(g).ravel() for g in grads]))
        write_tensor(f, "after_sgd", np.concatenate([w.ravel() for w in after]))
    print(name, pred.shape, "loss", float(loss))


def check(d):
    bad = 0
    for name in CASES:
        if name == "bidi_mask" and not TF2:
            continue
        fx = read_fixture(os.path.join(OUT, name + (".tf2.txt" if TF2 else ".txt")))
        xs = [fx[k].reshape((B,) + s) for k, s in
              zip(sorted(k for k in fx if k.startswith("x")), CASES[name]()[1])]
        for ext in (".h5",) if TF2 else (".keras", ".h5"):
            p = os.path.join(d, name + ext)
            if not os.path.exists(p):
                print(name + ext, "missing")
                bad += 1
                continue
            try:
                m = keras.saving.load_model(p)
            except Exception as e:  # noqa: BLE001
                # kerac's .h5 is tf.keras 2's layout, initial_state as the call's further
                # inputs; Keras 3 reads no such node (nor tf.keras 2's own file of it)
                known = not TF2 and ext == ".h5" and name == "seq2seq"
                print(f"{name}{ext}: {'known: ' if known else ''}Keras {keras.__version__} "
                      f"refuses it: {str(e)[:100]}")
                bad += not known
                continue
            got = np.asarray(m.predict(xs if len(xs) > 1 else xs[0], verbose=0)).ravel()
            err = float(np.max(np.abs(got - fx["output"])))
            print(f"{name}{ext}: Keras {keras.__version__} loads kerac's save, "
                  f"max |diff| {err:.3g}")
            bad += err > 1e-5
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        for n in sys.argv[1:] or CASES:
            gen(n)
