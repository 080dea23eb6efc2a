/* seq_simple.c: the weightless sequence layers: GlobalAveragePooling1D (mask-aware, as Keras
 * 3: the mean of the unmasked steps), GlobalMaxPooling1D, RepeatVector(n), Permute(dims).
 * Samples are (steps, features); batches split over the pool by samples. */
#include "../util/isa.h"
#include "layer.h"
#include "../io/config_fields.h"
#include "../ops/ops.h"
#include "../util/threads.h"
#include <math.h>
#include <string.h>

/* ---- GlobalAveragePooling1D, GlobalMaxPooling1D: (steps, c) -> (c), or (1, c) ---- */

static int is_gmp1(const kc_layer *l);

static kc_status global1d_build(kc_layer *l) {
    char buf[64];
    if (l->in_shape.rank != 2)
        return kc_err(KC_EINVAL, "layer %s (%s) needs an input of shape (steps, features), got %s",
                      l->name, l->ops->type_name, kc_shape_str(l->in_shape, buf, sizeof buf));
    if ((unsigned)l->keepdims > 1)
        return kc_err(KC_EINVAL, "layer %s (%s): keepdims must be 0 or 1, got %d", l->name,
                      l->ops->type_name, l->keepdims);
    int c = l->in_shape.dims[1];
    l->out_shape = l->keepdims ? kc_shape2(1, c) : kc_shape1(c);
    return KC_OK;
}

typedef struct {
    kc_layer *l;
    const float *x, *in, *out;
    float *y;
    const uint8_t *mask;
    int backward;
} global1d_job;

KC_CLONES static void global1d_range(void *arg, int64_t s0, int64_t s1) {
    const global1d_job *j = arg;
    const kc_layer *l = j->l;
    int64_t c = l->out_size, steps = l->in_shape.dims[0];
    if (is_gmp1(l)) { /* Keras's GlobalMaxPooling1D takes no mask: every step counts */
        int n = (int)(s1 - s0);
        if (!j->backward) kc_global_max_pool(j->x + s0 * l->in_size, n, steps, (int)c, j->y + s0 * c);
        else
            kc_global_max_pool_backward(j->in + s0 * l->in_size, j->out + s0 * c, j->x + s0 * c,
                                        n, steps, (int)c, l->scratch + s0 * c,
                                        j->y + s0 * l->in_size);
        return;
    }
    for (int64_t s = s0; s < s1; s++) {
        const uint8_t *m = j->mask ? j->mask + s * steps : NULL;
        /* the divisor: the unmasked steps (0 of them: 0 / 0, NaN, as Keras) */
        float count = (float)steps;
        if (m) {
            int64_t k = 0;
            for (int64_t t = 0; t < steps; t++) k += m[t] != 0;
            count = (float)k;
        }
        if (!j->backward) {
            const float *x = j->x + s * l->in_size;
            float *y = j->y + s * c;
            memset(y, 0, sizeof(float) * (size_t)c);
            for (int64_t t = 0; t < steps; t++) {
                if (m && !m[t]) continue;
#pragma omp simd
                for (int64_t ch = 0; ch < c; ch++) y[ch] += x[t * c + ch];
            }
            for (int64_t ch = 0; ch < c; ch++) y[ch] /= count;
        } else {
            const float *dy = j->x + s * c;
            float *dx = j->y + s * l->in_size;
            for (int64_t t = 0; t < steps; t++) {
                float on = m && !m[t] ? 0.0f : 1.0f;
#pragma omp simd
                for (int64_t ch = 0; ch < c; ch++) dx[t * c + ch] = on * (dy[ch] / count);
            }
        }
    }
}

static void global1d_forward(kc_layer *l, const float *in, float *out, int batch,
                             const kc_forward_ctx *ctx) {
    global1d_job job = {.l = l, .x = in, .y = out, .mask = ctx ? ctx->mask : NULL};
    kc_parallel_range(batch, 1, l->in_size, global1d_range, &job);
}

static void global1d_backward(kc_layer *l, const float *in, const float *out, float *dout,
                              float *din, int batch, int dout_is_preactivation,
                              const kc_forward_ctx *ctx) {
    if (!din) return;
    global1d_job job = {.l = l, .x = dout, .y = din, .backward = 1, .in = in, .out = out,
                        .mask = ctx ? ctx->mask : NULL};
    kc_parallel_range(batch, 1, l->in_size, global1d_range, &job);
}

/* GlobalMaxPooling1D's backward counts each channel's maxima: c floats per sample */
static int64_t gmp1_scratch(const kc_layer *l, int batch, int parts) {
    return (int64_t)batch * l->out_size;
}

/* the pooled output carries no mask (Keras's compute_mask returns None) */
static int no_mask(const kc_layer *l, const uint8_t *in_mask, uint8_t *out_mask, int batch) {
    return 0;
}

static kc_status global1d_from(const cJSON *cfg, const char *where, kc_layer *(*make)(int),
                               kc_layer **out) {
    kc_status st = kc_cfg_channels_last(cfg, where);
    if (st) return st;
    const cJSON *k = kc_cfg_field(cfg, "keepdims");
    if (k && !cJSON_IsNull(k) && !cJSON_IsBool(k))
        return kc_err(KC_EFORMAT, "%s: keepdims is not true or false", where);
    return kc_cfg_made(make(cJSON_IsTrue(k)), where, out);
}
static kc_status gap1_from(const cJSON *cfg, const char *where, kc_layer **out) {
    return global1d_from(cfg, where, kc_global_average_pooling1d, out);
}
static kc_status gmp1_from(const cJSON *cfg, const char *where, kc_layer **out) {
    return global1d_from(cfg, where, kc_global_max_pooling1d, out);
}
static kc_status global1d_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    cJSON_AddBoolToObject(cfg, "keepdims", l->keepdims);
    return KC_OK;
}

const kc_layer_ops kc_global_average_pooling1d_ops = {
    .type_name = "GlobalAveragePooling1D",
    .base_name = "global_average_pooling1d",
    .build = global1d_build,
    .init = kc_no_init,
    .forward = global1d_forward,
    .backward = global1d_backward,
    .supports_masking = 1,
    .compute_mask = no_mask,
    .allows_none = 1,
    .io = {gap1_from, global1d_to}};
const kc_layer_ops kc_global_max_pooling1d_ops = {
    .type_name = "GlobalMaxPooling1D",
    .base_name = "global_max_pooling1d",
    .build = global1d_build,
    .init = kc_no_init,
    .forward = global1d_forward,
    .backward = global1d_backward,
    .scratch_size = gmp1_scratch,
    .allows_none = 1,
    .io = {gmp1_from, global1d_to}};

static int is_gmp1(const kc_layer *l) { return l->ops == &kc_global_max_pooling1d_ops; }

kc_layer *kc_global_average_pooling1d(int keepdims) {
    kc_layer *l = kc_layer_new(&kc_global_average_pooling1d_ops);
    if (l) l->keepdims = keepdims;
    return l;
}
kc_layer *kc_global_max_pooling1d(int keepdims) {
    kc_layer *l = kc_layer_new(&kc_global_max_pooling1d_ops);
    if (l) l->keepdims = keepdims;
    return l;
}

/* ---- RepeatVector(n): (features) -> (n, features) ---- */

static kc_status repeat_build(kc_layer *l) {
    char buf[64];
    if (l->units <= 0)
        return kc_err(KC_EINVAL, "layer %s (RepeatVector): n must be positive, got %d", l->name,
                      l->units);
    if (l->in_shape.rank != 1)
        return kc_err(KC_EINVAL,
                      "layer %s (RepeatVector) needs a flat input of shape (features), got %s",
                      l->name, kc_shape_str(l->in_shape, buf, sizeof buf));
    l->out_shape = kc_shape2(l->units, l->in_shape.dims[0]);
    return KC_OK;
}

static void repeat_forward(kc_layer *l, const float *in, float *out, int batch,
                           const kc_forward_ctx *ctx) {
    size_t f = (size_t)l->in_size;
    for (int64_t s = 0; s < batch; s++)
        for (int r = 0; r < l->units; r++)
            memcpy(out + (s * l->units + r) * (int64_t)f, in + s * (int64_t)f, sizeof(float) * f);
}

static void repeat_backward(kc_layer *l, const float *in, const float *out, float *dout,
                            float *din, int batch, int dout_is_preactivation,
                            const kc_forward_ctx *ctx) {
    if (!din) return;
    int64_t f = l->in_size;
    for (int64_t s = 0; s < batch; s++) {
        float *d = din + s * f;
        const float *g = dout + s * l->out_size;
        memcpy(d, g, sizeof(float) * (size_t)f);
        for (int r = 1; r < l->units; r++)
#pragma omp simd
            for (int64_t i = 0; i < f; i++) d[i] += g[r * f + i];
    }
}

static kc_status repeat_from(const cJSON *cfg, const char *where, kc_layer **out) {
    int n;
    kc_status st = kc_cfg_count(cfg, "n", where, &n);
    return st ? st : kc_cfg_made(kc_repeat_vector(n), where, out);
}
static kc_status repeat_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "n", l->units);
    return KC_OK;
}

const kc_layer_ops kc_repeat_vector_ops = {
    .type_name = "RepeatVector",
    .base_name = "repeat_vector",
    .build = repeat_build,
    .init = kc_no_init,
    .forward = repeat_forward,
    .backward = repeat_backward,
    .io = {repeat_from, repeat_to}};

kc_layer *kc_repeat_vector(int n) {
    kc_layer *l = kc_layer_new(&kc_repeat_vector_ops);
    if (l) l->units = n;
    return l;
}

/* ---- Permute(dims): output axis i is input axis dims[i] (the batch stays first) ---- */

static kc_status permute_build(kc_layer *l) {
    char buf[64];
    int n = l->n_perm, seen[KC_MAX_RANK] = {0}, ok = n >= 1 && n <= KC_MAX_RANK;
    for (int i = 0; ok && i < n; i++) {
        ok = l->perm[i] >= 0 && l->perm[i] < n && !seen[l->perm[i]];
        if (ok) seen[l->perm[i]] = 1;
    }
    if (!ok) {
        char dims[64] = "";
        for (int i = 0; i < n && i < KC_MAX_RANK; i++)
            snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%d", i ? ", " : "",
                     l->perm[i] + 1);
        return kc_err(KC_EINVAL,
                      "layer %s (Permute): dims (%s%s) is not a permutation of 1..%d (Keras's "
                      "axes, 1 the first after the batch)",
                      l->name, dims, n > KC_MAX_RANK ? ", ..." : "", n);
    }
    if (l->in_shape.rank != n)
        return kc_err(KC_EINVAL, "layer %s (Permute): dims has %d axes but the input %s has %d",
                      l->name, n, kc_shape_str(l->in_shape, buf, sizeof buf), l->in_shape.rank);
    l->out_shape.rank = n;
    for (int i = 0; i < n; i++) l->out_shape.dims[i] = l->in_shape.dims[l->perm[i]];
    return KC_OK;
}

/* out[o] = in[offset(o)] (back: din[offset(o)] = dout[o]) over the samples [s0, s1) */
typedef struct {
    kc_layer *l;
    const float *src;
    float *dst;
    int backward;
} permute_job;

static void permute_range(void *arg, int64_t s0, int64_t s1) {
    const permute_job *j = arg;
    const kc_layer *l = j->l;
    int n = l->n_perm;
    int64_t in_stride[KC_MAX_RANK], stride[KC_MAX_RANK], dims[KC_MAX_RANK];
    in_stride[n - 1] = 1;
    for (int i = n - 2; i >= 0; i--) in_stride[i] = in_stride[i + 1] * l->in_shape.dims[i + 1];
    for (int i = 0; i < n; i++) {
        stride[i] = in_stride[l->perm[i]]; /* the input step of output axis i */
        dims[i] = l->out_shape.dims[i];
    }
    int64_t last = dims[n - 1], ls = stride[n - 1], rows = l->out_size / last;
    for (int64_t s = s0; s < s1; s++) {
        const float *src = j->src + s * l->in_size;
        float *dst = j->dst + s * l->out_size;
        int64_t idx[KC_MAX_RANK] = {0}, off = 0; /* the output row's index and input offset */
        for (int64_t r = 0; r < rows; r++) {
            float *o = dst + r * last;
            if (!j->backward)
                for (int64_t k = 0; k < last; k++) o[k] = src[off + k * ls];
            else /* src is dout, dst din: the same pairs the other way */
                for (int64_t k = 0; k < last; k++) dst[off + k * ls] = src[r * last + k];
            for (int i = n - 2; i >= 0; i--) { /* next output row */
                off += stride[i];
                if (++idx[i] < dims[i]) break;
                off -= stride[i] * dims[i];
                idx[i] = 0;
            }
        }
    }
}

static void permute_forward(kc_layer *l, const float *in, float *out, int batch,
                            const kc_forward_ctx *ctx) {
    permute_job job = {.l = l, .src = in, .dst = out};
    kc_parallel_range(batch, 1, l->in_size, permute_range, &job);
}

static void permute_backward(kc_layer *l, const float *in, const float *out, float *dout,
                             float *din, int batch, int dout_is_preactivation,
                             const kc_forward_ctx *ctx) {
    if (!din) return;
    permute_job job = {.l = l, .src = dout, .dst = din, .backward = 1};
    kc_parallel_range(batch, 1, l->in_size, permute_range, &job);
}

static kc_status permute_from(const cJSON *cfg, const char *where, kc_layer **out) {
    const cJSON *d = kc_cfg_field(cfg, "dims");
    int n = cJSON_GetArraySize(d), dims[KC_MAX_RANK];
    if (!cJSON_IsArray(d) || n < 1 || n > KC_MAX_RANK)
        return kc_err(KC_EFORMAT, "%s: dims is missing or not a list of 1 to %d axes", where,
                      KC_MAX_RANK);
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(d, i);
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
            v->valuedouble < 1 || v->valuedouble > n)
            return kc_err(KC_EFORMAT, "%s: dims must hold the axes 1..%d", where, n);
        dims[i] = (int)v->valuedouble;
    }
    return kc_cfg_made(kc_permute(dims, n), where, out);
}

static kc_status permute_to(const kc_layer *l, cJSON *cfg) {
    int dims[KC_MAX_RANK];
    for (int i = 0; i < l->n_perm; i++) dims[i] = l->perm[i] + 1;
    cJSON_AddItemToObject(cfg, "dims", cJSON_CreateIntArray(dims, l->n_perm));
    return KC_OK;
}

const kc_layer_ops kc_permute_ops = {
    .type_name = "Permute",
    .base_name = "permute",
    .build = permute_build,
    .init = kc_no_init,
    .forward = permute_forward,
    .backward = permute_backward,
    .io = {permute_from, permute_to}};

kc_layer *kc_permute(const int *dims, int n) {
    kc_layer *l = kc_layer_new(&kc_permute_ops);
    if (!l) return NULL;
    /* more axes than kerac's ranks: kept as a count, refused by build */
    l->n_perm = dims && n > 0 ? n : 0;
    for (int i = 0; i < n && i < KC_MAX_RANK && dims; i++) l->perm[i] = dims[i] - 1;
    return l;
}

/* ---- Dropout's noise_shape (the class is simple.c's): one draw per cell of the noise shape,
 * the same along its axes of size 1 ---- */

kc_status kc_dropout_noise_check(const kc_layer *l) {
    char buf[64];
    if (l->n_noise != l->in_shape.rank)
        return kc_err(KC_EINVAL,
                      "layer %s (Dropout): noise_shape has %d sizes after the batch but the input "
                      "%s has %d axes",
                      l->name, l->n_noise, kc_shape_str(l->in_shape, buf, sizeof buf),
                      l->in_shape.rank);
    for (int i = 0; i < l->n_noise; i++) {
        int d = l->noise_shape[i];
        if (d != 0 && d != 1 && d != l->in_shape.dims[i])
            return kc_err(KC_EINVAL,
                          "layer %s (Dropout): noise_shape size %d on axis %d does not broadcast "
                          "to the input %s (1, the axis's size or None)",
                          l->name, d, i + 1, kc_shape_str(l->in_shape, buf, sizeof buf));
    }
    return KC_OK;
}

typedef struct {
    const kc_layer *l;
    float *y;
    const float *x;
    uint64_t key;
} noise_job;

static void noise_range(void *arg, int64_t s0, int64_t s1) {
    const noise_job *j = arg;
    const kc_layer *l = j->l;
    int n = l->in_shape.rank;
    int64_t dims[KC_MAX_RANK], nstride[KC_MAX_RANK], cells = 1;
    for (int i = n - 1; i >= 0; i--) { /* the noise's strides, 0 along the shared axes */
        dims[i] = l->in_shape.dims[i];
        int shared = l->noise_shape[i] == 1;
        nstride[i] = shared ? 0 : cells;
        cells *= shared ? 1 : dims[i];
    }
    uint32_t threshold = kc_dropout_threshold(l->rate), key = kc_dropout_key32(j->key);
    float scale = 1.0f / (1.0f - l->rate);
    for (int64_t s = s0; s < s1; s++) {
        int64_t idx[KC_MAX_RANK] = {0}, cell = 0;
        const float *x = j->x + s * l->in_size;
        float *y = j->y + s * l->in_size;
        for (int64_t e = 0; e < l->in_size; e++) {
            y[e] = kc_dropout_hash((uint32_t)(s * cells + cell), key) >= threshold ? x[e] * scale
                                                                                  : 0.0f;
            for (int i = n - 1; i >= 0; i--) { /* the next element's noise cell */
                cell += nstride[i];
                if (++idx[i] < dims[i]) break;
                cell -= nstride[i] * dims[i];
                idx[i] = 0;
            }
        }
    }
}

void kc_dropout_noise_apply(const kc_layer *l, float *y, const float *x, int batch,
                            uint64_t key) {
    noise_job job = {l, y, x, key};
    kc_parallel_range(batch, 1, l->in_size, noise_range, &job);
}

kc_layer *kc_dropout_noise(float rate, const int *noise_shape, int n) {
    kc_layer *l = kc_dropout(rate);
    if (!l) return NULL;
    if (!noise_shape || n < 1 || n > KC_MAX_RANK) {
        l->n_noise = n > KC_MAX_RANK ? n : -1; /* refused by build: no rank matches */
        return l;
    }
    l->n_noise = n;
    for (int i = 0; i < n; i++) l->noise_shape[i] = noise_shape[i] < 0 ? -1 : noise_shape[i];
    return l;
}
