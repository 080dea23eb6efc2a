/* custom.c: layers whose type the user writes (kc_custom_layer_type, Keras's subclassed Layer):
 * the registry of types, the kerac layer that runs a type's functions, and the calls those
 * functions make (weights, config, shapes, errors). Weights live in the model's flat buffer
 * like every layer's: the layer's views (kernel, dkernel) cover all of its weights, trainable
 * ones first (Keras's layer.weights order), each weight at its offset. Saving and loading:
 * io/custom_io.c. */
#include "custom.h"
#include "../initializers.h"
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- the registry -------------------------------------------------------------------------- */

#define MAX_TYPES 64

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static kc_custom_entry entries[MAX_TYPES];
static int n_entries;

static kc_status custom_build(kc_layer *l);
static void custom_init(kc_layer *l, kc_rng *rng);
static void custom_forward(kc_layer *l, const float *in, float *out, int batch,
                           const kc_forward_ctx *ctx);
static void custom_backward(kc_layer *l, const float *in, const float *out, float *dout,
                            float *din, int batch, int dout_is_preactivation,
                            const kc_forward_ctx *ctx);
static int64_t custom_scratch(const kc_layer *l, int batch, int parts);
static void custom_destroy(kc_layer *l);

static int is_identifier(const char *s) {
    if (!s || !(isalpha((unsigned char)*s) || *s == '_')) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_') return 0;
    return 1;
}

static size_t field_bytes(const kc_config_field *f) {
    switch (f->kind) {
    case KC_FIELD_INT:
    case KC_FIELD_BOOL: return sizeof(int);
    case KC_FIELD_FLOAT: return sizeof(float);
    case KC_FIELD_STRING: return f->size;
    case KC_FIELD_INITIALIZER: return sizeof(kc_initializer);
    }
    return 0;
}

/* the checks every use of a type makes; what: the calling function */
static kc_status check_type(const kc_custom_layer_type *t, const char *what) {
    if (!t) return kc_err(KC_EINVAL, "%s: the layer type is NULL", what);
    if (!is_identifier(t->class_name) || strlen(t->class_name) >= KC_CUSTOM_NAME_MAX)
        return kc_err(KC_EINVAL,
                      "%s: class_name '%s' is not a name of 1 to %d letters, digits and _ "
                      "starting with a letter or _",
                      what, t->class_name ? t->class_name : "(null)", KC_CUSTOM_NAME_MAX - 1);
    const char *cls = t->class_name;
    if (t->package && (!*t->package || strlen(t->package) >= KC_CUSTOM_NAME_MAX ||
                       strpbrk(t->package, ">/\"\\")))
        return kc_err(KC_EINVAL,
                      "%s: custom layer type %s: package '%s' must be 1 to %d characters "
                      "without '>', '/', '\"' or '\\'",
                      what, cls, t->package, KC_CUSTOM_NAME_MAX - 1);
    static const char *const reserved[] = {"InputLayer", "Sequential", "Functional", "Model",
                                           "Layer"};
    const kc_layer_io *io = kc_layer_io_find(cls);
    int taken = io && !kc_custom_of_io(io);
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++) taken |= !strcmp(cls, reserved[i]);
    if (taken)
        return kc_err(KC_EINVAL, "%s: class_name '%s' is the name of a Keras class; give the "
                                 "custom layer type a name of its own",
                      what, cls);
    if (!t->forward)
        return kc_err(KC_EINVAL, "%s: custom layer type %s has no forward", what, cls);
    if (t->n_config_fields < 0 || (t->n_config_fields > 0 && !t->config_fields))
        return kc_err(KC_EINVAL, "%s: custom layer type %s: %d config_fields but no array",
                      what, cls, t->n_config_fields);
    for (int i = 0; i < t->n_config_fields; i++) {
        const kc_config_field *f = &t->config_fields[i];
        const char *name = f->name ? f->name : "(null)";
        if (!f->name || !*f->name || !strcmp(name, "name") || !strcmp(name, "trainable") ||
            !strcmp(name, "dtype"))
            return kc_err(KC_EINVAL, "%s: custom layer type %s: config field %d has the name "
                                     "'%s' (empty, or one kerac writes itself)",
                          what, cls, i, name);
        for (int j = 0; j < i; j++)
            if (!strcmp(t->config_fields[j].name, name))
                return kc_err(KC_EINVAL, "%s: custom layer type %s: config field '%s' is listed "
                                         "twice",
                              what, cls, name);
        size_t bytes = field_bytes(f);
        if (!bytes)
            return kc_err(KC_EINVAL, "%s: custom layer type %s: config field '%s' has kind %d "
                                     "(a KC_FIELD_* value), size %zu",
                          what, cls, name, (int)f->kind, f->size);
        if (f->offset > t->config_size || bytes > t->config_size - f->offset)
            return kc_err(KC_EINVAL, "%s: custom layer type %s: config field '%s' (offset %zu, "
                                     "%zu bytes) lies outside config_size %zu",
                          what, cls, name, f->offset, bytes, t->config_size);
    }
    return KC_OK;
}

static int same_type(const kc_custom_layer_type *a, const kc_custom_layer_type *b) {
    const char *pa = a->package ? a->package : "Custom", *pb = b->package ? b->package : "Custom";
    return !strcmp(a->class_name, b->class_name) && !strcmp(pa, pb) &&
           a->config_size == b->config_size && a->default_config == b->default_config &&
           a->config_fields == b->config_fields && a->n_config_fields == b->n_config_fields &&
           a->build == b->build && a->forward == b->forward && a->backward == b->backward &&
           a->scratch_size == b->scratch_size && a->get_config == b->get_config &&
           a->from_config == b->from_config;
}

/* the entry of type t, created on first use; reg: mark it loadable */
static kc_custom_entry *entry_of(const kc_custom_layer_type *t, int reg, const char *what,
                                 kc_status *status) {
    if ((*status = check_type(t, what))) return NULL;
    pthread_mutex_lock(&registry_lock);
    kc_custom_entry *e = NULL;
    for (int i = 0; i < n_entries && !e; i++)
        if (same_type(&entries[i].type, t)) e = &entries[i];
    for (int i = 0; i < n_entries && !e; i++)
        if (!strcmp(entries[i].class_name, t->class_name)) {
            pthread_mutex_unlock(&registry_lock);
            *status = kc_err(KC_EINVAL, "%s: another custom layer type already has the class "
                                        "name '%s'",
                             what, t->class_name);
            return NULL;
        }
    if (!e && n_entries == MAX_TYPES) {
        pthread_mutex_unlock(&registry_lock);
        *status = kc_err(KC_ENOMEM, "%s: kerac holds %d custom layer types at most", what,
                         MAX_TYPES);
        return NULL;
    }
    if (!e) {
        e = &entries[n_entries];
        memset(e, 0, sizeof *e);
        e->type = *t;
        const char *package = t->package ? t->package : "Custom";
        snprintf(e->class_name, sizeof e->class_name, "%s", t->class_name);
        snprintf(e->package, sizeof e->package, "%s", package);
        snprintf(e->registered_name, sizeof e->registered_name, "%s>%s", package,
                 t->class_name);
        kc_snake_case(e->class_name, e->base_name, sizeof e->base_name);
        e->type.class_name = e->class_name;
        e->type.package = e->package;
        e->ops = (kc_layer_ops){.type_name = e->class_name,
                                .base_name = e->base_name,
                                .build = custom_build,
                                .init = custom_init,
                                .forward = custom_forward,
                                .backward = t->backward ? custom_backward : NULL,
                                .scratch_size = t->scratch_size ? custom_scratch : NULL,
                                .destroy = custom_destroy,
                                .io = {.to_config = kc_custom_io_to_config,
                                       .weights = kc_custom_io_weights}};
        n_entries++;
    }
    if (reg) e->registered = 1;
    pthread_mutex_unlock(&registry_lock);
    return e;
}

kc_status kc_register_layer_type(const kc_custom_layer_type *type) {
    kc_status st;
    entry_of(type, 1, "kc_register_layer_type", &st);
    return st;
}

const kc_custom_entry *kc_custom_find(const char *name) {
    if (!name) return NULL;
    const kc_custom_entry *found = NULL;
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < n_entries && !found; i++)
        if (entries[i].registered && (!strcmp(entries[i].registered_name, name) ||
                                      !strcmp(entries[i].class_name, name)))
            found = &entries[i];
    pthread_mutex_unlock(&registry_lock);
    return found;
}

const kc_custom_entry *kc_custom_of_io(const kc_layer_io *io) {
    for (int i = 0; i < MAX_TYPES; i++)
        if (io == &entries[i].ops.io) return &entries[i];
    return NULL;
}

/* ---- layers ------------------------------------------------------------------------------- */

kc_layer *kc_custom_make(const kc_custom_entry *e, const void *config) {
    kc_layer *l = kc_layer_new(&e->ops);
    kc_custom_layer *c = l ? calloc(1, sizeof *c) : NULL;
    size_t size = e->type.config_size;
    void *cfg = c && size ? malloc(size) : NULL;
    if (!c || (size && !cfg)) {
        free(c);
        free(l);
        kc_err(KC_ENOMEM, "out of memory creating a %s layer", e->class_name);
        return NULL;
    }
    if (size) {
        const void *from = config ? config : e->type.default_config;
        if (from) memcpy(cfg, from, size);
        else memset(cfg, 0, size);
    }
    c->layer = l;
    c->entry = e;
    c->config = cfg;
    l->custom = c;
    return l;
}

kc_layer *kc_custom(const kc_custom_layer_type *type, const void *config) {
    kc_status st;
    kc_custom_entry *e = entry_of(type, 0, "kc_custom", &st);
    return e ? kc_custom_make(e, config) : NULL;
}

kc_custom_layer *kc_custom_from_layer(kc_layer *layer) { return layer ? layer->custom : NULL; }

static void custom_destroy(kc_layer *l) {
    if (!l->custom) return;
    free(l->custom->config);
    free(l->custom);
    l->custom = NULL;
}

/* the thread's message while the type's build runs: still there afterwards means the build
 * failed without saying why */
#define BUILD_MARK "\001kerac: custom build running"

static kc_status custom_build(kc_layer *l) {
    kc_custom_layer *c = l->custom;
    const kc_custom_layer_type *t = &c->entry->type;
    const char *cls = c->entry->class_name;
    char shape_buf[64];
    c->n_weights = 0;
    c->weight_error = KC_OK;
    kc_shape out = l->in_shape;
    if (t->build) {
        char before[1024];
        snprintf(before, sizeof before, "%s", kc_last_error());
        kc_err(KC_OK, "%s", BUILD_MARK);
        c->building = 1;
        kc_status st = t->build(c, l->in_shape, &out);
        c->building = 0;
        if (c->weight_error) return kc_err(c->weight_error, "%s", c->weight_msg);
        if (st) {
            if (!strcmp(kc_last_error(), BUILD_MARK))
                kc_err(st, "layer %s (%s): build failed (%s) on input shape %s", l->name, cls,
                       kc_status_name(st), kc_shape_str(l->in_shape, shape_buf, sizeof shape_buf));
            return st;
        }
        kc_err(KC_OK, "%s", strcmp(before, "no error") ? before : "");
    }
    int ok = out.rank >= 1 && out.rank <= KC_MAX_RANK;
    for (int i = 0; ok && i < out.rank; i++) ok = out.dims[i] > 0;
    if (!ok) {
        out.rank = out.rank < 0 ? 0 : out.rank > KC_MAX_RANK ? KC_MAX_RANK : out.rank;
        return kc_err(KC_EINVAL, "layer %s (%s): build set the output shape %s; it needs 1 to %d "
                                 "positive dims",
                      l->name, cls, kc_shape_str(out, shape_buf, sizeof shape_buf), KC_MAX_RANK);
    }
    /* trainable weights first, then the others, each group in declaration order */
    int64_t at = 0, trainable = 0;
    for (int pass = 1; pass >= 0; pass--)
        for (int i = 0; i < c->n_weights; i++) {
            if (c->w[i].trainable != pass) continue;
            c->w[i].offset = at;
            at += c->w[i].count;
            if (pass) trainable = at;
        }
    l->out_shape = out;
    l->param_count = at;
    l->trainable_count = trainable;
    l->kernel_size = at;
    l->no_bias = 1;
    return KC_OK;
}

static void custom_init(kc_layer *l, kc_rng *rng) {
    kc_custom_layer *c = l->custom;
    for (int i = 0; i < c->n_weights; i++) {
        const kc_custom_weight_decl *w = &c->w[i];
        int64_t dims[KC_MAX_RANK];
        for (int d = 0; d < w->shape.rank; d++) dims[d] = w->shape.dims[d];
        kc_init_fill(&w->init, KC_INIT_GLOROT_UNIFORM, l->kernel + w->offset, w->shape.rank,
                     dims, rng);
    }
}

static void custom_forward(kc_layer *l, const float *in, float *out, int batch,
                           const kc_forward_ctx *ctx) {
    l->custom->entry->type.forward(l->custom, in, out, batch, ctx->training);
}

static void custom_backward(kc_layer *l, const float *in, const float *out, float *dout,
                            float *din, int batch, int dout_is_preactivation,
                            const kc_forward_ctx *ctx) {
    l->custom->entry->type.backward(l->custom, in, out, dout, din, batch);
}

static int64_t custom_scratch(const kc_layer *l, int batch, int parts) {
    return l->custom->entry->type.scratch_size(l->custom, batch);
}

/* ---- what the type's functions call ------------------------------------------------------ */

static kc_status weight_fail(kc_custom_layer *c, kc_status st) {
    if (!c->weight_error) {
        c->weight_error = st;
        snprintf(c->weight_msg, sizeof c->weight_msg, "%s", kc_last_error());
    }
    return st;
}

int kc_custom_add_weight(kc_custom_layer *self, const char *name, kc_shape shape,
                         kc_initializer initializer, int trainable) {
    if (!self) {
        kc_err(KC_EINVAL, "kc_custom_add_weight: the layer is NULL");
        return -1;
    }
    const kc_layer *l = self->layer;
    const char *cls = self->entry->class_name, *wn = name ? name : "(null)";
    char where[256], buf[64];
    snprintf(where, sizeof where, "layer %s (%s): weight '%s'", l->name[0] ? l->name : "?", cls,
             wn);
    if (!self->building) {
        kc_err(KC_ESTATE, "%s: declared outside build (kc_custom_add_weight is for the type's "
                          "build, as Keras's add_weight)",
               where);
        return -1;
    }
    kc_status st = KC_OK;
    int ok = shape.rank >= 0 && shape.rank <= KC_MAX_RANK;
    for (int d = 0; ok && d < shape.rank; d++) ok = shape.dims[d] > 0;
    if (!name || !*name || strlen(name) >= KC_CUSTOM_NAME_MAX || strpbrk(name, "/:\"\\"))
        st = kc_err(KC_EINVAL, "%s: the name must be 1 to %d characters without '/', ':', '\"' "
                               "or '\\'",
                    where, KC_CUSTOM_NAME_MAX - 1);
    else if (!ok) {
        if (shape.rank < 0 || shape.rank > KC_MAX_RANK) shape.rank = 0;
        st = kc_err(KC_EINVAL, "%s: shape %s: a weight has 0 to %d positive dims", where,
                    kc_shape_str(shape, buf, sizeof buf), KC_MAX_RANK);
    } else if (self->n_weights == KC_CUSTOM_MAX_WEIGHTS)
        st = kc_err(KC_EINVAL, "%s: a custom layer has %d weights at most", where,
                    KC_CUSTOM_MAX_WEIGHTS);
    for (int i = 0; !st && i < self->n_weights; i++)
        if (!strcmp(self->w[i].name, name))
            st = kc_err(KC_EINVAL, "%s: the layer already has a weight of that name", where);
    if (!st) {
        int64_t dims[KC_MAX_RANK];
        for (int d = 0; d < shape.rank; d++) dims[d] = shape.dims[d];
        st = kc_init_check(&initializer, KC_INIT_GLOROT_UNIFORM, shape.rank, dims, where);
    }
    if (st) return weight_fail(self, st), -1;
    kc_custom_weight_decl *w = &self->w[self->n_weights];
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    w->shape = shape;
    w->init = initializer;
    w->trainable = trainable != 0;
    w->count = kc_shape_size(shape);
    return self->n_weights++;
}

float *kc_custom_weight(kc_custom_layer *self, int index) {
    if (!self || index < 0 || index >= self->n_weights || !self->layer->kernel) return NULL;
    return self->layer->kernel + self->w[index].offset;
}

float *kc_custom_weight_grad(kc_custom_layer *self, int index) {
    if (!self || index < 0 || index >= self->n_weights || !self->layer->dkernel) return NULL;
    return self->layer->dkernel + self->w[index].offset;
}

int kc_custom_weight_count(const kc_custom_layer *self) { return self ? self->n_weights : 0; }

void *kc_custom_config(const kc_custom_layer *self) { return self ? self->config : NULL; }

kc_shape kc_custom_input_shape(const kc_custom_layer *self) {
    return self ? self->layer->in_shape : (kc_shape){0};
}

kc_shape kc_custom_output_shape(const kc_custom_layer *self) {
    return self ? self->layer->out_shape : (kc_shape){0};
}

const char *kc_custom_name(const kc_custom_layer *self) { return self ? self->layer->name : NULL; }

float *kc_custom_scratch(kc_custom_layer *self) { return self ? self->layer->scratch : NULL; }

kc_status kc_custom_error(const kc_custom_layer *self, kc_status status, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    if (fmt) vsnprintf(msg, sizeof msg, fmt, ap);
    else msg[0] = 0;
    va_end(ap);
    if (!self) return kc_err(status, "%s", msg);
    return kc_err(status, "layer %s (%s): %s", self->layer->name, self->entry->class_name, msg);
}

void kc_matmul(int transpose_a, int transpose_b, int m, int n, int k, const float *a,
               const float *b, float *c) {
    if (m <= 0 || n <= 0 || !c) return;
    if (k <= 0 || !a || !b) {
        memset(c, 0, sizeof(float) * (size_t)m * (size_t)n);
        return;
    }
    kc_gemm(transpose_a != 0, transpose_b != 0, m, n, k, a, b, c);
}
