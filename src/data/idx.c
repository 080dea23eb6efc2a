/* idx.c: the IDX file reader (raw or gzip). A gzip file is inflated here, not through gzread:
 * gzread returns end of file without complaint when the input ends exactly where the deflate
 * data ends, so a file whose 8-byte trailer (CRC32, length) was cut off was accepted, and
 * damaged data with it. Here a gzip stream must reach its end, trailer checked by inflate, and
 * nothing may follow it. Every field is checked, and each error names the file and the byte
 * offset (uncompressed) where it went wrong. */
#include "../internal.h"
#include "../util/platform.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08
#define IDX_MAX_BYTES ((int64_t)1 << 31)
#define IN_CHUNK ((size_t)1 << 17)
#define READ_CHUNK ((int64_t)1 << 30) /* inflate's avail_out is an unsigned int */
#define IDX_GZIP_RATIO 1040 /* a gzip file of n bytes inflates to less than 1040 n */

typedef struct {
    const char *path;
    int fd;
    bool gz, zinit, in_eof, ended; /* ended: a gzip member reached Z_STREAM_END */
    z_stream zs;
    uint8_t *in;  /* IN_CHUNK bytes of file input; zs.next_in / avail_in: what is left of it */
    int64_t file_offset; /* compressed bytes read from the file so far */
    int64_t file_size;   /* the file's size (-1: not a regular file) */
} idx_stream;

/* Refills the input buffer when it is empty; sets in_eof at the file's end. */
static kc_status refill(idx_stream *s, int64_t offset) {
    if (s->zs.avail_in > 0 || s->in_eof) return KC_OK;
    for (;;) {
        ssize_t r = read(s->fd, s->in, IN_CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return kc_err(KC_EIO, "%s: read error at byte offset %" PRId64 ": %s", s->path,
                          s->gz ? s->file_offset : offset, strerror(errno));
        s->zs.next_in = s->in;
        s->zs.avail_in = (uInt)r;
        s->file_offset += r;
        if (r == 0) s->in_eof = true;
        return KC_OK;
    }
}

/* zlib's allocations go through the C library's malloc as kerac's own do (so a test that fails
 * allocations reaches them too) */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
    return items && size > SIZE_MAX / items ? NULL : malloc((size_t)items * size);
}
static void z_free(voidpf opaque, voidpf p) { free(p); }

static kc_status corrupt(idx_stream *s, int64_t offset, const char *why) {
    /* inflate reads ahead, so the damage may lie after the offset being read */
    return kc_err(KC_EFORMAT, "%s: corrupt gzip stream, found reading uncompressed byte offset %"
                  PRId64 ": %s", s->path, offset, why);
}

/* Reads up to n bytes found at uncompressed offset `offset`; *got says how many came (fewer only
 * at the end of the data: a complete gzip stream, or the raw file's end). */
static kc_status read_bytes(idx_stream *s, uint8_t *buf, int64_t n, int64_t offset, int64_t *got) {
    *got = 0;
    kc_status st;
    if (!s->gz) {
        while (*got < n) {
            if ((st = refill(s, offset + *got)) != KC_OK) return st;
            if (s->zs.avail_in == 0) break;
            int64_t k = n - *got < (int64_t)s->zs.avail_in ? n - *got : (int64_t)s->zs.avail_in;
            memcpy(buf + *got, s->zs.next_in, (size_t)k);
            s->zs.next_in += k;
            s->zs.avail_in -= (uInt)k;
            *got += k;
        }
        return KC_OK;
    }
    while (*got < n) {
        if ((st = refill(s, offset + *got)) != KC_OK) return st;
        if (s->ended) {
            if (s->zs.avail_in == 0) break; /* the end of the file, after a complete stream */
            if (s->zs.avail_in >= 2 && (s->zs.next_in[0] != 0x1f || s->zs.next_in[1] != 0x8b))
                return kc_err(KC_EFORMAT, "%s: bytes after the end of the gzip stream (compressed "
                              "byte offset %" PRId64 ")", s->path,
                              s->file_offset - (int64_t)s->zs.avail_in);
            int zr = inflateReset(&s->zs); /* another gzip member follows (as gzip -c a b) */
            if (zr != Z_OK) return corrupt(s, offset + *got, "cannot reset the inflater");
            s->ended = false;
        }
        if (s->zs.avail_in == 0) /* in_eof: the file ends before the stream (its trailer) does */
            return corrupt(s, offset + *got, "unexpected end of file (the gzip stream or its "
                           "CRC32/length trailer is cut off)");
        int64_t want = n - *got < READ_CHUNK ? n - *got : READ_CHUNK;
        s->zs.next_out = buf + *got;
        s->zs.avail_out = (uInt)want;
        int zr = inflate(&s->zs, Z_NO_FLUSH);
        *got += want - (int64_t)s->zs.avail_out;
        if (zr == Z_STREAM_END) s->ended = true;
        else if (zr == Z_MEM_ERROR)
            return kc_err(KC_ENOMEM, "%s: out of memory inflating the gzip stream", s->path);
        else if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR)
            return corrupt(s, offset + *got, s->zs.msg ? s->zs.msg : "invalid deflate data");
        /* Z_OK, Z_BUF_ERROR: more input or more output needed */
    }
    return KC_OK;
}

/* "(60000, 28, 28)" */
static const char *dims_str(const int64_t *dims, int rank, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? ", " : "", dims[i]);
    if (used < size) snprintf(buf + used, size - used, ")");
    return buf;
}

/* Header: 0x00 0x00 type rank, then rank big-endian uint32 dims; then the data, then EOF. */
static kc_status read_idx(idx_stream *f, const char *path, kc_idx *idx) {
    uint8_t header[4 + 4 * KC_MAX_RANK];
    int64_t got;
    kc_status st = read_bytes(f, header, 4, 0, &got);
    if (st != KC_OK) return st;
    if (got == 0) return kc_err(KC_EFORMAT, "%s: empty file, expected an IDX header", path);
    if (got < 4)
        return kc_err(KC_EFORMAT, "%s: truncated IDX header: the file ends at byte offset %" PRId64
                      " inside the 4-byte magic number", path, got);
    if (header[0] != 0 || header[1] != 0)
        return kc_err(KC_EFORMAT, "%s: bad IDX magic 0x%02X%02X%02X%02X at byte offset 0: the first "
                      "two bytes must be 0", path, header[0], header[1], header[2], header[3]);
    if (header[2] != IDX_TYPE_UBYTE)
        return kc_err(KC_EFORMAT, "%s: unsupported IDX type 0x%02X at byte offset 2 (only 0x08, "
                      "unsigned byte, is supported)", path, header[2]);
    int rank = header[3];
    if (rank < 1 || rank > KC_MAX_RANK)
        return kc_err(KC_EFORMAT, "%s: IDX rank %d at byte offset 3 is outside 1..%d", path, rank,
                      KC_MAX_RANK);
    const int header_size = 4 + 4 * rank;
    st = read_bytes(f, header + 4, 4 * rank, 4, &got);
    if (st != KC_OK) return st;
    if (got < 4 * rank)
        return kc_err(KC_EFORMAT, "%s: truncated IDX header: the file ends at byte offset %" PRId64
                      " inside the %d-byte header of rank %d", path, 4 + got, header_size, rank);

    int64_t size = 1;
    for (int i = 0; i < rank; i++) {
        const uint8_t *p = header + 4 + 4 * i;
        idx->dims[i] = (int64_t)p[0] << 24 | (int64_t)p[1] << 16 | (int64_t)p[2] << 8 | p[3];
        if (idx->dims[i] == 0)
            return kc_err(KC_EFORMAT, "%s: IDX dimension %d (byte offset %d) is 0", path, i, 4 + 4 * i);
    }
    for (int i = 0; i < rank; i++) {
        size *= idx->dims[i]; /* cannot overflow: size <= 2^31 before, each dim < 2^32 */
        if (size > IDX_MAX_BYTES) {
            char dims[128];
            return kc_err(KC_EFORMAT, "%s: IDX dimensions %s (byte offsets 4..%d) make more than "
                          "2^31 bytes of data", path, dims_str(idx->dims, rank, dims, sizeof dims),
                          header_size - 1);
        }
    }
    /* the data must fit in the file before anything is allocated for it: a raw file holds it
     * after the header; deflate stores at most 258 bytes in 2 bits (1032:1), so a gzip file of
     * n bytes holds less than 1040 n */
    if (f->file_size >= 0 && !f->gz && size > f->file_size - header_size)
        return kc_err(KC_EFORMAT, "%s: expected %" PRId64 " bytes of data after the %d-byte header, "
                      "found only %" PRId64, path, size, header_size, f->file_size - header_size);
    if (f->file_size >= 0 && f->gz && size > f->file_size * IDX_GZIP_RATIO) {
        char dims[128];
        return kc_err(KC_EFORMAT, "%s: IDX dimensions %s claim %" PRId64 " bytes of data, more than "
                      "the %" PRId64 "-byte gzip file can hold", path,
                      dims_str(idx->dims, rank, dims, sizeof dims), size, f->file_size);
    }
    idx->rank = rank;
    idx->size = size;
    idx->data = kc_alloc((size_t)size);
    if (!idx->data) return kc_err_prefix(KC_ENOMEM, "%s", path);
    if (size >= ((int64_t)4 << 20)) /* huge pages for a big array, as npy.c and NumPy: fewer faults */
        kc_advise_huge_pages(idx->data, (size_t)size);

    st = read_bytes(f, idx->data, size, header_size, &got);
    if (st != KC_OK) return st;
    if (got < size)
        return kc_err(KC_EFORMAT, "%s: expected %" PRId64 " bytes of data after the %d-byte header, "
                      "found only %" PRId64, path, size, header_size, got);
    /* One more read: finds trailing bytes and, for gzip, checks the stream's CRC and length. */
    uint8_t extra[256];
    st = read_bytes(f, extra, sizeof extra, header_size + size, &got);
    if (st != KC_OK) return st;
    if (got > 0)
        return kc_err(KC_EFORMAT, "%s: trailing bytes at byte offset %" PRId64 ", after the %d-byte "
                      "header and %" PRId64 " bytes of data", path, header_size + size, header_size,
                      size);
    return KC_OK;
}

kc_status kc_idx_read(const char *path, kc_idx *out) {
    if (!out) return kc_err(KC_EINVAL, "kc_idx_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return kc_err(KC_EINVAL, "kc_idx_read: path is NULL");
    idx_stream s = {.path = path, .fd = open(path, O_RDONLY | O_CLOEXEC)};
    if (s.fd < 0) return kc_err(KC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    kc_status st = KC_OK;
    s.file_size = fstat(s.fd, &sb) == 0 && S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : -1;
    if (fstat(s.fd, &sb) == 0 && S_ISDIR(sb.st_mode))
        st = kc_err(KC_EIO, "%s: cannot read: it is a directory", path);
    if (st == KC_OK && !(s.in = kc_alloc(IN_CHUNK))) st = kc_err_prefix(KC_ENOMEM, "%s", path);
    if (st == KC_OK) st = refill(&s, 0);
    /* gzip's magic 1f 8b; an IDX file starts 00 00 */
    if (st == KC_OK && s.zs.avail_in >= 2 && s.in[0] == 0x1f && s.in[1] == 0x8b) {
        s.gz = true;
        s.zs.zalloc = z_alloc;
        s.zs.zfree = z_free;
        int zr = inflateInit2(&s.zs, 16 + MAX_WBITS);
        if (zr == Z_OK) s.zinit = true;
        else if (zr == Z_MEM_ERROR)
            st = kc_err(KC_ENOMEM, "%s: out of memory starting the gzip inflater", path);
        else st = kc_err(KC_EFORMAT, "%s: cannot start the gzip inflater (zlib error %d)", path, zr);
    }
    kc_idx idx = {0};
    if (st == KC_OK) st = read_idx(&s, path, &idx);
    if (s.zinit) inflateEnd(&s.zs);
    kc_free(s.in);
    close(s.fd);
    if (st != KC_OK) {
        kc_idx_free(&idx);
        return st;
    }
    *out = idx;
    return KC_OK;
}

void kc_idx_free(kc_idx *idx) {
    if (!idx) return;
    kc_free(idx->data);
    memset(idx, 0, sizeof *idx);
}
