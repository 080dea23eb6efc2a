#!/usr/bin/env python3
"""gen_keras_rnn_fixtures.py: reference fixtures for kerac's SimpleRNN, LSTM and GRU
(tests/test_rnn.c).

How to run (from the repository root):
    KERAS_BACKEND=jax /work/venvs/k3/bin/python tests/gen_keras_rnn_fixtures.py   # Keras 3
    /work/venvs/tf2/bin/python tests/gen_keras_rnn_fixtures.py                    # tf.keras 2
Keras 3 (JAX) writes tests/fixtures/keras_rnn/<case>.txt and <case>.json per case: one layer on
a batch of sequences, optionally with a mask (the layer called as layer(x, mask=mask)):
    tensor x (batch, T, F); mask (batch, T; 1 real, 0 masked; only masked cases); weights
    (kernel, recurrent_kernel, bias, flat, Keras's order); y (targets, as the output);
    output (layer(x)); loss (MSE, mean over every value); dx (d loss / d x); grads (d loss /
    d weights); stepped (the weights after one SGD(learning_rate=0.1) step: w - 0.1 grads)
<case>.json is Sequential([Input((T, F)), layer]).to_json().
The dropout cases (*_drop*) run the layer in training mode with dropout and recurrent_dropout,
Keras's cell.get_dropout_mask / get_recurrent_dropout_mask patched to return fixed masks
(LSTM, GRU: one per gate, Keras 3's implementation 1; SimpleRNN: one), written as in_masks
(batch, masks, F) and rec_masks (batch, masks, units), which the C test injects
(kc_rnn_test_masks). `... gen_keras_rnn_fixtures.py dropout` writes only these.
It also writes whole models saved by Keras 3 (k3_model.keras, k3_model.h5) and, run with
tf.keras 2, tf2_model.h5, each with files.txt's x and that file's predictions.
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras_rnn")
BATCH, T, F, U = 3, 5, 3, 4
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 1, 1, 0]], dtype=bool)


def write_tensor(f, name, values):
    values = np.asarray(values, dtype=np.float32).ravel()
    f.write(f"tensor {name} {values.size}\n")
    for i in range(0, values.size, 8):
        f.write(" ".join("%.9g" % v for v in values[i:i + 8]) + "\n")


def file_model(keras, L):
    return keras.Sequential([
        keras.Input((T, F)),
        L.LSTM(4, return_sequences=True, name="lstm"),
        L.TimeDistributed(L.Dense(3, name="dense_td"), name="time_distributed"),
        L.Bidirectional(L.GRU(2, return_sequences=True, name="gru_b"), name="bidirectional"),
        L.GRU(3, return_sequences=True, go_backwards=True, name="gru"),
        L.GRU(3, reset_after=False, return_sequences=True, name="gru_1"),
        L.SimpleRNN(2, name="simple_rnn"),
        L.Dense(2, name="dense"),
    ])


def save_files(keras, L, tag, names, version):
    rng = np.random.default_rng(7)
    model = file_model(keras, L)
    model.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    x = rng.normal(0, 1, (BATCH, T, F)).astype(np.float32)
    pred = model.predict(x, verbose=0)
    os.makedirs(OUT_DIR, exist_ok=True)
    for n in names:
        model.save(os.path.join(OUT_DIR, n))
    with open(os.path.join(OUT_DIR, tag + "_files.txt"), "w") as f:
        f.write(f"# {tag}: {version}; {', '.join(names)}\n")
        write_tensor(f, "x", x)
        write_tensor(f, "output", pred)
    print(tag, names, pred.shape)


def dropout_cases(keras, jax):
    """the layers in training mode with fixed dropout masks (see the module's doc)"""
    L = keras.layers
    cases = {
        "lstm_drop_seq": (lambda: L.LSTM(U, dropout=0.3, recurrent_dropout=0.4,
                                         return_sequences=True), False),
        "lstm_drop_mask_back": (lambda: L.LSTM(U, dropout=0.3, recurrent_dropout=0.4,
                                               go_backwards=True), True),
        "gru_drop_seq": (lambda: L.GRU(U, dropout=0.3, recurrent_dropout=0.4,
                                       return_sequences=True), False),
        "gru_v1_drop_mask": (lambda: L.GRU(U, dropout=0.3, recurrent_dropout=0.4,
                                           reset_after=False, return_sequences=True), True),
        "gru_recdrop_only": (lambda: L.GRU(U, recurrent_dropout=0.4, reset_after=False), False),
        "simple_rnn_drop_seq": (lambda: L.SimpleRNN(U, dropout=0.3, recurrent_dropout=0.4,
                                                    return_sequences=True), False),
    }
    mse = keras.losses.MeanSquaredError()
    for seed, (name, (make, masked)) in enumerate(cases.items()):
        rng = np.random.default_rng(500 + seed)
        layer = make()
        model = keras.Sequential([keras.Input((T, F)), layer])
        weights = [rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]
        layer.set_weights(weights)
        x = rng.normal(0.0, 1.0, (BATCH, T, F)).astype(np.float32)
        mask = MASK if masked else None
        cell = layer.cell
        count = getattr(cell, "dropout_mask_count", None)
        n = count or 1

        def draw(rate, width):
            keep = rng.random((n, BATCH, width)) >= rate
            return (keep / np.float32(1.0 - rate)).astype(np.float32)

        in_m = draw(cell.dropout, F) if cell.dropout > 0 else None
        rec_m = draw(cell.recurrent_dropout, U) if cell.recurrent_dropout > 0 else None

        def as_keras(m):
            if m is None:
                return None
            return [keras.ops.convert_to_tensor(v) for v in m] if count else \
                keras.ops.convert_to_tensor(m[0])

        cell.get_dropout_mask = lambda step_input: as_keras(in_m)
        cell.get_recurrent_dropout_mask = lambda step_input: as_keras(rec_m)
        tv = [v.value for v in layer.trainable_variables]
        ntv = [v.value for v in layer.non_trainable_variables]

        def run(tw, xs):
            out, _ = layer.stateless_call(tw, ntv, xs, mask=mask, training=True)
            return out

        output = np.asarray(run(tv, x))
        y = rng.normal(0.0, 0.5, output.shape).astype(np.float32)
        loss, (grads, dx) = jax.value_and_grad(lambda tw, xs: mse(y, run(tw, xs)),
                                               argnums=(0, 1))(tv, x)
        grads = [np.asarray(g) for g in grads]
        with open(os.path.join(OUT_DIR, name + ".txt"), "w") as out:
            out.write(f"# {name}: keras {keras.__version__}, jax {jax.__version__}, seed "
                      f"{500 + seed}; {layer.__class__.__name__} on {(T, F)} in training mode, "
                      f"{n} fixed mask(s) each, output {output.shape[1:]}\n")
            write_tensor(out, "x", x)
            if masked:
                write_tensor(out, "mask", mask.astype(np.float32))
            write_tensor(out, "weights", np.concatenate([w.ravel() for w in weights]))
            if in_m is not None:
                write_tensor(out, "in_masks", in_m.transpose(1, 0, 2))
            if rec_m is not None:
                write_tensor(out, "rec_masks", rec_m.transpose(1, 0, 2))
            write_tensor(out, "y", y)
            write_tensor(out, "output", output)
            write_tensor(out, "loss", [np.float32(loss)])
            write_tensor(out, "dx", np.asarray(dx))
            write_tensor(out, "grads", np.concatenate([g.ravel() for g in grads]))
        with open(os.path.join(OUT_DIR, name + ".json"), "w") as out:
            out.write(model.to_json() + "\n")
        print(f"{name}: output {output.shape}, loss {float(loss):.6f}, {n} mask(s)")


def keras3():
    import jax
    import keras
    L = keras.layers
    cases = {
        "simple_rnn": (lambda: L.SimpleRNN(U), False),
        "simple_rnn_seq_back_relu": (lambda: L.SimpleRNN(
            U, activation="relu", return_sequences=True, go_backwards=True), False),
        "simple_rnn_mask_seq": (lambda: L.SimpleRNN(U, return_sequences=True), True),
        "lstm": (lambda: L.LSTM(U), False),
        "lstm_seq_back": (lambda: L.LSTM(U, return_sequences=True, go_backwards=True), False),
        "lstm_nobias_hs": (lambda: L.LSTM(
            U, use_bias=False, activation="softsign", recurrent_activation="hard_sigmoid",
            return_sequences=True), False),
        "lstm_mask": (lambda: L.LSTM(U), True),
        "lstm_mask_seq_back": (lambda: L.LSTM(U, return_sequences=True, go_backwards=True),
                               True),
        "gru": (lambda: L.GRU(U), False),
        "gru_seq_back_nobias": (lambda: L.GRU(
            U, return_sequences=True, go_backwards=True, use_bias=False), False),
        "gru_v1": (lambda: L.GRU(U, reset_after=False, return_sequences=True), False),
        "gru_v1_back": (lambda: L.GRU(U, reset_after=False, go_backwards=True), False),
        "gru_mask_seq": (lambda: L.GRU(U, return_sequences=True), True),
        "gru_v1_mask": (lambda: L.GRU(U, reset_after=False), True),
        "bidi_lstm_concat_seq": (lambda: L.Bidirectional(L.LSTM(U, return_sequences=True)),
                                 False),
        "bidi_gru_sum": (lambda: L.Bidirectional(L.GRU(U), merge_mode="sum"), False),
        "bidi_simple_rnn_mul_seq": (lambda: L.Bidirectional(
            L.SimpleRNN(U, return_sequences=True), merge_mode="mul"), False),
        "bidi_lstm_ave_mask_seq": (lambda: L.Bidirectional(
            L.LSTM(U, return_sequences=True), merge_mode="ave"), True),
        "bidi_gru_backward_layer": (lambda: L.Bidirectional(
            L.GRU(U), backward_layer=L.GRU(3, go_backwards=True, reset_after=False)), False),
        "td_dense": (lambda: L.TimeDistributed(L.Dense(U, activation="tanh")), False),
    }
    mse = keras.losses.MeanSquaredError()
    for seed, (name, (make, masked)) in enumerate(cases.items()):
        rng = np.random.default_rng(300 + seed)
        layer = make()
        model = keras.Sequential([keras.Input((T, F)), layer])
        weights = [rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]
        layer.set_weights(weights)
        x = rng.normal(0.0, 1.0, (BATCH, T, F)).astype(np.float32)
        mask = MASK if masked else None
        tv = [v.value for v in layer.trainable_variables]
        ntv = [v.value for v in layer.non_trainable_variables]

        def run(tw, xs):
            out, _ = layer.stateless_call(tw, ntv, xs, mask=mask)
            return out

        output = np.asarray(run(tv, x))
        y = rng.normal(0.0, 0.5, output.shape).astype(np.float32)
        loss, (grads, dx) = jax.value_and_grad(lambda tw, xs: mse(y, run(tw, xs)),
                                               argnums=(0, 1))(tv, x)
        grads = [np.asarray(g) for g in grads]
        stepped = [w - np.float32(0.1) * g for w, g in zip(weights, grads)]
        with open(os.path.join(OUT_DIR, name + ".txt"), "w") as out:
            out.write(f"# {name}: keras {keras.__version__}, jax {jax.__version__}, seed "
                      f"{300 + seed}; {layer.__class__.__name__} on {(T, F)}, output "
                      f"{output.shape[1:]}\n")
            write_tensor(out, "x", x)
            if masked:
                write_tensor(out, "mask", mask.astype(np.float32))
            write_tensor(out, "weights", np.concatenate([w.ravel() for w in weights]))
            write_tensor(out, "y", y)
            write_tensor(out, "output", output)
            write_tensor(out, "loss", [np.float32(loss)])
            write_tensor(out, "dx", np.asarray(dx))
            write_tensor(out, "grads", np.concatenate([g.ravel() for g in grads]))
            write_tensor(out, "stepped", np.concatenate([w.ravel() for w in stepped]))
        with open(os.path.join(OUT_DIR, name + ".json"), "w") as out:
            out.write(model.to_json() + "\n")
        print(f"{name}: output {output.shape}, loss {float(loss):.6f}")
    save_files(keras, L, "k3", ["k3_model.keras", "k3_model.h5"], "keras " + keras.__version__)
    dropout_cases(keras, jax)


def tf2():
    import tensorflow as tf
    save_files(tf.keras, tf.keras.layers, "tf2", ["tf2_model.h5"], "tf.keras " + tf.__version__)


if __name__ == "__main__":
    try:
        import keras
        k3 = keras.__version__.startswith("3")
    except ImportError:
        k3 = False
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        pass
    elif k3 and len(sys.argv) > 1 and sys.argv[1] == "dropout":
        import jax
        import keras
        dropout_cases(keras, jax)
    elif k3:
        keras3()
    else:
        tf2()
