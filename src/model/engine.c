/* engine.c: running a model's graph on a batch: the workspace (one activation buffer per
 * tensor, the planned gradient buffers, each node's scratch, the targets), forward in
 * topological order, the losses, and backward in reverse order with gradients summed where a
 * tensor feeds several nodes or a layer is called several times. The optimizer steps each
 * layer as soon as its weight gradients are complete (inside the product for a fused Dense). */
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
    }
    for (int k = 0; k < m->n_nodes; k++) {
        kc_free(m->nodes[k].scratch);
        m->nodes[k].scratch = NULL;
    }
    for (int i = 0; m->grad_pool && i < m->n_grad_pool; i++) kc_free(m->grad_pool[i]);
    free(m->grad_pool);
    m->grad_pool = NULL;
    for (int i = 0; m->grad_tmp && i < m->n_grad_tmp; i++) kc_free(m->grad_tmp[i]);
    free(m->grad_tmp);
    kc_free(m->wgrad_tmp);
    m->grad_tmp = NULL;
    m->wgrad_tmp = NULL;
    for (int o = 0; o < KC_MAX_IO; o++) {
        kc_free(m->ybuf[o]);
        m->ybuf[o] = NULL;
        kc_free(m->wbuf[o]);
        m->wbuf[o] = NULL;
        m->weighted[o] = 0;
    }
    m->ws_batch = 0;
}

kc_status kc_model_ensure_workspace(kc_model *m, int batch) {
    if (!m->planned) kc_model_plan(m);
    int parts = kc_pool_size();
    if (batch <= m->ws_batch && parts == m->ws_parts && m->grad_pool) return KC_OK;
    if (batch < m->ws_batch) batch = m->ws_batch;
    kc_model_free_workspace(m);
    int64_t largest = 1, shared_params = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        kc_tval *v = &m->tensors[t];
        largest = v->size > largest ? v->size : largest;
        if (!(v->act = kc_alloc(sizeof(float) * (size_t)(batch * v->size)))) goto fail;
    }
    m->grad_pool = calloc((size_t)m->n_grad_pool + 1, sizeof *m->grad_pool);
    if (!m->grad_pool) goto fail;
    for (int i = 0; i < m->n_grad_pool; i++)
        if (!(m->grad_pool[i] = kc_alloc(sizeof(float) * (size_t)(batch * largest)))) goto fail;
    m->grad_tmp = calloc((size_t)m->n_grad_tmp + 1, sizeof *m->grad_tmp);
    if (!m->grad_tmp) goto fail;
    for (int i = 0; i < m->n_grad_tmp; i++)
        if (!(m->grad_tmp[i] = kc_alloc(sizeof(float) * (size_t)(batch * largest)))) goto fail;
    for (int k = 0; k < m->n_nodes; k++) {
        kc_node *n = &m->nodes[k];
        kc_layer *l = n->layer;
        if (n->call && l->param_count > shared_params) shared_params = l->param_count;
        int64_t floats = l->ops->scratch_size ? l->ops->scratch_size(l, batch, parts) : 0;
        if (floats > 0 && !(n->scratch = kc_alloc(sizeof(float) * (size_t)floats))) goto fail;
        l->scratch_parts = parts;
    }
    if (shared_params && !(m->wgrad_tmp = kc_alloc(sizeof(float) * (size_t)shared_params)))
        goto fail;
    m->wgrad_tmp_size = shared_params;
    for (int o = 0; o < m->n_outputs; o++)
        if (!(m->ybuf[o] = kc_alloc(sizeof(float) * (size_t)(batch * m->tensors[m->outputs[o]].size))))
            goto fail;
    for (int o = 0; o < m->n_outputs; o++)
        if (!(m->wbuf[o] = kc_alloc(sizeof(float) * (size_t)batch))) goto fail;
    m->ws_batch = batch;
    m->ws_parts = parts;
    return KC_OK;
fail:
    kc_model_free_workspace(m);
    return kc_err(KC_ENOMEM, "out of memory for the batch workspace (batch %d)", batch);
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

void kc_model_forward(kc_model *m, int batch, const kc_forward_ctx *ctx) {
    for (int k = 0; k < m->n_nodes; k++) {
        const kc_node *n = &m->nodes[k];
        if (n->skip) continue;
        kc_layer *l = enter(m, n);
        kc_forward_ctx c = node_ctx(m, n, ctx);
        float *out = m->tensors[n->write_to].act;
        if (l->ops->forward_n) {
            const float *ins[KC_MAX_LAYER_INPUTS];
            for (int i = 0; i < n->n_in; i++) ins[i] = m->tensors[n->in[i]].act;
            l->ops->forward_n(l, ins, out, batch, &c);
        } else {
            l->ops->forward(l, m->tensors[n->in[0]].act, out, batch, &c);
        }
    }
}

int kc_model_output_cols(const kc_model *m, int o) {
    kc_shape s = m->tensors[m->outputs[o]].shape;
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

void kc_model_update_metrics(kc_model *m, int batch, const float *const *sample_weight) {
    for (int i = 0; i < m->n_mets; i++) {
        kc_metric_state *st = &m->mets[i];
        int o = st->output;
        const float *w = st->weighted && sample_weight ? sample_weight[o] : NULL;
        kc_metric_update(st, m->tensors[m->outputs[o]].act, m->ybuf[o], batch, w);
    }
}

static double losses(kc_model *m, int batch, double *per_output, int metrics, int grads) {
    double total = 0.0;
    const float *weights[KC_MAX_IO] = {0}; /* the batch's sample weights, for weighted_metrics */
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
        double lo = kc_loss_compute_weighted(&m->loss_specs[o], v->act, m->ybuf[o], rows, cols,
                                             g, fused, sw);
        float w = m->loss_weights[o];
        if (g && w != 1.0f)
            for (int64_t i = 0; i < (int64_t)rows * cols; i++) g[i] *= w;
        if (g) v->grad_written = 1;
        if (per_output) per_output[o] = lo;
        total += (double)w * lo;
    }
    if (metrics) kc_model_update_metrics(m, batch, weights);
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
        const kc_node *n = &m->nodes[k];
        if (n->skip) continue;
        kc_tval *dv = &m->tensors[n->write_to];
        if (!dv->needs_grad) continue;
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
