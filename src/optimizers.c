/* optimizers.c: SGD (momentum, nesterov), RMSprop, Adam, AdamW, Adadelta, Adagrad, Nadam,
 * Adamax, Ftrl, Lion and Lamb with Keras 3's defaults and update rules, each one loop over the
 * model's flat parameter and gradient buffers (the rule table at the end of the rules), and
 * Keras's options of every optimizer: clipping, decoupled weight decay, EMA, schedules. */
#include "optimizers.h"
#include "util/threads.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "util/isa.h"
#ifdef KC_X86
#include <immintrin.h>
#endif

static kc_optimizer *opt_new(kc_opt_kind kind, float lr, float default_lr) {
    if (!(lr >= 0.0f) || !isfinite(lr)) {
        kc_err(KC_EINVAL, "optimizer: learning_rate must be a finite number >= 0, got %g",
               (double)lr);
        return NULL;
    }
    kc_optimizer *o = calloc(1, sizeof *o);
    if (!o) {
        kc_err(KC_ENOMEM, "out of memory creating an optimizer");
        return NULL;
    }
    o->kind = kind;
    o->learning_rate = lr > 0.0f ? lr : default_lr;
    o->ema_momentum = 0.99f;
    return o;
}

static int check_unit(const char *what, float v) {
    if (v >= 0.0f && v < 1.0f) return 1;
    kc_err(KC_EINVAL, "optimizer: %s must be in [0, 1), got %g", what, (double)v);
    return 0;
}

static int check_nonnegative(const char *what, float v) {
    if (v >= 0.0f && isfinite(v)) return 1;
    kc_err(KC_EINVAL, "optimizer: %s must be a finite number >= 0, got %g", what, (double)v);
    return 0;
}

kc_optimizer *kc_sgd(const kc_sgd_opts *opts) {
    kc_sgd_opts o = opts ? *opts : (kc_sgd_opts){0};
    if (!check_unit("momentum", o.momentum)) return NULL;
    kc_optimizer *opt = opt_new(KC_OPT_SGD, o.learning_rate, 0.01f);
    if (!opt) return NULL;
    opt->momentum = o.momentum;
    opt->nesterov = o.nesterov != 0;
    return opt;
}

kc_optimizer *kc_rmsprop(const kc_rmsprop_opts *opts) {
    kc_rmsprop_opts o = opts ? *opts : (kc_rmsprop_opts){0};
    if (!check_unit("rho", o.rho) || !check_unit("momentum", o.momentum)) return NULL;
    kc_optimizer *opt = opt_new(KC_OPT_RMSPROP, o.learning_rate, 0.001f);
    if (!opt) return NULL;
    opt->rho = o.rho > 0.0f ? o.rho : 0.9f;
    opt->momentum = o.momentum;
    opt->epsilon = o.epsilon > 0.0f ? o.epsilon : 1e-7f;
    opt->centered = o.centered != 0;
    return opt;
}

kc_optimizer *kc_adam(const kc_adam_opts *opts) {
    kc_adam_opts o = opts ? *opts : (kc_adam_opts){0};
    if (!check_unit("beta_1", o.beta_1) || !check_unit("beta_2", o.beta_2)) return NULL;
    kc_optimizer *opt = opt_new(KC_OPT_ADAM, o.learning_rate, 0.001f);
    if (!opt) return NULL;
    opt->beta_1 = o.beta_1 > 0.0f ? o.beta_1 : 0.9f;
    opt->beta_2 = o.beta_2 > 0.0f ? o.beta_2 : 0.999f;
    opt->epsilon = o.epsilon > 0.0f ? o.epsilon : 1e-7f;
    opt->amsgrad = o.amsgrad != 0;
    return opt;
}

kc_optimizer *kc_adamw(const kc_adamw_opts *opts) {
    kc_adamw_opts o = opts ? *opts : (kc_adamw_opts){0};
    if (!check_nonnegative("weight_decay", o.weight_decay)) return NULL;
    kc_optimizer *opt = kc_adam(&(kc_adam_opts){.learning_rate = o.learning_rate,
                                                .beta_1 = o.beta_1,
                                                .beta_2 = o.beta_2,
                                                .epsilon = o.epsilon,
                                                .amsgrad = o.amsgrad});
    if (!opt) return NULL;
    opt->weight_decay = o.weight_decay > 0.0f ? o.weight_decay : 0.004f;
    opt->adamw = true;
    return opt;
}

kc_optimizer *kc_adadelta(const kc_adadelta_opts *opts) {
    kc_adadelta_opts o = opts ? *opts : (kc_adadelta_opts){0};
    if (!check_unit("rho", o.rho) || !check_nonnegative("epsilon", o.epsilon)) return NULL;
    kc_optimizer *opt = opt_new(KC_OPT_ADADELTA, o.learning_rate, 0.001f);
    if (!opt) return NULL;
    opt->rho = o.rho > 0.0f ? o.rho : 0.95f;
    opt->epsilon = o.epsilon > 0.0f ? o.epsilon : 1e-7f;
    return opt;
}

kc_optimizer *kc_adagrad(const kc_adagrad_opts *opts) {
    kc_adagrad_opts o = opts ? *opts : (kc_adagrad_opts){0};
    if (!check_nonnegative("initial_accumulator_value", o.initial_accumulator_value) ||
        !check_nonnegative("epsilon", o.epsilon))
        return NULL;
    kc_optimizer *opt = opt_new(KC_OPT_ADAGRAD, o.learning_rate, 0.001f);
    if (!opt) return NULL;
    opt->initial_accumulator_value =
        o.initial_accumulator_value > 0.0f ? o.initial_accumulator_value : 0.1f;
    opt->epsilon = o.epsilon > 0.0f ? o.epsilon : 1e-7f;
    return opt;
}

kc_optimizer *kc_nadam(const kc_nadam_opts *opts) {
    kc_nadam_opts o = opts ? *opts : (kc_nadam_opts){0};
    if (!check_unit("beta_1", o.beta_1) || !check_unit("beta_2", o.beta_2) ||
        !check_nonnegative("epsilon", o.epsilon))
        return NULL;
    kc_optimizer *opt = opt_new(KC_OPT_NADAM, o.learning_rate, 0.001f);
    if (!opt) return NULL;
    opt->beta_1 = o.beta_1 > 0.0f ? o.beta_1 : 0.9f;
    opt->beta_2 = o.beta_2 > 0.0f ? o.beta_2 : 0.999f;
    opt->epsilon = o.epsilon > 0.0f ? o.epsilon : 1e-7f;
    opt->u_product = 1.0;
    return opt;
}

kc_optimizer *kc_adamax(const kc_adamax_opts *opts) {
    kc_adamax_opts o = opts ? *opts : (kc_adamax_opts){0};
    if (!check_unit("beta_1", o.beta_1) || !check_unit("beta_2", o.beta_2) ||
        !check_nonnegative("epsilon", o.epsilon))
        return NULL;
    kc_optimizer *opt = opt_new(KC_OPT_ADAMAX, o.learning_rate, 0.001f);
    if (!opt) return NULL;
    opt->beta_1 = o.beta_1 > 0.0f ? o.beta_1 : 0.9f;
    opt->beta_2 = o.beta_2 > 0.0f ? o.beta_2 : 0.999f;
    opt->epsilon = o.epsilon > 0.0f ? o.epsilon : 1e-7f;
    return opt;
}

static float zero_default(float v, float def) { return v == (float)KC_ZERO ? 0.0f : v == 0.0f ? def : v; }

kc_optimizer *kc_ftrl(const kc_ftrl_opts *opts) {
    kc_ftrl_opts o = opts ? *opts : (kc_ftrl_opts){0};
    float power = zero_default(o.learning_rate_power, -0.5f);
    float init = zero_default(o.initial_accumulator_value, 0.1f);
    /* Keras 3's Ftrl checks, by name */
    if (!(power <= 0.0f) || !isfinite(power)) {
        kc_err(KC_EINVAL, "Ftrl: learning_rate_power must be <= 0 (KC_ZERO for 0), got %g",
               (double)power);
        return NULL;
    }
    if (!check_nonnegative("initial_accumulator_value", init) ||
        !check_nonnegative("l1_regularization_strength", o.l1_regularization_strength) ||
        !check_nonnegative("l2_regularization_strength", o.l2_regularization_strength) ||
        !check_nonnegative("l2_shrinkage_regularization_strength",
                           o.l2_shrinkage_regularization_strength) ||
        !check_nonnegative("beta", o.beta))
        return NULL;
    kc_optimizer *opt = opt_new(KC_OPT_FTRL, o.learning_rate, 0.001f);
    if (!opt) return NULL;
    opt->learning_rate_power = power;
    opt->initial_accumulator_value = init;
    opt->l1 = o.l1_regularization_strength;
    opt->l2 = o.l2_regularization_strength;
    opt->l2_shrinkage = o.l2_shrinkage_regularization_strength;
    opt->beta = o.beta;
    return opt;
}

kc_optimizer *kc_lion(const kc_lion_opts *opts) {
    kc_lion_opts o = opts ? *opts : (kc_lion_opts){0};
    /* Keras 3: beta_1 must be in (0, 1] (0 here means the default) */
    if (!(o.beta_1 >= 0.0f && o.beta_1 <= 1.0f)) {
        kc_err(KC_EINVAL, "Lion: beta_1 must be in (0, 1], got %g", (double)o.beta_1);
        return NULL;
    }
    if (!check_unit("beta_2", o.beta_2)) return NULL;
    kc_optimizer *opt = opt_new(KC_OPT_LION, o.learning_rate, 0.001f);
    if (!opt) return NULL;
    opt->beta_1 = o.beta_1 > 0.0f ? o.beta_1 : 0.9f;
    opt->beta_2 = o.beta_2 > 0.0f ? o.beta_2 : 0.99f;
    return opt;
}

kc_optimizer *kc_lamb(const kc_lamb_opts *opts) {
    kc_lamb_opts o = opts ? *opts : (kc_lamb_opts){0};
    if (!check_unit("beta_1", o.beta_1) || !check_unit("beta_2", o.beta_2) ||
        !check_nonnegative("epsilon", o.epsilon))
        return NULL;
    kc_optimizer *opt = opt_new(KC_OPT_LAMB, o.learning_rate, 0.001f);
    if (!opt) return NULL;
    opt->beta_1 = o.beta_1 > 0.0f ? o.beta_1 : 0.9f;
    opt->beta_2 = o.beta_2 > 0.0f ? o.beta_2 : 0.999f;
    opt->epsilon = o.epsilon > 0.0f ? o.epsilon : 1e-7f;
    return opt;
}

void kc_optimizer_free(kc_optimizer *opt) {
    if (!opt) return;
    for (int i = 0; i < KC_OPT_SLOTS; i++) kc_free(opt->slots[i]);
    kc_free(opt->scratch);
    free(opt);
}

float kc_optimizer_get_learning_rate(const kc_optimizer *opt) {
    if (!opt) return 0.0f;
    if (opt->has_schedule)
        return (float)kc_lr_schedule_value(&opt->schedule, (double)opt->iterations);
    return opt->learning_rate;
}

float kc_optimizer_step_lr(const kc_optimizer *o) {
    double lr = o->has_schedule ? kc_lr_schedule_value(&o->schedule, (double)o->iterations)
                                : (double)o->learning_rate;
    if (o->decay > 0.0f) lr /= 1.0 + (double)o->decay * (double)o->iterations;
    return (float)lr;
}

kc_status kc_optimizer_set_learning_rate(kc_optimizer *opt, float lr) {
    if (!opt) return kc_err(KC_EINVAL, "kc_optimizer_set_learning_rate: optimizer is NULL");
    if (opt->has_schedule)
        return kc_err(KC_ESTATE,
                      "kc_optimizer_set_learning_rate: this optimizer was created with a "
                      "learning-rate schedule, hence its learning rate is not settable (as in "
                      "Keras); remove the schedule first (kc_optimizer_set_schedule(opt, NULL))");
    if (!(lr >= 0.0f) || !isfinite(lr))
        return kc_err(KC_EINVAL,
                      "kc_optimizer_set_learning_rate: learning_rate must be a finite number >= 0, "
                      "got %g; the learning rate stays %g",
                      (double)lr, (double)opt->learning_rate);
    opt->learning_rate = lr;
    return KC_OK;
}

/* ---- the common options and schedules ------------------------------------------------------ */

kc_status kc_optimizer_set_common(kc_optimizer *opt, const kc_optimizer_common_opts *opts) {
    if (!opt) return kc_err(KC_EINVAL, "kc_optimizer_set_common: optimizer is NULL");
    kc_optimizer_common_opts c = opts ? *opts : (kc_optimizer_common_opts){0};
    const struct {
        const char *name;
        float v;
    } nonneg[] = {{"weight_decay", c.weight_decay}, {"clipnorm", c.clipnorm},
                  {"clipvalue", c.clipvalue},       {"global_clipnorm", c.global_clipnorm},
                  {"decay", c.decay}};
    for (size_t i = 0; i < sizeof nonneg / sizeof *nonneg; i++)
        if (!(nonneg[i].v >= 0.0f) || !isfinite(nonneg[i].v))
            return kc_err(KC_EINVAL, "optimizer: %s must be a finite number >= 0 (0: none), got %g",
                          nonneg[i].name, (double)nonneg[i].v);
    int clips = (c.clipnorm > 0.0f) + (c.clipvalue > 0.0f) + (c.global_clipnorm > 0.0f);
    if (clips > 1)
        return kc_err(KC_EINVAL,
                      "optimizer: only one of clipnorm, clipvalue and global_clipnorm can be set "
                      "(as in Keras); got clipnorm=%g, clipvalue=%g, global_clipnorm=%g",
                      (double)c.clipnorm, (double)c.clipvalue, (double)c.global_clipnorm);
    float ema = c.ema_momentum == (float)KC_ZERO ? 0.0f : c.ema_momentum == 0.0f ? 0.99f : c.ema_momentum;
    if (!(ema >= 0.0f && ema <= 1.0f))
        return kc_err(KC_EINVAL, "optimizer: ema_momentum must be in [0, 1] (KC_ZERO for 0), got %g",
                      (double)c.ema_momentum);
    if (c.ema_overwrite_frequency < 0)
        return kc_err(KC_EINVAL,
                      "optimizer: ema_overwrite_frequency must be an integer >= 1 or 0 (none), "
                      "got %d",
                      c.ema_overwrite_frequency);
    if (c.use_ema && opt->count && !opt->slots[KC_SLOT_EMA]) {
        opt->slots[KC_SLOT_EMA] = kc_calloc(sizeof(float) * (size_t)opt->count);
        if (!opt->slots[KC_SLOT_EMA]) return kc_err_prefix(KC_ENOMEM, "optimizer EMA state");
    }
    if (opt->kind == KC_OPT_LAMB || c.clipnorm > 0.0f || c.global_clipnorm > 0.0f) {
        if (opt->count && !opt->scratch) {
            opt->scratch = kc_alloc(sizeof(float) * (size_t)opt->count);
            if (!opt->scratch) return kc_err_prefix(KC_ENOMEM, "optimizer scratch");
        }
    }
    opt->weight_decay = c.weight_decay;
    opt->clipnorm = c.clipnorm;
    opt->clipvalue = c.clipvalue;
    opt->global_clipnorm = c.global_clipnorm;
    opt->use_ema = c.use_ema != 0;
    opt->ema_momentum = ema;
    opt->ema_overwrite_frequency = c.ema_overwrite_frequency;
    opt->decay = c.decay;
    return KC_OK;
}

kc_optimizer_common_opts kc_optimizer_get_common(const kc_optimizer *o) {
    if (!o) return (kc_optimizer_common_opts){0};
    return (kc_optimizer_common_opts){.weight_decay = o->weight_decay,
                                      .clipnorm = o->clipnorm,
                                      .clipvalue = o->clipvalue,
                                      .global_clipnorm = o->global_clipnorm,
                                      .use_ema = o->use_ema,
                                      .ema_momentum = o->ema_momentum == 0.0f ? (float)KC_ZERO
                                                                              : o->ema_momentum,
                                      .ema_overwrite_frequency = o->ema_overwrite_frequency,
                                      .decay = o->decay};
}

kc_status kc_optimizer_set_schedule(kc_optimizer *opt, const kc_lr_schedule *schedule) {
    if (!opt) return kc_err(KC_EINVAL, "kc_optimizer_set_schedule: optimizer is NULL");
    if (!schedule || schedule->kind == KC_LR_CONSTANT) {
        opt->has_schedule = false;
        return KC_OK;
    }
    kc_lr_schedule s = *schedule;
    if (s.kind == KC_LR_POLYNOMIAL_DECAY) {
        s.end_learning_rate = s.end_learning_rate == KC_ZERO  ? 0.0
                              : s.end_learning_rate == 0.0 ? 0.0001
                                                           : s.end_learning_rate;
        if (s.power == 0.0) s.power = 1.0;
    }
    if (s.kind == KC_LR_COSINE_DECAY_RESTARTS) {
        if (s.t_mul == 0.0) s.t_mul = 2.0;
        s.m_mul = s.m_mul == KC_ZERO ? 0.0 : s.m_mul == 0.0 ? 1.0 : s.m_mul;
    }
    kc_status st = kc_lr_schedule_check(&s);
    if (st) return st;
    opt->schedule = s;
    opt->has_schedule = true;
    return KC_OK;
}

kc_lr_schedule kc_optimizer_get_schedule(const kc_optimizer *opt) {
    if (!opt || !opt->has_schedule) return (kc_lr_schedule){.kind = KC_LR_CONSTANT};
    return opt->schedule;
}

/* ---- the rules ------------------------------------------------------------------------------ */

/* Nadam's momentum schedule at step t (1-based): beta_1 (1 - 0.5 * 0.96^t) */
static double nadam_u(const kc_optimizer *o, double t) {
    return o->beta_1 * (1.0 - 0.5 * pow(0.96, t));
}

/* The scalars one step shares across all its ranges, from the step count and the state of
 * finished steps only (so every kc_optimizer_update of a step gets the same ones). */
typedef struct {
    float lr;           /* the schedule's (and Keras 2 decay's) rate of this step */
    float wd_lr;        /* weight_decay * lr: w -= w * wd_lr before the rule */
    float ema_momentum; /* 0 on the first step (the average starts at the weights) */
    int ema_overwrite;  /* the weights become their averages after this step */
    float adam_alpha;   /* Adam: lr sqrt(1 - b2^t) / (1 - b1^t) */
    float bias1, bias2; /* Adamax, Lamb: 1 - b1^t, 1 - b2^t */
    float nadam_m, nadam_g, nadam_v; /* Nadam: m_hat = nadam_m m + nadam_g g, v_hat = nadam_v v */
    /* Adam, Adamax, Lamb: the moments' 1 - b1, 1 - b2 as Keras computes them, from the
     * hyperparameters' decimals in double (0.001, where 1 - 0.999f is 0.000999987: the step
     * 6e-6 too long) */
    float one_b1, one_b2;
} step_scalars;

/* the shortest decimal that gives f (0.999f: 0.999), as the Python float behind a Keras
 * hyperparameter */
static double decimal_of(float f) {
    char buf[32];
    for (int p = 1; p < 10; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return f;
}

static void nadam_scalars(const kc_optimizer *o, double u_product, step_scalars *c) {
    double t = (double)(o->iterations + 1);
    /* Keras: u_t = u(t), u_t_1 = u(t + 1), u_product_t = u_product * u_t (advanced before the
     * update), u_product_t_1 = u_product_t * u_t_1 */
    double u_t = nadam_u(o, t), u_t_1 = nadam_u(o, t + 1.0);
    double u_product_t = u_product * u_t, u_product_t_1 = u_product_t * u_t_1;
    c->nadam_m = (float)(u_t_1 / (1.0 - u_product_t_1));
    c->nadam_g = (float)((1.0 - u_t) / (1.0 - u_product_t));
    c->nadam_v = (float)(1.0 / (1.0 - pow(o->beta_2, t)));
}

static step_scalars scalars_for_step(const kc_optimizer *o) {
    step_scalars c = {0};
    double t = (double)(o->iterations + 1);
    c.lr = kc_optimizer_step_lr(o);
    c.wd_lr = o->weight_decay * c.lr;
    c.ema_momentum = o->iterations ? o->ema_momentum : 0.0f;
    c.ema_overwrite =
        o->ema_overwrite_frequency > 0 && (o->iterations + 1) % o->ema_overwrite_frequency == 0;
    float tf = (float)t;
    c.bias1 = 1.0f - powf(o->beta_1, tf);
    c.bias2 = 1.0f - powf(o->beta_2, tf);
    c.one_b1 = (float)(1.0 - decimal_of(o->beta_1));
    c.one_b2 = (float)(1.0 - decimal_of(o->beta_2));
    if (o->kind == KC_OPT_ADAM)
        c.adam_alpha = c.lr * sqrtf(1.0f - powf(o->beta_2, tf)) / (1.0f - powf(o->beta_1, tf));
    else if (o->kind == KC_OPT_NADAM)
        nadam_scalars(o, o->u_product, &c);
    return c;
}

/* One rule: the update of n parameters w with gradients g; s: the state arrays at the same
 * offset. */
typedef void (*rule_fn)(const kc_optimizer *o, float *w, const float *g, float *const *s,
                        int64_t n, const step_scalars *c);

KC_CLONES static void sgd_rule(const kc_optimizer *o, float *w, const float *g, float *const *s, int64_t n,
                     const step_scalars *c) {
    const float lr = c->lr;
    if (o->momentum > 0.0f) {
        /* m = momentum * m - lr * g; w += m, or with nesterov w += momentum * m - lr * g */
        float *m = s[0], mu = o->momentum;
        if (o->nesterov) {
#pragma omp simd
            for (int64_t i = 0; i < n; i++) {
                m[i] = mu * m[i] - lr * g[i];
                w[i] += mu * m[i] - lr * g[i];
            }
        } else {
#pragma omp simd
            for (int64_t i = 0; i < n; i++) {
                m[i] = mu * m[i] - lr * g[i];
                w[i] += m[i];
            }
        }
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) w[i] -= lr * g[i];
    }
}

/* RMSprop without centering or momentum on an AVX-512 CPU: all n weights */
#ifdef KC_X86
KC_TARGET_BEGIN(KC_TARGET_AVX512_FEATURES)
static void rmsprop_plain_avx512(float *w, const float *g, float *v, int64_t n, float rho,
                                 float eps, float lr) {
    int64_t i = 0;
    /* 1 / sqrt(v + eps) as rsqrt14 refined by one Newton step (within 2 ulp of the
     * exact quotient): the exact sqrt and divide cost 20+ cycles per 16 weights and
     * made this loop a tenth of a training step */
    const __m512 rho_v = _mm512_set1_ps(rho), one_minus_rho = _mm512_set1_ps(1.0f - rho);
    const __m512 eps_v = _mm512_set1_ps(eps), lr_v = _mm512_set1_ps(lr);
    const __m512 half = _mm512_set1_ps(0.5f), three_halves = _mm512_set1_ps(1.5f);
    /* the last, partial vector masked: every weight gets the same arithmetic wherever
     * a range starts or ends (ranges follow threads and layers' blocks of rows) */
#define RMSPROP_16(k, LOAD, STORE)                                                              \
do {                                                                                        \
    __m512 gi = LOAD(k, g + i);                                                             \
    __m512 vi = _mm512_fmadd_ps(rho_v, LOAD(k, v + i),                                      \
                                _mm512_mul_ps(one_minus_rho, _mm512_mul_ps(gi, gi)));       \
    STORE(v + i, k, vi);                                                                    \
    __m512 x = _mm512_add_ps(vi, eps_v);                                                    \
    __m512 y = _mm512_rsqrt14_ps(x);                                                        \
    y = _mm512_mul_ps(y, _mm512_fnmadd_ps(_mm512_mul_ps(half, x), _mm512_mul_ps(y, y),      \
                                          three_halves));                                   \
    STORE(w + i, k, _mm512_fnmadd_ps(_mm512_mul_ps(lr_v, gi), y, LOAD(k, w + i)));          \
} while (0)
#define FULL_LOAD(k, p) _mm512_loadu_ps(p)
#define FULL_STORE(p, k, x) _mm512_storeu_ps(p, x)
    for (; i + 16 <= n; i += 16) RMSPROP_16(0, FULL_LOAD, FULL_STORE);
    if (i < n) {
        __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
        RMSPROP_16(tail, _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps);
    }
#undef RMSPROP_16
#undef FULL_LOAD
#undef FULL_STORE
}
KC_TARGET_END
#endif

static void rmsprop_rule(const kc_optimizer *o, float *w, const float *g, float *const *s,
                         int64_t n, const step_scalars *c) {
    const float lr = c->lr;
    /* v = rho v + (1 - rho) g^2; step = lr g / sqrt(v (- avg^2 if centered) + eps) */
    float *v = s[0], rho = o->rho, eps = o->epsilon;
    float *avg = o->centered ? s[1] : NULL;
    float *mom = o->momentum > 0.0f ? s[1 + o->centered] : NULL;
    if (!avg && !mom) {
#ifdef KC_X86
        if (kc_isa() == KC_ISA_AVX512) {
            rmsprop_plain_avx512(w, g, v, n, rho, eps, lr);
            return;
        }
#endif
        for (int64_t i = 0; i < n; i++) {
            v[i] = rho * v[i] + (1.0f - rho) * g[i] * g[i];
            w[i] -= lr * g[i] / sqrtf(v[i] + eps);
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        v[i] = rho * v[i] + (1.0f - rho) * g[i] * g[i];
        float denom = v[i];
        if (avg) {
            avg[i] = rho * avg[i] + (1.0f - rho) * g[i];
            denom -= avg[i] * avg[i];
        }
        float step = lr * g[i] / sqrtf(denom + eps);
        if (mom) {
            mom[i] = o->momentum * mom[i] + step;
            step = mom[i];
        }
        w[i] -= step;
    }
}

KC_CLONES static void adam_rule(const kc_optimizer *o, float *w, const float *g, float *const *s, int64_t n,
                      const step_scalars *c) {
    /* alpha = lr sqrt(1 - b2^t) / (1 - b1^t); m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
     * w -= alpha m / (sqrt(v) + eps) (AdamW's decay: the common weight decay, before); the
     * moments' 1 - b: step_scalars' one_b1, one_b2 */
    float b1 = c->one_b1, b2 = c->one_b2, eps = o->epsilon, alpha = c->adam_alpha;
    float *m = s[0], *v = s[1], *vhat = s[2];
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        m[i] += (g[i] - m[i]) * b1;
        v[i] += (g[i] * g[i] - v[i]) * b2;
    }
    if (vhat) {
        for (int64_t i = 0; i < n; i++) {
            vhat[i] = vhat[i] > v[i] ? vhat[i] : v[i];
            w[i] -= alpha * m[i] / (sqrtf(vhat[i]) + eps);
        }
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) w[i] -= alpha * m[i] / (sqrtf(v[i]) + eps);
    }
}

KC_CLONES static void adadelta_rule(const kc_optimizer *o, float *w, const float *g, float *const *s,
                          int64_t n, const step_scalars *c) {
    /* acc_g = rho acc_g + (1 - rho) g^2; delta = -g sqrt(acc_d + eps) / sqrt(acc_g + eps);
     * acc_d = rho acc_d + (1 - rho) delta^2; w += lr delta */
    float *acc_g = s[0], *acc_d = s[1], rho = o->rho, eps = o->epsilon, lr = c->lr;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        acc_g[i] = rho * acc_g[i] + (1.0f - rho) * (g[i] * g[i]);
        float delta = -(sqrtf(acc_d[i] + eps) * g[i]) / sqrtf(acc_g[i] + eps);
        acc_d[i] = rho * acc_d[i] + (1.0f - rho) * (delta * delta);
        w[i] += lr * delta;
    }
}

KC_CLONES static void adagrad_rule(const kc_optimizer *o, float *w, const float *g, float *const *s,
                         int64_t n, const step_scalars *c) {
    /* acc += g^2 (acc starts at initial_accumulator_value); w -= lr g / sqrt(acc + eps) */
    float *acc = s[0], eps = o->epsilon, lr = c->lr;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        acc[i] += g[i] * g[i];
        w[i] -= lr * g[i] / sqrtf(acc[i] + eps);
    }
}

KC_CLONES static void nadam_rule(const kc_optimizer *o, float *w, const float *g, float *const *s,
                       int64_t n, const step_scalars *c) {
    /* m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
     * m_hat = u_{t+1} m / (1 - prod_{k<=t+1} u_k) + (1 - u_t) g / (1 - prod_{k<=t} u_k);
     * v_hat = v / (1 - b2^t); w -= lr m_hat / (sqrt(v_hat) + eps) */
    float b1 = o->beta_1, b2 = o->beta_2, eps = o->epsilon, lr = c->lr;
    float cm = c->nadam_m, cg = c->nadam_g, cv = c->nadam_v;
    float *m = s[0], *v = s[1];
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        m[i] += (g[i] - m[i]) * (1.0f - b1);
        v[i] += (g[i] * g[i] - v[i]) * (1.0f - b2);
        float m_hat = cm * m[i] + cg * g[i];
        w[i] -= m_hat * lr / (sqrtf(v[i] * cv) + eps);
    }
}

KC_CLONES static void adamax_rule(const kc_optimizer *o, float *w, const float *g, float *const *s,
                        int64_t n, const step_scalars *c) {
    /* m += (g - m)(1 - b1); u = max(b2 u, |g|); w -= lr m / ((1 - b1^t)(u + eps)) */
    float b1 = c->one_b1, b2 = o->beta_2, eps = o->epsilon, lr = c->lr, bias1 = c->bias1;
    float *m = s[0], *u = s[1];
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        m[i] += (g[i] - m[i]) * b1;
        float a = fabsf(g[i]), bu = b2 * u[i];
        u[i] = bu > a ? bu : a;
        w[i] -= lr * m[i] / (bias1 * (u[i] + eps));
    }
}

KC_CLONES static void ftrl_rule(const kc_optimizer *o, float *w, const float *g, float *const *s,
                      int64_t n, const step_scalars *c) {
    /* Keras 3's Ftrl: g' = g + 2 l2_shrinkage w; acc' = acc + g^2 (the plain gradient);
     * linear += g' - (acc'^-p - acc^-p) / lr * w; quadratic = acc'^-p / lr + 2 (l2 + beta / (2 lr));
     * w = (clip(linear, -l1, l1) - linear) / quadratic; acc = acc' (p: learning_rate_power) */
    float *acc = s[0], *lin = s[1], lr = c->lr, p = -o->learning_rate_power;
    float l1 = o->l1, l2_reg = o->l2 + o->beta / (2.0f * lr), shrink = 2.0f * o->l2_shrinkage;
    for (int64_t i = 0; i < n; i++) {
        float gu = g[i] + shrink * w[i];
        float na = acc[i] + g[i] * g[i];
        float pn = powf(na, p), po = powf(acc[i], p);
        lin[i] += gu - (pn - po) / lr * w[i];
        float quadratic = pn / lr + 2.0f * l2_reg;
        float clipped = lin[i] < -l1 ? -l1 : lin[i] > l1 ? l1 : lin[i];
        w[i] = (clipped - lin[i]) / quadratic;
        acc[i] = na;
    }
}

KC_CLONES static void lion_rule(const kc_optimizer *o, float *w, const float *g, float *const *s,
                      int64_t n, const step_scalars *c) {
    /* w -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g */
    float b1 = o->beta_1, b2 = o->beta_2, lr = c->lr, *m = s[0];
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float d = m[i] * b1 + g[i] * (1.0f - b1);
        w[i] -= lr * (float)((d > 0.0f) - (d < 0.0f));
        m[i] = m[i] * b2 + g[i] * (1.0f - b2);
    }
}

/* Lamb: the range is one variable (its trust ratio is the variable's) */
static void lamb_rule(const kc_optimizer *o, float *w, const float *g, float *const *s,
                      int64_t n, const step_scalars *c) {
    /* m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); u = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t))
     * + eps); r = |w| / |u| (1 when either is 0); w -= r lr u */
    float b1 = c->one_b1, b2 = c->one_b2, eps = o->epsilon;
    float *m = s[0], *v = s[1], *u = s[2];
    double wn = 0.0, un = 0.0;
    for (int64_t i = 0; i < n; i++) {
        m[i] += (g[i] - m[i]) * b1;
        v[i] += (g[i] * g[i] - v[i]) * b2;
        u[i] = (m[i] / c->bias1) / (sqrtf(v[i] / c->bias2) + eps);
        wn += (double)w[i] * w[i];
        un += (double)u[i] * u[i];
    }
    float ratio = wn > 0.0 && un > 0.0 ? (float)(sqrt(wn) / sqrt(un)) : 1.0f;
    float step = ratio * c->lr;
    for (int64_t i = 0; i < n; i++) w[i] -= step * u[i];
}

/* the rule table, in kc_opt_kind's order: the state arrays each keeps (Keras's variables
 * beside the model's) and its update */
typedef struct {
    kc_opt_kind kind;
    int (*slot_count)(const kc_optimizer *o);
    rule_fn rule;
} rule_row;

static int sgd_slots(const kc_optimizer *o) { return o->momentum > 0.0f ? 1 : 0; }
static int rmsprop_slots(const kc_optimizer *o) {
    return 1 + (o->momentum > 0.0f) + o->centered; /* velocity, average_gradient, momentum */
}
static int adam_slots(const kc_optimizer *o) { return 2 + o->amsgrad; } /* m, v, v_hat */
static int one_slot(const kc_optimizer *o) { return 1; }
static int two_slots(const kc_optimizer *o) { return 2; }

static const rule_row rules[] = {
    {KC_OPT_SGD, sgd_slots, sgd_rule},
    {KC_OPT_RMSPROP, rmsprop_slots, rmsprop_rule},
    {KC_OPT_ADAM, adam_slots, adam_rule},
    {KC_OPT_ADADELTA, two_slots, adadelta_rule}, /* accumulated_grad, accumulated_delta_var */
    {KC_OPT_ADAGRAD, one_slot, adagrad_rule},    /* accumulator */
    {KC_OPT_NADAM, two_slots, nadam_rule},       /* momentum, velocity */
    {KC_OPT_ADAMAX, two_slots, adamax_rule},     /* momentum, norm */
    {KC_OPT_FTRL, two_slots, ftrl_rule},         /* accumulator, linear */
    {KC_OPT_LION, one_slot, lion_rule},          /* momentum */
    {KC_OPT_LAMB, two_slots, lamb_rule},         /* momentum, velocity (+ slot 2: scratch) */
};
_Static_assert(sizeof rules / sizeof *rules == KC_OPT_KIND_COUNT,
               "one rule row per kc_opt_kind");

kc_status kc_optimizer_bind(kc_optimizer *o, int64_t n) {
    for (int i = 0; i < KC_OPT_SLOTS; i++) {
        kc_free(o->slots[i]);
        o->slots[i] = NULL;
    }
    kc_free(o->scratch);
    o->scratch = NULL;
    int slots = rules[o->kind].slot_count(o);
    for (int i = 0; i < slots; i++) {
        o->slots[i] = kc_calloc(sizeof(float) * (size_t)(n ? n : 1));
        if (!o->slots[i]) return kc_err_prefix(KC_ENOMEM, "optimizer state");
    }
    if (o->use_ema && !(o->slots[KC_SLOT_EMA] = kc_calloc(sizeof(float) * (size_t)(n ? n : 1))))
        return kc_err_prefix(KC_ENOMEM, "optimizer EMA state");
    if ((o->kind == KC_OPT_LAMB || o->clipnorm > 0.0f || o->global_clipnorm > 0.0f) &&
        !(o->scratch = kc_alloc(sizeof(float) * (size_t)(n ? n : 1))))
        return kc_err_prefix(KC_ENOMEM, "optimizer scratch");
    if (o->kind == KC_OPT_ADAGRAD || o->kind == KC_OPT_FTRL)
        for (int64_t i = 0; i < n; i++) o->slots[0][i] = o->initial_accumulator_value;
    o->count = n;
    o->iterations = 0;
    o->u_product = 1.0;
    o->tf2_nadam = false;
    return KC_OK;
}

int kc_optimizer_needs_all_grads(const kc_optimizer *o) {
    return o->clipnorm > 0.0f || o->global_clipnorm > 0.0f || o->kind == KC_OPT_LAMB ||
           o->tf2_nadam;
}

/* Keras's order on n parameters: weight decay, the rule, the moving average */
static void step_core(const kc_optimizer *o, float *w, const float *g, float *const *s,
                      int64_t n, const step_scalars *c) {
    if (o->weight_decay > 0.0f) {
        float d = c->wd_lr;
#pragma omp simd
        for (int64_t i = 0; i < n; i++) w[i] -= w[i] * d;
    }
    rules[o->kind].rule(o, w, g, s, n, c);
    if (o->use_ema) {
        float mu = c->ema_momentum, *avg = s[KC_SLOT_EMA];
#pragma omp simd
        for (int64_t i = 0; i < n; i++) avg[i] = mu * avg[i] + (1.0f - mu) * w[i];
        if (c->ema_overwrite)
            for (int64_t i = 0; i < n; i++) w[i] = avg[i];
    }
}

/* step_core after clipvalue (elementwise, through a copy of a block of g) */
static void update_range(const kc_optimizer *o, float *w, const float *g, float *const *s,
                         int64_t n, const step_scalars *c) {
    if (!(o->clipvalue > 0.0f)) {
        step_core(o, w, g, s, n, c);
        return;
    }
    enum { BLOCK = 512 };
    float buf[BLOCK], v = o->clipvalue;
    for (int64_t at = 0; at < n; at += BLOCK) {
        int64_t k = n - at < BLOCK ? n - at : BLOCK;
        for (int64_t i = 0; i < k; i++) buf[i] = g[at + i] < -v ? -v : g[at + i] > v ? v : g[at + i];
        float *sa[KC_OPT_SLOTS];
        for (int i = 0; i < KC_OPT_SLOTS; i++) sa[i] = s[i] ? s[i] + at : NULL;
        step_core(o, w + at, buf, sa, k, c);
    }
}

typedef struct {
    kc_optimizer *opt;
    float *w;
    const float *g;
    step_scalars scalars;
    int64_t offset, count;
} step_job;

static void slots_at(const kc_optimizer *o, int64_t offset, float **s) {
    for (int i = 0; i < KC_OPT_SLOTS; i++) s[i] = o->slots[i] ? o->slots[i] + offset : NULL;
    if (o->kind == KC_OPT_LAMB) s[2] = o->scratch + offset;
}

static void step_task(void *arg, int part, int parts) {
    step_job *job = arg;
    int64_t begin, end;
    kc_split(job->count, part, parts, 16, &begin, &end);
    begin += job->offset;
    end += job->offset;
    float *s[KC_OPT_SLOTS];
    slots_at(job->opt, begin, s);
    update_range(job->opt, job->w + begin, job->g + begin, s, end - begin, &job->scalars);
}

void kc_optimizer_update(kc_optimizer *o, float *w, const float *g, int64_t offset,
                         int64_t count) {
    if (o->kind == KC_OPT_LAMB) { /* one variable: its trust ratio over all of it */
        kc_optimizer_apply(o, w + offset, g + offset, offset, count);
        return;
    }
    kc_parallel(step_task, &(step_job){o, w, g, scalars_for_step(o), offset, count});
}

int kc_optimizer_row_sparse(const kc_optimizer *o) {
    return o && o->kind == KC_OPT_SGD && !(o->momentum > 0.0f) && o->weight_decay == 0.0f &&
           !o->use_ema && !o->tf2_nadam && !kc_optimizer_needs_all_grads(o);
}

void kc_optimizer_apply(kc_optimizer *o, float *w, const float *g, int64_t offset,
                        int64_t count) {
    float *s[KC_OPT_SLOTS];
    slots_at(o, offset, s);
    step_scalars scalars = scalars_for_step(o);
    update_range(o, w, g, s, count, &scalars);
}

KC_CLONES static double sum_squares(const float *g, int64_t n) {
    double t = 0.0;
    for (int64_t i = 0; i < n; i++) t += (double)g[i] * g[i];
    return t;
}

KC_CLONES static void scale(float *g, int64_t n, float f) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) g[i] *= f;
}

void kc_optimizer_step_vars(kc_optimizer *o, float *w, float *g, const int64_t (*vars)[2],
                            int n) {
    /* the clipping of Keras's _clip_gradients, in place */
    if (o->clipnorm > 0.0f) {
        for (int k = 0; k < n; k++) {
            double norm = sqrt(sum_squares(g + vars[k][0], vars[k][1]));
            /* g clipnorm / max(|g|, clipnorm) */
            scale(g + vars[k][0], vars[k][1],
                  (float)(o->clipnorm / fmax(norm, (double)o->clipnorm)));
        }
    } else if (o->global_clipnorm > 0.0f) {
        double total = 0.0;
        for (int k = 0; k < n; k++) total += sum_squares(g + vars[k][0], vars[k][1]);
        double norm = sqrt(total), c = o->global_clipnorm;
        /* clip_norm min(1 / norm, 1 / clip_norm); a non-finite norm makes every gradient NaN */
        float f = (float)(isfinite(norm) ? c * fmin(1.0 / norm, 1.0 / c) : NAN);
        for (int k = 0; k < n; k++) scale(g + vars[k][0], vars[k][1], f);
    }
    step_scalars c = scalars_for_step(o);
    /* tf.keras 2.15's Nadam, once loaded from its file: the u_product variable starts at 1 and
     * its update step, traced once, compares a trace-time counter (1 + the variable's index)
     * with iterations + 2: where they differ u_product is multiplied by u_t again, per
     * variable, so each variable sees its own product */
    double tf2_product = o->tf2_nadam_product;
    for (int k = 0; k < n; k++) {
        if (o->tf2_nadam) {
            double t = (double)(o->iterations + 1);
            if ((int64_t)(1 + k) != o->iterations + 2) tf2_product *= nadam_u(o, t);
            nadam_scalars(o, tf2_product / nadam_u(o, t), &c);
        }
        float *s[KC_OPT_SLOTS];
        slots_at(o, vars[k][0], s);
        if (o->kind == KC_OPT_LAMB || o->tf2_nadam)
            update_range(o, w + vars[k][0], g + vars[k][0], s, vars[k][1], &c);
        else
            kc_parallel(step_task, &(step_job){o, w, g, c, vars[k][0], vars[k][1]});
    }
    if (o->tf2_nadam) o->tf2_nadam_product = tf2_product;
    kc_optimizer_finish_step(o);
}

void kc_optimizer_finish_step(kc_optimizer *o) {
    if (o->kind == KC_OPT_NADAM) o->u_product *= nadam_u(o, (double)(o->iterations + 1));
    o->iterations++;
}
