/* test_layers2.c: Conv2D's dilation_rate and use_bias=False, Conv2DTranspose, UpSampling2D
 * (nearest, bilinear), ZeroPadding2D, Cropping2D, GlobalMaxPooling2D, keepdims on the global
 * poolings, Identity:
 *   - against Keras 3 (tests/gen_keras_layers2_fixtures.py, fixtures/keras_layers2/): forward
 *     output, loss, input gradient and weight gradients of each layer, the model read from
 *     Keras's own to_json;
 *   - finite-difference checks of weight gradients and (through a Conv2D in front) of input
 *     gradients;
 *   - known values, Keras's output shapes and parameter counts, errors;
 *   - saving and loading (.keras, .h5, JSON), tf.keras 2's config forms, and the options
 *     kerac refuses. */
#include <stdarg.h>

#include "testutil.h"
#include "fixture.h"
#include "ops/ops.h" /* kc_gemm_backend */

#define MAX_W 4096
#define FIXTURE_DIR "tests/fixtures/keras_layers2/"

/* ---- helpers ------------------------------------------------------------------------------- */

static void fill(float *out, int64_t n, uint32_t seed, float scale) {
    uint32_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        out[i] = scale * ((float)(s >> 8) / 8388608.0f - 1.0f);
    }
}

/* Sequential(input, layers..., NULL), not compiled */
static kc_model *chain(kc_shape input, ...) {
    kc_model *m = kc_sequential(input);
    cr_assert_not_null(m);
    va_list ap;
    va_start(ap, input);
    for (kc_layer *l; (l = va_arg(ap, kc_layer *)) != NULL;) KC_CHECK(kc_add(m, l));
    va_end(ap);
    return m;
}

static int64_t out_size(const kc_model *m) { return kc_shape_size(kc_output_shape(m)); }

static void expect_shape(const kc_model *m, int rank, int d0, int d1, int d2) {
    kc_shape s = kc_output_shape(m);
    char buf[64];
    cr_expect(s.rank == rank && s.dims[0] == d0 && (rank < 2 || s.dims[1] == d1) &&
                  (rank < 3 || s.dims[2] == d2),
              "output shape %s, want rank %d (%d, %d, %d)", kc_shape_str(s, buf, sizeof buf),
              rank, d0, d1, d2);
}

/* ---- Keras 3 fixtures ------------------------------------------------------------------------ */

static void load_fixture(const char *name, fixture *fx) {
    char path[256];
    snprintf(path, sizeof path, FIXTURE_DIR "%s.txt", name);
    tu_fixture_load(path, fx);
}
#define find tu_fixture_find
#define get tu_fixture_get
#define free_fixture tu_fixture_free
#define read_text tu_read_text

/* Within 1e-5 of Keras's value, relative to the larger of |value| and 1e-2 of the tensor's
 * largest magnitude (values near 0 in a tensor of O(1) values carry O(1e-8) of rounding). */
static void expect_close(const char *what, const float *got, const float *want, long n) {
    double largest = 0.0;
    for (long i = 0; i < n; i++) largest = fmax(largest, fabs(want[i]));
    for (long i = 0; i < n; i++)
        cr_expect(fabs((double)got[i] - want[i]) <= 1e-5 * fmax(fabs(want[i]), 1e-2 * largest),
                  "%s[%ld]: kerac %.9g, keras %.9g", what, i, (double)got[i], (double)want[i]);
}

/* the layer of each case of gen_keras_layers2_fixtures.py's CASES, and its input shape */
#define KS(h, w) .kernel_size = {h, w}
#define ST(h, w) .strides = {h, w}
static kc_layer *case_layer(const char *name, kc_shape *in) {
    if (!strcmp(name, "conv2d_dilated_same")) {
        *in = kc_shape3(5, 5, 2);
        return kc_conv2d_ex(3, &(kc_conv2d_opts){KS(3, 3), .dilation_rate = {2},
                                                 .padding = KC_SAME, .activation = KC_TANH});
    }
    if (!strcmp(name, "conv2d_dilated_valid_nobias")) {
        *in = kc_shape3(6, 5, 2);
        return kc_conv2d_ex(2, &(kc_conv2d_opts){KS(2, 3), .dilation_rate = {2, 1},
                                                 .use_bias = KC_ZERO});
    }
    if (!strcmp(name, "conv2d_nobias_strided")) {
        *in = kc_shape3(6, 6, 2);
        return kc_conv2d_ex(3, &(kc_conv2d_opts){KS(3, 3), ST(2, 2), KC_SAME, KC_SIGMOID,
                                                 .use_bias = KC_ZERO});
    }
    if (!strcmp(name, "conv2d_transpose_valid_s2")) {
        *in = kc_shape3(2, 2, 2);
        return kc_conv2d_transpose(3, &(kc_conv2d_opts){KS(3, 3), ST(2, 2)});
    }
    if (!strcmp(name, "conv2d_transpose_same_s2")) {
        *in = kc_shape3(3, 4, 2);
        return kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(3, 2), ST(2, 2), KC_SAME, KC_SIGMOID});
    }
    if (!strcmp(name, "conv2d_transpose_same_outpad")) {
        *in = kc_shape3(3, 3, 2);
        return kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(3, 3), ST(2, 3), KC_SAME,
                                                        .output_padding = {1, 2}});
    }
    if (!strcmp(name, "conv2d_transpose_valid_s3_nobias")) {
        *in = kc_shape3(2, 3, 3);
        return kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(2, 2), ST(3, 3),
                                                        .activation = KC_TANH,
                                                        .use_bias = KC_ZERO});
    }
    if (!strcmp(name, "conv2d_transpose_valid_outpad")) {
        *in = kc_shape3(3, 2, 2);
        return kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(2, 3), ST(2, 2),
                                                        .output_padding = {1, KC_ZERO}});
    }
    if (!strcmp(name, "conv2d_transpose_same_k4_s1")) {
        *in = kc_shape3(4, 4, 1);
        return kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(4, 4), .padding = KC_SAME});
    }
    if (!strcmp(name, "up_sampling_nearest")) {
        *in = kc_shape3(3, 2, 2);
        return kc_up_sampling2d(&(kc_up_sampling2d_opts){.size = {2, 3}});
    }
    if (!strcmp(name, "up_sampling_bilinear")) {
        *in = kc_shape3(2, 3, 2);
        return kc_up_sampling2d(
            &(kc_up_sampling2d_opts){.size = {3, 2}, .interpolation = KC_BILINEAR});
    }
    if (!strcmp(name, "up_sampling_bilinear_4")) {
        *in = kc_shape3(2, 3, 1);
        return kc_up_sampling2d(&(kc_up_sampling2d_opts){.size = {4}, .interpolation = KC_BILINEAR});
    }
    if (!strcmp(name, "zero_padding")) {
        *in = kc_shape3(3, 3, 2);
        return kc_zero_padding2d(1, 2, 0, 3);
    }
    if (!strcmp(name, "cropping")) {
        *in = kc_shape3(4, 5, 2);
        return kc_cropping2d(1, 0, 2, 1);
    }
    if (!strcmp(name, "global_max_pooling")) {
        *in = kc_shape3(3, 4, 3);
        return kc_global_max_pooling2d();
    }
    if (!strcmp(name, "global_max_pooling_keepdims")) {
        *in = kc_shape3(2, 3, 2);
        return kc_global_max_pooling2d_ex(&(kc_global_pool2d_opts){.keepdims = 1});
    }
    if (!strcmp(name, "global_average_pooling_keepdims")) {
        *in = kc_shape3(2, 3, 2);
        return kc_global_average_pooling2d_ex(&(kc_global_pool2d_opts){.keepdims = 1});
    }
    if (!strcmp(name, "identity")) {
        *in = kc_shape3(2, 3, 2);
        return kc_identity();
    }
    cr_assert_fail("unknown case %s", name);
    return NULL;
}

/* Keras's output, loss, input gradient and weight gradients. The input gradient comes out of
 * kc_compute_gradients' weight gradients: the model is Input(batch) -> Dense(h * w * c) ->
 * Reshape -> the layer -> Flatten, fed the identity matrix, with the Dense kernel's rows set
 * to the images and a zero bias: the Dense outputs are the images, and its kernel's gradient
 * (row i: one-hot input i times the gradient of the Dense's output) is the images'
 * gradient. */
static void keras_case(const char *name) {
    fixture fx;
    load_fixture(name, &fx);
    kc_shape in;
    kc_layer *layer = case_layer(name, &in);
    const tensor *x = get(&fx, "x"), *y = get(&fx, "y"), *want_out = get(&fx, "output");
    const tensor *dx = get(&fx, "dx"), *w = find(&fx, "weights"), *g = find(&fx, "grads");
    int64_t pixels = kc_shape_size(in);
    int batch = (int)(x->count / pixels);
    cr_assert_eq(batch * pixels, x->count);
    kc_model *m = chain(kc_shape1(batch), kc_dense((int)pixels, KC_LINEAR), kc_reshape(in),
                        layer, kc_flatten(), NULL);
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(NULL), 0));
    int64_t lw = w ? w->count : 0, dense = batch * pixels + pixels;
    int64_t n = kc_count_params(m);
    cr_assert_eq(n, dense + lw, "%s: kerac's layer has %lld weights, keras's %lld", name,
                 (long long)(n - dense), (long long)lw);
    float *weights = calloc((size_t)n, sizeof(float)), *grads = malloc(sizeof(float) * (size_t)n);
    memcpy(weights, x->data, sizeof(float) * (size_t)x->count);
    if (w) memcpy(weights + dense, w->data, sizeof(float) * (size_t)lw);
    KC_CHECK(kc_set_weights(m, weights, n));
    float *eye = calloc((size_t)(batch * batch), sizeof(float));
    for (int i = 0; i < batch; i++) eye[i * batch + i] = 1.0f;
    cr_assert_eq(out_size(m) * batch, want_out->count, "%s: output size", name);
    float *out = malloc(sizeof(float) * (size_t)want_out->count);
    KC_CHECK(kc_predict(m, eye, batch, out));
    expect_close("output", out, want_out->data, want_out->count);
    double loss;
    KC_CHECK(kc_compute_gradients(m, eye, y->data, batch, 0, &loss, grads, n));
    float l = (float)loss;
    expect_close("loss", &l, get(&fx, "loss")->data, 1);
    expect_close("dx", grads, dx->data, dx->count);
    if (g) expect_close("grads", grads + dense, g->data, g->count);
    kc_model_free(m);

    /* the same layer from Keras's own JSON: Input -> layer -> Flatten */
    char path[256];
    snprintf(path, sizeof path, FIXTURE_DIR "%s.json", name);
    char *js = read_text(path);
    KC_CHECK(kc_model_from_json(js, &m));
    cr_assert_eq(kc_count_params(m), lw);
    if (w) KC_CHECK(kc_set_weights(m, w->data, lw));
    KC_CHECK(kc_predict(m, x->data, batch, out));
    expect_close("output (from Keras's JSON)", out, want_out->data, want_out->count);
    kc_model_free(m);
    free(js), free(weights), free(grads), free(eye), free(out);
    free_fixture(&fx);
}

#define KERAS_CASE(name) \
    Test(layers2_keras, name) { keras_case(#name); }
KERAS_CASE(conv2d_dilated_same)
KERAS_CASE(conv2d_dilated_valid_nobias)
KERAS_CASE(conv2d_nobias_strided)
KERAS_CASE(conv2d_transpose_valid_s2)
KERAS_CASE(conv2d_transpose_same_s2)
KERAS_CASE(conv2d_transpose_same_outpad)
KERAS_CASE(conv2d_transpose_valid_s3_nobias)
KERAS_CASE(conv2d_transpose_valid_outpad)
KERAS_CASE(conv2d_transpose_same_k4_s1)
KERAS_CASE(up_sampling_nearest)
KERAS_CASE(up_sampling_bilinear)
KERAS_CASE(up_sampling_bilinear_4)
KERAS_CASE(zero_padding)
KERAS_CASE(cropping)
KERAS_CASE(global_max_pooling)
KERAS_CASE(global_max_pooling_keepdims)
KERAS_CASE(global_average_pooling_keepdims)
KERAS_CASE(identity)

/* ---- finite differences -------------------------------------------------------------------- */

/* Sequential(input, layers..., NULL) compiled with categorical crossentropy, weights fixed in
 * [-0.5, 0.5) */
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

/* Every weight's gradient against (L(w + h) - L(w - h)) / 2h (as test_conv.c's fd_check: the
 * loss in float32, so a rounding of ~1e-7 / h). The layer under test sits after a Conv2D, so
 * the Conv2D's weight gradients check the tested layer's input gradient. */
static void fd_check(kc_model *m, int batch, uint32_t seed) {
    int64_t n = kc_count_params(m), x_size = kc_shape_size(kc_input_shape(m));
    int classes = kc_output_shape(m).dims[0];
    float w[MAX_W], g[MAX_W];
    KC_CHECK(kc_get_weights(m, w, n));
    float *y = calloc((size_t)(batch * classes), sizeof(float));
    for (int i = 0; i < batch; i++) y[i * classes + (3 * i + 1) % classes] = 1.0f;
    float *x = malloc(sizeof(float) * (size_t)(batch * x_size));
    fill(x, batch * x_size, seed, 1.0f);
    KC_CHECK(kc_compute_gradients(m, x, y, batch, 1, NULL, g, n));
    const double h = 1e-3;
    double largest = 0.0;
    int64_t pos = 0;
    for (int l = 0; l < kc_layer_count(m); l++) {
        double layer_largest = 0.0;
        int64_t count = kc_layer_param_count(m, l);
        for (int64_t i = pos; i < pos + count; i++) {
            float keep = w[i];
            double lp, lm;
            w[i] = keep + (float)h;
            KC_CHECK(kc_set_weights(m, w, n));
            KC_CHECK(kc_compute_gradients(m, x, y, batch, 1, &lp, NULL, 0));
            w[i] = keep - (float)h;
            KC_CHECK(kc_set_weights(m, w, n));
            KC_CHECK(kc_compute_gradients(m, x, y, batch, 1, &lm, NULL, 0));
            w[i] = keep;
            double step = (double)(keep + (float)h) - (double)(keep - (float)h);
            double fd = (lp - lm) / step;
            layer_largest = fmax(layer_largest, fabs(g[i]));
            cr_expect(fabs(fd - g[i]) <= 1e-2 * fabs(fd) + 3e-4,
                      "layer %s weight %lld: analytic %.6g, finite difference %.6g",
                      kc_layer_name(m, l), (long long)(i - pos), (double)g[i], fd);
        }
        if (count)
            cr_expect(layer_largest > 1e-4, "layer %s: every gradient is below 1e-4",
                      kc_layer_name(m, l));
        largest = fmax(largest, layer_largest);
        pos += count;
    }
    KC_CHECK(kc_set_weights(m, w, n));
    cr_assert(largest > 1e-3, "every gradient is below 1e-3: the check tests nothing");
    free(x);
    free(y);
}

/* in front of the tested layer: a Conv2D(2, 2x2, tanh, same) on (h, w, 1) */
static kc_layer *front(void) {
    return kc_conv2d_ex(2, &(kc_conv2d_opts){KS(2, 2), .padding = KC_SAME, .activation = KC_TANH});
}
static kc_layer *head(void) { return kc_dense(3, KC_SOFTMAX); }

Test(layers2_grad, conv2d_dilated_same) {
    kc_model *m = model(kc_shape3(6, 5, 1), front(),
                        kc_conv2d_ex(3, &(kc_conv2d_opts){KS(3, 2), .dilation_rate = {2, 3},
                                                          .padding = KC_SAME,
                                                          .activation = KC_SIGMOID}),
                        kc_flatten(), head(), NULL);
    fd_check(m, 3, 1u);
    kc_model_free(m);
}

Test(layers2_grad, conv2d_dilated_valid_nobias) {
    kc_model *m = model(kc_shape3(7, 6, 1), front(),
                        kc_conv2d_ex(2, &(kc_conv2d_opts){KS(3, 3), .dilation_rate = {2},
                                                          .use_bias = KC_ZERO,
                                                          .activation = KC_TANH}),
                        kc_flatten(), head(), NULL);
    fd_check(m, 2, 2u);
    kc_model_free(m);
}

Test(layers2_grad, conv2d_nobias_strided) {
    kc_model *m = model(kc_shape3(6, 6, 1), front(),
                        kc_conv2d_ex(3, &(kc_conv2d_opts){KS(2, 2), ST(2, 2), KC_VALID, KC_TANH,
                                                          .use_bias = KC_ZERO}),
                        kc_flatten(), head(), NULL);
    fd_check(m, 3, 3u);
    kc_model_free(m);
}

Test(layers2_grad, conv2d_transpose_valid_s2) {
    kc_model *m = model(kc_shape3(3, 3, 1), front(),
                        kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(3, 3), ST(2, 2),
                                                                 .activation = KC_TANH}),
                        kc_flatten(), head(), NULL);
    fd_check(m, 3, 4u);
    kc_model_free(m);
}

Test(layers2_grad, conv2d_transpose_same_outpad) {
    kc_model *m = model(kc_shape3(3, 2, 1), front(),
                        kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(3, 2), ST(2, 3), KC_SAME,
                                                                 KC_SIGMOID,
                                                                 .output_padding = {1, 2}}),
                        kc_flatten(), head(), NULL);
    fd_check(m, 2, 5u);
    kc_model_free(m);
}

Test(layers2_grad, conv2d_transpose_nobias_stride_above_kernel) {
    kc_model *m = model(kc_shape3(2, 3, 1), front(),
                        kc_conv2d_transpose(3, &(kc_conv2d_opts){KS(2, 2), ST(3, 2),
                                                                 .activation = KC_TANH,
                                                                 .use_bias = KC_ZERO}),
                        kc_flatten(), head(), NULL);
    fd_check(m, 2, 6u);
    kc_model_free(m);
}

/* two in a row, the second last before the head: a transposed convolution's input gradient
 * feeding another's */
Test(layers2_grad, conv2d_transpose_chain_same_even_kernel) {
    kc_model *m = model(kc_shape3(2, 2, 1), front(),
                        kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(4, 4), .padding = KC_SAME,
                                                                 .activation = KC_TANH}),
                        kc_conv2d_transpose(1, &(kc_conv2d_opts){KS(2, 3), ST(2, 1), KC_SAME}),
                        kc_flatten(), head(), NULL);
    fd_check(m, 2, 7u);
    kc_model_free(m);
}

Test(layers2_grad, up_sampling_nearest) {
    kc_model *m = model(kc_shape3(3, 2, 1), front(),
                        kc_up_sampling2d(&(kc_up_sampling2d_opts){.size = {2, 3}}),
                        kc_conv2d(2, 2, KC_TANH), kc_flatten(), head(), NULL);
    fd_check(m, 2, 8u);
    kc_model_free(m);
}

Test(layers2_grad, up_sampling_bilinear) {
    kc_model *m = model(kc_shape3(3, 2, 1), front(),
                        kc_up_sampling2d(&(kc_up_sampling2d_opts){.size = {3, 2},
                                                                  .interpolation = KC_BILINEAR}),
                        kc_conv2d(2, 2, KC_TANH), kc_flatten(), head(), NULL);
    fd_check(m, 2, 9u);
    kc_model_free(m);
}

Test(layers2_grad, zero_padding) {
    kc_model *m = model(kc_shape3(3, 3, 1), front(), kc_zero_padding2d(1, 2, 0, 1),
                        kc_conv2d(2, 2, KC_TANH), kc_flatten(), head(), NULL);
    fd_check(m, 2, 10u);
    kc_model_free(m);
}

Test(layers2_grad, cropping) {
    kc_model *m = model(kc_shape3(5, 4, 1), front(), kc_cropping2d(1, 2, 0, 1),
                        kc_conv2d(2, 2, KC_TANH), kc_flatten(), head(), NULL);
    fd_check(m, 2, 11u);
    kc_model_free(m);
}

Test(layers2_grad, global_max_pooling) {
    kc_model *m = model(kc_shape3(4, 3, 1), front(), kc_global_max_pooling2d(), head(), NULL);
    fd_check(m, 3, 12u);
    kc_model_free(m);
}

Test(layers2_grad, global_pooling_keepdims) {
    kc_model *m = model(kc_shape3(4, 3, 1), front(),
                        kc_global_max_pooling2d_ex(&(kc_global_pool2d_opts){.keepdims = 1}),
                        kc_conv2d(3, 1, KC_TANH),
                        kc_global_average_pooling2d_ex(&(kc_global_pool2d_opts){.keepdims = 1}),
                        kc_flatten(), head(), NULL);
    fd_check(m, 3, 13u);
    kc_model_free(m);
}

Test(layers2_grad, identity) {
    kc_model *m = model(kc_shape3(3, 3, 1), front(), kc_identity(), kc_flatten(), kc_identity(),
                        head(), NULL);
    fd_check(m, 2, 14u);
    kc_model_free(m);
}

/* ---- known values ---------------------------------------------------------------------------- */

static void predict_one(kc_model *m, const float *x, float *out) {
    KC_CHECK(kc_predict(m, x, 1, out));
}

static void expect_values(const float *got, const float *want, int n) {
    for (int i = 0; i < n; i++)
        cr_expect(fabsf(got[i] - want[i]) <= 1e-6f * (1.0f + fabsf(want[i])),
                  "value %d: %.9g, want %.9g", i, (double)got[i], (double)want[i]);
}

Test(layers2_values, zero_padding_and_cropping) {
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, out[32];
    kc_model *m = chain(kc_shape3(2, 2, 1), kc_zero_padding2d(1, 0, 0, 1), NULL);
    expect_shape(m, 3, 3, 3, 1);
    predict_one(m, x, out);
    expect_values(out, (float[]){0, 0, 0, 1, 2, 0, 3, 4, 0}, 9);
    kc_model_free(m);
    m = chain(kc_shape3(3, 3, 1), kc_cropping2d(1, 0, 0, 1), NULL);
    expect_shape(m, 3, 2, 2, 1);
    predict_one(m, x, out);
    expect_values(out, (float[]){4, 5, 7, 8}, 4);
    kc_model_free(m);
    /* two channels stay together */
    m = chain(kc_shape3(1, 2, 2), kc_zero_padding2d(0, 0, 1, 0), kc_identity(), NULL);
    predict_one(m, (float[]){1, 2, 3, 4}, out);
    expect_values(out, (float[]){0, 0, 1, 2, 3, 4}, 6);
    kc_model_free(m);
}

Test(layers2_values, up_sampling) {
    float out[64];
    kc_model *m = chain(kc_shape3(2, 2, 1), kc_up_sampling2d(NULL), NULL);
    expect_shape(m, 3, 4, 4, 1);
    predict_one(m, (float[]){1, 2, 3, 4}, out);
    expect_values(out, (float[]){1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, 16);
    kc_model_free(m);
    /* bilinear, half-pixel centres: output x samples (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75,
     * 1.25, clamped at the edges */
    m = chain(kc_shape3(1, 2, 1),
              kc_up_sampling2d(&(kc_up_sampling2d_opts){.size = {1, 2},
                                                        .interpolation = KC_BILINEAR}),
              NULL);
    predict_one(m, (float[]){0, 1}, out);
    expect_values(out, (float[]){0, 0.25f, 0.75f, 1}, 4);
    kc_model_free(m);
    /* size 3: samples -1/3, 0, 1/3, 2/3, 1, 4/3 */
    m = chain(kc_shape3(1, 2, 1),
              kc_up_sampling2d(&(kc_up_sampling2d_opts){.size = {1, 3},
                                                        .interpolation = KC_BILINEAR}),
              NULL);
    predict_one(m, (float[]){3, 6}, out);
    expect_values(out, (float[]){3, 3, 4, 5, 6, 6}, 6);
    kc_model_free(m);
}

Test(layers2_values, conv2d_transpose) {
    float out[64];
    /* one pixel, stride 1, valid: the kernel itself, (ky, kx) at output (ky, kx) */
    kc_model *m = chain(kc_shape3(1, 1, 1),
                        kc_conv2d_transpose(1, &(kc_conv2d_opts){KS(2, 2)}), NULL);
    expect_shape(m, 3, 2, 2, 1);
    KC_CHECK(kc_set_weights(m, (float[]){1, 2, 3, 4, 0.5f}, 5));
    predict_one(m, (float[]){2}, out);
    expect_values(out, (float[]){2.5f, 4.5f, 6.5f, 8.5f}, 4);
    kc_model_free(m);
    /* stride 2 with a 2x2 kernel of ones: each pixel becomes a 2x2 block */
    m = chain(kc_shape3(2, 2, 1),
              kc_conv2d_transpose(1, &(kc_conv2d_opts){KS(2, 2), ST(2, 2), .use_bias = KC_ZERO}),
              NULL);
    cr_expect_eq(kc_count_params(m), 4);
    KC_CHECK(kc_set_weights(m, (float[]){1, 1, 1, 1}, 4));
    predict_one(m, (float[]){1, 2, 3, 4}, out);
    expect_values(out, (float[]){1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, 16);
    kc_model_free(m);
    /* "same", 3x3, stride 1: the full 4x4 output cropped by one on each side; a single 1 at
     * (0, 0) gives kernel (ky, kx) = 10 ky + kx at output (ky - 1, kx - 1) */
    m = chain(kc_shape3(2, 2, 1),
              kc_conv2d_transpose(1, &(kc_conv2d_opts){KS(3, 3), .padding = KC_SAME,
                                                       .use_bias = KC_ZERO}),
              NULL);
    expect_shape(m, 3, 2, 2, 1);
    KC_CHECK(kc_set_weights(m, (float[]){0, 1, 2, 10, 11, 12, 20, 21, 22}, 9));
    predict_one(m, (float[]){1, 0, 0, 0}, out);
    expect_values(out, (float[]){11, 12, 21, 22}, 4);
    kc_model_free(m);
    /* channels: kernel (1, 1, filters 2, in 3), out[f] = sum_c in[c] W[f][c] */
    m = chain(kc_shape3(1, 1, 3),
              kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(1, 1), .use_bias = KC_ZERO}), NULL);
    KC_CHECK(kc_set_weights(m, (float[]){1, 2, 3, 4, 5, 6}, 6));
    predict_one(m, (float[]){1, 10, 100}, out);
    expect_values(out, (float[]){321, 654}, 2);
    kc_model_free(m);
}

Test(layers2_values, conv2d_dilated_and_without_bias) {
    float x[25], out[16];
    for (int i = 0; i < 25; i++) x[i] = (float)i;
    kc_model *m = chain(kc_shape3(5, 5, 1),
                        kc_conv2d_ex(1, &(kc_conv2d_opts){KS(2, 2), .dilation_rate = {2},
                                                          .use_bias = KC_ZERO}),
                        NULL);
    expect_shape(m, 3, 3, 3, 1);
    cr_expect_eq(kc_count_params(m), 4);
    KC_CHECK(kc_set_weights(m, (float[]){1, 1, 1, 1}, 4));
    predict_one(m, x, out);
    for (int y = 0; y < 3; y++)
        for (int c = 0; c < 3; c++) {
            float want = x[y * 5 + c] + x[y * 5 + c + 2] + x[(y + 2) * 5 + c] + x[(y + 2) * 5 + c + 2];
            cr_expect_eq(out[y * 3 + c], want, "(%d, %d): %g, want %g", y, c, (double)out[y * 3 + c],
                         (double)want);
        }
    kc_model_free(m);
    /* "same" with dilation 2 on a 3x3 kernel: the extent is 5, two zeros on each side */
    m = chain(kc_shape3(3, 3, 1),
              kc_conv2d_ex(1, &(kc_conv2d_opts){KS(3, 3), .dilation_rate = {2}, .padding = KC_SAME}),
              NULL);
    expect_shape(m, 3, 3, 3, 1);
    float w[10] = {0, 0, 0, 0, 1, 0, 0, 0, 2, 0.5f}; /* centre 1, bottom-right 2, bias 0.5 */
    KC_CHECK(kc_set_weights(m, w, 10));
    predict_one(m, x, out); /* x = 0..8 as a 3x3 image */
    /* centre reads (y, x), bottom-right (y + 2, x + 2): only output (0, 0) reaches x[8] */
    float want[9] = {0 + 16 + 0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f, 7.5f, 8.5f};
    expect_values(out, want, 9);
    kc_model_free(m);
}

Test(layers2_values, global_max_pooling_ties_share) {
    /* (2, 2, 2): channel 0 has a tie at 3 (positions 1, 2), channel 1 a single maximum */
    float x[8] = {1, 5, 3, -1, 3, 0, 2, 7}, out[2];
    kc_model *m = chain(kc_shape3(2, 2, 2), kc_global_max_pooling2d(), NULL);
    expect_shape(m, 1, 2, 0, 0);
    predict_one(m, x, out);
    expect_values(out, (float[]){3, 7}, 2);
    kc_model_free(m);
    /* the gradient: a Dense(8) from a one-hot input makes the image its kernel, whose gradient
     * is the pooling's input gradient; MSE against y = out - 1 gives d/d out = 2 / 2 = 1 per
     * channel */
    m = chain(kc_shape1(1), kc_dense(8, KC_LINEAR), kc_reshape(kc_shape3(2, 2, 2)),
              kc_global_max_pooling2d_ex(&(kc_global_pool2d_opts){.keepdims = 1}), kc_flatten(),
              NULL);
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(NULL), 0));
    float w[16] = {0}, g[16];
    memcpy(w, x, sizeof x);
    KC_CHECK(kc_set_weights(m, w, 16));
    float one = 1.0f, y[2] = {2, 6};
    KC_CHECK(kc_compute_gradients(m, &one, y, 1, 0, NULL, g, 16));
    expect_values(g, (float[]){0, 0, 0.5f, 0, 0.5f, 0, 0, 1}, 8);
    kc_model_free(m);
}

Test(layers2_values, identity_and_keepdims) {
    float out[4];
    kc_model *m = chain(kc_shape3(1, 2, 2), kc_identity(),
                        kc_global_average_pooling2d_ex(&(kc_global_pool2d_opts){.keepdims = 1}),
                        NULL);
    expect_shape(m, 3, 1, 1, 2);
    predict_one(m, (float[]){1, 2, 3, 6}, out);
    expect_values(out, (float[]){2, 4}, 2);
    kc_model_free(m);
}

/* ---- shapes and parameter counts as Keras 3 computes them ------------------------------------ */

typedef struct {
    kc_layer *layer;
    int h, w, c; /* Keras's output (channels last) */
    int64_t params;
} shape_case;

Test(layers2_shapes, as_keras) {
    /* on an input (5, 4, 3) (the transposed ones) or (9, 8, 3) (the dilated ones); the
     * expected values printed by Keras 3.15 */
    shape_case t[] = {
        {kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(3, 3), ST(2, 2)}), 11, 9, 2, 56},
        {kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(3, 3), ST(2, 2), KC_SAME}), 10, 8, 2, 56},
        {kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(2, 2), ST(3, 3)}), 15, 12, 2, 26},
        {kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(4, 4), ST(2, 2), KC_SAME}), 10, 8, 2, 98},
        {kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(3, 4), ST(2, 3), KC_SAME,
                                                  .output_padding = {1, 2}}),
         10, 11, 2, 74},
        {kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(3, 4), ST(2, 3),
                                                  .output_padding = {KC_ZERO, 2}}),
         11, 15, 2, 74},
        {kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(5, 5), .padding = KC_SAME,
                                                  .output_padding = {KC_ZERO}}),
         5, 4, 2, 152},
        {kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(2, 2), ST(2, 2), KC_SAME,
                                                  .output_padding = {KC_ZERO}}),
         8, 6, 2, 26},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        kc_model *m = chain(kc_shape3(5, 4, 3), t[i].layer, NULL);
        expect_shape(m, 3, t[i].h, t[i].w, t[i].c);
        cr_expect_eq(kc_count_params(m), t[i].params, "case %zu: %lld params", i,
                     (long long)kc_count_params(m));
        kc_model_free(m);
    }
    shape_case d[] = {
        {kc_conv2d_ex(2, &(kc_conv2d_opts){KS(3, 3), .dilation_rate = {2}}), 5, 4, 2, 56},
        {kc_conv2d_ex(2, &(kc_conv2d_opts){KS(3, 3), .dilation_rate = {3, 2}, .padding = KC_SAME}),
         9, 8, 2, 56},
        {kc_conv2d_ex(2, &(kc_conv2d_opts){KS(3, 3), .use_bias = KC_ZERO}), 7, 6, 2, 54},
    };
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) {
        kc_model *m = chain(kc_shape3(9, 8, 3), d[i].layer, NULL);
        expect_shape(m, 3, d[i].h, d[i].w, d[i].c);
        cr_expect_eq(kc_count_params(m), d[i].params, "dilated case %zu", i);
        kc_model_free(m);
    }
    kc_model *m = chain(kc_shape3(3, 5, 2),
                        kc_up_sampling2d(&(kc_up_sampling2d_opts){.size = {3}}), NULL);
    expect_shape(m, 3, 9, 15, 2);
    kc_model_free(m);
    m = chain(kc_shape3(3, 5, 2), kc_global_max_pooling2d(), NULL);
    expect_shape(m, 1, 2, 0, 0);
    kc_model_free(m);
}

/* ---- errors ---------------------------------------------------------------------------------- */

static void expect_add_error(kc_shape in, kc_layer *layer, const char *needle) {
    kc_model *m = kc_sequential(in);
    KC_EXPECT_ERR(kc_add(m, layer), KC_EINVAL, needle);
    kc_model_free(m);
}

Test(layers2_errors, bad_layers) {
    kc_shape img = kc_shape3(4, 4, 2);
    expect_add_error(img, kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(3, 3), .dilation_rate = {2}}),
                     "layer conv2d_transpose (Conv2DTranspose): dilation_rate (2, 2) is not "
                     "supported by kerac (1 only)");
    expect_add_error(img,
                     kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(3, 3), ST(2, 2),
                                                              .output_padding = {2}}),
                     "output_padding (2, 2) must be strictly less than strides (2, 2)");
    expect_add_error(img,
                     kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(3, 3), ST(2, 2),
                                                              .output_padding = {-3}}),
                     "output_padding (-3, -3) must not be negative");
    expect_add_error(kc_shape1(8), kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(3, 3)}),
                     "(Conv2DTranspose) needs an input of shape (height, width, channels), got (8)");
    expect_add_error(img, kc_conv2d_transpose(0, &(kc_conv2d_opts){KS(3, 3)}),
                     "filters must be positive");
    expect_add_error(kc_shape3(1, 1, 1),
                     kc_conv2d_transpose(1, &(kc_conv2d_opts){KS(2, 2), .padding = KC_SAME,
                                                              .output_padding = {KC_ZERO}}),
                     "would be empty (0 x 0)");
    expect_add_error(img, kc_conv2d_ex(2, &(kc_conv2d_opts){KS(3, 3), ST(2, 2), .dilation_rate = {2}}),
                     "strides (2, 2) with dilation_rate (2, 2)");
    expect_add_error(img, kc_conv2d_ex(2, &(kc_conv2d_opts){KS(3, 3), .dilation_rate = {2}}),
                     "a 5x5 kernel (dilated) does not fit the input (4, 4, 2)");
    expect_add_error(img, kc_conv2d_ex(2, &(kc_conv2d_opts){KS(3, 3), .dilation_rate = {-1}}),
                     "dilation_rate must be positive, got (-1, -1)");
    expect_add_error(img, kc_cropping2d(2, 2, 0, 0),
                     "layer cropping2d (Cropping2D): cropping ((2, 2), (0, 0)) leaves nothing of "
                     "the input (4, 4, 2)");
    expect_add_error(img, kc_cropping2d(0, 0, 1, -1), "must not be negative");
    expect_add_error(img, kc_zero_padding2d(-1, 0, 0, 0),
                     "layer zero_padding2d (ZeroPadding2D): padding ((-1, 0), (0, 0)) must not be "
                     "negative");
    expect_add_error(kc_shape2(4, 4), kc_zero_padding2d(1, 1, 1, 1),
                     "(ZeroPadding2D) needs an input of shape (height, width, channels), got (4, 4)");
    expect_add_error(img, kc_up_sampling2d(&(kc_up_sampling2d_opts){.size = {-2}}),
                     "(UpSampling2D): size must be positive, got (-2, -2)");
    expect_add_error(img, kc_up_sampling2d(&(kc_up_sampling2d_opts){.interpolation = 7}),
                     "interpolation must be KC_NEAREST or KC_BILINEAR, got 7");
    expect_add_error(kc_shape1(4), kc_global_max_pooling2d(),
                     "layer global_max_pooling2d (GlobalMaxPooling2D) needs an input of shape");
    expect_add_error(img, kc_global_average_pooling2d_ex(&(kc_global_pool2d_opts){.keepdims = 2}),
                     "keepdims must be 0 or 1, got 2");
}

/* ---- saving and loading ----------------------------------------------------------------------- */

/* every new layer and option in one convnet */
static kc_model *all_layers_model(void) {
    kc_model *m = chain(
        kc_shape3(5, 4, 2), kc_zero_padding2d(1, 0, 2, 1),
        kc_conv2d_ex(3, &(kc_conv2d_opts){KS(2, 3), .dilation_rate = {2, 1}, .use_bias = KC_ZERO,
                                          .activation = KC_TANH}),
        kc_conv2d_transpose(2, &(kc_conv2d_opts){KS(3, 2), ST(2, 3), KC_SAME, KC_RELU,
                                                 .output_padding = {1, KC_ZERO}}),
        kc_up_sampling2d(&(kc_up_sampling2d_opts){.size = {1, 2}, .interpolation = KC_BILINEAR}),
        kc_conv2d_transpose(3, &(kc_conv2d_opts){KS(2, 2), .use_bias = KC_ZERO}),
        kc_up_sampling2d(NULL), kc_cropping2d(2, 1, 0, 3), kc_identity(),
        kc_global_average_pooling2d_ex(&(kc_global_pool2d_opts){.keepdims = 1}),
        kc_global_max_pooling2d_ex(&(kc_global_pool2d_opts){.keepdims = 1}),
        kc_conv2d(4, 1, KC_LINEAR), kc_global_max_pooling2d(), kc_dense(3, KC_SOFTMAX), NULL);
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY));
    return m;
}

static void round_trip(const char *ext) {
    kc_set_random_seed(7);
    kc_model *m = all_layers_model();
    enum { N = 6 };
    int64_t in = kc_shape_size(kc_input_shape(m));
    float x[N * 40], y[N * 3] = {0}, a[N * 3], b[N * 3];
    cr_assert(in * N <= (int64_t)(sizeof x / sizeof *x));
    fill(x, N * in, 99u, 1.0f);
    for (int i = 0; i < N; i++) y[i * 3 + i % 3] = 1.0f;
    for (int s = 0; s < 3; s++) KC_CHECK(kc_train_on_batch(m, x, y, N, NULL));
    KC_CHECK(kc_predict(m, x, N, a));
    char path[128];
    snprintf(path, sizeof path, "%s/all_layers.%s", tu_tmpdir(), ext);
    KC_CHECK(kc_save(m, path));
    kc_model *l = NULL;
    KC_CHECK(kc_load(path, &l));
    cr_assert_eq(kc_layer_count(l), kc_layer_count(m));
    for (int i = 0; i < kc_layer_count(m); i++) {
        cr_expect_str_eq(kc_layer_name(l, i), kc_layer_name(m, i));
        cr_expect_eq(kc_layer_param_count(l, i), kc_layer_param_count(m, i), "layer %d", i);
    }
    KC_CHECK(kc_predict(l, x, N, b));
    for (int i = 0; i < N * 3; i++)
        cr_expect_eq(a[i], b[i], "%s: prediction %d: %.9g before saving, %.9g after", ext, i,
                     (double)a[i], (double)b[i]);
    /* the optimizer state came back too: one more step agrees bit for bit */
    KC_CHECK(kc_train_on_batch(m, x, y, N, NULL));
    KC_CHECK(kc_train_on_batch(l, x, y, N, NULL));
    KC_CHECK(kc_predict(m, x, N, a));
    KC_CHECK(kc_predict(l, x, N, b));
    for (int i = 0; i < N * 3; i++) cr_expect_eq(a[i], b[i], "%s: after a step: %d", ext, i);
    kc_model_free(m);
    kc_model_free(l);
}

Test(layers2_saving, keras_round_trip) { round_trip("keras"); }
Test(layers2_saving, h5_round_trip) { round_trip("h5"); }

Test(layers2_saving, json_fields_as_keras) {
    kc_model *m = all_layers_model();
    char *js;
    KC_CHECK(kc_model_to_json(m, &js));
    const char *want[] = {
        "\"class_name\":\"ZeroPadding2D\"", "\"padding\":[[1,0],[2,1]]",
        "\"dilation_rate\":[2,1]", "\"use_bias\":false",
        "\"class_name\":\"Conv2DTranspose\"", "\"output_padding\":[1,0]",
        "\"output_padding\":null", "\"class_name\":\"UpSampling2D\"", "\"size\":[1,2]",
        "\"interpolation\":\"bilinear\"", "\"interpolation\":\"nearest\"",
        "\"class_name\":\"Cropping2D\"", "\"cropping\":[[2,1],[0,3]]",
        "\"class_name\":\"Identity\"", "\"class_name\":\"GlobalMaxPooling2D\"",
        "\"keepdims\":true", "\"keepdims\":false"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_expect_not_null(strstr(js, want[i]), "the JSON lacks %s", want[i]);
    kc_model *back;
    KC_CHECK(kc_model_from_json(js, &back));
    cr_expect_eq(kc_count_params(back), kc_count_params(m));
    kc_model_free(back);
    free(js);
    kc_model_free(m);
}

/* one layer after Input(shape), as tf.keras 2 writes it (batch_input_shape on the layer) */
static kc_status from_layer_json(const char *cls, const char *fields, int h, int w, int c,
                                 kc_model **out) {
    char js[2048];
    snprintf(js, sizeof js,
             "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", \"layers\": ["
             "{\"class_name\": \"%s\", \"config\": {\"name\": \"t\", \"trainable\": true, "
             "\"batch_input_shape\": [null, %d, %d, %d], \"dtype\": \"float32\"%s%s}}]}}",
             cls, h, w, c, *fields ? ", " : "", fields);
    *out = NULL;
    return kc_model_from_json(js, out);
}

static void expect_loads(const char *cls, const char *fields, int oh, int ow, int oc,
                         int64_t params) {
    kc_model *m;
    kc_status st = from_layer_json(cls, fields, 6, 5, 2, &m);
    cr_assert_eq(st, KC_OK, "%s {%s}: %s", cls, fields, kc_last_error());
    kc_shape s = kc_output_shape(m);
    cr_expect(s.rank == 3 && s.dims[0] == oh && s.dims[1] == ow && s.dims[2] == oc,
              "%s {%s}: output (%d, %d, %d)", cls, fields, s.dims[0], s.dims[1], s.dims[2]);
    cr_expect_eq(kc_count_params(m), params, "%s {%s}", cls, fields);
    kc_model_free(m);
}

static void expect_refused(const char *cls, const char *fields, const char *needle) {
    kc_model *m;
    KC_EXPECT_ERR(from_layer_json(cls, fields, 6, 5, 2, &m), KC_EFORMAT, needle);
    cr_expect_null(m);
}

Test(layers2_saving, tf_keras2_forms) {
    /* on (6, 5, 2) */
    expect_loads("ZeroPadding2D", "\"padding\": 1", 8, 7, 2, 0);
    expect_loads("ZeroPadding2D", "\"padding\": [1, 2]", 8, 9, 2, 0);
    expect_loads("ZeroPadding2D", "\"padding\": [[1, 0], [0, 3]]", 7, 8, 2, 0);
    expect_loads("ZeroPadding2D", "\"padding\": [[1, 0], 2]", 7, 9, 2, 0);
    expect_loads("ZeroPadding2D", "\"data_format\": \"channels_last\"", 8, 7, 2, 0);
    expect_loads("Cropping2D", "\"cropping\": 1", 4, 3, 2, 0);
    expect_loads("Cropping2D", "\"cropping\": [[2, 1], [0, 1]]", 3, 4, 2, 0);
    expect_loads("Cropping2D", "", 6, 5, 2, 0);
    expect_loads("UpSampling2D", "\"size\": 2, \"interpolation\": \"nearest\"", 12, 10, 2, 0);
    expect_loads("UpSampling2D", "\"size\": [1, 3], \"interpolation\": \"Bilinear\"", 6, 15, 2, 0);
    expect_loads("UpSampling2D", "", 12, 10, 2, 0);
    expect_loads("Conv2DTranspose",
                 "\"filters\": 3, \"kernel_size\": 3, \"strides\": 2, \"padding\": \"same\", "
                 "\"output_padding\": null, \"dilation_rate\": 1, \"use_bias\": true",
                 12, 10, 3, 3 * 3 * 3 * 2 + 3);
    expect_loads("Conv2DTranspose",
                 "\"filters\": 3, \"kernel_size\": [2, 3], \"strides\": [2, 2], "
                 "\"output_padding\": 1, \"use_bias\": false, \"activation\": \"relu\"",
                 13, 12, 3, 2 * 3 * 3 * 2);
    expect_loads("Conv2D",
                 "\"filters\": 4, \"kernel_size\": [3, 3], \"dilation_rate\": [2, 2], "
                 "\"use_bias\": false",
                 2, 1, 4, 3 * 3 * 2 * 4);
    kc_model *m;
    KC_CHECK(from_layer_json("GlobalMaxPooling2D", "\"data_format\": \"channels_last\"", 6, 5, 2,
                             &m));
    cr_expect_eq(kc_output_shape(m).rank, 1);
    kc_model_free(m);
    KC_CHECK(from_layer_json("GlobalMaxPooling2D", "\"keepdims\": true", 6, 5, 2, &m));
    cr_expect_eq(kc_output_shape(m).rank, 3);
    kc_model_free(m);
    KC_CHECK(from_layer_json("Identity", "", 6, 5, 2, &m));
    cr_expect_eq(kc_output_shape(m).dims[1], 5);
    kc_model_free(m);
}

Test(layers2_saving, refused_options) {
    const char *cf = "\"data_format\": \"channels_first\"";
    expect_refused("ZeroPadding2D", cf, "data_format 'channels_first' is not supported");
    expect_refused("Cropping2D", cf, "data_format 'channels_first' is not supported");
    expect_refused("UpSampling2D", cf, "data_format 'channels_first' is not supported");
    expect_refused("GlobalMaxPooling2D", cf, "data_format 'channels_first' is not supported");
    expect_refused("Conv2DTranspose", "\"filters\": 2, \"kernel_size\": 3, \"data_format\": "
                                      "\"channels_first\"",
                   "data_format 'channels_first' is not supported");
    expect_refused("UpSampling2D", "\"interpolation\": \"bicubic\"",
                   "layer 0 't': interpolation 'bicubic' is not supported (kerac has nearest, "
                   "bilinear)");
    expect_refused("UpSampling2D", "\"size\": [0, 2]", "size must hold positive whole numbers");
    expect_refused("ZeroPadding2D", "\"padding\": [1, 2, 3]", "padding must be an int, 2 ints");
    expect_refused("ZeroPadding2D", "\"padding\": -1", "padding must hold non-negative");
    expect_refused("Cropping2D", "\"cropping\": [[1, 2, 3], 1]",
                   "cropping entry 0 must be an int or a pair");
    expect_refused("Conv2DTranspose", "\"filters\": 2, \"kernel_size\": 3, \"dilation_rate\": 2",
                   "dilation_rate (2, 2) is not supported by kerac's Conv2DTranspose");
    expect_refused("Conv2DTranspose",
                   "\"filters\": 2, \"kernel_size\": 3, \"strides\": 2, \"output_padding\": [2, 1]",
                   "output_padding (2, 1) must be strictly less than strides (2, 2)");
    expect_refused("Conv2DTranspose", "\"filters\": 2, \"kernel_size\": 3, \"output_padding\": -1",
                   "output_padding must hold non-negative whole numbers");
    expect_refused("Conv2DTranspose", "\"filters\": 2", "kernel_size is missing");
    expect_refused("Conv2DTranspose",
                   "\"filters\": 2, \"kernel_size\": 3, \"kernel_regularizer\": \"l2\"",
                   "kernel_regularizer is not supported by kerac");
    expect_refused("Conv2DTranspose",
                   "\"filters\": 2, \"kernel_size\": 3, \"kernel_constraint\": \"max_norm\"",
                   "kernel_constraint is not supported by kerac");
    expect_refused("Conv2DTranspose", "\"filters\": 2, \"kernel_size\": 3, \"use_bias\": 0",
                   "use_bias is not true or false");
    expect_refused("Conv2D", "\"filters\": 2, \"kernel_size\": 3, \"strides\": 2, "
                             "\"dilation_rate\": 2",
                   "dilation_rate (2, 2) with strides (2, 2) is not supported");
    expect_refused("GlobalMaxPooling2D", "\"keepdims\": \"yes\"", "keepdims is not true or false");
    expect_refused("Conv3DTranspose", "", "unknown layer class 'Conv3DTranspose' (kerac has");
    /* a config that does not fit the input fails as kc_add does */
    kc_model *m;
    KC_EXPECT_ERR(from_layer_json("Cropping2D", "\"cropping\": [[3, 3], [0, 0]]", 6, 5, 2, &m),
                  KC_EINVAL, "leaves nothing of the input (6, 5, 2)");
}

/* ---- the engine's invariants with the new layers ---------------------------------------------- */

/* A sample's prediction does not depend on the batch it is in (more images than the weight
 * gradient's 16 groups, several images per unfolded chunk) */
Test(layers2_engine, predict_per_sample_and_big_batch) {
    kc_set_random_seed(3);
    kc_model *m = all_layers_model();
    enum { N = 45, IN = 40 };
    float *x = malloc(sizeof(float) * N * IN), out[N * 3], one[3];
    fill(x, N * IN, 17u, 1.0f);
    KC_CHECK(kc_predict(m, x, N, out));
    for (int i = 0; i < N; i += 11) {
        KC_CHECK(kc_predict(m, x + i * IN, 1, one));
        for (int j = 0; j < 3; j++)
            if (strcmp(kc_gemm_backend(), "openblas"))
                cr_expect_eq(one[j], out[i * 3 + j], "sample %d differs alone", i);
            else /* OpenBLAS's sums depend on the matrix size */
                cr_expect(fabsf(one[j] - out[i * 3 + j]) <= 1e-6f, "sample %d differs alone", i);
    }
    free(x);
    kc_model_free(m);
}

Test(layers2_engine, same_result_for_1_and_2_threads) {
    if (!strcmp(kc_gemm_backend(), "openblas"))
        cr_skip_test("OpenBLAS products depend on the thread count and the batch");
    enum { N = 37, IN = 40 };
    float *x = malloc(sizeof(float) * N * IN), y[N * 3] = {0};
    fill(x, N * IN, 5u, 1.0f);
    for (int i = 0; i < N; i++) y[i * 3 + (i * 2) % 3] = 1.0f;
    float *w[2];
    for (int t = 0; t < 2; t++) {
        kc_set_num_threads(t + 1);
        kc_set_random_seed(11);
        kc_model *m = all_layers_model();
        for (int step = 0; step < 3; step++) KC_CHECK(kc_train_on_batch(m, x, y, N, NULL));
        int64_t n = kc_count_params(m);
        w[t] = malloc(sizeof(float) * (size_t)n);
        KC_CHECK(kc_get_weights(m, w[t], n));
        if (t)
            cr_expect(memcmp(w[0], w[1], sizeof(float) * (size_t)n) == 0,
                      "weights after 3 steps differ between 1 and 2 threads");
        kc_model_free(m);
    }
    kc_set_num_threads(0);
    free(w[0]);
    free(w[1]);
    free(x);
}

/* In a Functional graph: a Conv2DTranspose shared by two calls (its weight gradients summed
 * over both), a residual Add, and the resizing layers after it. */
Test(layers2_grad, functional_shared_conv2d_transpose) {
    kc_layer *shared = kc_conv2d_transpose(3, &(kc_conv2d_opts){KS(2, 2), .padding = KC_SAME,
                                                                .activation = KC_TANH,
                                                                .use_bias = KC_ZERO});
    kc_tensor *in = kc_input(kc_shape3(3, 3, 2));
    kc_tensor *a = kc_call(front(), in);
    kc_tensor *a3 = kc_call(kc_conv2d_ex(3, &(kc_conv2d_opts){KS(1, 1), .activation = KC_TANH}), a);
    kc_tensor *t = kc_call(shared, kc_call(shared, a3));
    kc_tensor *s = kc_call_n(kc_merge_add(), (kc_tensor *[]){a3, t}, 2);
    kc_tensor *u = kc_call(kc_up_sampling2d(&(kc_up_sampling2d_opts){.interpolation = KC_BILINEAR}), s);
    kc_tensor *c = kc_call(kc_cropping2d(1, 2, 0, 1), u);
    kc_tensor *p = kc_call(kc_zero_padding2d(0, 1, 1, 0), c);
    kc_tensor *g = kc_call(kc_global_max_pooling2d(), kc_call(kc_identity(), p));
    kc_tensor *out = kc_call(head(), g);
    kc_model *m = kc_functional(&in, 1, &out, 1);
    cr_assert_not_null(m, "%s", kc_last_error());
    kc_shape ts = kc_tensor_shape(c);
    cr_expect(ts.rank == 3 && ts.dims[0] == 3 && ts.dims[1] == 5 && ts.dims[2] == 3);
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
    int64_t n = kc_count_params(m);
    cr_assert_eq(n, (2 * 2 * 2 * 2 + 2) + (2 * 3 + 3) + 2 * 2 * 3 * 3 + (3 * 3 + 3),
                 "%lld weights: the shared layer's once", (long long)n);
    float w[MAX_W];
    fill(w, n, 4242u, 0.5f);
    KC_CHECK(kc_set_weights(m, w, n));
    fd_check(m, 3, 15u);
    kc_model_free(m);
}
