/* metrics.c: Keras 3's metrics (keras/src/metrics): a row of the table per kc_metric, each with
 * its update and result. A metric keeps its state over an epoch as Keras's does: a Mean metric
 * (accuracies, the losses used as metrics) the weighted sum of its per-sample values and their
 * count; AUC its weighted counts per threshold bucket; Precision and Recall their true and false
 * positives and negatives; the F-scores theirs per class. */
#include "metrics.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KC_EPSILON 1e-7f   /* keras.backend.epsilon() */
#define KC_NEG_INF -1e10f  /* metrics_utils.NEG_INF: Precision and Recall's threshold with top_k */

/* ---- Mean metrics: one value per row ------------------------------------------------------ */

static inline const float *row_y(const kc_metric_state *st, const float *y, int64_t r) {
    return st->sparse ? y + r : y + r * st->cols;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int j = 1; j < n; j++)
        if (x[j] > x[best]) best = j;
    return best;
}

/* binary_accuracy: (p > threshold) as 0 or 1, equal to the label, the mean over the row */
static void v_binary_accuracy(kc_metric_state *st, const float *pred, const float *y, int rows,
                              double *out) {
    int c = st->cols;
    float thr = st->spec.threshold;
    for (int64_t r = 0; r < rows; r++) {
        const float *p = pred + r * c, *t = row_y(st, y, r);
        int hits = 0;
        for (int j = 0; j < c; j++) hits += (p[j] > thr ? 1.0f : 0.0f) == t[j];
        out[r] = (double)hits / c;
    }
}

static void v_categorical_accuracy(kc_metric_state *st, const float *pred, const float *y,
                                   int rows, double *out) {
    int c = st->cols;
    for (int64_t r = 0; r < rows; r++)
        out[r] = argmax(pred + r * c, c) == argmax(y + r * c, c);
}

static void v_sparse_categorical_accuracy(kc_metric_state *st, const float *pred, const float *y,
                                          int rows, double *out) {
    int c = st->cols;
    for (int64_t r = 0; r < rows; r++) out[r] = (float)argmax(pred + r * c, c) == y[r];
}

/* ops.in_top_k as the JAX backend computes it: the label's rank is 1 + the number of values
 * strictly greater than its own (so ties count in its favour; a NaN at the label ranks last) */
static int in_top_k(const float *p, int cols, int label, int k) {
    if (label < 0 || label >= cols) return 0;
    float at = isnan(p[label]) ? -INFINITY : p[label];
    int rank = 1;
    for (int j = 0; j < cols; j++) rank += p[j] > at;
    return rank <= k;
}

static void v_top_k(kc_metric_state *st, const float *pred, const float *y, int rows, double *out) {
    int c = st->cols;
    for (int64_t r = 0; r < rows; r++)
        out[r] = in_top_k(pred + r * c, c, argmax(y + r * c, c), st->spec.k);
}

static void v_sparse_top_k(kc_metric_state *st, const float *pred, const float *y, int rows,
                           double *out) {
    int c = st->cols;
    for (int64_t r = 0; r < rows; r++) out[r] = in_top_k(pred + r * c, c, (int)y[r], st->spec.k);
}

/* a loss's value per row (the loss function Keras's metric class wraps) */
static void v_loss(kc_metric_state *st, const float *pred, const float *y, int rows, double *out) {
    int c = st->cols;
    for (int64_t r = 0; r < rows; r++)
        out[r] = kc_loss_row_value(&st->loss, pred + r * c, row_y(st, y, r), c, st->hinge_binary,
                                   st->scratch);
}

/* CosineSimilarity: the cosine itself, where the loss is its negative */
static void v_cosine(kc_metric_state *st, const float *pred, const float *y, int rows, double *out) {
    v_loss(st, pred, y, rows, out);
    for (int64_t r = 0; r < rows; r++) out[r] = -out[r];
}

static double r_sqrt_mean(const kc_metric_state *st) {
    return st->count != 0.0 ? sqrt(st->total / st->count) : 0.0;
}

/* ---- AUC: weighted counts of labels per threshold bucket ----------------------------------- */

/* Keras's evenly spaced thresholds ((i + 1) / (n - 1), with -epsilon and 1 + epsilon at the
 * ends) take metrics_utils' bucket path: p clipped to [0, 1] falls in bucket
 * max(ceil(p (n - 1)) - 1, 0), in float32, and counts as positive for every threshold up to
 * it. State: the true labels' weight per bucket, then the false labels'. */
static int64_t auc_size(const kc_metric_state *st) { return 2 * (int64_t)st->spec.num_thresholds; }

static inline float sigmoid32(float x) { return 1.0f / (1.0f + expf(-x)); }

static void auc_update(kc_metric_state *st, const float *pred, const float *y, int rows,
                       const float *sw) {
    int n = st->spec.num_thresholds, c = st->cols, rps = st->rows_per_sample;
    double *tb = st->acc, *fb = st->acc + n;
    float steps = (float)n - 1.0f;
    for (int64_t r = 0; r < rows; r++) {
        double w = sw ? sw[r / rps] : 1.0;
        for (int j = 0; j < c; j++) {
            float p = pred[r * c + j];
            if (st->spec.from_logits) p = sigmoid32(p);
            if (isnan(p)) continue;
            p = p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
            float b = ceilf(p * steps) - 1.0f;
            int bi = b > 0.0f ? (int)b : 0;
            if (y[r * c + j] != 0.0f) tb[bi] += w;
            else fb[bi] += w;
        }
    }
}

static inline double div_no_nan(double a, double b) { return b == 0.0 ? 0.0 : a / b; }

static double auc_result(const kc_metric_state *st) {
    int n = st->spec.num_thresholds;
    const double *tb = st->acc, *fb = st->acc + n;
    double *tp = st->work;
    double *fp = tp + n, *x = fp + n, *yv = x + n;
    double T = 0.0, F = 0.0, ct = 0.0, cf = 0.0;
    for (int i = 0; i < n; i++) T += tb[i], F += fb[i];
    /* tp[i], fp[i]: the weight of the labels above threshold i (bucket >= i) */
    for (int i = n - 1; i >= 0; i--) {
        ct += tb[i], cf += fb[i];
        tp[i] = ct;
        fp[i] = cf;
    }
    double total = 0.0;
    const kc_metric_spec *s = &st->spec;
    if (s->curve == KC_CURVE_PR && s->summation_method == KC_SUMMATION_INTERPOLATION) {
        for (int i = 0; i < n - 1; i++) {
            double dtp = tp[i] - tp[i + 1];
            double p0 = tp[i] + fp[i], p1 = tp[i + 1] + fp[i + 1];
            double dp = p0 - p1;
            double slope = div_no_nan(dtp, dp > 0.0 ? dp : 0.0);
            double intercept = tp[i + 1] - slope * p1;
            double ratio = p0 > 0.0 && p1 > 0.0 ? div_no_nan(p0, p1 > 0.0 ? p1 : 0.0) : 1.0;
            double fn1 = T - tp[i + 1];
            double den = tp[i + 1] + fn1;
            total += div_no_nan(slope * (dtp + intercept * log(ratio)), den > 0.0 ? den : 0.0);
        }
        return total;
    }
    for (int i = 0; i < n; i++) {
        double fn = T - tp[i], tn = F - fp[i];
        double recall = div_no_nan(tp[i], tp[i] + fn);
        if (s->curve == KC_CURVE_ROC) {
            x[i] = div_no_nan(fp[i], fp[i] + tn);
            yv[i] = recall;
        } else if (s->curve == KC_CURVE_PR) {
            x[i] = recall;
            yv[i] = div_no_nan(tp[i], tp[i] + fp[i]);
        } else { /* PRGAIN */
            double scale = div_no_nan(tp[i] + fn, tn + fp[i]);
            double rg = 1.0 - scale * div_no_nan(fn, tp[i]);
            double pg = 1.0 - scale * div_no_nan(fp[i], tp[i]);
            if (tp[i] == 0.0) rg = 0.0, pg = 1.0;
            x[i] = rg > 0.0 ? rg : 0.0;
            yv[i] = pg;
        }
    }
    for (int i = 0; i < n - 1; i++) {
        double h = s->summation_method == KC_SUMMATION_INTERPOLATION ? (yv[i] + yv[i + 1]) / 2.0
                   : s->summation_method == KC_SUMMATION_MINORING
                       ? (yv[i] < yv[i + 1] ? yv[i] : yv[i + 1])
                       : (yv[i] > yv[i + 1] ? yv[i] : yv[i + 1]);
        total += (x[i] - x[i + 1]) * h;
    }
    return total;
}

/* ---- Precision and Recall: true positives, false positives, false negatives --------------- */

static int64_t pr_size(const kc_metric_state *st) { return 3; }

/* metrics_utils' _filter_top_k: values outside a row's top_k (ties: the lower index first, as
 * lax.top_k) become NEG_INF */
static int in_top(const float *p, int cols, int j, int top_k) {
    int above = 0;
    for (int i = 0; i < cols && above < top_k; i++)
        above += p[i] > p[j] || (p[i] == p[j] && i < j);
    return above < top_k;
}

static void pr_update(kc_metric_state *st, const float *pred, const float *y, int rows,
                      const float *sw) {
    const kc_metric_spec *s = &st->spec;
    int c = st->cols, rps = st->rows_per_sample;
    float thr = s->has_threshold ? s->threshold : (s->top_k ? KC_NEG_INF : 0.5f);
    int from = s->has_class_id ? s->class_id : 0, to = s->has_class_id ? s->class_id + 1 : c;
    double *tp = st->acc, *fp = st->acc + 1, *fn = st->acc + 2;
    for (int64_t r = 0; r < rows; r++) {
        double w = sw ? sw[r / rps] : 1.0;
        const float *p = pred + r * c, *t = y + r * c;
        for (int j = from; j < to; j++) {
            float v = s->top_k && !in_top(p, c, j, s->top_k) ? KC_NEG_INF : p[j];
            int pos = v > thr, lab = t[j] != 0.0f;
            if (lab && pos) *tp += w;
            else if (pos) *fp += w;
            else if (lab) *fn += w;
        }
    }
}

static double precision_result(const kc_metric_state *st) {
    return div_no_nan(st->acc[0], st->acc[0] + st->acc[1]);
}

static double recall_result(const kc_metric_state *st) {
    return div_no_nan(st->acc[0], st->acc[0] + st->acc[2]);
}

/* ---- F1Score, FBetaScore: per class true and false positives, false negatives, label weight */

static int64_t f_size(const kc_metric_state *st) { return 4 * (int64_t)st->cols; }

static void f_update(kc_metric_state *st, const float *pred, const float *y, int rows,
                     const float *sw) {
    int c = st->cols;
    double *tp = st->acc, *fp = tp + c, *fn = fp + c, *iw = fn + c;
    for (int64_t r = 0; r < rows; r++) {
        double w = sw ? sw[r] : 1.0;
        const float *p = pred + r * c, *t = y + r * c;
        float mx = p[0];
        for (int j = 1; j < c; j++) mx = p[j] > mx ? p[j] : mx;
        for (int j = 0; j < c; j++) {
            /* without a threshold a row's largest value is its positive class */
            double pb = st->spec.has_threshold ? p[j] > st->spec.threshold
                                               : p[j] >= mx && fabsf(p[j]) > 1e-9f;
            tp[j] += w * pb * t[j];
            fp[j] += w * pb * (1.0 - t[j]);
            fn[j] += w * (1.0 - pb) * t[j];
            iw[j] += w * t[j];
        }
    }
}

static double f_score(double tp, double fp, double fn, double b2) {
    double eps = KC_EPSILON;
    double precision = tp / (tp + fp + eps), recall = tp / (tp + fn + eps);
    return precision * recall / (b2 * precision + recall + eps) * (1.0 + b2);
}

static double f_result(const kc_metric_state *st) {
    int c = st->cols;
    const double *tp = st->acc, *fp = tp + c, *fn = fp + c, *iw = fn + c;
    double b2 = (double)st->spec.beta * st->spec.beta, total = 0.0;
    if (st->spec.average == KC_AVERAGE_MICRO) {
        double a = 0.0, b = 0.0, d = 0.0;
        for (int j = 0; j < c; j++) a += tp[j], b += fp[j], d += fn[j];
        return f_score(a, b, d, b2);
    }
    double wsum = 0.0;
    for (int j = 0; j < c; j++) wsum += iw[j];
    for (int j = 0; j < c; j++) {
        double f = f_score(tp[j], fp[j], fn[j], b2);
        total += st->spec.average == KC_AVERAGE_WEIGHTED ? f * (iw[j] / (wsum + KC_EPSILON)) : f;
    }
    return st->spec.average == KC_AVERAGE_WEIGHTED ? total : total / c;
}

/* ---- the table ---------------------------------------------------------------------------- */

#define M_D KC_MT_DENSE
#define M_S KC_MT_SPARSE
#define MEAN(fn) fn, NULL, NULL, NULL
#define VALUES(fn) KC_LOSS_NONE, fn, NULL, NULL, NULL /* a Mean metric of its own values */
static const kc_metric_info metric_table[] = {
    [KC_METRIC_NONE] = {"none", NULL, NULL, 0, 0, 0, KC_LOSS_NONE, NULL, NULL, NULL, NULL},
    /* "accuracy" runs as one of the three below (kc_metric_init) */
    [KC_METRIC_ACCURACY] = {"accuracy", NULL, NULL, 0, 1, M_D | M_S, KC_LOSS_NONE, NULL, NULL, NULL, NULL},
    [KC_METRIC_BINARY_ACCURACY] = {"binary_accuracy", "BinaryAccuracy", NULL, KC_MOPT_THRESHOLD, 1,
                                   M_D, VALUES(v_binary_accuracy)},
    [KC_METRIC_CATEGORICAL_ACCURACY] = {"categorical_accuracy", "CategoricalAccuracy", NULL, 0, 1,
                                        M_D, VALUES(v_categorical_accuracy)},
    [KC_METRIC_SPARSE_CATEGORICAL_ACCURACY] = {"sparse_categorical_accuracy",
                                               "SparseCategoricalAccuracy", NULL, 0, 1, M_S,
                                               VALUES(v_sparse_categorical_accuracy)},
    [KC_METRIC_TOP_K_CATEGORICAL_ACCURACY] = {"top_k_categorical_accuracy", "TopKCategoricalAccuracy",
                                              NULL, KC_MOPT_K, 1, M_D, VALUES(v_top_k)},
    [KC_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY] = {"sparse_top_k_categorical_accuracy",
                                                     "SparseTopKCategoricalAccuracy", NULL,
                                                     KC_MOPT_K, 1, M_S, VALUES(v_sparse_top_k)},
    [KC_METRIC_MEAN_SQUARED_ERROR] = {"mean_squared_error", "MeanSquaredError", NULL, 0, 0, M_D,
                                      KC_MEAN_SQUARED_ERROR, MEAN(v_loss)},
    [KC_METRIC_MEAN_ABSOLUTE_ERROR] = {"mean_absolute_error", "MeanAbsoluteError", NULL, 0, 0, M_D,
                                       KC_MEAN_ABSOLUTE_ERROR, MEAN(v_loss)},
    [KC_METRIC_ROOT_MEAN_SQUARED_ERROR] = {"root_mean_squared_error", "RootMeanSquaredError", NULL,
                                           0, 0, M_D, KC_MEAN_SQUARED_ERROR, v_loss, NULL, NULL,
                                           r_sqrt_mean},
    [KC_METRIC_MEAN_ABSOLUTE_PERCENTAGE_ERROR] = {"mean_absolute_percentage_error",
                                                  "MeanAbsolutePercentageError", NULL, 0, 0, M_D,
                                                  KC_MEAN_ABSOLUTE_PERCENTAGE_ERROR, MEAN(v_loss)},
    [KC_METRIC_MEAN_SQUARED_LOGARITHMIC_ERROR] = {"mean_squared_logarithmic_error",
                                                  "MeanSquaredLogarithmicError", NULL, 0, 0, M_D,
                                                  KC_MEAN_SQUARED_LOGARITHMIC_ERROR, MEAN(v_loss)},
    [KC_METRIC_COSINE_SIMILARITY] = {"cosine_similarity", "CosineSimilarity", NULL, KC_MOPT_AXIS, 1,
                                     M_D, KC_COSINE_SIMILARITY, MEAN(v_cosine)},
    [KC_METRIC_LOG_COSH_ERROR] = {"logcosh", "LogCoshError", "log_cosh_error", 0, 0, M_D,
                                  KC_LOG_COSH, MEAN(v_loss)},
    [KC_METRIC_BINARY_CROSSENTROPY] = {"binary_crossentropy", "BinaryCrossentropy", NULL,
                                       KC_MOPT_LOGITS | KC_MOPT_SMOOTHING, 0, M_D,
                                       KC_BINARY_CROSSENTROPY, MEAN(v_loss)},
    [KC_METRIC_CATEGORICAL_CROSSENTROPY] = {"categorical_crossentropy", "CategoricalCrossentropy",
                                            NULL, KC_MOPT_LOGITS | KC_MOPT_SMOOTHING | KC_MOPT_AXIS,
                                            0, M_D, KC_CATEGORICAL_CROSSENTROPY, MEAN(v_loss)},
    [KC_METRIC_SPARSE_CATEGORICAL_CROSSENTROPY] = {"sparse_categorical_crossentropy",
                                                   "SparseCategoricalCrossentropy", NULL,
                                                   KC_MOPT_LOGITS | KC_MOPT_AXIS, 0, M_S,
                                                   KC_SPARSE_CATEGORICAL_CROSSENTROPY, MEAN(v_loss)},
    [KC_METRIC_KL_DIVERGENCE] = {"kl_divergence", "KLDivergence", NULL, 0, 0, M_D,
                                 KC_KL_DIVERGENCE, MEAN(v_loss)},
    [KC_METRIC_POISSON] = {"poisson", "Poisson", NULL, 0, 0, M_D, KC_POISSON, MEAN(v_loss)},
    [KC_METRIC_HINGE] = {"hinge", "Hinge", NULL, 0, 0, M_D, KC_HINGE, MEAN(v_loss)},
    [KC_METRIC_SQUARED_HINGE] = {"squared_hinge", "SquaredHinge", NULL, 0, 0, M_D, KC_SQUARED_HINGE,
                                 MEAN(v_loss)},
    [KC_METRIC_CATEGORICAL_HINGE] = {"categorical_hinge", "CategoricalHinge", NULL, 0, 0, M_D,
                                     KC_CATEGORICAL_HINGE, MEAN(v_loss)},
    [KC_METRIC_HUBER] = {"huber", NULL, NULL, 0, 0, M_D, KC_HUBER, MEAN(v_loss)},
    [KC_METRIC_BINARY_FOCAL_CROSSENTROPY] = {"binary_focal_crossentropy", NULL, NULL, 0, 0, M_D,
                                             KC_BINARY_FOCAL_CROSSENTROPY, MEAN(v_loss)},
    [KC_METRIC_CATEGORICAL_FOCAL_CROSSENTROPY] = {"categorical_focal_crossentropy", NULL, NULL, 0,
                                                  0, M_D, KC_CATEGORICAL_FOCAL_CROSSENTROPY,
                                                  MEAN(v_loss)},
    [KC_METRIC_AUC] = {"auc", "AUC", NULL, KC_MOPT_AUC | KC_MOPT_LOGITS, 1, M_D, KC_LOSS_NONE,
                       NULL, auc_size, auc_update, auc_result},
    [KC_METRIC_PRECISION] = {"precision", "Precision", NULL,
                             KC_MOPT_THRESHOLD | KC_MOPT_TOP_K | KC_MOPT_CLASS_ID, 1, M_D,
                             KC_LOSS_NONE, NULL, pr_size, pr_update, precision_result},
    [KC_METRIC_RECALL] = {"recall", "Recall", NULL,
                          KC_MOPT_THRESHOLD | KC_MOPT_TOP_K | KC_MOPT_CLASS_ID, 1, M_D,
                          KC_LOSS_NONE, NULL, pr_size, pr_update, recall_result},
    [KC_METRIC_F1_SCORE] = {"f1_score", "F1Score", NULL, KC_MOPT_THRESHOLD | KC_MOPT_AVERAGE, 1,
                            M_D, KC_LOSS_NONE, NULL, f_size, f_update, f_result},
    [KC_METRIC_FBETA_SCORE] = {"fbeta_score", "FBetaScore", "f_beta_score",
                               KC_MOPT_THRESHOLD | KC_MOPT_AVERAGE | KC_MOPT_BETA, 1, M_D,
                               KC_LOSS_NONE, NULL, f_size, f_update, f_result},
};
_Static_assert(sizeof metric_table / sizeof *metric_table == KC_METRIC_COUNT,
               "metric_table needs one row per kc_metric (kerac.h)");

/* names Keras 3's compile also reads (metrics.ALL_OBJECTS_DICT's aliases, any case of
 * "accuracy" and "acc") and tf.keras 2's function names */
static const struct {
    const char *alias;
    kc_metric kind;
    int keras3;
} metric_aliases[] = {
    {"acc", KC_METRIC_ACCURACY, 1},
    {"mse", KC_METRIC_MEAN_SQUARED_ERROR, 1}, {"MSE", KC_METRIC_MEAN_SQUARED_ERROR, 1},
    {"mae", KC_METRIC_MEAN_ABSOLUTE_ERROR, 1}, {"MAE", KC_METRIC_MEAN_ABSOLUTE_ERROR, 1},
    {"mape", KC_METRIC_MEAN_ABSOLUTE_PERCENTAGE_ERROR, 1},
    {"MAPE", KC_METRIC_MEAN_ABSOLUTE_PERCENTAGE_ERROR, 1},
    {"msle", KC_METRIC_MEAN_SQUARED_LOGARITHMIC_ERROR, 1},
    {"MSLE", KC_METRIC_MEAN_SQUARED_LOGARITHMIC_ERROR, 1},
    {"bce", KC_METRIC_BINARY_CROSSENTROPY, 1}, {"BCE", KC_METRIC_BINARY_CROSSENTROPY, 1},
    /* tf.keras 2 */
    {"log_cosh", KC_METRIC_LOG_COSH_ERROR, 0}, {"kld", KC_METRIC_KL_DIVERGENCE, 0},
    {"KLD", KC_METRIC_KL_DIVERGENCE, 0},
    {"kullback_leibler_divergence", KC_METRIC_KL_DIVERGENCE, 0},
    {"cosine_proximity", KC_METRIC_COSINE_SIMILARITY, 0},
    {"huber_loss", KC_METRIC_HUBER, 0},
};

const char *kc_metric_name(kc_metric metric) {
    return (unsigned)metric < KC_METRIC_COUNT ? metric_table[metric].name : "unknown";
}

const kc_metric_info *kc_metric_info_of(kc_metric kind) {
    return (unsigned)kind < KC_METRIC_COUNT && kind != KC_METRIC_NONE ? &metric_table[kind] : NULL;
}

static int is_accuracy_string(const char *name) {
    return !strcasecmp(name, "accuracy") || !strcasecmp(name, "acc");
}

kc_metric kc_metric_find(const char *name, const char **canonical) {
    if (canonical) *canonical = NULL;
    if (!name || !*name) return KC_METRIC_NONE;
    if (is_accuracy_string(name)) {
        if (canonical) *canonical = !strcmp(name, "accuracy") ? "accuracy" : !strcmp(name, "acc") ? "acc" : NULL;
        return KC_METRIC_ACCURACY;
    }
    for (int k = 2; k < KC_METRIC_COUNT; k++) {
        const kc_metric_info *i = &metric_table[k];
        const char *hit = !strcmp(name, i->name)                        ? i->name
                          : i->class_name && !strcmp(name, i->class_name) ? i->class_name
                          : i->snake && !strcmp(name, i->snake)           ? i->snake
                                                                          : NULL;
        if (hit) {
            if (canonical) *canonical = hit;
            return (kc_metric)k;
        }
    }
    for (size_t a = 0; a < sizeof metric_aliases / sizeof *metric_aliases; a++)
        if (!strcmp(name, metric_aliases[a].alias)) {
            if (canonical) *canonical = metric_aliases[a].alias;
            return metric_aliases[a].kind;
        }
    return KC_METRIC_NONE;
}

int kc_metric_keras3_string(kc_metric kind, const char *name) {
    const kc_metric_info *i = kc_metric_info_of(kind);
    if (!i || !name) return 0;
    if (kind == KC_METRIC_ACCURACY) return is_accuracy_string(name);
    if (!i->class_name) return 0; /* a loss function: Keras 3's metrics.get does not know it */
    if (!strcmp(name, i->class_name) || !strcmp(name, i->snake ? i->snake : i->name)) return 1;
    for (size_t a = 0; a < sizeof metric_aliases / sizeof *metric_aliases; a++)
        if (metric_aliases[a].keras3 && metric_aliases[a].kind == kind &&
            !strcmp(name, metric_aliases[a].alias))
            return 1;
    return 0;
}

kc_status kc_metric_from_name(const char *name, kc_metric_spec *out) {
    if (!out) return kc_err(KC_EINVAL, "kc_metric_from_name: out is NULL");
    const char *canonical = NULL;
    kc_metric k = kc_metric_find(name, &canonical);
    if (!k)
        return kc_err(KC_EINVAL, "kc_metric_from_name: unknown metric '%s'", name ? name : "(null)");
    *out = (kc_metric_spec){.kind = k, .name = canonical};
    if (!canonical) out->name = NULL; /* "ACC" and the like: the key is Keras's default */
    return KC_OK;
}

int kc_metric_spec_default(const kc_metric_spec *s) {
    switch (s->kind) {
    case KC_METRIC_BINARY_ACCURACY: return s->threshold == 0.5f;
    case KC_METRIC_TOP_K_CATEGORICAL_ACCURACY:
    case KC_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY: return s->k == 5;
    case KC_METRIC_AUC:
        return s->num_thresholds == 200 && s->curve == KC_CURVE_ROC &&
               s->summation_method == KC_SUMMATION_INTERPOLATION && !s->from_logits;
    case KC_METRIC_PRECISION:
    case KC_METRIC_RECALL: return !s->has_threshold && !s->top_k && !s->has_class_id;
    case KC_METRIC_F1_SCORE:
    case KC_METRIC_FBETA_SCORE: return 0; /* average=None is the default, which kerac refuses */
    default: return !s->from_logits && s->label_smoothing == 0.0f;
    }
}

/* ---- state -------------------------------------------------------------------------------- */

void kc_metric_free(kc_metric_state *st) {
    if (!st) return;
    free(st->acc);
    free(st->work);
    free(st->scratch);
    free(st->vals);
    st->acc = NULL;
    st->work = NULL;
    st->scratch = NULL;
    st->vals = NULL;
    st->cap_vals = 0;
}

void kc_metric_reset(kc_metric_state *st) {
    st->total = st->count = 0.0;
    if (st->acc) memset(st->acc, 0, sizeof(double) * (size_t)st->n_acc);
}

kc_metric kc_metric_accuracy_kind(kc_loss loss, int cols, int keras3) {
    int binary_loss = loss == KC_BINARY_CROSSENTROPY || loss == KC_BINARY_FOCAL_CROSSENTROPY;
    return cols == 1 || (binary_loss && !keras3)       ? KC_METRIC_BINARY_ACCURACY
           : loss == KC_SPARSE_CATEGORICAL_CROSSENTROPY ? KC_METRIC_SPARSE_CATEGORICAL_ACCURACY
                                                        : KC_METRIC_CATEGORICAL_ACCURACY;
}

kc_status kc_metric_init(kc_metric_state *st, const kc_metric_spec *spec, const kc_loss_spec *loss,
                         kc_shape out, int output, int weighted, const char *where) {
    memset(st, 0, sizeof *st);
    const kc_metric_info *info = kc_metric_info_of(spec->kind);
    if (!info) return kc_err(KC_EINVAL, "%s: unknown metric %d", where, (int)spec->kind);
    const char *name = info->name;
    unsigned o = info->opts;
    kc_metric_spec s = *spec;
    int cols = out.rank ? out.dims[out.rank - 1] : 1;
    int64_t size = kc_shape_size(out);
    const char *bad = NULL;
    if (s.has_threshold && !(o & KC_MOPT_THRESHOLD)) bad = "threshold";
    else if (s.k && !(o & KC_MOPT_K)) bad = "k";
    else if (s.top_k && !(o & KC_MOPT_TOP_K)) bad = "top_k";
    else if (s.has_class_id && !(o & KC_MOPT_CLASS_ID)) bad = "class_id";
    else if ((s.num_thresholds || s.curve || s.summation_method) && !(o & KC_MOPT_AUC))
        bad = "num_thresholds, curve or summation_method";
    else if (s.from_logits && !(o & KC_MOPT_LOGITS)) bad = "from_logits";
    else if (s.label_smoothing != 0.0f && !(o & KC_MOPT_SMOOTHING)) bad = "label_smoothing";
    else if (s.beta != 0.0f && !(o & KC_MOPT_BETA)) bad = "beta";
    else if (s.average && !(o & KC_MOPT_AVERAGE)) bad = "average";
    if (bad) return kc_err(KC_EINVAL, "%s: metric %s has no option %s", where, name, bad);
    s.from_logits = s.from_logits != 0;
    if (s.kind == KC_METRIC_BINARY_ACCURACY && !s.has_threshold) s.has_threshold = 1, s.threshold = 0.5f;
    if ((o & KC_MOPT_K) && s.k == 0) s.k = 5;
    if ((o & KC_MOPT_AUC) && s.num_thresholds == 0) s.num_thresholds = 200;
    if ((o & KC_MOPT_BETA) && s.beta == 0.0f) s.beta = 1.0f;
    if (s.kind == KC_METRIC_F1_SCORE) s.beta = 1.0f;
    /* "accuracy" runs as binary, sparse or categorical accuracy, as kerac always chose it */
    const kc_metric_info *run = info;
    int sparse = loss->kind == KC_SPARSE_CATEGORICAL_CROSSENTROPY;
    if (s.kind == KC_METRIC_ACCURACY) {
        run = &metric_table[kc_metric_accuracy_kind(loss->kind, cols, 0)];
        s.threshold = 0.5f;
    }
    if (!sparse && !(run->targets & KC_MT_DENSE))
        return kc_err(KC_EINVAL, "%s: metric %s reads class indices (the labels of "
                      "sparse_categorical_crossentropy), but the loss %s takes targets of the "
                      "output's shape", where, name, kc_loss_name(loss->kind));
    if (sparse && !(run->targets & KC_MT_SPARSE))
        return kc_err(KC_EINVAL, "%s: metric %s reads targets of the output's shape, but the loss "
                      "sparse_categorical_crossentropy takes class indices (use a sparse metric: "
                      "sparse_categorical_accuracy, sparse_top_k_categorical_accuracy)", where, name);
    char shp[64];
    if ((s.kind == KC_METRIC_TOP_K_CATEGORICAL_ACCURACY ||
         s.kind == KC_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY ||
         s.kind == KC_METRIC_SPARSE_CATEGORICAL_ACCURACY || s.kind == KC_METRIC_CATEGORICAL_ACCURACY) &&
        cols < 2)
        return kc_err(KC_EINVAL, "%s: metric %s needs an output of 2 classes or more, the output "
                      "is %s", where, name, kc_shape_str(out, shp, sizeof shp));
    if ((o & KC_MOPT_K) && s.k < 1)
        return kc_err(KC_EINVAL, "%s: k %d of %s must be >= 1", where, s.k, name);
    if ((o & KC_MOPT_AUC) &&
        (s.num_thresholds < 2 || s.num_thresholds > 100000 || (unsigned)s.curve > KC_CURVE_PRGAIN ||
         (unsigned)s.summation_method > KC_SUMMATION_MINORING))
        return kc_err(KC_EINVAL, "%s: AUC's num_thresholds %d must be in [2, 100000], curve and "
                      "summation_method kc_auc_curve and kc_auc_summation values", where,
                      s.num_thresholds);
    if (s.top_k && (s.top_k < 1 || s.top_k > cols))
        return kc_err(KC_EINVAL, "%s: top_k %d of %s must be in [1, %d] (the output's classes)",
                      where, s.top_k, name, cols);
    if (s.has_class_id && (s.class_id < 0 || s.class_id >= cols))
        return kc_err(KC_EINVAL, "%s: class_id %d of %s is out of range: the output %s has "
                      "classes 0 to %d", where, s.class_id, name, kc_shape_str(out, shp, sizeof shp),
                      cols - 1);
    if (s.has_threshold && !isfinite(s.threshold))
        return kc_err(KC_EINVAL, "%s: the threshold of %s is not finite", where, name);
    if ((s.kind == KC_METRIC_PRECISION || s.kind == KC_METRIC_RECALL) && s.has_threshold &&
        !(s.threshold >= 0.0f && s.threshold <= 1.0f))
        return kc_err(KC_EINVAL, "%s: threshold %g of %s must be in [0, 1]", where,
                      (double)s.threshold, name);
    if (o & KC_MOPT_AVERAGE) {
        if (s.average == KC_AVERAGE_NONE)
            return kc_err(KC_EINVAL, "%s: %s with average=None gives one value per class; kerac "
                          "logs one number per metric: set average to KC_AVERAGE_MICRO, "
                          "KC_AVERAGE_MACRO or KC_AVERAGE_WEIGHTED", where, name);
        if ((unsigned)s.average > KC_AVERAGE_WEIGHTED)
            return kc_err(KC_EINVAL, "%s: unknown average %d of %s", where, (int)s.average, name);
        if (s.has_threshold && !(s.threshold > 0.0f && s.threshold <= 1.0f))
            return kc_err(KC_EINVAL, "%s: threshold %g of %s must be in (0, 1]", where,
                          (double)s.threshold, name);
        if (!(s.beta > 0.0f) || !isfinite(s.beta))
            return kc_err(KC_EINVAL, "%s: beta %g of %s must be > 0", where, (double)s.beta, name);
        if (size != cols)
            return kc_err(KC_EINVAL, "%s: %s needs an output of shape (classes), the output is %s",
                          where, name, kc_shape_str(out, shp, sizeof shp));
    }
    if (!(s.label_smoothing >= 0.0f && s.label_smoothing <= 1.0f))
        return kc_err(KC_EINVAL, "%s: label_smoothing %g of %s is not in [0, 1]", where,
                      (double)s.label_smoothing, name);
    const char *given = s.name ? s.name : (s.kind == KC_METRIC_ACCURACY ? "accuracy" : name);
    if (!*given || strlen(given) >= 64)
        return kc_err(KC_EINVAL, "%s: metric name '%s' must have 1 to 63 characters", where, given);
    st->info = run;
    if (run->loss) {
        kc_loss_spec ls = {.kind = run->loss, .from_logits = s.from_logits,
                           .label_smoothing = s.label_smoothing};
        kc_status e = kc_loss_spec_resolve(&ls, &st->loss, where);
        if (e) return e;
    }
    snprintf(st->name, sizeof st->name, "%s", given);
    s.name = st->name;
    st->spec = s;
    st->output = output;
    st->weighted = weighted != 0;
    st->loss_kind = loss->kind;
    st->cols = cols;
    st->rows_per_sample = (int)(size / cols);
    st->sparse = sparse;
    st->n_acc = run->state_size ? run->state_size(st) : 0;
    st->scratch = malloc(sizeof(float) * 2 * (size_t)cols);
    st->acc = st->n_acc ? calloc((size_t)st->n_acc, sizeof(double)) : NULL;
    int auc = run == &metric_table[KC_METRIC_AUC];
    st->work = auc ? malloc(sizeof(double) * 4 * (size_t)s.num_thresholds) : NULL;
    if (!st->scratch || (st->n_acc && !st->acc) || (auc && !st->work)) {
        kc_metric_free(st);
        return kc_err(KC_ENOMEM, "%s: out of memory for metric %s", where, name);
    }
    return KC_OK;
}

kc_status kc_metric_reserve(kc_metric_state *st, int64_t rows) {
    if (!st->info->values || rows <= st->cap_vals) return KC_OK;
    double *v = realloc(st->vals, sizeof(double) * (size_t)rows);
    if (!v) return kc_err(KC_ENOMEM, "out of memory for a metric's %lld row values", (long long)rows);
    st->vals = v;
    st->cap_vals = rows;
    return KC_OK;
}

void kc_metric_update(kc_metric_state *st, const float *pred, const float *y, int batch,
                      const float *sample_weight, const uint8_t *mask) {
    const kc_metric_info *info = st->info;
    int rps = st->rows_per_sample;
    int64_t rows = (int64_t)batch * rps;
    if (info->loss == KC_HINGE || info->loss == KC_SQUARED_HINGE)
        st->hinge_binary = kc_loss_hinge_binary(y, rows * st->cols);
    if (!info->values) {
        info->update(st, pred, y, (int)rows, sample_weight);
        return;
    }
    if (rows > st->cap_vals) { /* reserved by kc_model_ensure_workspace: not on the way of fit */
        double *v = realloc(st->vals, sizeof(double) * (size_t)rows);
        if (!v) {
            st->total = NAN;
            return;
        }
        st->vals = v;
        st->cap_vals = rows;
    }
    info->values(st, pred, y, (int)rows, st->vals);
    for (int i = 0; i < batch; i++) {
        double v = 0.0, w = sample_weight ? sample_weight[i] : 1.0;
        if (mask) { /* Keras's apply_mask: each row weighs w times its mask byte */
            double kept = 0.0;
            for (int r = 0; r < rps; r++)
                if (mask[(int64_t)i * rps + r]) {
                    v += st->vals[(int64_t)i * rps + r];
                    kept += 1.0;
                }
            st->total += w * (v / rps);
            st->count += w * (kept / rps);
            continue;
        }
        for (int r = 0; r < rps; r++) v += st->vals[(int64_t)i * rps + r];
        st->total += w * (v / rps);
        st->count += w;
    }
}

double kc_metric_result(const kc_metric_state *st) {
    if (st->info->result) return st->info->result(st);
    return st->count != 0.0 ? st->total / st->count : 0.0;
}
