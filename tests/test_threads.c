/* test_threads.c: kerac used from several user threads at once. The pool runs one task at a
 * time, so two threads training two models take turns on it and each gets the results it
 * would alone; the thread count may change while another thread predicts. Runs in `make test`
 * and, with the pool and engine tests, under ThreadSanitizer in `make test-tsan`. */
#include "testutil.h"
#include "ops/ops.h" /* kc_gemm_backend */
#include <pthread.h>

enum { N = 200, IN = 24, OUT = 4 };
static float x[N * IN], y[N * OUT];

static void make_data(void) {
    unsigned seed = 17;
    for (int i = 0; i < N * IN; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < OUT; j++) y[i * OUT + j] = (float)(j == (x[i * IN] > 0) + 2 * (x[i * IN + 1] > 0));
}

/* made on the calling thread: the default seed is the library's */
static kc_model *small_model(int seed, int conv) {
    kc_set_random_seed((uint64_t)seed);
    kc_model *m;
    if (conv) {
        m = kc_sequential(kc_shape3(6, 4, 1)); /* IN = 24 = 6 x 4 x 1 */
        kc_add(m, kc_conv2d(8, 3, KC_RELU));
        kc_add(m, kc_flatten());
    } else {
        m = kc_sequential(kc_shape1(IN));
    }
    kc_add(m, kc_dense(64, KC_RELU));
    kc_add(m, kc_dropout(0.2f));
    kc_add(m, kc_dense(OUT, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY));
    return m;
}

typedef struct {
    kc_model *m;
    kc_status st;
} fit_job;

static void *fit_thread(void *arg) {
    fit_job *j = arg;
    kc_dataset d = {.count = N, .x_shape = kc_shape1(IN), .x_dtype = KC_FLOAT32, .x = x,
                    .y_shape = kc_shape1(OUT), .y_dtype = KC_FLOAT32, .y = y};
    if (kc_model_input_shape_at(j->m, 0).rank == 3) d.x_shape = kc_shape3(6, 4, 1);
    j->st = kc_fit(j->m, &d, &(kc_fit_opts){.batch_size = 16, .epochs = 2, .verbose = -1}, NULL);
    return NULL;
}

static float *weights_of(kc_model *m, int64_t *count) {
    *count = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)*count);
    KC_CHECK(kc_get_weights(m, w, *count));
    return w;
}

/* kerac's own kernels give the same bits on any thread count; OpenBLAS's products depend on
 * its split */
static double tolerance(void) { return strcmp(kc_gemm_backend(), "openblas") ? 0.0 : 1e-4; }

static void check_same(const float *a, const float *b, int64_t n, const char *what) {
    double tol = tolerance();
    for (int64_t i = 0; i < n; i++)
        cr_assert(tol == 0.0 ? !memcmp(&a[i], &b[i], sizeof(float)) : tu_close(a[i], b[i], tol),
                  "%s: [%lld] is %.9g, alone %.9g", what, (long long)i, a[i], b[i]);
}

static void two_models_at_once(int threads) {
    make_data();
    kc_set_num_threads(threads);
    /* alone, one after the other */
    float *alone[2];
    int64_t count[2];
    for (int t = 0; t < 2; t++) {
        fit_job j = {small_model(10 + t, t), KC_OK};
        fit_thread(&j);
        KC_CHECK(j.st);
        alone[t] = weights_of(j.m, &count[t]);
        kc_model_free(j.m);
    }
    /* both at once, on two threads of their own */
    fit_job jobs[2] = {{small_model(10, 0), KC_OK}, {small_model(11, 1), KC_OK}};
    pthread_t ids[2];
    for (int t = 0; t < 2; t++) cr_assert_eq(pthread_create(&ids[t], NULL, fit_thread, &jobs[t]), 0);
    for (int t = 0; t < 2; t++) pthread_join(ids[t], NULL);
    for (int t = 0; t < 2; t++) {
        KC_CHECK(jobs[t].st);
        int64_t n;
        float *w = weights_of(jobs[t].m, &n);
        cr_assert_eq(n, count[t]);
        check_same(w, alone[t], n, t ? "conv model trained beside another" : "dense model trained beside another");
        free(w);
        free(alone[t]);
        kc_model_free(jobs[t].m);
    }
}

Test(threads, two_models_train_at_once_on_two_threads) { two_models_at_once(2); }
Test(threads, two_models_train_at_once_on_four_threads) { two_models_at_once(4); }

typedef struct {
    _Atomic int stop;
    int rounds;
} changer_job;

static void *change_threads(void *arg) {
    changer_job *c = arg;
    for (int i = 0; !c->stop; i++) {
        kc_set_num_threads(1 + i % 4);
        c->rounds++;
    }
    return NULL;
}

/* one thread predicts (a convolution, whose scratch is sized per thread, and dense layers)
 * while another changes the thread count under it */
Test(threads, predict_while_the_thread_count_changes) {
    make_data();
    kc_set_num_threads(2);
    kc_model *m = small_model(5, 1);
    static float want[N * OUT], got[N * OUT];
    KC_CHECK(kc_predict(m, x, N, want));
    changer_job c = {0};
    pthread_t id;
    cr_assert_eq(pthread_create(&id, NULL, change_threads, &c), 0);
    for (int r = 0; r < 8; r++) {
        KC_CHECK(kc_predict(m, x, N, got));
        check_same(got, want, N * OUT, "prediction while the thread count changes");
        KC_CHECK(kc_predict(m, x + (r % N) * IN, 1, got)); /* one sample: the serial paths */
    }
    c.stop = 1;
    pthread_join(id, NULL);
    kc_set_num_threads(0);
    kc_model_free(m);
}
