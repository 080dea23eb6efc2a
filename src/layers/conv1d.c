/* conv1d.c: Conv1D(filters, kernel_size, strides, padding valid / same / causal,
 * dilation_rate, activation, use_bias, initializers, regularizers) and MaxPooling1D,
 * AveragePooling1D (pool_size, strides, padding), on (steps, channels) samples.
 *
 * A 1-D convolution is a Conv2D of height 1: the layer keeps kh = sh = dh = 1, pad_top 0 and
 * runs Conv2D's forward and backward (conv.c: im2col chunks and threaded products), whose
 * window (kc_layer_window) reads a rank-2 input as an image of height 1. Causal padding is
 * (kernel_size - 1) * dilation_rate zeros before the sequence and none after. The kernel
 * (kernel_size, in, filters) is Conv2D's (1, kernel_size, in, filters) in memory. The 1-D
 * pools are the 2-D pooling kernels (ops/conv.c) on height-1 images. */
#include "layer.h"
#include "../initializers.h"
#include "../io/config_fields.h"
#include "../ops/ops.h"
#include "../util/threads.h"
#include <math.h>
#include <string.h>

static int64_t channels(const kc_layer *l) { return l->in_shape.dims[1]; }

static kc_status conv1d_build(kc_layer *l) {
    char buf[64];
    if (l->units <= 0)
        return kc_err(KC_EINVAL, "layer %s (Conv1D): filters must be positive, got %d", l->name,
                      l->units);
    if (l->kw <= 0 || l->sw <= 0 || l->dw <= 0)
        return kc_err(KC_EINVAL,
                      "layer %s (Conv1D): kernel_size, strides and dilation_rate must be "
                      "positive, got %d, %d and %d",
                      l->name, l->kw, l->sw, l->dw);
    if ((unsigned)l->act >= KC_ACT_COUNT)
        return kc_err(KC_EINVAL, "layer %s (Conv1D): unknown activation %d", l->name, (int)l->act);
    if ((unsigned)l->pad_same > KC_CAUSAL)
        return kc_err(KC_EINVAL,
                      "layer %s (Conv1D): padding must be KC_VALID, KC_SAME or KC_CAUSAL, got %d",
                      l->name, l->pad_same);
    if (l->sw > 1 && l->dw > 1)
        return kc_err(KC_EINVAL,
                      "layer %s (Conv1D): strides %d with dilation_rate %d: strides > 1 together "
                      "with dilation_rate > 1 is not supported (as in Keras)",
                      l->name, l->sw, l->dw);
    if (l->in_shape.rank != 2)
        return kc_err(KC_EINVAL,
                      "layer %s (Conv1D) needs an input of shape (steps, channels), got %s: give "
                      "the model kc_shape2(steps, channels) or add kc_reshape",
                      l->name, kc_shape_str(l->in_shape, buf, sizeof buf));
    l->kh = l->sh = l->dh = 1;
    l->pad_top = 0;
    int steps = l->in_shape.dims[0], extent = (l->kw - 1) * l->dw + 1, out;
    if (steps == KC_NONE) { /* a None length stays None (built again per call) */
        l->pad_left = l->pad_same == KC_CAUSAL ? extent - 1 : 0;
        out = KC_NONE;
    } else if (l->pad_same == KC_CAUSAL) {
        l->pad_left = extent - 1; /* then "valid" over steps + extent - 1 */
        out = (steps - 1) / l->sw + 1;
    } else {
        kc_window_axis(steps, extent, l->sw, l->pad_same, &out, &l->pad_left);
    }
    if (out <= 0 && out != KC_NONE)
        return kc_err(KC_EINVAL,
                      "layer %s (Conv1D): a kernel of %d steps%s does not fit the input %s "
                      "with padding \"valid\"",
                      l->name, extent, l->dw > 1 ? " (dilated)" : "",
                      kc_shape_str(l->in_shape, buf, sizeof buf));
    l->out_shape = kc_shape2(out, l->units);
    l->kernel_size = (int64_t)l->kw * channels(l) * l->units;
    l->param_count = l->kernel_size + (l->no_bias ? 0 : l->units);
    return kc_layer_check_init_reg(l, 3, (int64_t[]){l->kw, channels(l), l->units});
}

static void conv1d_init(kc_layer *l, kc_rng *rng) {
    /* kernel (k, in, filters): Keras's fans k * in and k * filters */
    kc_layer_init_weights(l, 3, (int64_t[]){l->kw, channels(l), l->units}, rng);
}

/* ---- Keras's config and variables ---- */

/* an int config entry of a 1-D layer: n or [n] (null or missing: *out unchanged) */
static kc_status int1(const cJSON *cfg, const char *name, const char *where, int *out) {
    const cJSON *v = kc_cfg_field(cfg, name);
    if (!v || cJSON_IsNull(v)) return KC_OK;
    if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) != 1)
            return kc_err(KC_EFORMAT, "%s: %s must be a number or a list of 1 number", where,
                          name);
        v = cJSON_GetArrayItem(v, 0);
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e6 ||
        v->valuedouble != floor(v->valuedouble))
        return kc_err(KC_EFORMAT, "%s: %s must be a positive whole number", where, name);
    *out = (int)v->valuedouble;
    return KC_OK;
}

static cJSON *list1(int v) { return cJSON_CreateIntArray(&v, 1); }

/* padding "valid", "same" or (Conv1D) "causal" */
static kc_status padding1(const cJSON *cfg, const char *where, int causal_ok, kc_padding *out) {
    const cJSON *v = kc_cfg_field(cfg, "padding");
    if (causal_ok && cJSON_IsString(v) && !strcasecmp(v->valuestring, "causal"))
        return *out = KC_CAUSAL, KC_OK;
    return kc_cfg_padding(cfg, where, out);
}

static const char *padding_name(int p) {
    return p == KC_CAUSAL ? "causal" : p == KC_SAME ? "same" : "valid";
}

static kc_status conv1d_from(const cJSON *cfg, const char *where, kc_layer **out) {
    int filters;
    kc_status st = kc_cfg_count(cfg, "filters", where, &filters);
    if (st) return st;
    kc_conv1d_opts o = {.strides = 1, .dilation_rate = 1, .activation = KC_LINEAR};
    const cJSON *ks = kc_cfg_field(cfg, "kernel_size");
    if (!ks || cJSON_IsNull(ks)) return kc_err(KC_EFORMAT, "%s: kernel_size is missing", where);
    st = int1(cfg, "kernel_size", where, &o.kernel_size);
    if (!st) st = int1(cfg, "strides", where, &o.strides);
    if (!st) st = int1(cfg, "dilation_rate", where, &o.dilation_rate);
    if (!st) st = padding1(cfg, where, 1, &o.padding);
    if (!st) st = kc_cfg_channels_last(cfg, where);
    if (!st && o.strides > 1 && o.dilation_rate > 1)
        st = kc_err(KC_EFORMAT,
                    "%s: dilation_rate %d with strides %d is not supported (strides > 1 together "
                    "with dilation_rate > 1)",
                    where, o.dilation_rate, o.strides);
    kc_cfg_weight_opts w;
    if (!st) st = kc_cfg_conv_common(cfg, where, &w, &o.activation);
    if (st) return st;
    KC_CFG_WEIGHT_OPTS_INTO(o, w);
    return kc_cfg_made(kc_conv1d_ex(filters, &o), where, out);
}

static kc_status conv1d_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "filters", l->units);
    cJSON_AddItemToObject(cfg, "kernel_size", list1(l->kw));
    cJSON_AddItemToObject(cfg, "strides", list1(l->sw));
    cJSON_AddStringToObject(cfg, "padding", padding_name(l->pad_same));
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    cJSON_AddItemToObject(cfg, "dilation_rate", list1(l->dw));
    cJSON_AddNumberToObject(cfg, "groups", 1);
    cJSON_AddStringToObject(cfg, "activation", kc_act_name(l->act));
    kc_cfg_weight_opts_to(l, cfg);
    return KC_OK;
}

static int conv1d_weights(const kc_layer *l, kc_weight_desc *w) {
    int64_t in = l->in_shape.rank == 2 ? channels(l) : 0;
    return kc_cfg_kernel_bias(l, 3, (int64_t[]){l->kw, in, l->units}, w);
}

const kc_layer_ops kc_conv1d_ops = {
    .type_name = "Conv1D",
    .base_name = "conv1d",
    .build = conv1d_build,
    .init = conv1d_init,
    .forward = kc_conv_forward,
    .backward = kc_conv_backward,
    .scratch_size = kc_conv_scratch,
    .allows_none = 1,
    .io = {conv1d_from, conv1d_to, conv1d_weights}};

kc_layer *kc_conv1d_ex(int filters, const kc_conv1d_opts *opts) {
    kc_conv1d_opts o = opts ? *opts : (kc_conv1d_opts){0};
    kc_layer *l = kc_layer_new(&kc_conv1d_ops);
    if (!l) return NULL;
    l->units = filters;
    l->kh = l->sh = l->dh = 1;
    l->kw = o.kernel_size;
    l->sw = o.strides ? o.strides : 1;
    l->dw = o.dilation_rate ? o.dilation_rate : 1;
    l->pad_same = (int)o.padding;
    l->act = o.activation;
    l->no_bias = o.use_bias == KC_ZERO;
    l->kernel_init = o.kernel_initializer;
    l->bias_init = o.bias_initializer;
    l->kernel_reg = o.kernel_regularizer;
    l->bias_reg = o.bias_regularizer;
    l->activity_reg = o.activity_regularizer;
    return l;
}

kc_layer *kc_conv1d(int filters, int kernel_size, kc_act activation) {
    return kc_conv1d_ex(filters,
                        &(kc_conv1d_opts){.kernel_size = kernel_size, .activation = activation});
}

/* ---- MaxPooling1D, AveragePooling1D ---- */


static kc_status pool1d_build(kc_layer *l) {
    char buf[64];
    const char *type = l->ops->type_name;
    if (l->kw <= 0 || l->sw <= 0)
        return kc_err(KC_EINVAL, "layer %s (%s): pool_size and strides must be positive, got %d "
                                 "and %d",
                      l->name, type, l->kw, l->sw);
    if ((unsigned)l->pad_same > 1)
        return kc_err(KC_EINVAL, "layer %s (%s): padding must be KC_VALID or KC_SAME, got %d",
                      l->name, type, l->pad_same);
    if (l->in_shape.rank != 2)
        return kc_err(KC_EINVAL, "layer %s (%s) needs an input of shape (steps, channels), got %s",
                      l->name, type, kc_shape_str(l->in_shape, buf, sizeof buf));
    l->kh = l->sh = 1;
    l->pad_top = 0;
    int out = KC_NONE;
    l->pad_left = 0;
    if (l->in_shape.dims[0] != KC_NONE) /* a None length stays None (built again per call) */
        kc_window_axis(l->in_shape.dims[0], l->kw, l->sw, l->pad_same, &out, &l->pad_left);
    if (out <= 0 && out != KC_NONE)
        return kc_err(KC_EINVAL,
                      "layer %s (%s): a pool of %d steps does not fit the input %s with padding "
                      "\"valid\"",
                      l->name, type, l->kw, kc_shape_str(l->in_shape, buf, sizeof buf));
    l->out_shape = kc_shape2(out, l->in_shape.dims[1]);
    return KC_OK;
}

static kc_status pool1d_from(const cJSON *cfg, const char *where,
                             kc_layer *(*make)(const kc_pool1d_opts *), kc_layer **out) {
    kc_pool1d_opts o = {2, 0, KC_VALID};
    kc_status st = int1(cfg, "pool_size", where, &o.pool_size);
    if (!st) st = int1(cfg, "strides", where, &o.strides); /* null: pool_size */
    if (!st) st = padding1(cfg, where, 0, &o.padding);
    if (!st) st = kc_cfg_channels_last(cfg, where);
    return st ? st : kc_cfg_made(make(&o), where, out);
}
static kc_status max_pool1d_from(const cJSON *cfg, const char *where, kc_layer **out) {
    return pool1d_from(cfg, where, kc_max_pooling1d_ex, out);
}
static kc_status avg_pool1d_from(const cJSON *cfg, const char *where, kc_layer **out) {
    return pool1d_from(cfg, where, kc_average_pooling1d_ex, out);
}

static kc_status pool1d_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddItemToObject(cfg, "pool_size", list1(l->kw));
    cJSON_AddStringToObject(cfg, "padding", l->pad_same ? "same" : "valid");
    cJSON_AddItemToObject(cfg, "strides", list1(l->sw));
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    return KC_OK;
}

const kc_layer_ops kc_max_pooling1d_ops = {
    .type_name = "MaxPooling1D",
    .base_name = "max_pooling1d",
    .build = pool1d_build,
    .init = kc_no_init,
    .forward = kc_pool_forward,
    .backward = kc_pool_backward,
    .scratch_size = kc_pool_scratch,
    .allows_none = 1,
    .io = {max_pool1d_from, pool1d_to}};
const kc_layer_ops kc_average_pooling1d_ops = {
    .type_name = "AveragePooling1D",
    .base_name = "average_pooling1d",
    .build = pool1d_build,
    .init = kc_no_init,
    .forward = kc_pool_forward,
    .backward = kc_pool_backward,
    .allows_none = 1,
    .io = {avg_pool1d_from, pool1d_to}};


static kc_layer *pool1d_new(const kc_layer_ops *ops, const kc_pool1d_opts *opts) {
    kc_pool1d_opts o = opts ? *opts : (kc_pool1d_opts){0};
    kc_layer *l = kc_layer_new(ops);
    if (!l) return NULL;
    l->kh = l->sh = 1;
    l->kw = o.pool_size ? o.pool_size : 2;
    l->sw = o.strides ? o.strides : l->kw; /* Keras: strides default to pool_size */
    l->pad_same = (int)o.padding;
    return l;
}
kc_layer *kc_max_pooling1d_ex(const kc_pool1d_opts *opts) {
    return pool1d_new(&kc_max_pooling1d_ops, opts);
}
kc_layer *kc_average_pooling1d_ex(const kc_pool1d_opts *opts) {
    return pool1d_new(&kc_average_pooling1d_ops, opts);
}
kc_layer *kc_max_pooling1d(int pool_size) {
    return pool1d_new(&kc_max_pooling1d_ops, &(kc_pool1d_opts){.pool_size = pool_size});
}
kc_layer *kc_average_pooling1d(int pool_size) {
    return pool1d_new(&kc_average_pooling1d_ops, &(kc_pool1d_opts){.pool_size = pool_size});
}
