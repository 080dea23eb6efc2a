/* keras_file.c: kc_save / kc_load and the weights-only calls: Keras 3's .keras zip
 * (metadata.json, config.json, model.weights.h5, as keras/src/saving/saving_lib.py writes
 * it), the legacy full-model .h5 (keras/src/legacy/saving/legacy_h5_format.py) and
 * .weights.h5. Everything is built in memory and written with kc_io_write_atomic. */
#include "../dist/dist.h"
#include "io.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int is_weights_name(const char *path) { return kc_io_ends_with(path, ".weights.h5"); }
static int is_h5_name(const char *path) {
    return kc_io_ends_with(path, ".h5") || kc_io_ends_with(path, ".hdf5");
}

static char *print_json(cJSON *j) {
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return t;
}

static kc_status save_keras(const kc_model_view *v, const char *path) {
    cJSON *config = kc_config_build(v, 1, KC_CONFIG_KERAS3);
    if (!config) return kc_err_prefix(KC_EINVAL, "%s", path);
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "keras_version", "3.15.1");
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(date, sizeof date, "%Y-%m-%d@%H:%M:%S", localtime_r(&now, &tm));
    cJSON_AddStringToObject(meta, "date_saved", date);
    cJSON_AddItemToObject(meta, "kerac", kc_state_build(v));
    char *config_text = print_json(config), *meta_text = print_json(meta);
    void *h5 = NULL, *zip = NULL;
    size_t h5_size = 0, zip_size = 0;
    kc_status st = config_text && meta_text ? KC_OK : kc_err(KC_ENOMEM, "%s: out of memory", path);
    hid_t f = st ? -1 : kc_h5_create_mem();
    if (!st && f < 0) st = KC_EIO;
    kc_zip_entry *assets = NULL;
    int n_assets = 0;
    if (!st) {
        st = kc_weights_write_k3(v, f);
        if (!st) st = kc_tv_assets_write(v, f, &assets, &n_assets);
        if (st) H5Fclose(f);
        else st = kc_h5_close_image(f, &h5, &h5_size);
    }
    if (!st) {
        kc_zip_entry *e = malloc(sizeof *e * (size_t)(3 + n_assets));
        if (!e) st = kc_err(KC_ENOMEM, "%s: out of memory", path);
        else {
            e[0] = (kc_zip_entry){"metadata.json", meta_text, strlen(meta_text)};
            e[1] = (kc_zip_entry){"config.json", config_text, strlen(config_text)};
            e[2] = (kc_zip_entry){"model.weights.h5", h5, h5_size};
            for (int i = 0; i < n_assets; i++) e[3 + i] = assets[i];
            st = kc_zip_build(e, 3 + n_assets, &zip, &zip_size);
            free(e);
        }
    }
    kc_tv_assets_free(assets, n_assets);
    if (!st) st = kc_io_write_atomic(path, zip, zip_size);
    else kc_err_prefix(st, "%s", path);
    cJSON_free(config_text);
    cJSON_free(meta_text);
    free(h5);
    free(zip);
    return st;
}

static kc_status save_legacy_h5(const kc_model_view *v, const char *path) {
    cJSON *config = kc_config_build(v, 0, KC_CONFIG_LEGACY);
    if (!config) return kc_err_prefix(KC_EINVAL, "%s", path);
    char *config_text = print_json(config);
    char *training = v->opt ? print_json(kc_compile_config_build(v, KC_CONFIG_LEGACY)) : NULL;
    char *state = print_json(kc_state_build(v));
    kc_status st = config_text && state && (training || !v->opt)
                       ? KC_OK
                       : kc_err(KC_ENOMEM, "%s: out of memory", path);
    hid_t f = st ? -1 : kc_h5_create_mem();
    if (!st && f < 0) st = KC_EIO;
    void *img = NULL;
    size_t size = 0;
    if (!st) {
        st = kc_h5_attr_str(f, "backend", "jax");
        if (!st) st = kc_h5_attr_str(f, "keras_version", "3.15.1");
        if (!st) st = kc_h5_attr_str(f, "model_config", config_text);
        if (!st && training) st = kc_h5_attr_str(f, "training_config", training);
        if (!st) st = kc_h5_attr_str(f, "kerac_state", state);
        hid_t g = st ? -1 : kc_h5_group(f, "model_weights");
        if (!st && g < 0) st = kc_err(KC_EIO, "HDF5: cannot create model_weights");
        if (!st) st = kc_weights_write_legacy(v, g);
        if (g >= 0) H5Gclose(g);
        if (!st) st = kc_optimizer_write_legacy(v, f);
        if (st) H5Fclose(f);
        else st = kc_h5_close_image(f, &img, &size);
    }
    if (!st) st = kc_io_write_atomic(path, img, size);
    else kc_err_prefix(st, "%s", path);
    cJSON_free(config_text);
    cJSON_free(training);
    cJSON_free(state);
    free(img);
    return st;
}

kc_status kc_save_weights(kc_model *m, const char *path) {
    if (!m || !path) return kc_err(KC_EINVAL, "kc_save_weights: model and path are required");
    if (!is_h5_name(path))
        return kc_err(KC_EINVAL, "kc_save_weights: %s: the file name must end in .weights.h5 "
                                 "(or .h5 for the legacy layout)", path);
    if (kc_dist_rank() > 0) return KC_OK; /* distributed: rank 0 writes, as in kc_save */
    kc_model_view v;
    kc_status st = kc_model_view_get(m, &v);
    if (st) return st;
    hid_t f = kc_h5_create_mem();
    if (f < 0) return KC_EIO;
    if (is_weights_name(path)) st = kc_weights_write_k3(&v, f);
    else st = kc_weights_write_legacy(&v, f);
    void *img = NULL;
    size_t size = 0;
    if (st) H5Fclose(f);
    else st = kc_h5_close_image(f, &img, &size);
    if (!st) st = kc_io_write_atomic(path, img, size);
    else kc_err_prefix(st, "%s", path);
    free(img);
    return st;
}

kc_status kc_save(kc_model *m, const char *path) {
    if (!m || !path) return kc_err(KC_EINVAL, "kc_save: model and path are required");
    if (!kc_io_ends_with(path, ".keras") && !is_h5_name(path))
        return kc_err(KC_EINVAL, "kc_save: %s: unknown format; the name must end in .keras, "
                                 ".h5 or .weights.h5", path);
    /* distributed (kc_distributed_init): every rank holds the same weights and runs the same
     * program; rank 0 alone writes, so that ranks sharing a file system never race on a file */
    if (kc_dist_rank() > 0) return KC_OK;
    kc_model_view v;
    kc_status st = kc_model_view_get(m, &v);
    if (st) return st;
    if (kc_io_ends_with(path, ".keras")) return save_keras(&v, path);
    if (is_weights_name(path)) return kc_save_weights(m, path);
    if (is_h5_name(path)) return save_legacy_h5(&v, path);
    return kc_err(KC_EINVAL, "kc_save: %s: unknown format; the name must end in .keras, .h5 or "
                             ".weights.h5", path);
}

/* ---- loading ---- */

static kc_status parse_json(const char *path, const char *what, const char *text, cJSON **out) {
    const char *end = NULL;
    *out = cJSON_ParseWithOpts(text, &end, 0);
    if (!*out)
        return kc_err(KC_EFORMAT, "%s: %s is not valid JSON (error near byte %lld)", path, what,
                      (long long)(end ? end - text : 0));
    return KC_OK;
}

/* Every weight of a Keras file is stored in it (float32, or 16-bit under a float16/bfloat16
 * policy: at least 2 bytes each), so a config that declares more parameters than its weights'
 * bytes can hold is refused before they are allocated (a crafted config.json asked for 10 GB). */
static kc_status params_fit(kc_model *m, size_t weight_bytes, const char *path, const char *where) {
    int64_t n = kc_count_params(m);
    if (n > 0 && (uint64_t)n > weight_bytes / 2)
        return kc_err(KC_EFORMAT, "%s: the model's config declares %lld parameters, more than its "
                      "%s (%zu bytes) can hold", path, (long long)n, where, weight_bytes);
    return KC_OK;
}

static kc_status load_keras(const char *path, const void *data, size_t size, int compile,
                            kc_model **out) {
    void *config_text = NULL, *meta_text = NULL, *h5 = NULL;
    size_t n1, n2, n3;
    cJSON *config = NULL, *meta = NULL;
    kc_model *m = NULL;
    kc_h5l_file *f = NULL;
    kc_status st = kc_zip_read(path, data, size, "config.json", &config_text, &n1);
    if (!st) st = kc_zip_read(path, data, size, "model.weights.h5", &h5, &n3);
    kc_status meta_st = st ? st : kc_zip_read(path, data, size, "metadata.json", &meta_text, &n2);
    if (meta_st == KC_ENOMEM) st = meta_st; /* out of memory is no missing file */
    if (meta_st) {
        free(meta_text); /* optional: Keras only reads the version from it */
        meta_text = NULL;
    }
    if (!st) st = parse_json(path, "config.json", config_text, &config);
    if (!st && meta_text) st = parse_json(path, "metadata.json", meta_text, &meta);
    if (!st) st = kc_config_model(config, path, &m);
    if (!st) st = params_fit(m, n3, path, "model.weights.h5");
    if (!st && compile)
        st = kc_config_compile(m, cJSON_GetObjectItemCaseSensitive(config, "compile_config"), path);
    kc_model_view v;
    if (!st) st = kc_model_view_get(m, &v);
    if (!st) {
        char inner[600];
        snprintf(inner, sizeof inner, "%s (model.weights.h5)", path);
        f = kc_h5l_open(inner, h5, n3);
        if (!f) st = kc_last_status() ? kc_last_status() : KC_EFORMAT;
        else st = kc_weights_read_k3(&v, kc_h5l_root(f), path, compile);
        if (!st) st = kc_tv_assets_read(&v, kc_h5l_root(f), path, data, size);
    }
    if (!st && meta) st = kc_state_apply(&v, cJSON_GetObjectItemCaseSensitive(meta, "kerac"), path);
    kc_h5l_close(f);
    cJSON_Delete(config);
    cJSON_Delete(meta);
    free(config_text);
    free(meta_text);
    free(h5);
    if (st) kc_model_free(m);
    else *out = m;
    return st;
}

static kc_status load_legacy(const char *path, kc_h5r f, size_t size, int compile,
                            kc_model **out) {
    char *config_text = kc_h5l_attr_str(f, "model_config");
    char *training = kc_h5l_attr_str(f, "training_config");
    char *state = kc_h5l_attr_str(f, "kerac_state");
    cJSON *config = NULL, *tc = NULL, *sj = NULL;
    kc_model *m = NULL;
    kc_status st = KC_OK;
    if (kc_h5l_attr_lost(f, "model_config", config_text) ||
        kc_h5l_attr_lost(f, "training_config", training) ||
        kc_h5l_attr_lost(f, "kerac_state", state))
        st = kc_last_status(); /* unreadable, not absent: h5lite's error names it */
    else if (!config_text)
        st = kc_err(KC_EFORMAT, "%s: no model_config attribute: a weights-only file (build the "
                                "model and use kc_load_weights)", path);
    if (!st) st = parse_json(path, "model_config", config_text, &config);
    if (!st && training) st = parse_json(path, "training_config", training, &tc);
    if (!st && state) st = parse_json(path, "kerac_state", state, &sj);
    if (!st) st = kc_config_model(config, path, &m);
    if (!st) st = params_fit(m, size, path, "file");
    if (!st && tc && compile) st = kc_config_compile(m, tc, path);
    kc_model_view v;
    if (!st) st = kc_model_view_get(m, &v);
    if (!st) {
        kc_h5r g = kc_h5l_find(f, "model_weights");
        if (!g) st = kc_err(KC_EFORMAT, "%s: no model_weights group", path);
        else st = kc_weights_read_legacy(&v, g, path);
    }
    if (!st && compile) st = kc_optimizer_read_legacy(&v, f, path);
    if (!st && sj) st = kc_state_apply(&v, sj, path);
    cJSON_Delete(config);
    cJSON_Delete(tc);
    cJSON_Delete(sj);
    free(config_text);
    free(training);
    free(state);
    if (st) kc_model_free(m);
    else *out = m;
    return st;
}

/* HDF5 files are read by h5lite (bounds-checked, in-process), never by libhdf5: libhdf5 1.10
 * trusts a file's metadata, and crafted files make it loop forever, corrupt memory or allocate
 * gigabytes. The old safeguard, a trial load in a forked child, is kept only behind
 * KERAC_FORK_PROBE=1 (the caller's process is never forked by default). */
static _Thread_local int in_probe;

static kc_status probe(const char *path, kc_model *weights_target) {
    const char *env = getenv("KERAC_FORK_PROBE");
    if (in_probe || !env || strcmp(env, "1")) return KC_OK;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return KC_OK; /* no child to spare: load directly */
    if (pid == 0) {
        in_probe = 1;
        kc_set_warning_handler(NULL, NULL); /* the real load warns, not the probe */
        kc_model *m = NULL;
        if (weights_target) kc_load_weights(weights_target, path);
        else if (!kc_load(path, &m)) kc_model_free(m);
        _exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return KC_OK;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return KC_OK;
    return kc_err(KC_EFORMAT, "%s: corrupt HDF5 data: the trial load crashed (%s %d)",
                  path, WIFSIGNALED(status) ? "signal" : "exit status",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

kc_status kc_load(const char *path, kc_model **out) { return kc_load_ex(path, NULL, out); }

kc_status kc_load_ex(const char *path, const kc_load_opts *opts, kc_model **out) {
    int compile = !opts || opts->compile != KC_ZERO;
    if (!out) return kc_err(KC_EINVAL, "kc_load: out is NULL");
    *out = NULL;
    if (!path) return kc_err(KC_EINVAL, "kc_load: path is NULL");
    void *data;
    size_t size;
    kc_status st = kc_io_read_file(path, &data, &size);
    if (st) return st;
    if (size >= 8 && (!memcmp(data, "PK\x03\x04", 4) || !memcmp(data, "\x89HDF\r\n\x1a\n", 8)) &&
        (st = probe(path, NULL))) {
        free(data);
        return st;
    }
    if (size >= 4 && !memcmp(data, "PK\x03\x04", 4)) {
        st = load_keras(path, data, size, compile, out);
    } else if (size >= 8 && !memcmp(data, "\x89HDF\r\n\x1a\n", 8)) {
        kc_h5l_file *f = kc_h5l_open(path, data, size);
        if (!f) st = kc_last_status() ? kc_last_status() : KC_EFORMAT;
        else {
            st = load_legacy(path, kc_h5l_root(f), size, compile, out);
            kc_h5l_close(f);
        }
    } else if (kc_io_ends_with(path, ".keras")) {
        st = kc_err(KC_EFORMAT, "%s: not a zip archive (a .keras file is one; truncated or "
                                "corrupt?)", path);
    } else {
        st = kc_err(KC_EFORMAT, "%s: neither a .keras zip archive nor an HDF5 file (%s)", path,
                    size ? "unknown contents" : "empty");
    }
    free(data);
    (void)base_name;
    return st;
}

kc_status kc_load_weights(kc_model *m, const char *path) {
    if (!m || !path) return kc_err(KC_EINVAL, "kc_load_weights: model and path are required");
    kc_model_view v;
    kc_status st = kc_model_view_get(m, &v);
    if (st) return st;
    void *data;
    size_t size;
    if ((st = kc_io_read_file(path, &data, &size))) return st;
    if (size >= 8 && !memcmp(data, "\x89HDF\r\n\x1a\n", 8) && (st = probe(path, m))) {
        free(data);
        return st;
    }
    kc_h5l_file *file = kc_h5l_open(path, data, size);
    if (!file) st = kc_last_status() ? kc_last_status() : KC_EFORMAT;
    else {
        kc_h5r f = kc_h5l_root(file), g;
        if (kc_h5l_attr_index(f, "layer_names") >= 0) st = kc_weights_read_legacy(&v, f, path);
        else if ((g = kc_h5l_find(f, "model_weights")))
            st = kc_weights_read_legacy(&v, g, path);
        else if (kc_h5l_find(f, "layers") || kc_h5l_find(f, "vars"))
            st = kc_weights_read_k3(&v, f, path, 1);
        else
            st = kc_err(KC_EFORMAT, "%s: not a Keras weights file (no layers group or "
                                    "layer_names attribute)", path);
        kc_h5l_close(file);
    }
    free(data);
    return st;
}
