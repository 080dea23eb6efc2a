/* ops.h: compute kernels on plain float arrays. They know nothing of layers or models:
 * shapes are arguments, matrices are row-major, (rows, cols). */
#ifndef KERAC_OPS_H
#define KERAC_OPS_H
#include "kerac.h"

/* C (m, n) = alpha * op(A) @ op(B) + beta * C, row-major; trans_a/trans_b transpose A (m, k)
 * and B (k, n) as stored. Through BLAS. */
void kc_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
             const float *b, float beta, float *c);

/* y (rows, cols) += bias (cols) then y = act(y), in one pass. */
void kc_bias_act(float *y, const float *bias, int rows, int cols, kc_act act);
/* y = act(y) in place, each row of cols values (softmax is per row). */
void kc_act_forward(float *y, int rows, int cols, kc_act act);
/* dy *= act'(.) where y = act(z) is the forward output: the derivative from the output.
 * Softmax: dz = y * (dy - sum(dy * y)) per row. */
void kc_act_backward(const float *y, float *dy, int rows, int cols, kc_act act);
/* out (cols) = sum over rows of x (rows, cols) */
void kc_colsum(const float *x, int rows, int cols, float *out);

/* Dropout with a counter-based mask: element i is kept when hash(key, i) clears the rate,
 * so the mask can be made again in backward without storing it. y may alias x. */
void kc_dropout_apply(float *y, const float *x, int64_t n, float rate, uint64_t key);

/* uint8 or float rows gathered by index and scaled: out (count, size) */
void kc_gather_rows_u8(float *out, const uint8_t *src, const int64_t *index, int count,
                       int64_t size, float scale);
void kc_gather_rows_f32(float *out, const float *src, const int64_t *index, int count,
                        int64_t size, float scale);
#endif
