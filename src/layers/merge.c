/* merge.c: Keras's merge layers, which take several inputs: Add, Subtract, Multiply, Average,
 * Maximum, Minimum (elementwise, with Keras's broadcasting), Concatenate and Dot. No weights.
 * The kernels are in ops/merge_ops.c; here: shapes, their checks, the classes and their configs. */
#include "layer.h"
#include "../io/config_fields.h"
#include "../ops/merge_ops.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

_Static_assert(KC_MERGE_MAX_INPUTS == KC_MAX_LAYER_INPUTS, "merge_ops.h and layer.h disagree");

#define KERAS_EPSILON 1e-7f /* keras.backend.epsilon(): Dot's normalisation bound */

/* "(4), (5)": every input's shape, for messages */
static const char *input_shapes_str(const kc_layer *l, char *buf, size_t size) {
    size_t at = 0;
    buf[0] = 0;
    int n = l->n_in < KC_MAX_LAYER_INPUTS ? l->n_in : KC_MAX_LAYER_INPUTS;
    for (int i = 0; i < n && at + 1 < size; i++) {
        char s[64];
        int w = snprintf(buf + at, size - at, "%s%s", i ? ", " : "",
                         kc_shape_str(l->in_shapes[i], s, sizeof s));
        if (w < 0) break;
        at += (size_t)w;
    }
    return buf;
}

/* the number of inputs against the table's min_inputs, max_inputs */
static kc_status check_input_count(const kc_layer *l) {
    int lo = l->ops->min_inputs ? l->ops->min_inputs : 2, hi = l->ops->max_inputs;
    if (l->n_in >= lo && l->n_in <= hi) return KC_OK;
    char want[64];
    if (lo == hi) snprintf(want, sizeof want, "exactly %d inputs", lo);
    else snprintf(want, sizeof want, "%d to %d inputs", lo, hi);
    if (l->n_in <= 0)
        return kc_err(KC_EINVAL,
                      "layer %s (%s): called on no inputs; %s is a merge layer and needs %s "
                      "(call it on a list of tensors in a functional model; it cannot follow "
                      "another layer in a Sequential model)",
                      l->name, l->ops->type_name, l->ops->type_name, want);
    char shapes[1024];
    return kc_err(KC_EINVAL, "layer %s (%s): called on %d inputs with shapes %s; %s needs %s",
                  l->name, l->ops->type_name, l->n_in, input_shapes_str(l, shapes, sizeof shapes),
                  l->ops->type_name, want);
}

/* ---- Keras's configs: name, trainable and dtype, and the class's own options ---- */

/* A merge layer's config holds name, trainable and dtype (checked by the model's loader), and
 * the class's own options (own, n of them); any other field is refused by name. */
static kc_status merge_fields(const cJSON *cfg, const char *where, const char *cls,
                              const char *const *own, int n) {
    static const char *const base[] = {"name", "trainable", "dtype"};
    const cJSON *item;
    cJSON_ArrayForEach(item, cfg) {
        int known = 0;
        for (int i = 0; i < 3 && !known; i++) known = item->string && !strcmp(item->string, base[i]);
        for (int i = 0; i < n && !known; i++) known = item->string && !strcmp(item->string, own[i]);
        if (!known)
            return kc_err(KC_EFORMAT, "%s: %s's option '%s' is not supported by kerac", where, cls,
                          item->string ? item->string : "?");
    }
    return KC_OK;
}

/* a whole number (JSON number) into *out */
static int whole(const cJSON *v, int *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        fabs(v->valuedouble) > 1e6)
        return 0;
    *out = (int)v->valuedouble;
    return 1;
}

/* ---- Add, Subtract, Multiply, Average, Maximum, Minimum ---- */

static kc_merge_op op_of(const kc_layer *l); /* the class's operation */

static int any_none(const kc_layer *l) {
    for (int i = 0; i < l->n_in; i++)
        for (int d = 0; d < l->in_shapes[i].rank; d++)
            if (l->in_shapes[i].dims[d] == KC_NONE) return 1;
    return 0;
}

static kc_status elementwise_build(kc_layer *l) {
    kc_status st = check_input_count(l);
    if (st) return st;
    if (any_none(l)) { /* a None length: equal shapes only (each call's lengths broadcast) */
        for (int i = 1; i < l->n_in; i++)
            if (memcmp(&l->in_shapes[i], &l->in_shapes[0], sizeof(kc_shape))) {
                char shapes[1024];
                return kc_err(KC_EINVAL,
                              "layer %s (%s): inputs have shapes %s; with a None dimension kerac "
                              "needs equal shapes", l->name, l->ops->type_name,
                              input_shapes_str(l, shapes, sizeof shapes));
            }
        l->out_shape = l->in_shapes[0];
        l->param_count = 0;
        return KC_OK;
    }
    kc_broadcast b;
    if (!kc_broadcast_init(&b, l->n_in, l->in_shapes)) {
        char shapes[1024];
        return kc_err(KC_EINVAL,
                      "layer %s (%s): inputs have shapes %s; %s needs equal shapes, or shapes "
                      "that broadcast (aligned from the last axis, each size equal or 1)",
                      l->name, l->ops->type_name, input_shapes_str(l, shapes, sizeof shapes),
                      l->ops->type_name);
    }
    l->out_shape.rank = b.rank;
    memset(l->out_shape.dims, 0, sizeof l->out_shape.dims);
    for (int d = 0; d < b.rank; d++) l->out_shape.dims[d] = (int)b.dims[d];
    l->param_count = 0;
    return KC_OK;
}

static void elementwise_forward(kc_layer *l, const float *const *in, float *out, int batch,
                                const kc_forward_ctx *ctx) {
    kc_broadcast b;
    kc_broadcast_init(&b, l->n_in, l->in_shapes);
    kc_merge_forward(op_of(l), &b, in, out, batch);
}

static void elementwise_backward(kc_layer *l, const float *const *in, const float *out,
                                 const float *dout, float *const *din, int batch,
                                 const kc_forward_ctx *ctx) {
    kc_broadcast b;
    kc_broadcast_init(&b, l->n_in, l->in_shapes);
    kc_merge_backward(op_of(l), &b, in, dout, din, batch);
}

/* Keras's Merge.compute_mask: the masks OR'ed, or none unless every input has one (masks of
 * equal rows only: inputs that broadcast have no common rows) */
static int merge_mask(const kc_layer *l, const uint8_t *const *in, uint8_t *out, int batch) {
    for (int i = 0; i < l->n_in; i++)
        if (!in[i]) return 0;
    if (!out) return 1;
    int64_t rows = (int64_t)batch * (l->out_size / l->out_shape.dims[l->out_shape.rank - 1]);
    for (int64_t r = 0; r < rows; r++) {
        uint8_t m = 0;
        for (int i = 0; i < l->n_in; i++) m |= in[i][r] != 0;
        out[r] = m;
    }
    return 1;
}

/* the config: no options of their own; cls names the class */
static int dot_mask(const kc_layer *l, const uint8_t *const *in, uint8_t *out, int batch) {
    return 0;
}

static kc_status elementwise_from(const cJSON *cfg, const char *where, const char *cls,
                                  kc_layer *(*make)(void), kc_layer **out) {
    kc_status st = merge_fields(cfg, where, cls, NULL, 0);
    return st ? st : kc_cfg_made(make(), where, out);
}

static kc_status elementwise_to(const kc_layer *l, cJSON *cfg) { return KC_OK; }

/* the class kc_<name>_ops (kc_merge_<name> makes its layers); Keras takes a single input too,
 * except Subtract */
#define ELEMENTWISE(name, type, min, refusal)                                               \
    static kc_status name##_from(const cJSON *cfg, const char *where, kc_layer **out) {     \
        return elementwise_from(cfg, where, type, kc_merge_##name, out);                     \
    }                                                                                        \
    const kc_layer_ops kc_##name##_ops = {                                                   \
        .type_name = type,                                                                   \
        .base_name = #name,                                                                  \
        .build = elementwise_build,                                                          \
        .init = kc_no_init,                                                                  \
        .forward_n = elementwise_forward,                                                    \
        .backward_n = elementwise_backward,                                                  \
        .min_inputs = min,                                                                   \
        .max_inputs = (min) == 2 ? 2 : KC_MAX_LAYER_INPUTS,                                  \
        .supports_masking = 1,                                                               \
        .compute_mask_n = merge_mask,                                                        \
        .mask_refusal = refusal,                                                             \
        .allows_none = 1,                                                                    \
        .io = {name##_from, elementwise_to}};
/* Keras 3's Multiply, Maximum and Minimum change the values of masked positions (1 for
 * Multiply, the other inputs' for Maximum and Minimum); kerac does not reproduce that */
#define MASKED_VALUES                                                                        \
    "Keras 3 replaces the masked positions' values before this merge (and kerac does not "   \
    "reproduce that yet)"
ELEMENTWISE(add, "Add", 1, NULL)
ELEMENTWISE(subtract, "Subtract", 2, NULL)
ELEMENTWISE(multiply, "Multiply", 1, MASKED_VALUES)
ELEMENTWISE(average, "Average", 1, NULL)
ELEMENTWISE(maximum, "Maximum", 1, MASKED_VALUES)
ELEMENTWISE(minimum, "Minimum", 1, MASKED_VALUES)

/* the classes by kc_merge_op */
static const kc_layer_ops *const elementwise_ops[] = {
    [KC_MERGE_ADD] = &kc_add_ops,           [KC_MERGE_SUBTRACT] = &kc_subtract_ops,
    [KC_MERGE_MULTIPLY] = &kc_multiply_ops, [KC_MERGE_AVERAGE] = &kc_average_ops,
    [KC_MERGE_MAXIMUM] = &kc_maximum_ops,   [KC_MERGE_MINIMUM] = &kc_minimum_ops,
};
_Static_assert(sizeof elementwise_ops / sizeof *elementwise_ops == KC_MERGE_OP_COUNT,
               "elementwise_ops needs one class per kc_merge_op (ops/merge_ops.h)");

static kc_merge_op op_of(const kc_layer *l) {
    int op = 0;
    while (op < KC_MERGE_OP_COUNT - 1 && elementwise_ops[op] != l->ops) op++;
    return (kc_merge_op)op;
}

kc_layer *kc_merge_add(void) { return kc_layer_new(&kc_add_ops); }
kc_layer *kc_merge_subtract(void) { return kc_layer_new(&kc_subtract_ops); }
kc_layer *kc_merge_multiply(void) { return kc_layer_new(&kc_multiply_ops); }
kc_layer *kc_merge_average(void) { return kc_layer_new(&kc_average_ops); }
kc_layer *kc_merge_maximum(void) { return kc_layer_new(&kc_maximum_ops); }
kc_layer *kc_merge_minimum(void) { return kc_layer_new(&kc_minimum_ops); }

/* ---- Concatenate ---- */

/* Keras's axis (the batch axis is 0, -1 the last) as a per-sample axis of rank-`rank` inputs,
 * or -1 when it is out of range or the batch axis */
static int sample_axis(int axis, int rank) {
    int a = axis < 0 ? axis + rank + 1 : axis;
    return a >= 1 && a <= rank ? a - 1 : -1;
}

/* the blocks kc_concat_forward copies: outer rows of inner[i] values per input */
static int64_t concat_blocks(const kc_layer *l, int64_t *inner) {
    int rank = l->in_shapes[0].rank, p = sample_axis(l->axis, rank);
    int64_t outer = 1;
    for (int d = 0; d < p; d++) outer *= l->in_shapes[0].dims[d];
    for (int i = 0; i < l->n_in; i++) {
        inner[i] = 1;
        for (int d = p; d < rank; d++) inner[i] *= l->in_shapes[i].dims[d];
    }
    return outer;
}

static kc_status concatenate_build(kc_layer *l) {
    kc_status st = check_input_count(l);
    if (st) return st;
    char shapes[1024];
    int rank = l->in_shapes[0].rank;
    for (int i = 1; i < l->n_in; i++)
        if (l->in_shapes[i].rank != rank)
            return kc_err(KC_EINVAL,
                          "layer %s (Concatenate): inputs have shapes %s; Concatenate needs "
                          "inputs of one rank",
                          l->name, input_shapes_str(l, shapes, sizeof shapes));
    if (rank < 1)
        return kc_err(KC_EINVAL,
                      "layer %s (Concatenate): inputs have shapes %s: no axis besides the "
                      "batch axis to concatenate along",
                      l->name, input_shapes_str(l, shapes, sizeof shapes));
    int p = sample_axis(l->axis, rank);
    if (p < 0) {
        if (l->axis == 0 || l->axis == -(rank + 1))
            return kc_err(KC_EINVAL,
                          "layer %s (Concatenate): axis %d is the batch axis; kerac "
                          "concatenates along a sample axis (1 to %d, or -1 to -%d, for inputs "
                          "of shapes %s)",
                          l->name, l->axis, rank, rank,
                          input_shapes_str(l, shapes, sizeof shapes));
        return kc_err(KC_EINVAL,
                      "layer %s (Concatenate): axis %d is out of range for inputs of shapes %s "
                      "(rank %d with the batch axis: axis 1 to %d, or -1 to -%d)",
                      l->name, l->axis, input_shapes_str(l, shapes, sizeof shapes), rank + 1,
                      rank, rank);
    }
    kc_shape out = l->in_shapes[0];
    for (int i = 1; i < l->n_in; i++)
        for (int d = 0; d < rank; d++) {
            if (d == p) { /* a None length along the axis gives None */
                if (out.dims[d] == KC_NONE || l->in_shapes[i].dims[d] == KC_NONE)
                    out.dims[d] = KC_NONE;
                else
                    out.dims[d] += l->in_shapes[i].dims[d];
                continue;
            }
            if (l->in_shapes[i].dims[d] != out.dims[d])
                return kc_err(KC_EINVAL,
                              "layer %s (Concatenate): inputs have shapes %s; Concatenate(axis="
                              "%d) needs equal sizes along every other axis",
                              l->name, input_shapes_str(l, shapes, sizeof shapes), l->axis);
        }
    l->out_shape = out;
    l->param_count = 0;
    return KC_OK;
}

static void concatenate_forward(kc_layer *l, const float *const *in, float *out, int batch,
                                const kc_forward_ctx *ctx) {
    int64_t inner[KC_MAX_LAYER_INPUTS];
    int64_t outer = concat_blocks(l, inner);
    kc_concat_forward(l->n_in, outer, inner, in, out, batch);
}

static void concatenate_backward(kc_layer *l, const float *const *in, const float *out,
                                 const float *dout, float *const *din, int batch,
                                 const kc_forward_ctx *ctx) {
    int64_t inner[KC_MAX_LAYER_INPUTS];
    int64_t outer = concat_blocks(l, inner);
    kc_concat_backward(l->n_in, outer, inner, dout, din, batch);
}

/* Keras's Concatenate.compute_mask: none unless some input has one; an input without a mask
 * counts as all ones; along the last axis the masks are OR'ed, along another axis the masks
 * are concatenated as the values are */
static int concatenate_mask(const kc_layer *l, const uint8_t *const *in, uint8_t *out,
                            int batch) {
    int any = 0;
    for (int i = 0; i < l->n_in; i++) any |= in[i] != NULL;
    if (!any || !out) return any;
    int rank = l->in_shapes[0].rank, p = sample_axis(l->axis, rank);
    int64_t rows = (int64_t)batch * (l->out_size / l->out_shape.dims[rank - 1]);
    if (p == rank - 1) {
        for (int64_t r = 0; r < rows; r++) {
            uint8_t m = 0;
            for (int i = 0; i < l->n_in; i++) m |= !in[i] || in[i][r];
            out[r] = m;
        }
        return 1;
    }
    /* rows are (d0 .. d[rank-2]): outer blocks before the axis, each input's d[p] * inner */
    int64_t outer = batch, inner = 1;
    for (int d = 0; d < p; d++) outer *= l->in_shapes[0].dims[d];
    for (int d = p + 1; d < rank - 1; d++) inner *= l->in_shapes[0].dims[d];
    uint8_t *o = out;
    for (int64_t b = 0; b < outer; b++)
        for (int i = 0; i < l->n_in; i++) {
            int64_t n = (int64_t)l->in_shapes[i].dims[p] * inner;
            if (in[i]) memcpy(o, in[i] + b * n, (size_t)n);
            else memset(o, 1, (size_t)n);
            o += n;
        }
    return 1;
}

/* axis (Keras 3 and tf.keras 2 alike; absent: -1). Its range is checked when the layer is
 * built, against the inputs' rank. */
static kc_status concatenate_from(const cJSON *cfg, const char *where, kc_layer **out) {
    static const char *const own[] = {"axis"};
    kc_status st = merge_fields(cfg, where, "Concatenate", own, 1);
    if (st) return st;
    int axis = -1;
    const cJSON *v = kc_cfg_field(cfg, "axis");
    if (v && !whole(v, &axis))
        return kc_err(KC_EFORMAT, "%s: Concatenate's axis is not a whole number", where);
    return kc_cfg_made(kc_concatenate(axis), where, out);
}

static kc_status concatenate_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "axis", l->axis);
    return KC_OK;
}

const kc_layer_ops kc_concatenate_ops = {
    .type_name = "Concatenate",
    .base_name = "concatenate",
    .build = concatenate_build,
    .init = kc_no_init,
    .forward_n = concatenate_forward,
    .backward_n = concatenate_backward,
    .min_inputs = 1,
    .max_inputs = KC_MAX_LAYER_INPUTS,
    .supports_masking = 1,
    .compute_mask_n = concatenate_mask,
    .allows_none = 1,
    .io = {concatenate_from, concatenate_to}};

kc_layer *kc_concatenate(int axis) {
    kc_layer *l = kc_layer_new(&kc_concatenate_ops);
    if (l) l->axis = axis;
    return l;
}

/* ---- Dot ---- */

/* each input's summed axis as a per-sample axis; 0, or -1 naming the input that is wrong */
static int dot_sample_axes(const kc_layer *l, int p[2]) {
    for (int i = 0; i < 2; i++) {
        int rank = l->in_shapes[i].rank, a = l->dot_axes[i];
        p[i] = sample_axis(a, rank);
        if (p[i] < 0) return -1 - i;
    }
    return 0;
}

static kc_dot_geom dot_geom(const kc_layer *l) {
    int p[2];
    dot_sample_axes(l, p);
    const kc_shape *x = &l->in_shapes[0], *y = &l->in_shapes[1];
    kc_dot_geom g = {1, x->dims[p[0]], 1, 1, 1, l->normalize, KERAS_EPSILON};
    for (int d = 0; d < x->rank; d++) {
        if (d < p[0]) g.a *= x->dims[d];
        if (d > p[0]) g.b *= x->dims[d];
    }
    for (int d = 0; d < y->rank; d++) {
        if (d < p[1]) g.c *= y->dims[d];
        if (d > p[1]) g.d *= y->dims[d];
    }
    return g;
}

static kc_status dot_build(kc_layer *l) {
    kc_status st = check_input_count(l);
    if (st) return st;
    char shapes[1024];
    for (int i = 0; i < 2; i++)
        if (l->in_shapes[i].rank < 1)
            return kc_err(KC_EINVAL,
                          "layer %s (Dot): inputs have shapes %s; Dot needs inputs with an axis "
                          "besides the batch axis",
                          l->name, input_shapes_str(l, shapes, sizeof shapes));
    int p[2], bad = dot_sample_axes(l, p);
    if (bad) {
        int i = -1 - bad, a = l->dot_axes[i], rank = l->in_shapes[i].rank;
        if (a == 0 || a == -(rank + 1))
            return kc_err(KC_EINVAL,
                          "layer %s (Dot): axes (%d, %d) with inputs of shapes %s: axis %d of "
                          "input %d is the batch axis; Dot sums along a sample axis",
                          l->name, l->dot_axes[0], l->dot_axes[1],
                          input_shapes_str(l, shapes, sizeof shapes), a, i);
        return kc_err(KC_EINVAL,
                      "layer %s (Dot): axes (%d, %d) with inputs of shapes %s: axis %d is out "
                      "of range for input %d (rank %d with the batch axis: 1 to %d, or -1 to "
                      "-%d)",
                      l->name, l->dot_axes[0], l->dot_axes[1],
                      input_shapes_str(l, shapes, sizeof shapes), a, i, rank + 1, rank, rank);
    }
    const kc_shape *x = &l->in_shapes[0], *y = &l->in_shapes[1];
    if (x->dims[p[0]] != y->dims[p[1]])
        return kc_err(KC_EINVAL,
                      "layer %s (Dot): inputs have shapes %s; axes (%d, %d) have sizes %d and "
                      "%d, Dot needs them equal",
                      l->name, input_shapes_str(l, shapes, sizeof shapes), l->dot_axes[0],
                      l->dot_axes[1],
                      x->dims[p[0]], y->dims[p[1]]);
    /* Keras's batch_dot: x's other axes, then y's; (1) when none is left */
    kc_shape out = {0, {0}};
    if (x->rank - 1 + y->rank - 1 > KC_MAX_RANK)
        return kc_err(KC_EINVAL,
                      "layer %s (Dot): inputs of shapes %s with axes (%d, %d) give an output of "
                      "rank %d; kerac's samples have at most %d axes",
                      l->name, input_shapes_str(l, shapes, sizeof shapes), l->dot_axes[0],
                      l->dot_axes[1],
                      x->rank + y->rank - 2, KC_MAX_RANK);
    for (int d = 0; d < x->rank; d++)
        if (d != p[0]) out.dims[out.rank++] = x->dims[d];
    for (int d = 0; d < y->rank; d++)
        if (d != p[1]) out.dims[out.rank++] = y->dims[d];
    if (out.rank == 0) out = kc_shape1(1);
    l->out_shape = out;
    l->param_count = 0;
    return KC_OK;
}

static void dot_forward(kc_layer *l, const float *const *in, float *out, int batch,
                        const kc_forward_ctx *ctx) {
    kc_dot_geom g = dot_geom(l);
    kc_batch_dot(&g, in[0], in[1], out, batch);
}

static void dot_backward(kc_layer *l, const float *const *in, const float *out,
                         const float *dout, float *const *din, int batch,
                         const kc_forward_ctx *ctx) {
    kc_dot_geom g = dot_geom(l);
    kc_batch_dot_backward(&g, in[0], in[1], dout, din[0], din[1], batch);
}

/* axes (an int, or a list of 2: Keras 3 writes its tuple as a list, tf.keras 2 either) and
 * normalize (absent: false) */
static kc_status dot_from(const cJSON *cfg, const char *where, kc_layer **out) {
    static const char *const own[] = {"axes", "normalize"};
    kc_status st = merge_fields(cfg, where, "Dot", own, 2);
    if (st) return st;
    const cJSON *v = kc_cfg_field(cfg, "axes");
    int axes[2];
    if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) != 2 || !whole(cJSON_GetArrayItem(v, 0), &axes[0]) ||
            !whole(cJSON_GetArrayItem(v, 1), &axes[1]))
            return kc_err(KC_EFORMAT, "%s: Dot's axes must be a whole number or a list of 2",
                          where);
    } else if (whole(v, &axes[0])) {
        axes[1] = axes[0];
    } else {
        return kc_err(KC_EFORMAT, "%s: Dot's axes is %s (a whole number or a list of 2)", where,
                      v ? "not a whole number or a list of 2" : "missing");
    }
    const cJSON *nz = kc_cfg_field(cfg, "normalize");
    if (nz && !cJSON_IsNull(nz) && !cJSON_IsBool(nz))
        return kc_err(KC_EFORMAT, "%s: Dot's normalize is not true or false", where);
    return kc_cfg_made(kc_dot(axes[0], axes[1], cJSON_IsTrue(nz)), where, out);
}

static kc_status dot_to(const kc_layer *l, cJSON *cfg) {
    /* Keras's axes=k means (k, k) for either sign of k: one number when they are equal */
    if (l->dot_axes[0] == l->dot_axes[1]) cJSON_AddNumberToObject(cfg, "axes", l->dot_axes[0]);
    else cJSON_AddItemToObject(cfg, "axes", kc_cfg_int_list2(l->dot_axes[0], l->dot_axes[1]));
    cJSON_AddBoolToObject(cfg, "normalize", l->normalize);
    return KC_OK;
}

const kc_layer_ops kc_dot_ops = {
    .type_name = "Dot",
    .base_name = "dot",
    .build = dot_build,
    .init = kc_no_init,
    .forward_n = dot_forward,
    .backward_n = dot_backward,
    .min_inputs = 2,
    .max_inputs = 2,
    .supports_masking = 1, /* Keras's Dot.compute_mask: None */
    .compute_mask_n = dot_mask,
    .io = {dot_from, dot_to}};

kc_layer *kc_dot(int axis0, int axis1, int normalize) {
    kc_layer *l = kc_layer_new(&kc_dot_ops);
    if (l) {
        l->dot_axes[0] = axis0;
        l->dot_axes[1] = axis1;
        l->normalize = normalize != 0;
    }
    return l;
}
