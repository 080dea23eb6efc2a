/* text_classifier.c: trains a text classifier on any folder of labelled text files, DIR/<class>/
 * *.txt (keras.utils.text_dataset_from_directory, validation_split 0.2 with a seed), the words
 * numbered by a TextVectorization adapted on the training texts, and one of Keras 2's IMDB
 * examples as the model (--model fasttext: Embedding -> GlobalAveragePooling1D -> Dense;
 * --model cnn: Embedding -> Dropout -> Conv1D(250, 3) -> GlobalMaxPooling1D -> Dense(250) ->
 * Dense; see text_pipeline.h). Two classes: a sigmoid output and binary crossentropy; more:
 * softmax and sparse categorical crossentropy. Adam.
 *     scripts/make_text_corpus.sh /tmp/man && build/text_classifier /tmp/man --epochs 10
 *     build/text_classifier /tmp/man --save /tmp/man.keras     (also /tmp/man.classes.txt;
 *                                      the vocabulary is inside the .keras file)
 *     build/text_classifier --load /tmp/man.keras --predict a.txt b.txt
 * --dump-ids PREFIX writes the vectorized split (PREFIX.{train,val}_{x,y}.i32, raw int32, and
 * PREFIX.meta.txt) for bench/text_classifier_keras.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kerac.h"
#include "text_pipeline.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void print_warning(const char *msg, void *user) {
    fprintf(stderr, "text_classifier: warning: %s\n", msg);
}

static int fail(const char *what) {
    fprintf(stderr, "text_classifier: %s%s%s\n", what ? what : "", what ? ": " : "",
            tp_last_error());
    return 1;
}

static const char *base(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* the text's first size - 1 bytes on one line, for a prediction's line */
static void snippet(const char *text, char *buf, size_t size) {
    size_t j = 0;
    for (const char *s = text; *s && j + 1 < size; s++)
        buf[j++] = (*s == '\n' || *s == '\t' || *s == '\r') ? ' ' : *s;
    buf[j] = 0;
}

static int write_i32(const char *prefix, const char *what, const int32_t *v, int64_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s.%s.i32", prefix, what);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(v, sizeof *v, (size_t)n, f) != (size_t)n || fclose(f)) {
        fprintf(stderr, "text_classifier: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

/* texts -> (n, output_sequence_length) int32 ids, malloc'd (for --dump-ids) */
static kc_status vectorize(const kc_text_vectorization *tv, char *const *texts, int64_t n,
                           int32_t **ids) {
    int64_t cols = 0;
    void *out = NULL;
    kc_status st = kc_text_vectorization_call(tv, (const char *const *)texts, n, &out, &cols);
    *ids = out;
    return st;
}

static int predict_files(const char *model_path, char **files, int n) {
    kc_model *m;
    char **classes;
    int nc;
    if (tp_load_model(model_path, &m, &classes, &nc)) return fail(NULL);
    char **texts = calloc((size_t)n, sizeof *texts);
    int status = texts ? 0 : 1;
    for (int i = 0; !status && i < n; i++) {
        FILE *f = fopen(files[i], "rb");
        size_t len = 0, cap = 0;
        char *t = NULL, buf[65536];
        size_t r;
        while (f && (r = fread(buf, 1, sizeof buf, f)) > 0) {
            if (len + r + 1 > cap) {
                cap = 2 * (len + r + 1);
                char *nt = realloc(t, cap);
                if (!nt) break;
                t = nt;
            }
            memcpy(t + len, buf, r);
            len += r;
        }
        if (!f || ferror(f)) {
            fprintf(stderr, "text_classifier: cannot read %s\n", files[i]);
            status = 1;
        }
        if (f) fclose(f);
        texts[i] = t ? t : strdup("");
        if (texts[i]) texts[i][len] = 0;
    }
    int32_t *cls = malloc(sizeof(int32_t) * (size_t)n);
    float *prob = malloc(sizeof(float) * (size_t)n);
    if (!status && (!cls || !prob)) status = 1;
    if (!status && tp_predict(m, texts, n, nc, cls, prob))
        status = fail(NULL);
    for (int i = 0; !status && i < n; i++)
        printf("%s: %s (%.3f)\n", files[i], classes[cls[i]], prob[i]);
    for (int i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(cls);
    free(prob);
    tp_free_lines(classes, nc);
    kc_model_free(m);
    return status;
}

int main(int argc, char **argv) {
    tp_config c = {0};
    int epochs = 10, batch_size = 32, threads = 0, verbose = 1, show = 6, predict = 0;
    const char *dir = NULL, *save = NULL, *load = NULL, *dump = NULL;
    char **files = NULL;
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            printf("usage: text_classifier DIR [--model fasttext|cnn] [--epochs N (10)] "
                   "[--batch-size N (32)]\n"
                   "         [--max-tokens N (20000)] [--sequence-length N (400)] "
                   "[--embedding-dim N (50)]\n"
                   "         [--seed N (1337)] [--show N (6)] [--save F.keras] "
                   "[--dump-ids PREFIX] [--threads N] [--verbose 0|1|2]\n"
                   "       text_classifier --load F.keras --predict FILE...\n");
            return 0;
        }
        if (!strcmp(a, "--predict")) {
            predict = 1;
            files = argv + i + 1;
            nfiles = argc - i - 1;
            break;
        }
        if (a[0] != '-' && !dir) {
            dir = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "text_classifier: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--model")) c.model = v;
        else if (!strcmp(a, "--epochs")) epochs = atoi(v);
        else if (!strcmp(a, "--batch-size")) batch_size = atoi(v);
        else if (!strcmp(a, "--max-tokens")) c.max_tokens = atoll(v);
        else if (!strcmp(a, "--sequence-length") || !strcmp(a, "--output-sequence-length"))
            c.output_sequence_length = atoll(v);
        else if (!strcmp(a, "--embedding-dim")) c.embedding_dim = atoi(v);
        else if (!strcmp(a, "--seed")) c.seed = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--show")) show = atoi(v);
        else if (!strcmp(a, "--save")) save = v;
        else if (!strcmp(a, "--load")) load = v;
        else if (!strcmp(a, "--dump-ids")) dump = v;
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--verbose")) verbose = atoi(v);
        else {
            fprintf(stderr, "text_classifier: unknown option '%s'\n", a);
            return 2;
        }
        i++;
    }
    kc_set_warning_handler(print_warning, NULL);
    kc_set_num_threads(threads);
    if (load || predict) {
        if (!load || !predict || !nfiles || dir) {
            fprintf(stderr, "text_classifier: use --load F.keras --predict FILE...\n");
            return 2;
        }
        return predict_files(load, files, nfiles);
    }
    tp_defaults(&c);
    if (!dir || epochs < 0 || batch_size <= 0 || threads < 0 || c.max_tokens < 3 ||
        c.output_sequence_length < 3 || c.embedding_dim <= 0 ||
        (strcmp(c.model, "fasttext") && strcmp(c.model, "cnn"))) {
        fprintf(stderr, "text_classifier: %s (--help)\n",
                dir ? "bad option value" : "give the folder of class folders");
        return 2;
    }
    kc_set_random_seed(c.seed);

    kc_text_files train, val;
    if (tp_load(dir, &c, &train, &val)) return fail(NULL);
    printf("Found %lld files in %d classes:", (long long)(train.count + val.count),
           train.num_classes);
    for (int k = 0; k < train.num_classes; k++) printf(" %s", train.class_names[k]);
    printf("\nUsing %lld files for training, %lld for validation.\n", (long long)train.count,
           (long long)val.count);

    double t0 = now();
    kc_text_vectorization *tv = NULL;
    int32_t *xtrain = NULL, *xval = NULL;
    int status = 1;
    if (kc_text_vectorization_new(
            &(kc_text_vectorization_opts){.max_tokens = c.max_tokens,
                                          .output_sequence_length = c.output_sequence_length},
            &tv) ||
        kc_text_vectorization_adapt(tv, (const char *const *)train.texts, train.count) ||
        (dump && (vectorize(tv, train.texts, train.count, &xtrain) ||
                  vectorize(tv, val.texts, val.count, &xval)))) {
        fail("TextVectorization");
        goto done;
    }
    printf("Vocabulary: %lld tokens (max_tokens %lld), sequences of %lld, adapted in %.1f s\n",
           (long long)kc_text_vectorization_vocabulary(tv, &(const char *const *){NULL}),
           (long long)c.max_tokens, (long long)c.output_sequence_length, now() - t0);
    if (dump) {
        char path[4096];
        snprintf(path, sizeof path, "%s.meta.txt", dump);
        FILE *f = fopen(path, "w");
        if (!f) {
            fprintf(stderr, "text_classifier: cannot write %s\n", path);
            goto done;
        }
        fprintf(f, "%lld %lld %lld %lld %d\n", (long long)train.count, (long long)val.count,
                (long long)c.output_sequence_length, (long long)c.max_tokens, train.num_classes);
        fclose(f);
        const int64_t L = c.output_sequence_length;
        if (write_i32(dump, "train_x", xtrain, train.count * L) ||
            write_i32(dump, "train_y", train.labels, train.count) ||
            write_i32(dump, "val_x", xval, val.count * L) ||
            write_i32(dump, "val_y", val.labels, val.count))
            goto done;
    }

    kc_status st;
    kc_model *model = tp_build(&c, train.num_classes, tv, &st); /* the model owns tv now */
    tv = NULL;
    if (!model) {
        fail("model");
        goto done;
    }
    if (verbose) kc_summary(model, stdout);
    float *ytrain = malloc(sizeof(float) * (size_t)(train.count + 1)),
          *yval = malloc(sizeof(float) * (size_t)(val.count + 1));
    int32_t *pred = malloc(sizeof(int32_t) * (size_t)(val.count + 1));
    float *prob = malloc(sizeof(float) * (size_t)(val.count + 1));
    kc_dataset dtrain = tp_dataset(train.texts, train.count, train.labels, train.num_classes,
                                   ytrain);
    kc_dataset dval = tp_dataset(val.texts, val.count, val.labels, val.num_classes, yval);
    kc_metrics score;
    t0 = now();
    if (!ytrain || !yval || !pred || !prob) {
        fprintf(stderr, "text_classifier: out of memory\n");
    } else if (kc_fit(model, &dtrain,
                      &(kc_fit_opts){.batch_size = batch_size, .epochs = epochs,
                                     .verbose = verbose ? verbose : -1,
                                     .validation = val.count ? &dval : NULL},
                      NULL)) {
        fail("fit");
    } else if (val.count == 0) {
        printf("Training: %d epochs in %.1f s (no validation files)\n", epochs, now() - t0);
        status = 0;
    } else {
        double train_s = now() - t0;
        if (kc_evaluate(model, &dval, &(kc_evaluate_opts){.batch_size = batch_size}, &score) ||
            tp_predict(model, val.texts, val.count, val.num_classes, pred, prob)) {
            fail("evaluate");
        } else {
            printf("Training: %d epochs in %.1f s (%s, batch %d)\n", epochs, train_s, c.model,
                   batch_size);
            printf("Validation loss: %.6f\nValidation accuracy: %.6f (%lld files)\n", score.loss,
                   score.accuracy, (long long)val.count);
            for (int64_t i = 0; i < val.count && i < show; i++) {
                char text[61];
                snippet(val.texts[i], text, sizeof text);
                printf("  %-28.28s true %-10s predicted %-10s (%.3f)  \"%s\"\n",
                       base(val.paths[i]), val.class_names[val.labels[i]],
                       val.class_names[pred[i]], prob[i], text);
            }
            status = 0;
        }
    }
    if (!status && save) {
        if (tp_save(model, train.class_names, train.num_classes, save)) {
            status = fail(save);
        } else {
            char *cp = tp_beside(save, "classes.txt");
            printf("Saved %s (the vocabulary inside it) and %s\n", save,
                   cp ? cp : "the class names");
            free(cp);
        }
    }
    free(ytrain);
    free(yval);
    free(pred);
    free(prob);
    kc_model_free(model);
done:
    free(xtrain);
    free(xval);
    kc_text_vectorization_free(tv);
    kc_text_files_free(&train);
    kc_text_files_free(&val);
    return status;
}
