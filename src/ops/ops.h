/* ops.h: compute kernels on plain float arrays. They know nothing of layers or models:
 * shapes are arguments, matrices are row-major, (rows, cols). */
#ifndef KERAC_OPS_H
#define KERAC_OPS_H
#include "kerac.h"

/* C = A B (+ C), A (m, k) with A(i, p) = a[i*a_rs + p*a_cs], B (k, n) with
 * B(p, j) = b[p*b_rs + j*b_cs], C row-major with row stride ldc. Optionally the epilogue
 * C = relu?(C + bias) with bias (n). Runs on the pool (gemm.c). */
typedef struct {
    int m, n, k;
    const float *a;
    int64_t a_rs, a_cs;
    const float *b;
    int64_t b_rs, b_cs;
    float *c;
    int64_t ldc;
    int accumulate;    /* C += A B instead of C = A B */
    const float *bias; /* epilogue: + bias[j] */
    int relu;          /* epilogue: max(0, .) */
    int a_sparse;      /* A is mostly zeros (input data): skip the k where a tile of A is zero;
                          the same bits as the dense sum while B is finite */
    int serial;        /* on the calling thread alone: for products inside a pool task */
    /* epilogue, after bias and relu: inverted dropout with kc_dropout_apply's mask, element
     * (i, j) of C taken as element i * ldc + j of the mask */
    float dropout_rate; /* 0: none */
    uint64_t dropout_key;
    /* epilogue: C = gate > 0 ? C * gate_scale : 0, gate shaped as C (row stride ldc): the
     * derivative of a relu (and of the dropout after it) applied to an input gradient */
    const float *gate;
    float gate_scale;
    /* optional: called as blocks of C become final, block_done(block_arg, row0, row1, col0,
     * col1, block, ld) with C[row0:row1, col0:col1] at block (row stride ld), on the thread
     * that computed it and while it is in that core's cache (for a weight gradient's
     * optimizer step). Disjoint blocks may be handed over at the same time on different
     * threads. With block_scratch, blocks may be in a per-thread buffer instead of C (C is
     * then left unspecified). */
    void (*block_done)(void *block_arg, int64_t row0, int64_t row1, int64_t col0, int64_t col1,
                       const float *block, int64_t ld);
    void *block_arg;
    int block_scratch;
    /* A and B rounded to bfloat16, the sums in fp32 (Keras's mixed_bfloat16), where the CPU
     * has AVX512-BF16 (kc_gemm_bf16_supported): on AMX or VDPBF16PS, or as fp32 products of
     * the rounded operands (kc_gemm_bf16_native); elsewhere the fp32 product */
    int bf16;
} kc_gemm_args;
void kc_gemm_ex(const kc_gemm_args *g);
/* C (m, n) = op(A) op(B) for row-major A (m, k) or, transposed, (k, m); B likewise. */
void kc_gemm(int trans_a, int trans_b, int m, int n, int k, const float *a, const float *b,
             float *c);
const char *kc_gemm_backend(void); /* "kerac-avx512", "kerac-avx2" or "openblas" */

/* OpenBLAS, loaded on first use (blas.c). kc_blas_load: 0; -1 and why when the address-space
 * limit leaves too little room for its buffers; -2 and why when it is not installed. Products
 * then run on a plain C loop. kc_blas_sgemm: C = A B (+ C), row-major, alpha 1. kc_blas_parallel: OpenBLAS's
 * openblas_get_parallel(), -1 when not loaded. */
int kc_blas_load(char *why, size_t size);
void kc_blas_sgemm(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda,
                   const float *b, int ldb, int accumulate, float *c, int ldc);
void kc_blas_set_threads(int threads);
int kc_blas_parallel(void);
int kc_gemm_bf16_supported(void);
/* 1 where bf16 products run on bf16 units (AMX, else VDPBF16PS), 0 where they run as fp32
 * products of the bf16-rounded operands (the same rounding, exact products, sums in fp32:
 * KERAC_BF16_FP32=1) */
int kc_gemm_bf16_native(void);

/* The activations (kernels.c: a row of names per kc_act, the forward and derivative cases).
 * The kc_act Keras calls name ("relu"), or whose Keras layer class is name ("ReLU");
 * KC_ACT_COUNT when none. kc_act_name (kerac.h) gives the name back. */
kc_act kc_act_from_name(const char *name);
/* "linear, relu, softmax, sigmoid, tanh": every activation's name, for messages */
void kc_act_names(char *buf, size_t size);
/* y (rows, cols) += bias (cols) then y = act(y), in one pass. */
void kc_bias_act(float *y, const float *bias, int rows, int cols, kc_act act);
/* y = act(y) in place, each row of cols values (softmax is per row). */
void kc_act_forward(float *y, int rows, int cols, kc_act act);
/* dy *= act'(z) for y = act(z): z the pre-activation, y the forward's output. Activations
 * whose derivative follows from the output (linear, relu, sigmoid, tanh, softmax,
 * log_softmax, exponential) read y only (z may be NULL); the others
 * (kc_act_needs_input) read z only (y may be NULL). Softmax: dz = y * (dy - sum(dy * y)) per
 * row; log_softmax: dz = dy - exp(y) * sum(dy) per row. */
void kc_act_backward(const float *z, const float *y, float *dy, int rows, int cols, kc_act act);
/* 1 when kc_act_backward needs the pre-activation: layers keep it (in their scratch) */
int kc_act_needs_input(kc_act act);
/* 1 for softmax and log_softmax: per row of the last axis; the others are elementwise */
int kc_act_is_rowwise(kc_act act);
/* dy = y > 0 ? dy * scale : 0: the derivative of relu followed by inverted dropout, from the
 * dropout's output y (zero where dropped or where relu was) */
void kc_relu_dropout_backward(const float *y, float *dy, int64_t n, float scale);
/* out (cols) = sum over rows of x (rows, cols) */
void kc_colsum(const float *x, int rows, int cols, float *out);

/* Dropout with a counter-based mask: element i is kept when hash(key, i) clears the rate,
 * so the mask can be made again in backward without storing it. y may alias x. */
static inline uint32_t kc_dropout_threshold(float rate) {
    return (uint32_t)(rate * 4294967296.0f < 4294967295.0f ? rate * 4294967296.0f : 4294967295.0f);
}
static inline uint32_t kc_dropout_key32(uint64_t key) { return (uint32_t)(key ^ (key >> 32)); }
/* element i is kept when kc_dropout_hash(i, key32) >= threshold: P(keep) = 1 - rate. A
 * Wang-style multiply-xorshift of a Weyl sequence, 32-bit so that it vectorises */
static inline uint32_t kc_dropout_hash(uint32_t i, uint32_t key32) {
    uint32_t h = i * 0x9e3779b9u + key32;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return h;
}
void kc_dropout_apply(float *y, const float *x, int64_t n, float rate, uint64_t key);

/* uint8 or float rows gathered by index and scaled: out (count, size) */
void kc_gather_rows_u8(float *out, const uint8_t *src, const int64_t *index, int count,
                       int64_t size, float scale);
void kc_gather_rows_i32(float *out, const int32_t *src, const int64_t *index, int count,
                        int64_t size, float scale); /* int32: exact as float below 2^24 */
void kc_gather_rows_f32(float *out, const float *src, const int64_t *index, int count,
                        int64_t size, float scale);
/* ---- convolution and pooling (conv.c): images are (n, h, w, c), channels last ---- */

typedef struct {
    int h, w, c;       /* input */
    int kh, kw;        /* window */
    int sh, sw;        /* strides */
    int pad_t, pad_l;  /* zeros before the first row and column ("same" padding) */
    int oh, ow;        /* output rows and columns */
} kc_window;

/* The output size along one axis, and the padding before it, as Keras (TensorFlow) computes
 * them: "valid" floor((in - k) / s) + 1, "same" ceil(in / s) with the odd zero after. */
void kc_window_axis(int in, int k, int s, int same, int *out, int *pad_before);

/* col (n * oh * ow, kh * kw * c): row (image, oy, ox) holds the window at (oy, ox), in
 * (ky, kx, channel) order, zeros where it reaches into the padding. */
void kc_im2col(const kc_window *g, const float *in, int n, float *col);
/* The same matrix transposed, colT (kh * kw * c, n * oh * ow): for few channels, where a
 * window's rows are a few floats and col's copies would be all overhead, colT's rows are
 * whole output rows of one input pixel offset. */
void kc_im2col_t(const kc_window *g, const float *in, int n, float *col_t);
/* din (n, h, w, c) = the sum of col's windows put back where they came from */
void kc_col2im(const kc_window *g, const float *col, int n, float *din);
/* Dilated windows (Conv2D's dilation_rate): tap (ky, kx) reads input row oy * sh - pad_t +
 * ky * dh and column ox * sw - pad_l + kx * dw; g's kh, kw count taps, and its oh, ow, pad_t,
 * pad_l come from the dilated extent (kh - 1) * dh + 1. col as kc_im2col's. */
void kc_im2col_dilated(const kc_window *g, int dh, int dw, const float *in, int n, float *col);
void kc_col2im_dilated(const kc_window *g, int dh, int dw, const float *col, int n, float *din);

/* Max pooling of n images: out (n, oh, ow, c); arg[i] the input offset (within its image) of
 * each output's maximum, for the backward pass. Padding is never the maximum. */
void kc_max_pool(const kc_window *g, const float *in, int n, float *out, int32_t *arg);
/* din = 0, then din[arg[i]] += dout[i] per image */
void kc_max_pool_backward(const kc_window *g, const float *dout, const int32_t *arg, int n,
                          float *din);
/* Average pooling: the mean over the window's cells inside the image (padding not counted). */
void kc_avg_pool(const kc_window *g, const float *in, int n, float *out);
void kc_avg_pool_backward(const kc_window *g, const float *dout, int n, float *din);
/* Global max pooling of n images of cells pixels and c channels: out (n, c) the maximum of
 * each channel (a NaN is taken and kept, as jnp.max). */
void kc_global_max_pool(const float *in, int n, int64_t cells, int c, float *out);
/* Its gradient as JAX takes it: each channel's gradient split evenly between the pixels equal
 * to its maximum (ties share), NaN throughout a channel whose maximum is NaN. count: c floats
 * of workspace. din is written, not accumulated. */
void kc_global_max_pool_backward(const float *in, const float *out, const float *dout, int n,
                                 int64_t cells, int c, float *count, float *din);

/* ---- resizing (resize.c): images (n, h, w, c), channels last ---- */

/* out (n, oh, ow, c)[y][x] = in[y - top][x - left] where that lies inside in (h, w), else 0:
 * zero padding (top, left >= 0, oh, ow larger) and cropping (top, left <= 0) alike; each is
 * the other's gradient. */
void kc_shift2d(const float *in, int n, int h, int w, int c, float *out, int oh, int ow,
                int top, int left);
/* UpSampling2D: out (n, h * sh, w * sw, c). bilinear 0: each pixel repeated (nearest);
 * 1: jax.image.resize's "bilinear" (half-pixel centres: output o samples input coordinate
 * (o + 0.5) / s - 0.5, the weights of the two nearest inputs, the edges clamped). */
void kc_upsample2d(const float *in, int n, int h, int w, int c, int sh, int sw, int bilinear,
                   float *out);
/* din (n, h, w, c) = the gradient of kc_upsample2d from dout (n, h * sh, w * sw, c) */
void kc_upsample2d_backward(const float *dout, int n, int h, int w, int c, int sh, int sw,
                            int bilinear, float *din);
/* ---- image.c: the image preprocessing layers' kernels, (h, w, c) images ---- */
/* Resizing (jax.image.resize, antialias off): out (n, oh, ow, c) resizes a virtual image
 * (vh, vw) whose pixel (vy, vx) is input (vy + y0, vx + x0), fill outside the input (a crop:
 * y0, x0 >= 0; a pad: negative); bilinear 0 is jax's nearest (floor((o + 0.5) v / out)) */
void kc_resize2d(const float *in, int n, int h, int w, int c, int y0, int x0, int vh, int vw,
                 float fill, int oh, int ow, int bilinear, float *out);
/* din (n, h, w, c) = the gradient of kc_resize2d from dout (n, oh, ow, c) */
void kc_resize2d_backward(const float *dout, int n, int h, int w, int c, int y0, int x0, int vh,
                          int vw, int oh, int ow, int bilinear, float *din);
/* Keras's fill modes (jax.scipy.ndimage.map_coordinates' modes) */
enum { KC_FILL_REFLECT = 0, KC_FILL_WRAP, KC_FILL_CONSTANT, KC_FILL_NEAREST };
/* keras.ops.image.affine_transform of one image by t = [a0 a1 a2 b0 b1 b2 c0 c1] (c0 = c1 =
 * 0): output (y, x) samples input (b0 x + b1 y + b2, a0 x + a1 y + a2), bilinear or nearest
 * (round half away from zero), outside the image by mode (fill: constant's value) */
void kc_affine2d(const float *in, int h, int w, int c, const float t[8], int mode, int bilinear,
                 float fill, float *out);
/* din (h, w, c) = the gradient of kc_affine2d from dout (the transform is not differentiated) */
void kc_affine2d_backward(const float *dout, int h, int w, int c, const float t[8], int mode,
                          int bilinear, float *din);
/* out = the image flipped left-right (flip_h) and/or upside down (flip_v): its own gradient */
void kc_flip2d(const float *in, int h, int w, int c, int flip_h, int flip_v, float *out);
/* RandomContrast: clip((x - mean) * factor + mean, lo, hi), mean per channel over the image */
void kc_adjust_contrast(const float *in, int h, int w, int c, float factor, float lo, float hi,
                        float *out);
void kc_adjust_contrast_backward(const float *in, const float *dout, int h, int w, int c,
                                 float factor, float lo, float hi, float *din);
#endif
