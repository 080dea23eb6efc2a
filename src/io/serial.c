/* serial.c: the tables that map kerac's layers and optimizers to Keras's configs and
 * variables. One entry per Keras class: its config fields <-> kerac's fields, and its
 * variables in Keras's order. A new layer or optimizer is one more entry. */
#include "io.h"
#include "../layers/custom.h"
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

/* ---- activations ---- */

static const char *const act_names[] = {"linear", "relu", "softmax", "sigmoid", "tanh"};

/* "relu", or Keras 3's {"class_name": "function", "config": "relu"} form; NULL means linear */
static kc_status parse_activation(const cJSON *v, const char *where, kc_act *out) {
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
    for (int i = 0; i <= KC_TANH; i++)
        if (!strcmp(name, act_names[i])) {
            *out = (kc_act)i;
            return KC_OK;
        }
    if (!strcmp(name, "Softmax")) return *out = KC_SOFTMAX, KC_OK;
    if (!strcmp(name, "ReLU")) return *out = KC_RELU, KC_OK;
    return kc_err(KC_EFORMAT,
                  "%s: unknown activation '%s' (kerac has linear, relu, softmax, sigmoid, tanh)",
                  where, name);
}

static const cJSON *field(const cJSON *cfg, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(cfg, name);
}

static int is_true(const cJSON *v) { return cJSON_IsTrue(v); }

static int num(const cJSON *cfg, const char *name, double *out) {
    const cJSON *v = field(cfg, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return -1;
    *out = v->valuedouble;
    return 1;
}

/* fields that must be absent or null: regularizers, constraints and the like */
static kc_status must_be_null(const cJSON *cfg, const char *where, const char *const *names,
                              int n) {
    for (int i = 0; i < n; i++) {
        const cJSON *v = field(cfg, names[i]);
        if (v && !cJSON_IsNull(v))
            return kc_err(KC_EFORMAT, "%s: %s is not supported by kerac (must be null)", where,
                          names[i]);
    }
    return KC_OK;
}

/* ---- the weights' options Dense and Conv2D share ---- */

typedef struct {
    int use_bias; /* 0 (True) or KC_ZERO (False), as the option structs */
    kc_initializer kernel_init, bias_init;
    kc_regularizer kernel_reg, bias_reg, activity_reg;
} weight_opts;

/* use_bias, kernel_initializer, bias_initializer, the three regularizers; the constraints and
 * the LoRA and quantization options kerac lacks must be null */
static kc_status weight_opts_from(const cJSON *cfg, const char *where, weight_opts *o) {
    *o = (weight_opts){0};
    const cJSON *use_bias = field(cfg, "use_bias");
    if (use_bias && !cJSON_IsBool(use_bias))
        return kc_err(KC_EFORMAT, "%s: use_bias is not true or false", where);
    if (use_bias && !is_true(use_bias)) o->use_bias = KC_ZERO;
    static const char *const nulls[] = {"kernel_constraint", "bias_constraint", "lora_rank",
                                        "quantization_config"};
    kc_status st = must_be_null(cfg, where, nulls, 4);
    if (!st)
        st = kc_initializer_from_json(field(cfg, "kernel_initializer"), where,
                                      "kernel_initializer", &o->kernel_init);
    if (!st)
        st = kc_initializer_from_json(field(cfg, "bias_initializer"), where, "bias_initializer",
                                      &o->bias_init);
    if (!st)
        st = kc_regularizer_from_json(field(cfg, "kernel_regularizer"), where,
                                      "kernel_regularizer", &o->kernel_reg);
    if (!st)
        st = kc_regularizer_from_json(field(cfg, "bias_regularizer"), where, "bias_regularizer",
                                      &o->bias_reg);
    if (!st)
        st = kc_regularizer_from_json(field(cfg, "activity_regularizer"), where,
                                      "activity_regularizer", &o->activity_reg);
    return st;
}

static void weight_opts_to(const kc_layer *l, cJSON *cfg) {
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

/* ---- Dense ---- */

static kc_status dense_from(const cJSON *cfg, const char *where, kc_layer **out) {
    const cJSON *units = field(cfg, "units");
    if (!cJSON_IsNumber(units) || units->valuedouble < 1 || units->valuedouble > 1e8 ||
        units->valuedouble != floor(units->valuedouble))
        return kc_err(KC_EFORMAT, "%s: units is missing or not a positive whole number", where);
    weight_opts w;
    kc_status st = weight_opts_from(cfg, where, &w);
    kc_act act = KC_LINEAR;
    if (!st) st = parse_activation(field(cfg, "activation"), where, &act);
    if (st) return st;
    *out = kc_dense_ex((int)units->valuedouble,
                       &(kc_dense_opts){.activation = act, .use_bias = w.use_bias,
                                        .kernel_initializer = w.kernel_init,
                                        .bias_initializer = w.bias_init,
                                        .kernel_regularizer = w.kernel_reg,
                                        .bias_regularizer = w.bias_reg,
                                        .activity_regularizer = w.activity_reg});
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status dense_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "units", l->units);
    cJSON_AddStringToObject(cfg, "activation", act_names[l->act]);
    weight_opts_to(l, cfg);
    return KC_OK;
}

static int dense_weights(const kc_layer *l, kc_weight_desc *w) {
    w[0] = (kc_weight_desc){"kernel", 2, {l->in_size, l->units}, 0, l->in_size * l->units, 1};
    if (l->no_bias) return 1;
    w[1] = (kc_weight_desc){"bias", 1, {l->units}, l->in_size * l->units, l->units, 1};
    return 2;
}

/* ---- Dropout, Activation, Flatten ---- */

static kc_status dropout_from(const cJSON *cfg, const char *where, kc_layer **out) {
    const cJSON *rate = field(cfg, "rate");
    if (!cJSON_IsNumber(rate) || !(rate->valuedouble >= 0 && rate->valuedouble < 1))
        return kc_err(KC_EFORMAT, "%s: rate is missing or not in [0, 1)", where);
    const cJSON *ns = field(cfg, "noise_shape");
    if (ns && !cJSON_IsNull(ns))
        return kc_err(KC_EFORMAT, "%s: noise_shape is not supported by kerac", where);
    *out = kc_dropout((float)rate->valuedouble);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status dropout_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "rate", kc_json_float(l->rate));
    cJSON_AddNullToObject(cfg, "seed");
    cJSON_AddNullToObject(cfg, "noise_shape");
    return KC_OK;
}

static kc_status activation_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_act act = KC_LINEAR;
    const cJSON *a = field(cfg, "activation");
    if (!a) return kc_err(KC_EFORMAT, "%s: the activation is missing", where);
    kc_status st = parse_activation(a, where, &act);
    if (st) return st;
    *out = kc_activation(act);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status activation_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddStringToObject(cfg, "activation", act_names[l->act]);
    return KC_OK;
}

static kc_status flatten_from(const cJSON *cfg, const char *where, kc_layer **out) {
    const cJSON *df = field(cfg, "data_format");
    if (cJSON_IsString(df) && strcmp(df->valuestring, "channels_last"))
        return kc_err(KC_EFORMAT, "%s: data_format '%s' is not supported (channels_last only)",
                      where, df->valuestring);
    *out = kc_flatten();
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status flatten_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    return KC_OK;
}

/* ---- shared by the convolution and pooling layers ---- */

/* the value v (an int or a list of 1 or 2 ints, Keras's standardize_tuple) into out[2], each
 * at least min; name for messages */
static kc_status int_pair_value(const cJSON *v, const char *name, const char *where, int min,
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

/* an int or a list of 1 or 2 positive ints into out[2]; absent or null leaves out as it is */
static kc_status int_pair(const cJSON *cfg, const char *name, const char *where, int out[2]) {
    const cJSON *v = field(cfg, name);
    if (!v || cJSON_IsNull(v)) return KC_OK;
    return int_pair_value(v, name, where, 1, out);
}

/* use_bias: absent or true -> 0 (True), false -> KC_ZERO */
static kc_status parse_use_bias(const cJSON *cfg, const char *where, int *out) {
    const cJSON *v = field(cfg, "use_bias");
    *out = 0;
    if (!v || cJSON_IsTrue(v)) return KC_OK;
    if (cJSON_IsFalse(v)) return *out = KC_ZERO, KC_OK;
    return kc_err(KC_EFORMAT, "%s: use_bias is not true or false", where);
}

static kc_status parse_padding(const cJSON *cfg, const char *where, kc_padding *out) {
    const cJSON *v = field(cfg, "padding");
    *out = KC_VALID;
    if (!v || cJSON_IsNull(v)) return KC_OK;
    if (!cJSON_IsString(v)) return kc_err(KC_EFORMAT, "%s: padding is not a string", where);
    if (!strcasecmp(v->valuestring, "valid")) return KC_OK;
    if (!strcasecmp(v->valuestring, "same")) return *out = KC_SAME, KC_OK;
    return kc_err(KC_EFORMAT, "%s: padding '%s' is not supported (kerac has valid, same)", where,
                  v->valuestring);
}

static kc_status channels_last(const cJSON *cfg, const char *where) {
    const cJSON *df = field(cfg, "data_format");
    if (df && !cJSON_IsNull(df) &&
        (!cJSON_IsString(df) || strcmp(df->valuestring, "channels_last")))
        return kc_err(KC_EFORMAT, "%s: data_format '%s' is not supported (channels_last only)",
                      where, cJSON_IsString(df) ? df->valuestring : "?");
    return KC_OK;
}

static cJSON *int_list2(int a, int b) {
    int v[2] = {a, b};
    return cJSON_CreateIntArray(v, 2);
}

/* ---- Conv2D ---- */

static kc_status conv2d_from(const cJSON *cfg, const char *where, kc_layer **out) {
    const cJSON *filters = field(cfg, "filters");
    if (!cJSON_IsNumber(filters) || filters->valuedouble < 1 || filters->valuedouble > 1e8 ||
        filters->valuedouble != floor(filters->valuedouble))
        return kc_err(KC_EFORMAT, "%s: filters is missing or not a positive whole number", where);
    kc_conv2d_opts o = {.strides = {1, 1}, .padding = KC_VALID, .activation = KC_LINEAR};
    if (!field(cfg, "kernel_size"))
        return kc_err(KC_EFORMAT, "%s: kernel_size is missing", where);
    kc_status st = int_pair(cfg, "kernel_size", where, o.kernel_size);
    if (!st) st = int_pair(cfg, "strides", where, o.strides);
    if (!st && !o.kernel_size[0]) st = kc_err(KC_EFORMAT, "%s: kernel_size is null", where);
    if (!st) st = parse_padding(cfg, where, &o.padding);
    if (!st) st = channels_last(cfg, where);
    o.dilation_rate[0] = o.dilation_rate[1] = 1;
    if (!st) st = int_pair(cfg, "dilation_rate", where, o.dilation_rate);
    if (!st && (o.dilation_rate[0] > 1 || o.dilation_rate[1] > 1) &&
        (o.strides[0] > 1 || o.strides[1] > 1))
        st = kc_err(KC_EFORMAT,
                    "%s: dilation_rate (%d, %d) with strides (%d, %d) is not supported (strides "
                    "> 1 together with dilation_rate > 1)",
                    where, o.dilation_rate[0], o.dilation_rate[1], o.strides[0], o.strides[1]);
    double groups = 1;
    if (!st && num(cfg, "groups", &groups) < 0)
        st = kc_err(KC_EFORMAT, "%s: groups is not a number", where);
    if (!st && groups != 1)
        st = kc_err(KC_EFORMAT, "%s: groups %g is not supported by kerac (1 only)", where, groups);
    weight_opts w;
    if (!st) st = weight_opts_from(cfg, where, &w);
    if (!st) st = parse_activation(field(cfg, "activation"), where, &o.activation);
    if (st) return st;
    o.use_bias = w.use_bias;
    o.kernel_initializer = w.kernel_init;
    o.bias_initializer = w.bias_init;
    o.kernel_regularizer = w.kernel_reg;
    o.bias_regularizer = w.bias_reg;
    o.activity_regularizer = w.activity_reg;
    *out = kc_conv2d_ex((int)filters->valuedouble, &o);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status conv2d_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "filters", l->units);
    cJSON_AddItemToObject(cfg, "kernel_size", int_list2(l->kh, l->kw));
    cJSON_AddItemToObject(cfg, "strides", int_list2(l->sh, l->sw));
    cJSON_AddStringToObject(cfg, "padding", l->pad_same ? "same" : "valid");
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    cJSON_AddItemToObject(cfg, "dilation_rate", int_list2(l->dh, l->dw));
    cJSON_AddNumberToObject(cfg, "groups", 1);
    cJSON_AddStringToObject(cfg, "activation", act_names[l->act]);
    weight_opts_to(l, cfg);
    return KC_OK;
}

static int conv2d_weights(const kc_layer *l, kc_weight_desc *w) {
    int64_t in = l->in_shape.rank == 3 ? l->in_shape.dims[2] : 0;
    w[0] = (kc_weight_desc){"kernel", 4, {l->kh, l->kw, in, l->units}, 0, l->kernel_size, 1};
    if (l->no_bias) return 1;
    w[1] = (kc_weight_desc){"bias", 1, {l->units}, l->kernel_size, l->units, 1};
    return l->no_bias ? 1 : 2;
}

/* ---- Conv2DTranspose ---- */

static kc_status conv2d_transpose_from(const cJSON *cfg, const char *where, kc_layer **out) {
    const cJSON *filters = field(cfg, "filters");
    if (!cJSON_IsNumber(filters) || filters->valuedouble < 1 || filters->valuedouble > 1e8 ||
        filters->valuedouble != floor(filters->valuedouble))
        return kc_err(KC_EFORMAT, "%s: filters is missing or not a positive whole number", where);
    kc_conv2d_opts o = {.strides = {1, 1}, .padding = KC_VALID, .activation = KC_LINEAR};
    const cJSON *ks = field(cfg, "kernel_size");
    if (!ks || cJSON_IsNull(ks)) return kc_err(KC_EFORMAT, "%s: kernel_size is missing", where);
    kc_status st = int_pair(cfg, "kernel_size", where, o.kernel_size);
    if (!st) st = int_pair(cfg, "strides", where, o.strides);
    if (!st) st = parse_padding(cfg, where, &o.padding);
    if (!st) st = channels_last(cfg, where);
    int dil[2] = {1, 1};
    if (!st) st = int_pair(cfg, "dilation_rate", where, dil);
    if (!st && (dil[0] != 1 || dil[1] != 1))
        st = kc_err(KC_EFORMAT,
                    "%s: dilation_rate (%d, %d) is not supported by kerac's Conv2DTranspose (1 "
                    "only)",
                    where, dil[0], dil[1]);
    /* output_padding: null (None, the size inferred) or an int or 2 ints >= 0 */
    const cJSON *op = field(cfg, "output_padding");
    if (!st && op && !cJSON_IsNull(op)) {
        int v[2];
        st = int_pair_value(op, "output_padding", where, 0, v);
        if (!st && (v[0] >= o.strides[0] || v[1] >= o.strides[1]))
            st = kc_err(KC_EFORMAT,
                        "%s: output_padding (%d, %d) must be strictly less than strides (%d, %d)",
                        where, v[0], v[1], o.strides[0], o.strides[1]);
        for (int i = 0; i < 2 && !st; i++) o.output_padding[i] = v[i] ? v[i] : KC_ZERO;
    }
    if (!st) st = parse_use_bias(cfg, where, &o.use_bias);
    static const char *const nulls[] = {"kernel_regularizer", "bias_regularizer",
                                        "activity_regularizer", "kernel_constraint",
                                        "bias_constraint", "lora_rank"};
    if (!st) st = must_be_null(cfg, where, nulls, 6);
    if (!st) st = parse_activation(field(cfg, "activation"), where, &o.activation);
    if (st) return st;
    *out = kc_conv2d_transpose((int)filters->valuedouble, &o);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status conv2d_transpose_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "filters", l->units);
    cJSON_AddItemToObject(cfg, "kernel_size", int_list2(l->kh, l->kw));
    cJSON_AddItemToObject(cfg, "strides", int_list2(l->sh, l->sw));
    cJSON_AddStringToObject(cfg, "padding", l->pad_same ? "same" : "valid");
    if (l->output_padding[0] < 0) cJSON_AddNullToObject(cfg, "output_padding");
    else
        cJSON_AddItemToObject(cfg, "output_padding",
                              int_list2(l->output_padding[0], l->output_padding[1]));
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    cJSON_AddItemToObject(cfg, "dilation_rate", int_list2(1, 1));
    cJSON_AddStringToObject(cfg, "activation", act_names[l->act]);
    cJSON_AddBoolToObject(cfg, "use_bias", !l->no_bias);
    cJSON_AddItemToObject(cfg, "kernel_initializer",
                          kc_initializer_to_json(&(kc_initializer){0}, KC_INIT_GLOROT_UNIFORM));
    cJSON_AddItemToObject(cfg, "bias_initializer",
                          kc_initializer_to_json(&(kc_initializer){0}, KC_INIT_ZEROS));
    const char *nulls[] = {"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                           "kernel_constraint", "bias_constraint"};
    for (int i = 0; i < 5; i++) cJSON_AddNullToObject(cfg, nulls[i]);
    return KC_OK;
}

static int conv2d_transpose_weights(const kc_layer *l, kc_weight_desc *w) {
    int64_t in = l->in_shape.rank == 3 ? l->in_shape.dims[2] : 0;
    w[0] = (kc_weight_desc){"kernel", 4, {l->kh, l->kw, l->units, in}, 0, l->kernel_size, 1};
    w[1] = (kc_weight_desc){"bias", 1, {l->units}, l->kernel_size, l->units, 1};
    return l->no_bias ? 1 : 2;
}

/* ---- MaxPooling2D, AveragePooling2D ---- */

static kc_status pool_from(const cJSON *cfg, const char *where, kc_pool2d_opts *o) {
    *o = (kc_pool2d_opts){{2, 2}, {0, 0}, KC_VALID};
    kc_status st = int_pair(cfg, "pool_size", where, o->pool_size);
    if (!st) st = int_pair(cfg, "strides", where, o->strides); /* null: pool_size */
    if (!st) st = parse_padding(cfg, where, &o->padding);
    if (!st) st = channels_last(cfg, where);
    return st;
}

static kc_status max_pool_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_pool2d_opts o;
    kc_status st = pool_from(cfg, where, &o);
    if (st) return st;
    *out = kc_max_pooling2d_ex(&o);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status avg_pool_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_pool2d_opts o;
    kc_status st = pool_from(cfg, where, &o);
    if (st) return st;
    *out = kc_average_pooling2d_ex(&o);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status pool_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddItemToObject(cfg, "pool_size", int_list2(l->kh, l->kw));
    cJSON_AddStringToObject(cfg, "padding", l->pad_same ? "same" : "valid");
    cJSON_AddItemToObject(cfg, "strides", int_list2(l->sh, l->sw));
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    return KC_OK;
}

/* ---- GlobalAveragePooling2D ---- */

static kc_status global_pool_from(const cJSON *cfg, const char *where,
                                  kc_global_pool2d_opts *o) {
    kc_status st = channels_last(cfg, where);
    if (st) return st;
    const cJSON *k = field(cfg, "keepdims");
    if (k && !cJSON_IsNull(k) && !cJSON_IsBool(k))
        return kc_err(KC_EFORMAT, "%s: keepdims is not true or false", where);
    o->keepdims = is_true(k);
    return KC_OK;
}

static kc_status gap_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_global_pool2d_opts o;
    kc_status st = global_pool_from(cfg, where, &o);
    if (st) return st;
    *out = kc_global_average_pooling2d_ex(&o);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status gmp_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_global_pool2d_opts o;
    kc_status st = global_pool_from(cfg, where, &o);
    if (st) return st;
    *out = kc_global_max_pooling2d_ex(&o);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status gap_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    cJSON_AddBoolToObject(cfg, "keepdims", l->keepdims);
    return KC_OK;
}

/* ---- UpSampling2D ---- */

static kc_status up_sampling_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_up_sampling2d_opts o = {.size = {2, 2}};
    kc_status st = int_pair(cfg, "size", where, o.size);
    if (!st) st = channels_last(cfg, where);
    if (st) return st;
    const cJSON *in = field(cfg, "interpolation");
    if (in && !cJSON_IsNull(in)) {
        if (!cJSON_IsString(in))
            return kc_err(KC_EFORMAT, "%s: interpolation is not a string", where);
        if (!strcasecmp(in->valuestring, "bilinear")) o.interpolation = KC_BILINEAR;
        else if (strcasecmp(in->valuestring, "nearest"))
            return kc_err(KC_EFORMAT,
                          "%s: interpolation '%s' is not supported (kerac has nearest, bilinear)",
                          where, in->valuestring);
    }
    *out = kc_up_sampling2d(&o);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status up_sampling_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddItemToObject(cfg, "size", int_list2(l->kh, l->kw));
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    cJSON_AddStringToObject(cfg, "interpolation", l->interpolation ? "bilinear" : "nearest");
    return KC_OK;
}

/* ---- ZeroPadding2D, Cropping2D ---- */

/* Keras's forms of padding / cropping: an int (all four sides), [h, w] (symmetric per axis)
 * or [[top, bottom], [left, right]] (each entry an int or a pair); absent keeps out */
static kc_status sides(const cJSON *cfg, const char *name, const char *where, int out[4]) {
    const cJSON *v = field(cfg, name);
    if (!v || cJSON_IsNull(v)) return KC_OK;
    if (cJSON_IsNumber(v)) {
        int p[2];
        kc_status st = int_pair_value(v, name, where, 0, p);
        if (st) return st;
        out[0] = out[1] = out[2] = out[3] = p[0];
        return KC_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
        return kc_err(KC_EFORMAT,
                      "%s: %s must be an int, 2 ints or 2 pairs of ints ((top, bottom), (left, "
                      "right))",
                      where, name);
    for (int axis = 0; axis < 2; axis++) {
        const cJSON *e = cJSON_GetArrayItem(v, axis);
        if (cJSON_IsArray(e) && cJSON_GetArraySize(e) != 2)
            return kc_err(KC_EFORMAT, "%s: %s entry %d must be an int or a pair of ints", where,
                          name, axis);
        kc_status st = int_pair_value(e, name, where, 0, out + 2 * axis);
        if (st) return st;
    }
    return KC_OK;
}

static cJSON *sides_list(const int p[4]) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, int_list2(p[0], p[1]));
    cJSON_AddItemToArray(a, int_list2(p[2], p[3]));
    return a;
}

static kc_status zero_padding_from(const cJSON *cfg, const char *where, kc_layer **out) {
    int p[4] = {1, 1, 1, 1}; /* Keras's default padding=(1, 1) */
    kc_status st = sides(cfg, "padding", where, p);
    if (!st) st = channels_last(cfg, where);
    if (st) return st;
    *out = kc_zero_padding2d(p[0], p[1], p[2], p[3]);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status zero_padding_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddItemToObject(cfg, "padding", sides_list(l->pad));
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    return KC_OK;
}

static kc_status cropping_from(const cJSON *cfg, const char *where, kc_layer **out) {
    int p[4] = {0, 0, 0, 0};
    kc_status st = sides(cfg, "cropping", where, p);
    if (!st) st = channels_last(cfg, where);
    if (st) return st;
    *out = kc_cropping2d(p[0], p[1], p[2], p[3]);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status cropping_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddItemToObject(cfg, "cropping", sides_list(l->pad));
    cJSON_AddStringToObject(cfg, "data_format", "channels_last");
    return KC_OK;
}

/* ---- Identity ---- */

static kc_status identity_from(const cJSON *cfg, const char *where, kc_layer **out) {
    *out = kc_identity();
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status identity_to(const kc_layer *l, cJSON *cfg) { return KC_OK; }

/* ---- Reshape ---- */

static kc_status reshape_from(const cJSON *cfg, const char *where, kc_layer **out) {
    const cJSON *t = field(cfg, "target_shape");
    int n = cJSON_GetArraySize(t);
    if (!cJSON_IsArray(t) || n < 1 || n > KC_MAX_RANK)
        return kc_err(KC_EFORMAT, "%s: target_shape is missing or not a list of 1 to %d dims",
                      where, KC_MAX_RANK);
    kc_shape s = {n, {0}};
    for (int i = 0; i < n; i++) {
        const cJSON *d = cJSON_GetArrayItem(t, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < -1 || d->valuedouble > 1e9 ||
            d->valuedouble != floor(d->valuedouble) || d->valuedouble == 0)
            return kc_err(KC_EFORMAT, "%s: target_shape holds %s (positive whole numbers or -1 "
                                      "only)", where, cJSON_IsNumber(d) ? "a bad number" : "a non-number");
        s.dims[i] = (int)d->valuedouble;
    }
    *out = kc_reshape(s);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status reshape_to(const kc_layer *l, cJSON *cfg) {
    /* the target as built (a -1 resolved): the same layer */
    cJSON_AddItemToObject(cfg, "target_shape", cJSON_CreateIntArray(l->out_shape.dims, l->out_shape.rank));
    return KC_OK;
}

/* ---- BatchNormalization ---- */

static kc_status bn_from(const cJSON *cfg, const char *where, kc_layer **out) {
    kc_batchnorm_opts o = {0.99f, 1e-3f};
    double d;
    int r = num(cfg, "momentum", &d);
    if (r < 0) return kc_err(KC_EFORMAT, "%s: momentum is not a number", where);
    if (r > 0) {
        if (!(d >= 0 && d <= 1))
            return kc_err(KC_EFORMAT, "%s: momentum %g is not in [0, 1]", where, d);
        o.momentum = (float)d;
        if (o.momentum == 0.0f) o.momentum = 1e-45f; /* kerac's 0 means the default */
    }
    r = num(cfg, "epsilon", &d);
    if (r < 0 || (r > 0 && !(d > 0 && d < 1e30)))
        return kc_err(KC_EFORMAT, "%s: epsilon is not a number > 0", where);
    if (r > 0) o.epsilon = (float)d;
    const char *flags[] = {"center", "scale"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = field(cfg, flags[i]);
        if (v && !is_true(v))
            return kc_err(KC_EFORMAT, "%s: %s=False is not supported by kerac", where, flags[i]);
    }
    if (is_true(field(cfg, "renorm")))
        return kc_err(KC_EFORMAT, "%s: renorm=True is not supported by kerac", where);
    static const char *const nulls[] = {"beta_regularizer", "gamma_regularizer",
                                        "beta_constraint", "gamma_constraint",
                                        "virtual_batch_size", "adjustment"};
    kc_status st = must_be_null(cfg, where, nulls, 6);
    if (st) return st;
    /* axis is checked once the input shape is known (bn_check) */
    const cJSON *axis = field(cfg, "axis");
    if (cJSON_IsArray(axis) && cJSON_GetArraySize(axis) != 1)
        return kc_err(KC_EFORMAT, "%s: axis over %d axes is not supported (the last axis only)",
                      where, cJSON_GetArraySize(axis));
    if (cJSON_IsArray(axis)) axis = cJSON_GetArrayItem(axis, 0);
    if (axis && !cJSON_IsNull(axis) && !cJSON_IsNumber(axis))
        return kc_err(KC_EFORMAT, "%s: axis is not a number", where);
    *out = kc_batch_normalization(&o);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status bn_check(const cJSON *cfg, const kc_layer *l, const char *where) {
    const cJSON *axis = field(cfg, "axis");
    if (cJSON_IsArray(axis)) axis = cJSON_GetArrayItem(axis, 0);
    if (!cJSON_IsNumber(axis)) return KC_OK; /* absent: -1 */
    int a = (int)axis->valuedouble, rank = l->in_shape.rank; /* Keras counts the batch axis */
    if (a == -1 || a == rank) return KC_OK;
    return kc_err(KC_EFORMAT,
                  "%s: axis %d is not supported: kerac normalises over the last axis only (-1 or "
                  "%d for this input)",
                  where, a, rank);
}

static kc_status bn_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "axis", -1);
    cJSON_AddNumberToObject(cfg, "momentum", kc_json_float(l->momentum));
    cJSON_AddNumberToObject(cfg, "epsilon", kc_json_float(l->epsilon));
    cJSON_AddTrueToObject(cfg, "center");
    cJSON_AddTrueToObject(cfg, "scale");
    cJSON_AddItemToObject(cfg, "beta_initializer", kc_initializer_to_json(NULL, KC_INIT_ZEROS));
    cJSON_AddItemToObject(cfg, "gamma_initializer", kc_initializer_to_json(NULL, KC_INIT_ONES));
    cJSON_AddItemToObject(cfg, "moving_mean_initializer", kc_initializer_to_json(NULL, KC_INIT_ZEROS));
    cJSON_AddItemToObject(cfg, "moving_variance_initializer", kc_initializer_to_json(NULL, KC_INIT_ONES));
    const char *nulls[] = {"beta_regularizer", "gamma_regularizer", "beta_constraint",
                           "gamma_constraint"};
    for (int i = 0; i < 4; i++) cJSON_AddNullToObject(cfg, nulls[i]);
    cJSON_AddFalseToObject(cfg, "synchronized");
    cJSON_AddFalseToObject(cfg, "renorm");
    cJSON_AddNullToObject(cfg, "renorm_clipping");
    cJSON_AddNumberToObject(cfg, "renorm_momentum", 0.99);
    return KC_OK;
}

static int bn_weights(const kc_layer *l, kc_weight_desc *w) {
    int64_t c = l->units;
    w[0] = (kc_weight_desc){"gamma", 1, {c}, 0, c, 1};
    w[1] = (kc_weight_desc){"beta", 1, {c}, c, c, 1};
    w[2] = (kc_weight_desc){"moving_mean", 1, {c}, 2 * c, c, 0};
    w[3] = (kc_weight_desc){"moving_variance", 1, {c}, 3 * c, c, 0};
    return 4;
}

/* ---- merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot ---- */

/* A merge layer's config holds name, trainable and dtype (checked by the model's loader), and
 * the class's own options (own, n of them); any other field is refused by name. */
static kc_status merge_fields(const cJSON *cfg, const char *where, const char *cls,
                              const char *const *own, int n) {
    static const char *const base[] = {"name", "trainable", "dtype"};
    const cJSON *item;
    cJSON_ArrayForEach(item, cfg) {
        int known = 0;
        for (int i = 0; i < 3 && !known; i++) known = item->string && !strcmp(item->string, base[i]);
        for (int i = 0; i < n && !known; i++) known = item->string && !strcmp(item->string, own[i]);
        if (!known)
            return kc_err(KC_EFORMAT, "%s: %s's option '%s' is not supported by kerac", where, cls,
                          item->string ? item->string : "?");
    }
    return KC_OK;
}

/* a whole number (JSON number) into *out */
static int whole(const cJSON *v, int *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        fabs(v->valuedouble) > 1e6)
        return 0;
    *out = (int)v->valuedouble;
    return 1;
}

static kc_status elementwise_from(const cJSON *cfg, const char *where, const char *cls,
                                  kc_layer *(*make)(void), kc_layer **out) {
    kc_status st = merge_fields(cfg, where, cls, NULL, 0);
    if (st) return st;
    *out = make();
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

#define ELEMENTWISE_FROM(fn, cls, make)                                              \
    static kc_status fn(const cJSON *cfg, const char *where, kc_layer **out) {       \
        return elementwise_from(cfg, where, cls, make, out);                         \
    }
ELEMENTWISE_FROM(add_from, "Add", kc_merge_add)
ELEMENTWISE_FROM(subtract_from, "Subtract", kc_merge_subtract)
ELEMENTWISE_FROM(multiply_from, "Multiply", kc_merge_multiply)
ELEMENTWISE_FROM(average_from, "Average", kc_merge_average)
ELEMENTWISE_FROM(maximum_from, "Maximum", kc_merge_maximum)
ELEMENTWISE_FROM(minimum_from, "Minimum", kc_merge_minimum)

static kc_status elementwise_to(const kc_layer *l, cJSON *cfg) { return KC_OK; }

/* Concatenate: axis (Keras 3 and tf.keras 2 alike; absent: -1). Its range is checked when the
 * layer is built, against the inputs' rank. */
static kc_status concatenate_from(const cJSON *cfg, const char *where, kc_layer **out) {
    static const char *const own[] = {"axis"};
    kc_status st = merge_fields(cfg, where, "Concatenate", own, 1);
    if (st) return st;
    int axis = -1;
    const cJSON *v = field(cfg, "axis");
    if (v && !whole(v, &axis))
        return kc_err(KC_EFORMAT, "%s: Concatenate's axis is not a whole number", where);
    *out = kc_concatenate(axis);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status concatenate_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "axis", l->axis);
    return KC_OK;
}

/* Dot: axes (an int, or a list of 2: Keras 3 writes its tuple as a list, tf.keras 2 either)
 * and normalize (absent: false) */
static kc_status dot_from(const cJSON *cfg, const char *where, kc_layer **out) {
    static const char *const own[] = {"axes", "normalize"};
    kc_status st = merge_fields(cfg, where, "Dot", own, 2);
    if (st) return st;
    const cJSON *v = field(cfg, "axes");
    int axes[2];
    if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) != 2 || !whole(cJSON_GetArrayItem(v, 0), &axes[0]) ||
            !whole(cJSON_GetArrayItem(v, 1), &axes[1]))
            return kc_err(KC_EFORMAT, "%s: Dot's axes must be a whole number or a list of 2",
                          where);
    } else if (whole(v, &axes[0])) {
        axes[1] = axes[0];
    } else {
        return kc_err(KC_EFORMAT, "%s: Dot's axes is %s (a whole number or a list of 2)", where,
                      v ? "not a whole number or a list of 2" : "missing");
    }
    const cJSON *nz = field(cfg, "normalize");
    if (nz && !cJSON_IsNull(nz) && !cJSON_IsBool(nz))
        return kc_err(KC_EFORMAT, "%s: Dot's normalize is not true or false", where);
    *out = kc_dot(axes[0], axes[1], is_true(nz));
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status dot_to(const kc_layer *l, cJSON *cfg) {
    /* Keras's axes=k means (k, k) for either sign of k: one number when they are equal */
    if (l->dot_axes[0] == l->dot_axes[1]) cJSON_AddNumberToObject(cfg, "axes", l->dot_axes[0]);
    else cJSON_AddItemToObject(cfg, "axes", int_list2(l->dot_axes[0], l->dot_axes[1]));
    cJSON_AddBoolToObject(cfg, "normalize", l->normalize);
    return KC_OK;
}

static int no_weights(const kc_layer *l, kc_weight_desc *w) { return 0; }

/* ---- Softmax (the layer class) ---- */

static kc_status softmax_from(const cJSON *cfg, const char *where, kc_layer **out) {
    double axis = -1;
    if (num(cfg, "axis", &axis) < 0 || axis != -1)
        return kc_err(KC_EFORMAT, "%s: Softmax's axis must be -1 (the last axis) in kerac", where);
    *out = kc_softmax_layer();
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static kc_status softmax_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "axis", -1);
    return KC_OK;
}

static const kc_layer_io layer_table[] = {
    {"Softmax", softmax_from, softmax_to, no_weights, NULL},
    {"Dense", dense_from, dense_to, dense_weights, NULL},
    {"Dropout", dropout_from, dropout_to, no_weights, NULL},
    {"Activation", activation_from, activation_to, no_weights, NULL},
    {"Flatten", flatten_from, flatten_to, no_weights, NULL},
    {"Conv2D", conv2d_from, conv2d_to, conv2d_weights, NULL},
    {"MaxPooling2D", max_pool_from, pool_to, no_weights, NULL},
    {"AveragePooling2D", avg_pool_from, pool_to, no_weights, NULL},
    {"GlobalAveragePooling2D", gap_from, gap_to, no_weights, NULL},
    {"GlobalMaxPooling2D", gmp_from, gap_to, no_weights, NULL},
    {"Conv2DTranspose", conv2d_transpose_from, conv2d_transpose_to, conv2d_transpose_weights,
     NULL},
    {"UpSampling2D", up_sampling_from, up_sampling_to, no_weights, NULL},
    {"ZeroPadding2D", zero_padding_from, zero_padding_to, no_weights, NULL},
    {"Cropping2D", cropping_from, cropping_to, no_weights, NULL},
    {"Identity", identity_from, identity_to, no_weights, NULL},
    {"Reshape", reshape_from, reshape_to, no_weights, NULL},
    {"BatchNormalization", bn_from, bn_to, bn_weights, bn_check},
    {"Add", add_from, elementwise_to, no_weights, NULL},
    {"Subtract", subtract_from, elementwise_to, no_weights, NULL},
    {"Multiply", multiply_from, elementwise_to, no_weights, NULL},
    {"Average", average_from, elementwise_to, no_weights, NULL},
    {"Maximum", maximum_from, elementwise_to, no_weights, NULL},
    {"Minimum", minimum_from, elementwise_to, no_weights, NULL},
    {"Concatenate", concatenate_from, concatenate_to, no_weights, NULL},
    {"Dot", dot_from, dot_to, no_weights, NULL},
};

const kc_layer_io *kc_layer_io_find(const char *class_name) {
    for (size_t i = 0; i < sizeof layer_table / sizeof *layer_table; i++)
        if (!strcmp(layer_table[i].class_name, class_name)) return &layer_table[i];
    const kc_custom_entry *e = kc_custom_find(class_name);
    return e ? &e->io : NULL;
}

const kc_layer_io *kc_layer_io_of(const kc_layer *layer) {
    if (layer->custom) return &layer->custom->entry->io;
    return kc_layer_io_find(layer->ops->type_name);
}

void kc_layer_io_names(char *buf, size_t size) {
    size_t at = 0;
    if (size) buf[0] = 0;
    for (size_t i = 0; i < sizeof layer_table / sizeof *layer_table && at < size; i++) {
        int n = snprintf(buf + at, size - at, "%s%s", i ? ", " : "", layer_table[i].class_name);
        if (n < 0) break;
        at += (size_t)n;
    }
}

int kc_layer_weights(const kc_layer *layer, kc_weight_desc *out) {
    const kc_layer_io *io = kc_layer_io_of(layer);
    int n = io ? io->weights(layer, out) : 0;
    for (int i = 0; i < n; i++) out[i].offset += layer->param_offset;
    return n;
}

/* ---- optimizers ---- */


/* learning_rate (a number; a schedule is not supported), and the options kerac lacks */
static kc_status common_opts_wd(const cJSON *cfg, const char *where, float *lr, int allow_wd);
static kc_status common_opts(const cJSON *cfg, const char *where, float *lr) {
    return common_opts_wd(cfg, where, lr, 0);
}

/* allow_wd: weight_decay is AdamW's own option */
static kc_status common_opts_wd(const cJSON *cfg, const char *where, float *lr, int allow_wd) {
    const cJSON *v = field(cfg, "learning_rate");
    if (!v) v = field(cfg, "lr");
    if (cJSON_IsObject(v))
        return kc_err(KC_EFORMAT, "%s: a learning-rate schedule is not supported by kerac", where);
    if (v && !cJSON_IsNumber(v))
        return kc_err(KC_EFORMAT, "%s: learning_rate is not a number", where);
    *lr = v ? (float)v->valuedouble : 0.0f;
    if (v && !(*lr > 0.0f))
        return kc_err(KC_EFORMAT, "%s: learning_rate %g is not supported (must be > 0)", where,
                      v->valuedouble);
    const char *unsupported[] = {"weight_decay", "clipnorm", "global_clipnorm", "clipvalue",
                                 "loss_scale_factor", "gradient_accumulation_steps", "decay"};
    for (int i = allow_wd ? 1 : 0; i < 7; i++) {
        double d;
        int r = num(cfg, unsupported[i], &d);
        if (r < 0 || (r > 0 && d != 0.0))
            return kc_err(KC_EFORMAT, "%s: %s is not supported by kerac", where, unsupported[i]);
    }
    if (is_true(field(cfg, "use_ema")))
        return kc_err(KC_EFORMAT, "%s: use_ema is not supported by kerac", where);
    return KC_OK;
}

static void common_to(const kc_optimizer *o, const char *name, cJSON *cfg) {
    cJSON_AddStringToObject(cfg, "name", name);
    cJSON_AddNumberToObject(cfg, "learning_rate", kc_json_float(o->learning_rate));
    const char *nulls[] = {"weight_decay", "clipnorm", "global_clipnorm", "clipvalue"};
    for (int i = 0; i < 4; i++) cJSON_AddNullToObject(cfg, nulls[i]);
    cJSON_AddFalseToObject(cfg, "use_ema");
    cJSON_AddNumberToObject(cfg, "ema_momentum", 0.99);
    cJSON_AddNullToObject(cfg, "ema_overwrite_frequency");
    cJSON_AddNullToObject(cfg, "loss_scale_factor");
    cJSON_AddNullToObject(cfg, "gradient_accumulation_steps");
}

#define OPT_NUM(cfg, name, var, where)                                                  \
    do {                                                                                \
        double d_;                                                                      \
        int r_ = num(cfg, name, &d_);                                                   \
        if (r_ < 0) {                                                                   \
            kc_err(KC_EFORMAT, "%s: %s is not a number", where, name);                  \
            return NULL;                                                                \
        }                                                                               \
        if (r_ > 0) var = (float)d_;                                                    \
    } while (0)

static kc_optimizer *prefix_null(const char *where) {
    kc_err_prefix(KC_EFORMAT, "%s", where);
    return NULL;
}

static kc_optimizer *sgd_from(const cJSON *cfg, const char *where) {
    kc_sgd_opts o = {0};
    if (common_opts(cfg, where, &o.learning_rate)) return NULL;
    OPT_NUM(cfg, "momentum", o.momentum, where);
    o.nesterov = is_true(field(cfg, "nesterov"));
    kc_optimizer *opt = kc_sgd(&o);
    return opt ? opt : prefix_null(where);
}

static void sgd_to(const kc_optimizer *o, cJSON *cfg) {
    common_to(o, "SGD", cfg);
    /* Keras 3's SGD refuses a momentum that is not a Python float: 0 must read 0.0 */
    double mom = kc_json_float(o->momentum);
    if (mom == floor(mom) && fabs(mom) < 1e15) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.1f", mom);
        cJSON_AddRawToObject(cfg, "momentum", buf);
    } else {
        cJSON_AddNumberToObject(cfg, "momentum", mom);
    }
    cJSON_AddBoolToObject(cfg, "nesterov", o->nesterov);
}

static void sgd_layout(const kc_optimizer *o, kc_opt_layout *l) {
    *l = (kc_opt_layout){0};
    if (o->momentum > 0.0f) *l = (kc_opt_layout){.n_groups = 1, .group_size = {1}, .slot = {{0}}, .name = {{"momentum"}}};
}

static kc_optimizer *rmsprop_from(const cJSON *cfg, const char *where) {
    kc_rmsprop_opts o = {0};
    if (common_opts(cfg, where, &o.learning_rate)) return NULL;
    OPT_NUM(cfg, "rho", o.rho, where);
    OPT_NUM(cfg, "momentum", o.momentum, where);
    OPT_NUM(cfg, "epsilon", o.epsilon, where);
    o.centered = is_true(field(cfg, "centered"));
    kc_optimizer *opt = kc_rmsprop(&o);
    return opt ? opt : prefix_null(where);
}

static void rmsprop_to(const kc_optimizer *o, cJSON *cfg) {
    common_to(o, "rmsprop", cfg);
    cJSON_AddNumberToObject(cfg, "rho", kc_json_float(o->rho));
    cJSON_AddNumberToObject(cfg, "momentum", kc_json_float(o->momentum));
    cJSON_AddNumberToObject(cfg, "epsilon", kc_json_float(o->epsilon));
    cJSON_AddBoolToObject(cfg, "centered", o->centered);
}

static void rmsprop_layout(const kc_optimizer *o, kc_opt_layout *l) {
    /* kerac's slots: velocity, average_gradient (centered), momentum; Keras's variables:
     * velocities, then momentums, then average gradients */
    *l = (kc_opt_layout){.n_groups = 1, .group_size = {1}, .slot = {{0}}, .name = {{"velocity"}}};
    if (o->momentum > 0.0f) {
        l->group_size[l->n_groups] = 1;
        l->slot[l->n_groups][0] = 1 + o->centered;
        l->name[l->n_groups++][0] = "momentum";
    }
    if (o->centered) {
        l->group_size[l->n_groups] = 1;
        l->slot[l->n_groups][0] = 1;
        l->name[l->n_groups++][0] = "average_gradient";
    }
}

static kc_optimizer *adam_from(const cJSON *cfg, const char *where) {
    kc_adam_opts o = {0};
    if (common_opts(cfg, where, &o.learning_rate)) return NULL;
    OPT_NUM(cfg, "beta_1", o.beta_1, where);
    OPT_NUM(cfg, "beta_2", o.beta_2, where);
    OPT_NUM(cfg, "epsilon", o.epsilon, where);
    o.amsgrad = is_true(field(cfg, "amsgrad"));
    kc_optimizer *opt = kc_adam(&o);
    return opt ? opt : prefix_null(where);
}

static void adam_to(const kc_optimizer *o, cJSON *cfg) {
    common_to(o, "adam", cfg);
    cJSON_AddNumberToObject(cfg, "beta_1", kc_json_float(o->beta_1));
    cJSON_AddNumberToObject(cfg, "beta_2", kc_json_float(o->beta_2));
    cJSON_AddNumberToObject(cfg, "epsilon", kc_json_float(o->epsilon));
    cJSON_AddBoolToObject(cfg, "amsgrad", o->amsgrad);
}

static void adam_layout(const kc_optimizer *o, kc_opt_layout *l) {
    *l = (kc_opt_layout){.n_groups = 1, .group_size = {2}, .slot = {{0, 1}}, .name = {{"momentum", "velocity"}}};
    if (o->amsgrad) {
        l->group_size[1] = 1;
        l->slot[1][0] = 2;
        l->name[1][0] = "velocity_hat";
        l->n_groups = 2;
    }
}

static kc_optimizer *adamw_from(const cJSON *cfg, const char *where) {
    kc_adamw_opts o = {0};
    if (common_opts_wd(cfg, where, &o.learning_rate, 1)) return NULL;
    double wd = 0.004;
    if (num(cfg, "weight_decay", &wd) < 0 || !(wd > 0 && wd < 1e30)) {
        kc_err(KC_EFORMAT, "%s: weight_decay must be a number > 0 (AdamW)", where);
        return NULL;
    }
    o.weight_decay = (float)wd;
    OPT_NUM(cfg, "beta_1", o.beta_1, where);
    OPT_NUM(cfg, "beta_2", o.beta_2, where);
    OPT_NUM(cfg, "epsilon", o.epsilon, where);
    o.amsgrad = is_true(field(cfg, "amsgrad"));
    kc_optimizer *opt = kc_adamw(&o);
    return opt ? opt : prefix_null(where);
}

static void adamw_to(const kc_optimizer *o, cJSON *cfg) {
    adam_to(o, cfg);
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "name", cJSON_CreateString("adam_w"));
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "weight_decay",
                                           cJSON_CreateNumber(kc_json_float(o->weight_decay)));
}

static kc_optimizer *adadelta_from(const cJSON *cfg, const char *where) {
    kc_adadelta_opts o = {0};
    if (common_opts(cfg, where, &o.learning_rate)) return NULL;
    OPT_NUM(cfg, "rho", o.rho, where);
    OPT_NUM(cfg, "epsilon", o.epsilon, where);
    kc_optimizer *opt = kc_adadelta(&o);
    return opt ? opt : prefix_null(where);
}

static void adadelta_to(const kc_optimizer *o, cJSON *cfg) {
    common_to(o, "adadelta", cfg);
    cJSON_AddNumberToObject(cfg, "rho", kc_json_float(o->rho));
    cJSON_AddNumberToObject(cfg, "epsilon", kc_json_float(o->epsilon));
}

static void adadelta_layout(const kc_optimizer *o, kc_opt_layout *l) {
    *l = (kc_opt_layout){.n_groups = 1, .group_size = {2}, .slot = {{0, 1}}, .name = {{"accumulated_grad", "accumulated_delta_var"}}};
}

static kc_optimizer *adagrad_from(const cJSON *cfg, const char *where) {
    kc_adagrad_opts o = {0};
    if (common_opts(cfg, where, &o.learning_rate)) return NULL;
    OPT_NUM(cfg, "initial_accumulator_value", o.initial_accumulator_value, where);
    OPT_NUM(cfg, "epsilon", o.epsilon, where);
    if (field(cfg, "initial_accumulator_value") && o.initial_accumulator_value == 0.0f)
        o.initial_accumulator_value = 1e-45f; /* kerac's 0 means the default 0.1 */
    kc_optimizer *opt = kc_adagrad(&o);
    return opt ? opt : prefix_null(where);
}

static void adagrad_to(const kc_optimizer *o, cJSON *cfg) {
    common_to(o, "adagrad", cfg);
    cJSON_AddNumberToObject(cfg, "initial_accumulator_value",
                            kc_json_float(o->initial_accumulator_value));
    cJSON_AddNumberToObject(cfg, "epsilon", kc_json_float(o->epsilon));
}

static void adagrad_layout(const kc_optimizer *o, kc_opt_layout *l) {
    *l = (kc_opt_layout){.n_groups = 1, .group_size = {1}, .slot = {{0}}, .name = {{"accumulator"}}};
}

static kc_optimizer *nadam_from(const cJSON *cfg, const char *where) {
    kc_nadam_opts o = {0};
    if (common_opts(cfg, where, &o.learning_rate)) return NULL;
    OPT_NUM(cfg, "beta_1", o.beta_1, where);
    OPT_NUM(cfg, "beta_2", o.beta_2, where);
    OPT_NUM(cfg, "epsilon", o.epsilon, where);
    kc_optimizer *opt = kc_nadam(&o);
    return opt ? opt : prefix_null(where);
}

static void nadam_to(const kc_optimizer *o, cJSON *cfg) {
    common_to(o, "nadam", cfg);
    cJSON_AddNumberToObject(cfg, "beta_1", kc_json_float(o->beta_1));
    cJSON_AddNumberToObject(cfg, "beta_2", kc_json_float(o->beta_2));
    cJSON_AddNumberToObject(cfg, "epsilon", kc_json_float(o->epsilon));
}

static void nadam_layout(const kc_optimizer *o, kc_opt_layout *l) {
    /* momentums and velocities, then the scalar u_product (Keras 3's last variable) */
    *l = (kc_opt_layout){.n_groups = 1, .group_size = {2}, .slot = {{0, 1}}, .name = {{"momentum", "velocity"}}};
    l->u_product = 1;
}

/* AdamW before Adam: kc_optimizer_io_of picks it for an Adam with weight decay */
static const kc_optimizer_io optimizer_table[] = {
    {"SGD", KC_OPT_SGD, sgd_from, sgd_to, sgd_layout},
    {"RMSprop", KC_OPT_RMSPROP, rmsprop_from, rmsprop_to, rmsprop_layout},
    {"AdamW", KC_OPT_ADAM, adamw_from, adamw_to, adam_layout},
    {"Adam", KC_OPT_ADAM, adam_from, adam_to, adam_layout},
    {"Adadelta", KC_OPT_ADADELTA, adadelta_from, adadelta_to, adadelta_layout},
    {"Adagrad", KC_OPT_ADAGRAD, adagrad_from, adagrad_to, adagrad_layout},
    {"Nadam", KC_OPT_NADAM, nadam_from, nadam_to, nadam_layout},
};

const kc_optimizer_io *kc_optimizer_io_find(const char *class_name) {
    /* tf.keras 2.11+ writes "Custom>Adam" for its new optimizers; Keras 2 lower case names */
    if (!strncmp(class_name, "Custom>", 7)) class_name += 7;
    for (size_t i = 0; i < sizeof optimizer_table / sizeof *optimizer_table; i++)
        if (!strcasecmp(optimizer_table[i].class_name, class_name)) return &optimizer_table[i];
    return NULL;
}

const kc_optimizer_io *kc_optimizer_io_of(const kc_optimizer *opt) {
    for (size_t i = 0; i < sizeof optimizer_table / sizeof *optimizer_table; i++)
        if (optimizer_table[i].kind == (int)opt->kind &&
            (opt->kind != KC_OPT_ADAM ||
             (opt->weight_decay > 0.0f) == !strcmp(optimizer_table[i].class_name, "AdamW")))
            return &optimizer_table[i];
    return NULL;
}
