/* test_losses.c: Keras 3's losses with their options (kc_loss_spec): values and gradients
 * against Keras (tests/gen_keras_loss_fixtures.py), every weight gradient through a small model
 * against a central finite difference, the spec through .keras and .h5 files, and a .keras file
 * Keras compiled with SparseCategoricalCrossentropy(from_logits=True) trained one step. */
#include "testutil.h"
#include "losses.h" /* kc_loss_compute: the value and d loss / d y_pred the fixtures hold */

#define FIX "tests/fixtures/keras_losses/"
#define MAX_CASES 64
#define MAXN 64

typedef struct {
    char name[64];
    kc_loss_spec spec;
    int batch, cols, sparse;
    float y_true[MAXN], y_pred[MAXN], grad[MAXN];
    double value;
} loss_case;

static void read_floats(FILE *f, const char *key, float *out, int n) {
    char k[32];
    cr_assert_eq(fscanf(f, "%31s", k), 1);
    cr_assert_str_eq(k, key);
    for (int i = 0; i < n; i++) cr_assert_eq(fscanf(f, "%f", &out[i]), 1, "%s[%d]", key, i);
}

static int load_cases(loss_case *cases) {
    FILE *f = fopen(FIX "cases.txt", "r");
    cr_assert_not_null(f, "cannot open " FIX "cases.txt");
    char line[256];
    cr_assert_not_null(fgets(line, sizeof line, f)); /* the versions */
    int n = 0;
    char word[32];
    while (fscanf(f, "%31s", word) == 1) {
        cr_assert_str_eq(word, "case");
        cr_assert(n < MAX_CASES);
        loss_case *c = &cases[n++];
        memset(c, 0, sizeof *c);
        char fn[64], red[32];
        kc_loss_spec *s = &c->spec;
        cr_assert_eq(fscanf(f, "%63s spec %63s %d %f %d %d %f %f %f %d %31s", c->name, fn,
                            &s->from_logits, &s->label_smoothing, &s->has_ignore_class,
                            &s->ignore_class, &s->gamma, &s->alpha, &s->delta,
                            &s->apply_class_balancing, red), 11);
        s->kind = kc_loss_find(fn);
        cr_assert(s->kind != KC_LOSS_NONE, "%s: loss %s", c->name, fn);
        s->reduction = !strcmp(red, "sum") ? KC_REDUCTION_SUM
                       : !strcmp(red, "mean") ? KC_REDUCTION_MEAN
                                              : KC_REDUCTION_SUM_OVER_BATCH_SIZE;
        cr_assert_eq(fscanf(f, " shape %d %d %d", &c->batch, &c->cols, &c->sparse), 3);
        int nt = c->sparse ? c->batch : c->batch * c->cols, np = c->batch * c->cols;
        cr_assert(np <= MAXN);
        read_floats(f, "y_true", c->y_true, nt);
        read_floats(f, "y_pred", c->y_pred, np);
        float v;
        read_floats(f, "value", &v, 1);
        c->value = v;
        read_floats(f, "grad", c->grad, np);
    }
    fclose(f);
    cr_assert(n >= 30, "only %d cases", n);
    return n;
}

/* The tolerance: |kerac - keras| <= 1e-5 * max(|keras|, 1e-3 * the largest |keras| of the same
 * array) (float32 arithmetic on both sides; the floor keeps near-zero entries of a gradient
 * from demanding more than float32 gives) */
static int close_rel(double a, double b, double largest) {
    return fabs(a - b) <= 1e-5 * fmax(fabs(b), 1e-3 * largest) + 1e-9;
}

Test(losses, keras_values_and_gradients) {
    static loss_case cases[MAX_CASES];
    int n = load_cases(cases);
    for (int k = 0; k < n; k++) {
        loss_case *c = &cases[k];
        kc_loss_spec s;
        KC_CHECK(kc_loss_spec_resolve(&c->spec, &s, c->name));
        float g[MAXN];
        int np = c->batch * c->cols;
        double v = kc_loss_compute(&s, c->y_pred, c->y_true, c->batch, c->cols, g, 0);
        cr_expect(close_rel(v, c->value, fabs(c->value)), "%s: loss %.9g, Keras %.9g", c->name,
                  v, c->value);
        double largest = 0.0;
        for (int i = 0; i < np; i++) largest = fmax(largest, fabs(c->grad[i]));
        for (int i = 0; i < np; i++)
            cr_expect(close_rel(g[i], c->grad[i], largest), "%s: grad[%d] %.9g, Keras %.9g",
                      c->name, i, (double)g[i], (double)c->grad[i]);
    }
}

/* ---- finite differences through Input(3) -> Dense(cols, act) ---- */

static kc_act act_for(const kc_loss_spec *s) {
    if (s->from_logits) return KC_LINEAR;
    switch (s->kind) {
    case KC_CATEGORICAL_CROSSENTROPY:
    case KC_SPARSE_CATEGORICAL_CROSSENTROPY:
    case KC_CATEGORICAL_FOCAL_CROSSENTROPY:
    case KC_KL_DIVERGENCE: return KC_SOFTMAX;
    case KC_BINARY_CROSSENTROPY:
    case KC_BINARY_FOCAL_CROSSENTROPY:
    case KC_POISSON:
    case KC_MEAN_SQUARED_LOGARITHMIC_ERROR: return KC_SIGMOID;
    default: return KC_LINEAR;
    }
}

static double model_loss(kc_model *m, const float *w, int64_t n, const float *x, const float *y,
                         int batch) {
    double loss;
    KC_CHECK(kc_set_weights(m, w, n));
    KC_CHECK(kc_compute_gradients(m, x, y, batch, 0, &loss, NULL, 0));
    return loss;
}

Test(losses, finite_difference_gradients) {
    static loss_case cases[MAX_CASES];
    int n = load_cases(cases);
    for (int k = 0; k < n; k++) {
        loss_case *c = &cases[k];
        kc_model *m = kc_sequential(kc_shape1(3));
        KC_CHECK(kc_add(m, kc_dense(c->cols, act_for(&c->spec))));
        kc_compile_opts o = {.optimizer = kc_sgd(NULL), .loss_specs = {c->spec}};
        KC_CHECK(kc_compile_ex(m, &o));
        int64_t np = kc_count_params(m);
        float w[64], ga[64], x[MAXN];
        cr_assert(np <= 64);
        for (int64_t i = 0; i < np; i++) w[i] = 0.6f * sinf(1.3f * (float)i + 0.4f);
        for (int i = 0; i < c->batch * 3; i++) x[i] = cosf(0.9f * (float)i + 0.2f);
        double loss;
        KC_CHECK(kc_set_weights(m, w, np));
        KC_CHECK(kc_compute_gradients(m, x, c->y_true, c->batch, 0, &loss, ga, np));
        cr_assert(isfinite(loss), "%s: loss %g", c->name, loss);
        double largest = 0.0;
        for (int64_t i = 0; i < np; i++) largest = fmax(largest, fabs(ga[i]));
        cr_expect(largest > 1e-3, "%s: every gradient is below 1e-3", c->name);
        /* a piecewise-linear loss: a smaller step, to stay off its kinks (the arg max of
         * categorical_hinge's negative term moves within 1e-2 here) */
        kc_loss kd = c->spec.kind;
        const float h = kd == KC_CATEGORICAL_HINGE || kd == KC_MEAN_ABSOLUTE_ERROR ||
                                kd == KC_HINGE || kd == KC_HUBER
                            ? 1e-3f
                            : 1e-2f;
        for (int64_t i = 0; i < np; i++) {
            float wi = w[i];
            w[i] = wi + h;
            double lp = model_loss(m, w, np, x, c->y_true, c->batch);
            w[i] = wi - h;
            double lm = model_loss(m, w, np, x, c->y_true, c->batch);
            w[i] = wi;
            double fd = (lp - lm) / (2.0 * (double)h);
            cr_expect(fabs(fd - ga[i]) <= 2e-2 * fabs(fd) + 1e-4 + 1e-3 * largest,
                      "%s: weight %lld: analytic %.7g, finite difference %.7g", c->name,
                      (long long)i, (double)ga[i], fd);
        }
        kc_model_free(m);
    }
}

/* ---- compile checks ---- */

Test(losses, compile_refuses_what_keras_lacks) {
    kc_model *m = kc_sequential(kc_shape1(3));
    KC_CHECK(kc_add(m, kc_dense(3, KC_LINEAR)));
    kc_compile_opts o = {.optimizer = kc_sgd(NULL),
                         .loss_specs = {{.kind = KC_MEAN_SQUARED_ERROR, .from_logits = 1}}};
    KC_EXPECT_ERR(kc_compile_ex(m, &o), KC_EINVAL, "mean_squared_error has no from_logits");
    o = (kc_compile_opts){.optimizer = kc_sgd(NULL),
                          .loss_specs = {{.kind = KC_HUBER, .reduction = KC_REDUCTION_NONE}}};
    KC_EXPECT_ERR(kc_compile_ex(m, &o), KC_EINVAL, "reduction \"none\"");
    o = (kc_compile_opts){.optimizer = kc_sgd(NULL),
                          .loss_specs = {{.kind = KC_SPARSE_CATEGORICAL_CROSSENTROPY,
                                          .label_smoothing = 0.1f}}};
    KC_EXPECT_ERR(kc_compile_ex(m, &o), KC_EINVAL, "has no label_smoothing");
    o = (kc_compile_opts){.optimizer = kc_sgd(NULL),
                          .loss_specs = {{.kind = KC_CATEGORICAL_CROSSENTROPY, .axis = 1}}};
    KC_EXPECT_ERR(kc_compile_ex(m, &o), KC_EINVAL, "last axis");
    /* the plain kc_loss still compiles, and reads back as its spec with the defaults */
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
    kc_loss_spec s = kc_model_loss_spec(m, 0);
    cr_assert_eq(s.kind, KC_CATEGORICAL_CROSSENTROPY);
    cr_assert_eq(s.from_logits, 0);
    kc_model_free(m);
}

Test(losses, names_and_aliases) {
    cr_assert_eq(kc_loss_find("mse"), KC_MEAN_SQUARED_ERROR);
    cr_assert_eq(kc_loss_find("MAPE"), KC_MEAN_ABSOLUTE_PERCENTAGE_ERROR);
    cr_assert_eq(kc_loss_find("kld"), KC_KL_DIVERGENCE);
    cr_assert_eq(kc_loss_find("Huber"), KC_HUBER);
    cr_assert_eq(kc_loss_find("huber_loss"), KC_HUBER);
    cr_assert_eq(kc_loss_find("bce"), KC_BINARY_CROSSENTROPY);
    cr_assert_eq(kc_loss_find("CategoricalFocalCrossentropy"), KC_CATEGORICAL_FOCAL_CROSSENTROPY);
    cr_assert_eq(kc_loss_find("dice"), KC_LOSS_NONE);
    for (int l = 1; l < KC_LOSS_COUNT; l++) {
        cr_assert_eq(kc_loss_find(kc_loss_name((kc_loss)l)), (kc_loss)l);
        cr_assert_eq(kc_loss_find(kc_loss_info_of((kc_loss)l)->class_name), (kc_loss)l);
    }
    cr_assert_str_eq(kc_reduction_name(KC_REDUCTION_SUM_OVER_BATCH_SIZE), "sum_over_batch_size");
}

/* ---- files ---- */

static void expect_same_spec(kc_loss_spec a, kc_loss_spec b, const char *what) {
    cr_expect_eq(a.kind, b.kind, "%s: kind", what);
    cr_expect_eq(a.from_logits, b.from_logits, "%s: from_logits", what);
    cr_expect_eq(a.label_smoothing, b.label_smoothing, "%s: label_smoothing", what);
    cr_expect_eq(a.has_ignore_class, b.has_ignore_class, "%s: has_ignore_class", what);
    cr_expect_eq(a.ignore_class, b.ignore_class, "%s: ignore_class", what);
    cr_expect_eq(a.gamma, b.gamma, "%s: gamma", what);
    cr_expect_eq(a.alpha, b.alpha, "%s: alpha", what);
    cr_expect_eq(a.delta, b.delta, "%s: delta", what);
    cr_expect_eq(a.apply_class_balancing, b.apply_class_balancing, "%s: balancing", what);
    cr_expect_eq(a.reduction, b.reduction, "%s: reduction", what);
}

Test(losses, spec_through_files) {
    const kc_loss_spec specs[] = {
        {.kind = KC_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = 1, .has_ignore_class = 1,
         .ignore_class = 2},
        {.kind = KC_CATEGORICAL_CROSSENTROPY, .label_smoothing = 0.25f, .reduction = KC_REDUCTION_SUM},
        {.kind = KC_BINARY_FOCAL_CROSSENTROPY, .from_logits = 1, .gamma = 1.5f, .alpha = 0.4f,
         .apply_class_balancing = 1},
        {.kind = KC_CATEGORICAL_FOCAL_CROSSENTROPY, .gamma = 3.0f},
        {.kind = KC_HUBER, .delta = 0.5f},
        {.kind = KC_COSINE_SIMILARITY, .reduction = KC_REDUCTION_MEAN},
        {.kind = KC_MEAN_ABSOLUTE_PERCENTAGE_ERROR},
        {.kind = KC_CATEGORICAL_CROSSENTROPY},
    };
    const char *exts[] = {"m.keras", "m.h5"};
    char *dir = tu_tmpdir();
    for (size_t k = 0; k < sizeof specs / sizeof *specs; k++)
        for (int e = 0; e < 2; e++) {
            kc_model *m = kc_sequential(kc_shape1(3));
            KC_CHECK(kc_add(m, kc_dense(3, KC_SOFTMAX)));
            kc_compile_opts o = {.optimizer = kc_adam(NULL), .loss_specs = {specs[k]}};
            KC_CHECK(kc_compile_ex(m, &o));
            char path[128], what[160];
            snprintf(path, sizeof path, "%s/%zu%s", dir, k, exts[e]);
            snprintf(what, sizeof what, "%s (%s)", path, kc_loss_name(specs[k].kind));
            KC_CHECK(kc_save(m, path));
            kc_model *back = NULL;
            KC_CHECK(kc_load(path, &back));
            expect_same_spec(kc_model_loss_spec(back, 0), kc_model_loss_spec(m, 0), what);
            kc_model_free(back);
            kc_model_free(m);
        }
}

Test(losses, keras_file_sparse_from_logits_trains_as_keras) {
    kc_model *m = NULL;
    KC_CHECK(kc_load(FIX "sparse_logits.keras", &m));
    kc_loss_spec s = kc_model_loss_spec(m, 0);
    cr_assert_eq(s.kind, KC_SPARSE_CATEGORICAL_CROSSENTROPY);
    cr_assert_eq(s.from_logits, 1);
    FILE *f = fopen(FIX "sparse_logits.txt", "r");
    cr_assert_not_null(f);
    char line[256];
    cr_assert_not_null(fgets(line, sizeof line, f));
    float x[24], y[6], loss, after[64];
    read_floats(f, "x", x, 24);
    read_floats(f, "y", y, 6);
    read_floats(f, "loss", &loss, 1);
    int n;
    cr_assert_eq(fscanf(f, " after %d", &n), 1);
    cr_assert(n <= 64 && n == kc_count_params(m));
    for (int i = 0; i < n; i++) cr_assert_eq(fscanf(f, "%f", &after[i]), 1);
    fclose(f);
    kc_metrics r;
    KC_CHECK(kc_train_on_batch(m, x, y, 6, &r));
    cr_expect(tu_close(r.loss, loss, 1e-5), "loss %.9g, Keras %.9g", r.loss, (double)loss);
    float w[64];
    KC_CHECK(kc_get_weights(m, w, n));
    for (int i = 0; i < n; i++)
        cr_expect(tu_close(w[i], after[i], 1e-5), "weight %d: %.9g, Keras %.9g", i, (double)w[i],
                  (double)after[i]);
    kc_model_free(m);
}

static int warned;
static void on_warning(const char *message, void *user) { warned++; }

/* Keras's warning: from_logits=True on a softmax output */
Test(losses_warnings, from_logits_on_softmax_output) {
    kc_model *m = kc_sequential(kc_shape1(3));
    KC_CHECK(kc_add(m, kc_dense(3, KC_SOFTMAX)));
    warned = 0;
    kc_set_warning_handler(on_warning, NULL);
    KC_CHECK(kc_compile_ex(m, &(kc_compile_opts){
                                  .optimizer = kc_sgd(NULL),
                                  .loss_specs = {{.kind = KC_CATEGORICAL_CROSSENTROPY, .from_logits = 1}}}));
    kc_set_warning_handler(NULL, NULL);
    cr_assert_eq(warned, 1);
    cr_assert(strstr(kc_last_warning(), "softmax") && strstr(kc_last_warning(), "from_logits"),
              "%s", kc_last_warning());
    kc_model_free(m);
}
