/* Every input the fuzzers of fuzz/ found a bug with (tests/fixtures/fuzz_regressions/<harness>/)
 * and every committed seed (fuzz/corpus/<harness>/) goes through the harness's own entry point
 * under the normal test run: none may crash (test-asan: nor leak or read out of bounds). */
#include <criterion/criterion.h>
#include <dirent.h>

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
