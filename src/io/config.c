/* config.c: a Sequential model as Keras's config JSON and back (model.to_json(), a .keras
 * file's config.json, a legacy file's model_config), and the compile settings
 * (compile_config, legacy training_config). Layers go through their classes' io (src/layers/),
 * optimizers through optimizer_config.c's table. */
#include "io.h"
#include "../model/model.h"
#include "../layers/custom.h"
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

cJSON *kc_cfg_batch_shape(kc_shape s) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateNull());
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
        cJSON *metrics = cJSON_AddArrayToObject(c, "metrics");
        if (v->metrics & KC_METRIC_ACCURACY)
            cJSON_AddItemToArray(metrics, cJSON_CreateString("accuracy"));
    } else {
        /* one entry per output, in order, as Keras writes a list */
        cJSON *loss = cJSON_AddArrayToObject(c, "loss");
        cJSON *weights = cJSON_CreateArray();
        cJSON *metrics = cJSON_CreateArray();
        int weighted = 0, any_metric = 0;
        for (int o = 0; o < n_out; o++) {
            cJSON_AddItemToArray(loss, loss_json(&m->loss_specs[o], style));
            cJSON_AddItemToArray(weights, cJSON_CreateNumber(kc_json_float(m->loss_weights[o])));
            weighted |= m->loss_weights[o] != 1.0f;
            cJSON *mo = cJSON_CreateArray();
            if (m->metrics[o] & KC_METRIC_ACCURACY) {
                cJSON_AddItemToArray(mo, cJSON_CreateString("accuracy"));
                any_metric = 1;
            }
            cJSON_AddItemToArray(metrics, mo);
        }
        if (weighted) cJSON_AddItemToObject(c, "loss_weights", weights);
        else {
            cJSON_Delete(weights);
            cJSON_AddNullToObject(c, "loss_weights");
        }
        if (any_metric) cJSON_AddItemToObject(c, "metrics", metrics);
        else {
            cJSON_Delete(metrics);
            cJSON_AddNullToObject(c, "metrics");
        }
    }
    cJSON_AddNullToObject(c, "weighted_metrics");
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

/* any string in the metrics tree naming accuracy ("accuracy", "acc", "categorical_accuracy",
 * tf.keras 2's MeanMetricWrapper configs) */
static int mentions_accuracy(const cJSON *j) {
    if (cJSON_IsString(j))
        return strstr(j->valuestring, "accuracy") || !strcmp(j->valuestring, "acc");
    const cJSON *c;
    cJSON_ArrayForEach(c, j) if (mentions_accuracy(c)) return 1;
    return 0;
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
    if (!o) {
        /* an optimizer config kerac cannot represent: the model loads for prediction */
        kc_warn("%s: the compile settings were skipped (%s); the model loads uncompiled, for "
                "prediction (compile it to train)",
                w, kc_last_error());
        return KC_OK;
    }
    /* one loss for every output, or one per output: a list in output order, or a dict keyed
     * by the output layers' names */
    kc_compile_opts co = {.optimizer = o};
    int n_out = m->n_outputs;
    const cJSON *loss = get(cc, "loss"), *lw = get(cc, "loss_weights"), *mets = get(cc, "metrics");
    kc_status st = KC_OK;
    for (int out = 0; out < n_out && !st; out++) {
        char ow[700];
        snprintf(ow, sizeof ow, "%s (output %d)", w, out);
        const char *oname = kc_model_output_name(m, out);
        const cJSON *lo = loss, *wo = NULL, *mo = mets;
        if (cJSON_IsArray(loss) && cJSON_GetArraySize(loss) == n_out && n_out > 1)
            lo = cJSON_GetArrayItem(loss, out);
        else if (cJSON_IsObject(loss) && !get(loss, "class_name"))
            lo = get(loss, oname);
        if (cJSON_IsArray(lw)) wo = cJSON_GetArrayItem(lw, out);
        else if (cJSON_IsObject(lw)) wo = get(lw, oname);
        if (cJSON_IsArray(mets) && n_out > 1 && cJSON_GetArraySize(mets) == n_out &&
            (cJSON_IsArray(cJSON_GetArrayItem(mets, 0)) || cJSON_IsNull(cJSON_GetArrayItem(mets, 0))))
            mo = cJSON_GetArrayItem(mets, out);
        else if (cJSON_IsObject(mets)) mo = get(mets, oname);
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
        co.metrics[out] = mentions_accuracy(mo) ? KC_METRIC_ACCURACY : 0;
    }
    co.has_loss_weights = 1;
    if (st) {
        kc_optimizer_free(o);
        return st;
    }
    st = kc_compile_ex(m, &co);
    return st ? kc_err_prefix(st, "%s", where) : KC_OK;
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
