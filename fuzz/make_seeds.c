/* Writes the seeds that kerac itself saves into fuzz/corpus/ (run by fuzz/make_seeds.sh):
 * the JSON of small models, .keras files split into the parts fuzz_keras_zip rebuilds, legacy
 * .h5 and .weights.h5 files of fz_weights_model (with fuzz_h5's leading selector byte), PNGs. */
#include "fuzz_common.h"
#include <zip.h>

static const char *out_dir;

static void put(const char *harness, const char *name, const void *a, size_t na, const void *b,
                size_t nb) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, harness, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a, 1, na, f) != na || (nb && fwrite(b, 1, nb, f) != nb)) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) exit(1);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    uint8_t *d = malloc(*n + 1);
    if (fread(d, 1, *n, f) != *n) exit(1);
    fclose(f);
    return d;
}

static void check(kc_status st, const char *what) {
    if (st) {
        fprintf(stderr, "make_seeds: %s: %s\n", what, kc_last_error());
        exit(1);
    }
}

/* the .keras file's three members joined by FZ_SEP */
static void keras_parts(const char *keras, const char *name) {
    int err;
    zip_t *z = zip_open(keras, ZIP_RDONLY, &err);
    if (!z) exit(1);
    static const char *const members[3] = {"config.json", "metadata.json", "model.weights.h5"};
    char *all = NULL;
    size_t n = 0;
    FILE *mem = open_memstream(&all, &n);
    for (int i = 0; i < 3; i++) {
        zip_stat_t sb;
        zip_file_t *f = zip_fopen(z, members[i], 0);
        if (!f || zip_stat(z, members[i], 0, &sb) < 0) exit(1);
        char *buf = malloc(sb.size);
        if (zip_fread(f, buf, sb.size) != (zip_int64_t)sb.size) exit(1);
        zip_fclose(f);
        if (i) fwrite(FZ_SEP, 1, FZ_SEP_LEN, mem);
        fwrite(buf, 1, sb.size, mem);
        free(buf);
    }
    zip_close(z);
    fclose(mem);
    put("fuzz_keras_zip", name, all, n, NULL, 0);
    free(all);
}

static kc_model *conv_model(void) {
    kc_model *m = kc_sequential(kc_shape3(6, 6, 1));
    kc_add(m, kc_conv2d(2, 3, KC_RELU));
    kc_add(m, kc_max_pooling2d(2));
    kc_add(m, kc_flatten());
    kc_add(m, kc_dense(2, KC_SOFTMAX));
    check(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), KC_METRIC_ACCURACY), "conv");
    return m;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    out_dir = argv[1];
    const char *tmp = fz_tmpdir();
    char path[512];
    kc_model *models[2] = {fz_weights_model(), conv_model()};
    for (int i = 0; i < 2; i++) {
        kc_model *m = models[i];
        char name[64], *json = NULL;
        check(kc_model_to_json(m, &json), "to_json");
        snprintf(name, sizeof name, "kerac_model%d.json", i);
        put("fuzz_json_config", name, json, strlen(json), NULL, 0);
        free(json);
        snprintf(path, sizeof path, "%s/m%d.keras", tmp, i);
        check(kc_save(m, path), "save .keras");
        snprintf(name, sizeof name, "kerac_model%d.parts", i);
        keras_parts(path, name);
        size_t n;
        uint8_t *d = slurp(path, &n);
        snprintf(name, sizeof name, "kerac_model%d.keras", i);
        if (i == 0) put("fuzz_keras_zip", name, d, n, NULL, 0);
        free(d);
        snprintf(path, sizeof path, "%s/m%d.h5", tmp, i);
        check(kc_save(m, path), "save .h5");
        d = slurp(path, &n);
        snprintf(name, sizeof name, "kerac_model%d.h5", i);
        put("fuzz_h5", name, "\0", 1, d, n);
        free(d);
    }
    snprintf(path, sizeof path, "%s/w.weights.h5", tmp);
    check(kc_save_weights(models[0], path), "save_weights");
    size_t n;
    uint8_t *d = slurp(path, &n);
    put("fuzz_h5", "kerac_weights.weights.h5", "\1", 1, d, n);
    free(d);
    for (int i = 0; i < 2; i++) kc_model_free(models[i]);
    /* PNGs of 1..4 channels (fuzz_image's first byte 0: the .png name, channels as stored) */
    for (int c = 1; c <= 4; c++) {
        uint8_t px[3 * 5 * 4];
        for (int i = 0; i < 3 * 5 * c; i++) px[i] = (uint8_t)(i * 37 + c);
        kc_image img = {.height = 3, .width = 5, .channels = c, .data = px};
        snprintf(path, sizeof path, "%s/i.png", tmp);
        check(kc_image_save_png(path, &img), "png");
        d = slurp(path, &n);
        char name[32];
        snprintf(name, sizeof name, "kerac_c%d.png", c);
        put("fuzz_image", name, "\0", 1, d, n);
        free(d);
    }
    return 0;
}
