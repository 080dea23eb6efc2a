/* weights.c: a model's variables in HDF5. Keras 3's layout (model.weights.h5 in a .keras
 * file, and .weights.h5): layers/<class in snake case, numbered>/vars/<i>, optimizer/vars/<i>
 * (iteration, learning_rate, then the slots), vars. The legacy layout (tf.keras 2, Keras 2):
 * layer_names and weight_names attributes naming datasets. And kerac's own state (rng, dropout
 * step, epoch) as a JSON object. */
#include "io.h"
#include "../model/model.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- Keras 3 layout ---- */

/* The paths Keras's saving_lib gives a model's layers: layers/<class in snake case, numbered
 * per class among model.layers> (a Functional model's InputLayers first), a nested model's
 * layers below its own path. leaf[i] receives layer i's path; other[] (optional) the paths of
 * the entries without weights of their own (InputLayers, nested models) */
#define PATH_MAX_LEN 512
typedef char kc_path[PATH_MAX_LEN];

static void k3_paths(const kc_model *m, const char *prefix, kc_path *leaf, int first,
                     kc_path *other, int *n_other, int cap_other) {
    /* class names in model.layers order, counted as they come */
    const char *classes[4096];
    int n_classes = 0;
    char snake[128], name[192];
    for (int i = 0; m->functional && i < m->n_inputs; i++) {
        int same = 0;
        for (int j = 0; j < n_classes; j++) same += !strcmp(classes[j], "InputLayer");
        classes[n_classes++] = "InputLayer";
        if (same) snprintf(name, sizeof name, "input_layer_%d", same);
        else snprintf(name, sizeof name, "input_layer");
        if (other && *n_other < cap_other)
            snprintf(other[(*n_other)++], PATH_MAX_LEN, "%slayers/%s", prefix, name);
    }
    for (int e = 0; e < m->n_entries && n_classes < 4096; e++) {
        const kc_entry *en = &m->entries[e];
        const char *cls = en->layer->ops->type_name;
        int same = 0;
        for (int j = 0; j < n_classes; j++) same += !strcmp(classes[j], cls);
        classes[n_classes++] = cls;
        kc_snake_case(cls, snake, sizeof snake);
        if (same) snprintf(name, sizeof name, "%s_%d", snake, same);
        else snprintf(name, sizeof name, "%s", snake);
        kc_path path;
        snprintf(path, sizeof path, "%slayers/%s", prefix, name);
        if (en->model) {
            if (other && *n_other < cap_other) snprintf(other[(*n_other)++], PATH_MAX_LEN, "%s", path);
            char sub[PATH_MAX_LEN + 2];
            snprintf(sub, sizeof sub, "%s/", path);
            k3_paths(en->model, sub, leaf, first + en->first_layer, other, n_other, cap_other);
        } else {
            snprintf(leaf[first + en->first_layer], PATH_MAX_LEN, "%s", path);
        }
    }
}

static kc_path *model_paths(const kc_model_view *v, kc_path **other, int *n_other) {
    kc_path *leaf = calloc((size_t)(v->n_layers ? v->n_layers : 1), sizeof *leaf);
    if (other) {
        *n_other = 0;
        *other = calloc(256, sizeof **other);
    }
    if (leaf && (!other || *other))
        k3_paths(v->model, "", leaf, 0, other ? *other : NULL, n_other, 256);
    return leaf;
}

/* Keras 3's dataset of variable j of a layer at lpath: <lpath>/vars/<i>, or, for a variable
 * of a sub-layer (io.k3_group: the recurrent layers' cells), <lpath>/<group>/vars/<i>, i
 * counted within the group */
static const char *k3_group(const kc_layer *l, int j) {
    return l->ops->io.k3_group ? l->ops->io.k3_group(l, j) : NULL;
}
static void k3_var_path(const char *lpath, const kc_layer *l, int j, char *out, size_t size) {
    int i = 0;
    const char *gj = k3_group(l, j);
    for (int k = 0; k < j; k++) {
        const char *gk = k3_group(l, k);
        i += (gk == NULL) == (gj == NULL) && (!gj || !strcmp(gk, gj));
    }
    if (gj) snprintf(out, size, "%s/%s/vars/%d", lpath, gj, i);
    else snprintf(out, size, "%s/vars/%d", lpath, i);
}

/* a layer is trained (and has optimizer state, as Keras's trainable_variables) unless frozen
 * when the model was compiled */
static int layer_trained(const kc_model_view *v, int i) {
    const kc_model *m = v->model;
    return m ? kc_model_layer_trained(m, i) : !v->layers[i]->frozen;
}

static kc_opt_layout opt_layout(const kc_optimizer *opt, const kc_optimizer_io **io_out) {
    kc_opt_layout l = {0};
    const kc_optimizer_io *io = kc_optimizer_io_of(opt);
    if (io) io->layout(opt, &l);
    if (opt->use_ema && l.n_groups < 4) {
        /* Keras builds use_ema's averages first, one per variable, then the rule's slots */
        for (int gi = l.n_groups; gi > 0; gi--) {
            l.group_size[gi] = l.group_size[gi - 1];
            for (int s = 0; s < 4; s++) {
                l.slot[gi][s] = l.slot[gi - 1][s];
                l.name[gi][s] = l.name[gi - 1][s];
            }
        }
        l.group_size[0] = 1;
        l.slot[0][0] = KC_SLOT_EMA;
        l.name[0][0] = "average";
        l.n_groups++;
    }
    if (io_out) *io_out = io;
    return l;
}

/* trainable variables of the model in Keras's order */
static int trainable_vars(const kc_model_view *v, kc_weight_desc *out, int cap) {
    int n = 0;
    for (int i = 0; i < v->n_layers; i++) {
        kc_weight_desc w[KC_MAX_WEIGHTS];
        if (!layer_trained(v, i)) continue;
        int k = kc_layer_weights(v->layers[i], w);
        for (int j = 0; j < k; j++)
            if (w[j].trainable && n < cap) out[n++] = w[j];
    }
    return n;
}

#define MAX_VARS 1024

/* Nadam's u_product: Keras keeps a float32 variable; kerac a double, written beside it as the
 * attribute kerac_u_product so that a resumed run continues bit for bit */
#define U_PRODUCT_ATTR "kerac_u_product"

static kc_status write_u_product(hid_t loc, const char *name, double u) {
    float f = (float)u;
    kc_status st = kc_h5_write_f32(loc, name, &f, 0, NULL);
    if (st) return st;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = d >= 0 && sp >= 0 ? H5Acreate2(d, U_PRODUCT_ATTR, H5T_IEEE_F64LE, sp, H5P_DEFAULT,
                                             H5P_DEFAULT)
                                : -1;
    herr_t rc = a >= 0 ? H5Awrite(a, H5T_NATIVE_DOUBLE, &u) : -1;
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    return rc < 0 ? kc_err(KC_EIO, "HDF5: cannot write %s's attribute " U_PRODUCT_ATTR, name) : KC_OK;
}

/* the float32 variable, or kerac's double when it is there and rounds to the same float */
static kc_status read_u_product(kc_h5r loc, const char *name, double *u, const char *what) {
    float f;
    kc_status st = kc_h5l_read_f32_scalar(loc, name, &f, what);
    if (st) return st;
    if (!(f > 0.0f && f <= 1.0f))
        return kc_err(KC_EFORMAT, "%s: u_product %g is not in (0, 1]", what, (double)f);
    *u = f;
    kc_h5r d = kc_h5l_find(loc, name);
    double x = 0;
    int64_t count = 0;
    if (d && kc_h5l_attr_index(d, U_PRODUCT_ATTR) >= 0 &&
        !kc_h5l_attr_f64(d, U_PRODUCT_ATTR, &x, 1, &count) && count == 1 && (float)x == f)
        *u = x;
    return KC_OK;
}


kc_status kc_weights_write_k3(const kc_model_view *v, hid_t f) {
    kc_status st = KC_OK;
    char path[PATH_MAX_LEN + 8], idx[32];
    kc_path *other = NULL;
    int n_other = 0;
    kc_path *paths = model_paths(v, &other, &n_other);
    if (!paths || !other) st = kc_err(KC_ENOMEM, "save: out of memory");
    for (int i = 0; i < n_other && !st; i++) {
        snprintf(path, sizeof path, "%s/vars", other[i]);
        hid_t g = kc_h5_group(f, path);
        if (g < 0) st = kc_err(KC_EIO, "HDF5: cannot create %s", path);
        else H5Gclose(g);
    }
    for (int i = 0; i < v->n_layers && !st; i++) {
        const kc_layer *l = v->layers[i];
        snprintf(path, sizeof path, "%s/vars", paths[i]);
        hid_t g = kc_h5_group(f, path);
        if (g < 0) return kc_err(KC_EIO, "HDF5: cannot create %s", path);
        st = kc_h5_attr_str(g, "name", l->name);
        kc_weight_desc w[KC_MAX_WEIGHTS];
        int n = kc_layer_weights(l, w);
        for (int j = 0; j < n && !st; j++) {
            char vp[PATH_MAX_LEN + 64];
            k3_var_path(paths[i], l, j, vp, sizeof vp);
            char *slash = strrchr(vp, '/');
            *slash = 0;
            hid_t vg = kc_h5_group(f, vp);
            if (vg < 0) {
                st = kc_err(KC_EIO, "HDF5: cannot create %s", vp);
                break;
            }
            st = kc_h5_write_f32(vg, slash + 1, v->params + w[j].offset, w[j].rank, w[j].dims);
            H5Gclose(vg);
        }
        (void)idx;
        H5Gclose(g);
    }
    free(paths);
    free(other);
    if (st) return st;
    if (v->opt) {
        hid_t g = kc_h5_group(f, "optimizer/vars");
        if (g < 0) return kc_err(KC_EIO, "HDF5: cannot create optimizer/vars");
        const kc_optimizer_io *io;
        kc_opt_layout lay = opt_layout(v->opt, &io);
        char oname[64];
        kc_snake_case(io ? io->class_name : "optimizer", oname, sizeof oname);
        st = kc_h5_attr_str(g, "name", oname);
        if (!st) st = kc_h5_write_i64_scalar(g, "0", v->opt->iterations);
        /* a schedule has no learning_rate variable (Keras 3) */
        int index = v->opt->has_schedule ? 1 : 2;
        if (!st && index == 2) st = kc_h5_write_f32(g, "1", &v->opt->learning_rate, 0, NULL);
        kc_weight_desc *tv = malloc(sizeof *tv * MAX_VARS);
        int ntv = tv ? trainable_vars(v, tv, MAX_VARS) : 0;
        if (!tv) st = kc_err(KC_ENOMEM, "save: out of memory");
        for (int gi = 0; gi < lay.n_groups && !st; gi++)
            for (int t = 0; t < ntv && !st; t++)
                for (int s = 0; s < lay.group_size[gi] && !st; s++) {
                    snprintf(idx, sizeof idx, "%d", index++);
                    st = kc_h5_write_f32(g, idx, v->opt->slots[lay.slot[gi][s]] + tv[t].offset,
                                         tv[t].rank, tv[t].dims);
                }
        if (!st && lay.u_product) {
            snprintf(idx, sizeof idx, "%d", index++);
            st = write_u_product(g, idx, v->opt->u_product);
        }
        free(tv);
        H5Gclose(g);
        if (st) return st;
    }
    hid_t g = kc_h5_group(f, "vars");
    if (g < 0) return kc_err(KC_EIO, "HDF5: cannot create vars");
    st = kc_h5_attr_str(g, "name", v->model ? v->model->name : "sequential");
    H5Gclose(g);
    return st;
}

/* optimizer state: iteration, learning_rate and the slots, read in Keras's variable order
 * from datasets named by name_of(index) in g */
typedef const char *(*name_fn)(int index, void *ctx);

static kc_status read_opt_state(const kc_model_view *v, kc_h5r g, int count, name_fn name_of,
                                void *ctx, const char *path, const char *where, int strict) {
    const kc_optimizer_io *io;
    kc_opt_layout lay = opt_layout(v->opt, &io);
    kc_weight_desc *tv = malloc(sizeof *tv * MAX_VARS);
    if (!tv) return kc_err(KC_ENOMEM, "%s: out of memory", path);
    int ntv = trainable_vars(v, tv, MAX_VARS);
    int slots_n = 0;
    for (int gi = 0; gi < lay.n_groups; gi++) slots_n += lay.group_size[gi] * ntv;
    slots_n += lay.u_product;
    kc_status st = KC_OK;
    /* Keras 3 and kerac: iteration, learning_rate, slots. tf.keras 2: iteration, slots. */
    int first = count == slots_n + 2 ? 2 : count == slots_n + 1 ? 1 : -1;
    if (first < 0) {
        free(tv);
        if (!strict || count <= 2) return KC_OK; /* an optimizer never built, or another one */
        return kc_err(KC_EFORMAT,
                      "%s: %s holds %d optimizer variables; the model's %s needs %d "
                      "(iteration, learning_rate and %d slots)",
                      path, where, count, io ? io->class_name : "optimizer", slots_n + 2,
                      slots_n - lay.u_product);
    }
    char what[512];
    int64_t it = 0;
    float lr = v->opt->learning_rate;
    snprintf(what, sizeof what, "%s: %s/%s (iteration)", path, where, name_of(0, ctx));
    st = kc_h5l_read_i64_scalar(g, name_of(0, ctx), &it, what);
    if (!st && first == 2) {
        snprintf(what, sizeof what, "%s: %s/%s (learning_rate)", path, where, name_of(1, ctx));
        st = kc_h5l_read_f32_scalar(g, name_of(1, ctx), &lr, what);
    }
    if (!st && (it < 0 || !(lr >= 0.0f) || lr > 1e30f))
        st = kc_err(KC_EFORMAT, "%s: %s: iteration %lld or learning_rate %g is invalid", path,
                    where, (long long)it, (double)lr);
    /* into scratch first: a failure leaves the optimizer as it was */
    float *scratch[KC_OPT_SLOTS] = {NULL};
    for (int s = 0; s < KC_OPT_SLOTS && !st; s++)
        if (v->opt->slots[s]) {
            scratch[s] = malloc(sizeof(float) * (size_t)(v->n_params ? v->n_params : 1));
            if (!scratch[s]) st = kc_err(KC_ENOMEM, "%s: out of memory", path);
        }
    int index = first;
    for (int gi = 0; gi < lay.n_groups && !st; gi++)
        for (int t = 0; t < ntv && !st; t++)
            for (int s = 0; s < lay.group_size[gi] && !st; s++) {
                const char *name = name_of(index++, ctx);
                snprintf(what, sizeof what, "%s: %s/%s (optimizer %s of %s)", path, where, name,
                         lay.name[gi][s], tv[t].name);
                st = kc_h5l_read_f32(g, name, scratch[lay.slot[gi][s]] + tv[t].offset, tv[t].rank,
                                    tv[t].dims, what);
            }
    double u_product = v->opt->u_product;
    if (!st && lay.u_product) {
        const char *name = name_of(index++, ctx);
        snprintf(what, sizeof what, "%s: %s/%s (optimizer u_product)", path, where, name);
        st = read_u_product(g, name, &u_product, what);
    }
    if (!st) {
        v->opt->u_product = u_product;
        for (int s = 0; s < KC_OPT_SLOTS; s++)
            if (scratch[s]) memcpy(v->opt->slots[s], scratch[s], sizeof(float) * (size_t)v->n_params);
        v->opt->iterations = it;
        v->opt->learning_rate = lr;
    }
    for (int s = 0; s < KC_OPT_SLOTS; s++) free(scratch[s]);
    free(tv);
    return st;
}

static const char *index_name(int index, void *ctx) {
    static _Thread_local char buf[32];
    snprintf(buf, sizeof buf, "%d", index);
    return buf;
}

kc_status kc_weights_read_k3(const kc_model_view *v, kc_h5r f, const char *path,
                             int with_optimizer) {
    float *params = malloc(sizeof(float) * (size_t)(v->n_params ? v->n_params : 1));
    if (!params) return kc_err(KC_ENOMEM, "%s: out of memory", path);
    memcpy(params, v->params, sizeof(float) * (size_t)v->n_params);
    kc_status st = KC_OK;
    char lpath[PATH_MAX_LEN + 8], what[1200], idx[32];
    kc_path *paths = model_paths(v, NULL, NULL);
    if (!paths) st = kc_err(KC_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < v->n_layers && !st; i++) {
        const kc_layer *l = v->layers[i];
        kc_weight_desc w[KC_MAX_WEIGHTS];
        int n = kc_layer_weights(l, w);
        snprintf(lpath, sizeof lpath, "%s/vars", paths[i]);
        if (!n) continue;
        if (!kc_h5l_find(f, lpath)) {
            st = kc_err(KC_EFORMAT, "%s: layer '%s' (%s): its weights (%s) are missing", path,
                        l->name, l->ops->type_name, lpath);
            break;
        }
        kc_h5r g = kc_h5l_find(f, lpath);
        int have = g ? kc_h5l_n_children(g) : -1, plain = 0;
        for (int j = 0; j < n; j++) plain += k3_group(l, j) == NULL;
        if (have != plain) {
            st = kc_err(KC_EFORMAT, "%s: layer '%s' (%s): %s holds %d variables, the layer has %d",
                        path, l->name, l->ops->type_name, lpath, have, plain);
        }
        for (int j = 0; j < n && !st; j++) {
            char vp[PATH_MAX_LEN + 64];
            k3_var_path(paths[i], l, j, vp, sizeof vp);
            snprintf(what, sizeof what, "%s: layer '%s' (%s): variable '%s' (%s)", path,
                     l->name, l->ops->type_name, w[j].name, vp);
            if (!kc_h5l_find(f, vp)) {
                st = kc_err(KC_EFORMAT, "%s is missing", what);
                break;
            }
            char *slash = strrchr(vp, '/');
            *slash = 0;
            kc_h5r vg = kc_h5l_find(f, vp);
            st = kc_h5l_read_f32(vg, slash + 1, params + w[j].offset, w[j].rank, w[j].dims, what);
        }
        (void)idx;
    }
    free(paths);
    if (!st && with_optimizer && v->opt && kc_h5l_find(f, "optimizer/vars")) {
        kc_h5r g = kc_h5l_find(f, "optimizer/vars");
        int count = g ? kc_h5l_n_children(g) : -1;
        kc_status ost = count < 0 ? kc_err(KC_EFORMAT, "%s: optimizer/vars is unreadable", path)
                                  : read_opt_state(v, g, count, index_name, NULL, path,
                                                   "optimizer/vars", 1);
        /* state that does not fit never costs the model: the optimizer starts afresh (out of
         * memory is no misfit: the load fails) */
        if (ost == KC_ENOMEM) st = ost;
        else if (ost)
            kc_warn("%s: the optimizer state was skipped, training continues with a fresh "
                    "optimizer: %s", path, kc_last_error());
    }
    if (!st) memcpy(v->params, params, sizeof(float) * (size_t)v->n_params);
    free(params);
    return st;
}

/* ---- legacy layout ---- */

/* The legacy layout is by Keras's model.layers: a group per layer (a Functional model's
 * InputLayers too), named as the layer; a nested model's group holds its layers' weights,
 * named <layer>/<variable>:0 as tf.keras 2 names them. */
typedef struct {
    const char *name;
    int first, count; /* leaf layers [first, first + count) */
    int nested;
} legacy_unit;

static int legacy_units(const kc_model_view *v, legacy_unit *u, int cap) {
    const kc_model *m = v->model;
    int n = 0;
    for (int i = 0; m && m->functional && i < m->n_inputs && n < cap; i++)
        u[n++] = (legacy_unit){m->input_names[i], 0, 0, 0};
    for (int e = 0; m && e < m->n_entries && n < cap; e++)
        u[n++] = (legacy_unit){m->entries[e].layer->name, m->entries[e].first_layer,
                               m->entries[e].n_layers, m->entries[e].model != NULL};
    return n;
}

/* every variable of unit u with its tf.keras 2 name */
static int unit_weights(const kc_model_view *v, const legacy_unit *u, kc_weight_desc *w,
                        char (*names)[160], int cap) {
    int n = 0;
    for (int i = u->first; i < u->first + u->count; i++) {
        kc_weight_desc lw[KC_MAX_WEIGHTS];
        int k = kc_layer_weights(v->layers[i], lw);
        for (int j = 0; j < k && n < cap; j++) {
            w[n] = lw[j];
            snprintf(names[n++], 160, "%s/%s:0", v->layers[i]->name, lw[j].name);
        }
    }
    return n;
}

#define MAX_UNIT_VARS 256

kc_status kc_weights_write_legacy(const kc_model_view *v, hid_t group) {
    legacy_unit *units = malloc(sizeof *units * (size_t)(v->n_layers + KC_MAX_IO + 1));
    kc_weight_desc *w = malloc(sizeof *w * MAX_UNIT_VARS);
    char(*wn)[160] = malloc(sizeof *wn * MAX_UNIT_VARS);
    const char **ptrs = malloc(sizeof *ptrs * (size_t)(v->n_layers + KC_MAX_IO + MAX_UNIT_VARS + 1));
    kc_status st = units && w && wn && ptrs ? KC_OK : kc_err(KC_ENOMEM, "save: out of memory");
    int n_units = st ? 0 : legacy_units(v, units, v->n_layers + KC_MAX_IO + 1);
    for (int i = 0; i < n_units; i++) ptrs[i] = units[i].name;
    if (!st) st = kc_h5_attr_str_list(group, "layer_names", ptrs, n_units);
    if (!st) st = kc_h5_attr_str(group, "backend", "jax");
    if (!st) st = kc_h5_attr_str(group, "keras_version", "3.15.1");
    for (int u = 0; u < n_units && !st; u++) {
        hid_t g = H5Gcreate2(group, units[u].name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) {
            st = kc_err(KC_EIO, "HDF5: cannot create group %s", units[u].name);
            break;
        }
        int n = unit_weights(v, &units[u], w, wn, MAX_UNIT_VARS);
        for (int j = 0; j < n; j++) ptrs[j] = wn[j];
        st = kc_h5_attr_str_list(g, "weight_names", ptrs, n);
        for (int j = 0; j < n && !st; j++) {
            char sub[200];
            snprintf(sub, sizeof sub, "%s", wn[j]);
            *strrchr(sub, '/') = 0;
            hid_t sg = kc_h5_group(g, sub);
            if (sg < 0) st = kc_err(KC_EIO, "HDF5: cannot create %s", sub);
            else {
                st = kc_h5_write_f32(sg, strrchr(wn[j], '/') + 1, v->params + w[j].offset,
                                     w[j].rank, w[j].dims);
                H5Gclose(sg);
            }
        }
        H5Gclose(g);
    }
    free(units);
    free(w);
    free(wn);
    free(ptrs);
    return st;
}

/* the file's weight name for the variable "<layer>/<var>": tf.keras 2 writes "<layer>/<var>:0",
 * Keras 3 "<model>/<layer>/<var>" */
static int find_weight(char **wnames, int nw, const char *want) {
    size_t len = strlen(want);
    for (int i = 0; i < nw; i++) {
        char n[300];
        snprintf(n, sizeof n, "%s", wnames[i]);
        char *colon = strrchr(n, ':');
        if (colon && strchr(colon, '/') == NULL) *colon = 0;
        size_t nl = strlen(n);
        if (nl >= len && !strcmp(n + nl - len, want) && (nl == len || n[nl - len - 1] == '/'))
            return i;
    }
    return -1;
}

kc_status kc_weights_read_legacy(const kc_model_view *v, kc_h5r group, const char *path) {
    int n_names = 0;
    char **names = kc_h5l_attr_strs(group, "layer_names", &n_names);
    if (kc_h5l_attr_lost(group, "layer_names", names)) return kc_last_status();
    if (!names) return kc_err(KC_EFORMAT, "%s: no layer_names attribute (not a Keras weights file)", path);
    float *params = malloc(sizeof(float) * (size_t)(v->n_params ? v->n_params : 1));
    legacy_unit *units = malloc(sizeof *units * (size_t)(v->n_layers + KC_MAX_IO + 1));
    kc_weight_desc *w = malloc(sizeof *w * MAX_UNIT_VARS);
    char(*wn)[160] = malloc(sizeof *wn * MAX_UNIT_VARS);
    if (!params || !units || !w || !wn) {
        kc_h5_free_list(names, n_names);
        free(params);
        free(units);
        free(w);
        free(wn);
        return kc_err(KC_ENOMEM, "%s: out of memory", path);
    }
    memcpy(params, v->params, sizeof(float) * (size_t)v->n_params);
    kc_status st = KC_OK;
    int n_units = legacy_units(v, units, v->n_layers + KC_MAX_IO + 1);
    /* as Keras's load_weights_from_hdf5_group: the file's layers that have weights, matched
     * in order with the model's layers that have weights */
    int fi = 0;
    for (int u = 0; u < n_units && !st; u++) {
        const legacy_unit *un = &units[u];
        int n = unit_weights(v, un, w, wn, MAX_UNIT_VARS);
        if (!n) continue;
        const char *uname = un->name;
        const char *utype = un->nested ? "nested model" : v->layers[un->first]->ops->type_name;
        char **wnames = NULL;
        int nw = 0;
        kc_h5r g = NULL;
        for (; fi < n_names; fi++) {
            if (!kc_h5l_find(group, names[fi])) {
                st = kc_err(KC_EFORMAT, "%s: layer '%s' is listed in layer_names but missing",
                            path, names[fi]);
                break;
            }
            g = kc_h5l_find(group, names[fi]);
            wnames = g ? kc_h5l_attr_strs(g, "weight_names", &nw) : NULL;
            if (wnames && nw > 0) break;
            if (kc_h5l_attr_lost(g, "weight_names", wnames)) { /* unreadable, not a layer
                                                                   without weights: stop */
                st = kc_last_status();
                g = NULL;
                break;
            }
            kc_h5_free_list(wnames, nw);
            wnames = NULL;
            g = NULL;
        }
        if (st) break;
        if (fi >= n_names) {
            st = kc_err(KC_EFORMAT, "%s: layer '%s' (%s): the file has no weights for it (it "
                                    "holds fewer layers with weights than the model)",
                        path, uname, utype);
            break;
        }
        if (nw != n)
            st = kc_err(KC_EFORMAT, "%s: layer '%s' (%s): the file's layer '%s' has %d weights, "
                                    "the layer has %d",
                        path, uname, utype, names[fi], nw, n);
        for (int j = 0; j < n && !st; j++) {
            /* a nested model's weights by name (tf.keras 2 lists trainable ones first), a
             * layer's in order */
            int at = j;
            if (un->nested) {
                char want[160];
                snprintf(want, sizeof want, "%s", wn[j]);
                want[strlen(want) - 2] = 0; /* without ":0" */
                at = find_weight(wnames, nw, want);
                if (at < 0) {
                    st = kc_err(KC_EFORMAT, "%s: nested model '%s': the file's layer '%s' has "
                                            "no weight '%s'", path, uname, names[fi], want);
                    break;
                }
            }
            char what[800];
            char vname[160];
            snprintf(vname, sizeof vname, "%s", un->nested ? wn[j] : w[j].name);
            snprintf(what, sizeof what, "%s: layer '%s' (%s): variable '%s' (%s/%s)", path,
                     uname, utype, vname, names[fi], wnames[at]);
            st = kc_h5l_read_f32(g, wnames[at], params + w[j].offset, w[j].rank, w[j].dims, what);
        }
        kc_h5_free_list(wnames, nw);
        fi++;
    }
    for (; !st && fi < n_names; fi++) { /* any further layer with weights is one too many */
        kc_h5r g = kc_h5l_find(group, names[fi]);
        int nw = 0;
        char **wl = g ? kc_h5l_attr_strs(g, "weight_names", &nw) : NULL;
        if (wl && nw > 0)
            st = kc_err(KC_EFORMAT, "%s: the file's layer '%s' has weights but the model has no "
                                    "layer left to take them", path, names[fi]);
        kc_h5_free_list(wl, nw);
    }
    if (!st) memcpy(v->params, params, sizeof(float) * (size_t)v->n_params);
    free(params);
    free(units);
    free(w);
    free(wn);
    kc_h5_free_list(names, n_names);
    return st;
}

typedef struct {
    char **names;
} list_ctx;

static const char *list_name(int index, void *ctx) { return ((list_ctx *)ctx)->names[index]; }

kc_status kc_optimizer_write_legacy(const kc_model_view *v, hid_t file) {
    if (!v->opt) return KC_OK;
    const kc_optimizer_io *io;
    kc_opt_layout lay = opt_layout(v->opt, &io);
    kc_weight_desc *tv = malloc(sizeof *tv * MAX_VARS);
    if (!tv) return kc_err(KC_ENOMEM, "save: out of memory");
    int ntv = trainable_vars(v, tv, MAX_VARS);
    int has_lr = !v->opt->has_schedule; /* a schedule has no learning_rate variable */
    int total = 1 + has_lr + lay.u_product;
    for (int gi = 0; gi < lay.n_groups; gi++) total += lay.group_size[gi] * ntv;
    char oname[64];
    kc_snake_case(io ? io->class_name : "optimizer", oname, sizeof oname);
    char (*names)[192] = malloc(sizeof *names * (size_t)total);
    const char **ptrs = malloc(sizeof *ptrs * (size_t)total);
    hid_t g = kc_h5_group(file, "optimizer_weights");
    kc_status st = !names || !ptrs ? kc_err(KC_ENOMEM, "save: out of memory for the optimizer's names")
                   : g < 0         ? kc_err(KC_EIO, "save: cannot write the optimizer")
                                   : KC_OK;
    if (!st) {
        snprintf(names[0], 160, "%s/iteration", oname);
        if (has_lr) snprintf(names[1], 160, "%s/learning_rate", oname);
        int k = 1 + has_lr;
        for (int gi = 0; gi < lay.n_groups; gi++)
            for (int t = 0; t < ntv; t++)
                for (int s = 0; s < lay.group_size[gi]; s++) {
                    /* Keras 3's names: sequential_dense_kernel_velocity */
                    int li = 0;
                    for (int i = 0; i < v->n_layers; i++)
                        if (tv[t].offset >= v->layers[i]->param_offset &&
                            tv[t].offset < v->layers[i]->param_offset + v->layers[i]->param_count)
                            li = i;
                    snprintf(names[k], 192, "%.40s/%.40s_%.30s_%.40s_%.20s", oname,
                             v->model ? v->model->name : "sequential", v->layers[li]->name,
                             tv[t].name, lay.name[gi][s]);
                    /* a sub-layer's weight (lstm_cell/kernel): '_' for '/', as Keras 3 */
                    for (char *c = strchr(names[k], '/') + 1; *c; c++)
                        if (*c == '/') *c = '_';
                    k++;
                }
        if (lay.u_product) snprintf(names[k++], 160, "%s/u_product", oname);
        for (int i = 0; i < total; i++) ptrs[i] = names[i];
        st = kc_h5_attr_str_list(g, "weight_names", ptrs, total);
    }
    hid_t og = st ? -1 : kc_h5_group(g, oname);
    if (!st && og < 0) st = kc_err(KC_EIO, "save: cannot write the optimizer");
    if (!st) st = kc_h5_write_i64_scalar(og, "iteration", v->opt->iterations);
    if (!st && has_lr) st = kc_h5_write_f32(og, "learning_rate", &v->opt->learning_rate, 0, NULL);
    int k = 1 + has_lr;
    for (int gi = 0; gi < lay.n_groups && !st; gi++)
        for (int t = 0; t < ntv && !st; t++)
            for (int s = 0; s < lay.group_size[gi] && !st; s++)
                st = kc_h5_write_f32(og, strchr(names[k++], '/') + 1,
                                     v->opt->slots[lay.slot[gi][s]] + tv[t].offset, tv[t].rank,
                                     tv[t].dims);
    if (!st && lay.u_product) st = write_u_product(og, strchr(names[k++], '/') + 1, v->opt->u_product);
    if (og >= 0) H5Gclose(og);
    if (g >= 0) H5Gclose(g);
    free(names);
    free(ptrs);
    free(tv);
    return st;
}

/* The names tf.keras 2 and Keras 3 give a slot in optimizer_weights, for kerac's slot names
 * (kc_opt_layout): "Adam/m/dense/kernel:0" (tf.keras 2.11+), "Adam/dense/kernel/m:0" (the
 * legacy optimizers of tf.keras 2.0 to 2.10), "adam/sequential_dense_kernel_momentum" (Keras 3
 * and kerac) */
static int slot_synonym(const char *slot, const char *token) {
    static const char *const syn[][4] = {
        {"momentum", "m", "momentum", NULL},
        {"velocity", "v", "rms", "velocity"},
        {"velocity_hat", "vhat", "velocity_hat", NULL},
        {"average_gradient", "mg", "average_gradient", NULL},
        {"accumulated_grad", "accum_grad", "accumulated_grad", NULL},
        {"accumulated_delta_var", "accum_var", "accumulated_delta_var", NULL},
        {"accumulator", "accumulator", NULL, NULL},
        {"norm", "u", "norm", NULL},
        {"linear", "linear", NULL, NULL},
        {"average", "average", NULL, NULL}};
    for (size_t i = 0; i < sizeof syn / sizeof *syn; i++)
        if (!strcmp(syn[i][0], slot))
            for (int k = 1; k < 4 && syn[i][k]; k++)
                if (!strcmp(syn[i][k], token)) return 1;
    return 0;
}

/* Reads optimizer_weights by the names of its datasets: tf.keras 2 orders slots its own way
 * (Adam's m and v per variable, RMSprop's velocities then momentums, the legacy optimizers'
 * slots after each variable), so a name says which slot of which variable it is. Every slot
 * of every trained variable must be found; the iteration count is read when present. */
static kc_status read_opt_by_name(const kc_model_view *v, kc_h5r g, char **names, int n,
                                  const char *path) {
    kc_opt_layout lay = opt_layout(v->opt, NULL);
    kc_weight_desc *tv = malloc(sizeof *tv * MAX_VARS);
    char(*full)[160] = malloc(sizeof *full * MAX_VARS);
    float *scratch[KC_OPT_SLOTS] = {NULL};
    unsigned char *found = NULL;
    int ntv = 0;
    kc_status st = tv && full ? KC_OK : kc_err(KC_ENOMEM, "%s: out of memory", path);
    for (int i = 0; !st && i < v->n_layers; i++) {
        if (!layer_trained(v, i)) continue;
        kc_weight_desc w[KC_MAX_WEIGHTS];
        int k = kc_layer_weights(v->layers[i], w);
        for (int j = 0; j < k && ntv < MAX_VARS; j++)
            if (w[j].trainable) {
                snprintf(full[ntv], sizeof full[0], "%s/%s", v->layers[i]->name, w[j].name);
                tv[ntv++] = w[j];
            }
    }
    int slots = 0;
    for (int gi = 0; gi < lay.n_groups; gi++) slots += lay.group_size[gi];
    if (!st && !(found = calloc((size_t)(ntv * slots + 1), 1)))
        st = kc_err(KC_ENOMEM, "%s: out of memory", path);
    for (int s = 0; s < KC_OPT_SLOTS && !st; s++)
        if (v->opt->slots[s] &&
            !(scratch[s] = malloc(sizeof(float) * (size_t)(v->n_params ? v->n_params : 1))))
            st = kc_err(KC_ENOMEM, "%s: out of memory", path);
    int64_t iterations = v->opt->iterations;
    int new_layout = 0;
    for (int k = 0; k < n && !st; k++) {
        char name[300], *tok[16];
        snprintf(name, sizeof name, "%s", names[k]);
        char *colon = strrchr(name, ':');
        if (colon && !strchr(colon, '/')) *colon = 0;
        int nt = 0;
        for (char *save = NULL, *t = strtok_r(name, "/", &save); t && nt < 16;
             t = strtok_r(NULL, "/", &save))
            tok[nt++] = t;
        if (!nt) continue;
        if (!strcmp(tok[nt - 1], "iter") || !strcmp(tok[nt - 1], "iteration") ||
            !strcmp(tok[nt - 1], "iterations")) {
            char what[400];
            snprintf(what, sizeof what, "%s: optimizer_weights/%s", path, names[k]);
            st = kc_h5l_read_i64_scalar(g, names[k], &iterations, what);
            continue;
        }
        /* the slot token, and the variable: the other tokens after the optimizer's name */
        int matched = 0;
        for (int gi = 0; gi < lay.n_groups && !matched; gi++)
            for (int sl = 0; sl < lay.group_size[gi] && !matched; sl++)
                for (int ti = 1; ti < nt && !matched; ti++) {
                    if (!slot_synonym(lay.name[gi][sl], tok[ti])) continue;
                    char var[200] = "";
                    for (int q = 1; q < nt; q++)
                        if (q != ti)
                            snprintf(var + strlen(var), sizeof var - strlen(var), "%s%s",
                                     var[0] ? "/" : "", tok[q]);
                    for (int t = 0; t < ntv && !matched; t++) {
                        size_t lv = strlen(var), lf = strlen(full[t]);
                        if (lv < lf || strcmp(var + lv - lf, full[t]) ||
                            (lv > lf && var[lv - lf - 1] != '/'))
                            continue;
                        char what[400];
                        snprintf(what, sizeof what, "%s: optimizer_weights/%s (%s of %s)", path,
                                 names[k], lay.name[gi][sl], full[t]);
                        st = kc_h5l_read_f32(g, names[k], scratch[lay.slot[gi][sl]] + tv[t].offset,
                                            tv[t].rank, tv[t].dims, what);
                        new_layout |= ti == 1; /* "Nadam/m/dense/kernel": tf.keras 2.11+ */
                        int index = 0;
                        for (int g2 = 0; g2 < gi; g2++) index += lay.group_size[g2];
                        found[t * slots + index + sl] = 1;
                        matched = 1;
                    }
                }
    }
    for (int t = 0; t < ntv && !st; t++)
        for (int q = 0; q < slots && !st; q++)
            if (!found[t * slots + q])
                st = kc_err(KC_EFORMAT, "%s: optimizer_weights has no slot %d of %s", path, q,
                            full[t]);
    if (!st) {
        for (int s = 0; s < KC_OPT_SLOTS; s++)
            if (scratch[s]) memcpy(v->opt->slots[s], scratch[s], sizeof(float) * (size_t)v->n_params);
        v->opt->iterations = iterations;
        /* tf.keras 2.11+'s Nadam keeps u_product out of the file; what it does after loading
         * is kerac's next steps too (optimizers.c, kc_optimizer_step_vars) */
        if (v->opt->kind == KC_OPT_NADAM && new_layout) {
            v->opt->tf2_nadam = true;
            v->opt->tf2_nadam_product = 1.0;
        }
    }
    for (int s = 0; s < KC_OPT_SLOTS; s++) free(scratch[s]);
    free(found);
    free(tv);
    free(full);
    return st;
}

kc_status kc_optimizer_read_legacy(const kc_model_view *v, kc_h5r file, const char *path) {
    if (!v->opt || !kc_h5l_find(file, "optimizer_weights")) return KC_OK;
    kc_h5r g = kc_h5l_find(file, "optimizer_weights");
    if (!g) {
        kc_warn("%s: optimizer_weights is unreadable; the optimizer starts afresh", path);
        return KC_OK;
    }
    int n = 0;
    char **names = kc_h5l_attr_strs(g, "weight_names", &n);
    kc_status result = kc_h5l_attr_lost(g, "weight_names", names) ? kc_last_status() : KC_OK;
    if (names && n > 0) {
        /* in Keras's order first (kerac's and Keras 3's files), else by the datasets' names
         * (tf.keras 2's); state that fits neither is skipped with a warning, as Keras skips it:
         * the model still loads */
        list_ctx ctx = {names};
        kc_status st = read_opt_state(v, g, n, list_name, &ctx, path, "optimizer_weights", 1);
        if (st == KC_ENOMEM) result = st;
        else if (st) {
            char first[1024];
            snprintf(first, sizeof first, "%s", kc_last_error());
            if (read_opt_by_name(v, g, names, n, path))
                kc_warn("%s: the optimizer state was skipped, training continues with a fresh "
                        "optimizer: %s", path, first);
        }
    }
    kc_h5_free_list(names, n);
    return result;
}

/* ---- kerac's own state ---- */

static cJSON *hex(uint64_t x) {
    char buf[24];
    snprintf(buf, sizeof buf, "%016" PRIx64, x);
    return cJSON_CreateString(buf);
}

cJSON *kc_state_build(const kc_model_view *v) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddNumberToObject(s, "format", 1);
    cJSON_AddStringToObject(s, "version", KC_VERSION);
    cJSON *rng = cJSON_AddArrayToObject(s, "rng");
    for (int i = 0; i < 4; i++) cJSON_AddItemToArray(rng, hex(v->rng->s[i]));
    cJSON_AddItemToObject(s, "step", hex(*v->step));
    cJSON_AddNumberToObject(s, "epoch", *v->epoch);
    if (v->opt) cJSON_AddNumberToObject(s, "iterations", (double)v->opt->iterations);
    cJSON *seeds = cJSON_AddArrayToObject(s, "layer_seeds");
    for (int i = 0; i < v->n_layers; i++) cJSON_AddItemToArray(seeds, hex(v->layers[i]->seed));
    return s;
}

static int parse_hex(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsString(j) || strlen(j->valuestring) != 16) return 0;
    char *end;
    *out = strtoull(j->valuestring, &end, 16);
    return *end == 0;
}

kc_status kc_state_apply(const kc_model_view *v, const cJSON *s, const char *path) {
    if (!s) return KC_OK;
    kc_rng rng;
    uint64_t step;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(s, "rng");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(s, "epoch");
    const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(s, "layer_seeds");
    int ok = cJSON_GetArraySize(r) == 4 && cJSON_IsNumber(e) && e->valuedouble >= 0 &&
             e->valuedouble < 1e9 &&
             parse_hex(cJSON_GetObjectItemCaseSensitive(s, "step"), &step) &&
             cJSON_GetArraySize(seeds) == v->n_layers;
    for (int i = 0; ok && i < 4; i++) ok = parse_hex(cJSON_GetArrayItem(r, i), &rng.s[i]);
    ok = ok && (rng.s[0] | rng.s[1] | rng.s[2] | rng.s[3]);
    uint64_t seed_values[256];
    for (int i = 0; ok && i < v->n_layers; i++) {
        uint64_t x;
        ok = parse_hex(cJSON_GetArrayItem(seeds, i), &x);
        if (i < 256) seed_values[i] = x;
    }
    if (!ok) return kc_err(KC_EFORMAT, "%s: kerac's state in the metadata is malformed", path);
    *v->rng = rng;
    *v->step = step;
    *v->epoch = (int)e->valuedouble;
    for (int i = 0; i < v->n_layers && i < 256; i++) v->layers[i]->seed = seed_values[i];
    return KC_OK;
}

/* ---- TextVectorization's state: Keras's assets and idf weights ---- */

#include "../data/text_internal.h"

/* Keras 3 (and tf.keras 2.15's .keras) keep a TextVectorization's vocabulary in
 * assets/<layer path>/vocabulary.txt (get_vocabulary(), "\n"-joined) and its idf weights (tf_idf)
 * as <layer path>/vars/idf_weights, each also under <layer path>/_lookup_layer/ (its StringLookup,
 * which saving_lib visits too). Writes the idf weights into f and returns the asset entries
 * (names and texts malloc'd: kc_tv_assets_free). */
kc_status kc_tv_assets_write(const kc_model_view *v, hid_t f, kc_zip_entry **entries, int *n) {
    *entries = NULL;
    *n = 0;
    kc_path *paths = NULL;
    kc_status st = KC_OK;
    for (int i = 0; i < v->n_layers && !st; i++) {
        kc_text_vectorization *tv = kc_layer_text_vectorization(v->layers[i]);
        if (!tv) continue;
        if (!paths && !(paths = model_paths(v, NULL, NULL))) return kc_err(KC_ENOMEM, "out of memory");
        const char *const *toks;
        int64_t nv = kc_text_vectorization_vocabulary(tv, &toks);
        size_t len = 0;
        for (int64_t k = 0; k < nv; k++) len += strlen(toks[k]) + 1;
        kc_zip_entry *e = realloc(*entries, sizeof *e * (size_t)(*n + 2));
        if (!e) {
            st = kc_err(KC_ENOMEM, "out of memory");
            break;
        }
        *entries = e;
        for (int sub = 0; sub < 2 && !st; sub++) {
            char *text = malloc(len + 1), *name = malloc(PATH_MAX_LEN + 64);
            if (!text || !name) {
                free(text);
                free(name);
                st = kc_err(KC_ENOMEM, "out of memory");
                break;
            }
            size_t at = 0;
            for (int64_t k = 0; k < nv; k++) {
                if (k) text[at++] = '\n';
                size_t l = strlen(toks[k]);
                memcpy(text + at, toks[k], l);
                at += l;
            }
            snprintf(name, PATH_MAX_LEN + 64, "assets/%s%s/vocabulary.txt", paths[i],
                     sub ? "/_lookup_layer" : "");
            e[*n] = (kc_zip_entry){name, text, at};
            (*n)++;
            const float *idf = kc_text_vectorization_idf_weights(tv);
            if (idf) {
                char gp[PATH_MAX_LEN + 64];
                snprintf(gp, sizeof gp, "%s%s/vars", paths[i], sub ? "/_lookup_layer" : "");
                kc_text_vectorization_opts o;
                kc_text_vectorization_options(tv, &o);
                int64_t dims[1] = {o.pad_to_max_tokens ? o.max_tokens : nv};
                hid_t g = kc_h5_group(f, gp);
                st = g < 0 ? kc_err(KC_EIO, "HDF5: cannot create %s", gp)
                           : kc_h5_write_f32(g, "idf_weights", idf, 1, dims);
                if (g >= 0) H5Gclose(g);
            }
        }
    }
    free(paths);
    return st;
}

void kc_tv_assets_free(kc_zip_entry *entries, int n) {
    for (int i = 0; i < n; i++) {
        free((void *)entries[i].name);
        free((void *)entries[i].data);
    }
    free(entries);
}

/* the vocabulary (assets/<path>/vocabulary.txt, else .../_lookup_layer/vocabulary.txt; none
 * needed when the config held it) and idf weights of each TextVectorization layer */
kc_status kc_tv_assets_read(const kc_model_view *v, kc_h5r f, const char *path, const void *zip,
                            size_t size) {
    kc_path *paths = NULL;
    kc_status st = KC_OK;
    for (int i = 0; i < v->n_layers && !st; i++) {
        kc_layer *l = v->layers[i];
        kc_text_vectorization *tv = kc_layer_text_vectorization(l);
        if (!tv || kc_text_vectorization_vocabulary(tv, NULL)) continue;
        if (!paths && !(paths = model_paths(v, NULL, NULL))) return kc_err(KC_ENOMEM, "out of memory");
        char name[PATH_MAX_LEN + 64];
        void *text = NULL;
        size_t n = 0;
        snprintf(name, sizeof name, "assets/%s/vocabulary.txt", paths[i]);
        if (kc_zip_read(path, zip, size, name, &text, &n)) {
            snprintf(name, sizeof name, "assets/%s/_lookup_layer/vocabulary.txt", paths[i]);
            if ((st = kc_zip_read(path, zip, size, name, &text, &n))) {
                st = kc_err(KC_EFORMAT, "%s: layer '%s' (TextVectorization): no vocabulary "
                                        "(assets/%s/vocabulary.txt)", path, l->name, paths[i]);
                break;
            }
        }
        /* splitlines(), trailing empty lines dropped, as Keras's load_assets */
        char *s = text;
        size_t cnt = 1;
        for (size_t k = 0; k < n; k++) cnt += s[k] == '\n';
        char **toks = malloc(sizeof(char *) * cnt);
        int64_t nt = 0;
        if (!toks) st = kc_err(KC_ENOMEM, "out of memory");
        for (size_t k = 0, start = 0; !st && k <= n; k++)
            if (k == n || s[k] == '\n') {
                size_t e = k;
                if (e > start && s[e - 1] == '\r') e--;
                s[e] = 0;
                if (k < n || start < n) toks[nt++] = s + start;
                start = k + 1;
            }
        while (!st && nt > 0 && !toks[nt - 1][0]) nt--;
        float *idf = NULL;
        kc_text_vectorization_opts o;
        kc_text_vectorization_options(tv, &o);
        if (!st && !strcmp(o.output_mode, "tf_idf")) {
            int64_t dims[1] = {o.pad_to_max_tokens ? o.max_tokens : nt};
            char gp[PATH_MAX_LEN + 64], what[PATH_MAX_LEN + 160];
            snprintf(gp, sizeof gp, "%s/vars", paths[i]);
            if (!kc_h5l_find(f, gp) || !kc_h5l_find(f, strcat(strcpy(what, gp), "/idf_weights")))
                snprintf(gp, sizeof gp, "%s/_lookup_layer/vars", paths[i]);
            snprintf(what, sizeof what, "%s: layer '%s' (TextVectorization): %s/idf_weights",
                     path, l->name, gp);
            idf = malloc(sizeof(float) * (size_t)(dims[0] > 0 ? dims[0] : 1));
            if (!idf) st = kc_err(KC_ENOMEM, "out of memory");
            else if (!kc_h5l_find(f, gp)) st = kc_err(KC_EFORMAT, "%s is missing", what);
            else {
                kc_h5r g = kc_h5l_find(f, gp);
                st = kc_h5l_read_f32(g, "idf_weights", idf, 1, dims, what);
            }
        }
        if (!st) st = kc_text_vectorization_set_vocabulary(tv, (const char *const *)toks, nt, idf);
        if (st) kc_err_prefix(st, "%s: layer '%s'", path, l->name);
        else if (l->out_size != (strcmp(o.output_mode, "int") ? (o.pad_to_max_tokens ? o.max_tokens : nt)
                                                              : o.output_sequence_length))
            st = kc_err(KC_EFORMAT, "%s: layer '%s' (TextVectorization): the vocabulary has %lld "
                                    "entries, its config's vocabulary_size says otherwise",
                        path, l->name, (long long)nt);
        free(idf);
        free(toks);
        free(text);
    }
    free(paths);
    return st;
}
