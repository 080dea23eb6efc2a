/* dataset.c: shapes (constructors, size, "(28, 28)" text) and the in-memory dataset operations:
 * free, reshape, scale and to_categorical. */
#include "../internal.h"
#include <inttypes.h>
#include <math.h>
#include <string.h>

kc_shape kc_shape1(int d0) { return (kc_shape){1, {d0}}; }
kc_shape kc_shape2(int d0, int d1) { return (kc_shape){2, {d0, d1}}; }
kc_shape kc_shape3(int d0, int d1, int d2) { return (kc_shape){3, {d0, d1, d2}}; }

int64_t kc_shape_size(kc_shape shape) {
    int64_t size = 1;
    for (int i = 0; i < shape.rank && i < KC_MAX_RANK; i++) {
        if (shape.dims[i] == KC_NONE) return -1;
        size *= shape.dims[i];
    }
    return size;
}

char *kc_shape_str(kc_shape shape, char *buf, size_t size) {
    if (!buf || size == 0) return buf;
    if (shape.rank < 0 || shape.rank > KC_MAX_RANK) {
        snprintf(buf, size, "(invalid rank %d)", shape.rank);
        return buf;
    }
    size_t used = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < shape.rank && used < size; i++) {
        if (shape.dims[i] == KC_NONE)
            used += (size_t)snprintf(buf + used, size - used, "%sNone", i ? ", " : "");
        else
            used += (size_t)snprintf(buf + used, size - used, "%s%d", i ? ", " : "", shape.dims[i]);
    }
    if (used < size) snprintf(buf + used, size - used, ")");
    return buf;
}

static bool shape_valid(kc_shape shape) {
    if (shape.rank < 0 || shape.rank > KC_MAX_RANK) return false;
    for (int i = 0; i < shape.rank; i++)
        if (shape.dims[i] <= 0) return false;
    return true;
}

void kc_dataset_free(kc_dataset *ds) {
    if (!ds) return;
    kc_free(ds->owned_x);
    kc_free(ds->owned_y);
    memset(ds, 0, sizeof *ds);
}

kc_status kc_dataset_reshape(kc_dataset *ds, kc_shape shape) {
    if (!ds) return kc_err(KC_EINVAL, "kc_dataset_reshape: dataset is NULL");
    char from[64], to[64];
    kc_shape_str(ds->x_shape, from, sizeof from);
    kc_shape_str(shape, to, sizeof to);
    if (!shape_valid(shape))
        return kc_err(KC_EINVAL, "kc_dataset_reshape: invalid shape %s: rank must be 0..%d and "
                      "every dimension positive", to, KC_MAX_RANK);
    if (kc_shape_size(shape) != kc_shape_size(ds->x_shape))
        return kc_err(KC_EINVAL, "kc_dataset_reshape: cannot reshape samples of shape %s (%" PRId64
                      " values) into %s (%" PRId64 " values)", from, kc_shape_size(ds->x_shape), to,
                      kc_shape_size(shape));
    ds->x_shape = shape;
    return KC_OK;
}

kc_status kc_dataset_scale(kc_dataset *ds, float scale) {
    if (!ds) return kc_err(KC_EINVAL, "kc_dataset_scale: dataset is NULL");
    /* x_scale 0 stands for 1, so a zero scale cannot be kept */
    if (!isfinite(scale) || scale == 0.0f)
        return kc_err(KC_EINVAL, "kc_dataset_scale: scale %g must be finite and nonzero", scale);
    ds->x_scale = (ds->x_scale != 0.0f ? ds->x_scale : 1.0f) * scale; /* scales compose, as in numpy */
    return KC_OK;
}

/* labels[n] (uint8 or int32 class indices) into out[n * num_classes] one-hot rows. */
static kc_status one_hot(const void *labels, kc_dtype dtype, int64_t n, int num_classes,
                         float *out) {
    memset(out, 0, (size_t)n * (size_t)num_classes * sizeof *out);
    for (int64_t i = 0; i < n; i++) {
        int64_t label = dtype == KC_UINT8 ? ((const uint8_t *)labels)[i]
                                          : ((const int32_t *)labels)[i];
        if (label < 0 || label >= num_classes)
            return kc_err(KC_EINVAL, "to_categorical: label %" PRId64 " of sample %" PRId64
                          " is outside [0, %d)", label, i, num_classes);
        out[i * num_classes + label] = 1.0f;
    }
    return KC_OK;
}

/* n * num_classes floats must be addressable */
static kc_status check_one_hot_size(int64_t n, int num_classes) {
    if (num_classes <= 0)
        return kc_err(KC_EINVAL, "to_categorical: num_classes is %d, must be positive", num_classes);
    if (n < 0 || (n > 0 && (uint64_t)n > SIZE_MAX / sizeof(float) / (uint64_t)num_classes))
        return kc_err(KC_EINVAL, "to_categorical: %" PRId64 " samples of %d classes do not fit "
                      "in memory", n, num_classes);
    return KC_OK;
}

kc_status kc_to_categorical_array(const int32_t *labels, int64_t n, int num_classes, float *out) {
    kc_status st = check_one_hot_size(n, num_classes);
    if (st != KC_OK) return st;
    if (n > 0 && (!labels || !out))
        return kc_err(KC_EINVAL, "kc_to_categorical_array: labels or out is NULL");
    return one_hot(labels, KC_INT32, n, num_classes, out);
}

kc_status kc_to_categorical(kc_dataset *ds, int num_classes) {
    if (!ds || !ds->y) return kc_err(KC_EINVAL, "kc_to_categorical: the dataset has no labels");
    if (ds->y_dtype != KC_UINT8 && ds->y_dtype != KC_INT32)
        return kc_err(KC_EINVAL, "kc_to_categorical: labels are already float (one-hot?); "
                      "class indices must be uint8 or int32");
    if (kc_shape_size(ds->y_shape) != 1) { /* rank 0, or (1) as Keras also squeezes */
        char shape[64];
        return kc_err(KC_EINVAL, "kc_to_categorical: labels of shape %s are not class indices "
                      "(want shape ())", kc_shape_str(ds->y_shape, shape, sizeof shape));
    }
    kc_status st = check_one_hot_size(ds->count, num_classes);
    if (st != KC_OK) return st;
    float *rows = kc_alloc((size_t)ds->count * (size_t)num_classes * sizeof *rows);
    if (!rows) return kc_err_prefix(KC_ENOMEM, "kc_to_categorical");
    st = one_hot(ds->y, ds->y_dtype, ds->count, num_classes, rows);
    if (st != KC_OK) {
        kc_free(rows);
        return st;
    }
    kc_free(ds->owned_y);
    ds->y = ds->owned_y = rows;
    ds->y_shape = kc_shape1(num_classes);
    ds->y_dtype = KC_FLOAT32;
    ds->num_classes = num_classes;
    return KC_OK;
}
