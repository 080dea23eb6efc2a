/* model_config.c: a model's architecture as Keras's config JSON and back: Sequential (Keras 3,
 * tf.keras 2, and Keras 2.0/2.1's bare list of layers) and Functional (Keras 3's inbound nodes
 * of __keras_tensor__ arguments, tf.keras 2's [layer, node, tensor, kwargs] lists), nested
 * models at any depth, trainable flags and training=False calls. Layers go through their
 * classes' io functions (src/layers/, found by src/layers/registry.c); what kerac cannot
 * represent is refused by name. */
#include "io.h"
#include "../layers/custom.h"
#include "../layers/rnn.h"
#include "../model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const cJSON *get(const cJSON *o, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* ---- writing ---------------------------------------------------------------------------- */

static int all_frozen(const kc_model *m) {
    for (int i = 0; i < m->n_layers; i++)
        if (!m->layers[i]->frozen) return 0;
    return m->n_layers > 0;
}

static cJSON *model_config(kc_model *m, kc_config_style style);

/* a registered custom class: Keras 3 writes module null and "package>Class" as its
 * registered name; tf.keras 2 finds it by that name in class_name */
static cJSON *wrap_custom(const kc_custom_entry *e, cJSON *config, kc_config_style style) {
    cJSON *o = cJSON_CreateObject();
    if (style == KC_CONFIG_KERAS3) cJSON_AddNullToObject(o, "module");
    cJSON_AddStringToObject(o, "class_name",
                            style == KC_CONFIG_KERAS3 ? e->class_name : e->registered_name);
    cJSON_AddItemToObject(o, "config", config);
    if (style == KC_CONFIG_KERAS3) cJSON_AddStringToObject(o, "registered_name", e->registered_name);
    return o;
}

/* the style of the item being written: a wrapper's nested layers (kc_config_layer_item) are
 * written as their wrapper is */
static _Thread_local kc_config_style item_style = KC_CONFIG_KERAS3;

/* a layer's item: {module, class_name, config, registered_name, build_config} */
static cJSON *leaf_item(const kc_layer *l, kc_config_style style) {
    const kc_layer_io *io = &l->ops->io;
    if (!io->to_config) {
        kc_err(KC_EINVAL, "layer %s: saving a %s layer is not supported yet", l->name,
               l->ops->type_name);
        return NULL;
    }
    cJSON *lc = cJSON_CreateObject();
    cJSON_AddStringToObject(lc, "name", l->name);
    cJSON_AddBoolToObject(lc, "trainable", !l->frozen);
    cJSON_AddItemToObject(lc, "dtype", kc_cfg_dtype_policy(style));
    kc_config_style outer = item_style;
    item_style = style;
    kc_status st = io->to_config(l, lc);
    item_style = outer;
    if (st) {
        cJSON_Delete(lc);
        return NULL;
    }
    const kc_custom_entry *ce = kc_custom_of_io(io);
    cJSON *item = ce ? wrap_custom(ce, lc, style)
                     : kc_cfg_wrap("keras.layers", l->ops->type_name, lc, style);
    if (style == KC_CONFIG_KERAS3) {
        cJSON *bc = cJSON_AddObjectToObject(item, "build_config");
        if (l->n_in > 1 && kc_is_rnn(l)) {
            /* Keras 3's RNN built with initial_state: its shapes_dict */
            cJSON *sd = cJSON_AddObjectToObject(bc, "shapes_dict");
            cJSON_AddItemToObject(sd, "sequences_shape", kc_cfg_batch_shape(l->decl_in_shapes[0]));
            cJSON *is = cJSON_AddArrayToObject(sd, "initial_state_shape");
            for (int i = 1; i < l->n_in; i++)
                cJSON_AddItemToArray(is, kc_cfg_batch_shape(l->decl_in_shapes[i]));
        } else if (l->n_in > 1) {
            cJSON *shapes = cJSON_AddArrayToObject(bc, "input_shape");
            for (int i = 0; i < l->n_in; i++)
                cJSON_AddItemToArray(shapes, kc_cfg_batch_shape(l->decl_in_shapes[i]));
        } else {
            cJSON_AddItemToObject(bc, "input_shape", kc_cfg_batch_shape(l->decl_in_shapes[0]));
        }
    }
    return item;
}

cJSON *kc_config_layer_item(const kc_layer *l) {
    cJSON *item = leaf_item(l, item_style);
    /* tf.keras 2.15 writes a wrapper's nested layer with its module, as Keras 3 does, and Keras
     * 3 needs it to find the class in a legacy file */
    if (item && item_style == KC_CONFIG_LEGACY && !cJSON_GetObjectItem(item, "module")) {
        cJSON_AddStringToObject(item, "module", "keras.layers");
        cJSON_AddNullToObject(item, "registered_name");
    }
    return item;
}
int kc_config_writing_legacy(void) { return item_style == KC_CONFIG_LEGACY; }

static cJSON *entry_item(kc_model *m, int e, kc_config_style style) {
    const kc_entry *en = &m->entries[e];
    if (!en->model) return leaf_item(en->layer, style);
    cJSON *item = model_config(en->model, style);
    if (!item) return NULL;
    /* the name the outer model knows it by */
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(item, "config");
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "name", cJSON_CreateString(en->layer->name));
    return item;
}

/* [name, node, index] of tensor t: the call that made it, or a model input */
static void tensor_history(const kc_model *m, int t, const char **name, int *node, int *index) {
    int c = kc_model_call_of(m, t, index);
    if (c < 0) {
        for (int i = 0; i < m->n_inputs; i++)
            if (m->inputs[i] == t) *name = m->input_names[i];
        *node = *index = 0;
        return;
    }
    *name = m->entries[m->calls[c].entry].layer->name;
    *node = kc_model_call_number(m, c);
}

/* tf.keras 2 numbers a nested model's calls from 1 (its node 0 is its own graph's) */
static int legacy_node_shift(const kc_model *m, int t) {
    int c = kc_model_call_of(m, t, NULL);
    return c >= 0 && m->entries[m->calls[c].entry].model ? 1 : 0;
}

static cJSON *history_json(const kc_model *m, int t, kc_config_style style, int inference) {
    const char *name = "?";
    int node = 0, index = 0;
    tensor_history(m, t, &name, &node, &index);
    if (style == KC_CONFIG_LEGACY) {
        node += legacy_node_shift(m, t);
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cJSON_CreateString(name));
        cJSON_AddItemToArray(a, cJSON_CreateNumber(node));
        cJSON_AddItemToArray(a, cJSON_CreateNumber(index));
        cJSON *kw = cJSON_CreateObject();
        if (inference) cJSON_AddFalseToObject(kw, "training");
        cJSON_AddItemToArray(a, kw);
        return a;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "class_name", "__keras_tensor__");
    cJSON *c = cJSON_AddObjectToObject(o, "config");
    cJSON_AddItemToObject(c, "shape", kc_cfg_batch_shape(m->tensors[t].shape));
    cJSON_AddStringToObject(c, "dtype", m->tensors[t].dtype == KC_INT32    ? "int32"
                                        : m->tensors[t].dtype == KC_STRING ? "string"
                                                                           : "float32");
    cJSON *h = cJSON_AddArrayToObject(c, "keras_history");
    cJSON_AddItemToArray(h, cJSON_CreateString(name));
    cJSON_AddItemToArray(h, cJSON_CreateNumber(node));
    cJSON_AddItemToArray(h, cJSON_CreateNumber(index));
    return o;
}

static cJSON *inbound_nodes(const kc_model *m, int e, kc_config_style style) {
    cJSON *nodes = cJSON_CreateArray();
    const kc_entry *en = &m->entries[e];
    /* a recurrent layer's further inputs are its initial_state (Keras 3: a call kwarg) */
    int rnn = !en->model && kc_is_rnn(en->layer);
    int list = en->model ? en->model->n_inputs > 1 : en->layer->ops->max_inputs > 0 && !rnn;
    for (int c = 0; c < m->n_calls; c++) {
        const kc_callrec *call = &m->calls[c];
        if (call->entry != e) continue;
        if (style == KC_CONFIG_LEGACY) {
            cJSON *node = cJSON_CreateArray();
            for (int i = 0; i < call->n_in; i++)
                cJSON_AddItemToArray(node, history_json(m, call->in[i], style, call->inference));
            cJSON_AddItemToArray(nodes, node);
            continue;
        }
        cJSON *node = cJSON_CreateObject();
        cJSON *args = cJSON_AddArrayToObject(node, "args");
        if (list) {
            cJSON *l = cJSON_CreateArray();
            for (int i = 0; i < call->n_in; i++)
                cJSON_AddItemToArray(l, history_json(m, call->in[i], style, 0));
            cJSON_AddItemToArray(args, l);
        } else {
            cJSON_AddItemToArray(args, history_json(m, call->in[0], style, 0));
        }
        cJSON *kw = cJSON_AddObjectToObject(node, "kwargs");
        if (call->inference) cJSON_AddFalseToObject(kw, "training");
        if (rnn && call->n_in > 1) {
            cJSON *st = cJSON_AddArrayToObject(kw, "initial_state");
            for (int i = 1; i < call->n_in; i++)
                cJSON_AddItemToArray(st, history_json(m, call->in[i], style, 0));
        }
        cJSON_AddItemToArray(nodes, node);
    }
    return nodes;
}

static cJSON *input_layer_item(kc_shape shape, kc_dtype dtype, const char *name,
                               kc_config_style style) {
    cJSON *in = cJSON_CreateObject();
    /* Keras 3 says batch_shape; tf.keras 2 knows only batch_input_shape (Keras 3 reads both) */
    cJSON_AddItemToObject(in, style == KC_CONFIG_LEGACY ? "batch_input_shape" : "batch_shape",
                          kc_cfg_batch_shape(shape));
    cJSON_AddStringToObject(in, "dtype", dtype == KC_INT32    ? "int32"
                                         : dtype == KC_STRING ? "string"
                                                              : "float32");
    cJSON_AddFalseToObject(in, "sparse");
    cJSON_AddFalseToObject(in, "ragged");
    cJSON_AddStringToObject(in, "name", name);
    return kc_cfg_wrap("keras.layers", "InputLayer", in, style);
}

static cJSON *ref_triple(const char *name, int node, int index) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateString(name));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(node));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(index));
    return a;
}

static cJSON *model_config(kc_model *m, kc_config_style style) {
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "name", m->name);
    cJSON_AddBoolToObject(cfg, "trainable", !all_frozen(m));
    if (!m->functional) cJSON_AddItemToObject(cfg, "dtype", kc_cfg_dtype_policy(style));
    cJSON *layers = cJSON_AddArrayToObject(cfg, "layers");
    kc_shape in_shape = m->tensors[m->inputs[0]].shape;
    if (!m->functional) {
        cJSON_AddItemToArray(layers, input_layer_item(in_shape, m->tensors[m->inputs[0]].dtype,
                                                      m->input_names[0], style));
        for (int e = 0; e < m->n_entries; e++) {
            cJSON *item = entry_item(m, e, style);
            if (!item) {
                cJSON_Delete(cfg);
                return NULL;
            }
            cJSON_AddItemToArray(layers, item);
        }
        cJSON_AddItemToObject(cfg, "build_input_shape", kc_cfg_batch_shape(in_shape));
        cJSON *root = kc_cfg_wrap("keras", "Sequential", cfg, style);
        if (style == KC_CONFIG_KERAS3) {
            cJSON *bc = cJSON_AddObjectToObject(root, "build_config");
            cJSON_AddItemToObject(bc, "input_shape", kc_cfg_batch_shape(in_shape));
        }
        return root;
    }
    for (int i = 0; i < m->n_inputs; i++) {
        cJSON *item = input_layer_item(m->tensors[m->inputs[i]].shape,
                                       m->tensors[m->inputs[i]].dtype, m->input_names[i], style);
        cJSON_AddStringToObject(item, "name", m->input_names[i]);
        cJSON_AddItemToObject(item, "inbound_nodes", cJSON_CreateArray());
        cJSON_AddItemToArray(layers, item);
    }
    for (int e = 0; e < m->n_entries; e++) {
        cJSON *item = entry_item(m, e, style);
        if (!item) {
            cJSON_Delete(cfg);
            return NULL;
        }
        cJSON_AddStringToObject(item, "name", m->entries[e].layer->name);
        cJSON_AddItemToObject(item, "inbound_nodes", inbound_nodes(m, e, style));
        cJSON_AddItemToArray(layers, item);
    }
    cJSON *ins = cJSON_AddArrayToObject(cfg, "input_layers");
    for (int i = 0; i < m->n_inputs; i++) cJSON_AddItemToArray(ins, ref_triple(m->input_names[i], 0, 0));
    cJSON *outs = cJSON_CreateArray();
    for (int o = 0; o < m->n_outputs; o++) {
        const char *name = "?";
        int node = 0, index = 0;
        tensor_history(m, m->outputs[o], &name, &node, &index);
        if (style == KC_CONFIG_LEGACY) node += legacy_node_shift(m, m->outputs[o]);
        cJSON_AddItemToArray(outs, ref_triple(name, node, index));
    }
    if (style == KC_CONFIG_KERAS3 && m->n_outputs == 1) {
        /* Keras 3 writes a single output as one triple */
        cJSON *one = cJSON_DetachItemFromArray(outs, 0);
        cJSON_Delete(outs);
        outs = one;
    }
    cJSON_AddItemToObject(cfg, "output_layers", outs);
    if (style == KC_CONFIG_LEGACY) return kc_cfg_wrap("keras", "Functional", cfg, style);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "module", "keras.src.models.functional");
    cJSON_AddStringToObject(root, "class_name", "Functional");
    cJSON_AddItemToObject(root, "config", cfg);
    cJSON_AddStringToObject(root, "registered_name", "Functional");
    cJSON *bc = cJSON_AddObjectToObject(root, "build_config");
    cJSON_AddNullToObject(bc, "input_shape");
    return root;
}

/* the batch size the files say: the model's (kc_model_set_batch_size), else the one a
 * stateful layer's state holds (Keras refuses stateful=True without one) */
static int save_batch(const kc_model *m) {
    int b = m->batch_size;
    for (int i = 0; i < m->n_layers && !b; i++) b = kc_rnn_state_batch(m->layers[i]);
    return b;
}

cJSON *kc_config_build(const kc_model_view *v, int with_compile, kc_config_style style) {
    kc_cfg_set_batch(save_batch(v->model));
    cJSON *root = model_config(v->model, style);
    kc_cfg_set_batch(0);
    if (root && style == KC_CONFIG_KERAS3 && with_compile && v->opt) {
        cJSON *cc = kc_compile_config_build(v, style);
        if (cc) cJSON_AddItemToObject(root, "compile_config", cc);
    }
    return root;
}

/* ---- reading ---------------------------------------------------------------------------- */

static int is_model_class(const char *cls) {
    return !strcmp(cls, "Sequential") || !strcmp(cls, "Functional") || !strcmp(cls, "Model");
}

static kc_status check_dtype(const cJSON *lcfg, const char *where) {
    const cJSON *dt = get(lcfg, "dtype");
    const char *dts = cJSON_IsString(dt) ? dt->valuestring
                      : cJSON_IsString(get(get(dt, "config"), "name"))
                          ? get(get(dt, "config"), "name")->valuestring
                          : NULL;
    if (dts && strcmp(dts, "float32"))
        return kc_err(KC_EFORMAT, "%s: dtype %s is not supported (float32 only)", where, dts);
    return KC_OK;
}

static kc_status model_from(const cJSON *root, const char *where, kc_model **out);

/* A layer (or nested model, as a layer) from a layer item, named as the file names it and
 * frozen when it says trainable false. */
static kc_status layer_from(const cJSON *item, const char *where, kc_layer **out) {
    *out = NULL;
    const cJSON *cls = get(item, "class_name"), *cfg = get(item, "config");
    if (!cJSON_IsString(cls) || !(cJSON_IsObject(cfg) || cJSON_IsArray(cfg)))
        return kc_err(KC_EFORMAT, "%s: no class_name and config", where);
    if (is_model_class(cls->valuestring)) {
        kc_model *nested = NULL;
        kc_status st = model_from(item, where, &nested);
        if (st) return st;
        *out = kc_model_as_layer(nested);
        kc_model_free(nested); /* the wrapper holds it */
        return *out ? KC_OK : KC_ENOMEM;
    }
    /* a custom class by its registered name ("Custom>Foo") when the file gives one */
    const cJSON *rn = get(item, "registered_name");
    const char *cname = cJSON_IsString(rn) && strchr(rn->valuestring, '>') ? rn->valuestring
                                                                            : cls->valuestring;
    const kc_layer_io *io = kc_layer_io_find(cname);
    if (!io && strchr(cname, '>'))
        return kc_err(KC_EFORMAT, "%s: custom layer class '%s' is not registered: register its "
                                  "type with kc_register_layer_type before loading", where, cname);
    if (!io) {
        char known[1024];
        kc_layer_io_names(known, sizeof known);
        return kc_err(KC_EFORMAT, "%s: unknown layer class '%s' (kerac has %s, and the custom "
                                  "layer types registered with kc_register_layer_type)",
                      where, cname, known);
    }
    kc_status st = strcmp(cname, "TextVectorization") ? check_dtype(cfg, where) : KC_OK;
    const kc_custom_entry *ce = kc_custom_of_io(io);
    if (!st) st = ce ? kc_custom_io_from_config(ce, cfg, where, out) : io->from_config(cfg, where, out);
    if (st) return st;
    const cJSON *name = get(cfg, "name");
    if (cJSON_IsString(name) && (st = kc_layer_set_name(*out, name->valuestring))) {
        kc_layer_free(*out);
        *out = NULL;
        return kc_err_prefix(st, "%s", where);
    }
    if (cJSON_IsFalse(get(cfg, "trainable"))) kc_set_trainable(*out, 0);
    return KC_OK;
}

kc_status kc_config_layer_from(const cJSON *item, const char *where, kc_layer **out) {
    return layer_from(item, where, out);
}

static const char *item_name(const cJSON *item) {
    const cJSON *n = get(item, "name");
    if (!cJSON_IsString(n)) n = get(get(item, "config"), "name");
    return cJSON_IsString(n) ? n->valuestring : "?";
}

/* the dtype of an InputLayer item: int32 for Keras's integer dtypes (token ids), float32 for
 * the floating ones (absent: float32) */
static kc_status input_dtype_of(const cJSON *cfg, const char *where, kc_dtype *out) {
    const cJSON *dt = get(cfg, "dtype");
    const char *s = cJSON_IsString(dt) ? dt->valuestring
                    : cJSON_IsString(get(get(dt, "config"), "name"))
                        ? get(get(dt, "config"), "name")->valuestring
                        : NULL;
    *out = KC_FLOAT32;
    if (!s || !strncmp(s, "float", 5) || !strcmp(s, "bfloat16")) return KC_OK;
    if (!strcmp(s, "string")) {
        *out = KC_STRING;
        return KC_OK;
    }
    if (!strncmp(s, "int", 3) || !strncmp(s, "uint", 4)) {
        *out = KC_INT32;
        return KC_OK;
    }
    return kc_err(KC_EFORMAT, "%s: the input's dtype %s is not supported (float or integer "
                              "inputs only)", where, s);
}

/* the per-sample shape of an InputLayer item */
static kc_status input_shape_of(const cJSON *cfg, const char *where, kc_shape *out) {
    const char *keys[] = {"batch_shape", "batch_input_shape"};
    for (int k = 0; k < 2; k++)
        if (get(cfg, keys[k])) return kc_cfg_parse_batch_shape(get(cfg, keys[k]), where, out);
    return kc_err(KC_EFORMAT, "%s: the InputLayer has no batch_shape", where);
}

static kc_status sequential_from(const cJSON *root, const cJSON *cfg, const char *where,
                                 kc_model **out) {
    /* Keras 2.0 and 2.1 wrote a Sequential's config as the bare list of its layers */
    const cJSON *layers = cJSON_IsArray(cfg) ? cfg : get(cfg, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) == 0)
        return kc_err(KC_EFORMAT, "%s: the Sequential config has no layers", where);
    /* the input shape: an InputLayer's, the first layer's batch_input_shape (Keras 2), the
     * model's build_input_shape or build_config, or a nested first model's input */
    const cJSON *first = cJSON_GetArrayItem(layers, 0), *fc = get(first, "config");
    kc_shape in = {0};
    kc_status st = KC_OK;
    int have = 0, batch = 0; /* batch: the fixed batch size, 0 for None */
    const char *keys[] = {"batch_shape", "batch_input_shape"};
    for (int k = 0; k < 2 && !have; k++)
        if (cJSON_IsObject(fc) && get(fc, keys[k])) {
            st = kc_cfg_parse_batch_shape(get(fc, keys[k]), where, &in);
            batch = kc_cfg_batch_dim(get(fc, keys[k]));
            have = 1;
        }
    if (!have && cJSON_IsObject(cfg) && get(cfg, "build_input_shape") &&
        !cJSON_IsNull(get(cfg, "build_input_shape"))) {
        st = kc_cfg_parse_batch_shape(get(cfg, "build_input_shape"), where, &in);
        batch = kc_cfg_batch_dim(get(cfg, "build_input_shape"));
        have = 1;
    }
    if (!have && get(get(root, "build_config"), "input_shape") &&
        !cJSON_IsNull(get(get(root, "build_config"), "input_shape"))) {
        st = kc_cfg_parse_batch_shape(get(get(root, "build_config"), "input_shape"), where, &in);
        have = 1;
    }
    kc_layer *first_nested = NULL;
    if (!have && cJSON_IsString(get(first, "class_name")) &&
        is_model_class(get(first, "class_name")->valuestring)) {
        if ((st = layer_from(first, where, &first_nested))) return st;
        in = first_nested->nested->tensors[first_nested->nested->inputs[0]].shape;
        have = 1;
    }
    if (st) return st;
    if (!have)
        return kc_err(KC_EFORMAT, "%s: the model has no input shape (no InputLayer, "
                                  "batch_input_shape or build_input_shape)", where);
    /* the input's dtype: the InputLayer's, else float32 */
    kc_dtype dtype = KC_FLOAT32; /* a layer's own dtype is its compute dtype, not the input's */
    if (!st && cJSON_IsObject(fc) && cJSON_IsString(get(first, "class_name")) &&
        !strcmp(get(first, "class_name")->valuestring, "InputLayer"))
        st = input_dtype_of(fc, where, &dtype);
    if (st) {
        kc_layer_free(first_nested);
        return st;
    }
    kc_model *m = kc_sequential_ex(in, dtype);
    if (!m) {
        kc_layer_free(first_nested);
        return kc_err_prefix(KC_ENOMEM, "%s", where);
    }
    m->batch_size = batch;
    const cJSON *name = cJSON_IsObject(cfg) ? get(cfg, "name") : NULL;
    if (cJSON_IsString(name)) kc_model_set_name(m, name->valuestring);
    int index = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, layers) {
        char lw[600];
        snprintf(lw, sizeof lw, "%s: layer %d '%s'", where, index, item_name(item));
        const cJSON *lcls = get(item, "class_name");
        if (cJSON_IsString(lcls) && !strcmp(lcls->valuestring, "InputLayer")) {
            const cJSON *n = get(get(item, "config"), "name");
            if (cJSON_IsString(n)) snprintf(m->input_names[0], KC_NAME_MAX, "%s", n->valuestring);
            index++;
            continue;
        }
        kc_layer *layer = NULL;
        if (index == 0 && first_nested) layer = first_nested, first_nested = NULL;
        else if ((st = layer_from(item, lw, &layer))) break;
        index++;
        if ((st = kc_add(m, layer))) {
            kc_err_prefix(st, "%s", where);
            break;
        }
        const kc_layer_io *io = layer->nested ? NULL : kc_layer_io_find(lcls->valuestring);
        if (io && io->check_built && (st = io->check_built(get(item, "config"), layer, lw))) break;
    }
    kc_layer_free(first_nested);
    if (!st && m->n_entries == 0)
        st = kc_err(KC_EFORMAT, "%s: the Sequential config has no layers besides the input", where);
    if (!st && cJSON_IsObject(cfg) && cJSON_IsFalse(get(cfg, "trainable")))
        kc_model_set_trainable(m, 0);
    if (st) {
        kc_model_free(m);
        return st;
    }
    *out = m;
    return KC_OK;
}

/* a reference [name, node, index] (tf.keras 2 adds kwargs as a 4th element) or Keras 3's
 * {"class_name": "__keras_tensor__", "config": {"keras_history": [...]}} */
static int parse_ref(const cJSON *r, const char **name, int *node, int *index,
                     const cJSON **kwargs) {
    if (cJSON_IsObject(r)) r = get(get(r, "config"), "keras_history");
    if (!cJSON_IsArray(r) || cJSON_GetArraySize(r) < 3) return 0;
    const cJSON *n = cJSON_GetArrayItem(r, 0), *a = cJSON_GetArrayItem(r, 1),
                *b = cJSON_GetArrayItem(r, 2);
    if (!cJSON_IsString(n) || !cJSON_IsNumber(a) || !cJSON_IsNumber(b) || a->valuedouble < 0 ||
        b->valuedouble < 0 || a->valuedouble > 1e6 || b->valuedouble >= KC_MAX_IO)
        return 0;
    *name = n->valuestring;
    *node = (int)a->valuedouble;
    *index = (int)b->valuedouble;
    if (kwargs) *kwargs = cJSON_GetArrayItem(r, 3);
    return 1;
}

typedef struct {
    const char *name;
    const cJSON *item;
    kc_layer *layer;     /* NULL for an InputLayer */
    kc_tensor *input;    /* an InputLayer's tensor */
    int mask_op;         /* Keras 3's NotEqual(ids, 0): an Embedding's mask, made explicit */
    int node_shift;      /* tf.keras 2 numbers a nested model's calls from 1 */
    int n_nodes, done;   /* inbound nodes, and how many are built (in order) */
    kc_tensor *outs[64][KC_MAX_IO]; /* each built node's outputs */
    int n_outs[64];
} fn_layer;

static fn_layer *find_layer(fn_layer *ls, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(ls[i].name, name)) return &ls[i];
    return NULL;
}

static kc_tensor *lookup(fn_layer *ls, int n, const char *name, int node, int index) {
    fn_layer *l = find_layer(ls, n, name);
    if (!l) return NULL;
    if (!l->layer) return node == 0 && index == 0 ? l->input : NULL;
    node -= l->node_shift;
    if (node < 0 || node >= l->done || index >= l->n_outs[node]) return NULL;
    return l->outs[node][index];
}

/* the argument references of inbound node `node` (Keras 3's args, or tf.keras 2's list) */
static int node_refs(const cJSON *node, const cJSON **refs, int cap, int *training_false) {
    int n = 0;
    *training_false = 0;
    if (cJSON_IsObject(node)) {
        const cJSON *args = get(node, "args"), *kw = get(node, "kwargs");
        if (cJSON_IsFalse(get(kw, "training"))) *training_false = 1;
        const cJSON *a0 = cJSON_GetArrayItem(args, 0);
        const cJSON *list = cJSON_IsArray(a0) && cJSON_IsObject(cJSON_GetArrayItem(a0, 0)) ? a0 : args;
        const cJSON *r;
        cJSON_ArrayForEach(r, list) if (n < cap && cJSON_IsObject(r)) refs[n++] = r;
        /* a recurrent layer's initial_state: its further inputs */
        const cJSON *is = get(kw, "initial_state");
        if (cJSON_IsObject(is) && n < cap) refs[n++] = is; /* one tensor */
        else if (cJSON_IsArray(is))
            cJSON_ArrayForEach(r, is) if (n < cap && cJSON_IsObject(r)) refs[n++] = r;
        return n;
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, node) {
        if (n < cap) refs[n++] = r;
        const cJSON *kw = cJSON_GetArrayItem(r, 3);
        if (cJSON_IsFalse(get(kw, "training"))) *training_false = 1;
    }
    return n;
}

/* Keras 3 writes the mask of an Embedding(mask_zero=True) as an op of its own, NotEqual(ids,
 * 0), where a layer whose call takes `mask` (the recurrent layers, their wrappers, the 1-D
 * global pooling) is given it: {"args": [ids, 0]}. kerac reads the op as nothing but that
 * mask when some Embedding(mask_zero=True) of the config reads the same ids; the layers then
 * get it through the engine's masks, as Keras passes it on (1: such an op) */
static int is_embedding_mask(const cJSON *layers, const cJSON *item) {
    const cJSON *cls = get(item, "class_name");
    if (!cJSON_IsString(cls) || strcmp(cls->valuestring, "NotEqual")) return 0;
    const cJSON *nodes = get(item, "inbound_nodes"), *node = cJSON_GetArrayItem(nodes, 0);
    const cJSON *args = get(node, "args"), *zero = cJSON_GetArrayItem(args, 1);
    const char *name, *en;
    int nd, ix, end, eix;
    if (cJSON_GetArraySize(nodes) != 1 || cJSON_GetArraySize(args) != 2 || !cJSON_IsNumber(zero) ||
        zero->valuedouble != 0 || !parse_ref(cJSON_GetArrayItem(args, 0), &name, &nd, &ix, NULL))
        return 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, layers) {
        const cJSON *ecls = get(e, "class_name"), *en_node;
        if (!cJSON_IsString(ecls) || strcmp(ecls->valuestring, "Embedding") ||
            !cJSON_IsTrue(get(get(e, "config"), "mask_zero")))
            continue;
        cJSON_ArrayForEach(en_node, get(e, "inbound_nodes")) {
            const cJSON *ea = cJSON_GetArrayItem(get(en_node, "args"), 0);
            if (parse_ref(ea, &en, &end, &eix, NULL) && !strcmp(en, name) && end == nd &&
                eix == ix)
                return 1;
        }
    }
    return 0;
}

/* every key of a call's kwargs kerac honours: training (False), mask (null, or an Embedding's
 * mask: is_embedding_mask) */
static kc_status check_kwargs(const cJSON *node, const char *where, fn_layer *ls, int n) {
    const cJSON *kw = cJSON_IsObject(node) ? get(node, "kwargs") : NULL, *k;
    cJSON_ArrayForEach(k, kw) {
        if (!strcmp(k->string, "training") && cJSON_IsFalse(k)) continue;
        if (!strcmp(k->string, "initial_state") && (cJSON_IsArray(k) || cJSON_IsObject(k)))
            continue; /* node_refs reads it */
        if (cJSON_IsNull(k)) continue;
        const char *rn;
        int rnode, rindex;
        fn_layer *src;
        if (!strcmp(k->string, "mask") && parse_ref(k, &rn, &rnode, &rindex, NULL) &&
            (src = find_layer(ls, n, rn)) && src->mask_op)
            continue;
        return kc_err(KC_EFORMAT, "%s: the call's argument '%s' is not supported by kerac", where,
                      k->string);
    }
    return KC_OK;
}

static kc_status functional_from(const cJSON *cfg, const char *where, kc_model **out) {
    const cJSON *layers = get(cfg, "layers");
    int n = cJSON_GetArraySize(layers);
    if (!cJSON_IsArray(layers) || n == 0)
        return kc_err(KC_EFORMAT, "%s: the Functional config has no layers", where);
    if (n > 4096) return kc_err(KC_EFORMAT, "%s: %d layers is more than kerac reads", where, n);
    fn_layer *ls = calloc((size_t)n, sizeof *ls);
    if (!ls) return kc_err(KC_ENOMEM, "%s: out of memory", where);
    kc_status st = KC_OK;
    int i = 0, batch = 0; /* batch: an input's fixed batch size, 0 for None */
    const cJSON *item;
    cJSON_ArrayForEach(item, layers) {
        fn_layer *l = &ls[i];
        l->item = item;
        l->name = item_name(item);
        char lw[600];
        snprintf(lw, sizeof lw, "%s: layer %d '%s'", where, i, l->name);
        i++;
        if (find_layer(ls, i - 1, l->name)) {
            st = kc_err(KC_EFORMAT, "%s: the name is used twice", lw);
            break;
        }
        const cJSON *cls = get(item, "class_name");
        if (is_embedding_mask(layers, item)) {
            l->mask_op = 1;
            continue;
        }
        if (cJSON_IsString(cls) && !strcmp(cls->valuestring, "InputLayer")) {
            kc_shape shape;
            kc_dtype dtype;
            if ((st = input_shape_of(get(item, "config"), lw, &shape))) break;
            const cJSON *ic = get(item, "config");
            int b = kc_cfg_batch_dim(get(ic, "batch_shape") ? get(ic, "batch_shape")
                                                            : get(ic, "batch_input_shape"));
            if (b) batch = b;
            if ((st = input_dtype_of(get(item, "config"), lw, &dtype))) break;
            if (!(l->input = kc_input_ex(shape, dtype, l->name))) {
                st = kc_err_prefix(KC_EINVAL, "%s", lw);
                break;
            }
            continue;
        }
        if ((st = layer_from(item, lw, &l->layer))) break;
        const cJSON *nodes = get(item, "inbound_nodes");
        l->n_nodes = cJSON_GetArraySize(nodes);
        if (!cJSON_IsArray(nodes) || l->n_nodes > 64) {
            st = kc_err(KC_EFORMAT, "%s: inbound_nodes is missing or has more than 64 calls", lw);
            break;
        }
        l->node_shift = l->layer->nested && cJSON_IsArray(cJSON_GetArrayItem(nodes, 0));
    }
    /* calls in dependency order: a pass builds every call whose inputs exist; a pass that
     * builds none leaves a cycle or a missing layer */
    for (int progress = 1; !st && progress;) {
        progress = 0;
        for (int k = 0; k < n && !st; k++) {
            fn_layer *l = &ls[k];
            while (!st && l->layer && l->done < l->n_nodes) {
                const cJSON *node = cJSON_GetArrayItem(get(l->item, "inbound_nodes"), l->done);
                const cJSON *refs[KC_MAX_LAYER_INPUTS];
                int training_false = 0;
                int nr = node_refs(node, refs, KC_MAX_LAYER_INPUTS, &training_false);
                kc_tensor *ins[KC_MAX_LAYER_INPUTS];
                int ready = nr > 0;
                for (int r = 0; r < nr && ready; r++) {
                    const char *rn;
                    int rnode, rindex;
                    if (!parse_ref(refs[r], &rn, &rnode, &rindex, NULL)) {
                        st = kc_err(KC_EFORMAT, "%s: layer '%s' call %d: input %d is not a "
                                                "[layer, node, tensor] reference", where, l->name,
                                    l->done, r);
                        ready = 0;
                        break;
                    }
                    if (!find_layer(ls, n, rn)) {
                        st = kc_err(KC_EFORMAT, "%s: layer '%s' call %d takes the output of "
                                                "layer '%s', which the model does not have",
                                    where, l->name, l->done, rn);
                        ready = 0;
                        break;
                    }
                    if (find_layer(ls, n, rn)->mask_op) {
                        st = kc_err(KC_EFORMAT, "%s: layer '%s' call %d takes the mask '%s' as "
                                                "an input (kerac reads it only as a call's mask)",
                                    where, l->name, l->done, rn);
                        ready = 0;
                        break;
                    }
                    ins[r] = lookup(ls, n, rn, rnode, rindex);
                    ready = ins[r] != NULL;
                }
                if (st) break;
                if (!nr) {
                    st = kc_err(KC_EFORMAT, "%s: layer '%s' call %d has no inputs", where, l->name,
                                l->done);
                    break;
                }
                if (!ready) break;
                char lw[600];
                snprintf(lw, sizeof lw, "%s: layer '%s' call %d", where, l->name, l->done);
                if ((st = check_kwargs(node, lw, ls, n))) break;
                int n_out = kc_layer_output_count(l->layer);
                int held = l->layer->refs > 0;
                st = kc_call_multi(l->layer, ins, nr, l->outs[l->done], n_out);
                if (st && !held) l->layer = NULL; /* a failed first call frees the layer */
                if (st) {
                    kc_err_prefix(st, "%s", lw);
                    break;
                }
                if (training_false) kc_tensor_set_inference(l->outs[l->done][0]);
                l->n_outs[l->done++] = n_out;
                progress = 1;
            }
        }
    }
    for (int k = 0; k < n && !st; k++)
        if (ls[k].layer && ls[k].done < ls[k].n_nodes)
            st = kc_err(KC_EFORMAT, "%s: layer '%s' call %d waits for an input that never comes "
                                    "(a cycle in the graph, or a reference to a call that does "
                                    "not exist)", where, ls[k].name, ls[k].done);
    /* the model's inputs and outputs: lists of [name, node, index] (one bare triple when single) */
    kc_tensor *ins[KC_MAX_IO], *outs[KC_MAX_IO];
    int n_in = 0, n_out = 0;
    const char *lists[2] = {"input_layers", "output_layers"};
    for (int which = 0; which < 2 && !st; which++) {
        const cJSON *list = get(cfg, lists[which]);
        const char *rn;
        int rnode, rindex;
        kc_tensor **dst = which ? outs : ins;
        int *count = which ? &n_out : &n_in;
        if (parse_ref(list, &rn, &rnode, &rindex, NULL)) {
            dst[(*count)++] = lookup(ls, n, rn, rnode, rindex);
        } else {
            const cJSON *r;
            cJSON_ArrayForEach(r, list) {
                if (*count >= KC_MAX_IO || !parse_ref(r, &rn, &rnode, &rindex, NULL)) {
                    st = kc_err(KC_EFORMAT, "%s: %s is not a list of up to %d [layer, node, "
                                            "tensor] references", where, lists[which], KC_MAX_IO);
                    break;
                }
                dst[(*count)++] = lookup(ls, n, rn, rnode, rindex);
            }
        }
        for (int k = 0; !st && k < *count; k++)
            if (!dst[k]) st = kc_err(KC_EFORMAT, "%s: %s %d names a tensor the model does not have",
                                     where, lists[which], k);
        if (!st && !*count) st = kc_err(KC_EFORMAT, "%s: %s is empty", where, lists[which]);
    }
    kc_model *m = NULL;
    if (!st && !(m = kc_functional(ins, n_in, outs, n_out))) st = kc_err_prefix(KC_EFORMAT, "%s", where);
    const cJSON *name = get(cfg, "name");
    if (m && cJSON_IsString(name)) kc_model_set_name(m, name->valuestring);
    if (m && cJSON_IsFalse(get(cfg, "trainable"))) kc_model_set_trainable(m, 0);
    if (m) m->batch_size = batch;
    /* what no model holds: tensors nothing consumed (all of them on an error), layers never
     * called */
    int n_made = 0;
    for (int k = 0; k < n; k++) {
        n_made += ls[k].input != NULL;
        for (int c = 0; c < ls[k].done; c++) n_made += ls[k].n_outs[c];
    }
    kc_tensor **made = malloc(sizeof *made * (size_t)(n_made ? n_made : 1));
    n_made = 0;
    for (int k = 0; k < n && made; k++) {
        if (ls[k].input) made[n_made++] = ls[k].input;
        for (int c = 0; c < ls[k].done; c++)
            for (int o = 0; o < ls[k].n_outs[c]; o++) made[n_made++] = ls[k].outs[c][o];
    }
    if (made) kc_tensors_free_floating(made, n_made);
    free(made);
    for (int k = 0; k < n; k++) /* called ones belong to their calls (freed with them) */
        if (ls[k].layer && ls[k].done == 0) kc_layer_free(ls[k].layer);
    free(ls);
    *out = m;
    return st;
}

static kc_status model_from(const cJSON *root, const char *where, kc_model **out) {
    *out = NULL;
    const cJSON *cls = get(root, "class_name"), *cfg = get(root, "config");
    if (!cJSON_IsString(cls) || !(cJSON_IsObject(cfg) || cJSON_IsArray(cfg)))
        return kc_err(KC_EFORMAT, "%s: the model config has no class_name and config", where);
    if (!strcmp(cls->valuestring, "Sequential")) return sequential_from(root, cfg, where, out);
    if ((!strcmp(cls->valuestring, "Functional") || !strcmp(cls->valuestring, "Model")) &&
        cJSON_IsObject(cfg))
        return functional_from(cfg, where, out);
    return kc_err(KC_EFORMAT, "%s: the model is a %s; kerac loads Sequential and Functional "
                              "models", where, cls->valuestring);
}

kc_status kc_config_model(const cJSON *root, const char *where, kc_model **out) {
    return model_from(root, where, out);
}
