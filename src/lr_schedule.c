/* lr_schedule.c: keras.optimizers.schedules' formulas (Keras 3.15), evaluated in double at a
 * step count, and the checks their constructors make. */
#include "optimizers.h"
#include <math.h>

double kc_lr_schedule_value(const kc_lr_schedule *s, double step) {
    const double pi = 3.14159265358979323846;
    switch (s->kind) {
    case KC_LR_CONSTANT: return s->initial_learning_rate;
    case KC_LR_EXPONENTIAL_DECAY: {
        double p = step / s->decay_steps;
        if (s->staircase) p = floor(p);
        return s->initial_learning_rate * pow(s->decay_rate, p);
    }
    case KC_LR_INVERSE_TIME_DECAY: {
        double p = step / s->decay_steps;
        if (s->staircase) p = floor(p);
        return s->initial_learning_rate / (1.0 + s->decay_rate * p);
    }
    case KC_LR_PIECEWISE_CONSTANT_DECAY: {
        /* values[0] up to and with boundaries[0], values[i] in (boundaries[i-1], boundaries[i]] */
        int i = 0;
        while (i < s->n_boundaries && step > s->boundaries[i]) i++;
        return s->values[i];
    }
    case KC_LR_POLYNOMIAL_DECAY: {
        double steps = s->decay_steps, t = step;
        if (s->cycle) steps *= t == 0.0 ? 1.0 : ceil(t / s->decay_steps);
        else t = fmin(t, steps);
        double p = t / steps;
        return (s->initial_learning_rate - s->end_learning_rate) * pow(1.0 - p, s->power) +
               s->end_learning_rate;
    }
    case KC_LR_COSINE_DECAY: {
        double t = step, from = s->initial_learning_rate;
        if (s->has_warmup_target) {
            t = fmin(t, s->decay_steps + s->warmup_steps);
            if (t < s->warmup_steps)
                return (s->warmup_target - s->initial_learning_rate) * (t / s->warmup_steps) +
                       s->initial_learning_rate;
            t -= s->warmup_steps;
            from = s->warmup_target;
        } else {
            t = fmin(t, s->decay_steps);
        }
        double cosine = 0.5 * (1.0 + cos(pi * (t / s->decay_steps)));
        return from * ((1.0 - s->alpha) * cosine + s->alpha);
    }
    case KC_LR_COSINE_DECAY_RESTARTS: {
        double frac = step / s->decay_steps, i_restart;
        if (s->t_mul == 1.0) {
            i_restart = floor(frac);
            frac -= i_restart;
        } else {
            i_restart = floor(log(1.0 - frac * (1.0 - s->t_mul)) / log(s->t_mul));
            double sum_r = (1.0 - pow(s->t_mul, i_restart)) / (1.0 - s->t_mul);
            frac = (frac - sum_r) / pow(s->t_mul, i_restart);
        }
        double cosine = 0.5 * pow(s->m_mul, i_restart) * (1.0 + cos(pi * frac));
        return s->initial_learning_rate * ((1.0 - s->alpha) * cosine + s->alpha);
    }
    }
    return s->initial_learning_rate;
}

kc_status kc_lr_schedule_check(const kc_lr_schedule *s) {
    static const char *const names[] = {"constant", "ExponentialDecay", "InverseTimeDecay",
                                        "PiecewiseConstantDecay", "PolynomialDecay",
                                        "CosineDecay", "CosineDecayRestarts"};
    if ((unsigned)s->kind > KC_LR_COSINE_DECAY_RESTARTS)
        return kc_err(KC_EINVAL, "learning-rate schedule: unknown kind %d", (int)s->kind);
    const char *n = names[s->kind];
    if (s->kind == KC_LR_PIECEWISE_CONSTANT_DECAY) {
        if (s->n_boundaries < 1 || s->n_boundaries > KC_MAX_LR_BOUNDARIES)
            return kc_err(KC_EINVAL, "%s: n_boundaries must be in [1, %d], got %d", n,
                          KC_MAX_LR_BOUNDARIES, s->n_boundaries);
        for (int i = 0; i <= s->n_boundaries; i++)
            if (!isfinite(s->values[i]) || s->values[i] < 0)
                return kc_err(KC_EINVAL, "%s: values[%d] must be a finite number >= 0", n, i);
        for (int i = 0; i < s->n_boundaries; i++)
            if (!isfinite(s->boundaries[i]) || (i && s->boundaries[i] < s->boundaries[i - 1]))
                return kc_err(KC_EINVAL, "%s: boundaries must be finite and increasing", n);
        return KC_OK;
    }
    if (s->kind == KC_LR_CONSTANT) return KC_OK;
    if (!(s->initial_learning_rate >= 0) || !isfinite(s->initial_learning_rate))
        return kc_err(KC_EINVAL, "%s: initial_learning_rate must be a finite number >= 0, got %g",
                      n, s->initial_learning_rate);
    if (!(s->decay_steps > 0) || !isfinite(s->decay_steps))
        return kc_err(KC_EINVAL, "%s: %s must be > 0, got %g", n,
                      s->kind == KC_LR_COSINE_DECAY_RESTARTS ? "first_decay_steps" : "decay_steps",
                      s->decay_steps);
    if (s->kind == KC_LR_COSINE_DECAY_RESTARTS && !(s->t_mul > 0))
        return kc_err(KC_EINVAL, "%s: t_mul must be > 0, got %g", n, s->t_mul);
    if (s->kind == KC_LR_COSINE_DECAY && s->has_warmup_target &&
        (!(s->warmup_steps >= 0) || !isfinite(s->warmup_target)))
        return kc_err(KC_EINVAL, "%s: warmup_steps must be >= 0 and warmup_target finite", n);
    return KC_OK;
}
