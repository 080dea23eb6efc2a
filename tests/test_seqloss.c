/* test_seqloss.c: categorical crossentropy and accuracy on a sequence output (batch, steps,
 * classes), against Keras 3 (tests/gen_keras_seqloss_fixtures.py, fixtures/keras_seqloss/):
 * the loss is the mean over samples and steps (Keras's sum_over_batch_size on the (batch,
 * steps) losses), its weight gradients, and evaluate's loss and per-step accuracy over
 * batches of unequal size; the same through TimeDistributed(Dense) and in train_on_batch. */
#include "testutil.h"

#define FIXTURE_DIR "tests/fixtures/keras_seqloss/"
#define B 3
#define T 4
#define F 3
#define C 5
#define NW (F * C + C)

typedef struct {
    float x[B * T * F], y[B * T * C], w[NW], loss, grads[NW], eval[2];
} fixture;

static void read_tensor(FILE *f, const char *path, const char *name, float *out, long count) {
    char line[256], got[32];
    long n = 0;
    while (fgets(line, sizeof line, f) && (line[0] == '#' || line[0] == '\n')) {}
    cr_assert(sscanf(line, "tensor %31s %ld", got, &n) == 2 && !strcmp(got, name) && n == count,
              "%s: want tensor %s %ld, got '%s'", path, name, count, line);
    for (long i = 0; i < count; i++)
        cr_assert(fscanf(f, "%f", &out[i]) == 1, "%s: %s[%ld]", path, name, i);
    cr_assert(fgets(line, sizeof line, f)); /* the rest of the last line */
}

static void load(const char *name, fixture *fx) {
    char path[256];
    snprintf(path, sizeof path, FIXTURE_DIR "%s.txt", name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s (run the tests from the repository root)", path);
    read_tensor(f, path, "x", fx->x, B * T * F);
    read_tensor(f, path, "y", fx->y, B * T * C);
    read_tensor(f, path, "weights", fx->w, NW);
    read_tensor(f, path, "loss", &fx->loss, 1);
    read_tensor(f, path, "grads", fx->grads, NW);
    read_tensor(f, path, "eval", fx->eval, 2);
    fclose(f);
}

static kc_model *build(int logits, int time_distributed) {
    kc_model *m = kc_sequential(kc_shape2(T, F));
    kc_layer *d = kc_dense(C, logits ? KC_LINEAR : KC_SOFTMAX);
    KC_CHECK(kc_add(m, time_distributed ? kc_time_distributed(d) : d));
    KC_CHECK(kc_compile_ex(m, &(kc_compile_opts){
                                  .optimizer = kc_sgd(NULL),
                                  .loss_specs = {{.kind = KC_CATEGORICAL_CROSSENTROPY,
                                                  .from_logits = logits}},
                                  .metrics = {KC_METRIC_ACCURACY}}));
    return m;
}

/* within 1e-5 of Keras, relative to max(1, |want|) */
#define NEAR(got, want, what)                                                             \
    cr_assert(tu_close((got), (want), 1e-5), "%s: kerac %.9g, Keras %.9g", (what),        \
              (double)(got), (double)(want))

static void check_case(const char *name, int logits, int time_distributed) {
    fixture fx;
    load(name, &fx);
    kc_model *m = build(logits, time_distributed);
    KC_CHECK(kc_set_weights(m, fx.w, NW));
    double loss = 0.0;
    float grads[NW];
    KC_CHECK(kc_compute_gradients(m, fx.x, fx.y, B, 0, &loss, grads, NW));
    NEAR(loss, fx.loss, "loss");
    for (int i = 0; i < NW; i++) {
        char what[32];
        snprintf(what, sizeof what, "grads[%d]", i);
        NEAR(grads[i], fx.grads[i], what);
    }
    /* evaluate in batches of 2 and 1: Keras weights each batch's mean by its samples */
    kc_dataset ds = {.count = B, .x_shape = kc_shape2(T, F), .x_dtype = KC_FLOAT32, .x = fx.x,
                     .y_shape = kc_shape2(T, C), .y_dtype = KC_FLOAT32, .y = fx.y};
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &ds, &(kc_evaluate_opts){.batch_size = 2}, &r));
    NEAR(r.loss, fx.eval[0], "evaluate loss");
    NEAR(r.accuracy, fx.eval[1], "evaluate accuracy");
    /* train_on_batch reports the batch's loss and accuracy before its step */
    KC_CHECK(kc_train_on_batch(m, fx.x, fx.y, B, &r));
    NEAR(r.loss, fx.loss, "train_on_batch loss");
    NEAR(r.accuracy, fx.eval[1], "train_on_batch accuracy");
    kc_model_free(m);
}

Test(seqloss, softmax_matches_keras) { check_case("softmax", 0, 0); }
Test(seqloss, logits_matches_keras) { check_case("logits", 1, 0); }
Test(seqloss, time_distributed_matches_keras) {
    check_case("softmax", 0, 1);
    check_case("logits", 1, 1);
}

/* sparse labels are one class index per step: the same loss and gradients as the one-hot
 * labels with categorical crossentropy */
Test(seqloss, sparse_on_sequence_equals_categorical) {
    float x[B * T * F], idx[B * T], onehot[B * T * C] = {0}, w[NW];
    for (int i = 0; i < B * T * F; i++) x[i] = (float)((i * 13) % 7) / 7.0f - 0.4f;
    for (int i = 0; i < B * T; i++) {
        idx[i] = (float)((i * 3) % C);
        onehot[i * C + (i * 3) % C] = 1.0f;
    }
    for (int i = 0; i < NW; i++) w[i] = (float)((i * 5) % 11) / 11.0f - 0.5f;
    kc_loss kinds[2] = {KC_CATEGORICAL_CROSSENTROPY, KC_SPARSE_CATEGORICAL_CROSSENTROPY};
    double loss[2];
    float g[2][NW];
    for (int k = 0; k < 2; k++) {
        kc_model *m = kc_sequential(kc_shape2(T, F));
        KC_CHECK(kc_add(m, kc_dense(C, KC_SOFTMAX)));
        KC_CHECK(kc_compile(m, kinds[k], kc_sgd(NULL), KC_METRIC_ACCURACY));
        KC_CHECK(kc_set_weights(m, w, NW));
        KC_CHECK(kc_compute_gradients(m, x, k ? idx : onehot, B, 0, &loss[k], g[k], NW));
        kc_model_free(m);
    }
    cr_expect(fabs(loss[0] - loss[1]) <= 1e-6 * fabs(loss[0]), "loss %g vs %g", loss[0], loss[1]);
    for (int i = 0; i < NW; i++)
        cr_expect(fabsf(g[0][i] - g[1][i]) <= 1e-6f + 1e-5f * fabsf(g[0][i]), "grad %d: %g vs %g",
                  i, (double)g[0][i], (double)g[1][i]);
}
