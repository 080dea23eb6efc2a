/* test_conv1d.c: Conv1D (valid, same, causal; strides, dilation_rate, use_bias=False),
 * MaxPooling1D, AveragePooling1D, GlobalMaxPooling1D, GlobalAveragePooling1D (with a mask),
 * RepeatVector, Permute, and Dense / Activation on (steps, features) inputs:
 *   - against Keras 3 (tests/gen_keras_conv1d_fixtures.py, fixtures/keras_conv1d/): forward
 *     output, loss, input and weight gradients, one SGD step, the model read from Keras's own
 *     to_json; GlobalAveragePooling1D's mask at the layer level;
 *   - a model of all of them saved by Keras 3 (.keras, .h5) and tf.keras 2 (.h5): loaded and
 *     predicting as Keras; kerac's own saves reloaded;
 *   - finite-difference checks of Conv1D's weight and input gradients;
 *   - shapes, parameter counts, mask flags, and the errors of bad options and inputs. */
#include <stdarg.h>

#include "testutil.h"
#include "fixture.h"
#include "layers/layer.h" /* the layer-level mask test: kc_forward_ctx, the class's functions */

#define MAX_W 4096
#define FIXTURE_DIR "tests/fixtures/keras_conv1d/"

static void fill(float *out, int64_t n, uint32_t seed, float scale) {
    uint32_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        out[i] = scale * ((float)(s >> 8) / 8388608.0f - 1.0f);
    }
}

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

/* ---- fixtures ------------------------------------------------------------------------------- */

static void load_fixture(const char *name, fixture *fx) {
    char path[256];
    snprintf(path, sizeof path, FIXTURE_DIR "%s", name);
    tu_fixture_load(path, fx);
}
#define find tu_fixture_find
#define get tu_fixture_get
#define free_fixture tu_fixture_free
#define read_text tu_read_text

/* Within 1e-5 of Keras's value, relative to the larger of |value| and 1e-2 of the tensor's
 * largest magnitude; returns the largest relative error (printed per case) */
static double expect_close(const char *what, const float *got, const float *want, long n) {
    double largest = 0.0, worst = 0.0;
    for (long i = 0; i < n; i++) largest = fmax(largest, fabs(want[i]));
    for (long i = 0; i < n; i++) {
        double scale = fmax(fabs(want[i]), 1e-2 * largest), err = fabs((double)got[i] - want[i]);
        if (scale > 0) worst = fmax(worst, err / scale);
        cr_expect(err <= 1e-5 * scale, "%s[%ld]: kerac %.9g, keras %.9g", what, i,
                  (double)got[i], (double)want[i]);
    }
    return worst;
}

/* the layer of each case of gen_keras_conv1d_fixtures.py, and its input shape */
static kc_layer *case_layer(const char *name, kc_shape *in) {
#define IS(s) !strcmp(name, s)
    if (IS("conv1d_valid")) {
        *in = kc_shape2(7, 3);
        return kc_conv1d(4, 3, KC_RELU);
    }
    if (IS("conv1d_same_strided")) {
        *in = kc_shape2(8, 3);
        return kc_conv1d_ex(3, &(kc_conv1d_opts){.kernel_size = 3, .strides = 2,
                                                 .padding = KC_SAME, .activation = KC_TANH});
    }
    if (IS("conv1d_same_wide")) {
        *in = kc_shape2(6, 8);
        return kc_conv1d_ex(3, &(kc_conv1d_opts){.kernel_size = 3, .padding = KC_SAME});
    }
    if (IS("conv1d_causal_dilated")) {
        *in = kc_shape2(9, 2);
        return kc_conv1d_ex(3, &(kc_conv1d_opts){.kernel_size = 3, .padding = KC_CAUSAL,
                                                 .dilation_rate = 2, .activation = KC_SIGMOID});
    }
    if (IS("conv1d_causal_strided_nobias")) {
        *in = kc_shape2(7, 2);
        return kc_conv1d_ex(2, &(kc_conv1d_opts){.kernel_size = 2, .strides = 3,
                                                 .padding = KC_CAUSAL, .use_bias = KC_ZERO});
    }
    if (IS("conv1d_valid_dilated")) {
        *in = kc_shape2(10, 6);
        return kc_conv1d_ex(2, &(kc_conv1d_opts){.kernel_size = 3, .dilation_rate = 3});
    }
    if (IS("max_pool1d")) {
        *in = kc_shape2(7, 3);
        return kc_max_pooling1d(2);
    }
    if (IS("max_pool1d_same_s1")) {
        *in = kc_shape2(5, 2);
        return kc_max_pooling1d_ex(&(kc_pool1d_opts){3, 1, KC_SAME});
    }
    if (IS("avg_pool1d_same")) {
        *in = kc_shape2(7, 2);
        return kc_average_pooling1d_ex(&(kc_pool1d_opts){.pool_size = 3, .padding = KC_SAME});
    }
    if (IS("avg_pool1d_valid_s1")) {
        *in = kc_shape2(6, 2);
        return kc_average_pooling1d_ex(&(kc_pool1d_opts){2, 1, KC_VALID});
    }
    if (IS("gmp1d")) {
        *in = kc_shape2(5, 3);
        return kc_global_max_pooling1d(0);
    }
    if (IS("gmp1d_keepdims")) {
        *in = kc_shape2(4, 2);
        return kc_global_max_pooling1d(1);
    }
    if (IS("gap1d")) {
        *in = kc_shape2(5, 3);
        return kc_global_average_pooling1d(0);
    }
    if (IS("gap1d_keepdims")) {
        *in = kc_shape2(4, 2);
        return kc_global_average_pooling1d(1);
    }
    if (IS("repeat_vector")) {
        *in = kc_shape1(4);
        return kc_repeat_vector(3);
    }
    if (IS("permute_21")) {
        *in = kc_shape2(3, 4);
        return kc_permute((int[]){2, 1}, 2);
    }
    if (IS("permute_312")) {
        *in = kc_shape3(2, 3, 4);
        return kc_permute((int[]){3, 1, 2}, 3);
    }
    if (IS("dense_seq")) {
        *in = kc_shape2(4, 3);
        return kc_dense(5, KC_TANH);
    }
    if (IS("dense_seq_softmax")) {
        *in = kc_shape2(3, 4);
        return kc_dense(3, KC_SOFTMAX);
    }
    if (IS("activation_seq_softmax")) {
        *in = kc_shape2(3, 4);
        return kc_activation(KC_SOFTMAX);
    }
#undef IS
    cr_assert_fail("unknown case %s", name);
    return NULL;
}

/* Keras's output, loss, input and weight gradients, and one SGD(0.1) step. The input gradient
 * comes from a Dense in front (test_layers2.c's way): Input(batch) -> Dense(input size) ->
 * Reshape -> the layer -> Flatten fed the identity matrix, with the Dense kernel's rows the
 * samples and a zero bias; its kernel's gradient is the samples' gradient. */
static void keras_case(const char *name) {
    fixture fx;
    char file[128];
    snprintf(file, sizeof file, "%s.txt", name);
    load_fixture(file, &fx);
    kc_shape in;
    kc_layer *layer = case_layer(name, &in);
    const tensor *x = get(&fx, "x"), *y = get(&fx, "y"), *want_out = get(&fx, "output");
    const tensor *dx = get(&fx, "dx"), *w = find(&fx, "weights"), *g = find(&fx, "grads");
    int64_t pixels = kc_shape_size(in);
    int batch = (int)(x->count / pixels);
    cr_assert_eq(batch * pixels, x->count);
    kc_model *m = chain(kc_shape1(batch), kc_dense((int)pixels, KC_LINEAR), kc_reshape(in),
                        layer, kc_flatten(), NULL);
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR,
                        kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}), 0));
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
    double e_out = expect_close("output", out, want_out->data, want_out->count);
    double loss;
    KC_CHECK(kc_compute_gradients(m, eye, y->data, batch, 0, &loss, grads, n));
    float l = (float)loss;
    expect_close("loss", &l, get(&fx, "loss")->data, 1);
    double e_dx = expect_close("dx", grads, dx->data, dx->count), e_g = 0, e_step = 0;
    if (g) e_g = expect_close("grads", grads + dense, g->data, g->count);
    if (g) { /* one training step: the layer's weights as Keras's after train_on_batch */
        KC_CHECK(kc_train_on_batch(m, eye, y->data, batch, NULL));
        KC_CHECK(kc_get_weights(m, weights, n));
        const tensor *st = get(&fx, "stepped");
        e_step = expect_close("stepped", weights + dense, st->data, st->count);
    }
    cr_log_info("%s: max rel err output %.2g dx %.2g grads %.2g step %.2g", name, e_out, e_dx,
                e_g, e_step);
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
    Test(conv1d_keras, name) { keras_case(#name); }
KERAS_CASE(conv1d_valid)
KERAS_CASE(conv1d_same_strided)
KERAS_CASE(conv1d_same_wide)
KERAS_CASE(conv1d_causal_dilated)
KERAS_CASE(conv1d_causal_strided_nobias)
KERAS_CASE(conv1d_valid_dilated)
KERAS_CASE(max_pool1d)
KERAS_CASE(max_pool1d_same_s1)
KERAS_CASE(avg_pool1d_same)
KERAS_CASE(avg_pool1d_valid_s1)
KERAS_CASE(gmp1d)
KERAS_CASE(gmp1d_keepdims)
KERAS_CASE(gap1d)
KERAS_CASE(gap1d_keepdims)
KERAS_CASE(repeat_vector)
KERAS_CASE(permute_21)
KERAS_CASE(permute_312)
KERAS_CASE(dense_seq)
KERAS_CASE(dense_seq_softmax)
KERAS_CASE(activation_seq_softmax)

/* ---- GlobalAveragePooling1D with a mask (ctx.mask set directly, as the engine will) ---- */

Test(conv1d_mask, global_average_pooling1d_averages_unmasked_steps) {
    fixture fx;
    load_fixture("gap1d_mask.txt", &fx);
    const tensor *x = get(&fx, "x"), *mk = get(&fx, "mask"), *y = get(&fx, "y");
    const tensor *want = get(&fx, "output"), *want_dx = get(&fx, "dx");
    int batch = 3, steps = 5, c = 3;
    cr_assert_eq(x->count, batch * steps * c);
    kc_layer *l = kc_global_average_pooling1d(0);
    strcpy(l->name, "gap");
    l->in_shape = kc_shape2(steps, c);
    l->in_size = steps * c;
    KC_CHECK(l->ops->build(l));
    l->out_size = kc_shape_size(l->out_shape);
    cr_assert_eq(l->out_size, c);
    uint8_t mask[15];
    for (int i = 0; i < 15; i++) mask[i] = mk->data[i] != 0.0f;
    kc_forward_ctx ctx = {.mask = mask};
    float out[9], dout[9], din[45];
    l->ops->forward(l, x->data, out, batch, &ctx);
    double e = expect_close("masked output", out, want->data, 9);
    /* MSE's gradient: 2 (out - y) / count */
    for (int i = 0; i < 9; i++) dout[i] = 2.0f * (out[i] - y->data[i]) / 9.0f;
    l->ops->backward(l, x->data, out, dout, din, batch, 0, &ctx);
    double e_dx = expect_close("masked dx", din, want_dx->data, 45);
    cr_log_info("gap1d_mask: max rel err output %.2g dx %.2g", e, e_dx);
    /* the pooled output has no mask; GlobalMaxPooling1D does not support masking (Keras) */
    cr_expect(l->ops->supports_masking);
    cr_expect(l->ops->compute_mask && !l->ops->compute_mask(l, mask, mask, batch));
    kc_layer *gmp = kc_global_max_pooling1d(0), *conv = kc_conv1d(2, 2, KC_LINEAR);
    cr_expect(!gmp->ops->supports_masking && !conv->ops->supports_masking);
    kc_layer_free(gmp), kc_layer_free(conv);
    /* without a mask: the plain mean */
    ctx.mask = NULL;
    l->ops->forward(l, x->data, out, 1, &ctx);
    for (int ch = 0; ch < c; ch++) {
        float s = 0;
        for (int t = 0; t < steps; t++) s += x->data[t * c + ch];
        cr_expect(tu_close(out[ch], s / steps, 1e-6));
    }
    kc_layer_free(l);
    free_fixture(&fx);
}

/* ---- a model of all of them, saved by Keras 3 and tf.keras 2 ---- */

static void expect_predicts(kc_model *m, const char *txt) {
    fixture fx;
    load_fixture(txt, &fx);
    const tensor *x = get(&fx, "x"), *want = get(&fx, "output");
    float out[64];
    cr_assert(want->count <= 64);
    KC_CHECK(kc_predict(m, x->data, x->count / (16 * 4), out));
    double e = expect_close(txt, out, want->data, want->count);
    cr_log_info("seq_model vs %s: max rel err %.2g", txt, e);
    free_fixture(&fx);
}

Test(conv1d_files, keras3_and_tf2_files_load_and_predict) {
    const char *files[][2] = {{"seq_model.keras", "seq_model.txt"},
                              {"seq_model.k3.h5", "seq_model.txt"},
                              {"seq_model.tf2.h5", "seq_model.tf2.txt"}};
    for (int i = 0; i < 3; i++) {
        char path[256];
        snprintf(path, sizeof path, FIXTURE_DIR "%s", files[i][0]);
        kc_model *m;
        KC_CHECK(kc_load(path, &m));
        cr_expect_eq(kc_count_params(m), 6 * 3 * 4 + 6 + 5 * 3 * 6 + 5 + 4 * 3 + 3 + 2 * 3 * 2 +
                                             2 * 3 + 3);
        expect_predicts(m, files[i][1]);
        /* kerac's own saves, reloaded; KERAC_CONV1D_OUT=dir keeps them there for
         * gen_keras_conv1d_fixtures.py check */
        const char *keep = getenv("KERAC_CONV1D_OUT");
        const char *dir = keep ? keep : tu_tmpdir();
        const char *ext[] = {".keras", ".h5"};
        for (int e = 0; e < 2; e++) {
            snprintf(path, sizeof path, "%s/kerac_seq_model%d%s", dir, i, ext[e]);
            KC_CHECK(kc_save(m, path));
            kc_model *b;
            KC_CHECK(kc_load(path, &b));
            expect_predicts(b, files[i][1]);
            kc_model_free(b);
        }
        kc_model_free(m);
    }
}

/* ---- finite differences: Conv1D's weight gradients, and through a Conv1D in front, its input
 * gradients ---- */

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
        pos += count;
    }
    free(x);
    free(y);
}

/* in front: Conv1D(2, 2, tanh, same) on (steps, 1); behind: Flatten, Dense(3, softmax) */
static kc_layer *front(void) {
    return kc_conv1d_ex(2, &(kc_conv1d_opts){.kernel_size = 2, .padding = KC_SAME,
                                             .activation = KC_TANH});
}

Test(conv1d_grad, causal_dilated) {
    kc_model *m = model(kc_shape2(9, 1), front(),
                        kc_conv1d_ex(3, &(kc_conv1d_opts){.kernel_size = 3, .padding = KC_CAUSAL,
                                                          .dilation_rate = 2,
                                                          .activation = KC_SIGMOID}),
                        kc_flatten(), kc_dense(3, KC_SOFTMAX), NULL);
    fd_check(m, 3, 1u);
    kc_model_free(m);
}

Test(conv1d_grad, causal_strided_nobias) {
    kc_model *m = model(kc_shape2(8, 1), front(),
                        kc_conv1d_ex(3, &(kc_conv1d_opts){.kernel_size = 3, .strides = 2,
                                                          .padding = KC_CAUSAL,
                                                          .use_bias = KC_ZERO,
                                                          .activation = KC_TANH}),
                        kc_flatten(), kc_dense(3, KC_SOFTMAX), NULL);
    fd_check(m, 2, 2u);
    kc_model_free(m);
}

Test(conv1d_grad, valid_dilated_and_same_strided) {
    kc_model *m = model(kc_shape2(11, 1), front(),
                        kc_conv1d_ex(9, &(kc_conv1d_opts){.kernel_size = 2, .dilation_rate = 3,
                                                          .activation = KC_TANH}),
                        kc_conv1d_ex(2, &(kc_conv1d_opts){.kernel_size = 3, .strides = 2,
                                                          .padding = KC_SAME,
                                                          .activation = KC_RELU}),
                        kc_flatten(), kc_dense(3, KC_SOFTMAX), NULL);
    fd_check(m, 3, 3u);
    kc_model_free(m);
}

Test(conv1d_grad, with_pooling_and_dense_on_steps) {
    kc_model *m = model(kc_shape2(10, 1), front(),
                        kc_conv1d_ex(3, &(kc_conv1d_opts){.kernel_size = 3,
                                                          .activation = KC_TANH}),
                        kc_average_pooling1d_ex(&(kc_pool1d_opts){3, 2, KC_SAME}),
                        kc_dense(4, KC_TANH), kc_permute((int[]){2, 1}, 2),
                        kc_global_max_pooling1d(0), kc_repeat_vector(2),
                        kc_global_average_pooling1d(0), kc_dense(3, KC_SOFTMAX), NULL);
    fd_check(m, 3, 4u);
    kc_model_free(m);
}

/* ---- shapes, parameter counts, errors ---- */

Test(conv1d_shapes, text_classifier) {
    kc_model *m = chain(kc_shape2(400, 50), kc_conv1d(128, 5, KC_RELU), kc_global_max_pooling1d(0),
                        kc_dense(10, KC_SOFTMAX), NULL);
    cr_expect_eq(kc_layer_param_count(m, 0), 5 * 50 * 128 + 128);
    cr_expect_eq(kc_output_shape(m).rank, 1);
    cr_expect_eq(kc_output_shape(m).dims[0], 10);
    kc_model_free(m);
    m = chain(kc_shape2(10, 3),
              kc_conv1d_ex(4, &(kc_conv1d_opts){.kernel_size = 3, .padding = KC_CAUSAL,
                                                .strides = 3}),
              NULL);
    kc_shape s = kc_output_shape(m);
    cr_expect(s.rank == 2 && s.dims[0] == 4 && s.dims[1] == 4); /* ceil(10 / 3) */
    kc_model_free(m);
    m = chain(kc_shape2(5, 3), kc_permute((int[]){2, 1}, 2), kc_dense(7, KC_LINEAR), NULL);
    s = kc_output_shape(m);
    cr_expect(s.rank == 2 && s.dims[0] == 3 && s.dims[1] == 7);
    cr_expect_eq(kc_layer_param_count(m, 1), 5 * 7 + 7);
    kc_model_free(m);
}

static void expect_build_error(kc_shape in, kc_layer *l, const char *needle) {
    kc_model *m = kc_sequential(in);
    KC_EXPECT_ERR(kc_add(m, l), KC_EINVAL, needle);
    kc_model_free(m);
}

Test(conv1d_errors, bad_options_and_inputs) {
    expect_build_error(kc_shape2(3, 2), kc_conv1d(4, 5, KC_LINEAR), "does not fit the input");
    expect_build_error(kc_shape2(5, 2),
                       kc_conv1d_ex(4, &(kc_conv1d_opts){.kernel_size = 3, .dilation_rate = 3}),
                       "(dilated) does not fit");
    expect_build_error(kc_shape3(5, 5, 2), kc_conv1d(4, 3, KC_LINEAR),
                       "needs an input of shape (steps, channels)");
    expect_build_error(kc_shape1(8), kc_conv1d(4, 3, KC_LINEAR), "(steps, channels)");
    expect_build_error(kc_shape2(9, 2),
                       kc_conv1d_ex(4, &(kc_conv1d_opts){.kernel_size = 3, .strides = 2,
                                                         .dilation_rate = 2}),
                       "strides > 1 together with dilation_rate > 1");
    expect_build_error(kc_shape2(9, 2), kc_conv1d(0, 3, KC_LINEAR), "filters must be positive");
    expect_build_error(kc_shape2(9, 2), kc_conv1d(2, 0, KC_LINEAR), "must be positive");
    expect_build_error(kc_shape2(9, 2), kc_conv1d_ex(2, &(kc_conv1d_opts){3, .padding = 7}),
                       "padding must be");
    expect_build_error(kc_shape2(1, 2), kc_max_pooling1d(2), "pool of 2 steps does not fit");
    expect_build_error(kc_shape3(4, 4, 2), kc_average_pooling1d(2), "(steps, channels)");
    expect_build_error(kc_shape2(4, 2),
                       kc_max_pooling1d_ex(&(kc_pool1d_opts){.padding = KC_CAUSAL}),
                       "padding must be KC_VALID or KC_SAME");
    expect_build_error(kc_shape3(4, 4, 2), kc_global_average_pooling1d(0), "(steps, features)");
    expect_build_error(kc_shape1(4), kc_global_max_pooling1d(0), "(steps, features)");
    expect_build_error(kc_shape2(4, 2), kc_repeat_vector(3), "flat input");
    expect_build_error(kc_shape1(4), kc_repeat_vector(0), "n must be positive");
    expect_build_error(kc_shape2(4, 2), kc_permute((int[]){1, 1}, 2), "not a permutation");
    expect_build_error(kc_shape2(4, 2), kc_permute((int[]){0, 1}, 2), "not a permutation");
    expect_build_error(kc_shape2(4, 2), kc_permute((int[]){2, 3}, 2), "not a permutation");
    expect_build_error(kc_shape3(4, 2, 2), kc_permute((int[]){2, 1}, 2),
                       "dims has 2 axes but the input");
    expect_build_error(kc_shape2(4, 2), kc_permute((int[]){1, 2, 3, 4, 5}, 5),
                       "not a permutation");
}

/* Keras configs kerac reads and those it refuses */
static kc_status from_layer_json(const char *layer_json, const char *shape, kc_model **m) {
    char js[2048];
    snprintf(js, sizeof js,
             "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", \"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_shape\": [null, %s], "
             "\"dtype\": \"float32\", \"name\": \"in\"}}, %s]}}",
             shape, layer_json);
    return kc_model_from_json(js, m);
}

Test(conv1d_errors, configs) {
    kc_model *m;
    KC_CHECK(from_layer_json("{\"class_name\": \"Conv1D\", \"config\": {\"name\": \"c\", "
                             "\"filters\": 2, \"kernel_size\": 3, \"padding\": \"causal\", "
                             "\"dilation_rate\": [2]}}",
                             "6, 2", &m));
    cr_expect_eq(kc_output_shape(m).dims[0], 6);
    kc_model_free(m);
    KC_EXPECT_ERR(from_layer_json("{\"class_name\": \"Conv1D\", \"config\": {\"name\": \"c\", "
                                  "\"filters\": 2, \"kernel_size\": [3], \"groups\": 2}}",
                                  "6, 2", &m),
                  KC_EFORMAT, "groups 2 is not supported");
    KC_EXPECT_ERR(from_layer_json("{\"class_name\": \"Conv1D\", \"config\": {\"name\": \"c\", "
                                  "\"filters\": 2, \"kernel_size\": [3, 3]}}",
                                  "6, 2", &m),
                  KC_EFORMAT, "kernel_size must be a number or a list of 1 number");
    KC_EXPECT_ERR(from_layer_json("{\"class_name\": \"Conv1D\", \"config\": {\"name\": \"c\", "
                                  "\"filters\": 2, \"kernel_size\": [3], \"data_format\": "
                                  "\"channels_first\"}}",
                                  "6, 2", &m),
                  KC_EFORMAT, "channels_last only");
    KC_EXPECT_ERR(from_layer_json("{\"class_name\": \"MaxPooling1D\", \"config\": {\"name\": "
                                  "\"p\", \"pool_size\": [2], \"padding\": \"causal\"}}",
                                  "6, 2", &m),
                  KC_EFORMAT, "padding 'causal' is not supported");
    KC_EXPECT_ERR(from_layer_json("{\"class_name\": \"Permute\", \"config\": {\"name\": "
                                  "\"p\", \"dims\": [2, 3]}}",
                                  "6, 2", &m),
                  KC_EFORMAT, "dims must hold the axes 1..2");
}

/* ---- Dropout(noise_shape): one draw per cell of the noise shape ---- */

Test(conv1d_dropout, noise_shape_shares_the_mask_along_steps) {
    int steps = 6, f = 8, batch = 4;
    kc_layer *l = kc_dropout_noise(0.5f, (int[]){1, 0}, 2); /* (None, 1, None) */
    strcpy(l->name, "d");
    l->in_shape = kc_shape2(steps, f);
    l->in_size = steps * f;
    KC_CHECK(l->ops->build(l));
    l->out_size = l->in_size;
    float x[192], y[192], dy[192], dx[192];
    for (int i = 0; i < 192; i++) x[i] = 1.0f + (float)i, dy[i] = 0.5f - (float)i;
    kc_forward_ctx ctx = {.training = 1, .step_key = 7};
    l->ops->forward(l, x, y, batch, &ctx);
    l->ops->backward(l, x, y, dy, dx, batch, 0, &ctx);
    int kept = 0, differ_in_features = 0;
    for (int s = 0; s < batch; s++)
        for (int c = 0; c < f; c++) {
            int on = y[(s * steps) * f + c] != 0.0f;
            kept += on;
            if (c && on != (y[(s * steps) * f + c - 1] != 0.0f)) differ_in_features = 1;
            for (int t = 0; t < steps; t++) {
                int i = (s * steps + t) * f + c;
                cr_expect_eq(y[i] != 0.0f, on, "sample %d step %d feature %d", s, t, c);
                cr_expect(tu_close(y[i], on ? 2.0f * x[i] : 0.0f, 1e-6));
                cr_expect(tu_close(dx[i], on ? 2.0f * dy[i] : 0.0f, 1e-6));
            }
        }
    cr_expect(kept > 4 && kept < 28 && differ_in_features, "kept %d of 32", kept);
    /* inference: the identity */
    ctx.training = 0;
    l->ops->forward(l, x, y, batch, &ctx);
    cr_expect(!memcmp(x, y, sizeof x));
    kc_layer_free(l);
}

Test(conv1d_dropout, noise_shape_after_relu_dense_fused_equals_plain) {
    /* Dense(relu) + Dropout is fused unless the Dropout has a noise_shape: the gradients
     * with and without the fusions are the same bits */
    float g[2][MAX_W];
    double loss[2];
    for (int fusion = 0; fusion < 2; fusion++) {
        kc_model *m = chain(kc_shape2(5, 3), kc_dense(6, KC_RELU),
                            kc_dropout_noise(0.4f, (int[]){1, 0}, 2), kc_flatten(),
                            kc_dense(2, KC_SOFTMAX), NULL);
        KC_CHECK(kc_set_fusion(m, fusion));
        KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
        int64_t n = kc_count_params(m);
        float w[MAX_W], x[60], y[8] = {1, 0, 0, 1, 1, 0, 0, 1};
        fill(w, n, 99u, 0.5f);
        fill(x, 60, 5u, 1.0f);
        KC_CHECK(kc_set_weights(m, w, n));
        KC_CHECK(kc_compute_gradients(m, x, y, 4, 1, &loss[fusion], g[fusion], n));
        kc_model_free(m);
    }
    cr_expect_eq(loss[0], loss[1]);
    cr_expect(!memcmp(g[0], g[1], sizeof(float) * (6 * 3 + 6 + 30 * 2 + 2)));
}

Test(conv1d_dropout, noise_shape_configs) {
    kc_model *m;
    const char *k3 = "{\"class_name\": \"Dropout\", \"config\": {\"name\": \"d\", \"rate\": 0.3, "
                     "\"seed\": null, \"noise_shape\": [null, 1, 4]}}";
    KC_CHECK(from_layer_json(k3, "5, 4", &m));
    char *js;
    KC_CHECK(kc_model_to_json(m, &js));
    cr_expect(strstr(js, "\"noise_shape\":[null,1,4]") || strstr(js, "\"noise_shape\": [null, 1, 4]"),
              "%s", js);
    free(js);
    kc_model_free(m);
    KC_EXPECT_ERR(from_layer_json("{\"class_name\": \"Dropout\", \"config\": {\"name\": \"d\", "
                                  "\"rate\": 0.3, \"noise_shape\": [null, 1, 3]}}",
                                  "5, 4", &m),
                  KC_EINVAL, "does not broadcast");
    KC_EXPECT_ERR(from_layer_json("{\"class_name\": \"Dropout\", \"config\": {\"name\": \"d\", "
                                  "\"rate\": 0.3, \"noise_shape\": [null, 1]}}",
                                  "5, 4", &m),
                  KC_EINVAL, "noise_shape has 1 sizes after the batch");
    KC_EXPECT_ERR(from_layer_json("{\"class_name\": \"Dropout\", \"config\": {\"name\": \"d\", "
                                  "\"rate\": 0.3, \"noise_shape\": [1, 1, 4]}}",
                                  "5, 4", &m),
                  KC_EFORMAT, "shared by the whole batch");
}
