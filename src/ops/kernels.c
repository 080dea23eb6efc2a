/* kernels.c: the memory-bound elementwise kernels around the matrix products:
 * bias + activation, activation derivatives, column sums, dropout, batch conversion. */
#include "ops.h"
#include "../internal.h"
#include "../util/threads.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- the activations: a row per kc_act (the kernels' cases are in act_row and
 * act_backward_range below) ---- */

static const struct {
    const char *name;        /* Keras's: "relu" */
    const char *layer_class; /* Keras's layer class of the same function, also accepted as an
                                activation's name ("ReLU"), or NULL */
} acts[] = {
    [KC_LINEAR] = {"linear", NULL},
    [KC_RELU] = {"relu", "ReLU"},
    [KC_SOFTMAX] = {"softmax", "Softmax"},
    [KC_SIGMOID] = {"sigmoid", NULL},
    [KC_TANH] = {"tanh", NULL},
};
_Static_assert(sizeof acts / sizeof *acts == KC_ACT_COUNT,
               "the activations' table needs one row per kc_act (kerac.h)");

const char *kc_act_name(kc_act act) {
    return (unsigned)act < KC_ACT_COUNT ? acts[act].name : "unknown";
}

kc_act kc_act_from_name(const char *name) {
    for (int i = 0; i < KC_ACT_COUNT; i++)
        if (!strcmp(name, acts[i].name)) return (kc_act)i;
    for (int i = 0; i < KC_ACT_COUNT; i++)
        if (acts[i].layer_class && !strcmp(name, acts[i].layer_class)) return (kc_act)i;
    return KC_ACT_COUNT;
}

void kc_act_names(char *buf, size_t size) {
    size_t at = 0;
    if (size) buf[0] = 0;
    for (int i = 0; i < KC_ACT_COUNT && at < size; i++) {
        int n = snprintf(buf + at, size - at, "%s%s", i ? ", " : "", acts[i].name);
        if (n < 0) break;
        at += (size_t)n;
    }
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
    case KC_ACT_COUNT: break;
    }
}

/* Every kernel below is split over the pool by rows or elements: the arguments travel in one
 * struct, each thread takes its share of [0, n) from kc_parallel_range. */
typedef struct {
    float *y;
    const float *x, *bias;
    const void *src;
    const int64_t *index;
    int64_t rows, cols;
    float scale, rate;
    kc_act act;
    uint64_t key;
} kernel_args;

static void bias_act_rows(void *arg, int64_t begin, int64_t end) {
    const kernel_args *k = arg;
    int cols = (int)k->cols;
    for (int64_t i = begin; i < end; i++) {
        float *row = k->y + i * cols;
        if (k->bias) {
#pragma omp simd
            for (int j = 0; j < cols; j++) row[j] += k->bias[j];
        }
        act_row(row, cols, k->act);
    }
}

void kc_bias_act(float *y, const float *bias, int rows, int cols, kc_act act) {
    kernel_args k = {.y = y, .bias = bias, .cols = cols, .act = act};
    kc_parallel_range(rows, 1, cols, bias_act_rows, &k);
}

void kc_act_forward(float *y, int rows, int cols, kc_act act) {
    kc_bias_act(y, NULL, rows, cols, act);
}

static void act_backward_range(void *arg, int64_t begin, int64_t end) {
    const kernel_args *k = arg;
    const float *y = k->x;
    float *dy = k->y;
    int cols = (int)k->cols;
    switch (k->act) {
    case KC_LINEAR: break;
    case KC_RELU:
#pragma omp simd
        for (int64_t i = begin; i < end; i++) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case KC_SIGMOID:
#pragma omp simd
        for (int64_t i = begin; i < end; i++) dy[i] *= y[i] * (1.0f - y[i]);
        break;
    case KC_TANH:
#pragma omp simd
        for (int64_t i = begin; i < end; i++) dy[i] *= 1.0f - y[i] * y[i];
        break;
    case KC_SOFTMAX: /* here the range is of rows */
        for (int64_t i = begin; i < end; i++) {
            const float *yr = y + i * cols;
            float *dr = dy + i * cols;
            float dot = 0.0f;
            for (int j = 0; j < cols; j++) dot += dr[j] * yr[j];
            for (int j = 0; j < cols; j++) dr[j] = yr[j] * (dr[j] - dot);
        }
        break;
    case KC_ACT_COUNT: break;
    }
}

void kc_act_backward(const float *y, float *dy, int rows, int cols, kc_act act) {
    kernel_args k = {.y = dy, .x = y, .cols = cols, .act = act};
    if (act == KC_SOFTMAX) kc_parallel_range(rows, 1, cols, act_backward_range, &k);
    else if (act != KC_LINEAR) kc_parallel_range((int64_t)rows * cols, 16, 1, act_backward_range, &k);
}

/* columns [begin, end) summed over all rows, in row order: the same sums on any thread count */
static void colsum_range(void *arg, int64_t begin, int64_t end) {
    const kernel_args *k = arg;
    float *out = k->y;
    for (int64_t j = begin; j < end; j++) out[j] = 0.0f;
    for (int64_t i = 0; i < k->rows; i++) {
        const float *row = k->x + i * k->cols;
#pragma omp simd
        for (int64_t j = begin; j < end; j++) out[j] += row[j];
    }
}

void kc_colsum(const float *x, int rows, int cols, float *out) {
    kernel_args k = {.y = out, .x = x, .rows = rows, .cols = cols};
    kc_parallel_range(cols, 16, rows, colsum_range, &k);
}

static void relu_dropout_range(void *arg, int64_t begin, int64_t end) {
    const kernel_args *k = arg;
    float *dy = k->y, scale = k->scale;
    const float *y = k->x;
#pragma omp simd
    for (int64_t i = begin; i < end; i++) dy[i] = y[i] > 0.0f ? dy[i] * scale : 0.0f;
}

void kc_relu_dropout_backward(const float *y, float *dy, int64_t n, float scale) {
    kernel_args k = {.y = dy, .x = y, .scale = scale};
    kc_parallel_range(n, 16, 1, relu_dropout_range, &k);
}

static void dropout_range(void *arg, int64_t begin, int64_t end) {
    const kernel_args *k = arg;
    uint32_t threshold = kc_dropout_threshold(k->rate), key = kc_dropout_key32(k->key);
    float scale = 1.0f / (1.0f - k->rate);
    float *y = k->y;
    const float *x = k->x;
#pragma omp simd
    for (int64_t i = begin; i < end; i++)
        y[i] = kc_dropout_hash((uint32_t)i, key) >= threshold ? x[i] * scale : 0.0f;
}

void kc_dropout_apply(float *y, const float *x, int64_t n, float rate, uint64_t key) {
    kernel_args k = {.y = y, .x = x, .rate = rate, .key = key};
    kc_parallel_range(n, 16, 1, dropout_range, &k);
}

static void gather_u8_rows(void *arg, int64_t begin, int64_t end) {
    const kernel_args *k = arg;
    for (int64_t i = begin; i < end; i++) {
        const uint8_t *row = (const uint8_t *)k->src + k->index[i] * k->cols;
        float *o = k->y + i * k->cols;
#pragma omp simd
        for (int64_t j = 0; j < k->cols; j++) o[j] = (float)row[j] * k->scale;
    }
}

static void gather_f32_rows(void *arg, int64_t begin, int64_t end) {
    const kernel_args *k = arg;
    for (int64_t i = begin; i < end; i++) {
        const float *row = (const float *)k->src + k->index[i] * k->cols;
        float *o = k->y + i * k->cols;
#pragma omp simd
        for (int64_t j = 0; j < k->cols; j++) o[j] = row[j] * k->scale;
    }
}

void kc_gather_rows_u8(float *out, const uint8_t *src, const int64_t *index, int count,
                       int64_t size, float scale) {
    kernel_args k = {.y = out, .src = src, .index = index, .cols = size, .scale = scale};
    kc_parallel_range(count, 1, size, gather_u8_rows, &k);
}

void kc_gather_rows_f32(float *out, const float *src, const int64_t *index, int count,
                        int64_t size, float scale) {
    kernel_args k = {.y = out, .src = src, .index = index, .cols = size, .scale = scale};
    kc_parallel_range(count, 1, size, gather_f32_rows, &k);
}
