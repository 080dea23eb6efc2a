/* h5lite.h: a bounds-checked reader of the HDF5 subset Keras writes (internal).
 *
 * Every HDF5 file kerac loads is untrusted bytes: libhdf5 trusts a file's metadata (crafted
 * files make it loop forever, corrupt memory or allocate gigabytes), so loading never runs it;
 * libhdf5 only writes. h5lite parses the file's bytes already in memory: every offset and
 * length is checked against the buffer before use, every loop is bounded by the bytes it
 * consumes (and a work budget proportional to the file's size), B-tree descents are bounded in
 * depth, every object header, continuation block, B-tree node and symbol node may be visited
 * once (a loop or an object linked twice is refused), and what it allocates is bounded by the
 * file's size (a dataset's declared bytes must lie inside the file).
 *
 * The subset: superblock v0/v1, object header v1 with continuations, symbol-table groups (v1
 * B-tree type 0, SNOD, local heap) and link-message groups (hard links), attributes and
 * datasets of fixed-point (1-8 bytes), IEEE float32/float64 (LE/BE), fixed-length strings and
 * variable-length strings (global heap), scalar/simple/null dataspaces, contiguous and compact
 * layouts. Anything else is refused with a message naming the feature and the file. */
#ifndef KERAC_H5LITE_H
#define KERAC_H5LITE_H
#include "../internal.h"
#include <stddef.h>
#include <stdint.h>

typedef struct kc_h5l_file kc_h5l_file;
typedef struct kc_h5l_node kc_h5l_node; /* a group or a dataset */

typedef enum { KC_H5L_INT = 0, KC_H5L_FLOAT = 1, KC_H5L_STRING = 3, KC_H5L_VLEN_STRING = 9 } kc_h5l_class;

/* parses the whole file (data must outlive the handle); NULL with the error set, naming path */
kc_h5l_file *kc_h5l_open(const char *path, const void *data, size_t size);
void kc_h5l_close(kc_h5l_file *f);
const kc_h5l_node *kc_h5l_root(const kc_h5l_file *f);
/* the object at path ("a/b/c", relative to loc); NULL when a link along it is missing */
const kc_h5l_node *kc_h5l_find(const kc_h5l_node *loc, const char *path);
int kc_h5l_is_group(const kc_h5l_node *n);
/* a group's links in name order (strcmp: what H5Literate by name gives) */
int kc_h5l_n_children(const kc_h5l_node *n);
const char *kc_h5l_child_name(const kc_h5l_node *n, int i);
const kc_h5l_node *kc_h5l_child(const kc_h5l_node *n, int i);

/* attributes in the order of the object header */
int kc_h5l_n_attrs(const kc_h5l_node *n);
const char *kc_h5l_attr_name(const kc_h5l_node *n, int i);
int kc_h5l_attr_index(const kc_h5l_node *n, const char *name); /* -1: none */
/* class, element size, rank and dims (dims[32]); count: elements (0 for a null space) */
void kc_h5l_attr_info(const kc_h5l_node *n, int i, kc_h5l_class *cls, size_t *elem, int *rank,
                      int64_t *dims, int64_t *count);
/* the attribute as strings (fixed or variable length); an empty non-string array gives an
 * empty list, as h5py writes an empty list; NULL when absent, or with the error set when
 * unreadable; *count set.
 * Free with kc_h5_free_list. */
char **kc_h5l_attr_strs(const kc_h5l_node *n, const char *name, int *count);
char *kc_h5l_attr_str(const kc_h5l_node *n, const char *name); /* the first string */
/* 1 when a read of attribute name gave nothing (got NULL) although it is there: the read
 * failed (out of memory, damaged data) and the error is set; 0 when it is absent or was read */
static inline int kc_h5l_attr_lost(const kc_h5l_node *n, const char *name, const void *got) {
    return !got && n && kc_h5l_attr_index(n, name) >= 0;
}
/* a numeric attribute as doubles: up to cap values, *count the attribute's elements */
kc_status kc_h5l_attr_f64(const kc_h5l_node *n, const char *name, double *out, int64_t cap,
                          int64_t *count);

/* a dataset's class, element size, rank and dims (dims[32]) */
void kc_h5l_dset_info(const kc_h5l_node *n, kc_h5l_class *cls, size_t *elem, int *rank,
                      int64_t *dims);
/* a numeric dataset's elements converted to float32 / float64 (cap elements at most) */
kc_status kc_h5l_dset_f32(const kc_h5l_node *n, float *out, int64_t cap);
kc_status kc_h5l_dset_f64(const kc_h5l_node *n, double *out, int64_t cap);

/* kc_h5_read_f32's contract on dataset name in loc: numbers, of shape dims[rank] */
kc_status kc_h5l_read_f32(const kc_h5l_node *loc, const char *name, float *out, int rank,
                          const int64_t *dims, const char *what);
kc_status kc_h5l_read_i64_scalar(const kc_h5l_node *loc, const char *name, int64_t *out,
                                 const char *what);
kc_status kc_h5l_read_f32_scalar(const kc_h5l_node *loc, const char *name, float *out,
                                 const char *what);
#endif
