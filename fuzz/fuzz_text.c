/* kerac's text parsers. The first byte picks:
 *   0  get_word_index(): imdb_word_index.json (kc_imdb_word_index)
 *   1  kc_npz_read_sequences / kc_npz_read_ints: the strict pickle and integer .npy readers, on
 *      an npz whose member x.npy is the rest
 *   2  imdb.load_data (kc_imdb_load): imdb.npz of x_train, y_train, x_test, y_test (the parts)
 *   3  TextVectorization: adapt on the first part's lines, then call on the second's, with
 *      options from the second byte; set_vocabulary on the first part's lines too */
#include "fuzz_common.h"

static void lines(const uint8_t *d, size_t n, char **buf, const char ***v, int64_t *count) {
    *buf = malloc(n + 1);
    memcpy(*buf, d, n);
    (*buf)[n] = 0;
    int64_t c = 1;
    for (size_t i = 0; i < n; i++) c += (*buf)[i] == '\n';
    *v = malloc((size_t)c * sizeof(char *));
    (*v)[0] = *buf;
    *count = 1;
    for (size_t i = 0; i < n; i++)
        if ((*buf)[i] == '\n') {
            (*buf)[i] = 0;
            (*v)[(*count)++] = *buf + i + 1;
        }
}

static void vectorize(uint8_t o, const fz_parts *p) {
    static const char *const stds[4] = {NULL, "lower", "strip_punctuation", "none"};
    static const char *const modes[4] = {NULL, "multi_hot", "count", "tf_idf"};
    kc_text_vectorization_opts opts = {
        .max_tokens = (o & 1) ? 0 : 16,
        .standardize = stds[(o >> 1) & 3],
        .split = (o & 8) ? "none" : NULL,
        .ngrams = (o & 16) ? 2 : 0,
        .output_mode = modes[(o >> 5) & 3],
    };
    if (!opts.output_mode && (o & 128)) opts.output_sequence_length = 5;
    kc_text_vectorization *tv = NULL;
    if (kc_text_vectorization_new(&opts, &tv) != KC_OK) return;
    char *b1, *b2;
    const char **t1, **t2;
    int64_t n1, n2;
    lines(p->data[0], p->size[0], &b1, &t1, &n1);
    lines(p->n > 1 ? p->data[1] : (const uint8_t *)"", p->n > 1 ? p->size[1] : 0, &b2, &t2, &n2);
    if (kc_text_vectorization_adapt(tv, t1, n1) == KC_OK) {
        void *out = NULL;
        int64_t cols = 0;
        if (kc_text_vectorization_call(tv, t2, n2, &out, &cols) == KC_OK) free(out);
    }
    kc_text_vectorization_free(tv);
    if (kc_text_vectorization_new(&opts, &tv) == KC_OK) {
        float *idf = NULL;
        if (opts.output_mode && !strcmp(opts.output_mode, "tf_idf")) {
            idf = malloc((size_t)n1 * sizeof(float));
            for (int64_t i = 0; i < n1; i++) idf[i] = 1.0f + (float)i;
        }
        if (kc_text_vectorization_set_vocabulary(tv, t1, n1, idf) == KC_OK) {
            void *out = NULL;
            int64_t cols = 0;
            if (kc_text_vectorization_call(tv, t2, n2, &out, &cols) == KC_OK) free(out);
        }
        free(idf);
        kc_text_vectorization_free(tv);
    }
    free(b1), free(b2), free(t1), free(t2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    fz_quiet();
    uint8_t mode = data[0] & 3, o = data[1];
    data += 2, size -= 2;
    fz_parts p;
    if (mode == 0) {
        fz_write("imdb_word_index.json", data, size);
        kc_word_index wi;
        if (kc_imdb_word_index(fz_tmpdir(), &wi) == KC_OK) kc_word_index_free(&wi);
    } else if (mode == 1) {
        static const char *const name[1] = {"x.npy"};
        const uint8_t *d[1] = {data};
        size_t zsize;
        uint8_t *zip = fz_zip(1, name, d, &size, &zsize);
        const char *path = fz_write("seq.npz", zip, zsize);
        free(zip);
        kc_sequences s;
        memset(&s, 0, sizeof s);
        if (kc_npz_read_sequences(path, "x", &s) == KC_OK) kc_sequences_free(&s);
        int32_t *v = NULL;
        int64_t n = 0;
        if (kc_npz_read_ints(path, "x", &v, &n) == KC_OK) free(v);
    } else if (mode == 2) {
        static const char *const names[4] = {"x_train.npy", "y_train.npy", "x_test.npy",
                                             "y_test.npy"};
        fz_split(data, size, 4, &p);
        size_t zsize;
        uint8_t *zip = fz_zip(p.n, names, p.data, p.size, &zsize);
        fz_write("imdb.npz", zip, zsize);
        free(zip);
        kc_text_dataset_opts opts = {.num_words = (o & 1) ? 20 : 0, .maxlen = (o & 2) ? 5 : 0,
                                     .skip_top = (o & 4) ? 1 : 0};
        kc_sequences tr, te;
        if (kc_imdb_load(fz_tmpdir(), &opts, &tr, &te) == KC_OK) {
            kc_sequences_free(&tr);
            kc_sequences_free(&te);
        }
    } else {
        fz_split(data, size, 2, &p);
        vectorize(o, &p);
    }
    return 0;
}
