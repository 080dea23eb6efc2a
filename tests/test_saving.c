/* test_saving.c: .keras, legacy .h5 and .weights.h5 files (kerac's own, Keras 3's and
 * tf.keras 2's fixtures from tests/gen_keras_files.py), JSON configs, resuming bit for bit,
 * saving that is never half done, and clear errors for bad files. */
#include "testutil.h"
#include <cjson/cJSON.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <zip.h>

#define FIX "tests/fixtures/saved/"
#define N 48

/* the inputs tests/gen_keras_files.py and tools/write_models.c use */
static void make_data(float *x, float *y) {
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 4; j++) x[i * 4 + j] = (float)((i * 7 + j * 5) % 13) / 13.0f - 0.3f;
        for (int j = 0; j < 3; j++) y[i * 3 + j] = (float)((i + (i / 5)) % 3 == j);
    }
}

static kc_dataset dataset(float *x, float *y) {
    return (kc_dataset){.count = N, .x_shape = kc_shape2(2, 2), .x_dtype = KC_FLOAT32, .x = x,
                        .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = y};
}

/* Flatten (2,2) -> Dense 8 relu -> Dropout 0.25 -> Dense 3 softmax, or with adam the Adam
 * model: Dense 3 linear + Activation softmax */
static kc_model *build(int adam, int compile) {
    kc_model *m = kc_sequential(kc_shape2(2, 2));
    kc_add(m, kc_flatten());
    kc_add(m, kc_dense(8, KC_RELU));
    if (!adam) kc_add(m, kc_dropout(0.25f));
    kc_add(m, kc_dense(3, adam ? KC_LINEAR : KC_SOFTMAX));
    if (adam) kc_add(m, kc_activation(KC_SOFTMAX));
    if (compile)
        KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY,
                            adam ? kc_adam(&(kc_adam_opts){.learning_rate = 0.01f})
                                 : kc_rmsprop(&(kc_rmsprop_opts){.learning_rate = 0.005f}),
                            KC_METRIC_ACCURACY));
    return m;
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
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) v[i] = (float)cJSON_GetArrayItem(a, i)->valuedouble;
    if (count) *count = n;
    return v;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

/* m's predictions on the fixture's x match the fixture's (Keras's) within tol */
static void expect_predictions(kc_model *m, const char *json_path, double tol) {
    cJSON *j = load_json(json_path);
    int nx, np;
    float *x = json_floats(j, "x", &nx), *pred = json_floats(j, "pred", &np);
    float *out = malloc(sizeof(float) * (size_t)np);
    KC_CHECK(kc_predict(m, x, nx / 4, out));
    double d = max_diff(out, pred, np);
    cr_expect(d <= tol, "%s: predictions differ from Keras's by %g", json_path, d);
    free(x);
    free(pred);
    free(out);
    cJSON_Delete(j);
}

static void weights_of(kc_model *m, float **w, int64_t *n) {
    *n = kc_count_params(m);
    *w = malloc(sizeof(float) * (size_t)*n);
    KC_CHECK(kc_get_weights(m, *w, *n));
}

/* ---- Keras's files into kerac ---- */

Test(keras_files, keras3_keras_file_predicts_as_keras) {
    kc_model *m;
    KC_CHECK(kc_load(FIX "k3_rmsprop.keras", &m));
    cr_expect_eq(kc_layer_count(m), 4);
    cr_expect_str_eq(kc_layer_name(m, 1), "dense");
    cr_expect(fabsf(kc_get_learning_rate(m) - 0.005f) < 1e-9f, "lr %g", kc_get_learning_rate(m));
    expect_predictions(m, FIX "k3_rmsprop.json", 1e-5);
    kc_model_free(m);
}

Test(keras_files, keras3_optimizer_state_continues_as_keras) {
    /* Keras took one more train_on_batch step from the saved Adam state (iteration 9) */
    kc_model *m;
    KC_CHECK(kc_load(FIX "k3_adam.keras", &m));
    expect_predictions(m, FIX "k3_adam.json", 1e-5);
    float x[N * 4], y[N * 3];
    make_data(x, y);
    KC_CHECK(kc_train_on_batch(m, x, y, 16, NULL));
    cJSON *j = load_json(FIX "k3_adam.json");
    int n;
    float *after = json_floats(j, "after_step", &n), *w;
    int64_t count;
    weights_of(m, &w, &count);
    cr_assert_eq(count, n);
    double d = max_diff(w, after, n);
    cr_expect(d < 1e-5, "after one more Adam step kerac differs from Keras by %g", d);
    free(after);
    free(w);
    cJSON_Delete(j);
    kc_model_free(m);
}

Test(keras_files, keras3_weights_file_and_legacy_h5) {
    kc_model *m = build(0, 1);
    KC_CHECK(kc_load_weights(m, FIX "k3_rmsprop.weights.h5"));
    expect_predictions(m, FIX "k3_rmsprop.json", 1e-5);
    kc_model_free(m);
    KC_CHECK(kc_load(FIX "k3_rmsprop_legacy.h5", &m));
    expect_predictions(m, FIX "k3_rmsprop.json", 1e-5);
    kc_model_free(m);
}

Test(keras_files, tf_keras2_h5_and_weights) {
    kc_model *m;
    KC_CHECK(kc_load(FIX "tf2_rmsprop.h5", &m));
    cr_expect(fabsf(kc_get_learning_rate(m) - 0.005f) < 1e-9f);
    expect_predictions(m, FIX "tf2_rmsprop.json", 1e-5);
    kc_model_free(m);
    m = build(0, 0);
    KC_CHECK(kc_load_weights(m, FIX "tf2_rmsprop_weights.h5"));
    expect_predictions(m, FIX "tf2_rmsprop.json", 1e-5);
    kc_model_free(m);
}

/* ---- kerac's files back into kerac ---- */

static void roundtrip(const char *ext, int adam) {
    char *dir = tu_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/m%s", dir, ext);
    float x[N * 4], y[N * 3];
    make_data(x, y);
    kc_dataset d = dataset(x, y);
    kc_set_random_seed(5);
    kc_model *a = build(adam, 1);
    KC_CHECK(kc_fit(a, &d, &(kc_fit_opts){.epochs = 2, .batch_size = 16, .verbose = -1}, NULL));
    KC_CHECK(kc_save(a, path));
    kc_model *b;
    if (!strcmp(ext, ".weights.h5")) {
        b = build(adam, 1);
        KC_CHECK(kc_load_weights(b, path));
    } else {
        KC_CHECK(kc_load(path, &b));
    }
    float pa[N * 3], pb[N * 3];
    KC_CHECK(kc_predict(a, x, N, pa));
    KC_CHECK(kc_predict(b, x, N, pb));
    cr_expect_eq(memcmp(pa, pb, sizeof pa), 0, "%s: predictions differ", ext);
    /* the optimizer state came along: one more step lands on the same weights */
    KC_CHECK(kc_train_on_batch(a, x, y, 16, NULL));
    KC_CHECK(kc_train_on_batch(b, x, y, 16, NULL));
    float *wa, *wb;
    int64_t n;
    weights_of(a, &wa, &n);
    weights_of(b, &wb, &n);
    if (!adam) { /* dropout masks follow the step counter, which .weights.h5 does not hold */
        if (strcmp(ext, ".weights.h5"))
            cr_expect_eq(memcmp(wa, wb, sizeof(float) * (size_t)n), 0, "%s: step differs", ext);
    } else {
        cr_expect_eq(memcmp(wa, wb, sizeof(float) * (size_t)n), 0, "%s: step differs", ext);
    }
    free(wa);
    free(wb);
    kc_model_free(a);
    kc_model_free(b);
}

Test(kerac_files, roundtrip_keras) { roundtrip(".keras", 0), roundtrip(".keras", 1); }
Test(kerac_files, roundtrip_legacy_h5) { roundtrip(".h5", 0), roundtrip(".h5", 1); }
Test(kerac_files, roundtrip_weights_h5) { roundtrip(".weights.h5", 0), roundtrip(".weights.h5", 1); }

Test(kerac_files, legacy_weights_only_h5) {
    char *dir = tu_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/w.h5", dir);
    kc_model *a = build(1, 1), *b = build(1, 0);
    KC_CHECK(kc_save_weights(a, path));
    KC_CHECK(kc_load_weights(b, path));
    float *wa, *wb;
    int64_t n;
    weights_of(a, &wa, &n);
    weights_of(b, &wb, &n);
    cr_expect_eq(memcmp(wa, wb, sizeof(float) * (size_t)n), 0);
    free(wa);
    free(wb);
    kc_model_free(a);
    kc_model_free(b);
}

Test(kerac_files, unknown_extension_and_weights_only_load) {
    char *dir = tu_tmpdir(), path[256];
    kc_model *m = build(0, 1), *l;
    snprintf(path, sizeof path, "%s/m.txt", dir);
    KC_EXPECT_ERR(kc_save(m, path), KC_EINVAL, "unknown format");
    snprintf(path, sizeof path, "%s/m.weights.h5", dir);
    KC_CHECK(kc_save(m, path));
    KC_EXPECT_ERR(kc_load(path, &l), KC_EFORMAT, "weights-only");
    cr_expect_null(l);
    kc_model_free(m);
}

/* ---- JSON ---- */

Test(json, to_json_and_back) {
    kc_model *m = build(0, 1), *b;
    char *js;
    KC_CHECK(kc_model_to_json(m, &js));
    cr_expect(strstr(js, "\"class_name\":\"Dropout\"") != NULL, "%s", js);
    cr_expect(strstr(js, "\"rate\":0.25") != NULL, "%s", js);
    KC_CHECK(kc_model_from_json(js, &b));
    cr_expect_eq(kc_layer_count(b), 4);
    cr_expect_eq(kc_count_params(b), kc_count_params(m));
    cr_expect_str_eq(kc_layer_name(b, 3), "dense_1");
    free(js);
    kc_model_free(m);
    kc_model_free(b);
}

Test(json, tf_keras2_style_json) {
    /* tf.keras 2's model.to_json(): no InputLayer, batch_input_shape on the first layer */
    const char *js =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"sequential\", \"layers\": ["
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d1\", \"trainable\": true, "
        "\"batch_input_shape\": [null, 784], \"dtype\": \"float32\", \"units\": 512, "
        "\"activation\": \"relu\", \"use_bias\": true}},"
        "{\"class_name\": \"Dropout\", \"config\": {\"name\": \"dr\", \"rate\": 0.2}},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d2\", \"units\": 10, "
        "\"activation\": \"softmax\"}}]}, \"keras_version\": \"2.15.0\", \"backend\": "
        "\"tensorflow\"}";
    kc_model *m;
    KC_CHECK(kc_model_from_json(js, &m));
    cr_expect_eq(kc_count_params(m), 784 * 512 + 512 + 512 * 10 + 10);
    cr_expect_str_eq(kc_layer_name(m, 0), "d1");
    kc_model_free(m);
}

Test(json, bad_json_errors) {
    kc_model *m;
    KC_EXPECT_ERR(kc_model_from_json("{\"class_name\": ", &m), KC_EFORMAT, "not valid JSON");
    KC_EXPECT_ERR(kc_model_from_json("{\"class_name\": \"Functional\", \"config\": {}}", &m),
                  KC_EFORMAT, "the Functional config has no layers");
    KC_EXPECT_ERR(kc_model_from_json("{\"class_name\": \"Subclassed\", \"config\": {}}", &m),
                  KC_EFORMAT, "the model is a Subclassed; kerac loads Sequential and Functional");
    const char *conv = "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                       "{\"class_name\": \"InputLayer\", \"config\": {\"batch_shape\": [null, 8, 8, 1]}},"
                       "{\"class_name\": \"ConvLSTM2D\", \"config\": {\"name\": \"c\"}}]}}";
    KC_EXPECT_ERR(kc_model_from_json(conv, &m), KC_EFORMAT,
                  "layer 1 'c': unknown layer class 'ConvLSTM2D'");
    const char *crelu = "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                       "{\"class_name\": \"InputLayer\", \"config\": {\"batch_shape\": [null, 4]}},"
                       "{\"class_name\": \"Dense\", \"config\": {\"name\": \"dd\", \"units\": 3, "
                       "\"activation\": \"crelu\"}}]}}";
    KC_EXPECT_ERR(kc_model_from_json(crelu, &m), KC_EFORMAT, "'dd': unknown activation 'crelu'");
    const char *noshape = "{\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                          "{\"class_name\": \"Dense\", \"config\": {\"units\": 3}}]}}";
    KC_EXPECT_ERR(kc_model_from_json(noshape, &m), KC_EFORMAT, "no input shape");
    cr_expect_null(m);
}

/* ---- resume ---- */

static void resume_case(const char *ext, int adam) {
    char *dir = tu_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/ckpt%s", dir, ext);
    float x[N * 4], y[N * 3];
    make_data(x, y);
    kc_dataset d = dataset(x, y);
    /* three uninterrupted epochs */
    kc_set_random_seed(99);
    kc_model *a = build(adam, 1);
    KC_CHECK(kc_fit(a, &d, &(kc_fit_opts){.epochs = 3, .batch_size = 10, .verbose = -1}, NULL));
    /* two epochs, save, a different seed in between, load, one more */
    kc_set_random_seed(99);
    kc_model *b = build(adam, 1);
    KC_CHECK(kc_fit(b, &d, &(kc_fit_opts){.epochs = 2, .batch_size = 10, .verbose = -1}, NULL));
    KC_CHECK(kc_save(b, path));
    kc_model_free(b);
    kc_set_random_seed(12345);
    KC_CHECK(kc_load(path, &b));
    cr_expect_eq(kc_model_epoch(b), 2);
    KC_CHECK(kc_fit(b, &d,
                    &(kc_fit_opts){.initial_epoch = kc_model_epoch(b), .epochs = 3,
                                   .batch_size = 10, .verbose = -1},
                    NULL));
    float *wa, *wb;
    int64_t n;
    weights_of(a, &wa, &n);
    weights_of(b, &wb, &n);
    cr_expect_eq(memcmp(wa, wb, sizeof(float) * (size_t)n), 0,
                 "%s: resumed weights differ from uninterrupted ones (max %g)", ext,
                 max_diff(wa, wb, n));
    cr_expect_eq(kc_model_epoch(b), 3);
    free(wa);
    free(wb);
    kc_model_free(a);
    kc_model_free(b);
}

Test(resume, bit_for_bit_keras_rmsprop_dropout) { resume_case(".keras", 0); }
Test(resume, bit_for_bit_keras_adam) { resume_case(".keras", 1); }
Test(resume, bit_for_bit_legacy_h5) { resume_case(".h5", 0); }

/* ---- atomic saving ---- */

Test(atomic, killed_while_saving_leaves_old_or_new, .timeout = 120) {
    char *dir = tu_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/target.keras", dir);
    float x[N * 4], y[N * 3], pa[N * 3], pb[N * 3], pc[N * 3];
    make_data(x, y);
    /* two different models saved in turn */
    kc_set_random_seed(1);
    kc_model *a = build(0, 1);
    kc_set_random_seed(2);
    kc_model *b = build(0, 1);
    KC_CHECK(kc_predict(a, x, N, pa));
    KC_CHECK(kc_predict(b, x, N, pb));
    KC_CHECK(kc_save(a, path));
    srand((unsigned)time(NULL));
    int from_a = 0, from_b = 0;
    for (int round = 0; round < 25; round++) {
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
            for (int i = 0;; i++)
                if (kc_save(i & 1 ? a : b, path)) _exit(3);
        }
        struct timespec ts = {0, (long)(rand() % 20000) * 1000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFSIGNALED(status), "the saving child stopped by itself (status %d)", status);
        kc_model *c;
        KC_CHECK(kc_load(path, &c));
        KC_CHECK(kc_predict(c, x, N, pc));
        int is_a = !memcmp(pc, pa, sizeof pc), is_b = !memcmp(pc, pb, sizeof pc);
        cr_assert(is_a || is_b, "round %d: the target is neither model", round);
        from_a += is_a;
        from_b += is_b;
        kc_model_free(c);
    }
    cr_log_info("target held model a %d times, b %d times", from_a, from_b);
    kc_model_free(a);
    kc_model_free(b);
}

/* ---- bad files ---- */

static void *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(*size);
    cr_assert_eq(fread(buf, 1, *size, f), *size);
    fclose(f);
    return buf;
}

Test(bad_files, missing_empty_and_not_a_model) {
    char *dir = tu_tmpdir(), path[256];
    kc_model *m;
    KC_EXPECT_ERR(kc_load("/nonexistent/x.keras", &m), KC_EIO, "/nonexistent/x.keras");
    snprintf(path, sizeof path, "%s/empty.keras", dir);
    tu_write_file(path, "", 0);
    KC_EXPECT_ERR(kc_load(path, &m), KC_EFORMAT, "empty.keras");
    snprintf(path, sizeof path, "%s/text.h5", dir);
    tu_write_file(path, "hello, world", 12);
    KC_EXPECT_ERR(kc_load(path, &m), KC_EFORMAT, "text.h5");
    cr_expect_null(m);
}

Test(bad_files, truncated_keras_and_h5) {
    char *dir = tu_tmpdir(), path[256];
    const char *sources[] = {FIX "k3_rmsprop.keras", FIX "tf2_rmsprop.h5"};
    for (int s = 0; s < 2; s++) {
        size_t size;
        unsigned char *buf = read_all(sources[s], &size);
        snprintf(path, sizeof path, "%s/cut%s", dir, s ? ".h5" : ".keras");
        for (size_t cut = 0; cut < size; cut += size / 23 + 1) {
            tu_write_file(path, buf, cut);
            kc_model *m = NULL;
            kc_status st = kc_load(path, &m);
            cr_expect_neq(st, KC_OK, "%s cut to %zu bytes loaded", sources[s], cut);
            cr_expect(strstr(kc_last_error(), "cut") != NULL, "no file name in: %s", kc_last_error());
            cr_expect_null(m);
        }
        free(buf);
    }
}

Test(bad_files, corrupt_keras_bytes_fail_the_crc) {
    char *dir = tu_tmpdir(), path[256];
    size_t size;
    unsigned char *buf = read_all(FIX "k3_rmsprop.keras", &size);
    snprintf(path, sizeof path, "%s/corrupt.keras", dir);
    srand(7);
    int failed = 0;
    for (int round = 0; round < 40; round++) {
        unsigned char *copy = malloc(size);
        memcpy(copy, buf, size);
        size_t at = (size_t)rand() % size;
        copy[at] ^= (unsigned char)(1 + rand() % 255);
        tu_write_file(path, copy, size);
        kc_model *m = NULL;
        kc_status st = kc_load(path, &m); /* must not crash; usually an error */
        if (st) {
            failed++;
            cr_expect(strstr(kc_last_error(), "corrupt.keras") != NULL, "%s", kc_last_error());
        }
        kc_model_free(m);
        free(copy);
    }
    cr_expect(failed > 30, "only %d of 40 corruptions were refused", failed);
    free(buf);
}

/* A .keras archive from config.json text and a weights file's bytes */
static void write_keras(const char *path, const char *config, const void *h5, size_t h5_size) {
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, NULL);
    cr_assert_not_null(z);
    zip_source_t *s1 = zip_source_buffer(z, config, strlen(config), 0);
    zip_source_t *s2 = zip_source_buffer(z, h5, h5_size, 0);
    cr_assert(zip_file_add(z, "config.json", s1, 0) >= 0);
    cr_assert(zip_file_add(z, "model.weights.h5", s2, 0) >= 0);
    cr_assert_eq(zip_close(z), 0);
}

/* config.json of the k3_rmsprop fixture, with one replacement */
static char *fixture_config(const char *from, const char *to) {
    zip_t *z = zip_open(FIX "k3_rmsprop.keras", ZIP_RDONLY, NULL);
    cr_assert_not_null(z);
    zip_stat_t sb;
    cr_assert_eq(zip_stat(z, "config.json", 0, &sb), 0);
    char *text = calloc(1, sb.size + 1 + 256);
    zip_file_t *f = zip_fopen(z, "config.json", 0);
    cr_assert_eq(zip_fread(f, text, sb.size), (zip_int64_t)sb.size);
    zip_fclose(f);
    zip_close(z);
    if (from) {
        char *at = strstr(text, from);
        cr_assert_not_null(at, "config.json lacks %s", from);
        memmove(at + strlen(to), at + strlen(from), strlen(at + strlen(from)) + 1);
        memcpy(at, to, strlen(to));
    }
    return text;
}

/* the fixture's model.weights.h5 with a change made through HDF5: delete or replace */
static void *fixture_weights(size_t *size, const char *delete_path, const char *reshape_path) {
    zip_t *z = zip_open(FIX "k3_rmsprop.keras", ZIP_RDONLY, NULL);
    zip_stat_t sb;
    zip_stat(z, "model.weights.h5", 0, &sb);
    char *buf = malloc(sb.size);
    zip_file_t *f = zip_fopen(z, "model.weights.h5", 0);
    cr_assert_eq(zip_fread(f, buf, sb.size), (zip_int64_t)sb.size);
    zip_fclose(f);
    zip_close(z);
    char *dir = tu_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/w.h5", dir);
    tu_write_file(path, buf, sb.size);
    free(buf);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert(h >= 0);
    if (delete_path) cr_assert(H5Ldelete(h, delete_path, H5P_DEFAULT) >= 0);
    if (reshape_path) {
        cr_assert(H5Ldelete(h, reshape_path, H5P_DEFAULT) >= 0);
        hsize_t dims[2] = {5, 8};
        float zeros[40] = {0};
        hid_t sp = H5Screate_simple(2, dims, NULL);
        hid_t ds = H5Dcreate2(h, reshape_path, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                              H5P_DEFAULT);
        H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros);
        H5Dclose(ds);
        H5Sclose(sp);
    }
    H5Fclose(h);
    return read_all(path, size);
}

Test(bad_files, missing_weight_names_layer_and_variable) {
    char *dir = tu_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/missing.keras", dir);
    size_t size;
    void *h5 = fixture_weights(&size, "layers/dense_1/vars/1", NULL);
    char *config = fixture_config(NULL, NULL);
    write_keras(path, config, h5, size);
    kc_model *m;
    KC_EXPECT_ERR(kc_load(path, &m), KC_EFORMAT, "missing.keras: layer 'dense_1' (Dense)");
    h5 = (free(h5), fixture_weights(&size, "layers/dense/vars", NULL));
    write_keras(path, config, h5, size);
    KC_EXPECT_ERR(kc_load(path, &m), KC_EFORMAT, "layer 'dense' (Dense): its weights (layers/dense/vars) are missing");
    free(h5);
    free(config);
}

Test(bad_files, wrong_shape_names_layer_and_variable) {
    char *dir = tu_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/shape.keras", dir);
    size_t size;
    void *h5 = fixture_weights(&size, NULL, "layers/dense/vars/0");
    char *config = fixture_config(NULL, NULL);
    write_keras(path, config, h5, size);
    kc_model *m;
    KC_EXPECT_ERR(kc_load(path, &m), KC_EFORMAT,
                  "shape.keras: layer 'dense' (Dense): variable 'kernel' (layers/dense/vars/0): "
                  "has shape (5, 8), the model needs (4, 8)");
    free(h5);
    free(config);
}

Test(bad_files, unknown_class_and_activation_name_the_layer) {
    char *dir = tu_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/class.keras", dir);
    size_t size;
    void *h5 = fixture_weights(&size, NULL, NULL);
    char *config = fixture_config("\"class_name\": \"Dropout\"", "\"class_name\": \"GaussianNoise\"");
    write_keras(path, config, h5, size);
    kc_model *m;
    KC_EXPECT_ERR(kc_load(path, &m), KC_EFORMAT,
                  "class.keras: layer 3 'dropout': unknown layer class 'GaussianNoise'");
    free(config);
    config = fixture_config("\"activation\": \"relu\"", "\"activation\": \"crelu\"");
    write_keras(path, config, h5, size);
    KC_EXPECT_ERR(kc_load(path, &m), KC_EFORMAT, "layer 2 'dense': unknown activation 'crelu'");
    free(config);
    config = fixture_config("{", "{]");
    write_keras(path, config, h5, size);
    KC_EXPECT_ERR(kc_load(path, &m), KC_EFORMAT, "config.json is not valid JSON");
    free(config);
    free(h5);
}

Test(bad_files, weights_into_the_wrong_model) {
    kc_model *m = kc_sequential(kc_shape1(5));
    kc_add(m, kc_dense(8, KC_RELU));
    kc_add(m, kc_dense(3, KC_SOFTMAX));
    KC_EXPECT_ERR(kc_load_weights(m, FIX "tf2_rmsprop_weights.h5"), KC_EFORMAT,
                  "layer 'dense' (Dense): variable 'kernel' (dense/dense/kernel:0): has shape "
                  "(4, 8), the model needs (5, 8)");
    kc_model_free(m);
    m = kc_sequential(kc_shape2(2, 2));
    kc_add(m, kc_flatten());
    kc_add(m, kc_dense(8, KC_RELU));
    KC_EXPECT_ERR(kc_load_weights(m, FIX "tf2_rmsprop_weights.h5"), KC_EFORMAT,
                  "has weights but the model has no layer left");
    kc_model_free(m);
}

Test(bad_files, corrupt_h5_never_crashes, .timeout = 240) {
    /* a raw .h5 has no checksum over its metadata: damaged files are refused by h5lite's
     * checks, in-process (test_h5lite.c crafts many more) */
    char *dir = tu_tmpdir(), path[256];
    size_t size;
    unsigned char *buf = read_all(FIX "tf2_rmsprop.h5", &size);
    snprintf(path, sizeof path, "%s/damaged.h5", dir);
    srand(11);
    int refused = 0;
    for (int round = 0; round < 60; round++) {
        unsigned char *copy = malloc(size);
        memcpy(copy, buf, size);
        for (int k = 0; k < 3; k++) copy[(size_t)rand() % (size < 4096 ? size : 4096)] ^= 0x5a;
        tu_write_file(path, copy, size);
        kc_model *m = NULL;
        if (kc_load(path, &m)) {
            refused++;
            cr_expect(strstr(kc_last_error(), "damaged.h5") != NULL, "%s", kc_last_error());
        }
        kc_model_free(m);
        m = build(0, 0);
        kc_load_weights(m, path);
        kc_model_free(m);
        free(copy);
    }
    cr_expect(refused > 10, "only %d of 60 damaged files were refused", refused);
    free(buf);
}

/* A .keras whose zip directory claims a model.weights.h5 far larger than its stored bytes (a
 * zip bomb's header): refused by name before anything is allocated for it */
Test(bad_files, zip_entry_claiming_more_than_it_stores) {
    char *dir = tu_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/bomb.keras", dir);
    kc_model *m = build(0, 1);
    KC_CHECK(kc_save(m, path));
    kc_model_free(m);
    size_t size;
    unsigned char *buf = read_all(path, &size);
    const char *name = "model.weights.h5";
    size_t nlen = strlen(name);
    int patched = 0;
    for (size_t i = 0; i + 46 + nlen <= size; i++) {
        if (!memcmp(buf + i, "PK\x01\x02", 4) && !memcmp(buf + i + 46, name, nlen)) {
            memcpy(buf + i + 24, "\xff\xff\xff\x7f", 4); /* uncompressed size: 2 GiB */
            patched++;
        }
        if (!memcmp(buf + i, "PK\x03\x04", 4) && i + 30 + nlen <= size &&
            !memcmp(buf + i + 30, name, nlen)) {
            memcpy(buf + i + 22, "\xff\xff\xff\x7f", 4);
            patched++;
        }
    }
    cr_assert_eq(patched, 2, "the archive's entries for %s were not found", name);
    tu_write_file(path, buf, size);
    free(buf);
    kc_model *out = NULL;
    KC_EXPECT_ERR(kc_load(path, &out), KC_EFORMAT, "model.weights.h5 claims 2147483647 bytes");
    cr_expect_null(out);
}
