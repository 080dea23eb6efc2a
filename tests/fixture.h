/* fixture.h: the fixtures the Keras generators write (tests/gen_keras_*_fixtures.py): lines
 * "tensor NAME COUNT" each followed by COUNT numbers, '#' lines comments; read into named float
 * arrays. Included by the tests that compare layers with Keras (conv, layers2, conv1d, rnn). */
#ifndef KERAC_TEST_FIXTURE_H
#define KERAC_TEST_FIXTURE_H
#include "testutil.h" /* Criterion, or tsan_shim.h in the TSan build */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TU_MAX_TENSORS 32
typedef struct {
    char name[32];
    long count;
    float *data;
} tensor;
typedef struct {
    tensor t[TU_MAX_TENSORS];
    int n;
} fixture;

static inline void tu_fixture_load(const char *path, fixture *fx) {
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s (run the tests from the repository root)", path);
    memset(fx, 0, sizeof *fx);
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        tensor *t = &fx->t[fx->n];
        cr_assert(fx->n < TU_MAX_TENSORS &&
                      sscanf(line, "tensor %31s %ld", t->name, &t->count) == 2 && t->count > 0,
                  "%s: bad line '%s'", path, line);
        t->data = malloc(sizeof(float) * (size_t)t->count);
        cr_assert_not_null(t->data);
        for (long i = 0; i < t->count; i++)
            cr_assert(fscanf(f, "%f", &t->data[i]) == 1, "%s: tensor %s value %ld", path,
                      t->name, i);
        fx->n++;
    }
    fclose(f);
}

/* the tensor of that name, or NULL */
static inline const tensor *tu_fixture_find(const fixture *fx, const char *name) {
    for (int i = 0; i < fx->n; i++)
        if (!strcmp(fx->t[i].name, name)) return &fx->t[i];
    return NULL;
}

/* the tensor of that name; a fixture without it fails the test */
static inline const tensor *tu_fixture_get(const fixture *fx, const char *name) {
    const tensor *t = tu_fixture_find(fx, name);
    cr_assert_not_null(t, "fixture has no tensor %s", name);
    return t;
}

static inline void tu_fixture_free(fixture *fx) {
    for (int i = 0; i < fx->n; i++) free(fx->t[i].data);
    fx->n = 0;
}

/* a whole file as a string (malloc'd) */
static inline char *tu_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_not_null(s);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}
#endif
