/* test_optimizers2.c: Keras's options of every optimizer (clipping, weight decay, EMA, Keras 2
 * decay), the learning-rate schedules and Adamax, Ftrl, Lion and Lamb, step by step against
 * Keras 3 (tests/gen_keras_optimizer_fixtures.py -> tests/fixtures/keras_optim/), on the
 * optimizer's own calls (the per-layer range, the fused Dense's rows, the whole step) and
 * through a model's fit; plus their configs through saved files, and the errors. */
#include "testutil.h"
#include "optimizers.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#define NK 12 /* kernel (3, 4) */
#define NB 4  /* bias (4,) */
#define NW (NK + NB)
#define STEPS 4

typedef struct {
    const char *name;
    kc_optimizer *(*make)(void);
    kc_optimizer_common_opts common;
    kc_lr_schedule schedule;
} opt_case;

static kc_optimizer *sgd_01(void) { return kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}); }
static kc_optimizer *sgd_01_m09(void) {
    return kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f, .momentum = 0.9f});
}
static kc_optimizer *sgd_01_m05(void) {
    return kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f, .momentum = 0.5f});
}
static kc_optimizer *adam_001(void) { return kc_adam(&(kc_adam_opts){.learning_rate = 0.01f}); }
static kc_optimizer *adamw_001(void) {
    return kc_adamw(&(kc_adamw_opts){.learning_rate = 0.01f, .weight_decay = 0.1f});
}
static kc_optimizer *rmsprop_001(void) {
    return kc_rmsprop(&(kc_rmsprop_opts){.learning_rate = 0.01f});
}
static kc_optimizer *adadelta_1(void) {
    return kc_adadelta(&(kc_adadelta_opts){.learning_rate = 1.0f});
}
static kc_optimizer *nadam_001(void) { return kc_nadam(&(kc_nadam_opts){.learning_rate = 0.01f}); }
static kc_optimizer *adagrad_01(void) {
    return kc_adagrad(&(kc_adagrad_opts){.learning_rate = 0.1f});
}
static kc_optimizer *adamax_001(void) {
    return kc_adamax(&(kc_adamax_opts){.learning_rate = 0.01f});
}
static kc_optimizer *adamax_custom(void) {
    return kc_adamax(&(kc_adamax_opts){
        .learning_rate = 0.02f, .beta_1 = 0.8f, .beta_2 = 0.9f, .epsilon = 1e-5f});
}
static kc_optimizer *ftrl_01(void) { return kc_ftrl(&(kc_ftrl_opts){.learning_rate = 0.1f}); }
static kc_optimizer *ftrl_all(void) {
    return kc_ftrl(&(kc_ftrl_opts){.learning_rate = 0.1f,
                                   .learning_rate_power = -0.7f,
                                   .initial_accumulator_value = 0.2f,
                                   .l1_regularization_strength = 0.01f,
                                   .l2_regularization_strength = 0.02f,
                                   .l2_shrinkage_regularization_strength = 0.03f,
                                   .beta = 0.5f});
}
static kc_optimizer *ftrl_zero_power(void) {
    return kc_ftrl(&(kc_ftrl_opts){.learning_rate = 0.05f,
                                   .learning_rate_power = (float)KC_ZERO,
                                   .l1_regularization_strength = 0.5f});
}
static kc_optimizer *lion_001(void) { return kc_lion(&(kc_lion_opts){.learning_rate = 0.01f}); }
static kc_optimizer *lion_custom(void) {
    return kc_lion(&(kc_lion_opts){.learning_rate = 0.01f, .beta_1 = 0.8f, .beta_2 = 0.95f});
}
static kc_optimizer *lamb_001(void) { return kc_lamb(&(kc_lamb_opts){.learning_rate = 0.01f}); }
static kc_optimizer *lamb_002(void) { return kc_lamb(&(kc_lamb_opts){.learning_rate = 0.02f}); }

#define SCHED(...) .schedule = {__VA_ARGS__}
static const opt_case cases[] = {
    {.name = "sgd_clipnorm", .make = sgd_01_m09, .common = {.clipnorm = 1.0f}},
    {.name = "adam_clipvalue", .make = adam_001, .common = {.clipvalue = 0.5f}},
    {.name = "rmsprop_global_clipnorm", .make = rmsprop_001, .common = {.global_clipnorm = 1.0f}},
    {.name = "adadelta_clipnorm", .make = adadelta_1, .common = {.clipnorm = 0.5f}},
    {.name = "sgd_weight_decay", .make = sgd_01, .common = {.weight_decay = 0.05f}},
    {.name = "adam_weight_decay", .make = adam_001, .common = {.weight_decay = 0.1f}},
    {.name = "adamw", .make = adamw_001, .common = {.weight_decay = 0.1f}},
    {.name = "nadam_weight_decay_clipvalue", .make = nadam_001, .common = {.weight_decay = 0.2f, .clipvalue = 0.3f}},
    {.name = "adagrad_ema", .make = adagrad_01, .common = {.use_ema = 1, .ema_momentum = 0.9f}},
    {.name = "sgd_ema_overwrite", .make = sgd_01_m05,
     .common = {.use_ema = 1, .ema_momentum = 0.5f, .ema_overwrite_frequency = 2}},
    {.name = "sgd_exponential_staircase", .make = sgd_01,
     SCHED(.kind = KC_LR_EXPONENTIAL_DECAY, .initial_learning_rate = 0.1, .decay_steps = 2,
           .decay_rate = 0.5, .staircase = 1)},
    {.name = "sgd_exponential", .make = sgd_01,
     SCHED(.kind = KC_LR_EXPONENTIAL_DECAY, .initial_learning_rate = 0.1, .decay_steps = 3,
           .decay_rate = 0.7)},
    {.name = "sgd_inverse_time", .make = sgd_01,
     SCHED(.kind = KC_LR_INVERSE_TIME_DECAY, .initial_learning_rate = 0.1, .decay_steps = 1,
           .decay_rate = 0.5)},
    {.name = "sgd_inverse_time_staircase", .make = sgd_01,
     SCHED(.kind = KC_LR_INVERSE_TIME_DECAY, .initial_learning_rate = 0.1, .decay_steps = 2,
           .decay_rate = 0.5, .staircase = 1)},
    {.name = "sgd_piecewise", .make = sgd_01,
     SCHED(.kind = KC_LR_PIECEWISE_CONSTANT_DECAY, .n_boundaries = 2, .boundaries = {1, 2},
           .values = {0.1, 0.05, 0.01})},
    {.name = "sgd_polynomial", .make = sgd_01,
     SCHED(.kind = KC_LR_POLYNOMIAL_DECAY, .initial_learning_rate = 0.1, .decay_steps = 3,
           .end_learning_rate = 0.01, .power = 2.0)},
    {.name = "sgd_polynomial_cycle", .make = sgd_01,
     SCHED(.kind = KC_LR_POLYNOMIAL_DECAY, .initial_learning_rate = 0.1, .decay_steps = 2,
           .end_learning_rate = 0.01, .power = 0.5, .cycle = 1)},
    {.name = "sgd_cosine", .make = sgd_01,
     SCHED(.kind = KC_LR_COSINE_DECAY, .initial_learning_rate = 0.1, .decay_steps = 3,
           .alpha = 0.1)},
    {.name = "sgd_cosine_warmup", .make = sgd_01,
     SCHED(.kind = KC_LR_COSINE_DECAY, .initial_learning_rate = 0.0, .decay_steps = 3,
           .has_warmup_target = 1, .warmup_target = 0.1, .warmup_steps = 2)},
    {.name = "sgd_cosine_restarts", .make = sgd_01,
     SCHED(.kind = KC_LR_COSINE_DECAY_RESTARTS, .initial_learning_rate = 0.1, .decay_steps = 1,
           .t_mul = 2.0, .m_mul = 0.5, .alpha = 0.05)},
    {.name = "sgd_cosine_restarts_tmul1", .make = sgd_01,
     SCHED(.kind = KC_LR_COSINE_DECAY_RESTARTS, .initial_learning_rate = 0.1, .decay_steps = 2,
           .t_mul = 1.0)},
    {.name = "adam_exponential", .make = adam_001,
     SCHED(.kind = KC_LR_EXPONENTIAL_DECAY, .initial_learning_rate = 0.01, .decay_steps = 1,
           .decay_rate = 0.5)},
    {.name = "adamax", .make = adamax_001},
    {.name = "adamax_clipnorm_ema", .make = adamax_custom, .common = {.clipnorm = 1.0f, .use_ema = 1}},
    {.name = "ftrl", .make = ftrl_01},
    {.name = "ftrl_all", .make = ftrl_all},
    {.name = "ftrl_zero_power", .make = ftrl_zero_power},
    {.name = "lion", .make = lion_001},
    {.name = "lion_weight_decay", .make = lion_custom, .common = {.weight_decay = 0.5f}},
    {.name = "lamb", .make = lamb_001},
    {.name = "lamb_global_clipnorm_wd", .make = lamb_002, .common = {.global_clipnorm = 2.0f, .weight_decay = 0.1f}},
};
#define N_CASES ((int)(sizeof cases / sizeof *cases))

typedef struct {
    float w0[NW], g[STEPS][NW], w[STEPS][NW], lr[STEPS];
} fixture;

static void read_row(FILE *in, const char *label, float *v, int n, const char *file) {
    char word[32];
    cr_assert_eq(fscanf(in, "%31s", word), 1, "%s: no %s", file, label);
    cr_assert_str_eq(word, label, "%s", file);
    for (int i = 0; i < n; i++) cr_assert_eq(fscanf(in, "%f", &v[i]), 1, "%s: %s", file, label);
}

static void load_fixture(const char *name, fixture *f) {
    char path[256], label[16];
    snprintf(path, sizeof path, "tests/fixtures/keras_optim/%s.txt", name);
    FILE *in = fopen(path, "r");
    cr_assert_not_null(in, "%s", path);
    cr_assert_eq(fscanf(in, "%*[^\n]\n"), 0);
    read_row(in, "w0", f->w0, NW, path);
    for (int k = 0; k < STEPS; k++) {
        snprintf(label, sizeof label, "g%d", k + 1);
        read_row(in, label, f->g[k], NW, path);
        snprintf(label, sizeof label, "w%d", k + 1);
        read_row(in, label, f->w[k], NW, path);
        snprintf(label, sizeof label, "lr%d", k + 1);
        read_row(in, label, &f->lr[k], 1, path);
    }
    fclose(in);
}

static kc_optimizer *make_case(const opt_case *c) {
    kc_optimizer *o = c->make();
    cr_assert_not_null(o, "%s: %s", c->name, kc_last_error());
    KC_CHECK(kc_optimizer_set_common(o, &c->common));
    KC_CHECK(kc_optimizer_set_schedule(o, &c->schedule));
    KC_CHECK(kc_optimizer_bind(o, NW));
    return o;
}

static double max_err;

/* relative to the value, or where a step cancels it to near 0, to the value before the step
 * (float32's rounding there is relative to that) */
static void expect_close(const char *name, const char *how, int step, const float *got,
                         const float *want, const float *before, int n) {
    for (int i = 0; i < n; i++) {
        double scale = fmax(fmax(fabs(want[i]), before ? fabs(before[i]) : 0.0), 1e-3);
        double e = fabs((double)got[i] - want[i]) / scale;
        if (e > max_err) max_err = e;
        cr_expect(e <= 1e-5, "%s (%s) step %d, value %d: kerac %.9g, Keras %.9g", name, how,
                  step, i, (double)got[i], (double)want[i]);
    }
}

/* how the model steps: 0 the whole step over both variables (kc_optimizer_step_vars), 1 one
 * range per layer (kc_optimizer_update, then finish), 2 the fused Dense's rows (apply) */
static void run_case(const opt_case *c, int how) {
    static const char *hows[] = {"whole step", "per-layer range", "fused rows"};
    kc_optimizer *o = make_case(c);
    if (how && kc_optimizer_needs_all_grads(o)) {
        kc_optimizer_free(o);
        return; /* the model never steps such an optimizer by ranges */
    }
    fixture f;
    load_fixture(c->name, &f);
    float w[NW], g[NW];
    memcpy(w, f.w0, sizeof w);
    const int64_t vars[2][2] = {{0, NK}, {NK, NB}};
    for (int k = 0; k < STEPS; k++) {
        memcpy(g, f.g[k], sizeof g);
        if (how == 0) {
            kc_optimizer_step_vars(o, w, g, vars, 2);
        } else if (how == 1) {
            kc_optimizer_update(o, w, g, 0, NW);
            kc_optimizer_finish_step(o);
        } else {
            for (int r = 0; r < 3; r++) kc_optimizer_apply(o, w + 4 * r, g + 4 * r, 4 * r, 4);
            kc_optimizer_apply(o, w + NK, g + NK, NK, NB);
            kc_optimizer_finish_step(o);
        }
        expect_close(c->name, hows[how], k + 1, w, f.w[k], k ? f.w[k - 1] : f.w0, NW);
        float lr = kc_optimizer_get_learning_rate(o);
        expect_close(c->name, "learning_rate", k + 1, &lr, &f.lr[k], NULL, 1);
    }
    kc_optimizer_free(o);
}

Test(keras_optimizers, every_case_every_path) {
    max_err = 0;
    for (int i = 0; i < N_CASES; i++)
        for (int how = 0; how < 3; how++) run_case(&cases[i], how);
    cr_log_info("optimizer fixtures: %d cases, max relative error %.3g", N_CASES, max_err);
    fprintf(stderr, "keras_optimizers: %d cases, max relative error vs Keras %.3g\n", N_CASES,
            max_err);
}

/* ---- a compiled model's fit against Keras's (tests/fixtures/keras_optim/model_*.txt) ---- */

static kc_optimizer *model_adam(void) { return kc_adam(&(kc_adam_opts){.learning_rate = 0.05f}); }
static kc_optimizer *model_sgd(void) {
    return kc_sgd(&(kc_sgd_opts){.learning_rate = 0.5f, .momentum = 0.9f});
}
static kc_optimizer *model_lamb(void) { return kc_lamb(&(kc_lamb_opts){.learning_rate = 0.05f}); }
static kc_optimizer *model_rmsprop(void) {
    return kc_rmsprop(&(kc_rmsprop_opts){.learning_rate = 0.01f});
}

static const opt_case model_cases[] = {
    {.name = "clipnorm", .make = model_adam, .common = {.clipnorm = 0.1f}},
    {.name = "global_clipnorm", .make = model_sgd, .common = {.global_clipnorm = 0.2f}},
    {.name = "lamb", .make = model_lamb},
    {.name = "ema", .make = model_rmsprop, .common = {.use_ema = 1, .ema_momentum = 0.8f}},
};

#define NM (12 + 4 + 8 + 2)

/* fit(epochs=2, batch_size=6) on 6 samples: two steps (and EMA's finalize at the end) */
static void fit_model(const opt_case *c, int fusion, const float *x, const float *y,
                      const float *before, float *after) {
    kc_model *m = kc_sequential(kc_shape1(3));
    kc_add(m, kc_dense(4, KC_RELU));
    kc_add(m, kc_dense(2, KC_SOFTMAX));
    kc_optimizer *o = c->make();
    KC_CHECK(kc_optimizer_set_common(o, &c->common));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, o, 0));
    kc_set_fusion(m, fusion);
    KC_CHECK(kc_set_weights(m, before, NM));
    kc_dataset d = {.count = 6, .x_shape = kc_shape1(3), .x_dtype = KC_FLOAT32, .x = (void *)x,
                    .y_shape = kc_shape1(2), .y_dtype = KC_FLOAT32, .y = (void *)y};
    KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.epochs = 2, .batch_size = 6, .verbose = -1,
                                          .no_shuffle = 1},
                    NULL));
    KC_CHECK(kc_get_weights(m, after, NM));
    kc_model_free(m);
}

Test(keras_optimizers, model_fit_matches_keras) {
    max_err = 0;
    for (size_t i = 0; i < sizeof model_cases / sizeof *model_cases; i++) {
        const opt_case *c = &model_cases[i];
        char path[256];
        snprintf(path, sizeof path, "tests/fixtures/keras_optim/model_%s.txt", c->name);
        FILE *in = fopen(path, "r");
        cr_assert_not_null(in, "%s", path);
        float x[18], y[12], before[NM], want[NM], got[NM], plain[NM];
        cr_assert_eq(fscanf(in, "%*[^\n]\n"), 0);
        read_row(in, "x", x, 18, path);
        read_row(in, "y", y, 12, path);
        read_row(in, "before", before, NM, path);
        read_row(in, "after", want, NM, path);
        fclose(in);
        fit_model(c, 1, x, y, before, got);
        expect_close(c->name, "model fit", 2, got, want, before, NM);
        /* the plain path (no fusion) gives the same weights */
        fit_model(c, 0, x, y, before, plain);
        for (int k = 0; k < NM; k++)
            cr_expect(fabsf(plain[k] - got[k]) <= 1e-6f * fmaxf(1.0f, fabsf(got[k])),
                      "%s: fused %.9g, plain %.9g at %d", c->name, (double)got[k],
                      (double)plain[k], k);
    }
    fprintf(stderr, "keras_optimizers: model fits, max relative error vs Keras %.3g\n", max_err);
}

/* ---- options and schedules through saved files ---- */

static kc_optimizer *rt_adam(void) { return kc_adam(&(kc_adam_opts){.learning_rate = 0.02f}); }
static kc_optimizer *rt_adamw(void) {
    return kc_adamw(&(kc_adamw_opts){.learning_rate = 0.01f, .weight_decay = 0.05f});
}
static kc_optimizer *rt_nadam(void) { return kc_nadam(NULL); }

static const opt_case roundtrip_cases[] = {
    {.name = "adam_clipnorm_ema_wd_exponential", .make = rt_adam,
     .common = {.clipnorm = 0.5f, .use_ema = 1, .ema_momentum = 0.9f, .weight_decay = 0.01f},
     SCHED(.kind = KC_LR_EXPONENTIAL_DECAY, .initial_learning_rate = 0.02, .decay_steps = 3,
           .decay_rate = 0.5, .staircase = 1)},
    {.name = "sgd_global_clipnorm_piecewise", .make = sgd_01_m09,
     .common = {.global_clipnorm = 1.0f},
     SCHED(.kind = KC_LR_PIECEWISE_CONSTANT_DECAY, .n_boundaries = 2, .boundaries = {1, 3},
           .values = {0.1, 0.05, 0.01})},
    {.name = "ftrl_cosine_warmup", .make = ftrl_all,
     SCHED(.kind = KC_LR_COSINE_DECAY, .initial_learning_rate = 0.01, .decay_steps = 5,
           .alpha = 0.1, .has_warmup_target = 1, .warmup_target = 0.1, .warmup_steps = 2)},
    {.name = "lion_polynomial", .make = lion_custom, .common = {.clipvalue = 0.2f},
     SCHED(.kind = KC_LR_POLYNOMIAL_DECAY, .initial_learning_rate = 0.01, .decay_steps = 3,
           .end_learning_rate = 0.001, .power = 2.0, .cycle = 1)},
    {.name = "lamb_restarts", .make = lamb_002,
     SCHED(.kind = KC_LR_COSINE_DECAY_RESTARTS, .initial_learning_rate = 0.02, .decay_steps = 2,
           .t_mul = 1.5, .m_mul = 0.5, .alpha = 0.01)},
    {.name = "adamax_clipvalue_inverse_time", .make = adamax_custom, .common = {.clipvalue = 0.3f},
     SCHED(.kind = KC_LR_INVERSE_TIME_DECAY, .initial_learning_rate = 0.02, .decay_steps = 1,
           .decay_rate = 0.5)},
    {.name = "nadam_keras2_decay", .make = rt_nadam, .common = {.decay = 0.1f}},
    {.name = "adamw_ema_overwrite", .make = rt_adamw,
     .common = {.weight_decay = 0.05f, .use_ema = 1, .ema_overwrite_frequency = 2}},
};

static kc_model *rt_model(const opt_case *c) {
    kc_model *m = kc_sequential(kc_shape1(3));
    kc_add(m, kc_dense(4, KC_RELU));
    kc_add(m, kc_dense(2, KC_SOFTMAX));
    kc_optimizer *o = c->make();
    KC_CHECK(kc_optimizer_set_common(o, &c->common));
    KC_CHECK(kc_optimizer_set_schedule(o, &c->schedule));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, o, 0));
    float w[NM];
    for (int i = 0; i < NM; i++) w[i] = 0.3f * sinf(1.7f * (float)i + 0.2f);
    KC_CHECK(kc_set_weights(m, w, NM));
    return m;
}

static const float rt_x[18] = {0.1f, -0.5f, 0.9f, 0.3f, 0.7f, -0.2f, -0.8f, 0.4f, 0.6f,
                               0.5f, 0.5f,  -0.1f, 0.2f, -0.9f, 0.3f, 0.8f,  0.1f, -0.6f};
static const float rt_y[12] = {1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1};

static void same_optimizer(const char *name, const char *ext, kc_optimizer *a, kc_optimizer *b) {
    cr_assert_not_null(b, "%s%s: loaded uncompiled", name, ext);
    cr_expect_eq(a->kind, b->kind, "%s%s", name, ext);
    cr_expect_eq(a->adamw, b->adamw, "%s%s", name, ext);
    kc_optimizer_common_opts ca = kc_optimizer_get_common(a), cb = kc_optimizer_get_common(b);
    cr_expect(!memcmp(&ca, &cb, sizeof ca), "%s%s: common options differ (clipnorm %g/%g, "
              "clipvalue %g/%g, global %g/%g, wd %g/%g, ema %d/%d %g/%g freq %d/%d, decay %g/%g)",
              name, ext, (double)ca.clipnorm, (double)cb.clipnorm, (double)ca.clipvalue,
              (double)cb.clipvalue, (double)ca.global_clipnorm, (double)cb.global_clipnorm,
              (double)ca.weight_decay, (double)cb.weight_decay, ca.use_ema, cb.use_ema,
              (double)ca.ema_momentum, (double)cb.ema_momentum, ca.ema_overwrite_frequency,
              cb.ema_overwrite_frequency, (double)ca.decay, (double)cb.decay);
    kc_lr_schedule sa = kc_optimizer_get_schedule(a), sb = kc_optimizer_get_schedule(b);
    cr_expect(!memcmp(&sa, &sb, sizeof sa), "%s%s: schedules differ", name, ext);
    cr_expect_eq(a->iterations, b->iterations, "%s%s", name, ext);
    cr_expect_eq(kc_optimizer_get_learning_rate(a), kc_optimizer_get_learning_rate(b), "%s%s",
                 name, ext);
    cr_expect_eq(a->learning_rate_power, b->learning_rate_power, "%s%s", name, ext);
    cr_expect_eq(a->l2_shrinkage, b->l2_shrinkage, "%s%s", name, ext);
    cr_expect_eq(a->beta_1, b->beta_1, "%s%s", name, ext);
}

Test(optimizer_files, options_and_schedules_round_trip) {
    static const char *exts[] = {".keras", ".h5"};
    for (size_t i = 0; i < sizeof roundtrip_cases / sizeof *roundtrip_cases; i++)
        for (int e = 0; e < 2; e++) {
            const opt_case *c = &roundtrip_cases[i];
            kc_model *m = rt_model(c);
            for (int k = 0; k < 3; k++)
                cr_assert_eq(kc_train_on_batch(m, rt_x, rt_y, 6, NULL), KC_OK, "%s step %d: %s",
                             c->name, k, kc_last_error());
            char path[256];
            snprintf(path, sizeof path, "%s/%s%s", tu_tmpdir(), c->name, exts[e]);
            KC_CHECK(kc_save(m, path));
            kc_model *back;
            KC_CHECK(kc_load(path, &back));
            same_optimizer(c->name, exts[e], kc_model_get_optimizer(m),
                           kc_model_get_optimizer(back));
            /* the state came back too: the next steps are the same */
            float wa[NM], wb[NM];
            for (int k = 0; k < 2; k++) {
                KC_CHECK(kc_train_on_batch(m, rt_x, rt_y, 6, NULL));
                KC_CHECK(kc_train_on_batch(back, rt_x, rt_y, 6, NULL));
            }
            KC_CHECK(kc_get_weights(m, wa, NM));
            KC_CHECK(kc_get_weights(back, wb, NM));
            for (int k = 0; k < NM; k++)
                cr_expect(fabsf(wa[k] - wb[k]) <= 1e-6f * fmaxf(1.0f, fabsf(wa[k])),
                          "%s%s: weight %d after two more steps: %.9g saved, %.9g loaded",
                          c->name, exts[e], k, (double)wa[k], (double)wb[k]);
            kc_model_free(m);
            kc_model_free(back);
        }
}

/* ---- bad input: errors naming the option ---- */

Test(optimizer_errors, common_options_named) {
    kc_optimizer *o = kc_sgd(NULL);
    KC_EXPECT_ERR(kc_optimizer_set_common(o, &(kc_optimizer_common_opts){.clipnorm = -1.0f}),
                  KC_EINVAL, "clipnorm must be a finite number >= 0");
    KC_EXPECT_ERR(kc_optimizer_set_common(o, &(kc_optimizer_common_opts){.clipvalue = NAN}),
                  KC_EINVAL, "clipvalue");
    KC_EXPECT_ERR(kc_optimizer_set_common(o, &(kc_optimizer_common_opts){.weight_decay = -0.1f}),
                  KC_EINVAL, "weight_decay");
    KC_EXPECT_ERR(kc_optimizer_set_common(
                      o, &(kc_optimizer_common_opts){.clipnorm = 1.0f, .global_clipnorm = 1.0f}),
                  KC_EINVAL, "only one of clipnorm, clipvalue and global_clipnorm");
    KC_EXPECT_ERR(kc_optimizer_set_common(
                      o, &(kc_optimizer_common_opts){.use_ema = 1, .ema_momentum = 1.5f}),
                  KC_EINVAL, "ema_momentum must be in [0, 1]");
    KC_EXPECT_ERR(kc_optimizer_set_common(
                      o, &(kc_optimizer_common_opts){.use_ema = 1, .ema_overwrite_frequency = -2}),
                  KC_EINVAL, "ema_overwrite_frequency");
    KC_EXPECT_ERR(kc_optimizer_set_common(NULL, NULL), KC_EINVAL, "optimizer is NULL");
    /* a failed call changed nothing */
    kc_optimizer_common_opts c = kc_optimizer_get_common(o);
    cr_expect_eq(c.clipnorm, 0.0f);
    cr_expect_eq(c.use_ema, 0);
    KC_EXPECT_ERR(kc_optimizer_set_schedule(o, &(kc_lr_schedule){.kind = KC_LR_EXPONENTIAL_DECAY,
                                                                 .initial_learning_rate = 0.1,
                                                                 .decay_rate = 0.5}),
                  KC_EINVAL, "ExponentialDecay: decay_steps must be > 0");
    KC_EXPECT_ERR(kc_optimizer_set_schedule(
                      o, &(kc_lr_schedule){.kind = KC_LR_PIECEWISE_CONSTANT_DECAY,
                                           .n_boundaries = 2, .boundaries = {3, 1},
                                           .values = {0.1, 0.2, 0.3}}),
                  KC_EINVAL, "boundaries must be finite and increasing");
    kc_optimizer_free(o);
    cr_expect_null(kc_ftrl(&(kc_ftrl_opts){.learning_rate_power = 0.5f}));
    cr_expect(strstr(kc_last_error(), "learning_rate_power must be <= 0"), "%s", kc_last_error());
    cr_expect_null(kc_ftrl(&(kc_ftrl_opts){.l1_regularization_strength = -1.0f}));
    cr_expect(strstr(kc_last_error(), "l1_regularization_strength"), "%s", kc_last_error());
    cr_expect_null(kc_lion(&(kc_lion_opts){.beta_1 = 1.5f}));
    cr_expect(strstr(kc_last_error(), "beta_1"), "%s", kc_last_error());
}

/* Keras: "its learning rate is not settable" with a schedule; the schedule's value is the
 * optimizer's learning rate, step by step */
static float halve(int epoch, float lr, void *user) { return lr * 0.5f; }

Test(optimizer_errors, schedule_learning_rate_not_settable) {
    kc_model *m = rt_model(&roundtrip_cases[0]); /* ExponentialDecay(0.02, 3, 0.5, staircase) */
    cr_expect_float_eq(kc_get_learning_rate(m), 0.02f, 1e-9);
    KC_EXPECT_ERR(kc_set_learning_rate(m, 0.1f), KC_ESTATE, "learning rate is not settable");
    for (int k = 0; k < 3; k++) KC_CHECK(kc_train_on_batch(m, rt_x, rt_y, 6, NULL));
    cr_expect_float_eq(kc_get_learning_rate(m), 0.01f, 1e-9); /* step 3: 0.02 * 0.5 */
    kc_callback *cb = kc_learning_rate_scheduler(halve, NULL, 0);
    kc_callback *list[] = {cb};
    kc_dataset d = {.count = 6, .x_shape = kc_shape1(3), .x_dtype = KC_FLOAT32,
                    .x = (void *)rt_x, .y_shape = kc_shape1(2), .y_dtype = KC_FLOAT32,
                    .y = (void *)rt_y};
    KC_EXPECT_ERR(kc_fit(m, &d, &(kc_fit_opts){.verbose = -1, .callbacks = list, .n_callbacks = 1},
                         NULL),
                  KC_ESTATE, "LearningRateScheduler");
    kc_callback_free(cb);
    /* without the schedule the rate is settable again */
    KC_CHECK(kc_optimizer_set_schedule(kc_model_get_optimizer(m), NULL));
    KC_CHECK(kc_set_learning_rate(m, 0.1f));
    cr_expect_eq(kc_get_learning_rate(m), 0.1f);
    kc_model_free(m);
}

/* Keras 2's decay: lr / (1 + decay * iterations), on SGD's plain rule */
Test(optimizer_errors, keras2_decay_rule) {
    kc_optimizer *o = kc_sgd(&(kc_sgd_opts){.learning_rate = 0.5f});
    KC_CHECK(kc_optimizer_set_common(o, &(kc_optimizer_common_opts){.decay = 0.25f}));
    KC_CHECK(kc_optimizer_bind(o, 1));
    float w = 1.0f, g = 1.0f;
    double want = 1.0;
    for (int t = 0; t < 4; t++) {
        kc_optimizer_update(o, &w, &g, 0, 1);
        kc_optimizer_finish_step(o);
        want -= 0.5 / (1.0 + 0.25 * t);
        cr_expect_float_eq(w, (float)want, 1e-6, "step %d", t + 1);
    }
    cr_expect_eq(kc_optimizer_get_learning_rate(o), 0.5f); /* Keras 2 reports the base rate */
    kc_optimizer_free(o);
}

/* an optimizer config kerac cannot represent (an unknown schedule class): the model loads for
 * prediction, uncompiled, with a warning naming what was skipped */
static int warnings_seen;
static char last_warning[1024];
static void count_warning(const char *message, void *user) {
    warnings_seen++;
    snprintf(last_warning, sizeof last_warning, "%s", message);
}

Test(optimizer_errors, unknown_schedule_in_file_loads_uncompiled) {
    kc_model *m = rt_model(&roundtrip_cases[0]);
    char path[256];
    snprintf(path, sizeof path, "%s/sched.h5", tu_tmpdir());
    KC_CHECK(kc_save(m, path));
    kc_model_free(m);
    /* rename the schedule's class in the file's training_config */
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    int replaced = 0;
    for (long i = 0; i + 16 <= n; i++)
        if (!memcmp(buf + i, "ExponentialDecay", 16)) {
            memcpy(buf + i, "MyOwnDecaySched_", 16);
            replaced++;
        }
    cr_assert(replaced > 0);
    f = fopen(path, "wb");
    cr_assert_eq(fwrite(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    free(buf);
    warnings_seen = 0;
    kc_set_warning_handler(count_warning, NULL);
    KC_CHECK(kc_load(path, &m));
    kc_set_warning_handler(NULL, NULL);
    cr_expect_eq(warnings_seen, 1);
    cr_expect(strstr(last_warning, "learning-rate schedule 'MyOwnDecaySched_'") &&
                  strstr(last_warning, "uncompiled"),
              "%s", last_warning);
    cr_expect_null(kc_model_get_optimizer(m));
    float out[2];
    KC_CHECK(kc_predict(m, rt_x, 1, out));
    kc_model_free(m);
}
