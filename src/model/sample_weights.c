/* sample_weights.c: Keras's sample_weight and class_weight. A batch's weights go into wbuf[o]
 * (one float per sample) and weighted[o] says whether output o has any; engine.c's losses()
 * hands them to kc_loss_compute_weighted. Metrics are not weighted (Keras's `metrics`). */
#include "model.h"
#include <math.h>
#include <string.h>

/* the weights of output o in ds, or NULL */
static const float *ds_weights(const kc_dataset *ds, int o) {
    if (!ds) return NULL;
    return ds->output_sample_weight[o] ? ds->output_sample_weight[o] : ds->sample_weight;
}

static int any_weights(const kc_dataset *ds) {
    if (ds->sample_weight) return 1;
    for (int o = 0; o < KC_MAX_IO; o++)
        if (ds->output_sample_weight[o]) return 1;
    return 0;
}

static int rows_per_sample(const kc_model *m, int o) {
    return (int)(m->tensors[m->outputs[o]].size / kc_model_output_cols(m, o));
}

static kc_status check_array(const kc_model *m, int o, const float *w, int64_t count,
                             const char *name, const char *what) {
    char which[64] = "";
    if (m->n_outputs > 1) snprintf(which, sizeof which, " (output %d)", o);
    if (rows_per_sample(m, o) != 1)
        return kc_err(KC_EINVAL,
                      "%s: %s gives one weight per sample, but output %d ('%s') has %d rows per "
                      "sample (its loss is one value per row); Keras refuses this too",
                      what, name, o, kc_model_output_name(m, o), rows_per_sample(m, o));
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(w[i]) || w[i] < 0.0f)
            return kc_err(KC_EINVAL, "%s: %s[%lld]%s is %g; sample weights must be finite and >= 0",
                          what, name, (long long)i, which, (double)w[i]);
    return KC_OK;
}

kc_status kc_model_check_sample_weights(const kc_model *m, const kc_dataset *ds, const char *what) {
    for (int o = m->n_outputs; o < KC_MAX_IO; o++)
        if (ds->output_sample_weight[o])
            return kc_err(KC_EINVAL, "%s: output_sample_weight[%d] is set, but the model has %d "
                                     "output%s", what, o, m->n_outputs, m->n_outputs == 1 ? "" : "s");
    for (int o = 0; o < m->n_outputs; o++) {
        const float *w = ds_weights(ds, o);
        if (!w) continue;
        kc_status st = check_array(m, o, w, ds->count,
                                   ds->output_sample_weight[o] ? "output_sample_weight" : "sample_weight",
                                   what);
        if (st) return st;
    }
    return KC_OK;
}

kc_status kc_model_check_class_weight(const kc_model *m, const kc_dataset *ds, const float *cw,
                                      int n, const char *what) {
    if (n < 0) return kc_err(KC_EINVAL, "%s: n_class_weight is %d; it must be >= 0", what, n);
    if (!cw && n > 0)
        return kc_err(KC_EINVAL, "%s: n_class_weight is %d but class_weight is NULL", what, n);
    if (!cw) return KC_OK;
    if (m->n_outputs != 1)
        return kc_err(KC_EINVAL, "%s: class_weight is only supported for models with a single "
                                 "output (the model has %d); give each output's sample weights "
                                 "(output_sample_weight) instead", what, m->n_outputs);
    if (any_weights(ds))
        return kc_err(KC_EINVAL, "%s: class_weight and the data's sample_weight cannot be used "
                                 "at the same time (Keras refuses it too)", what);
    if (rows_per_sample(m, 0) != 1)
        return kc_err(KC_EINVAL, "%s: class_weight needs one target row per sample; output 0 "
                                 "('%s') has %d", what, kc_model_output_name(m, 0),
                      rows_per_sample(m, 0));
    for (int c = 0; c < n; c++)
        if (!isfinite(cw[c]) || cw[c] < 0.0f)
            return kc_err(KC_EINVAL, "%s: class_weight[%d] (class %d) is %g; class weights must "
                                     "be finite and >= 0", what, c, c, (double)cw[c]);
    return KC_OK;
}

void kc_model_gather_sample_weights(kc_model *m, const kc_dataset *ds, const int64_t *index,
                                    int count) {
    for (int o = 0; o < m->n_outputs && o < KC_MAX_IO; o++) {
        const float *w = ds_weights(ds, o);
        m->weighted[o] = w != NULL;
        if (w)
            for (int i = 0; i < count; i++) m->wbuf[o][i] = w[index[i]];
    }
}

/* Keras (data_adapter_utils.class_weight_to_sample_weights): the class of a sample is its
 * class index, the argmax of its target row, or its single target rounded half to even; a
 * class that class_weight does not name weighs 1 */
void kc_model_apply_class_weight(kc_model *m, int batch, const float *cw, int n) {
    if (!cw || m->n_outputs != 1) return;
    int cols = kc_model_output_cols(m, 0);
    int sparse = m->losses[0] == KC_SPARSE_CATEGORICAL_CROSSENTROPY;
    for (int i = 0; i < batch; i++) {
        const float *y = m->ybuf[0] + (sparse ? i : (int64_t)i * cols);
        double c;
        if (sparse || cols == 1) {
            c = nearbyint((double)y[0]);
        } else {
            int best = 0;
            for (int j = 1; j < cols; j++)
                if (y[j] > y[best]) best = j;
            c = best;
        }
        m->wbuf[0][i] = c >= 0 && c < n ? cw[(int)c] : 1.0f;
    }
    m->weighted[0] = 1;
}

kc_status kc_model_set_batch_weights(kc_model *m, const float *const *sw, int batch,
                                     const char *what) {
    memset(m->weighted, 0, sizeof m->weighted);
    for (int o = 0; o < m->n_outputs && o < KC_MAX_IO; o++) {
        const float *w = sw ? sw[o] : NULL;
        if (!w) continue;
        kc_status st = check_array(m, o, w, batch, "sample_weight", what);
        if (st) return st;
        memcpy(m->wbuf[o], w, sizeof(float) * (size_t)batch);
        m->weighted[o] = 1;
    }
    return KC_OK;
}
