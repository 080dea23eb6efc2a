/* layer.h: what a layer is inside kerac: a small struct, and its class: one kc_layer_ops
 * object per Keras class holding the class's functions (build, init, forward, backward) and
 * its file I/O (Keras's config and variables). Each class lives in one file of src/layers/ and
 * has one line in registry.c. Weights and gradients are views into the model's flat buffers. */
#ifndef KERAC_LAYER_H
#define KERAC_LAYER_H
#include "../internal.h"
#include "../ops/ops.h"

typedef struct {
    int training;      /* dropout active, batch statistics in BatchNormalization */
    int update_stats;  /* a training step: BatchNormalization updates its moving averages */
    uint64_t step_key; /* distinct per training step: seeds dropout masks */
    /* a training step with an update: layers whose ops set updates_weights apply it to their
     * own trainable weights in backward (once their old values are no longer needed), the
     * model to the others */
    kc_optimizer *opt;
    int bf16; /* Dense products in bfloat16 (kc_set_mixed_bfloat16) */
    /* Keras's mask of the layer's (first) input in this call, as forward and backward see it:
     * one byte per row of the input (its shape without the last axis: batch x steps for a
     * (batch, steps, features) input, batch for (batch, features)), nonzero where the row is
     * real; NULL: no mask. The engine sets it for a layer whose ops set supports_masking, in
     * forward and in backward, from the mask its first input carries (src/model/engine.c). */
    const uint8_t *mask;
    /* the global row of this call's first row (kc_fit's row groups, src/dist/): dropout masks
     * are keyed by the row of the whole batch, so a group or rank of rows draws the mask the
     * whole batch would (kc_dropout_key); 0 otherwise */
    int64_t row0;
    /* kc_fit's row groups (src/dist/): a training step's forward runs per group of rows, and
     * BatchNormalization, with update_stats, writes its group's batch mean and variance into
     * the gradient slots of moving_mean and moving_variance (the ordered fold sums them over
     * the step's groups) instead of moving the averages: kc_fit moves them once per step */
    int grouped;
    /* > 0: kc_model_forward stops before node stop_forward - 1, kc_model_forward_backward's
     * backward before node stop_backward - 1 (the passes of a synchronized
     * BatchNormalization's statistics in the row groups, train.c); 0: all nodes */
    int stop_forward, stop_backward;
} kc_forward_ctx;

struct cJSON; /* cJSON's values (<cjson/cJSON.h>): the io functions' configs */

/* a variable of a layer, as Keras saves it */
#define KC_MAX_WEIGHTS 8
typedef struct {
    const char *name; /* Keras's variable name: "kernel", "bias", "gamma", "moving_mean" */
    int rank;
    int64_t dims[KC_MAX_RANK];
    int64_t offset, count; /* within the model's flat params (the class's weights function:
                              from the layer's first weight) */
    int trainable;         /* the optimizer keeps state for it */
} kc_weight_desc;

/* A layer class's Keras file I/O: its config and its variables (src/io/ calls these; the
 * config fields several classes share are src/io/config_fields.h's). */
typedef struct {
    /* the layer a Keras config of the class describes; where prefixes errors ("file: layer
     * 'dense_1'") */
    kc_status (*from_config)(const struct cJSON *config, const char *where, kc_layer **out);
    /* the layer's config fields beyond name, trainable and dtype */
    kc_status (*to_config)(const kc_layer *layer, struct cJSON *config);
    /* optional (NULL: none): the layer's variables in Keras's order, offsets from the layer's
     * first weight; returns their count (at most KC_MAX_WEIGHTS) */
    int (*weights)(const kc_layer *layer, kc_weight_desc *out);
    /* optional: checks the config against the built layer (its input shape known) */
    kc_status (*check_built)(const struct cJSON *config, const kc_layer *layer,
                             const char *where);
    /* optional: Keras 3's files hold variable i (of weights' list) under a sub-layer's path
     * ("cell", "forward_layer/cell"): <layer path>/<group>/vars/<n>, n counted within the
     * group (the recurrent layers, rnn.c); NULL: <layer path>/vars/<i> */
    const char *(*k3_group)(const kc_layer *layer, int i);
} kc_layer_io;

/* A layer class: one object per Keras class, defined in its file of src/layers/ and listed in
 * registry.c. type_name is Keras's class name, both the summary's and the configs' (io reads
 * and writes them), so the two cannot disagree. */
typedef struct {
    const char *type_name; /* "Dense", as in Keras's summary and configs */
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
    /* optional: floats of workspace the layer needs for batches of up to batch samples with
     * parts parallel parts (im2col buffers, pooling indices, batch statistics) */
    int64_t (*scratch_size)(const kc_layer *layer, int batch, int parts);
    /* backward applies ctx->opt to the layer's weights when it is set (see kc_forward_ctx);
     * the weight gradients it leaves are then unspecified */
    int updates_weights;
    /* Layers of several inputs (merge layers) set max_inputs (>= 2; min_inputs 0 means 2) and
     * these two instead of forward/backward. in[i] (batch, in_sizes[i]); din[i] may be NULL
     * (no gradient wanted for that input); gradients are written, not accumulated. build reads
     * in_shapes[0..n_in) (in_shape is in_shapes[0]). */
    void (*forward_n)(kc_layer *layer, const float *const *in, float *out, int batch,
                      const kc_forward_ctx *ctx);
    void (*backward_n)(kc_layer *layer, const float *const *in, const float *out,
                       const float *dout, float *const *din, int batch,
                       const kc_forward_ctx *ctx);
    int min_inputs, max_inputs;
    /* Masks (Keras's supports_masking and compute_mask). supports_masking: the layer takes a
     * masked input and sees its mask in ctx->mask (a layer that does not drops the mask with
     * Keras 3's warning, at build); compute_mask (optional) writes the output's mask (one byte
     * per output row: batch x output steps) from the input's (in_mask NULL: none) and returns
     * 1, or returns 0 for an output without a mask. The engine calls it after the layer's
     * forward of the same call (Embedding and Masking keep the mask their forward computed in
     * their scratch), and once at build with batch 0 and out_mask NULL (in_mask non-NULL when
     * the input carries a mask) to learn whether the output will carry one: it must then only
     * return. A layer that supports masking without compute_mask passes its input's mask on.
     * compute_mask_n: the same for layers of several inputs (merges; in_masks[i] NULL: input i
     * has none). mask_refusal: Keras's layer supports masking, but kerac does not reproduce
     * what it computes with the mask (BatchNormalization's masked moments, Softmax's masked
     * axes, Maximum's masked values): a masked input is refused at build with this reason. */
    int supports_masking;
    int (*compute_mask)(const kc_layer *layer, const uint8_t *in_mask, uint8_t *out_mask,
                        int batch);
    int (*compute_mask_n)(const kc_layer *layer, const uint8_t *const *in_masks,
                          uint8_t *out_mask, int batch);
    const char *mask_refusal;
    /* None dimensions (KC_NONE) in the input shapes: a class that sets allows_none builds on
     * them (out_shape None where its length is unknown, in_size and out_size -1; param_count
     * must not depend on them) and is built again with each call's lengths, so in_shape,
     * in_size, out_shape and out_size hold the call's concrete values in forward and backward
     * (the declared shapes stay in decl_in_shapes, decl_out_shape). Other classes refuse a
     * None dimension at build, naming the layer. */
    int allows_none;
    /* optional: checks a batch of the layer's input before the forward (Embedding: ids in
     * range). Row i is sample sample[i] of the caller's data (sample NULL: first + i); the
     * message (prefixed with what) names the layer, the sample and the position. */
    kc_status (*check_input)(const kc_layer *layer, const float *in, int batch,
                             const int64_t *sample, int64_t first, const char *what);
    /* optional: releases what the layer holds beyond the struct (called before free) */
    void (*destroy)(kc_layer *layer);
    /* optional: layers of several outputs (a recurrent layer's return_state, Bidirectional's
     * merge_mode=None): how many this layer has (NULL, or 1: one). Such a layer's out_shape is
     * all its outputs side by side per sample (n_outputs reads only the layer's options, so it
     * answers before build); output_part gives output o's declared shape
     * (from decl_in_shapes) and where it lies: *row 0: the out_size values from *head on of
     * the flat sample; *row > 0: after the sample's first *base values come rows of *row
     * values, and output o is columns [*head, *head + its last dimension) of every row. All
     * stay fixed when a None length is bound. The graph records the call with one slice node per output (graph.c). */
    int (*n_outputs)(const kc_layer *layer);
    kc_shape (*output_part)(const kc_layer *layer, int o, int64_t *head, int64_t *row,
                            int64_t *base);
    /* optional, with output_part: which outputs carry the mask compute_mask writes (a
     * recurrent layer's return_state: the sequence output, not the states). The rows of output
     * o's mask per sample (the current call's; KC_NONE before a length is bound), or 0 when
     * output o carries none; compute_mask writes batch times the largest. NULL: each output
     * carries it, its rows those of the combined output (Bidirectional's merge_mode=None). */
    int64_t (*part_mask_rows)(const kc_layer *layer, int o);
    /* its Keras config and variables; a class without to_config (a nested model's) is not
     * saved as a layer */
    kc_layer_io io;
} kc_layer_ops;

/* ---- the registry of classes (registry.c) ---- */
/* The io of Keras's layer class class_name, else of the registered custom layer type of that
 * registered name (or bare class name, for files that write it so; their classes are
 * custom.c's entries: see kc_custom_of_io); NULL when none */
const kc_layer_io *kc_layer_io_find(const char *class_name);
/* "Softmax, Dense, Dropout, ...": the built-in classes, for messages */
void kc_layer_io_names(char *buf, size_t size);
/* the variables of layer (count returned), offsets resolved to the model's flat buffer */
int kc_layer_weights(const kc_layer *layer, kc_weight_desc *out);
/* a layer's outputs per call (graph.c): a nested model's, ops->n_outputs (from the layer's
 * options: known before it is built), else 1 */
int kc_layer_output_count(const kc_layer *layer);
/* the internal slice layers graph.c adds after a layer of several outputs (not in the model's
 * layers, entries or files) */
int kc_is_slice(const kc_layer *layer);

#define KC_MAX_LAYER_INPUTS 16

struct kc_layer {
    const kc_layer_ops *ops;
    char name[48];
    kc_shape in_shape, out_shape;
    int64_t in_size, out_size; /* values per sample */
    /* the shapes it was built for, with KC_NONE where the length comes per call (in_shape and
     * out_shape are then the current call's; see kc_layer_ops.allows_none) */
    kc_shape decl_in_shapes[KC_MAX_LAYER_INPUTS], decl_out_shape;
    int64_t param_count, param_offset;
    int64_t trainable_count; /* the first trainable_count weights are trained, the rest
                                (BatchNormalization's moving mean and variance) are not */
    int64_t kernel_size;     /* floats before the bias: the bias is kernel + kernel_size */
    float *kernel, *bias;   /* views into the model's params: kernel (features, units), bias */
    float *dkernel, *dbias; /* same views into the gradients */
    int units;  /* Dense's units, Conv2D's filters, BatchNormalization's channels */
    kc_act act; /* Dense's or Conv2D's activation, or the Activation layer's */
    int kh, kw, sh, sw;  /* Conv2D's kernel and strides; pooling's pool size and strides */
    int pad_same;        /* padding "same" (else "valid") */
    int pad_top, pad_left; /* "same": rows and columns of zeros before the input */
    float momentum, epsilon; /* BatchNormalization */
    int synchronized;        /* BatchNormalization(synchronized=True) */
    /* a synchronized BatchNormalization in kc_fit's row groups (train.c, grouped_sync_*): 0
     * its own rows' statistics; 1 the step's global mean and variance are set (scratch + 10c);
     * 2 and the global sums of backward (scratch + 6c, doubles) over sync_rows rows */
    int sync_state;
    int64_t sync_rows;
    float *scratch;      /* the layer's workspace (scratch_size floats), owned by the model */
    int scratch_parts;   /* parts it was sized for */
    float rate; /* Dropout */
    uint64_t seed; /* per-layer stream for dropout masks */
    int input_is_data; /* no weights before it: the input is the data (images: mostly zeros) */
    /* several inputs (merge layers): n_in of them; in_shapes[0] == in_shape */
    int n_in;
    kc_shape in_shapes[KC_MAX_LAYER_INPUTS];
    int64_t in_sizes[KC_MAX_LAYER_INPUTS];
    int refs;     /* models and symbolic tensors holding the layer; freed at 0 */
    int frozen;   /* trainable=False: no step, a BatchNormalization runs in inference mode */
    int no_bias;  /* use_bias=False: param_count == kernel_size, bias and dbias NULL */
    /* merge layers */
    int axis;        /* Concatenate's axis (negative counts from the end, as Keras) */
    int dot_axes[2]; /* Dot's axes (per input, negative from the end) */
    int normalize;   /* Dot: l2-normalise along the axes first (cosine proximity) */
    /* spatial layers */
    int dh, dw;            /* Conv2D's dilation_rate (0 means 1) */
    int pad[4];            /* ZeroPadding2D and Cropping2D: top, bottom, left, right */
    int output_padding[2]; /* Conv2DTranspose (-1: None) */
    int interpolation;     /* UpSampling2D: 0 nearest, 1 bilinear */
    int keepdims;          /* global pooling keeps (1, 1, channels) */
    /* sequence layers (seq_simple.c): Permute's dims, 0-based (output axis i is input axis
     * perm[i]), n_perm of them; RepeatVector's n is units */
    int perm[KC_MAX_RANK], n_perm;
    /* Dropout's noise_shape per sample (0: None, the input's size; 1: the mask shared along
     * that axis), n_noise of them; 0: no noise_shape (seq_simple.c) */
    int noise_shape[KC_MAX_RANK], n_noise;
    /* Embedding: input_dim (units is output_dim), mask_zero, tf.keras 2's input_length (0:
     * None); Masking's mask_value is act_param[0] */
    int input_dim, mask_zero, input_length;
    /* activation layers (activations.c): ReLU's max_value (< 0: None), negative_slope and
     * threshold; LeakyReLU's negative_slope and ELU's alpha in act_param[1]; PReLU's
     * shared_axes as a bit mask (bit i: Keras's axis i, 1 the first after the batch) */
    float act_param[3];
    int shared_axes;
    /* initializers and regularizers (initializers.c); zero values mean the layer's default */
    kc_initializer kernel_init, bias_init;
    kc_regularizer kernel_reg, bias_reg, activity_reg;
    /* the graph (src/model/) */
    int built;               /* its shapes are fixed: further calls must match them */
    struct kc_model *home;   /* the model whose buffer holds its weights (NULL: none yet) */
    struct kc_model *nested; /* the model this layer stands for (kc_model_as_layer) */
    struct kc_custom_layer *custom; /* a custom layer's own part (custom.c) */
    struct kc_rnn *rnn; /* the recurrent layers' options and state (rnn.c) */
    struct kc_text_vectorization *tv; /* TextVectorization's vectorizer (owned) */
    int64_t tv_depth; /* TextVectorization: its output's width (vocabulary_size from a file) */
    struct kc_wrap *wrap; /* TimeDistributed's and Bidirectional's inner layers (wrappers.c) */
    struct kc_prep *prep; /* the preprocessing layers' options (preprocessing.c, owned) */
    /* fusions the model plans (model.c, plan_fusion), which change no result: */
    struct kc_layer *fused_dropout; /* Dense(relu): the Dropout after it, whose mask this
                                       layer's product applies; it writes the Dropout's output,
                                       and the Dropout is skipped */
    const struct kc_layer *gate_from; /* Dense whose input is a relu Dense's output (through
                                         its fused Dropout or directly): the input gradient
                                         leaves the product multiplied by that relu's and
                                         dropout's derivative, and that Dense takes it as is */
};

kc_layer *kc_layer_new(const kc_layer_ops *ops);
/* one holder less; frees the layer (ops->destroy first) when none is left */
void kc_layer_release(kc_layer *layer);
/* The window geometry of a built Conv2D or pooling layer (channels-last input); a rank-2
 * input (steps, channels) (Conv1D, 1-D pooling) is an image of height 1 */
static inline kc_window kc_layer_window(const kc_layer *l) {
    if (l->in_shape.rank == 2)
        return (kc_window){1, l->in_shape.dims[0], l->in_shape.dims[1], l->kh, l->kw, l->sh,
                           l->sw, l->pad_top, l->pad_left, 1, l->out_shape.dims[0]};
    return (kc_window){l->in_shape.dims[0], l->in_shape.dims[1], l->in_shape.dims[2], l->kh,
                       l->kw, l->sh, l->sw, l->pad_top, l->pad_left, l->out_shape.dims[0],
                       l->out_shape.dims[1]};
}
/* A layer of class ops (Conv2D's or Conv2DTranspose's) with o's filters, kernel_size, strides,
 * padding, activation, dilation_rate and use_bias (conv.c) */
kc_layer *kc_conv_new(const kc_layer_ops *ops, int filters, const kc_conv2d_opts *o);
/* Conv2D's forward, backward and scratch (conv.c), which Conv1D (conv1d.c) shares: its layer
 * is a height-1 Conv2D (kh = sh = dh = 1, pad_top 0) of input (steps, channels) */
/* The pooling layers' forward, backward and scratch on a built layer's window (pool.c): Max-
 * and AveragePooling2D, and the 1-D ones as images of height 1 (conv1d.c) */
int kc_pool_is_max(const kc_layer *l);
void kc_pool_forward(kc_layer *l, const float *in, float *out, int batch,
                     const kc_forward_ctx *ctx);
void kc_pool_backward(kc_layer *l, const float *in, const float *out, float *dout, float *din,
                      int batch, int dout_is_preactivation, const kc_forward_ctx *ctx);
int64_t kc_pool_scratch(const kc_layer *l, int batch, int parts);
void kc_conv_forward(kc_layer *l, const float *in, float *out, int batch,
                     const kc_forward_ctx *ctx);
void kc_conv_backward(kc_layer *l, const float *in, const float *out, float *dout, float *din,
                      int batch, int dout_is_preactivation, const kc_forward_ctx *ctx);
int64_t kc_conv_scratch(const kc_layer *l, int batch, int parts);
/* The key of a Dropout layer's mask in this step (kc_dropout_apply) */
uint64_t kc_dropout_key(const kc_layer *dropout, const kc_forward_ctx *ctx);
/* Dropout with a noise_shape (seq_simple.c): build's check against the input's shape, and
 * y = x * mask / (1 - rate), one draw per cell of the noise shape (both directions) */
kc_status kc_dropout_noise_check(const kc_layer *dropout);
void kc_dropout_noise_apply(const kc_layer *dropout, float *y, const float *x, int batch,
                            uint64_t key);
/* 1 / (1 - rate) of a relu Dense's fused Dropout when it is active in ctx, else 1 */
float kc_fused_dropout_scale(const kc_layer *relu_dense, const kc_forward_ctx *ctx);
/* The weightless layers' build and init: output shape = input shape, no weights. */
kc_status kc_same_shape_build(kc_layer *layer);
void kc_no_init(kc_layer *layer, kc_rng *rng);
/* out = in, din = dout: layers that change only the shape (Flatten, Reshape) */
void kc_copy_forward(kc_layer *layer, const float *in, float *out, int batch,
                     const kc_forward_ctx *ctx);
void kc_copy_backward(kc_layer *layer, const float *in, const float *out, float *dout,
                      float *din, int batch, int dout_is_preactivation, const kc_forward_ctx *ctx);
/* KC_OK when the layer's input is an image, (height, width, channels); else an error naming the
 * layer and the shape it got (src/layers/resize.c) */
kc_status kc_layer_need_image(const kc_layer *l);

#endif
