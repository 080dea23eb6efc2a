/* rnn.c (build/bench_rnn): training step time of a recurrent classifier on MNIST-shaped rows,
 * 28 steps of 28 values, batch 128, <cell>(units) then Dense(10, softmax), categorical
 * crossentropy, Adam. Prints one JSON line per cell: the median step (ms) over --steps steps
 * after 3 warm-up steps, and the process's peak resident memory. bench/compare_pytorch_rnn.py
 * runs it alternately with PyTorch's nn.LSTM / nn.GRU / nn.RNN.
 *     build/bench_rnn [--cell lstm|gru|simple_rnn|all] [--units 128] [--steps 30] [--threads 2]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kerac.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run(const char *cell, int units, int steps, int batch) {
    const int T = 28, F = 28;
    kc_model *m = kc_sequential(kc_shape2(T, F));
    kc_layer *l = !strcmp(cell, "lstm")  ? kc_lstm(units, NULL)
                  : !strcmp(cell, "gru") ? kc_gru(units, NULL)
                                         : kc_simple_rnn(units, NULL);
    if (kc_add(m, l) || kc_add(m, kc_dense(10, KC_SOFTMAX)) ||
        kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), 0)) {
        fprintf(stderr, "bench_rnn: %s\n", kc_last_error());
        return 1;
    }
    float *x = malloc(sizeof(float) * (size_t)batch * T * F), *y = calloc((size_t)batch * 10, 4);
    uint32_t s = 1;
    for (long i = 0; i < (long)batch * T * F; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f;
    }
    for (int i = 0; i < batch; i++) y[i * 10 + i % 10] = 1.0f;
    double *t = malloc(sizeof(double) * (size_t)steps);
    for (int i = 0; i < steps + 3; i++) {
        double t0 = now();
        if (kc_train_on_batch(m, x, y, batch, NULL)) {
            fprintf(stderr, "bench_rnn: %s\n", kc_last_error());
            return 1;
        }
        if (i >= 3) t[i - 3] = now() - t0;
    }
    qsort(t, (size_t)steps, sizeof *t, cmp);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"impl\": \"kerac\", \"cell\": \"%s\", \"units\": %d, \"batch\": %d, \"steps\": %d, "
           "\"median_step_ms\": %.3f, \"peak_rss_mb\": %.1f}\n",
           cell, units, batch, steps, 1e3 * t[steps / 2], ru.ru_maxrss / 1024.0);
    fflush(stdout);
    free(x), free(y), free(t);
    kc_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    const char *cell = "all";
    int units = 128, steps = 30, threads = 2, batch = 128;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--cell")) cell = argv[i + 1];
        else if (!strcmp(argv[i], "--units")) units = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_rnn: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (units <= 0 || steps <= 0 || threads <= 0 || batch <= 0) return 2;
    kc_set_random_seed(1);
    kc_set_num_threads(threads);
    const char *cells[] = {"lstm", "gru", "simple_rnn"};
    for (int c = 0; c < 3; c++)
        if ((!strcmp(cell, "all") || !strcmp(cell, cells[c])) && run(cells[c], units, steps, batch))
            return 1;
    return 0;
}
