/* plan.c: the one place where a model's fusions are decided, once per compile (or when the
 * graph or a flag changes), and the gradient buffers are assigned. Fusions change no result,
 * only the passes over memory; kc_set_fusion(m, 0) plans none (the plain path).
 *   - a Dense(relu) whose output feeds one Dropout only applies the mask in its product's last
 *     store and writes the Dropout's output; the Dropout node is skipped, forward and backward;
 *   - a Dense whose input is such a relu Dense's output (through its fused Dropout or
 *     directly), read by it alone, multiplies its input gradient by the relu's (and
 *     dropout's) derivative in the product's last store; the relu Dense takes it as it is;
 *   - a Dense called once, trained and without weight regularizers, steps its kernel inside
 *     its weight-gradient product (gemm's block_done), the gradient never reaching m->grads;
 *     not when the optimizer needs every gradient first (clipping by a norm, Lamb);
 *   - an Embedding called once, trained, unregularized, under plain SGD
 *     (kc_optimizer_row_sparse) steps only the rows its batch used: the dense step's numbers.
 * The loss folds a softmax or sigmoid output into its gradient where that is exact (losses.c):
 * that is the loss's definition, planned here too but on both paths. */
#include "model.h"
#include "../ops/ops.h"
#include "../optimizers.h"
#include <stdlib.h>
#include <string.h>

static int single_consumer(const kc_model *m, int t) {
    if (m->tensors[t].n_consumers != 1 || m->tensors[t].output >= 0) return -1;
    for (int k = 0; k < m->n_nodes; k++)
        for (int i = 0; i < m->nodes[k].n_in; i++)
            if (m->nodes[k].in[i] == t) return k;
    return -1;
}

static int trained(const kc_model *m, const kc_node *n) {
    int on = kc_model_layer_trained(m, n->li);
    return on && n->layer->param_count > 0 && n->layer->trainable_count > 0;
}

static int calls_of(const kc_model *m, const kc_layer *l) {
    int c = 0;
    for (int k = 0; k < m->n_nodes; k++) c += m->nodes[k].layer == l;
    return c;
}

static int regularized(const kc_layer *l) {
    return l->kernel_reg.l1 != 0.0f || l->kernel_reg.l2 != 0.0f || l->bias_reg.l1 != 0.0f ||
           l->bias_reg.l2 != 0.0f;
}

static int activity_regularized(const kc_layer *l) {
    return l->activity_reg.l1 != 0.0f || l->activity_reg.l2 != 0.0f;
}

kc_status kc_model_plan(kc_model *m) {
    m->planned = 0;
    /* where OpenBLAS does the products, load it now: under an address-space limit too small
     * for its buffers this is an error here, not a hang later (src/ops/blas.c) */
    if (!strcmp(kc_gemm_backend(), "openblas")) {
        char why[320];
        if (kc_blas_load(why, sizeof why) == -1) return kc_err(KC_ENOMEM, "%s", why);
    }
    for (int k = 0; k < m->n_nodes; k++) {
        kc_node *n = &m->nodes[k];
        n->skip = n->dout_pre = n->fused_step = 0;
        n->fused_dropout = NULL;
        n->gate_from = NULL;
        n->first_backward = n->last_backward = 0;
        n->write_to = n->out;
        n->li = kc_model_layer_index(m, n->layer);
    }
    /* which gradients exist, and which inputs are raw data (mostly zeros: sparse products) */
    for (int t = 0; t < m->n_tensors; t++) {
        kc_tval *v = &m->tensors[t];
        v->needs_grad = 0;
        v->data_only = v->producer < 0;
        v->act_from = t;
        v->grad_slot = -1;
    }
    for (int k = 0; k < m->n_nodes; k++) {
        kc_node *n = &m->nodes[k];
        int up = trained(m, n), data = n->layer->param_count == 0 && n->n_in == 1;
        for (int i = 0; i < n->n_in; i++) {
            up |= m->tensors[n->in[i]].needs_grad;
            data &= m->tensors[n->in[i]].data_only;
        }
        m->tensors[n->out].needs_grad = up;
        m->tensors[n->out].data_only = data;
    }
    /* the first and the last call of each layer that backward visits */
    for (int k = m->n_nodes - 1; k >= 0; k--) {
        int later = 0;
        for (int j = k + 1; j < m->n_nodes; j++) later |= m->nodes[j].layer == m->nodes[k].layer;
        m->nodes[k].first_backward = !later;
        int earlier = 0;
        for (int j = 0; j < k; j++) earlier |= m->nodes[j].layer == m->nodes[k].layer;
        m->nodes[k].last_backward = !earlier;
    }
    if (!m->no_fusion)
        for (int k = 0; k < m->n_nodes; k++) {
            kc_node *n = &m->nodes[k];
            kc_layer *l = n->layer;
            int once = calls_of(m, l) == 1;
            if (kc_model_is_type(l, "Dense") && once && trained(m, n) && !regularized(l) &&
                !(m->opt && kc_optimizer_needs_all_grads(m->opt)))
                n->fused_step = 1;
            /* an Embedding steps the rows its batch used when the step leaves the others as
             * they are (plain SGD): the same numbers as the dense step */
            if (kc_model_is_type(l, "Embedding") && once && trained(m, n) && !regularized(l) &&
                kc_optimizer_row_sparse(m->opt))
                n->fused_step = 1;
            if (!kc_model_is_type(l, "Dense") || l->act != KC_RELU || !once) continue;
            int t = n->out, c = single_consumer(m, t);
            if (c >= 0 && kc_model_is_type(m->nodes[c].layer, "Dropout") &&
                !m->nodes[c].layer->n_noise && /* a noise_shape: its own mask (seq_simple.c) */
                calls_of(m, m->nodes[c].layer) == 1 && !activity_regularized(l)) {
                n->fused_dropout = m->nodes[c].layer;
                m->nodes[c].skip = 1;
                t = n->write_to = m->nodes[c].out;
                m->tensors[t].act_from = t;
                c = single_consumer(m, t);
            }
            if (c >= 0 && kc_model_is_type(m->nodes[c].layer, "Dense") &&
                !activity_regularized(l) && m->tensors[t].needs_grad) {
                m->nodes[c].gate_from = l;
                n->dout_pre = 1;
            }
        }
    /* the loss folds the output's softmax or sigmoid into its gradient where exact */
    for (int o = 0; o < m->n_outputs; o++) {
        int t = m->outputs[o];
        int p = m->tensors[t].producer;
        if (p >= 0 && m->opt && m->tensors[t].n_consumers == 0 && !m->nodes[p].skip &&
            !activity_regularized(m->nodes[p].layer) &&
            kc_loss_fuses(&m->loss_specs[o], m->nodes[p].layer->act))
            m->nodes[p].dout_pre = 1;
    }
    /* gradient buffers: a tensor's gradient lives from its first contribution (its last
     * reader, which backward visits first; the loss for an output) to its producer's
     * backward; slots are reused greedily (two, ping-pong, for a chain) */
    int *free_slots = malloc(sizeof(int) * (size_t)(m->n_tensors + 2));
    if (!free_slots) return kc_err(KC_ENOMEM, "model %s: out of memory planning the gradient "
                                   "buffers", m->name);
    int n_free = 0, n_slots = 0;
    for (int o = 0; o < m->n_outputs; o++)
        if (m->tensors[m->outputs[o]].needs_grad) m->tensors[m->outputs[o]].grad_slot = n_slots++;
    int n_tmp = 0;
    for (int t = 0; t < m->n_tensors; t++) m->tensors[t].grad_written = 0;
    for (int o = 0; o < m->n_outputs; o++) m->tensors[m->outputs[o]].grad_written = 1;
    for (int k = m->n_nodes - 1; k >= 0; k--) {
        kc_node *n = &m->nodes[k];
        if (n->skip) continue;
        int d = n->write_to;
        /* an output nothing reads (a slice of a layer's several outputs) gets no gradient */
        if (!m->tensors[d].needs_grad || m->tensors[d].grad_slot < 0) continue;
        int written = 0;
        for (int i = 0; i < n->n_in; i++) {
            kc_tval *v = &m->tensors[n->in[i]];
            if (!v->needs_grad) continue;
            if (v->grad_slot < 0) v->grad_slot = n_free ? free_slots[--n_free] : n_slots++;
            written += v->grad_written;
            v->grad_written = 1;
        }
        n_tmp = written > n_tmp ? written : n_tmp;
        if (m->tensors[d].grad_slot >= 0) free_slots[n_free++] = m->tensors[d].grad_slot;
    }
    free(free_slots);
    if (n_slots != m->n_grad_pool || n_tmp != m->n_grad_tmp)
        kc_model_free_workspace(m); /* sized again on next need */
    m->n_grad_pool = n_slots;
    m->n_grad_tmp = n_tmp;
    m->planned = 1;
    return KC_OK;
}
