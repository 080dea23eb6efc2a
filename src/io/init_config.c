/* init_config.c: initializers and regularizers in Keras's configs and back. Reads Keras 3's
 * form {"module": "keras.initializers", "class_name": "HeNormal", "config": {"seed": null},
 * "registered_name": null}, tf.keras 2's {"class_name": ..., "config": ...} and the string
 * names both accept ("he_normal", "zeros", "l2", ...); writes Keras 3's form. Whatever kerac
 * cannot honour (an unknown class or config field, a custom object, a SeedGenerator) is
 * refused with its name, never dropped. */
#include "io.h"
#include "../initializers.h"
#include <math.h>
#include <string.h>
#include <strings.h>

/* ---- names ---- */

typedef struct {
    const char *name;
    kc_init_kind kind;
} init_name;

/* Keras 3's ALL_OBJECTS_DICT (class names, their snake case, the aliases) and tf.keras 2's
 * compatibility names (the V2 suffixes) */
static const init_name init_names[] = {
    {"GlorotUniform", KC_INIT_GLOROT_UNIFORM},   {"glorot_uniform", KC_INIT_GLOROT_UNIFORM},
    {"GlorotNormal", KC_INIT_GLOROT_NORMAL},     {"glorot_normal", KC_INIT_GLOROT_NORMAL},
    {"HeUniform", KC_INIT_HE_UNIFORM},           {"he_uniform", KC_INIT_HE_UNIFORM},
    {"HeNormal", KC_INIT_HE_NORMAL},             {"he_normal", KC_INIT_HE_NORMAL},
    {"LecunUniform", KC_INIT_LECUN_UNIFORM},     {"lecun_uniform", KC_INIT_LECUN_UNIFORM},
    {"LecunNormal", KC_INIT_LECUN_NORMAL},       {"lecun_normal", KC_INIT_LECUN_NORMAL},
    {"RandomUniform", KC_INIT_RANDOM_UNIFORM},   {"random_uniform", KC_INIT_RANDOM_UNIFORM},
    {"uniform", KC_INIT_RANDOM_UNIFORM},         {"RandomNormal", KC_INIT_RANDOM_NORMAL},
    {"random_normal", KC_INIT_RANDOM_NORMAL},    {"normal", KC_INIT_RANDOM_NORMAL},
    {"TruncatedNormal", KC_INIT_TRUNCATED_NORMAL}, {"truncated_normal", KC_INIT_TRUNCATED_NORMAL},
    {"VarianceScaling", KC_INIT_VARIANCE_SCALING}, {"variance_scaling", KC_INIT_VARIANCE_SCALING},
    {"Orthogonal", KC_INIT_ORTHOGONAL},          {"orthogonal", KC_INIT_ORTHOGONAL},
    {"OrthogonalInitializer", KC_INIT_ORTHOGONAL}, {"Identity", KC_INIT_IDENTITY},
    {"identity", KC_INIT_IDENTITY},              {"IdentityInitializer", KC_INIT_IDENTITY},
    {"Zeros", KC_INIT_ZEROS},                    {"zeros", KC_INIT_ZEROS},
    {"zero", KC_INIT_ZEROS},                     {"Ones", KC_INIT_ONES},
    {"ones", KC_INIT_ONES},                      {"one", KC_INIT_ONES},
    {"Constant", KC_INIT_CONSTANT},              {"constant", KC_INIT_CONSTANT},
    /* tf.keras 2 */
    {"ConstantV2", KC_INIT_CONSTANT},            {"GlorotNormalV2", KC_INIT_GLOROT_NORMAL},
    {"GlorotUniformV2", KC_INIT_GLOROT_UNIFORM}, {"HeNormalV2", KC_INIT_HE_NORMAL},
    {"HeUniformV2", KC_INIT_HE_UNIFORM},         {"IdentityV2", KC_INIT_IDENTITY},
    {"LecunNormalV2", KC_INIT_LECUN_NORMAL},     {"LecunUniformV2", KC_INIT_LECUN_UNIFORM},
    {"OnesV2", KC_INIT_ONES},                    {"OrthogonalV2", KC_INIT_ORTHOGONAL},
    {"RandomNormalV2", KC_INIT_RANDOM_NORMAL},   {"RandomUniformV2", KC_INIT_RANDOM_UNIFORM},
    {"TruncatedNormalV2", KC_INIT_TRUNCATED_NORMAL},
    {"VarianceScalingV2", KC_INIT_VARIANCE_SCALING}, {"ZerosV2", KC_INIT_ZEROS},
    {"glorot_normalV2", KC_INIT_GLOROT_NORMAL},  {"glorot_uniformV2", KC_INIT_GLOROT_UNIFORM},
    {"he_normalV2", KC_INIT_HE_NORMAL},          {"he_uniformV2", KC_INIT_HE_UNIFORM},
    {"lecun_normalV2", KC_INIT_LECUN_NORMAL},    {"lecun_uniformV2", KC_INIT_LECUN_UNIFORM},
};

/* Keras's, known but not in kerac */
static const char *const init_unsupported[] = {"STFT", "stft", "STFTInitializer", "Initializer",
                                               "initializer"};

static kc_status init_kind_of(const char *name, const char *where, const char *field,
                              kc_init_kind *out) {
    for (size_t i = 0; i < sizeof init_names / sizeof *init_names; i++)
        if (!strcmp(init_names[i].name, name)) {
            *out = init_names[i].kind;
            return KC_OK;
        }
    for (size_t i = 0; i < sizeof init_unsupported / sizeof *init_unsupported; i++)
        if (!strcmp(init_unsupported[i], name))
            return kc_err(KC_EFORMAT, "%s: %s: the initializer '%s' is not supported by kerac",
                          where, field, name);
    return kc_err(KC_EFORMAT, "%s: %s: unknown initializer '%s'", where, field, name);
}

/* ---- the {"module", "class_name", "config", "registered_name"} envelope ---- */

/* class_name and config (NULL when absent or null) of a dict identifier; refuses custom
 * objects (another module, a registered name of its own) */
static kc_status envelope(const cJSON *v, const char *where, const char *field,
                          const char *module_tail, const char **cls, const cJSON **config) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "class_name");
    if (!cJSON_IsString(c))
        return kc_err(KC_EFORMAT, "%s: %s: class_name is missing or not a string", where, field);
    *cls = c->valuestring;
    for (const cJSON *it = v->child; it; it = it->next) {
        const char *k = it->string;
        if (!strcmp(k, "class_name") || !strcmp(k, "config")) continue;
        if (!strcmp(k, "module")) {
            /* "keras.initializers" (Keras 3), "keras.src.initializers..." */
            const char *m = cJSON_IsString(it) ? it->valuestring : NULL;
            if (!m || strncmp(m, "keras.", 6) || !strstr(m, module_tail))
                return kc_err(KC_EFORMAT,
                              "%s: %s: module '%s' (a custom object) is not supported by kerac",
                              where, field, m ? m : "?");
        } else if (!strcmp(k, "registered_name")) {
            if (!cJSON_IsNull(it) && !(cJSON_IsString(it) && !strcmp(it->valuestring, *cls)))
                return kc_err(KC_EFORMAT,
                              "%s: %s: registered_name '%s' (a custom object) is not supported "
                              "by kerac",
                              where, field, cJSON_IsString(it) ? it->valuestring : "?");
        } else if (!strcmp(k, "shared_object_id")) {
            /* tf.keras 2's sharing of one instance between layers: no meaning for a config */
        } else {
            return kc_err(KC_EFORMAT, "%s: %s: unknown key '%s' beside class_name and config",
                          where, field, k);
        }
    }
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(v, "config");
    if (cfg && !cJSON_IsNull(cfg) && !cJSON_IsObject(cfg))
        return kc_err(KC_EFORMAT, "%s: %s: config of %s is not an object", where, field, *cls);
    *config = cJSON_IsObject(cfg) ? cfg : NULL;
    return KC_OK;
}

static cJSON *wrap(const char *module, const char *cls, cJSON *config) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "module", module);
    cJSON_AddStringToObject(o, "class_name", cls);
    cJSON_AddItemToObject(o, "config", config);
    cJSON_AddNullToObject(o, "registered_name");
    return o;
}

/* ---- initializers ---- */

/* the config fields each kind takes (Keras 3's get_config; tf.keras 2 writes a subset) */
enum {
    F_SEED = 1 << 0,
    F_AXES = 1 << 1, /* input_axes, output_axes: Keras 3.1x, null only */
    F_MEAN_STDDEV = 1 << 2,
    F_MINMAX = 1 << 3,
    F_VS = 1 << 4, /* scale, mode, distribution */
    F_GAIN = 1 << 5,
    F_VALUE = 1 << 6
};

static unsigned init_fields(kc_init_kind kind) {
    switch (kind) {
    case KC_INIT_GLOROT_UNIFORM:
    case KC_INIT_GLOROT_NORMAL:
    case KC_INIT_HE_UNIFORM:
    case KC_INIT_HE_NORMAL:
    case KC_INIT_LECUN_UNIFORM:
    case KC_INIT_LECUN_NORMAL: return F_SEED | F_AXES;
    case KC_INIT_VARIANCE_SCALING: return F_SEED | F_AXES | F_VS;
    case KC_INIT_RANDOM_UNIFORM: return F_SEED | F_MINMAX;
    case KC_INIT_RANDOM_NORMAL:
    case KC_INIT_TRUNCATED_NORMAL: return F_SEED | F_MEAN_STDDEV;
    case KC_INIT_ORTHOGONAL: return F_SEED | F_GAIN;
    case KC_INIT_IDENTITY: return F_GAIN;
    case KC_INIT_CONSTANT: return F_VALUE;
    default: return 0;
    }
}

static kc_status number_field(const cJSON *it, const char *where, const char *field,
                              const char *cls, double *out) {
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return kc_err(KC_EFORMAT, "%s: %s: %s's %s is not a finite number", where, field, cls,
                      it->string);
    *out = it->valuedouble;
    return KC_OK;
}

static kc_status init_config(const cJSON *cfg, kc_init_kind kind, const char *cls,
                             const char *where, const char *field, kc_initializer *init) {
    unsigned allowed = init_fields(kind);
    for (const cJSON *it = cfg ? cfg->child : NULL; it; it = it->next) {
        const char *k = it->string;
        kc_status st = KC_OK;
        if ((allowed & F_SEED) && !strcmp(k, "seed")) {
            if (cJSON_IsNull(it)) continue;
            if (cJSON_IsObject(it))
                return kc_err(KC_EFORMAT,
                              "%s: %s: %s's seed is a SeedGenerator, which kerac does not "
                              "support (an integer or null only)",
                              where, field, cls);
            if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 0x1p53 ||
                it->valuedouble != floor(it->valuedouble))
                return kc_err(KC_EFORMAT,
                              "%s: %s: %s's seed must be null or a whole number >= 0", where,
                              field, cls);
            init->has_seed = 1;
            init->seed = (uint64_t)it->valuedouble;
        } else if ((allowed & F_AXES) &&
                   (!strcmp(k, "input_axes") || !strcmp(k, "output_axes"))) {
            if (!cJSON_IsNull(it))
                return kc_err(KC_EFORMAT, "%s: %s: %s's %s is not supported by kerac (null only)",
                              where, field, cls, k);
        } else if ((allowed & F_MEAN_STDDEV) && !strcmp(k, "mean")) {
            st = number_field(it, where, field, cls, &init->mean);
        } else if ((allowed & F_MEAN_STDDEV) && !strcmp(k, "stddev")) {
            st = number_field(it, where, field, cls, &init->stddev);
            if (!st && init->stddev == 0.0)
                st = kc_err(KC_EFORMAT, "%s: %s: %s's stddev 0 is not supported by kerac", where,
                            field, cls);
        } else if ((allowed & F_MINMAX) && !strcmp(k, "minval")) {
            st = number_field(it, where, field, cls, &init->minval);
        } else if ((allowed & F_MINMAX) && !strcmp(k, "maxval")) {
            st = number_field(it, where, field, cls, &init->maxval);
        } else if ((allowed & F_VS) && !strcmp(k, "scale")) {
            st = number_field(it, where, field, cls, &init->scale);
            if (!st && !(init->scale > 0.0))
                st = kc_err(KC_EFORMAT, "%s: %s: %s's scale must be positive, got %g", where,
                            field, cls, init->scale);
        } else if ((allowed & F_VS) && !strcmp(k, "mode")) {
            const char *m = cJSON_IsString(it) ? it->valuestring : "?";
            if (!strcmp(m, "fan_in")) init->mode = KC_FAN_IN;
            else if (!strcmp(m, "fan_out")) init->mode = KC_FAN_OUT;
            else if (!strcmp(m, "fan_avg")) init->mode = KC_FAN_AVG;
            else
                return kc_err(KC_EFORMAT,
                              "%s: %s: %s's mode '%s' is not fan_in, fan_out or fan_avg", where,
                              field, cls, m);
        } else if ((allowed & F_VS) && !strcmp(k, "distribution")) {
            const char *d = cJSON_IsString(it) ? it->valuestring : "?";
            /* Keras lower-cases it, and takes "normal" for truncated_normal */
            if (!strcasecmp(d, "truncated_normal") || !strcasecmp(d, "normal"))
                init->distribution = KC_TRUNCATED_NORMAL;
            else if (!strcasecmp(d, "untruncated_normal"))
                init->distribution = KC_UNTRUNCATED_NORMAL;
            else if (!strcasecmp(d, "uniform"))
                init->distribution = KC_UNIFORM;
            else
                return kc_err(KC_EFORMAT,
                              "%s: %s: %s's distribution '%s' is not truncated_normal, "
                              "untruncated_normal or uniform",
                              where, field, cls, d);
        } else if ((allowed & F_GAIN) && !strcmp(k, "gain")) {
            st = number_field(it, where, field, cls, &init->gain);
            if (!st && init->gain == 0.0)
                st = kc_err(KC_EFORMAT, "%s: %s: %s's gain 0 is not supported by kerac", where,
                            field, cls);
        } else if ((allowed & F_VALUE) && !strcmp(k, "value")) {
            st = number_field(it, where, field, cls, &init->value);
        } else {
            return kc_err(KC_EFORMAT, "%s: %s: unknown config field '%s' of %s", where, field, k,
                          cls);
        }
        if (st) return st;
    }
    if (kind == KC_INIT_RANDOM_UNIFORM && init->minval == 0.0 && init->maxval == 0.0)
        return kc_err(KC_EFORMAT,
                      "%s: %s: RandomUniform with minval = maxval = 0 is not supported by kerac",
                      where, field);
    return KC_OK;
}

kc_status kc_initializer_from_json(const cJSON *v, const char *where, const char *field,
                                   kc_initializer *out) {
    if (!v) return KC_OK; /* absent: the layer's default */
    if (cJSON_IsNull(v)) {
        /* Keras's add_weight takes glorot_uniform for a float weight without initializer */
        *out = kc_init(KC_INIT_GLOROT_UNIFORM);
        return KC_OK;
    }
    kc_init_kind kind;
    kc_status st;
    if (cJSON_IsString(v)) { /* Keras's get(name): {"class_name": name, "config": {}} */
        st = init_kind_of(v->valuestring, where, field, &kind);
        if (!st) *out = kc_init(kind);
        return st;
    }
    if (!cJSON_IsObject(v))
        return kc_err(KC_EFORMAT, "%s: %s is neither null, a name nor an object", where, field);
    const char *cls;
    const cJSON *cfg;
    st = envelope(v, where, field, "initializers", &cls, &cfg);
    if (!st) st = init_kind_of(cls, where, field, &kind);
    if (st) return st;
    kc_initializer init = kc_init(kind);
    st = init_config(cfg, kind, kc_init_class_name(kind), where, field, &init);
    if (!st) *out = init;
    return st;
}

cJSON *kc_initializer_to_json(const kc_initializer *init, kc_init_kind default_kind) {
    static const kc_initializer none = {0};
    if (!init) init = &none;
    kc_init_kind kind = kc_init_resolve(init, default_kind);
    const char *cls = kc_init_class_name(kind);
    if (!cls) return NULL;
    kc_initializer d = *init;
    if (init->kind == KC_INIT_DEFAULT) { /* the default kind's parameters, the seed kept */
        d = kc_init(kind);
        d.has_seed = init->has_seed;
        d.seed = init->seed;
    }
    unsigned f = init_fields(kind);
    cJSON *c = cJSON_CreateObject();
    if (f & F_SEED) {
        if (d.has_seed) cJSON_AddNumberToObject(c, "seed", (double)d.seed);
        else cJSON_AddNullToObject(c, "seed");
    }
    /* input_axes and output_axes (null) are left out: Keras 3 releases before them refuse
     * them, and null is their default */
    if (f & F_MEAN_STDDEV) {
        cJSON_AddNumberToObject(c, "mean", d.mean);
        cJSON_AddNumberToObject(c, "stddev", d.stddev != 0.0 ? d.stddev : 0.05);
    }
    if (f & F_MINMAX) {
        int dflt = d.minval == 0.0 && d.maxval == 0.0;
        cJSON_AddNumberToObject(c, "minval", dflt ? -0.05 : d.minval);
        cJSON_AddNumberToObject(c, "maxval", dflt ? 0.05 : d.maxval);
    }
    if (f & F_VS) {
        static const char *const modes[] = {"fan_in", "fan_out", "fan_avg"};
        static const char *const dists[] = {"truncated_normal", "untruncated_normal", "uniform"};
        _Static_assert(sizeof modes / sizeof *modes == KC_FAN_AVG + 1, "a row per kc_fan_mode");
        _Static_assert(sizeof dists / sizeof *dists == KC_UNIFORM + 1,
                       "a row per kc_distribution");
        cJSON_AddNumberToObject(c, "scale", d.scale != 0.0 ? d.scale : 1.0);
        cJSON_AddStringToObject(c, "mode", modes[(unsigned)d.mode <= KC_FAN_AVG ? d.mode : 0]);
        cJSON_AddStringToObject(
            c, "distribution", dists[(unsigned)d.distribution <= KC_UNIFORM ? d.distribution : 0]);
    }
    /* Keras 3's Identity writes no gain (its config is {}); tf.keras 2's and kerac's write it,
     * and both read it */
    if (f & F_GAIN) cJSON_AddNumberToObject(c, "gain", d.gain != 0.0 ? d.gain : 1.0);
    if (f & F_VALUE) cJSON_AddNumberToObject(c, "value", d.value);
    return wrap("keras.initializers", cls, c);
}

/* ---- regularizers ---- */

typedef enum { R_L1, R_L2, R_L1L2, R_L1_L2_FN } reg_class;

static kc_status reg_class_of(const char *name, const char *where, const char *field,
                              reg_class *out) {
    if (!strcmp(name, "L1") || !strcmp(name, "l1")) *out = R_L1;
    else if (!strcmp(name, "L2") || !strcmp(name, "l2")) *out = R_L2;
    else if (!strcmp(name, "L1L2") || !strcmp(name, "l1l2")) *out = R_L1L2;
    /* tf.keras 2's function l1_l2(l1=0.01, l2=0.01) (Keras 3 has no such name) */
    else if (!strcmp(name, "l1_l2")) *out = R_L1_L2_FN;
    else if (!strcmp(name, "OrthogonalRegularizer") || !strcmp(name, "orthogonal_regularizer") ||
             !strcmp(name, "Regularizer") || !strcmp(name, "regularizer"))
        return kc_err(KC_EFORMAT, "%s: %s: the regularizer '%s' is not supported by kerac", where,
                      field, name);
    else return kc_err(KC_EFORMAT, "%s: %s: unknown regularizer '%s'", where, field, name);
    return KC_OK;
}

/* the class's defaults: L1() l1 0.01, L2() l2 0.01, L1L2() both 0, tf.keras 2's "l1_l2" both
 * 0.01 */
static kc_regularizer reg_defaults(reg_class c) {
    switch (c) {
    case R_L1: return kc_l1(0.01f);
    case R_L2: return kc_l2(0.01f);
    case R_L1_L2_FN: return kc_l1_l2(0.01f, 0.01f);
    default: return kc_l1_l2(0.0f, 0.0f);
    }
}

kc_status kc_regularizer_from_json(const cJSON *v, const char *where, const char *field,
                                   kc_regularizer *out) {
    if (!v || cJSON_IsNull(v)) {
        *out = (kc_regularizer){0};
        return KC_OK;
    }
    reg_class rc;
    kc_status st;
    if (cJSON_IsString(v)) {
        st = reg_class_of(v->valuestring, where, field, &rc);
        if (!st) *out = reg_defaults(rc);
        return st;
    }
    if (!cJSON_IsObject(v))
        return kc_err(KC_EFORMAT, "%s: %s is neither null, a name nor an object", where, field);
    const char *cls;
    const cJSON *cfg;
    st = envelope(v, where, field, "regularizers", &cls, &cfg);
    if (!st) st = reg_class_of(cls, where, field, &rc);
    if (st) return st;
    kc_regularizer r = reg_defaults(rc);
    for (const cJSON *it = cfg ? cfg->child : NULL; it; it = it->next) {
        const char *k = it->string;
        int is_l1 = !strcmp(k, "l1"), is_l2 = !strcmp(k, "l2");
        if (!((is_l1 && rc != R_L2) || (is_l2 && rc != R_L1)))
            return kc_err(KC_EFORMAT, "%s: %s: unknown config field '%s' of %s", where, field, k,
                          cls);
        float *dst = is_l1 ? &r.l1 : &r.l2;
        if (cJSON_IsNull(it)) continue; /* None: the class's default */
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < 0)
            return kc_err(KC_EFORMAT, "%s: %s: %s's %s must be a finite number >= 0", where,
                          field, cls, k);
        *dst = (float)it->valuedouble;
    }
    *out = r;
    return KC_OK;
}

cJSON *kc_regularizer_to_json(const kc_regularizer *r) {
    if (!kc_regularizer_active(r)) return cJSON_CreateNull();
    /* L1(l1), L2(l2) or L1L2(l1, l2) by which are set: the same penalty as the class read */
    cJSON *c = cJSON_CreateObject();
    if (r->l1 != 0.0f) cJSON_AddNumberToObject(c, "l1", kc_json_float(r->l1));
    if (r->l2 != 0.0f) cJSON_AddNumberToObject(c, "l2", kc_json_float(r->l2));
    return wrap("keras.regularizers", r->l2 == 0.0f ? "L1" : r->l1 == 0.0f ? "L2" : "L1L2", c);
}
