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
 * for every binary of `make test-tsan`: the slow ones stay out of its run). */
#ifndef KERAC_TSAN_SHIM_H
#define KERAC_TSAN_SHIM_H
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *suite, *name;
    void (*fn)(void);
} tsan_shim_test;

#define TSAN_SHIM_MAX 512
static tsan_shim_test tsan_shim_tests[TSAN_SHIM_MAX];
static int tsan_shim_count;

static inline void tsan_shim_register(const char *suite, const char *name, void (*fn)(void)) {
    if (tsan_shim_count < TSAN_SHIM_MAX)
        tsan_shim_tests[tsan_shim_count++] = (tsan_shim_test){suite, name, fn};
}

/* .init and other Criterion options are not supported: a test that needs them stays out of the
 * TSan set */
#define Test(suite, name, ...)                                                             \
    static void tsan_shim_##suite##_##name(void);                                          \
    __attribute__((constructor)) static void tsan_shim_reg_##suite##_##name(void) {        \
        tsan_shim_register(#suite, #name, tsan_shim_##suite##_##name);                     \
    }                                                                                      \
    static void tsan_shim_##suite##_##name(void)

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

static inline int tsan_shim_selected(const char *full, const char *filter) {
    if (fnmatch(filter, full, 0)) return 0;
    const char *list = getenv("KERAC_TSAN_TESTS");
    if (!list || !*list) return 1;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save, *p = strtok_r(buf, " \t\n", &save); p; p = strtok_r(NULL, " \t\n", &save))
        if (!fnmatch(p, full, 0)) return 1;
    return 0;
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
#define cr_log_info(...) (fprintf(stderr, "[----] " __VA_ARGS__), fputc('\n', stderr))
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
        fflush(NULL);
        double t0 = tsan_shim_now();
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            test->fn();
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
    printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Crashing: %d (skipped %d)\n",
           tested, passing, failing, crashing, skipped);
    return failing + crashing ? 1 : 0;
}
#endif
