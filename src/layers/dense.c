/* dense.c: Dense(units, activation): out = act(in @ kernel + bias), kernel (in, units). */
#include "layer.h"
#include "../ops/ops.h"
#include <math.h>

static kc_status dense_build(kc_layer *l) {
    if (l->units <= 0)
        return kc_err(KC_EINVAL, "layer %s (Dense): units must be positive, got %d", l->name,
                      l->units);
    if ((unsigned)l->act > KC_TANH)
        return kc_err(KC_EINVAL, "layer %s (Dense): unknown activation %d", l->name, (int)l->act);
    if (l->in_shape.rank != 1) {
        char buf[64];
        return kc_err(KC_EINVAL,
                      "layer %s (Dense) needs a flat input of shape (features), got %s: add "
                      "kc_flatten() before it",
                      l->name, kc_shape_str(l->in_shape, buf, sizeof buf));
    }
    l->out_shape = kc_shape1(l->units);
    l->kernel_size = l->in_size * l->units;
    l->param_count = l->kernel_size + l->units;
    return KC_OK;
}

static void dense_init(kc_layer *l, kc_rng *rng) {
    /* glorot_uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)); zero bias */
    float limit = sqrtf(6.0f / (float)(l->in_size + l->units));
    int64_t n = l->in_size * l->units;
    for (int64_t i = 0; i < n; i++) l->kernel[i] = (2.0f * kc_rng_uniform(rng) - 1.0f) * limit;
    for (int i = 0; i < l->units; i++) l->bias[i] = 0.0f;
}

static void dense_forward(kc_layer *l, const float *in, float *out, int batch,
                          const kc_forward_ctx *ctx) {
    /* bias and relu (or linear) are fused into the product's last store */
    kc_gemm_ex(&(kc_gemm_args){.m = batch, .n = l->units, .k = (int)l->in_size, .a = in,
                               .a_rs = l->in_size, .a_cs = 1, .b = l->kernel, .b_rs = l->units,
                               .b_cs = 1, .c = out, .ldc = l->units, .bias = l->bias,
                               .relu = l->act == KC_RELU, .a_sparse = l->input_is_data});
    if (l->act != KC_RELU && l->act != KC_LINEAR) kc_act_forward(out, batch, l->units, l->act);
}

static void dense_backward(kc_layer *l, const float *in, const float *out, float *dout,
                           float *din, int batch, int dout_is_preactivation,
                           const kc_forward_ctx *ctx) {
    if (!dout_is_preactivation) kc_act_backward(out, dout, batch, l->units, l->act);
    /* dout is now dz (batch, units): dkernel = in^T @ dz, dbias = sum_rows dz, din = dz @ K^T */
    kc_gemm_ex(&(kc_gemm_args){.m = (int)l->in_size, .n = l->units, .k = batch, .a = in,
                               .a_rs = 1, .a_cs = l->in_size, .b = dout, .b_rs = l->units,
                               .b_cs = 1, .c = l->dkernel, .ldc = l->units,
                               .a_sparse = l->input_is_data});
    kc_colsum(dout, batch, l->units, l->dbias);
    if (din) kc_gemm(0, 1, batch, (int)l->in_size, l->units, dout, l->kernel, din);
}

static const kc_layer_ops dense_ops = {"Dense", "dense", dense_build, dense_init, dense_forward,
                                       dense_backward, NULL};

kc_layer *kc_dense(int units, kc_act activation) {
    kc_layer *l = kc_layer_new(&dense_ops);
    if (!l) return NULL;
    l->units = units;
    l->act = activation;
    return l;
}
