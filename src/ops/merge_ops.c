/* merge_ops.c: the merge layers' kernels: elementwise merges of several inputs (with
 * broadcasting), concatenation, the batch-wise dot product. Each is split over the pool by
 * elements or samples; every output value is computed within one part, in a fixed order. */
#include "../util/isa.h"
#include "merge_ops.h"
#include "../util/threads.h"
#include <math.h>
#include <string.h>

/* ---- broadcasting ---- */

int kc_broadcast_init(kc_broadcast *b, int n, const kc_shape *shapes) {
    if (n < 1 || n > KC_MERGE_MAX_INPUTS) return 0;
    memset(b, 0, sizeof *b);
    b->n = n;
    for (int i = 0; i < n; i++) {
        if (shapes[i].rank < 0 || shapes[i].rank > KC_MAX_RANK) return 0;
        b->rank = shapes[i].rank > b->rank ? shapes[i].rank : b->rank;
    }
    int R = b->rank;
    /* the output's size along each axis: Keras's _compute_elemwise_op_output_shape */
    for (int d = 0; d < R; d++) {
        int64_t size = 1;
        for (int i = 0; i < n; i++) {
            int e = d - (R - shapes[i].rank);
            if (e < 0) continue;
            int64_t s = shapes[i].dims[e];
            if (s == 1) continue;
            if (size != 1 && size != s) return 0;
            size = s;
        }
        b->dims[d] = size;
    }
    b->out_size = 1;
    for (int d = 0; d < R; d++) b->out_size *= b->dims[d];
    b->same = 1;
    for (int i = 0; i < n; i++) {
        int r = shapes[i].rank;
        int64_t stride = 1;
        for (int e = r - 1; e >= 0; e--) {
            int d = e + (R - r);
            b->stride[i][d] = shapes[i].dims[e] == 1 ? 0 : stride;
            stride *= shapes[i].dims[e];
        }
        b->in_size[i] = stride;
        if (stride != b->out_size) b->same = 0;
    }
    return 1;
}

/* ---- the elementwise functions, one output value at a time ---- */

/* jnp.maximum and jnp.minimum: a NaN on either side wins */
static inline float max2(float a, float b) { return (a > b || a != a) ? a : b; }
static inline float min2(float a, float b) { return (a < b || a != a) ? a : b; }

static inline float merge_value(kc_merge_op op, const float *v, int n) {
    float r = v[0];
    switch (op) {
    case KC_MERGE_ADD:
    case KC_MERGE_AVERAGE:
        for (int j = 1; j < n; j++) r += v[j];
        if (op == KC_MERGE_AVERAGE) r /= (float)n;
        break;
    case KC_MERGE_SUBTRACT: r = v[0] - v[1]; break;
    case KC_MERGE_MULTIPLY:
        for (int j = 1; j < n; j++) r *= v[j];
        break;
    case KC_MERGE_MAXIMUM:
        for (int j = 1; j < n; j++) r = max2(r, v[j]);
        break;
    case KC_MERGE_MINIMUM:
        for (int j = 1; j < n; j++) r = min2(r, v[j]);
        break;
    case KC_MERGE_OP_COUNT: break;
    }
    return r;
}

/* JAX's max/min JVP (lax._balanced_eq): z = max(x, y) sends g * [x == z] / (1 + [y == z]) to x */
static inline float balanced(float x, float z, float y) {
    return x == z ? (y == z ? 0.5f : 1.0f) : 0.0f;
}

/* gi[j] = d op / d v[j] times g, following the forward's chain of pairwise operations backwards */
static inline void merge_grad(kc_merge_op op, const float *v, int n, float g, float *gi) {
    float p[KC_MERGE_MAX_INPUTS];
    switch (op) {
    case KC_MERGE_ADD:
        for (int j = 0; j < n; j++) gi[j] = g;
        break;
    case KC_MERGE_AVERAGE:
        for (int j = 0; j < n; j++) gi[j] = g / (float)n;
        break;
    case KC_MERGE_SUBTRACT:
        gi[0] = g;
        gi[1] = -g;
        break;
    case KC_MERGE_MULTIPLY:
        /* p[j] = x0 * ... * xj; the product's gradient goes back through each multiply */
        p[0] = v[0];
        for (int j = 1; j < n; j++) p[j] = p[j - 1] * v[j];
        for (int j = n - 1; j >= 1; j--) {
            gi[j] = g * p[j - 1];
            g *= v[j];
        }
        gi[0] = g;
        break;
    case KC_MERGE_MAXIMUM:
    case KC_MERGE_MINIMUM:
        p[0] = v[0];
        for (int j = 1; j < n; j++)
            p[j] = op == KC_MERGE_MAXIMUM ? max2(p[j - 1], v[j]) : min2(p[j - 1], v[j]);
        for (int j = n - 1; j >= 1; j--) {
            gi[j] = g * balanced(v[j], p[j], p[j - 1]);
            g *= balanced(p[j - 1], p[j], v[j]);
        }
        gi[0] = g;
        break;
    case KC_MERGE_OP_COUNT: break;
    }
}

typedef struct {
    kc_merge_op op;
    const kc_broadcast *b;
    const float *const *in;
    const float *dout;
    float *out;
    float *const *din;
} merge_job;

/* ---- inputs of the output's shape: plain elementwise loops over [lo, hi) ---- */

KC_CLONES static void same_forward(void *arg, int64_t lo, int64_t hi) {
    const merge_job *j = arg;
    int n = j->b->n;
    const float *const *in = j->in;
    float *out = j->out;
    switch (j->op) {
    case KC_MERGE_SUBTRACT:
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) out[i] = in[0][i] - in[1][i];
        return;
    case KC_MERGE_ADD:
    case KC_MERGE_AVERAGE:
        memcpy(out + lo, in[0] + lo, sizeof(float) * (size_t)(hi - lo));
        for (int k = 1; k < n; k++) {
            const float *x = in[k];
#pragma omp simd
            for (int64_t i = lo; i < hi; i++) out[i] += x[i];
        }
        if (j->op == KC_MERGE_AVERAGE) {
            float d = (float)n;
#pragma omp simd
            for (int64_t i = lo; i < hi; i++) out[i] /= d;
        }
        return;
    case KC_MERGE_MULTIPLY:
        memcpy(out + lo, in[0] + lo, sizeof(float) * (size_t)(hi - lo));
        for (int k = 1; k < n; k++) {
            const float *x = in[k];
#pragma omp simd
            for (int64_t i = lo; i < hi; i++) out[i] *= x[i];
        }
        return;
    case KC_MERGE_MAXIMUM:
    case KC_MERGE_MINIMUM:
        memcpy(out + lo, in[0] + lo, sizeof(float) * (size_t)(hi - lo));
        for (int k = 1; k < n; k++) {
            const float *x = in[k];
            if (j->op == KC_MERGE_MAXIMUM) {
#pragma omp simd
                for (int64_t i = lo; i < hi; i++) out[i] = max2(out[i], x[i]);
            } else {
#pragma omp simd
                for (int64_t i = lo; i < hi; i++) out[i] = min2(out[i], x[i]);
            }
        }
        return;
    case KC_MERGE_OP_COUNT: return;
    }
}

KC_CLONES static void same_backward(void *arg, int64_t lo, int64_t hi) {
    const merge_job *j = arg;
    int n = j->b->n;
    const float *dout = j->dout;
    float *const *din = j->din;
    switch (j->op) {
    case KC_MERGE_ADD:
        for (int k = 0; k < n; k++)
            if (din[k]) memcpy(din[k] + lo, dout + lo, sizeof(float) * (size_t)(hi - lo));
        return;
    case KC_MERGE_SUBTRACT:
        if (din[0]) memcpy(din[0] + lo, dout + lo, sizeof(float) * (size_t)(hi - lo));
        if (din[1]) {
            float *d = din[1];
#pragma omp simd
            for (int64_t i = lo; i < hi; i++) d[i] = -dout[i];
        }
        return;
    case KC_MERGE_AVERAGE: {
        float den = (float)n;
        for (int k = 0; k < n; k++) {
            float *d = din[k];
            if (!d) continue;
#pragma omp simd
            for (int64_t i = lo; i < hi; i++) d[i] = dout[i] / den;
        }
        return;
    }
    default: break;
    }
    /* Multiply, Maximum, Minimum: each value's gradients from all the inputs' values there */
    float v[KC_MERGE_MAX_INPUTS], gi[KC_MERGE_MAX_INPUTS];
    for (int64_t i = lo; i < hi; i++) {
        for (int k = 0; k < n; k++) v[k] = j->in[k][i];
        merge_grad(j->op, v, n, dout[i], gi);
        for (int k = 0; k < n; k++)
            if (din[k]) din[k][i] = gi[k];
    }
}

/* ---- broadcasting: samples [lo, hi), the output's elements in order, each input's offset
 * stepped along with the output's index ---- */

typedef struct {
    int64_t idx[KC_MAX_RANK];
    int64_t off[KC_MERGE_MAX_INPUTS];
} bcast_iter;

static inline void bcast_next(const kc_broadcast *b, bcast_iter *it) {
    for (int d = b->rank - 1; d >= 0; d--) {
        for (int k = 0; k < b->n; k++) it->off[k] += b->stride[k][d];
        if (++it->idx[d] < b->dims[d]) return;
        for (int k = 0; k < b->n; k++) it->off[k] -= b->stride[k][d] * b->dims[d];
        it->idx[d] = 0;
    }
}

static void bcast_forward(void *arg, int64_t lo, int64_t hi) {
    const merge_job *j = arg;
    const kc_broadcast *b = j->b;
    float v[KC_MERGE_MAX_INPUTS];
    for (int64_t s = lo; s < hi; s++) {
        const float *x[KC_MERGE_MAX_INPUTS];
        for (int k = 0; k < b->n; k++) x[k] = j->in[k] + s * b->in_size[k];
        float *out = j->out + s * b->out_size;
        bcast_iter it = {{0}, {0}};
        for (int64_t e = 0; e < b->out_size; e++) {
            for (int k = 0; k < b->n; k++) v[k] = x[k][it.off[k]];
            out[e] = merge_value(j->op, v, b->n);
            bcast_next(b, &it);
        }
    }
}

static void bcast_backward(void *arg, int64_t lo, int64_t hi) {
    const merge_job *j = arg;
    const kc_broadcast *b = j->b;
    float v[KC_MERGE_MAX_INPUTS], gi[KC_MERGE_MAX_INPUTS];
    for (int64_t s = lo; s < hi; s++) {
        const float *x[KC_MERGE_MAX_INPUTS];
        float *d[KC_MERGE_MAX_INPUTS];
        for (int k = 0; k < b->n; k++) {
            x[k] = j->in[k] + s * b->in_size[k];
            d[k] = j->din[k] ? j->din[k] + s * b->in_size[k] : NULL;
            if (d[k]) memset(d[k], 0, sizeof(float) * (size_t)b->in_size[k]);
        }
        const float *dout = j->dout + s * b->out_size;
        bcast_iter it = {{0}, {0}};
        for (int64_t e = 0; e < b->out_size; e++) {
            for (int k = 0; k < b->n; k++) v[k] = x[k][it.off[k]];
            merge_grad(j->op, v, b->n, dout[e], gi);
            for (int k = 0; k < b->n; k++)
                if (d[k]) d[k][it.off[k]] += gi[k];
            bcast_next(b, &it);
        }
    }
}

void kc_merge_forward(kc_merge_op op, const kc_broadcast *b, const float *const *in, float *out,
                      int batch) {
    merge_job j = {.op = op, .b = b, .in = in, .out = out};
    if (b->same) kc_parallel_range((int64_t)batch * b->out_size, 16, b->n, same_forward, &j);
    else kc_parallel_range(batch, 1, b->out_size * b->n * 4, bcast_forward, &j);
}

void kc_merge_backward(kc_merge_op op, const kc_broadcast *b, const float *const *in,
                       const float *dout, float *const *din, int batch) {
    merge_job j = {.op = op, .b = b, .in = in, .dout = dout, .din = din};
    if (b->same) kc_parallel_range((int64_t)batch * b->out_size, 16, b->n, same_backward, &j);
    else kc_parallel_range(batch, 1, b->out_size * b->n * 4, bcast_backward, &j);
}

/* ---- concatenation ---- */

typedef struct {
    int n;
    int64_t outer;
    const int64_t *inner;
    int64_t total; /* sum of inner */
    const float *const *in;
    float *out;
    const float *dout;
    float *const *din;
} concat_job;

static void concat_range(void *arg, int64_t lo, int64_t hi) {
    const concat_job *j = arg;
    for (int64_t s = lo; s < hi; s++)
        for (int64_t o = 0; o < j->outer; o++) {
            int64_t row = (s * j->outer + o) * j->total, at = 0;
            for (int k = 0; k < j->n; k++) {
                size_t bytes = sizeof(float) * (size_t)j->inner[k];
                int64_t src = (s * j->outer + o) * j->inner[k];
                if (j->out) memcpy(j->out + row + at, j->in[k] + src, bytes);
                else if (j->din[k]) memcpy(j->din[k] + src, j->dout + row + at, bytes);
                at += j->inner[k];
            }
        }
}

void kc_concat_forward(int n, int64_t outer, const int64_t *inner, const float *const *in,
                       float *out, int batch) {
    concat_job j = {.n = n, .outer = outer, .inner = inner, .in = in, .out = out};
    for (int k = 0; k < n; k++) j.total += inner[k];
    kc_parallel_range(batch, 1, outer * j.total, concat_range, &j);
}

void kc_concat_backward(int n, int64_t outer, const int64_t *inner, const float *dout,
                        float *const *din, int batch) {
    concat_job j = {.n = n, .outer = outer, .inner = inner, .dout = dout, .din = din};
    for (int k = 0; k < n; k++) j.total += inner[k];
    kc_parallel_range(batch, 1, outer * j.total, concat_range, &j);
}

/* ---- batch-wise dot ---- */

/* keras.ops.normalize's factor for the fibre v[0], v[stride], ..., v[(k - 1) * stride]:
 * min(rsqrt(sum v^2), 1 / epsilon) (a NaN stays NaN); *clamped: the bound was taken */
static inline float inv_norm(const float *v, int64_t k, int64_t stride, float epsilon,
                             int *clamped) {
    float ss = 0.0f;
    for (int64_t i = 0; i < k; i++) ss += v[i * stride] * v[i * stride];
    float r = 1.0f / sqrtf(ss), cap = 1.0f / epsilon;
    *clamped = r > cap;
    return min2(r, cap);
}

typedef struct {
    const kc_dot_geom *g;
    const float *x, *y, *dout;
    float *out, *dx, *dy;
} dot_job;

KC_CLONES static void dot_forward_range(void *arg, int64_t lo, int64_t hi) {
    const dot_job *j = arg;
    const kc_dot_geom *g = j->g;
    int64_t A = g->a, K = g->k, B = g->b, C = g->c, D = g->d;
    for (int64_t s = lo; s < hi; s++) {
        const float *x = j->x + s * A * K * B, *y = j->y + s * C * K * D;
        float *out = j->out + s * A * B * C * D;
        if (g->normalize) {
            /* sum over k of (x * ix) * (y * iy), as Keras multiplies the normalised inputs */
            int clamped;
            for (int64_t ia = 0; ia < A; ia++)
                for (int64_t ib = 0; ib < B; ib++) {
                    const float *xf = x + ia * K * B + ib;
                    float ix = inv_norm(xf, K, B, g->epsilon, &clamped);
                    for (int64_t ic = 0; ic < C; ic++)
                        for (int64_t id = 0; id < D; id++) {
                            const float *yf = y + ic * K * D + id;
                            float iy = inv_norm(yf, K, D, g->epsilon, &clamped), acc = 0.0f;
                            for (int64_t k = 0; k < K; k++)
                                acc += (xf[k * B] * ix) * (yf[k * D] * iy);
                            out[((ia * B + ib) * C + ic) * D + id] = acc;
                        }
                }
        } else if (B == 1 && D == 1) {
            /* contiguous fibres: a dot product per output */
            for (int64_t ia = 0; ia < A; ia++)
                for (int64_t ic = 0; ic < C; ic++) {
                    const float *xf = x + ia * K, *yf = y + ic * K;
                    float acc = 0.0f;
                    for (int64_t k = 0; k < K; k++) acc += xf[k] * yf[k];
                    out[ia * C + ic] = acc;
                }
        } else {
            memset(out, 0, sizeof(float) * (size_t)(A * B * C * D));
            for (int64_t ia = 0; ia < A; ia++)
                for (int64_t ic = 0; ic < C; ic++)
                    for (int64_t k = 0; k < K; k++) {
                        const float *yr = y + (ic * K + k) * D;
                        for (int64_t ib = 0; ib < B; ib++) {
                            float xv = x[(ia * K + k) * B + ib];
                            float *o = out + ((ia * B + ib) * C + ic) * D;
#pragma omp simd
                            for (int64_t id = 0; id < D; id++) o[id] += xv * yr[id];
                        }
                    }
        }
    }
}

/* The gradient through v * inv_norm(v) along each fibre of v (n fibres (outer, inner) around
 * the summed axis of k): dv holds the gradient w.r.t. the normalised values and becomes
 * ix * (dv - vn * sum(dv * vn)) with vn = v * ix, or ix * dv where the bound was taken */
static void normalize_backward(const float *v, float *dv, int64_t outer, int64_t k,
                               int64_t inner, float epsilon) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *vf = v + o * k * inner + i;
            float *df = dv + o * k * inner + i;
            int clamped;
            float iv = inv_norm(vf, k, inner, epsilon, &clamped), t = 0.0f;
            if (!clamped)
                for (int64_t q = 0; q < k; q++) t += df[q * inner] * (vf[q * inner] * iv);
            for (int64_t q = 0; q < k; q++)
                df[q * inner] = iv * (df[q * inner] - (vf[q * inner] * iv) * t);
        }
}

KC_CLONES static void dot_backward_range(void *arg, int64_t lo, int64_t hi) {
    const dot_job *j = arg;
    const kc_dot_geom *g = j->g;
    int64_t A = g->a, K = g->k, B = g->b, C = g->c, D = g->d;
    for (int64_t s = lo; s < hi; s++) {
        const float *x = j->x + s * A * K * B, *y = j->y + s * C * K * D;
        const float *dout = j->dout + s * A * B * C * D;
        float *dx = j->dx ? j->dx + s * A * K * B : NULL;
        float *dy = j->dy ? j->dy + s * C * K * D : NULL;
        if (dx) memset(dx, 0, sizeof(float) * (size_t)(A * K * B));
        if (dy) memset(dy, 0, sizeof(float) * (size_t)(C * K * D));
        if (g->normalize) {
            /* gradients w.r.t. the normalised inputs, then through the normalisation */
            int clamped;
            for (int64_t ia = 0; ia < A; ia++)
                for (int64_t ib = 0; ib < B; ib++) {
                    const float *xf = x + ia * K * B + ib;
                    float *dxf = dx ? dx + ia * K * B + ib : NULL;
                    float ix = inv_norm(xf, K, B, g->epsilon, &clamped);
                    for (int64_t ic = 0; ic < C; ic++)
                        for (int64_t id = 0; id < D; id++) {
                            const float *yf = y + ic * K * D + id;
                            float *dyf = dy ? dy + ic * K * D + id : NULL;
                            float iy = inv_norm(yf, K, D, g->epsilon, &clamped);
                            float go = dout[((ia * B + ib) * C + ic) * D + id];
                            if (dxf)
                                for (int64_t k = 0; k < K; k++) dxf[k * B] += go * (yf[k * D] * iy);
                            if (dyf)
                                for (int64_t k = 0; k < K; k++) dyf[k * D] += go * (xf[k * B] * ix);
                        }
                }
            if (dx) normalize_backward(x, dx, A, K, B, g->epsilon);
            if (dy) normalize_backward(y, dy, C, K, D, g->epsilon);
            continue;
        }
        for (int64_t ia = 0; ia < A; ia++)
            for (int64_t ic = 0; ic < C; ic++)
                for (int64_t k = 0; k < K; k++) {
                    const float *yr = y + (ic * K + k) * D;
                    float *dyr = dy ? dy + (ic * K + k) * D : NULL;
                    for (int64_t ib = 0; ib < B; ib++) {
                        const float *go = dout + ((ia * B + ib) * C + ic) * D;
                        if (dx) {
                            float acc = 0.0f;
                            for (int64_t id = 0; id < D; id++) acc += go[id] * yr[id];
                            dx[(ia * K + k) * B + ib] += acc;
                        }
                        if (dyr) {
                            float xv = x[(ia * K + k) * B + ib];
#pragma omp simd
                            for (int64_t id = 0; id < D; id++) dyr[id] += xv * go[id];
                        }
                    }
                }
    }
}

void kc_batch_dot(const kc_dot_geom *g, const float *x, const float *y, float *out, int batch) {
    dot_job j = {.g = g, .x = x, .y = y, .out = out};
    int64_t cost = g->a * g->b * g->c * g->d * g->k * (g->normalize ? 3 : 1);
    kc_parallel_range(batch, 1, cost, dot_forward_range, &j);
}

void kc_batch_dot_backward(const kc_dot_geom *g, const float *x, const float *y,
                           const float *dout, float *dx, float *dy, int batch) {
    if (!dx && !dy) return;
    dot_job j = {.g = g, .x = x, .y = y, .dout = dout, .dx = dx, .dy = dy};
    int64_t cost = g->a * g->b * g->c * g->d * g->k * (g->normalize ? 4 : 2);
    kc_parallel_range(batch, 1, cost, dot_backward_range, &j);
}
