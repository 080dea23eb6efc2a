#!/usr/bin/env python3
"""gen_keras_seq_fixtures.py: reference fixtures for sequence models (token ids as int32 inputs,
None lengths, Embedding, Masking, masks through Dense, merges and the loss) from real Keras 3
(JAX) and from tf.keras 2, for kerac's C test tests/test_keras_seq.c.

How to run (from the repository root):
    KERAS_BACKEND=jax /path/to/keras3/python tests/gen_keras_seq_fixtures.py   # tested: keras 3.15.1, jax 0.10.2
    /path/to/tf2.15/python tests/gen_keras_seq_fixtures.py                    # tested: tensorflow 2.15
Files, in tests/fixtures/seq/, for each model <name> (see MODELS):
    <name>.k3.txt  <name>.tf2.txt    the text fixture below, from Keras 3 / tf.keras 2
    <name>.keras   <name>.k3.h5      Keras 3 model.save, and its legacy HDF5 save
    <name>.tf2.h5                    tf.keras 2 model.save(..., save_format="h5")
    <name>.tf2_summary.txt           tf.keras 2's model.summary() (Functional models)
saved compiled with Adam(learning_rate=0.01) before any step.

Text format (as tests/gen_keras_functional_fixtures.py's, plus dtypes and None lengths):
    inputs <n>
    input <i> <layer name> <dtype> <rank> <dims...>      (None as -1)
    outputs <n>
    output <i> <layer name> <loss name> <loss weight> <rank> <dims...>
    weights <n>
    weight <i> <path> <trainable 0/1> <rank> <dims...>
    batch <b>
    tensor x<i> / y<i> / weights / output<i> / loss / grads / after_sgd / after_adam
    shape x<i> <rank> <dims...>     this batch's per-sample shape of input i (its length)
    shape y<i> <rank> <dims...>     the targets' (class indices: the output's without its last axis)
    tensor xb<i> / outputb<i>       a second batch of another length (predict only)
    shape xb<i> ... / shape outputb<i> ...
Targets of sparse_categorical_crossentropy are class indices (stored as floats); int32 inputs
hold token ids (stored as floats). The loss and gradients are the train step's (training=True),
the mask of the output applied (Keras 3: masked rows weigh 0, the mean over the rows left).

Known Keras 3 / tf.keras 2 differences: tf.keras 2's merge layers AND the masks of their
inputs where Keras 3 ORs them (and drops the mask unless every input has one), so the losses of
merge_masks differ (its outputs agree); the C test checks tf.keras 2's outputs there only.
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
warnings.filterwarnings("ignore", message=".*input_length.*")
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
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "seq")
BATCH = 4

# ---- the models: (model, [(loss, loss weight, target kind)], lengths (batch, second batch)) ----


def seq_sparse():
    """int32 tokens of any length -> Embedding(mask_zero) -> Dense per timestep -> softmax
    tags, sparse_categorical_crossentropy on (batch, steps) labels under the mask"""
    i = K.Input((None,), dtype="int32", name="tokens")
    h = L.Embedding(20, 6, mask_zero=True, name="embed")(i)
    h = L.Dense(5, activation="tanh", name="hidden")(h)
    h = L.Dropout(0.0, name="drop")(h)
    o = L.Dense(3, activation="softmax", name="tags")(h)
    return K.Model(i, o, name="seq_sparse"), [("sparse_categorical_crossentropy", 1.0, "sparse")], (6, 9)


def seq_mse():
    """a Sequential: int32 input, Embedding(mask_zero), Dense(relu), Dense per timestep, mse"""
    m = K.Sequential([K.Input((None,), dtype="int32", name="ids"),
                      L.Embedding(15, 4, mask_zero=True, name="embed"),
                      L.Dense(6, activation="relu", name="hidden"),
                      L.Dense(2, name="values")], name="seq_mse")
    return m, [("mean_squared_error", 1.0, "real")], (5, 8)


def emb_flat():
    """fixed length, no mask: Embedding (L2 regularizer) -> Flatten -> Dense; tf.keras 2's
    Sequential gives the Embedding input_length (its float32 input takes the ids as floats)"""
    if VERSION == "tf2":
        emb = L.Embedding(30, 4, input_length=6, embeddings_regularizer=K.regularizers.L2(0.01),
                          name="embed")
        layers = [emb]
    else:
        layers = [K.Input((6,), dtype="int32", name="ids"),
                  L.Embedding(30, 4, embeddings_regularizer=K.regularizers.L2(0.01), name="embed")]
    m = K.Sequential(layers + [L.Flatten(name="flatten"),
                               L.Dense(3, activation="softmax", name="probs")], name="emb_flat")
    return m, [("categorical_crossentropy", 1.0, "onehot")], (6, 6)


def masking_seq():
    """float features of any length, Masking(0) (all-zero timesteps masked) -> Dense -> mse"""
    i = K.Input((None, 3), name="features")
    h = L.Masking(0.0, name="mask")(i)
    h = L.Dense(4, activation="relu", name="hidden")(h)
    o = L.Dense(2, name="values")(h)
    return K.Model(i, o, name="masking_seq"), [("mean_squared_error", 1.0, "real")], (5, 7)


def merge_masks():
    """two masked embeddings merged: Add (masks OR'ed in Keras 3), Concatenate with an unmasked
    branch, a sigmoid output per timestep, binary_crossentropy"""
    a = K.Input((None,), dtype="int32", name="in_a")
    b = K.Input((None,), dtype="int32", name="in_b")
    ea = L.Embedding(12, 4, mask_zero=True, name="embed_a")(a)
    eb = L.Embedding(12, 4, mask_zero=True, name="embed_b")(b)
    s = L.Add(name="add")([ea, eb])
    d = L.Dense(3, activation="tanh", name="side")(ea)
    h = L.Concatenate(name="concat")([s, d])
    o = L.Dense(2, activation="sigmoid", name="probs")(h)
    return K.Model([a, b], o, name="merge_masks"), [("binary_crossentropy", 1.0, "binary")], (6, 4)


def seq_nomask():
    """Embedding without mask_zero: every timestep counts; categorical_crossentropy per step"""
    i = K.Input((None,), dtype="int32", name="tokens")
    h = L.Embedding(10, 3, name="embed")(i)
    o = L.Dense(3, activation="softmax", name="probs")(h)
    return K.Model(i, o, name="seq_nomask"), [("categorical_crossentropy", 1.0, "onehot")], (5, 3)


MODELS = {f.__name__: f for f in (seq_sparse, seq_mse, emb_flat, masking_seq, merge_masks,
                                  seq_nomask)}
LOSS_CLASSES = {
    "categorical_crossentropy": K.losses.CategoricalCrossentropy,
    "sparse_categorical_crossentropy": K.losses.SparseCategoricalCrossentropy,
    "binary_crossentropy": K.losses.BinaryCrossentropy,
    "mean_squared_error": K.losses.MeanSquaredError,
}


def shape_of(v):
    return tuple(int(d) for d in v.shape)


def weight_path(v):
    return v.path if VERSION == "k3" else v.name


def weight_keys(model):
    keys = {}
    for layer in model.layers:
        for w in layer.weights:
            short = w.name.split("/")[-1].split(":")[0]
            keys.setdefault(id(w), f"{layer.name}/{short}")
    return keys


def fixed_weights(name, model):
    keys = weight_keys(model)
    values = []
    for v in model.weights:
        key = keys[id(v)]
        shape = shape_of(v)
        rng = np.random.default_rng(zlib.crc32(f"{name}/{key}".encode()))
        if key.endswith("/embeddings"):
            w = rng.uniform(-0.5, 0.5, shape)
        elif len(shape) >= 2:
            w = rng.uniform(-1.0, 1.0, shape) * min(0.6, 1.5 / np.sqrt(shape[0]))
        else:
            w = rng.uniform(-0.2, 0.2, shape)
        values.append(w.astype(np.float32))
    return values


def input_dtype(t):
    return "int32" if "int" in str(t.dtype) else "float32"


def tokens(rng, vocab, length, pad, shift):
    """BATCH rows of ids in [1, vocab), trailing zeros (padding) in some rows and one zero
    inside a row when pad; shift moves the padding between rows (inputs differ)"""
    x = rng.integers(1, vocab, size=(BATCH, length))
    if pad:
        for r in range(BATCH):
            keep = length - ((r + shift) % 3)  # rows end in 0, 1 or 2 zeros
            x[r, keep:] = 0
        x[1, 1] = 0  # a masked step inside a sequence
    return x.astype(np.int32)


def vocab_of(model, i):
    """the input_dim of the Embedding reading input i (None: float features)"""
    t = model.inputs[i]
    for layer in model.layers:
        if isinstance(layer, L.Embedding):
            try:
                src = layer.input
            except Exception:
                src = None
            if src is t or len(model.inputs) == 1:
                return layer.input_dim
    return None


def make_inputs(rng, model, length):
    xs = []
    for i, t in enumerate(model.inputs):
        v = vocab_of(model, i)
        if v is not None:
            pad = any(getattr(l, "mask_zero", False) for l in model.layers)
            xs.append(tokens(rng, v, length, pad, i))
        else:
            x = rng.uniform(-1.0, 1.0, (BATCH, length) + tuple(int(d) for d in t.shape[2:]))
            x[0, -1] = 0.0  # masked timesteps (every feature 0)
            x[2, 1] = 0.0
            x[3, -2:] = 0.0
            xs.append(x.astype(np.float32))
    return xs


def make_targets(rng, model, outputs, length):
    ys = []
    for t, (_, _, kind) in zip(model.outputs, outputs):
        shape = (BATCH,) + tuple(length if d is None else int(d) for d in t.shape[1:])
        if kind == "sparse":
            ys.append(rng.integers(0, shape[-1], size=shape[:-1]).astype(np.int32))
        elif kind == "onehot":
            labels = rng.integers(0, shape[-1], size=shape[:-1])
            ys.append(np.eye(shape[-1], dtype=np.float32)[labels])
        elif kind == "binary":
            ys.append(rng.integers(0, 2, size=shape).astype(np.float32))
        else:
            ys.append(rng.uniform(-1.0, 1.0, shape).astype(np.float32))
    return ys


def one_or_list(a):
    return a[0] if len(a) == 1 else list(a)


def as_list(a):
    return list(a) if isinstance(a, (list, tuple)) else [a]


def flat(arrays):
    return np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in arrays])


def compile_model(model, outputs, optimizer):
    model.compile(optimizer=optimizer, loss=outputs[0][0])


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
    """tf.keras 2: the train_step's GradientTape in a tf.function, as fit runs it (an
    Embedding's gradient comes as IndexedSlices: made dense)"""
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


def names(ts):
    return [t._keras_history[0].name for t in ts]


def fresh(name, weights, optimizer):
    K.backend.clear_session()
    model, outputs, _ = MODELS[name]()
    model.set_weights(weights)
    compile_model(model, outputs, optimizer)
    return model, outputs


def write_tensor(f, name, a):
    v = np.asarray(a, dtype=np.float32).ravel()
    f.write(f"tensor {name} {v.size}\n")
    for k in range(0, v.size, 8):
        f.write(" ".join(f"{x:.9g}" for x in v[k:k + 8]) + "\n")


def write_shape(f, name, a):
    dims = np.asarray(a).shape[1:]
    f.write(f"shape {name} {len(dims)} {' '.join(map(str, dims))}\n")


def generate(seed, name):
    K.backend.clear_session()
    model, outputs, (length, length_b) = MODELS[name]()
    weights = fixed_weights(name, model)
    model.set_weights(weights)
    rng = np.random.default_rng(seed)
    xs = make_inputs(rng, model, length)
    ys = make_targets(rng, model, outputs, length)
    xbs = make_inputs(rng, model, length_b)
    x, y = one_or_list(xs), one_or_list(ys)
    preds = [np.asarray(p) for p in as_list(model(x, training=False))]
    preds_b = [np.asarray(p) for p in as_list(model(one_or_list(xbs), training=False))]
    model, _ = fresh(name, weights, K.optimizers.SGD(learning_rate=0.1))
    trainable_ids = {id(v): i for i, v in enumerate(model.trainable_variables)}
    if VERSION == "k3":
        loss, tgrads = loss_and_grads_k3(model, x, y)
    else:
        loss, tgrads = loss_and_grads_tf2(model, x, y)
    grads = [tgrads[trainable_ids[id(v)]] if id(v) in trainable_ids
             else np.zeros(shape_of(v), np.float32) for v in model.weights]
    trainable = [int(id(v) in trainable_ids) for v in model.weights]
    w0 = flat(weights)
    g = flat(grads)
    after, logs = {}, {}
    for tname, make_opt in (("after_sgd", lambda: K.optimizers.SGD(learning_rate=0.1)),
                            ("after_adam", lambda: K.optimizers.Adam(learning_rate=0.01))):
        m, _ = fresh(name, weights, make_opt())
        if tname == "after_adam":
            save_files(name, m)
        logs[tname] = m.train_on_batch(x, y, return_dict=True)
        after[tname] = flat(m.get_weights())
    for tname, lg in logs.items():
        assert abs(float(lg["loss"]) - loss) <= 1e-5 * max(1.0, abs(loss)), (name, tname, lg, loss)
    sgd_step = (w0 - after["after_sgd"]) / np.float32(0.1)
    err = float(np.max(np.abs(sgd_step - g)))
    assert err <= 2e-4 * max(1.0, float(np.max(np.abs(g)))), (name, err)
    path = os.path.join(OUT_DIR, f"{name}.{VERSION}.txt")
    with open(path, "w") as f:
        f.write(f"# kerac sequence fixture '{name}', written by tests/gen_keras_seq_fixtures.py\n")
        f.write(f"# keras {KERAS_VERSION}\n")
        f.write(f"inputs {len(model.inputs)}\n")
        for i, (n, t) in enumerate(zip(names(model.inputs), model.inputs)):
            dims = [-1 if d is None else int(d) for d in t.shape[1:]]
            f.write(f"input {i} {n} {input_dtype(t)} {len(dims)} {' '.join(map(str, dims))}\n")
        f.write(f"outputs {len(model.outputs)}\n")
        for i, (n, t, o) in enumerate(zip(names(model.outputs), model.outputs, outputs)):
            dims = [-1 if d is None else int(d) for d in t.shape[1:]]
            f.write(f"output {i} {n} {o[0]} {o[1]:.9g} {len(dims)} {' '.join(map(str, dims))}\n")
        f.write(f"weights {len(model.weights)}\n")
        for i, (v, t) in enumerate(zip(model.weights, trainable)):
            dims = shape_of(v)
            f.write(f"weight {i} {weight_path(v)} {t} {len(dims)} {' '.join(map(str, dims))}\n")
        f.write(f"batch {BATCH}\n")
        for i, xi in enumerate(xs):
            write_shape(f, f"x{i}", xi)
            write_tensor(f, f"x{i}", xi)
        for i, yi in enumerate(ys):
            write_shape(f, f"y{i}", yi)
            write_tensor(f, f"y{i}", yi)
        write_tensor(f, "weights", w0)
        for i, p in enumerate(preds):
            write_tensor(f, f"output{i}", p)
        write_tensor(f, "loss", [loss])
        write_tensor(f, "grads", g)
        write_tensor(f, "after_sgd", after["after_sgd"])
        write_tensor(f, "after_adam", after["after_adam"])
        for i, xi in enumerate(xbs):
            write_shape(f, f"xb{i}", xi)
            write_tensor(f, f"xb{i}", xi)
        for i, p in enumerate(preds_b):
            write_shape(f, f"outputb{i}", p)
            write_tensor(f, f"outputb{i}", p)
    print(f"{name}: {w0.size} weights, loss {loss:.9g} -> {os.path.basename(path)}")


def save_files(name, model):
    base = os.path.join(OUT_DIR, name)
    if VERSION == "k3":
        from keras.src.legacy.saving import legacy_h5_format
        model.save(base + ".keras")
        legacy_h5_format.save_model_to_hdf5(model, base + ".k3.h5")
    else:
        model.save(base + ".tf2.h5", save_format="h5")
        if not isinstance(model, K.Sequential):  # kc_summary prints tf.keras 2.15's table
            lines = []
            model.summary(print_fn=lines.append)
            with open(base + ".tf2_summary.txt", "w") as f:
                f.write("\n".join(lines) + "\n")


def main(argv):
    wanted = argv or list(MODELS)
    os.makedirs(OUT_DIR, exist_ok=True)
    print(f"Keras {KERAS_VERSION}")
    for seed, name in enumerate(MODELS, start=1):
        if name in wanted:
            generate(seed, name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
