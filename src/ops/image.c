/* image.c: the kernels of the image preprocessing layers (src/layers/preprocessing.c), on
 * channels-last images (h, w, c), each with its gradient: Keras's Resizing (jax.image.resize,
 * antialias off), the affine transforms of RandomRotation, RandomTranslation and RandomZoom
 * (jax.scipy.ndimage.map_coordinates with Keras's fill modes), flips and contrast. Each call
 * works on the calling thread; the layers split batches over the pool. */
#include "ops.h"
#include <math.h>
#include <string.h>

/* ---- resize ---- */

/* Bilinear taps of output o along an axis of virtual size v resized to out: jax.image.resize's
 * half-pixel sample s = (o + 0.5) * v / out - 0.5 and the triangle kernel, the taps outside
 * [0, v) dropped and the rest renormalised (which clamps at the edges) */
static void bilinear_tap(int o, int v, int out, int *i0, int *i1, float *w1) {
    float s = ((float)o + 0.5f) * ((float)v / (float)out) - 0.5f;
    float f = floorf(s);
    int lo = (int)f;
    float t = s - f;
    if (lo < 0) lo = 0, t = 0.0f;
    if (lo >= v - 1) lo = v - 1, t = 0.0f;
    *i0 = lo;
    *i1 = lo + 1 < v ? lo + 1 : lo;
    *w1 = t;
}

/* nearest: jax's floor((o + 0.5) * v / out) in float32 */
static int nearest_tap(int o, int v, int out) {
    int i = (int)floorf(((float)o + 0.5f) * (float)v / (float)out);
    return i < v ? i : v - 1;
}

/* pixel (vy, vx) of the virtual image: input (vy + y0, vx + x0), fill outside */
static inline const float *vpix(const float *in, int h, int w, int c, int y0, int x0, int vy,
                                int vx) {
    int y = vy + y0, x = vx + x0;
    if (y < 0 || y >= h || x < 0 || x >= w) return NULL;
    return in + ((int64_t)y * w + x) * c;
}

void kc_resize2d(const float *in, int n, int h, int w, int c, int y0, int x0, int vh, int vw,
                 float fill, int oh, int ow, int bilinear, float *out) {
    const int64_t in_image = (int64_t)h * w * c, out_image = (int64_t)oh * ow * c;
    for (int s = 0; s < n; s++, in += in_image, out += out_image)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float *o = out + ((int64_t)oy * ow + ox) * c;
                if (!bilinear) {
                    const float *p = vpix(in, h, w, c, y0, x0, nearest_tap(oy, vh, oh),
                                          nearest_tap(ox, vw, ow));
                    for (int k = 0; k < c; k++) o[k] = p ? p[k] : fill;
                    continue;
                }
                int ya, yb, xa, xb;
                float ty, tx;
                bilinear_tap(oy, vh, oh, &ya, &yb, &ty);
                bilinear_tap(ox, vw, ow, &xa, &xb, &tx);
                const float *p00 = vpix(in, h, w, c, y0, x0, ya, xa),
                            *p01 = vpix(in, h, w, c, y0, x0, ya, xb),
                            *p10 = vpix(in, h, w, c, y0, x0, yb, xa),
                            *p11 = vpix(in, h, w, c, y0, x0, yb, xb);
                for (int k = 0; k < c; k++) {
                    float a = (1 - tx) * (p00 ? p00[k] : fill) + tx * (p01 ? p01[k] : fill);
                    float b = (1 - tx) * (p10 ? p10[k] : fill) + tx * (p11 ? p11[k] : fill);
                    o[k] = (1 - ty) * a + ty * b;
                }
            }
}

static inline void vadd(float *din, int h, int w, int c, int y0, int x0, int vy, int vx,
                        const float *g, float wt) {
    int y = vy + y0, x = vx + x0;
    if (y < 0 || y >= h || x < 0 || x >= w || wt == 0.0f) return;
    float *d = din + ((int64_t)y * w + x) * c;
    for (int k = 0; k < c; k++) d[k] += wt * g[k];
}

void kc_resize2d_backward(const float *dout, int n, int h, int w, int c, int y0, int x0, int vh,
                          int vw, int oh, int ow, int bilinear, float *din) {
    const int64_t in_image = (int64_t)h * w * c, out_image = (int64_t)oh * ow * c;
    memset(din, 0, sizeof(float) * (size_t)(n * in_image));
    for (int s = 0; s < n; s++, din += in_image, dout += out_image)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *g = dout + ((int64_t)oy * ow + ox) * c;
                if (!bilinear) {
                    vadd(din, h, w, c, y0, x0, nearest_tap(oy, vh, oh), nearest_tap(ox, vw, ow),
                         g, 1.0f);
                    continue;
                }
                int ya, yb, xa, xb;
                float ty, tx;
                bilinear_tap(oy, vh, oh, &ya, &yb, &ty);
                bilinear_tap(ox, vw, ow, &xa, &xb, &tx);
                vadd(din, h, w, c, y0, x0, ya, xa, g, (1 - ty) * (1 - tx));
                vadd(din, h, w, c, y0, x0, ya, xb, g, (1 - ty) * tx);
                vadd(din, h, w, c, y0, x0, yb, xa, g, ty * (1 - tx));
                vadd(din, h, w, c, y0, x0, yb, xb, g, ty * tx);
            }
}

/* ---- affine transforms ---- */

static inline int64_t pymod(int64_t a, int64_t m) {
    int64_t r = a % m;
    return r < 0 ? r + m : r;
}

/* map_coordinates' index fixers: the input index of index i along an axis of size n, or -1
 * (constant mode, outside: the fill value) */
static inline int fix_index(int64_t i, int n, int mode) {
    switch (mode) {
    case KC_FILL_CONSTANT:
        return i >= 0 && i < n ? (int)i : -1;
    case KC_FILL_NEAREST:
        return i < 0 ? 0 : i >= n ? n - 1 : (int)i;
    case KC_FILL_WRAP:
        return (int)pymod(i, n);
    default: { /* reflect: (d c b a | a b c d | d c b a) */
        int64_t s = 2 * (int64_t)n; /* _mirror_index_fixer(2 i + 1, 2 n + 1) */
        int64_t m = pymod(2 * i + 1 + s, 2 * s) - s;
        if (m < 0) m = -m;
        return (int)((m - 1) / 2);
    }
    }
}

/* the source coordinates of output pixel (y, x): Keras's transform [a0 a1 a2 b0 b1 b2 c0 c1]
 * maps it to x' = a0 x + a1 y + a2, y' = b0 x + b1 y + b2 (c0 = c1 = 0) */
static inline void source(const float t[8], int y, int x, float *sy, float *sx) {
    *sy = ((float)y * t[4] + (float)x * t[3]) + t[5];
    *sx = ((float)y * t[1] + (float)x * t[0]) + t[2];
}

void kc_affine2d(const float *in, int h, int w, int c, const float t[8], int mode, int bilinear,
                 float fill, float *out) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float sy, sx, *o = out + ((int64_t)y * w + x) * c;
            source(t, y, x, &sy, &sx);
            if (!bilinear) {
                int iy = fix_index((int64_t)roundf(sy), h, mode),
                    ix = fix_index((int64_t)roundf(sx), w, mode);
                const float *p = iy < 0 || ix < 0 ? NULL : in + ((int64_t)iy * w + ix) * c;
                for (int k = 0; k < c; k++) o[k] = p ? p[k] : fill;
                continue;
            }
            float fy = floorf(sy), fx = floorf(sx);
            float wy1 = sy - fy, wx1 = sx - fx, wy0 = 1 - wy1, wx0 = 1 - wx1;
            int64_t ly = (int64_t)fy, lx = (int64_t)fx;
            int iy[2] = {fix_index(ly, h, mode), fix_index(ly + 1, h, mode)};
            int ix[2] = {fix_index(lx, w, mode), fix_index(lx + 1, w, mode)};
            float wt[4] = {wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1};
            const float *p[4];
            for (int q = 0; q < 4; q++) {
                int a = iy[q >> 1], b = ix[q & 1];
                p[q] = a < 0 || b < 0 ? NULL : in + ((int64_t)a * w + b) * c;
            }
            for (int k = 0; k < c; k++) {
                float acc = 0.0f;
                for (int q = 0; q < 4; q++) acc += wt[q] * (p[q] ? p[q][k] : fill);
                o[k] = acc;
            }
        }
}

void kc_affine2d_backward(const float *dout, int h, int w, int c, const float t[8], int mode,
                          int bilinear, float *din) {
    memset(din, 0, sizeof(float) * (size_t)h * (size_t)w * (size_t)c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float sy, sx;
            const float *g = dout + ((int64_t)y * w + x) * c;
            source(t, y, x, &sy, &sx);
            if (!bilinear) {
                int iy = fix_index((int64_t)roundf(sy), h, mode),
                    ix = fix_index((int64_t)roundf(sx), w, mode);
                if (iy < 0 || ix < 0) continue;
                float *d = din + ((int64_t)iy * w + ix) * c;
                for (int k = 0; k < c; k++) d[k] += g[k];
                continue;
            }
            float fy = floorf(sy), fx = floorf(sx);
            float wy1 = sy - fy, wx1 = sx - fx, wy0 = 1 - wy1, wx0 = 1 - wx1;
            int64_t ly = (int64_t)fy, lx = (int64_t)fx;
            int iy[2] = {fix_index(ly, h, mode), fix_index(ly + 1, h, mode)};
            int ix[2] = {fix_index(lx, w, mode), fix_index(lx + 1, w, mode)};
            float wt[4] = {wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1};
            for (int q = 0; q < 4; q++) {
                int a = iy[q >> 1], b = ix[q & 1];
                if (a < 0 || b < 0 || wt[q] == 0.0f) continue;
                float *d = din + ((int64_t)a * w + b) * c;
                for (int k = 0; k < c; k++) d[k] += wt[q] * g[k];
            }
        }
}

/* ---- flips and contrast ---- */

void kc_flip2d(const float *in, int h, int w, int c, int flip_h, int flip_v, float *out) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int sy = flip_v ? h - 1 - y : y, sx = flip_h ? w - 1 - x : x;
            memcpy(out + ((int64_t)y * w + x) * c, in + ((int64_t)sy * w + sx) * c,
                   sizeof(float) * (size_t)c);
        }
}

/* the per-channel means over the image (c floats into mean) */
static void channel_means(const float *in, int h, int w, int c, float *mean) {
    for (int k = 0; k < c; k++) {
        double s = 0;
        for (int64_t p = 0; p < (int64_t)h * w; p++) s += in[p * c + k];
        mean[k] = (float)(s / ((double)h * w));
    }
}

void kc_adjust_contrast(const float *in, int h, int w, int c, float factor, float lo, float hi,
                        float *out) {
    float mean[c > 0 ? c : 1];
    channel_means(in, h, w, c, mean);
    for (int64_t p = 0; p < (int64_t)h * w; p++)
        for (int k = 0; k < c; k++) {
            float v = (in[p * c + k] - mean[k]) * factor + mean[k];
            out[p * c + k] = v < lo ? lo : v > hi ? hi : v;
        }
}

void kc_adjust_contrast_backward(const float *in, const float *dout, int h, int w, int c,
                                 float factor, float lo, float hi, float *din) {
    float mean[c > 0 ? c : 1];
    channel_means(in, h, w, c, mean);
    const int64_t hw = (int64_t)h * w;
    for (int k = 0; k < c; k++) {
        /* y = clip(f x + (1 - f) mean(x)): the gradient where unclipped, then through mean */
        double s = 0;
        for (int64_t p = 0; p < hw; p++) {
            float v = (in[p * c + k] - mean[k]) * factor + mean[k];
            float g = v >= lo && v <= hi ? dout[p * c + k] : 0.0f;
            din[p * c + k] = factor * g;
            s += g;
        }
        float share = (float)((1.0 - factor) * s / (double)hw);
        for (int64_t p = 0; p < hw; p++) din[p * c + k] += share;
    }
}
