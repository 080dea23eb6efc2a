/* threads.c: one thread count for the whole library: OpenBLAS's pool does the matrix products,
 * so kerac never runs a second pool against it on the same cores. */
#include "../internal.h"
#include <cblas.h>
#include <stdlib.h>
#include <unistd.h>

static int num_threads = 0;

static int default_threads(void) {
    const char *env = getenv("KERAC_NUM_THREADS");
    if (env && atoi(env) > 0) return atoi(env);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (int)cores : 1;
}

void kc_set_num_threads(int threads) {
    num_threads = threads > 0 ? threads : default_threads();
    openblas_set_num_threads(num_threads);
}

int kc_get_num_threads(void) {
    if (num_threads == 0) kc_set_num_threads(0);
    return num_threads;
}
