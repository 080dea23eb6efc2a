/* idx.c: the IDX file reader (raw or gzip, through zlib's transparent gzread). Every field is
 * checked, and each error names the file and the byte offset (uncompressed) where it went wrong. */
#include "../internal.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08
#define IDX_MAX_BYTES ((int64_t)1 << 31)
#define READ_CHUNK ((int64_t)1 << 30) /* gzread takes an int-sized length */
/* deflate stores at most 258 bytes in 2 bits (ratio 1032:1): a gzip file of n bytes holds
 * less than n * IDX_GZIP_RATIO bytes */
#define IDX_GZIP_RATIO 1040

/* Explains why gzread fell short: KC_OK for a plain end of file, KC_EIO for a failed read,
 * KC_EFORMAT for a damaged or cut-off gzip stream. */
static kc_status stream_status(gzFile f, const char *path, int64_t offset) {
    int read_errno = errno, zerr;
    const char *zmsg = gzerror(f, &zerr);
    if (zerr == Z_OK) return KC_OK;
    if (zerr == Z_ERRNO)
        return kc_err(KC_EIO, "%s: read error at byte offset %" PRId64 ": %s", path, offset,
                      strerror(read_errno));
    size_t path_len = strlen(path); /* zlib's message repeats "path: " (gzdopen: "<fd:N>: ") */
    if (strncmp(zmsg, path, path_len) == 0 && strncmp(zmsg + path_len, ": ", 2) == 0)
        zmsg += path_len + 2;
    else if (strncmp(zmsg, "<fd:", 4) == 0 && strstr(zmsg, ">: "))
        zmsg = strstr(zmsg, ">: ") + 3;
    /* zlib inflates ahead, so the damage may lie after the offset being read */
    return kc_err(KC_EFORMAT, "%s: corrupt gzip stream, found reading uncompressed byte offset %"
                  PRId64 ": %s", path, offset, zmsg);
}

/* Reads up to n bytes found at uncompressed offset `offset`; *got says how many came. */
static kc_status read_bytes(gzFile f, const char *path, uint8_t *buf, int64_t n, int64_t offset,
                            int64_t *got) {
    *got = 0;
    while (*got < n) {
        int64_t want = n - *got < READ_CHUNK ? n - *got : READ_CHUNK;
        errno = 0;
        int r = gzread(f, buf + *got, (unsigned)want);
        if (r < 0) {
            kc_status st = stream_status(f, path, offset + *got);
            return st != KC_OK ? st : kc_err(KC_EIO, "%s: read failed at byte offset %" PRId64,
                                              path, offset + *got);
        }
        *got += r;
        if (r < want) break;
    }
    return stream_status(f, path, offset + *got); /* Z_BUF_ERROR here: gzip stream cut off */
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
static kc_status read_idx(gzFile f, const char *path, int64_t file_size, kc_idx *idx) {
    uint8_t header[4 + 4 * KC_MAX_RANK];
    int64_t got;
    kc_status st = read_bytes(f, path, header, 4, 0, &got);
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
    st = read_bytes(f, path, header + 4, 4 * rank, 4, &got);
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
    idx->rank = rank;
    idx->size = size;
    /* a file too small for its dimensions is refused before the data is allocated (a few
     * bytes must not claim 2 GiB of memory) */
    if (file_size >= 0 && gzdirect(f) && header_size + size > file_size)
        return kc_err(KC_EFORMAT, "%s: expected %" PRId64 " bytes of data after the %d-byte header, "
                      "found only %" PRId64, path, size, header_size, file_size - header_size);
    if (file_size >= 0 && !gzdirect(f) && size / IDX_GZIP_RATIO >= file_size)
        return kc_err(KC_EFORMAT, "%s: IDX dimensions of %" PRId64 " bytes, more than the %" PRId64
                      "-byte gzip file can hold (truncated?)", path, size, file_size);
    idx->data = kc_alloc((size_t)size);
    if (!idx->data) return kc_err_prefix(KC_ENOMEM, "%s", path);

    st = read_bytes(f, path, idx->data, size, header_size, &got);
    if (st != KC_OK) return st;
    if (got < size)
        return kc_err(KC_EFORMAT, "%s: expected %" PRId64 " bytes of data after the %d-byte header, "
                      "found only %" PRId64, path, size, header_size, got);
    /* One more read: finds trailing bytes and, for gzip, checks the stream's CRC and length. */
    uint8_t extra[256];
    st = read_bytes(f, path, extra, sizeof extra, header_size + size, &got);
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
    errno = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return kc_err(KC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat info;
    int64_t file_size = fstat(fd, &info) == 0 && S_ISREG(info.st_mode) ? (int64_t)info.st_size : -1;
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return kc_err(KC_EIO, "%s: cannot open: out of memory", path);
    }
    gzbuffer(f, 1 << 17);
    kc_idx idx = {0};
    kc_status st = read_idx(f, path, file_size, &idx);
    gzclose(f);
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
