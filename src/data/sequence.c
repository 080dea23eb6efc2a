/* sequence.c: ragged int sequences, keras.utils.pad_sequences, NumPy's legacy MT19937 shuffle,
 * and keras.datasets.imdb / reuters (load_data, get_word_index): located, cached and downloaded
 * like MNIST (datasets.c), read through npy.c. */
#include "text_internal.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KERAS_DATASETS_URL "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

void kc_sequences_free(kc_sequences *s) {
    if (!s) return;
    free(s->offsets);
    free(s->values);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

static kc_status check_sequences(const char *fn, const kc_sequences *s) {
    if (!s || s->count < 0 || (s->count && !s->offsets))
        return kc_err(KC_EINVAL, "%s: sequences must have count >= 0 and offsets", fn);
    if (s->count && s->offsets[0] != 0)
        return kc_err(KC_EINVAL, "%s: offsets[0] must be 0, found %" PRId64, fn, s->offsets[0]);
    for (int64_t i = 0; i < s->count; i++)
        if (s->offsets[i + 1] < s->offsets[i])
            return kc_err(KC_EINVAL, "%s: offsets decrease at sequence %" PRId64, fn, i);
    if (s->count && s->offsets[s->count] > 0 && !s->values)
        return kc_err(KC_EINVAL, "%s: sequences without values", fn);
    return KC_OK;
}

/* ---- pad_sequences -------------------------------------------------------------------------- */

static kc_status pre_or_post(const char *name, const char *v, int *post) {
    if (!v || !strcmp(v, "pre")) *post = 0;
    else if (!strcmp(v, "post")) *post = 1;
    else
        return kc_err(KC_EINVAL, "kc_pad_sequences: %s must be \"pre\" or \"post\", found \"%s\"",
                      name, v);
    return KC_OK;
}

kc_status kc_pad_sequences(const kc_sequences *seqs, const kc_pad_opts *opts, int32_t **out,
                           int64_t *out_maxlen) {
    static const kc_pad_opts defaults = {0};
    if (!out || !out_maxlen) return kc_err(KC_EINVAL, "kc_pad_sequences: NULL output");
    *out = NULL;
    *out_maxlen = 0;
    if (!opts) opts = &defaults;
    int pad_post = 0, trunc_post = 0;
    kc_status st = check_sequences("kc_pad_sequences", seqs);
    if (!st) st = pre_or_post("padding", opts->padding, &pad_post);
    if (!st) st = pre_or_post("truncating", opts->truncating, &trunc_post);
    if (st) return st;
    if (opts->maxlen < 0)
        return kc_err(KC_EINVAL, "kc_pad_sequences: maxlen must be >= 0 (0: the longest), found "
                      "%" PRId64, opts->maxlen);
    int64_t n = seqs->count, maxlen = opts->maxlen;
    if (!maxlen) {
        if (!n) return kc_err(KC_EINVAL, "kc_pad_sequences: no sequences and no maxlen");
        for (int64_t i = 0; i < n; i++) {
            int64_t len = seqs->offsets[i + 1] - seqs->offsets[i];
            if (len > maxlen) maxlen = len;
        }
    }
    if (n && maxlen > (INT64_MAX / 4) / n)
        return kc_err(KC_EINVAL, "kc_pad_sequences: %" PRId64 " x %" PRId64 " is too large", n,
                      maxlen);
    size_t total = (size_t)(n * maxlen);
    int32_t *x = malloc((total ? total : 1) * sizeof *x);
    if (!x) return kc_err(KC_ENOMEM, "kc_pad_sequences: out of memory for %zu values", total);
    for (size_t i = 0; i < total; i++) x[i] = opts->value;
    for (int64_t i = 0; i < n; i++) {
        const int32_t *s = seqs->values + seqs->offsets[i];
        int64_t len = seqs->offsets[i + 1] - seqs->offsets[i], keep = len < maxlen ? len : maxlen;
        if (!keep) continue;
        const int32_t *from = trunc_post ? s : s + (len - keep);
        int32_t *to = x + i * maxlen + (pad_post ? 0 : maxlen - keep);
        memcpy(to, from, (size_t)keep * sizeof *x);
    }
    *out = x;
    *out_maxlen = maxlen;
    return KC_OK;
}

/* ---- NumPy's RandomState ---------------------------------------------------------------------- */

void kc_mt19937_seed(kc_mt19937 *s, uint32_t seed) {
    for (int i = 0; i < 624; i++) {
        s->mt[i] = seed;
        seed = 1812433253u * (seed ^ (seed >> 30)) + (uint32_t)i + 1u;
    }
    s->pos = 624;
}

uint32_t kc_mt19937_next32(kc_mt19937 *s) {
    if (s->pos >= 624) {
        for (int i = 0; i < 624; i++) {
            uint32_t y = (s->mt[i] & 0x80000000u) | (s->mt[(i + 1) % 624] & 0x7fffffffu);
            s->mt[i] = s->mt[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        s->pos = 0;
    }
    uint32_t y = s->mt[s->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* NumPy's random_interval: a value in [0, max] by masked rejection */
static uint64_t random_interval(kc_mt19937 *s, uint64_t max) {
    if (!max) return 0;
    uint64_t mask = max, v;
    for (int sh = 1; sh <= 32; sh *= 2) mask |= mask >> sh;
    if (max <= 0xffffffffu) {
        while ((v = (kc_mt19937_next32(s) & mask)) > max) {}
    } else {
        do {
            uint64_t hi = kc_mt19937_next32(s), lo = kc_mt19937_next32(s);
            v = ((hi << 32) | lo) & mask;
        } while (v > max);
    }
    return v;
}

/* RandomState.shuffle(x), x a sequence of n */
static void numpy_shuffle(kc_mt19937 *s, int64_t *x, int64_t n) {
    for (int64_t i = n - 1; i >= 1; i--) {
        int64_t j = (int64_t)random_interval(s, (uint64_t)i), t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

void kc_numpy_shuffled_range(uint32_t seed, int64_t *perm, int64_t n) {
    kc_mt19937 s;
    kc_mt19937_seed(&s, seed);
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    numpy_shuffle(&s, perm, n);
}

/* ---- locating Keras's files ----------------------------------------------------------------- */


kc_status kc_keras_data_file(const char *dir, const char *sub, const char *fname,
                             const char *base_url, const char *hash, char *out, size_t out_size) {
    if (dir) {
        struct stat info;
        if (stat(dir, &info) != 0)
            return kc_err(KC_EIO, "%s: cannot use directory %s: %s", fname, dir, strerror(errno));
        if (!S_ISDIR(info.st_mode)) return kc_err(KC_EIO, "%s: %s is not a directory", fname, dir);
        if (snprintf(out, out_size, "%s/%s", dir, fname) >= (int)out_size)
            return kc_err(KC_EINVAL, "path too long: %s/%s", dir, fname);
        if (access(out, F_OK) != 0) return kc_err(KC_EIO, "%s does not exist", out);
        return KC_OK;
    }
    const char *data = getenv("KERAC_DATA");
    if (data && data[0]) {
        if (snprintf(out, out_size, "%s/%s/%s", data, sub, fname) >= (int)out_size)
            return kc_err(KC_EINVAL, "%s: $KERAC_DATA is too long", fname);
        if (access(out, F_OK) == 0) return KC_OK;
    }
    char cache[PATH_MAX];
    kc_status st = kc_cache_dir(sub, fname, cache);
    if (st) return st;
    if (snprintf(out, out_size, "%s/%s", cache, fname) >= (int)out_size)
        return kc_err(KC_EINVAL, "%s: cache path too long", fname);
    if (access(out, F_OK) == 0) return KC_OK;
    if (!base_url) base_url = getenv("KERAC_KERAS_DATASETS_URL");
    if (!base_url || !base_url[0]) base_url = KERAS_DATASETS_URL;
    char url[PATH_MAX + 256];
    const char *sep = base_url[strlen(base_url) - 1] == '/' ? "" : "/";
    if (snprintf(url, sizeof url, "%s%s%s", base_url, sep, fname) >= (int)sizeof url)
        return kc_err(KC_EINVAL, "%s: download URL too long", fname);
    st = kc_make_dirs(cache);
    if (!st) st = kc_download_verified(url, hash, out);
    return st;
}

/* ---- load_data ------------------------------------------------------------------------------ */

typedef struct {
    int64_t n, cap;
    int64_t *offsets;
    int32_t *values;
    int64_t nv, capv;
    int32_t *labels;
} seq_builder;

static kc_status sb_init(seq_builder *b, int64_t n_hint, int64_t v_hint) {
    memset(b, 0, sizeof *b);
    b->cap = n_hint + 1;
    b->capv = v_hint + 1;
    b->offsets = malloc((size_t)(b->cap + 1) * sizeof(int64_t));
    b->labels = malloc((size_t)b->cap * sizeof(int32_t));
    b->values = malloc((size_t)b->capv * sizeof(int32_t));
    if (!b->offsets || !b->labels || !b->values) return kc_err(KC_ENOMEM, "out of memory");
    b->offsets[0] = 0;
    return KC_OK;
}

static void sb_free(seq_builder *b) {
    free(b->offsets);
    free(b->values);
    free(b->labels);
    memset(b, 0, sizeof *b);
}

/* fills exactly: every caller sized the builder for the most it appends */
static void sb_add(seq_builder *b, const int32_t *v, int64_t len, int32_t label) {
    memcpy(b->values + b->nv, v, (size_t)len * sizeof(int32_t));
    b->nv += len;
    b->labels[b->n++] = label;
    b->offsets[b->n] = b->nv;
}

static void sb_to_sequences(seq_builder *b, int64_t from, int64_t to, kc_sequences *out,
                            kc_status *st) {
    if (*st) return;
    int64_t n = to - from, base = b->offsets[from], nv = b->offsets[to] - base;
    out->count = n;
    out->offsets = malloc((size_t)(n + 1) * sizeof(int64_t));
    out->values = malloc((size_t)(nv ? nv : 1) * sizeof(int32_t));
    out->labels = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (!out->offsets || !out->values || !out->labels) {
        kc_sequences_free(out);
        *st = kc_err(KC_ENOMEM, "out of memory");
        return;
    }
    for (int64_t i = 0; i <= n; i++) out->offsets[i] = b->offsets[from + i] - base;
    if (nv) memcpy(out->values, b->values + base, (size_t)nv * sizeof(int32_t));
    if (n) memcpy(out->labels, b->labels + from, (size_t)n * sizeof(int32_t));
}

typedef struct {
    const kc_sequences *x;
    const int32_t *y;
    int64_t count;
} split_in;

/* Keras's load_data after reading: shuffle each part (one RandomState, in order), add
 * start_char and index_from, drop sequences not shorter than maxlen, map words outside
 * [skip_top, num_words) to oov_char (or drop them). The result is one builder whose first
 * *n_first sequences came from the first part. */
static kc_status transform(const char *name, const kc_text_dataset_opts *o, const split_in *parts,
                           int nparts, int each_part_kept, seq_builder *out, int64_t *n_first) {
    uint32_t seed = o->has_seed ? o->seed : 113;
    int has_start = o->has_chars ? o->start_char >= 0 : 1;
    int has_oov = o->has_chars ? o->oov_char >= 0 : 1;
    int64_t start_char = o->has_chars ? o->start_char : 1, oov_char = o->has_chars ? o->oov_char : 2;
    int64_t index_from = o->has_chars ? o->index_from : 3;
    int64_t ntot = 0, vtot = 0;
    for (int p = 0; p < nparts; p++) {
        ntot += parts[p].count;
        vtot += parts[p].x->offsets[parts[p].count] + parts[p].count;
    }
    seq_builder b;
    kc_status st = sb_init(&b, ntot, vtot);
    if (st) {
        sb_free(&b);
        return st;
    }
    kc_mt19937 rng;
    kc_mt19937_seed(&rng, seed);
    int32_t *tmp = malloc((size_t)(vtot + 1) * sizeof(int32_t));
    int64_t *perm = malloc((size_t)(ntot + 1) * sizeof(int64_t));
    if (!tmp || !perm) st = kc_err(KC_ENOMEM, "%s: out of memory", name);
    for (int p = 0; p < nparts && !st; p++) {
        const split_in *s = &parts[p];
        for (int64_t i = 0; i < s->count; i++) perm[i] = i;
        numpy_shuffle(&rng, perm, s->count);
        int64_t kept_here = 0;
        for (int64_t k = 0; k < s->count && !st; k++) {
            int64_t i = perm[k], len = 0;
            const int32_t *x = s->x->values + s->x->offsets[i];
            int64_t xl = s->x->offsets[i + 1] - s->x->offsets[i];
            if (has_start) tmp[len++] = (int32_t)start_char;
            for (int64_t j = 0; j < xl; j++) {
                int64_t w = (int64_t)x[j] + (has_start || index_from ? index_from : 0);
                if (w < INT32_MIN || w > INT32_MAX) {
                    st = kc_err(KC_EINVAL, "%s: word %d + index_from %" PRId64 " is out of int32 "
                                "range", name, x[j], index_from);
                    break;
                }
                tmp[len++] = (int32_t)w;
            }
            if (st) break;
            if (o->maxlen && len >= o->maxlen) continue;
            sb_add(&b, tmp, len, s->y[i]);
            kept_here++;
        }
        if (p == 0) *n_first = b.n;
        if (!st && each_part_kept && o->maxlen && !kept_here) /* Keras's imdb */
            st = kc_err(KC_EINVAL, "%s: after filtering for sequences shorter than maxlen=%d, no "
                        "sequence was kept. Increase maxlen.", name, o->maxlen);
    }
    free(tmp);
    free(perm);
    if (st) {
        sb_free(&b);
        return st;
    }
    int64_t num_words = o->num_words;
    if (!num_words) { /* Keras: max(max(x) for x in xs); words equal to it fall outside */
        if (!b.n) {
            sb_free(&b);
            return kc_err(KC_EINVAL, "%s: no sequence left to take num_words from (maxlen=%d)",
                          name, o->maxlen);
        }
        num_words = INT64_MIN;
        for (int64_t i = 0; i < b.n; i++) {
            if (b.offsets[i + 1] == b.offsets[i]) {
                sb_free(&b);
                return kc_err(KC_EINVAL, "%s: sequence %" PRId64 " is empty, so it has no largest "
                              "word for num_words=None (give num_words)", name, i);
            }
            for (int64_t j = b.offsets[i]; j < b.offsets[i + 1]; j++)
                if (b.values[j] > num_words) num_words = b.values[j];
        }
    }
    int64_t w_out = 0;
    for (int64_t i = 0; i < b.n; i++) {
        int64_t begin = b.offsets[i];
        b.offsets[i] = w_out;
        for (int64_t j = begin; j < b.offsets[i + 1]; j++) {
            int32_t w = b.values[j];
            if (o->skip_top <= w && w < num_words) b.values[w_out++] = w;
            else if (has_oov) b.values[w_out++] = (int32_t)oov_char;
        }
    }
    b.offsets[b.n] = w_out;
    b.nv = w_out;
    *out = b;
    return KC_OK;
}

static kc_status check_opts(const char *name, const kc_text_dataset_opts *o) {
    if (o->num_words < 0 || o->skip_top < 0 || o->maxlen < 0)
        return kc_err(KC_EINVAL, "%s: num_words, skip_top and maxlen must be >= 0", name);
    if (o->has_test_split && !(o->test_split >= 0 && o->test_split <= 1))
        return kc_err(KC_EINVAL, "%s: test_split must be in [0, 1], found %g", name, o->test_split);
    return KC_OK;
}

static kc_status read_part(const char *path, const uint8_t *zip, size_t zsize, const char *xname,
                           const char *yname, kc_sequences *x, int32_t **y) {
    int64_t nx, ny;
    kc_status st = kc_npz_member(path, zip, zsize, xname, NULL, x, &nx);
    if (!st) st = kc_npz_member(path, zip, zsize, yname, y, NULL, &ny);
    if (!st && ny != x->count)
        st = kc_err(KC_EFORMAT, "%s: %s holds %" PRId64 " sequences but %s %" PRId64 " labels",
                    path, xname, x->count, yname, ny);
    return st;
}

kc_status kc_imdb_load(const char *dir, const kc_text_dataset_opts *opts, kc_sequences *train,
                       kc_sequences *test) {
    static const kc_text_dataset_opts defaults = {0};
    if (!train || !test || train == test)
        return kc_err(KC_EINVAL, "kc_imdb_load: needs two distinct sequences to fill");
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (!opts) opts = &defaults;
    char path[PATH_MAX];
    kc_status st = check_opts("imdb", opts);
    if (!st) st = kc_keras_data_file(dir, "imdb", "imdb.npz", NULL,
                                     "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
                                     path, sizeof path);
    if (st) return st;
    kc_sequences xtr = {0}, xte = {0};
    int32_t *ytr = NULL, *yte = NULL;
    uint8_t *zip = NULL;
    size_t zsize = 0;
    st = kc_read_whole_file(path, KC_NPZ_MAX, &zip, &zsize);
    if (!st) st = read_part(path, zip, zsize, "x_train", "y_train", &xtr, &ytr);
    if (!st) st = read_part(path, zip, zsize, "x_test", "y_test", &xte, &yte);
    free(zip);
    seq_builder b = {0};
    int64_t n_first = 0;
    if (!st) {
        split_in parts[2] = {{&xtr, ytr, xtr.count}, {&xte, yte, xte.count}};
        st = transform("imdb", opts, parts, 2, 1, &b, &n_first);
    }
    sb_to_sequences(&b, 0, n_first, train, &st);
    sb_to_sequences(&b, n_first, b.n, test, &st);
    if (st) {
        kc_sequences_free(train);
        kc_sequences_free(test);
    }
    sb_free(&b);
    kc_sequences_free(&xtr);
    kc_sequences_free(&xte);
    free(ytr);
    free(yte);
    return st;
}

kc_status kc_reuters_load(const char *dir, const kc_text_dataset_opts *opts, kc_sequences *train,
                          kc_sequences *test) {
    static const kc_text_dataset_opts defaults = {0};
    if (!train || !test || train == test)
        return kc_err(KC_EINVAL, "kc_reuters_load: needs two distinct sequences to fill");
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (!opts) opts = &defaults;
    char path[PATH_MAX];
    kc_status st = check_opts("reuters", opts);
    if (!st) st = kc_keras_data_file(dir, "reuters", "reuters.npz", NULL,
                                     "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916",
                                     path, sizeof path);
    if (st) return st;
    kc_sequences xs = {0};
    int32_t *ys = NULL;
    uint8_t *zip = NULL;
    size_t zsize = 0;
    st = kc_read_whole_file(path, KC_NPZ_MAX, &zip, &zsize);
    if (!st) st = read_part(path, zip, zsize, "x", "y", &xs, &ys);
    free(zip);
    seq_builder b = {0};
    int64_t n_first = 0;
    if (!st) {
        split_in parts[1] = {{&xs, ys, xs.count}};
        st = transform("reuters", opts, parts, 1, 0, &b, &n_first);
    }
    double test_split = opts->has_test_split ? opts->test_split : 0.2;
    int64_t idx = st ? 0 : (int64_t)((double)b.n * (1.0 - test_split));
    sb_to_sequences(&b, 0, idx, train, &st);
    sb_to_sequences(&b, idx, b.n, test, &st);
    if (st) {
        kc_sequences_free(train);
        kc_sequences_free(test);
    }
    sb_free(&b);
    kc_sequences_free(&xs);
    free(ys);
    return st;
}

/* ---- get_word_index ------------------------------------------------------------------------- */

void kc_word_index_free(kc_word_index *wi) {
    if (!wi) return;
    for (int64_t i = 0; i < wi->count && wi->words; i++) free(wi->words[i]);
    free(wi->words);
    free(wi->indices);
    memset(wi, 0, sizeof *wi);
}

static kc_status word_index(const char *dir, const char *sub, const char *fname, const char *md5,
                            kc_word_index *out) {
    if (!out) return kc_err(KC_EINVAL, "word index: NULL output");
    memset(out, 0, sizeof *out);
    char path[PATH_MAX];
    kc_status st = kc_keras_data_file(dir, sub, fname, NULL, md5, path, sizeof path);
    uint8_t *text = NULL;
    size_t size;
    if (!st) st = kc_read_whole_file(path, (size_t)1 << 30, &text, &size);
    if (st) return st;
    cJSON *root = cJSON_ParseWithLength((const char *)text, size);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return kc_err(KC_EFORMAT, "%s: not a JSON object of words", path);
    }
    int64_t n = cJSON_GetArraySize(root);
    out->words = calloc((size_t)(n ? n : 1), sizeof(char *));
    out->indices = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (!out->words || !out->indices) st = kc_err(KC_ENOMEM, "%s: out of memory", path);
    const cJSON *e;
    int64_t i = 0;
    cJSON_ArrayForEach(e, root) {
        if (st) break;
        double v = cJSON_GetNumberValue(e);
        /* the range first: converting a double outside int32's range is undefined */
        if (!cJSON_IsNumber(e) || !(v >= INT32_MIN && v <= INT32_MAX) || v != (double)(int32_t)v) {
            st = kc_err(KC_EFORMAT, "%s: the index of \"%s\" is not an int32", path, e->string);
            break;
        }
        out->words[i] = strdup(e->string ? e->string : "");
        if (!out->words[i]) st = kc_err(KC_ENOMEM, "%s: out of memory", path);
        out->indices[i++] = (int32_t)v;
        out->count = i;
    }
    cJSON_Delete(root);
    if (st) kc_word_index_free(out);
    return st;
}

kc_status kc_imdb_word_index(const char *dir, kc_word_index *out) {
    return word_index(dir, "imdb", "imdb_word_index.json", "bfafd718b763782e994055a2d397834f", out);
}

kc_status kc_reuters_word_index(const char *dir, kc_word_index *out) {
    return word_index(dir, "reuters", "reuters_word_index.json",
                      "4d44cc38712099c9e383dc6e5f11a921", out);
}
