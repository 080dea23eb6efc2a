/* model.c: the Sequential model: layers in a chain, one flat parameter buffer, compile, fit,
 * evaluate, predict, summary. Data flows: dataset -> batch -> forward -> loss -> backward ->
 * optimizer -> parameters. */
#include "internal.h"
#include "layers/layer.h"
#include "losses.h"
#include "ops/ops.h"
#include "optimizers.h"
#include "util/progress.h"
#include "util/threads.h"
#include "model_view.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct kc_model {
    kc_shape input_shape;
    int64_t input_size;
    kc_layer **layers;
    int n_layers, cap;
    kc_status add_error; /* the first kc_add failure, reported again by kc_compile */
    char add_error_msg[512];

    float *params, *grads; /* the flat buffers every layer's weights are views into */
    int64_t n_params;

    kc_optimizer *opt;
    kc_loss loss;
    unsigned metrics;

    kc_rng rng;    /* glorot init, then shuffling */
    uint64_t step; /* training steps taken: keys the dropout masks */
    int epoch;         /* epochs completed (fit's last epoch index), saved with the model */
    int stop_training; /* set by a callback (kc_stop_training): fit ends after this step */

    /* workspace for batches of up to ws_batch samples */
    int ws_batch;
    float **acts;   /* acts[0] the input batch, acts[l + 1] layer l's output */
    float *dbuf[2]; /* gradient ping-pong, the largest activation each */
    float *ybuf;    /* the batch's targets */
    int ws_parts;   /* the pool size the layers' scratch was sized for */
    int bf16;       /* kc_set_mixed_bfloat16 */
};

/* ---- construction ---------------------------------------------------------------------- */

kc_status kc_set_mixed_bfloat16(kc_model *m, int on) {
    if (!m) return kc_err(KC_EINVAL, "kc_set_mixed_bfloat16: the model is NULL");
    if (on && !kc_gemm_bf16_supported())
        return kc_err(KC_EINVAL, "kc_set_mixed_bfloat16: this CPU lacks AVX512-BF16 (or kerac's "
                                 "own kernels are off: KERAC_GEMM_BLAS)");
    m->bf16 = on != 0;
    return KC_OK;
}

kc_model *kc_sequential(kc_shape input_shape) {
    kc_model *m = calloc(1, sizeof *m);
    if (!m) {
        kc_err(KC_ENOMEM, "out of memory creating a model");
        return NULL;
    }
    m->input_shape = input_shape;
    m->input_size = kc_shape_size(input_shape);
    if (input_shape.rank < 1 || input_shape.rank > KC_MAX_RANK || m->input_size <= 0) {
        char buf[64];
        m->add_error = kc_err(KC_EINVAL, "kc_sequential: invalid input shape %s",
                              kc_shape_str(input_shape, buf, sizeof buf));
        snprintf(m->add_error_msg, sizeof m->add_error_msg, "%s", kc_last_error());
    }
    kc_rng_seed(&m->rng, kc_default_seed());
    kc_get_num_threads();
    return m;
}

static void free_workspace(kc_model *m) {
    if (m->acts)
        for (int l = 0; l <= m->n_layers; l++) kc_free(m->acts[l]);
    free(m->acts);
    kc_free(m->dbuf[0]);
    kc_free(m->dbuf[1]);
    kc_free(m->ybuf);
    for (int l = 0; l < m->n_layers; l++) {
        kc_free(m->layers[l]->scratch);
        m->layers[l]->scratch = NULL;
    }
    m->acts = NULL;
    m->dbuf[0] = m->dbuf[1] = m->ybuf = NULL;
    m->ws_batch = 0;
}

void kc_model_free(kc_model *m) {
    if (!m) return;
    free_workspace(m);
    for (int l = 0; l < m->n_layers; l++) free(m->layers[l]);
    free(m->layers);
    kc_free(m->params);
    kc_free(m->grads);
    kc_optimizer_free(m->opt);
    free(m);
}

static kc_shape last_shape(const kc_model *m) {
    return m->n_layers ? m->layers[m->n_layers - 1]->out_shape : m->input_shape;
}

static kc_status remember_add_error(kc_model *m, kc_status st) {
    if (!m->add_error) {
        m->add_error = st;
        snprintf(m->add_error_msg, sizeof m->add_error_msg, "%s", kc_last_error());
    }
    return st;
}

kc_status kc_add(kc_model *m, kc_layer *layer) {
    if (!m) {
        free(layer);
        return kc_err(KC_EINVAL, "kc_add: model is NULL");
    }
    if (!layer)
        return remember_add_error(
            m, kc_err(KC_EINVAL, "kc_add: layer is NULL (a layer constructor failed)"));
    if (m->add_error) {
        free(layer);
        return kc_err(m->add_error, "kc_add: an earlier error stands: %s", m->add_error_msg);
    }
    if (m->params) {
        free(layer);
        return kc_err(KC_ESTATE, "kc_add: the model's weights already exist (after compile, "
                                 "predict or get_weights); build the whole model first");
    }
    int same = 0;
    for (int l = 0; l < m->n_layers; l++) same += m->layers[l]->ops == layer->ops;
    if (same) snprintf(layer->name, sizeof layer->name, "%s_%d", layer->ops->base_name, same);
    else snprintf(layer->name, sizeof layer->name, "%s", layer->ops->base_name);
    layer->in_shape = last_shape(m);
    layer->in_size = kc_shape_size(layer->in_shape);
    kc_status st = layer->ops->build(layer);
    if (st) {
        free(layer);
        return remember_add_error(m, st);
    }
    layer->out_size = kc_shape_size(layer->out_shape);
    if (layer->trainable_count < 0) layer->trainable_count = layer->param_count;
    if (m->n_layers == m->cap) {
        int cap = m->cap ? 2 * m->cap : 8;
        kc_layer **grown = realloc(m->layers, sizeof *grown * (size_t)cap);
        if (!grown) {
            free(layer);
            return remember_add_error(m, kc_err(KC_ENOMEM, "kc_add: out of memory"));
        }
        m->layers = grown;
        m->cap = cap;
    }
    layer->param_offset = m->n_params;
    layer->input_is_data = m->n_params == 0;
    layer->seed = kc_mix64(kc_default_seed() ^ (0x5eedull + (uint64_t)m->n_layers));
    m->n_params += layer->param_count;
    m->layers[m->n_layers++] = layer;
    return KC_OK;
}

int kc_layer_count(const kc_model *m) { return m ? m->n_layers : 0; }
const char *kc_layer_name(const kc_model *m, int i) {
    return m && i >= 0 && i < m->n_layers ? m->layers[i]->name : NULL;
}
kc_shape kc_input_shape(const kc_model *m) { return m ? m->input_shape : (kc_shape){0}; }
kc_shape kc_output_shape(const kc_model *m) { return m ? last_shape(m) : (kc_shape){0}; }
int64_t kc_layer_param_count(const kc_model *m, int i) {
    return m && i >= 0 && i < m->n_layers ? m->layers[i]->param_count : 0;
}
int64_t kc_layer_trainable_count(const kc_model *m, int i) {
    return m && i >= 0 && i < m->n_layers ? m->layers[i]->trainable_count : 0;
}

static kc_status check_built(const kc_model *m, const char *what) {
    if (!m) return kc_err(KC_EINVAL, "%s: model is NULL", what);
    if (m->add_error) return kc_err(m->add_error, "%s: %s", what, m->add_error_msg);
    if (m->n_layers == 0) return kc_err(KC_ESTATE, "%s: the model has no layers", what);
    return KC_OK;
}

/* Creates the weights on first need: one buffer, views per layer, glorot in layer order. */
static kc_status ensure_weights(kc_model *m, const char *what) {
    kc_status st = check_built(m, what);
    if (st || m->params) return st;
    m->params = kc_calloc(sizeof(float) * (size_t)m->n_params);
    m->grads = kc_calloc(sizeof(float) * (size_t)m->n_params);
    if (!m->params || !m->grads) {
        kc_free(m->params);
        kc_free(m->grads);
        m->params = m->grads = NULL;
        return kc_err(KC_ENOMEM, "%s: out of memory for %lld weights", what,
                      (long long)m->n_params);
    }
    for (int l = 0; l < m->n_layers; l++) {
        kc_layer *layer = m->layers[l];
        if (layer->param_count) {
            layer->kernel = m->params + layer->param_offset;
            layer->bias = layer->kernel + layer->kernel_size;
            layer->dkernel = m->grads + layer->param_offset;
            layer->dbias = layer->dkernel + layer->kernel_size;
        }
        layer->ops->init(layer, &m->rng);
    }
    return KC_OK;
}

int64_t kc_count_params(kc_model *m) { return m ? m->n_params : 0; }

static kc_status check_count(kc_model *m, const void *buffer, int64_t count, const char *what) {
    kc_status st = ensure_weights(m, what);
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

/* ---- summary ---------------------------------------------------------------------------- */

static void summary_row(FILE *out, const char *c1, const char *c2, const char *c3) {
    /* Keras 2's Sequential table: columns end at 29, 55 and 65 characters */
    fprintf(out, "%-29.28s%-26.25s%-10s\n", c1, c2, c3);
}

static void format_count(char *buf, size_t size, int64_t n) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%lld", (long long)n), pos = 0;
    for (int i = 0; i < len && pos + 2 < (int)size; i++) {
        if (i && (len - i) % 3 == 0) buf[pos++] = ',';
        buf[pos++] = digits[i];
    }
    buf[pos] = 0;
}

static void batch_shape_str(kc_shape shape, char *buf, size_t size) {
    /* "(None, 512)": the batch dimension first */
    char inner[64];
    kc_shape_str(shape, inner, sizeof inner);
    snprintf(buf, size, "(None%s%s", shape.rank ? ", " : ")", shape.rank ? inner + 1 : "");
}

kc_status kc_summary(kc_model *m, FILE *out) {
    kc_status st = check_built(m, "kc_summary");
    if (st) return st;
    if (!out) out = stdout;
    static const char rule[] = "_________________________________________________________________";
    static const char dbl[] = "=================================================================";
    fprintf(out, "Model: \"sequential\"\n%s\n", rule);
    summary_row(out, "Layer (type)", "Output Shape", "Param #");
    fprintf(out, "%s\n", dbl);
    for (int l = 0; l < m->n_layers; l++) {
        const kc_layer *layer = m->layers[l];
        char name[96], shape[96], params[32];
        snprintf(name, sizeof name, "%s (%s)", layer->name, layer->ops->type_name);
        batch_shape_str(layer->out_shape, shape, sizeof shape);
        snprintf(params, sizeof params, "%lld", (long long)layer->param_count);
        summary_row(out, name, shape, params);
        fprintf(out, "%s\n", l + 1 < m->n_layers ? rule : dbl);
    }
    int64_t trainable = 0;
    for (int l = 0; l < m->n_layers; l++) trainable += m->layers[l]->trainable_count;
    char total[32], train[32], frozen[32];
    format_count(total, sizeof total, m->n_params);
    format_count(train, sizeof train, trainable);
    format_count(frozen, sizeof frozen, m->n_params - trainable);
    fprintf(out, "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n%s\n", total,
            train, frozen, rule);
    return KC_OK;
}

/* ---- compile ---------------------------------------------------------------------------- */

kc_status kc_compile(kc_model *m, kc_loss loss, kc_optimizer *opt, unsigned metrics) {
    if (!m) {
        kc_optimizer_free(opt);
        return kc_err(KC_EINVAL, "kc_compile: model is NULL");
    }
    kc_status st = KC_OK;
    if (!opt) st = kc_err(KC_EINVAL, "kc_compile: optimizer is NULL (its constructor failed)");
    else if (loss < KC_CATEGORICAL_CROSSENTROPY || loss > KC_MEAN_SQUARED_ERROR)
        st = kc_err(KC_EINVAL, "kc_compile: unknown loss %d", (int)loss);
    else if (metrics & ~(unsigned)KC_METRIC_ACCURACY)
        st = kc_err(KC_EINVAL, "kc_compile: unknown metrics bits 0x%x", metrics);
    if (!st) st = ensure_weights(m, "kc_compile");
    if (!st) {
        kc_shape out = last_shape(m);
        char buf[64];
        if ((loss == KC_CATEGORICAL_CROSSENTROPY || loss == KC_SPARSE_CATEGORICAL_CROSSENTROPY) &&
            (out.rank != 1 || out.dims[0] < 2))
            st = kc_err(KC_EINVAL,
                        "kc_compile: %s needs an output of shape (classes) with classes >= 2, "
                        "the model's output is %s",
                        kc_loss_name(loss), kc_shape_str(out, buf, sizeof buf));
    }
    if (!st) st = kc_optimizer_bind(opt, m->n_params);
    if (st) {
        kc_optimizer_free(opt);
        return st;
    }
    kc_optimizer_free(m->opt);
    m->opt = opt;
    m->loss = loss;
    m->metrics = metrics;
    return KC_OK;
}

/* ---- forward, loss, backward ------------------------------------------------------------- */

static kc_status ensure_workspace(kc_model *m, int batch) {
    int parts = kc_pool_size();
    if (batch <= m->ws_batch && parts == m->ws_parts) return KC_OK;
    if (batch < m->ws_batch) batch = m->ws_batch;
    free_workspace(m);
    m->acts = calloc((size_t)m->n_layers + 1, sizeof *m->acts);
    if (!m->acts) return kc_err(KC_ENOMEM, "out of memory for the batch workspace");
    int64_t largest = m->input_size;
    for (int l = 0; l <= m->n_layers; l++) {
        int64_t size = l ? m->layers[l - 1]->out_size : m->input_size;
        largest = size > largest ? size : largest;
        m->acts[l] = kc_alloc(sizeof(float) * (size_t)(batch * size));
        if (!m->acts[l]) goto fail;
    }
    m->dbuf[0] = kc_alloc(sizeof(float) * (size_t)(batch * largest));
    m->dbuf[1] = kc_alloc(sizeof(float) * (size_t)(batch * largest));
    m->ybuf = kc_alloc(sizeof(float) * (size_t)(batch * m->layers[m->n_layers - 1]->out_size));
    if (!m->dbuf[0] || !m->dbuf[1] || !m->ybuf) goto fail;
    for (int l = 0; l < m->n_layers; l++) {
        kc_layer *layer = m->layers[l];
        int64_t floats = layer->ops->scratch_size ? layer->ops->scratch_size(layer, batch, parts) : 0;
        if (floats > 0 && !(layer->scratch = kc_alloc(sizeof(float) * (size_t)floats))) goto fail;
        layer->scratch_parts = parts;
    }
    m->ws_batch = batch;
    m->ws_parts = parts;
    return KC_OK;
fail:
    free_workspace(m);
    return kc_err(KC_ENOMEM, "out of memory for the batch workspace (batch %d)", batch);
}

static int is_type(const kc_layer *l, const char *type) { return !strcmp(l->ops->type_name, type); }

/* Fusions that change no result, only the passes over memory: a Dense(relu) followed by a
 * Dropout applies the mask in its product's last store and writes the Dropout's output (the
 * Dropout is skipped, forward and backward); a Dense whose input is a relu Dense's output
 * (through such a Dropout, or directly) multiplies its input gradient by that relu's and
 * dropout's derivative in the product's last store, and the relu Dense takes it as is. */
static void plan_fusion(kc_model *m) {
    for (int l = 0; l < m->n_layers; l++) {
        m->layers[l]->fused_dropout = NULL;
        m->layers[l]->gate_from = NULL;
    }
    for (int l = 0; l < m->n_layers; l++) {
        kc_layer *dense = m->layers[l];
        if (!is_type(dense, "Dense") || dense->act != KC_RELU) continue;
        int next = l + 1;
        if (next < m->n_layers && is_type(m->layers[next], "Dropout"))
            dense->fused_dropout = m->layers[next++];
        if (next < m->n_layers && is_type(m->layers[next], "Dense"))
            m->layers[next]->gate_from = dense;
    }
}

/* layer l is a Dropout fused into the Dense before it */
static int skipped(const kc_model *m, int l) {
    return l > 0 && m->layers[l - 1]->fused_dropout == m->layers[l];
}

/* where layer l writes: its own output, or that of the Dropout fused into it */
static int output_index(const kc_model *m, int l) {
    return l + 1 + (m->layers[l]->fused_dropout != NULL);
}

static void forward(kc_model *m, int batch, const kc_forward_ctx *ctx) {
    plan_fusion(m);
    for (int l = 0; l < m->n_layers; l++)
        if (!skipped(m, l))
            m->layers[l]->ops->forward(m->layers[l], m->acts[l], m->acts[output_index(m, l)],
                                       batch, ctx);
}

static int output_cols(const kc_model *m) {
    kc_shape out = last_shape(m);
    return out.rank ? out.dims[out.rank - 1] : 1;
}

/* acts[0] and ybuf hold the batch. Returns the loss. Without update, fills m->grads. With
 * update set and a finite loss, takes the optimizer step instead, layer by layer as the
 * gradients appear (a layer's weights are no longer needed once its input gradient is
 * computed); Dense layers step their kernel rows inside the gradient product, and their
 * gradients in m->grads are then not kept. */
static double forward_backward(kc_model *m, int batch, const kc_forward_ctx *ctx,
                               double *correct, int update) {
    forward(m, batch, ctx);
    const float *pred = m->acts[m->n_layers];
    int cols = output_cols(m);
    int rows = (int)(batch * (last_shape(m).rank ? kc_shape_size(last_shape(m)) / cols : 1));
    int fused = kc_loss_fuses(m->loss, m->layers[m->n_layers - 1]->act);
    float *dout = m->dbuf[0], *din = m->dbuf[1];
    double loss = kc_loss_compute(m->loss, pred, m->ybuf, rows, cols, dout, fused);
    if (correct) *correct = kc_accuracy_sum(m->loss, pred, m->ybuf, rows, cols);
    update = update && isfinite(loss);
    kc_forward_ctx back = *ctx;
    back.opt = update ? m->opt : NULL; /* layers that step their own weights (Dense) */
    for (int l = m->n_layers - 1; l >= 0; l--) {
        if (skipped(m, l)) continue; /* its gradient is applied by the layers around it */
        kc_layer *layer = m->layers[l];
        int out = output_index(m, l);
        /* dout is already this layer's pre-activation gradient: the fused loss, or a product
         * after it that applied the relu (and dropout) derivative */
        int preactivation = (l == m->n_layers - 1 && fused) ||
                            (out < m->n_layers && m->layers[out]->gate_from == layer);
        layer->ops->backward(layer, m->acts[l], m->acts[out], dout, l ? din : NULL, batch,
                             preactivation, &back);
        if (update && layer->trainable_count && !layer->ops->updates_weights)
            kc_optimizer_update(m->opt, m->params, m->grads, layer->param_offset,
                                layer->trainable_count);
        float *t = dout;
        dout = din;
        din = t;
    }
    if (update) kc_optimizer_finish_step(m->opt);
    return loss;
}

/* ---- data -------------------------------------------------------------------------------- */

static int is_class_index(const kc_dataset *ds) {
    return ds->y_shape.rank == 0 && (ds->y_dtype == KC_UINT8 || ds->y_dtype == KC_INT32);
}

static int64_t class_at(const kc_dataset *ds, int64_t i) {
    return ds->y_dtype == KC_UINT8 ? ((const uint8_t *)ds->y)[i] : ((const int32_t *)ds->y)[i];
}

/* Checks that ds fits the compiled model: x's per-sample shape, y's kind and range. */
static kc_status check_data(kc_model *m, const kc_dataset *ds, const char *what, int need_y) {
    char a[64], b[64];
    if (!ds || !ds->x || ds->count <= 0)
        return kc_err(KC_EINVAL, "%s: the dataset is empty", what);
    if (ds->x_dtype != KC_UINT8 && ds->x_dtype != KC_FLOAT32)
        return kc_err(KC_EINVAL, "%s: x must be uint8 or float32", what);
    if (kc_shape_size(ds->x_shape) != m->input_size ||
        memcmp(ds->x_shape.dims, m->input_shape.dims, sizeof(int) * (size_t)ds->x_shape.rank) ||
        ds->x_shape.rank != m->input_shape.rank)
        return kc_err(KC_EINVAL,
                      "%s: the data's per-sample shape is %s but the model's input shape is %s%s",
                      what, kc_shape_str(ds->x_shape, a, sizeof a),
                      kc_shape_str(m->input_shape, b, sizeof b),
                      kc_shape_size(ds->x_shape) == m->input_size ? " (kc_dataset_reshape it)" : "");
    if (!need_y) return KC_OK;
    if (!ds->y) return kc_err(KC_EINVAL, "%s: the dataset has no labels (y)", what);
    kc_shape out = last_shape(m);
    int cols = output_cols(m);
    if (m->loss == KC_SPARSE_CATEGORICAL_CROSSENTROPY) {
        if (!is_class_index(ds))
            return kc_err(KC_EINVAL,
                          "%s: sparse_categorical_crossentropy needs class indices (uint8 or "
                          "int32 labels of shape ()), the labels have shape %s",
                          what, kc_shape_str(ds->y_shape, a, sizeof a));
        for (int64_t i = 0; i < ds->count; i++)
            if (class_at(ds, i) < 0 || class_at(ds, i) >= cols)
                return kc_err(KC_EINVAL, "%s: label %lld of sample %lld is out of range [0, %d)",
                              what, (long long)class_at(ds, i), (long long)i, cols);
        return KC_OK;
    }
    if (is_class_index(ds))
        return kc_err(KC_EINVAL,
                      "%s: %s needs targets of shape %s but the labels are class indices: "
                      "call kc_to_categorical(ds, %d) or use sparse_categorical_crossentropy",
                      what, kc_loss_name(m->loss), kc_shape_str(out, a, sizeof a), cols);
    if (ds->y_dtype != KC_FLOAT32 || kc_shape_size(ds->y_shape) != kc_shape_size(out))
        return kc_err(KC_EINVAL, "%s: the targets have shape %s but the model's output is %s",
                      what, kc_shape_str(ds->y_shape, a, sizeof a),
                      kc_shape_str(out, b, sizeof b));
    return KC_OK;
}

/* Copies count samples (by index, or from start when index is NULL) into acts[0] and ybuf. */
static void load_batch(kc_model *m, const kc_dataset *ds, const int64_t *index, int64_t start,
                       int count, int64_t *scratch_index, int with_y) {
    if (!index) {
        for (int i = 0; i < count; i++) scratch_index[i] = start + i;
        index = scratch_index;
    }
    float scale = ds->x_scale != 0.0f ? ds->x_scale : 1.0f;
    if (ds->x_dtype == KC_UINT8)
        kc_gather_rows_u8(m->acts[0], ds->x, index, count, m->input_size, scale);
    else
        kc_gather_rows_f32(m->acts[0], ds->x, index, count, m->input_size, scale);
    if (!with_y) return;
    if (is_class_index(ds))
        for (int i = 0; i < count; i++) m->ybuf[i] = (float)class_at(ds, index[i]);
    else
        kc_gather_rows_f32(m->ybuf, ds->y, index, count, kc_shape_size(ds->y_shape), 1.0f);
}

/* ---- evaluate ---------------------------------------------------------------------------- */

/* Mean loss and accuracy over samples [start, start + count) of ds, in inference mode. */
static kc_status evaluate_range(kc_model *m, const kc_dataset *ds, int64_t start, int64_t count,
                                int batch_size, int64_t *scratch_index, kc_metrics *result) {
    kc_forward_ctx ctx = {.bf16 = m->bf16};
    double loss_sum = 0.0, correct = 0.0;
    int cols = output_cols(m);
    int64_t rows_per_sample = kc_shape_size(last_shape(m)) / cols;
    for (int64_t done = 0; done < count; done += batch_size) {
        int b = (int)(count - done < batch_size ? count - done : batch_size);
        load_batch(m, ds, NULL, start + done, b, scratch_index, 1);
        forward(m, b, &ctx);
        int rows = (int)(b * rows_per_sample);
        loss_sum += kc_loss_compute(m->loss, m->acts[m->n_layers], m->ybuf, rows, cols, NULL, 0) * b;
        correct += kc_accuracy_sum(m->loss, m->acts[m->n_layers], m->ybuf, rows, cols);
    }
    result->loss = loss_sum / (double)count;
    result->accuracy = (m->metrics & KC_METRIC_ACCURACY)
                           ? correct / (double)(count * rows_per_sample)
                           : NAN;
    return KC_OK;
}

static kc_status check_compiled(const kc_model *m, const char *what) {
    kc_status st = check_built(m, what);
    if (st) return st;
    if (!m->opt) return kc_err(KC_ESTATE, "%s: the model is not compiled; call kc_compile first", what);
    return KC_OK;
}

kc_status kc_evaluate(kc_model *m, const kc_dataset *data, const kc_evaluate_opts *opts,
                      kc_metrics *result) {
    kc_evaluate_opts o = opts ? *opts : (kc_evaluate_opts){0};
    int batch_size = o.batch_size > 0 ? o.batch_size : 32;
    kc_status st = check_compiled(m, "kc_evaluate");
    if (!st) st = check_data(m, data, "kc_evaluate", 1);
    if (!st) st = ensure_workspace(m, batch_size);
    if (st) return st;
    int64_t *scratch = malloc(sizeof(int64_t) * (size_t)batch_size);
    if (!scratch) return kc_err(KC_ENOMEM, "kc_evaluate: out of memory");
    kc_metrics r;
    double start = kc_now();
    st = evaluate_range(m, data, 0, data->count, batch_size, scratch, &r);
    free(scratch);
    if (st) return st;
    if (o.verbose > 0) {
        FILE *out = o.out ? o.out : stdout;
        int steps = (int)((data->count + batch_size - 1) / batch_size);
        fprintf(out, "%d/%d - %.0fs - loss: %.4f", steps, steps, kc_now() - start, r.loss);
        if (!isnan(r.accuracy)) fprintf(out, " - accuracy: %.4f", r.accuracy);
        fputc('\n', out);
    }
    if (result) *result = r;
    return KC_OK;
}

/* ---- predict ----------------------------------------------------------------------------- */

kc_status kc_predict(kc_model *m, const float *x, int64_t count, float *out) {
    if (!m) return kc_err(KC_EINVAL, "kc_predict: model is NULL");
    if (!x || !out || count <= 0)
        return kc_err(KC_EINVAL, "kc_predict: need input, output and count > 0");
    kc_status st = ensure_weights(m, "kc_predict");
    if (st) return st;
    int batch = count < 256 ? (int)count : 256;
    if (m->ws_batch > batch) batch = m->ws_batch < count ? m->ws_batch : (int)count;
    if ((st = ensure_workspace(m, batch))) return st;
    int64_t out_size = kc_shape_size(last_shape(m));
    kc_forward_ctx ctx = {.bf16 = m->bf16};
    for (int64_t done = 0; done < count; done += batch) {
        int b = (int)(count - done < batch ? count - done : batch);
        memcpy(m->acts[0], x + done * m->input_size, sizeof(float) * (size_t)(b * m->input_size));
        forward(m, b, &ctx);
        memcpy(out + done * out_size, m->acts[m->n_layers], sizeof(float) * (size_t)(b * out_size));
    }
    return KC_OK;
}

/* ---- single batches ---------------------------------------------------------------------- */

/* Copies a user's batch into the workspace, checking sparse labels. */
static kc_status load_user_batch(kc_model *m, const float *x, const float *y, int batch,
                                 const char *what) {
    if (!x || !y || batch <= 0) return kc_err(KC_EINVAL, "%s: need x, y and batch > 0", what);
    kc_status st = ensure_workspace(m, batch);
    if (st) return st;
    int cols = output_cols(m);
    int64_t y_size = m->loss == KC_SPARSE_CATEGORICAL_CROSSENTROPY
                         ? batch
                         : batch * kc_shape_size(last_shape(m));
    if (m->loss == KC_SPARSE_CATEGORICAL_CROSSENTROPY)
        for (int i = 0; i < batch; i++)
            if (!(y[i] >= 0.0f && y[i] < (float)cols) || y[i] != floorf(y[i]))
                return kc_err(KC_EINVAL, "%s: label %g of sample %d is not a class in [0, %d)",
                              what, (double)y[i], i, cols);
    memcpy(m->acts[0], x, sizeof(float) * (size_t)(batch * m->input_size));
    memcpy(m->ybuf, y, sizeof(float) * (size_t)y_size);
    return KC_OK;
}

static kc_metrics batch_metrics(const kc_model *m, double loss, double correct, int batch) {
    int cols = output_cols(m);
    double rows = (double)batch * (double)(kc_shape_size(last_shape(m)) / cols);
    return (kc_metrics){loss, (m->metrics & KC_METRIC_ACCURACY) ? correct / rows : NAN};
}

kc_status kc_compute_gradients(kc_model *m, const float *x, const float *y, int batch,
                               int training, double *loss, float *grads, int64_t count) {
    kc_status st = check_compiled(m, "kc_compute_gradients");
    if (!st && grads && count != m->n_params)
        st = kc_err(KC_EINVAL, "kc_compute_gradients: the model has %lld weights, the buffer holds %lld",
                    (long long)m->n_params, (long long)count);
    if (!st) st = load_user_batch(m, x, y, batch, "kc_compute_gradients");
    if (st) return st;
    kc_forward_ctx ctx = {.training = training, .step_key = m->step, .bf16 = m->bf16};
    double l = forward_backward(m, batch, &ctx, NULL, 0);
    if (loss) *loss = l;
    if (grads) memcpy(grads, m->grads, sizeof(float) * (size_t)count);
    return KC_OK;
}

/* One training step on the batch in the workspace. */
static double train_step(kc_model *m, int batch, double *correct) {
    kc_forward_ctx ctx = {.training = 1, .update_stats = 1, .step_key = m->step++, .bf16 = m->bf16};
    return forward_backward(m, batch, &ctx, correct, 1);
}

kc_status kc_train_on_batch(kc_model *m, const float *x, const float *y, int batch,
                            kc_metrics *result) {
    kc_status st = check_compiled(m, "kc_train_on_batch");
    if (!st) st = load_user_batch(m, x, y, batch, "kc_train_on_batch");
    if (st) return st;
    double correct = 0.0;
    double loss = train_step(m, batch, &correct);
    if (result) *result = batch_metrics(m, loss, correct, batch);
    if (!isfinite(loss))
        return kc_err(KC_ENAN, "kc_train_on_batch: the loss is %g; no step was taken", loss);
    return KC_OK;
}

/* ---- fit --------------------------------------------------------------------------------- */

void kc_history_free(kc_history *h) {
    if (!h) return;
    free(h->loss);
    free(h->accuracy);
    free(h->val_loss);
    free(h->val_accuracy);
    free(h->seconds);
    free(h);
}

static kc_history *history_new(int epochs) {
    kc_history *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    size_t n = (size_t)(epochs > 0 ? epochs : 1);
    h->loss = malloc(n * sizeof(double));
    h->accuracy = malloc(n * sizeof(double));
    h->val_loss = malloc(n * sizeof(double));
    h->val_accuracy = malloc(n * sizeof(double));
    h->seconds = malloc(n * sizeof(double));
    h->capacity = (int)n;
    if (!h->loss || !h->accuracy || !h->val_loss || !h->val_accuracy || !h->seconds) {
        kc_history_free(h);
        return NULL;
    }
    return h;
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
        n_train = (int64_t)floor((double)train->count * (1.0 - (double)o.validation_split));
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
    if ((st = ensure_workspace(m, batch_size))) return st;
    int64_t *order = malloc(sizeof(int64_t) * (size_t)n_train);
    int64_t *scratch = malloc(sizeof(int64_t) * (size_t)batch_size);
    kc_history *h = history_new(epochs);
    if (!order || !scratch || !h) {
        free(order);
        free(scratch);
        kc_history_free(h);
        return kc_err(KC_ENOMEM, "kc_fit: out of memory");
    }

    kc_progress progress;
    kc_progress_init(&progress, o.out, o.verbose);
    int steps = (int)((n_train + batch_size - 1) / batch_size);
    m->stop_training = 0;
    kc_logs logs = kc_logs_empty(m);
    st = kc_callbacks_run(&o, KC_CB_TRAIN_BEGIN, m, &logs);
    for (int e = 0; e < epochs && !st && !m->stop_training; e++) {
        /* a fresh permutation of 0..n-1 each epoch (as Keras): it depends only on the rng
         * state, so a run resumed from a saved model shuffles as the uninterrupted one */
        for (int64_t i = 0; i < n_train; i++) order[i] = i;
        logs = kc_logs_empty(m);
        logs.epoch = o.initial_epoch + e;
        if ((st = kc_callbacks_run(&o, KC_CB_EPOCH_BEGIN, m, &logs))) break;
        if (!o.no_shuffle)
            for (int64_t i = n_train - 1; i > 0; i--) {
                int64_t j = (int64_t)kc_rng_below(&m->rng, (uint64_t)i + 1);
                int64_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        kc_progress_epoch(&progress, o.initial_epoch + e + 1, last_epoch, steps);
        double start = kc_now(), loss_sum = 0.0, correct = 0.0;
        int64_t seen = 0;
        int nan_stop = 0;
        for (int s = 0; s < steps; s++) {
            int b = (int)(n_train - seen < batch_size ? n_train - seen : batch_size);
            load_batch(m, train, order + seen, 0, b, scratch, 1);
            double batch_correct = 0.0;
            double loss = train_step(m, b, &batch_correct);
            if (!isfinite(loss)) {
                if (progress.mode == 1) fputc('\n', progress.out);
                /* TerminateOnNaN (or a callback of one's own) may end training quietly */
                logs = kc_logs_empty(m);
                logs.epoch = o.initial_epoch + e;
                logs.batch = s;
                logs.loss = loss;
                if ((st = kc_callbacks_run(&o, KC_CB_BATCH_END, m, &logs))) break;
                if (m->stop_training) {
                    nan_stop = 1;
                    break;
                }
                st = kc_err(KC_ENAN,
                            "kc_fit: the loss became %s at epoch %d, step %d/%d; training "
                            "stopped (no step was taken on that batch)",
                            isnan(loss) ? "nan" : "inf", o.initial_epoch + e + 1, s + 1, steps);
                break;
            }
            loss_sum += loss * b;
            correct += batch_correct;
            seen += b;
            kc_metrics so_far = batch_metrics(m, loss_sum / (double)seen, correct, (int)seen);
            kc_progress_step(&progress, s + 1, so_far.loss, so_far.accuracy);
            if (o.n_callbacks) {
                logs = kc_logs_empty(m);
                logs.epoch = o.initial_epoch + e;
                logs.batch = s;
                logs.loss = so_far.loss;
                logs.accuracy = so_far.accuracy;
                if ((st = kc_callbacks_run(&o, KC_CB_BATCH_END, m, &logs))) break;
                if (m->stop_training) break;
            }
        }
        if (st || nan_stop) break; /* an error, or TerminateOnNaN */
        double seconds = kc_now() - start;
        kc_metrics epoch_metrics = batch_metrics(m, loss_sum / (double)seen, correct, (int)seen);
        kc_metrics val_metrics = {NAN, NAN};
        if (val) evaluate_range(m, val, val_start, val_count, batch_size, scratch, &val_metrics);
        kc_progress_end(&progress, epoch_metrics.loss, epoch_metrics.accuracy, val_metrics.loss,
                        val_metrics.accuracy);
        h->loss[e] = epoch_metrics.loss;
        h->accuracy[e] = epoch_metrics.accuracy;
        h->val_loss[e] = val_metrics.loss;
        h->val_accuracy[e] = val_metrics.accuracy;
        h->seconds[e] = seconds;
        h->epochs = e + 1;
        m->epoch = o.initial_epoch + e + 1;
        logs = kc_logs_empty(m);
        logs.epoch = o.initial_epoch + e;
        logs.loss = epoch_metrics.loss;
        logs.accuracy = epoch_metrics.accuracy;
        logs.val_loss = val_metrics.loss;
        logs.val_accuracy = val_metrics.accuracy;
        st = kc_callbacks_run(&o, KC_CB_EPOCH_END, m, &logs);
    }
    if (!st || st == KC_ENAN) {
        kc_logs end = kc_logs_empty(m);
        if (h->epochs) {
            int last = h->epochs - 1;
            end.epoch = o.initial_epoch + last;
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
    free(order);
    free(scratch);
    if (history) *history = h;
    else kc_history_free(h);
    return st;
}

const char *kc_act_name(kc_act act) {
    static const char *names[] = {"linear", "relu", "softmax", "sigmoid", "tanh"};
    return (unsigned)act <= KC_TANH ? names[act] : "unknown";
}

/* ---- internal access for saving, loading and callbacks (model_view.h) ----------------------- */

kc_status kc_model_view_get(kc_model *m, kc_model_view *v) {
    kc_status st = ensure_weights(m, "model");
    if (st) return st;
    *v = (kc_model_view){m->input_shape, m->layers, m->n_layers, m->params, m->n_params, m->opt,
                         m->loss, m->metrics, &m->rng, &m->step, &m->epoch, &m->stop_training};
    return KC_OK;
}

kc_layer *kc_model_layer(kc_model *m, int i) {
    return m && i >= 0 && i < m->n_layers ? m->layers[i] : NULL;
}

void kc_stop_training(kc_model *m) {
    if (m) m->stop_training = 1;
}

int kc_model_epoch(const kc_model *m) { return m ? m->epoch : 0; }

float kc_get_learning_rate(const kc_model *m) { return m && m->opt ? m->opt->learning_rate : 0.0f; }

kc_status kc_set_learning_rate(kc_model *m, float learning_rate) {
    if (!m) return kc_err(KC_EINVAL, "kc_set_learning_rate: model is NULL");
    if (!m->opt)
        return kc_err(KC_ESTATE, "kc_set_learning_rate: the model is not compiled");
    return kc_optimizer_set_learning_rate(m->opt, learning_rate);
}
