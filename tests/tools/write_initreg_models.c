/* write_initreg_models.c: the kerac side of tests/gen_keras_initreg_files.py's check that real
 * Keras loads kerac's initializers, regularizers and use_bias=False. Writes to DIR:
 *   kerac_initreg.keras, .h5: Conv2D(3, 3, relu, use_bias=False, orthogonal, L2(0.001)) ->
 *     Flatten -> Dense(4, tanh, use_bias=False, HeNormal(seed=11), L1L2(0.01, 0.02)) ->
 *     Dense(3, softmax, VarianceScaling(2, fan_avg, untruncated_normal), RandomNormal(0.1, 0.2)
 *     bias, bias L2(0.1)), SGD(0.1), after one training step;
 *   kerac_initreg_act.keras, .h5: the same layers with activity regularizers (L1(0.01) on the
 *     conv, L2(0.02) on the hidden Dense), not trained;
 *   kerac_initreg.json: the inputs, the targets, both models' predictions, and the first
 *     model's weights after one more kerac step (Keras, from the loaded file, must agree:
 *     the weight regularizers' gradients included). */
#include <kerac.h>
#include <stdio.h>
#include <stdlib.h>

#define N 6
static void die(const char *what) {
    fprintf(stderr, "write_initreg_models: %s: %s\n", what, kc_last_error());
    exit(1);
}

static void put(FILE *f, const char *name, const float *v, int64_t n, int last) {
    fprintf(f, "\"%s\": [", name);
    for (int64_t i = 0; i < n; i++) fprintf(f, "%s%.9g", i ? ", " : "", (double)v[i]);
    fprintf(f, "]%s\n", last ? "" : ",");
}

static kc_model *build(int activity) {
    kc_regularizer none = {0};
    kc_model *m = kc_sequential(kc_shape3(5, 5, 2));
    kc_add(m, kc_conv2d_ex(3, &(kc_conv2d_opts){.kernel_size = {3}, .activation = KC_RELU,
                                                .use_bias = KC_ZERO,
                                                .kernel_initializer = kc_orthogonal(1),
                                                .kernel_regularizer = kc_l2(0.001f),
                                                .activity_regularizer =
                                                    activity ? kc_l1(0.01f) : none}));
    kc_add(m, kc_flatten());
    kc_add(m, kc_dense_ex(4, &(kc_dense_opts){
                              .activation = KC_TANH, .use_bias = KC_ZERO,
                              .kernel_initializer = kc_init_seed(kc_he_normal(), 11),
                              .kernel_regularizer = kc_l1_l2(0.01f, 0.02f),
                              .activity_regularizer = activity ? kc_l2(0.02f) : none}));
    kc_add(m, kc_dense_ex(3, &(kc_dense_opts){
                              .activation = KC_SOFTMAX,
                              .kernel_initializer =
                                  kc_variance_scaling(2, KC_FAN_AVG, KC_UNTRUNCATED_NORMAL),
                              .bias_initializer = kc_random_normal(0.1, 0.2),
                              .bias_regularizer = kc_l2(0.1f)}));
    if (kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}),
                   0))
        die("compile");
    return m;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: write_initreg_models DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    static float x[N * 50], y[N * 3];
    for (int i = 0; i < N * 50; i++) x[i] = (float)((i * 7) % 17) / 17.0f - 0.4f;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 3; j++) y[i * 3 + j] = (float)((i + i / 2) % 3 == j);
    kc_set_random_seed(21);
    kc_model *m = build(0), *a = build(1);
    if (kc_train_on_batch(m, x, y, N, NULL)) die("train_on_batch");
    char path[512];
    const char *ext[] = {".keras", ".h5"};
    for (int e = 0; e < 2; e++) {
        snprintf(path, sizeof path, "%s/kerac_initreg%s", dir, ext[e]);
        if (kc_save(m, path)) die(path);
        snprintf(path, sizeof path, "%s/kerac_initreg_act%s", dir, ext[e]);
        if (kc_save(a, path)) die(path);
    }
    float pred[N * 3], pred_act[N * 3];
    if (kc_predict(m, x, N, pred) || kc_predict(a, x, N, pred_act)) die("predict");
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n);
    if (kc_train_on_batch(m, x, y, N, NULL)) die("train_on_batch");
    if (kc_get_weights(m, w, n)) die("get_weights");
    snprintf(path, sizeof path, "%s/kerac_initreg.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) die(path);
    fprintf(f, "{\n");
    put(f, "x", x, N * 50, 0);
    put(f, "y", y, N * 3, 0);
    put(f, "pred", pred, N * 3, 0);
    put(f, "pred_act", pred_act, N * 3, 0);
    put(f, "after_step", w, n, 1);
    fprintf(f, "}\n");
    fclose(f);
    free(w);
    kc_model_free(m);
    kc_model_free(a);
    return 0;
}
