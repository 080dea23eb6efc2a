/* engine.c: running a model's graph on a batch: this call's lengths (None dimensions bound,
 * layers built again for them), the workspace (one activation buffer per tensor, the masks,
 * the planned gradient buffers, each node's scratch, the targets; grown when too small),
 * forward in topological order (each layer seeing its input's mask, the output's mask
 * computed or passed on), the losses (masked rows left out), and backward in reverse order
 * with gradients summed where a tensor feeds several nodes or a layer is called several
 * times. The optimizer steps each layer as soon as its weight gradients are complete (inside
 * the product for a fused Dense, on the used rows for an Embedding under plain SGD). */
#include "model.h"
#include "../initializers.h"
#include "../optimizers.h"
#include "../ops/ops.h"
#include "../util/threads.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- workspace --------------------------------------------------------------------------- */

void kc_model_free_workspace(kc_model *m) {
    for (int t = 0; t < m->n_tensors; t++) {
        kc_free(m->tensors[t].act);
        m->tensors[t].act = NULL;
        m->tensors[t].act_cap = 0;
        if (m->tensors[t].mask_cap) kc_free(m->tensors[t].mask); /* not a passed-on one */
        m->tensors[t].mask_cap = 0;
    }
    for (int t = 0; t < m->n_tensors; t++) m->tensors[t].mask = NULL;
    for (int k = 0; k < m->n_nodes; k++) {
        kc_free(m->nodes[k].scratch);
        m->nodes[k].scratch = NULL;
        m->nodes[k].scratch_cap = 0;
    }
    for (int i = 0; m->grad_pool && i < m->n_grad_pool; i++) kc_free(m->grad_pool[i]);
    free(m->grad_pool);
    m->grad_pool = NULL;
    for (int i = 0; m->grad_tmp && i < m->n_grad_tmp; i++) kc_free(m->grad_tmp[i]);
    free(m->grad_tmp);
    kc_free(m->wgrad_tmp);
    m->grad_tmp = NULL;
    m->wgrad_tmp = NULL;
    m->grad_cap = 0;
    for (int o = 0; o < KC_MAX_IO; o++) {
        kc_free(m->ybuf[o]);
        m->ybuf[o] = NULL;
        m->ybuf_cap[o] = 0;
        kc_free(m->wbuf[o]);
        m->wbuf[o] = NULL;
        m->weighted[o] = 0;
    }
    m->ws_batch = 0;
}

int64_t kc_model_mask_rows(const kc_model *m, int t) {
    const kc_tval *v = &m->tensors[t];
    /* a layer of several outputs: the mask of the outputs that carry one (part_mask_rows) */
    const kc_layer *l = v->producer >= 0 ? m->nodes[v->producer].layer : NULL;
    if (l && !l->nested && l->ops->part_mask_rows && kc_layer_output_count(l) > 1) {
        int64_t rows = 1;
        for (int o = 0; o < kc_layer_output_count(l); o++) {
            int64_t r = l->ops->part_mask_rows(l, o);
            if (r > rows) rows = r;
        }
        return rows;
    }
    int last = v->run.rank ? v->run.dims[v->run.rank - 1] : 1;
    return last > 0 && v->size > 0 ? v->size / last : 1;
}

/* *p holds at least need elements (reallocated, contents dropped, when it held fewer) */
static int fit_buffer(void *pp, int64_t *cap, int64_t need, size_t elem) {
    void **p = pp;
    if (*p && need <= *cap) return 1;
    kc_free(*p);
    *p = kc_alloc(elem * (size_t)(need > 0 ? need : 1));
    *cap = *p ? need : 0;
    return *p != NULL;
}

/* The workspace for batches of up to `batch` samples at the lengths bound now: each buffer
 * grows when it is too small (a larger batch, a longer sequence), and is kept otherwise, so a
 * training loop at fixed shapes allocates nothing. */
kc_status kc_model_ensure_workspace(kc_model *m, int batch) {
    kc_status planned = m->planned ? KC_OK : kc_model_plan(m);
    if (planned) return planned;
    int parts = kc_pool_size();
    if (parts != m->ws_parts) kc_model_free_workspace(m); /* scratch is sized per part */
    if (batch < m->ws_batch) batch = m->ws_batch;
    int64_t largest = 1, shared_params = 0;
    for (int t = 0; t < m->n_tensors; t++) /* passed-on masks are set again below */
        if (!m->tensors[t].mask_cap) m->tensors[t].mask = NULL;
    for (int t = 0; t < m->n_tensors; t++) {
        kc_tval *v = &m->tensors[t];
        if (v->size < 0) {
            char buf[64];
            return kc_err(KC_EINVAL,
                          "model %s: a tensor of shape %s has a None length that no data has "
                          "given; a model with a None input dimension takes its lengths from "
                          "each call's data (a kc_dataset, kc_predict_ex, kc_train_on_batch_ex)",
                          m->name, kc_shape_str(v->shape, buf, sizeof buf));
        }
        largest = v->size > largest ? v->size : largest;
        if (!fit_buffer(&v->act, &v->act_cap, (int64_t)batch * v->size, sizeof(float))) goto fail;
        if (v->has_mask && v->mask_src == t &&
            !fit_buffer(&v->mask, &v->mask_cap, (int64_t)batch * kc_model_mask_rows(m, t), 1))
            goto fail;
    }
    for (int t = 0; t < m->n_tensors; t++) { /* a passed-on mask: its source's buffer */
        kc_tval *v = &m->tensors[t];
        if (v->has_mask && v->mask_src != t) v->mask = m->tensors[v->mask_src].mask;
    }
    int64_t grad_need = (int64_t)batch * largest;
    if (!m->grad_pool || grad_need > m->grad_cap) {
        for (int i = 0; m->grad_pool && i < m->n_grad_pool; i++) kc_free(m->grad_pool[i]);
        free(m->grad_pool);
        for (int i = 0; m->grad_tmp && i < m->n_grad_tmp; i++) kc_free(m->grad_tmp[i]);
        free(m->grad_tmp);
        m->grad_tmp = NULL;
        m->grad_cap = 0;
        m->grad_pool = calloc((size_t)m->n_grad_pool + 1, sizeof *m->grad_pool);
        if (!m->grad_pool) goto fail;
        for (int i = 0; i < m->n_grad_pool; i++)
            if (!(m->grad_pool[i] = kc_alloc(sizeof(float) * (size_t)grad_need))) goto fail;
        m->grad_tmp = calloc((size_t)m->n_grad_tmp + 1, sizeof *m->grad_tmp);
        if (!m->grad_tmp) goto fail;
        for (int i = 0; i < m->n_grad_tmp; i++)
            if (!(m->grad_tmp[i] = kc_alloc(sizeof(float) * (size_t)grad_need))) goto fail;
        m->grad_cap = grad_need;
    }
    for (int k = 0; k < m->n_nodes; k++) {
        kc_node *n = &m->nodes[k];
        kc_layer *l = n->layer;
        if (n->call && l->param_count > shared_params) shared_params = l->param_count;
        int64_t floats = l->ops->scratch_size ? l->ops->scratch_size(l, batch, parts) : 0;
        if (floats > 0 && !fit_buffer(&n->scratch, &n->scratch_cap, floats, sizeof(float)))
            goto fail;
        l->scratch_parts = parts;
    }
    if (shared_params && (!m->wgrad_tmp || shared_params > m->wgrad_tmp_size)) {
        kc_free(m->wgrad_tmp);
        if (!(m->wgrad_tmp = kc_alloc(sizeof(float) * (size_t)shared_params))) goto fail;
        m->wgrad_tmp_size = shared_params;
    }
    for (int o = 0; o < m->n_outputs; o++)
        if (!fit_buffer(&m->ybuf[o], &m->ybuf_cap[o],
                        (int64_t)batch * m->tensors[m->outputs[o]].size, sizeof(float)))
            goto fail;
    if (batch > m->ws_batch || !m->wbuf[0])
        for (int o = 0; o < m->n_outputs; o++) {
            kc_free(m->wbuf[o]);
            if (!(m->wbuf[o] = kc_alloc(sizeof(float) * (size_t)batch))) goto fail;
        }
    for (int i = 0; i < m->n_mets; i++) {
        kc_metric_state *ms = &m->mets[i];
        int64_t size = m->tensors[m->outputs[ms->output]].size;
        if (ms->cols > 0 && kc_metric_reserve(ms, (int64_t)batch * (size / ms->cols))) goto fail;
    }
    m->ws_batch = batch;
    m->ws_parts = parts;
    return KC_OK;
fail:
    kc_model_free_workspace(m);
    return kc_err(KC_ENOMEM, "out of memory for the batch workspace (batch %d)", batch);
}

/* ---- None lengths ------------------------------------------------------------------------ */

static int shape_has_none(kc_shape s) {
    for (int i = 0; i < s.rank; i++)
        if (s.dims[i] == KC_NONE) return 1;
    return 0;
}

kc_status kc_model_bind_shapes(kc_model *m, const kc_shape *inputs, const char *what) {
    char a[64], b[64];
    if (!m->has_none) return KC_OK; /* every shape is fixed */
    kc_shape declared[KC_MAX_IO];
    int inputs_fixed = !inputs;
    for (int i = 0; i < m->n_inputs && !inputs; i++) {
        declared[i] = m->tensors[m->inputs[i]].shape;
        inputs_fixed &= !shape_has_none(declared[i]);
    }
    if (inputs_fixed) inputs = declared; /* a None model nested in a fixed one */
    if (!inputs)
        return kc_err(KC_EINVAL,
                      "%s: model %s has an input with a None dimension; its length comes from "
                      "the data: give typed arrays with their shapes (kc_predict_ex, "
                      "kc_train_on_batch_ex, kc_compute_gradients_ex, or a kc_dataset)",
                      what, m->name);
    for (int i = 0; i < m->n_inputs; i++) {
        kc_tval *v = &m->tensors[m->inputs[i]];
        kc_shape s = inputs[i];
        int ok = s.rank == v->shape.rank;
        for (int d = 0; ok && d < s.rank; d++)
            ok = s.dims[d] > 0 && (v->shape.dims[d] == KC_NONE || v->shape.dims[d] == s.dims[d]);
        if (!ok)
            return kc_err(KC_EINVAL, "%s: the data of input %d ('%s') has per-sample shape %s; "
                                     "the model takes %s (a None dimension: any length)",
                          what, i, m->input_names[i], kc_shape_str(s, a, sizeof a),
                          kc_shape_str(v->shape, b, sizeof b));
        v->run = s;
        v->size = kc_shape_size(s);
    }
    for (int k = 0; k < m->n_nodes; k++) {
        const kc_node *n = &m->nodes[k];
        kc_layer *l = n->layer;
        kc_tval *out = &m->tensors[n->out];
        int none = 0;
        for (int i = 0; i < n->n_in; i++) /* a None input, or a layer built on one */
            none |= shape_has_none(m->tensors[n->in[i]].shape) ||
                    shape_has_none(l->decl_in_shapes[i]);
        if (!none) {
            out->run = out->shape;
            out->size = kc_shape_size(out->shape);
            continue;
        }
        /* a layer called twice in one model runs on one length per call */
        for (int j = 0; j < k; j++) {
            if (m->nodes[j].layer != l) continue;
            for (int i = 0; i < n->n_in; i++)
                if (memcmp(&m->tensors[m->nodes[j].in[i]].run, &m->tensors[n->in[i]].run,
                           sizeof(kc_shape)))
                    return kc_err(KC_EINVAL,
                                  "%s: layer %s is called on inputs of shapes %s and %s in this "
                                  "call; kerac runs a shared layer on one length per call",
                                  what, l->name,
                                  kc_shape_str(m->tensors[m->nodes[j].in[i]].run, a, sizeof a),
                                  kc_shape_str(m->tensors[n->in[i]].run, b, sizeof b));
        }
        int64_t params = l->param_count, kernel = l->kernel_size, trained = l->trainable_count;
        for (int i = 0; i < n->n_in; i++) {
            l->in_shapes[i] = m->tensors[n->in[i]].run;
            l->in_sizes[i] = kc_shape_size(l->in_shapes[i]);
        }
        l->in_shape = l->in_shapes[0];
        l->in_size = l->in_sizes[0];
        kc_status st = l->ops->build(l);
        if (st) return kc_err_prefix(st, "%s: ", what);
        l->out_size = kc_shape_size(l->out_shape);
        if (l->param_count != params || l->kernel_size != kernel || l->trainable_count != trained)
            return kc_err(KC_EINVAL, "%s: layer %s (%s): its weights would depend on the input's "
                                     "length %s; kerac refuses this",
                          what, l->name, l->ops->type_name,
                          kc_shape_str(l->in_shape, a, sizeof a));
        out->run = l->out_shape;
        out->size = l->out_size;
    }
    return KC_OK;
}

kc_status kc_model_check_batch(kc_model *m, int batch, const int64_t *index, int64_t first,
                               const char *what) {
    for (int k = 0; k < m->n_nodes; k++) {
        const kc_node *n = &m->nodes[k];
        const kc_layer *l = n->layer;
        int p = m->tensors[n->in[0]].producer; /* the data: a model input, or a
                                                  TextVectorization's output (its texts' ids) */
        if (!l->ops->check_input ||
            (p >= 0 && !kc_layer_text_vectorization(m->nodes[p].layer)))
            continue;
        kc_status st = l->ops->check_input(l, m->tensors[n->in[0]].act, batch, index, first, what);
        if (st) return st;
    }
    return KC_OK;
}

/* ---- regularizers -------------------------------------------------------------------------- */

static int reg_on(const kc_regularizer *r) { return kc_regularizer_active(r); }

/* ---- forward ---------------------------------------------------------------------------- */

/* binds a node's plan and scratch to its layer before the layer runs */
static kc_layer *enter(const kc_model *m, const kc_node *n) {
    kc_layer *l = n->layer;
    l->fused_dropout = n->fused_dropout;
    l->gate_from = n->gate_from;
    l->scratch = n->scratch;
    l->input_is_data = m->tensors[n->in[0]].data_only;
    return l;
}

/* a frozen BatchNormalization runs in inference mode (Keras) */
static kc_forward_ctx node_ctx(const kc_model *m, const kc_node *n, const kc_forward_ctx *ctx) {
    kc_forward_ctx c = *ctx;
    int on = kc_model_layer_trained(m, n->li);
    if (n->inference || (!on && kc_model_is_type(n->layer, "BatchNormalization")))
        c.training = c.update_stats = 0;
    return c;
}

/* the mask a node's layer sees: its first input's, when the layer supports masking */
static const uint8_t *node_mask(const kc_model *m, const kc_node *n) {
    const kc_tval *in = &m->tensors[n->in[0]];
    return n->layer->ops->supports_masking && in->has_mask ? in->mask : NULL;
}

/* the node's output mask, when it computes one (a passed-on mask is its input's buffer) */
static void compute_out_mask(kc_model *m, const kc_node *n, int batch) {
    kc_tval *out = &m->tensors[n->out];
    if (!out->has_mask || out->mask_src != n->out) return;
    const kc_layer *l = n->layer;
    if (l->ops->compute_mask_n) {
        const uint8_t *ins[KC_MAX_LAYER_INPUTS];
        for (int i = 0; i < n->n_in; i++)
            ins[i] = m->tensors[n->in[i]].has_mask ? m->tensors[n->in[i]].mask : NULL;
        l->ops->compute_mask_n(l, ins, out->mask, batch);
    } else if (l->ops->compute_mask) {
        const kc_tval *in = &m->tensors[n->in[0]];
        l->ops->compute_mask(l, in->has_mask ? in->mask : NULL, out->mask, batch);
    }
}

void kc_model_forward(kc_model *m, int batch, const kc_forward_ctx *ctx) {
    for (int k = 0; k < m->n_nodes; k++) {
        if (ctx->stop_forward && k == ctx->stop_forward - 1) break;
        const kc_node *n = &m->nodes[k];
        if (n->skip) continue;
        kc_layer *l = enter(m, n);
        kc_forward_ctx c = node_ctx(m, n, ctx);
        c.mask = node_mask(m, n);
        float *out = m->tensors[n->write_to].act;
        if (l->ops->forward_n) {
            const float *ins[KC_MAX_LAYER_INPUTS];
            for (int i = 0; i < n->n_in; i++) ins[i] = m->tensors[n->in[i]].act;
            l->ops->forward_n(l, ins, out, batch, &c);
        } else {
            l->ops->forward(l, m->tensors[n->in[0]].act, out, batch, &c);
        }
        compute_out_mask(m, n, batch);
    }
}

int kc_model_output_cols(const kc_model *m, int o) {
    kc_shape s = m->tensors[m->outputs[o]].run;
    return s.rank ? s.dims[s.rank - 1] : 1;
}

/* the regularization penalties of the forward just run, as Keras adds them to the mean loss:
 * the weights of trained layers (Keras 3 regularizes trainable weights only), unscaled, and
 * each call's output activity divided by the batch size (Keras 3.15 layer.py and tf.keras
 * 2.15 base_layer.py both divide) */
static double penalties(const kc_model *m, int batch) {
    double total = 0.0;
    for (int i = 0; i < m->n_layers; i++) {
        const kc_layer *l = m->layers[i];
        int on = kc_model_layer_trained(m, i);
        if (!l->param_count || !on) continue;
        if (reg_on(&l->kernel_reg))
            total += kc_regularizer_penalty(&l->kernel_reg, l->kernel, l->kernel_size);
        if (reg_on(&l->bias_reg) && l->bias)
            total += kc_regularizer_penalty(&l->bias_reg, l->bias, l->param_count - l->kernel_size);
    }
    for (int k = 0; k < m->n_nodes; k++) {
        const kc_node *n = &m->nodes[k];
        if (!n->skip && reg_on(&n->layer->activity_reg))
            total += kc_regularizer_penalty(&n->layer->activity_reg, m->tensors[n->out].act,
                                            (int64_t)batch * m->tensors[n->out].size) /
                     batch;
    }
    return total;
}

/* every output's loss on the forward just run; grads (optional) receive each output's
 * weighted loss gradient in its slot */
void kc_model_reset_metrics(kc_model *m) {
    for (int i = 0; i < m->n_mets; i++) kc_metric_reset(&m->mets[i]);
}

void kc_model_update_metrics(kc_model *m, int batch, const float *const *sample_weight,
                             const uint8_t *const *mask) {
    for (int i = 0; i < m->n_mets; i++) {
        kc_metric_state *st = &m->mets[i];
        int o = st->output;
        const float *w = st->weighted && sample_weight ? sample_weight[o] : NULL;
        /* a None length changes the rows per sample from call to call */
        st->rows_per_sample = (int)(m->tensors[m->outputs[o]].size / st->cols);
        kc_metric_update(st, m->tensors[m->outputs[o]].act, m->ybuf[o], batch, w,
                         mask ? mask[o] : NULL);
    }
}

static double losses(kc_model *m, int batch, double *per_output, int metrics, int grads) {
    double total = 0.0;
    const float *weights[KC_MAX_IO] = {0}; /* the batch's sample weights, for weighted_metrics */
    const uint8_t *masks[KC_MAX_IO] = {0};  /* the outputs' masks (Keras's Mean metrics use them) */
    for (int o = 0; o < m->n_outputs; o++) {
        kc_tval *v = &m->tensors[m->outputs[o]];
        int cols = kc_model_output_cols(m, o);
        int rows = (int)((int64_t)batch * v->size / cols);
        int p = v->producer;
        int fused = p >= 0 && m->nodes[p].dout_pre;
        float *g = grads && v->grad_slot >= 0 ? m->grad_pool[v->grad_slot] : NULL;
        /* sample weights: one per sample, and a sample is one row (sample_weights.c checks) */
        const float *sw = m->weighted[o] ? m->wbuf[o] : NULL;
        weights[o] = sw;
        /* a masked output: masked rows weigh 0, the mean is over the rows left (Keras 3) */
        const uint8_t *mask = v->has_mask ? v->mask : NULL;
        masks[o] = mask;
        double lo = m->loss_rows > 0
                        ? kc_loss_compute_rows(&m->loss_specs[o], v->act, m->ybuf[o], rows, cols,
                                               g, fused, (int64_t)m->loss_rows * (rows / batch))
                        : kc_loss_compute_masked(&m->loss_specs[o], v->act, m->ybuf[o], rows,
                                                 cols, g, fused, sw, mask, NULL);
        float w = m->loss_weights[o];
        if (g && w != 1.0f)
            for (int64_t i = 0; i < (int64_t)rows * cols; i++) g[i] *= w;
        if (g) v->grad_written = 1;
        if (per_output) per_output[o] = lo;
        total += (double)w * lo;
    }
    if (metrics) kc_model_update_metrics(m, batch, weights, masks);
    return total + penalties(m, batch);
}

double kc_model_loss(kc_model *m, int batch, double *per_output, int metrics) {
    return losses(m, batch, per_output, metrics, 0);
}

/* ---- backward ---------------------------------------------------------------------------- */

static void add_into(float *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

double kc_model_forward_backward(kc_model *m, int batch, const kc_forward_ctx *ctx,
                                 double *per_output, int metrics, int update) {
    kc_model_forward(m, batch, ctx);
    for (int t = 0; t < m->n_tensors; t++) m->tensors[t].grad_written = 0;
    double loss = losses(m, batch, per_output, metrics, 1);
    update = update && isfinite(loss);
    int all_grads = update && kc_optimizer_needs_all_grads(m->opt);
    for (int k = m->n_nodes - 1; k >= 0; k--) {
        if (ctx->stop_backward && k == ctx->stop_backward - 1) break;
        const kc_node *n = &m->nodes[k];
        if (n->skip) continue;
        kc_tval *dv = &m->tensors[n->write_to];
        if (!dv->needs_grad || dv->grad_slot < 0) continue; /* read by nothing: no gradient */
        kc_layer *l = enter(m, n);
        float *dout = m->grad_pool[dv->grad_slot];
        int64_t out_count = (int64_t)batch * dv->size;
        if (!dv->grad_written) memset(dout, 0, sizeof(float) * (size_t)out_count);
        if (reg_on(&l->activity_reg))
            kc_regularizer_grad_add_scaled(&l->activity_reg, m->tensors[n->out].act, dout,
                                           out_count, 1.0f / (float)batch);
        /* input gradients: written straight into a tensor's buffer by its first contributor,
         * through grad_tmp and added by the others */
        float *din[KC_MAX_LAYER_INPUTS];
        int via_tmp[KC_MAX_LAYER_INPUTS], n_tmp = 0;
        for (int i = 0; i < n->n_in; i++) {
            kc_tval *iv = &m->tensors[n->in[i]];
            din[i] = NULL;
            via_tmp[i] = 0;
            if (!iv->needs_grad) continue;
            if (!iv->grad_written) din[i] = m->grad_pool[iv->grad_slot];
            else din[i] = m->grad_tmp[n_tmp++], via_tmp[i] = 1;
            iv->grad_written = 1; /* the same tensor twice: its second gradient via a temp */
        }
        /* a shared layer's further calls add their weight gradients to the first's */
        int redirect = !n->first_backward && l->param_count;
        float *kernel_grads = l->dkernel, *bias_grads = l->dbias;
        if (redirect) {
            l->dkernel = m->wgrad_tmp;
            l->dbias = l->no_bias ? NULL : m->wgrad_tmp + l->kernel_size;
        }
        kc_forward_ctx c = node_ctx(m, n, ctx);
        c.mask = node_mask(m, n);
        c.opt = update && n->fused_step && !all_grads ? m->opt : NULL;
        if (l->ops->backward_n) {
            const float *ins[KC_MAX_LAYER_INPUTS];
            for (int i = 0; i < n->n_in; i++) ins[i] = m->tensors[n->in[i]].act;
            l->ops->backward_n(l, ins, dv->act, dout, din, batch, &c);
        } else {
            l->ops->backward(l, m->tensors[n->in[0]].act, dv->act, dout, din[0], batch,
                             n->dout_pre, &c);
        }
        if (redirect) {
            add_into(kernel_grads, m->wgrad_tmp, l->param_count);
            l->dkernel = kernel_grads;
            l->dbias = bias_grads;
        }
        for (int i = 0; i < n->n_in; i++)
            if (via_tmp[i])
                add_into(m->grad_pool[m->tensors[n->in[i]].grad_slot], din[i],
                         (int64_t)batch * m->tensors[n->in[i]].size);
        if (m->grads_ready) m->grads_ready(m->grads_ready_arg,
                                           n->last_backward && l->param_count ? n->li : -1);
        if (!n->last_backward || !l->param_count) continue;
        int on = kc_model_layer_trained(m, n->li);
        if (!on || n->fused_step) continue;
        if (reg_on(&l->kernel_reg))
            kc_regularizer_grad_add(&l->kernel_reg, l->kernel, l->dkernel, l->kernel_size);
        if (reg_on(&l->bias_reg) && l->bias)
            kc_regularizer_grad_add(&l->bias_reg, l->bias, l->dbias, l->param_count - l->kernel_size);
        if (update && l->trainable_count && !all_grads)
            kc_optimizer_update(m->opt, m->params, m->grads, l->param_offset, l->trainable_count);
    }
    /* clipping by a norm, Lamb: one step over all variables once every gradient is there */
    if (update && all_grads && kc_model_optimizer_step_all(m)) return NAN;
    else if (update && !all_grads) kc_optimizer_finish_step(m->opt);
    return loss;
}
