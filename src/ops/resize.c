/* resize.c: moving channels-last images (n, h, w, c) around: zero padding and cropping (one
 * shift with zeros, its own adjoint with the opposite offsets) and UpSampling2D's nearest and
 * bilinear resizes with their gradients. Each call works on the calling thread; the layers
 * split batches over the pool. */
#include "ops.h"
#include <math.h>
#include <string.h>

void kc_shift2d(const float *in, int n, int h, int w, int c, float *out, int oh, int ow,
                int top, int left) {
    const int64_t in_image = (int64_t)h * w * c, out_image = (int64_t)oh * ow * c;
    /* output columns [x0, x1) read input columns x - left; output rows likewise */
    int x0 = left > 0 ? left : 0, x1 = w + left < ow ? w + left : ow;
    int y0 = top > 0 ? top : 0, y1 = h + top < oh ? h + top : oh;
    for (int s = 0; s < n; s++, in += in_image, out += out_image) {
        for (int y = 0; y < oh; y++) {
            float *row = out + (int64_t)y * ow * c;
            if (y < y0 || y >= y1 || x0 >= x1) {
                memset(row, 0, sizeof(float) * (size_t)ow * (size_t)c);
                continue;
            }
            const float *src = in + ((int64_t)(y - top) * w + (x0 - left)) * c;
            memset(row, 0, sizeof(float) * (size_t)x0 * (size_t)c);
            memcpy(row + (int64_t)x0 * c, src, sizeof(float) * (size_t)(x1 - x0) * (size_t)c);
            memset(row + (int64_t)x1 * c, 0, sizeof(float) * (size_t)(ow - x1) * (size_t)c);
        }
    }
}

/* Bilinear sampling along one axis of size in, upsampled by s: output o takes
 * w0 * in[i0] + (1 - w0) * in[i1]. jax.image.resize (scale_and_translate with the triangle
 * kernel): sample point f = (o + 0.5) / s - 0.5, weight max(0, 1 - |f - i|) for each input i
 * inside the axis, divided by their sum: outside [0, in - 1] only the edge pixel is left. */
static void linear_taps(int in, int s, int o, int *i0, int *i1, float *w0) {
    double f = ((double)o + 0.5) / (double)s - 0.5;
    double fl = floor(f);
    int a = (int)fl;
    double t = f - fl; /* weight of a + 1 */
    if (a < 0) {
        *i0 = *i1 = 0;
        *w0 = 1.0f;
    } else if (a >= in - 1) {
        *i0 = *i1 = in - 1;
        *w0 = 1.0f;
    } else {
        *i0 = a;
        *i1 = a + 1;
        *w0 = (float)(1.0 - t);
    }
}

void kc_upsample2d(const float *in, int n, int h, int w, int c, int sh, int sw, int bilinear,
                   float *out) {
    const int oh = h * sh, ow = w * sw;
    const int64_t in_image = (int64_t)h * w * c, out_image = (int64_t)oh * ow * c;
    for (int s = 0; s < n; s++, in += in_image, out += out_image) {
        for (int y = 0; y < oh; y++) {
            float *row = out + (int64_t)y * ow * c;
            if (!bilinear) {
                const float *src = in + (int64_t)(y / sh) * w * c;
                for (int x = 0; x < w; x++)
                    for (int r = 0; r < sw; r++)
                        memcpy(row + ((int64_t)x * sw + r) * c, src + (int64_t)x * c,
                               sizeof(float) * (size_t)c);
                continue;
            }
            int y0, y1;
            float wy;
            linear_taps(h, sh, y, &y0, &y1, &wy);
            const float *r0 = in + (int64_t)y0 * w * c, *r1 = in + (int64_t)y1 * w * c;
            for (int x = 0; x < ow; x++) {
                int x0, x1;
                float wx;
                linear_taps(w, sw, x, &x0, &x1, &wx);
                const float *a = r0 + (int64_t)x0 * c, *b = r0 + (int64_t)x1 * c;
                const float *d = r1 + (int64_t)x0 * c, *e = r1 + (int64_t)x1 * c;
                float *o = row + (int64_t)x * c;
                float ww = 1.0f - wx, wv = 1.0f - wy;
#pragma omp simd
                for (int ch = 0; ch < c; ch++)
                    o[ch] = wy * (wx * a[ch] + ww * b[ch]) + wv * (wx * d[ch] + ww * e[ch]);
            }
        }
    }
}

void kc_upsample2d_backward(const float *dout, int n, int h, int w, int c, int sh, int sw,
                            int bilinear, float *din) {
    const int oh = h * sh, ow = w * sw;
    const int64_t in_image = (int64_t)h * w * c, out_image = (int64_t)oh * ow * c;
    memset(din, 0, sizeof(float) * (size_t)n * (size_t)in_image);
    for (int s = 0; s < n; s++, din += in_image, dout += out_image) {
        for (int y = 0; y < oh; y++) {
            const float *row = dout + (int64_t)y * ow * c;
            if (!bilinear) {
                float *dst = din + (int64_t)(y / sh) * w * c;
                for (int x = 0; x < ow; x++) {
                    float *px = dst + (int64_t)(x / sw) * c;
                    const float *g = row + (int64_t)x * c;
#pragma omp simd
                    for (int ch = 0; ch < c; ch++) px[ch] += g[ch];
                }
                continue;
            }
            int y0, y1;
            float wy;
            linear_taps(h, sh, y, &y0, &y1, &wy);
            float *r0 = din + (int64_t)y0 * w * c, *r1 = din + (int64_t)y1 * w * c;
            for (int x = 0; x < ow; x++) {
                int x0, x1;
                float wx;
                linear_taps(w, sw, x, &x0, &x1, &wx);
                const float *g = row + (int64_t)x * c;
                float w00 = wy * wx, w01 = wy * (1.0f - wx), w10 = (1.0f - wy) * wx,
                      w11 = (1.0f - wy) * (1.0f - wx);
                float *a = r0 + (int64_t)x0 * c, *b = r0 + (int64_t)x1 * c;
                float *d = r1 + (int64_t)x0 * c, *e = r1 + (int64_t)x1 * c;
                /* one tap after another: the pointers may coincide at the edges */
                for (int ch = 0; ch < c; ch++) a[ch] += w00 * g[ch];
                for (int ch = 0; ch < c; ch++) b[ch] += w01 * g[ch];
                for (int ch = 0; ch < c; ch++) d[ch] += w10 * g[ch];
                for (int ch = 0; ch < c; ch++) e[ch] += w11 * g[ch];
            }
        }
    }
}
