/* test_keras_functional.c: Functional models against real Keras (tests/fixtures/functional/,
 * written by tests/gen_keras_functional_fixtures.py from Keras 3 and tf.keras 2): each file
 * Keras saved (.keras, Keras 3's .h5, tf.keras 2's .h5) loads in kerac and gives Keras's
 * outputs, loss, gradients and one SGD and one Adam step within 1e-5 relative; the file kerac
 * saves loads back the same. Weights are matched to Keras's by layer and variable name. */
#include "testutil.h"
#include "io/io.h"
#include "model/model.h"

#define FIX "tests/fixtures/functional/"
#define MAXT 16

typedef struct {
    int n_inputs, n_outputs, batch;
    kc_loss losses[KC_MAX_IO];
    float loss_weights[KC_MAX_IO];
    char out_names[KC_MAX_IO][64];
    int n_weights;
    char wpath[64][128]; /* "layer/var" */
    int wtrain[64];
    int64_t wcount[64];
    struct {
        char name[64];
        int64_t n;
        float *v;
    } t[MAXT + 2 * KC_MAX_IO];
    int n_t;
} fixture;

static kc_loss loss_of_name(const char *n) {
    if (!strcmp(n, "categorical_crossentropy")) return KC_CATEGORICAL_CROSSENTROPY;
    if (!strcmp(n, "sparse_categorical_crossentropy")) return KC_SPARSE_CATEGORICAL_CROSSENTROPY;
    if (!strcmp(n, "binary_crossentropy")) return KC_BINARY_CROSSENTROPY;
    if (!strcmp(n, "mean_squared_error")) return KC_MEAN_SQUARED_ERROR;
    cr_assert_fail("unknown loss %s", n);
    return KC_LOSS_NONE;
}

/* the last two components of a weight path, without ":0": "base/base_d1/kernel" -> "base_d1/kernel" */
static void short_path(const char *p, char *out, size_t size) {
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s", p);
    char *colon = strrchr(tmp, ':');
    if (colon) *colon = 0;
    char *last = strrchr(tmp, '/');
    char *prev = last;
    while (prev && prev > tmp && prev[-1] != '/') prev--;
    snprintf(out, size, "%s", prev ? prev : tmp);
}

static void load_fixture(const char *path, fixture *f) {
    memset(f, 0, sizeof *f);
    FILE *in = fopen(path, "r");
    cr_assert_not_null(in, "cannot open %s", path);
    char line[4096];
    while (fgets(line, sizeof line, in)) {
        char word[64], a[64], b[64];
        int i, rank;
        if (line[0] == '#' || sscanf(line, "%63s", word) != 1) continue;
        if (!strcmp(word, "inputs")) sscanf(line, "%*s %d", &f->n_inputs);
        else if (!strcmp(word, "outputs")) sscanf(line, "%*s %d", &f->n_outputs);
        else if (!strcmp(word, "batch")) sscanf(line, "%*s %d", &f->batch);
        else if (!strcmp(word, "weights")) sscanf(line, "%*s %d", &f->n_weights);
        else if (!strcmp(word, "output")) {
            float w;
            cr_assert_eq(sscanf(line, "%*s %d %63s %63s %f", &i, a, b, &w), 4);
            snprintf(f->out_names[i], 64, "%s", a);
            f->losses[i] = loss_of_name(b);
            f->loss_weights[i] = w;
        } else if (!strcmp(word, "weight")) {
            int tr, dims[8] = {0};
            cr_assert(sscanf(line, "%*s %d %63s %d %d %d %d %d %d", &i, a, &tr, &rank, &dims[0],
                             &dims[1], &dims[2], &dims[3]) >= 4);
            short_path(a, f->wpath[i], sizeof f->wpath[i]);
            f->wtrain[i] = tr;
            int64_t n = 1;
            for (int d = 0; d < rank; d++) n *= dims[d];
            f->wcount[i] = n;
        } else if (!strcmp(word, "tensor")) {
            long long n;
            cr_assert_eq(sscanf(line, "%*s %63s %lld", a, &n), 2);
            cr_assert(f->n_t < MAXT + 2 * KC_MAX_IO);
            snprintf(f->t[f->n_t].name, 64, "%s", a);
            f->t[f->n_t].n = n;
            f->t[f->n_t].v = malloc(sizeof(float) * (size_t)n);
            for (long long k = 0; k < n; k++) cr_assert_eq(fscanf(in, "%f", &f->t[f->n_t].v[k]), 1);
            f->n_t++;
        }
    }
    fclose(in);
}

static void free_fixture(fixture *f) {
    for (int i = 0; i < f->n_t; i++) free(f->t[i].v);
}

static const float *tensor(const fixture *f, const char *name, int64_t *n) {
    for (int i = 0; i < f->n_t; i++)
        if (!strcmp(f->t[i].name, name)) {
            if (n) *n = f->t[i].n;
            return f->t[i].v;
        }
    return NULL;
}

/* map[k]: the kerac flat index of the fixture's k-th value (model.weights order) */
static int64_t *weight_map(kc_model *m, const fixture *f) {
    int64_t total = 0;
    for (int i = 0; i < f->n_weights; i++) total += f->wcount[i];
    cr_assert_eq(total, kc_count_params(m), "Keras has %lld weights, kerac %lld", (long long)total,
                 (long long)kc_count_params(m));
    int64_t *map = malloc(sizeof(int64_t) * (size_t)total);
    int64_t at = 0;
    for (int i = 0; i < f->n_weights; i++) {
        int found = 0;
        for (int l = 0; l < kc_layer_count(m) && !found; l++) {
            kc_layer *layer = m->layers[l];
            kc_weight_desc w[KC_MAX_WEIGHTS];
            int n = kc_layer_weights(layer, w);
            for (int j = 0; j < n && !found; j++) {
                char p[160];
                snprintf(p, sizeof p, "%s/%s", layer->name, w[j].name);
                if (strcmp(p, f->wpath[i])) continue;
                cr_assert_eq(w[j].count, f->wcount[i], "%s: %lld values, Keras %lld", p,
                             (long long)w[j].count, (long long)f->wcount[i]);
                for (int64_t k = 0; k < w[j].count; k++) map[at + k] = w[j].offset + k;
                found = 1;
            }
        }
        cr_assert(found, "Keras's weight %s is not in the kerac model", f->wpath[i]);
        at += f->wcount[i];
    }
    return map;
}

/* |a - b| <= tol * max(|b|, floor): floor keeps near-zero values (dead relus, tiny gradients)
 * from asking more than float32 sums give */
static void expect_close_scaled(const char *what, const float *got, const float *want, int64_t n,
                                const int64_t *map, double tol, const float *scale,
                                double floor_share) {
    double largest = 0;
    for (int64_t k = 0; k < n; k++) largest = fmax(largest, fabs(want[k]));
    double floor = fmax(floor_share * largest, 1e-7);
    int bad = 0;
    for (int64_t k = 0; k < n; k++) {
        double g = got[map ? map[k] : k], w = want[k];
        double size = fmax(fabs(w), scale ? fabs(scale[k]) : 0.0);
        if (fabs(g - w) > tol * fmax(size, floor)) {
            if (bad < 5) cr_log_error("%s[%lld]: kerac %.9g, Keras %.9g", what, (long long)k, g, w);
            bad++;
        }
    }
    cr_expect_eq(bad, 0, "%s: %d of %lld values differ", what, bad, (long long)n);
}

/* outputs: relative to each value (floor 1e-3 of the largest) */
static void expect_close(const char *what, const float *got, const float *want, int64_t n,
                         const int64_t *map, double tol) {
    expect_close_scaled(what, got, want, n, map, tol, NULL, 1e-3);
}

/* Gradients: each is a float32 sum whose rounding error scales with the terms summed, which
 * are of the size of the model's larger gradients, not of a small (cancelled) result: relative
 * to the value or 1% of the largest gradient. */
static void expect_close_grads(const char *what, const float *got, const float *want, int64_t n,
                               const int64_t *map, double tol) {
    expect_close_scaled(what, got, want, n, map, tol, NULL, 1e-2);
}

/* Weights after a step: relative to the weight's size before the step or the step's size (a
 * weight the step carries close to zero keeps the error of the values it came from; Keras
 * computes Adam's bias corrections in float32, kerac in double: parts in 1e5 of the step) */
static void expect_close_step(const char *what, const float *got, const float *want,
                              const float *before, int64_t n, const int64_t *map, double tol) {
    float *scale = malloc(sizeof(float) * (size_t)n);
    for (int64_t k = 0; k < n; k++) scale[k] = fmaxf(fabsf(before[k]), fabsf(want[k] - before[k]));
    expect_close_scaled(what, got, want, n, map, tol, scale, 1e-3);
    free(scale);
}

static void run_inputs(const fixture *f, const float **x, const float **y) {
    char name[16];
    for (int i = 0; i < f->n_inputs; i++) {
        snprintf(name, sizeof name, "x%d", i);
        cr_assert_not_null(x[i] = tensor(f, name, NULL), "no %s", name);
    }
    for (int o = 0; o < f->n_outputs; o++) {
        snprintf(name, sizeof name, "y%d", o);
        cr_assert_not_null(y[o] = tensor(f, name, NULL), "no %s", name);
    }
}

static void check_outputs(kc_model *m, const fixture *f, const char *what) {
    const float *x[KC_MAX_IO], *y[KC_MAX_IO];
    run_inputs(f, x, y);
    float *out[KC_MAX_IO];
    for (int o = 0; o < f->n_outputs; o++) {
        char name[32];
        int64_t n = 0;
        snprintf(name, sizeof name, "output%d", o);
        const float *want = tensor(f, name, &n);
        cr_assert_not_null(want);
        out[o] = malloc(sizeof(float) * (size_t)n);
    }
    KC_CHECK(kc_predict_multi(m, x, f->batch, out));
    for (int o = 0; o < f->n_outputs; o++) {
        char name[32], label[128];
        int64_t n = 0;
        snprintf(name, sizeof name, "output%d", o);
        const float *want = tensor(f, name, &n);
        snprintf(label, sizeof label, "%s: %s", what, name);
        expect_close(label, out[o], want, n, NULL, 1e-5);
        free(out[o]);
    }
}

/* one model against one Keras version's fixture and files */
static void check_model(const char *name, const char *version, const char *file, int check_loss) {
    char path[256], what[512];
    snprintf(path, sizeof path, FIX "%s.%s.txt", name, version);
    fixture f;
    load_fixture(path, &f);
    snprintf(path, sizeof path, FIX "%s%s", name, file);
    kc_model *m;
    KC_CHECK(kc_load(path, &m));
    snprintf(what, sizeof what, "%s", path);
    int64_t *map = weight_map(m, &f);
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_get_weights(m, w, n));
    int64_t nw = 0;
    const float *want_w = tensor(&f, "weights", &nw);
    cr_assert_eq(nw, n);
    for (int64_t k = 0; k < n; k++)
        cr_assert_eq(w[map[k]], want_w[k], "%s: weight value %lld differs from the file's", what,
                     (long long)k);
    check_outputs(m, &f, what);
    /* the loss and every gradient, in training mode, as Keras's train step */
    const float *x[KC_MAX_IO], *y[KC_MAX_IO];
    run_inputs(&f, x, y);
    double loss;
    KC_CHECK(kc_compute_gradients_multi(m, x, y, f.batch, 1, &loss, g, n));
    const float *want_loss = tensor(&f, "loss", NULL);
    if (check_loss)
        cr_expect(fabs(loss - want_loss[0]) <= 1e-5 * fmax(1.0, fabs(want_loss[0])),
                  "%s: loss %.9g, Keras %.9g", what, loss, (double)want_loss[0]);
    snprintf(what, sizeof what, "%s: grads", path);
    expect_close_grads(what, g, tensor(&f, "grads", NULL), n, map, 1e-5);
    /* one Adam step: the file was saved compiled with Adam(0.01), before any step */
    KC_CHECK(kc_train_on_batch_multi(m, x, y, f.batch, NULL));
    KC_CHECK(kc_get_weights(m, w, n));
    snprintf(what, sizeof what, "%s: after_adam", path);
    expect_close_step(what, w, tensor(&f, "after_adam", NULL), want_w, n, map, 1e-5);
    /* one SGD(0.1) step from the file's weights */
    kc_model *s;
    KC_CHECK(kc_load(path, &s));
    kc_compile_opts co = {.optimizer = kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}),
                          .has_loss_weights = 1};
    for (int o = 0; o < f.n_outputs; o++) {
        co.loss[o] = f.losses[o];
        co.loss_weights[o] = f.loss_weights[o];
    }
    KC_CHECK(kc_compile_ex(s, &co));
    KC_CHECK(kc_train_on_batch_multi(s, x, y, f.batch, NULL));
    KC_CHECK(kc_get_weights(s, w, n));
    snprintf(what, sizeof what, "%s: after_sgd", path);
    expect_close_step(what, w, tensor(&f, "after_sgd", NULL), want_w, n, map, 1e-5);
    kc_model_free(s);
    /* what kerac saves loads back the same, in every format */
    const char *exts[] = {".keras", ".h5"};
    for (int e = 0; e < 2; e++) {
        kc_model *a, *b;
        KC_CHECK(kc_load(path, &a));
        char out[256];
        snprintf(out, sizeof out, "%s/%s%s", tu_tmpdir(), name, exts[e]);
        KC_CHECK(kc_save(a, out));
        KC_CHECK(kc_load(out, &b));
        snprintf(what, sizeof what, "%s saved by kerac as %s", path, exts[e]);
        check_outputs(b, &f, what);
        cr_expect_eq(kc_count_params(a), kc_count_params(b));
        for (int l = 0; l < kc_layer_count(a); l++)
            cr_expect_eq(kc_layer_trainable_count(a, l), kc_layer_trainable_count(b, l),
                         "%s: layer %s's trainable count", what, kc_layer_name(a, l));
        kc_model_free(a);
        kc_model_free(b);
    }
    free(map);
    free(w);
    free(g);
    kc_model_free(m);
    free_fixture(&f);
}

#define MODEL_TESTS(name)                                                                    \
    Test(keras3, name) { check_model(#name, "k3", ".keras", 1); }                            \
    Test(keras3_h5, name) { check_model(#name, "k3", ".k3.h5", 1); }                         \
    Test(tf_keras2, name) { check_model(#name, "tf2", ".tf2.h5", strcmp(#name, "finetune_frozen")); }

/* finetune_frozen under tf.keras 2: its loss counts the frozen layer's kernel regularizer,
 * Keras 3's does not (kerac follows Keras 3); gradients and steps agree */
MODEL_TESTS(residual_cnn)
MODEL_TESTS(two_inputs)
MODEL_TESTS(siamese)
MODEL_TESTS(conv_autoencoder)
MODEL_TESTS(upsample_autoencoder)
MODEL_TESTS(nested_sequential)
MODEL_TESTS(nested_in_sequential)
MODEL_TESTS(finetune_frozen)
MODEL_TESTS(frozen_layer)
MODEL_TESTS(merge_all)

Test(keras_json, functional_configs_load) {
    const char *names[] = {"residual_cnn", "two_inputs", "siamese", "merge_all",
                           "nested_sequential", "finetune_frozen"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        for (int v = 0; v < 2; v++) {
            char path[256];
            snprintf(path, sizeof path, FIX "%s%s", names[i], v ? ".tf2.json" : ".json");
            FILE *in = fopen(path, "r");
            cr_assert_not_null(in);
            static char text[1 << 20];
            size_t len = fread(text, 1, sizeof text - 1, in);
            text[len] = 0;
            fclose(in);
            kc_model *m;
            KC_CHECK(kc_model_from_json(text, &m));
            char *again = NULL;
            KC_CHECK(kc_model_to_json(m, &again));
            kc_model *m2;
            KC_CHECK(kc_model_from_json(again, &m2));
            cr_expect_eq(kc_count_params(m), kc_count_params(m2), "%s", path);
            cr_expect_eq(kc_model_input_count(m), kc_model_input_count(m2));
            cr_expect_eq(kc_model_output_count(m), kc_model_output_count(m2));
            free(again);
            kc_model_free(m);
            kc_model_free(m2);
        }
}

Test(keras_json, graph_errors_name_the_layer) {
    kc_model *m;
    /* a cycle: a's input is b's output and b's is a's */
    const char *cycle =
        "{\"class_name\": \"Functional\", \"config\": {\"name\": \"c\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"name\": \"in\", \"config\": {\"batch_shape\": [null, 4], \"name\": \"in\"}, \"inbound_nodes\": []},"
        "{\"class_name\": \"Dense\", \"name\": \"a\", \"config\": {\"name\": \"a\", \"units\": 4}, \"inbound_nodes\": [[[\"b\", 0, 0, {}]]]},"
        "{\"class_name\": \"Dense\", \"name\": \"b\", \"config\": {\"name\": \"b\", \"units\": 4}, \"inbound_nodes\": [[[\"a\", 0, 0, {}]]]}],"
        "\"input_layers\": [[\"in\", 0, 0]], \"output_layers\": [[\"b\", 0, 0]]}}";
    KC_EXPECT_ERR(kc_model_from_json(cycle, &m), KC_EFORMAT, "waits for an input that never comes");
    /* a reference to a layer the model does not have */
    const char *missing =
        "{\"class_name\": \"Functional\", \"config\": {\"name\": \"c\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"name\": \"in\", \"config\": {\"batch_shape\": [null, 4], \"name\": \"in\"}, \"inbound_nodes\": []},"
        "{\"class_name\": \"Dense\", \"name\": \"a\", \"config\": {\"name\": \"a\", \"units\": 4}, \"inbound_nodes\": [[[\"ghost\", 0, 0, {}]]]}],"
        "\"input_layers\": [[\"in\", 0, 0]], \"output_layers\": [[\"a\", 0, 0]]}}";
    KC_EXPECT_ERR(kc_model_from_json(missing, &m), KC_EFORMAT, "layer 'ghost', which the model does not have");
    /* merge inputs whose shapes disagree */
    const char *merge =
        "{\"class_name\": \"Functional\", \"config\": {\"name\": \"c\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"name\": \"in\", \"config\": {\"batch_shape\": [null, 4], \"name\": \"in\"}, \"inbound_nodes\": []},"
        "{\"class_name\": \"Dense\", \"name\": \"a\", \"config\": {\"name\": \"a\", \"units\": 3}, \"inbound_nodes\": [[[\"in\", 0, 0, {}]]]},"
        "{\"class_name\": \"Add\", \"name\": \"s\", \"config\": {\"name\": \"s\"}, \"inbound_nodes\": [[[\"in\", 0, 0, {}], [\"a\", 0, 0, {}]]]}],"
        "\"input_layers\": [[\"in\", 0, 0]], \"output_layers\": [[\"s\", 0, 0]]}}";
    KC_EXPECT_ERR(kc_model_from_json(merge, &m), KC_EINVAL, "layer 's' call 0");
    /* Keras 2.0's list-form Sequential config loads */
    const char *list =
        "{\"class_name\": \"Sequential\", \"config\": ["
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d1\", \"units\": 5, \"batch_input_shape\": [null, 3], \"activation\": \"relu\"}},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d2\", \"units\": 2, \"activation\": \"softmax\", \"trainable\": false}}]}";
    KC_CHECK(kc_model_from_json(list, &m));
    cr_expect_eq(kc_count_params(m), 3 * 5 + 5 + 5 * 2 + 2);
    cr_expect_eq(kc_layer_trainable_count(m, 1), 0, "trainable false was dropped");
    kc_model_free(m);
}

/* kc_summary prints what tf.keras 2.15's model.summary() prints (tests/gen_keras_summaries.py),
 * line for line: the Functional table with "Connected to", the narrow one for chains */
Test(keras_summary, matches_tf_keras) {
    const char *names[] = {"siamese", "two_inputs", "finetune_frozen", "merge_all",
                           "residual_cnn", "conv_autoencoder", "nested_sequential",
                           "frozen_layer"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[256];
        snprintf(path, sizeof path, FIX "%s.keras", names[i]);
        kc_model *m;
        KC_CHECK(kc_load(path, &m));
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        KC_CHECK(kc_summary(m, out));
        fclose(out);
        snprintf(path, sizeof path, FIX "%s.tf2_summary.txt", names[i]);
        FILE *in = fopen(path, "r");
        cr_assert_not_null(in, "%s", path);
        static char want[1 << 16];
        size_t n = fread(want, 1, sizeof want - 1, in);
        want[n] = 0;
        fclose(in);
        cr_expect_str_eq(text, want, "%s: kerac's summary differs from tf.keras's", names[i]);
        free(text);
        kc_model_free(m);
    }
}

/* a model file in Keras 2.0/2.1's form (tests/gen_keras2_list_file.py): the Sequential config a
 * bare list of layers, Keras 2.0's optimizer config ("lr", "decay") */
Test(keras2, list_form_sequential_file_loads) {
    kc_model *m;
    KC_CHECK(kc_load("tests/fixtures/keras2/keras20_list.h5", &m));
    cr_assert_eq(kc_count_params(m), 6 * 5 + 5 + 5 * 3 + 3);
    cr_assert_str_eq(kc_layer_name(m, 0), "dense_1");
    cr_assert(fabsf(kc_get_learning_rate(m) - 0.001f) < 1e-9f);
    FILE *in = fopen("tests/fixtures/keras2/keras20_list.txt", "r");
    cr_assert_not_null(in);
    float x[24], want[12], got[12];
    char word[16];
    cr_assert_eq(fscanf(in, "%*[^\n]\n%15s", word), 1);
    for (int i = 0; i < 24; i++) cr_assert_eq(fscanf(in, "%f", &x[i]), 1);
    cr_assert_eq(fscanf(in, "%15s", word), 1);
    for (int i = 0; i < 12; i++) cr_assert_eq(fscanf(in, "%f", &want[i]), 1);
    fclose(in);
    KC_CHECK(kc_predict(m, x, 4, got));
    for (int i = 0; i < 12; i++)
        cr_expect(fabs(got[i] - want[i]) <= 1e-5 * fmax(fabs(want[i]), 1e-3), "output %d: %g, want %g",
                  i, got[i], want[i]);
    kc_model_free(m);
}

/* ---- optimizer state tf.keras 2 saved (tests/gen_tf2_optimizer_files.py) ---------------------- */

static void read_row(FILE *in, const char *label, float *v, int n) {
    char word[16];
    cr_assert_eq(fscanf(in, "%15s", word), 1);
    cr_assert_str_eq(word, label);
    for (int i = 0; i < n; i++) cr_assert_eq(fscanf(in, "%f", &v[i]), 1);
}

static int warnings_seen;
static void count_warning(const char *message, void *user) { warnings_seen++; }

/* tf.keras 2 orders its slots its own way (Adam's m and v per variable, RMSprop's velocities,
 * then momentums, then average gradients); kerac reads them by name, and the next step is
 * tf.keras 2's */
static void tf2_next_step(const char *name, double tol) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/tf2_opt/%s.h5", name);
    kc_model *m;
    warnings_seen = 0;
    kc_set_warning_handler(count_warning, NULL);
    KC_CHECK(kc_load(path, &m));
    kc_set_warning_handler(NULL, NULL);
    cr_assert_eq(warnings_seen, 0, "%s: %s", name, kc_last_warning());
    snprintf(path, sizeof path, "tests/fixtures/tf2_opt/%s.txt", name);
    FILE *in = fopen(path, "r");
    cr_assert_not_null(in);
    float x[40], y[24], want[39], got[39], before[39];
    cr_assert_eq(fscanf(in, "%*[^\n]\n"), 0);
    read_row(in, "x", x, 40);
    read_row(in, "y", y, 24);
    read_row(in, "after", want, 39);
    fclose(in);
    cr_assert_eq(kc_count_params(m), 39);
    KC_CHECK(kc_get_weights(m, before, 39));
    KC_CHECK(kc_train_on_batch(m, x, y, 8, NULL));
    KC_CHECK(kc_get_weights(m, got, 39));
    for (int i = 0; i < 39; i++) {
        double size = fmax(fmax(fabs(want[i]), fabs(want[i] - before[i])), 1e-3);
        cr_expect(fabs(got[i] - want[i]) <= tol * size, "%s weight %d: kerac %.9g, tf.keras %.9g "
                  "(before the step %.9g)", name, i, got[i], want[i], before[i]);
    }
    kc_model_free(m);
}

Test(tf2_optimizer_state, adam) { tf2_next_step("adam", 1e-5); }
Test(tf2_optimizer_state, rmsprop_centered_momentum) { tf2_next_step("rmsprop_centered_momentum", 1e-5); }
Test(tf2_optimizer_state, sgd_momentum) { tf2_next_step("sgd_momentum", 1e-5); }
Test(tf2_optimizer_state, adadelta) { tf2_next_step("adadelta", 1e-5); }
/* Nadam: its u_product is not in the file; tf.keras 2 restarts it at 1 and, per variable,
 * multiplies it again by u_t unless the variable's index + 1 equals iterations + 2 */
Test(tf2_optimizer_state, nadam) { tf2_next_step("nadam", 1e-5); }
Test(tf2_optimizer_state, adamax) { tf2_next_step("adamax", 1e-5); }

/* load_model(path, compile=False): the architecture and the weights, nothing of training */
Test(load_options, compile_false) {
    kc_model *m;
    KC_CHECK(kc_load_ex("tests/fixtures/tf2_opt/adam.h5", &(kc_load_opts){.compile = KC_ZERO}, &m));
    cr_assert_eq(kc_get_learning_rate(m), 0.0f, "compile=False left the model compiled");
    float x[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f}, out[3];
    KC_CHECK(kc_predict(m, x, 1, out));
    KC_EXPECT_ERR(kc_train_on_batch(m, x, out, 1, NULL), KC_ESTATE, "not compiled");
    kc_model_free(m);
}

/* optimizer state that does not fit is skipped with a warning naming it: the model loads and
 * trains from a fresh optimizer (here: an Adam file read into a model compiled with the Adam
 * of other slots, amsgrad, whose velocity_hat the file lacks) */
Test(load_options, unfit_optimizer_state_warns) {
    char path[128];
    snprintf(path, sizeof path, "%s/m.weights.h5", tu_tmpdir());
    kc_model *m;
    KC_CHECK(kc_load("tests/fixtures/tf2_opt/adam.h5", &m));
    KC_CHECK(kc_save_weights(m, path)); /* the weights and Adam's state */
    kc_model_free(m);
    KC_CHECK(kc_load_ex("tests/fixtures/tf2_opt/adam.h5", &(kc_load_opts){.compile = KC_ZERO}, &m));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY,
                        kc_adam(&(kc_adam_opts){.learning_rate = 0.01f, .amsgrad = 1}), 0));
    warnings_seen = 0;
    kc_set_warning_handler(count_warning, NULL);
    KC_CHECK(kc_load_weights(m, path));
    kc_set_warning_handler(NULL, NULL);
    cr_assert_eq(warnings_seen, 1);
    cr_assert(strstr(kc_last_warning(), "optimizer state was skipped") &&
                  strstr(kc_last_warning(), "m.weights.h5"),
              "%s", kc_last_warning());
    float x[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f}, y[3] = {0, 1, 0};
    KC_CHECK(kc_train_on_batch(m, x, y, 1, NULL)); /* trains from a fresh optimizer */
    kc_model_free(m);
}
