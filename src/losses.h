/* losses.h: loss values, gradients and the accuracy metric on one batch. */
#ifndef KERAC_LOSSES_H
#define KERAC_LOSSES_H
#include "internal.h"

/* Does this loss fold the last activation into its gradient exactly? */
int kc_loss_fuses(kc_loss loss, kc_act last_act);
/* Mean loss over the batch. pred (batch, cols); y (batch, cols), or (batch) class indices for
 * the sparse loss. grad (optional, batch x cols): d(mean loss)/d pred, or w.r.t. the
 * pre-activation when fused. */
double kc_loss_compute(kc_loss loss, const float *pred, const float *y, int batch, int cols,
                       float *grad, int fused);
/* Number of correct samples in the batch (fractional for multi-output binary accuracy). */
double kc_accuracy_sum(kc_loss loss, const float *pred, const float *y, int batch, int cols);
#endif
