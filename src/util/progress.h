/* progress.h: Keras-style training output: "Epoch 1/20", an in-place progress bar on a
 * terminal, or one line per epoch. */
#ifndef KERAC_PROGRESS_H
#define KERAC_PROGRESS_H
#include "../internal.h"

typedef struct {
    FILE *out;
    int mode;  /* 0 silent, 1 bar updated in place, 2 one line per epoch */
    int total; /* steps in the epoch */
    int width; /* digits of total */
    double start, last_draw;
} kc_progress;

/* verbose as in kc_fit_opts: 1 picks the bar only when out is a terminal */
void kc_progress_init(kc_progress *p, FILE *out, int verbose);
void kc_progress_epoch(kc_progress *p, int epoch, int epochs, int total_steps);
/* running means so far; redraws at most every 50 ms */
void kc_progress_step(kc_progress *p, int step, double loss, double accuracy);
/* the epoch's last line; NaN values are left out */
void kc_progress_end(kc_progress *p, double loss, double accuracy, double val_loss,
                     double val_accuracy);
/* the same with every log key (Keras's names and order); NaN values are left out */
void kc_progress_step_kv(kc_progress *p, int step, int n, const char *const *keys,
                         const double *values);
void kc_progress_end_kv(kc_progress *p, int n, const char *const *keys, const double *values);
#endif
