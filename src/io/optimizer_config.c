/* optimizer_config.c: the table that maps kerac's optimizers to Keras's configs and
 * variables: one entry per Keras class, its config fields <-> kerac's fields, and the layout of
 * its variables in Keras's order. A new optimizer is one more entry. (Layer classes map
 * themselves: their io functions, in src/layers/.) */
#include "config_fields.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* learning_rate when a number (a schedule: kc_optimizer_common_from) */
static kc_status common_opts(const cJSON *cfg, const char *where, float *lr) {
    const cJSON *v = kc_cfg_field(cfg, "learning_rate");
    if (!v) v = kc_cfg_field(cfg, "lr");
    if (cJSON_IsObject(v)) return KC_OK; /* a schedule */
    if (v && !cJSON_IsNumber(v))
        return kc_err(KC_EFORMAT, "%s: learning_rate is not a number", where);
    *lr = v ? (float)v->valuedouble : 0.0f;
    if (v && !(*lr > 0.0f))
        return kc_err(KC_EFORMAT, "%s: learning_rate %g is not supported (must be > 0)", where,
                      v->valuedouble);
    return KC_OK;
}

kc_status kc_optimizer_common_from(const cJSON *cfg, const char *where, kc_optimizer *opt) {
    const char *unsupported[] = {"loss_scale_factor", "gradient_accumulation_steps"};
    for (int i = 0; i < 2; i++) {
        double d;
        int r = kc_cfg_num(cfg, unsupported[i], &d);
        if (r < 0 || (r > 0 && d != 0.0))
            return kc_err(KC_EFORMAT, "%s: %s is not supported by kerac", where, unsupported[i]);
    }
    kc_optimizer_common_opts c = kc_optimizer_get_common(opt);
    struct {
        const char *name;
        float *to;
    } nums[] = {{"weight_decay", &c.weight_decay}, {"clipnorm", &c.clipnorm},
                {"clipvalue", &c.clipvalue},       {"global_clipnorm", &c.global_clipnorm},
                {"ema_momentum", &c.ema_momentum}, {"decay", &c.decay}};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        if (opt->adamw && i == 0) continue; /* AdamW's own, read with its rule */
        double d;
        int r = kc_cfg_num(cfg, nums[i].name, &d);
        if (r < 0) return kc_err(KC_EFORMAT, "%s: %s is not a number", where, nums[i].name);
        if (r > 0) *nums[i].to = (float)d;
        if (r > 0 && i == 4 && d == 0.0) *nums[i].to = (float)KC_ZERO;
    }
    const cJSON *ema = kc_cfg_field(cfg, "use_ema");
    c.use_ema = cJSON_IsTrue(ema);
    double freq = 0;
    int r = kc_cfg_num(cfg, "ema_overwrite_frequency", &freq);
    if (r < 0 || (r > 0 && (freq != floor(freq) || freq < 0 || freq > 1e9)))
        return kc_err(KC_EFORMAT, "%s: ema_overwrite_frequency must be an integer >= 1 or null",
                      where);
    c.ema_overwrite_frequency = (int)freq;
    kc_status st = kc_optimizer_set_common(opt, &c);
    if (st) return kc_err_prefix(st, "%s", where);
    const cJSON *lr = kc_cfg_field(cfg, "learning_rate");
    if (!lr) lr = kc_cfg_field(cfg, "lr");
    if (cJSON_IsObject(lr)) {
        kc_lr_schedule s;
        st = kc_schedule_from_config(lr, where, &s);
        if (!st) st = kc_optimizer_set_schedule(opt, &s);
        if (st) return kc_err_prefix(st, "%s", where);
    }
    return KC_OK;
}

static void common_to(const kc_optimizer *o, const char *name, cJSON *cfg) {
    cJSON_AddStringToObject(cfg, "name", name);
    if (o->has_schedule) cJSON_AddItemToObject(cfg, "learning_rate", kc_schedule_to_config(&o->schedule));
    else cJSON_AddNumberToObject(cfg, "learning_rate", kc_json_float(o->learning_rate));
    const char *names[] = {"weight_decay", "clipnorm", "global_clipnorm", "clipvalue"};
    const float vals[] = {o->weight_decay, o->clipnorm, o->global_clipnorm, o->clipvalue};
    for (int i = 0; i < 4; i++) {
        if (vals[i] > 0.0f) cJSON_AddNumberToObject(cfg, names[i], kc_json_float(vals[i]));
        else cJSON_AddNullToObject(cfg, names[i]);
    }
    cJSON_AddBoolToObject(cfg, "use_ema", o->use_ema);
    cJSON_AddNumberToObject(cfg, "ema_momentum", kc_json_float(o->ema_momentum));
    if (o->ema_overwrite_frequency > 0)
        cJSON_AddNumberToObject(cfg, "ema_overwrite_frequency", o->ema_overwrite_frequency);
    else cJSON_AddNullToObject(cfg, "ema_overwrite_frequency");
    cJSON_AddNullToObject(cfg, "loss_scale_factor");
    cJSON_AddNullToObject(cfg, "gradient_accumulation_steps");
    /* Keras 2's time-based decay: Keras 3 ignores it (with its warning), tf.keras 2's legacy
     * optimizers and kerac apply it */
    if (o->decay > 0.0f) cJSON_AddNumberToObject(cfg, "decay", kc_json_float(o->decay));
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
    kc_err_prefix(kc_last_status(), "%s", where); /* KC_ENOMEM stays KC_ENOMEM */
    return NULL;
}

/* the options of every optimizer and the schedule, on a made optimizer */
static kc_optimizer *with_common(kc_optimizer *opt, const cJSON *cfg, const char *where) {
    if (!opt) return prefix_null(where);
    if (cfg && kc_optimizer_common_from(cfg, where, opt)) {
        kc_optimizer_free(opt);
        return NULL;
    }
    return opt;
}

static kc_optimizer *sgd_from(const cJSON *cfg, const char *where) {
    kc_sgd_opts o = {0};
    if (common_opts(cfg, where, &o.learning_rate)) return NULL;
    OPT_NUM(cfg, "momentum", o.momentum, where);
    o.nesterov = cJSON_IsTrue(kc_cfg_field(cfg, "nesterov"));
    kc_optimizer *opt = kc_sgd(&o);
    return with_common(opt, cfg, where);
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
    return with_common(opt, cfg, where);
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
    return with_common(opt, cfg, where);
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
    if (common_opts(cfg, where, &o.learning_rate)) return NULL;
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
    return with_common(opt, cfg, where);
}

static void adamw_to(const kc_optimizer *o, cJSON *cfg) {
    adam_to(o, cfg);
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "name", cJSON_CreateString("adam_w"));
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "weight_decay",
                                           cJSON_CreateNumber(kc_json_float(o->weight_decay)));
}

static kc_optimizer *adamax_from(const cJSON *cfg, const char *where) {
    kc_adamax_opts o = {0};
    if (common_opts(cfg, where, &o.learning_rate)) return NULL;
    OPT_NUM(cfg, "beta_1", o.beta_1, where);
    OPT_NUM(cfg, "beta_2", o.beta_2, where);
    OPT_NUM(cfg, "epsilon", o.epsilon, where);
    return with_common(kc_adamax(&o), cfg, where);
}

static void adamax_to(const kc_optimizer *o, cJSON *cfg) {
    common_to(o, "adamax", cfg);
    cJSON_AddNumberToObject(cfg, "beta_1", kc_json_float(o->beta_1));
    cJSON_AddNumberToObject(cfg, "beta_2", kc_json_float(o->beta_2));
    cJSON_AddNumberToObject(cfg, "epsilon", kc_json_float(o->epsilon));
}

static void adamax_layout(const kc_optimizer *o, kc_opt_layout *l) {
    *l = (kc_opt_layout){.n_groups = 1, .group_size = {2}, .slot = {{0, 1}}, .name = {{"momentum", "norm"}}};
}

/* a number where 0 is meaningful: KC_ZERO in the opts */
static float literal(float v) { return v == 0.0f ? (float)KC_ZERO : v; }

static kc_optimizer *ftrl_from(const cJSON *cfg, const char *where) {
    kc_ftrl_opts o = {0};
    if (common_opts(cfg, where, &o.learning_rate)) return NULL;
    float power = -0.5f, init = 0.1f;
    OPT_NUM(cfg, "learning_rate_power", power, where);
    OPT_NUM(cfg, "initial_accumulator_value", init, where);
    o.learning_rate_power = literal(power);
    o.initial_accumulator_value = literal(init);
    OPT_NUM(cfg, "l1_regularization_strength", o.l1_regularization_strength, where);
    OPT_NUM(cfg, "l2_regularization_strength", o.l2_regularization_strength, where);
    OPT_NUM(cfg, "l2_shrinkage_regularization_strength", o.l2_shrinkage_regularization_strength,
            where);
    OPT_NUM(cfg, "beta", o.beta, where);
    return with_common(kc_ftrl(&o), cfg, where);
}

static void ftrl_to(const kc_optimizer *o, cJSON *cfg) {
    common_to(o, "ftrl", cfg);
    cJSON_AddNumberToObject(cfg, "learning_rate_power", kc_json_float(o->learning_rate_power));
    cJSON_AddNumberToObject(cfg, "initial_accumulator_value",
                            kc_json_float(o->initial_accumulator_value));
    cJSON_AddNumberToObject(cfg, "l1_regularization_strength", kc_json_float(o->l1));
    cJSON_AddNumberToObject(cfg, "l2_regularization_strength", kc_json_float(o->l2));
    cJSON_AddNumberToObject(cfg, "l2_shrinkage_regularization_strength",
                            kc_json_float(o->l2_shrinkage));
    cJSON_AddNumberToObject(cfg, "beta", kc_json_float(o->beta));
}

static void ftrl_layout(const kc_optimizer *o, kc_opt_layout *l) {
    *l = (kc_opt_layout){.n_groups = 1, .group_size = {2}, .slot = {{0, 1}}, .name = {{"accumulator", "linear"}}};
}

static kc_optimizer *lion_from(const cJSON *cfg, const char *where) {
    kc_lion_opts o = {0};
    if (common_opts(cfg, where, &o.learning_rate)) return NULL;
    OPT_NUM(cfg, "beta_1", o.beta_1, where);
    OPT_NUM(cfg, "beta_2", o.beta_2, where);
    return with_common(kc_lion(&o), cfg, where);
}

static void lion_to(const kc_optimizer *o, cJSON *cfg) {
    common_to(o, "lion", cfg);
    cJSON_AddNumberToObject(cfg, "beta_1", kc_json_float(o->beta_1));
    cJSON_AddNumberToObject(cfg, "beta_2", kc_json_float(o->beta_2));
}

static void lion_layout(const kc_optimizer *o, kc_opt_layout *l) {
    *l = (kc_opt_layout){.n_groups = 1, .group_size = {1}, .slot = {{0}}, .name = {{"momentum"}}};
}

static kc_optimizer *lamb_from(const cJSON *cfg, const char *where) {
    kc_lamb_opts o = {0};
    if (common_opts(cfg, where, &o.learning_rate)) return NULL;
    OPT_NUM(cfg, "beta_1", o.beta_1, where);
    OPT_NUM(cfg, "beta_2", o.beta_2, where);
    OPT_NUM(cfg, "epsilon", o.epsilon, where);
    return with_common(kc_lamb(&o), cfg, where);
}

static void lamb_to(const kc_optimizer *o, cJSON *cfg) {
    common_to(o, "lamb", cfg);
    cJSON_AddNumberToObject(cfg, "beta_1", kc_json_float(o->beta_1));
    cJSON_AddNumberToObject(cfg, "beta_2", kc_json_float(o->beta_2));
    cJSON_AddNumberToObject(cfg, "epsilon", kc_json_float(o->epsilon));
}

static kc_optimizer *adadelta_from(const cJSON *cfg, const char *where) {
    kc_adadelta_opts o = {0};
    if (common_opts(cfg, where, &o.learning_rate)) return NULL;
    OPT_NUM(cfg, "rho", o.rho, where);
    OPT_NUM(cfg, "epsilon", o.epsilon, where);
    kc_optimizer *opt = kc_adadelta(&o);
    return with_common(opt, cfg, where);
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
    return with_common(opt, cfg, where);
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
    return with_common(opt, cfg, where);
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
    {"Adamax", KC_OPT_ADAMAX, adamax_from, adamax_to, adamax_layout},
    {"Ftrl", KC_OPT_FTRL, ftrl_from, ftrl_to, ftrl_layout},
    {"Lion", KC_OPT_LION, lion_from, lion_to, lion_layout},
    {"Lamb", KC_OPT_LAMB, lamb_from, lamb_to, adam_layout},
};
/* one row per rule (AdamW: a second row for Adam's) */
_Static_assert(sizeof optimizer_table / sizeof *optimizer_table == KC_OPT_KIND_COUNT + 1,
               "one optimizer_table row per kc_opt_kind (and AdamW)");

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
             opt->adamw == !strcmp(optimizer_table[i].class_name, "AdamW")))
            return &optimizer_table[i];
    return NULL;
}
