/* pool.c: MaxPooling2D, AveragePooling2D (pool_size, strides = pool_size, padding), and
 * GlobalAveragePooling2D, GlobalMaxPooling2D (keepdims), channels last; Reshape. Batches
 * split over the pool by images. */
#include "../util/isa.h"
#include "layer.h"
#include "../io/config_fields.h"
#include "../ops/ops.h"
#include "../util/threads.h"
#include <math.h>
#include <string.h>

static int is_global_max(const kc_layer *l); /* GlobalMaxPooling2D, not GlobalAveragePooling2D */

static kc_status pool_build(kc_layer *l) {
    char buf[64];
    const char *type = l->ops->type_name;
    if (l->kh <= 0 || l->kw <= 0 || l->sh <= 0 || l->sw <= 0)
        return kc_err(KC_EINVAL,
                      "layer %s (%s): pool_size and strides must be positive, got (%d, %d) and "
                      "(%d, %d)",
                      l->name, type, l->kh, l->kw, l->sh, l->sw);
    if ((unsigned)l->pad_same > 1)
        return kc_err(KC_EINVAL, "layer %s (%s): padding must be KC_VALID or KC_SAME, got %d",
                      l->name, type, l->pad_same);
    if (l->in_shape.rank != 3)
        return kc_err(KC_EINVAL,
                      "layer %s (%s) needs an input of shape (height, width, channels), got %s",
                      l->name, type, kc_shape_str(l->in_shape, buf, sizeof buf));
    int oh, ow;
    kc_window_axis(l->in_shape.dims[0], l->kh, l->sh, l->pad_same, &oh, &l->pad_top);
    kc_window_axis(l->in_shape.dims[1], l->kw, l->sw, l->pad_same, &ow, &l->pad_left);
    if (oh <= 0 || ow <= 0)
        return kc_err(KC_EINVAL,
                      "layer %s (%s): a %dx%d pool does not fit the input %s with padding "
                      "\"valid\"",
                      l->name, type, l->kh, l->kw, kc_shape_str(l->in_shape, buf, sizeof buf));
    l->out_shape = kc_shape3(oh, ow, l->in_shape.dims[2]);
    return KC_OK;
}

extern const kc_layer_ops kc_max_pooling1d_ops, kc_max_pooling2d_ops;
int kc_pool_is_max(const kc_layer *l) {
    return l->ops == &kc_max_pooling2d_ops || l->ops == &kc_max_pooling1d_ops;
}

/* MaxPooling2D keeps the position of each maximum: one int32 per output value */
int64_t kc_pool_scratch(const kc_layer *l, int batch, int parts) {
    return kc_pool_is_max(l) ? (int64_t)batch * l->out_size : 0;
}

typedef struct {
    kc_layer *l;
    const float *x;
    float *y;
    int backward;
    const float *in, *out; /* GlobalMaxPooling2D's backward: the forward's input and output */
} pool_job;

static void pool_range(void *arg, int64_t s0, int64_t s1) {
    const pool_job *j = arg;
    kc_layer *l = j->l;
    kc_window g = kc_layer_window(l);
    int n = (int)(s1 - s0);
    int32_t *index = l->scratch ? (int32_t *)l->scratch + s0 * l->out_size : NULL;
    if (!j->backward) {
        const float *in = j->x + s0 * l->in_size;
        float *out = j->y + s0 * l->out_size;
        if (kc_pool_is_max(l)) kc_max_pool(&g, in, n, out, index);
        else kc_avg_pool(&g, in, n, out);
    } else {
        const float *dout = j->x + s0 * l->out_size;
        float *din = j->y + s0 * l->in_size;
        if (kc_pool_is_max(l)) kc_max_pool_backward(&g, dout, index, n, din);
        else kc_avg_pool_backward(&g, dout, n, din);
    }
}

void kc_pool_forward(kc_layer *l, const float *in, float *out, int batch,
                         const kc_forward_ctx *ctx) {
    pool_job job = {.l = l, .x = in, .y = out};
    kc_parallel_range(batch, 1, l->in_size, pool_range, &job);
}

void kc_pool_backward(kc_layer *l, const float *in, const float *out, float *dout,
                          float *din, int batch, int dout_is_preactivation,
                          const kc_forward_ctx *ctx) {
    if (!din) return;
    pool_job job = {.l = l, .x = dout, .y = din, .backward = 1};
    kc_parallel_range(batch, 1, l->in_size, pool_range, &job);
}

static kc_layer *pool_new(const kc_layer_ops *ops, const kc_pool2d_opts *opts) {
    kc_pool2d_opts o = opts ? *opts : (kc_pool2d_opts){0};
    kc_layer *l = kc_layer_new(ops);
    if (!l) return NULL;
    l->kh = o.pool_size[0] ? o.pool_size[0] : 2;
    l->kw = o.pool_size[1] ? o.pool_size[1] : l->kh;
    /* Keras: strides default to pool_size */
    l->sh = o.strides[0] ? o.strides[0] : l->kh;
    l->sw = o.strides[1] ? o.strides[1] : o.strides[0] ? o.strides[0] : l->kw;
    l->pad_same = (int)o.padding;
    return l;
}

/* MaxPooling2D's and AveragePooling2D's config: the layer make makes */
static kc_status pool_from(const cJSON *cfg, const char *where,
                           kc_layer *(*make)(const kc_pool2d_opts *), kc_layer **out) {
    kc_pool2d_opts o = {{2, 2}, {0, 0}, KC_VALID};
    kc_status st = kc_cfg_int_pair(cfg, "pool_size", where, o.pool_size);
    if (!st) st = kc_cfg_int_pair(cfg, "strides", where, o.strides); /* null: pool_size */
    if (!st) st = kc_cfg_padding(cfg, where, &o.padding);
    if (!st) st = kc_cfg_channels_last(cfg, where);
    return st ? st : kc_cfg_made(make(&o), where, out);
}

static kc_status max_pool_from(const cJSON *cfg, const char *where, kc_layer **out) {
    return pool_from(cfg, where, kc_max_pooling2d_ex, out);
}

static kc_status avg_pool_from(const cJSON *cfg, const char *where, kc_layer **out) {
    return pool_from(cfg, where, kc_average_pooling2d_ex, out);
}

static kc_status pool_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddItemToObject(cfg, "pool_size", kc_cfg_int_list2(l->kh, l->kw));
    cJSON_AddStringToObject(cfg, "padding", l->pad_same ? "same" : "valid");
    cJSON_AddItemToObject(cfg, "strides", kc_cfg_int_list2(l->sh, l->sw));
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    return KC_OK;
}

const kc_layer_ops kc_max_pooling2d_ops = {
    .type_name = "MaxPooling2D",
    .base_name = "max_pooling2d",
    .build = pool_build,
    .init = kc_no_init,
    .forward = kc_pool_forward,
    .backward = kc_pool_backward,
    .scratch_size = kc_pool_scratch,
    .io = {max_pool_from, pool_to}};
const kc_layer_ops kc_average_pooling2d_ops = {
    .type_name = "AveragePooling2D",
    .base_name = "average_pooling2d",
    .build = pool_build,
    .init = kc_no_init,
    .forward = kc_pool_forward,
    .backward = kc_pool_backward,
    .scratch_size = kc_pool_scratch,
    .io = {avg_pool_from, pool_to}};


kc_layer *kc_max_pooling2d_ex(const kc_pool2d_opts *opts) {
    return pool_new(&kc_max_pooling2d_ops, opts);
}
kc_layer *kc_average_pooling2d_ex(const kc_pool2d_opts *opts) {
    return pool_new(&kc_average_pooling2d_ops, opts);
}
kc_layer *kc_max_pooling2d(int pool_size) {
    return pool_new(&kc_max_pooling2d_ops,
                    &(kc_pool2d_opts){.pool_size = {pool_size, pool_size}});
}
kc_layer *kc_average_pooling2d(int pool_size) {
    return pool_new(&kc_average_pooling2d_ops,
                    &(kc_pool2d_opts){.pool_size = {pool_size, pool_size}});
}

/* ---- GlobalAveragePooling2D, GlobalMaxPooling2D: (h, w, c) -> (c), or (1, 1, c) with
 * keepdims, the mean or the maximum over h and w ---- */

static kc_status gap_build(kc_layer *l) {
    kc_status st = kc_layer_need_image(l);
    if (st) return st;
    if ((unsigned)l->keepdims > 1)
        return kc_err(KC_EINVAL, "layer %s (%s): keepdims must be 0 or 1, got %d", l->name,
                      l->ops->type_name, l->keepdims);
    int c = l->in_shape.dims[2];
    l->out_shape = l->keepdims ? kc_shape3(1, 1, c) : kc_shape1(c);
    return KC_OK;
}

KC_CLONES static void gap_range(void *arg, int64_t s0, int64_t s1) {
    const pool_job *j = arg;
    const kc_layer *l = j->l;
    if (is_global_max(l)) { /* scratch: c counts per sample */
        int64_t c = l->out_size, cells = l->in_size / c;
        int n = (int)(s1 - s0);
        if (!j->backward)
            kc_global_max_pool(j->x + s0 * l->in_size, n, cells, (int)c, j->y + s0 * c);
        else
            kc_global_max_pool_backward(j->in + s0 * l->in_size, j->out + s0 * c, j->x + s0 * c,
                                        n, cells, (int)c, l->scratch + s0 * c,
                                        j->y + s0 * l->in_size);
        return;
    }
    int64_t c = l->out_size, cells = l->in_size / c;
    float inv = 1.0f / (float)cells;
    for (int64_t s = s0; s < s1; s++) {
        if (!j->backward) {
            const float *x = j->x + s * l->in_size;
            float *y = j->y + s * c;
            memset(y, 0, sizeof(float) * (size_t)c);
            for (int64_t p = 0; p < cells; p++)
#pragma omp simd
                for (int64_t ch = 0; ch < c; ch++) y[ch] += x[p * c + ch];
            for (int64_t ch = 0; ch < c; ch++) y[ch] *= inv;
        } else {
            const float *dy = j->x + s * c;
            float *dx = j->y + s * l->in_size;
            for (int64_t p = 0; p < cells; p++)
#pragma omp simd
                for (int64_t ch = 0; ch < c; ch++) dx[p * c + ch] = dy[ch] * inv;
        }
    }
}

static void gap_forward(kc_layer *l, const float *in, float *out, int batch,
                        const kc_forward_ctx *ctx) {
    pool_job job = {.l = l, .x = in, .y = out};
    kc_parallel_range(batch, 1, l->in_size, gap_range, &job);
}

static void gap_backward(kc_layer *l, const float *in, const float *out, float *dout,
                         float *din, int batch, int dout_is_preactivation,
                         const kc_forward_ctx *ctx) {
    if (!din) return;
    pool_job job = {.l = l, .x = dout, .y = din, .backward = 1, .in = in, .out = out};
    kc_parallel_range(batch, 1, l->in_size, gap_range, &job);
}

/* GlobalMaxPooling2D's backward counts each channel's maxima: c floats per sample */
static int64_t gmp_scratch(const kc_layer *l, int batch, int parts) {
    return (int64_t)batch * l->out_size;
}

static kc_layer *global_new(const kc_layer_ops *ops, const kc_global_pool2d_opts *opts) {
    kc_layer *l = kc_layer_new(ops);
    if (l && opts) l->keepdims = opts->keepdims;
    return l;
}

/* GlobalAveragePooling2D's and GlobalMaxPooling2D's config: the layer make makes */
static kc_status global_from(const cJSON *cfg, const char *where,
                             kc_layer *(*make)(const kc_global_pool2d_opts *), kc_layer **out) {
    kc_status st = kc_cfg_channels_last(cfg, where);
    if (st) return st;
    const cJSON *k = kc_cfg_field(cfg, "keepdims");
    if (k && !cJSON_IsNull(k) && !cJSON_IsBool(k))
        return kc_err(KC_EFORMAT, "%s: keepdims is not true or false", where);
    return kc_cfg_made(make(&(kc_global_pool2d_opts){.keepdims = cJSON_IsTrue(k)}), where, out);
}

static kc_status gap_from(const cJSON *cfg, const char *where, kc_layer **out) {
    return global_from(cfg, where, kc_global_average_pooling2d_ex, out);
}

static kc_status gmp_from(const cJSON *cfg, const char *where, kc_layer **out) {
    return global_from(cfg, where, kc_global_max_pooling2d_ex, out);
}

static kc_status global_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    cJSON_AddBoolToObject(cfg, "keepdims", l->keepdims);
    return KC_OK;
}

const kc_layer_ops kc_global_average_pooling2d_ops = {
    .type_name = "GlobalAveragePooling2D",
    .base_name = "global_average_pooling2d",
    .build = gap_build,
    .init = kc_no_init,
    .forward = gap_forward,
    .backward = gap_backward,
    .io = {gap_from, global_to}};

const kc_layer_ops kc_global_max_pooling2d_ops = {
    .type_name = "GlobalMaxPooling2D",
    .base_name = "global_max_pooling2d",
    .build = gap_build,
    .init = kc_no_init,
    .forward = gap_forward,
    .backward = gap_backward,
    .scratch_size = gmp_scratch,
    .io = {gmp_from, global_to}};

static int is_global_max(const kc_layer *l) { return l->ops == &kc_global_max_pooling2d_ops; }

kc_layer *kc_global_average_pooling2d(void) {
    return kc_layer_new(&kc_global_average_pooling2d_ops);
}
kc_layer *kc_global_average_pooling2d_ex(const kc_global_pool2d_opts *opts) {
    return global_new(&kc_global_average_pooling2d_ops, opts);
}
kc_layer *kc_global_max_pooling2d(void) { return kc_layer_new(&kc_global_max_pooling2d_ops); }
kc_layer *kc_global_max_pooling2d_ex(const kc_global_pool2d_opts *opts) {
    return global_new(&kc_global_max_pooling2d_ops, opts);
}

/* ---- Reshape(target_shape): the same values, another per-sample shape (one dim may be -1) --- */

static kc_status reshape_build(kc_layer *l) {
    char a[64], b[64];
    kc_shape t = l->out_shape; /* the target, set by the constructor */
    int unknown = -1;
    int64_t known = 1;
    if (t.rank < 1 || t.rank > KC_MAX_RANK)
        return kc_err(KC_EINVAL, "layer %s (Reshape): the target shape needs 1 to %d dims",
                      l->name, KC_MAX_RANK);
    for (int i = 0; i < t.rank; i++) {
        if (t.dims[i] == -1 && unknown < 0) unknown = i;
        else if (t.dims[i] > 0) known *= t.dims[i];
        else
            return kc_err(KC_EINVAL,
                          "layer %s (Reshape): target dims must be positive, with at most one "
                          "-1; got %s",
                          l->name, kc_shape_str(t, a, sizeof a));
    }
    if (unknown >= 0 && l->in_size % known == 0) t.dims[unknown] = (int)(l->in_size / known);
    if (kc_shape_size(t) != l->in_size || (unknown >= 0 && t.dims[unknown] <= 0))
        return kc_err(KC_EINVAL,
                      "layer %s (Reshape): cannot reshape an input of shape %s (%lld values) to %s",
                      l->name, kc_shape_str(l->in_shape, a, sizeof a), (long long)l->in_size,
                      kc_shape_str(l->out_shape, b, sizeof b));
    l->out_shape = t;
    return KC_OK;
}

static kc_status reshape_from(const cJSON *cfg, const char *where, kc_layer **out) {
    const cJSON *t = kc_cfg_field(cfg, "target_shape");
    int n = cJSON_GetArraySize(t);
    if (!cJSON_IsArray(t) || n < 1 || n > KC_MAX_RANK)
        return kc_err(KC_EFORMAT, "%s: target_shape is missing or not a list of 1 to %d dims",
                      where, KC_MAX_RANK);
    kc_shape s = {n, {0}};
    for (int i = 0; i < n; i++) {
        const cJSON *d = cJSON_GetArrayItem(t, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < -1 || d->valuedouble > 1e9 ||
            d->valuedouble != floor(d->valuedouble) || d->valuedouble == 0)
            return kc_err(KC_EFORMAT, "%s: target_shape holds %s (positive whole numbers or -1 "
                                      "only)", where, cJSON_IsNumber(d) ? "a bad number" : "a non-number");
        s.dims[i] = (int)d->valuedouble;
    }
    return kc_cfg_made(kc_reshape(s), where, out);
}

static kc_status reshape_to(const kc_layer *l, cJSON *cfg) {
    /* the target as built (a -1 resolved): the same layer */
    cJSON_AddItemToObject(cfg, "target_shape", cJSON_CreateIntArray(l->out_shape.dims, l->out_shape.rank));
    return KC_OK;
}

const kc_layer_ops kc_reshape_ops = {
    .type_name = "Reshape",
    .base_name = "reshape",
    .build = reshape_build,
    .init = kc_no_init,
    .forward = kc_copy_forward,
    .backward = kc_copy_backward,
    .io = {reshape_from, reshape_to}};

kc_layer *kc_reshape(kc_shape target_shape) {
    kc_layer *l = kc_layer_new(&kc_reshape_ops);
    if (l) l->out_shape = target_shape;
    return l;
}
