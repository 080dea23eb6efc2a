/* test_custom.c: custom layers (kc_custom_layer_type), with keras.io's Antirectifier
 * (examples/antirectifier.h): its forward and its hand-written backward against Keras 3's
 * values and autodiff (tests/gen_keras_custom_files.py), finite differences, Keras's files
 * holding it, kerac's files round trip (.keras, .h5, .weights.h5), config fields, weights
 * kept out of training, and the errors: an unregistered class in a file, a missing backward
 * at compile, a weight declared outside build, invalid types. Each test runs in its own
 * process, so the registry starts empty in each. */
#include "testutil.h"
#include <cjson/cJSON.h>
#include <stddef.h>

#include "../examples/antirectifier.h"

#define FIX "tests/fixtures/custom/"
#define N 16

/* the generator's inputs */
static void make_data(float *x, float *y) {
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 5; j++) x[i * 5 + j] = (float)(((i * 7 + j * 5) % 13) / 13.0 - 0.4);
        for (int j = 0; j < 3; j++) y[i * 3 + j] = (float)((i + i / 3) % 3 == j);
    }
}

static cJSON *load_json(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    cr_assert_not_null(j, "%s is not JSON", path);
    return j;
}

static float *json_floats(const cJSON *j, const char *name, int *count) {
    const cJSON *a = cJSON_GetObjectItem(j, name);
    cr_assert(cJSON_IsArray(a), "no %s", name);
    int n = cJSON_GetArraySize(a);
    float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) v[i] = (float)cJSON_GetArrayItem(a, i)->valuedouble;
    if (count) *count = n;
    return v;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

static float *weights_of(kc_model *m, int64_t *n) {
    *n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)*n);
    KC_CHECK(kc_get_weights(m, w, *n));
    return w;
}

/* Input(5) -> Dense(6) -> Antirectifier -> Dense(3, softmax), as the generator's */
static kc_model *build(kc_optimizer *opt) {
    kc_model *m = kc_sequential(kc_shape1(5));
    kc_add(m, kc_dense(6, KC_LINEAR));
    kc_add(m, antirectifier());
    kc_add(m, kc_dense(3, KC_SOFTMAX));
    if (opt) KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, opt, KC_METRIC_ACCURACY));
    return m;
}

static void expect_predictions(kc_model *m, const char *json_path, double tol) {
    cJSON *j = load_json(json_path);
    int nx, np;
    float *x = json_floats(j, "x", &nx), *pred = json_floats(j, "pred", &np);
    float out[N * 3];
    cr_assert_eq(np, N * 3);
    KC_CHECK(kc_predict(m, x, N, out));
    double d = max_diff(out, pred, np);
    cr_expect(d <= tol, "%s: predictions differ from Keras's by %g", json_path, d);
    free(x);
    free(pred);
    cJSON_Delete(j);
}

/* ---- the Antirectifier against Keras ------------------------------------------------------ */

Test(antirectifier, forward_and_backward_match_keras) {
    cJSON *j = load_json(FIX "k3_antirectifier.json");
    int nw, ng;
    float *w = json_floats(j, "weights", &nw), *g = json_floats(j, "grads", &ng);
    float x[N * 5], y[N * 3];
    make_data(x, y);
    kc_model *m = build(kc_sgd(NULL));
    cr_assert_eq(kc_count_params(m), nw);
    cr_assert_eq(nw, 5 * 6 + 6 + 12 * 6 + 6 * 3 + 3);
    KC_CHECK(kc_set_weights(m, w, nw));
    expect_predictions(m, FIX "k3_antirectifier.json", 1e-6);
    /* kerac's backward (written by hand) against jax.grad of Keras's loss */
    float *grads = malloc(sizeof(float) * (size_t)nw);
    double loss = 0;
    KC_CHECK(kc_compute_gradients(m, x, y, N, 0, &loss, grads, nw));
    cr_expect(tu_close(loss, cJSON_GetObjectItem(j, "loss")->valuedouble, 1e-6), "loss %g", loss);
    for (int i = 0; i < nw; i++)
        cr_expect(fabs(grads[i] - g[i]) <= 1e-6 + 1e-4 * fabs(g[i]),
                  "gradient %d: kerac %g, Keras %g", i, grads[i], g[i]);
    free(grads);
    free(w);
    free(g);
    kc_model_free(m);
    cJSON_Delete(j);
}

Test(antirectifier, works_along_the_last_axis) {
    /* samples of shape (3, 4): the layer centres and mixes each row of 4 */
    cJSON *j = load_json(FIX "antirectifier_rank3.json");
    int nx, nk, no;
    float *x = json_floats(j, "x", &nx), *k = json_floats(j, "kernel", &nk);
    float *want = json_floats(j, "out", &no);
    antirectifier_config cfg = {.initializer = {.kind = KC_INIT_GLOROT_UNIFORM}};
    kc_model *m = kc_sequential(kc_shape2(3, 4));
    KC_CHECK(kc_add(m, kc_custom(&antirectifier_type, &cfg)));
    cr_assert_eq(kc_count_params(m), 8 * 4);
    cr_assert_eq(nk, 8 * 4);
    kc_shape out = kc_output_shape(m);
    cr_assert(out.rank == 2 && out.dims[0] == 3 && out.dims[1] == 4);
    KC_CHECK(kc_set_weights(m, k, nk));
    float *got = malloc(sizeof(float) * (size_t)no);
    KC_CHECK(kc_predict(m, x, nx / 12, got));
    cr_expect(max_diff(got, want, no) <= 1e-6, "differs from Keras by %g", max_diff(got, want, no));
    /* the config: GlorotUniform as Keras serializes it */
    char *js = NULL;
    KC_CHECK(kc_model_to_json(m, &js));
    cr_expect(strstr(js, "\"initializer\":{\"module\":\"keras.initializers\",\"class_name\":"
                         "\"GlorotUniform\",\"config\":{\"seed\":null},\"registered_name\":null}"),
              "%s", js);
    free(js);
    free(got);
    free(x);
    free(k);
    free(want);
    kc_model_free(m);
    cJSON_Delete(j);
}

/* the loss on (x, y) at weights w */
static double loss_at(kc_model *m, const float *w, int64_t n, const float *x, const float *y,
                      int batch) {
    double loss = 0;
    KC_CHECK(kc_set_weights(m, w, n));
    KC_CHECK(kc_compute_gradients(m, x, y, batch, 0, &loss, NULL, 0));
    return loss;
}

Test(antirectifier, gradients_match_finite_differences) {
    /* a functional model calling one Antirectifier twice (its gradients from both calls add)
     * between Dense layers (their gradients need the layer's input gradient) */
    kc_set_random_seed(7);
    kc_tensor *in = kc_input(kc_shape1(5));
    kc_tensor *h = kc_call(kc_dense(4, KC_TANH), in);
    kc_layer *shared = antirectifier();
    h = kc_call(shared, h);
    h = kc_call(shared, h);
    kc_tensor *out = kc_call(kc_dense(3, KC_SOFTMAX), h);
    kc_model *m = kc_functional(&in, 1, &out, 1);
    cr_assert_not_null(m, "%s", kc_last_error());
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
    float x[N * 5], y[N * 3];
    make_data(x, y);
    int64_t n;
    float *w = weights_of(m, &n), *g = malloc(sizeof(float) * (size_t)n);
    cr_assert_eq(n, 5 * 4 + 4 + 8 * 4 + 4 * 3 + 3);
    double loss;
    KC_CHECK(kc_compute_gradients(m, x, y, N, 0, &loss, g, n));
    float *wp = malloc(sizeof(float) * (size_t)n);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        const float eps = 1e-3f; /* small: the relus' kinks are near */
        memcpy(wp, w, sizeof(float) * (size_t)n);
        wp[i] = w[i] + eps;
        double up = loss_at(m, wp, n, x, y, N);
        wp[i] = w[i] - eps;
        double down = loss_at(m, wp, n, x, y, N);
        double fd = (up - down) / (2.0 * eps);
        if (fabs(fd - g[i]) > 2e-4 + 1e-2 * fabs(fd)) {
            bad++;
            cr_log_error("weight %lld: backward %g, finite difference %g", (long long)i, g[i], fd);
        }
    }
    cr_expect_eq(bad, 0);
    free(w);
    free(g);
    free(wp);
    kc_model_free(m);
}

Test(antirectifier, summary_and_names) {
    kc_model *m = build(NULL);
    kc_add(m, antirectifier());
    cr_expect_str_eq(kc_layer_name(m, 1), "antirectifier");
    cr_expect_str_eq(kc_layer_name(m, 3), "antirectifier_1");
    kc_layer *l = kc_get_layer(m, "antirectifier");
    kc_custom_layer *c = kc_custom_from_layer(l);
    cr_assert_not_null(c);
    cr_expect_str_eq(kc_custom_name(c), "antirectifier");
    cr_expect_eq(kc_custom_weight_count(c), 1);
    cr_expect_eq(kc_custom_input_shape(c).dims[0], 6);
    cr_expect_eq(kc_custom_output_shape(c).dims[0], 6);
    cr_expect_null(kc_custom_from_layer(kc_get_layer(m, "dense")));
    cr_expect_eq(kc_layer_param_count(m, 1), 12 * 6);
    int64_t n;
    free(weights_of(m, &n)); /* creates the weights */
    cr_assert_eq(n, 36 + 72 + 21 + 18);
    char buf[4096] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    KC_CHECK(kc_summary(m, f));
    fclose(f);
    cr_expect(strstr(buf, "antirectifier (Antirectifi"), "%s", buf); /* Keras's column width */
    /* he_normal's spread: stddev sqrt(2 / 6) before truncation at 2 stddev */
    float *k = kc_custom_weight(c, 0);
    cr_assert_not_null(k);
    double s2 = 0;
    for (int i = 0; i < 72; i++) {
        s2 += (double)k[i] * k[i];
        cr_expect(fabs(k[i]) <= 2.0 * sqrt(2.0 / 6) / 0.87962566103423978 + 1e-6);
    }
    cr_expect(s2 / 72 > 0.1 && s2 / 72 < 0.7, "kernel variance %g (want about 0.33)", s2 / 72);
    kc_model_free(m);
}

Test(antirectifier, trains_with_fit) {
    float x[N * 5], y[N * 3];
    make_data(x, y);
    kc_set_random_seed(3);
    kc_model *m = build(kc_rmsprop(&(kc_rmsprop_opts){.learning_rate = 0.01f}));
    kc_dataset ds = {.count = N, .x_shape = kc_shape1(5), .x_dtype = KC_FLOAT32, .x = x,
                     .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = y};
    kc_history *h = NULL;
    KC_CHECK(kc_fit(m, &ds, &(kc_fit_opts){.epochs = 30, .batch_size = 8, .verbose = -1}, &h));
    cr_expect(h->loss[29] < 0.7 * h->loss[0], "loss %g -> %g", h->loss[0], h->loss[29]);
    kc_history_free(h);
    kc_model_free(m);
}

/* ---- files ----------------------------------------------------------------------------------- */

Test(files, keras3_keras_file_loads_and_resumes) {
    KC_CHECK(kc_register_layer_type(&antirectifier_type));
    kc_model *m = NULL;
    KC_CHECK(kc_load(FIX "k3_antirectifier.keras", &m));
    expect_predictions(m, FIX "k3_antirectifier.json", 1e-6);
    kc_custom_layer *c = kc_custom_from_layer(kc_get_layer(m, "antirectifier"));
    cr_assert_not_null(c);
    cr_expect_eq(((antirectifier_config *)kc_custom_config(c))->initializer.kind, KC_INIT_HE_NORMAL);
    /* one more step from the saved RMSprop state: Keras's weights after it */
    cJSON *j = load_json(FIX "k3_antirectifier.json");
    int na;
    float *after = json_floats(j, "after_step", &na);
    float x[N * 5], y[N * 3];
    make_data(x, y);
    KC_CHECK(kc_train_on_batch(m, x, y, N, NULL));
    int64_t n;
    float *w = weights_of(m, &n);
    cr_assert_eq(n, na);
    cr_expect(max_diff(w, after, n) <= 1e-6, "after one step: %g", max_diff(w, after, n));
    free(w);
    free(after);
    cJSON_Delete(j);
    kc_model_free(m);
}

Test(files, keras3_legacy_h5_and_tf2_h5_load) {
    KC_CHECK(kc_register_layer_type(&antirectifier_type));
    kc_model *m = NULL;
    KC_CHECK(kc_load(FIX "k3_antirectifier_legacy.h5", &m));
    expect_predictions(m, FIX "k3_antirectifier.json", 1e-6);
    kc_model_free(m);
    KC_CHECK(kc_load(FIX "tf2_antirectifier.h5", &m));
    expect_predictions(m, FIX "tf2_antirectifier.json", 1e-6);
    kc_model_free(m);
}

Test(files, unregistered_class_is_refused_by_name) {
    kc_model *m = NULL;
    KC_EXPECT_ERR(kc_load(FIX "k3_antirectifier.keras", &m), KC_EFORMAT,
                  "custom layer class 'Custom>Antirectifier' is not registered");
    cr_expect_null(m);
    KC_EXPECT_ERR(kc_load(FIX "tf2_antirectifier.h5", &m), KC_EFORMAT,
                  "custom layer class 'Custom>Antirectifier' is not registered");
    /* a layer made of the type without registering it: saving works, loading needs it */
    kc_model *k = build(kc_sgd(NULL));
    char *js = NULL;
    KC_CHECK(kc_model_to_json(k, &js));
    KC_EXPECT_ERR(kc_model_from_json(js, &m), KC_EFORMAT, "kc_register_layer_type");
    KC_CHECK(kc_register_layer_type(&antirectifier_type));
    KC_CHECK(kc_model_from_json(js, &m));
    kc_model_free(m);
    /* registered under another package: "Other>Antirectifier" is not that class */
    char *other = strstr(js, "\"Custom>Antirectifier\"");
    cr_assert_not_null(other);
    memcpy(other + 1, "Others", 6);
    KC_EXPECT_ERR(kc_model_from_json(js, &m), KC_EFORMAT,
                  "custom layer class 'Others>Antirectifier' is not registered");
    free(js);
    kc_model_free(k);
}

/* Dense(6) -> Antirectifier(he_uniform, seed 42) -> Dropout(0.5) -> Dense(3, softmax) */
static kc_model *build_dropout(void) {
    antirectifier_config cfg = {.initializer = {.kind = KC_INIT_HE_UNIFORM, .has_seed = 1, .seed = 42}};
    kc_model *m = kc_sequential(kc_shape1(5));
    kc_add(m, kc_dense(6, KC_LINEAR));
    kc_add(m, kc_custom(&antirectifier_type, &cfg));
    kc_add(m, kc_dropout(0.5f));
    kc_add(m, kc_dense(3, KC_SOFTMAX));
    return m;
}

Test(files, kerac_files_round_trip) {
    KC_CHECK(kc_register_layer_type(&antirectifier_type));
    float x[N * 5], y[N * 3];
    make_data(x, y);
    kc_set_random_seed(9);
    kc_model *m = build_dropout();
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY,
                        kc_rmsprop(&(kc_rmsprop_opts){.learning_rate = 0.01f}), KC_METRIC_ACCURACY));
    kc_dataset ds = {.count = N, .x_shape = kc_shape1(5), .x_dtype = KC_FLOAT32, .x = x,
                     .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = y};
    KC_CHECK(kc_fit(m, &ds, &(kc_fit_opts){.epochs = 2, .batch_size = 8, .verbose = -1}, NULL));
    float want[N * 3], got[N * 3];
    KC_CHECK(kc_predict(m, x, N, want));
    char *dir = tu_tmpdir(), path[256];
    const char *exts[] = {".keras", ".h5"};
    for (int e = 0; e < 2; e++) {
        snprintf(path, sizeof path, "%s/m%s", dir, exts[e]);
        KC_CHECK(kc_save(m, path));
        kc_model *b = NULL;
        KC_CHECK(kc_load(path, &b));
        KC_CHECK(kc_predict(b, x, N, got));
        cr_expect(!memcmp(got, want, sizeof got), "%s: predictions differ", exts[e]);
        kc_custom_layer *c = kc_custom_from_layer(kc_get_layer(b, "antirectifier"));
        cr_assert_not_null(c);
        const antirectifier_config *cfg = kc_custom_config(c);
        cr_expect(cfg->initializer.kind == KC_INIT_HE_UNIFORM && cfg->initializer.has_seed &&
                      cfg->initializer.seed == 42,
                  "%s: the initializer came back as kind %d seed %llu", exts[e],
                  (int)cfg->initializer.kind, (unsigned long long)cfg->initializer.seed);
        /* resuming: one more step from the saved optimizer state, bit for bit (the .h5 too:
         * kerac's legacy file keeps the optimizer's variables) */
        kc_model *a = NULL;
        KC_CHECK(kc_load(path, &a));
        KC_CHECK(kc_train_on_batch(a, x, y, N, NULL));
        KC_CHECK(kc_train_on_batch(b, x, y, N, NULL));
        int64_t na, nb;
        float *wa = weights_of(a, &na), *wb = weights_of(b, &nb);
        cr_expect(na == nb && !memcmp(wa, wb, sizeof(float) * (size_t)na));
        free(wa);
        free(wb);
        kc_model_free(a);
        kc_model_free(b);
    }
    /* weights only, into a model built again */
    snprintf(path, sizeof path, "%s/m.weights.h5", dir);
    KC_CHECK(kc_save_weights(m, path));
    kc_model *w = build_dropout();
    KC_CHECK(kc_load_weights(w, path));
    KC_CHECK(kc_predict(w, x, N, got));
    cr_expect(!memcmp(got, want, sizeof got), ".weights.h5: predictions differ");
    kc_model_free(w);
    kc_model_free(m);
}

Test(files, unknown_config_field_is_refused) {
    KC_CHECK(kc_register_layer_type(&antirectifier_type));
    kc_model *k = build(NULL), *m = NULL;
    char *js = NULL;
    KC_CHECK(kc_model_to_json(k, &js));
    cJSON *root = cJSON_Parse(js);
    cJSON *layer = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "config"), "layers"), 2);
    cr_assert_str_eq(cJSON_GetObjectItem(layer, "class_name")->valuestring, "Antirectifier");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(layer, "module")));
    cr_expect_str_eq(cJSON_GetObjectItem(layer, "registered_name")->valuestring,
                     "Custom>Antirectifier");
    cJSON *cfg = cJSON_GetObjectItem(layer, "config");
    cJSON_AddNumberToObject(cfg, "bogus", 1);
    char *bad = cJSON_PrintUnformatted(root);
    KC_EXPECT_ERR(kc_model_from_json(bad, &m), KC_EFORMAT,
                  "layer 2 'antirectifier': config field 'bogus' is not one of custom layer type "
                  "Antirectifier's config_fields");
    cJSON_DeleteItemFromObject(cfg, "bogus");
    cJSON_ReplaceItemInObject(cfg, "initializer", cJSON_CreateString("no_such_initializer"));
    cJSON_free(bad);
    bad = cJSON_PrintUnformatted(root);
    KC_EXPECT_ERR(kc_model_from_json(bad, &m), KC_EFORMAT, "initializer");
    cJSON_ReplaceItemInObject(cfg, "initializer", cJSON_CreateString("lecun_normal"));
    cJSON_free(bad);
    bad = cJSON_PrintUnformatted(root);
    KC_CHECK(kc_model_from_json(bad, &m));
    const antirectifier_config *c = kc_custom_config(kc_custom_from_layer(kc_get_layer(m, "antirectifier")));
    cr_expect_eq(c->initializer.kind, KC_INIT_LECUN_NORMAL);
    kc_model_free(m);
    cJSON_free(bad);
    cJSON_Delete(root);
    free(js);
    kc_model_free(k);
}

/* ---- a layer with every kind of config field, hooks, and a weight kept out of training ----
 * ScaleCount: out = alpha * scale * x (scale: one per feature, trained); "calls" (not
 * trained) counts the training forwards, as BatchNormalization's moving statistics move. */

typedef struct {
    float alpha;
    int count;
    int flag;
    char label[16];
    kc_initializer scale_initializer;
    int extra_sum; /* from the "extra" list its from_config reads */
} scale_config;

static const kc_config_field scale_fields[] = {
    {"alpha", KC_FIELD_FLOAT, offsetof(scale_config, alpha), 0},
    {"count", KC_FIELD_INT, offsetof(scale_config, count), 0},
    {"flag", KC_FIELD_BOOL, offsetof(scale_config, flag), 0},
    {"label", KC_FIELD_STRING, offsetof(scale_config, label), sizeof(((scale_config *)0)->label)},
    {"scale_initializer", KC_FIELD_INITIALIZER, offsetof(scale_config, scale_initializer), 0},
};
static const scale_config scale_defaults = {.alpha = 1.0f, .count = 3, .label = "plain",
                                            .scale_initializer = {.kind = KC_INIT_ONES}};

static kc_status scale_build(kc_custom_layer *self, kc_shape in, kc_shape *out) {
    const scale_config *cfg = kc_custom_config(self);
    if (in.rank != 1) return kc_custom_error(self, KC_EINVAL, "needs flat samples");
    /* declared first, but not trained: it is kept after the trained weights */
    if (kc_custom_add_weight(self, "calls", kc_shape1(1), (kc_initializer){.kind = KC_INIT_ZEROS}, 0) != 0)
        return KC_EINVAL;
    if (kc_custom_add_weight(self, "scale", in, cfg->scale_initializer, 1) != 1) return KC_EINVAL;
    return KC_OK;
}

static void scale_forward(kc_custom_layer *self, const float *in, float *out, int batch,
                          int training) {
    const scale_config *cfg = kc_custom_config(self);
    int d = kc_custom_input_shape(self).dims[0];
    const float *scale = kc_custom_weight(self, 1);
    for (int i = 0; i < batch; i++)
        for (int j = 0; j < d; j++) out[i * d + j] = cfg->alpha * scale[j] * in[i * d + j];
    if (training) kc_custom_weight(self, 0)[0] += 1;
}

static void scale_backward(kc_custom_layer *self, const float *in, const float *out,
                           const float *dout, float *din, int batch) {
    const scale_config *cfg = kc_custom_config(self);
    int d = kc_custom_input_shape(self).dims[0];
    const float *scale = kc_custom_weight(self, 1);
    float *dscale = kc_custom_weight_grad(self, 1);
    for (int j = 0; j < d; j++) dscale[j] = 0;
    for (int i = 0; i < batch; i++)
        for (int j = 0; j < d; j++) {
            dscale[j] += cfg->alpha * in[i * d + j] * dout[i * d + j];
            if (din) din[i * d + j] = cfg->alpha * scale[j] * dout[i * d + j];
        }
}

static kc_status scale_get_config(const kc_custom_layer *self, char **json) {
    *json = strdup("{\"extra\": [1, 2, 3]}");
    return *json ? KC_OK : KC_ENOMEM;
}

static kc_status scale_from_config(kc_custom_layer *self, const char *json) {
    scale_config *cfg = kc_custom_config(self);
    cJSON *j = cJSON_Parse(json), *e;
    cfg->extra_sum = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "extra")) cfg->extra_sum += e->valueint;
    cJSON_Delete(j);
    return cfg->extra_sum ? KC_OK : kc_custom_error(self, KC_EFORMAT, "no extra list");
}

static const kc_custom_layer_type scale_type = {
    .class_name = "ScaleCount",
    .package = "kerac_tests",
    .config_size = sizeof(scale_config),
    .default_config = &scale_defaults,
    .config_fields = scale_fields,
    .n_config_fields = sizeof scale_fields / sizeof *scale_fields,
    .build = scale_build,
    .forward = scale_forward,
    .backward = scale_backward,
    .get_config = scale_get_config,
    .from_config = scale_from_config,
};

Test(config, every_field_kind_and_the_hooks_round_trip) {
    KC_CHECK(kc_register_layer_type(&scale_type));
    KC_CHECK(kc_register_layer_type(&scale_type)); /* again: nothing changes */
    scale_config cfg = {.alpha = 0.5f, .count = 7, .flag = 1, .label = "halves",
                        .scale_initializer = {.kind = KC_INIT_CONSTANT, .value = 2.0}};
    kc_model *m = kc_sequential(kc_shape1(4));
    KC_CHECK(kc_add(m, kc_custom(&scale_type, &cfg)));
    cr_expect_str_eq(kc_layer_name(m, 0), "scale_count");
    char *js = NULL;
    KC_CHECK(kc_model_to_json(m, &js));
    const char *want[] = {"\"registered_name\":\"kerac_tests>ScaleCount\"", "\"alpha\":0.5",
                          "\"count\":7", "\"flag\":true", "\"label\":\"halves\"",
                          "\"class_name\":\"Constant\",\"config\":{\"value\":2}",
                          "\"extra\":[1,2,3]"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_expect(strstr(js, want[i]), "%s lacks %s", js, want[i]);
    kc_model *b = NULL;
    KC_CHECK(kc_model_from_json(js, &b));
    const scale_config *got = kc_custom_config(kc_custom_from_layer(kc_get_layer(b, "scale_count")));
    cr_expect(got->alpha == 0.5f && got->count == 7 && got->flag == 1 &&
              !strcmp(got->label, "halves") && got->scale_initializer.kind == KC_INIT_CONSTANT &&
              got->scale_initializer.value == 2.0 && got->extra_sum == 6);
    /* the weights: scale (trained) first, then calls, as Keras orders layer.weights */
    cr_expect_eq(kc_layer_param_count(b, 0), 5);
    cr_expect_eq(kc_layer_trainable_count(b, 0), 4);
    float w[5];
    KC_CHECK(kc_get_weights(b, w, 5));
    cr_expect(w[0] == 2.0f && w[3] == 2.0f && w[4] == 0.0f, "%g %g %g", w[0], w[3], w[4]);
    /* a wrong type in a field, and a string too long, are refused by name */
    kc_model_free(b);
    cJSON *root = cJSON_Parse(js);
    cJSON *lc = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "config"), "layers"), 1),
        "config");
    cJSON_ReplaceItemInObject(lc, "count", cJSON_CreateString("7"));
    char *bad = cJSON_PrintUnformatted(root);
    KC_EXPECT_ERR(kc_model_from_json(bad, &b), KC_EFORMAT, "'scale_count': count is not a whole number");
    cJSON_free(bad);
    cJSON_ReplaceItemInObject(lc, "count", cJSON_CreateNumber(7));
    cJSON_ReplaceItemInObject(lc, "label", cJSON_CreateString("sixteen bytes!!!"));
    bad = cJSON_PrintUnformatted(root);
    KC_EXPECT_ERR(kc_model_from_json(bad, &b), KC_EFORMAT, "label is not a string of at most 15 bytes");
    cJSON_free(bad);
    /* from_config's own error */
    cJSON_ReplaceItemInObject(lc, "label", cJSON_CreateString("ok"));
    cJSON_DeleteItemFromObject(lc, "extra");
    bad = cJSON_PrintUnformatted(root);
    KC_EXPECT_ERR(kc_model_from_json(bad, &b), KC_EFORMAT, "from_config: layer scale_count (ScaleCount): no extra list");
    cJSON_free(bad);
    cJSON_Delete(root);
    b = NULL;
    kc_model_free(b);
    free(js);
    kc_model_free(m);
}

Test(config, non_trainable_weight_takes_no_step_and_no_gradient) {
    kc_model *m = kc_sequential(kc_shape1(3));
    kc_add(m, kc_dense(4, KC_TANH));
    kc_add(m, kc_custom(&scale_type, NULL));
    kc_add(m, kc_dense(2, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(&(kc_sgd_opts){.learning_rate = 0.5f}), 0));
    float x[6] = {0.1f, -0.2f, 0.3f, 0.5f, 0.4f, -0.6f}, y[4] = {1, 0, 0, 1};
    int64_t n = kc_count_params(m);
    cr_assert_eq(n, 3 * 4 + 4 + 5 + 4 * 2 + 2);
    float *g = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_compute_gradients(m, x, y, 2, 1, NULL, g, n));
    int at = 16; /* the ScaleCount layer's weights */
    for (int j = 0; j < 4; j++) cr_expect(g[at + j] != 0.0f, "scale %d has no gradient", j);
    cr_expect_eq(g[at + 4], 0.0f, "calls has a gradient");
    float *w = weights_of(m, &n);
    cr_expect_eq(w[at + 4], 1.0f, "one training forward: calls %g", w[at + 4]); /* compute_gradients(training=1) */
    for (int j = 0; j < 4; j++) cr_expect_eq(w[at + j], 1.0f);
    free(w);
    KC_CHECK(kc_train_on_batch(m, x, y, 2, NULL));
    w = weights_of(m, &n);
    cr_expect_eq(w[at + 4], 2.0f, "calls moved by the forward only: %g", w[at + 4]);
    cr_expect(w[at] != 1.0f, "scale took no step");
    free(w);
    /* frozen: no step for its trained weights either */
    KC_CHECK(kc_set_trainable(kc_get_layer(m, "scale_count"), 0));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
    float *before = weights_of(m, &n);
    KC_CHECK(kc_train_on_batch(m, x, y, 2, NULL));
    w = weights_of(m, &n);
    cr_expect(!memcmp(w + at, before + at, 4 * sizeof(float)), "a frozen layer's scale moved");
    free(before);
    free(w);
    free(g);
    kc_model_free(m);
}

/* ---- errors ---------------------------------------------------------------------------------- */

static void fwd_copy(kc_custom_layer *self, const float *in, float *out, int batch, int training) {
    memcpy(out, in, sizeof(float) * (size_t)batch * (size_t)kc_custom_input_shape(self).dims[0]);
}

static kc_status bias_build(kc_custom_layer *self, kc_shape in, kc_shape *out) {
    return kc_custom_add_weight(self, "b", in, (kc_initializer){0}, 1) < 0 ? KC_EINVAL : KC_OK;
}

static const kc_custom_layer_type noback_type = {.class_name = "NoBack", .forward = fwd_copy};
static const kc_custom_layer_type noback_weights_type = {
    .class_name = "NoBackWeights", .build = bias_build, .forward = fwd_copy};

Test(errors, missing_backward_is_refused_at_compile) {
    /* between trained layers: its gradient is needed */
    kc_model *m = kc_sequential(kc_shape1(4));
    kc_add(m, kc_dense(4, KC_LINEAR));
    kc_add(m, kc_custom(&noback_type, NULL));
    kc_add(m, kc_dense(2, KC_SOFTMAX));
    KC_EXPECT_ERR(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0), KC_EINVAL,
                  "layer no_back (NoBack) is a custom layer whose backward is missing");
    /* with the layers before it frozen, nothing needs it */
    KC_CHECK(kc_set_trainable(kc_get_layer(m, "dense"), 0));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[4] = {1, 0, 0, 1};
    KC_CHECK(kc_train_on_batch(m, x, y, 2, NULL));
    kc_model_free(m);
    /* first in the model, without weights: fine (inference-only preprocessing) */
    m = kc_sequential(kc_shape1(4));
    kc_add(m, kc_custom(&noback_type, NULL));
    kc_add(m, kc_dense(2, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
    KC_CHECK(kc_train_on_batch(m, x, y, 2, NULL));
    kc_model_free(m);
    /* first, with trainable weights of its own: refused */
    m = kc_sequential(kc_shape1(4));
    kc_add(m, kc_custom(&noback_weights_type, NULL));
    kc_add(m, kc_dense(2, KC_SOFTMAX));
    KC_EXPECT_ERR(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0), KC_EINVAL,
                  "layer no_back_weights (NoBackWeights) is a custom layer whose backward is "
                  "missing, and training needs its gradient (it has trainable weights)");
    /* inference needs no compile */
    float out[4];
    KC_CHECK(kc_predict(m, x, 2, out));
    kc_model_free(m);
}

Test(errors, weight_declared_outside_build) {
    kc_model *m = build(NULL);
    kc_custom_layer *c = kc_custom_from_layer(kc_get_layer(m, "antirectifier"));
    cr_assert_not_null(c);
    cr_expect_eq(kc_custom_add_weight(c, "late", kc_shape1(3), (kc_initializer){0}, 1), -1);
    cr_expect(strstr(kc_last_error(), "layer antirectifier (Antirectifier): weight 'late': "
                                      "declared outside build"),
              "%s", kc_last_error());
    cr_expect_eq(kc_custom_weight_count(c), 1);
    cr_expect_null(kc_custom_weight(c, 1));
    cr_expect_null(kc_custom_weight(c, -1));
    kc_model_free(m);
}

static kc_status bad_weight_build(kc_custom_layer *self, kc_shape in, kc_shape *out) {
    kc_custom_add_weight(self, "w", kc_shape2(in.dims[0], 0), (kc_initializer){0}, 1);
    return KC_OK; /* the failed declaration fails the build anyway */
}
static kc_status twice_build(kc_custom_layer *self, kc_shape in, kc_shape *out) {
    kc_custom_add_weight(self, "w", in, (kc_initializer){0}, 1);
    return kc_custom_add_weight(self, "w", in, (kc_initializer){0}, 1) < 0 ? KC_EINVAL : KC_OK;
}
static kc_status silent_build(kc_custom_layer *self, kc_shape in, kc_shape *out) {
    return KC_EINVAL;
}
static kc_status says_build(kc_custom_layer *self, kc_shape in, kc_shape *out) {
    return kc_custom_error(self, KC_EINVAL, "needs %d features, got %d", 3, in.dims[0]);
}
static kc_status zero_out_build(kc_custom_layer *self, kc_shape in, kc_shape *out) {
    out->rank = 0;
    return KC_OK;
}
static kc_status orthogonal_build(kc_custom_layer *self, kc_shape in, kc_shape *out) {
    return kc_custom_add_weight(self, "q", kc_shape2(4, 4), (kc_initializer){.kind = KC_INIT_ORTHOGONAL}, 1) < 0
               ? KC_EINVAL : KC_OK;
}

static void build_error(const char *cls, kc_status (*build)(kc_custom_layer *, kc_shape, kc_shape *),
                        const char *needle) {
    kc_custom_layer_type t = {.class_name = cls, .build = build, .forward = fwd_copy};
    kc_model *m = kc_sequential(kc_shape1(4));
    KC_EXPECT_ERR(kc_add(m, kc_custom(&t, NULL)), KC_EINVAL, needle);
    kc_model_free(m);
}

Test(errors, builds_that_fail_say_why) {
    build_error("Broken", bad_weight_build, "layer broken (Broken): weight 'w': shape (4, 0)");
    build_error("Twice", twice_build, "layer twice (Twice): weight 'w': the layer already has a "
                                      "weight of that name");
    build_error("Silent", silent_build, "layer silent (Silent): build failed (KC_EINVAL) on input "
                                        "shape (4)");
    build_error("Says", says_build, "layer says (Says): needs 3 features, got 4");
    build_error("ZeroOut", zero_out_build, "layer zero_out (ZeroOut): build set the output shape ()");
    /* every Keras initializer is available to custom weights (initializers.c) */
    kc_custom_layer_type t = {.class_name = "Ortho", .build = orthogonal_build, .forward = fwd_copy};
    kc_model *m = kc_sequential(kc_shape1(4));
    KC_CHECK(kc_add(m, kc_custom(&t, NULL)));
    float q[16];
    KC_CHECK(kc_get_weights(m, q, 16));
    for (int i = 0; i < 4; i++) /* orthogonal rows: unit length */
        cr_expect(fabs(q[4 * i] * q[4 * i] + q[4 * i + 1] * q[4 * i + 1] + q[4 * i + 2] * q[4 * i + 2] +
                       q[4 * i + 3] * q[4 * i + 3] - 1.0) < 1e-5);
    kc_model_free(m);
}

static int64_t no_scratch(const kc_custom_layer *self, int batch) { return 0; }

Test(errors, invalid_types_are_refused) {
    cr_expect_null(kc_custom(NULL, NULL));
    cr_expect(strstr(kc_last_error(), "the layer type is NULL"));
    kc_custom_layer_type t = {.class_name = "Dense", .forward = fwd_copy};
    KC_EXPECT_ERR(kc_register_layer_type(&t), KC_EINVAL, "'Dense' is the name of a Keras class");
    t.class_name = "two words";
    KC_EXPECT_ERR(kc_register_layer_type(&t), KC_EINVAL, "class_name 'two words' is not a name");
    t.class_name = "Fine";
    t.package = "a>b";
    KC_EXPECT_ERR(kc_register_layer_type(&t), KC_EINVAL, "package 'a>b'");
    t.package = NULL;
    t.forward = NULL;
    KC_EXPECT_ERR(kc_register_layer_type(&t), KC_EINVAL, "custom layer type Fine has no forward");
    t.forward = fwd_copy;
    kc_config_field f = {"x", KC_FIELD_FLOAT, 8, 0};
    t.config_fields = &f;
    t.n_config_fields = 1;
    t.config_size = 8;
    KC_EXPECT_ERR(kc_register_layer_type(&t), KC_EINVAL, "config field 'x' (offset 8, 4 bytes) "
                                                         "lies outside config_size 8");
    f = (kc_config_field){"name", KC_FIELD_INT, 0, 0};
    KC_EXPECT_ERR(kc_register_layer_type(&t), KC_EINVAL, "config field 0 has the name 'name'");
    f = (kc_config_field){"s", KC_FIELD_STRING, 0, 0};
    KC_EXPECT_ERR(kc_register_layer_type(&t), KC_EINVAL, "config field 's' has kind");
    t.n_config_fields = 0;
    KC_CHECK(kc_register_layer_type(&t));
    /* another type under a name already taken */
    kc_custom_layer_type other = t;
    other.scratch_size = no_scratch;
    KC_EXPECT_ERR(kc_register_layer_type(&other), KC_EINVAL,
                  "another custom layer type already has the class name 'Fine'");
    cr_expect_null(kc_custom(&other, NULL));
    /* the same type in another struct (a copy) is that type */
    kc_custom_layer_type copy = t;
    kc_layer *l = kc_custom(&copy, NULL);
    cr_expect_not_null(l, "%s", kc_last_error());
    kc_layer_free(l);
}
