/* test_keras_conv.c: convolution, pooling, reshape and batch normalization against Keras 3:
 * forward output (inference), loss and gradients (training: batch statistics), and all the
 * weights (moving averages included) after SGD and Adam steps. Fixtures from
 * tests/gen_keras_conv_fixtures.py; each model here is the one that script builds. */
#include "testutil.h"
#include "fixture.h"

#define FIXTURE_DIR "tests/fixtures/keras_conv/"
static void load_fixture(const char *name, fixture *fx) {
    char path[256];
    snprintf(path, sizeof path, FIXTURE_DIR "%s.txt", name);
    tu_fixture_load(path, fx);
}
#define get tu_fixture_get
#define free_fixture tu_fixture_free

/* the models of gen_keras_conv_fixtures.py's CASES */
static kc_model *build(const char *name) {
    kc_model *m = NULL;
    if (!strcmp(name, "conv_valid_maxpool")) {
        m = kc_sequential(kc_shape3(6, 6, 2));
        kc_add(m, kc_conv2d(3, 3, KC_RELU));
        kc_add(m, kc_max_pooling2d(2));
        kc_add(m, kc_flatten());
        kc_add(m, kc_dense(4, KC_SOFTMAX));
    } else if (!strcmp(name, "conv_same_strided_avgpool")) {
        m = kc_sequential(kc_shape3(7, 7, 1));
        kc_add(m, kc_conv2d_ex(4, &(kc_conv2d_opts){.kernel_size = {3, 2}, .strides = {2, 2},
                                                    .padding = KC_SAME, .activation = KC_TANH}));
        kc_add(m, kc_average_pooling2d_ex(
                      &(kc_pool2d_opts){.pool_size = {2}, .strides = {1}, .padding = KC_SAME}));
        kc_add(m, kc_conv2d(2, 1, KC_SIGMOID));
        kc_add(m, kc_global_average_pooling2d());
        kc_add(m, kc_dense(3, KC_SOFTMAX));
    } else if (!strcmp(name, "conv_batchnorm")) {
        m = kc_sequential(kc_shape3(5, 5, 2));
        kc_add(m, kc_conv2d_ex(3, &(kc_conv2d_opts){.kernel_size = {3}, .padding = KC_SAME}));
        kc_add(m, kc_batch_normalization(NULL));
        kc_add(m, kc_activation(KC_RELU));
        kc_add(m, kc_max_pooling2d_ex(&(kc_pool2d_opts){.pool_size = {2}, .padding = KC_SAME}));
        kc_add(m, kc_flatten());
        kc_add(m, kc_dense(3, KC_SOFTMAX));
    } else if (!strcmp(name, "reshape_conv_dense_bn")) {
        m = kc_sequential(kc_shape1(12));
        kc_add(m, kc_reshape(kc_shape3(2, 3, 2)));
        kc_add(m, kc_conv2d(2, 2, KC_RELU));
        kc_add(m, kc_flatten());
        kc_add(m, kc_dense(4, KC_LINEAR));
        kc_add(m, kc_batch_normalization(&(kc_batchnorm_opts){.momentum = 0.9f, .epsilon = 0.01f}));
        kc_add(m, kc_dense(3, KC_SOFTMAX));
    }
    cr_assert_not_null(m);
    return m;
}

static void expect_close(const char *what, const float *got, const float *want, long n,
                         double tol) {
    for (long i = 0; i < n; i++)
        cr_expect(fabs((double)got[i] - want[i]) <= tol * (1.0 + fabs(want[i])),
                  "%s[%ld]: kerac %.9g, keras %.9g", what, i, (double)got[i], (double)want[i]);
}

typedef enum { CHECK_OUTPUT, CHECK_GRADS, CHECK_SGD, CHECK_ADAM } check;

static void run_case(const char *name, check what) {
    fixture fx;
    load_fixture(name, &fx);
    kc_model *m = build(name);
    kc_optimizer *opt = what == CHECK_ADAM ? kc_adam(NULL)
                                           : kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f});
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, opt, 0));
    const tensor *w = get(&fx, "weights"), *x = get(&fx, "x"), *y = get(&fx, "y");
    int64_t n = kc_count_params(m);
    cr_assert_eq(n, w->count, "%s: kerac has %lld weights, keras %ld", name, (long long)n,
                 w->count);
    KC_CHECK(kc_set_weights(m, w->data, n));
    int cols = kc_output_shape(m).dims[0];
    int batch = (int)(y->count / cols);
    float *buf = malloc(sizeof(float) * (size_t)(n > y->count ? n : y->count));
    if (what == CHECK_OUTPUT) {
        KC_CHECK(kc_predict(m, x->data, batch, buf));
        expect_close("output", buf, get(&fx, "output")->data, y->count, 1e-5);
    } else if (what == CHECK_GRADS) {
        double loss;
        KC_CHECK(kc_compute_gradients(m, x->data, y->data, batch, 1, &loss, buf, n));
        float l = (float)loss;
        expect_close("loss", &l, get(&fx, "loss")->data, 1, 1e-5);
        /* trainable weights only: keras's gradients skip the moving averages, kerac's are 0 */
        const tensor *g = get(&fx, "grads");
        float *trainable = malloc(sizeof(float) * (size_t)n);
        int64_t t = 0;
        /* each layer's weights are contiguous; a BatchNormalization's last half is not
         * trained, and keras's gradient list leaves it out */
        int64_t pos = 0;
        for (int l = 0; l < kc_layer_count(m); l++) {
            int64_t count = kc_layer_param_count(m, l), train = kc_layer_trainable_count(m, l);
            for (int64_t i = 0; i < train; i++) trainable[t++] = buf[pos + i];
            for (int64_t i = train; i < count; i++)
                cr_expect_eq(buf[pos + i], 0.0f, "non-trainable weight %lld has a gradient",
                             (long long)(pos + i));
            pos += count;
        }
        cr_assert_eq(t, g->count, "%s: %lld trainable weights, keras %ld gradients", name,
                     (long long)t, g->count);
        expect_close("grads", trainable, g->data, g->count, 2e-5);
        free(trainable);
    } else {
        /* A bias right before a BatchNormalization has a gradient of exactly 0 in theory and
         * of float noise (1e-9) in practice; Adam divides it by its own size, so the step's
         * sign is noise. Those weights are left out of the Adam check. */
        float *grads = malloc(sizeof(float) * (size_t)n), *want = malloc(sizeof(float) * (size_t)n);
        KC_CHECK(kc_compute_gradients(m, x->data, y->data, batch, 1, NULL, grads, n));
        int steps = what == CHECK_ADAM ? 2 : 1;
        for (int s = 0; s < steps; s++) KC_CHECK(kc_train_on_batch(m, x->data, y->data, batch, NULL));
        KC_CHECK(kc_get_weights(m, buf, n));
        const tensor *after = get(&fx, what == CHECK_ADAM ? "after_adam_2" : "after_sgd");
        memcpy(want, after->data, sizeof(float) * (size_t)n);
        int64_t pos = 0, skipped = 0;
        for (int l = 0; l < kc_layer_count(m); l++) {
            for (int64_t i = pos; i < pos + kc_layer_trainable_count(m, l); i++)
                if (what == CHECK_ADAM && fabsf(grads[i]) < 1e-6f) want[i] = buf[i], skipped++;
            pos += kc_layer_param_count(m, l);
        }
        cr_expect(skipped <= 4, "%s: %lld weights with a vanishing gradient", name,
                  (long long)skipped);
        expect_close(after->name, buf, want, n, 2e-5);
        free(grads);
        free(want);
    }
    free(buf);
    kc_model_free(m);
    free_fixture(&fx);
}

#define CASE_TESTS(name)                                                                  \
    Test(keras_conv, name##_output) { run_case(#name, CHECK_OUTPUT); }                     \
    Test(keras_conv, name##_grads) { run_case(#name, CHECK_GRADS); }                       \
    Test(keras_conv, name##_sgd) { run_case(#name, CHECK_SGD); }                           \
    Test(keras_conv, name##_adam) { run_case(#name, CHECK_ADAM); }

CASE_TESTS(conv_valid_maxpool)
CASE_TESTS(conv_same_strided_avgpool)
CASE_TESTS(conv_batchnorm)
CASE_TESTS(reshape_conv_dense_bn)
