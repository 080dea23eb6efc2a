/* mnist_models.h: the MNIST networks of the examples, built in one place that
 * examples/mnist_mlp.c, examples/mnist_cnn.c and the kerac program (cli/) share.
 *   mnist_mlp_build(h)   "Getting Started with Machine Learning Using Keras": 784 inputs,
 *                        h (0, 1 or 2) hidden Dense(512, relu) + Dropout(0.2), Dense(10,
 *                        softmax); categorical crossentropy, RMSprop, batch 128, 20 epochs,
 *                        the test set as validation data.
 *   mnist_cnn_build(0)   keras.io's "Simple MNIST convnet" (convnet): Conv2D(32, 3, relu),
 *                        MaxPooling2D(2), Conv2D(64, 3, relu), MaxPooling2D(2), Flatten,
 *                        Dropout(0.5), Dense(10, softmax); Adam, batch 128, 15 epochs,
 *                        validation_split 0.1.
 *   mnist_cnn_build(1)   Keras 2's examples/mnist_cnn.py (classic): Conv2D(32, 3, relu),
 *                        Conv2D(64, 3, relu), MaxPooling2D(2), Dropout(0.25), Flatten,
 *                        Dense(128, relu), Dropout(0.5), Dense(10, softmax);
 *                        Adadelta(learning_rate=1.0), batch 128, 12 epochs, the test set as
 *                        validation data.
 * The builders return an uncompiled model (NULL with kc_last_error set); the *_optimizer
 * functions give the optimizer each is compiled with (all with categorical crossentropy and
 * accuracy). */
#ifndef KERAC_EXAMPLE_MNIST_MODELS_H
#define KERAC_EXAMPLE_MNIST_MODELS_H
#include "kerac.h"

static inline kc_model *mnist_mlp_build(int hidden) {
    kc_model *model = kc_sequential(kc_shape1(784));
    if (!model) return NULL;
    for (int h = 0; h < hidden; h++) {
        kc_add(model, kc_dense(512, KC_RELU));
        kc_add(model, kc_dropout(0.2f));
    }
    kc_add(model, kc_dense(10, KC_SOFTMAX));
    return model;
}

static inline kc_optimizer *mnist_mlp_optimizer(void) {
    return kc_rmsprop(&(kc_rmsprop_opts){0});
}

static inline kc_model *mnist_cnn_build(int classic) {
    kc_model *model = kc_sequential(kc_shape3(28, 28, 1));
    if (!model) return NULL;
    if (classic) {
        kc_add(model, kc_conv2d(32, 3, KC_RELU));
        kc_add(model, kc_conv2d(64, 3, KC_RELU));
        kc_add(model, kc_max_pooling2d(2));
        kc_add(model, kc_dropout(0.25f));
        kc_add(model, kc_flatten());
        kc_add(model, kc_dense(128, KC_RELU));
        kc_add(model, kc_dropout(0.5f));
        kc_add(model, kc_dense(10, KC_SOFTMAX));
    } else {
        kc_add(model, kc_conv2d(32, 3, KC_RELU));
        kc_add(model, kc_max_pooling2d(2));
        kc_add(model, kc_conv2d(64, 3, KC_RELU));
        kc_add(model, kc_max_pooling2d(2));
        kc_add(model, kc_flatten());
        kc_add(model, kc_dropout(0.5f));
        kc_add(model, kc_dense(10, KC_SOFTMAX));
    }
    return model;
}

static inline kc_optimizer *mnist_cnn_optimizer(int classic) {
    return classic ? kc_adadelta(&(kc_adadelta_opts){.learning_rate = 1.0f})
                   : kc_adam(&(kc_adam_opts){0});
}
#endif
