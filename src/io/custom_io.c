/* custom_io.c: custom layer types in model files: the io of each type's class (its
 * kc_layer_ops, in custom.c's registry of types): the config is name, trainable and dtype (config.c), the type's
 * config_fields, then what its get_config adds; the variables are its declared weights,
 * trainable ones first, under their declared names. Files name the class as Keras does for a
 * registered class: Keras 3's {"module": null, "class_name": "Antirectifier", ...,
 * "registered_name": "Custom>Antirectifier"}, legacy files' class_name "Custom>Antirectifier".
 *
 * Also the initializers custom weights take: their Keras 3 configs and their draws. (The same
 * signatures as initializers.c's kc_init_fill and init_config.c's kc_initializer_to_json /
 * kc_initializer_from_json, which take their place where those exist.) */
#include "io.h"
#include "../initializers.h"
#include "../layers/custom.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the layer's config -------------------------------------------------------------------- */

static const kc_custom_layer *custom_of(const kc_layer *l) { return l->custom; }

kc_status kc_custom_io_to_config(const kc_layer *l, cJSON *cfg) {
    const kc_custom_layer *c = custom_of(l);
    const kc_custom_layer_type *t = &c->entry->type;
    const char *base = c->config;
    for (int i = 0; i < t->n_config_fields; i++) {
        const kc_config_field *f = &t->config_fields[i];
        const void *p = base + f->offset;
        switch (f->kind) {
        case KC_FIELD_INT: cJSON_AddNumberToObject(cfg, f->name, *(const int *)p); break;
        case KC_FIELD_FLOAT:
            cJSON_AddNumberToObject(cfg, f->name, kc_json_float(*(const float *)p));
            break;
        case KC_FIELD_BOOL: cJSON_AddBoolToObject(cfg, f->name, *(const int *)p != 0); break;
        case KC_FIELD_STRING: {
            char *s = malloc(f->size + 1);
            if (!s) return kc_err(KC_ENOMEM, "layer %s: out of memory", l->name);
            memcpy(s, p, f->size);
            s[f->size] = 0;
            cJSON_AddStringToObject(cfg, f->name, s);
            free(s);
            break;
        }
        case KC_FIELD_INITIALIZER:
            cJSON_AddItemToObject(cfg, f->name,
                                  kc_initializer_to_json((const kc_initializer *)p, KC_INIT_GLOROT_UNIFORM));
            break;
        }
    }
    if (!t->get_config) return KC_OK;
    char *text = NULL;
    kc_status st = t->get_config(c, &text);
    if (st) {
        free(text);
        return kc_err_prefix(st, "layer %s (%s): get_config", l->name, c->entry->class_name);
    }
    cJSON *extra = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!cJSON_IsObject(extra)) {
        cJSON_Delete(extra);
        return kc_err(KC_EINVAL, "layer %s (%s): get_config did not give a JSON object", l->name,
                      c->entry->class_name);
    }
    while (extra->child) {
        cJSON *item = cJSON_DetachItemViaPointer(extra, extra->child);
        if (cJSON_GetObjectItemCaseSensitive(cfg, item->string)) {
            kc_status e = kc_err(KC_EINVAL, "layer %s (%s): get_config gives '%s', a key kerac "
                                            "already writes",
                                 l->name, c->entry->class_name, item->string);
            cJSON_Delete(item);
            cJSON_Delete(extra);
            return e;
        }
        cJSON_AddItemToObject(cfg, item->string, item);
    }
    cJSON_Delete(extra);
    return KC_OK;
}

static kc_status read_field(const kc_config_field *f, const cJSON *v, char *base,
                            const char *where) {
    void *p = base + f->offset;
    switch (f->kind) {
    case KC_FIELD_INT:
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
            fabs(v->valuedouble) > 2147483647.0)
            return kc_err(KC_EFORMAT, "%s: %s is not a whole number", where, f->name);
        *(int *)p = (int)v->valuedouble;
        return KC_OK;
    case KC_FIELD_FLOAT:
        if (!cJSON_IsNumber(v))
            return kc_err(KC_EFORMAT, "%s: %s is not a number", where, f->name);
        *(float *)p = (float)v->valuedouble;
        return KC_OK;
    case KC_FIELD_BOOL:
        if (!cJSON_IsBool(v)) return kc_err(KC_EFORMAT, "%s: %s is not true or false", where, f->name);
        *(int *)p = cJSON_IsTrue(v);
        return KC_OK;
    case KC_FIELD_STRING:
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= f->size)
            return kc_err(KC_EFORMAT, "%s: %s is not a string of at most %zu bytes", where,
                          f->name, f->size ? f->size - 1 : 0);
        memset(p, 0, f->size);
        memcpy(p, v->valuestring, strlen(v->valuestring));
        return KC_OK;
    case KC_FIELD_INITIALIZER: {
        kc_initializer in = *(kc_initializer *)p;
        kc_status st = kc_initializer_from_json(v, where, f->name, &in);
        /* the kind and its parameters; the shape is checked when a weight takes it */
        if (!st) st = kc_init_check(&in, KC_INIT_GLOROT_UNIFORM, 2, (int64_t[]){2, 2}, where);
        if (!st) *(kc_initializer *)p = in;
        return st;
    }
    }
    return kc_err(KC_EINVAL, "%s: %s has an unknown kind", where, f->name);
}

kc_status kc_custom_io_from_config(const kc_custom_entry *e, const cJSON *cfg,
                                   const char *where, kc_layer **out) {
    *out = NULL;
    const kc_custom_layer_type *t = &e->type;
    char *config = t->config_size ? malloc(t->config_size) : NULL;
    if (t->config_size && !config) return kc_err(KC_ENOMEM, "%s: out of memory", where);
    if (config && t->default_config) memcpy(config, t->default_config, t->config_size);
    else if (config) memset(config, 0, t->config_size);
    kc_status st = KC_OK;
    const cJSON *item;
    cJSON_ArrayForEach(item, cfg) {
        const char *k = item->string;
        const kc_config_field *f = NULL;
        for (int i = 0; i < t->n_config_fields && !f; i++)
            if (!strcmp(t->config_fields[i].name, k)) f = &t->config_fields[i];
        if (f) st = read_field(f, item, config, where);
        else if (!t->from_config && strcmp(k, "name") && strcmp(k, "trainable") &&
                 strcmp(k, "dtype") && strcmp(k, "batch_input_shape") && strcmp(k, "batch_shape"))
            st = kc_err(KC_EFORMAT, "%s: config field '%s' is not one of custom layer type %s's "
                                    "config_fields (and the type has no from_config)",
                        where, k, e->class_name);
        if (st) break;
    }
    kc_layer *l = st ? NULL : kc_custom_make(e, config);
    free(config);
    if (!st && !l) st = kc_err_prefix(KC_ENOMEM, "%s", where);
    if (!st && t->from_config) {
        char *text = cJSON_PrintUnformatted(cfg);
        if (!text) st = kc_err(KC_ENOMEM, "%s: out of memory", where);
        else {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(cfg, "name");
            if (cJSON_IsString(name)) snprintf(l->name, sizeof l->name, "%s", name->valuestring);
            st = t->from_config(l->custom, text);
            if (st) kc_err_prefix(st, "%s: from_config", where);
            l->name[0] = 0; /* set by the model when it adds the layer */
            cJSON_free(text);
        }
    }
    if (st) {
        kc_layer_free(l);
        return st;
    }
    *out = l;
    return KC_OK;
}

int kc_custom_io_weights(const kc_layer *l, kc_weight_desc *out) {
    const kc_custom_layer *c = custom_of(l);
    int n = 0;
    for (int pass = 1; pass >= 0; pass--)
        for (int i = 0; i < c->n_weights; i++) {
            const kc_custom_weight_decl *w = &c->w[i];
            if (w->trainable != pass) continue;
            kc_weight_desc d = {.name = w->name, .rank = w->shape.rank, .offset = w->offset,
                                .count = w->count, .trainable = w->trainable};
            for (int k = 0; k < w->shape.rank; k++) d.dims[k] = w->shape.dims[k];
            out[n++] = d;
        }
    return n;
}
