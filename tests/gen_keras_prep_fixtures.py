#!/usr/bin/env python3
"""gen_keras_prep_fixtures.py: Keras 3 reference fixtures for the preprocessing layers
(Rescaling, Normalization, Resizing, CenterCrop, RandomFlip, RandomRotation,
RandomTranslation, RandomZoom, RandomContrast), checked by tests/test_preprocessing.c.

How to run (from the repository root):
    KERAS_BACKEND=jax python3 tests/gen_keras_prep_fixtures.py          # Keras 3 fixtures
    python3 tests/gen_keras_prep_fixtures.py tf2       # with tf.keras 2: the .h5 model file
    KERAS_BACKEND=jax python3 tests/gen_keras_prep_fixtures.py check    # after the C test:
        Keras 3 loads kerac's saved files (build/prep_saved.keras and .h5) and predicts alike
    python3 tests/gen_keras_prep_fixtures.py check_tf2  # tf.keras 2 loads build/prep_saved.h5
It rewrites tests/fixtures/keras_prep/<case>.txt (format of tests/fixture.h):
    tensor <name> <count> / <count floats>
Tensors: x (the input batch), y (layer(x, training=...)), for adapted Normalization mean and
variance; flip cases y is layer(x) with the flip applied to every image (the C test accepts
each image flipped or not). The random layers run in training mode with a degenerate factor
range (lower == upper), so their parameters are fixed and Keras's transform is compared.
model.keras (Keras 3) and model_tf2.h5 (tf.keras 2) hold a model of all the layers,
model_x.txt / model_y.txt its input and predict output (inference: augmentation off).
"""
import os
import sys

MODE = sys.argv[1] if len(sys.argv) > 1 else "gen"
if MODE in ("tf2", "check_tf2"):
    os.environ["TF_USE_LEGACY_KERAS"] = "0"
    import tensorflow as tf  # noqa: E402
    keras = tf.keras
else:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "keras_prep")
L = keras.layers
rng = np.random.default_rng(13)


def img(shape, lo=0.0, hi=255.0):
    return rng.uniform(lo, hi, size=shape).astype("float32")


def write(name, tensors, comment):
    with open(os.path.join(OUT, name + ".txt"), "w") as f:
        f.write("# " + comment + "\n")
        for k, v in tensors:
            v = np.asarray(v, dtype="float32").ravel()
            f.write("tensor %s %d\n" % (k, v.size))
            f.write(" ".join("%.9g" % t for t in v) + "\n")


# name -> (input batch, layer factory, training). tests/test_preprocessing.c builds the same.
def cases():
    x_img = img((2, 6, 5, 3))
    x_small = img((2, 3, 4, 2))
    c = {
        "rescaling": (img((2, 4, 3)), lambda: L.Rescaling(1 / 255, offset=-0.5), False),
        "normalization_given": (img((2, 3, 3), -3, 3),
                                lambda: L.Normalization(mean=[1.0, 2.0, -1.0],
                                                        variance=[4.0, 0.25, 9.0]), False),
        "normalization_broadcast": (img((2, 3, 4), -3, 3),
                                    lambda: L.Normalization(axis=(1, 2), mean=[1, 2, 3, 4],
                                                            variance=[1, 4, 9, 16]), False),
        "normalization_invert": (img((2, 4), -3, 3),
                                 lambda: L.Normalization(mean=2.0, variance=9.0, invert=True),
                                 False),
        "resizing_up": (x_img, lambda: L.Resizing(8, 9), False),
        "resizing_down": (x_img, lambda: L.Resizing(4, 3), False),
        "resizing_nearest": (x_img, lambda: L.Resizing(9, 4, interpolation="nearest"), False),
        "resizing_nearest_down": (x_img, lambda: L.Resizing(4, 2, interpolation="nearest"),
                                  False),
        "resizing_crop": (x_img, lambda: L.Resizing(4, 7, crop_to_aspect_ratio=True), False),
        "resizing_pad": (x_img, lambda: L.Resizing(4, 7, pad_to_aspect_ratio=True,
                                                   fill_value=1.5), False),
        "resizing_pad_h": (x_img, lambda: L.Resizing(8, 3, pad_to_aspect_ratio=True), False),
        "center_crop": (x_img, lambda: L.CenterCrop(3, 4), False),
        "center_crop_resize": (x_small, lambda: L.CenterCrop(5, 3), False),
        "flip_horizontal": (x_img, lambda: L.RandomFlip("horizontal"), True),
        "flip_vertical": (x_img, lambda: L.RandomFlip("vertical"), True),
        "flip_both": (x_img, lambda: L.RandomFlip(), True),
        "contrast": (x_img, lambda: L.RandomContrast((-0.5, 0.5)), True),
        "contrast_range": (img((2, 6, 5, 3), 0, 1),
                           lambda: L.RandomContrast((-0.4, 0.4), value_range=(0.2, 0.8)), True),
    }
    for fm in ("reflect", "wrap", "constant", "nearest"):
        for ip in ("bilinear", "nearest"):
            c["rotation_%s_%s" % (fm, ip)] = (x_img, lambda fm=fm, ip=ip: L.RandomRotation(
                (0.1, 0.1), fill_mode=fm, interpolation=ip, fill_value=7.0), True)
    c["rotation_neg"] = (x_img, lambda: L.RandomRotation((-0.3, -0.3)), True)
    c["translation_wrap"] = (x_img, lambda: L.RandomTranslation(
        (0.2, 0.2), (-0.3, -0.3), fill_mode="wrap"), True)
    c["translation_reflect_nearest"] = (x_img, lambda: L.RandomTranslation(
        (-0.45, -0.45), (0.35, 0.35), interpolation="nearest"), True)
    c["translation_constant"] = (x_img, lambda: L.RandomTranslation(
        (0.6, 0.6), (0.7, 0.7), fill_mode="constant", fill_value=-2.0), True)
    c["zoom_in"] = (x_img, lambda: L.RandomZoom((-0.3, -0.3), (-0.2, -0.2)), True)
    c["zoom_out_nearest"] = (x_img, lambda: L.RandomZoom((0.5, 0.5), fill_mode="nearest"), True)
    c["zoom_out_constant"] = (x_img, lambda: L.RandomZoom(
        (0.4, 0.4), (0.7, 0.7), fill_mode="constant", interpolation="nearest"), True)
    return c


def flip_all(layer, x):
    y = x
    if layer.mode in ("horizontal", "horizontal_and_vertical"):
        y = y[:, :, ::-1, :]
    if layer.mode in ("vertical", "horizontal_and_vertical"):
        y = y[:, ::-1, :, :]
    return y


def gen():
    os.makedirs(OUT, exist_ok=True)
    for name, (x, make, training) in cases().items():
        layer = make()
        if name.startswith("flip"):
            y = flip_all(layer, x)
        else:
            y = np.asarray(layer(x, training=training))
        write(name, [("x", x), ("y", y)], "%s training=%s" % (
            layer.__class__.__name__, training))
    # Normalization adapted (numpy data: np.mean / np.var)
    for name, axis, shape in (("normalization_adapt", -1, (10, 3, 4)),
                              ("normalization_adapt_axes", (1, 2), (10, 3, 4)),
                              ("normalization_adapt_none", None, (10, 5))):
        data = img(shape, -4, 9)
        layer = L.Normalization(axis=axis)
        layer.adapt(data)
        x = img((2,) + shape[1:], -4, 9)
        y = np.asarray(layer(x))
        write(name, [("data", data), ("x", x), ("y", y),
                     ("mean", layer.adapt_mean.numpy()),
                     ("variance", layer.adapt_variance.numpy())],
              "Normalization(axis=%r) adapted on data" % (axis,))
    model_k3()


def model_layers(norm):
    return [L.Rescaling(1 / 127.5, offset=-1.0), norm,
            L.Resizing(7, 6), L.CenterCrop(6, 5), L.RandomFlip(seed=3),
            L.RandomRotation(0.1, fill_mode="nearest"),
            L.RandomTranslation(0.1, (-0.2, 0.1), fill_mode="constant"),
            L.RandomZoom(0.2, interpolation="nearest"), L.RandomContrast(0.3),
            L.Conv2D(2, 3, activation="relu"), L.Flatten(), L.Dense(3, activation="softmax")]


def model_k3():
    keras.utils.set_random_seed(5)
    x = img((4, 8, 8, 3))
    norm = L.Normalization()
    norm.adapt(img((16, 8, 8, 3)) / 127.5 - 1.0)
    m = keras.Sequential([keras.Input((8, 8, 3))] + model_layers(norm))
    m.save(os.path.join(OUT, "model.keras"))
    write("model", [("x", x), ("y", m.predict(x, verbose=0))], "model.keras: predict(x)")


def gen_tf2():
    tf.keras.utils.set_random_seed(5)
    x = img((4, 8, 8, 3))
    norm = L.Normalization()
    norm.adapt(img((16, 8, 8, 3)) / 127.5 - 1.0)
    layers = model_layers(norm)
    m = keras.Sequential([keras.Input((8, 8, 3))] + layers)
    m.save(os.path.join(OUT, "model_tf2.h5"))
    write("model_tf2", [("x", x), ("y", m.predict(x, verbose=0))], "model_tf2.h5: predict(x)")


def check(paths):
    fx = {}
    with open(os.path.join(OUT, "model.txt")) as f:
        lines = [ln for ln in f if not ln.startswith("#")]
    for i in range(0, len(lines), 2):
        name = lines[i].split()[1]
        fx[name] = np.array(lines[i + 1].split(), dtype="float32")
    x = fx["x"].reshape(4, 8, 8, 3)
    worst = 0.0
    for p in paths:
        m = keras.models.load_model(p)
        y = m.predict(x, verbose=0).ravel()
        err = float(np.max(np.abs(y - fx["y"])))
        print("%s: %s, max |diff| %.3g" % (p, [type(la).__name__ for la in m.layers], err))
        worst = max(worst, err)
    if worst > 1e-5:
        raise SystemExit("FAILED: kerac's saved model predicts differently in Keras")
    print("ok")


if __name__ == "__main__":
    root = os.path.dirname(HERE)
    if MODE == "gen":
        gen()
    elif MODE == "tf2":
        gen_tf2()
    elif MODE == "check":
        check([os.path.join(root, "build", "prep_saved.keras"),
               os.path.join(root, "build", "prep_saved.h5")])
    elif MODE == "check_tf2":
        check([os.path.join(root, "build", "prep_saved.h5")])
    else:
        raise SystemExit("usage: gen_keras_prep_fixtures.py [gen|tf2|check|check_tf2]")
