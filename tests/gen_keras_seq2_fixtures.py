#!/usr/bin/env python3
"""gen_keras_seq2_fixtures.py: end-to-end reference fixtures for recurrent and 1-D sequence
models (int32 token ids of None length padded with 0, Embedding(mask_zero) masks through
LSTM/GRU/SimpleRNN/Bidirectional/TimeDistributed/GlobalAveragePooling1D into the loss, and a
Conv1D/pooling stack) from real Keras 3 (JAX) and tf.keras 2, for tests/test_keras_seq2.c.

How to run (from the repository root):
    KERAS_BACKEND=jax /path/to/keras3/python tests/gen_keras_seq2_fixtures.py   # tested: keras 3.15.1, jax 0.10.2
    /path/to/tf2.15/python tests/gen_keras_seq2_fixtures.py                    # tested: tensorflow 2.15
    KERAS_BACKEND=jax /path/to/keras3/python tests/gen_keras_seq2_fixtures.py --check DIR
        loads every DIR/<name>.keras (what test_keras_seq2 saves from kerac when
        KERAC_SEQ2_SAVE_DIR=DIR is set) in Keras 3 and compares its predictions with the
        fixture's (exit status 1 on a difference over 1e-5 relative); also the stateful LSTM
        kerac resaves (stateful_lstm.keras, .h5: batch_shape (4, None)), the state carried
        from call to call. With tf.keras 2's python: stateful_lstm.h5 only (predict).
Files, in tests/fixtures/seq2/, for each model <name> (see MODELS):
    <name>.k3.txt                    the text fixture (format: tests/gen_keras_seq_fixtures.py's)
    <name>.keras   <name>.k3.h5      Keras 3 model.save (members deflated), its legacy HDF5 save
    <name>.tf2.h5                    tf.keras 2 model.save(..., save_format="h5")
The tf.keras 2 run writes no text fixture for these: it asserts its outputs and loss equal
<name>.k3.txt's within 1e-5 (the C test checks the tf.keras 2 files against it).
saved compiled with Adam(learning_rate=0.01) before any step. Also:
    stateful_lstm.{k3,tf2}.txt + files   a stateful LSTM (batch size fixed at 4): outputs on
        x then xb (the state carried over), reset_states, x again (tensors output0,
        outputb0, outputc0). tf.keras 2: predict; Keras 3: model(x) (Keras 3.15's JAX
        predict() runs stateless and keeps no state between calls: asserted here)
    lstm_cls.fit.{k3,tf2}.txt   lstm_cls fit for 2 epochs (batch_size 4, shuffle=False,
        SGD(0.1), metrics=["accuracy"]) on 8 samples: tensors x0, y0, loss (per epoch),
        accuracy (per epoch), weights (after)
Weights are drawn from a seed of the model's name and the weight's index in model.weights
(the same values in both Keras versions).
"""
import os
import sys
import zlib
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import warnings  # noqa: E402
import numpy as np  # noqa: E402
import keras  # noqa: E402
warnings.filterwarnings("ignore", message=".*HDF5 file.*")
if keras.__version__.startswith("2."):
    import tensorflow as tf  # noqa: E402
    tf.get_logger().setLevel("ERROR")
    tf.config.experimental.enable_op_determinism()
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    K = tf.keras
    VERSION = "tf2"
    KERAS_VERSION = f"{keras.__version__} (tf.keras, tensorflow {tf.__version__})"
else:
    import jax  # noqa: E402
    K = keras
    VERSION = "k3"
    KERAS_VERSION = f"{keras.__version__} (jax {jax.__version__})"
    if keras.backend.backend() != "jax":
        raise SystemExit("Keras 3: run with KERAS_BACKEND=jax")
L = K.layers
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "seq2")
BATCH = 4
VOCAB = 12

# ---- the models: (model, loss, target kind, lengths (batch, second batch)) ----


def tokens_in(name="tokens"):
    return K.Input((None,), dtype="int32", name=name)


def lstm_cls():
    """Embedding(mask_zero) -> LSTM(8) -> Dense(3, softmax): the mask skips padding steps"""
    i = tokens_in()
    h = L.Embedding(VOCAB, 5, mask_zero=True, name="embed")(i)
    h = L.LSTM(8, name="lstm")(h)
    o = L.Dense(3, activation="softmax", name="probs")(h)
    return K.Model(i, o, name="lstm_cls"), "sparse_categorical_crossentropy", "sparse", (7, 4)


def gru_bin():
    """Embedding(mask_zero) -> GRU(8) (reset_after=True) -> Dense(1, sigmoid)"""
    i = tokens_in()
    h = L.Embedding(VOCAB, 5, mask_zero=True, name="embed")(i)
    h = L.GRU(8, name="gru")(h)
    o = L.Dense(1, activation="sigmoid", name="prob")(h)
    return K.Model(i, o, name="gru_bin"), "binary_crossentropy", "binary", (6, 9)


def gru_v1_bin():
    """Embedding(mask_zero) -> GRU(8, reset_after=False) -> Dense(1, sigmoid)"""
    i = tokens_in()
    h = L.Embedding(VOCAB, 5, mask_zero=True, name="embed")(i)
    h = L.GRU(8, reset_after=False, name="gru")(h)
    o = L.Dense(1, activation="sigmoid", name="prob")(h)
    return K.Model(i, o, name="gru_v1_bin"), "binary_crossentropy", "binary", (6, 3)


def bilstm():
    """Embedding(mask_zero) -> Bidirectional(LSTM(6), concat) -> Dense(3, softmax)"""
    i = tokens_in()
    h = L.Embedding(VOCAB, 5, mask_zero=True, name="embed")(i)
    h = L.Bidirectional(L.LSTM(6, name="lstm"), merge_mode="concat", name="bidi")(h)
    o = L.Dense(3, activation="softmax", name="probs")(h)
    return K.Model(i, o, name="bilstm"), "sparse_categorical_crossentropy", "sparse", (6, 8)


def tagger():
    """Embedding(mask_zero) -> LSTM(6, return_sequences) -> TimeDistributed(Dense(4, softmax)),
    sparse targets per timestep, the loss masked on padding"""
    i = tokens_in()
    h = L.Embedding(VOCAB, 5, mask_zero=True, name="embed")(i)
    h = L.LSTM(6, return_sequences=True, name="lstm")(h)
    o = L.TimeDistributed(L.Dense(4, activation="softmax", name="dense"), name="tags")(h)
    return K.Model(i, o, name="tagger"), "sparse_categorical_crossentropy", "sparse", (6, 9)


def srnn_gap():
    """Embedding(mask_zero) -> SimpleRNN(5, return_sequences, go_backwards) ->
    GlobalAveragePooling1D (masked) -> Dense(2, softmax)"""
    i = tokens_in()
    h = L.Embedding(VOCAB, 4, mask_zero=True, name="embed")(i)
    h = L.SimpleRNN(5, return_sequences=True, go_backwards=True, name="rnn")(h)
    h = L.GlobalAveragePooling1D(name="gap")(h)
    o = L.Dense(2, activation="softmax", name="probs")(h)
    return K.Model(i, o, name="srnn_gap"), "sparse_categorical_crossentropy", "sparse", (7, 5)


def conv_pool():
    """Embedding (no mask) -> Conv1D(8, 3, causal, relu) -> MaxPooling1D(2) ->
    GlobalMaxPooling1D -> Dense(3, softmax), None length"""
    i = tokens_in()
    h = L.Embedding(VOCAB, 5, name="embed")(i)
    h = L.Conv1D(8, 3, padding="causal", activation="relu", name="conv")(h)
    h = L.MaxPooling1D(2, name="pool")(h)
    h = L.GlobalMaxPooling1D(name="gmp")(h)
    o = L.Dense(3, activation="softmax", name="probs")(h)
    return K.Model(i, o, name="conv_pool"), "sparse_categorical_crossentropy", "sparse", (8, 11)


def stateful_lstm():
    """a stateful LSTM (batch size fixed at BATCH): the final state is the next batch's"""
    if VERSION == "tf2":
        i = K.Input(batch_shape=(BATCH, None), dtype="int32", name="tokens")
    else:
        i = K.Input(batch_shape=(BATCH, None), dtype="int32", name="tokens")
    h = L.Embedding(VOCAB, 4, name="embed")(i)
    h = L.LSTM(5, stateful=True, name="lstm")(h)
    o = L.Dense(2, name="values")(h)
    return K.Model(i, o, name="stateful_lstm"), "mean_squared_error", "real", (5, 3)


MODELS = {f.__name__: f for f in (lstm_cls, gru_bin, gru_v1_bin, bilstm, tagger, srnn_gap,
                                  conv_pool)}


def shape_of(v):
    return tuple(int(d) for d in v.shape)


def weight_path(v):
    return v.path if VERSION == "k3" else v.name


def fixed_weights(name, model):
    values = []
    for k, v in enumerate(model.weights):
        shape = shape_of(v)
        rng = np.random.default_rng(zlib.crc32(f"{name}/{k}".encode()))
        if "embeddings" in v.name:
            w = rng.uniform(-0.5, 0.5, shape)
        elif len(shape) >= 2:
            w = rng.uniform(-1.0, 1.0, shape) * min(0.6, 1.5 / np.sqrt(shape[-2]))
        else:
            w = rng.uniform(-0.2, 0.2, shape)
        values.append(w.astype(np.float32))
    return values


def tokens(rng, length, shift, count=BATCH):
    """count rows of ids in [1, VOCAB), rows ending in 0, 1 or 2 zeros (padding), one zero
    inside row 1"""
    x = rng.integers(1, VOCAB, size=(count, length))
    for r in range(count):
        keep = length - ((r + shift) % 3)
        x[r, keep:] = 0
    x[1, 1] = 0
    return x.astype(np.int32)


def make_targets(rng, model, kind, length, count=BATCH):
    t = model.outputs[0]
    shape = (count,) + tuple(length if d is None else int(d) for d in t.shape[1:])
    if kind == "sparse":
        return rng.integers(0, shape[-1], size=shape[:-1]).astype(np.int32)
    if kind == "binary":
        return rng.integers(0, 2, size=shape).astype(np.float32)
    return rng.uniform(-1.0, 1.0, shape).astype(np.float32)


def flat(arrays):
    return np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in arrays])


def loss_and_grads_k3(model, x, y):
    model._symbolic_build(data_batch=(x, y, None))
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    mv = [v.value for v in model.metrics_variables]
    ov = [v.value for v in model.optimizer.variables]
    fn = jax.value_and_grad(model.compute_loss_and_updates, has_aux=True)
    (loss, (unscaled, _, _, _)), grads = fn(tv, ntv, mv, x, y, None, True, ov)
    return float(unscaled), [np.asarray(g) for g in grads]


def loss_and_grads_tf2(model, x, y):
    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x, y, y_pred, None)
        grads = tape.gradient(loss, model.trainable_variables)
        grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                 for g, v in zip(grads, model.trainable_variables)]
        return loss, grads

    loss, grads = step(x, y)
    return float(loss), [g.numpy() for g in grads]


def fresh(fn, weights, optimizer, metrics=None):
    K.backend.clear_session()
    model, loss, _, _ = fn()
    model.set_weights(weights)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


def write_tensor(f, name, a):
    v = np.asarray(a, dtype=np.float32).ravel()
    f.write(f"tensor {name} {v.size}\n")
    for k in range(0, v.size, 8):
        f.write(" ".join(f"{x:.9g}" for x in v[k:k + 8]) + "\n")


def write_shape(f, name, a):
    dims = np.asarray(a).shape[1:]
    f.write(f"shape {name} {len(dims)} {' '.join(map(str, dims))}\n")


def write_header(f, name, model, loss, trainable):
    f.write(f"# kerac sequence fixture '{name}', written by tests/gen_keras_seq2_fixtures.py\n")
    f.write(f"# keras {KERAS_VERSION}\n")
    f.write("inputs 1\n")
    f.write(f"input 0 tokens int32 1 -1\n")
    t = model.outputs[0]
    dims = [-1 if d is None else int(d) for d in t.shape[1:]]
    f.write("outputs 1\n")
    f.write(f"output 0 {t._keras_history[0].name} {loss} 1 {len(dims)} "
            f"{' '.join(map(str, dims))}\n")
    f.write(f"weights {len(model.weights)}\n")
    for i, (v, tr) in enumerate(zip(model.weights, trainable)):
        dims = shape_of(v)
        f.write(f"weight {i} {weight_path(v)} {tr} {len(dims)} {' '.join(map(str, dims))}\n")
    f.write(f"batch {BATCH}\n")


def deflate(path):
    """the .keras zip written again with its members deflated (Keras stores them): a fifth of
    the size, and Keras and kerac read either"""
    import zipfile
    with zipfile.ZipFile(path) as z:
        members = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for info, data in members:
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)


def save_files(name, model):
    base = os.path.join(OUT_DIR, name)
    if VERSION == "k3":
        from keras.src.legacy.saving import legacy_h5_format
        model.save(base + ".keras")
        deflate(base + ".keras")
        legacy_h5_format.save_model_to_hdf5(model, base + ".k3.h5")
    else:
        model.save(base + ".tf2.h5", save_format="h5")


def generate(seed, name):
    fn = MODELS[name]
    K.backend.clear_session()
    model, lossname, kind, (length, length_b) = fn()
    weights = fixed_weights(name, model)
    model.set_weights(weights)
    rng = np.random.default_rng(seed)
    x = tokens(rng, length, 0)
    y = make_targets(rng, model, kind, length)
    xb = tokens(rng, length_b, 1)
    pred = np.asarray(model(x, training=False))
    pred_b = np.asarray(model(xb, training=False))
    model = fresh(fn, weights, K.optimizers.SGD(learning_rate=0.1))
    trainable_ids = {id(v): i for i, v in enumerate(model.trainable_variables)}
    if VERSION == "k3":
        loss, tgrads = loss_and_grads_k3(model, x, y)
    else:
        loss, tgrads = loss_and_grads_tf2(model, x, y)
    grads = [tgrads[trainable_ids[id(v)]] if id(v) in trainable_ids
             else np.zeros(shape_of(v), np.float32) for v in model.weights]
    trainable = [int(id(v) in trainable_ids) for v in model.weights]
    w0, g = flat(weights), flat(grads)
    after, logs = {}, {}
    for tname, make_opt in (("after_sgd", lambda: K.optimizers.SGD(learning_rate=0.1)),
                            ("after_adam", lambda: K.optimizers.Adam(learning_rate=0.01))):
        m = fresh(fn, weights, make_opt())
        if tname == "after_adam":
            save_files(name, m)
        logs[tname] = m.train_on_batch(x, y, return_dict=True)
        after[tname] = flat(m.get_weights())
    for tname, lg in logs.items():
        assert abs(float(lg["loss"]) - loss) <= 1e-5 * max(1.0, abs(loss)), (name, tname, lg, loss)
    err = float(np.max(np.abs((w0 - after["after_sgd"]) / np.float32(0.1) - g)))
    assert err <= 2e-4 * max(1.0, float(np.max(np.abs(g)))), (name, err)
    if VERSION == "tf2":  # the same model and batches: Keras 3's fixture serves both
        t = read_tensors(os.path.join(OUT_DIR, f"{name}.k3.txt"))
        for tn, v in (("output0", pred), ("outputb0", pred_b), ("loss", [loss])):
            v = np.asarray(v, np.float32).ravel()
            err = float(np.max(np.abs(v - t[tn]) / np.maximum(np.abs(t[tn]), 1e-2)))
            assert err <= 1e-5, (name, tn, err)
        gerr = float(np.max(np.abs(g - t["grads"]))) / float(np.max(np.abs(t["grads"])))
        print(f"{name}: tf.keras 2 agrees with {name}.k3.txt (gradients within {gerr:.2g} of "
              f"the largest)")
        return
    path = os.path.join(OUT_DIR, f"{name}.{VERSION}.txt")
    with open(path, "w") as f:
        write_header(f, name, model, lossname, trainable)
        write_shape(f, "x0", x)
        write_tensor(f, "x0", x)
        write_shape(f, "y0", y)
        write_tensor(f, "y0", y)
        write_tensor(f, "weights", w0)
        write_tensor(f, "output0", pred)
        write_tensor(f, "loss", [loss])
        write_tensor(f, "grads", g)
        write_tensor(f, "after_sgd", after["after_sgd"])
        write_tensor(f, "after_adam", after["after_adam"])
        write_shape(f, "xb0", xb)
        write_tensor(f, "xb0", xb)
        write_shape(f, "outputb0", pred_b)
        write_tensor(f, "outputb0", pred_b)
    print(f"{name}: {w0.size} weights, loss {loss:.9g} -> {os.path.basename(path)}")


def reset(model):
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_states()


def generate_stateful(seed):
    name = "stateful_lstm"
    K.backend.clear_session()
    model, lossname, kind, (length, length_b) = stateful_lstm()
    weights = fixed_weights(name, model)
    model.set_weights(weights)
    model.compile(optimizer=K.optimizers.Adam(learning_rate=0.01), loss=lossname)
    save_files(name, model)
    rng = np.random.default_rng(seed)
    x = tokens(rng, length, 0)
    xb = tokens(rng, length_b, 1)
    if VERSION == "k3":
        # Keras 3.15 (JAX): predict() runs stateless and drops the new states (the next
        # predict starts from the same state again); calling the model carries them over
        assert np.array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
        reset(model)

        def run(a):
            return np.asarray(model(a, training=False))
    else:
        def run(a):
            return model.predict(a, batch_size=BATCH, verbose=0)
    p1 = run(x)
    p2 = run(xb)
    reset(model)
    p3 = run(x)
    reset(model)
    fresh_b = run(xb)
    assert np.max(np.abs(p2 - fresh_b)) > 1e-3, "the state did not carry over"
    assert np.max(np.abs(p1 - p3)) < 1e-6
    path = os.path.join(OUT_DIR, f"{name}.{VERSION}.txt")
    with open(path, "w") as f:
        write_header(f, name, model, lossname, [1] * len(model.weights))
        write_shape(f, "x0", x)
        write_tensor(f, "x0", x)
        write_tensor(f, "weights", flat(weights))
        write_tensor(f, "output0", p1)
        write_shape(f, "xb0", xb)
        write_tensor(f, "xb0", xb)
        write_shape(f, "outputb0", p2)
        write_tensor(f, "outputb0", p2)
        write_tensor(f, "outputc0", p3)
    print(f"{name}: carried state -> {os.path.basename(path)}")


def generate_fit(seed):
    name = "lstm_cls"
    K.backend.clear_session()
    model, lossname, kind, (length, _) = lstm_cls()
    weights = fixed_weights(name, model)
    rng = np.random.default_rng(seed)
    x = tokens(rng, length, 2, count=8)
    y = make_targets(rng, model, kind, length, count=8)
    model = fresh(lstm_cls, weights, K.optimizers.SGD(learning_rate=0.1), ["accuracy"])
    h = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    path = os.path.join(OUT_DIR, f"{name}.fit.{VERSION}.txt")
    with open(path, "w") as f:
        write_header(f, name, model, lossname, [1] * len(model.weights))
        write_shape(f, "x0", x)
        write_tensor(f, "x0", x)
        write_shape(f, "y0", y)
        write_tensor(f, "y0", y)
        write_tensor(f, "weights", flat(weights))
        write_tensor(f, "loss", h.history["loss"])
        write_tensor(f, "accuracy", h.history["accuracy"])
        write_tensor(f, "after", flat(model.get_weights()))
    print(f"{name} fit: {h.history} -> {os.path.basename(path)}")


def read_tensors(path):
    out, cur = {}, None
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w or w[0].startswith("#"):
                continue
            if w[0] == "tensor":
                cur = out.setdefault(w[1], [])
            elif w[0] in ("shape", "input", "inputs", "outputs", "output", "weights", "weight",
                          "batch"):
                cur = None
            elif cur is not None:
                cur.extend(float(v) for v in w)
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def check(directory):
    """kerac's saved .keras files load in Keras 3 and predict the fixtures' outputs"""
    worst, bad = 0.0, 0
    for name in MODELS if VERSION == "k3" else ():  # tf.keras 2 reads no .keras
        path = os.path.join(directory, f"{name}.keras")
        if not os.path.exists(path):
            print(f"{name}: no {path}")
            bad += 1
            continue
        t = read_tensors(os.path.join(OUT_DIR, f"{name}.k3.txt"))
        model = K.saving.load_model(path)
        for xn, on in (("x0", "output0"), ("xb0", "outputb0")):
            x = t[xn].astype(np.int32).reshape(BATCH, -1)
            p = np.asarray(model(x, training=False)).ravel()
            want = t[on]
            err = float(np.max(np.abs(p - want) / np.maximum(np.abs(want), 1e-2 * np.max(np.abs(want)))))
            worst = max(worst, err)
            ok = err <= 1e-5
            bad += not ok
            print(f"{name}: kerac's .keras in Keras {KERAS_VERSION}, {on}: max relative "
                  f"error {err:.3g} {'ok' if ok else 'DIFFERS'}")
    # the stateful LSTM resaved by kerac (.keras and .h5): the batch size in its batch_shape,
    # the state carried from call to call (Keras 3: model(x); tf.keras 2: predict)
    t = read_tensors(os.path.join(OUT_DIR, "stateful_lstm.k3.txt"))
    for ext in (".keras", ".h5"):
        path = os.path.join(directory, "stateful_lstm" + ext)
        if not os.path.exists(path) or (VERSION == "tf2" and ext == ".keras"):
            continue
        model = K.models.load_model(path)
        run = (lambda a: np.asarray(model(a, training=False))) if VERSION == "k3" else \
            (lambda a: model.predict(a, batch_size=BATCH, verbose=0))
        got = []
        for xn, on in (("x0", "output0"), ("xb0", "outputb0"), (None, None), ("x0", "outputc0")):
            if xn is None:
                reset(model)
                continue
            x = t[xn].astype(np.int32).reshape(BATCH, -1)
            p = run(x).ravel()
            want = t[on]
            err = float(np.max(np.abs(p - want) / np.maximum(np.abs(want), 1e-2 * np.max(np.abs(want)))))
            worst = max(worst, err)
            got.append(err)
            bad += err > 1e-5
        print(f"stateful_lstm: kerac's {ext} in Keras {KERAS_VERSION} (batch_shape "
              f"{model.inputs[0].shape}): output0, outputb0 (state carried), outputc0 (after "
              f"reset_states): max relative errors {', '.join('%.3g' % e for e in got)}")
    print(f"worst {worst:.3g}, {bad} problem(s)")
    return 1 if bad else 0


def main(argv):
    if argv[:1] == ["--check"]:
        return check(argv[1])
    wanted = argv or list(MODELS) + ["stateful_lstm", "fit"]
    os.makedirs(OUT_DIR, exist_ok=True)
    print(f"Keras {KERAS_VERSION}")
    for seed, name in enumerate(MODELS, start=1):
        if name in wanted:
            generate(seed, name)
    if "stateful_lstm" in wanted:
        generate_stateful(100)
    if "fit" in wanted:
        generate_fit(101)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
