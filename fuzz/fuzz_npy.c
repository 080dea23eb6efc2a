/* kc_npy_load on the input; kc_npz_load on an npz of the input's parts (x.npy, y.npy, stored
 * with correct CRCs); and kc_data_load's X.npy,Y.npy SPEC on the first two parts. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_quiet();
    kc_npy a;
    fz_parts p;
    fz_split(data, size, 2, &p);
    if (p.n == 1) {
        memset(&a, 0, sizeof a);
        if (kc_npy_load(fz_write("input.npy", data, size), &a) == KC_OK) kc_npy_free(&a);
        return 0;
    }
    static const char *const names[2] = {"x.npy", "y.npy"};
    size_t zsize;
    uint8_t *zip = fz_zip(p.n, names, p.data, p.size, &zsize);
    const char *zpath = fz_write("input.npz", zip, zsize);
    free(zip);
    memset(&a, 0, sizeof a);
    if (kc_npz_load(zpath, "y", &a) == KC_OK) kc_npy_free(&a);
    kc_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (kc_data_load(zpath, NULL, &ds) == KC_OK) kc_dataset_free(&ds);
    char spec[400];
    const char *x = fz_write("x.npy", p.data[0], p.size[0]);
    const char *y = fz_write("y.npy", p.data[1], p.size[1]);
    snprintf(spec, sizeof spec, "%s,%s", x, y);
    memset(&ds, 0, sizeof ds);
    if (kc_data_load(spec, NULL, &ds) == KC_OK) kc_dataset_free(&ds);
    return 0;
}
