/* schedule_config.c: keras.optimizers.schedules' configs <-> kc_lr_schedule: one table row per
 * class (its name, its default "name" field, its kind), the fields read and written by kind.
 * Keras 3 wraps a schedule as {"module": "keras.optimizers.schedules", "class_name", "config",
 * "registered_name": null}, tf.keras 2 as {"class_name", "config"}; both are read. */
#include "config_fields.h"
#include <math.h>
#include <string.h>

static const struct {
    const char *class_name, *default_name;
    kc_lr_schedule_kind kind;
} schedule_table[] = {
    {"ExponentialDecay", "ExponentialDecay", KC_LR_EXPONENTIAL_DECAY},
    {"InverseTimeDecay", "InverseTimeDecay", KC_LR_INVERSE_TIME_DECAY},
    {"PiecewiseConstantDecay", "PiecewiseConstant", KC_LR_PIECEWISE_CONSTANT_DECAY},
    {"PolynomialDecay", "PolynomialDecay", KC_LR_POLYNOMIAL_DECAY},
    {"CosineDecay", "CosineDecay", KC_LR_COSINE_DECAY},
    {"CosineDecayRestarts", "SGDRDecay", KC_LR_COSINE_DECAY_RESTARTS},
};
_Static_assert(sizeof schedule_table / sizeof *schedule_table == KC_LR_COSINE_DECAY_RESTARTS,
               "one row per schedule kind");

#define NUM(name, field, required)                                                          \
    do {                                                                                    \
        int r_ = kc_cfg_num(cfg, name, &s.field);                                           \
        if (r_ < 0 || (required && r_ == 0))                                                \
            return kc_err(KC_EFORMAT, "%s: learning-rate schedule %s: %s %s", where, cls,   \
                          name, r_ < 0 ? "is not a number" : "is missing");                 \
    } while (0)

static kc_status number_list(const cJSON *a, const char *name, const char *where,
                             const char *cls, double *out, int *n, int max) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > max || cJSON_GetArraySize(a) < 1)
        return kc_err(KC_EFORMAT, "%s: learning-rate schedule %s: %s must be a list of 1 to %d "
                      "numbers", where, cls, name, max);
    int k = 0;
    for (const cJSON *e = a->child; e; e = e->next) {
        if (!cJSON_IsNumber(e))
            return kc_err(KC_EFORMAT, "%s: learning-rate schedule %s: %s[%d] is not a number",
                          where, cls, name, k);
        out[k++] = e->valuedouble;
    }
    *n = k;
    return KC_OK;
}

kc_status kc_schedule_from_config(const cJSON *v, const char *where, kc_lr_schedule *out) {
    const cJSON *c = kc_cfg_field(v, "class_name"), *cfg = kc_cfg_field(v, "config");
    if (!cJSON_IsString(c) || !cJSON_IsObject(cfg))
        return kc_err(KC_EFORMAT, "%s: learning_rate is an object without class_name and config",
                      where);
    const char *cls = c->valuestring;
    if (!strncmp(cls, "Custom>", 7)) cls += 7;
    kc_lr_schedule s = {0};
    size_t i = 0;
    while (i < sizeof schedule_table / sizeof *schedule_table &&
           strcmp(schedule_table[i].class_name, cls))
        i++;
    if (i == sizeof schedule_table / sizeof *schedule_table)
        return kc_err(KC_EFORMAT,
                      "%s: learning-rate schedule '%s' is not one kerac has (ExponentialDecay, "
                      "InverseTimeDecay, PiecewiseConstantDecay, PolynomialDecay, CosineDecay, "
                      "CosineDecayRestarts)",
                      where, c->valuestring);
    s.kind = schedule_table[i].kind;
    switch (s.kind) {
    case KC_LR_EXPONENTIAL_DECAY:
    case KC_LR_INVERSE_TIME_DECAY:
        NUM("initial_learning_rate", initial_learning_rate, 1);
        NUM("decay_steps", decay_steps, 1);
        NUM("decay_rate", decay_rate, 1);
        s.staircase = cJSON_IsTrue(kc_cfg_field(cfg, "staircase"));
        break;
    case KC_LR_PIECEWISE_CONSTANT_DECAY: {
        int nb = 0, nv = 0;
        kc_status st = number_list(kc_cfg_field(cfg, "boundaries"), "boundaries", where, cls,
                                   s.boundaries, &nb, KC_MAX_LR_BOUNDARIES);
        if (!st) st = number_list(kc_cfg_field(cfg, "values"), "values", where, cls, s.values,
                                  &nv, KC_MAX_LR_BOUNDARIES + 1);
        if (st) return st;
        if (nv != nb + 1)
            return kc_err(KC_EFORMAT, "%s: learning-rate schedule %s: values must have one more "
                          "element than boundaries (%d and %d)", where, cls, nv, nb);
        s.n_boundaries = nb;
        break;
    }
    case KC_LR_POLYNOMIAL_DECAY:
        s.end_learning_rate = 0.0001;
        s.power = 1.0;
        NUM("initial_learning_rate", initial_learning_rate, 1);
        NUM("decay_steps", decay_steps, 1);
        NUM("end_learning_rate", end_learning_rate, 0);
        NUM("power", power, 0);
        if (s.end_learning_rate == 0.0) s.end_learning_rate = KC_ZERO;
        if (s.power == 0.0) s.power = 1e-300; /* a literal 0: (1 - p)^0 */
        s.cycle = cJSON_IsTrue(kc_cfg_field(cfg, "cycle"));
        break;
    case KC_LR_COSINE_DECAY:
        NUM("initial_learning_rate", initial_learning_rate, 1);
        NUM("decay_steps", decay_steps, 1);
        NUM("alpha", alpha, 0);
        s.has_warmup_target = kc_cfg_num(cfg, "warmup_target", &s.warmup_target) > 0;
        NUM("warmup_target", warmup_target, 0);
        NUM("warmup_steps", warmup_steps, 0);
        break;
    case KC_LR_COSINE_DECAY_RESTARTS:
        s.t_mul = 2.0;
        s.m_mul = 1.0;
        NUM("initial_learning_rate", initial_learning_rate, 1);
        NUM("first_decay_steps", decay_steps, 1);
        NUM("t_mul", t_mul, 0);
        NUM("m_mul", m_mul, 0);
        NUM("alpha", alpha, 0);
        if (s.m_mul == 0.0) s.m_mul = KC_ZERO;
        break;
    default: break;
    }
    *out = s;
    return KC_OK;
}

static const char *default_name(kc_lr_schedule_kind kind) {
    for (size_t i = 0; i < sizeof schedule_table / sizeof *schedule_table; i++)
        if (schedule_table[i].kind == kind) return schedule_table[i].default_name;
    return "schedule";
}

static const char *class_of(kc_lr_schedule_kind kind) {
    for (size_t i = 0; i < sizeof schedule_table / sizeof *schedule_table; i++)
        if (schedule_table[i].kind == kind) return schedule_table[i].class_name;
    return NULL;
}

/* a whole number as an int (Keras's steps are ints) */
static void add_steps(cJSON *cfg, const char *name, double v) {
    cJSON_AddNumberToObject(cfg, name, v);
}

static cJSON *list(const double *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

cJSON *kc_schedule_to_config(const kc_lr_schedule *s) {
    const char *cls = class_of(s->kind);
    if (!cls) return NULL;
    cJSON *cfg = cJSON_CreateObject();
    switch (s->kind) {
    case KC_LR_EXPONENTIAL_DECAY:
    case KC_LR_INVERSE_TIME_DECAY:
        cJSON_AddNumberToObject(cfg, "initial_learning_rate", s->initial_learning_rate);
        add_steps(cfg, "decay_steps", s->decay_steps);
        cJSON_AddNumberToObject(cfg, "decay_rate", s->decay_rate);
        cJSON_AddBoolToObject(cfg, "staircase", s->staircase);
        break;
    case KC_LR_PIECEWISE_CONSTANT_DECAY:
        cJSON_AddItemToObject(cfg, "boundaries", list(s->boundaries, s->n_boundaries));
        cJSON_AddItemToObject(cfg, "values", list(s->values, s->n_boundaries + 1));
        break;
    case KC_LR_POLYNOMIAL_DECAY:
        cJSON_AddNumberToObject(cfg, "initial_learning_rate", s->initial_learning_rate);
        add_steps(cfg, "decay_steps", s->decay_steps);
        cJSON_AddNumberToObject(cfg, "end_learning_rate", s->end_learning_rate);
        cJSON_AddNumberToObject(cfg, "power", s->power);
        cJSON_AddBoolToObject(cfg, "cycle", s->cycle);
        break;
    case KC_LR_COSINE_DECAY:
        cJSON_AddNumberToObject(cfg, "initial_learning_rate", s->initial_learning_rate);
        add_steps(cfg, "decay_steps", s->decay_steps);
        cJSON_AddNumberToObject(cfg, "alpha", s->alpha);
        if (s->has_warmup_target) cJSON_AddNumberToObject(cfg, "warmup_target", s->warmup_target);
        else cJSON_AddNullToObject(cfg, "warmup_target");
        add_steps(cfg, "warmup_steps", s->warmup_steps);
        break;
    case KC_LR_COSINE_DECAY_RESTARTS:
        cJSON_AddNumberToObject(cfg, "initial_learning_rate", s->initial_learning_rate);
        add_steps(cfg, "first_decay_steps", s->decay_steps);
        cJSON_AddNumberToObject(cfg, "t_mul", s->t_mul);
        cJSON_AddNumberToObject(cfg, "m_mul", s->m_mul);
        cJSON_AddNumberToObject(cfg, "alpha", s->alpha);
        break;
    default: break;
    }
    cJSON_AddStringToObject(cfg, "name", default_name(s->kind));
    return kc_cfg_wrap("keras.optimizers.schedules", cls, cfg, KC_CONFIG_KERAS3);
}
