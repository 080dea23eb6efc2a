/* initializers.h: Keras's initializers (keras.initializers) and weight / activity regularizers
 * (keras.regularizers) on plain float arrays, and the per-layer helpers the model calls.
 *
 * Initializers draw from kerac's xoshiro256** stream (the model's, or one seeded with the
 * initializer's own seed): the distributions and their parameters are Keras 3's, the bits are
 * not (JAX's threefry stream cannot be reproduced), so statistics match Keras, values do not. */
#ifndef KERAC_INITIALIZERS_H
#define KERAC_INITIALIZERS_H
#include "internal.h"

/* ---- initializers ---- */

/* The kind init stands for: default_kind where init->kind is KC_INIT_DEFAULT */
kc_init_kind kc_init_resolve(const kc_initializer *init, kc_init_kind default_kind);
/* Keras's class name of a kind ("GlorotUniform"); NULL for KC_INIT_DEFAULT or out of range */
const char *kc_init_class_name(kc_init_kind kind);

/* Checks that init (default_kind where it is KC_INIT_DEFAULT) is valid and can fill a weight of
 * Keras shape shape[rank]: known kind, mode and distribution, finite parameters, a positive
 * scale, Identity 2-D only, Orthogonal at least 2-D. The message starts with where ("layer
 * dense (Dense): kernel_initializer"). */
kc_status kc_init_check(const kc_initializer *init, kc_init_kind default_kind, int rank,
                        const int64_t *shape, const char *where);

/* Fills w (the weight of Keras shape shape[rank], row-major: Dense (in, units), Conv2D (kh,
 * kw, in, filters), a bias (units)) as Keras's initializer would: fans by Keras's compute_fans
 * (rank 1: fan_in = fan_out = shape[0]; rank 2: shape[0], shape[1]; higher: the receptive
 * field size prod(shape[:-2]) times shape[-2] and shape[-1]). Random kinds draw from rng, or,
 * when init->has_seed, from a fresh stream seeded with init->seed (the same values on every
 * call, as Keras's integer seeds). Call kc_init_check first; a kind it would refuse fills
 * NaN. Returns KC_ENOMEM (message set, w filled with NaN) only when Orthogonal's work matrix
 * cannot be allocated. */
kc_status kc_init_fill(const kc_initializer *init, kc_init_kind default_kind, float *w, int rank,
                       const int64_t *shape, kc_rng *rng);

/* ---- regularizers ---- */

/* l1 or l2 set */
int kc_regularizer_active(const kc_regularizer *r);
/* l1 and l2 finite and >= 0 (Keras's validate_float_arg); where starts the message */
kc_status kc_regularizer_check(const kc_regularizer *r, const char *where);
/* Keras's penalty l1 * sum|w| + l2 * sum w^2, the sums in double in index order; 0 for NULL
 * or an inactive r */
double kc_regularizer_penalty(const kc_regularizer *r, const float *w, int64_t n);
/* g += l1 * sign(w) + 2 * l2 * w, the penalty's gradient (sign(0) = 0, as JAX's) */
void kc_regularizer_grad_add(const kc_regularizer *r, const float *w, float *g, int64_t n);
/* g += scale * (l1 * sign(w) + 2 * l2 * w) */
void kc_regularizer_grad_add_scaled(const kc_regularizer *r, const float *w, float *g, int64_t n,
                                    float scale);

/* ---- per layer (Dense, Conv2D; any layer whose regularizer fields are set) ----
 *
 * How the pieces add up to Keras's training loss (trainer.compute_loss: the compiled loss,
 * already the mean over the batch, plus the sum of the model's losses):
 *   loss = mean loss + sum over layers of kc_layer_weight_penalty(layer)
 *                    + sum over layers of kc_layer_activity_penalty(layer, output, batch)
 * Gradients: a layer's backward adds its weight regularizers' gradients itself (Dense steps its
 * kernel inside the product, so only the layer can); the model adds each activity
 * regularizer's gradient to the gradient w.r.t. that layer's output (post-activation) with
 * kc_layer_activity_grad before calling the layer's backward. */

/* kernel_reg(kernel) + bias_reg(bias) (no bias: kernel only) with the weights as they are now;
 * 0 for a frozen layer (Keras takes regularization losses of trainable weights only) */
double kc_layer_weight_penalty(const kc_layer *l);
/* activity_reg(out) / batch for out (batch, out_size): Keras 3 and tf.keras 2 divide the
 * activity penalty by the batch size */
double kc_layer_activity_penalty(const kc_layer *l, const float *out, int batch);
/* dout (batch, out_size), the gradient w.r.t. the layer's output, += d/d out of the above */
void kc_layer_activity_grad(const kc_layer *l, const float *out, float *dout, int batch);
/* build's check of a Dense's or Conv2D's options: kernel_init for the kernel of Keras shape
 * kshape[krank], bias_init for the bias (units) unless no_bias, the three regularizers */
kc_status kc_layer_check_init_reg(const kc_layer *l, int krank, const int64_t *kshape);
/* init: the kernel from kernel_init (default glorot_uniform), then the bias from bias_init
 * (default zeros), both from rng in that order. With no_bias, bias and dbias become NULL (the
 * model binds them past the kernel, where the next layer's weights lie). */
void kc_layer_init_weights(kc_layer *l, int krank, const int64_t *kshape, kc_rng *rng);
/* dkernel += kernel_reg'(kernel), dbias += bias_reg'(bias); nothing for a frozen layer. For
 * layers whose backward writes plain gradients (Conv2D); Dense adds it per block itself. */
void kc_layer_weight_reg_grad(kc_layer *l);
#endif
