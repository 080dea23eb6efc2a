/* csv.c: a CSV file of numbers with a header line into a kc_dataset: the label column becomes
 * y (class indices when every label is a whole number >= 0, else float targets), the other
 * columns x (float32). Numbers are parsed strictly; a bad cell is named by file, line and
 * column. */
#include "text_internal.h"
#include "spec_internal.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CSV_MAX ((size_t)1 << 34)

typedef struct {
    char **names;
    int n;
} header;

static void header_free(header *h) {
    for (int i = 0; i < h->n; i++) free(h->names[i]);
    free(h->names);
    memset(h, 0, sizeof *h);
}

static char *trim(char *a, char *b) { /* [a, b) without surrounding blanks or quotes, as a copy */
    while (a < b && (*a == ' ' || *a == '\t')) a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r')) b--;
    if (b - a >= 2 && *a == '"' && b[-1] == '"') a++, b--;
    char *s = malloc((size_t)(b - a) + 1);
    if (s) {
        memcpy(s, a, (size_t)(b - a));
        s[b - a] = '\0';
    }
    return s;
}

static kc_status parse_header_line(const char *path, char *line, char *end, header *h) {
    int cap = 0;
    for (char *p = line;;) {
        char *q = p;
        while (q < end && *q != ',') q++;
        if (h->n == cap) {
            cap = cap ? cap * 2 : 16;
            char **a = realloc(h->names, (size_t)cap * sizeof *a);
            if (!a) return kc_err(KC_ENOMEM, "%s: out of memory", path);
            h->names = a;
        }
        if (!(h->names[h->n] = trim(p, q))) return kc_err(KC_ENOMEM, "%s: out of memory", path);
        h->n++;
        if (q >= end) break;
        p = q + 1;
    }
    return KC_OK;
}

static kc_status pick_label(const char *path, const header *h, const char *want, int *col) {
    if (!want) {
        for (int i = 0; i < h->n; i++)
            if (!strcmp(h->names[i], "label")) return *col = i, KC_OK;
        *col = h->n - 1;
        return KC_OK;
    }
    for (int i = 0; i < h->n; i++)
        if (!strcmp(h->names[i], want)) return *col = i, KC_OK;
    char *end;
    errno = 0;
    long v = strtol(want, &end, 10);
    if (want[0] && !*end && !errno && v >= -h->n && v < h->n) {
        *col = (int)(v < 0 ? v + h->n : v);
        return KC_OK;
    }
    return kc_err(KC_EINVAL, "%s: label column \"%s\" is neither a header name nor an index in "
                  "[-%d, %d)", path, want, h->n, h->n);
}

kc_status kc_csv_load(const char *path, const char *label_column, kc_dataset *out) {
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t size;
    kc_status st = kc_read_whole_file(path, CSV_MAX, &buf, &size);
    if (st) return st;
    char *text = (char *)buf, *end = text + size;
    if (size >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) text += 3; /* a UTF-8 byte order mark */
    char *eol = memchr(text, '\n', (size_t)(end - text));
    if (!eol) eol = end;
    header h = {0};
    float *x = NULL, *y = NULL;
    int label = 0;
    if (eol == text || (eol == text + 1 && text[0] == '\r'))
        st = kc_err(KC_EFORMAT, "%s: line 1: no header line", path);
    if (!st) st = parse_header_line(path, text, eol, &h);
    if (!st && h.n < 2)
        st = kc_err(KC_EFORMAT, "%s: line 1: the header has %d column; a label and at least one "
                    "feature are needed", path, h.n);
    if (!st) st = pick_label(path, &h, label_column, &label);
    /* count the data rows: non-blank lines after the header */
    int64_t rows = 0;
    for (char *p = eol < end ? eol + 1 : end; !st && p < end;) {
        char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        char *q = p;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q < e) rows++;
        p = e + 1;
    }
    if (!st && rows == 0) st = kc_err(KC_EFORMAT, "%s: no data rows after the header", path);
    int nx = h.n - 1;
    if (!st) {
        x = kc_alloc((size_t)rows * (size_t)nx * sizeof *x);
        y = kc_alloc((size_t)rows * sizeof *y);
        if (!x || !y) st = kc_err_prefix(KC_ENOMEM, "%s", path);
    }
    int64_t r = 0, line_no = 1;
    int integral = 1;
    double ymax = 0;
    for (char *p = eol < end ? eol + 1 : end; !st && p < end; p++) {
        line_no++;
        char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        char *q = p;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q == e) { /* a blank line */
            p = e;
            continue;
        }
        int col = 0, xi = 0;
        for (char *c = p;; col++) {
            char *ce = c;
            while (ce < e && *ce != ',') ce++;
            if (col >= h.n) {
                st = kc_err(KC_EFORMAT, "%s: line %" PRId64 ": more than the header's %d columns",
                            path, line_no, h.n);
                break;
            }
            char *a = c, *b = ce;
            while (a < b && (*a == ' ' || *a == '\t')) a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r')) b--;
            char cell[64];
            size_t len = (size_t)(b - a);
            double v = 0;
            char *stop = cell;
            if (len > 0 && len < sizeof cell) {
                memcpy(cell, a, len);
                cell[len] = '\0';
                v = strtod(cell, &stop);
            }
            /* strtod's hexadecimal forms are not CSV numbers */
            if (len == 0 || len >= sizeof cell || *stop != '\0' || stop == cell || memchr(a, 'x', len) ||
                memchr(a, 'X', len)) {
                st = kc_err(KC_EFORMAT, "%s: line %" PRId64 ", column \"%s\": %s%.*s%s is not a "
                            "number", path, line_no, h.names[col], len ? "\"" : "",
                            (int)(len > 40 ? 40 : len), a, len ? "\"" : "an empty cell");
                break;
            }
            if (col == label) {
                y[r] = (float)v;
                if (!(v >= 0 && v == floor(v) && v < 1e6)) integral = 0;
                else if (v > ymax) ymax = v;
            } else {
                x[r * nx + xi++] = (float)v;
            }
            if (ce >= e) break;
            c = ce + 1;
        }
        if (!st && col + 1 != h.n)
            st = kc_err(KC_EFORMAT, "%s: line %" PRId64 ": %d columns, the header has %d", path,
                        line_no, col + 1, h.n);
        r++;
        p = e;
    }
    if (!st) {
        *out = (kc_dataset){.count = rows, .x_shape = kc_shape1(nx), .x_dtype = KC_FLOAT32,
                            .x = x, .owned_x = x};
        if (integral) {
            int32_t *yi = (int32_t *)y; /* same size: converted in place */
            for (int64_t i = 0; i < rows; i++) yi[i] = (int32_t)y[i];
            out->y_dtype = KC_INT32;
            out->num_classes = (int)ymax + 1;
        } else {
            out->y_dtype = KC_FLOAT32;
            out->y_shape = kc_shape1(1);
        }
        out->y = out->owned_y = y;
        x = y = NULL;
    }
    kc_free(x);
    kc_free(y);
    header_free(&h);
    free(buf);
    return st;
}
