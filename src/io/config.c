/* config.c: a Sequential model as Keras's config JSON and back (model.to_json(), a .keras
 * file's config.json, a legacy file's model_config), and the compile settings
 * (compile_config, legacy training_config). Layers go through their classes' io (src/layers/),
 * optimizers through optimizer_config.c's table. */
#include "io.h"
#include "../model/model.h"
#include "../layers/custom.h"
#include "../metrics.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the loss in compile_config as Keras 3 writes it: its function's name when every option is
 * the default, else its class config; NULL (nothing written) for none */
static cJSON *loss_json(const kc_loss_spec *sp, kc_config_style style) {
    const kc_loss_info *info = kc_loss_info_of(sp->kind);
    if (!info) return NULL;
    kc_loss_spec def, s = *sp;
    kc_loss_spec bare = {.kind = sp->kind};
    if (kc_loss_spec_resolve(&bare, &def, "loss")) return NULL;
    if (kc_loss_spec_resolve(sp, &s, "loss")) s = *sp;
    if (!memcmp(&s, &def, sizeof s)) return cJSON_CreateString(info->name);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", info->config_name);
    cJSON_AddStringToObject(c, "reduction", kc_reduction_name(s.reduction));
    unsigned o = info->opts;
    if (o & KC_LOSS_OPT_LOGITS) cJSON_AddBoolToObject(c, "from_logits", s.from_logits);
    if (o & KC_LOSS_OPT_IGNORE) {
        if (s.has_ignore_class) cJSON_AddNumberToObject(c, "ignore_class", s.ignore_class);
        else cJSON_AddNullToObject(c, "ignore_class");
    }
    if (o & KC_LOSS_OPT_SMOOTHING)
        cJSON_AddNumberToObject(c, "label_smoothing", kc_json_float(s.label_smoothing));
    if (o & KC_LOSS_OPT_AXIS) cJSON_AddNumberToObject(c, "axis", -1);
    if (o & KC_LOSS_OPT_BALANCING)
        cJSON_AddBoolToObject(c, "apply_class_balancing", s.apply_class_balancing);
    if (o & KC_LOSS_OPT_FOCAL) {
        cJSON_AddNumberToObject(c, "alpha", kc_json_float(s.alpha));
        cJSON_AddNumberToObject(c, "gamma", kc_json_float(s.gamma));
    }
    if (o & KC_LOSS_OPT_DELTA) cJSON_AddNumberToObject(c, "delta", kc_json_float(s.delta));
    return kc_cfg_wrap("keras.losses", info->class_name, c, style);
}

cJSON *kc_cfg_dtype_policy(kc_config_style style) {
    if (style == KC_CONFIG_LEGACY) return cJSON_CreateString("float32");
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "module", "keras");
    cJSON_AddStringToObject(d, "class_name", "DTypePolicy");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(d, "config"), "name", "float32");
    cJSON_AddNullToObject(d, "registered_name");
    return d;
}

static _Thread_local int cfg_batch;
void kc_cfg_set_batch(int batch) { cfg_batch = batch; }

int kc_cfg_batch_dim(const cJSON *a) {
    const cJSON *d = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    return cJSON_IsNumber(d) && d->valuedouble >= 1 && d->valuedouble <= 1e9 &&
                   d->valuedouble == floor(d->valuedouble)
               ? (int)d->valuedouble
               : 0;
}

cJSON *kc_cfg_batch_shape(kc_shape s) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cfg_batch > 0 ? cJSON_CreateNumber(cfg_batch) : cJSON_CreateNull());
    for (int i = 0; i < s.rank; i++)
        cJSON_AddItemToArray(a, s.dims[i] == KC_NONE ? cJSON_CreateNull()
                                                     : cJSON_CreateNumber(s.dims[i]));
    return a;
}

/* {"module": module, "class_name": cls, "config": config, "registered_name": null} */
cJSON *kc_cfg_wrap(const char *module, const char *cls, cJSON *config, kc_config_style style) {
    cJSON *o = cJSON_CreateObject();
    if (style == KC_CONFIG_KERAS3) cJSON_AddStringToObject(o, "module", module);
    cJSON_AddStringToObject(o, "class_name", cls);
    cJSON_AddItemToObject(o, "config", config);
    if (style == KC_CONFIG_KERAS3) cJSON_AddNullToObject(o, "registered_name");
    return o;
}

/* a registered custom class, as Keras writes one: Keras 3 {"module": null, "class_name":
 * "Foo", "config", "registered_name": "Custom>Foo"}, legacy {"class_name": "Custom>Foo", ...} */

/* lossy: set to 1 when the legacy form drops an option (kerac_optimizer_config keeps it) */
static cJSON *optimizer_config(const kc_optimizer *opt, kc_config_style style, int *lossy) {
    const kc_optimizer_io *io = kc_optimizer_io_of(opt);
    if (!io) return NULL;
    cJSON *cfg = cJSON_CreateObject();
    io->to_config(opt, cfg);
    if (style == KC_CONFIG_LEGACY) {
        /* tf.keras 2 rebuilds a legacy .h5's optimizer with its legacy optimizer classes,
         * which refuse Keras 3's newer arguments; they take clipnorm, clipvalue,
         * global_clipnorm, decay and a schedule as {"class_name", "config"} */
        const char *newer[] = {"weight_decay", "use_ema", "ema_momentum",
                               "ema_overwrite_frequency", "loss_scale_factor",
                               "gradient_accumulation_steps", "clipnorm", "global_clipnorm",
                               "clipvalue"};
        for (size_t i = 0; i < sizeof newer / sizeof *newer; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, newer[i]);
            if (i == 0 && opt->adamw) continue; /* AdamW's weight_decay is its own */
            if (i >= 6 && v && !cJSON_IsNull(v)) continue;
            if ((i == 0 && v && !cJSON_IsNull(v)) || (i == 1 && cJSON_IsTrue(v))) *lossy = 1;
            cJSON_DeleteItemFromObjectCaseSensitive(cfg, newer[i]);
        }
        cJSON_ReplaceItemInObjectCaseSensitive(cfg, "name", cJSON_CreateString(io->class_name));
        if (!cJSON_GetObjectItemCaseSensitive(cfg, "decay")) cJSON_AddNumberToObject(cfg, "decay", 0.0);
        cJSON *lr = cJSON_GetObjectItemCaseSensitive(cfg, "learning_rate");
        if (cJSON_IsObject(lr)) {
            cJSON_DeleteItemFromObjectCaseSensitive(lr, "module");
            cJSON_DeleteItemFromObjectCaseSensitive(lr, "registered_name");
        }
    }
    return kc_cfg_wrap("keras.optimizers", io->class_name, cfg, style);
}

/* ---- metrics ---- */

static cJSON *null_or_int(int has, int v) { return has ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

/* a Python float for options Keras checks with isinstance(x, float) (FBetaScore's beta and
 * threshold): 2 is written 2.0 */
static void add_py_float(cJSON *c, const char *key, float v) {
    char buf[48];
    double d = kc_json_float(v);
    for (int prec = 1; prec <= 17; prec++) { /* the shortest digits that read back as d */
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    cJSON_AddRawToObject(c, key, buf);
}

/* a metric in compile_config as Keras writes it: a string where Keras reads that string back as
 * this metric with these options (Keras 3's strings: a class's name, its snake case, the
 * aliases; a legacy file: "accuracy" and "acc" only, as tf.keras 2 reads other names as its
 * functions), else the class's config. NULL: left out (a loss function without a metric class
 * has no form a legacy file's readers take). */
static cJSON *metric_json(const kc_metric_state *st, kc_config_style style) {
    const kc_metric_spec *s = &st->spec;
    const kc_metric_info *info = kc_metric_info_of(s->kind);
    if (!info) return NULL;
    int k3 = style == KC_CONFIG_KERAS3;
    if (s->kind == KC_METRIC_ACCURACY) {
        /* a .keras file: the string, where Keras 3 reads it as the same accuracy; else
         * (another name, or a binary crossentropy over several columns, which Keras 3 gives
         * categorical accuracy) the class it runs as, named as it is */
        kc_metric k = kc_metric_accuracy_kind(st->loss_kind, st->cols, 1);
        if (k3 && kc_metric_keras3_string(s->kind, st->name) && kc_metric_info_of(k) == st->info)
            return cJSON_CreateString(st->name);
        /* a legacy file: the class, always (tf.keras 2 does not resolve "accuracy" from the
         * loss as kerac writes it, and gives categorical accuracy to sparse labels) */
        info = st->info;
    } else if (k3 && kc_metric_keras3_string(s->kind, st->name) && kc_metric_spec_default(s)) {
        return cJSON_CreateString(st->name);
    }
    if (!info->class_name) {
        if (!k3) {
            kc_warn("saving: metric %s is a loss function without a Keras metric class; a legacy "
                    ".h5 file cannot hold it (Keras 3 and tf.keras 2 refuse its name there), so "
                    "it is left out (a .keras file keeps it)", st->key);
            return NULL;
        }
        /* Keras 3 serializes a function given as a metric this way, and reads it back */
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "module", "builtins");
        cJSON_AddStringToObject(f, "class_name", "function");
        cJSON_AddStringToObject(f, "config", info->name);
        cJSON_AddStringToObject(f, "registered_name", "function");
        return f;
    }
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", st->name);
    cJSON_AddStringToObject(c, "dtype", "float32");
    kc_metric kind = info - kc_metric_info_of(KC_METRIC_ACCURACY) + KC_METRIC_ACCURACY;
    switch (kind) {
    case KC_METRIC_BINARY_ACCURACY:
        cJSON_AddNumberToObject(c, "threshold", kc_json_float(s->has_threshold ? s->threshold : 0.5f));
        break;
    case KC_METRIC_TOP_K_CATEGORICAL_ACCURACY:
    case KC_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY: cJSON_AddNumberToObject(c, "k", s->k); break;
    case KC_METRIC_BINARY_CROSSENTROPY:
    case KC_METRIC_CATEGORICAL_CROSSENTROPY:
        cJSON_AddBoolToObject(c, "from_logits", s->from_logits);
        cJSON_AddNumberToObject(c, "label_smoothing", kc_json_float(s->label_smoothing));
        if (kind == KC_METRIC_CATEGORICAL_CROSSENTROPY) cJSON_AddNumberToObject(c, "axis", -1);
        break;
    case KC_METRIC_SPARSE_CATEGORICAL_CROSSENTROPY:
        cJSON_AddBoolToObject(c, "from_logits", s->from_logits);
        if (k3) cJSON_AddNullToObject(c, "ignore_class");
        cJSON_AddNumberToObject(c, "axis", -1);
        break;
    case KC_METRIC_AUC: {
        static const char *const curves[] = {"ROC", "PR", "PRGAIN"};
        static const char *const sums[] = {"interpolation", "majoring", "minoring"};
        cJSON_AddNumberToObject(c, "num_thresholds", s->num_thresholds);
        cJSON_AddStringToObject(c, "curve", curves[s->curve]);
        cJSON_AddStringToObject(c, "summation_method", sums[s->summation_method]);
        cJSON_AddFalseToObject(c, "multi_label");
        cJSON_AddNullToObject(c, "num_labels");
        cJSON_AddNullToObject(c, "label_weights");
        cJSON_AddBoolToObject(c, "from_logits", s->from_logits);
        break;
    }
    case KC_METRIC_PRECISION:
    case KC_METRIC_RECALL:
        if (s->has_threshold) cJSON_AddNumberToObject(c, "thresholds", kc_json_float(s->threshold));
        else cJSON_AddNullToObject(c, "thresholds");
        cJSON_AddItemToObject(c, "top_k", null_or_int(s->top_k != 0, s->top_k));
        cJSON_AddItemToObject(c, "class_id", null_or_int(s->has_class_id, s->class_id));
        break;
    case KC_METRIC_F1_SCORE:
    case KC_METRIC_FBETA_SCORE: {
        static const char *const avg[] = {NULL, "micro", "macro", "weighted"};
        cJSON_AddStringToObject(c, "average", avg[s->average]);
        if (kind == KC_METRIC_FBETA_SCORE) add_py_float(c, "beta", s->beta);
        if (s->has_threshold) add_py_float(c, "threshold", s->threshold);
        else cJSON_AddNullToObject(c, "threshold");
        break;
    }
    default: break;
    }
    return kc_cfg_wrap("keras.metrics", info->class_name, c, style);
}

/* output o's metrics (weighted or not) as a list; NULL when it has none */
static cJSON *metrics_json(const kc_model *m, int o, int weighted, kc_config_style style) {
    cJSON *list = NULL;
    for (int i = 0; i < m->n_mets; i++) {
        const kc_metric_state *st = &m->mets[i];
        if (st->output != o || st->weighted != weighted) continue;
        cJSON *j = metric_json(st, style);
        if (!j) continue;
        if (!list) list = cJSON_CreateArray();
        cJSON_AddItemToArray(list, j);
    }
    return list;
}

/* compile_config's "metrics" or "weighted_metrics": a list for one output, a list per output
 * (an empty one where an output has none) for several, null when there are none */
static void add_metrics(cJSON *c, const char *key, const kc_model *m, int weighted,
                        kc_config_style style) {
    int n_out = m ? m->n_outputs : 1, any = 0;
    if (n_out == 1) {
        cJSON *l = m ? metrics_json(m, 0, weighted, style) : NULL;
        if (l) cJSON_AddItemToObject(c, key, l);
        else if (weighted) cJSON_AddNullToObject(c, key);
        else cJSON_AddArrayToObject(c, key);
        return;
    }
    cJSON *all = cJSON_CreateArray();
    for (int o = 0; o < n_out; o++) {
        cJSON *l = metrics_json(m, o, weighted, style);
        any |= l != NULL;
        cJSON_AddItemToArray(all, l ? l : cJSON_CreateArray());
    }
    if (any) cJSON_AddItemToObject(c, key, all);
    else {
        cJSON_Delete(all);
        cJSON_AddNullToObject(c, key);
    }
}

cJSON *kc_compile_config_build(const kc_model_view *v, kc_config_style style) {
    if (!v->opt) return NULL;
    cJSON *c = cJSON_CreateObject();
    int lossy = 0;
    cJSON *opt = optimizer_config(v->opt, style, &lossy);
    if (!opt) {
        cJSON_Delete(c);
        return NULL;
    }
    if (style == KC_CONFIG_KERAS3) cJSON_AddItemToObject(c, "optimizer", opt);
    const kc_model *m = v->model;
    int n_out = m ? m->n_outputs : 1;
    if (n_out == 1) {
        kc_loss_spec one = m ? m->loss_specs[0] : (kc_loss_spec){.kind = v->loss};
        cJSON_AddItemToObject(c, "loss", loss_json(&one, style));
        cJSON_AddNullToObject(c, "loss_weights");
    } else {
        /* one entry per output, in order, as Keras writes a list */
        cJSON *loss = cJSON_AddArrayToObject(c, "loss");
        cJSON *weights = cJSON_CreateArray();
        int weighted = 0;
        for (int o = 0; o < n_out; o++) {
            cJSON_AddItemToArray(loss, loss_json(&m->loss_specs[o], style));
            cJSON_AddItemToArray(weights, cJSON_CreateNumber(kc_json_float(m->loss_weights[o])));
            weighted |= m->loss_weights[o] != 1.0f;
        }
        if (weighted) cJSON_AddItemToObject(c, "loss_weights", weights);
        else {
            cJSON_Delete(weights);
            cJSON_AddNullToObject(c, "loss_weights");
        }
    }
    add_metrics(c, "metrics", m, 0, style);
    add_metrics(c, "weighted_metrics", m, 1, style);
    cJSON_AddFalseToObject(c, "run_eagerly");
    cJSON_AddNumberToObject(c, "steps_per_execution", 1);
    cJSON_AddFalseToObject(c, "jit_compile");
    if (style == KC_CONFIG_LEGACY) cJSON_AddItemToObject(c, "optimizer_config", opt);
    /* what tf.keras 2's legacy optimizers cannot take (weight decay, EMA) in kerac's own key,
     * which Keras's loaders pass over */
    if (lossy) {
        int none = 0;
        cJSON *full = optimizer_config(v->opt, KC_CONFIG_KERAS3, &none);
        if (full) cJSON_AddItemToObject(c, "kerac_optimizer_config", full);
    }
    return c;
}

/* kc_config_build: model_config.c */

/* ---- reading ---- */

static const cJSON *get(const cJSON *o, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* [null, d1, d2...] into a kc_shape; a null dimension is None (KC_NONE) */
kc_status kc_cfg_parse_batch_shape(const cJSON *a, const char *where, kc_shape *out) {
    int n = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || n < 2 || n > KC_MAX_RANK + 1)
        return kc_err(KC_EFORMAT, "%s: the input shape is not [null, d1, ...] with 1 to %d dims",
                      where, KC_MAX_RANK);
    kc_shape s = {n - 1, {0}};
    for (int i = 1; i < n; i++) {
        const cJSON *d = cJSON_GetArrayItem(a, i);
        if (cJSON_IsNull(d)) {
            s.dims[i - 1] = KC_NONE;
            continue;
        }
        if (!cJSON_IsNumber(d) || d->valuedouble < 1 || d->valuedouble > 1e9 ||
            d->valuedouble != floor(d->valuedouble))
            return kc_err(KC_EFORMAT, "%s: input dimension %d is not a positive whole number "
                                      "or null (None)",
                          where, i);
        s.dims[i - 1] = (int)d->valuedouble;
    }
    *out = s;
    return KC_OK;
}

/* kc_config_model: model_config.c */

/* a loss: a name (function, class or alias), or a class config (Keras 3's {"module",
 * "class_name", "config"} or tf.keras 2's {"class_name", "config"}) with its options */
static kc_status parse_loss(const cJSON *loss, const char *where, kc_loss_spec *out) {
    if (cJSON_IsArray(loss) && cJSON_GetArraySize(loss) == 1) loss = cJSON_GetArrayItem(loss, 0);
    const char *name = NULL;
    const cJSON *c = NULL;
    if (cJSON_IsString(loss)) name = loss->valuestring;
    else if (cJSON_IsObject(loss)) {
        c = get(loss, "config");
        if (cJSON_IsString(get(loss, "class_name"))) name = get(loss, "class_name")->valuestring;
        if (cJSON_IsString(c)) name = c->valuestring; /* a function: {"config": "mse"} */
        if (!cJSON_IsObject(c)) c = NULL;
    }
    if (!name) return kc_err(KC_EFORMAT, "%s: the loss is not a name", where);
    kc_loss_spec s = {.kind = kc_loss_find(name)};
    if (!s.kind) return kc_err(KC_EFORMAT, "%s: unknown loss '%s'", where, name);
    const kc_loss_info *info = kc_loss_info_of(s.kind);
    const cJSON *it;
    if (c) {
        cJSON_ArrayForEach(it, c) {
            const char *k = it->string;
            int num = cJSON_IsNumber(it), boolean = cJSON_IsBool(it);
            unsigned need = 0;
            /* tf.keras 2 writes the function as "fn" */
            if (!strcmp(k, "name") || !strcmp(k, "dtype") || !strcmp(k, "fn")) continue;
            if (!strcmp(k, "reduction")) {
                const char *r = cJSON_IsString(it) ? it->valuestring : "";
                if (!strcmp(r, "sum_over_batch_size") || !strcmp(r, "auto"))
                    s.reduction = KC_REDUCTION_SUM_OVER_BATCH_SIZE;
                else if (!strcmp(r, "sum")) s.reduction = KC_REDUCTION_SUM;
                else if (!strcmp(r, "mean")) s.reduction = KC_REDUCTION_MEAN;
                else if (!strcmp(r, "mean_with_sample_weight"))
                    s.reduction = KC_REDUCTION_MEAN_WITH_SAMPLE_WEIGHT;
                else
                    return kc_err(KC_EFORMAT, "%s: reduction '%s' of %s (kerac trains with "
                                  "sum_over_batch_size, sum, mean or mean_with_sample_weight)", where, r, name);
                continue;
            }
            if (!strcmp(k, "from_logits") && boolean) s.from_logits = cJSON_IsTrue(it), need = KC_LOSS_OPT_LOGITS;
            else if (!strcmp(k, "label_smoothing") && num)
                s.label_smoothing = (float)it->valuedouble, need = KC_LOSS_OPT_SMOOTHING;
            else if (!strcmp(k, "ignore_class") && (num || cJSON_IsNull(it))) {
                s.has_ignore_class = num;
                s.ignore_class = num ? it->valueint : 0;
                need = KC_LOSS_OPT_IGNORE;
            } else if (!strcmp(k, "gamma") && num) s.gamma = (float)it->valuedouble, need = KC_LOSS_OPT_FOCAL;
            else if (!strcmp(k, "alpha") && num) s.alpha = (float)it->valuedouble, need = KC_LOSS_OPT_FOCAL;
            else if (!strcmp(k, "apply_class_balancing") && boolean)
                s.apply_class_balancing = cJSON_IsTrue(it), need = KC_LOSS_OPT_BALANCING;
            else if (!strcmp(k, "delta") && num) s.delta = (float)it->valuedouble, need = KC_LOSS_OPT_DELTA;
            else if (!strcmp(k, "axis") && num) {
                if (it->valueint != -1)
                    return kc_err(KC_EFORMAT, "%s: axis %d of %s (kerac computes losses over the "
                                  "last axis only)", where, it->valueint, name);
                continue;
            } else
                return kc_err(KC_EFORMAT, "%s: %s's option '%s' is not one kerac knows", where,
                              name, k);
            if (num && it->valuedouble == 0.0 &&
                (need == KC_LOSS_OPT_FOCAL || need == KC_LOSS_OPT_DELTA))
                return kc_err(KC_EFORMAT, "%s: %s's %s of 0 (kerac's kc_loss_spec takes 0 as "
                              "Keras's default)", where, name, k);
            if (!(info->opts & need) && !(need == KC_LOSS_OPT_LOGITS && !s.from_logits) &&
                !(need == KC_LOSS_OPT_SMOOTHING && s.label_smoothing == 0.0f))
                return kc_err(KC_EFORMAT, "%s: %s has no option '%s'", where, name, k);
        }
    }
    *out = s;
    return KC_OK;
}

/* ---- reading metrics ---- */

/* a metric class by its exact Keras class name */
static kc_metric metric_class(const char *cls) {
    for (int k = KC_METRIC_ACCURACY; k < KC_METRIC_COUNT; k++) {
        const kc_metric_info *i = kc_metric_info_of((kc_metric)k);
        if (i->class_name && !strcmp(i->class_name, cls)) return (kc_metric)k;
    }
    return KC_METRIC_NONE;
}

/* a metric class's config options into s; an option kerac cannot honour gives a message in
 * why (the metric is then left out) */
static int metric_options(const cJSON *c, kc_metric_spec *s, char *name, size_t name_size,
                          char *why, size_t why_size) {
    const cJSON *it;
    cJSON_ArrayForEach(it, c) {
        const char *k = it->string;
        int num = cJSON_IsNumber(it), null = cJSON_IsNull(it);
        const char *str = cJSON_IsString(it) ? it->valuestring : NULL;
        if (!strcmp(k, "dtype") || !strcmp(k, "fn")) continue;
        if (!strcmp(k, "name") && str) snprintf(name, name_size, "%s", str);
        else if ((!strcmp(k, "threshold") || !strcmp(k, "thresholds")) && (num || null)) {
            s->has_threshold = num;
            s->threshold = num ? (float)it->valuedouble : 0.0f;
        } else if (!strcmp(k, "thresholds") && cJSON_IsArray(it) && cJSON_GetArraySize(it) == 1 &&
                   cJSON_IsNumber(cJSON_GetArrayItem(it, 0))) {
            s->has_threshold = 1;
            s->threshold = (float)cJSON_GetArrayItem(it, 0)->valuedouble;
        } else if (!strcmp(k, "k") && num) s->k = it->valueint;
        else if (!strcmp(k, "top_k") && (num || null)) s->top_k = num ? it->valueint : 0;
        else if (!strcmp(k, "class_id") && (num || null)) {
            s->has_class_id = num;
            s->class_id = num ? it->valueint : 0;
        } else if (!strcmp(k, "num_thresholds") && num) s->num_thresholds = it->valueint;
        else if (!strcmp(k, "curve") && str && (!strcasecmp(str, "roc") || !strcasecmp(str, "pr") ||
                                                 !strcasecmp(str, "prgain")))
            s->curve = !strcasecmp(str, "roc") ? KC_CURVE_ROC : !strcasecmp(str, "pr") ? KC_CURVE_PR
                                                                                      : KC_CURVE_PRGAIN;
        else if (!strcmp(k, "summation_method") && str &&
                 (!strcasecmp(str, "interpolation") || !strcasecmp(str, "majoring") ||
                  !strcasecmp(str, "minoring")))
            s->summation_method = !strcasecmp(str, "interpolation") ? KC_SUMMATION_INTERPOLATION
                                  : !strcasecmp(str, "majoring")    ? KC_SUMMATION_MAJORING
                                                                    : KC_SUMMATION_MINORING;
        else if (!strcmp(k, "multi_label") && cJSON_IsFalse(it)) continue;
        else if ((!strcmp(k, "num_labels") || !strcmp(k, "label_weights") ||
                  !strcmp(k, "ignore_class")) && null)
            continue;
        else if (!strcmp(k, "from_sorted_ids") && cJSON_IsFalse(it)) continue;
        else if (!strcmp(k, "from_logits") && cJSON_IsBool(it)) s->from_logits = cJSON_IsTrue(it);
        else if (!strcmp(k, "label_smoothing") && num) s->label_smoothing = (float)it->valuedouble;
        else if (!strcmp(k, "axis") && num && it->valueint == -1) continue;
        else if (!strcmp(k, "beta") && num) s->beta = (float)it->valuedouble;
        else if (!strcmp(k, "average") && (str || null)) {
            if (null) s->average = KC_AVERAGE_NONE;
            else if (!strcmp(str, "micro")) s->average = KC_AVERAGE_MICRO;
            else if (!strcmp(str, "macro")) s->average = KC_AVERAGE_MACRO;
            else if (!strcmp(str, "weighted")) s->average = KC_AVERAGE_WEIGHTED;
            else goto bad;
        } else
            goto bad;
        continue;
    bad:;
        char *v = cJSON_PrintUnformatted(it);
        snprintf(why, why_size, "its option %s=%s is not one kerac has", k, v ? v : "?");
        cJSON_free(v);
        return 0;
    }
    return 1;
}

/* One entry of a metrics list: a name (Keras 3's or tf.keras 2's), Keras 3's serialized class
 * or function, tf.keras 2's class config or MeanMetricWrapper. 1: out is set (its name in
 * name); 0: left out with a warning (unknown, an option kerac lacks, or it does not fit the
 * output: kc_metric_init's reason); -1: out of memory trying it. */
static int parse_metric(const cJSON *j, const char *where, const kc_loss_spec *loss, kc_shape out,
                        kc_metric_spec *spec, char *name, size_t name_size) {
    kc_metric_spec s = {0};
    char why[300] = "", label[120] = "";
    name[0] = 0;
    if (cJSON_IsString(j)) {
        snprintf(label, sizeof label, "'%s'", j->valuestring);
        s.kind = kc_metric_find(j->valuestring, NULL);
        snprintf(name, name_size, "%s", j->valuestring);
        if (!s.kind) snprintf(why, sizeof why, "kerac has no such metric");
    } else if (cJSON_IsObject(j) && cJSON_IsString(get(j, "class_name"))) {
        const char *cls = get(j, "class_name")->valuestring;
        const cJSON *c = get(j, "config"), *mod = get(j, "module");
        snprintf(label, sizeof label, "%s", cls);
        if (cJSON_IsString(mod) && strcmp(mod->valuestring, "keras.metrics") &&
            strcmp(mod->valuestring, "builtins") && strcmp(mod->valuestring, "keras.losses"))
            snprintf(why, sizeof why, "it is from module %s", mod->valuestring);
        else if (!strcmp(cls, "function") && cJSON_IsString(c)) {
            /* Keras 3's serialized function: {"class_name": "function", "config": "huber"} */
            snprintf(label, sizeof label, "'%s'", c->valuestring);
            s.kind = kc_metric_find(c->valuestring, NULL);
            snprintf(name, name_size, "%s", c->valuestring);
            if (!s.kind) snprintf(why, sizeof why, "kerac has no such metric");
        } else if (!strcmp(cls, "MeanMetricWrapper") && cJSON_IsObject(c)) {
            /* tf.keras 2: {"class_name": "MeanMetricWrapper", "config": {"name", "fn"}} */
            const cJSON *fn = get(c, "fn");
            if (cJSON_IsObject(fn) && cJSON_IsString(get(fn, "config"))) fn = get(fn, "config");
            const char *f = cJSON_IsString(fn) ? fn->valuestring : "?";
            snprintf(label, sizeof label, "MeanMetricWrapper(fn=%s)", f);
            s.kind = kc_metric_find(f, NULL);
            if (s.kind == KC_METRIC_ACCURACY) s.kind = KC_METRIC_NONE; /* Keras's accuracy() */
            if (!s.kind) snprintf(why, sizeof why, "kerac has no such metric");
            else metric_options(c, &s, name, name_size, why, sizeof why);
        } else {
            s.kind = metric_class(cls);
            if (!s.kind) snprintf(why, sizeof why, "kerac has no such metric");
            else if (cJSON_IsObject(c)) metric_options(c, &s, name, name_size, why, sizeof why);
        }
    } else {
        char *v = cJSON_PrintUnformatted(j);
        snprintf(label, sizeof label, "%.100s", v ? v : "?");
        cJSON_free(v);
        snprintf(why, sizeof why, "it is not a metric's name or config");
    }
    /* a class that is what "accuracy" runs as here, named so (tf.keras 2's resolved
     * MeanMetricWrapper, or kerac's own file), is "accuracy" again */
    int cols = out.rank ? out.dims[out.rank - 1] : 1;
    if (!why[0] && (!strcasecmp(name, "accuracy") || !strcasecmp(name, "acc")) &&
        s.kind == kc_metric_accuracy_kind(loss->kind, cols, 0) &&
        (s.kind != KC_METRIC_BINARY_ACCURACY || !s.has_threshold || s.threshold == 0.5f)) {
        s.kind = KC_METRIC_ACCURACY;
        s.has_threshold = 0;
        s.threshold = 0.0f;
    }
    if (!why[0]) {
        s.name = name[0] ? name : NULL;
        kc_metric_state st;
        kc_status init = kc_metric_init(&st, &s, loss, out, 0, 0, "");
        if (init == KC_ENOMEM) return -1; /* not the metric's fault: the load fails */
        if (init) snprintf(why, sizeof why, "%s", kc_last_error() + 2);
        else kc_metric_free(&st);
    }
    if (why[0]) {
        kc_warn("%s: metric %s is left out: %s", where, label, why);
        return 0;
    }
    *spec = s;
    return 1;
}

/* output o's entry of compile_config's "metrics" (or "weighted_metrics"): one list for every
 * output, a list per output, or a dict by output name; tf.keras 2 writes [[...]] for one
 * output */
static const cJSON *metrics_for_output(const cJSON *mets, const kc_model *m, int o) {
    int n_out = m->n_outputs;
    if (!mets || cJSON_IsNull(mets)) return NULL;
    if (cJSON_IsObject(mets) && !get(mets, "class_name")) return get(mets, kc_model_output_name(m, o));
    if (cJSON_IsArray(mets) && n_out > 1 && cJSON_GetArraySize(mets) == n_out) {
        int nested = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, mets) nested |= cJSON_IsArray(it) || cJSON_IsNull(it);
        if (nested) return cJSON_GetArrayItem(mets, o);
    }
    if (cJSON_IsArray(mets) && n_out == 1 && cJSON_GetArraySize(mets) == 1 &&
        cJSON_IsArray(cJSON_GetArrayItem(mets, 0)))
        return cJSON_GetArrayItem(mets, 0);
    return mets;
}

/* KC_ENOMEM when a metric could not be tried for want of memory (a metric kerac cannot run is
 * left out with a warning) */
static kc_status read_metrics(const cJSON *mets, const kc_model *m, int o, const char *where,
                              const kc_loss_spec *loss, kc_metric_spec *specs,
                              char (*names)[KC_METRIC_KEY_MAX]) {
    const cJSON *mo = metrics_for_output(mets, m, o);
    if (!mo || cJSON_IsNull(mo)) return KC_OK;
    kc_shape out = m->tensors[m->outputs[o]].shape;
    int n = 0;
    if (!cJSON_IsArray(mo)) {
        int r = parse_metric(mo, where, loss, out, &specs[0], names[0], KC_METRIC_KEY_MAX);
        if (r < 0) return kc_err_prefix(KC_ENOMEM, "%s", where);
        if (r) specs[0].name = names[0];
        return KC_OK;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, mo) {
        if (n == KC_MAX_METRICS) {
            kc_warn("%s: more than %d metrics; the rest are left out", where, KC_MAX_METRICS);
            break;
        }
        int r = parse_metric(it, where, loss, out, &specs[n], names[n], KC_METRIC_KEY_MAX);
        if (r < 0) return kc_err_prefix(KC_ENOMEM, "%s", where);
        if (r) {
            specs[n].name = names[n][0] ? names[n] : NULL;
            n++;
        }
    }
    return KC_OK;
}

kc_status kc_config_compile(kc_model *m, const cJSON *cc, const char *where) {
    /* Keras 3 writes "compile_config": {} for a model never compiled */
    if (!cc || cJSON_IsNull(cc) || (cJSON_IsObject(cc) && !cc->child)) return KC_OK;
    char w[600];
    snprintf(w, sizeof w, "%s: compile settings", where);
    const cJSON *opt = get(cc, "optimizer");
    if (!opt || cJSON_IsString(opt)) opt = get(cc, "optimizer_config") ? get(cc, "optimizer_config") : opt;
    if (cJSON_IsObject(get(cc, "kerac_optimizer_config"))) opt = get(cc, "kerac_optimizer_config");
    kc_optimizer *o = NULL;
    if (!opt || cJSON_IsNull(opt)) {
        /* Keras 3's to_json leaves the optimizer out; compile's default is "rmsprop" */
        o = kc_rmsprop(NULL);
    } else if (cJSON_IsString(opt)) {
        const kc_optimizer_io *io = kc_optimizer_io_find(opt->valuestring);
        if (!io) return kc_err(KC_EFORMAT, "%s: unknown optimizer '%s'", w, opt->valuestring);
        o = io->from_config(NULL, w);
    } else {
        const cJSON *ocls = get(opt, "class_name");
        if (!cJSON_IsString(ocls))
            return kc_err(KC_EFORMAT, "%s: the optimizer has no class_name", w);
        const kc_optimizer_io *io = kc_optimizer_io_find(ocls->valuestring);
        const cJSON *ocfg = get(opt, "config");
        if (!io)
            kc_err(KC_EFORMAT, "unknown optimizer '%s' (kerac has SGD, RMSprop, Adam, AdamW, "
                   "Adadelta, Adagrad, Nadam, Adamax, Ftrl, Lion, Lamb)",
                   ocls->valuestring);
        else
            o = io->from_config(cJSON_IsObject(ocfg) ? ocfg : NULL, w);
    }
    if (!o && kc_last_status() == KC_ENOMEM) return KC_ENOMEM;
    if (!o) {
        /* an optimizer config kerac cannot represent: the model loads for prediction */
        kc_warn("%s: the compile settings were skipped (%s); the model loads uncompiled, for "
                "prediction (compile it to train)",
                w, kc_last_error());
        return KC_OK;
    }
    /* one loss for every output, or one per output: a list in output order, or a dict keyed
     * by the output layers' names */
    kc_compile_opts *cop = calloc(1, sizeof *cop);
    char(*names)[2][KC_MAX_METRICS][KC_METRIC_KEY_MAX] = calloc(KC_MAX_IO, sizeof *names);
    if (!cop || !names) {
        free(cop);
        free(names);
        kc_optimizer_free(o);
        return kc_err(KC_ENOMEM, "%s: out of memory", w);
    }
    kc_compile_opts co_local = {.optimizer = o};
#define co (*cop)
    co = co_local;
    int n_out = m->n_outputs;
    const cJSON *loss = get(cc, "loss"), *lw = get(cc, "loss_weights"), *mets = get(cc, "metrics");
    const cJSON *wmets = get(cc, "weighted_metrics");
    kc_status st = KC_OK;
    for (int out = 0; out < n_out && !st; out++) {
        char ow[700];
        snprintf(ow, sizeof ow, "%s (output %d)", w, out);
        const char *oname = kc_model_output_name(m, out);
        const cJSON *lo = loss, *wo = NULL;
        if (cJSON_IsArray(loss) && cJSON_GetArraySize(loss) == n_out && n_out > 1)
            lo = cJSON_GetArrayItem(loss, out);
        else if (cJSON_IsObject(loss) && !get(loss, "class_name"))
            lo = get(loss, oname);
        if (cJSON_IsArray(lw)) wo = cJSON_GetArrayItem(lw, out);
        else if (cJSON_IsObject(lw)) wo = get(lw, oname);
        if (!lo || cJSON_IsNull(lo)) {
            st = kc_err(KC_EFORMAT, "%s: no loss for output '%s' (kerac trains every output)", ow,
                        oname);
            break;
        }
        st = parse_loss(lo, ow, &co.loss_specs[out]);
        if (wo && !cJSON_IsNull(wo)) {
            if (!cJSON_IsNumber(wo) || !(wo->valuedouble >= 0))
                st = kc_err(KC_EFORMAT, "%s: loss_weights is not a number >= 0", ow);
            co.loss_weights[out] = (float)wo->valuedouble;
        } else {
            co.loss_weights[out] = 1.0f;
        }
        if (!st)
            st = read_metrics(mets, m, out, ow, &co.loss_specs[out], co.metric_specs[out],
                              names[out][0]);
        if (!st)
            st = read_metrics(wmets, m, out, ow, &co.loss_specs[out],
                              co.weighted_metric_specs[out], names[out][1]);
    }
    co.has_loss_weights = 1;
    if (st) {
        kc_optimizer_free(o);
    } else {
        st = kc_compile_ex(m, &co);
        if (st) kc_err_prefix(st, "%s", where);
    }
    if (st && st != KC_ENOMEM) {
        /* a loss kerac does not know or cannot apply to the output, as an optimizer it cannot
         * represent: Keras would still predict with the model */
        kc_warn("%s: the compile settings were skipped (%s); the model loads uncompiled, for "
                "prediction (compile it to train)",
                w, kc_last_error());
        st = KC_OK;
    }
#undef co
    free(cop);
    free(names);
    return st;
}

/* ---- public JSON calls ---- */

kc_status kc_model_to_json(kc_model *m, char **json) {
    if (!json) return kc_err(KC_EINVAL, "kc_model_to_json: json is NULL");
    *json = NULL;
    if (!m) return kc_err(KC_EINVAL, "kc_model_to_json: model is NULL");
    kc_model_view v;
    kc_status st = kc_model_view_get(m, &v);
    if (st) return st;
    cJSON *root = kc_config_build(&v, 0, KC_CONFIG_KERAS3);
    if (!root) return KC_EINVAL;
    cJSON_AddStringToObject(root, "keras_version", "3.15.1");
    cJSON_AddStringToObject(root, "backend", "jax");
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) return kc_err(KC_ENOMEM, "kc_model_to_json: out of memory");
    *json = strdup(text);
    cJSON_free(text);
    return *json ? KC_OK : kc_err(KC_ENOMEM, "kc_model_to_json: out of memory");
}

kc_status kc_model_from_json(const char *json, kc_model **out) {
    if (!out) return kc_err(KC_EINVAL, "kc_model_from_json: out is NULL");
    *out = NULL;
    if (!json) return kc_err(KC_EINVAL, "kc_model_from_json: json is NULL");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
    if (!root)
        return kc_err(KC_EFORMAT, "JSON: not valid JSON (error near byte %lld)",
                      (long long)(end ? end - json : 0));
    kc_status st = kc_config_model(root, "JSON", out);
    if (!st) st = kc_config_compile(*out, get(root, "compile_config"), "JSON");
    if (st) {
        kc_model_free(*out);
        *out = NULL;
    }
    cJSON_Delete(root);
    return st;
}
