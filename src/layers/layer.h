/* layer.h: what a layer is inside kerac: a small struct and a table of functions (build,
 * init, forward, backward). Weights and gradients are views into the model's flat buffers. */
#ifndef KERAC_LAYER_H
#define KERAC_LAYER_H
#include "../internal.h"

typedef struct {
    int training;      /* dropout active */
    uint64_t step_key; /* distinct per training step: seeds dropout masks */
} kc_forward_ctx;

typedef struct {
    const char *type_name; /* "Dense", as in Keras's summary */
    const char *base_name; /* "dense": names are base_name, base_name_1, ... */
    /* sets out_shape and param_count from in_shape; an error names the layer and shapes */
    kc_status (*build)(kc_layer *layer);
    /* fills the weights (views already bound) from the model's rng */
    void (*init)(kc_layer *layer, kc_rng *rng);
    /* out (batch, out_size) from in (batch, in_size) */
    void (*forward)(kc_layer *layer, const float *in, float *out, int batch,
                    const kc_forward_ctx *ctx);
    /* from dout (batch, out_size), writable scratch, computes the weight gradients (written,
     * not accumulated) and, when din != NULL, din (batch, in_size). dout_is_preactivation:
     * the loss already folded this layer's activation into dout (softmax + crossentropy). */
    void (*backward)(kc_layer *layer, const float *in, const float *out, float *dout,
                     float *din, int batch, int dout_is_preactivation, const kc_forward_ctx *ctx);
} kc_layer_ops;

struct kc_layer {
    const kc_layer_ops *ops;
    char name[48];
    kc_shape in_shape, out_shape;
    int64_t in_size, out_size; /* values per sample */
    int64_t param_count, param_offset;
    float *kernel, *bias;   /* views into the model's params: kernel (in, units), bias (units) */
    float *dkernel, *dbias; /* same views into the gradients */
    int units;
    kc_act act; /* Dense's activation, or the Activation layer's */
    float rate; /* Dropout */
    uint64_t seed; /* per-layer stream for dropout masks */
    int input_is_data; /* no weights before it: the input is the data (images: mostly zeros) */
};

kc_layer *kc_layer_new(const kc_layer_ops *ops);
#endif
