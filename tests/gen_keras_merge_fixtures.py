#!/usr/bin/env python3
"""gen_keras_merge_fixtures.py: Keras 3 reference values for the merge layers (Add, Subtract,
Multiply, Average, Maximum, Minimum, Concatenate, Dot), checked by tests/test_merge.c.

How to run (from the repository root):
    pip install keras jax
    KERAS_BACKEND=jax python3 tests/gen_keras_merge_fixtures.py
It rewrites tests/fixtures/keras_merge/<case>.txt. Each file describes its layer and inputs, so
the C test needs no copy of CASES:
    # comment lines
    layer <Class> <a> <b> <c>     Concatenate: a = axis; Dot: a, b = axes, c = normalize; else 0s
    batch <n>
    shape <input> <rank> <dims...>   the per-sample shape of each input, in order
    tensor <name> <count>
    <count floats, %.9g>
Tensors: x0, x1, ... (the inputs, (batch, shape) row-major), output (layer([x0, x1, ...])), r
(a fixed array of the output's shape), dx0, dx1, ... (the gradient of sum(output * r) with
respect to each input, by jax.grad).
The Maximum and Minimum cases draw small integers, so that inputs tie often: their gradients
are JAX's (a tie between two values sends half of the gradient to each).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

if keras.backend.backend() != "jax":
    raise SystemExit("run with KERAS_BACKEND=jax")

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras_merge")
L = keras.layers

# name -> (layer factory, (class, a, b, c) for the C side, per-sample input shapes, ties)
CASES = {
    "add_2": (lambda: L.Add(), ("Add", 0, 0, 0), [(3, 4), (3, 4)], False),
    "add_3_broadcast": (lambda: L.Add(), ("Add", 0, 0, 0), [(3, 4), (1, 4), (4,)], False),
    "subtract": (lambda: L.Subtract(), ("Subtract", 0, 0, 0), [(5,), (5,)], False),
    "subtract_broadcast": (lambda: L.Subtract(), ("Subtract", 0, 0, 0), [(2, 1), (3,)], False),
    "multiply_3": (lambda: L.Multiply(), ("Multiply", 0, 0, 0), [(2, 3)] * 3, False),
    "multiply_broadcast": (lambda: L.Multiply(), ("Multiply", 0, 0, 0), [(3, 1), (1, 4)], False),
    "average_3": (lambda: L.Average(), ("Average", 0, 0, 0), [(4,)] * 3, False),
    "maximum_2": (lambda: L.Maximum(), ("Maximum", 0, 0, 0), [(6,)] * 2, False),
    "maximum_3_ties": (lambda: L.Maximum(), ("Maximum", 0, 0, 0), [(8,)] * 3, True),
    "minimum_3_ties": (lambda: L.Minimum(), ("Minimum", 0, 0, 0), [(8,)] * 3, True),
    "maximum_broadcast_ties": (lambda: L.Maximum(), ("Maximum", 0, 0, 0), [(2, 3), (3,)], True),
    "concatenate_last": (lambda: L.Concatenate(axis=-1), ("Concatenate", -1, 0, 0),
                         [(2, 3, 2), (2, 3, 1), (2, 3, 3)], False),
    "concatenate_axis1": (lambda: L.Concatenate(axis=1), ("Concatenate", 1, 0, 0),
                          [(2, 3, 2), (1, 3, 2)], False),
    "concatenate_axis2": (lambda: L.Concatenate(axis=2), ("Concatenate", 2, 0, 0),
                          [(2, 1, 2), (2, 3, 2)], False),
    "dot_vectors": (lambda: L.Dot(axes=1), ("Dot", 1, 1, 0), [(5,), (5,)], False),
    "dot_vectors_normalize": (lambda: L.Dot(axes=-1, normalize=True), ("Dot", -1, -1, 1),
                              [(5,), (5,)], False),
    "dot_last_axes": (lambda: L.Dot(axes=-1), ("Dot", -1, -1, 0), [(3, 4), (2, 4)], False),
    "dot_axes_2_1": (lambda: L.Dot(axes=(2, 1)), ("Dot", 2, 1, 0), [(3, 4), (4, 5)], False),
    "dot_axes_1_2_normalize": (lambda: L.Dot(axes=(1, 2), normalize=True), ("Dot", 1, 2, 1),
                               [(4, 3), (2, 4)], False),
    "dot_rank3": (lambda: L.Dot(axes=(2, 1)), ("Dot", 2, 1, 0), [(2, 3, 4), (3, 2)], False),
    "dot_rank3_normalize": (lambda: L.Dot(axes=(2, 2), normalize=True), ("Dot", 2, 2, 1),
                            [(2, 3, 2), (2, 3)], False),
    "dot_vector_matrix": (lambda: L.Dot(axes=(1, 2)), ("Dot", 1, 2, 0), [(3,), (2, 3)], False),
}
BATCH = 2


def write_tensor(f, name, values):
    values = np.asarray(values, dtype=np.float32).ravel()
    f.write(f"tensor {name} {values.size}\n")
    for i in range(0, values.size, 8):
        f.write(" ".join("%.9g" % v for v in values[i:i + 8]) + "\n")


def generate(seed, name):
    make, spec, shapes, ties = CASES[name]
    rng = np.random.default_rng(seed)
    if ties:
        xs = [rng.integers(-1, 2, (BATCH,) + s).astype(np.float32) for s in shapes]
    else:
        xs = [rng.normal(0.0, 1.0, (BATCH,) + s).astype(np.float32) for s in shapes]
    layer = make()
    out = np.asarray(layer([jnp.asarray(x) for x in xs]))
    r = rng.normal(0.0, 1.0, out.shape).astype(np.float32)

    def objective(*inputs):
        return jnp.sum(layer(list(inputs)) * r)

    grads = jax.grad(objective, argnums=tuple(range(len(xs))))(*[jnp.asarray(x) for x in xs])
    path = os.path.join(OUT_DIR, name + ".txt")
    with open(path, "w") as f:
        f.write(f"# {name}: keras {keras.__version__}, jax {jax.__version__}, "
                f"written by tests/gen_keras_merge_fixtures.py\n")
        f.write("layer %s %d %d %d\n" % spec)
        f.write(f"batch {BATCH}\n")
        for i, s in enumerate(shapes):
            f.write(f"shape {i} {len(s)} " + " ".join(str(d) for d in s) + "\n")
        f.write("# output shape " + str(tuple(out.shape[1:])) + "\n")
        for i, x in enumerate(xs):
            write_tensor(f, f"x{i}", x)
        write_tensor(f, "output", out)
        write_tensor(f, "r", r)
        for i, g in enumerate(grads):
            write_tensor(f, f"dx{i}", g)
    print("wrote", path, "output", out.shape)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for seed, name in enumerate(CASES):
        generate(1000 + seed, name)


if __name__ == "__main__":
    main()
