/* data.c: data SPECs for the kerac program, and making a dataset fit a model.
 *
 * MERGE NOTE: read_spec is the one place that parses a SPEC; it will become a call of the
 * library's kc_data_load(spec, opts, out) (mnist, mnist:test, cifar10, IDX folders, .npy/.npz,
 * CSV, image folders). cli_data_fit_model (shape, scaling, labels) stays. */
#include <stdio.h>
#include <string.h>

#include "common.h"

static int read_spec(const char *spec, kc_dataset *out, char *err, size_t errlen) {
    int test = 0;
    if (!strcmp(spec, "mnist") || !strcmp(spec, "mnist:train")) test = 0;
    else if (!strcmp(spec, "mnist:test")) test = 1;
    else {
        snprintf(err, errlen, "unknown data SPEC '%s' (this build knows mnist, mnist:train, "
                              "mnist:test)", spec);
        return -1;
    }
    kc_dataset train, testset;
    if (kc_mnist_load(NULL, &train, &testset) != KC_OK) {
        snprintf(err, errlen, "%s: %s", spec, kc_last_error());
        return -1;
    }
    *out = test ? testset : train;
    kc_dataset_free(test ? &train : &testset);
    return 0;
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
    /* x.astype("float32") / 255 for images of bytes */
    if (ds->x_dtype == KC_UINT8 && ds->x_scale == 0 && kc_dataset_scale(ds, 1.0f / 255) != KC_OK)
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
    if (read_spec(spec, out, err, errlen)) return -1;
    if (model && cli_data_fit_model(model, out, err, errlen)) {
        kc_dataset_free(out);
        return -1;
    }
    return 0;
}

void cli_data_limit(kc_dataset *ds, long n) {
    if (n > 0 && ds->count > n) ds->count = n;
}
