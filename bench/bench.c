/* bench.c: kerac's benchmark: trains the seed's two-hidden MNIST network (784-512-512-10,
 * batch 128, RMSprop) and prints one JSON line per case (threads, idle or with the cores loaded
 * by a second process): seconds per epoch, samples/s, GFLOP/s and its share of the fp32 GEMM
 * peak measured here, inference samples/s, single-sample predict latency, peak memory.
 * With --model convnet: keras.io's simple MNIST convnet (Adam, batch 128, trained on the first
 * 54,000 images as validation_split 0.1 leaves them). */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kerac.h"
#include "ops/ops.h" /* kc_gemm and the name of the active backend */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ", key: value" with null for a value that was not measured (JSON has no NaN) */
static void json_number(const char *key, double value, int decimals) {
    if (isfinite(value)) printf(", \"%s\": %.*f", key, decimals, value);
    else printf(", \"%s\": null", key);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The fp32 GEMM peak on this machine and thread count: the best GFLOP/s of the library's
 * matrix product (kerac's kernel or OpenBLAS, whichever is active) over the network's own
 * shapes (forward, weight gradient, input gradient) and a large square product. */
static double gemm_peak(void) {
    const int shapes[][5] = {{0, 0, 128, 512, 784}, {1, 0, 784, 512, 128}, {0, 0, 128, 512, 512},
                             {1, 0, 512, 512, 128}, {0, 1, 128, 512, 512}, {0, 0, 1024, 1024, 1024}};
    const int cap = 1024 * 1024;
    float *a = malloc(sizeof(float) * cap), *b = malloc(sizeof(float) * cap),
          *c = malloc(sizeof(float) * cap);
    for (int i = 0; i < cap; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = 0.0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][2], n = shapes[s][3], k = shapes[s][4];
        int reps = (int)(2e9 / (2.0 * m * n * k)) + 1;
        for (int trial = 0; trial < 3; trial++) {
            double t = now();
            for (int r = 0; r < reps; r++) kc_gemm(shapes[s][0], shapes[s][1], m, n, k, a, b, c);
            double gflops = 2.0 * m * n * k * reps / (now() - t) / 1e9;
            best = gflops > best ? gflops : best;
        }
    }
    free(a);
    free(b);
    free(c);
    return best;
}

/* The arithmetic limit: independent FMAs in registers, on every thread of the case: AVX-512,
 * or AVX2 where the library's tier is avx2 (KERAC_ISA=avx2, or a CPU without AVX-512). */
#include "util/isa.h"
#ifdef KC_X86
#include <immintrin.h>
KC_TARGET_BEGIN("avx512f,fma")
static void *fma_loop(void *out) {
    __m512 a0 = _mm512_set1_ps(0.1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m512 m = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-6f);
    const long iterations = 50000000;
    double t = now();
    for (long i = 0; i < iterations; i++) {
#define FMA12(x) x = _mm512_fmadd_ps(x, m, c)
        FMA12(a0); FMA12(a1); FMA12(a2); FMA12(a3); FMA12(a4); FMA12(a5);
        FMA12(a6); FMA12(a7); FMA12(a8); FMA12(a9); FMA12(a10); FMA12(a11);
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
        __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
    }
    t = now() - t;
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    *(double *)out = iterations * 12.0 * 32.0 / t / 1e9 + 0.0 * _mm512_reduce_add_ps(s);
    return NULL;
}
KC_TARGET_END

KC_TARGET_BEGIN("avx2,fma")
static void *fma_loop_avx2(void *out) {
    __m256 a0 = _mm256_set1_ps(0.1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m256 m = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-6f);
    const long iterations = 50000000;
    double t = now();
    for (long i = 0; i < iterations; i++) {
#define FMA12Y(x) x = _mm256_fmadd_ps(x, m, c)
        FMA12Y(a0); FMA12Y(a1); FMA12Y(a2); FMA12Y(a3); FMA12Y(a4); FMA12Y(a5);
        FMA12Y(a6); FMA12Y(a7); FMA12Y(a8); FMA12Y(a9); FMA12Y(a10); FMA12Y(a11);
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
        __asm__ volatile("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
    }
    t = now() - t;
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    *(double *)out = iterations * 12.0 * 16.0 / t / 1e9 + 0.0 * lanes[0];
    return NULL;
}
KC_TARGET_END

static double fma_peak(int threads) {
    pthread_t ids[64];
    double rates[64], total = 0.0;
    void *(*loop)(void *) = kc_isa() == KC_ISA_AVX512 ? fma_loop : fma_loop_avx2;
    for (int t = 0; t < threads && t < 64; t++) pthread_create(&ids[t], NULL, loop, &rates[t]);
    for (int t = 0; t < threads && t < 64; t++) {
        pthread_join(ids[t], NULL);
        total += rates[t];
    }
    return total;
}
#else /* not x86: no peak measured (the tier is generic, so main never asks) */
static double fma_peak(int threads) { return NAN; }
#endif

static int convnet; /* --model convnet */
static int functional; /* --model mlp_functional: the same network through kc_functional */
static int bf16;    /* --bf16: kc_set_mixed_bfloat16 */

/* Forward, weight-gradient and input-gradient (all but the first layer) products per sample. */
static double train_flops_per_sample(void) {
    if (convnet) { /* conv 26x26x32 (k 9), conv 11x11x64 (k 288), dense 1600 -> 10 */
        double conv1 = 2.0 * 26 * 26 * 32 * 9, conv2 = 2.0 * 11 * 11 * 64 * 288,
               dense = 2.0 * 1600 * 10;
        return 2 * conv1 + 3 * conv2 + 3 * dense;
    }
    const double in[] = {784, 512, 512}, out[] = {512, 512, 10};
    double f = 0.0;
    for (int l = 0; l < 3; l++) f += 2.0 * in[l] * out[l] * (l ? 3 : 2);
    return f;
}

/* which matrix product ran: kerac's kernel, or OpenBLAS and its threading */
static const char *gemm_name(void) {
    if (strcmp(kc_gemm_backend(), "openblas")) return kc_gemm_backend();
    switch (kc_blas_parallel()) {
    case 1: return "openblas-pthread";
    case 2: return "openblas-openmp";
    default: return "openblas-serial";
    }
}

static kc_model *build_model(void) {
    kc_model *m;
    kc_optimizer *opt;
    if (convnet) {
        m = kc_sequential(kc_shape3(28, 28, 1));
        kc_add(m, kc_conv2d(32, 3, KC_RELU));
        kc_add(m, kc_max_pooling2d(2));
        kc_add(m, kc_conv2d(64, 3, KC_RELU));
        kc_add(m, kc_max_pooling2d(2));
        kc_add(m, kc_flatten());
        kc_add(m, kc_dropout(0.5f));
        kc_add(m, kc_dense(10, KC_SOFTMAX));
        opt = kc_adam(NULL);
    } else if (functional) {
        kc_tensor *in = kc_input(kc_shape1(784));
        kc_tensor *x = kc_call(kc_dense(512, KC_RELU), in);
        x = kc_call(kc_dropout(0.2f), x);
        x = kc_call(kc_dense(512, KC_RELU), x);
        x = kc_call(kc_dropout(0.2f), x);
        kc_tensor *out = kc_call(kc_dense(10, KC_SOFTMAX), x);
        m = kc_functional(&in, 1, &out, 1);
        if (!m) {
            fprintf(stderr, "bench: %s\n", kc_last_error());
            exit(1);
        }
        opt = kc_rmsprop(NULL);
    } else {
        m = kc_sequential(kc_shape1(784));
        kc_add(m, kc_dense(512, KC_RELU));
        kc_add(m, kc_dropout(0.2f));
        kc_add(m, kc_dense(512, KC_RELU));
        kc_add(m, kc_dropout(0.2f));
        kc_add(m, kc_dense(10, KC_SOFTMAX));
        opt = kc_rmsprop(NULL);
    }
    if (kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, opt, KC_METRIC_ACCURACY) ||
        (bf16 && kc_set_mixed_bfloat16(m, 1))) {
        fprintf(stderr, "bench: %s\n", kc_last_error());
        exit(1);
    }
    return m;
}

/* A second process keeping every core busy, as another user's job would: a process group of
 * one spinner per core, which dies with the benchmark. */
static pid_t start_load(void) {
    pid_t pid = fork();
    if (pid) {
        setpgid(pid, pid);
        return pid;
    }
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 1; i < cores; i++)
        if (fork() == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            break;
        }
    volatile double x = 1.0;
    for (;;) x = x * 1.0000001 + 1e-9;
}

static void stop_load(pid_t pid) {
    if (pid <= 0) return;
    kill(-pid, SIGKILL); /* the whole group: the spinner and the ones it forked */
    waitpid(pid, NULL, 0);
}

static void run_case(int threads, int epochs, int loaded, const char *data_dir, int json_only) {
    kc_set_num_threads(threads);
    kc_set_random_seed(1337);
    kc_dataset train, test;
    kc_shape shape = convnet ? kc_shape3(28, 28, 1) : kc_shape1(784);
    if (kc_mnist_load(data_dir, &train, &test) || kc_dataset_reshape(&train, shape) ||
        kc_dataset_reshape(&test, shape) || kc_dataset_scale(&train, 1.0f / 255) ||
        kc_dataset_scale(&test, 1.0f / 255) || kc_to_categorical(&train, 10) ||
        kc_to_categorical(&test, 10)) {
        fprintf(stderr, "bench: %s\n", kc_last_error());
        exit(1);
    }
    double peak = json_only ? NAN : gemm_peak();
    double fma = json_only || kc_isa() < KC_ISA_AVX2 ? NAN : fma_peak(threads);
    kc_model *m = build_model();
    if (convnet) train.count = 54000; /* the part validation_split 0.1 trains on */
    pid_t load = loaded ? start_load() : 0;
    kc_history *h = NULL;
    kc_status st = kc_fit(m, &train, &(kc_fit_opts){.batch_size = 128, .epochs = epochs, .verbose = -1}, &h);
    stop_load(load);
    if (st) {
        fprintf(stderr, "bench: %s\n", kc_last_error());
        exit(1);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru); /* the high-water mark of training, before the bench's own
                                    float copy of the test images below */
    double sec = median(h->seconds, h->epochs);
    double final_loss = h->loss[h->epochs - 1], final_acc = h->accuracy[h->epochs - 1];
    kc_history_free(h);

    /* inference: the test set in batches of 1,000 */
    const int64_t n_test = test.count;
    float *x = malloc(sizeof(float) * (size_t)n_test * 784), *out = malloc(sizeof(float) * 1000 * 10);
    for (int64_t i = 0; i < n_test * 784; i++) x[i] = ((uint8_t *)test.x)[i] / 255.0f;
    double inf[5];
    for (int r = 0; r < 5; r++) {
        double t = now();
        for (int64_t s = 0; s + 1000 <= n_test; s += 1000) kc_predict(m, x + s * 784, 1000, out);
        inf[r] = (double)(n_test / 1000 * 1000) / (now() - t);
    }
    /* one sample at a time, as an embedded caller would */
    enum { CALLS = 2000 };
    double *lat = malloc(sizeof(double) * CALLS);
    for (int r = 0; r < CALLS; r++) {
        double t = now();
        kc_predict(m, x + (r % n_test) * 784, 1, out);
        lat[r] = (now() - t) * 1e6;
    }
    double gflops = train_flops_per_sample() * (double)train.count / sec / 1e9;
    printf("{\"case\": \"%s\", \"gemm\": \"%s\", \"precision\": \"%s\", \"threads\": %d, "
           "\"load\": \"%s\", \"epochs\": %d",
           convnet      ? "train_convnet_keras_io"
           : functional ? "train_mlp_784_512_512_10_functional"
                        : "train_mlp_784_512_512_10",
           gemm_name(),
           bf16 ? "mixed_bfloat16" : "float32", threads, loaded ? "busy_second_process" : "idle",
           epochs);
    json_number("sec_per_epoch", sec, 4);
    json_number("samples_per_sec", (double)train.count / sec, 0);
    json_number("gflops", gflops, 1);
    json_number("gemm_peak_gflops", peak, 1);
    json_number("share_of_gemm_peak", gflops / peak, 3);
    json_number("fma_peak_gflops", fma, 1);
    json_number("share_of_fma_peak", gflops / fma, 3);
    json_number("inference_samples_per_sec", median(inf, 5), 0);
    json_number("predict_1_latency_us", median(lat, CALLS), 2);
    json_number("train_peak_rss_mb", ru.ru_maxrss / 1024.0, 1);
    json_number("final_loss", final_loss, 4);
    json_number("final_accuracy", final_acc, 4);
    printf("}\n");
    fflush(stdout);
    free(lat);
    free(x);
    free(out);
    kc_model_free(m);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
}

/* --compare-functional: the tutorial's network built both ways (kc_sequential + kc_add, and
 * kc_input + kc_call + kc_functional) with the same seed, trained in the same process on the
 * same MNIST batches, alternating blocks of steps so that both see the same machine; the
 * median time per step of each, their ratio, and whether the weights stay bit for bit equal */
static void compare_functional(int threads, int rounds, const char *data_dir) {
    kc_set_num_threads(threads);
    kc_dataset train, test;
    if (kc_mnist_load(data_dir, &train, &test) || kc_dataset_reshape(&train, kc_shape1(784)) ||
        kc_dataset_scale(&train, 1.0f / 255) || kc_to_categorical(&train, 10)) {
        fprintf(stderr, "bench: %s\n", kc_last_error());
        exit(1);
    }
    kc_model *m[2];
    for (int v = 0; v < 2; v++) {
        kc_set_random_seed(1337);
        functional = v;
        m[v] = build_model();
    }
    functional = 0;
    enum { BATCH = 128, STEPS = 47 }; /* a tenth of an epoch per block */
    float *x = malloc(sizeof(float) * BATCH * 784), *y = malloc(sizeof(float) * BATCH * 10);
    double *t[2] = {malloc(sizeof(double) * (size_t)rounds), malloc(sizeof(double) * (size_t)rounds)};
    int64_t at = 0;
    for (int r = 0; r < rounds; r++)
        for (int v = 0; v < 2; v++) {
            int64_t from = at;
            double start = now();
            for (int s = 0; s < STEPS; s++) {
                int64_t i0 = (from + (int64_t)s * BATCH) % (train.count - BATCH);
                for (int i = 0; i < BATCH * 784; i++)
                    x[i] = ((const uint8_t *)train.x)[i0 * 784 + i] / 255.0f;
                memcpy(y, (const float *)train.y + i0 * 10, sizeof(float) * BATCH * 10);
                if (kc_train_on_batch(m[v], x, y, BATCH, NULL)) {
                    fprintf(stderr, "bench: %s\n", kc_last_error());
                    exit(1);
                }
            }
            t[v][r] = (now() - start) / STEPS;
            if (v == 1) at += (int64_t)STEPS * BATCH;
        }
    int64_t n = kc_count_params(m[0]);
    float *w0 = malloc(sizeof(float) * (size_t)n), *w1 = malloc(sizeof(float) * (size_t)n);
    kc_get_weights(m[0], w0, n);
    kc_get_weights(m[1], w1, n);
    double seq = median(t[0], rounds), fun = median(t[1], rounds);
    printf("{\"case\": \"sequential_vs_functional_mlp_784_512_512_10\", \"gemm\": \"%s\", "
           "\"threads\": %d, \"rounds\": %d, \"steps_per_round\": %d",
           gemm_name(), threads, rounds, STEPS);
    json_number("sequential_ms_per_step", seq * 1e3, 4);
    json_number("functional_ms_per_step", fun * 1e3, 4);
    json_number("functional_over_sequential", fun / seq, 4);
    printf(", \"same_weights\": %s}\n", memcmp(w0, w1, sizeof(float) * (size_t)n) ? "false" : "true");
    free(w0);
    free(w1);
    free(x);
    free(y);
    free(t[0]);
    free(t[1]);
    kc_model_free(m[0]);
    kc_model_free(m[1]);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
}

static void print_warning(const char *message, void *user) {
    (void)user;
    fprintf(stderr, "bench: %s\n", message);
}

int main(int argc, char **argv) {
    kc_set_warning_handler(print_warning, NULL);
    int epochs = 3, only_threads = 0, loaded_only = 0, json_only = 0, compare_rounds = 0;
    const char *data_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) only_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--loaded")) loaded_only = 1;
        else if (!strcmp(argv[i], "--no-peak")) json_only = 1;
        else if (!strcmp(argv[i], "--bf16")) bf16 = 1;
        else if (!strcmp(argv[i], "--compare-functional") && i + 1 < argc) compare_rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data_dir = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "mlp") || !strcmp(argv[i + 1], "convnet") ||
                  !strcmp(argv[i + 1], "mlp_functional"))) {
            convnet = !strcmp(argv[++i], "convnet");
            functional = !strcmp(argv[i], "mlp_functional");
        }
        else {
            fprintf(stderr, "usage: bench [--model mlp|mlp_functional|convnet] [--compare-functional ROUNDS] [--epochs N] [--threads N] "
                            "[--loaded] [--no-peak] [--bf16] [--data DIR]\n");
            return 2;
        }
    }
    if (compare_rounds > 0) {
        compare_functional(only_threads ? only_threads : 2, compare_rounds, data_dir);
        return 0;
    }
    /* each case in its own process, so that peak memory is that case's alone */
    struct { int threads, loaded; } cases[] = {{1, 0}, {2, 0}, {2, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (only_threads && cases[c].threads != only_threads) continue;
        if (loaded_only != cases[c].loaded && (only_threads || loaded_only)) continue;
        pid_t pid = fork();
        if (pid == 0) {
            run_case(cases[c].threads, epochs, cases[c].loaded, data_dir, json_only);
            _exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status)) return 1;
    }
    return 0;
}
