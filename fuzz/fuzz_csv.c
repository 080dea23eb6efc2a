/* kc_data_load on FILE.csv (the label column by default, or "FILE.csv:COLUMN" when the input
 * starts with a line "#COLUMN", which is then cut off) */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_quiet();
    char spec[400];
    const char *path;
    if (size > 1 && data[0] == '#' && memchr(data, '\n', size < 64 ? size : 64)) {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t cl = (size_t)(nl - data - 1);
        path = fz_write("input.csv", nl + 1, size - (size_t)(nl + 1 - data));
        snprintf(spec, sizeof spec, "%s:%.*s", path, (int)cl, (const char *)data + 1);
        if (memchr(data + 1, 0, cl)) return 0; /* a SPEC is a C string */
    } else {
        path = fz_write("input.csv", data, size);
        snprintf(spec, sizeof spec, "%s", path);
    }
    kc_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (kc_data_load(spec, NULL, &ds) == KC_OK) kc_dataset_free(&ds);
    return 0;
}
