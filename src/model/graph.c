/* graph.c: building a model's graph. Sequential (kc_sequential, kc_add) appends to a chain;
 * the Functional API (kc_input, kc_call, kc_functional) records calls on symbolic tensors and
 * kc_functional turns the calls an output depends on into nodes in topological order. A nested
 * model's nodes are inlined (its layers shared with it); a layer called twice shares its
 * weights. Also: names, weights (one flat buffer per model, shared ranges between models that
 * share layers), trainable flags, and the accessors. */
#include "model.h"
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- symbolic tensors --------------------------------------------------------------------- */

typedef struct sym_call {
    int refs;
    int inference; /* called with training=False */
    kc_layer *layer; /* holds a reference */
    int n_in, n_out;
    kc_tensor *in[KC_MAX_LAYER_INPUTS]; /* hold references */
    kc_tensor *out[KC_MAX_IO];          /* weak: the tensors it made */
    unsigned mark;                      /* kc_functional's visit generation */
} sym_call;

struct kc_tensor {
    int refs;
    kc_shape shape;
    kc_dtype dtype; /* an Input's: KC_FLOAT32 or KC_INT32 */
    sym_call *call; /* NULL for an Input */
    int index;      /* which output of call */
    char name[KC_NAME_MAX];
    unsigned mark; /* kc_functional's visit generation */
    int id;        /* its tensor index in the model being built */
};

static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const char *base;
    int next;
} name_counters[128];
static int n_name_counters;
static unsigned visit_generation;
static uint64_t session_calls; /* layers built by kc_call: their dropout streams */

void kc_clear_session(void) {
    pthread_mutex_lock(&names_lock);
    n_name_counters = 0;
    session_calls = 0;
    pthread_mutex_unlock(&names_lock);
}

/* Keras's auto_name: base, base_1, base_2, ... over the session */
static void session_name(const char *base, char *out, size_t size) {
    pthread_mutex_lock(&names_lock);
    int i = 0;
    while (i < n_name_counters && strcmp(name_counters[i].base, base)) i++;
    if (i == n_name_counters && n_name_counters < 128) {
        name_counters[i].base = base;
        name_counters[i].next = 0;
        n_name_counters++;
    }
    int n = i < 128 ? name_counters[i].next++ : 0;
    pthread_mutex_unlock(&names_lock);
    if (n) snprintf(out, size, "%s_%d", base, n);
    else snprintf(out, size, "%s", base);
}

static void tensor_release(kc_tensor *t);

static void call_release(sym_call *c) {
    if (!c || --c->refs > 0) return;
    for (int i = 0; i < c->n_in; i++) tensor_release(c->in[i]);
    kc_layer_release(c->layer);
    free(c);
}

static void tensor_release(kc_tensor *t) {
    if (!t || --t->refs > 0) return;
    call_release(t->call);
    free(t);
}

void kc_tensor_free(kc_tensor *t) {
    if (t && t->refs <= 0) {
        t->refs = 1;
        tensor_release(t);
    }
}

kc_shape kc_tensor_shape(const kc_tensor *t) { return t ? t->shape : (kc_shape){0}; }

void kc_tensor_set_inference(kc_tensor *t) {
    if (t && t->call) t->call->inference = 1;
}

void kc_tensors_free_floating(kc_tensor **ts, int n) {
    /* which are free is decided before any is freed: freeing one may free the others it holds,
     * never one that nothing held */
    int k = 0;
    for (int i = 0; i < n; i++)
        if (ts[i] && ts[i]->refs <= 0) ts[k++] = ts[i];
    for (int i = 0; i < k; i++) kc_tensor_free(ts[i]);
}

/* a model input's shape: positive dims, or KC_NONE (a length given per call) */
static int valid_shape(kc_shape s) {
    if (s.rank < 0 || s.rank > KC_MAX_RANK) return 0;
    for (int i = 0; i < s.rank; i++)
        if (s.dims[i] <= 0 && s.dims[i] != KC_NONE) return 0;
    return 1;
}

static int has_none(kc_shape s) {
    for (int i = 0; i < s.rank; i++)
        if (s.dims[i] == KC_NONE) return 1;
    return 0;
}

kc_tensor *kc_input_ex(kc_shape shape, kc_dtype dtype, const char *name) {
    char buf[64];
    if (!valid_shape(shape) || shape.rank < 1) {
        kc_err(KC_EINVAL, "kc_input: invalid shape %s (dims > 0, or KC_NONE for a length given "
                          "per call)", kc_shape_str(shape, buf, sizeof buf));
        return NULL;
    }
    if (dtype != KC_FLOAT32 && dtype != KC_INT32 && dtype != KC_UINT8 && dtype != KC_STRING) {
        kc_err(KC_EINVAL, "kc_input: unknown dtype %d (KC_FLOAT32, KC_INT32 or KC_STRING)",
               (int)dtype);
        return NULL;
    }
    kc_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        kc_err(KC_ENOMEM, "kc_input: out of memory");
        return NULL;
    }
    t->shape = shape;
    t->dtype = dtype == KC_INT32 || dtype == KC_STRING ? dtype : KC_FLOAT32;
    if (name && *name) snprintf(t->name, sizeof t->name, "%s", name);
    else session_name("input_layer", t->name, sizeof t->name);
    return t;
}

kc_tensor *kc_input_named(kc_shape shape, const char *name) {
    return kc_input_ex(shape, KC_FLOAT32, name);
}

kc_tensor *kc_input(kc_shape shape) { return kc_input_ex(shape, KC_FLOAT32, NULL); }

/* ---- layers ------------------------------------------------------------------------------- */

const char *kc_get_layer_name(const kc_layer *l) { return l ? l->name : NULL; }

kc_status kc_layer_set_name(kc_layer *l, const char *name) {
    if (!l || !name || !*name) return kc_err(KC_EINVAL, "kc_layer_set_name: NULL layer or empty name");
    if (l->built || l->refs > 0)
        return kc_err(KC_ESTATE, "kc_layer_set_name: layer %s is already in use; name it before "
                                 "adding or calling it", l->name);
    if (strlen(name) >= sizeof l->name || strchr(name, '/'))
        return kc_err(KC_EINVAL, "kc_layer_set_name: '%s' is too long or holds '/'", name);
    snprintf(l->name, sizeof l->name, "%s", name);
    return KC_OK;
}

int kc_get_trainable(const kc_layer *l) { return l && !l->frozen; }

kc_status kc_set_trainable(kc_layer *l, int trainable) {
    if (!l) return kc_err(KC_EINVAL, "kc_set_trainable: layer is NULL");
    if (l->nested) return kc_model_set_trainable(l->nested, trainable);
    l->frozen = !trainable;
    return KC_OK;
}

kc_status kc_model_set_trainable(kc_model *m, int trainable) {
    if (!m) return kc_err(KC_EINVAL, "kc_model_set_trainable: model is NULL");
    for (int i = 0; i < m->n_layers; i++) m->layers[i]->frozen = !trainable;
    return KC_OK;
}

/* "Sequential" or "Functional": the class a nested model saves as */
static kc_status nested_build(kc_layer *l) { return KC_OK; }
static void nested_destroy(kc_layer *l) { kc_model_free(l->nested); }
static const kc_layer_ops sequential_layer_ops = {.type_name = "Sequential",
                                                  .base_name = "sequential",
                                                  .build = nested_build,
                                                  .init = kc_no_init,
                                                  .destroy = nested_destroy};
static const kc_layer_ops functional_layer_ops = {.type_name = "Functional",
                                                  .base_name = "functional",
                                                  .build = nested_build,
                                                  .init = kc_no_init,
                                                  .destroy = nested_destroy};

kc_layer *kc_model_as_layer(kc_model *m) {
    if (!m) {
        kc_err(KC_EINVAL, "kc_model_as_layer: model is NULL");
        return NULL;
    }
    kc_status st = kc_model_check_built(m, "kc_model_as_layer");
    if (st) return NULL;
    kc_layer *l = kc_layer_new(m->functional ? &functional_layer_ops : &sequential_layer_ops);
    if (!l) return NULL;
    l->nested = m;
    m->refs++;
    l->built = 1;
    snprintf(l->name, sizeof l->name, "%s", m->name);
    return l;
}

/* ---- slices: the outputs of a layer of several outputs ----------------------------------- */

/* A layer of several outputs writes them side by side in one tensor per sample; its call's
 * outputs are slice nodes of that tensor: pad[1] 0: out_size values from pad[0] on; pad[1] > 0:
 * after the first pad[2] values, rows of pad[1] values, the slice columns [pad[0], pad[0] + its
 * last dim). A
 * slice is no layer of the model: not in layers[], the entries, the summary or the files. */
static kc_status slice_build(kc_layer *l) {
    kc_shape s = l->decl_out_shape;
    int64_t last = s.rank ? s.dims[s.rank - 1] : 1;
    if (s.rank >= 2 && s.dims[0] == KC_NONE && l->pad[1] > 0 && l->in_size >= 0)
        s.dims[0] = (l->in_size - l->pad[2]) / l->pad[1]; /* rows of the bound length */
    else if (s.rank >= 2 && s.dims[0] == KC_NONE && l->in_size >= 0)
        s.dims[0] = (l->in_size - l->pad[0]) / last;
    l->out_shape = s;
    return KC_OK;
}

static void slice_rows(const kc_layer *l, int64_t *rows, int64_t *w) {
    *w = l->pad[1] > 0 ? l->out_shape.dims[l->out_shape.rank - 1] : l->out_size;
    *rows = l->pad[1] > 0 ? (l->in_size - l->pad[2]) / l->pad[1] : 1;
}

static void slice_forward(kc_layer *l, const float *in, float *out, int batch,
                          const kc_forward_ctx *ctx) {
    int64_t rows, w, stride = l->pad[1] > 0 ? l->pad[1] : 0;
    slice_rows(l, &rows, &w);
    for (int b = 0; b < batch; b++)
        for (int64_t r = 0; r < rows; r++)
            memcpy(out + (int64_t)b * l->out_size + r * w,
                   in + (int64_t)b * l->in_size + l->pad[2] + r * stride + l->pad[0],
                   sizeof(float) * (size_t)w);
}

/* the layer's output mask, for the outputs that carry it: one byte per row of the slice */
static int slice_mask(const kc_layer *l, const uint8_t *in_mask, uint8_t *out_mask, int batch) {
    if (!in_mask || !l->pad[3]) return 0;
    if (out_mask) {
        int64_t last = l->out_shape.rank ? l->out_shape.dims[l->out_shape.rank - 1] : 1;
        memcpy(out_mask, in_mask, (size_t)batch * (size_t)(l->out_size / last));
    }
    return 1;
}

static void slice_backward(kc_layer *l, const float *in, const float *out, float *dout,
                           float *din, int batch, int pre, const kc_forward_ctx *ctx) {
    if (!din) return;
    int64_t rows, w, stride = l->pad[1] > 0 ? l->pad[1] : 0;
    slice_rows(l, &rows, &w);
    memset(din, 0, sizeof(float) * (size_t)batch * (size_t)l->in_size);
    for (int b = 0; b < batch; b++)
        for (int64_t r = 0; r < rows; r++)
            memcpy(din + (int64_t)b * l->in_size + l->pad[2] + r * stride + l->pad[0],
                   dout + (int64_t)b * l->out_size + r * w, sizeof(float) * (size_t)w);
}

static const kc_layer_ops slice_ops = {.type_name = "Slice",
                                       .base_name = "slice",
                                       .build = slice_build,
                                       .init = kc_no_init,
                                       .forward = slice_forward,
                                       .backward = slice_backward,
                                       /* a column slice's rows are its input's: the mask
                                        * passes on (a flat one's input carries none) */
                                       .supports_masking = 1,
                                       .compute_mask = slice_mask,
                                       .allows_none = 1};

int kc_is_slice(const kc_layer *l) { return l && l->ops == &slice_ops; }

int kc_layer_output_count(const kc_layer *l) {
    if (l->nested) return l->nested->n_outputs;
    return l->ops->n_outputs ? l->ops->n_outputs(l) : 1;
}

/* output o's declared shape of a built layer */
static kc_shape layer_out_shape(const kc_layer *l, int o) {
    if (l->nested) return l->nested->tensors[l->nested->outputs[o]].shape;
    if (kc_layer_output_count(l) > 1) {
        int64_t head, row, base;
        return l->ops->output_part(l, o, &head, &row, &base);
    }
    return l->decl_out_shape;
}

/* ---- the model's graph -------------------------------------------------------------------- */

static kc_status grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return KC_OK;
    int c = *cap ? *cap : 8;
    while (c < need) c *= 2;
    void *q = realloc(*p, elem * (size_t)c);
    if (!q) return kc_err(KC_ENOMEM, "out of memory building the model");
    memset((char *)q + elem * (size_t)*cap, 0, elem * (size_t)(c - *cap));
    *p = q;
    *cap = c;
    return KC_OK;
}

static int add_tensor(kc_model *m, kc_shape shape, int producer) {
    if (grow((void **)&m->tensors, &m->cap_tensors, m->n_tensors + 1, sizeof *m->tensors))
        return -1;
    kc_tval *t = &m->tensors[m->n_tensors];
    memset(t, 0, sizeof *t);
    t->shape = t->run = shape;
    t->size = kc_shape_size(shape);
    t->dtype = KC_FLOAT32;
    t->mask_src = m->n_tensors;
    if (has_none(shape)) m->has_none = 1;
    t->producer = producer;
    t->output = -1;
    t->act_from = m->n_tensors;
    t->grad_slot = -1;
    return m->n_tensors++;
}

int kc_model_layer_index(const kc_model *m, const kc_layer *l) {
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i] == l) return i;
    return -1;
}

int kc_model_layer_trained(const kc_model *m, int li) {
    if (li < 0) return 1; /* a slice (no layer of the model) */
    return m->trained ? m->trained[li] : !m->layers[li]->frozen;
}

static kc_status add_leaf(kc_model *m, kc_layer *l) {
    if (grow((void **)&m->layers, &m->cap_layers, m->n_layers + 1, sizeof *m->layers)) return KC_ENOMEM;
    int64_t *offs = realloc(m->offsets, sizeof *offs * (size_t)m->cap_layers);
    if (!offs) return kc_err(KC_ENOMEM, "out of memory building the model");
    m->offsets = offs;
    m->offsets[m->n_layers] = m->n_params;
    m->layers[m->n_layers++] = l;
    l->refs++;
    m->n_params += l->param_count;
    return KC_OK;
}

/* a node calling layer on tensors in[]; its output tensor gets out_shape */
static int add_node(kc_model *m, kc_layer *l, const int *in, int n_in, kc_shape out_shape,
                    int nest) {
    if (grow((void **)&m->nodes, &m->cap_nodes, m->n_nodes + 1, sizeof *m->nodes)) return -1;
    int out = add_tensor(m, out_shape, m->n_nodes);
    if (out < 0) return -1;
    kc_node *n = &m->nodes[m->n_nodes];
    memset(n, 0, sizeof *n);
    n->layer = l;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        n->in[i] = in[i];
        m->tensors[in[i]].n_consumers++;
    }
    n->out = out;
    n->nest = nest;
    for (int k = 0; k < m->n_nodes; k++) n->call += m->nodes[k].layer == l;
    m->n_nodes++;
    return out;
}

static kc_status add_entry(kc_model *m, kc_layer *l, kc_model *nested) {
    if (grow((void **)&m->entries, &m->cap_entries, m->n_entries + 1, sizeof *m->entries))
        return KC_ENOMEM;
    kc_entry *e = &m->entries[m->n_entries++];
    e->layer = l;
    e->model = nested;
    e->first_layer = m->n_layers;
    l->refs++;
    kc_status st = KC_OK;
    if (nested) {
        for (int i = 0; i < nested->n_layers && !st; i++) {
            if (kc_model_layer_index(m, nested->layers[i]) >= 0)
                return kc_err(KC_EINVAL,
                              "layer %s is both inside the nested model %s and elsewhere in "
                              "this model; kerac shares a layer through one of them only",
                              nested->layers[i]->name, nested->name);
            st = add_leaf(m, nested->layers[i]);
        }
        e->n_layers = nested->n_layers;
    } else {
        if (kc_model_layer_index(m, l) < 0) st = add_leaf(m, l);
        e->n_layers = 1;
    }
    return st;
}

static int entry_of(const kc_model *m, const kc_layer *l) {
    for (int i = 0; i < m->n_entries; i++)
        if (m->entries[i].layer == l || (m->entries[i].model && l->nested == m->entries[i].model))
            return i;
    return -1;
}

/* *e: the top-level entry for layer (added on its first call) */
static kc_status entry_for(kc_model *m, kc_layer *l, int *e) {
    *e = entry_of(m, l);
    if (*e >= 0) return KC_OK;
    kc_status st = add_entry(m, l, l->nested);
    *e = m->n_entries - 1;
    return st;
}

static kc_status add_callrec(kc_model *m, int entry, const int *in, int n_in, const int *out,
                             int n_out, int inference, int first_node) {
    if (grow((void **)&m->calls, &m->cap_calls, m->n_calls + 1, sizeof *m->calls)) return KC_ENOMEM;
    kc_callrec *c = &m->calls[m->n_calls++];
    c->entry = entry;
    c->n_in = n_in;
    c->n_out = n_out;
    memcpy(c->in, in, sizeof(int) * (size_t)n_in);
    memcpy(c->out, out, sizeof(int) * (size_t)n_out);
    c->inference = inference;
    if (inference)
        for (int k = first_node; k < m->n_nodes; k++) m->nodes[k].inference = 1;
    return KC_OK;
}

int kc_model_call_of(const kc_model *m, int t, int *index) {
    for (int c = 0; c < m->n_calls; c++)
        for (int o = 0; o < m->calls[c].n_out; o++)
            if (m->calls[c].out[o] == t) {
                if (index) *index = o;
                return c;
            }
    return -1;
}

int kc_model_call_number(const kc_model *m, int c) {
    int n = 0;
    for (int k = 0; k < c; k++) n += m->calls[k].entry == m->calls[c].entry;
    return n;
}

/* Inlines nested model n called on tensors in[] of m: outs[] receive its outputs. */
static kc_status inline_model(kc_model *m, kc_model *n, const int *in, int nest, int *outs) {
    int *map = malloc(sizeof(int) * (size_t)(n->n_tensors ? n->n_tensors : 1));
    if (!map) return kc_err(KC_ENOMEM, "out of memory nesting model %s", n->name);
    for (int i = 0; i < n->n_tensors; i++) map[i] = -1;
    for (int i = 0; i < n->n_inputs; i++) map[n->inputs[i]] = in[i];
    kc_status st = KC_OK;
    for (int k = 0; k < n->n_nodes && !st; k++) {
        const kc_node *src = &n->nodes[k];
        int ins[KC_MAX_LAYER_INPUTS];
        for (int i = 0; i < src->n_in; i++) ins[i] = map[src->in[i]];
        int out = add_node(m, src->layer, ins, src->n_in, n->tensors[src->out].shape, nest);
        if (out < 0) st = KC_ENOMEM;
        else {
            if (kc_is_slice(src->layer)) src->layer->refs++; /* released with the nodes */
            map[src->out] = out;
            m->nodes[m->n_nodes - 1].inference = src->inference;
        }
    }
    for (int o = 0; o < n->n_outputs && !st; o++) outs[o] = map[n->outputs[o]];
    free(map);
    return st;
}

/* the call of a layer of several outputs on in[]: its node (writing all the outputs side by
 * side) and one slice node per output, whose tensors outs[] receive */
static kc_status add_multi_node(kc_model *m, kc_layer *l, const int *in, int n_in, int nest,
                                int *outs) {
    int all = add_node(m, l, in, n_in, l->decl_out_shape, nest);
    if (all < 0) return KC_ENOMEM;
    int n_out = kc_layer_output_count(l);
    for (int o = 0; o < n_out; o++) {
        kc_layer *s = kc_layer_new(&slice_ops);
        if (!s) return kc_err(KC_ENOMEM, "out of memory building the model");
        int64_t head, row, base = 0;
        kc_shape shape = l->ops->output_part(l, o, &head, &row, &base);
        snprintf(s->name, sizeof s->name, "%.38s_part%d", l->name, o & 7);
        s->pad[0] = (int)head;
        s->pad[1] = (int)row;
        s->pad[2] = row > 0 ? (int)base : 0;
        /* pad[3]: the output carries the layer's mask (when it has one) */
        s->pad[3] = !l->ops->part_mask_rows || l->ops->part_mask_rows(l, o) != 0;
        s->trainable_count = 0;
        s->n_in = 1;
        s->in_shape = s->in_shapes[0] = s->decl_in_shapes[0] = l->decl_out_shape;
        s->in_size = s->in_sizes[0] = kc_shape_size(l->decl_out_shape);
        s->decl_out_shape = s->out_shape = shape;
        s->out_size = kc_shape_size(shape);
        s->built = 1;
        s->refs = 1; /* the node's, released with the model */
        if ((outs[o] = add_node(m, s, &all, 1, shape, nest)) < 0) {
            kc_layer_release(s);
            return KC_ENOMEM;
        }
    }
    return KC_OK;
}

/* Builds a fresh layer on input shapes, or checks a built one's. */
static kc_status build_layer(kc_layer *l, const kc_shape *shapes, int n, int model_local,
                             kc_model *m) {
    char a[64], b[64];
    const kc_layer_ops *ops = l->ops;
    int multi = ops->max_inputs > 0;
    int min_in = multi ? (ops->min_inputs ? ops->min_inputs : 2) : 1;
    int max_in = multi ? ops->max_inputs : 1;
    if (l->nested) {
        kc_model *nm = l->nested;
        if (n != nm->n_inputs)
            return kc_err(KC_EINVAL, "model %s takes %d inputs, called on %d", nm->name,
                          nm->n_inputs, n);
        for (int i = 0; i < n; i++) {
            /* a None length takes any length (and None) */
            kc_shape want = nm->tensors[nm->inputs[i]].shape;
            int fits = want.rank == shapes[i].rank;
            for (int d = 0; fits && d < want.rank; d++)
                fits = want.dims[d] == KC_NONE || want.dims[d] == shapes[i].dims[d];
            if (!fits)
                return kc_err(KC_EINVAL, "model %s: input %d has shape %s, called on %s",
                              nm->name, i, kc_shape_str(want, a, sizeof a),
                              kc_shape_str(shapes[i], b, sizeof b));
        }
        return KC_OK;
    }
    if (n < min_in || n > max_in)
        return kc_err(KC_EINVAL, "layer %s (%s) takes %s%d input%s, called on %d",
                      l->name[0] ? l->name : ops->base_name, ops->type_name,
                      min_in == max_in ? "" : "at least ", min_in, min_in == 1 ? "" : "s", n);
    if (l->built) {
        for (int i = 0; i < n; i++)
            if (memcmp(&l->decl_in_shapes[i], &shapes[i], sizeof shapes[i]))
                return kc_err(KC_EINVAL,
                              "layer %s (%s) was built for input %d of shape %s and is now "
                              "called on %s; a shared layer takes the same shapes",
                              l->name, ops->type_name, i,
                              kc_shape_str(l->decl_in_shapes[i], a, sizeof a),
                              kc_shape_str(shapes[i], b, sizeof b));
        return n == l->n_in ? KC_OK
                            : kc_err(KC_EINVAL, "layer %s was built for %d inputs, called on %d",
                                     l->name, l->n_in, n);
    }
    if (!l->name[0]) {
        if (model_local) {
            int same = 0;
            for (int i = 0; i < m->n_entries; i++) same += m->entries[i].layer->ops == ops;
            if (same) snprintf(l->name, sizeof l->name, "%s_%d", ops->base_name, same);
            else snprintf(l->name, sizeof l->name, "%s", ops->base_name);
        } else {
            session_name(ops->base_name, l->name, sizeof l->name);
        }
    }
    for (int i = 0; i < n; i++)
        if (has_none(shapes[i]) && !ops->allows_none)
            return kc_err(KC_EINVAL,
                          "layer %s (%s) needs a fixed input shape, and its input%s %s has a "
                          "None dimension (a length given per call); kerac's %s does not take "
                          "one: give the model input a fixed length",
                          l->name, ops->type_name, n > 1 ? " shape" : "",
                          kc_shape_str(shapes[i], a, sizeof a), ops->type_name);
    l->n_in = n;
    for (int i = 0; i < n; i++) {
        l->in_shapes[i] = l->decl_in_shapes[i] = shapes[i];
        l->in_sizes[i] = kc_shape_size(shapes[i]);
    }
    l->in_shape = shapes[0];
    l->in_size = l->in_sizes[0];
    kc_status st = ops->build(l);
    if (st) return st;
    l->out_size = kc_shape_size(l->out_shape);
    l->decl_out_shape = l->out_shape;
    if (l->trainable_count < 0) l->trainable_count = l->param_count;
    l->built = 1;
    if (!l->seed) {
        /* the dropout mask stream: from the seed and the layer's place (a Sequential's
         * index, else the session's call count), so a program rebuilt draws the same masks */
        uint64_t index = model_local ? (uint64_t)m->n_entries : 1000003u + session_calls++;
        l->seed = kc_mix64(kc_default_seed() ^ (0x5eedull + index));
    }
    return KC_OK;
}

/* ---- masks ------------------------------------------------------------------------------- */

/* Which tensors carry a mask, as Keras 3's Layer.__call__ decides: a layer that supports
 * masking sees its first input's mask and sets its output's (compute_mask, or its input's
 * passed on); one that does not drops a mask it is given, with Keras's warning. */
kc_status kc_model_plan_masks(kc_model *m, int from) {
    static const uint8_t some = 1; /* "this input carries a mask", for the dry runs */
    for (int k = from; k < m->n_nodes; k++) {
        const kc_node *n = &m->nodes[k];
        const kc_layer *l = n->layer;
        const kc_layer_ops *ops = l->ops;
        kc_tval *out = &m->tensors[n->out];
        out->has_mask = 0;
        out->mask_src = n->out;
        int any = 0;
        for (int i = 0; i < n->n_in; i++) any |= m->tensors[n->in[i]].has_mask;
        int first = m->tensors[n->in[0]].has_mask;
        if (!ops->supports_masking) {
            if (any)
                kc_warn("Layer '%s' (of type %s) was passed an input with a mask attached to "
                        "it. However, this layer does not support masking and will therefore "
                        "destroy the mask information. Downstream layers will not see the mask.",
                        l->name, ops->type_name);
            continue;
        }
        if (any && ops->mask_refusal)
            return kc_err(KC_EINVAL, "layer %s (%s) is given a masked input (after an "
                                     "Embedding with mask_zero or a Masking layer): %s",
                          l->name, ops->type_name, ops->mask_refusal);
        if (ops->compute_mask_n) {
            const uint8_t *ins[KC_MAX_LAYER_INPUTS];
            for (int i = 0; i < n->n_in; i++) ins[i] = m->tensors[n->in[i]].has_mask ? &some : NULL;
            out->has_mask = ops->compute_mask_n(l, ins, NULL, 0) != 0;
        } else if (ops->compute_mask) {
            out->has_mask = ops->compute_mask(l, first ? &some : NULL, NULL, 0) != 0;
        } else if (first) {
            out->has_mask = 1;
            out->mask_src = m->tensors[n->in[0]].mask_src;
        }
    }
    return KC_OK;
}

/* ---- Sequential ------------------------------------------------------------------------- */

static kc_model *model_new(void) {
    kc_model *m = calloc(1, sizeof *m);
    if (!m) {
        kc_err(KC_ENOMEM, "out of memory creating a model");
        return NULL;
    }
    m->refs = 1;
    kc_rng_seed(&m->rng, kc_default_seed());
    kc_get_num_threads();
    return m;
}

kc_model *kc_sequential(kc_shape input_shape) {
    return kc_sequential_ex(input_shape, KC_FLOAT32);
}

kc_model *kc_sequential_ex(kc_shape input_shape, kc_dtype dtype) {
    kc_model *m = model_new();
    if (!m) return NULL;
    session_name("sequential", m->name, sizeof m->name);
    char buf[64];
    if (dtype != KC_FLOAT32 && dtype != KC_INT32 && dtype != KC_UINT8 && dtype != KC_STRING) {
        m->build_error = kc_err(KC_EINVAL, "kc_sequential: unknown input dtype %d", (int)dtype);
        snprintf(m->build_error_msg, sizeof m->build_error_msg, "%s", kc_last_error());
    }
    if (input_shape.rank < 1 || !valid_shape(input_shape)) {
        m->build_error = kc_err(KC_EINVAL, "kc_sequential: invalid input shape %s",
                                kc_shape_str(input_shape, buf, sizeof buf));
        snprintf(m->build_error_msg, sizeof m->build_error_msg, "%s", kc_last_error());
        input_shape = kc_shape1(1);
    }
    m->n_inputs = m->n_outputs = 1;
    m->inputs[0] = m->outputs[0] = add_tensor(m, input_shape, -1);
    snprintf(m->input_names[0], KC_NAME_MAX, "input_layer");
    if (m->inputs[0] < 0) {
        kc_model_free(m);
        return NULL;
    }
    m->tensors[m->inputs[0]].dtype = dtype == KC_INT32 || dtype == KC_STRING ? dtype : KC_FLOAT32;
    return m;
}

static kc_status remember_error(kc_model *m, kc_status st) {
    if (!m->build_error) {
        m->build_error = st;
        snprintf(m->build_error_msg, sizeof m->build_error_msg, "%s", kc_last_error());
    }
    return st;
}

kc_status kc_add(kc_model *m, kc_layer *layer) {
    if (!m) {
        kc_layer_free(layer);
        return kc_err(KC_EINVAL, "kc_add: model is NULL");
    }
    if (!layer)
        return remember_error(m, kc_err(KC_EINVAL, "kc_add: layer is NULL (a layer constructor failed)"));
    if (m->build_error) {
        kc_layer_free(layer);
        return kc_err(m->build_error, "kc_add: an earlier error stands: %s", m->build_error_msg);
    }
    if (m->functional) {
        kc_layer_free(layer);
        return kc_err(KC_ESTATE, "kc_add: model %s is Functional; kc_add builds Sequential models",
                      m->name);
    }
    if (m->params || m->own_params || m->owner) {
        kc_layer_free(layer);
        return kc_err(KC_ESTATE, "kc_add: the model's weights already exist (after compile, "
                                 "predict or get_weights); build the whole model first");
    }
    int last = m->outputs[0];
    kc_shape in = m->tensors[last].shape;
    layer->refs++; /* held while it is added */
    kc_status st = build_layer(layer, &in, 1, 1, m);
    if (!st && layer->nested && (layer->nested->n_inputs != 1 || layer->nested->n_outputs != 1))
        st = kc_err(KC_EINVAL, "kc_add: nested model %s has %d inputs and %d outputs; a "
                               "Sequential takes one of each", layer->nested->name,
                    layer->nested->n_inputs, layer->nested->n_outputs);
    if (!st && !layer->nested && kc_layer_output_count(layer) > 1)
        st = kc_err(KC_EINVAL, "kc_add: layer %s has %d outputs (return_state, or "
                               "merge_mode=None); a Sequential takes layers of one output: "
                               "build a Functional model (kc_call_multi)",
                    layer->name, kc_layer_output_count(layer));
    if (!st && entry_of(m, layer) >= 0)
        st = kc_err(KC_EINVAL, "kc_add: layer %s is already in this model", layer->name);
    int e = -1;
    if (!st) st = entry_for(m, layer, &e);
    if (!st) {
        int out, first = m->n_nodes;
        if (layer->nested) st = inline_model(m, layer->nested, &last, e, &out);
        else if ((out = add_node(m, layer, &last, 1, layer->decl_out_shape, e)) < 0) st = KC_ENOMEM;
        if (!st) st = kc_model_plan_masks(m, first);
        if (!st) st = add_callrec(m, e, &last, 1, &out, 1, 0, first);
        if (!st) m->outputs[0] = out;
    }
    kc_layer_release(layer);
    m->planned = 0;
    return st ? remember_error(m, st) : KC_OK;
}

/* ---- the Functional API ------------------------------------------------------------------ */

kc_status kc_call_multi(kc_layer *layer, kc_tensor *const *xs, int n_in, kc_tensor **outs,
                        int n_out) {
    if (!layer) return kc_err(KC_EINVAL, "kc_call: layer is NULL (a layer constructor failed)");
    kc_status st = KC_OK;
    if (n_in < 1 || n_in > KC_MAX_LAYER_INPUTS || !xs)
        st = kc_err(KC_EINVAL, "kc_call: layer %s: %d inputs (1 to %d)", layer->name, n_in,
                    KC_MAX_LAYER_INPUTS);
    for (int i = 0; !st && i < n_in; i++)
        if (!xs[i])
            st = kc_err_prefix(KC_EINVAL, "kc_call: layer %s: input %d is NULL (the call that "
                                          "should have made it failed)",
                               layer->name[0] ? layer->name : layer->ops->base_name, i);
    kc_shape shapes[KC_MAX_LAYER_INPUTS];
    for (int i = 0; !st && i < n_in; i++) shapes[i] = xs[i]->shape;
    if (!st) st = build_layer(layer, shapes, n_in, 0, NULL);
    int want_out = st ? 1 : kc_layer_output_count(layer);
    if (!st && (n_out != want_out || n_out > KC_MAX_IO || !outs))
        st = kc_err(KC_EINVAL, "kc_call: layer %s has %d output%s, %d asked for%s",
                    layer->name[0] ? layer->name : layer->ops->base_name, want_out,
                    want_out == 1 ? "" : "s", n_out,
                    want_out > 1 ? " (kc_call_multi takes them all)" : "");
    sym_call *c = st ? NULL : calloc(1, sizeof *c);
    if (!st && !c) st = kc_err(KC_ENOMEM, "kc_call: out of memory");
    for (int o = 0; !st && o < n_out; o++) {
        kc_tensor *t = calloc(1, sizeof *t);
        if (!t) {
            st = kc_err(KC_ENOMEM, "kc_call: out of memory");
            break;
        }
        t->shape = layer_out_shape(layer, o);
        t->call = c;
        t->index = o;
        c->out[o] = t;
        c->refs++;
        outs[o] = t;
    }
    if (st) {
        if (c)
            for (int o = 0; o < n_out; o++) free(c->out[o]);
        free(c);
        if (layer->refs <= 0) kc_layer_release(layer);
        for (int o = 0; o < n_out && outs; o++) outs[o] = NULL;
        return st;
    }
    c->layer = layer;
    layer->refs++;
    c->n_in = n_in;
    c->n_out = n_out;
    for (int i = 0; i < n_in; i++) {
        c->in[i] = xs[i];
        xs[i]->refs++;
    }
    return KC_OK;
}

kc_tensor *kc_call_training(kc_layer *layer, kc_tensor *x, int training) {
    kc_tensor *out = NULL;
    if (kc_call_multi(layer, &x, 1, &out, 1)) return NULL;
    out->call->inference = !training;
    return out;
}

kc_tensor *kc_call_n(kc_layer *layer, kc_tensor *const *xs, int n) {
    kc_tensor *out = NULL;
    return kc_call_multi(layer, xs, n, &out, 1) ? NULL : out;
}

kc_tensor *kc_call(kc_layer *layer, kc_tensor *x) { return kc_call_n(layer, &x, 1); }

/* post-order walk from t: every call t depends on, inputs first */
static kc_status collect(kc_tensor *t, sym_call ***order, int *n, int *cap, kc_tensor **leaves,
                         int *n_leaves, int depth) {
    if (depth > 100000) return kc_err(KC_EINVAL, "kc_functional: the graph is too deep");
    if (!t->call) {
        if (t->mark != visit_generation) {
            t->mark = visit_generation;
            if (*n_leaves >= 4 * KC_MAX_IO)
                return kc_err(KC_EINVAL, "kc_functional: more than %d inputs", 4 * KC_MAX_IO);
            leaves[(*n_leaves)++] = t;
        }
        return KC_OK;
    }
    sym_call *c = t->call;
    if (c->mark == visit_generation) return KC_OK;
    c->mark = visit_generation;
    for (int i = 0; i < c->n_in; i++) {
        kc_status st = collect(c->in[i], order, n, cap, leaves, n_leaves, depth + 1);
        if (st) return st;
    }
    if (grow((void **)order, cap, *n + 1, sizeof **order)) return KC_ENOMEM;
    (*order)[(*n)++] = c;
    return KC_OK;
}

kc_model *kc_functional(kc_tensor *const *inputs, int n_inputs, kc_tensor *const *outputs,
                        int n_outputs) {
    if (n_inputs < 1 || n_inputs > KC_MAX_IO || n_outputs < 1 || n_outputs > KC_MAX_IO ||
        !inputs || !outputs) {
        kc_err(KC_EINVAL, "kc_functional: %d inputs and %d outputs (1 to %d of each)", n_inputs,
               n_outputs, KC_MAX_IO);
        return NULL;
    }
    for (int i = 0; i < n_inputs; i++)
        if (!inputs[i] || inputs[i]->call) {
            if (!inputs[i])
                kc_err_prefix(KC_EINVAL, "kc_functional: input %d is NULL (kc_input failed)", i);
            else
                kc_err(KC_EINVAL, "kc_functional: input %d is the output of layer %s, not a "
                                  "kc_input tensor", i, inputs[i]->call->layer->name);
            return NULL;
        }
    for (int o = 0; o < n_outputs; o++)
        if (!outputs[o]) {
            kc_err_prefix(KC_EINVAL, "kc_functional: output %d is NULL (the call that should "
                                     "have made it failed)", o);
            return NULL;
        }
    sym_call **order = NULL;
    int n_order = 0, cap_order = 0, n_leaves = 0;
    kc_tensor *leaves[4 * KC_MAX_IO];
    visit_generation++;
    kc_status st = KC_OK;
    for (int o = 0; o < n_outputs && !st; o++)
        st = collect(outputs[o], &order, &n_order, &cap_order, leaves, &n_leaves, 0);
    for (int i = 0; i < n_leaves && !st; i++) {
        int found = 0;
        for (int j = 0; j < n_inputs; j++) found |= leaves[i] == inputs[j];
        if (!found)
            st = kc_err(KC_EINVAL,
                        "kc_functional: the outputs depend on input '%s', which is not among "
                        "the model's inputs (a tensor of another model?): graph disconnected",
                        leaves[i]->name);
    }
    for (int j = 0; j < n_inputs && !st; j++) {
        int found = 0;
        for (int i = 0; i < n_leaves; i++) found |= leaves[i] == inputs[j];
        for (int k = 0; k < j; k++)
            if (inputs[k] == inputs[j])
                st = kc_err(KC_EINVAL, "kc_functional: input '%s' is given twice", inputs[j]->name);
        if (!found && !st)
            st = kc_err(KC_EINVAL, "kc_functional: no output depends on input '%s'",
                        inputs[j]->name);
    }
    for (int o = 0; o < n_outputs && !st; o++)
        for (int k = 0; k < o; k++)
            if (outputs[k] == outputs[o])
                st = kc_err(KC_EINVAL, "kc_functional: output %d is given twice", o);
    kc_model *m = st ? NULL : model_new();
    if (!m) {
        free(order);
        return NULL;
    }
    m->functional = 1;
    session_name("functional", m->name, sizeof m->name);
    m->n_inputs = n_inputs;
    for (int i = 0; i < n_inputs && !st; i++) {
        inputs[i]->id = add_tensor(m, inputs[i]->shape, -1);
        if (inputs[i]->id < 0) st = KC_ENOMEM;
        else m->tensors[inputs[i]->id].dtype = inputs[i]->dtype;
        m->inputs[i] = inputs[i]->id;
        snprintf(m->input_names[i], KC_NAME_MAX, "%s", inputs[i]->name);
    }
    for (int k = 0; k < n_order && !st; k++) {
        sym_call *c = order[k];
        int ins[KC_MAX_LAYER_INPUTS], outs[KC_MAX_IO];
        for (int i = 0; i < c->n_in; i++) ins[i] = c->in[i]->id;
        int e, first = m->n_nodes;
        if ((st = entry_for(m, c->layer, &e))) break;
        if (c->layer->nested) st = inline_model(m, c->layer->nested, ins, e, outs);
        else if (kc_layer_output_count(c->layer) > 1)
            st = add_multi_node(m, c->layer, ins, c->n_in, e, outs);
        else if ((outs[0] = add_node(m, c->layer, ins, c->n_in, c->layer->decl_out_shape, e)) < 0)
            st = KC_ENOMEM;
        if (!st) st = add_callrec(m, e, ins, c->n_in, outs, c->n_out, c->inference, first);
        for (int o = 0; o < c->n_out && !st; o++)
            if (c->out[o]) c->out[o]->id = outs[o];
    }
    free(order);
    if (!st) st = kc_model_plan_masks(m, 0);
    /* names are unique among the model's layers (Keras: "All operation names should be
     * unique") */
    for (int i = 0; i < m->n_entries && !st; i++)
        for (int j = 0; j < i && !st; j++)
            if (!strcmp(m->entries[i].layer->name, m->entries[j].layer->name))
                st = kc_err(KC_EINVAL, "kc_functional: the name \"%s\" is used by two layers of "
                                       "the model; names must be unique (kc_layer_set_name)",
                            m->entries[i].layer->name);
    for (int o = 0; o < n_outputs && !st; o++) {
        m->outputs[o] = outputs[o]->id;
        if (m->tensors[m->outputs[o]].producer < 0)
            st = kc_err(KC_EINVAL, "kc_functional: output %d is input '%s' itself; add a layer",
                        o, outputs[o]->name);
        m->tensors[m->outputs[o]].output = o;
    }
    m->n_outputs = n_outputs;
    if (st) {
        kc_model_free(m);
        return NULL;
    }
    /* a layer held only by its one call and this model (refs: the call, the entry, the leaf
     * list), without weights yet, takes the dropout stream a Sequential gives the layer at its
     * place, so a chain built either way draws the same masks; others keep their session's */
    for (int e = 0; e < m->n_entries; e++) {
        kc_layer *l = m->entries[e].layer;
        if (!l->nested && !l->home && l->refs <= 3)
            l->seed = kc_mix64(kc_default_seed() ^ (0x5eedull + (uint64_t)e));
    }
    for (int i = 0; i < n_inputs; i++) {
        m->sym_inputs[i] = inputs[i];
        inputs[i]->refs++;
    }
    for (int o = 0; o < n_outputs; o++) {
        m->sym_outputs[o] = outputs[o];
        outputs[o]->refs++;
    }
    return m;
}

/* ---- freeing ----------------------------------------------------------------------------- */

static void resolve(kc_model *m);

/* b borrowed its weights from a model that is going away: b takes a copy as its own */
static void detach(kc_model *b, kc_model *from) {
    resolve(b);
    float *p = kc_alloc(sizeof(float) * (size_t)(b->n_params ? b->n_params : 1));
    float *g = kc_calloc(sizeof(float) * (size_t)(b->n_params ? b->n_params : 1));
    if (p && g && b->params) memcpy(p, b->params, sizeof(float) * (size_t)b->n_params);
    if (!p || !g || !b->params) {
        kc_free(p);
        kc_free(g);
        p = g = NULL;
    }
    b->own_params = p;
    b->own_grads = g;
    b->owner = NULL;
    for (int i = 0; i < b->n_layers; i++)
        if (b->layers[i]->home == from) b->layers[i]->home = p ? b : NULL;
    resolve(b);
}

void kc_model_free(kc_model *m) {
    if (!m || --m->refs > 0) return;
    kc_model_free_workspace(m);
    for (int i = 0; i < m->n_borrowers; i++) detach(m->borrowers[i], m);
    free(m->borrowers);
    kc_model *owner = m->owner;
    if (owner)
        for (int i = 0; i < owner->n_borrowers; i++)
            if (owner->borrowers[i] == m) owner->borrowers[i] = owner->borrowers[--owner->n_borrowers];
    /* the slice nodes' own layers first: the others' may be freed below, and a node's layer
     * is only known to be a slice while it is alive */
    for (int k = 0; k < m->n_nodes; k++)
        if (kc_is_slice(m->nodes[k].layer)) kc_layer_release(m->nodes[k].layer);
    for (int i = 0; i < m->n_layers; i++) {
        if (m->layers[i]->home == m) m->layers[i]->home = NULL;
        kc_layer_release(m->layers[i]);
    }
    for (int i = 0; i < m->n_entries; i++) kc_layer_release(m->entries[i].layer);
    for (int i = 0; i < m->n_inputs; i++) tensor_release(m->sym_inputs[i]);
    for (int o = 0; o < m->n_outputs; o++) tensor_release(m->sym_outputs[o]);
    free(m->entries);
    free(m->calls);
    free(m->layers);
    free(m->offsets);
    free(m->tensors);
    free(m->nodes);
    free(m->trained);
    kc_model_free_metrics(m);
    kc_free(m->own_params);
    kc_free(m->own_grads);
    kc_optimizer_free(m->opt);
    int held = m->owner_ref;
    free(m);
    if (held) kc_model_free(owner); /* the reference a borrower holds on its owner */
}

/* ---- weights ---------------------------------------------------------------------------- */

kc_text_vectorization *kc_model_text_vectorization(kc_model *m, int input) {
    if (!m || input < 0 || input >= m->n_inputs) return NULL;
    for (int k = 0; k < m->n_nodes; k++)
        if (m->nodes[k].n_in == 1 && m->nodes[k].in[0] == m->inputs[input] &&
            kc_layer_text_vectorization(m->nodes[k].layer))
            return kc_layer_text_vectorization(m->nodes[k].layer);
    return NULL;
}

kc_status kc_model_check_built(const kc_model *m, const char *what) {
    if (!m) return kc_err(KC_EINVAL, "%s: model is NULL", what);
    if (m->build_error) return kc_err(m->build_error, "%s: %s", what, m->build_error_msg);
    if (m->n_nodes == 0) return kc_err(KC_ESTATE, "%s: the model has no layers", what);
    /* a string input is read by exactly one TextVectorization layer, which reads nothing else */
    for (int i = 0; i < m->n_nodes; i++) {
        const kc_node *n = &m->nodes[i];
        int is_tv = kc_layer_text_vectorization(n->layer) != NULL;
        for (int k = 0; k < n->n_in; k++) {
            const kc_tval *t = &m->tensors[n->in[k]];
            int str = t->producer < 0 && t->dtype == KC_STRING;
            if (str && (!is_tv || t->n_consumers != 1))
                return kc_err(KC_EINVAL, "%s: layer %s (%s) reads a string input; a string input "
                                         "must be read by one TextVectorization layer only", what,
                              n->layer->name, n->layer->ops->type_name);
            if (is_tv && !str)
                return kc_err(KC_EINVAL, "%s: layer %s (TextVectorization) must come first, on a "
                                         "string model input (KC_STRING)", what, n->layer->name);
        }
    }
    for (int i = 0; i < m->n_inputs; i++)
        if (m->tensors[m->inputs[i]].dtype == KC_STRING && m->tensors[m->inputs[i]].n_consumers != 1)
            return kc_err(KC_EINVAL, "%s: the string input %s needs one TextVectorization layer "
                                     "reading it", what, m->input_names[i]);
    return KC_OK;
}

static int contains(const kc_model *m, const kc_model *h) {
    for (int i = 0; i < m->n_entries; i++)
        if (m->entries[i].model && (m->entries[i].model == h || contains(m->entries[i].model, h)))
            return 1;
    return 0;
}

static kc_model *root_of(kc_model *m) {
    while (m->owner) m = m->owner;
    return m;
}

static void resolve(kc_model *m) {
    if (m->owner) {
        resolve(m->owner);
        m->params = m->owner->params ? m->owner->params + m->owner_base : NULL;
        m->grads = m->owner->grads ? m->owner->grads + m->owner_base : NULL;
    } else {
        m->params = m->own_params;
        m->grads = m->own_grads;
    }
}

void kc_model_bind(kc_model *m) {
    resolve(m);
    if (!m->params) return;
    for (int i = 0; i < m->n_layers; i++) {
        kc_layer *l = m->layers[i];
        l->param_offset = m->offsets[i];
        if (!l->param_count) continue;
        l->kernel = m->params + m->offsets[i];
        l->bias = l->no_bias ? NULL : l->kernel + l->kernel_size;
        l->dkernel = m->grads + m->offsets[i];
        l->dbias = l->no_bias ? NULL : l->dkernel + l->kernel_size;
    }
}

/* Creates the weights on first need: one buffer, views per layer, initialised in layer order.
 * Layers whose weights already live in another model's buffer bring that model's whole range
 * along: it must be one block of this model's layers, in the same order; that model then
 * borrows the range from this one. */
kc_status kc_model_ensure_weights(kc_model *m, const char *what) {
    kc_status st = kc_model_check_built(m, what);
    if (st) return st;
    resolve(m);
    if (m->params) {
        kc_model_bind(m);
        return KC_OK;
    }
    /* every layer already in one model's buffer, in one block in the same order: this model
     * borrows that range (a model nested in another, or built from a part of its graph) */
    if (m->n_layers && m->layers[0]->home) {
        kc_model *r = root_of(m->layers[0]->home);
        resolve(r);
        int at = kc_model_layer_index(r, m->layers[0]);
        int ok = r->params && at >= 0 && at + m->n_layers <= r->n_layers;
        for (int i = 0; ok && i < m->n_layers; i++) ok = r->layers[at + i] == m->layers[i];
        if (ok) {
            kc_model **b = realloc(r->borrowers, sizeof *b * (size_t)(r->n_borrowers + 1));
            if (!b) return kc_err(KC_ENOMEM, "%s: out of memory", what);
            r->borrowers = b;
            r->borrowers[r->n_borrowers++] = m;
            m->owner = r;
            m->owner_base = r->offsets[at];
            m->owner_ref = !contains(r, m);
            if (m->owner_ref) r->refs++;
            kc_model_bind(m);
            return KC_OK;
        }
    }
    /* the models whose ranges this one takes over, with where they start */
    kc_model *taken[64];
    int taken_at[64], n_taken = 0;
    for (int i = 0; i < m->n_layers; i++) {
        kc_layer *l = m->layers[i];
        if (!l->home) continue;
        kc_model *h = root_of(l->home);
        int seen = 0;
        for (int k = 0; k < n_taken; k++) seen |= taken[k] == h;
        if (seen) continue;
        int ok = i + h->n_layers <= m->n_layers && h->layers[0] == l;
        for (int j = 0; ok && j < h->n_layers; j++) ok = m->layers[i + j] == h->layers[j];
        if (!ok || n_taken == 64)
            return kc_err(KC_EINVAL,
                          "%s: layer %s already has its weights in model %s, whose layers are "
                          "not one block of model %s in the same order; nest model %s instead "
                          "(kc_model_as_layer)",
                          what, l->name, h->name, m->name, h->name);
        taken[n_taken] = h;
        taken_at[n_taken++] = i;
    }
    float *params = kc_calloc(sizeof(float) * (size_t)(m->n_params ? m->n_params : 1));
    float *grads = kc_calloc(sizeof(float) * (size_t)(m->n_params ? m->n_params : 1));
    if (!params || !grads) {
        kc_free(params);
        kc_free(grads);
        return kc_err(KC_ENOMEM, "%s: out of memory for %lld weights", what,
                      (long long)m->n_params);
    }
    m->own_params = params;
    m->own_grads = grads;
    for (int k = 0; k < n_taken; k++) {
        kc_model *h = taken[k];
        resolve(h);
        memcpy(params + m->offsets[taken_at[k]], h->params, sizeof(float) * (size_t)h->n_params);
        kc_free(h->own_params);
        kc_free(h->own_grads);
        h->own_params = h->own_grads = NULL;
        h->owner = m;
        h->owner_base = m->offsets[taken_at[k]];
        kc_model **b = realloc(m->borrowers, sizeof *b * (size_t)(m->n_borrowers + 1));
        if (b) {
            m->borrowers = b;
            m->borrowers[m->n_borrowers++] = h;
        }
        /* a model nested in this one is held by it; any other holds its owner */
        h->owner_ref = !contains(m, h);
        if (h->owner_ref) m->refs++;
    }
    kc_model_bind(m);
    for (int i = 0; i < m->n_layers; i++) {
        kc_layer *l = m->layers[i];
        if (l->home) continue;
        l->home = m;
        l->ops->init(l, &m->rng);
    }
    for (int k = 0; k < n_taken; k++) kc_model_bind(taken[k]);
    kc_model_bind(m);
    return KC_OK;
}

/* ---- accessors --------------------------------------------------------------------------- */

const char *kc_model_name(const kc_model *m) { return m ? m->name : NULL; }

kc_status kc_model_set_name(kc_model *m, const char *name) {
    if (!m || !name || !*name || strlen(name) >= KC_NAME_MAX || strchr(name, '/'))
        return kc_err(KC_EINVAL, "kc_model_set_name: NULL model, or a name empty, too long or "
                                 "holding '/'");
    snprintf(m->name, sizeof m->name, "%s", name);
    return KC_OK;
}

kc_status kc_model_set_batch_size(kc_model *m, int batch_size) {
    if (!m || batch_size < 0)
        return kc_err(KC_EINVAL, "kc_model_set_batch_size: NULL model or a negative size");
    m->batch_size = batch_size;
    return KC_OK;
}

int kc_model_batch_size(const kc_model *m) { return m ? m->batch_size : 0; }

kc_layer *kc_get_layer(kc_model *m, const char *name) {
    if (!m || !name) return NULL;
    const char *slash = strchr(name, '/');
    size_t len = slash ? (size_t)(slash - name) : strlen(name);
    for (int i = 0; i < m->n_entries; i++) {
        kc_layer *l = m->entries[i].layer;
        if (strlen(l->name) != len || strncmp(l->name, name, len)) continue;
        if (!slash) return l;
        return m->entries[i].model ? kc_get_layer(m->entries[i].model, slash + 1) : NULL;
    }
    return NULL;
}

int kc_model_input_count(const kc_model *m) { return m ? m->n_inputs : 0; }
int kc_model_output_count(const kc_model *m) { return m ? m->n_outputs : 0; }
kc_shape kc_model_input_shape_at(const kc_model *m, int i) {
    return m && i >= 0 && i < m->n_inputs ? m->tensors[m->inputs[i]].shape : (kc_shape){0};
}
kc_shape kc_model_output_shape_at(const kc_model *m, int i) {
    return m && i >= 0 && i < m->n_outputs ? m->tensors[m->outputs[i]].shape : (kc_shape){0};
}
kc_shape kc_input_shape(const kc_model *m) { return kc_model_input_shape_at(m, 0); }
kc_dtype kc_model_input_dtype(const kc_model *m, int i) {
    return m && i >= 0 && i < m->n_inputs ? m->tensors[m->inputs[i]].dtype : KC_FLOAT32;
}
kc_shape kc_output_shape(const kc_model *m) { return kc_model_output_shape_at(m, 0); }

int kc_layer_count(const kc_model *m) { return m ? m->n_layers : 0; }
const char *kc_layer_name(const kc_model *m, int i) {
    return m && i >= 0 && i < m->n_layers ? m->layers[i]->name : NULL;
}
const char *kc_layer_class(const kc_model *m, int i) {
    return m && i >= 0 && i < m->n_layers ? m->layers[i]->ops->type_name : NULL;
}
int64_t kc_layer_param_count(const kc_model *m, int i) {
    return m && i >= 0 && i < m->n_layers ? m->layers[i]->param_count : 0;
}
int64_t kc_layer_trainable_count(const kc_model *m, int i) {
    return m && i >= 0 && i < m->n_layers && !m->layers[i]->frozen
               ? m->layers[i]->trainable_count
               : 0;
}
int64_t kc_count_params(kc_model *m) { return m ? m->n_params : 0; }

kc_status kc_set_fusion(kc_model *m, int on) {
    if (!m) return kc_err(KC_EINVAL, "kc_set_fusion: model is NULL");
    m->no_fusion = !on;
    m->planned = 0;
    return KC_OK;
}

kc_status kc_set_mixed_bfloat16(kc_model *m, int on) {
    if (!m) return kc_err(KC_EINVAL, "kc_set_mixed_bfloat16: the model is NULL");
    if (on && !kc_gemm_bf16_supported())
        return kc_err(KC_EINVAL, "kc_set_mixed_bfloat16: this CPU lacks AVX512-BF16 (or kerac's "
                                 "own kernels are off: KERAC_GEMM_BLAS)");
    if (on && !kc_gemm_bf16_native()) { /* once per process */
        static atomic_flag told = ATOMIC_FLAG_INIT;
        if (!atomic_flag_test_and_set(&told))
            kc_warn("mixed_bfloat16: bf16 products run as float32 products of the bf16-rounded "
                    "operands (KERAC_BF16_FP32), not on AMX or AVX512-BF16's VDPBF16PS");
    }
    m->bf16 = on != 0;
    return KC_OK;
}

int kc_model_is_type(const kc_layer *l, const char *type) { return !strcmp(l->ops->type_name, type); }
