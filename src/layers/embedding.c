/* embedding.c: Embedding (token ids -> rows of the "embeddings" variable, mask_zero) and
 * Masking (timesteps equal to mask_value masked and zeroed), Keras 3's two layers that make
 * masks. Token ids travel through the engine as float32 values (exact below 2^24): check_input
 * refuses an id out of [0, input_dim) by sample and position before the forward runs. The
 * weight gradient is scattered into the rows the batch used; with an optimizer whose step
 * leaves a zero-gradient weight as it is (plain SGD), the model lets the layer step those rows
 * only (the same numbers as the dense step), else the whole gradient is written. */
#include "layer.h"
#include "../initializers.h"
#include "../io/config_fields.h"
#include "../optimizers.h"
#include <math.h>
#include <string.h>

#define KC_MAX_VOCAB (1 << 24) /* ids are exact as float32 up to here */

/* ---- Embedding ---- */

static int emb_dim(const kc_layer *l) { return l->units; }

static kc_status embedding_build(kc_layer *l) {
    char buf[64];
    if (l->input_dim <= 0 || l->input_dim > KC_MAX_VOCAB || l->units <= 0)
        return kc_err(KC_EINVAL,
                      "layer %s (Embedding): input_dim must be in [1, 2^24] and output_dim "
                      "positive, got %d and %d", l->name, l->input_dim, l->units);
    if (l->in_shape.rank + 1 > KC_MAX_RANK)
        return kc_err(KC_EINVAL, "layer %s (Embedding): input shape %s leaves no room for the "
                                 "embedding axis (rank %d at most)",
                      l->name, kc_shape_str(l->in_shape, buf, sizeof buf), KC_MAX_RANK - 1);
    if (l->input_length > 0 && l->in_shape.dims[l->in_shape.rank - 1] != KC_NONE &&
        (l->in_shape.rank != 1 || l->in_shape.dims[0] != l->input_length))
        return kc_err(KC_EINVAL, "layer %s (Embedding): input_length is %d but the input's shape "
                                 "is %s", l->name, l->input_length,
                      kc_shape_str(l->in_shape, buf, sizeof buf));
    l->out_shape = l->in_shape;
    l->out_shape.dims[l->in_shape.rank] = l->units;
    l->out_shape.rank = l->in_shape.rank + 1;
    l->kernel_size = (int64_t)l->input_dim * l->units;
    l->param_count = l->kernel_size;
    l->no_bias = 1;
    char where[96];
    snprintf(where, sizeof where, "layer %s (Embedding): embeddings_initializer", l->name);
    kc_status st = kc_init_check(&l->kernel_init, KC_INIT_RANDOM_UNIFORM, 2,
                                 (int64_t[]){l->input_dim, l->units}, where);
    snprintf(where, sizeof where, "layer %s (Embedding): embeddings_regularizer", l->name);
    if (!st) st = kc_regularizer_check(&l->kernel_reg, where);
    snprintf(where, sizeof where, "layer %s (Embedding): activity_regularizer", l->name);
    if (!st) st = kc_regularizer_check(&l->activity_reg, where);
    return st;
}

static void embedding_init(kc_layer *l, kc_rng *rng) {
    kc_status st = kc_init_fill(&l->kernel_init, KC_INIT_RANDOM_UNIFORM, l->kernel, 2,
                                (int64_t[]){l->input_dim, l->units}, rng);
    if (st) kc_err_prefix(st, "layer %s (Embedding): embeddings_initializer", l->name);
    l->bias = l->dbias = NULL;
}

/* the id a value stands for (Keras casts to int32: toward zero), or -1 when it is none */
static int64_t id_of(const kc_layer *l, float v) {
    if (!(v > -1.0f && v < (float)l->input_dim)) return -1; /* NaN too */
    int64_t id = (int64_t)v;
    return id < l->input_dim ? id : -1;
}

static kc_status embedding_check(const kc_layer *l, const float *in, int batch,
                                 const int64_t *sample, int64_t first, const char *what) {
    int64_t per = l->in_size;
    for (int64_t i = 0; i < (int64_t)batch * per; i++)
        if (id_of(l, in[i]) < 0)
            return kc_err(KC_EINVAL,
                          "%s: layer %s (Embedding): token id %g at sample %lld, position %lld "
                          "is out of range [0, %d) (input_dim %d)",
                          what, l->name, (double)in[i],
                          (long long)(sample ? sample[i / per] : first + i / per),
                          (long long)(i % per), l->input_dim, l->input_dim);
    return KC_OK;
}

static int64_t embedding_scratch(const kc_layer *l, int batch, int parts) {
    /* the mask's bytes (mask_zero), then a byte per vocabulary row (the rows a step used) */
    int64_t bytes = (int64_t)batch * l->in_size + l->input_dim;
    return (bytes + 3) / 4 + 1;
}

static uint8_t *rows_used(const kc_layer *l, int batch) {
    return (uint8_t *)l->scratch + (int64_t)batch * l->in_size;
}

static void embedding_forward(kc_layer *l, const float *in, float *out, int batch,
                              const kc_forward_ctx *ctx) {
    int d = emb_dim(l);
    int64_t n = (int64_t)batch * l->in_size;
    uint8_t *mask = (uint8_t *)l->scratch;
    for (int64_t r = 0; r < n; r++) {
        int64_t id = id_of(l, in[r]);
        /* check_input refused bad ids of model inputs; ids computed in the model give zeros */
        if (id >= 0) memcpy(out + r * d, l->kernel + id * d, sizeof(float) * (size_t)d);
        else memset(out + r * d, 0, sizeof(float) * (size_t)d);
        if (l->mask_zero) mask[r] = id != 0;
    }
}

static void embedding_backward(kc_layer *l, const float *in, const float *out, float *dout,
                               float *din, int batch, int dout_is_preactivation,
                               const kc_forward_ctx *ctx) {
    int d = emb_dim(l);
    int64_t n = (int64_t)batch * l->in_size;
    if (din) memset(din, 0, sizeof(float) * (size_t)n); /* ids have no gradient */
    if (ctx->opt && l->trainable_count) {
        /* a step that leaves untouched rows as they are: the used rows only */
        uint8_t *used = rows_used(l, batch);
        memset(used, 0, (size_t)l->input_dim);
        for (int64_t r = 0; r < n; r++) {
            int64_t id = id_of(l, in[r]);
            if (id < 0) continue;
            float *g = l->dkernel + id * d;
            if (!used[id]) {
                used[id] = 1;
                memset(g, 0, sizeof(float) * (size_t)d);
            }
            for (int j = 0; j < d; j++) g[j] += dout[r * d + j];
        }
        for (int64_t r = 0; r < n; r++) {
            int64_t id = id_of(l, in[r]);
            if (id < 0 || used[id] != 1) continue;
            used[id] = 2;
            kc_optimizer_apply(ctx->opt, l->kernel + id * d, l->dkernel + id * d,
                               l->param_offset + id * d, d);
        }
        return;
    }
    memset(l->dkernel, 0, sizeof(float) * (size_t)l->kernel_size);
    for (int64_t r = 0; r < n; r++) {
        int64_t id = id_of(l, in[r]);
        if (id < 0) continue;
        float *g = l->dkernel + id * d;
        for (int j = 0; j < d; j++) g[j] += dout[r * d + j];
    }
}

/* the mask the forward left in the scratch: id != 0 */
static int embedding_mask(const kc_layer *l, const uint8_t *in_mask, uint8_t *out_mask,
                          int batch) {
    if (!l->mask_zero) return 0;
    if (out_mask) memcpy(out_mask, l->scratch, (size_t)((int64_t)batch * l->in_size));
    return 1;
}

/* input_dim, output_dim, embeddings_initializer, embeddings_regularizer, activity_regularizer,
 * mask_zero; tf.keras 2's input_length; Keras 3's embeddings_constraint, lora_rank and
 * quantization_config must be null */
static kc_status embedding_from(const cJSON *cfg, const char *where, kc_layer **out) {
    int input_dim, output_dim;
    kc_status st = kc_cfg_count(cfg, "input_dim", where, &input_dim);
    if (!st) st = kc_cfg_count(cfg, "output_dim", where, &output_dim);
    static const char *const nulls[] = {"embeddings_constraint", "lora_rank",
                                        "quantization_config"};
    if (!st) st = kc_cfg_must_be_null(cfg, where, nulls, 3);
    if (st) return st;
    kc_embedding_opts o = {0};
    kc_regularizer activity = {0};
    st = kc_initializer_from_json(kc_cfg_field(cfg, "embeddings_initializer"), where,
                                  "embeddings_initializer", &o.embeddings_initializer);
    if (!st) st = kc_regularizer_from_json(kc_cfg_field(cfg, "embeddings_regularizer"), where,
                                           "embeddings_regularizer", &o.embeddings_regularizer);
    if (!st) st = kc_regularizer_from_json(kc_cfg_field(cfg, "activity_regularizer"), where,
                                           "activity_regularizer", &activity);
    if (st) return st;
    const cJSON *mz = kc_cfg_field(cfg, "mask_zero");
    if (mz && !cJSON_IsBool(mz) && !cJSON_IsNull(mz))
        return kc_err(KC_EFORMAT, "%s: mask_zero is not true or false", where);
    o.mask_zero = cJSON_IsTrue(mz);
    const cJSON *il = kc_cfg_field(cfg, "input_length");
    if (il && !cJSON_IsNull(il)) {
        if (!cJSON_IsNumber(il) || il->valuedouble != floor(il->valuedouble) ||
            il->valuedouble < 1 || il->valuedouble > 1e8)
            return kc_err(KC_EFORMAT, "%s: input_length is not a positive whole number", where);
        o.input_length = (int)il->valuedouble;
    }
    kc_layer *l = kc_embedding(input_dim, output_dim, &o);
    if (l) l->activity_reg = activity;
    return kc_cfg_made(l, where, out);
}

/* Keras 3's fields; tf.keras 2 files add input_length (config.c writes legacy configs through
 * the same function: input_length is written when set, which Keras 3 refuses, so only then) */
static kc_status embedding_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "input_dim", l->input_dim);
    cJSON_AddNumberToObject(cfg, "output_dim", l->units);
    cJSON_AddItemToObject(cfg, "embeddings_initializer",
                          kc_initializer_to_json(&l->kernel_init, KC_INIT_RANDOM_UNIFORM));
    cJSON_AddItemToObject(cfg, "embeddings_regularizer", kc_regularizer_to_json(&l->kernel_reg));
    cJSON_AddItemToObject(cfg, "activity_regularizer", kc_regularizer_to_json(&l->activity_reg));
    cJSON_AddNullToObject(cfg, "embeddings_constraint");
    cJSON_AddBoolToObject(cfg, "mask_zero", l->mask_zero);
    if (l->input_length) cJSON_AddNumberToObject(cfg, "input_length", l->input_length);
    return KC_OK;
}

static int embedding_weights(const kc_layer *l, kc_weight_desc *w) {
    w[0] = (kc_weight_desc){"embeddings", 2, {l->input_dim, l->units}, 0, l->kernel_size, 1};
    return 1;
}

#define EMBEDDING_OPS(masking)                                                               \
    {.type_name = "Embedding",                                                               \
     .base_name = "embedding",                                                               \
     .build = embedding_build,                                                               \
     .init = embedding_init,                                                                 \
     .forward = embedding_forward,                                                           \
     .backward = embedding_backward,                                                         \
     .scratch_size = embedding_scratch,                                                      \
     .updates_weights = 1,                                                                   \
     .supports_masking = masking,                                                            \
     .compute_mask = embedding_mask,                                                         \
     .allows_none = 1,                                                                       \
     .check_input = embedding_check,                                                         \
     .io = {embedding_from, embedding_to, embedding_weights}}
/* Keras: supports_masking = mask_zero (an Embedding without it drops a mask it is given) */
const kc_layer_ops kc_embedding_ops = EMBEDDING_OPS(0);
static const kc_layer_ops embedding_mask_zero_ops = EMBEDDING_OPS(1);

kc_layer *kc_embedding(int input_dim, int output_dim, const kc_embedding_opts *opts) {
    kc_embedding_opts o = opts ? *opts : (kc_embedding_opts){0};
    kc_layer *l = kc_layer_new(o.mask_zero ? &embedding_mask_zero_ops : &kc_embedding_ops);
    if (!l) return NULL;
    l->input_dim = input_dim;
    l->units = output_dim;
    l->mask_zero = o.mask_zero != 0;
    l->input_length = o.input_length > 0 ? o.input_length : 0;
    l->kernel_init = o.embeddings_initializer;
    l->kernel_reg = o.embeddings_regularizer;
    l->no_bias = 1;
    return l;
}

/* ---- Masking ---- */

static kc_status masking_build(kc_layer *l) {
    if (l->in_shape.rank < 1)
        return kc_err(KC_EINVAL, "layer %s (Masking) needs an input with an axis", l->name);
    if (!isfinite(l->act_param[0]))
        return kc_err(KC_EINVAL, "layer %s (Masking): mask_value must be finite", l->name);
    return kc_same_shape_build(l);
}

static int64_t masking_features(const kc_layer *l) {
    return l->in_shape.dims[l->in_shape.rank - 1];
}

static int64_t masking_scratch(const kc_layer *l, int batch, int parts) {
    return ((int64_t)batch * (l->in_size / masking_features(l)) + 3) / 4 + 1;
}

/* row r is kept: some value differs from mask_value */
static int kept(const kc_layer *l, const float *row, int64_t f) {
    for (int64_t j = 0; j < f; j++)
        if (row[j] != l->act_param[0]) return 1;
    return 0;
}

static void masking_forward(kc_layer *l, const float *in, float *out, int batch,
                            const kc_forward_ctx *ctx) {
    int64_t f = masking_features(l), rows = (int64_t)batch * (l->in_size / f);
    uint8_t *mask = (uint8_t *)l->scratch;
    for (int64_t r = 0; r < rows; r++) {
        mask[r] = (uint8_t)kept(l, in + r * f, f);
        if (mask[r]) memcpy(out + r * f, in + r * f, sizeof(float) * (size_t)f);
        else memset(out + r * f, 0, sizeof(float) * (size_t)f);
    }
}

static void masking_backward(kc_layer *l, const float *in, const float *out, float *dout,
                             float *din, int batch, int dout_is_preactivation,
                             const kc_forward_ctx *ctx) {
    if (!din) return;
    int64_t f = masking_features(l), rows = (int64_t)batch * (l->in_size / f);
    for (int64_t r = 0; r < rows; r++) {
        if (kept(l, in + r * f, f)) memcpy(din + r * f, dout + r * f, sizeof(float) * (size_t)f);
        else memset(din + r * f, 0, sizeof(float) * (size_t)f);
    }
}

static int masking_mask(const kc_layer *l, const uint8_t *in_mask, uint8_t *out_mask,
                        int batch) {
    if (out_mask)
        memcpy(out_mask, l->scratch, (size_t)((int64_t)batch * (l->in_size / masking_features(l))));
    return 1;
}

static kc_status masking_from(const cJSON *cfg, const char *where, kc_layer **out) {
    double v = 0.0;
    int r = kc_cfg_num(cfg, "mask_value", &v);
    if (r < 0 || !isfinite(v))
        return kc_err(KC_EFORMAT, "%s: mask_value is not a finite number (kerac takes a scalar)",
                      where);
    return kc_cfg_made(kc_masking((float)v), where, out);
}

static kc_status masking_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "mask_value", kc_json_float(l->act_param[0]));
    return KC_OK;
}

const kc_layer_ops kc_masking_ops = {.type_name = "Masking",
                                     .base_name = "masking",
                                     .build = masking_build,
                                     .init = kc_no_init,
                                     .forward = masking_forward,
                                     .backward = masking_backward,
                                     .scratch_size = masking_scratch,
                                     .supports_masking = 1,
                                     .compute_mask = masking_mask,
                                     .allows_none = 1,
                                     .io = {masking_from, masking_to}};

kc_layer *kc_masking(float mask_value) {
    kc_layer *l = kc_layer_new(&kc_masking_ops);
    if (l) l->act_param[0] = mask_value;
    return l;
}
