/* HDF5 files through the public loaders: the first byte picks kc_load (a legacy .h5 full
 * model) or kc_load_weights (.weights.h5 / legacy weights) into the small compiled model of
 * fz_weights_model; the rest is the file. The fuzz build turns kc_load's forked probe off
 * (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION), so a crash in the reader reaches the fuzzer. */
#include "fuzz_common.h"

static kc_model *target;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_quiet();
    target = fz_weights_model();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1) {
        kc_load_weights(target, fz_write("input.weights.h5", data + 1, size - 1));
    } else {
        kc_model *m = NULL;
        if (kc_load(fz_write("input.h5", data + 1, size - 1), &m) == KC_OK) kc_model_free(m);
    }
    return 0;
}
