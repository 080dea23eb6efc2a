/* test_dist.c: the row-group order of distributed training (src/dist/, issue 15) in one
 * process, without mpirun: the grouped fit with one group per batch is the plain fit bit for
 * bit (the step after the fold is the fused step's arithmetic, dropout keyed by global rows,
 * the loss divided by the whole batch); smaller groups train (other bits, same numbers to a
 * tolerance); layers not handled are refused by name; without MPI in the build,
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
    kc_model *m = kc_sequential(kc_shape1(F));
    kc_add(m, kc_dense(8, KC_RELU));
    kc_add(m, kc_batch_normalization(NULL));
    kc_add(m, kc_dense(C, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(&(kc_sgd_opts){0}), 0));
    kc_dataset ds = data();
    KC_EXPECT_ERR(kc_fit(m, &ds, &(kc_fit_opts){.batch_size = 32, .verbose = -1}, NULL), KC_EINVAL,
                  "(BatchNormalization) is not handled in distributed training");
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
