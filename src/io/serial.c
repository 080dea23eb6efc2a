/* serial.c: the tables that map kerac's layers and optimizers to Keras's configs and
 * variables. One entry per Keras class: its config fields <-> kerac's fields, and its
 * variables in Keras's order. A new layer or optimizer is one more entry. */
#include "io.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- Dense ---- */

static kc_status dense_from(const cJSON *cfg, const char *where, kc_layer **out) {
    const cJSON *units = field(cfg, "units");
    if (!cJSON_IsNumber(units) || units->valuedouble < 1 || units->valuedouble > 1e8 ||
        units->valuedouble != floor(units->valuedouble))
        return kc_err(KC_EFORMAT, "%s: units is missing or not a positive whole number", where);
    const cJSON *use_bias = field(cfg, "use_bias");
    if (use_bias && !is_true(use_bias))
        return kc_err(KC_EFORMAT, "%s: use_bias=False is not supported by kerac", where);
    kc_act act = KC_LINEAR;
    kc_status st = parse_activation(field(cfg, "activation"), where, &act);
    if (st) return st;
    *out = kc_dense((int)units->valuedouble, act);
    return *out ? KC_OK : kc_err_prefix(KC_ENOMEM, "%s", where);
}

static cJSON *initializer(const char *cls) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "module", "keras.initializers");
    cJSON_AddStringToObject(o, "class_name", cls);
    cJSON *c = cJSON_AddObjectToObject(o, "config");
    if (!strcmp(cls, "GlorotUniform")) {
        cJSON_AddNullToObject(c, "seed");
    }
    cJSON_AddNullToObject(o, "registered_name");
    return o;
}

static kc_status dense_to(const kc_layer *l, cJSON *cfg) {
    cJSON_AddNumberToObject(cfg, "units", l->units);
    cJSON_AddStringToObject(cfg, "activation", act_names[l->act]);
    cJSON_AddTrueToObject(cfg, "use_bias");
    cJSON_AddItemToObject(cfg, "kernel_initializer", initializer("GlorotUniform"));
    cJSON_AddItemToObject(cfg, "bias_initializer", initializer("Zeros"));
    const char *nulls[] = {"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                           "kernel_constraint", "bias_constraint"};
    for (int i = 0; i < 5; i++) cJSON_AddNullToObject(cfg, nulls[i]);
    return KC_OK;
}

static int dense_weights(const kc_layer *l, kc_weight_desc *w) {
    w[0] = (kc_weight_desc){"kernel", 2, {l->in_size, l->units}, 0, l->in_size * l->units, 1};
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

static int no_weights(const kc_layer *l, kc_weight_desc *w) { return 0; }

static const kc_layer_io layer_table[] = {
    {"Dense", dense_from, dense_to, dense_weights},
    {"Dropout", dropout_from, dropout_to, no_weights},
    {"Activation", activation_from, activation_to, no_weights},
    {"Flatten", flatten_from, flatten_to, no_weights},
};

const kc_layer_io *kc_layer_io_find(const char *class_name) {
    for (size_t i = 0; i < sizeof layer_table / sizeof *layer_table; i++)
        if (!strcmp(layer_table[i].class_name, class_name)) return &layer_table[i];
    return NULL;
}

int kc_layer_weights(const kc_layer *layer, kc_weight_desc *out) {
    const kc_layer_io *io = kc_layer_io_find(layer->ops->type_name);
    int n = io ? io->weights(layer, out) : 0;
    for (int i = 0; i < n; i++) out[i].offset += layer->param_offset;
    return n;
}

/* ---- optimizers ---- */

static int num(const cJSON *cfg, const char *name, double *out) {
    const cJSON *v = field(cfg, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return -1;
    *out = v->valuedouble;
    return 1;
}

/* learning_rate (a number; a schedule is not supported), and the options kerac lacks */
static kc_status common_opts(const cJSON *cfg, const char *where, float *lr) {
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
    for (int i = 0; i < 7; i++) {
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
    cJSON_AddNumberToObject(cfg, "momentum", kc_json_float(o->momentum));
    cJSON_AddBoolToObject(cfg, "nesterov", o->nesterov);
}

static void sgd_layout(const kc_optimizer *o, kc_opt_layout *l) {
    *l = (kc_opt_layout){0};
    if (o->momentum > 0.0f) *l = (kc_opt_layout){1, {1}, {{0}}, {{"momentum"}}};
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
    *l = (kc_opt_layout){1, {1}, {{0}}, {{"velocity"}}};
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
    *l = (kc_opt_layout){1, {2}, {{0, 1}}, {{"momentum", "velocity"}}};
    if (o->amsgrad) {
        l->group_size[1] = 1;
        l->slot[1][0] = 2;
        l->name[1][0] = "velocity_hat";
        l->n_groups = 2;
    }
}

static const kc_optimizer_io optimizer_table[] = {
    {"SGD", KC_OPT_SGD, sgd_from, sgd_to, sgd_layout},
    {"RMSprop", KC_OPT_RMSPROP, rmsprop_from, rmsprop_to, rmsprop_layout},
    {"Adam", KC_OPT_ADAM, adam_from, adam_to, adam_layout},
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
        if (optimizer_table[i].kind == (int)opt->kind) return &optimizer_table[i];
    return NULL;
}
