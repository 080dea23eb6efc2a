/* simple.c: the weightless layers: Dropout (inverted, training only), Activation,
 * Flatten, Identity; and the shared layer constructor. */
#include "layer.h"
#include "../io/config_fields.h"
#include "../ops/ops.h"
#include <stdlib.h>
#include <string.h>

kc_layer *kc_layer_new(const kc_layer_ops *ops) {
    kc_layer *l = calloc(1, sizeof *l);
    if (!l) {
        kc_err(KC_ENOMEM, "out of memory creating a %s layer", ops->type_name);
        return NULL;
    }
    l->ops = ops;
    l->trainable_count = -1; /* all of the weights, unless build says otherwise */
    return l;
}

void kc_layer_release(kc_layer *l) {
    if (!l || --l->refs > 0) return;
    if (l->ops->destroy) l->ops->destroy(l);
    free(l);
}

void kc_layer_free(kc_layer *l) {
    if (l && l->refs <= 0) kc_layer_release(l);
}

kc_status kc_same_shape_build(kc_layer *l) {
    l->out_shape = l->in_shape;
    l->param_count = 0;
    return KC_OK;
}

void kc_no_init(kc_layer *l, kc_rng *rng) {}

/* ---- Dropout ---- */

uint64_t kc_dropout_key(const kc_layer *l, const kc_forward_ctx *ctx) {
    uint64_t key = kc_mix64(l->seed ^ kc_mix64(ctx->step_key));
    if (!ctx->row0) return key;
    /* rows from global row row0 on: element i here is element row0 * out_size + i of the
     * whole batch's mask. The hash takes i * C + key32 (kc_dropout_hash), so shifting key32 by
     * off * C shifts the element by off; a key below 2^32 is its own key32. */
    uint32_t off = (uint32_t)((uint64_t)ctx->row0 * (uint64_t)l->out_size);
    return (uint64_t)(uint32_t)(kc_dropout_key32(key) + off * 0x9e3779b9u);
}

float kc_fused_dropout_scale(const kc_layer *l, const kc_forward_ctx *ctx) {
    const kc_layer *d = l->fused_dropout;
    return d && ctx->training && d->rate > 0.0f ? 1.0f / (1.0f - d->rate) : 1.0f;
}

static void dropout_forward(kc_layer *l, const float *in, float *out, int batch,
                            const kc_forward_ctx *ctx) {
    int64_t n = (int64_t)batch * l->out_size;
    if (ctx->training && l->rate > 0.0f && l->n_noise)
        kc_dropout_noise_apply(l, out, in, batch, kc_dropout_key(l, ctx));
    else if (ctx->training && l->rate > 0.0f)
        kc_dropout_apply(out, in, n, l->rate, kc_dropout_key(l, ctx));
    else
        memcpy(out, in, sizeof(float) * (size_t)n);
}

static void dropout_backward(kc_layer *l, const float *in, const float *out, float *dout,
                             float *din, int batch, int dout_is_preactivation,
                             const kc_forward_ctx *ctx) {
    if (!din) return;
    int64_t n = (int64_t)batch * l->out_size;
    /* the same mask again: din = dout * mask / (1 - rate) */
    if (ctx->training && l->rate > 0.0f && l->n_noise)
        kc_dropout_noise_apply(l, din, dout, batch, kc_dropout_key(l, ctx));
    else if (ctx->training && l->rate > 0.0f)
        kc_dropout_apply(din, dout, n, l->rate, kc_dropout_key(l, ctx));
    else
        memcpy(din, dout, sizeof(float) * (size_t)n);
}

static kc_status dropout_build(kc_layer *l) {
    if (!(l->rate >= 0.0f && l->rate < 1.0f))
        return kc_err(KC_EINVAL, "layer %s (Dropout): rate must be in [0, 1), got %g", l->name,
                      (double)l->rate);
    kc_status st = l->n_noise ? kc_dropout_noise_check(l) : KC_OK;
    return st ? st : kc_same_shape_build(l);
}

static kc_status dropout_from(const cJSON *cfg, const char *where, kc_layer **out) {
    const cJSON *rate = kc_cfg_field(cfg, "rate");
    if (!cJSON_IsNumber(rate) || !(rate->valuedouble >= 0 && rate->valuedouble < 1))
        return kc_err(KC_EFORMAT, "%s: rate is missing or not in [0, 1)", where);
    const cJSON *ns = kc_cfg_field(cfg, "noise_shape");
    if (ns && !cJSON_IsNull(ns)) { /* [batch, dims...]: the batch null (or any size but 1) */
        int n = cJSON_GetArraySize(ns) - 1, dims[KC_MAX_RANK];
        if (!cJSON_IsArray(ns) || n < 1 || n > KC_MAX_RANK)
            return kc_err(KC_EFORMAT, "%s: noise_shape is not a list of 2 to %d sizes", where,
                          KC_MAX_RANK + 1);
        for (int i = 0; i <= n; i++) {
            const cJSON *d = cJSON_GetArrayItem(ns, i);
            if (cJSON_IsNull(d)) {
                if (i) dims[i - 1] = 0;
                continue;
            }
            if (!cJSON_IsNumber(d) || d->valuedouble < 1 || d->valuedouble > 1e9 ||
                d->valuedouble != (int)d->valuedouble)
                return kc_err(KC_EFORMAT, "%s: noise_shape holds %s (sizes or null only)", where,
                              cJSON_IsNumber(d) ? "a bad number" : "a non-number");
            if (!i && d->valuedouble == 1)
                return kc_err(KC_EFORMAT,
                              "%s: noise_shape's batch size 1 (one mask shared by the whole "
                              "batch) is not supported by kerac",
                              where);
            if (i) dims[i - 1] = (int)d->valuedouble;
        }
        return kc_cfg_made(kc_dropout_noise((float)rate->valuedouble, dims, n), where, out);
    }
    return kc_cfg_made(kc_dropout((float)rate->valuedouble), where, out);
}

static kc_status dropout_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "rate", kc_json_float(l->rate));
    cJSON_AddNullToObject(cfg, "seed");
    if (!l->n_noise) {
        cJSON_AddNullToObject(cfg, "noise_shape");
        return KC_OK;
    }
    cJSON *ns = cJSON_AddArrayToObject(cfg, "noise_shape");
    cJSON_AddItemToArray(ns, cJSON_CreateNull()); /* the batch */
    for (int i = 0; i < l->n_noise; i++)
        cJSON_AddItemToArray(ns, l->noise_shape[i] ? cJSON_CreateNumber(l->noise_shape[i])
                                                   : cJSON_CreateNull());
    return KC_OK;
}

const kc_layer_ops kc_dropout_ops = {
    .type_name = "Dropout",
    .base_name = "dropout",
    .build = dropout_build,
    .init = kc_no_init,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .supports_masking = 1,
    .allows_none = 1,
    .io = {dropout_from, dropout_to}};

kc_layer *kc_dropout(float rate) {
    kc_layer *l = kc_layer_new(&kc_dropout_ops);
    if (l) l->rate = rate;
    return l;
}

/* ---- Activation ---- */

static void activation_forward(kc_layer *l, const float *in, float *out, int batch,
                               const kc_forward_ctx *ctx) {
    int rows = batch, cols = (int)l->out_size;
    /* softmax acts on the last axis; the others are elementwise */
    if (kc_act_is_rowwise(l->act)) {
        rows = (int)((int64_t)batch * l->out_size / l->out_shape.dims[l->out_shape.rank - 1]);
        cols = l->out_shape.dims[l->out_shape.rank - 1];
    }
    memcpy(out, in, sizeof(float) * (size_t)batch * (size_t)l->out_size);
    kc_act_forward(out, rows, cols, l->act);
}

static void activation_backward(kc_layer *l, const float *in, const float *out, float *dout,
                                float *din, int batch, int dout_is_preactivation,
                                const kc_forward_ctx *ctx) {
    if (!din) return;
    int cols = kc_act_is_rowwise(l->act) ? l->out_shape.dims[l->out_shape.rank - 1]
                                         : (int)l->out_size;
    int rows = (int)((int64_t)batch * l->out_size / cols);
    /* the pre-activation is the layer's input */
    if (!dout_is_preactivation) kc_act_backward(in, out, dout, rows, cols, l->act);
    memcpy(din, dout, sizeof(float) * (size_t)batch * (size_t)l->out_size);
}

static kc_status activation_build(kc_layer *l) {
    if ((unsigned)l->act >= KC_ACT_COUNT)
        return kc_err(KC_EINVAL, "layer %s (Activation): unknown activation %d", l->name,
                      (int)l->act);
    if (l->in_shape.rank < 1 && kc_act_is_rowwise(l->act))
        return kc_err(KC_EINVAL, "layer %s (Activation %s) needs an input with an axis",
                      l->name, kc_act_name(l->act));
    return kc_same_shape_build(l);
}

static kc_status activation_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_act act = KC_LINEAR;
    const cJSON *a = kc_cfg_field(cfg, "activation");
    if (!a) return kc_err(KC_EFORMAT, "%s: the activation is missing", where);
    kc_status st = kc_cfg_activation(a, where, &act);
    return st ? st : kc_cfg_made(kc_activation(act), where, out);
}

static kc_status activation_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddStringToObject(cfg, "activation", kc_act_name(l->act));
    return KC_OK;
}

const kc_layer_ops kc_activation_ops = {
    .type_name = "Activation",
    .base_name = "activation",
    .build = activation_build,
    .init = kc_no_init,
    .forward = activation_forward,
    .backward = activation_backward,
    .supports_masking = 1,
    .allows_none = 1,
    .io = {activation_from, activation_to}};

kc_layer *kc_activation(kc_act activation) {
    kc_layer *l = kc_layer_new(&kc_activation_ops);
    if (l) l->act = activation;
    return l;
}

/* ---- Flatten ---- */

static kc_status flatten_build(kc_layer *l) {
    l->out_shape = kc_shape1((int)l->in_size);
    l->param_count = 0;
    return KC_OK;
}

/* the same values, another shape: Flatten and Reshape */
void kc_copy_forward(kc_layer *l, const float *in, float *out, int batch,
                     const kc_forward_ctx *ctx) {
    memcpy(out, in, sizeof(float) * (size_t)batch * (size_t)l->out_size);
}

void kc_copy_backward(kc_layer *l, const float *in, const float *out, float *dout, float *din,
                      int batch, int dout_is_preactivation, const kc_forward_ctx *ctx) {
    if (din) memcpy(din, dout, sizeof(float) * (size_t)batch * (size_t)l->out_size);
}

static kc_status flatten_from(const cJSON *cfg, const char *where, kc_layer **out) {
    const cJSON *df = kc_cfg_field(cfg, "data_format");
    if (cJSON_IsString(df) && strcmp(df->valuestring, "channels_last"))
        return kc_err(KC_EFORMAT, "%s: data_format '%s' is not supported (channels_last only)",
                      where, df->valuestring);
    return kc_cfg_made(kc_flatten(), where, out);
}

static kc_status flatten_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    return KC_OK;
}

const kc_layer_ops kc_flatten_ops = {
    .type_name = "Flatten",
    .base_name = "flatten",
    .build = flatten_build,
    .init = kc_no_init,
    .forward = kc_copy_forward,
    .backward = kc_copy_backward,
    .allows_none = 1, /* (None, 8) -> (None), as Keras: a Dense after it refuses that */
    .io = {flatten_from, flatten_to}};

kc_layer *kc_flatten(void) { return kc_layer_new(&kc_flatten_ops); }

/* ---- Identity: the output is the input ---- */

static kc_status identity_from(const cJSON *cfg, const char *where, kc_layer **out) {
    return kc_cfg_made(kc_identity(), where, out);
}

static kc_status identity_to(const kc_layer *l, cJSON *cfg) { return KC_OK; }

const kc_layer_ops kc_identity_ops = {
    .type_name = "Identity",
    .base_name = "identity",
    .build = kc_same_shape_build,
    .init = kc_no_init,
    .forward = kc_copy_forward,
    .backward = kc_copy_backward,
    .supports_masking = 1,
    .allows_none = 1,
    .io = {identity_from, identity_to}};

kc_layer *kc_identity(void) { return kc_layer_new(&kc_identity_ops); }
