/* kc_idx_read on the input as a file: IDX raw, or gzip (kerac decides by the content) */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_quiet();
    kc_idx idx;
    memset(&idx, 0, sizeof idx);
    if (kc_idx_read(fz_write("input-idx1-ubyte", data, size), &idx) == KC_OK) kc_idx_free(&idx);
    return 0;
}
