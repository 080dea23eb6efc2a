/* test_keras_ref.c: compares kerac with real Keras 3 on the fixtures that
 * tests/gen_keras_fixtures.py writes into tests/fixtures/keras (forward, loss, gradients, steps). */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>

#include "testutil.h"
/* after criterion.h (from testutil.h): included first, it breaks Criterion 2.4's Test() */
#include <criterion/parameterized.h>

/* Tests run from the repository root; another layout passes -DKERAC_FIXTURES=... */
#ifndef KERAC_FIXTURES
#define KERAC_FIXTURES "tests/fixtures"
#endif
#define KERAS_DIR KERAC_FIXTURES "/keras"

/* Every fixture the generator writes; fixtures_all_listed keeps this in step with the folder. */
static const char *const CASES[] = {"mlp_cce",      "mlp_sparse",   "mlp_bce",
                                    "mlp_mse",      "softmax_clip", "activation_layer"};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))

/* ---- the fixture format (see the generator's docstring) ----------------------------------- */

#define FX_MAX_LAYERS 16
#define FX_MAX_TENSORS 24
#define FX_MAX_COUNT 1000000
#define FX_NAME 64

typedef struct {
    int dense;            /* 1: dense in -> units, 0: an activation layer */
    int in, units;
    char act[FX_NAME];
} fx_layer;

typedef struct {
    char name[FX_NAME];
    long count;
    float *data;
} fx_tensor;

typedef struct {
    int n_layers;
    fx_layer layers[FX_MAX_LAYERS];
    char loss[FX_NAME];
    int batch;
    int n_tensors;
    fx_tensor tensors[FX_MAX_TENSORS];
} fixture;

static void fx_free(fixture *fx) {
    for (int i = 0; i < fx->n_tensors; i++) free(fx->tensors[i].data);
    fx->n_tensors = 0;
}

/* A whitespace token stream over the file's text, '#' lines dropped; the position for errors. */
typedef struct {
    char *text, *pos;
    int line, newline_ended; /* the line of the last token; whether a '\n' ended it */
    const char *path;
    char *err;
    size_t errsize;
} fx_reader;

static int fx_fail(fx_reader *r, const char *fmt, ...) {
    int n = snprintf(r->err, r->errsize, "%s:%d: ", r->path, r->line);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < r->errsize) vsnprintf(r->err + n, r->errsize - n, fmt, ap);
    va_end(ap);
    return -1;
}

/* The next token, NUL-terminated in place (which overwrites the '\n' that may end it, hence
 * newline_ended); NULL at the end of the text. */
static char *fx_token(fx_reader *r) {
    r->line += r->newline_ended;
    r->newline_ended = 0;
    for (;;) {
        while (*r->pos && strchr(" \t\r\n", *r->pos)) r->line += *r->pos++ == '\n';
        if (*r->pos != '#') break;
        while (*r->pos && *r->pos != '\n') r->pos++;
    }
    if (!*r->pos) return NULL;
    char *start = r->pos;
    while (*r->pos && !strchr(" \t\r\n", *r->pos)) r->pos++;
    if (*r->pos) {
        r->newline_ended = *r->pos == '\n';
        *r->pos++ = '\0';
    }
    return start;
}

static int fx_word(fx_reader *r, const char *what, char *out) {
    const char *t = fx_token(r);
    if (!t) return fx_fail(r, "end of file where %s was expected", what);
    if (strlen(t) >= FX_NAME) return fx_fail(r, "%s \"%.20s...\" is too long", what, t);
    strcpy(out, t);
    return 0;
}

static int fx_long(fx_reader *r, const char *what, long lo, long hi, long *out) {
    const char *t = fx_token(r);
    if (!t) return fx_fail(r, "end of file where %s was expected", what);
    char *end;
    errno = 0;
    long v = strtol(t, &end, 10);
    if (*end || end == t || errno || v < lo || v > hi)
        return fx_fail(r, "%s \"%s\" is not an integer in [%ld, %ld]", what, t, lo, hi);
    *out = v;
    return 0;
}

static int fx_expect(fx_reader *r, const char *keyword) {
    const char *t = fx_token(r);
    if (!t || strcmp(t, keyword) != 0)
        return fx_fail(r, "expected \"%s\", found \"%s\"", keyword, t ? t : "end of file");
    return 0;
}

static int fx_tensor_read(fx_reader *r, fixture *fx) {
    if (fx->n_tensors == FX_MAX_TENSORS) return fx_fail(r, "more than %d tensors", FX_MAX_TENSORS);
    fx_tensor *t = &fx->tensors[fx->n_tensors];
    if (fx_word(r, "a tensor name", t->name) || fx_long(r, "a tensor size", 1, FX_MAX_COUNT, &t->count))
        return -1;
    for (int i = 0; i < fx->n_tensors; i++)
        if (!strcmp(fx->tensors[i].name, t->name)) return fx_fail(r, "tensor %s twice", t->name);
    t->data = malloc(t->count * sizeof(float));
    if (!t->data) return fx_fail(r, "out of memory");
    fx->n_tensors++; /* owned from here on, so fx_free releases it on any later error */
    for (long i = 0; i < t->count; i++) {
        const char *tok = fx_token(r);
        if (!tok) return fx_fail(r, "tensor %s ends after %ld of %ld values", t->name, i, t->count);
        char *end;
        t->data[i] = strtof(tok, &end);
        if (*end || end == tok) return fx_fail(r, "tensor %s value %ld \"%s\" is not a number", t->name, i, tok);
    }
    return 0;
}

static int fx_parse_text(fx_reader *r, fixture *fx) {
    long v;
    if (fx_expect(r, "layers") || fx_long(r, "the layer count", 1, FX_MAX_LAYERS, &v)) return -1;
    fx->n_layers = (int)v;
    for (int i = 0; i < fx->n_layers; i++) {
        fx_layer *l = &fx->layers[i];
        char kind[FX_NAME];
        if (fx_expect(r, "layer") || fx_word(r, "a layer kind", kind)) return -1;
        l->dense = !strcmp(kind, "dense");
        if (l->dense) {
            long in, units;
            if (fx_long(r, "dense input size", 1, FX_MAX_COUNT, &in) ||
                fx_long(r, "dense units", 1, FX_MAX_COUNT, &units))
                return -1;
            l->in = (int)in;
            l->units = (int)units;
        } else if (strcmp(kind, "activation") != 0) {
            return fx_fail(r, "unknown layer kind \"%s\"", kind);
        }
        if (fx_word(r, "an activation", l->act)) return -1;
    }
    if (fx_expect(r, "loss") || fx_word(r, "a loss name", fx->loss) || fx_expect(r, "batch") ||
        fx_long(r, "the batch size", 1, FX_MAX_COUNT, &v))
        return -1;
    fx->batch = (int)v;
    const char *t;
    while ((t = fx_token(r)) != NULL) {
        if (strcmp(t, "tensor") != 0) return fx_fail(r, "expected \"tensor\", found \"%s\"", t);
        if (fx_tensor_read(r, fx)) return -1;
    }
    return 0;
}

/* Parses path into fx; on failure fills err and leaves nothing allocated. */
static int fx_parse(const char *path, fixture *fx, char *err, size_t errsize) {
    memset(fx, 0, sizeof *fx);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsize, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    while (mem && (n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, mem);
    int bad_read = ferror(f);
    fclose(f);
    if (!mem || fclose(mem) != 0 || bad_read) {
        free(text);
        snprintf(err, errsize, "%s: cannot read", path);
        return -1;
    }
    fx_reader r = {text, text, 1, 0, path, err, errsize};
    int rc = fx_parse_text(&r, fx);
    free(text);
    if (rc) fx_free(fx);
    return rc;
}

static const fx_tensor *fx_find(const fixture *fx, const char *name) {
    for (int i = 0; i < fx->n_tensors; i++)
        if (!strcmp(fx->tensors[i].name, name)) return &fx->tensors[i];
    return NULL;
}

/* ---- building the model the fixture describes --------------------------------------------- */

static int act_from_name(const char *name, kc_act *out) {
    static const struct { const char *name; kc_act act; } acts[] = {
        {"linear", KC_LINEAR}, {"relu", KC_RELU}, {"softmax", KC_SOFTMAX},
        {"sigmoid", KC_SIGMOID}, {"tanh", KC_TANH}};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        if (!strcmp(name, acts[i].name)) return *out = acts[i].act, 0;
    return -1;
}

static int loss_from_name(const char *name, kc_loss *out) {
    static const struct { const char *name; kc_loss loss; } losses[] = {
        {"categorical_crossentropy", KC_CATEGORICAL_CROSSENTROPY},
        {"sparse_categorical_crossentropy", KC_SPARSE_CATEGORICAL_CROSSENTROPY},
        {"binary_crossentropy", KC_BINARY_CROSSENTROPY},
        {"mean_squared_error", KC_MEAN_SQUARED_ERROR}};
    for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++)
        if (!strcmp(name, losses[i].name)) return *out = losses[i].loss, 0;
    return -1;
}

/* A loaded, validated fixture: its tensors located and their sizes checked against the model. */
typedef struct {
    const char *name;
    fixture fx;
    kc_loss loss;
    int in, out; /* per-sample input and output sizes */
    const fx_tensor *weights, *x, *y;
} ref_case;

static const fx_tensor *need_tensor(const ref_case *c, const char *name, long count) {
    const fx_tensor *t = fx_find(&c->fx, name);
    cr_assert_not_null(t, "fixture %s: no tensor \"%s\"", c->name, name);
    cr_assert(count < 0 || t->count == count, "fixture %s: tensor %s has %ld values, want %ld",
              c->name, name, t->count, count);
    return t;
}

static void load_case(const char *name, ref_case *c) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/%s.txt", KERAS_DIR, name);
    memset(c, 0, sizeof *c);
    c->name = name;
    cr_assert(fx_parse(path, &c->fx, err, sizeof err) == 0, "malformed fixture: %s", err);
    const fixture *fx = &c->fx;
    cr_assert(loss_from_name(fx->loss, &c->loss) == 0, "fixture %s: unknown loss %s", name, fx->loss);
    long params = 0;
    int width = fx->layers[0].dense ? fx->layers[0].in : 0;
    cr_assert(width > 0, "fixture %s: the first layer must be dense", name);
    c->in = width;
    for (int i = 0; i < fx->n_layers; i++) {
        const fx_layer *l = &fx->layers[i];
        kc_act act;
        cr_assert(act_from_name(l->act, &act) == 0, "fixture %s: unknown activation %s", name, l->act);
        if (!l->dense) continue;
        cr_assert(l->in == width, "fixture %s: layer %d takes %d inputs after %d", name, i, l->in, width);
        params += (long)l->in * l->units + l->units;
        width = l->units;
    }
    c->out = width;
    c->weights = need_tensor(c, "weights", params);
    c->x = need_tensor(c, "x", (long)fx->batch * c->in);
    /* sparse labels are one class index (as a float) per sample */
    c->y = need_tensor(c, "y", (long)fx->batch * (c->loss == KC_SPARSE_CATEGORICAL_CROSSENTROPY ? 1 : c->out));
}

/* The fixture's model with its weights; compiled when opt is not NULL. */
static kc_model *build_model(const ref_case *c, kc_optimizer *opt) {
    kc_model *m = kc_sequential(kc_shape1(c->in));
    cr_assert_not_null(m);
    for (int i = 0; i < c->fx.n_layers; i++) {
        const fx_layer *l = &c->fx.layers[i];
        kc_act act = KC_LINEAR;
        act_from_name(l->act, &act); /* checked by load_case */
        KC_CHECK(kc_add(m, l->dense ? kc_dense(l->units, act) : kc_activation(act)));
    }
    cr_assert_eq(kc_count_params(m), c->weights->count, "%s: kc_count_params %lld, Keras %ld",
                 c->name, (long long)kc_count_params(m), c->weights->count);
    KC_CHECK(kc_set_weights(m, c->weights->data, c->weights->count));
    if (opt) KC_CHECK(kc_compile(m, c->loss, opt, KC_METRIC_NONE));
    return m;
}

/* ---- comparison ------------------------------------------------------------------------------
 * Tolerance: |got - want| <= max(1e-5 * |want|, 1e-6). That is exactly "within 1e-5 relative"
 * for |want| >= 0.1, and an absolute 1e-6 below, where float32 rounding of values computed as
 * differences of O(1) terms (gradients, tiny probabilities) leaves no relative precision. */
#define REL_TOL 1e-5
#define ABS_TOL 1e-6

static int ref_close(double got, double want) {
    return fabs(got - want) <= fmax(REL_TOL * fabs(want), ABS_TOL);
}

static void expect_tensor(const char *case_name, const char *what, const float *got,
                          const fx_tensor *want) {
    long bad = 0, first = -1;
    for (long i = 0; i < want->count; i++) {
        if (ref_close(got[i], want->data[i])) continue;
        if (first < 0) first = i;
        bad++;
    }
    cr_expect(bad == 0,
              "%s %s: %ld of %ld values differ from Keras; first at index %ld: got %.9g, Keras %.9g",
              case_name, what, bad, want->count, first, first < 0 ? 0.0 : got[first],
              first < 0 ? 0.0 : want->data[first]);
}

static void expect_scalar(const char *case_name, const char *what, double got, const fx_tensor *want) {
    cr_expect(ref_close(got, want->data[0]), "%s %s: got %.9g, Keras %.9g", case_name, what, got,
              (double)want->data[0]);
}

/* ---- the checks --------------------------------------------------------------------------- */

static kc_optimizer *opt_sgd(void) { return kc_sgd(&(kc_sgd_opts){0}); }
static kc_optimizer *opt_momentum(void) {
    return kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f, .momentum = 0.9f});
}
static kc_optimizer *opt_nesterov(void) {
    return kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f, .momentum = 0.9f, .nesterov = 1});
}
static kc_optimizer *opt_rmsprop(void) { return kc_rmsprop(&(kc_rmsprop_opts){0}); }
static kc_optimizer *opt_adam(void) { return kc_adam(&(kc_adam_opts){0}); }
static kc_optimizer *opt_adadelta(void) {
    return kc_adadelta(&(kc_adadelta_opts){.learning_rate = 1.0f});
}
static kc_optimizer *opt_adagrad(void) { return kc_adagrad(&(kc_adagrad_opts){0}); }
static kc_optimizer *opt_nadam(void) { return kc_nadam(&(kc_nadam_opts){0}); }
static kc_optimizer *opt_adamw(void) { return kc_adamw(&(kc_adamw_opts){0}); }
static kc_optimizer *opt_adamw_decay(void) {
    return kc_adamw(&(kc_adamw_opts){.learning_rate = 0.01f, .weight_decay = 0.1f});
}

typedef struct {
    const char *name;   /* also the fixture tensor (after_<name>) for optimizer checks */
    kc_optimizer *(*make_opt)(void); /* NULL: predict or gradients */
    int steps;
} ref_check;

static const ref_check CHECKS[] = {
    {"output", NULL, 0},              {"grads", NULL, 0},
    {"sgd", opt_sgd, 1},              {"sgd_momentum_2", opt_momentum, 2},
    {"sgd_nesterov_2", opt_nesterov, 2}, {"rmsprop_2", opt_rmsprop, 2},
    {"adam_2", opt_adam, 2},          {"adadelta_3", opt_adadelta, 3},
    {"adagrad_3", opt_adagrad, 3},    {"nadam_3", opt_nadam, 3},
    {"adamw_3", opt_adamw, 3},        {"adamw_decay_3", opt_adamw_decay, 3},
};
#define N_CHECKS ((int)(sizeof CHECKS / sizeof CHECKS[0]))

static void check_predict(const ref_case *c) {
    const fx_tensor *want = need_tensor(c, "output", (long)c->fx.batch * c->out);
    kc_model *m = build_model(c, NULL);
    float *got = calloc(want->count, sizeof(float));
    cr_assert_not_null(got);
    KC_CHECK(kc_predict(m, c->x->data, c->fx.batch, got));
    expect_tensor(c->name, "kc_predict output", got, want);
    free(got);
    kc_model_free(m);
}

static void check_gradients(const ref_case *c) {
    const fx_tensor *want_loss = need_tensor(c, "loss", 1);
    const fx_tensor *want = need_tensor(c, "grads", c->weights->count);
    kc_model *m = build_model(c, kc_sgd(NULL));
    float *got = calloc(want->count, sizeof(float));
    cr_assert_not_null(got);
    double loss = NAN;
    KC_CHECK(kc_compute_gradients(m, c->x->data, c->y->data, c->fx.batch, 0, &loss, got, want->count));
    expect_scalar(c->name, "kc_compute_gradients loss", loss, want_loss);
    expect_tensor(c->name, "kc_compute_gradients grads", got, want);
    free(got);
    kc_model_free(m);
}

static void check_training(const ref_case *c, const ref_check *k) {
    char tensor[FX_NAME], what[2 * FX_NAME];
    snprintf(tensor, sizeof tensor, "after_%s", k->name);
    const fx_tensor *want = need_tensor(c, tensor, c->weights->count);
    const fx_tensor *want_loss = need_tensor(c, "train_loss", 1);
    kc_optimizer *opt = k->make_opt();
    cr_assert_not_null(opt, "%s: creating the optimizer failed: %s", k->name, kc_last_error());
    kc_model *m = build_model(c, opt);
    for (int step = 0; step < k->steps; step++) {
        kc_metrics r = {.loss = NAN, .accuracy = NAN};
        KC_CHECK(kc_train_on_batch(m, c->x->data, c->y->data, c->fx.batch, &r));
        if (step == 0) {
            snprintf(what, sizeof what, "%s first kc_train_on_batch loss", k->name);
            expect_scalar(c->name, what, r.loss, want_loss);
        }
    }
    float *got = calloc(want->count, sizeof(float));
    cr_assert_not_null(got);
    KC_CHECK(kc_get_weights(m, got, want->count));
    snprintf(what, sizeof what, "weights after %d %s step(s), %s", k->steps, k->name, tensor);
    expect_tensor(c->name, what, got, want);
    free(got);
    kc_model_free(m);
}

/* One parameterized test per (case, check), so each mismatch shows up on its own. */
typedef struct {
    int fcase, check;
} ref_param;

ParameterizedTestParameters(keras_ref, matches_keras) {
    static ref_param params[N_CASES * N_CHECKS];
    for (int i = 0; i < N_CASES; i++)
        for (int j = 0; j < N_CHECKS; j++) params[i * N_CHECKS + j] = (ref_param){i, j};
    return cr_make_param_array(ref_param, params, N_CASES * N_CHECKS);
}

ParameterizedTest(ref_param *p, keras_ref, matches_keras) {
    ref_case c;
    load_case(CASES[p->fcase], &c);
    const ref_check *k = &CHECKS[p->check];
    cr_log_info("case %s, check %s", c.name, k->name);
    if (k->make_opt) check_training(&c, k);
    else if (!strcmp(k->name, "output")) check_predict(&c);
    else check_gradients(&c);
    fx_free(&c.fx);
}

/* A fixture added by the generator but not to CASES would silently go untested. */
Test(keras_ref, fixtures_all_listed) {
    DIR *d = opendir(KERAS_DIR);
    cr_assert_not_null(d, "cannot open %s: %s", KERAS_DIR, strerror(errno));
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".txt") != 0) continue;
        int listed = 0;
        for (int i = 0; i < N_CASES; i++)
            listed |= strlen(CASES[i]) == len - 4 && !strncmp(CASES[i], e->d_name, len - 4);
        cr_expect(listed, "%s/%s is not in CASES", KERAS_DIR, e->d_name);
        found += listed;
    }
    closedir(d);
    cr_expect_eq(found, N_CASES, "%d of %d listed fixtures present in %s", found, N_CASES, KERAS_DIR);
}

/* The parser reports a broken fixture (with file and line) instead of crashing on it. */
Test(keras_ref, parser_rejects_malformed) {
    static const struct { const char *text, *needle; } bad[] = {
        {"", "end of file"},
        {"layers 1\nlayer dense 2 1 relu\nloss mean_squared_error\nbatch 1\ntensor x 3\n1 2\n",
         "ends after 2 of 3"},
        {"layers 1\nlayer dense 2 1 relu\nloss mean_squared_error\nbatch 1\ntensor x 2\n1 zz\n",
         "not a number"},
        {"layers 1\nlayer conv 2 1 relu\n", "unknown layer kind"},
        {"layers 99999\n", "not an integer in"},
        {"# c\nlayers 1\nlayer dense 2 1 relu\nloss l\nbatch 1\nweights 2\n", ":6: expected \"tensor\""},
    };
    char *dir = tu_tmpdir();
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/bad.txt", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fixture fx;
        tu_write_file(path, bad[i].text, strlen(bad[i].text));
        cr_assert(fx_parse(path, &fx, err, sizeof err) != 0, "case %zu parsed", i);
        cr_expect(strstr(err, bad[i].needle) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err,
                  bad[i].needle);
    }
    snprintf(path, sizeof path, "%s/missing.txt", dir);
    fixture fx;
    cr_expect(fx_parse(path, &fx, err, sizeof err) != 0 && strstr(err, "missing.txt"));
    remove(path);
    snprintf(path, sizeof path, "%s/bad.txt", dir);
    remove(path);
    rmdir(dir);
}
