/* optimizers.c: SGD (momentum, nesterov), RMSprop, Adam, AdamW, Adadelta, Adagrad and Nadam
 * with Keras 3's defaults and update rules, each one loop over the model's flat parameter and
 * gradient buffers. */
#include "optimizers.h"
#include "util/threads.h"
#include <math.h>
#include <stdlib.h>
#ifdef __AVX512F__
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

void kc_optimizer_free(kc_optimizer *opt) {
    if (!opt) return;
    for (int i = 0; i < 3; i++) kc_free(opt->slots[i]);
    free(opt);
}

float kc_optimizer_get_learning_rate(const kc_optimizer *opt) {
    return opt ? opt->learning_rate : 0.0f;
}

kc_status kc_optimizer_set_learning_rate(kc_optimizer *opt, float lr) {
    if (!opt) return kc_err(KC_EINVAL, "kc_optimizer_set_learning_rate: optimizer is NULL");
    if (!(lr >= 0.0f) || !isfinite(lr))
        return kc_err(KC_EINVAL,
                      "kc_optimizer_set_learning_rate: learning_rate must be a finite number >= 0, "
                      "got %g; the learning rate stays %g",
                      (double)lr, (double)opt->learning_rate);
    opt->learning_rate = lr;
    return KC_OK;
}

/* How many state arrays of n floats each optimizer keeps (Keras's variables). */
static int slot_count(const kc_optimizer *o) {
    switch (o->kind) {
    case KC_OPT_SGD: return o->momentum > 0.0f ? 1 : 0;     /* momentum */
    case KC_OPT_RMSPROP: return 1 + (o->momentum > 0.0f) + o->centered; /* velocity, ... */
    case KC_OPT_ADAM: return 2 + o->amsgrad;                /* m, v, v_hat */
    case KC_OPT_ADADELTA: return 2; /* accumulated_grad, accumulated_delta_var */
    case KC_OPT_ADAGRAD: return 1;  /* accumulator */
    case KC_OPT_NADAM: return 2;    /* momentum, velocity */
    }
    return 0;
}

kc_status kc_optimizer_bind(kc_optimizer *o, int64_t n) {
    for (int i = 0; i < 3; i++) {
        kc_free(o->slots[i]);
        o->slots[i] = NULL;
    }
    int slots = slot_count(o);
    for (int i = 0; i < slots; i++) {
        o->slots[i] = kc_calloc(sizeof(float) * (size_t)n);
        if (!o->slots[i]) return kc_err_prefix(KC_ENOMEM, "optimizer state");
    }
    if (o->kind == KC_OPT_ADAGRAD)
        for (int64_t i = 0; i < n; i++) o->slots[0][i] = o->initial_accumulator_value;
    o->count = n;
    o->iterations = 0;
    o->u_product = 1.0;
    return KC_OK;
}

/* Nadam's momentum schedule at step t (1-based): beta_1 (1 - 0.5 * 0.96^t) */
static double nadam_u(const kc_optimizer *o, double t) {
    return o->beta_1 * (1.0 - 0.5 * pow(0.96, t));
}

/* The scalars one step shares across all its ranges, from the step count and the state of
 * finished steps only (so every kc_optimizer_update of a step gets the same ones). */
typedef struct {
    float adam_alpha;   /* Adam: lr sqrt(1 - b2^t) / (1 - b1^t) */
    float decay;        /* AdamW: weight_decay * lr */
    float nadam_m, nadam_g, nadam_v; /* Nadam: m_hat = nadam_m m + nadam_g g, v_hat = nadam_v v */
} step_scalars;

static step_scalars scalars_for_step(const kc_optimizer *o) {
    step_scalars c = {0};
    double t = (double)(o->iterations + 1);
    if (o->kind == KC_OPT_ADAM) {
        float tf = (float)t;
        c.adam_alpha = o->learning_rate * sqrtf(1.0f - powf(o->beta_2, tf)) /
                       (1.0f - powf(o->beta_1, tf));
        c.decay = o->weight_decay * o->learning_rate;
    } else if (o->kind == KC_OPT_NADAM) {
        /* Keras: u_t = u(t), u_t_1 = u(t + 1), u_product_t = u_product * u_t (advanced before
         * the update), u_product_t_1 = u_product_t * u_t_1 */
        double u_t = nadam_u(o, t), u_t_1 = nadam_u(o, t + 1.0);
        double u_product_t = o->u_product * u_t, u_product_t_1 = u_product_t * u_t_1;
        c.nadam_m = (float)(u_t_1 / (1.0 - u_product_t_1));
        c.nadam_g = (float)((1.0 - u_t) / (1.0 - u_product_t));
        c.nadam_v = (float)(1.0 / (1.0 - pow(o->beta_2, t)));
    }
    return c;
}

/* The update of n parameters; s: the state arrays at the same offset. */
static void update_range(const kc_optimizer *o, float *w, const float *g, float *const s[3],
                         int64_t n, const step_scalars *c) {
    const float lr = o->learning_rate;
    switch (o->kind) {
    case KC_OPT_SGD:
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
        break;
    case KC_OPT_RMSPROP: {
        /* v = rho v + (1 - rho) g^2; step = lr g / sqrt(v (- avg^2 if centered) + eps) */
        float *v = s[0], rho = o->rho, eps = o->epsilon;
        float *avg = o->centered ? s[1] : NULL;
        float *mom = o->momentum > 0.0f ? s[1 + o->centered] : NULL;
        if (!avg && !mom) {
            int64_t i = 0;
#ifdef __AVX512F__
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
                i = n;
            }
#undef RMSPROP_16
#undef FULL_LOAD
#undef FULL_STORE
#endif
            for (; i < n; i++) {
                v[i] = rho * v[i] + (1.0f - rho) * g[i] * g[i];
                w[i] -= lr * g[i] / sqrtf(v[i] + eps);
            }
            break;
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
        break;
    }
    case KC_OPT_ADAM: {
        /* AdamW first decays the weights apart from the gradient: w -= w * weight_decay * lr.
         * alpha = lr sqrt(1 - b2^t) / (1 - b1^t); m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
         * w -= alpha m / (sqrt(v) + eps) */
        float b1 = o->beta_1, b2 = o->beta_2, eps = o->epsilon, alpha = c->adam_alpha;
        float *m = s[0], *v = s[1], *vhat = s[2];
        if (o->weight_decay > 0.0f) {
            float decay = c->decay;
#pragma omp simd
            for (int64_t i = 0; i < n; i++) w[i] -= w[i] * decay;
        }
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            m[i] += (g[i] - m[i]) * (1.0f - b1);
            v[i] += (g[i] * g[i] - v[i]) * (1.0f - b2);
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
        break;
    }
    case KC_OPT_ADADELTA: {
        /* acc_g = rho acc_g + (1 - rho) g^2; delta = -g sqrt(acc_d + eps) / sqrt(acc_g + eps);
         * acc_d = rho acc_d + (1 - rho) delta^2; w += lr delta */
        float *acc_g = s[0], *acc_d = s[1], rho = o->rho, eps = o->epsilon;
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            acc_g[i] = rho * acc_g[i] + (1.0f - rho) * (g[i] * g[i]);
            float delta = -(sqrtf(acc_d[i] + eps) * g[i]) / sqrtf(acc_g[i] + eps);
            acc_d[i] = rho * acc_d[i] + (1.0f - rho) * (delta * delta);
            w[i] += lr * delta;
        }
        break;
    }
    case KC_OPT_ADAGRAD: {
        /* acc += g^2 (acc starts at initial_accumulator_value); w -= lr g / sqrt(acc + eps) */
        float *acc = s[0], eps = o->epsilon;
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            acc[i] += g[i] * g[i];
            w[i] -= lr * g[i] / sqrtf(acc[i] + eps);
        }
        break;
    }
    case KC_OPT_NADAM: {
        /* m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
         * m_hat = u_{t+1} m / (1 - prod_{k<=t+1} u_k) + (1 - u_t) g / (1 - prod_{k<=t} u_k);
         * v_hat = v / (1 - b2^t); w -= lr m_hat / (sqrt(v_hat) + eps) */
        float b1 = o->beta_1, b2 = o->beta_2, eps = o->epsilon;
        float cm = c->nadam_m, cg = c->nadam_g, cv = c->nadam_v;
        float *m = s[0], *v = s[1];
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            m[i] += (g[i] - m[i]) * (1.0f - b1);
            v[i] += (g[i] * g[i] - v[i]) * (1.0f - b2);
            float m_hat = cm * m[i] + cg * g[i];
            w[i] -= m_hat * lr / (sqrtf(v[i] * cv) + eps);
        }
        break;
    }
    }
}

typedef struct {
    kc_optimizer *opt;
    float *w;
    const float *g;
    step_scalars scalars;
    int64_t offset, count;
} step_job;

static void step_task(void *arg, int part, int parts) {
    step_job *job = arg;
    int64_t begin, end;
    kc_split(job->count, part, parts, 16, &begin, &end);
    begin += job->offset;
    end += job->offset;
    float *s[3];
    for (int i = 0; i < 3; i++) s[i] = job->opt->slots[i] ? job->opt->slots[i] + begin : NULL;
    update_range(job->opt, job->w + begin, job->g + begin, s, end - begin, &job->scalars);
}

void kc_optimizer_update(kc_optimizer *o, float *w, const float *g, int64_t offset,
                         int64_t count) {
    kc_parallel(step_task, &(step_job){o, w, g, scalars_for_step(o), offset, count});
}

void kc_optimizer_apply(kc_optimizer *o, float *w, const float *g, int64_t offset,
                        int64_t count) {
    float *s[3];
    for (int i = 0; i < 3; i++) s[i] = o->slots[i] ? o->slots[i] + offset : NULL;
    step_scalars scalars = scalars_for_step(o);
    update_range(o, w, g, s, count, &scalars);
}

void kc_optimizer_finish_step(kc_optimizer *o) {
    if (o->kind == KC_OPT_NADAM) o->u_product *= nadam_u(o, (double)(o->iterations + 1));
    o->iterations++;
}
