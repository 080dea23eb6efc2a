/* optim_step.c: the optimizer's steps that need the model's variables (Keras's trainable
 * variables: each trained layer's trainable weights, kernel and bias apart): the whole step
 * after backward (clipping by a norm, Lamb's trust ratio), and EMA's finalize at fit's end. */
#include "model.h"
#include "../optimizers.h"
#include <stdlib.h>

/* the trained variables in Keras's order as (offset, count); *n their number */
static int64_t (*trained_vars(const kc_model *m, int *n))[2] {
    int cap = 16, k = 0;
    int64_t(*v)[2] = malloc(sizeof *v * (size_t)cap);
    for (int i = 0; v && i < m->n_layers; i++) {
        if (!m->layers[i]->param_count || !kc_model_layer_trained(m, i)) continue;
        kc_weight_desc w[KC_MAX_WEIGHTS];
        int nw = kc_layer_weights(m->layers[i], w);
        for (int j = 0; j < nw; j++) {
            if (!w[j].trainable) continue;
            if (k == cap) {
                int64_t(*bigger)[2] = realloc(v, sizeof *v * (size_t)(cap *= 2));
                if (!bigger) {
                    free(v);
                    return NULL;
                }
                v = bigger;
            }
            v[k][0] = w[j].offset;
            v[k][1] = w[j].count;
            k++;
        }
    }
    *n = k;
    return v;
}

kc_status kc_model_optimizer_step_all(kc_model *m) {
    int n = 0;
    int64_t(*v)[2] = trained_vars(m, &n);
    if (!v) return kc_err(KC_ENOMEM, "out of memory for the optimizer step");
    kc_optimizer_step_vars(m->opt, m->params, m->grads, (const int64_t(*)[2])v, n);
    free(v);
    return KC_OK;
}

kc_status kc_finalize_variable_values(kc_model *m) {
    if (!m) return kc_err(KC_EINVAL, "kc_finalize_variable_values: model is NULL");
    if (!m->opt || !m->opt->use_ema || !m->opt->slots[KC_SLOT_EMA]) return KC_OK;
    int n = 0;
    int64_t(*v)[2] = trained_vars(m, &n);
    if (!v) return kc_err(KC_ENOMEM, "kc_finalize_variable_values: out of memory");
    for (int k = 0; k < n; k++)
        for (int64_t i = v[k][0]; i < v[k][0] + v[k][1]; i++)
            m->params[i] = m->opt->slots[KC_SLOT_EMA][i];
    free(v);
    return KC_OK;
}

kc_optimizer *kc_model_get_optimizer(kc_model *m) { return m ? m->opt : NULL; }
