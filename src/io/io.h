/* io.h: what the saving and loading files share: whole-file reads, atomic writes, in-memory
 * zip archives (libzip), in-memory HDF5 files (HDF5's core driver), and the table that maps
 * kerac's optimizers to Keras's configs and variables (optimizer_config.c; each layer class
 * maps itself: kc_layer_ops in src/layers/layer.h). */
#ifndef KERAC_IO_H
#define KERAC_IO_H
#include "../model_view.h"
#include <cjson/cJSON.h>
#include <hdf5.h>
#include "h5lite.h"

/* what the load paths read: an object (group or dataset) of a file parsed by h5lite; libhdf5
 * (hid_t) only writes */
typedef const kc_h5l_node *kc_h5r;

/* ---- files (atomic.c) ---- */
kc_status kc_io_read_file(const char *path, void **data, size_t *size);
/* writes data to a temporary file beside path, fsyncs it, renames it over path, fsyncs the
 * directory: path holds the old contents or the new, never a mixture */
kc_status kc_io_write_atomic(const char *path, const void *data, size_t size);
/* 1 when path ends with suffix (case-insensitive) */
int kc_io_ends_with(const char *path, const char *suffix);

/* ---- zip (zipio.c) ---- */
typedef struct {
    const char *name;
    const void *data;
    size_t size;
} kc_zip_entry;
kc_status kc_zip_build(const kc_zip_entry *entries, int n, void **out, size_t *out_size);
/* entry name of the archive in zip (size bytes); *out malloc'd (NUL-terminated beyond size).
 * A missing entry gives KC_EFORMAT naming it; path is for messages. */
kc_status kc_zip_read(const char *path, const void *zip, size_t size, const char *name,
                      void **out, size_t *out_size);

/* ---- HDF5 (h5util.c) ---- */
hid_t kc_h5_open_image(const char *path, const void *data, size_t size); /* <0: error set */
hid_t kc_h5_create_mem(void);
/* closes f and returns its bytes (malloc'd) */
kc_status kc_h5_close_image(hid_t f, void **out, size_t *size);
void kc_h5_quiet(void); /* no HDF5 error stack printing */
int kc_h5_exists(hid_t loc, const char *path); /* every link along path exists */
hid_t kc_h5_group(hid_t loc, const char *path); /* creates missing groups; <0 on error */
kc_status kc_h5_attr_str(hid_t obj, const char *name, const char *value);
kc_status kc_h5_attr_str_list(hid_t obj, const char *name, const char *const *values, int n);
/* a string attribute (fixed or variable length, or a 1-element array of one) malloc'd */
char *kc_h5_read_attr_str(hid_t obj, const char *name);
/* 1 if a string attribute read since the last call came back NULL for want of memory */
int kc_h5_take_oom(void);
/* a list of strings (array of fixed or variable length strings); *n set; NULL on error
 * (including absent); free with kc_h5_free_list */
char **kc_h5_read_attr_str_list(hid_t obj, const char *name, int *n);
void kc_h5_free_list(char **list, int n);
kc_status kc_h5_write_f32(hid_t loc, const char *name, const float *data, int rank,
                          const int64_t *dims);
kc_status kc_h5_write_i64_scalar(hid_t loc, const char *name, int64_t value);
/* reads dataset name (in loc) as float32 into out, checking its shape equals dims[rank]:
 * errors say "<what>: has shape (...), the model needs (...)" */
kc_status kc_h5_read_f32(hid_t loc, const char *name, float *out, int rank,
                         const int64_t *dims, const char *what);
kc_status kc_h5_read_i64_scalar(hid_t loc, const char *name, int64_t *out, const char *what);
kc_status kc_h5_read_f32_scalar(hid_t loc, const char *name, float *out, const char *what);
void kc_dims_str(int rank, const int64_t *dims, char *buf, size_t size); /* "(4, 8)" */

/* ---- layers and optimizers <-> Keras ---- */
/* A layer class's config and variables are its own: kc_layer_ops's io functions, in its file
 * of src/layers/, found through src/layers/registry.c; the config fields layer classes and
 * optimizers share are config_fields.h's (config_fields.c, with these two). */
/* Keras's naming.to_snake_case: "MaxPooling2D" -> "max_pooling2d" */
void kc_snake_case(const char *name, char *out, size_t size);
double kc_json_float(float f); /* the double of f's shortest decimal: 0.2f -> 0.2 */

/* The optimizers' table (optimizer_config.c). */

/* Keras's optimizer variables after iteration and learning_rate: groups of slots, each group
 * interleaved over the trainable variables (Adam: momentum, velocity per variable, then
 * velocity_hat per variable) */
typedef struct {
    int n_groups;
    int group_size[4];
    int slot[4][4];
    const char *name[4][4];
    int u_product; /* then one scalar: Nadam's u_product (kerac keeps it as a double) */
} kc_opt_layout;
typedef struct {
    const char *class_name;
    int kind; /* kc_opt_kind */
    kc_optimizer *(*from_config)(const cJSON *config, const char *where);
    void (*to_config)(const kc_optimizer *opt, cJSON *config);
    void (*layout)(const kc_optimizer *opt, kc_opt_layout *out);
} kc_optimizer_io;
const kc_optimizer_io *kc_optimizer_io_find(const char *class_name);
const kc_optimizer_io *kc_optimizer_io_of(const kc_optimizer *opt);
/* a learning-rate schedule's config (Keras 3's or tf.keras 2's form) <-> kc_lr_schedule
 * (schedule_config.c); to_config writes Keras 3's form */
kc_status kc_schedule_from_config(const struct cJSON *v, const char *where, kc_lr_schedule *out);
struct cJSON *kc_schedule_to_config(const kc_lr_schedule *s);
/* the options of every optimizer and the learning-rate schedule from an optimizer config, set
 * on opt (optimizer_config.c); freed with an error */
kc_status kc_optimizer_common_from(const struct cJSON *cfg, const char *where, kc_optimizer *opt);

/* ---- initializers and regularizers <-> Keras (init_config.c) ---- */
/* A layer config's initializer field v into *out: absent leaves *out (the layer's default);
 * null is glorot_uniform (Keras's add_weight default); a name ("he_normal", "zeros", every
 * name and alias Keras 3 and tf.keras 2 accept); or {"class_name", "config"} with or without
 * Keras 3's "module" and "registered_name". Unknown classes, config fields or custom objects
 * are refused; errors read "<where>: <field>: ...". */
kc_status kc_initializer_from_json(const cJSON *v, const char *where, const char *field,
                                   kc_initializer *out);
/* Keras 3's {"module": "keras.initializers", "class_name", "config", "registered_name": null}
 * with the config fields Keras writes; KC_INIT_DEFAULT is written as default_kind */
cJSON *kc_initializer_to_json(const kc_initializer *init, kc_init_kind default_kind);
/* null or absent (none), "l1", "l2", "l1l2" (Keras 3: L1L2() = 0, 0), "l1_l2" (tf.keras 2:
 * 0.01, 0.01), or {"class_name": "L1" | "L2" | "L1L2", "config": {...}} */
kc_status kc_regularizer_from_json(const cJSON *v, const char *where, const char *field,
                                   kc_regularizer *out);
/* null when r is inactive, else Keras 3's form of L1, L2 or L1L2 (by which factors are set) */
cJSON *kc_regularizer_to_json(const kc_regularizer *r);

/* ---- model config (config.c) ---- */
typedef enum { KC_CONFIG_KERAS3 = 0, KC_CONFIG_LEGACY } kc_config_style;
/* The Sequential config object ({"module", "class_name", "config", ...}); with compile set
 * and the model compiled, "compile_config" too (Keras 3 style only) */
cJSON *kc_config_build(const kc_model_view *v, int with_compile, kc_config_style style);
/* one layer's item {module, class_name, config, ...} (in the form of the item being written),
 * and a layer from one:
 * the wrapper layers' nested "layer" (wrappers.c) */
cJSON *kc_config_layer_item(const kc_layer *l);
kc_status kc_config_layer_from(const cJSON *item, const char *where, kc_layer **out);
/* 1 while a to_config writes tf.keras 2's form (legacy .h5), which lacks some Keras 3 keys */
int kc_config_writing_legacy(void);
/* compile_config (Keras 3) or training_config (legacy) */
cJSON *kc_compile_config_build(const kc_model_view *v, kc_config_style style);
/* Builds a model from a config object (the whole {"class_name": "Sequential", ...}). where:
 * the file or "JSON" for messages. */
kc_status kc_config_model(const cJSON *root, const char *where, kc_model **out);
/* Compiles m from a Keras 3 compile_config or a legacy training_config (NULL: nothing) */
kc_status kc_config_compile(kc_model *m, const cJSON *compile, const char *where);
/* pieces model_config.c shares with config.c */
cJSON *kc_cfg_dtype_policy(kc_config_style style);
cJSON *kc_cfg_batch_shape(kc_shape s);
/* the batch dimension kc_cfg_batch_shape writes (0: null), set while one model's config is
 * written (kc_config_build) */
void kc_cfg_set_batch(int batch);
/* a batch shape's first entry: the fixed batch size, or 0 (null, or not a shape) */
int kc_cfg_batch_dim(const cJSON *a);
cJSON *kc_cfg_wrap(const char *module, const char *cls, cJSON *config, kc_config_style style);
kc_status kc_cfg_parse_batch_shape(const cJSON *a, const char *where, kc_shape *out);

/* ---- weights (weights.c) ---- */
/* Keras 3 layout ("layers/<snake>/vars/<i>", "optimizer/vars/<i>", "vars") */
kc_status kc_weights_write_k3(const kc_model_view *v, hid_t f);
/* TextVectorization layers' vocabularies (zip entries under assets/) and idf weights (weights.c) */
kc_status kc_tv_assets_write(const kc_model_view *v, hid_t f, kc_zip_entry **entries, int *n);
void kc_tv_assets_free(kc_zip_entry *entries, int n);
kc_status kc_tv_assets_read(const kc_model_view *v, kc_h5r f, const char *path, const void *zip,
                            size_t size);
/* with_optimizer: read optimizer/vars when the model is compiled and the file has them */
kc_status kc_weights_read_k3(const kc_model_view *v, kc_h5r f, const char *path, int with_optimizer);
/* legacy: the group holding layer_names (the root of a weights file, or model_weights) */
kc_status kc_weights_write_legacy(const kc_model_view *v, hid_t group);
kc_status kc_weights_read_legacy(const kc_model_view *v, kc_h5r group, const char *path);
kc_status kc_optimizer_write_legacy(const kc_model_view *v, hid_t file);
kc_status kc_optimizer_read_legacy(const kc_model_view *v, kc_h5r file, const char *path);

/* kerac's own state (rng, step, epoch, layer seeds) as a JSON object, and back */
cJSON *kc_state_build(const kc_model_view *v);
kc_status kc_state_apply(const kc_model_view *v, const cJSON *state, const char *path);
#endif
