/* Shared by the libFuzzer harnesses of fuzz/ (and fuzz/make_seeds.c): inputs that kerac reads
 * from a path land in a per-process folder of /dev/shm (tmpfs: no disk I/O per execution);
 * structured inputs are split on a marker; archives (.keras, .npz) are rebuilt as valid
 * stored zips with correct CRCs, so that mutations reach the members instead of dying at the
 * zip's checksum. */
#ifndef KERAC_FUZZ_COMMON_H
#define KERAC_FUZZ_COMMON_H

#include <kerac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* the parts of a structured input are separated by this marker (seeds use it too) */
#define FZ_SEP "\n--KCFZ--\n"
#define FZ_SEP_LEN (sizeof FZ_SEP - 1)
#define FZ_MAX_PARTS 8

typedef struct {
    const uint8_t *data[FZ_MAX_PARTS];
    size_t size[FZ_MAX_PARTS];
    int n;
} fz_parts;

/* splits at most max parts (the last one keeps any further markers) */
static inline void fz_split(const uint8_t *d, size_t n, int max, fz_parts *p) {
    p->n = 0;
    while (p->n < max - 1) {
        const uint8_t *hit = n >= FZ_SEP_LEN ? memmem(d, n, FZ_SEP, FZ_SEP_LEN) : NULL;
        if (!hit) break;
        p->data[p->n] = d;
        p->size[p->n++] = (size_t)(hit - d);
        n -= (size_t)(hit - d) + FZ_SEP_LEN;
        d = hit + FZ_SEP_LEN;
    }
    p->data[p->n] = d;
    p->size[p->n++] = n;
}

/* ---- files on tmpfs ---- */

static char fz_dir[64];

static inline void fz_cleanup(void) {
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
    if (fz_dir[0]) (void)!system(cmd);
}

static inline const char *fz_tmpdir(void) {
    if (!fz_dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fz_dir, sizeof fz_dir, "%s/kerac-fuzz-%d", base, (int)getpid());
        mkdir(fz_dir, 0700);
        atexit(fz_cleanup);
    }
    return fz_dir;
}

/* writes data to <tmpdir>/name and returns the path (a static buffer per call site is not
 * needed: the harnesses use one path at a time, or copy it) */
static inline const char *fz_write(const char *name, const void *data, size_t size) {
    static char path[4][160];
    static int k;
    char *p = path[k++ & 3];
    snprintf(p, sizeof path[0], "%s/%s", fz_tmpdir(), name);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return p;
}

/* ---- a stored zip with correct CRCs ---- */

static inline void fz_put16(uint8_t *p, uint32_t v) { p[0] = v & 255; p[1] = (v >> 8) & 255; }
static inline void fz_put32(uint8_t *p, uint32_t v) {
    fz_put16(p, v & 0xffff);
    fz_put16(p + 2, v >> 16);
}

/* *out malloc'd; n members name[i] of data[i] (size[i] bytes), stored (no compression) */
static inline uint8_t *fz_zip(int n, const char *const *name, const uint8_t *const *data,
                              const size_t *size, size_t *out_size) {
    size_t total = 22;
    for (int i = 0; i < n; i++) total += 30 + 46 + 2 * strlen(name[i]) + size[i];
    uint8_t *z = malloc(total), *p = z;
    uint32_t offs[FZ_MAX_PARTS], crcs[FZ_MAX_PARTS];
    if (!z || n > FZ_MAX_PARTS) abort();
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(name[i]);
        offs[i] = (uint32_t)(p - z);
        crcs[i] = (uint32_t)crc32(crc32(0, NULL, 0), size[i] ? data[i] : (const uint8_t *)"",
                                  (uInt)size[i]);
        memset(p, 0, 30);
        fz_put32(p, 0x04034b50);
        fz_put16(p + 4, 20);
        fz_put32(p + 14, crcs[i]);
        fz_put32(p + 18, (uint32_t)size[i]);
        fz_put32(p + 22, (uint32_t)size[i]);
        fz_put16(p + 26, (uint32_t)nl);
        memcpy(p + 30, name[i], nl);
        p += 30 + nl;
        if (size[i]) memcpy(p, data[i], size[i]);
        p += size[i];
    }
    uint8_t *cd = p;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(name[i]);
        memset(p, 0, 46);
        fz_put32(p, 0x02014b50);
        fz_put16(p + 4, 20);
        fz_put16(p + 6, 20);
        fz_put32(p + 16, crcs[i]);
        fz_put32(p + 20, (uint32_t)size[i]);
        fz_put32(p + 24, (uint32_t)size[i]);
        fz_put16(p + 28, (uint32_t)nl);
        fz_put32(p + 42, offs[i]);
        memcpy(p + 46, name[i], nl);
        p += 46 + nl;
    }
    memset(p, 0, 22);
    fz_put32(p, 0x06054b50);
    fz_put16(p + 8, (uint32_t)n);
    fz_put16(p + 10, (uint32_t)n);
    fz_put32(p + 12, (uint32_t)(p - cd));
    fz_put32(p + 16, (uint32_t)(cd - z));
    p += 22;
    *out_size = (size_t)(p - z);
    return z;
}

/* ---- the model that weights files are loaded into (fuzz_h5; make_seeds saves its weights) --- */

static inline kc_model *fz_weights_model(void) {
    kc_model *m = kc_sequential(kc_shape1(4));
    if (!m) abort();
    kc_add(m, kc_dense(3, KC_RELU));
    kc_add(m, kc_dense(2, KC_SOFTMAX));
    if (kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY)) abort();
    return m;
}

static inline void fz_quiet(void) { kc_set_warning_handler(NULL, NULL); }

#endif
