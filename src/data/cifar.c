/* cifar.c: CIFAR-10's binary version (cifar-10-binary.tar.gz: data_batch_1..5.bin and
 * test_batch.bin, records of 1 label byte and 3072 bytes of 32x32 pixels, channel planes R, G,
 * B) into x (count, 32, 32, 3) uint8 channels last and y uint8, as keras.datasets.cifar10
 * returns them. The archive is read straight from the .tar.gz (zlib); it is downloaded and
 * verified like MNIST's files. */
#include "spec_internal.h"
#include "text_internal.h"
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define REC 3073
#define SIDE 32
#define MAX_MEMBER ((uint64_t)1 << 31)

const char *const kc_cifar10_class_names[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                               "dog", "frog", "horse", "ship", "truck"};

static uint64_t octal(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n && p[i]; i++) {
        if (p[i] == ' ') continue;
        if (p[i] < '0' || p[i] > '7') return UINT64_MAX;
        v = v * 8 + (uint64_t)(p[i] - '0');
    }
    return v;
}

static int read_full(gzFile f, void *buf, uint64_t n) {
    uint8_t *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? 1u << 30 : (unsigned)n;
        int r = gzread(f, p, chunk);
        if (r <= 0) return -1;
        p += r;
        n -= (uint64_t)r;
    }
    return 0;
}

kc_status kc_cifar10_read_archive(const char *path, int test, kc_dataset *out) {
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb");
    if (!f) return kc_err(KC_EIO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1 << 18);
    int want = test ? 1 : 5;
    uint8_t *batch[5] = {0};
    uint64_t bsize[5] = {0};
    kc_status st = KC_OK;
    unsigned char hdr[512];
    for (;;) {
        if (read_full(f, hdr, 512)) {
            st = kc_err(KC_EFORMAT, "%s: not a valid tar(.gz) archive: truncated", path);
            break;
        }
        int zero = 1;
        for (int i = 0; i < 512 && zero; i++) zero = hdr[i] == 0;
        if (zero) break; /* the end-of-archive block */
        char name[257];
        snprintf(name, sizeof name, "%.100s", (const char *)hdr);
        uint64_t size = octal(hdr + 124, 12);
        unsigned sum = 0;
        for (int i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? ' ' : hdr[i];
        if (size == UINT64_MAX || octal(hdr + 148, 8) != sum) {
            st = kc_err(KC_EFORMAT, "%s: not a valid tar(.gz) archive: bad header of member \"%s\"",
                        path, name);
            break;
        }
        const char *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        int slot = -1;
        if (test && !strcmp(base, "test_batch.bin")) slot = 0;
        if (!test && !strncmp(base, "data_batch_", 11) && base[11] >= '1' && base[11] <= '5' &&
            !strcmp(base + 12, ".bin"))
            slot = base[11] - '1';
        uint64_t padded = (size + 511) / 512 * 512;
        if (slot >= 0 && (hdr[156] == '0' || hdr[156] == 0) && !batch[slot]) {
            if (size % REC != 0 || size > MAX_MEMBER) {
                st = kc_err(KC_EFORMAT, "%s: %s holds %" PRIu64 " bytes, not a whole number of "
                            "%d-byte CIFAR-10 records", path, name, size, REC);
                break;
            }
            batch[slot] = malloc(size ? size : 1);
            if (!batch[slot]) {
                st = kc_err(KC_ENOMEM, "%s: out of memory for %s", path, name);
                break;
            }
            bsize[slot] = size;
            if (read_full(f, batch[slot], size) || (padded > size && gzseek(f, (z_off_t)(padded - size), SEEK_CUR) < 0)) {
                st = kc_err(KC_EFORMAT, "%s: %s is truncated", path, name);
                break;
            }
        } else if (padded && gzseek(f, (z_off_t)padded, SEEK_CUR) < 0) {
            st = kc_err(KC_EFORMAT, "%s: not a valid tar(.gz) archive: member \"%s\" is truncated", path, name);
            break;
        }
    }
    gzclose(f);
    for (int i = 0; i < want && !st; i++)
        if (!batch[i])
            st = kc_err(KC_EFORMAT, "%s: the archive has no %s", path, test ? "test_batch.bin" : (const char *[]){
                        "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                        "data_batch_5.bin"}[i]);
    int64_t n = 0;
    for (int i = 0; i < want && !st; i++) n += (int64_t)(bsize[i] / REC);
    uint8_t *x = NULL, *y = NULL;
    if (!st) {
        x = kc_alloc((size_t)n * SIDE * SIDE * 3);
        y = kc_alloc((size_t)n);
        if (!x || !y) st = kc_err_prefix(KC_ENOMEM, "%s", path);
    }
    int64_t k = 0;
    for (int b = 0; b < want && !st; b++)
        for (uint64_t r = 0; r < bsize[b] / REC && !st; r++, k++) {
            const uint8_t *rec = batch[b] + r * REC;
            if (rec[0] > 9) {
                st = kc_err(KC_EFORMAT, "%s: %s record %" PRIu64 ": label %d is not a class 0..9",
                            path, test ? "test_batch.bin" : "data_batch", r, rec[0]);
                break;
            }
            y[k] = rec[0];
            uint8_t *px = x + (size_t)k * SIDE * SIDE * 3;
            for (int p = 0; p < SIDE * SIDE; p++) /* CHW planes to HWC */
                for (int c = 0; c < 3; c++) px[p * 3 + c] = rec[1 + c * SIDE * SIDE + p];
        }
    for (int i = 0; i < 5; i++) free(batch[i]);
    if (st) {
        kc_free(x);
        kc_free(y);
        return st;
    }
    *out = (kc_dataset){.count = n, .x_shape = kc_shape3(SIDE, SIDE, 3), .x_dtype = KC_UINT8,
                        .x = x, .owned_x = x, .y_dtype = KC_UINT8, .y = y, .owned_y = y,
                        .num_classes = 10};
    return KC_OK;
}

kc_status kc_cifar10_load_from(const char *cache_dir, const char *url, const char *hash, int test,
                               kc_dataset *out) {
    static const char fname[] = "cifar-10-binary.tar.gz";
    memset(out, 0, sizeof *out);
    if (!url) url = getenv("KERAC_CIFAR10_URL");
    if (!url || !url[0]) url = KC_CIFAR10_URL;
    if (!hash) hash = KC_CIFAR10_MD5;
    char path[PATH_MAX];
    kc_status st;
    if (cache_dir) {
        if (snprintf(path, sizeof path, "%s/%s", cache_dir, fname) >= (int)sizeof path)
            return kc_err(KC_EINVAL, "cifar10: path too long: %s", cache_dir);
        if (access(path, F_OK) != 0) {
            st = kc_make_dirs(cache_dir);
            if (!st) st = kc_download_verified(url, hash, path);
            if (st) return st;
        }
    } else {
        /* kc_keras_data_file appends the file name to a base URL: split ours */
        char base[PATH_MAX];
        const char *slash = strrchr(url, '/');
        if (!slash || strcmp(slash + 1, fname))
            return kc_err(KC_EINVAL, "cifar10: the URL %s must end in /%s", url, fname);
        snprintf(base, sizeof base, "%.*s", (int)(slash - url + 1), url);
        st = kc_keras_data_file(NULL, "cifar10", fname, base, hash, path, sizeof path);
        if (st) return st;
    }
    return kc_cifar10_read_archive(path, test, out);
}
