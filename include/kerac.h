/* kerac.h: the one public header of kerac, Keras in C.
 * Every name a user calls starts with kc_. Option structs are designated-initialiser friendly:
 * their zero value means the Keras default, so &(kc_adam_opts){0} is Adam(). */
#ifndef KERAC_H
#define KERAC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KC_VERSION "0.1.0"

/* ---- status and errors ------------------------------------------------------------------ */

typedef enum {
    KC_OK = 0,
    KC_EINVAL,  /* a wrong argument: shape, value, option */
    KC_EIO,     /* a file could not be opened, read or written */
    KC_EFORMAT, /* a file's contents are not what they claim to be */
    KC_ENOMEM,  /* an allocation failed */
    KC_ESTATE,  /* a call in the wrong order (fit before compile, ...) */
    KC_ENAN,    /* training produced a NaN or infinite loss */
    KC_ENET     /* a download failed or did not verify */
} kc_status;

/* The message of the last error on this thread: names the file, offset, layer or shape. */
const char *kc_last_error(void);
const char *kc_status_name(kc_status status);
/* Warnings: what kerac did without failing that a program should know (optimizer state of a
 * file skipped because it does not fit). The library never prints them: a handler the program
 * sets receives each (NULL: none), and kc_last_warning gives this thread's last ("" if none). */
typedef void (*kc_warning_fn)(const char *message, void *user);
void kc_set_warning_handler(kc_warning_fn handler, void *user);
const char *kc_last_warning(void);

/* ---- shapes and datasets ------------------------------------------------------------------ */

#define KC_MAX_RANK 4
typedef struct {
    int rank;
    int dims[KC_MAX_RANK];
} kc_shape; /* the shape of one sample: the batch dimension is never part of it */
/* A dimension whose size each call takes from its data (Keras's None), in a model input's
 * shape: kc_input(kc_shape1(KC_NONE)) is keras.Input(shape=(None,)) (a sequence of any
 * length), kc_shape2(KC_NONE, 8) is (None, 8). Layer shapes that follow from it are None too
 * (the summary prints None, files save null); the data of each call (fit, evaluate,
 * kc_predict_ex, kc_train_on_batch_ex) fixes the length for that call. */
#define KC_NONE (-1)

kc_shape kc_shape1(int d0);
kc_shape kc_shape2(int d0, int d1);
kc_shape kc_shape3(int d0, int d1, int d2);
int64_t kc_shape_size(kc_shape shape); /* product of the dims; -1 when one is KC_NONE */
/* "(28, 28)" into buf; returns buf */
char *kc_shape_str(kc_shape shape, char *buf, size_t size);

/* KC_STRING: an array of count NUL-terminated UTF-8 texts (const char *const *), one per
 * sample: a string model input, read by its TextVectorization layer */
typedef enum { KC_UINT8 = 0, KC_FLOAT32, KC_INT32, KC_STRING } kc_dtype;

#define KC_MAX_IO 8 /* inputs, and outputs, of one model */
/* One array of count samples, row after row: a model input or a target. Like kc_dataset's x
 * (uint8 scaled per batch by scale, 0 meaning 1) or y (class indices: rank-0 shape, uint8 or
 * int32, num_classes). */
typedef struct {
    kc_shape shape;
    kc_dtype dtype;
    void *data;
    float scale;
    int num_classes;
} kc_array;

/* A dataset: count samples of x (and optionally y), stored row after row. Images stay uint8 and
 * are turned into float batch by batch as value * x_scale (x_scale 0 means 1). Labels may be
 * class indices (uint8 or int32, a rank-0 per-sample shape) or float vectors (one-hot). The
 * struct is public: fill it yourself to borrow your own arrays, or let a loader fill it. */
typedef struct {
    int64_t count;
    kc_shape x_shape;
    kc_dtype x_dtype;
    void *x;
    float x_scale;
    kc_shape y_shape; /* rank 0 for class indices */
    kc_dtype y_dtype;
    void *y;
    int num_classes; /* for class-index labels: values must lie in [0, num_classes); 0 = unknown */
    void *owned_x, *owned_y; /* what kc_dataset_free releases; NULL when borrowed */
    /* Models of several inputs or outputs: when n_inputs > 0, inputs[0..n_inputs) (one per
     * model input, in order) replace x, x_shape, x_dtype and x_scale; when n_targets > 0,
     * targets[] (one per model output) replace y. count is every array's sample count. */
    int n_inputs, n_targets;
    kc_array inputs[KC_MAX_IO], targets[KC_MAX_IO];
    /* Keras's sample_weight (fit, evaluate, and validation data as (x, y, w)): count floats,
     * finite and >= 0, that weight each sample's loss; NULL: every weight 1. A loss reduced
     * by sum_over_batch_size becomes sum(w * loss) / samples (not / sum(w)), as Keras. It
     * applies to every output unless output_sample_weight[o] is set (one array per output);
     * metrics (accuracy) are not weighted (Keras's `metrics`). Not for outputs of several
     * rows per sample (Keras refuses those too). validation_split splits it with the data.
     * Borrowed: kc_dataset_free leaves it. */
    const float *sample_weight;
    const float *output_sample_weight[KC_MAX_IO];
} kc_dataset;

void kc_dataset_free(kc_dataset *ds);
/* x.reshape(count, *shape): same number of values per sample */
kc_status kc_dataset_reshape(kc_dataset *ds, kc_shape shape);
/* x.astype("float32") * scale, done lazily per batch: kc_dataset_scale(&d, 1.0f / 255) */
kc_status kc_dataset_scale(kc_dataset *ds, float scale);
/* y = keras.utils.to_categorical(y, num_classes): class indices become float one-hot rows */
kc_status kc_to_categorical(kc_dataset *ds, int num_classes);
/* the plain-array form: labels[n] (int32) into out[n * num_classes] */
kc_status kc_to_categorical_array(const int32_t *labels, int64_t n, int num_classes, float *out);

/* ---- data loading ------------------------------------------------------------------------ */

/* An IDX file (raw or gzip) of unsigned bytes: dims[0..rank) and the data. */
typedef struct {
    int rank;
    int64_t dims[KC_MAX_RANK];
    uint8_t *data; /* malloc'd; free with kc_idx_free */
    int64_t size;  /* number of bytes of data = product of dims */
} kc_idx;

kc_status kc_idx_read(const char *path, kc_idx *out);
void kc_idx_free(kc_idx *idx);

/* MNIST as keras.datasets.mnist.load_data(): x (count, 28, 28) uint8, y class indices uint8
 * with num_classes 10. Looks in dir (when not NULL: there only), else $KERAC_DATA/mnist, else
 * the user cache ($XDG_CACHE_HOME or ~/.cache)/kerac/mnist, else downloads the four files,
 * checks their SHA-256 and only then moves them into the cache. */
kc_status kc_mnist_load(const char *dir, kc_dataset *train, kc_dataset *test);

/* ---- datasets from a SPEC string (src/data/spec.c, npy.c, csv.c, image.c, cifar.c) --------- */

typedef struct {
    /* CSV: the label column, by header name or 0-based index ("3", "-1" = last); NULL: a
     * column named "label" if the header has one, else the last column */
    const char *label_column;
    int image_height, image_width; /* image folders: image_size; 0 = Keras's default 256x256 */
    int channels;               /* images: color_mode: 1 grayscale, 3 rgb, 4 rgba; 0 = rgb */
    /* the fraction held out, 0 = none. Image folders split as Keras's
     * image_dataset_from_directory (the last int(split * n) files of the shuffled list are
     * the validation set); the other SPECs as fit's validation_split (the last
     * n - floor(n * (1 - split)) samples, unshuffled) */
    double validation_split;
    const char *subset;         /* "training" | "validation"; required with validation_split */
    /* image folders: Keras's seed (NumPy's RandomState(seed): below 2^32). 0 = None (a random
     * one; refused with validation_split and shuffling, as Keras), unless has_seed is set */
    uint64_t seed;
    int shuffle;                /* image folders: 0 -> True (Keras's default); KC_ZERO for False */
    const char *cache_dir;      /* where downloads are cached; NULL = $KERAC_DATA, then the user
                                 * cache ($XDG_CACHE_HOME or ~/.cache)/kerac */
    int has_seed;               /* set with seed 0 to mean the seed 0 itself */
} kc_data_opts;

/* Loads a SPEC into a kc_dataset: x as stored (uint8 images stay uint8, x_scale 0), y as class
 * indices (rank-0 y_shape, num_classes set) or float arrays. SPECs:
 *   mnist, mnist:train, mnist:test          (kc_mnist_load's search path; with cache_dir:
 *                                            kc_mnist_load(cache_dir), the files there only)
 *   cifar10, cifar10:train, cifar10:test    (the CIFAR-10 binary version: x (32, 32, 3) uint8
 *                                            channels last, y uint8; downloaded, MD5-verified
 *                                            and cached as cifar10/cifar-10-binary.tar.gz)
 *   DIR of IDX files (train-images-idx3-ubyte[.gz] and train-labels-...; DIR:test: t10k-*)
 *   FILE.npy (x only), X.npy,Y.npy (x and y), FILE.npz (x/y or x_train/y_train; FILE.npz:test
 *     -> x_test/y_test). dtypes u1 i4 i8 f4 f8 (either byte order), C order. x: u1 stays
 *     uint8, f4 and f8 become float32, integers int32 (range-checked). y: 1-d integers become
 *     class indices (int32, num_classes = max + 1), anything else float32 targets.
 *   FILE.csv (FILE.csv:COLUMN names the label column, by header name or index, as
 *     opts->label_column does): a header line, then numbers; the label column becomes class indices
 *     when every label is a whole number >= 0, else float targets; x float32 (columns)
 *   DIR with one folder per class of .png .jpg .jpeg .bmp .pgm .ppm images (Keras's
 *     image_dataset_from_directory; .gif is listed as Keras does, and refused naming the file
 *     when read); x uint8 (height, width, channels) resized as Keras (rounded to uint8), y
 *     int32
 * An unknown SPEC or a missing file is an error naming it. */
kc_status kc_data_load(const char *spec, const kc_data_opts *opts, kc_dataset *out);

/* What a load found besides the arrays: the class names (image folders: the folder names;
 * cifar10: Keras's label names; mnist: "0".."9"; others: none) and, for image folders, the
 * file each sample came from, in the dataset's order. */
typedef struct {
    int num_classes;
    char **class_names; /* num_classes names, or NULL */
    int64_t count;
    char **paths;       /* count paths, or NULL */
} kc_data_info;
kc_status kc_data_load_ex(const char *spec, const kc_data_opts *opts, kc_dataset *out,
                          kc_data_info *info);
void kc_data_info_free(kc_data_info *info);

/* One .npy array as it is stored: dtype 'u1' 'i4' 'i8' 'f4' 'f8' (in the host's byte order
 * after loading), C order. A float32 or uint8 array is read with one read into its final
 * buffer. data: kc_free it (kc_npy_free). */
typedef struct {
    char dtype[4];
    int rank;
    int64_t shape[8];
    int64_t size; /* elements */
    void *data;
} kc_npy;
kc_status kc_npy_load(const char *path, kc_npy *out);
/* the member name (without ".npy") of an .npz, stored or deflated */
kc_status kc_npz_load(const char *path, const char *name, kc_npy *out);
void kc_npy_free(kc_npy *a);

/* images (src/data/image.c): PNG (libpng), JPEG (libjpeg-turbo), uncompressed 8/24/32-bit
 * BMP, binary/ascii PGM/PPM (8-bit) */
typedef struct {
    int height, width, channels;
    uint8_t *data; /* HWC, row-major */
} kc_image;
/* channels 0 keeps the file's (1, 3 or 4; gray+alpha becomes 4), 1 converts to grayscale
 * (ITU-R 601 luma as PIL's "L": (19595 R + 38470 G + 7471 B + 2^15) >> 16), 3 to RGB
 * (alpha dropped), 4 to RGBA; height/width 0 keep the size, else bilinear resize as Keras's
 * image_dataset_from_directory (tf.image.resize: half-pixel centers, no antialias), rounded
 * to the nearest uint8. A file that does not decode is an error naming it. */
kc_status kc_image_load(const char *path, int channels, int height, int width, kc_image *out);
/* 8-bit PNG of 1, 2, 3 or 4 channels; atomic: a temp file beside it, then rename */
kc_status kc_image_save_png(const char *path, const kc_image *img);
void kc_image_free(kc_image *img);
/* size bytes into path, crash-safe as kc_save writes models: a temporary file in the same
 * directory, fsync, rename over path, fsync of the directory; on any error path is untouched
 * and no temporary file is left */
kc_status kc_write_file_atomic(const char *path, const void *data, size_t size);

/* ---- text and sequence data (src/data/sequence.c, text.c, npy.c) --------------------------- */

/* Sequences of int32 of varying lengths (a ragged array), with optional labels: sequence i is
 * values[offsets[i] .. offsets[i + 1]), offsets has count + 1 entries (offsets[0] = 0). Loaders
 * malloc all three; kc_sequences_free releases them. Fill it yourself to pass your own. */
typedef struct {
    int64_t count;
    int64_t *offsets;
    int32_t *values;
    int32_t *labels; /* count labels, or NULL */
} kc_sequences;
void kc_sequences_free(kc_sequences *s);

/* keras.utils.pad_sequences: out (count, maxlen) int32, row-major. Zero values are Keras's
 * defaults: maxlen 0 = the longest sequence, padding and truncating NULL = "pre", value 0. */
typedef struct {
    int64_t maxlen;
    const char *padding;    /* "pre" or "post" */
    const char *truncating; /* "pre" or "post" */
    int32_t value;
} kc_pad_opts;
/* *out is malloc'd (free()); *out_maxlen receives the row length. */
kc_status kc_pad_sequences(const kc_sequences *seqs, const kc_pad_opts *opts, int32_t **out,
                           int64_t *out_maxlen);

/* keras.datasets.imdb.load_data / reuters.load_data: the same arrays as Keras (the shuffle is
 * NumPy's RandomState(seed).shuffle, reproduced), labels in seqs.labels. Zero values are the
 * defaults: num_words 0 = None, skip_top 0, maxlen 0 = None, seed 113 unless has_seed,
 * start_char 1, oov_char 2, index_from 3 unless has_chars (then a negative start_char or
 * oov_char is None), test_split (Reuters) 0.2 unless has_test_split. Files: dir/<name>.npz when
 * dir is given, else $KERAC_DATA/imdb/imdb.npz (reuters/reuters.npz), else the user cache
 * (~/.cache/kerac/imdb/), else a download from Keras's origin (or $KERAC_KERAS_DATASETS_URL)
 * checked against Keras's SHA-256 before it lands in the cache. */
typedef struct {
    int num_words, skip_top, maxlen;
    int has_seed;
    uint32_t seed;
    int has_chars;
    int start_char, oov_char, index_from;
    int has_test_split;
    double test_split;
} kc_text_dataset_opts;
kc_status kc_imdb_load(const char *dir, const kc_text_dataset_opts *opts, kc_sequences *train,
                       kc_sequences *test);
kc_status kc_reuters_load(const char *dir, const kc_text_dataset_opts *opts, kc_sequences *train,
                          kc_sequences *test);

/* get_word_index(): the words of imdb_word_index.json / reuters_word_index.json (located like
 * the .npz, MD5-checked as Keras does). words[i] has index indices[i]; *out_n entries. Free
 * with kc_word_index_free. */
typedef struct {
    int64_t count;
    char **words;
    int32_t *indices;
} kc_word_index;
kc_status kc_imdb_word_index(const char *dir, kc_word_index *out);
kc_status kc_reuters_word_index(const char *dir, kc_word_index *out);
void kc_word_index_free(kc_word_index *wi);
/* A numpy .npz file of 1-d arrays: an integer array (int8..int64, uint8..uint64, either byte
 * order) or an object array of lists of ints (a pickle; a strict reader that accepts only what
 * NumPy writes for such arrays). name is the member without ".npy". out->labels stays NULL. */
kc_status kc_npz_read_sequences(const char *path, const char *name, kc_sequences *out);
kc_status kc_npz_read_ints(const char *path, const char *name, int32_t **out, int64_t *count);

/* keras.layers.TextVectorization as a standalone object: its state is the vocabulary (and the
 * idf weights in tf_idf mode) plus these options. Zero values are Keras's defaults. */
typedef struct {
    int64_t max_tokens;          /* 0: None */
    const char *standardize;     /* "lower_and_strip_punctuation" (NULL), "lower",
                                    "strip_punctuation", "none" */
    const char *split;           /* "whitespace" (NULL) or "none" */
    int ngrams;                  /* 0: None; n: all n-grams of widths 1..n, " "-joined */
    const char *output_mode;     /* "int" (NULL), "multi_hot", "count", "tf_idf" */
    int64_t output_sequence_length; /* "int" only; 0: None (the batch's longest) */
    int pad_to_max_tokens;
} kc_text_vectorization_opts;
typedef struct kc_text_vectorization kc_text_vectorization;
kc_status kc_text_vectorization_new(const kc_text_vectorization_opts *opts,
                                    kc_text_vectorization **out);
void kc_text_vectorization_free(kc_text_vectorization *tv);
/* adapt(texts): the vocabulary by count, ties by the tokens' bytes, highest first; in tf_idf
 * mode also the idf weights log(1 + n / (1 + df)). Texts are NUL-terminated UTF-8. */
kc_status kc_text_vectorization_adapt(kc_text_vectorization *tv, const char *const *texts,
                                      int64_t n);
/* set_vocabulary(vocabulary, idf_weights): with or without the special tokens at the start
 * ("", "[UNK]" in int mode; "[UNK]" otherwise); idf_weights (tf_idf only, else NULL) has one
 * weight per entry of vocab. */
kc_status kc_text_vectorization_set_vocabulary(kc_text_vectorization *tv,
                                               const char *const *vocab, int64_t n,
                                               const float *idf_weights);
/* get_vocabulary(): *tokens points at the object's own array (valid until it changes) */
int64_t kc_text_vectorization_vocabulary(const kc_text_vectorization *tv,
                                         const char *const **tokens);
/* the idf weights (vocabulary_size entries, or max_tokens with pad_to_max_tokens); NULL
 * outside tf_idf mode */
const float *kc_text_vectorization_idf_weights(const kc_text_vectorization *tv);
/* layer(texts): *out malloc'd, (n, *out_cols) row-major; int32 token indices in "int" mode,
 * float32 otherwise (kc_text_vectorization_output_dtype). */
kc_status kc_text_vectorization_call(const kc_text_vectorization *tv, const char *const *texts,
                                     int64_t n, void **out, int64_t *out_cols);
kc_dtype kc_text_vectorization_output_dtype(const kc_text_vectorization *tv);

/* keras.utils.text_dataset_from_directory, in memory: directory holds one folder per class
 * (class names: the sorted folder names, hidden ones skipped, or class_names in that order);
 * each class's .txt files (any case), folders walked recursively in Keras's order, are read
 * whole (or their first max_length bytes). shuffle (default on: set no_shuffle to keep the
 * sorted order) permutes as Keras does, with NumPy's RandomState(seed); Keras's later
 * tf.data shuffle of each epoch is not reproduced. validation_split with subset "training"
 * or "validation" keeps Keras's split: the last int(split * n) files are the validation
 * set. An empty file is an empty text; a class folder without .txt files is a class
 * without samples (a warning); no file at all is an error. */
typedef struct {
    const char *const *class_names; /* NULL: inferred */
    int num_class_names;
    const char *label_mode;        /* "int" (NULL), "categorical", "binary" */
    int64_t max_length;            /* 0: None */
    int no_shuffle;
    int has_seed;
    uint32_t seed;                 /* required with validation_split and shuffling */
    double validation_split;       /* 0: None */
    const char *subset;            /* "training" or "validation" with validation_split */
    int follow_links;
} kc_text_dir_opts;
typedef struct {
    int64_t count;
    char **texts;      /* count NUL-terminated texts (a text may hold NUL bytes: lengths) */
    int64_t *lengths;
    char **paths;      /* the file each came from */
    int32_t *labels;   /* class indices ("int" and "binary") */
    float *onehot;     /* "categorical": count * num_classes, else NULL */
    int num_classes;
    char **class_names;
} kc_text_files;
kc_status kc_text_dataset_from_directory(const char *directory, const kc_text_dir_opts *opts,
                                         kc_text_files *out);
void kc_text_files_free(kc_text_files *tf);

/* ---- layers and models -------------------------------------------------------------------- */

/* Keras 3's activation functions (keras.activations, the formulas of its JAX backend, the
 * default arguments). gelu is the exact erf form (Keras's gelu(x, approximate=False));
 * leaky_relu's negative_slope is 0.2 (the function's; the LeakyReLU layer's is 0.3);
 * hard_sigmoid is Keras 3's relu6(x + 3) / 6 (tf.keras 2's was clip(0.2 x + 0.5, 0, 1)).
 * softmax and log_softmax act on the last axis, the others elementwise. KC_ACT_COUNT is no
 * activation: the number of them (a new one goes before it) */
typedef enum {
    KC_LINEAR = 0, KC_RELU, KC_SOFTMAX, KC_SIGMOID, KC_TANH,
    KC_ELU, KC_SELU, KC_GELU, KC_SOFTPLUS, KC_SOFTSIGN, KC_SILU /* swish */, KC_MISH,
    KC_HARD_SIGMOID, KC_HARD_SILU /* hard_swish */, KC_HARD_TANH, KC_EXPONENTIAL,
    KC_LEAKY_RELU, KC_RELU6, KC_CELU, KC_LOG_SIGMOID, KC_LOG_SOFTMAX, KC_TANH_SHRINK,
    KC_SQUAREPLUS, KC_SPARSE_PLUS, KC_SPARSE_SIGMOID, KC_SOFT_SHRINK, KC_HARD_SHRINK,
    KC_ACT_COUNT
} kc_act;
const char *kc_act_name(kc_act act); /* "relu"; "unknown" when act is none of them */

#define KC_ZERO (-1) /* for integer options whose 0 means "the default": the value 0 itself */

typedef struct kc_layer kc_layer;
typedef struct kc_model kc_model;

/* Initializers, as keras.initializers: the zero value is the layer's default (glorot_uniform
 * kernels, zero biases). Parameters by kind: RandomUniform (minval, maxval), RandomNormal and
 * TruncatedNormal (mean, stddev), VarianceScaling (scale, mode, distribution), Orthogonal and
 * Identity (gain), Constant (value). seed: has_seed set draws from that seed instead of the
 * model's stream. */
typedef enum {
    KC_INIT_DEFAULT = 0,
    KC_INIT_GLOROT_UNIFORM,
    KC_INIT_GLOROT_NORMAL,
    KC_INIT_HE_UNIFORM,
    KC_INIT_HE_NORMAL,
    KC_INIT_LECUN_UNIFORM,
    KC_INIT_LECUN_NORMAL,
    KC_INIT_RANDOM_UNIFORM,
    KC_INIT_RANDOM_NORMAL,
    KC_INIT_TRUNCATED_NORMAL,
    KC_INIT_VARIANCE_SCALING,
    KC_INIT_ORTHOGONAL,
    KC_INIT_IDENTITY,
    KC_INIT_ZEROS,
    KC_INIT_ONES,
    KC_INIT_CONSTANT,
    KC_INIT_COUNT
} kc_init_kind;
typedef enum { KC_FAN_IN = 0, KC_FAN_OUT, KC_FAN_AVG } kc_fan_mode;
typedef enum { KC_TRUNCATED_NORMAL = 0, KC_UNTRUNCATED_NORMAL, KC_UNIFORM } kc_distribution;
typedef struct {
    kc_init_kind kind;
    double minval, maxval;  /* RandomUniform: 0, 0 -> -0.05, 0.05 */
    double mean, stddev;    /* RandomNormal, TruncatedNormal: stddev 0 -> 0.05 */
    double scale;           /* VarianceScaling: 0 -> 1 */
    kc_fan_mode mode;       /* VarianceScaling: fan_in */
    kc_distribution distribution; /* VarianceScaling: truncated_normal */
    double gain;            /* Orthogonal, Identity: 0 -> 1 */
    double value;           /* Constant */
    int has_seed;
    uint64_t seed;
} kc_initializer;

/* Regularizers, as keras.regularizers: L1(l1), L2(l2), L1L2(l1, l2); all zero means none.
 * The penalty l1 * sum|w| + l2 * sum w^2 of a kernel or bias is added to the (mean) loss; an
 * activity regularizer's penalty on the layer's output is divided by the batch size first, as
 * Keras 3 and tf.keras 2 do. */
typedef struct {
    float l1, l2;
} kc_regularizer;

/* Builders for readable options: .kernel_initializer = kc_he_normal(),
 * .kernel_regularizer = kc_l2(0.01f). kerac draws from its own stream, so initial values have
 * Keras's distribution but not Keras's (JAX's) bits. */
kc_initializer kc_init(kc_init_kind kind); /* that kind with Keras's default parameters */
kc_initializer kc_glorot_uniform(void);    /* U(+-sqrt(6 / (fan_in + fan_out))) */
kc_initializer kc_glorot_normal(void);     /* truncated normal, stddev sqrt(2 / (in + out)) */
kc_initializer kc_he_uniform(void);        /* U(+-sqrt(6 / fan_in)) */
kc_initializer kc_he_normal(void);         /* truncated normal, stddev sqrt(2 / fan_in) */
kc_initializer kc_lecun_uniform(void);     /* U(+-sqrt(3 / fan_in)) */
kc_initializer kc_lecun_normal(void);      /* truncated normal, stddev sqrt(1 / fan_in) */
kc_initializer kc_random_uniform(double minval, double maxval); /* U[minval, maxval) */
kc_initializer kc_random_normal(double mean, double stddev);
kc_initializer kc_truncated_normal(double mean, double stddev); /* redrawn beyond 2 stddev */
/* stddev sqrt(scale / n) (after truncation), or U(+-sqrt(3 scale / n)); n the fan of mode */
kc_initializer kc_variance_scaling(double scale, kc_fan_mode mode, kc_distribution distribution);
kc_initializer kc_orthogonal(double gain);    /* QR of a normal matrix; 2-D or flattened */
kc_initializer kc_init_identity(double gain); /* gain * eye(rows, cols); 2-D weights only */
kc_initializer kc_init_zeros(void);
kc_initializer kc_init_ones(void);
kc_initializer kc_init_constant(double value);
/* init drawing from its own stream seeded with seed (Keras's seed=...): the same values
 * for every weight it fills, whatever the model's seed */
kc_initializer kc_init_seed(kc_initializer init, uint64_t seed);
kc_regularizer kc_l1(float l1);              /* L1(l1); Keras's default l1 is 0.01 */
kc_regularizer kc_l2(float l2);              /* L2(l2); Keras's default l2 is 0.01 */
kc_regularizer kc_l1_l2(float l1, float l2); /* L1L2(l1, l2) */

kc_layer *kc_dense(int units, kc_act activation); /* glorot_uniform kernel, zero bias */
typedef struct {
    kc_act activation; /* KC_LINEAR */
    int use_bias;      /* 0 -> True; KC_ZERO for False */
    kc_initializer kernel_initializer, bias_initializer; /* glorot_uniform, zeros */
    kc_regularizer kernel_regularizer, bias_regularizer, activity_regularizer; /* none */
} kc_dense_opts;
kc_layer *kc_dense_ex(int units, const kc_dense_opts *opts);
kc_layer *kc_dropout(float rate);                   /* inverted dropout, training only */
/* Dropout(rate, noise_shape=(None, noise_shape[0], ...)): n per-sample sizes, 0 for None (the
 * input's size), 1 to share the mask along that axis (as (None, 1, features) for sequences) */
kc_layer *kc_dropout_noise(float rate, const int *noise_shape, int n);
kc_layer *kc_activation(kc_act activation);
kc_layer *kc_softmax_layer(void); /* keras.layers.Softmax() on the last axis */
/* Keras's activation layers (their formulas those of Keras 3's JAX backend):
 * Softmax(axis): axis counts as Keras's (negative from the end, 1 the first after the batch) */
kc_layer *kc_softmax_axis(int axis);
/* ReLU(max_value, negative_slope, threshold): x > threshold ? min(x, max_value) :
 * negative_slope * (x - threshold); max_value < 0 means None (Keras's default), Keras's
 * defaults are (None, 0, 0) */
kc_layer *kc_relu_layer(float max_value, float negative_slope, float threshold);
/* LeakyReLU(negative_slope): x >= 0 ? x : negative_slope * x; Keras 3's default 0.3 (tf.keras
 * 2's config key is alpha) */
kc_layer *kc_leaky_relu(float negative_slope);
/* ELU(alpha): x > 0 ? x : alpha * (exp(x) - 1); Keras's default 1 */
kc_layer *kc_elu_layer(float alpha);
/* PReLU: x > 0 ? x : alpha * x with a trainable alpha of the input's shape, size 1 along the
 * shared axes (Keras's numbering: 1 is the first axis after the batch) */
typedef struct {
    kc_initializer alpha_initializer; /* zeros */
    kc_regularizer alpha_regularizer; /* none */
    int shared_axes[KC_MAX_RANK];     /* 0-terminated: {1, 2} shares alpha over axes 1 and 2 */
} kc_prelu_opts;
kc_layer *kc_prelu(const kc_prelu_opts *opts); /* opts may be NULL */
kc_layer *kc_flatten(void);
/* Reshape(target_shape): the same values per sample in another shape; one dim may be -1 */
kc_layer *kc_reshape(kc_shape target_shape);

/* Images are channels last: a sample is (height, width, channels), e.g. kc_shape3(28, 28, 1). */
typedef enum { KC_VALID = 0, KC_SAME, KC_CAUSAL /* Conv1D only */ } kc_padding;
typedef struct {
    int kernel_size[2]; /* required; {3} means 3 x 3 */
    int strides[2];     /* 0 -> 1; {2} means 2 x 2 */
    kc_padding padding; /* KC_VALID */
    kc_act activation;  /* KC_LINEAR */
    int dilation_rate[2]; /* 0 -> 1; {2} means 2 x 2 (strides must then be 1, as Keras) */
    int use_bias;         /* 0 -> True; KC_ZERO for False (no bias weights at all) */
    kc_initializer kernel_initializer, bias_initializer; /* glorot_uniform, zeros */
    kc_regularizer kernel_regularizer, bias_regularizer, activity_regularizer; /* none */
    /* Conv2DTranspose only: {0} -> None (the output size inferred); KC_ZERO for 0; {1} means
     * (1, 1); each must be below its stride */
    int output_padding[2];
} kc_conv2d_opts;
/* Conv2D(filters, kernel_size, activation=...): glorot_uniform kernel (kh, kw, in, filters),
 * zero bias, strides 1, padding "valid" */
kc_layer *kc_conv2d(int filters, int kernel_size, kc_act activation);
kc_layer *kc_conv2d_ex(int filters, const kc_conv2d_opts *opts);
/* Conv2DTranspose(filters, kernel_size, strides, padding, output_padding, activation,
 * use_bias): the input gradient of a Conv2D, (h, w, in) -> (h', w', filters) with Keras's
 * sizes ("valid": (h - 1) * s + max(k, s), "same": h * s, unless output_padding is given).
 * Kernel (kh, kw, filters, in) as Keras's, glorot_uniform; zero bias. dilation_rate 1 only. */
kc_layer *kc_conv2d_transpose(int filters, const kc_conv2d_opts *opts);

typedef struct {
    int pool_size[2];   /* 0 -> 2 x 2; {3} means 3 x 3 */
    int strides[2];     /* 0 -> pool_size */
    kc_padding padding; /* KC_VALID */
} kc_pool2d_opts;
kc_layer *kc_max_pooling2d(int pool_size); /* MaxPooling2D(pool_size) */
kc_layer *kc_max_pooling2d_ex(const kc_pool2d_opts *opts);
kc_layer *kc_average_pooling2d(int pool_size);
kc_layer *kc_average_pooling2d_ex(const kc_pool2d_opts *opts);
kc_layer *kc_global_average_pooling2d(void); /* (h, w, c) -> (c) */
kc_layer *kc_global_max_pooling2d(void);     /* (h, w, c) -> (c), each channel's maximum */
typedef struct {
    int keepdims; /* 0: (h, w, c) -> (c); 1: -> (1, 1, c) */
} kc_global_pool2d_opts;
kc_layer *kc_global_average_pooling2d_ex(const kc_global_pool2d_opts *opts);
/* GlobalMaxPooling2D: tied maxima share the gradient evenly (as JAX's jnp.max) */
kc_layer *kc_global_max_pooling2d_ex(const kc_global_pool2d_opts *opts);

/* ---- sequences: a sample is (steps, features), channels last (issue 12) ---- */
/* Conv1D(filters, kernel_size, ...): (steps, in) -> (steps', filters), kernel (kernel_size,
 * in, filters) as Keras's. padding KC_VALID, KC_SAME or KC_CAUSAL (zeros before the sequence
 * only: output[t] sees input[<= t]); strides > 1 with dilation_rate > 1 is refused (Keras). */
typedef struct {
    int kernel_size;      /* required */
    int strides;          /* 0 -> 1 */
    kc_padding padding;   /* KC_VALID */
    kc_act activation;    /* KC_LINEAR */
    int dilation_rate;    /* 0 -> 1 */
    int use_bias;         /* 0 -> True; KC_ZERO for False */
    kc_initializer kernel_initializer, bias_initializer; /* glorot_uniform, zeros */
    kc_regularizer kernel_regularizer, bias_regularizer, activity_regularizer; /* none */
} kc_conv1d_opts;
kc_layer *kc_conv1d(int filters, int kernel_size, kc_act activation);
kc_layer *kc_conv1d_ex(int filters, const kc_conv1d_opts *opts);
typedef struct {
    int pool_size;      /* 0 -> 2 */
    int strides;        /* 0 -> pool_size */
    kc_padding padding; /* KC_VALID or KC_SAME */
} kc_pool1d_opts;
kc_layer *kc_max_pooling1d(int pool_size); /* MaxPooling1D(pool_size) */
kc_layer *kc_max_pooling1d_ex(const kc_pool1d_opts *opts);
kc_layer *kc_average_pooling1d(int pool_size);
kc_layer *kc_average_pooling1d_ex(const kc_pool1d_opts *opts);
/* GlobalAveragePooling1D and GlobalMaxPooling1D: (steps, c) -> (c), or (1, c) with keepdims.
 * GlobalAveragePooling1D with a mask averages the unmasked steps only (Keras 3); Keras's
 * GlobalMaxPooling1D does not support masking (the mask is dropped, all steps count). */
kc_layer *kc_global_average_pooling1d(int keepdims);
kc_layer *kc_global_max_pooling1d(int keepdims);
/* RepeatVector(n): (features) -> (n, features) */
kc_layer *kc_repeat_vector(int n);
/* Permute(dims): dims[0..n) a permutation of 1..n (Keras's axes, 1 the first after the
 * batch); output axis i is input axis dims[i] */
kc_layer *kc_permute(const int *dims, int n);

typedef enum { KC_NEAREST = 0, KC_BILINEAR } kc_interpolation;
typedef struct {
    int size[2];                    /* 0 -> 2 x 2; {3} means 3 x 3 */
    kc_interpolation interpolation; /* KC_NEAREST; KC_BILINEAR is jax.image.resize's bilinear
                                       (half-pixel centres, edges clamped) */
} kc_up_sampling2d_opts;
/* UpSampling2D(size, interpolation): (h, w, c) -> (h * size[0], w * size[1], c) */
kc_layer *kc_up_sampling2d(const kc_up_sampling2d_opts *opts);
/* ZeroPadding2D(((top, bottom), (left, right))): rows and columns of zeros around each image */
kc_layer *kc_zero_padding2d(int top, int bottom, int left, int right);
/* Cropping2D(((top, bottom), (left, right))): rows and columns removed from the edges; at
 * least one row and column must remain */
kc_layer *kc_cropping2d(int top, int bottom, int left, int right);
/* Identity(): the output is the input */
kc_layer *kc_identity(void);

/* ---- Keras's preprocessing layers (src/layers/preprocessing.c), in the model ----
 * Rescaling, Normalization, Resizing and CenterCrop apply in training and inference; the
 * Random* augmentation layers transform each image with its own random parameters in training
 * steps only (kc_fit) and are the identity in predict and evaluate. Gradients pass through
 * each transform. Images are channels last (height, width, channels). */
/* Rescaling(scale, offset): y = x * scale + offset */
kc_layer *kc_rescaling(float scale, float offset);
typedef struct {
    /* the axes kept (one mean and variance per position along them): Keras's axis, negative
     * counting from the end, 1 the first after the batch; n_axes 0: axis=-1 */
    int axes[KC_MAX_RANK];
    int n_axes;
    int axis_none; /* axis=None: one mean and variance for every value */
    /* mean and variance given (Keras's mean=, variance=): n_mean values each, 1 (a scalar),
     * one per kept position, or one per position of the last kept axes (broadcast from the
     * right, as Keras); n_mean 0: adapt them (kc_normalization_adapt) */
    const float *mean, *variance;
    int64_t n_mean;
    int invert; /* y = mean + x * max(sqrt(variance), 1e-7) */
} kc_normalization_opts;
/* Normalization(axis=-1, mean=None, variance=None, invert=False): y = (x - mean) /
 * max(sqrt(variance), 1e-7). Without mean given, the layer holds Keras's non-trainable
 * variables mean, variance and count (mean 0, variance 1 until adapted). */
kc_layer *kc_normalization(const kc_normalization_opts *opts);
/* layer.adapt(x): the mean and (population) variance of data's x along the layer's kept axes.
 * The layer must be in a built model (its input shape known); data's samples must have that
 * shape (uint8 data is scaled by x_scale first). */
kc_status kc_normalization_adapt(kc_layer *normalization, const kc_dataset *data);
typedef struct {
    const char *interpolation; /* "bilinear" (NULL) or "nearest" */
    int crop_to_aspect_ratio;  /* crop the centre to the target's aspect ratio first */
    int pad_to_aspect_ratio;   /* or pad it with fill_value to that ratio */
    float fill_value;
} kc_resizing_opts;
/* Resizing(height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
 * pad_to_aspect_ratio=False, fill_value=0, antialias=False): jax.image.resize's numbers */
kc_layer *kc_resizing(int height, int width, const kc_resizing_opts *opts);
/* CenterCrop(height, width): the centre (height, width) of each image; an image smaller than
 * that along an axis is resized instead (Keras's smart_resize: the centre cropped to the
 * target's aspect ratio, then bilinear) */
kc_layer *kc_center_crop(int height, int width);
/* The augmentation layers' common options */
typedef struct {
    const char *fill_mode;     /* "reflect" (NULL), "wrap", "constant", "nearest" */
    const char *interpolation; /* "bilinear" (NULL) or "nearest" */
    float fill_value;          /* fill_mode "constant"'s value */
    float value_range[2];      /* RandomContrast's clip range; {0, 0}: (0, 255) */
    int has_seed;              /* seed given: the layer's draws depend on it alone */
    int64_t seed;              /* (else on the model's seeded stream, kc_set_random_seed) */
} kc_augment_opts;
/* RandomFlip(mode): "horizontal", "vertical" or "horizontal_and_vertical" (NULL; both flips
 * together, with one draw, as Keras 3), each image flipped with probability 1/2 */
kc_layer *kc_random_flip(const char *mode, const kc_augment_opts *opts);
/* RandomRotation(factor=(lower, upper)): angle uniform in [lower, upper] * 360 degrees about
 * the centre (Keras's factor f is (-f, f)) */
kc_layer *kc_random_rotation(float lower, float upper, const kc_augment_opts *opts);
/* RandomTranslation(height_factor, width_factor): shifts uniform in [lower, upper] * the
 * height and width (Keras's factor f is (-f, f)) */
kc_layer *kc_random_translation(float height_lower, float height_upper, float width_lower,
                                float width_upper, const kc_augment_opts *opts);
/* RandomZoom(height_factor, width_factor): scales 1 + uniform in [lower, upper] (positive:
 * zoomed out); width NULL (None): the width scale is the height's */
kc_layer *kc_random_zoom(float height_lower, float height_upper, const float *width,
                         const kc_augment_opts *opts);
/* RandomContrast(factor=(lower, upper), value_range): (x - mean) * f + mean clipped to
 * value_range, f uniform in [1 - lower, 1 + upper], mean per image and channel (Keras 3's
 * factor f is (0, f): only more contrast) */
kc_layer *kc_random_contrast(float lower, float upper, const kc_augment_opts *opts);

/* Embedding(input_dim, output_dim, embeddings_initializer, embeddings_regularizer, mask_zero):
 * token ids (batch, ...) -> (batch, ..., output_dim), the rows of the (input_dim, output_dim)
 * variable "embeddings" (uniform(-0.05, 0.05) by default, Keras's "uniform"). Ids are whole
 * numbers in [0, input_dim) (a float input is truncated toward zero first, as Keras casts it);
 * an id out of range is an error naming the sample and position (Keras on JAX would clip or
 * give NaN). input_dim at most 2^24. mask_zero: id 0 is padding; the output carries a mask
 * (see kc_masking) that layers after it and the loss honour. input_length: tf.keras 2's
 * option, kept for its files (0: None); the input's length must then be that length. The
 * weight gradient is sparse: with plain SGD (no momentum, weight decay, clipping or EMA) only
 * the rows a batch used are touched; other optimizers get the dense gradient, as in Keras 3
 * on JAX (Adam's moments decay for every row). */
typedef struct {
    kc_initializer embeddings_initializer; /* RandomUniform(-0.05, 0.05) */
    kc_regularizer embeddings_regularizer; /* none */
    int mask_zero;                         /* 0 */
    int input_length;                      /* 0: None */
} kc_embedding_opts;
kc_layer *kc_embedding(int input_dim, int output_dim, const kc_embedding_opts *opts);
/* keras.layers.TextVectorization inside a model: the layer takes ownership of tv (freed with
 * the layer; do not free it yourself). It must be the only reader of a string model input
 * (kc_input_ex(kc_shape1(1), KC_STRING, name) or kc_sequential_ex(kc_shape1(1), KC_STRING)),
 * and the vocabulary must be set before the model is built ("int" mode needs
 * output_sequence_length). It is a preprocessing stage, not a graph op: when a batch of texts
 * is loaded (kc_fit, kc_evaluate on a dataset whose x is KC_STRING, kc_predict_texts,
 * kc_predict_ex on a KC_STRING kc_array) the vectorizer writes its output straight into the
 * layer's output buffer; no gradient flows through it. kc_save (.keras) writes it as Keras 3
 * does: its config, the vocabulary in assets/layers/<path>/vocabulary.txt (and
 * .../_lookup_layer/vocabulary.txt), tf_idf's idf weights as layers/<path>/vars/idf_weights. */
kc_layer *kc_text_vectorization_layer(kc_text_vectorization *tv);
/* the vectorizer a TextVectorization layer holds (NULL for another layer) */
kc_text_vectorization *kc_layer_text_vectorization(kc_layer *layer);
/* the vectorizer of the TextVectorization layer reading model input i (NULL: none) */
kc_text_vectorization *kc_model_text_vectorization(kc_model *m, int input);
/* Masking(mask_value): a timestep (the last axis's values of one position) whose values all
 * equal mask_value is masked: its output is 0 and it carries mask 0. Masks, as Keras 3: a
 * tensor's mask has one byte per row (its shape without the last axis); layers that support
 * masking (Dense, Dropout, Activation, the activation layers, Identity, the merge layers, ...)
 * pass it on, a layer that does not (Flatten, Conv2D, ...) drops it with a warning, and the
 * loss of a masked output weighs masked rows 0 and divides by the rows left (accuracy too). */
kc_layer *kc_masking(float mask_value);

typedef struct {
    float momentum; /* 0 -> 0.99 */
    float epsilon;  /* 0 -> 1e-3 */
    /* Keras 3's synchronized=True: statistics over the whole global batch across replicas.
     * No effect in the plain fit (as in Keras without a distribution strategy); in distributed
     * fit, the whole batch across the row groups and ranks (extra passes per step). */
    int synchronized;
} kc_batchnorm_opts;
/* BatchNormalization over the last axis: batch statistics while training (and the moving
 * averages updated), the moving mean and variance at inference. Weights in Keras's order:
 * gamma, beta (trained), moving_mean, moving_variance (not trained). In distributed fit (row
 * groups) the batch statistics are each group's and the averages move once per step by the
 * groups' mean, as Keras's MirroredStrategy with a replica per group; synchronized: the whole
 * batch's (docs/SCALING.md). */
kc_layer *kc_batch_normalization(const kc_batchnorm_opts *opts);

void kc_layer_free(kc_layer *layer); /* a layer that no model or tensor holds */
const char *kc_get_layer_name(const kc_layer *layer);
/* layer.name = name; before the layer is added or called (names are unique in a model) */
kc_status kc_layer_set_name(kc_layer *layer, const char *name);
/* layer.trainable = trainable (a model's trainable applies to all of its layers, as Keras).
 * A frozen layer's weights take no step, a frozen BatchNormalization runs in inference mode;
 * as in Keras, the change takes effect when the model is next compiled. */
kc_status kc_set_trainable(kc_layer *layer, int trainable);
kc_status kc_model_set_trainable(kc_model *m, int trainable);
int kc_get_trainable(const kc_layer *layer);

/* ---- the Functional API ------------------------------------------------------------------ */

/* A symbolic tensor: keras.Input, or what calling a layer on tensors gives. Tensors belong to
 * the models built from them; a tensor that ends in no model is released by kc_tensor_free. */
typedef struct kc_tensor kc_tensor;
kc_tensor *kc_input(kc_shape shape);                        /* keras.Input(shape) */
/* keras.Input(shape, dtype, name): dtype KC_INT32 for token ids (an Embedding's input),
 * KC_FLOAT32 otherwise (KC_UINT8 is taken as float32, as the data it scales). An int32 input
 * takes int32 or uint8 data, and float32 data whose values are whole numbers (anything else is
 * refused, naming the sample and position). Inside the engine token ids travel as float32
 * values, exact up to 2^24: int32 data beyond +-16777216 is refused. NULL name: input_layer_N. */
kc_tensor *kc_input_ex(kc_shape shape, kc_dtype dtype, const char *name);
kc_tensor *kc_input_named(kc_shape shape, const char *name); /* NULL name: input_layer_N */
/* layer(x). The layer is built on its first call, then shared: calling it again (on tensors of
 * the same shapes) shares its weights. A layer a call fails on is freed when nothing holds it;
 * a NULL input (a failed call before) gives NULL with that call's message kept. */
kc_tensor *kc_call(kc_layer *layer, kc_tensor *x);
kc_tensor *kc_call_n(kc_layer *layer, kc_tensor *const *xs, int n); /* merge layers */
/* layer(x, training=False) with training 0: the call runs in inference mode even in fit
 * (dropout off, BatchNormalization on its moving statistics), as fine-tuning code does with
 * a frozen base model */
kc_tensor *kc_call_training(kc_layer *layer, kc_tensor *x, int training);
/* a layer of several outputs (a nested model's): outs[0..n_out) */
kc_status kc_call_multi(kc_layer *layer, kc_tensor *const *xs, int n_in, kc_tensor **outs,
                        int n_out);
/* A model used as a layer (nested Sequential or Functional): calling it inlines its graph and
 * shares its layers and weights with it; kc_add(sequential, kc_model_as_layer(inner)) nests it
 * in a Sequential. The wrapper holds the model: it stays valid after kc_model_free(m). */
kc_layer *kc_model_as_layer(kc_model *m);
/* keras.Model(inputs, outputs): every output must depend on the inputs given only, and every
 * input must reach an output. Errors name the tensors and layers at fault. */
kc_model *kc_functional(kc_tensor *const *inputs, int n_inputs, kc_tensor *const *outputs,
                        int n_outputs);
void kc_tensor_free(kc_tensor *t); /* only a tensor no model or other tensor holds */
kc_shape kc_tensor_shape(const kc_tensor *t);
/* keras.backend.clear_session(): layer and model names start again at "dense", "dense_1"... */
void kc_clear_session(void);

/* Merge layers (keras.layers.Add, ...): they take several inputs, so they go in a functional
 * model, called on a list of tensors, not in a Sequential model. No weights.
 * Add, Multiply, Average, Maximum, Minimum take 1 to 16 inputs, Subtract exactly 2; their
 * shapes broadcast as in Keras (aligned from the last axis, each size equal or 1). At ties,
 * Maximum and Minimum split the gradient as Keras with JAX does: max(a, b) with a == b sends
 * half to each, pairwise along the inputs (max(max(a, b), c)). */
kc_layer *kc_merge_add(void);      /* Add: x0 + x1 + ... */
kc_layer *kc_merge_subtract(void); /* Subtract: x0 - x1 */
kc_layer *kc_merge_multiply(void); /* Multiply: x0 * x1 * ... */
kc_layer *kc_merge_average(void);  /* Average: (x0 + x1 + ...) / n */
kc_layer *kc_merge_maximum(void);  /* Maximum: elementwise max */
kc_layer *kc_merge_minimum(void);  /* Minimum: elementwise min */
/* Concatenate(axis): 1 to 16 inputs of one rank, equal but along axis. axis counts as Keras's
 * does, the batch axis being 0: -1 (the default) is the last axis of a sample, 1 its first;
 * axis 0 (the batch) is refused. */
kc_layer *kc_concatenate(int axis);
/* Dot(axes=(axis0, axis1), normalize): the batch-wise dot product of 2 inputs, summed along
 * axis0 of the first and axis1 of the second (Keras's numbering: 1 the first sample axis, -1
 * the last; Keras's axes=k is kc_dot(k, k, ...)). Output: the first input's other axes, then
 * the second's ((1) when none: two (n) vectors give (1)). normalize: both inputs are first
 * l2-normalised along those axes (keras.ops.normalize: x / max(|x|, 1e-7)), so the output is
 * the cosine similarity. */
kc_layer *kc_dot(int axis0, int axis1, int normalize);

/* ---- recurrent layers (issue 12) ------------------------------------------------------------
 * SimpleRNN, LSTM, GRU on (timesteps, features) inputs, as Keras 3's: weights kernel (features,
 * G units), recurrent_kernel (units, G units), bias (G units; GRU reset_after: (2, 3 units)),
 * gates i f c o (LSTM), z r h (GRU). Output (timesteps, units) with return_sequences, else
 * (units). A zero field means Keras's default. */
#define KC_RNN_LINEAR ((kc_act)(KC_ACT_COUNT + 1)) /* activation=None/"linear" (0 is tanh) */
typedef struct {
    kc_act activation;           /* 0 -> tanh; KC_RNN_LINEAR for linear */
    kc_act recurrent_activation; /* 0 -> sigmoid (LSTM, GRU); KC_RNN_LINEAR for linear */
    int use_bias;                /* 0 -> True; KC_ZERO for False */
    int unit_forget_bias;        /* LSTM: 0 -> True; KC_ZERO for False */
    int reset_after;             /* GRU: 0 -> True; KC_ZERO for False */
    kc_initializer kernel_initializer;    /* glorot_uniform */
    kc_initializer recurrent_initializer; /* orthogonal */
    kc_initializer bias_initializer;      /* zeros */
    int return_sequences, go_backwards;
    int stateful; /* the final state is the next batch's initial state (kc_rnn_reset_states) */
    /* masks drawn once per sequence (per call), the same at every step; with
     * recurrent_dropout an LSTM or GRU draws one mask per gate for the state and, with dropout,
     * one per gate for the inputs (Keras 3's implementation 1); otherwise one each */
    float dropout, recurrent_dropout;
    int zero_output_for_mask; /* a masked step's output is 0 (default: the previous output) */
    /* return_state: the call has 2 outputs [output, h] (LSTM: 3, [output, h, c]), the last
     * state of each (units); call it with kc_call_multi(layer, &x, 1, outs, n) */
    int return_state;
} kc_rnn_opts;
kc_layer *kc_simple_rnn(int units, const kc_rnn_opts *opts); /* opts may be NULL */
kc_layer *kc_lstm(int units, const kc_rnn_opts *opts);
kc_layer *kc_gru(int units, const kc_rnn_opts *opts);
/* a stateful recurrent layer's states back to zeros (Keras's reset_states); a Bidirectional
 * resets both of its layers */
kc_status kc_rnn_reset_states(kc_layer *layer);
/* Bidirectional(rnn, merge_mode, backward_layer): rnn runs forwards (renamed forward_<name>),
 * backward (NULL: a copy of rnn with go_backwards flipped, backward_<name>) backwards; its
 * output sequence is flipped back to time order and merged with the forward one. The wrapper
 * holds both layers. KC_MERGE_NONE (merge_mode=None): the call has 2 outputs, [forward,
 * backward] (kc_call_multi). With return_state (both layers alike) the call's outputs are, as
 * Keras's, the output(s), then the forward layer's states, then the backward layer's. */
typedef enum {
    KC_MERGE_CONCAT = 0,
    KC_MERGE_SUM,
    KC_MERGE_MUL,
    KC_MERGE_AVE,
    KC_MERGE_NONE
} kc_merge_mode;
kc_layer *kc_bidirectional(kc_layer *rnn, kc_merge_mode merge_mode, kc_layer *backward);
/* TimeDistributed(layer): layer (one input) applied to each timestep of (timesteps, ...), the
 * same weights at every step; the wrapper holds it */
kc_layer *kc_time_distributed(kc_layer *layer);

/* ---- custom layers ------------------------------------------------------------------------ */

/* A subclass of keras.layers.Layer, in C. A type (a static struct: Keras's class) describes
 * the layer; kc_custom makes layers of it (its instances), which go in models like any
 * other. The type's functions see the layer as a kc_custom_layer:
 *   build     Keras's build(input_shape): declares the weights with kc_custom_add_weight
 *             (Keras's add_weight) and sets the output shape (preset to the input shape).
 *             Shapes are per sample, without the batch axis.
 *   forward   Keras's call(): out (batch, output size) from in (batch, input size), row-major.
 *             training: 1 in training steps (fit, train_on_batch), 0 otherwise.
 *   backward  what Keras gets by autodiff, written by hand: from dout (batch, output size),
 *             the gradient of the loss w.r.t. out, it writes the gradient of every trainable
 *             weight (kc_custom_weight_grad; written, not accumulated) and, when din is not
 *             NULL, din (batch, input size). NULL: nothing can be trained through the layer;
 *             kc_compile refuses a model that would need its gradient, naming the layer.
 * The layer's options (Keras's __init__ arguments, what get_config returns) are a struct of
 * yours, config_size bytes, copied into each layer (kc_custom_config); the members listed in
 * config_fields are saved in model files and read back by kerac. kc_register_layer_type makes
 * the class loadable (keras.saving.register_keras_serializable): files name it as Keras does,
 * class_name with registered_name "package>class_name", so that a file kerac writes loads in
 * Keras where the same class is registered, and the reverse. The functions run on the calling
 * thread; kc_matmul below is kerac's threaded matrix product. */
typedef struct kc_custom_layer kc_custom_layer;

#define KC_CUSTOM_MAX_WEIGHTS 8 /* weights of one custom layer */

/* config members kerac saves and loads, by the key Keras's get_config writes */
typedef enum {
    KC_FIELD_INT = 1,    /* int, saved as a whole number */
    KC_FIELD_FLOAT,      /* float */
    KC_FIELD_BOOL,       /* int (0 or 1), saved as false / true */
    KC_FIELD_STRING,     /* char[size], NUL-terminated */
    KC_FIELD_INITIALIZER /* kc_initializer, saved as keras.initializers.serialize writes it */
} kc_field_kind;
typedef struct {
    const char *name;   /* the config key: "initializer" */
    kc_field_kind kind;
    size_t offset;      /* offsetof(your config struct, member) */
    size_t size;        /* KC_FIELD_STRING: sizeof the char array; otherwise unused */
} kc_config_field;

typedef struct {
    const char *class_name; /* "Antirectifier": a letter, then letters, digits or _ */
    const char *package;    /* NULL: "Custom" (Keras's default): "Custom>Antirectifier" */
    size_t config_size;     /* sizeof your config struct; 0: none */
    /* the defaults of Keras's __init__: what kc_custom(type, NULL) copies and what a
     * loaded config starts from (fields absent from the file keep them); NULL: zeros */
    const void *default_config;
    const kc_config_field *config_fields;
    int n_config_fields;
    /* optional (NULL: no weights, output shape = input shape); return an error with
     * kc_custom_error */
    kc_status (*build)(kc_custom_layer *self, kc_shape input_shape, kc_shape *output_shape);
    /* required */
    void (*forward)(kc_custom_layer *self, const float *in, float *out, int batch, int training);
    /* NULL: the layer is not differentiable (see above) */
    void (*backward)(kc_custom_layer *self, const float *in, const float *out,
                     const float *dout, float *din, int batch);
    /* optional: floats of workspace for batches of up to batch samples (kc_custom_scratch),
     * kept from a call's forward to its backward */
    int64_t (*scratch_size)(const kc_custom_layer *self, int batch);
    /* optional, for options config_fields cannot describe: get_config sets *json to a
     * malloc'd JSON object of further config keys (kerac frees it); from_config receives the
     * whole config object read from a file, after the config_fields were read. With
     * from_config set, keys kerac does not know are left to it; without, they are refused. */
    kc_status (*get_config)(const kc_custom_layer *self, char **json);
    kc_status (*from_config)(kc_custom_layer *self, const char *json);
} kc_custom_layer_type;

/* Makes the type's class loadable from model files (idempotent). The type must stay valid
 * while the program uses it (a static const struct). Refused: an invalid type, a class name
 * of Keras's built-in layers, another type already registered under the same name. */
kc_status kc_register_layer_type(const kc_custom_layer_type *type);
/* A layer of the type with options *config (config_size bytes, copied; NULL: the type's
 * default_config). Registering is needed for loading only. NULL (message set) when the type
 * is invalid or out of memory. */
kc_layer *kc_custom(const kc_custom_layer_type *type, const void *config);
/* the custom layer behind a kc_layer (kc_get_layer(model, name)); NULL when not custom */
kc_custom_layer *kc_custom_from_layer(kc_layer *layer);

/* In build only: declares a weight (Keras's add_weight(shape, initializer, trainable, name))
 * and returns its index (0, 1, ... in declaration order), or -1 on an error, which the build
 * then returns (message: the layer and the weight). Like Keras, kerac keeps the trainable
 * weights first, then the others (layer.weights order, saved files' order); the optimizer
 * steps the trainable ones only. initializer's zero value is glorot_uniform, as add_weight. */
int kc_custom_add_weight(kc_custom_layer *self, const char *name, kc_shape shape,
                         kc_initializer initializer, int trainable);
/* weight index's values (row-major, its declared shape), and its gradient; NULL before the
 * model's weights exist (they do in forward and backward) or for an unknown index */
float *kc_custom_weight(kc_custom_layer *self, int index);
float *kc_custom_weight_grad(kc_custom_layer *self, int index);
int kc_custom_weight_count(const kc_custom_layer *self);
/* the layer's copy of the config struct (the type's config_size bytes) */
void *kc_custom_config(const kc_custom_layer *self);
kc_shape kc_custom_input_shape(const kc_custom_layer *self);
kc_shape kc_custom_output_shape(const kc_custom_layer *self);
const char *kc_custom_name(const kc_custom_layer *self); /* "antirectifier_1" */
float *kc_custom_scratch(kc_custom_layer *self); /* the type's scratch_size floats, or NULL */
/* sets the error message "layer <name> (<class>): <fmt ...>" and returns status */
#if defined(__GNUC__)
#define KC_PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define KC_PRINTF_LIKE(f, a)
#endif
kc_status kc_custom_error(const kc_custom_layer *self, kc_status status, const char *fmt, ...)
    KC_PRINTF_LIKE(3, 4);

/* keras.ops.matmul for custom layers: c (m, n) = op(a) @ op(b), a (m, k) row-major, or
 * (k, m) when transpose_a; b (k, n), or (n, k) when transpose_b. c is written, not added to.
 * Threaded as kerac's own products; results do not depend on the thread count. */
void kc_matmul(int transpose_a, int transpose_b, int m, int n, int k, const float *a,
               const float *b, float *c);

/* Sets the seed that models created afterwards take (keras.utils.set_random_seed). */
void kc_set_random_seed(uint64_t seed);
/* Threads for matrix products and kernels; 0 = $KERAC_NUM_THREADS or all cores. */
void kc_set_num_threads(int threads);
int kc_get_num_threads(void);

kc_model *kc_sequential(kc_shape input_shape); /* NULL only when out of memory */
/* Sequential([keras.Input(input_shape, dtype)]): an int32 input of token ids (kc_input_ex) */
kc_model *kc_sequential_ex(kc_shape input_shape, kc_dtype dtype);
/* input i's dtype (KC_FLOAT32 or KC_INT32) */
kc_dtype kc_model_input_dtype(const kc_model *m, int i);
/* Takes ownership of layer (also on error). Shapes are checked here; an error is also kept
 * and reported again by kc_compile, so a chain of kc_add calls may be checked once. */
kc_status kc_add(kc_model *m, kc_layer *layer);
void kc_model_free(kc_model *m);
/* Keras's "mixed_bfloat16" policy for this model's Dense layers: the operands of their matrix
 * products rounded to bfloat16 and the sums kept in float32, weights and optimizer in float32
 * (on = 1; 0 returns to float32). KC_EINVAL where the CPU lacks AVX512-BF16. Not saved with
 * the model. */
kc_status kc_set_mixed_bfloat16(kc_model *m, int on);
kc_status kc_summary(kc_model *m, FILE *out);
const char *kc_model_name(const kc_model *m);
kc_status kc_model_set_name(kc_model *m, const char *name);
/* The model's fixed batch size: keras.Input(shape, batch_size=n), the first entry of the saved
 * batch_shape / batch_input_shape (0, the default: None). Keras requires it of a model with a
 * stateful recurrent layer; kerac writes it into the files it saves and reads it from Keras's.
 * Without it, a model with a stateful layer that has run saves the batch size its state holds
 * (the last batch size it ran with). Calls of another batch size are not refused. */
kc_status kc_model_set_batch_size(kc_model *m, int batch_size);
int kc_model_batch_size(const kc_model *m);
/* model.get_layer(name): a top-level layer, or one inside a nested model ("inner/dense") */
kc_layer *kc_get_layer(kc_model *m, const char *name);
int kc_model_input_count(const kc_model *m);
int kc_model_output_count(const kc_model *m);
kc_shape kc_model_input_shape_at(const kc_model *m, int i);
kc_shape kc_model_output_shape_at(const kc_model *m, int i);
/* Fusions (Dense(relu) + Dropout, the relu derivative in the next product, the optimizer step
 * inside a Dense's weight-gradient product) change no bit of any result; off (0) runs every
 * layer on its own, the plain path tests compare against. On by default. */
kc_status kc_set_fusion(kc_model *m, int on);

/* Leaf layers, in weight order (a nested model's layers in place of it) */
int kc_layer_count(const kc_model *m);
/* layer i's name ("dense_1"), and its output shape */
const char *kc_layer_name(const kc_model *m, int i);
/* layer i's Keras class name, as the summary shows it ("Dense", "Rescaling") */
const char *kc_layer_class(const kc_model *m, int i);
kc_shape kc_input_shape(const kc_model *m);
kc_shape kc_output_shape(const kc_model *m);
/* layer i's number of weights, and how many of them (the first ones) are trained */
int64_t kc_layer_param_count(const kc_model *m, int i);
int64_t kc_layer_trainable_count(const kc_model *m, int i);

/* All weights in one flat buffer, in Keras's order (per layer: kernel (in, units) or (kh, kw,
 * in, filters) row-major, then bias; BatchNormalization's gamma, beta, moving_mean,
 * moving_variance). Creating the weights (glorot) happens on first need; these force it.
 * The count includes non-trainable weights, as Keras's count_params. */
int64_t kc_count_params(kc_model *m);
kc_status kc_get_weights(kc_model *m, float *out, int64_t count);
kc_status kc_set_weights(kc_model *m, const float *values, int64_t count);

/* ---- losses, optimizers, compile ---------------------------------------------------------- */

typedef enum {
    KC_LOSS_NONE = 0,
    KC_CATEGORICAL_CROSSENTROPY,
    KC_SPARSE_CATEGORICAL_CROSSENTROPY,
    KC_BINARY_CROSSENTROPY,
    KC_MEAN_SQUARED_ERROR,
    KC_BINARY_FOCAL_CROSSENTROPY,
    KC_CATEGORICAL_FOCAL_CROSSENTROPY,
    KC_MEAN_ABSOLUTE_ERROR,
    KC_MEAN_ABSOLUTE_PERCENTAGE_ERROR,
    KC_MEAN_SQUARED_LOGARITHMIC_ERROR,
    KC_HUBER,
    KC_LOG_COSH,
    KC_KL_DIVERGENCE,
    KC_POISSON,
    KC_HINGE,
    KC_SQUARED_HINGE,
    KC_CATEGORICAL_HINGE,
    KC_COSINE_SIMILARITY, /* the negative cosine similarity over the last axis, as Keras */
    KC_LOSS_COUNT /* no loss: the number of kc_loss values (a new one goes before it) */
} kc_loss;
const char *kc_loss_name(kc_loss loss); /* "none" for KC_LOSS_NONE; "unknown" when not a kc_loss */

/* How a loss's values over a batch become one number (Keras's reduction); "none" is not
 * trainable and kc_compile refuses it. */
typedef enum {
    KC_REDUCTION_SUM_OVER_BATCH_SIZE = 0, /* the mean over samples (Keras's default) */
    KC_REDUCTION_SUM,
    KC_REDUCTION_MEAN, /* the same as sum_over_batch_size without sample weights */
    KC_REDUCTION_NONE,
    KC_REDUCTION_MEAN_WITH_SAMPLE_WEIGHT, /* sum(w * loss) / sum(w) with sample weights, else mean */
    KC_REDUCTION_COUNT
} kc_reduction;
const char *kc_reduction_name(kc_reduction r); /* Keras's: "sum_over_batch_size", ... */

/* A loss with Keras's options; zero fields are Keras's defaults. Options a loss has no use
 * for must stay zero (kc_compile says which one is set). */
typedef struct {
    kc_loss kind;
    int from_logits;        /* categorical, sparse, binary and the focal crossentropies */
    float label_smoothing;  /* categorical (y(1 - ls) + ls / classes), binary (y(1 - ls) + ls / 2),
                               and their focal forms; in [0, 1] */
    int has_ignore_class;   /* sparse categorical: samples labelled ignore_class count for */
    int ignore_class;       /*   nothing, and the mean is over the others */
    float gamma;            /* focal: 0 -> 2 */
    float alpha;            /* focal: 0 -> 0.25 */
    float delta;            /* Huber: 0 -> 1 */
    int apply_class_balancing; /* binary focal */
    kc_reduction reduction;
    int axis;               /* 0 or -1: the last axis (the only one kerac has) */
} kc_loss_spec;

/* Keras's metrics, by class. kc_compile's `metrics` argument takes KC_METRIC_ACCURACY (the
 * value 1, as the bit it always was); kc_compile_ex takes any of them as kc_metric_spec. */
typedef enum {
    KC_METRIC_NONE = 0,
    KC_METRIC_ACCURACY = 1, /* "accuracy" / "acc": binary, sparse or categorical accuracy from
                               the loss and the output (binary for one column or a binary
                               crossentropy, sparse for sparse_categorical_crossentropy) */
    KC_METRIC_BINARY_ACCURACY,               /* BinaryAccuracy(threshold=0.5) */
    KC_METRIC_CATEGORICAL_ACCURACY,          /* CategoricalAccuracy */
    KC_METRIC_SPARSE_CATEGORICAL_ACCURACY,   /* SparseCategoricalAccuracy */
    KC_METRIC_TOP_K_CATEGORICAL_ACCURACY,    /* TopKCategoricalAccuracy(k=5) */
    KC_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY, /* SparseTopKCategoricalAccuracy(k=5) */
    KC_METRIC_MEAN_SQUARED_ERROR,            /* MeanSquaredError ("mse") */
    KC_METRIC_MEAN_ABSOLUTE_ERROR,           /* MeanAbsoluteError ("mae") */
    KC_METRIC_ROOT_MEAN_SQUARED_ERROR,       /* RootMeanSquaredError */
    KC_METRIC_MEAN_ABSOLUTE_PERCENTAGE_ERROR,/* MeanAbsolutePercentageError ("mape") */
    KC_METRIC_MEAN_SQUARED_LOGARITHMIC_ERROR,/* MeanSquaredLogarithmicError ("msle") */
    KC_METRIC_COSINE_SIMILARITY,             /* CosineSimilarity: the cosine itself (the loss
                                                is its negative) */
    KC_METRIC_LOG_COSH_ERROR,                /* LogCoshError (named "logcosh") */
    KC_METRIC_BINARY_CROSSENTROPY,           /* BinaryCrossentropy(from_logits, label_smoothing) */
    KC_METRIC_CATEGORICAL_CROSSENTROPY,      /* CategoricalCrossentropy(from_logits, label_smoothing) */
    KC_METRIC_SPARSE_CATEGORICAL_CROSSENTROPY, /* SparseCategoricalCrossentropy(from_logits) */
    KC_METRIC_KL_DIVERGENCE,                 /* KLDivergence */
    KC_METRIC_POISSON,                       /* Poisson */
    KC_METRIC_HINGE,                         /* Hinge */
    KC_METRIC_SQUARED_HINGE,                 /* SquaredHinge */
    KC_METRIC_CATEGORICAL_HINGE,             /* CategoricalHinge */
    KC_METRIC_HUBER,                         /* the loss function huber (Keras has no metric
                                                class: the function, wrapped in a Mean) */
    KC_METRIC_BINARY_FOCAL_CROSSENTROPY,     /* the loss function, likewise */
    KC_METRIC_CATEGORICAL_FOCAL_CROSSENTROPY,/* the loss function, likewise */
    KC_METRIC_AUC,                           /* AUC(num_thresholds=200, curve, summation_method,
                                                from_logits); multi_label False */
    KC_METRIC_PRECISION,                     /* Precision(thresholds, top_k, class_id) */
    KC_METRIC_RECALL,                        /* Recall(thresholds, top_k, class_id) */
    KC_METRIC_F1_SCORE,                      /* F1Score(average, threshold) */
    KC_METRIC_FBETA_SCORE,                   /* FBetaScore(average, beta, threshold) */
    KC_METRIC_COUNT /* no metric: the number of kc_metric values (a new one goes before it) */
} kc_metric;

typedef enum { KC_CURVE_ROC = 0, KC_CURVE_PR, KC_CURVE_PRGAIN } kc_auc_curve;
typedef enum {
    KC_SUMMATION_INTERPOLATION = 0,
    KC_SUMMATION_MAJORING,
    KC_SUMMATION_MINORING
} kc_auc_summation;
/* F1Score / FBetaScore's average. Keras's default, None, gives one value per class: kerac logs
 * one number per metric, so kc_compile refuses it (and a file's is skipped with a warning). */
typedef enum {
    KC_AVERAGE_NONE = 0,
    KC_AVERAGE_MICRO,
    KC_AVERAGE_MACRO,
    KC_AVERAGE_WEIGHTED
} kc_average;

#define KC_MAX_METRICS 16 /* metrics (and as many weighted metrics) per output */

/* A metric with Keras's options; zero fields are Keras's defaults. Options a metric's class
 * does not take must stay zero (kc_compile says which one is set). */
typedef struct {
    kc_metric kind;
    /* the name in logs and History (before an output's prefix); NULL: Keras's, the class's
       default name ("auc", "top_k_categorical_accuracy", "logcosh", ...) or, from
       kc_metric_from_name, the name given ("mse", "acc"), as Keras names a metric given as a
       string. A second metric of the same name in a model gets "_1", "_2", ... */
    const char *name;
    int has_threshold;     /* else Keras's default: */
    float threshold;       /*   BinaryAccuracy 0.5; Precision, Recall 0.5 (with top_k: the
                                top_k classes are positive); F1Score, FBetaScore: None (a row's
                                largest value is its positive class) */
    int k;                 /* TopK and SparseTopK accuracy: 0 -> 5 */
    int top_k;             /* Precision, Recall: 0 -> None */
    int has_class_id;      /* Precision, Recall: only this column counts */
    int class_id;
    int num_thresholds;    /* AUC: 0 -> 200 (> 1) */
    kc_auc_curve curve;    /* AUC: ROC */
    kc_auc_summation summation_method; /* AUC: interpolation */
    int from_logits;       /* AUC (a sigmoid first), the crossentropies */
    float label_smoothing; /* BinaryCrossentropy, CategoricalCrossentropy */
    float beta;            /* FBetaScore: 0 -> 1 */
    kc_average average;    /* F1Score, FBetaScore: must be micro, macro or weighted */
} kc_metric_spec;

/* The class's default name ("auc"); "none" for KC_METRIC_NONE, "unknown" when not a kc_metric */
const char *kc_metric_name(kc_metric metric);
/* A metric by the name Keras 3's compile takes (a class name "AUC", its snake-case name
 * "top_k_categorical_accuracy", an alias "mse", "acc") or tf.keras 2's ("logcosh", "kld"):
 * out gets the kind, its default options and name = that name (a static string, the key Keras
 * gives it). KC_EINVAL (with a message naming it) when unknown. */
kc_status kc_metric_from_name(const char *name, kc_metric_spec *out);

typedef struct kc_optimizer kc_optimizer;
typedef struct {
    float learning_rate; /* 0 -> 0.01 */
    float momentum;      /* 0 */
    int nesterov;        /* 0 */
} kc_sgd_opts;
typedef struct {
    float learning_rate; /* 0 -> 0.001 */
    float rho;           /* 0 -> 0.9 */
    float momentum;      /* 0 */
    float epsilon;       /* 0 -> 1e-7 */
    int centered;        /* 0 */
} kc_rmsprop_opts;
typedef struct {
    float learning_rate; /* 0 -> 0.001 */
    float beta_1;        /* 0 -> 0.9 */
    float beta_2;        /* 0 -> 0.999 */
    float epsilon;       /* 0 -> 1e-7 */
    int amsgrad;         /* 0 */
} kc_adam_opts;
typedef struct {
    float learning_rate; /* 0 -> 0.001 (the paper's form is 1.0) */
    float rho;           /* 0 -> 0.95 */
    float epsilon;       /* 0 -> 1e-7 */
} kc_adadelta_opts;
typedef struct {
    float learning_rate;             /* 0 -> 0.001 */
    float initial_accumulator_value; /* 0 -> 0.1 (the accumulators' starting value) */
    float epsilon;                   /* 0 -> 1e-7 */
} kc_adagrad_opts;
typedef struct {
    float learning_rate; /* 0 -> 0.001 */
    float beta_1;        /* 0 -> 0.9 */
    float beta_2;        /* 0 -> 0.999 */
    float epsilon;       /* 0 -> 1e-7 */
} kc_nadam_opts;
typedef struct {
    float learning_rate; /* 0 -> 0.001 */
    float weight_decay;  /* 0 -> 0.004 (decoupled: w -= w * weight_decay * learning_rate first) */
    float beta_1;        /* 0 -> 0.9 */
    float beta_2;        /* 0 -> 0.999 */
    float epsilon;       /* 0 -> 1e-7 */
    int amsgrad;         /* 0 */
} kc_adamw_opts;

typedef struct {
    float learning_rate; /* 0 -> 0.001 */
    float beta_1;        /* 0 -> 0.9 */
    float beta_2;        /* 0 -> 0.999 */
    float epsilon;       /* 0 -> 1e-7 */
} kc_adamax_opts;
typedef struct {
    float learning_rate;                   /* 0 -> 0.001 */
    float learning_rate_power;             /* 0 -> -0.5; KC_ZERO for 0 (must be <= 0) */
    float initial_accumulator_value;       /* 0 -> 0.1; KC_ZERO for 0 */
    float l1_regularization_strength;      /* 0 */
    float l2_regularization_strength;      /* 0 */
    float l2_shrinkage_regularization_strength; /* 0 */
    float beta;                            /* 0 */
} kc_ftrl_opts;
typedef struct {
    float learning_rate; /* 0 -> 0.001 */
    float beta_1;        /* 0 -> 0.9 */
    float beta_2;        /* 0 -> 0.99 */
} kc_lion_opts;
typedef struct {
    float learning_rate; /* 0 -> 0.001 */
    float beta_1;        /* 0 -> 0.9 */
    float beta_2;        /* 0 -> 0.999 */
    float epsilon;       /* 0 -> 1e-7 */
} kc_lamb_opts;

/* NULL opts means defaults. NULL return only when out of memory or an option is invalid. */
kc_optimizer *kc_sgd(const kc_sgd_opts *opts);
kc_optimizer *kc_rmsprop(const kc_rmsprop_opts *opts);
kc_optimizer *kc_adam(const kc_adam_opts *opts);
kc_optimizer *kc_adadelta(const kc_adadelta_opts *opts);
kc_optimizer *kc_adagrad(const kc_adagrad_opts *opts);
kc_optimizer *kc_nadam(const kc_nadam_opts *opts);
kc_optimizer *kc_adamw(const kc_adamw_opts *opts);
kc_optimizer *kc_adamax(const kc_adamax_opts *opts);
kc_optimizer *kc_ftrl(const kc_ftrl_opts *opts);
kc_optimizer *kc_lion(const kc_lion_opts *opts);
kc_optimizer *kc_lamb(const kc_lamb_opts *opts);
void kc_optimizer_free(kc_optimizer *opt);
float kc_optimizer_get_learning_rate(const kc_optimizer *opt);
/* Sets the learning rate used from the next step on (0 is taken as 0 here, not the default);
 * AdamW's weight decay scales with it too. A NULL opt, or a negative or non-finite lr (which
 * the constructors reject), changes nothing and is an error. */
kc_status kc_optimizer_set_learning_rate(kc_optimizer *opt, float learning_rate);

/* Keras's options of every optimizer (base_optimizer's arguments), 0 meaning unset. Each step:
 * the gradients clipped (clipnorm: each variable's, kernel and bias apart, to that L2 norm;
 * global_clipnorm: all of them together; clipvalue: elementwise; at most one of the three),
 * then w -= w * weight_decay * lr (decoupled), then the rule, then the EMA of the weights
 * (use_ema). Clipping by a norm needs every gradient first, so the Dense layers do not step
 * inside their products then (slower, the same result). */
typedef struct {
    float weight_decay;          /* 0: none */
    float clipnorm;              /* 0: none */
    float clipvalue;             /* 0: none */
    float global_clipnorm;       /* 0: none */
    int use_ema;                 /* 0 */
    float ema_momentum;          /* 0 -> 0.99; KC_ZERO for 0; in [0, 1] */
    int ema_overwrite_frequency; /* 0: none (kc_fit puts the averages in at its end) */
    float decay;                 /* Keras 2's lr / (1 + decay * iterations); 0: none */
} kc_optimizer_common_opts;
/* Replaces the optimizer's common options (before or after compile). NULL opts: all unset. */
kc_status kc_optimizer_set_common(kc_optimizer *opt, const kc_optimizer_common_opts *opts);
kc_optimizer_common_opts kc_optimizer_get_common(const kc_optimizer *opt);

/* Learning-rate schedules (keras.optimizers.schedules), evaluated at the optimizer's step count
 * (the steps finished) before each step; saved and loaded with the model. */
typedef enum {
    KC_LR_CONSTANT = 0, /* no schedule */
    KC_LR_EXPONENTIAL_DECAY,
    KC_LR_INVERSE_TIME_DECAY,
    KC_LR_PIECEWISE_CONSTANT_DECAY,
    KC_LR_POLYNOMIAL_DECAY,
    KC_LR_COSINE_DECAY,
    KC_LR_COSINE_DECAY_RESTARTS
} kc_lr_schedule_kind;
#define KC_MAX_LR_BOUNDARIES 16
typedef struct {
    kc_lr_schedule_kind kind;
    double initial_learning_rate; /* all but piecewise */
    double decay_steps;   /* > 0; CosineDecayRestarts: first_decay_steps */
    double decay_rate;    /* exponential, inverse time */
    int staircase;        /* exponential, inverse time */
    double end_learning_rate; /* polynomial: 0 -> 0.0001; KC_ZERO for 0 */
    double power;         /* polynomial: 0 -> 1.0 */
    int cycle;            /* polynomial */
    double alpha;         /* cosine, restarts */
    int has_warmup_target; /* cosine: warmup_target set (None in Keras otherwise) */
    double warmup_target, warmup_steps;
    double t_mul;         /* restarts: 0 -> 2.0 */
    double m_mul;         /* restarts: 0 -> 1.0; KC_ZERO for 0 */
    int n_boundaries;     /* piecewise: boundaries[n], values[n + 1] */
    double boundaries[KC_MAX_LR_BOUNDARIES], values[KC_MAX_LR_BOUNDARIES + 1];
} kc_lr_schedule;
/* Sets (or with NULL or KC_LR_CONSTANT removes) the schedule. With a schedule, setting a
 * learning rate (kc_set_learning_rate, LearningRateScheduler, ReduceLROnPlateau) is an error, as
 * in Keras; kc_optimizer_get_learning_rate gives the schedule's value for the next step. */
kc_status kc_optimizer_set_schedule(kc_optimizer *opt, const kc_lr_schedule *schedule);
/* the schedule (kind KC_LR_CONSTANT when none), defaults filled in */
kc_lr_schedule kc_optimizer_get_schedule(const kc_optimizer *opt);
/* Keras's optimizer.finalize_variable_values: with use_ema, the weights become their moving
 * averages (kc_fit does this at its end, as Keras's fit). */
kc_status kc_finalize_variable_values(kc_model *m);
/* the compiled model's optimizer (owned by the model; NULL when not compiled): to read or change
 * its options, schedule and learning rate */
kc_optimizer *kc_model_get_optimizer(kc_model *m);

/* Takes ownership of the optimizer (also on error). metrics: 0 or KC_METRIC_ACCURACY (other
 * metrics: kc_compile_ex's metric_specs). The loss and metrics apply to every output. */
kc_status kc_compile(kc_model *m, kc_loss loss, kc_optimizer *opt, unsigned metrics);
typedef struct {
    kc_optimizer *optimizer; /* required; taken over (also on error) */
    /* per output, in order; when only loss[0] is set it applies to every output */
    kc_loss loss[KC_MAX_IO];
    /* per output, used instead of loss[] where loss_specs[o].kind is set (when only
     * loss_specs[0] is set it applies to every output) */
    kc_loss_spec loss_specs[KC_MAX_IO];
    /* per output; used when has_loss_weights (else every weight is 1); the total loss is
     * sum(loss_weights[o] * loss[o]) plus the regularization penalties */
    float loss_weights[KC_MAX_IO];
    int has_loss_weights;
    /* per output: 0 or KC_METRIC_ACCURACY (kc_compile's metrics apply to every output) */
    unsigned metrics[KC_MAX_IO];
    /* per output, Keras's metrics=[...]: a list ended by the first kind KC_METRIC_NONE (after
     * the accuracy of metrics[o], when set); unknown kinds, options a class does not take and
     * metrics that do not fit the output (a sparse metric without class-index labels, top-k
     * of one column, class_id out of range) are errors */
    kc_metric_spec metric_specs[KC_MAX_IO][KC_MAX_METRICS];
    /* per output, Keras's weighted_metrics=[...]: updated with the sample weights fit is
     * given (without any, the same values as metrics); a name already taken gets "weighted_" */
    kc_metric_spec weighted_metric_specs[KC_MAX_IO][KC_MAX_METRICS];
} kc_compile_opts;
kc_status kc_compile_ex(kc_model *m, const kc_compile_opts *opts);
/* The loss of output o of a compiled model (kind KC_LOSS_NONE when not compiled) */
kc_loss_spec kc_model_loss_spec(const kc_model *m, int o);
/* The compiled metrics, in Keras's order (output by output, the metrics then the weighted
 * ones): how many, and metric i's spec (resolved: defaults filled, name set), output, whether
 * it is weighted and its log key ("auc", "auc_1", "<output>_auc"). 0 / KC_EINVAL when out of
 * range or not compiled. */
int kc_model_metric_count(const kc_model *m);
kc_status kc_model_metric(const kc_model *m, int i, kc_metric_spec *spec, int *output,
                          int *weighted, const char **key);

/* ---- training and evaluation -------------------------------------------------------------- */

/* the most values kc_metrics holds: the loss, the outputs' losses, every metric */
#define KC_MAX_METRIC_VALUES (1 + KC_MAX_IO + 2 * KC_MAX_IO * KC_MAX_METRICS)
typedef struct {
    double loss;
    double accuracy; /* NaN when accuracy is not a metric (or the model has several outputs) */
    /* per output: its (unweighted) loss and accuracy, NaN where absent */
    double output_loss[KC_MAX_IO], output_accuracy[KC_MAX_IO];
    /* every value by its Keras name, in Keras's metrics_names order (what evaluate() returns
     * as a list): "loss", each output's "<output>_loss" (several outputs), then every metric as
     * compiled ("accuracy", "auc", "<output>_auc", ...). keys point into the model: valid until
     * it is compiled again or freed */
    int n_values;
    const char *const *keys;
    double values[KC_MAX_METRIC_VALUES];
} kc_metrics;
/* result[key] ("acc" and "accuracy" find each other); 0 when absent */
int kc_metrics_get(const kc_metrics *r, const char *key, double *value);

typedef struct {
    int epochs;          /* number of epochs completed in this call */
    double *loss;        /* [epochs] */
    double *accuracy;    /* [epochs], NaN if not tracked */
    double *val_loss;    /* [epochs], NaN without validation */
    double *val_accuracy;
    double *seconds;     /* wall time of each epoch's training part */
    int capacity;
    /* Keras's History.history: every key ("loss", every metric's: "accuracy", "auc", per
     * output "<output layer>_loss" and "<output layer>_auc" for models of several outputs),
     * sorted as Keras 3's logs, then the same
     * with "val_"), values[k][epoch] */
    int n_keys;
    char **keys;
    double **values;
} kc_history;
void kc_history_free(kc_history *h);
/* history.history[key]: h->epochs values, or NULL when the key is absent */
const double *kc_history_get(const kc_history *h, const char *key);

/* ---- data-parallel training on MPI (src/dist/, issue 15) ------------------------------------
 * Run the program under mpirun (`mpirun -np 4 build/mnist_mlp --distributed`) and call
 * kc_distributed_init once before building models. Every rank builds the same model with the
 * same seed and loads the same data; kc_fit then splits each global batch of batch_size rows
 * (after the same seeded shuffle on every rank) into fixed row groups of
 * kc_distributed_group_rows() rows, each rank computing the gradients of a contiguous range of
 * groups; the groups' gradients are summed in group order, exactly as one process sums them
 * (an ordered reduce-scatter, then an allgather), so the weights after training are the same
 * bits for any number of ranks, a batch the rank count does not divide included.
 * kc_distributed_init with one process (or no mpirun) trains in the same grouped order: the
 * reference the ranks match. Only rank 0 prints progress; the programs save on rank 0.
 * kc_evaluate (and fit's validation) and kc_predict are sharded too: each rank computes a
 * share of the samples and every rank gets all results (the one process's bits); so while
 * distributed, every rank must call kc_fit, kc_evaluate and kc_predict with the same data, as
 * every rank joins their exchanges (one rank alone would wait for the others).
 * Layers not yet handled (BatchNormalization, recurrent layers, noise_shape Dropout, weight
 * regularizers, sample weights, ...) are refused by name at kc_fit.
 * A program that never calls kc_distributed_init runs exactly as before (no MPI_Init, the
 * usual reduction order). Without MPI in the build, kc_distributed_init returns KC_ESTATE
 * with a message saying how to build with it (install libopenmpi-dev, rebuild). */
kc_status kc_distributed_init(int *argc, char ***argv);
/* MPI_Finalize (when kc_distributed_init started MPI); the grouped order ends. */
kc_status kc_distributed_finalize(void);
int kc_distributed_rank(void); /* 0 when not distributed */
int kc_distributed_size(void); /* 1 when not distributed */
int kc_distributed_active(void); /* kc_distributed_init succeeded and not finalized */
/* The rows of a reduction group (default 32; $KERAC_GROUP_ROWS at init); every rank must use
 * the same. Setting it (> 0) before kc_fit in a program without kc_distributed_init gives the
 * grouped single-process order (0: the usual order). */
kc_status kc_distributed_set_group_rows(int rows);
int kc_distributed_group_rows(void);

/* ---- callbacks ---------------------------------------------------------------------------- */

/* What fit passes to callbacks, as Keras's logs dict. NaN means absent (no accuracy metric, no
 * validation, or batch logs, which carry the training values so far in the epoch). */
typedef struct {
    int epoch;            /* 0-based, as Keras passes it (the progress bar shows epoch + 1) */
    int batch;            /* 0-based step within the epoch (on_batch_end), else -1 */
    double loss, accuracy, val_loss, val_accuracy;
    double learning_rate; /* the optimizer's current learning rate */
    /* every key with its value (as in History: the loss and every metric, sorted, then the
     * val_ ones) */
    int n_values;
    const char *const *keys;
    const double *values;
} kc_logs;
/* logs[key]: any key of the logs ("loss", "auc", "val_auc", "out_precision", ...), and
 * "learning_rate"; "acc" and "accuracy" find each other. Returns 0 when the key is unknown or
 * its value is absent (NaN) */
int kc_logs_get(const kc_logs *logs, const char *key, double *value);

/* A callback: any hook may be NULL. A hook returning a status other than KC_OK ends fit with
 * that status. To stop training as Keras's model.stop_training = True does, call
 * kc_stop_training(m); kc_set_learning_rate changes the rate for the next step. Write your own
 * by filling the struct (kc_callback_free calls destroy, when set, instead of free). */
typedef struct kc_callback kc_callback;
typedef kc_status (*kc_callback_fn)(kc_callback *cb, kc_model *m, const kc_logs *logs);
struct kc_callback {
    kc_callback_fn on_train_begin, on_train_end, on_epoch_begin, on_epoch_end, on_batch_end;
    void (*destroy)(kc_callback *cb);
    void *user;
};
void kc_callback_free(kc_callback *cb);
void kc_stop_training(kc_model *m);
float kc_get_learning_rate(const kc_model *m); /* 0 when not compiled */
kc_status kc_set_learning_rate(kc_model *m, float learning_rate);
/* epochs completed so far (fit's last epoch index; kept in saved files): the initial_epoch
 * to pass when resuming */
int kc_model_epoch(const kc_model *m);

typedef enum { KC_MODE_AUTO = 0, KC_MODE_MIN, KC_MODE_MAX } kc_monitor_mode;

typedef struct {
    const char *monitor;      /* NULL -> "val_loss" */
    double min_delta;         /* 0 */
    int patience;             /* 0 */
    kc_monitor_mode mode;     /* auto: the monitored metric's direction (max for accuracy,
                                 AUC, precision, ...; min for losses and errors); a key the
                                 model does not log is an error when fit starts (Keras: it
                                 cannot tell the direction); with min or max, a key missing
                                 from the logs is a warning (kc_warn) */
    int restore_best_weights; /* 0 */
    int has_baseline;         /* 0: no baseline; 1: baseline below */
    double baseline;
    int start_from_epoch;     /* 0 */
    int verbose;              /* 0; 1 prints "Epoch N: early stopping" to stdout */
} kc_early_stopping_opts;
kc_callback *kc_early_stopping(const kc_early_stopping_opts *opts);

typedef struct {
    const char *monitor;  /* NULL -> "val_loss" */
    double factor;        /* 0 -> 0.1; must be < 1 */
    int patience;         /* 0 -> 10; KC_ZERO for 0 */
    kc_monitor_mode mode; /* auto */
    double min_delta;     /* 0 -> 1e-4; negative -> 0 */
    int cooldown;         /* 0 */
    double min_lr;        /* 0 */
    int verbose;          /* 0 */
} kc_reduce_lr_on_plateau_opts;
kc_callback *kc_reduce_lr_on_plateau(const kc_reduce_lr_on_plateau_opts *opts);

typedef struct {
    const char *monitor;   /* NULL -> "val_loss" */
    kc_monitor_mode mode;  /* auto */
    int save_best_only;    /* 0 */
    int save_weights_only; /* 0: kc_save (the format from the extension); 1: kc_save_weights */
    int has_initial_value_threshold;
    double initial_value_threshold;
    int verbose;           /* 0 */
} kc_model_checkpoint_opts;
/* filepath may hold {epoch}, {epoch:02d} and {<log key>:.4f} fields, as Keras's */
kc_callback *kc_model_checkpoint(const char *filepath, const kc_model_checkpoint_opts *opts);

/* CSVLogger(filename, separator=",", append=False): a header of "epoch" and the sorted log
 * keys, then a row per epoch */
kc_callback *kc_csv_logger(const char *filename, char separator, int append);
/* LearningRateScheduler(schedule): schedule(epoch, current lr, user) gives the epoch's rate */
typedef float (*kc_schedule_fn)(int epoch, float learning_rate, void *user);
kc_callback *kc_learning_rate_scheduler(kc_schedule_fn schedule, void *user, int verbose);
/* TerminateOnNaN: a NaN or infinite loss stops training (fit returns KC_OK) */
kc_callback *kc_terminate_on_nan(void);

typedef struct {
    int batch_size;                 /* 0 -> 32 */
    int epochs;                     /* 0 -> 1 */
    int verbose;                    /* 0 -> 1: progress bar on a terminal, a line per epoch
                                       otherwise; 2: a line per epoch; -1: silent (Keras 0) */
    int no_shuffle;                 /* 0: shuffle every epoch, as Keras */
    float validation_split;         /* fraction taken from the end, before shuffling */
    const kc_dataset *validation;   /* validation_data; overrides validation_split */
    int initial_epoch;              /* as Keras: runs epochs initial_epoch + 1 .. epochs */
    FILE *out;                      /* NULL -> stdout */
    kc_callback *const *callbacks;  /* n_callbacks of them, run in order; fit does not free them */
    int n_callbacks;
    /* Keras's class_weight: class_weight[c] weights the samples of class c (the class: a
     * class-index label, the argmax of a one-hot row, or a 1-column target rounded); classes
     * >= n_class_weight weigh 1 (Keras: a class missing from the dict). Training data only,
     * single-output models only, and not with the data's sample_weight (Keras refuses both). */
    const float *class_weight;
    int n_class_weight;
    /* batches per epoch (0: the whole data). Fewer than the data has: the next epoch goes on
     * from where this one stopped, a new (shuffled) pass starting when the data is used up;
     * more: the epoch ends with the data and kc_warn says it ran out (Keras). With
     * batch_size 0 the batch size becomes ceil(samples / steps_per_epoch), as Keras. */
    int steps_per_epoch;
    int validation_steps;      /* 0: all of the validation data; else its first batches */
    int validation_batch_size; /* 0: batch_size */
    int validation_freq;       /* 0 -> 1: validate after every validation_freq-th epoch (the
                                  History's val_ values are NaN for the others) */
} kc_fit_opts;

/* Trains; history (optional) receives the per-epoch values, also when training stops early
 * on a NaN loss (KC_ENAN, the message names the epoch and step). Free with kc_history_free. */
kc_status kc_fit(kc_model *m, const kc_dataset *train, const kc_fit_opts *opts,
                 kc_history **history);

typedef struct {
    int batch_size; /* 0 -> 32 */
    int verbose;    /* 0: silent; 1: a line at the end */
    FILE *out;
    int steps;      /* 0: all of the data; else its first steps batches (Keras's steps) */
} kc_evaluate_opts;
kc_status kc_evaluate(kc_model *m, const kc_dataset *data, const kc_evaluate_opts *opts,
                      kc_metrics *result);

/* x: count samples of the input shape, out: count * output size floats. Inference mode. */
kc_status kc_predict(kc_model *m, const float *x, int64_t count, float *out);
/* predict on n texts: a model of one string input (a TextVectorization first) and one output */
kc_status kc_predict_texts(kc_model *m, const char *const *texts, int64_t n, float *out);
/* one array per input (x[i]: count samples of input i) and per output */
kc_status kc_predict_multi(kc_model *m, const float *const *x, int64_t count, float *const *out);
/* predict on typed arrays, one per input: x[i].shape is the per-sample shape of this call's
 * data (its None dimensions' lengths), x[i].dtype int32 (token ids), uint8 (times x[i].scale,
 * 0 meaning 1) or float32. out[o] receives count samples of output o's shape for these lengths;
 * out_shapes (optional) receives those shapes (kc_model_output_shapes_for gives them first). */
kc_status kc_predict_ex(kc_model *m, const kc_array *x, int64_t count, float *const *out,
                        kc_shape *out_shapes);
/* the per-sample output shapes (one per output) for inputs of these shapes (one per input) */
kc_status kc_model_output_shapes_for(kc_model *m, const kc_shape *input_shapes,
                                     kc_shape *out_shapes);

/* One optimizer step on one batch (training mode). y: float one-hot / targets, or for sparse
 * categorical crossentropy class indices stored as floats. result (optional): that batch's loss
 * and metrics before the step (the metrics are reset first, as Keras's reset_metrics=True). */
kc_status kc_train_on_batch(kc_model *m, const float *x, const float *y, int batch,
                            kc_metrics *result);
/* The loss and the gradient of every weight (flat, kc_get_weights order) for one batch, without
 * a step. training != 0 runs dropout as in fit. */
kc_status kc_compute_gradients(kc_model *m, const float *x, const float *y, int batch,
                               int training, double *loss, float *grads, int64_t count);
/* the same with one array per input and per output (the loss: the weighted total) */
kc_status kc_train_on_batch_multi(kc_model *m, const float *const *x, const float *const *y,
                                  int batch, kc_metrics *result);
/* train_on_batch(x, y, sample_weight=w): w[batch] weights (NULL: none); the _multi form takes
 * one array per output (sw NULL, or sw[o] NULL for an unweighted output) */
kc_status kc_train_on_batch_weighted(kc_model *m, const float *x, const float *y,
                                     const float *sample_weight, int batch, kc_metrics *result);
kc_status kc_train_on_batch_multi_weighted(kc_model *m, const float *const *x,
                                           const float *const *y, const float *const *sw,
                                           int batch, kc_metrics *result);
/* train_on_batch(x, y, sample_weight) on a dataset (all of its samples are the batch): typed
 * inputs (int32 token ids, None lengths from the data's shapes), class-index targets of any
 * rank (sparse_categorical_crossentropy on sequences: (steps) labels for (steps, classes)
 * outputs), sample weights; and the same for the gradients without a step */
kc_status kc_train_on_batch_ex(kc_model *m, const kc_dataset *batch, kc_metrics *result);
kc_status kc_compute_gradients_ex(kc_model *m, const kc_dataset *batch, int training,
                                  double *loss, float *grads, int64_t count);
kc_status kc_compute_gradients_multi(kc_model *m, const float *const *x,
                                     const float *const *y, int batch, int training,
                                     double *loss, float *grads, int64_t count);

/* ---- saving and loading --------------------------------------------------------------------- */

/* The format comes from path's extension:
 *   .keras       Keras 3's zip (config.json, metadata.json, model.weights.h5): architecture,
 *                weights, compile settings and optimizer state; keras.saving.load_model reads it
 *   .weights.h5  weights (and optimizer state) only, Keras 3's layout (model.save_weights)
 *   .h5, .hdf5   the legacy full-model HDF5 file (model_config, training_config, model_weights)
 * Full-model files also hold kerac's own state (rng, dropout step, epoch) so that training
 * resumes bit for bit. Saving writes a temporary file in the same directory, syncs it and
 * renames it over path: path always holds the old or the new model, never half of one.
 * In distributed training (after kc_distributed_init) every rank holds the same weights: rank 0
 * writes and the other ranks return KC_OK without writing (kc_save_weights too). */
kc_status kc_save(kc_model *m, const char *path);
/* Loads a .keras or legacy .h5 full model, written by kerac or by Keras (3, or tf.keras 2);
 * compiled when the file holds compile settings. Errors name the file, layer and variable. */
kc_status kc_load(const char *path, kc_model **out);
typedef struct {
    int compile; /* 0 -> True; KC_ZERO: keras.saving.load_model(path, compile=False): the
                    architecture and the weights only, no compile settings or optimizer state */
} kc_load_opts;
kc_status kc_load_ex(const char *path, const kc_load_opts *opts, kc_model **out);
/* Weights (and optimizer state when both sides have it) into a model of the same layers:
 * .weights.h5 (Keras 3) or a legacy weights .h5 (Keras 2 save_weights) */
kc_status kc_save_weights(kc_model *m, const char *path);
kc_status kc_load_weights(kc_model *m, const char *path);
/* The architecture as JSON, Keras's model.to_json() form; *json is malloc'd (free() it) */
kc_status kc_model_to_json(kc_model *m, char **json);
/* Builds an uncompiled model from model.to_json() text, a .keras file's config.json or a
 * legacy file's model_config (compiled when the text holds a compile_config) */
kc_status kc_model_from_json(const char *json, kc_model **out);

#ifdef __cplusplus
}
#endif
#endif
