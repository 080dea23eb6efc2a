/* conv_models.h: the small convnet and inputs that tests/test_saving_conv.c,
 * tests/tools/write_conv_models.c and tests/gen_keras_files.py (keras3-conv, check-conv) share:
 * Input(12, 12, 1), Conv2D(4, 3, strides 2, same, relu), BatchNormalization,
 * MaxPooling2D(2), AveragePooling2D(2, strides 1, same), Conv2D(6, 2, relu), Flatten,
 * Reshape((2, 2, 6)), GlobalAveragePooling2D, Dense(3, softmax). */
#ifndef KERAC_CONV_MODELS_H
#define KERAC_CONV_MODELS_H
#include "kerac.h"
#include <string.h>

#define CN 24        /* samples */
#define CPIX (12 * 12)

static inline void conv_data(float *x, float *y) {
    for (int i = 0; i < CN; i++) {
        for (int r = 0; r < 12; r++)
            for (int c = 0; c < 12; c++)
                x[i * CPIX + r * 12 + c] = (float)((i * 7 + r * 5 + c * 3) % 17) / 17.0f - 0.4f;
        for (int j = 0; j < 3; j++) y[i * 3 + j] = (float)((i + i / 4) % 3 == j);
    }
}

/* the optimizers by name: adam, adamw, adadelta, adagrad, nadam */
static inline kc_optimizer *conv_optimizer(const char *name) {
    if (!strcmp(name, "adam")) return kc_adam(&(kc_adam_opts){.learning_rate = 0.01f});
    if (!strcmp(name, "adamw"))
        return kc_adamw(&(kc_adamw_opts){.learning_rate = 0.01f, .weight_decay = 0.05f});
    if (!strcmp(name, "adadelta")) return kc_adadelta(&(kc_adadelta_opts){.learning_rate = 0.5f});
    if (!strcmp(name, "adagrad")) return kc_adagrad(&(kc_adagrad_opts){.learning_rate = 0.05f});
    if (!strcmp(name, "nadam")) return kc_nadam(&(kc_nadam_opts){.learning_rate = 0.01f});
    return NULL;
}

/* NULL optimizer: not compiled */
static inline kc_model *conv_model(const char *opt, int kernel) {
    kc_model *m = kc_sequential(kc_shape3(12, 12, 1));
    kc_add(m, kc_conv2d_ex(4, &(kc_conv2d_opts){.kernel_size = {kernel}, .strides = {2},
                                                .padding = KC_SAME, .activation = KC_RELU}));
    kc_add(m, kc_batch_normalization(NULL));
    kc_add(m, kc_max_pooling2d(2));
    kc_add(m, kc_average_pooling2d_ex(&(kc_pool2d_opts){.pool_size = {2}, .strides = {1},
                                                        .padding = KC_SAME}));
    kc_add(m, kc_conv2d(6, 2, KC_RELU));
    kc_add(m, kc_flatten());
    kc_add(m, kc_reshape(kc_shape3(2, 2, 6)));
    kc_add(m, kc_global_average_pooling2d());
    kc_add(m, kc_dense(3, KC_SOFTMAX));
    if (opt && kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, conv_optimizer(opt), KC_METRIC_ACCURACY)) {
        kc_model_free(m);
        return NULL;
    }
    return m;
}
#endif
