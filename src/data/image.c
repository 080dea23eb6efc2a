/* image.c: decoding PNG (libpng), JPEG (libjpeg-turbo), uncompressed BMP and PGM/PPM into 8-bit HWC pixels, the
 * color conversions and the bilinear resize of Keras's image_dataset_from_directory, and an
 * atomic PNG writer. */
#include "../internal.h"
#include "../io/io.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jpeglib.h>
#include <jerror.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SIDE 65535
/* PIL's decompression-bomb limit (2 x Image.MAX_IMAGE_PIXELS): Keras's loaders, through PIL,
 * refuse larger images, and so does kerac (before allocating) */
#define MAX_PIXELS ((int64_t)2 * 89478485)

void kc_image_free(kc_image *img) {
    if (!img) return;
    kc_free(img->data);
    memset(img, 0, sizeof *img);
}

static kc_status check_size(const char *path, int64_t h, int64_t w) {
    if (h <= 0 || w <= 0 || h > MAX_SIDE || w > MAX_SIDE)
        return kc_err(KC_EFORMAT, "%s: image size %lldx%lld is empty or too large", path,
                      (long long)h, (long long)w);
    if (h * w > MAX_PIXELS)
        return kc_err(KC_EFORMAT, "%s: image size %lldx%lld is over %lld pixels, the limit of PIL "
                      "(and so of Keras's image loaders)", path, (long long)h, (long long)w,
                      (long long)MAX_PIXELS);
    return KC_OK;
}

/* bytes of f from here to its end (-1 when unknown: not a regular file) */
static int64_t bytes_left(FILE *f) {
    struct stat sb;
    long at = ftell(f);
    if (at < 0 || fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) return -1;
    return (int64_t)sb.st_size > at ? (int64_t)sb.st_size - at : 0;
}

static kc_status alloc_image(const char *path, kc_image *img, int h, int w, int c) {
    img->height = h, img->width = w, img->channels = c;
    img->data = kc_alloc((size_t)h * (size_t)w * (size_t)c);
    if (!img->data) return kc_err_prefix(KC_ENOMEM, "%s", path);
    return KC_OK;
}

/* ---- PNG ------------------------------------------------------------------------------------ */

typedef struct {
    jmp_buf jmp;
    char msg[256];
} png_err_ctx;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_err_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
    longjmp(ctx->jmp, 1);
}
static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static kc_status decode_png(const char *path, FILE *f, kc_image *out) {
    png_err_ctx ctx = {.msg = ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return kc_err(KC_ENOMEM, "%s: cannot start libpng", path);
    }
    /* volatile: set between setjmp and a longjmp back to it */
    kc_image *volatile img = out;
    uint8_t **volatile rows = NULL;
    if (setjmp(ctx.jmp)) {
        free(rows);
        kc_image_free(img);
        png_destroy_read_struct(&png, &info, NULL);
        return kc_err(KC_EFORMAT, "%s: not a valid PNG: %s", path, ctx.msg);
    }
    png_init_io(png, f);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int type = png_get_color_type(png, info);
    /* to 8-bit gray, gray+alpha, RGB or RGBA, as PIL and TF read PNGs (no gamma correction) */
    png_set_expand(png);
    png_set_strip_16(png);
    png_set_packing(png);
    if (type == PNG_COLOR_TYPE_GRAY_ALPHA || (type == PNG_COLOR_TYPE_GRAY && png_get_valid(png, info, PNG_INFO_tRNS)))
        png_set_gray_to_rgb(png); /* gray with alpha becomes RGBA (1, 3 or 4 channels only) */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int c = png_get_channels(png, info);
    if (check_size(path, h, w) != KC_OK || (c != 1 && c != 3 && c != 4)) {
        png_destroy_read_struct(&png, &info, NULL);
        return c != 1 && c != 3 && c != 4
                   ? kc_err(KC_EFORMAT, "%s: PNG of %d channels after expansion", path, c)
                   : KC_EFORMAT;
    }
    if (alloc_image(path, img, (int)h, (int)w, c) != KC_OK) {
        png_destroy_read_struct(&png, &info, NULL);
        return KC_ENOMEM;
    }
    rows = malloc(h * sizeof *rows);
    if (!rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = img->data + (size_t)y * w * (size_t)c;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return KC_OK;
}

/* ---- JPEG ----------------------------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jmp;
} jpeg_err_ctx;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_err_ctx *ctx = (jpeg_err_ctx *)cinfo->err;
    longjmp(ctx->jmp, 1);
}
/* compressed data that ends early (the file, or the segment at a marker) is refused: libjpeg
 * would otherwise make up the missing rest of the declared image, which from a few hundred
 * bytes can be 2^30 pixels and minutes of decoding (found by fuzz_image). PIL refuses a cut
 * file too (without LOAD_TRUNCATED_IMAGES), as TF's decode_jpeg does. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    int code = cinfo->err->msg_code;
    if (level < 0 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER))
        cinfo->err->error_exit(cinfo);
}

/* to RGB (or the file's gray), as PIL; grayscale comes after, from RGB, as PIL's "L" */
static kc_status decode_jpeg(const char *path, FILE *f, kc_image *out) {
    struct jpeg_decompress_struct cinfo;
    jpeg_err_ctx err;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_on_error;
    err.mgr.emit_message = jpeg_on_message;
    kc_image *volatile img = out;
    if (setjmp(err.jmp)) {
        char msg[JMSG_LENGTH_MAX];
        err.mgr.format_message((j_common_ptr)&cinfo, msg);
        jpeg_destroy_decompress(&cinfo);
        kc_image_free(img);
        return kc_err(KC_EFORMAT, "%s: not a valid JPEG: %s", path, msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    /* as TF's decode_jpeg and PIL: accurate integer IDCT, fancy upsampling */
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK)
        cinfo.out_color_space = JCS_CMYK;
    else if (cinfo.jpeg_color_space != JCS_GRAYSCALE)
        cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int c = cinfo.output_components;
    if (check_size(path, cinfo.output_height, cinfo.output_width) != KC_OK) {
        jpeg_destroy_decompress(&cinfo);
        return KC_EFORMAT;
    }
    if (alloc_image(path, img, (int)cinfo.output_height, (int)cinfo.output_width, c) != KC_OK) {
        jpeg_destroy_decompress(&cinfo);
        return KC_ENOMEM;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = img->data + (size_t)cinfo.output_scanline * cinfo.output_width * (size_t)c;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (c == 4) { /* Adobe's inverted CMYK to RGB, as PIL */
        size_t n = (size_t)img->height * (size_t)img->width;
        uint8_t *p = img->data;
        for (size_t i = 0; i < n; i++) {
            int k = p[4 * i + 3];
            for (int j = 0; j < 3; j++) p[3 * i + j] = (uint8_t)((p[4 * i + j] * k + 127) / 255);
        }
        img->channels = 3;
    }
    return KC_OK;
}

/* ---- PGM / PPM (P2, P3, P5, P6) --------------------------------------------------------------- */

static int pnm_skip(FILE *f) { /* whitespace and # comments; returns the next char */
    int ch;
    for (;;) {
        ch = getc(f);
        if (ch == '#') {
            while (ch != '\n' && ch != EOF) ch = getc(f);
        } else if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r' && ch != '\v' && ch != '\f') {
            return ch;
        }
    }
}

static int pnm_int(FILE *f, long *v) {
    int ch = pnm_skip(f);
    if (ch < '0' || ch > '9') return -1;
    long x = 0;
    while (ch >= '0' && ch <= '9') {
        if (x > 100000000) return -1;
        x = x * 10 + (ch - '0');
        ch = getc(f);
    }
    if (ch != EOF) ungetc(ch, f);
    *v = x;
    return 0;
}

static kc_status decode_pnm(const char *path, FILE *f, kc_image *img) {
    int kind = (getc(f), getc(f)) - '0'; /* "P" then the digit */
    int c = kind == 2 || kind == 5 ? 1 : 3, ascii = kind == 2 || kind == 3;
    long w, h, maxval;
    if (pnm_int(f, &w) || pnm_int(f, &h) || pnm_int(f, &maxval))
        return kc_err(KC_EFORMAT, "%s: not a valid PGM/PPM: bad header", path);
    if (maxval < 1 || maxval > 255)
        return kc_err(KC_EFORMAT, "%s: PGM/PPM maxval %ld: only 8-bit images (1..255) are read", path,
                      maxval);
    kc_status st = check_size(path, h, w);
    /* the samples must be in the file: a byte each after the header's last whitespace, or
     * (ASCII) a digit and a separator each */
    int64_t left = bytes_left(f);
    if (left > 0 && !ascii) left--;
    if (!st && left >= 0 && (int64_t)h * w * c > (ascii ? left / 2 + 1 : left))
        st = kc_err(KC_EFORMAT, "%s: not a valid PGM/PPM: %ldx%ld pixels do not fit in its %lld "
                    "bytes of data", path, h, w, (long long)left);
    if (st == KC_OK) st = alloc_image(path, img, (int)h, (int)w, c);
    if (st) return st;
    size_t n = (size_t)h * (size_t)w * (size_t)c;
    if (ascii) {
        for (size_t i = 0; i < n; i++) {
            long v;
            if (pnm_int(f, &v) || v > maxval) {
                kc_image_free(img);
                return kc_err(KC_EFORMAT, "%s: not a valid PGM/PPM: sample %zu is missing or above "
                              "maxval %ld", path, i, maxval);
            }
            img->data[i] = (uint8_t)v;
        }
    } else {
        getc(f); /* the single whitespace after maxval */
        if (fread(img->data, 1, n, f) != n) {
            kc_image_free(img);
            return kc_err(KC_EFORMAT, "%s: not a valid PGM/PPM: truncated pixel data", path);
        }
    }
    if (maxval != 255) /* scaled to 0..255 as PIL does */
        for (size_t i = 0; i < n; i++) img->data[i] = (uint8_t)((img->data[i] * 255 + maxval / 2) / maxval);
    return KC_OK;
}

/* ---- BMP: uncompressed 24- and 32-bit, 8-bit with a palette ---------------------------------- */

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static kc_status decode_bmp(const char *path, FILE *f, kc_image *img) {
    uint8_t h[54], pal[1024];
    if (fread(h, 1, 54, f) != 54) return kc_err(KC_EFORMAT, "%s: not a valid BMP: truncated header", path);
    uint32_t offset = le32(h + 10), hsize = le32(h + 14), compression = le32(h + 30);
    int32_t w = (int32_t)le32(h + 18), hh = (int32_t)le32(h + 22);
    int bits = h[28] | h[29] << 8;
    if (hsize < 40)
        return kc_err(KC_EFORMAT, "%s: BMP with a %u-byte header (OS/2?) is not read by kerac", path, hsize);
    if (compression != 0 || (bits != 8 && bits != 24 && bits != 32))
        return kc_err(KC_EFORMAT, "%s: BMP of %d bits with compression %u: kerac reads uncompressed 8-, "
                      "24- and 32-bit BMPs", path, bits, compression);
    int top_down = hh < 0;
    int64_t height = top_down ? -(int64_t)hh : hh;
    kc_status st = check_size(path, height, w);
    if (st) return st;
    uint32_t colors = 0;
    if (bits == 8) {
        colors = le32(h + 46);
        if (colors == 0 || colors > 256) colors = 256;
        if (fseek(f, 14 + (long)hsize, SEEK_SET) != 0 || fread(pal, 4, colors, f) != colors)
            return kc_err(KC_EFORMAT, "%s: not a valid BMP: truncated palette", path);
    }
    int gray = bits == 8;
    for (uint32_t i = 0; i < colors && gray; i++) gray = pal[4 * i] == pal[4 * i + 1] && pal[4 * i + 1] == pal[4 * i + 2];
    int c = gray ? 1 : 3;
    size_t stride = ((size_t)w * (size_t)bits / 8 + 3) & ~(size_t)3;
    /* uncompressed: every row must be in the file before anything is allocated */
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) &&
        (int64_t)offset + (int64_t)stride * height > (int64_t)sb.st_size)
        return kc_err(KC_EFORMAT, "%s: not a valid BMP: %" PRId64 " rows of %zu bytes from byte %u "
                      "do not fit in its %lld bytes", path, height, stride, offset,
                      (long long)sb.st_size);
    uint8_t *row = malloc(stride);
    if (!row) return kc_err(KC_ENOMEM, "%s: out of memory", path);
    st = alloc_image(path, img, (int)height, w, c);
    if (!st && fseek(f, (long)offset, SEEK_SET) != 0) st = kc_err(KC_EFORMAT, "%s: not a valid BMP: bad offset", path);
    for (int64_t y = 0; y < height && !st; y++) {
        if (fread(row, 1, stride, f) != stride) {
            st = kc_err(KC_EFORMAT, "%s: not a valid BMP: truncated pixel data (row %" PRId64 ")", path, y);
            break;
        }
        uint8_t *q = img->data + (size_t)(top_down ? y : height - 1 - y) * (size_t)w * (size_t)c;
        for (int x = 0; x < w; x++) {
            const uint8_t *p = bits == 8 ? pal + 4 * (row[x] < colors ? row[x] : 0) : row + (size_t)x * (size_t)(bits / 8);
            if (c == 1) q[x] = p[0];
            else q[3 * x] = p[2], q[3 * x + 1] = p[1], q[3 * x + 2] = p[0]; /* BGR(X) to RGB */
        }
    }
    free(row);
    if (st) kc_image_free(img);
    return st;
}

/* ---- color and size --------------------------------------------------------------------------- */

static kc_status convert_channels(const char *path, kc_image *img, int want) {
    int c = img->channels;
    if (want == 0 || want == c) return KC_OK;
    size_t n = (size_t)img->height * (size_t)img->width;
    uint8_t *dst = kc_alloc(n * (size_t)want), *src = img->data;
    if (!dst) return kc_err_prefix(KC_ENOMEM, "%s", path);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = src + i * (size_t)c;
        uint8_t *q = dst + i * (size_t)want;
        int r = p[0], g = c >= 3 ? p[1] : p[0], b = c >= 3 ? p[2] : p[0], a = c == 4 ? p[3] : 255;
        if (want == 1) {
            q[0] = (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
        } else {
            q[0] = (uint8_t)r, q[1] = (uint8_t)g, q[2] = (uint8_t)b;
            if (want == 4) q[3] = (uint8_t)a;
        }
    }
    kc_free(src);
    img->data = dst;
    img->channels = want;
    return KC_OK;
}

/* tf.image.resize(method="bilinear", antialias=False): half-pixel centers */
static kc_status resize_bilinear(const char *path, kc_image *img, int oh, int ow) {
    int ih = img->height, iw = img->width, c = img->channels;
    if (oh == ih && ow == iw) return KC_OK;
    uint8_t *dst = kc_alloc((size_t)oh * (size_t)ow * (size_t)c);
    int *x0 = malloc((size_t)ow * 2 * sizeof *x0);
    float *xl = malloc((size_t)ow * sizeof *xl);
    if (!dst || !x0 || !xl) {
        kc_free(dst), free(x0), free(xl);
        return kc_err(KC_ENOMEM, "%s: out of memory resizing", path);
    }
    int *x1 = x0 + ow;
    float sy = (float)ih / (float)oh, sx = (float)iw / (float)ow;
    for (int x = 0; x < ow; x++) {
        float in = ((float)x + 0.5f) * sx - 0.5f, fl = floorf(in);
        x0[x] = fl < 0 ? 0 : (int)fl;
        x1[x] = (int)ceilf(in) > iw - 1 ? iw - 1 : (int)ceilf(in);
        if (x1[x] < 0) x1[x] = 0;
        xl[x] = in - fl;
    }
    for (int y = 0; y < oh; y++) {
        float in = ((float)y + 0.5f) * sy - 0.5f, fl = floorf(in);
        int y0 = fl < 0 ? 0 : (int)fl, y1 = (int)ceilf(in) > ih - 1 ? ih - 1 : (int)ceilf(in);
        if (y1 < 0) y1 = 0;
        float yl = in - fl;
        const uint8_t *r0 = img->data + (size_t)y0 * iw * c, *r1 = img->data + (size_t)y1 * iw * c;
        uint8_t *q = dst + (size_t)y * ow * c;
        for (int x = 0; x < ow; x++)
            for (int k = 0; k < c; k++) {
                float tl = r0[x0[x] * c + k], tr = r0[x1[x] * c + k];
                float bl = r1[x0[x] * c + k], br = r1[x1[x] * c + k];
                float top = tl + (tr - tl) * xl[x], bot = bl + (br - bl) * xl[x];
                float v = top + (bot - top) * yl;
                q[x * c + k] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : lrintf(v));
            }
    }
    free(x0), free(xl);
    kc_free(img->data);
    img->data = dst;
    img->height = oh, img->width = ow;
    return KC_OK;
}

kc_status kc_image_load(const char *path, int channels, int height, int width, kc_image *out) {
    if (!path || !out) return kc_err(KC_EINVAL, "kc_image_load: needs a path and an output");
    memset(out, 0, sizeof *out);
    if (channels != 0 && channels != 1 && channels != 3 && channels != 4)
        return kc_err(KC_EINVAL, "kc_image_load: channels must be 0, 1, 3 or 4, found %d", channels);
    if (height < 0 || width < 0 || (!height != !width) || height > MAX_SIDE || width > MAX_SIDE)
        return kc_err(KC_EINVAL, "kc_image_load: height and width must both be 0 or both in 1..%d, "
                      "found %dx%d", MAX_SIDE, height, width);
    FILE *f = fopen(path, "rb");
    if (!f) return kc_err(KC_EIO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    rewind(f);
    kc_status st;
    if (got >= 8 && !png_sig_cmp(magic, 0, 8)) st = decode_png(path, f, out);
    else if (got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF)
        st = decode_jpeg(path, f, out);
    else if (got >= 2 && magic[0] == 'P' && magic[1] >= '2' && magic[1] <= '6' && magic[1] != '4')
        st = decode_pnm(path, f, out);
    else if (got >= 2 && magic[0] == 'B' && magic[1] == 'M')
        st = decode_bmp(path, f, out);
    else if (got >= 3 && !memcmp(magic, "GIF", 3))
        st = kc_err(KC_EFORMAT, "%s: GIF images are not decoded by kerac (PNG, JPEG, BMP, PGM/PPM are)", path);
    else
        st = kc_err(KC_EFORMAT, "%s: not an image kerac decodes (PNG, JPEG, BMP, PGM/PPM)", path);
    fclose(f);
    if (st == KC_OK) st = convert_channels(path, out, channels);
    if (st == KC_OK && height) st = resize_bilinear(path, out, height, width);
    if (st != KC_OK) kc_image_free(out);
    return st;
}

/* ---- writing PNG ------------------------------------------------------------------------------ */

/* libpng's output into a growing buffer */
typedef struct {
    unsigned char *data;
    size_t len, cap;
    int failed;
} png_mem;

static void png_mem_write(png_structp png, png_bytep data, png_size_t n) {
    png_mem *m = png_get_io_ptr(png);
    if (m->failed) return;
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->len + n) cap *= 2;
        unsigned char *p = realloc(m->data, cap);
        if (!p) {
            m->failed = 1;
            return;
        }
        m->data = p, m->cap = cap;
    }
    memcpy(m->data + m->len, data, n);
    m->len += n;
}
static void png_mem_flush(png_structp png) { (void)png; }

kc_status kc_image_save_png(const char *path, const kc_image *img) {
    if (!path || !img || !img->data || img->channels < 1 || img->channels > 4)
        return kc_err(KC_EINVAL, "kc_image_save_png: needs a path and an image of 1 to 4 channels");
    kc_status st = check_size(path, img->height, img->width);
    if (st) return st;
    /* encoded in memory, then written atomically (a temporary file beside it, renamed) */
    png_mem *volatile mem = calloc(1, sizeof *mem);
    if (!mem) return kc_err(KC_ENOMEM, "%s: out of memory for the PNG", path);
    png_err_ctx ctx = {.msg = ""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(ctx.jmp)) {
        png_destroy_write_struct(&png, &info);
        free(mem->data);
        free(mem);
        return kc_err(KC_EIO, "cannot write %s: %s", path, ctx.msg[0] ? ctx.msg : "cannot start libpng");
    }
    static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                 PNG_COLOR_TYPE_RGBA};
    png_set_write_fn(png, mem, png_mem_write, png_mem_flush);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8, types[img->channels],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < img->height; y++)
        png_write_row(png, img->data + (size_t)y * img->width * img->channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    st = mem->failed ? kc_err(KC_ENOMEM, "%s: out of memory encoding the PNG", path)
                     : kc_io_write_atomic(path, mem->data, mem->len);
    free(mem->data);
    free(mem);
    return st;
}
