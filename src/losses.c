/* losses.c: Keras's losses (value and gradient), on a batch of model outputs pred (batch,
 * cols). Loss values are means over the batch ("sum_over_batch_size"). */
#include "losses.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KC_EPSILON 1e-7f /* keras.backend.epsilon() */

/* Keras's losses, a row per kc_loss: the function's name (what compile_config writes for a
 * string), the class, the class config's default name and the options the class takes */
#define L_LOG KC_LOSS_OPT_LOGITS
#define L_LS KC_LOSS_OPT_SMOOTHING
#define L_AX KC_LOSS_OPT_AXIS
static const kc_loss_info loss_table[] = {
    [KC_LOSS_NONE] = {"none", NULL, NULL, 0},
    [KC_CATEGORICAL_CROSSENTROPY] = {"categorical_crossentropy", "CategoricalCrossentropy",
                                     "categorical_crossentropy", L_LOG | L_LS | L_AX},
    [KC_SPARSE_CATEGORICAL_CROSSENTROPY] = {"sparse_categorical_crossentropy",
                                            "SparseCategoricalCrossentropy",
                                            "sparse_categorical_crossentropy",
                                            L_LOG | KC_LOSS_OPT_IGNORE},
    [KC_BINARY_CROSSENTROPY] = {"binary_crossentropy", "BinaryCrossentropy", "binary_crossentropy",
                                L_LOG | L_LS | L_AX},
    [KC_MEAN_SQUARED_ERROR] = {"mean_squared_error", "MeanSquaredError", "mean_squared_error", 0},
    [KC_BINARY_FOCAL_CROSSENTROPY] = {"binary_focal_crossentropy", "BinaryFocalCrossentropy",
                                      "binary_focal_crossentropy",
                                      L_LOG | L_LS | L_AX | KC_LOSS_OPT_FOCAL |
                                          KC_LOSS_OPT_BALANCING},
    [KC_CATEGORICAL_FOCAL_CROSSENTROPY] = {"categorical_focal_crossentropy",
                                           "CategoricalFocalCrossentropy",
                                           "categorical_focal_crossentropy",
                                           L_LOG | L_LS | L_AX | KC_LOSS_OPT_FOCAL},
    [KC_MEAN_ABSOLUTE_ERROR] = {"mean_absolute_error", "MeanAbsoluteError", "mean_absolute_error", 0},
    [KC_MEAN_ABSOLUTE_PERCENTAGE_ERROR] = {"mean_absolute_percentage_error",
                                           "MeanAbsolutePercentageError",
                                           "mean_absolute_percentage_error", 0},
    [KC_MEAN_SQUARED_LOGARITHMIC_ERROR] = {"mean_squared_logarithmic_error",
                                           "MeanSquaredLogarithmicError",
                                           "mean_squared_logarithmic_error", 0},
    /* Keras 3's Huber.get_config leaves delta out; kerac writes it (from_config takes it) */
    [KC_HUBER] = {"huber", "Huber", "huber_loss", KC_LOSS_OPT_DELTA},
    [KC_LOG_COSH] = {"log_cosh", "LogCosh", "log_cosh", 0},
    [KC_KL_DIVERGENCE] = {"kl_divergence", "KLDivergence", "kl_divergence", 0},
    [KC_POISSON] = {"poisson", "Poisson", "poisson", 0},
    [KC_HINGE] = {"hinge", "Hinge", "hinge", 0},
    [KC_SQUARED_HINGE] = {"squared_hinge", "SquaredHinge", "squared_hinge", 0},
    [KC_CATEGORICAL_HINGE] = {"categorical_hinge", "CategoricalHinge", "categorical_hinge", 0},
    [KC_COSINE_SIMILARITY] = {"cosine_similarity", "CosineSimilarity", "cosine_similarity", 0},
};
_Static_assert(sizeof loss_table / sizeof *loss_table == KC_LOSS_COUNT,
               "loss_table needs one row per kc_loss (kerac.h)");

static const char *const reduction_names[] = {
    [KC_REDUCTION_SUM_OVER_BATCH_SIZE] = "sum_over_batch_size",
    [KC_REDUCTION_SUM] = "sum",
    [KC_REDUCTION_MEAN] = "mean",
    [KC_REDUCTION_NONE] = "none",
    [KC_REDUCTION_MEAN_WITH_SAMPLE_WEIGHT] = "mean_with_sample_weight",
};
_Static_assert(sizeof reduction_names / sizeof *reduction_names == KC_REDUCTION_COUNT,
               "reduction_names needs one row per kc_reduction (kerac.h)");

const char *kc_loss_name(kc_loss loss) {
    return (unsigned)loss < KC_LOSS_COUNT ? loss_table[loss].name : "unknown";
}

const char *kc_reduction_name(kc_reduction r) {
    return (unsigned)r < KC_REDUCTION_COUNT ? reduction_names[r] : "unknown";
}

const kc_loss_info *kc_loss_info_of(kc_loss loss) {
    return (unsigned)loss < KC_LOSS_COUNT && loss != KC_LOSS_NONE ? &loss_table[loss] : NULL;
}

kc_loss kc_loss_find(const char *name) {
    static const struct {
        const char *alias;
        kc_loss loss;
    } aliases[] = {{"bce", KC_BINARY_CROSSENTROPY},       {"BCE", KC_BINARY_CROSSENTROPY},
                   {"kld", KC_KL_DIVERGENCE},             {"KLD", KC_KL_DIVERGENCE},
                   {"mae", KC_MEAN_ABSOLUTE_ERROR},       {"MAE", KC_MEAN_ABSOLUTE_ERROR},
                   {"mse", KC_MEAN_SQUARED_ERROR},        {"MSE", KC_MEAN_SQUARED_ERROR},
                   {"mape", KC_MEAN_ABSOLUTE_PERCENTAGE_ERROR},
                   {"MAPE", KC_MEAN_ABSOLUTE_PERCENTAGE_ERROR},
                   {"msle", KC_MEAN_SQUARED_LOGARITHMIC_ERROR},
                   {"MSLE", KC_MEAN_SQUARED_LOGARITHMIC_ERROR},
                   /* tf.keras 2's names */
                   {"huber_loss", KC_HUBER},              {"logcosh", KC_LOG_COSH},
                   {"kullback_leibler_divergence", KC_KL_DIVERGENCE},
                   {"cosine_proximity", KC_COSINE_SIMILARITY}};
    if (!name) return KC_LOSS_NONE;
    for (int l = 1; l < KC_LOSS_COUNT; l++)
        if (!strcmp(name, loss_table[l].name) || !strcmp(name, loss_table[l].class_name))
            return (kc_loss)l;
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (!strcmp(name, aliases[i].alias)) return aliases[i].loss;
    return KC_LOSS_NONE;
}

kc_status kc_loss_spec_resolve(const kc_loss_spec *spec, kc_loss_spec *out, const char *where) {
    const kc_loss_info *info = kc_loss_info_of(spec->kind);
    if (!info) return kc_err(KC_EINVAL, "%s: unknown loss %d", where, (int)spec->kind);
    const char *name = info->name;
    unsigned o = info->opts;
    if (spec->from_logits && !(o & KC_LOSS_OPT_LOGITS))
        return kc_err(KC_EINVAL, "%s: %s has no from_logits", where, name);
    if (spec->label_smoothing != 0.0f && !(o & KC_LOSS_OPT_SMOOTHING))
        return kc_err(KC_EINVAL, "%s: %s has no label_smoothing", where, name);
    if (!(spec->label_smoothing >= 0.0f && spec->label_smoothing <= 1.0f))
        return kc_err(KC_EINVAL, "%s: label_smoothing %g of %s is not in [0, 1]", where,
                      (double)spec->label_smoothing, name);
    if (spec->has_ignore_class && !(o & KC_LOSS_OPT_IGNORE))
        return kc_err(KC_EINVAL, "%s: %s has no ignore_class", where, name);
    if ((spec->gamma != 0.0f || spec->alpha != 0.0f) && !(o & KC_LOSS_OPT_FOCAL))
        return kc_err(KC_EINVAL, "%s: %s has no gamma or alpha", where, name);
    if (!isfinite(spec->gamma) || spec->gamma < 0.0f || !isfinite(spec->alpha))
        return kc_err(KC_EINVAL, "%s: gamma %g (>= 0) or alpha %g of %s is invalid", where,
                      (double)spec->gamma, (double)spec->alpha, name);
    if (spec->apply_class_balancing && !(o & KC_LOSS_OPT_BALANCING))
        return kc_err(KC_EINVAL, "%s: %s has no apply_class_balancing", where, name);
    if (spec->delta != 0.0f && !(o & KC_LOSS_OPT_DELTA))
        return kc_err(KC_EINVAL, "%s: %s has no delta", where, name);
    if (!(spec->delta >= 0.0f) || !isfinite(spec->delta))
        return kc_err(KC_EINVAL, "%s: delta %g of %s must be > 0", where, (double)spec->delta, name);
    if (spec->reduction == KC_REDUCTION_NONE)
        return kc_err(KC_EINVAL, "%s: reduction \"none\" of %s cannot train (it leaves a loss per "
                      "sample)", where, name);
    if ((unsigned)spec->reduction >= KC_REDUCTION_COUNT)
        return kc_err(KC_EINVAL, "%s: unknown reduction %d of %s", where, (int)spec->reduction, name);
    if (spec->axis != 0 && spec->axis != -1)
        return kc_err(KC_EINVAL, "%s: axis %d of %s: kerac computes losses over the last axis "
                      "(-1) only", where, spec->axis, name);
    *out = *spec;
    out->from_logits = spec->from_logits != 0;
    out->has_ignore_class = spec->has_ignore_class != 0;
    out->apply_class_balancing = spec->apply_class_balancing != 0;
    if (!out->has_ignore_class) out->ignore_class = 0;
    if (o & KC_LOSS_OPT_FOCAL) {
        if (out->gamma == 0.0f) out->gamma = 2.0f;
        if (out->alpha == 0.0f) out->alpha = 0.25f;
    }
    if ((o & KC_LOSS_OPT_DELTA) && out->delta == 0.0f) out->delta = 1.0f;
    out->axis = -1;
    return KC_OK;
}

int kc_loss_spec_plain(const kc_loss_spec *s) {
    return (s->kind == KC_CATEGORICAL_CROSSENTROPY || s->kind == KC_SPARSE_CATEGORICAL_CROSSENTROPY ||
            s->kind == KC_BINARY_CROSSENTROPY || s->kind == KC_MEAN_SQUARED_ERROR) &&
           !s->from_logits && s->label_smoothing == 0.0f && !s->has_ignore_class &&
           (s->reduction == KC_REDUCTION_SUM_OVER_BATCH_SIZE || s->reduction == KC_REDUCTION_MEAN);
}

int kc_loss_fuses(const kc_loss_spec *s, kc_act last_act) {
    if (!kc_loss_spec_plain(s)) return 0;
    kc_loss loss = s->kind;
    return ((loss == KC_CATEGORICAL_CROSSENTROPY || loss == KC_SPARSE_CATEGORICAL_CROSSENTROPY) &&
            last_act == KC_SOFTMAX) ||
           (loss == KC_BINARY_CROSSENTROPY && last_act == KC_SIGMOID);
}

static inline float clip_prob(float p) {
    return p < KC_EPSILON ? KC_EPSILON : (p > 1.0f - KC_EPSILON ? 1.0f - KC_EPSILON : p);
}
static inline int in_clip_range(float p) { return p >= KC_EPSILON && p <= 1.0f - KC_EPSILON; }

/* Crossentropy over a row of probabilities, as Keras: q = p / sum(p), clipped to
 * [eps, 1 - eps], L = -sum(t * log q). target: the row of t, or NULL with class >= 0 for a
 * sparse label. Gradient w.r.t. p (not fused):
 *   dL/dp_j = (g_j - sum_i g_i q_i) / S with g_i = -t_i / q_i where unclipped, else 0.
 * Fused with softmax (S = 1 exactly in exact arithmetic):
 *   dL/dz_j = q_j * sum_i t_i m_i - t_j m_j, m_i = 1 where q_i is unclipped: p - t when the
 *   true class is unclipped, 0 when it is clipped (Keras's clip passes no gradient). */
static double crossentropy_row(const float *p, const float *target, int cls, int cols,
                               float *grad, float grad_scale, int fused) {
    float sum = 0.0f;
    for (int j = 0; j < cols; j++) sum += p[j];
    double loss = 0.0;
    float t_m = 0.0f, g_dot_q = 0.0f;
    for (int j = 0; j < cols; j++) {
        float t = target ? target[j] : (j == cls ? 1.0f : 0.0f);
        if (t == 0.0f) continue;
        float q = p[j] / sum;
        loss -= (double)t * log((double)clip_prob(q));
        if (in_clip_range(q)) {
            t_m += t;
            g_dot_q += -t; /* g_i q_i = -t_i */
        }
    }
    if (!grad) return loss;
    for (int j = 0; j < cols; j++) {
        float t = target ? target[j] : (j == cls ? 1.0f : 0.0f);
        float q = p[j] / sum;
        float m = in_clip_range(q) ? 1.0f : 0.0f;
        if (fused) {
            grad[j] = (q * t_m - t * m) * grad_scale;
        } else {
            float g = (t != 0.0f && m != 0.0f) ? -t / q : 0.0f;
            grad[j] = (g - g_dot_q) / sum * grad_scale;
        }
    }
    return loss;
}

/* the losses with every option at its default: the paths kerac always had (bit for bit) */
static double plain_compute_den(kc_loss loss, const float *pred, const float *y, int batch,
                                int cols, float *grad, int fused, int64_t den);
static double plain_compute(kc_loss loss, const float *pred, const float *y, int batch, int cols,
                            float *grad, int fused) {
    return plain_compute_den(loss, pred, y, batch, cols, grad, fused, batch);
}

/* den: the rows the mean divides by (a part of a batch divides by the whole batch's rows) */
static double plain_compute_den(kc_loss loss, const float *pred, const float *y, int batch,
                                int cols, float *grad, int fused, int64_t den) {
    double total = 0.0;
    float inv_batch = 1.0f / (float)den;
    for (int i = 0; i < batch; i++) {
        const float *p = pred + (int64_t)i * cols;
        float *g = grad ? grad + (int64_t)i * cols : NULL;
        switch (loss) {
        case KC_CATEGORICAL_CROSSENTROPY:
            total += crossentropy_row(p, y + (int64_t)i * cols, -1, cols, g, inv_batch, fused);
            break;
        case KC_SPARSE_CATEGORICAL_CROSSENTROPY:
            total += crossentropy_row(p, NULL, (int)y[i], cols, g, inv_batch, fused);
            break;
        case KC_BINARY_CROSSENTROPY: {
            /* mean over the last axis of -(t log p + (1 - t) log(1 - p)), p clipped; fused
             * with sigmoid the gradient w.r.t. z is (p - t) where p is unclipped, else 0 */
            const float *t = y + (int64_t)i * cols;
            double row = 0.0;
            float scale = inv_batch / (float)cols;
            for (int j = 0; j < cols; j++) {
                float pc = clip_prob(p[j]);
                row -= (double)t[j] * log((double)pc) + (1.0 - t[j]) * log(1.0 - (double)pc);
                if (!g) continue;
                if (!in_clip_range(p[j])) g[j] = 0.0f;
                else if (fused) g[j] = (p[j] - t[j]) * scale;
                else g[j] = (-t[j] / pc + (1.0f - t[j]) / (1.0f - pc)) * scale;
            }
            total += row / cols;
            break;
        }
        case KC_MEAN_SQUARED_ERROR: {
            const float *t = y + (int64_t)i * cols;
            double row = 0.0;
            float scale = 2.0f * inv_batch / (float)cols;
            for (int j = 0; j < cols; j++) {
                float d = p[j] - t[j];
                row += (double)d * d;
                if (g) g[j] = d * scale;
            }
            total += row / cols;
            break;
        }
        default: break; /* the other losses take row_loss's path */
        }
    }
    return total / (double)den;
}

double kc_loss_compute_rows(const kc_loss_spec *s, const float *pred, const float *y, int batch,
                            int cols, float *grad, int fused, int64_t den) {
    return plain_compute_den(s->kind, pred, y, batch, cols, grad, fused, den);
}

/* ---- every option: a row's loss and its gradient w.r.t. the row of pred, unscaled ---- */

static inline double softplus(double x) { return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))); }
static inline float sigmoidf_(float x) {
    return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}
static inline float signf_(float x) { return (float)((x > 0) - (x < 0)); }

/* softmax of z into q; returns log-sum-exp */
static double softmax_row(const float *z, int cols, float *q) {
    float mx = z[0];
    for (int j = 1; j < cols; j++) mx = z[j] > mx ? z[j] : mx;
    double sum = 0.0;
    for (int j = 0; j < cols; j++) sum += exp((double)z[j] - mx);
    for (int j = 0; j < cols; j++) q[j] = (float)(exp((double)z[j] - mx) / sum);
    return mx + log(sum);
}

/* d/dz of a loss of q = softmax(z) from gq = d/dq (in place: g <- q * (g - g.q)) */
static void softmax_back(const float *q, int cols, float *g) {
    float dot = 0.0f;
    for (int j = 0; j < cols; j++) dot += g[j] * q[j];
    for (int j = 0; j < cols; j++) g[j] = q[j] * (g[j] - dot);
}

typedef struct {
    const kc_loss_spec *s;
    int hinge_binary; /* hinge: labels all 0 or 1 become -1 or 1 (Keras checks the batch) */
    float *t, *q;     /* scratch rows */
} row_ctx;

static double row_loss(const row_ctx *c, const float *p, const float *y, int cols, float *g) {
    const kc_loss_spec *s = c->s;
    float ls = s->label_smoothing, inv = 1.0f / (float)cols, eps = KC_EPSILON;
    float *t = c->t, *q = c->q;
    double L = 0.0;
    switch (s->kind) {
    case KC_CATEGORICAL_CROSSENTROPY:
    case KC_SPARSE_CATEGORICAL_CROSSENTROPY: {
        if (s->kind == KC_SPARSE_CATEGORICAL_CROSSENTROPY) {
            int cls = (int)y[0];
            for (int j = 0; j < cols; j++) t[j] = j == cls ? 1.0f : 0.0f;
        } else {
            for (int j = 0; j < cols; j++) t[j] = ls ? y[j] * (1.0f - ls) + ls / (float)cols : y[j];
        }
        if (!s->from_logits) return crossentropy_row(p, t, -1, cols, g, 1.0f, 0);
        double lse = softmax_row(p, cols, q);
        float tsum = 0.0f;
        for (int j = 0; j < cols; j++) {
            if (t[j] != 0.0f) L -= (double)t[j] * ((double)p[j] - lse);
            tsum += t[j];
        }
        if (g)
            for (int j = 0; j < cols; j++) g[j] = q[j] * tsum - t[j];
        return L;
    }
    case KC_BINARY_CROSSENTROPY:
        for (int j = 0; j < cols; j++) {
            float tj = ls ? y[j] * (1.0f - ls) + 0.5f * ls : y[j];
            if (s->from_logits) {
                double x = p[j];
                L += (x > 0 ? x : 0.0) - x * tj + log1p(exp(-fabs(x)));
                if (g) g[j] = (sigmoidf_(p[j]) - tj) * inv;
            } else {
                float pc = clip_prob(p[j]);
                L -= (double)tj * log((double)pc) + (1.0 - tj) * log(1.0 - (double)pc);
                if (g) g[j] = in_clip_range(p[j]) ? (-tj / pc + (1.0f - tj) / (1.0f - pc)) * inv : 0.0f;
            }
        }
        return L / cols;
    case KC_BINARY_FOCAL_CROSSENTROPY:
        for (int j = 0; j < cols; j++) {
            float tj = ls ? y[j] * (1.0f - ls) + 0.5f * ls : y[j];
            float pj = s->from_logits ? sigmoidf_(p[j]) : p[j];
            float pc = clip_prob(pj);
            double bce = -((double)tj * log((double)pc) + (1.0 - tj) * log(1.0 - (double)pc));
            float pt = tj * pj + (1.0f - tj) * (1.0f - pj);
            double f = pow(1.0 - pt, s->gamma);
            float w = s->apply_class_balancing ? tj * s->alpha + (1.0f - tj) * (1.0f - s->alpha) : 1.0f;
            L += w * f * bce;
            if (!g) continue;
            double dbce = in_clip_range(pj) ? -tj / pc + (1.0f - tj) / (1.0f - pc) : 0.0;
            double df = s->gamma == 0.0f ? 0.0
                        : -s->gamma * pow(1.0 - pt, s->gamma - 1.0f) * (2.0f * tj - 1.0f);
            double d = w * (f * dbce + df * bce) * inv;
            if (s->from_logits) d *= (double)pj * (1.0 - pj);
            g[j] = (float)d;
        }
        return L / cols;
    case KC_CATEGORICAL_FOCAL_CROSSENTROPY: {
        const float *p0 = p;
        if (s->from_logits) {
            softmax_row(p, cols, q);
            p0 = q;
        }
        float sum = 0.0f;
        for (int j = 0; j < cols; j++) sum += p0[j];
        float dot = 0.0f;
        for (int j = 0; j < cols; j++) {
            float tj = ls ? y[j] * (1.0f - ls) + ls / (float)cols : y[j];
            float o = p0[j] / sum, oc = clip_prob(o);
            double lo = log((double)oc), mf = pow(1.0 - oc, s->gamma);
            L += s->alpha * mf * (-(double)tj * lo);
            if (!g) continue;
            double dm = s->gamma == 0.0f ? 0.0 : -s->gamma * pow(1.0 - oc, s->gamma - 1.0f);
            double d = in_clip_range(o) ? s->alpha * (dm * (-(double)tj * lo) + mf * (-tj / oc)) : 0.0;
            g[j] = (float)d; /* d/d(o) */
            dot += g[j] * o;
        }
        if (g) {
            for (int j = 0; j < cols; j++) g[j] = (g[j] - dot) / sum;
            if (s->from_logits) softmax_back(q, cols, g);
        }
        return L;
    }
    case KC_MEAN_SQUARED_ERROR:
        for (int j = 0; j < cols; j++) {
            float d = p[j] - y[j];
            L += (double)d * d;
            if (g) g[j] = 2.0f * d * inv;
        }
        return L / cols;
    case KC_MEAN_ABSOLUTE_ERROR:
        for (int j = 0; j < cols; j++) {
            L += fabs((double)p[j] - y[j]);
            if (g) g[j] = signf_(p[j] - y[j]) * inv;
        }
        return L / cols;
    case KC_MEAN_ABSOLUTE_PERCENTAGE_ERROR:
        for (int j = 0; j < cols; j++) {
            float den = fabsf(y[j]) > eps ? fabsf(y[j]) : eps;
            L += fabs(((double)y[j] - p[j]) / den);
            if (g) g[j] = 100.0f * signf_(p[j] - y[j]) / den * inv;
        }
        return 100.0 * L / cols;
    case KC_MEAN_SQUARED_LOGARITHMIC_ERROR:
        for (int j = 0; j < cols; j++) {
            double a = log((double)(p[j] > eps ? p[j] : eps) + 1.0);
            double b = log((double)(y[j] > eps ? y[j] : eps) + 1.0);
            L += (a - b) * (a - b);
            if (g) g[j] = p[j] > eps ? (float)(2.0 * (a - b) / (p[j] + 1.0)) * inv : 0.0f;
        }
        return L / cols;
    case KC_HUBER:
        for (int j = 0; j < cols; j++) {
            float e = p[j] - y[j], d = s->delta;
            if (fabsf(e) <= d) {
                L += 0.5 * e * e;
                if (g) g[j] = e * inv;
            } else {
                L += (double)d * fabsf(e) - 0.5 * d * d;
                if (g) g[j] = d * signf_(e) * inv;
            }
        }
        return L / cols;
    case KC_LOG_COSH:
        for (int j = 0; j < cols; j++) {
            double x = (double)p[j] - y[j];
            L += x + softplus(-2.0 * x) - log(2.0);
            if (g) g[j] = (float)tanh(x) * inv;
        }
        return L / cols;
    case KC_KL_DIVERGENCE:
        for (int j = 0; j < cols; j++) {
            float tc = y[j] < eps ? eps : (y[j] > 1.0f ? 1.0f : y[j]);
            float pc = p[j] < eps ? eps : (p[j] > 1.0f ? 1.0f : p[j]);
            L += tc * log((double)tc / pc);
            if (g) g[j] = p[j] >= eps && p[j] <= 1.0f ? -tc / pc : 0.0f;
        }
        return L;
    case KC_POISSON:
        for (int j = 0; j < cols; j++) {
            L += p[j] - y[j] * log((double)p[j] + eps);
            if (g) g[j] = (1.0f - y[j] / (p[j] + eps)) * inv;
        }
        return L / cols;
    case KC_HINGE:
    case KC_SQUARED_HINGE:
        for (int j = 0; j < cols; j++) {
            float tj = c->hinge_binary ? 2.0f * y[j] - 1.0f : y[j];
            float h = 1.0f - tj * p[j];
            h = h > 0.0f ? h : 0.0f;
            if (s->kind == KC_HINGE) {
                L += h;
                if (g) g[j] = h > 0.0f ? -tj * inv : 0.0f;
            } else {
                L += (double)h * h;
                if (g) g[j] = -2.0f * tj * h * inv;
            }
        }
        return L / cols;
    case KC_CATEGORICAL_HINGE: {
        float pos = 0.0f, neg = -INFINITY;
        int arg = 0;
        for (int j = 0; j < cols; j++) {
            pos += y[j] * p[j];
            float n = (1.0f - y[j]) * p[j];
            if (n > neg) neg = n, arg = j;
        }
        float h = neg - pos + 1.0f;
        if (g)
            for (int j = 0; j < cols; j++)
                g[j] = h > 0.0f ? -y[j] + (j == arg ? 1.0f - y[j] : 0.0f) : 0.0f;
        return h > 0.0f ? h : 0.0f;
    }
    case KC_COSINE_SIMILARITY: {
        double pp = 0.0, tt = 0.0, tp = 0.0;
        for (int j = 0; j < cols; j++) {
            pp += (double)p[j] * p[j];
            tt += (double)y[j] * y[j];
            tp += (double)y[j] * p[j];
        }
        double np = 1.0 / sqrt(pp), nt = 1.0 / sqrt(tt);
        int p_clamped = !(np < 1.0 / eps);
        if (p_clamped) np = 1.0 / eps;
        if (!(nt < 1.0 / eps)) nt = 1.0 / eps;
        L = -tp * np * nt;
        if (g)
            for (int j = 0; j < cols; j++)
                g[j] = (float)(-nt * (y[j] * np - (p_clamped ? 0.0 : tp * np * np * np * p[j])));
        return L;
    }
    case KC_LOSS_NONE:
    case KC_LOSS_COUNT: break;
    }
    return 0.0;
}

double kc_loss_compute(const kc_loss_spec *s, const float *pred, const float *y, int batch,
                       int cols, float *grad, int fused) {
    if (kc_loss_spec_plain(s)) {
        double v = plain_compute(s->kind, pred, y, batch, cols, grad, fused);
        return v; /* mean and sum_over_batch_size are the same without sample weights */
    }
    int sparse = s->kind == KC_SPARSE_CATEGORICAL_CROSSENTROPY;
    float stack[512], *heap = NULL, *scratch = stack;
    if (cols > 256) {
        heap = malloc(sizeof(float) * 2 * (size_t)cols);
        if (!heap) return NAN;
        scratch = heap;
    }
    row_ctx c = {s, 0, scratch, scratch + cols};
    if (s->kind == KC_HINGE || s->kind == KC_SQUARED_HINGE) {
        c.hinge_binary = 1;
        for (int64_t i = 0; i < (int64_t)batch * cols && c.hinge_binary; i++)
            c.hinge_binary = y[i] == 0.0f || y[i] == 1.0f;
    }
    double total = 0.0;
    int counted = 0;
    for (int i = 0; i < batch; i++) {
        const float *p = pred + (int64_t)i * cols;
        const float *yi = y + (sparse ? (int64_t)i : (int64_t)i * cols);
        float *g = grad ? grad + (int64_t)i * cols : NULL;
        if (sparse && s->has_ignore_class && (int)yi[0] == s->ignore_class) {
            if (g) memset(g, 0, sizeof(float) * (size_t)cols);
            continue;
        }
        counted++;
        total += row_loss(&c, p, yi, cols, g);
    }
    free(heap);
    /* Keras: sum / samples; with ignore_class, sum / the samples not ignored (0 when none) */
    double den = s->reduction == KC_REDUCTION_SUM ? 1.0 : (double)counted;
    if (den == 0.0) den = INFINITY;
    if (grad && den != 1.0) {
        float scale = (float)(1.0 / den);
        for (int64_t i = 0; i < (int64_t)batch * cols; i++) grad[i] *= scale;
    }
    return total / den;
}

/* The same with a weight per row (Keras's sample_weight): value = sum_i w_i L_i / den, where den
 * is what the unweighted form divides by (the rows, the rows not ignored, or 1 for "sum"); each
 * row's gradient is its unweighted one times w_i / den. Each row goes through the path the
 * unweighted form takes for it (row by row), so the fused gradient stays the same rows scaled. */
double kc_loss_compute_weighted(const kc_loss_spec *s, const float *pred, const float *y,
                                int batch, int cols, float *grad, int fused,
                                const float *weights) {
    return kc_loss_compute_masked(s, pred, y, batch, cols, grad, fused, weights, NULL, NULL);
}

double kc_loss_compute_masked(const kc_loss_spec *s, const float *pred, const float *y,
                              int batch, int cols, float *grad, int fused,
                              const float *weights, const uint8_t *mask, double *counted_rows) {
    if (!weights && !mask) {
        if (counted_rows) {
            int64_t n = batch;
            if (s->kind == KC_SPARSE_CATEGORICAL_CROSSENTROPY && s->has_ignore_class)
                for (int i = 0; i < batch; i++) n -= (int)y[i] == s->ignore_class;
            *counted_rows = (double)n;
        }
        return kc_loss_compute(s, pred, y, batch, cols, grad, fused);
    }
    int sparse = s->kind == KC_SPARSE_CATEGORICAL_CROSSENTROPY;
    int plain = kc_loss_spec_plain(s);
    float stack[512], *heap = NULL, *scratch = stack;
    if (!plain && cols > 256) {
        heap = malloc(sizeof(float) * 2 * (size_t)cols);
        if (!heap) return NAN;
        scratch = heap;
    }
    row_ctx c = {s, 0, scratch, scratch + cols};
    if (s->kind == KC_HINGE || s->kind == KC_SQUARED_HINGE) {
        c.hinge_binary = 1;
        for (int64_t i = 0; i < (int64_t)batch * cols && c.hinge_binary; i++)
            c.hinge_binary = y[i] == 0.0f || y[i] == 1.0f;
    }
    double total = 0.0, weight_sum = 0.0;
    int counted = 0;
    for (int i = 0; i < batch; i++) {
        const float *p = pred + (int64_t)i * cols;
        const float *yi = y + (sparse ? (int64_t)i : (int64_t)i * cols);
        float *g = grad ? grad + (int64_t)i * cols : NULL;
        /* a masked row (Keras 3's apply_mask: weight 0, the mean over the rows left) counts
         * as an ignored one */
        if ((sparse && s->has_ignore_class && (int)yi[0] == s->ignore_class) ||
            (mask && !mask[i])) {
            if (g) memset(g, 0, sizeof(float) * (size_t)cols);
            continue;
        }
        counted++;
        float w = weights ? weights[i] : 1.0f;
        weight_sum += w;
        double row = plain ? plain_compute(s->kind, p, yi, 1, cols, g, fused)
                           : row_loss(&c, p, yi, cols, g);
        total += (double)w * row;
        if (g && w != 1.0f)
            for (int j = 0; j < cols; j++) g[j] *= w;
    }
    free(heap);
    if (counted_rows) *counted_rows = (double)counted;
    /* mean_with_sample_weight: / the weights' sum (of the rows not ignored; 0 gives 0) */
    double den = s->reduction == KC_REDUCTION_SUM ? 1.0
                 : s->reduction == KC_REDUCTION_MEAN_WITH_SAMPLE_WEIGHT ? weight_sum
                                                                         : (double)counted;
    if (den == 0.0) den = INFINITY;
    if (grad && den != 1.0) {
        float scale = (float)(1.0 / den);
        for (int64_t i = 0; i < (int64_t)batch * cols; i++) grad[i] *= scale;
    }
    return total / den;
}

int kc_loss_hinge_binary(const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (y[i] != 0.0f && y[i] != 1.0f) return 0;
    return 1;
}

double kc_loss_row_value(const kc_loss_spec *s, const float *p, const float *y, int cols,
                         int hinge_binary, float *scratch) {
    row_ctx c = {s, hinge_binary, scratch, scratch + cols};
    return row_loss(&c, p, y, cols, NULL);
}
