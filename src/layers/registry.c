/* registry.c: the built-in layer classes, one line each; each is a kc_layer_ops defined in
 * its file of src/layers/ (its functions and its Keras file I/O). Loading finds a class here
 * by its Keras class name, then among the registered custom layer types (custom.c). */
#include "custom.h"
#include <stdio.h>
#include <string.h>

/* One line per class; kc_layer_io_names lists them in this order. */
#define BUILTIN_CLASSES(X)                                                                       \
    X(kc_softmax_ops)                                                                            \
    X(kc_dense_ops)                                                                              \
    X(kc_dropout_ops)                                                                            \
    X(kc_activation_ops)                                                                         \
    X(kc_flatten_ops)                                                                            \
    X(kc_conv2d_ops)                                                                             \
    X(kc_max_pooling2d_ops)                                                                      \
    X(kc_average_pooling2d_ops)                                                                  \
    X(kc_global_average_pooling2d_ops)                                                           \
    X(kc_global_max_pooling2d_ops)                                                               \
    X(kc_conv2d_transpose_ops)                                                                   \
    X(kc_up_sampling2d_ops)                                                                      \
    X(kc_zero_padding2d_ops)                                                                     \
    X(kc_cropping2d_ops)                                                                         \
    X(kc_identity_ops)                                                                           \
    X(kc_text_vectorization_ops)                                                                 \
    X(kc_reshape_ops)                                                                            \
    X(kc_batch_normalization_ops)                                                                \
    X(kc_add_ops)                                                                                \
    X(kc_subtract_ops)                                                                           \
    X(kc_multiply_ops)                                                                           \
    X(kc_average_ops)                                                                            \
    X(kc_maximum_ops)                                                                            \
    X(kc_minimum_ops)                                                                            \
    X(kc_concatenate_ops)                                                                        \
    X(kc_dot_ops)                                                                                \
    X(kc_relu_ops)                                                                               \
    X(kc_leaky_relu_ops)                                                                         \
    X(kc_prelu_ops)                                                                              \
    X(kc_elu_ops)                                                                                \
    /* sequences (conv1d.c, seq_simple.c) */                                                     \
    X(kc_conv1d_ops)                                                                             \
    X(kc_max_pooling1d_ops)                                                                      \
    X(kc_average_pooling1d_ops)                                                                  \
    X(kc_global_average_pooling1d_ops)                                                           \
    X(kc_global_max_pooling1d_ops)                                                               \
    X(kc_repeat_vector_ops)                                                                      \
    X(kc_permute_ops)                                                                            \
    /* recurrent (rnn.c, wrappers.c) */                                                          \
    X(kc_simple_rnn_ops)                                                                         \
    X(kc_lstm_ops)                                                                               \
    X(kc_gru_ops)                                                                                \
    X(kc_bidirectional_ops)                                                                      \
    X(kc_time_distributed_ops)                                                                   \
    /* token ids and masks (embedding.c) */                                                      \
    X(kc_embedding_ops)                                                                          \
    X(kc_masking_ops)                                                                            \
    /* preprocessing (preprocessing.c) */                                                        \
    X(kc_rescaling_ops)                                                                          \
    X(kc_normalization_ops)                                                                      \
    X(kc_resizing_ops)                                                                           \
    X(kc_center_crop_ops)                                                                        \
    X(kc_random_flip_ops)                                                                        \
    X(kc_random_rotation_ops)                                                                    \
    X(kc_random_translation_ops)                                                                 \
    X(kc_random_zoom_ops)                                                                        \
    X(kc_random_contrast_ops)

#define DECLARE(cls) extern const kc_layer_ops cls;
BUILTIN_CLASSES(DECLARE)
#define ADDRESS(cls) &cls,
static const kc_layer_ops *const builtin[] = {BUILTIN_CLASSES(ADDRESS)};
#define N_BUILTIN (sizeof builtin / sizeof *builtin)

const kc_layer_io *kc_layer_io_find(const char *class_name) {
    for (size_t i = 0; i < N_BUILTIN; i++)
        if (!strcmp(builtin[i]->type_name, class_name)) return &builtin[i]->io;
    const kc_custom_entry *e = kc_custom_find(class_name);
    return e ? &e->ops.io : NULL;
}

void kc_layer_io_names(char *buf, size_t size) {
    size_t at = 0;
    if (size) buf[0] = 0;
    for (size_t i = 0; i < N_BUILTIN && at < size; i++) {
        int n = snprintf(buf + at, size - at, "%s%s", i ? ", " : "", builtin[i]->type_name);
        if (n < 0) break;
        at += (size_t)n;
    }
}

int kc_layer_weights(const kc_layer *layer, kc_weight_desc *out) {
    int n = layer->ops->io.weights ? layer->ops->io.weights(layer, out) : 0;
    for (int i = 0; i < n; i++) out[i].offset += layer->param_offset;
    return n;
}
