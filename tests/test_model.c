/* test_model.c: the Sequential model end to end on tiny synthetic data: building and summary,
 * shape and data checks, fit/evaluate/predict/train_on_batch, NaN handling, seeds, progress lines. */
#include "testutil.h"

/* ---- helpers -------------------------------------------------------------------------------- */

enum { TOY_DIM = 2, TOY_CLASSES = 3 };

/* A learnable toy problem: 2-D points in three well separated Gaussian blobs. Labels cycle
 * 0, 1, 2, ... so every slice (a validation tail, a batch) holds all classes. */
typedef struct {
    int n;
    float *x;       /* (n, 2) */
    float *onehot;  /* (n, 3) */
    uint8_t *label; /* (n) */
} toy;

/* A fixed LCG: the data must not depend on the library's rng or on the seed under test. */
static float toy_uniform(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) + 0.5f) / 16777216.0f;
}

static float toy_gauss(uint32_t *s) {
    float u1 = toy_uniform(s), u2 = toy_uniform(s);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

static toy toy_blobs(int n, uint32_t seed) {
    static const float centers[TOY_CLASSES][TOY_DIM] = {{0.0f, 2.5f}, {2.2f, -1.3f}, {-2.2f, -1.3f}};
    toy t = {n, calloc((size_t)n * TOY_DIM, sizeof(float)),
             calloc((size_t)n * TOY_CLASSES, sizeof(float)), calloc((size_t)n, 1)};
    cr_assert(t.x && t.onehot && t.label);
    for (int i = 0; i < n; i++) {
        int c = i % TOY_CLASSES;
        t.label[i] = (uint8_t)c;
        t.onehot[i * TOY_CLASSES + c] = 1.0f;
        for (int d = 0; d < TOY_DIM; d++)
            t.x[i * TOY_DIM + d] = centers[c][d] + 0.6f * toy_gauss(&seed);
    }
    return t;
}

static void toy_free(toy *t) {
    free(t->x);
    free(t->onehot);
    free(t->label);
}

/* A borrowed view of samples [start, start + count): one-hot float labels, or uint8 class
 * indices (rank-0 y_shape) when sparse. */
static kc_dataset toy_data(const toy *t, int sparse, int64_t start, int64_t count) {
    kc_dataset d = {.count = count, .x_shape = kc_shape1(TOY_DIM), .x_dtype = KC_FLOAT32,
                    .x = t->x + start * TOY_DIM};
    if (sparse) {
        d.y_dtype = KC_UINT8;
        d.y = t->label + start;
        d.num_classes = TOY_CLASSES;
    } else {
        d.y_shape = kc_shape1(TOY_CLASSES);
        d.y_dtype = KC_FLOAT32;
        d.y = t->onehot + start * TOY_CLASSES;
    }
    return d;
}

static kc_dataset toy_all(const toy *t, int sparse) { return toy_data(t, sparse, 0, t->n); }

/* [Dense(hidden, relu) [+ Dropout(dropout)]] + Dense(3, softmax) on 2-D points, compiled with
 * accuracy unless loss is KC_LOSS_NONE. hidden 0 leaves out the hidden layer. */
static kc_model *toy_model(int hidden, float dropout, kc_loss loss, kc_optimizer *opt) {
    kc_model *m = kc_sequential(kc_shape1(TOY_DIM));
    cr_assert_not_null(m);
    if (hidden) KC_CHECK(kc_add(m, kc_dense(hidden, KC_RELU)));
    if (dropout > 0.0f) KC_CHECK(kc_add(m, kc_dropout(dropout)));
    KC_CHECK(kc_add(m, kc_dense(TOY_CLASSES, KC_SOFTMAX)));
    if (loss != KC_LOSS_NONE) KC_CHECK(kc_compile(m, loss, opt, KC_METRIC_ACCURACY));
    else kc_optimizer_free(opt);
    return m;
}

static kc_model *toy_cce(void) {
    return toy_model(16, 0.0f, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL));
}

/* Silent, unshuffled unless asked: most tests want reproducible batches. */
static kc_fit_opts quiet(int batch_size, int epochs) {
    return (kc_fit_opts){.batch_size = batch_size, .epochs = epochs, .verbose = -1, .no_shuffle = 1};
}

static float *weights_of(kc_model *m) {
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n);
    cr_assert_not_null(w);
    KC_CHECK(kc_get_weights(m, w, n));
    return w;
}

static int all_finite(const float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* Everything written to f so far, NUL-terminated. */
static char *slurp(FILE *f) {
    fflush(f);
    long size = ftell(f);
    cr_assert_geq(size, 0);
    char *text = malloc((size_t)size + 1);
    cr_assert_not_null(text);
    rewind(f);
    cr_assert_eq(fread(text, 1, (size_t)size, f), (size_t)size);
    text[size] = 0;
    return text;
}

/* Splits text into at most max lines in place (without the '\n'); returns the count. */
static int split_lines(char *text, char **lines, int max) {
    int n = 0;
    for (char *p = text; *p && n < max; n++) {
        lines[n] = p;
        char *nl = strchr(p, '\n');
        if (!nl) return n + 1;
        *nl = 0;
        p = nl + 1;
    }
    return n;
}

/* ---- summary ---------------------------------------------------------------------------------- */

/* The network of the Keras MNIST MLP example: 784-512-drop-512-drop-10. */
static kc_model *mnist_mlp(void) {
    kc_model *m = kc_sequential(kc_shape1(784));
    cr_assert_not_null(m);
    KC_CHECK(kc_add(m, kc_dense(512, KC_RELU)));
    KC_CHECK(kc_add(m, kc_dropout(0.2f)));
    KC_CHECK(kc_add(m, kc_dense(512, KC_RELU)));
    KC_CHECK(kc_add(m, kc_dropout(0.2f)));
    KC_CHECK(kc_add(m, kc_dense(10, KC_SOFTMAX)));
    return m;
}

Test(summary, mnist_mlp_matches_keras2) {
    kc_model *m = mnist_mlp();
    cr_assert_eq(kc_count_params(m), 669706);
    cr_assert_eq(kc_layer_count(m), 5);
    static const char *const names[] = {"dense", "dropout", "dense_1", "dropout_1", "dense_2"};
    for (int i = 0; i < 5; i++) cr_assert_str_eq(kc_layer_name(m, i), names[i]);
    cr_assert_null(kc_layer_name(m, 5));
    cr_assert_null(kc_layer_name(m, -1));

    /* Keras 2's model.summary(), trailing spaces included: table rows are 65 wide */
    static const char *const want[] = {
        "Model: \"sequential\"",
        "_________________________________________________________________",
        "Layer (type)                 Output Shape              Param #   ",
        "=================================================================",
        "dense (Dense)                (None, 512)               401920    ",
        "_________________________________________________________________",
        "dropout (Dropout)            (None, 512)               0         ",
        "_________________________________________________________________",
        "dense_1 (Dense)              (None, 512)               262656    ",
        "_________________________________________________________________",
        "dropout_1 (Dropout)          (None, 512)               0         ",
        "_________________________________________________________________",
        "dense_2 (Dense)              (None, 10)                5130      ",
        "=================================================================",
        "Total params: 669,706",
        "Trainable params: 669,706",
        "Non-trainable params: 0",
        "_________________________________________________________________",
    };
    enum { N = sizeof want / sizeof want[0] };
    for (int i = 1; i < 14; i++) cr_assert_eq(strlen(want[i]), 65, "want[%d] is not 65 wide", i);

    FILE *f = tmpfile();
    cr_assert_not_null(f);
    KC_CHECK(kc_summary(m, f));
    char *text = slurp(f);
    cr_assert(strstr(text, "dense (Dense)                (None, 512)               401920"), "%s", text);
    cr_assert(strstr(text, "dropout_1 (Dropout)"));
    cr_assert(text[strlen(text) - 1] == '\n', "the table ends with a newline");
    char *lines[N + 2];
    int n = split_lines(text, lines, N + 2);
    cr_assert_eq(n, N, "%d lines, want %d", n, (int)N);
    for (int i = 0; i < N; i++) cr_assert_str_eq(lines[i], want[i], "line %d", i + 1);
    free(text);
    fclose(f);
    /* summary neither needs nor creates weights: layers can still be added */
    KC_CHECK(kc_add(m, kc_activation(KC_LINEAR)));
    kc_model_free(m);
}

Test(summary, errors) {
    kc_model *m = kc_sequential(kc_shape1(4));
    FILE *f = tmpfile();
    KC_EXPECT_ERR(kc_summary(m, f), KC_ESTATE, "no layers");
    KC_EXPECT_ERR(kc_summary(NULL, f), KC_EINVAL, "model is NULL");
    cr_assert_eq(ftell(f), 0, "a failed summary writes nothing");
    fclose(f);
    kc_model_free(m);
}

/* ---- building: shapes that do not chain, bad layer options ------------------------------------- */

Test(build, dense_on_2d_input_applies_to_the_last_axis) {
    /* Keras's Dense on (28, 28): each of the 28 rows through a (28, 512) kernel */
    kc_model *m = kc_sequential(kc_shape2(28, 28));
    KC_CHECK(kc_add(m, kc_dense(512, KC_RELU)));
    cr_assert_eq(kc_output_shape(m).rank, 2);
    cr_assert_eq(kc_output_shape(m).dims[0], 28);
    cr_assert_eq(kc_output_shape(m).dims[1], 512);
    cr_assert_eq(kc_count_params(m), 28 * 512 + 512);
    kc_model_free(m);
    /* a None dimension must not reach Dense's last axis (through Flatten: Keras's error) */
    m = kc_sequential(kc_shape2(KC_NONE, 28));
    KC_CHECK(kc_add(m, kc_flatten()));
    KC_EXPECT_ERR(kc_add(m, kc_dense(512, KC_RELU)), KC_EINVAL, "layer dense (Dense)");
    cr_assert(strstr(kc_last_error(), "(None)"), "%s", kc_last_error());
    cr_assert(strstr(kc_last_error(), "should be defined"), "%s", kc_last_error());
    /* the chain may be checked once at the end: later adds and compile repeat the first error */
    KC_EXPECT_ERR(kc_add(m, kc_dense(10, KC_SOFTMAX)), KC_EINVAL, "(None)");
    KC_EXPECT_ERR(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY),
                  KC_EINVAL, "kc_compile");
    cr_assert(strstr(kc_last_error(), "layer dense (Dense)"), "%s", kc_last_error());
    cr_assert(strstr(kc_last_error(), "(None)"), "%s", kc_last_error());
    cr_assert_eq(kc_layer_count(m), 1, "the failed layers were not kept (Flatten was)");
    kc_model_free(m);
}

Test(build, flatten_then_dense) {
    kc_model *m = kc_sequential(kc_shape2(28, 28));
    KC_CHECK(kc_add(m, kc_flatten()));
    kc_shape s = kc_output_shape(m);
    cr_assert(s.rank == 1 && s.dims[0] == 784, "flatten gives (784), got rank %d", s.rank);
    KC_CHECK(kc_add(m, kc_dense(10, KC_SOFTMAX)));
    s = kc_output_shape(m);
    cr_assert(s.rank == 1 && s.dims[0] == 10);
    cr_assert_eq(kc_count_params(m), 784 * 10 + 10);
    cr_assert_str_eq(kc_layer_name(m, 0), "flatten");
    cr_assert_str_eq(kc_layer_name(m, 1), "dense");
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY));

    /* data of shape (28, 28) now fits as it is */
    float *x = calloc(2 * 784, sizeof(float)), y[2 * 10] = {[3] = 1, [10 + 7] = 1};
    kc_dataset d = {.count = 2, .x_shape = kc_shape2(28, 28), .x_dtype = KC_FLOAT32, .x = x,
                    .y_shape = kc_shape1(10), .y_dtype = KC_FLOAT32, .y = y};
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &d, NULL, &r));
    /* zero input and zero bias: a uniform softmax, loss log(10) */
    cr_assert(tu_close(r.loss, log(10.0), 1e-5), "loss %g", r.loss);
    free(x);
    kc_model_free(m);
}

Test(build, bad_layer_options) {
    kc_model *m = kc_sequential(kc_shape1(4));
    KC_EXPECT_ERR(kc_add(m, kc_dense(0, KC_RELU)), KC_EINVAL, "units must be positive, got 0");
    cr_assert(strstr(kc_last_error(), "dense"), "%s", kc_last_error());
    kc_model_free(m);

    m = kc_sequential(kc_shape1(4));
    KC_EXPECT_ERR(kc_add(m, kc_dense(-3, KC_RELU)), KC_EINVAL, "got -3");
    kc_model_free(m);

    m = kc_sequential(kc_shape1(4));
    KC_CHECK(kc_add(m, kc_dense(8, KC_RELU)));
    KC_EXPECT_ERR(kc_add(m, kc_dropout(1.5f)), KC_EINVAL, "layer dropout (Dropout)");
    cr_assert(strstr(kc_last_error(), "[0, 1)") && strstr(kc_last_error(), "1.5"), "%s",
              kc_last_error());
    KC_EXPECT_ERR(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(NULL), 0), KC_EINVAL, "1.5");
    kc_model_free(m);

    /* rate 1 would drop everything and divide by zero; NaN is no rate */
    float bad_rates[] = {1.0f, -0.1f, NAN};
    for (int i = 0; i < 3; i++) {
        m = kc_sequential(kc_shape1(4));
        KC_EXPECT_ERR(kc_add(m, kc_dropout(bad_rates[i])), KC_EINVAL, "rate must be in [0, 1)");
        kc_model_free(m);
    }
    m = kc_sequential(kc_shape1(4));
    KC_EXPECT_ERR(kc_add(m, kc_dense(4, (kc_act)99)), KC_EINVAL, "unknown activation 99");
    kc_model_free(m);
}

Test(build, invalid_input_shapes) {
    kc_shape bad[] = {kc_shape1(0), kc_shape2(28, -2), {.rank = 0}, {.rank = 5, .dims = {1, 1, 1, 1}}};
    for (int i = 0; i < 4; i++) {
        kc_model *m = kc_sequential(bad[i]);
        cr_assert_not_null(m, "a bad shape is reported at kc_add, not by a NULL model");
        KC_EXPECT_ERR(kc_add(m, kc_dense(4, KC_RELU)), KC_EINVAL, "invalid input shape");
        KC_EXPECT_ERR(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(NULL), 0), KC_EINVAL,
                      "invalid input shape");
        kc_model_free(m);
    }
}

Test(build, compile_checks) {
    kc_model *m = kc_sequential(kc_shape1(4));
    KC_EXPECT_ERR(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(NULL), 0), KC_ESTATE, "no layers");
    KC_CHECK(kc_add(m, kc_dense(1, KC_SIGMOID)));
    KC_EXPECT_ERR(kc_compile(m, KC_LOSS_NONE, kc_sgd(NULL), 0), KC_EINVAL, "unknown loss");
    KC_EXPECT_ERR(kc_compile(m, KC_BINARY_CROSSENTROPY, kc_sgd(NULL), 4), KC_EINVAL,
                  "unknown metrics");
    /* a one-unit output cannot hold class probabilities */
    KC_EXPECT_ERR(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0), KC_EINVAL,
                  "classes >= 2");
    KC_EXPECT_ERR(kc_compile(m, KC_BINARY_CROSSENTROPY, NULL, 0), KC_EINVAL, "optimizer is NULL");
    KC_CHECK(kc_compile(m, KC_BINARY_CROSSENTROPY, kc_sgd(NULL), KC_METRIC_ACCURACY));
    /* the weights exist now: the chain is closed */
    KC_EXPECT_ERR(kc_add(m, kc_dense(2, KC_RELU)), KC_ESTATE, "already exist");
    /* compiling again replaces the optimizer */
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_adam(NULL), 0));
    kc_model_free(m);
}

/* ---- call order ------------------------------------------------------------------------------ */

Test(state, fit_and_evaluate_need_compile) {
    toy t = toy_blobs(12, 1);
    kc_dataset d = toy_all(&t, 0);
    kc_model *m = toy_model(8, 0.0f, KC_LOSS_NONE, NULL);
    kc_history *h = (kc_history *)&h; /* must be reset to NULL */
    kc_fit_opts o = quiet(4, 1);
    KC_EXPECT_ERR(kc_fit(m, &d, &o, &h), KC_ESTATE, "kc_compile");
    cr_assert_null(h);
    kc_metrics r;
    KC_EXPECT_ERR(kc_evaluate(m, &d, NULL, &r), KC_ESTATE, "kc_compile");
    KC_EXPECT_ERR(kc_train_on_batch(m, t.x, t.onehot, 4, NULL), KC_ESTATE, "kc_compile");
    /* predict is inference only: it needs weights, not a loss */
    float out[12 * TOY_CLASSES];
    KC_CHECK(kc_predict(m, t.x, 12, out));
    kc_model_free(m);
    toy_free(&t);
}

/* ---- data that does not match the model -------------------------------------------------------- */

/* A 784-input softmax model compiled with loss, for the data checks. */
static kc_model *flat784(kc_loss loss) {
    kc_model *m = kc_sequential(kc_shape1(784));
    KC_CHECK(kc_add(m, kc_dense(3, KC_SOFTMAX)));
    KC_CHECK(kc_compile(m, loss, kc_sgd(NULL), KC_METRIC_ACCURACY));
    return m;
}

Test(data_check, x_shape_mismatch) {
    kc_model *m = flat784(KC_CATEGORICAL_CROSSENTROPY);
    uint8_t *x = calloc(4 * 784, 1);
    float y[4 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0};
    kc_dataset d = {.count = 4, .x_shape = kc_shape2(28, 28), .x_dtype = KC_UINT8, .x = x,
                    .x_scale = 1.0f / 255, .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = y};
    kc_fit_opts o = quiet(2, 1);
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "(28, 28)");
    cr_assert(strstr(kc_last_error(), "(784)") && strstr(kc_last_error(), "kc_dataset_reshape"),
              "%s", kc_last_error());
    KC_EXPECT_ERR(kc_evaluate(m, &d, NULL, NULL), KC_EINVAL, "kc_dataset_reshape");
    /* a different number of values: reshaping cannot help, so it is not suggested */
    d.x_shape = kc_shape2(28, 27);
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "(28, 27)");
    cr_assert_null(strstr(kc_last_error(), "kc_dataset_reshape"), "%s", kc_last_error());
    /* after the reshape the same bytes train */
    d.x_shape = kc_shape1(784);
    KC_CHECK(kc_fit(m, &d, &o, NULL));
    /* only uint8, int32 and float32 data */
    d.x_dtype = (kc_dtype)7;
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "uint8, int32 or float32");
    free(x);
    kc_model_free(m);
}

Test(data_check, labels_do_not_fit_the_loss) {
    toy t = toy_blobs(12, 2);
    kc_fit_opts o = quiet(4, 1);

    kc_model *m = toy_cce();
    kc_dataset sparse = toy_all(&t, 1);
    KC_EXPECT_ERR(kc_fit(m, &sparse, &o, NULL), KC_EINVAL, "kc_to_categorical(ds, 3)");
    cr_assert(strstr(kc_last_error(), "categorical_crossentropy"), "%s", kc_last_error());

    /* one-hot rows of 5 for a 3-class model */
    float *wide = calloc(12 * 5, sizeof(float));
    kc_dataset d = toy_all(&t, 0);
    d.y_shape = kc_shape1(5);
    d.y = wide;
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "(5)");
    cr_assert(strstr(kc_last_error(), "(3)"), "%s", kc_last_error());
    KC_EXPECT_ERR(kc_evaluate(m, &d, NULL, NULL), KC_EINVAL, "(5)");

    /* float targets must be float32 */
    d = toy_all(&t, 0);
    d.y_dtype = KC_INT32;
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "targets");
    kc_model_free(m);

    /* the other way round: one-hot rows for the sparse loss */
    m = toy_model(8, 0.0f, KC_SPARSE_CATEGORICAL_CROSSENTROPY, kc_adam(NULL));
    d = toy_all(&t, 0);
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "needs class indices");
    kc_model_free(m);
    free(wide);
    toy_free(&t);
}

Test(data_check, sparse_label_out_of_range) {
    toy t = toy_blobs(12, 3);
    kc_model *m = toy_model(8, 0.0f, KC_SPARSE_CATEGORICAL_CROSSENTROPY, kc_adam(NULL));
    float *before = weights_of(m);
    t.label[7] = 3; /* classes are 0, 1, 2 */
    kc_dataset d = toy_all(&t, 1);
    kc_fit_opts o = quiet(4, 1);
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "label 3 of sample 7");
    cr_assert(strstr(kc_last_error(), "[0, 3)"), "%s", kc_last_error());
    KC_EXPECT_ERR(kc_evaluate(m, &d, NULL, NULL), KC_EINVAL, "label 3 of sample 7");
    /* int32 labels are read as int32: a negative one is out of range too */
    int32_t labels[12] = {0, 1, 2, 0, 1, -1, 0, 1, 2, 0, 1, 2};
    d.y_dtype = KC_INT32;
    d.y = labels;
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "label -1 of sample 5");
    float *after = weights_of(m);
    cr_assert_arr_eq(before, after, sizeof(float) * (size_t)kc_count_params(m),
                     "rejected data must not train");
    /* kc_train_on_batch takes float class indices: fractions and out-of-range values fail */
    float y_bad[4] = {0, 1, 2.5f, 0};
    KC_EXPECT_ERR(kc_train_on_batch(m, t.x, y_bad, 4, NULL), KC_EINVAL, "label 2.5 of sample 2");
    y_bad[2] = 3;
    KC_EXPECT_ERR(kc_train_on_batch(m, t.x, y_bad, 4, NULL), KC_EINVAL, "label 3 of sample 2");
    free(before);
    free(after);
    kc_model_free(m);
    toy_free(&t);
}

Test(data_check, empty_or_missing) {
    toy t = toy_blobs(12, 4);
    kc_model *m = toy_cce();
    kc_fit_opts o = quiet(4, 1);
    kc_dataset d = toy_all(&t, 0);
    d.count = 0;
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "empty");
    KC_EXPECT_ERR(kc_evaluate(m, &d, NULL, NULL), KC_EINVAL, "empty");
    d = toy_all(&t, 0);
    d.x = NULL;
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "empty");
    d = toy_all(&t, 0);
    d.y = NULL;
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "no labels");
    KC_EXPECT_ERR(kc_evaluate(m, &d, NULL, NULL), KC_EINVAL, "no labels");
    kc_model_free(m);
    toy_free(&t);
}

Test(data_check, bad_fit_options) {
    toy t = toy_blobs(12, 5);
    kc_model *m = toy_cce();
    kc_dataset d = toy_all(&t, 0);
    kc_fit_opts o = quiet(-1, 1);
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "batch_size");
    o = quiet(4, -2);
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "epochs");
    o = quiet(4, 1);
    o.validation_split = 1.0f;
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "validation_split must be in [0, 1)");
    o.validation_split = NAN;
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "validation_split");
    /* validation data are checked like training data, and the message says which */
    o = quiet(4, 1);
    kc_dataset v = toy_all(&t, 1);
    o.validation = &v;
    KC_EXPECT_ERR(kc_fit(m, &d, &o, NULL), KC_EINVAL, "validation data");
    cr_assert(strstr(kc_last_error(), "kc_to_categorical"), "%s", kc_last_error());
    kc_model_free(m);
    toy_free(&t);
}

/* ---- NaN ------------------------------------------------------------------------------------- */

/* Fits 12 blob points in batches of 4 without shuffling, with a NaN at x[nan_at]; expects
 * KC_ENAN at step `step` of the first epoch, an empty history and finite weights. */
static void check_nan_in_x(int hidden, int nan_at, const char *step) {
    toy t = toy_blobs(12, 6);
    t.x[nan_at] = NAN;
    kc_model *m = toy_model(hidden, 0.0f, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL));
    kc_dataset d = toy_all(&t, 0);
    kc_fit_opts o = quiet(4, 3);
    kc_history *h = NULL;
    KC_EXPECT_ERR(kc_fit(m, &d, &o, &h), KC_ENAN, step);
    cr_assert(strstr(kc_last_error(), "nan"), "%s", kc_last_error());
    cr_assert_not_null(h, "the history comes back on KC_ENAN too");
    cr_assert_eq(h->epochs, 0, "no epoch was completed");
    float *w = weights_of(m);
    /* no step is taken on the batch whose loss is NaN: the weights stay usable */
    cr_assert(all_finite(w, kc_count_params(m)), "the NaN reached the weights");
    free(w);
    kc_history_free(h);
    kc_model_free(m);
    toy_free(&t);
}

Test(nan, in_first_batch_softmax_only) { check_nan_in_x(0, 1, "epoch 1, step 1/3"); }
Test(nan, in_second_batch_softmax_only) { check_nan_in_x(0, 5 * TOY_DIM, "epoch 1, step 2/3"); }
/* the same through a relu layer: relu must pass the NaN on (as TF does), not turn it into 0 */
Test(nan, in_first_batch_through_relu) { check_nan_in_x(8, 1, "epoch 1, step 1/3"); }
Test(nan, in_second_batch_through_relu) { check_nan_in_x(8, 5 * TOY_DIM, "epoch 1, step 2/3"); }

Test(nan, epoch_numbering) {
    /* initial_epoch shifts the numbers in the message */
    toy t = toy_blobs(12, 7);
    t.x[0] = NAN;
    kc_model *m = toy_model(0, 0.0f, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL));
    kc_dataset d = toy_all(&t, 0);
    kc_fit_opts o = quiet(4, 2);
    o.initial_epoch = 5;
    o.epochs = 7; /* Keras: epochs is the index of the last epoch */
    kc_history *h = NULL;
    KC_EXPECT_ERR(kc_fit(m, &d, &o, &h), KC_ENAN, "epoch 6, step 1/3");
    cr_assert_eq(h->epochs, 0);
    kc_history_free(h);
    kc_model_free(m);
    toy_free(&t);
}

Test(nan, divergence_keeps_the_epochs_before) {
    /* y = w x + b on x = 1, y = 0 with MSE and SGD at lr 1024.25: the error is multiplied by
     * about -4096 a step, so the loss overflows after about ten steps of one sample: not in
     * the first epoch of four steps, and long before the twentieth */
    float x[4] = {1, 1, 1, 1}, y[4] = {0};
    kc_model *m = kc_sequential(kc_shape1(1));
    KC_CHECK(kc_add(m, kc_dense(1, KC_LINEAR)));
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(&(kc_sgd_opts){.learning_rate = 1024.25f}), 0));
    KC_CHECK(kc_set_weights(m, (float[]){1, 0}, 2));
    kc_dataset d = {.count = 4, .x_shape = kc_shape1(1), .x_dtype = KC_FLOAT32, .x = x,
                    .y_shape = kc_shape1(1), .y_dtype = KC_FLOAT32, .y = y};
    kc_fit_opts o = quiet(1, 20);
    kc_history *h = NULL;
    kc_status st = kc_fit(m, &d, &o, &h);
    cr_assert_eq(st, KC_ENAN, "%s: %s", kc_status_name(st), kc_last_error());
    cr_assert_not_null(h);
    cr_assert(h->epochs >= 1 && h->epochs < 20, "%d epochs completed", h->epochs);
    char want[64];
    snprintf(want, sizeof want, "at epoch %d, step ", h->epochs + 1);
    cr_assert(strstr(kc_last_error(), want), "\"%s\" lacks \"%s\"", kc_last_error(), want);
    for (int e = 0; e < h->epochs; e++) {
        cr_assert(isfinite(h->loss[e]), "epoch %d loss %g", e + 1, h->loss[e]);
        cr_assert(isnan(h->accuracy[e]), "accuracy is not a metric here");
    }
    kc_history_free(h);
    kc_model_free(m);
}

Test(nan, train_on_batch_and_set_weights) {
    toy t = toy_blobs(4, 8);
    /* no relu: the NaN must reach the loss here (relu is covered by nan::*_through_relu) */
    kc_model *m = toy_model(0, 0.0f, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL));
    float *w = weights_of(m);
    int64_t n = kc_count_params(m);
    float *bad = malloc(sizeof(float) * (size_t)n);
    memcpy(bad, w, sizeof(float) * (size_t)n);
    bad[5] = NAN;
    KC_EXPECT_ERR(kc_set_weights(m, bad, n), KC_EINVAL, "value 5 is");
    bad[5] = 0.0f;
    bad[n - 1] = INFINITY;
    KC_EXPECT_ERR(kc_set_weights(m, bad, n), KC_EINVAL, "weights must be finite");
    KC_EXPECT_ERR(kc_set_weights(m, w, n - 1), KC_EINVAL, "buffer holds");
    KC_EXPECT_ERR(kc_get_weights(m, bad, n + 1), KC_EINVAL, "buffer holds");
    float *now = weights_of(m);
    cr_assert_arr_eq(now, w, sizeof(float) * (size_t)n, "a rejected set_weights changed weights");

    t.x[2] = NAN;
    kc_metrics r;
    KC_EXPECT_ERR(kc_train_on_batch(m, t.x, t.onehot, 4, &r), KC_ENAN, "no step was taken");
    cr_assert(isnan(r.loss));
    free(now);
    now = weights_of(m);
    cr_assert_arr_eq(now, w, sizeof(float) * (size_t)n, "a NaN batch changed the weights");
    free(now);
    free(bad);
    free(w);
    kc_model_free(m);
    toy_free(&t);
}

/* ---- training ------------------------------------------------------------------------------- */

/* Trains the blob model for 30 epochs and checks it learned; returns nothing, asserts all. */
static void check_learns(int sparse, float validation_split) {
    kc_set_random_seed(11);
    toy t = toy_blobs(300, 9);
    kc_loss loss = sparse ? KC_SPARSE_CATEGORICAL_CROSSENTROPY : KC_CATEGORICAL_CROSSENTROPY;
    kc_model *m = toy_model(16, 0.0f, loss, kc_adam(&(kc_adam_opts){.learning_rate = 0.01f}));
    kc_dataset d = toy_all(&t, sparse);
    kc_fit_opts o = {.batch_size = 32, .epochs = 30, .verbose = -1,
                     .validation_split = validation_split};
    kc_history *h = NULL;
    KC_CHECK(kc_fit(m, &d, &o, &h));
    cr_assert_eq(h->epochs, 30);
    cr_assert_lt(h->loss[29], h->loss[0] * 0.5, "loss %g -> %g", h->loss[0], h->loss[29]);
    for (int e = 0; e < 30; e++) {
        cr_assert(isfinite(h->loss[e]) && isfinite(h->accuracy[e]) && h->seconds[e] >= 0);
        cr_assert(h->accuracy[e] >= 0 && h->accuracy[e] <= 1);
        if (validation_split > 0) cr_assert(isfinite(h->val_loss[e]) && isfinite(h->val_accuracy[e]));
        else cr_assert(isnan(h->val_loss[e]) && isnan(h->val_accuracy[e]), "no validation");
    }
    cr_assert_gt(h->accuracy[29], 0.9);
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &d, NULL, &r));
    cr_assert_gt(r.accuracy, 0.9, "accuracy %g", r.accuracy);
    cr_assert_lt(r.loss, 0.3, "loss %g", r.loss);
    if (validation_split > 0) cr_assert_gt(h->val_accuracy[29], 0.9);
    kc_history_free(h);
    kc_model_free(m);
    toy_free(&t);
}

Test(train, blobs_categorical) { check_learns(0, 0.0f); }
Test(train, blobs_categorical_validation_split) { check_learns(0, 0.2f); }
Test(train, blobs_sparse) { check_learns(1, 0.0f); }
Test(train, blobs_sparse_validation_split) { check_learns(1, 0.2f); }

Test(train, uint8_images_scaled_per_batch) {
    /* uint8 x with x_scale evaluates exactly like the same values stored as floats */
    enum { N = 6, F = 5 };
    uint8_t xu[N * F];
    float xf[N * F], y[N * TOY_CLASSES] = {0};
    for (int i = 0; i < N * F; i++) xu[i] = (uint8_t)(i * 37 % 256), xf[i] = xu[i] * (1.0f / 255);
    for (int i = 0; i < N; i++) y[i * TOY_CLASSES + i % TOY_CLASSES] = 1.0f;
    kc_model *m = kc_sequential(kc_shape1(F));
    KC_CHECK(kc_add(m, kc_dense(TOY_CLASSES, KC_SOFTMAX)));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), KC_METRIC_ACCURACY));
    kc_dataset du = {.count = N, .x_shape = kc_shape1(F), .x_dtype = KC_UINT8, .x = xu,
                     .x_scale = 1.0f / 255, .y_shape = kc_shape1(TOY_CLASSES),
                     .y_dtype = KC_FLOAT32, .y = y};
    kc_dataset df = du;
    df.x_dtype = KC_FLOAT32;
    df.x = xf;
    df.x_scale = 0.0f;
    kc_metrics ru, rf;
    KC_CHECK(kc_evaluate(m, &du, NULL, &ru));
    KC_CHECK(kc_evaluate(m, &df, NULL, &rf));
    cr_assert_eq(ru.loss, rf.loss);
    cr_assert_eq(ru.accuracy, rf.accuracy);
    kc_model_free(m);
}

/* ---- determinism ----------------------------------------------------------------------------- */

/* Builds the blob model with Dropout under seed, trains 3 shuffled epochs; returns the
 * initial weights in *init and the final ones in *final, the history in *h. */
static void seeded_run(uint64_t seed, const toy *t, float **init, float **final, kc_history **h) {
    kc_set_random_seed(seed);
    kc_model *m = toy_model(16, 0.5f, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL));
    *init = weights_of(m);
    kc_dataset d = toy_all(t, 0);
    kc_fit_opts o = {.batch_size = 8, .epochs = 3, .verbose = -1};
    KC_CHECK(kc_fit(m, &d, &o, h));
    *final = weights_of(m);
    kc_model_free(m);
}

Test(determinism, same_seed_same_run) {
    toy t = toy_blobs(60, 10);
    float *i1, *f1, *i2, *f2, *i3, *f3;
    kc_history *h1, *h2, *h3;
    seeded_run(123, &t, &i1, &f1, &h1);
    seeded_run(123, &t, &i2, &f2, &h2);
    seeded_run(124, &t, &i3, &f3, &h3);
    size_t bytes = sizeof(float) * (16 * 2 + 16 + 16 * 3 + 3);
    cr_assert_arr_eq(i1, i2, bytes, "same seed, different initial weights");
    cr_assert_arr_eq(f1, f2, bytes, "same seed, different trained weights");
    cr_assert_eq(h1->epochs, 3);
    cr_assert_eq(h2->epochs, 3);
    cr_assert_arr_eq(h1->loss, h2->loss, 3 * sizeof(double));
    cr_assert_arr_eq(h1->accuracy, h2->accuracy, 3 * sizeof(double));
    cr_assert_arr_neq(i1, i3, bytes, "another seed, same initial weights");
    cr_assert_arr_neq(f1, f3, bytes);
    free(i1), free(f1), free(i2), free(f2), free(i3), free(f3);
    kc_history_free(h1), kc_history_free(h2), kc_history_free(h3);
    toy_free(&t);
}

Test(determinism, dropout_is_training_only) {
    /* evaluate and predict run without dropout: two calls agree, and training changes loss */
    toy t = toy_blobs(30, 11);
    kc_model *m = toy_model(16, 0.5f, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL));
    kc_dataset d = toy_all(&t, 0);
    kc_metrics a, b;
    KC_CHECK(kc_evaluate(m, &d, NULL, &a));
    KC_CHECK(kc_evaluate(m, &d, NULL, &b));
    cr_assert_eq(a.loss, b.loss);
    /* with dropout the training-mode loss on the same batch differs from inference */
    double train_loss, infer_loss;
    KC_CHECK(kc_compute_gradients(m, t.x, t.onehot, 30, 1, &train_loss, NULL, 0));
    KC_CHECK(kc_compute_gradients(m, t.x, t.onehot, 30, 0, &infer_loss, NULL, 0));
    cr_assert_neq(train_loss, infer_loss);
    cr_assert(tu_close(infer_loss, a.loss, 1e-6), "%g vs %g", infer_loss, a.loss);
    kc_model_free(m);
    toy_free(&t);
}

/* ---- validation_split and batches --------------------------------------------------------------- */

Test(fit, validation_split_is_the_tail) {
    kc_set_random_seed(5);
    toy t = toy_blobs(8, 12);
    kc_model *m = toy_cce();
    kc_set_random_seed(5);
    kc_model *twin = toy_cce(); /* same initial weights, trained on the head alone */
    kc_dataset all = toy_all(&t, 0), head = toy_data(&t, 0, 0, 6), tail = toy_data(&t, 0, 6, 2);

    /* 8 samples, split 0.25: the last 2 validate, the first 6 train, before any shuffling */
    kc_fit_opts o = quiet(4, 2);
    o.validation_split = 0.25f;
    kc_history *h = NULL, *ht = NULL;
    KC_CHECK(kc_fit(m, &all, &o, &h));
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &tail, NULL, &r));
    cr_assert_eq(h->val_loss[1], r.loss, "val_loss %.9g, evaluate on the tail %.9g",
                 h->val_loss[1], r.loss);
    cr_assert_eq(h->val_accuracy[1], r.accuracy);

    kc_fit_opts ot = quiet(4, 2);
    KC_CHECK(kc_fit(twin, &head, &ot, &ht));
    float *w = weights_of(m), *wt = weights_of(twin);
    cr_assert_arr_eq(w, wt, sizeof(float) * (size_t)kc_count_params(m),
                     "training used samples other than the first 6");
    cr_assert_arr_eq(h->loss, ht->loss, 2 * sizeof(double));

    /* validation_data given explicitly overrides the split */
    kc_history *hv = NULL;
    o.validation = &tail;
    o.validation_split = 0.5f;
    KC_CHECK(kc_fit(twin, &head, &o, &hv));
    KC_CHECK(kc_evaluate(twin, &tail, NULL, &r));
    cr_assert_eq(hv->val_loss[1], r.loss);
    free(w), free(wt);
    kc_history_free(h), kc_history_free(ht), kc_history_free(hv);
    kc_model_free(m), kc_model_free(twin);
    toy_free(&t);
}

Test(fit, validation_split_leaving_no_training) {
    toy t = toy_blobs(10, 13);
    kc_model *m = toy_cce();
    kc_dataset d = toy_all(&t, 0);
    kc_fit_opts o = quiet(4, 1);
    o.validation_split = 0.99f;
    kc_history *h = (kc_history *)&h;
    KC_EXPECT_ERR(kc_fit(m, &d, &o, &h), KC_EINVAL, "empty training");
    cr_assert(strstr(kc_last_error(), "0.99") && strstr(kc_last_error(), "10 samples"), "%s",
              kc_last_error());
    cr_assert_null(h);
    kc_model_free(m);
    toy_free(&t);
}

Test(fit, last_partial_batch_is_kept) {
    /* 10 samples in batches of 4: steps [0,4), [4,8), [8,10) -- the same three steps as
     * kc_train_on_batch on a twin with identical initial weights (no dropout: no rng). */
    toy t = toy_blobs(10, 14);
    kc_optimizer *sgd = kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f, .momentum = 0.5f});
    kc_set_random_seed(21);
    kc_model *m = toy_model(16, 0.0f, KC_CATEGORICAL_CROSSENTROPY, sgd);
    kc_set_random_seed(21);
    kc_model *twin = toy_model(16, 0.0f, KC_CATEGORICAL_CROSSENTROPY,
                               kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f, .momentum = 0.5f}));
    kc_dataset d = toy_all(&t, 0);
    kc_fit_opts o = quiet(4, 1);
    kc_history *h = NULL;
    KC_CHECK(kc_fit(m, &d, &o, &h));

    kc_metrics r[3];
    static const int start[3] = {0, 4, 8}, size[3] = {4, 4, 2};
    for (int s = 0; s < 3; s++)
        KC_CHECK(kc_train_on_batch(twin, t.x + start[s] * TOY_DIM,
                                   t.onehot + start[s] * TOY_CLASSES, size[s], &r[s]));
    float *w = weights_of(m), *wt = weights_of(twin);
    cr_assert_arr_eq(w, wt, sizeof(float) * (size_t)kc_count_params(m),
                     "fit's steps differ from three train_on_batch calls");
    /* the epoch's loss is the sample-weighted mean of the batch losses */
    double want = (r[0].loss * 4 + r[1].loss * 4 + r[2].loss * 2) / 10;
    cr_assert(tu_close(h->loss[0], want, 1e-12), "loss %.12g, want %.12g", h->loss[0], want);
    double acc = (r[0].accuracy * 4 + r[1].accuracy * 4 + r[2].accuracy * 2) / 10;
    cr_assert(tu_close(h->accuracy[0], acc, 1e-12), "accuracy %g, want %g", h->accuracy[0], acc);
    free(w), free(wt);
    kc_history_free(h);
    kc_model_free(m), kc_model_free(twin);
    toy_free(&t);
}

/* ---- predict -------------------------------------------------------------------------------- */

Test(predict, softmax_rows_sum_to_one) {
    toy t = toy_blobs(20, 15);
    kc_model *m = toy_cce();
    kc_dataset d = toy_all(&t, 0);
    kc_fit_opts o = quiet(5, 2);
    KC_CHECK(kc_fit(m, &d, &o, NULL));
    float out[20 * TOY_CLASSES];
    KC_CHECK(kc_predict(m, t.x, 20, out));
    for (int i = 0; i < 20; i++) {
        double sum = 0;
        for (int j = 0; j < TOY_CLASSES; j++) {
            float p = out[i * TOY_CLASSES + j];
            cr_assert(p >= 0.0f && p <= 1.0f, "p[%d][%d] = %g", i, j, p);
            sum += p;
        }
        cr_assert(tu_close(sum, 1.0, 1e-6), "row %d sums to %.9g", i, sum);
    }
    kc_model_free(m);
    toy_free(&t);
}

Test(predict, matches_evaluate) {
    /* the evaluate loss recomputed by hand from predict's outputs (Keras's clipped
     * crossentropy) and its accuracy from their argmax */
    enum { N = 40 };
    toy t = toy_blobs(N, 16);
    kc_set_random_seed(3);
    kc_model *m = toy_model(16, 0.3f, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL));
    kc_dataset d = toy_all(&t, 0);
    kc_fit_opts o = quiet(8, 2);
    KC_CHECK(kc_fit(m, &d, &o, NULL));
    float out[N * TOY_CLASSES];
    KC_CHECK(kc_predict(m, t.x, N, out));
    double loss = 0, correct = 0;
    for (int i = 0; i < N; i++) {
        const float *p = out + i * TOY_CLASSES;
        double q = fmin(fmax(p[t.label[i]], 1e-7), 1 - 1e-7);
        loss -= log(q);
        int best = 0;
        for (int j = 1; j < TOY_CLASSES; j++) best = p[j] > p[best] ? j : best;
        correct += best == t.label[i];
    }
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &d, &(kc_evaluate_opts){.batch_size = 7}, &r));
    cr_assert(tu_close(r.loss, loss / N, 1e-5), "evaluate %.9g, by hand %.9g", r.loss, loss / N);
    cr_assert_eq(r.accuracy, correct / N);

    /* more samples than predict's internal batch: the same rows as one at a time */
    enum { BIG = 600 };
    float *x = malloc(sizeof(float) * BIG * TOY_DIM), *big = malloc(sizeof(float) * BIG * TOY_CLASSES);
    for (int i = 0; i < BIG; i++) memcpy(x + i * TOY_DIM, t.x + (i % N) * TOY_DIM, sizeof(float) * TOY_DIM);
    KC_CHECK(kc_predict(m, x, BIG, big));
    for (int i = 0; i < BIG; i++)
        for (int j = 0; j < TOY_CLASSES; j++)
            cr_assert(tu_close(big[i * TOY_CLASSES + j], out[(i % N) * TOY_CLASSES + j], 1e-6),
                      "row %d", i);
    free(x), free(big);
    kc_model_free(m);
    toy_free(&t);
}

/* ---- progress output ------------------------------------------------------------------------- */

/* Fits 12 samples (9 train, 3 validate) in batches of 4 for 2 epochs with verbose into a
 * temporary file under seed 9; returns what was written. */
static char *fit_output(int verbose, kc_history **h) {
    toy t = toy_blobs(12, 17);
    kc_set_random_seed(9);
    kc_model *m = toy_cce();
    kc_dataset d = toy_all(&t, 0);
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    kc_fit_opts o = {.batch_size = 4, .epochs = 2, .verbose = verbose, .validation_split = 0.25f,
                     .out = f};
    KC_CHECK(kc_fit(m, &d, &o, h));
    char *text = slurp(f);
    fclose(f);
    kc_model_free(m);
    toy_free(&t);
    return text;
}

/* Checks the one-line-per-epoch form; returns the metric part of each epoch line. */
static void check_epoch_lines(char *text, const kc_history *h, char *metrics[2]) {
    cr_assert_null(strchr(text, '\r'), "no in-place redraws off a terminal: %s", text);
    cr_assert_null(strchr(text, '\033'), "no terminal escapes off a terminal");
    char *lines[8];
    cr_assert_eq(split_lines(text, lines, 8), 4, "want 4 lines");
    for (int e = 0; e < 2; e++) {
        char want[64], *line = lines[2 * e + 1];
        snprintf(want, sizeof want, "Epoch %d/2", e + 1);
        cr_assert_str_eq(lines[2 * e], want);
        cr_assert(strncmp(line, "3/3 - ", 6) == 0, "line: %s", line);
        cr_assert(strstr(line, "/step - accuracy: "), "line: %s", line);
        /* the printed values are the history's, with 4 decimals, in Keras 3's order (the
         * training keys sorted, then the validation keys sorted) */
        char part[256];
        snprintf(part, sizeof part, " - accuracy: %.4f - loss: %.4f - val_accuracy: %.4f - val_loss: %.4f",
                 h->accuracy[e], h->loss[e], h->val_accuracy[e], h->val_loss[e]);
        cr_assert(strstr(line, part), "line \"%s\" lacks \"%s\"", line, part);
        metrics[e] = strstr(line, " - accuracy: ");
    }
}

Test(progress, verbose1_off_a_terminal_is_one_line_per_epoch) {
    kc_history *h1, *h2;
    char *m1[2], *m2[2];
    char *t1 = fit_output(1, &h1), *t2 = fit_output(2, &h2);
    check_epoch_lines(t1, h1, m1);
    /* verbose 2 writes the same lines; only the timings may differ */
    check_epoch_lines(t2, h2, m2);
    for (int e = 0; e < 2; e++) cr_assert_str_eq(m1[e], m2[e]);
    free(t1), free(t2);
    kc_history_free(h1), kc_history_free(h2);
}

Test(progress, verbose_default_is_1_and_minus1_is_silent) {
    kc_history *h0, *hs;
    char *m0[2];
    char *t0 = fit_output(0, &h0), *ts = fit_output(-1, &hs);
    check_epoch_lines(t0, h0, m0);
    cr_assert_str_eq(ts, "", "verbose -1 wrote: %s", ts);
    cr_assert_eq(hs->epochs, 2, "silent training still trains");
    free(t0), free(ts);
    kc_history_free(h0), kc_history_free(hs);
}

Test(progress, evaluate_line) {
    toy t = toy_blobs(10, 18);
    kc_model *m = toy_cce();
    kc_dataset d = toy_all(&t, 0);
    FILE *f = tmpfile();
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &d, &(kc_evaluate_opts){.batch_size = 4, .out = f}, NULL));
    cr_assert_eq(ftell(f), 0, "verbose 0 is silent for evaluate");
    KC_CHECK(kc_evaluate(m, &d, &(kc_evaluate_opts){.batch_size = 4, .verbose = 1, .out = f}, &r));
    char *text = slurp(f), want[128];
    snprintf(want, sizeof want, " - accuracy: %.4f - loss: %.4f\n", r.accuracy, r.loss);
    cr_assert(strncmp(text, "3/3 - ", 6) == 0 && strstr(text, want), "%s", text);
    free(text);
    fclose(f);
    kc_model_free(m);
    toy_free(&t);
}

/* ---- NULL arguments ----------------------------------------------------------------------------- */

Test(null_args, return_errors) {
    toy t = toy_blobs(4, 19);
    kc_dataset d = toy_all(&t, 0);
    kc_fit_opts o = quiet(2, 1);
    kc_metrics r;
    float out[4 * TOY_CLASSES];
    double loss;

    /* NULL model: every call that takes one */
    KC_EXPECT_ERR(kc_add(NULL, kc_dense(3, KC_RELU)), KC_EINVAL, "model is NULL");
    KC_EXPECT_ERR(kc_compile(NULL, KC_MEAN_SQUARED_ERROR, kc_sgd(NULL), 0), KC_EINVAL,
                  "model is NULL");
    kc_history *h = (kc_history *)&h;
    KC_EXPECT_ERR(kc_fit(NULL, &d, &o, &h), KC_EINVAL, "model is NULL");
    cr_assert_null(h);
    KC_EXPECT_ERR(kc_evaluate(NULL, &d, NULL, &r), KC_EINVAL, "model is NULL");
    KC_EXPECT_ERR(kc_predict(NULL, t.x, 4, out), KC_EINVAL, "model is NULL");
    KC_EXPECT_ERR(kc_train_on_batch(NULL, t.x, t.onehot, 4, &r), KC_EINVAL, "model is NULL");
    KC_EXPECT_ERR(kc_compute_gradients(NULL, t.x, t.onehot, 4, 0, &loss, NULL, 0), KC_EINVAL,
                  "model is NULL");
    KC_EXPECT_ERR(kc_summary(NULL, stdout), KC_EINVAL, "model is NULL");
    cr_assert_eq(kc_layer_count(NULL), 0);
    cr_assert_null(kc_layer_name(NULL, 0));
    cr_assert_eq(kc_count_params(NULL), 0);
    kc_model_free(NULL);
    kc_history_free(NULL);

    /* NULL dataset, arrays and layers on a good model */
    kc_model *m = toy_cce();
    KC_EXPECT_ERR(kc_fit(m, NULL, &o, NULL), KC_EINVAL, "kc_fit");
    KC_EXPECT_ERR(kc_evaluate(m, NULL, NULL, &r), KC_EINVAL, "kc_evaluate");
    KC_EXPECT_ERR(kc_predict(m, NULL, 4, out), KC_EINVAL, "kc_predict");
    KC_EXPECT_ERR(kc_predict(m, t.x, 4, NULL), KC_EINVAL, "kc_predict");
    KC_EXPECT_ERR(kc_predict(m, t.x, 0, out), KC_EINVAL, "count > 0");
    KC_EXPECT_ERR(kc_train_on_batch(m, NULL, t.onehot, 4, &r), KC_EINVAL, "need x, y");
    KC_EXPECT_ERR(kc_train_on_batch(m, t.x, NULL, 4, &r), KC_EINVAL, "need x, y");
    KC_EXPECT_ERR(kc_train_on_batch(m, t.x, t.onehot, 0, &r), KC_EINVAL, "batch > 0");
    KC_EXPECT_ERR(kc_compute_gradients(m, t.x, t.onehot, 4, 0, &loss, out, 5), KC_EINVAL,
                  "buffer holds 5");
    /* NULL options mean defaults */
    KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.verbose = -1}, NULL));
    KC_CHECK(kc_evaluate(m, &d, NULL, NULL));
    kc_model_free(m);

    /* a NULL layer is a failed constructor: reported now and again at compile */
    m = kc_sequential(kc_shape1(2));
    KC_EXPECT_ERR(kc_add(m, NULL), KC_EINVAL, "layer is NULL");
    KC_EXPECT_ERR(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(NULL), 0), KC_EINVAL, "layer is NULL");
    kc_model_free(m);
    toy_free(&t);
}

/* The weight accessors and kc_output_shape take a model too; a NULL one or a NULL buffer must
 * be an error, not a crash. One test each, so that each failure names its call. */
static kc_model *tiny_linear(void) {
    kc_model *m = kc_sequential(kc_shape1(1));
    KC_CHECK(kc_add(m, kc_dense(2, KC_LINEAR)));
    return m;
}

Test(null_args, get_weights_null_model) {
    float buf[4] = {0};
    KC_EXPECT_ERR(kc_get_weights(NULL, buf, 4), KC_EINVAL, "model is NULL");
}

Test(null_args, set_weights_null_model) {
    float buf[4] = {0};
    KC_EXPECT_ERR(kc_set_weights(NULL, buf, 4), KC_EINVAL, "model is NULL");
}

Test(null_args, output_shape_null_model) { cr_assert_eq(kc_output_shape(NULL).rank, 0); }

Test(null_args, get_weights_null_buffer) {
    kc_model *m = tiny_linear();
    KC_EXPECT_ERR(kc_get_weights(m, NULL, 4), KC_EINVAL, "kc_get_weights");
    kc_model_free(m);
}

Test(null_args, set_weights_null_buffer) {
    kc_model *m = tiny_linear();
    KC_EXPECT_ERR(kc_set_weights(m, NULL, 4), KC_EINVAL, "kc_set_weights");
    kc_model_free(m);
}

Test(null_args, summary_to_null_stream) {
    /* NULL out: stdout as for fit and evaluate, or an error -- never a crash */
    kc_model *m = tiny_linear();
    kc_status st = kc_summary(m, NULL);
    cr_assert(st == KC_OK || st == KC_EINVAL, "%s", kc_status_name(st));
    kc_model_free(m);
}
