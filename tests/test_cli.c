/* test_cli.c: the kerac program (cli/), run as a user runs it: its output, exit status (0, 1,
 * 2, 130) and files. Fixtures: tests/gen_cli_fixtures.py (Keras 3) and the tf.keras 2 summaries
 * of tests/fixtures/functional. Tests that train need MNIST ($KERAC_DATA). */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <zlib.h>

#include "testutil.h"

#ifndef KERAC_BIN
#define KERAC_BIN "build/kerac"
#endif
#ifndef MNIST_MLP_BIN
#define MNIST_MLP_BIN "build/mnist_mlp"
#endif
#define FIX "tests/fixtures/cli/"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    cr_assert_not_null(s);
    s[fread(s, 1, (size_t)n, f)] = 0;
    fclose(f);
    return s;
}

/* Runs `kerac ARGS` (a shell command line); *out and *err (malloc'd, optional) get what it
 * printed; returns its exit status */
static int kerac(const char *args, char **out, char **err) {
    char *dir = tu_tmpdir(), cmd[4096], o[64], e[64];
    snprintf(o, sizeof o, "%s/out", dir);
    snprintf(e, sizeof e, "%s/err", dir);
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", KERAC_BIN, args, o, e);
    int st = system(cmd);
    cr_assert(WIFEXITED(st), "%s did not exit", cmd);
    if (out) *out = slurp(o);
    if (err) *err = slurp(e);
    unlink(o), unlink(e), rmdir(dir);
    return WEXITSTATUS(st);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int have_mnist(void) {
    const char *d = getenv("KERAC_DATA");
    return d && d[0];
}

Test(cli, help_and_usage_errors) {
    char *out, *err;
    cr_expect_eq(kerac("--help", &out, NULL), 0);
    cr_expect(strstr(out, "summary") && strstr(out, "convert"), "%s", out);
    free(out);
    const char *cmds[] = {"summary", "train", "evaluate", "predict", "convert"};
    for (int i = 0; i < 5; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        cr_expect_eq(kerac(a, &out, NULL), 0, "%s", a);
        cr_expect(strstr(out, "usage: kerac ") != NULL, "%s: %s", a, out);
        free(out);
    }
    cr_expect_eq(kerac("", NULL, NULL), 2);
    cr_expect_eq(kerac("frobnicate", NULL, &err), 2);
    cr_expect(strstr(err, "unknown command 'frobnicate'") != NULL, "%s", err);
    free(err);
    cr_expect_eq(kerac("summary mlp2 --wat", NULL, &err), 2);
    cr_expect(strstr(err, "unknown option '--wat'") != NULL, "%s", err);
    free(err);
    cr_expect_eq(kerac("train mlp2 --data mnist --epochs two", NULL, &err), 2);
    cr_expect(strstr(err, "--epochs") && strstr(err, "'two'"), "%s", err);
    free(err);
    cr_expect_eq(kerac("train mlp2 --data mnist --learning-rate -1", NULL, &err), 2);
    cr_expect(strstr(err, "--learning-rate") && strstr(err, "'-1'"), "%s", err);
    free(err);
    cr_expect_eq(kerac("train mlp2 --data", NULL, &err), 2);
    cr_expect(strstr(err, "'--data' needs a value") != NULL, "%s", err);
    free(err);
    cr_expect_eq(kerac("train mlp2", NULL, &err), 2);
    cr_expect(strstr(err, "--data") != NULL, "%s", err);
    free(err);
    cr_expect_eq(kerac("train mlp2 --data mnist --loss nonsense", NULL, &err), 2);
    cr_expect(strstr(err, "'nonsense'") != NULL, "%s", err);
    free(err);
    cr_expect_eq(kerac("train " FIX "mlp.json --data mnist --optimizer adamm", NULL, &err), 2);
    cr_expect(strstr(err, "--optimizer") && strstr(err, "'adamm'"), "%s", err);
    free(err);
    cr_expect_eq(kerac("predict " FIX "digits.keras " FIX "test8.npy --top 0", NULL, &err), 2);
    cr_expect(strstr(err, "--top") != NULL, "%s", err);
    free(err);
    cr_expect_eq(kerac("convert mlp2", NULL, NULL), 2);
}

Test(cli, failures_name_the_file) {
    char *err;
    cr_expect_eq(kerac("summary no/such/model.keras", NULL, &err), 1);
    cr_expect(strstr(err, "no/such/model.keras") != NULL, "%s", err);
    free(err);
    cr_expect_eq(kerac("predict " FIX "digits.keras missing.npy", NULL, &err), 1);
    cr_expect(strstr(err, "missing.npy") != NULL, "%s", err);
    free(err);
    cr_expect_eq(kerac("predict " FIX "digits.keras " FIX "photo.png", NULL, &err), 1);
    cr_expect(strstr(err, "photo.png") != NULL, "%s", err);
    free(err);
    cr_expect_eq(kerac("train mlp2 --data nosuchspec", NULL, &err), 1);
    cr_expect(strstr(err, "unknown SPEC \"nosuchspec\"") != NULL, "%s", err);
    free(err);
    cr_expect_eq(kerac("predict " FIX "digits.keras " FIX "mlp.json", NULL, &err), 1);
    free(err);
    if (have_mnist()) {
        cr_expect_eq(kerac("train tests/fixtures/functional/residual_cnn.tf2.json --data mnist "
                           "--limit 10", NULL, &err), 1);
        cr_expect(strstr(err, "(28, 28) (784 values) do not fit the model's input (8, 8, 1)"),
                  "%s", err);
        free(err);
    }
}

/* kerac summary prints what tf.keras 2's model.summary() prints, from a .json and a .keras */
Test(cli, summary_matches_keras) {
    const char *names[] = {"residual_cnn", "two_inputs", "nested_sequential"};
    for (int i = 0; i < 3; i++) {
        char a[256], want_path[256], *out;
        snprintf(want_path, sizeof want_path, "tests/fixtures/functional/%s.tf2_summary.txt",
                 names[i]);
        char *want = slurp(want_path);
        snprintf(a, sizeof a, "summary tests/fixtures/functional/%s.tf2.json", names[i]);
        cr_expect_eq(kerac(a, &out, NULL), 0, "%s", a);
        cr_expect_str_eq(out, want, "%s", a);
        free(out);
        snprintf(a, sizeof a, "summary tests/fixtures/functional/%s.keras", names[i]);
        cr_expect_eq(kerac(a, &out, NULL), 0, "%s", a);
        cr_expect_str_eq(out, want, "%s", a);
        free(out);
        free(want);
    }
    char *out;
    cr_expect_eq(kerac("summary mlp2", &out, NULL), 0);
    cr_expect(strstr(out, "Total params: 669,706") != NULL, "%s", out);
    free(out);
}

/* Keras's own predictions of its digits.keras (input (28, 28), sparse loss), from .npy and .csv */
Test(cli, predict_matches_keras) {
    char *want = slurp(FIX "test8.txt"), *out;
    int label[8], cls[8];
    float prob[8];
    const char *p = strchr(want, '\n') + 1;
    for (int i = 0; i < 8; i++) {
        int n;
        cr_assert_eq(sscanf(p, "%d %d %f%n", &label[i], &cls[i], &prob[i], &n), 3);
        p += n;
    }
    const char *inputs[] = {FIX "test8.npy", FIX "test8.csv"};
    for (int f = 0; f < 2; f++) {
        char a[256];
        snprintf(a, sizeof a, "predict " FIX "digits.keras %s", inputs[f]);
        cr_assert_eq(kerac(a, &out, NULL), 0, "%s", a);
        const char *line = out;
        for (int i = 0; i < 8; i++) {
            char name[128];
            int c;
            float pr;
            cr_assert_eq(sscanf(line, "%127s %d %f", name, &c, &pr), 3, "%s", out);
            char want_name[160];
            snprintf(want_name, sizeof want_name, "%s[%d]", inputs[f], i);
            cr_expect_str_eq(name, want_name);
            cr_expect_eq(c, cls[i], "%s: image %d", inputs[f], i);
            cr_expect_eq(c, label[i]);
            cr_expect(fabsf(pr - prob[i]) < 2e-5f, "%s %d: %f vs Keras's %f", inputs[f], i, pr,
                      prob[i]);
            line = strchr(line, '\n') + 1;
        }
        free(out);
    }
    /* --top 3 and --output */
    char *dir = tu_tmpdir(), a[512];
    snprintf(a, sizeof a, "predict " FIX "digits.keras " FIX "test8.npy --top 3 --output %s/p.csv",
             dir);
    cr_assert_eq(kerac(a, &out, NULL), 0);
    char first[64];
    snprintf(first, sizeof first, "[0] %d:", cls[0]);
    cr_expect(strstr(out, first) != NULL, "%s", out);
    free(out);
    char path[256];
    snprintf(path, sizeof path, "%s/p.csv", dir);
    char *csv = slurp(path);
    int rows = 0;
    for (const char *c = csv; *c; c++) rows += *c == '\n';
    cr_expect_eq(rows, 8);
    free(csv);
    unlink(path);
    rmdir(dir);
    free(want);
}

/* .keras -> .h5 -> .keras gives the same predictions; -> .json the same summary; a failed
 * conversion leaves nothing */
Test(cli, convert_round_trips) {
    char *dir = tu_tmpdir(), a[1024], *p0, *p1, *s0, *s1, *err;
    snprintf(a, sizeof a, "convert " FIX "digits.keras %s/d.h5", dir);
    cr_assert_eq(kerac(a, NULL, NULL), 0);
    snprintf(a, sizeof a, "convert %s/d.h5 %s/d.keras", dir, dir);
    cr_assert_eq(kerac(a, NULL, NULL), 0);
    snprintf(a, sizeof a, "convert %s/d.keras %s/d.json", dir, dir);
    cr_assert_eq(kerac(a, NULL, NULL), 0);
    snprintf(a, sizeof a, "convert %s/d.keras %s/d.weights.h5", dir, dir);
    cr_assert_eq(kerac(a, NULL, NULL), 0);
    cr_assert_eq(kerac("predict " FIX "digits.keras " FIX "test8.npy --top 10", &p0, NULL), 0);
    snprintf(a, sizeof a, "predict %s/d.keras " FIX "test8.npy --top 10", dir);
    cr_assert_eq(kerac(a, &p1, NULL), 0);
    cr_expect_str_eq(p0, p1);
    cr_assert_eq(kerac("summary " FIX "digits.keras", &s0, NULL), 0);
    snprintf(a, sizeof a, "summary %s/d.json", dir);
    cr_assert_eq(kerac(a, &s1, NULL), 0);
    cr_expect_str_eq(s0, s1);
    /* the weights file loads into the model of the .json */
    kc_model *m;
    snprintf(a, sizeof a, "%s/d.json", dir);
    char *json = slurp(a);
    KC_CHECK(kc_model_from_json(json, &m));
    snprintf(a, sizeof a, "%s/d.weights.h5", dir);
    KC_CHECK(kc_load_weights(m, a));
    kc_model_free(m);
    free(json);
    /* failures write nothing */
    snprintf(a, sizeof a, "convert " FIX "digits.keras %s/no/such/dir/x.keras", dir);
    cr_expect_eq(kerac(a, NULL, &err), 1);
    free(err);
    snprintf(a, sizeof a, "convert " FIX "missing.keras %s/x.json", dir);
    cr_expect_eq(kerac(a, NULL, &err), 1);
    cr_expect(strstr(err, "missing.keras") != NULL, "%s", err);
    free(err);
    snprintf(a, sizeof a, "%s/x.json", dir);
    cr_expect(!exists(a));
    chmod(dir, 0500);
    snprintf(a, sizeof a, "convert " FIX "digits.keras %s/ro.json", dir);
    int rc = kerac(a, NULL, NULL);
    snprintf(a, sizeof a, "convert " FIX "digits.keras %s/ro.keras", dir);
    int rc2 = kerac(a, NULL, NULL);
    chmod(dir, 0700);
    if (geteuid() != 0) { /* root writes anyway */
        cr_expect_eq(rc, 1);
        cr_expect_eq(rc2, 1);
    }
    free(p0), free(p1), free(s0), free(s1);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

/* the numbers of the epoch lines ("loss: 0.2561"...), without the timings */
static char *epoch_numbers(const char *out) {
    size_t cap = strlen(out) + 1, n = 0;
    char *r = calloc(cap, 1);
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *step = strstr(l, "/step");
        const char *eol = strchr(l, '\n');
        if (!step || (eol && step > eol)) continue;
        const char *nums = step + 5;
        size_t len = eol ? (size_t)(eol - nums) : strlen(nums);
        memcpy(r + n, nums, len);
        n += len;
        r[n++] = '\n';
    }
    return r;
}

/* kerac train mlp2 prints the numbers build/mnist_mlp --hidden 2 prints (same seed) */
Test(cli, train_mlp2_equals_mnist_mlp, .timeout = 300) {
    if (!have_mnist()) cr_skip_test("KERAC_DATA is not set");
    char *out, *dir = tu_tmpdir(), cmd[512], path[256];
    cr_assert_eq(kerac("train mlp2 --data mnist --epochs 1 --seed 7 --verbose 2", &out, NULL), 0);
    snprintf(path, sizeof path, "%s/mlp.txt", dir);
    snprintf(cmd, sizeof cmd, "%s --hidden 2 --epochs 1 --seed 7 --verbose 2 >%s 2>&1",
             MNIST_MLP_BIN, path);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    char *want = slurp(path);
    char *a = epoch_numbers(out), *b = epoch_numbers(want);
    cr_expect(strstr(a, "val_loss") != NULL, "%s", out);
    cr_expect_str_eq(a, b, "kerac train mlp2:\n%s\nmnist_mlp:\n%s", out, want);
    free(a), free(b), free(out), free(want);
    unlink(path);
    rmdir(dir);
}

/* a model.to_json() file from Keras trains on a subset with checkpoints, the CSV log and early
 * stopping; the saved model goes on from its epoch and evaluates */
Test(cli, train_json_then_resume_and_evaluate, .timeout = 300) {
    if (!have_mnist()) cr_skip_test("KERAC_DATA is not set");
    char *dir = tu_tmpdir(), a[1024], *out, path[256];
    snprintf(a, sizeof a,
             "train " FIX "mlp.json --data mnist --limit 1000 --epochs 2 --validation-split 0.2 "
             "--checkpoint '%s/ck_{epoch:02d}.keras' --csv-log %s/log.csv --early-stopping 3 "
             "--save %s/m.keras --verbose 2",
             dir, dir, dir);
    cr_assert_eq(kerac(a, &out, NULL), 0, "%s", a);
    cr_expect(strstr(out, "1000 train samples") != NULL, "%s", out);
    cr_expect(strstr(out, "25/25") != NULL, "800 samples of batch 32 are 25 steps: %s", out);
    free(out);
    snprintf(path, sizeof path, "%s/ck_02.keras", dir);
    cr_expect(exists(path), "%s", path);
    snprintf(path, sizeof path, "%s/log.csv", dir);
    char *csv = slurp(path);
    cr_expect(!strncmp(csv, "epoch,accuracy,loss,val_accuracy,val_loss\n0,", 44), "%s", csv);
    free(csv);
    kc_model *m;
    snprintf(path, sizeof path, "%s/m.keras", dir);
    KC_CHECK(kc_load(path, &m));
    cr_expect_eq(kc_model_epoch(m), 2);
    cr_expect_eq(kc_model_loss_spec(m, 0).kind, KC_SPARSE_CATEGORICAL_CROSSENTROPY);
    kc_model_free(m);
    snprintf(a, sizeof a, "train %s/m.keras --data mnist --limit 1000 --epochs 1 --save %s/m.keras"
             " --verbose 2", dir, dir);
    cr_assert_eq(kerac(a, &out, NULL), 0, "%s", a);
    cr_expect(strstr(out, "Epoch 3/3") != NULL, "%s", out);
    free(out);
    snprintf(a, sizeof a, "evaluate %s/m.keras --data mnist:test --limit 500", dir);
    cr_assert_eq(kerac(a, &out, NULL), 0, "%s", a);
    double loss, acc;
    const char *l = strstr(out, "\nloss: ");
    cr_assert_not_null(l, "%s", out);
    cr_assert_eq(sscanf(l, "\nloss: %lf\naccuracy: %lf", &loss, &acc), 2, "%s", out);
    cr_expect(acc > 0.5 && loss < 2, "%s", out);
    free(out);
    snprintf(a, sizeof a, "rm -rf %s", dir);
    cr_expect_eq(system(a), 0);
}

/* Ctrl-C ends training after the current step, saves to --save and exits with 130 */
Test(cli, sigint_saves_and_exits_130, .timeout = 300) {
    if (!have_mnist()) cr_skip_test("KERAC_DATA is not set");
    char *dir = tu_tmpdir(), save[256];
    snprintf(save, sizeof save, "%s/int.keras", dir);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]), close(fds[1]);
        execl(KERAC_BIN, KERAC_BIN, "train", "mlp1", "--data", "mnist", "--epochs", "1000",
              "--verbose", "2", "--save", save, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char line[1024];
    int progress = 0;
    while (fgets(line, sizeof line, in))
        if (strstr(line, "/step")) {
            progress = 1;
            break;
        }
    cr_assert(progress, "no progress line");
    kill(pid, SIGINT);
    while (fgets(line, sizeof line, in)) {
    }
    fclose(in);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "status %d", st);
    cr_expect_eq(WEXITSTATUS(st), 130);
    kc_model *m;
    KC_CHECK(kc_load(save, &m));
    cr_expect(kc_model_epoch(m) >= 1 && kc_model_epoch(m) < 1000);
    kc_model_free(m);
    unlink(save);
    rmdir(dir);
}

/* ---- pictures, images, image folders, bad data ---------------------------------------------- */

/* a PNG that kerac wrote, read back: its size, and not blank (many distinct gray levels, dark
 * text or lines on white) */
static void expect_picture(const char *path, int min_w, int min_h) {
    kc_image img;
    KC_CHECK(kc_image_load(path, 1, 0, 0, &img));
    cr_expect(img.width >= min_w && img.height >= min_h, "%s is %dx%d", path, img.width,
              img.height);
    int seen[256] = {0}, levels = 0;
    int64_t dark = 0, n = (int64_t)img.width * img.height;
    for (int64_t i = 0; i < n; i++) {
        levels += !seen[img.data[i]]++;
        dark += img.data[i] < 128;
    }
    cr_expect(levels >= 16, "%s: %d gray levels: blank?", path, levels);
    cr_expect(dark > n / 200 && dark < n * 9 / 10, "%s: %lld of %lld pixels dark", path,
              (long long)dark, (long long)n);
    kc_image_free(&img);
}

/* train --plot and --csv-log, then plot, confusion and show: each picture read back */
Test(cli, pictures, .timeout = 300) {
    if (!have_mnist()) cr_skip_test("KERAC_DATA is not set");
    char *dir = tu_tmpdir(), a[2048], p[256], *out, *err;
    snprintf(a, sizeof a,
             "train mlp0 --data mnist --limit 3000 --epochs 3 --verbose 0 --csv-log %s/h.csv "
             "--plot %s/fit.png --save %s/m.keras", dir, dir, dir);
    cr_assert_eq(kerac(a, &out, NULL), 0, "%s", a);
    free(out);
    snprintf(p, sizeof p, "%s/fit.png", dir);
    expect_picture(p, 800, 300);
    snprintf(a, sizeof a, "plot %s/h.csv -o %s/curves.png", dir, dir);
    cr_assert_eq(kerac(a, NULL, NULL), 0, "%s", a);
    snprintf(p, sizeof p, "%s/curves.png", dir);
    expect_picture(p, 800, 300);
    snprintf(a, sizeof a, "confusion %s/m.keras --data mnist:test --limit 2000 -o %s/cm.png",
             dir, dir);
    cr_assert_eq(kerac(a, &out, NULL), 0, "%s", a);
    cr_expect(strstr(out, "2000 samples, 10 classes") != NULL, "%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/cm.png", dir);
    expect_picture(p, 400, 400);
    snprintf(a, sizeof a, "show mnist:test -o %s/grid.png --count 20", dir);
    cr_assert_eq(kerac(a, NULL, NULL), 0, "%s", a);
    snprintf(p, sizeof p, "%s/grid.png", dir);
    expect_picture(p, 250, 250);
    snprintf(a, sizeof a, "show mnist:test --model %s/m.keras --misclassified -o %s/bad.png",
             dir, dir);
    cr_assert_eq(kerac(a, &out, NULL), 0, "%s", a);
    cr_expect(strstr(out, "(25 samples)") != NULL, "%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/bad.png", dir);
    expect_picture(p, 250, 250);
    /* failures: a usage error (2) or a clear error (1), and no picture */
    snprintf(a, sizeof a, "plot %s/h.csv -o %s/curves.jpg", dir, dir);
    cr_expect_eq(kerac(a, NULL, &err), 2, "%s", a);
    cr_expect(strstr(err, "PNG") != NULL, "%s", err);
    free(err);
    snprintf(a, sizeof a, "plot %s/none.csv -o %s/none.png", dir, dir);
    cr_expect_eq(kerac(a, NULL, &err), 1, "%s", a);
    cr_expect(strstr(err, "none.csv") != NULL, "%s", err);
    free(err);
    snprintf(p, sizeof p, "%s/none.png", dir);
    cr_expect(!exists(p), "%s written after a failure", p);
    snprintf(a, sizeof a, "show mnist:test --misclassified -o %s/x.png", dir);
    cr_expect_eq(kerac(a, NULL, NULL), 2, "%s", a);
    snprintf(a, sizeof a, "rm -rf %s", dir);
    cr_expect_eq(system(a), 0);
}

/* MNIST test images as PNG files, as a person would give them, predicted as their digits by
 * Keras's model; an inverted one (dark on light) with --invert */
Test(cli, predict_png) {
    if (!have_mnist()) cr_skip_test("KERAC_DATA is not set");
    kc_dataset train, test;
    KC_CHECK(kc_mnist_load(NULL, &train, &test));
    char *dir = tu_tmpdir(), a[4096], p[256];
    int n = snprintf(a, sizeof a, "predict " FIX "digits.keras");
    for (int i = 0; i < 4; i++) {
        kc_image img = {28, 28, 1, (uint8_t *)test.x + i * 784};
        snprintf(p, sizeof p, "%s/digit%d.png", dir, i);
        KC_CHECK(kc_image_save_png(p, &img));
        n += snprintf(a + n, sizeof a - n, " %s", p);
    }
    uint8_t inv[784];
    for (int j = 0; j < 784; j++) inv[j] = (uint8_t)(255 - ((uint8_t *)test.x)[j]);
    char *out;
    cr_assert_eq(kerac(a, &out, NULL), 0, "%s", a);
    /* Keras's own classes for the first four test images (tests/gen_cli_fixtures.py): 7 2 1 0 */
    const int want[4] = {7, 2, 1, 0};
    for (int i = 0; i < 4; i++) {
        char line[300];
        snprintf(line, sizeof line, "%s/digit%d.png %d ", dir, i, want[i]);
        cr_expect(strstr(out, line) != NULL, "no '%s' in:\n%s", line, out);
        cr_expect_eq(((uint8_t *)test.y)[i], want[i]);
    }
    free(out);
    kc_image img = {28, 28, 1, inv};
    snprintf(p, sizeof p, "%s/paper.png", dir);
    KC_CHECK(kc_image_save_png(p, &img));
    snprintf(a, sizeof a, "predict " FIX "digits.keras %s --invert --top 2", p);
    cr_assert_eq(kerac(a, &out, NULL), 0, "%s", a);
    snprintf(a, sizeof a, "%s 7:", p);
    cr_expect(strstr(out, a) != NULL, "%s", out);
    free(out);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
    snprintf(a, sizeof a, "rm -rf %s", dir);
    cr_expect_eq(system(a), 0);
}

/* a grayscale PNG written here with zlib alone (not through kerac, and without kc_save's fsync:
 * thousands of them for the image-folder test) */
static void png_chunk(FILE *f, const char *type, const uint8_t *data, uint32_t n) {
    uint8_t be[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    fwrite(be, 1, 4, f);
    fwrite(type, 1, 4, f);
    if (n) fwrite(data, 1, n, f);
    uLong crc = crc32(crc32(0, Z_NULL, 0), (const Bytef *)type, 4);
    if (n) crc = crc32(crc, data, n); /* (crc32 of a NULL buffer restarts the sum) */
    uint8_t c[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    fwrite(c, 1, 4, f);
}
static void write_gray_png(const char *path, const uint8_t *px, int h, int w) {
    uint8_t raw[(28 + 1) * 28], packed[2048], ihdr[13] = {0, 0, 0, (uint8_t)w, 0, 0, 0, (uint8_t)h,
                                                         8, 0, 0, 0, 0};
    cr_assert(h <= 28 && w <= 28);
    for (int y = 0; y < h; y++) {
        raw[y * (w + 1)] = 0; /* filter: none */
        memcpy(raw + y * (w + 1) + 1, px + y * w, (size_t)w);
    }
    uLongf n = sizeof packed;
    cr_assert_eq(compress(packed, &n, raw, (uLong)(h * (w + 1))), Z_OK);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    png_chunk(f, "IHDR", ihdr, 13);
    png_chunk(f, "IDAT", packed, (uint32_t)n);
    png_chunk(f, "IEND", NULL, 0);
    cr_assert_eq(fclose(f), 0);
}

/* The convnet trained from a folder of PNG files, one subfolder per digit (as
 * image_dataset_from_directory reads it), reaches what it reaches from the IDX files: the same
 * 12000 training images, shuffled by the folder loader, evaluated on the same test images */
Test(cli, convnet_from_image_folder, .timeout = 600) {
    if (!have_mnist()) cr_skip_test("KERAC_DATA is not set");
    kc_dataset train, test;
    KC_CHECK(kc_mnist_load(NULL, &train, &test));
    char *dir = tu_tmpdir(), p[512], a[2048];
    for (int d = 0; d < 10; d++) {
        snprintf(p, sizeof p, "%s/digits/%d", dir, d);
        snprintf(a, sizeof a, "mkdir -p %s", p);
        cr_assert_eq(system(a), 0);
    }
    const int N = 12000;
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof p, "%s/digits/%d/%05d.png", dir, ((uint8_t *)train.y)[i], i);
        write_gray_png(p, (uint8_t *)train.x + (int64_t)i * 784, 28, 28);
    }
    double acc[2];
    for (int from_folder = 0; from_folder < 2; from_folder++) {
        char *out;
        snprintf(a, sizeof a,
                 "train convnet --data %s%s --limit %d --no-validation --epochs 3 --verbose 0 "
                 "--save %s/m%d.keras", from_folder ? dir : "mnist", from_folder ? "/digits" : "",
                 N, dir, from_folder);
        cr_assert_eq(kerac(a, &out, NULL), 0, "%s", a);
        cr_expect(strstr(out, "12000 train samples") != NULL, "%s", out);
        free(out);
        snprintf(a, sizeof a, "evaluate %s/m%d.keras --data mnist:test", dir,
                 from_folder);
        cr_assert_eq(kerac(a, &out, NULL), 0, "%s", a);
        const char *l = strstr(out, "\naccuracy: ");
        cr_assert(l && sscanf(l, "\naccuracy: %lf", &acc[from_folder]) == 1, "%s", out);
        free(out);
    }
    cr_log_info("convnet, 12000 images, 3 epochs: test accuracy %.4f from IDX, %.4f from PNGs",
                acc[0], acc[1]);
    cr_expect(acc[0] > 0.94 && acc[1] > 0.94, "IDX %.4f, folder %.4f", acc[0], acc[1]);
    cr_expect(fabs(acc[0] - acc[1]) < 0.015, "IDX %.4f, folder %.4f", acc[0], acc[1]);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
    snprintf(a, sizeof a, "rm -rf %s", dir);
    cr_expect_eq(system(a), 0);
}

/* an .npy file as np.save writes it (version 1.0, header padded to 64 bytes), of zeros */
static void write_npy(const char *path, const char *descr, int fortran, const char *shape,
                      size_t data_bytes) {
    char h[256];
    int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr,
                     fortran ? "True" : "False", shape);
    int total = (10 + n + 1 + 63) / 64 * 64;
    uint8_t *buf = calloc(1, (size_t)total + data_bytes);
    cr_assert_not_null(buf);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)((total - 10) & 0xff), buf[9] = (uint8_t)((total - 10) >> 8);
    memcpy(buf + 10, h, (size_t)n);
    memset(buf + 10 + n, ' ', (size_t)(total - 10 - n - 1));
    buf[total - 1] = '\n';
    tu_write_file(path, buf, (size_t)total + data_bytes);
    free(buf);
}

/* bad data through the program: exit 1, a message naming the file (and the row and column,
 * the dtype, the counts), and no model saved */
Test(cli, bad_data_is_refused) {
    char *dir = tu_tmpdir(), path[256], a[1024], save[256], *err;
    snprintf(save, sizeof save, "%s/never.keras", dir);
    struct {
        const char *name, *bytes;
        int unused;
        const char *says;
    } cases[] = {
        {"bad.csv", "a,b,label\n1,2,0\n3,x7,1\n", 0, "line 3, column \"b\""},
        {"fortran.npy", NULL, 0, "Fortran"},
        {"complex.npy", NULL, 0, "<c8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
        if (cases[i].bytes) tu_write_file(path, cases[i].bytes, strlen(cases[i].bytes));
        else if (i == 1) write_npy(path, "<f4", 1, "(2, 2)", 16);
        else write_npy(path, "<c8", 0, "(2,)", 16);
        snprintf(a, sizeof a, "train mlp0 --data %s --epochs 1 --save %s", path, save);
        cr_expect_eq(kerac(a, NULL, &err), 1, "%s", a);
        cr_expect(strstr(err, cases[i].name) && strstr(err, cases[i].says), "%s: %s",
                  cases[i].name, err);
        free(err);
        cr_expect(!exists(save), "a model was saved after bad data %s", cases[i].name);
    }
    /* x and y counts that differ */
    char x[256], y[256];
    snprintf(x, sizeof x, "%s/x.npy", dir);
    snprintf(y, sizeof y, "%s/y.npy", dir);
    write_npy(x, "|u1", 0, "(3, 784)", 3 * 784);
    write_npy(y, "|u1", 0, "(2,)", 2);
    snprintf(a, sizeof a, "train mlp0 --data %s,%s --epochs 1 --save %s", x, y, save);
    cr_expect_eq(kerac(a, NULL, &err), 1, "%s", a);
    cr_expect(strstr(err, "3") && strstr(err, "2") && strstr(err, "y.npy"), "%s", err);
    free(err);
    /* an image that does not decode, in a folder of classes */
    snprintf(a, sizeof a, "mkdir -p %s/imgs/a %s/imgs/b", dir, dir);
    cr_assert_eq(system(a), 0);
    snprintf(path, sizeof path, "%s/imgs/a/broken.png", dir);
    tu_write_file(path, "\x89PNG\r\n\x1a\nnot really", 18);
    snprintf(a, sizeof a, "train mlp0 --data %s/imgs --epochs 1 --save %s", dir, save);
    cr_expect_eq(kerac(a, NULL, &err), 1, "%s", a);
    cr_expect(strstr(err, "broken.png") != NULL, "%s", err);
    free(err);
    /* a missing file, an unknown SPEC */
    snprintf(a, sizeof a, "train mlp0 --data %s/missing.npz --epochs 1 --save %s", dir, save);
    cr_expect_eq(kerac(a, NULL, &err), 1, "%s", a);
    cr_expect(strstr(err, "missing.npz") != NULL, "%s", err);
    free(err);
    cr_expect_eq(kerac("evaluate mlp0 --data imagenet", NULL, &err), 1);
    cr_expect(strstr(err, "imagenet") != NULL, "%s", err);
    free(err);
    cr_expect(!exists(save), "a model was saved after bad data");
    snprintf(a, sizeof a, "rm -rf %s", dir);
    cr_expect_eq(system(a), 0);
}

/* A model that starts with Rescaling(1/255) takes pixels as they are: predict gives it 0..255
 * (no second 1/255), the same probabilities as kc_predict on the raw pixels */
Test(cli, rescaling_model_takes_raw_pixels) {
    char *dir = tu_tmpdir(), path[256], png[256], npy[256], a[1024];
    kc_set_random_seed(3);
    kc_model *m = kc_sequential(kc_shape3(28, 28, 1));
    kc_add(m, kc_rescaling(1.0f / 255, 0));
    kc_add(m, kc_flatten());
    kc_add(m, kc_dense(10, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_SPARSE_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY));
    snprintf(path, sizeof path, "%s/r.keras", dir);
    KC_CHECK(kc_save(m, path));
    uint8_t px[784];
    float x[784], want[10];
    for (int i = 0; i < 784; i++) px[i] = (uint8_t)((i * 37 + i / 28 * 11) % 256), x[i] = px[i];
    KC_CHECK(kc_predict(m, x, 1, want));
    snprintf(png, sizeof png, "%s/img.png", dir);
    KC_CHECK(kc_image_save_png(png, &(kc_image){28, 28, 1, px}));
    snprintf(npy, sizeof npy, "%s/p.npy", dir);
    snprintf(a, sizeof a, "predict %s %s --output %s", path, png, npy);
    cr_assert_eq(kerac(a, NULL, NULL), 0, "%s", a);
    kc_npy got;
    KC_CHECK(kc_npy_load(npy, &got));
    cr_assert_eq(got.size, 10);
    for (int j = 0; j < 10; j++)
        cr_expect(tu_close(((float *)got.data)[j], want[j], 1e-6), "class %d: %g, want %g", j,
                  ((float *)got.data)[j], want[j]);
    kc_npy_free(&got);
    kc_model_free(m);
    snprintf(a, sizeof a, "rm -rf %s", dir);
    cr_expect_eq(system(a), 0);
}
