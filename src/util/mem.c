/* mem.c: aligned allocation (64 bytes, one cache line / one AVX-512 register) and a clock. */
#include "../internal.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *kc_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    bytes = (bytes + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes) != 0) {
        kc_err(KC_ENOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    return p;
}

void *kc_calloc(size_t bytes) {
    void *p = kc_alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void kc_free(void *p) { free(p); }

double kc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
