/* plot.c: kerac's pictures (learning curves, confusion matrix, image grid) drawn with cairo
 * and its text API (fontconfig finds DejaVu Sans), in matplotlib's default look: tab10 colours,
 * black spines, outward ticks, 5% data margins, a framed legend in the emptiest corner. Each
 * PNG is encoded in memory, then written to a temporary file beside the target, fsynced and
 * renamed over it; on any error nothing is left behind. */
#include "plot.h"
#include "kerac.h"
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FONT "DejaVu Sans"
#define MAX_SIDE 16000          /* pixels, per side of a picture */
#define MAX_AREA (64L << 20)    /* pixels in all (256 MiB of ARGB) */

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- atomic PNG output ---------------------------------------------------------------------- */

typedef struct { unsigned char *data; size_t len, cap; } membuf;

static cairo_status_t mem_write(void *closure, const unsigned char *data, unsigned int length) {
    membuf *b = closure;
    if (b->len + length > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + length) cap *= 2;
        unsigned char *p = realloc(b->data, cap);
        if (!p) return CAIRO_STATUS_NO_MEMORY;
        b->data = p, b->cap = cap;
    }
    memcpy(b->data + b->len, data, length);
    b->len += length;
    return CAIRO_STATUS_SUCCESS;
}

static int write_png_atomic(cairo_surface_t *s, const char *path, char *err, size_t errlen) {
    if (!path) return fail(err, errlen, "plot: the PNG path is NULL");
    cairo_surface_flush(s);
    if (cairo_surface_status(s))
        return fail(err, errlen, "%s: drawing failed: %s", path,
                    cairo_status_to_string(cairo_surface_status(s)));
    membuf b = {0};
    cairo_status_t cs = cairo_surface_write_to_png_stream(s, mem_write, &b);
    if (cs) {
        free(b.data);
        return fail(err, errlen, "%s: PNG encoding failed: %s", path, cairo_status_to_string(cs));
    }
    /* written as kc_save writes models: a temporary file beside it, renamed over it */
    int rc = 0;
    if (kc_write_file_atomic(path, b.data, b.len) != KC_OK)
        rc = fail(err, errlen, "%s", kc_last_error());
    free(b.data);
    return rc;
}

/* ---- drawing helpers ------------------------------------------------------------------------ */

typedef struct { double r, g, b; } rgb;
static const rgb BLACK = {0, 0, 0}, TEXT = {0.149, 0.149, 0.149}, RED = {0.839, 0.153, 0.157};
static const rgb TAB10[10] = {{0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173},
                              {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294},
                              {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}, {0.737, 0.741, 0.133},
                              {0.090, 0.745, 0.812}};

static void set_rgb(cairo_t *cr, rgb c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }

static cairo_t *new_canvas(int w, int h, cairo_surface_t **s) {
    *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t *cr = cairo_create(*s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_font_options_t *fo = cairo_font_options_create();
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_SLIGHT);
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
    cairo_set_font_options(cr, fo);
    cairo_font_options_destroy(fo);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    return cr;
}

static void font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_w(cairo_t *cr, const char *s) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* text anchored at (x, y): ha 0 left .. 1 right, va 0 top .. 1 bottom of the font's box,
 * rotated by angle (radians, counter-clockwise on screen) about the anchor */
static void text(cairo_t *cr, double x, double y, const char *s, double ha, double va, double angle) {
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double w = text_w(cr, s), h = fe.ascent + fe.descent;
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -angle);
    cairo_move_to(cr, -ha * w, -va * h + fe.ascent);
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

/* text centred on x where it fits in a picture W wide, else moved in from the edge */
static void centred(cairo_t *cr, double x, double y, const char *s, double W) {
    double w = text_w(cr, s);
    x = fmax(x, 10 + w / 2);
    x = fmin(x, W - 10 - w / 2);
    text(cr, x, y, s, 0.5, 0, 0);
}

static double font_h(cairo_t *cr) {
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    return fe.ascent + fe.descent;
}

/* s cut (at a UTF-8 boundary) with an ellipsis to at most maxw pixels; out holds outlen bytes */
static const char *fit(cairo_t *cr, const char *s, double maxw, char *out, size_t outlen) {
    /* copy valid UTF-8 only (cairo refuses anything else), '?' for each stray byte */
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 1 < outlen;) {
        int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        int ok = len > 0 && o + len < outlen;
        for (int i = 1; ok && i < len; i++) ok = (p[i] & 0xC0) == 0x80;
        if (ok && len == 2 && *p < 0xC2) ok = 0;
        if (!ok) {
            if (len > 0 && o + len >= outlen) break;
            out[o++] = '?', p++;
            continue;
        }
        memcpy(out + o, p, (size_t)len);
        o += (size_t)len, p += len;
    }
    out[o] = 0;
    if (text_w(cr, out) <= maxw) return out;
    size_t n = strlen(out);
    while (n > 0) {
        do n--; while (n > 0 && ((unsigned char)out[n] & 0xC0) == 0x80);
        if (n + 4 > outlen) continue;
        memcpy(out + n, "\xe2\x80\xa6", 4); /* … */
        if (text_w(cr, out) <= maxw) return out;
    }
    snprintf(out, outlen, "\xe2\x80\xa6");
    return out;
}

/* checks the drawing, frees the context, writes the PNG, frees the surface */
static int finish(cairo_t *cr, cairo_surface_t *s, const char *out_png, char *err, size_t errlen) {
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    int rc = st ? fail(err, errlen, "%s: drawing failed: %s", out_png, cairo_status_to_string(st))
                : write_png_atomic(s, out_png, err, errlen);
    cairo_surface_destroy(s);
    return rc;
}

/* ---- ticks ---------------------------------------------------------------------------------- */

/* ticks inside [lo, hi], at most ~maxn, step 1, 2, 2.5, 5 times a power of ten (integer steps
 * only when integer != 0); returns the count, fills t (room for 64) and the decimals to print */
static int nice_ticks(double lo, double hi, int maxn, int integer, double *t, int *decimals) {
    double raw = (hi - lo) / (maxn > 1 ? maxn : 1);
    if (!(raw > 0) || !isfinite(raw)) raw = 1;
    double mag = pow(10, floor(log10(raw))), step = 10 * mag;
    static const double mult[] = {1, 2, 2.5, 5, 10};
    for (int i = 0; i < 5; i++)
        if (mult[i] * mag >= raw * (1 - 1e-9) && !(integer && mult[i] == 2.5)) {
            step = mult[i] * mag;
            break;
        }
    if (integer && step < 1) step = 1;
    int d = 0;
    while (d < 12 && fabs(step * pow(10, d) - round(step * pow(10, d))) > 1e-6 * step * pow(10, d)) d++;
    *decimals = d;
    double first = ceil(lo / step - 1e-9) * step;
    int n = 0;
    for (double v = first; v <= hi + step * 1e-9 && n < 64; v = first + step * ++n) t[n] = v;
    for (int i = 0; i < n; i++)
        if (fabs(t[i]) < step * 1e-9) t[i] = 0; /* no "-0.0" */
    return n;
}

static void tick_label(char *buf, size_t len, double v, int decimals, double span) {
    if (fabs(v) >= 1e6 || (span < 1e-4 && v != 0) || decimals > 6) snprintf(buf, len, "%.4g", v);
    else snprintf(buf, len, "%.*f", decimals, v);
}

/* ---- learning curves ------------------------------------------------------------------------ */

typedef struct {
    int ncols, nrows;
    char **names;  /* ncols header names */
    double *v;     /* nrows * ncols, NAN where missing or not finite */
} csv_table;

static void csv_free(csv_table *t) {
    for (int i = 0; i < t->ncols; i++) free(t->names[i]);
    free(t->names);
    free(t->v);
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t' || *s == '"') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n' || e[-1] == '"')) *--e = 0;
    return s;
}

/* splits line (modified) at sep into at most max fields; returns the count */
static int split(char *line, char sep, char **f, int max) {
    int n = 0;
    for (char *p = line;; ) {
        char *c = strchr(p, sep);
        if (n < max) f[n] = trim(p);
        n++;
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

#define MAX_COLS 256

static int csv_read(const char *path, csv_table *t, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL, *fields[MAX_COLS];
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0, rowcap = 0;
    char sep = ',';
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *l = line;
        if (lineno == 1 && !strncmp(l, "\xef\xbb\xbf", 3)) l += 3; /* a UTF-8 byte-order mark */
        l = trim(l);
        if (!*l) continue;
        if (!t->names && !strchr(l, ','))  /* CSVLogger(separator=...): the header tells which */
            for (const char *c = ";\t| "; *c; c++)
                if (strchr(l, *c)) { sep = *c; break; }
        int nf = split(l, sep, fields, MAX_COLS);
        if (!t->names) {
            if (nf > MAX_COLS) {
                rc = fail(err, errlen, "%s: line 1: %d columns, at most %d", path, nf, MAX_COLS);
                break;
            }
            t->names = calloc((size_t)nf, sizeof *t->names);
            if (!t->names) { rc = fail(err, errlen, "%s: out of memory", path); break; }
            t->ncols = nf;
            for (int i = 0; i < nf; i++) {
                if (!*fields[i]) {
                    rc = fail(err, errlen, "%s: line %d: header column %d is empty", path, lineno, i + 1);
                    break;
                }
                t->names[i] = strdup(fields[i]);
            }
            if (rc) break;
            continue;
        }
        int row = t->nrows + 1;
        if (nf != t->ncols) {
            rc = fail(err, errlen, "%s: row %d (line %d) has %d columns, the header has %d", path,
                      row, lineno, nf, t->ncols);
            break;
        }
        if (t->nrows == rowcap) {
            rowcap = rowcap ? 2 * rowcap : 64;
            double *v = realloc(t->v, (size_t)rowcap * (size_t)t->ncols * sizeof *v);
            if (!v) { rc = fail(err, errlen, "%s: out of memory", path); break; }
            t->v = v;
        }
        double *r = t->v + (size_t)t->nrows * (size_t)t->ncols;
        for (int i = 0; i < nf; i++) {
            const char *s = fields[i];
            char *end;
            /* Keras's CSVLogger writes "NA" for a missing value; nan and inf are points to skip */
            if (!*s || !strcmp(s, "NA")) { r[i] = NAN; continue; }
            errno = 0;
            double d = strtod(s, &end);
            if (end == s || *end) {
                rc = fail(err, errlen, "%s: row %d (line %d), column %d \"%s\": \"%s\" is not a number",
                          path, row, lineno, i + 1, t->names[i], s);
                break;
            }
            r[i] = isfinite(d) ? d : NAN;
        }
        if (rc) break;
        t->nrows++;
    }
    if (!rc && ferror(f)) rc = fail(err, errlen, "%s: read error: %s", path, strerror(errno));
    free(line);
    fclose(f);
    if (!rc && !t->names) rc = fail(err, errlen, "%s: empty file: no CSV header", path);
    if (!rc && !t->nrows) rc = fail(err, errlen, "%s: no rows after the header (no epoch logged)", path);
    if (rc) csv_free(t);
    return rc;
}

static int col_of(const csv_table *t, const char *name) {
    for (int i = 0; i < t->ncols; i++)
        if (!strcmp(t->names[i], name)) return i;
    return -1;
}

/* the column, if it has a value to draw: without validation data CSVLogger still writes the
 * val_ columns, all NA */
static int series_of(const csv_table *t, const char *name) {
    int c = col_of(t, name);
    for (int r = 0; c >= 0 && r < t->nrows; r++)
        if (!isnan(t->v[(size_t)r * t->ncols + c])) return c;
    return -1;
}

typedef struct { const char *name; int train, val; } panel;

/* one series' points as pixels; NaN gaps break the line */
static void draw_series(cairo_t *cr, const double *x, const csv_table *t, int col, double x0,
                        double x1, double y0, double y1, double px, double py, double pw, double ph,
                        rgb c, int dashed, int markers) {
    if (col < 0) return;
    set_rgb(cr, c);
    cairo_set_line_width(cr, 1.8);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
    double dash[] = {6.5, 2.8};
    cairo_set_dash(cr, dash, dashed ? 2 : 0, 0);
    int pen = 0;
    for (int r = 0; r < t->nrows; r++) {
        double v = t->v[(size_t)r * t->ncols + col];
        if (isnan(v) || isnan(x[r])) { pen = 0; continue; }
        double X = px + (x[r] - x0) / (x1 - x0) * pw, Y = py + ph - (v - y0) / (y1 - y0) * ph;
        if (pen) cairo_line_to(cr, X, Y);
        else cairo_move_to(cr, X, Y);
        pen = 1;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    if (!markers) return;
    for (int r = 0; r < t->nrows; r++) {
        double v = t->v[(size_t)r * t->ncols + col];
        if (isnan(v) || isnan(x[r])) continue;
        double X = px + (x[r] - x0) / (x1 - x0) * pw, Y = py + ph - (v - y0) / (y1 - y0) * ph;
        cairo_new_sub_path(cr);
        cairo_arc(cr, X, Y, 3, 0, 2 * M_PI);
    }
    cairo_fill(cr);
}

/* counts the series' points and segment samples that fall in the box */
static int points_in(const double *x, const csv_table *t, int col, double x0, double x1, double y0,
                     double y1, double px, double py, double pw, double ph, double bx, double by,
                     double bw, double bh) {
    if (col < 0) return 0;
    int n = 0;
    double lx = NAN, ly = NAN;
    for (int r = 0; r < t->nrows; r++) {
        double v = t->v[(size_t)r * t->ncols + col];
        if (isnan(v) || isnan(x[r])) { lx = NAN; continue; }
        double X = px + (x[r] - x0) / (x1 - x0) * pw, Y = py + ph - (v - y0) / (y1 - y0) * ph;
        int k = isnan(lx) ? 1 : 8;
        for (int s = 1; s <= k; s++) {
            double sx = isnan(lx) ? X : lx + (X - lx) * s / k, sy = isnan(lx) ? Y : ly + (Y - ly) * s / k;
            if (sx >= bx - 2 && sx <= bx + bw + 2 && sy >= by - 2 && sy <= by + bh + 2) n++;
        }
        lx = X, ly = Y;
    }
    return n;
}

static void draw_panel(cairo_t *cr, const csv_table *t, const double *x, const panel *p, double ox,
                       double oy, double W, double H) {
    /* data ranges, 5% margins as matplotlib's autoscale */
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int r = 0; r < t->nrows; r++) {
        if (isnan(x[r])) continue;
        xmin = fmin(xmin, x[r]), xmax = fmax(xmax, x[r]);
        int cols[2] = {p->train, p->val};
        for (int k = 0; k < 2; k++) {
            if (cols[k] < 0) continue;
            double v = t->v[(size_t)r * t->ncols + cols[k]];
            if (!isnan(v)) ymin = fmin(ymin, v), ymax = fmax(ymax, v);
        }
    }
    if (!isfinite(xmin)) xmin = 1, xmax = 1;
    if (!isfinite(ymin)) ymin = 0, ymax = 1;
    double x0, x1, y0, y1;
    if (xmax - xmin < 1e-12) x0 = xmin - 0.5, x1 = xmax + 0.5;
    else x0 = xmin - 0.05 * (xmax - xmin), x1 = xmax + 0.05 * (xmax - xmin);
    if (ymax - ymin <= 1e-12 * fmax(1, fabs(ymax))) {
        double d = fabs(ymin) > 0 ? 0.05 * fabs(ymin) : 0.05;
        y0 = ymin - d, y1 = ymax + d;
    } else {
        y0 = ymin - 0.05 * (ymax - ymin), y1 = ymax + 0.05 * (ymax - ymin);
    }

    double yt[64], xt[64];
    int ydec, xdec;
    int nyt = nice_ticks(y0, y1, 7, 0, yt, &ydec), nxt = nice_ticks(x0, x1, 9, 1, xt, &xdec);
    char buf[64];
    font(cr, 12, 0);
    double tickw = 0, fh = font_h(cr);
    for (int i = 0; i < nyt; i++) {
        tick_label(buf, sizeof buf, yt[i], ydec, y1 - y0);
        tickw = fmax(tickw, text_w(cr, buf));
    }
    /* plot box */
    double left = 14 + 16 + 8 + tickw + 7, right = 18, top = 14, bottom = 14 + fh + 6 + 16 + 10;
    double px = ox + left, py = oy + top, pw = W - left - right, ph = H - top - bottom;
    /* the x ticks may be too dense for their labels: thin them */
    double maxlw = 0;
    for (int i = 0; i < nxt; i++) {
        snprintf(buf, sizeof buf, "%.0f", xt[i]);
        maxlw = fmax(maxlw, text_w(cr, buf));
    }
    while (nxt > 2 && (xt[1] - xt[0]) / (x1 - x0) * pw < maxlw + 12) {
        double step = xt[1] - xt[0];
        nxt = nice_ticks(x0, x1, (int)((x1 - x0) / (2 * step)) + 1, 1, xt, &xdec);
        if (nxt >= 2 && xt[1] - xt[0] <= step) break;
    }

    int k = 0; /* no epoch 0: Keras's progress bar counts from 1 */
    for (int i = 0; i < nxt; i++)
        if (xt[i] >= 1 || xmin < 1) xt[k++] = xt[i];
    nxt = k;

    cairo_save(cr);
    cairo_rectangle(cr, px, py, pw, ph);
    cairo_clip(cr);
    int markers = t->nrows <= 30;
    draw_series(cr, x, t, p->train, x0, x1, y0, y1, px, py, pw, ph, TAB10[0], 0, markers);
    draw_series(cr, x, t, p->val, x0, x1, y0, y1, px, py, pw, ph, TAB10[1], 1, markers);
    cairo_restore(cr);

    /* spines and ticks */
    set_rgb(cr, BLACK);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, floor(px) + 0.5, floor(py) + 0.5, floor(pw), floor(ph));
    cairo_stroke(cr);
    set_rgb(cr, TEXT);
    for (int i = 0; i < nyt; i++) {
        double Y = floor(py + ph - (yt[i] - y0) / (y1 - y0) * ph) + 0.5;
        cairo_move_to(cr, floor(px) + 0.5, Y);
        cairo_line_to(cr, floor(px) - 4.5, Y);
        cairo_stroke(cr);
        tick_label(buf, sizeof buf, yt[i], ydec, y1 - y0);
        text(cr, px - 7, Y, buf, 1, 0.5, 0);
    }
    for (int i = 0; i < nxt; i++) {
        double X = floor(px + (xt[i] - x0) / (x1 - x0) * pw) + 0.5;
        cairo_move_to(cr, X, floor(py + ph) + 0.5);
        cairo_line_to(cr, X, floor(py + ph) + 5);
        cairo_stroke(cr);
        snprintf(buf, sizeof buf, "%.0f", xt[i]);
        text(cr, X, py + ph + 7, buf, 0.5, 0, 0);
    }
    font(cr, 13, 0);
    text(cr, px + pw / 2, py + ph + 7 + fh + 6, "epoch", 0.5, 0, 0);
    char name[128];
    text(cr, ox + 12, py + ph / 2, fit(cr, p->name, ph, name, sizeof name), 0.5, 0, M_PI / 2);

    /* legend, when there are two curves, in the corner they cross least (loc="best") */
    if (p->train < 0 || p->val < 0) return;
    font(cr, 12, 0);
    const char *lab[2] = {"training", "validation"};
    int cols[2] = {p->train, p->val}, nl = 0, idx[2];
    double lw = 0;
    for (int k = 0; k < 2; k++)
        if (cols[k] >= 0) idx[nl++] = k, lw = fmax(lw, text_w(cr, lab[k]));
    double bw = 8 + 30 + 8 + lw + 8, bh = 6 + nl * (fh + 4) + 2, best_x = 0, best_y = 0;
    int best = -1;
    double cand[6][2] = {{px + pw - bw - 8, py + 8}, {px + 8, py + 8}, {px + 8, py + ph - bh - 8},
                         {px + pw - bw - 8, py + ph - bh - 8}, {px + pw - bw - 8, py + (ph - bh) / 2},
                         {px + (pw - bw) / 2, py + 8}};
    for (int c = 0; c < 6; c++) {
        int n = points_in(x, t, p->train, x0, x1, y0, y1, px, py, pw, ph, cand[c][0], cand[c][1], bw, bh) +
                points_in(x, t, p->val, x0, x1, y0, y1, px, py, pw, ph, cand[c][0], cand[c][1], bw, bh);
        if (best < 0 || n < best) best = n, best_x = cand[c][0], best_y = cand[c][1];
    }
    cairo_new_path(cr);
    double bx = floor(best_x) + 0.5, by = floor(best_y) + 0.5, r = 3;
    cairo_arc(cr, bx + bw - r, by + r, r, -M_PI / 2, 0);
    cairo_arc(cr, bx + bw - r, by + bh - r, r, 0, M_PI / 2);
    cairo_arc(cr, bx + r, by + bh - r, r, M_PI / 2, M_PI);
    cairo_arc(cr, bx + r, by + r, r, M_PI, 3 * M_PI / 2);
    cairo_close_path(cr);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.8);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
    cairo_stroke(cr);
    for (int i = 0; i < nl; i++) {
        int k = idx[i];
        double Y = by + 6 + i * (fh + 4) + fh / 2;
        set_rgb(cr, TAB10[k]);
        cairo_set_line_width(cr, 1.8);
        double dash[] = {6.5, 2.8};
        cairo_set_dash(cr, dash, k ? 2 : 0, 0);
        cairo_move_to(cr, bx + 8, Y);
        cairo_line_to(cr, bx + 38, Y);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        if (markers) {
            cairo_arc(cr, bx + 23, Y, 3, 0, 2 * M_PI);
            cairo_fill(cr);
        }
        set_rgb(cr, TEXT);
        text(cr, bx + 46, Y, lab[k], 0, 0.5, 0);
    }
}

/* the learning curves of table t (freed here); what names the data in messages and is the
 * default title */
static int plot_table(csv_table *t_in, const char *what, const char *out_png, const char *title,
                      char *err, size_t errlen) {
    csv_table t = *t_in;
    const char *csv_path = what;
    int loss = col_of(&t, "loss");
    if (loss < 0) {
        int vl = col_of(&t, "val_loss");
        csv_free(&t);
        return fail(err, errlen, "%s: no \"loss\" column in the header%s", csv_path,
                    vl >= 0 ? " (only val_loss)" : "");
    }
    panel *p = calloc((size_t)t.ncols, sizeof *p);
    double *x = malloc((size_t)t.nrows * sizeof *x);
    if (!p || !x) {
        free(p), free(x), csv_free(&t);
        return fail(err, errlen, "%s: out of memory", csv_path);
    }
    /* loss first, then each metric in header order; a val_ column joins its metric's panel */
    int np = 0, epoch = col_of(&t, "epoch");
    char vname[300];
    p[np++] = (panel){"loss", loss, series_of(&t, "val_loss")};
    for (int i = 0; i < t.ncols; i++) {
        const char *n = t.names[i];
        if (i == loss || i == epoch || !strcmp(n, "val_loss")) continue;
        if (!strncmp(n, "val_", 4)) {
            if (col_of(&t, n + 4) < 0 && series_of(&t, n) >= 0)
                p[np++] = (panel){n + 4, -1, i}; /* no training twin */
            continue;
        }
        snprintf(vname, sizeof vname, "val_%s", n);
        p[np++] = (panel){n, i, series_of(&t, vname)};
    }
    for (int r = 0; r < t.nrows; r++) /* CSVLogger counts epochs from 0, Keras's bar from 1 */
        x[r] = epoch >= 0 ? t.v[(size_t)r * t.ncols + epoch] + 1 : r + 1;

    int cols = np <= 3 ? np : (np == 4 ? 2 : 3), rows = (np + cols - 1) / cols;
    const double PW = 520, PH = 380, TITLE = 44;
    int W = (int)(cols * PW), H = (int)(rows * PH + TITLE);
    if (H > MAX_SIDE) {
        free(p), free(x), csv_free(&t);
        return fail(err, errlen, "%s: %d metrics, too many panels to draw in %s", csv_path, np, out_png);
    }
    cairo_surface_t *s;
    cairo_t *cr = new_canvas(W, H, &s);
    const char *base = strrchr(csv_path, '/');
    base = base ? base + 1 : csv_path;
    char tb[512];
    font(cr, 16, 0);
    set_rgb(cr, TEXT);
    text(cr, W / 2.0, 12, fit(cr, title ? title : base, W - 20, tb, sizeof tb), 0.5, 0, 0);
    for (int i = 0; i < np; i++)
        draw_panel(cr, &t, x, &p[i], (i % cols) * PW, TITLE + (i / cols) * PH, PW, PH);
    int rc = finish(cr, s, out_png, err, errlen);
    free(p), free(x), csv_free(&t);
    return rc;
}

int kp_plot_history_csv(const char *csv_path, const char *out_png, const char *title, char *err,
                        size_t errlen) {
    if (!csv_path || !out_png) return fail(err, errlen, "plot: the CSV path or the PNG path is NULL");
    csv_table t;
    if (csv_read(csv_path, &t, err, errlen)) return -1;
    return plot_table(&t, csv_path, out_png, title, err, errlen);
}

int kp_plot_history(const char *const *keys, const double *const *values, int n_keys, int epochs,
                    int first_epoch, const char *title, const char *out_png, char *err,
                    size_t errlen) {
    if (!keys || !values || !out_png || n_keys <= 0 || epochs <= 0)
        return fail(err, errlen, "plot: no history to draw into %s", out_png ? out_png : "(NULL)");
    if (n_keys + 1 > MAX_COLS)
        return fail(err, errlen, "plot: %d metrics, more than %d", n_keys, MAX_COLS - 1);
    csv_table t = {.ncols = n_keys + 1, .nrows = epochs};
    t.names = calloc((size_t)t.ncols, sizeof *t.names);
    t.v = malloc(sizeof(double) * (size_t)t.ncols * (size_t)epochs);
    if (t.names && (t.names[0] = strdup("epoch")))
        for (int k = 0; k < n_keys && t.names[k]; k++) t.names[k + 1] = strdup(keys[k]);
    if (!t.v || !t.names || !t.names[t.ncols - 1]) {
        csv_free(&t);
        return fail(err, errlen, "plot: out of memory for %s", out_png);
    }
    for (int r = 0; r < epochs; r++) { /* as CSVLogger writes it: epochs from 0 */
        t.v[(size_t)r * t.ncols] = first_epoch + r;
        for (int k = 0; k < n_keys; k++)
            t.v[(size_t)r * t.ncols + k + 1] = isfinite(values[k][r]) ? values[k][r] : NAN;
    }
    return plot_table(&t, "history", out_png, title ? title : "learning curves", err, errlen);
}

/* the smallest of 1, 2, 5, 10, 20, 50, ... at least need */
static int nice_step(double need) {
    for (int m = 1;; m *= 10) {
        if (m >= need) return m;
        if (2 * m >= need) return 2 * m;
        if (5 * m >= need) return 5 * m;
        if (m > 100000) return m * 10;
    }
}

/* ---- confusion matrix ----------------------------------------------------------------------- */

/* matplotlib's "Blues", white to dark blue */
static rgb blues(double v) {
    static const rgb stops[9] = {{0.969, 0.984, 1.000}, {0.871, 0.922, 0.969}, {0.776, 0.859, 0.937},
                                 {0.620, 0.792, 0.882}, {0.420, 0.682, 0.839}, {0.259, 0.573, 0.776},
                                 {0.129, 0.443, 0.710}, {0.031, 0.318, 0.612}, {0.031, 0.188, 0.420}};
    if (!(v > 0)) return stops[0];
    if (v >= 1) return stops[8];
    double f = v * 8;
    int i = (int)f;
    f -= i;
    return (rgb){stops[i].r + (stops[i + 1].r - stops[i].r) * f, stops[i].g + (stops[i + 1].g - stops[i].g) * f,
                 stops[i].b + (stops[i + 1].b - stops[i].b) * f};
}

int kp_plot_confusion(const int64_t *counts, int n, const char *const *class_names, const char *title,
                      const char *out_png, char *err, size_t errlen) {
    if (!out_png) return fail(err, errlen, "plot: the PNG path is NULL");
    if (n <= 0) return fail(err, errlen, "%s: the confusion matrix needs at least 1 class (n = %d)", out_png, n);
    if (n > 3000) return fail(err, errlen, "%s: %d classes, too many to draw (at most 3000)", out_png, n);
    if (!counts) return fail(err, errlen, "%s: the counts are NULL", out_png);
    int64_t total = 0, diag = 0, maxc = 0;
    for (int t = 0; t < n; t++)
        for (int p = 0; p < n; p++) {
            int64_t c = counts[(size_t)t * n + p];
            if (c < 0)
                return fail(err, errlen, "%s: count for true class %d, predicted %d is negative (%" PRId64 ")",
                            out_png, t, p, c);
            if (c > INT64_MAX - total) return fail(err, errlen, "%s: the counts overflow", out_png);
            total += c;
            if (t == p) diag += c;
            if (c > maxc) maxc = c;
        }

    /* measure: cell size, labels (long names cut at 160 px), which labels fit */
    cairo_surface_t *s0 = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *m = cairo_create(s0);
    double cell = floor(fmin(120, fmax(4, 640.0 / n))); /* 2 classes: 120 px, 10: 64, 100: 6 */
    font(m, 12, 0);
    double fh = font_h(m), namew = 0;
    char lb[256], nb[32];
    for (int i = 0; i < n; i++) {
        const char *nm = class_names && class_names[i] ? class_names[i] : (snprintf(nb, sizeof nb, "%d", i), nb);
        namew = fmax(namew, text_w(m, fit(m, nm, 160, lb, sizeof lb)));
    }
    /* label every lstep-th class (1, 2, 5, 10, 20, ...), x labels level when short names fit,
     * else at 45 degrees as plt.xticks(rotation=45) */
    double need = fh * 1.15 / cell;
    int rotate = namew > 48 || namew > cell * nice_step(need) - 6;
    if (!rotate) need = fmax(need, (namew + 8) / cell);
    int lstep = nice_step(need);
    cairo_destroy(m);
    cairo_surface_destroy(s0);

    double mat = cell * n, c45 = M_SQRT1_2;
    double xlab_h = rotate ? (namew + fh) * c45 : fh;
    double left = 16 + fh + 10 + namew + 8;
    if (rotate) left = fmax(left, namew * c45 + 10);
    double top = 12 + 22 + 6 + 18 + 14, bottom = 6 + xlab_h + 10 + fh + 14;
    double cbw = 18, right = 16 + cbw + 8 + 60;
    long W = (long)ceil(left + mat + right), H = (long)ceil(top + mat + bottom);
    if (W > MAX_SIDE || H > MAX_SIDE)
        return fail(err, errlen, "%s: %ldx%ld pixels, too large to draw", out_png, W, H);

    cairo_surface_t *s;
    cairo_t *cr = new_canvas((int)W, (int)H, &s);
    char tb[512], sub[160];
    font(cr, 16, 0);
    set_rgb(cr, TEXT);
    centred(cr, left + mat / 2, 12, fit(cr, title ? title : "Confusion matrix", W - 20, tb, sizeof tb), W);
    if (total > 0)
        snprintf(sub, sizeof sub, "accuracy %.4f (%" PRId64 " of %" PRId64 " correct)", (double)diag / total,
                 diag, total);
    else
        snprintf(sub, sizeof sub, "no samples");
    font(cr, 13, 0);
    centred(cr, left + mat / 2, 12 + 22 + 6, sub, W);

    /* cells */
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
    for (int t = 0; t < n; t++)
        for (int p = 0; p < n; p++) {
            double v = maxc ? (double)counts[(size_t)t * n + p] / maxc : 0;
            set_rgb(cr, blues(v));
            cairo_rectangle(cr, left + p * cell, top + t * cell, cell, cell);
            cairo_fill(cr);
        }
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);
    /* counts in the cells, when the largest fits */
    char num[32];
    snprintf(num, sizeof num, "%" PRId64, maxc);
    double fs = fmin(14, cell * 0.3);
    font(cr, fs, 0);
    double w = text_w(cr, num);
    if (w > cell - 6) fs *= (cell - 6) / w;
    if (fs >= 7) {
        font(cr, fs, 0);
        for (int t = 0; t < n; t++)
            for (int p = 0; p < n; p++) {
                int64_t c = counts[(size_t)t * n + p];
                double v = maxc ? (double)c / maxc : 0;
                if (v > 0.5) cairo_set_source_rgb(cr, 1, 1, 1);
                else set_rgb(cr, TEXT);
                snprintf(num, sizeof num, "%" PRId64, c);
                text(cr, left + (p + 0.5) * cell, top + (t + 0.5) * cell, num, 0.5, 0.5, 0);
            }
    }
    /* frame, ticks, labels */
    set_rgb(cr, BLACK);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, floor(left) + 0.5, floor(top) + 0.5, mat, mat);
    cairo_stroke(cr);
    font(cr, 12, 0);
    set_rgb(cr, TEXT);
    for (int i = 0; i < n; i += lstep) {
        const char *nm = class_names && class_names[i] ? class_names[i] : (snprintf(nb, sizeof nb, "%d", i), nb);
        fit(cr, nm, 160, lb, sizeof lb);
        double X = floor(left + (i + 0.5) * cell) + 0.5, Y = floor(top + (i + 0.5) * cell) + 0.5;
        cairo_move_to(cr, X, floor(top + mat) + 0.5);
        cairo_line_to(cr, X, floor(top + mat) + 5);
        cairo_move_to(cr, floor(left) + 0.5, Y);
        cairo_line_to(cr, floor(left) - 4.5, Y);
        cairo_stroke(cr);
        if (rotate) text(cr, X + 3, top + mat + 6, lb, 1, 0.2, M_PI / 4);
        else text(cr, X, top + mat + 7, lb, 0.5, 0, 0);
        text(cr, left - 8, Y, lb, 1, 0.5, 0);
    }
    font(cr, 13, 0);
    text(cr, left + mat / 2, top + mat + 6 + xlab_h + 10, "Predicted label", 0.5, 0, 0);
    text(cr, 14, top + mat / 2, "True label", 0.5, 0, M_PI / 2);

    /* colour bar */
    double cx = left + mat + 16;
    cairo_pattern_t *g = cairo_pattern_create_linear(0, top + mat, 0, top);
    for (int i = 0; i <= 8; i++) {
        rgb c = blues(i / 8.0);
        cairo_pattern_add_color_stop_rgb(g, i / 8.0, c.r, c.g, c.b);
    }
    cairo_set_source(cr, g);
    cairo_rectangle(cr, cx, top, cbw, mat);
    cairo_fill(cr);
    cairo_pattern_destroy(g);
    set_rgb(cr, BLACK);
    cairo_rectangle(cr, floor(cx) + 0.5, floor(top) + 0.5, cbw, mat);
    cairo_stroke(cr);
    double ct[64];
    int cdec, nct = nice_ticks(0, maxc > 0 ? (double)maxc : 1, mat > 200 ? 6 : 3, 1, ct, &cdec);
    font(cr, 11, 0);
    set_rgb(cr, TEXT);
    for (int i = 0; i < nct; i++) {
        double Y = floor(top + mat - ct[i] / (maxc > 0 ? (double)maxc : 1) * mat) + 0.5;
        cairo_move_to(cr, cx + cbw, Y);
        cairo_line_to(cr, cx + cbw + 4, Y);
        cairo_stroke(cr);
        snprintf(num, sizeof num, "%.0f", ct[i]);
        text(cr, cx + cbw + 7, Y, num, 0, 0.5, 0);
    }
    int rc = finish(cr, s, out_png, err, errlen);
    return rc;
}

/* ---- image grid ----------------------------------------------------------------------------- */

int kp_plot_image_grid(const uint8_t *images, int count, int height, int width, int channels,
                       const char *const *captions, const int *highlight, int cols, const char *title,
                       const char *out_png, char *err, size_t errlen) {
    if (!out_png) return fail(err, errlen, "plot: the PNG path is NULL");
    if (count <= 0) return fail(err, errlen, "%s: no images to draw (count = %d)", out_png, count);
    if (!images) return fail(err, errlen, "%s: the images are NULL", out_png);
    if (height <= 0 || width <= 0 || height > MAX_SIDE || width > MAX_SIDE)
        return fail(err, errlen, "%s: image size %dx%d is not drawable", out_png, height, width);
    if (channels != 1 && channels != 3)
        return fail(err, errlen, "%s: %d channels, expected 1 (grey) or 3 (RGB)", out_png, channels);
    if (cols < 0) return fail(err, errlen, "%s: cols = %d is negative", out_png, cols);

    int scale = (int)ceil(64.0 / (height < width ? height : width));
    if (scale < 1) scale = 1;
    while (scale > 1 && (long)width * scale > 1024) scale--;
    int iw = width * scale, ih = height * scale;
    if (cols == 0) {
        cols = (int)ceil(sqrt((double)count));
        if (cols > 10) cols = 10;
    }
    if (cols > count) cols = count;
    int rows = (count + cols - 1) / cols;

    cairo_surface_t *s0 = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *m = cairo_create(s0);
    font(m, 12, 0);
    double fh = font_h(m), capw = 0;
    if (captions)
        for (int i = 0; i < count; i++)
            if (captions[i]) capw = fmax(capw, text_w(m, captions[i]));
    cairo_destroy(m);
    cairo_surface_destroy(s0);
    double cw = fmax(iw, fmin(capw, fmax(2.0 * iw, 120))) + 12; /* captions widen a cell, up to a point */
    double caph = captions ? fh + 4 : 0, ch = ih + caph + 12;
    double top = title ? 44 : 10;
    double Wd = cols * cw + 20, Hd = top + rows * ch + 10;
    if (Wd > MAX_SIDE || Hd > MAX_SIDE || Wd * Hd > (double)MAX_AREA)
        return fail(err, errlen, "%s: %d images of %dx%d make a %.0fx%.0f picture, too large", out_png, count,
                    height, width, Wd, Hd);
    int W = (int)ceil(Wd), H = (int)ceil(Hd);

    cairo_surface_t *s;
    cairo_t *cr = new_canvas(W, H, &s);
    cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    if (cairo_surface_status(img)) {
        cairo_destroy(cr), cairo_surface_destroy(s), cairo_surface_destroy(img);
        return fail(err, errlen, "%s: out of memory", out_png);
    }
    char tb[512], cb[512];
    if (title) {
        font(cr, 16, 0);
        set_rgb(cr, TEXT);
        text(cr, W / 2.0, 12, fit(cr, title, W - 20, tb, sizeof tb), 0.5, 0, 0);
    }
    font(cr, 12, 0);
    size_t isz = (size_t)height * width * channels;
    for (int i = 0; i < count; i++) {
        double cx = 10 + (i % cols) * cw, cy = top + (i / cols) * ch;
        double ix = floor(cx + (cw - iw) / 2), iy = floor(cy + caph + 4);
        const uint8_t *src = images + isz * i;
        cairo_surface_flush(img);
        unsigned char *d = cairo_image_surface_get_data(img);
        int stride = cairo_image_surface_get_stride(img);
        for (int y = 0; y < height; y++) {
            uint32_t *row = (uint32_t *)(d + (size_t)y * stride);
            for (int x = 0; x < width; x++) {
                const uint8_t *px = src + ((size_t)y * width + x) * channels;
                uint32_t r = px[0], g = channels == 3 ? px[1] : r, b = channels == 3 ? px[2] : r;
                row[x] = r << 16 | g << 8 | b;
            }
        }
        cairo_surface_mark_dirty(img);
        cairo_save(cr);
        cairo_translate(cr, ix, iy);
        cairo_scale(cr, scale, scale);
        cairo_set_source_surface(cr, img, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
        cairo_rectangle(cr, 0, 0, width, height);
        cairo_fill(cr);
        cairo_restore(cr);
        int hl = highlight && highlight[i];
        if (hl) {
            set_rgb(cr, RED);
            cairo_set_line_width(cr, 2);
            cairo_rectangle(cr, ix - 1, iy - 1, iw + 2, ih + 2);
            cairo_stroke(cr);
        }
        if (captions && captions[i]) {
            if (hl) set_rgb(cr, RED);
            else set_rgb(cr, TEXT);
            text(cr, cx + cw / 2, cy + 2, fit(cr, captions[i], cw - 4, cb, sizeof cb), 0.5, 0, 0);
        }
    }
    cairo_surface_destroy(img);
    int rc = finish(cr, s, out_png, err, errlen);
    return rc;
}

void kp_plot_cleanup(void) {
    cairo_debug_reset_static_data();
    FcFini();
}
