/* test_alloc.c: nothing is allocated inside the training loop. The binary is linked with
 * -Wl,--wrap for malloc, calloc, realloc and posix_memalign (Makefile), so every allocation
 * kerac's code makes is counted; kc_fit's allocations (its index arrays, History) must not
 * grow with the number of steps and epochs, for the Sequential MLP and for Functional graphs
 * (shared layers, merges, a nested model). */
#include "testutil.h"
#include <stdatomic.h>

static atomic_long allocations;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_malloc(size_t n) {
    atomic_fetch_add(&allocations, 1);
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m) {
    atomic_fetch_add(&allocations, 1);
    return __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n) {
    atomic_fetch_add(&allocations, 1);
    return __real_realloc(p, n);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n) {
    atomic_fetch_add(&allocations, 1);
    return __real_posix_memalign(p, a, n);
}

#define N 512
static float x[N * 32], y[N * 4];

static void check_fit(kc_model *m, const kc_dataset *ds, const char *what);

static long fit_allocations(kc_model *m, const kc_dataset *ds, int epochs) {
    long before = atomic_load(&allocations);
    kc_history *h;
    KC_CHECK(kc_fit(m, ds, &(kc_fit_opts){.batch_size = 32, .epochs = epochs, .verbose = -1,
                                          .validation = ds}, &h));
    kc_history_free(h);
    return atomic_load(&allocations) - before;
}

static void check_model(kc_model *m, const kc_dataset *ds) {
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY));
    check_fit(m, ds, "accuracy");
    /* the metrics keep their state and scratch from compile on */
    kc_compile_opts o = {.optimizer = kc_adam(NULL), .loss = {KC_CATEGORICAL_CROSSENTROPY},
                         .metrics = {KC_METRIC_ACCURACY}};
    o.metric_specs[0][0] = (kc_metric_spec){.kind = KC_METRIC_AUC, .curve = KC_CURVE_PR};
    o.metric_specs[0][1] = (kc_metric_spec){.kind = KC_METRIC_PRECISION, .top_k = 2};
    o.metric_specs[0][2] = (kc_metric_spec){.kind = KC_METRIC_F1_SCORE, .average = KC_AVERAGE_MACRO};
    o.metric_specs[0][3] = (kc_metric_spec){.kind = KC_METRIC_CATEGORICAL_CROSSENTROPY};
    o.metric_specs[0][4] = (kc_metric_spec){.kind = KC_METRIC_ROOT_MEAN_SQUARED_ERROR};
    KC_CHECK(kc_compile_ex(m, &o));
    check_fit(m, ds, "AUC, Precision, F1Score, crossentropy, RMSE");
}

static void check_fit(kc_model *m, const kc_dataset *ds, const char *what) {
    fit_allocations(m, ds, 1); /* the workspace, the threads' buffers: once */
    /* A thread's product buffers grow once, the first time it takes a larger block; which
     * thread takes which block depends on timing, so on a loaded machine that first time can
     * fall in a later fit. A loop that allocates does so in every try: up to 3 tries. */
    long one = 0, three = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        one = fit_allocations(m, ds, 1);
        three = fit_allocations(m, ds, 3);
        if (one == three) break;
    }
    cr_assert_eq(one, three,
                 "kc_fit allocated %ld times for 1 epoch (16 steps), %ld for 3 (48 steps): the "
                 "training loop allocates (metrics: %s)", one, three, what);
    cr_assert(one > 0, "the counter saw no allocation (kc_fit's index arrays): it counts nothing");
    cr_assert(one < 64, "kc_fit allocates %ld times for one epoch", one);
}

static kc_dataset data(void) {
    for (int i = 0; i < N * 32; i++) x[i] = (float)((i * 37) % 101) / 101.0f;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 4; j++) y[i * 4 + j] = (float)(j == i % 4);
    return (kc_dataset){.count = N, .x_shape = kc_shape1(32), .x_dtype = KC_FLOAT32, .x = x,
                        .y_shape = kc_shape1(4), .y_dtype = KC_FLOAT32, .y = y};
}

Test(alloc, sequential_mlp) {
    kc_dataset ds = data();
    kc_model *m = kc_sequential(kc_shape1(32));
    KC_CHECK(kc_add(m, kc_dense(64, KC_RELU)));
    KC_CHECK(kc_add(m, kc_dropout(0.2f)));
    KC_CHECK(kc_add(m, kc_dense(64, KC_RELU)));
    KC_CHECK(kc_add(m, kc_dropout(0.2f)));
    KC_CHECK(kc_add(m, kc_dense(4, KC_SOFTMAX)));
    check_model(m, &ds);
    kc_model_free(m);
}

Test(alloc, functional_graph) {
    kc_dataset ds = data();
    kc_model *inner = kc_sequential(kc_shape1(16));
    KC_CHECK(kc_add(inner, kc_dense(16, KC_TANH)));
    kc_tensor *in = kc_input(kc_shape1(32));
    kc_layer *shared = kc_dense(16, KC_RELU);
    kc_tensor *a = kc_call(shared, in);
    kc_tensor *b = kc_call(kc_dropout(0.1f), kc_call(kc_dense(32, KC_TANH), in));
    kc_tensor *c = kc_call(shared, b);
    kc_tensor *sum = kc_call_n(kc_merge_add(), (kc_tensor *[]){a, c}, 2);
    kc_tensor *nested = kc_call(kc_model_as_layer(inner), sum);
    kc_tensor *cat = kc_call_n(kc_concatenate(-1), (kc_tensor *[]){nested, a}, 2);
    kc_tensor *out = kc_call(kc_dense(4, KC_SOFTMAX), cat);
    kc_model *m = kc_functional(&in, 1, &out, 1);
    cr_assert_not_null(m, "%s", kc_last_error());
    check_model(m, &ds);
    kc_model_free(m);
    kc_model_free(inner);
}

/* token ids of a None length, masks, a sparse loss per timestep, validation data of another
 * length: after the first epoch the workspace fits both lengths and the loop allocates nothing */
Test(alloc, sequence_model) {
    static int32_t ids[N * 12], vids[N * 9], tags[N * 12], vtags[N * 9];
    for (int i = 0; i < N * 12; i++) {
        ids[i] = i % 12 > 8 + i / 12 % 3 ? 0 : 1 + (i * 7) % 40;
        tags[i] = (i * 5) % 4;
    }
    for (int i = 0; i < N * 9; i++) {
        vids[i] = 1 + (i * 3) % 40;
        vtags[i] = i % 4;
    }
    kc_dataset train = {.count = N, .n_inputs = 1, .n_targets = 1};
    train.inputs[0] = (kc_array){kc_shape1(12), KC_INT32, ids, 0, 0};
    train.targets[0] = (kc_array){kc_shape1(12), KC_INT32, tags, 0, 0};
    kc_dataset val = train;
    val.inputs[0] = (kc_array){kc_shape1(9), KC_INT32, vids, 0, 0};
    val.targets[0] = (kc_array){kc_shape1(9), KC_INT32, vtags, 0, 0};
    kc_model *m = kc_sequential_ex(kc_shape1(KC_NONE), KC_INT32);
    KC_CHECK(kc_add(m, kc_embedding(41, 8, &(kc_embedding_opts){.mask_zero = 1})));
    KC_CHECK(kc_add(m, kc_dense(16, KC_RELU)));
    KC_CHECK(kc_add(m, kc_dense(4, KC_SOFTMAX)));
    KC_CHECK(kc_compile(m, KC_SPARSE_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY));
    long counts[3];
    for (int r = 0; r < 3; r++) {
        long before = atomic_load(&allocations);
        kc_history *h;
        KC_CHECK(kc_fit(m, &train, &(kc_fit_opts){.batch_size = 32, .epochs = r == 2 ? 3 : 1,
                                                  .verbose = -1, .validation = &val}, &h));
        kc_history_free(h);
        counts[r] = atomic_load(&allocations) - before;
    }
    cr_assert_eq(counts[1], counts[2], "kc_fit allocated %ld times for 1 epoch, %ld for 3: the "
                 "training loop allocates", counts[1], counts[2]);
    cr_assert(counts[1] < 64, "kc_fit allocates %ld times for one epoch", counts[1]);
    kc_model_free(m);
}
