/* rnn.c: the recurrent layers SimpleRNN, LSTM and GRU (Keras 3's keras.layers.*), their
 * options, state (stateful), dropout masks and Keras file I/O. The kernels are
 * src/ops/rnn.c's: one product for every step's input projection, one recurrent product and
 * one fused pass of gate math per step, backward through time with one product per weight. */
#include "layer.h"
#include "../initializers.h"
#include "../io/config_fields.h"
#include "rnn.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct kc_rnn {
    kc_cell_kind cell;
    kc_act rec_act;
    int return_sequences, go_backwards, stateful, reset_after, unit_forget_bias, unroll;
    int zero_output; /* zero_output_for_mask */
    int return_state; /* outputs [output, h(, c)], written [h(, c), output] per sample */
    float dropout, rec_dropout;
    kc_initializer rec_init;
    float *state; /* stateful: h (state_batch, units), then c (LSTM) */
    int state_batch;
};

static const char *cell_class(kc_cell_kind c) {
    return c == KC_CELL_LSTM ? "LSTM" : c == KC_CELL_GRU ? "GRU" : "SimpleRNN";
}

static int gates(const kc_layer *l) { return kc_rnn_gates(l->rnn->cell); }
static int n_states(const kc_layer *l) { return l->rnn->cell == KC_CELL_LSTM ? 2 : 1; }
static int64_t bias_count(const kc_layer *l) {
    if (l->no_bias) return 0;
    int64_t gu = (int64_t)gates(l) * l->units;
    return l->rnn->cell == KC_CELL_GRU && l->rnn->reset_after ? 2 * gu : gu;
}

static kc_status rnn_build(kc_layer *l) {
    const char *cls = cell_class(l->rnn->cell);
    if (l->units <= 0)
        return kc_err(KC_EINVAL, "layer %s (%s): units must be positive, got %d", l->name, cls,
                      l->units);
    if (l->in_shape.rank != 2 || (l->in_shape.dims[0] <= 0 && l->in_shape.dims[0] != KC_NONE) ||
        l->in_shape.dims[1] <= 0) {
        char buf[64];
        return kc_err(KC_EINVAL,
                      "layer %s (%s) needs an input of shape (timesteps, features), got %s",
                      l->name, cls, kc_shape_str(l->in_shape, buf, sizeof buf));
    }
    if (!kc_rnn_act_ok(l->act) || !kc_rnn_act_ok(l->rnn->rec_act))
        return kc_err(KC_EINVAL,
                      "layer %s (%s): activation %s / recurrent_activation %s: kerac's "
                      "recurrent layers take linear, relu, sigmoid, tanh, hard_sigmoid, softsign",
                      l->name, cls, kc_act_name(l->act), kc_act_name(l->rnn->rec_act));
    if (!(l->rnn->dropout >= 0 && l->rnn->dropout < 1) ||
        !(l->rnn->rec_dropout >= 0 && l->rnn->rec_dropout < 1))
        return kc_err(KC_EINVAL, "layer %s (%s): dropout and recurrent_dropout must be in [0, 1)",
                      l->name, cls);
    int T = l->in_shape.dims[0], F = l->in_shape.dims[1], u = l->units, G = gates(l);
    /* initial_state: the states after the sequence, (units) each */
    if (l->n_in > 1 + n_states(l))
        return kc_err(KC_EINVAL, "layer %s (%s) takes the sequence and %d initial state%s, "
                                 "called on %d inputs", l->name, cls, n_states(l),
                      n_states(l) > 1 ? "s" : "", l->n_in);
    for (int i = 1; i < l->n_in; i++)
        if (l->in_shapes[i].rank != 1 || l->in_shapes[i].dims[0] != u) {
            char buf[64];
            return kc_err(KC_EINVAL, "layer %s (%s): initial state %d has shape %s; it takes "
                                     "(%d) (the units)", l->name, cls, i - 1,
                          kc_shape_str(l->in_shapes[i], buf, sizeof buf), u);
        }
    l->out_shape = l->rnn->return_sequences ? kc_shape2(T, u) : kc_shape1(u);
    if (l->rnn->return_state) /* the states first: their places stay fixed for a None T */
        l->out_shape = kc_shape1(l->rnn->return_sequences && T == KC_NONE
                                     ? KC_NONE
                                     : (int64_t)n_states(l) * u + kc_shape_size(l->out_shape));
    l->kernel_size = (int64_t)F * G * u + (int64_t)u * G * u;
    l->param_count = l->kernel_size + bias_count(l);
    char where[128];
    snprintf(where, sizeof where, "layer %s (%s): kernel_initializer", l->name, cls);
    kc_status st = kc_init_check(&l->kernel_init, KC_INIT_GLOROT_UNIFORM, 2,
                                 (int64_t[]){F, (int64_t)G * u}, where);
    snprintf(where, sizeof where, "layer %s (%s): recurrent_initializer", l->name, cls);
    if (!st)
        st = kc_init_check(&l->rnn->rec_init, KC_INIT_ORTHOGONAL, 2,
                           (int64_t[]){u, (int64_t)G * u}, where);
    snprintf(where, sizeof where, "layer %s (%s): bias_initializer", l->name, cls);
    if (!st && !l->no_bias)
        st = kc_init_check(&l->bias_init, KC_INIT_ZEROS, 1, (int64_t[]){(int64_t)G * u}, where);
    return st;
}

static void rnn_init(kc_layer *l, kc_rng *rng) {
    int F = l->in_shape.dims[1], u = l->units, G = gates(l);
    int64_t gu = (int64_t)G * u;
    kc_init_fill(&l->kernel_init, KC_INIT_GLOROT_UNIFORM, l->kernel, 2, (int64_t[]){F, gu}, rng);
    kc_init_fill(&l->rnn->rec_init, KC_INIT_ORTHOGONAL, l->kernel + (int64_t)F * gu, 2,
                 (int64_t[]){u, gu}, rng);
    if (l->no_bias) {
        l->bias = l->dbias = NULL;
        return;
    }
    if (l->rnn->cell == KC_CELL_LSTM && l->rnn->unit_forget_bias) {
        /* Keras: [bias_initializer((units,)), ones((units,)), bias_initializer((2 units,))] */
        int64_t n1 = u, n2 = 2 * (int64_t)u;
        kc_init_fill(&l->bias_init, KC_INIT_ZEROS, l->bias, 1, &n1, rng);
        for (int j = 0; j < u; j++) l->bias[u + j] = 1.0f;
        kc_init_fill(&l->bias_init, KC_INIT_ZEROS, l->bias + 2 * u, 1, &n2, rng);
    } else if (l->rnn->cell == KC_CELL_GRU && l->rnn->reset_after) {
        kc_init_fill(&l->bias_init, KC_INIT_ZEROS, l->bias, 2, (int64_t[]){2, gu}, rng);
    } else {
        kc_init_fill(&l->bias_init, KC_INIT_ZEROS, l->bias, 1, &gu, rng);
    }
}

kc_rnn_args kc_rnn_layer_args(const kc_layer *l, int batch, const kc_forward_ctx *ctx) {
    const struct kc_rnn *r = l->rnn;
    int F = l->in_shape.dims[1];
    return (kc_rnn_args){.cell = r->cell, .reset_after = r->reset_after, .B = batch,
                         .T = l->in_shape.dims[0], .F = F, .u = l->units, .act = l->act,
                         .rec_act = r->rec_act, .go_backwards = r->go_backwards,
                         .return_sequences = r->return_sequences,
                         .zero_output = r->zero_output, .W = l->kernel,
                         .U = l->kernel + (int64_t)F * gates(l) * l->units,
                         .b = l->no_bias ? NULL : l->bias, .mask = ctx ? ctx->mask : NULL,
                         .in_dropout = ctx && ctx->training && r->dropout > 0,
                         .rec_dropout = ctx && ctx->training && r->rec_dropout > 0,
                         /* Keras 3: implementation 1 when recurrent_dropout is set */
                         .per_gate = r->rec_dropout > 0,
                         .ws = l->scratch};
}

/* the layer's own output (B, seq_size): (T, u) or (u) */
static int64_t seq_size(const kc_layer *l) {
    return (l->rnn->return_sequences ? (int64_t)l->in_shape.dims[0] : 1) * l->units;
}

static int64_t rnn_scratch(const kc_layer *l, int batch, int parts) {
    /* sized for training, dropout included; return_state: the output and the final states
     * (or their gradients) apart, after the kernels' workspace */
    kc_forward_ctx c = {.training = 1};
    kc_rnn_args a = kc_rnn_layer_args(l, batch, &c);
    int64_t extra = l->rnn->return_state ? (int64_t)batch * (seq_size(l) + 2 * l->units) : 0;
    /* and, last, a zero c for an LSTM given h only */
    return kc_rnn_workspace(&a) + extra + (int64_t)batch * l->units;
}

/* return_state: the parts of the scratch after the kernels' workspace */
static void state_bufs(const kc_layer *l, const kc_rnn_args *a, float **seq, float **h, float **c) {
    *seq = l->scratch + kc_rnn_workspace(a);
    *h = *seq + (int64_t)a->B * seq_size(l);
    *c = *h + (int64_t)a->B * l->units;
}

static int rnn_n_outputs(const kc_layer *l) {
    return l->rnn->return_state ? 1 + n_states(l) : 1;
}

static kc_shape rnn_output_part(const kc_layer *l, int o, int64_t *head, int64_t *row,
                                int64_t *base) {
    int64_t u = l->units, T = l->decl_in_shapes[0].dims[0];
    *row = *base = 0;
    if (o == 0) {
        *head = n_states(l) * u;
        return l->rnn->return_sequences ? kc_shape2(T, u) : kc_shape1(u);
    }
    *head = (o - 1) * u;
    return kc_shape1(u);
}

kc_rnn_masks kc_rnn_test_masks;

/* return_state: the sequence output (return_sequences) carries the input's mask */
static int64_t rnn_part_mask_rows(const kc_layer *l, int o) {
    return o == 0 && l->rnn->return_sequences ? l->in_shape.dims[0] : 0;
}

/* the factors of a dropout mask, one per (sample, feature), the same at every step */
static void fill_keep(float *keep, int64_t n, float rate, uint64_t key) {
    uint32_t thr = kc_dropout_threshold(rate), k32 = kc_dropout_key32(key);
    float scale = 1.0f / (1.0f - rate);
    for (int64_t i = 0; i < n; i++)
        keep[i] = kc_dropout_hash((uint32_t)i, k32) >= thr ? scale : 0.0f;
}

/* the forward from initial states h_init, c_init (NULL: zeros, or the stateful state) */
static void rnn_run(kc_layer *l, const float *in, const float *h_init, const float *c_init,
                    float *out, int batch, const kc_forward_ctx *ctx) {
    struct kc_rnn *r = l->rnn;
    kc_rnn_args a = kc_rnn_layer_args(l, batch, ctx);
    uint64_t key = kc_dropout_key(l, ctx);
    int64_t nm = kc_rnn_mask_count(&a); /* masks per sample: one per gate, or one */
    if (a.in_dropout) {
        float *k = kc_rnn_in_keep(&a);
        int64_t n = (int64_t)batch * nm * a.F;
        if (kc_rnn_test_masks.in) memcpy(k, kc_rnn_test_masks.in, sizeof(float) * (size_t)n);
        else fill_keep(k, n, r->dropout, key);
    }
    if (a.rec_dropout) {
        float *k = kc_rnn_rec_keep(&a);
        int64_t n = (int64_t)batch * nm * a.u;
        if (kc_rnn_test_masks.rec) memcpy(k, kc_rnn_test_masks.rec, sizeof(float) * (size_t)n);
        else fill_keep(k, n, r->rec_dropout, key ^ 0x5bd1e995a5a5a5a5ull);
    }
    float *h0 = NULL, *c0 = NULL;
    if (r->stateful) {
        size_t n = (size_t)batch * l->units * (r->cell == KC_CELL_LSTM ? 2 : 1);
        if (r->state_batch != batch) { /* a new batch size: the state starts from zeros */
            float *s = calloc(n, sizeof(float));
            if (s) {
                free(r->state);
                r->state = s;
                r->state_batch = batch;
            }
        }
        if (r->state_batch == batch) {
            h0 = r->state;
            c0 = r->cell == KC_CELL_LSTM ? r->state + (size_t)batch * l->units : NULL;
        }
    }
    const float *hi = h_init ? h_init : h0, *ci = h_init ? c_init : c0;
    if (!r->return_state) {
        kc_rnn_forward(&a, in, hi, ci, out, h0, c0);
        return;
    }
    float *seq, *hb, *cb;
    state_bufs(l, &a, &seq, &hb, &cb);
    kc_rnn_forward(&a, in, hi, ci, seq, hb, cb);
    int64_t u = l->units, ns = n_states(l), sq = seq_size(l), row = ns * u + sq;
    size_t su = sizeof(float) * (size_t)u;
    for (int b = 0; b < batch; b++) {
        float *o = out + (int64_t)b * row;
        memcpy(o, hb + (int64_t)b * u, su);
        if (ns == 2) memcpy(o + u, cb + (int64_t)b * u, su);
        memcpy(o + ns * u, seq + (int64_t)b * sq, sizeof(float) * (size_t)sq);
    }
    if (h0) memcpy(h0, hb, su * (size_t)batch);
    if (c0) memcpy(c0, cb, su * (size_t)batch);
}

static void rnn_forward(kc_layer *l, const float *in, float *out, int batch,
                        const kc_forward_ctx *ctx) {
    rnn_run(l, in, NULL, NULL, out, batch, ctx);
}

/* the backward, the initial states' gradients into dh0, dc0 (optional) */
static void rnn_back(kc_layer *l, const float *in, const float *dout, float *din, float *dh0,
                     float *dc0, int batch, const kc_forward_ctx *ctx) {
    kc_rnn_args a = kc_rnn_layer_args(l, batch, ctx);
    int64_t wsz = (int64_t)a.F * gates(l) * l->units;
    if (!l->rnn->return_state) {
        kc_rnn_backward_ex(&a, in, dout, NULL, NULL, din, l->dkernel, l->dkernel + wsz,
                           l->no_bias ? NULL : l->dbias, dh0, dc0);
        return;
    }
    /* dout is [dh(, dc), doutput] per sample: apart for the kernel */
    float *dseq, *dh, *dc;
    state_bufs(l, &a, &dseq, &dh, &dc);
    int64_t u = l->units, ns = n_states(l), sq = seq_size(l), row = ns * u + sq;
    size_t su = sizeof(float) * (size_t)u;
    for (int b = 0; b < batch; b++) {
        const float *d = dout + (int64_t)b * row;
        memcpy(dh + (int64_t)b * u, d, su);
        if (ns == 2) memcpy(dc + (int64_t)b * u, d + u, su);
        memcpy(dseq + (int64_t)b * sq, d + ns * u, sizeof(float) * (size_t)sq);
    }
    kc_rnn_backward_ex(&a, in, dseq, dh, ns == 2 ? dc : NULL, din, l->dkernel, l->dkernel + wsz,
                       l->no_bias ? NULL : l->dbias, dh0, dc0);
}

static void rnn_backward(kc_layer *l, const float *in, const float *out, float *dout, float *din,
                         int batch, int dout_is_preactivation, const kc_forward_ctx *ctx) {
    rnn_back(l, in, dout, din, NULL, NULL, batch, ctx);
}

/* initial_state: the sequence, then h (and c, LSTM); a state not given starts at zeros */
static void rnn_forward_n(kc_layer *l, const float *const *in, float *out, int batch,
                          const kc_forward_ctx *ctx) {
    if (l->n_in == 1) {
        rnn_run(l, in[0], NULL, NULL, out, batch, ctx);
        return;
    }
    /* an LSTM given h only: c from zeros (scratch after the rest) */
    float *zc = NULL;
    if (l->rnn->cell == KC_CELL_LSTM && l->n_in == 2) {
        zc = l->scratch + rnn_scratch(l, batch, 1) - (int64_t)batch * l->units;
        memset(zc, 0, sizeof(float) * (size_t)batch * l->units);
    }
    rnn_run(l, in[0], in[1], l->n_in > 2 ? in[2] : zc, out, batch, ctx);
}

static void rnn_backward_n(kc_layer *l, const float *const *in, const float *out,
                           const float *dout, float *const *din, int batch,
                           const kc_forward_ctx *ctx) {
    rnn_back(l, in[0], dout, din[0], l->n_in > 1 ? din[1] : NULL, l->n_in > 2 ? din[2] : NULL,
             batch, ctx);
}

static void rnn_destroy(kc_layer *l) {
    if (l->rnn) free(l->rnn->state);
    free(l->rnn);
    l->rnn = NULL;
}

static int rnn_compute_mask(const kc_layer *l, const uint8_t *in_mask, uint8_t *out_mask,
                            int batch) {
    /* Keras: the input's mask for return_sequences (go_backwards included: Keras does not
     * flip it), else none; return_state: the sequence output's, the states carry none
     * (rnn_part_mask_rows) */
    if (!in_mask || !l->rnn->return_sequences) return 0;
    if (out_mask) memcpy(out_mask, in_mask, (size_t)batch * (size_t)l->in_shape.dims[0]);
    return 1;
}

int kc_wrapper_state_batch(const kc_layer *l); /* wrappers.c */
int kc_rnn_state_batch(const kc_layer *l) {
    if (!l) return 0;
    if (l->wrap) return kc_wrapper_state_batch(l);
    return l->rnn && l->rnn->stateful && l->rnn->state ? l->rnn->state_batch : 0;
}

kc_status kc_wrapper_reset_states(kc_layer *l); /* wrappers.c */
extern const kc_layer_ops kc_bidirectional_ops;
kc_status kc_rnn_reset_states(kc_layer *l) {
    if (l && l->wrap && l->ops == &kc_bidirectional_ops) return kc_wrapper_reset_states(l);
    if (!l || !l->rnn)
        return kc_err(KC_EINVAL, "kc_rnn_reset_states: %s is not a recurrent layer",
                      l ? l->name : "NULL");
    if (l->rnn->state)
        memset(l->rnn->state, 0,
               sizeof(float) * (size_t)l->rnn->state_batch * l->units *
                   (l->rnn->cell == KC_CELL_LSTM ? 2 : 1));
    return KC_OK;
}

/* ---- Keras's config and variables ---- */

static kc_layer *rnn_new(const kc_layer_ops *ops, kc_cell_kind cell, int units,
                         const kc_rnn_opts *opts);
extern const kc_layer_ops kc_simple_rnn_ops, kc_lstm_ops, kc_gru_ops, kc_bidirectional_ops;

static kc_status cfg_bool(const cJSON *cfg, const char *name, const char *where, int *out) {
    const cJSON *v = kc_cfg_field(cfg, name);
    if (!v || cJSON_IsNull(v)) return KC_OK;
    if (!cJSON_IsBool(v)) return kc_err(KC_EFORMAT, "%s: %s must be true or false", where, name);
    *out = cJSON_IsTrue(v);
    return KC_OK;
}

static kc_status rnn_from(kc_cell_kind cell, const cJSON *cfg, const char *where, kc_layer **out) {
    int units;
    kc_status st = kc_cfg_count(cfg, "units", where, &units);
    if (st) return st;
    kc_rnn_opts o = {0};
    static const char *const nulls[] = {"kernel_regularizer", "recurrent_regularizer",
                                        "bias_regularizer",   "activity_regularizer",
                                        "kernel_constraint",  "recurrent_constraint",
                                        "bias_constraint"};
    st = kc_cfg_must_be_null(cfg, where, nulls, 7);
    /* activations: absent is Keras's default; null or "linear" is linear */
    const char *an[2] = {"activation", "recurrent_activation"};
    kc_act *ao[2] = {&o.activation, &o.recurrent_activation};
    for (int i = 0; i < 2 && !st; i++) {
        const cJSON *v = kc_cfg_field(cfg, an[i]);
        if (!v) continue;
        kc_act a = KC_LINEAR;
        st = kc_cfg_activation(v, where, &a);
        *ao[i] = a == KC_LINEAR ? KC_RNN_LINEAR : a;
    }
    int use_bias = 1, ufb = 1, ra = 1, rs = 0, rstate = 0, gb = 0, sf = 0, unroll = 0, tm = 0;
    int zofm = 0;
    if (!st) st = cfg_bool(cfg, "use_bias", where, &use_bias);
    if (!st) st = cfg_bool(cfg, "unit_forget_bias", where, &ufb);
    if (!st) st = cfg_bool(cfg, "reset_after", where, &ra);
    if (!st) st = cfg_bool(cfg, "return_sequences", where, &rs);
    if (!st) st = cfg_bool(cfg, "return_state", where, &rstate);
    if (!st) st = cfg_bool(cfg, "go_backwards", where, &gb);
    if (!st) st = cfg_bool(cfg, "stateful", where, &sf);
    if (!st) st = cfg_bool(cfg, "unroll", where, &unroll);
    if (!st) st = cfg_bool(cfg, "time_major", where, &tm);
    if (!st) st = cfg_bool(cfg, "zero_output_for_mask", where, &zofm);
    if (st) return st;
    if (tm) return kc_err(KC_EFORMAT, "%s: time_major=True is not supported by kerac", where);
    double d = 0, rd = 0;
    if (kc_cfg_num(cfg, "dropout", &d) < 0 || kc_cfg_num(cfg, "recurrent_dropout", &rd) < 0)
        return kc_err(KC_EFORMAT, "%s: dropout and recurrent_dropout must be numbers", where);
    const char *const inits[] = {"kernel_initializer", "recurrent_initializer",
                                 "bias_initializer"};
    kc_initializer *init[] = {&o.kernel_initializer, &o.recurrent_initializer,
                              &o.bias_initializer};
    for (int i = 0; i < 3 && !st; i++)
        st = kc_initializer_from_json(kc_cfg_field(cfg, inits[i]), where, inits[i], init[i]);
    if (st) return st;
    o.use_bias = use_bias ? 0 : KC_ZERO;
    o.unit_forget_bias = ufb ? 0 : KC_ZERO;
    o.reset_after = ra ? 0 : KC_ZERO;
    o.return_sequences = rs;
    o.return_state = rstate;
    o.go_backwards = gb;
    o.stateful = sf;
    o.dropout = (float)d;
    o.recurrent_dropout = (float)rd;
    const kc_layer_ops *ops = cell == KC_CELL_LSTM ? &kc_lstm_ops
                              : cell == KC_CELL_GRU ? &kc_gru_ops
                                                    : &kc_simple_rnn_ops;
    kc_layer *l = rnn_new(ops, cell, units, &o);
    if (l) l->rnn->unroll = unroll, l->rnn->zero_output = zofm;
    return kc_cfg_made(l, where, out);
}
static kc_status simple_from(const cJSON *c, const char *w, kc_layer **o) {
    return rnn_from(KC_CELL_SIMPLE, c, w, o);
}
static kc_status lstm_from(const cJSON *c, const char *w, kc_layer **o) {
    return rnn_from(KC_CELL_LSTM, c, w, o);
}
static kc_status gru_from(const cJSON *c, const char *w, kc_layer **o) {
    return rnn_from(KC_CELL_GRU, c, w, o);
}

static kc_status rnn_to(const kc_layer *l, cJSON *cfg) {
    const struct kc_rnn *r = l->rnn;
    cJSON_AddBoolToObject(cfg, "return_sequences", r->return_sequences);
    cJSON_AddBoolToObject(cfg, "return_state", r->return_state);
    cJSON_AddBoolToObject(cfg, "go_backwards", r->go_backwards);
    cJSON_AddBoolToObject(cfg, "stateful", r->stateful);
    cJSON_AddBoolToObject(cfg, "unroll", r->unroll);
    cJSON_AddBoolToObject(cfg, "zero_output_for_mask", r->zero_output);
    cJSON_AddNumberToObject(cfg, "units", l->units);
    cJSON_AddStringToObject(cfg, "activation", kc_act_name(l->act));
    if (r->cell != KC_CELL_SIMPLE)
        cJSON_AddStringToObject(cfg, "recurrent_activation", kc_act_name(r->rec_act));
    cJSON_AddBoolToObject(cfg, "use_bias", !l->no_bias);
    cJSON_AddItemToObject(cfg, "kernel_initializer",
                          kc_initializer_to_json(&l->kernel_init, KC_INIT_GLOROT_UNIFORM));
    cJSON_AddItemToObject(cfg, "recurrent_initializer",
                          kc_initializer_to_json(&r->rec_init, KC_INIT_ORTHOGONAL));
    cJSON_AddItemToObject(cfg, "bias_initializer",
                          kc_initializer_to_json(&l->bias_init, KC_INIT_ZEROS));
    if (r->cell == KC_CELL_LSTM) cJSON_AddBoolToObject(cfg, "unit_forget_bias", r->unit_forget_bias);
    const char *nulls[] = {"kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                           "activity_regularizer", "kernel_constraint", "recurrent_constraint",
                           "bias_constraint"};
    for (int i = 0; i < 7; i++) cJSON_AddNullToObject(cfg, nulls[i]);
    cJSON_AddNumberToObject(cfg, "dropout", kc_json_float(r->dropout));
    cJSON_AddNumberToObject(cfg, "recurrent_dropout", kc_json_float(r->rec_dropout));
    if (!kc_config_writing_legacy()) cJSON_AddNullToObject(cfg, "seed"); /* tf.keras 2 has none */
    if (r->cell == KC_CELL_GRU) cJSON_AddBoolToObject(cfg, "reset_after", r->reset_after);
    return KC_OK;
}

static int rnn_weights(const kc_layer *l, kc_weight_desc *w) {
    static const char *const names[3][3] = {
        {"simple_rnn_cell/kernel", "simple_rnn_cell/recurrent_kernel", "simple_rnn_cell/bias"},
        {"lstm_cell/kernel", "lstm_cell/recurrent_kernel", "lstm_cell/bias"},
        {"gru_cell/kernel", "gru_cell/recurrent_kernel", "gru_cell/bias"}};
    const char *const *n = names[l->rnn->cell];
    int64_t F = l->in_shape.dims[1], u = l->units, gu = (int64_t)gates(l) * u;
    w[0] = (kc_weight_desc){n[0], 2, {F, gu}, 0, F * gu, 1};
    w[1] = (kc_weight_desc){n[1], 2, {u, gu}, F * gu, u * gu, 1};
    if (l->no_bias) return 2;
    if (l->rnn->cell == KC_CELL_GRU && l->rnn->reset_after)
        w[2] = (kc_weight_desc){n[2], 2, {2, gu}, l->kernel_size, 2 * gu, 1};
    else
        w[2] = (kc_weight_desc){n[2], 1, {gu}, l->kernel_size, gu, 1};
    return 3;
}

static const char *rnn_k3_group(const kc_layer *l, int i) { return "cell"; }

#define RNN_OPS(var, type, base, from, max_in)                                                  \
    const kc_layer_ops var = {.type_name = type,                                               \
                              .base_name = base,                                               \
                              .build = rnn_build,                                              \
                              .init = rnn_init,                                                \
                              .forward = rnn_forward,                                          \
                              .backward = rnn_backward,                                        \
                              .scratch_size = rnn_scratch,                                     \
                              .forward_n = rnn_forward_n,                                      \
                              .backward_n = rnn_backward_n,                                    \
                              .min_inputs = 1,                                                 \
                              .max_inputs = max_in,                                            \
                              .supports_masking = 1,                                           \
                              .compute_mask = rnn_compute_mask,                                \
                              .allows_none = 1,                                                \
                              .destroy = rnn_destroy,                                          \
                              .n_outputs = rnn_n_outputs,                                      \
                              .output_part = rnn_output_part,                                  \
                              .part_mask_rows = rnn_part_mask_rows,                            \
                              .io = {from, rnn_to, rnn_weights, NULL, rnn_k3_group}};
RNN_OPS(kc_simple_rnn_ops, "SimpleRNN", "simple_rnn", simple_from, 2)
RNN_OPS(kc_lstm_ops, "LSTM", "lstm", lstm_from, 3)
RNN_OPS(kc_gru_ops, "GRU", "gru", gru_from, 2)

static kc_act act_opt(kc_act a, kc_act dflt) { return a == 0 ? dflt : a == KC_RNN_LINEAR ? KC_LINEAR : a; }

static kc_layer *rnn_new(const kc_layer_ops *ops, kc_cell_kind cell, int units,
                         const kc_rnn_opts *opts) {
    kc_rnn_opts o = opts ? *opts : (kc_rnn_opts){0};
    kc_layer *l = kc_layer_new(ops);
    if (!l) return NULL;
    l->rnn = calloc(1, sizeof *l->rnn);
    if (!l->rnn) {
        kc_layer_release(l);
        return NULL;
    }
    struct kc_rnn *r = l->rnn;
    r->cell = cell;
    l->units = units;
    l->act = act_opt(o.activation, KC_TANH);
    r->rec_act = act_opt(o.recurrent_activation, KC_SIGMOID);
    l->no_bias = o.use_bias == KC_ZERO;
    r->unit_forget_bias = o.unit_forget_bias != KC_ZERO;
    r->reset_after = o.reset_after != KC_ZERO;
    l->kernel_init = o.kernel_initializer;
    r->rec_init = o.recurrent_initializer;
    l->bias_init = o.bias_initializer;
    r->return_sequences = o.return_sequences;
    r->return_state = o.return_state != 0;
    r->go_backwards = o.go_backwards;
    r->stateful = o.stateful;
    r->dropout = o.dropout;
    r->rec_dropout = o.recurrent_dropout;
    r->zero_output = o.zero_output_for_mask;
    return l;
}

kc_layer *kc_simple_rnn(int units, const kc_rnn_opts *o) {
    return rnn_new(&kc_simple_rnn_ops, KC_CELL_SIMPLE, units, o);
}
kc_layer *kc_lstm(int units, const kc_rnn_opts *o) {
    return rnn_new(&kc_lstm_ops, KC_CELL_LSTM, units, o);
}
kc_layer *kc_gru(int units, const kc_rnn_opts *o) {
    return rnn_new(&kc_gru_ops, KC_CELL_GRU, units, o);
}

int kc_is_rnn(const kc_layer *l) { return l && l->rnn != NULL; }
int kc_rnn_return_sequences(const kc_layer *l) { return l->rnn->return_sequences; }
int kc_rnn_state_count(const kc_layer *l) { return l->rnn->return_state ? n_states(l) : 0; }
const char *kc_rnn_cell_name(const kc_layer *l) {
    return l->rnn->cell == KC_CELL_LSTM ? "lstm_cell"
           : l->rnn->cell == KC_CELL_GRU ? "gru_cell"
                                         : "simple_rnn_cell";
}
kc_layer *kc_rnn_copy(const kc_layer *l, int flip) {
    const struct kc_rnn *r = l->rnn;
    kc_rnn_opts o = {.activation = l->act == KC_LINEAR ? KC_RNN_LINEAR : l->act,
                     .recurrent_activation = r->rec_act == KC_LINEAR ? KC_RNN_LINEAR : r->rec_act,
                     .use_bias = l->no_bias ? KC_ZERO : 0,
                     .unit_forget_bias = r->unit_forget_bias ? 0 : KC_ZERO,
                     .reset_after = r->reset_after ? 0 : KC_ZERO,
                     .kernel_initializer = l->kernel_init,
                     .recurrent_initializer = r->rec_init,
                     .bias_initializer = l->bias_init,
                     .return_sequences = r->return_sequences,
                     .go_backwards = flip ? !r->go_backwards : r->go_backwards,
                     .stateful = r->stateful,
                     .dropout = r->dropout,
                     .recurrent_dropout = r->rec_dropout,
                     .return_state = r->return_state};
    kc_layer *c = rnn_new(l->ops, r->cell, l->units, &o);
    if (c) c->rnn->unroll = r->unroll, c->rnn->zero_output = r->zero_output;
    return c;
}
void kc_rnn_set_zero_output(kc_layer *l, int on) { l->rnn->zero_output = on; }
