/* seq_fixture.h: the fixtures of tests/gen_keras_seq_fixtures.py and gen_keras_seq2_fixtures.py
 * (a model's inputs, outputs and losses, its weights' paths and sizes, then named tensors with
 * their per-sample shapes), read into a fixture, and a fixture's batch as a kc_dataset. The
 * including test defines short_path (how it writes Keras's weight paths) before including it. */
#ifndef KERAC_TEST_SEQ_FIXTURE_H
#define KERAC_TEST_SEQ_FIXTURE_H
#include "testutil.h"

static void short_path(const char *p, char *out, size_t size);

#define MAXT 24

typedef struct {
    int n_inputs, n_outputs, batch;
    kc_dtype in_dtype[KC_MAX_IO];
    kc_loss losses[KC_MAX_IO];
    int n_weights;
    char wpath[64][128]; /* "layer/.../var" */
    int64_t wcount[64];
    struct {
        char name[64];
        int64_t n;
        float *v;
        kc_shape shape; /* per sample, from a "shape" line */
    } t[MAXT];
    int n_t;
} fixture;

static kc_loss loss_of_name(const char *n) {
    if (!strcmp(n, "categorical_crossentropy")) return KC_CATEGORICAL_CROSSENTROPY;
    if (!strcmp(n, "sparse_categorical_crossentropy")) return KC_SPARSE_CATEGORICAL_CROSSENTROPY;
    if (!strcmp(n, "binary_crossentropy")) return KC_BINARY_CROSSENTROPY;
    if (!strcmp(n, "mean_squared_error")) return KC_MEAN_SQUARED_ERROR;
    cr_assert_fail("unknown loss %s", n);
    return KC_LOSS_NONE;
}

static int find_t(fixture *f, const char *name) {
    for (int i = 0; i < f->n_t; i++)
        if (!strcmp(f->t[i].name, name)) return i;
    cr_assert(f->n_t < MAXT);
    snprintf(f->t[f->n_t].name, 64, "%s", name);
    return f->n_t++;
}

static void load_fixture(const char *path, fixture *f) {
    memset(f, 0, sizeof *f);
    FILE *in = fopen(path, "r");
    cr_assert_not_null(in, "cannot open %s", path);
    char line[4096];
    while (fgets(line, sizeof line, in)) {
        char word[64], a[64], b[64];
        int i, rank, d[4] = {0};
        if (line[0] == '#' || sscanf(line, "%63s", word) != 1) continue;
        if (!strcmp(word, "inputs")) sscanf(line, "%*s %d", &f->n_inputs);
        else if (!strcmp(word, "outputs")) sscanf(line, "%*s %d", &f->n_outputs);
        else if (!strcmp(word, "batch")) sscanf(line, "%*s %d", &f->batch);
        else if (!strcmp(word, "weights")) sscanf(line, "%*s %d", &f->n_weights);
        else if (!strcmp(word, "input")) {
            cr_assert(sscanf(line, "%*s %d %63s %63s", &i, a, b) == 3);
            f->in_dtype[i] = !strcmp(b, "int32") ? KC_INT32 : KC_FLOAT32;
        } else if (!strcmp(word, "output")) {
            cr_assert_eq(sscanf(line, "%*s %d %63s %63s", &i, a, b), 3);
            f->losses[i] = loss_of_name(b);
        } else if (!strcmp(word, "weight")) {
            int tr;
            cr_assert(sscanf(line, "%*s %d %63s %d %d %d %d %d %d", &i, a, &tr, &rank, &d[0],
                             &d[1], &d[2], &d[3]) >= 4);
            short_path(a, f->wpath[i], sizeof f->wpath[i]);
            int64_t n = 1;
            for (int k = 0; k < rank; k++) n *= d[k];
            f->wcount[i] = n;
        } else if (!strcmp(word, "shape")) {
            cr_assert(sscanf(line, "%*s %63s %d %d %d %d", a, &rank, &d[0], &d[1], &d[2]) >= 2);
            int k = find_t(f, a);
            f->t[k].shape.rank = rank;
            for (int j = 0; j < rank; j++) f->t[k].shape.dims[j] = d[j];
        } else if (!strcmp(word, "tensor")) {
            long long n;
            cr_assert_eq(sscanf(line, "%*s %63s %lld", a, &n), 2);
            int k = find_t(f, a);
            f->t[k].n = n;
            f->t[k].v = malloc(sizeof(float) * (size_t)n);
            for (long long j = 0; j < n; j++) cr_assert_eq(fscanf(in, "%f", &f->t[k].v[j]), 1);
        }
    }
    fclose(in);
}

static void free_fixture(fixture *f) {
    for (int i = 0; i < f->n_t; i++) free(f->t[i].v);
}

static const float *tensor(const fixture *f, const char *name, int64_t *n, kc_shape *shape) {
    for (int i = 0; i < f->n_t; i++)
        if (!strcmp(f->t[i].name, name) && f->t[i].v) {
            if (n) *n = f->t[i].n;
            if (shape) *shape = f->t[i].shape;
            return f->t[i].v;
        }
    cr_assert_fail("the fixture has no tensor %s", name);
    return NULL;
}

/* the fixture's batch as a dataset: int32 token ids for int inputs and class-index targets;
 * prefix "x" (the training batch) or "xb" (the second length, no targets). Arrays malloc'd. */
static kc_dataset batch_of(const fixture *f, const char *prefix, int with_y) {
    kc_dataset ds = {.count = f->batch, .n_inputs = f->n_inputs};
    char name[16];
    for (int i = 0; i < f->n_inputs; i++) {
        snprintf(name, sizeof name, "%s%d", prefix, i);
        int64_t n;
        kc_shape s;
        const float *v = tensor(f, name, &n, &s);
        kc_array *a = &ds.inputs[i];
        a->shape = s;
        a->dtype = f->in_dtype[i];
        if (a->dtype == KC_INT32) {
            int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
            for (int64_t k = 0; k < n; k++) ids[k] = (int32_t)v[k];
            a->data = ids;
        } else {
            float *c = malloc(sizeof(float) * (size_t)n);
            memcpy(c, v, sizeof(float) * (size_t)n);
            a->data = c;
        }
    }
    if (!with_y) return ds;
    ds.n_targets = f->n_outputs;
    for (int o = 0; o < f->n_outputs; o++) {
        snprintf(name, sizeof name, "y%d", o);
        int64_t n;
        kc_shape s;
        const float *v = tensor(f, name, &n, &s);
        kc_array *a = &ds.targets[o];
        a->shape = s;
        if (f->losses[o] == KC_SPARSE_CATEGORICAL_CROSSENTROPY) {
            int32_t *c = malloc(sizeof(int32_t) * (size_t)n);
            for (int64_t k = 0; k < n; k++) c[k] = (int32_t)v[k];
            a->dtype = KC_INT32;
            a->data = c;
        } else {
            float *c = malloc(sizeof(float) * (size_t)n);
            memcpy(c, v, sizeof(float) * (size_t)n);
            a->dtype = KC_FLOAT32;
            a->data = c;
        }
    }
    return ds;
}

static void free_batch(kc_dataset *ds) {
    for (int i = 0; i < ds->n_inputs; i++) free(ds->inputs[i].data);
    for (int o = 0; o < ds->n_targets; o++) free(ds->targets[o].data);
}
#endif
