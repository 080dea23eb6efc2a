/* tf_quickstart.c: the TensorFlow 2 quickstart for beginners, in C. The Python it mirrors:
 *
 *   mnist = tf.keras.datasets.mnist
 *   (x_train, y_train), (x_test, y_test) = mnist.load_data()
 *   x_train, x_test = x_train / 255.0, x_test / 255.0
 *   model = tf.keras.models.Sequential([
 *       tf.keras.layers.Flatten(input_shape=(28, 28)),
 *       tf.keras.layers.Dense(128, activation='relu'),
 *       tf.keras.layers.Dropout(0.2),
 *       tf.keras.layers.Dense(10)
 *   ])
 *   loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
 *   model.compile(optimizer='adam', loss=loss_fn, metrics=['accuracy'])
 *   model.fit(x_train, y_train, epochs=5)
 *   model.evaluate(x_test, y_test, verbose=2)
 *
 * The model ends in logits (Dense(10) without softmax) and the loss takes them
 * (from_logits=True); the labels stay class indices. Options: --epochs N (5), --batch-size N
 * (32, fit's default), --seed N, --data DIR, --threads N, --save PATH. */
#include <kerac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_warning(const char *message, void *user) {
    fprintf(stderr, "tf_quickstart: warning: %s\n", message);
}

static int parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > hi) {
        fprintf(stderr, "tf_quickstart: %s needs a whole number in [%ld, %ld]\n", opt, lo, hi);
        return 0;
    }
    *out = x;
    return 1;
}

int main(int argc, char **argv) {
    kc_set_warning_handler(print_warning, NULL);
    long epochs = 5, batch_size = 32, seed = 1337, threads = 0;
    const char *data_dir = NULL, *save_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help")) {
            printf("usage: tf_quickstart [--epochs N] [--batch-size N] [--seed N] [--data DIR] "
                   "[--threads N] [--save PATH]\n");
            return 0;
        } else if (!strcmp(a, "--epochs")) ok = parse_int(a, v, 0, 100000, &epochs), i++;
        else if (!strcmp(a, "--batch-size")) ok = parse_int(a, v, 1, 1 << 20, &batch_size), i++;
        else if (!strcmp(a, "--seed")) ok = parse_int(a, v, 0, 1L << 40, &seed), i++;
        else if (!strcmp(a, "--threads")) ok = parse_int(a, v, 0, 1024, &threads), i++;
        else if (!strcmp(a, "--data") && v) data_dir = v, i++;
        else if (!strcmp(a, "--save") && v) save_path = v, i++;
        else {
            fprintf(stderr, "tf_quickstart: unknown option '%s' (--help lists them)\n", a);
            return 2;
        }
        if (!ok) return 2;
    }
    kc_set_random_seed((uint64_t)seed);
    kc_set_num_threads((int)threads);

    kc_dataset train, test;
    if (kc_mnist_load(data_dir, &train, &test) || kc_dataset_scale(&train, 1.0f / 255) ||
        kc_dataset_scale(&test, 1.0f / 255)) {
        fprintf(stderr, "tf_quickstart: %s\n", kc_last_error());
        return 1;
    }
    kc_model *model = kc_sequential(kc_shape2(28, 28));
    kc_add(model, kc_flatten());
    kc_add(model, kc_dense(128, KC_RELU));
    kc_add(model, kc_dropout(0.2f));
    kc_add(model, kc_dense(10, KC_LINEAR));
    kc_metrics score;
    int status = 1;
    if (kc_compile_ex(model, &(kc_compile_opts){
                                 .optimizer = kc_adam(NULL),
                                 .loss_specs = {{.kind = KC_SPARSE_CATEGORICAL_CROSSENTROPY,
                                                 .from_logits = 1}},
                                 .metrics = {KC_METRIC_ACCURACY}}) ||
        kc_summary(model, stdout) ||
        (epochs > 0 && kc_fit(model, &train,
                              &(kc_fit_opts){.epochs = (int)epochs, .batch_size = (int)batch_size},
                              NULL)) ||
        (save_path && kc_save(model, save_path)) ||
        kc_evaluate(model, &test, &(kc_evaluate_opts){.verbose = 1}, &score)) {
        fprintf(stderr, "tf_quickstart: %s\n", kc_last_error());
    } else {
        printf("Test loss: %.6f\nTest accuracy: %.6f\n", score.loss, score.accuracy);
        status = 0;
    }
    kc_model_free(model);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
    return status;
}
