/* test_plot.c: the kerac program's pictures (cli/plot.c): each PNG is read back with libpng and
 * checked (size, colours, curve and text pixels where they belong); failures name the file and
 * the problem and leave no file, not even a temporary one. */
#include "testutil.h"
#include "plot.h"
#include <dirent.h>
#include <png.h>
#include <stdint.h>
#include <sys/stat.h>

/* ---- helpers -------------------------------------------------------------------------------- */

typedef struct { int w, h; uint8_t *px; } picture; /* RGB, row-major */

static picture read_png(const char *path) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_file(&im, path), "%s: %s", path, im.message);
    im.format = PNG_FORMAT_RGB;
    picture p = {(int)im.width, (int)im.height, malloc(PNG_IMAGE_SIZE(im))};
    cr_assert(png_image_finish_read(&im, NULL, p.px, 0, NULL), "%s: %s", path, im.message);
    return p;
}

static const uint8_t *at(const picture *p, int x, int y) { return p->px + 3 * ((size_t)y * p->w + x); }

typedef int (*pixel_test)(const uint8_t *c);
static int is_dark(const uint8_t *c) { return c[0] < 100 && c[1] < 100 && c[2] < 100; }
static int is_blue(const uint8_t *c) { return abs(c[0] - 31) < 40 && abs(c[1] - 119) < 40 && abs(c[2] - 180) < 40; }
static int is_orange(const uint8_t *c) { return c[0] > 200 && abs(c[1] - 127) < 45 && c[2] < 90; }
static int is_red(const uint8_t *c) { return c[0] > 170 && c[1] < 90 && c[2] < 90; }
static int is_dark_blue(const uint8_t *c) { return c[0] < 40 && c[1] < 90 && c[2] > 90 && c[2] < 140; }
static int is_white(const uint8_t *c) { return c[0] > 230 && c[1] > 230 && c[2] > 230; }

/* pixels passing test in [x0, x1) x [y0, y1) */
static long count_in(const picture *p, int x0, int y0, int x1, int y1, pixel_test test) {
    long n = 0;
    for (int y = y0 < 0 ? 0 : y0; y < y1 && y < p->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x1 && x < p->w; x++) n += test(at(p, x, y));
    return n;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int distinct_colours(const picture *p) {
    size_t n = (size_t)p->w * p->h;
    uint32_t *c = malloc(n * sizeof *c);
    for (size_t i = 0; i < n; i++) c[i] = (uint32_t)p->px[3 * i] << 16 | p->px[3 * i + 1] << 8 | p->px[3 * i + 2];
    qsort(c, n, sizeof *c, cmp_u32);
    int k = n > 0;
    for (size_t i = 1; i < n; i++) k += c[i] != c[i - 1];
    free(c);
    return k;
}

static const char *path_in(char buf[512], const char *dir, const char *name) {
    cr_assert_lt(snprintf(buf, 512, "%s/%s", dir, name), 512);
    return buf;
}

static void write_text(const char *path, const char *s) { tu_write_file(path, s, strlen(s)); }

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* the directory holds exactly `want` entries and none is a temporary file */
static void assert_dir_clean(const char *dir, int want) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        cr_assert_null(strstr(e->d_name, ".tmp"), "%s: temporary file %s left behind", dir, e->d_name);
        n++;
    }
    closedir(d);
    cr_assert_eq(n, want, "%s holds %d entries, want %d", dir, n, want);
}

/* a 20-epoch CSVLogger file: loss falls, accuracy rises, validation flattens */
static void write_history(const char *path, int epochs) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "epoch,accuracy,loss,val_accuracy,val_loss\n");
    for (int e = 0; e < epochs; e++)
        fprintf(f, "%d,%.6f,%.6f,%.6f,%.6f\n", e, 0.9 + 0.09 * (1 - exp(-e / 4.0)),
                0.3 * exp(-e / 4.0) + 0.02, 0.95 + 0.03 * (1 - exp(-e / 3.0)), 0.12 * exp(-e / 6.0) + 0.06);
    fclose(f);
}

static char err[1024];

/* the font caches go at the end of each test (Criterion runs each in its own process), so
 * LeakSanitizer under `make test-asan` sees no fontconfig pattern still held */
static void cleanup(void) { kp_plot_cleanup(); }
TestSuite(plot_history, .fini = cleanup);
TestSuite(plot_write, .fini = cleanup);
TestSuite(plot_confusion, .fini = cleanup);
TestSuite(plot_grid, .fini = cleanup);

/* ---- learning curves ------------------------------------------------------------------------ */

Test(plot_history, two_panels_with_curves_legend_and_title) {
    char *dir = tu_tmpdir();
    char csv[512], png[512];
    write_history(path_in(csv, dir, "history.csv"), 20);
    cr_assert_eq(kp_plot_history_csv(csv, path_in(png, dir, "h.png"), NULL, err, sizeof err), 0, "%s", err);
    picture p = read_png(png);
    cr_assert_eq(p.w, 2 * 520);
    cr_assert_eq(p.h, 380 + 44);
    cr_assert_gt(distinct_colours(&p), 30, "anti-aliased lines and text give many colours");
    cr_assert_gt(count_in(&p, 0, 0, p.w, 40, is_dark), 30, "the title (the file name) is drawn");
    /* loss panel on the left: training (blue) starts high, so blue sits in its upper left */
    cr_assert_gt(count_in(&p, 60, 44, 200, 44 + 100, is_blue), 20);
    cr_assert_gt(count_in(&p, 0, 44, 520, p.h, is_orange), 100, "validation, dashed, in the loss panel");
    /* accuracy panel on the right: training starts low (lower left), ends high (upper right) */
    cr_assert_gt(count_in(&p, 520 + 60, 44 + 200, 520 + 200, 44 + 330, is_blue), 20);
    cr_assert_gt(count_in(&p, 520 + 330, 44, 1040, 44 + 150, is_blue), 20);
    cr_assert_gt(count_in(&p, 520, 44, 1040, p.h, is_orange), 100);
    /* tick labels and axis labels: dark pixels left of and below each plot box */
    cr_assert_gt(count_in(&p, 0, 44, 70, p.h - 60, is_dark), 200);
    cr_assert_gt(count_in(&p, 60, p.h - 60, 500, p.h, is_dark), 200);
    free(p.px);
    assert_dir_clean(dir, 2);
}

Test(plot_history, one_epoch_and_non_finite_values) {
    char *dir = tu_tmpdir();
    char csv[512], png[512];
    /* one epoch whose validation values are not finite; a metric column with NA (CSVLogger) */
    write_text(path_in(csv, dir, "one.csv"), "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.9,0.3,nan,inf\r\n");
    cr_assert_eq(kp_plot_history_csv(csv, path_in(png, dir, "one.png"), "one epoch", err, sizeof err), 0, "%s", err);
    picture p = read_png(png);
    cr_assert_eq(p.w, 1040);
    cr_assert_gt(count_in(&p, 0, 44, 520, p.h, is_blue), 20, "the single point is drawn as a marker");
    free(p.px);
    /* NaN, inf and NA in the middle of a run: the points are skipped, the rest drawn */
    write_text(csv, "epoch,loss,val_loss,lr\n0,1.0,1.1,0.001\n1,nan,0.9,0.001\n2,-inf,NA,0.001\n3,0.5,0.7,0.0005\n"
                    "4,0.4,0.6,0.0005\n");
    cr_assert_eq(kp_plot_history_csv(csv, png, NULL, err, sizeof err), 0, "%s", err);
    p = read_png(png);
    cr_assert_eq(p.w, 1040, "loss and lr panels");
    cr_assert_gt(count_in(&p, 0, 44, 520, p.h, is_blue), 100);
    cr_assert_gt(count_in(&p, 0, 44, 520, p.h, is_orange), 100);
    free(p.px);
    assert_dir_clean(dir, 2);
}

Test(plot_history, kerac_csvlogger_without_validation) {
    char *dir = tu_tmpdir();
    char csv[512], png[512];
    /* kerac's (and Keras's) CSVLogger without validation data: the val_ columns all NA */
    write_text(path_in(csv, dir, "noval.csv"),
               "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.8,0.6,NA,NA\n1,0.85,0.5,NA,NA\n2,0.9,0.4,NA,NA\n");
    cr_assert_eq(kp_plot_history_csv(csv, path_in(png, dir, "noval.png"), NULL, err, sizeof err), 0, "%s", err);
    picture p = read_png(png);
    cr_assert_eq(p.w, 1040);
    cr_assert_gt(count_in(&p, 0, 44, p.w, p.h, is_blue), 200);
    cr_assert_eq(count_in(&p, 0, 0, p.w, p.h, is_orange), 0, "no validation curve, no legend");
    free(p.px);
    /* CSVLogger(separator=";") and a byte-order mark */
    write_text(csv, "\xef\xbb\xbf" "epoch;loss\n0;0.6\n1;0.5\n");
    cr_assert_eq(kp_plot_history_csv(csv, png, NULL, err, sizeof err), 0, "%s", err);
    p = read_png(png);
    cr_assert_eq(p.w, 520, "one panel: loss");
    free(p.px);
}

Test(plot_history, many_metrics_and_epochs) {
    char *dir = tu_tmpdir();
    char csv[512], png[512];
    FILE *f = fopen(path_in(csv, dir, "m.csv"), "w");
    fprintf(f, "epoch,accuracy,auc,loss,precision,recall,val_accuracy,val_auc,val_loss,val_precision,val_recall\n");
    for (int e = 0; e < 300; e++) {
        double a = 1 - exp(-e / 50.0);
        fprintf(f, "%d,%g,%g,%g,%g,%g,%g,%g,%g,%g,%g\n", e, a, a, 1 - a, a, a, a * .9, a * .9, 1.1 - a, a * .9, a * .9);
    }
    fclose(f);
    cr_assert_eq(kp_plot_history_csv(csv, path_in(png, dir, "m.png"), NULL, err, sizeof err), 0, "%s", err);
    picture p = read_png(png);
    cr_assert_eq(p.w, 3 * 520, "5 panels: 3 per row");
    cr_assert_eq(p.h, 2 * 380 + 44);
    for (int i = 0; i < 5; i++) {
        int x = (i % 3) * 520, y = 44 + (i / 3) * 380;
        cr_assert_gt(count_in(&p, x, y, x + 520, y + 380, is_blue), 100, "panel %d", i);
        cr_assert_gt(count_in(&p, x, y, x + 520, y + 380, is_orange), 100, "panel %d", i);
    }
    free(p.px);
}

Test(plot_history, malformed_files_leave_no_picture) {
    char *dir = tu_tmpdir();
    char csv[512], png[512];
    path_in(png, dir, "bad.png");
    path_in(csv, dir, "bad.csv");
    write_text(csv, "epoch,accuracy,loss\n0,0.5,0.7\n1,0.6,abc\n");
    cr_assert_eq(kp_plot_history_csv(csv, png, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, csv) && strstr(err, "row 2") && strstr(err, "\"loss\"") && strstr(err, "abc"), "%s", err);
    cr_assert(!exists(png));

    write_text(csv, "epoch,accuracy,loss\n0,0.5,0.7\n1,0.6\n");
    cr_assert_eq(kp_plot_history_csv(csv, png, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "row 2") && strstr(err, "2 columns"), "%s", err);

    write_text(csv, "epoch,accuracy,val_loss\n0,0.5,0.7\n");
    cr_assert_eq(kp_plot_history_csv(csv, png, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, csv) && strstr(err, "no \"loss\" column"), "%s", err);

    write_text(csv, "epoch,loss\n");
    cr_assert_eq(kp_plot_history_csv(csv, png, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "no rows"), "%s", err);

    write_text(csv, "");
    cr_assert_eq(kp_plot_history_csv(csv, png, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "empty"), "%s", err);

    char missing[512];
    cr_assert_eq(kp_plot_history_csv(path_in(missing, dir, "none.csv"), png, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, missing) && strstr(err, "cannot open"), "%s", err);
    cr_assert(!exists(png));
    assert_dir_clean(dir, 1);
}

/* ---- where the picture cannot be written ---------------------------------------------------- */

Test(plot_write, unwritable_places_leave_nothing) {
    char *dir = tu_tmpdir();
    char csv[512], sub[512];
    write_history(path_in(csv, dir, "h.csv"), 3);
    const char *nodir = "/nonexistent-kerac-dir/h.png";
    cr_assert_eq(kp_plot_history_csv(csv, nodir, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, nodir) && strstr(err, "temporary file"), "%s", err);
    /* the target is a directory: the rename fails, the temporary file goes */
    cr_assert_eq(mkdir(path_in(sub, dir, "taken.png"), 0755), 0);
    cr_assert_eq(kp_plot_history_csv(csv, sub, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, sub) && strstr(err, "renaming"), "%s", err);
    int64_t c[4] = {1, 2, 3, 4};
    cr_assert_eq(kp_plot_confusion(c, 2, NULL, NULL, sub, err, sizeof err), -1);
    uint8_t img[4] = {0};
    cr_assert_eq(kp_plot_image_grid(img, 1, 2, 2, 1, NULL, NULL, 0, NULL, sub, err, sizeof err), -1);
    assert_dir_clean(dir, 2);
}

Test(plot_write, replaces_an_existing_file) {
    char *dir = tu_tmpdir();
    char csv[512], png[512];
    write_history(path_in(csv, dir, "h.csv"), 5);
    write_text(path_in(png, dir, "h.png"), "old");
    cr_assert_eq(kp_plot_history_csv(csv, png, NULL, err, sizeof err), 0, "%s", err);
    picture p = read_png(png);
    cr_assert_eq(p.w, 1040);
    free(p.px);
    assert_dir_clean(dir, 2);
}

/* ---- confusion matrix ----------------------------------------------------------------------- */

Test(plot_confusion, heatmap_counts_and_labels) {
    char *dir = tu_tmpdir();
    char png[512];
    int64_t c[100];
    for (int t = 0; t < 10; t++)
        for (int p = 0; p < 10; p++) c[t * 10 + p] = t == p ? 950 + t : (t + p) % 7;
    cr_assert_eq(kp_plot_confusion(c, 10, NULL, "MNIST", path_in(png, dir, "c.png"), err, sizeof err), 0, "%s", err);
    picture p = read_png(png);
    cr_assert(p.w > 640 && p.w < 900 && p.h > 640 && p.h < 900, "%dx%d", p.w, p.h);
    cr_assert_gt(distinct_colours(&p), 30);
    /* ten dark 64-pixel diagonal cells, each with light text in it */
    long dark = count_in(&p, 0, 0, p.w, p.h, is_dark_blue);
    cr_assert_gt(dark, 10 * 64 * 64 * 6 / 10, "%ld dark-blue pixels", dark);
    long light_in_dark = 0;
    for (int y = 1; y < p.h - 1; y++)
        for (int x = 1; x < p.w - 1; x++)
            if (is_white(at(&p, x, y)) && is_dark_blue(at(&p, x - 1, y - 1)) && is_dark_blue(at(&p, x + 1, y + 1)))
                light_in_dark++;
    cr_assert_gt(light_in_dark, 10, "count text is light on dark cells");
    cr_assert_gt(count_in(&p, 0, 0, p.w, 60, is_dark), 50, "title and accuracy line");
    free(p.px);
    assert_dir_clean(dir, 1);
}

Test(plot_confusion, long_names_and_100_classes) {
    char *dir = tu_tmpdir();
    char png[512];
    static char longname[10][400];
    const char *names[10];
    for (int i = 0; i < 10; i++) {
        memset(longname[i], 'a' + i, 399);
        longname[i][399] = 0;
        names[i] = longname[i];
    }
    int64_t c[100] = {0};
    for (int i = 0; i < 10; i++) c[i * 10 + i] = 5;
    cr_assert_eq(kp_plot_confusion(c, 10, names, NULL, path_in(png, dir, "long.png"), err, sizeof err), 0, "%s", err);
    picture p = read_png(png);
    cr_assert(p.w < 1100 && p.h < 1100, "long names are cut: %dx%d", p.w, p.h);
    free(p.px);

    int n = 100;
    int64_t *big = calloc((size_t)n * n, sizeof *big);
    for (int i = 0; i < n; i++) big[i * n + i] = 100, big[i * n + (i + 1) % n] = 3;
    cr_assert_eq(kp_plot_confusion(big, n, NULL, NULL, path_in(png, dir, "100.png"), err, sizeof err), 0, "%s", err);
    p = read_png(png);
    cr_assert(p.w < 1000 && p.h < 1000, "%dx%d", p.w, p.h);
    cr_assert_gt(count_in(&p, 0, 0, p.w, p.h, is_dark_blue), 100 * 6 * 6 * 8 / 10, "the diagonal");
    free(p.px);
    free(big);

    /* names that are not UTF-8 (Latin-1 bytes, a cut sequence) are drawn with '?', not dropped */
    const char *bad[2] = {"caf\xe9", "\xe2\x82"};
    int64_t two[4] = {5, 1, 2, 7};
    cr_assert_eq(kp_plot_confusion(two, 2, bad, "\xff title", png, err, sizeof err), 0, "%s", err);
    p = read_png(png);
    cr_assert_gt(count_in(&p, 32, 0, 70, p.h, is_dark), 20, "the y labels are drawn");
    free(p.px);

    int64_t zero[4] = {0};
    cr_assert_eq(kp_plot_confusion(zero, 2, NULL, NULL, png, err, sizeof err), 0, "no samples: %s", err);
    assert_dir_clean(dir, 2);
}

Test(plot_confusion, invalid_input_leaves_no_file) {
    char *dir = tu_tmpdir();
    char png[512];
    path_in(png, dir, "c.png");
    int64_t c[4] = {1, -2, 3, 4};
    cr_assert_eq(kp_plot_confusion(c, 0, NULL, NULL, png, err, sizeof err), -1);
    cr_assert(strstr(err, png) && strstr(err, "n = 0"), "%s", err);
    cr_assert_eq(kp_plot_confusion(c, 2, NULL, NULL, png, err, sizeof err), -1);
    cr_assert(strstr(err, "negative"), "%s", err);
    cr_assert_eq(kp_plot_confusion(NULL, 2, NULL, NULL, png, err, sizeof err), -1);
    assert_dir_clean(dir, 0);
}

/* ---- image grid ----------------------------------------------------------------------------- */

Test(plot_grid, images_scaled_nearest_in_place) {
    char *dir = tu_tmpdir();
    char png[512];
    /* 25 28x28 images: image i is a checkerboard of 4-pixel squares, phase i % 2 */
    uint8_t *img = malloc(25 * 28 * 28);
    for (int i = 0; i < 25; i++)
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) img[i * 784 + y * 28 + x] = ((x / 4 + y / 4 + i) % 2) ? 255 : 0;
    cr_assert_eq(kp_plot_image_grid(img, 25, 28, 28, 1, NULL, NULL, 0, "digits", path_in(png, dir, "g.png"), err,
                                    sizeof err), 0, "%s", err);
    picture p = read_png(png);
    /* 5 columns of 84-pixel images (3x) in 96-pixel cells, a 44-pixel title band */
    cr_assert_eq(p.w, 5 * 96 + 20);
    cr_assert_eq(p.h, 44 + 5 * 96 + 10);
    cr_assert_gt(count_in(&p, 0, 0, p.w, 40, is_dark), 20, "the title");
    for (int i = 0; i < 25; i += 6) {
        int ox = 10 + (i % 5) * 96 + 6, oy = 44 + (i / 5) * 96 + 4;
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                uint8_t want = img[i * 784 + y * 28 + x];
                for (int k = 0; k < 9; k++) {
                    const uint8_t *c = at(&p, ox + 3 * x + k % 3, oy + 3 * y + k / 3);
                    cr_assert_eq(c[0], want, "image %d pixel (%d,%d)", i, x, y);
                }
            }
    }
    free(p.px);
    free(img);
    assert_dir_clean(dir, 1);
}

Test(plot_grid, captions_mistakes_in_red_and_rgb) {
    char *dir = tu_tmpdir();
    char png[512];
    uint8_t img[6 * 8 * 8 * 3];
    for (int i = 0; i < (int)sizeof img; i += 3) img[i] = 0, img[i + 1] = 200, img[i + 2] = 0;
    const char *caps[6] = {"5", "true 4 / pred 9", "1", "a very long caption that cannot fit in its cell at all", NULL, "7"};
    int hl[6] = {0, 1, 0, 0, 0, 0};
    cr_assert_eq(kp_plot_image_grid(img, 6, 8, 8, 3, caps, hl, 3, NULL, path_in(png, dir, "g.png"), err, sizeof err),
                 0, "%s", err);
    picture p = read_png(png);
    cr_assert_gt(count_in(&p, 0, 0, p.w, p.h, is_red), 20, "the mistake's caption and frame");
    long green = 0;
    for (size_t i = 0; i < (size_t)p.w * p.h; i++) green += p.px[3 * i] == 0 && p.px[3 * i + 1] == 200 && p.px[3 * i + 2] == 0;
    cr_assert_geq(green, 6L * 64 * 64, "six 8x8 images shown at >= 64 px");
    cr_assert_gt(count_in(&p, 0, 0, p.w, p.h, is_dark), 30, "captions");
    free(p.px);

    caps[1] = "true 4 / pred 9";
    cr_assert_eq(kp_plot_image_grid(img, 1, 8, 8, 3, caps, NULL, 1, "one", png, err, sizeof err), 0, "%s", err);
    assert_dir_clean(dir, 1);
}

Test(plot_grid, invalid_input_leaves_no_file) {
    char *dir = tu_tmpdir();
    char png[512];
    path_in(png, dir, "g.png");
    uint8_t img[16] = {0};
    cr_assert_eq(kp_plot_image_grid(img, 0, 2, 2, 1, NULL, NULL, 0, NULL, png, err, sizeof err), -1);
    cr_assert(strstr(err, png) && strstr(err, "count = 0"), "%s", err);
    cr_assert_eq(kp_plot_image_grid(img, 1, 2, 2, 2, NULL, NULL, 0, NULL, png, err, sizeof err), -1);
    cr_assert(strstr(err, "channels"), "%s", err);
    cr_assert_eq(kp_plot_image_grid(img, 1, 0, 2, 1, NULL, NULL, 0, NULL, png, err, sizeof err), -1);
    cr_assert_eq(kp_plot_image_grid(img, 1, 2, 2, 1, NULL, NULL, -1, NULL, png, err, sizeof err), -1);
    /* a grid too large to draw is refused, not attempted */
    cr_assert_eq(kp_plot_image_grid(img, 1000000, 2, 2, 1, NULL, NULL, 1, NULL, png, err, sizeof err), -1);
    cr_assert(strstr(err, "too large"), "%s", err);
    assert_dir_clean(dir, 0);
}
