/* write_models.c: the kerac side of tests/gen_keras_files.py's check that real Keras loads
 * what kerac writes. Trains two small models (RMSprop with Dropout; Adam), saves each as
 * .keras, .h5 and .weights.h5 in DIR, and writes DIR/<name>.json: the inputs, kerac's
 * predictions, a batch, and the weights after one more kerac training step on it (Keras,
 * continuing from the saved optimizer state, must reach the same weights). */
#include <kerac.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define N 48
static void die(const char *what) {
    fprintf(stderr, "write_models: %s: %s\n", what, kc_last_error());
    exit(1);
}

static void put(FILE *f, const char *name, const float *v, int64_t n, int last) {
    fprintf(f, "\"%s\": [", name);
    for (int64_t i = 0; i < n; i++) fprintf(f, "%s%.9g", i ? ", " : "", (double)v[i]);
    fprintf(f, "]%s\n", last ? "" : ",");
}

static void one(const char *dir, const char *name, int adam) {
    kc_set_random_seed(adam ? 11 : 7);
    kc_model *m = kc_sequential(kc_shape2(2, 2));
    kc_add(m, kc_flatten());
    kc_add(m, kc_dense(8, KC_RELU));
    if (!adam) kc_add(m, kc_dropout(0.25f));
    kc_add(m, kc_dense(3, adam ? KC_LINEAR : KC_SOFTMAX));
    if (adam) kc_add(m, kc_activation(KC_SOFTMAX));
    kc_optimizer *opt = adam ? kc_adam(&(kc_adam_opts){.learning_rate = 0.01f})
                             : kc_rmsprop(&(kc_rmsprop_opts){.learning_rate = 0.005f});
    if (kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, opt, KC_METRIC_ACCURACY)) die("compile");
    static float x[N * 4], y[N * 3];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 4; j++) x[i * 4 + j] = (float)((i * 7 + j * 5) % 13) / 13.0f - 0.3f;
        for (int j = 0; j < 3; j++) y[i * 3 + j] = (float)((i + (i / 5)) % 3 == j);
    }
    kc_dataset d = {.count = N, .x_shape = kc_shape2(2, 2), .x_dtype = KC_FLOAT32, .x = x,
                    .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = y};
    if (kc_fit(m, &d, &(kc_fit_opts){.epochs = 3, .batch_size = 16, .verbose = -1}, NULL))
        die("fit");
    char path[512];
    const char *ext[] = {".keras", ".h5", ".weights.h5"};
    for (int e = 0; e < 3; e++) {
        snprintf(path, sizeof path, "%s/%s%s", dir, name, ext[e]);
        if (kc_save(m, path)) die(path);
    }
    float pred[N * 3];
    if (kc_predict(m, x, N, pred)) die("predict");
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n);
    /* one more step on the first 16 samples: dropout differs between kerac and Keras, so the
     * step is only compared for the model without it */
    if (kc_train_on_batch(m, x, y, 16, NULL)) die("train_on_batch");
    kc_get_weights(m, w, n);
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) die(path);
    fprintf(f, "{\"x_shape\": [%d, 2, 2], \"has_dropout\": %s,\n", N, adam ? "false" : "true");
    put(f, "x", x, N * 4, 0);
    put(f, "y", y, N * 3, 0);
    put(f, "pred", pred, N * 3, 0);
    put(f, "after_step", w, n, 1);
    fprintf(f, "}\n");
    fclose(f);
    free(w);
    kc_model_free(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: write_models DIR\n");
        return 2;
    }
    one(argv[1], "kerac_rmsprop", 0);
    one(argv[1], "kerac_adam", 1);
    return 0;
}
