/* write_conv_models.c: the kerac side of tests/gen_keras_files.py check-conv. Trains the
 * convnet of tests/conv_models.h with Nadam, AdamW, Adadelta and Adagrad, saves each as
 * .keras, .h5 and .weights.h5 in DIR, and writes DIR/kerac_conv_<opt>.json: the inputs,
 * kerac's predictions, and the weights after one more kerac training step on the first 8
 * samples (Keras, continuing from the saved optimizer state, must reach the same weights). */
#include "../conv_models.h"
#include <stdio.h>
#include <stdlib.h>

static void die(const char *what) {
    fprintf(stderr, "write_conv_models: %s: %s\n", what, kc_last_error());
    exit(1);
}

static void put(FILE *f, const char *name, const float *v, int64_t n, int last) {
    fprintf(f, "\"%s\": [", name);
    for (int64_t i = 0; i < n; i++) fprintf(f, "%s%.9g", i ? ", " : "", (double)v[i]);
    fprintf(f, "]%s\n", last ? "" : ",");
}

static void one(const char *dir, const char *opt) {
    static float x[CN * CPIX], y[CN * 3];
    conv_data(x, y);
    kc_set_random_seed(17);
    kc_model *m = conv_model(opt, 3);
    if (!m) die(opt);
    kc_dataset d = {.count = CN, .x_shape = kc_shape3(12, 12, 1), .x_dtype = KC_FLOAT32, .x = x,
                    .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = y};
    if (kc_fit(m, &d, &(kc_fit_opts){.epochs = 2, .batch_size = 8, .verbose = -1}, NULL))
        die("fit");
    char path[512];
    const char *ext[] = {".keras", ".h5", ".weights.h5"};
    for (int e = 0; e < 3; e++) {
        snprintf(path, sizeof path, "%s/kerac_conv_%s%s", dir, opt, ext[e]);
        if (kc_save(m, path)) die(path);
    }
    float pred[CN * 3];
    if (kc_predict(m, x, CN, pred)) die("predict");
    if (kc_train_on_batch(m, x, y, 8, NULL)) die("train_on_batch");
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n);
    kc_get_weights(m, w, n);
    snprintf(path, sizeof path, "%s/kerac_conv_%s.json", dir, opt);
    FILE *f = fopen(path, "w");
    if (!f) die(path);
    fprintf(f, "{\"x_shape\": [%d, 12, 12, 1],\n", CN);
    put(f, "x", x, CN * CPIX, 0);
    put(f, "y", y, CN * 3, 0);
    put(f, "pred", pred, CN * 3, 0);
    put(f, "after_step", w, n, 1);
    fprintf(f, "}\n");
    fclose(f);
    free(w);
    kc_model_free(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: write_conv_models DIR\n");
        return 2;
    }
    const char *opts[] = {"nadam", "adamw", "adadelta", "adagrad"};
    for (int i = 0; i < 4; i++) one(argv[1], opts[i]);
    return 0;
}
