/* batchnorm.c: BatchNormalization(axis=-1, momentum=0.99, epsilon=1e-3), as Keras 3:
 * weights gamma, beta (trained), moving_mean, moving_variance (not trained, in that order in
 * the flat buffer). Training: normalise with the batch's mean and biased variance over every
 * axis but the last, and move the averages: moving = moving * momentum + batch * (1 -
 * momentum). Inference: normalise with the moving averages. */
#include "layer.h"
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
static int64_t bn_scratch(const kc_layer *l, int batch, int parts) { return 6 * (int64_t)l->units; }

static void bn_forward(kc_layer *l, const float *in, float *out, int batch,
                       const kc_forward_ctx *ctx) {
    int c = l->units;
    int64_t rows = (int64_t)batch * (l->out_size / c);
    float *mean = l->scratch, *inv = mean + c;
    double *sum = (double *)(inv + c), *sq = sum + c;
    float *moving_mean = l->kernel + 2 * c, *moving_var = l->kernel + 3 * c;
    if (ctx->training) {
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
            if (ctx->update_stats) {
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
    /* dx = gamma * inv / N * (N dy - sum(dy) - xhat * sum(dy xhat)) */
    float n = (float)rows;
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int i = 0; i < c; i++) {
            float xhat = (in[r * c + i] - mean[i]) * inv[i];
            din[r * c + i] = gamma[i] * inv[i] / n *
                             (n * dout[r * c + i] - (float)dbeta[i] - xhat * (float)dgamma[i]);
        }
}

static const kc_layer_ops bn_ops = {
    .type_name = "BatchNormalization",
    .base_name = "batch_normalization",
    .build = bn_build,
    .init = bn_init,
    .forward = bn_forward,
    .backward = bn_backward,
    .scratch_size = bn_scratch};

kc_layer *kc_batch_normalization(const kc_batchnorm_opts *opts) {
    kc_batchnorm_opts o = opts ? *opts : (kc_batchnorm_opts){0};
    kc_layer *l = kc_layer_new(&bn_ops);
    if (!l) return NULL;
    l->momentum = o.momentum != 0.0f ? o.momentum : 0.99f;
    l->epsilon = o.epsilon != 0.0f ? o.epsilon : 1e-3f;
    return l;
}
