/* preprocessing.c: Keras's preprocessing layers as layers of the model: Rescaling,
 * Normalization (with adapt), Resizing, CenterCrop, and the augmentation layers RandomFlip,
 * RandomRotation, RandomTranslation, RandomZoom and RandomContrast, which draw each image's
 * parameters in training steps only (from the layer's seed and the step: reproducible) and are
 * the identity otherwise. The kernels are ops/image.c's; gradients pass through every transform
 * (the random parameters are constants of the step). Options live in l->prep. */
#include "layer.h"
#include "../io/config_fields.h"
#include "../ops/ops.h"
#include "../util/threads.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct kc_prep {
    float scale, offset; /* Rescaling */
    /* Normalization: the axes as given, the kept per-sample axes once built (bit mask), the
     * stats' shape; mean and variance given in the config (n_cfg values, 1 or n_stats) */
    int axes[KC_MAX_RANK], n_axes, axis_none, invert;
    float *mean_cfg, *var_cfg;
    float *adapted; /* adapt's mean and variance before the model made the weights (init) */
    int64_t n_cfg, n_stats;
    int keep, stat_rank, cfg_rank;
    int64_t stat_dims[KC_MAX_RANK];
    /* Resizing and CenterCrop: the target, the virtual source (crop / pad window) once built */
    int height, width, nearest, crop_aspect, pad_aspect, crops;
    float fill_value;
    int y0, x0, vh, vw;
    /* augmentation */
    int flip_h, flip_v, fill_mode, width_none, has_seed;
    int scalar[2]; /* the factor was a number (written back as one) */
    float lo[2], hi[2], vrange[2];
    int64_t seed;
} kc_prep;

extern const kc_layer_ops kc_rescaling_ops, kc_normalization_ops, kc_resizing_ops,
    kc_center_crop_ops, kc_random_flip_ops, kc_random_rotation_ops, kc_random_translation_ops,
    kc_random_zoom_ops, kc_random_contrast_ops;

static void prep_destroy(kc_layer *l) {
    if (!l->prep) return;
    free(l->prep->mean_cfg);
    free(l->prep->var_cfg);
    free(l->prep->adapted);
    free(l->prep);
}

static kc_layer *prep_new(const kc_layer_ops *ops) {
    kc_layer *l = kc_layer_new(ops);
    if (!l) return NULL;
    l->prep = calloc(1, sizeof *l->prep);
    if (!l->prep) {
        kc_err(KC_ENOMEM, "out of memory creating a %s layer", ops->type_name);
        free(l);
        return NULL;
    }
    return l;
}

typedef struct {
    kc_layer *l;
    const float *x, *x2; /* x2: the forward's input where a backward needs it */
    float *y;
    uint64_t key;
    int backward;
} prep_job;

static void run(kc_layer *l, void (*fn)(void *, int64_t, int64_t), const float *x,
                const float *x2, float *y, int batch, uint64_t key, int backward) {
    prep_job job = {l, x, x2, y, key, backward};
    kc_parallel_range(batch, 1, l->out_size, fn, &job);
}

/* ---- Rescaling ---- */

static void rescale_forward(kc_layer *l, const float *in, float *out, int batch,
                            const kc_forward_ctx *ctx) {
    float s = l->prep->scale, o = l->prep->offset;
    for (int64_t i = 0; i < (int64_t)batch * l->out_size; i++) out[i] = in[i] * s + o;
}

static void rescale_backward(kc_layer *l, const float *in, const float *out, float *dout,
                             float *din, int batch, int pre, const kc_forward_ctx *ctx) {
    if (!din) return;
    float s = l->prep->scale;
    for (int64_t i = 0; i < (int64_t)batch * l->out_size; i++) din[i] = dout[i] * s;
}

static kc_status number_field(const cJSON *cfg, const char *name, const char *where, int required,
                              double *out) {
    int r = kc_cfg_num(cfg, name, out);
    if (r < 0 || (r == 0 && required))
        return kc_err(KC_EFORMAT, "%s: %s is %s", where, name,
                      r < 0 ? "not a number (kerac has scalar values only)" : "missing");
    return KC_OK;
}

static kc_status rescale_from(const cJSON *cfg, const char *where, kc_layer **out) {
    double scale = 1, offset = 0;
    kc_status st = number_field(cfg, "scale", where, 1, &scale);
    if (!st) st = number_field(cfg, "offset", where, 0, &offset);
    return st ? st : kc_cfg_made(kc_rescaling((float)scale, (float)offset), where, out);
}

static kc_status rescale_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "scale", kc_json_float(l->prep->scale));
    cJSON_AddNumberToObject(cfg, "offset", kc_json_float(l->prep->offset));
    return KC_OK;
}

const kc_layer_ops kc_rescaling_ops = {.type_name = "Rescaling",
                                       .base_name = "rescaling",
                                       .build = kc_same_shape_build,
                                       .init = kc_no_init,
                                       .forward = rescale_forward,
                                       .backward = rescale_backward,
                                       .supports_masking = 1,
                                       .destroy = prep_destroy,
                                       .io = {rescale_from, rescale_to}};

kc_layer *kc_rescaling(float scale, float offset) {
    kc_layer *l = prep_new(&kc_rescaling_ops);
    if (l) l->prep->scale = scale, l->prep->offset = offset;
    return l;
}

/* ---- Normalization ---- */

#define NORM_EPSILON 1e-7f /* backend.epsilon() */

static kc_status norm_build(kc_layer *l) {
    kc_prep *p = l->prep;
    int rank = l->in_shape.rank;
    p->keep = 0;
    if (!p->axis_none) {
        int n = p->n_axes ? p->n_axes : 1;
        for (int i = 0; i < n; i++) {
            int a = p->n_axes ? p->axes[i] : -1;
            int d = a > 0 ? a - 1 : rank + a; /* Keras's axes count the batch as 0 */
            if (a == 0 || d < 0 || d >= rank)
                return kc_err(KC_EINVAL,
                              "layer %s (Normalization): axis %d is out of range for inputs of "
                              "rank %d (the batch axis 0 cannot be kept)",
                              l->name, a, rank + 1);
            p->keep |= 1 << d;
        }
    }
    p->n_stats = 1;
    p->stat_rank = 0;
    for (int d = 0; d < rank; d++)
        if (p->keep >> d & 1) {
            p->stat_dims[p->stat_rank++] = l->in_shape.dims[d];
            p->n_stats *= l->in_shape.dims[d];
        }
    /* given values broadcast as Keras aligns them, from the right: 1 value, or one per
     * position of the last k kept axes (p->cfg_rank = k) */
    p->cfg_rank = 0;
    if (p->n_cfg > 1) {
        int64_t tail = 1;
        int k = 0;
        while (k < p->stat_rank && tail < p->n_cfg) tail *= p->stat_dims[p->stat_rank - ++k];
        if (tail != p->n_cfg)
            return kc_err(KC_EINVAL,
                          "layer %s (Normalization): mean and variance have %lld values; the "
                          "kept axes need 1 or %lld (or one per position of the last kept axes)",
                          l->name, (long long)p->n_cfg, (long long)p->n_stats);
        p->cfg_rank = k;
    }
    l->out_shape = l->in_shape;
    l->param_count = p->n_cfg ? 0 : 2 * p->n_stats + 1; /* mean, variance, count */
    l->trainable_count = 0;
    return KC_OK;
}

static void norm_init(kc_layer *l, kc_rng *rng) {
    if (l->prep->n_cfg) return;
    int64_t n = l->prep->n_stats;
    for (int64_t i = 0; i < n; i++) l->kernel[i] = 0.0f, l->kernel[n + i] = 1.0f;
    l->kernel[2 * n] = 0.0f;
    if (l->prep->adapted) { /* adapted before the weights existed */
        memcpy(l->kernel, l->prep->adapted, sizeof(float) * 2 * (size_t)n);
        free(l->prep->adapted);
        l->prep->adapted = NULL;
    }
}

/* the stats' index of value e of a sample */
static int64_t stat_index(const kc_layer *l, int64_t e) {
    const kc_prep *p = l->prep;
    int64_t idx = 0, mul = 1;
    for (int d = l->in_shape.rank - 1; d >= 0; d--) {
        int64_t n = l->in_shape.dims[d], i = e % n;
        e /= n;
        if (p->keep >> d & 1) idx += i * mul, mul *= n;
    }
    return idx;
}

static void norm_stats(const kc_layer *l, int64_t e, float *mean, float *div) {
    const kc_prep *p = l->prep;
    int64_t j = p->n_cfg == 1 ? 0 : p->n_cfg ? stat_index(l, e) % p->n_cfg : stat_index(l, e);
    const float *m = p->n_cfg ? p->mean_cfg : l->kernel;
    const float *v = p->n_cfg ? p->var_cfg : l->kernel + p->n_stats;
    float sd = sqrtf(v[j]);
    *mean = m[j];
    *div = sd > NORM_EPSILON ? sd : NORM_EPSILON;
}

static void norm_forward(kc_layer *l, const float *in, float *out, int batch,
                         const kc_forward_ctx *ctx) {
    int64_t n = l->in_size;
    for (int64_t e = 0; e < n; e++) {
        float mean, div;
        norm_stats(l, e, &mean, &div);
        for (int b = 0; b < batch; b++) {
            float x = in[(int64_t)b * n + e];
            out[(int64_t)b * n + e] = l->prep->invert ? mean + x * div : (x - mean) / div;
        }
    }
}

static void norm_backward(kc_layer *l, const float *in, const float *out, float *dout,
                          float *din, int batch, int pre, const kc_forward_ctx *ctx) {
    if (!din) return;
    int64_t n = l->in_size;
    for (int64_t e = 0; e < n; e++) {
        float mean, div;
        norm_stats(l, e, &mean, &div);
        for (int b = 0; b < batch; b++) {
            float g = dout[(int64_t)b * n + e];
            din[(int64_t)b * n + e] = l->prep->invert ? g * div : g / div;
        }
    }
}

kc_status kc_normalization_adapt(kc_layer *l, const kc_dataset *data) {
    char a[64], b[64];
    if (!l || l->ops != &kc_normalization_ops)
        return kc_err(KC_EINVAL, "kc_normalization_adapt needs a Normalization layer, got %s",
                      l ? l->ops->type_name : "NULL");
    if (!data || !data->x || data->count <= 0 || data->n_inputs)
        return kc_err(KC_EINVAL, "layer %s (Normalization): adapt needs a dataset with x and at "
                                 "least one sample", l->name);
    kc_prep *p = l->prep;
    if (p->n_cfg)
        return kc_err(KC_EINVAL, "layer %s (Normalization): its mean and variance were given; "
                                 "it cannot be adapted", l->name);
    if (!l->built)
        return kc_err(KC_EINVAL, "layer %s (Normalization): adapt needs the layer in a built "
                                 "model (its input shape known)", l->name);
    int same = data->x_shape.rank == l->in_shape.rank;
    for (int d = 0; same && d < l->in_shape.rank; d++)
        same = data->x_shape.dims[d] == l->in_shape.dims[d];
    if (!same)
        return kc_err(KC_EINVAL, "layer %s (Normalization): adapt data has samples of shape %s, "
                                 "the layer takes %s", l->name,
                      kc_shape_str(data->x_shape, a, sizeof a),
                      kc_shape_str(l->in_shape, b, sizeof b));
    if (data->x_dtype != KC_FLOAT32 && data->x_dtype != KC_UINT8)
        return kc_err(KC_EINVAL, "layer %s (Normalization): adapt takes float32 or uint8 data",
                      l->name);
    int64_t n = l->in_size, ns = p->n_stats;
    double *sum = calloc((size_t)ns * 2, sizeof(double)), *sq = sum + ns;
    int64_t *where = malloc(sizeof(int64_t) * (size_t)n);
    if (!sum || !where) {
        free(sum);
        free(where);
        return kc_err(KC_ENOMEM, "layer %s (Normalization): out of memory adapting", l->name);
    }
    for (int64_t e = 0; e < n; e++) where[e] = stat_index(l, e);
    float xs = data->x_scale ? data->x_scale : 1.0f;
    /* numpy's mean, then the mean of squared deviations (np.var: the population variance) */
    for (int pass = 0; pass < 2; pass++)
        for (int64_t s = 0; s < data->count; s++)
            for (int64_t e = 0; e < n; e++) {
                int64_t i = s * n + e;
                float x = data->x_dtype == KC_UINT8 ? ((const uint8_t *)data->x)[i] * xs
                                                    : ((const float *)data->x)[i];
                if (!pass) sum[where[e]] += x;
                else {
                    double d = x - sum[where[e]];
                    sq[where[e]] += d * d;
                }
                if (!pass && s == data->count - 1 && e == n - 1) /* the means, once */
                    for (int64_t j = 0; j < ns; j++)
                        sum[j] /= (double)data->count * (double)(n / ns);
            }
    /* into the weights, or kept for init when the model has not made them yet */
    float *dst = l->kernel;
    if (!dst) {
        if (!p->adapted) p->adapted = malloc(sizeof(float) * 2 * (size_t)ns);
        dst = p->adapted;
    }
    if (dst)
        for (int64_t j = 0; j < ns; j++) {
            dst[j] = (float)sum[j];
            dst[ns + j] = (float)(sq[j] / ((double)data->count * (double)(n / ns)));
        }
    free(sum);
    free(where);
    return dst ? KC_OK
               : kc_err(KC_ENOMEM, "layer %s (Normalization): out of memory adapting", l->name);
}

/* a number or (nested) list of numbers, flattened into a malloc'd array */
static int count_numbers(const cJSON *v) {
    if (cJSON_IsNumber(v)) return 1;
    if (!cJSON_IsArray(v)) return -1;
    int n = 0;
    for (const cJSON *e = v->child; e; e = e->next) {
        int k = count_numbers(e);
        if (k < 0) return -1;
        n += k;
    }
    return n;
}
static void flatten_numbers(const cJSON *v, float *out, int *at) {
    if (cJSON_IsNumber(v)) out[(*at)++] = (float)v->valuedouble;
    else
        for (const cJSON *e = v->child; e; e = e->next) flatten_numbers(e, out, at);
}

static kc_status norm_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_normalization_opts o = {0};
    const cJSON *axis = kc_cfg_field(cfg, "axis");
    if (!axis || cJSON_IsNull(axis)) {
        if (axis) o.axis_none = 1;
    } else if (cJSON_IsNumber(axis)) {
        o.axes[0] = axis->valueint, o.n_axes = 1;
    } else if (cJSON_IsArray(axis) && cJSON_GetArraySize(axis) <= KC_MAX_RANK) {
        for (const cJSON *e = axis->child; e; e = e->next) {
            if (!cJSON_IsNumber(e))
                return kc_err(KC_EFORMAT, "%s: axis must hold ints", where);
            o.axes[o.n_axes++] = e->valueint;
        }
        if (!o.n_axes) o.axis_none = 1; /* Keras writes axis=None as [] */
    } else
        return kc_err(KC_EFORMAT, "%s: axis must be an int, a list of ints or null", where);
    const cJSON *inv = kc_cfg_field(cfg, "invert");
    if (inv && !cJSON_IsNull(inv)) {
        if (!cJSON_IsBool(inv)) return kc_err(KC_EFORMAT, "%s: invert is not a bool", where);
        o.invert = cJSON_IsTrue(inv);
    }
    const cJSON *m = kc_cfg_field(cfg, "mean"), *v = kc_cfg_field(cfg, "variance");
    int has_m = m && !cJSON_IsNull(m), has_v = v && !cJSON_IsNull(v);
    if (has_m != has_v)
        return kc_err(KC_EFORMAT, "%s: mean and variance must both be given or both be null",
                      where);
    float *buf = NULL;
    if (has_m) {
        int nm = count_numbers(m), nv = count_numbers(v);
        if (nm <= 0 || nm != nv)
            return kc_err(KC_EFORMAT, "%s: mean and variance must be numbers or lists of the "
                                      "same numbers of values", where);
        buf = malloc(sizeof(float) * 2 * (size_t)nm);
        if (!buf) return kc_err(KC_ENOMEM, "%s: out of memory", where);
        int at = 0;
        flatten_numbers(m, buf, &at);
        flatten_numbers(v, buf, &at);
        o.mean = buf, o.variance = buf + nm, o.n_mean = nm;
    }
    kc_status st = kc_cfg_made(kc_normalization(&o), where, out);
    free(buf);
    return st;
}

/* values[0..n) as a nested list of dims[0..rank) */
static cJSON *nested(const float *v, const int64_t *dims, int rank) {
    if (!rank) return cJSON_CreateNumber(kc_json_float(v[0]));
    cJSON *a = cJSON_CreateArray();
    int64_t inner = 1;
    for (int d = 1; d < rank; d++) inner *= dims[d];
    for (int64_t i = 0; i < dims[0]; i++)
        cJSON_AddItemToArray(a, nested(v + i * inner, dims + 1, rank - 1));
    return a;
}

static kc_status norm_to(const kc_layer *l, cJSON *cfg) {
    const kc_prep *p = l->prep;
    cJSON *axes = cJSON_CreateArray();
    if (!p->axis_none) {
        if (!p->n_axes) cJSON_AddItemToArray(axes, cJSON_CreateNumber(-1));
        for (int i = 0; i < p->n_axes; i++)
            cJSON_AddItemToArray(axes, cJSON_CreateNumber(p->axes[i]));
    }
    cJSON_AddItemToObject(cfg, "axis", axes);
    cJSON_AddBoolToObject(cfg, "invert", p->invert);
    if (!p->n_cfg) {
        cJSON_AddNullToObject(cfg, "mean");
        cJSON_AddNullToObject(cfg, "variance");
    } else {
        const int64_t *dims = p->stat_dims + (p->stat_rank - p->cfg_rank);
        cJSON_AddItemToObject(cfg, "mean", nested(p->mean_cfg, dims, p->cfg_rank));
        cJSON_AddItemToObject(cfg, "variance", nested(p->var_cfg, dims, p->cfg_rank));
    }
    return KC_OK;
}

static int norm_weights(const kc_layer *l, kc_weight_desc *w) {
    const kc_prep *p = l->prep;
    if (p->n_cfg) return 0;
    int64_t n = p->n_stats;
    w[0] = (kc_weight_desc){"mean", p->stat_rank, {0}, 0, n, 0};
    w[1] = (kc_weight_desc){"variance", p->stat_rank, {0}, n, n, 0};
    for (int d = 0; d < p->stat_rank; d++) w[0].dims[d] = w[1].dims[d] = p->stat_dims[d];
    w[2] = (kc_weight_desc){"count", 0, {0}, 2 * n, 1, 0};
    return 3;
}

const kc_layer_ops kc_normalization_ops = {.type_name = "Normalization",
                                           .base_name = "normalization",
                                           .build = norm_build,
                                           .init = norm_init,
                                           .forward = norm_forward,
                                           .backward = norm_backward,
                                           .supports_masking = 1,
                                           .destroy = prep_destroy,
                                           .io = {norm_from, norm_to, norm_weights}};

kc_layer *kc_normalization(const kc_normalization_opts *opts) {
    kc_normalization_opts o = opts ? *opts : (kc_normalization_opts){0};
    kc_layer *l = prep_new(&kc_normalization_ops);
    if (!l) return NULL;
    kc_prep *p = l->prep;
    if (o.n_axes < 0 || o.n_axes > KC_MAX_RANK || (o.n_mean && (!o.mean || !o.variance)) ||
        o.n_mean < 0) {
        kc_err(KC_EINVAL, "kc_normalization: n_axes must be in [0, %d], and n_mean > 0 needs "
                          "mean and variance", KC_MAX_RANK);
        kc_layer_release(l);
        return NULL;
    }
    memcpy(p->axes, o.axes, sizeof p->axes);
    p->n_axes = o.n_axes;
    p->axis_none = o.axis_none;
    p->invert = o.invert;
    if (o.n_mean) {
        p->mean_cfg = malloc(sizeof(float) * (size_t)o.n_mean);
        p->var_cfg = malloc(sizeof(float) * (size_t)o.n_mean);
        if (!p->mean_cfg || !p->var_cfg) {
            kc_err(KC_ENOMEM, "out of memory creating a Normalization layer");
            kc_layer_release(l);
            return NULL;
        }
        memcpy(p->mean_cfg, o.mean, sizeof(float) * (size_t)o.n_mean);
        memcpy(p->var_cfg, o.variance, sizeof(float) * (size_t)o.n_mean);
        p->n_cfg = o.n_mean;
    }
    return l;
}

/* ---- Resizing and CenterCrop: a virtual source window, resized ---- */

/* Keras's crop_to_aspect_ratio / smart_resize window, or pad_to_aspect_ratio's padding */
static void aspect_window(kc_prep *p, int h, int w, int crop) {
    int th = p->height, tw = p->width;
    p->y0 = p->x0 = 0, p->vh = h, p->vw = w;
    if (crop) {
        int ch = (int)((double)w * th / tw), cw = (int)((double)h * tw / th);
        ch = ch < h ? ch : h, cw = cw < w ? cw : w;
        ch = ch > 1 ? ch : 1, cw = cw > 1 ? cw : 1;
        p->y0 = (int)((double)(h - ch) / 2), p->x0 = (int)((double)(w - cw) / 2);
        p->vh = ch, p->vw = cw;
    } else {
        int ph = (int)((double)w * th / tw), pw = (int)((double)h * tw / th);
        ph = ph > h ? ph : h, pw = pw > w ? pw : w;
        int hs = (int)((double)(ph - h) / 2), ws = (int)((double)(pw - w) / 2);
        if (hs > 0) p->y0 = -hs, p->vh = h + 2 * hs; /* jax pads one axis, height first */
        else if (ws > 0) p->x0 = -ws, p->vw = w + 2 * ws;
    }
}

static kc_status resize_build(kc_layer *l) {
    kc_status st = kc_layer_need_image(l);
    if (st) return st;
    kc_prep *p = l->prep;
    const int *d = l->in_shape.dims;
    if (p->height <= 0 || p->width <= 0 || p->height > 1 << 20 || p->width > 1 << 20)
        return kc_err(KC_EINVAL, "layer %s (%s): height and width must be in [1, 2^20], got "
                                 "(%d, %d)", l->name, l->ops->type_name, p->height, p->width);
    if (p->nearest < 0)
        return kc_err(KC_EINVAL, "layer %s (Resizing): interpolation must be \"bilinear\" or "
                                 "\"nearest\"", l->name);
    if (p->crop_aspect && p->pad_aspect)
        return kc_err(KC_EINVAL, "layer %s (Resizing): only one of crop_to_aspect_ratio and "
                                 "pad_to_aspect_ratio can be set", l->name);
    p->crops = 0;
    if (l->ops == &kc_center_crop_ops) {
        if (d[0] >= p->height && d[1] >= p->width) { /* a plain crop */
            p->crops = 1;
            p->y0 = (d[0] - p->height) / 2, p->x0 = (d[1] - p->width) / 2;
            p->vh = p->height, p->vw = p->width;
        } else
            aspect_window(p, d[0], d[1], 1); /* smart_resize */
    } else if (p->crop_aspect || p->pad_aspect)
        aspect_window(p, d[0], d[1], p->crop_aspect);
    else
        p->y0 = p->x0 = 0, p->vh = d[0], p->vw = d[1];
    l->out_shape = kc_shape3(p->height, p->width, d[2]);
    l->param_count = 0;
    return KC_OK;
}

static void resize_range(void *arg, int64_t s0, int64_t s1) {
    const prep_job *j = arg;
    const kc_layer *l = j->l;
    const kc_prep *p = l->prep;
    const int *d = l->in_shape.dims;
    int n = (int)(s1 - s0);
    if (p->crops) {
        if (!j->backward)
            kc_shift2d(j->x + s0 * l->in_size, n, d[0], d[1], d[2], j->y + s0 * l->out_size,
                       p->height, p->width, -p->y0, -p->x0);
        else
            kc_shift2d(j->x + s0 * l->out_size, n, p->height, p->width, d[2],
                       j->y + s0 * l->in_size, d[0], d[1], p->y0, p->x0);
    } else if (!j->backward)
        kc_resize2d(j->x + s0 * l->in_size, n, d[0], d[1], d[2], p->y0, p->x0, p->vh, p->vw,
                    p->fill_value, p->height, p->width, !p->nearest, j->y + s0 * l->out_size);
    else
        kc_resize2d_backward(j->x + s0 * l->out_size, n, d[0], d[1], d[2], p->y0, p->x0, p->vh,
                             p->vw, p->height, p->width, !p->nearest, j->y + s0 * l->in_size);
}

static void resize_forward(kc_layer *l, const float *in, float *out, int batch,
                           const kc_forward_ctx *ctx) {
    run(l, resize_range, in, NULL, out, batch, 0, 0);
}

static void resize_backward(kc_layer *l, const float *in, const float *out, float *dout,
                            float *din, int batch, int pre, const kc_forward_ctx *ctx) {
    if (din) run(l, resize_range, dout, NULL, din, batch, 0, 1);
}

static kc_status bool_field(const cJSON *cfg, const char *name, const char *where, int *out) {
    const cJSON *v = kc_cfg_field(cfg, name);
    if (!v || cJSON_IsNull(v)) return KC_OK;
    if (!cJSON_IsBool(v)) return kc_err(KC_EFORMAT, "%s: %s is not a bool", where, name);
    *out = cJSON_IsTrue(v);
    return KC_OK;
}

static kc_status string_field(const cJSON *cfg, const char *name, const char *where,
                              const char **out) {
    const cJSON *v = kc_cfg_field(cfg, name);
    if (!v || cJSON_IsNull(v)) return KC_OK;
    if (!cJSON_IsString(v)) return kc_err(KC_EFORMAT, "%s: %s is not a string", where, name);
    *out = v->valuestring;
    return KC_OK;
}

static kc_status interpolation_field(const cJSON *cfg, const char *where, const char **out) {
    kc_status st = string_field(cfg, "interpolation", where, out);
    if (!st && *out && strcmp(*out, "bilinear") && strcmp(*out, "nearest"))
        return kc_err(KC_EFORMAT,
                      "%s: interpolation '%s' is not supported (kerac has bilinear, nearest)",
                      where, *out);
    return st;
}

static kc_status resize_from(const cJSON *cfg, const char *where, kc_layer **out) {
    int hw[2] = {0, 0}, antialias = 0;
    kc_resizing_opts o = {0};
    const char *fill_mode = NULL;
    double fill = 0;
    kc_status st = kc_cfg_count(cfg, "height", where, &hw[0]);
    if (!st) st = kc_cfg_count(cfg, "width", where, &hw[1]);
    if (!st) st = interpolation_field(cfg, where, &o.interpolation);
    if (!st) st = bool_field(cfg, "crop_to_aspect_ratio", where, &o.crop_to_aspect_ratio);
    if (!st) st = bool_field(cfg, "pad_to_aspect_ratio", where, &o.pad_to_aspect_ratio);
    if (!st) st = bool_field(cfg, "antialias", where, &antialias);
    if (!st) st = string_field(cfg, "fill_mode", where, &fill_mode);
    if (!st) st = number_field(cfg, "fill_value", where, 0, &fill);
    if (!st) st = kc_cfg_channels_last(cfg, where);
    if (st) return st;
    if (antialias)
        return kc_err(KC_EFORMAT, "%s: antialias=True is not supported (kerac resizes without "
                                  "antialiasing, Keras's default)", where);
    if (fill_mode && strcmp(fill_mode, "constant"))
        return kc_err(KC_EFORMAT, "%s: fill_mode '%s' is not supported (Keras's Resizing takes "
                                  "constant only)", where, fill_mode);
    if (o.crop_to_aspect_ratio && o.pad_to_aspect_ratio)
        return kc_err(KC_EFORMAT, "%s: only one of crop_to_aspect_ratio and pad_to_aspect_ratio "
                                  "can be true", where);
    o.fill_value = (float)fill;
    return kc_cfg_made(kc_resizing(hw[0], hw[1], &o), where, out);
}

/* the config forms: Keras 3's; in a legacy .h5 (kc_config_writing_legacy) tf.keras 2's, which
 * has no data_format on these classes and fewer options */
static kc_status resize_to(const kc_layer *l, cJSON *cfg) {
    const kc_prep *p = l->prep;
    int legacy = kc_config_writing_legacy();
    cJSON_AddNumberToObject(cfg, "height", p->height);
    cJSON_AddNumberToObject(cfg, "width", p->width);
    if (l->ops == &kc_resizing_ops) {
        cJSON_AddStringToObject(cfg, "interpolation", p->nearest ? "nearest" : "bilinear");
        cJSON_AddBoolToObject(cfg, "crop_to_aspect_ratio", p->crop_aspect);
        /* tf.keras 2's Resizing has none of these: a legacy .h5 names them only when set */
        if (legacy && !p->pad_aspect && p->fill_value == 0) return KC_OK;
        cJSON_AddBoolToObject(cfg, "pad_to_aspect_ratio", p->pad_aspect);
        cJSON_AddStringToObject(cfg, "fill_mode", "constant");
        cJSON_AddNumberToObject(cfg, "fill_value", kc_json_float(p->fill_value));
        cJSON_AddBoolToObject(cfg, "antialias", 0);
    }
    if (!legacy) cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    return KC_OK;
}

static int parse_interpolation(const char *s) { /* nearest flag, -1: unknown */
    return !s || !strcmp(s, "bilinear") ? 0 : !strcmp(s, "nearest") ? 1 : -1;
}

const kc_layer_ops kc_resizing_ops = {.type_name = "Resizing",
                                      .base_name = "resizing",
                                      .build = resize_build,
                                      .init = kc_no_init,
                                      .forward = resize_forward,
                                      .backward = resize_backward,
                                      .destroy = prep_destroy,
                                      .io = {resize_from, resize_to}};

kc_layer *kc_resizing(int height, int width, const kc_resizing_opts *opts) {
    kc_resizing_opts o = opts ? *opts : (kc_resizing_opts){0};
    kc_layer *l = prep_new(&kc_resizing_ops);
    if (!l) return NULL;
    kc_prep *p = l->prep;
    p->height = height, p->width = width;
    p->nearest = parse_interpolation(o.interpolation);
    p->crop_aspect = o.crop_to_aspect_ratio != 0, p->pad_aspect = o.pad_to_aspect_ratio != 0;
    p->fill_value = o.fill_value;
    return l;
}

static kc_status crop_from(const cJSON *cfg, const char *where, kc_layer **out) {
    int h = 0, w = 0;
    kc_status st = kc_cfg_count(cfg, "height", where, &h);
    if (!st) st = kc_cfg_count(cfg, "width", where, &w);
    if (!st) st = kc_cfg_channels_last(cfg, where);
    return st ? st : kc_cfg_made(kc_center_crop(h, w), where, out);
}

const kc_layer_ops kc_center_crop_ops = {.type_name = "CenterCrop",
                                         .base_name = "center_crop",
                                         .build = resize_build,
                                         .init = kc_no_init,
                                         .forward = resize_forward,
                                         .backward = resize_backward,
                                         .destroy = prep_destroy,
                                         .io = {crop_from, resize_to}};

kc_layer *kc_center_crop(int height, int width) {
    kc_layer *l = prep_new(&kc_center_crop_ops);
    if (l) l->prep->height = height, l->prep->width = width;
    return l;
}

/* ---- the augmentation layers ---- */

/* draw k (0, 1, ...) of image b in a step of key: uniform in [0, 1) */
static float draw(uint64_t key, int64_t b, int k) {
    return (float)(kc_mix64(key ^ kc_mix64((uint64_t)b * 8u + (uint64_t)k + 1u)) >> 40) *
           0x1p-24f;
}

/* jax.random.uniform(minval, maxval): u * (max - min) + min */
static float uniform(float u, float lo, float hi) { return u * (hi - lo) + lo; }

/* image b's affine transform [a0 a1 a2 b0 b1 b2 c0 c1], as Keras computes it in float32 */
static void affine_of(const kc_layer *l, uint64_t key, int64_t b, float t[8]) {
    const kc_prep *p = l->prep;
    float h = (float)l->in_shape.dims[0], w = (float)l->in_shape.dims[1];
    memset(t, 0, 8 * sizeof(float));
    if (l->ops == &kc_random_rotation_ops) { /* _compute_affine_matrix, centre (0.5, 0.5) */
        float angle = uniform(draw(key, b, 0), p->lo[0] * 360.0f, p->hi[0] * 360.0f);
        float rad = angle * (float)(3.14159265358979323846 / 180.0);
        float c = cosf(rad), s = sinf(rad), cx = 0.5f * (w - 1), cy = 0.5f * (h - 1);
        t[0] = c, t[1] = -s, t[3] = s, t[4] = c;
        t[2] = cx - cx * t[0] - cy * t[1];
        t[5] = cy - cx * t[3] - cy * t[4];
    } else if (l->ops == &kc_random_translation_ops) {
        float ht = uniform(draw(key, b, 0), p->lo[0], p->hi[0]) * h;
        float wt = uniform(draw(key, b, 1), p->lo[1], p->hi[1]) * w;
        t[0] = 1, t[2] = -wt, t[4] = 1, t[5] = -ht;
    } else { /* RandomZoom: _get_zoom_matrix */
        float zy = uniform(draw(key, b, 0), 1.0f + p->lo[0], 1.0f + p->hi[0]);
        float zx = p->width_none ? zy : uniform(draw(key, b, 1), 1.0f + p->lo[1], 1.0f + p->hi[1]);
        t[0] = zx, t[2] = (w - 1.0f) / 2.0f * (1.0f - zx);
        t[4] = zy, t[5] = (h - 1.0f) / 2.0f * (1.0f - zy);
    }
}

static kc_status augment_build(kc_layer *l) {
    kc_status st = kc_layer_need_image(l);
    if (st) return st;
    const kc_prep *p = l->prep;
    if (p->fill_mode < 0)
        return kc_err(KC_EINVAL, "layer %s (%s): fill_mode must be reflect, wrap, constant or "
                                 "nearest", l->name, l->ops->type_name);
    if (p->nearest < 0)
        return kc_err(KC_EINVAL, "layer %s (%s): interpolation must be \"bilinear\" or "
                                 "\"nearest\"", l->name, l->ops->type_name);
    if (l->ops == &kc_random_flip_ops && !p->flip_h && !p->flip_v)
        return kc_err(KC_EINVAL, "layer %s (RandomFlip): mode must be horizontal, vertical or "
                                 "horizontal_and_vertical", l->name);
    for (int i = 0; i < 2; i++)
        if (!(p->lo[i] <= p->hi[i]) || !isfinite(p->lo[i]) || !isfinite(p->hi[i]))
            return kc_err(KC_EINVAL, "layer %s (%s): factor (%g, %g) must be finite with lower "
                                     "<= upper", l->name, l->ops->type_name, (double)p->lo[i],
                          (double)p->hi[i]);
    if (l->ops == &kc_random_contrast_ops && !(p->vrange[0] < p->vrange[1]))
        return kc_err(KC_EINVAL, "layer %s (RandomContrast): value_range (%g, %g) must be "
                                 "increasing", l->name, (double)p->vrange[0],
                      (double)p->vrange[1]);
    return kc_same_shape_build(l);
}

static void augment_range(void *arg, int64_t s0, int64_t s1) {
    const prep_job *j = arg;
    const kc_layer *l = j->l;
    const kc_prep *p = l->prep;
    const int *d = l->in_shape.dims;
    int64_t n = l->in_size;
    for (int64_t b = s0; b < s1; b++) {
        const float *x = j->x + b * n;
        float *y = j->y + b * n;
        if (l->ops == &kc_random_flip_ops) {
            int f = draw(j->key, b, 0) <= 0.5f;
            kc_flip2d(x, d[0], d[1], d[2], f && p->flip_h, f && p->flip_v, y);
        } else if (l->ops == &kc_random_contrast_ops) {
            float f = uniform(draw(j->key, b, 0), 1.0f - p->lo[0], 1.0f + p->hi[0]);
            if (!j->backward)
                kc_adjust_contrast(x, d[0], d[1], d[2], f, p->vrange[0], p->vrange[1], y);
            else
                kc_adjust_contrast_backward(j->x2 + b * n, x, d[0], d[1], d[2], f, p->vrange[0],
                                            p->vrange[1], y);
        } else {
            float t[8];
            affine_of(l, j->key, b, t);
            if (!j->backward)
                kc_affine2d(x, d[0], d[1], d[2], t, p->fill_mode, !p->nearest, p->fill_value, y);
            else
                kc_affine2d_backward(x, d[0], d[1], d[2], t, p->fill_mode, !p->nearest, y);
        }
    }
}

static void augment_forward(kc_layer *l, const float *in, float *out, int batch,
                            const kc_forward_ctx *ctx) {
    if (!ctx->training) { /* inference: the identity */
        memcpy(out, in, sizeof(float) * (size_t)batch * (size_t)l->out_size);
        return;
    }
    run(l, augment_range, in, NULL, out, batch, kc_dropout_key(l, ctx), 0);
}

static void augment_backward(kc_layer *l, const float *in, const float *out, float *dout,
                             float *din, int batch, int pre, const kc_forward_ctx *ctx) {
    if (!din) return;
    if (!ctx->training) memcpy(din, dout, sizeof(float) * (size_t)batch * (size_t)l->out_size);
    else run(l, augment_range, dout, in, din, batch, kc_dropout_key(l, ctx), 1);
}

static int parse_fill_mode(const char *s) {
    if (!s || !strcmp(s, "reflect")) return KC_FILL_REFLECT;
    if (!strcmp(s, "wrap")) return KC_FILL_WRAP;
    if (!strcmp(s, "constant")) return KC_FILL_CONSTANT;
    if (!strcmp(s, "nearest")) return KC_FILL_NEAREST;
    return -1;
}
static const char *const fill_names[] = {"reflect", "wrap", "constant", "nearest"};

static kc_layer *augment_new(const kc_layer_ops *ops, const kc_augment_opts *opts) {
    kc_augment_opts o = opts ? *opts : (kc_augment_opts){0};
    kc_layer *l = prep_new(ops);
    if (!l) return NULL;
    kc_prep *p = l->prep;
    p->fill_mode = parse_fill_mode(o.fill_mode);
    p->nearest = parse_interpolation(o.interpolation);
    p->fill_value = o.fill_value;
    p->vrange[0] = o.value_range[0], p->vrange[1] = o.value_range[1];
    if (p->vrange[0] == 0 && p->vrange[1] == 0) p->vrange[1] = 255;
    p->has_seed = o.has_seed != 0;
    p->seed = o.seed;
    /* a given seed fixes the layer's stream (graph.c seeds only layers without one) */
    if (p->has_seed) l->seed = kc_mix64((uint64_t)o.seed ^ 0x5eed5eedull) | 1u;
    return l;
}

kc_layer *kc_random_flip(const char *mode, const kc_augment_opts *opts) {
    kc_layer *l = augment_new(&kc_random_flip_ops, opts);
    if (!l) return NULL;
    if (!mode || !strcmp(mode, "horizontal_and_vertical")) l->prep->flip_h = l->prep->flip_v = 1;
    else if (!strcmp(mode, "horizontal")) l->prep->flip_h = 1;
    else if (!strcmp(mode, "vertical")) l->prep->flip_v = 1;
    return l;
}

static kc_layer *with_factors(kc_layer *l, float lo0, float hi0, float lo1, float hi1) {
    if (!l) return NULL;
    l->prep->lo[0] = lo0, l->prep->hi[0] = hi0, l->prep->lo[1] = lo1, l->prep->hi[1] = hi1;
    return l;
}

kc_layer *kc_random_rotation(float lower, float upper, const kc_augment_opts *opts) {
    return with_factors(augment_new(&kc_random_rotation_ops, opts), lower, upper, 0, 0);
}
kc_layer *kc_random_translation(float height_lower, float height_upper, float width_lower,
                                float width_upper, const kc_augment_opts *opts) {
    return with_factors(augment_new(&kc_random_translation_ops, opts), height_lower,
                        height_upper, width_lower, width_upper);
}
kc_layer *kc_random_zoom(float height_lower, float height_upper, const float *width,
                         const kc_augment_opts *opts) {
    kc_layer *l = with_factors(augment_new(&kc_random_zoom_ops, opts), height_lower,
                               height_upper, width ? width[0] : 0, width ? width[1] : 0);
    if (l) l->prep->width_none = !width;
    return l;
}
kc_layer *kc_random_contrast(float lower, float upper, const kc_augment_opts *opts) {
    return with_factors(augment_new(&kc_random_contrast_ops, opts), lower, upper, 0, 0);
}

/* Keras's factor: a number f ((-f, f), or (max(-f, floor), f) where the class bounds it) or
 * a pair, sorted; *scalar tells which */
static kc_status factor_field(const cJSON *cfg, const char *name, const char *where,
                              float floor_, int required, float *lo, float *hi, int *scalar) {
    const cJSON *v = kc_cfg_field(cfg, name);
    if (!v || cJSON_IsNull(v)) {
        if (required) return kc_err(KC_EFORMAT, "%s: %s is missing", where, name);
        return KC_OK;
    }
    if (cJSON_IsNumber(v)) {
        float f = fabsf((float)v->valuedouble);
        *lo = -f > floor_ ? -f : floor_, *hi = f;
        if (scalar) *scalar = 1;
        return KC_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(v->child) ||
        !cJSON_IsNumber(v->child->next))
        return kc_err(KC_EFORMAT, "%s: %s must be a number or a pair of numbers", where, name);
    float a = (float)v->child->valuedouble, b = (float)v->child->next->valuedouble;
    *lo = a < b ? a : b, *hi = a < b ? b : a;
    if (scalar) *scalar = 0;
    return KC_OK;
}

/* seed, fill_mode, interpolation, fill_value, data_format */
static kc_status augment_common(const cJSON *cfg, const char *where, kc_augment_opts *o) {
    const cJSON *seed = kc_cfg_field(cfg, "seed");
    if (seed && !cJSON_IsNull(seed)) {
        if (!cJSON_IsNumber(seed)) return kc_err(KC_EFORMAT, "%s: seed is not an int", where);
        o->has_seed = 1, o->seed = (int64_t)seed->valuedouble;
    }
    double fill = 0;
    kc_status st = string_field(cfg, "fill_mode", where, &o->fill_mode);
    if (!st && parse_fill_mode(o->fill_mode) < 0)
        return kc_err(KC_EFORMAT, "%s: fill_mode '%s' is not supported (kerac has reflect, wrap, "
                                  "constant, nearest)", where, o->fill_mode);
    if (!st) st = interpolation_field(cfg, where, &o->interpolation);
    if (!st) st = number_field(cfg, "fill_value", where, 0, &fill);
    if (!st) st = kc_cfg_channels_last(cfg, where);
    o->fill_value = (float)fill;
    return st;
}

static kc_status flip_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_augment_opts o = {0};
    const char *mode = NULL;
    kc_status st = augment_common(cfg, where, &o);
    if (!st) st = string_field(cfg, "mode", where, &mode);
    if (st) return st;
    if (mode && strcmp(mode, "horizontal") && strcmp(mode, "vertical") &&
        strcmp(mode, "horizontal_and_vertical"))
        return kc_err(KC_EFORMAT, "%s: mode '%s' is not horizontal, vertical or "
                                  "horizontal_and_vertical", where, mode);
    return kc_cfg_made(kc_random_flip(mode, &o), where, out);
}

static kc_status rotation_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_augment_opts o = {0};
    float lo = 0, hi = 0;
    kc_status st = augment_common(cfg, where, &o);
    if (!st) st = factor_field(cfg, "factor", where, -1.0f, 1, &lo, &hi, NULL);
    return st ? st : kc_cfg_made(kc_random_rotation(lo, hi, &o), where, out);
}

static kc_status translation_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_augment_opts o = {0};
    float lo[2] = {0, 0}, hi[2] = {0, 0};
    int sc[2] = {1, 1};
    kc_status st = augment_common(cfg, where, &o);
    if (!st) st = factor_field(cfg, "height_factor", where, -INFINITY, 1, &lo[0], &hi[0], &sc[0]);
    if (!st) st = factor_field(cfg, "width_factor", where, -INFINITY, 1, &lo[1], &hi[1], &sc[1]);
    if (st) return st;
    kc_layer *l = kc_random_translation(lo[0], hi[0], lo[1], hi[1], &o);
    if (l) l->prep->scalar[0] = sc[0], l->prep->scalar[1] = sc[1];
    return kc_cfg_made(l, where, out);
}

static kc_status zoom_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_augment_opts o = {0};
    float lo[2] = {0, 0}, hi[2] = {0, 0};
    int sc[2] = {1, 1};
    kc_status st = augment_common(cfg, where, &o);
    if (!st) st = factor_field(cfg, "height_factor", where, -INFINITY, 1, &lo[0], &hi[0], &sc[0]);
    const cJSON *wf = kc_cfg_field(cfg, "width_factor");
    int none = !wf || cJSON_IsNull(wf);
    if (!st && !none)
        st = factor_field(cfg, "width_factor", where, -INFINITY, 1, &lo[1], &hi[1], &sc[1]);
    if (st) return st;
    float width[2] = {lo[1], hi[1]};
    kc_layer *l = kc_random_zoom(lo[0], hi[0], none ? NULL : width, &o);
    if (l) l->prep->scalar[0] = sc[0], l->prep->scalar[1] = sc[1];
    return kc_cfg_made(l, where, out);
}

static kc_status contrast_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_augment_opts o = {0};
    float lo = 0, hi = 0;
    kc_status st = augment_common(cfg, where, &o);
    if (!st) st = factor_field(cfg, "factor", where, 0.0f, 1, &lo, &hi, NULL);
    if (st) return st;
    const cJSON *vr = kc_cfg_field(cfg, "value_range");
    if (vr && !cJSON_IsNull(vr)) {
        if (!cJSON_IsArray(vr) || cJSON_GetArraySize(vr) != 2 || !cJSON_IsNumber(vr->child) ||
            !cJSON_IsNumber(vr->child->next))
            return kc_err(KC_EFORMAT, "%s: value_range must be a pair of numbers", where);
        o.value_range[0] = (float)vr->child->valuedouble;
        o.value_range[1] = (float)vr->child->next->valuedouble;
        if (o.value_range[0] == 0 && o.value_range[1] == 0)
            return kc_err(KC_EFORMAT, "%s: value_range (0, 0) is empty", where);
    }
    return kc_cfg_made(kc_random_contrast(lo, hi, &o), where, out);
}

static cJSON *pair(float a, float b) {
    cJSON *v = cJSON_CreateArray();
    cJSON_AddItemToArray(v, cJSON_CreateNumber(kc_json_float(a)));
    cJSON_AddItemToArray(v, cJSON_CreateNumber(kc_json_float(b)));
    return v;
}

/* a factor as Keras writes it: the number given, or the pair */
static cJSON *factor_json(const kc_prep *p, int i) {
    if (p->scalar[i] && p->lo[i] == -p->hi[i]) return cJSON_CreateNumber(kc_json_float(p->hi[i]));
    return pair(p->lo[i], p->hi[i]);
}

static kc_status augment_to(const kc_layer *l, cJSON *cfg) {
    const kc_prep *p = l->prep;
    const kc_layer_ops *ops = l->ops;
    if (ops == &kc_random_flip_ops)
        cJSON_AddStringToObject(cfg, "mode", p->flip_h && p->flip_v ? "horizontal_and_vertical"
                                             : p->flip_h            ? "horizontal"
                                                                    : "vertical");
    else if (ops == &kc_random_rotation_ops || ops == &kc_random_contrast_ops)
        cJSON_AddItemToObject(cfg, "factor", pair(p->lo[0], p->hi[0]));
    else {
        cJSON_AddItemToObject(cfg, "height_factor", factor_json(p, 0));
        if (ops == &kc_random_zoom_ops && p->width_none) cJSON_AddNullToObject(cfg, "width_factor");
        else cJSON_AddItemToObject(cfg, "width_factor", factor_json(p, 1));
    }
    int legacy = kc_config_writing_legacy();
    /* tf.keras 2's RandomContrast has no value_range (a legacy file names one that is not
     * Keras's default (0, 255)); both read a factor pair as (lower, upper) */
    if (ops == &kc_random_contrast_ops && (!legacy || p->vrange[0] != 0 || p->vrange[1] != 255))
        cJSON_AddItemToObject(cfg, "value_range", pair(p->vrange[0], p->vrange[1]));
    if (ops != &kc_random_flip_ops && ops != &kc_random_contrast_ops) {
        cJSON_AddStringToObject(cfg, "fill_mode", fill_names[p->fill_mode]);
        cJSON_AddNumberToObject(cfg, "fill_value", kc_json_float(p->fill_value));
        cJSON_AddStringToObject(cfg, "interpolation", p->nearest ? "nearest" : "bilinear");
    }
    if (p->has_seed) cJSON_AddNumberToObject(cfg, "seed", (double)p->seed);
    else cJSON_AddNullToObject(cfg, "seed");
    if (!legacy) cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    return KC_OK;
}

#define AUGMENT_OPS(var, cls, base, from)                                                        \
    const kc_layer_ops var = {.type_name = cls,                                                  \
                              .base_name = base,                                                 \
                              .build = augment_build,                                            \
                              .init = kc_no_init,                                                \
                              .forward = augment_forward,                                        \
                              .backward = augment_backward,                                      \
                              .destroy = prep_destroy,                                           \
                              .io = {from, augment_to}};
AUGMENT_OPS(kc_random_flip_ops, "RandomFlip", "random_flip", flip_from)
AUGMENT_OPS(kc_random_rotation_ops, "RandomRotation", "random_rotation", rotation_from)
AUGMENT_OPS(kc_random_translation_ops, "RandomTranslation", "random_translation",
            translation_from)
AUGMENT_OPS(kc_random_zoom_ops, "RandomZoom", "random_zoom", zoom_from)
AUGMENT_OPS(kc_random_contrast_ops, "RandomContrast", "random_contrast", contrast_from)
