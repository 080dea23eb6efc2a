/* config.c: a Sequential model as Keras's config JSON and back (model.to_json(), a .keras
 * file's config.json, a legacy file's model_config), and the compile settings
 * (compile_config, legacy training_config). Layers and optimizers go through serial.c's
 * tables. */
#include "io.h"
#include "../layers/custom.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const loss_names[] = {NULL, "categorical_crossentropy",
                                         "sparse_categorical_crossentropy",
                                         "binary_crossentropy", "mean_squared_error"};

static cJSON *dtype_policy(kc_config_style style) {
    if (style == KC_CONFIG_LEGACY) return cJSON_CreateString("float32");
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "module", "keras");
    cJSON_AddStringToObject(d, "class_name", "DTypePolicy");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(d, "config"), "name", "float32");
    cJSON_AddNullToObject(d, "registered_name");
    return d;
}

static cJSON *batch_shape(kc_shape s) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateNull());
    for (int i = 0; i < s.rank; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(s.dims[i]));
    return a;
}

/* {"module": module, "class_name": cls, "config": config, "registered_name": null} */
static cJSON *wrap(const char *module, const char *cls, cJSON *config, kc_config_style style) {
    cJSON *o = cJSON_CreateObject();
    if (style == KC_CONFIG_KERAS3) cJSON_AddStringToObject(o, "module", module);
    cJSON_AddStringToObject(o, "class_name", cls);
    cJSON_AddItemToObject(o, "config", config);
    if (style == KC_CONFIG_KERAS3) cJSON_AddNullToObject(o, "registered_name");
    return o;
}

/* a registered custom class, as Keras writes one: Keras 3 {"module": null, "class_name":
 * "Foo", "config", "registered_name": "Custom>Foo"}, legacy {"class_name": "Custom>Foo", ...} */
static cJSON *wrap_custom(const kc_custom_entry *e, cJSON *config, kc_config_style style) {
    cJSON *o = cJSON_CreateObject();
    if (style == KC_CONFIG_KERAS3) cJSON_AddNullToObject(o, "module");
    cJSON_AddStringToObject(o, "class_name",
                            style == KC_CONFIG_KERAS3 ? e->class_name : e->registered_name);
    cJSON_AddItemToObject(o, "config", config);
    if (style == KC_CONFIG_KERAS3) cJSON_AddStringToObject(o, "registered_name", e->registered_name);
    return o;
}

static cJSON *optimizer_config(const kc_optimizer *opt, kc_config_style style) {
    const kc_optimizer_io *io = kc_optimizer_io_of(opt);
    if (!io) return NULL;
    cJSON *cfg = cJSON_CreateObject();
    io->to_config(opt, cfg);
    if (style == KC_CONFIG_LEGACY) {
        /* tf.keras 2 rebuilds a legacy .h5's optimizer with its legacy optimizer classes,
         * which refuse Keras 3's newer arguments; they take decay (Keras 3 ignores it) */
        const char *newer[] = {"weight_decay", "clipnorm", "global_clipnorm", "clipvalue",
                               "use_ema", "ema_momentum", "ema_overwrite_frequency",
                               "loss_scale_factor", "gradient_accumulation_steps"};
        for (size_t i = 0; i < sizeof newer / sizeof *newer; i++)
            if (i || opt->weight_decay <= 0.0f) /* AdamW's weight_decay is its own */
                cJSON_DeleteItemFromObjectCaseSensitive(cfg, newer[i]);
        cJSON_ReplaceItemInObjectCaseSensitive(cfg, "name", cJSON_CreateString(io->class_name));
        cJSON_AddNumberToObject(cfg, "decay", 0.0);
    }
    return wrap("keras.optimizers", io->class_name, cfg, style);
}

cJSON *kc_compile_config_build(const kc_model_view *v, kc_config_style style) {
    if (!v->opt) return NULL;
    cJSON *c = cJSON_CreateObject();
    cJSON *opt = optimizer_config(v->opt, style);
    if (!opt) {
        cJSON_Delete(c);
        return NULL;
    }
    if (style == KC_CONFIG_KERAS3) cJSON_AddItemToObject(c, "optimizer", opt);
    cJSON_AddStringToObject(c, "loss", loss_names[v->loss]);
    cJSON_AddNullToObject(c, "loss_weights");
    cJSON *metrics = cJSON_AddArrayToObject(c, "metrics");
    if (v->metrics & KC_METRIC_ACCURACY) cJSON_AddItemToArray(metrics, cJSON_CreateString("accuracy"));
    cJSON_AddNullToObject(c, "weighted_metrics");
    cJSON_AddFalseToObject(c, "run_eagerly");
    cJSON_AddNumberToObject(c, "steps_per_execution", 1);
    cJSON_AddFalseToObject(c, "jit_compile");
    if (style == KC_CONFIG_LEGACY) cJSON_AddItemToObject(c, "optimizer_config", opt);
    return c;
}

cJSON *kc_config_build(const kc_model_view *v, int with_compile, kc_config_style style) {
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "name", "sequential");
    cJSON_AddTrueToObject(cfg, "trainable");
    cJSON_AddItemToObject(cfg, "dtype", dtype_policy(style));
    cJSON *layers = cJSON_AddArrayToObject(cfg, "layers");
    cJSON *in = cJSON_CreateObject();
    /* Keras 3 says batch_shape; tf.keras 2 knows only batch_input_shape (Keras 3 reads both) */
    cJSON_AddItemToObject(in, style == KC_CONFIG_LEGACY ? "batch_input_shape" : "batch_shape",
                          batch_shape(v->input_shape));
    cJSON_AddStringToObject(in, "dtype", "float32");
    cJSON_AddFalseToObject(in, "sparse");
    cJSON_AddFalseToObject(in, "ragged");
    cJSON_AddStringToObject(in, "name", "input_layer");
    cJSON_AddItemToArray(layers, wrap("keras.layers", "InputLayer", in, style));
    for (int i = 0; i < v->n_layers; i++) {
        const kc_layer *l = v->layers[i];
        const kc_layer_io *io = kc_layer_io_of(l);
        if (!io) {
            kc_err(KC_EINVAL, "layer %s: saving a %s layer is not supported yet", l->name,
                   l->ops->type_name);
            cJSON_Delete(cfg);
            return NULL;
        }
        cJSON *lc = cJSON_CreateObject();
        cJSON_AddStringToObject(lc, "name", l->name);
        cJSON_AddTrueToObject(lc, "trainable");
        cJSON_AddItemToObject(lc, "dtype", dtype_policy(style));
        kc_status st = io->to_config(l, lc);
        if (st) {
            cJSON_Delete(lc);
            cJSON_Delete(cfg);
            return NULL;
        }
        const kc_custom_entry *ce = kc_custom_of_io(io);
        cJSON *item = ce ? wrap_custom(ce, lc, style)
                         : wrap("keras.layers", io->class_name, lc, style);
        if (style == KC_CONFIG_KERAS3) {
            cJSON *bc = cJSON_AddObjectToObject(item, "build_config");
            cJSON_AddItemToObject(bc, "input_shape", batch_shape(l->in_shape));
        }
        cJSON_AddItemToArray(layers, item);
    }
    cJSON_AddItemToObject(cfg, "build_input_shape", batch_shape(v->input_shape));
    cJSON *root = wrap("keras", "Sequential", cfg, style);
    if (style == KC_CONFIG_KERAS3) {
        cJSON *bc = cJSON_AddObjectToObject(root, "build_config");
        cJSON_AddItemToObject(bc, "input_shape", batch_shape(v->input_shape));
        if (with_compile && v->opt) {
            cJSON *cc = kc_compile_config_build(v, style);
            if (cc) cJSON_AddItemToObject(root, "compile_config", cc);
        }
    }
    return root;
}

/* ---- reading ---- */

static const cJSON *get(const cJSON *o, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* [null, d1, d2...] into a kc_shape */
static kc_status parse_batch_shape(const cJSON *a, const char *where, kc_shape *out) {
    int n = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || n < 2 || n > KC_MAX_RANK + 1)
        return kc_err(KC_EFORMAT, "%s: the input shape is not [null, d1, ...] with 1 to %d dims",
                      where, KC_MAX_RANK);
    kc_shape s = {n - 1, {0}};
    for (int i = 1; i < n; i++) {
        const cJSON *d = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 1 || d->valuedouble > 1e9 ||
            d->valuedouble != floor(d->valuedouble))
            return kc_err(KC_EFORMAT, "%s: input dimension %d is not a positive whole number "
                                      "(kerac needs a fixed input shape)",
                          where, i);
        s.dims[i - 1] = (int)d->valuedouble;
    }
    *out = s;
    return KC_OK;
}

/* The input shape: an InputLayer's batch_shape / batch_input_shape, the first layer's
 * batch_input_shape (Keras 2 without an InputLayer), build_input_shape or build_config. */
static kc_status find_input_shape(const cJSON *root, const cJSON *cfg, const cJSON *layers,
                                  const char *where, kc_shape *out) {
    const cJSON *first = cJSON_GetArrayItem(layers, 0);
    const cJSON *fc = get(first, "config");
    const char *keys[] = {"batch_shape", "batch_input_shape"};
    for (int k = 0; k < 2; k++)
        if (get(fc, keys[k])) return parse_batch_shape(get(fc, keys[k]), where, out);
    if (get(cfg, "build_input_shape"))
        return parse_batch_shape(get(cfg, "build_input_shape"), where, out);
    const cJSON *bc = get(root, "build_config");
    if (get(bc, "input_shape")) return parse_batch_shape(get(bc, "input_shape"), where, out);
    return kc_err(KC_EFORMAT, "%s: the model has no input shape (no InputLayer, "
                              "batch_input_shape or build_input_shape)", where);
}

kc_status kc_config_model(const cJSON *root, const char *where, kc_model **out) {
    *out = NULL;
    const cJSON *cls = get(root, "class_name"), *cfg = get(root, "config");
    if (!cJSON_IsString(cls) || !cJSON_IsObject(cfg))
        return kc_err(KC_EFORMAT, "%s: the model config has no class_name and config", where);
    if (strcmp(cls->valuestring, "Sequential"))
        return kc_err(KC_EFORMAT, "%s: the model is a %s; kerac loads Sequential models only",
                      where, cls->valuestring);
    const cJSON *layers = get(cfg, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) == 0)
        return kc_err(KC_EFORMAT, "%s: the Sequential config has no layers", where);
    kc_shape in;
    kc_status st = find_input_shape(root, cfg, layers, where, &in);
    if (st) return st;
    kc_model *m = kc_sequential(in);
    if (!m) return kc_err_prefix(KC_ENOMEM, "%s", where);
    int index = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, layers) {
        const cJSON *lcls = get(item, "class_name"), *lcfg = get(item, "config");
        const cJSON *lname = get(lcfg, "name");
        char lw[600];
        snprintf(lw, sizeof lw, "%s: layer %d '%s'", where, index,
                 cJSON_IsString(lname) ? lname->valuestring : "?");
        index++;
        if (!cJSON_IsString(lcls) || !cJSON_IsObject(lcfg)) {
            st = kc_err(KC_EFORMAT, "%s: no class_name and config", lw);
            break;
        }
        if (!strcmp(lcls->valuestring, "InputLayer")) continue;
        /* a custom class by its registered name ("Custom>Foo") when the file gives one */
        const cJSON *rn = get(item, "registered_name");
        const char *cname = cJSON_IsString(rn) ? rn->valuestring : lcls->valuestring;
        const kc_layer_io *io = kc_layer_io_find(cname);
        if (!io && strchr(cname, '>')) {
            st = kc_err(KC_EFORMAT, "%s: custom layer class '%s' is not registered: register "
                                    "its type with kc_register_layer_type before loading",
                        lw, cname);
            break;
        }
        if (!io) {
            st = kc_err(KC_EFORMAT, "%s: unknown layer class '%s' (kerac has Dense, Dropout, "
                                    "Activation, Flatten, Reshape, Conv2D, MaxPooling2D, "
                                    "AveragePooling2D, GlobalAveragePooling2D, "
                                    "BatchNormalization, and the custom layer types registered "
                                    "with kc_register_layer_type)", lw, cname);
            break;
        }
        const cJSON *dt = get(lcfg, "dtype");
        const char *dts = cJSON_IsString(dt) ? dt->valuestring
                          : cJSON_IsString(get(get(dt, "config"), "name"))
                              ? get(get(dt, "config"), "name")->valuestring
                              : NULL;
        if (dts && strcmp(dts, "float32")) {
            st = kc_err(KC_EFORMAT, "%s: dtype %s is not supported (float32 only)", lw, dts);
            break;
        }
        kc_layer *layer = NULL;
        const kc_custom_entry *ce = kc_custom_of_io(io);
        st = ce ? kc_custom_io_from_config(ce, lcfg, lw, &layer)
                : io->from_config(lcfg, lw, &layer);
        if (st) break;
        if ((st = kc_add(m, layer))) {
            kc_err_prefix(st, "%s", where);
            break;
        }
        /* keep Keras's layer name (legacy weight files find weights by it) */
        kc_layer *added = kc_model_layer(m, kc_layer_count(m) - 1);
        if (added && io->check_built && (st = io->check_built(lcfg, added, lw))) break;
        if (added && cJSON_IsString(lname))
            snprintf(added->name, sizeof added->name, "%s", lname->valuestring);
    }
    if (!st && kc_layer_count(m) == 0)
        st = kc_err(KC_EFORMAT, "%s: the Sequential config has no layers besides the input", where);
    if (st) {
        kc_model_free(m);
        return st;
    }
    *out = m;
    return KC_OK;
}

static kc_status parse_loss(const cJSON *loss, const char *where, kc_loss *out) {
    if (cJSON_IsArray(loss) && cJSON_GetArraySize(loss) == 1) loss = cJSON_GetArrayItem(loss, 0);
    const char *name = NULL;
    if (cJSON_IsString(loss)) name = loss->valuestring;
    else if (cJSON_IsObject(loss)) {
        const cJSON *c = get(loss, "config");
        if (cJSON_IsTrue(get(c, "from_logits")))
            return kc_err(KC_EFORMAT, "%s: a loss with from_logits=True is not supported", where);
        if (cJSON_IsString(get(loss, "class_name"))) name = get(loss, "class_name")->valuestring;
        if (cJSON_IsString(c)) name = c->valuestring;
    }
    if (!name) return kc_err(KC_EFORMAT, "%s: the loss is not a name", where);
    static const struct {
        const char *name;
        kc_loss loss;
    } names[] = {{"categorical_crossentropy", KC_CATEGORICAL_CROSSENTROPY},
                 {"CategoricalCrossentropy", KC_CATEGORICAL_CROSSENTROPY},
                 {"sparse_categorical_crossentropy", KC_SPARSE_CATEGORICAL_CROSSENTROPY},
                 {"SparseCategoricalCrossentropy", KC_SPARSE_CATEGORICAL_CROSSENTROPY},
                 {"binary_crossentropy", KC_BINARY_CROSSENTROPY},
                 {"BinaryCrossentropy", KC_BINARY_CROSSENTROPY},
                 {"mean_squared_error", KC_MEAN_SQUARED_ERROR},
                 {"mse", KC_MEAN_SQUARED_ERROR},
                 {"MeanSquaredError", KC_MEAN_SQUARED_ERROR}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(name, names[i].name)) {
            *out = names[i].loss;
            return KC_OK;
        }
    return kc_err(KC_EFORMAT, "%s: unknown loss '%s'", where, name);
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
    if (!cc || cJSON_IsNull(cc)) return KC_OK;
    char w[600];
    snprintf(w, sizeof w, "%s: compile settings", where);
    const cJSON *opt = get(cc, "optimizer");
    if (!opt || cJSON_IsString(opt)) opt = get(cc, "optimizer_config") ? get(cc, "optimizer_config") : opt;
    kc_optimizer *o = NULL;
    if (cJSON_IsString(opt)) {
        const kc_optimizer_io *io = kc_optimizer_io_find(opt->valuestring);
        if (!io) return kc_err(KC_EFORMAT, "%s: unknown optimizer '%s'", w, opt->valuestring);
        o = io->from_config(NULL, w);
    } else {
        const cJSON *ocls = get(opt, "class_name");
        if (!cJSON_IsString(ocls))
            return kc_err(KC_EFORMAT, "%s: the optimizer has no class_name", w);
        const kc_optimizer_io *io = kc_optimizer_io_find(ocls->valuestring);
        if (!io)
            return kc_err(KC_EFORMAT, "%s: unknown optimizer '%s' (kerac has SGD, RMSprop, Adam, AdamW, "
                          "Adadelta, Adagrad, Nadam)",
                          w, ocls->valuestring);
        const cJSON *ocfg = get(opt, "config");
        o = io->from_config(cJSON_IsObject(ocfg) ? ocfg : NULL, w);
    }
    if (!o) return KC_EFORMAT;
    kc_loss loss = KC_LOSS_NONE;
    kc_status st = parse_loss(get(cc, "loss"), w, &loss);
    if (st) {
        kc_optimizer_free(o);
        return st;
    }
    unsigned metrics = mentions_accuracy(get(cc, "metrics")) ? KC_METRIC_ACCURACY : 0;
    st = kc_compile(m, loss, o, metrics);
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
