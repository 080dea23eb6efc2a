/* test_data.c: the IDX reader against valid and broken files, the MNIST loader (fake files, the
 * cache, the download path, the real data under $KERAC_DATA), the verified downloader, datasets. */
#include "testutil.h"
#include "internal.h"
#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <zlib.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static const char *path_in(char buf[512], const char *dir, const char *name) {
    cr_assert_lt(snprintf(buf, 512, "%s/%s", dir, name), 512, "path too long");
    return buf;
}

static void write_gz(const char *path, const void *data, size_t size) {
    gzFile f = gzopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(gzwrite(f, data, (unsigned)size), (int)size);
    cr_assert_eq(gzclose(f), Z_OK);
}

static void write_any(const char *path, bool gz, const void *data, size_t size) {
    if (gz) write_gz(path, data, size);
    else tu_write_file(path, data, size);
}

static uint8_t *read_whole(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    uint8_t *data = malloc(*size);
    cr_assert_eq(fread(data, 1, *size, f), *size);
    fclose(f);
    return data;
}

/* An IDX image in memory: magic (type, rank), the dims, then data_len bytes (i * 7 + 3). */
static uint8_t *make_idx(int type, int rank, const uint32_t *dims, size_t data_len, size_t *len) {
    *len = 4 + 4 * (size_t)rank + data_len;
    uint8_t *buf = malloc(*len), *p = buf;
    *p++ = 0, *p++ = 0, *p++ = (uint8_t)type, *p++ = (uint8_t)rank;
    for (int i = 0; i < rank; i++)
        *p++ = dims[i] >> 24, *p++ = dims[i] >> 16, *p++ = dims[i] >> 8, *p++ = (uint8_t)dims[i];
    for (size_t i = 0; i < data_len; i++) *p++ = (uint8_t)(i * 7 + 3);
    return buf;
}

/* Writes an unsigned-byte IDX file; returns its path in a static buffer. */
static const char *write_idx(const char *dir, bool gz, int rank, const uint32_t *dims,
                             size_t data_len) {
    static char path[512];
    size_t len;
    uint8_t *buf = make_idx(0x08, rank, dims, data_len, &len);
    path_in(path, dir, gz ? "t.idx.gz" : "t.idx");
    write_any(path, gz, buf, len);
    free(buf);
    return path;
}

static const char *write_bytes(const char *dir, const char *name, const void *data, size_t n) {
    static char path[512];
    tu_write_file(path_in(path, dir, name), data, n);
    return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}
static void rm_tree(char *dir) {
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* Environment variables the MNIST tests change, put back afterwards. */
static const char *const env_names[] = {"KERAC_DATA", "HOME", "XDG_CACHE_HOME", "KERAC_MNIST_URL"};
#define ENV_COUNT (int)(sizeof env_names / sizeof *env_names)
static char *env_saved[ENV_COUNT];
static void env_save(void) {
    for (int i = 0; i < ENV_COUNT; i++) {
        const char *v = getenv(env_names[i]);
        env_saved[i] = v ? strdup(v) : NULL;
    }
}
static void env_restore(void) {
    for (int i = 0; i < ENV_COUNT; i++) {
        if (env_saved[i]) setenv(env_names[i], env_saved[i], 1);
        else unsetenv(env_names[i]);
        free(env_saved[i]);
        env_saved[i] = NULL;
    }
}

/* ---- IDX: valid files ----------------------------------------------------------------------- */

static void check_round_trip(bool gz) {
    char *dir = tu_tmpdir();
    const uint32_t dims[3] = {2, 3, 4};
    kc_idx idx;
    KC_CHECK(kc_idx_read(write_idx(dir, gz, 3, dims, 24), &idx));
    cr_assert_eq(idx.rank, 3);
    cr_assert(idx.dims[0] == 2 && idx.dims[1] == 3 && idx.dims[2] == 4);
    cr_assert_eq(idx.size, 24);
    for (int i = 0; i < 24; i++) cr_assert_eq(idx.data[i], (uint8_t)(i * 7 + 3));
    kc_idx_free(&idx);
    cr_assert_null(idx.data);
    rm_tree(dir);
}
Test(idx, round_trip_raw) { check_round_trip(false); }
Test(idx, round_trip_gz) { check_round_trip(true); }

Test(idx, rank1_and_rank4) {
    char *dir = tu_tmpdir();
    kc_idx idx;
    KC_CHECK(kc_idx_read(write_idx(dir, true, 1, (uint32_t[]){5}, 5), &idx));
    cr_assert(idx.rank == 1 && idx.dims[0] == 5 && idx.size == 5 && idx.data[4] == 31);
    kc_idx_free(&idx);
    KC_CHECK(kc_idx_read(write_idx(dir, false, 4, (uint32_t[]){1, 2, 1, 3}, 6), &idx));
    cr_assert(idx.rank == 4 && idx.dims[3] == 3 && idx.size == 6);
    kc_idx_free(&idx);
    rm_tree(dir);
}

/* ---- IDX: broken files ---------------------------------------------------------------------- */

Test(idx, missing_file) {
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read("/nonexistent/kerac/x.idx", &idx), KC_EIO, "/nonexistent/kerac/x.idx");
    cr_assert(strstr(kc_last_error(), "No such file"), "%s", kc_last_error());
    cr_assert_null(idx.data);
}

Test(idx, directory_is_io_error) {
    char *dir = tu_tmpdir();
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(dir, &idx), KC_EIO, dir);
    rm_tree(dir);
}

Test(idx, null_arguments) {
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(NULL, &idx), KC_EINVAL, "path");
    KC_EXPECT_ERR(kc_idx_read("x", NULL), KC_EINVAL, "out");
}

Test(idx, empty_file) {
    char *dir = tu_tmpdir();
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(write_bytes(dir, "empty.idx", "", 0), &idx), KC_EFORMAT, "empty.idx: empty file");
    rm_tree(dir);
}

Test(idx, truncated_header) {
    char *dir = tu_tmpdir();
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(write_bytes(dir, "a.idx", "\0\0", 2), &idx), KC_EFORMAT,
                  "ends at byte offset 2 inside the 4-byte magic");
    /* rank 3 but only one and a half dims */
    KC_EXPECT_ERR(kc_idx_read(write_bytes(dir, "b.idx", "\0\0\x08\x03\0\0\0\x05\0\0", 10), &idx),
                  KC_EFORMAT, "ends at byte offset 10 inside the 16-byte header");
    rm_tree(dir);
}

Test(idx, wrong_magic) {
    char *dir = tu_tmpdir();
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(write_bytes(dir, "m.idx", "\x01\0\x08\x01\0\0\0\x01\x07", 9), &idx),
                  KC_EFORMAT, "m.idx: bad IDX magic 0x01000801 at byte offset 0");
    rm_tree(dir);
}

Test(idx, unsupported_type) {
    char *dir = tu_tmpdir();
    size_t len;
    uint8_t *buf = make_idx(0x0D, 1, (uint32_t[]){1}, 4, &len);
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(write_bytes(dir, "f.idx", buf, len), &idx), KC_EFORMAT,
                  "unsupported IDX type 0x0D at byte offset 2");
    free(buf);
    rm_tree(dir);
}

Test(idx, rank_out_of_range) {
    char *dir = tu_tmpdir();
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(write_idx(dir, false, 0, NULL, 1), &idx), KC_EFORMAT,
                  "IDX rank 0 at byte offset 3 is outside 1..4");
    KC_EXPECT_ERR(kc_idx_read(write_idx(dir, true, 5, (uint32_t[]){1, 1, 1, 1, 1}, 1), &idx),
                  KC_EFORMAT, "IDX rank 5 at byte offset 3");
    rm_tree(dir);
}

Test(idx, zero_dimension) {
    char *dir = tu_tmpdir();
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(write_idx(dir, false, 3, (uint32_t[]){4, 0, 2}, 0), &idx),
                  KC_EFORMAT, "IDX dimension 1 (byte offset 8) is 0");
    rm_tree(dir);
}

Test(idx, huge_dimensions) {
    char *dir = tu_tmpdir();
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(write_idx(dir, false, 2, (uint32_t[]){65536, 65536}, 0), &idx),
                  KC_EFORMAT, "(65536, 65536) (byte offsets 4..11) make more than 2^31 bytes");
    /* a naive 64-bit product would overflow here */
    const uint32_t max4[4] = {UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX};
    KC_EXPECT_ERR(kc_idx_read(write_idx(dir, true, 4, max4, 0), &idx), KC_EFORMAT,
                  "more than 2^31 bytes");
    KC_EXPECT_ERR(kc_idx_read(write_idx(dir, false, 1, (uint32_t[]){(1u << 31) + 1}, 0), &idx),
                  KC_EFORMAT, "(2147483649)");
    /* exactly 2^31 is allowed by the header check, and then the data is missing */
    KC_EXPECT_ERR(kc_idx_read(write_idx(dir, false, 2, (uint32_t[]){1u << 30, 2}, 3), &idx),
                  KC_EFORMAT, "expected 2147483648 bytes of data after the 12-byte header, found only 3");
    cr_assert_null(idx.data);
    rm_tree(dir);
}

static void check_truncated_data(bool gz) {
    char *dir = tu_tmpdir();
    kc_idx idx;
    const char *path = write_idx(dir, gz, 3, (uint32_t[]){2, 3, 4}, 10);
    KC_EXPECT_ERR(kc_idx_read(path, &idx), KC_EFORMAT,
                  "expected 24 bytes of data after the 16-byte header, found only 10");
    cr_assert(strstr(kc_last_error(), path));
    cr_assert_null(idx.data);
    rm_tree(dir);
}
Test(idx, truncated_data_raw) { check_truncated_data(false); }
Test(idx, truncated_data_gz) { check_truncated_data(true); }

Test(idx, trailing_bytes) {
    char *dir = tu_tmpdir();
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(write_idx(dir, false, 1, (uint32_t[]){4}, 5), &idx), KC_EFORMAT,
                  "trailing bytes at byte offset 12, after the 8-byte header and 4 bytes of data");
    KC_EXPECT_ERR(kc_idx_read(write_idx(dir, true, 1, (uint32_t[]){4}, 6), &idx), KC_EFORMAT,
                  "t.idx.gz: trailing bytes at byte offset 12");
    rm_tree(dir);
}

Test(idx, corrupt_gzip_body) {
    char *dir = tu_tmpdir();
    uint8_t bytes[64] = {0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03};
    memset(bytes + 10, 0xff, sizeof bytes - 10);
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(write_bytes(dir, "c.gz", bytes, sizeof bytes), &idx), KC_EFORMAT,
                  "c.gz: corrupt gzip stream, found reading uncompressed byte offset 0: invalid block type");
    rm_tree(dir);
}

/* A gzip file of a valid IDX with incompressible data, cut or damaged afterwards. */
static const char *write_damaged_gz(const char *dir, void (*damage)(uint8_t *, size_t *)) {
    const uint32_t dims[2] = {40, 100};
    size_t len, gz_len;
    uint8_t *buf = make_idx(0x08, 2, dims, 4000, &len);
    uint64_t x = 88172645463325252ull; /* xorshift: incompressible bytes */
    for (size_t i = 12; i < len; i++) x ^= x << 13, x ^= x >> 7, x ^= x << 17, buf[i] = (uint8_t)x;
    static char path[512];
    write_gz(path_in(path, dir, "t.idx.gz"), buf, len);
    free(buf);
    uint8_t *gz = read_whole(path, &gz_len);
    damage(gz, &gz_len);
    tu_write_file(path, gz, gz_len);
    free(gz);
    return path;
}
static void cut_in_half(uint8_t *gz, size_t *len) { *len /= 2; }
static void flip_crc(uint8_t *gz, size_t *len) { gz[*len - 8] ^= 0x55; }

Test(idx, gzip_cut_in_half) {
    char *dir = tu_tmpdir();
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(write_damaged_gz(dir, cut_in_half), &idx), KC_EFORMAT,
                  "t.idx.gz: corrupt gzip stream, found reading uncompressed byte offset");
    cr_assert(strstr(kc_last_error(), "unexpected end of file"), "%s", kc_last_error());
    cr_assert_null(idx.data);
    rm_tree(dir);
}

Test(idx, gzip_bad_crc) {
    char *dir = tu_tmpdir();
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(write_damaged_gz(dir, flip_crc), &idx), KC_EFORMAT,
                  "t.idx.gz: corrupt gzip stream");
    cr_assert(strstr(kc_last_error(), ": incorrect data check"), "%s", kc_last_error());
    rm_tree(dir);
}

/* The 8-byte trailer (CRC32, length) cut off: the deflate data is complete, so zlib's gzread
 * used to report a clean end of file and the IDX was accepted; with a byte of the (stored,
 * incompressible) data flipped as well, wrong pixels came back with KC_OK. */
static void cut_trailer(uint8_t *gz, size_t *len) { *len -= 8; }
static void cut_trailer_flip_data(uint8_t *gz, size_t *len) {
    *len -= 8;
    gz[*len / 2] ^= 0x20;
}
static void flip_data(uint8_t *gz, size_t *len) { gz[*len / 2] ^= 0x20; }

static void check_damaged(void (*damage)(uint8_t *, size_t *), const char *why) {
    char *dir = tu_tmpdir();
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(write_damaged_gz(dir, damage), &idx), KC_EFORMAT,
                  "t.idx.gz: corrupt gzip stream, found reading uncompressed byte offset");
    cr_assert(strstr(kc_last_error(), why), "%s lacks %s", kc_last_error(), why);
    cr_assert_null(idx.data);
    rm_tree(dir);
}
Test(idx, gzip_trailer_cut_off) { check_damaged(cut_trailer, "trailer is cut off"); }
Test(idx, gzip_trailer_cut_off_and_data_flipped) {
    check_damaged(cut_trailer_flip_data, "trailer is cut off");
}
Test(idx, gzip_data_flipped) { check_damaged(flip_data, "incorrect data check"); }

/* gzip -c a b > c: two members are one stream of their data; bytes that are not a gzip member
 * after the stream are refused */
Test(idx, gzip_members_and_junk_after) {
    char *dir = tu_tmpdir(), path[512];
    size_t len, a_len, b_len;
    uint8_t *buf = make_idx(0x08, 1, (uint32_t[]){30}, 30, &len);
    path_in(path, dir, "a.gz");
    write_gz(path, buf, 20);
    uint8_t *a = read_whole(path, &a_len);
    write_gz(path, buf + 20, len - 20);
    uint8_t *b = read_whole(path, &b_len);
    uint8_t *both = malloc(a_len + b_len + 4);
    memcpy(both, a, a_len);
    memcpy(both + a_len, b, b_len);
    kc_idx idx;
    KC_CHECK(kc_idx_read(write_bytes(dir, "ab.gz", both, a_len + b_len), &idx));
    cr_assert(idx.size == 30 && idx.data[29] == (uint8_t)(29 * 7 + 3));
    kc_idx_free(&idx);
    memcpy(both + a_len + b_len, "junk", 4);
    KC_EXPECT_ERR(kc_idx_read(write_bytes(dir, "abj.gz", both, a_len + b_len + 4), &idx),
                  KC_EFORMAT, "abj.gz: bytes after the end of the gzip stream");
    free(a), free(b), free(both), free(buf);
    rm_tree(dir);
}

Test(idx, random_garbage) {
    char *dir = tu_tmpdir();
    uint8_t junk[1000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) x = x * 1664525u + 1013904223u, junk[i] = x >> 24;
    junk[0] = 0x5a; /* neither 0 (IDX) nor 0x1f (gzip) */
    kc_idx idx;
    KC_EXPECT_ERR(kc_idx_read(write_bytes(dir, "junk.bin", junk, sizeof junk), &idx), KC_EFORMAT,
                  "junk.bin: bad IDX magic");
    rm_tree(dir);
}

/* ---- MNIST from fake files ------------------------------------------------------------------ */

enum { FAKE_TRAIN = 5, FAKE_TEST = 3 };

static void write_images(const char *dir, const char *name, uint32_t count, uint32_t rows,
                         bool gz) {
    char path[512];
    size_t len;
    uint8_t *buf = make_idx(0x08, 3, (uint32_t[]){count, rows, 28}, 0, &len);
    size_t pixels = (size_t)count * rows * 28;
    buf = realloc(buf, len + pixels);
    for (size_t i = 0; i < pixels; i++) buf[len + i] = (uint8_t)(i / 784 * 31 + i);
    write_any(path_in(path, dir, name), gz, buf, len + pixels);
    free(buf);
}

/* labels (3 i + 1) mod 10, except bad_index (if >= 0) which gets 10 */
static void write_labels(const char *dir, const char *name, uint32_t count, int bad_index,
                         bool gz) {
    char path[512];
    size_t len;
    uint8_t *buf = make_idx(0x08, 1, (uint32_t[]){count}, count, &len);
    for (uint32_t i = 0; i < count; i++) buf[8 + i] = (int)i == bad_index ? 10 : (3 * i + 1) % 10;
    write_any(path_in(path, dir, name), gz, buf, len);
    free(buf);
}

/* train as .gz, test raw (both forms are accepted), unless all_gz */
static void write_fake_mnist(const char *dir, bool all_gz) {
    write_images(dir, "train-images-idx3-ubyte.gz", FAKE_TRAIN, 28, true);
    write_labels(dir, "train-labels-idx1-ubyte.gz", FAKE_TRAIN, -1, true);
    write_images(dir, all_gz ? "t10k-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte", FAKE_TEST,
                 28, all_gz);
    write_labels(dir, all_gz ? "t10k-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte", FAKE_TEST,
                 -1, all_gz);
}

static void check_fake_split(const kc_dataset *ds, int count) {
    cr_assert_eq(ds->count, count);
    cr_assert(ds->x_shape.rank == 2 && ds->x_shape.dims[0] == 28 && ds->x_shape.dims[1] == 28);
    cr_assert(ds->x_dtype == KC_UINT8 && ds->x_scale == 0.0f && ds->x == ds->owned_x);
    cr_assert(ds->y_shape.rank == 0 && ds->y_dtype == KC_UINT8 && ds->y == ds->owned_y);
    cr_assert_eq(ds->num_classes, 10);
    const uint8_t *x = ds->x, *y = ds->y;
    for (int i = 0; i < count; i++) cr_assert_eq(y[i], (3 * i + 1) % 10);
    cr_assert_eq(x[784 * 2 + 5], (uint8_t)(2 * 31 + 784 * 2 + 5));
}

static void expect_zeroed(const kc_dataset *ds) {
    static const kc_dataset zero;
    cr_assert(memcmp(ds, &zero, sizeof zero) == 0, "dataset not left zeroed on error");
}

Test(mnist, fake_files) {
    char *dir = tu_tmpdir();
    write_fake_mnist(dir, false);
    kc_dataset train, test;
    KC_CHECK(kc_mnist_load(dir, &train, &test));
    check_fake_split(&train, FAKE_TRAIN);
    check_fake_split(&test, FAKE_TEST);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
    expect_zeroed(&train);
    rm_tree(dir);
}

Test(mnist, count_mismatch) {
    char *dir = tu_tmpdir();
    write_fake_mnist(dir, false);
    write_labels(dir, "t10k-labels-idx1-ubyte", 2, -1, false);
    kc_dataset train, test;
    KC_EXPECT_ERR(kc_mnist_load(dir, &train, &test), KC_EFORMAT,
                  "t10k-images-idx3-ubyte holds 3 images but ");
    cr_assert(strstr(kc_last_error(), "t10k-labels-idx1-ubyte holds 2 labels"), "%s", kc_last_error());
    expect_zeroed(&train); /* train had loaded fine: it must be released again */
    expect_zeroed(&test);
    rm_tree(dir);
}

Test(mnist, label_out_of_range) {
    char *dir = tu_tmpdir();
    write_fake_mnist(dir, false);
    write_labels(dir, "train-labels-idx1-ubyte.gz", FAKE_TRAIN, 2, true);
    kc_dataset train, test;
    KC_EXPECT_ERR(kc_mnist_load(dir, &train, &test), KC_EFORMAT,
                  "train-labels-idx1-ubyte.gz: label 10 of sample 2 (byte offset 10) is not a digit");
    expect_zeroed(&train);
    expect_zeroed(&test);
    rm_tree(dir);
}

Test(mnist, wrong_image_dims) {
    char *dir = tu_tmpdir();
    write_fake_mnist(dir, false);
    write_images(dir, "train-images-idx3-ubyte.gz", FAKE_TRAIN, 27, true);
    kc_dataset train, test;
    KC_EXPECT_ERR(kc_mnist_load(dir, &train, &test), KC_EFORMAT,
                  "train-images-idx3-ubyte.gz: MNIST images must have shape (N, 28, 28), found (5, 27, 28)");
    expect_zeroed(&train);
    rm_tree(dir);
}

Test(mnist, labels_with_wrong_rank) {
    char *dir = tu_tmpdir();
    write_fake_mnist(dir, false);
    write_images(dir, "t10k-labels-idx1-ubyte", FAKE_TEST, 28, false);
    kc_dataset train, test;
    KC_EXPECT_ERR(kc_mnist_load(dir, &train, &test), KC_EFORMAT,
                  "t10k-labels-idx1-ubyte: MNIST labels must have rank 1 (N), found rank 3");
    rm_tree(dir);
}

Test(mnist, dir_missing_a_file) {
    char *dir = tu_tmpdir();
    char path[512];
    write_fake_mnist(dir, false);
    cr_assert_eq(unlink(path_in(path, dir, "t10k-labels-idx1-ubyte")), 0);
    kc_dataset train, test;
    KC_EXPECT_ERR(kc_mnist_load(dir, &train, &test), KC_EIO,
                  "holds neither t10k-labels-idx1-ubyte.gz nor t10k-labels-idx1-ubyte");
    cr_assert(strstr(kc_last_error(), dir));
    expect_zeroed(&train);
    KC_EXPECT_ERR(kc_mnist_load("/nonexistent/kerac", &train, &test), KC_EIO, "/nonexistent/kerac");
    rm_tree(dir);
}

Test(mnist, kerac_data_dir, .init = env_save, .fini = env_restore) {
    char *root = tu_tmpdir();
    char mnist[512];
    cr_assert_eq(mkdir(path_in(mnist, root, "mnist"), 0755), 0);
    write_fake_mnist(mnist, false);
    setenv("KERAC_DATA", root, 1);
    setenv("KERAC_MNIST_URL", "file:///nonexistent/", 1); /* a download attempt would fail */
    kc_dataset train, test;
    KC_CHECK(kc_mnist_load(NULL, &train, &test));
    check_fake_split(&train, FAKE_TRAIN);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
    rm_tree(root);
}

/* Files already in the cache dir are used as they are; $KERAC_DATA without them falls through. */
static void check_cache_lookup(bool use_xdg) {
    char *root = tu_tmpdir();
    char cache[512];
    snprintf(cache, sizeof cache, "%s/%s/kerac/mnist", root, use_xdg ? "xdg" : ".cache");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", cache);
    cr_assert_eq(system(cmd), 0);
    write_fake_mnist(cache, true);
    setenv("KERAC_DATA", root, 1); /* root/mnist does not exist */
    setenv("HOME", root, 1);
    char xdg[512];
    if (use_xdg) setenv("XDG_CACHE_HOME", path_in(xdg, root, "xdg"), 1);
    else unsetenv("XDG_CACHE_HOME");
    setenv("KERAC_MNIST_URL", "file:///nonexistent/", 1);
    kc_dataset train, test;
    KC_CHECK(kc_mnist_load(NULL, &train, &test));
    check_fake_split(&test, FAKE_TEST);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
    rm_tree(root);
}
Test(mnist, cache_xdg, .init = env_save, .fini = env_restore) { check_cache_lookup(true); }
Test(mnist, cache_home, .init = env_save, .fini = env_restore) { check_cache_lookup(false); }

/* The fake files' hashes are not MNIST's: the download must fail and leave the cache empty. */
Test(mnist, download_unverified_is_never_trusted, .init = env_save, .fini = env_restore) {
    char *root = tu_tmpdir();
    char source[512], xdg[512], cache[600], url[600];
    cr_assert_eq(mkdir(path_in(source, root, "source"), 0755), 0);
    write_fake_mnist(source, true);
    unsetenv("KERAC_DATA");
    setenv("HOME", root, 1);
    setenv("XDG_CACHE_HOME", path_in(xdg, root, "xdg"), 1);
    snprintf(url, sizeof url, "file://%s", source); /* no trailing slash: one is added */
    setenv("KERAC_MNIST_URL", url, 1);
    kc_dataset train, test;
    KC_EXPECT_ERR(kc_mnist_load(NULL, &train, &test), KC_ENET, "did not verify");
    cr_assert(strstr(kc_last_error(), "train-images-idx3-ubyte.gz"), "%s", kc_last_error());
    cr_assert(strstr(kc_last_error(), "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"));
    expect_zeroed(&train);
    expect_zeroed(&test);
    snprintf(cache, sizeof cache, "%s/kerac/mnist", xdg);
    cr_assert_eq(count_entries(cache), 0, "files left in %s", cache);

    /* an unreachable source is a network error too */
    setenv("KERAC_MNIST_URL", "file:///nonexistent/kerac/", 1);
    KC_EXPECT_ERR(kc_mnist_load(NULL, &train, &test), KC_ENET,
                  "file:///nonexistent/kerac/train-images-idx3-ubyte.gz");
    cr_assert_eq(count_entries(cache), 0);
    rm_tree(root);
}

Test(mnist, real_data) {
    const char *data = getenv("KERAC_DATA");
    if (!data || !data[0]) cr_skip_test("KERAC_DATA is not set");
    kc_dataset train, test;
    KC_CHECK(kc_mnist_load(NULL, &train, &test));
    cr_assert_eq(train.count, 60000);
    cr_assert_eq(test.count, 10000);
    cr_assert_eq(((uint8_t *)train.y)[0], 5);
    cr_assert_eq(((uint8_t *)test.y)[0], 7);
    int64_t sum = 0;
    for (int i = 0; i < 784; i++) sum += ((uint8_t *)train.x)[i];
    cr_assert_eq(sum, 27525);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
}

/* ---- verified download ---------------------------------------------------------------------- */

Test(download, sha256_file) {
    char *dir = tu_tmpdir();
    char hex[65];
    KC_CHECK(kc_sha256_file(write_bytes(dir, "abc", "abc", 3), hex));
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    KC_EXPECT_ERR(kc_sha256_file("/nonexistent/kerac", hex), KC_EIO, "/nonexistent/kerac");
    rm_tree(dir);
}

/* source/payload (100 KB) and an empty dest/ directory */
static void make_payload(const char *root, char url[600], char hex[65], char dest[512]) {
    char src[512], dest_dir[512];
    static uint8_t payload[100000];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 131 + i / 977);
    tu_write_file(path_in(src, root, "payload"), payload, sizeof payload);
    KC_CHECK(kc_sha256_file(src, hex));
    snprintf(url, 600, "file://%s", src);
    cr_assert_eq(mkdir(path_in(dest_dir, root, "dest"), 0755), 0);
    path_in(dest, dest_dir, "payload.copy");
}

Test(download, verified) {
    char *root = tu_tmpdir();
    char url[600], hex[65], dest[512], copy_hex[65], dest_dir[512];
    make_payload(root, url, hex, dest);
    KC_CHECK(kc_download_verified(url, hex, dest));
    KC_CHECK(kc_sha256_file(dest, copy_hex));
    cr_assert_str_eq(copy_hex, hex);
    cr_assert_eq(count_entries(path_in(dest_dir, root, "dest")), 1, "temp files left behind");
    rm_tree(root);
}

Test(download, wrong_hash) {
    char *root = tu_tmpdir();
    char url[600], hex[65], dest[512], dest_dir[512];
    make_payload(root, url, hex, dest);
    hex[0] = hex[0] == '0' ? '1' : '0';
    KC_EXPECT_ERR(kc_download_verified(url, hex, dest), KC_ENET, "did not verify");
    cr_assert(strstr(kc_last_error(), url) && strstr(kc_last_error(), hex), "%s", kc_last_error());
    cr_assert_neq(access(dest, F_OK), 0);
    cr_assert_eq(count_entries(path_in(dest_dir, root, "dest")), 0, "temp files left behind");
    rm_tree(root);
}

Test(download, missing_source) {
    char *root = tu_tmpdir();
    char url[600], hex[65], dest[512], dest_dir[512];
    make_payload(root, url, hex, dest);
    strcat(url, ".missing");
    KC_EXPECT_ERR(kc_download_verified(url, hex, dest), KC_ENET, url);
    cr_assert_eq(count_entries(path_in(dest_dir, root, "dest")), 0, "temp files left behind");
    KC_EXPECT_ERR(kc_download_verified(url, "abc", dest), KC_EINVAL, "SHA-256");
    rm_tree(root);
}

/* ---- shapes and datasets -------------------------------------------------------------------- */

Test(dataset, shapes) {
    char buf[64];
    cr_assert_str_eq(kc_shape_str(kc_shape2(28, 28), buf, sizeof buf), "(28, 28)");
    cr_assert_str_eq(kc_shape_str(kc_shape1(784), buf, sizeof buf), "(784)");
    cr_assert_str_eq(kc_shape_str(kc_shape3(1, 2, 3), buf, sizeof buf), "(1, 2, 3)");
    cr_assert_str_eq(kc_shape_str((kc_shape){0}, buf, sizeof buf), "()");
    cr_assert_str_eq(kc_shape_str(kc_shape3(100, 200, 300), buf, 8), "(100, 2"); /* truncated */
    cr_assert_eq(kc_shape_size(kc_shape3(2, 3, 4)), 24);
    cr_assert_eq(kc_shape_size((kc_shape){0}), 1);
}

static uint8_t pixels[6 * 4];
static kc_dataset borrowed(void) {
    return (kc_dataset){.count = 6, .x_shape = kc_shape2(2, 2), .x_dtype = KC_UINT8, .x = pixels};
}

Test(dataset, reshape) {
    kc_dataset ds = borrowed();
    KC_CHECK(kc_dataset_reshape(&ds, kc_shape1(4)));
    cr_assert(ds.x_shape.rank == 1 && ds.x_shape.dims[0] == 4);
    ds.x_shape = kc_shape2(28, 28);
    KC_EXPECT_ERR(kc_dataset_reshape(&ds, kc_shape1(785)), KC_EINVAL,
                  "cannot reshape samples of shape (28, 28) (784 values) into (785) (785 values)");
    KC_EXPECT_ERR(kc_dataset_reshape(&ds, kc_shape2(-28, -28)), KC_EINVAL, "invalid shape (-28, -28)");
    cr_assert_eq(ds.x_shape.dims[1], 28);
}

Test(dataset, scale) {
    kc_dataset ds = borrowed();
    KC_CHECK(kc_dataset_scale(&ds, 1.0f / 255));
    cr_assert_float_eq(ds.x_scale, 1.0f / 255, 1e-9);
    KC_CHECK(kc_dataset_scale(&ds, 2.0f));
    cr_assert_float_eq(ds.x_scale, 2.0f / 255, 1e-9);
    KC_EXPECT_ERR(kc_dataset_scale(&ds, 0.0f), KC_EINVAL, "nonzero");
    KC_EXPECT_ERR(kc_dataset_scale(&ds, NAN), KC_EINVAL, "finite");
}

static void check_one_hot(const float *rows, const int *labels, int n, int classes) {
    for (int i = 0; i < n; i++)
        for (int c = 0; c < classes; c++)
            cr_assert_eq(rows[i * classes + c], c == labels[i] ? 1.0f : 0.0f, "row %d class %d", i, c);
}

Test(dataset, to_categorical_uint8_owned) {
    kc_dataset ds = borrowed();
    uint8_t *y = malloc(6);
    memcpy(y, (uint8_t[]){0, 3, 1, 2, 3, 0}, 6);
    ds.y = ds.owned_y = y;
    ds.y_dtype = KC_UINT8;
    KC_CHECK(kc_to_categorical(&ds, 4)); /* the old labels are freed (ASan would notice) */
    cr_assert(ds.y_dtype == KC_FLOAT32 && ds.y_shape.rank == 1 && ds.y_shape.dims[0] == 4);
    cr_assert(ds.y == ds.owned_y && ds.num_classes == 4);
    check_one_hot(ds.y, (int[]){0, 3, 1, 2, 3, 0}, 6, 4);
    KC_EXPECT_ERR(kc_to_categorical(&ds, 4), KC_EINVAL, "already float");
    kc_dataset_free(&ds);
}

Test(dataset, to_categorical_int32_borrowed) {
    kc_dataset ds = borrowed();
    int32_t y[6] = {9, 0, 5, 5, 1, 2};
    ds.y = y;
    ds.y_dtype = KC_INT32;
    KC_CHECK(kc_to_categorical(&ds, 10));
    check_one_hot(ds.y, (int[]){9, 0, 5, 5, 1, 2}, 6, 10);
    cr_assert_eq(y[0], 9); /* borrowed labels are left alone */
    kc_dataset_free(&ds);
}

Test(dataset, to_categorical_errors) {
    kc_dataset ds = borrowed();
    int32_t y[6] = {0, 1, 2, 10, 1, 0};
    ds.y = y;
    ds.y_dtype = KC_INT32;
    KC_EXPECT_ERR(kc_to_categorical(&ds, 10), KC_EINVAL, "label 10 of sample 3 is outside [0, 10)");
    cr_assert(ds.y == y && ds.y_dtype == KC_INT32); /* unchanged on error */
    y[3] = -1;
    KC_EXPECT_ERR(kc_to_categorical(&ds, 10), KC_EINVAL, "label -1 of sample 3");
    KC_EXPECT_ERR(kc_to_categorical(&ds, 0), KC_EINVAL, "num_classes is 0");
    ds.y_shape = kc_shape1(3);
    KC_EXPECT_ERR(kc_to_categorical(&ds, 10), KC_EINVAL, "labels of shape (3)");
    ds.y = NULL;
    KC_EXPECT_ERR(kc_to_categorical(&ds, 10), KC_EINVAL, "no labels");
}

Test(dataset, to_categorical_array) {
    float out[4 * 3];
    KC_CHECK(kc_to_categorical_array((int32_t[]){2, 0, 1, 2}, 4, 3, out));
    check_one_hot(out, (int[]){2, 0, 1, 2}, 4, 3);
    KC_EXPECT_ERR(kc_to_categorical_array((int32_t[]){0, 3}, 2, 3, out), KC_EINVAL,
                  "label 3 of sample 1 is outside [0, 3)");
    KC_EXPECT_ERR(kc_to_categorical_array((int32_t[]){0}, 1, -2, out), KC_EINVAL, "num_classes is -2");
}
