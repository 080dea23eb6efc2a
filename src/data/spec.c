/* spec.c: kc_data_load: a SPEC string (mnist, cifar10, a folder of IDX files, .npy, .npz,
 * .csv, a folder of class folders of images) into a kc_dataset, and the image-folder loader
 * (Keras's image_dataset_from_directory, decoded in parallel on kerac's thread pool). */
#include "spec_internal.h"
#include "text_internal.h"
#include "../util/threads.h"
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

void kc_data_info_free(kc_data_info *info) {
    if (!info) return;
    for (int i = 0; info->class_names && i < info->num_classes; i++) free(info->class_names[i]);
    for (int64_t i = 0; info->paths && i < info->count; i++) free(info->paths[i]);
    free(info->class_names);
    free(info->paths);
    memset(info, 0, sizeof *info);
}

static kc_status info_names(kc_data_info *info, const char *const *names, int n) {
    if (!info) return KC_OK;
    info->class_names = calloc((size_t)n, sizeof(char *));
    if (!info->class_names) return kc_err(KC_ENOMEM, "out of memory");
    info->num_classes = n;
    for (int i = 0; i < n; i++)
        if (!(info->class_names[i] = strdup(names[i]))) return kc_err(KC_ENOMEM, "out of memory");
    return KC_OK;
}

static int has_suffix(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

/* ---- .npy arrays into a dataset ------------------------------------------------------------ */

static int is_int(const kc_npy *a) { return a->dtype[0] == 'i' || a->dtype[0] == 'u'; }

static int64_t int_at(const kc_npy *a, int64_t i) {
    if (a->dtype[0] == 'u') return ((const uint8_t *)a->data)[i];
    if (a->dtype[1] == '4') return ((const int32_t *)a->data)[i];
    return ((const int64_t *)a->data)[i];
}

/* the array as float32, in place (every dtype is at least as wide as float32, but u1) */
static kc_status to_float(const char *what, kc_npy *a) {
    if (!strcmp(a->dtype, "f4")) return KC_OK;
    float *dst = a->data;
    if (!strcmp(a->dtype, "u1")) {
        dst = kc_alloc((size_t)a->size * sizeof(float));
        if (!dst) return kc_err_prefix(KC_ENOMEM, "%s", what);
    }
    for (int64_t i = 0; i < a->size; i++) { /* forward: element i's source lies at or after it */
        float v;
        if (!strcmp(a->dtype, "f8")) {
            double d;
            memcpy(&d, (const uint8_t *)a->data + 8 * i, 8);
            v = (float)d;
        } else {
            v = (float)int_at(a, i);
        }
        memcpy(dst + i, &v, sizeof v);
    }
    if (dst != a->data) kc_free(a->data);
    a->data = dst;
    strcpy(a->dtype, "f4");
    return KC_OK;
}

static kc_status sample_shape(const char *what, const char *role, const kc_npy *a, kc_shape *s) {
    if (a->rank < 1)
        return kc_err(KC_EFORMAT, "%s: %s is a scalar; the first axis must count the samples", what, role);
    if (a->rank - 1 > KC_MAX_RANK)
        return kc_err(KC_EFORMAT, "%s: %s has rank %d; kerac's samples have at most %d axes", what,
                      role, a->rank, KC_MAX_RANK);
    *s = a->rank == 1 ? kc_shape1(1) : (kc_shape){.rank = a->rank - 1};
    for (int i = 1; i < a->rank; i++) {
        if (a->shape[i] <= 0 || a->shape[i] > INT_MAX)
            return kc_err(KC_EFORMAT, "%s: %s's axis %d has size %" PRId64, what, role, i, a->shape[i]);
        s->dims[i - 1] = (int)a->shape[i];
    }
    return KC_OK;
}

/* takes x (and y when has_y) into out; frees them on failure */
static kc_status npy_dataset(const char *xwhat, kc_npy *x, const char *ywhat, kc_npy *y, int has_y,
                             kc_dataset *out) {
    kc_status st = sample_shape(xwhat, "x", x, &out->x_shape);
    if (!st && has_y && y->shape[0] != x->shape[0])
        st = kc_err(KC_EFORMAT, "x and y counts differ: %s holds %" PRId64 " samples, %s holds %" PRId64,
                    xwhat, x->shape[0], ywhat, y->shape[0]);
    if (!st) {
        if (!strcmp(x->dtype, "u1")) {
            out->x_dtype = KC_UINT8;
        } else if (is_int(x)) { /* integers (token ids) stay exact: int32, range-checked */
            int32_t *v = x->data;
            for (int64_t i = 0; i < x->size && !st; i++) {
                int64_t e = int_at(x, i);
                if (e < INT32_MIN || e > INT32_MAX)
                    st = kc_err(KC_EFORMAT, "%s: value %" PRId64 " at flat index %" PRId64 " is out "
                                "of int32 range", xwhat, e, i);
                else v[i] = (int32_t)e;
            }
            out->x_dtype = KC_INT32;
        } else {
            st = to_float(xwhat, x);
            out->x_dtype = KC_FLOAT32;
        }
    }
    if (!st && has_y) {
        if (is_int(y) && y->rank == 1) {
            int32_t *v = kc_alloc((size_t)y->size * sizeof *v);
            int64_t max = -1;
            if (!v) st = kc_err_prefix(KC_ENOMEM, "%s", ywhat);
            for (int64_t i = 0; i < y->size && !st; i++) {
                int64_t e = int_at(y, i);
                if (e < 0 || e >= INT32_MAX)
                    st = kc_err(KC_EFORMAT, "%s: label %" PRId64 " of sample %" PRId64 " is not a "
                                "class index (>= 0)", ywhat, e, i);
                else v[i] = (int32_t)e, max = e > max ? e : max;
            }
            if (st) kc_free(v);
            else {
                kc_npy_free(y);
                y->data = v;
                out->y_dtype = KC_INT32;
                out->num_classes = (int)(max + 1);
            }
        } else {
            st = sample_shape(ywhat, "y", y, &out->y_shape);
            if (!st) st = to_float(ywhat, y);
            out->y_dtype = KC_FLOAT32;
        }
    }
    if (st) {
        kc_npy_free(x);
        kc_npy_free(y);
        memset(out, 0, sizeof *out);
        return st;
    }
    out->count = x->shape[0];
    out->x = out->owned_x = x->data;
    x->data = NULL;
    if (has_y) {
        out->y = out->owned_y = y->data;
        y->data = NULL;
    }
    return KC_OK;
}

static kc_status load_npy_pair(const char *xpath, const char *ypath, kc_dataset *out) {
    kc_npy x, y = {0};
    kc_status st = kc_npy_load(xpath, &x);
    if (!st && ypath) st = kc_npy_load(ypath, &y);
    if (st) {
        kc_npy_free(&x);
        return st;
    }
    return npy_dataset(xpath, &x, ypath, &y, ypath != NULL, out);
}

static kc_status load_npz(const char *path, int test, kc_dataset *out) {
    static const char *const train_names[] = {"x", "y", "x_train", "y_train"};
    static const char *const test_names[] = {"x_test", "y_test"};
    kc_npy x, y;
    int has_y;
    kc_status st = kc_npz_load_pair(path, test ? test_names : train_names, test ? 1 : 2, &x, &y, &has_y);
    if (st) return st;
    char xw[PATH_MAX + 64], yw[PATH_MAX + 64];
    snprintf(xw, sizeof xw, "%s: %s", path, test ? "x_test" : "x");
    snprintf(yw, sizeof yw, "%s: %s", path, test ? "y_test" : "y");
    return npy_dataset(xw, &x, yw, &y, has_y, out);
}

/* ---- a folder of IDX files ----------------------------------------------------------------- */

static kc_status idx_find(const char *dir, const char *name, char *out) {
    static const char *const sfx[] = {".gz", ""};
    for (int i = 0; i < 2; i++) {
        if (snprintf(out, PATH_MAX, "%s/%s%s", dir, name, sfx[i]) >= PATH_MAX)
            return kc_err(KC_EINVAL, "path too long: %s", dir);
        if (access(out, F_OK) == 0) return KC_OK;
    }
    return kc_err(KC_EIO, "%s holds neither %s.gz nor %s", dir, name, name);
}

static int is_idx_dir(const char *dir) {
    char p[PATH_MAX];
    kc_status st = idx_find(dir, "train-images-idx3-ubyte", p);
    if (st) st = idx_find(dir, "t10k-images-idx3-ubyte", p);
    return st == KC_OK;
}

static kc_status load_idx_dir(const char *dir, int test, kc_dataset *out) {
    char ip[PATH_MAX], lp[PATH_MAX];
    const char *pre = test ? "t10k" : "train";
    char in[64], ln[64];
    snprintf(in, sizeof in, "%s-images-idx3-ubyte", pre);
    snprintf(ln, sizeof ln, "%s-labels-idx1-ubyte", pre);
    kc_status st = idx_find(dir, in, ip);
    if (!st) st = idx_find(dir, ln, lp);
    if (st) return st;
    kc_idx im, lb = {0};
    st = kc_idx_read(ip, &im);
    if (!st) st = kc_idx_read(lp, &lb);
    if (!st && (im.rank < 2 || lb.rank != 1))
        st = kc_err(KC_EFORMAT, "%s and %s: images need rank >= 2 and labels rank 1, found %d and %d",
                    ip, lp, im.rank, lb.rank);
    if (!st && im.dims[0] != lb.dims[0])
        st = kc_err(KC_EFORMAT, "x and y counts differ: %s holds %" PRId64 " images, %s holds %" PRId64
                    " labels", ip, im.dims[0], lp, lb.dims[0]);
    if (st) {
        kc_idx_free(&im);
        kc_idx_free(&lb);
        return st;
    }
    int max = 0;
    for (int64_t i = 0; i < lb.size; i++) max = lb.data[i] > max ? lb.data[i] : max;
    *out = (kc_dataset){.count = im.dims[0], .x_shape = {.rank = im.rank - 1}, .x_dtype = KC_UINT8,
                        .x = im.data, .owned_x = im.data, .y_dtype = KC_UINT8, .y = lb.data,
                        .owned_y = lb.data, .num_classes = max + 1};
    for (int i = 1; i < im.rank; i++) out->x_shape.dims[i - 1] = (int)im.dims[i];
    return KC_OK;
}

/* ---- image folders ------------------------------------------------------------------------- */

static int image_ext(const char *name) { /* Keras's ALLOWLIST_FORMATS, and kerac's .pgm/.ppm */
    static const char *const ext[] = {".bmp", ".gif", ".jpeg", ".jpg", ".png", ".pgm", ".ppm"};
    for (int i = 0; i < 7; i++)
        if (has_suffix(name, ext[i])) return 1;
    return 0;
}

typedef struct {
    char **paths;
    uint8_t *x;
    int h, w, c;
    pthread_mutex_t lock;
    int64_t bad;  /* the lowest failing index, or -1 */
    kc_status st;
    char msg[1024];
} decode_job;

static void decode_range(void *arg, int64_t begin, int64_t end) {
    decode_job *j = arg;
    size_t bytes = (size_t)j->h * (size_t)j->w * (size_t)j->c;
    for (int64_t i = begin; i < end; i++) {
        kc_image img;
        kc_status st = kc_image_load(j->paths[i], j->c, j->h, j->w, &img);
        if (st) {
            pthread_mutex_lock(&j->lock);
            if (j->bad < 0 || i < j->bad) {
                j->bad = i;
                j->st = st;
                snprintf(j->msg, sizeof j->msg, "%s", kc_last_error());
            }
            pthread_mutex_unlock(&j->lock);
            return;
        }
        memcpy(j->x + (size_t)i * bytes, img.data, bytes);
        kc_image_free(&img);
    }
}

kc_status kc_image_folder_load(const char *dir, const kc_data_opts *opts, kc_dataset *out,
                               kc_data_info *info) {
    int shuffle = opts->shuffle != KC_ZERO, seeded = opts->has_seed || opts->seed != 0;
    double split = opts->validation_split;
    int subset = opts->subset ? !strcmp(opts->subset, "validation") : -1;
    if (split && shuffle && !seeded)
        return kc_err(KC_EINVAL, "image_dataset_from_directory: with validation_split and shuffling, "
                      "give a seed, so that the training and validation subsets do not overlap");
    if (opts->seed > UINT32_MAX)
        return kc_err(KC_EINVAL, "image_dataset_from_directory: seed %" PRIu64 " must be below 2^32 "
                      "(NumPy's RandomState)", opts->seed);
    int h = opts->image_height ? opts->image_height : 256, w = opts->image_width ? opts->image_width : 256;
    int c = opts->channels ? opts->channels : 3;
    kc_dir_index ix;
    kc_status st = kc_index_directory(dir, "image_dataset_from_directory", NULL, 0, image_ext, 0,
                                      shuffle, seeded ? (uint32_t)opts->seed
                                                      : (uint32_t)(kc_default_seed() % 1000000),
                                      split, subset, &ix);
    if (st) return st;
    if (ix.count == 0) {
        st = kc_err(KC_EINVAL, "image_dataset_from_directory: no images found in directory %s%s "
                    "(allowed formats: .bmp, .gif, .jpeg, .jpg, .png, .pgm, .ppm)", dir,
                    ix.total ? (subset == 0 ? " for training" : " for validation") : "");
        kc_dir_index_free(&ix);
        return st;
    }
    decode_job job = {.paths = ix.paths, .h = h, .w = w, .c = c, .bad = -1};
    job.x = kc_alloc((size_t)ix.count * (size_t)h * (size_t)w * (size_t)c);
    int32_t *y = kc_alloc((size_t)ix.count * sizeof *y);
    if (!job.x || !y) st = kc_err_prefix(KC_ENOMEM, "image_dataset_from_directory");
    if (!st) {
        pthread_mutex_init(&job.lock, NULL);
        kc_parallel_range(ix.count, 1, 1 << 17, decode_range, &job); /* two images are worth it */
        pthread_mutex_destroy(&job.lock);
        if (job.bad >= 0) st = kc_err(job.st, "%s", job.msg);
    }
    if (!st && info) {
        info->num_classes = ix.num_classes;
        info->class_names = ix.class_names;
        ix.class_names = NULL;
        info->count = ix.count;
        info->paths = ix.paths;
        ix.paths = NULL;
    }
    if (st) {
        kc_free(job.x);
        kc_free(y);
        kc_dir_index_free(&ix);
        return st;
    }
    memcpy(y, ix.labels, (size_t)ix.count * sizeof *y);
    *out = (kc_dataset){.count = ix.count, .x_shape = kc_shape3(h, w, c), .x_dtype = KC_UINT8,
                        .x = job.x, .owned_x = job.x, .y_dtype = KC_INT32, .y = y, .owned_y = y,
                        .num_classes = ix.num_classes};
    ix.count = 0; /* the paths moved to info (or are freed here) */
    if (ix.paths)
        for (int64_t i = 0; i < out->count; i++) free(ix.paths[i]);
    kc_dir_index_free(&ix);
    return KC_OK;
}

/* ---- fit's validation_split for the array SPECs ---------------------------------------------- */

static kc_status split_arrays(kc_dataset *ds, double split, int subset) {
    int64_t n = ds->count, at = (int64_t)((double)n * (1.0 - split)); /* floor, as Keras's fit */
    int64_t from = subset == 1 ? at : 0, to = subset == 1 ? n : at;
    if (to <= from)
        return kc_err(KC_EINVAL, "validation_split %g of %" PRId64 " samples leaves none for %s", split,
                      n, subset == 1 ? "validation" : "training");
    size_t xrow = (size_t)kc_shape_size(ds->x_shape) * (ds->x_dtype == KC_UINT8 ? 1 : 4);
    size_t yrow = ds->y ? (size_t)kc_shape_size(ds->y_shape) * (ds->y_dtype == KC_UINT8 ? 1 : 4) : 0;
    if (from) {
        memmove(ds->x, (uint8_t *)ds->x + (size_t)from * xrow, (size_t)(to - from) * xrow);
        if (ds->y) memmove(ds->y, (uint8_t *)ds->y + (size_t)from * yrow, (size_t)(to - from) * yrow);
    }
    ds->count = to - from;
    return KC_OK;
}

/* ---- the SPEC -------------------------------------------------------------------------------- */

static const char *const digit_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

static kc_status check_opts(const kc_data_opts *o) {
    if (o->validation_split && !(o->validation_split > 0 && o->validation_split < 1))
        return kc_err(KC_EINVAL, "validation_split must be between 0 and 1, found %g", o->validation_split);
    if (o->subset && strcmp(o->subset, "training") && strcmp(o->subset, "validation"))
        return kc_err(KC_EINVAL, "subset must be \"training\" or \"validation\", found \"%s\"", o->subset);
    if (!o->validation_split != !o->subset)
        return kc_err(KC_EINVAL, "if subset is set, validation_split must be set, and inversely");
    if (o->channels != 0 && o->channels != 1 && o->channels != 3 && o->channels != 4)
        return kc_err(KC_EINVAL, "channels (color_mode) must be 1, 3 or 4 (0: 3), found %d", o->channels);
    if (o->image_height < 0 || o->image_width < 0 || o->image_height > 65535 || o->image_width > 65535)
        return kc_err(KC_EINVAL, "image size %dx%d is out of range", o->image_height, o->image_width);
    return KC_OK;
}

static kc_status load_spec(const char *spec, const kc_data_opts *o, kc_dataset *out, kc_data_info *info,
                           int *is_folder) {
    *is_folder = 0;
    int test = -1; /* -1: no :train/:test part */
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", spec) >= (int)sizeof path)
        return kc_err(KC_EINVAL, "SPEC too long: %.64s...", spec);
    struct stat sb;
    size_t len = strlen(path);
    const char *label = o->label_column;
    if (stat(path, &sb) != 0) { /* a :train / :test part, unless the whole is a file's name */
        char *csv = strstr(path, ".csv:");
        if (len > 6 && !strcmp(path + len - 6, ":train")) test = 0, path[len - 6] = '\0';
        else if (len > 5 && !strcmp(path + len - 5, ":test")) test = 1, path[len - 5] = '\0';
        else if (csv && csv[5]) { /* FILE.csv:COLUMN: the label column, by name or index */
            csv[4] = '\0';
            label = spec + (csv + 5 - path);
        }
    }
    if (!strcmp(path, "mnist")) {
        kc_dataset tr, te;
        kc_status st = kc_mnist_load(o->cache_dir, &tr, &te);
        if (st) return st;
        *out = test == 1 ? te : tr;
        kc_dataset_free(test == 1 ? &tr : &te);
        return info_names(info, digit_names, 10);
    }
    if (!strcmp(path, "cifar10")) {
        kc_status st = kc_cifar10_load_from(o->cache_dir, NULL, NULL, test == 1, out);
        return st ? st : info_names(info, kc_cifar10_class_names, 10);
    }
    char *comma = strchr(path, ',');
    if (comma) {
        *comma = '\0';
        if (!has_suffix(path, ".npy") || !has_suffix(comma + 1, ".npy"))
            return kc_err(KC_EINVAL, "SPEC \"%s\": X,Y must name two .npy files", spec);
        if (test >= 0)
            return kc_err(KC_EINVAL, "SPEC \"%s\": X.npy,Y.npy has no :train or :test part", spec);
        return load_npy_pair(path, comma + 1, out);
    }
    if (stat(path, &sb) != 0) {
        if (!strchr(path, '/') && !strchr(path, '.'))
            return kc_err(KC_EINVAL, "unknown SPEC \"%s\": not mnist, cifar10, nor an existing file or "
                          "folder", spec);
        return kc_err(KC_EIO, "SPEC \"%s\": %s: %s", spec, path, strerror(errno));
    }
    if (S_ISDIR(sb.st_mode)) {
        if (is_idx_dir(path)) return load_idx_dir(path, test == 1, out);
        if (test >= 0)
            return kc_err(KC_EINVAL, "SPEC \"%s\": an image folder has no :train or :test part (use "
                          "validation_split and subset)", spec);
        *is_folder = 1;
        return kc_image_folder_load(path, o, out, info);
    }
    if (has_suffix(path, ".npz")) return load_npz(path, test == 1, out);
    if (test >= 0)
        return kc_err(KC_EINVAL, "SPEC \"%s\": only mnist, cifar10, IDX folders and .npz files have a "
                      ":train or :test part", spec);
    if (has_suffix(path, ".npy")) return load_npy_pair(path, NULL, out);
    if (has_suffix(path, ".csv")) return kc_csv_load(path, label, out);
    return kc_err(KC_EINVAL, "unknown SPEC \"%s\": %s is not a .npy, .npz or .csv file nor a folder",
                  spec, path);
}

kc_status kc_data_load_ex(const char *spec, const kc_data_opts *opts, kc_dataset *out,
                          kc_data_info *info) {
    static const kc_data_opts defaults = {0};
    if (!spec || !out) return kc_err(KC_EINVAL, "kc_data_load: needs a SPEC and a dataset to fill");
    memset(out, 0, sizeof *out);
    if (info) memset(info, 0, sizeof *info);
    if (!opts) opts = &defaults;
    kc_status st = check_opts(opts);
    int folder = 0;
    if (!st) st = load_spec(spec, opts, out, info, &folder);
    if (!st && opts->validation_split && !folder)
        st = split_arrays(out, opts->validation_split, !strcmp(opts->subset, "validation"));
    if (st) {
        kc_dataset_free(out);
        kc_data_info_free(info);
    }
    return st;
}

kc_status kc_data_load(const char *spec, const kc_data_opts *opts, kc_dataset *out) {
    return kc_data_load_ex(spec, opts, out, NULL);
}
