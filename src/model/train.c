/* train.c: compile, fit, evaluate, predict, single batches, weights in and out, and History.
 * Data flows: dataset -> batch (one array per input and per output) -> forward -> losses ->
 * backward -> optimizer -> parameters (engine.c). */
#include "model.h"
#include "../model_view.h"
#include "../ops/ops.h"
#include "../util/progress.h"
#include "../dist/dist.h"
#include "../initializers.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- weights in and out ------------------------------------------------------------------- */

static kc_status check_count(kc_model *m, const void *buffer, int64_t count, const char *what) {
    kc_status st = kc_model_ensure_weights(m, what);
    if (st) return st;
    if (!buffer) return kc_err(KC_EINVAL, "%s: the buffer is NULL", what);
    if (count != m->n_params)
        return kc_err(KC_EINVAL, "%s: the model has %lld weights, the buffer holds %lld", what,
                      (long long)m->n_params, (long long)count);
    return KC_OK;
}

kc_status kc_get_weights(kc_model *m, float *out, int64_t count) {
    kc_status st = check_count(m, out, count, "kc_get_weights");
    if (!st) memcpy(out, m->params, sizeof(float) * (size_t)count);
    return st;
}

kc_status kc_set_weights(kc_model *m, const float *values, int64_t count) {
    kc_status st = check_count(m, values, count, "kc_set_weights");
    if (st) return st;
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(values[i]))
            return kc_err(KC_EINVAL, "kc_set_weights: value %lld is %g; weights must be finite",
                          (long long)i, (double)values[i]);
    memcpy(m->params, values, sizeof(float) * (size_t)count);
    return KC_OK;
}

/* ---- compile ------------------------------------------------------------------------------ */

static int broadcast_only_first(const unsigned *v, int n) {
    for (int i = 1; i < n; i++)
        if (v[i]) return 0;
    return 1;
}

/* A layer without a backward (a custom layer whose type has none) must not lie where training
 * needs a gradient: after a trained weight (plan.c's needs_grad), or holding one itself. */
static kc_status check_differentiable(const kc_model *m, const unsigned char *trained) {
    unsigned char *needs = calloc((size_t)(m->n_tensors ? m->n_tensors : 1), 1);
    if (!needs) return kc_err(KC_ENOMEM, "kc_compile: out of memory");
    kc_status st = KC_OK;
    for (int k = 0; k < m->n_nodes && !st; k++) {
        const kc_node *n = &m->nodes[k];
        const kc_layer *l = n->layer;
        int li = kc_model_layer_index(m, l);
        int up = li >= 0 && trained[li] && l->param_count > 0 && l->trainable_count > 0;
        for (int i = 0; i < n->n_in; i++) up |= needs[n->in[i]];
        needs[n->out] = (unsigned char)up;
        if (up && !l->ops->backward && !l->ops->backward_n)
            st = kc_err(KC_EINVAL, "kc_compile: layer %s (%s) is a custom layer whose backward is "
                                   "missing, and training needs its gradient%s; give its type a "
                                   "backward, or freeze the weights before it (kc_set_trainable)",
                        l->name, l->ops->type_name,
                        l->trainable_count > 0 ? " (it has trainable weights)" : "");
    }
    free(needs);
    return st;
}

/* ---- the compiled metrics: their states, keys as Keras 3 names them -------------------- */

typedef struct {
    kc_metric_state *mets;
    int n;
    const char **keys; /* "loss", the outputs' losses, the metrics' keys (one allocation) */
    int n_keys;
} metric_set;

static void metric_set_free(metric_set *ms) {
    for (int i = 0; i < ms->n; i++) kc_metric_free(&ms->mets[i]);
    free(ms->mets);
    free(ms->keys);
    *ms = (metric_set){0};
}

void kc_model_free_metrics(kc_model *m) {
    metric_set ms = {m->mets, m->n_mets, m->value_keys, m->n_value_keys};
    metric_set_free(&ms);
    m->mets = NULL;
    m->n_mets = 0;
    m->value_keys = NULL;
    m->n_value_keys = 0;
}

static int count_specs(const kc_metric_spec *list) {
    int n = 0;
    while (n < KC_MAX_METRICS && list[n].kind != KC_METRIC_NONE) n++;
    return n;
}

/* Keras 3's CompileMetrics.result(): "<output>_<name>" for several outputs; a name met again
 * gets "_1", "_2" ... (its unique_name_counters: names[] and uses[], the first n); a weighted
 * metric whose name is taken becomes "weighted_<name>" first */
static int counter_find(char (*names)[KC_METRIC_KEY_MAX], int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return i;
    return -1;
}

static void name_metric(const kc_model *m, kc_metric_state *st, char (*names)[KC_METRIC_KEY_MAX],
                        int *uses, int *n) {
    char name[KC_METRIC_KEY_MAX];
    int multi = m->n_outputs > 1;
    const char *out = multi ? kc_model_output_name(m, st->output) : "";
    snprintf(name, sizeof name, "%.48s%s%.63s", out, multi ? "_" : "", st->name);
    int at = counter_find(names, *n, name);
    if (at >= 0 && st->weighted) {
        snprintf(name, sizeof name, "%.48s%sweighted_%.63s", out, multi ? "_" : "", st->name);
        at = counter_find(names, *n, name);
    }
    if (at < 0) {
        snprintf(names[*n], KC_METRIC_KEY_MAX, "%s", name);
        uses[(*n)++] = 1;
        snprintf(st->key, sizeof st->key, "%s", name);
        return;
    }
    char key[KC_METRIC_KEY_MAX + 16];
    snprintf(key, sizeof key, "%s_%d", name, uses[at]++);
    snprintf(st->key, sizeof st->key, "%.*s", (int)sizeof st->key - 1, key);
}

static kc_status metrics_build(kc_model *m, const kc_compile_opts *opts, const unsigned *bits,
                               const kc_loss_spec *losses, metric_set *ms) {
    int total = 0;
    for (int o = 0; o < m->n_outputs; o++)
        total += (bits[o] & KC_METRIC_ACCURACY ? 1 : 0) + count_specs(opts->metric_specs[o]) +
                 count_specs(opts->weighted_metric_specs[o]);
    ms->mets = calloc((size_t)(total ? total : 1), sizeof *ms->mets);
    char(*names)[KC_METRIC_KEY_MAX] = calloc((size_t)(total ? total : 1), sizeof *names);
    int *uses = calloc((size_t)(total ? total : 1), sizeof *uses), n_names = 0;
    if (!ms->mets || !names || !uses) {
        free(names);
        free(uses);
        free(ms->mets);
        ms->mets = NULL;
        return kc_err(KC_ENOMEM, "kc_compile: out of memory");
    }
    kc_status st = KC_OK;
    /* Keras's order: each output's metrics, then each output's weighted metrics */
    for (int weighted = 0; weighted < 2 && !st; weighted++)
        for (int o = 0; o < m->n_outputs && !st; o++) {
            char where[160];
            if (m->n_outputs > 1)
                snprintf(where, sizeof where, "kc_compile (output %d, '%s')", o,
                         kc_model_output_name(m, o));
            else
                snprintf(where, sizeof where, "kc_compile");
            const kc_metric_spec *list = weighted ? opts->weighted_metric_specs[o] : opts->metric_specs[o];
            int n = count_specs(list);
            kc_metric_spec acc = {.kind = KC_METRIC_ACCURACY};
            for (int k = -1; k < n && !st; k++) {
                if (k < 0 && (weighted || !(bits[o] & KC_METRIC_ACCURACY))) continue;
                const kc_metric_spec *sp = k < 0 ? &acc : &list[k];
                char w2[200];
                snprintf(w2, sizeof w2, "%s%s", where, weighted ? " (weighted_metrics)" : "");
                st = kc_metric_init(&ms->mets[ms->n], sp, &losses[o], m->tensors[m->outputs[o]].shape,
                                    o, weighted, w2);
                if (!st) name_metric(m, &ms->mets[ms->n++], names, uses, &n_names);
            }
        }
    free(names);
    free(uses);
    int n_keys = 1 + (m->n_outputs > 1 ? m->n_outputs : 0) + ms->n;
    if (!st) {
        ms->keys = malloc(sizeof(char *) * (size_t)n_keys + (size_t)n_keys * KC_METRIC_KEY_MAX);
        if (!ms->keys) st = kc_err(KC_ENOMEM, "kc_compile: out of memory");
    }
    if (st) {
        metric_set_free(ms);
        return st;
    }
    char *text = (char *)(ms->keys + n_keys);
    for (int i = 0; i < n_keys; i++) {
        char *k = text + (size_t)i * KC_METRIC_KEY_MAX;
        int outs = m->n_outputs > 1 ? m->n_outputs : 0;
        if (i == 0) snprintf(k, KC_METRIC_KEY_MAX, "loss");
        else if (i <= outs) snprintf(k, KC_METRIC_KEY_MAX, "%s_loss", kc_model_output_name(m, i - 1));
        else snprintf(k, KC_METRIC_KEY_MAX, "%s", ms->mets[i - 1 - outs].key);
        ms->keys[i] = k;
    }
    ms->n_keys = n_keys;
    return KC_OK;
}

int kc_model_metric_direction(const kc_model *m, const char *key) {
    if (!key) return 0;
    const char *k = !strncmp(key, "val_", 4) ? key + 4 : key;
    if (!strcmp(k, "learning_rate") || !strcmp(k, "lr")) return -1;
    if (!m || !m->opt) return !strcmp(k, "loss") ? -1 : 0;
    for (int i = 0; i < m->n_value_keys; i++)
        if (!strcmp(m->value_keys[i], k)) {
            int outs = m->n_outputs > 1 ? m->n_outputs : 0;
            return i <= outs ? -1 : (m->mets[i - 1 - outs].info->up ? 1 : -1);
        }
    /* "acc" and "accuracy" for each other */
    if (!strcmp(k, "acc") || !strcmp(k, "accuracy"))
        return kc_model_metric_direction(m, !strcmp(k, "acc") ? "accuracy" : "acc");
    return 0;
}

const char *kc_model_log_keys(const kc_model *m) {
    static _Thread_local char buf[1024];
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; m && i < m->n_value_keys; i++) {
        int w = snprintf(buf + n, sizeof buf - n, "%s%s", i ? ", " : "", m->value_keys[i]);
        if (w < 0 || (size_t)w >= sizeof buf - n) break;
        n += (size_t)w;
    }
    return buf;
}

int kc_model_metric_count(const kc_model *m) { return m && m->opt ? m->n_mets : 0; }

kc_status kc_model_metric(const kc_model *m, int i, kc_metric_spec *spec, int *output,
                          int *weighted, const char **key) {
    if (!m || !m->opt || i < 0 || i >= m->n_mets)
        return kc_err(KC_EINVAL, "kc_model_metric: no metric %d (the model has %d)", i,
                      m && m->opt ? m->n_mets : 0);
    const kc_metric_state *st = &m->mets[i];
    if (spec) *spec = st->spec;
    if (output) *output = st->output;
    if (weighted) *weighted = st->weighted;
    if (key) *key = st->key;
    return KC_OK;
}

kc_status kc_compile_ex(kc_model *m, const kc_compile_opts *opts) {
    kc_optimizer *opt = opts ? opts->optimizer : NULL;
    if (!m) {
        kc_optimizer_free(opt);
        return kc_err(KC_EINVAL, "kc_compile: model is NULL");
    }
    kc_status st = KC_OK;
    kc_loss losses[KC_MAX_IO];
    kc_loss_spec specs[KC_MAX_IO];
    unsigned metrics[KC_MAX_IO];
    float weights[KC_MAX_IO];
    metric_set ms = {0};
    if (!opts) st = kc_err(KC_EINVAL, "kc_compile: options are NULL");
    else if (!opt) st = kc_err(KC_EINVAL, "kc_compile: optimizer is NULL (its constructor failed)");
    if (!st) st = kc_model_ensure_weights(m, "kc_compile");
    if (!st) {
        unsigned l[KC_MAX_IO];
        for (int o = 0; o < KC_MAX_IO; o++) l[o] = (unsigned)opts->loss[o];
        int one_loss = broadcast_only_first(l, KC_MAX_IO), one_metric = 0;
        for (int o = 0; o < KC_MAX_IO; o++) l[o] = (unsigned)opts->loss_specs[o].kind;
        int one_spec = broadcast_only_first(l, KC_MAX_IO);
        int with_specs = opts->loss_specs[0].kind != KC_LOSS_NONE || !one_spec;
        if (with_specs) one_loss = one_spec;
        for (int o = 0; o < m->n_outputs; o++) {
            int from = one_loss ? 0 : o;
            specs[o] = with_specs ? opts->loss_specs[from] : (kc_loss_spec){.kind = opts->loss[from]};
            losses[o] = specs[o].kind;
            metrics[o] = one_metric ? opts->metrics[0] : opts->metrics[o];
            weights[o] = opts->has_loss_weights ? opts->loss_weights[o] : 1.0f;
        }
        for (int o = m->n_outputs; o < KC_MAX_IO && !st; o++)
            if ((!one_loss && (with_specs ? opts->loss_specs[o].kind : opts->loss[o])) ||
                (!one_metric && opts->metrics[o]) || opts->metric_specs[o][0].kind ||
                opts->weighted_metric_specs[o][0].kind)
                st = kc_err(KC_EINVAL, "kc_compile: a loss or metric for output %d, but the model "
                                       "has %d output%s", o, m->n_outputs,
                            m->n_outputs == 1 ? "" : "s");
    }
    for (int o = 0; o < m->n_outputs && !st; o++) {
        kc_shape out = m->tensors[m->outputs[o]].shape;
        char buf[64], which[48] = "";
        if (m->n_outputs > 1) snprintf(which, sizeof which, " (output %d)", o);
        char lw[64];
        snprintf(lw, sizeof lw, "kc_compile%s", which);
        if (losses[o] <= KC_LOSS_NONE || losses[o] >= KC_LOSS_COUNT)
            st = kc_err(KC_EINVAL, "kc_compile: unknown loss %d%s", (int)losses[o], which);
        else if ((st = kc_loss_spec_resolve(&specs[o], &specs[o], lw)))
            ;
        else if (metrics[o] & ~(unsigned)KC_METRIC_ACCURACY)
            st = kc_err(KC_EINVAL, "kc_compile: unknown metrics bits 0x%x%s (kc_compile's metrics "
                        "takes KC_METRIC_ACCURACY; other metrics go in kc_compile_ex's "
                        "metric_specs)", metrics[o], which);
        else if (!isfinite(weights[o]) || weights[o] < 0.0f)
            st = kc_err(KC_EINVAL, "kc_compile: loss weight %g%s must be finite and >= 0",
                        (double)weights[o], which);
        /* the categorical losses take the last axis as the classes: on (steps, classes) each
         * step is a row, the loss the mean over samples and steps (Keras's
         * sum_over_batch_size on a (batch, steps) loss; tests/test_seqloss.c); sparse labels are
         * one class index per row (tests/test_keras_seq.c) */
        else if (losses[o] == KC_CATEGORICAL_CROSSENTROPY &&
                 (out.rank < 1 || out.dims[out.rank - 1] < 2))
            st = kc_err(KC_EINVAL,
                        "kc_compile: %s needs an output of shape (..., classes) with classes >= 2, "
                        "the model's output%s is %s",
                        kc_loss_name(losses[o]), which, kc_shape_str(out, buf, sizeof buf));
        else if ((losses[o] == KC_SPARSE_CATEGORICAL_CROSSENTROPY ||
                  losses[o] == KC_CATEGORICAL_FOCAL_CROSSENTROPY) &&
                 (out.rank < 1 || out.dims[out.rank - 1] < 2))
            st = kc_err(KC_EINVAL,
                        "kc_compile: %s needs an output of shape (..., classes) with classes >= "
                        "2, the model's output%s is %s",
                        kc_loss_name(losses[o]), which, kc_shape_str(out, buf, sizeof buf));
    }
    if (!st) st = metrics_build(m, opts, metrics, specs, &ms);
    unsigned char *trained = st ? NULL : malloc((size_t)(m->n_layers ? m->n_layers : 1));
    if (!st && !trained) st = kc_err(KC_ENOMEM, "kc_compile: out of memory");
    if (!st) {
        for (int i = 0; i < m->n_layers; i++) trained[i] = !m->layers[i]->frozen;
        st = check_differentiable(m, trained);
    }
    if (!st) st = kc_optimizer_bind(opt, m->n_params);
    if (st) {
        free(trained);
        metric_set_free(&ms);
        kc_optimizer_free(opt);
        return st;
    }
    kc_model_free_metrics(m);
    m->mets = ms.mets;
    m->n_mets = ms.n;
    m->value_keys = ms.keys;
    m->n_value_keys = ms.n_keys;
    free(m->trained);
    m->trained = trained;
    kc_optimizer_free(m->opt);
    m->opt = opt;
    for (int o = 0; o < m->n_outputs; o++) {
        m->losses[o] = losses[o];
        m->loss_specs[o] = specs[o];
        m->loss_weights[o] = weights[o];
        /* Keras warns when a loss that takes logits is given probabilities */
        int p = m->tensors[m->outputs[o]].producer;
        kc_act act = p >= 0 ? m->nodes[p].layer->act : KC_LINEAR;
        if (specs[o].from_logits && p >= 0 && (act == KC_SOFTMAX || act == KC_SIGMOID))
            kc_warn("kc_compile: output %d ('%s') ends in a %s activation but its loss %s has "
                    "from_logits=True: it will read probabilities as logits", o,
                    kc_model_output_name(m, o), kc_act_name(act), kc_loss_name(losses[o]));
    }
    m->planned = 0;
    return KC_OK;
}

kc_loss_spec kc_model_loss_spec(const kc_model *m, int o) {
    kc_loss_spec none = {.kind = KC_LOSS_NONE};
    return m && m->opt && o >= 0 && o < m->n_outputs ? m->loss_specs[o] : none;
}

kc_status kc_compile(kc_model *m, kc_loss loss, kc_optimizer *opt, unsigned metrics) {
    kc_compile_opts o = {.optimizer = opt, .loss = {loss}};
    for (int i = 0; i < KC_MAX_IO && m && i < m->n_outputs; i++) o.metrics[i] = metrics;
    return kc_compile_ex(m, &o);
}

static kc_status check_compiled(kc_model *m, const char *what) {
    kc_status st = kc_model_ensure_weights(m, what);
    if (st) return st;
    if (!m->opt) return kc_err(KC_ESTATE, "%s: the model is not compiled; call kc_compile first", what);
    return KC_OK;
}

/* ---- data ------------------------------------------------------------------------------- */

static kc_array ds_input(const kc_dataset *ds, int i) {
    if (ds->n_inputs > 0) return ds->inputs[i];
    return (kc_array){ds->x_shape, ds->x_dtype, ds->x, ds->x_scale, 0};
}

static kc_array ds_target(const kc_dataset *ds, int o) {
    if (ds->n_targets > 0) return ds->targets[o];
    return (kc_array){ds->y_shape, ds->y_dtype, ds->y, 1.0f, ds->num_classes};
}

/* the target rows of output o per sample: its shape without the last axis (this call's) */
static int64_t target_rows(const kc_model *m, int o) {
    return m->tensors[m->outputs[o]].size / kc_model_output_cols(m, o);
}

/* class indices for output o: an integer array of the output's shape without its last axis
 * (rank 0 for an output (classes); (steps) for (steps, classes)) */
static int is_class_index_for(const kc_model *m, const kc_array *a, int o) {
    if (a->dtype != KC_UINT8 && a->dtype != KC_INT32) return 0;
    if (a->shape.rank == 0) return target_rows(m, o) == 1;
    kc_shape out = m->tensors[m->outputs[o]].run;
    if (a->shape.rank != out.rank - 1) return 0;
    for (int d = 0; d < a->shape.rank; d++)
        if (a->shape.dims[d] != out.dims[d]) return 0;
    return 1;
}

static int is_class_index(const kc_array *a) {
    return a->shape.rank == 0 && (a->dtype == KC_UINT8 || a->dtype == KC_INT32);
}

static int64_t class_at(const kc_array *a, int64_t i) {
    return a->dtype == KC_UINT8 ? ((const uint8_t *)a->data)[i] : ((const int32_t *)a->data)[i];
}

static int shape_has_none(kc_shape s) {
    for (int i = 0; i < s.rank; i++)
        if (s.dims[i] == KC_NONE) return 1;
    return 0;
}

#define KC_EXACT_INT 16777216.0f /* 2^24: integers above it are not exact as float32 */

/* Values of one input array that the engine cannot carry as they are: int32 beyond 2^24 (token
 * ids travel as float32), and for an int32 model input float data that is not a whole number.
 * count samples of per values from sample first on. */
static kc_status check_values(const kc_model *m, int i, const void *data, kc_dtype dtype,
                              int64_t first, int64_t count, int64_t per, const char *what) {
    char which[96] = "";
    if (m->n_inputs > 1) snprintf(which, sizeof which, " of input %d ('%s')", i, m->input_names[i]);
    int int_input = m->tensors[m->inputs[i]].dtype == KC_INT32;
    int64_t n = count * per;
    if (dtype == KC_INT32) {
        const int32_t *x = (const int32_t *)data + first * per;
        for (int64_t k = 0; k < n; k++)
            if (x[k] > (int32_t)KC_EXACT_INT || x[k] < -(int32_t)KC_EXACT_INT)
                return kc_err(KC_EINVAL, "%s: value %d at sample %lld, position %lld%s is beyond "
                                         "2^24, which kerac carries exactly (int32 data travel "
                                         "as float32 values)",
                              what, (int)x[k], (long long)(first + k / per),
                              (long long)(k % per), which);
    } else if (dtype == KC_FLOAT32 && int_input) {
        const float *x = (const float *)data + first * per;
        for (int64_t k = 0; k < n; k++)
            if (!(fabsf(x[k]) <= KC_EXACT_INT) || x[k] != truncf(x[k]))
                return kc_err(KC_EINVAL, "%s: input%s is int32 (token ids), but the float value "
                                         "%g at sample %lld, position %lld is not a whole number "
                                         "within 2^24; give int32 data",
                              what, which, (double)x[k], (long long)(first + k / per),
                              (long long)(k % per));
    }
    return KC_OK;
}

/* the per-sample shapes of ds's inputs: this call's lengths */
static void data_shapes(const kc_model *m, const kc_dataset *ds, kc_shape *shapes) {
    for (int i = 0; i < m->n_inputs; i++) shapes[i] = ds_input(ds, i).shape;
}

/* binds the lengths of ds (a model with a None dimension) */
static kc_status bind_data(kc_model *m, const kc_dataset *ds, const char *what) {
    if (!m->has_none) return KC_OK;
    kc_shape shapes[KC_MAX_IO];
    data_shapes(m, ds, shapes);
    return kc_model_bind_shapes(m, shapes, what);
}

/* Checks that ds fits the compiled model: each input's per-sample shape (its None lengths
 * bound for this call) and values, each target's kind and range. */
static kc_status check_data(kc_model *m, const kc_dataset *ds, const char *what, int need_y) {
    char a[64], b[64], which[64] = "";
    if (!ds || ds->count <= 0) return kc_err(KC_EINVAL, "%s: the dataset is empty", what);
    int n_in = ds->n_inputs > 0 ? ds->n_inputs : 1;
    if (n_in != m->n_inputs)
        return kc_err(KC_EINVAL, "%s: the data has %d input array%s, the model takes %d", what,
                      n_in, n_in == 1 ? "" : "s", m->n_inputs);
    for (int i = 0; i < n_in; i++) {
        kc_array x = ds_input(ds, i);
        kc_shape want = m->tensors[m->inputs[i]].shape;
        if (m->n_inputs > 1) snprintf(which, sizeof which, " of input %d ('%s')", i, m->input_names[i]);
        if (!x.data) return kc_err(KC_EINVAL, "%s: the dataset is empty (no x%s)", what, which);
        int str_in = m->tensors[m->inputs[i]].dtype == KC_STRING;
        if (str_in != (x.dtype == KC_STRING))
            return kc_err(KC_EINVAL, str_in ? "%s: input%s takes texts: give x as KC_STRING (an "
                                              "array of NUL-terminated strings)"
                                            : "%s: x%s is KC_STRING, but the model's input is not "
                                              "a string input", what, which);
        if (str_in) {
            const char *const *texts = x.data;
            for (int64_t k = 0; k < ds->count; k++)
                if (!texts[k])
                    return kc_err(KC_EINVAL, "%s: text %lld%s is NULL", what, (long long)k, which);
            continue;
        }
        if (x.dtype != KC_UINT8 && x.dtype != KC_FLOAT32 && x.dtype != KC_INT32)
            return kc_err(KC_EINVAL, "%s: x%s must be uint8, int32 or float32", what, which);
        if (shape_has_none(x.shape))
            return kc_err(KC_EINVAL, "%s: the data's per-sample shape%s %s has a None dimension; "
                                     "data has a length", what, which,
                          kc_shape_str(x.shape, a, sizeof a));
        if (m->tensors[m->inputs[i]].dtype == KC_INT32 && x.scale != 0.0f && x.scale != 1.0f)
            return kc_err(KC_EINVAL, "%s: input%s takes token ids (int32); the data's scale %g "
                                     "would change them", what, which, (double)x.scale);
        int fits = x.shape.rank == want.rank;
        for (int d = 0; fits && d < want.rank; d++)
            fits = want.dims[d] == KC_NONE || want.dims[d] == x.shape.dims[d];
        if (!fits) {
            int longer = 0; /* a sequence longer than a fixed-length model takes */
            for (int d = 0; x.shape.rank == want.rank && d < want.rank; d++)
                longer |= want.dims[d] != KC_NONE && x.shape.dims[d] > want.dims[d];
            return kc_err(KC_EINVAL,
                          "%s: the data's per-sample shape%s is %s but the model's input shape is %s%s",
                          what, which, kc_shape_str(x.shape, a, sizeof a),
                          kc_shape_str(want, b, sizeof b),
                          kc_shape_size(x.shape) == kc_shape_size(want) ? " (kc_dataset_reshape it)"
                          : longer ? " (longer than the model's fixed length: pad or truncate the "
                                     "data to it, or build the model with a None length)"
                                   : "");
        }
        kc_status st = check_values(m, i, x.data, x.dtype, 0, ds->count, kc_shape_size(x.shape), what);
        if (st) return st;
    }
    kc_status st = bind_data(m, ds, what);
    if (st) return st;
    if (!need_y) return KC_OK;
    int n_out = ds->n_targets > 0 ? ds->n_targets : 1;
    if (n_out != m->n_outputs)
        return kc_err(KC_EINVAL, "%s: the data has %d target array%s, the model has %d outputs",
                      what, n_out, n_out == 1 ? "" : "s", m->n_outputs);
    which[0] = 0;
    for (int o = 0; o < n_out; o++) {
        kc_array y = ds_target(ds, o);
        kc_shape out = m->tensors[m->outputs[o]].run;
        int cols = kc_model_output_cols(m, o);
        kc_loss loss = m->losses[o];
        if (m->n_outputs > 1) snprintf(which, sizeof which, " (output %d)", o);
        if (!y.data) return kc_err(KC_EINVAL, "%s: the dataset has no labels (y)%s", what, which);
        if (loss == KC_SPARSE_CATEGORICAL_CROSSENTROPY) {
            if (!is_class_index_for(m, &y, o))
                return kc_err(KC_EINVAL,
                              "%s: sparse_categorical_crossentropy needs class indices (uint8 or "
                              "int32 labels of the output's shape %s without its last axis), "
                              "the labels%s have shape %s",
                              what, kc_shape_str(out, b, sizeof b), which,
                              kc_shape_str(y.shape, a, sizeof a));
            const kc_loss_spec *sp = &m->loss_specs[o];
            int64_t rows = target_rows(m, o);
            for (int64_t i = 0; i < ds->count * rows; i++)
                if ((class_at(&y, i) < 0 || class_at(&y, i) >= cols) &&
                    !(sp->has_ignore_class && class_at(&y, i) == sp->ignore_class)) {
                    if (rows == 1)
                        return kc_err(KC_EINVAL, "%s: label %lld of sample %lld%s is out of range [0, %d)",
                                      what, (long long)class_at(&y, i), (long long)i, which, cols);
                    return kc_err(KC_EINVAL, "%s: label %lld of sample %lld, position %lld%s is out "
                                             "of range [0, %d)", what, (long long)class_at(&y, i),
                                  (long long)(i / rows), (long long)(i % rows), which, cols);
                }
            continue;
        }
        if (is_class_index(&y) || is_class_index_for(m, &y, o))
            return kc_err(KC_EINVAL,
                          "%s: %s needs targets of shape %s but the labels%s are class indices: "
                          "call kc_to_categorical(ds, %d) or use sparse_categorical_crossentropy",
                          what, kc_loss_name(loss), kc_shape_str(out, a, sizeof a), which, cols);
        if (y.dtype != KC_FLOAT32 || kc_shape_size(y.shape) != m->tensors[m->outputs[o]].size)
            return kc_err(KC_EINVAL, "%s: the targets%s have shape %s but the model's output is %s",
                          what, which, kc_shape_str(y.shape, a, sizeof a),
                          kc_shape_str(out, b, sizeof b));
    }
    return kc_model_check_sample_weights(m, ds, what);
}

/* The preprocessing stage of a string input: its TextVectorization layer's vectorizer on the
 * batch's texts (samples index[0..count)), written as floats into that layer's output buffer
 * (its forward does nothing). */
static kc_status vectorize_batch(kc_model *m, int i, const void *data, const int64_t *index,
                                 int count, const char *what) {
    const kc_node *n = NULL;
    for (int k = 0; k < m->n_nodes && !n; k++)
        if (m->nodes[k].in[0] == m->inputs[i] && kc_layer_text_vectorization(m->nodes[k].layer))
            n = &m->nodes[k];
    if (!n) return kc_err(KC_EINVAL, "%s: the string input %s has no TextVectorization layer",
                          what, m->input_names[i]);
    const char *const *texts = data;
    const char **batch = malloc(sizeof(char *) * (size_t)(count > 0 ? count : 1));
    if (!batch) return kc_err(KC_ENOMEM, "%s: out of memory", what);
    for (int k = 0; k < count; k++) batch[k] = texts[index[k]];
    const kc_text_vectorization *tv = kc_layer_text_vectorization(n->layer);
    void *out = NULL;
    int64_t cols = 0;
    kc_status st = kc_text_vectorization_call(tv, batch, count, &out, &cols);
    free(batch);
    if (st) return kc_err_prefix(st, "%s: layer %s", what, n->layer->name);
    kc_tval *v = &m->tensors[n->write_to];
    if (cols != v->size) {
        free(out);
        return kc_err(KC_ESTATE, "%s: layer %s (TextVectorization) now gives %lld values per "
                                 "text, the model was built for %lld (its vocabulary changed "
                                 "after the model was built?)", what, n->layer->name,
                      (long long)cols, (long long)v->size);
    }
    size_t total = (size_t)count * (size_t)cols;
    if (kc_text_vectorization_output_dtype(tv) == KC_INT32)
        for (size_t k = 0; k < total; k++) v->act[k] = (float)((const int32_t *)out)[k];
    else memcpy(v->act, out, sizeof(float) * total);
    free(out);
    return KC_OK;
}

/* Copies count samples (by index, or from start when index is NULL) into the inputs' buffers
 * and the targets', then checks them (an Embedding's ids in range). */
static kc_status load_batch(kc_model *m, const kc_dataset *ds, const int64_t *index,
                            int64_t start, int count, int64_t *scratch_index, int with_y,
                            const char *what) {
    int64_t *sample = (int64_t *)index;
    if (!index) {
        for (int i = 0; i < count; i++) scratch_index[i] = start + i;
        index = sample = scratch_index;
    }
    for (int i = 0; i < m->n_inputs; i++) {
        kc_array x = ds_input(ds, i);
        kc_tval *v = &m->tensors[m->inputs[i]];
        if (v->dtype == KC_STRING) {
            kc_status st = vectorize_batch(m, i, x.data, index, count, what);
            if (st) return st;
            continue;
        }
        float scale = x.scale != 0.0f ? x.scale : 1.0f;
        if (x.dtype == KC_UINT8) kc_gather_rows_u8(v->act, x.data, index, count, v->size, scale);
        else if (x.dtype == KC_INT32)
            kc_gather_rows_i32(v->act, x.data, index, count, v->size, scale);
        else kc_gather_rows_f32(v->act, x.data, index, count, v->size, scale);
    }
    if (with_y) {
        for (int o = 0; o < m->n_outputs; o++) {
            kc_array y = ds_target(ds, o);
            int64_t rows = target_rows(m, o);
            if (is_class_index(&y) || (y.dtype != KC_FLOAT32 && is_class_index_for(m, &y, o)))
                for (int i = 0; i < count; i++)
                    for (int64_t r = 0; r < rows; r++)
                        m->ybuf[o][i * rows + r] = (float)class_at(&y, index[i] * rows + r);
            else
                kc_gather_rows_f32(m->ybuf[o], y.data, index, count, kc_shape_size(y.shape), 1.0f);
        }
        kc_model_gather_sample_weights(m, ds, index, count);
    }
    return kc_model_check_batch(m, count, sample, 0, what);
}

/* ---- the values fit reports: Keras's log keys ---------------------------------------------- */

typedef struct {
    double loss;
    double out_loss[KC_MAX_IO];
    int64_t seen;
} sums;

/* The logs' keys: the training half then the validation half ("val_"), each sorted as Keras
 * 3's logs come (the JAX trainer's dicts are sorted): the progress line, History, callbacks */
typedef struct {
    int n; /* keys per half */
    char names[2 * KC_MAX_METRIC_VALUES][KC_METRIC_KEY_MAX + 4];
    const char *ptrs[2 * KC_MAX_METRIC_VALUES];
    double values[2 * KC_MAX_METRIC_VALUES];
    int order[KC_MAX_METRIC_VALUES]; /* sorted position -> metrics_names position */
    int loss_at;                     /* where "loss" sorted to */
} log_keys;

/* the name Keras gives output o in log keys: its layer's (or nested model's) name */
const char *kc_model_output_name(const kc_model *m, int o) {
    int p = m->tensors[m->outputs[o]].producer;
    return p >= 0 ? m->entries[m->nodes[p].nest].layer->name : m->input_names[0];
}

/* qsort's comparator finds the model here: one per thread, as two threads may fit at once */
static _Thread_local const kc_model *sort_model;
static int by_key(const void *a, const void *b) {
    return strcmp(sort_model->value_keys[*(const int *)a], sort_model->value_keys[*(const int *)b]);
}

static log_keys *keys_new(const kc_model *m) {
    log_keys *k = malloc(sizeof *k);
    if (!k) return NULL;
    int n = m->n_value_keys;
    for (int i = 0; i < n; i++) k->order[i] = i;
    sort_model = m;
    qsort(k->order, (size_t)n, sizeof *k->order, by_key);
    k->n = n;
    for (int i = 0; i < n; i++) {
        const char *name = m->value_keys[k->order[i]];
        if (k->order[i] == 0) k->loss_at = i;
        snprintf(k->names[i], sizeof k->names[0], "%s", name);
        snprintf(k->names[n + i], sizeof k->names[0], "val_%s", name);
        k->ptrs[i] = k->names[i];
        k->ptrs[n + i] = k->names[n + i];
        k->values[i] = k->values[n + i] = NAN;
    }
    return k;
}

/* the values in metrics_names order: the mean losses of s, then the metrics' results */
static void current_values(const kc_model *m, const sums *s, double *v) {
    int n = 0;
    double seen = (double)s->seen;
    v[n++] = s->loss / seen;
    if (m->n_outputs > 1)
        for (int o = 0; o < m->n_outputs; o++) v[n++] = s->out_loss[o] / seen;
    for (int i = 0; i < m->n_mets; i++) v[n++] = kc_metric_result(&m->mets[i]);
}

/* the current values into values[0..k->n) (or from k->n for validation) */
static void keys_fill(const kc_model *m, log_keys *k, const sums *s, int validation) {
    double v[KC_MAX_METRIC_VALUES];
    current_values(m, s, v);
    double *out = k->values + (validation ? k->n : 0);
    for (int i = 0; i < k->n; i++) out[i] = v[k->order[i]];
}

/* the result of output o's "accuracy" (KC_METRIC_ACCURACY, unweighted), NaN without one */
static double accuracy_of(const kc_model *m, int o) {
    for (int i = 0; i < m->n_mets; i++) {
        const kc_metric_state *st = &m->mets[i];
        if (st->output == o && !st->weighted && st->spec.kind == KC_METRIC_ACCURACY)
            return kc_metric_result(st);
    }
    return NAN;
}

static double single_accuracy(const kc_model *m) {
    return m->n_outputs == 1 ? accuracy_of(m, 0) : NAN;
}

static void sums_add(sums *s, double loss, const double *per_output, int b, int n_outputs) {
    s->loss += loss * b;
    for (int o = 0; o < n_outputs; o++) s->out_loss[o] += per_output[o] * b;
    s->seen += b;
}

static void fill_metrics(const kc_model *m, const sums *s, kc_metrics *r) {
    r->loss = s->loss / (double)s->seen;
    r->accuracy = single_accuracy(m);
    for (int o = 0; o < KC_MAX_IO; o++) {
        r->output_loss[o] = o < m->n_outputs ? s->out_loss[o] / (double)s->seen : NAN;
        r->output_accuracy[o] = o < m->n_outputs ? accuracy_of(m, o) : NAN;
    }
    r->n_values = m->n_value_keys;
    r->keys = m->value_keys;
    current_values(m, s, r->values);
}

int kc_metrics_get(const kc_metrics *r, const char *key, double *value) {
    if (!r || !key || !r->keys) return 0;
    for (int pass = 0; pass < 2; pass++) {
        const char *want = key;
        if (pass == 1) { /* "acc" and "accuracy" find each other */
            if (!strcmp(key, "acc")) want = "accuracy";
            else if (!strcmp(key, "accuracy")) want = "acc";
            else break;
        }
        for (int i = 0; i < r->n_values; i++)
            if (!strcmp(r->keys[i], want)) {
                if (isnan(r->values[i])) return 0;
                if (value) *value = r->values[i];
                return 1;
            }
    }
    return 0;
}

/* Keras's warning when steps ask for more batches than the data has (once per call) */
static void warn_ran_out(int *warned, const char *what, const char *which) {
    if (*warned) return;
    *warned = 1;
    kc_warn("%s: your input ran out of data; interrupting the epoch. Make sure that the data "
            "can give at least %s batches (Keras's warning)", what, which);
}

/* ---- evaluate ---------------------------------------------------------------------------- */

static void sums_add(sums *s, double loss, const double *per_output, int b, int n_outputs);
static kc_status combine_metrics(kc_model *m);

/* evaluate_range on several ranks: batch j on rank j % size; each batch's loss is the one
 * process's, and the sums run in batch order, so the loss is the one process's bits; the
 * metrics' states are summed over the ranks (exact for counts such as accuracy) */
static kc_status evaluate_sharded(kc_model *m, const kc_dataset *ds, int64_t start,
                                  int64_t count, int batch_size, int64_t *scratch_index, sums *s,
                                  kc_status st, const char *what) {
    int size = kc_dist_size(), me = kc_dist_rank(), nv = 2 + m->n_outputs;
    int64_t nb = (count + batch_size - 1) / batch_size, mine = (nb - me + size - 1) / size;
    kc_forward_ctx ctx = {.bf16 = m->bf16};
    int *of = malloc(sizeof(int) * (size_t)size);
    double *v = malloc(sizeof(double) * (size_t)(1 + (mine > 0 ? mine : 0) * nv));
    double *all = malloc(sizeof(double) * (size_t)(size + nb * nv));
    if (!of || !v || !all) {
        free(of), free(v), free(all);
        return kc_err(KC_ENOMEM, "%s: out of memory", what);
    }
    double per_output[KC_MAX_IO];
    for (int64_t j = me, k = 0; !st && j < nb; j += size, k++) {
        int64_t done = j * batch_size;
        int b = (int)(count - done < batch_size ? count - done : batch_size);
        if ((st = load_batch(m, ds, NULL, start + done, b, scratch_index, 1, what))) break;
        kc_model_forward(m, b, &ctx);
        double *r = v + 1 + k * nv;
        r[0] = kc_model_loss(m, b, per_output, 1);
        r[1] = b;
        for (int o = 0; o < m->n_outputs; o++) r[2 + o] = per_output[o];
    }
    v[0] = (double)st;
    for (int r = 0; r < size; r++) of[r] = 1 + (int)((nb - r + size - 1) / size) * nv;
    kc_status gs = kc_dist_allgather_doubles(v, of, all);
    for (int r = 0; r < size && !gs && !st; r++) {
        int64_t at = 0;
        for (int q = 0; q < r; q++) at += of[q];
        if (all[at] != 0.0)
            st = kc_err((kc_status)all[at], "%s: rank %d failed; its own message says why",
                        what, r);
    }
    if (!st) st = gs;
    if (!st) {
        for (int64_t j = 0; j < nb; j++) { /* in batch order */
            int r = (int)(j % size);
            int64_t at = 0;
            for (int q = 0; q < r; q++) at += of[q];
            const double *b = all + at + 1 + (j / size) * nv;
            for (int o = 0; o < m->n_outputs; o++) per_output[o] = b[2 + o];
            sums_add(s, b[0], per_output, (int)b[1], m->n_outputs);
        }
        st = combine_metrics(m);
    }
    free(of);
    free(v);
    free(all);
    return st;
}

/* the losses over samples [start, start + count) of ds, in inference mode, and the metrics
 * (reset first, as Keras's evaluate resets them) */
static kc_status evaluate_range(kc_model *m, const kc_dataset *ds, int64_t start,
                                int64_t count, int batch_size, int64_t *scratch_index, sums *s,
                                const char *what) {
    kc_forward_ctx ctx = {.bf16 = m->bf16};
    memset(s, 0, sizeof *s);
    kc_model_reset_metrics(m);
    double per_output[KC_MAX_IO];
    kc_status st = bind_data(m, ds, what);
    if (!st) st = kc_model_ensure_workspace(m, batch_size);
    if (kc_dist_size() > 1) /* sharded: whole batches by rank, summed in batch order */
        return evaluate_sharded(m, ds, start, count, batch_size, scratch_index, s, st, what);
    for (int64_t done = 0; !st && done < count; done += batch_size) {
        int b = (int)(count - done < batch_size ? count - done : batch_size);
        if ((st = load_batch(m, ds, NULL, start + done, b, scratch_index, 1, what))) break;
        kc_model_forward(m, b, &ctx);
        double loss = kc_model_loss(m, b, per_output, 1);
        sums_add(s, loss, per_output, b, m->n_outputs);
    }
    return st;
}

kc_status kc_evaluate(kc_model *m, const kc_dataset *data, const kc_evaluate_opts *opts,
                      kc_metrics *result) {
    kc_evaluate_opts o = opts ? *opts : (kc_evaluate_opts){0};
    if (kc_dist_rank() > 0) o.verbose = 0; /* rank 0 prints */
    int batch_size = o.batch_size > 0 ? o.batch_size : 32;
    kc_status st = check_compiled(m, "kc_evaluate");
    if (!st) st = check_data(m, data, "kc_evaluate", 1);
    if (!st) st = kc_model_ensure_workspace(m, batch_size);
    if (st) return st;
    int64_t *scratch = malloc(sizeof(int64_t) * (size_t)batch_size);
    log_keys *k = o.verbose > 0 ? keys_new(m) : NULL;
    if (!scratch || (o.verbose > 0 && !k)) {
        free(scratch);
        free(k);
        return kc_err(KC_ENOMEM, "kc_evaluate: out of memory");
    }
    if (o.steps < 0) {
        free(scratch);
        free(k);
        return kc_err(KC_EINVAL, "kc_evaluate: steps is %d; it must be >= 0", o.steps);
    }
    int64_t used = data->count; /* steps: the first batches only */
    if (o.steps > 0 && (int64_t)o.steps * batch_size < used) used = (int64_t)o.steps * batch_size;
    if (o.steps > (data->count + batch_size - 1) / batch_size) {
        int warned = 0;
        warn_ran_out(&warned, "kc_evaluate", "steps");
    }
    sums s;
    double start = kc_now();
    st = evaluate_range(m, data, 0, used, batch_size, scratch, &s, "kc_evaluate");
    free(scratch);
    if (st) {
        free(k);
        return st;
    }
    if (k) {
        kc_progress p;
        kc_progress_init(&p, o.out, 2);
        p.start = start;
        p.total = (int)((used + batch_size - 1) / batch_size);
        keys_fill(m, k, &s, 0);
        kc_progress_end_kv(&p, k->n, k->ptrs, k->values);
        free(k);
    }
    if (result) fill_metrics(m, &s, result);
    return KC_OK;
}

/* ---- predict ----------------------------------------------------------------------------- */

kc_status kc_predict_multi(kc_model *m, const float *const *x, int64_t count, float *const *out) {
    if (!m) return kc_err(KC_EINVAL, "kc_predict: model is NULL");
    if (!x || !out || count <= 0)
        return kc_err(KC_EINVAL, "kc_predict: need input, output and count > 0");
    for (int i = 0; i < m->n_inputs; i++)
        if (!x[i]) return kc_err(KC_EINVAL, "kc_predict: input %d is NULL", i);
    for (int o = 0; o < m->n_outputs; o++)
        if (!out[o]) return kc_err(KC_EINVAL, "kc_predict: output %d is NULL", o);
    for (int i = 0; i < m->n_inputs; i++)
        if (m->tensors[m->inputs[i]].dtype == KC_STRING)
            return kc_err(KC_EINVAL, "kc_predict: input %d takes texts: use kc_predict_texts or "
                                     "kc_predict_ex with a KC_STRING array", i);
    kc_status st = kc_model_ensure_weights(m, "kc_predict");
    if (!st) st = kc_model_bind_shapes(m, NULL, "kc_predict");
    for (int i = 0; i < m->n_inputs && !st; i++) /* an int32 input: whole numbers */
        st = check_values(m, i, x[i], KC_FLOAT32, 0, count, m->tensors[m->inputs[i]].size,
                          "kc_predict");
    if (st) return st;
    int batch = count < 256 ? (int)count : 256;
    if (m->ws_batch > batch) batch = m->ws_batch < count ? m->ws_batch : (int)count;
    if ((st = kc_model_ensure_workspace(m, batch))) return st;
    kc_forward_ctx ctx = {.bf16 = m->bf16};
    int64_t lo, hi; /* distributed: this rank's rows, then every rank's gathered */
    kc_dist_rows_of(count, kc_dist_rank(), &lo, &hi);
    for (int64_t done = lo; done < hi && !st; done += batch) {
        int b = (int)(hi - done < batch ? hi - done : batch);
        for (int i = 0; i < m->n_inputs; i++) {
            kc_tval *v = &m->tensors[m->inputs[i]];
            memcpy(v->act, x[i] + done * v->size, sizeof(float) * (size_t)(b * v->size));
        }
        if ((st = kc_model_check_batch(m, b, NULL, done, "kc_predict"))) break;
        kc_model_forward(m, b, &ctx);
        for (int o = 0; o < m->n_outputs; o++) {
            kc_tval *v = &m->tensors[m->outputs[o]];
            memcpy(out[o] + done * v->size, v->act, sizeof(float) * (size_t)(b * v->size));
        }
    }
    if (kc_dist_size() > 1) {
        st = kc_dist_agree(st);
        for (int o = 0; o < m->n_outputs && !st; o++)
            st = kc_dist_allgather_rows(out[o], count, m->tensors[m->outputs[o]].size);
    }
    return st;
}

/* the typed arrays x[] (one per input) as a dataset of count samples */
static kc_status arrays_dataset(const kc_model *m, const kc_array *x, int64_t count,
                                kc_dataset *ds, const char *what) {
    if (!x || count <= 0) return kc_err(KC_EINVAL, "%s: need the inputs and count > 0", what);
    memset(ds, 0, sizeof *ds);
    ds->count = count;
    ds->n_inputs = m->n_inputs;
    for (int i = 0; i < m->n_inputs; i++) ds->inputs[i] = x[i];
    return KC_OK;
}

kc_status kc_predict_ex(kc_model *m, const kc_array *x, int64_t count, float *const *out,
                        kc_shape *out_shapes) {
    const char *what = "kc_predict_ex";
    if (!m) return kc_err(KC_EINVAL, "%s: model is NULL", what);
    if (!out) return kc_err(KC_EINVAL, "%s: out is NULL", what);
    for (int o = 0; o < m->n_outputs; o++)
        if (!out[o]) return kc_err(KC_EINVAL, "%s: output %d is NULL", what, o);
    kc_dataset ds;
    kc_status st = arrays_dataset(m, x, count, &ds, what);
    if (!st) st = kc_model_ensure_weights(m, what);
    if (!st) st = check_data(m, &ds, what, 0);
    if (st) return st;
    int batch = count < 256 ? (int)count : 256;
    if (m->ws_batch > batch) batch = m->ws_batch < count ? m->ws_batch : (int)count;
    if ((st = kc_model_ensure_workspace(m, batch))) return st;
    int64_t *index = malloc(sizeof(int64_t) * (size_t)batch);
    if (!index) return kc_err(KC_ENOMEM, "%s: out of memory", what);
    kc_forward_ctx ctx = {.bf16 = m->bf16};
    int64_t lo, hi; /* distributed: this rank's rows (a sample's outputs do not depend on
                       the batch it is in), then every rank's gathered */
    kc_dist_rows_of(count, kc_dist_rank(), &lo, &hi);
    for (int64_t done = lo; done < hi && !st; done += batch) {
        int b = (int)(hi - done < batch ? hi - done : batch);
        if ((st = load_batch(m, &ds, NULL, done, b, index, 0, what))) break;
        kc_model_forward(m, b, &ctx);
        for (int o = 0; o < m->n_outputs; o++) {
            kc_tval *v = &m->tensors[m->outputs[o]];
            memcpy(out[o] + done * v->size, v->act, sizeof(float) * (size_t)(b * v->size));
        }
    }
    free(index);
    if (kc_dist_size() > 1) {
        st = kc_dist_agree(st);
        for (int o = 0; o < m->n_outputs && !st; o++)
            st = kc_dist_allgather_rows(out[o], count, m->tensors[m->outputs[o]].size);
    }
    for (int o = 0; out_shapes && o < m->n_outputs; o++)
        out_shapes[o] = m->tensors[m->outputs[o]].run;
    return st;
}

kc_status kc_model_output_shapes_for(kc_model *m, const kc_shape *input_shapes,
                                     kc_shape *out_shapes) {
    const char *what = "kc_model_output_shapes_for";
    if (!m || !input_shapes || !out_shapes)
        return kc_err(KC_EINVAL, "%s: NULL model, input shapes or output shapes", what);
    kc_status st = kc_model_check_built(m, what);
    if (st) return st;
    char a[64], b[64];
    for (int i = 0; i < m->n_inputs; i++) {
        kc_shape want = m->tensors[m->inputs[i]].shape, s = input_shapes[i];
        int fits = s.rank == want.rank;
        for (int d = 0; fits && d < s.rank; d++)
            fits = s.dims[d] > 0 && (want.dims[d] == KC_NONE || want.dims[d] == s.dims[d]);
        if (!fits)
            return kc_err(KC_EINVAL, "%s: input %d of shape %s, the model takes %s", what, i,
                          kc_shape_str(s, a, sizeof a), kc_shape_str(want, b, sizeof b));
    }
    if ((st = kc_model_bind_shapes(m, input_shapes, what))) return st;
    for (int o = 0; o < m->n_outputs; o++) out_shapes[o] = m->tensors[m->outputs[o]].run;
    return KC_OK;
}

kc_status kc_predict_texts(kc_model *m, const char *const *texts, int64_t n, float *out) {
    if (m && (m->n_inputs != 1 || m->n_outputs != 1 || m->tensors[m->inputs[0]].dtype != KC_STRING))
        return kc_err(KC_EINVAL, "kc_predict_texts: model %s must have one string input (a "
                                 "TextVectorization first) and one output", m->name);
    kc_array x = {kc_shape1(1), KC_STRING, (void *)texts, 0, 0};
    return kc_predict_ex(m, &x, n, &out, NULL);
}

kc_status kc_predict(kc_model *m, const float *x, int64_t count, float *out) {
    if (m && (m->n_inputs != 1 || m->n_outputs != 1))
        return kc_err(KC_EINVAL, "kc_predict: model %s has %d inputs and %d outputs; use "
                                 "kc_predict_multi", m->name, m->n_inputs, m->n_outputs);
    return kc_predict_multi(m, &x, count, &out);
}

/* ---- single batches ---------------------------------------------------------------------- */

/* Copies a user's batch into the workspace, checking sparse labels. */
static kc_status load_user_batch(kc_model *m, const float *const *x, const float *const *y,
                                 int batch, const char *what) {
    if (!x || !y || batch <= 0) return kc_err(KC_EINVAL, "%s: need x, y and batch > 0", what);
    for (int i = 0; i < m->n_inputs; i++)
        if (!x[i]) return kc_err(KC_EINVAL, "%s: need x, y and batch > 0 (input %d is NULL)", what, i);
    for (int o = 0; o < m->n_outputs; o++)
        if (!y[o]) return kc_err(KC_EINVAL, "%s: need x, y and batch > 0 (target %d is NULL)", what, o);
    for (int i = 0; i < m->n_inputs; i++)
        if (m->tensors[m->inputs[i]].dtype == KC_STRING)
            return kc_err(KC_EINVAL, "%s: input %d takes texts: use kc_train_on_batch_ex with a "
                                     "KC_STRING dataset", what, i);
    kc_status st = kc_model_bind_shapes(m, NULL, what);
    for (int i = 0; i < m->n_inputs && !st; i++) /* an int32 input: whole numbers */
        st = check_values(m, i, x[i], KC_FLOAT32, 0, batch, m->tensors[m->inputs[i]].size, what);
    if (!st) st = kc_model_ensure_workspace(m, batch);
    if (st) return st;
    memset(m->weighted, 0, sizeof m->weighted);
    for (int o = 0; o < m->n_outputs; o++) {
        int cols = kc_model_output_cols(m, o);
        int sparse = m->losses[o] == KC_SPARSE_CATEGORICAL_CROSSENTROPY;
        int64_t rows = target_rows(m, o);
        int64_t y_size = sparse ? batch * rows : batch * m->tensors[m->outputs[o]].size;
        if (sparse)
            for (int64_t i = 0; i < batch * rows; i++)
                if ((!(y[o][i] >= 0.0f && y[o][i] < (float)cols) || y[o][i] != floorf(y[o][i])) &&
                    !(m->loss_specs[o].has_ignore_class &&
                      y[o][i] == (float)m->loss_specs[o].ignore_class)) {
                    if (rows == 1)
                        return kc_err(KC_EINVAL, "%s: label %g of sample %d is not a class in [0, %d)",
                                      what, (double)y[o][i], (int)i, cols);
                    return kc_err(KC_EINVAL, "%s: label %g of sample %lld, position %lld is not a "
                                             "class in [0, %d)", what, (double)y[o][i],
                                  (long long)(i / rows), (long long)(i % rows), cols);
                }
        memcpy(m->ybuf[o], y[o], sizeof(float) * (size_t)y_size);
    }
    for (int i = 0; i < m->n_inputs; i++) {
        kc_tval *v = &m->tensors[m->inputs[i]];
        memcpy(v->act, x[i], sizeof(float) * (size_t)(batch * v->size));
    }
    return kc_model_check_batch(m, batch, NULL, 0, what);
}

/* a dataset as one batch in the workspace (kc_train_on_batch_ex, kc_compute_gradients_ex) */
static kc_status load_dataset_batch(kc_model *m, const kc_dataset *ds, const char *what) {
    kc_status st = check_data(m, ds, what, 1);
    if (st) return st;
    if (ds->count > 1 << 30) return kc_err(KC_EINVAL, "%s: %lld samples in one batch", what,
                                           (long long)ds->count);
    int batch = (int)ds->count;
    if ((st = kc_model_ensure_workspace(m, batch))) return st;
    int64_t *index = malloc(sizeof(int64_t) * (size_t)batch);
    if (!index) return kc_err(KC_ENOMEM, "%s: out of memory", what);
    st = load_batch(m, ds, NULL, 0, batch, index, 1, what);
    free(index);
    return st;
}

kc_status kc_compute_gradients_multi(kc_model *m, const float *const *x,
                                     const float *const *y, int batch, int training,
                                     double *loss, float *grads, int64_t count) {
    kc_status st = check_compiled(m, "kc_compute_gradients");
    if (!st && grads && count != m->n_params)
        st = kc_err(KC_EINVAL, "kc_compute_gradients: the model has %lld weights, the buffer holds %lld",
                    (long long)m->n_params, (long long)count);
    if (!st) st = load_user_batch(m, x, y, batch, "kc_compute_gradients");
    if (st) return st;
    kc_forward_ctx ctx = {.training = training, .step_key = m->step, .bf16 = m->bf16};
    memset(m->grads, 0, sizeof(float) * (size_t)m->n_params);
    double l = kc_model_forward_backward(m, batch, &ctx, NULL, 0, 0);
    if (loss) *loss = l;
    if (!grads) return KC_OK;
    memcpy(grads, m->grads, sizeof(float) * (size_t)count);
    /* no gradient for what does not train (Keras gives none): frozen layers, and the
     * non-trainable weights of a layer (BatchNormalization's moving statistics) */
    for (int i = 0; i < m->n_layers; i++) {
        const kc_layer *lay = m->layers[i];
        int64_t from = m->trained[i] ? lay->trainable_count : 0;
        memset(grads + m->offsets[i] + from, 0, sizeof(float) * (size_t)(lay->param_count - from));
    }
    return KC_OK;
}

kc_status kc_compute_gradients(kc_model *m, const float *x, const float *y, int batch,
                               int training, double *loss, float *grads, int64_t count) {
    if (m && (m->n_inputs != 1 || m->n_outputs != 1))
        return kc_err(KC_EINVAL, "kc_compute_gradients: model %s has %d inputs and %d outputs; "
                                 "use kc_compute_gradients_multi", m->name, m->n_inputs, m->n_outputs);
    return kc_compute_gradients_multi(m, &x, &y, batch, training, loss, grads, count);
}

static void zero_untrained(const kc_model *m, float *grads) {
    /* no gradient for what does not train (Keras gives none): frozen layers, and the
     * non-trainable weights of a layer (BatchNormalization's moving statistics) */
    for (int i = 0; i < m->n_layers; i++) {
        const kc_layer *lay = m->layers[i];
        int64_t from = m->trained[i] ? lay->trainable_count : 0;
        memset(grads + m->offsets[i] + from, 0, sizeof(float) * (size_t)(lay->param_count - from));
    }
}

kc_status kc_compute_gradients_ex(kc_model *m, const kc_dataset *batch, int training,
                                  double *loss, float *grads, int64_t count) {
    const char *what = "kc_compute_gradients_ex";
    kc_status st = check_compiled(m, what);
    if (!st && grads && count != m->n_params)
        st = kc_err(KC_EINVAL, "%s: the model has %lld weights, the buffer holds %lld", what,
                    (long long)m->n_params, (long long)count);
    if (!st) st = load_dataset_batch(m, batch, what);
    if (st) return st;
    kc_forward_ctx ctx = {.training = training, .step_key = m->step, .bf16 = m->bf16};
    memset(m->grads, 0, sizeof(float) * (size_t)m->n_params);
    double l = kc_model_forward_backward(m, (int)batch->count, &ctx, NULL, 0, 0);
    if (loss) *loss = l;
    if (!grads) return KC_OK;
    memcpy(grads, m->grads, sizeof(float) * (size_t)count);
    zero_untrained(m, grads);
    return KC_OK;
}

/* One training step on the batch in the workspace; the metrics see its outputs */
static double train_step(kc_model *m, int batch, double *per_output) {
    kc_forward_ctx ctx = {.training = 1, .update_stats = 1, .step_key = m->step++, .bf16 = m->bf16};
    return kc_model_forward_backward(m, batch, &ctx, per_output, 1, 1);
}

kc_status kc_train_on_batch_multi_weighted(kc_model *m, const float *const *x,
                                           const float *const *y, const float *const *sw,
                                           int batch, kc_metrics *result) {
    kc_status st = check_compiled(m, "kc_train_on_batch");
    if (!st) st = load_user_batch(m, x, y, batch, "kc_train_on_batch");
    if (!st) st = kc_model_set_batch_weights(m, sw, batch, "kc_train_on_batch");
    if (st) return st;
    double per_output[KC_MAX_IO];
    kc_model_reset_metrics(m); /* Keras's train_on_batch(reset_metrics=True): this batch's */
    double loss = train_step(m, batch, per_output);
    if (result) {
        sums s = {0};
        sums_add(&s, loss, per_output, batch, m->n_outputs);
        fill_metrics(m, &s, result);
    }
    if (!isfinite(loss))
        return kc_err(KC_ENAN, "kc_train_on_batch: the loss is %g; no step was taken", loss);
    return KC_OK;
}

kc_status kc_train_on_batch_ex(kc_model *m, const kc_dataset *batch, kc_metrics *result) {
    const char *what = "kc_train_on_batch_ex";
    kc_status st = check_compiled(m, what);
    if (!st) st = load_dataset_batch(m, batch, what);
    if (st) return st;
    int b = (int)batch->count;
    double per_output[KC_MAX_IO];
    kc_model_reset_metrics(m); /* Keras's train_on_batch(reset_metrics=True): this batch's */
    double loss = train_step(m, b, per_output);
    if (result) {
        sums s = {0};
        sums_add(&s, loss, per_output, b, m->n_outputs);
        fill_metrics(m, &s, result);
    }
    if (!isfinite(loss))
        return kc_err(KC_ENAN, "%s: the loss is %g; no step was taken", what, loss);
    return KC_OK;
}

kc_status kc_train_on_batch_multi(kc_model *m, const float *const *x, const float *const *y,
                                  int batch, kc_metrics *result) {
    return kc_train_on_batch_multi_weighted(m, x, y, NULL, batch, result);
}

kc_status kc_train_on_batch_weighted(kc_model *m, const float *x, const float *y,
                                     const float *sample_weight, int batch, kc_metrics *result) {
    if (m && (m->n_inputs != 1 || m->n_outputs != 1))
        return kc_err(KC_EINVAL, "kc_train_on_batch: model %s has %d inputs and %d outputs; use "
                                 "kc_train_on_batch_multi_weighted", m->name, m->n_inputs,
                      m->n_outputs);
    return kc_train_on_batch_multi_weighted(m, &x, &y, sample_weight ? &sample_weight : NULL,
                                            batch, result);
}

kc_status kc_train_on_batch(kc_model *m, const float *x, const float *y, int batch,
                            kc_metrics *result) {
    if (m && (m->n_inputs != 1 || m->n_outputs != 1))
        return kc_err(KC_EINVAL, "kc_train_on_batch: model %s has %d inputs and %d outputs; use "
                                 "kc_train_on_batch_multi", m->name, m->n_inputs, m->n_outputs);
    return kc_train_on_batch_multi(m, &x, &y, batch, result);
}

/* ---- History ------------------------------------------------------------------------------ */

void kc_history_free(kc_history *h) {
    if (!h) return;
    free(h->loss);
    free(h->accuracy);
    free(h->val_loss);
    free(h->val_accuracy);
    free(h->seconds);
    for (int i = 0; i < h->n_keys; i++) {
        free(h->keys[i]);
        free(h->values[i]);
    }
    free(h->keys);
    free(h->values);
    free(h);
}

const double *kc_history_get(const kc_history *h, const char *key) {
    if (!h || !key) return NULL;
    for (int i = 0; i < h->n_keys; i++)
        if (!strcmp(h->keys[i], key)) return h->values[i];
    /* "acc" and "accuracy" find each other */
    if (!strcmp(key, "acc")) return kc_history_get(h, "accuracy");
    if (!strcmp(key, "val_acc")) return kc_history_get(h, "val_accuracy");
    for (int i = 0; i < h->n_keys; i++)
        if ((!strcmp(key, "accuracy") && !strcmp(h->keys[i], "acc")) ||
            (!strcmp(key, "val_accuracy") && !strcmp(h->keys[i], "val_acc")))
            return h->values[i];
    return NULL;
}

static kc_history *history_new(int epochs, const log_keys *k, int with_val) {
    kc_history *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    size_t n = (size_t)(epochs > 0 ? epochs : 1);
    h->loss = malloc(n * sizeof(double));
    h->accuracy = malloc(n * sizeof(double));
    h->val_loss = malloc(n * sizeof(double));
    h->val_accuracy = malloc(n * sizeof(double));
    h->seconds = malloc(n * sizeof(double));
    h->capacity = (int)n;
    int keys = with_val ? 2 * k->n : k->n;
    h->keys = calloc((size_t)keys, sizeof *h->keys);
    h->values = calloc((size_t)keys, sizeof *h->values);
    int ok = h->loss && h->accuracy && h->val_loss && h->val_accuracy && h->seconds && h->keys &&
             h->values;
    for (int i = 0; ok && i < keys; i++) {
        h->keys[i] = strdup(k->names[i]);
        h->values[i] = malloc(n * sizeof(double));
        h->n_keys = i + 1;
        ok = h->keys[i] && h->values[i];
    }
    if (!ok) {
        kc_history_free(h);
        return NULL;
    }
    return h;
}

/* ---- fit --------------------------------------------------------------------------------- */

/* the shortest decimal that reads back as f, as a double: 0.3f -> 0.3 (Keras's Python float),
 * not 0.30000001192..., so that floor(10 * (1 - 0.3)) is 7 as in Keras, not 6 */
static double decimal_of(float f) {
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
        if (strtof(buf, NULL) == f) return strtod(buf, NULL);
    }
    return (double)f;
}

/* the options of fit beyond the basic ones: class_weight, steps and validation batches */
/* ---- row groups: the grouped order, and data-parallel fit on MPI (src/dist/) -------------
 * With kc_distributed_init (or kc_distributed_set_group_rows), each global batch is cut into
 * groups of G rows (the last one shorter); each group runs forward and backward on its own
 * (dropout keyed by the global row, the loss divided by the global batch), and the batch's
 * gradient is the fold ((P_0 + P_1) + P_2) ... of the groups' gradients in group order. Ranks
 * own contiguous ranges of groups: rank 0 folds its groups (the fold's prefix) as it goes, the
 * others keep theirs apart, and kc_dist_fold completes the fold in group order; so the sum is
 * the same bits for any number of ranks, one included. Then every rank steps the optimizer
 * on the same gradients. */

typedef struct {
    int on, G, max_items;
    float **items; /* this rank's group gradients (rank 0: one, its running fold) */
    int *items_of, *vals_of;
    double *vals, *all; /* per group: status, loss, the outputs' losses */
    /* the overlapped reduction (MPI, KERAC_DIST_OVERLAP not 0): buckets of whole layers from
     * the top of the flat gradients down, each at least KERAC_BUCKET_KB (default 1024) */
    int nb, next_start, me, count;
    int64_t *blo, *bhi;
    int *bucket_of, *left0, *left; /* per layer: its bucket; per bucket: layers to wait for */
    float **its;                   /* the step's partials: the last group's is m->grads */
    kc_model *m;
    kc_status st;
    double step_s, sync_s; /* time in grouped_step; in its exchange of the losses */
    int64_t steps;
    struct grouped_sync *sync; /* synchronized BatchNormalization (grouped_sync_*), or NULL */
} grouped;

static const char *const dist_layers[] = {
    "Dense", "Dropout", "Flatten", "Activation", "Reshape", "Conv2D", "MaxPooling2D",
    "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ReLU", "Softmax",
    "LeakyReLU", "ELU", "Rescaling", "Identity", "BatchNormalization", NULL};

/* BatchNormalization in the row groups: statistics per group (grouped_move_stats), or over
 * the whole batch with synchronized=True (grouped_sync_*); refused when one layer is called
 * twice (its moving averages would move once per call) */
static kc_status grouped_check_bn(const kc_model *m, int li, const char *what) {
    const kc_layer *l = m->layers[li];
    if (!kc_model_is_type(l, "BatchNormalization")) return KC_OK;
    for (int k = 0; k < m->n_nodes; k++)
        if (m->nodes[k].li == li && m->nodes[k].call > 0)
            return kc_err(KC_EINVAL, "%s: layer %s (BatchNormalization) is called more than "
                                     "once; a shared BatchNormalization is not handled in "
                                     "distributed training yet", what, l->name);
    return KC_OK;
}

/* after the step's fold: each BatchNormalization that ran in training mode (as node_ctx in
 * engine.c decides: not frozen, not called with training=False) moves its averages once by the
 * mean over the step's groups of the groups' batch mean and variance, which the groups' forward
 * passes wrote into the moving statistics' gradient slots (kc_forward_ctx.grouped) and the
 * ordered fold summed in group order: moving = moving * momentum + (sum / n_groups) * (1 -
 * momentum). With the replicas' moving variables equal before the step this is Keras's
 * MirroredStrategy (ON_READ, MEAN): mean_r(m * mom + (1 - mom) x_r) = m * mom + (1 - mom)
 * mean_r(x_r); and with one group per step, the plain fit's bits. */
static void grouped_move_stats(kc_model *m, int n_groups) {
    for (int k = 0; k < m->n_nodes; k++) {
        const kc_node *n = &m->nodes[k];
        const kc_layer *l = n->layer;
        if (n->skip || n->inference || !kc_model_is_type(l, "BatchNormalization") ||
            !kc_model_layer_trained(m, n->li))
            continue;
        int64_t at = l->param_offset + 2 * (int64_t)l->units, count = 2 * (int64_t)l->units;
        float *moving = m->params + at;
        const float *sum = m->grads + at;
        if (l->synchronized) { /* the whole batch's mean and variance (grouped_sync_prepare) */
            const float *global = n->scratch + 10 * (int64_t)l->units;
            for (int64_t i = 0; i < count; i++)
                moving[i] = moving[i] * l->momentum + global[i] * (1.0f - l->momentum);
            continue;
        }
        for (int64_t i = 0; i < count; i++)
            moving[i] = moving[i] * l->momentum + sum[i] / (float)n_groups * (1.0f - l->momentum);
    }
}

/* ---- synchronized BatchNormalization in the row groups (Keras 3's synchronized=True,
 * tf.keras 2's SyncBatchNormalization): statistics over the whole global batch, across groups
 * and ranks, in the grouped order's bits for any rank count. A group's forward cannot finish
 * before every group's statistics are known, nor its backward before every group's sums, so
 * each step first runs passes that gather them (grouped_sync_prepare), then grouped_step runs
 * as usual with the layers reading the gathered values (batchnorm.c, sync_state). For the
 * synchronized layers s = 1..S in node order:
 *   forward, s = 1..S: each group runs forward up to layer s (the layers before it already
 *     global) and sums its input per channel (doubles, row order); the sums are gathered and
 *     folded in group order: mean = sum / N; a second pass sums (x - mean)^2: the biased
 *     variance, the arithmetic of batchnorm.c's forward over one group;
 *   backward, s = S..1: each group runs forward and backward down to layer s (the layers
 *     above it with their global sums) and sums dy and dy * xhat per channel; folded in group
 *     order, they are layer s's sums of backward.
 * Each pass gathers every group's partials on every rank (MPI_Allgatherv of doubles, a status
 * word first so that a rank's error stops all). Cost: 3S + 1 forward passes and S + 1 backward
 * passes per group instead of one each. With one group per batch, the bits of the plain fit. */
typedef struct grouped_sync {
    int n;          /* the synchronized nodes */
    int *node;      /* their node indices, in node order */
    int c_max;      /* the most channels of one */
    double *mine, *all;
    int *count_of;
} grouped_sync;

static void grouped_sync_free(grouped_sync *s) {
    if (!s) return;
    free(s->node);
    free(s->mine);
    free(s->all);
    free(s->count_of);
    free(s);
}

static int bn_sync_node(const kc_model *m, const kc_node *n) {
    return !n->skip && !n->inference && kc_model_is_type(n->layer, "BatchNormalization") &&
           n->layer->synchronized && kc_model_layer_trained(m, n->li);
}

static kc_status grouped_sync_init(grouped *g, kc_model *m, int batch_size) {
    int n = 0, c_max = 1;
    for (int k = 0; k < m->n_nodes; k++)
        if (bn_sync_node(m, &m->nodes[k])) {
            n++;
            if (m->nodes[k].layer->units > c_max) c_max = m->nodes[k].layer->units;
        }
    if (!n) return KC_OK;
    int size = kc_dist_size(), max_groups = (batch_size + g->G - 1) / g->G;
    grouped_sync *s = calloc(1, sizeof *s);
    if (s) {
        s->node = malloc(sizeof(int) * (size_t)n);
        s->mine = malloc(sizeof(double) * (size_t)(1 + (int64_t)max_groups * 2 * c_max));
        s->all = malloc(sizeof(double) * (size_t)(size + (int64_t)max_groups * 2 * c_max));
        s->count_of = malloc(sizeof(int) * (size_t)size);
    }
    if (!s || !s->node || !s->mine || !s->all || !s->count_of) {
        grouped_sync_free(s);
        return kc_err(KC_ENOMEM, "kc_fit: out of memory for synchronized BatchNormalization");
    }
    s->c_max = c_max;
    for (int k = 0; k < m->n_nodes; k++)
        if (bn_sync_node(m, &m->nodes[k])) s->node[s->n++] = k;
    g->sync = s;
    return KC_OK;
}

/* this rank's partials (width doubles per group, after a status word) to every rank; out
 * (width) := their fold in group order. Every rank calls it, with or without groups. */
static kc_status sync_gather(grouped_sync *s, int n_groups, int width, kc_status mine_st,
                             double *out) {
    int size = kc_dist_size();
    s->mine[0] = (double)mine_st;
    for (int r = 0; r < size; r++) {
        int f, c;
        kc_dist_groups_of(n_groups, r, &f, &c);
        s->count_of[r] = 1 + c * width;
    }
    kc_status st = kc_dist_allgather_doubles(s->mine, s->count_of, s->all);
    if (st) return st;
    int at = 0, first = 1;
    for (int r = 0; r < size; r++) { /* rank order = group order */
        const double *a = s->all + at;
        if (a[0] != 0.0)
            return mine_st ? mine_st
                           : kc_err((kc_status)a[0], "kc_fit (distributed): rank %d failed in "
                                                     "a synchronized BatchNormalization's pass; "
                                                     "its own message says why", r);
        for (int k = 0; k < (s->count_of[r] - 1) / width; k++, first = 0)
            for (int i = 0; i < width; i++)
                out[i] = first ? a[1 + k * width + i] : out[i] + a[1 + k * width + i];
        at += s->count_of[r];
    }
    if (first) memset(out, 0, sizeof(double) * (size_t)width);
    return KC_OK;
}

/* the passes before a step on the b rows order[0..b) (see above); the step's dropout key is
 * the one grouped_step takes next (m->step) */
static kc_status grouped_sync_prepare(kc_model *m, const kc_dataset *ds, const int64_t *order,
                                      int b, int64_t *scratch, grouped *g) {
    grouped_sync *s = g->sync;
    int G = g->G, n_groups = (b + G - 1) / G, first, count;
    kc_dist_groups_of(n_groups, kc_dist_rank(), &first, &count);
    for (int j = 0; j < s->n; j++) m->nodes[s->node[j]].layer->sync_state = 0;
    m->loss_rows = b;
    kc_status st = KC_OK;
    /* pass kind 0: sum x; 1: sum (x - mean)^2; 2: sum dy, sum dy xhat */
    for (int phase = 0; phase < 3 * s->n && !st; phase++) {
        int kind = phase < 2 * s->n ? phase % 2 : 2;
        int j = phase < 2 * s->n ? phase / 2 : 3 * s->n - 1 - phase;
        const kc_node *n = &m->nodes[s->node[j]];
        kc_layer *l = n->layer;
        int c = l->units, width = kind == 2 ? 2 * c : c;
        float *gmean = n->scratch + 10 * c, *gvar = gmean + c;
        kc_status mine = KC_OK;
        for (int k = 0; k < count && !mine; k++) {
            int64_t r0 = (int64_t)(first + k) * G;
            int rows = (int)(b - r0 < G ? b - r0 : G);
            if ((mine = load_batch(m, ds, order + r0, 0, rows, scratch, 1, "kc_fit"))) break;
            kc_forward_ctx ctx = {.training = 1, .step_key = m->step, .bf16 = m->bf16,
                                  .row0 = r0, .grouped = 1};
            double *p = s->mine + 1 + (int64_t)k * width;
            memset(p, 0, sizeof(double) * (size_t)width);
            const float *x = m->tensors[n->in[0]].act;
            int64_t xr = (int64_t)rows * (l->out_size / c);
            if (kind < 2) {
                ctx.stop_forward = s->node[j] + 1;
                kc_model_forward(m, rows, &ctx);
                for (int64_t r = 0; r < xr; r++)
                    for (int i = 0; i < c; i++) {
                        double d = kind == 0 ? (double)x[r * c + i]
                                             : (double)x[r * c + i] - gmean[i];
                        p[i] += kind == 0 ? d : d * d;
                    }
                continue;
            }
            ctx.stop_backward = s->node[j] + 1;
            double po[KC_MAX_IO];
            kc_model_forward_backward(m, rows, &ctx, po, 0, 0);
            const kc_tval *dv = &m->tensors[n->write_to];
            if (dv->grad_slot < 0 || !dv->grad_written) continue; /* no gradient: zeros */
            const float *dy = m->grad_pool[dv->grad_slot];
            for (int i = 0; i < c; i++) {
                float inv = 1.0f / sqrtf(gvar[i] + l->epsilon);
                for (int64_t r = 0; r < xr; r++) {
                    double d = dy[r * c + i];
                    p[i] += d;
                    p[c + i] += d * (double)((x[r * c + i] - gmean[i]) * inv);
                }
            }
        }
        double *out = (double *)(n->scratch + 6 * c); /* kind 2: the sums of backward */
        double *tmp = s->mine; /* kinds 0, 1: the fold (mine is free once gathered) */
        if ((st = sync_gather(s, n_groups, width, mine, kind == 2 ? out : tmp))) break;
        for (int i = 0; kind < 2 && i < c; i++) {
            if (kind == 0) gmean[i] = (float)(tmp[i] / (double)((int64_t)b * (l->out_size / c)));
            else gvar[i] = (float)(tmp[i] / (double)((int64_t)b * (l->out_size / c)));
        }
        if (kind == 1) l->sync_state = 1, l->sync_rows = (int64_t)b * (l->out_size / c);
        if (kind == 2) l->sync_state = 2;
    }
    m->loss_rows = 0;
    return st;
}

static kc_status grouped_check(const kc_model *m, const kc_dataset *ds, const kc_fit_opts *o) {
    const char *what = kc_dist_size() > 1 ? "kc_fit (distributed)" : "kc_fit (row groups)";
    kc_status st;
    for (int i = 0; i < m->n_layers; i++) {
        const kc_layer *l = m->layers[i];
        int ok = 0;
        for (int k = 0; dist_layers[k] && !ok; k++) ok = kc_model_is_type(l, dist_layers[k]);
        if (!ok)
            return kc_err(KC_EINVAL, "%s: layer %s (%s) is not handled in distributed training "
                                     "yet (its results would depend on how the batch is split); "
                                     "handled: Dense, Dropout, Flatten, Conv2D, pooling, "
                                     "activations, BatchNormalization",
                          what, l->name, l->ops->type_name);
        if (kc_model_is_type(l, "Dropout") && l->n_noise)
            return kc_err(KC_EINVAL, "%s: layer %s: Dropout with noise_shape is not handled in "
                                     "distributed training yet", what, l->name);
        if ((st = grouped_check_bn(m, i, what))) return st;
        if (kc_regularizer_active(&l->kernel_reg) || kc_regularizer_active(&l->bias_reg) ||
            kc_regularizer_active(&l->activity_reg))
            return kc_err(KC_EINVAL, "%s: layer %s has a regularizer; regularizers are not "
                                     "handled in distributed training yet", what, l->name);
    }
    for (int o2 = 0; o2 < m->n_outputs; o2++) {
        if (!kc_loss_spec_plain(&m->loss_specs[o2]))
            return kc_err(KC_EINVAL, "%s: output %d's loss has options (from_logits, "
                                     "label_smoothing, a reduction, ...) not handled in "
                                     "distributed training yet", what, o2);
        if (m->tensors[m->outputs[o2]].has_mask)
            return kc_err(KC_EINVAL, "%s: output %d carries a mask; masks are not handled in "
                                     "distributed training yet", what, o2);
    }
    if (ds->sample_weight || o->class_weight)
        return kc_err(KC_EINVAL, "%s: sample_weight and class_weight are not handled in "
                                 "distributed training yet", what);
    for (int o2 = 0; o2 < KC_MAX_IO; o2++)
        if (ds->output_sample_weight[o2])
            return kc_err(KC_EINVAL, "%s: output_sample_weight is not handled in distributed "
                                     "training yet", what);
    return KC_OK;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* the same program, model, weights, data and settings on every rank (issue 15's faults):
 * each value against rank 0's, naming the rank and the value that differ */
static kc_status grouped_fingerprint(kc_model *m, const kc_dataset *ds, int64_t n_train,
                                     int batch_size, const kc_fit_opts *o) {
    uint64_t shapes = 0xcbf29ce484222325ull, data = 0xcbf29ce484222325ull;
    for (int i = 0; i < m->n_layers; i++) {
        const kc_layer *l = m->layers[i];
        shapes = fnv(shapes, l->ops->type_name, strlen(l->ops->type_name));
        shapes = fnv(shapes, &l->param_count, sizeof l->param_count);
        shapes = fnv(shapes, &l->out_shape, sizeof l->out_shape);
        shapes = fnv(shapes, &l->synchronized, sizeof l->synchronized); /* its passes */
    }
    for (int i = 0; i < m->n_inputs; i++) { /* the first and last samples' bytes */
        kc_array x = ds_input(ds, i);
        size_t es = x.dtype == KC_UINT8 ? 1 : 4, row = (size_t)kc_shape_size(x.shape) * es;
        if (x.dtype == KC_STRING || !x.data || !ds->count) continue;
        data = fnv(data, x.data, row);
        data = fnv(data, (const char *)x.data + row * (size_t)(ds->count - 1), row);
    }
    const char *names[] = {"the kerac build (KERAC_VERSION)", "the parameter count",
                           "the layers and shapes", "the training samples",
                           "the batch size", "the epochs", "the initial weights",
                           "the shuffle's random state (the seed)", "the data's first and last samples",
                           "the row group size"};
    uint64_t fp[] = {kc_dist_build_hash(), (uint64_t)m->n_params, shapes, (uint64_t)n_train,
                     (uint64_t)batch_size, (uint64_t)(o->epochs - o->initial_epoch),
                     fnv(0xcbf29ce484222325ull, m->params, sizeof(float) * (size_t)m->n_params),
                     fnv(0xcbf29ce484222325ull, &m->rng, sizeof m->rng), data,
                     (uint64_t)kc_dist_group_rows()};
    return kc_dist_check_same(fp, names, (int)(sizeof fp / sizeof fp[0]), "kc_fit (distributed)");
}

static void grouped_free(grouped *g) {
    grouped_sync_free(g->sync);
    for (int i = 0; g->items && i < g->max_items; i++) kc_free(g->items[i]);
    free(g->items);
    free(g->items_of);
    free(g->vals_of);
    free(g->vals);
    free(g->all);
    free(g->blo);
    free(g->bucket_of);
    free(g->its);
    memset(g, 0, sizeof *g);
}

static int env_int(const char *name, int dflt, int lo, int hi) {
    const char *e = getenv(name);
    if (!e || !*e) return dflt;
    char *end;
    long v = strtol(e, &end, 10);
    return *end || v < lo || v > hi ? dflt : (int)v;
}

/* the buckets: leaf layers with weights from the highest offset down (backward's order in a
 * Sequential model), closed once they hold KERAC_BUCKET_KB; bucket 0 reaches n_params and the
 * last one 0, so that the buckets cover every gradient */
static kc_status grouped_buckets(grouped *g, kc_model *m, int max_mine, int max_groups) {
    int nl = m->n_layers, np = 0;
    if (kc_dist_size() <= 1 || !env_int("KERAC_DIST_OVERLAP", 1, 0, 1) || !m->n_params)
        return KC_OK;
    int64_t cap = (int64_t)env_int("KERAC_BUCKET_KB", 1024, 1, 1 << 20) * 1024 / 4;
    g->blo = malloc(sizeof(int64_t) * 2 * (size_t)(nl + 1));
    g->bucket_of = malloc(sizeof(int) * (size_t)(4 * nl + 2));
    g->its = calloc((size_t)g->max_items, sizeof *g->its);
    if (!g->blo || !g->bucket_of || !g->its)
        return kc_err(KC_ENOMEM, "kc_fit: out of memory for the reduction's buckets");
    g->bhi = g->blo + nl + 1;
    int *order = g->bucket_of + nl;
    g->left0 = order + nl;
    g->left = g->left0 + nl + 1;
    for (int i = 0; i < nl; i++) {
        g->bucket_of[i] = -1;
        if (m->layers[i]->param_count) order[np++] = i;
    }
    for (int a = 1; a < np; a++) /* by offset, highest first (insertion sort: few layers) */
        for (int b = a; b > 0 && m->layers[order[b]]->param_offset >
                                     m->layers[order[b - 1]]->param_offset; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    int nb = 0;
    int64_t hi = m->n_params;
    for (int k = 0; k < np; k++) {
        const kc_layer *l = m->layers[order[k]];
        if (k > 0 && g->bucket_of[order[k - 1]] == nb - 1 && hi - g->blo[nb - 1] < cap) {
            g->blo[nb - 1] = l->param_offset; /* joins the open bucket */
        } else {
            if (nb) hi = g->blo[nb - 1];
            g->bhi[nb] = hi;
            g->blo[nb] = l->param_offset;
            g->left0[nb] = 0;
            nb++;
        }
        g->bucket_of[order[k]] = nb - 1;
        g->left0[nb - 1]++;
        hi = g->bhi[nb - 1];
    }
    if (!nb) return KC_OK;
    g->blo[nb - 1] = 0;
    g->nb = nb;
    return kc_dist_buckets_plan(g->blo, g->bhi, nb, max_mine, max_groups, m->n_params);
}

static kc_status grouped_init(grouped *g, kc_model *m, int batch_size) {
    memset(g, 0, sizeof *g);
    g->on = 1;
    g->G = kc_dist_group_rows();
    int size = kc_dist_size(), me = kc_dist_rank();
    int max_groups = (batch_size + g->G - 1) / g->G, first, count, most = 0;
    for (int r = 0; r < size; r++) {
        kc_dist_groups_of(max_groups, r, &first, &count);
        most = count > most ? count : most;
    }
    kc_dist_groups_of(max_groups, me, &first, &count);
    g->max_items = me == 0 ? 1 : (count > 0 ? count : 1);
    int nv = 2 + m->n_outputs;
    g->items = calloc((size_t)g->max_items, sizeof *g->items);
    g->items_of = calloc((size_t)size, sizeof(int));
    g->vals_of = calloc((size_t)size, sizeof(int));
    g->vals = malloc(sizeof(double) * (size_t)(most * nv + 1));
    g->all = malloc(sizeof(double) * (size_t)(max_groups * nv + size));
    kc_status st = g->items && g->items_of && g->vals_of && g->vals && g->all ? KC_OK : KC_ENOMEM;
    for (int i = 0; !st && i < g->max_items; i++)
        if (!(g->items[i] = kc_calloc(sizeof(float) * (size_t)(m->n_params ? m->n_params : 1))))
            st = KC_ENOMEM;
    if (st) {
        grouped_free(g);
        return kc_err(KC_ENOMEM, "kc_fit: out of memory for the row groups' gradients");
    }
    kc_dist_stats_reset();
    if ((st = grouped_buckets(g, m, most > 1 ? most : 1, max_groups))) {
        grouped_free(g);
        return st;
    }
    return kc_dist_reserve(most > 1 ? most : 1, max_groups, m->n_params);
}

/* bucket k's gradients are final: rank 0 adds its last group's into its running fold */
static void grouped_start(grouped *g, int k) {
    kc_model *m = g->m;
    if (g->me == 0 && g->count > 1) {
        float *f = g->items[0];
        for (int64_t i = g->blo[k]; i < g->bhi[k]; i++) f[i] += m->grads[i];
    }
    if (!g->st) g->st = kc_dist_bucket_start(k, g->its, g->items_of, m->grads);
}

/* backward's hook (m->grads_ready) on a rank's last group: start the buckets that are ready */
static void grouped_ready(void *arg, int li) {
    grouped *g = arg;
    if (li >= 0 && g->bucket_of[li] >= 0) g->left[g->bucket_of[li]]--;
    while (g->next_start < g->nb && g->left[g->next_start] == 0) grouped_start(g, g->next_start++);
    if (!g->st) g->st = kc_dist_progress();
}

/* the step's optimizer update, bucket by bucket as each one's reduction arrives (no buckets:
 * the blocking fold has run, every layer at once) */
static kc_status grouped_update(kc_model *m, grouped *g) {
    int all = kc_optimizer_needs_all_grads(m->opt), nb = g->nb ? g->nb : 1;
    kc_status st = KC_OK;
    for (int k = 0; k < nb && !st; k++) {
        if ((g->nb && (st = kc_dist_bucket_wait(k))) || all) continue;
        for (int i = 0; i < m->n_layers; i++) {
            kc_layer *l = m->layers[i];
            if ((!g->nb || g->bucket_of[i] == k) && l->trainable_count &&
                kc_model_layer_trained(m, i))
                kc_optimizer_update(m->opt, m->params, m->grads, l->param_offset,
                                    l->trainable_count);
        }
    }
    if (st) return st;
    if (all) return kc_model_optimizer_step_all(m); /* clipping by a norm, Lamb */
    kc_optimizer_finish_step(m->opt);
    return KC_OK;
}

/* one training step on the b rows order[0..b) in row groups; returns the batch's loss (NaN or
 * inf: no step was taken) and sets *status on an error (the same on every rank) */
static double grouped_step(kc_model *m, const kc_dataset *ds, const int64_t *order, int b,
                           int64_t *scratch, grouped *g, double *per_output, kc_status *status) {
    int size = kc_dist_size(), me = kc_dist_rank(), G = g->G, n_groups = (b + G - 1) / G;
    int nv = 1 + m->n_outputs, first, count;
    double t0 = kc_dist_now();
    uint64_t step_key = m->step++;
    kc_dist_groups_of(n_groups, me, &first, &count);
    for (int r = 0; r < size; r++) {
        int f, c;
        kc_dist_groups_of(n_groups, r, &f, &c);
        g->vals_of[r] = 1 + c * nv;
        g->items_of[r] = r == 0 ? (c > 0) : c;
    }
    int overlap = g->nb > 0;
    if (overlap) { /* the last group's partial is m->grads itself, read as its buckets start */
        g->m = m;
        g->me = me;
        g->count = count;
        g->st = KC_OK;
        g->next_start = 0;
        memcpy(g->left, g->left0, sizeof(int) * (size_t)g->nb);
        for (int k = 0; k < count; k++)
            g->its[me == 0 ? 0 : k] = k == count - 1 && (me != 0 || count == 1) ? m->grads
                                                                               : g->items[me ? k : 0];
    }
    m->loss_rows = b;
    kc_status st = KC_OK;
    double *v = g->vals + 1;
    for (int k = 0; k < count && !st; k++) {
        int64_t r0 = (int64_t)(first + k) * G;
        int rows = (int)(b - r0 < G ? b - r0 : G);
        if ((st = load_batch(m, ds, order + r0, 0, rows, scratch, 1, "kc_fit"))) break;
        kc_forward_ctx ctx = {.training = 1, .update_stats = 1, .step_key = step_key,
                              .bf16 = m->bf16, .row0 = r0, .grouped = 1};
        double po[KC_MAX_IO];
        int last = overlap && k == count - 1;
        if (last) {
            m->grads_ready = grouped_ready;
            m->grads_ready_arg = g;
        }
        v[k * nv] = kc_model_forward_backward(m, rows, &ctx, po, 1, 0);
        m->grads_ready = NULL;
        for (int o = 0; o < m->n_outputs; o++) v[k * nv + 1 + o] = po[o];
        if (last) break; /* its buckets hold it (grouped_start) */
        /* rank 0 holds the fold's prefix: it folds its groups as they come */
        float *dst = me == 0 ? g->items[0] : g->items[k];
        if (me == 0 && k > 0)
            for (int64_t i = 0; i < m->n_params; i++) dst[i] += m->grads[i];
        else memcpy(dst, m->grads, sizeof(float) * (size_t)m->n_params);
    }
    m->loss_rows = 0;
    if (overlap) { /* every bucket starts on every rank, whatever happened above */
        /* (after an error too: the counts are agreed; the step is then dropped) */
        while (g->next_start < g->nb) grouped_start(g, g->next_start++);
        if (!st) st = g->st;
    }
    g->vals[0] = (double)st;
    int at = 0;
    double t1 = kc_dist_now();
    kc_status gs = kc_dist_allgather_doubles(g->vals, g->vals_of, g->all);
    g->sync_s += kc_dist_now() - t1;
    double loss = 0.0;
    for (int o = 0; o < m->n_outputs; o++) per_output[o] = 0.0;
    for (int r = 0; r < size && !gs; r++) { /* values in rank order = group order */
        const double *a = g->all + at;
        if (a[0] != 0.0 && !st)
            st = kc_err((kc_status)a[0], "kc_fit (distributed): rank %d failed in a training "
                                         "step; its own message says why", r);
        for (int k = 0; k < (g->vals_of[r] - 1) / nv; k++) {
            loss += a[1 + k * nv];
            for (int o = 0; o < m->n_outputs; o++) per_output[o] += a[2 + k * nv + o];
        }
        at += g->vals_of[r];
    }
    if (gs && !st) st = gs;
    if (!st && isfinite(loss)) { /* the moving statistics once every bucket is back */
        if (!overlap) st = kc_dist_fold(g->items, g->items_of, m->n_params, m->grads);
        if (!st && !(st = grouped_update(m, g))) grouped_move_stats(m, n_groups);
    }
    if (overlap) { /* no request outlives the step, on the error paths too */
        kc_status fs = kc_dist_buckets_finish();
        if (!st) st = fs;
    }
    g->step_s += kc_dist_now() - t0;
    g->steps++;
    if (st) {
        *status = st;
        return NAN;
    }
    return loss; /* NaN or inf: every rank took no step (fit reports it) */
}

/* the epoch's metric states summed over the ranks (in rank order), so that every rank reports
 * the whole data's metrics; counts (accuracy) are exact whatever the order */
static kc_status combine_metrics(kc_model *m) {
    if (kc_dist_size() <= 1) return KC_OK;
    for (int i = 0; i < m->n_mets; i++) {
        kc_metric_state *ms = &m->mets[i];
        double tc[2] = {ms->total, ms->count};
        kc_status st = kc_dist_sum_doubles(tc, 2);
        if (!st && ms->acc && ms->info->state_size)
            st = kc_dist_sum_doubles(ms->acc, (int)ms->info->state_size(ms));
        if (st) return st;
        ms->total = tc[0];
        ms->count = tc[1];
    }
    return KC_OK;
}

static kc_status check_fit_extras(kc_model *m, const kc_dataset *train, const kc_fit_opts *o) {
    if (o->steps_per_epoch < 0 || o->validation_steps < 0 || o->validation_batch_size < 0 ||
        o->validation_freq < 0)
        return kc_err(KC_EINVAL, "kc_fit: steps_per_epoch (%d), validation_steps (%d), "
                                 "validation_batch_size (%d) and validation_freq (%d) must be >= 0",
                      o->steps_per_epoch, o->validation_steps, o->validation_batch_size,
                      o->validation_freq);
    return kc_model_check_class_weight(m, train, o->class_weight, o->n_class_weight, "kc_fit");
}


static kc_logs make_logs(kc_model *m, int epoch, int batch, const log_keys *k, int n_values) {
    kc_logs logs = kc_logs_empty(m);
    logs.epoch = epoch;
    logs.batch = batch;
    logs.n_values = n_values;
    logs.keys = k->ptrs;
    logs.values = k->values;
    return logs;
}

kc_status kc_fit(kc_model *m, const kc_dataset *train, const kc_fit_opts *opts,
                 kc_history **history) {
    if (history) *history = NULL;
    kc_fit_opts o = opts ? *opts : (kc_fit_opts){0};
    int batch_size = o.batch_size > 0 ? o.batch_size : 32;
    /* Keras: epochs is the index of the last epoch, training runs initial_epoch + 1 .. epochs */
    int last_epoch = o.epochs > 0 ? o.epochs : 1;
    int epochs = last_epoch - o.initial_epoch;
    kc_status st = check_compiled(m, "kc_fit");
    if (!st) st = check_data(m, train, "kc_fit", 1);
    if (st) return st;
    if (o.batch_size < 0 || o.epochs < 0 || o.initial_epoch < 0)
        return kc_err(KC_EINVAL, "kc_fit: batch_size, epochs and initial_epoch must be >= 0");
    if ((st = check_fit_extras(m, train, &o))) return st;
    if (!(o.validation_split >= 0.0f && o.validation_split < 1.0f))
        return kc_err(KC_EINVAL, "kc_fit: validation_split must be in [0, 1), got %g",
                      (double)o.validation_split);

    /* validation_split takes the last samples, before any shuffling (Keras: floor) */
    const kc_dataset *val = o.validation;
    int64_t n_train = train->count, val_start = 0, val_count = 0;
    if (val) {
        if ((st = check_data(m, val, "kc_fit (validation data)", 1))) return st;
        val_count = val->count;
    } else if (o.validation_split > 0.0f) {
        n_train = (int64_t)floor((double)train->count * (1.0 - decimal_of(o.validation_split)));
        if (n_train == 0 || n_train == train->count)
            return kc_err(KC_EINVAL,
                          "kc_fit: validation_split %g of %lld samples leaves an empty training "
                          "or validation set",
                          (double)o.validation_split, (long long)train->count);
        val = train;
        val_start = n_train;
        val_count = train->count - n_train;
    }

    if (epochs <= 0)
        return kc_err(KC_EINVAL, "kc_fit: initial_epoch %d leaves no epoch to run (epochs %d)",
                      o.initial_epoch, last_epoch);
    /* Keras: with steps_per_epoch and no batch_size, batch_size = ceil(samples / steps) */
    if (o.batch_size == 0 && o.steps_per_epoch > 0)
        batch_size = (int)((n_train + o.steps_per_epoch - 1) / o.steps_per_epoch);
    int val_batch = o.validation_batch_size > 0 ? o.validation_batch_size : batch_size;
    int64_t val_used = val_count; /* validation_steps: the first batches only */
    if (val && o.validation_steps > 0 && (int64_t)o.validation_steps * val_batch < val_count)
        val_used = (int64_t)o.validation_steps * val_batch;
    int val_freq = o.validation_freq > 0 ? o.validation_freq : 1, warned = 0;
    int ws = batch_size > val_batch ? batch_size : val_batch;
    /* the workspace for both data's lengths (a None dimension), then the training data's */
    if (val && m->has_none &&
        ((st = bind_data(m, val, "kc_fit (validation data)")) || (st = kc_model_ensure_workspace(m, ws))))
        return st;
    if ((st = bind_data(m, train, "kc_fit")) || (st = kc_model_ensure_workspace(m, ws))) return st;
    log_keys *kp = keys_new(m);
    int64_t *order = malloc(sizeof(int64_t) * (size_t)n_train);
    int64_t *scratch = malloc(sizeof(int64_t) * (size_t)ws);
    kc_history *h = kp ? history_new(epochs, kp, val != NULL) : NULL;
    if (!order || !scratch || !h) {
        free(order);
        free(scratch);
        free(kp);
        kc_history_free(h);
        return kc_err(KC_ENOMEM, "kc_fit: out of memory");
    }

    /* the grouped order (kc_distributed_init, kc_distributed_set_group_rows): checked on
     * every rank, then the ranks compared, before any step */
    grouped gr = {0};
    kc_callback **cbs0 = NULL; /* rank > 0: the callbacks without those writing files */
    if (kc_dist_group_rows() > 0) {
        st = grouped_check(m, train, &o);
        st = kc_dist_agree(st);
        if (!st) st = grouped_fingerprint(m, train, n_train, batch_size, &o);
        if (!st) st = kc_dist_agree(grouped_init(&gr, m, batch_size));
        if (!st) st = kc_dist_agree(grouped_sync_init(&gr, m, batch_size));
        if (!st && kc_dist_rank() > 0) {
            o.verbose = -1; /* rank 0 prints */
            if (o.n_callbacks > 0 && o.callbacks) {
                if (!(cbs0 = malloc(sizeof *cbs0 * (size_t)o.n_callbacks))) st = KC_ENOMEM;
                int n = 0;
                for (int i = 0; cbs0 && i < o.n_callbacks; i++)
                    if (o.callbacks[i] && !kc_callback_writes_files(o.callbacks[i]))
                        cbs0[n++] = o.callbacks[i];
                o.callbacks = cbs0;
                o.n_callbacks = n;
            }
        }
        if (st) {
            grouped_free(&gr);
            free(cbs0);
            free(kp);
            free(order);
            free(scratch);
            kc_history_free(h);
            return st == KC_ENOMEM ? kc_err(st, "kc_fit: out of memory") : st;
        }
    }
    kc_progress progress;
    kc_progress_init(&progress, o.out, o.verbose);
    int steps = (int)((n_train + batch_size - 1) / batch_size);
    if (o.steps_per_epoch > 0) steps = o.steps_per_epoch;
    int64_t pass_seen = 0; /* samples of the current pass over the data already trained on */
    m->stop_training = 0;
    kc_logs logs = kc_logs_empty(m);
    st = kc_callbacks_run(&o, KC_CB_TRAIN_BEGIN, m, &logs);
    double per_output[KC_MAX_IO];
    for (int e = 0; e < epochs && !st && !m->stop_training; e++) {
        /* a fresh permutation of 0..n-1 each epoch (as Keras): it depends only on the rng
         * state, so a run resumed from a saved model shuffles as the uninterrupted one */
        int new_pass = pass_seen == 0; /* steps_per_epoch: an epoch may go on with a pass */
        if (new_pass)
            for (int64_t i = 0; i < n_train; i++) order[i] = i;
        logs = kc_logs_empty(m);
        logs.epoch = o.initial_epoch + e;
        if ((st = kc_callbacks_run(&o, KC_CB_EPOCH_BEGIN, m, &logs))) break;
        if (!o.no_shuffle && new_pass)
            for (int64_t i = n_train - 1; i > 0; i--) {
                int64_t j = (int64_t)kc_rng_below(&m->rng, (uint64_t)i + 1);
                int64_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        kc_progress_epoch(&progress, o.initial_epoch + e + 1, last_epoch, steps);
        double start = kc_now();
        sums s = {0};
        kc_model_reset_metrics(m); /* Keras resets the metrics at each epoch's start */
        int nan_stop = 0;
        for (int step = 0; step < steps; step++) {
            if (pass_seen >= n_train) { /* steps_per_epoch beyond the data (Keras) */
                warn_ran_out(&warned, "kc_fit", "steps_per_epoch * epochs");
                break;
            }
            int b = (int)(n_train - pass_seen < batch_size ? n_train - pass_seen : batch_size);
            if (step == 0 && (st = bind_data(m, train, "kc_fit"))) break;
            double loss;
            if (gr.on) { /* row groups: each loads its own rows */
                if (gr.sync &&
                    (st = grouped_sync_prepare(m, train, order + pass_seen, b, scratch, &gr)))
                    break;
                loss = grouped_step(m, train, order + pass_seen, b, scratch, &gr, per_output, &st);
                if (st) break;
                pass_seen += b;
            } else {
                if ((st = load_batch(m, train, order + pass_seen, 0, b, scratch, 1, "kc_fit")))
                    break;
                kc_model_apply_class_weight(m, b, o.class_weight, o.n_class_weight);
                pass_seen += b;
                loss = train_step(m, b, per_output);
            }
            if (!isfinite(loss)) {
                if (progress.mode == 1) fputc('\n', progress.out);
                /* TerminateOnNaN (or a callback of one's own) may end training quietly */
                for (int i = 0; i < kp->n; i++) kp->values[i] = i == kp->loss_at ? loss : NAN;
                logs = make_logs(m, o.initial_epoch + e, step, kp, kp->n);
                logs.loss = loss;
                if ((st = kc_callbacks_run(&o, KC_CB_BATCH_END, m, &logs))) break;
                if (m->stop_training) {
                    nan_stop = 1;
                    break;
                }
                st = kc_err(KC_ENAN,
                            "kc_fit: the loss became %s at epoch %d, step %d/%d; training "
                            "stopped (no step was taken on that batch)",
                            isnan(loss) ? "nan" : "inf", o.initial_epoch + e + 1, step + 1, steps);
                break;
            }
            sums_add(&s, loss, per_output, b, m->n_outputs);
            keys_fill(m, kp, &s, 0);
            kc_progress_step_kv(&progress, step + 1, kp->n, kp->ptrs, kp->values);
            if (o.n_callbacks) {
                logs = make_logs(m, o.initial_epoch + e, step, kp, kp->n);
                logs.loss = kp->values[kp->loss_at];
                logs.accuracy = single_accuracy(m);
                if ((st = kc_callbacks_run(&o, KC_CB_BATCH_END, m, &logs))) break;
                /* ranks stop together: any rank's callback stopping stops all */
                if (gr.on && (st = kc_dist_any(&m->stop_training))) break;
                if (m->stop_training) break;
            }
        }
        if (st || nan_stop) break; /* an error, or TerminateOnNaN */
        if (pass_seen >= n_train) pass_seen = 0;
        double seconds = kc_now() - start;
        if (gr.on && (st = combine_metrics(m))) break;
        keys_fill(m, kp, &s, 0);
        kc_metrics tm, vm = {.loss = NAN, .accuracy = NAN};
        fill_metrics(m, &s, &tm);
        int validate = val && (o.initial_epoch + e + 1) % val_freq == 0;
        if (validate) {
            sums vs;
            if (o.validation_steps > (val_count + val_batch - 1) / val_batch)
                warn_ran_out(&warned, "kc_fit (validation)", "validation_steps");
            st = evaluate_range(m, val, val_start, val_used, val_batch, scratch, &vs,
                                "kc_fit (validation data)");
            if (st) break;
            keys_fill(m, kp, &vs, 1);
            fill_metrics(m, &vs, &vm);
        } else {
            for (int i = kp->n; i < 2 * kp->n; i++) kp->values[i] = NAN;
        }
        int n_values = validate ? 2 * kp->n : kp->n;
        kc_progress_end_kv(&progress, n_values, kp->ptrs, kp->values);
        h->loss[e] = tm.loss;
        h->accuracy[e] = tm.accuracy;
        h->val_loss[e] = vm.loss;
        h->val_accuracy[e] = vm.accuracy;
        h->seconds[e] = seconds;
        for (int i = 0; i < h->n_keys; i++) h->values[i][e] = kp->values[i];
        h->epochs = e + 1;
        m->epoch = o.initial_epoch + e + 1;
        logs = make_logs(m, o.initial_epoch + e, -1, kp, n_values);
        logs.loss = tm.loss;
        logs.accuracy = tm.accuracy;
        logs.val_loss = vm.loss;
        logs.val_accuracy = vm.accuracy;
        st = kc_callbacks_run(&o, KC_CB_EPOCH_END, m, &logs);
        if (gr.on && kc_dist_size() > 1) { /* rank 0's decisions (EarlyStopping, the rate) */
            st = kc_dist_agree(st);
            double d[2] = {m->stop_training, kc_get_learning_rate(m)};
            if (!st) st = kc_dist_bcast_doubles(d, 2);
            if (!st) {
                m->stop_training = (int)d[0];
                if (m->opt && (float)d[1] != kc_get_learning_rate(m))
                    st = kc_set_learning_rate(m, (float)d[1]);
            }
        }
    }
    /* Keras's fit ends with optimizer.finalize_variable_values: EMA's averages in */
    if (h->epochs) kc_finalize_variable_values(m);
    if (!st || st == KC_ENAN) {
        kc_logs end = kc_logs_empty(m);
        if (h->epochs) {
            int last = h->epochs - 1;
            for (int i = 0; i < h->n_keys; i++) kp->values[i] = h->values[i][last];
            end = make_logs(m, o.initial_epoch + last, -1, kp, h->n_keys);
            end.loss = h->loss[last];
            end.accuracy = h->accuracy[last];
            end.val_loss = h->val_loss[last];
            end.val_accuracy = h->val_accuracy[last];
        }
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", kc_last_error());
        kc_status end_st = kc_callbacks_run(&o, KC_CB_TRAIN_END, m, &end);
        if (!st) st = end_st;
        else kc_err(st, "%s", saved);
    }
    if (gr.on && kc_dist_size() > 1 && gr.steps && getenv("KERAC_DIST_STATS"))
        fprintf(stderr, /* bench/dist.sh reads these lines */
                "kerac distributed: rank %d: %lld steps, %.3f ms/step, waiting for the losses' "
                "exchange %.3f ms/step, for the gradients' reduction %.3f ms/step (%.1f%%), "
                "%d buckets\n",
                kc_dist_rank(), (long long)gr.steps, 1e3 * gr.step_s / (double)gr.steps,
                1e3 * gr.sync_s / (double)gr.steps,
                1e3 * kc_dist_wait_seconds() / (double)gr.steps,
                100.0 * kc_dist_wait_seconds() / gr.step_s, gr.nb);
    free(kp);
    free(order);
    free(scratch);
    grouped_free(&gr);
    free(cbs0);
    if (history) *history = h;
    else kc_history_free(h);
    return st;
}

/* ---- the rest --------------------------------------------------------------------------- */

kc_status kc_model_view_get(kc_model *m, kc_model_view *v) {
    kc_status st = kc_model_ensure_weights(m, "model");
    if (st) return st;
    *v = (kc_model_view){m->tensors[m->inputs[0]].shape, m->layers, m->n_layers, m->params,
                         m->n_params, m->opt, m->losses[0], &m->rng, &m->step,
                         &m->epoch, &m->stop_training, m};
    return KC_OK;
}

kc_layer *kc_model_layer(kc_model *m, int i) {
    return m && i >= 0 && i < m->n_layers ? m->layers[i] : NULL;
}

void kc_stop_training(kc_model *m) {
    if (m) m->stop_training = 1;
}

int kc_model_epoch(const kc_model *m) { return m ? m->epoch : 0; }

float kc_get_learning_rate(const kc_model *m) {
    return m && m->opt ? kc_optimizer_get_learning_rate(m->opt) : 0.0f; /* a schedule: its value */
}

kc_status kc_set_learning_rate(kc_model *m, float learning_rate) {
    if (!m) return kc_err(KC_EINVAL, "kc_set_learning_rate: model is NULL");
    if (!m->opt) return kc_err(KC_ESTATE, "kc_set_learning_rate: the model is not compiled");
    return kc_optimizer_set_learning_rate(m->opt, learning_rate);
}
