/* mnist_lstm.c: an LSTM reads MNIST digits row by row: 28 steps of 28 pixels, LSTM(128), then
 * Dense(10, softmax); categorical crossentropy, Adam (learning rate 0.001), batch 128. About
 * 0.98-0.99 test accuracy after a few epochs.
 *     make build/mnist_lstm && KERAC_DATA=/path/to/datasets build/mnist_lstm --epochs 5 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kerac.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int epochs = 5, threads = 0, verbose = 2, units = 128;
    const char *data_dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            printf("usage: mnist_lstm [--epochs N (5)] [--units N (128)] [--threads N] "
                   "[--data DIR] [--verbose 0|1|2]\n");
            return 0;
        }
        if (!v) {
            fprintf(stderr, "mnist_lstm: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--epochs")) epochs = atoi(v);
        else if (!strcmp(a, "--units")) units = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--verbose")) verbose = atoi(v);
        else if (!strcmp(a, "--data")) data_dir = v;
        else {
            fprintf(stderr, "mnist_lstm: unknown option '%s'\n", a);
            return 2;
        }
        i++;
    }
    if (epochs < 0 || units <= 0 || threads < 0) {
        fprintf(stderr, "mnist_lstm: bad option value\n");
        return 2;
    }
    kc_set_random_seed(1337);
    kc_set_num_threads(threads);
    kc_dataset train, test;
    if (kc_mnist_load(data_dir, &train, &test) != KC_OK) {
        fprintf(stderr, "mnist_lstm: %s\n", kc_last_error());
        return 1;
    }
    /* x: (n, 28, 28) / 255, the rows as timesteps; y one-hot */
    kc_dataset *sets[] = {&train, &test};
    for (int s = 0; s < 2; s++)
        if (kc_dataset_reshape(sets[s], kc_shape2(28, 28)) ||
            kc_dataset_scale(sets[s], 1.0f / 255) || kc_to_categorical(sets[s], 10)) {
            fprintf(stderr, "mnist_lstm: %s\n", kc_last_error());
            return 1;
        }
    kc_model *model = kc_sequential(kc_shape2(28, 28));
    kc_status st = model ? KC_OK : KC_ENOMEM;
    if (!st) st = kc_add(model, kc_lstm(units, NULL));
    if (!st) st = kc_add(model, kc_dense(10, KC_SOFTMAX));
    if (!st)
        st = kc_compile(model, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY);
    if (st) {
        fprintf(stderr, "mnist_lstm: %s\n", kc_last_error());
        return 1;
    }
    kc_summary(model, stdout);
    double t0 = now();
    kc_metrics score;
    int status = 1;
    if (kc_fit(model, &train,
               &(kc_fit_opts){.batch_size = 128, .epochs = epochs, .verbose = verbose ? verbose : -1,
                              .validation = &test},
               NULL) != KC_OK ||
        kc_evaluate(model, &test, &(kc_evaluate_opts){.batch_size = 128}, &score) != KC_OK) {
        fprintf(stderr, "mnist_lstm: %s\n", kc_last_error());
    } else {
        printf("Training: %d epochs in %.1f s\nTest loss: %.6f\nTest accuracy: %.6f\n", epochs,
               now() - t0, score.loss, score.accuracy);
        status = 0;
    }
    kc_model_free(model);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
    return status;
}
