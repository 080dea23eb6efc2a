/* data.c: data SPECs for the kerac program (the library's kc_data_load: mnist, cifar10, IDX
 * folders, .npy/.npz, CSV, image folders), and making a dataset fit a model. */
#include <stdio.h>
#include <string.h>

#include "common.h"

/* SPEC through kc_data_load; with a model, image folders are read at its input's size and
 * color mode: (h, w, 1) grayscale, (h, w, 3) RGB, as a Keras user passes image_size and
 * color_mode to image_dataset_from_directory for the model they train */
int cli_read_data(const char *spec, const kc_model *model, kc_dataset *out, char *err,
                  size_t errlen) {
    kc_data_opts o = {0};
    if (model) {
        kc_shape in = kc_input_shape(model);
        if (in.rank == 3 && in.dims[0] > 0 && in.dims[1] > 0 &&
            (in.dims[2] == 1 || in.dims[2] == 3 || in.dims[2] == 4)) {
            o.image_height = (int)in.dims[0], o.image_width = (int)in.dims[1];
            o.channels = (int)in.dims[2];
        } else if (in.rank == 2 && in.dims[0] > 0 && in.dims[1] > 0) { /* (28, 28) */
            o.image_height = (int)in.dims[0], o.image_width = (int)in.dims[1], o.channels = 1;
        } else if (in.rank == 1) { /* 784: a flattened square of gray pixels */
            int side = 1;
            while ((int64_t)(side + 1) * (side + 1) <= in.dims[0]) side++;
            if ((int64_t)side * side == in.dims[0]) o.image_height = o.image_width = side, o.channels = 1;
        }
    }
    if (kc_data_load(spec, &o, out) != KC_OK) {
        snprintf(err, errlen, "%s", kc_last_error());
        return -1;
    }
    return 0;
}

int cli_model_scales_inputs(const kc_model *model) {
    const char *first = kc_layer_count(model) > 0 ? kc_layer_class(model, 0) : NULL;
    return first && (!strcmp(first, "Rescaling") || !strcmp(first, "Normalization"));
}

int cli_data_fit_model(const kc_model *model, kc_dataset *ds, char *err, size_t errlen) {
    kc_shape in = kc_input_shape(model);
    /* x = x.reshape(n, *input_shape) (784, (28, 28) or (28, 28, 1) for MNIST) */
    if (kc_shape_size(in) > 0 && kc_shape_size(ds->x_shape) != kc_shape_size(in)) {
        char a[64], b[64];
        snprintf(err, errlen, "samples of shape %s (%lld values) do not fit the model's input %s",
                 kc_shape_str(ds->x_shape, a, sizeof a), (long long)kc_shape_size(ds->x_shape),
                 kc_shape_str(in, b, sizeof b));
        return -1;
    }
    if (kc_shape_size(in) > 0 && kc_dataset_reshape(ds, in) != KC_OK) goto fail;
    /* x.astype("float32") / 255 for images of bytes, unless the model scales them itself: a
     * Rescaling or Normalization first takes the raw 0..255 values, as in Keras */
    if (ds->x_dtype == KC_UINT8 && ds->x_scale == 0 && !cli_model_scales_inputs(model) &&
        kc_dataset_scale(ds, 1.0f / 255) != KC_OK)
        goto fail;
    /* y as the loss wants it: class indices for a sparse loss (and one unit), else one-hot */
    kc_loss loss = kc_model_loss_spec(model, 0).kind;
    kc_shape out = kc_output_shape(model);
    int units = out.rank ? out.dims[out.rank - 1] : 1;
    if (ds->y && ds->y_shape.rank == 0 && loss != KC_SPARSE_CATEGORICAL_CROSSENTROPY &&
        units > 1 && kc_to_categorical(ds, units) != KC_OK)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "%s", kc_last_error());
    return -1;
}

int cli_load_data(const char *spec, const kc_model *model, kc_dataset *out, char *err,
                  size_t errlen) {
    memset(out, 0, sizeof *out);
    if (cli_read_data(spec, model, out, err, errlen)) return -1;
    if (model && cli_data_fit_model(model, out, err, errlen)) {
        kc_dataset_free(out);
        return -1;
    }
    return 0;
}

void cli_data_limit(kc_dataset *ds, long n) {
    if (n > 0 && ds->count > n) ds->count = n;
}
