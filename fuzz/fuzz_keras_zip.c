/* kc_load on a .keras file built from the input: parts config.json, metadata.json and
 * model.weights.h5 (FZ_SEP between them) become a stored zip with correct CRCs, so that the
 * mutations reach the JSON and the HDF5 inside. An input without a marker is tried as the
 * whole file too (every 8th run), for the zip reader itself. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_quiet();
    fz_parts p;
    fz_split(data, size, 3, &p);
    kc_model *m = NULL;
    if (p.n == 1 && size >= 4 && !memcmp(data, "PK\x03\x04", 4)) {
        if (kc_load(fz_write("raw.keras", data, size), &m) == KC_OK) kc_model_free(m);
        return 0;
    }
    static const char *const names[3] = {"config.json", "metadata.json", "model.weights.h5"};
    size_t zsize;
    uint8_t *zip = fz_zip(p.n, names, p.data, p.size, &zsize);
    const char *path = fz_write("model.keras", zip, zsize);
    free(zip);
    kc_load_opts o = {.compile = (size & 1) ? KC_ZERO : 0};
    if (kc_load_ex(path, &o, &m) == KC_OK) kc_model_free(m);
    return 0;
}
