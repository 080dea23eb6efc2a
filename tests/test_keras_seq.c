/* test_keras_seq.c: sequence models against real Keras (tests/fixtures/seq/, written by
 * tests/gen_keras_seq_fixtures.py from Keras 3 and tf.keras 2): int32 token inputs of None
 * length, Embedding (mask_zero), Masking, masks through Dense, Dropout and the merges into the
 * loss. Each file Keras saved (.keras, Keras 3's .h5, tf.keras 2's .h5) loads in kerac and
 * gives Keras's outputs (at two lengths), loss, gradients and one SGD and one Adam step within
 * 1e-5 relative; what kerac saves loads back the same. Also: the engine's errors for bad
 * sequence input, and the sparse Embedding step against the dense one. */
#include "testutil.h"
#include "io/io.h"
#include "model/model.h"

#define FIX "tests/fixtures/seq/"

/* Keras's weight path without tf.keras 2's ":0", its last two parts ("layer/var") */
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

#include "seq_fixture.h"

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
                cr_assert_eq(w[j].count, f->wcount[i]);
                for (int64_t k = 0; k < w[j].count; k++) map[at + k] = w[j].offset + k;
                found = 1;
            }
        }
        cr_assert(found, "Keras's weight %s is not in the kerac model", f->wpath[i]);
        at += f->wcount[i];
    }
    return map;
}

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

static void expect_close_step(const char *what, const float *got, const float *want,
                              const float *before, int64_t n, const int64_t *map, double tol) {
    float *scale = malloc(sizeof(float) * (size_t)n);
    for (int64_t k = 0; k < n; k++) scale[k] = fmaxf(fabsf(before[k]), fabsf(want[k] - before[k]));
    expect_close_scaled(what, got, want, n, map, tol, scale, 1e-3);
    free(scale);
}

/* kc_predict_ex on the batch of prefix ("x", or "xb": another length) against output<i>
 * (outputb<i>) */
static void check_outputs(kc_model *m, const fixture *f, const char *prefix, const char *what) {
    kc_dataset ds = batch_of(f, prefix, 0);
    const char *oname = !strcmp(prefix, "x") ? "output" : "outputb";
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
        /* relative to the value or 1% of the largest: a value near 0 is a cancelled sum of
         * terms of the larger values' size, and keeps their rounding */
        expect_close_scaled(label, out[o], want, n, NULL, 1e-5, NULL, 1e-2);
        free(out[o]);
    }
    free_batch(&ds);
}

/* one model against one Keras version's fixture and file; outputs_only: tf.keras 2's masks
 * differ (its merges AND masks), its outputs are checked */
static void check_model(const char *name, const char *version, const char *file, int outputs_only) {
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
    if (!outputs_only) {
        kc_dataset ds = batch_of(&f, "x", 1);
        double loss;
        KC_CHECK(kc_compute_gradients_ex(m, &ds, 1, &loss, g, n));
        const float *want_loss = tensor(&f, "loss", NULL, NULL);
        cr_expect(fabs(loss - want_loss[0]) <= 1e-5 * fmax(1.0, fabs(want_loss[0])),
                  "%s: loss %.9g, Keras %.9g", what, loss, (double)want_loss[0]);
        snprintf(what, sizeof what, "%s: grads", path);
        expect_close_scaled(what, g, tensor(&f, "grads", NULL, NULL), n, map, 1e-5, NULL, 1e-2);
        /* one Adam step: the file was saved compiled with Adam(0.01), before any step */
        kc_metrics r;
        KC_CHECK(kc_train_on_batch_ex(m, &ds, &r));
        cr_expect(fabs(r.loss - want_loss[0]) <= 1e-5 * fmax(1.0, fabs(want_loss[0])));
        KC_CHECK(kc_get_weights(m, w, n));
        snprintf(what, sizeof what, "%s: after_adam", path);
        expect_close_step(what, w, tensor(&f, "after_adam", NULL, NULL), want_w, n, map, 1e-5);
        /* one SGD(0.1) step from the file's weights (an Embedding steps its used rows only) */
        kc_model *s;
        KC_CHECK(kc_load(path, &s));
        KC_CHECK(kc_compile(s, f.losses[0], kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}), 0));
        KC_CHECK(kc_train_on_batch_ex(s, &ds, NULL));
        KC_CHECK(kc_get_weights(s, w, n));
        snprintf(what, sizeof what, "%s: after_sgd", path);
        expect_close_step(what, w, tensor(&f, "after_sgd", NULL, NULL), want_w, n, map, 1e-5);
        kc_model_free(s);
        free_batch(&ds);
    }
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
        check_outputs(b, &f, "x", what);
        check_outputs(b, &f, "xb", what);
        for (int i = 0; i < f.n_inputs; i++) {
            cr_expect_eq(kc_model_input_dtype(a, i), kc_model_input_dtype(b, i));
            kc_shape sa = kc_model_input_shape_at(a, i), sb = kc_model_input_shape_at(b, i);
            cr_expect(!memcmp(&sa, &sb, sizeof sa), "%s: input %d's shape", what, i);
        }
        kc_model_free(a);
        kc_model_free(b);
    }
    free(map);
    free(w);
    free(g);
    kc_model_free(m);
    free_fixture(&f);
}

#define MODEL_TESTS(name, tf2_outputs_only)                                                  \
    Test(keras3, name) { check_model(#name, "k3", ".keras", 0); }                            \
    Test(keras3_h5, name) { check_model(#name, "k3", ".k3.h5", 0); }                         \
    Test(tf_keras2, name) { check_model(#name, "tf2", ".tf2.h5", tf2_outputs_only); }

MODEL_TESTS(seq_sparse, 0)
MODEL_TESTS(seq_mse, 0)
MODEL_TESTS(emb_flat, 0)
MODEL_TESTS(masking_seq, 0)
MODEL_TESTS(merge_masks, 1) /* tf.keras 2 ANDs the merged masks, Keras 3 ORs them */
MODEL_TESTS(seq_nomask, 0)

/* None lengths in the summary: tf.keras 2.15's table, byte for byte */
Test(keras_summary, matches_tf_keras) {
    const char *names[] = {"seq_sparse", "masking_seq", "merge_masks", "seq_nomask"};
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
