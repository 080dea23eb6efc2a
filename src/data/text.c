/* text.c: keras.layers.TextVectorization as a standalone object (standardize, split, ngrams,
 * a vocabulary from adapt or given, the int / multi_hot / count / tf_idf outputs) and
 * keras.utils.text_dataset_from_directory, in memory. */
#include "text_internal.h"
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- a hash set of byte strings -> index ---------------------------------------------------- */

typedef struct {
    const char *s; /* NULL: empty slot */
    size_t len;
    int64_t value;
    int64_t count, docs, last_doc; /* adapt's statistics */
} slot;

typedef struct {
    slot *slots;
    int64_t cap, n;
} strmap;

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static slot *map_find(const strmap *m, const char *s, size_t len) {
    if (!m->cap) return NULL;
    for (uint64_t i = hash_bytes(s, len) & (uint64_t)(m->cap - 1);; i = (i + 1) & (uint64_t)(m->cap - 1)) {
        slot *e = &m->slots[i];
        if (!e->s) return NULL;
        if (e->len == len && !memcmp(e->s, s, len)) return e;
    }
}

/* the slot of s, added (s must outlive the map) if new; NULL when out of memory */
static slot *map_put(strmap *m, const char *s, size_t len, int *added) {
    *added = 0;
    if ((m->n + 1) * 2 > m->cap) {
        int64_t cap = m->cap ? m->cap * 2 : 64;
        slot *ns = calloc((size_t)cap, sizeof *ns);
        if (!ns) return NULL;
        for (int64_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].s) continue;
            uint64_t j = hash_bytes(m->slots[i].s, m->slots[i].len) & (uint64_t)(cap - 1);
            while (ns[j].s) j = (j + 1) & (uint64_t)(cap - 1);
            ns[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = ns;
        m->cap = cap;
    }
    uint64_t i = hash_bytes(s, len) & (uint64_t)(m->cap - 1);
    while (m->slots[i].s) {
        if (m->slots[i].len == len && !memcmp(m->slots[i].s, s, len)) return &m->slots[i];
        i = (i + 1) & (uint64_t)(m->cap - 1);
    }
    m->slots[i] = (slot){.s = s, .len = len, .last_doc = -1};
    m->n++;
    *added = 1;
    return &m->slots[i];
}

static void map_free(strmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ---- the object ------------------------------------------------------------------------------ */

enum { STD_NONE, STD_LOWER, STD_STRIP, STD_LOWER_STRIP };
enum { MODE_INT, MODE_MULTI_HOT, MODE_COUNT, MODE_TF_IDF };

struct kc_text_vectorization {
    int64_t max_tokens, output_sequence_length;
    int standardize, split_ws, ngrams, mode, pad_to_max_tokens;
    char **vocab; /* get_vocabulary(): the special tokens, then the tokens */
    int64_t nvocab;
    float *idf;   /* tf_idf: depth weights */
    strmap lookup;
};

static const char *MASK = "", *OOV = "[UNK]";

static int token_start(const kc_text_vectorization *tv) { return tv->mode == MODE_INT ? 2 : 1; }

static int64_t depth(const kc_text_vectorization *tv) {
    return tv->pad_to_max_tokens ? tv->max_tokens : tv->nvocab;
}

static kc_status pick(const char *what, const char *v, const char *const *names, int n, int dflt,
                      int *out) {
    if (!v) {
        *out = dflt;
        return KC_OK;
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return KC_OK;
        }
    char list[256] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", i ? ", " : "", names[i]);
    return kc_err(KC_EINVAL, "TextVectorization: %s must be one of %s, found \"%s\"", what, list, v);
}

kc_status kc_text_vectorization_new(const kc_text_vectorization_opts *opts,
                                    kc_text_vectorization **out) {
    static const kc_text_vectorization_opts defaults = {0};
    static const char *const stds[] = {"none", "lower", "strip_punctuation",
                                       "lower_and_strip_punctuation"};
    static const char *const splits[] = {"none", "whitespace"};
    static const char *const modes[] = {"int", "multi_hot", "count", "tf_idf"};
    if (!out) return kc_err(KC_EINVAL, "kc_text_vectorization_new: NULL output");
    *out = NULL;
    if (!opts) opts = &defaults;
    int std, split, mode;
    kc_status st = pick("standardize", opts->standardize, stds, 4, STD_LOWER_STRIP, &std);
    if (!st) st = pick("split", opts->split, splits, 2, 1, &split);
    if (!st) st = pick("output_mode", opts->output_mode, modes, 4, MODE_INT, &mode);
    if (st) return st;
    if (opts->max_tokens < 0 || opts->max_tokens == 1)
        return kc_err(KC_EINVAL, "TextVectorization: max_tokens must be greater than 1 (0: None), "
                      "found %" PRId64, opts->max_tokens);
    if (opts->pad_to_max_tokens && !opts->max_tokens)
        return kc_err(KC_EINVAL, "TextVectorization: pad_to_max_tokens needs max_tokens");
    if (opts->ngrams < 0)
        return kc_err(KC_EINVAL, "TextVectorization: ngrams must be >= 0 (0: None), found %d",
                      opts->ngrams);
    if (opts->output_sequence_length < 0)
        return kc_err(KC_EINVAL, "TextVectorization: output_sequence_length must be >= 0 (0: None)");
    if (opts->output_sequence_length && mode != MODE_INT)
        return kc_err(KC_EINVAL, "TextVectorization: output_sequence_length must not be set if "
                      "output_mode is not \"int\" (it is \"%s\")", modes[mode]);
    kc_text_vectorization *tv = calloc(1, sizeof *tv);
    if (!tv) return kc_err(KC_ENOMEM, "TextVectorization: out of memory");
    tv->max_tokens = opts->max_tokens;
    tv->output_sequence_length = opts->output_sequence_length;
    tv->standardize = std;
    tv->split_ws = split;
    tv->ngrams = opts->ngrams;
    tv->mode = mode;
    tv->pad_to_max_tokens = opts->pad_to_max_tokens != 0;
    *out = tv;
    return KC_OK;
}

static void clear_vocab(kc_text_vectorization *tv) {
    for (int64_t i = 0; i < tv->nvocab; i++) free(tv->vocab[i]);
    free(tv->vocab);
    free(tv->idf);
    map_free(&tv->lookup);
    tv->vocab = NULL;
    tv->idf = NULL;
    tv->nvocab = 0;
}

void kc_text_vectorization_free(kc_text_vectorization *tv) {
    if (!tv) return;
    clear_vocab(tv);
    free(tv);
}

int64_t kc_text_vectorization_vocabulary(const kc_text_vectorization *tv,
                                         const char *const **tokens) {
    if (tokens) *tokens = tv ? (const char *const *)tv->vocab : NULL;
    return tv ? tv->nvocab : 0;
}

const float *kc_text_vectorization_idf_weights(const kc_text_vectorization *tv) {
    return tv && tv->mode == MODE_TF_IDF ? tv->idf : NULL;
}

kc_dtype kc_text_vectorization_output_dtype(const kc_text_vectorization *tv) {
    return tv && tv->mode == MODE_INT ? KC_INT32 : KC_FLOAT32;
}

void kc_text_vectorization_options(const kc_text_vectorization *tv, kc_text_vectorization_opts *o) {
    static const char *const stds[] = {"none", "lower", "strip_punctuation",
                                       "lower_and_strip_punctuation"};
    static const char *const modes[] = {"int", "multi_hot", "count", "tf_idf"};
    memset(o, 0, sizeof *o);
    o->max_tokens = tv->max_tokens;
    o->standardize = stds[tv->standardize];
    o->split = tv->split_ws ? "whitespace" : "none";
    o->ngrams = tv->ngrams;
    o->output_mode = modes[tv->mode];
    o->output_sequence_length = tv->output_sequence_length;
    o->pad_to_max_tokens = tv->pad_to_max_tokens;
}

/* ---- tokens ---------------------------------------------------------------------------------- */

/* Keras's r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']': every ASCII punctuation character */
static int is_punct(unsigned char c) {
    return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
           (c >= 0x7b && c <= 0x7e);
}

static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

typedef struct {
    char *buf;       /* the standardized text, then the joined n-grams */
    size_t len, cap;
    size_t *tok_off, *tok_len; /* tokens: offsets into buf */
    int64_t ntok, captok;
} tokens;

static void tokens_free(tokens *t) {
    free(t->buf);
    free(t->tok_off);
    free(t->tok_len);
}

static int add_token(tokens *t, size_t off, size_t len) {
    if (t->ntok == t->captok) {
        int64_t c = t->captok ? t->captok * 2 : 64;
        size_t *a = realloc(t->tok_off, (size_t)c * sizeof(size_t));
        if (!a) return -1;
        t->tok_off = a;
        size_t *b = realloc(t->tok_len, (size_t)c * sizeof(size_t));
        if (!b) return -1;
        t->tok_len = b;
        t->captok = c;
    }
    t->tok_off[t->ntok] = off;
    t->tok_len[t->ntok++] = len;
    return 0;
}

static int reserve(tokens *t, size_t need) {
    if (need <= t->cap) return 0;
    size_t c = t->cap ? t->cap : 256;
    while (c < need) c *= 2;
    char *nb = realloc(t->buf, c);
    if (!nb) return -1;
    t->buf = nb;
    t->cap = c;
    return 0;
}

/* standardize, split and n-grams of one text (Keras's _preprocess) */
static kc_status tokenize(const kc_text_vectorization *tv, const char *text, tokens *t) {
    size_t n = strlen(text);
    t->len = 0;
    t->ntok = 0;
    if (reserve(t, n + 1)) return kc_err(KC_ENOMEM, "TextVectorization: out of memory");
    int lower = tv->standardize == STD_LOWER || tv->standardize == STD_LOWER_STRIP;
    int strip = tv->standardize == STD_STRIP || tv->standardize == STD_LOWER_STRIP;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (strip && is_punct(c)) continue;
        t->buf[t->len++] = (char)(lower && c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    if (!tv->split_ws) {
        if (add_token(t, 0, t->len)) return kc_err(KC_ENOMEM, "TextVectorization: out of memory");
    } else {
        for (size_t i = 0; i < t->len;) {
            while (i < t->len && is_space((unsigned char)t->buf[i])) i++;
            size_t s = i;
            while (i < t->len && !is_space((unsigned char)t->buf[i])) i++;
            if (i > s && add_token(t, s, i - s))
                return kc_err(KC_ENOMEM, "TextVectorization: out of memory");
        }
    }
    if (tv->ngrams >= 2) { /* widths 1..ngrams, each width's n-grams in order */
        int64_t base = t->ntok;
        for (int w = 2; w <= tv->ngrams; w++)
            for (int64_t s = 0; s + w <= base; s++) {
                size_t len = 0;
                for (int k = 0; k < w; k++) len += t->tok_len[s + k] + (k ? 1 : 0);
                if (reserve(t, t->len + len + 1))
                    return kc_err(KC_ENOMEM, "TextVectorization: out of memory");
                size_t off = t->len;
                for (int k = 0; k < w; k++) {
                    if (k) t->buf[t->len++] = ' ';
                    memcpy(t->buf + t->len, t->buf + t->tok_off[s + k], t->tok_len[s + k]);
                    t->len += t->tok_len[s + k];
                }
                if (add_token(t, off, len))
                    return kc_err(KC_ENOMEM, "TextVectorization: out of memory");
            }
    }
    return KC_OK;
}

/* ---- the vocabulary ---------------------------------------------------------------------- */

/* vocab = specials + tokens (copied); builds the lookup */
static kc_status install(kc_text_vectorization *tv, char **toks, const size_t *lens, int64_t n) {
    int ts = token_start(tv);
    char **v = calloc((size_t)(n + ts), sizeof *v);
    if (!v) return kc_err(KC_ENOMEM, "TextVectorization: out of memory");
    kc_status st = KC_OK;
    if (tv->mode == MODE_INT) v[0] = strdup(MASK);
    v[ts - 1] = strdup(OOV);
    if (!v[0] || !v[ts - 1]) st = kc_err(KC_ENOMEM, "TextVectorization: out of memory");
    for (int64_t i = 0; i < n && !st; i++) {
        v[ts + i] = malloc(lens[i] + 1);
        if (!v[ts + i]) st = kc_err(KC_ENOMEM, "TextVectorization: out of memory");
        else {
            memcpy(v[ts + i], toks[i], lens[i]);
            v[ts + i][lens[i]] = '\0';
        }
    }
    strmap m = {0};
    for (int64_t i = 0; i < n && !st; i++) {
        int added;
        slot *e = map_put(&m, v[ts + i], lens[i], &added);
        if (!e) st = kc_err(KC_ENOMEM, "TextVectorization: out of memory");
        else if (!added) st = kc_err(KC_EINVAL, "TextVectorization: the vocabulary repeats \"%s\" "
                                     "(at %" PRId64 ")", v[ts + i], i + ts);
        else e->value = ts + i;
    }
    if (st) {
        map_free(&m);
        for (int64_t i = 0; i < n + ts; i++) free(v[i]);
        free(v);
        return st;
    }
    clear_vocab(tv);
    tv->vocab = v;
    tv->nvocab = n + ts;
    tv->lookup = m;
    return KC_OK;
}

typedef struct {
    const slot *e;
} ranked;

static int by_count_then_bytes(const void *a, const void *b) { /* highest first */
    const slot *x = ((const ranked *)a)->e, *y = ((const ranked *)b)->e;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c) return c > 0 ? -1 : 1;
    return x->len == y->len ? 0 : x->len > y->len ? -1 : 1;
}

kc_status kc_text_vectorization_adapt(kc_text_vectorization *tv, const char *const *texts,
                                      int64_t n) {
    if (!tv || (n && !texts) || n < 0)
        return kc_err(KC_EINVAL, "kc_text_vectorization_adapt: needs the object and n texts");
    for (int64_t i = 0; i < n; i++)
        if (!texts[i]) return kc_err(KC_EINVAL, "TextVectorization.adapt: text %" PRId64 " is NULL", i);
    strmap counts = {0};
    tokens t = {0};
    /* tokens are copied into one arena per text so the map's keys stay valid */
    char **arenas = calloc((size_t)(n ? n : 1), sizeof *arenas);
    kc_status st = arenas ? KC_OK : kc_err(KC_ENOMEM, "TextVectorization: out of memory");
    for (int64_t d = 0; d < n && !st; d++) {
        if ((st = tokenize(tv, texts[d], &t))) break;
        arenas[d] = malloc(t.len + 1);
        if (!arenas[d]) {
            st = kc_err(KC_ENOMEM, "TextVectorization: out of memory");
            break;
        }
        memcpy(arenas[d], t.buf, t.len);
        for (int64_t k = 0; k < t.ntok; k++) {
            const char *s = arenas[d] + t.tok_off[k];
            size_t len = t.tok_len[k];
            if (!len || (len == 5 && !memcmp(s, OOV, 5))) continue; /* the special tokens */
            int added;
            slot *e = map_put(&counts, s, len, &added);
            if (!e) {
                st = kc_err(KC_ENOMEM, "TextVectorization: out of memory");
                break;
            }
            e->count++;
            if (e->last_doc != d) e->docs++, e->last_doc = d;
        }
    }
    ranked *order = NULL;
    char **toks = NULL;
    size_t *lens = NULL;
    int64_t keep = 0;
    if (!st) {
        order = malloc((size_t)(counts.n ? counts.n : 1) * sizeof *order);
        toks = malloc((size_t)(counts.n ? counts.n : 1) * sizeof *toks);
        lens = malloc((size_t)(counts.n ? counts.n : 1) * sizeof *lens);
        if (!order || !toks || !lens) st = kc_err(KC_ENOMEM, "TextVectorization: out of memory");
    }
    if (!st) {
        for (int64_t i = 0, k = 0; i < counts.cap; i++)
            if (counts.slots[i].s) order[k++].e = &counts.slots[i];
        qsort(order, (size_t)counts.n, sizeof *order, by_count_then_bytes);
        keep = counts.n;
        if (tv->max_tokens && keep > tv->max_tokens - token_start(tv))
            keep = tv->max_tokens - token_start(tv);
        if (keep < 0) keep = 0;
        for (int64_t i = 0; i < keep; i++) toks[i] = (char *)order[i].e->s, lens[i] = order[i].e->len;
        st = install(tv, toks, lens, keep);
    }
    if (!st && tv->mode == MODE_TF_IDF) {
        int ts = token_start(tv);
        int64_t dep = depth(tv);
        float *idf = calloc((size_t)(dep ? dep : 1), sizeof *idf);
        if (!idf) st = kc_err(KC_ENOMEM, "TextVectorization: out of memory");
        else {
            double sum = 0;
            for (int64_t i = 0; i < keep; i++) {
                idf[ts + i] = (float)log(1.0 + (double)n / (1.0 + (double)order[i].e->docs));
                sum += idf[ts + i];
            }
            /* the OOV weight: the mean of the learned weights (Keras: tf.reduce_mean) */
            for (int i = 0; i < ts; i++) idf[i] = keep ? (float)(sum / (double)keep) : 0.0f;
            tv->idf = idf;
        }
    }
    free(order);
    free(toks);
    free(lens);
    map_free(&counts);
    for (int64_t d = 0; arenas && d < n; d++) free(arenas[d]);
    free(arenas);
    tokens_free(&t);
    return st;
}

kc_status kc_text_vectorization_set_vocabulary(kc_text_vectorization *tv,
                                               const char *const *vocab, int64_t n,
                                               const float *idf_weights) {
    if (!tv || n < 0 || (n && !vocab))
        return kc_err(KC_EINVAL, "kc_text_vectorization_set_vocabulary: needs the object and n "
                      "tokens");
    if (!n) return kc_err(KC_EINVAL, "TextVectorization: cannot set an empty vocabulary");
    if (tv->mode == MODE_TF_IDF && !idf_weights)
        return kc_err(KC_EINVAL, "TextVectorization: idf_weights must be set if output_mode is "
                      "\"tf_idf\"");
    if (tv->mode != MODE_TF_IDF && idf_weights)
        return kc_err(KC_EINVAL, "TextVectorization: idf_weights should only be set if output_mode "
                      "is \"tf_idf\"");
    for (int64_t i = 0; i < n; i++)
        if (!vocab[i]) return kc_err(KC_EINVAL, "TextVectorization: token %" PRId64 " is NULL", i);
    int ts = token_start(tv);
    int specials = n >= ts && (tv->mode != MODE_INT || !strcmp(vocab[0], MASK)) &&
                   !strcmp(vocab[ts - 1], OOV);
    int64_t first = specials ? ts : 0, ntok = n - first;
    for (int64_t i = first; i < n; i++)
        if (!vocab[i][0])
            return kc_err(KC_EINVAL, "TextVectorization: found the reserved mask token \"\" at "
                          "vocabulary index %" PRId64 "; leave the mask and OOV tokens out, or "
                          "give them first, in this order: %s\"[UNK]\"", i,
                          tv->mode == MODE_INT ? "\"\", " : "");
    if (tv->max_tokens && ts + ntok > tv->max_tokens)
        return kc_err(KC_EINVAL, "TextVectorization: attempted to set a vocabulary larger than the "
                      "maximum vocab size: %" PRId64 " > max_tokens %" PRId64, ts + ntok,
                      tv->max_tokens);
    size_t *lens = malloc((size_t)(ntok ? ntok : 1) * sizeof *lens);
    if (!lens) return kc_err(KC_ENOMEM, "TextVectorization: out of memory");
    for (int64_t i = 0; i < ntok; i++) lens[i] = strlen(vocab[first + i]);
    float *idf = NULL;
    if (tv->mode == MODE_TF_IDF) {
        int64_t dep = tv->pad_to_max_tokens ? tv->max_tokens : ts + ntok;
        idf = calloc((size_t)dep, sizeof *idf);
        if (!idf) {
            free(lens);
            return kc_err(KC_ENOMEM, "TextVectorization: out of memory");
        }
        int64_t front = specials ? 0 : ts;
        double sum = 0;
        for (int64_t i = 0; i < n; i++) sum += idf_weights[i];
        for (int64_t i = 0; i < front; i++) idf[i] = (float)(sum / (double)n); /* np.average */
        for (int64_t i = 0; i < n; i++) idf[front + i] = idf_weights[i];
    }
    kc_status st = install(tv, (char **)(vocab + first), lens, ntok);
    free(lens);
    if (st) {
        free(idf);
        return st;
    }
    tv->idf = idf;
    return KC_OK;
}

/* ---- calling it -------------------------------------------------------------------------- */

kc_status kc_text_vectorization_call(const kc_text_vectorization *tv, const char *const *texts,
                                     int64_t n, void **out, int64_t *out_cols) {
    if (!tv || !out || !out_cols || n < 0 || (n && !texts))
        return kc_err(KC_EINVAL, "kc_text_vectorization_call: needs the object, n texts and outputs");
    *out = NULL;
    *out_cols = 0;
    if (!tv->nvocab)
        return kc_err(KC_ESTATE, "TextVectorization: set its vocabulary (adapt or "
                      "set_vocabulary) before calling it");
    for (int64_t i = 0; i < n; i++)
        if (!texts[i]) return kc_err(KC_EINVAL, "TextVectorization: text %" PRId64 " is NULL", i);
    int oov = tv->mode == MODE_INT ? 1 : 0;
    tokens t = {0};
    kc_status st = KC_OK;
    int64_t cols = tv->mode == MODE_INT ? tv->output_sequence_length : depth(tv);
    if (tv->mode == MODE_INT && !cols) /* None: the longest row */
        for (int64_t i = 0; i < n && !st; i++) {
            st = tokenize(tv, texts[i], &t);
            if (t.ntok > cols) cols = t.ntok;
        }
    if (!st && n && cols > (INT64_MAX / 8) / n) st = kc_err(KC_EINVAL, "TextVectorization: output too large");
    size_t total = st ? 0 : (size_t)(n * cols);
    void *buf = st ? NULL : calloc(total ? total : 1, 4);
    if (!st && !buf) st = kc_err(KC_ENOMEM, "TextVectorization: out of memory for the output");
    for (int64_t i = 0; i < n && !st; i++) {
        if ((st = tokenize(tv, texts[i], &t))) break;
        for (int64_t k = 0; k < t.ntok; k++) {
            size_t len = t.tok_len[k];
            int64_t idx;
            if (!len) idx = -1; /* the mask token: 0 in int mode, dropped otherwise */
            else {
                const slot *e = map_find(&tv->lookup, t.buf + t.tok_off[k], len);
                idx = e ? e->value : oov;
            }
            if (tv->mode == MODE_INT) {
                if (k < cols) ((int32_t *)buf)[i * cols + k] = idx < 0 ? 0 : (int32_t)idx;
            } else if (idx >= 0 && idx < cols) {
                float *row = (float *)buf + i * cols;
                row[idx] = tv->mode == MODE_MULTI_HOT ? 1.0f : row[idx] + 1.0f;
            }
        }
        if (tv->mode == MODE_TF_IDF)
            for (int64_t j = 0; j < cols; j++) ((float *)buf)[i * cols + j] *= tv->idf[j];
    }
    tokens_free(&t);
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_cols = cols;
    return KC_OK;
}

/* ---- text_dataset_from_directory ------------------------------------------------------------ */

typedef struct {
    char **items;
    int64_t n, cap;
} strlist;

static int sl_add(strlist *l, char *s) {
    if (!s) return -1;
    if (l->n == l->cap) {
        int64_t c = l->cap ? l->cap * 2 : 16;
        char **a = realloc(l->items, (size_t)c * sizeof *a);
        if (!a) {
            free(s);
            return -1;
        }
        l->items = a;
        l->cap = c;
    }
    l->items[l->n++] = s;
    return 0;
}

static void sl_free(strlist *l) {
    for (int64_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    int slash = la && a[la - 1] != '/';
    char *s = malloc(la + lb + 2);
    if (s) {
        memcpy(s, a, la);
        if (slash) s[la] = '/';
        memcpy(s + la + slash, b, lb + 1);
    }
    return s;
}

static int ends_txt(const char *name) {
    size_t n = strlen(name);
    return n >= 4 && name[n - 4] == '.' && (name[n - 3] | 32) == 't' && (name[n - 2] | 32) == 'x' &&
           (name[n - 1] | 32) == 't';
}

/* os.walk(top, followlinks): every folder reached (top first), unsorted */
static kc_status walk_dirs(const char *top, int follow, strlist *roots) {
    if (sl_add(roots, strdup(top))) return kc_err(KC_ENOMEM, "out of memory");
    for (int64_t r = 0; r < roots->n; r++) { /* breadth-first: no recursion */
        DIR *d = opendir(roots->items[r]);
        if (!d) continue; /* os.walk skips what it cannot list */
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            if (e->d_type == DT_REG) continue; /* a plain file: no stat needed to know */
            char *p = join(roots->items[r], e->d_name);
            if (!p) {
                closedir(d);
                return kc_err(KC_ENOMEM, "out of memory");
            }
            struct stat st, lst;
            int is_dir = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
            int is_link = lstat(p, &lst) == 0 && S_ISLNK(lst.st_mode);
            if (is_dir && (follow || !is_link)) {
                if (roots->n > 1000000) {
                    free(p);
                    closedir(d);
                    return kc_err(KC_EINVAL, "%s: more than a million folders (a link cycle?)", top);
                }
                if (sl_add(roots, p)) {
                    closedir(d);
                    return kc_err(KC_ENOMEM, "out of memory");
                }
            } else {
                free(p);
            }
        }
        closedir(d);
    }
    return KC_OK;
}

/* the .txt files of one class folder, in Keras's order: folders sorted by path, files by name */
static kc_status class_files(const char *dirpath, int follow, int (*allowed)(const char *name),
                             strlist *files) {
    strlist roots = {0};
    kc_status st = walk_dirs(dirpath, follow, &roots);
    if (!st && roots.n > 2) qsort(roots.items + 1, (size_t)(roots.n - 1), sizeof(char *), cmp_str);
    for (int64_t r = 0; r < roots.n && !st; r++) {
        DIR *d = opendir(roots.items[r]);
        if (!d) continue;
        strlist names = {0};
        struct dirent *e;
        while ((e = readdir(d)) && !st) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !allowed(e->d_name)) continue;
            if (e->d_type != DT_REG) { /* a link or an unknown type: stat says */
                char *p = join(roots.items[r], e->d_name);
                struct stat sb;
                int is_dir = p && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
                free(p);
                if (is_dir) continue;
            }
            if (sl_add(&names, strdup(e->d_name))) st = kc_err(KC_ENOMEM, "out of memory");
        }
        closedir(d);
        if (!st && names.n > 1) qsort(names.items, (size_t)names.n, sizeof(char *), cmp_str);
        for (int64_t i = 0; i < names.n && !st; i++)
            if (sl_add(files, join(roots.items[r], names.items[i])))
                st = kc_err(KC_ENOMEM, "out of memory");
        sl_free(&names);
    }
    sl_free(&roots);
    return st;
}

void kc_text_files_free(kc_text_files *tf) {
    if (!tf) return;
    for (int64_t i = 0; i < tf->count; i++) {
        if (tf->texts) free(tf->texts[i]);
        if (tf->paths) free(tf->paths[i]);
    }
    for (int i = 0; i < tf->num_classes && tf->class_names; i++) free(tf->class_names[i]);
    free(tf->texts);
    free(tf->paths);
    free(tf->lengths);
    free(tf->labels);
    free(tf->onehot);
    free(tf->class_names);
    memset(tf, 0, sizeof *tf);
}

kc_status kc_index_directory(const char *directory, const char *what,
                             const char *const *class_names, int num_class_names,
                             int (*allowed)(const char *name), int follow, int shuffle,
                             uint32_t seed, double split, int subset, kc_dir_index *out) {
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(directory, &sb) != 0)
        return kc_err(KC_EIO, "%s: cannot use directory %s: %s", what, directory, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return kc_err(KC_EIO, "%s: %s is not a directory", what, directory);
    strlist subdirs = {0}, files = {0};
    int32_t *labels = NULL;
    int64_t *perm = NULL;
    kc_status st = KC_OK;
    DIR *d = opendir(directory);
    if (!d) return kc_err(KC_EIO, "%s: cannot list: %s", directory, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) && !st) {
        if (e->d_name[0] == '.') continue; /* ., .. and hidden folders */
        char *p = join(directory, e->d_name);
        struct stat s2;
        int is_dir = p && stat(p, &s2) == 0 && S_ISDIR(s2.st_mode);
        free(p);
        if (is_dir && sl_add(&subdirs, strdup(e->d_name))) st = kc_err(KC_ENOMEM, "out of memory");
    }
    closedir(d);
    if (!st && subdirs.n > 1) qsort(subdirs.items, (size_t)subdirs.n, sizeof(char *), cmp_str);
    if (!st && class_names) {
        strlist given = {0};
        for (int i = 0; i < num_class_names && !st; i++) {
            const char *c = class_names[i];
            int found = 0;
            for (int64_t j = 0; c && j < subdirs.n && !found; j++) found = !strcmp(subdirs.items[j], c);
            if (!found)
                st = kc_err(KC_EINVAL, "%s: class_names[%d] \"%s\" is not a folder of %s", what, i,
                            c ? c : "(null)", directory);
            else if (sl_add(&given, strdup(c))) st = kc_err(KC_ENOMEM, "out of memory");
        }
        sl_free(&subdirs);
        subdirs = given;
    }
    strlist lab = {0}; /* labels as they are collected */
    for (int64_t c = 0; c < subdirs.n && !st; c++) {
        char *dirpath = join(directory, subdirs.items[c]);
        if (!dirpath) {
            st = kc_err(KC_ENOMEM, "out of memory");
            break;
        }
        int64_t before = files.n;
        st = class_files(dirpath, follow, allowed, &files);
        if (!st && files.n == before) kc_warn("%s: class folder %s holds no file of an allowed format", what, dirpath);
        free(dirpath);
        for (int64_t i = before; i < files.n && !st; i++) {
            char *tag = malloc(sizeof(int64_t));
            if (tag) memcpy(tag, &c, sizeof c);
            if (sl_add(&lab, tag)) st = kc_err(KC_ENOMEM, "out of memory");
        }
    }
    int64_t n = files.n;
    if (!st) {
        labels = malloc((size_t)(n ? n : 1) * sizeof *labels);
        perm = malloc((size_t)(n ? n : 1) * sizeof *perm);
        if (!labels || !perm) st = kc_err(KC_ENOMEM, "out of memory");
    }
    if (!st) {
        for (int64_t i = 0; i < n; i++) {
            int64_t c;
            memcpy(&c, lab.items[i], sizeof c);
            labels[i] = (int32_t)c;
            perm[i] = i;
        }
        if (shuffle) kc_numpy_shuffled_range(seed, perm, n);
    }
    sl_free(&lab);
    int64_t from = 0, to = n;
    if (!st && split) { /* Keras: samples[:-k] and samples[-k:], with k = int(split * n) */
        int64_t k = (int64_t)(split * (double)n);
        if (subset == 0) to = k ? n - k : 0;
        else from = k ? n - k : 0;
    }
    out->total = n;
    int64_t m = to - from;
    if (!st) {
        out->paths = calloc((size_t)(m ? m : 1), sizeof(char *));
        out->labels = malloc((size_t)(m ? m : 1) * sizeof(int32_t));
        out->class_names = calloc((size_t)(subdirs.n ? subdirs.n : 1), sizeof(char *));
        if (!out->paths || !out->labels || !out->class_names) st = kc_err(KC_ENOMEM, "out of memory");
    }
    if (!st) {
        out->count = m;
        out->num_classes = (int)subdirs.n;
        for (int64_t c = 0; c < subdirs.n; c++) out->class_names[c] = subdirs.items[c];
        free(subdirs.items);
        subdirs = (strlist){0};
        for (int64_t i = 0; i < m; i++) {
            int64_t src = perm[from + i];
            out->paths[i] = files.items[src];
            files.items[src] = NULL;
            out->labels[i] = labels[src];
        }
    }
    if (st) kc_dir_index_free(out);
    sl_free(&subdirs);
    sl_free(&files);
    free(labels);
    free(perm);
    return st;
}

void kc_dir_index_free(kc_dir_index *ix) {
    if (!ix) return;
    for (int64_t i = 0; ix->paths && i < ix->count; i++) free(ix->paths[i]);
    for (int i = 0; ix->class_names && i < ix->num_classes; i++) free(ix->class_names[i]);
    free(ix->paths);
    free(ix->labels);
    free(ix->class_names);
    memset(ix, 0, sizeof *ix);
}

kc_status kc_text_dataset_from_directory(const char *directory, const kc_text_dir_opts *opts,
                                         kc_text_files *out) {
    static const kc_text_dir_opts defaults = {0};
    static const char *const label_modes[] = {"int", "categorical", "binary"};
    if (!directory || !out)
        return kc_err(KC_EINVAL, "kc_text_dataset_from_directory: needs a directory and an output");
    memset(out, 0, sizeof *out);
    if (!opts) opts = &defaults;
    int lm = 0;
    for (; opts->label_mode && lm < 3 && strcmp(opts->label_mode, label_modes[lm]); lm++) {}
    if (lm == 3)
        return kc_err(KC_EINVAL, "text_dataset_from_directory: label_mode must be \"int\", "
                      "\"categorical\" or \"binary\", found \"%s\"", opts->label_mode);
    double split = opts->validation_split;
    int shuffle = !opts->no_shuffle, subset = -1;
    if (split && !(split > 0 && split < 1))
        return kc_err(KC_EINVAL, "text_dataset_from_directory: validation_split must be between 0 "
                      "and 1, found %g", split);
    if (opts->subset && strcmp(opts->subset, "training") && strcmp(opts->subset, "validation"))
        return kc_err(KC_EINVAL, "text_dataset_from_directory: subset must be \"training\" or "
                      "\"validation\", found \"%s\"", opts->subset);
    if (!split != !opts->subset)
        return kc_err(KC_EINVAL, "text_dataset_from_directory: if subset is set, validation_split "
                      "must be set, and inversely");
    if (opts->subset) subset = !strcmp(opts->subset, "validation");
    if (split && shuffle && !opts->has_seed)
        return kc_err(KC_EINVAL, "text_dataset_from_directory: with validation_split and "
                      "shuffling, give a seed, so that the training and validation subsets do not "
                      "overlap");
    kc_dir_index ix;
    kc_status st = kc_index_directory(
        directory, "text_dataset_from_directory", opts->class_names, opts->num_class_names,
        ends_txt, opts->follow_links, shuffle,
        opts->has_seed ? opts->seed : (uint32_t)(kc_default_seed() % 1000000), split, subset, &ix);
    if (st) return st;
    if (lm == 2 && ix.num_classes != 2)
        st = kc_err(KC_EINVAL, "text_dataset_from_directory: label_mode \"binary\" needs exactly 2 "
                    "classes, found %d", ix.num_classes);
    if (!st && ix.count == 0)
        st = kc_err(KC_EINVAL, "text_dataset_from_directory: no text files found in directory %s%s "
                    "(allowed format: .txt)", directory,
                    ix.total ? (subset == 0 ? " for training" : " for validation") : "");
    int64_t m = ix.count;
    if (!st) {
        out->texts = calloc((size_t)m, sizeof(char *));
        out->lengths = calloc((size_t)m, sizeof(int64_t));
        if (lm == 1) out->onehot = calloc((size_t)(m * ix.num_classes), sizeof(float));
        if (!out->texts || !out->lengths || (lm == 1 && !out->onehot))
            st = kc_err(KC_ENOMEM, "out of memory");
    }
    if (st) {
        free(out->texts);
        free(out->lengths);
        free(out->onehot);
        memset(out, 0, sizeof *out);
        kc_dir_index_free(&ix);
        return st;
    }
    out->count = m;
    out->num_classes = ix.num_classes;
    out->paths = ix.paths;
    out->labels = ix.labels;
    out->class_names = ix.class_names;
    for (int64_t i = 0; i < m && !st; i++) {
        uint8_t *text;
        size_t size;
        if (out->onehot) out->onehot[i * out->num_classes + out->labels[i]] = 1.0f;
        st = kc_read_whole_file(out->paths[i], (size_t)1 << 32, &text, &size);
        if (st) break;
        if (opts->max_length > 0 && size > (uint64_t)opts->max_length) {
            size = (size_t)opts->max_length;
            text[size] = '\0';
        }
        out->texts[i] = (char *)text;
        out->lengths[i] = (int64_t)size;
    }
    if (st) kc_text_files_free(out);
    return st;
}
