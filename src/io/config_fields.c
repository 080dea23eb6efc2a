/* config_fields.c: the config fields several layer classes and the optimizers share
 * (config_fields.h), Keras's snake case and the shortest decimal of a float. */
#include "config_fields.h"
#include "../ops/ops.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void kc_snake_case(const char *name, char *out, size_t size) {
    /* re.sub("(.)([A-Z][a-z]+)", r"\1_\2"), then re.sub("([a-z])([A-Z])", r"\1_\2"), lower */
    char a[256];
    size_t n = 0, len = strlen(name);
    for (size_t i = 0; i < len && n + 2 < sizeof a;) {
        if (i + 2 < len + 1 && i + 1 < len && isupper((unsigned char)name[i + 1]) &&
            i + 2 < len && islower((unsigned char)name[i + 2])) {
            a[n++] = name[i];
            a[n++] = '_';
            size_t j = i + 1;
            a[n++] = name[j++];
            while (j < len && islower((unsigned char)name[j]) && n + 1 < sizeof a) a[n++] = name[j++];
            i = j;
        } else {
            a[n++] = name[i++];
        }
    }
    a[n] = 0;
    size_t m = 0;
    for (size_t i = 0; a[i] && m + 2 < size; i++) {
        out[m++] = (char)tolower((unsigned char)a[i]);
        if (islower((unsigned char)a[i]) && isupper((unsigned char)a[i + 1])) out[m++] = '_';
    }
    out[m] = 0;
}

double kc_json_float(float f) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return strtod(buf, NULL);
}

const cJSON *kc_cfg_field(const cJSON *cfg, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(cfg, name);
}

int kc_cfg_num(const cJSON *cfg, const char *name, double *out) {
    const cJSON *v = kc_cfg_field(cfg, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return -1;
    *out = v->valuedouble;
    return 1;
}

kc_status kc_cfg_count(const cJSON *cfg, const char *name, const char *where, int *out) {
    const cJSON *v = kc_cfg_field(cfg, name);
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e8 ||
        v->valuedouble != floor(v->valuedouble))
        return kc_err(KC_EFORMAT, "%s: %s is missing or not a positive whole number", where,
                      name);
    *out = (int)v->valuedouble;
    return KC_OK;
}

kc_status kc_cfg_must_be_null(const cJSON *cfg, const char *where, const char *const *names,
                              int n) {
    for (int i = 0; i < n; i++) {
        const cJSON *v = kc_cfg_field(cfg, names[i]);
        if (v && !cJSON_IsNull(v))
            return kc_err(KC_EFORMAT, "%s: %s is not supported by kerac (must be null)", where,
                          names[i]);
    }
    return KC_OK;
}

kc_status kc_cfg_made(kc_layer *made, const char *where, kc_layer **out) {
    *out = made;
    return made ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

/* ---- activations ---- */

kc_status kc_cfg_activation(const cJSON *v, const char *where, kc_act *out) {
    if (!v || cJSON_IsNull(v)) {
        *out = KC_LINEAR;
        return KC_OK;
    }
    const char *name = NULL;
    if (cJSON_IsString(v)) name = v->valuestring;
    else if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "config");
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(v, "class_name");
        if (cJSON_IsString(c)) name = c->valuestring;
        else if (cJSON_IsString(cls)) name = cls->valuestring;
    }
    if (!name) return kc_err(KC_EFORMAT, "%s: the activation is not a name", where);
    kc_act act = kc_act_from_name(name);
    if (act != KC_ACT_COUNT) return *out = act, KC_OK;
    /* Keras activations kerac leaves out, by name: glu halves the last axis (not elementwise,
     * the activation table's kind); threshold has no defaults (Keras itself cannot call it by
     * name); sparsemax needs a sort per row */
    if (!strcmp(name, "glu") || !strcmp(name, "threshold") || !strcmp(name, "sparsemax"))
        return kc_err(KC_EFORMAT, "%s: activation '%s' is not supported by kerac", where, name);
    char known[640];
    kc_act_names(known, sizeof known);
    return kc_err(KC_EFORMAT, "%s: unknown activation '%s' (kerac has %s)", where, name, known);
}

/* ---- the spatial layers ---- */

kc_status kc_cfg_int_pair_value(const cJSON *v, const char *name, const char *where, int min,
                                int out[2]) {
    const cJSON *a = v, *b = v;
    if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v);
        if (n < 1 || n > 2)
            return kc_err(KC_EFORMAT, "%s: %s must be a number or a list of 2 numbers", where,
                          name);
        a = cJSON_GetArrayItem(v, 0);
        b = cJSON_GetArrayItem(v, n - 1);
    }
    const cJSON *ab[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        if (!cJSON_IsNumber(ab[i]) || ab[i]->valuedouble < min || ab[i]->valuedouble > 1e6 ||
            ab[i]->valuedouble != floor(ab[i]->valuedouble))
            return kc_err(KC_EFORMAT, "%s: %s must hold %s whole numbers", where, name,
                          min > 0 ? "positive" : "non-negative");
        out[i] = (int)ab[i]->valuedouble;
    }
    return KC_OK;
}

kc_status kc_cfg_int_pair(const cJSON *cfg, const char *name, const char *where, int out[2]) {
    const cJSON *v = kc_cfg_field(cfg, name);
    if (!v || cJSON_IsNull(v)) return KC_OK;
    return kc_cfg_int_pair_value(v, name, where, 1, out);
}

cJSON *kc_cfg_int_list2(int a, int b) {
    int v[2] = {a, b};
    return cJSON_CreateIntArray(v, 2);
}

kc_status kc_cfg_padding(const cJSON *cfg, const char *where, kc_padding *out) {
    const cJSON *v = kc_cfg_field(cfg, "padding");
    *out = KC_VALID;
    if (!v || cJSON_IsNull(v)) return KC_OK;
    if (!cJSON_IsString(v)) return kc_err(KC_EFORMAT, "%s: padding is not a string", where);
    if (!strcasecmp(v->valuestring, "valid")) return KC_OK;
    if (!strcasecmp(v->valuestring, "same")) return *out = KC_SAME, KC_OK;
    return kc_err(KC_EFORMAT, "%s: padding '%s' is not supported (kerac has valid, same)", where,
                  v->valuestring);
}

kc_status kc_cfg_channels_last(const cJSON *cfg, const char *where) {
    const cJSON *df = kc_cfg_field(cfg, "data_format");
    if (df && !cJSON_IsNull(df) &&
        (!cJSON_IsString(df) || strcmp(df->valuestring, "channels_last")))
        return kc_err(KC_EFORMAT, "%s: data_format '%s' is not supported (channels_last only)",
                      where, cJSON_IsString(df) ? df->valuestring : "?");
    return KC_OK;
}

/* ---- the weights' options ---- */

kc_status kc_cfg_use_bias(const cJSON *cfg, const char *where, int *out) {
    const cJSON *v = kc_cfg_field(cfg, "use_bias");
    *out = 0;
    if (!v || cJSON_IsTrue(v)) return KC_OK;
    if (cJSON_IsFalse(v)) return *out = KC_ZERO, KC_OK;
    return kc_err(KC_EFORMAT, "%s: use_bias is not true or false", where);
}

kc_status kc_cfg_weight_opts_from(const cJSON *cfg, const char *where, kc_cfg_weight_opts *o) {
    *o = (kc_cfg_weight_opts){0};
    kc_status st = kc_cfg_use_bias(cfg, where, &o->use_bias);
    if (st) return st;
    static const char *const nulls[] = {"kernel_constraint", "bias_constraint", "lora_rank",
                                        "quantization_config"};
    st = kc_cfg_must_be_null(cfg, where, nulls, 4);
    const char *const inits[] = {"kernel_initializer", "bias_initializer"};
    kc_initializer *init[] = {&o->kernel_init, &o->bias_init};
    for (int i = 0; i < 2 && !st; i++)
        st = kc_initializer_from_json(kc_cfg_field(cfg, inits[i]), where, inits[i], init[i]);
    const char *const regs[] = {"kernel_regularizer", "bias_regularizer", "activity_regularizer"};
    kc_regularizer *reg[] = {&o->kernel_reg, &o->bias_reg, &o->activity_reg};
    for (int i = 0; i < 3 && !st; i++)
        st = kc_regularizer_from_json(kc_cfg_field(cfg, regs[i]), where, regs[i], reg[i]);
    return st;
}

kc_status kc_cfg_conv_common(const cJSON *cfg, const char *where, kc_cfg_weight_opts *w,
                             kc_act *act) {
    double groups = 1;
    if (kc_cfg_num(cfg, "groups", &groups) < 0)
        return kc_err(KC_EFORMAT, "%s: groups is not a number", where);
    if (groups != 1)
        return kc_err(KC_EFORMAT, "%s: groups %g is not supported by kerac (1 only)", where, groups);
    kc_status st = kc_cfg_weight_opts_from(cfg, where, w);
    if (!st) st = kc_cfg_activation(kc_cfg_field(cfg, "activation"), where, act);
    return st;
}

int kc_cfg_kernel_bias(const kc_layer *l, int rank, const int64_t *dims, kc_weight_desc *w) {
    w[0] = (kc_weight_desc){"kernel", rank, {0}, 0, l->kernel_size, 1};
    memcpy(w[0].dims, dims, sizeof(int64_t) * (size_t)rank);
    if (l->no_bias) return 1;
    w[1] = (kc_weight_desc){"bias", 1, {l->units}, l->kernel_size, l->units, 1};
    return 2;
}

void kc_cfg_weight_opts_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddBoolToObject(cfg, "use_bias", !l->no_bias);
    cJSON_AddItemToObject(cfg, "kernel_initializer",
                          kc_initializer_to_json(&l->kernel_init, KC_INIT_GLOROT_UNIFORM));
    cJSON_AddItemToObject(cfg, "bias_initializer",
                          kc_initializer_to_json(&l->bias_init, KC_INIT_ZEROS));
    cJSON_AddItemToObject(cfg, "kernel_regularizer", kc_regularizer_to_json(&l->kernel_reg));
    cJSON_AddItemToObject(cfg, "bias_regularizer", kc_regularizer_to_json(&l->bias_reg));
    cJSON_AddItemToObject(cfg, "activity_regularizer", kc_regularizer_to_json(&l->activity_reg));
    cJSON_AddNullToObject(cfg, "kernel_constraint");
    cJSON_AddNullToObject(cfg, "bias_constraint");
}
