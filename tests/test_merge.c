/* test_merge.c: the merge layers (src/layers/merge.c) built directly, as the graph engine will
 * build them: output shapes and the errors of bad inputs, forward values, backward_n against
 * central finite differences for every input, JAX's tie gradients, reference values from Keras 3
 * (tests/gen_keras_merge_fixtures.py), and their config entries (their io in src/layers/merge.c). */
#include "testutil.h"
/* after criterion.h (from testutil.h): included first, it breaks Criterion 2.4's Test() */
#include <criterion/parameterized.h>

#include "io/io.h"
#include "layers/layer.h"

#define MAX_IN 4
#define FIXTURE_DIR "tests/fixtures/keras_merge/"

/* ---- helpers ------------------------------------------------------------------------------ */

static const kc_forward_ctx no_training = {0};

/* The layer class by Keras's name: Concatenate's axis a, Dot's axes (a, b) and normalize c */
static kc_layer *make_layer(const char *cls, int a, int b, int c) {
    kc_layer *l = NULL;
    if (!strcmp(cls, "Add")) l = kc_merge_add();
    else if (!strcmp(cls, "Subtract")) l = kc_merge_subtract();
    else if (!strcmp(cls, "Multiply")) l = kc_merge_multiply();
    else if (!strcmp(cls, "Average")) l = kc_merge_average();
    else if (!strcmp(cls, "Maximum")) l = kc_merge_maximum();
    else if (!strcmp(cls, "Minimum")) l = kc_merge_minimum();
    else if (!strcmp(cls, "Concatenate")) l = kc_concatenate(a);
    else if (!strcmp(cls, "Dot")) l = kc_dot(a, b, c);
    cr_assert_not_null(l, "no layer class %s", cls);
    return l;
}

/* What the engine does before build: name, inputs and their shapes; then out_size */
static kc_status setup(kc_layer *l, int n, const kc_shape *shapes) {
    snprintf(l->name, sizeof l->name, "%s", l->ops->base_name);
    l->n_in = n;
    for (int i = 0; i < n; i++) {
        l->in_shapes[i] = shapes[i];
        l->in_sizes[i] = kc_shape_size(shapes[i]);
    }
    if (n > 0) {
        l->in_shape = shapes[0];
        l->in_size = l->in_sizes[0];
    }
    kc_status st = l->ops->build(l);
    if (st == KC_OK) l->out_size = kc_shape_size(l->out_shape);
    return st;
}

static void assert_shape(kc_shape got, kc_shape want) {
    char a[64], b[64];
    int same = got.rank == want.rank;
    for (int d = 0; same && d < want.rank; d++) same = got.dims[d] == want.dims[d];
    cr_assert(same, "output shape %s, want %s", kc_shape_str(got, a, sizeof a),
              kc_shape_str(want, b, sizeof b));
}

/* builds and checks the output shape, returns the layer */
static kc_layer *built(kc_layer *l, int n, const kc_shape *shapes, kc_shape want) {
    KC_CHECK(setup(l, n, shapes));
    assert_shape(l->out_shape, want);
    cr_assert_eq(l->param_count, 0);
    return l;
}

static kc_shape shape4(int rank, int d0, int d1, int d2, int d3) {
    kc_shape s = {rank, {d0, d1, d2, d3}};
    return s;
}

/* xorshift32 into [-scale, scale): the same values everywhere */
static float next_value(uint32_t *state, float scale) {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return scale * ((float)(*state >> 8) / 8388608.0f - 1.0f);
}

static void fill_values(float *out, int64_t n, uint32_t seed, float scale) {
    uint32_t state = seed;
    for (int64_t i = 0; i < n; i++) out[i] = next_value(&state, scale);
}

static void forward(kc_layer *l, float *const *x, float *out, int batch) {
    l->ops->forward_n(l, (const float *const *)x, out, batch, &no_training);
}

static void backward(kc_layer *l, float *const *x, const float *out, const float *dout,
                     float *const *din, int batch) {
    l->ops->backward_n(l, (const float *const *)x, out, dout, din, batch, &no_training);
}

static void assert_values(const float *got, const float *want, int64_t n, double tol,
                          const char *what) {
    for (int64_t i = 0; i < n; i++)
        cr_assert(tu_close(got[i], want[i], tol), "%s[%lld]: %.9g, want %.9g", what,
                  (long long)i, (double)got[i], (double)want[i]);
}

/* ---- names and shapes --------------------------------------------------------------------- */

Test(merge_build, keras_class_and_default_names) {
    const char *cls[] = {"Add", "Subtract", "Multiply", "Average",
                         "Maximum", "Minimum", "Concatenate", "Dot"};
    const char *base[] = {"add", "subtract", "multiply", "average",
                          "maximum", "minimum", "concatenate", "dot"};
    for (int i = 0; i < 8; i++) {
        kc_layer *l = make_layer(cls[i], -1, -1, 0);
        cr_assert_str_eq(l->ops->type_name, cls[i]);
        cr_assert_str_eq(l->ops->base_name, base[i]);
        cr_assert_not_null(l->ops->forward_n);
        cr_assert_not_null(l->ops->backward_n);
        int two = i == 1 || i == 7;
        cr_assert_eq(l->ops->max_inputs, two ? 2 : 16, "%s", cls[i]);
        cr_assert_eq(l->ops->min_inputs, two ? 2 : 1, "%s", cls[i]);
        free(l);
    }
}

Test(merge_build, elementwise_shapes) {
    kc_shape s34 = kc_shape2(3, 4);
    kc_shape three[3] = {s34, s34, s34};
    const char *cls[] = {"Add", "Multiply", "Average", "Maximum", "Minimum"};
    for (int i = 0; i < 5; i++) {
        free(built(make_layer(cls[i], 0, 0, 0), 3, three, s34));
        free(built(make_layer(cls[i], 0, 0, 0), 1, three, s34)); /* Keras takes one input too */
    }
    free(built(kc_merge_subtract(), 2, three, s34));
    /* Keras's broadcasting: aligned from the last axis, 1 repeats */
    kc_shape b1[3] = {kc_shape2(3, 4), kc_shape2(1, 4), kc_shape1(4)};
    free(built(kc_merge_add(), 3, b1, s34));
    kc_shape b2[2] = {kc_shape2(3, 1), kc_shape2(1, 4)};
    free(built(kc_merge_multiply(), 2, b2, s34));
    kc_shape b3[2] = {kc_shape1(1), kc_shape3(2, 3, 4)};
    free(built(kc_merge_maximum(), 2, b3, kc_shape3(2, 3, 4)));
    kc_shape b4[2] = {kc_shape2(2, 1), kc_shape1(3)};
    free(built(kc_merge_subtract(), 2, b4, kc_shape2(2, 3)));
}

Test(merge_build, elementwise_mismatch_names_layer_and_shapes) {
    kc_shape s[2] = {kc_shape1(4), kc_shape1(5)};
    kc_layer *l = kc_merge_add();
    KC_EXPECT_ERR(setup(l, 2, s), KC_EINVAL, "layer add (Add): inputs have shapes (4), (5)");
    free(l);
    kc_shape t[3] = {kc_shape2(3, 4), kc_shape2(3, 4), kc_shape2(2, 4)};
    l = kc_merge_minimum();
    KC_EXPECT_ERR(setup(l, 3, t), KC_EINVAL, "(3, 4), (3, 4), (2, 4)");
    cr_assert(strstr(kc_last_error(), "layer minimum (Minimum)"), "%s", kc_last_error());
    free(l);
}

Test(merge_build, subtract_needs_exactly_two_inputs) {
    kc_shape s[3] = {kc_shape1(4), kc_shape1(4), kc_shape1(4)};
    kc_layer *l = kc_merge_subtract();
    KC_EXPECT_ERR(setup(l, 3, s), KC_EINVAL, "exactly 2 inputs");
    cr_assert(strstr(kc_last_error(), "layer subtract (Subtract): called on 3 inputs with shapes "
                                      "(4), (4), (4)"),
              "%s", kc_last_error());
    KC_EXPECT_ERR(setup(l, 1, s), KC_EINVAL, "exactly 2 inputs");
    free(l);
}

Test(merge_build, no_inputs_is_refused) {
    /* what kc_add into a Sequential model does: no inputs set */
    kc_layer *l = kc_merge_average();
    KC_EXPECT_ERR(setup(l, 0, NULL), KC_EINVAL, "layer average (Average): called on no inputs");
    free(l);
    l = kc_dot(1, 1, 0);
    KC_EXPECT_ERR(setup(l, 0, NULL), KC_EINVAL, "Sequential");
    free(l);
}

Test(merge_build, concatenate_shapes) {
    kc_shape a[3] = {kc_shape3(2, 3, 2), kc_shape3(2, 3, 1), kc_shape3(2, 3, 3)};
    free(built(kc_concatenate(-1), 3, a, kc_shape3(2, 3, 6)));
    free(built(kc_concatenate(3), 3, a, kc_shape3(2, 3, 6)));
    kc_shape b[2] = {kc_shape3(2, 3, 2), kc_shape3(1, 3, 2)};
    free(built(kc_concatenate(1), 2, b, kc_shape3(3, 3, 2)));
    free(built(kc_concatenate(-3), 2, b, kc_shape3(3, 3, 2)));
    kc_shape c[2] = {kc_shape3(2, 1, 2), kc_shape3(2, 3, 2)};
    free(built(kc_concatenate(2), 2, c, kc_shape3(2, 4, 2)));
    free(built(kc_concatenate(-2), 2, c, kc_shape3(2, 4, 2)));
    kc_shape d[2] = {kc_shape1(3), kc_shape1(5)};
    free(built(kc_concatenate(-1), 2, d, kc_shape1(8)));
    free(built(kc_concatenate(-1), 1, d, kc_shape1(3)));
}

Test(merge_build, concatenate_errors) {
    kc_shape a[2] = {kc_shape3(2, 3, 2), kc_shape3(2, 3, 1)};
    kc_layer *l = kc_concatenate(0);
    KC_EXPECT_ERR(setup(l, 2, a), KC_EINVAL,
                  "layer concatenate (Concatenate): axis 0 is the batch axis");
    cr_assert(strstr(kc_last_error(), "(2, 3, 2), (2, 3, 1)"), "%s", kc_last_error());
    free(l);
    l = kc_concatenate(-4); /* the batch axis from the end */
    KC_EXPECT_ERR(setup(l, 2, a), KC_EINVAL, "batch axis");
    free(l);
    l = kc_concatenate(4);
    KC_EXPECT_ERR(setup(l, 2, a), KC_EINVAL, "axis 4 is out of range");
    free(l);
    l = kc_concatenate(-5);
    KC_EXPECT_ERR(setup(l, 2, a), KC_EINVAL, "axis -5 is out of range");
    free(l);
    /* along axis 1 the last axes must agree */
    l = kc_concatenate(1);
    KC_EXPECT_ERR(setup(l, 2, a), KC_EINVAL,
                  "inputs have shapes (2, 3, 2), (2, 3, 1); Concatenate(axis=1) needs equal "
                  "sizes along every other axis");
    free(l);
    kc_shape r[2] = {kc_shape2(2, 3), kc_shape3(2, 3, 1)};
    l = kc_concatenate(-1);
    KC_EXPECT_ERR(setup(l, 2, r), KC_EINVAL, "of one rank");
    free(l);
    kc_shape z[2] = {{0, {0}}, {0, {0}}};
    l = kc_concatenate(-1);
    KC_EXPECT_ERR(setup(l, 2, z), KC_EINVAL, "no axis besides the batch axis");
    free(l);
}

Test(merge_build, dot_shapes) {
    kc_shape v[2] = {kc_shape1(5), kc_shape1(5)};
    free(built(kc_dot(1, 1, 0), 2, v, kc_shape1(1))); /* Keras: (n,) . (n,) -> (1,) */
    free(built(kc_dot(-1, -1, 1), 2, v, kc_shape1(1)));
    kc_shape m[2] = {kc_shape2(3, 4), kc_shape2(5, 4)};
    free(built(kc_dot(-1, -1, 0), 2, m, kc_shape2(3, 5)));
    free(built(kc_dot(2, 2, 0), 2, m, kc_shape2(3, 5)));
    kc_shape m2[2] = {kc_shape2(3, 4), kc_shape2(4, 5)};
    free(built(kc_dot(2, 1, 0), 2, m2, kc_shape2(3, 5)));
    kc_shape r3[2] = {kc_shape3(2, 3, 4), kc_shape2(3, 2)};
    free(built(kc_dot(2, 1, 0), 2, r3, kc_shape3(2, 4, 2)));
    kc_shape vm[2] = {kc_shape1(3), kc_shape2(2, 3)};
    free(built(kc_dot(1, 2, 0), 2, vm, kc_shape1(2)));
    kc_shape r4[2] = {kc_shape3(3, 4, 2), kc_shape3(5, 4, 6)};
    free(built(kc_dot(2, 2, 0), 2, r4, shape4(4, 3, 2, 5, 6))); /* Keras: (3, 2, 5, 6) */
}

Test(merge_build, dot_errors) {
    kc_shape m[2] = {kc_shape2(3, 4), kc_shape2(5, 6)};
    kc_layer *l = kc_dot(-1, -1, 0);
    KC_EXPECT_ERR(setup(l, 2, m), KC_EINVAL,
                  "layer dot (Dot): inputs have shapes (3, 4), (5, 6); axes (-1, -1) have sizes "
                  "4 and 6");
    free(l);
    l = kc_dot(0, 1, 0);
    KC_EXPECT_ERR(setup(l, 2, m), KC_EINVAL, "is the batch axis");
    cr_assert(strstr(kc_last_error(), "(3, 4), (5, 6)"), "%s", kc_last_error());
    free(l);
    l = kc_dot(1, 3, 0);
    KC_EXPECT_ERR(setup(l, 2, m), KC_EINVAL, "axis 3 is out of range for input 1");
    free(l);
    kc_shape three[3] = {kc_shape1(4), kc_shape1(4), kc_shape1(4)};
    l = kc_dot(1, 1, 0);
    KC_EXPECT_ERR(setup(l, 3, three), KC_EINVAL, "Dot needs exactly 2 inputs");
    free(l);
    kc_shape big[2] = {kc_shape3(2, 2, 2), shape4(4, 2, 2, 2, 2)};
    l = kc_dot(1, 1, 0);
    KC_EXPECT_ERR(setup(l, 2, big), KC_EINVAL, "output of rank 5");
    free(l);
    kc_shape z[2] = {{0, {0}}, kc_shape1(1)};
    l = kc_dot(-1, -1, 0);
    KC_EXPECT_ERR(setup(l, 2, z), KC_EINVAL, "needs inputs with an axis besides the batch");
    free(l);
}

/* ---- forward values ----------------------------------------------------------------------- */

Test(merge_forward, elementwise_values) {
    float a[6] = {1, -2, 3, 0.5f, 4, -1}, b[6] = {2, 2, -1, 0.5f, -4, 3},
          c[6] = {-1, 1, 1, 2, 0, -2};
    float *x[3] = {a, b, c}, out[6];
    kc_shape s[3] = {kc_shape1(3), kc_shape1(3), kc_shape1(3)};
    struct {
        const char *cls;
        int n;
        float want[6];
    } cases[] = {
        {"Add", 3, {2, 1, 3, 3, 0, 0}},
        {"Subtract", 2, {-1, -4, 4, 0, 8, -4}},
        {"Multiply", 3, {-2, -4, -3, 0.5f, 0, 6}},
        {"Average", 3, {2 / 3.0f, 1 / 3.0f, 1, 1, 0, 0}},
        {"Maximum", 3, {2, 2, 3, 2, 4, 3}},
        {"Minimum", 3, {-1, -2, -1, 0.5f, -4, -2}},
        {"Add", 1, {1, -2, 3, 0.5f, 4, -1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kc_layer *l = make_layer(cases[i].cls, 0, 0, 0);
        KC_CHECK(setup(l, cases[i].n, s));
        forward(l, x, out, 2);
        assert_values(out, cases[i].want, 6, 1e-6, cases[i].cls);
        free(l);
    }
}

Test(merge_forward, broadcast_values) {
    /* (2, 1) - (3,) per sample: out[i][j] = a[i] - b[j] */
    float a[4] = {1, 2, 10, 20}, b[6] = {0, 1, 2, 100, 200, 300}, out[12];
    float *x[2] = {a, b};
    kc_shape s[2] = {kc_shape2(2, 1), kc_shape1(3)};
    kc_layer *l = built(kc_merge_subtract(), 2, s, kc_shape2(2, 3));
    forward(l, x, out, 2);
    float want[12] = {1, 0, -1, 2, 1, 0, -90, -190, -290, -80, -180, -280};
    assert_values(out, want, 12, 1e-6, "out");
    /* the gradient sums over the repeated elements */
    float dout[12], da[4], db[6];
    for (int i = 0; i < 12; i++) dout[i] = (float)(i + 1);
    float *din[2] = {da, db};
    backward(l, x, out, dout, din, 2);
    float want_da[4] = {6, 15, 24, 33}, want_db[6] = {-5, -7, -9, -17, -19, -21};
    assert_values(da, want_da, 4, 1e-6, "da");
    assert_values(db, want_db, 6, 1e-6, "db");
    free(l);
}

Test(merge_forward, concatenate_values) {
    /* per sample (2, 2) and (2, 1) along -1; (2, 2) and (1, 2) along 1 */
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[4] = {-1, -2, -3, -4}, out[12];
    float *x[2] = {a, b};
    kc_shape s[2] = {kc_shape2(2, 2), kc_shape2(2, 1)};
    kc_layer *l = built(kc_concatenate(-1), 2, s, kc_shape2(2, 3));
    forward(l, x, out, 2);
    float want[12] = {1, 2, -1, 3, 4, -2, 5, 6, -3, 7, 8, -4};
    assert_values(out, want, 12, 0, "axis -1");
    float da[8], db[4];
    float *din[2] = {da, db};
    backward(l, x, out, want, din, 2);
    assert_values(da, a, 8, 0, "da");
    assert_values(db, b, 4, 0, "db");
    free(l);
    kc_shape t[2] = {kc_shape2(2, 2), kc_shape2(1, 2)};
    l = built(kc_concatenate(1), 2, t, kc_shape2(3, 2));
    forward(l, x, out, 2);
    float want1[12] = {1, 2, 3, 4, -1, -2, 5, 6, 7, 8, -3, -4};
    assert_values(out, want1, 12, 0, "axis 1");
    free(l);
}

Test(merge_forward, dot_values) {
    float a[3] = {1, 2, 3}, b[3] = {4, 5, 6}, out[1];
    float *x[2] = {a, b};
    kc_shape s[2] = {kc_shape1(3), kc_shape1(3)};
    kc_layer *l = built(kc_dot(1, 1, 0), 2, s, kc_shape1(1));
    forward(l, x, out, 1);
    cr_assert(tu_close(out[0], 32, 1e-6), "%g", (double)out[0]);
    free(l);
    l = built(kc_dot(-1, -1, 1), 2, s, kc_shape1(1));
    forward(l, x, out, 1);
    cr_assert(tu_close(out[0], 32 / sqrt(14.0 * 77.0), 1e-6), "%g", (double)out[0]);
    free(l);
    /* (2, 3) . (3, 2) over axes (2, 1): the matrix product */
    float m[6] = {1, 2, 3, 4, 5, 6}, n[6] = {1, 0, 0, 1, 1, 1}, p[4];
    float *y[2] = {m, n};
    kc_shape t[2] = {kc_shape2(2, 3), kc_shape2(3, 2)};
    l = built(kc_dot(2, 1, 0), 2, t, kc_shape2(2, 2));
    forward(l, y, p, 1);
    float want[4] = {4, 5, 10, 11};
    assert_values(p, want, 4, 1e-6, "matmul");
    free(l);
    /* normalize with a fibre of zeros: keras.ops.normalize's bound keeps it finite */
    float zero[3] = {0, 0, 0};
    float *zx[2] = {zero, b}, dz[3], db[3];
    l = built(kc_dot(1, 1, 1), 2, s, kc_shape1(1));
    forward(l, zx, out, 1);
    cr_assert_eq(out[0], 0.0f);
    float one = 1.0f;
    float *din[2] = {dz, db};
    backward(l, zx, out, &one, din, 1);
    for (int i = 0; i < 3; i++) {
        cr_assert(isfinite(dz[i]) && isfinite(db[i]));
        /* d/dz of (z / 1e-7) . b / |b|: b / |b| / 1e-7 */
        cr_assert(tu_close(dz[i] * 1e-7, b[i] / sqrt(77.0), 1e-5), "%g", (double)dz[i]);
        cr_assert_eq(db[i], 0.0f);
    }
    free(l);
}

/* ---- ties: JAX's max and min split the gradient ------------------------------------------- */

Test(merge_backward, maximum_minimum_ties_split_as_jax) {
    /* three equal inputs: max(max(a, b), c): a, b get 1/4, c 1/2; two: 1/2 each */
    float a[2] = {1, 5}, b[2] = {1, 5}, c[2] = {1, 2}, out[2], dout[2] = {1, 8};
    float da[2], db[2], dc[2];
    float *x[3] = {a, b, c}, *din[3] = {da, db, dc};
    kc_shape s[3] = {kc_shape1(1), kc_shape1(1), kc_shape1(1)};
    const char *cls[] = {"Maximum", "Minimum"};
    for (int k = 0; k < 2; k++) {
        kc_layer *l = make_layer(cls[k], 0, 0, 0);
        KC_CHECK(setup(l, 3, s));
        forward(l, x, out, 2);
        backward(l, x, out, dout, din, 2);
        cr_assert_eq(da[0], 0.25f, "%s", cls[k]);
        cr_assert_eq(db[0], 0.25f);
        cr_assert_eq(dc[0], 0.5f);
        /* sample 1: a == b == 5, c == 2: the max is a tie of a and b, the min is c */
        float want_a = k == 0 ? 4.0f : 0.0f, want_c = k == 0 ? 0.0f : 8.0f;
        cr_assert_eq(da[1], want_a, "%s: %g", cls[k], (double)da[1]);
        cr_assert_eq(db[1], want_a);
        cr_assert_eq(dc[1], want_c);
        free(l);
    }
}

Test(merge_backward, null_din_skipped_and_dout_kept) {
    /* out and dout sized for Concatenate's (2, 4) */
    float a[4] = {1, 2, 3, 4}, b[4] = {0.5f, -1, 2, 8}, out[8];
    float dout[8] = {1, -2, 3, 0.25f, 2, -0.5f, 1, 4}, keep[8], db[4];
    memcpy(keep, dout, sizeof keep);
    float *x[2] = {a, b}, *din[2] = {NULL, db};
    kc_shape s[2] = {kc_shape1(2), kc_shape1(2)};
    const char *cls[] = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
                         "Concatenate", "Dot"};
    for (int k = 0; k < 8; k++) {
        kc_layer *l = make_layer(cls[k], -1, -1, k == 7);
        KC_CHECK(setup(l, 2, s));
        forward(l, x, out, 2);
        memset(db, 0xff, sizeof db);
        backward(l, x, out, dout, din, 2);
        for (int i = 0; i < 4; i++) cr_assert(!isnan(db[i]), "%s: db[%d] not written", cls[k], i);
        cr_assert(!memcmp(keep, dout, sizeof keep), "%s modified dout", cls[k]);
        free(l);
    }
}

/* ---- backward_n against central finite differences ---------------------------------------- */

/* The objective is sum(out * r) in double of a float32 forward: h = 1e-2 keeps the rounding
 * error of the difference near 1e-5; the layers are linear or bilinear in each input but for
 * Dot's normalisation, whose curvature the relative 2e-2 covers (as tests/test_grad.c). */
#define FD_STEP 1e-2f
#define REL_TOL 2e-2
#define ABS_TOL 1e-4
#define FD_BATCH 2

typedef struct {
    char cls[16];
    int a, b, c;
    int n;
    kc_shape shapes[MAX_IN];
    int distinct; /* Maximum, Minimum: the inputs' values at each element kept apart */
} grad_case;

static double objective(kc_layer *l, float *const *x, float *out, const float *r, int batch) {
    forward(l, x, out, batch);
    double s = 0.0;
    for (int64_t i = 0; i < batch * l->out_size; i++) s += (double)out[i] * r[i];
    return s;
}

static void check_gradients(const grad_case *c) {
    kc_layer *l = make_layer(c->cls, c->a, c->b, c->c);
    KC_CHECK(setup(l, c->n, c->shapes));
    int batch = FD_BATCH;
    float *x[MAX_IN], *din[MAX_IN];
    for (int i = 0; i < c->n; i++) {
        int64_t n = batch * l->in_sizes[i];
        x[i] = malloc(sizeof(float) * (size_t)n);
        din[i] = malloc(sizeof(float) * (size_t)n);
        fill_values(x[i], n, 101u + 17u * (uint32_t)i, 1.0f);
        if (c->distinct) /* equal shapes: 0.4 apart at each element, the order varying */
            for (int64_t e = 0; e < n; e++)
                x[i][e] = 0.4f * (float)((i + e) % c->n) + 0.05f * x[i][e];
    }
    int64_t n_out = batch * l->out_size;
    float *out = malloc(sizeof(float) * (size_t)n_out), *r = malloc(sizeof(float) * (size_t)n_out);
    float *r_copy = malloc(sizeof(float) * (size_t)n_out);
    fill_values(r, n_out, 4242u, 1.0f);
    memcpy(r_copy, r, sizeof(float) * (size_t)n_out);
    forward(l, x, out, batch);
    backward(l, x, out, r, din, batch);
    cr_assert(!memcmp(r, r_copy, sizeof(float) * (size_t)n_out), "backward_n modified dout");
    double largest = 0.0;
    for (int i = 0; i < c->n; i++)
        for (int64_t e = 0; e < batch * l->in_sizes[i]; e++) {
            float saved = x[i][e], up = saved + FD_STEP, down = saved - FD_STEP;
            x[i][e] = up;
            double f_up = objective(l, x, out, r, batch);
            x[i][e] = down;
            double f_down = objective(l, x, out, r, batch);
            x[i][e] = saved;
            double numeric = (f_up - f_down) / ((double)up - (double)down);
            double diff = fabs((double)din[i][e] - numeric);
            cr_expect(diff <= REL_TOL * fmax(fabs(numeric), 1e-2) + ABS_TOL,
                      "%s input %d value %lld: analytic %.7g, finite difference %.7g", c->cls, i,
                      (long long)e, (double)din[i][e], numeric);
            largest = fmax(largest, fabs(numeric));
        }
    cr_assert(largest > 1e-3, "every gradient is below 1e-3: the check is vacuous");
    for (int i = 0; i < c->n; i++) {
        free(x[i]);
        free(din[i]);
    }
    free(out);
    free(r);
    free(r_copy);
    free(l);
}

#define S1(a) {1, {a}}
#define S2(a, b) {2, {a, b}}
#define S3(a, b, c) {3, {a, b, c}}

ParameterizedTestParameters(merge_grad, finite_differences) {
    static grad_case cases[] = {
        {"Add", 0, 0, 0, 3, {S2(2, 3), S2(2, 3), S2(2, 3)}, 0},
        {"Add", 0, 0, 0, 3, {S2(2, 3), S2(1, 3), S1(3)}, 0},
        {"Subtract", 0, 0, 0, 2, {S1(4), S1(4)}, 0},
        {"Subtract", 0, 0, 0, 2, {S2(2, 1), S1(3)}, 0},
        {"Multiply", 0, 0, 0, 3, {S2(2, 3), S2(2, 3), S2(2, 3)}, 0},
        {"Multiply", 0, 0, 0, 2, {S2(3, 1), S2(1, 4)}, 0},
        {"Average", 0, 0, 0, 4, {S1(5), S1(5), S1(5), S1(5)}, 0},
        {"Average", 0, 0, 0, 2, {S3(2, 2, 2), S2(1, 2)}, 0},
        {"Maximum", 0, 0, 0, 3, {S1(6), S1(6), S1(6)}, 1},
        {"Maximum", 0, 0, 0, 2, {S2(2, 3), S2(2, 3)}, 1},
        {"Minimum", 0, 0, 0, 3, {S1(6), S1(6), S1(6)}, 1},
        {"Concatenate", -1, 0, 0, 2, {S3(2, 3, 2), S3(2, 3, 1)}, 0},
        {"Concatenate", 1, 0, 0, 3, {S3(2, 3, 2), S3(1, 3, 2), S3(3, 3, 2)}, 0},
        {"Concatenate", 2, 0, 0, 2, {S3(2, 1, 2), S3(2, 3, 2)}, 0},
        {"Dot", 1, 1, 0, 2, {S1(5), S1(5)}, 0},
        {"Dot", -1, -1, 1, 2, {S1(5), S1(5)}, 0},
        {"Dot", 2, 1, 0, 2, {S2(3, 4), S2(4, 5)}, 0},
        {"Dot", -1, -1, 0, 2, {S2(3, 4), S2(2, 4)}, 0},
        {"Dot", 1, 2, 1, 2, {S2(4, 3), S2(2, 4)}, 0},
        {"Dot", 2, 1, 0, 2, {S3(2, 3, 4), S2(3, 2)}, 0},
        {"Dot", 2, 2, 1, 2, {S3(2, 3, 2), S2(2, 3)}, 0},
        {"Dot", 2, 1, 1, 2, {S3(2, 3, 2), S3(3, 2, 2)}, 0},
        {"Dot", 1, 2, 0, 2, {S1(3), S2(2, 3)}, 0},
    };
    return cr_make_param_array(grad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(grad_case *c, merge_grad, finite_differences) {
    cr_log_info("%s(%d, %d, %d) on %d inputs", c->cls, c->a, c->b, c->c, c->n);
    check_gradients(c);
}

/* ---- larger batches: the split over the pool changes nothing ------------------------------- */

Test(merge_threads, batch_split_matches_one_sample_at_a_time) {
    kc_set_num_threads(2);
    int batch = 64;
    struct {
        const char *cls;
        int a, b, c;
        kc_shape s[2];
    } cases[] = {
        {"Maximum", 0, 0, 0, {kc_shape2(16, 64), kc_shape2(16, 64)}},
        {"Multiply", 0, 0, 0, {kc_shape2(16, 64), kc_shape1(64)}},
        {"Concatenate", 1, 0, 0, {kc_shape2(16, 64), kc_shape2(8, 64)}},
        {"Dot", 2, 2, 1, {kc_shape2(16, 32), kc_shape2(8, 32)}},
        {"Dot", 1, 1, 0, {kc_shape2(16, 32), kc_shape2(16, 8)}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        kc_layer *l = make_layer(cases[k].cls, cases[k].a, cases[k].b, cases[k].c);
        KC_CHECK(setup(l, 2, cases[k].s));
        float *x[2], *din[2], *din1[2];
        for (int i = 0; i < 2; i++) {
            int64_t n = batch * l->in_sizes[i];
            x[i] = malloc(sizeof(float) * (size_t)n);
            din[i] = malloc(sizeof(float) * (size_t)n);
            din1[i] = malloc(sizeof(float) * (size_t)n);
            fill_values(x[i], n, 7u + (uint32_t)i, 1.0f);
        }
        int64_t n_out = batch * l->out_size;
        float *out = malloc(sizeof(float) * (size_t)n_out), *out1 = malloc(sizeof(float) * (size_t)n_out);
        float *r = malloc(sizeof(float) * (size_t)n_out);
        fill_values(r, n_out, 99u, 1.0f);
        forward(l, x, out, batch);
        backward(l, x, out, r, din, batch);
        for (int s = 0; s < batch; s++) {
            float *xs[2] = {x[0] + s * l->in_sizes[0], x[1] + s * l->in_sizes[1]};
            float *ds[2] = {din1[0] + s * l->in_sizes[0], din1[1] + s * l->in_sizes[1]};
            forward(l, xs, out1 + s * l->out_size, 1);
            backward(l, xs, out1 + s * l->out_size, r + s * l->out_size, ds, 1);
        }
        cr_assert(!memcmp(out, out1, sizeof(float) * (size_t)n_out), "%s: forward differs",
                  cases[k].cls);
        for (int i = 0; i < 2; i++) {
            cr_assert(!memcmp(din[i], din1[i], sizeof(float) * (size_t)(batch * l->in_sizes[i])),
                      "%s: din[%d] differs", cases[k].cls, i);
            free(x[i]);
            free(din[i]);
            free(din1[i]);
        }
        free(out);
        free(out1);
        free(r);
        free(l);
    }
    kc_set_num_threads(0);
}

/* ---- Keras 3 reference values ------------------------------------------------------------- */

#define MAX_TENSORS 12

typedef struct {
    char cls[16];
    int args[3];
    int batch, n_in;
    kc_shape shapes[MAX_IN];
    char names[MAX_TENSORS][16];
    long counts[MAX_TENSORS];
    float *data[MAX_TENSORS];
    int n;
} fixture;

static void load_fixture(const char *name, fixture *fx) {
    char path[256];
    snprintf(path, sizeof path, FIXTURE_DIR "%s.txt", name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s (run the tests from the repository root)", path);
    memset(fx, 0, sizeof *fx);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (!strncmp(line, "layer ", 6)) {
            cr_assert(sscanf(line, "layer %15s %d %d %d", fx->cls, &fx->args[0], &fx->args[1],
                             &fx->args[2]) == 4,
                      "%s: bad line '%s'", path, line);
        } else if (!strncmp(line, "batch ", 6)) {
            cr_assert(sscanf(line, "batch %d", &fx->batch) == 1 && fx->batch > 0);
        } else if (!strncmp(line, "shape ", 6)) {
            char *p = line + 6, *end;
            long i = strtol(p, &end, 10), rank = strtol(end, &end, 10);
            cr_assert(i == fx->n_in && i < MAX_IN && rank >= 0 && rank <= KC_MAX_RANK,
                      "%s: bad line '%s'", path, line);
            fx->shapes[i].rank = (int)rank;
            for (long d = 0; d < rank; d++) fx->shapes[i].dims[d] = (int)strtol(end, &end, 10);
            fx->n_in++;
        } else {
            int t = fx->n;
            cr_assert(t < MAX_TENSORS &&
                          sscanf(line, "tensor %15s %ld", fx->names[t], &fx->counts[t]) == 2 &&
                          fx->counts[t] > 0,
                      "%s: bad line '%s'", path, line);
            fx->data[t] = malloc(sizeof(float) * (size_t)fx->counts[t]);
            cr_assert_not_null(fx->data[t]);
            for (long i = 0; i < fx->counts[t]; i++)
                cr_assert(fscanf(f, "%f", &fx->data[t][i]) == 1, "%s: tensor %s value %ld", path,
                          fx->names[t], i);
            fx->n++;
        }
    }
    fclose(f);
}

static float *tensor(const fixture *fx, const char *name, long count) {
    for (int i = 0; i < fx->n; i++)
        if (!strcmp(fx->names[i], name)) {
            cr_assert_eq(fx->counts[i], count, "tensor %s has %ld values, want %ld", name,
                         fx->counts[i], count);
            return fx->data[i];
        }
    cr_assert_fail("fixture has no tensor %s", name);
    return NULL;
}

typedef struct {
    char name[40];
} fixture_case;

ParameterizedTestParameters(merge_keras, reference) {
    static fixture_case cases[] = {
        {"add_2"},
        {"add_3_broadcast"},
        {"subtract"},
        {"subtract_broadcast"},
        {"multiply_3"},
        {"multiply_broadcast"},
        {"average_3"},
        {"maximum_2"},
        {"maximum_3_ties"},
        {"minimum_3_ties"},
        {"maximum_broadcast_ties"},
        {"concatenate_last"},
        {"concatenate_axis1"},
        {"concatenate_axis2"},
        {"dot_vectors"},
        {"dot_vectors_normalize"},
        {"dot_last_axes"},
        {"dot_axes_2_1"},
        {"dot_axes_1_2_normalize"},
        {"dot_rank3"},
        {"dot_rank3_normalize"},
        {"dot_vector_matrix"},
    };
    return cr_make_param_array(fixture_case, cases, sizeof cases / sizeof cases[0]);
}

/* within 1e-5 of Keras's values, relative to max(1, |value|) */
ParameterizedTest(fixture_case *c, merge_keras, reference) {
    cr_log_info("%s", c->name);
    fixture fx;
    load_fixture(c->name, &fx);
    kc_layer *l = make_layer(fx.cls, fx.args[0], fx.args[1], fx.args[2]);
    KC_CHECK(setup(l, fx.n_in, fx.shapes));
    int batch = fx.batch;
    float *x[MAX_IN], *din[MAX_IN];
    char name[16];
    for (int i = 0; i < fx.n_in; i++) {
        snprintf(name, sizeof name, "x%d", i);
        x[i] = tensor(&fx, name, batch * l->in_sizes[i]);
        din[i] = malloc(sizeof(float) * (size_t)(batch * l->in_sizes[i]));
    }
    long n_out = batch * l->out_size;
    const float *want = tensor(&fx, "output", n_out), *r = tensor(&fx, "r", n_out);
    float *out = malloc(sizeof(float) * (size_t)n_out);
    forward(l, x, out, batch);
    assert_values(out, want, n_out, 1e-5, "output");
    backward(l, x, out, r, din, batch);
    for (int i = 0; i < fx.n_in; i++) {
        snprintf(name, sizeof name, "dx%d", i);
        assert_values(din[i], tensor(&fx, name, batch * l->in_sizes[i]),
                      batch * l->in_sizes[i], 1e-5, name);
        free(din[i]);
    }
    free(out);
    free(l);
    for (int i = 0; i < fx.n; i++) free(fx.data[i]);
}

/* ---- configs (merge.c's io) ----------------------------------------------------------------- */

static kc_status from_json(const char *cls, const char *json, kc_layer **out) {
    const kc_layer_io *io = kc_layer_io_find(cls);
    cr_assert_not_null(io, "no config entry for %s", cls);
    cJSON *cfg = cJSON_Parse(json);
    cr_assert_not_null(cfg, "bad JSON %s", json);
    *out = NULL;
    kc_status st = io->from_config(cfg, "test", out);
    cJSON_Delete(cfg);
    return st;
}

/* the config fields to_config writes, as compact JSON */
static void to_json(const kc_layer *l, char *buf, size_t size) {
    const kc_layer_io *io = kc_layer_io_find(l->ops->type_name);
    cr_assert_not_null(io);
    cJSON *cfg = cJSON_CreateObject();
    KC_CHECK(io->to_config(l, cfg));
    char *s = cJSON_PrintUnformatted(cfg);
    snprintf(buf, size, "%s", s);
    free(s);
    cJSON_Delete(cfg);
}

#define KERAS3_BASE                                                                         \
    "\"trainable\": true, \"dtype\": {\"module\": \"keras\", \"class_name\": "             \
    "\"DTypePolicy\", \"config\": {\"name\": \"float32\"}, \"registered_name\": null}"

Test(merge_config, elementwise_round_trip) {
    const char *cls[] = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"};
    for (int i = 0; i < 6; i++) {
        char json[512], back[256];
        snprintf(json, sizeof json, "{\"name\": \"m\", " KERAS3_BASE "}");
        kc_layer *l;
        KC_CHECK(from_json(cls[i], json, &l));
        cr_assert_str_eq(l->ops->type_name, cls[i]);
        to_json(l, back, sizeof back);
        cr_assert_str_eq(back, "{}");
        kc_weight_desc w[KC_MAX_WEIGHTS];
        cr_assert_eq(kc_layer_weights(l, w), 0);
        free(l);
        /* tf.keras 2's form: dtype a string */
        KC_CHECK(from_json(cls[i], "{\"name\": \"m\", \"trainable\": true, \"dtype\": \"float32\"}",
                           &l));
        free(l);
        KC_EXPECT_ERR(from_json(cls[i], "{\"name\": \"m\", \"axis\": 1}", &l), KC_EFORMAT,
                      "option 'axis' is not supported");
        cr_assert(strstr(kc_last_error(), cls[i]), "%s", kc_last_error());
    }
}

Test(merge_config, concatenate) {
    kc_layer *l;
    KC_CHECK(from_json("Concatenate", "{\"name\": \"c\", " KERAS3_BASE ", \"axis\": 1}", &l));
    cr_assert_eq(l->axis, 1);
    char back[256];
    to_json(l, back, sizeof back);
    cr_assert_str_eq(back, "{\"axis\":1}");
    free(l);
    KC_CHECK(from_json("Concatenate", "{\"name\": \"c\", \"dtype\": \"float32\"}", &l));
    cr_assert_eq(l->axis, -1);
    free(l);
    KC_EXPECT_ERR(from_json("Concatenate", "{\"axis\": 1.5}", &l), KC_EFORMAT,
                  "axis is not a whole number");
    KC_EXPECT_ERR(from_json("Concatenate", "{\"axis\": -1, \"mask\": null}", &l), KC_EFORMAT,
                  "Concatenate's option 'mask' is not supported");
}

Test(merge_config, dot) {
    kc_layer *l;
    char back[256];
    KC_CHECK(from_json("Dot", "{\"name\": \"d\", " KERAS3_BASE
                              ", \"axes\": [1, 2], \"normalize\": true}",
                       &l));
    cr_assert(l->dot_axes[0] == 1 && l->dot_axes[1] == 2 && l->normalize);
    to_json(l, back, sizeof back);
    cr_assert_str_eq(back, "{\"axes\":[1,2],\"normalize\":true}");
    free(l);
    KC_CHECK(from_json("Dot", "{\"name\": \"d\", \"axes\": -1, \"normalize\": false}", &l));
    cr_assert(l->dot_axes[0] == -1 && l->dot_axes[1] == -1 && !l->normalize);
    to_json(l, back, sizeof back);
    cr_assert_str_eq(back, "{\"axes\":-1,\"normalize\":false}");
    free(l);
    /* tf.keras 2: normalize may be absent */
    KC_CHECK(from_json("Dot", "{\"name\": \"d\", \"trainable\": true, \"dtype\": \"float32\", "
                              "\"axes\": 1}",
                       &l));
    cr_assert(l->dot_axes[0] == 1 && l->dot_axes[1] == 1 && !l->normalize);
    free(l);
    KC_EXPECT_ERR(from_json("Dot", "{\"name\": \"d\"}", &l), KC_EFORMAT, "axes is missing");
    KC_EXPECT_ERR(from_json("Dot", "{\"axes\": [1, 2, 3]}", &l), KC_EFORMAT, "list of 2");
    KC_EXPECT_ERR(from_json("Dot", "{\"axes\": [[1], 2]}", &l), KC_EFORMAT, "list of 2");
    KC_EXPECT_ERR(from_json("Dot", "{\"axes\": 1, \"normalize\": 1}", &l), KC_EFORMAT,
                  "normalize is not true or false");
    KC_EXPECT_ERR(from_json("Dot", "{\"axes\": 1, \"epsilon\": 0.1}", &l), KC_EFORMAT,
                  "Dot's option 'epsilon' is not supported");
}
