/* testutil.h: small helpers shared by the Criterion tests. */
#ifndef KERAC_TESTUTIL_H
#define KERAC_TESTUTIL_H
#ifdef KERAC_TSAN_SHIM /* the ThreadSanitizer build: Criterion cannot run there (tsan_shim.h) */
#include "tsan_shim.h"
#else
#include <criterion/criterion.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kerac.h"

/* Asserts a kerac call succeeded, printing kc_last_error() otherwise. */
#define KC_CHECK(call)                                                                     \
    do {                                                                                   \
        kc_status st_ = (call);                                                            \
        cr_assert_eq(st_, KC_OK, "%s -> %s: %s", #call, kc_status_name(st_), kc_last_error()); \
    } while (0)

/* Asserts status and that the error message contains needle. */
#define KC_EXPECT_ERR(call, status, needle)                                                \
    do {                                                                                   \
        kc_status st_ = (call);                                                            \
        cr_assert_eq(st_, (status), "%s -> %s (want %s): %s", #call, kc_status_name(st_),  \
                     kc_status_name(status), kc_last_error());                             \
        cr_assert(strstr(kc_last_error(), (needle)) != NULL,                               \
                  "%s: message \"%s\" lacks \"%s\"", #call, kc_last_error(), (needle));    \
    } while (0)

/* A fresh temporary directory under /tmp; its path stays valid for the next 63 calls (static
 * buffers: nothing for LeakSanitizer to report) */
static inline char *tu_tmpdir(void) {
    static char paths[64][32];
    static int next;
    char *d = paths[next++ % 64];
    strcpy(d, "/tmp/kerac-test-XXXXXX");
    cr_assert_not_null(mkdtemp(d), "mkdtemp failed");
    return d;
}

static inline void tu_write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(data, 1, size, f), size);
    fclose(f);
}

/* |a - b| <= tol * max(1, |b|) */
static inline int tu_close(double a, double b, double tol) {
    return fabs(a - b) <= tol * fmax(1.0, fabs(b));
}
#endif
