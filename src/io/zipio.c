/* zipio.c: zip archives in memory through libzip: build one from named buffers (stored, as
 * Keras writes them), read one entry back with its CRC checked. */
#include "io.h"
#include <stdlib.h>
#include <string.h>
#include <zip.h>

kc_status kc_zip_build(const kc_zip_entry *entries, int n, void **out, size_t *out_size) {
    *out = NULL;
    *out_size = 0;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (!src) {
        zip_error_fini(&ze);
        return kc_err(KC_ENOMEM, "zip: cannot create a buffer");
    }
    zip_source_keep(src); /* we read the archive back after zip_close */
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    kc_status st = KC_OK;
    if (!za) {
        st = kc_err(KC_EIO, "zip: cannot start an archive: %s", zip_error_strerror(&ze));
        zip_source_free(src); /* the reference zip_source_keep added */
        goto done;
    }
    for (int i = 0; i < n && !st; i++) {
        zip_source_t *s = zip_source_buffer(za, entries[i].data, entries[i].size, 0);
        zip_int64_t idx = s ? zip_file_add(za, entries[i].name, s, ZIP_FL_ENC_UTF_8) : -1;
        if (idx < 0) {
            if (s) zip_source_free(s);
            st = kc_err(KC_EIO, "zip: cannot add %s: %s", entries[i].name, zip_strerror(za));
        } else {
            zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
        }
    }
    if (st) {
        zip_discard(za);
        goto done;
    }
    if (zip_close(za) < 0) {
        st = kc_err(KC_EIO, "zip: cannot finish the archive: %s", zip_strerror(za));
        zip_discard(za);
        goto done;
    }
    zip_stat_t sb;
    if (zip_source_stat(src, &sb) < 0 || zip_source_open(src) < 0) {
        st = kc_err(KC_EIO, "zip: cannot read the archive back");
        goto done;
    }
    char *buf = malloc(sb.size ? sb.size : 1);
    if (!buf) {
        zip_source_close(src);
        st = kc_err(KC_ENOMEM, "zip: out of memory");
        goto done;
    }
    zip_int64_t got = zip_source_read(src, buf, sb.size);
    zip_source_close(src);
    if (got < 0 || (zip_uint64_t)got != sb.size) {
        free(buf);
        st = kc_err(KC_EIO, "zip: cannot read the archive back");
        goto done;
    }
    *out = buf;
    *out_size = sb.size;
done:
    zip_source_free(src);
    zip_error_fini(&ze);
    return st;
}

kc_status kc_zip_read(const char *path, const void *zip, size_t size, const char *name,
                      void **out, size_t *out_size) {
    *out = NULL;
    *out_size = 0;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(zip, size, 0, &ze);
    if (!src) {
        zip_error_fini(&ze);
        return kc_err(KC_ENOMEM, "%s: out of memory opening the zip archive", path);
    }
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!za) {
        kc_status st = kc_err(KC_EFORMAT, "%s: not a valid zip archive (truncated or corrupt?): %s",
                              path, zip_error_strerror(&ze));
        zip_source_free(src);
        zip_error_fini(&ze);
        return st;
    }
    zip_error_fini(&ze);
    kc_status st = KC_OK;
    zip_stat_t sb;
    zip_file_t *zf = NULL;
    char *buf = NULL;
    if (zip_stat(za, name, 0, &sb) < 0 || !(sb.valid & ZIP_STAT_SIZE)) {
        st = kc_err(KC_EFORMAT, "%s: the archive has no %s", path, name);
        goto done;
    }
    /* an entry's bytes are bounded by what its stored bytes can hold: the same for a stored
     * entry (Keras 3 stores them), at most 1032 times for deflate (its largest ratio); a claim
     * beyond is crafted, and is refused before anything is allocated for it */
    zip_uint64_t stored = (sb.valid & ZIP_STAT_COMP_SIZE) ? sb.comp_size : (zip_uint64_t)size;
    if (stored > (zip_uint64_t)size) stored = (zip_uint64_t)size;
    if (sb.size > ((zip_uint64_t)1 << 34) || sb.size > stored * 1032 + 4096) {
        st = kc_err(KC_EFORMAT, "%s: %s claims %llu bytes, more than its %llu stored bytes can "
                                "hold", path, name, (unsigned long long)sb.size,
                    (unsigned long long)stored);
        goto done;
    }
    buf = malloc(sb.size + 1);
    zf = zip_fopen(za, name, 0);
    if (!buf || !zf) {
        st = buf ? kc_err(KC_EFORMAT, "%s: cannot open %s in the archive: %s", path, name,
                          zip_strerror(za))
                 : kc_err(KC_ENOMEM, "%s: out of memory for %s", path, name);
        goto done;
    }
    zip_uint64_t done_bytes = 0;
    while (done_bytes < sb.size) {
        zip_int64_t r = zip_fread(zf, buf + done_bytes, sb.size - done_bytes);
        if (r <= 0) {
            st = kc_err(KC_EFORMAT, "%s: reading %s from the archive failed at byte %llu: %s",
                        path, name, (unsigned long long)done_bytes,
                        r < 0 ? zip_file_strerror(zf) : "unexpected end");
            goto done;
        }
        done_bytes += (zip_uint64_t)r;
    }
    char extra;
    if (zip_fread(zf, &extra, 1) != 0) { /* the end, where libzip checks the CRC */
        st = kc_err(KC_EFORMAT, "%s: %s in the archive is corrupt (%s)", path, name,
                    zip_file_strerror(zf));
        goto done;
    }
    buf[sb.size] = 0;
    *out = buf;
    *out_size = sb.size;
    buf = NULL;
done:
    if (zf) zip_fclose(zf);
    free(buf);
    zip_discard(za);
    return st;
}
