/* test_h5lite.c: h5lite (src/io/h5lite.c), kerac's bounds-checked HDF5 reader. Every fixture
 * (each .h5 under tests/fixtures and each .keras's model.weights.h5) read by h5lite gives the
 * groups, attributes and datasets libhdf5 gives; crafted files (truncated, bytes flipped,
 * huge sizes, a continuation loop, a group that contains itself) are refused quickly. */
#include "testutil.h"
#include "io/io.h"
#include <ftw.h>
#include <pthread.h>
#include <hdf5.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- the fixtures ---- */

#define MAX_FILES 512
static char *files[MAX_FILES];
static int n_files;

static int collect(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    if (type == FTW_F && n_files < MAX_FILES &&
        (kc_io_ends_with(path, ".h5") || kc_io_ends_with(path, ".hdf5") ||
         kc_io_ends_with(path, ".keras")))
        files[n_files++] = strdup(path);
    return 0;
}

static void free_files(void) {
    for (int i = 0; i < n_files; i++) free(files[i]);
    n_files = 0;
}

/* the HDF5 bytes of a fixture (a .keras's model.weights.h5); NULL for a .keras without one */
static void *h5_bytes(const char *path, size_t *size) {
    void *data;
    size_t n;
    cr_assert_eq(kc_io_read_file(path, &data, &n), KC_OK, "%s", kc_last_error());
    if (!kc_io_ends_with(path, ".keras")) {
        *size = n;
        return data;
    }
    void *h5 = NULL;
    kc_status st = kc_zip_read(path, data, n, "model.weights.h5", &h5, size);
    free(data);
    return st ? NULL : h5;
}

/* ---- the cross-check against libhdf5 ---- */

typedef struct {
    char names[4096][128];
    int n;
} name_list;

static herr_t add_name(hid_t g, const char *name, const H5L_info_t *info, void *ctx) {
    name_list *l = ctx;
    if (l->n < 4096) snprintf(l->names[l->n++], 128, "%s", name);
    return 0;
}

static herr_t add_attr_name(hid_t o, const char *name, const H5A_info_t *info, void *ctx) {
    name_list *l = ctx;
    if (l->n < 4096) snprintf(l->names[l->n++], 128, "%s", name);
    return 0;
}

static int n_compared;

static void cross(hid_t obj, const kc_h5l_node *n, const char *where) {
    /* attributes: the same names, the same values */
    name_list *al = calloc(1, sizeof *al);
    H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, NULL, add_attr_name, al);
    cr_assert_eq(kc_h5l_n_attrs(n), al->n, "%s: %d attributes, libhdf5 says %d", where,
                 kc_h5l_n_attrs(n), al->n);
    for (int i = 0; i < al->n; i++) {
        const char *an = al->names[i];
        int k = kc_h5l_attr_index(n, an);
        cr_assert(k >= 0, "%s: attribute %s missing", where, an);
        kc_h5l_class cls;
        size_t elem;
        int rank;
        int64_t dims[32], count;
        kc_h5l_attr_info(n, k, &cls, &elem, &rank, dims, &count);
        hid_t a = H5Aopen(obj, an, H5P_DEFAULT), sp = H5Aget_space(a), t = H5Aget_type(a);
        cr_assert_eq(rank, H5Sget_simple_extent_ndims(sp), "%s@%s: rank", where, an);
        cr_assert_eq(count, H5Sget_simple_extent_npoints(sp), "%s@%s: count", where, an);
        if (H5Tget_class(t) == H5T_STRING) {
            cr_assert(cls == KC_H5L_STRING || cls == KC_H5L_VLEN_STRING);
            int n1 = 0, n2 = 0;
            char **l1 = kc_h5_read_attr_str_list(obj, an, &n1);
            char **l2 = kc_h5l_attr_strs(n, an, &n2);
            cr_assert(l1 && l2, "%s@%s: strings unreadable: %s", where, an, kc_last_error());
            cr_assert_eq(n1, n2);
            for (int j = 0; j < n1; j++)
                cr_assert_str_eq(l1[j], l2[j], "%s@%s[%d]", where, an, j);
            kc_h5_free_list(l1, n1);
            kc_h5_free_list(l2, n2);
        } else {
            cr_assert(cls == KC_H5L_INT || cls == KC_H5L_FLOAT, "%s@%s: class %d", where, an, cls);
            double *v1 = calloc((size_t)count + 1, sizeof *v1), *v2 = calloc((size_t)count + 1, sizeof *v2);
            int64_t got = -1;
            cr_assert(H5Aread(a, H5T_NATIVE_DOUBLE, v1) >= 0);
            cr_assert_eq(kc_h5l_attr_f64(n, an, v2, count, &got), KC_OK);
            cr_assert_eq(got, count);
            cr_assert(!memcmp(v1, v2, sizeof *v1 * (size_t)count), "%s@%s: values differ", where, an);
            free(v1);
            free(v2);
        }
        H5Tclose(t);
        H5Sclose(sp);
        H5Aclose(a);
        n_compared++;
    }
    free(al);
    if (H5Iget_type(obj) == H5I_DATASET) {
        cr_assert(!kc_h5l_is_group(n), "%s: a group, libhdf5 says a dataset", where);
        kc_h5l_class cls;
        size_t elem;
        int rank;
        int64_t dims[32];
        kc_h5l_dset_info(n, &cls, &elem, &rank, dims);
        hid_t sp = H5Dget_space(obj);
        hsize_t d[32];
        cr_assert_eq(rank, H5Sget_simple_extent_ndims(sp), "%s: rank", where);
        H5Sget_simple_extent_dims(sp, d, NULL);
        int64_t count = 1;
        for (int i = 0; i < rank; i++) {
            cr_assert_eq((int64_t)d[i], dims[i], "%s: dim %d", where, i);
            count *= dims[i];
        }
        H5Sclose(sp);
        double *v1 = calloc((size_t)count + 1, sizeof *v1), *v2 = calloc((size_t)count + 1, sizeof *v2);
        cr_assert(H5Dread(obj, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v1) >= 0);
        cr_assert_eq(kc_h5l_dset_f64(n, v2, count), KC_OK);
        cr_assert(!memcmp(v1, v2, sizeof *v1 * (size_t)count), "%s: values differ", where);
        free(v1);
        free(v2);
        n_compared++;
        return;
    }
    cr_assert(kc_h5l_is_group(n), "%s: not a group", where);
    name_list *l = calloc(1, sizeof *l);
    H5Literate(obj, H5_INDEX_NAME, H5_ITER_INC, NULL, add_name, l);
    cr_assert_eq(kc_h5l_n_children(n), l->n, "%s: %d links, libhdf5 says %d", where,
                 kc_h5l_n_children(n), l->n);
    for (int i = 0; i < l->n; i++) {
        cr_assert_str_eq(kc_h5l_child_name(n, i), l->names[i], "%s: link %d", where, i);
        hid_t c = H5Oopen(obj, l->names[i], H5P_DEFAULT);
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", where, l->names[i]);
        cross(c, kc_h5l_child(n, i), sub);
        H5Oclose(c);
    }
    free(l);
}

Test(h5lite, every_fixture_reads_as_libhdf5_reads_it, .timeout = 300) {
    nftw("tests/fixtures", collect, 16, FTW_PHYS);
    cr_assert(n_files > 100, "only %d fixtures", n_files);
    int checked = 0;
    for (int i = 0; i < n_files; i++) {
        size_t size;
        void *data = h5_bytes(files[i], &size);
        if (!data) continue;
        kc_h5l_file *lf = kc_h5l_open(files[i], data, size);
        cr_assert_not_null(lf, "%s", kc_last_error());
        hid_t f = kc_h5_open_image(files[i], data, size);
        cr_assert(f >= 0);
        cross(f, kc_h5l_root(lf), files[i]);
        H5Fclose(f);
        kc_h5l_close(lf);
        free(data);
        checked++;
    }
    cr_assert(checked > 100 && n_compared > 1000, "%d files, %d objects", checked, n_compared);
    free_files();
}

/* ---- crafted files ---- */

/* reads everything h5lite can read of a file: returns 0 when the file opened */
static int read_all_of(const kc_h5l_node *n, int depth) {
    cr_assert(depth < 100);
    for (int i = 0; i < kc_h5l_n_attrs(n); i++) {
        const char *an = kc_h5l_attr_name(n, i);
        int cnt = 0;
        char **l = kc_h5l_attr_strs(n, an, &cnt);
        kc_h5_free_list(l, cnt);
        double v[4];
        int64_t c;
        kc_h5l_attr_f64(n, an, v, 4, &c);
    }
    if (!kc_h5l_is_group(n)) {
        kc_h5l_class cls;
        size_t elem;
        int rank;
        int64_t dims[32], count = 1;
        kc_h5l_dset_info(n, &cls, &elem, &rank, dims);
        for (int i = 0; i < rank; i++) count *= dims[i];
        float *buf = malloc(sizeof(float) * (size_t)(count + 1));
        cr_assert_not_null(buf);
        kc_h5l_dset_f32(n, buf, count);
        free(buf);
        return 0;
    }
    for (int i = 0; i < kc_h5l_n_children(n); i++) read_all_of(kc_h5l_child(n, i), depth + 1);
    return 0;
}

static double worst;

/* opens and reads bytes; 1 when refused (the error names the file) */
static int try_bytes(const void *data, size_t size) {
    double t0 = now();
    kc_h5l_file *f = kc_h5l_open("crafted.h5", data, size);
    if (f) {
        read_all_of(kc_h5l_root(f), 0);
        kc_h5l_close(f);
    } else
        cr_assert(strstr(kc_last_error(), "crafted.h5"), "%s", kc_last_error());
    double t = now() - t0;
    if (t > worst) worst = t;
    cr_assert(t < 1.0, "%.2f s to read a crafted file", t);
    return f == NULL;
}

static uint64_t u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

#define LEGACY "tests/fixtures/saved/tf2_rmsprop.h5"
#define KERAS "tests/fixtures/saved/k3_adam.keras"

Test(h5lite, truncated_files_are_refused, .timeout = 300) {
    const char *srcs[] = {LEGACY, KERAS};
    for (int s = 0; s < 2; s++) {
        size_t size;
        unsigned char *data = h5_bytes(srcs[s], &size);
        cr_assert_not_null(data);
        int refused = 0, tries = 0;
        size_t step = size / 300 + 1;
        for (size_t cut = 0; cut < size; cut += cut < 4096 ? 7 : step) {
            unsigned char *copy = malloc(cut + 1); /* exactly cut bytes: ASan sees any over-read */
            memcpy(copy, data, cut);
            refused += try_bytes(copy, cut);
            tries++;
            free(copy);
        }
        cr_expect_eq(refused, tries, "%s: %d of %d truncations read", srcs[s], tries - refused, tries);
        free(data);
    }
}

Test(h5lite, flipped_bytes_never_crash, .timeout = 600) {
    const char *srcs[] = {LEGACY, KERAS};
    for (int s = 0; s < 2; s++) {
        size_t size;
        unsigned char *data = h5_bytes(srcs[s], &size);
        cr_assert_not_null(data);
        unsigned char *copy = malloc(size);
        int refused = 0, tries = 0;
        /* every byte of the metadata at the start; then a stride over the rest */
        for (size_t at = 0; at < size; at += at < 6000 ? 1 : 13)
            for (int v = 0; v < 3; v++) {
                memcpy(copy, data, size);
                copy[at] = v == 0 ? copy[at] ^ 0xff : v == 1 ? 0x7f : copy[at] + 1;
                refused += try_bytes(copy, size);
                tries++;
            }
        srand(5);
        for (int round = 0; round < 3000; round++) { /* several bytes at once */
            memcpy(copy, data, size);
            for (int k = 0; k < 4; k++) copy[(size_t)rand() % size] = (unsigned char)rand();
            refused += try_bytes(copy, size);
            tries++;
        }
        cr_expect(refused > 0, "%s: no flip was refused", srcs[s]);
        fprintf(stderr, "%s: %d of %d damaged copies refused, slowest %.4f s\n", srcs[s], refused,
                    tries, worst);
        free(copy);
        free(data);
    }
}

/* the root group's object header address (superblock v0, 8-byte offsets) */
static uint64_t root_addr(const unsigned char *d) { return u64(d + 64); }

/* the first message of type `type` in the v1 object header at addr (continuations followed):
 * its data's offset */
static size_t find_msg(const unsigned char *d, size_t size, uint64_t addr, int type, int *msize) {
    uint64_t start[16], len[16];
    int n = 1;
    start[0] = addr + 16;
    len[0] = (uint32_t)(d[addr + 8] | d[addr + 9] << 8 | d[addr + 10] << 16 | (uint32_t)d[addr + 11] << 24);
    for (int c = 0; c < n; c++)
        for (size_t p = start[c]; p + 8 <= start[c] + len[c] && p + 8 <= size;) {
            int t = d[p] | d[p + 1] << 8, sz = d[p + 2] | d[p + 3] << 8;
            if (t == type) {
                *msize = sz;
                return p + 8;
            }
            if (t == 0x10 && n < 16) {
                start[n] = u64(d + p + 8);
                len[n++] = u64(d + p + 16);
            }
            p += 8 + (size_t)sz;
        }
    return 0;
}

static void expect_refused(const unsigned char *d, size_t size, const char *needle) {
    cr_assert(try_bytes(d, size), "a crafted file was read (%s)", needle);
    cr_assert(strstr(kc_last_error(), needle), "\"%s\" lacks \"%s\"", kc_last_error(), needle);
}

Test(h5lite, crafted_structures_are_refused) {
    size_t size;
    unsigned char *data = h5_bytes(LEGACY, &size);
    unsigned char *c = malloc(size);
    uint64_t root = root_addr(data);

    /* a group that contains itself: a symbol node's entry names the root */
    memcpy(c, data, size);
    unsigned char *snod = memmem(c, size, "SNOD", 4);
    cr_assert_not_null(snod);
    put64(snod + 8 + 8, root);
    expect_refused(c, size, "reached twice");

    /* a continuation loop: the root's symbol table message becomes a continuation to the
     * root's own messages */
    memcpy(c, data, size);
    int ms;
    size_t m = find_msg(c, size, root, 0x11, &ms);
    cr_assert(m && ms >= 16);
    c[m - 8] = 0x10;
    put64(c + m, root + 16);
    put64(c + m + 8, 24); /* the root's first chunk: the continuation to this one */
    expect_refused(c, size, "continuation loop");

    /* a B-tree whose child is itself */
    memcpy(c, data, size);
    unsigned char *tree = memmem(c, size, "TREE", 4);
    cr_assert_not_null(tree);
    tree[5] = 1; /* level 1: its children are B-tree nodes */
    put64(tree + 8 + 16 + 8, (uint64_t)(tree - c));
    expect_refused(c, size, "B-tree");

    /* a huge declared size: the first dataset's contiguous layout claims 2^40 bytes */
    memcpy(c, data, size);
    int done = 0;
    for (size_t p = 0; p + 20 < size && !done; p++)
        if (c[p] == 8 && c[p + 1] == 0 && c[p + 2] == 24 && c[p + 8] == 3 && c[p + 9] == 1) {
            put64(c + p + 8 + 2 + 8, (uint64_t)1 << 40);
            done = 1;
        }
    cr_assert(done, "no contiguous layout message found");
    expect_refused(c, size, "outside the file");

    /* a dataspace of 2^47 x 2^47 elements */
    memcpy(c, data, size);
    done = 0;
    for (size_t p = 0; p + 40 < size && !done; p++)
        if (c[p] == 1 && c[p + 1] == 0 && c[p + 8] == 1 && c[p + 9] == 2) {
            put64(c + p + 16, (uint64_t)1 << 47);
            put64(c + p + 24, (uint64_t)1 << 47);
            done = 1;
        }
    cr_assert(done, "no rank-2 dataspace found");
    cr_assert(try_bytes(c, size));

    /* a global heap collection that claims the whole address space */
    memcpy(c, data, size);
    unsigned char *gcol = memmem(c, size, "GCOL", 4);
    cr_assert_not_null(gcol);
    put64(gcol + 8, ~(uint64_t)0 >> 1);
    kc_h5l_file *f = kc_h5l_open("crafted.h5", c, size);
    cr_assert_not_null(f); /* the heap is read when a string is */
    cr_assert_null(kc_h5l_attr_str(kc_h5l_root(f), "model_config"));
    cr_assert(strstr(kc_last_error(), "global heap"), "%s", kc_last_error());
    kc_h5l_close(f);

    /* a local heap whose data segment lies beyond the file */
    memcpy(c, data, size);
    unsigned char *heap = memmem(c, size, "HEAP", 4);
    cr_assert_not_null(heap);
    put64(heap + 8, (uint64_t)size * 4);
    expect_refused(c, size, "local heap");

    /* libver='latest' features are named */
    memcpy(c, data, size);
    c[8] = 2;
    expect_refused(c, size, "superblock version 2");
    free(c);
    free(data);
}

Test(h5lite, kc_load_refuses_crafted_files_in_process) {
    /* the load path is h5lite: no child process, a clear error naming the file */
    size_t size;
    unsigned char *data = h5_bytes(LEGACY, &size);
    unsigned char *snod = memmem(data, size, "SNOD", 4);
    put64(snod + 16, root_addr(data));
    char *dir = tu_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/loop.h5", dir);
    tu_write_file(path, data, size);
    kc_model *m = NULL;
    KC_EXPECT_ERR(kc_load(path, &m), KC_EFORMAT, "loop.h5: corrupt or crafted HDF5 file");
    cr_assert_null(m);
    free(data);
}

static int forks;
static void count_fork(void) { forks++; }

Test(h5lite, crafted_weights_inside_a_keras_file_and_no_fork) {
    /* a .keras whose model.weights.h5 holds a group that contains itself: refused by
     * kc_load, in this process (no fork: pthread_atfork would count one) */
    pthread_atfork(count_fork, NULL, NULL);
    void *zip, *parts[3];
    size_t zsize, psize[3];
    const char *names[3] = {"config.json", "metadata.json", "model.weights.h5"};
    cr_assert_eq(kc_io_read_file(KERAS, &zip, &zsize), KC_OK);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(kc_zip_read(KERAS, zip, zsize, names[i], &parts[i], &psize[i]), KC_OK);
    char *dir = tu_tmpdir(), good[256], bad[256];
    snprintf(good, sizeof good, "%s/good.keras", dir);
    snprintf(bad, sizeof bad, "%s/bad.keras", dir);
    tu_write_file(good, zip, zsize);
    kc_model *m = NULL;
    KC_CHECK(kc_load(good, &m));
    kc_model_free(m);
    m = NULL;
    unsigned char *w = parts[2];
    unsigned char *snod = memmem(w, psize[2], "SNOD", 4);
    cr_assert_not_null(snod);
    put64(snod + 16, root_addr(w));
    kc_zip_entry e[3];
    for (int i = 0; i < 3; i++) e[i] = (kc_zip_entry){names[i], parts[i], psize[i]};
    void *out;
    size_t osize;
    KC_CHECK(kc_zip_build(e, 3, &out, &osize));
    tu_write_file(bad, out, osize);
    KC_EXPECT_ERR(kc_load(bad, &m), KC_EFORMAT, "bad.keras (model.weights.h5): corrupt or crafted");
    cr_assert_null(m);
    /* the legacy .h5 and a weights file too */
    KC_CHECK(kc_load(LEGACY, &m));
    char wpath[256];
    snprintf(wpath, sizeof wpath, "%s/bad.weights.h5", dir);
    tu_write_file(wpath, w, psize[2]);
    KC_EXPECT_ERR(kc_load_weights(m, wpath), KC_EFORMAT, "bad.weights.h5: corrupt or crafted");
    kc_model_free(m);
    cr_assert_eq(forks, 0, "a load forked the process");
    free(out);
    for (int i = 0; i < 3; i++) free(parts[i]);
    free(zip);
}

/* a file libhdf5 writes with one feature outside the subset: refused, naming it */
static void expect_feature_refused(int latest, int chunked, int compound, const char *needle) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    if (latest) H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate("feature.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    hsize_t dims[1] = {16};
    hid_t sp = H5Screate_simple(1, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunked) {
        hsize_t ch[1] = {4};
        H5Pset_chunk(dcpl, 1, ch);
    }
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (compound) {
        H5Tclose(t);
        t = H5Tcreate(H5T_COMPOUND, 8);
        H5Tinsert(t, "a", 0, H5T_IEEE_F32LE);
        H5Tinsert(t, "b", 4, H5T_IEEE_F32LE);
    }
    hid_t d = H5Dcreate2(f, "x", t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    float zeros[32] = {0};
    H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros);
    H5Dclose(d);
    H5Tclose(t);
    H5Pclose(dcpl);
    H5Sclose(sp);
    void *img;
    size_t size;
    KC_CHECK(kc_h5_close_image(f, &img, &size));
    kc_h5l_file *lf = kc_h5l_open("feature.h5", img, size);
    cr_assert_null(lf, "a file with %s was read", needle);
    cr_assert(strstr(kc_last_error(), "feature.h5: HDF5 feature outside what kerac reads"),
              "%s", kc_last_error());
    cr_assert(strstr(kc_last_error(), needle), "\"%s\" lacks \"%s\"", kc_last_error(), needle);
    free(img);
}

Test(h5lite, features_keras_does_not_write_are_refused_by_name) {
    kc_h5_quiet();
    expect_feature_refused(1, 0, 0, "superblock version");
    expect_feature_refused(0, 1, 0, "chunked dataset layout");
    expect_feature_refused(0, 0, 1, "compound datatype");
}
