/* test_keras_seq2.c: recurrent and 1-D sequence models end to end against real Keras
 * (tests/fixtures/seq2/, written by tests/gen_keras_seq2_fixtures.py from Keras 3 and
 * tf.keras 2): int32 token ids of None length padded with 0, Embedding(mask_zero) masks through
 * the engine into LSTM, GRU (both reset_after), Bidirectional, TimeDistributed, SimpleRNN
 * (go_backwards) + GlobalAveragePooling1D and the loss; a Conv1D/pooling stack; a stateful
 * LSTM across batches; a fit's History. Each file Keras saved (.keras, Keras 3's .h5,
 * tf.keras 2's .h5) loads and gives Keras's outputs at two lengths, loss, gradients and one SGD
 * and one Adam step within 1e-5 relative; what kerac saves loads back the same (and, with
 * KERAC_SEQ2_SAVE_DIR set, is left there as <name>.keras for gen_keras_seq2_fixtures.py
 * --check to load in Keras 3). KERAC_SEQ2_VERBOSE=1 prints each check's largest error. */
#include "testutil.h"
#include "io/io.h"
#include "model/model.h"

#define FIX "tests/fixtures/seq2/"

/* the weight's path without tf.keras 2's ":0" */
static void short_path(const char *p, char *out, size_t size) {
    snprintf(out, size, "%s", p);
    char *colon = strrchr(out, ':');
    if (colon) *colon = 0;
}

#include "seq_fixture.h"

/* Keras's weight path (layer/[sub-layer/]cell/var) against kerac's "<layer>/<weight name>" */
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
                char p[192];
                snprintf(p, sizeof p, "%s/%s", layer->name, w[j].name);
                /* TimeDistributed: Keras 3's tags/dense/kernel, tf.keras 2's tags/kernel */
                const char *kp = f->wpath[i], *s1 = strchr(kp, '/');
                char alt[192] = "";
                if (s1 && strchr(s1 + 1, '/'))
                    snprintf(alt, sizeof alt, "%.*s%s", (int)(s1 - kp), kp, strchr(s1 + 1, '/'));
                if (strcmp(p, kp) && strcmp(p, alt)) continue;
                cr_assert_eq(w[j].count, f->wcount[i]);
                for (int64_t k = 0; k < w[j].count; k++) map[at + k] = w[j].offset + k;
                found = 1;
            }
        }
        if (!found)
            for (int l = 0; l < kc_layer_count(m); l++) {
                kc_weight_desc w[KC_MAX_WEIGHTS];
                int nw = kc_layer_weights(m->layers[l], w);
                for (int j = 0; j < nw; j++)
                    cr_log_error("kerac has %s/%s", m->layers[l]->name, w[j].name);
            }
        cr_assert(found, "Keras's weight %s is not in the kerac model", f->wpath[i]);
        at += f->wcount[i];
    }
    return map;
}

static int verbose(void) { return getenv("KERAC_SEQ2_VERBOSE") != NULL; }

/* each |kerac - Keras| within tol of max(|Keras|, |scale|, floor_share * the largest |Keras|);
 * returns the largest error in those units */
static double expect_close_scaled(const char *what, const float *got, const float *want,
                                  int64_t n, const int64_t *map, double tol, const float *scale,
                                  double floor_share) {
    double largest = 0, worst = 0;
    int64_t at = 0;
    for (int64_t k = 0; k < n; k++) largest = fmax(largest, fabs(want[k]));
    double floor = fmax(floor_share * largest, 1e-7);
    int bad = 0;
    for (int64_t k = 0; k < n; k++) {
        double g = got[map ? map[k] : k], w = want[k];
        double size = fmax(fmax(fabs(w), scale ? fabs(scale[k]) : 0.0), floor);
        if (fabs(g - w) / size > worst) worst = fabs(g - w) / size, at = k;
        if (!(fabs(g - w) <= tol * size)) {
            if (bad < 5) cr_log_error("%s[%lld]: kerac %.9g, Keras %.9g", what, (long long)k, g, w);
            bad++;
        }
    }
    cr_expect_eq(bad, 0, "%s: %d of %lld values differ", what, bad, (long long)n);
    if (verbose())
        fprintf(stderr, "seq2 %-60s max rel err %.3g (at %lld: kerac %.9g, Keras %.9g)\n", what,
                worst, (long long)at, got[map ? map[at] : at], want[at]);
    return worst;
}

static void expect_close_step(const char *what, const float *got, const float *want,
                              const float *before, int64_t n, const int64_t *map, double tol) {
    float *scale = malloc(sizeof(float) * (size_t)n);
    for (int64_t k = 0; k < n; k++) scale[k] = fmaxf(fabsf(before[k]), fabsf(want[k] - before[k]));
    expect_close_scaled(what, got, want, n, map, tol, scale, 1e-3);
    free(scale);
}

#define GRAD_FLOOR 5e-2

/* Adam's first step is lr * g / (|g| + 1e-7 / sqrt(1 - 0.999)): for a gradient near epsilon it moves with the
 * gradient's own error, so each weight may also be off by what the gradients' tolerance
 * (1e-5 of max(|g|, GRAD_FLOOR of the largest)) makes of its step */
static void expect_close_adam(const char *what, const float *got, const float *want,
                              const float *before, const float *grads, int64_t n,
                              const int64_t *map) {
    /* the first step's effective epsilon: Keras's 1e-7 over sqrt(1 - beta_2) */
    const double lr = 0.01, eps = 1e-7 / sqrt(1 - 0.999), tol = 1e-5;
    double largest = 0;
    for (int64_t k = 0; k < n; k++) largest = fmax(largest, fabs(grads[k]));
    float *scale = malloc(sizeof(float) * (size_t)n);
    for (int64_t k = 0; k < n; k++) {
        double g = fabs(grads[k]), gtol = tol * fmax(g, GRAD_FLOOR * largest);
        double moved = lr * eps * gtol / ((g + eps) * (g + eps)) / tol;
        scale[k] = (float)fmax(fmax(fabsf(before[k]), fabsf(want[k] - before[k])), moved);
    }
    expect_close_scaled(what, got, want, n, map, tol, scale, 1e-3);
    free(scale);
}

/* kc_predict_ex on the batch of prefix ("x", or "xb": another length) against oname<i> */
static void check_outputs_as(kc_model *m, const fixture *f, const char *prefix,
                             const char *oname, const char *what) {
    kc_dataset ds = batch_of(f, prefix, 0);
    float *out[KC_MAX_IO];
    kc_shape shapes[KC_MAX_IO], in_shapes[KC_MAX_IO], want_shapes[KC_MAX_IO];
    for (int i = 0; i < f->n_inputs; i++) in_shapes[i] = ds.inputs[i].shape;
    KC_CHECK(kc_model_output_shapes_for(m, in_shapes, want_shapes));
    for (int o = 0; o < f->n_outputs; o++) {
        char name[32];
        int64_t n = 0;
        snprintf(name, sizeof name, "%s%d", oname, o);
        tensor(f, name, &n, NULL);
        cr_assert_eq(n, f->batch * kc_shape_size(want_shapes[o]), "%s: %s has %lld values",
                     what, name, (long long)n);
        out[o] = malloc(sizeof(float) * (size_t)n);
    }
    KC_CHECK(kc_predict_ex(m, ds.inputs, f->batch, out, shapes));
    for (int o = 0; o < f->n_outputs; o++) {
        char name[32], label[300];
        int64_t n = 0;
        snprintf(name, sizeof name, "%s%d", oname, o);
        const float *want = tensor(f, name, &n, NULL);
        cr_expect(!memcmp(&shapes[o], &want_shapes[o], sizeof(kc_shape)));
        snprintf(label, sizeof label, "%s: %s", what, name);
        expect_close_scaled(label, out[o], want, n, NULL, 1e-5, NULL, 1e-2);
        free(out[o]);
    }
    free_batch(&ds);
}

static void check_outputs(kc_model *m, const fixture *f, const char *prefix, const char *what) {
    check_outputs_as(m, f, prefix, !strcmp(prefix, "x") ? "output" : "outputb", what);
}

/* one model against Keras 3's fixture and one file (tf.keras 2's .h5 holds the same model and
 * weights: gen_keras_seq2_fixtures.py asserts tf.keras 2 gives the fixture's outputs and loss) */
static void check_model(const char *name, const char *version, const char *file) {
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
    const float *want_w = tensor(&f, "weights", NULL, NULL);
    for (int64_t k = 0; k < n; k++)
        cr_assert_eq(w[map[k]], want_w[k], "%s: weight value %lld differs", what, (long long)k);
    check_outputs(m, &f, "x", what);
    check_outputs(m, &f, "xb", what); /* another length, the same model */
    check_outputs(m, &f, "x", what);  /* and back */
    kc_dataset ds = batch_of(&f, "x", 1);
    double loss;
    KC_CHECK(kc_compute_gradients_ex(m, &ds, 1, &loss, g, n));
    const float *want_loss = tensor(&f, "loss", NULL, NULL);
    cr_expect(fabs(loss - want_loss[0]) <= 1e-5 * fmax(1.0, fabs(want_loss[0])),
              "%s: loss %.9g, Keras %.9g", what, loss, (double)want_loss[0]);
    if (verbose())
        fprintf(stderr, "seq2 %-60s loss rel err %.3g\n", what,
                fabs(loss - want_loss[0]) / fmax(1.0, fabs(want_loss[0])));
    snprintf(what, sizeof what, "%s: grads", path);
    /* a gradient is a sum over the batch and the timesteps: one that cancels to near 0 keeps
     * the float32 rounding of its terms, so the floor is 5% of the largest (gru_v1_bin
     * against a float64 Keras 3 run: kerac and Keras 3 both within 2.8e-7 of the largest
     * gradient, but on its h-gate bias kerac is 1.4e-8 off, Keras 3 7e-10, tf.keras 2 2.7e-9:
     * 1.3e-5 of that 1e-3 value) */
    const float *want_g = tensor(&f, "grads", NULL, NULL);
    expect_close_scaled(what, g, want_g, n, map, 1e-5, NULL, GRAD_FLOOR);
    /* one Adam step: the file was saved compiled with Adam(0.01), before any step */
    kc_metrics r;
    KC_CHECK(kc_train_on_batch_ex(m, &ds, &r));
    cr_expect(fabs(r.loss - want_loss[0]) <= 1e-5 * fmax(1.0, fabs(want_loss[0])));
    KC_CHECK(kc_get_weights(m, w, n));
    snprintf(what, sizeof what, "%s: after_adam", path);
    expect_close_adam(what, w, tensor(&f, "after_adam", NULL, NULL), want_w, want_g, n, map);
    /* one SGD(0.1) step from the file's weights */
    kc_model *s;
    KC_CHECK(kc_load(path, &s));
    KC_CHECK(kc_compile(s, f.losses[0], kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}), 0));
    KC_CHECK(kc_train_on_batch_ex(s, &ds, NULL));
    KC_CHECK(kc_get_weights(s, w, n));
    snprintf(what, sizeof what, "%s: after_sgd", path);
    expect_close_step(what, w, tensor(&f, "after_sgd", NULL, NULL), want_w, n, map, 1e-5);
    kc_model_free(s);
    free_batch(&ds);
    /* what kerac saves loads back the same, in both formats */
    const char *exts[] = {".keras", ".h5"};
    const char *keep = getenv("KERAC_SEQ2_SAVE_DIR");
    for (int e = 0; e < 2; e++) {
        kc_model *a, *b;
        KC_CHECK(kc_load(path, &a));
        char out[512];
        if (keep && e == 0 && !strcmp(file, ".keras"))
            snprintf(out, sizeof out, "%s/%s%s", keep, name, exts[e]);
        else
            snprintf(out, sizeof out, "%s/%s%s", tu_tmpdir(), name, exts[e]);
        KC_CHECK(kc_save(a, out));
        KC_CHECK(kc_load(out, &b));
        snprintf(what, sizeof what, "%s saved by kerac as %s", path, exts[e]);
        check_outputs(b, &f, "x", what);
        check_outputs(b, &f, "xb", what);
        kc_shape sa = kc_model_input_shape_at(a, 0), sb = kc_model_input_shape_at(b, 0);
        cr_expect(!memcmp(&sa, &sb, sizeof sa), "%s: the input's shape", what);
        cr_expect_eq(kc_model_input_dtype(b, 0), KC_INT32);
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
    Test(keras3, name) { check_model(#name, "k3", ".keras"); }                               \
    Test(keras3_h5, name) { check_model(#name, "k3", ".k3.h5"); }                            \
    Test(tf_keras2, name) { check_model(#name, "k3", ".tf2.h5"); }

MODEL_TESTS(lstm_cls)
MODEL_TESTS(gru_bin)
MODEL_TESTS(gru_v1_bin)
MODEL_TESTS(bilstm)
MODEL_TESTS(tagger)
MODEL_TESTS(srnn_gap)
MODEL_TESTS(conv_pool)

/* a stateful LSTM: the state carries from one batch to the next (Keras 3 calling the model,
 * tf.keras 2's predict), kc_rnn_reset_states starts again from zeros */
static void check_stateful(const char *version, const char *file) {
    char path[256];
    snprintf(path, sizeof path, FIX "stateful_lstm.%s.txt", version);
    fixture f;
    load_fixture(path, &f);
    snprintf(path, sizeof path, FIX "stateful_lstm%s", file);
    kc_model *m;
    KC_CHECK(kc_load(path, &m));
    cr_expect_eq(kc_model_batch_size(m), 4, "%s: the batch_shape's batch size", path);
    check_outputs_as(m, &f, "x", "output", path);
    check_outputs_as(m, &f, "xb", "outputb", path); /* from x's final state */
    KC_CHECK(kc_rnn_reset_states(kc_get_layer(m, "lstm")));
    check_outputs_as(m, &f, "x", "outputc", path);
    KC_CHECK(kc_rnn_reset_states(kc_get_layer(m, "lstm")));
    check_outputs_as(m, &f, "x", "output", path);
    /* kerac's files keep the batch size, which Keras needs for stateful=True (with
     * KERAC_SEQ2_SAVE_DIR, the Keras 3 file's resaves go there for --check) */
    const char *keep = getenv("KERAC_SEQ2_SAVE_DIR");
    const char *exts[] = {".keras", ".h5"};
    for (int e = 0; e < 2; e++) {
        char out[512];
        snprintf(out, sizeof out, "%s/stateful_lstm%s",
                 keep && !strcmp(file, ".keras") ? keep : tu_tmpdir(), exts[e]);
        KC_CHECK(kc_save(m, out));
        kc_model *b;
        KC_CHECK(kc_load(out, &b));
        cr_expect_eq(kc_model_batch_size(b), 4, "%s: the batch size", out);
        check_outputs_as(b, &f, "x", "output", out);
        check_outputs_as(b, &f, "xb", "outputb", out);
        kc_model_free(b);
    }
    kc_model_free(m);
    free_fixture(&f);
}

/* the batch size a model built in kerac saves: kc_model_set_batch_size's, else the one a
 * stateful layer last ran with, else None */
Test(stateful, saved_batch_size) {
    for (int k = 0; k < 3; k++) {
        kc_model *m = kc_sequential(kc_shape2(5, 3));
        KC_CHECK(kc_add(m, kc_lstm(4, &(kc_rnn_opts){.stateful = k > 0})));
        KC_CHECK(kc_add(m, kc_dense(2, KC_LINEAR)));
        if (k == 2) KC_CHECK(kc_model_set_batch_size(m, 6));
        float x[3 * 5 * 3] = {0}, y[3 * 2];
        KC_CHECK(kc_predict(m, x, 3, y));
        char out[512];
        snprintf(out, sizeof out, "%s/batch%d.keras", tu_tmpdir(), k);
        KC_CHECK(kc_save(m, out));
        kc_model *b;
        KC_CHECK(kc_load(out, &b));
        cr_expect_eq(kc_model_batch_size(b), k == 0 ? 0 : k == 1 ? 3 : 6, "case %d", k);
        snprintf(out, sizeof out, "%s/batch%d.h5", tu_tmpdir(), k);
        KC_CHECK(kc_save(m, out));
        kc_model_free(b);
        KC_CHECK(kc_load(out, &b));
        cr_expect_eq(kc_model_batch_size(b), k == 0 ? 0 : k == 1 ? 3 : 6, "case %d (.h5)", k);
        kc_model_free(b);
        kc_model_free(m);
    }
}

Test(stateful, keras3) { check_stateful("k3", ".keras"); }
Test(stateful, keras3_h5) { check_stateful("k3", ".k3.h5"); }
Test(stateful, tf_keras2) { check_stateful("tf2", ".tf2.h5"); }

/* lstm_cls fit for 2 epochs, batch_size 4, no shuffle, SGD(0.1), accuracy: Keras's History
 * and final weights */
static void check_fit(const char *version) {
    char path[256];
    snprintf(path, sizeof path, FIX "lstm_cls.fit.%s.txt", version);
    fixture f;
    load_fixture(path, &f);
    kc_model *m;
    KC_CHECK(kc_load(FIX "lstm_cls.keras", &m));
    int64_t *map = weight_map(m, &f);
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n);
    const float *w0 = tensor(&f, "weights", NULL, NULL);
    for (int64_t k = 0; k < n; k++) w[map[k]] = w0[k];
    KC_CHECK(kc_set_weights(m, w, n));
    KC_CHECK(kc_compile(m, KC_SPARSE_CATEGORICAL_CROSSENTROPY,
                        kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}), KC_METRIC_ACCURACY));
    int64_t count;
    tensor(&f, "y0", &count, NULL);
    f.batch = (int)count;
    kc_dataset ds = batch_of(&f, "x", 1);
    kc_history *h = NULL;
    KC_CHECK(kc_fit(m, &ds, &(kc_fit_opts){.batch_size = 4, .epochs = 2, .no_shuffle = 1,
                                            .verbose = -1}, &h));
    cr_assert_eq(h->epochs, 2);
    const float *loss = tensor(&f, "loss", NULL, NULL), *acc = tensor(&f, "accuracy", NULL, NULL);
    const double *hl = kc_history_get(h, "loss"), *ha = kc_history_get(h, "accuracy");
    cr_assert(hl && ha);
    float got_l[2] = {(float)hl[0], (float)hl[1]}, got_a[2] = {(float)ha[0], (float)ha[1]};
    expect_close_scaled(version[0] == 'k' ? "lstm_cls fit (Keras 3): loss" : "lstm_cls fit (tf.keras 2): loss",
                        got_l, loss, 2, NULL, 1e-5, NULL, 0);
    expect_close_scaled("lstm_cls fit: accuracy", got_a, acc, 2, NULL, 1e-6, NULL, 0);
    KC_CHECK(kc_get_weights(m, w, n));
    expect_close_step("lstm_cls fit: weights after", w, tensor(&f, "after", NULL, NULL), w0, n,
                      map, 1e-5);
    kc_history_free(h);
    free_batch(&ds);
    free(map);
    free(w);
    kc_model_free(m);
    free_fixture(&f);
}

Test(fit, keras3) { check_fit("k3"); }
Test(fit, tf_keras2) { check_fit("tf2"); }

/* ---- the same models built with the C API (kc_sequential_ex, int32 ids of None length):
 * Keras's weights set by name, outputs at both lengths, the loss and the gradients ---- */

static kc_layer *named(kc_layer *l, const char *name) {
    cr_assert_not_null(l, "%s: %s", name, kc_last_error());
    KC_CHECK(kc_layer_set_name(l, name));
    return l;
}

static kc_model *api_model(const char *name) {
    kc_model *m = kc_sequential_ex(kc_shape1(KC_NONE), KC_INT32);
    cr_assert_not_null(m);
    int conv = !strcmp(name, "conv_pool");
    kc_embedding_opts eo = {.mask_zero = !conv};
    KC_CHECK(kc_add(m, named(kc_embedding(12, !strcmp(name, "srnn_gap") ? 4 : 5, &eo), "embed")));
    if (!strcmp(name, "lstm_cls")) {
        KC_CHECK(kc_add(m, named(kc_lstm(8, NULL), "lstm")));
        KC_CHECK(kc_add(m, named(kc_dense(3, KC_SOFTMAX), "probs")));
    } else if (!strcmp(name, "gru_bin") || !strcmp(name, "gru_v1_bin")) {
        kc_rnn_opts ro = {.reset_after = !strcmp(name, "gru_bin") ? 0 : KC_ZERO};
        KC_CHECK(kc_add(m, named(kc_gru(8, &ro), "gru")));
        KC_CHECK(kc_add(m, named(kc_dense(1, KC_SIGMOID), "prob")));
    } else if (!strcmp(name, "bilstm")) {
        KC_CHECK(kc_add(m, named(kc_bidirectional(named(kc_lstm(6, NULL), "lstm"), KC_MERGE_CONCAT,
                                                  NULL), "bidi")));
        KC_CHECK(kc_add(m, named(kc_dense(3, KC_SOFTMAX), "probs")));
    } else if (!strcmp(name, "tagger")) {
        KC_CHECK(kc_add(m, named(kc_lstm(6, &(kc_rnn_opts){.return_sequences = 1}), "lstm")));
        KC_CHECK(kc_add(m, named(kc_time_distributed(named(kc_dense(4, KC_SOFTMAX), "dense")),
                                 "tags")));
    } else if (!strcmp(name, "srnn_gap")) {
        kc_rnn_opts ro = {.return_sequences = 1, .go_backwards = 1};
        KC_CHECK(kc_add(m, named(kc_simple_rnn(5, &ro), "rnn")));
        KC_CHECK(kc_add(m, named(kc_global_average_pooling1d(0), "gap")));
        KC_CHECK(kc_add(m, named(kc_dense(2, KC_SOFTMAX), "probs")));
    } else {
        kc_conv1d_opts co = {.kernel_size = 3, .padding = KC_CAUSAL, .activation = KC_RELU};
        KC_CHECK(kc_add(m, named(kc_conv1d_ex(8, &co), "conv")));
        KC_CHECK(kc_add(m, named(kc_max_pooling1d(2), "pool")));
        KC_CHECK(kc_add(m, named(kc_global_max_pooling1d(0), "gmp")));
        KC_CHECK(kc_add(m, named(kc_dense(3, KC_SOFTMAX), "probs")));
    }
    return m;
}

static void check_api(const char *name) {
    char path[256];
    snprintf(path, sizeof path, FIX "%s.k3.txt", name);
    fixture f;
    load_fixture(path, &f);
    kc_model *m = api_model(name);
    KC_CHECK(kc_compile(m, f.losses[0], kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}), 0));
    int64_t *map = weight_map(m, &f);
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
    const float *w0 = tensor(&f, "weights", NULL, NULL);
    for (int64_t k = 0; k < n; k++) w[map[k]] = w0[k];
    KC_CHECK(kc_set_weights(m, w, n));
    char what[300];
    snprintf(what, sizeof what, "%s built with the C API", name);
    check_outputs(m, &f, "x", what);
    check_outputs(m, &f, "xb", what);
    kc_dataset ds = batch_of(&f, "x", 1);
    double loss;
    KC_CHECK(kc_compute_gradients_ex(m, &ds, 1, &loss, g, n));
    const float *want_loss = tensor(&f, "loss", NULL, NULL);
    cr_expect(fabs(loss - want_loss[0]) <= 1e-5 * fmax(1.0, fabs(want_loss[0])),
              "%s: loss %.9g, Keras %.9g", what, loss, (double)want_loss[0]);
    snprintf(what, sizeof what, "%s built with the C API: grads", name);
    expect_close_scaled(what, g, tensor(&f, "grads", NULL, NULL), n, map, 1e-5, NULL, GRAD_FLOOR);
    KC_CHECK(kc_train_on_batch_ex(m, &ds, NULL));
    KC_CHECK(kc_get_weights(m, w, n));
    snprintf(what, sizeof what, "%s built with the C API: after_sgd", name);
    expect_close_step(what, w, tensor(&f, "after_sgd", NULL, NULL), w0, n, map, 1e-5);
    free_batch(&ds);
    free(map);
    free(w);
    free(g);
    kc_model_free(m);
    free_fixture(&f);
}

Test(c_api, lstm_cls) { check_api("lstm_cls"); }
Test(c_api, gru_bin) { check_api("gru_bin"); }
Test(c_api, gru_v1_bin) { check_api("gru_v1_bin"); }
Test(c_api, bilstm) { check_api("bilstm"); }
Test(c_api, tagger) { check_api("tagger"); }
Test(c_api, srnn_gap) { check_api("srnn_gap"); }
Test(c_api, conv_pool) { check_api("conv_pool"); }
