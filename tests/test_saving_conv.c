/* test_saving_conv.c: saving and loading the convolution layers (Conv2D, MaxPooling2D,
 * AveragePooling2D, GlobalAveragePooling2D, Reshape, BatchNormalization) and the optimizers
 * Adadelta, Adagrad, Nadam and AdamW: round trips through .keras, .h5 and .weights.h5,
 * resuming bit for bit, Keras 3's own files (tests/gen_keras_files.py keras3-conv), tf.keras 2
 * style configs, and clear errors for what kerac cannot do. */
#include "testutil.h"
#include "conv_models.h"
#include <cjson/cJSON.h>

#define FIX "tests/fixtures/saved/"

static const char *const opts[] = {"adadelta", "adagrad", "nadam", "adamw"};

static kc_dataset conv_dataset(float *x, float *y) {
    return (kc_dataset){.count = CN, .x_shape = kc_shape3(12, 12, 1), .x_dtype = KC_FLOAT32,
                        .x = x, .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = y};
}

static void weights_of(kc_model *m, float **w, int64_t *n) {
    *n = kc_count_params(m);
    *w = malloc(sizeof(float) * (size_t)*n);
    KC_CHECK(kc_get_weights(m, *w, *n));
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

/* ---- round trips ---- */

static void roundtrip(const char *ext, const char *opt) {
    char *dir = tu_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/conv%s", dir, ext);
    static float x[CN * CPIX], y[CN * 3];
    conv_data(x, y);
    kc_dataset d = conv_dataset(x, y);
    kc_set_random_seed(21);
    kc_model *a = conv_model(opt, 3);
    cr_assert_not_null(a, "%s: %s", opt, kc_last_error());
    KC_CHECK(kc_fit(a, &d, &(kc_fit_opts){.epochs = 2, .batch_size = 8, .verbose = -1}, NULL));
    KC_CHECK(kc_save(a, path));
    kc_model *b;
    if (!strcmp(ext, ".weights.h5")) {
        b = conv_model(opt, 3);
        KC_CHECK(kc_load_weights(b, path));
    } else {
        KC_CHECK(kc_load(path, &b));
    }
    cr_assert_eq(kc_layer_count(b), 9);
    for (int i = 0; i < 9; i++)
        cr_expect_str_eq(kc_layer_name(b, i), kc_layer_name(a, i), "%s %s: layer %d", ext, opt, i);
    cr_expect_eq(kc_layer_trainable_count(b, 1), 8, "%s: BatchNormalization trains gamma, beta", ext);
    cr_expect_eq(kc_get_learning_rate(b), kc_get_learning_rate(a));
    float pa[CN * 3], pb[CN * 3];
    KC_CHECK(kc_predict(a, x, CN, pa));
    KC_CHECK(kc_predict(b, x, CN, pb));
    cr_expect_eq(memcmp(pa, pb, sizeof pa), 0, "%s %s: predictions differ", ext, opt);
    /* the optimizer state (Nadam's u_product too) came along: one more step is the same */
    for (int s = 0; s < 2; s++) {
        KC_CHECK(kc_train_on_batch(a, x + s * 8 * CPIX, y + s * 8 * 3, 8, NULL));
        KC_CHECK(kc_train_on_batch(b, x + s * 8 * CPIX, y + s * 8 * 3, 8, NULL));
    }
    float *wa, *wb;
    int64_t n;
    weights_of(a, &wa, &n);
    weights_of(b, &wb, &n);
    cr_expect_eq(memcmp(wa, wb, sizeof(float) * (size_t)n), 0, "%s %s: the steps differ (max %g)",
                 ext, opt, max_diff(wa, wb, n));
    free(wa);
    free(wb);
    kc_model_free(a);
    kc_model_free(b);
}

Test(conv_files, roundtrip_keras) {
    for (int i = 0; i < 4; i++) roundtrip(".keras", opts[i]);
}
Test(conv_files, roundtrip_legacy_h5) {
    for (int i = 0; i < 4; i++) roundtrip(".h5", opts[i]);
}
Test(conv_files, roundtrip_weights_h5) {
    for (int i = 0; i < 4; i++) roundtrip(".weights.h5", opts[i]);
}

Test(conv_files, json_roundtrip_keeps_every_field) {
    kc_model *a = conv_model("nadam", 3), *b;
    char *js, *js2;
    KC_CHECK(kc_model_to_json(a, &js));
    cr_expect(strstr(js, "\"class_name\":\"BatchNormalization\"") != NULL);
    cr_expect(strstr(js, "\"strides\":[2,2],\"padding\":\"same\"") != NULL, "%s", js);
    cr_expect(strstr(js, "\"target_shape\":[2,2,6]") != NULL);
    KC_CHECK(kc_model_from_json(js, &b));
    KC_CHECK(kc_model_to_json(b, &js2));
    cr_expect_str_eq(js, js2);
    free(js);
    free(js2);
    kc_model_free(a);
    kc_model_free(b);
}

/* ---- resume ---- */

static void resume_case(const char *ext, const char *opt) {
    char *dir = tu_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/ckpt%s", dir, ext);
    static float x[CN * CPIX], y[CN * 3];
    conv_data(x, y);
    kc_dataset d = conv_dataset(x, y);
    kc_set_random_seed(77);
    kc_model *a = conv_model(opt, 3);
    KC_CHECK(kc_fit(a, &d, &(kc_fit_opts){.epochs = 3, .batch_size = 5, .verbose = -1}, NULL));
    kc_set_random_seed(77);
    kc_model *b = conv_model(opt, 3);
    KC_CHECK(kc_fit(b, &d, &(kc_fit_opts){.epochs = 2, .batch_size = 5, .verbose = -1}, NULL));
    KC_CHECK(kc_save(b, path));
    kc_model_free(b);
    kc_set_random_seed(4242);
    KC_CHECK(kc_load(path, &b));
    cr_expect_eq(kc_model_epoch(b), 2);
    KC_CHECK(kc_fit(b, &d,
                    &(kc_fit_opts){.initial_epoch = kc_model_epoch(b), .epochs = 3, .batch_size = 5,
                                   .verbose = -1},
                    NULL));
    float *wa, *wb;
    int64_t n;
    weights_of(a, &wa, &n);
    weights_of(b, &wb, &n);
    cr_expect_eq(memcmp(wa, wb, sizeof(float) * (size_t)n), 0,
                 "%s %s: resumed weights differ from uninterrupted ones (max %g)", ext, opt,
                 max_diff(wa, wb, n));
    free(wa);
    free(wb);
    kc_model_free(a);
    kc_model_free(b);
}

Test(conv_resume, bit_for_bit_batchnorm_nadam_keras) { resume_case(".keras", "nadam"); }
Test(conv_resume, bit_for_bit_batchnorm_nadam_h5) { resume_case(".h5", "nadam"); }
Test(conv_resume, bit_for_bit_adadelta_keras) { resume_case(".keras", "adadelta"); }

/* ---- Keras 3's files ---- */

static cJSON *load_json(const char *path) {
    void *buf = NULL;
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    ((char *)buf)[n] = 0;
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
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) v[i] = (float)cJSON_GetArrayItem(a, i)->valuedouble;
    if (count) *count = n;
    return v;
}

/* a Keras 3 convnet trained a few steps: kerac predicts as Keras did, and one more
 * train_on_batch from the saved optimizer state lands where Keras's did */
static void keras3_case(const char *name) {
    char path[256];
    snprintf(path, sizeof path, FIX "%s.json", name);
    cJSON *j = load_json(path);
    snprintf(path, sizeof path, FIX "%s.keras", name);
    kc_model *m;
    KC_CHECK(kc_load(path, &m));
    int nx, np, nw, ny;
    float *x = json_floats(j, "x", &nx), *pred = json_floats(j, "pred", &np);
    float *y = json_floats(j, "y", &ny), *after = json_floats(j, "after_step", &nw);
    float *out = malloc(sizeof(float) * (size_t)np);
    KC_CHECK(kc_predict(m, x, nx / CPIX, out));
    double d = max_diff(out, pred, np);
    cr_expect(d <= 1e-5, "%s: predictions differ from Keras's by %g", name, d);
    KC_CHECK(kc_train_on_batch(m, x, y, 8, NULL));
    float *w;
    int64_t n;
    weights_of(m, &w, &n);
    cr_assert_eq(n, nw);
    d = max_diff(w, after, n);
    cr_expect(d <= 2e-5, "%s: one more step differs from Keras's by %g", name, d);
    free(x), free(pred), free(y), free(after), free(out), free(w);
    kc_model_free(m);
    cJSON_Delete(j);
}

Test(conv_keras_files, keras3_convnet_nadam) { keras3_case("k3_conv_nadam"); }
Test(conv_keras_files, keras3_convnet_adamw) { keras3_case("k3_conv_adamw"); }

Test(conv_keras_files, tf_keras2_style_config) {
    /* tf.keras 2's to_json: no InputLayer, lists for pool_size and axis, legacy fields */
    const char *js =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"sequential\", \"layers\": ["
        "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"trainable\": true, "
        "\"batch_input_shape\": [null, 8, 8, 2], \"dtype\": \"float32\", \"filters\": 3, "
        "\"kernel_size\": [3, 3], \"strides\": [1, 1], \"padding\": \"same\", \"data_format\": "
        "\"channels_last\", \"dilation_rate\": [1, 1], \"groups\": 1, \"activation\": \"relu\", "
        "\"use_bias\": true, \"kernel_regularizer\": null}},"
        "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn\", \"axis\": [3], "
        "\"momentum\": 0.9, \"epsilon\": 0.001, \"center\": true, \"scale\": true, \"fused\": "
        "null, \"virtual_batch_size\": null, \"adjustment\": null}},"
        "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn2\", \"axis\": 3}},"
        "{\"class_name\": \"MaxPooling2D\", \"config\": {\"name\": \"p\", \"pool_size\": [2, 2], "
        "\"padding\": \"valid\", \"strides\": [2, 2], \"data_format\": \"channels_last\"}},"
        "{\"class_name\": \"AveragePooling2D\", \"config\": {\"name\": \"a\", \"pool_size\": 2, "
        "\"strides\": null}},"
        "{\"class_name\": \"GlobalAveragePooling2D\", \"config\": {\"name\": \"g\", "
        "\"data_format\": \"channels_last\", \"keepdims\": false}},"
        "{\"class_name\": \"Reshape\", \"config\": {\"name\": \"r\", \"target_shape\": [3, 1]}}]}}";
    kc_model *m;
    KC_CHECK(kc_model_from_json(js, &m));
    cr_assert_eq(kc_layer_count(m), 7);
    cr_expect_str_eq(kc_layer_name(m, 1), "bn");
    kc_shape o = kc_output_shape(m);
    cr_expect(o.rank == 2 && o.dims[0] == 3 && o.dims[1] == 1);
    cr_expect_eq(kc_layer_param_count(m, 0), 3 * 3 * 2 * 3 + 3);
    kc_model_free(m);
}

/* ---- errors ---- */

/* the convnet's JSON with one replacement must fail with needle */
static void expect_json_error_st(const char *from, const char *to, kc_status st,
                                const char *needle) {
    kc_model *a = conv_model(NULL, 3), *b = NULL;
    char *js;
    KC_CHECK(kc_model_to_json(a, &js));
    char *at = strstr(js, from);
    cr_assert_not_null(at, "the JSON lacks %s", from);
    size_t n = strlen(js) - strlen(from) + strlen(to) + 1;
    char *bad = malloc(n);
    snprintf(bad, n, "%.*s%s%s", (int)(at - js), js, to, at + strlen(from));
    KC_EXPECT_ERR(kc_model_from_json(bad, &b), st, needle);
    cr_expect_null(b);
    free(bad);
    free(js);
    kc_model_free(a);
}

static void expect_json_error(const char *from, const char *to, const char *needle) {
    expect_json_error_st(from, to, KC_EFORMAT, needle);
}

Test(conv_errors, unsupported_config_fields) {
    /* the first Conv2D has strides 2: Keras refuses dilation with strides above 1 */
    expect_json_error("\"dilation_rate\":[1,1]", "\"dilation_rate\":[2,2]",
                      "layer 1 'conv2d': dilation_rate (2, 2) with strides (2, 2) is not "
                      "supported");
    expect_json_error("\"dilation_rate\":[1,1]", "\"dilation_rate\":2",
                      "'conv2d': dilation_rate (2, 2) with strides (2, 2) is not supported");
    expect_json_error("\"dilation_rate\":[1,1]", "\"dilation_rate\":[0,1]",
                      "'conv2d': dilation_rate must hold positive whole numbers");
    expect_json_error("\"groups\":1", "\"groups\":2", "'conv2d': groups 2 is not supported");
    expect_json_error("\"data_format\":\"channels_last\"", "\"data_format\":\"channels_first\"",
                      "'conv2d': data_format 'channels_first' is not supported");
    expect_json_error("\"use_bias\":true", "\"use_bias\":1", "'conv2d': use_bias is not true or false");
    expect_json_error("\"kernel_constraint\":null", "\"kernel_constraint\":\"non_neg\"",
                      "'conv2d': kernel_constraint is not supported");
    expect_json_error("\"padding\":\"same\"", "\"padding\":\"causal\"", "'conv2d': padding 'causal'");
    expect_json_error("\"kernel_regularizer\":null",
                      "\"kernel_regularizer\":\"orthogonal_regularizer\"",
                      "'conv2d': kernel_regularizer: the regularizer 'orthogonal_regularizer' is "
                      "not supported");
    expect_json_error("\"axis\":-1", "\"axis\":1",
                      "layer 2 'batch_normalization': axis 1 is not supported");
    expect_json_error("\"axis\":-1", "\"axis\":[1,2]", "'batch_normalization': axis over 2 axes");
    expect_json_error("\"center\":true", "\"center\":false", "'batch_normalization': center=False");
    expect_json_error("\"scale\":true", "\"scale\":false", "'batch_normalization': scale=False");
    expect_json_error("\"renorm\":false", "\"renorm\":true", "'batch_normalization': renorm=True");
    expect_json_error("\"keepdims\":false", "\"keepdims\":1",
                      "'global_average_pooling2d': keepdims is not true or false");
    expect_json_error("\"pool_size\":[2,2]", "\"pool_size\":[0,2]",
                      "'max_pooling2d': pool_size must hold positive whole numbers");
    /* a config that does not fit the shapes fails as kc_add does */
    expect_json_error_st("\"target_shape\":[2,2,6]", "\"target_shape\":[5,5]", KC_EINVAL,
                         "layer reshape (Reshape): cannot reshape");
}

static int warned;
static void note_warning(const char *message, void *user) { warned++; }

Test(conv_errors, optimizer_config_errors) {
    kc_model *m = conv_model(NULL, 3);
    char *js;
    KC_CHECK(kc_model_to_json(m, &js));
    kc_model_free(m);
    /* Keras 3's base options are every optimizer's (weight_decay, clipnorm); a config kerac
     * cannot represent loads the model uncompiled, for prediction, with a warning naming it */
    const char *cases[][2] = {
        {"{\"class_name\": \"Nadam\", \"config\": {\"weight_decay\": 0.1}}", NULL},
        {"{\"class_name\": \"Adagrad\", \"config\": {\"clipnorm\": 1.0}}", NULL},
        {"{\"class_name\": \"AdamW\", \"config\": {\"weight_decay\": \"x\"}}", "weight_decay must be a number"},
        {"{\"class_name\": \"Adadelta\", \"config\": {\"rho\": 1.5}}", "rho must be in [0, 1)"},
        {"{\"class_name\": \"Adam\", \"config\": {\"clipnorm\": -1.0}}", "clipnorm must be a finite number >= 0"},
        {"{\"class_name\": \"SGD\", \"config\": {\"clipnorm\": 1.0, \"global_clipnorm\": 1.0}}", "only one of clipnorm"},
        {"{\"class_name\": \"SGD\", \"config\": {\"use_ema\": true, \"ema_momentum\": 2}}", "ema_momentum must be in [0, 1]"},
        {"{\"class_name\": \"SGD\", \"config\": {\"gradient_accumulation_steps\": 4}}", "gradient_accumulation_steps is not supported"},
    };
    for (int i = 0; i < 8; i++) {
        size_t n = strlen(js) + 300;
        char *full = malloc(n);
        snprintf(full, n, "%.*s, \"compile_config\": {\"optimizer\": %s, \"loss\": "
                          "\"categorical_crossentropy\"}}",
                 (int)strlen(js) - 1, js, cases[i][0]);
        warned = 0;
        kc_set_warning_handler(note_warning, NULL);
        KC_CHECK(kc_model_from_json(full, &m));
        kc_set_warning_handler(NULL, NULL);
        if (cases[i][1]) {
            cr_expect_eq(warned, 1, "%s", cases[i][0]);
            cr_expect(strstr(kc_last_warning(), cases[i][1]) &&
                          strstr(kc_last_warning(), "uncompiled"),
                      "%s: %s", cases[i][0], kc_last_warning());
            cr_expect_eq(kc_get_learning_rate(m), 0.0f, "%s: compiled", cases[i][0]);
        } else {
            cr_expect_eq(warned, 0, "%s: %s", cases[i][0], kc_last_warning());
            cr_expect_neq(kc_get_learning_rate(m), 0.0f, "%s: not compiled", cases[i][0]);
        }
        kc_model_free(m);
        free(full);
    }
    /* a loss kerac does not know, or one that does not fit the output: the same */
    const char *losses[][2] = {{"\"focal_dice_loss\"", "unknown loss 'focal_dice_loss'"},
                               {"{\"class_name\": \"MyLoss\", \"config\": {}}", "unknown loss 'MyLoss'"}};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(js) + 300;
        char *full = malloc(n);
        snprintf(full, n, "%.*s, \"compile_config\": {\"optimizer\": \"adam\", \"loss\": %s}}",
                 (int)strlen(js) - 1, js, losses[i][0]);
        warned = 0;
        kc_set_warning_handler(note_warning, NULL);
        KC_CHECK(kc_model_from_json(full, &m));
        kc_set_warning_handler(NULL, NULL);
        cr_expect_eq(warned, 1, "%s", losses[i][0]);
        cr_expect(strstr(kc_last_warning(), losses[i][1]) && strstr(kc_last_warning(), "uncompiled"),
                  "%s: %s", losses[i][0], kc_last_warning());
        cr_expect_eq(kc_get_learning_rate(m), 0.0f, "%s: compiled", losses[i][0]);
        float x[28 * 28] = {0}, y[10];
        KC_CHECK(kc_predict(m, x, 1, y)); /* it still predicts */
        kc_model_free(m);
        free(full);
    }
    free(js);
}

Test(conv_errors, wrong_shaped_conv_kernel) {
    char *dir = tu_tmpdir(), path[256];
    kc_model *a = conv_model("adam", 3), *b = conv_model("adam", 2);
    snprintf(path, sizeof path, "%s/w.weights.h5", dir);
    KC_CHECK(kc_save(a, path));
    float *before, *after;
    int64_t n;
    weights_of(b, &before, &n);
    KC_EXPECT_ERR(kc_load_weights(b, path), KC_EFORMAT,
                  "layer 'conv2d' (Conv2D): variable 'kernel' (layers/conv2d/vars/0): has shape "
                  "(3, 3, 1, 4), the model needs (2, 2, 1, 4)");
    weights_of(b, &after, &n);
    cr_expect_eq(memcmp(before, after, sizeof(float) * (size_t)n), 0, "a failed load changed weights");
    snprintf(path, sizeof path, "%s/w.h5", dir);
    KC_CHECK(kc_save(a, path));
    KC_EXPECT_ERR(kc_load_weights(b, path), KC_EFORMAT, "variable 'kernel'");
    free(before);
    free(after);
    kc_model_free(a);
    kc_model_free(b);
}
