/* mnist_cnn.c: Keras's two MNIST convnets in C.
 *   --model convnet  keras.io's "Simple MNIST convnet": Conv2D(32, 3, relu), MaxPooling2D(2),
 *                    Conv2D(64, 3, relu), MaxPooling2D(2), Flatten, Dropout(0.5),
 *                    Dense(10, softmax); Adam, batch 128, 15 epochs, validation_split 0.1.
 *   --model classic  Keras's examples/mnist_cnn.py: Conv2D(32, 3, relu), Conv2D(64, 3, relu),
 *                    MaxPooling2D(2), Dropout(0.25), Flatten, Dense(128, relu), Dropout(0.5),
 *                    Dense(10, softmax); Adadelta(learning_rate=1.0), batch 128, 12 epochs,
 *                    the test set as validation data.
 * --save PATH writes the trained model (.keras, .h5 or .weights.h5); --load PATH starts from a
 * saved model, from kerac or Keras (with --epochs 0 it only evaluates). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kerac.h"
#include "mnist_models.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: mnist_cnn [options]\n"
            "  --model convnet|classic  the network (default convnet)\n"
            "  --epochs N         training epochs (default 15 for convnet, 12 for classic)\n"
            "  --batch-size N     samples per step (default 128)\n"
            "  --seed N           random seed for weights, shuffling and dropout (default 1337)\n"
            "  --data DIR         directory holding the four MNIST IDX files (raw or .gz);\n"
            "                     default: $KERAC_DATA/mnist, the user cache, or a download\n"
            "  --threads N        threads (default $KERAC_NUM_THREADS or all cores)\n"
            "  --verbose 0|1|2    0 silent, 1 progress bar, 2 one line per epoch (default 1)\n"
            "  --load PATH        start from a saved model (.keras or .h5, from kerac or Keras)\n"
            "                     instead of building one; it continues from the saved epoch\n"
            "                     (with --epochs 0 it only evaluates)\n"
            "  --save PATH        save the trained model; the format follows the extension:\n"
            "                     .keras, .h5 (legacy full model) or .weights.h5\n"
            "  --distributed      data-parallel training under mpirun (kc_distributed_init):\n"
            "                     `mpirun -np 2 build/mnist_cnn --distributed`; the weights\n"
            "                     are the same bits for any number of ranks; rank 0 prints\n"
            "                     and saves\n"
            "  --help             this text\n");
}

/* Parses a whole decimal number in [lo, hi] or fails with a message naming the option. */
static int parse_int(const char *option, const char *text, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = text ? strtol(text, &end, 10) : 0;
    if (!text || errno || *end || end == text || v < lo || v > hi) {
        fprintf(stderr, "mnist_cnn: %s needs a whole number in [%ld, %ld], got '%s'\n", option,
                lo, hi, text ? text : "");
        return 0;
    }
    *out = v;
    return 1;
}

/* kerac's warnings (a file's optimizer state skipped, ...) go to stderr */
static void print_warning(const char *message, void *user) {
    fprintf(stderr, "%s: warning: %s\n", (const char *)user, message);
}

int main(int argc, char **argv) {
    kc_set_warning_handler(print_warning, (void *)"mnist_cnn");
    long epochs = -1, batch_size = 128, seed = 1337, threads = 0, verbose = 1;
    int distributed = 0;
    const char *data_dir = NULL, *model_name = "convnet", *save_path = NULL, *load_path = NULL;
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
        else if (!strcmp(a, "--distributed")) distributed = 1;
        else if (!strcmp(a, "--save") || !strcmp(a, "--load")) {
            if (!v) {
                fprintf(stderr, "mnist_cnn: %s needs a file path\n", a);
                return 2;
            }
            *(a[2] == 's' ? &save_path : &load_path) = v, i++;
        } else if (!strcmp(a, "--model") || !strcmp(a, "--data")) {
            if (!v) {
                fprintf(stderr, "mnist_cnn: %s needs a value\n", a);
                return 2;
            }
            if (!strcmp(a, "--data")) data_dir = v;
            else if (!strcmp(v, "convnet") || !strcmp(v, "classic")) model_name = v;
            else {
                fprintf(stderr, "mnist_cnn: --model must be convnet or classic, got '%s'\n", v);
                return 2;
            }
            i++;
        } else {
            fprintf(stderr, "mnist_cnn: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) return 2;
    }
    int classic = !strcmp(model_name, "classic");
    if (epochs < 0) epochs = classic ? 12 : 15;
    if (distributed) {
        if (kc_distributed_init(&argc, &argv) != KC_OK) {
            fprintf(stderr, "mnist_cnn: --distributed: %s\n", kc_last_error());
            return 1;
        }
        if (kc_distributed_rank() > 0 && !freopen("/dev/null", "w", stdout)) return 1;
    }
    kc_set_random_seed((uint64_t)seed);
    kc_set_num_threads((int)threads);

    kc_dataset train, test;
    if (kc_mnist_load(data_dir, &train, &test) != KC_OK) {
        fprintf(stderr, "mnist_cnn: %s\n", kc_last_error());
        return 1;
    }
    /* x = np.expand_dims(x.astype("float32") / 255, -1); y = to_categorical(y, 10) */
    kc_dataset *sets[] = {&train, &test};
    for (int s = 0; s < 2; s++) {
        if (kc_dataset_reshape(sets[s], kc_shape3(28, 28, 1)) ||
            kc_dataset_scale(sets[s], 1.0f / 255) || kc_to_categorical(sets[s], 10)) {
            fprintf(stderr, "mnist_cnn: %s\n", kc_last_error());
            return 1;
        }
    }
    printf("x_train shape: (%lld, 28, 28, 1)\n%lld train samples\n%lld test samples\n",
           (long long)train.count, (long long)train.count, (long long)test.count);

    kc_model *model = NULL;
    if (load_path) {
        if (kc_load(load_path, &model) != KC_OK) {
            fprintf(stderr, "mnist_cnn: %s\n", kc_last_error());
            return 1;
        }
        printf("loaded %s (epoch %d)\n", load_path, kc_model_epoch(model));
    } else if (!(model = mnist_cnn_build(classic))) {
        fprintf(stderr, "mnist_cnn: %s\n", kc_last_error());
        return 1;
    }
    kc_optimizer *opt = load_path ? NULL : mnist_cnn_optimizer(classic);
    kc_summary(model, stdout);

    int status = 1;
    kc_metrics score;
    /* a loaded model keeps its compile settings and optimizer state; one saved without them
     * is compiled with --model's optimizer */
    int compiled = load_path && kc_get_learning_rate(model) > 0.0f;
    if (load_path && !compiled)
        opt = mnist_cnn_optimizer(classic);
    int first = load_path ? kc_model_epoch(model) : 0;
    kc_fit_opts fit = {.batch_size = (int)batch_size, .initial_epoch = first,
                       .epochs = first + (int)epochs, .verbose = verbose ? (int)verbose : -1};
    if (classic) fit.validation = &test;
    else fit.validation_split = 0.1f;
    if ((!compiled &&
         kc_compile(model, KC_CATEGORICAL_CROSSENTROPY, opt, KC_METRIC_ACCURACY) != KC_OK) ||
        (epochs > 0 && kc_fit(model, &train, &fit, NULL) != KC_OK) ||
        (save_path && kc_distributed_rank() == 0 && kc_save(model, save_path) != KC_OK) ||
        kc_evaluate(model, &test, &(kc_evaluate_opts){.batch_size = (int)batch_size}, &score) !=
            KC_OK) {
        fprintf(stderr, "mnist_cnn: %s\n", kc_last_error());
    } else {
        printf("Test loss: %.6f\nTest accuracy: %.6f\n", score.loss, score.accuracy);
        status = 0;
    }
    kc_model_free(model);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
    if (distributed && kc_distributed_finalize() != KC_OK && !status) {
        fprintf(stderr, "mnist_cnn: %s\n", kc_last_error());
        status = 1;
    }
    return status;
}
