/* test_text_classifier.c: examples/text_classifier.c's pipeline (examples/text_pipeline.h) on
 * tiny folder corpora whose classes use disjoint words: folder -> split -> TextVectorization
 * -> fasttext / cnn model learns it (validation accuracy 1); the saved model (its vocabulary
 * inside) and an older file (ids model + F.vocab.txt beside it),
 * loaded again, vectorize and predict the same; bad folders give clear errors. */
#include <sys/stat.h>

#include "testutil.h"
#include "../examples/text_pipeline.h"

static const char *const WORDS[3][8] = {
    {"apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "plum"},
    {"hammer", "saw", "drill", "wrench", "pliers", "chisel", "clamp", "vise"},
    {"red", "green", "blue", "yellow", "purple", "orange", "black", "white"},
};
static const char *const CLASSES[3] = {"fruit", "tools", "colors"};

/* classes folders of per .txt files, each 10 words of its class (a fixed LCG), some with
 * punctuation and capitals for the standardization */
static char *make_corpus(int classes, int per) {
    char *dir = tu_tmpdir();
    uint32_t r = 12345;
    for (int c = 0; c < classes; c++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, CLASSES[c]);
        cr_assert_eq(mkdir(path, 0755), 0);
        for (int f = 0; f < per; f++) {
            char text[512] = "", file[300];
            for (int w = 0; w < 10; w++) {
                r = r * 1664525u + 1013904223u;
                const char *word = WORDS[c][(r >> 16) % 8];
                strcat(text, w == 0 ? "" : (w % 4 == 0 ? ". " : " "));
                if (w == 0) {
                    char cap[32];
                    snprintf(cap, sizeof cap, "%c%s", word[0] - 'a' + 'A', word + 1);
                    strcat(text, cap);
                } else {
                    strcat(text, word);
                }
            }
            strcat(text, "!\n");
            snprintf(file, sizeof file, "%s/%03d.txt", path, f);
            tu_write_file(file, text, strlen(text));
        }
    }
    return dir;
}

static void learns(int classes, const char *model) {
    char *dir = make_corpus(classes, 20);
    tp_config c = {.model = model, .max_tokens = 64, .output_sequence_length = 12,
                   .embedding_dim = 8};
    tp_defaults(&c);
    kc_set_random_seed(c.seed);
    kc_text_files train, val;
    KC_CHECK(tp_load(dir, &c, &train, &val));
    cr_assert_eq(train.num_classes, classes);
    cr_assert_eq(val.count, (int64_t)(0.2 * 20 * classes)); /* Keras's int(split * n) */
    cr_assert_eq(train.count + val.count, 20 * classes);
    kc_text_vectorization *tv;
    KC_CHECK(kc_text_vectorization_new(
        &(kc_text_vectorization_opts){.max_tokens = c.max_tokens,
                                      .output_sequence_length = c.output_sequence_length},
        &tv));
    KC_CHECK(kc_text_vectorization_adapt(tv, (const char *const *)train.texts, train.count));
    const char *const *vocab;
    int64_t nv = kc_text_vectorization_vocabulary(tv, &vocab);
    cr_assert_eq(nv, 2 + 8 * classes, "%lld tokens", (long long)nv);
    cr_assert_str_eq(vocab[0], "");
    cr_assert_str_eq(vocab[1], "[UNK]");
    kc_status st;
    kc_model *m = tp_build(&c, classes, tv, &st); /* the model owns tv */
    KC_CHECK(st);
    cr_assert_eq(kc_model_text_vectorization(m, 0), tv);
    float ytrain[64], yval[64];
    kc_dataset dt = tp_dataset(train.texts, train.count, train.labels, classes, ytrain);
    kc_dataset dv = tp_dataset(val.texts, val.count, val.labels, classes, yval);
    KC_CHECK(kc_fit(m, &dt, &(kc_fit_opts){.batch_size = 8, .epochs = 40, .verbose = -1}, NULL));
    kc_metrics score;
    KC_CHECK(kc_evaluate(m, &dv, NULL, &score));
    cr_assert_eq(score.accuracy, 1.0, "%s, %d classes: validation accuracy %g", model, classes,
                 score.accuracy);
    int32_t pred[64], pred2[64];
    float prob[64], prob2[64];
    KC_CHECK(tp_predict(m, val.texts, val.count, classes, pred, prob));
    for (int64_t i = 0; i < val.count; i++) cr_assert_eq(pred[i], val.labels[i]);

    /* save, load, predict the validation files again from their texts */
    char path[256];
    snprintf(path, sizeof path, "%s/model.keras", dir);
    KC_CHECK(tp_save(m, train.class_names, classes, path));
    kc_model *m2;
    char **names;
    int nc;
    KC_CHECK(tp_load_model(path, &m2, &names, &nc));
    kc_text_vectorization *tv2 = kc_model_text_vectorization(m2, 0);
    cr_assert_not_null(tv2);
    cr_assert_eq(nc, classes);
    for (int k = 0; k < classes; k++) cr_assert_str_eq(names[k], train.class_names[k]);
    const char *const *vocab2;
    cr_assert_eq(kc_text_vectorization_vocabulary(tv2, &vocab2), nv);
    for (int64_t i = 0; i < nv; i++) cr_assert_str_eq(vocab2[i], vocab[i]);
    KC_CHECK(tp_predict(m2, val.texts, val.count, nc, pred2, prob2));
    for (int64_t i = 0; i < val.count; i++) {
        cr_assert_eq(pred2[i], pred[i]);
        cr_assert_float_eq(prob2[i], prob[i], 1e-6);
    }
    tp_free_lines(names, nc);
    kc_model_free(m2);
    kc_model_free(m);
    kc_text_files_free(&train);
    kc_text_files_free(&val);
}

Test(text_classifier, fasttext_binary) { learns(2, "fasttext"); }
Test(text_classifier, cnn_binary) { learns(2, "cnn"); }
Test(text_classifier, fasttext_three_classes) { learns(3, "fasttext"); }
Test(text_classifier, cnn_three_classes) { learns(3, "cnn"); }

/* a file of the older layout: a model of int32 ids, the vocabulary in F.vocab.txt beside it;
 * tp_load_model wraps it behind a TextVectorization and predicts as the ids model did */
Test(text_classifier, older_file_with_vocab_beside) {
    char *dir = tu_tmpdir();
    static const char *const vocab[] = {"", "[UNK]", "good", "bad", "movie", "plot"};
    static const char *const texts[] = {"good movie", "bad plot!", "Good, GOOD", "unknown"};
    kc_text_vectorization *tv;
    KC_CHECK(kc_text_vectorization_new(&(kc_text_vectorization_opts){.output_sequence_length = 5},
                                       &tv));
    KC_CHECK(kc_text_vectorization_set_vocabulary(tv, vocab, 6, NULL));
    kc_model *old = kc_sequential_ex(kc_shape1(5), KC_INT32);
    KC_CHECK(kc_add(old, kc_embedding(6, 3, NULL)));
    KC_CHECK(kc_add(old, kc_global_average_pooling1d(0)));
    KC_CHECK(kc_add(old, kc_dense(1, KC_SIGMOID)));
    KC_CHECK(kc_compile(old, KC_BINARY_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY));
    void *ids;
    int64_t cols;
    KC_CHECK(kc_text_vectorization_call(tv, texts, 4, &ids, &cols));
    float want[4], got[4];
    kc_array x = {kc_shape1(5), KC_INT32, ids, 0, 0};
    KC_CHECK(kc_predict_ex(old, &x, 4, (float *[]){want}, NULL));
    char path[256], side[256];
    snprintf(path, sizeof path, "%s/old.keras", dir);
    KC_CHECK(kc_save(old, path));
    snprintf(side, sizeof side, "%s/old.vocab.txt", dir);
    tu_write_file(side, "\n[UNK]\ngood\nbad\nmovie\nplot\n", 27);
    snprintf(side, sizeof side, "%s/old.classes.txt", dir);
    tu_write_file(side, "neg\npos\n", 8);
    kc_model *m;
    char **names;
    int nc;
    KC_CHECK(tp_load_model(path, &m, &names, &nc));
    cr_assert_eq(nc, 2);
    cr_assert_eq(kc_model_input_dtype(m, 0), KC_STRING);
    KC_CHECK(kc_predict_texts(m, texts, 4, got));
    cr_assert_arr_eq(got, want, sizeof want);
    tp_free_lines(names, nc);
    kc_model_free(m);
    kc_model_free(old);
    kc_text_vectorization_free(tv);
    free(ids);
}

static char last_warning[512];
static void keep_warning(const char *msg, void *user) {
    snprintf(last_warning, sizeof last_warning, "%s", msg);
}

Test(text_classifier, bad_folders) {
    tp_config c = {0};
    tp_defaults(&c);
    kc_text_files train, val;
    char *empty = tu_tmpdir();
    KC_EXPECT_ERR(tp_load(empty, &c, &train, &val), KC_EINVAL, "no text files found");
    KC_EXPECT_ERR(tp_load("/nonexistent-kerac-dir", &c, &train, &val), KC_EIO,
                  "/nonexistent-kerac-dir");
    /* a class folder without .txt files: Keras's warning, the class stays */
    char *dir = make_corpus(2, 10), path[256];
    snprintf(path, sizeof path, "%s/zzz_empty", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    kc_set_warning_handler(keep_warning, NULL);
    last_warning[0] = 0;
    KC_CHECK(tp_load(dir, &c, &train, &val));
    kc_set_warning_handler(NULL, NULL);
    cr_assert(strstr(last_warning, "zzz_empty"), "%s", last_warning);
    cr_assert_eq(train.num_classes, 3);
    kc_text_files_free(&train);
    kc_text_files_free(&val);
    /* one class only */
    char *one = make_corpus(1, 10);
    cr_assert_eq(tp_load(one, &c, &train, &val), KC_EINVAL);
    cr_assert(strstr(tp_last_error(), "1 class folder"), "%s", tp_last_error());
    /* a missing vocabulary beside the model */
    kc_model *m;
    char **names;
    int nc;
    snprintf(path, sizeof path, "%s/none.keras", dir);
    cr_assert_neq(tp_load_model(path, &m, &names, &nc), KC_OK);
    cr_assert_null(m);
    cr_assert(strstr(tp_last_error(), "none.keras"), "%s", tp_last_error());
}
