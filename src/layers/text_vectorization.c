/* text_vectorization.c: keras.layers.TextVectorization inside a model. The layer holds a
 * kc_text_vectorization (src/data/text.c) and stands between a string model input and the
 * rest of the graph (a legacy .h5 keeps the vocabulary in the config instead). It is a
 * preprocessing stage: train.c's load_batch runs the vectorizer on
 * the batch's texts and writes its output into this layer's output buffer, so forward does
 * nothing and no gradient flows through it. Its vocabulary and idf weights travel in the
 * .keras file's assets/ folder and variables (src/io/tv_assets.c). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../data/text_internal.h"
#include "../io/io.h"
#include "layer.h"

static int64_t tv_width(const kc_layer *l) {
    kc_text_vectorization_opts o;
    kc_text_vectorization_options(l->tv, &o);
    if (!strcmp(o.output_mode, "int")) return o.output_sequence_length;
    if (o.pad_to_max_tokens) return o.max_tokens;
    int64_t n = kc_text_vectorization_vocabulary(l->tv, NULL);
    return n ? n : l->tv_depth;
}

static kc_status tv_build(kc_layer *l) {
    char a[64];
    if (l->in_shape.rank != 1 || l->in_shape.dims[0] != 1)
        return kc_err(KC_EINVAL, "layer %s (TextVectorization): its input must be a string "
                                 "model input of shape (1,), found %s", l->name,
                      kc_shape_str(l->in_shape, a, sizeof a));
    kc_text_vectorization_opts o;
    kc_text_vectorization_options(l->tv, &o);
    if (!strcmp(o.output_mode, "int") && !o.output_sequence_length)
        return kc_err(KC_EINVAL, "layer %s (TextVectorization): inside a model kerac needs "
                                 "output_sequence_length in \"int\" mode (a fixed length)",
                      l->name);
    int64_t w = tv_width(l);
    if (w <= 0)
        return kc_err(KC_ESTATE, "layer %s (TextVectorization): set its vocabulary (adapt or "
                                 "set_vocabulary) before building the model", l->name);
    if (l->tv_depth && strcmp(o.output_mode, "int") && !o.pad_to_max_tokens &&
        w != l->tv_depth)
        return kc_err(KC_EINVAL, "layer %s (TextVectorization): vocabulary_size %lld, but its "
                                 "vocabulary has %lld entries", l->name, (long long)l->tv_depth,
                      (long long)w);
    l->tv_depth = strcmp(o.output_mode, "int") ? w : 0;
    l->out_shape = kc_shape1((int)w);
    l->param_count = 0;
    return KC_OK;
}

static void tv_init(kc_layer *l, kc_rng *rng) {
    (void)l;
    (void)rng;
}

/* the engine has already written the vectorized batch into out (train.c's load_batch) */
static void tv_forward(kc_layer *l, const float *in, float *out, int batch,
                       const kc_forward_ctx *ctx) {
    (void)l, (void)in, (void)out, (void)batch, (void)ctx;
}

static void tv_backward(kc_layer *l, const float *in, const float *out, float *dout, float *din,
                        int batch, int pre, const kc_forward_ctx *ctx) {
    (void)in, (void)out, (void)dout, (void)pre, (void)ctx;
    if (din) memset(din, 0, sizeof(float) * (size_t)batch * (size_t)l->in_size);
}

static void tv_destroy(kc_layer *l) {
    kc_text_vectorization_free(l->tv);
    l->tv = NULL;
}

static const char *str_or(const cJSON *cfg, const char *key, const char *dflt, int *bad) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v)) return dflt;
    if (cJSON_IsString(v)) return v->valuestring;
    *bad = 1;
    return dflt;
}

static int64_t int_or(const cJSON *cfg, const char *key, int *bad) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15) return (int64_t)v->valuedouble;
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1 && cJSON_IsNumber(v->child))
        return (int64_t)v->child->valuedouble; /* ngrams as a tuple: (n,) */
    *bad = 1;
    return 0;
}

static kc_status tv_from(const cJSON *cfg, const char *where, kc_layer **out) {
    int bad = 0;
    kc_text_vectorization_opts o = {
        .max_tokens = int_or(cfg, "max_tokens", &bad),
        .standardize = str_or(cfg, "standardize", NULL, &bad),
        .split = str_or(cfg, "split", NULL, &bad),
        .ngrams = (int)int_or(cfg, "ngrams", &bad),
        .output_mode = str_or(cfg, "output_mode", NULL, &bad),
        .output_sequence_length = int_or(cfg, "output_sequence_length", &bad),
        .pad_to_max_tokens = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "pad_to_max_tokens")),
    };
    if (bad)
        return kc_err(KC_EFORMAT, "%s: TextVectorization: a custom standardize or split "
                                  "callable, or a malformed option, is not supported", where);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "sparse")) ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "ragged")))
        return kc_err(KC_EFORMAT, "%s: TextVectorization: sparse and ragged outputs are not "
                                  "supported", where);
    kc_text_vectorization *tv = NULL;
    kc_status st = kc_text_vectorization_new(&o, &tv);
    if (st) return kc_err_prefix(st, "%s", where);
    const cJSON *voc = cJSON_GetObjectItemCaseSensitive(cfg, "vocabulary");
    if (cJSON_IsArray(voc)) { /* the vocabulary given in the config (Keras keeps it there) */
        int n = cJSON_GetArraySize(voc), i = 0;
        const char **toks = calloc((size_t)(n ? n : 1), sizeof *toks);
        float *idf = NULL;
        const cJSON *iw = cJSON_GetObjectItemCaseSensitive(cfg, "idf_weights");
        if (cJSON_IsArray(iw)) idf = calloc((size_t)(n ? n : 1), sizeof *idf);
        st = toks && (idf || !cJSON_IsArray(iw)) ? KC_OK : kc_err(KC_ENOMEM, "out of memory");
        const cJSON *e;
        cJSON_ArrayForEach(e, voc) {
            if (!st && !cJSON_IsString(e)) st = kc_err(KC_EFORMAT, "%s: TextVectorization: "
                                                       "vocabulary entry %d is not a string", where, i);
            if (!st) toks[i++] = e->valuestring;
        }
        if (!st && idf) {
            if (cJSON_GetArraySize(iw) != n)
                st = kc_err(KC_EFORMAT, "%s: TextVectorization: %d idf_weights for %d tokens",
                            where, cJSON_GetArraySize(iw), n);
            i = 0;
            cJSON_ArrayForEach(e, iw) if (!st && i < n) idf[i++] = (float)e->valuedouble;
        }
        if (!st) st = kc_text_vectorization_set_vocabulary(tv, toks, n, idf);
        free(toks);
        free(idf);
    }
    kc_layer *l = st ? NULL : kc_text_vectorization_layer(tv);
    if (!st && !l) st = KC_ENOMEM;
    if (st) {
        kc_text_vectorization_free(tv);
        return kc_err_prefix(st, "%s", where);
    }
    int vbad = 0;
    l->tv_depth = int_or(cfg, "vocabulary_size", &vbad);
    *out = l;
    return KC_OK;
}

static kc_status tv_to(const kc_layer *l, cJSON *cfg) {
    kc_text_vectorization_opts o;
    kc_text_vectorization_options(l->tv, &o);
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "dtype", cJSON_CreateString("string"));
#define NUM_OR_NULL(k, v) \
    cJSON_AddItemToObject(cfg, k, (v) ? cJSON_CreateNumber((double)(v)) : cJSON_CreateNull())
    NUM_OR_NULL("max_tokens", o.max_tokens);
    cJSON_AddStringToObject(cfg, "standardize", o.standardize);
    cJSON_AddStringToObject(cfg, "split", o.split);
    NUM_OR_NULL("ngrams", o.ngrams);
    cJSON_AddStringToObject(cfg, "output_mode", o.output_mode);
    NUM_OR_NULL("output_sequence_length", o.output_sequence_length);
#undef NUM_OR_NULL
    cJSON_AddBoolToObject(cfg, "pad_to_max_tokens", o.pad_to_max_tokens);
    cJSON_AddFalseToObject(cfg, "sparse");
    cJSON_AddFalseToObject(cfg, "ragged");
    if (kc_config_writing_legacy()) {
        /* a legacy .h5 has no assets: the vocabulary (and idf weights) in the config, which
         * Keras's from_config takes as set_vocabulary's arguments */
        const char *const *toks;
        int64_t nv = kc_text_vectorization_vocabulary(l->tv, &toks);
        cJSON *voc = cJSON_AddArrayToObject(cfg, "vocabulary");
        for (int64_t i = 0; i < nv; i++) cJSON_AddItemToArray(voc, cJSON_CreateString(toks[i]));
        const float *idf = kc_text_vectorization_idf_weights(l->tv);
        if (idf) {
            cJSON *iw = cJSON_AddArrayToObject(cfg, "idf_weights");
            for (int64_t i = 0; i < nv; i++)
                cJSON_AddItemToArray(iw, cJSON_CreateNumber(kc_json_float(idf[i])));
        } else {
            cJSON_AddNullToObject(cfg, "idf_weights");
        }
    } else {
        cJSON_AddNullToObject(cfg, "vocabulary"); /* in the assets, as Keras after adapt */
        cJSON_AddNullToObject(cfg, "idf_weights");
    }
    cJSON_AddStringToObject(cfg, "encoding", "utf-8");
    cJSON_AddNumberToObject(cfg, "vocabulary_size",
                            (double)kc_text_vectorization_vocabulary(l->tv, NULL));
    return KC_OK;
}

const kc_layer_ops kc_text_vectorization_ops = {
    .type_name = "TextVectorization",
    .base_name = "text_vectorization",
    .build = tv_build,
    .init = tv_init,
    .forward = tv_forward,
    .backward = tv_backward,
    .destroy = tv_destroy,
    .io = {tv_from, tv_to}};

kc_layer *kc_text_vectorization_layer(kc_text_vectorization *tv) {
    if (!tv) {
        kc_err(KC_EINVAL, "kc_text_vectorization_layer: the vectorizer is NULL");
        return NULL;
    }
    kc_layer *l = kc_layer_new(&kc_text_vectorization_ops);
    if (l) l->tv = tv;
    return l;
}

kc_text_vectorization *kc_layer_text_vectorization(kc_layer *layer) {
    return layer && layer->ops == &kc_text_vectorization_ops ? layer->tv : NULL;
}
