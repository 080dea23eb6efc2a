/* write_custom_models.c: for tests/gen_keras_custom_files.py check: trains Input(5) ->
 * Dense(6) -> Antirectifier -> Dense(3, softmax) with RMSprop on the generator's data, saves
 * it into DIR as kerac_antirectifier.keras and .h5, and writes kerac_antirectifier.json: x, y,
 * the predictions, and the weights after one more train_on_batch(x, y) (after saving). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../examples/antirectifier.h"

#define N 16

static void fail(const char *what) {
    fprintf(stderr, "write_custom_models: %s: %s\n", what, kc_last_error());
    exit(1);
}

static cJSON *floats(const float *v, int64_t n) {
    cJSON *a = cJSON_CreateArray();
    for (int64_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: write_custom_models DIR\n");
        return 2;
    }
    float x[N * 5], y[N * 3];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 5; j++) x[i * 5 + j] = (float)(((i * 7 + j * 5) % 13) / 13.0 - 0.4);
        for (int j = 0; j < 3; j++) y[i * 3 + j] = (float)((i + i / 3) % 3 == j);
    }
    if (kc_register_layer_type(&antirectifier_type)) fail("register");
    kc_set_random_seed(11);
    kc_model *m = kc_sequential(kc_shape1(5));
    kc_add(m, kc_dense(6, KC_LINEAR));
    kc_add(m, antirectifier());
    kc_add(m, kc_dense(3, KC_SOFTMAX));
    if (kc_compile(m, KC_CATEGORICAL_CROSSENTROPY,
                   kc_rmsprop(&(kc_rmsprop_opts){.learning_rate = 0.01f}), KC_METRIC_ACCURACY))
        fail("compile");
    kc_dataset ds = {.count = N, .x_shape = kc_shape1(5), .x_dtype = KC_FLOAT32, .x = x,
                     .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = y};
    if (kc_fit(m, &ds, &(kc_fit_opts){.epochs = 3, .batch_size = 8, .verbose = -1}, NULL))
        fail("fit");
    char path[4096];
    const char *ext[] = {".keras", ".h5"};
    for (int e = 0; e < 2; e++) {
        snprintf(path, sizeof path, "%s/kerac_antirectifier%s", argv[1], ext[e]);
        if (kc_save(m, path)) fail(path);
    }
    float pred[N * 3];
    if (kc_predict(m, x, N, pred)) fail("predict");
    if (kc_train_on_batch(m, x, y, N, NULL)) fail("train_on_batch");
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n);
    if (!w || kc_get_weights(m, w, n)) fail("get_weights");
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "x", floats(x, N * 5));
    cJSON_AddItemToObject(j, "y", floats(y, N * 3));
    cJSON_AddItemToObject(j, "pred", floats(pred, N * 3));
    cJSON_AddItemToObject(j, "after_step", floats(w, n));
    char *text = cJSON_Print(j);
    snprintf(path, sizeof path, "%s/kerac_antirectifier.json", argv[1]);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "write_custom_models: cannot write %s\n", path);
        return 1;
    }
    cJSON_free(text);
    cJSON_Delete(j);
    free(w);
    kc_model_free(m);
    return 0;
}
