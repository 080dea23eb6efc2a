/* text_internal.h: what src/data/npy.c, sequence.c and text.c share (and tests/test_text.c
 * reaches): the .npy and pickle readers, NumPy's legacy MT19937 shuffle, the file locator. */
#ifndef KERAC_TEXT_INTERNAL_H
#define KERAC_TEXT_INTERNAL_H

#include "../internal.h"

/* One .npy member in memory. what names it in messages ("imdb.npz: x_train.npy"). For an
 * integer array: *ints (count values, range-checked into int32); for an object array of lists
 * of ints: *seqs (offsets and values; labels NULL). Exactly one is filled; rank must be 1. */
kc_status kc_npy_parse(const char *what, const uint8_t *data, size_t size, int32_t **ints,
                       kc_sequences *seqs, int64_t *count);

/* A pickle stream of a 1-d NumPy object array whose elements are lists of ints (what np.save
 * writes for such an array): into seqs. Refuses any other opcode or global by name; memory and
 * work are bounded by the stream's length. */
kc_status kc_pickle_read_int_lists(const char *what, const uint8_t *data, size_t size,
                                   kc_sequences *seqs);

/* NumPy's legacy MT19937 (np.random.RandomState(seed)) and its shuffle (Fisher-Yates with
 * random_interval), so that permutations equal NumPy's. */
typedef struct {
    uint32_t mt[624];
    int pos;
} kc_mt19937;
void kc_mt19937_seed(kc_mt19937 *s, uint32_t seed);
uint32_t kc_mt19937_next32(kc_mt19937 *s);
/* perm[0..n) = RandomState(seed).shuffle(np.arange(n)) */
void kc_numpy_shuffled_range(uint32_t seed, int64_t *perm, int64_t n);

/* The path of a Keras dataset file: dir/fname when dir is given (it must exist), else
 * $KERAC_DATA/<sub>/fname, else <cache>/kerac/<sub>/fname, else downloaded from
 * base_url + fname (base_url NULL: $KERAC_KERAS_DATASETS_URL, else Keras's origin) and
 * checked against hash (64 hex digits: SHA-256, 32: MD5, as Keras's get_file) first. */
kc_status kc_keras_data_file(const char *dir, const char *sub, const char *fname,
                             const char *base_url, const char *hash, char *out, size_t out_size);

/* One member (name without ".npy") of an .npz already in memory, as kc_npy_parse. */
kc_status kc_npz_member(const char *path, const uint8_t *zip, size_t zsize, const char *name,
                        int32_t **ints, kc_sequences *seqs, int64_t *count);
#define KC_NPZ_MAX ((size_t)1 << 33)

/* The whole file, malloc'd (NUL-terminated beyond size), at most max_size bytes. */
kc_status kc_read_whole_file(const char *path, size_t max_size, uint8_t **out, size_t *size);

/* the options tv was made with (strings: static names) */
void kc_text_vectorization_options(const kc_text_vectorization *tv, kc_text_vectorization_opts *o);

/* keras's dataset_utils.index_directory + get_training_or_validation_split: the class folders
 * of directory (sorted, hidden skipped, or class_names in that order), each one's files that
 * allowed(name) accepts, folders walked recursively in Keras's order; shuffled as NumPy's
 * RandomState(seed) when shuffle; split: the last int(split * n) files are the validation set
 * (subset 1), the others training (subset 0). total: the files before the split. */
typedef struct {
    int64_t count, total;
    char **paths;
    int32_t *labels;
    char **class_names;
    int num_classes;
} kc_dir_index;
kc_status kc_index_directory(const char *directory, const char *what,
                             const char *const *class_names, int num_class_names,
                             int (*allowed)(const char *name), int follow, int shuffle,
                             uint32_t seed, double split, int subset, kc_dir_index *out);
void kc_dir_index_free(kc_dir_index *ix);

/* x and y of an .npz: names[2i], names[2i+1] for the first i whose x member exists; y is
 * left empty (*has_y 0) when its member is absent */
kc_status kc_npz_load_pair(const char *path, const char *const *names, int n_pairs, kc_npy *x,
                           kc_npy *y, int *has_y);

#endif
