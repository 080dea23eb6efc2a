/* h5lite.c: the bounds-checked reader of the HDF5 subset Keras writes (see h5lite.h; the
 * format: the HDF5 File Format Specification version 3, sections II-IV). The whole tree of
 * groups, datasets and attributes is parsed at open (each object once); values are decoded
 * when asked for. Nothing here trusts a length, an offset or a count from the file: each is
 * checked against the bytes in memory before use. */
#include "h5lite.h"
#include "io.h"
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RANK 32
#define MAX_DEPTH 64     /* groups nested */
#define MAX_BTREE_LEVEL 32

typedef struct {
    kc_h5l_class cls;
    size_t elem;  /* bytes an element takes in the file */
    int be, sgn;
} h5type;

typedef struct {
    int rank, null_space;
    int64_t dims[MAX_RANK], count;
} h5space;

typedef struct {
    char *name;
    h5type t;
    h5space s;
    const uint8_t *data; /* count * t.elem bytes inside the file */
} h5attr;

struct kc_h5l_node {
    kc_h5l_file *file;
    uint64_t addr;
    int is_group, is_dataset;
    int n_links, cap_links;
    char **link_names;
    uint64_t *link_addrs;
    kc_h5l_node **links;
    int n_attrs, cap_attrs;
    h5attr *attrs;
    h5type t;
    h5space s;
    const uint8_t *data;
    size_t data_size;
};

typedef struct {
    uint16_t index;
    const uint8_t *data;
    uint64_t size;
} gobj;

typedef struct {
    uint64_t addr;
    int n;
    gobj *objs; /* sorted by index */
} gcol;

struct kc_h5l_file {
    char *path;
    const uint8_t *buf;
    size_t size;
    uint64_t base, undef;
    int so, sl; /* sizes of offsets and lengths */
    kc_h5l_node *root;
    kc_h5l_node **nodes;
    int n_nodes, cap_nodes;
    uint64_t *seen;
    size_t seen_cap, seen_n;
    gcol *gcols;
    int n_gcols, cap_gcols;
    uint64_t work, work_limit;
    size_t alloc, alloc_limit;
    int failed;
};

/* ---- errors ---- */

static kc_status corrupt(kc_h5l_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static kc_status corrupt(kc_h5l_file *f, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    f->failed = 1;
    return kc_err(KC_EFORMAT, "%s: corrupt or crafted HDF5 file: %s", f->path, msg);
}

static kc_status unsupported(kc_h5l_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static kc_status unsupported(kc_h5l_file *f, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    f->failed = 1;
    return kc_err(KC_EFORMAT, "%s: HDF5 feature outside what kerac reads (Keras does not write "
                              "it): %s", f->path, msg);
}

/* every loop step is charged: a file gets work proportional to its size, no more */
static int charge(kc_h5l_file *f, uint64_t units) {
    f->work += units;
    if (f->work > f->work_limit) {
        if (!f->failed) corrupt(f, "it takes more work to read than its size allows");
        return 0;
    }
    return 1;
}

/* the status of the error just set (by corrupt, refuse, or an allocation that failed):
 * KC_ENOMEM stays KC_ENOMEM, so a load out of memory is not reported as a damaged file */
static kc_status failure(void) {
    kc_status s = kc_last_status();
    return s ? s : KC_EFORMAT;
}

static void *lalloc(kc_h5l_file *f, size_t n) {
    if (n > f->alloc_limit - f->alloc) {
        if (!f->failed) corrupt(f, "its metadata would need more memory than its size allows");
        return NULL;
    }
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        f->failed = 1;
        kc_err(KC_ENOMEM, "%s: out of memory", f->path);
        return NULL;
    }
    f->alloc += n;
    return p;
}

/* grows *arr (elem bytes each) to hold need; counts the new bytes */
static int grow(kc_h5l_file *f, void **arr, int *cap, int need, size_t elem) {
    if (need <= *cap) return 1;
    int nc = *cap ? *cap * 2 : 8;
    while (nc < need) nc *= 2;
    if (nc > (1 << 26)) return corrupt(f, "too many entries"), 0;
    size_t add = (size_t)(nc - *cap) * elem;
    if (add > f->alloc_limit - f->alloc) {
        if (!f->failed) corrupt(f, "its metadata would need more memory than its size allows");
        return 0;
    }
    void *p = realloc(*arr, (size_t)nc * elem);
    if (!p) {
        f->failed = 1;
        kc_err(KC_ENOMEM, "%s: out of memory", f->path);
        return 0;
    }
    memset((char *)p + (size_t)*cap * elem, 0, add);
    f->alloc += add;
    *arr = p;
    *cap = nc;
    return 1;
}

/* ---- a cursor over checked bytes ---- */

typedef struct {
    const uint8_t *p, *end;
    int bad;
} cur;

static uint64_t cu(cur *c, int n) {
    if (c->bad || n < 0 || n > 8 || c->end - c->p < n) {
        c->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)c->p[i] << (8 * i);
    c->p += n;
    return v;
}

static const uint8_t *cbytes(cur *c, uint64_t n) {
    if (c->bad || (uint64_t)(c->end - c->p) < n) {
        c->bad = 1;
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    return p;
}

static size_t cleft(const cur *c) { return c->bad ? 0 : (size_t)(c->end - c->p); }

/* the file region [addr, addr + len) (addr relative to the base address); bad when outside */
static cur at(kc_h5l_file *f, uint64_t addr, uint64_t len) {
    cur c = {NULL, NULL, 1};
    if (addr == f->undef || addr > f->size || f->base > f->size - addr) return c;
    uint64_t abs = f->base + addr;
    if (len > f->size - abs) return c;
    c.p = f->buf + abs;
    c.end = c.p + len;
    c.bad = 0;
    return c;
}

/* ---- the visited set: each structure once (loops and shared subtrees are refused) ---- */

static int seen_add(kc_h5l_file *f, uint64_t addr, int tag) {
    uint64_t key = ((addr << 3) | (uint64_t)tag) + 1;
    if ((f->seen_n + 1) * 2 > f->seen_cap) {
        size_t nc = f->seen_cap ? f->seen_cap * 2 : 256;
        if (nc * sizeof(uint64_t) > f->alloc_limit - f->alloc) {
            corrupt(f, "its metadata would need more memory than its size allows");
            return -1;
        }
        uint64_t *ns = calloc(nc, sizeof *ns);
        if (!ns) return kc_err(KC_ENOMEM, "%s: out of memory", f->path), f->failed = 1, -1;
        f->alloc += nc * sizeof *ns;
        for (size_t i = 0; i < f->seen_cap; i++)
            if (f->seen[i]) {
                size_t h = (size_t)((f->seen[i] * 0x9E3779B97F4A7C15ull) >> 20) & (nc - 1);
                while (ns[h]) h = (h + 1) & (nc - 1);
                ns[h] = f->seen[i];
            }
        free(f->seen);
        f->seen = ns;
        f->seen_cap = nc;
    }
    size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & (f->seen_cap - 1);
    while (f->seen[h]) {
        if (f->seen[h] == key) return 1;
        h = (h + 1) & (f->seen_cap - 1);
    }
    f->seen[h] = key;
    f->seen_n++;
    return 0;
}

/* ---- datatypes and dataspaces ---- */

static kc_status parse_dtype(kc_h5l_file *f, cur *c, h5type *t, const char *where) {
    uint64_t b0 = cu(c, 1), bits = cu(c, 3), size = cu(c, 4);
    if (c->bad) return corrupt(f, "%s: truncated datatype", where);
    int cls = (int)(b0 & 15), version = (int)(b0 >> 4);
    if (version < 1 || version > 3) return corrupt(f, "%s: datatype version %d", where, version);
    memset(t, 0, sizeof *t);
    switch (cls) {
    case 0: { /* fixed-point */
        uint64_t off = cu(c, 2), prec = cu(c, 2);
        if (c->bad) return corrupt(f, "%s: truncated integer type", where);
        if (size != 1 && size != 2 && size != 4 && size != 8)
            return unsupported(f, "%s: an integer type of %llu bytes", where, (unsigned long long)size);
        if (off != 0 || prec != size * 8)
            return unsupported(f, "%s: an integer type with bit offset %llu, precision %llu", where,
                               (unsigned long long)off, (unsigned long long)prec);
        t->cls = KC_H5L_INT;
        t->be = bits & 1;
        t->sgn = (bits & 8) != 0;
        t->elem = size;
        return KC_OK;
    }
    case 1: { /* floating-point */
        uint64_t off = cu(c, 2), prec = cu(c, 2), eloc = cu(c, 1), esize = cu(c, 1),
                 mloc = cu(c, 1), msize = cu(c, 1), bias = cu(c, 4);
        if (c->bad) return corrupt(f, "%s: truncated float type", where);
        if (bits & 0x40) return unsupported(f, "%s: a VAX-order float type", where);
        int ieee32 = size == 4 && off == 0 && prec == 32 && eloc == 23 && esize == 8 &&
                     mloc == 0 && msize == 23 && bias == 127;
        int ieee64 = size == 8 && off == 0 && prec == 64 && eloc == 52 && esize == 11 &&
                     mloc == 0 && msize == 52 && bias == 1023;
        if (!ieee32 && !ieee64)
            return unsupported(f, "%s: a float type of %llu bytes that is not IEEE float32 or "
                                  "float64 (float16?)", where, (unsigned long long)size);
        t->cls = KC_H5L_FLOAT;
        t->be = bits & 1;
        t->elem = size;
        return KC_OK;
    }
    case 3: /* fixed-length string */
        if (size == 0 || size > f->size) return corrupt(f, "%s: a string type of %llu bytes", where,
                                                        (unsigned long long)size);
        t->cls = KC_H5L_STRING;
        t->elem = size;
        return KC_OK;
    case 9: { /* variable-length */
        if ((bits & 15) != 1) return unsupported(f, "%s: a variable-length sequence type", where);
        /* the base type: a one-byte character (not parsed further: nothing is recursive) */
        uint64_t base = cu(c, 1);
        cbytes(c, 7);
        if (c->bad || ((base & 15) != 3 && (base & 15) != 0))
            return corrupt(f, "%s: a variable-length string's base type", where);
        t->cls = KC_H5L_VLEN_STRING;
        t->elem = 4 + (size_t)f->so + 4;
        return KC_OK;
    }
    default: {
        static const char *const names[] = {"integer", "float", "time", "string", "bitfield",
                                            "opaque", "compound", "reference", "enum",
                                            "variable-length", "array"};
        return unsupported(f, "%s: the %s datatype class", where,
                           cls < 11 ? names[cls] : "unknown");
    }
    }
}

static kc_status parse_dspace(kc_h5l_file *f, cur *c, h5space *s, const char *where) {
    int version = (int)cu(c, 1), rank = (int)cu(c, 1), flags = (int)cu(c, 1), type = 1;
    memset(s, 0, sizeof *s);
    if (version == 1) {
        cbytes(c, 5);
        if (rank == 0) type = 0;
    } else if (version == 2) {
        type = (int)cu(c, 1);
    } else if (!c->bad)
        return corrupt(f, "%s: dataspace version %d", where, version);
    if (c->bad) return corrupt(f, "%s: truncated dataspace", where);
    if (rank > MAX_RANK) return corrupt(f, "%s: a dataspace of rank %d", where, rank);
    if (type == 2) {
        s->null_space = 1;
        return KC_OK;
    }
    if (type > 2 || (type == 0 && rank)) return corrupt(f, "%s: dataspace type %d", where, type);
    s->rank = rank;
    s->count = 1;
    for (int i = 0; i < rank; i++) {
        uint64_t d = cu(c, f->sl);
        if (c->bad) return corrupt(f, "%s: truncated dataspace", where);
        if (d > ((uint64_t)1 << 48)) return corrupt(f, "%s: a dimension of %llu", where,
                                                     (unsigned long long)d);
        s->dims[i] = (int64_t)d;
        if (d && (uint64_t)s->count > ((uint64_t)1 << 48) / d)
            return corrupt(f, "%s: a dataspace of more than 2^48 elements", where);
        s->count *= (int64_t)d;
    }
    if (flags & 1) cbytes(c, (uint64_t)rank * (uint64_t)f->sl); /* maximum dims: unused */
    if (flags & 2) return unsupported(f, "%s: a permuted dataspace", where);
    if (c->bad) return corrupt(f, "%s: truncated dataspace", where);
    return KC_OK;
}

/* ---- object headers ---- */

static kc_status parse_object(kc_h5l_file *f, uint64_t addr, int depth, kc_h5l_node **out);

static kc_status add_link(kc_h5l_file *f, kc_h5l_node *n, const char *name, size_t len,
                          uint64_t addr) {
    if (!charge(f, 1)) return failure();
    if (!grow(f, (void **)&n->link_names, &n->cap_links, n->n_links + 1, sizeof(char *)))
        return failure();
    char *copy = lalloc(f, len + 1);
    if (!copy) return failure();
    memcpy(copy, name, len);
    copy[len] = 0;
    if (!len || strlen(copy) != len || strchr(copy, '/'))
        return free(copy), corrupt(f, "a link name that is empty or holds '/' or NUL");
    n->link_names[n->n_links] = copy;
    /* link_addrs grows with link_names (same capacity) */
    uint64_t *la = realloc(n->link_addrs, sizeof *la * (size_t)n->cap_links);
    if (!la) return free(copy), n->link_names[n->n_links] = NULL, kc_err(KC_ENOMEM, "out of memory");
    n->link_addrs = la;
    n->link_addrs[n->n_links++] = addr;
    return KC_OK;
}

static kc_status parse_attr(kc_h5l_file *f, kc_h5l_node *n, cur *c) {
    const char *where = "an attribute";
    int version = (int)cu(c, 1), flags = (int)cu(c, 1);
    uint64_t name_size = cu(c, 2), type_size = cu(c, 2), space_size = cu(c, 2);
    if (version == 3) cu(c, 1); /* name encoding */
    if (c->bad || version < 1 || version > 3) return corrupt(f, "attribute message version %d", version);
    if (version >= 2 && (flags & 3)) return unsupported(f, "an attribute with a shared datatype");
    uint64_t pad = version == 1 ? 7 : 0;
    const uint8_t *name = cbytes(c, (name_size + pad) & ~pad);
    if (!name || name_size == 0 || memchr(name, 0, name_size) != name + name_size - 1)
        return corrupt(f, "an attribute's name");
    if (!grow(f, (void **)&n->attrs, &n->cap_attrs, n->n_attrs + 1, sizeof(h5attr)))
        return failure();
    h5attr *a = &n->attrs[n->n_attrs];
    const uint8_t *tp = cbytes(c, (type_size + pad) & ~pad);
    const uint8_t *sp = cbytes(c, (space_size + pad) & ~pad);
    if (!tp || !sp) return corrupt(f, "a truncated attribute message");
    cur tc = {tp, tp + type_size, 0}, sc = {sp, sp + space_size, 0};
    kc_status st = parse_dtype(f, &tc, &a->t, where);
    if (!st) st = parse_dspace(f, &sc, &a->s, where);
    if (st) return st;
    uint64_t bytes = (uint64_t)a->s.count * a->t.elem;
    if (a->s.count && bytes / (uint64_t)a->s.count != a->t.elem) return corrupt(f, "an attribute's size");
    a->data = cbytes(c, bytes);
    if (!a->data) return corrupt(f, "an attribute declares %llu bytes of data, its message holds %zu",
                                 (unsigned long long)bytes, cleft(c));
    a->name = lalloc(f, name_size);
    if (!a->name) return failure();
    memcpy(a->name, name, name_size);
    if (!charge(f, (uint64_t)n->n_attrs)) { /* the name check below: quadratic in a header */
        free(a->name);
        a->name = NULL;
        return failure();
    }
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, a->name)) {
            free(a->name);
            a->name = NULL;
            return corrupt(f, "two attributes named '%s'", (char *)name);
        }
    n->n_attrs++;
    return KC_OK;
}

/* the symbol-table group: B-tree (type 0) of symbol nodes naming objects in the local heap */
typedef struct {
    const uint8_t *heap;
    uint64_t heap_size;
} lheap;

static kc_status read_snod(kc_h5l_file *f, kc_h5l_node *n, uint64_t addr, const lheap *h) {
    int s = seen_add(f, addr, 2);
    if (s) return s < 0 ? KC_EFORMAT : corrupt(f, "a symbol node reached twice (a loop)");
    cur c = at(f, addr, 8);
    const uint8_t *sig = cbytes(&c, 4);
    int version = (int)cu(&c, 1);
    cu(&c, 1);
    uint64_t nsym = cu(&c, 2);
    if (c.bad || memcmp(sig, "SNOD", 4) || version != 1) return corrupt(f, "a symbol node at byte %llu", (unsigned long long)addr);
    size_t esize = 2 * (size_t)f->so + 24;
    c = at(f, addr + 8, nsym * esize);
    if (c.bad) return corrupt(f, "a symbol node's %llu entries lie outside the file", (unsigned long long)nsym);
    for (uint64_t i = 0; i < nsym; i++) {
        uint64_t name_off = cu(&c, f->so), obj = cu(&c, f->so);
        cbytes(&c, 24);
        if (c.bad) return corrupt(f, "a symbol node entry");
        if (name_off >= h->heap_size) return corrupt(f, "a link name outside the local heap");
        const uint8_t *nm = h->heap + name_off;
        const uint8_t *z = memchr(nm, 0, h->heap_size - name_off);
        if (!z) return corrupt(f, "a link name without its terminating NUL");
        kc_status st = add_link(f, n, (const char *)nm, (size_t)(z - nm), obj);
        if (st) return st;
    }
    return KC_OK;
}

static kc_status read_btree(kc_h5l_file *f, kc_h5l_node *n, uint64_t addr, int level,
                            const lheap *h) {
    int s = seen_add(f, addr, 1);
    if (s) return s < 0 ? KC_EFORMAT : corrupt(f, "a B-tree node reached twice (a loop)");
    size_t hdr = 8 + 2 * (size_t)f->so;
    cur c = at(f, addr, hdr);
    const uint8_t *sig = cbytes(&c, 4);
    int type = (int)cu(&c, 1), lv = (int)cu(&c, 1);
    uint64_t entries = cu(&c, 2);
    if (c.bad || memcmp(sig, "TREE", 4)) return corrupt(f, "a B-tree node at byte %llu", (unsigned long long)addr);
    if (type != 0) return corrupt(f, "a group's B-tree of node type %d", type);
    if (lv >= MAX_BTREE_LEVEL || (level >= 0 && lv != level))
        return corrupt(f, "a B-tree node of level %d (expected %d)", lv, level);
    c = at(f, addr + hdr, entries * (size_t)(f->so + f->sl) + (size_t)f->sl);
    if (c.bad) return corrupt(f, "a B-tree node's %llu entries lie outside the file", (unsigned long long)entries);
    cu(&c, f->sl);
    for (uint64_t i = 0; i < entries; i++) {
        uint64_t child = cu(&c, f->so);
        cu(&c, f->sl);
        if (!charge(f, 1)) return failure();
        kc_status st = lv == 0 ? read_snod(f, n, child, h) : read_btree(f, n, child, lv - 1, h);
        if (st) return st;
    }
    return KC_OK;
}

static kc_status read_symtab(kc_h5l_file *f, kc_h5l_node *n, uint64_t btree, uint64_t heap) {
    cur c = at(f, heap, 8 + 2 * (size_t)f->sl + (size_t)f->so);
    const uint8_t *sig = cbytes(&c, 4);
    int version = (int)cu(&c, 1);
    cbytes(&c, 3);
    uint64_t seg_size = cu(&c, f->sl);
    cu(&c, f->sl);
    uint64_t seg_addr = cu(&c, f->so);
    if (c.bad || memcmp(sig, "HEAP", 4) || version != 0)
        return corrupt(f, "a local heap at byte %llu", (unsigned long long)heap);
    cur d = at(f, seg_addr, seg_size);
    if (d.bad) return corrupt(f, "a local heap's data lies outside the file");
    lheap h = {d.p, seg_size};
    return read_btree(f, n, btree, -1, &h);
}

static kc_status parse_link(kc_h5l_file *f, kc_h5l_node *n, cur *c) {
    int version = (int)cu(c, 1), flags = (int)cu(c, 1), type = 0;
    if (c->bad || version != 1) return corrupt(f, "link message version %d", version);
    if (flags & 8) type = (int)cu(c, 1);
    if (flags & 4) cu(c, 8);
    if (flags & 16) cu(c, 1);
    uint64_t len = cu(c, 1 << (flags & 3));
    const uint8_t *name = cbytes(c, len);
    if (!name || len == 0) return corrupt(f, "a link message's name");
    if (type == 1) return unsupported(f, "a soft link");
    if (type != 0) return unsupported(f, "an external or user-defined link (type %d)", type);
    uint64_t obj = cu(c, f->so);
    if (c->bad) return corrupt(f, "a truncated link message");
    return add_link(f, n, (const char *)name, (size_t)len, obj);
}

static int cmp_link(const void *a, const void *b, void *ctx) {
    const kc_h5l_node *n = ctx;
    return strcmp(n->link_names[*(const int *)a], n->link_names[*(const int *)b]);
}

/* sorts a group's links by name (insertion into an index, then permuted) */
static kc_status sort_links(kc_h5l_file *f, kc_h5l_node *n) {
    int k = n->n_links;
    if (k < 2) return KC_OK;
    int *idx = malloc(sizeof *idx * (size_t)k);
    char **names = malloc(sizeof *names * (size_t)k);
    uint64_t *addrs = malloc(sizeof *addrs * (size_t)k);
    if (!idx || !names || !addrs) {
        free(idx), free(names), free(addrs);
        return kc_err(KC_ENOMEM, "out of memory");
    }
    for (int i = 0; i < k; i++) idx[i] = i;
    qsort_r(idx, (size_t)k, sizeof *idx, cmp_link, n);
    for (int i = 0; i < k; i++) {
        names[i] = n->link_names[idx[i]];
        addrs[i] = n->link_addrs[idx[i]];
    }
    memcpy(n->link_names, names, sizeof *names * (size_t)k);
    memcpy(n->link_addrs, addrs, sizeof *addrs * (size_t)k);
    free(idx), free(names), free(addrs);
    for (int i = 1; i < k; i++)
        if (!strcmp(n->link_names[i - 1], n->link_names[i]))
            return corrupt(f, "two links named '%s' in one group", n->link_names[i]);
    return KC_OK;
}

typedef struct {
    uint64_t addr, len;
} chunk;

static kc_status parse_object(kc_h5l_file *f, uint64_t addr, int depth, kc_h5l_node **out) {
    *out = NULL;
    if (depth > MAX_DEPTH) return unsupported(f, "groups nested more than %d deep", MAX_DEPTH);
    int s = seen_add(f, addr, 0);
    if (s) return s < 0 ? KC_EFORMAT
                        : corrupt(f, "the object at byte %llu is reached twice (a group that "
                                     "contains itself, or a hard link kerac does not read)",
                                  (unsigned long long)addr);
    cur c = at(f, addr, 16);
    if (!c.bad && !memcmp(c.p, "OHDR", 4))
        return unsupported(f, "object header version 2 (a file written with libver='latest')");
    int version = (int)cu(&c, 1);
    cu(&c, 3);
    cu(&c, 4);
    uint64_t hsize = cu(&c, 4);
    if (c.bad || version != 1) return corrupt(f, "the object header at byte %llu", (unsigned long long)addr);
    if (!grow(f, (void **)&f->nodes, &f->cap_nodes, f->n_nodes + 1, sizeof *f->nodes)) return failure();
    kc_h5l_node *n = lalloc(f, sizeof *n);
    if (!n) return failure();
    f->nodes[f->n_nodes++] = n;
    n->file = f;
    n->addr = addr;
    chunk *chunks = NULL;
    int n_chunks = 1, cap_chunks = 0;
    if (!grow(f, (void **)&chunks, &cap_chunks, 1, sizeof *chunks)) return failure();
    chunks[0] = (chunk){addr + 16, hsize};
    int has_type = 0, has_space = 0, has_layout = 0, has_symtab = 0;
    uint64_t btree = 0, heap = 0;
    kc_status st = KC_OK;
    for (int ci = 0; ci < n_chunks && !st; ci++) {
        cur m = at(f, chunks[ci].addr, chunks[ci].len);
        if (m.bad) {
            st = corrupt(f, "an object header's %llu bytes at %llu lie outside the file",
                         (unsigned long long)chunks[ci].len, (unsigned long long)chunks[ci].addr);
            break;
        }
        while (!st && cleft(&m) >= 8) {
            if (!charge(f, 1)) {
                st = failure();
                break;
            }
            int type = (int)cu(&m, 2);
            uint64_t size = cu(&m, 2);
            int flags = (int)cu(&m, 1);
            cu(&m, 3);
            const uint8_t *d = cbytes(&m, size);
            if (!d) {
                st = corrupt(f, "a header message of %llu bytes runs past its header",
                             (unsigned long long)size);
                break;
            }
            cur mc = {d, d + size, 0};
            if ((flags & 2) && type != 0) {
                st = unsupported(f, "a shared header message (type %d: a committed datatype?)", type);
                break;
            }
            switch (type) {
            case 0x00: case 0x04: case 0x05: case 0x0A: case 0x0D: case 0x0E: case 0x12:
            case 0x13: case 0x16:
                break; /* nil, fill values, group info, comment, times, refcount */
            case 0x01:
                if (has_space++) st = corrupt(f, "two dataspace messages");
                else st = parse_dspace(f, &mc, &n->s, "a dataset");
                break;
            case 0x03:
                if (has_type++) st = corrupt(f, "two datatype messages");
                else st = parse_dtype(f, &mc, &n->t, "a dataset");
                break;
            case 0x08: {
                if (has_layout++) {
                    st = corrupt(f, "two layout messages");
                    break;
                }
                int lv = (int)cu(&mc, 1), lc = (int)cu(&mc, 1);
                if (mc.bad) st = corrupt(f, "a truncated layout message");
                else if (lv < 3 || lv > 4) st = unsupported(f, "dataset layout message version %d", lv);
                else if (lc == 0) {
                    uint64_t sz = cu(&mc, 2);
                    n->data = cbytes(&mc, sz);
                    n->data_size = (size_t)sz;
                    if (!n->data) st = corrupt(f, "a compact dataset's data");
                } else if (lc == 1) {
                    uint64_t da = cu(&mc, f->so), sz = cu(&mc, f->sl);
                    if (mc.bad) st = corrupt(f, "a truncated layout message");
                    else if (da == f->undef) {
                        if (sz) n->data_size = (size_t)-1; /* checked below: never written */
                    } else {
                        cur dc = at(f, da, sz);
                        if (dc.bad)
                            st = corrupt(f, "a dataset declares %llu bytes at %llu, outside the "
                                            "file's %zu", (unsigned long long)sz,
                                         (unsigned long long)da, f->size);
                        n->data = dc.p;
                        n->data_size = (size_t)sz;
                    }
                } else if (lc == 2)
                    st = unsupported(f, "a chunked dataset layout");
                else
                    st = unsupported(f, "dataset layout class %d (virtual?)", lc);
                break;
            }
            case 0x0B:
                st = unsupported(f, "a dataset with filters (compression or checksums)");
                break;
            case 0x07:
                st = unsupported(f, "external data storage");
                break;
            case 0x0C:
                st = parse_attr(f, n, &mc);
                break;
            case 0x10: {
                uint64_t ca = cu(&mc, f->so), cl = cu(&mc, f->sl);
                if (mc.bad) {
                    st = corrupt(f, "a truncated continuation message");
                    break;
                }
                int sc = seen_add(f, ca, 3);
                if (sc) {
                    st = sc < 0 ? KC_EFORMAT : corrupt(f, "an object header continuation loop");
                    break;
                }
                if (!grow(f, (void **)&chunks, &cap_chunks, n_chunks + 1, sizeof *chunks)) {
                    st = failure();
                    break;
                }
                chunks[n_chunks++] = (chunk){ca, cl};
                break;
            }
            case 0x11:
                if (has_symtab++) {
                    st = corrupt(f, "two symbol table messages");
                    break;
                }
                btree = cu(&mc, f->so);
                heap = cu(&mc, f->so);
                if (mc.bad) st = corrupt(f, "a truncated symbol table message");
                n->is_group = 1;
                break;
            case 0x06:
                n->is_group = 1;
                st = parse_link(f, n, &mc);
                break;
            case 0x02: /* link info: a fractal heap of links is dense storage */
            case 0x15: { /* attribute info: likewise */
                int v = (int)cu(&mc, 1), fl = (int)cu(&mc, 1);
                if (type == 0x02) {
                    cu(&mc, (fl & 1) ? 8 : 0);
                    n->is_group = 1;
                } else if (fl & 1)
                    cu(&mc, 2);
                uint64_t fheap = cu(&mc, f->so);
                if (mc.bad || v != 0) st = corrupt(f, "a link or attribute info message");
                else if (fheap != f->undef)
                    st = unsupported(f, type == 0x02 ? "dense link storage (a group of many links "
                                                       "written with libver='latest')"
                                                     : "dense attribute storage");
                break;
            }
            default:
                st = unsupported(f, "object header message type %d", type);
            }
        }
    }
    free(chunks);
    f->alloc -= (size_t)cap_chunks * sizeof(chunk);
    if (st) return st;
    n->is_dataset = has_layout;
    if (n->is_group && (has_layout || has_type || has_space))
        return corrupt(f, "an object that is both a group and a dataset");
    if (has_layout) {
        if (!has_type || !has_space) return corrupt(f, "a dataset without its datatype or dataspace");
        if (n->t.cls == KC_H5L_VLEN_STRING)
            return unsupported(f, "a dataset of variable-length strings");
        uint64_t bytes = (uint64_t)n->s.count * n->t.elem;
        if (n->s.count && bytes / (uint64_t)n->s.count != n->t.elem) return corrupt(f, "a dataset's size");
        if (n->data_size == (size_t)-1 && bytes)
            return unsupported(f, "a dataset whose data was never written");
        if (!n->data && bytes) return corrupt(f, "a dataset of %llu bytes without data", (unsigned long long)bytes);
        if (n->data && n->data_size != bytes)
            return corrupt(f, "a dataset holds %zu bytes, its shape and type need %llu",
                           n->data_size, (unsigned long long)bytes);
    } else if (!n->is_group)
        return unsupported(f, "an object that is neither a group nor a dataset (a named datatype?)");
    if (has_symtab) {
        if (n->n_links) return corrupt(f, "a group with both a symbol table and link messages");
        st = read_symtab(f, n, btree, heap);
        if (st) return st;
    }
    st = sort_links(f, n);
    if (st) return st;
    if (n->n_links) {
        n->links = lalloc(f, sizeof *n->links * (size_t)n->n_links);
        if (!n->links) return failure();
    }
    for (int i = 0; i < n->n_links; i++) {
        st = parse_object(f, n->link_addrs[i], depth + 1, &n->links[i]);
        if (st) return st;
    }
    *out = n;
    return KC_OK;
}

/* ---- the file ---- */

void kc_h5l_close(kc_h5l_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n_nodes; i++) {
        kc_h5l_node *n = f->nodes[i];
        for (int k = 0; k < n->n_links; k++) free(n->link_names[k]);
        free(n->link_names);
        free(n->link_addrs);
        free(n->links);
        for (int k = 0; k < n->n_attrs; k++) free(n->attrs[k].name);
        free(n->attrs);
        free(n);
    }
    for (int i = 0; i < f->n_gcols; i++) free(f->gcols[i].objs);
    free(f->gcols);
    free(f->nodes);
    free(f->seen);
    free(f->path);
    free(f);
}

kc_h5l_file *kc_h5l_open(const char *path, const void *data, size_t size) {
    if (size < 8 || memcmp(data, "\x89HDF\r\n\x1a\n", 8)) {
        kc_err(KC_EFORMAT, "%s: not an HDF5 file (no HDF5 signature)", path);
        return NULL;
    }
    kc_h5l_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        kc_err(KC_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    f->buf = data;
    f->size = size;
    f->work_limit = (uint64_t)size * 4 + 100000;
    f->alloc_limit = size * 16 + (1u << 20);
    f->so = f->sl = 8;
    f->undef = ~(uint64_t)0;
    f->base = 0;
    cur c = at(f, 0, size);
    cbytes(&c, 8);
    int version = (int)cu(&c, 1);
    kc_status st = KC_OK;
    if (version == 2 || version == 3)
        st = unsupported(f, "superblock version %d (a file written with libver='latest')", version);
    else if (version > 3)
        st = corrupt(f, "superblock version %d", version);
    if (!st) {
        cbytes(&c, 4);
        int so = (int)cu(&c, 1), sl = (int)cu(&c, 1);
        cu(&c, 1);
        cu(&c, 2);
        cu(&c, 2);
        cu(&c, 4);
        if (version == 1) cu(&c, 4);
        if (c.bad || (so != 2 && so != 4 && so != 8) || (sl != 2 && sl != 4 && sl != 8))
            st = corrupt(f, "the superblock (sizes of offsets %d and lengths %d)", so, sl);
        else {
            f->so = so;
            f->sl = sl;
            f->undef = so == 8 ? ~(uint64_t)0 : ((uint64_t)1 << (8 * so)) - 1;
            uint64_t base = cu(&c, so);
            cu(&c, so);
            uint64_t eof = cu(&c, so);
            cu(&c, so);
            cu(&c, so); /* the root's symbol table entry: name offset */
            uint64_t root = cu(&c, so);
            if (c.bad) st = corrupt(f, "a truncated superblock");
            else if (base != 0)
                st = unsupported(f, "a base address of %llu (a user block)", (unsigned long long)base);
            else if (eof > size)
                st = corrupt(f, "truncated: the superblock says %llu bytes, the file has %zu",
                             (unsigned long long)eof, size);
            else
                st = parse_object(f, root, 0, &f->root);
            if (!st && !f->root->is_group) st = corrupt(f, "the root object is not a group");
        }
    }
    if (st) {
        kc_h5l_close(f);
        return NULL;
    }
    return f;
}

const kc_h5l_node *kc_h5l_root(const kc_h5l_file *f) { return f->root; }
int kc_h5l_is_group(const kc_h5l_node *n) { return n && n->is_group; }
int kc_h5l_n_children(const kc_h5l_node *n) { return n ? n->n_links : -1; }
const char *kc_h5l_child_name(const kc_h5l_node *n, int i) { return n->link_names[i]; }
const kc_h5l_node *kc_h5l_child(const kc_h5l_node *n, int i) { return n->links[i]; }

static const kc_h5l_node *find_child(const kc_h5l_node *n, const char *name, size_t len) {
    int lo = 0, hi = n->n_links - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const char *s = n->link_names[mid];
        int c = strncmp(s, name, len);
        if (!c) c = s[len] ? 1 : 0;
        if (!c) return n->links[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

const kc_h5l_node *kc_h5l_find(const kc_h5l_node *loc, const char *path) {
    const kc_h5l_node *n = loc;
    while (n && *path) {
        const char *e = strchr(path, '/');
        size_t len = e ? (size_t)(e - path) : strlen(path);
        if (len) {
            if (!n->is_group) return NULL;
            n = find_child(n, path, len);
        }
        path += len;
        if (*path == '/') path++;
    }
    return n;
}

/* ---- values ---- */

int kc_h5l_n_attrs(const kc_h5l_node *n) { return n ? n->n_attrs : 0; }
const char *kc_h5l_attr_name(const kc_h5l_node *n, int i) { return n->attrs[i].name; }
int kc_h5l_attr_index(const kc_h5l_node *n, const char *name) {
    for (int i = 0; n && i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return i;
    return -1;
}

void kc_h5l_attr_info(const kc_h5l_node *n, int i, kc_h5l_class *cls, size_t *elem, int *rank,
                      int64_t *dims, int64_t *count) {
    const h5attr *a = &n->attrs[i];
    *cls = a->t.cls;
    *elem = a->t.elem;
    *rank = a->s.rank;
    memcpy(dims, a->s.dims, sizeof(int64_t) * (size_t)a->s.rank);
    *count = a->s.null_space ? 0 : a->s.count;
}

void kc_h5l_dset_info(const kc_h5l_node *n, kc_h5l_class *cls, size_t *elem, int *rank,
                      int64_t *dims) {
    *cls = n->t.cls;
    *elem = n->t.elem;
    *rank = n->s.rank;
    memcpy(dims, n->s.dims, sizeof(int64_t) * (size_t)n->s.rank);
}

static uint64_t raw(const uint8_t *p, size_t n, int be) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
    return v;
}

static double elem_f64(const h5type *t, const uint8_t *p) {
    uint64_t v = raw(p, t->elem, t->be);
    if (t->cls == KC_H5L_FLOAT) {
        if (t->elem == 4) {
            uint32_t u = (uint32_t)v;
            float x;
            memcpy(&x, &u, 4);
            return x;
        }
        double x;
        memcpy(&x, &v, 8);
        return x;
    }
    if (t->sgn && t->elem < 8 && (v >> (8 * t->elem - 1)) & 1) v |= ~(uint64_t)0 << (8 * t->elem);
    return t->sgn ? (double)(int64_t)v : (double)v;
}

static int numeric(const h5type *t) { return t->cls == KC_H5L_INT || t->cls == KC_H5L_FLOAT; }

kc_status kc_h5l_attr_f64(const kc_h5l_node *n, const char *name, double *out, int64_t cap,
                          int64_t *count) {
    int i = kc_h5l_attr_index(n, name);
    if (i < 0) return kc_err(KC_EFORMAT, "%s: no attribute %s", n->file->path, name);
    const h5attr *a = &n->attrs[i];
    if (!numeric(&a->t)) return kc_err(KC_EFORMAT, "%s: attribute %s holds no numbers", n->file->path, name);
    *count = a->s.null_space ? 0 : a->s.count;
    for (int64_t k = 0; k < *count && k < cap; k++) out[k] = elem_f64(&a->t, a->data + (size_t)k * a->t.elem);
    return KC_OK;
}

static int cmp_gobj(const void *a, const void *b) {
    const gobj *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

/* the global heap collection at addr, parsed once */
static const gcol *get_gcol(kc_h5l_file *f, uint64_t addr) {
    for (int i = 0; i < f->n_gcols; i++) {
        if (!charge(f, 1)) return NULL;
        if (f->gcols[i].addr == addr) return &f->gcols[i];
    }
    cur c = at(f, addr, 16);
    const uint8_t *sig = cbytes(&c, 4);
    int version = (int)cu(&c, 1);
    cbytes(&c, 3);
    uint64_t csize = cu(&c, f->sl);
    if (c.bad || memcmp(sig, "GCOL", 4) || version != 1) {
        corrupt(f, "a global heap collection at byte %llu", (unsigned long long)addr);
        return NULL;
    }
    c = at(f, addr, csize);
    if (c.bad || csize < 16) {
        corrupt(f, "a global heap collection of %llu bytes outside the file", (unsigned long long)csize);
        return NULL;
    }
    cbytes(&c, 16);
    if (!grow(f, (void **)&f->gcols, &f->cap_gcols, f->n_gcols + 1, sizeof(gcol))) return NULL;
    gcol *g = &f->gcols[f->n_gcols++];
    g->addr = addr;
    int cap = 0;
    while (cleft(&c) >= 8 + (size_t)f->sl) {
        if (!charge(f, 1)) goto partial;
        uint64_t index = cu(&c, 2);
        cu(&c, 2);
        cu(&c, 4);
        uint64_t osize = cu(&c, f->sl);
        if (index == 0) break; /* free space: the rest */
        const uint8_t *d = cbytes(&c, osize);
        if (!d) {
            corrupt(f, "a global heap object of %llu bytes runs past its collection",
                    (unsigned long long)osize);
            goto partial;
        }
        cbytes(&c, (8 - osize % 8) % 8);
        c.bad = 0; /* the padding may be cut by the collection's end */
        if (!grow(f, (void **)&g->objs, &cap, g->n + 1, sizeof(gobj))) goto partial;
        g->objs[g->n++] = (gobj){(uint16_t)index, d, osize};
    }
    if (g->n) qsort(g->objs, (size_t)g->n, sizeof(gobj), cmp_gobj);
    return g;
partial: /* not kept half read: a later lookup would find objects missing */
    free(g->objs);
    memset(g, 0, sizeof *g);
    f->n_gcols--;
    return NULL;
}

/* element k of a string attribute, malloc'd; *budget: bytes the strings may still take */
static char *attr_string(kc_h5l_file *f, const h5attr *a, int64_t k, uint64_t *budget) {
    const uint8_t *p = a->data + (size_t)k * a->t.elem;
    const uint8_t *s;
    uint64_t len;
    if (a->t.cls == KC_H5L_STRING) {
        s = p;
        len = a->t.elem;
        const uint8_t *z = memchr(s, 0, len); /* as strndup on libhdf5's bytes */
        if (z) len = (uint64_t)(z - s);
    } else {
        cur c = {p, p + a->t.elem, 0};
        len = cu(&c, 4);
        uint64_t addr = cu(&c, f->so), index = cu(&c, 4);
        if (len == 0) s = (const uint8_t *)"";
        else {
            const gcol *g = get_gcol(f, addr);
            if (!g) return NULL;
            gobj key = {(uint16_t)index, NULL, 0};
            const gobj *o = index < 65536 && g->n
                                ? bsearch(&key, g->objs, (size_t)g->n, sizeof(gobj), cmp_gobj)
                                : NULL;
            if (!o) {
                corrupt(f, "attribute %s: a string's global heap object %llu is missing", a->name,
                        (unsigned long long)index);
                return NULL;
            }
            if (len > o->size) {
                corrupt(f, "attribute %s: a string of %llu bytes in a heap object of %llu", a->name,
                        (unsigned long long)len, (unsigned long long)o->size);
                return NULL;
            }
            s = o->data;
        }
    }
    if (len + 1 > *budget) {
        corrupt(f, "attribute %s: its strings would take more memory than the file's size allows",
                a->name);
        return NULL;
    }
    *budget -= len + 1;
    char *out = malloc((size_t)len + 1);
    if (!out) {
        kc_err(KC_ENOMEM, "%s: out of memory", f->path);
        return NULL;
    }
    memcpy(out, s, (size_t)len);
    out[len] = 0;
    return out;
}

char **kc_h5l_attr_strs(const kc_h5l_node *n, const char *name, int *count) {
    *count = 0;
    int i = n ? kc_h5l_attr_index(n, name) : -1;
    if (i < 0) return NULL; /* absent: no error set */
    kc_h5l_file *f = n->file;
    const h5attr *a = &n->attrs[i];
    int64_t cnt = a->s.null_space ? 0 : a->s.count;
    if (a->t.cls != KC_H5L_STRING && a->t.cls != KC_H5L_VLEN_STRING) {
        if (cnt == 0) return calloc(1, sizeof(char *)); /* an empty list: float64 [] */
        kc_err(KC_EFORMAT, "%s: attribute %s holds no strings", f->path, name);
        return NULL;
    }
    if (cnt > 100000) {
        kc_err(KC_EFORMAT, "%s: attribute %s holds %lld strings", f->path, name, (long long)cnt);
        return NULL;
    }
    char **out = calloc((size_t)cnt + 1, sizeof *out);
    if (!out) {
        kc_err(KC_ENOMEM, "%s: out of memory", f->path);
        return NULL;
    }
    uint64_t budget = (uint64_t)f->size * 4 + (1u << 20);
    for (int64_t k = 0; k < cnt; k++)
        if (!(out[k] = attr_string(f, a, k, &budget))) {
            kc_h5_free_list(out, (int)k);
            return NULL;
        }
    *count = (int)cnt;
    return out;
}

char *kc_h5l_attr_str(const kc_h5l_node *n, const char *name) {
    int cnt;
    char **list = kc_h5l_attr_strs(n, name, &cnt);
    if (!list) return NULL;
    char *s = cnt >= 1 ? list[0] : NULL;
    for (int i = 1; i < cnt; i++) free(list[i]);
    free(list);
    return s;
}

kc_status kc_h5l_dset_f64(const kc_h5l_node *n, double *out, int64_t cap) {
    if (!n->is_dataset || !numeric(&n->t))
        return kc_err(KC_EFORMAT, "%s: not a numeric dataset", n->file->path);
    for (int64_t k = 0; k < n->s.count && k < cap; k++)
        out[k] = elem_f64(&n->t, n->data + (size_t)k * n->t.elem);
    return KC_OK;
}

kc_status kc_h5l_dset_f32(const kc_h5l_node *n, float *out, int64_t cap) {
    if (!n->is_dataset || !numeric(&n->t))
        return kc_err(KC_EFORMAT, "%s: not a numeric dataset", n->file->path);
    if (n->t.cls == KC_H5L_FLOAT && n->t.elem == 4 && !n->t.be) {
        int64_t k = n->s.count < cap ? n->s.count : cap;
        if (k > 0) memcpy(out, n->data, sizeof(float) * (size_t)k);
        return KC_OK;
    }
    for (int64_t k = 0; k < n->s.count && k < cap; k++)
        out[k] = (float)elem_f64(&n->t, n->data + (size_t)k * n->t.elem);
    return KC_OK;
}

/* dataset name in loc, a number array of shape dims[rank] */
static const kc_h5l_node *checked(const kc_h5l_node *loc, const char *name, int rank,
                                  const int64_t *dims, const char *what) {
    const kc_h5l_node *n = kc_h5l_find(loc, name);
    if (!n) {
        kc_err(KC_EFORMAT, "%s: missing", what);
        return NULL;
    }
    if (!n->is_dataset) {
        kc_err(KC_EFORMAT, "%s: not a dataset, or unreadable", what);
        return NULL;
    }
    if (!numeric(&n->t)) {
        kc_err(KC_EFORMAT, "%s: holds %s, not numbers", what,
               n->t.cls == KC_H5L_STRING || n->t.cls == KC_H5L_VLEN_STRING ? "strings"
                                                                           : "a non-numeric type");
        return NULL;
    }
    int same = n->s.rank == rank && !n->s.null_space;
    for (int i = 0; same && i < rank; i++) same = n->s.dims[i] == dims[i];
    if (!same) {
        char have[128], need[128];
        kc_dims_str(n->s.rank, n->s.dims, have, sizeof have);
        kc_dims_str(rank, dims, need, sizeof need);
        kc_err(KC_EFORMAT, "%s: has shape %s, the model needs %s", what, have, need);
        return NULL;
    }
    return n;
}

kc_status kc_h5l_read_f32(const kc_h5l_node *loc, const char *name, float *out, int rank,
                          const int64_t *dims, const char *what) {
    const kc_h5l_node *n = checked(loc, name, rank, dims, what);
    if (!n) return failure();
    return kc_h5l_dset_f32(n, out, n->s.count);
}

kc_status kc_h5l_read_i64_scalar(const kc_h5l_node *loc, const char *name, int64_t *out,
                                 const char *what) {
    const kc_h5l_node *n = checked(loc, name, 0, NULL, what);
    if (!n) return failure();
    if (n->t.cls == KC_H5L_INT && n->t.elem == 8) {
        *out = (int64_t)raw(n->data, 8, n->t.be);
        return KC_OK;
    }
    double x = elem_f64(&n->t, n->data);
    if (!(x > -9.2e18 && x < 9.2e18))
        return kc_err(KC_EFORMAT, "%s: the value %g is not an integer", what, x);
    *out = (int64_t)x;
    return KC_OK;
}

kc_status kc_h5l_read_f32_scalar(const kc_h5l_node *loc, const char *name, float *out,
                                 const char *what) {
    return kc_h5l_read_f32(loc, name, out, 0, NULL, what);
}
