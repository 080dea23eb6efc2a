/* kc_image_load: PNG, JPEG, BMP, PGM/PPM. The first byte picks the file's extension (kerac
 * decodes by content or name), the channels (0, 1, 3, 4) and whether to resize (to 7x5). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    fz_quiet();
    static const char *const ext[4] = {"in.png", "in.jpg", "in.bmp", "in.pgm"};
    static const int ch[4] = {0, 1, 3, 4};
    uint8_t c = data[0];
    kc_image img;
    memset(&img, 0, sizeof img);
    const char *path = fz_write(ext[c & 3], data + 1, size - 1);
    int h = (c & 16) ? 7 : 0, w = (c & 16) ? 5 : 0;
    if (kc_image_load(path, ch[(c >> 2) & 3], h, w, &img) == KC_OK) kc_image_free(&img);
    return 0;
}
