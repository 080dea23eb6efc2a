/* internal.h: what the library's own files share and users never see: errors, rng, threads,
 * the layer table and the model struct. */
#ifndef KERAC_INTERNAL_H
#define KERAC_INTERNAL_H

#include "kerac.h"
#include <stdarg.h>
#include <stdbool.h>

/* ---- errors (util/error.c) ---- */
/* Sets the thread's message (printf-style) and returns status, so: return kc_err(KC_EINVAL, ...) */
kc_status kc_err(kc_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A warning: kept for kc_last_warning and passed to the handler the program set, if any (the
 * library never prints). */
void kc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The status of the last kc_err / kc_err_prefix on this thread (a NULL-returning constructor
 * failed for want of memory: KC_ENOMEM). */
kc_status kc_last_status(void);
/* Prefixes the current message with "what: " (keeps the status). */
kc_status kc_err_prefix(kc_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- memory ---- */
void *kc_alloc(size_t bytes);        /* 64-byte aligned, NULL on failure (message set) */
void *kc_calloc(size_t bytes);       /* same, zeroed */
void kc_free(void *p);

/* ---- rng (util/rng.c): xoshiro256**, seeded by splitmix64 ---- */
typedef struct { uint64_t s[4]; } kc_rng;
void kc_rng_seed(kc_rng *r, uint64_t seed);
uint64_t kc_rng_next(kc_rng *r);
float kc_rng_uniform(kc_rng *r);               /* [0, 1) with 24 bits */
uint64_t kc_rng_below(kc_rng *r, uint64_t n);  /* unbiased in [0, n) */
/* a stateless hash for counter-based streams (dropout masks): same inputs, same bits */
static inline uint64_t kc_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
uint64_t kc_default_seed(void);

/* ---- time ---- */
double kc_now(void); /* seconds, monotonic */

/* ---- data (data/idx.c, data/datasets.c) ---- */
/* Downloads url to dest_path only if the body's SHA-256 equals sha256_hex: writes to a
 * temporary file beside dest, verifies, then renames. Never leaves a partial dest. */
kc_status kc_download_verified(const char *url, const char *sha256_hex, const char *dest_path);
kc_status kc_sha256_file(const char *path, char hex_out[65]);
/* mkdir -p path (mode 0755); an error when path is not a directory after it */
kc_status kc_make_dirs(const char *path);
/* kerac's cache folder for a dataset: ($XDG_CACHE_HOME or $HOME/.cache)/kerac/sub, into
 * out[PATH_MAX]; what names the dataset in the error when there is no home */
kc_status kc_cache_dir(const char *sub, const char *what, char *out);

#endif
