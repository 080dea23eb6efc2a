/* kernels.c: the memory-bound elementwise kernels around the matrix products:
 * bias + activation, activation derivatives, column sums, dropout, batch conversion. */
#include "../util/isa.h"
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
    const char *alias;       /* another name Keras accepts for it ("swish"), or NULL */
    int from_input;          /* the derivative needs the pre-activation (kc_act_needs_input) */
} acts[] = {
    [KC_LINEAR] = {"linear", NULL, NULL, 0},
    [KC_RELU] = {"relu", "ReLU", NULL, 0},
    [KC_SOFTMAX] = {"softmax", "Softmax", NULL, 0},
    [KC_SIGMOID] = {"sigmoid", NULL, NULL, 0},
    [KC_TANH] = {"tanh", NULL, NULL, 0},
    [KC_ELU] = {"elu", NULL, NULL, 1},
    [KC_SELU] = {"selu", NULL, NULL, 1},
    [KC_GELU] = {"gelu", NULL, NULL, 1},
    [KC_SOFTPLUS] = {"softplus", NULL, NULL, 1},
    [KC_SOFTSIGN] = {"softsign", NULL, NULL, 1},
    [KC_SILU] = {"silu", NULL, "swish", 1},
    [KC_MISH] = {"mish", NULL, NULL, 1},
    [KC_HARD_SIGMOID] = {"hard_sigmoid", NULL, NULL, 1},
    [KC_HARD_SILU] = {"hard_silu", NULL, "hard_swish", 1},
    [KC_HARD_TANH] = {"hard_tanh", NULL, NULL, 1},
    [KC_EXPONENTIAL] = {"exponential", NULL, NULL, 0},
    [KC_LEAKY_RELU] = {"leaky_relu", NULL, NULL, 1},
    [KC_RELU6] = {"relu6", NULL, NULL, 1},
    [KC_CELU] = {"celu", NULL, NULL, 1},
    [KC_LOG_SIGMOID] = {"log_sigmoid", NULL, NULL, 1},
    [KC_LOG_SOFTMAX] = {"log_softmax", NULL, NULL, 0},
    [KC_TANH_SHRINK] = {"tanh_shrink", NULL, NULL, 1},
    [KC_SQUAREPLUS] = {"squareplus", NULL, NULL, 1},
    [KC_SPARSE_PLUS] = {"sparse_plus", NULL, NULL, 1},
    [KC_SPARSE_SIGMOID] = {"sparse_sigmoid", NULL, NULL, 1},
    [KC_SOFT_SHRINK] = {"soft_shrink", NULL, NULL, 1},
    [KC_HARD_SHRINK] = {"hard_shrink", NULL, NULL, 1},
};
_Static_assert(sizeof acts / sizeof *acts == KC_ACT_COUNT,
               "the activations' table needs one row per kc_act (kerac.h)");

int kc_act_needs_input(kc_act act) { return (unsigned)act < KC_ACT_COUNT && acts[act].from_input; }

int kc_act_is_rowwise(kc_act act) { return act == KC_SOFTMAX || act == KC_LOG_SOFTMAX; }

const char *kc_act_name(kc_act act) {
    return (unsigned)act < KC_ACT_COUNT ? acts[act].name : "unknown";
}

kc_act kc_act_from_name(const char *name) {
    for (int i = 0; i < KC_ACT_COUNT; i++)
        if (!strcmp(name, acts[i].name)) return (kc_act)i;
    for (int i = 0; i < KC_ACT_COUNT; i++)
        if ((acts[i].layer_class && !strcmp(name, acts[i].layer_class)) ||
            (acts[i].alias && !strcmp(name, acts[i].alias)))
            return (kc_act)i;
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

/* the elementwise activations of one value, as Keras 3's JAX backend writes them (jax.nn) */
#define SELU_ALPHA 1.6732632423543772848170429916717f
#define SELU_SCALE 1.0507009873554804934193349852946f
static inline float softplusf(float x) { /* jnp.logaddexp(x, 0) */
    return (x > 0.0f ? x : 0.0f) + log1pf(expf(-fabsf(x)));
}
static inline float relu6f(float x) { return x < 0.0f ? 0.0f : x > 6.0f ? 6.0f : x; }
static inline float hard_sigmoidf(float x) { return relu6f(x + 3.0f) / 6.0f; }
static inline float gate6(float x) { return x > 0.0f && x < 6.0f ? 1.0f : 0.0f; }

static inline float act_value(float x, kc_act act) {
    switch (act) {
    case KC_ELU: return x > 0.0f ? x : expm1f(x);
    case KC_SELU: return SELU_SCALE * (x > 0.0f ? x : SELU_ALPHA * expm1f(x));
    case KC_GELU: return x * (erff(x / 1.41421356237309504880f) + 1.0f) / 2.0f;
    case KC_SOFTPLUS: return softplusf(x);
    case KC_SOFTSIGN: return x / (fabsf(x) + 1.0f);
    case KC_SILU: return x * sigmoidf(x);
    case KC_MISH: return x * tanhf(softplusf(x));
    case KC_HARD_SIGMOID: return hard_sigmoidf(x);
    case KC_HARD_SILU: return x * hard_sigmoidf(x);
    case KC_HARD_TANH: return x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x;
    case KC_EXPONENTIAL: return expf(x);
    case KC_LEAKY_RELU: return x >= 0.0f ? x : 0.2f * x;
    case KC_RELU6: return relu6f(x);
    case KC_CELU: return (x > 0.0f ? x : 0.0f) + expm1f(x < 0.0f ? x : 0.0f);
    case KC_LOG_SIGMOID: return -softplusf(-x);
    case KC_TANH_SHRINK: return x - tanhf(x);
    case KC_SQUAREPLUS: return (x + sqrtf(x * x + 4.0f)) / 2.0f;
    case KC_SPARSE_PLUS: return x <= -1.0f ? 0.0f : x >= 1.0f ? x : (x + 1.0f) * (x + 1.0f) / 4.0f;
    case KC_SPARSE_SIGMOID: {
        float c = x + 1.0f;
        return 0.5f * (c < 0.0f ? 0.0f : c > 2.0f ? 2.0f : c);
    }
    case KC_SOFT_SHRINK: return x > 0.5f ? x - 0.5f : x < -0.5f ? x + 0.5f : 0.0f;
    case KC_HARD_SHRINK: return fabsf(x) > 0.5f ? x : 0.0f;
    default: return x; /* the others have their own loops */
    }
}

/* act'(x), from the pre-activation x (or, exponential, the output y) */
static inline float act_slope(float x, float y, kc_act act) {
    switch (act) {
    case KC_ELU: return x > 0.0f ? 1.0f : expf(x);
    case KC_SELU: return SELU_SCALE * (x > 0.0f ? 1.0f : SELU_ALPHA * expf(x));
    case KC_GELU:
        return (erff(x / 1.41421356237309504880f) + 1.0f) / 2.0f +
               x * expf(-0.5f * x * x) * 0.39894228040143267794f;
    case KC_SOFTPLUS: return sigmoidf(x);
    case KC_SOFTSIGN: {
        float d = 1.0f + fabsf(x);
        return 1.0f / (d * d);
    }
    case KC_SILU: {
        float s = sigmoidf(x);
        return s * (1.0f + x * (1.0f - s));
    }
    case KC_MISH: {
        float t = tanhf(softplusf(x));
        return t + x * (1.0f - t * t) * sigmoidf(x);
    }
    case KC_HARD_SIGMOID: return gate6(x + 3.0f) / 6.0f;
    case KC_HARD_SILU: return hard_sigmoidf(x) + x * gate6(x + 3.0f) / 6.0f;
    case KC_HARD_TANH: return x >= -1.0f && x <= 1.0f ? 1.0f : 0.0f;
    case KC_EXPONENTIAL: return y;
    case KC_LEAKY_RELU: return x >= 0.0f ? 1.0f : 0.2f;
    case KC_RELU6: return gate6(x);
    case KC_CELU: return x > 0.0f ? 1.0f : expf(x);
    case KC_LOG_SIGMOID: return sigmoidf(-x);
    case KC_TANH_SHRINK: {
        float t = tanhf(x);
        return t * t;
    }
    case KC_SQUAREPLUS: return 0.5f * (1.0f + x / sqrtf(x * x + 4.0f));
    case KC_SPARSE_PLUS: return x <= -1.0f ? 0.0f : x >= 1.0f ? 1.0f : (x + 1.0f) / 2.0f;
    case KC_SPARSE_SIGMOID: return x > -1.0f && x < 1.0f ? 0.5f : 0.0f;
    case KC_SOFT_SHRINK: return x > 0.5f || x < -0.5f ? 1.0f : 0.0f;
    case KC_HARD_SHRINK: return fabsf(x) > 0.5f ? 1.0f : 0.0f;
    default: return 1.0f;
    }
}

/* log_softmax of a row: shifted - log(sum(exp(shifted))), shifted = x - max */
static void log_softmax_row(float *y, int cols) {
    float max = y[0];
    for (int j = 1; j < cols; j++) max = y[j] > max ? y[j] : max;
    float sum = 0.0f;
    for (int j = 0; j < cols; j++) sum += expf(y[j] - max);
    float lse = logf(sum);
    for (int j = 0; j < cols; j++) y[j] = (y[j] - max) - lse;
}

KC_CLONES static void act_row(float *y, int cols, kc_act act) {
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
    case KC_LOG_SOFTMAX: log_softmax_row(y, cols); break;
    case KC_ELU: case KC_SELU: case KC_GELU: case KC_SOFTPLUS: case KC_SOFTSIGN: case KC_SILU:
    case KC_MISH: case KC_HARD_SIGMOID: case KC_HARD_SILU: case KC_HARD_TANH:
    case KC_EXPONENTIAL: case KC_LEAKY_RELU: case KC_RELU6: case KC_CELU: case KC_LOG_SIGMOID:
    case KC_TANH_SHRINK: case KC_SQUAREPLUS: case KC_SPARSE_PLUS: case KC_SPARSE_SIGMOID:
    case KC_SOFT_SHRINK: case KC_HARD_SHRINK:
        for (int j = 0; j < cols; j++) y[j] = act_value(y[j], act);
        break;
    case KC_ACT_COUNT: break;
    }
}

/* Every kernel below is split over the pool by rows or elements: the arguments travel in one
 * struct, each thread takes its share of [0, n) from kc_parallel_range. */
typedef struct {
    float *y;
    const float *x, *bias, *pre;
    const void *src;
    const int64_t *index;
    int64_t rows, cols;
    float scale, rate;
    kc_act act;
    uint64_t key;
} kernel_args;

KC_CLONES static void bias_act_rows(void *arg, int64_t begin, int64_t end) {
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

KC_CLONES static void act_backward_range(void *arg, int64_t begin, int64_t end) {
    const kernel_args *k = arg;
    const float *y = k->x, *x = k->pre;
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
    case KC_LOG_SOFTMAX: /* rows: dz = dy - softmax * sum(dy), softmax = exp(y) */
        for (int64_t i = begin; i < end; i++) {
            const float *yr = y + i * cols;
            float *dr = dy + i * cols;
            float sum = 0.0f;
            for (int j = 0; j < cols; j++) sum += dr[j];
            for (int j = 0; j < cols; j++) dr[j] -= expf(yr[j]) * sum;
        }
        break;
    case KC_EXPONENTIAL:
#pragma omp simd
        for (int64_t i = begin; i < end; i++) dy[i] *= y[i];
        break;
    case KC_ELU: case KC_SELU: case KC_GELU: case KC_SOFTPLUS: case KC_SOFTSIGN: case KC_SILU:
    case KC_MISH: case KC_HARD_SIGMOID: case KC_HARD_SILU: case KC_HARD_TANH:
    case KC_LEAKY_RELU: case KC_RELU6: case KC_CELU: case KC_LOG_SIGMOID:
    case KC_TANH_SHRINK: case KC_SQUAREPLUS: case KC_SPARSE_PLUS: case KC_SPARSE_SIGMOID:
    case KC_SOFT_SHRINK: case KC_HARD_SHRINK: /* from the pre-activation */
        for (int64_t i = begin; i < end; i++) dy[i] *= act_slope(x[i], 0.0f, k->act);
        break;
    case KC_ACT_COUNT: break;
    }
}

void kc_act_backward(const float *x, const float *y, float *dy, int rows, int cols, kc_act act) {
    kernel_args k = {.y = dy, .x = y, .pre = x, .cols = cols, .act = act};
    if (kc_act_is_rowwise(act)) kc_parallel_range(rows, 1, cols, act_backward_range, &k);
    else if (act != KC_LINEAR) kc_parallel_range((int64_t)rows * cols, 16, 1, act_backward_range, &k);
}

/* columns [begin, end) summed over all rows, in row order: the same sums on any thread count */
KC_CLONES static void colsum_range(void *arg, int64_t begin, int64_t end) {
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

KC_CLONES static void relu_dropout_range(void *arg, int64_t begin, int64_t end) {
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

KC_CLONES static void dropout_range(void *arg, int64_t begin, int64_t end) {
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

KC_CLONES static void gather_u8_rows(void *arg, int64_t begin, int64_t end) {
    const kernel_args *k = arg;
    for (int64_t i = begin; i < end; i++) {
        const uint8_t *row = (const uint8_t *)k->src + k->index[i] * k->cols;
        float *o = k->y + i * k->cols;
#pragma omp simd
        for (int64_t j = 0; j < k->cols; j++) o[j] = (float)row[j] * k->scale;
    }
}

KC_CLONES static void gather_f32_rows(void *arg, int64_t begin, int64_t end) {
    const kernel_args *k = arg;
    for (int64_t i = begin; i < end; i++) {
        const float *row = (const float *)k->src + k->index[i] * k->cols;
        float *o = k->y + i * k->cols;
#pragma omp simd
        for (int64_t j = 0; j < k->cols; j++) o[j] = row[j] * k->scale;
    }
}

KC_CLONES static void gather_i32_rows(void *arg, int64_t begin, int64_t end) {
    const kernel_args *k = arg;
    for (int64_t i = begin; i < end; i++) {
        const int32_t *row = (const int32_t *)k->src + k->index[i] * k->cols;
        float *o = k->y + i * k->cols;
#pragma omp simd
        for (int64_t j = 0; j < k->cols; j++) o[j] = (float)row[j] * k->scale;
    }
}

void kc_gather_rows_i32(float *out, const int32_t *src, const int64_t *index, int count,
                        int64_t size, float scale) {
    kernel_args k = {.y = out, .src = src, .index = index, .cols = size, .scale = scale};
    kc_parallel_range(count, 1, size, gather_i32_rows, &k);
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
