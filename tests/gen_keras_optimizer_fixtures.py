#!/usr/bin/env python3
"""gen_keras_optimizer_fixtures.py: reference steps of Keras 3's optimizers for
tests/test_optimizers2.c: every option of the base optimizer (clipnorm, clipvalue,
global_clipnorm, weight_decay, use_ema with ema_momentum and ema_overwrite_frequency), the
learning-rate schedules, and Adamax, Ftrl, Lion and Lamb.

How to run (from the repository root, Keras 3 with JAX):
    KERAS_BACKEND=jax python3 tests/gen_keras_optimizer_fixtures.py
Each case: two variables, a "kernel" (3, 4) and a "bias" (4,), fixed starting values and fixed
gradients per step; optimizer.apply four times. tests/fixtures/keras_optim/<case>.txt holds
w0 (kernel then bias), then per step g<k> (the gradients), w<k> (the variables after the step)
and lr<k> (optimizer.learning_rate after the step: the next step's rate).
The model-level part (model_<case>.txt): Input(3) -> Dense(4, relu) -> Dense(2, softmax),
fixed weights, categorical crossentropy, one train_on_batch: x, y, the weights before and after.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import optimizers as O  # noqa: E402
from keras.optimizers import schedules as S  # noqa: E402

if keras.backend.backend() != "jax":
    raise SystemExit("run with KERAS_BACKEND=jax")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras_optim")
STEPS = 4
rng = np.random.default_rng(5)
W0 = [rng.normal(0, 0.5, (3, 4)).astype("float32"), rng.normal(0, 0.1, (4,)).astype("float32")]
# the kernel's gradients have a norm near 5, the bias's near 0.4 (clipnorm=1 clips one only)
GRADS = [[rng.normal(0, 1.5, (3, 4)).astype("float32"), rng.normal(0, 0.2, (4,)).astype("float32")]
         for _ in range(STEPS)]

CASES = {
    "sgd_clipnorm": lambda: O.SGD(0.1, momentum=0.9, clipnorm=1.0),
    "adam_clipvalue": lambda: O.Adam(0.01, clipvalue=0.5),
    "rmsprop_global_clipnorm": lambda: O.RMSprop(0.01, global_clipnorm=1.0),
    "adadelta_clipnorm": lambda: O.Adadelta(1.0, clipnorm=0.5),
    "sgd_weight_decay": lambda: O.SGD(0.1, weight_decay=0.05),
    "adam_weight_decay": lambda: O.Adam(0.01, weight_decay=0.1),
    "adamw": lambda: O.AdamW(0.01, weight_decay=0.1),
    "nadam_weight_decay_clipvalue": lambda: O.Nadam(0.01, weight_decay=0.2, clipvalue=0.3),
    "adagrad_ema": lambda: O.Adagrad(0.1, use_ema=True, ema_momentum=0.9),
    "sgd_ema_overwrite": lambda: O.SGD(0.1, momentum=0.5, use_ema=True, ema_momentum=0.5,
                                       ema_overwrite_frequency=2),
    "sgd_exponential_staircase": lambda: O.SGD(S.ExponentialDecay(0.1, 2, 0.5, staircase=True)),
    "sgd_exponential": lambda: O.SGD(S.ExponentialDecay(0.1, 3, 0.7)),
    "sgd_inverse_time": lambda: O.SGD(S.InverseTimeDecay(0.1, 1, 0.5)),
    "sgd_inverse_time_staircase": lambda: O.SGD(S.InverseTimeDecay(0.1, 2, 0.5, staircase=True)),
    "sgd_piecewise": lambda: O.SGD(S.PiecewiseConstantDecay([1, 2], [0.1, 0.05, 0.01])),
    "sgd_polynomial": lambda: O.SGD(S.PolynomialDecay(0.1, 3, 0.01, power=2.0)),
    "sgd_polynomial_cycle": lambda: O.SGD(S.PolynomialDecay(0.1, 2, 0.01, power=0.5,
                                                            cycle=True)),
    "sgd_cosine": lambda: O.SGD(S.CosineDecay(0.1, 3, alpha=0.1)),
    "sgd_cosine_warmup": lambda: O.SGD(S.CosineDecay(0.0, 3, warmup_target=0.1,
                                                     warmup_steps=2)),
    "sgd_cosine_restarts": lambda: O.SGD(S.CosineDecayRestarts(0.1, 1, t_mul=2.0, m_mul=0.5,
                                                               alpha=0.05)),
    "sgd_cosine_restarts_tmul1": lambda: O.SGD(S.CosineDecayRestarts(0.1, 2, t_mul=1.0)),
    "adam_exponential": lambda: O.Adam(S.ExponentialDecay(0.01, 1, 0.5)),
    "adamax": lambda: O.Adamax(0.01),
    "adamax_clipnorm_ema": lambda: O.Adamax(0.02, beta_1=0.8, beta_2=0.9, epsilon=1e-5,
                                            clipnorm=1.0, use_ema=True),
    "ftrl": lambda: O.Ftrl(0.1),
    "ftrl_all": lambda: O.Ftrl(0.1, learning_rate_power=-0.7, initial_accumulator_value=0.2,
                               l1_regularization_strength=0.01,
                               l2_regularization_strength=0.02,
                               l2_shrinkage_regularization_strength=0.03, beta=0.5),
    "ftrl_zero_power": lambda: O.Ftrl(0.05, learning_rate_power=0.0,
                                      l1_regularization_strength=0.5),
    "lion": lambda: O.Lion(0.01),
    "lion_weight_decay": lambda: O.Lion(0.01, beta_1=0.8, beta_2=0.95, weight_decay=0.5),
    "lamb": lambda: O.Lamb(0.01),
    "lamb_global_clipnorm_wd": lambda: O.Lamb(0.02, global_clipnorm=2.0, weight_decay=0.1),
}

MODEL_CASES = {
    "clipnorm": lambda: O.Adam(0.05, clipnorm=0.1),
    "global_clipnorm": lambda: O.SGD(0.5, momentum=0.9, global_clipnorm=0.2),
    "lamb": lambda: O.Lamb(0.05),
    "ema": lambda: O.RMSprop(0.01, use_ema=True, ema_momentum=0.8),
}


def row(f, label, arrays):
    f.write(label + " " + " ".join("%.9g" % v for a in arrays for v in np.ravel(a)) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, make in CASES.items():
        opt = make()
        vs = [keras.Variable(W0[0], name="kernel"), keras.Variable(W0[1], name="bias")]
        with open(os.path.join(OUT, name + ".txt"), "w") as f:
            f.write("# Keras %s (%s), written by tests/gen_keras_optimizer_fixtures.py\n"
                    % (keras.__version__, keras.backend.backend()))
            row(f, "w0", [v.numpy() for v in vs])
            for k in range(STEPS):
                opt.apply([keras.ops.convert_to_tensor(g) for g in GRADS[k]], vs)
                row(f, "g%d" % (k + 1), GRADS[k])
                row(f, "w%d" % (k + 1), [v.numpy() for v in vs])
                row(f, "lr%d" % (k + 1), [np.float32(opt.learning_rate)])
        print("wrote", name)
    x = rng.uniform(-1, 1, (6, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[np.arange(6) % 2]
    wm = [rng.normal(0, 0.6, (3, 4)), rng.normal(0, 0.1, (4,)), rng.normal(0, 0.6, (4, 2)),
          rng.normal(0, 0.1, (2,))]
    wm = [w.astype("float32") for w in wm]
    for name, make in MODEL_CASES.items():
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
        m.set_weights(wm)
        m.compile(make(), "categorical_crossentropy")
        m.fit(x, y, batch_size=6, epochs=2, verbose=0, shuffle=False)
        with open(os.path.join(OUT, "model_" + name + ".txt"), "w") as f:
            f.write("# Keras %s (%s), written by tests/gen_keras_optimizer_fixtures.py: "
                    "fit(epochs=2, batch_size=6)\n" % (keras.__version__, keras.backend.backend()))
            row(f, "x", [x])
            row(f, "y", [y])
            row(f, "before", wm)
            row(f, "after", m.get_weights())
        print("wrote model_" + name)


main()
