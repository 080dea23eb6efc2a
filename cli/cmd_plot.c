/* cmd_plot.c: the pictures: kerac plot HISTORY.csv -o curves.png, kerac confusion MODEL --data
 * SPEC -o cm.png, kerac show SPEC -o grid.png [--model MODEL [--misclassified]] (cli/plot.c
 * draws them) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "plot.h"

static const char plot_help[] =
    "usage: kerac plot HISTORY.csv -o FILE.png [--title TEXT]\n"
    "Draws the learning curves of a CSVLogger file (kerac train --csv-log, or Keras's\n"
    "CSVLogger): loss and each metric per epoch, training and validation.\n";

static const char confusion_help[] =
    "usage: kerac confusion MODEL --data SPEC -o FILE.png [--limit N] [--batch-size N]\n"
    "                       [--title TEXT]\n"
    "Draws the confusion matrix of MODEL's predictions on SPEC (true class against predicted\n"
    "class, with the counts and the accuracy).\n";

static const char show_help[] =
    "usage: kerac show SPEC -o FILE.png [--count N] [--cols N] [--title TEXT]\n"
    "                  [--model MODEL [--misclassified]]\n"
    "Draws a grid of SPEC's first --count samples (default 25) with their labels, like the\n"
    "post's picture of MNIST digits. With --model: each caption is the true and the predicted\n"
    "class, mistakes in red; --misclassified shows only the model's mistakes.\n";

/* the options the three share; argv[0] is the subcommand */
typedef struct {
    const char *positional, *out, *title, *data, *model;
    long limit, batch_size, count, cols;
    int misclassified;
} plot_args;

static int parse(const char *cmd, const char *help, int argc, char **argv, plot_args *a,
                 const char *allowed) {
    memset(a, 0, sizeof *a);
    a->batch_size = 128;
    a->count = 25;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        if (cli_is_help(o)) return fputs(help, stdout), -1;
        if (o[0] != '-' || !o[1]) {
            if (a->positional) return cli_usage_error(cmd, "unexpected argument '%s'", o);
            a->positional = o;
            continue;
        }
        /* allowed: the options of this subcommand, as " --x --y " */
        char key[64];
        snprintf(key, sizeof key, " %s ", o);
        if (!strstr(allowed, key)) return cli_usage_error(cmd, "unknown option '%s'", o);
        if (!strcmp(o, "--misclassified")) {
            a->misclassified = 1;
            continue;
        }
        if (!(v = cli_value(cmd, argc, argv, &i))) return CLI_USAGE;
        int bad = 0;
        if (!strcmp(o, "-o") || !strcmp(o, "--output")) a->out = v;
        else if (!strcmp(o, "--title")) a->title = v;
        else if (!strcmp(o, "--data")) a->data = v;
        else if (!strcmp(o, "--model")) a->model = v;
        else if (!strcmp(o, "--limit")) bad = cli_long(cmd, o, v, 1, 0x7fffffffL, &a->limit);
        else if (!strcmp(o, "--batch-size")) bad = cli_long(cmd, o, v, 1, 1 << 24, &a->batch_size);
        else if (!strcmp(o, "--count")) bad = cli_long(cmd, o, v, 1, 10000, &a->count);
        else if (!strcmp(o, "--cols")) bad = cli_long(cmd, o, v, 1, 100, &a->cols);
        if (bad) return CLI_USAGE;
    }
    if (!a->out) return cli_usage_error(cmd, "missing -o FILE.png");
    if (!cli_ends_with(a->out, ".png"))
        return cli_usage_error(cmd, "-o %s: the picture is a PNG file (FILE.png)", a->out);
    return 0;
}

int cmd_plot(int argc, char **argv) {
    const char *cmd = "plot";
    plot_args a;
    int rc = parse(cmd, plot_help, argc, argv, &a, " -o --output --title ");
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!a.positional) return cli_usage_error(cmd, "missing HISTORY.csv");
    char err[1024];
    if (kp_plot_history_csv(a.positional, a.out, a.title, err, sizeof err))
        return cli_fail(cmd, "%s", err);
    printf("plotted %s\n", a.out);
    return CLI_OK;
}

/* the class each row of p (n rows of k) predicts: its largest value (one unit: p >= 0.5) */
static int argmax_row(const float *p, int k) {
    if (k == 1) return p[0] >= 0.5f;
    int best = 0;
    for (int j = 1; j < k; j++)
        if (p[j] > p[best]) best = j;
    return best;
}

/* the true class of sample i: a class index, or the largest of a one-hot / float row */
static int true_class(const kc_dataset *ds, int64_t i) {
    if (ds->y_shape.rank == 0) {
        if (ds->y_dtype == KC_UINT8) return ((const uint8_t *)ds->y)[i];
        if (ds->y_dtype == KC_INT32) return ((const int32_t *)ds->y)[i];
        return (int)((const float *)ds->y)[i];
    }
    int64_t k = kc_shape_size(ds->y_shape);
    return argmax_row((const float *)ds->y + i * k, (int)k);
}

/* predictions of m on ds (fitted to m): *out (count x units floats, malloc'd) */
static int predict_all(const char *cmd, kc_model *m, const kc_dataset *ds, float **out,
                       int *units) {
    kc_shape os = kc_output_shape(m);
    *units = (int)kc_shape_size(os);
    if (*units <= 0) return cli_fail(cmd, "the model's output has no size");
    *out = malloc(sizeof(float) * (size_t)ds->count * (size_t)*units);
    if (!*out) return cli_fail(cmd, "out of memory for %lld predictions", (long long)ds->count);
    kc_array x = {.shape = ds->x_shape, .dtype = ds->x_dtype, .data = ds->x, .scale = ds->x_scale};
    float *outs[1] = {*out};
    if (kc_predict_ex(m, &x, ds->count, outs, NULL) != KC_OK) {
        free(*out);
        *out = NULL;
        return cli_kc_fail(cmd);
    }
    return 0;
}

/* loads MODEL and SPEC fitted to it (compiled if it was not, for the labels' encoding) */
static int model_and_data(const char *cmd, const plot_args *a, kc_model **m, kc_dataset *ds) {
    const cli_builtin *builtin;
    char err[1024];
    *m = NULL;
    memset(ds, 0, sizeof *ds);
    if (cli_load_model(cmd, a->model, m, &builtin)) return CLI_FAIL;
    if (cli_read_data(a->data, *m, ds, err, sizeof err)) {
        cli_fail(cmd, "--data: %s", err);
        goto fail;
    }
    cli_data_limit(ds, a->limit);
    if (!cli_model_compiled(*m) && cli_compile(cmd, *m, builtin, NULL, NULL, 0, ds)) goto fail;
    if (cli_data_fit_model(*m, ds, err, sizeof err)) {
        cli_fail(cmd, "--data %s: %s", a->data, err);
        goto fail;
    }
    return 0;
fail:
    kc_dataset_free(ds);
    kc_model_free(*m);
    *m = NULL;
    return CLI_FAIL;
}

int cmd_confusion(int argc, char **argv) {
    const char *cmd = "confusion";
    plot_args a;
    int rc = parse(cmd, confusion_help, argc, argv, &a,
                   " -o --output --title --data --limit --batch-size ");
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!a.positional) return cli_usage_error(cmd, "missing MODEL");
    if (!a.data) return cli_usage_error(cmd, "missing --data SPEC");
    a.model = a.positional;
    kc_model *m;
    kc_dataset ds;
    if (model_and_data(cmd, &a, &m, &ds)) return CLI_FAIL;
    rc = CLI_FAIL;
    float *pred = NULL;
    int64_t *counts = NULL;
    int units;
    if (!ds.y) {
        cli_fail(cmd, "--data %s has no labels", a.data);
        goto done;
    }
    if (predict_all(cmd, m, &ds, &pred, &units)) goto done;
    int n = units == 1 ? 2 : units;
    counts = calloc((size_t)n * n, sizeof *counts);
    if (!counts) {
        cli_fail(cmd, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < ds.count; i++) {
        int t = true_class(&ds, i), p = argmax_row(pred + i * units, units);
        if (t < 0 || t >= n) {
            cli_fail(cmd, "sample %lld has label %d, outside the model's %d classes",
                     (long long)i, t, n);
            goto done;
        }
        counts[(int64_t)t * n + p]++;
    }
    char title[512], err[1024];
    snprintf(title, sizeof title, "%s", a.title ? a.title : a.data);
    if (kp_plot_confusion(counts, n, NULL, title, a.out, err, sizeof err)) {
        cli_fail(cmd, "%s", err);
        goto done;
    }
    printf("plotted %s (%lld samples, %d classes)\n", a.out, (long long)ds.count, n);
    rc = CLI_OK;
done:
    free(pred);
    free(counts);
    kc_dataset_free(&ds);
    kc_model_free(m);
    return rc;
}

/* sample i of ds as bytes (HWC): uint8 data as it is, floats scaled to 0..255 by the range of
 * the shown samples (lo, hi) */
static void sample_bytes(const kc_dataset *ds, int64_t i, int64_t size, float lo, float hi,
                         uint8_t *out) {
    if (ds->x_dtype == KC_UINT8) {
        memcpy(out, (const uint8_t *)ds->x + i * size, (size_t)size);
        return;
    }
    const float *x = (const float *)ds->x + i * size;
    float span = hi > lo ? hi - lo : 1.0f;
    for (int64_t j = 0; j < size; j++) {
        float v = (x[j] - lo) / span * 255.0f + 0.5f;
        out[j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* a sample's picture: (h, w, c) from its shape: (h, w), (h, w, 1|3), or a flat square */
static int image_geometry(kc_shape s, int *h, int *w, int *c) {
    if (s.rank == 2) *h = s.dims[0], *w = s.dims[1], *c = 1;
    else if (s.rank == 3 && (s.dims[2] == 1 || s.dims[2] == 3))
        *h = s.dims[0], *w = s.dims[1], *c = s.dims[2];
    else if (s.rank == 1) {
        int side = 1;
        while ((int64_t)(side + 1) * (side + 1) <= s.dims[0]) side++;
        if ((int64_t)side * side != s.dims[0]) return -1;
        *h = *w = side, *c = 1;
    } else
        return -1;
    return 0;
}

int cmd_show(int argc, char **argv) {
    const char *cmd = "show";
    plot_args a;
    int rc = parse(cmd, show_help, argc, argv, &a,
                   " -o --output --title --model --misclassified --count --cols --limit "
                   "--batch-size ");
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!a.positional) return cli_usage_error(cmd, "missing SPEC");
    if (a.misclassified && !a.model)
        return cli_usage_error(cmd, "--misclassified needs --model MODEL");
    a.data = a.positional;
    kc_model *m = NULL;
    kc_dataset ds;
    char err[1024];
    if (a.model) {
        if (model_and_data(cmd, &a, &m, &ds)) return CLI_FAIL;
    } else {
        if (cli_read_data(a.data, NULL, &ds, err, sizeof err)) return cli_fail(cmd, "%s", err);
        cli_data_limit(&ds, a.limit);
    }
    rc = CLI_FAIL;
    float *pred = NULL;
    uint8_t *pixels = NULL;
    char **captions = NULL;
    int *flags = NULL, units = 0, h, w, c;
    int64_t *pick = NULL, n = 0;
    if (image_geometry(ds.x_shape, &h, &w, &c)) {
        char b[64];
        cli_fail(cmd, "%s: samples of shape %s are not pictures (height, width[, 1 or 3])",
                 a.data, kc_shape_str(ds.x_shape, b, sizeof b));
        goto done;
    }
    if (m && predict_all(cmd, m, &ds, &pred, &units)) goto done;
    pick = malloc(sizeof *pick * (size_t)a.count);
    if (!pick) goto oom;
    for (int64_t i = 0; i < ds.count && n < a.count; i++) {
        if (a.misclassified && ds.y && argmax_row(pred + i * units, units) == true_class(&ds, i))
            continue;
        pick[n++] = i;
    }
    if (n == 0) {
        cli_fail(cmd, "%s: %s", a.data, a.misclassified ? "the model makes no mistake on it"
                                                        : "no samples");
        goto done;
    }
    const int64_t size = (int64_t)h * w * c;
    float lo = 0, hi = 0;
    if (ds.x_dtype == KC_FLOAT32) { /* the shown samples' range */
        lo = hi = ((const float *)ds.x)[pick[0] * size];
        for (int64_t k = 0; k < n; k++)
            for (int64_t j = 0; j < size; j++) {
                float v = ((const float *)ds.x)[pick[k] * size + j];
                lo = v < lo ? v : lo, hi = v > hi ? v : hi;
            }
    } else if (ds.x_dtype != KC_UINT8) {
        cli_fail(cmd, "%s: samples of integers are not pictures", a.data);
        goto done;
    }
    const size_t shown = (size_t)(n > 0 ? n : 1); /* n >= 1 here */
    pixels = malloc(shown * (size_t)size);
    captions = calloc(shown, sizeof *captions);
    flags = calloc(shown, sizeof *flags);
    if (!pixels || !captions || !flags) goto oom;
    for (int64_t k = 0; k < n; k++) {
        sample_bytes(&ds, pick[k], size, lo, hi, pixels + k * size);
        if (!(captions[k] = malloc(48))) goto oom;
        int t = ds.y ? true_class(&ds, pick[k]) : -1;
        if (m) {
            int p = argmax_row(pred + pick[k] * units, units);
            if (t >= 0) snprintf(captions[k], 48, "true %d / pred %d", t, p);
            else snprintf(captions[k], 48, "pred %d", p);
            flags[k] = t >= 0 && p != t;
        } else if (t >= 0) {
            snprintf(captions[k], 48, "%d", t);
        } else {
            snprintf(captions[k], 48, "#%lld", (long long)pick[k]);
        }
    }
    char title[512];
    if (a.title) snprintf(title, sizeof title, "%s", a.title);
    else if (a.misclassified) snprintf(title, sizeof title, "%s: mistakes", a.data);
    else snprintf(title, sizeof title, "%s", a.data);
    if (kp_plot_image_grid(pixels, (int)n, h, w, c, (const char *const *)captions, flags,
                           (int)a.cols, title, a.out, err, sizeof err)) {
        cli_fail(cmd, "%s", err);
        goto done;
    }
    printf("plotted %s (%lld samples)\n", a.out, (long long)n);
    rc = CLI_OK;
    goto done;
oom:
    cli_fail(cmd, "out of memory");
done:
    for (int64_t k = 0; captions && k < n; k++) free(captions[k]);
    free(captions);
    free(flags);
    free(pixels);
    free(pick);
    free(pred);
    kc_dataset_free(&ds);
    kc_model_free(m);
    return rc;
}
