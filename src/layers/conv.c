/* conv.c: Conv2D(filters, kernel_size, strides, padding, activation, dilation_rate, use_bias),
 * channels last.
 * out = act(im2col(in) @ kernel + bias), kernel (kh, kw, in_channels, filters), which is the
 * (kh * kw * in_channels, filters) matrix the product wants. The batch is split over the pool
 * by images; each part unfolds a few images at a time into its thread's buffer (kept in that
 * core's L2) and runs a product on that thread.
 *
 * The weight gradient is summed in CONV_GROUPS fixed groups of images, each into its own
 * partial, and the partials are added in group order: the result is the same for any thread
 * count. With use_bias=False there is no bias (the partials still sum one, unused). Kernel
 * and bias initializers and regularizers as Keras's (initializers.c); the model adds the
 * regularizers' gradients. */
#include "layer.h"
#include "../initializers.h"
#include "../io/config_fields.h"
#include "../ops/ops.h"
#include "../util/threads.h"
#include <math.h>
#include <string.h>

#define CONV_GROUPS 16    /* partial weight gradients per batch */
#define PARTS_PER_THREAD 4 /* parts of a batch per thread: a delayed thread delays one part */
#define CHUNK_ROWS 512    /* unfolded rows per product: 512 x (3*3*32) floats is 0.6 MB, so the
                             unfolded chunk and its gradient stay in a core's L2 */

/* the input's channels: its last dimension (Conv1D's (steps, channels) is an image of height 1) */
static int64_t depth(const kc_layer *l) {
    return (int64_t)l->kh * l->kw * l->in_shape.dims[l->in_shape.rank - 1];
}

/* dilation_rate above 1 (0 means 1): the windows unfold tap by tap (kc_im2col_dilated) */
static int dilated(const kc_layer *l) { return l->dh > 1 || l->dw > 1; }

/* Few input channels (the first layer on grey images: a window row is 3 floats): unfold into
 * the transposed matrix, whose rows are long copies, and let the products read it transposed */
static int unfold_transposed(const kc_layer *l) {
    return l->kw * l->in_shape.dims[2] < 16 && !dilated(l);
}

/* the images' windows into col: transposed (colT) when t */
static void unfold(const kc_layer *l, const kc_window *g, const float *in, int n, float *col,
                   int t) {
    if (t) kc_im2col_t(g, in, n, col);
    else if (dilated(l)) kc_im2col_dilated(g, l->dh, l->dw, in, n, col);
    else kc_im2col(g, in, n, col);
}

/* images per unfolded chunk */
static int chunk_images(const kc_layer *l) {
    int64_t rows = l->out_size / l->units;
    int64_t n = CHUNK_ROWS / (rows > 0 ? rows : 1);
    return n > 0 ? (int)n : 1;
}

static kc_status conv_build(kc_layer *l) {
    char buf[64];
    if (l->units <= 0)
        return kc_err(KC_EINVAL, "layer %s (Conv2D): filters must be positive, got %d", l->name,
                      l->units);
    if (l->kh <= 0 || l->kw <= 0 || l->sh <= 0 || l->sw <= 0)
        return kc_err(KC_EINVAL,
                      "layer %s (Conv2D): kernel_size and strides must be positive, got (%d, %d) "
                      "and (%d, %d)",
                      l->name, l->kh, l->kw, l->sh, l->sw);
    if ((unsigned)l->act >= KC_ACT_COUNT)
        return kc_err(KC_EINVAL, "layer %s (Conv2D): unknown activation %d", l->name, (int)l->act);
    if ((unsigned)l->pad_same > 1)
        return kc_err(KC_EINVAL, "layer %s (Conv2D): padding must be KC_VALID or KC_SAME, got %d",
                      l->name, l->pad_same);
    if (l->dh <= 0 || l->dw <= 0)
        return kc_err(KC_EINVAL, "layer %s (Conv2D): dilation_rate must be positive, got (%d, %d)",
                      l->name, l->dh, l->dw);
    if (dilated(l) && (l->sh > 1 || l->sw > 1))
        return kc_err(KC_EINVAL,
                      "layer %s (Conv2D): strides (%d, %d) with dilation_rate (%d, %d): strides > "
                      "1 together with dilation_rate > 1 is not supported (as in Keras)",
                      l->name, l->sh, l->sw, l->dh, l->dw);
    if (l->in_shape.rank != 3)
        return kc_err(KC_EINVAL,
                      "layer %s (Conv2D) needs an input of shape (height, width, channels), got "
                      "%s: give the model kc_shape3(28, 28, 1) or add kc_reshape",
                      l->name, kc_shape_str(l->in_shape, buf, sizeof buf));
    /* the window's extent: (k - 1) * dilation + 1 */
    int eh = (l->kh - 1) * l->dh + 1, ew = (l->kw - 1) * l->dw + 1;
    int oh, ow;
    kc_window_axis(l->in_shape.dims[0], eh, l->sh, l->pad_same, &oh, &l->pad_top);
    kc_window_axis(l->in_shape.dims[1], ew, l->sw, l->pad_same, &ow, &l->pad_left);
    if (oh <= 0 || ow <= 0)
        return kc_err(KC_EINVAL,
                      "layer %s (Conv2D): a %dx%d kernel%s does not fit the input %s with padding "
                      "\"valid\"",
                      l->name, eh, ew, dilated(l) ? " (dilated)" : "",
                      kc_shape_str(l->in_shape, buf, sizeof buf));
    l->out_shape = kc_shape3(oh, ow, l->units);
    l->kernel_size = depth(l) * l->units;
    l->param_count = l->kernel_size + (l->no_bias ? 0 : l->units);
    return kc_layer_check_init_reg(
        l, 4, (int64_t[]){l->kh, l->kw, l->in_shape.dims[2], l->units});
}

static void conv_init(kc_layer *l, kc_rng *rng) {
    /* kernel (kh, kw, in, filters): Keras's fans are kh*kw*in and kh*kw*filters */
    kc_layer_init_weights(l, 4, (int64_t[]){l->kh, l->kw, l->in_shape.dims[2], l->units}, rng);
}

/* scratch: per thread an unfolded chunk and its gradient; the groups' partial gradients; the
 * kernel transposed (filters, k) for the input gradient's product */
static int64_t chunk_floats(const kc_layer *l) {
    return (int64_t)chunk_images(l) * l->out_shape.dims[0] * l->out_shape.dims[1] * depth(l);
}
int64_t kc_conv_scratch(const kc_layer *l, int batch, int parts) {
    return (int64_t)parts * 2 * chunk_floats(l) +
           CONV_GROUPS * (l->kernel_size + l->units) + l->kernel_size +
           (kc_act_needs_input(l->act) ? (int64_t)batch * l->out_size : 0);
}
static float *partials_of(const kc_layer *l) {
    return l->scratch + (int64_t)l->scratch_parts * 2 * chunk_floats(l);
}
static float *kernel_t_of(const kc_layer *l) {
    return partials_of(l) + CONV_GROUPS * (l->kernel_size + l->units);
}
/* the pre-activation (batch, out_size), for activations whose derivative needs it */
static float *preact_of(const kc_layer *l) { return kernel_t_of(l) + l->kernel_size; }

typedef struct {
    kc_layer *l;
    const float *in, *out;
    float *y, *dout, *din;
    int batch, groups, relu_inline;
} conv_job;

static void conv_forward_task(void *arg, int part, int parts) {
    const conv_job *j = arg;
    kc_layer *l = j->l;
    kc_window g = kc_layer_window(l);
    int64_t k = depth(l), rows_per = (int64_t)g.oh * g.ow;
    int cn = chunk_images(l);
    float *col = l->scratch + (int64_t)kc_thread_index() * 2 * chunk_floats(l);
    int64_t s0, s1;
    kc_split(j->batch, part, parts, 1, &s0, &s1);
    for (int64_t s = s0; s < s1; s += cn) {
        int n = (int)(s1 - s < cn ? s1 - s : cn);
        int64_t rows = n * rows_per, t = unfold_transposed(l);
        unfold(l, &g, j->in + s * l->in_size, n, col, (int)t);
        kc_gemm_ex(&(kc_gemm_args){.m = (int)rows, .n = l->units, .k = (int)k, .a = col,
                                   .a_rs = t ? 1 : k, .a_cs = t ? rows : 1, .b = l->kernel,
                                   .b_rs = l->units, .b_cs = 1, .c = j->y + s * l->out_size,
                                   .ldc = l->units, .bias = l->no_bias ? NULL : l->bias,
                                   .relu = l->act == KC_RELU, .serial = 1});
    }
}

/* runs the task on the pool, or on the caller when the scratch was sized for fewer threads */
static void run_task(const kc_layer *l, kc_task_fn fn, conv_job *job) {
    kc_parallel_parts_max(fn, job, PARTS_PER_THREAD, l->scratch_parts);
}

void kc_conv_forward(kc_layer *l, const float *in, float *out, int batch,
                         const kc_forward_ctx *ctx) {
    conv_job job = {.l = l, .in = in, .y = out, .batch = batch};
    run_task(l, conv_forward_task, &job);
    if (l->act != KC_RELU && l->act != KC_LINEAR) {
        if (kc_act_needs_input(l->act))
            memcpy(preact_of(l), out, sizeof(float) * (size_t)batch * (size_t)l->out_size);
        kc_act_forward(out, (int)(batch * (l->out_size / l->units)), l->units, l->act);
    }
}

/* Each part takes whole groups of images; per group, the chunks' weight gradients add up in
 * the group's partial, in image order. */
static void conv_backward_task(void *arg, int part, int parts) {
    const conv_job *j = arg;
    kc_layer *l = j->l;
    kc_window g = kc_layer_window(l);
    int64_t k = depth(l), rows_per = (int64_t)g.oh * g.ow, f = l->units;
    int cn = chunk_images(l);
    float *col = l->scratch + (int64_t)kc_thread_index() * 2 * chunk_floats(l);
    float *dcol = col + chunk_floats(l);
    float *partials = partials_of(l), *kernel_t = kernel_t_of(l);
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
            float *dz = j->dout + s * l->out_size;
            const float *y = j->out + s * l->out_size;
            /* relu's derivative and the bias gradient in one pass over dz */
            for (int64_t r = 0; r < rows; r++) {
                float *dzr = dz + r * f;
                const float *yr = y + r * f;
                if (j->relu_inline) {
#pragma omp simd
                    for (int64_t c = 0; c < f; c++) {
                        dzr[c] = yr[c] > 0.0f ? dzr[c] : 0.0f;
                        db[c] += dzr[c];
                    }
                } else {
#pragma omp simd
                    for (int64_t c = 0; c < f; c++) db[c] += dzr[c];
                }
            }
            int t = unfold_transposed(l);
            unfold(l, &g, j->in + s * l->in_size, n, col, t);
            /* dkernel (k, f) (+)= col^T dz */
            kc_gemm_ex(&(kc_gemm_args){.m = (int)k, .n = (int)f, .k = (int)rows, .a = col,
                                       .a_rs = t ? rows : 1, .a_cs = t ? 1 : k, .b = dz,
                                       .b_rs = f, .b_cs = 1,
                                       .c = dk, .ldc = f, .accumulate = s > s0, .serial = 1});
            if (!j->din) continue;
            /* dcol = dz kernel^T, then folded back onto the images */
            kc_gemm_ex(&(kc_gemm_args){.m = (int)rows, .n = (int)k, .k = (int)f, .a = dz,
                                       .a_rs = f, .a_cs = 1, .b = kernel_t, .b_rs = k,
                                       .b_cs = 1, .c = dcol, .ldc = k, .serial = 1});
            if (dilated(l)) kc_col2im_dilated(&g, l->dh, l->dw, dcol, n, j->din + s * l->in_size);
            else kc_col2im(&g, dcol, n, j->din + s * l->in_size);
        }
    }
}

void kc_conv_backward(kc_layer *l, const float *in, const float *out, float *dout,
                          float *din, int batch, int dout_is_preactivation,
                          const kc_forward_ctx *ctx) {
    int relu_inline = !dout_is_preactivation && l->act == KC_RELU;
    if (!dout_is_preactivation && !relu_inline)
        kc_act_backward(kc_act_needs_input(l->act) ? preact_of(l) : NULL, out, dout,
                        (int)(batch * (l->out_size / l->units)), l->units, l->act);
    int groups = batch < CONV_GROUPS ? batch : CONV_GROUPS;
    conv_job job = {.l = l, .in = in, .out = out, .dout = dout, .din = din, .batch = batch,
                    .groups = groups, .relu_inline = relu_inline};
    if (din) { /* kernel (k, f) transposed once, so the products read it in rows */
        float *kt = kernel_t_of(l);
        int64_t k = depth(l), f = l->units;
        for (int64_t p = 0; p < k; p++)
            for (int64_t c = 0; c < f; c++) kt[c * k + p] = l->kernel[p * f + c];
    }
    run_task(l, conv_backward_task, &job);
    /* the partials added in group order; dkernel and dbias are adjacent (no dbias without a
     * bias: the partials' bias sums are left out) */
    int64_t stride = l->kernel_size + l->units, used = l->no_bias ? l->kernel_size : stride;
    const float *partials = partials_of(l);
    memcpy(l->dkernel, partials, sizeof(float) * (size_t)used);
    for (int grp = 1; grp < groups; grp++) {
        const float *p = partials + grp * stride;
#pragma omp simd
        for (int64_t i = 0; i < used; i++) l->dkernel[i] += p[i];
    }
}

/* ---- Keras's config and variables ---- */

static kc_status conv2d_from(const cJSON *cfg, const char *where, kc_layer **out) {
    int filters;
    kc_status st = kc_cfg_count(cfg, "filters", where, &filters);
    if (st) return st;
    kc_conv2d_opts o = {.strides = {1, 1}, .padding = KC_VALID, .activation = KC_LINEAR};
    if (!kc_cfg_field(cfg, "kernel_size"))
        return kc_err(KC_EFORMAT, "%s: kernel_size is missing", where);
    st = kc_cfg_int_pair(cfg, "kernel_size", where, o.kernel_size);
    if (!st) st = kc_cfg_int_pair(cfg, "strides", where, o.strides);
    if (!st && !o.kernel_size[0]) st = kc_err(KC_EFORMAT, "%s: kernel_size is null", where);
    if (!st) st = kc_cfg_padding(cfg, where, &o.padding);
    if (!st) st = kc_cfg_channels_last(cfg, where);
    o.dilation_rate[0] = o.dilation_rate[1] = 1;
    if (!st) st = kc_cfg_int_pair(cfg, "dilation_rate", where, o.dilation_rate);
    if (!st && (o.dilation_rate[0] > 1 || o.dilation_rate[1] > 1) &&
        (o.strides[0] > 1 || o.strides[1] > 1))
        st = kc_err(KC_EFORMAT,
                    "%s: dilation_rate (%d, %d) with strides (%d, %d) is not supported (strides "
                    "> 1 together with dilation_rate > 1)",
                    where, o.dilation_rate[0], o.dilation_rate[1], o.strides[0], o.strides[1]);
    kc_cfg_weight_opts w;
    if (!st) st = kc_cfg_conv_common(cfg, where, &w, &o.activation);
    if (st) return st;
    KC_CFG_WEIGHT_OPTS_INTO(o, w);
    return kc_cfg_made(kc_conv2d_ex(filters, &o), where, out);
}

static kc_status conv2d_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "filters", l->units);
    cJSON_AddItemToObject(cfg, "kernel_size", kc_cfg_int_list2(l->kh, l->kw));
    cJSON_AddItemToObject(cfg, "strides", kc_cfg_int_list2(l->sh, l->sw));
    cJSON_AddStringToObject(cfg, "padding", l->pad_same ? "same" : "valid");
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    cJSON_AddItemToObject(cfg, "dilation_rate", kc_cfg_int_list2(l->dh, l->dw));
    cJSON_AddNumberToObject(cfg, "groups", 1);
    cJSON_AddStringToObject(cfg, "activation", kc_act_name(l->act));
    kc_cfg_weight_opts_to(l, cfg);
    return KC_OK;
}

static int conv2d_weights(const kc_layer *l, kc_weight_desc *w) {
    int64_t in = l->in_shape.rank == 3 ? l->in_shape.dims[2] : 0;
    return kc_cfg_kernel_bias(l, 4, (int64_t[]){l->kh, l->kw, in, l->units}, w);
}

const kc_layer_ops kc_conv2d_ops = {
    .type_name = "Conv2D",
    .base_name = "conv2d",
    .build = conv_build,
    .init = conv_init,
    .forward = kc_conv_forward,
    .backward = kc_conv_backward,
    .scratch_size = kc_conv_scratch,
    .io = {conv2d_from, conv2d_to, conv2d_weights}};

kc_layer *kc_conv_new(const kc_layer_ops *ops, int filters, const kc_conv2d_opts *o) {
    kc_layer *l = kc_layer_new(ops);
    if (!l) return NULL;
    l->units = filters;
    l->kh = o->kernel_size[0];
    l->kw = o->kernel_size[1] ? o->kernel_size[1] : o->kernel_size[0];
    l->sh = o->strides[0] ? o->strides[0] : 1;
    l->sw = o->strides[1] ? o->strides[1] : l->sh;
    l->pad_same = (int)o->padding;
    l->act = o->activation;
    l->dh = o->dilation_rate[0] ? o->dilation_rate[0] : 1;
    l->dw = o->dilation_rate[1] ? o->dilation_rate[1] : l->dh;
    l->no_bias = o->use_bias == KC_ZERO;
    return l;
}

kc_layer *kc_conv2d_ex(int filters, const kc_conv2d_opts *opts) {
    kc_conv2d_opts o = opts ? *opts : (kc_conv2d_opts){0};
    kc_layer *l = kc_conv_new(&kc_conv2d_ops, filters, &o);
    if (!l) return NULL;
    l->kernel_init = o.kernel_initializer;
    l->bias_init = o.bias_initializer;
    l->kernel_reg = o.kernel_regularizer;
    l->bias_reg = o.bias_regularizer;
    l->activity_reg = o.activity_regularizer;
    return l;
}

kc_layer *kc_conv2d(int filters, int kernel_size, kc_act activation) {
    return kc_conv2d_ex(filters, &(kc_conv2d_opts){.kernel_size = {kernel_size, kernel_size},
                                                   .activation = activation});
}
