/* kc_model_from_json: Keras's model.to_json(), a .keras file's config.json or a legacy file's
 * model_config (with a compile_config: compiled). A model that builds is also written back. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_quiet();
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    kc_model *m = NULL;
    if (kc_model_from_json(text, &m) == KC_OK && m) {
        char *back = NULL;
        if (kc_model_to_json(m, &back) == KC_OK) free(back);
        kc_model_free(m);
    }
    free(text);
    return 0;
}
