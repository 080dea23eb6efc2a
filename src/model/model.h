/* model.h: the model struct, shared by the files of src/model/ only. A model is a directed
 * acyclic graph of layer calls (nodes) between values (tensors): Sequential is the chain case.
 * graph.c builds it (kc_sequential / kc_add, kc_input / kc_call / kc_functional, nested
 * models inlined), plan.c plans the fusions once, engine.c runs forward and backward over the
 * workspace, train.c compiles, fits, evaluates and predicts, summary.c prints. */
#ifndef KERAC_MODEL_H
#define KERAC_MODEL_H
#include "../internal.h"
#include "../layers/layer.h"
#include "../losses.h"
#include "../metrics.h"
#include "../optimizers.h"

#define KC_NAME_MAX 48

/* a value of the graph: a model input, or a node's output */
typedef struct {
    kc_shape shape;  /* as declared: KC_NONE where the length comes per call */
    kc_shape run;    /* this call's shape (kc_model_bind_shapes; shape itself without None) */
    int64_t size;    /* values per sample in this call (-1 before a length is bound) */
    kc_dtype dtype;  /* a model input's: KC_FLOAT32 or KC_INT32 (token ids, carried as floats) */
    /* Keras's mask (planned at build, kc_model_plan_masks): has_mask says the tensor carries
     * one; mask_src is the tensor whose buffer holds it (a layer that passes its input's mask
     * on shares that buffer); mask: rows bytes per sample (kc_model_mask_rows) */
    int has_mask, mask_src;
    uint8_t *mask;
    int64_t act_cap, mask_cap; /* floats of act, bytes of mask allocated */
    int producer;    /* node index; -1 for a model input */
    int n_consumers; /* nodes that read it */
    int output;      /* index among the model's outputs, or -1 */
    /* planned (plan.c) */
    int needs_grad; /* some trainable weight lies upstream: its gradient is computed */
    int data_only;  /* derived from the inputs through weightless layers only */
    int act_from;   /* the tensor whose buffer holds its values (a fused Dropout's output
                       for a Dense(relu) whose Dropout is fused; itself otherwise) */
    int grad_slot;  /* gradient buffer (a pool slot), -1 when it needs none */
    /* workspace */
    float *act;        /* (batch, size) */
    int grad_written;  /* this backward pass: the slot holds a first contribution */
} kc_tval;

/* one call of a layer */
typedef struct {
    kc_layer *layer;
    int n_in;
    int in[KC_MAX_LAYER_INPUTS]; /* tensor indices */
    int out;
    int li;       /* its layer's index in layers[] */
    int write_to; /* the tensor its forward writes: out, or its fused Dropout's output */
    int call;   /* how many calls of the same layer come before this one */
    int nest;   /* the top-level entry (Keras's model.layers) this node belongs to */
    float *scratch;
    /* the fusion plan (plan.c); all zero on the plain path */
    int skip;                         /* a Dropout fused into the Dense before it */
    kc_layer *fused_dropout;          /* Dense(relu): the Dropout whose mask it applies */
    const kc_layer *gate_from;        /* its input gradient leaves gated by that relu Dense */
    int dout_pre;                     /* its output gradient arrives pre-activation */
    int fused_step;                   /* it steps its own weights inside backward */
    int last_backward;                /* the layer's weight gradients are complete after it */
    int inference;                    /* its call said training=False */
    int first_backward;               /* the first of the layer's calls that backward visits */
    int64_t scratch_cap;              /* floats of scratch allocated */
} kc_node;

/* one call of a top-level entry (a layer, or a nested model whose nodes were inlined): Keras's
 * inbound node */
typedef struct {
    int entry;
    int n_in, n_out;
    int in[KC_MAX_LAYER_INPUTS], out[KC_MAX_IO]; /* tensor indices */
    int inference; /* called with training=False: its nodes run in inference mode */
} kc_callrec;

/* Keras's model.layers: a layer, or a nested model, in order (InputLayers left out) */
typedef struct {
    kc_layer *layer; /* a layer of this model, or the wrapper of a nested model */
    kc_model *model; /* the nested model, or NULL */
    int first_layer, n_layers; /* its leaf layers in layers[] */
} kc_entry;

struct kc_model {
    char name[KC_NAME_MAX];
    int refs;       /* the user, outer models, models borrowing its weights */
    int functional; /* built from tensors (else Sequential: kc_sequential + kc_add) */
    kc_status build_error; /* the first kc_add failure, reported again by kc_compile */
    char build_error_msg[512];

    /* the graph, nodes in topological order */
    kc_tval *tensors;
    kc_node *nodes;
    int n_tensors, n_nodes, cap_tensors, cap_nodes;
    int n_inputs, n_outputs;
    int inputs[KC_MAX_IO], outputs[KC_MAX_IO];
    char input_names[KC_MAX_IO][KC_NAME_MAX];
    kc_tensor *sym_inputs[KC_MAX_IO], *sym_outputs[KC_MAX_IO]; /* held for nesting (refs) */

    kc_entry *entries;
    int n_entries, cap_entries;
    kc_callrec *calls;
    int n_calls, cap_calls;
    /* leaf layers in weight order (Keras's model.weights), each once, and their place in this
     * model's flat buffers */
    kc_layer **layers;
    int64_t *offsets;
    int n_layers, cap_layers;
    int64_t n_params;

    /* weights: own buffers, or a range of another model's (weights shared with it) */
    float *own_params, *own_grads;
    kc_model *owner; /* NULL when the buffers are its own */
    int64_t owner_base;
    int owner_ref;   /* it holds a reference on owner (not when owner holds it nested) */
    kc_model **borrowers; /* models whose weights are a range of this one's */
    int n_borrowers;
    float *params, *grads; /* resolved (kc_model_bind) */

    kc_optimizer *opt;
    kc_loss losses[KC_MAX_IO];          /* the kinds of loss_specs */
    kc_loss_spec loss_specs[KC_MAX_IO]; /* defaults filled in (kc_loss_spec_resolve) */
    float loss_weights[KC_MAX_IO];
    kc_metric_state *mets; /* the compiled metrics, in Keras's order (output by output, the
                              metrics then the weighted metrics); their state is the epoch's */
    int n_mets;
    /* the value keys in Keras's metrics_names order: "loss", the outputs' losses (several
     * outputs), every metric's key; kc_metrics.keys points here */
    int n_value_keys;
    const char **value_keys;
    unsigned char *trained; /* per leaf layer: trained in this compile (not frozen) */

    kc_rng rng;        /* init, then shuffling */
    uint64_t step;     /* training steps taken: keys the dropout masks */
    int epoch;         /* epochs completed, saved with the model */
    int stop_training; /* set by a callback */
    int bf16;
    int no_fusion;     /* kc_set_fusion(m, 0): the plain path */
    int planned;       /* the plan matches the graph, the flags and the compile */

    /* a model input's shape has a None dimension: each call binds its lengths
     * (kc_model_bind_shapes), the layer shapes after it follow */
    int has_none;
    int batch_size; /* kc_model_set_batch_size: Keras's fixed batch size (0: None) */
    /* kc_fit's row groups (src/dist/): the losses divide by the global batch's rows instead of
     * the call's (0: the call's) */
    int loss_rows;
    /* kc_fit's row groups on MPI: called in backward after each node, with the leaf layer's
     * index once its weight gradients are final (its last call), -1 otherwise; the reduction
     * of a bucket of layers starts there (train.c, src/dist/) */
    void (*grads_ready)(void *arg, int li);
    void *grads_ready_arg;
    /* workspace for batches of up to ws_batch samples */
    int ws_batch, ws_parts;
    int64_t grad_cap, ybuf_cap[KC_MAX_IO]; /* floats allocated per buffer */
    float **grad_pool; /* gradient buffers, batch x the largest tensor each */
    int n_grad_pool;
    float **grad_tmp;  /* further contributions to gradients, before they are added */
    int n_grad_tmp;    /* the most one node needs (planned) */
    float *wgrad_tmp;  /* weight gradients of a shared layer's further calls */
    int64_t wgrad_tmp_size;
    float *ybuf[KC_MAX_IO]; /* targets per output */
    /* sample weights per output (one per sample), used where weighted[o] (sample_weights.c) */
    float *wbuf[KC_MAX_IO];
    unsigned char weighted[KC_MAX_IO];
};

/* graph.c */
kc_status kc_model_check_built(const kc_model *m, const char *what);
/* resolves params/grads through the owner chain and binds each leaf layer's offset and views
 * to this model's layout; creates the weights on first need */
kc_status kc_model_ensure_weights(kc_model *m, const char *what);
void kc_model_bind(kc_model *m);
int kc_model_layer_index(const kc_model *m, const kc_layer *l);
/* leaf layer li trains: not frozen when the model was compiled (before compile: not frozen) */
int kc_model_layer_trained(const kc_model *m, int li);
/* plan.c */
kc_status kc_model_plan(kc_model *m); /* KC_ENOMEM: planned stays 0 */
/* sample_weights.c: sample_weight and class_weight into wbuf (fit, evaluate, train_on_batch) */
kc_status kc_model_check_sample_weights(const kc_model *m, const kc_dataset *ds, const char *what);
kc_status kc_model_check_class_weight(const kc_model *m, const kc_dataset *ds, const float *cw,
                                      int n, const char *what);
/* the batch's weights: ds's sample weights at index[0..count) (none: unweighted) */
void kc_model_gather_sample_weights(kc_model *m, const kc_dataset *ds, const int64_t *index,
                                    int count);
/* class_weight over the targets in ybuf[0] (after the batch is loaded) */
void kc_model_apply_class_weight(kc_model *m, int batch, const float *cw, int n);
/* a user's batch of weights (sw NULL, or sw[o] NULL: output o unweighted) */
kc_status kc_model_set_batch_weights(kc_model *m, const float *const *sw, int batch,
                                     const char *what);
/* the masks' rows per sample of tensor t (its shape without the last axis) */
int64_t kc_model_mask_rows(const kc_model *m, int t);
/* graph.c: which tensors carry a mask, from node `from` on (Keras 3's rules: a warning where a
 * layer drops one, an error where kerac refuses it) */
kc_status kc_model_plan_masks(kc_model *m, int from);
/* engine.c: this call's shapes from the inputs' (one per model input, concrete; NULL: the
 * declared ones, which must then have no None): every layer after a None dimension is built
 * again for these lengths. what prefixes errors. */
kc_status kc_model_bind_shapes(kc_model *m, const kc_shape *inputs, const char *what);
/* checks the batch in the inputs' buffers before the forward (kc_layer_ops.check_input on the
 * layers reading a model input: Embedding's ids): row i is sample index[i] of the caller's data
 * (index NULL: first + i) */
kc_status kc_model_check_batch(kc_model *m, int batch, const int64_t *index, int64_t first,
                               const char *what);
kc_status kc_model_ensure_workspace(kc_model *m, int batch);
void kc_model_free_workspace(kc_model *m);
void kc_model_forward(kc_model *m, int batch, const kc_forward_ctx *ctx);
/* the optimizer's whole step over every trained variable (optim_step.c), when it needs all
 * gradients first (kc_optimizer_needs_all_grads) */
kc_status kc_model_optimizer_step_all(kc_model *m);
/* acts of the inputs and ybuf hold the batch; returns the total loss (weighted sum plus
 * regularization); per_output[o] (optional) each output's loss; metrics: update the compiled
 * metrics with the batch's outputs (before the step). update: step the optimizer, else fill
 * m->grads. */
double kc_model_forward_backward(kc_model *m, int batch, const kc_forward_ctx *ctx,
                                 double *per_output, int metrics, int update);
/* the loss of the forward already run (inference), per output and total; metrics as above */
double kc_model_loss(kc_model *m, int batch, double *per_output, int metrics);
/* The compiled metrics' update with the batch of outputs in the workspace (ybuf the targets):
 * sample_weight, one per sample per output (NULL, or a NULL entry: unweighted), reaches the
 * weighted metrics only, as Keras's weighted_metrics; the others are unweighted. mask (NULL,
 * or a NULL entry: none): each output's mask, one byte per row; Keras's Mean metrics count only
 * the rows it keeps (AUC, Precision, Recall and the F-scores ignore it, as Keras's). */
void kc_model_update_metrics(kc_model *m, int batch, const float *const *sample_weight,
                             const uint8_t *const *mask);
void kc_model_reset_metrics(kc_model *m);
/* train.c: releases the compiled metrics and their keys */
void kc_model_free_metrics(kc_model *m);
int kc_model_output_cols(const kc_model *m, int o);
int kc_model_is_type(const kc_layer *l, const char *type);
/* the call record (and output index) that produced tensor t; -1 for a model input */
int kc_model_call_of(const kc_model *m, int t, int *index);
/* which call of its entry call c is (Keras's node index) */
int kc_model_call_number(const kc_model *m, int c);
/* for the config reader: the call that made t ran with training=False; and releasing the
 * tensors of ts[] that nothing holds (those held are left to their holders) */
void kc_tensor_set_inference(kc_tensor *t);
void kc_tensors_free_floating(kc_tensor **ts, int n);
/* the name Keras gives output o (its layer's, or nested model's, name) */
const char *kc_model_output_name(const kc_model *m, int o);
#endif
