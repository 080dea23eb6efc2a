/* conv_transpose.c: Conv2DTranspose(filters, kernel_size, strides, padding, output_padding,
 * activation, use_bias), channels last. The layer is the input gradient of a Conv2D whose
 * input is this layer's output: each input pixel's channels times the kernel
 * (kh, kw, filters, in_channels), read as the (kh * kw * filters, in) matrix W, give a window
 * of kh x kw output pixels that is added in place at (iy * sh - crop_top, ix * sw - crop_left).
 * So forward is col2im(in W^T) and backward is that Conv2D's forward: din = im2col(dout) W,
 * dW = im2col(dout)^T in.
 *
 * The output size and crop follow Keras 3 (JAX's conv_transpose padding, from
 * backend_utils._convert_conv_transpose_padding_args_from_keras_to_jax): per axis, with
 * k the kernel size and s the stride,
 *   "valid": pad before k - 1, after k - 1 + output_padding (None: max(k, s) - k)
 *   "same":  total p = s + k - 2 (None) or k + k % 2 - 2 + output_padding, before
 *            min(ceil(p / 2), k - 1), after the rest
 * and the output is (in - 1) * s + before + after - k + 2 wide, its first pixel being the
 * full transposed convolution's pixel k - 1 - before.
 *
 * The batch is split over the pool by images, as Conv2D's; the weight gradient is summed in
 * CONV_GROUPS fixed groups of images and the partials added in group order, so the result is
 * the same for any thread count. */
#include "layer.h"
#include "../io/config_fields.h"
#include "../ops/ops.h"
#include "../util/threads.h"
#include <math.h>
#include <string.h>

#define CONV_GROUPS 16
#define PARTS_PER_THREAD 4
#define CHUNK_ROWS 512 /* input pixels per product */

static const char *const type = "Conv2DTranspose";

/* (kh * kw * filters): a row of the unfolded output */
static int64_t depth(const kc_layer *l) { return (int64_t)l->kh * l->kw * l->units; }
static int in_channels(const kc_layer *l) { return l->in_shape.dims[2]; }

/* The windows as im2col and col2im see them: the "image" is this layer's output, the window
 * positions are its input pixels; pad_top, pad_left hold the crop. */
static kc_window window(const kc_layer *l) {
    return (kc_window){l->out_shape.dims[0], l->out_shape.dims[1], l->units, l->kh, l->kw,
                       l->sh, l->sw, l->pad_top, l->pad_left, l->in_shape.dims[0],
                       l->in_shape.dims[1]};
}

static int chunk_images(const kc_layer *l) {
    int64_t rows = (int64_t)l->in_shape.dims[0] * l->in_shape.dims[1];
    int64_t n = CHUNK_ROWS / (rows > 0 ? rows : 1);
    return n > 0 ? (int)n : 1;
}

/* One axis: the output size and the crop before it (see the top) */
static void transpose_axis(int in, int k, int s, int same, int output_padding, int *out,
                           int *crop) {
    int before, after;
    if (!same) {
        int op = output_padding < 0 ? (k > s ? k : s) - k : output_padding;
        before = k - 1;
        after = k - 1 + op;
    } else {
        int total = output_padding < 0 ? s + k - 2 : k + k % 2 - 2 + output_padding;
        before = total / 2 + total % 2;
        if (before > k - 1) before = k - 1;
        after = total - before;
    }
    *out = (in - 1) * s + before + after - k + 2;
    *crop = k - 1 - before;
}

static kc_status convt_build(kc_layer *l) {
    char buf[64];
    if (l->units <= 0)
        return kc_err(KC_EINVAL, "layer %s (%s): filters must be positive, got %d", l->name, type,
                      l->units);
    if (l->kh <= 0 || l->kw <= 0 || l->sh <= 0 || l->sw <= 0)
        return kc_err(KC_EINVAL,
                      "layer %s (%s): kernel_size and strides must be positive, got (%d, %d) "
                      "and (%d, %d)",
                      l->name, type, l->kh, l->kw, l->sh, l->sw);
    if ((unsigned)l->act >= KC_ACT_COUNT)
        return kc_err(KC_EINVAL, "layer %s (%s): unknown activation %d", l->name, type,
                      (int)l->act);
    if ((unsigned)l->pad_same > 1)
        return kc_err(KC_EINVAL, "layer %s (%s): padding must be KC_VALID or KC_SAME, got %d",
                      l->name, type, l->pad_same);
    if (l->dh != 1 || l->dw != 1)
        return kc_err(KC_EINVAL,
                      "layer %s (%s): dilation_rate (%d, %d) is not supported by kerac (1 only)",
                      l->name, type, l->dh, l->dw);
    if (l->output_padding[0] < -1 || l->output_padding[1] < -1)
        return kc_err(KC_EINVAL,
                      "layer %s (%s): output_padding (%d, %d) must not be negative (KC_ZERO for 0)",
                      l->name, type, l->output_padding[0], l->output_padding[1]);
    int op_none = l->output_padding[0] == -1;
    if (op_none != (l->output_padding[1] == -1))
        return kc_err(KC_EINVAL,
                      "layer %s (%s): output_padding (%d, %d): give both or neither (None)",
                      l->name, type, l->output_padding[0], l->output_padding[1]);
    if (!op_none && (l->output_padding[0] >= l->sh || l->output_padding[1] >= l->sw))
        return kc_err(KC_EINVAL,
                      "layer %s (%s): output_padding (%d, %d) must be strictly less than "
                      "strides (%d, %d)",
                      l->name, type, l->output_padding[0], l->output_padding[1], l->sh, l->sw);
    if (l->in_shape.rank != 3)
        return kc_err(KC_EINVAL,
                      "layer %s (%s) needs an input of shape (height, width, channels), got %s",
                      l->name, type, kc_shape_str(l->in_shape, buf, sizeof buf));
    int oh, ow;
    transpose_axis(l->in_shape.dims[0], l->kh, l->sh, l->pad_same, l->output_padding[0], &oh,
                   &l->pad_top);
    transpose_axis(l->in_shape.dims[1], l->kw, l->sw, l->pad_same, l->output_padding[1], &ow,
                   &l->pad_left);
    if (oh <= 0 || ow <= 0)
        return kc_err(KC_EINVAL,
                      "layer %s (%s): the output of the input %s with a %dx%d kernel would be "
                      "empty (%d x %d)",
                      l->name, type, kc_shape_str(l->in_shape, buf, sizeof buf), l->kh, l->kw,
                      oh, ow);
    l->out_shape = kc_shape3(oh, ow, l->units);
    l->kernel_size = depth(l) * in_channels(l);
    l->param_count = l->kernel_size + (l->no_bias ? 0 : l->units);
    return KC_OK;
}

static void convt_init(kc_layer *l, kc_rng *rng) {
    /* glorot_uniform: Keras's fans of a (kh, kw, filters, in) kernel are kh*kw*filters and
     * kh*kw*in; zero bias */
    int64_t area = (int64_t)l->kh * l->kw;
    float limit = sqrtf(6.0f / (float)(area * l->units + area * in_channels(l)));
    for (int64_t i = 0; i < l->kernel_size; i++)
        l->kernel[i] = (2.0f * kc_rng_uniform(rng) - 1.0f) * limit;
    if (!l->no_bias)
        for (int i = 0; i < l->units; i++) l->bias[i] = 0.0f;
}

/* scratch: per thread an unfolded chunk; the groups' partial gradients (kernel and bias); the
 * kernel transposed (in, kh * kw * filters) for the forward product */
static int64_t chunk_floats(const kc_layer *l) {
    return (int64_t)chunk_images(l) * l->in_shape.dims[0] * l->in_shape.dims[1] * depth(l);
}
static int64_t convt_scratch(const kc_layer *l, int batch, int parts) {
    return (int64_t)parts * chunk_floats(l) + CONV_GROUPS * (l->kernel_size + l->units) +
           l->kernel_size + (kc_act_needs_input(l->act) ? (int64_t)batch * l->out_size : 0);
}
static float *partials_of(const kc_layer *l) {
    return l->scratch + (int64_t)l->scratch_parts * chunk_floats(l);
}
static float *kernel_t_of(const kc_layer *l) {
    return partials_of(l) + CONV_GROUPS * (l->kernel_size + l->units);
}
/* the pre-activation (batch, out_size), for activations whose derivative needs it */
static float *preact_of(const kc_layer *l) { return kernel_t_of(l) + l->kernel_size; }

typedef struct {
    kc_layer *l;
    const float *in;
    float *y, *dout, *din;
    int batch, groups;
} convt_job;

static void convt_forward_task(void *arg, int part, int parts) {
    const convt_job *j = arg;
    kc_layer *l = j->l;
    kc_window g = window(l);
    int64_t k = depth(l), c = in_channels(l), rows_per = (int64_t)g.oh * g.ow;
    int cn = chunk_images(l);
    float *col = l->scratch + (int64_t)kc_thread_index() * chunk_floats(l);
    int64_t s0, s1;
    kc_split(j->batch, part, parts, 1, &s0, &s1);
    for (int64_t s = s0; s < s1; s += cn) {
        int n = (int)(s1 - s < cn ? s1 - s : cn);
        /* col (rows, k) = in (rows, c) W^T, then each row's window added into the output */
        kc_gemm_ex(&(kc_gemm_args){.m = (int)(n * rows_per), .n = (int)k, .k = (int)c,
                                   .a = j->in + s * l->in_size, .a_rs = c, .a_cs = 1,
                                   .b = kernel_t_of(l), .b_rs = k, .b_cs = 1, .c = col, .ldc = k,
                                   .serial = 1});
        kc_col2im(&g, col, n, j->y + s * l->out_size);
    }
}

/* runs the task on the pool, or on the caller when the scratch was sized for fewer threads */
static void run_task(const kc_layer *l, kc_task_fn fn, convt_job *job) {
    kc_parallel_parts_max(fn, job, PARTS_PER_THREAD, l->scratch_parts);
}

static void convt_forward(kc_layer *l, const float *in, float *out, int batch,
                          const kc_forward_ctx *ctx) {
    /* W (k, c) transposed once, so the products read it in rows */
    float *kt = kernel_t_of(l);
    int64_t k = depth(l), c = in_channels(l);
    for (int64_t p = 0; p < k; p++)
        for (int64_t q = 0; q < c; q++) kt[q * k + p] = l->kernel[p * c + q];
    convt_job job = {.l = l, .in = in, .y = out, .batch = batch};
    run_task(l, convt_forward_task, &job);
    int rows = (int)(batch * (l->out_size / l->units));
    if (kc_act_needs_input(l->act)) {
        kc_bias_act(out, l->no_bias ? NULL : l->bias, rows, l->units, KC_LINEAR);
        memcpy(preact_of(l), out, sizeof(float) * (size_t)batch * (size_t)l->out_size);
        kc_act_forward(out, rows, l->units, l->act);
    } else {
        kc_bias_act(out, l->no_bias ? NULL : l->bias, rows, l->units, l->act);
    }
}

/* Each part takes whole groups of images; per group, the chunks' weight gradients add up in
 * the group's partial, in image order. */
static void convt_backward_task(void *arg, int part, int parts) {
    const convt_job *j = arg;
    kc_layer *l = j->l;
    kc_window g = window(l);
    int64_t k = depth(l), c = in_channels(l), f = l->units;
    int64_t rows_per = (int64_t)g.oh * g.ow, out_rows_per = (int64_t)g.h * g.w;
    int cn = chunk_images(l);
    float *col = l->scratch + (int64_t)kc_thread_index() * chunk_floats(l);
    float *partials = partials_of(l);
    int64_t g0, g1;
    kc_split(j->groups, part, parts, 1, &g0, &g1);
    for (int64_t grp = g0; grp < g1; grp++) {
        float *dk = partials + grp * (l->kernel_size + f), *db = dk + l->kernel_size;
        int64_t s0, s1;
        kc_split(j->batch, (int)grp, j->groups, 1, &s0, &s1);
        memset(db, 0, sizeof(float) * (size_t)f);
        for (int64_t s = s0; s < s1; s += cn) {
            int n = (int)(s1 - s < cn ? s1 - s : cn);
            int64_t rows = n * rows_per;
            const float *dz = j->dout + s * l->out_size;
            for (int64_t r = 0; r < n * out_rows_per; r++) {
                const float *dzr = dz + r * f;
#pragma omp simd
                for (int64_t q = 0; q < f; q++) db[q] += dzr[q];
            }
            /* col (rows, k): the output gradient's window of each input pixel */
            kc_im2col(&g, dz, n, col);
            /* dW (k, c) (+)= col^T in */
            kc_gemm_ex(&(kc_gemm_args){.m = (int)k, .n = (int)c, .k = (int)rows, .a = col,
                                       .a_rs = 1, .a_cs = k, .b = j->in + s * l->in_size,
                                       .b_rs = c, .b_cs = 1, .c = dk, .ldc = c,
                                       .accumulate = s > s0, .serial = 1});
            if (!j->din) continue;
            /* din (rows, c) = col W */
            kc_gemm_ex(&(kc_gemm_args){.m = (int)rows, .n = (int)c, .k = (int)k, .a = col,
                                       .a_rs = k, .a_cs = 1, .b = l->kernel, .b_rs = c,
                                       .b_cs = 1, .c = j->din + s * l->in_size, .ldc = c,
                                       .serial = 1});
        }
    }
}

static void convt_backward(kc_layer *l, const float *in, const float *out, float *dout,
                           float *din, int batch, int dout_is_preactivation,
                           const kc_forward_ctx *ctx) {
    if (!dout_is_preactivation)
        kc_act_backward(kc_act_needs_input(l->act) ? preact_of(l) : NULL, out, dout,
                        (int)(batch * (l->out_size / l->units)), l->units, l->act);
    int groups = batch < CONV_GROUPS ? batch : CONV_GROUPS;
    convt_job job = {.l = l, .in = in, .dout = dout, .din = din, .batch = batch,
                     .groups = groups};
    run_task(l, convt_backward_task, &job);
    /* the partials added in group order (without a bias, its partial sums stay unused) */
    int64_t per = l->kernel_size + l->units, used = l->no_bias ? l->kernel_size : per;
    const float *partials = partials_of(l);
    memcpy(l->dkernel, partials, sizeof(float) * (size_t)used); /* dkernel, dbias adjacent */
    for (int grp = 1; grp < groups; grp++) {
        const float *p = partials + grp * per;
#pragma omp simd
        for (int64_t i = 0; i < used; i++) l->dkernel[i] += p[i];
    }
}

/* ---- Keras's config and variables ---- */

static kc_status convt_from(const cJSON *cfg, const char *where, kc_layer **out) {
    int filters;
    kc_status st = kc_cfg_count(cfg, "filters", where, &filters);
    if (st) return st;
    kc_conv2d_opts o = {.strides = {1, 1}, .padding = KC_VALID, .activation = KC_LINEAR};
    const cJSON *ks = kc_cfg_field(cfg, "kernel_size");
    if (!ks || cJSON_IsNull(ks)) return kc_err(KC_EFORMAT, "%s: kernel_size is missing", where);
    st = kc_cfg_int_pair(cfg, "kernel_size", where, o.kernel_size);
    if (!st) st = kc_cfg_int_pair(cfg, "strides", where, o.strides);
    if (!st) st = kc_cfg_padding(cfg, where, &o.padding);
    if (!st) st = kc_cfg_channels_last(cfg, where);
    int dil[2] = {1, 1};
    if (!st) st = kc_cfg_int_pair(cfg, "dilation_rate", where, dil);
    if (!st && (dil[0] != 1 || dil[1] != 1))
        st = kc_err(KC_EFORMAT,
                    "%s: dilation_rate (%d, %d) is not supported by kerac's Conv2DTranspose (1 "
                    "only)",
                    where, dil[0], dil[1]);
    /* output_padding: null (None, the size inferred) or an int or 2 ints >= 0 */
    const cJSON *op = kc_cfg_field(cfg, "output_padding");
    if (!st && op && !cJSON_IsNull(op)) {
        int v[2];
        st = kc_cfg_int_pair_value(op, "output_padding", where, 0, v);
        if (!st && (v[0] >= o.strides[0] || v[1] >= o.strides[1]))
            st = kc_err(KC_EFORMAT,
                        "%s: output_padding (%d, %d) must be strictly less than strides (%d, %d)",
                        where, v[0], v[1], o.strides[0], o.strides[1]);
        for (int i = 0; i < 2 && !st; i++) o.output_padding[i] = v[i] ? v[i] : KC_ZERO;
    }
    if (!st) st = kc_cfg_use_bias(cfg, where, &o.use_bias);
    static const char *const nulls[] = {"kernel_regularizer", "bias_regularizer",
                                        "activity_regularizer", "kernel_constraint",
                                        "bias_constraint", "lora_rank"};
    if (!st) st = kc_cfg_must_be_null(cfg, where, nulls, 6);
    if (!st) st = kc_cfg_activation(kc_cfg_field(cfg, "activation"), where, &o.activation);
    if (st) return st;
    return kc_cfg_made(kc_conv2d_transpose(filters, &o), where, out);
}

static kc_status convt_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "filters", l->units);
    cJSON_AddItemToObject(cfg, "kernel_size", kc_cfg_int_list2(l->kh, l->kw));
    cJSON_AddItemToObject(cfg, "strides", kc_cfg_int_list2(l->sh, l->sw));
    cJSON_AddStringToObject(cfg, "padding", l->pad_same ? "same" : "valid");
    if (l->output_padding[0] < 0) cJSON_AddNullToObject(cfg, "output_padding");
    else
        cJSON_AddItemToObject(cfg, "output_padding",
                              kc_cfg_int_list2(l->output_padding[0], l->output_padding[1]));
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    cJSON_AddItemToObject(cfg, "dilation_rate", kc_cfg_int_list2(1, 1));
    cJSON_AddStringToObject(cfg, "activation", kc_act_name(l->act));
    cJSON_AddBoolToObject(cfg, "use_bias", !l->no_bias);
    cJSON_AddItemToObject(cfg, "kernel_initializer",
                          kc_initializer_to_json(&(kc_initializer){0}, KC_INIT_GLOROT_UNIFORM));
    cJSON_AddItemToObject(cfg, "bias_initializer",
                          kc_initializer_to_json(&(kc_initializer){0}, KC_INIT_ZEROS));
    const char *nulls[] = {"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                           "kernel_constraint", "bias_constraint"};
    for (int i = 0; i < 5; i++) cJSON_AddNullToObject(cfg, nulls[i]);
    return KC_OK;
}

static int convt_weights(const kc_layer *l, kc_weight_desc *w) {
    int64_t in = l->in_shape.rank == 3 ? l->in_shape.dims[2] : 0;
    return kc_cfg_kernel_bias(l, 4, (int64_t[]){l->kh, l->kw, l->units, in}, w);
}

const kc_layer_ops kc_conv2d_transpose_ops = {
    .type_name = "Conv2DTranspose",
    .base_name = "conv2d_transpose",
    .build = convt_build,
    .init = convt_init,
    .forward = convt_forward,
    .backward = convt_backward,
    .scratch_size = convt_scratch,
    .io = {convt_from, convt_to, convt_weights}};

kc_layer *kc_conv2d_transpose(int filters, const kc_conv2d_opts *opts) {
    kc_conv2d_opts o = opts ? *opts : (kc_conv2d_opts){0};
    kc_layer *l = kc_conv_new(&kc_conv2d_transpose_ops, filters, &o);
    if (!l) return NULL;
    /* 0 -> None, KC_ZERO -> 0; the second defaults to the first */
    int op0 = o.output_padding[0], op1 = o.output_padding[1] ? o.output_padding[1] : op0;
    l->output_padding[0] = op0 == 0 ? -1 : op0 == KC_ZERO ? 0 : op0;
    l->output_padding[1] = op1 == 0 ? -1 : op1 == KC_ZERO ? 0 : op1;
    return l;
}
