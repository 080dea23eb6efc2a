#!/usr/bin/env python3
"""gen_keras_layers2_fixtures.py: Keras 3 reference fixtures for Conv2D's dilation_rate and
use_bias=False, Conv2DTranspose, UpSampling2D, ZeroPadding2D, Cropping2D, GlobalMaxPooling2D,
keepdims on global pooling and Identity, checked by tests/test_layers2.c.

How to run (from the repository root):
    pip install keras jax
    KERAS_BACKEND=jax python3 tests/gen_keras_layers2_fixtures.py
It rewrites tests/fixtures/keras_layers2/<case>.txt. Each case is one layer on a small batch:
    model = Sequential([Input(shape), layer, Flatten()]), loss mean_squared_error
The C test builds the same layer from the case name (see CASES). The files hold only tensors,
in the format of gen_keras_fixtures.py:
    # comment lines
    tensor <name> <count>
    <count floats, %.9g>
<case>.json is that model's model.to_json() (Keras 3's config forms, read by kc_model_from_json).
Tensors: x (batch, h, w, c); weights (the layer's, Keras's order, flat: kernel then bias);
y (the targets, as the flattened output); output (model(x)); loss (MSE, mean over every
value); dx (d loss / d x) and grads (d loss / d weights, same order as weights; absent when
the layer has none).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

if keras.backend.backend() != "jax":
    raise SystemExit("run with KERAS_BACKEND=jax")

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras_layers2")
BATCH = 2
L = keras.layers

# name -> (input shape, layer factory, ties). ties: inputs drawn from a few values, so that
# maxima tie. tests/test_layers2.c builds the same layers.
CASES = {
    "conv2d_dilated_same": ((5, 5, 2), lambda: L.Conv2D(
        3, 3, dilation_rate=2, padding="same", activation="tanh"), False),
    "conv2d_dilated_valid_nobias": ((6, 5, 2), lambda: L.Conv2D(
        2, (2, 3), dilation_rate=(2, 1), use_bias=False), False),
    "conv2d_nobias_strided": ((6, 6, 2), lambda: L.Conv2D(
        3, 3, strides=2, padding="same", use_bias=False, activation="sigmoid"), False),
    "conv2d_transpose_valid_s2": ((2, 2, 2), lambda: L.Conv2DTranspose(3, 3, strides=2), False),
    "conv2d_transpose_same_s2": ((3, 4, 2), lambda: L.Conv2DTranspose(
        2, (3, 2), strides=2, padding="same", activation="sigmoid"), False),
    "conv2d_transpose_same_outpad": ((3, 3, 2), lambda: L.Conv2DTranspose(
        2, 3, strides=(2, 3), padding="same", output_padding=(1, 2)), False),
    "conv2d_transpose_valid_s3_nobias": ((2, 3, 3), lambda: L.Conv2DTranspose(
        2, 2, strides=3, use_bias=False, activation="tanh"), False),
    "conv2d_transpose_valid_outpad": ((3, 2, 2), lambda: L.Conv2DTranspose(
        2, (2, 3), strides=(2, 2), output_padding=(1, 0)), False),
    "conv2d_transpose_same_k4_s1": ((4, 4, 1), lambda: L.Conv2DTranspose(
        2, 4, padding="same"), False),
    "up_sampling_nearest": ((3, 2, 2), lambda: L.UpSampling2D((2, 3)), False),
    "up_sampling_bilinear": ((2, 3, 2), lambda: L.UpSampling2D(
        (3, 2), interpolation="bilinear"), False),
    "up_sampling_bilinear_4": ((2, 3, 1), lambda: L.UpSampling2D(
        4, interpolation="bilinear"), False),
    "zero_padding": ((3, 3, 2), lambda: L.ZeroPadding2D(((1, 2), (0, 3))), False),
    "cropping": ((4, 5, 2), lambda: L.Cropping2D(((1, 0), (2, 1))), False),
    "global_max_pooling": ((3, 4, 3), lambda: L.GlobalMaxPooling2D(), True),
    "global_max_pooling_keepdims": ((2, 3, 2), lambda: L.GlobalMaxPooling2D(keepdims=True),
                                    False),
    "global_average_pooling_keepdims": ((2, 3, 2), lambda: L.GlobalAveragePooling2D(
        keepdims=True), False),
    "identity": ((2, 3, 2), lambda: L.Identity(), False),
}


def write_tensor(f, name, values):
    values = np.asarray(values, dtype=np.float32).ravel()
    f.write(f"tensor {name} {values.size}\n")
    for i in range(0, values.size, 8):
        f.write(" ".join("%.9g" % v for v in values[i:i + 8]) + "\n")


def generate(seed, name):
    shape, make, ties = CASES[name]
    rng = np.random.default_rng(seed)
    layer = make()
    model = keras.Sequential([keras.Input(shape), layer, L.Flatten()])
    weights = [rng.normal(0.0, 0.4, w.shape).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights(weights)
    if ties:
        x = rng.integers(-2, 3, (BATCH,) + shape).astype(np.float32) * 0.5
    else:
        x = rng.normal(0.0, 1.0, (BATCH,) + shape).astype(np.float32)
    output = np.asarray(model(x))
    y = rng.normal(0.0, 0.5, output.shape).astype(np.float32)
    mse = keras.losses.MeanSquaredError()
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def f(xs, tw):
        out, _ = model.stateless_call(tw, non_trainable, xs)
        return mse(y, out)

    loss, (dx, grads) = jax.value_and_grad(f, argnums=(0, 1))(x, trainable)
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, name + ".txt"), "w") as out:
        out.write(f"# {name}: keras {keras.__version__}, jax {jax.__version__}, seed {seed}; "
                  f"{layer.__class__.__name__} on {shape}, output {output.shape[1:]}\n")
        write_tensor(out, "x", x)
        if weights:
            write_tensor(out, "weights", np.concatenate([w.ravel() for w in weights]))
        write_tensor(out, "y", y)
        write_tensor(out, "output", output)
        write_tensor(out, "loss", [np.float32(loss)])
        write_tensor(out, "dx", np.asarray(dx))
        if grads:
            write_tensor(out, "grads", np.concatenate([np.asarray(g).ravel() for g in grads]))
    with open(os.path.join(OUT_DIR, name + ".json"), "w") as out:
        out.write(model.to_json() + "\n")
    print(f"{name}: output {output.shape}, loss {float(loss):.6f}")


if __name__ == "__main__":
    for seed, name in enumerate(CASES):
        generate(200 + seed, name)
