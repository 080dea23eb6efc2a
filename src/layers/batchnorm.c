/* batchnorm.c: BatchNormalization(axis=-1, momentum=0.99, epsilon=1e-3), as Keras 3:
 * weights gamma, beta (trained), moving_mean, moving_variance (not trained, in that order in
 * the flat buffer). Training: normalise with the batch's mean and biased variance over every
 * axis but the last, and move the averages: moving = moving * momentum + batch * (1 -
 * momentum). Inference: normalise with the moving averages. In kc_fit's row groups
 * (ctx->grouped) each group normalises with its own rows' statistics, as a replica of Keras's
 * MirroredStrategy does, and hands its mean and variance to the fold through the moving
 * statistics' gradient slots; kc_fit moves the averages by their mean over the step's groups
 * (train.c, grouped_move_stats). synchronized=True in the row groups: the whole batch's
 * statistics and backward sums, which kc_fit gathers before the step (sync_state). */
#include "layer.h"
#include "../io/config_fields.h"
#include <math.h>
#include <string.h>

static kc_status bn_build(kc_layer *l) {
    char buf[64];
    if (l->in_shape.rank < 1)
        return kc_err(KC_EINVAL, "layer %s (BatchNormalization) needs an input with an axis, got %s",
                      l->name, kc_shape_str(l->in_shape, buf, sizeof buf));
    if (!(l->momentum >= 0.0f && l->momentum <= 1.0f) || !(l->epsilon > 0.0f) ||
        !isfinite(l->epsilon))
        return kc_err(KC_EINVAL,
                      "layer %s (BatchNormalization): momentum must be in [0, 1] and epsilon > 0, "
                      "got %g and %g",
                      l->name, (double)l->momentum, (double)l->epsilon);
    l->out_shape = l->in_shape;
    l->units = l->in_shape.dims[l->in_shape.rank - 1];
    l->kernel_size = l->units; /* "kernel" is gamma, "bias" beta */
    l->param_count = 4 * (int64_t)l->units;
    l->trainable_count = 2 * (int64_t)l->units;
    return KC_OK;
}

static void bn_init(kc_layer *l, kc_rng *rng) {
    int c = l->units;
    for (int i = 0; i < c; i++) {
        l->kernel[i] = 1.0f;            /* gamma */
        l->bias[i] = 0.0f;              /* beta */
        l->kernel[2 * c + i] = 0.0f;    /* moving_mean */
        l->kernel[3 * c + i] = 1.0f;    /* moving_variance */
    }
}

/* scratch: the mean and 1/sqrt(var + eps) used by the last forward pass, then 2c doubles */
static int64_t bn_scratch(const kc_layer *l, int batch, int parts) {
    /* synchronized: then the global sums of backward (2c doubles), mean and variance (2c) */
    return (l->synchronized ? 12 : 6) * (int64_t)l->units;
}

/* a synchronized layer in kc_fit's row groups, once the step's global statistics are set */
static int bn_synced(const kc_layer *l, const kc_forward_ctx *ctx, int state) {
    return l->synchronized && ctx->grouped && ctx->training && l->sync_state >= state;
}

static void bn_forward(kc_layer *l, const float *in, float *out, int batch,
                       const kc_forward_ctx *ctx) {
    int c = l->units;
    int64_t rows = (int64_t)batch * (l->out_size / c);
    float *mean = l->scratch, *inv = mean + c;
    double *sum = (double *)(inv + c), *sq = sum + c;
    float *moving_mean = l->kernel + 2 * c, *moving_var = l->kernel + 3 * c;
    if (bn_synced(l, ctx, 1)) { /* the whole batch's statistics (train.c, grouped_sync_*) */
        const float *gmean = l->scratch + 10 * c, *gvar = gmean + c;
        for (int i = 0; i < c; i++) {
            mean[i] = gmean[i];
            inv[i] = 1.0f / sqrtf(gvar[i] + l->epsilon);
            if (ctx->update_stats) { /* deterministic slots; kc_fit moves the averages */
                l->dkernel[2 * c + i] = gmean[i];
                l->dkernel[3 * c + i] = gvar[i];
            }
        }
    } else if (ctx->training) {
        memset(sum, 0, sizeof(double) * (size_t)c);
        memset(sq, 0, sizeof(double) * (size_t)c);
        for (int64_t r = 0; r < rows; r++)
            for (int i = 0; i < c; i++) sum[i] += in[r * c + i];
        for (int i = 0; i < c; i++) mean[i] = (float)(sum[i] / (double)rows);
        for (int64_t r = 0; r < rows; r++)
            for (int i = 0; i < c; i++) {
                double d = (double)in[r * c + i] - mean[i];
                sq[i] += d * d;
            }
        for (int i = 0; i < c; i++) {
            float var = (float)(sq[i] / (double)rows);
            inv[i] = 1.0f / sqrtf(var + l->epsilon);
            if (ctx->update_stats && ctx->grouped) { /* kc_fit moves them after the fold */
                l->dkernel[2 * c + i] = mean[i];
                l->dkernel[3 * c + i] = var;
            } else if (ctx->update_stats) {
                moving_mean[i] = moving_mean[i] * l->momentum + mean[i] * (1.0f - l->momentum);
                moving_var[i] = moving_var[i] * l->momentum + var * (1.0f - l->momentum);
            }
        }
    } else {
        for (int i = 0; i < c; i++) {
            mean[i] = moving_mean[i];
            inv[i] = 1.0f / sqrtf(moving_var[i] + l->epsilon);
        }
    }
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int i = 0; i < c; i++)
            out[r * c + i] = (in[r * c + i] - mean[i]) * inv[i] * l->kernel[i] + l->bias[i];
}

static void bn_backward(kc_layer *l, const float *in, const float *out, float *dout,
                        float *din, int batch, int dout_is_preactivation,
                        const kc_forward_ctx *ctx) {
    int c = l->units;
    int64_t rows = (int64_t)batch * (l->out_size / c);
    const float *mean = l->scratch, *inv = mean + c, *gamma = l->kernel;
    double *dbeta = (double *)(l->scratch + 2 * c), *dgamma = dbeta + c;
    memset(dbeta, 0, sizeof(double) * (size_t)c);
    memset(dgamma, 0, sizeof(double) * (size_t)c);
    for (int64_t r = 0; r < rows; r++)
        for (int i = 0; i < c; i++) {
            double dy = dout[r * c + i];
            dbeta[i] += dy;
            dgamma[i] += dy * (double)((in[r * c + i] - mean[i]) * inv[i]);
        }
    for (int i = 0; i < c; i++) {
        l->dkernel[i] = (float)dgamma[i];
        l->dbias[i] = (float)dbeta[i];
    }
    if (!din) return;
    if (!ctx->training) { /* the moving statistics are constants */
        for (int64_t r = 0; r < rows; r++)
            for (int i = 0; i < c; i++) din[r * c + i] = dout[r * c + i] * gamma[i] * inv[i];
        return;
    }
    /* dx = gamma * inv / N * (N dy - sum(dy) - xhat * sum(dy xhat)); synchronized in the row
     * groups: the sums and N over the whole batch (the weight gradients stay the group's) */
    float n = (float)rows;
    if (bn_synced(l, ctx, 2)) {
        dbeta = (double *)(l->scratch + 6 * c);
        dgamma = dbeta + c;
        n = (float)l->sync_rows;
    }
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int i = 0; i < c; i++) {
            float xhat = (in[r * c + i] - mean[i]) * inv[i];
            din[r * c + i] = gamma[i] * inv[i] / n *
                             (n * dout[r * c + i] - (float)dbeta[i] - xhat * (float)dgamma[i]);
        }
}

/* ---- Keras's config and variables ---- */

static kc_status bn_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_batchnorm_opts o = {0.99f, 1e-3f};
    double d;
    int r = kc_cfg_num(cfg, "momentum", &d);
    if (r < 0) return kc_err(KC_EFORMAT, "%s: momentum is not a number", where);
    if (r > 0) {
        if (!(d >= 0 && d <= 1))
            return kc_err(KC_EFORMAT, "%s: momentum %g is not in [0, 1]", where, d);
        o.momentum = (float)d;
        if (o.momentum == 0.0f) o.momentum = 1e-45f; /* kerac's 0 means the default */
    }
    r = kc_cfg_num(cfg, "epsilon", &d);
    if (r < 0 || (r > 0 && !(d > 0 && d < 1e30)))
        return kc_err(KC_EFORMAT, "%s: epsilon is not a number > 0", where);
    if (r > 0) o.epsilon = (float)d;
    const char *flags[] = {"center", "scale"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = kc_cfg_field(cfg, flags[i]);
        if (v && !cJSON_IsTrue(v))
            return kc_err(KC_EFORMAT, "%s: %s=False is not supported by kerac", where, flags[i]);
    }
    /* Keras 3's synchronized: the statistics over the global batch across replicas; no effect
     * in the plain fit; the row groups' fit gathers them (train.c, grouped_sync_*) */
    const cJSON *sync = kc_cfg_field(cfg, "synchronized");
    if (sync && !cJSON_IsBool(sync) && !cJSON_IsNull(sync))
        return kc_err(KC_EFORMAT, "%s: synchronized is not true or false", where);
    o.synchronized = cJSON_IsTrue(sync);
    if (cJSON_IsTrue(kc_cfg_field(cfg, "renorm")))
        return kc_err(KC_EFORMAT, "%s: renorm=True is not supported by kerac", where);
    static const char *const nulls[] = {"beta_regularizer", "gamma_regularizer",
                                        "beta_constraint", "gamma_constraint",
                                        "virtual_batch_size", "adjustment"};
    kc_status st = kc_cfg_must_be_null(cfg, where, nulls, 6);
    if (st) return st;
    /* axis is checked once the input shape is known (bn_check) */
    const cJSON *axis = kc_cfg_field(cfg, "axis");
    if (cJSON_IsArray(axis) && cJSON_GetArraySize(axis) != 1)
        return kc_err(KC_EFORMAT, "%s: axis over %d axes is not supported (the last axis only)",
                      where, cJSON_GetArraySize(axis));
    if (cJSON_IsArray(axis)) axis = cJSON_GetArrayItem(axis, 0);
    if (axis && !cJSON_IsNull(axis) && !cJSON_IsNumber(axis))
        return kc_err(KC_EFORMAT, "%s: axis is not a number", where);
    return kc_cfg_made(kc_batch_normalization(&o), where, out);
}

static kc_status bn_check(const cJSON *cfg, const kc_layer *l, const char *where) {
    const cJSON *axis = kc_cfg_field(cfg, "axis");
    if (cJSON_IsArray(axis)) axis = cJSON_GetArrayItem(axis, 0);
    if (!cJSON_IsNumber(axis)) return KC_OK; /* absent: -1 */
    int a = (int)axis->valuedouble, rank = l->in_shape.rank; /* Keras counts the batch axis */
    if (a == -1 || a == rank) return KC_OK;
    return kc_err(KC_EFORMAT,
                  "%s: axis %d is not supported: kerac normalises over the last axis only (-1 or "
                  "%d for this input)",
                  where, a, rank);
}

static kc_status bn_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "axis", -1);
    cJSON_AddNumberToObject(cfg, "momentum", kc_json_float(l->momentum));
    cJSON_AddNumberToObject(cfg, "epsilon", kc_json_float(l->epsilon));
    cJSON_AddTrueToObject(cfg, "center");
    cJSON_AddTrueToObject(cfg, "scale");
    cJSON_AddItemToObject(cfg, "beta_initializer", kc_initializer_to_json(NULL, KC_INIT_ZEROS));
    cJSON_AddItemToObject(cfg, "gamma_initializer", kc_initializer_to_json(NULL, KC_INIT_ONES));
    cJSON_AddItemToObject(cfg, "moving_mean_initializer", kc_initializer_to_json(NULL, KC_INIT_ZEROS));
    cJSON_AddItemToObject(cfg, "moving_variance_initializer", kc_initializer_to_json(NULL, KC_INIT_ONES));
    const char *nulls[] = {"beta_regularizer", "gamma_regularizer", "beta_constraint",
                           "gamma_constraint"};
    for (int i = 0; i < 4; i++) cJSON_AddNullToObject(cfg, nulls[i]);
    cJSON_AddBoolToObject(cfg, "synchronized", l->synchronized);
    cJSON_AddFalseToObject(cfg, "renorm");
    cJSON_AddNullToObject(cfg, "renorm_clipping");
    cJSON_AddNumberToObject(cfg, "renorm_momentum", 0.99);
    return KC_OK;
}

static int bn_weights(const kc_layer *l, kc_weight_desc *w) {
    int64_t c = l->units;
    w[0] = (kc_weight_desc){"gamma", 1, {c}, 0, c, 1};
    w[1] = (kc_weight_desc){"beta", 1, {c}, c, c, 1};
    w[2] = (kc_weight_desc){"moving_mean", 1, {c}, 2 * c, c, 0};
    w[3] = (kc_weight_desc){"moving_variance", 1, {c}, 3 * c, c, 0};
    return 4;
}

const kc_layer_ops kc_batch_normalization_ops = {
    .type_name = "BatchNormalization",
    .base_name = "batch_normalization",
    .build = bn_build,
    .init = bn_init,
    .forward = bn_forward,
    .backward = bn_backward,
    .scratch_size = bn_scratch,
    .supports_masking = 1,
    .mask_refusal = "Keras's BatchNormalization takes its batch moments over the unmasked "
                    "timesteps only, which kerac does not reproduce yet",
    .allows_none = 1,
    .io = {bn_from, bn_to, bn_weights, bn_check}};

kc_layer *kc_batch_normalization(const kc_batchnorm_opts *opts) {
    kc_batchnorm_opts o = opts ? *opts : (kc_batchnorm_opts){0};
    kc_layer *l = kc_layer_new(&kc_batch_normalization_ops);
    if (!l) return NULL;
    l->momentum = o.momentum != 0.0f ? o.momentum : 0.99f;
    l->epsilon = o.epsilon != 0.0f ? o.epsilon : 1e-3f;
    l->synchronized = o.synchronized != 0;
    return l;
}
