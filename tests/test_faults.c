/* test_faults.c: fault injection. The binary is linked with -Wl,--wrap for malloc, calloc,
 * realloc and posix_memalign (Makefile), as test_alloc is; between fault_arm(N) and
 * fault_disarm() the Nth allocation made through them fails. For N = 1, 2, ... until the
 * operation succeeds, kc_fit, kc_save, kc_load and kc_mnist_load must each return KC_ENOMEM
 * with a message, crash nothing, leak nothing (LeakSanitizer, in the ASan build) and leave the
 * model usable (kc_fit again) or nothing behind (kc_load's *out, kc_mnist_load's datasets, the
 * save's temporary file, the old saved file intact). zlib's allocations in the IDX reader come
 * through kerac's own zalloc and are failed too; HDF5's and libzip's, inside their shared
 * libraries, are not reached by --wrap (see docs/ARCHITECTURE.md).
 * Also: kc_save under RLIMIT_FSIZE (EFBIG), and stale temporary files of killed saves. */
#include "testutil.h"
#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <utime.h>
#include <zlib.h>

static atomic_int armed, armed_pid; /* a forked child (kc_load's probe) fails nothing */
static atomic_long calls, fail_at, fired;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);

/* 1 when this allocation is the one to fail; with KERAC_FAULT_TRACE set, its call stack goes to
 * stderr (to find which allocation a failure is about: addr2line -e the binary) */
static int should_fail(void) {
    if (!atomic_load(&armed) || getpid() != atomic_load(&armed_pid)) return 0;
    if (atomic_fetch_add(&calls, 1) + 1 != atomic_load(&fail_at)) return 0;
    atomic_fetch_add(&fired, 1);
    if (getenv("KERAC_FAULT_TRACE")) {
        void *frames[32];
        fprintf(stderr, "allocation %ld fails here:\n", atomic_load(&fail_at));
        backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
    }
    return 1;
}
void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { return should_fail() ? NULL : __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
int __wrap_posix_memalign(void **p, size_t a, size_t n) {
    return should_fail() ? ENOMEM : __real_posix_memalign(p, a, n);
}

static void fault_arm(long n) {
    atomic_store(&calls, 0);
    atomic_store(&fired, 0);
    atomic_store(&fail_at, n);
    atomic_store(&armed_pid, (int)getpid());
    atomic_store(&armed, 1);
}
/* 1 when the armed allocation failed */
static int fault_disarm(void) {
    atomic_store(&armed, 0);
    return atomic_load(&fired) > 0;
}

/* Checks a failed call: KC_ENOMEM and a message saying so. */
static void check_enomem(kc_status st, const char *what, long n) {
    cr_assert_neq(st, KC_OK, "%s: allocation %ld failed, yet it returned KC_OK", what, n);
    cr_assert_eq(st, KC_ENOMEM, "%s: allocation %ld failed: %s (want KC_ENOMEM): %s", what, n,
                 kc_status_name(st), kc_last_error());
    cr_assert(kc_last_error()[0], "%s: allocation %ld failed without a message", what, n);
}

#define LIMIT 20000 /* allocations: more means the loop never ends */

/* ---- the data and the model ----------------------------------------------------------------- */

#define N_SAMPLES 24
static float xs[N_SAMPLES * 6], ys[N_SAMPLES * 3];

static kc_dataset small_data(void) {
    for (int i = 0; i < N_SAMPLES * 6; i++) xs[i] = (float)((i * 37) % 11) / 11.0f;
    for (int i = 0; i < N_SAMPLES; i++)
        for (int j = 0; j < 3; j++) ys[i * 3 + j] = (float)(j == i % 3);
    return (kc_dataset){.count = N_SAMPLES, .x_shape = kc_shape1(6), .x_dtype = KC_FLOAT32,
                        .x = xs, .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = ys};
}

static kc_model *small_model(void) {
    kc_model *m = kc_sequential(kc_shape1(6));
    KC_CHECK(kc_add(m, kc_dense(8, KC_RELU)));
    KC_CHECK(kc_add(m, kc_dropout(0.1f)));
    KC_CHECK(kc_add(m, kc_dense(3, KC_SOFTMAX)));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY));
    return m;
}

static kc_status fit_once(kc_model *m, const kc_dataset *ds) {
    kc_history *h = NULL;
    kc_status st = kc_fit(m, ds, &(kc_fit_opts){.batch_size = 8, .epochs = 1, .verbose = -1,
                                                .validation = ds}, &h);
    kc_history_free(h);
    return st;
}

/* ---- kc_fit ----------------------------------------------------------------------------- */

static long fault_fit(bool fitted_before) {
    kc_dataset ds = small_data();
    for (long n = 1; n < LIMIT; n++) {
        kc_model *m = small_model();
        if (fitted_before) KC_CHECK(fit_once(m, &ds));
        fault_arm(n);
        kc_status st = fit_once(m, &ds);
        if (!fault_disarm()) {
            KC_CHECK(st);
            kc_model_free(m);
            return n;
        }
        check_enomem(st, "kc_fit", n);
        KC_CHECK(fit_once(m, &ds)); /* the model is still usable */
        kc_model_free(m);
    }
    cr_assert_fail("kc_fit never succeeded");
    return 0;
}

Test(faults, fit) {
    long first = fault_fit(false), again = fault_fit(true);
    cr_assert(first > 1, "no allocation was failed: the wrap counts nothing");
    fprintf(stderr, "kc_fit: %ld allocations failed in turn (fresh model), %ld (fitted)\n",
            first - 1, again - 1);
}

/* ---- kc_save ---------------------------------------------------------------------------- */

static char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    char *d = malloc(*size + 1);
    cr_assert_eq(fread(d, 1, *size, f), *size);
    fclose(f);
    return d;
}

/* how many entries of dir hold ".tmp-" */
static int temp_files(const char *dir) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char p[512];
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

static long fault_save(const char *name) {
    char *dir = tu_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    kc_dataset ds = small_data();
    kc_model *old = small_model(), *m = small_model();
    KC_CHECK(kc_save(old, path)); /* the file a failed save must leave as it is */
    size_t old_size;
    char *old_bytes = read_all(path, &old_size);
    KC_CHECK(fit_once(m, &ds));
    long n = 1;
    for (; n < LIMIT; n++) {
        fault_arm(n);
        kc_status st = kc_save(m, path);
        if (!fault_disarm()) {
            KC_CHECK(st);
            break;
        }
        cr_assert_neq(st, KC_OK, "kc_save: allocation %ld failed, yet it returned KC_OK", n);
        check_enomem(st, "kc_save", n);
        cr_assert_eq(temp_files(dir), 0, "kc_save left a temporary file (allocation %ld)", n);
        size_t size;
        char *now = read_all(path, &size);
        cr_assert(size == old_size && !memcmp(now, old_bytes, size),
                  "a failed kc_save (allocation %ld) changed %s", n, path);
        free(now);
    }
    cr_assert_lt(n, LIMIT, "kc_save never succeeded");
    KC_CHECK(fit_once(m, &ds)); /* still usable */
    free(old_bytes);
    kc_model_free(old);
    kc_model_free(m);
    rm_dir(dir);
    return n;
}

Test(faults, save_keras) {
    long n = fault_save("m.keras");
    fprintf(stderr, "kc_save .keras: %ld allocations failed in turn\n", n - 1);
}
Test(faults, save_h5) {
    long n = fault_save("m.h5");
    fprintf(stderr, "kc_save .h5: %ld allocations failed in turn\n", n - 1);
}

/* ---- kc_load ---------------------------------------------------------------------------- */

static long fault_load(const char *name) {
    char *dir = tu_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    kc_dataset ds = small_data();
    kc_model *m = small_model();
    KC_CHECK(fit_once(m, &ds));
    KC_CHECK(kc_save(m, path));
    kc_model_free(m);
    long n = 1;
    for (; n < LIMIT; n++) {
        kc_model *out = (kc_model *)&n; /* must be set to NULL on failure */
        fault_arm(n);
        kc_status st = kc_load(path, &out);
        if (!fault_disarm()) {
            KC_CHECK(st);
            KC_CHECK(fit_once(out, &ds));
            kc_model_free(out);
            break;
        }
        check_enomem(st, "kc_load", n);
        cr_assert_null(out, "kc_load failed (allocation %ld) but set *out", n);
    }
    cr_assert_lt(n, LIMIT, "kc_load never succeeded");
    rm_dir(dir);
    return n;
}

Test(faults, load_keras) {
    long n = fault_load("m.keras");
    fprintf(stderr, "kc_load .keras: %ld allocations failed in turn\n", n - 1);
}
Test(faults, load_h5) {
    long n = fault_load("m.h5");
    fprintf(stderr, "kc_load .h5: %ld allocations failed in turn\n", n - 1);
}

/* ---- kc_mnist_load ---------------------------------------------------------------------- */

static void write_idx_gz(const char *dir, const char *name, int rank, const uint32_t *dims,
                         size_t data_len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.gz", dir, name);
    uint8_t *buf = malloc(4 + 4 * (size_t)rank + data_len), *p = buf;
    *p++ = 0, *p++ = 0, *p++ = 8, *p++ = (uint8_t)rank;
    for (int i = 0; i < rank; i++)
        *p++ = dims[i] >> 24, *p++ = dims[i] >> 16, *p++ = dims[i] >> 8, *p++ = (uint8_t)dims[i];
    for (size_t i = 0; i < data_len; i++) *p++ = (uint8_t)(i % (rank == 1 ? 10 : 251));
    gzFile f = gzopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(gzwrite(f, buf, (unsigned)(p - buf)), (int)(p - buf));
    cr_assert_eq(gzclose(f), Z_OK);
    free(buf);
}

Test(faults, mnist_load) {
    char *dir = tu_tmpdir();
    write_idx_gz(dir, "train-images-idx3-ubyte", 3, (uint32_t[]){20, 28, 28}, 20 * 784);
    write_idx_gz(dir, "train-labels-idx1-ubyte", 1, (uint32_t[]){20}, 20);
    write_idx_gz(dir, "t10k-images-idx3-ubyte", 3, (uint32_t[]){10, 28, 28}, 10 * 784);
    write_idx_gz(dir, "t10k-labels-idx1-ubyte", 1, (uint32_t[]){10}, 10);
    long n = 1;
    for (; n < LIMIT; n++) {
        kc_dataset train, test;
        fault_arm(n);
        kc_status st = kc_mnist_load(dir, &train, &test);
        if (!fault_disarm()) {
            KC_CHECK(st);
            cr_assert(train.count == 20 && test.count == 10);
            kc_dataset_free(&train);
            kc_dataset_free(&test);
            break;
        }
        check_enomem(st, "kc_mnist_load", n);
        cr_assert(!train.owned_x && !train.owned_y && !test.owned_x && !test.owned_y,
                  "kc_mnist_load failed (allocation %ld) but left data", n);
    }
    cr_assert_lt(n, LIMIT, "kc_mnist_load never succeeded");
    cr_assert(n > 4, "only %ld allocations: zlib's are not counted", n - 1);
    fprintf(stderr, "kc_mnist_load: %ld allocations failed in turn\n", n - 1);
    rm_dir(dir);
}

/* ---- the file-size limit and stale temporary files --------------------------------------- */

/* kc_save in a child whose file-size limit is below the model's size: the write fails with
 * EFBIG (SIGXFSZ ignored), kc_save returns KC_EIO, the old file stays, no temporary file. */
Test(faults, save_over_file_size_limit) {
    char *dir = tu_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/m.keras", dir);
    kc_model *small = kc_sequential(kc_shape1(2));
    KC_CHECK(kc_add(small, kc_dense(1, KC_LINEAR)));
    KC_CHECK(kc_save(small, path));
    size_t old_size;
    char *old_bytes = read_all(path, &old_size);
    kc_model *big = kc_sequential(kc_shape1(64));
    KC_CHECK(kc_add(big, kc_dense(1024, KC_RELU)));
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {.rlim_cur = 64 * 1024, .rlim_max = 64 * 1024};
        setrlimit(RLIMIT_FSIZE, &rl);
        kc_status st = kc_save(big, path);
        _exit(st == KC_EIO && strstr(kc_last_error(), "File too large") ? 0 : 10 + (int)st);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "kc_save over RLIMIT_FSIZE: child status %d (want KC_EIO naming EFBIG)", status);
    size_t size;
    char *now = read_all(path, &size);
    cr_assert(size == old_size && !memcmp(now, old_bytes, size), "the old file changed");
    cr_assert_eq(temp_files(dir), 0, "a temporary file was left");
    KC_CHECK(kc_save(big, path)); /* without the limit it saves */
    free(now);
    free(old_bytes);
    kc_model_free(small);
    kc_model_free(big);
    rm_dir(dir);
}

static void make_temp(const char *dir, const char *name, time_t age) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    tu_write_file(p, "partial", 7);
    time_t t = time(NULL) - age;
    struct utimbuf ut = {t, t};
    cr_assert_eq(utime(p, &ut), 0);
}

static int exists(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* Temporaries of killed saves: stale ones (unchanged for over 10 minutes) go with the next save
 * of the same target, with a warning; a fresh one may be another save in progress and stays;
 * other targets' and other files are never touched. */
Test(faults, stale_temporary_files) {
    char *dir = tu_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/m.keras", dir);
    make_temp(dir, "m.keras.tmp-AbC123", 3600);   /* stale: removed */
    make_temp(dir, "m.keras.tmp-zz9zz9", 11 * 60); /* stale: removed */
    make_temp(dir, "m.keras.tmp-Fresh1", 5);      /* maybe a live save: kept */
    make_temp(dir, "n.keras.tmp-AbC123", 3600);   /* another target: kept */
    make_temp(dir, "m.keras.tmp-notes.txt", 3600); /* not mkstemp's pattern: kept */
    make_temp(dir, "m.keras.tmp-A", 3600);         /* not mkstemp's pattern: kept */
    kc_model *m = small_model();
    KC_CHECK(kc_save(m, path));
    cr_assert(!exists(dir, "m.keras.tmp-AbC123") && !exists(dir, "m.keras.tmp-zz9zz9"),
              "stale temporary files were not removed");
    cr_assert(exists(dir, "m.keras.tmp-Fresh1"), "a fresh temporary file was removed");
    cr_assert(exists(dir, "n.keras.tmp-AbC123") && exists(dir, "m.keras.tmp-notes.txt") &&
              exists(dir, "m.keras.tmp-A"), "a file that is not this target's temp was removed");
    cr_assert(strstr(kc_last_warning(), "left alone"), "warning: %s", kc_last_warning());
    cr_assert_eq(temp_files(dir), 4);
    kc_model_free(m);
    rm_dir(dir);
}

/* ---- the example programs under an address-space limit ------------------------------------ */

/* OpenBLAS 0.3.21's server threads, started when the library loads, each map a 128 MB buffer
 * and retry a failed mmap forever: linked in, it made these runs hang between about 96 and
 * 256 MB, whichever product path ran. It is now loaded on first use after a check of the room
 * left (src/ops/blas.c). ASan cannot run under RLIMIT_AS at all. */
#if defined(MNIST_MLP_BIN) && !defined(__SANITIZE_ADDRESS__)
/* Runs argv with RLIMIT_AS = limit_mb (0: none) and KERAC_GEMM_BLAS=blas, stdout and stderr to
 * files in dir; kills it after 60 s. Returns its wait status, -1 on a timeout; err gets the end
 * of its stderr. */
static int run_limited(char *const argv[], long limit_mb, const char *blas, const char *dir,
                       char *err, size_t err_size) {
    char err_path[512];
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", dir);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644), nul = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        dup2(nul, 1);
        setenv("KERAC_GEMM_BLAS", blas, 1);
        if (limit_mb) {
            struct rlimit rl = {.rlim_cur = (rlim_t)limit_mb << 20, .rlim_max = (rlim_t)limit_mb << 20};
            setrlimit(RLIMIT_AS, &rl);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    for (int waited = 0; waitpid(pid, &status, WNOHANG) == 0; waited++) {
        if (waited == 6000) { /* 60 s */
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(10000);
    }
    FILE *f = fopen(err_path, "rb");
    size_t n = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, size > (long)err_size - 1 ? size - (long)err_size + 1 : 0, SEEK_SET);
        n = fread(err, 1, err_size - 1, f);
        fclose(f);
    }
    err[n] = 0;
    return status;
}

/* A fake MNIST folder (gzip IDX) big enough that the programs allocate for real. */
static void fake_mnist(const char *dir, uint32_t n_train, uint32_t n_test) {
    write_idx_gz(dir, "train-images-idx3-ubyte", 3, (uint32_t[]){n_train, 28, 28}, n_train * 784);
    write_idx_gz(dir, "train-labels-idx1-ubyte", 1, (uint32_t[]){n_train}, n_train);
    write_idx_gz(dir, "t10k-images-idx3-ubyte", 3, (uint32_t[]){n_test, 28, 28}, n_test * 784);
    write_idx_gz(dir, "t10k-labels-idx1-ubyte", 1, (uint32_t[]){n_test}, n_test);
}

/* For limits from too small to start up to enough: each run ends by itself (no hang, no
 * signal), with status 0, or 1 and a message on stderr; the smallest limits fail, no limit
 * succeeds. Both matrix-product paths (OpenBLAS starts its threads on the second). */
static void check_examples_under_limits(const char *blas) {
    char *dir = tu_tmpdir(), err[2048];
    fake_mnist(dir, 6000, 1000);
    char *mlp[] = {MNIST_MLP_BIN, "--epochs", "1", "--data", dir, "--verbose", "0", NULL};
    char *cli[] = {KERAC_BIN, "train", "mlp0", "--data", dir, "--epochs", "1", NULL};
    char *const *progs[] = {mlp, cli};
    static const long limits[] = {16, 48, 96, 160, 256, 384, 512, 0};
    for (int p = 0; p < 2; p++) {
        int failed = 0, succeeded = 0;
        for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
            int status = run_limited(progs[p], limits[i], blas, dir, err, sizeof err);
            cr_assert_neq(status, -1, "%s under RLIMIT_AS %ld MB (KERAC_GEMM_BLAS=%s) hangs",
                          progs[p][0], limits[i], blas);
            cr_assert(WIFEXITED(status), "%s under RLIMIT_AS %ld MB (KERAC_GEMM_BLAS=%s) died "
                      "of signal %d; stderr: %s", progs[p][0], limits[i], blas,
                      WIFSIGNALED(status) ? WTERMSIG(status) : 0, err);
            int code = WEXITSTATUS(status);
            /* below about 20 MB the dynamic loader cannot map the libraries: its own error */
            if (code == 127 && strstr(err, "error while loading shared libraries")) code = 1;
            cr_assert(code == 0 || (code == 1 && err[0]), "%s under RLIMIT_AS %ld MB "
                      "(KERAC_GEMM_BLAS=%s) exited %d; stderr: %s", progs[p][0], limits[i], blas,
                      code, err);
            if (code) failed++;
            else succeeded++;
            if (!limits[i]) cr_assert_eq(code, 0, "%s fails without a limit: %s", progs[p][0], err);
        }
        cr_assert(failed > 0, "%s never failed: the limits test nothing", progs[p][0]);
        fprintf(stderr, "%s (KERAC_GEMM_BLAS=%s): %d limits failed cleanly, %d succeeded\n",
                progs[p][0], blas, failed, succeeded);
    }
    rm_dir(dir);
}

Test(faults, examples_under_address_space_limit, .timeout = 300) {
    check_examples_under_limits("");
    check_examples_under_limits("1");
}
#endif
