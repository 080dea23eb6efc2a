/* optimizer_config.c: the table that maps kerac's optimizers to Keras's configs and
 * variables: one entry per Keras class, its config fields <-> kerac's fields, and the layout of
 * its variables in Keras's order. A new optimizer is one more entry. (Layer classes map
 * themselves: their io functions, in src/layers/.) */
#include "config_fields.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* learning_rate (a number; a schedule is not supported), and the options kerac lacks */
static kc_status common_opts_wd(const cJSON *cfg, const char *where, float *lr, int allow_wd);
static kc_status common_opts(const cJSON *cfg, const char *where, float *lr) {
    return common_opts_wd(cfg, where, lr, 0);
}

/* allow_wd: weight_decay is AdamW's own option */
static kc_status common_opts_wd(const cJSON *cfg, const char *where, float *lr, int allow_wd) {
    const cJSON *v = kc_cfg_field(cfg, "learning_rate");
    if (!v) v = kc_cfg_field(cfg, "lr");
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
        int r = kc_cfg_num(cfg, unsupported[i], &d);
        if (r < 0 || (r > 0 && d != 0.0))
            return kc_err(KC_EFORMAT, "%s: %s is not supported by kerac", where, unsupported[i]);
    }
    if (cJSON_IsTrue(kc_cfg_field(cfg, "use_ema")))
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
        int r_ = kc_cfg_num(cfg, name, &d_);                                            \
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
    o.nesterov = cJSON_IsTrue(kc_cfg_field(cfg, "nesterov"));
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
    o.centered = cJSON_IsTrue(kc_cfg_field(cfg, "centered"));
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
    o.amsgrad = cJSON_IsTrue(kc_cfg_field(cfg, "amsgrad"));
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
    if (kc_cfg_num(cfg, "weight_decay", &wd) < 0 || !(wd > 0 && wd < 1e30)) {
        kc_err(KC_EFORMAT, "%s: weight_decay must be a number > 0 (AdamW)", where);
        return NULL;
    }
    o.weight_decay = (float)wd;
    OPT_NUM(cfg, "beta_1", o.beta_1, where);
    OPT_NUM(cfg, "beta_2", o.beta_2, where);
    OPT_NUM(cfg, "epsilon", o.epsilon, where);
    o.amsgrad = cJSON_IsTrue(kc_cfg_field(cfg, "amsgrad"));
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
    if (kc_cfg_field(cfg, "initial_accumulator_value") && o.initial_accumulator_value == 0.0f)
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
