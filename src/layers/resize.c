/* resize.c: the layers that resize images without weights, channels last: UpSampling2D(size,
 * interpolation "nearest" | "bilinear"), ZeroPadding2D(((top, bottom), (left, right))) and
 * Cropping2D(((top, bottom), (left, right))). Batches split over the pool by images; the
 * kernels are ops/resize.c's. */
#include "layer.h"
#include "../io/config_fields.h"
#include "../ops/ops.h"
#include "../util/threads.h"
#include <strings.h>

kc_status kc_layer_need_image(const kc_layer *l) {
    char buf[64];
    if (l->in_shape.rank != 3)
        return kc_err(KC_EINVAL,
                      "layer %s (%s) needs an input of shape (height, width, channels), got %s",
                      l->name, l->ops->type_name, kc_shape_str(l->in_shape, buf, sizeof buf));
    return KC_OK;
}

typedef struct {
    const kc_layer *l;
    const float *x;
    float *y;
    int backward;
} resize_job;

static void run(const kc_layer *l, void (*fn)(void *, int64_t, int64_t), const float *x,
                float *y, int batch, int backward) {
    resize_job job = {l, x, y, backward};
    kc_parallel_range(batch, 1, l->out_size, fn, &job);
}

/* ---- UpSampling2D: size in kh, kw; interpolation 0 nearest, 1 bilinear ---- */

static kc_status up_build(kc_layer *l) {
    kc_status st = kc_layer_need_image(l);
    if (st) return st;
    if (l->kh <= 0 || l->kw <= 0)
        return kc_err(KC_EINVAL, "layer %s (UpSampling2D): size must be positive, got (%d, %d)",
                      l->name, l->kh, l->kw);
    if ((unsigned)l->interpolation > 1)
        return kc_err(KC_EINVAL,
                      "layer %s (UpSampling2D): interpolation must be KC_NEAREST or KC_BILINEAR, "
                      "got %d",
                      l->name, l->interpolation);
    const int *d = l->in_shape.dims;
    if ((int64_t)d[0] * l->kh > 1 << 30 || (int64_t)d[1] * l->kw > 1 << 30)
        return kc_err(KC_EINVAL, "layer %s (UpSampling2D): size (%d, %d) is too large", l->name,
                      l->kh, l->kw);
    l->out_shape = kc_shape3(d[0] * l->kh, d[1] * l->kw, d[2]);
    l->param_count = 0;
    return KC_OK;
}

static void up_range(void *arg, int64_t s0, int64_t s1) {
    const resize_job *j = arg;
    const kc_layer *l = j->l;
    const int *d = l->in_shape.dims;
    int n = (int)(s1 - s0);
    if (!j->backward)
        kc_upsample2d(j->x + s0 * l->in_size, n, d[0], d[1], d[2], l->kh, l->kw,
                      l->interpolation, j->y + s0 * l->out_size);
    else
        kc_upsample2d_backward(j->x + s0 * l->out_size, n, d[0], d[1], d[2], l->kh, l->kw,
                               l->interpolation, j->y + s0 * l->in_size);
}

static void up_forward(kc_layer *l, const float *in, float *out, int batch,
                       const kc_forward_ctx *ctx) {
    run(l, up_range, in, out, batch, 0);
}

static void up_backward(kc_layer *l, const float *in, const float *out, float *dout, float *din,
                        int batch, int dout_is_preactivation, const kc_forward_ctx *ctx) {
    if (din) run(l, up_range, dout, din, batch, 1);
}

static kc_status up_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_up_sampling2d_opts o = {.size = {2, 2}};
    kc_status st = kc_cfg_int_pair(cfg, "size", where, o.size);
    if (!st) st = kc_cfg_channels_last(cfg, where);
    if (st) return st;
    const cJSON *in = kc_cfg_field(cfg, "interpolation");
    if (in && !cJSON_IsNull(in)) {
        if (!cJSON_IsString(in))
            return kc_err(KC_EFORMAT, "%s: interpolation is not a string", where);
        if (!strcasecmp(in->valuestring, "bilinear")) o.interpolation = KC_BILINEAR;
        else if (strcasecmp(in->valuestring, "nearest"))
            return kc_err(KC_EFORMAT,
                          "%s: interpolation '%s' is not supported (kerac has nearest, bilinear)",
                          where, in->valuestring);
    }
    return kc_cfg_made(kc_up_sampling2d(&o), where, out);
}

static kc_status up_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddItemToObject(cfg, "size", kc_cfg_int_list2(l->kh, l->kw));
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    cJSON_AddStringToObject(cfg, "interpolation", l->interpolation ? "bilinear" : "nearest");
    return KC_OK;
}

const kc_layer_ops kc_up_sampling2d_ops = {
    .type_name = "UpSampling2D",
    .base_name = "up_sampling2d",
    .build = up_build,
    .init = kc_no_init,
    .forward = up_forward,
    .backward = up_backward,
    .io = {up_from, up_to}};

kc_layer *kc_up_sampling2d(const kc_up_sampling2d_opts *opts) {
    kc_up_sampling2d_opts o = opts ? *opts : (kc_up_sampling2d_opts){0};
    kc_layer *l = kc_layer_new(&kc_up_sampling2d_ops);
    if (!l) return NULL;
    l->kh = o.size[0] ? o.size[0] : 2;
    l->kw = o.size[1] ? o.size[1] : l->kh;
    l->interpolation = (int)o.interpolation;
    return l;
}

/* ---- ZeroPadding2D and Cropping2D: pad[4] = top, bottom, left, right ---- */

static int is_crop(const kc_layer *l);

static kc_status pad_crop_build(kc_layer *l) {
    char buf[64];
    kc_status st = kc_layer_need_image(l);
    if (st) return st;
    const char *what = is_crop(l) ? "cropping" : "padding";
    const int *p = l->pad, *d = l->in_shape.dims;
    if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0)
        return kc_err(KC_EINVAL,
                      "layer %s (%s): %s ((%d, %d), (%d, %d)) must not be negative", l->name,
                      l->ops->type_name, what, p[0], p[1], p[2], p[3]);
    int64_t dh = (int64_t)p[0] + p[1], dw = (int64_t)p[2] + p[3];
    if (is_crop(l)) {
        if (dh >= d[0] || dw >= d[1])
            return kc_err(KC_EINVAL,
                          "layer %s (Cropping2D): cropping ((%d, %d), (%d, %d)) leaves nothing "
                          "of the input %s (it must be smaller than each spatial dimension)",
                          l->name, p[0], p[1], p[2], p[3],
                          kc_shape_str(l->in_shape, buf, sizeof buf));
        l->out_shape = kc_shape3((int)(d[0] - dh), (int)(d[1] - dw), d[2]);
    } else {
        if (d[0] + dh > 1 << 30 || d[1] + dw > 1 << 30)
            return kc_err(KC_EINVAL, "layer %s (ZeroPadding2D): padding ((%d, %d), (%d, %d)) is "
                                     "too large", l->name, p[0], p[1], p[2], p[3]);
        l->out_shape = kc_shape3((int)(d[0] + dh), (int)(d[1] + dw), d[2]);
    }
    l->param_count = 0;
    return KC_OK;
}

/* forward: padding shifts the image by (top, left) into the larger output, cropping by
 * (-top, -left) into the smaller; backward the opposite shift */
static void pad_crop_range(void *arg, int64_t s0, int64_t s1) {
    const resize_job *j = arg;
    const kc_layer *l = j->l;
    const int *i = l->in_shape.dims, *o = l->out_shape.dims;
    int n = (int)(s1 - s0);
    int sign = (is_crop(l) ? -1 : 1) * (j->backward ? -1 : 1);
    if (!j->backward)
        kc_shift2d(j->x + s0 * l->in_size, n, i[0], i[1], i[2], j->y + s0 * l->out_size, o[0],
                   o[1], sign * l->pad[0], sign * l->pad[2]);
    else
        kc_shift2d(j->x + s0 * l->out_size, n, o[0], o[1], o[2], j->y + s0 * l->in_size, i[0],
                   i[1], sign * l->pad[0], sign * l->pad[2]);
}

static void pad_crop_forward(kc_layer *l, const float *in, float *out, int batch,
                             const kc_forward_ctx *ctx) {
    run(l, pad_crop_range, in, out, batch, 0);
}

static void pad_crop_backward(kc_layer *l, const float *in, const float *out, float *dout,
                              float *din, int batch, int dout_is_preactivation,
                              const kc_forward_ctx *ctx) {
    if (din) run(l, pad_crop_range, dout, din, batch, 1);
}

/* Keras's forms of padding / cropping: an int (all four sides), [h, w] (symmetric per axis)
 * or [[top, bottom], [left, right]] (each entry an int or a pair); absent keeps out */
static kc_status sides(const cJSON *cfg, const char *name, const char *where, int out[4]) {
    const cJSON *v = kc_cfg_field(cfg, name);
    if (!v || cJSON_IsNull(v)) return KC_OK;
    if (cJSON_IsNumber(v)) {
        int p[2];
        kc_status st = kc_cfg_int_pair_value(v, name, where, 0, p);
        if (st) return st;
        out[0] = out[1] = out[2] = out[3] = p[0];
        return KC_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
        return kc_err(KC_EFORMAT,
                      "%s: %s must be an int, 2 ints or 2 pairs of ints ((top, bottom), (left, "
                      "right))",
                      where, name);
    for (int axis = 0; axis < 2; axis++) {
        const cJSON *e = cJSON_GetArrayItem(v, axis);
        if (cJSON_IsArray(e) && cJSON_GetArraySize(e) != 2)
            return kc_err(KC_EFORMAT, "%s: %s entry %d must be an int or a pair of ints", where,
                          name, axis);
        kc_status st = kc_cfg_int_pair_value(e, name, where, 0, out + 2 * axis);
        if (st) return st;
    }
    return KC_OK;
}

/* ZeroPadding2D's config (field "padding", by default 1 on each side) or Cropping2D's
 * ("cropping", by default none): the layer make makes */
static kc_status pad_crop_from(const cJSON *cfg, const char *where, const char *field, int dflt,
                               kc_layer *(*make)(int, int, int, int), kc_layer **out) {
    int p[4] = {dflt, dflt, dflt, dflt};
    kc_status st = sides(cfg, field, where, p);
    if (!st) st = kc_cfg_channels_last(cfg, where);
    return st ? st : kc_cfg_made(make(p[0], p[1], p[2], p[3]), where, out);
}

static kc_status pad_from(const cJSON *cfg, const char *where, kc_layer **out) {
    return pad_crop_from(cfg, where, "padding", 1, kc_zero_padding2d, out);
}

static kc_status crop_from(const cJSON *cfg, const char *where, kc_layer **out) {
    return pad_crop_from(cfg, where, "cropping", 0, kc_cropping2d, out);
}

/* "padding" or "cropping": [[top, bottom], [left, right]] */
static kc_status pad_crop_to(const kc_layer *l, cJSON *cfg) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, kc_cfg_int_list2(l->pad[0], l->pad[1]));
    cJSON_AddItemToArray(a, kc_cfg_int_list2(l->pad[2], l->pad[3]));
    cJSON_AddItemToObject(cfg, is_crop(l) ? "cropping" : "padding", a);
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    return KC_OK;
}

const kc_layer_ops kc_zero_padding2d_ops = {
    .type_name = "ZeroPadding2D",
    .base_name = "zero_padding2d",
    .build = pad_crop_build,
    .init = kc_no_init,
    .forward = pad_crop_forward,
    .backward = pad_crop_backward,
    .io = {pad_from, pad_crop_to}};
const kc_layer_ops kc_cropping2d_ops = {
    .type_name = "Cropping2D",
    .base_name = "cropping2d",
    .build = pad_crop_build,
    .init = kc_no_init,
    .forward = pad_crop_forward,
    .backward = pad_crop_backward,
    .io = {crop_from, pad_crop_to}};

static int is_crop(const kc_layer *l) { return l->ops == &kc_cropping2d_ops; }

static kc_layer *pad_crop_new(const kc_layer_ops *ops, int top, int bottom, int left,
                              int right) {
    kc_layer *l = kc_layer_new(ops);
    if (!l) return NULL;
    l->pad[0] = top;
    l->pad[1] = bottom;
    l->pad[2] = left;
    l->pad[3] = right;
    return l;
}

kc_layer *kc_zero_padding2d(int top, int bottom, int left, int right) {
    return pad_crop_new(&kc_zero_padding2d_ops, top, bottom, left, right);
}
kc_layer *kc_cropping2d(int top, int bottom, int left, int right) {
    return pad_crop_new(&kc_cropping2d_ops, top, bottom, left, right);
}
