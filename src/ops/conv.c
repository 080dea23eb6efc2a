/* conv.c: the data movement of convolution and pooling on channels-last images: im2col and
 * its adjoint col2im (the products themselves are gemm.c's), max and average pooling. Each
 * call works on the images it is given, on the calling thread: the layers split batches
 * over the pool. */
#include "ops.h"
#include <float.h>
#include <math.h>
#include <string.h>
#include "../util/isa.h"
#ifdef KC_X86
#include <immintrin.h>
#endif

void kc_window_axis(int in, int k, int s, int same, int *out, int *pad_before) {
    if (same) {
        *out = (in + s - 1) / s;
        int total = (*out - 1) * s + k - in;
        *pad_before = total > 0 ? total / 2 : 0;
    } else {
        *out = in >= k ? (in - k) / s + 1 : 0;
        *pad_before = 0;
    }
}

KC_CLONES_EXTERN void kc_im2col(const kc_window *g, const float *in, int n, float *col) {
    const int c = g->c, krow = g->kw * c; /* floats of one window row */
    const int64_t image = (int64_t)g->h * g->w * c, k = (int64_t)g->kh * krow;
    for (int s = 0; s < n; s++) {
        const float *img = in + s * image;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, col += k) {
                int y0 = oy * g->sh - g->pad_t, x0 = ox * g->sw - g->pad_l;
                /* the window's columns inside the image: [kx0, kx1) */
                int kx0 = x0 < 0 ? -x0 : 0, kx1 = x0 + g->kw > g->w ? g->w - x0 : g->kw;
                /* plain loops: the pieces are short (3 floats for one channel) and a call
                 * to memcpy per piece costs more than the copy */
                for (int ky = 0; ky < g->kh; ky++) {
                    float *dst = col + ky * krow;
                    int y = y0 + ky;
                    if (y < 0 || y >= g->h || kx0 >= kx1) {
                        for (int i = 0; i < krow; i++) dst[i] = 0.0f;
                        continue;
                    }
                    const float *src = img + ((int64_t)y * g->w + x0) * c;
                    int lo = kx0 * c, hi = kx1 * c;
                    for (int i = 0; i < lo; i++) dst[i] = 0.0f;
#pragma omp simd
                    for (int i = lo; i < hi; i++) dst[i] = src[i];
                    for (int i = hi; i < krow; i++) dst[i] = 0.0f;
                }
            }
    }
}

KC_CLONES_EXTERN void kc_im2col_t(const kc_window *g, const float *in, int n, float *col_t) {
    const int c = g->c;
    const int64_t image = (int64_t)g->h * g->w * c, rows = (int64_t)n * g->oh * g->ow;
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++)
            for (int ch = 0; ch < c; ch++) {
                float *dst = col_t + ((int64_t)(ky * g->kw + kx) * c + ch) * rows;
                /* output columns whose input column x = ox * sw + kx - pad_l is inside */
                int lo = 0, hi = g->ow;
                while (lo < hi && lo * g->sw + kx - g->pad_l < 0) lo++;
                while (hi > lo && (hi - 1) * g->sw + kx - g->pad_l >= g->w) hi--;
                for (int s = 0; s < n; s++)
                    for (int oy = 0; oy < g->oh; oy++, dst += g->ow) {
                        int y = oy * g->sh + ky - g->pad_t;
                        if (y < 0 || y >= g->h) {
                            for (int ox = 0; ox < g->ow; ox++) dst[ox] = 0.0f;
                            continue;
                        }
                        const float *src = in + s * image + ((int64_t)y * g->w + kx - g->pad_l) * c + ch;
                        for (int ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
                        if (g->sw == 1 && c == 1) {
#pragma omp simd
                            for (int ox = lo; ox < hi; ox++) dst[ox] = src[ox];
                        } else {
                            for (int ox = lo; ox < hi; ox++) dst[ox] = src[(int64_t)ox * g->sw * c];
                        }
                        for (int ox = hi; ox < g->ow; ox++) dst[ox] = 0.0f;
                    }
            }
}

KC_CLONES_EXTERN void kc_col2im(const kc_window *g, const float *col, int n, float *din) {
    const int c = g->c, krow = g->kw * c;
    const int64_t image = (int64_t)g->h * g->w * c, k = (int64_t)g->kh * krow;
    memset(din, 0, sizeof(float) * (size_t)(n * image));
    for (int s = 0; s < n; s++) {
        float *img = din + s * image;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, col += k) {
                int y0 = oy * g->sh - g->pad_t, x0 = ox * g->sw - g->pad_l;
                int kx0 = x0 < 0 ? -x0 : 0, kx1 = x0 + g->kw > g->w ? g->w - x0 : g->kw;
                if (kx0 >= kx1) continue;
                for (int ky = 0; ky < g->kh; ky++) {
                    int y = y0 + ky;
                    if (y < 0 || y >= g->h) continue;
                    const float *src = col + ky * krow + kx0 * c;
                    float *dst = img + ((int64_t)y * g->w + x0 + kx0) * c;
                    int len = (kx1 - kx0) * c;
#pragma omp simd
                    for (int i = 0; i < len; i++) dst[i] += src[i];
                }
            }
    }
}

/* Dilated windows: each tap is a run of c channels of its own, so the copies go tap by tap */
KC_CLONES_EXTERN void kc_im2col_dilated(const kc_window *g, int dh, int dw, const float *in, int n, float *col) {
    const int c = g->c;
    const int64_t image = (int64_t)g->h * g->w * c, k = (int64_t)g->kh * g->kw * c;
    for (int s = 0; s < n; s++) {
        const float *img = in + s * image;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, col += k) {
                int y0 = oy * g->sh - g->pad_t, x0 = ox * g->sw - g->pad_l;
                float *dst = col;
                for (int ky = 0; ky < g->kh; ky++) {
                    int y = y0 + ky * dh;
                    for (int kx = 0; kx < g->kw; kx++, dst += c) {
                        int x = x0 + kx * dw;
                        if (y < 0 || y >= g->h || x < 0 || x >= g->w) {
                            for (int i = 0; i < c; i++) dst[i] = 0.0f;
                            continue;
                        }
                        const float *src = img + ((int64_t)y * g->w + x) * c;
#pragma omp simd
                        for (int i = 0; i < c; i++) dst[i] = src[i];
                    }
                }
            }
    }
}

KC_CLONES_EXTERN void kc_col2im_dilated(const kc_window *g, int dh, int dw, const float *col, int n, float *din) {
    const int c = g->c;
    const int64_t image = (int64_t)g->h * g->w * c, k = (int64_t)g->kh * g->kw * c;
    memset(din, 0, sizeof(float) * (size_t)(n * image));
    for (int s = 0; s < n; s++) {
        float *img = din + s * image;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, col += k) {
                int y0 = oy * g->sh - g->pad_t, x0 = ox * g->sw - g->pad_l;
                const float *src = col;
                for (int ky = 0; ky < g->kh; ky++) {
                    int y = y0 + ky * dh;
                    for (int kx = 0; kx < g->kw; kx++, src += c) {
                        int x = x0 + kx * dw;
                        if (y < 0 || y >= g->h || x < 0 || x >= g->w) continue;
                        float *dst = img + ((int64_t)y * g->w + x) * c;
#pragma omp simd
                        for (int i = 0; i < c; i++) dst[i] += src[i];
                    }
                }
            }
    }
}

/* The window of output (oy, ox) clipped to the image: rows [y0, y1), columns [x0, x1). */
static inline void clip_window(const kc_window *g, int oy, int ox, int *y0, int *y1, int *x0,
                               int *x1) {
    *y0 = oy * g->sh - g->pad_t;
    *x0 = ox * g->sw - g->pad_l;
    *y1 = *y0 + g->kh < g->h ? *y0 + g->kh : g->h;
    *x1 = *x0 + g->kw < g->w ? *x0 + g->kw : g->w;
    if (*y0 < 0) *y0 = 0;
    if (*x0 < 0) *x0 = 0;
}

/* One output pixel's maxima for channels [ch, ch + 16): the maximum and its position stay in
 * registers over the window (in memory, each window pixel's compare waits for the last one's
 * stores) */
#ifdef KC_X86
KC_TARGET_BEGIN(KC_TARGET_AVX512_FEATURES)
static inline void max_pool_16(const kc_window *g, const float *img, int y0, int y1, int x0,
                               int x1, int ch, float *out, int32_t *arg) {
    const int c = g->c;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int32_t first = (int32_t)(((int64_t)y0 * g->w + x0) * c + ch);
    __m512 m = _mm512_loadu_ps(img + first);
    __m512i a = _mm512_add_epi32(_mm512_set1_epi32(first), lane);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            int32_t at = (int32_t)(((int64_t)y * g->w + x) * c + ch);
            __m512 v = _mm512_loadu_ps(img + at);
            /* v > m, or v is NaN and m is not: the first maximum wins, a NaN is kept */
            __mmask16 take = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) |
                             (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) &
                              _mm512_cmp_ps_mask(m, m, _CMP_ORD_Q));
            m = _mm512_mask_blend_ps(take, m, v);
            a = _mm512_mask_blend_epi32(take, a, _mm512_add_epi32(_mm512_set1_epi32(at), lane));
        }
    _mm512_storeu_ps(out + ch, m);
    _mm512_storeu_si512((void *)(arg + ch), a);
}

/* kc_max_pool for channels a multiple of 16, on an AVX-512 CPU */
static void max_pool_avx512(const kc_window *g, const float *in, int n, float *out,
                            int32_t *arg) {
    const int c = g->c;
    const int64_t image = (int64_t)g->h * g->w * c;
    for (int s = 0; s < n; s++) {
        const float *img = in + s * image;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, out += c, arg += c) {
                int y0, y1, x0, x1;
                clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
                for (int ch = 0; ch < c; ch += 16)
                    max_pool_16(g, img, y0, y1, x0, x1, ch, out, arg);
            }
    }
}
KC_TARGET_END
#endif

KC_CLONES_EXTERN void kc_max_pool(const kc_window *g, const float *in, int n, float *out, int32_t *arg) {
    const int c = g->c;
    const int64_t image = (int64_t)g->h * g->w * c;
#ifdef KC_X86
    if (c % 16 == 0 && kc_isa() == KC_ISA_AVX512) {
        max_pool_avx512(g, in, n, out, arg);
        return;
    }
#endif
    for (int s = 0; s < n; s++) {
        const float *img = in + s * image;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, out += c, arg += c) {
                int y0, y1, x0, x1;
                clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
                int32_t first = (int32_t)(((int64_t)y0 * g->w + x0) * c);
                for (int ch = 0; ch < c; ch++) {
                    out[ch] = img[first + ch];
                    arg[ch] = first + ch;
                }
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        int32_t at = (int32_t)(((int64_t)y * g->w + x) * c);
                        /* the first maximum wins; a NaN is taken and kept */
#pragma omp simd
                        for (int ch = 0; ch < c; ch++) {
                            float v = img[at + ch], o = out[ch];
                            int take = v > o || (v != v && o == o);
                            out[ch] = take ? v : o;
                            arg[ch] = take ? at + ch : arg[ch];
                        }
                    }
            }
    }
}

void kc_max_pool_backward(const kc_window *g, const float *dout, const int32_t *arg, int n,
                          float *din) {
    const int64_t image = (int64_t)g->h * g->w * g->c, outs = (int64_t)g->oh * g->ow * g->c;
    if (g->sh == g->kh && g->sw == g->kw && !g->pad_t && !g->pad_l && g->oh * g->sh <= g->h &&
        g->ow * g->sw <= g->w) {
        /* windows that neither overlap nor reach past the image: every input value lies in at
         * most one window, so each is written once (its window's gradient where it was the
         * maximum, else 0) and only the rows and columns past the last window are cleared */
        const int c = g->c;
        for (int s = 0; s < n; s++, din += image, dout += outs, arg += outs) {
            for (int oy = 0; oy < g->oh; oy++)
                for (int ky = 0; ky < g->kh; ky++) {
                    int y = oy * g->sh + ky;
                    float *row = din + (int64_t)y * g->w * c;
                    for (int ox = 0; ox < g->ow; ox++) {
                        const float *d = dout + ((int64_t)oy * g->ow + ox) * c;
                        const int32_t *a = arg + ((int64_t)oy * g->ow + ox) * c;
                        for (int kx = 0; kx < g->kw; kx++) {
                            int32_t at = (int32_t)(((int64_t)y * g->w + ox * g->sw + kx) * c);
                            float *px = row + (int64_t)(ox * g->sw + kx) * c;
#pragma omp simd
                            for (int ch = 0; ch < c; ch++) px[ch] = a[ch] == at + ch ? d[ch] : 0.0f;
                        }
                    }
                    int covered = g->ow * g->sw;
                    memset(row + (int64_t)covered * c, 0, sizeof(float) * (size_t)((g->w - covered) * c));
                }
            int covered_rows = g->oh * g->sh;
            memset(din + (int64_t)covered_rows * g->w * c, 0,
                   sizeof(float) * (size_t)((int64_t)(g->h - covered_rows) * g->w * c));
        }
        return;
    }
    memset(din, 0, sizeof(float) * (size_t)(n * image));
    for (int s = 0; s < n; s++, din += image, dout += outs, arg += outs)
        for (int64_t i = 0; i < outs; i++) din[arg[i]] += dout[i];
}

KC_CLONES_EXTERN void kc_avg_pool(const kc_window *g, const float *in, int n, float *out) {
    const int c = g->c;
    const int64_t image = (int64_t)g->h * g->w * c;
    for (int s = 0; s < n; s++) {
        const float *img = in + s * image;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, out += c) {
                int y0, y1, x0, x1;
                clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
                for (int ch = 0; ch < c; ch++) out[ch] = 0.0f;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        const float *px = img + ((int64_t)y * g->w + x) * c;
#pragma omp simd
                        for (int ch = 0; ch < c; ch++) out[ch] += px[ch];
                    }
                float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
                for (int ch = 0; ch < c; ch++) out[ch] *= inv;
            }
    }
}

KC_CLONES_EXTERN void kc_avg_pool_backward(const kc_window *g, const float *dout, int n, float *din) {
    const int c = g->c;
    const int64_t image = (int64_t)g->h * g->w * c;
    memset(din, 0, sizeof(float) * (size_t)(n * image));
    for (int s = 0; s < n; s++) {
        float *img = din + s * image;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, dout += c) {
                int y0, y1, x0, x1;
                clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
                float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        float *px = img + ((int64_t)y * g->w + x) * c;
#pragma omp simd
                        for (int ch = 0; ch < c; ch++) px[ch] += dout[ch] * inv;
                    }
            }
    }
}

KC_CLONES_EXTERN void kc_global_max_pool(const float *in, int n, int64_t cells, int c, float *out) {
    for (int s = 0; s < n; s++, in += cells * c, out += c) {
        memcpy(out, in, sizeof(float) * (size_t)c);
        for (int64_t p = 1; p < cells; p++) {
            const float *px = in + p * c;
            /* as kc_max_pool: a larger value, or a NaN where the maximum is not one yet */
#pragma omp simd
            for (int ch = 0; ch < c; ch++) {
                float v = px[ch], o = out[ch];
                out[ch] = v > o || (v != v && o == o) ? v : o;
            }
        }
    }
}

void kc_global_max_pool_backward(const float *in, const float *out, const float *dout, int n,
                                 int64_t cells, int c, float *count, float *din) {
    for (int s = 0; s < n; s++, in += cells * c, out += c, dout += c, din += cells * c) {
        for (int ch = 0; ch < c; ch++) count[ch] = 0.0f;
        for (int64_t p = 0; p < cells; p++)
#pragma omp simd
            for (int ch = 0; ch < c; ch++) count[ch] += in[p * c + ch] == out[ch] ? 1.0f : 0.0f;
        /* per channel: the share of each maximum; a NaN maximum equals nothing (count 0) and
         * spreads NaN, as JAX's gradient does */
        for (int ch = 0; ch < c; ch++)
            count[ch] = count[ch] > 0.0f ? dout[ch] / count[ch] : NAN;
        for (int64_t p = 0; p < cells; p++)
#pragma omp simd
            for (int ch = 0; ch < c; ch++) {
                float share = count[ch];
                din[p * c + ch] = in[p * c + ch] == out[ch] || share != share ? share : 0.0f;
            }
    }
}
