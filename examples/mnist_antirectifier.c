/* mnist_antirectifier.c: keras.io's "Simple custom layer example: Antirectifier" in C. The
 * custom layer is examples/antirectifier.h (a kc_custom_layer_type); the rest is the
 * example's script: MNIST as 784 floats in [0, 1], Dense(256) -> Antirectifier ->
 * Dense(256) -> Antirectifier -> Dropout(0.5) -> Dense(10), RMSprop(), sparse categorical
 * crossentropy, accuracy, batch 128, 20 epochs, validation_split 0.15, then evaluate on the
 * test set. Keras's last Dense gives logits to SparseCategoricalCrossentropy(from_logits=True);
 * here it ends in a softmax and the loss takes probabilities: the same function, and kerac
 * takes its gradient in the same single step. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antirectifier.h"
#include "kerac.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: mnist_antirectifier [options]\n"
            "  --epochs N         training epochs (default 20, as keras.io)\n"
            "  --batch-size N     samples per step (default 128)\n"
            "  --seed N           random seed for weights, shuffling and dropout (default 1337)\n"
            "  --data DIR         directory holding the four MNIST IDX files (raw or .gz);\n"
            "                     default: $KERAC_DATA/mnist, the user cache, or a download\n"
            "  --threads N        threads (default $KERAC_NUM_THREADS or all cores)\n"
            "  --verbose 0|1|2    0 silent, 1 progress bar, 2 one line per epoch (default 1)\n"
            "  --load PATH        start from a saved model (.keras or .h5, from kerac or from\n"
            "                     Keras with the Antirectifier class registered); with\n"
            "                     --epochs 0 it only evaluates\n"
            "  --save PATH        save the trained model (.keras, .h5 or .weights.h5)\n"
            "  --help             this text\n");
}

static int parse_int(const char *option, const char *text, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = text ? strtol(text, &end, 10) : 0;
    if (!text || errno || *end || end == text || v < lo || v > hi) {
        fprintf(stderr, "mnist_antirectifier: %s needs a whole number in [%ld, %ld], got '%s'\n",
                option, lo, hi, text ? text : "");
        return 0;
    }
    *out = v;
    return 1;
}

int main(int argc, char **argv) {
    long epochs = 20, batch_size = 128, seed = 1337, threads = 0, verbose = 1;
    const char *data_dir = NULL, *save_path = NULL, *load_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--epochs")) ok = parse_int(a, v, 0, 100000, &epochs), i++;
        else if (!strcmp(a, "--batch-size")) ok = parse_int(a, v, 1, 60000, &batch_size), i++;
        else if (!strcmp(a, "--seed")) ok = parse_int(a, v, 0, LONG_MAX, &seed), i++;
        else if (!strcmp(a, "--threads")) ok = parse_int(a, v, 1, 1024, &threads), i++;
        else if (!strcmp(a, "--verbose")) ok = parse_int(a, v, 0, 2, &verbose), i++;
        else if (!strcmp(a, "--save") || !strcmp(a, "--load") || !strcmp(a, "--data")) {
            if (!v) {
                fprintf(stderr, "mnist_antirectifier: %s needs a path\n", a);
                return 2;
            }
            *(a[2] == 's' ? &save_path : a[2] == 'l' ? &load_path : &data_dir) = v, i++;
        } else {
            fprintf(stderr, "mnist_antirectifier: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) return 2;
    }
    kc_set_random_seed((uint64_t)seed);
    kc_set_num_threads((int)threads);
    /* @keras.saving.register_keras_serializable(): files holding the layer can be loaded */
    if (kc_register_layer_type(&antirectifier_type) != KC_OK) {
        fprintf(stderr, "mnist_antirectifier: %s\n", kc_last_error());
        return 1;
    }

    /* x_train.reshape(-1, 784).astype("float32") / 255; y stays class indices */
    kc_dataset train, test;
    if (kc_mnist_load(data_dir, &train, &test) != KC_OK) {
        fprintf(stderr, "mnist_antirectifier: %s\n", kc_last_error());
        return 1;
    }
    kc_dataset *sets[] = {&train, &test};
    for (int s = 0; s < 2; s++)
        if (kc_dataset_reshape(sets[s], kc_shape1(784)) || kc_dataset_scale(sets[s], 1.0f / 255)) {
            fprintf(stderr, "mnist_antirectifier: %s\n", kc_last_error());
            return 1;
        }
    printf("%lld train samples\n%lld test samples\n", (long long)train.count,
           (long long)test.count);

    kc_model *model = NULL;
    if (load_path) {
        if (kc_load(load_path, &model) != KC_OK) {
            fprintf(stderr, "mnist_antirectifier: %s\n", kc_last_error());
            return 1;
        }
        printf("loaded %s (epoch %d)\n", load_path, kc_model_epoch(model));
    } else {
        model = kc_sequential(kc_shape1(784));
        if (!model) {
            fprintf(stderr, "mnist_antirectifier: %s\n", kc_last_error());
            return 1;
        }
        kc_add(model, kc_dense(256, KC_LINEAR));
        kc_add(model, antirectifier());
        kc_add(model, kc_dense(256, KC_LINEAR));
        kc_add(model, antirectifier());
        kc_add(model, kc_dropout(0.5f));
        kc_add(model, kc_dense(10, KC_SOFTMAX));
    }
    kc_summary(model, stdout);

    int status = 1;
    kc_metrics score;
    int compiled = load_path && kc_get_learning_rate(model) > 0.0f;
    int first = load_path ? kc_model_epoch(model) : 0;
    if ((!compiled && kc_compile(model, KC_SPARSE_CATEGORICAL_CROSSENTROPY, kc_rmsprop(NULL),
                                 KC_METRIC_ACCURACY) != KC_OK) ||
        (epochs > 0 && kc_fit(model, &train,
                              &(kc_fit_opts){.batch_size = (int)batch_size,
                                             .initial_epoch = first,
                                             .epochs = first + (int)epochs,
                                             .validation_split = 0.15f,
                                             .verbose = verbose ? (int)verbose : -1},
                              NULL) != KC_OK) ||
        (save_path && kc_save(model, save_path) != KC_OK) ||
        kc_evaluate(model, &test, &(kc_evaluate_opts){.batch_size = (int)batch_size}, &score) !=
            KC_OK) {
        fprintf(stderr, "mnist_antirectifier: %s\n", kc_last_error());
    } else {
        printf("Test loss: %.6f\nTest accuracy: %.6f\n", score.loss, score.accuracy);
        status = 0;
    }
    kc_model_free(model);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
    return status;
}
