/* test_activations.c: every activation function and the activation layers (ReLU, LeakyReLU,
 * PReLU, ELU, Softmax(axis)):
 *   - values and derivatives against Keras 3 on JAX (tests/gen_keras_activation_fixtures.py,
 *     fixtures/keras_activations/values.txt: act(x) and jax.grad(sum(act(x) * r))). The rule:
 *     |kerac - keras| <= 1e-5 * |keras| + 1e-7 (relative 1e-5; the absolute 1e-7, a float's
 *     rounding near 1, only decides values within 1e-2 of zero such as 1 + erf(-5)); for the
 *     derivatives taken from the output (tanh's 1 - y * y, sigmoid's y (1 - y), unchanged: the
 *     fast paths') the absolute part is 4e-7, the rounding of y near 1 times r <= 1.5;
 *   - finite-difference gradients through Dense(activation=...) for every activation, through
 *     Conv2D and Conv2DTranspose with activations that keep their pre-activation, and through
 *     each activation layer (PReLU's alpha included);
 *   - config round trips, Keras 3's {"module": "keras.activations", "class_name": "function"}
 *     form, tf.keras 2's LeakyReLU alpha, refusals by name;
 *   - a Keras 3 .keras file and a tf.keras 2 .h5 file using several of them: kerac's
 *     predictions against Keras's. */
#include <stdarg.h>

#include "testutil.h"
#include "ops/ops.h" /* kc_act_from_name, kc_act_forward, kc_act_backward */

#define DIR "tests/fixtures/keras_activations/"
#define N 24
#define MAX_W 4096

/* ---- Keras's values ---------------------------------------------------------------------- */

static int read_floats(FILE *f, const char *tag, float *out, int n) {
    char word[64];
    if (fscanf(f, "%63s", word) != 1 || strcmp(word, tag)) return 0;
    for (int i = 0; i < n; i++)
        if (fscanf(f, "%f", &out[i]) != 1) return 0;
    return 1;
}

static int close_to(float got, float want) {
    return fabsf(got - want) <= 1e-5f * fabsf(want) + 1e-7f;
}
static int close_to_abs(float got, float want, float abs_part) {
    return fabsf(got - want) <= 1e-5f * fabsf(want) + abs_part;
}

Test(activations, keras_values_and_derivatives) {
    FILE *f = fopen(DIR "values.txt", "r");
    cr_assert_not_null(f);
    char line[256];
    cr_assert_not_null(fgets(line, sizeof line, f)); /* the comment */
    float x[N], r[N], y[N], g[N];
    cr_assert(read_floats(f, "x", x, N) && read_floats(f, "r", r, N));
    int seen[KC_ACT_COUNT] = {0}, count = 0;
    char word[64], name[64];
    while (fscanf(f, "%63s %63s", word, name) == 2) {
        cr_assert_str_eq(word, "act");
        cr_assert(read_floats(f, "y", y, N) && read_floats(f, "g", g, N), "%s", name);
        kc_act act = kc_act_from_name(name);
        cr_assert(act < KC_ACT_COUNT, "kerac lacks %s", name);
        cr_assert_str_eq(kc_act_name(act), name);
        seen[act] = 1;
        count++;
        float out[N], d[N];
        memcpy(out, x, sizeof x);
        kc_act_forward(out, 4, 6, act); /* rows of 6: softmax and log_softmax per row */
        memcpy(d, r, sizeof r);
        kc_act_backward(x, out, d, 4, 6, act);
        for (int i = 0; i < N; i++) {
            cr_expect(close_to(out[i], y[i]), "%s(%g) = %.9g, Keras %.9g", name, (double)x[i],
                      (double)out[i], (double)y[i]);
            cr_expect(close_to_abs(d[i], g[i], kc_act_needs_input(act) ? 1e-7f : 4e-7f),
                      "%s'(%g) * r = %.9g, Keras %.9g", name,
                      (double)x[i], (double)d[i], (double)g[i]);
        }
    }
    fclose(f);
    cr_assert_eq(count, KC_ACT_COUNT, "the fixture has %d of kerac's %d activations", count,
                 KC_ACT_COUNT);
    for (int a = 0; a < KC_ACT_COUNT; a++) cr_expect(seen[a], "no fixture for %s", kc_act_name((kc_act)a));
}

Test(activations, names_and_aliases) {
    cr_assert_eq(kc_act_from_name("swish"), KC_SILU);
    cr_assert_eq(kc_act_from_name("hard_swish"), KC_HARD_SILU);
    cr_assert_eq(kc_act_from_name("ReLU"), KC_RELU);
    cr_assert_eq(kc_act_from_name("glu"), KC_ACT_COUNT);
    cr_assert_str_eq(kc_act_name(KC_SILU), "silu");
    cr_assert_str_eq(kc_act_name(KC_ACT_COUNT), "unknown");
    /* the fast paths' activations read only the output, the others only the input */
    cr_assert(!kc_act_needs_input(KC_RELU) && !kc_act_needs_input(KC_SOFTMAX) &&
              !kc_act_needs_input(KC_SIGMOID) && !kc_act_needs_input(KC_TANH) &&
              !kc_act_needs_input(KC_LINEAR));
    cr_assert(kc_act_needs_input(KC_GELU) && kc_act_needs_input(KC_SILU));
}

/* ---- finite differences ------------------------------------------------------------------ */

static void fill(float *out, int64_t n, uint32_t seed, float scale) {
    uint32_t s = seed * 2654435761u + 12345u;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        out[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 2.0f * scale;
    }
}

/* Sequential(input, layers..., NULL), categorical crossentropy, weights in [-0.5, 0.5) */
static kc_model *model(kc_shape input, ...) {
    kc_model *m = kc_sequential(input);
    cr_assert_not_null(m);
    va_list ap;
    va_start(ap, input);
    for (kc_layer *l; (l = va_arg(ap, kc_layer *)) != NULL;) KC_CHECK(kc_add(m, l));
    va_end(ap);
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
    int64_t n = kc_count_params(m);
    cr_assert(n <= MAX_W, "%lld weights", (long long)n);
    float w[MAX_W];
    fill(w, n, 4242u, 0.5f);
    KC_CHECK(kc_set_weights(m, w, n));
    return m;
}

/* every weight's gradient against (L(w + h) - L(w - h)) / 2h, as test_layers2.c's */
static void fd_check(kc_model *m, int batch, uint32_t seed, const char *what) {
    int64_t n = kc_count_params(m), x_size = kc_shape_size(kc_input_shape(m));
    int classes = kc_output_shape(m).dims[0];
    float w[MAX_W], g[MAX_W];
    KC_CHECK(kc_get_weights(m, w, n));
    float *y = calloc((size_t)(batch * classes), sizeof(float));
    for (int i = 0; i < batch; i++) y[i * classes + (3 * i + 1) % classes] = 1.0f;
    float *x = malloc(sizeof(float) * (size_t)(batch * x_size));
    fill(x, batch * x_size, seed, 1.5f);
    KC_CHECK(kc_compute_gradients(m, x, y, batch, 1, NULL, g, n));
    const double h = 1e-3;
    double largest = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float keep = w[i];
        double lp, lm;
        w[i] = keep + (float)h;
        KC_CHECK(kc_set_weights(m, w, n));
        KC_CHECK(kc_compute_gradients(m, x, y, batch, 1, &lp, NULL, 0));
        w[i] = keep - (float)h;
        KC_CHECK(kc_set_weights(m, w, n));
        KC_CHECK(kc_compute_gradients(m, x, y, batch, 1, &lm, NULL, 0));
        w[i] = keep;
        double fd = (lp - lm) / ((double)(keep + (float)h) - (double)(keep - (float)h));
        largest = fmax(largest, fabs(g[i]));
        cr_expect(fabs(fd - g[i]) <= 1e-2 * fabs(fd) + 3e-4,
                  "%s: weight %lld: analytic %.6g, finite difference %.6g", what, (long long)i,
                  (double)g[i], fd);
    }
    KC_CHECK(kc_set_weights(m, w, n));
    cr_assert(largest > 1e-3, "%s: every gradient is below 1e-3", what);
    free(x);
    free(y);
}

Test(activations_grad, dense_every_activation) {
    for (int a = 0; a < KC_ACT_COUNT; a++) {
        kc_model *m = model(kc_shape1(4), kc_dense(6, (kc_act)a), kc_dense(3, KC_SOFTMAX), NULL);
        fd_check(m, 3, 7u + (uint32_t)a, kc_act_name((kc_act)a));
        kc_model_free(m);
    }
}

Test(activations_grad, conv_keeps_the_preactivation) {
    kc_act acts[] = {KC_GELU, KC_MISH, KC_ELU, KC_LOG_SOFTMAX};
    for (int i = 0; i < 4; i++) {
        kc_model *m = model(kc_shape3(4, 4, 1),
                            kc_conv2d_ex(3, &(kc_conv2d_opts){{2, 2}, .activation = acts[i]}),
                            kc_conv2d_transpose(2, &(kc_conv2d_opts){{2, 2},
                                                                     .activation = acts[i]}),
                            kc_flatten(), kc_dense(3, KC_SOFTMAX), NULL);
        fd_check(m, 2, 31u + (uint32_t)i, kc_act_name(acts[i]));
        kc_model_free(m);
    }
}

Test(activations_grad, activation_layer) {
    kc_act acts[] = {KC_SILU, KC_SOFTPLUS, KC_LOG_SOFTMAX, KC_SELU};
    for (int i = 0; i < 4; i++) {
        kc_model *m = model(kc_shape1(5), kc_dense(6, KC_LINEAR), kc_activation(acts[i]),
                            kc_dense(3, KC_SOFTMAX), NULL);
        fd_check(m, 3, 41u + (uint32_t)i, kc_act_name(acts[i]));
        kc_model_free(m);
    }
}

static void layer_fd(kc_layer *layer, const char *what) {
    kc_model *m = model(kc_shape1(5), kc_dense(12, KC_LINEAR), kc_reshape(kc_shape2(3, 4)),
                        layer, kc_flatten(), kc_dense(3, KC_SOFTMAX), NULL);
    fd_check(m, 3, 51u, what);
    kc_model_free(m);
}

Test(activations_grad, layers) {
    layer_fd(kc_relu_layer(-1, 0, 0), "ReLU()");
    layer_fd(kc_relu_layer(0.4f, 0.1f, 0.05f), "ReLU(0.4, 0.1, 0.05)");
    layer_fd(kc_relu_layer(-1, 0.2f, 0), "ReLU(negative_slope=0.2)");
    layer_fd(kc_leaky_relu(0.3f), "LeakyReLU");
    layer_fd(kc_elu_layer(0.7f), "ELU(0.7)");
    layer_fd(kc_prelu(NULL), "PReLU");
    layer_fd(kc_prelu(&(kc_prelu_opts){.shared_axes = {1}}), "PReLU(shared_axes=[1])");
    layer_fd(kc_prelu(&(kc_prelu_opts){.shared_axes = {2}}), "PReLU(shared_axes=[2])");
    layer_fd(kc_softmax_axis(1), "Softmax(axis=1)");
    layer_fd(kc_softmax_axis(-1), "Softmax(axis=-1)");
}

/* ---- known values and shapes --------------------------------------------------------------- */

static void run1(kc_layer *layer, kc_shape in, const float *x, int64_t n, float *out) {
    kc_model *m = kc_sequential(in);
    KC_CHECK(kc_add(m, layer));
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(NULL), 0));
    int64_t p = kc_count_params(m);
    if (p) { /* PReLU: alpha = 0.25 throughout */
        float w[64];
        for (int64_t i = 0; i < p; i++) w[i] = 0.25f;
        KC_CHECK(kc_set_weights(m, w, p));
    }
    KC_CHECK(kc_predict(m, x, 1, out));
    (void)n;
    kc_model_free(m);
}

Test(activation_layers, values) {
    float x[4] = {-2.0f, -0.5f, 0.3f, 3.0f}, y[4];
    run1(kc_relu_layer(1.0f, 0.1f, 0.2f), kc_shape1(4), x, 4, y);
    float relu_want[4] = {0.1f * (-2.0f - 0.2f), 0.1f * (-0.5f - 0.2f), 0.3f, 1.0f};
    for (int i = 0; i < 4; i++) cr_expect(close_to(y[i], relu_want[i]), "ReLU %d: %g", i, y[i]);
    run1(kc_leaky_relu(0.3f), kc_shape1(4), x, 4, y);
    cr_expect(close_to(y[0], -0.6f) && y[3] == 3.0f);
    run1(kc_elu_layer(0.5f), kc_shape1(4), x, 4, y);
    cr_expect(close_to(y[0], 0.5f * expm1f(-2.0f)) && y[2] == 0.3f);
    run1(kc_prelu(NULL), kc_shape1(4), x, 4, y);
    cr_expect(close_to(y[0], -0.5f) && y[3] == 3.0f);
    /* Softmax over axis 1 of (2, 2): columns sum to 1 */
    run1(kc_softmax_axis(1), kc_shape2(2, 2), x, 4, y);
    cr_expect(close_to(y[0] + y[2], 1.0f) && close_to(y[1] + y[3], 1.0f));
    cr_expect(close_to(y[0], 1.0f / (1.0f + expf(0.3f + 2.0f))));
}

Test(activation_layers, prelu_shape_and_errors) {
    kc_model *m = kc_sequential(kc_shape3(4, 5, 3));
    KC_CHECK(kc_add(m, kc_prelu(&(kc_prelu_opts){.shared_axes = {1, 2}})));
    cr_assert_eq(kc_count_params(m), 3);
    kc_model_free(m);
    kc_layer *bad[] = {kc_prelu(&(kc_prelu_opts){.shared_axes = {2}}), kc_softmax_axis(3),
                       kc_relu_layer(-1, -0.5f, 0)};
    const char *says[] = {"shared_axes", "axis 3", "negative_slope"};
    for (int i = 0; i < 3; i++) {
        m = kc_sequential(kc_shape1(4));
        KC_EXPECT_ERR(kc_add(m, bad[i]), KC_EINVAL, says[i]);
        kc_model_free(m);
    }
}

/* ---- configs ----------------------------------------------------------------------------- */

static char *json_of(kc_model *m) {
    char *j = NULL;
    KC_CHECK(kc_model_to_json(m, &j));
    return j;
}

/* to_json -> from_json -> to_json gives the same text and the same predictions */
static void round_trip(kc_model *m, const char *what) {
    char *j1 = json_of(m);
    kc_model *back = NULL;
    KC_CHECK(kc_model_from_json(j1, &back));
    char *j2 = json_of(back);
    cr_expect_str_eq(j2, j1, "%s", what);
    int64_t n = kc_count_params(m);
    cr_assert_eq(kc_count_params(back), n, "%s", what);
    float w[MAX_W];
    KC_CHECK(kc_get_weights(m, w, n));
    KC_CHECK(kc_set_weights(back, w, n));
    int64_t in = kc_shape_size(kc_input_shape(m)), out = kc_shape_size(kc_output_shape(m));
    float x[2 * 64], a[2 * 64], b[2 * 64];
    fill(x, 2 * in, 3u, 2.0f);
    KC_CHECK(kc_predict(m, x, 2, a));
    KC_CHECK(kc_predict(back, x, 2, b));
    for (int64_t i = 0; i < 2 * out; i++) cr_expect(a[i] == b[i], "%s: output %lld", what, (long long)i);
    free(j1);
    free(j2);
    kc_model_free(back);
}

Test(activation_config, round_trips) {
    for (int a = 0; a < KC_ACT_COUNT; a++) {
        kc_model *m = model(kc_shape1(4), kc_dense(6, (kc_act)a), kc_activation((kc_act)a),
                            kc_dense(3, KC_SOFTMAX), NULL);
        char *j = json_of(m);
        char want[64];
        snprintf(want, sizeof want, "\"activation\":\"%s\"", kc_act_name((kc_act)a));
        cr_expect(strstr(j, want), "%s not in %s", want, j);
        free(j);
        round_trip(m, kc_act_name((kc_act)a));
        kc_model_free(m);
    }
    kc_model *m = model(kc_shape1(5), kc_dense(12, KC_LINEAR), kc_reshape(kc_shape2(3, 4)),
                        kc_relu_layer(2.5f, 0.05f, 0.1f), kc_leaky_relu(0.1f),
                        kc_prelu(&(kc_prelu_opts){.shared_axes = {1},
                                                  .alpha_initializer =
                                                      kc_init_constant(0.25)}),
                        kc_elu_layer(0.7f), kc_softmax_axis(1), kc_relu_layer(-1, 0, 0),
                        kc_flatten(), kc_dense(3, KC_SOFTMAX), NULL);
    round_trip(m, "activation layers");
    char *j = json_of(m);
    cr_expect(strstr(j, "\"max_value\":2.5"), "%s", j);
    cr_expect(strstr(j, "\"shared_axes\":[1]"), "%s", j);
    cr_expect(strstr(j, "\"class_name\":\"Constant\""), "%s", j);
    free(j);
    kc_model_free(m);
}

/* json with the first occurrence of from replaced by to */
static char *replaced(const char *json, const char *from, const char *to) {
    const char *at = strstr(json, from);
    cr_assert_not_null(at, "%s not in %s", from, json);
    size_t n = strlen(json) + strlen(to) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from));
    return out;
}

Test(activation_config, keras_forms_and_refusals) {
    kc_model *m = model(kc_shape1(4), kc_dense(6, KC_GELU), kc_leaky_relu(0.1f),
                        kc_dense(3, KC_SOFTMAX), NULL);
    char *j = json_of(m);
    /* Keras 3's serialized function */
    char *k3 = replaced(j, "\"activation\":\"gelu\"",
                        "\"activation\":{\"module\":\"keras.activations\",\"class_name\":"
                        "\"function\",\"config\":\"gelu\",\"registered_name\":\"gelu\"}");
    kc_model *back = NULL;
    KC_CHECK(kc_model_from_json(k3, &back));
    char *j2 = json_of(back);
    cr_expect_str_eq(j2, j);
    free(j2);
    kc_model_free(back);
    /* tf.keras 2's LeakyReLU alpha, its swish */
    char *tf2 = replaced(j, "\"negative_slope\"", "\"alpha\"");
    char *tf2b = replaced(tf2, "\"activation\":\"gelu\"", "\"activation\":\"swish\"");
    KC_CHECK(kc_model_from_json(tf2b, &back));
    j2 = json_of(back);
    cr_expect(strstr(j2, "\"negative_slope\":0.1") && strstr(j2, "\"activation\":\"silu\""),
              "%s", j2);
    free(j2);
    kc_model_free(back);
    /* refused by name */
    const char *refused[] = {"glu", "threshold", "sparsemax", "no_such_act"};
    for (int i = 0; i < 4; i++) {
        char to[64];
        snprintf(to, sizeof to, "\"activation\":\"%s\"", refused[i]);
        char *bad = replaced(j, "\"activation\":\"gelu\"", to);
        back = NULL;
        KC_EXPECT_ERR(kc_model_from_json(bad, &back), KC_EFORMAT, refused[i]);
        cr_expect_null(back);
        free(bad);
    }
    char *bad = replaced(j, "\"negative_slope\":0.1", "\"negative_slope\":-1");
    KC_EXPECT_ERR(kc_model_from_json(bad, &back), KC_EFORMAT, "negative_slope");
    free(bad);
    free(k3);
    free(tf2);
    free(tf2b);
    free(j);
    kc_model_free(m);
}

/* ---- Keras's files ------------------------------------------------------------------------- */

static void keras_file(const char *file, const char *values) {
    kc_model *m = NULL;
    KC_CHECK(kc_load(file, &m));
    FILE *f = fopen(values, "r");
    cr_assert_not_null(f);
    char line[256];
    cr_assert_not_null(fgets(line, sizeof line, f));
    float x[7 * 5], y[7 * 4], out[7 * 4];
    cr_assert(read_floats(f, "x", x, 35) && read_floats(f, "y", y, 28));
    fclose(f);
    cr_assert_eq(kc_shape_size(kc_output_shape(m)), 4);
    KC_CHECK(kc_predict(m, x, 7, out));
    for (int i = 0; i < 28; i++)
        cr_expect(fabsf(out[i] - y[i]) <= 1e-5f * fabsf(y[i]) + 1e-6f,
                  "%s: output %d: kerac %.9g, Keras %.9g", file, i, (double)out[i],
                  (double)y[i]);
    kc_model_free(m);
}

Test(activation_files, keras3_keras) { keras_file(DIR "model.keras", DIR "model.txt"); }

Test(activation_files, tf2_h5) { keras_file(DIR "tf2.h5", DIR "tf2.txt"); }
