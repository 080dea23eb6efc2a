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

/* sparse labels stay one class index per sample: a sequence output is refused by name */
Test(seqloss, sparse_on_sequence_refused) {
    kc_model *m = kc_sequential(kc_shape2(T, F));
    KC_CHECK(kc_add(m, kc_dense(C, KC_SOFTMAX)));
    KC_EXPECT_ERR(kc_compile(m, KC_SPARSE_CATEGORICAL_CROSSENTROPY, kc_adam(NULL),
                             KC_METRIC_ACCURACY),
                  KC_EINVAL, "sparse_categorical_crossentropy");
    kc_model_free(m);
}
