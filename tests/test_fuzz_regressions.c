/* Every input the fuzzers of fuzz/ found a bug with (tests/fixtures/fuzz_regressions/<harness>/)
 * and every committed seed (fuzz/corpus/<harness>/) goes through the harness's own entry point
 * under the normal test run: none may crash (test-asan: nor leak or read out of bounds). */
#include <criterion/criterion.h>
#include <dirent.h>
#include "testutil.h"

#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "../fuzz/fuzz_idx.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_json_config_one
#include "../fuzz/fuzz_json_config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_keras_zip_one
#include "../fuzz/fuzz_keras_zip.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_h5_one
#define LLVMFuzzerInitialize fuzz_h5_init
#include "../fuzz/fuzz_h5.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize
#define LLVMFuzzerTestOneInput fuzz_npy_one
#include "../fuzz/fuzz_npy.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_csv_one
#include "../fuzz/fuzz_csv.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_image_one
#include "../fuzz/fuzz_image.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_text_one
#include "../fuzz/fuzz_text.c"
#undef LLVMFuzzerTestOneInput

typedef int (*one_fn)(const uint8_t *, size_t);

/* runs every file of dir through fn; returns how many */
static int run_dir(const char *dir, one_fn fn) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        cr_assert(f, "%s", path);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        rewind(f);
        uint8_t *buf = malloc(size ? (size_t)size : 1);
        cr_assert(fread(buf, 1, (size_t)size, f) == (size_t)size, "%s", path);
        fclose(f);
        cr_log_info("%s", path);
        fn(buf, (size_t)size);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

static void run_harness(const char *name, one_fn fn) {
    char dir[256];
    snprintf(dir, sizeof dir, "fuzz/corpus/%s", name);
    int seeds = run_dir(dir, fn);
    cr_expect(seeds > 0, "%s: no seeds in %s", name, dir);
    snprintf(dir, sizeof dir, "tests/fixtures/fuzz_regressions/%s", name);
    run_dir(dir, fn);
}

Test(fuzz_regressions, idx) { run_harness("fuzz_idx", fuzz_idx_one); }
Test(fuzz_regressions, json_config) { run_harness("fuzz_json_config", fuzz_json_config_one); }
Test(fuzz_regressions, keras_zip) { run_harness("fuzz_keras_zip", fuzz_keras_zip_one); }
Test(fuzz_regressions, h5) {
    fuzz_h5_init(NULL, NULL);
    run_harness("fuzz_h5", fuzz_h5_one);
    kc_model_free(target);
}
Test(fuzz_regressions, npy) { run_harness("fuzz_npy", fuzz_npy_one); }
Test(fuzz_regressions, csv) { run_harness("fuzz_csv", fuzz_csv_one); }
Test(fuzz_regressions, image) { run_harness("fuzz_image", fuzz_image_one); }
Test(fuzz_regressions, text) { run_harness("fuzz_text", fuzz_text_one); }

/* fuzz_idx found: 22 bytes claiming 1.4 GB of data were allocated in full before the read
 * fell short (seconds under ASan; a crafted gzip file could claim 2 GiB the same way). The
 * file's size is now checked first. */
Test(fuzz_regressions, idx_small_file_big_dims) {
    kc_idx idx;
    const uint8_t raw[] = {0, 0, 8, 1, 0x56, 0x56, 0x56, 0x56, 1, 2, 3};
    KC_EXPECT_ERR(kc_idx_read(fz_write("big.idx", raw, sizeof raw), &idx), KC_EFORMAT,
                  "expected 1448498774 bytes of data after the 8-byte header, found only 3");
    cr_assert_null(idx.data);
    /* the same header, gzip-compressed: 29 bytes cannot inflate to 1.4 GB */
    const uint8_t gz[] = {0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0x02, 0x03, 0x63, 0x60, 0xe0, 0x60,
                          0x0c, 0x03, 0x02, 0x46, 0x26, 0x66, 0x00, 0x17, 0x17, 0xef, 0x75,
                          0x0b, 0, 0, 0};
    KC_EXPECT_ERR(kc_idx_read(fz_write("big.idx.gz", gz, sizeof gz), &idx), KC_EFORMAT,
                  "more than the 29-byte gzip file can hold");
    cr_assert_null(idx.data);
}

/* fuzz_image found: 818 bytes of JPEG declaring 18249x17936 pixels, whose data stops at a marker:
 * libjpeg made up the rest, half a minute of decoding under ASan. A segment or file that ends
 * early is now an error; and 327 million pixels are over PIL's limit, which is checked first. */
Test(fuzz_regressions, jpeg_cut_short_is_refused) {
    FILE *f = fopen("tests/fixtures/fuzz_regressions/fuzz_image/jpeg_huge_cut_short", "rb");
    cr_assert(f);
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    kc_image img = {0};
    KC_EXPECT_ERR(kc_image_load(fz_write("cut.jpg", buf + 1, n - 1), 0, 0, 0, &img), KC_EFORMAT,
                  "image size 18249x17936 is over 178956970 pixels, the limit of PIL");
    cr_assert_null(img.data);
}

/* fuzz_text found (UBSan): a word index of 2.5e21 was converted to int32 before its range was
 * checked, which is undefined */
Test(fuzz_regressions, word_index_out_of_int32_range) {
    const char json[] = "{\"the\": 1, \"and\": 2555555555555555555555}";
    fz_write("imdb_word_index.json", json, sizeof json - 1);
    kc_word_index wi;
    KC_EXPECT_ERR(kc_imdb_word_index(fz_tmpdir(), &wi), KC_EFORMAT,
                  "the index of \"and\" is not an int32");
}
