/* config_fields.h: the pieces of Keras's configs that several layer classes (their io
 * functions, in src/layers/) and the optimizers (optimizer_config.c) read or write: fields,
 * numbers, pairs of ints, activations, padding, data_format, the weights' options of Dense and
 * Conv2D. Errors read "<where>: ..." as the classes' own. */
#ifndef KERAC_CONFIG_FIELDS_H
#define KERAC_CONFIG_FIELDS_H
#include "io.h"

/* the field name of cfg (case-sensitive); NULL when absent */
const cJSON *kc_cfg_field(const cJSON *cfg, const char *name);
/* the number field name into *out: 1, or 0 when absent or null (*out kept), -1 when it is
 * not a number */
int kc_cfg_num(const cJSON *cfg, const char *name, double *out);
/* the field name: a positive whole number up to 1e8 ("units", "filters") */
kc_status kc_cfg_count(const cJSON *cfg, const char *name, const char *where, int *out);
/* fields that must be absent or null: regularizers, constraints and the like */
kc_status kc_cfg_must_be_null(const cJSON *cfg, const char *where, const char *const *names,
                              int n);
/* the from_config's end: *out = made, or the out-of-memory error prefixed with where */
kc_status kc_cfg_made(kc_layer *made, const char *where, kc_layer **out);

/* an activation: "relu", Keras's layer class of one ("ReLU"), or Keras 3's
 * {"class_name": "function", "config": "relu"}; absent or null is linear */
kc_status kc_cfg_activation(const cJSON *v, const char *where, kc_act *out);

/* ---- the spatial layers ---- */
/* the value v (an int or a list of 1 or 2 ints, Keras's standardize_tuple) into out[2], each
 * at least min; name for messages */
kc_status kc_cfg_int_pair_value(const cJSON *v, const char *name, const char *where, int min,
                                int out[2]);
/* the field name as an int or a list of 1 or 2 positive ints into out[2]; absent or null
 * leaves out as it is */
kc_status kc_cfg_int_pair(const cJSON *cfg, const char *name, const char *where, int out[2]);
cJSON *kc_cfg_int_list2(int a, int b); /* [a, b] */
/* padding "valid" (also absent or null) or "same", any case */
kc_status kc_cfg_padding(const cJSON *cfg, const char *where, kc_padding *out);
/* data_format absent, null or "channels_last" */
kc_status kc_cfg_channels_last(const cJSON *cfg, const char *where);

/* ---- the weights' options ---- */
/* use_bias: absent or true -> 0 (True), false -> KC_ZERO */
kc_status kc_cfg_use_bias(const cJSON *cfg, const char *where, int *out);
/* what Dense and Conv2D take beyond their shapes */
typedef struct {
    int use_bias; /* 0 (True) or KC_ZERO (False), as the option structs */
    kc_initializer kernel_init, bias_init;
    kc_regularizer kernel_reg, bias_reg, activity_reg;
} kc_cfg_weight_opts;
/* use_bias, kernel_initializer, bias_initializer, the three regularizers; the constraints and
 * the LoRA and quantization options kerac lacks must be null */
kc_status kc_cfg_weight_opts_from(const cJSON *cfg, const char *where, kc_cfg_weight_opts *o);
/* copies w into a layer's option struct o (kc_dense_opts, kc_conv2d_opts, kc_conv1d_opts:
 * the same member names) */
#define KC_CFG_WEIGHT_OPTS_INTO(o, w)                                                           \
    ((o).use_bias = (w).use_bias, (o).kernel_initializer = (w).kernel_init,                      \
     (o).bias_initializer = (w).bias_init, (o).kernel_regularizer = (w).kernel_reg,              \
     (o).bias_regularizer = (w).bias_reg, (o).activity_regularizer = (w).activity_reg)
/* a convolution's options beyond its geometry: groups (1 only), the weights' options and the
 * activation */
kc_status kc_cfg_conv_common(const cJSON *cfg, const char *where, kc_cfg_weight_opts *w,
                             kc_act *act);
/* the same fields of layer l, and the two constraints null */
void kc_cfg_weight_opts_to(const kc_layer *l, cJSON *cfg);
/* the variables of a layer with a kernel of rank dims (kernel_size floats), then, unless
 * use_bias=False, a bias of units floats: the io's weights function of Dense and the
 * convolutions; returns their count */
int kc_cfg_kernel_bias(const kc_layer *l, int rank, const int64_t *dims, kc_weight_desc *w);
#endif
