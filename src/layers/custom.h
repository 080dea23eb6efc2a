/* custom.h: custom layers (kc_custom_layer_type) inside kerac: the registry of types, each
 * with its layer class (kc_layer_ops, file I/O included), and the layer's own part. custom.c
 * runs them, io/custom_io.c saves and loads them. */
#ifndef KERAC_CUSTOM_H
#define KERAC_CUSTOM_H
#include "layer.h"
#include "../io/io.h"

#define KC_CUSTOM_NAME_MAX 64

/* a type kerac has seen (made layers of, or registered); entries are never removed */
typedef struct {
    kc_custom_layer_type type; /* a copy (the strings point at the copies below); a type is
                                  known by its contents, not by the address of its struct */
    char class_name[KC_CUSTOM_NAME_MAX], package[KC_CUSTOM_NAME_MAX];
    char registered_name[2 * KC_CUSTOM_NAME_MAX + 1]; /* "package>class_name" */
    char base_name[2 * KC_CUSTOM_NAME_MAX];           /* snake case: "antirectifier" */
    int registered; /* kc_register_layer_type: loadable from files */
    kc_layer_ops ops; /* the type's class; its io is custom_io.c's, from_config NULL:
                         kc_custom_io_from_config reads the config (with the entry) */
} kc_custom_entry;

typedef struct {
    char name[KC_CUSTOM_NAME_MAX];
    kc_shape shape;
    kc_initializer init;
    int trainable;
    int64_t offset, count; /* floats, from the layer's first weight */
} kc_custom_weight_decl;

struct kc_custom_layer {
    kc_layer *layer;
    const kc_custom_entry *entry;
    void *config; /* entry->type.config_size bytes (NULL when 0) */
    int building; /* inside the type's build: weights may be declared */
    kc_status weight_error; /* the first kc_custom_add_weight failure of this build */
    char weight_msg[512];
    int n_weights;
    kc_custom_weight_decl w[KC_CUSTOM_MAX_WEIGHTS]; /* in declaration order */
};

/* a registered type by its registered name ("Custom>Antirectifier") or, for files that
 * name it bare, its class name; NULL when none */
const kc_custom_entry *kc_custom_find(const char *name);
/* the custom type whose class's io is io; NULL for Keras's classes */
const kc_custom_entry *kc_custom_of_io(const kc_layer_io *io);
/* the layer from a loaded config: options in config_size bytes (copied) */
kc_layer *kc_custom_make(const kc_custom_entry *e, const void *config);

/* io/custom_io.c */
kc_status kc_custom_io_from_config(const kc_custom_entry *e, const cJSON *config,
                                   const char *where, kc_layer **out);
kc_status kc_custom_io_to_config(const kc_layer *layer, cJSON *config);
int kc_custom_io_weights(const kc_layer *layer, kc_weight_desc *out);
#endif
