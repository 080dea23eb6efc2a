/* cli/plot.h: kerac's pictures, PNG files written atomically. Each returns 0, or -1 with a message in err (naming the file and what is wrong) and no file written. */
#ifndef KERAC_CLI_PLOT_H
#define KERAC_CLI_PLOT_H
#include <stddef.h>
#include <stdint.h>
/* learning curves from a CSVLogger file (Keras's CSVLogger format: header "epoch,accuracy,loss,val_accuracy,val_loss" etc., one row per epoch; kerac writes the same): one panel per metric (loss first, then each metric in header order), training solid and validation (val_ prefix) dashed with a legend, x axis "epoch" (integer ticks, epochs shown 1-based as Keras's progress bar counts them), y axis the metric name; title optional (NULL = file name) */
int kp_plot_history_csv(const char *csv_path, const char *out_png, const char *title, char *err, size_t errlen);
/* the same from arrays, as kc_history holds them: keys[k] ("loss", "accuracy", "val_loss", ...)
 * with values[k][0..epochs), the first being epoch first_epoch (0-based, as CSVLogger counts) */
int kp_plot_history(const char *const *keys, const double *const *values, int n_keys, int epochs, int first_epoch, const char *title, const char *out_png, char *err, size_t errlen);
/* confusion matrix: counts[t * n + p] for true class t, predicted p; class_names may be NULL (then 0..n-1); a heatmap with the count written in each cell (light text on dark cells), axes "Predicted label" / "True label", title, and overall accuracy in the title or subtitle */
int kp_plot_confusion(const int64_t *counts, int n, const char *const *class_names, const char *title, const char *out_png, char *err, size_t errlen);
/* a grid of images (uint8, HWC, channels 1 or 3) with a caption under or above each (e.g. "5" or "true 4 / pred 9"), cols per row (0 = choose), images scaled up with nearest-neighbour to at least ~56 px; captions flagged in highlight[i] != 0 (may be NULL) drawn in red (mistakes); like the post's picture of MNIST digits */
int kp_plot_image_grid(const uint8_t *images, int count, int height, int width, int channels, const char *const *captions, const int *highlight, int cols, const char *title, const char *out_png, char *err, size_t errlen);
/* frees the font caches cairo and fontconfig keep between pictures (for leak checkers: call once,
   after the last picture, e.g. at the program's exit; pictures can still be drawn afterwards) */
void kp_plot_cleanup(void);
#endif
