/* text_pipeline.h: the core of examples/text_classifier.c, shared with
 * tests/test_text_classifier.c: a folder of labelled .txt files (one subfolder per class) read
 * with kc_text_dataset_from_directory (validation_split with a seed, Keras's split), a
 * TextVectorization adapted on the training texts, and one of Keras 2's IMDB examples as the
 * model:
 *   "fasttext" (examples/imdb_fasttext.py): Embedding(max_tokens, 50) ->
 *              GlobalAveragePooling1D -> Dense(1, sigmoid)
 *   "cnn"      (examples/imdb_cnn.py): Embedding(max_tokens, 50) -> Dropout(0.2) ->
 *              Conv1D(250, 3, relu) -> GlobalMaxPooling1D -> Dense(250) -> Dropout(0.2) ->
 *              relu -> Dense(1, sigmoid)
 * Two classes: Dense(1, sigmoid) and binary crossentropy on float 0/1 targets; more: Dense(k,
 * softmax) and sparse categorical crossentropy on the class indices. Adam, accuracy.
 * The model starts, as in Keras, with the TextVectorization layer on a string input
 * (Input(shape=(1,), dtype="string") -> TextVectorization -> Embedding ...), so the vocabulary
 * is saved inside the model (the .keras file's assets/, as Keras 3); the class names go beside
 * it (F.keras -> F.classes.txt). A model saved by older versions of this example (taking
 * int32 ids, its vocabulary beside it in F.vocab.txt) still loads: it is wrapped behind a
 * TextVectorization made from F.vocab.txt. */
#ifndef KERAC_EXAMPLE_TEXT_PIPELINE_H
#define KERAC_EXAMPLE_TEXT_PIPELINE_H
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kerac.h"

typedef struct {
    const char *model;              /* "fasttext" (NULL) or "cnn" */
    int64_t max_tokens;             /* 0 -> 20000 */
    int64_t output_sequence_length; /* 0 -> 400 */
    int embedding_dim;              /* 0 -> 50 */
    double validation_split;        /* 0 -> 0.2 */
    uint32_t seed;                  /* the split's and the model's (0 -> 1337) */
} tp_config;

/* the pipeline's own errors (a message here, not kerac's); tp_last_error() gives the last
 * failure's message, the pipeline's or kerac's */
static char tp_message[512];
static kc_status tp_fail(kc_status st, const char *fmt, ...) KC_PRINTF_LIKE(2, 3);
static kc_status tp_fail(kc_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tp_message, sizeof tp_message, fmt, ap);
    va_end(ap);
    return st;
}
static const char *tp_last_error(void) { return tp_message[0] ? tp_message : kc_last_error(); }

static void tp_defaults(tp_config *c) {
    if (!c->model) c->model = "fasttext";
    if (!c->max_tokens) c->max_tokens = 20000;
    if (!c->output_sequence_length) c->output_sequence_length = 400;
    if (!c->embedding_dim) c->embedding_dim = 50;
    if (c->validation_split == 0) c->validation_split = 0.2;
    if (!c->seed) c->seed = 1337;
}

/* the training and validation subsets of dir, as Keras's two calls with the same seed */
static kc_status tp_load(const char *dir, const tp_config *c, kc_text_files *train,
                         kc_text_files *val) {
    tp_message[0] = 0;
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    kc_text_dir_opts o = {.has_seed = 1, .seed = c->seed, .validation_split = c->validation_split,
                          .subset = "training"};
    kc_status st = kc_text_dataset_from_directory(dir, &o, train);
    if (st) return st;
    o.subset = "validation";
    st = kc_text_dataset_from_directory(dir, &o, val);
    if (st) {
        kc_text_files_free(train);
        return st;
    }
    if (train->num_classes < 2) {
        const int k = train->num_classes;
        kc_text_files_free(train);
        kc_text_files_free(val);
        return tp_fail(KC_EINVAL, "%s: %d class folder; a classifier needs at least 2", dir, k);
    }
    return KC_OK;
}

/* the model, string input first: tv (adapted, "int" mode with output_sequence_length) becomes
 * its TextVectorization layer and belongs to the model from here on, even on failure */
static kc_model *tp_build(const tp_config *c, int num_classes, kc_text_vectorization *tv,
                          kc_status *status) {
    const int cnn = !strcmp(c->model, "cnn");
    kc_model *m = kc_sequential_ex(kc_shape1(1), KC_STRING);
    kc_layer *tvl = kc_text_vectorization_layer(tv);
    kc_status st = m && tvl ? KC_OK : KC_ENOMEM;
    if (!tvl) kc_text_vectorization_free(tv);
    if (!st) st = kc_add(m, tvl);
    if (!st) st = kc_add(m, kc_embedding((int)c->max_tokens, c->embedding_dim, NULL));
    if (!st && cnn) {
        st = kc_add(m, kc_dropout(0.2f));
        if (!st) st = kc_add(m, kc_conv1d(250, 3, KC_RELU));
        if (!st) st = kc_add(m, kc_global_max_pooling1d(0));
        if (!st) st = kc_add(m, kc_dense(250, KC_LINEAR));
        if (!st) st = kc_add(m, kc_dropout(0.2f));
        if (!st) st = kc_add(m, kc_activation(KC_RELU));
    } else if (!st) {
        st = kc_add(m, kc_global_average_pooling1d(0));
    }
    if (!st) st = kc_add(m, num_classes == 2 ? kc_dense(1, KC_SIGMOID)
                                             : kc_dense(num_classes, KC_SOFTMAX));
    if (!st)
        st = kc_compile(m, num_classes == 2 ? KC_BINARY_CROSSENTROPY
                                            : KC_SPARSE_CATEGORICAL_CROSSENTROPY,
                        kc_adam(NULL), KC_METRIC_ACCURACY);
    if (st) {
        kc_model_free(m);
        m = NULL;
    }
    *status = st;
    return m;
}

/* a dataset borrowing the n texts (its x: KC_STRING, vectorized by the model's first layer as
 * batches load) and the labels: float 0/1 targets in y01 (n floats, the caller's) for two
 * classes, the int32 class indices otherwise */
static kc_dataset tp_dataset(char *const *texts, int64_t n, int32_t *labels, int num_classes,
                             float *y01) {
    kc_dataset d = {.count = n, .n_inputs = 1, .n_targets = 1};
    d.inputs[0] = (kc_array){kc_shape1(1), KC_STRING, (void *)texts, 0, 0};
    if (num_classes == 2) {
        for (int64_t i = 0; i < n; i++) y01[i] = (float)labels[i];
        d.targets[0] = (kc_array){kc_shape1(1), KC_FLOAT32, y01, 0, 0};
    } else {
        d.targets[0] = (kc_array){{0}, KC_INT32, labels, 0, num_classes};
    }
    return d;
}

/* the predicted classes (and the predicted class's probability, optional) of n texts */
static kc_status tp_predict(kc_model *m, char *const *texts, int64_t n, int num_classes,
                            int32_t *classes, float *prob) {
    const int k = num_classes == 2 ? 1 : num_classes;
    float *out = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1) * (size_t)k);
    if (!out) return KC_ENOMEM;
    kc_status st = n > 0 ? kc_predict_texts(m, (const char *const *)texts, n, out) : KC_OK;
    for (int64_t i = 0; !st && i < n; i++) {
        const float *r = out + i * k;
        int best = 0;
        float p;
        if (k == 1) {
            best = r[0] > 0.5f;
            p = best ? r[0] : 1 - r[0];
        } else {
            for (int j = 1; j < k; j++)
                if (r[j] > r[best]) best = j;
            p = r[best];
        }
        classes[i] = best;
        if (prob) prob[i] = p;
    }
    free(out);
    return st;
}

/* "F.keras" -> "F.<suffix>" (malloc'd) */
static char *tp_beside(const char *model_path, const char *suffix) {
    size_t n = strlen(model_path);
    const char *dot = strrchr(model_path, '.'), *slash = strrchr(model_path, '/');
    if (dot && (!slash || dot > slash)) n = (size_t)(dot - model_path);
    char *p = malloc(n + strlen(suffix) + 2);
    if (p) sprintf(p, "%.*s.%s", (int)n, model_path, suffix);
    return p;
}

static kc_status tp_write_lines(const char *path, const char *const *lines, int64_t n) {
    FILE *f = fopen(path, "w");
    if (!f) return tp_fail(KC_EIO, "cannot write %s", path);
    for (int64_t i = 0; i < n; i++) fprintf(f, "%s\n", lines[i]);
    if (fclose(f)) return tp_fail(KC_EIO, "cannot write %s", path);
    return KC_OK;
}

/* the lines of a file (without their '\n'), malloc'd; free with tp_free_lines */
static kc_status tp_read_lines(const char *path, char ***lines, int64_t *n) {
    *lines = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return tp_fail(KC_EIO, "cannot read %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t size = 0;
    kc_status st = KC_OK;
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
        if (*n == size) {
            size = size ? 2 * size : 1024;
            char **l = realloc(*lines, sizeof(char *) * (size_t)size);
            if (!l) {
                st = KC_ENOMEM;
                break;
            }
            *lines = l;
        }
        if (!((*lines)[*n] = strdup(line))) {
            st = KC_ENOMEM;
            break;
        }
        (*n)++;
    }
    free(line);
    fclose(f);
    return st;
}

static void tp_free_lines(char **lines, int64_t n) {
    for (int64_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
}

/* kc_save(model_path) (the vocabulary inside it) and the class names beside it */
static kc_status tp_save(kc_model *m, char *const *class_names, int num_classes,
                         const char *model_path) {
    tp_message[0] = 0;
    kc_status st = kc_save(m, model_path);
    if (st) return st;
    char *cp = tp_beside(model_path, "classes.txt");
    st = cp ? tp_write_lines(cp, (const char *const *)class_names, num_classes) : KC_ENOMEM;
    free(cp);
    return st;
}

/* an older file: a model of int32 ids (input (length,)) and F.vocab.txt beside it -> a model of
 * texts: string input -> TextVectorization(vocabulary) -> the old model */
static kc_status tp_wrap_old(const char *model_path, kc_model **m) {
    char *vp = tp_beside(model_path, "vocab.txt");
    char **vocab = NULL;
    int64_t nv = 0;
    kc_text_vectorization *tv = NULL;
    kc_status st = vp ? KC_OK : KC_ENOMEM;
    if (!st && (kc_model_input_shape_at(*m, 0).rank != 1 ||
                kc_model_input_shape_at(*m, 0).dims[0] <= 0))
        st = tp_fail(KC_EINVAL, "%s: the model's input is neither a string nor (length,)",
                     model_path);
    if (!st) st = tp_read_lines(vp, &vocab, &nv);
    if (!st)
        st = kc_text_vectorization_new(
            &(kc_text_vectorization_opts){
                .output_sequence_length = kc_model_input_shape_at(*m, 0).dims[0]},
            &tv);
    if (!st) st = kc_text_vectorization_set_vocabulary(tv, (const char *const *)vocab, nv, NULL);
    kc_model *w = st ? NULL : kc_sequential_ex(kc_shape1(1), KC_STRING);
    if (!st && !w) st = KC_ENOMEM;
    if (!st) {
        st = kc_add(w, kc_text_vectorization_layer(tv));
        tv = NULL;
    }
    if (!st) st = kc_add(w, kc_model_as_layer(*m)); /* the wrapper holds the old model */
    if (!st) {
        kc_model_free(*m);
        *m = w;
    } else {
        kc_model_free(w);
    }
    kc_text_vectorization_free(tv);
    tp_free_lines(vocab, nv);
    free(vp);
    return st;
}

/* kc_load(model_path) (its TextVectorization inside; an older file's beside it) and the class
 * names. *class_names: tp_free_lines(*class_names, *num_classes). */
static kc_status tp_load_model(const char *model_path, kc_model **m, char ***class_names,
                               int *num_classes) {
    *m = NULL;
    *class_names = NULL;
    *num_classes = 0;
    char *cp = tp_beside(model_path, "classes.txt");
    int64_t nc = 0;
    tp_message[0] = 0;
    kc_status st = cp ? KC_OK : KC_ENOMEM;
    if (!st) st = kc_load(model_path, m);
    if (!st && kc_model_input_dtype(*m, 0) != KC_STRING) st = tp_wrap_old(model_path, m);
    if (!st) st = tp_read_lines(cp, class_names, &nc);
    if (!st && nc < 2)
        st = tp_fail(KC_EINVAL, "%s: %lld class names; a classifier has at least 2", cp,
                     (long long)nc);
    free(cp);
    *num_classes = (int)nc;
    if (st) {
        kc_model_free(*m);
        tp_free_lines(*class_names, nc);
        *m = NULL;
        *class_names = NULL;
    }
    return st;
}
#endif
