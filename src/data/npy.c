/* npy.c: NumPy's .npy members of an .npz archive: the header (a Python dict literal), integer
 * arrays, and object arrays of lists of ints, which NumPy stores as a pickle. The pickle reader
 * is strict: it knows the opcodes such a pickle uses (protocols 2 to 5) and the three globals
 * NumPy's reconstruction calls (numpy.core.multiarray._reconstruct, numpy.ndarray,
 * numpy.dtype, as Keras's own restricted unpickler), and refuses anything else by name. It
 * never recurses, and what it allocates is bounded by the stream's length. */
#include "text_internal.h"
#include "../io/io.h"
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- the .npy header ----------------------------------------------------------------------- */

typedef struct {
    char descr[16];
    int fortran;
    int rank;
    int64_t shape[8];
} npy_header;

static void skip_space(const char **p, const char *end) {
    while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) (*p)++;
}

/* a quoted Python string without escapes into out */
static int parse_pystr(const char **p, const char *end, char *out, size_t cap) {
    if (*p >= end || (**p != '\'' && **p != '"')) return -1;
    char q = *(*p)++;
    size_t n = 0;
    while (*p < end && **p != q) {
        if (**p == '\\' || n + 1 >= cap) return -1;
        out[n++] = *(*p)++;
    }
    if (*p >= end) return -1;
    (*p)++;
    out[n] = '\0';
    return 0;
}

static int parse_pyint(const char **p, const char *end, int64_t *v) {
    int64_t x = 0;
    const char *start = *p;
    while (*p < end && **p >= '0' && **p <= '9') {
        if (x > (INT64_MAX - 9) / 10) return -1;
        x = x * 10 + (*(*p)++ - '0');
    }
    if (*p == start) return -1;
    if (*p < end && **p == 'L') (*p)++; /* Python 2's long suffix */
    *v = x;
    return 0;
}

static kc_status parse_header(const char *what, const char *h, size_t len, npy_header *out) {
    const char *p = h, *end = h + len;
    int seen = 0;
    memset(out, 0, sizeof *out);
    skip_space(&p, end);
    if (p >= end || *p++ != '{') goto bad;
    for (;;) {
        skip_space(&p, end);
        if (p < end && *p == '}') break;
        char key[32];
        if (parse_pystr(&p, end, key, sizeof key)) goto bad;
        skip_space(&p, end);
        if (p >= end || *p++ != ':') goto bad;
        skip_space(&p, end);
        if (!strcmp(key, "descr")) {
            if (parse_pystr(&p, end, out->descr, sizeof out->descr)) goto bad;
            seen |= 1;
        } else if (!strcmp(key, "fortran_order")) {
            if ((size_t)(end - p) >= 4 && !memcmp(p, "True", 4)) out->fortran = 1, p += 4;
            else if ((size_t)(end - p) >= 5 && !memcmp(p, "False", 5)) p += 5;
            else goto bad;
            seen |= 2;
        } else if (!strcmp(key, "shape")) {
            if (p >= end || *p++ != '(') goto bad;
            for (;;) {
                skip_space(&p, end);
                if (p < end && *p == ')') break;
                if (out->rank >= 8 || parse_pyint(&p, end, &out->shape[out->rank])) goto bad;
                out->rank++;
                skip_space(&p, end);
                if (p < end && *p == ',') p++;
                else if (p >= end || *p != ')') goto bad;
            }
            p++;
            seen |= 4;
        } else {
            return kc_err(KC_EFORMAT, "%s: unknown key '%s' in the .npy header", what, key);
        }
        skip_space(&p, end);
        if (p < end && *p == ',') p++;
        else if (p >= end || *p != '}') goto bad;
    }
    if (seen != 7)
        return kc_err(KC_EFORMAT, "%s: the .npy header lacks '%s'", what,
                      !(seen & 1) ? "descr" : !(seen & 2) ? "fortran_order" : "shape");
    return KC_OK;
bad:
    return kc_err(KC_EFORMAT, "%s: malformed .npy header near byte %td of it: %.*s", what, p - h,
                  (int)(len < 120 ? len : 120), h);
}

static int64_t read_le(const uint8_t *p, int n, int big, int is_signed) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[big ? n - 1 - i : i] << (8 * i);
    if (is_signed && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~(uint64_t)0 << (8 * n);
    return (int64_t)v;
}

kc_status kc_npy_parse(const char *what, const uint8_t *data, size_t size, int32_t **ints,
                       kc_sequences *seqs, int64_t *count) {
    if (ints) *ints = NULL;
    if (size < 10 || memcmp(data, "\x93NUMPY", 6) != 0)
        return kc_err(KC_EFORMAT, "%s: not a .npy array (no \\x93NUMPY magic)", what);
    int major = data[6];
    size_t hl, hs;
    if (major == 1) hl = (size_t)data[8] | (size_t)data[9] << 8, hs = 10;
    else if (major == 2 || major == 3) {
        if (size < 12) return kc_err(KC_EFORMAT, "%s: truncated .npy header", what);
        hl = (size_t)read_le(data + 8, 4, 0, 0), hs = 12;
    } else {
        return kc_err(KC_EFORMAT, "%s: .npy format version %d.%d is not one kerac reads", what,
                      major, data[7]);
    }
    if (hl > size - hs) return kc_err(KC_EFORMAT, "%s: truncated .npy header", what);
    npy_header h;
    kc_status st = parse_header(what, (const char *)data + hs, hl, &h);
    if (st) return st;
    if (h.rank != 1)
        return kc_err(KC_EFORMAT, "%s: expected a 1-d array, found rank %d", what, h.rank);
    int64_t n = h.shape[0];
    const uint8_t *body = data + hs + hl;
    size_t body_size = size - hs - hl;
    const char *d = h.descr;
    int big = d[0] == '>';
    if (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=') d++;
    if (d[0] == 'O') {
        if (!seqs)
            return kc_err(KC_EFORMAT, "%s: an object array where integers were expected", what);
        st = kc_pickle_read_int_lists(what, body, body_size, seqs);
        if (st) return st;
        if (seqs->count != n) {
            kc_sequences_free(seqs);
            return kc_err(KC_EFORMAT, "%s: the header says %" PRId64 " elements, the pickle holds "
                          "%" PRId64, what, n, seqs->count);
        }
        *count = n;
        return KC_OK;
    }
    int is_signed = d[0] == 'i';
    int width = d[1] - '0';
    if ((d[0] != 'i' && d[0] != 'u') || (width != 1 && width != 2 && width != 4 && width != 8) ||
        d[2] != '\0')
        return kc_err(KC_EFORMAT, "%s: dtype '%s' is neither an integer nor an object array",
                      what, h.descr);
    if (!ints)
        return kc_err(KC_EFORMAT, "%s: an integer array where sequences were expected", what);
    if ((uint64_t)n > body_size / (size_t)width)
        return kc_err(KC_EFORMAT, "%s: %" PRId64 " elements of %d bytes need more than the %zu "
                      "bytes there (truncated?)", what, n, width, body_size);
    int32_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) return kc_err(KC_ENOMEM, "%s: out of memory for %" PRId64 " values", what, n);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *q = body + (size_t)i * (size_t)width;
        int64_t x = read_le(q, width, big, is_signed);
        if ((!is_signed && width == 8 && x < 0) || x < INT32_MIN || x > INT32_MAX) {
            free(v);
            return kc_err(KC_EFORMAT, "%s: value %" PRId64 " at index %" PRId64 " is out of "
                          "int32 range", what, x, i);
        }
        v[i] = (int32_t)x;
    }
    *ints = v;
    *count = n;
    return KC_OK;
}

/* ---- the pickle ---------------------------------------------------------------------------- */

enum { K_INT, K_NONE, K_BOOL, K_MARK, K_OBJ, K_UNSET };
enum { O_STR, O_TUPLE, O_LIST, O_GLOBAL, O_DTYPE, O_ARRAY };
enum { G_RECONSTRUCT, G_NDARRAY, G_DTYPE };
static const char *const obj_names[] = {"string", "tuple", "list", "global", "dtype", "ndarray"};

typedef struct {
    int kind;
    int64_t v; /* the int, the bool, or the object's index */
} item;

typedef struct {
    int kind;
    int sub;          /* O_GLOBAL: which; O_DTYPE: the type character; O_ARRAY: built */
    const uint8_t *s; /* O_STR */
    int64_t n, cap;   /* O_TUPLE, O_LIST: items; O_STR: length */
    item *items;      /* O_TUPLE; O_LIST of objects */
    int32_t *ints;    /* O_LIST of ints */
    int ints_mode;    /* O_LIST: 1 ints, 2 objects, 0 empty so far */
    int64_t elems;    /* O_ARRAY: the object index of its element list */
} object;

typedef struct {
    const char *what;
    const uint8_t *p, *end, *start;
    object *objs;
    int64_t nobj, capobj;
    item *stack;
    int64_t sp, capstack;
    int64_t *marks;
    int64_t nmarks, capmarks;
    item *memo;
    int64_t nmemo, capmemo;
    int64_t budget; /* bounds: objects, items and memo entries all count against it */
} unpickler;

#define PK_ERR(u, ...) kc_err_prefix(kc_err(KC_EFORMAT, __VA_ARGS__), "%s: pickle at byte %td", \
                                     (u)->what, (u)->p - (u)->start)

static int grow(void **buf, int64_t *cap, int64_t need, size_t elem) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *nb = realloc(*buf, (size_t)c * elem);
    if (!nb) return -1;
    *buf = nb;
    *cap = c;
    return 0;
}

static kc_status spend(unpickler *u, int64_t n) {
    u->budget -= n;
    if (u->budget < 0)
        return PK_ERR(u, "holds more objects than its length allows (hostile or corrupt)");
    return KC_OK;
}

static kc_status push(unpickler *u, item it) {
    if (spend(u, 1)) return KC_EFORMAT;
    if (grow((void **)&u->stack, &u->capstack, u->sp + 1, sizeof(item)))
        return kc_err(KC_ENOMEM, "%s: out of memory reading the pickle", u->what);
    u->stack[u->sp++] = it;
    return KC_OK;
}

static kc_status new_obj(unpickler *u, int kind, int64_t *idx) {
    *idx = 0;
    if (spend(u, 1)) return KC_EFORMAT;
    if (grow((void **)&u->objs, &u->capobj, u->nobj + 1, sizeof(object)))
        return kc_err(KC_ENOMEM, "%s: out of memory reading the pickle", u->what);
    memset(&u->objs[u->nobj], 0, sizeof(object));
    u->objs[u->nobj].kind = kind;
    *idx = u->nobj++;
    return KC_OK;
}

static kc_status push_obj(unpickler *u, int kind, object **o) {
    int64_t idx;
    kc_status st = new_obj(u, kind, &idx);
    if (!st) st = push(u, (item){K_OBJ, idx});
    if (o) *o = st ? NULL : &u->objs[idx];
    return st;
}

static kc_status need(unpickler *u, size_t n) {
    if ((size_t)(u->end - u->p) < n) return PK_ERR(u, "truncated (needs %zu more bytes)", n);
    return KC_OK;
}

static object *as_obj(unpickler *u, item it, int kind) {
    if (it.kind != K_OBJ || u->objs[it.v].kind != kind) return NULL;
    return &u->objs[it.v];
}

static const char *item_name(unpickler *u, item it) {
    switch (it.kind) {
    case K_INT: return "int";
    case K_NONE: return "None";
    case K_BOOL: return "bool";
    case K_MARK: return "mark";
    case K_OBJ: return obj_names[u->objs[it.v].kind];
    default: return "nothing";
    }
}

static kc_status pop(unpickler *u, item *it) {
    int64_t floor = u->nmarks ? u->marks[u->nmarks - 1] : 0;
    if (u->sp <= floor) return PK_ERR(u, "pops an empty stack");
    *it = u->stack[--u->sp];
    return KC_OK;
}

/* pops the items above the last mark into a new tuple (as_list: append them to list) */
static kc_status pop_mark(unpickler *u, int64_t *first, int64_t *n) {
    if (!u->nmarks) return PK_ERR(u, "needs a mark and has none");
    *first = u->marks[--u->nmarks];
    *n = u->sp - *first;
    u->sp = *first;
    return KC_OK;
}

/* the stack from entry i (NULL while nothing was ever pushed: no pointer arithmetic on NULL) */
static const item *stack_from(const unpickler *u, int64_t i) { return u->stack ? u->stack + i : NULL; }

static kc_status make_tuple(unpickler *u, const item *src, int64_t n) {
    int64_t idx;
    kc_status st = new_obj(u, O_TUPLE, &idx);
    if (st) return st;
    object *t = &u->objs[idx];
    if (n) {
        t->items = malloc((size_t)n * sizeof(item));
        if (!t->items) return kc_err(KC_ENOMEM, "%s: out of memory reading the pickle", u->what);
        memcpy(t->items, src, (size_t)n * sizeof(item));
    }
    t->n = n;
    item tmp = {K_OBJ, idx};
    return push(u, tmp);
}

static kc_status list_append(unpickler *u, object *l, const item *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        int mode = src[i].kind == K_INT ? 1 : 2;
        if (l->ints_mode && l->ints_mode != mode)
            return PK_ERR(u, "a list mixes ints and other objects (a %s)", item_name(u, src[i]));
        l->ints_mode = mode;
        if (mode == 1) {
            if (src[i].v < INT32_MIN || src[i].v > INT32_MAX)
                return PK_ERR(u, "value %" PRId64 " is out of int32 range", src[i].v);
            if (grow((void **)&l->ints, &l->cap, l->n + 1, sizeof(int32_t)))
                return kc_err(KC_ENOMEM, "%s: out of memory reading the pickle", u->what);
            l->ints[l->n++] = (int32_t)src[i].v;
        } else {
            if (src[i].kind != K_OBJ || u->objs[src[i].v].kind != O_LIST)
                return PK_ERR(u, "a list holds a %s (only lists of ints are read)",
                              item_name(u, src[i]));
            if (grow((void **)&l->items, &l->cap, l->n + 1, sizeof(item)))
                return kc_err(KC_ENOMEM, "%s: out of memory reading the pickle", u->what);
            l->items[l->n++] = src[i];
        }
    }
    return KC_OK;
}

static kc_status read_str(unpickler *u, size_t lenbytes) {
    kc_status st = need(u, lenbytes);
    if (st) return st;
    uint64_t len = (uint64_t)read_le(u->p, (int)lenbytes, 0, 0);
    u->p += lenbytes;
    if ((st = need(u, len > SIZE_MAX ? SIZE_MAX : (size_t)len))) return st;
    object *o;
    if ((st = push_obj(u, O_STR, &o))) return st;
    o->s = u->p;
    o->n = (int64_t)len;
    u->p += len;
    return KC_OK;
}

static kc_status global(unpickler *u, const uint8_t *mod, size_t mlen, const uint8_t *name,
                        size_t nlen) {
    static const struct { const char *mod, *name; int which; } allowed[] = {
        {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy", "ndarray", G_NDARRAY},
        {"numpy", "dtype", G_DTYPE},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
        if (mlen == strlen(allowed[i].mod) && !memcmp(mod, allowed[i].mod, mlen) &&
            nlen == strlen(allowed[i].name) && !memcmp(name, allowed[i].name, nlen)) {
            object *o;
            kc_status st = push_obj(u, O_GLOBAL, &o);
            if (!st) o->sub = allowed[i].which;
            return st;
        }
    return PK_ERR(u, "refuses the global %.*s.%.*s (only NumPy's array reconstruction is "
                  "allowed)", (int)(mlen > 80 ? 80 : mlen), mod, (int)(nlen > 80 ? 80 : nlen), name);
}

static kc_status reduce(unpickler *u) {
    item args = {0}, fn = {0};
    kc_status st = pop(u, &args);
    if (!st) st = pop(u, &fn);
    if (st) return st;
    object *g = as_obj(u, fn, O_GLOBAL), *a = as_obj(u, args, O_TUPLE);
    if (!g || !a) return PK_ERR(u, "REDUCE on a %s with a %s", item_name(u, fn), item_name(u, args));
    if (g->sub == G_RECONSTRUCT) {
        object *cls = a->n == 3 ? as_obj(u, a->items[0], O_GLOBAL) : NULL;
        if (!cls || cls->sub != G_NDARRAY)
            return PK_ERR(u, "_reconstruct's arguments are not (ndarray, shape, typecode)");
        return push_obj(u, O_ARRAY, NULL);
    }
    if (g->sub == G_DTYPE) {
        object *s = a->n >= 1 ? as_obj(u, a->items[0], O_STR) : NULL;
        if (!s || s->n < 1) return PK_ERR(u, "dtype's arguments are not (typestr, ...)");
        object *o;
        int c = s->s[0];
        if ((st = push_obj(u, O_DTYPE, &o))) return st;
        o->sub = c;
        return KC_OK;
    }
    return PK_ERR(u, "REDUCE calls numpy.ndarray directly");
}

static kc_status build(unpickler *u) {
    item state = {0}, target = {0};
    kc_status st = pop(u, &state);
    if (!st) st = pop(u, &target);
    if (st) return st;
    if (as_obj(u, target, O_DTYPE)) return push(u, target); /* dtype's state: byte order, flags */
    object *arr = as_obj(u, target, O_ARRAY), *s = as_obj(u, state, O_TUPLE);
    if (!arr || !s || arr->sub)
        return PK_ERR(u, "BUILD on a %s with a %s", item_name(u, target), item_name(u, state));
    object *shape = s->n == 5 ? as_obj(u, s->items[1], O_TUPLE) : NULL;
    object *dt = s->n == 5 ? as_obj(u, s->items[2], O_DTYPE) : NULL;
    object *data = s->n == 5 ? as_obj(u, s->items[4], O_LIST) : NULL;
    if (!shape || !dt)
        return PK_ERR(u, "the ndarray's state is not (version, shape, dtype, fortran, data)");
    if (dt->sub != 'O')
        return PK_ERR(u, "the array's dtype is '%c', not an object array", dt->sub);
    if (!data) return PK_ERR(u, "the object array's data is a %s, not a list",
                             item_name(u, s->items[4]));
    if (shape->n != 1 || shape->items[0].kind != K_INT || shape->items[0].v != data->n)
        return PK_ERR(u, "the object array is not 1-d with as many elements as its data");
    arr->sub = 1;
    arr->elems = s->items[4].v;
    return push(u, target);
}

static kc_status finish(unpickler *u, kc_sequences *out) {
    if (u->sp != 1 || u->nmarks) return PK_ERR(u, "STOP with %" PRId64 " items on the stack", u->sp);
    object *arr = as_obj(u, u->stack[0], O_ARRAY);
    if (!arr || !arr->sub)
        return PK_ERR(u, "holds a %s, not a built object array", item_name(u, u->stack[0]));
    object *l = &u->objs[arr->elems];
    int64_t n = l->n, total = 0;
    if (l->ints_mode == 1) return PK_ERR(u, "the array's elements are ints, not lists");
    for (int64_t i = 0; i < n; i++) {
        object *e = &u->objs[l->items[i].v];
        if (e->ints_mode == 2)
            return PK_ERR(u, "element %" PRId64 " is a list of lists, not of ints", i);
        total += e->n;
        /* a list shared by reference may appear many times: the output stays within the
         * stream's length (a real int costs at least 2 bytes of it) */
        if (total > u->end - u->start)
            return PK_ERR(u, "shares its lists more often than its length allows");
    }
    memset(out, 0, sizeof *out);
    out->offsets = malloc((size_t)(n + 1) * sizeof(int64_t));
    out->values = malloc((size_t)(total ? total : 1) * sizeof(int32_t));
    if (!out->offsets || !out->values) {
        kc_sequences_free(out);
        return kc_err(KC_ENOMEM, "%s: out of memory for %" PRId64 " values", u->what, total);
    }
    out->count = n;
    out->offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        object *e = &u->objs[l->items[i].v];
        if (e->n) memcpy(out->values + out->offsets[i], e->ints, (size_t)e->n * sizeof(int32_t));
        out->offsets[i + 1] = out->offsets[i] + e->n;
    }
    return KC_OK;
}

static kc_status step(unpickler *u, int *done, kc_sequences *out) {
    kc_status st = need(u, 1);
    if (st) return st;
    uint8_t op = *u->p++;
    item it = {0};
    int64_t first = 0, n = 0;
    switch (op) {
    case 0x80: /* PROTO */
        if ((st = need(u, 1))) return st;
        if (u->p[0] < 2 || u->p[0] > 5) return PK_ERR(u, "protocol %d is not one kerac reads", u->p[0]);
        u->p++;
        return KC_OK;
    case 0x95: /* FRAME: a length hint */
        if ((st = need(u, 8))) return st;
        u->p += 8;
        return KC_OK;
    case '.': /* STOP */
        *done = 1;
        return finish(u, out);
    case '(': /* MARK */
        if (spend(u, 1)) return KC_EFORMAT;
        if (grow((void **)&u->marks, &u->capmarks, u->nmarks + 1, sizeof(int64_t)))
            return kc_err(KC_ENOMEM, "%s: out of memory reading the pickle", u->what);
        u->marks[u->nmarks++] = u->sp;
        return KC_OK;
    case 'c': { /* GLOBAL module\nname\n */
        const uint8_t *mod = u->p, *nl1 = memchr(mod, '\n', (size_t)(u->end - mod));
        const uint8_t *name = nl1 ? nl1 + 1 : NULL;
        const uint8_t *nl2 = name ? memchr(name, '\n', (size_t)(u->end - name)) : NULL;
        if (!nl2) return PK_ERR(u, "truncated GLOBAL");
        u->p = nl2 + 1;
        return global(u, mod, (size_t)(nl1 - mod), name, (size_t)(nl2 - name));
    }
    case 0x93: { /* STACK_GLOBAL */
        item name = {0}, mod = {0};
        if ((st = pop(u, &name)) || (st = pop(u, &mod))) return st;
        object *m = as_obj(u, mod, O_STR), *nm = as_obj(u, name, O_STR);
        if (!m || !nm) return PK_ERR(u, "STACK_GLOBAL on a %s and a %s", item_name(u, mod),
                                     item_name(u, name));
        return global(u, m->s, (size_t)m->n, nm->s, (size_t)nm->n);
    }
    case 'q': case 'r': case 0x94: { /* BINPUT, LONG_BINPUT, MEMOIZE */
        int64_t idx;
        if (op == 0x94) idx = u->nmemo;
        else {
            size_t w = op == 'q' ? 1 : 4;
            if ((st = need(u, w))) return st;
            idx = read_le(u->p, (int)w, 0, 0);
            u->p += w;
        }
        if (u->sp <= (u->nmarks ? u->marks[u->nmarks - 1] : 0)) return PK_ERR(u, "memoizes nothing");
        if (idx >= u->nmemo) {
            if (spend(u, idx + 1 - u->nmemo)) return KC_EFORMAT; /* a huge index is refused here */
            if (grow((void **)&u->memo, &u->capmemo, idx + 1, sizeof(item)))
                return kc_err(KC_ENOMEM, "%s: out of memory reading the pickle", u->what);
            for (int64_t i = u->nmemo; i <= idx; i++) u->memo[i].kind = K_UNSET;
            u->nmemo = idx + 1;
        }
        u->memo[idx] = u->stack[u->sp - 1];
        return KC_OK;
    }
    case 'h': case 'j': { /* BINGET, LONG_BINGET */
        size_t w = op == 'h' ? 1 : 4;
        if ((st = need(u, w))) return st;
        int64_t idx = read_le(u->p, (int)w, 0, 0);
        u->p += w;
        if (idx >= u->nmemo || u->memo[idx].kind == K_UNSET)
            return PK_ERR(u, "gets memo entry %" PRId64 ", which was never set", idx);
        return push(u, u->memo[idx]);
    }
    case ']': return push_obj(u, O_LIST, NULL); /* EMPTY_LIST */
    case ')': return make_tuple(u, NULL, 0);    /* EMPTY_TUPLE */
    case 'l': case 't': /* LIST, TUPLE: from the last mark */
        if ((st = pop_mark(u, &first, &n))) return st;
        if (op == 't') return make_tuple(u, stack_from(u, first), n);
        {
            object *l;
            item *tmp = n ? malloc((size_t)n * sizeof(item)) : NULL;
            if (n && !tmp) return kc_err(KC_ENOMEM, "%s: out of memory reading the pickle", u->what);
            if (n) memcpy(tmp, stack_from(u, first), (size_t)n * sizeof(item));
            st = push_obj(u, O_LIST, &l);
            if (!st) st = list_append(u, l, tmp, n);
            free(tmp);
            return st;
        }
    case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
        n = op - 0x84;
        int64_t floor = u->nmarks ? u->marks[u->nmarks - 1] : 0;
        if (u->sp - floor < n) return PK_ERR(u, "TUPLE%" PRId64 " on a short stack", n);
        u->sp -= n;
        return make_tuple(u, stack_from(u, u->sp), n);
    }
    case 'a': { /* APPEND */
        if ((st = pop(u, &it))) return st;
        int64_t floor = u->nmarks ? u->marks[u->nmarks - 1] : 0;
        object *l = u->sp > floor ? as_obj(u, u->stack[u->sp - 1], O_LIST) : NULL;
        if (!l) return PK_ERR(u, "APPEND to something that is not a list");
        return list_append(u, l, &it, 1);
    }
    case 'e': { /* APPENDS */
        if ((st = pop_mark(u, &first, &n))) return st;
        int64_t floor = u->nmarks ? u->marks[u->nmarks - 1] : 0;
        object *l = u->sp > floor ? as_obj(u, u->stack[u->sp - 1], O_LIST) : NULL;
        if (!l) return PK_ERR(u, "APPENDS to something that is not a list");
        return list_append(u, l, stack_from(u, first), n);
    }
    case 'J': case 'K': case 'M': { /* BININT, BININT1, BININT2 */
        int w = op == 'J' ? 4 : op == 'K' ? 1 : 2;
        if ((st = need(u, (size_t)w))) return st;
        int64_t v = read_le(u->p, w, 0, op == 'J');
        u->p += w;
        return push(u, (item){K_INT, v});
    }
    case 0x8a: { /* LONG1 */
        if ((st = need(u, 1))) return st;
        int w = *u->p++;
        if (w > 8) return PK_ERR(u, "a %d-byte integer is too large", w);
        if ((st = need(u, (size_t)w))) return st;
        int64_t v = w ? read_le(u->p, w, 0, 1) : 0;
        u->p += w;
        return push(u, (item){K_INT, v});
    }
    case 'N': return push(u, (item){K_NONE, 0});
    case 0x88: return push(u, (item){K_BOOL, 1});
    case 0x89: return push(u, (item){K_BOOL, 0});
    case 'U': case 'C': case 0x8c: return read_str(u, 1); /* SHORT_BINSTRING, _BYTES, _UNICODE */
    case 'T': case 'B': case 'X': return read_str(u, 4);  /* BINSTRING, BINBYTES, BINUNICODE */
    case 'R': return reduce(u);
    case 'b': return build(u);
    default:
        u->p--;
        return PK_ERR(u, "opcode 0x%02x%s%c%s is not one kerac reads (only those NumPy writes "
                      "for object arrays of int lists)", op, op >= 0x20 && op < 0x7f ? " ('" : "",
                      op >= 0x20 && op < 0x7f ? op : ' ', op >= 0x20 && op < 0x7f ? "')" : "");
    }
}

kc_status kc_pickle_read_int_lists(const char *what, const uint8_t *data, size_t size,
                                   kc_sequences *seqs) {
    memset(seqs, 0, sizeof *seqs);
    unpickler u = {.what = what, .p = data, .end = data + size, .start = data,
                   .budget = 2 * (int64_t)size + 64};
    kc_status st = KC_OK;
    int done = 0;
    while (!st && !done) st = step(&u, &done, seqs);
    if (!st && u.p != u.end)
        st = PK_ERR(&u, "%td bytes follow the pickle's STOP", u.end - u.p);
    if (st && done) kc_sequences_free(seqs);
    for (int64_t i = 0; i < u.nobj; i++) {
        free(u.objs[i].items);
        free(u.objs[i].ints);
    }
    free(u.objs);
    free(u.stack);
    free(u.marks);
    free(u.memo);
    return st;
}

/* ---- files --------------------------------------------------------------------------------- */

kc_status kc_read_whole_file(const char *path, size_t max_size, uint8_t **out, size_t *size) {
    *out = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return kc_err(KC_EIO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    kc_status st = KC_OK;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            size_t c = cap ? cap * 2 : 65536 * 2;
            uint8_t *nb = realloc(buf, c);
            if (!nb) {
                st = kc_err(KC_ENOMEM, "%s: out of memory reading it", path);
                break;
            }
            buf = nb;
            cap = c;
        }
        size_t r = fread(buf + n, 1, 65536, f);
        n += r;
        if (n > max_size) {
            st = kc_err(KC_EFORMAT, "%s: larger than %zu bytes", path, max_size);
            break;
        }
        if (r < 65536) {
            if (ferror(f)) st = kc_err(KC_EIO, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st) {
        free(buf);
        return st;
    }
    buf[n] = 0;
    *out = buf;
    *size = n;
    return KC_OK;
}

kc_status kc_npz_member(const char *path, const uint8_t *zip, size_t zsize, const char *name,
                        int32_t **ints, kc_sequences *seqs, int64_t *count) {
    char member[256], what[4400];
    if (snprintf(member, sizeof member, "%s.npy", name) >= (int)sizeof member)
        return kc_err(KC_EINVAL, "%s: member name too long: %s", path, name);
    snprintf(what, sizeof what, "%s: %s", path, member);
    void *data;
    size_t size;
    kc_status st = kc_zip_read(path, zip, zsize, member, &data, &size);
    if (st) return st;
    st = kc_npy_parse(what, data, size, ints, seqs, count);
    free(data);
    return st;
}

static kc_status npz_member(const char *path, const char *name, int32_t **ints,
                            kc_sequences *seqs, int64_t *count) {
    uint8_t *zip;
    size_t zsize;
    kc_status st = kc_read_whole_file(path, KC_NPZ_MAX, &zip, &zsize);
    if (st) return st;
    st = kc_npz_member(path, zip, zsize, name, ints, seqs, count);
    free(zip);
    return st;
}

kc_status kc_npz_read_sequences(const char *path, const char *name, kc_sequences *out) {
    if (!path || !name || !out) return kc_err(KC_EINVAL, "kc_npz_read_sequences: NULL argument");
    int64_t count;
    return npz_member(path, name, NULL, out, &count);
}

kc_status kc_npz_read_ints(const char *path, const char *name, int32_t **out, int64_t *count) {
    if (!path || !name || !out || !count) return kc_err(KC_EINVAL, "kc_npz_read_ints: NULL argument");
    return npz_member(path, name, out, NULL, count);
}

/* ---- .npy arrays of numbers: kc_npy_load, kc_npz_load ------------------------------------------ */

#include <sys/mman.h>
#include "../util/platform.h"
#include <sys/stat.h>
#include <zip.h>

typedef struct {
    FILE *file;
    zip_file_t *zf;
} npy_src;

static int src_read(npy_src *s, void *buf, size_t n) {
    if (s->file) return fread(buf, 1, n, s->file) == n ? 0 : -1;
    uint8_t *p = buf;
    while (n > 0) { /* zip_fread may return less than asked */
        zip_int64_t r = zip_fread(s->zf, p, n);
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void swap_bytes(uint8_t *p, int64_t n, int width) {
    for (int64_t i = 0; i < n; i++, p += width)
        for (int a = 0, b = width - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* total: the stream's size in bytes */
static kc_status npy_read(const char *what, npy_src *s, uint64_t total, kc_npy *out) {
    memset(out, 0, sizeof *out);
    uint8_t pre[12];
    if (total < 10 || src_read(s, pre, 10) || memcmp(pre, "\x93NUMPY", 6) != 0)
        return kc_err(KC_EFORMAT, "%s: not a .npy array (no \\x93NUMPY magic)", what);
    size_t hl, hs;
    if (pre[6] == 1) hl = (size_t)pre[8] | (size_t)pre[9] << 8, hs = 10;
    else if (pre[6] == 2 || pre[6] == 3) {
        if (total < 12 || src_read(s, pre + 10, 2))
            return kc_err(KC_EFORMAT, "%s: truncated .npy header", what);
        hl = (size_t)read_le(pre + 8, 4, 0, 0), hs = 12;
    } else {
        return kc_err(KC_EFORMAT, "%s: .npy format version %d.%d is not one kerac reads", what,
                      pre[6], pre[7]);
    }
    if (hl > total - hs || hl > (1u << 20)) return kc_err(KC_EFORMAT, "%s: truncated .npy header", what);
    char *hdr = malloc(hl + 1);
    if (!hdr) return kc_err(KC_ENOMEM, "%s: out of memory", what);
    npy_header h;
    kc_status st = src_read(s, hdr, hl) ? kc_err(KC_EFORMAT, "%s: truncated .npy header", what)
                                        : parse_header(what, hdr, hl, &h);
    free(hdr);
    if (st) return st;
    if (h.fortran)
        return kc_err(KC_EFORMAT, "%s: the array is stored in Fortran order (fortran_order: True); "
                      "kerac reads C order only: save np.ascontiguousarray(a)", what);
    const char *d = h.descr;
    int big = d[0] == '>';
    if (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=') d++;
    static const char *const ok[] = {"u1", "i4", "i8", "f4", "f8"};
    int known = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(d, ok[i])) known = i;
    if (known < 0)
        return kc_err(KC_EFORMAT, "%s: dtype '%s' is not supported (kerac reads u1, i4, i8, f4, f8)",
                      what, h.descr);
    int width = d[1] - '0';
    int64_t n = 1;
    for (int i = 0; i < h.rank; i++) {
        if (h.shape[i] > 0 && n > INT64_MAX / 16 / h.shape[i])
            return kc_err(KC_EFORMAT, "%s: shape too large", what);
        n *= h.shape[i];
    }
    uint64_t bytes = (uint64_t)n * (uint64_t)width;
    if (bytes > total - hs - hl)
        return kc_err(KC_EFORMAT, "%s: %" PRId64 " elements of %d bytes need %" PRIu64 " bytes, "
                      "the file holds %" PRIu64 " after the header (truncated?)", what, n, width,
                      bytes, total - hs - hl);
    out->data = kc_alloc((size_t)bytes);
    if (!out->data) return kc_err_prefix(KC_ENOMEM, "%s", what);
    if (bytes >= ((uint64_t)4 << 20)) /* huge pages for a big array, as NumPy asks: fewer faults */
        kc_advise_huge_pages(out->data, (size_t)bytes);
    if (bytes && src_read(s, out->data, (size_t)bytes)) {
        kc_npy_free(out);
        return kc_err(KC_EIO, "%s: read error in the array's data", what);
    }
    if (big && width > 1) swap_bytes(out->data, n, width);
    memcpy(out->dtype, d, 3);
    out->rank = h.rank;
    memcpy(out->shape, h.shape, sizeof h.shape);
    out->size = n;
    return KC_OK;
}

void kc_npy_free(kc_npy *a) {
    if (!a) return;
    kc_free(a->data);
    memset(a, 0, sizeof *a);
}

kc_status kc_npy_load(const char *path, kc_npy *out) {
    if (!path || !out) return kc_err(KC_EINVAL, "kc_npy_load: needs a path and an output");
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return kc_err(KC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    kc_status st;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = kc_err(KC_EIO, "%s: not a regular file", path);
    } else {
        setvbuf(f, NULL, _IONBF, 0); /* the body goes straight into its buffer */
        npy_src s = {f, NULL};
        st = npy_read(path, &s, (uint64_t)sb.st_size, out);
    }
    fclose(f);
    return st;
}

static kc_status npz_open(const char *path, zip_t **za) {
    int err = 0;
    *za = zip_open(path, ZIP_RDONLY, &err);
    if (*za) return KC_OK;
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    kc_status st;
    if (err == ZIP_ER_NOENT || err == ZIP_ER_OPEN || err == ZIP_ER_READ)
        st = kc_err(KC_EIO, "%s: cannot open: %s", path, zip_error_strerror(&ze));
    else
        st = kc_err(KC_EFORMAT, "%s: not a valid .npz (zip) archive: %s", path, zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return st;
}

static kc_status npz_member_load(const char *path, zip_t *za, const char *name, kc_npy *out) {
    char member[256], what[PATH_MAX + 300];
    if (snprintf(member, sizeof member, "%s.npy", name) >= (int)sizeof member)
        return kc_err(KC_EINVAL, "%s: member name too long: %s", path, name);
    snprintf(what, sizeof what, "%s: %s", path, member);
    zip_stat_t sb;
    if (zip_stat(za, member, 0, &sb) < 0 || !(sb.valid & ZIP_STAT_SIZE))
        return kc_err(KC_EFORMAT, "%s: the archive has no %s", path, member);
    zip_file_t *zf = zip_fopen(za, member, 0);
    if (!zf) return kc_err(KC_EFORMAT, "%s: cannot open %s in the archive: %s", path, member, zip_strerror(za));
    npy_src s = {NULL, zf};
    kc_status st = npy_read(what, &s, sb.size, out);
    zip_fclose(zf);
    return st;
}

kc_status kc_npz_load(const char *path, const char *name, kc_npy *out) {
    if (!path || !name || !out) return kc_err(KC_EINVAL, "kc_npz_load: needs a path, a name and an output");
    memset(out, 0, sizeof *out);
    zip_t *za;
    kc_status st = npz_open(path, &za);
    if (st) return st;
    st = npz_member_load(path, za, name, out);
    zip_discard(za);
    return st;
}

/* x and y of an .npz: the first of names[] (pairs) whose x member exists */
kc_status kc_npz_load_pair(const char *path, const char *const *names, int n_pairs, kc_npy *x,
                           kc_npy *y, int *has_y) {
    memset(x, 0, sizeof *x);
    memset(y, 0, sizeof *y);
    *has_y = 0;
    zip_t *za;
    kc_status st = npz_open(path, &za);
    if (st) return st;
    int found = -1;
    char member[256];
    for (int i = 0; i < n_pairs && found < 0; i++) {
        snprintf(member, sizeof member, "%s.npy", names[2 * i]);
        if (zip_name_locate(za, member, 0) >= 0) found = i;
    }
    if (found < 0) {
        st = kc_err(KC_EFORMAT, "%s: the archive has none of %s.npy%s%s%s", path, names[0],
                    n_pairs > 1 ? ", " : "", n_pairs > 1 ? names[2] : "", n_pairs > 1 ? ".npy" : "");
    } else {
        st = npz_member_load(path, za, names[2 * found], x);
        snprintf(member, sizeof member, "%s.npy", names[2 * found + 1]);
        if (!st && zip_name_locate(za, member, 0) >= 0) {
            st = npz_member_load(path, za, names[2 * found + 1], y);
            *has_y = !st;
        }
        if (st) {
            kc_npy_free(x);
            kc_npy_free(y);
        }
    }
    zip_discard(za);
    return st;
}
