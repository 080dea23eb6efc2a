/* losses.c: Keras's losses (value and gradient) and the accuracy metric, on a batch of model
 * outputs pred (batch, cols). Loss values are means over the batch ("sum_over_batch_size"). */
#include "losses.h"
#include <math.h>

#define KC_EPSILON 1e-7f /* keras.backend.epsilon() */

/* Keras's names, a row per kc_loss (the names compile_config writes) */
static const char *const loss_names[] = {
    [KC_LOSS_NONE] = "none",
    [KC_CATEGORICAL_CROSSENTROPY] = "categorical_crossentropy",
    [KC_SPARSE_CATEGORICAL_CROSSENTROPY] = "sparse_categorical_crossentropy",
    [KC_BINARY_CROSSENTROPY] = "binary_crossentropy",
    [KC_MEAN_SQUARED_ERROR] = "mean_squared_error",
};
_Static_assert(sizeof loss_names / sizeof *loss_names == KC_LOSS_COUNT,
               "loss_names needs one row per kc_loss (kerac.h)");

const char *kc_loss_name(kc_loss loss) {
    return (unsigned)loss < KC_LOSS_COUNT ? loss_names[loss] : "unknown";
}

int kc_loss_fuses(kc_loss loss, kc_act last_act) {
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

double kc_loss_compute(kc_loss loss, const float *pred, const float *y, int batch, int cols,
                       float *grad, int fused) {
    double total = 0.0;
    float inv_batch = 1.0f / (float)batch;
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
        case KC_LOSS_NONE:
        case KC_LOSS_COUNT: break;
        }
    }
    return total / batch;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int j = 1; j < n; j++)
        if (x[j] > x[best]) best = j;
    return best;
}

double kc_accuracy_sum(kc_loss loss, const float *pred, const float *y, int batch, int cols) {
    double correct = 0.0;
    for (int i = 0; i < batch; i++) {
        const float *p = pred + (int64_t)i * cols;
        if (cols == 1 || loss == KC_BINARY_CROSSENTROPY) {
            /* binary_accuracy: (p > 0.5) == t, averaged over the row */
            const float *t = y + (int64_t)i * cols;
            int hits = 0;
            for (int j = 0; j < cols; j++) hits += (p[j] > 0.5f) == (t[j] > 0.5f);
            correct += (double)hits / cols;
        } else if (loss == KC_SPARSE_CATEGORICAL_CROSSENTROPY) {
            correct += argmax(p, cols) == (int)y[i];
        } else {
            correct += argmax(p, cols) == argmax(y + (int64_t)i * cols, cols);
        }
    }
    return correct;
}
