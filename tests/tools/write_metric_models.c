/* write_metric_models.c: the kerac side of tests/gen_keras_metric_fixtures.py's check that Keras
 * reads back the metrics kerac writes. In DIR (argv[1]), run from the repository root:
 *   sparse_topk.keras / .h5   tests/fixtures/keras_metrics/sparse_topk.keras (Keras-made:
 *                             SparseCategoricalCrossentropy(from_logits=True), metrics
 *                             [SparseTopKCategoricalAccuracy(k=3), "accuracy"]) loaded and saved
 *   many_metrics.keras / .h5  a model compiled in C with a metric of every family
 *   <name>.txt                the data and kerac's evaluate() of it (batch_size 4), by key */
#include <kerac.h>
#include <stdio.h>
#include <stdlib.h>

static void die(const char *what) {
    fprintf(stderr, "write_metric_models: %s: %s\n", what, kc_last_error());
    exit(1);
}

static void put(FILE *f, const char *name, const float *v, int n) {
    fprintf(f, "%s", name);
    for (int i = 0; i < n; i++) fprintf(f, " %.9g", (double)v[i]);
    fputc('\n', f);
}

static void save_all(kc_model *m, const char *dir, const char *name, const kc_dataset *d,
                     const float *x, int in_cols, const float *y, int y_cols, const char *absent_h5) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.keras", dir, name);
    if (kc_save(m, path)) die(path);
    snprintf(path, sizeof path, "%s/%s.h5", dir, name);
    if (kc_save(m, path)) die(path);
    kc_metrics r;
    if (kc_evaluate(m, d, &(kc_evaluate_opts){.batch_size = 4}, &r)) die("evaluate");
    snprintf(path, sizeof path, "%s/%s.txt", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) die(path);
    fprintf(f, "shape %d %d\n", in_cols, y_cols);
    put(f, "x", x, (int)d->count * in_cols);
    put(f, "y", y, (int)d->count * (y_cols ? y_cols : 1));
    for (int i = 0; i < r.n_values; i++) fprintf(f, "evaluate %s %.9g\n", r.keys[i], r.values[i]);
    if (absent_h5) fprintf(f, "absent_h5 %s\n", absent_h5);
    fclose(f);
}

static void sparse_topk(const char *dir) {
    kc_model *m;
    if (kc_load("tests/fixtures/keras_metrics/sparse_topk.keras", &m)) die("load sparse_topk.keras");
    static float x[40], y[10];
    static int32_t yi[10];
    for (int i = 0; i < 40; i++) x[i] = (float)((i * 7) % 11) / 11.0f - 0.4f;
    for (int i = 0; i < 10; i++) yi[i] = (i * 3) % 5, y[i] = (float)yi[i];
    kc_dataset d = {.count = 10, .x_shape = kc_shape1(4), .x_dtype = KC_FLOAT32, .x = x,
                    .y_shape = {0}, .y_dtype = KC_INT32, .y = yi, .num_classes = 5};
    save_all(m, dir, "sparse_topk", &d, x, 4, y, 0, NULL);
    kc_model_free(m);
}

static void many_metrics(const char *dir) {
    kc_set_random_seed(3);
    kc_model *m = kc_sequential(kc_shape1(4));
    kc_add(m, kc_dense(6, KC_RELU));
    kc_add(m, kc_dense(3, KC_SIGMOID));
    kc_compile_opts o = {.optimizer = kc_adam(&(kc_adam_opts){.learning_rate = 0.01f}),
                         .loss = {KC_BINARY_CROSSENTROPY}, .metrics = {KC_METRIC_ACCURACY}};
    kc_metric_spec *s = o.metric_specs[0];
    int n = 0;
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_AUC};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_AUC, .curve = KC_CURVE_PR, .num_thresholds = 50};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_PRECISION, .top_k = 2};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_RECALL, .has_class_id = 1, .class_id = 1,
                              .has_threshold = 1, .threshold = 0.4f};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_F1_SCORE, .average = KC_AVERAGE_MACRO};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_FBETA_SCORE, .beta = 2, .average = KC_AVERAGE_WEIGHTED,
                              .has_threshold = 1, .threshold = 0.4f};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_BINARY_ACCURACY, .has_threshold = 1,
                              .threshold = 0.3f, .name = "ba"};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_TOP_K_CATEGORICAL_ACCURACY, .k = 2};
    if (kc_metric_from_name("mse", &s[n++])) die("mse");
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_ROOT_MEAN_SQUARED_ERROR};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_COSINE_SIMILARITY};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_LOG_COSH_ERROR};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_BINARY_CROSSENTROPY, .label_smoothing = 0.1f};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_HINGE};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_HUBER};
    o.weighted_metric_specs[0][0] = (kc_metric_spec){.kind = KC_METRIC_AUC};
    if (kc_compile_ex(m, &o)) die("compile");
    static float x[20 * 4], y[20 * 3];
    for (int i = 0; i < 20; i++) {
        for (int j = 0; j < 4; j++) x[i * 4 + j] = (float)((i * 5 + j * 3) % 17) / 17.0f - 0.5f;
        for (int j = 0; j < 3; j++) y[i * 3 + j] = (float)((i * (j + 2) + j) % 3 == 0);
    }
    kc_dataset d = {.count = 20, .x_shape = kc_shape1(4), .x_dtype = KC_FLOAT32, .x = x,
                    .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = y};
    if (kc_fit(m, &d, &(kc_fit_opts){.epochs = 2, .batch_size = 5, .verbose = -1}, NULL)) die("fit");
    /* a legacy .h5 file cannot hold huber, a loss function without a Keras metric class */
    save_all(m, dir, "many_metrics", &d, x, 4, y, 3, "huber");
    kc_model_free(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: write_metric_models DIR (run from the repository root)\n");
        return 2;
    }
    sparse_topk(argv[1]);
    many_metrics(argv[1]);
    return 0;
}
