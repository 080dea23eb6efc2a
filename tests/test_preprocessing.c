/* test_preprocessing.c: the preprocessing layers (Rescaling, Normalization, Resizing,
 * CenterCrop, RandomFlip, RandomRotation, RandomTranslation, RandomZoom, RandomContrast)
 * against Keras 3 (tests/gen_keras_prep_fixtures.py writes tests/fixtures/keras_prep/): their
 * outputs, the random layers' transforms with fixed parameters (lower == upper) in training
 * mode, their sampled ranges, gradients by finite differences, training vs inference, and
 * model files written by Keras 3 (.keras) and tf.keras 2 (.h5) loaded, saved and reloaded. */
#include <stdarg.h>

#include "testutil.h"
#include "fixture.h"

#define DIR "tests/fixtures/keras_prep/"

/* ---- a recorder: the identity, keeping what reached it (a training forward's output) ---- */

static float *recorded;
static int64_t recorded_n;

static void rec_forward(kc_custom_layer *self, const float *in, float *out, int batch,
                        int training) {
    (void)self;
    (void)training;
    memcpy(out, in, sizeof(float) * (size_t)(batch * recorded_n));
    memcpy(recorded, in, sizeof(float) * (size_t)(batch * recorded_n));
}
static void rec_backward(kc_custom_layer *self, const float *in, const float *out,
                         const float *dout, float *din, int batch) {
    if (din) memcpy(din, dout, sizeof(float) * (size_t)(batch * recorded_n));
}
static const kc_custom_layer_type recorder = {
    .class_name = "Recorder", .forward = rec_forward, .backward = rec_backward};

/* layer(x) on a batch of shape in (training: a training step's forward, through the model's
 * loss), into out (batch x the output size, malloc'd); returns that size */
static int64_t run_layer(kc_layer *l, kc_shape in, const float *x, int batch, int training,
                         float **out) {
    kc_model *m = kc_sequential(in);
    cr_assert_not_null(m);
    KC_CHECK(kc_add(m, l));
    int64_t n = kc_shape_size(kc_output_shape(m));
    recorded_n = n;
    recorded = malloc(sizeof(float) * (size_t)(batch * n));
    KC_CHECK(kc_add(m, kc_custom(&recorder, NULL)));
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(NULL), 0));
    if (training) {
        float *y = calloc((size_t)(batch * n), sizeof(float));
        double loss;
        KC_CHECK(kc_compute_gradients(m, x, y, batch, 1, &loss, NULL, 0));
        free(y);
    } else
        KC_CHECK(kc_predict(m, x, batch, recorded));
    *out = recorded;
    recorded = NULL;
    kc_model_free(m);
    return n;
}

/* Within 1e-5 of Keras's value, relative to the larger of |value| and 1e-2 of the largest */
static double expect_close(const char *what, const float *got, const float *want, long n) {
    double largest = 0.0, worst = 0.0;
    for (long i = 0; i < n; i++) largest = fmax(largest, fabs(want[i]));
    for (long i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]), tol = fmax(fabs(want[i]), 1e-2 * largest);
        worst = fmax(worst, err / tol);
        cr_expect(err <= 1e-5 * tol, "%s[%ld]: kerac %.9g, keras %.9g", what, i,
                  (double)got[i], (double)want[i]);
    }
    return worst;
}

static kc_augment_opts fill_opts(const char *fill_mode, const char *interpolation) {
    return (kc_augment_opts){.fill_mode = fill_mode, .interpolation = interpolation,
                             .fill_value = 7.0f};
}

/* the layers of gen_keras_prep_fixtures.py's cases, their input shape and training flag */
static kc_layer *case_layer(const char *name, kc_shape *in, int *training) {
    *in = kc_shape3(6, 5, 3);
    *training = !strncmp(name, "flip", 4) || !strncmp(name, "rotation", 8) ||
                !strncmp(name, "translation", 11) || !strncmp(name, "zoom", 4) ||
                !strncmp(name, "contrast", 8);
    if (!strcmp(name, "rescaling")) return *in = kc_shape2(4, 3), kc_rescaling(1 / 255.0f, -0.5f);
    if (!strcmp(name, "normalization_given")) {
        *in = kc_shape2(3, 3);
        const float m[] = {1, 2, -1}, v[] = {4, 0.25f, 9};
        return kc_normalization(&(kc_normalization_opts){.mean = m, .variance = v, .n_mean = 3});
    }
    if (!strcmp(name, "normalization_broadcast")) {
        *in = kc_shape2(3, 4);
        const float m[] = {1, 2, 3, 4}, v[] = {1, 4, 9, 16};
        return kc_normalization(&(kc_normalization_opts){
            .axes = {1, 2}, .n_axes = 2, .mean = m, .variance = v, .n_mean = 4});
    }
    if (!strcmp(name, "normalization_invert")) {
        *in = kc_shape1(4);
        const float m = 2, v = 9;
        return kc_normalization(
            &(kc_normalization_opts){.mean = &m, .variance = &v, .n_mean = 1, .invert = 1});
    }
    if (!strcmp(name, "resizing_up")) return kc_resizing(8, 9, NULL);
    if (!strcmp(name, "resizing_down")) return kc_resizing(4, 3, NULL);
    if (!strcmp(name, "resizing_nearest"))
        return kc_resizing(9, 4, &(kc_resizing_opts){.interpolation = "nearest"});
    if (!strcmp(name, "resizing_nearest_down"))
        return kc_resizing(4, 2, &(kc_resizing_opts){.interpolation = "nearest"});
    if (!strcmp(name, "resizing_crop"))
        return kc_resizing(4, 7, &(kc_resizing_opts){.crop_to_aspect_ratio = 1});
    if (!strcmp(name, "resizing_pad"))
        return kc_resizing(4, 7, &(kc_resizing_opts){.pad_to_aspect_ratio = 1, .fill_value = 1.5f});
    if (!strcmp(name, "resizing_pad_h"))
        return kc_resizing(8, 3, &(kc_resizing_opts){.pad_to_aspect_ratio = 1});
    if (!strcmp(name, "center_crop")) return kc_center_crop(3, 4);
    if (!strcmp(name, "center_crop_resize")) return *in = kc_shape3(3, 4, 2), kc_center_crop(5, 3);
    if (!strcmp(name, "flip_horizontal")) return kc_random_flip("horizontal", NULL);
    if (!strcmp(name, "flip_vertical")) return kc_random_flip("vertical", NULL);
    if (!strcmp(name, "flip_both")) return kc_random_flip(NULL, NULL);
    if (!strcmp(name, "contrast")) return kc_random_contrast(-0.5f, 0.5f, NULL);
    if (!strcmp(name, "contrast_range"))
        return kc_random_contrast(-0.4f, 0.4f, &(kc_augment_opts){.value_range = {0.2f, 0.8f}});
    if (!strncmp(name, "rotation_", 9) && strcmp(name, "rotation_neg")) {
        char fm[16];
        const char *ip = strrchr(name, '_') + 1;
        snprintf(fm, sizeof fm, "%.*s", (int)(ip - 1 - (name + 9)), name + 9);
        kc_augment_opts o = fill_opts(fm, ip);
        return kc_random_rotation(0.1f, 0.1f, &o);
    }
    if (!strcmp(name, "rotation_neg")) return kc_random_rotation(-0.3f, -0.3f, NULL);
    if (!strcmp(name, "translation_wrap"))
        return kc_random_translation(0.2f, 0.2f, -0.3f, -0.3f,
                                     &(kc_augment_opts){.fill_mode = "wrap"});
    if (!strcmp(name, "translation_reflect_nearest"))
        return kc_random_translation(-0.45f, -0.45f, 0.35f, 0.35f,
                                     &(kc_augment_opts){.interpolation = "nearest"});
    if (!strcmp(name, "translation_constant"))
        return kc_random_translation(
            0.6f, 0.6f, 0.7f, 0.7f,
            &(kc_augment_opts){.fill_mode = "constant", .fill_value = -2.0f});
    if (!strcmp(name, "zoom_in")) return kc_random_zoom(-0.3f, -0.3f, (float[]){-0.2f, -0.2f}, NULL);
    if (!strcmp(name, "zoom_out_nearest"))
        return kc_random_zoom(0.5f, 0.5f, NULL, &(kc_augment_opts){.fill_mode = "nearest"});
    if (!strcmp(name, "zoom_out_constant"))
        return kc_random_zoom(0.4f, 0.4f, (float[]){0.7f, 0.7f},
                              &(kc_augment_opts){.fill_mode = "constant",
                                                 .interpolation = "nearest"});
    cr_assert_fail("no layer for case %s", name);
    return NULL;
}

static void keras_case(const char *name) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s.txt", name);
    fixture fx;
    tu_fixture_load(path, &fx);
    kc_shape in;
    int training;
    kc_layer *l = case_layer(name, &in, &training);
    const tensor *x = tu_fixture_get(&fx, "x"), *y = tu_fixture_get(&fx, "y");
    int batch = (int)(x->count / kc_shape_size(in));
    float *out;
    int64_t n = run_layer(l, in, x->data, batch, training, &out);
    cr_assert_eq(n * batch, y->count, "%s: output size %lld, keras %ld", name,
                 (long long)(n * batch), y->count);
    if (!strncmp(name, "flip", 4)) { /* each image: as it was, or flipped as Keras flips */
        for (int b = 0; b < batch; b++) {
            const float *o = out + b * n;
            int same = !memcmp(o, x->data + b * n, sizeof(float) * (size_t)n);
            int flipped = !memcmp(o, y->data + b * n, sizeof(float) * (size_t)n);
            cr_expect(same || flipped, "%s: image %d is neither the input nor its flip", name, b);
        }
    } else {
        double worst = expect_close(name, out, y->data, (long)y->count);
        cr_log_info("%s: max relative error %.3g", name, worst);
    }
    free(out);
    tu_fixture_free(&fx);
}

#define KERAS_CASE(n) \
    Test(prep_keras, n) { keras_case(#n); }
KERAS_CASE(rescaling)
KERAS_CASE(normalization_given)
KERAS_CASE(normalization_invert)
KERAS_CASE(normalization_broadcast)
KERAS_CASE(resizing_up)
KERAS_CASE(resizing_down)
KERAS_CASE(resizing_nearest)
KERAS_CASE(resizing_nearest_down)
KERAS_CASE(resizing_crop)
KERAS_CASE(resizing_pad)
KERAS_CASE(resizing_pad_h)
KERAS_CASE(center_crop)
KERAS_CASE(center_crop_resize)
KERAS_CASE(flip_horizontal)
KERAS_CASE(flip_vertical)
KERAS_CASE(flip_both)
KERAS_CASE(contrast)
KERAS_CASE(contrast_range)
KERAS_CASE(rotation_reflect_bilinear)
KERAS_CASE(rotation_reflect_nearest)
KERAS_CASE(rotation_wrap_bilinear)
KERAS_CASE(rotation_wrap_nearest)
KERAS_CASE(rotation_constant_bilinear)
KERAS_CASE(rotation_constant_nearest)
KERAS_CASE(rotation_nearest_bilinear)
KERAS_CASE(rotation_nearest_nearest)
KERAS_CASE(rotation_neg)
KERAS_CASE(translation_wrap)
KERAS_CASE(translation_reflect_nearest)
KERAS_CASE(translation_constant)
KERAS_CASE(zoom_in)
KERAS_CASE(zoom_out_nearest)
KERAS_CASE(zoom_out_constant)

/* ---- Normalization.adapt ---- */

static void adapt_case(const char *name, kc_normalization_opts o) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s.txt", name);
    fixture fx;
    tu_fixture_load(path, &fx);
    const tensor *data = tu_fixture_get(&fx, "data"), *x = tu_fixture_get(&fx, "x"),
                 *y = tu_fixture_get(&fx, "y"), *mean = tu_fixture_get(&fx, "mean"),
                 *var = tu_fixture_get(&fx, "variance");
    int batch = 2;
    kc_shape in = x->count / batch == 12 ? kc_shape2(3, 4) : kc_shape1(5);
    kc_model *m = kc_sequential(in);
    kc_layer *l = kc_normalization(&o);
    KC_CHECK(kc_add(m, l));
    cr_assert_eq(kc_count_params(m), 2 * mean->count + 1);
    kc_dataset ds = {.count = data->count / kc_shape_size(in), .x_shape = in,
                     .x_dtype = KC_FLOAT32, .x = data->data};
    KC_CHECK(kc_normalization_adapt(l, &ds));
    float w[64], out[64];
    KC_CHECK(kc_get_weights(m, w, kc_count_params(m)));
    expect_close("mean", w, mean->data, mean->count);
    expect_close("variance", w + mean->count, var->data, var->count);
    cr_expect_eq(w[2 * mean->count], 0.0f, "count stays 0, as Keras 3's adapt leaves it");
    KC_CHECK(kc_predict(m, x->data, batch, out));
    expect_close(name, out, y->data, y->count);
    kc_model_free(m);
    tu_fixture_free(&fx);
}

Test(prep_adapt, last_axis) { adapt_case("normalization_adapt", (kc_normalization_opts){0}); }
Test(prep_adapt, two_axes) {
    adapt_case("normalization_adapt_axes", (kc_normalization_opts){.axes = {1, 2}, .n_axes = 2});
}
Test(prep_adapt, axis_none) {
    adapt_case("normalization_adapt_none", (kc_normalization_opts){.axis_none = 1});
}

/* uint8 data is scaled by x_scale before the moments, as the batches kc_fit makes */
Test(prep_adapt, uint8_scaled) {
    enum { N = 50 };
    uint8_t d[N * 2];
    double m[2] = {0, 0}, v[2] = {0, 0};
    for (int i = 0; i < N * 2; i++) d[i] = (uint8_t)((i * 37) % 251);
    for (int i = 0; i < N * 2; i++) m[i % 2] += d[i] * 0.5 / N;
    for (int i = 0; i < N * 2; i++) v[i % 2] += pow(d[i] * 0.5 - m[i % 2], 2) / N;
    kc_model *mod = kc_sequential(kc_shape1(2));
    kc_layer *l = kc_normalization(NULL);
    KC_CHECK(kc_add(mod, l));
    kc_dataset ds = {.count = N, .x_shape = kc_shape1(2), .x_dtype = KC_UINT8, .x = d,
                     .x_scale = 0.5f};
    KC_CHECK(kc_normalization_adapt(l, &ds));
    float w[5], x[2] = {10, 100}, y[2];
    KC_CHECK(kc_get_weights(mod, w, 5));
    for (int j = 0; j < 2; j++) {
        cr_expect(fabs(w[j] - m[j]) < 1e-4 && fabs(w[2 + j] - v[j]) < 1e-2,
                  "feature %d: mean %g variance %g, want %g %g", j, (double)w[j],
                  (double)w[2 + j], m[j], v[j]);
    }
    KC_CHECK(kc_predict(mod, x, 1, y));
    for (int j = 0; j < 2; j++)
        cr_expect(fabs(y[j] - (x[j] - m[j]) / sqrt(v[j])) < 1e-4, "y[%d] = %g", j, (double)y[j]);
    kc_model_free(mod);
}

Test(prep_adapt, refusals) {
    kc_layer *l = kc_normalization(NULL);
    kc_dataset ds = {.count = 1, .x_shape = kc_shape1(3), .x_dtype = KC_FLOAT32,
                     .x = (float[]){1, 2, 3}};
    KC_EXPECT_ERR(kc_normalization_adapt(l, &ds), KC_EINVAL, "built model");
    kc_model *m = kc_sequential(kc_shape1(4));
    KC_CHECK(kc_add(m, l));
    KC_EXPECT_ERR(kc_normalization_adapt(l, &ds), KC_EINVAL, "samples of shape");
    kc_layer *dense = kc_dense(2, KC_LINEAR);
    KC_EXPECT_ERR(kc_normalization_adapt(dense, &ds), KC_EINVAL, "needs a Normalization layer");
    kc_layer_free(dense);
    kc_model_free(m);
    m = kc_sequential(kc_shape1(2));
    const float mv[] = {1, 2, 3};
    KC_EXPECT_ERR(kc_add(m, kc_normalization(&(kc_normalization_opts){
                                .mean = mv, .variance = mv, .n_mean = 3})),
                  KC_EINVAL, "need 1 or 2");
    kc_model_free(m);
}

/* ---- gradients: finite differences through each transform (fixed parameters) ---- */

static void fd_check(kc_layer *prep) {
    kc_model *m = kc_sequential(kc_shape3(6, 5, 2));
    KC_CHECK(kc_add(m, kc_conv2d_ex(2, &(kc_conv2d_opts){.kernel_size = {1, 1}})));
    KC_CHECK(kc_add(m, prep));
    KC_CHECK(kc_add(m, kc_flatten()));
    KC_CHECK(kc_add(m, kc_dense(3, KC_SOFTMAX)));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
    int64_t n = kc_count_params(m);
    enum { B = 2 };
    float w[512], g[512], x[B * 60], y[B * 3] = {1, 0, 0, 0, 0, 1};
    cr_assert(n <= 512);
    for (int i = 0; i < B * 60; i++) x[i] = sinf(0.37f * (float)i) * 2.0f;
    KC_CHECK(kc_get_weights(m, w, n));
    KC_CHECK(kc_compute_gradients(m, x, y, B, 1, NULL, g, n));
    const float h = 1e-3f;
    for (int64_t i = 0; i < kc_layer_param_count(m, 0); i++) { /* the Conv2D before it */
        float keep = w[i];
        double lp, lm;
        w[i] = keep + h;
        KC_CHECK(kc_set_weights(m, w, n));
        KC_CHECK(kc_compute_gradients(m, x, y, B, 1, &lp, NULL, 0));
        w[i] = keep - h;
        KC_CHECK(kc_set_weights(m, w, n));
        KC_CHECK(kc_compute_gradients(m, x, y, B, 1, &lm, NULL, 0));
        w[i] = keep;
        double fd = (lp - lm) / ((double)(keep + h) - (double)(keep - h));
        cr_expect(fabs(fd - g[i]) <= 1e-2 * fabs(fd) + 3e-4,
                  "%s: conv weight %lld: analytic %.6g, finite difference %.6g",
                  kc_layer_name(m, 1), (long long)i, (double)g[i], fd);
    }
    double largest = 0;
    for (int64_t i = 0; i < kc_layer_param_count(m, 0); i++) largest = fmax(largest, fabs(g[i]));
    cr_expect(largest > 1e-3, "the gradients reaching the Conv2D are all tiny: nothing tested");
    kc_model_free(m);
}

Test(prep_grad, rescaling) { fd_check(kc_rescaling(0.5f, 1.0f)); }
Test(prep_grad, normalization) {
    const float mv[] = {0.5f, 2.0f};
    fd_check(kc_normalization(&(kc_normalization_opts){.mean = mv, .variance = mv + 1, .n_mean = 1}));
}
Test(prep_grad, resizing_bilinear) { fd_check(kc_resizing(4, 7, NULL)); }
Test(prep_grad, resizing_pad) {
    fd_check(kc_resizing(3, 5, &(kc_resizing_opts){.pad_to_aspect_ratio = 1, .fill_value = 1}));
}
Test(prep_grad, center_crop) { fd_check(kc_center_crop(4, 3)); }
Test(prep_grad, center_crop_resize) { fd_check(kc_center_crop(7, 3)); }
Test(prep_grad, flip) { fd_check(kc_random_flip(NULL, NULL)); }
Test(prep_grad, rotation) { fd_check(kc_random_rotation(0.07f, 0.07f, NULL)); }
Test(prep_grad, rotation_constant) {
    kc_augment_opts o = fill_opts("constant", NULL);
    fd_check(kc_random_rotation(-0.2f, -0.2f, &o));
}
Test(prep_grad, translation_wrap) {
    fd_check(kc_random_translation(0.13f, 0.13f, -0.21f, -0.21f,
                                   &(kc_augment_opts){.fill_mode = "wrap"}));
}
Test(prep_grad, zoom_nearest) {
    fd_check(kc_random_zoom(0.3f, 0.3f, NULL, &(kc_augment_opts){.interpolation = "nearest"}));
}
Test(prep_grad, contrast) {
    fd_check(kc_random_contrast(0.3f, 0.3f, &(kc_augment_opts){.value_range = {-100, 100}}));
}

/* ---- random draws: ranges, per-image independence, training only ---- */

Test(prep_random, flip_probability_and_inference) {
    enum { B = 400, H = 2, W = 3 };
    float *x = malloc(sizeof(float) * B * H * W), *out;
    for (int i = 0; i < B * H * W; i++) x[i] = (float)(i % (H * W));
    run_layer(kc_random_flip("horizontal", NULL), kc_shape3(H, W, 1), x, B, 1, &out);
    int flipped = 0;
    for (int b = 0; b < B; b++) {
        const float *o = out + b * H * W;
        int f = o[0] == 2.0f;
        cr_assert(f || o[0] == 0.0f, "image %d: first pixel %g", b, (double)o[0]);
        for (int yy = 0; yy < H; yy++)
            for (int xx = 0; xx < W; xx++)
                cr_assert_eq(o[yy * W + xx], (float)(yy * W + (f ? W - 1 - xx : xx)));
        flipped += f;
    }
    cr_expect(flipped > 150 && flipped < 250, "%d of %d images flipped, want about half",
              flipped, B);
    free(out);
    run_layer(kc_random_flip("horizontal", NULL), kc_shape3(H, W, 1), x, B, 0, &out);
    cr_expect(!memcmp(out, x, sizeof(float) * B * H * W), "inference must be the identity");
    free(out);
    free(x);
}

/* translation along the width of a ramp: the output's centre column is 10 - shift */
Test(prep_random, translation_range) {
    enum { B = 500, W = 21 };
    float *x = malloc(sizeof(float) * B * W), *out;
    for (int i = 0; i < B * W; i++) x[i] = (float)(i % W);
    run_layer(kc_random_translation(0, 0, -0.3f, 0.3f, NULL), kc_shape3(1, W, 1), x, B, 1, &out);
    double sum = 0, sq = 0, lo = 1e9, hi = -1e9;
    for (int b = 0; b < B; b++) {
        double shift = 10.0 - out[b * W + 10];
        sum += shift, sq += shift * shift, lo = fmin(lo, shift), hi = fmax(hi, shift);
    }
    double mean = sum / B, sd = sqrt(sq / B - mean * mean), bound = 0.3 * W;
    cr_expect(lo >= -bound - 1e-4 && hi <= bound + 1e-4, "shifts in [%g, %g], want within %g",
              lo, hi, bound);
    cr_expect(lo < -0.9 * bound && hi > 0.9 * bound, "shifts in [%g, %g] do not span +-%g", lo,
              hi, bound);
    cr_expect(fabs(mean) < 0.6 && fabs(sd - 2 * bound / sqrt(12.0)) < 0.4,
              "shift mean %g sd %g, want 0 and %g (uniform)", mean, sd, 2 * bound / sqrt(12.0));
    free(out);
    free(x);
}

/* zoom of a width ramp about the centre column c: column c + 5 shows c + 5 zx */
Test(prep_random, zoom_range) {
    enum { B = 500, W = 21 };
    float *x = malloc(sizeof(float) * B * W), *out;
    for (int i = 0; i < B * W; i++) x[i] = (float)(i % W);
    run_layer(kc_random_zoom(0, 0, (float[]){-0.3f, 0.3f}, NULL), kc_shape3(1, W, 1), x, B, 1,
              &out);
    double lo = 9, hi = 0, sum = 0;
    for (int b = 0; b < B; b++) {
        double z = (out[b * W + 15] - 10.0) / 5.0;
        lo = fmin(lo, z), hi = fmax(hi, z), sum += z;
    }
    cr_expect(lo >= 0.7 - 1e-4 && hi <= 1.3 + 1e-4 && lo < 0.73 && hi > 1.27,
              "zooms in [%g, %g], want to span [0.7, 1.3]", lo, hi);
    cr_expect(fabs(sum / B - 1.0) < 0.03, "zoom mean %g, want 1", sum / B);
    free(out);
    free(x);
}

/* rotation of the ramp f(y, x) = x about the centre: (cy, cx + d) shows cx + d cos(angle) and
 * (cy + d, cx) shows cx - d sin(angle); the angles span factor * 360 degrees */
Test(prep_random, rotation_range) {
    enum { B = 400, S = 21, N = S * S };
    float *x = malloc(sizeof(float) * B * N), *out;
    for (int i = 0; i < B * N; i++) x[i] = (float)(i % S);
    run_layer(kc_random_rotation(-0.1f, 0.1f, NULL), kc_shape3(S, S, 1), x, B, 1, &out);
    double lo = 1e9, hi = -1e9, sum = 0;
    for (int b = 0; b < B; b++) {
        const float *o = out + (int64_t)b * N;
        double c = o[10 * S + 15] - 10.0, sn = -(o[15 * S + 10] - 10.0);
        double deg = atan2(sn, c) * 180.0 / 3.14159265358979;
        lo = fmin(lo, deg), hi = fmax(hi, deg), sum += deg;
    }
    cr_expect(lo >= -36.001 && hi <= 36.001 && lo < -34 && hi > 34,
              "angles in [%g, %g] degrees, want to span [-36, 36]", lo, hi);
    cr_expect(fabs(sum / B) < 2.5, "angle mean %g, want 0", sum / B);
    free(out);
    free(x);
}

/* contrast: std(out) / std(in) per image is the factor, in [1, 1 + f] (Keras 3's factor f) */
Test(prep_random, contrast_range) {
    enum { B = 300, N = 16 };
    float *x = malloc(sizeof(float) * B * N), *out;
    for (int i = 0; i < B * N; i++) x[i] = 120.0f + (float)((i * 7) % N);
    run_layer(kc_random_contrast(0, 0.3f, NULL), kc_shape3(4, 4, 1), x, B, 1, &out);
    double lo = 9, hi = 0, sum = 0;
    for (int b = 0; b < B; b++) {
        double mi = 0, mo = 0, vi = 0, vo = 0;
        for (int i = 0; i < N; i++) mi += x[b * N + i] / N, mo += out[b * N + i] / N;
        for (int i = 0; i < N; i++)
            vi += pow(x[b * N + i] - mi, 2), vo += pow(out[b * N + i] - mo, 2);
        double f = sqrt(vo / vi);
        lo = fmin(lo, f), hi = fmax(hi, f), sum += f;
    }
    cr_expect(lo >= 1 - 1e-4 && hi <= 1.3 + 1e-4, "factors in [%g, %g], want [1, 1.3]", lo, hi);
    cr_expect(lo < 1.03 && hi > 1.27 && fabs(sum / B - 1.15) < 0.03,
              "factors [%g, %g] mean %g: not uniform on [1, 1.3]", lo, hi, sum / B);
    free(out);
    free(x);
}

/* rotation by a random angle keeps the centre pixel of an odd image; a seeded layer draws the
 * same in two models, and the identity holds in predict */
Test(prep_random, seeded_and_inference) {
    enum { B = 8, N = 5 * 5 };
    float x[B * N], *a, *b, *c;
    for (int i = 0; i < B * N; i++) x[i] = (float)((i * 13) % 17);
    kc_augment_opts o = {.has_seed = 1, .seed = 42};
    run_layer(kc_random_rotation(-0.5f, 0.5f, &o), kc_shape3(5, 5, 1), x, B, 1, &a);
    run_layer(kc_random_rotation(-0.5f, 0.5f, &o), kc_shape3(5, 5, 1), x, B, 1, &b);
    run_layer(kc_random_rotation(-0.5f, 0.5f, &o), kc_shape3(5, 5, 1), x, B, 0, &c);
    cr_expect(!memcmp(a, b, sizeof x), "the same seed must give the same rotations");
    cr_expect(memcmp(a, x, sizeof x), "training rotations must change the images");
    cr_expect(!memcmp(c, x, sizeof x), "inference must be the identity");
    for (int s = 0; s < B; s++)
        cr_expect(fabsf(a[s * N + 12] - x[s * N + 12]) < 1e-4f, "image %d: the centre moved", s);
    free(a);
    free(b);
    free(c);
}

/* each refused option names itself (a fresh model each: kc_add keeps the first error) */
static void refused(kc_shape in, kc_layer *l, const char *needle) {
    kc_model *m = kc_sequential(in);
    KC_EXPECT_ERR(kc_add(m, l), KC_EINVAL, needle);
    kc_model_free(m);
}

Test(prep_random, refused_options) {
    kc_shape img = kc_shape3(4, 4, 1);
    refused(img, kc_random_flip("diagonal", NULL), "mode must be");
    refused(img, kc_random_rotation(0.1f, 0.1f, &(kc_augment_opts){.fill_mode = "mirror"}),
            "fill_mode must be");
    refused(img, kc_random_zoom(0.2f, -0.2f, NULL, NULL), "lower <= upper");
    refused(img, kc_resizing(0, 3, NULL), "height and width");
    refused(img, kc_resizing(3, 3, &(kc_resizing_opts){.interpolation = "bicubic"}),
            "interpolation");
    refused(img, kc_random_contrast(0, 0.2f, &(kc_augment_opts){.value_range = {1, -1}}),
            "value_range");
    refused(kc_shape2(4, 4), kc_center_crop(2, 2), "needs an input of shape (height, width, channels)");
    refused(kc_shape2(4, 4), kc_normalization(&(kc_normalization_opts){.axes = {0}, .n_axes = 1}),
            "axis 0 is out of range");
}

/* ---- model files: Keras 3's .keras and tf.keras 2's .h5 ---- */

static void predict_as(kc_model *m, const char *fixture_name, float *keep) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s.txt", fixture_name);
    fixture fx;
    tu_fixture_load(path, &fx);
    const tensor *x = tu_fixture_get(&fx, "x"), *y = tu_fixture_get(&fx, "y");
    float out[64];
    cr_assert(y->count <= 64);
    KC_CHECK(kc_predict(m, x->data, 4, out));
    double worst = expect_close(fixture_name, out, y->data, y->count);
    cr_log_info("%s: max relative error %.3g", fixture_name, worst);
    if (keep) memcpy(keep, out, sizeof(float) * (size_t)y->count);
    tu_fixture_free(&fx);
}

static const char *const model_classes[] = {
    "Rescaling",        "Normalization", "Resizing",       "CenterCrop",
    "RandomFlip",       "RandomRotation", "RandomTranslation", "RandomZoom",
    "RandomContrast",   "Conv2D",        "Flatten",        "Dense"};

static void loaded_model(const char *file, const char *fixture_name, int save) {
    kc_model *m = NULL;
    KC_CHECK(kc_load(file, &m));
    cr_assert_eq(kc_layer_count(m), 12);
    float first[64], again[64];
    predict_as(m, fixture_name, first);
    if (save) { /* kerac's files: build/prep_saved.* (gen_keras_prep_fixtures.py check) */
        const char *paths[] = {"build/prep_saved.keras", "build/prep_saved.h5"};
        for (int i = 0; i < 2; i++) {
            KC_CHECK(kc_save(m, paths[i]));
            kc_model *r = NULL;
            KC_CHECK(kc_load(paths[i], &r));
            predict_as(r, fixture_name, again);
            cr_expect(!memcmp(first, again, sizeof(float) * 12), "%s: reloaded predicts otherwise",
                      paths[i]);
            kc_model_free(r);
        }
    }
    kc_model_free(m);
}

Test(prep_files, keras3_model) { loaded_model(DIR "model.keras", "model", 1); }
Test(prep_files, tf_keras2_h5) { loaded_model(DIR "model_tf2.h5", "model_tf2", 0); }

Test(prep_files, json_fields_as_keras) {
    kc_model *m = NULL;
    KC_CHECK(kc_load(DIR "model.keras", &m));
    for (int i = 0; i < 12; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", kc_layer_name(m, i));
        cr_expect(kc_get_layer(m, buf) != NULL, "layer %d %s", i, buf);
    }
    const char *dir = tu_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/m.keras", dir);
    KC_CHECK(kc_save(m, path));
    kc_model_free(m);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "unzip -p %s config.json > %s/config.json", path, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *json = tu_read_text(path);
    for (size_t i = 0; i < sizeof model_classes / sizeof *model_classes; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\"class_name\":\"%s\"", model_classes[i]);
        cr_expect(strstr(json, needle), "config.json lacks %s", needle);
    }
    const char *fields[] = {"\"factor\":[-0.1,0.1]", "\"height_factor\":0.1",
                            "\"width_factor\":[-0.2,0.1]", "\"value_range\":[0,255]",
                            "\"factor\":[0,0.3]", "\"seed\":3", "\"antialias\":false",
                            "\"mode\":\"horizontal_and_vertical\"", "\"axis\":[-1]",
                            "\"scale\":0.00784313"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        cr_expect(strstr(json, fields[i]), "config.json lacks %s", fields[i]);
    free(json);
}

/* Normalization with mean and variance in its config (no variables): Keras's nested lists
 * round-trip through .keras and .h5 */
Test(prep_files, normalization_given_round_trip) {
    const float m[] = {1, 2, 3, 4}, v[] = {1, 4, 9, 16};
    kc_model *mod = kc_sequential(kc_shape2(3, 4));
    KC_CHECK(kc_add(mod, kc_normalization(&(kc_normalization_opts){
                             .axes = {1, 2}, .n_axes = 2, .mean = m, .variance = v, .n_mean = 4})));
    cr_expect_eq(kc_count_params(mod), 0);
    float x[12], want[12], got[12];
    for (int i = 0; i < 12; i++) x[i] = (float)i;
    KC_CHECK(kc_predict(mod, x, 1, want));
    const char *dir = tu_tmpdir(), *ext[] = {"keras", "h5"};
    for (int k = 0; k < 2; k++) {
        char path[128];
        snprintf(path, sizeof path, "%s/n.%s", dir, ext[k]);
        KC_CHECK(kc_save(mod, path));
        kc_model *r = NULL;
        KC_CHECK(kc_load(path, &r));
        KC_CHECK(kc_predict(r, x, 1, got));
        cr_expect(!memcmp(want, got, sizeof got), "%s: reloaded predicts otherwise", path);
        kc_model_free(r);
    }
    for (int i = 0; i < 12; i++)
        cr_expect(fabsf(want[i] - (x[i] - m[i % 4]) / sqrtf(v[i % 4])) < 1e-6f, "y[%d]", i);
    kc_model_free(mod);
}

/* ---- a model with them trains ---- */

Test(prep_train, mnist_shaped) {
    enum { N = 64 };
    kc_set_random_seed(7);
    uint8_t *x = malloc(N * 28 * 28);
    uint8_t y[N];
    for (int i = 0; i < N * 28 * 28; i++) x[i] = (uint8_t)((i * 2654435761u) >> 24);
    for (int i = 0; i < N; i++) y[i] = (uint8_t)(i % 10);
    kc_model *m = kc_sequential(kc_shape3(28, 28, 1));
    KC_CHECK(kc_add(m, kc_rescaling(1 / 255.0f, 0)));
    KC_CHECK(kc_add(m, kc_random_flip("horizontal", NULL)));
    KC_CHECK(kc_add(m, kc_random_rotation(-0.05f, 0.05f, NULL)));
    KC_CHECK(kc_add(m, kc_random_zoom(-0.1f, 0.1f, NULL, NULL)));
    KC_CHECK(kc_add(m, kc_conv2d(4, 3, KC_RELU)));
    KC_CHECK(kc_add(m, kc_flatten()));
    KC_CHECK(kc_add(m, kc_dense(10, KC_SOFTMAX)));
    KC_CHECK(kc_compile(m, KC_SPARSE_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), 0));
    kc_dataset ds = {.count = N, .x_shape = kc_shape3(28, 28, 1), .x_dtype = KC_UINT8, .x = x,
                     .y_dtype = KC_UINT8, .y = y, .num_classes = 10};
    kc_history *h = NULL;
    KC_CHECK(kc_fit(m, &ds, &(kc_fit_opts){.epochs = 3, .batch_size = 16, .verbose = -1}, &h));
    for (int e = 0; e < h->epochs; e++)
        cr_expect(isfinite(h->loss[e]) && h->loss[e] > 0, "epoch %d loss %g", e, h->loss[e]);
    cr_expect(h->loss[2] < h->loss[0], "the loss did not fall: %g -> %g", h->loss[0], h->loss[2]);
    kc_history_free(h);
    float *xf = malloc(sizeof(float) * 4 * 28 * 28), p1[40], p2[40];
    for (int i = 0; i < 4 * 28 * 28; i++) xf[i] = x[i];
    KC_CHECK(kc_predict(m, xf, 4, p1));
    KC_CHECK(kc_predict(m, xf, 4, p2));
    cr_expect(!memcmp(p1, p2, sizeof p1), "inference must be deterministic");
    free(xf);
    free(x);
    kc_model_free(m);
}
