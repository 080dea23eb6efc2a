/* dense.c: Dense(units, activation): out = act(in @ kernel + bias) on the last axis, kernel
 * (features, units), as Keras: an input (..., features) gives (..., units), each row (a
 * timestep of a (steps, features) input) through the same kernel; the bias left out with
 * use_bias=False. Kernel and bias initializers and regularizers as Keras's
 * (initializers.c); the regularizers' penalties and gradients are the model's (engine.c). */
#include "layer.h"
#include "../initializers.h"
#include "../io/config_fields.h"
#include "../ops/ops.h"
#include "../optimizers.h"
#include <math.h>
#include <string.h>

static kc_status dense_build(kc_layer *l) {
    if (l->units <= 0)
        return kc_err(KC_EINVAL, "layer %s (Dense): units must be positive, got %d", l->name,
                      l->units);
    if ((unsigned)l->act >= KC_ACT_COUNT)
        return kc_err(KC_EINVAL, "layer %s (Dense): unknown activation %d", l->name, (int)l->act);
    char buf[64];
    if (l->in_shape.rank < 1)
        return kc_err(KC_EINVAL, "layer %s (Dense) needs an input of shape (..., features), got %s",
                      l->name, kc_shape_str(l->in_shape, buf, sizeof buf));
    int features = l->in_shape.dims[l->in_shape.rank - 1];
    if (features == KC_NONE) /* Keras's words */
        return kc_err(KC_EINVAL,
                      "layer %s (Dense): the last dimension of the inputs to a Dense layer should "
                      "be defined; its input shape is %s (a None length: Dense applies to the "
                      "last axis only; a None dimension must not reach it, e.g. through Flatten)",
                      l->name, kc_shape_str(l->in_shape, buf, sizeof buf));
    l->out_shape = l->in_shape;
    l->out_shape.dims[l->in_shape.rank - 1] = l->units;
    l->kernel_size = (int64_t)features * l->units;
    l->param_count = l->kernel_size + (l->no_bias ? 0 : l->units);
    return kc_layer_check_init_reg(l, 2, (int64_t[]){features, l->units});
}

/* the input's features (the kernel's rows), and the rows of a batch: batch times the other
 * axes of a sample */
static int dense_features(const kc_layer *l) { return (int)(l->kernel_size / l->units); }
static int dense_rows(const kc_layer *l, int batch) {
    return (int)((int64_t)batch * (l->in_size / dense_features(l)));
}

static void dense_init(kc_layer *l, kc_rng *rng) {
    /* kernel_initializer (glorot_uniform), bias_initializer (zeros), kernel (in, units) */
    kc_layer_init_weights(l, 2, (int64_t[]){dense_features(l), l->units}, rng);
}

static void dense_forward(kc_layer *l, const float *in, float *out, int batch,
                          const kc_forward_ctx *ctx) {
    /* bias and relu (or linear), and the mask of a fused Dropout, in the product's last store */
    const kc_layer *d = l->fused_dropout;
    int drop = d && ctx->training && d->rate > 0.0f;
    int f = dense_features(l);
    batch = dense_rows(l, batch); /* from here on, rows */
    kc_gemm_ex(&(kc_gemm_args){.m = batch, .n = l->units, .k = f, .a = in,
                               .a_rs = f, .a_cs = 1, .b = l->kernel, .b_rs = l->units,
                               .b_cs = 1, .c = out, .ldc = l->units,
                               .bias = l->no_bias ? NULL : l->bias,
                               .relu = l->act == KC_RELU, .a_sparse = l->input_is_data,
                               .dropout_rate = drop ? d->rate : 0.0f,
                               .dropout_key = drop ? kc_dropout_key(d, ctx) : 0,
                               .bf16 = ctx->bf16});
    if (l->act != KC_RELU && l->act != KC_LINEAR) {
        /* an activation whose derivative needs the pre-activation keeps it in the scratch */
        if (kc_act_needs_input(l->act))
            memcpy(l->scratch, out, sizeof(float) * (size_t)batch * (size_t)l->units);
        kc_act_forward(out, batch, l->units, l->act);
    }
}

static int64_t dense_scratch(const kc_layer *l, int batch, int parts) {
    return kc_act_needs_input(l->act) ? (int64_t)batch * (l->out_size / l->units) * l->units : 0;
}

typedef struct {
    kc_layer *layer;
    kc_optimizer *opt;
} dense_step;

/* a finished block of the kernel's gradient: the optimizer step on that block of the kernel,
 * a contiguous run of weights per row (one run when the block has whole rows) */
static void dense_block_done(void *arg, int64_t row0, int64_t row1, int64_t col0, int64_t col1,
                             const float *block, int64_t ld) {
    const dense_step *st = arg;
    kc_layer *l = st->layer;
    int whole = col0 == 0 && col1 == l->units && ld == l->units;
    for (int64_t r = row0; r < row1; r += whole ? row1 - row0 : 1) {
        int64_t at = r * l->units + col0, n = whole ? (row1 - row0) * l->units : col1 - col0;
        kc_optimizer_apply(st->opt, l->kernel + at, block + (r - row0) * ld,
                           l->param_offset + at, n);
    }
}

static void dense_backward(kc_layer *l, const float *in, const float *out, float *dout,
                           float *din, int batch, int dout_is_preactivation,
                           const kc_forward_ctx *ctx) {
    int f = dense_features(l);
    batch = dense_rows(l, batch); /* rows */
    if (!dout_is_preactivation && l->fused_dropout) /* out is the Dropout's output */
        kc_relu_dropout_backward(out, dout, (int64_t)batch * l->units,
                                 kc_fused_dropout_scale(l, ctx));
    else if (!dout_is_preactivation)
        kc_act_backward(l->scratch, out, dout, batch, l->units, l->act);
    /* dout is now dz (batch, units): din = dz @ K^T (first: it needs the kernel before this
     * step changes it), dbias = sum_rows dz, dkernel = in^T @ dz. In a training step the
     * kernel's weights are stepped as soon as their gradients are summed, while those are
     * still in cache, without a round trip through the gradient buffer. After a relu Dense,
     * din leaves the product multiplied by that relu's (and its Dropout's) derivative. */
    if (din)
        kc_gemm_ex(&(kc_gemm_args){.m = batch, .n = f, .k = l->units, .a = dout,
                                   .a_rs = l->units, .a_cs = 1, .b = l->kernel, .b_rs = 1,
                                   .b_cs = l->units, .c = din, .ldc = f,
                                   .gate = l->gate_from ? in : NULL,
                                   .gate_scale = l->gate_from
                                                     ? kc_fused_dropout_scale(l->gate_from, ctx)
                                                     : 1.0f,
                                   .bf16 = ctx->bf16});
    if (!l->no_bias) kc_colsum(dout, batch, l->units, l->dbias);
    /* the model plans this step only for a Dense called once, trained, without weight
     * regularizers (their gradients join in the model, src/model/engine.c) */
    int step = ctx->opt && l->trainable_count;
    dense_step st = {l, ctx->opt};
    kc_gemm_ex(&(kc_gemm_args){.m = f, .n = l->units, .k = batch, .a = in,
                               .a_rs = 1, .a_cs = f, .b = dout, .b_rs = l->units,
                               .b_cs = 1, .c = l->dkernel, .ldc = l->units,
                               .a_sparse = l->input_is_data,
                               .block_done = step ? dense_block_done : NULL,
                               .block_arg = &st, .block_scratch = step, .bf16 = ctx->bf16});
    if (step && !l->no_bias)
        kc_optimizer_apply(ctx->opt, l->bias, l->dbias, l->param_offset + l->kernel_size,
                           l->units);
}

/* ---- Keras's config and variables ---- */

static kc_status dense_from(const cJSON *cfg, const char *where, kc_layer **out) {
    int units;
    kc_status st = kc_cfg_count(cfg, "units", where, &units);
    if (st) return st;
    kc_cfg_weight_opts w;
    st = kc_cfg_weight_opts_from(cfg, where, &w);
    kc_act act = KC_LINEAR;
    if (!st) st = kc_cfg_activation(kc_cfg_field(cfg, "activation"), where, &act);
    if (st) return st;
    kc_dense_opts o = {.activation = act};
    KC_CFG_WEIGHT_OPTS_INTO(o, w);
    return kc_cfg_made(kc_dense_ex(units, &o), where, out);
}

static kc_status dense_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "units", l->units);
    cJSON_AddStringToObject(cfg, "activation", kc_act_name(l->act));
    kc_cfg_weight_opts_to(l, cfg);
    return KC_OK;
}

static int dense_weights(const kc_layer *l, kc_weight_desc *w) {
    return kc_cfg_kernel_bias(l, 2, (int64_t[]){dense_features(l), l->units}, w);
}

const kc_layer_ops kc_dense_ops = {
    .type_name = "Dense",
    .base_name = "dense",
    .build = dense_build,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
    .scratch_size = dense_scratch,
    .updates_weights = 1,
    .supports_masking = 1,
    .allows_none = 1,
    .io = {dense_from, dense_to, dense_weights}};

kc_layer *kc_dense_ex(int units, const kc_dense_opts *opts) {
    kc_dense_opts o = opts ? *opts : (kc_dense_opts){0};
    kc_layer *l = kc_layer_new(&kc_dense_ops);
    if (!l) return NULL;
    l->units = units;
    l->act = o.activation;
    l->no_bias = o.use_bias == KC_ZERO;
    l->kernel_init = o.kernel_initializer;
    l->bias_init = o.bias_initializer;
    l->kernel_reg = o.kernel_regularizer;
    l->bias_reg = o.bias_regularizer;
    l->activity_reg = o.activity_regularizer;
    return l;
}

kc_layer *kc_dense(int units, kc_act activation) {
    return kc_dense_ex(units, &(kc_dense_opts){.activation = activation});
}
