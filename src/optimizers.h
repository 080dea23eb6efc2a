/* optimizers.h: the optimizer struct and the two calls the model makes on it. */
#ifndef KERAC_OPTIMIZERS_H
#define KERAC_OPTIMIZERS_H
#include "internal.h"

typedef enum {
    KC_OPT_SGD,
    KC_OPT_RMSPROP,
    KC_OPT_ADAM, /* also AdamW: Adam with weight_decay > 0 */
    KC_OPT_ADADELTA,
    KC_OPT_ADAGRAD,
    KC_OPT_NADAM
} kc_opt_kind;

struct kc_optimizer {
    kc_opt_kind kind;
    float learning_rate, momentum, rho, beta_1, beta_2, epsilon;
    float weight_decay;              /* decoupled, before the rule (AdamW); 0: none */
    float initial_accumulator_value; /* Adagrad's accumulators start here */
    bool nesterov, centered, amsgrad;
    float *slots[3]; /* state arrays, count floats each, parallel to the parameters */
    int64_t count;
    int64_t iterations; /* steps finished */
    double u_product;   /* Nadam: the product of its momentum schedule over finished steps */
};

/* Allocates zeroed state for n parameters. */
kc_status kc_optimizer_bind(kc_optimizer *opt, int64_t n);
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
void kc_optimizer_finish_step(kc_optimizer *opt);
#endif
