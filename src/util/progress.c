/* progress.c: the Keras 2 progress bar and epoch lines, written to the stream fit was given,
 * with the values in the order fit gives them (Keras 3's: its logs' keys sorted).
 *   469/469 [==============================] - 3s 6ms/step - accuracy: 0.9240 - loss: 0.2456 */
#include "progress.h"
#include <math.h>
#include <string.h>
#include <unistd.h>

void kc_progress_init(kc_progress *p, FILE *out, int verbose) {
    p->out = out ? out : stdout;
    if (verbose < 0) p->mode = 0;
    else if (verbose == 2) p->mode = 2;
    else p->mode = isatty(fileno(p->out)) ? 1 : 2;
}

void kc_progress_epoch(kc_progress *p, int epoch, int epochs, int total_steps) {
    p->total = total_steps;
    p->width = snprintf(NULL, 0, "%d", total_steps);
    p->start = kc_now();
    p->last_draw = 0.0;
    if (p->mode) fprintf(p->out, "Epoch %d/%d\n", epoch, epochs);
}

/* Keras formats a value with 4 decimals, or in exponent form when it is tiny */
static void print_value(FILE *out, const char *name, double v) {
    if (fabs(v) > 1e-3 || v == 0.0 || !isfinite(v)) fprintf(out, " - %s: %.4f", name, v);
    else fprintf(out, " - %s: %.4e", name, v);
}

static void print_duration(FILE *out, double seconds) {
    if (seconds >= 3600) fprintf(out, "%d:%02d:%02d", (int)seconds / 3600, (int)seconds % 3600 / 60,
                                 (int)seconds % 60);
    else if (seconds >= 60) fprintf(out, "%d:%02d", (int)seconds / 60, (int)seconds % 60);
    else fprintf(out, "%ds", (int)seconds);
}

static void print_bar(kc_progress *p, int step) {
    enum { BAR = 30 };
    int filled = (int)((double)BAR * step / p->total);
    fprintf(p->out, "%*d/%d [", p->width, step, p->total);
    for (int i = 0; i < BAR; i++)
        fputc(i < filled - 1 || (i == filled - 1 && step == p->total) ? '=' : i == filled - 1 ? '>' : '.',
              p->out);
    fputc(']', p->out);
}

static void print_kv(kc_progress *p, int n, const char *const *keys, const double *values) {
    for (int i = 0; i < n; i++)
        if (!isnan(values[i]) || !strcmp(keys[i], "loss")) print_value(p->out, keys[i], values[i]);
}

void kc_progress_step(kc_progress *p, int step, double loss, double accuracy) {
    const char *keys[] = {"loss", "accuracy"};
    kc_progress_step_kv(p, step, 2, keys, (double[]){loss, accuracy});
}

void kc_progress_end(kc_progress *p, double loss, double accuracy, double val_loss,
                     double val_accuracy) {
    const char *keys[] = {"loss", "accuracy", "val_loss", "val_accuracy"};
    kc_progress_end_kv(p, 4, keys, (double[]){loss, accuracy, val_loss, val_accuracy});
}

void kc_progress_step_kv(kc_progress *p, int step, int n, const char *const *keys,
                         const double *values) {
    if (p->mode != 1 || step >= p->total) return;
    double now = kc_now();
    if (now - p->last_draw < 0.05 && step > 1) return;
    p->last_draw = now;
    fputc('\r', p->out);
    print_bar(p, step);
    fputs(" - ETA: ", p->out);
    print_duration(p->out, (now - p->start) / step * (p->total - step));
    print_kv(p, n, keys, values);
    fputs("\033[K", p->out); /* clear what a longer previous line left */
    fflush(p->out);
}

static void print_per_step(FILE *out, double seconds_per_step) {
    if (seconds_per_step >= 1) fprintf(out, "%.0fs/step", seconds_per_step);
    else if (seconds_per_step >= 1e-3) fprintf(out, "%.0fms/step", seconds_per_step * 1e3);
    else fprintf(out, "%.0fus/step", seconds_per_step * 1e6);
}

void kc_progress_end_kv(kc_progress *p, int n, const char *const *keys, const double *values) {
    if (!p->mode) return;
    double elapsed = kc_now() - p->start;
    if (p->mode == 1) {
        fputc('\r', p->out);
        print_bar(p, p->total);
        fprintf(p->out, " - %.0fs ", elapsed);
        print_per_step(p->out, elapsed / p->total);
    } else {
        fprintf(p->out, "%d/%d - %.0fs - ", p->total, p->total, elapsed);
        print_per_step(p->out, elapsed / p->total);
    }
    print_kv(p, n, keys, values);
    if (p->mode == 1) fputs("\033[K", p->out);
    fputc('\n', p->out);
    fflush(p->out);
}
