/* test_tv_layer.c: TextVectorization inside a model (a string input): tf.keras 2.15's .keras
 * reference files (tests/gen_keras_tv_files.py) load and predict as tf.keras; kerac's own save
 * round-trips; the errors. */
#include <math.h>

#include "testutil.h"

#define CHECK(c) cr_expect(c, "%s (%s)", #c, kc_last_error())

static const char *TEXTS[] = {"the cat", "A DOG, a cat, a bird", "unknown words here", "",
                              "fish fish fish dog"};
#define NT 5

static void reference(const char *name, int k) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/tv/%s.keras", name);
    kc_model *m = NULL;
    CHECK(kc_load(path, &m) == KC_OK);
    if (!m) return;
    float out[NT * 3], want[NT * 3];
    CHECK(kc_predict_texts(m, TEXTS, NT, out) == KC_OK);
    snprintf(path, sizeof path, "tests/fixtures/tv/%s_pred.txt", name);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    for (int i = 0; f && i < NT * k; i++) CHECK(fscanf(f, "%f", &want[i]) == 1);
    if (f) fclose(f);
    for (int i = 0; i < NT * k; i++) CHECK(fabsf(out[i] - want[i]) < 1e-5f);
    /* kerac -> kerac */
    snprintf(path, sizeof path, "%s/round.keras", tu_tmpdir());
    CHECK(kc_save(m, path) == KC_OK);
    kc_model *m2 = NULL;
    CHECK(kc_load(path, &m2) == KC_OK);
    float out2[NT * 3];
    if (m2) CHECK(kc_predict_texts(m2, TEXTS, NT, out2) == KC_OK);
    if (m2) CHECK(!memcmp(out, out2, sizeof(float) * NT * (size_t)k));
    kc_model_free(m);
    kc_model_free(m2);
}

static kc_text_vectorization *adapted(const char *mode, int64_t len) {
    static const char *train[] = {"good movie", "bad movie", "good good fun", "bad plot"};
    kc_text_vectorization *tv = NULL;
    kc_text_vectorization_opts o = {.output_mode = mode, .output_sequence_length = len};
    CHECK(kc_text_vectorization_new(&o, &tv) == KC_OK);
    CHECK(kc_text_vectorization_adapt(tv, train, 4) == KC_OK);
    return tv;
}

static void train_and_round_trip(void) {
    static const char *x[] = {"good movie", "bad movie", "good good fun", "bad plot"};
    float y[] = {1, 0, 1, 0};
    kc_model *m = kc_sequential_ex(kc_shape1(1), KC_STRING);
    CHECK(kc_add(m, kc_text_vectorization_layer(adapted("int", 4))) == KC_OK);
    CHECK(kc_add(m, kc_embedding(10, 4, NULL)) == KC_OK);
    CHECK(kc_add(m, kc_global_average_pooling1d(0)) == KC_OK);
    CHECK(kc_add(m, kc_dense(1, KC_SIGMOID)) == KC_OK);
    CHECK(kc_compile(m, KC_BINARY_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY) == KC_OK);
    kc_dataset d = {.count = 4, .n_inputs = 1, .n_targets = 1};
    d.inputs[0] = (kc_array){kc_shape1(1), KC_STRING, (void *)x, 0, 0};
    d.targets[0] = (kc_array){kc_shape1(1), KC_FLOAT32, y, 0, 0};
    kc_fit_opts fo = {.epochs = 3, .batch_size = 2, .verbose = -1};
    CHECK(kc_fit(m, &d, &fo, NULL) == KC_OK);
    kc_metrics r;
    CHECK(kc_evaluate(m, &d, NULL, &r) == KC_OK);
    float p1[4], p2[4];
    CHECK(kc_predict_texts(m, x, 4, p1) == KC_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/trained.keras", tu_tmpdir());
    CHECK(kc_save(m, path) == KC_OK);
    kc_model *m2 = NULL;
    CHECK(kc_load(path, &m2) == KC_OK);
    if (m2) CHECK(kc_predict_texts(m2, x, 4, p2) == KC_OK);
    if (m2) CHECK(!memcmp(p1, p2, sizeof p1));
    /* the legacy .h5: the vocabulary in the config */
    snprintf(path, sizeof path, "%s/trained.h5", tu_tmpdir());
    CHECK(kc_save(m, path) == KC_OK);
    kc_model *m3 = NULL;
    CHECK(kc_load(path, &m3) == KC_OK);
    if (m3) CHECK(kc_predict_texts(m3, x, 4, p2) == KC_OK);
    if (m3) CHECK(!memcmp(p1, p2, sizeof p1));
    kc_model_free(m3);
    /* float data for a string input is refused */
    float fx[4] = {0};
    CHECK(kc_predict(m, fx, 4, p1) != KC_OK);
    kc_model_free(m);
    kc_model_free(m2);

    /* an id beyond the Embedding's input_dim: refused, naming the layer (as a model input's) */
    m = kc_sequential_ex(kc_shape1(1), KC_STRING);
    CHECK(kc_add(m, kc_text_vectorization_layer(adapted("int", 3))) == KC_OK);
    CHECK(kc_add(m, kc_embedding(4, 2, NULL)) == KC_OK);
    CHECK(kc_add(m, kc_flatten()) == KC_OK);
    CHECK(kc_add(m, kc_dense(1, KC_LINEAR)) == KC_OK);
    CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_adam(NULL), 0) == KC_OK);
    CHECK(kc_predict_texts(m, (const char *[]){"fun plot"}, 1, p1) != KC_OK);
    CHECK(strstr(kc_last_error(), "embedding") != NULL);
    cr_log_info("expected: %s", kc_last_error());
    /* None output_sequence_length in int mode: refused at build */
    kc_model_free(m);
    m = kc_sequential_ex(kc_shape1(1), KC_STRING);
    CHECK(kc_add(m, kc_text_vectorization_layer(adapted("int", 0))) != KC_OK ||
          kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_adam(NULL), 0) != KC_OK);
    cr_log_info("expected: %s", kc_last_error());
    kc_model_free(m);

    /* multi_hot -> Dense */
    m = kc_sequential_ex(kc_shape1(1), KC_STRING);
    CHECK(kc_add(m, kc_text_vectorization_layer(adapted("multi_hot", 0))) == KC_OK);
    CHECK(kc_add(m, kc_dense(2, KC_SOFTMAX)) == KC_OK);
    CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), 0) == KC_OK);
    float q1[8], q2[8];
    CHECK(kc_predict_texts(m, x, 4, q1) == KC_OK);
    snprintf(path, sizeof path, "%s/multi_hot.h5", tu_tmpdir());
    CHECK(kc_save(m, path) == KC_OK);
    m3 = NULL;
    CHECK(kc_load(path, &m3) == KC_OK);
    if (m3) CHECK(kc_predict_texts(m3, x, 4, q2) == KC_OK);
    if (m3) CHECK(!memcmp(q1, q2, sizeof q1));
    kc_model_free(m3);
    kc_model_free(m);

    /* a string input read by a Dense; a TextVectorization not first */
    m = kc_sequential_ex(kc_shape1(1), KC_STRING);
    kc_add(m, kc_dense(2, KC_SOFTMAX));
    CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), 0) != KC_OK ||
          kc_predict_texts(m, x, 4, (float[8]){0}) != KC_OK);
    cr_log_info("expected: %s", kc_last_error());
    kc_model_free(m);
    m = kc_sequential(kc_shape1(1));
    kc_add(m, kc_dense(1, KC_LINEAR));
    kc_add(m, kc_text_vectorization_layer(adapted("multi_hot", 0)));
    CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_adam(NULL), 0) != KC_OK ||
          kc_predict(m, (float[1]){0}, 1, (float[16]){0}) != KC_OK);
    cr_log_info("expected: %s", kc_last_error());
    kc_model_free(m);
}

Test(tv_layer, keras_reference_int) { reference("int", 1); }
Test(tv_layer, keras_reference_tf_idf) { reference("tfidf", 3); }
Test(tv_layer, train_round_trip_errors) { train_and_round_trip(); }
