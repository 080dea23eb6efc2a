/* test_datasets.c: kc_data_load's SPECs (src/data/spec.c, npy.c, csv.c, image.c, cifar.c):
 * .npy/.npz files written by NumPy (tests/fixtures/data/, tests/gen_data_fixtures.py) and by
 * hand, CSV, images against Pillow's and Keras's values, an image folder against Keras's own
 * index_directory order and split, CIFAR-10's binary archive (a small fake one, also through
 * the verified download), IDX folders, and every refusal naming what is wrong. */
#include "testutil.h"
#include "data/spec_internal.h"
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <zlib.h>

#define FIX "tests/fixtures/data/"

static char *path_in(char *buf, const char *dir, const char *name) {
    snprintf(buf, PATH_MAX, "%s/%s", dir, name);
    return buf;
}

static void write_text(const char *path, const char *text) { tu_write_file(path, text, strlen(text)); }

/* ---- .npy / .npz ------------------------------------------------------------------------------ */

Test(npy, float32_read_as_stored) {
    kc_npy a;
    KC_CHECK(kc_npy_load(FIX "x_f4.npy", &a));
    cr_assert_str_eq(a.dtype, "f4");
    cr_assert(a.rank == 2 && a.shape[0] == 4 && a.shape[1] == 3 && a.size == 12);
    for (int i = 0; i < 12; i++) cr_assert_eq(((float *)a.data)[i], i / 4.0f);
    kc_npy_free(&a);
    kc_dataset d;
    KC_CHECK(kc_data_load(FIX "x_f4.npy", NULL, &d));
    cr_assert(d.count == 4 && d.x_dtype == KC_FLOAT32 && d.x_shape.rank == 1 && d.x_shape.dims[0] == 3);
    cr_assert(d.y == NULL && d.x == d.owned_x);
    cr_assert_eq(((float *)d.x)[11], 11 / 4.0f);
    kc_dataset_free(&d);
}

Test(npy, big_endian_f8_and_int64_labels) {
    kc_dataset d;
    KC_CHECK(kc_data_load(FIX "x_f8_be.npy," FIX "y_i8.npy", NULL, &d));
    cr_assert(d.count == 4 && d.x_dtype == KC_FLOAT32);
    for (int i = 0; i < 12; i++) cr_assert_eq(((float *)d.x)[i], (i - 5) / 8.0f);
    cr_assert(d.y_dtype == KC_INT32 && d.y_shape.rank == 0 && d.num_classes == 3);
    int32_t want[4] = {2, 0, 1, 2};
    cr_assert_arr_eq(d.y, want, sizeof want);
    kc_dataset_free(&d);
}

Test(npy, uint8_stays_uint8_and_int_x_is_int32) {
    kc_dataset d;
    KC_CHECK(kc_data_load(FIX "x_u1.npy", NULL, &d));
    cr_assert(d.x_dtype == KC_UINT8 && d.x_scale == 0 && d.x_shape.rank == 2 &&
              d.x_shape.dims[0] == 2 && d.x_shape.dims[1] == 3);
    cr_assert_eq(((uint8_t *)d.x)[23], 230);
    kc_dataset_free(&d);
    KC_CHECK(kc_data_load(FIX "x_i8.npy", NULL, &d));
    cr_assert_eq(d.x_dtype, KC_INT32);
    int32_t want[8] = {1, -2, 3, 4, 5, 6, 70000, 8};
    cr_assert_arr_eq(d.x, want, sizeof want);
    kc_dataset_free(&d);
}

Test(npy, float_2d_targets) {
    kc_dataset d;
    KC_CHECK(kc_data_load(FIX "x_f4.npy," FIX "y_f4_2d.npy", NULL, &d));
    cr_assert(d.y_dtype == KC_FLOAT32 && d.y_shape.rank == 1 && d.y_shape.dims[0] == 2 && d.num_classes == 0);
    cr_assert_eq(((float *)d.y)[7], 4.0f);
    kc_dataset_free(&d);
}

Test(npy, npz_deflated_and_train_test) {
    kc_dataset d;
    KC_CHECK(kc_data_load(FIX "xy_deflated.npz", NULL, &d));
    cr_assert(d.count == 3 && d.x_dtype == KC_FLOAT32 && d.x_shape.dims[0] == 2);
    cr_assert_eq(((float *)d.x)[5], 5.0f);
    cr_assert(d.y_dtype == KC_INT32 && d.num_classes == 4 && ((int32_t *)d.y)[2] == 3);
    kc_dataset_free(&d);
    KC_CHECK(kc_data_load(FIX "train_test.npz", NULL, &d));
    cr_assert(d.count == 4 && d.x_dtype == KC_UINT8 && ((uint8_t *)d.x)[7] == 7 && d.num_classes == 2);
    kc_dataset_free(&d);
    KC_CHECK(kc_data_load(FIX "train_test.npz:test", NULL, &d));
    cr_assert(d.count == 2 && ((uint8_t *)d.x)[0] == 100 && ((int32_t *)d.y)[1] == 1);
    kc_dataset_free(&d);
    kc_npy a;
    KC_CHECK(kc_npz_load(FIX "xy_deflated.npz", "y", &a));
    cr_assert(!strcmp(a.dtype, "i8") && a.size == 3 && ((int64_t *)a.data)[0] == 1);
    kc_npy_free(&a);
    KC_EXPECT_ERR(kc_npz_load(FIX "xy_deflated.npz", "z", &a), KC_EFORMAT, "has no z.npy");
}

/* an .npy written byte for byte as np.save(f, np.array([[7, -1], [3, 4], [5, 6]], "<i4")) does */
static void write_npy(const char *path, const char *descr, const char *shape, const void *body,
                      size_t n, const char *fortran) {
    char header[128];
    int len = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }",
                       descr, fortran, shape);
    int total = 10 + len + 1, pad = (64 - total % 64) % 64;
    uint8_t buf[512];
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)(len + pad + 1), buf[9] = 0;
    memcpy(buf + 10, header, (size_t)len);
    memset(buf + 10 + len, ' ', (size_t)pad);
    buf[10 + len + pad] = '\n';
    memcpy(buf + total + pad, body, n);
    tu_write_file(path, buf, (size_t)(total + pad) + n);
}

Test(npy, hand_written_bytes) {
    char *dir = tu_tmpdir(), p[PATH_MAX], spec[2 * PATH_MAX + 2], q[PATH_MAX];
    int32_t x[6] = {7, -1, 3, 4, 5, 6};
    uint8_t y[3] = {1, 0, 1};
    write_npy(path_in(p, dir, "x.npy"), "<i4", "(3, 2)", x, sizeof x, "False");
    write_npy(path_in(q, dir, "y.npy"), "|u1", "(3,)", y, sizeof y, "False");
    snprintf(spec, sizeof spec, "%s,%s", p, q);
    kc_dataset d;
    KC_CHECK(kc_data_load(spec, NULL, &d));
    cr_assert(d.count == 3 && d.x_dtype == KC_INT32 && d.num_classes == 2);
    cr_assert_arr_eq(d.x, x, sizeof x);
    kc_dataset_free(&d);
    /* one byte short */
    write_npy(p, "<i4", "(3, 2)", x, sizeof x - 1, "False");
    KC_EXPECT_ERR(kc_data_load(p, NULL, &d), KC_EFORMAT, "truncated");
}

Test(npy, refusals) {
    kc_dataset d;
    KC_EXPECT_ERR(kc_data_load(FIX "fortran.npy", NULL, &d), KC_EFORMAT, "Fortran order");
    KC_EXPECT_ERR(kc_data_load(FIX "bool.npy", NULL, &d), KC_EFORMAT, "dtype '|b1' is not supported");
    KC_EXPECT_ERR(kc_data_load(FIX "f2.npy", NULL, &d), KC_EFORMAT, "dtype '<f2'");
    KC_EXPECT_ERR(kc_data_load(FIX "x_f4.npy," FIX "y_i4_5.npy", NULL, &d), KC_EFORMAT,
                  "x and y counts differ: " FIX "x_f4.npy holds 4 samples, " FIX "y_i4_5.npy holds 5");
    KC_EXPECT_ERR(kc_data_load(FIX "images_expected.txt", NULL, &d), KC_EINVAL, "unknown SPEC");
    cr_assert(d.x == NULL && d.count == 0);
}

Test(spec, missing_and_unknown) {
    kc_dataset d;
    KC_EXPECT_ERR(kc_data_load("/nonexistent/kerac/x.npy", NULL, &d), KC_EIO, "/nonexistent/kerac/x.npy");
    KC_EXPECT_ERR(kc_data_load("/nonexistent/kerac/a.npy,b.npy", NULL, &d), KC_EIO,
                  "/nonexistent/kerac/a.npy");
    KC_EXPECT_ERR(kc_data_load("imagenet", NULL, &d), KC_EINVAL, "unknown SPEC \"imagenet\"");
    KC_EXPECT_ERR(kc_data_load(FIX "x_f4.npy:test", NULL, &d), KC_EINVAL, ":train or :test");
    kc_data_opts o = {.validation_split = 0.5};
    KC_EXPECT_ERR(kc_data_load(FIX "x_f4.npy", &o, &d), KC_EINVAL, "subset");
}

Test(spec, validation_split_of_arrays) {
    kc_data_opts o = {.validation_split = 0.25, .subset = "validation"};
    kc_dataset d;
    KC_CHECK(kc_data_load(FIX "x_f4.npy," FIX "y_i8.npy", &o, &d)); /* fit: the last 1 of 4 */
    cr_assert(d.count == 1 && ((float *)d.x)[0] == 9 / 4.0f && ((int32_t *)d.y)[0] == 2);
    kc_dataset_free(&d);
    o.subset = "training";
    KC_CHECK(kc_data_load(FIX "x_f4.npy," FIX "y_i8.npy", &o, &d));
    cr_assert(d.count == 3 && ((float *)d.x)[0] == 0.0f);
    kc_dataset_free(&d);
}

/* ---- CSV --------------------------------------------------------------------------------------- */

Test(csv, class_labels) {
    char *dir = tu_tmpdir(), p[PATH_MAX];
    write_text(path_in(p, dir, "a.csv"), "a, b ,label\n1,2,0\n3.5,-4e1,2\r\n\n5,6,1\n");
    kc_dataset d;
    KC_CHECK(kc_data_load(p, NULL, &d));
    cr_assert(d.count == 3 && d.x_dtype == KC_FLOAT32 && d.x_shape.rank == 1 && d.x_shape.dims[0] == 2);
    float want[6] = {1, 2, 3.5f, -40, 5, 6};
    cr_assert_arr_eq(d.x, want, sizeof want);
    int32_t labels[3] = {0, 2, 1};
    cr_assert(d.y_dtype == KC_INT32 && d.num_classes == 3);
    cr_assert_arr_eq(d.y, labels, sizeof labels);
    kc_dataset_free(&d);
    kc_data_opts o = {.label_column = "0"}; /* by index: column a */
    KC_CHECK(kc_data_load(p, &o, &d));
    cr_assert(d.y_dtype == KC_FLOAT32 && d.y_shape.dims[0] == 1 && ((float *)d.y)[1] == 3.5f);
    cr_assert(((float *)d.x)[0] == 2 && ((float *)d.x)[1] == 0);
    kc_dataset_free(&d);
    o.label_column = "b"; /* by name: negative values, float targets */
    KC_CHECK(kc_data_load(p, &o, &d));
    cr_assert(d.y_dtype == KC_FLOAT32 && ((float *)d.y)[1] == -40);
    kc_dataset_free(&d);
    o.label_column = "-1";
    KC_CHECK(kc_data_load(p, &o, &d));
    cr_assert(d.y_dtype == KC_INT32 && ((int32_t *)d.y)[1] == 2);
    kc_dataset_free(&d);
    o.label_column = "nope";
    KC_EXPECT_ERR(kc_data_load(p, &o, &d), KC_EINVAL, "label column \"nope\"");
}

Test(csv, last_column_without_label_header) {
    char *dir = tu_tmpdir(), p[PATH_MAX];
    write_text(path_in(p, dir, "b.csv"), "x1,x2,target\n0.5,1,0.25\n1.5,2,0.75");
    kc_dataset d;
    KC_CHECK(kc_data_load(p, NULL, &d));
    cr_assert(d.count == 2 && d.y_dtype == KC_FLOAT32 && ((float *)d.y)[1] == 0.75f);
    kc_dataset_free(&d);
}

Test(csv, refusals) {
    char *dir = tu_tmpdir(), p[PATH_MAX], msg[PATH_MAX + 64];
    kc_dataset d;
    write_text(path_in(p, dir, "bad.csv"), "a,b,label\n1,2,0\n3,x7,1\n");
    snprintf(msg, sizeof msg, "%s: line 3, column \"b\": \"x7\" is not a number", p);
    KC_EXPECT_ERR(kc_data_load(p, NULL, &d), KC_EFORMAT, msg);
    write_text(p, "a,b,label\n1,2,0\n3,,1\n");
    KC_EXPECT_ERR(kc_data_load(p, NULL, &d), KC_EFORMAT, "line 3, column \"b\": an empty cell");
    write_text(p, "a,b,label\n1,2,0\n3,4\n");
    KC_EXPECT_ERR(kc_data_load(p, NULL, &d), KC_EFORMAT, "line 3: 2 columns, the header has 3");
    write_text(p, "a,b,label\n1,2,0,9\n");
    KC_EXPECT_ERR(kc_data_load(p, NULL, &d), KC_EFORMAT, "line 2: more than the header's 3 columns");
    write_text(p, "a,b,label\n1,2,0x10\n");
    KC_EXPECT_ERR(kc_data_load(p, NULL, &d), KC_EFORMAT, "line 2, column \"label\": \"0x10\" is not a number");
    write_text(p, "a,b,label\n");
    KC_EXPECT_ERR(kc_data_load(p, NULL, &d), KC_EFORMAT, "no data rows");
    cr_assert(d.x == NULL);
}

/* ---- images -------------------------------------------------------------------------------------- */

typedef struct {
    char file[32], mode[16];
    int h, w, c;
    double v[1024];
} expected_image;

static int read_expected(expected_image *e, int max) {
    FILE *f = fopen(FIX "images_expected.txt", "r");
    cr_assert_not_null(f);
    char line[16384];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        if (line[0] == '#') continue;
        char *p = line;
        int used;
        cr_assert_eq(sscanf(p, "%31s %15s %d %d %d%n", e[n].file, e[n].mode, &e[n].h, &e[n].w, &e[n].c, &used), 5);
        p += used;
        int count = e[n].h * e[n].w * e[n].c;
        cr_assert(count <= 1024);
        for (int i = 0; i < count; i++) {
            cr_assert_eq(sscanf(p, "%lf%n", &e[n].v[i], &used), 1);
            p += used;
        }
        n++;
    }
    fclose(f);
    return n;
}

Test(image, decode_against_pillow_and_keras_resize) {
    static expected_image e[32];
    int n = read_expected(e, 32);
    cr_assert_eq(n, 27);
    for (int k = 0; k < n; k++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, FIX "%.31s", e[k].file);
        int resize = !strcmp(e[k].mode, "resize");
        int channels = !strcmp(e[k].mode, "grayscale") ? 1 : 3;
        kc_image img;
        KC_CHECK(kc_image_load(path, channels, resize ? e[k].h : 0, resize ? e[k].w : 0, &img));
        cr_assert(img.height == e[k].h && img.width == e[k].w && img.channels == e[k].c,
                  "%s %s: %dx%dx%d, want %dx%dx%d", e[k].file, e[k].mode, img.height, img.width,
                  img.channels, e[k].h, e[k].w, e[k].c);
        for (int i = 0; i < e[k].h * e[k].w * e[k].c; i++) /* uint8 within 1; resize: rounded */
            cr_assert(fabs(img.data[i] - e[k].v[i]) <= (resize ? 0.501 : 1.0), "%s %s value %d: %d, want %g",
                      e[k].file, e[k].mode, i, img.data[i], e[k].v[i]);
        kc_image_free(&img);
    }
}

Test(image, channels_kept_and_converted) {
    kc_image img;
    KC_CHECK(kc_image_load(FIX "rgba.png", 0, 0, 0, &img));
    cr_assert(img.channels == 4 && img.height == 4 && img.width == 3);
    uint8_t alpha = img.data[3];
    kc_image_free(&img);
    KC_CHECK(kc_image_load(FIX "rgba.png", 4, 0, 0, &img));
    cr_assert(img.channels == 4 && img.data[3] == alpha);
    kc_image_free(&img);
    KC_CHECK(kc_image_load(FIX "gray.png", 0, 0, 0, &img));
    cr_assert(img.channels == 1 && img.height == 6 && img.width == 4);
    kc_image_free(&img);
    KC_CHECK(kc_image_load(FIX "gray.pgm", 3, 0, 0, &img));
    cr_assert(img.channels == 3 && img.data[0] == img.data[1] && img.data[1] == img.data[2]);
    kc_image_free(&img);
}

Test(image, refusals_name_the_file) {
    kc_image img;
    KC_EXPECT_ERR(kc_image_load(FIX "broken.png", 3, 0, 0, &img), KC_EFORMAT, FIX "broken.png: not a valid PNG");
    cr_assert_null(img.data);
    KC_EXPECT_ERR(kc_image_load(FIX "x_f4.npy", 3, 0, 0, &img), KC_EFORMAT, FIX "x_f4.npy: not an image");
    KC_EXPECT_ERR(kc_image_load("/nonexistent/kerac.png", 3, 0, 0, &img), KC_EIO, "/nonexistent/kerac.png");
    KC_EXPECT_ERR(kc_image_load(FIX "rgb.png", 2, 0, 0, &img), KC_EINVAL, "channels");
    char *dir = tu_tmpdir(), p[PATH_MAX];
    uint8_t jpeg_start[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0};
    tu_write_file(path_in(p, dir, "cut.jpg"), jpeg_start, sizeof jpeg_start);
    KC_EXPECT_ERR(kc_image_load(p, 3, 0, 0, &img), KC_EFORMAT, "cut.jpg: not a valid JPEG");
    write_text(path_in(p, dir, "short.pgm"), "P5 4 4 255\nabc");
    KC_EXPECT_ERR(kc_image_load(p, 0, 0, 0, &img), KC_EFORMAT,
                  "short.pgm: not a valid PGM/PPM: 4x4 pixels do not fit in its 3 bytes");
    /* a BMP whose rows are not in the file is refused before its pixels are allocated */
    uint8_t bmp[54] = {'B', 'M'};
    bmp[10] = 54, bmp[14] = 40, bmp[18] = 0x10, bmp[19] = 0x27; /* 10000 wide */
    bmp[22] = 0x10, bmp[23] = 0x27, bmp[26] = 1, bmp[28] = 24;  /* 10000 high, 24 bits */
    tu_write_file(path_in(p, dir, "huge.bmp"), bmp, sizeof bmp);
    KC_EXPECT_ERR(kc_image_load(p, 0, 0, 0, &img), KC_EFORMAT,
                  "huge.bmp: not a valid BMP: 10000 rows of 30000 bytes from byte 54 do not fit");
}

Test(image, ascii_pnm_and_maxval) {
    char *dir = tu_tmpdir(), p[PATH_MAX];
    write_text(path_in(p, dir, "a.pgm"), "P2\n# a comment\n3 1\n255\n0 10 255\n");
    kc_image img;
    KC_CHECK(kc_image_load(p, 0, 0, 0, &img));
    cr_assert(img.height == 1 && img.width == 3 && img.channels == 1 && img.data[1] == 10 && img.data[2] == 255);
    kc_image_free(&img);
    write_text(path_in(p, dir, "a.ppm"), "P3 1 1 15\n15 0 7\n"); /* scaled to 0..255 */
    KC_CHECK(kc_image_load(p, 0, 0, 0, &img));
    cr_assert(img.channels == 3 && img.data[0] == 255 && img.data[1] == 0 && img.data[2] == 119);
    kc_image_free(&img);
    write_text(p, "P3 1 1 15\n15 0 16\n");
    KC_EXPECT_ERR(kc_image_load(p, 0, 0, 0, &img), KC_EFORMAT, "a.ppm: not a valid PGM/PPM: sample 2");
    write_text(p, "P6 1 1 65535\n");
    KC_EXPECT_ERR(kc_image_load(p, 0, 0, 0, &img), KC_EFORMAT, "only 8-bit");
}

Test(image, png_round_trip_atomic) {
    char *dir = tu_tmpdir(), p[PATH_MAX];
    for (int c = 1; c <= 4; c++) {
        uint8_t data[5 * 7 * 4];
        for (int i = 0; i < 5 * 7 * c; i++) data[i] = (uint8_t)(i * 37 + c);
        kc_image img = {5, 7, c, data}, back;
        KC_CHECK(kc_image_save_png(path_in(p, dir, "r.png"), &img));
        KC_CHECK(kc_image_load(p, 0, 0, 0, &back));
        int want_c = c == 2 ? 4 : c; /* gray + alpha reads back as RGBA */
        cr_assert(back.height == 5 && back.width == 7 && back.channels == want_c);
        for (int i = 0; i < 35; i++)
            for (int k = 0; k < want_c; k++) {
                int src = c == 2 ? (k < 3 ? data[i * 2] : data[i * 2 + 1]) : data[i * c + k];
                cr_assert_eq(back.data[i * want_c + k], src);
            }
        kc_image_free(&back);
    }
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir); /* no temp file left */
    cr_assert_eq(system(cmd), 0);
    kc_image bad = {5, 7, 3, NULL};
    KC_EXPECT_ERR(kc_image_save_png(p, &bad), KC_EINVAL, "kc_image_save_png");
    uint8_t px[3] = {0};
    kc_image one = {1, 1, 3, px};
    KC_EXPECT_ERR(kc_image_save_png("/nonexistent/kerac/x.png", &one), KC_EIO, "/nonexistent/kerac/x.png");
}

/* ---- image folders ------------------------------------------------------------------------------- */

Test(folder, keras_order_split_and_seed) {
    FILE *f = fopen(FIX "folder_expected.txt", "r");
    cr_assert_not_null(f);
    char line[4096];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        unsigned seed;
        int shuffle, used;
        double split;
        char subset[16];
        cr_assert_eq(sscanf(line, "%u %d %lf %15s :%n", &seed, &shuffle, &split, subset, &used), 4);
        kc_data_opts o = {.image_height = 3, .image_width = 2, .seed = seed, .has_seed = 1,
                          .shuffle = shuffle ? 0 : KC_ZERO, .validation_split = split,
                          .subset = strcmp(subset, "-") ? subset : NULL};
        kc_dataset d;
        kc_data_info info;
        KC_CHECK(kc_data_load_ex(FIX "folder", &o, &d, &info));
        cr_assert(info.num_classes == 3 && !strcmp(info.class_names[0], "ant") &&
                  !strcmp(info.class_names[2], "dog"));
        cr_assert(d.x_dtype == KC_UINT8 && d.x_shape.rank == 3 && d.x_shape.dims[0] == 3 &&
                  d.x_shape.dims[1] == 2 && d.x_shape.dims[2] == 3 && d.y_dtype == KC_INT32);
        char *p = line + used, *tok;
        int64_t i = 0;
        while ((tok = strtok_r(p, " \n", &p)) && strcmp(tok, ":")) {
            cr_assert(i < d.count, "case %d: more files expected than %" PRId64, cases, d.count);
            const char *got = info.paths[i] + strlen(FIX "folder/");
            cr_assert_str_eq(got, tok, "case %d file %" PRId64, cases, i);
            i++;
        }
        cr_assert_eq(i, d.count, "case %d", cases);
        for (i = 0; i < d.count; i++) {
            tok = strtok_r(p, " \n", &p);
            cr_assert(tok && atoi(tok) == ((int32_t *)d.y)[i], "case %d label %" PRId64, cases, i);
        }
        kc_dataset_free(&d);
        kc_data_info_free(&info);
        cases++;
    }
    fclose(f);
    cr_assert_eq(cases, 5);
}

Test(folder, pixels_resize_and_color_mode) {
    /* unshuffled, the first file is ant/p.png: filled with 8 * 20, pixel (0, 0) = (8, 247, 7) */
    kc_data_opts o = {.image_height = 3, .image_width = 2, .shuffle = KC_ZERO};
    kc_dataset d;
    KC_CHECK(kc_data_load(FIX "folder", &o, &d));
    uint8_t *x = d.x;
    cr_assert(d.count == 11 && x[0] == 8 && x[1] == 247 && x[2] == 7 && x[3] == 160 && x[17] == 160);
    kc_dataset_free(&d);
    o.channels = 1;
    o.image_height = o.image_width = 0; /* Keras's 256x256 */
    KC_CHECK(kc_data_load(FIX "folder", &o, &d));
    cr_assert(d.x_shape.dims[0] == 256 && d.x_shape.dims[1] == 256 && d.x_shape.dims[2] == 1);
    cr_assert_eq(((uint8_t *)d.x)[256 * 256 - 1], 160);
    kc_dataset_free(&d);
    kc_data_opts split = {.validation_split = 0.2, .subset = "training"};
    KC_EXPECT_ERR(kc_data_load(FIX "folder", &split, &d), KC_EINVAL, "give a seed");
}

Test(folder, broken_image_named) {
    char *dir = tu_tmpdir(), p[PATH_MAX];
    mkdir(path_in(p, dir, "a"), 0755);
    mkdir(path_in(p, dir, "b"), 0755);
    uint8_t px[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    kc_image img = {2, 2, 3, px};
    KC_CHECK(kc_image_save_png(path_in(p, dir, "a/ok.png"), &img));
    KC_CHECK(kc_image_save_png(path_in(p, dir, "b/ok.png"), &img));
    write_text(path_in(p, dir, "b/bad.jpg"), "not a jpeg");
    kc_data_opts o = {.image_height = 2, .image_width = 2};
    kc_dataset d;
    KC_EXPECT_ERR(kc_data_load(dir, &o, &d), KC_EFORMAT, p);
    cr_assert(d.x == NULL);
    /* two bad files, decoded in parallel: the first in the dataset's order is named */
    char p2[PATH_MAX];
    write_text(path_in(p2, dir, "b/bad2.png"), "not a png either");
    kc_data_opts unshuffled = {.image_height = 2, .image_width = 2, .shuffle = KC_ZERO};
    for (int rep = 0; rep < 5; rep++)
        KC_EXPECT_ERR(kc_data_load(dir, &unshuffled, &d), KC_EFORMAT, "b/bad.jpg: not an image kerac decodes");
    unlink(p2);
    unlink(p);
    KC_CHECK(kc_data_load(dir, &o, &d)); /* same size: the pixels exactly */
    cr_assert(d.count == 2 && d.num_classes == 2 && !memcmp(d.x, px, 12));
    kc_dataset_free(&d);
}

/* ---- IDX folders and MNIST ------------------------------------------------------------------------- */

static void write_idx(const char *path, int rank, const int *dims, const uint8_t *data) {
    uint8_t buf[256] = {0, 0, 8, (uint8_t)rank};
    size_t n = 4, size = 1;
    for (int i = 0; i < rank; i++) {
        buf[n + 2] = (uint8_t)(dims[i] >> 8), buf[n + 3] = (uint8_t)dims[i];
        n += 4;
        size *= (size_t)dims[i];
    }
    memcpy(buf + n, data, size);
    tu_write_file(path, buf, n + size);
}

Test(spec, idx_folder) {
    char *dir = tu_tmpdir(), p[PATH_MAX], spec[PATH_MAX];
    uint8_t img[3 * 2 * 2], lab[3] = {4, 0, 2};
    for (int i = 0; i < 12; i++) img[i] = (uint8_t)i;
    write_idx(path_in(p, dir, "train-images-idx3-ubyte"), 3, (int[]){3, 2, 2}, img);
    write_idx(path_in(p, dir, "train-labels-idx1-ubyte"), 1, (int[]){3}, lab);
    write_idx(path_in(p, dir, "t10k-images-idx3-ubyte"), 3, (int[]){1, 2, 2}, img + 8);
    write_idx(path_in(p, dir, "t10k-labels-idx1-ubyte"), 1, (int[]){2}, lab);
    kc_dataset d;
    KC_CHECK(kc_data_load(dir, NULL, &d));
    cr_assert(d.count == 3 && d.x_dtype == KC_UINT8 && d.x_shape.rank == 2 && d.num_classes == 5);
    cr_assert(((uint8_t *)d.x)[11] == 11 && ((uint8_t *)d.y)[0] == 4);
    kc_dataset_free(&d);
    snprintf(spec, sizeof spec, "%s:test", dir);
    KC_EXPECT_ERR(kc_data_load(spec, NULL, &d), KC_EFORMAT, "x and y counts differ");
}

Test(spec, mnist_real) {
    const char *data = getenv("KERAC_DATA");
    if (!data || !data[0]) cr_skip_test("KERAC_DATA is not set");
    kc_dataset d;
    kc_data_info info;
    KC_CHECK(kc_data_load_ex("mnist:test", NULL, &d, &info));
    cr_assert(d.count == 10000 && ((uint8_t *)d.y)[0] == 7 && info.num_classes == 10);
    cr_assert_str_eq(info.class_names[9], "9");
    kc_dataset_free(&d);
    kc_data_info_free(&info);
}

/* ---- CIFAR-10 -------------------------------------------------------------------------------------- */

/* a .tar.gz of the members (name, records), each record's label r % 10 and pixel bytes
 * (r * 7 + i) & 255; a short final record when cut */
static void write_cifar(const char *path, const char *const *names, const int *records, int n, int cut) {
    gzFile f = gzopen(path, "wb");
    cr_assert_not_null(f);
    for (int m = 0; m < n; m++) {
        size_t size = (size_t)records[m] * 3073 - (m == n - 1 ? (size_t)cut : 0);
        uint8_t hdr[512] = {0};
        snprintf((char *)hdr, 100, "cifar-10-batches-bin/%s", names[m]);
        snprintf((char *)hdr + 100, 8, "0000644");
        snprintf((char *)hdr + 108, 8, "0000000");
        snprintf((char *)hdr + 116, 8, "0000000");
        snprintf((char *)hdr + 124, 12, "%011o", (unsigned)size);
        snprintf((char *)hdr + 136, 12, "%011o", 0u);
        hdr[156] = '0';
        memcpy(hdr + 257, "ustar", 6);
        memset(hdr + 148, ' ', 8);
        unsigned sum = 0;
        for (int i = 0; i < 512; i++) sum += hdr[i];
        snprintf((char *)hdr + 148, 8, "%06o", sum);
        gzwrite(f, hdr, 512);
        uint8_t *body = calloc(1, (size + 511) / 512 * 512 + 1);
        for (int r = 0; r < records[m]; r++)
            for (int i = 0; i < 3073 && (size_t)r * 3073 + i < size; i++)
                body[(size_t)r * 3073 + i] = i == 0 ? (uint8_t)((r + m) % 10) : (uint8_t)((r * 7 + i) & 255);
        gzwrite(f, body, (unsigned)((size + 511) / 512 * 512));
        free(body);
    }
    uint8_t end[1024] = {0};
    gzwrite(f, end, sizeof end);
    gzclose(f);
}

static const char *const cifar_names[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
static const int cifar_records[6] = {2, 1, 1, 1, 1, 3};

Test(cifar, archive_to_hwc) {
    char *dir = tu_tmpdir(), p[PATH_MAX];
    write_cifar(path_in(p, dir, "c.tar.gz"), cifar_names, cifar_records, 6, 0);
    kc_dataset d;
    KC_CHECK(kc_cifar10_read_archive(p, 0, &d));
    cr_assert(d.count == 6 && d.x_dtype == KC_UINT8 && d.x_shape.rank == 3 && d.x_shape.dims[0] == 32 &&
              d.x_shape.dims[1] == 32 && d.x_shape.dims[2] == 3 && d.num_classes == 10);
    uint8_t *x = d.x;
    /* sample 1: batch 1's record 1; pixel (row 2, col 5), channel k = byte 1 + k * 1024 + 2 * 32 + 5 */
    for (int k = 0; k < 3; k++)
        cr_assert_eq(x[3072 + (2 * 32 + 5) * 3 + k], (uint8_t)((7 + 1 + k * 1024 + 69) & 255));
    uint8_t labels[6] = {0, 1, 1, 2, 3, 4}; /* (record + member) % 10 */
    cr_assert_arr_eq(d.y, labels, 6);
    kc_dataset_free(&d);
    KC_CHECK(kc_cifar10_read_archive(p, 1, &d));
    cr_assert(d.count == 3 && ((uint8_t *)d.y)[2] == 7);
    kc_dataset_free(&d);
    write_cifar(p, cifar_names, cifar_records, 5, 0); /* no test batch */
    KC_EXPECT_ERR(kc_cifar10_read_archive(p, 1, &d), KC_EFORMAT, "has no test_batch.bin");
    write_cifar(p, cifar_names, cifar_records, 6, 100);
    KC_EXPECT_ERR(kc_cifar10_read_archive(p, 1, &d), KC_EFORMAT, "not a whole number of 3073-byte");
    write_text(p, "garbage that is not a tar");
    KC_EXPECT_ERR(kc_cifar10_read_archive(p, 0, &d), KC_EFORMAT, "not a valid tar");
}

Test(cifar, verified_download_and_cache) {
    char *src = tu_tmpdir(), *cache = tu_tmpdir(), p[PATH_MAX], url[PATH_MAX + 16], hex[65], cached[PATH_MAX];
    write_cifar(path_in(p, src, "cifar-10-binary.tar.gz"), cifar_names, cifar_records, 6, 0);
    KC_CHECK(kc_sha256_file(p, hex));
    snprintf(url, sizeof url, "file://%s", p);
    kc_dataset d;
    KC_EXPECT_ERR(kc_cifar10_load_from(cache, url, "00000000000000000000000000000000", 1, &d), KC_ENET,
                  "did not verify");
    cr_assert_neq(access(path_in(cached, cache, "cifar-10-binary.tar.gz"), F_OK), 0);
    KC_CHECK(kc_cifar10_load_from(cache, url, hex, 1, &d));
    cr_assert_eq(d.count, 3);
    kc_dataset_free(&d);
    cr_assert_eq(access(cached, F_OK), 0);
    unlink(p); /* now served from the cache */
    KC_CHECK(kc_cifar10_load_from(cache, url, hex, 0, &d));
    cr_assert_eq(d.count, 6);
    kc_dataset_free(&d);
}

Test(cifar, spec_through_kerac_data) {
    char *root = tu_tmpdir(), p[PATH_MAX];
    mkdir(path_in(p, root, "cifar10"), 0755);
    write_cifar(path_in(p, root, "cifar10/cifar-10-binary.tar.gz"), cifar_names, cifar_records, 6, 0);
    char *saved = getenv("KERAC_DATA") ? strdup(getenv("KERAC_DATA")) : NULL;
    setenv("KERAC_DATA", root, 1);
    kc_dataset d;
    kc_data_info info;
    kc_status st = kc_data_load_ex("cifar10:test", NULL, &d, &info);
    if (saved) setenv("KERAC_DATA", saved, 1);
    else unsetenv("KERAC_DATA");
    free(saved);
    cr_assert_eq(st, KC_OK, "%s", kc_last_error());
    cr_assert(d.count == 3 && info.num_classes == 10 && !strcmp(info.class_names[1], "automobile"));
    kc_dataset_free(&d);
    kc_data_info_free(&info);
}
