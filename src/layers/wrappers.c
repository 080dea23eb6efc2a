/* wrappers.c: Keras's layer wrappers TimeDistributed(layer) and Bidirectional(rnn).
 *
 * TimeDistributed applies its inner layer to every timestep: input (batch, T, ...) is the
 * inner layer's batch of batch * T samples (the same weights for all). Bidirectional runs a
 * recurrent layer forwards and a copy of it with go_backwards flipped (or a given
 * backward_layer), the backward one's output sequence flipped back to time order, and merges
 * the two (concat, sum, mul, ave). The inner layers' weights are views into the wrapper's
 * range of the model's buffer (the forward layer's, then the backward one's). */
#include "layer.h"
#include "rnn.h"
#include "../io/config_fields.h"
#include <stdlib.h>
#include <string.h>

typedef struct kc_wrap {
    kc_layer *inner[2]; /* TimeDistributed: inner[0]; Bidirectional: forward, backward */
    int n;
    kc_merge_mode merge;
    char wnames[2 * KC_MAX_WEIGHTS / 2][96]; /* Bidirectional's legacy weight names */
} kc_wrap;

/* the inner layers' views: from the wrapper's own, inner i after the ones before it */
static void bind(kc_layer *l) {
    kc_wrap *w = l->wrap;
    int64_t at = 0;
    for (int i = 0; i < w->n; i++) {
        kc_layer *in = w->inner[i];
        in->param_offset = l->param_offset + at;
        /* each inner layer its own dropout stream, from the wrapper's */
        in->seed = l->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(i + 1));
        in->kernel = l->kernel ? l->kernel + at : NULL;
        in->dkernel = l->dkernel ? l->dkernel + at : NULL;
        in->bias = in->no_bias || !in->kernel ? NULL : in->kernel + in->kernel_size;
        in->dbias = in->no_bias || !in->dkernel ? NULL : in->dkernel + in->kernel_size;
        at += in->param_count;
    }
}

static void wrap_destroy(kc_layer *l) {
    if (!l->wrap) return;
    for (int i = 0; i < l->wrap->n; i++)
        if (l->wrap->inner[i]) kc_layer_release(l->wrap->inner[i]);
    free(l->wrap);
    l->wrap = NULL;
}

static void wrap_init(kc_layer *l, kc_rng *rng) {
    bind(l);
    for (int i = 0; i < l->wrap->n; i++) l->wrap->inner[i]->ops->init(l->wrap->inner[i], rng);
}

/* builds inner layer `in` on shape; its declared shape (None lengths kept: what a saved
 * build_config gives) is the wrapper's, the first axis dropped by TimeDistributed */
static kc_status build_inner(kc_layer *l, kc_layer *in, kc_shape shape, int drop_axis) {
    in->in_shape = shape;
    in->in_shapes[0] = shape;
    kc_shape decl = l->decl_in_shapes[0];
    if (drop_axis && decl.rank > 0) {
        for (int i = 1; i < decl.rank; i++) decl.dims[i - 1] = decl.dims[i];
        decl.rank--;
    }
    in->decl_in_shapes[0] = decl.rank == shape.rank ? decl : shape;
    in->in_size = in->in_sizes[0] = kc_shape_size(shape);
    in->n_in = 1;
    if (in->trainable_count == 0 && in->ops->build) in->trainable_count = -1;
    kc_status st = in->ops->build(in);
    if (st) return kc_err_prefix(st, "layer %s (%s)", l->name, l->ops->type_name);
    if (in->trainable_count < 0) in->trainable_count = in->param_count;
    in->out_size = kc_shape_size(in->out_shape);
    in->built = 1;
    return KC_OK;
}

/* ---- TimeDistributed ---- */

static kc_status td_build(kc_layer *l) {
    kc_layer *in = l->wrap->inner[0];
    if (l->in_shape.rank < 2) {
        char buf[64];
        return kc_err(KC_EINVAL, "layer %s (TimeDistributed) needs an input of shape "
                                 "(timesteps, ...), got %s",
                      l->name, kc_shape_str(l->in_shape, buf, sizeof buf));
    }
    /* a recurrent layer takes one input here (its initial_state is for calls of its own) */
    if ((in->ops->forward_n && !kc_is_rnn(in)) || !in->ops->forward ||
        kc_layer_output_count(in) > 1)
        return kc_err(KC_EINVAL, "layer %s (TimeDistributed): the inner layer %s (%s) must take "
                                 "one input and have one output", l->name, in->name,
                      in->ops->type_name);
    kc_shape s = {.rank = l->in_shape.rank - 1};
    for (int i = 1; i < l->in_shape.rank; i++) s.dims[i - 1] = l->in_shape.dims[i];
    kc_status st = build_inner(l, in, s, 1);
    if (st) return st;
    if (in->out_shape.rank + 1 > KC_MAX_RANK)
        return kc_err(KC_EINVAL, "layer %s (TimeDistributed): output of rank %d is too high",
                      l->name, in->out_shape.rank + 1);
    l->out_shape.rank = in->out_shape.rank + 1;
    l->out_shape.dims[0] = l->in_shape.dims[0];
    for (int i = 0; i < in->out_shape.rank; i++) l->out_shape.dims[i + 1] = in->out_shape.dims[i];
    l->param_count = l->kernel_size = in->param_count;
    l->no_bias = 1;
    return KC_OK;
}

static int64_t td_scratch(const kc_layer *l, int batch, int parts) {
    const kc_layer *in = l->wrap->inner[0];
    return in->ops->scratch_size ? in->ops->scratch_size(in, batch * l->in_shape.dims[0], parts)
                                 : 0;
}

static void td_forward(kc_layer *l, const float *x, float *out, int batch,
                       const kc_forward_ctx *ctx) {
    kc_layer *in = l->wrap->inner[0];
    bind(l);
    in->scratch = l->scratch;
    kc_forward_ctx c = *ctx;
    c.opt = NULL, c.mask = NULL;
    in->ops->forward(in, x, out, batch * l->in_shape.dims[0], &c);
}

static void td_backward(kc_layer *l, const float *x, const float *out, float *dout, float *din,
                        int batch, int dout_is_preactivation, const kc_forward_ctx *ctx) {
    kc_layer *in = l->wrap->inner[0];
    bind(l);
    in->scratch = l->scratch;
    kc_forward_ctx c = *ctx;
    c.opt = NULL, c.mask = NULL;
    in->ops->backward(in, x, out, dout, din, batch * l->in_shape.dims[0], 0, &c);
}

static int td_compute_mask(const kc_layer *l, const uint8_t *in_mask, uint8_t *out_mask,
                           int batch) {
    if (!in_mask) return 0;
    if (out_mask) memcpy(out_mask, in_mask, (size_t)batch * (size_t)l->in_shape.dims[0]);
    return 1;
}

static kc_status td_from(const cJSON *cfg, const char *where, kc_layer **out) {
    const cJSON *item = kc_cfg_field(cfg, "layer");
    if (!cJSON_IsObject(item)) return kc_err(KC_EFORMAT, "%s: no inner layer", where);
    kc_layer *in;
    char w2[600];
    snprintf(w2, sizeof w2, "%s: its layer", where);
    kc_status st = kc_config_layer_from(item, w2, &in);
    if (st) return st;
    kc_layer *l = kc_time_distributed(in);
    if (!l) kc_layer_free(in);
    return kc_cfg_made(l, where, out);
}

static kc_status td_to(const kc_layer *l, cJSON *cfg) {
    cJSON *item = kc_config_layer_item(l->wrap->inner[0]);
    if (!item) return KC_EINVAL;
    cJSON_AddItemToObject(cfg, "layer", item);
    return KC_OK;
}

static int td_weights(const kc_layer *l, kc_weight_desc *w) {
    const kc_layer *in = l->wrap->inner[0];
    return in->ops->io.weights ? in->ops->io.weights(in, w) : 0;
}
static const char *td_group(const kc_layer *l, int i) {
    const kc_layer *in = l->wrap->inner[0];
    const char *g = in->ops->io.k3_group ? in->ops->io.k3_group(in, i) : NULL;
    /* "layer", or the inner layer's own sub-path below it */
    static _Thread_local char buf[64];
    if (!g) return "layer";
    snprintf(buf, sizeof buf, "layer/%s", g);
    return buf;
}

const kc_layer_ops kc_time_distributed_ops = {
    .type_name = "TimeDistributed",
    .base_name = "time_distributed",
    .build = td_build,
    .init = wrap_init,
    .forward = td_forward,
    .backward = td_backward,
    .scratch_size = td_scratch,
    .supports_masking = 1,
    .compute_mask = td_compute_mask,
    .allows_none = 1,
    .destroy = wrap_destroy,
    .io = {td_from, td_to, td_weights, NULL, td_group}};

kc_layer *kc_time_distributed(kc_layer *inner) {
    if (!inner) return NULL;
    kc_layer *l = kc_layer_new(&kc_time_distributed_ops);
    if (!l) return NULL;
    l->wrap = calloc(1, sizeof *l->wrap);
    if (!l->wrap) {
        kc_layer_release(l);
        return NULL;
    }
    l->wrap->inner[0] = inner;
    l->wrap->n = 1;
    inner->refs++;
    return l;
}

/* ---- Bidirectional ---- */

static const char *const merge_names[] = {"concat", "sum", "mul", "ave"};
/* merge_mode=None runs as concat: the two outputs are column ranges of the concatenation */
static int concat_like(const kc_wrap *w) {
    return w->merge == KC_MERGE_CONCAT || w->merge == KC_MERGE_NONE;
}

static kc_status bi_build(kc_layer *l) {
    kc_wrap *w = l->wrap;
    for (int i = 0; i < 2; i++) {
        kc_status st = build_inner(l, w->inner[i], l->in_shape, 0);
        if (st) return st;
    }
    kc_layer *f = w->inner[0], *b = w->inner[1];
    if (kc_rnn_return_sequences(f) != kc_rnn_return_sequences(b) ||
        f->out_shape.rank != b->out_shape.rank ||
        kc_shape_size(f->out_shape) / f->units != kc_shape_size(b->out_shape) / b->units ||
        (!concat_like(w) && f->units != b->units))
        return kc_err(KC_EINVAL, "layer %s (Bidirectional): the forward and backward layers' "
                                 "outputs do not match (return_sequences, units)", l->name);
    /* the inner layers' own outputs: their sequences (or last outputs), after their states */
    int sf = kc_rnn_state_count(f), sb = kc_rnn_state_count(b), T = l->in_shape.dims[0];
    if ((sf > 0) != (sb > 0))
        return kc_err(KC_EINVAL, "layer %s (Bidirectional): return_state must be the same for "
                                 "the forward and backward layers", l->name);
    l->out_shape = kc_rnn_return_sequences(f) ? kc_shape2(T, f->units) : kc_shape1(f->units);
    l->out_shape.dims[l->out_shape.rank - 1] =
        concat_like(w) ? f->units + b->units : f->units;
    if (sf) /* return_state: the states first, [forward's, backward's, merged output] */
        l->out_shape = kc_shape1(kc_rnn_return_sequences(f) && T == KC_NONE
                                     ? KC_NONE
                                     : (int64_t)sf * f->units + (int64_t)sb * b->units +
                                           kc_shape_size(l->out_shape));
    l->param_count = l->kernel_size = f->param_count + b->param_count;
    l->no_bias = 1;
    return KC_OK;
}

/* scratch: the forward layer's, the backward one's, their two outputs, and the backward
 * layer's input gradient */
static int64_t bi_scratch(const kc_layer *l, int batch, int parts) {
    int64_t s = 0;
    for (int i = 0; i < 2; i++) {
        const kc_layer *in = l->wrap->inner[i];
        s += in->ops->scratch_size(in, batch, parts) + (int64_t)batch * in->out_size;
    }
    return s + (int64_t)batch * l->in_size;
}

typedef struct {
    float *ws[2], *y[2], *din2;
} bi_parts;
static bi_parts bi_layout(kc_layer *l, int batch) {
    bi_parts p;
    float *at = l->scratch;
    for (int i = 0; i < 2; i++) {
        kc_layer *in = l->wrap->inner[i];
        p.ws[i] = at;
        at += in->ops->scratch_size(in, batch, l->scratch_parts ? l->scratch_parts : 1);
        p.y[i] = at;
        at += (int64_t)batch * in->out_size;
    }
    p.din2 = at;
    return p;
}

/* this call's layout: per sample, the inner layers' rows (rf, rb: their states sf, sb values
 * first, then their outputs) and the wrapper's (row: the states, then the merged output) */
typedef struct {
    int T, uf, ub, uo, seq;
    int64_t sf, sb, rf, rb, row;
} bi_geom;
static bi_geom bi_geometry(const kc_layer *l) {
    const kc_layer *f = l->wrap->inner[0], *b = l->wrap->inner[1];
    bi_geom g;
    g.seq = kc_rnn_return_sequences(f);
    g.T = g.seq ? l->in_shape.dims[0] : 1;
    g.uf = f->units, g.ub = b->units;
    g.uo = concat_like(l->wrap) ? g.uf + g.ub : g.uf;
    g.sf = (int64_t)kc_rnn_state_count(f) * g.uf;
    g.sb = (int64_t)kc_rnn_state_count(b) * g.ub;
    g.rf = g.sf + (int64_t)g.T * g.uf;
    g.rb = g.sb + (int64_t)g.T * g.ub;
    g.row = g.sf + g.sb + (int64_t)g.T * g.uo;
    return g;
}

static void bi_forward(kc_layer *l, const float *x, float *out, int batch,
                       const kc_forward_ctx *ctx) {
    kc_wrap *w = l->wrap;
    bind(l);
    bi_parts p = bi_layout(l, batch);
    kc_forward_ctx c = *ctx;
    c.opt = NULL;
    for (int i = 0; i < 2; i++) {
        w->inner[i]->scratch = p.ws[i];
        w->inner[i]->ops->forward(w->inner[i], x, p.y[i], batch, &c);
    }
    bi_geom g = bi_geometry(l);
    int T = g.T, uf = g.uf, ub = g.ub, uo = g.uo, seq = g.seq;
    for (int b = 0; b < batch; b++) {
        /* the states, as the inner layers wrote them */
        memcpy(out + b * g.row, p.y[0] + b * g.rf, sizeof(float) * (size_t)g.sf);
        memcpy(out + b * g.row + g.sf, p.y[1] + b * g.rb, sizeof(float) * (size_t)g.sb);
    }
    for (int b = 0; b < batch; b++)
        for (int t = 0; t < T; t++) {
            const float *yf = p.y[0] + b * g.rf + g.sf + (int64_t)t * uf;
            const float *yb = p.y[1] + b * g.rb + g.sb + (int64_t)(seq ? T - 1 - t : 0) * ub;
            float *o = out + b * g.row + g.sf + g.sb + (int64_t)t * uo;
            switch (w->merge) {
            case KC_MERGE_NONE:
            case KC_MERGE_CONCAT:
                memcpy(o, yf, sizeof(float) * (size_t)uf);
                memcpy(o + uf, yb, sizeof(float) * (size_t)ub);
                break;
            case KC_MERGE_SUM:
                for (int j = 0; j < uo; j++) o[j] = yf[j] + yb[j];
                break;
            case KC_MERGE_MUL:
                for (int j = 0; j < uo; j++) o[j] = yf[j] * yb[j];
                break;
            case KC_MERGE_AVE:
                for (int j = 0; j < uo; j++) o[j] = (yf[j] + yb[j]) / 2.0f;
                break;
            }
        }
}

static void bi_backward(kc_layer *l, const float *x, const float *out, float *dout, float *din,
                        int batch, int dout_is_preactivation, const kc_forward_ctx *ctx) {
    kc_wrap *w = l->wrap;
    bind(l);
    bi_parts p = bi_layout(l, batch);
    bi_geom g = bi_geometry(l);
    int T = g.T, uf = g.uf, ub = g.ub, uo = g.uo, seq = g.seq;
    /* the outputs' gradients, overwriting the outputs (mul reads them first); the states'
     * gradients go to the inner layers' state parts */
    for (int b = 0; b < batch; b++) {
        memcpy(p.y[0] + b * g.rf, dout + b * g.row, sizeof(float) * (size_t)g.sf);
        memcpy(p.y[1] + b * g.rb, dout + b * g.row + g.sf, sizeof(float) * (size_t)g.sb);
    }
    for (int b = 0; b < batch; b++)
        for (int t = 0; t < T; t++) {
            float *yf = p.y[0] + b * g.rf + g.sf + (int64_t)t * uf;
            float *yb = p.y[1] + b * g.rb + g.sb + (int64_t)(seq ? T - 1 - t : 0) * ub;
            const float *d = dout + b * g.row + g.sf + g.sb + (int64_t)t * uo;
            for (int j = 0; j < (concat_like(w) ? 1 : uo); j++) {
                switch (w->merge) {
                case KC_MERGE_NONE:
                case KC_MERGE_CONCAT:
                    memcpy(yf, d, sizeof(float) * (size_t)uf);
                    memcpy(yb, d + uf, sizeof(float) * (size_t)ub);
                    break;
                case KC_MERGE_SUM: yf[j] = yb[j] = d[j]; break;
                case KC_MERGE_AVE: yf[j] = yb[j] = d[j] / 2.0f; break;
                case KC_MERGE_MUL: {
                    float f = yf[j];
                    yf[j] = d[j] * yb[j];
                    yb[j] = d[j] * f;
                    break;
                }
                }
            }
        }
    kc_forward_ctx c = *ctx;
    c.opt = NULL;
    for (int i = 0; i < 2; i++) {
        w->inner[i]->scratch = p.ws[i];
        /* out is not read by the recurrent layers' backward */
        w->inner[i]->ops->backward(w->inner[i], x, NULL, p.y[i], i ? (din ? p.din2 : NULL) : din,
                                   batch, 0, &c);
    }
    if (din)
        for (int64_t i = 0; i < (int64_t)batch * l->in_size; i++) din[i] += p.din2[i];
}

/* Keras's order: the output (merge_mode=None: forward, backward), then with return_state the
 * forward layer's states, then the backward layer's */
static int bi_n_outputs(const kc_layer *l) {
    return (l->wrap->merge == KC_MERGE_NONE ? 2 : 1) + kc_rnn_state_count(l->wrap->inner[0]) +
           kc_rnn_state_count(l->wrap->inner[1]);
}

static kc_shape bi_output_part(const kc_layer *l, int o, int64_t *head, int64_t *row,
                               int64_t *base) {
    const kc_layer *f = l->wrap->inner[0], *b = l->wrap->inner[1];
    int n_main = l->wrap->merge == KC_MERGE_NONE ? 2 : 1, sf = kc_rnn_state_count(f);
    int64_t states = (int64_t)sf * f->units + (int64_t)kc_rnn_state_count(b) * b->units;
    int64_t T = l->decl_in_shapes[0].dims[0];
    *row = *base = 0;
    if (o >= n_main) { /* a state: (units) */
        int k = o - n_main;
        *head = k < sf ? (int64_t)k * f->units : (int64_t)sf * f->units + (int64_t)(k - sf) * b->units;
        return kc_shape1(k < sf ? f->units : b->units);
    }
    int uo = concat_like(l->wrap) ? f->units + b->units : f->units;
    kc_shape s = kc_rnn_return_sequences(f) ? kc_shape2(T, uo) : kc_shape1(uo);
    if (n_main == 1) { /* the merged output, after the states */
        *head = states;
        return s;
    }
    /* merge_mode=None: forward and backward are the two column ranges of the concatenation */
    *base = states;
    *row = uo;
    *head = o ? f->units : 0;
    s.dims[s.rank - 1] = o ? b->units : f->units;
    return s;
}

static int bi_compute_mask(const kc_layer *l, const uint8_t *in_mask, uint8_t *out_mask,
                           int batch) {
    /* merge_mode=None: the two outputs' slices pass this mask on (rows of the same steps);
     * return_state: the output(s), not the states (bi_part_mask_rows), as Keras 3 */
    if (!in_mask || !kc_rnn_return_sequences(l->wrap->inner[0])) return 0;
    if (out_mask) memcpy(out_mask, in_mask, (size_t)batch * (size_t)l->in_shape.dims[0]);
    return 1;
}

static int64_t bi_part_mask_rows(const kc_layer *l, int o) {
    int n_main = l->wrap->merge == KC_MERGE_NONE ? 2 : 1;
    return o < n_main && kc_rnn_return_sequences(l->wrap->inner[0]) ? l->in_shape.dims[0] : 0;
}

static kc_status bi_from(const cJSON *cfg, const char *where, kc_layer **out) {
    const cJSON *mm = kc_cfg_field(cfg, "merge_mode");
    kc_merge_mode mode = KC_MERGE_CONCAT;
    if (mm && cJSON_IsNull(mm)) {
        mode = KC_MERGE_NONE;
    } else if (mm) {
        int k = -1;
        for (int i = 0; i < 4; i++)
            if (cJSON_IsString(mm) && !strcmp(mm->valuestring, merge_names[i])) k = i;
        if (k < 0) return kc_err(KC_EFORMAT, "%s: unknown merge_mode", where);
        mode = (kc_merge_mode)k;
    }
    const cJSON *item = kc_cfg_field(cfg, "layer"), *bitem = kc_cfg_field(cfg, "backward_layer");
    if (!cJSON_IsObject(item)) return kc_err(KC_EFORMAT, "%s: no layer", where);
    char w2[600];
    snprintf(w2, sizeof w2, "%s: its layer", where);
    kc_layer *f = NULL, *b = NULL;
    kc_status st = kc_config_layer_from(item, w2, &f);
    if (!st && cJSON_IsObject(bitem)) {
        snprintf(w2, sizeof w2, "%s: its backward_layer", where);
        st = kc_config_layer_from(bitem, w2, &b);
    }
    if (st) {
        kc_layer_free(f);
        return st;
    }
    int rnns = kc_is_rnn(f) && (!b || kc_is_rnn(b));
    kc_layer *l = kc_bidirectional(f, mode, b);
    if (!l) {
        kc_layer_free(f);
        if (b) kc_layer_free(b);
        if (!rnns) return kc_err(KC_EFORMAT, "%s: %s", where, kc_last_error());
    }
    return kc_cfg_made(l, where, out);
}

static kc_status bi_to(const kc_layer *l, cJSON *cfg) {
    if (l->wrap->merge == KC_MERGE_NONE) cJSON_AddNullToObject(cfg, "merge_mode");
    else cJSON_AddStringToObject(cfg, "merge_mode", merge_names[l->wrap->merge]);
    const char *keys[2] = {"layer", "backward_layer"};
    for (int i = 0; i < 2; i++) {
        cJSON *item = kc_config_layer_item(l->wrap->inner[i]);
        if (!item) return KC_EINVAL;
        cJSON_AddItemToObject(cfg, keys[i], item);
    }
    return KC_OK;
}

static int bi_weights(const kc_layer *l, kc_weight_desc *w) {
    kc_wrap *wr = l->wrap;
    int n = 0;
    int64_t at = 0;
    for (int i = 0; i < 2; i++) {
        kc_layer *in = wr->inner[i];
        int k = in->ops->io.weights(in, w + n);
        for (int j = 0; j < k; j++) {
            /* tf.keras 2: bidirectional/forward_lstm/lstm_cell/kernel:0 */
            snprintf(wr->wnames[n + j], sizeof wr->wnames[0], "%s/%s", in->name, w[n + j].name);
            w[n + j].name = wr->wnames[n + j];
            w[n + j].offset += at;
        }
        n += k;
        at += in->param_count;
    }
    return n;
}
static const char *bi_group(const kc_layer *l, int i) {
    const kc_layer *f = l->wrap->inner[0];
    kc_weight_desc w[KC_MAX_WEIGHTS];
    int nf = f->ops->io.weights(f, w);
    return i < nf ? "forward_layer/cell" : "backward_layer/cell";
}

const kc_layer_ops kc_bidirectional_ops = {
    .type_name = "Bidirectional",
    .base_name = "bidirectional",
    .build = bi_build,
    .init = wrap_init,
    .forward = bi_forward,
    .backward = bi_backward,
    .scratch_size = bi_scratch,
    .supports_masking = 1,
    .compute_mask = bi_compute_mask,
    .part_mask_rows = bi_part_mask_rows,
    .allows_none = 1,
    .destroy = wrap_destroy,
    .n_outputs = bi_n_outputs,
    .output_part = bi_output_part,
    .io = {bi_from, bi_to, bi_weights, NULL, bi_group}};

static void prefix_name(kc_layer *in, const char *prefix, const char *base) {
    char nm[48];
    const char *cur = in->name[0] ? in->name : base;
    size_t pl = strlen(prefix);
    if (!strncmp(cur, prefix, pl)) cur += pl; /* Keras's removeprefix */
    snprintf(nm, sizeof nm, "%s%.38s", prefix, cur);
    kc_layer_set_name(in, nm);
}

kc_layer *kc_bidirectional(kc_layer *rnn, kc_merge_mode merge, kc_layer *backward) {
    if (!kc_is_rnn(rnn) || (backward && !kc_is_rnn(backward)) || (unsigned)merge > 4) {
        kc_err(KC_EINVAL, "kc_bidirectional: needs a recurrent layer (SimpleRNN, LSTM, GRU) and a "
                          "merge mode of concat, sum, mul, ave or none");
        return NULL;
    }
    if (backward && (kc_rnn_state_count(rnn) > 0) != (kc_rnn_state_count(backward) > 0)) {
        kc_err(KC_EINVAL, "kc_bidirectional: return_state must be the same for the forward and "
                          "backward layers");
        return NULL;
    }
    kc_layer *l = kc_layer_new(&kc_bidirectional_ops);
    if (!l) return NULL;
    l->wrap = calloc(1, sizeof *l->wrap);
    kc_layer *f = rnn, *b = backward ? backward : kc_rnn_copy(rnn, 1);
    if (!l->wrap || !b) {
        if (b && !backward) kc_layer_free(b);
        kc_layer_release(l);
        return NULL;
    }
    /* as Keras: the inner layers' zero_output_for_mask follows their return_sequences */
    kc_rnn_set_zero_output(f, kc_rnn_return_sequences(f));
    kc_rnn_set_zero_output(b, kc_rnn_return_sequences(b));
    char base[48];
    snprintf(base, sizeof base, "%s", rnn->name[0] ? rnn->name : rnn->ops->base_name);
    prefix_name(f, "forward_", base);
    if (!backward) {
        char nm[48];
        snprintf(nm, sizeof nm, "backward_%.38s", !strncmp(base, "forward_", 8) ? base + 8 : base);
        kc_layer_set_name(b, nm);
    } else if (!b->name[0]) {
        prefix_name(b, "backward_", b->ops->base_name);
    }
    f->refs++, b->refs++; /* the wrapper holds both (after naming them: a held layer keeps
                             its name) */
    l->wrap->inner[0] = f;
    l->wrap->inner[1] = b;
    l->wrap->n = 2;
    l->wrap->merge = merge;
    return l;
}

int kc_wrapper_state_batch(const kc_layer *l) {
    int b = 0;
    for (int i = 0; i < l->wrap->n && !b; i++) b = kc_rnn_state_batch(l->wrap->inner[i]);
    return b;
}

kc_status kc_wrapper_reset_states(kc_layer *l) {
    kc_status st = KC_OK;
    for (int i = 0; i < l->wrap->n && !st; i++)
        if (kc_is_rnn(l->wrap->inner[i])) st = kc_rnn_reset_states(l->wrap->inner[i]);
    return st;
}
