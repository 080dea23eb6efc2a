/* antirectifier.h: keras.io's "Simple custom layer example: Antirectifier" as a kerac custom
 * layer type (examples/mnist_antirectifier.c trains it; tests/test_custom.c checks it against
 * Keras). The Keras class:
 *
 *   class Antirectifier(layers.Layer):
 *       def __init__(self, initializer="he_normal", **kwargs):
 *           super().__init__(**kwargs)
 *           self.initializer = keras.initializers.get(initializer)
 *       def build(self, input_shape):
 *           output_dim = input_shape[-1]
 *           self.kernel = self.add_weight(shape=(output_dim * 2, output_dim),
 *                                         initializer=self.initializer, name="kernel",
 *                                         trainable=True)
 *       def call(self, inputs):
 *           inputs -= mean(inputs, axis=-1, keepdims=True)
 *           pos = relu(inputs)
 *           neg = relu(-inputs)
 *           concatenated = concat([pos, neg], axis=-1)
 *           return matmul(concatenated, self.kernel)
 *       def get_config(self):
 *           return {**super().get_config(),
 *                   "initializer": keras.initializers.serialize(self.initializer)}
 *
 * registered in Keras with @keras.saving.register_keras_serializable() (package "Custom"),
 * here with kc_register_layer_type(&antirectifier_type). Along the last axis, of size d: the
 * input centred, its positive and negative parts side by side (2 d), times the kernel (2 d, d).
 * The backward Keras gets by autodiff is written out below. */
#ifndef KERAC_EXAMPLE_ANTIRECTIFIER_H
#define KERAC_EXAMPLE_ANTIRECTIFIER_H
#include <stddef.h>
#include <string.h>

#include "kerac.h"

/* the __init__ arguments: what get_config saves */
typedef struct {
    kc_initializer initializer;
} antirectifier_config;

static const antirectifier_config antirectifier_defaults = {
    .initializer = {.kind = KC_INIT_HE_NORMAL}};

static const kc_config_field antirectifier_fields[] = {
    {"initializer", KC_FIELD_INITIALIZER, offsetof(antirectifier_config, initializer), 0}};

/* d: the last axis; rows: the vectors of d values in a batch of samples */
static int antirectifier_d(const kc_custom_layer *self) {
    kc_shape s = kc_custom_input_shape(self);
    return s.dims[s.rank - 1];
}

static int antirectifier_rows(const kc_custom_layer *self, int batch) {
    kc_shape s = kc_custom_input_shape(self);
    int64_t rows = batch;
    for (int i = 0; i + 1 < s.rank; i++) rows *= s.dims[i];
    return (int)rows;
}

static kc_status antirectifier_build(kc_custom_layer *self, kc_shape input_shape,
                                     kc_shape *output_shape) {
    int d = input_shape.dims[input_shape.rank - 1];
    const antirectifier_config *cfg = kc_custom_config(self);
    /* self.kernel = self.add_weight(shape=(output_dim * 2, output_dim), ...) */
    if (kc_custom_add_weight(self, "kernel", kc_shape2(2 * d, d), cfg->initializer, 1) < 0)
        return KC_EINVAL;
    *output_shape = input_shape;
    return KC_OK;
}

/* h (rows, 2 d): the concatenation forward computes, kept for backward; dh the same size */
static int64_t antirectifier_scratch(const kc_custom_layer *self, int batch) {
    return 4 * (int64_t)antirectifier_rows(self, batch) * antirectifier_d(self);
}

static void antirectifier_forward(kc_custom_layer *self, const float *in, float *out, int batch,
                                  int training) {
    int d = antirectifier_d(self), rows = antirectifier_rows(self, batch);
    float *h = kc_custom_scratch(self);
    for (int r = 0; r < rows; r++) {
        const float *x = in + (int64_t)r * d;
        float *pos = h + (int64_t)r * 2 * d, *neg = pos + d;
        double sum = 0;
        for (int j = 0; j < d; j++) sum += x[j];
        float mean = (float)(sum / d);
        for (int j = 0; j < d; j++) {
            float c = x[j] - mean;
            pos[j] = c > 0 ? c : 0;
            neg[j] = c < 0 ? -c : 0;
        }
    }
    /* mixed = matmul(concatenated, self.kernel) */
    kc_matmul(0, 0, rows, d, 2 * d, h, kc_custom_weight(self, 0), out);
}

static void antirectifier_backward(kc_custom_layer *self, const float *in, const float *out,
                                   const float *dout, float *din, int batch) {
    int d = antirectifier_d(self), rows = antirectifier_rows(self, batch);
    float *h = kc_custom_scratch(self), *dh = h + (int64_t)rows * 2 * d;
    /* d kernel = h^T dout */
    kc_matmul(1, 0, 2 * d, d, rows, h, dout, kc_custom_weight_grad(self, 0));
    if (!din) return;
    /* dh = dout kernel^T; through the relus (derivative 0 at 0, as JAX's) to the centred c,
     * then through the centring: dx = dc - mean(dc) */
    kc_matmul(0, 1, rows, 2 * d, d, dout, kc_custom_weight(self, 0), dh);
    for (int r = 0; r < rows; r++) {
        const float *pos = h + (int64_t)r * 2 * d, *neg = pos + d;
        const float *dpos = dh + (int64_t)r * 2 * d, *dneg = dpos + d;
        float *dx = din + (int64_t)r * d;
        double sum = 0;
        for (int j = 0; j < d; j++) {
            dx[j] = (pos[j] > 0 ? dpos[j] : 0) - (neg[j] > 0 ? dneg[j] : 0);
            sum += dx[j];
        }
        float mean = (float)(sum / d);
        for (int j = 0; j < d; j++) dx[j] -= mean;
    }
}

static const kc_custom_layer_type antirectifier_type = {
    .class_name = "Antirectifier", /* package NULL: "Custom>Antirectifier", as Keras's default */
    .config_size = sizeof(antirectifier_config),
    .default_config = &antirectifier_defaults,
    .config_fields = antirectifier_fields,
    .n_config_fields = 1,
    .build = antirectifier_build,
    .forward = antirectifier_forward,
    .backward = antirectifier_backward,
    .scratch_size = antirectifier_scratch,
};

/* Antirectifier(): he_normal kernel */
static inline kc_layer *antirectifier(void) { return kc_custom(&antirectifier_type, NULL); }
#endif
