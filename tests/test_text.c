/* test_text.c: text and sequence data against Keras (tests/gen_keras_text_fixtures.py writes
 * tests/fixtures/text/): pad_sequences, NumPy's shuffle, imdb / reuters load_data from tiny
 * files written by np.savez, TextVectorization, text_dataset_from_directory's order; the
 * download path; hostile .npz, .npy and pickle input. */
#include "testutil.h"
#include "internal.h"
#include "data/text_internal.h"
#include "io/io.h"
#include <ftw.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#define FIX "tests/fixtures/text/"

/* ---- helpers -------------------------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}
static void rm_tree(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static uint8_t *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    uint8_t *d = malloc(*size + 1);
    cr_assert_eq(fread(d, 1, *size, f), *size);
    fclose(f);
    return d;
}

static void copy_file(const char *from, const char *to) {
    size_t n;
    uint8_t *d = slurp(from, &n);
    tu_write_file(to, d, n);
    free(d);
}

static FILE *open_fixture(const char *name) {
    char p[256];
    snprintf(p, sizeof p, FIX "%s", name);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f, "missing fixture %s (run tests/gen_keras_text_fixtures.py)", p);
    return f;
}

/* skips "# ..." lines; reads the next header word and its name */
static void header(FILE *f, const char *kind, const char *name) {
    char k[32], nm[64];
    int c;
    while ((c = fgetc(f)) == '#')
        while ((c = fgetc(f)) != '\n' && c != EOF) {}
    ungetc(c, f);
    cr_assert_eq(fscanf(f, "%31s %63s", k, nm), 2);
    cr_assert_str_eq(k, kind);
    cr_assert_str_eq(nm, name);
}

static void expect_seqs(FILE *f, const char *name, const kc_sequences *s) {
    int64_t n;
    header(f, "seqs", name);
    cr_assert_eq(fscanf(f, "%" SCNd64, &n), 1);
    cr_assert_eq(s->count, n, "%s: %" PRId64 " sequences, Keras %" PRId64, name, s->count, n);
    for (int64_t i = 0; i < n; i++) {
        int64_t len;
        cr_assert_eq(fscanf(f, "%" SCNd64, &len), 1);
        cr_assert_eq(s->offsets[i + 1] - s->offsets[i], len, "%s[%" PRId64 "]: length", name, i);
        for (int64_t j = 0; j < len; j++) {
            int v;
            cr_assert_eq(fscanf(f, "%d", &v), 1);
            cr_assert_eq(s->values[s->offsets[i] + j], v, "%s[%" PRId64 "][%" PRId64 "]: %d, Keras %d",
                         name, i, j, s->values[s->offsets[i] + j], v);
        }
        int y;
        cr_assert_eq(fscanf(f, " | %d", &y), 1);
        cr_assert_eq(s->labels[i], y, "%s label %" PRId64, name, i);
    }
}

/* "matrix name rows cols" then the values; returns them (rows * cols doubles) */
static double *read_matrix(FILE *f, const char *name, int64_t *rows, int64_t *cols) {
    header(f, "matrix", name);
    cr_assert_eq(fscanf(f, "%" SCNd64 " %" SCNd64, rows, cols), 2);
    double *m = malloc((size_t)(*rows * *cols + 1) * sizeof *m);
    for (int64_t i = 0; i < *rows * *cols; i++) cr_assert_eq(fscanf(f, "%lf", &m[i]), 1);
    return m;
}

/* "strings name n" then hex lines */
static char **read_strings(FILE *f, const char *name, int64_t *n) {
    header(f, "strings", name);
    cr_assert_eq(fscanf(f, "%" SCNd64, n), 1);
    char **s = calloc((size_t)*n + 1, sizeof *s);
    char hex[4096];
    for (int64_t i = 0; i < *n; i++) {
        cr_assert_eq(fscanf(f, "%4095s", hex), 1);
        size_t len = strcmp(hex, "-") ? strlen(hex) / 2 : 0;
        s[i] = calloc(len + 1, 1);
        for (size_t j = 0; j < len; j++) {
            unsigned v;
            sscanf(hex + 2 * j, "%2x", &v);
            s[i][j] = (char)v;
        }
    }
    return s;
}

static void free_strings(char **s, int64_t n) {
    for (int64_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

/* the fixtures' sequences [[1, 2, 3], [4, 5], [], [6, 7, 8, 9, 10], [11]] */
static int64_t pad_off[] = {0, 3, 5, 5, 10, 11};
static int32_t pad_val[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const kc_sequences pad_seqs = {5, pad_off, pad_val, NULL};

/* ---- pad_sequences ---------------------------------------------------------------------------- */

Test(pad_sequences, keras_cases) {
    static const struct {
        const char *name;
        kc_pad_opts opts;
    } cases[] = {
        {"default", {0}},
        {"post", {.padding = "post"}},
        {"maxlen3", {.maxlen = 3}},
        {"maxlen3_post_post", {.maxlen = 3, .padding = "post", .truncating = "post"}},
        {"maxlen7_value", {.maxlen = 7, .value = -1}},
        {"maxlen2_pre_post", {.maxlen = 2, .padding = "pre", .truncating = "post"}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char fname[64];
        snprintf(fname, sizeof fname, "pad_%s.txt", cases[c].name);
        FILE *f = open_fixture(fname);
        int64_t rows, cols, maxlen;
        double *want = read_matrix(f, "out", &rows, &cols);
        fclose(f);
        int32_t *got;
        KC_CHECK(kc_pad_sequences(&pad_seqs, &cases[c].opts, &got, &maxlen));
        cr_assert_eq(maxlen, cols, "%s", cases[c].name);
        for (int64_t i = 0; i < rows * cols; i++)
            cr_assert_eq(got[i], (int32_t)want[i], "%s: element %" PRId64, cases[c].name, i);
        free(got);
        free(want);
    }
}

Test(pad_sequences, errors) {
    int32_t *out;
    int64_t maxlen;
    KC_EXPECT_ERR(kc_pad_sequences(&pad_seqs, &(kc_pad_opts){.padding = "middle"}, &out, &maxlen),
                  KC_EINVAL, "padding must be \"pre\" or \"post\", found \"middle\"");
    KC_EXPECT_ERR(kc_pad_sequences(&pad_seqs, &(kc_pad_opts){.truncating = "both"}, &out, &maxlen),
                  KC_EINVAL, "truncating");
    KC_EXPECT_ERR(kc_pad_sequences(&pad_seqs, &(kc_pad_opts){.maxlen = -2}, &out, &maxlen),
                  KC_EINVAL, "maxlen");
    int64_t bad_off[] = {0, 3, 2};
    kc_sequences bad = {2, bad_off, pad_val, NULL};
    KC_EXPECT_ERR(kc_pad_sequences(&bad, NULL, &out, &maxlen), KC_EINVAL, "offsets decrease");
    kc_sequences none = {0, pad_off, pad_val, NULL};
    KC_EXPECT_ERR(kc_pad_sequences(&none, NULL, &out, &maxlen), KC_EINVAL, "no sequences");
    KC_CHECK(kc_pad_sequences(&none, &(kc_pad_opts){.maxlen = 4}, &out, &maxlen));
    cr_assert_eq(maxlen, 4);
    free(out);
}

/* ---- NumPy's shuffle ------------------------------------------------------------------------ */

Test(numpy_shuffle, matches_random_state) {
    FILE *f = open_fixture("perm.txt");
    char word[16];
    unsigned long seed;
    int64_t n;
    int cases = 0;
    while (fscanf(f, "%15s %lu %" SCNd64, word, &seed, &n) == 3) {
        int64_t *perm = malloc((size_t)n * sizeof *perm);
        kc_numpy_shuffled_range((uint32_t)seed, perm, n);
        for (int64_t i = 0; i < n; i++) {
            int64_t v;
            cr_assert_eq(fscanf(f, "%" SCNd64, &v), 1);
            cr_assert_eq(perm[i], v, "seed %lu n %" PRId64 ": index %" PRId64, seed, n, i);
        }
        free(perm);
        cases++;
    }
    fclose(f);
    cr_assert_eq(cases, 5);
}

/* ---- imdb and reuters ----------------------------------------------------------------------- */

static char *dataset_dir(const char *fixture, const char *as) {
    char *dir = tu_tmpdir(), p[512], from[256];
    snprintf(p, sizeof p, "%s/%s", dir, as);
    snprintf(from, sizeof from, FIX "%s", fixture);
    copy_file(from, p);
    return dir;
}

Test(imdb, load_data_cases) {
    static const struct {
        const char *name;
        kc_text_dataset_opts o;
    } cases[] = {
        {"default", {0}},
        {"num_words", {.num_words = 12, .skip_top = 2}},
        {"maxlen", {.maxlen = 8, .has_seed = 1, .seed = 5}},
        {"nostart", {.has_chars = 1, .start_char = -1, .oov_char = -1, .index_from = 0,
                     .num_words = 20, .skip_top = 3}},
        {"chars", {.has_chars = 1, .start_char = 7, .oov_char = 9, .index_from = 10,
                   .has_seed = 1, .seed = 0}},
    };
    char *dir = dataset_dir("imdb_tiny.npz", "imdb.npz");
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        kc_sequences train, test;
        KC_CHECK(kc_imdb_load(dir, &cases[c].o, &train, &test));
        char fname[64];
        snprintf(fname, sizeof fname, "imdb_%s.txt", cases[c].name);
        FILE *f = open_fixture(fname);
        expect_seqs(f, "train", &train);
        expect_seqs(f, "test", &test);
        fclose(f);
        kc_sequences_free(&train);
        kc_sequences_free(&test);
    }
    kc_sequences train, test;
    KC_EXPECT_ERR(kc_imdb_load(dir, &(kc_text_dataset_opts){.maxlen = 1}, &train, &test),
                  KC_EINVAL, "no sequence was kept");
    rm_tree(dir);
}

Test(reuters, load_data_cases) {
    static const struct {
        const char *name;
        kc_text_dataset_opts o;
    } cases[] = {
        {"default", {0}},
        {"split", {.has_test_split = 1, .test_split = 0.5, .num_words = 25, .skip_top = 1,
                   .has_seed = 1, .seed = 1}},
        {"maxlen", {.maxlen = 10, .has_chars = 1, .start_char = 1, .oov_char = -1, .index_from = 3}},
    };
    char *dir = dataset_dir("reuters_tiny.npz", "reuters.npz");
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        kc_sequences train, test;
        KC_CHECK(kc_reuters_load(dir, &cases[c].o, &train, &test));
        char fname[64];
        snprintf(fname, sizeof fname, "reuters_%s.txt", cases[c].name);
        FILE *f = open_fixture(fname);
        expect_seqs(f, "train", &train);
        expect_seqs(f, "test", &test);
        fclose(f);
        kc_sequences_free(&train);
        kc_sequences_free(&test);
    }
    rm_tree(dir);
}

Test(imdb, from_kerac_data_and_errors) {
    char *dir = tu_tmpdir(), sub[512], p[600];
    snprintf(sub, sizeof sub, "%s/imdb", dir);
    mkdir(sub, 0755);
    snprintf(p, sizeof p, "%s/imdb.npz", sub);
    copy_file(FIX "imdb_tiny.npz", p);
    setenv("KERAC_DATA", dir, 1);
    kc_sequences train, test;
    KC_CHECK(kc_imdb_load(NULL, NULL, &train, &test));
    cr_assert_eq(train.count, 24);
    cr_assert_eq(test.count, 20);
    kc_sequences_free(&train);
    kc_sequences_free(&test);
    KC_EXPECT_ERR(kc_imdb_load("/nonexistent/kerac", NULL, &train, &test), KC_EIO,
                  "/nonexistent/kerac");
    KC_EXPECT_ERR(kc_imdb_load(dir, NULL, &train, &test), KC_EIO, "imdb.npz does not exist");
    /* reuters' file where imdb's arrays are expected */
    copy_file(FIX "reuters_tiny.npz", p);
    KC_EXPECT_ERR(kc_imdb_load(sub, NULL, &train, &test), KC_EFORMAT, "has no x_train.npy");
    KC_EXPECT_ERR(kc_imdb_load(sub, &(kc_text_dataset_opts){.num_words = -1}, &train, &test),
                  KC_EINVAL, "num_words");
    rm_tree(dir);
}

/* ---- the download path ------------------------------------------------------------------- */

static void md5_hex(const char *path, char out[33]) {
    size_t n;
    uint8_t *d = slurp(path, &n), dig[16];
    unsigned len = 0;
    EVP_Digest(d, n, dig, &len, EVP_md5(), NULL);
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", dig[i]);
    free(d);
}

Test(download, cache_then_no_source) {
    char *root = tu_tmpdir(), src[512], cache[512], url[600], hex[65], got[4096];
    snprintf(src, sizeof src, "%s/origin", root);
    snprintf(cache, sizeof cache, "%s/cache", root);
    mkdir(src, 0755);
    char p[600];
    snprintf(p, sizeof p, "%s/imdb.npz", src);
    copy_file(FIX "imdb_tiny.npz", p);
    KC_CHECK(kc_sha256_file(p, hex));
    snprintf(url, sizeof url, "file://%s/", src);
    unsetenv("KERAC_DATA");
    setenv("XDG_CACHE_HOME", cache, 1);
    KC_CHECK(kc_keras_data_file(NULL, "imdb", "imdb.npz", url, hex, got, sizeof got));
    char want[600];
    snprintf(want, sizeof want, "%s/kerac/imdb/imdb.npz", cache);
    cr_assert_str_eq(got, want);
    remove(p); /* the second call finds the cache */
    KC_CHECK(kc_keras_data_file(NULL, "imdb", "imdb.npz", url, hex, got, sizeof got));
    cr_assert_str_eq(got, want);
    /* and the loader reads it from there */
    kc_sequences train, test;
    KC_CHECK(kc_imdb_load(NULL, NULL, &train, &test));
    cr_assert_eq(train.count, 24);
    kc_sequences_free(&train);
    kc_sequences_free(&test);
    /* a word index, MD5-checked as Keras's */
    const char *json = "{\"the\": 1, \"and\": 2, \"caf\\u00e9\": 3}";
    snprintf(p, sizeof p, "%s/words.json", src);
    tu_write_file(p, json, strlen(json));
    char md5[33];
    md5_hex(p, md5);
    KC_CHECK(kc_keras_data_file(NULL, "imdb", "words.json", url, md5, got, sizeof got));
    md5[0] = md5[0] == '0' ? '1' : '0';
    KC_EXPECT_ERR(kc_keras_data_file(NULL, "imdb", "words2.json", url, md5, got, sizeof got),
                  KC_ENET, "words2.json");
    rm_tree(root);
}

Test(download, wrong_checksum_refused) {
    char *root = tu_tmpdir(), src[512], cache[512], url[600], p[600];
    snprintf(src, sizeof src, "%s/origin", root);
    snprintf(cache, sizeof cache, "%s/cache", root);
    mkdir(src, 0755);
    snprintf(p, sizeof p, "%s/imdb.npz", src);
    copy_file(FIX "imdb_tiny.npz", p); /* not Keras's imdb.npz: its SHA-256 differs */
    snprintf(p, sizeof p, "%s/reuters.npz", src);
    copy_file(FIX "reuters_tiny.npz", p);
    snprintf(url, sizeof url, "file://%s", src);
    unsetenv("KERAC_DATA");
    setenv("XDG_CACHE_HOME", cache, 1);
    setenv("KERAC_KERAS_DATASETS_URL", url, 1);
    kc_sequences train, test;
    KC_EXPECT_ERR(kc_imdb_load(NULL, NULL, &train, &test), KC_ENET, "did not verify");
    cr_assert(strstr(kc_last_error(), "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"));
    KC_EXPECT_ERR(kc_reuters_load(NULL, NULL, &train, &test), KC_ENET, "did not verify");
    snprintf(p, sizeof p, "%s/kerac/imdb/imdb.npz", cache);
    cr_assert_neq(access(p, F_OK), 0, "an unverified file landed in the cache");
    rm_tree(root);
}

Test(word_index, reads_json) {
    char *dir = tu_tmpdir(), p[512];
    const char *json = "{\"the\": 1, \"and\": 2, \"caf\\u00e9\": 3}";
    snprintf(p, sizeof p, "%s/imdb_word_index.json", dir);
    tu_write_file(p, json, strlen(json));
    kc_word_index wi;
    KC_CHECK(kc_imdb_word_index(dir, &wi));
    cr_assert_eq(wi.count, 3);
    cr_assert_str_eq(wi.words[2], "caf\xc3\xa9");
    cr_assert_eq(wi.indices[2], 3);
    kc_word_index_free(&wi);
    snprintf(p, sizeof p, "%s/reuters_word_index.json", dir);
    tu_write_file(p, "[1, 2]", 6);
    KC_EXPECT_ERR(kc_reuters_word_index(dir, &wi), KC_EFORMAT, "not a JSON object");
    tu_write_file(p, "{\"a\": 1.5}", 10);
    KC_EXPECT_ERR(kc_reuters_word_index(dir, &wi), KC_EFORMAT, "\"a\"");
    rm_tree(dir);
}

/* ---- hostile input ------------------------------------------------------------------------ */

/* the pickle of x_train in the fixture, and its offset in the .npy */
static uint8_t *fixture_npy(const char *member, size_t *size) {
    size_t zn;
    uint8_t *zip = slurp(FIX "imdb_tiny.npz", &zn);
    void *data;
    KC_CHECK(kc_zip_read("imdb_tiny.npz", zip, zn, member, &data, size));
    free(zip);
    return data;
}

static size_t npy_body(const uint8_t *npy) { return 10 + (size_t)(npy[8] | npy[9] << 8); }

static kc_status read_pickle(const void *p, size_t n) {
    kc_sequences s;
    kc_status st = kc_pickle_read_int_lists("crafted", p, n, &s);
    if (!st) kc_sequences_free(&s);
    return st;
}

#define PK(str) read_pickle(str, sizeof(str) - 1)

Test(pickle, crafted_streams) {
    /* a valid little one first: [[1, 2], []] as NumPy writes it */
    size_t n;
    uint8_t *npy = fixture_npy("x_train.npy", &n);
    size_t body = npy_body(npy);
    kc_sequences s;
    KC_CHECK(kc_pickle_read_int_lists("x_train", npy + body, n - body, &s));
    cr_assert_eq(s.count, 24);
    kc_sequences_free(&s);
    /* every truncation is an error, never a crash */
    for (size_t cut = 0; cut < n - body; cut += (cut < 200 ? 1 : 7))
        cr_assert_neq(read_pickle(npy + body, cut), KC_OK, "a pickle cut at %zu was accepted", cut);
    KC_EXPECT_ERR(read_pickle(npy + body, (n - body) / 2), KC_EFORMAT, "crafted");
    uint8_t *junk = malloc(n - body + 4);
    memcpy(junk, npy + body, n - body);
    memcpy(junk + n - body, "junk", 4);
    KC_EXPECT_ERR(read_pickle(junk, n - body + 4), KC_EFORMAT, "4 bytes follow the pickle's STOP");
    free(junk);
    free(npy);

    KC_EXPECT_ERR(PK("\x80\x03" "cos\nsystem\n" "X\x02\x00\x00\x00ls" "\x85R."), KC_EFORMAT,
                  "refuses the global os.system");
    KC_EXPECT_ERR(PK("\x80\x03" "cbuiltins\neval\n."), KC_EFORMAT, "builtins.eval");
    KC_EXPECT_ERR(PK("\x80\x03" "I12\n."), KC_EFORMAT, "opcode 0x49 ('I')");
    KC_EXPECT_ERR(PK("\x80\x03" "\x81."), KC_EFORMAT, "opcode 0x81");
    KC_EXPECT_ERR(PK("\x80\x09."), KC_EFORMAT, "protocol 9");
    KC_EXPECT_ERR(PK("\x80\x03]r\xff\xff\xff\x7f."), KC_EFORMAT, "more objects than its length");
    KC_EXPECT_ERR(PK("\x80\x03h\x05."), KC_EFORMAT, "never set");
    KC_EXPECT_ERR(PK("\x80\x03" "a."), KC_EFORMAT, "empty stack");
    KC_EXPECT_ERR(PK("\x80\x03" "e."), KC_EFORMAT, "mark");
    KC_EXPECT_ERR(PK("\x80\x03" "]K\x01" "a."), KC_EFORMAT, "not a built object array");
    KC_EXPECT_ERR(PK("\x80\x03" "]]a."), KC_EFORMAT, "");
    KC_EXPECT_ERR(PK("\x80\x03" "]K\x01" "a]a."), KC_EFORMAT, "mixes ints");
    KC_EXPECT_ERR(PK("\x80\x03" "\x8a\x09\x01\x01\x01\x01\x01\x01\x01\x01\x01."), KC_EFORMAT,
                  "too large");
    KC_EXPECT_ERR(PK("\x80\x03" "]\x8a\x05\x00\x00\x00\x00\x01" "a."), KC_EFORMAT, "int32 range");
    KC_EXPECT_ERR(PK("\x80\x03" "X\xff\xff\xff\x7f" "abc"), KC_EFORMAT, "truncated");
    /* an object array whose data list holds one list a thousand times (by memo): bounded */
    {
        static const char head[] =
            "\x80\x04\x8c\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94"
            "\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94" "C\x01" "b\x94\x87\x94R\x94"
            "(K\x01M\xe8\x03\x85\x94h\x03\x8c\x05" "dtype\x94\x93\x94\x8c\x02O8\x94\x89\x88\x87\x94R\x94"
            "(K\x03\x8c\x01|\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t\x94" "b\x89";
        uint8_t *p = malloc(8192);
        size_t len = sizeof head - 1;
        memcpy(p, head, len);
        p[len++] = ']', p[len++] = 0x94;          /* the data list, memo 18 */
        p[len++] = ']', p[len++] = 0x94;          /* the shared list, memo 19 */
        p[len++] = '(';
        for (int i = 0; i < 300; i++) p[len++] = 'K', p[len++] = 1;
        p[len++] = 'e';
        p[len++] = 'a';                           /* data.append(shared) */
        for (int i = 1; i < 1000; i++) p[len++] = 'h', p[len++] = 19, p[len++] = 'a';
        p[len++] = 't', p[len++] = 'b', p[len++] = '.';
        KC_EXPECT_ERR(read_pickle(p, len), KC_EFORMAT, "shares its lists");
        /* the same with the data list holding it twice: read */
        size_t short_len = sizeof head - 1 + 4 + 1 + 600 + 2 + 3;
        memcpy(p + short_len - 3, "tb.", 3);
        /* the shape says 1000: refused by name */
        KC_EXPECT_ERR(read_pickle(p, short_len), KC_EFORMAT, "not 1-d with as many elements");
        free(p);
    }
    /* a million marks: no recursion, a clear error */
    {
        size_t len = 1000003;
        uint8_t *p = malloc(len);
        p[0] = 0x80, p[1] = 3;
        memset(p + 2, '(', len - 3);
        p[len - 1] = '.';
        KC_EXPECT_ERR(read_pickle(p, len), KC_EFORMAT, "STOP");
        free(p);
    }
}

Test(pickle, mutations_never_crash) {
    size_t n;
    uint8_t *npy = fixture_npy("x_test.npy", &n);
    size_t body = npy_body(npy), len = n - body;
    uint8_t *p = malloc(len);
    uint64_t r = 12345;
    int accepted = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(p, npy + body, len);
        for (int k = 0; k < 1 + it % 4; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            p[(r >> 33) % len] = (uint8_t)(r >> 13);
        }
        accepted += read_pickle(p, len) == KC_OK;
    }
    cr_log_info("mutated pickles accepted: %d of 3000", accepted);
    free(p);
    free(npy);
}

Test(npz, hostile_files) {
    char *dir = tu_tmpdir(), p[512];
    size_t n;
    uint8_t *zip = slurp(FIX "imdb_tiny.npz", &n);
    snprintf(p, sizeof p, "%s/imdb.npz", dir);
    tu_write_file(p, zip, n / 2);
    kc_sequences train, test;
    KC_EXPECT_ERR(kc_imdb_load(dir, NULL, &train, &test), KC_EFORMAT, "not a valid zip archive");
    tu_write_file(p, "hello", 5);
    KC_EXPECT_ERR(kc_imdb_load(dir, NULL, &train, &test), KC_EFORMAT, "imdb.npz");
    free(zip);
    /* .npy headers */
    int32_t *ints;
    kc_sequences s;
    int64_t count;
    static const char v1[] = "\x93NUMPY\x01\x00\x3c\x00{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }  \n"
                             "\x01\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0";
    KC_CHECK(kc_npy_parse("ok", (const uint8_t *)v1, sizeof v1 - 1, &ints, NULL, &count));
    cr_assert_eq(count, 2);
    cr_assert_eq(ints[1], 2);
    free(ints);
    KC_EXPECT_ERR(kc_npy_parse("cut", (const uint8_t *)v1, sizeof v1 - 4, &ints, NULL, &count),
                  KC_EFORMAT, "truncated");
    static const char bad_descr[] = "\x93NUMPY\x01\x00\x3c\x00{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }  \n";
    KC_EXPECT_ERR(kc_npy_parse("f8", (const uint8_t *)bad_descr, sizeof bad_descr - 1, &ints, NULL,
                               &count), KC_EFORMAT, "'<f8'");
    static const char rank2[] = "\x93NUMPY\x01\x00\x3c\x00{'descr': '<i8', 'fortran_order': False, 'shape': (2,1) }  \n";
    KC_EXPECT_ERR(kc_npy_parse("r2", (const uint8_t *)rank2, sizeof rank2 - 1, &ints, NULL, &count),
                  KC_EFORMAT, "rank 2");
    static const char garbled[] = "\x93NUMPY\x01\x00\x3c\x00{'descr': '<i8', 'fortran_order': Maybe, 'shape': (2,) }   \n";
    KC_EXPECT_ERR(kc_npy_parse("g", (const uint8_t *)garbled, sizeof garbled - 1, &ints, NULL,
                               &count), KC_EFORMAT, "malformed .npy header");
    static const char hlen[] = "\x93NUMPY\x01\x00\xff\xff{";
    KC_EXPECT_ERR(kc_npy_parse("h", (const uint8_t *)hlen, sizeof hlen - 1, &ints, NULL, &count),
                  KC_EFORMAT, "truncated .npy header");
    static const char big[] = "\x93NUMPY\x01\x00\x3c\x00{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }  \n"
                              "\xff\xff\xff\xff\xff\xff\xff\xff";
    KC_EXPECT_ERR(kc_npy_parse("u8", (const uint8_t *)big, sizeof big - 1, &ints, NULL, &count),
                  KC_EFORMAT, "out of int32 range");
    KC_EXPECT_ERR(kc_npy_parse("magic", (const uint8_t *)"NUMPY....", 9, &ints, &s, &count),
                  KC_EFORMAT, "magic");
    rm_tree(dir);
}

/* ---- TextVectorization -------------------------------------------------------------------- */

static const struct {
    const char *name;
    kc_text_vectorization_opts o;
} tv_cases[] = {
    {"int", {0}},
    {"int_len", {.output_sequence_length = 4}},
    {"int_max", {.max_tokens = 8, .output_sequence_length = 6}},
    {"multi_hot", {.output_mode = "multi_hot"}},
    {"count", {.output_mode = "count", .max_tokens = 10}},
    {"tf_idf", {.output_mode = "tf_idf"}},
    {"tf_idf_pad", {.output_mode = "tf_idf", .max_tokens = 30, .pad_to_max_tokens = 1}},
    {"lower", {.standardize = "lower"}},
    {"strip", {.standardize = "strip_punctuation", .output_mode = "count"}},
    {"nostd", {.standardize = "none"}},
    {"nosplit", {.split = "none", .output_mode = "multi_hot"}},
    {"bigrams", {.ngrams = 2}},
    {"trigrams_count", {.ngrams = 3, .output_mode = "count", .max_tokens = 20}},
};

static void check_output(const char *name, const kc_text_vectorization *tv, const char *const *in,
                         int64_t nin, const double *want, int64_t rows, int64_t cols) {
    void *out;
    int64_t got_cols;
    KC_CHECK(kc_text_vectorization_call(tv, in, nin, &out, &got_cols));
    cr_assert_eq(rows, nin);
    cr_assert_eq(got_cols, cols, "%s: %" PRId64 " columns, Keras %" PRId64, name, got_cols, cols);
    for (int64_t i = 0; i < rows * cols; i++) {
        if (kc_text_vectorization_output_dtype(tv) == KC_INT32)
            cr_assert_eq(((int32_t *)out)[i], (int32_t)want[i], "%s: element %" PRId64, name, i);
        else
            cr_assert(tu_close(((float *)out)[i], want[i], 3e-7), "%s: element %" PRId64 ": %.9g, "
                      "Keras %.9g", name, i, ((float *)out)[i], want[i]);
    }
    free(out);
}

Test(text_vectorization, keras_cases) {
    for (size_t c = 0; c < sizeof tv_cases / sizeof *tv_cases; c++) {
        const char *name = tv_cases[c].name;
        char fname[64];
        snprintf(fname, sizeof fname, "tv_%s.txt", name);
        FILE *f = open_fixture(fname);
        int64_t ncorpus, nin, nvocab, rows, cols, one, nidf = 0;
        char **corpus = read_strings(f, "corpus", &ncorpus);
        char **in = read_strings(f, "inputs", &nin);
        char **vocab = read_strings(f, "vocab", &nvocab);
        double *idf = NULL;
        int tfidf = tv_cases[c].o.output_mode && !strcmp(tv_cases[c].o.output_mode, "tf_idf");
        if (tfidf) idf = read_matrix(f, "idf", &one, &nidf);
        double *want = read_matrix(f, "out", &rows, &cols);
        fclose(f);

        kc_text_vectorization *tv;
        KC_CHECK(kc_text_vectorization_new(&tv_cases[c].o, &tv));
        KC_CHECK(kc_text_vectorization_adapt(tv, (const char *const *)corpus, ncorpus));
        const char *const *got;
        int64_t ngot = kc_text_vectorization_vocabulary(tv, &got);
        cr_assert_eq(ngot, nvocab, "%s: vocabulary of %" PRId64 ", Keras %" PRId64, name, ngot, nvocab);
        for (int64_t i = 0; i < nvocab; i++)
            cr_assert_str_eq(got[i], vocab[i], "%s: token %" PRId64, name, i);
        if (tfidf) {
            const float *w = kc_text_vectorization_idf_weights(tv);
            for (int64_t i = 0; i < nidf; i++)
                cr_assert(tu_close(w[i], idf[i], 3e-7), "%s: idf[%" PRId64 "] %.9g, Keras %.9g", name,
                          i, w[i], idf[i]);
        }
        check_output(name, tv, (const char *const *)in, nin, want, rows, cols);

        /* set_vocabulary with what adapt learned, with and without the special tokens */
        for (int with_specials = 0; with_specials < 2; with_specials++) {
            kc_text_vectorization *tv2;
            KC_CHECK(kc_text_vectorization_new(&tv_cases[c].o, &tv2));
            int ts = tv_cases[c].o.output_mode && strcmp(tv_cases[c].o.output_mode, "int") ? 1 : 2;
            int64_t skip = with_specials ? 0 : ts;
            float *w = NULL;
            if (tfidf) {
                w = malloc((size_t)nvocab * sizeof *w);
                for (int64_t i = skip; i < nvocab; i++) w[i - skip] = (float)idf[i];
            }
            KC_CHECK(kc_text_vectorization_set_vocabulary(tv2, (const char *const *)vocab + skip,
                                                          nvocab - skip, w));
            cr_assert_eq(kc_text_vectorization_vocabulary(tv2, NULL), nvocab);
            /* without the specials, the OOV idf is the plain mean of the given weights: only
             * the columns of known tokens can be compared with Keras's adapt */
            if (!tfidf || with_specials)
                check_output(name, tv2, (const char *const *)in, nin, want, rows, cols);
            free(w);
            kc_text_vectorization_free(tv2);
        }
        kc_text_vectorization_free(tv);
        free_strings(corpus, ncorpus);
        free_strings(in, nin);
        free_strings(vocab, nvocab);
        free(want);
        free(idf);
    }
}

Test(text_vectorization, errors) {
    kc_text_vectorization *tv;
    KC_EXPECT_ERR(kc_text_vectorization_new(&(kc_text_vectorization_opts){.output_mode = "one_hot"}, &tv),
                  KC_EINVAL, "output_mode must be one of \"int\", \"multi_hot\", \"count\", \"tf_idf\"");
    KC_EXPECT_ERR(kc_text_vectorization_new(&(kc_text_vectorization_opts){.standardize = "upper"}, &tv),
                  KC_EINVAL, "standardize");
    KC_EXPECT_ERR(kc_text_vectorization_new(&(kc_text_vectorization_opts){.split = "character"}, &tv),
                  KC_EINVAL, "split");
    KC_EXPECT_ERR(kc_text_vectorization_new(&(kc_text_vectorization_opts){.max_tokens = 1}, &tv),
                  KC_EINVAL, "max_tokens");
    KC_EXPECT_ERR(kc_text_vectorization_new(&(kc_text_vectorization_opts){.pad_to_max_tokens = 1}, &tv),
                  KC_EINVAL, "pad_to_max_tokens");
    KC_EXPECT_ERR(kc_text_vectorization_new(&(kc_text_vectorization_opts){
                      .output_mode = "count", .output_sequence_length = 3}, &tv),
                  KC_EINVAL, "output_sequence_length");
    KC_CHECK(kc_text_vectorization_new(NULL, &tv));
    void *out;
    int64_t cols;
    const char *texts[] = {"a b"};
    KC_EXPECT_ERR(kc_text_vectorization_call(tv, texts, 1, &out, &cols), KC_ESTATE, "vocabulary");
    const char *rep[] = {"a", "b", "a"};
    KC_EXPECT_ERR(kc_text_vectorization_set_vocabulary(tv, rep, 3, NULL), KC_EINVAL, "repeats \"a\"");
    const char *mask[] = {"a", ""};
    KC_EXPECT_ERR(kc_text_vectorization_set_vocabulary(tv, mask, 2, NULL), KC_EINVAL, "mask token");
    float w = 1;
    KC_EXPECT_ERR(kc_text_vectorization_set_vocabulary(tv, rep, 1, &w), KC_EINVAL, "idf_weights");
    KC_CHECK(kc_text_vectorization_set_vocabulary(tv, rep, 2, NULL));
    KC_CHECK(kc_text_vectorization_call(tv, texts, 1, &out, &cols));
    cr_assert_eq(cols, 2);
    cr_assert_eq(((int32_t *)out)[0], 2);
    cr_assert_eq(((int32_t *)out)[1], 3);
    free(out);
    kc_text_vectorization_free(tv);
    KC_CHECK(kc_text_vectorization_new(&(kc_text_vectorization_opts){.output_mode = "tf_idf",
                                                                     .max_tokens = 3}, &tv));
    KC_EXPECT_ERR(kc_text_vectorization_set_vocabulary(tv, rep, 2, NULL), KC_EINVAL, "idf_weights");
    float ws[] = {1, 2, 3};
    KC_EXPECT_ERR(kc_text_vectorization_set_vocabulary(tv, (const char *[]){"x", "y", "z"}, 3, ws),
                  KC_EINVAL, "max_tokens 3");
    kc_text_vectorization_free(tv);
}

/* ---- text_dataset_from_directory ---------------------------------------------------------- */

#define CORPUS "tests/fixtures/text/corpus"

static void expect_dir(const char *fixture, const kc_text_dir_opts *o) {
    kc_text_files tf;
    KC_CHECK(kc_text_dataset_from_directory(CORPUS, o, &tf));
    FILE *f = open_fixture(fixture);
    char word[32], line[512];
    cr_assert_eq(fscanf(f, "%31s", word), 1);
    cr_assert_str_eq(word, "classes");
    cr_assert(fgets(line, sizeof line, f));
    char *save, *tok = strtok_r(line, " \n", &save);
    int c = 0;
    for (; tok; tok = strtok_r(NULL, " \n", &save), c++) {
        cr_assert_lt(c, tf.num_classes);
        cr_assert_str_eq(tf.class_names[c], tok, "%s: class %d", fixture, c);
    }
    cr_assert_eq(c, tf.num_classes);
    int64_t n;
    cr_assert_eq(fscanf(f, "%31s %" SCNd64, word, &n), 2);
    cr_assert_eq(tf.count, n, "%s: %" PRId64 " files, Keras %" PRId64, fixture, tf.count, n);
    for (int64_t i = 0; i < n; i++) {
        int y;
        char rel[256], want[400];
        cr_assert_eq(fscanf(f, "%d %255s", &y, rel), 2);
        snprintf(want, sizeof want, CORPUS "/%s", rel);
        cr_assert_str_eq(tf.paths[i], want, "%s: file %" PRId64, fixture, i);
        cr_assert_eq(tf.labels[i], y, "%s: label %" PRId64, fixture, i);
        size_t size;
        uint8_t *text = slurp(tf.paths[i], &size);
        int64_t keep = o->max_length && (int64_t)size > o->max_length ? o->max_length : (int64_t)size;
        cr_assert_eq(tf.lengths[i], keep);
        cr_assert_eq(memcmp(tf.texts[i], text, (size_t)keep), 0);
        cr_assert_eq(tf.texts[i][keep], '\0');
        free(text);
    }
    fclose(f);
    kc_text_files_free(&tf);
}

Test(text_dataset_from_directory, keras_order) {
    expect_dir("dir_noshuffle.txt", &(kc_text_dir_opts){.no_shuffle = 1});
    cr_assert(strstr(kc_last_warning(), "empty"), "no warning for the empty class: %s",
              kc_last_warning());
    expect_dir("dir_seed42.txt", &(kc_text_dir_opts){.has_seed = 1, .seed = 42, .max_length = 4});
    expect_dir("dir_train.txt", &(kc_text_dir_opts){.has_seed = 1, .seed = 7,
                                                    .validation_split = 0.25, .subset = "training"});
    expect_dir("dir_val.txt", &(kc_text_dir_opts){.has_seed = 1, .seed = 7,
                                                  .validation_split = 0.25, .subset = "validation"});
    const char *names[] = {"pos", "neg"};
    expect_dir("dir_names.txt", &(kc_text_dir_opts){.no_shuffle = 1, .class_names = names,
                                                    .num_class_names = 2,
                                                    .label_mode = "categorical"});
}

Test(text_dataset_from_directory, labels_and_errors) {
    const char *names[] = {"pos", "neg"};
    kc_text_files tf;
    KC_CHECK(kc_text_dataset_from_directory(CORPUS, &(kc_text_dir_opts){
        .no_shuffle = 1, .class_names = names, .num_class_names = 2, .label_mode = "categorical"}, &tf));
    for (int64_t i = 0; i < tf.count; i++) {
        cr_assert_eq(tf.onehot[i * 2 + tf.labels[i]], 1.0f);
        cr_assert_eq(tf.onehot[i * 2 + 1 - tf.labels[i]], 0.0f);
        if (strstr(tf.paths[i], "sub/e.txt")) cr_assert_eq(tf.lengths[i], 0, "an empty file is \"\"");
    }
    kc_text_files_free(&tf);
    KC_EXPECT_ERR(kc_text_dataset_from_directory("/nonexistent/kerac", NULL, &tf), KC_EIO,
                  "/nonexistent/kerac");
    KC_EXPECT_ERR(kc_text_dataset_from_directory(CORPUS, &(kc_text_dir_opts){.label_mode = "binary"},
                                                 &tf), KC_EINVAL, "exactly 2 classes, found 4");
    KC_EXPECT_ERR(kc_text_dataset_from_directory(CORPUS, &(kc_text_dir_opts){.label_mode = "sparse"},
                                                 &tf), KC_EINVAL, "label_mode");
    KC_EXPECT_ERR(kc_text_dataset_from_directory(CORPUS, &(kc_text_dir_opts){
                      .validation_split = 0.2, .subset = "training"}, &tf), KC_EINVAL, "seed");
    KC_EXPECT_ERR(kc_text_dataset_from_directory(CORPUS, &(kc_text_dir_opts){.validation_split = 0.2},
                                                 &tf), KC_EINVAL, "subset");
    KC_EXPECT_ERR(kc_text_dataset_from_directory(CORPUS, &(kc_text_dir_opts){
                      .validation_split = 1.5, .subset = "training"}, &tf), KC_EINVAL,
                  "between 0 and 1");
    KC_EXPECT_ERR(kc_text_dataset_from_directory(CORPUS, &(kc_text_dir_opts){
                      .class_names = (const char *[]){"pos", "nope"}, .num_class_names = 2}, &tf),
                  KC_EINVAL, "\"nope\"");
    /* Keras's split keeps nothing for training when int(split * n) is 0 */
    KC_EXPECT_ERR(kc_text_dataset_from_directory(CORPUS, &(kc_text_dir_opts){
                      .has_seed = 1, .validation_split = 0.01, .subset = "training"}, &tf),
                  KC_EINVAL, "no text files found");
    /* a folder whose classes hold no .txt file at all */
    char *dir = tu_tmpdir(), p[512];
    snprintf(p, sizeof p, "%s/a", dir);
    mkdir(p, 0755);
    KC_EXPECT_ERR(kc_text_dataset_from_directory(dir, NULL, &tf), KC_EINVAL, "no text files found");
    cr_assert(strstr(kc_last_warning(), p), "%s", kc_last_warning());
    rm_tree(dir);
}
