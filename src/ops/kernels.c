/* kernels.c: matrix products (OpenBLAS) and the memory-bound elementwise kernels around them:
 * bias + activation, activation derivatives, column sums, dropout, batch conversion. */
#include "ops.h"
#include "../internal.h"
#include <cblas.h>
#include <math.h>
#include <string.h>

void kc_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
             const float *b, float beta, float *c) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, trans_a ? m : k, b,
                trans_b ? k : n, beta, c, n);
}

static void softmax_row(float *y, int cols) {
    float max = y[0];
    for (int j = 1; j < cols; j++) max = y[j] > max ? y[j] : max;
    float sum = 0.0f;
    for (int j = 0; j < cols; j++) {
        y[j] = expf(y[j] - max);
        sum += y[j];
    }
    float inv = 1.0f / sum;
    for (int j = 0; j < cols; j++) y[j] *= inv;
}

static inline float sigmoidf(float z) {
    /* split by sign so expf never overflows */
    if (z >= 0) return 1.0f / (1.0f + expf(-z));
    float e = expf(z);
    return e / (1.0f + e);
}

static void act_row(float *y, int cols, kc_act act) {
    switch (act) {
    case KC_LINEAR: break;
    case KC_RELU:
#pragma omp simd
        for (int j = 0; j < cols; j++) y[j] = y[j] < 0.0f ? 0.0f : y[j]; /* NaN stays NaN */
        break;
    case KC_SIGMOID:
        for (int j = 0; j < cols; j++) y[j] = sigmoidf(y[j]);
        break;
    case KC_TANH:
        for (int j = 0; j < cols; j++) y[j] = tanhf(y[j]);
        break;
    case KC_SOFTMAX: softmax_row(y, cols); break;
    }
}

void kc_bias_act(float *y, const float *bias, int rows, int cols, kc_act act) {
    for (int i = 0; i < rows; i++) {
        float *row = y + (int64_t)i * cols;
        if (bias) {
#pragma omp simd
            for (int j = 0; j < cols; j++) row[j] += bias[j];
        }
        act_row(row, cols, act);
    }
}

void kc_act_forward(float *y, int rows, int cols, kc_act act) {
    kc_bias_act(y, NULL, rows, cols, act);
}

void kc_act_backward(const float *y, float *dy, int rows, int cols, kc_act act) {
    int64_t n = (int64_t)rows * cols;
    switch (act) {
    case KC_LINEAR: break;
    case KC_RELU:
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case KC_SIGMOID:
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dy[i] *= y[i] * (1.0f - y[i]);
        break;
    case KC_TANH:
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dy[i] *= 1.0f - y[i] * y[i];
        break;
    case KC_SOFTMAX:
        for (int i = 0; i < rows; i++) {
            const float *yr = y + (int64_t)i * cols;
            float *dr = dy + (int64_t)i * cols;
            float dot = 0.0f;
            for (int j = 0; j < cols; j++) dot += dr[j] * yr[j];
            for (int j = 0; j < cols; j++) dr[j] = yr[j] * (dr[j] - dot);
        }
        break;
    }
}

void kc_colsum(const float *x, int rows, int cols, float *out) {
    memset(out, 0, sizeof(float) * (size_t)cols);
    for (int i = 0; i < rows; i++) {
        const float *row = x + (int64_t)i * cols;
#pragma omp simd
        for (int j = 0; j < cols; j++) out[j] += row[j];
    }
}

void kc_dropout_apply(float *y, const float *x, int64_t n, float rate, uint64_t key) {
    /* keep when the top 32 bits of the hash are >= rate * 2^32: P(keep) = 1 - rate */
    uint32_t threshold = (uint32_t)fminf(rate * 4294967296.0f, 4294967295.0f);
    float scale = 1.0f / (1.0f - rate);
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)(kc_mix64(key ^ (uint64_t)i) >> 32);
        y[i] = bits >= threshold ? x[i] * scale : 0.0f;
    }
}

void kc_gather_rows_u8(float *out, const uint8_t *src, const int64_t *index, int count,
                       int64_t size, float scale) {
    for (int i = 0; i < count; i++) {
        const uint8_t *row = src + index[i] * size;
        float *o = out + (int64_t)i * size;
#pragma omp simd
        for (int64_t j = 0; j < size; j++) o[j] = (float)row[j] * scale;
    }
}

void kc_gather_rows_f32(float *out, const float *src, const int64_t *index, int count,
                        int64_t size, float scale) {
    for (int i = 0; i < count; i++) {
        const float *row = src + index[i] * size;
        float *o = out + (int64_t)i * size;
#pragma omp simd
        for (int64_t j = 0; j < size; j++) o[j] = row[j] * scale;
    }
}
