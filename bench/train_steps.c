/* train_steps.c: the plain timing of 300 kc_train_on_batch steps (batch 128, after 20 warm-up
 * steps) of the seed's network on fixed data, 2 threads, printed in ms per step. It uses only
 * the API every kerac version has, so it links against any build of libkerac.a: run two builds
 * alternately to compare them (docs/PERFORMANCE.md, the graph engine against the chain before
 * it). `make build/train_steps` builds it against this tree's library. */
#include <kerac.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
    enum { BATCH = 128, WARMUP = 20, STEPS = 300 };
    static float x[BATCH * 784], y[BATCH * 10];
    kc_set_num_threads(2);
    kc_set_random_seed(1337);
    kc_model *m = kc_sequential(kc_shape1(784));
    kc_add(m, kc_dense(512, KC_RELU));
    kc_add(m, kc_dropout(0.2f));
    kc_add(m, kc_dense(512, KC_RELU));
    kc_add(m, kc_dropout(0.2f));
    kc_add(m, kc_dense(10, KC_SOFTMAX));
    if (kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_rmsprop(NULL), KC_METRIC_ACCURACY)) {
        fprintf(stderr, "train_steps: %s\n", kc_last_error());
        return 1;
    }
    /* MNIST-like input: two thirds zeros, the rest in [0, 1] */
    unsigned s = 1;
    for (int i = 0; i < BATCH * 784; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = (s >> 16) % 3 == 0 ? (float)((s >> 8) & 255) / 255.0f : 0.0f;
    }
    for (int i = 0; i < BATCH; i++) y[i * 10 + i % 10] = 1.0f;
    for (int i = 0; i < WARMUP; i++) kc_train_on_batch(m, x, y, BATCH, NULL);
    double start = now();
    for (int i = 0; i < STEPS; i++) kc_train_on_batch(m, x, y, BATCH, NULL);
    printf("%.4f\n", (now() - start) / STEPS * 1e3);
    kc_model_free(m);
    return 0;
}
