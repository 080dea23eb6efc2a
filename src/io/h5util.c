/* h5util.c: HDF5 files held in memory (the core driver with a file image), and the few reads
 * and writes the formats need: float32 datasets with their shapes checked, scalars, string
 * attributes as h5py writes them (variable-length UTF-8). Loading never runs libhdf5 on a
 * file's bytes (h5lite.c reads them; README, "Trust model"): the reads here serve only
 * tests/test_h5lite.c's cross-check of h5lite against libhdf5 on the repository's fixtures. */
#include "io.h"
#include <stdlib.h>
#include <string.h>

void kc_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

void kc_dims_str(int rank, const int64_t *dims, char *buf, size_t size) {
    size_t n = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < rank && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (n < size) snprintf(buf + n, size - n, rank == 1 ? ",)" : ")");
}

hid_t kc_h5_open_image(const char *path, const void *data, size_t size) {
    kc_h5_quiet();
    if (size < 8 || memcmp(data, "\x89HDF\r\n\x1a\n", 8)) {
        kc_err(KC_EFORMAT, "%s: not an HDF5 file (no HDF5 signature)", path);
        return -1;
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t f = -1;
    if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 &&
        H5Pset_file_image(fapl, (void *)data, size) >= 0)
        f = H5Fopen("kerac-image.h5", H5F_ACC_RDONLY, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (f < 0) kc_err(KC_EFORMAT, "%s: the HDF5 file cannot be opened (truncated or corrupt)", path);
    return f;
}

hid_t kc_h5_create_mem(void) {
    kc_h5_quiet();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t f = -1;
    if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 20, 0) >= 0)
        f = H5Fcreate("kerac-mem.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (f < 0) kc_err(KC_EIO, "HDF5: cannot create a file in memory");
    return f;
}

kc_status kc_h5_close_image(hid_t f, void **out, size_t *size) {
    *out = NULL;
    *size = 0;
    kc_status st = KC_OK;
    ssize_t n = H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0 ? H5Fget_file_image(f, NULL, 0) : -1;
    char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (n <= 0) st = kc_err(KC_EIO, "HDF5: cannot get the file's bytes");
    else if (!buf) st = kc_err(KC_ENOMEM, "HDF5: out of memory");
    else if (H5Fget_file_image(f, buf, (size_t)n) != n) st = kc_err(KC_EIO, "HDF5: cannot get the file's bytes");
    H5Fclose(f);
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    *size = (size_t)n;
    return KC_OK;
}

int kc_h5_exists(hid_t loc, const char *path) {
    char buf[1024];
    if (strlen(path) >= sizeof buf) return 0;
    strcpy(buf, path);
    /* H5Lexists needs every intermediate link to exist: check prefix by prefix */
    for (char *p = buf;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (buf[0] && H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
            if (!c) return 1;
            *p = c;
        }
    }
}

hid_t kc_h5_group(hid_t loc, const char *path) {
    char buf[1024];
    if (strlen(path) >= sizeof buf) return -1;
    strcpy(buf, path);
    for (char *p = buf;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) {
                hid_t g = H5Gcreate2(loc, buf, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
                if (g < 0) return -1;
                H5Gclose(g);
            }
            if (!c) break;
            *p = c;
        }
    }
    return H5Gopen2(loc, path, H5P_DEFAULT);
}

static hid_t vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

kc_status kc_h5_attr_str(hid_t obj, const char *name, const char *value) {
    hid_t t = vlen_str_type(), sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a >= 0 ? H5Awrite(a, t, &value) : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return r < 0 ? kc_err(KC_EIO, "HDF5: cannot write attribute %s", name) : KC_OK;
}

kc_status kc_h5_attr_str_list(hid_t obj, const char *name, const char *const *values, int n) {
    /* h5py writes a list of str as an array of variable-length strings; an empty list as an
     * empty float64 array (what Keras writes for weight_names of weightless layers) */
    hsize_t dim = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    hid_t t = n ? vlen_str_type() : H5Tcopy(H5T_NATIVE_DOUBLE);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a < 0 ? -1 : n ? H5Awrite(a, t, values) : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return r < 0 ? kc_err(KC_EIO, "HDF5: cannot write attribute %s", name) : KC_OK;
}

static _Thread_local int strings_oom; /* read_strings ran out of memory (kc_h5_take_oom) */

int kc_h5_take_oom(void) {
    int oom = strings_oom;
    strings_oom = 0;
    return oom;
}

/* Reads attribute name as strings: out[count] malloc'd. Fixed or variable length. NULL when
 * absent, unreadable or out of memory (then strings_oom is set). */
static char **read_strings(hid_t obj, const char *name, int *count) {
    *count = 0;
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return NULL;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    char **out = NULL;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (t < 0 || n < 0 || n > 100000) goto done;
    if (H5Tget_class(t) != H5T_STRING) {
        if (n == 0 && !(out = calloc(1, sizeof *out))) /* an empty list stored as float64 [] */
            strings_oom = 1;
        goto done;
    }
    out = calloc((size_t)n + 1, sizeof *out);
    if (!out) {
        strings_oom = 1;
        goto done;
    }
    if (H5Tis_variable_str(t) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        char **raw = calloc((size_t)n + 1, sizeof *raw);
        if (!raw) strings_oom = 1;
        if (raw && H5Aread(a, mt, raw) >= 0) {
            for (hssize_t i = 0; i < n; i++) out[i] = strdup(raw[i] ? raw[i] : "");
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
        } else {
            free(out);
            out = NULL;
        }
        free(raw);
        H5Tclose(mt);
    } else {
        size_t len = H5Tget_size(t);
        char *raw = len && len < (1u << 24) ? calloc((size_t)n + 1, len + 1) : NULL;
        if (len && len < (1u << 24) && !raw) strings_oom = 1;
        hid_t mt = H5Tcopy(t);
        if (raw && H5Aread(a, mt, raw) >= 0) {
            for (hssize_t i = 0; i < n; i++) out[i] = strndup(raw + (size_t)i * len, len);
        } else {
            free(out);
            out = NULL;
        }
        H5Tclose(mt);
        free(raw);
    }
    for (hssize_t i = 0; out && i < n; i++)
        if (!out[i]) {
            strings_oom = 1;
            kc_h5_free_list(out, (int)n);
            out = NULL;
        }
done:
    if (out) *count = (int)n;
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    H5Aclose(a);
    return out;
}

void kc_h5_free_list(char **list, int n) {
    if (!list) return;
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
}

char *kc_h5_read_attr_str(hid_t obj, const char *name) {
    int n;
    char **list = read_strings(obj, name, &n);
    if (!list) return NULL;
    char *s = n >= 1 ? list[0] : NULL;
    for (int i = 1; i < n; i++) free(list[i]);
    free(list);
    return s;
}

char **kc_h5_read_attr_str_list(hid_t obj, const char *name, int *n) {
    return read_strings(obj, name, n);
}

kc_status kc_h5_write_f32(hid_t loc, const char *name, const float *data, int rank,
                          const int64_t *dims) {
    hsize_t d[KC_MAX_RANK];
    for (int i = 0; i < rank; i++) d[i] = (hsize_t)dims[i];
    hid_t sp = rank ? H5Screate_simple(rank, d, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(loc, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = ds >= 0 ? H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    return r < 0 ? kc_err(KC_EIO, "HDF5: cannot write dataset %s", name) : KC_OK;
}

kc_status kc_h5_write_i64_scalar(hid_t loc, const char *name, int64_t value) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = ds >= 0 ? H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value) : -1;
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    return r < 0 ? kc_err(KC_EIO, "HDF5: cannot write dataset %s", name) : KC_OK;
}

/* opens dataset name and checks its class and shape */
static hid_t open_checked(hid_t loc, const char *name, H5T_class_t want, int rank,
                          const int64_t *dims, const char *what) {
    if (!kc_h5_exists(loc, name)) {
        kc_err(KC_EFORMAT, "%s: missing", what);
        return -1;
    }
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) {
        kc_err(KC_EFORMAT, "%s: not a dataset, or unreadable", what);
        return -1;
    }
    hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds);
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    int r = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t d[32];
    int ok = r >= 0 && r <= 32 && H5Sget_simple_extent_dims(sp, d, NULL) >= 0;
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (!ok) {
        H5Dclose(ds);
        kc_err(KC_EFORMAT, "%s: unreadable shape", what);
        return -1;
    }
    if (cls != want && !(want == H5T_FLOAT && cls == H5T_INTEGER) &&
        !(want == H5T_INTEGER && cls == H5T_FLOAT)) {
        H5Dclose(ds);
        kc_err(KC_EFORMAT, "%s: holds %s, not numbers", what,
               cls == H5T_STRING ? "strings" : "a non-numeric type");
        return -1;
    }
    int same = r == rank;
    for (int i = 0; same && i < r; i++) same = (int64_t)d[i] == dims[i];
    if (!same) {
        char have[128], need[128];
        int64_t dd[32];
        for (int i = 0; i < r; i++) dd[i] = (int64_t)d[i];
        kc_dims_str(r, dd, have, sizeof have);
        kc_dims_str(rank, dims, need, sizeof need);
        H5Dclose(ds);
        kc_err(KC_EFORMAT, "%s: has shape %s, the model needs %s", what, have, need);
        return -1;
    }
    return ds;
}

/* dataset name, checked for its class and shape, read as mem_type into out */
static kc_status read_checked(hid_t loc, const char *name, H5T_class_t cls, hid_t mem_type,
                              void *out, int rank, const int64_t *dims, const char *what) {
    hid_t ds = open_checked(loc, name, cls, rank, dims, what);
    if (ds < 0) return KC_EFORMAT;
    herr_t r = H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    H5Dclose(ds);
    return r < 0 ? kc_err(KC_EFORMAT, "%s: the data cannot be read (corrupt file?)", what) : KC_OK;
}

kc_status kc_h5_read_f32(hid_t loc, const char *name, float *out, int rank, const int64_t *dims,
                         const char *what) {
    return read_checked(loc, name, H5T_FLOAT, H5T_NATIVE_FLOAT, out, rank, dims, what);
}

kc_status kc_h5_read_i64_scalar(hid_t loc, const char *name, int64_t *out, const char *what) {
    return read_checked(loc, name, H5T_INTEGER, H5T_NATIVE_INT64, out, 0, NULL, what);
}

kc_status kc_h5_read_f32_scalar(hid_t loc, const char *name, float *out, const char *what) {
    return read_checked(loc, name, H5T_FLOAT, H5T_NATIVE_FLOAT, out, 0, NULL, what);
}
