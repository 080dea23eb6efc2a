/* cmd_predict.c: kerac predict MODEL INPUT... [--top K] [--output FILE] [--invert] */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static const char help[] =
    "usage: kerac predict MODEL INPUT... [options]\n"
    "Prints one line per input sample: its name, the predicted class and its probability.\n"
    "INPUT: a .npy array (one sample per row: (N, 784), (N, 28, 28), ...; uint8 is scaled by\n"
    "1/255), a .csv file (one sample per line, numbers separated by commas; a first line\n"
    "that is not numbers is a header), or an image (.png, .jpg, .pgm, .ppm, .bmp: converted\n"
    "to the model's input, grayscale or RGB, resized as Keras's image_dataset_from_directory,\n"
    "scaled by 1/255). Samples are reshaped to the model's input shape.\n"
    "  --top K          the K most probable classes, as class:probability pairs\n"
    "  --output FILE    also write every probability: FILE.npy (float32, (N, classes)) or\n"
    "                   FILE.csv (a row per sample)\n"
    "  --invert         dark digits on light paper, as photos have them, into MNIST's light\n"
    "                   on dark: bytes v become 255 - v, values in 0..1 become 1 - v\n"
    "  --scale F        multiply the inputs by F (default 1/255 for uint8, else 1; 1 for a\n"
    "                   model whose first layer is a Rescaling or a Normalization)\n";

/* The samples of one INPUT file: n rows of `size` floats (unscaled), named name[i]. */
typedef struct {
    int64_t n, size;
    float *x;
    int bytes; /* the file held uint8 */
} samples;

static int fail_input(const char *path, char *err, size_t errlen, const char *what) {
    snprintf(err, errlen, "%s: %s", path, what);
    return -1;
}

/* numpy .npy through the library's kc_npy_load (u1, i4, i8, f4, f8; C order): rank 1 is one
 * sample, else shape[0] samples */
static int read_npy(const char *path, samples *s, char *err, size_t errlen) {
    kc_npy a;
    if (kc_npy_load(path, &a) != KC_OK) {
        snprintf(err, errlen, "%s", kc_last_error());
        return -1;
    }
    s->n = a.rank > 1 ? a.shape[0] : 1;
    s->size = s->n ? a.size / s->n : 0;
    s->bytes = !strcmp(a.dtype, "u1");
    s->x = malloc(sizeof(float) * (size_t)(a.size ? a.size : 1));
    if (!s->x) {
        kc_npy_free(&a);
        return fail_input(path, err, errlen, "out of memory");
    }
    for (int64_t i = 0; i < a.size; i++)
        s->x[i] = s->bytes                     ? (float)((const uint8_t *)a.data)[i]
                  : !strcmp(a.dtype, "f4")     ? ((const float *)a.data)[i]
                  : !strcmp(a.dtype, "f8")     ? (float)((const double *)a.data)[i]
                  : !strcmp(a.dtype, "i4")     ? (float)((const int32_t *)a.data)[i]
                                               : (float)((const int64_t *)a.data)[i];
    kc_npy_free(&a);
    if (s->n == 0) {
        free(s->x);
        s->x = NULL;
        return fail_input(path, err, errlen, "no samples");
    }
    return 0;
}

/* CSV: one sample a line, numbers separated by commas (or spaces, semicolons, tabs) */
static int read_csv(const char *path, samples *s, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) return snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno)), -1;
    char *line = NULL;
    size_t cap = 0, xcap = 0, used = 0;
    int64_t lineno = 0;
    s->n = 0, s->size = -1, s->x = NULL, s->bytes = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *p = line, *end;
        int64_t k = 0;
        int numbers = 1;
        for (;;) {
            while (*p && strchr(" ,;\t\r\n", *p)) p++;
            if (!*p) break;
            double v = strtod(p, &end);
            if (end == p) {
                numbers = 0;
                break;
            }
            if (used + 1 > xcap) {
                size_t want = xcap ? xcap * 2 : 1024;
                float *nx = realloc(s->x, want * sizeof(float));
                if (!nx) {
                    snprintf(err, errlen, "%s: out of memory", path);
                    goto fail;
                }
                s->x = nx, xcap = want;
            }
            s->x[used++] = (float)v, k++;
            p = end;
        }
        if (!numbers) {
            if (lineno == 1) { /* a header */
                used = 0;
                continue;
            }
            snprintf(err, errlen, "%s:%lld: not a number: '%.20s'", path, (long long)lineno, p);
            goto fail;
        }
        if (k == 0) continue;
        if (s->size < 0) s->size = k;
        else if (k != s->size) {
            snprintf(err, errlen, "%s:%lld: %lld values, the lines before have %lld", path,
                     (long long)lineno, (long long)k, (long long)s->size);
            goto fail;
        }
        s->n++;
    }
    free(line);
    fclose(f);
    if (s->n == 0) {
        free(s->x);
        s->x = NULL;
        return fail_input(path, err, errlen, "no samples");
    }
    return 0;
fail:
    free(line);
    fclose(f);
    free(s->x);
    s->x = NULL;
    return -1;
}

/* an image file as one sample of the model's input: (h, w, 1) grayscale or (h, w, 3) RGB,
 * (h, w) grayscale, or a flat square of gray pixels (784 = 28 x 28), resized as Keras's
 * image_dataset_from_directory does (kc_image_load) */
static int read_image(const char *path, kc_shape in, samples *s, char *err, size_t errlen) {
    int h = 0, w = 0, c = 0;
    if (in.rank == 3 && (in.dims[2] == 1 || in.dims[2] == 3 || in.dims[2] == 4))
        h = (int)in.dims[0], w = (int)in.dims[1], c = (int)in.dims[2];
    else if (in.rank == 2) h = (int)in.dims[0], w = (int)in.dims[1], c = 1;
    else if (in.rank == 1) {
        int side = 1;
        while ((int64_t)(side + 1) * (side + 1) <= in.dims[0]) side++;
        if ((int64_t)side * side == in.dims[0]) h = w = side, c = 1;
    }
    if (h <= 0 || w <= 0) {
        char b[64];
        snprintf(err, errlen, "%s: the model's input %s is not a picture (height, width[, "
                              "channels]) to put an image into", path,
                 kc_shape_str(in, b, sizeof b));
        return -1;
    }
    kc_image img;
    if (kc_image_load(path, c, h, w, &img) != KC_OK) {
        snprintf(err, errlen, "%s", kc_last_error());
        return -1;
    }
    s->n = 1;
    s->size = (int64_t)h * w * c;
    s->bytes = 1;
    s->x = malloc(sizeof(float) * (size_t)s->size);
    if (!s->x) {
        kc_image_free(&img);
        return fail_input(path, err, errlen, "out of memory");
    }
    for (int64_t i = 0; i < s->size; i++) s->x[i] = img.data[i];
    kc_image_free(&img);
    return 0;
}

static int is_image(const char *path) {
    const char *ext[] = {".png", ".PNG", ".jpg", ".JPG", ".jpeg", ".JPEG", ".pgm", ".PGM",
                         ".ppm", ".PPM", ".bmp", ".BMP"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (cli_ends_with(path, ext[i])) return 1;
    return 0;
}

static int read_input(const char *path, kc_shape in, samples *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    if (cli_ends_with(path, ".npy")) return read_npy(path, s, err, errlen);
    if (cli_ends_with(path, ".csv") || cli_ends_with(path, ".txt"))
        return read_csv(path, s, err, errlen);
    if (is_image(path)) return read_image(path, in, s, err, errlen);
    if (access(path, R_OK) != 0)
        return snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno)), -1;
    return fail_input(path, err, errlen, "unknown input type (give a .npy, .csv or image file)");
}

/* every probability into FILE.npy (float32, (n, c)) or FILE.csv, written atomically: built in
 * memory, then a temporary file renamed over path (nothing is left on a failure) */
static int write_output(const char *cmd, const char *path, const float *p, int64_t n, int64_t c) {
    int npy = cli_ends_with(path, ".npy");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return cli_fail(cmd, "out of memory for '%s'", path);
    if (npy) {
        char h[128];
        int hl = snprintf(h, sizeof h, "{'descr': '<f4', 'fortran_order': False, 'shape': "
                                       "(%lld, %lld), }", (long long)n, (long long)c);
        int total = 10 + hl + 1, pad = (64 - total % 64) % 64;
        memset(h + hl, ' ', (size_t)pad);
        h[hl + pad] = '\n';
        unsigned short hlen = (unsigned short)(hl + pad + 1);
        fwrite("\x93NUMPY\x01\x00", 1, 8, f);
        fputc(hlen & 0xff, f), fputc(hlen >> 8, f);
        fwrite(h, 1, (size_t)hlen, f);
        fwrite(p, sizeof(float), (size_t)(n * c), f);
    } else {
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < c; j++)
                fprintf(f, "%.9g%c", p[i * c + j], j + 1 < c ? ',' : '\n');
    }
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    int rc = 0;
    if (bad) rc = cli_fail(cmd, "out of memory writing '%s'", path);
    else if (kc_write_file_atomic(path, buf, len) != KC_OK) rc = cli_kc_fail(cmd);
    free(buf);
    return rc;
}

int cmd_predict(int argc, char **argv) {
    const char *cmd = "predict", *model_path = NULL, *output = NULL;
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    int n_inputs = 0, invert = 0;
    long top = 0;
    double scale = 0;
    int has_scale = 0;
    if (!inputs) return cli_fail(cmd, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) return free(inputs), fputs(help, stdout), CLI_OK;
        if (a[0] != '-' || !a[1]) {
            if (!model_path) model_path = a;
            else inputs[n_inputs++] = a;
            continue;
        }
        if (!strcmp(a, "--invert")) {
            invert = 1;
            continue;
        }
        if (strcmp(a, "--top") && strcmp(a, "--output") && strcmp(a, "--scale"))
            return free(inputs), cli_usage_error(cmd, "unknown option '%s'", a);
        if (!(v = cli_value(cmd, argc, argv, &i))) return free(inputs), CLI_USAGE;
        if (!strcmp(a, "--output")) {
            output = v;
            if (!cli_ends_with(v, ".npy") && !cli_ends_with(v, ".csv"))
                return free(inputs),
                       cli_usage_error(cmd, "--output '%s': give a .npy or .csv file", v);
        } else if ((!strcmp(a, "--top") ? cli_long(cmd, a, v, 1, 1000000, &top)
                                         : (has_scale = 1, cli_float(cmd, a, v, -1e30, 1e30, &scale))))
            return free(inputs), CLI_USAGE;
    }
    if (!model_path) return free(inputs), cli_usage_error(cmd, "missing MODEL");
    if (!n_inputs) return free(inputs), cli_usage_error(cmd, "missing INPUT");
    kc_model *m;
    if (cli_load_model(cmd, model_path, &m, NULL)) return free(inputs), CLI_FAIL;
    kc_shape in = kc_input_shape(m), out = kc_output_shape(m);
    const int raw_pixels = cli_model_scales_inputs(m); /* a Rescaling first: 0..255 as they are */
    int64_t isize = kc_shape_size(in), c = kc_shape_size(out);
    int rc = CLI_FAIL;
    float *all = NULL;
    int64_t n_all = 0;
    char err[1024];
    for (int f = 0; f < n_inputs; f++) {
        samples s;
        if (read_input(inputs[f], in, &s, err, sizeof err)) {
            cli_fail(cmd, "%s", err);
            goto done;
        }
        if (s.size != isize) {
            char buf[64];
            cli_fail(cmd, "%s: %lld values per sample, the model's input %s takes %lld",
                     inputs[f], (long long)s.size, kc_shape_str(in, buf, sizeof buf),
                     (long long)isize);
            free(s.x);
            goto done;
        }
        float k = has_scale ? (float)scale : s.bytes && !raw_pixels ? 1.0f / 255 : 1.0f;
        /* --invert: bytes become 255 - v before scaling; floats (0..1) 1 - v after it */
        for (int64_t i = 0; i < s.n * s.size; i++) {
            if (invert && s.bytes) s.x[i] = 255.0f - s.x[i];
            s.x[i] *= k;
            if (invert && !s.bytes) s.x[i] = 1.0f - s.x[i];
        }
        float *p = realloc(all, (size_t)((n_all + s.n) * c) * sizeof(float));
        if (!p || kc_predict(m, s.x, s.n, p + n_all * c) != KC_OK) {
            if (p) all = p;
            free(s.x);
            if (!p) cli_fail(cmd, "out of memory");
            else cli_kc_fail(cmd);
            goto done;
        }
        all = p;
        for (int64_t i = 0; i < s.n; i++) {
            const float *row = all + (n_all + i) * c;
            if (s.n == 1) printf("%s", inputs[f]);
            else printf("%s[%lld]", inputs[f], (long long)i);
            if (c == 1) { /* one sigmoid unit: class 1 when p > 0.5 */
                int cls = row[0] > 0.5f;
                printf(" %d %.6f\n", cls, cls ? row[0] : 1 - row[0]);
                continue;
            }
            int k_best = top > 0 ? (int)(top < c ? top : c) : 1;
            unsigned char *used = calloc((size_t)c, 1);
            for (int t = 0; t < k_best && used; t++) {
                int64_t best = -1;
                for (int64_t j = 0; j < c; j++)
                    if (!used[j] && (best < 0 || row[j] > row[best])) best = j;
                used[best] = 1;
                if (top > 0) printf(" %lld:%.6f", (long long)best, row[best]);
                else printf(" %lld %.6f", (long long)best, row[best]);
            }
            free(used);
            putchar('\n');
        }
        n_all += s.n;
        free(s.x);
    }
    rc = output ? (write_output(cmd, output, all, n_all, c) ? CLI_FAIL : CLI_OK) : CLI_OK;
done:
    free(all);
    free(inputs);
    kc_model_free(m);
    return rc;
}
