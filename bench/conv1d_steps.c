/* conv1d_steps.c: the training step time of a Conv1D text classifier, kerac's side of
 * bench/conv1d_keras.py (docs/PERFORMANCE.md, "Conv1D"): Conv1D(128, 5, relu) on (400, 50)
 * (400 steps of 50-dimensional embeddings), GlobalMaxPooling1D, Dense(1, sigmoid), binary
 * crossentropy, Adam, batch 32, fixed random data. Prints one JSON line: the median ms per
 * step over blocks of 10 steps after 5 warm-up steps.
 *   build/conv1d_steps [--threads N] [--blocks N] */
#include <kerac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    enum { BATCH = 32, STEPS = 400, DIM = 50, WARMUP = 5, BLOCK = 10 };
    int threads = 2, blocks = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--blocks") && i + 1 < argc) blocks = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: conv1d_steps [--threads N] [--blocks N]\n");
            return 2;
        }
    }
    if (blocks < 1 || blocks > 1000) blocks = 20;
    kc_set_num_threads(threads);
    kc_set_random_seed(1337);
    kc_model *m = kc_sequential(kc_shape2(STEPS, DIM));
    kc_add(m, kc_conv1d(128, 5, KC_RELU));
    kc_add(m, kc_global_max_pooling1d(0));
    kc_add(m, kc_dense(1, KC_SIGMOID));
    if (kc_compile(m, KC_BINARY_CROSSENTROPY, kc_adam(NULL), 0)) {
        fprintf(stderr, "conv1d_steps: %s\n", kc_last_error());
        return 1;
    }
    float *x = malloc(sizeof(float) * BATCH * STEPS * DIM), y[BATCH];
    unsigned s = 1;
    for (int i = 0; i < BATCH * STEPS * DIM; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = (float)((s >> 8) & 65535) / 32768.0f - 1.0f;
    }
    for (int i = 0; i < BATCH; i++) y[i] = (float)(i % 2);
    for (int i = 0; i < WARMUP; i++) kc_train_on_batch(m, x, y, BATCH, NULL);
    double *ms = malloc(sizeof(double) * (size_t)blocks);
    for (int b = 0; b < blocks; b++) {
        double start = now();
        for (int i = 0; i < BLOCK; i++) kc_train_on_batch(m, x, y, BATCH, NULL);
        ms[b] = (now() - start) / BLOCK * 1e3;
    }
    qsort(ms, (size_t)blocks, sizeof *ms, cmp);
    /* FLOPs per step: forward, weight gradient and (none: the input is data) no input
     * gradient of the convolution: 2 products of 2 * 396 * 250 * 128 per sample */
    double flops = 2.0 * 2.0 * 396 * 250 * 128 * BATCH;
    printf("{\"case\": \"train_conv1d_text_classifier\", \"framework\": \"kerac\", \"threads\": "
           "%d, \"batch\": %d, \"ms_per_step\": %.3f, \"gflops\": %.1f}\n",
           threads, BATCH, ms[blocks / 2], flops / (ms[blocks / 2] * 1e-3) / 1e9);
    free(ms);
    free(x);
    kc_model_free(m);
    return 0;
}
