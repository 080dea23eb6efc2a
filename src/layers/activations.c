/* activations.c: Keras's activation layers: Softmax(axis), ReLU(max_value, negative_slope,
 * threshold), LeakyReLU(negative_slope), PReLU (a trainable alpha, shared_axes) and
 * ELU(alpha). Their formulas and derivatives are those of Keras 3 on JAX (keras.activations
 * and jax.nn): the derivatives at the kinks are JAX's (ReLU's 0 at the threshold, LeakyReLU's
 * 1 at 0, PReLU's 0 at 0). The configs are read in Keras 3's and tf.keras 2's forms
 * (LeakyReLU's alpha). None sets l->act except Softmax on the last axis (KC_SOFTMAX, so that
 * crossentropy folds it into its gradient as it does a softmax Dense's). */
#include "layer.h"
#include "../initializers.h"
#include "../io/config_fields.h"
#include "../io/io.h"
#include "../ops/ops.h"
#include <math.h>
#include <string.h>

/* ---- Softmax(axis) ---- */

/* the softmax axis as (outer, n, inner): values i * n * inner + k * inner + j, k along it */
static void softmax_geometry(const kc_layer *l, int batch, int64_t *outer, int *n,
                             int64_t *inner) {
    int rank = l->out_shape.rank, ax = l->axis < 0 ? rank + l->axis : l->axis - 1;
    *outer = batch;
    *inner = 1;
    for (int i = 0; i < ax; i++) *outer *= l->out_shape.dims[i];
    for (int i = ax + 1; i < rank; i++) *inner *= l->out_shape.dims[i];
    *n = l->out_shape.dims[ax];
}

static kc_status softmax_build(kc_layer *l) {
    int rank = l->in_shape.rank, ax = l->axis < 0 ? rank + l->axis : l->axis - 1;
    if (rank < 1 || ax < 0 || ax >= rank)
        return kc_err(KC_EINVAL, "layer %s (Softmax): axis %d is outside an input of rank %d",
                      l->name, l->axis, rank + 1);
    /* the last axis: the softmax the losses know */
    l->act = ax == rank - 1 ? KC_SOFTMAX : KC_LINEAR;
    return kc_same_shape_build(l);
}

static void softmax_forward(kc_layer *l, const float *in, float *out, int batch,
                            const kc_forward_ctx *ctx) {
    int64_t outer, inner;
    int n;
    softmax_geometry(l, batch, &outer, &n, &inner);
    memcpy(out, in, sizeof(float) * (size_t)batch * (size_t)l->out_size);
    if (inner == 1) {
        kc_act_forward(out, (int)outer, n, KC_SOFTMAX);
        return;
    }
    for (int64_t i = 0; i < outer; i++)
        for (int64_t j = 0; j < inner; j++) {
            float *y = out + i * n * inner + j;
            float max = y[0];
            for (int k = 1; k < n; k++) max = y[k * inner] > max ? y[k * inner] : max;
            float sum = 0.0f;
            for (int k = 0; k < n; k++) {
                y[k * inner] = expf(y[k * inner] - max);
                sum += y[k * inner];
            }
            float inv = 1.0f / sum;
            for (int k = 0; k < n; k++) y[k * inner] *= inv;
        }
}

static void softmax_backward(kc_layer *l, const float *in, const float *out, float *dout,
                             float *din, int batch, int dout_is_preactivation,
                             const kc_forward_ctx *ctx) {
    if (!din) return;
    int64_t outer, inner;
    int n;
    softmax_geometry(l, batch, &outer, &n, &inner);
    if (dout_is_preactivation) {
    } else if (inner == 1) {
        kc_act_backward(NULL, out, dout, (int)outer, n, KC_SOFTMAX);
    } else {
        for (int64_t i = 0; i < outer; i++)
            for (int64_t j = 0; j < inner; j++) {
                const float *y = out + i * n * inner + j;
                float *d = dout + i * n * inner + j, dot = 0.0f;
                for (int k = 0; k < n; k++) dot += d[k * inner] * y[k * inner];
                for (int k = 0; k < n; k++) d[k * inner] = y[k * inner] * (d[k * inner] - dot);
            }
    }
    memcpy(din, dout, sizeof(float) * (size_t)batch * (size_t)l->out_size);
}

static kc_status softmax_from(const cJSON *cfg, const char *where, kc_layer **out) {
    double axis = -1;
    if (kc_cfg_num(cfg, "axis", &axis) < 0 || axis != floor(axis) || axis == 0 ||
        fabs(axis) > KC_MAX_RANK)
        return kc_err(KC_EFORMAT, "%s: Softmax's axis must be one axis (a whole number other "
                      "than 0, the batch's)", where);
    return kc_cfg_made(kc_softmax_axis((int)axis), where, out);
}

static kc_status softmax_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "axis", l->axis);
    return KC_OK;
}

const kc_layer_ops kc_softmax_ops = {.type_name = "Softmax",
                                     .base_name = "softmax",
                                     .build = softmax_build,
                                     .init = kc_no_init,
                                     .forward = softmax_forward,
                                     .backward = softmax_backward,
                                     .supports_masking = 1,
                                     .mask_refusal = "Keras's Softmax applies a mask to the values along the axes it broadcasts to, not per timestep (it raises on (batch, steps, features) unless steps == features); kerac refuses it",
                                     .allows_none = 1,
                                     .io = {softmax_from, softmax_to}};

kc_layer *kc_softmax_axis(int axis) {
    kc_layer *l = kc_layer_new(&kc_softmax_ops);
    if (!l) return NULL;
    l->axis = axis;
    l->act = axis == -1 ? KC_SOFTMAX : KC_LINEAR; /* build settles it */
    return l;
}

kc_layer *kc_softmax_layer(void) { return kc_softmax_axis(-1); }

/* ---- the elementwise layers: ReLU, LeakyReLU, ELU ---- */

enum { RELU_LAYER, LEAKY_LAYER, ELU_LAYER };

/* ReLU's value and slope, as Keras 3's ReLU.static_call: leaky_relu when only the slope is
 * set; else (x > threshold ? x : 0) clipped to max_value, minus slope * relu(threshold - x) */
static inline float relu_value(const kc_layer *l, float x, float *slope) {
    float mv = l->act_param[0], s = l->act_param[1], t = l->act_param[2];
    if (s != 0.0f && mv < 0.0f && t == 0.0f) {
        *slope = x >= 0.0f ? 1.0f : s;
        return x >= 0.0f ? x : s * x;
    }
    float y = x > t ? x : 0.0f;
    *slope = x > t ? 1.0f : 0.0f;
    if (mv >= 0.0f && y > mv) y = mv, *slope = 0.0f;
    if (mv >= 0.0f && x == mv) *slope = 0.0f;
    if (s != 0.0f) {
        float neg = -x + t;
        if (neg > 0.0f) y -= s * neg, *slope += s;
    }
    return y;
}

static inline float elementwise(const kc_layer *l, int kind, float x, float *slope) {
    switch (kind) {
    case RELU_LAYER: return relu_value(l, x, slope);
    case LEAKY_LAYER:
        *slope = x >= 0.0f ? 1.0f : l->act_param[1];
        return x >= 0.0f ? x : l->act_param[1] * x;
    default: { /* ELU: jax.nn.elu */
        float a = l->act_param[1];
        *slope = x > 0.0f ? 1.0f : a * expf(x);
        return x > 0.0f ? x : a * expm1f(x);
    }
    }
}

static int kind_of(const kc_layer *l);

static void elementwise_forward(kc_layer *l, const float *in, float *out, int batch,
                                const kc_forward_ctx *ctx) {
    int kind = kind_of(l);
    int64_t n = (int64_t)batch * l->out_size;
    float s;
    for (int64_t i = 0; i < n; i++) out[i] = elementwise(l, kind, in[i], &s);
}

static void elementwise_backward(kc_layer *l, const float *in, const float *out, float *dout,
                                 float *din, int batch, int dout_is_preactivation,
                                 const kc_forward_ctx *ctx) {
    if (!din) return;
    int kind = kind_of(l);
    int64_t n = (int64_t)batch * l->out_size;
    float s;
    for (int64_t i = 0; i < n; i++) {
        elementwise(l, kind, in[i], &s);
        din[i] = dout[i] * s;
    }
}

static kc_status relu_build(kc_layer *l) {
    if (!(l->act_param[1] >= 0.0f) || !(l->act_param[2] >= 0.0f) || isnan(l->act_param[0]))
        return kc_err(KC_EINVAL, "layer %s (%s): negative_slope and threshold must be >= 0",
                      l->name, l->ops->type_name);
    return kc_same_shape_build(l);
}

static kc_status elu_build(kc_layer *l) {
    if (!isfinite(l->act_param[1]))
        return kc_err(KC_EINVAL, "layer %s (ELU): alpha must be finite", l->name);
    return kc_same_shape_build(l);
}

/* a number field (absent or null: dflt); nonfinite or not a number is refused by name */
static kc_status num_field(const cJSON *cfg, const char *name, const char *where, double dflt,
                           double *out) {
    *out = dflt;
    int got = kc_cfg_num(cfg, name, out);
    if (got < 0 || !isfinite(*out))
        return kc_err(KC_EFORMAT, "%s: %s is not a number", where, name);
    return KC_OK;
}

static kc_status relu_from(const cJSON *cfg, const char *where, kc_layer **out) {
    double mv, s, t;
    kc_status st = num_field(cfg, "max_value", where, -1.0, &mv);
    if (!st) st = num_field(cfg, "negative_slope", where, 0.0, &s);
    if (!st) st = num_field(cfg, "threshold", where, 0.0, &t);
    if (st) return st;
    const cJSON *m = kc_cfg_field(cfg, "max_value");
    if (m && cJSON_IsNumber(m) && mv < 0)
        return kc_err(KC_EFORMAT, "%s: max_value must be >= 0 or null", where);
    if (s < 0 || t < 0)
        return kc_err(KC_EFORMAT, "%s: negative_slope and threshold must be >= 0", where);
    return kc_cfg_made(kc_relu_layer((float)mv, (float)s, (float)t), where, out);
}

static kc_status relu_to(const kc_layer *l, cJSON *cfg) {
    if (l->act_param[0] < 0) cJSON_AddNullToObject(cfg, "max_value");
    else cJSON_AddNumberToObject(cfg, "max_value", kc_json_float(l->act_param[0]));
    cJSON_AddNumberToObject(cfg, "negative_slope", kc_json_float(l->act_param[1]));
    cJSON_AddNumberToObject(cfg, "threshold", kc_json_float(l->act_param[2]));
    return KC_OK;
}

static kc_status leaky_from(const cJSON *cfg, const char *where, kc_layer **out) {
    double s;
    /* Keras 3 writes negative_slope, tf.keras 2 alpha */
    const char *key = kc_cfg_field(cfg, "negative_slope") ? "negative_slope" : "alpha";
    kc_status st = num_field(cfg, key, where, 0.3, &s);
    if (st) return st;
    if (s < 0) return kc_err(KC_EFORMAT, "%s: %s must be >= 0", where, key);
    return kc_cfg_made(kc_leaky_relu((float)s), where, out);
}

static kc_status leaky_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "negative_slope", kc_json_float(l->act_param[1]));
    return KC_OK;
}

static kc_status elu_from(const cJSON *cfg, const char *where, kc_layer **out) {
    double a;
    kc_status st = num_field(cfg, "alpha", where, 1.0, &a);
    return st ? st : kc_cfg_made(kc_elu_layer((float)a), where, out);
}

static kc_status elu_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "alpha", kc_json_float(l->act_param[1]));
    return KC_OK;
}

const kc_layer_ops kc_relu_ops = {.type_name = "ReLU",
                                  .base_name = "re_lu",
                                  .build = relu_build,
                                  .init = kc_no_init,
                                  .forward = elementwise_forward,
                                  .backward = elementwise_backward,
                                  .supports_masking = 1,
                                  .allows_none = 1,
                                  .io = {relu_from, relu_to}};
const kc_layer_ops kc_leaky_relu_ops = {.type_name = "LeakyReLU",
                                        .base_name = "leaky_re_lu",
                                        .build = relu_build,
                                        .init = kc_no_init,
                                        .forward = elementwise_forward,
                                        .backward = elementwise_backward,
                                        .supports_masking = 1,
                                        .allows_none = 1,
                                        .io = {leaky_from, leaky_to}};
const kc_layer_ops kc_elu_ops = {.type_name = "ELU",
                                 .base_name = "elu",
                                 .build = elu_build,
                                 .init = kc_no_init,
                                 .forward = elementwise_forward,
                                 .backward = elementwise_backward,
                                 .supports_masking = 1,
                                 .allows_none = 1,
                                 .io = {elu_from, elu_to}};

static int kind_of(const kc_layer *l) {
    return l->ops == &kc_relu_ops ? RELU_LAYER : l->ops == &kc_leaky_relu_ops ? LEAKY_LAYER
                                                                             : ELU_LAYER;
}

kc_layer *kc_relu_layer(float max_value, float negative_slope, float threshold) {
    kc_layer *l = kc_layer_new(&kc_relu_ops);
    if (l) {
        l->act_param[0] = max_value < 0.0f ? -1.0f : max_value;
        l->act_param[1] = negative_slope;
        l->act_param[2] = threshold;
    }
    return l;
}

kc_layer *kc_leaky_relu(float negative_slope) {
    kc_layer *l = kc_layer_new(&kc_leaky_relu_ops);
    if (l) l->act_param[0] = -1.0f, l->act_param[1] = negative_slope;
    return l;
}

kc_layer *kc_elu_layer(float alpha) {
    kc_layer *l = kc_layer_new(&kc_elu_ops);
    if (l) l->act_param[1] = alpha;
    return l;
}

/* ---- PReLU: relu(x) - alpha * relu(-x), alpha trainable ---- */

/* alpha's Keras shape: the input's, 1 along the shared axes */
static int prelu_shape(const kc_layer *l, int64_t *dims) {
    for (int i = 0; i < l->in_shape.rank; i++)
        dims[i] = l->shared_axes >> (i + 1) & 1 ? 1 : l->in_shape.dims[i];
    return l->in_shape.rank;
}

static kc_status prelu_build(kc_layer *l) {
    int rank = l->in_shape.rank;
    if (rank < 1 || l->shared_axes >> (rank + 1))
        return kc_err(KC_EINVAL, "layer %s (PReLU): shared_axes must be axes 1 to %d of the "
                      "input", l->name, rank);
    int64_t dims[KC_MAX_RANK], count = 1;
    prelu_shape(l, dims);
    for (int i = 0; i < rank; i++) count *= dims[i];
    l->out_shape = l->in_shape;
    l->kernel_size = l->param_count = count;
    l->no_bias = 1;
    char where[96];
    snprintf(where, sizeof where, "layer %s (PReLU): alpha_initializer", l->name);
    kc_status st = kc_init_check(&l->kernel_init, KC_INIT_ZEROS, rank, dims, where);
    if (!st) {
        snprintf(where, sizeof where, "layer %s (PReLU): alpha_regularizer", l->name);
        st = kc_regularizer_check(&l->kernel_reg, where);
    }
    return st;
}

static void prelu_init(kc_layer *l, kc_rng *rng) {
    int64_t dims[KC_MAX_RANK];
    int rank = prelu_shape(l, dims);
    kc_init_fill(&l->kernel_init, KC_INIT_ZEROS, l->kernel, rank, dims, rng);
}

/* alpha's index of the sample's value e */
static inline int64_t prelu_index(const kc_layer *l, int64_t e) {
    if (!l->shared_axes) return e;
    int64_t idx = 0, stride = 1;
    for (int i = l->in_shape.rank - 1; i >= 0; i--) {
        int d = l->in_shape.dims[i], c = (int)(e % d);
        e /= d;
        if (!(l->shared_axes >> (i + 1) & 1)) idx += c * stride, stride *= d;
    }
    return idx;
}

static void prelu_forward(kc_layer *l, const float *in, float *out, int batch,
                          const kc_forward_ctx *ctx) {
    int64_t size = l->out_size;
    for (int b = 0; b < batch; b++)
        for (int64_t e = 0; e < size; e++) {
            float x = in[b * size + e];
            float pos = x > 0.0f ? x : 0.0f, neg = -x > 0.0f ? -x : 0.0f;
            out[b * size + e] = pos + -l->kernel[prelu_index(l, e)] * neg;
        }
}

static void prelu_backward(kc_layer *l, const float *in, const float *out, float *dout,
                           float *din, int batch, int dout_is_preactivation,
                           const kc_forward_ctx *ctx) {
    int64_t size = l->out_size;
    memset(l->dkernel, 0, sizeof(float) * (size_t)l->kernel_size);
    for (int b = 0; b < batch; b++)
        for (int64_t e = 0; e < size; e++) {
            float x = in[b * size + e], d = dout[b * size + e];
            int64_t a = prelu_index(l, e);
            l->dkernel[a] -= d * (-x > 0.0f ? -x : 0.0f);
            if (din) din[b * size + e] = x > 0.0f ? d : x < 0.0f ? d * l->kernel[a] : 0.0f;
        }
    kc_layer_weight_reg_grad(l);
}

static kc_status prelu_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_prelu_opts o = {0};
    static const char *const nulls[] = {"alpha_constraint"};
    kc_status st = kc_cfg_must_be_null(cfg, where, nulls, 1);
    if (!st && kc_cfg_field(cfg, "alpha_initializer"))
        st = kc_initializer_from_json(kc_cfg_field(cfg, "alpha_initializer"), where,
                                      "alpha_initializer", &o.alpha_initializer);
    if (!st)
        st = kc_regularizer_from_json(kc_cfg_field(cfg, "alpha_regularizer"), where,
                                      "alpha_regularizer", &o.alpha_regularizer);
    if (st) return st;
    const cJSON *sa = kc_cfg_field(cfg, "shared_axes");
    if (sa && !cJSON_IsNull(sa)) {
        int n = cJSON_IsArray(sa) ? cJSON_GetArraySize(sa) : 1;
        for (int i = 0; i < n; i++) {
            const cJSON *v = cJSON_IsArray(sa) ? cJSON_GetArrayItem(sa, i) : sa;
            if (i >= KC_MAX_RANK - 1 || !cJSON_IsNumber(v) || v->valuedouble < 1 ||
                v->valuedouble > KC_MAX_RANK || v->valuedouble != floor(v->valuedouble))
                return kc_err(KC_EFORMAT, "%s: shared_axes must list axes 1 to %d", where,
                              KC_MAX_RANK);
            o.shared_axes[i] = (int)v->valuedouble;
        }
    }
    return kc_cfg_made(kc_prelu(&o), where, out);
}

static kc_status prelu_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddItemToObject(cfg, "alpha_initializer",
                          kc_initializer_to_json(&l->kernel_init, KC_INIT_ZEROS));
    cJSON_AddItemToObject(cfg, "alpha_regularizer", kc_regularizer_to_json(&l->kernel_reg));
    cJSON_AddNullToObject(cfg, "alpha_constraint");
    if (!l->shared_axes) {
        cJSON_AddNullToObject(cfg, "shared_axes");
    } else {
        cJSON *a = cJSON_AddArrayToObject(cfg, "shared_axes");
        for (int i = 1; i <= KC_MAX_RANK; i++)
            if (l->shared_axes >> i & 1) cJSON_AddItemToArray(a, cJSON_CreateNumber(i));
    }
    return KC_OK;
}

static int prelu_weights(const kc_layer *l, kc_weight_desc *w) {
    w[0] = (kc_weight_desc){"alpha", 0, {0}, 0, l->kernel_size, 1};
    w[0].rank = prelu_shape(l, w[0].dims);
    return 1;
}

const kc_layer_ops kc_prelu_ops = {.type_name = "PReLU",
                                   .base_name = "p_re_lu",
                                   .build = prelu_build,
                                   .init = prelu_init,
                                   .forward = prelu_forward,
                                   .backward = prelu_backward,
                                   .supports_masking = 1,
                                   .io = {prelu_from, prelu_to, prelu_weights}};

kc_layer *kc_prelu(const kc_prelu_opts *opts) {
    kc_prelu_opts o = opts ? *opts : (kc_prelu_opts){0};
    kc_layer *l = kc_layer_new(&kc_prelu_ops);
    if (!l) return NULL;
    l->kernel_init = o.alpha_initializer;
    l->kernel_reg = o.alpha_regularizer;
    for (int i = 0; i < KC_MAX_RANK && o.shared_axes[i]; i++)
        if (o.shared_axes[i] > 0 && o.shared_axes[i] <= KC_MAX_RANK)
            l->shared_axes |= 1 << o.shared_axes[i];
        else
            l->shared_axes |= 1 << (KC_MAX_RANK + 1); /* refused by build */
    return l;
}
