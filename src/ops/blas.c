/* blas.c: OpenBLAS, loaded only when a product needs it (the generic tier, KERAC_GEMM_BLAS=1).
 *
 * kerac does its products with its own kernels wherever the CPU has AVX2 or AVX-512, so most
 * processes never need OpenBLAS. Linked in, its pthread build starts a server thread per core
 * when the library loads, and each thread maps a 128 MB buffer, retrying a failed mmap forever:
 * under an address-space limit (RLIMIT_AS, ulimit -v) such a process hung at exit or in its
 * first product, whatever kerac did. Loaded here with dlopen on first use, after checking that
 * the address space left holds those buffers, a limit gives an error instead (kc_blas_load's
 * message), and a process that never needs OpenBLAS never maps it.
 *
 * If OpenBLAS cannot be loaded at all (not installed), the products fall back to a plain C loop
 * with a one-time warning: slow, never wrong. */
#include "ops.h"
#include "../internal.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* CBLAS's enum values (the same in every CBLAS) */
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc);
typedef void (*set_threads_fn)(int);
typedef int (*get_parallel_fn)(void);

static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(sgemm_fn) sgemm_ptr;
static set_threads_fn set_threads_ptr;
static get_parallel_fn get_parallel_ptr;
static int load_state; /* 0 not tried, 1 loaded, -1 no room, -2 not installed (load_error) */
static char load_error[320];
static int wanted_threads; /* kc_set_num_threads' count, applied when OpenBLAS loads */

/* Each OpenBLAS thread (its server threads and the caller) maps a buffer of this size. */
#define BUFFER_MB 128
/* room for the library itself and what the program maps meanwhile */
#define SLACK_MB 64

/* address space mapped now, in bytes (0 when unknown) */
static unsigned long long mapped_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0;
    if (!f) return 0;
    if (fscanf(f, "%llu", &pages) != 1) pages = 0;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return pages * (unsigned long long)(page > 0 ? page : 4096);
}

/* 0 when the address space left under RLIMIT_AS holds OpenBLAS's buffers for threads threads;
 * else -1 and why */
static int check_room(int threads, char *why, size_t size) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0;
    unsigned long long limit = rl.rlim_cur, used = mapped_now(),
                       need = ((unsigned long long)threads * BUFFER_MB + SLACK_MB) << 20;
    unsigned long long left = limit > used ? limit - used : 0;
    if (left >= need) return 0;
    snprintf(why, size,
             "OpenBLAS needs about %llu MB of address space (a %d MB buffer for each of its %d "
             "threads), and the address-space limit (RLIMIT_AS %llu MB) leaves %llu MB: raise "
             "the limit (ulimit -v) or use fewer threads (KERAC_NUM_THREADS)",
             need >> 20, BUFFER_MB, threads, limit >> 20, left >> 20);
    return -1;
}

int kc_blas_load(char *why, size_t size) {
    /* first, so that the pool's count is set (kc_set_num_threads calls kc_blas_set_threads,
     * which takes the lock) */
    int pool_threads = kc_get_num_threads();
    pthread_mutex_lock(&blas_lock);
    if (load_state == 0) {
        int threads = wanted_threads > 0 ? wanted_threads : pool_threads;
        if (check_room(threads, load_error, sizeof load_error) != 0) {
            load_state = -1;
        } else {
            static const char *const names[] = {"libopenblas.so.0", "libopenblas.so"};
            void *h = NULL;
            for (size_t i = 0; i < sizeof names / sizeof *names && !h; i++)
                h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
            sgemm_fn f = h ? (sgemm_fn)dlsym(h, "cblas_sgemm") : NULL;
            if (!f) {
                snprintf(load_error, sizeof load_error,
                         "OpenBLAS (libopenblas.so.0) could not be loaded: %s",
                         h ? "it has no cblas_sgemm" : dlerror());
                load_state = -2;
            } else {
                set_threads_ptr = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
                get_parallel_ptr = (get_parallel_fn)dlsym(h, "openblas_get_parallel");
                if (set_threads_ptr && wanted_threads > 0) set_threads_ptr(wanted_threads);
                /* the caller's buffer is mapped by its first product: map it now, while the
                 * room checked above is still there */
                float one = 1.0f, out = 0.0f;
                f(ROW_MAJOR, NO_TRANS, NO_TRANS, 1, 1, 1, 1.0f, &one, 1, &one, 1, 0.0f, &out, 1);
                atomic_store(&sgemm_ptr, f);
                load_state = 1;
            }
        }
    }
    int st = load_state == 1 ? 0 : load_state;
    if (st && why) snprintf(why, size, "%s", load_error);
    pthread_mutex_unlock(&blas_lock);
    return st;
}

void kc_blas_set_threads(int threads) {
    pthread_mutex_lock(&blas_lock);
    wanted_threads = threads;
    if (load_state == 1 && set_threads_ptr) set_threads_ptr(threads);
    pthread_mutex_unlock(&blas_lock);
}

int kc_blas_parallel(void) {
    pthread_mutex_lock(&blas_lock);
    int p = load_state == 1 && get_parallel_ptr ? get_parallel_ptr() : -1;
    pthread_mutex_unlock(&blas_lock);
    return p;
}

/* C (m x n, row stride ldc) = A B (+ C when accumulate), A and B row-major, transposed as told:
 * the last resort when OpenBLAS is missing */
static void plain_sgemm(int ta, int tb, int m, int n, int k, const float *a, int lda,
                        const float *b, int ldb, int accumulate, float *c, int ldc) {
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        if (!accumulate)
            for (int j = 0; j < n; j++) ci[j] = 0.0f;
        for (int p = 0; p < k; p++) {
            float av = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
            if (av == 0.0f) continue;
            if (tb)
                for (int j = 0; j < n; j++) ci[j] += av * b[(size_t)j * ldb + p];
            else
                for (int j = 0; j < n; j++) ci[j] += av * b[(size_t)p * ldb + j];
        }
    }
}

void kc_blas_sgemm(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda,
                   const float *b, int ldb, int accumulate, float *c, int ldc) {
    sgemm_fn f = atomic_load(&sgemm_ptr);
    if (!f && kc_blas_load(NULL, 0) == 0) f = atomic_load(&sgemm_ptr);
    /* not loaded (no room, or not installed): the plain loop, which maps nothing */
    if (f) {
        f(ROW_MAJOR, trans_a ? TRANS : NO_TRANS, trans_b ? TRANS : NO_TRANS, m, n, k, 1.0f, a,
          lda, b, ldb, accumulate ? 1.0f : 0.0f, c, ldc);
        return;
    }
    static atomic_int warned;
    if (!atomic_exchange(&warned, 1))
        kc_warn("matrix products run on a plain C loop (slow): %s", load_error);
    plain_sgemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, accumulate, c, ldc);
}
