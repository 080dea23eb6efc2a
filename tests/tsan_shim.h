/* tsan_shim.h: the part of Criterion's API the threaded tests use, as plain C, for the
 * ThreadSanitizer build (`make test-tsan`). Criterion cannot run under TSan: its sandbox
 * (boxfort) maps an "inheritable arena" at an address it finds by probing with mincore() next
 * to the program's image, and under TSan that space is TSan's, so every Criterion binary stops
 * with "criterion: Could not initialize inheritable arena" before its first test.
 *
 * The Makefile compiles a test source with -DKERAC_TSAN_SHIM, and testutil.h then takes this
 * header instead of <criterion/criterion.h>.
 * Test(suite, name) registers the test from a constructor; main() runs each test in a fresh
 * forked process (as Criterion does: a test may set an environment variable its process reads
 * once), the parent having started no thread. A TSan report makes the child exit non-zero
 * (TSan's exitcode), which counts as a crash. The last line is Criterion's, so tests/run.sh
 * counts it: "Synthesis: Tested: N | Passing: N | Failing: N | Crashing: N".
 * Options: --filter SUITE/NAME (fnmatch pattern), --list; --jobs N is accepted and ignored.
 * $KERAC_TSAN_TESTS, if set, lists the tests to run as patterns separated by spaces (one list
 * for every binary of `make test-tsan`: the slow ones stay out of its run);
 * $KERAC_SHIM_EXCLUDE, the same way, tests not to run (`make test-arm64`'s slow ones).
 * The aarch64 tests under qemu-user (`make test-arm64`) use it too: Criterion's sandbox stops
 * and re-executes the binary, which qemu-user cannot do ("Could not spawn test instance"), a
 * plain fork can. For them it also takes the test options .init and .fini (others, such as
 * .timeout, are accepted and ignored), parameterized tests (each parameter in its own
 * process, as Criterion) and cr_assert_arr_eq. */
#ifndef KERAC_TSAN_SHIM_H
#define KERAC_TSAN_SHIM_H
/* Criterion's own headers, if a test includes them after this one, add nothing */
#define CRITERION_H_
#define CRITERION_PARAMETERIZED_H_
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* a test's options, as Criterion's (only init and fini are acted on) */
typedef struct {
    int unused_;
    void (*init)(void), (*fini)(void);
    double timeout;
    int disabled, signal, exit_code;
    const char *description;
} tsan_shim_opts;

/* parameterized tests' parameters (Criterion's struct and macro) */
struct criterion_test_params {
    size_t size;
    void *params;
    size_t length;
};
#define cr_make_param_array(Type, Array, Len, ...)                                          \
    ((struct criterion_test_params){sizeof(Type), (void *)(Array), (size_t)(Len)})

typedef struct {
    const char *suite, *name;
    void (*fn)(void);
    const tsan_shim_opts *opts;
    void (*pfn)(void *);                           /* parameterized: fn(param) */
    struct criterion_test_params (*params)(void); /* and its parameters */
} tsan_shim_test;

#define TSAN_SHIM_MAX 1024
static tsan_shim_test tsan_shim_tests[TSAN_SHIM_MAX];
static int tsan_shim_count;

static inline void tsan_shim_register(const char *suite, const char *name, void (*fn)(void),
                                      const tsan_shim_opts *opts, void (*pfn)(void *),
                                      struct criterion_test_params (*params)(void)) {
    if (tsan_shim_count < TSAN_SHIM_MAX)
        tsan_shim_tests[tsan_shim_count++] = (tsan_shim_test){suite, name, fn, opts, pfn, params};
    else
        fprintf(stderr, "tsan_shim: more than %d tests, %s/%s left out\n", TSAN_SHIM_MAX, suite, name);
}

#define Test(suite, name, ...)                                                             \
    static void tsan_shim_##suite##_##name(void);                                          \
    __attribute__((constructor)) static void tsan_shim_reg_##suite##_##name(void) {        \
        static const tsan_shim_opts opts = {.unused_ = 0, __VA_ARGS__};                   \
        tsan_shim_register(#suite, #name, tsan_shim_##suite##_##name, &opts, NULL, NULL);  \
    }                                                                                      \
    static void tsan_shim_##suite##_##name(void)

/* a suite's options: accepted, not acted on */
#define TestSuite(suite, ...)                                                              \
    __attribute__((unused)) static const tsan_shim_opts tsan_shim_suite_##suite = {       \
        .unused_ = 0, __VA_ARGS__}

#define ParameterizedTestParameters(suite, name)                                           \
    static struct criterion_test_params tsan_shim_params_##suite##_##name(void)

#define ParameterizedTest(param, suite, name, ...)                                         \
    static void tsan_shim_##suite##_##name(param);                                         \
    static void tsan_shim_pv_##suite##_##name(void *p) { tsan_shim_##suite##_##name(p); }  \
    __attribute__((constructor)) static void tsan_shim_reg_##suite##_##name(void) {        \
        static const tsan_shim_opts opts = {.unused_ = 0, __VA_ARGS__};                   \
        tsan_shim_register(#suite, #name, NULL, &opts, tsan_shim_pv_##suite##_##name,      \
                           tsan_shim_params_##suite##_##name);                             \
    }                                                                                      \
    static void tsan_shim_##suite##_##name(param)

enum { TSAN_SHIM_PASS = 0, TSAN_SHIM_FAIL = 1, TSAN_SHIM_SKIP = 77 };

static inline void tsan_shim_msg(const char *file, int line, const char *kind, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "[----] %s:%d: %s", file, line, kind);
    if (fmt && *fmt) {
        fputs(": ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
}

static int tsan_shim_failed;

/* full matches one of the patterns of the environment variable name */
static inline int tsan_shim_listed(const char *full, const char *name) {
    const char *list = getenv(name);
    if (!list) return 0;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save, *p = strtok_r(buf, " \t\n", &save); p; p = strtok_r(NULL, " \t\n", &save))
        if (!fnmatch(p, full, 0)) return 1;
    return 0;
}

static inline int tsan_shim_selected(const char *full, const char *filter) {
    if (fnmatch(filter, full, 0)) return 0;
    if (tsan_shim_listed(full, "KERAC_SHIM_EXCLUDE")) return 0;
    const char *list = getenv("KERAC_TSAN_TESTS");
    return !list || !*list || tsan_shim_listed(full, "KERAC_TSAN_TESTS");
}

static inline double tsan_shim_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
} /* an expectation failed in this (child) process */

/* the message is optional, as in Criterion: a leading "" gives the format something to stand on */
#define tsan_shim_check(fatal, cond, text, ...)                                            \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            tsan_shim_msg(__FILE__, __LINE__, "Assertion Failed", "" __VA_ARGS__);         \
            fprintf(stderr, "[----]   %s\n", text);                                       \
            tsan_shim_failed = 1;                                                          \
            if (fatal) exit(TSAN_SHIM_FAIL);                                               \
        }                                                                                  \
    } while (0)

#define cr_assert(cond, ...) tsan_shim_check(1, (cond), #cond, ##__VA_ARGS__)
#define cr_expect(cond, ...) tsan_shim_check(0, (cond), #cond, ##__VA_ARGS__)
#define cr_assert_eq(a, b, ...) tsan_shim_check(1, (a) == (b), #a " == " #b, ##__VA_ARGS__)
#define cr_expect_eq(a, b, ...) tsan_shim_check(0, (a) == (b), #a " == " #b, ##__VA_ARGS__)
#define cr_assert_neq(a, b, ...) tsan_shim_check(1, (a) != (b), #a " != " #b, ##__VA_ARGS__)
#define cr_expect_neq(a, b, ...) tsan_shim_check(0, (a) != (b), #a " != " #b, ##__VA_ARGS__)
#define cr_assert_lt(a, b, ...) tsan_shim_check(1, (a) < (b), #a " < " #b, ##__VA_ARGS__)
#define cr_expect_lt(a, b, ...) tsan_shim_check(0, (a) < (b), #a " < " #b, ##__VA_ARGS__)
#define cr_assert_leq(a, b, ...) tsan_shim_check(1, (a) <= (b), #a " <= " #b, ##__VA_ARGS__)
#define cr_expect_leq(a, b, ...) tsan_shim_check(0, (a) <= (b), #a " <= " #b, ##__VA_ARGS__)
#define cr_assert_gt(a, b, ...) tsan_shim_check(1, (a) > (b), #a " > " #b, ##__VA_ARGS__)
#define cr_expect_gt(a, b, ...) tsan_shim_check(0, (a) > (b), #a " > " #b, ##__VA_ARGS__)
#define cr_assert_geq(a, b, ...) tsan_shim_check(1, (a) >= (b), #a " >= " #b, ##__VA_ARGS__)
#define cr_expect_geq(a, b, ...) tsan_shim_check(0, (a) >= (b), #a " >= " #b, ##__VA_ARGS__)
#define cr_assert_null(p, ...) tsan_shim_check(1, (p) == NULL, #p " == NULL", ##__VA_ARGS__)
#define cr_expect_null(p, ...) tsan_shim_check(0, (p) == NULL, #p " == NULL", ##__VA_ARGS__)
#define cr_assert_not_null(p, ...) tsan_shim_check(1, (p) != NULL, #p " != NULL", ##__VA_ARGS__)
#define cr_expect_not_null(p, ...) tsan_shim_check(0, (p) != NULL, #p " != NULL", ##__VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) tsan_shim_check(1, !strcmp((a), (b)), #a " eq " #b, ##__VA_ARGS__)
#define cr_expect_str_eq(a, b, ...) tsan_shim_check(0, !strcmp((a), (b)), #a " eq " #b, ##__VA_ARGS__)
#define cr_assert_float_eq(a, b, eps, ...)                                                 \
    tsan_shim_check(1, fabs((double)(a) - (double)(b)) <= (eps), #a " ~ " #b, ##__VA_ARGS__)
#define cr_expect_float_eq(a, b, eps, ...)                                                 \
    tsan_shim_check(0, fabs((double)(a) - (double)(b)) <= (eps), #a " ~ " #b, ##__VA_ARGS__)
#define cr_assert_fail(...) tsan_shim_check(1, 0, "cr_assert_fail", ##__VA_ARGS__)
#define cr_assert_arr_eq(a, b, size, ...)                                                  \
    tsan_shim_check(1, !memcmp((a), (b), (size)), #a " same bytes as " #b, ##__VA_ARGS__)
#define cr_assert_arr_neq(a, b, size, ...)                                                 \
    tsan_shim_check(1, memcmp((a), (b), (size)) != 0, #a " other bytes than " #b, ##__VA_ARGS__)
#define cr_log_info(...) (fprintf(stderr, "[----] " __VA_ARGS__), fputc('\n', stderr))
#define cr_log_warn cr_log_info
#define cr_log_error cr_log_info
#define cr_skip_test(...)                                                                  \
    do {                                                                                   \
        tsan_shim_msg(__FILE__, __LINE__, "skipped", "" __VA_ARGS__);                      \
        exit(TSAN_SHIM_SKIP);                                                              \
    } while (0)

int main(int argc, char **argv) {
    const char *filter = "*";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
        else if (!strncmp(argv[i], "--filter=", 9)) filter = argv[i] + 9;
        else if (!strcmp(argv[i], "--jobs") && i + 1 < argc) i++;
        else if (!strcmp(argv[i], "--list")) {
            for (int t = 0; t < tsan_shim_count; t++)
                printf("%s/%s\n", tsan_shim_tests[t].suite, tsan_shim_tests[t].name);
            return 0;
        }
    }
    int tested = 0, passing = 0, failing = 0, crashing = 0, skipped = 0;
    for (int t = 0; t < tsan_shim_count; t++) {
        const tsan_shim_test *test = &tsan_shim_tests[t];
        char full[256];
        snprintf(full, sizeof full, "%s/%s", test->suite, test->name);
        if (!tsan_shim_selected(full, filter)) continue;
        if (test->opts->disabled) {
            skipped++;
            continue;
        }
        struct criterion_test_params params = {0, NULL, 1};
        if (test->params) params = test->params();
        for (size_t param = 0; param < params.length; param++) {
            if (test->params) snprintf(full, sizeof full, "%s/%s (%zu)", test->suite, test->name, param);
            fflush(NULL);
            double t0 = tsan_shim_now();
            pid_t pid = fork();
            if (pid < 0) {
                perror("fork");
                return 2;
            }
            if (pid == 0) {
                if (test->opts->init) test->opts->init();
                if (test->pfn) test->pfn((char *)params.params + param * params.size);
                else test->fn();
                if (test->opts->fini) test->opts->fini();
                exit(tsan_shim_failed ? TSAN_SHIM_FAIL : TSAN_SHIM_PASS);
            }
            int status;
            while (waitpid(pid, &status, 0) < 0) {}
            double secs = tsan_shim_now() - t0;
            tested++;
            if (WIFEXITED(status) && WEXITSTATUS(status) == TSAN_SHIM_SKIP) {
                tested--, skipped++;
                printf("[SKIP] %s\n", full);
            } else if (WIFEXITED(status) && WEXITSTATUS(status) == TSAN_SHIM_PASS) {
                passing++;
                printf("[PASS] %s (%.1f s)\n", full, secs);
            } else if (WIFEXITED(status) && WEXITSTATUS(status) == TSAN_SHIM_FAIL) {
                failing++;
                printf("[FAIL] %s\n", full);
            } else if (WIFEXITED(status)) {
                crashing++;
                printf("[FAIL] %s: CRASH: exit status %d (ThreadSanitizer reported, if 66)\n", full,
                       WEXITSTATUS(status));
            } else {
                crashing++;
                printf("[FAIL] %s: CRASH: signal %d\n", full, WTERMSIG(status));
            }
            fflush(stdout);
        }
    }
    printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Crashing: %d (skipped %d)\n",
           tested, passing, failing, crashing, skipped);
    return failing + crashing ? 1 : 0;
}
#endif
