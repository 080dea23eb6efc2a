/* test_conv.c: Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Reshape and
 * BatchNormalization: finite-difference gradient checks (several shapes, strides, both
 * paddings; a layer in front of each so its input gradient is checked too), shapes, errors,
 * and the engine's invariants (batch splitting, thread counts). */
#include <stdarg.h>

#include "testutil.h"
#include "ops/ops.h" /* kc_gemm_backend */

#define MAX_W 2048

static void fill(float *out, int64_t n, uint32_t seed, float scale) {
    uint32_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        out[i] = scale * ((float)(s >> 8) / 8388608.0f - 1.0f);
    }
}

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
    /* BatchNormalization: gamma near 1, a positive moving variance */
    int64_t pos = 0;
    for (int l = 0; l < kc_layer_count(m); l++) {
        int64_t count = kc_layer_param_count(m, l), train = kc_layer_trainable_count(m, l);
        if (train < count) {
            int64_t c = count / 4;
            for (int64_t i = 0; i < c; i++) {
                w[pos + i] += 1.0f;
                w[pos + 3 * c + i] = 0.5f + w[pos + 3 * c + i] * w[pos + 3 * c + i];
            }
        }
        pos += count;
    }
    KC_CHECK(kc_set_weights(m, w, n));
    return m;
}

/* one-hot targets, sample i of class (3 i + 1) mod classes */
static void targets(float *y, int batch, int classes) {
    memset(y, 0, sizeof(float) * (size_t)(batch * classes));
    for (int i = 0; i < batch; i++) y[i * classes + (3 * i + 1) % classes] = 1.0f;
}

/* Every trainable weight's gradient against (L(w + h) - L(w - h)) / 2h, the loss computed in
 * float32 (rounding ~1e-7 / h) . */
static void fd_check(kc_model *m, int batch, int training, uint32_t seed) {
    int64_t n = kc_count_params(m), x_size = kc_shape_size(kc_input_shape(m));
    int classes = kc_output_shape(m).dims[0];
    float w[MAX_W], g[MAX_W];
    KC_CHECK(kc_get_weights(m, w, n));
    float *y = malloc(sizeof(float) * (size_t)(batch * classes));
    targets(y, batch, classes);
    float *x = malloc(sizeof(float) * (size_t)(batch * x_size));
    fill(x, batch * x_size, seed, 1.0f);
    double loss;
    KC_CHECK(kc_compute_gradients(m, x, y, batch, training, &loss, g, n));
    const double h = 1e-3;
    double largest = 0.0;
    int64_t pos = 0;
    for (int l = 0; l < kc_layer_count(m); l++) {
        int64_t count = kc_layer_param_count(m, l), train = kc_layer_trainable_count(m, l);
        for (int64_t i = pos; i < pos + train; i++) {
            float keep = w[i];
            double lp, lm;
            w[i] = keep + (float)h;
            KC_CHECK(kc_set_weights(m, w, n));
            KC_CHECK(kc_compute_gradients(m, x, y, batch, training, &lp, NULL, 0));
            w[i] = keep - (float)h;
            KC_CHECK(kc_set_weights(m, w, n));
            KC_CHECK(kc_compute_gradients(m, x, y, batch, training, &lm, NULL, 0));
            w[i] = keep;
            double step = (double)(keep + (float)h) - (double)(keep - (float)h);
            double fd = (lp - lm) / step;
            largest = fmax(largest, fabs(g[i]));
            cr_expect(fabs(fd - g[i]) <= 1e-2 * fabs(fd) + 3e-4,
                      "layer %s weight %lld: analytic %.6g, finite difference %.6g",
                      kc_layer_name(m, l), (long long)(i - pos), (double)g[i], fd);
        }
        for (int64_t i = pos + train; i < pos + count; i++)
            cr_expect_eq(g[i], 0.0f, "non-trainable weight %lld has a gradient", (long long)i);
        pos += count;
    }
    KC_CHECK(kc_set_weights(m, w, n));
    cr_assert(largest > 1e-3, "every gradient is below 1e-3: the check tests nothing");
    free(x);
    free(y);
}

#define KS(h, w) .kernel_size = {h, w}
#define ST(h, w) .strides = {h, w}

Test(conv_grad, conv_valid_stride1) {
    kc_model *m = model(kc_shape3(5, 5, 2),
                        kc_conv2d_ex(3, &(kc_conv2d_opts){KS(3, 3), .activation = KC_TANH}),
                        kc_flatten(), kc_dense(3, KC_SOFTMAX), NULL);
    fd_check(m, 3, 1, 1u);
    kc_model_free(m);
}

Test(conv_grad, conv_same_stride2_then_conv) {
    kc_model *m = model(
        kc_shape3(6, 5, 1),
        kc_conv2d_ex(2, &(kc_conv2d_opts){KS(3, 2), ST(2, 2), KC_SAME, KC_SIGMOID}),
        kc_conv2d_ex(3, &(kc_conv2d_opts){KS(2, 2), .padding = KC_SAME, .activation = KC_TANH}),
        kc_flatten(), kc_dense(3, KC_SOFTMAX), NULL);
    fd_check(m, 2, 1, 2u);
    kc_model_free(m);
}

Test(conv_grad, conv_valid_rectangular_strides) {
    kc_model *m = model(kc_shape3(7, 6, 2),
                        kc_conv2d_ex(2, &(kc_conv2d_opts){KS(2, 3), ST(2, 1), KC_VALID, KC_LINEAR}),
                        kc_conv2d_ex(2, &(kc_conv2d_opts){KS(2, 2), ST(1, 2), KC_VALID, KC_TANH}),
                        kc_flatten(), kc_dense(4, KC_SOFTMAX), NULL);
    fd_check(m, 2, 1, 3u);
    kc_model_free(m);
}

Test(conv_grad, conv_same_stride3_large_kernel) {
    kc_model *m = model(kc_shape3(5, 7, 1),
                        kc_conv2d_ex(2, &(kc_conv2d_opts){KS(4, 5), ST(3, 3), KC_SAME, KC_TANH}),
                        kc_conv2d_ex(2, &(kc_conv2d_opts){KS(1, 1), .activation = KC_SIGMOID}),
                        kc_flatten(), kc_dense(3, KC_SOFTMAX), NULL);
    fd_check(m, 2, 1, 4u);
    kc_model_free(m);
}

/* Max pooling: a 1x1 convolution with one input channel in front is monotonic in each
 * output channel when its weights are positive, so the perturbations cannot move a window's
 * maximum; the check then covers the input gradient (through the convolution's weights). */
static void maxpool_case(kc_pool2d_opts opts, int h, int w, uint32_t seed) {
    kc_model *m = model(kc_shape3(h, w, 1),
                        kc_conv2d_ex(2, &(kc_conv2d_opts){KS(1, 1), .activation = KC_LINEAR}),
                        kc_max_pooling2d_ex(&opts), kc_flatten(), kc_dense(3, KC_SOFTMAX), NULL);
    float wt[MAX_W];
    int64_t n = kc_count_params(m);
    KC_CHECK(kc_get_weights(m, wt, n));
    wt[0] = 0.7f, wt[1] = 1.3f; /* positive kernel, any bias */
    KC_CHECK(kc_set_weights(m, wt, n));
    fd_check(m, 2, 1, seed);
    kc_model_free(m);
}

Test(conv_grad, maxpool_valid) { maxpool_case((kc_pool2d_opts){.pool_size = {2}}, 6, 6, 5u); }
Test(conv_grad, maxpool_same_odd) {
    maxpool_case((kc_pool2d_opts){.pool_size = {3, 2}, .strides = {2, 2}, .padding = KC_SAME}, 7, 5, 6u);
}
Test(conv_grad, maxpool_overlapping) {
    maxpool_case((kc_pool2d_opts){.pool_size = {2}, .strides = {1}}, 5, 4, 7u);
}

static void avgpool_case(kc_pool2d_opts opts, int h, int w, uint32_t seed) {
    kc_model *m = model(kc_shape3(h, w, 2),
                        kc_conv2d_ex(2, &(kc_conv2d_opts){KS(2, 2), .activation = KC_TANH}),
                        kc_average_pooling2d_ex(&opts), kc_flatten(), kc_dense(3, KC_SOFTMAX),
                        NULL);
    fd_check(m, 2, 1, seed);
    kc_model_free(m);
}

Test(conv_grad, avgpool_valid) { avgpool_case((kc_pool2d_opts){.pool_size = {2}}, 7, 7, 8u); }
Test(conv_grad, avgpool_same) {
    avgpool_case((kc_pool2d_opts){.pool_size = {3}, .strides = {2}, .padding = KC_SAME}, 6, 7, 9u);
}
Test(conv_grad, avgpool_overlapping_same) {
    avgpool_case((kc_pool2d_opts){.pool_size = {2}, .strides = {1}, .padding = KC_SAME}, 4, 5, 10u);
}

Test(conv_grad, global_average_pooling) {
    kc_model *m = model(kc_shape3(4, 5, 2),
                        kc_conv2d_ex(3, &(kc_conv2d_opts){KS(3, 3), .padding = KC_SAME,
                                                          .activation = KC_TANH}),
                        kc_global_average_pooling2d(), kc_dense(3, KC_SOFTMAX), NULL);
    fd_check(m, 3, 1, 11u);
    kc_model_free(m);
}

Test(conv_grad, batchnorm_after_conv_training_and_inference) {
    for (int training = 1; training >= 0; training--) {
        kc_model *m = model(kc_shape3(4, 4, 2),
                            kc_conv2d_ex(3, &(kc_conv2d_opts){KS(2, 2), .activation = KC_TANH}),
                            kc_batch_normalization(NULL), kc_activation(KC_TANH), kc_flatten(),
                            kc_dense(3, KC_SOFTMAX), NULL);
        fd_check(m, 4, training, 12u);
        kc_model_free(m);
    }
}

Test(conv_grad, batchnorm_after_dense) {
    for (int training = 1; training >= 0; training--) {
        kc_model *m = model(kc_shape1(5), kc_dense(4, KC_LINEAR),
                            kc_batch_normalization(&(kc_batchnorm_opts){.momentum = 0.5f,
                                                                        .epsilon = 0.1f}),
                            kc_dense(3, KC_SOFTMAX), NULL);
        fd_check(m, 5, training, 13u);
        kc_model_free(m);
    }
}

Test(conv_grad, reshape_between_dense_and_conv) {
    kc_model *m = model(kc_shape1(4), kc_dense(12, KC_TANH), kc_reshape(kc_shape3(2, -1, 2)),
                        kc_conv2d_ex(2, &(kc_conv2d_opts){KS(2, 2), .activation = KC_TANH}),
                        kc_flatten(), kc_dense(3, KC_SOFTMAX), NULL);
    cr_expect_eq(kc_layer_param_count(m, 1), 0);
    fd_check(m, 3, 1, 14u);
    kc_model_free(m);
}

/* ---- shapes and errors --------------------------------------------------------------------- */

static void expect_shape(kc_model *m, int layer, int d0, int d1, int d2) {
    (void)layer;
    kc_shape s = kc_output_shape(m);
    cr_expect(s.rank == 3 && s.dims[0] == d0 && s.dims[1] == d1 && s.dims[2] == d2,
              "output (%d, %d, %d), want (%d, %d, %d)", s.dims[0], s.dims[1], s.dims[2], d0, d1,
              d2);
}

Test(conv_shape, output_shapes_as_keras) {
    struct {
        int h, kh, s, same, want;
    } cases[] = {{28, 3, 1, 0, 26}, {28, 3, 1, 1, 28}, {28, 3, 2, 0, 13}, {28, 3, 2, 1, 14},
                 {7, 2, 2, 0, 3},   {7, 2, 2, 1, 4},   {5, 5, 1, 0, 1},   {5, 4, 3, 1, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kc_model *m = kc_sequential(kc_shape3(cases[i].h, cases[i].h, 1));
        KC_CHECK(kc_add(m, kc_conv2d_ex(5, &(kc_conv2d_opts){
                                               .kernel_size = {cases[i].kh},
                                               .strides = {cases[i].s},
                                               .padding = cases[i].same ? KC_SAME : KC_VALID})));
        expect_shape(m, 0, cases[i].want, cases[i].want, 5);
        kc_model_free(m);
        m = kc_sequential(kc_shape3(cases[i].h, cases[i].h, 5));
        KC_CHECK(kc_add(m, kc_max_pooling2d_ex(&(kc_pool2d_opts){
                               .pool_size = {cases[i].kh},
                               .strides = {cases[i].s},
                               .padding = cases[i].same ? KC_SAME : KC_VALID})));
        expect_shape(m, 0, cases[i].want, cases[i].want, 5);
        kc_model_free(m);
    }
    /* pool strides default to pool_size */
    kc_model *m = kc_sequential(kc_shape3(11, 9, 4));
    KC_CHECK(kc_add(m, kc_max_pooling2d(2)));
    expect_shape(m, 0, 5, 4, 4);
    KC_CHECK(kc_add(m, kc_average_pooling2d_ex(&(kc_pool2d_opts){.pool_size = {2}, .padding = KC_SAME})));
    expect_shape(m, 1, 3, 2, 4);
    KC_CHECK(kc_add(m, kc_global_average_pooling2d()));
    cr_expect(kc_output_shape(m).rank == 1 && kc_output_shape(m).dims[0] == 4);
    kc_model_free(m);
}

Test(conv_shape, params_as_keras) {
    /* keras.io's simple MNIST convnet: 34,826 parameters */
    kc_model *m = kc_sequential(kc_shape3(28, 28, 1));
    kc_add(m, kc_conv2d(32, 3, KC_RELU));
    kc_add(m, kc_max_pooling2d(2));
    kc_add(m, kc_conv2d(64, 3, KC_RELU));
    kc_add(m, kc_max_pooling2d(2));
    kc_add(m, kc_flatten());
    kc_add(m, kc_dropout(0.5f));
    KC_CHECK(kc_add(m, kc_dense(10, KC_SOFTMAX)));
    cr_expect_eq(kc_count_params(m), 34826);
    kc_model_free(m);
    /* Keras's mnist_cnn.py: 1,199,882 */
    m = kc_sequential(kc_shape3(28, 28, 1));
    kc_add(m, kc_conv2d(32, 3, KC_RELU));
    kc_add(m, kc_conv2d(64, 3, KC_RELU));
    kc_add(m, kc_max_pooling2d(2));
    kc_add(m, kc_dropout(0.25f));
    kc_add(m, kc_flatten());
    kc_add(m, kc_dense(128, KC_RELU));
    kc_add(m, kc_dropout(0.5f));
    KC_CHECK(kc_add(m, kc_dense(10, KC_SOFTMAX)));
    cr_expect_eq(kc_count_params(m), 1199882);
    kc_model_free(m);
}

Test(conv_shape, summary_counts_non_trainable) {
    kc_model *m = kc_sequential(kc_shape3(8, 8, 3));
    kc_add(m, kc_conv2d(4, 3, KC_RELU));
    KC_CHECK(kc_add(m, kc_batch_normalization(NULL)));
    cr_expect_eq(kc_count_params(m), 3 * 3 * 3 * 4 + 4 + 16);
    cr_expect_eq(kc_layer_trainable_count(m, 1), 8);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    KC_CHECK(kc_summary(m, f));
    fclose(f);
    cr_expect(strstr(text, "batch_normalization (BatchNo (None, 6, 6, 4)") != NULL, "%s", text);
    cr_expect(strstr(text, "Total params: 128\nTrainable params: 120\nNon-trainable params: 8\n"),
              "%s", text);
    free(text);
    kc_model_free(m);
}

Test(conv_shape, bad_layers_are_errors) {
    kc_model *m = kc_sequential(kc_shape1(784));
    KC_EXPECT_ERR(kc_add(m, kc_conv2d(8, 3, KC_RELU)), KC_EINVAL, "height, width, channels");
    kc_model_free(m);
    m = kc_sequential(kc_shape3(4, 4, 1));
    KC_EXPECT_ERR(kc_add(m, kc_conv2d(8, 5, KC_RELU)), KC_EINVAL, "does not fit");
    kc_model_free(m);
    m = kc_sequential(kc_shape3(4, 4, 1));
    KC_EXPECT_ERR(kc_add(m, kc_conv2d(0, 3, KC_RELU)), KC_EINVAL, "filters must be positive");
    kc_model_free(m);
    m = kc_sequential(kc_shape3(4, 4, 1));
    KC_EXPECT_ERR(kc_add(m, kc_conv2d_ex(2, &(kc_conv2d_opts){.kernel_size = {3}, .padding = 7})),
                  KC_EINVAL, "padding");
    kc_model_free(m);
    m = kc_sequential(kc_shape3(4, 4, 1));
    KC_EXPECT_ERR(kc_add(m, kc_conv2d_ex(2, &(kc_conv2d_opts){.kernel_size = {3}, .strides = {-1}})),
                  KC_EINVAL, "strides");
    kc_model_free(m);
    m = kc_sequential(kc_shape3(1, 4, 1));
    KC_EXPECT_ERR(kc_add(m, kc_max_pooling2d(2)), KC_EINVAL, "does not fit");
    kc_model_free(m);
    m = kc_sequential(kc_shape2(4, 4));
    KC_EXPECT_ERR(kc_add(m, kc_average_pooling2d(2)), KC_EINVAL, "height, width, channels");
    kc_model_free(m);
    m = kc_sequential(kc_shape1(10));
    KC_EXPECT_ERR(kc_add(m, kc_reshape(kc_shape2(3, -1))), KC_EINVAL, "cannot reshape");
    kc_model_free(m);
    m = kc_sequential(kc_shape1(12));
    KC_EXPECT_ERR(kc_add(m, kc_reshape(kc_shape2(-1, -1))), KC_EINVAL, "at most one -1");
    kc_model_free(m);
    m = kc_sequential(kc_shape1(12));
    KC_EXPECT_ERR(kc_add(m, kc_batch_normalization(&(kc_batchnorm_opts){.epsilon = -1.0f})),
                  KC_EINVAL, "epsilon");
    kc_model_free(m);
    /* data of the wrong per-sample shape */
    m = kc_sequential(kc_shape3(28, 28, 1));
    kc_add(m, kc_conv2d(2, 3, KC_RELU));
    kc_add(m, kc_flatten());
    kc_add(m, kc_dense(10, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_SPARSE_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), 0));
    uint8_t px[2 * 784] = {0}, labels[2] = {1, 2};
    kc_dataset ds = {.count = 2, .x_shape = kc_shape2(28, 28), .x_dtype = KC_UINT8, .x = px,
                     .y_dtype = KC_UINT8, .y = labels, .num_classes = 10};
    KC_EXPECT_ERR(kc_fit(m, &ds, &(kc_fit_opts){.verbose = -1}, NULL), KC_EINVAL,
                  "kc_dataset_reshape");
    KC_CHECK(kc_dataset_reshape(&ds, kc_shape3(28, 28, 1)));
    KC_CHECK(kc_fit(m, &ds, &(kc_fit_opts){.verbose = -1}, NULL));
    kc_model_free(m);
}

/* ---- the engine -------------------------------------------------------------------------- */

static kc_model *mnist_like(void) {
    kc_model *m = kc_sequential(kc_shape3(12, 12, 1));
    kc_add(m, kc_conv2d(8, 3, KC_RELU));
    kc_add(m, kc_max_pooling2d(2));
    kc_add(m, kc_conv2d_ex(16, &(kc_conv2d_opts){.kernel_size = {3}, .padding = KC_SAME,
                                                 .activation = KC_RELU}));
    kc_add(m, kc_batch_normalization(NULL));
    kc_add(m, kc_global_average_pooling2d());
    kc_add(m, kc_dense(10, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), 0));
    return m;
}

/* A sample's prediction does not depend on the batch it is in (same bits), and a batch
 * larger than the pool's chunks gives the gradient of the whole batch. */
Test(conv_engine, predict_per_sample_and_big_batch) {
    kc_set_random_seed(7);
    kc_model *m = mnist_like();
    enum { N = 70 };
    float *x = malloc(sizeof(float) * N * 144), out[N * 10], one[10];
    fill(x, N * 144, 99u, 1.0f);
    KC_CHECK(kc_predict(m, x, N, out));
    for (int i = 0; i < N; i += 13) {
        KC_CHECK(kc_predict(m, x + i * 144, 1, one));
        if (strcmp(kc_gemm_backend(), "openblas"))
            cr_expect(memcmp(one, out + i * 10, sizeof one) == 0, "sample %d differs alone", i);
        else /* OpenBLAS's sums depend on the matrix size */
            for (int j = 0; j < 10; j++)
                cr_expect(fabsf(one[j] - out[i * 10 + j]) <= 1e-6f, "sample %d differs alone", i);
    }
    free(x);
    kc_model_free(m);
}

Test(conv_engine, same_result_for_1_and_2_threads) {
    if (!strcmp(kc_gemm_backend(), "openblas"))
        cr_skip_test("OpenBLAS products depend on the thread count and the batch");
    enum { N = 40 };
    float *x = malloc(sizeof(float) * N * 144), y[N * 10];
    fill(x, N * 144, 5u, 1.0f);
    targets(y, N, 10);
    float *w[2];
    for (int t = 0; t < 2; t++) {
        kc_set_num_threads(t + 1);
        kc_set_random_seed(11);
        kc_model *m = mnist_like();
        for (int step = 0; step < 3; step++) KC_CHECK(kc_train_on_batch(m, x, y, N, NULL));
        int64_t n = kc_count_params(m);
        w[t] = malloc(sizeof(float) * (size_t)n);
        KC_CHECK(kc_get_weights(m, w[t], n));
        if (t) cr_expect(memcmp(w[0], w[1], sizeof(float) * (size_t)n) == 0,
                         "weights after 3 steps differ between 1 and 2 threads");
        kc_model_free(m);
    }
    kc_set_num_threads(0);
    free(w[0]);
    free(w[1]);
    free(x);
}

Test(conv_engine, batchnorm_moving_averages_follow_keras_rule) {
    /* one channel, batch statistics mean 2, variance 1 (biased), momentum 0.9 */
    kc_model *m = kc_sequential(kc_shape1(1));
    kc_add(m, kc_batch_normalization(&(kc_batchnorm_opts){.momentum = 0.9f}));
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(&(kc_sgd_opts){.learning_rate = 0}), 0));
    float x[4] = {1, 3, 1, 3}, y[4] = {0}, w[4];
    KC_CHECK(kc_train_on_batch(m, x, y, 4, NULL));
    KC_CHECK(kc_get_weights(m, w, 4));
    cr_expect_float_eq(w[2], 0.9f * 0.0f + 0.1f * 2.0f, 1e-6, "moving_mean %g", (double)w[2]);
    cr_expect_float_eq(w[3], 0.9f * 1.0f + 0.1f * 1.0f, 1e-6, "moving_variance %g", (double)w[3]);
    /* inference uses them: gamma (x - 0.2) / sqrt(1 + 1e-3) + beta */
    float out[1];
    KC_CHECK(kc_predict(m, x, 1, out));
    float want = w[0] * (1.0f - 0.2f) / sqrtf(1.001f) + w[1];
    cr_expect_float_eq(out[0], want, 1e-6, "%g, want %g", (double)out[0], (double)want);
    /* kc_compute_gradients does not move them */
    KC_CHECK(kc_compute_gradients(m, x, y, 4, 1, NULL, NULL, 0));
    float again[4];
    KC_CHECK(kc_get_weights(m, again, 4));
    cr_expect(memcmp(w, again, sizeof w) == 0);
    kc_model_free(m);
}

/* ---- the pooling kernels against a plain reference ------------------------------------------ */

/* the naive max pooling: the first maximum of each window (a NaN is taken and kept) */
static void naive_max_pool(const kc_window *g, const float *in, float *out, int32_t *arg) {
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++)
            for (int ch = 0; ch < g->c; ch++) {
                float best = 0.0f;
                int32_t at = -1;
                for (int ky = 0; ky < g->kh; ky++)
                    for (int kx = 0; kx < g->kw; kx++) {
                        int y = oy * g->sh + ky - g->pad_t, x = ox * g->sw + kx - g->pad_l;
                        if (y < 0 || y >= g->h || x < 0 || x >= g->w) continue;
                        int32_t i = (y * g->w + x) * g->c + ch;
                        if (at < 0 || in[i] > best || (isnan(in[i]) && !isnan(best)))
                            best = in[i], at = i;
                    }
                int64_t o = ((int64_t)oy * g->ow + ox) * g->c + ch;
                out[o] = best;
                arg[o] = at;
            }
}

Test(conv_kernels, max_pool_matches_the_plain_loop) {
    /* (h, w, c, pool, stride, same): channel counts on both sides of the 16-wide path */
    const int cases[][6] = {{26, 26, 32, 2, 2, 0}, {11, 11, 64, 2, 2, 0}, {7, 5, 16, 3, 2, 1},
                            {6, 6, 16, 2, 1, 0},   {5, 5, 3, 2, 2, 1},    {9, 7, 48, 3, 3, 1}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        kc_window g = {cases[t][0], cases[t][1], cases[t][2], cases[t][3], cases[t][3],
                       cases[t][4], cases[t][4], 0, 0, 0, 0};
        kc_window_axis(g.h, g.kh, g.sh, cases[t][5], &g.oh, &g.pad_t);
        kc_window_axis(g.w, g.kw, g.sw, cases[t][5], &g.ow, &g.pad_l);
        int64_t n_in = (int64_t)g.h * g.w * g.c, n_out = (int64_t)g.oh * g.ow * g.c;
        float *in = malloc(sizeof(float) * n_in), *out = malloc(sizeof(float) * n_out),
              *want = malloc(sizeof(float) * n_out), *dout = malloc(sizeof(float) * n_out),
              *din = malloc(sizeof(float) * n_in), *din_want = calloc(n_in, sizeof(float));
        int32_t *arg = malloc(sizeof(int32_t) * n_out), *arg_want = malloc(sizeof(int32_t) * n_out);
        fill(in, n_in, 31u + (uint32_t)t, 1.0f);
        for (int64_t i = 0; i < n_in; i += 7) in[i] = in[i / 2]; /* ties */
        in[5] = NAN;
        fill(dout, n_out, 77u, 1.0f);
        kc_max_pool(&g, in, 1, out, arg);
        naive_max_pool(&g, in, want, arg_want);
        for (int64_t i = 0; i < n_out; i++) {
            cr_expect(arg[i] == arg_want[i], "case %zu output %lld: position %d, want %d", t,
                      (long long)i, arg[i], arg_want[i]);
            cr_expect(memcmp(&out[i], &want[i], sizeof(float)) == 0, "case %zu output %lld", t,
                      (long long)i);
            din_want[arg_want[i]] += dout[i];
        }
        fill(din, n_in, 5u, 9.0f); /* garbage: every value must be written */
        kc_max_pool_backward(&g, dout, arg, 1, din);
        for (int64_t i = 0; i < n_in; i++)
            cr_expect(din[i] == din_want[i], "case %zu input gradient %lld: %g, want %g", t,
                      (long long)i, (double)din[i], (double)din_want[i]);
        free(in), free(out), free(want), free(dout), free(din), free(din_want), free(arg),
            free(arg_want);
    }
}
