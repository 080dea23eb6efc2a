/* rnn.c (build/bench_rnn): training step time of a recurrent classifier on MNIST-shaped rows,
 * 28 steps of 28 values, batch 128, <cell>(units) then Dense(10, softmax), categorical
 * crossentropy, Adam. Prints one JSON line per cell: the median step (ms) over --steps steps
 * after 3 warm-up steps, and the process's peak resident memory. bench/compare_pytorch_rnn.py
 * runs it alternately with PyTorch's nn.LSTM / nn.GRU / nn.RNN.
 *     build/bench_rnn [--cell lstm|gru|simple_rnn|all] [--units 128] [--steps 30] [--threads 2]
 *                     [--peak]
 * Each cell's line gives the step's arithmetic (step_gflop); --peak first times 2048^3 products
 * on the same threads (gemm_peak_gflops; --cell none: that alone). step_gflop / peak is the
 * step's floor: no float32 implementation of the same arithmetic goes below it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kerac.h"
#include "ops/ops.h" /* kc_gemm: the product peak */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The arithmetic of one training step (multiply-adds x 2) of the classifier: the input
 * projection (B T x F by F x G u), per step h @ U forward and dz @ U^T backward, dW and dU over
 * all B T rows (the first layer's dx is not computed) and the Dense; elementwise work aside. */
static double step_flops(const char *cell, int units, int batch) {
    const double T = 28, F = 28, B = batch, u = units;
    const double G = !strcmp(cell, "lstm") ? 4 : !strcmp(cell, "gru") ? 3 : 1;
    double proj = 2 * B * T * F * G * u;          /* forward input projection */
    double rec = 2 * T * 2 * B * u * G * u;       /* h @ U, forward and backward */
    double wgrad = 2 * B * T * (F + u) * G * u;   /* dW and dU */
    double dense = 3 * 2 * B * u * 10;
    return proj + rec + wgrad + dense;
}

/* The machine's float32 matrix-product peak on these threads: the best of 5 products of
 * 2048 x 2048 by 2048 x 2048 through kerac's own kernels (GFLOP/s) */
static double gemm_peak_gflops(void) {
    const int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    for (long i = 0; i < (long)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.25f + 0.5f;
    double best = 1e30;
    for (int r = 0; r < 6; r++) {
        double t0 = now();
        kc_gemm(0, 0, n, n, n, a, b, c);
        if (r) best = fmin(best, now() - t0);
    }
    free(a), free(b), free(c);
    return 2.0 * n * n * n / best / 1e9;
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
           "\"median_step_ms\": %.3f, \"peak_rss_mb\": %.1f, \"step_gflop\": %.4f",
           cell, units, batch, steps, 1e3 * t[steps / 2], ru.ru_maxrss / 1024.0,
           step_flops(cell, units, batch) / 1e9);
    printf("}\n");
    fflush(stdout);
    free(x), free(y), free(t);
    kc_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    const char *cell = "all";
    int units = 128, steps = 30, threads = 2, batch = 128, peak = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(argv[i], "--peak")) peak = 1; /* also the product peak: the step's floor */
        else if (!strcmp(argv[i], "--cell")) cell = v, i++;
        else if (!strcmp(argv[i], "--units")) units = atoi(v), i++;
        else if (!strcmp(argv[i], "--steps")) steps = atoi(v), i++;
        else if (!strcmp(argv[i], "--threads")) threads = atoi(v), i++;
        else if (!strcmp(argv[i], "--batch")) batch = atoi(v), i++;
        else {
            fprintf(stderr, "bench_rnn: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (units <= 0 || steps <= 0 || threads <= 0 || batch <= 0) return 2;
    kc_set_random_seed(1);
    kc_set_num_threads(threads);
    if (peak) {
        printf("{\"impl\": \"kerac\", \"gemm_peak_gflops\": %.1f, \"threads\": %d}\n",
               gemm_peak_gflops(), threads);
        fflush(stdout);
    }
    const char *cells[] = {"lstm", "gru", "simple_rnn"};
    for (int c = 0; c < 3; c++)
        if ((!strcmp(cell, "all") || !strcmp(cell, cells[c])) && run(cells[c], units, steps, batch))
            return 1;
    return 0;
}
