/* custom_io.c: custom layer types in model files. One kc_layer_io per type (its entry in
 * custom.c's registry): the config is name, trainable and dtype (config.c), the type's
 * config_fields, then what its get_config adds; the variables are its declared weights,
 * trainable ones first, under their declared names. Files name the class as Keras does for a
 * registered class: Keras 3's {"module": null, "class_name": "Antirectifier", ...,
 * "registered_name": "Custom>Antirectifier"}, legacy files' class_name "Custom>Antirectifier".
 *
 * Also the initializers custom weights take: their Keras 3 configs and their draws. (The same
 * signatures as initializers.c's kc_init_fill and init_config.c's kc_initializer_to_json /
 * kc_initializer_from_json, which take their place where those exist.) */
#include "io.h"
#include "../layers/custom.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- initializers ---------------------------------------------------------------------- */

typedef struct {
    kc_init_kind kind;
    const char *cls, *snake;
    double scale;     /* the VarianceScaling family: scale, mode, distribution */
    kc_fan_mode mode;
    kc_distribution dist;
} init_info;

static const init_info inits[] = {
    {KC_INIT_GLOROT_UNIFORM, "GlorotUniform", "glorot_uniform", 1.0, KC_FAN_AVG, KC_UNIFORM},
    {KC_INIT_GLOROT_NORMAL, "GlorotNormal", "glorot_normal", 1.0, KC_FAN_AVG, KC_TRUNCATED_NORMAL},
    {KC_INIT_HE_UNIFORM, "HeUniform", "he_uniform", 2.0, KC_FAN_IN, KC_UNIFORM},
    {KC_INIT_HE_NORMAL, "HeNormal", "he_normal", 2.0, KC_FAN_IN, KC_TRUNCATED_NORMAL},
    {KC_INIT_LECUN_UNIFORM, "LecunUniform", "lecun_uniform", 1.0, KC_FAN_IN, KC_UNIFORM},
    {KC_INIT_LECUN_NORMAL, "LecunNormal", "lecun_normal", 1.0, KC_FAN_IN, KC_TRUNCATED_NORMAL},
    {KC_INIT_RANDOM_UNIFORM, "RandomUniform", "random_uniform", 0, 0, 0},
    {KC_INIT_RANDOM_NORMAL, "RandomNormal", "random_normal", 0, 0, 0},
    {KC_INIT_TRUNCATED_NORMAL, "TruncatedNormal", "truncated_normal", 0, 0, 0},
    {KC_INIT_VARIANCE_SCALING, "VarianceScaling", "variance_scaling", 0, 0, 0},
    {KC_INIT_ZEROS, "Zeros", "zeros", 0, 0, 0},
    {KC_INIT_ONES, "Ones", "ones", 0, 0, 0},
    {KC_INIT_CONSTANT, "Constant", "constant", 0, 0, 0},
};

static const init_info *init_of(kc_init_kind kind) {
    if (kind == KC_INIT_DEFAULT) kind = KC_INIT_GLOROT_UNIFORM;
    for (size_t i = 0; i < sizeof inits / sizeof *inits; i++)
        if (inits[i].kind == kind) return &inits[i];
    return NULL;
}

static const char *const mode_names[] = {"fan_in", "fan_out", "fan_avg"};
static const char *const dist_names[] = {"truncated_normal", "untruncated_normal", "uniform"};

kc_status kc_custom_init_check(const kc_initializer *init, const char *where) {
    if (init->kind == KC_INIT_ORTHOGONAL || init->kind == KC_INIT_IDENTITY)
        return kc_err(KC_EINVAL, "%s: the %s initializer is not available to custom layers yet",
                      where, init->kind == KC_INIT_ORTHOGONAL ? "Orthogonal" : "Identity");
    if (!init_of(init->kind))
        return kc_err(KC_EINVAL, "%s: unknown initializer kind %d", where, (int)init->kind);
    double nums[] = {init->minval, init->maxval, init->mean, init->stddev, init->scale,
                     init->value};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++)
        if (!isfinite(nums[i]))
            return kc_err(KC_EINVAL, "%s: the initializer's parameters must be finite", where);
    if (init->stddev < 0 || init->scale < 0)
        return kc_err(KC_EINVAL, "%s: the initializer's stddev and scale must be >= 0", where);
    if ((unsigned)init->mode > KC_FAN_AVG || (unsigned)init->distribution > KC_UNIFORM)
        return kc_err(KC_EINVAL, "%s: unknown VarianceScaling mode %d or distribution %d", where,
                      (int)init->mode, (int)init->distribution);
    return KC_OK;
}

/* N(0, 1) by Box-Muller, from 53-bit uniforms in (0, 1] and [0, 1) */
static double normal01(kc_rng *r) {
    double u1 = ((double)(kc_rng_next(r) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(kc_rng_next(r) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static double uniform01(kc_rng *r) { return (double)(kc_rng_next(r) >> 11) * 0x1.0p-53; }

/* Keras's truncated normal: redrawn beyond 2 stddev */
static double truncated01(kc_rng *r) {
    for (;;) {
        double x = normal01(r);
        if (fabs(x) <= 2.0) return x;
    }
}

kc_status kc_custom_init_fill(const kc_initializer *init, kc_init_kind default_kind, float *w,
                              int rank, const int64_t *shape, kc_rng *rng) {
    kc_initializer in = *init;
    if (in.kind == KC_INIT_DEFAULT) in = (kc_initializer){.kind = default_kind};
    int64_t n = 1;
    for (int d = 0; d < rank; d++) n *= shape[d];
    kc_rng own;
    if (in.has_seed) {
        kc_rng_seed(&own, in.seed);
        rng = &own;
    }
    /* keras.src.initializers.random_initializers.compute_fans */
    double fan_in = 1, fan_out = 1;
    if (rank == 1) fan_in = fan_out = (double)shape[0];
    else if (rank == 2) fan_in = (double)shape[0], fan_out = (double)shape[1];
    else if (rank > 2) {
        double field = 1;
        for (int d = 0; d < rank - 2; d++) field *= (double)shape[d];
        fan_in = (double)shape[rank - 2] * field;
        fan_out = (double)shape[rank - 1] * field;
    }
    const init_info *info = init_of(in.kind);
    switch (in.kind) {
    case KC_INIT_ZEROS:
    case KC_INIT_ONES:
    case KC_INIT_CONSTANT: {
        float v = in.kind == KC_INIT_ZEROS ? 0.0f : in.kind == KC_INIT_ONES ? 1.0f : (float)in.value;
        for (int64_t i = 0; i < n; i++) w[i] = v;
        return KC_OK;
    }
    case KC_INIT_RANDOM_UNIFORM: {
        double lo = in.minval, hi = in.maxval;
        if (lo == 0 && hi == 0) lo = -0.05, hi = 0.05;
        for (int64_t i = 0; i < n; i++) w[i] = (float)(lo + (hi - lo) * uniform01(rng));
        return KC_OK;
    }
    case KC_INIT_RANDOM_NORMAL:
    case KC_INIT_TRUNCATED_NORMAL: {
        double sd = in.stddev > 0 ? in.stddev : 0.05;
        int trunc = in.kind == KC_INIT_TRUNCATED_NORMAL;
        for (int64_t i = 0; i < n; i++)
            w[i] = (float)(in.mean + sd * (trunc ? truncated01(rng) : normal01(rng)));
        return KC_OK;
    }
    default: break;
    }
    if (!info) {
        for (int64_t i = 0; i < n; i++) w[i] = NAN;
        return KC_OK;
    }
    double scale = info->scale;
    kc_fan_mode mode = info->mode;
    kc_distribution dist = info->dist;
    if (in.kind == KC_INIT_VARIANCE_SCALING) {
        scale = in.scale > 0 ? in.scale : 1.0;
        mode = in.mode;
        dist = in.distribution;
    }
    double fan = mode == KC_FAN_IN ? fan_in : mode == KC_FAN_OUT ? fan_out : (fan_in + fan_out) / 2;
    scale /= fan > 1.0 ? fan : 1.0;
    if (dist == KC_UNIFORM) {
        double limit = sqrt(3.0 * scale);
        for (int64_t i = 0; i < n; i++) w[i] = (float)((2.0 * uniform01(rng) - 1.0) * limit);
    } else if (dist == KC_UNTRUNCATED_NORMAL) {
        double sd = sqrt(scale);
        for (int64_t i = 0; i < n; i++) w[i] = (float)(sd * normal01(rng));
    } else {
        double sd = sqrt(scale) / 0.87962566103423978;
        for (int64_t i = 0; i < n; i++) w[i] = (float)(sd * truncated01(rng));
    }
    return KC_OK;
}

/* Keras 3's serialized initializer */
static cJSON *init_to_json(const kc_initializer *init, kc_init_kind default_kind) {
    kc_initializer in = *init;
    if (in.kind == KC_INIT_DEFAULT) in.kind = default_kind;
    const init_info *info = init_of(in.kind);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "module", "keras.initializers");
    cJSON_AddStringToObject(o, "class_name", info ? info->cls : "GlorotUniform");
    cJSON *c = cJSON_AddObjectToObject(o, "config");
    switch (in.kind) {
    case KC_INIT_RANDOM_UNIFORM:
        cJSON_AddNumberToObject(c, "minval", in.minval == 0 && in.maxval == 0 ? -0.05 : in.minval);
        cJSON_AddNumberToObject(c, "maxval", in.minval == 0 && in.maxval == 0 ? 0.05 : in.maxval);
        break;
    case KC_INIT_RANDOM_NORMAL:
    case KC_INIT_TRUNCATED_NORMAL:
        cJSON_AddNumberToObject(c, "mean", in.mean);
        cJSON_AddNumberToObject(c, "stddev", in.stddev > 0 ? in.stddev : 0.05);
        break;
    case KC_INIT_VARIANCE_SCALING:
        cJSON_AddNumberToObject(c, "scale", in.scale > 0 ? in.scale : 1.0);
        cJSON_AddStringToObject(c, "mode", mode_names[in.mode]);
        cJSON_AddStringToObject(c, "distribution", dist_names[in.distribution]);
        break;
    case KC_INIT_CONSTANT: cJSON_AddNumberToObject(c, "value", in.value); break;
    default: break;
    }
    if (in.kind != KC_INIT_ZEROS && in.kind != KC_INIT_ONES && in.kind != KC_INIT_CONSTANT) {
        if (in.has_seed) cJSON_AddNumberToObject(c, "seed", (double)in.seed);
        else cJSON_AddNullToObject(c, "seed");
    }
    cJSON_AddNullToObject(o, "registered_name");
    return o;
}

static kc_status init_number(const cJSON *c, const char *key, double *out, const char *where,
                             const char *field) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, key);
    if (!v) return KC_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return kc_err(KC_EFORMAT, "%s: %s: the initializer's %s is not a number", where, field, key);
    *out = v->valuedouble;
    return KC_OK;
}

/* a name ("he_normal", "HeNormal"), null (glorot_uniform, add_weight's default), or
 * {"module", "class_name", "config", "registered_name"} */
static kc_status init_from_json(const cJSON *v, const char *where, const char *field,
                                kc_initializer *out) {
    if (!v) return KC_OK;
    if (cJSON_IsNull(v)) {
        *out = (kc_initializer){0};
        return KC_OK;
    }
    const cJSON *cls = cJSON_IsString(v) ? v : cJSON_GetObjectItemCaseSensitive(v, "class_name");
    const cJSON *cfg = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "config") : NULL;
    if (!cJSON_IsString(cls))
        return kc_err(KC_EFORMAT, "%s: %s: the initializer is neither a name nor a config with a "
                                  "class_name",
                      where, field);
    const cJSON *rn = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "registered_name") : NULL;
    const cJSON *mod = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "module") : NULL;
    if ((rn && !cJSON_IsNull(rn) && !(cJSON_IsString(rn) && !strcmp(rn->valuestring, cls->valuestring))) ||
        (cJSON_IsString(mod) && strcmp(mod->valuestring, "keras.initializers")))
        return kc_err(KC_EFORMAT, "%s: %s: the initializer %s is a custom object, which kerac "
                                  "cannot load",
                      where, field, cls->valuestring);
    const init_info *info = NULL;
    for (size_t i = 0; i < sizeof inits / sizeof *inits && !info; i++)
        if (!strcmp(cls->valuestring, inits[i].cls) || !strcmp(cls->valuestring, inits[i].snake))
            info = &inits[i];
    if (!info && (!strcmp(cls->valuestring, "uniform") || !strcmp(cls->valuestring, "normal")))
        info = init_of(cls->valuestring[0] == 'u' ? KC_INIT_RANDOM_UNIFORM : KC_INIT_RANDOM_NORMAL);
    if (!info && (!strcmp(cls->valuestring, "zero") || !strcmp(cls->valuestring, "one")))
        info = init_of(cls->valuestring[1] == 'e' ? KC_INIT_ZEROS : KC_INIT_ONES);
    if (!info)
        return kc_err(KC_EFORMAT, "%s: %s: the initializer '%s' is not available to custom layers",
                      where, field, cls->valuestring);
    kc_initializer in = {.kind = info->kind};
    if (cfg && !cJSON_IsNull(cfg) && !cJSON_IsObject(cfg))
        return kc_err(KC_EFORMAT, "%s: %s: the initializer's config is not an object", where, field);
    const cJSON *item, *fields = cJSON_IsObject(cfg) ? cfg : NULL;
    cJSON_ArrayForEach(item, fields) {
        const char *k = item->string;
        kc_status st = KC_OK;
        if (!strcmp(k, "seed")) {
            if (cJSON_IsNull(item)) continue;
            if (!cJSON_IsNumber(item) || item->valuedouble < 0 ||
                item->valuedouble != floor(item->valuedouble) || item->valuedouble > 9.0e15)
                return kc_err(KC_EFORMAT, "%s: %s: the initializer's seed is not null or a whole "
                                          "number >= 0 (a SeedGenerator cannot be loaded)",
                              where, field);
            in.has_seed = 1;
            in.seed = (uint64_t)item->valuedouble;
        } else if ((!strcmp(k, "input_axes") || !strcmp(k, "output_axes")) && cJSON_IsNull(item)) {
            continue; /* Keras 3.13+'s VarianceScaling fields, null by default */
        } else if (info->kind == KC_INIT_RANDOM_UNIFORM && !strcmp(k, "minval")) {
            st = init_number(cfg, k, &in.minval, where, field);
        } else if (info->kind == KC_INIT_RANDOM_UNIFORM && !strcmp(k, "maxval")) {
            st = init_number(cfg, k, &in.maxval, where, field);
        } else if ((info->kind == KC_INIT_RANDOM_NORMAL || info->kind == KC_INIT_TRUNCATED_NORMAL) &&
                   (!strcmp(k, "mean") || !strcmp(k, "stddev"))) {
            st = init_number(cfg, k, k[0] == 'm' ? &in.mean : &in.stddev, where, field);
        } else if (info->kind == KC_INIT_CONSTANT && !strcmp(k, "value")) {
            st = init_number(cfg, k, &in.value, where, field);
        } else if (info->kind == KC_INIT_VARIANCE_SCALING && !strcmp(k, "scale")) {
            st = init_number(cfg, k, &in.scale, where, field);
            if (!st && !(in.scale > 0))
                st = kc_err(KC_EFORMAT, "%s: %s: VarianceScaling's scale must be > 0", where, field);
        } else if (info->kind == KC_INIT_VARIANCE_SCALING &&
                   (!strcmp(k, "mode") || !strcmp(k, "distribution"))) {
            int is_mode = k[0] == 'm', found = -1;
            const char *const *names = is_mode ? mode_names : dist_names;
            for (int i = 0; i < 3 && cJSON_IsString(item); i++)
                if (!strcmp(item->valuestring, names[i])) found = i;
            if (!is_mode && cJSON_IsString(item) && !strcmp(item->valuestring, "normal"))
                found = KC_TRUNCATED_NORMAL; /* Keras's alias */
            if (found < 0)
                return kc_err(KC_EFORMAT, "%s: %s: unknown VarianceScaling %s", where, field, k);
            if (is_mode) in.mode = (kc_fan_mode)found;
            else in.distribution = (kc_distribution)found;
        } else {
            return kc_err(KC_EFORMAT, "%s: %s: the initializer %s has a config field '%s' kerac "
                                      "does not know",
                          where, field, info->cls, k);
        }
        if (st) return st;
    }
    if (info->kind == KC_INIT_RANDOM_UNIFORM && in.minval == 0 && in.maxval == 0 &&
        !cJSON_GetObjectItemCaseSensitive(cfg, "minval"))
        in.minval = -0.05, in.maxval = 0.05;
    *out = in;
    return KC_OK;
}

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
                                  init_to_json((const kc_initializer *)p, KC_INIT_GLOROT_UNIFORM));
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
        kc_status st = init_from_json(v, where, f->name, &in);
        if (!st) st = kc_custom_init_check(&in, where);
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
