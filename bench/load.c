/* load.c (build/bench_load): how fast kerac loads data. Writes its own files into a temporary
 * folder (never the repository), times each loader over --rounds rounds after one untimed
 * warm-up (the page cache is warm for every timed read), and prints one JSON line per case
 * with the median seconds and the rate:
 *   npy_float32  kc_npy_load of a (60000, 1000) float32 .npy (240 MB)
 *   npy_uint8    kc_npy_load of the same shape as uint8 (60 MB)
 *   idx          kc_idx_read of an uncompressed (60000, 4000) uint8 IDX (240 MB, the bytes of
 *                npy_float32)
 *   idx_gz       kc_idx_read of MNIST's train-images-idx3-ubyte.gz (MB/s of output: the speed
 *                of decompression)
 *   png          kc_data_load of a folder of MNIST's 60,000 training images as 28x28 grayscale
 *                PNGs (kc_image_save_png, one subfolder per digit), on 1 thread and on all cores
 * Beside each file case, in the same rounds (alternating), the time of a plain read() of the
 * same file into a freshly allocated buffer (huge pages asked for, as NumPy does; read_s: the "disk speed" from the page cache, what
 * any loader must at least spend; kerac_over_read = the ratio of the medians) and into a
 * buffer reused and already touched (read_reused_s: the copy alone, no page faults).
 * For png the plain reads are of all 60,000 files (open, read, close).
 *     build/bench_load [--rounds 5] [--cases npy_float32,npy_uint8,idx,idx_gz,png]
 *                      [--mnist DIR] [--dir DIR [--keep]] [--write]
 * --mnist: the folder of MNIST's IDX .gz files (default $KERAC_DATA/mnist). --dir uses (and
 * fills when empty) DIR instead of a fresh temporary folder; --keep leaves the files there
 * (bench/compare_numpy_load.py); --write only writes them. Without --keep the files are removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kerac.h"

#define ROWS 60000
#define NPY_COLS 1000
#define IDX_COLS 4000
#define MAX_ROUNDS 101

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(const double *v, int n) {
    double s[MAX_ROUNDS];
    memcpy(s, v, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), cmp);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}
static void die(const char *what) {
    fprintf(stderr, "bench_load: %s: %s\n", what, kc_last_error());
    exit(1);
}
static void die_errno(const char *what) {
    fprintf(stderr, "bench_load: %s: %s\n", what, strerror(errno));
    exit(1);
}
static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}
static int64_t file_size(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) die_errno(path);
    return (int64_t)sb.st_size;
}

static void write_all(int fd, const void *buf, size_t n, const char *path) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            die_errno(path);
        }
        p += w, n -= (size_t)w;
    }
}
/* reads the whole file into buf (size bytes) with read(); returns the bytes read */
static int64_t read_into(const char *path, void *buf, int64_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) die_errno(path);
    int64_t got = 0;
    while (got < size) {
        size_t want = (size_t)(size - got < (1 << 30) ? size - got : (1 << 30));
        ssize_t r = read(fd, (char *)buf + got, want);
        if (r < 0) {
            if (errno == EINTR) continue;
            die_errno(path);
        }
        if (r == 0) break;
        got += r;
    }
    close(fd);
    return got;
}
/* a plain read() into a fresh 64-byte-aligned buffer, as a loader allocates its array, with
 * huge pages asked for as NumPy's allocator does for 4 MB and more (fewer page faults) */
static double time_read_fresh(const char *path, int64_t size) {
    double t0 = now();
    void *buf = NULL;
    if (posix_memalign(&buf, 64, (size_t)size) != 0) die_errno("posix_memalign");
    if (size >= (4 << 20)) {
        uintptr_t lo = ((uintptr_t)buf + 4095) & ~(uintptr_t)4095;
        uintptr_t hi = ((uintptr_t)buf + (size_t)size) & ~(uintptr_t)4095;
        if (hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
    if (read_into(path, buf, size) != size) die_errno(path);
    double t = now() - t0;
    free(buf);
    return t;
}

/* .npy version 1.0: magic, header length, the dict padded with spaces to 64 bytes, data */
static void write_npy(const char *path, const char *descr, int64_t rows, int64_t cols,
                      int elem) {
    char dict[256];
    int n = snprintf(dict, sizeof dict,
                     "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %lld), }", descr,
                     (long long)rows, (long long)cols);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    char header[320];
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    int hlen = n + pad + 1;
    header[8] = (char)(hlen & 0xff), header[9] = (char)(hlen >> 8);
    memcpy(header + 10, dict, (size_t)n);
    memset(header + 10 + n, ' ', (size_t)pad);
    header[10 + n + pad] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die_errno(path);
    write_all(fd, header, (size_t)(10 + hlen), path);
    size_t row_bytes = (size_t)cols * (size_t)elem;
    void *row = malloc(row_bytes);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) {
            uint32_t v = (uint32_t)(r * 7919 + c * 104729) % 251;
            if (elem == 4) ((float *)row)[c] = (float)v * 0.01f;
            else ((uint8_t *)row)[c] = (uint8_t)v;
        }
        write_all(fd, row, row_bytes, path);
    }
    free(row);
    if (close(fd) != 0) die_errno(path);
}

static void write_idx(const char *path, int64_t rows, int64_t cols) {
    uint8_t header[12] = {0, 0, 0x08, 2};
    uint32_t d[2] = {(uint32_t)rows, (uint32_t)cols};
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < 4; b++) header[4 + 4 * i + b] = (uint8_t)(d[i] >> (24 - 8 * b));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die_errno(path);
    write_all(fd, header, sizeof header, path);
    uint8_t *row = malloc((size_t)cols);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) row[c] = (uint8_t)((r * 31 + c * 17) % 256);
        write_all(fd, row, (size_t)cols, path);
    }
    free(row);
    if (close(fd) != 0) die_errno(path);
}

/* MNIST's training images as DIR/png/<digit>/<index>.png; returns the dataset (kept to check
 * the folder's load against it) */
static void write_pngs(const char *dir, const kc_dataset *train) {
    char path[4400];
    snprintf(path, sizeof path, "%s/png", dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) die_errno(path);
    for (int d = 0; d < 10; d++) {
        snprintf(path, sizeof path, "%s/png/%d", dir, d);
        if (mkdir(path, 0755) != 0 && errno != EEXIST) die_errno(path);
    }
    const uint8_t *x = train->x, *y = train->y;
    for (int64_t i = 0; i < train->count; i++) {
        kc_image img = {28, 28, 1, (uint8_t *)x + i * 784};
        snprintf(path, sizeof path, "%s/png/%d/%05lld.png", dir, y[i], (long long)i);
        if (kc_image_save_png(path, &img) != KC_OK) die(path);
    }
}

/* the png folder's files in kc_data_load's unshuffled order (class folders, names sorted) */
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}
static int64_t list_pngs(const char *dir, char ***out) {
    int64_t n = 0, cap = 65536;
    char **paths = malloc(sizeof(char *) * (size_t)cap);
    for (int d = 0; d < 10; d++) {
        char sub[4400];
        snprintf(sub, sizeof sub, "%s/png/%d", dir, d);
        DIR *dp = opendir(sub);
        if (!dp) die_errno(sub);
        int64_t first = n;
        struct dirent *e;
        while ((e = readdir(dp))) {
            if (!strstr(e->d_name, ".png")) continue;
            if (n == cap) paths = realloc(paths, sizeof(char *) * (size_t)(cap *= 2));
            if (asprintf(&paths[n++], "%s/%s", sub, e->d_name) < 0) die_errno("asprintf");
        }
        closedir(dp);
        qsort(paths + first, (size_t)(n - first), sizeof(char *), cmp_str);
    }
    *out = paths;
    return n;
}

static int want(const char *cases, const char *name) {
    size_t n = strlen(name);
    for (const char *p = cases; (p = strstr(p, name)); p += n)
        if ((p == cases || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
    return 0;
}

/* one file case: the loader and plain reads alternating, after one warm-up of each */
typedef enum { NPY, IDX } loader;
static void file_case(const char *name, const char *path, loader kind, int rounds,
                      int64_t out_bytes_expected, int out_rate_mb) {
    int64_t size = file_size(path);
    void *reused = NULL;
    if (posix_memalign(&reused, 64, (size_t)size) != 0) die_errno("posix_memalign");
    memset(reused, 1, (size_t)size);
    double tk[MAX_ROUNDS], tr[MAX_ROUNDS], tu[MAX_ROUNDS];
    int64_t out_bytes = 0;
    for (int r = -1; r < rounds; r++) {
        double t0 = now();
        if (kind == NPY) {
            kc_npy a;
            if (kc_npy_load(path, &a) != KC_OK) die(path);
            double t = now() - t0;
            out_bytes = a.size * (a.dtype[0] == 'f' && a.dtype[1] == '4' ? 4 : 1);
            kc_npy_free(&a);
            if (r >= 0) tk[r] = t;
        } else {
            kc_idx a;
            if (kc_idx_read(path, &a) != KC_OK) die(path);
            double t = now() - t0;
            out_bytes = a.size;
            kc_idx_free(&a);
            if (r >= 0) tk[r] = t;
        }
        double t = time_read_fresh(path, size);
        if (r >= 0) tr[r] = t;
        t0 = now();
        if (read_into(path, reused, size) != size) die_errno(path);
        if (r >= 0) tu[r] = now() - t0;
    }
    free(reused);
    if (out_bytes != out_bytes_expected) {
        fprintf(stderr, "bench_load: %s: %lld bytes loaded, expected %lld\n", path,
                (long long)out_bytes, (long long)out_bytes_expected);
        exit(1);
    }
    double k = median(tk, rounds), rd = median(tr, rounds), ru = median(tu, rounds);
    printf("{\"case\": \"%s\", \"file_bytes\": %lld, \"array_bytes\": %lld, \"rounds\": %d, "
           "\"kerac_s\": %.5f, ", name, (long long)size, (long long)out_bytes, rounds, k);
    if (out_rate_mb)
        printf("\"kerac_output_mb_per_s\": %.1f, ", out_bytes / k / 1e6);
    else
        printf("\"kerac_gb_per_s\": %.3f, ", size / k / 1e9);
    printf("\"read_s\": %.5f, \"read_gb_per_s\": %.3f, \"read_reused_s\": %.5f, "
           "\"read_reused_gb_per_s\": %.3f, \"kerac_over_read\": %.3f}\n",
           rd, size / rd / 1e9, ru, size / ru / 1e9, k / rd);
    fflush(stdout);
}

static double cpu_seconds(void) { /* the process's user + system time */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

/* the wall time of one folder load; *cpu: the process's CPU time over it */
static double time_png_load(const char *folder, int threads, const kc_dataset *check, double *cpu) {
    kc_set_num_threads(threads);
    kc_data_opts o = {.image_height = 28, .image_width = 28, .channels = 1,
                      .shuffle = check ? KC_ZERO : 0, .has_seed = 1};
    kc_dataset ds;
    double c0 = cpu_seconds(), t0 = now();
    if (kc_data_load(folder, &o, &ds) != KC_OK) die(folder);
    double t = now() - t0;
    if (cpu) *cpu = cpu_seconds() - c0;
    if (ds.count != ROWS) {
        fprintf(stderr, "bench_load: %s: %lld images, expected %d\n", folder, (long long)ds.count,
                ROWS);
        exit(1);
    }
    if (check && memcmp(ds.x, check->x, (size_t)ROWS * 784) != 0) {
        fprintf(stderr, "bench_load: %s: the images read back differ from MNIST's\n", folder);
        exit(1);
    }
    kc_dataset_free(&ds);
    return t;
}

/* MNIST's x (and y) in the folder's order: by class, then by index, to check the load */
static void sort_by_class(const kc_dataset *train, kc_dataset *out) {
    const uint8_t *x = train->x, *y = train->y;
    uint8_t *sx = malloc((size_t)ROWS * 784);
    int64_t n = 0;
    for (int d = 0; d < 10; d++)
        for (int64_t i = 0; i < train->count; i++)
            if (y[i] == d) memcpy(sx + 784 * n++, x + 784 * i, 784);
    memset(out, 0, sizeof *out);
    out->count = n;
    out->x = sx;
}

static void rm_tree(const char *dir) {
    char path[4400];
    const char *files[] = {"float32.npy", "uint8.npy", "raw.idx"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    for (int d = 0; d < 10; d++) {
        snprintf(path, sizeof path, "%s/png/%d", dir, d);
        DIR *dp = opendir(path);
        if (!dp) continue;
        struct dirent *e;
        char f[4700];
        while ((e = readdir(dp)))
            if (e->d_name[0] != '.') {
                snprintf(f, sizeof f, "%s/%s", path, e->d_name);
                unlink(f);
            }
        closedir(dp);
        rmdir(path);
    }
    snprintf(path, sizeof path, "%s/png", dir);
    rmdir(path);
    rmdir(dir);
}

int main(int argc, char **argv) {
    int rounds = 5, keep = 0, write_only = 0;
    const char *cases = "npy_float32,npy_uint8,idx,idx_gz,png", *dir_arg = NULL, *mnist = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cases") && i + 1 < argc) cases = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir_arg = argv[++i];
        else if (!strcmp(argv[i], "--mnist") && i + 1 < argc) mnist = argv[++i];
        else if (!strcmp(argv[i], "--keep")) keep = 1;
        else if (!strcmp(argv[i], "--write")) write_only = keep = 1;
        else {
            fprintf(stderr, "usage: %s [--rounds 5] [--cases npy_float32,npy_uint8,idx,idx_gz,png] "
                    "[--mnist DIR] [--dir DIR [--keep]] [--write]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS) rounds = 5;
    char mnist_dir[4096];
    if (mnist) snprintf(mnist_dir, sizeof mnist_dir, "%s", mnist);
    else if (getenv("KERAC_DATA")) snprintf(mnist_dir, sizeof mnist_dir, "%s/mnist", getenv("KERAC_DATA"));
    else mnist_dir[0] = 0;

    char dir[4096];
    if (dir_arg) {
        snprintf(dir, sizeof dir, "%s", dir_arg);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) die_errno(dir);
    } else {
        const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(dir, sizeof dir, "%s/kerac_bench_load.XXXXXX", tmp);
        if (!mkdtemp(dir)) die_errno(dir);
    }
    char f32[4200], u8[4200], idx[4200], gz[4200], png[4200];
    snprintf(f32, sizeof f32, "%s/float32.npy", dir);
    snprintf(u8, sizeof u8, "%s/uint8.npy", dir);
    snprintf(idx, sizeof idx, "%s/raw.idx", dir);
    snprintf(gz, sizeof gz, "%s/train-images-idx3-ubyte.gz", mnist_dir[0] ? mnist_dir : ".");
    snprintf(png, sizeof png, "%s/png", dir);

    int need_mnist = want(cases, "png") || want(cases, "idx_gz");
    kc_dataset train = {0}, test = {0}, sorted = {0};
    if (need_mnist) {
        if (kc_mnist_load(mnist_dir[0] ? mnist_dir : NULL, &train, &test) != KC_OK)
            die("MNIST (--mnist DIR or $KERAC_DATA/mnist)");
        kc_dataset_free(&test);
    }
    double tw = now();
    if (want(cases, "npy_float32") && !exists(f32)) write_npy(f32, "<f4", ROWS, NPY_COLS, 4);
    if (want(cases, "npy_uint8") && !exists(u8)) write_npy(u8, "|u1", ROWS, NPY_COLS, 1);
    if (want(cases, "idx") && !exists(idx)) write_idx(idx, ROWS, IDX_COLS);
    char last[4300];
    snprintf(last, sizeof last, "%s/9", png);
    if (want(cases, "png") && !exists(last)) write_pngs(dir, &train);
    fprintf(stderr, "# bench_load: files in %s (written in %.1f s)\n", dir, now() - tw);
    if (write_only) {
        printf("{\"dir\": \"%s\"}\n", dir);
        return 0;
    }

    if (want(cases, "npy_float32"))
        file_case("npy_float32", f32, NPY, rounds, (int64_t)ROWS * NPY_COLS * 4, 0);
    if (want(cases, "npy_uint8")) file_case("npy_uint8", u8, NPY, rounds, (int64_t)ROWS * NPY_COLS, 0);
    if (want(cases, "idx")) file_case("idx", idx, IDX, rounds, (int64_t)ROWS * IDX_COLS, 0);
    if (want(cases, "idx_gz")) file_case("idx_gz", gz, IDX, rounds, (int64_t)ROWS * 784, 1);

    if (want(cases, "png")) {
        kc_set_num_threads(0);
        int all = kc_get_num_threads();
        sort_by_class(&train, &sorted);
        char **paths;
        int64_t n = list_pngs(dir, &paths), total = 0;
        uint8_t *buf = malloc(1 << 16);
        time_png_load(png, all, &sorted, NULL); /* warm-up, and the pixels checked against MNIST */
        double t1[MAX_ROUNDS], tn[MAX_ROUNDS], trd[MAX_ROUNDS], c1[MAX_ROUNDS], cn[MAX_ROUNDS];
        for (int r = 0; r < rounds; r++) {
            t1[r] = time_png_load(png, 1, NULL, &c1[r]);
            tn[r] = time_png_load(png, all, NULL, &cn[r]);
            double t0 = now();
            total = 0;
            for (int64_t i = 0; i < n; i++) total += read_into(paths[i], buf, 1 << 16);
            trd[r] = now() - t0;
        }
        double m1 = median(t1, rounds), mn = median(tn, rounds), mr = median(trd, rounds);
        printf("{\"case\": \"png_folder\", \"images\": %d, \"image\": \"28x28x1\", \"files_bytes\": "
               "%lld, \"rounds\": %d, \"threads_1_s\": %.4f, \"threads_1_images_per_s\": %.0f, "
               "\"threads\": %d, \"threads_all_s\": %.4f, \"threads_all_images_per_s\": %.0f, "
               "\"speedup\": %.3f, \"read_files_s\": %.4f, \"read_files_images_per_s\": %.0f, "
               "\"threads_1_cpu_s\": %.4f, \"threads_all_cpu_s\": %.4f, \"threads_all_cores_used\": "
               "%.2f, \"pixels_checked\": true}\n",
               ROWS, (long long)total, rounds, m1, ROWS / m1, all, mn, ROWS / mn, m1 / mn, mr,
               ROWS / mr, median(c1, rounds), median(cn, rounds), median(cn, rounds) / mn);
        fflush(stdout);
        for (int64_t i = 0; i < n; i++) free(paths[i]);
        free(paths);
        free(buf);
        free(sorted.x);
    }
    kc_dataset_free(&train);
    if (!keep) rm_tree(dir);
    return 0;
}
