/* merge_ops.h: the kernels of the merge layers (merge_ops.c) on plain float arrays: elementwise
 * merges of several inputs with Keras's (numpy's) broadcasting, concatenation, and the
 * batch-wise dot product. They know nothing of layers: shapes are per sample, and every
 * array holds batch samples one after another. */
#ifndef KERAC_MERGE_OPS_H
#define KERAC_MERGE_OPS_H
#include "kerac.h"

#define KC_MERGE_MAX_INPUTS 16

typedef enum {
    KC_MERGE_ADD = 0, /* ((x0 + x1) + x2) ... */
    KC_MERGE_SUBTRACT, /* x0 - x1 */
    KC_MERGE_MULTIPLY, /* ((x0 * x1) * x2) ... */
    KC_MERGE_AVERAGE,  /* ((x0 + x1) + ...) / n */
    KC_MERGE_MAXIMUM,  /* max(max(x0, x1), x2) ...: NaN wins */
    KC_MERGE_MINIMUM,
    KC_MERGE_OP_COUNT /* no operation: the number of them (tables indexed by kc_merge_op) */
} kc_merge_op;

/* Where each input's value of an output element lies. Shapes broadcast as numpy's (Keras's
 * Merge layers): aligned from the last axis, an input without an axis or of size 1 along it is
 * repeated along the output's. */
typedef struct {
    int n;    /* inputs */
    int rank; /* of the output */
    int64_t dims[KC_MAX_RANK];
    int64_t out_size; /* values per sample */
    int64_t in_size[KC_MERGE_MAX_INPUTS];
    int64_t stride[KC_MERGE_MAX_INPUTS][KC_MAX_RANK]; /* per output axis; 0: repeated */
    int same; /* every input holds out_size values in the output's order: no repetition */
} kc_broadcast;

/* Fills b for n inputs of the given per-sample shapes; 0 (b unspecified) when they do not
 * broadcast (two sizes along an axis that are different and not 1) or n is out of range. */
int kc_broadcast_init(kc_broadcast *b, int n, const kc_shape *shapes);

/* out (batch, b->out_size) = op(in[0], ..., in[n - 1]) */
void kc_merge_forward(kc_merge_op op, const kc_broadcast *b, const float *const *in, float *out,
                      int batch);
/* din[i] (batch, b->in_size[i]) = the gradient of sum(dout * out) w.r.t. in[i] (summed over
 * the elements it was repeated to), written, not accumulated; din[i] NULL: skipped. Ties of
 * Maximum and Minimum split the gradient as JAX's max and min do: max(x, y) sends g / 2 to each
 * of x and y when x == y, and the chain over several inputs applies that pairwise
 * (max(max(a, b), c) with a == b == c: a, b 1/4 each, c 1/2). Multiply's gradient is a product
 * of the other inputs (no division: zeros are fine). */
void kc_merge_backward(kc_merge_op op, const kc_broadcast *b, const float *const *in,
                       const float *dout, float *const *din, int batch);

/* Concatenation: each sample of input i is outer blocks of inner[i] values; a sample of out is
 * outer rows, each the inputs' blocks in input order (out_size = outer * sum(inner)). */
void kc_concat_forward(int n, int64_t outer, const int64_t *inner, const float *const *in,
                       float *out, int batch);
/* din[i] = its blocks of dout; din[i] NULL: skipped */
void kc_concat_backward(int n, int64_t outer, const int64_t *inner, const float *dout,
                        float *const *din, int batch);

/* Batch-wise dot (keras.layers.Dot): per sample x is (a, k, b) and y (c, k, d) (the summed axis
 * in the middle, the axes before and after it flattened), out (a, b, c, d) =
 * sum over k of x[a, k, b] * y[c, k, d]. normalize: x and y are first l2-normalised along k as
 * keras.ops.normalize does: v * min(1 / sqrt(sum v^2), 1 / epsilon). */
typedef struct {
    int64_t a, k, b, c, d;
    int normalize;
    float epsilon; /* Keras's backend.epsilon(), 1e-7 */
} kc_dot_geom;
void kc_batch_dot(const kc_dot_geom *g, const float *x, const float *y, float *out, int batch);
/* dx, dy (either may be NULL) from dout, written. With normalize, the gradient through the
 * normalisation is JAX's, except that a fibre of zeros (where JAX's rsqrt gives NaN) takes
 * dout's part times 1 / epsilon, as every other fibre whose norm is under epsilon. */
void kc_batch_dot_backward(const kc_dot_geom *g, const float *x, const float *y,
                           const float *dout, float *dx, float *dy, int batch);
#endif
