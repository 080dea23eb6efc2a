#!/usr/bin/env python3
"""gen_keras_metric_fixtures.py: Keras 3's metrics (JAX backend) as the plain-text fixtures
tests/test_metrics.c reproduces, a small fit whose History kerac must match, a .keras file Keras
compiled with metrics, and the check that Keras reads back the files kerac writes.

How to run (from the repository root):
    KERAS_BACKEND=jax /work/venvs/k3/bin/python tests/gen_keras_metric_fixtures.py
        rewrites tests/fixtures/keras_metrics/: cases.txt, fit.txt, sparse_topk.keras and
        sparse_topk.txt
    KERAS_BACKEND=jax /work/venvs/k3/bin/python tests/gen_keras_metric_fixtures.py check
        builds build/tools/write_metric_models, which loads sparse_topk.keras and writes it
        back (.keras and .h5) together with a model compiled in C with many metrics (.keras,
        .h5) and kerac's evaluate() of each; Keras 3 loads every file, must find the same
        metrics (class, options, names) and evaluate() to kerac's values (1e-5 relative)
    /work/venvs/tf2/bin/python tests/gen_keras_metric_fixtures.py check-tf2 DIR
        tf.keras 2 loads the .h5 files of a check run's DIR (kept when check is given --keep)
    /work/venvs/tf2/bin/python tests/gen_keras_metric_fixtures.py tf2
        rewrites tf2_metrics.h5 and tf2_metrics.txt: a tf.keras 2.15 model compiled with
        metrics ["acc", "top_k_categorical_accuracy", AUC(), "mse", Precision(top_k=2)] and its
        evaluate() (the training_config kerac reads: strings, tf.keras 2's class configs)

cases.txt: plain text, one block per case:
    case <label>
    spec <key>=<value> ...      kind=<Keras class or function name>, then the options given
    shape <cols> <rows per sample> <sparse: y_true holds one class index per sample>
    batch <n> <weighted>        then y_true, y_pred (and weights when weighted) lines: the
                                metric's update_state with that batch (3 batches of 5, 3, 7)
    value <result() after every batch>
fit.txt: a Dense(3, softmax) model's weights, data and History of fit(epochs=2, batch_size=4,
shuffle=False, validation_data) and evaluate() with metrics accuracy, mse, AUC(), AUC(curve=PR),
TopKCategoricalAccuracy(k=2), Precision(), Recall(class_id=1), F1Score(average="macro").
"""
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "keras_metrics")
MODE = sys.argv[1] if len(sys.argv) > 1 else "keras3"

import numpy as np  # noqa: E402

if MODE in ("check-tf2", "tf2"):
    import tensorflow as tf  # noqa: E402

    keras = tf.keras
else:
    import jax  # noqa: E402
    import keras  # noqa: E402

    if keras.backend.backend() != "jax":
        raise SystemExit("run with KERAS_BACKEND=jax")

rng = np.random.default_rng(11)
SIZES = (5, 3, 7)


def fmt(a):
    return " ".join("%.9g" % v for v in np.asarray(a, dtype="float64").ravel())


# ---- data makers: (n, cols) arrays with ties and edge values ----------------------------------

def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def probs(n, c):
    p = softmax(rng.uniform(-2, 2, (n, c))).astype("float32")
    if n > 2:
        p[0] = 1.0 / c                                  # a row of ties
        p[1, :2] = p[1, :2].max()                       # two equal largest
        p[2, -1] = p[2, 0]                              # the label may tie another class
    return p


def logits(n, c):
    z = rng.uniform(-3, 3, (n, c)).astype("float32")
    if n > 1:
        z[1, 1:] = z[1, 0]
    return z


def onehot(n, c):
    return np.eye(c, dtype="float32")[rng.integers(0, c, n)]


def sparse(n, c):
    return rng.integers(0, c, n).astype("float32")


def binary(n, c):
    return rng.integers(0, 2, (n, c)).astype("float32")


def edges(n, c):
    """probabilities with values on AUC's thresholds (k / 199), 0, 1, 0.5 and outside [0, 1]"""
    p = rng.uniform(0, 1, (n, c)).astype("float32")
    special = np.array([0.0, 1.0, 0.5, 3 / 199, 100 / 199, 198 / 199, -0.2, 1.3, 0.3, 0.7],
                       dtype="float32")
    flat = p.ravel()
    idx = rng.choice(flat.size, min(flat.size, 6), replace=False)
    flat[idx] = rng.choice(special, idx.size)
    return flat.reshape(n, c)


def real(n, c):
    return rng.uniform(-1, 1, (n, c)).astype("float32")


def positive(n, c):
    return rng.uniform(0.2, 2, (n, c)).astype("float32")


def signed(n, c):
    return 2 * binary(n, c) - 1


M = keras.metrics
L = keras.losses
# (label, spec keys for the C side, Keras metric maker, y_true maker, y_pred maker, cols, rows per
# sample, weighted)
CASES = [
    ("binary_accuracy", dict(kind="BinaryAccuracy"), lambda: M.BinaryAccuracy(), binary, edges, 3, 1, 0),
    ("binary_accuracy_t07", dict(kind="BinaryAccuracy", threshold=0.7),
     lambda: M.BinaryAccuracy(threshold=0.7), binary, edges, 3, 1, 0),
    ("binary_accuracy_w", dict(kind="BinaryAccuracy"), lambda: M.BinaryAccuracy(), binary, edges, 2, 1, 1),
    ("categorical_accuracy", dict(kind="CategoricalAccuracy"), lambda: M.CategoricalAccuracy(),
     onehot, probs, 4, 1, 0),
    ("categorical_accuracy_rank3", dict(kind="CategoricalAccuracy"), lambda: M.CategoricalAccuracy(),
     onehot, probs, 3, 2, 0),
    ("sparse_categorical_accuracy", dict(kind="SparseCategoricalAccuracy"),
     lambda: M.SparseCategoricalAccuracy(), sparse, probs, 4, 1, 0),
    ("top_k", dict(kind="TopKCategoricalAccuracy"), lambda: M.TopKCategoricalAccuracy(),
     onehot, probs, 7, 1, 0),
    ("top_k2", dict(kind="TopKCategoricalAccuracy", k=2), lambda: M.TopKCategoricalAccuracy(k=2),
     onehot, probs, 5, 1, 0),
    ("top_k2_w", dict(kind="TopKCategoricalAccuracy", k=2), lambda: M.TopKCategoricalAccuracy(k=2),
     onehot, probs, 4, 1, 1),
    ("sparse_top_k3", dict(kind="SparseTopKCategoricalAccuracy", k=3),
     lambda: M.SparseTopKCategoricalAccuracy(k=3), sparse, probs, 5, 1, 0),
    ("sparse_top_k_more_than_classes", dict(kind="SparseTopKCategoricalAccuracy"),
     lambda: M.SparseTopKCategoricalAccuracy(), sparse, probs, 4, 1, 0),
    ("mse", dict(kind="MeanSquaredError"), lambda: M.MeanSquaredError(), real, real, 3, 1, 0),
    ("mse_rank3_w", dict(kind="MeanSquaredError"), lambda: M.MeanSquaredError(), real, real, 3, 2, 1),
    ("mae", dict(kind="MeanAbsoluteError"), lambda: M.MeanAbsoluteError(), real, real, 3, 1, 0),
    ("rmse", dict(kind="RootMeanSquaredError"), lambda: M.RootMeanSquaredError(), real, real, 3, 1, 0),
    ("rmse_w", dict(kind="RootMeanSquaredError"), lambda: M.RootMeanSquaredError(), real, real, 2, 1, 1),
    ("mape", dict(kind="MeanAbsolutePercentageError"), lambda: M.MeanAbsolutePercentageError(),
     positive, real, 3, 1, 0),
    ("msle", dict(kind="MeanSquaredLogarithmicError"), lambda: M.MeanSquaredLogarithmicError(),
     positive, positive, 3, 1, 0),
    ("cosine_similarity", dict(kind="CosineSimilarity"), lambda: M.CosineSimilarity(), real, real, 3, 1, 0),
    ("logcosh", dict(kind="LogCoshError"), lambda: M.LogCoshError(), real, real, 3, 1, 0),
    ("bce", dict(kind="BinaryCrossentropy"), lambda: M.BinaryCrossentropy(), binary, edges, 3, 1, 0),
    ("bce_logits_ls", dict(kind="BinaryCrossentropy", from_logits=1, label_smoothing=0.1),
     lambda: M.BinaryCrossentropy(from_logits=True, label_smoothing=0.1), binary, logits, 3, 1, 0),
    ("cce", dict(kind="CategoricalCrossentropy"), lambda: M.CategoricalCrossentropy(), onehot, probs, 4, 1, 0),
    ("cce_logits", dict(kind="CategoricalCrossentropy", from_logits=1),
     lambda: M.CategoricalCrossentropy(from_logits=True), onehot, logits, 4, 1, 0),
    ("cce_ls_w", dict(kind="CategoricalCrossentropy", label_smoothing=0.2),
     lambda: M.CategoricalCrossentropy(label_smoothing=0.2), onehot, probs, 4, 1, 1),
    ("scce", dict(kind="SparseCategoricalCrossentropy"), lambda: M.SparseCategoricalCrossentropy(),
     sparse, probs, 4, 1, 0),
    ("scce_logits", dict(kind="SparseCategoricalCrossentropy", from_logits=1),
     lambda: M.SparseCategoricalCrossentropy(from_logits=True), sparse, logits, 4, 1, 0),
    ("kld", dict(kind="KLDivergence"), lambda: M.KLDivergence(), probs, probs, 3, 1, 0),
    ("poisson", dict(kind="Poisson"), lambda: M.Poisson(), positive, positive, 3, 1, 0),
    ("hinge", dict(kind="Hinge"), lambda: M.Hinge(), binary, real, 3, 1, 0),
    ("hinge_signed", dict(kind="Hinge"), lambda: M.Hinge(), signed, real, 3, 1, 0),
    ("squared_hinge", dict(kind="SquaredHinge"), lambda: M.SquaredHinge(), binary, real, 3, 1, 0),
    ("categorical_hinge", dict(kind="CategoricalHinge"), lambda: M.CategoricalHinge(), onehot, real, 3, 1, 0),
    ("huber", dict(kind="huber"), lambda: M.MeanMetricWrapper(L.huber), real, real, 3, 1, 0),
    ("binary_focal", dict(kind="binary_focal_crossentropy"),
     lambda: M.MeanMetricWrapper(L.binary_focal_crossentropy), binary, edges, 3, 1, 0),
    ("categorical_focal", dict(kind="categorical_focal_crossentropy"),
     lambda: M.MeanMetricWrapper(L.categorical_focal_crossentropy), onehot, probs, 3, 1, 0),
    ("auc", dict(kind="AUC"), lambda: M.AUC(), binary, edges, 2, 1, 0),
    ("auc_w", dict(kind="AUC"), lambda: M.AUC(), binary, edges, 2, 1, 1),
    ("auc_pr", dict(kind="AUC", curve="PR"), lambda: M.AUC(curve="PR"), binary, edges, 2, 1, 0),
    ("auc_pr_majoring", dict(kind="AUC", curve="PR", summation="majoring"),
     lambda: M.AUC(curve="PR", summation_method="majoring"), binary, edges, 2, 1, 0),
    ("auc_roc_minoring", dict(kind="AUC", summation="minoring"),
     lambda: M.AUC(summation_method="minoring"), binary, edges, 2, 1, 0),
    ("auc_prgain", dict(kind="AUC", curve="PRGAIN"), lambda: M.AUC(curve="PRGAIN"), binary, edges, 2, 1, 0),
    ("auc_7", dict(kind="AUC", num_thresholds=7), lambda: M.AUC(num_thresholds=7), binary, edges, 3, 1, 0),
    ("auc_logits", dict(kind="AUC", from_logits=1), lambda: M.AUC(from_logits=True), binary, logits, 2, 1, 0),
    ("auc_rank3", dict(kind="AUC"), lambda: M.AUC(), binary, edges, 2, 3, 0),
    ("precision", dict(kind="Precision"), lambda: M.Precision(), binary, edges, 3, 1, 0),
    ("precision_t03_w", dict(kind="Precision", threshold=0.3), lambda: M.Precision(thresholds=0.3),
     binary, edges, 3, 1, 1),
    ("precision_top2", dict(kind="Precision", top_k=2), lambda: M.Precision(top_k=2), onehot, probs, 5, 1, 0),
    ("precision_class1", dict(kind="Precision", class_id=1), lambda: M.Precision(class_id=1),
     binary, edges, 3, 1, 0),
    ("precision_top2_class2", dict(kind="Precision", top_k=2, class_id=2),
     lambda: M.Precision(top_k=2, class_id=2), onehot, probs, 4, 1, 0),
    ("recall", dict(kind="Recall"), lambda: M.Recall(), binary, edges, 3, 1, 0),
    ("recall_top2", dict(kind="Recall", top_k=2), lambda: M.Recall(top_k=2), onehot, probs, 5, 1, 0),
    ("recall_class0_t06", dict(kind="Recall", class_id=0, threshold=0.6),
     lambda: M.Recall(class_id=0, thresholds=0.6), binary, edges, 3, 1, 0),
    ("f1_micro", dict(kind="F1Score", average="micro"), lambda: M.F1Score(average="micro"),
     binary, edges, 3, 1, 0),
    ("f1_macro", dict(kind="F1Score", average="macro"), lambda: M.F1Score(average="macro"),
     onehot, probs, 4, 1, 0),
    ("f1_weighted_w", dict(kind="F1Score", average="weighted"), lambda: M.F1Score(average="weighted"),
     binary, edges, 3, 1, 1),
    ("f1_macro_t04", dict(kind="F1Score", average="macro", threshold=0.4),
     lambda: M.F1Score(average="macro", threshold=0.4), binary, edges, 3, 1, 0),
    ("fbeta2_weighted", dict(kind="FBetaScore", average="weighted", beta=2.0),
     lambda: M.FBetaScore(average="weighted", beta=2.0), onehot, probs, 4, 1, 0),
    ("fbeta05_micro_t05", dict(kind="FBetaScore", average="micro", beta=0.5, threshold=0.5),
     lambda: M.FBetaScore(average="micro", beta=0.5, threshold=0.5), binary, edges, 3, 1, 0),
]


def batch_arrays(yt_f, yp_f, n, cols, rps, sparse_y):
    yt, yp = yt_f(n * rps, cols), yp_f(n * rps, cols)
    if sparse_y:
        return yt, yp
    if rps > 1:
        return yt.reshape(n, rps, cols), yp.reshape(n, rps, cols)
    return yt, yp


def cases():
    lines = ["# Keras %s, JAX %s" % (keras.__version__, jax.__version__)]
    for label, spec, make, yt_f, yp_f, cols, rps, weighted in CASES:
        metric = make()
        is_sparse = yt_f is sparse
        lines += ["case " + label,
                  "spec " + " ".join("%s=%s" % kv for kv in spec.items()),
                  "shape %d %d %d" % (cols, rps, int(is_sparse))]
        for n in SIZES:
            yt, yp = batch_arrays(yt_f, yp_f, n, cols, rps, is_sparse)
            w = rng.choice(np.array([0.0, 0.5, 1.0, 2.0, 3.0], dtype="float32"), n) if weighted else None
            metric.update_state(yt, yp, sample_weight=w)
            lines += ["batch %d %d" % (n, weighted), "y_true " + fmt(yt), "y_pred " + fmt(yp)]
            if weighted:
                lines.append("weights " + fmt(w))
        lines.append("value " + fmt([metric.result()]))
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


FIT_METRICS = ["accuracy", "mse", "AUC", "AUC_PR", "TopK2", "Precision", "Recall1", "F1macro"]


def fit_metrics():
    return ["accuracy", "mse", M.AUC(), M.AUC(curve="PR"), M.TopKCategoricalAccuracy(k=2),
            M.Precision(), M.Recall(class_id=1), M.F1Score(average="macro")]


def fit_fixture():
    keras.utils.clear_session()
    keras.utils.set_random_seed(5)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    m.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy",
              metrics=fit_metrics())
    w = [v.copy() for v in m.get_weights()]
    x = rng.uniform(-1, 1, (12, 4)).astype("float32")
    y = onehot(12, 3)
    xv = rng.uniform(-1, 1, (6, 4)).astype("float32")
    yv = onehot(6, 3)
    ev = m.evaluate(xv, yv, batch_size=4, verbose=0, return_dict=True)
    h = m.fit(x, y, batch_size=4, epochs=2, shuffle=False, validation_data=(xv, yv), verbose=0)
    with open(os.path.join(OUT, "fit.txt"), "w") as f:
        f.write("# Keras %s, JAX %s: Dense(3, softmax), SGD(0.1), categorical_crossentropy\n"
                % (keras.__version__, jax.__version__))
        f.write("weights %s\nx %s\ny %s\nxv %s\nyv %s\n" % (
            fmt(np.concatenate([v.ravel() for v in w])), fmt(x), fmt(y), fmt(xv), fmt(yv)))
        for k, v in ev.items():
            f.write("evaluate %s %s\n" % (k, fmt([v])))
        for k, v in h.history.items():
            f.write("history %s %s\n" % (k, fmt(v)))


def sparse_topk_file():
    keras.utils.clear_session()
    keras.utils.set_random_seed(9)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="relu"),
                          keras.layers.Dense(5)])
    m.compile(optimizer=keras.optimizers.Adam(0.01),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=[M.SparseTopKCategoricalAccuracy(k=3), "accuracy"])
    x = rng.uniform(-1, 1, (10, 4)).astype("float32")
    y = rng.integers(0, 5, 10).astype("float32")
    m.fit(x, y, batch_size=5, epochs=1, shuffle=False, verbose=0)
    m.save(os.path.join(OUT, "sparse_topk.keras"))
    ev = m.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    with open(os.path.join(OUT, "sparse_topk.txt"), "w") as f:
        f.write("# Keras %s, JAX %s: evaluate(batch_size=4) of sparse_topk.keras\n"
                % (keras.__version__, jax.__version__))
        f.write("x %s\ny %s\n" % (fmt(x), fmt(y)))
        for k, v in ev.items():
            f.write("evaluate %s %s\n" % (k, fmt([v])))


# ---- check: Keras reads back what kerac writes -------------------------------------------------

def read_kv(path):
    """the tool's file: 'data x|y <floats>' and 'evaluate <key> <value>' lines"""
    data, ev = {"absent_h5": []}, {}
    for line in open(path):
        p = line.split()
        if p[0] == "evaluate":
            ev[p[1]] = float(p[2])
        elif p[0] == "absent_h5":
            data["absent_h5"] = p[1:]
        elif p[0] in ("x", "y", "shape"):
            data[p[0]] = np.array([float(v) for v in p[1:]], dtype="float32")
    return data, ev


def describe(metric):
    cfg = metric.get_config() if hasattr(metric, "get_config") else {}
    return type(metric).__name__, {k: v for k, v in cfg.items() if k not in ("dtype",)}


def check_file(path, txt, tf2=False):
    data, want = read_kv(txt)
    shape = [int(v) for v in data["shape"]]
    x = data["x"].reshape(-1, shape[0])
    y = data["y"]
    y = y.reshape(-1, shape[1]) if shape[1] > 0 else y
    load = keras.models.load_model if tf2 else keras.saving.load_model
    m = load(path)
    got = m.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    if not tf2:
        for cm in m.metrics:
            for sub in getattr(cm, "metrics", []):
                print("   ", sub.name, describe(sub))
    bad = []
    if path.endswith(".h5"):
        want = {k: v for k, v in want.items() if k not in data["absent_h5"]}
    for k, v in want.items():
        if k not in got:
            if tf2 and (k.startswith("weighted_") or k[-2:] in ("_1", "_2")):
                # tf.keras 2 gives metrics of one name one key (the first's value)
                print("    (tf.keras 2 has no %s: it does not make names unique)" % k)
                continue
            bad.append("%s missing (Keras has %s)" % (k, sorted(got)))
            continue
        err = abs(float(got[k]) - v) / max(abs(v), 1e-3)
        if err > 1e-5:
            bad.append("%s: Keras %.9g, kerac %.9g" % (k, float(got[k]), v))
    extra = sorted(set(got) - set(want))
    if extra:
        bad.append("Keras has keys kerac does not: %s" % extra)
    print("%s %s: %s" % ("tf.keras 2" if tf2 else "Keras 3", os.path.basename(path),
                         "PASS" if not bad else "FAIL " + "; ".join(bad)))
    return not bad


def check(keep):
    import tempfile
    subprocess.run(["make", "-s", "-C", ROOT, "build/tools/write_metric_models"], check=True)
    d = tempfile.mkdtemp(prefix="kerac_metrics_")
    subprocess.run([os.path.join(ROOT, "build", "tools", "write_metric_models"), d], check=True,
                   cwd=ROOT)
    ok = True
    for name in ("sparse_topk", "many_metrics"):
        for ext in (".keras", ".h5"):
            ok &= check_file(os.path.join(d, name + ext), os.path.join(d, name + ".txt"))
    print("files in", d if keep else "(removed)")
    if not keep:
        subprocess.run(["rm", "-rf", d])
    return ok


def tf2_file():
    tf.keras.utils.set_random_seed(4)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy",
              metrics=["acc", "top_k_categorical_accuracy", keras.metrics.AUC(), "mse",
                       keras.metrics.Precision(top_k=2)])
    x = rng.uniform(-1, 1, (10, 4)).astype("float32")
    y = np.eye(5, dtype="float32")[rng.integers(0, 5, 10)]
    m.fit(x, y, batch_size=5, epochs=1, shuffle=False, verbose=0)
    m.save(os.path.join(OUT, "tf2_metrics.h5"))
    ev = m.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    with open(os.path.join(OUT, "tf2_metrics.txt"), "w") as f:
        f.write("# TensorFlow %s: evaluate(batch_size=4) of tf2_metrics.h5\n" % tf.__version__)
        f.write("x %s\ny %s\n" % (fmt(x), fmt(y)))
        for k, v in ev.items():
            f.write("evaluate %s %s\n" % (k, fmt([v])))


def check_tf2(d):
    ok = True
    for name in ("sparse_topk", "many_metrics"):
        ok &= check_file(os.path.join(d, name + ".h5"), os.path.join(d, name + ".txt"), tf2=True)
    return ok


if __name__ == "__main__":
    if MODE == "check":
        sys.exit(0 if check("--keep" in sys.argv) else 1)
    if MODE == "check-tf2":
        sys.exit(0 if check_tf2(sys.argv[2]) else 1)
    if MODE == "tf2":
        tf2_file()
        sys.exit(0)
    os.makedirs(OUT, exist_ok=True)
    cases()
    fit_fixture()
    sparse_topk_file()
