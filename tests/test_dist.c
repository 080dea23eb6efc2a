/* test_dist.c: the row-group order of distributed training (src/dist/, issue 15) in one
 * process, without mpirun: the grouped fit with one group per batch is the plain fit bit for
 * bit (the step after the fold is the fused step's arithmetic, dropout keyed by global rows,
 * the loss divided by the whole batch); smaller groups train (other bits, same numbers to a
 * tolerance); BatchNormalization keeps its statistics per group and moves its averages once
 * per step by the groups' mean, and inference uses them; synchronized=True takes the whole
 * batch's statistics; layers not handled are refused by name; without MPI in the build,
 * kc_distributed_init says how to get it. Several ranks: tests/test_mpi.sh (make test-mpi). */
#include "testutil.h"

#define N 200
#define F 20
#define C 5

static float xs[N * F], ys[N * C];

static kc_dataset data(void) {
    uint64_t s = 12345;
    for (int i = 0; i < N * F; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        xs[i] = (float)((s >> 40) & 0xffff) / 65536.0f - 0.5f;
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) ys[i * C + j] = (float)(j == (i * 7) % C);
    return (kc_dataset){.count = N, .x_shape = kc_shape1(F), .x_dtype = KC_FLOAT32, .x = xs,
                        .y_shape = kc_shape1(C), .y_dtype = KC_FLOAT32, .y = ys};
}

static kc_model *mlp(void) {
    kc_set_random_seed(7);
    kc_model *m = kc_sequential(kc_shape1(F));
    kc_add(m, kc_dense(64, KC_RELU));
    kc_add(m, kc_dropout(0.3f));
    kc_add(m, kc_dense(32, KC_RELU));
    kc_add(m, kc_dropout(0.2f));
    kc_add(m, kc_dense(C, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_rmsprop(&(kc_rmsprop_opts){0}),
                        KC_METRIC_ACCURACY));
    return m;
}

/* trains 3 epochs of batch 64 (the last batch 8 rows) with group rows g (0: the plain order) */
static float *train(int g, int threads, kc_history **hist) {
    kc_set_num_threads(threads);
    KC_CHECK(kc_distributed_set_group_rows(g));
    kc_model *m = mlp();
    kc_dataset ds = data();
    KC_CHECK(kc_fit(m, &ds, &(kc_fit_opts){.batch_size = 64, .epochs = 3, .verbose = -1}, hist));
    KC_CHECK(kc_distributed_set_group_rows(0));
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_get_weights(m, w, n));
    kc_model_free(m);
    return w;
}

static int64_t params(void) {
    kc_model *m = mlp();
    int64_t n = kc_count_params(m);
    kc_model_free(m);
    return n;
}

Test(dist, not_started_by_default) {
    cr_assert_eq(kc_distributed_active(), 0);
    cr_assert_eq(kc_distributed_rank(), 0);
    cr_assert_eq(kc_distributed_size(), 1);
    cr_assert_eq(kc_distributed_group_rows(), 0);
    KC_CHECK(kc_distributed_finalize()); /* harmless when never started */
    KC_EXPECT_ERR(kc_distributed_set_group_rows(-1), KC_EINVAL, "rows must be in");
}

Test(dist, one_group_per_batch_is_the_plain_fit_bit_for_bit) {
    kc_history *hp = NULL, *hg = NULL;
    float *plain = train(0, 2, &hp), *grouped = train(64, 2, &hg);
    int64_t n = params();
    cr_assert(memcmp(plain, grouped, sizeof(float) * (size_t)n) == 0,
              "the grouped fit with one group per batch differs from the plain fit");
    for (int e = 0; e < 3; e++) {
        cr_assert_eq(hp->accuracy[e], hg->accuracy[e], "epoch %d accuracy", e);
        cr_assert_float_eq(hp->loss[e], hg->loss[e], 1e-12, "epoch %d loss", e);
    }
    free(plain);
    free(grouped);
    kc_history_free(hp);
    kc_history_free(hg);
}

Test(dist, small_groups_train_and_do_not_depend_on_threads) {
    kc_history *h1 = NULL, *h2 = NULL, *hp = NULL;
    float *a = train(16, 1, &h1), *b = train(16, 2, &h2), *p = train(0, 2, &hp);
    int64_t n = params();
    cr_assert(memcmp(a, b, sizeof(float) * (size_t)n) == 0, "1 and 2 threads differ");
    double worst = 0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - p[i]));
    cr_assert(worst < 1e-3, "grouped and plain weights differ by %g", worst);
    cr_assert_float_eq(h1->loss[2], hp->loss[2], 1e-4);
    free(a);
    free(b);
    free(p);
    kc_history_free(h1);
    kc_history_free(h2);
    kc_history_free(hp);
}

Test(dist, layers_not_handled_are_refused_by_name) {
    KC_CHECK(kc_distributed_set_group_rows(16));
    kc_model *m = kc_sequential(kc_shape2(4, 5));
    kc_add(m, kc_conv1d(8, 3, KC_RELU));
    kc_add(m, kc_flatten());
    kc_add(m, kc_dense(C, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(&(kc_sgd_opts){0}), 0));
    kc_dataset ds = data();
    ds.x_shape = kc_shape2(4, 5);
    KC_EXPECT_ERR(kc_fit(m, &ds, &(kc_fit_opts){.batch_size = 32, .verbose = -1}, NULL), KC_EINVAL,
                  "(Conv1D) is not handled in distributed training");
    KC_CHECK(kc_distributed_set_group_rows(0));
    kc_model_free(m);
}

/* BatchNormalization between a Dense and its activation */
static kc_model *bn_mlp(const kc_batchnorm_opts *o) {
    kc_set_random_seed(11);
    kc_model *m = kc_sequential(kc_shape1(F));
    kc_add(m, kc_dense(16, KC_LINEAR));
    kc_add(m, kc_batch_normalization(o));
    kc_add(m, kc_activation(KC_RELU));
    kc_add(m, kc_dense(C, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(&(kc_adam_opts){0}),
                        KC_METRIC_ACCURACY));
    return m;
}

static float *bn_train(int g, int64_t *n) {
    KC_CHECK(kc_distributed_set_group_rows(g));
    kc_model *m = bn_mlp(NULL);
    kc_dataset ds = data();
    KC_CHECK(kc_fit(m, &ds, &(kc_fit_opts){.batch_size = 64, .epochs = 2, .verbose = -1}, NULL));
    KC_CHECK(kc_distributed_set_group_rows(0));
    *n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)*n);
    KC_CHECK(kc_get_weights(m, w, *n));
    kc_model_free(m);
    return w;
}

Test(dist, batchnorm_one_group_per_batch_is_the_plain_fit_bit_for_bit) {
    kc_set_num_threads(1);
    int64_t n;
    float *plain = bn_train(0, &n), *grouped = bn_train(64, &n), *small = bn_train(16, &n);
    /* the moving statistics included (the Dense's 20 x 16 + 16 weights, then gamma, beta,
     * moving_mean, moving_variance of 16) */
    cr_assert(memcmp(plain, grouped, sizeof(float) * (size_t)n) == 0,
              "BatchNormalization: the grouped fit with one group per batch differs");
    int at = F * 16 + 16, moved = 0;
    for (int i = 0; i < 16; i++) moved += small[at + 32 + i] != 0.0f && small[at + 48 + i] != 1.0f;
    cr_assert_eq(moved, 16, "groups of 16 rows: the moving statistics did not move");
    cr_assert(memcmp(plain + at + 32, small + at + 32, sizeof(float) * 32) != 0,
              "groups of 16 rows: per-group statistics should differ from the whole batch's");
    free(plain);
    free(grouped);
    free(small);
}

/* one step of 64 rows in groups of 32 on a model that is only a BatchNormalization(momentum
 * 0.5): the moving averages are 0.5 * old + 0.5 * (the two groups' mean of their batch mean
 * and biased variance), computed here as the layer does; then predict and evaluate normalise
 * with them */
Test(dist, batchnorm_moves_by_the_groups_mean_and_inference_uses_it) {
    kc_set_num_threads(1);
    static float zeros[N * F];
    kc_dataset ds = data();
    ds.y = zeros;
    ds.y_shape = kc_shape1(F);
    KC_CHECK(kc_distributed_set_group_rows(32));
    kc_model *m = kc_sequential(kc_shape1(F));
    kc_add(m, kc_batch_normalization(&(kc_batchnorm_opts){.momentum = 0.5f}));
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(&(kc_sgd_opts){0}), 0));
    KC_CHECK(kc_fit(m, &ds, &(kc_fit_opts){.batch_size = 64, .epochs = 1, .steps_per_epoch = 1,
                                           .no_shuffle = 1, .verbose = -1}, NULL));
    KC_CHECK(kc_distributed_set_group_rows(0));
    float w[4 * F];
    KC_CHECK(kc_get_weights(m, w, 4 * F));
    for (int i = 0; i < F; i++) {
        float mean[2], var[2];
        for (int g = 0; g < 2; g++) {
            double sum = 0, sq = 0;
            for (int r = 32 * g; r < 32 * g + 32; r++) sum += xs[r * F + i];
            mean[g] = (float)(sum / 32);
            for (int r = 32 * g; r < 32 * g + 32; r++) {
                double d = (double)xs[r * F + i] - mean[g];
                sq += d * d;
            }
            var[g] = (float)(sq / 32);
        }
        float em = 0.0f * 0.5f + (mean[0] + mean[1]) / 2.0f * 0.5f;
        float ev = 1.0f * 0.5f + (var[0] + var[1]) / 2.0f * 0.5f;
        cr_assert_eq(w[2 * F + i], em, "moving_mean[%d] %.9g, expected %.9g", i, w[2 * F + i], em);
        cr_assert_eq(w[3 * F + i], ev, "moving_variance[%d] %.9g, expected %.9g", i,
                     w[3 * F + i], ev);
    }
    /* inference: (x - moving_mean) / sqrt(moving_variance + eps) * gamma + beta */
    float *p = malloc(sizeof(float) * N * F);
    KC_CHECK(kc_predict(m, xs, N, p));
    double se = 0;
    for (int r = 0; r < N; r++)
        for (int i = 0; i < F; i++) {
            float inv = 1.0f / sqrtf(w[3 * F + i] + 1e-3f);
            float e = (xs[r * F + i] - w[2 * F + i]) * inv * w[i] + w[F + i];
            cr_assert_eq(p[r * F + i], e, "predict row %d feature %d: %.9g, expected %.9g", r, i,
                         p[r * F + i], e);
            se += (double)e * e;
        }
    kc_metrics res;
    KC_CHECK(kc_evaluate(m, &ds, &(kc_evaluate_opts){.batch_size = 50}, &res));
    cr_assert_float_eq(res.loss, se / (N * F), 1e-6 * se / (N * F), "evaluate's loss %.9g, expected %.9g",
                       res.loss, se / (N * F));
    free(p);
    kc_model_free(m);
}

static float *sync_train(int sync, int g, int epochs, int64_t *n) {
    KC_CHECK(kc_distributed_set_group_rows(g));
    kc_model *m = bn_mlp(&(kc_batchnorm_opts){.synchronized = sync});
    kc_dataset ds = data();
    KC_CHECK(kc_fit(m, &ds, &(kc_fit_opts){.batch_size = 64, .epochs = epochs, .verbose = -1},
                    NULL));
    KC_CHECK(kc_distributed_set_group_rows(0));
    *n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)*n);
    KC_CHECK(kc_get_weights(m, w, *n));
    kc_model_free(m);
    return w;
}

/* synchronized=True: the statistics over the whole batch across the groups. One group per
 * batch: the plain fit's bits; groups of 16: the plain fit's numbers up to the order of the
 * sums (the per-group statistics of synchronized=False are further off) */
Test(dist, batchnorm_synchronized_takes_the_whole_batch_statistics) {
    kc_set_num_threads(1);
    int64_t n;
    float *plain = sync_train(1, 0, 2, &n), *one = sync_train(1, 64, 2, &n);
    cr_assert(memcmp(plain, one, sizeof(float) * (size_t)n) == 0,
              "synchronized, one group per batch: differs from the plain fit");
    float *synced = sync_train(1, 16, 1, &n), *plain1 = sync_train(0, 0, 1, &n),
          *local = sync_train(0, 16, 1, &n);
    double worst_sync = 0, worst_local = 0;
    for (int64_t i = 0; i < n; i++) {
        double ds = fabs((double)synced[i] - plain1[i]), dl = fabs((double)local[i] - plain1[i]);
        worst_sync = ds > worst_sync ? ds : worst_sync;
        worst_local = dl > worst_local ? dl : worst_local;
    }
    cr_log_info("synchronized %g, per group %g", worst_sync, worst_local);
    cr_assert(worst_sync < 1e-4, "synchronized in groups of 16: %g from the plain fit", worst_sync);
    cr_assert(worst_local > 20 * worst_sync, "per-group statistics should be further off (%g, "
              "synchronized %g)", worst_local, worst_sync);
    free(plain);
    free(one);
    free(synced);
    free(plain1);
    free(local);
}

/* two synchronized layers and dropout between them: the passes in node order (forward) and
 * back (backward), the dropout masks the same in every pass */
static float *sync2_train(int g, int64_t *n) {
    KC_CHECK(kc_distributed_set_group_rows(g));
    kc_set_random_seed(3);
    kc_batchnorm_opts o = {.momentum = 0.8f, .synchronized = 1};
    kc_model *m = kc_sequential(kc_shape1(F));
    kc_add(m, kc_dense(16, KC_LINEAR));
    kc_add(m, kc_batch_normalization(&o));
    kc_add(m, kc_activation(KC_RELU));
    kc_add(m, kc_dropout(0.25f));
    kc_add(m, kc_dense(12, KC_LINEAR));
    kc_add(m, kc_batch_normalization(&o));
    kc_add(m, kc_activation(KC_TANH));
    kc_add(m, kc_dense(C, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(&(kc_adam_opts){0}), 0));
    kc_dataset ds = data();
    KC_CHECK(kc_fit(m, &ds, &(kc_fit_opts){.batch_size = 64, .epochs = 1, .verbose = -1}, NULL));
    KC_CHECK(kc_distributed_set_group_rows(0));
    *n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)*n);
    KC_CHECK(kc_get_weights(m, w, *n));
    kc_model_free(m);
    return w;
}

Test(dist, batchnorm_two_synchronized_layers) {
    kc_set_num_threads(1);
    int64_t n;
    float *plain = sync2_train(0, &n), *one = sync2_train(64, &n), *groups = sync2_train(16, &n);
    cr_assert(memcmp(plain, one, sizeof(float) * (size_t)n) == 0,
              "two synchronized layers, one group per batch: differs from the plain fit");
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)groups[i] - plain[i]);
        worst = d > worst ? d : worst;
    }
    cr_assert(worst < 1e-4, "two synchronized layers in groups of 16: %g from the plain fit", worst);
    free(plain);
    free(one);
    free(groups);
}

Test(dist, batchnorm_synchronized_is_read_and_written) {
    kc_model *m = bn_mlp(&(kc_batchnorm_opts){.synchronized = 1});
    char *json = NULL;
    KC_CHECK(kc_model_to_json(m, &json));
    cr_assert(strstr(json, "\"synchronized\":true") || strstr(json, "\"synchronized\": true"),
              "synchronized=True is not written: %s", json);
    kc_model_free(m);
    KC_CHECK(kc_model_from_json(json, &m));
    free(json);
    KC_CHECK(kc_model_to_json(m, &json));
    cr_assert(strstr(json, "\"synchronized\":true") || strstr(json, "\"synchronized\": true"),
              "synchronized=True is not read back: %s", json);
    free(json);
    kc_model_free(m);
    const char *bad = "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", \"layers\": "
                      "[{\"class_name\": \"InputLayer\", \"config\": {\"batch_shape\": [null, 3]}}, "
                      "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn\", "
                      "\"synchronized\": 3}}]}}";
    KC_EXPECT_ERR(kc_model_from_json(bad, &m), KC_EFORMAT, "synchronized is not true or false");
}

/* a BatchNormalization called with training=False and a frozen one run in inference mode in
 * the row groups too (their averages stay), the trained one's move; one called twice is
 * refused by name */
Test(dist, batchnorm_inference_calls_and_frozen_layers_keep_their_averages) {
    kc_set_num_threads(1);
    kc_set_random_seed(5);
    kc_layer *off = kc_batch_normalization(NULL), *frozen = kc_batch_normalization(NULL),
             *on = kc_batch_normalization(NULL);
    KC_CHECK(kc_set_trainable(frozen, 0));
    kc_tensor *in = kc_input(kc_shape1(F));
    kc_tensor *h = kc_call_training(off, kc_call(kc_dense(8, KC_LINEAR), in), 0);
    h = kc_call(on, kc_call(frozen, h));
    kc_tensor *out = kc_call(kc_dense(C, KC_SOFTMAX), h);
    kc_model *m = kc_functional(&in, 1, &out, 1);
    cr_assert_not_null(m, "%s", kc_last_error());
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(&(kc_adam_opts){0}), 0));
    kc_dataset ds = data();
    KC_CHECK(kc_distributed_set_group_rows(16));
    KC_CHECK(kc_fit(m, &ds, &(kc_fit_opts){.batch_size = 64, .verbose = -1}, NULL));
    KC_CHECK(kc_distributed_set_group_rows(0));
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_get_weights(m, w, n));
    /* weights in layer order: Dense (F x 8 + 8), then the three BatchNormalizations (4 x 8) */
    for (int b = 0; b < 3; b++) {
        const float *bn = w + F * 8 + 8 + b * 32;
        int moved = 0;
        for (int i = 0; i < 8; i++) moved += bn[16 + i] != 0.0f || bn[24 + i] != 1.0f;
        cr_assert_eq(moved, b == 2 ? 8 : 0, "BatchNormalization %d: %d channels moved", b, moved);
    }
    free(w);
    kc_model_free(m);

    kc_layer *shared = kc_batch_normalization(NULL);
    in = kc_input(kc_shape1(F));
    h = kc_call(shared, kc_call(shared, in));
    out = kc_call(kc_dense(C, KC_SOFTMAX), h);
    m = kc_functional(&in, 1, &out, 1);
    cr_assert_not_null(m, "%s", kc_last_error());
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(&(kc_sgd_opts){0}), 0));
    KC_CHECK(kc_distributed_set_group_rows(16));
    KC_EXPECT_ERR(kc_fit(m, &ds, &(kc_fit_opts){.batch_size = 64, .verbose = -1}, NULL), KC_EINVAL,
                  "(BatchNormalization) is called more than once");
    KC_CHECK(kc_distributed_set_group_rows(0));
    kc_model_free(m);
}

#ifndef KERAC_MPI
Test(dist, init_without_mpi_says_how_to_build_it) {
    int argc = 1;
    char *args[] = {"test", NULL}, **argv = args;
    KC_EXPECT_ERR(kc_distributed_init(&argc, &argv), KC_ESTATE, "libopenmpi-dev");
    cr_assert_eq(kc_distributed_active(), 0);
}
#endif
