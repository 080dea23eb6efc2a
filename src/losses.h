/* losses.h: loss values and gradients on one batch (and a row's value, for the metrics). */
#ifndef KERAC_LOSSES_H
#define KERAC_LOSSES_H
#include "internal.h"

/* options a loss's Keras class takes (kc_loss_info.opts) */
enum {
    KC_LOSS_OPT_LOGITS = 1,    /* from_logits */
    KC_LOSS_OPT_SMOOTHING = 2, /* label_smoothing */
    KC_LOSS_OPT_IGNORE = 4,    /* ignore_class */
    KC_LOSS_OPT_FOCAL = 8,     /* gamma, alpha */
    KC_LOSS_OPT_BALANCING = 16,/* apply_class_balancing */
    KC_LOSS_OPT_DELTA = 32,    /* delta */
    KC_LOSS_OPT_AXIS = 64      /* axis (written in the class config) */
};
typedef struct {
    const char *name;        /* the function's name (kc_loss_name, compile_config's string) */
    const char *class_name;  /* Keras's class */
    const char *config_name; /* the class's default "name" in its config */
    unsigned opts;           /* KC_LOSS_OPT_* */
} kc_loss_info;
const kc_loss_info *kc_loss_info_of(kc_loss loss); /* NULL when not a loss */
/* a function name, class name or Keras alias ("mse", "kld", ...); KC_LOSS_NONE if unknown */
kc_loss kc_loss_find(const char *name);
/* Checks spec (where: the message's prefix) and writes it with the defaults filled in */
kc_status kc_loss_spec_resolve(const kc_loss_spec *spec, kc_loss_spec *out, const char *where);
/* Is it the loss with every option at its default (reduction sum_over_batch_size or mean)? */
int kc_loss_spec_plain(const kc_loss_spec *s);

/* Does this loss fold the last activation into its gradient exactly? */
int kc_loss_fuses(const kc_loss_spec *s, kc_act last_act);
/* The reduced loss over the batch. pred (batch, cols); y (batch, cols), or (batch) class
 * indices for the sparse loss. grad (optional, batch x cols): d(loss)/d pred, or w.r.t. the
 * pre-activation when fused. NaN when out of memory (only for cols > 256). */
double kc_loss_compute(const kc_loss_spec *s, const float *pred, const float *y, int batch,
                       int cols, float *grad, int fused);
/* The same with weights[batch] (sample weights, one per row; NULL: kc_loss_compute): the
 * weighted sum over the rows divided by what the unweighted loss divides by (Keras) */
double kc_loss_compute_weighted(const kc_loss_spec *s, const float *pred, const float *y,
                                int batch, int cols, float *grad, int fused,
                                const float *weights);
/* One row's loss value (no reduction), for the metrics that are losses: y the row of targets,
 * or for the sparse loss a pointer to its class index; hinge_binary: the batch's labels are
 * all 0 or 1 (kc_loss_hinge_binary: the hinge losses read them as -1 and 1); scratch: 2 * cols
 * floats. The spec must be resolved. */
double kc_loss_row_value(const kc_loss_spec *s, const float *p, const float *y, int cols,
                         int hinge_binary, float *scratch);
int kc_loss_hinge_binary(const float *y, int64_t n);
/* The same with a mask (one byte per row, NULL: none): masked rows weigh 0 and the mean is
 * over the rows left, as Keras 3's apply_mask (no row left: 0); weights may be NULL then.
 * counted_rows (optional) receives the rows counted (not masked, not ignore_class). */
double kc_loss_compute_masked(const kc_loss_spec *s, const float *pred, const float *y,
                              int batch, int cols, float *grad, int fused,
                              const float *weights, const uint8_t *mask, double *counted_rows);
/* The plain losses (kc_loss_spec_plain: every option at its default, no weights or masks) over
 * batch rows of a larger batch of den rows: value and gradient divided by den (kc_fit's row
 * groups, src/dist/; the same bits as kc_loss_compute when den == batch) */
double kc_loss_compute_rows(const kc_loss_spec *s, const float *pred, const float *y, int batch,
                            int cols, float *grad, int fused, int64_t den);
#endif
