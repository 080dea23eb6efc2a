/* optimizers.h: the optimizer struct and the calls the model makes on it. */
#ifndef KERAC_OPTIMIZERS_H
#define KERAC_OPTIMIZERS_H
#include "internal.h"

/* the rules, in optimizers.c's rule table order (a new optimizer: one more kind, one row there
 * and one in src/io/optimizer_config.c) */
typedef enum {
    KC_OPT_SGD,
    KC_OPT_RMSPROP,
    KC_OPT_ADAM, /* also AdamW: Adam with weight_decay > 0 */
    KC_OPT_ADADELTA,
    KC_OPT_ADAGRAD,
    KC_OPT_NADAM,
    KC_OPT_ADAMAX,
    KC_OPT_FTRL,
    KC_OPT_LION,
    KC_OPT_LAMB,
    KC_OPT_KIND_COUNT
} kc_opt_kind;

/* the state array that holds Keras's EMA averages (use_ema), after the rule's three */
#define KC_SLOT_EMA 3
#define KC_OPT_SLOTS 4

struct kc_optimizer {
    kc_opt_kind kind;
    float learning_rate, momentum, rho, beta_1, beta_2, epsilon;
    float initial_accumulator_value; /* Adagrad's and Ftrl's accumulators start here */
    /* Ftrl */
    float learning_rate_power, l1, l2, l2_shrinkage, beta;
    bool nesterov, centered, amsgrad;
    bool adamw; /* saved as AdamW (Keras 3: Adam with a weight_decay default of 0.004) */
    /* Keras 3's options of every optimizer (0: unset) */
    float weight_decay; /* decoupled, before the rule: w -= w * weight_decay * lr */
    float clipnorm, clipvalue, global_clipnorm;
    bool use_ema;
    float ema_momentum;
    int ema_overwrite_frequency;
    float decay; /* Keras 2's time-based decay: lr / (1 + decay * iterations) */
    bool has_schedule;
    kc_lr_schedule schedule;
    /* tf.keras 2.15's Nadam after loading its file (which lacks u_product): its per-variable
     * u_product rule (tf2_nadam_product, with the trace-time counter it compares) */
    bool tf2_nadam;
    double tf2_nadam_product;
    float *slots[KC_OPT_SLOTS]; /* state arrays, count floats each, parallel to the parameters */
    float *scratch;             /* Lamb: one variable's update */
    int64_t count;
    int64_t iterations; /* steps finished */
    double u_product;   /* Nadam: the product of its momentum schedule over finished steps */
};

/* Allocates zeroed state for n parameters. */
kc_status kc_optimizer_bind(kc_optimizer *opt, int64_t n);
/* 1 when a step needs every gradient of the model first (global_clipnorm, clipnorm, Lamb, the
 * tf.keras 2 Nadam): then the model steps all variables at once with kc_optimizer_step_vars
 * after backward, and does not step inside a Dense product. */
int kc_optimizer_needs_all_grads(const kc_optimizer *opt);
/* 1 when a step leaves a weight whose gradient is 0 exactly as it was (plain SGD: no momentum,
 * weight decay or EMA): an Embedding may then step only the rows its batch used, with the same
 * numbers as the dense step */
int kc_optimizer_row_sparse(const kc_optimizer *opt);
/* the learning rate of the next step (the schedule at the step count, Keras 2's decay) */
float kc_optimizer_step_lr(const kc_optimizer *opt);
/* w -= update(g) on [offset, offset + count) of the flat buffers, with this step's rule (each
 * parameter once per step), then finish the step (the step count, Nadam's u_product): every
 * range of one step sees the same per-step scalars. The model updates each layer's weights as
 * soon as their gradients exist, while they are still in cache. */
void kc_optimizer_update(kc_optimizer *opt, float *w, const float *g, int64_t offset,
                         int64_t count);
/* The same rule on the calling thread for count parameters anywhere: w and g point at the
 * first of them (g may be a scratch copy), offset is their place in the flat buffer (for the
 * state arrays). For a layer that steps its weights as its gradient product finishes rows. */
void kc_optimizer_apply(kc_optimizer *opt, float *w, const float *g, int64_t offset,
                        int64_t count);
/* One whole step over n variables (offset, count) of the flat buffers, Keras's order: the
 * clipping (g is scaled in place), weight decay, the rule, EMA; then finish the step. */
void kc_optimizer_step_vars(kc_optimizer *opt, float *w, float *g, const int64_t (*vars)[2],
                            int n);
void kc_optimizer_finish_step(kc_optimizer *opt);
/* learning-rate schedules (lr_schedule.c) */
double kc_lr_schedule_value(const kc_lr_schedule *s, double step);
kc_status kc_lr_schedule_check(const kc_lr_schedule *s);
#endif
