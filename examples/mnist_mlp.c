/* mnist_mlp.c: the networks of "Getting Started with Machine Learning Using Keras" in C:
 * MNIST, 784 inputs, 0, 1 or 2 hidden Dense(512, relu) + Dropout(0.2) layers, softmax output,
 * categorical crossentropy, RMSprop, accuracy, batch 128, 20 epochs. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kerac.h"
#include "mnist_models.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: mnist_mlp [options]\n"
            "  --hidden 0|1|2     hidden Dense(512, relu) + Dropout(0.2) layers (default 2)\n"
            "  --epochs N         training epochs (default 20)\n"
            "  --batch-size N     samples per step (default 128)\n"
            "  --seed N           random seed for weights, shuffling and dropout (default 1337)\n"
            "  --data DIR         directory holding the four MNIST IDX files (raw or .gz);\n"
            "                     default: $KERAC_DATA/mnist, the user cache, or a download\n"
            "  --threads N        threads (default $KERAC_NUM_THREADS or all cores)\n"
            "  --bf16             Keras's mixed_bfloat16: products in bfloat16, sums and\n"
            "                     weights in float32 (needs AVX512-BF16)\n"
            "  --verbose 0|1|2    0 silent, 1 progress bar, 2 one line per epoch (default 1)\n"
            "  --load PATH        start from a saved model (.keras or .h5, from kerac or Keras)\n"
            "                     instead of building one; it continues from the saved epoch\n"
            "                     (with --epochs 0 it only evaluates)\n"
            "  --save PATH        save the trained model; the format follows the extension:\n"
            "                     .keras, .h5 (legacy full model) or .weights.h5\n"
            "  --samples N        train and test on the first N samples of each (default all)\n"
            "  --distributed      data-parallel training under mpirun (kc_distributed_init):\n"
            "                     `mpirun -np 4 build/mnist_mlp --distributed`; the weights\n"
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
        fprintf(stderr, "mnist_mlp: %s needs a whole number in [%ld, %ld], got '%s'\n", option,
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
    kc_set_warning_handler(print_warning, (void *)"mnist_mlp");
    long hidden = 2, epochs = 20, batch_size = 128, seed = 1337, threads = 0, verbose = 1;
    int bf16 = 0, distributed = 0;
    long samples = 0;
    const char *data_dir = NULL, *save_path = NULL, *load_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--hidden")) ok = parse_int(a, v, 0, 2, &hidden), i++;
        else if (!strcmp(a, "--epochs")) ok = parse_int(a, v, 0, 100000, &epochs), i++;
        else if (!strcmp(a, "--batch-size")) ok = parse_int(a, v, 1, 60000, &batch_size), i++;
        else if (!strcmp(a, "--seed")) ok = parse_int(a, v, 0, LONG_MAX, &seed), i++;
        else if (!strcmp(a, "--threads")) ok = parse_int(a, v, 1, 1024, &threads), i++;
        else if (!strcmp(a, "--verbose")) ok = parse_int(a, v, 0, 2, &verbose), i++;
        else if (!strcmp(a, "--bf16")) bf16 = 1;
        else if (!strcmp(a, "--distributed")) distributed = 1;
        else if (!strcmp(a, "--samples")) ok = parse_int(a, v, 1, 60000, &samples), i++;
        else if (!strcmp(a, "--save") || !strcmp(a, "--load")) {
            if (!v) {
                fprintf(stderr, "mnist_mlp: %s needs a file path\n", a);
                return 2;
            }
            *(a[2] == 's' ? &save_path : &load_path) = v, i++;
        } else if (!strcmp(a, "--data")) {
            if (!v) {
                fprintf(stderr, "mnist_mlp: --data needs a directory\n");
                return 2;
            }
            data_dir = v, i++;
        } else {
            fprintf(stderr, "mnist_mlp: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) return 2;
    }
    if (distributed) {
        if (kc_distributed_init(&argc, &argv) != KC_OK) {
            fprintf(stderr, "mnist_mlp: --distributed: %s\n", kc_last_error());
            return 1;
        }
        if (kc_distributed_rank() > 0 && !freopen("/dev/null", "w", stdout)) return 1;
    }
    kc_set_random_seed((uint64_t)seed);
    kc_set_num_threads((int)threads);

    /* (x_train, y_train), (x_test, y_test) = mnist.load_data() */
    kc_dataset train, test;
    if (kc_mnist_load(data_dir, &train, &test) != KC_OK) {
        fprintf(stderr, "mnist_mlp: %s\n", kc_last_error());
        return 1;
    }
    if (samples && samples < train.count) train.count = samples;
    if (samples && samples < test.count) test.count = samples;
    printf("%lld train samples\n%lld test samples\n", (long long)train.count,
           (long long)test.count);

    kc_model *model = NULL;
    if (load_path) {
        if (kc_load(load_path, &model) != KC_OK) {
            fprintf(stderr, "mnist_mlp: %s\n", kc_last_error());
            return 1;
        }
        printf("loaded %s (epoch %d)\n", load_path, kc_model_epoch(model));
    } else {
        model = mnist_mlp_build((int)hidden);
        if (!model) {
            fprintf(stderr, "mnist_mlp: %s\n", kc_last_error());
            return 1;
        }
    }
    kc_summary(model, stdout);
    if (bf16 && kc_set_mixed_bfloat16(model, 1) != KC_OK) {
        fprintf(stderr, "mnist_mlp: %s\n", kc_last_error());
        kc_model_free(model);
        return 1;
    }

    int status = 1;
    kc_metrics score;
    /* a loaded model keeps its compile settings and optimizer state; one saved without them
     * is compiled as the tutorial does */
    int compiled = load_path && kc_get_learning_rate(model) > 0.0f;
    int first = load_path ? kc_model_epoch(model) : 0;
    if (!compiled && kc_compile(model, KC_CATEGORICAL_CROSSENTROPY,
                                mnist_mlp_optimizer(), KC_METRIC_ACCURACY) != KC_OK) {
        fprintf(stderr, "mnist_mlp: %s\n", kc_last_error());
        kc_model_free(model);
        return 1;
    }
    /* x = x.reshape(n, <the model's input shape>).astype('float32') / 255 (784 values for the
     * tutorial's network; a loaded model may take (28, 28) or (28, 28, 1)); y as the model's
     * loss wants it: class indices for a sparse loss, else to_categorical(y, 10) */
    kc_shape in_shape = kc_input_shape(model);
    kc_loss loss = kc_model_loss_spec(model, 0).kind;
    int sparse = loss == KC_SPARSE_CATEGORICAL_CROSSENTROPY;
    kc_dataset *sets[] = {&train, &test};
    for (int s = 0; s < 2; s++) {
        if (kc_dataset_reshape(sets[s], in_shape) || kc_dataset_scale(sets[s], 1.0f / 255) ||
            (!sparse && kc_to_categorical(sets[s], 10))) {
            fprintf(stderr, "mnist_mlp: %s\n", kc_last_error());
            kc_model_free(model);
            return 1;
        }
    }
    if ((epochs > 0 && kc_fit(model, &train,
               &(kc_fit_opts){.batch_size = (int)batch_size,
                              .initial_epoch = first,
                              .epochs = first + (int)epochs,
                              .verbose = verbose ? (int)verbose : -1,
                              .validation = &test},
               NULL) != KC_OK) ||
        (save_path && kc_distributed_rank() == 0 && kc_save(model, save_path) != KC_OK) ||
        kc_evaluate(model, &test, &(kc_evaluate_opts){.batch_size = (int)batch_size}, &score) !=
            KC_OK) {
        fprintf(stderr, "mnist_mlp: %s\n", kc_last_error());
    } else {
        printf("Test loss: %.6f\nTest accuracy: %.6f\n", score.loss, score.accuracy);
        status = 0;
    }
    kc_model_free(model);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
    if (distributed && kc_distributed_finalize() != KC_OK && !status) {
        fprintf(stderr, "mnist_mlp: %s\n", kc_last_error());
        status = 1;
    }
    return status;
}
