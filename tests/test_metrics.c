/* test_metrics.c: Keras 3's metrics (kc_metric_spec) against Keras (tests/gen_keras_metric_fixtures.py):
 * every metric's value after three batches of different sizes (ties, edge values, sample
 * weights), the same through a model's evaluate(), a two-epoch fit whose History matches Keras's
 * key by key, the names Keras gives, the errors kc_compile gives, and metrics through files:
 * a .keras file Keras compiled with SparseTopKCategoricalAccuracy(k=3) and "accuracy", and
 * kerac's own .keras and .h5 read back. */
#include "testutil.h"
#include "metrics.h" /* kc_metric_state: the update / result the fixtures check */

#define FIX "tests/fixtures/keras_metrics/"
#define MAX_CASES 80
#define MAXV 512

typedef struct {
    int n, weighted;
    float y_true[MAXV], y_pred[MAXV], w[MAXV];
} mbatch;

typedef struct {
    char name[64];
    kc_metric_spec spec;
    int cols, rps, sparse, n_batches;
    mbatch b[3];
    double value;
} mcase;

static int close_rel(double got, double want) {
    return fabs(got - want) <= 1e-5 * fabs(want) + 1e-7;
}

static void read_floats(FILE *f, const char *key, float *out, int n) {
    char k[32];
    cr_assert_eq(fscanf(f, "%31s", k), 1);
    cr_assert_str_eq(k, key);
    for (int i = 0; i < n; i++) cr_assert_eq(fscanf(f, "%f", &out[i]), 1, "%s[%d]", key, i);
}

/* "kind=AUC curve=PR ..." into a spec (the kind by its Keras name) */
static void parse_spec(char *line, kc_metric_spec *s) {
    *s = (kc_metric_spec){0};
    for (char *tok = strtok(line, " \n"); tok; tok = strtok(NULL, " \n")) {
        char *eq = strchr(tok, '=');
        cr_assert_not_null(eq, "bad spec token %s", tok);
        *eq = 0;
        const char *k = tok, *v = eq + 1;
        if (!strcmp(k, "kind")) {
            KC_CHECK(kc_metric_from_name(v, s));
            s->name = NULL; /* the class's default name, as Keras's object */
        } else if (!strcmp(k, "threshold")) s->has_threshold = 1, s->threshold = strtof(v, NULL);
        else if (!strcmp(k, "k")) s->k = atoi(v);
        else if (!strcmp(k, "top_k")) s->top_k = atoi(v);
        else if (!strcmp(k, "class_id")) s->has_class_id = 1, s->class_id = atoi(v);
        else if (!strcmp(k, "num_thresholds")) s->num_thresholds = atoi(v);
        else if (!strcmp(k, "curve")) s->curve = !strcmp(v, "PR") ? KC_CURVE_PR : KC_CURVE_PRGAIN;
        else if (!strcmp(k, "summation"))
            s->summation_method = !strcmp(v, "majoring") ? KC_SUMMATION_MAJORING : KC_SUMMATION_MINORING;
        else if (!strcmp(k, "from_logits")) s->from_logits = atoi(v);
        else if (!strcmp(k, "label_smoothing")) s->label_smoothing = strtof(v, NULL);
        else if (!strcmp(k, "beta")) s->beta = strtof(v, NULL);
        else if (!strcmp(k, "average"))
            s->average = !strcmp(v, "micro") ? KC_AVERAGE_MICRO
                         : !strcmp(v, "macro") ? KC_AVERAGE_MACRO : KC_AVERAGE_WEIGHTED;
        else cr_assert_fail("unknown spec key %s", k);
    }
}

static int load_cases(mcase *cases) {
    FILE *f = fopen(FIX "cases.txt", "r");
    cr_assert_not_null(f, "cannot open " FIX "cases.txt");
    char line[512];
    cr_assert_not_null(fgets(line, sizeof line, f)); /* the versions */
    int n = 0;
    char word[32];
    while (fscanf(f, "%31s", word) == 1) {
        cr_assert_str_eq(word, "case");
        cr_assert(n < MAX_CASES);
        mcase *c = &cases[n++];
        memset(c, 0, sizeof *c);
        cr_assert_eq(fscanf(f, "%63s ", c->name), 1);
        cr_assert_not_null(fgets(line, sizeof line, f));
        cr_assert(!strncmp(line, "spec ", 5), "%s: %s", c->name, line);
        parse_spec(line + 5, &c->spec);
        cr_assert_eq(fscanf(f, " shape %d %d %d", &c->cols, &c->rps, &c->sparse), 3);
        for (;;) {
            cr_assert_eq(fscanf(f, "%31s", word), 1);
            if (!strcmp(word, "value")) break;
            cr_assert_str_eq(word, "batch");
            mbatch *b = &c->b[c->n_batches++];
            cr_assert_eq(fscanf(f, "%d %d", &b->n, &b->weighted), 2);
            int yn = c->sparse ? b->n : b->n * c->rps * c->cols;
            cr_assert(yn <= MAXV);
            read_floats(f, "y_true", b->y_true, yn);
            read_floats(f, "y_pred", b->y_pred, b->n * c->rps * c->cols);
            if (b->weighted) read_floats(f, "weights", b->w, b->n);
        }
        cr_assert_eq(fscanf(f, "%lf", &c->value), 1);
    }
    fclose(f);
    return n;
}

static kc_shape case_shape(const mcase *c) {
    return c->rps > 1 ? kc_shape2(c->rps, c->cols) : kc_shape1(c->cols);
}

static kc_loss_spec case_loss(const mcase *c) {
    return c->sparse ? (kc_loss_spec){.kind = KC_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = 1}
                     : (kc_loss_spec){.kind = KC_MEAN_SQUARED_ERROR};
}

/* every case: the metric's state over the three batches */
Test(metrics, every_metric_matches_keras) {
    static mcase cases[MAX_CASES];
    int n = load_cases(cases), bad = 0;
    cr_assert_geq(n, 50);
    for (int i = 0; i < n; i++) {
        mcase *c = &cases[i];
        kc_metric_state st;
        kc_loss_spec loss = case_loss(c);
        KC_CHECK(kc_metric_init(&st, &c->spec, &loss, case_shape(c), 0, 1, c->name));
        for (int pass = 0; pass < 2; pass++) { /* again after a reset: the same value */
            kc_metric_reset(&st);
            for (int k = 0; k < c->n_batches; k++) {
                mbatch *b = &c->b[k];
                kc_metric_update(&st, b->y_pred, b->y_true, b->n, b->weighted ? b->w : NULL, NULL);
            }
            double got = kc_metric_result(&st);
            if (!close_rel(got, c->value)) {
                bad++;
                cr_log_error("%s: kerac %.9g, Keras %.9g", c->name, got, c->value);
            }
        }
        kc_metric_free(&st);
    }
    cr_assert_eq(bad, 0, "%d of %d cases differ from Keras", bad, n);
}

/* the unweighted cases through a model: an identity model's evaluate() gives y_pred, the
 * metric is compiled as kc_compile_ex's metric_specs and read by its Keras name */
Test(metrics, every_metric_through_evaluate) {
    static mcase cases[MAX_CASES];
    static float x[3 * MAXV], y[3 * MAXV];
    static int32_t yi[3 * MAXV];
    int n = load_cases(cases), checked = 0;
    for (int i = 0; i < n; i++) {
        mcase *c = &cases[i];
        if (c->b[0].weighted) continue;
        int count = 0, per = c->rps * c->cols;
        for (int k = 0; k < c->n_batches; k++) {
            mbatch *b = &c->b[k];
            memcpy(x + count * per, b->y_pred, sizeof(float) * (size_t)(b->n * per));
            if (c->sparse)
                for (int j = 0; j < b->n; j++) yi[count + j] = (int32_t)b->y_true[j];
            else memcpy(y + count * per, b->y_true, sizeof(float) * (size_t)(b->n * per));
            count += b->n;
        }
        kc_model *m = kc_sequential(case_shape(c));
        kc_add(m, kc_identity());
        kc_compile_opts o = {.optimizer = kc_sgd(NULL), .loss_specs = {case_loss(c)}};
        o.metric_specs[0][0] = c->spec;
        KC_CHECK(kc_compile_ex(m, &o));
        kc_dataset d = {.count = count, .n_inputs = 1, .n_targets = 1};
        d.inputs[0] = (kc_array){case_shape(c), KC_FLOAT32, x, 0, 0};
        d.targets[0] = c->sparse ? (kc_array){{0}, KC_INT32, yi, 0, c->cols}
                                 : (kc_array){case_shape(c), KC_FLOAT32, y, 0, 0};
        kc_metrics r;
        KC_CHECK(kc_evaluate(m, &d, &(kc_evaluate_opts){.batch_size = 4}, &r));
        const char *key = kc_metric_name(c->spec.kind);
        double v;
        cr_assert_eq(r.n_values, 2, "%s", c->name);
        cr_assert_str_eq(r.keys[1], key);
        cr_assert(kc_metrics_get(&r, key, &v) || r.values[1] == 0.0, "%s: no %s", c->name, key);
        cr_expect(close_rel(r.values[1], c->value), "%s: kerac %.9g, Keras %.9g", c->name,
                  r.values[1], c->value);
        kc_model_free(m);
        checked++;
    }
    cr_assert_geq(checked, 40);
}

/* ---- a fit whose History is Keras's ------------------------------------------------------- */

typedef struct {
    float w[15], x[48], y[36], xv[24], yv[18];
    int n_eval, n_hist;
    char eval_key[16][48], hist_key[32][48];
    double eval[16], hist[32][2];
} fit_fix;

static void load_fit(fit_fix *F) {
    FILE *f = fopen(FIX "fit.txt", "r");
    cr_assert_not_null(f);
    char line[256], word[48];
    cr_assert_not_null(fgets(line, sizeof line, f));
    read_floats(f, "weights", F->w, 15);
    read_floats(f, "x", F->x, 48);
    read_floats(f, "y", F->y, 36);
    read_floats(f, "xv", F->xv, 24);
    read_floats(f, "yv", F->yv, 18);
    F->n_eval = F->n_hist = 0;
    while (fscanf(f, "%47s", word) == 1) {
        if (!strcmp(word, "evaluate")) {
            cr_assert_eq(fscanf(f, "%47s %lf", F->eval_key[F->n_eval], &F->eval[F->n_eval]), 2);
            F->n_eval++;
        } else {
            cr_assert_str_eq(word, "history");
            cr_assert_eq(fscanf(f, "%47s %lf %lf", F->hist_key[F->n_hist], &F->hist[F->n_hist][0],
                                &F->hist[F->n_hist][1]), 3);
            F->n_hist++;
        }
    }
    fclose(f);
}

/* the fixture's metrics: accuracy, mse, AUC(), AUC(curve=PR), TopK(k=2), Precision(),
 * Recall(class_id=1), F1Score(average="macro") */
static kc_model *fit_model(const fit_fix *F) {
    kc_model *m = kc_sequential(kc_shape1(4));
    kc_add(m, kc_dense(3, KC_SOFTMAX));
    kc_compile_opts o = {.optimizer = kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}),
                         .loss = {KC_CATEGORICAL_CROSSENTROPY}, .metrics = {KC_METRIC_ACCURACY}};
    kc_metric_spec *s = o.metric_specs[0];
    KC_CHECK(kc_metric_from_name("mse", &s[0]));
    s[1] = (kc_metric_spec){.kind = KC_METRIC_AUC};
    s[2] = (kc_metric_spec){.kind = KC_METRIC_AUC, .curve = KC_CURVE_PR};
    s[3] = (kc_metric_spec){.kind = KC_METRIC_TOP_K_CATEGORICAL_ACCURACY, .k = 2};
    s[4] = (kc_metric_spec){.kind = KC_METRIC_PRECISION};
    s[5] = (kc_metric_spec){.kind = KC_METRIC_RECALL, .has_class_id = 1, .class_id = 1};
    s[6] = (kc_metric_spec){.kind = KC_METRIC_F1_SCORE, .average = KC_AVERAGE_MACRO};
    KC_CHECK(kc_compile_ex(m, &o));
    KC_CHECK(kc_set_weights(m, F->w, 15));
    return m;
}

Test(metrics, fit_history_and_evaluate_match_keras) {
    static fit_fix F;
    load_fit(&F);
    kc_model *m = fit_model(&F);
    kc_dataset tr = {.count = 12, .x_shape = kc_shape1(4), .x_dtype = KC_FLOAT32, .x = F.x,
                     .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = F.y};
    kc_dataset va = {.count = 6, .x_shape = kc_shape1(4), .x_dtype = KC_FLOAT32, .x = F.xv,
                     .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = F.yv};
    /* evaluate() of the fixed weights: every key, by Keras's name */
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &va, &(kc_evaluate_opts){.batch_size = 4}, &r));
    cr_assert_eq(r.n_values, F.n_eval, "kerac has %d values, Keras %d", r.n_values, F.n_eval);
    for (int i = 0; i < F.n_eval; i++) {
        double v;
        cr_assert(kc_metrics_get(&r, F.eval_key[i], &v), "evaluate lacks %s", F.eval_key[i]);
        cr_expect(close_rel(v, F.eval[i]), "evaluate %s: kerac %.9g, Keras %.9g", F.eval_key[i], v,
                  F.eval[i]);
    }
    /* Keras's metrics_names order: loss, then the metrics as compiled */
    const char *order[] = {"loss", "accuracy", "mse", "auc", "auc_1", "top_k_categorical_accuracy",
                           "precision", "recall", "f1_score"};
    for (int i = 0; i < 9; i++) cr_assert_str_eq(r.keys[i], order[i]);
    cr_assert(close_rel(r.accuracy, r.values[1]));
    /* two epochs, no shuffling: History, key by key */
    kc_history *h;
    KC_CHECK(kc_fit(m, &tr, &(kc_fit_opts){.batch_size = 4, .epochs = 2, .no_shuffle = 1,
                                          .verbose = -1, .validation = &va}, &h));
    cr_assert_eq(h->n_keys, F.n_hist);
    for (int i = 0; i < F.n_hist; i++) {
        cr_assert_str_eq(h->keys[i], F.hist_key[i], "History's keys are sorted as Keras 3's");
        const double *v = kc_history_get(h, F.hist_key[i]);
        for (int e = 0; e < 2; e++)
            cr_expect(close_rel(v[e], F.hist[i][e]), "history %s[%d]: kerac %.9g, Keras %.9g",
                      F.hist_key[i], e, v[e], F.hist[i][e]);
    }
    kc_history_free(h);
    kc_model_free(m);
}

/* ---- names, monitors, CSVLogger, progress line -------------------------------------------- */

typedef struct {
    int calls;
    double auc, val_auc;
} seen_logs;

static kc_status grab(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    seen_logs *s = cb->user;
    s->calls++;
    cr_assert(kc_logs_get(logs, "auc", &s->auc));
    cr_assert(kc_logs_get(logs, "val_auc", &s->val_auc));
    return KC_OK;
}

Test(metrics, keys_callbacks_csv_and_progress) {
    static fit_fix F;
    load_fit(&F);
    kc_model *m = fit_model(&F);
    kc_dataset tr = {.count = 12, .x_shape = kc_shape1(4), .x_dtype = KC_FLOAT32, .x = F.x,
                     .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = F.y};
    const char *dir = tu_tmpdir();
    char csv[256], best[256];
    snprintf(csv, sizeof csv, "%s/log.csv", dir);
    snprintf(best, sizeof best, "%s/best.keras", dir);
    seen_logs seen = {0};
    kc_callback mine = {.on_epoch_end = grab, .user = &seen};
    kc_callback *cbs[] = {kc_csv_logger(csv, ',', 0),
                          kc_early_stopping(&(kc_early_stopping_opts){.monitor = "val_auc",
                                                                      .patience = 5}),
                          kc_reduce_lr_on_plateau(&(kc_reduce_lr_on_plateau_opts){.monitor = "val_auc_1"}),
                          kc_model_checkpoint(best, &(kc_model_checkpoint_opts){
                                                        .monitor = "val_precision",
                                                        .save_best_only = 1}),
                          &mine};
    for (int i = 0; i < 4; i++) cr_assert_not_null(cbs[i], "%s", kc_last_error());
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    kc_history *h;
    KC_CHECK(kc_fit(m, &tr, &(kc_fit_opts){.batch_size = 4, .epochs = 2, .no_shuffle = 1,
                                          .verbose = 2, .out = out, .validation = &tr,
                                          .callbacks = cbs, .n_callbacks = 5}, &h));
    fclose(out);
    cr_assert_eq(seen.calls, 2);
    cr_assert(close_rel(seen.auc, kc_history_get(h, "auc")[1]));
    /* the progress line: every key, sorted as Keras 3 prints them */
    const char *line = strstr(text, "/step - accuracy: ");
    cr_assert_not_null(line, "%s", text);
    const char *prev = line, *names[] = {" - accuracy: ", " - auc: ", " - auc_1: ", " - f1_score: ",
                                        " - loss: ", " - mse: ", " - precision: ", " - recall: ",
                                        " - top_k_categorical_accuracy: ", " - val_accuracy: ",
                                        " - val_auc: ", " - val_f1_score: ", " - val_loss: ",
                                        " - val_top_k_categorical_accuracy: "};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *at = strstr(prev, names[i]);
        cr_assert_not_null(at, "the line lacks (or misorders) %s: %s", names[i], line);
        prev = at;
    }
    /* CSVLogger: epoch and the sorted keys */
    FILE *f = fopen(csv, "r");
    char header[1024];
    cr_assert_not_null(fgets(header, sizeof header, f));
    fclose(f);
    const char *want = "epoch,accuracy,auc,auc_1,f1_score,loss,mse,precision,recall,"
                       "top_k_categorical_accuracy,val_accuracy,val_auc,val_auc_1,val_f1_score,"
                       "val_loss,val_mse,val_precision,val_recall,val_top_k_categorical_accuracy\n";
    cr_assert_str_eq(header, want);
    /* ModelCheckpoint monitored val_precision (mode auto: max) and saved the model */
    cr_assert_eq(access(best, F_OK), 0, "no %s", best);
    /* mode auto takes the metric's direction: AUC up, mse down */
    cr_assert_eq(kc_model_metric_count(m), 8);
    kc_history_free(h);
    free(text);
    for (int i = 0; i < 4; i++) kc_callback_free(cbs[i]);
    kc_model_free(m);
}

Test(metrics, names_as_keras) {
    /* strings are their own names; objects take the class's name; duplicates "_1"; several
     * outputs "<output>_"; a weighted metric of a taken name "weighted_" */
    kc_tensor *in = kc_input(kc_shape1(3));
    kc_layer *da = kc_dense(4, KC_SOFTMAX), *db = kc_dense(1, KC_SIGMOID);
    kc_layer_set_name(da, "cls");
    kc_layer_set_name(db, "bin");
    kc_tensor *outs[] = {kc_call(da, in), kc_call(db, in)};
    kc_model *m = kc_functional(&in, 1, outs, 2);
    kc_compile_opts o = {.optimizer = kc_adam(NULL),
                         .loss = {KC_CATEGORICAL_CROSSENTROPY, KC_BINARY_CROSSENTROPY}};
    KC_CHECK(kc_metric_from_name("acc", &o.metric_specs[0][0]));
    o.metric_specs[0][1] = (kc_metric_spec){.kind = KC_METRIC_AUC};
    o.metric_specs[0][2] = (kc_metric_spec){.kind = KC_METRIC_AUC, .curve = KC_CURVE_PR};
    KC_CHECK(kc_metric_from_name("mse", &o.metric_specs[1][0]));
    o.metric_specs[1][1] = (kc_metric_spec){.kind = KC_METRIC_LOG_COSH_ERROR};
    o.metric_specs[1][2] = (kc_metric_spec){.kind = KC_METRIC_PRECISION, .name = "p"};
    o.weighted_metric_specs[1][0] = (kc_metric_spec){.kind = KC_METRIC_PRECISION, .name = "p"};
    o.weighted_metric_specs[1][1] = (kc_metric_spec){.kind = KC_METRIC_RECALL};
    KC_CHECK(kc_compile_ex(m, &o));
    const char *want[] = {"cls_acc", "cls_auc", "cls_auc_1", "bin_mse", "bin_logcosh", "bin_p",
                          "bin_weighted_p", "bin_recall"};
    cr_assert_eq(kc_model_metric_count(m), 8);
    for (int i = 0; i < 8; i++) {
        const char *key;
        int out, weighted;
        KC_CHECK(kc_model_metric(m, i, NULL, &out, &weighted, &key));
        cr_assert_str_eq(key, want[i]);
        cr_assert_eq(weighted, i >= 6);
    }
    kc_model_free(m);
}

Test(metrics, compile_errors) {
    kc_model *m = kc_sequential(kc_shape1(4));
    kc_add(m, kc_dense(3, KC_SOFTMAX));
    kc_compile_opts o = {.optimizer = kc_adam(NULL), .loss = {KC_SPARSE_CATEGORICAL_CROSSENTROPY}};
    o.metric_specs[0][0] = (kc_metric_spec){.kind = KC_METRIC_AUC};
    KC_EXPECT_ERR(kc_compile_ex(m, &o), KC_EINVAL, "class indices");
    o = (kc_compile_opts){.optimizer = kc_adam(NULL), .loss = {KC_CATEGORICAL_CROSSENTROPY}};
    o.metric_specs[0][0] = (kc_metric_spec){.kind = KC_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY};
    KC_EXPECT_ERR(kc_compile_ex(m, &o), KC_EINVAL, "reads class indices");
    o = (kc_compile_opts){.optimizer = kc_adam(NULL), .loss = {KC_CATEGORICAL_CROSSENTROPY}};
    o.metric_specs[0][0] = (kc_metric_spec){.kind = KC_METRIC_PRECISION, .has_class_id = 1, .class_id = 3};
    KC_EXPECT_ERR(kc_compile_ex(m, &o), KC_EINVAL, "class_id 3 of precision is out of range");
    o = (kc_compile_opts){.optimizer = kc_adam(NULL), .loss = {KC_CATEGORICAL_CROSSENTROPY}};
    o.metric_specs[0][0] = (kc_metric_spec){.kind = KC_METRIC_F1_SCORE};
    KC_EXPECT_ERR(kc_compile_ex(m, &o), KC_EINVAL, "average=None");
    o = (kc_compile_opts){.optimizer = kc_adam(NULL), .loss = {KC_CATEGORICAL_CROSSENTROPY}};
    o.metric_specs[0][0] = (kc_metric_spec){.kind = KC_METRIC_MEAN_SQUARED_ERROR, .k = 3};
    KC_EXPECT_ERR(kc_compile_ex(m, &o), KC_EINVAL, "has no option k");
    o = (kc_compile_opts){.optimizer = kc_adam(NULL), .loss = {KC_CATEGORICAL_CROSSENTROPY}};
    o.metric_specs[0][0] = (kc_metric_spec){.kind = (kc_metric)99};
    KC_EXPECT_ERR(kc_compile_ex(m, &o), KC_EINVAL, "unknown metric 99");
    KC_EXPECT_ERR(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), 4), KC_EINVAL,
                  "metric_specs");
    kc_metric_spec s;
    KC_EXPECT_ERR(kc_metric_from_name("f2_score", &s), KC_EINVAL, "unknown metric 'f2_score'");
    KC_CHECK(kc_metric_from_name("top_k_categorical_accuracy", &s));
    cr_assert_eq(s.kind, KC_METRIC_TOP_K_CATEGORICAL_ACCURACY);
    KC_CHECK(kc_metric_from_name("log_cosh_error", &s));
    cr_assert_eq(s.kind, KC_METRIC_LOG_COSH_ERROR);
    /* a one-column output: no top-k, no sparse metric */
    kc_model *b = kc_sequential(kc_shape1(4));
    kc_add(b, kc_dense(1, KC_SIGMOID));
    o = (kc_compile_opts){.optimizer = kc_adam(NULL), .loss = {KC_BINARY_CROSSENTROPY}};
    o.metric_specs[0][0] = (kc_metric_spec){.kind = KC_METRIC_TOP_K_CATEGORICAL_ACCURACY};
    KC_EXPECT_ERR(kc_compile_ex(b, &o), KC_EINVAL, "2 classes or more");
    /* kc_compile's accuracy still works, and its value is binary accuracy there */
    KC_CHECK(kc_compile(b, KC_BINARY_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY));
    kc_metric_spec got;
    KC_CHECK(kc_model_metric(b, 0, &got, NULL, NULL, NULL));
    cr_assert_eq(got.kind, KC_METRIC_ACCURACY);
    kc_model_free(b);
    kc_model_free(m);
}

/* ---- files -------------------------------------------------------------------------------- */

static char warnings[4096];
static void keep_warning(const char *msg, void *user) {
    strncat(warnings, msg, sizeof warnings - strlen(warnings) - 2);
    strcat(warnings, "\n");
}

typedef struct {
    float x[40], y[10];
    int n_eval;
    char key[8][48];
    double value[8];
} topk_fix;

static void load_topk(topk_fix *T) {
    FILE *f = fopen(FIX "sparse_topk.txt", "r");
    cr_assert_not_null(f);
    char line[256], word[48];
    cr_assert_not_null(fgets(line, sizeof line, f));
    read_floats(f, "x", T->x, 40);
    read_floats(f, "y", T->y, 10);
    T->n_eval = 0;
    while (fscanf(f, "%47s", word) == 1) {
        cr_assert_str_eq(word, "evaluate");
        cr_assert_eq(fscanf(f, "%47s %lf", T->key[T->n_eval], &T->value[T->n_eval]), 2);
        T->n_eval++;
    }
    fclose(f);
}

static void check_topk(kc_model *m, const topk_fix *T, const char *what) {
    cr_assert_eq(kc_model_metric_count(m), 2, "%s", what);
    kc_metric_spec s;
    const char *key;
    KC_CHECK(kc_model_metric(m, 0, &s, NULL, NULL, &key));
    cr_assert_eq(s.kind, KC_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY, "%s", what);
    cr_assert_eq(s.k, 3, "%s", what);
    cr_assert_str_eq(key, "sparse_top_k_categorical_accuracy");
    KC_CHECK(kc_model_metric(m, 1, &s, NULL, NULL, &key));
    cr_assert_eq(s.kind, KC_METRIC_ACCURACY, "%s", what);
    cr_assert_str_eq(key, "accuracy");
    kc_loss_spec l = kc_model_loss_spec(m, 0);
    cr_assert(l.kind == KC_SPARSE_CATEGORICAL_CROSSENTROPY && l.from_logits);
    int32_t yi[10];
    for (int i = 0; i < 10; i++) yi[i] = (int32_t)T->y[i];
    kc_dataset d = {.count = 10, .x_shape = kc_shape1(4), .x_dtype = KC_FLOAT32, .x = (void *)T->x,
                    .y_shape = {0}, .y_dtype = KC_INT32, .y = yi, .num_classes = 5};
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &d, &(kc_evaluate_opts){.batch_size = 4}, &r));
    cr_assert_eq(r.n_values, T->n_eval);
    for (int i = 0; i < T->n_eval; i++) {
        double v;
        cr_assert(kc_metrics_get(&r, T->key[i], &v), "%s: no %s", what, T->key[i]);
        cr_expect(close_rel(v, T->value[i]), "%s %s: kerac %.9g, Keras %.9g", what, T->key[i], v,
                  T->value[i]);
    }
}

Test(metrics, keras_file_with_metrics_round_trips) {
    static topk_fix T;
    load_topk(&T);
    kc_model *m;
    KC_CHECK(kc_load(FIX "sparse_topk.keras", &m));
    check_topk(m, &T, "sparse_topk.keras");
    const char *dir = tu_tmpdir();
    const char *exts[] = {".keras", ".h5"};
    for (int i = 0; i < 2; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/again%s", dir, exts[i]);
        KC_CHECK(kc_save(m, path));
        kc_model *back;
        KC_CHECK(kc_load(path, &back));
        check_topk(back, &T, path);
        kc_model_free(back);
    }
    kc_model_free(m);
}

/* every metric through kerac's own files, with the options kept */
Test(metrics, specs_survive_keras_and_h5_files) {
    kc_model *m = kc_sequential(kc_shape1(4));
    kc_add(m, kc_dense(3, KC_SIGMOID));
    kc_compile_opts o = {.optimizer = kc_adam(NULL), .loss = {KC_BINARY_CROSSENTROPY}};
    kc_metric_spec *s = o.metric_specs[0];
    int n = 0;
    KC_CHECK(kc_metric_from_name("acc", &s[n++]));
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_AUC, .curve = KC_CURVE_PR, .num_thresholds = 50,
                              .summation_method = KC_SUMMATION_MAJORING, .from_logits = 1};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_PRECISION, .top_k = 2, .has_class_id = 1, .class_id = 1};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_RECALL, .has_threshold = 1, .threshold = 0.25f};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_FBETA_SCORE, .beta = 2, .average = KC_AVERAGE_WEIGHTED,
                              .has_threshold = 1, .threshold = 0.4f};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_BINARY_ACCURACY, .has_threshold = 1, .threshold = 0.3f,
                              .name = "ba"};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_TOP_K_CATEGORICAL_ACCURACY, .k = 2};
    KC_CHECK(kc_metric_from_name("mse", &s[n++]));
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_BINARY_CROSSENTROPY, .label_smoothing = 0.1f};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_LOG_COSH_ERROR};
    s[n++] = (kc_metric_spec){.kind = KC_METRIC_HUBER};
    o.weighted_metric_specs[0][0] = (kc_metric_spec){.kind = KC_METRIC_AUC};
    KC_CHECK(kc_compile_ex(m, &o));
    const char *dir = tu_tmpdir();
    const char *exts[] = {".keras", ".h5"};
    for (int i = 0; i < 2; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/all%s", dir, exts[i]);
        warnings[0] = 0;
        kc_set_warning_handler(keep_warning, NULL);
        KC_CHECK(kc_save(m, path));
        kc_model *back;
        KC_CHECK(kc_load(path, &back));
        kc_set_warning_handler(NULL, NULL);
        /* a legacy .h5 file cannot hold the loss function huber (Keras refuses its name there) */
        int lost = i == 1;
        if (lost) cr_assert(strstr(warnings, "huber"), "%s", warnings);
        cr_assert_eq(kc_model_metric_count(back), n + 1 - lost, "%s", path);
        for (int k = 0, j = 0; k < n + 1; k++) {
            if (lost && k == n - 1) continue;
            kc_metric_spec a, b;
            const char *ka, *kb;
            int wa, wb;
            KC_CHECK(kc_model_metric(m, k, &a, NULL, &wa, &ka));
            KC_CHECK(kc_model_metric(back, j++, &b, NULL, &wb, &kb));
            cr_assert_str_eq(ka, kb, "%s", path);
            cr_assert_eq(wa, wb);
            cr_assert_eq(a.kind, b.kind, "%s: %s", path, ka);
            cr_assert(a.k == b.k && a.top_k == b.top_k && a.has_class_id == b.has_class_id &&
                          a.class_id == b.class_id && a.num_thresholds == b.num_thresholds &&
                          a.curve == b.curve && a.summation_method == b.summation_method &&
                          a.from_logits == b.from_logits && a.label_smoothing == b.label_smoothing &&
                          a.beta == b.beta && a.average == b.average &&
                          a.has_threshold == b.has_threshold && a.threshold == b.threshold,
                      "%s: %s's options changed", path, ka);
        }
        kc_model_free(back);
    }
    kc_model_free(m);
}

/* a file's metrics kerac lacks or cannot fit are left out with a warning; the model loads */
Test(metrics, file_metrics_unknown_or_unfit_are_warnings) {
    const char *json =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"batch_shape\": [null, 4], \"name\": \"in\"}},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 1, \"activation\": \"sigmoid\"}}]},"
        "\"compile_config\": {\"optimizer\": \"adam\", \"loss\": \"binary_crossentropy\", \"metrics\": "
        "[\"accuracy\", \"r2_score\", {\"module\": \"keras.metrics\", \"class_name\": \"AUC\", \"config\": "
        "{\"name\": \"auc\", \"multi_label\": true}}, \"sparse_top_k_categorical_accuracy\", "
        "{\"module\": \"keras.metrics\", \"class_name\": \"Precision\", \"config\": {\"name\": \"precision\", "
        "\"class_id\": 4}}, \"top_k_categorical_accuracy\", {\"class_name\": \"MeanMetricWrapper\", "
        "\"config\": {\"name\": \"acc2\", \"dtype\": \"float32\", \"fn\": \"binary_accuracy\"}}]}}";
    warnings[0] = 0;
    kc_set_warning_handler(keep_warning, NULL);
    kc_model *m;
    kc_status st = kc_model_from_json(json, &m);
    kc_set_warning_handler(NULL, NULL);
    KC_CHECK(st);
    cr_assert(strstr(warnings, "'r2_score' is left out"), "%s", warnings);
    cr_assert(strstr(warnings, "multi_label"), "%s", warnings);
    cr_assert(strstr(warnings, "'sparse_top_k_categorical_accuracy' is left out"), "%s", warnings);
    cr_assert(strstr(warnings, "class_id 4"), "%s", warnings);
    cr_assert(strstr(warnings, "'top_k_categorical_accuracy' is left out"), "%s", warnings);
    cr_assert_eq(kc_model_metric_count(m), 2); /* accuracy and tf.keras 2's binary_accuracy */
    kc_metric_spec s;
    const char *key;
    KC_CHECK(kc_model_metric(m, 1, &s, NULL, NULL, &key));
    cr_assert_eq(s.kind, KC_METRIC_BINARY_ACCURACY);
    cr_assert_str_eq(key, "acc2");
    float x[4] = {1, 2, 3, 4}, p;
    KC_CHECK(kc_predict(m, x, 1, &p));
    kc_model_free(m);
}

/* tf.keras 2's training_config: its MeanMetricWrapper configs for the strings "acc",
 * "top_k_categorical_accuracy" and "mse", and its class configs (AUC, Precision(top_k=2)) */
Test(metrics, tf2_h5_metrics_load_and_match) {
    FILE *f = fopen(FIX "tf2_metrics.txt", "r");
    cr_assert_not_null(f);
    static float x[40], y[50];
    char line[256], word[48], keys[8][48];
    double want[8];
    int n = 0;
    cr_assert_not_null(fgets(line, sizeof line, f));
    read_floats(f, "x", x, 40);
    read_floats(f, "y", y, 50);
    while (fscanf(f, "%47s", word) == 1) {
        cr_assert_eq(fscanf(f, "%47s %lf", keys[n], &want[n]), 2);
        n++;
    }
    fclose(f);
    kc_model *m;
    KC_CHECK(kc_load(FIX "tf2_metrics.h5", &m));
    const kc_metric kinds[] = {KC_METRIC_ACCURACY, KC_METRIC_TOP_K_CATEGORICAL_ACCURACY,
                               KC_METRIC_AUC, KC_METRIC_MEAN_SQUARED_ERROR, KC_METRIC_PRECISION};
    cr_assert_eq(kc_model_metric_count(m), 5);
    for (int i = 0; i < 5; i++) {
        kc_metric_spec s;
        const char *key;
        KC_CHECK(kc_model_metric(m, i, &s, NULL, NULL, &key));
        cr_assert_eq(s.kind, kinds[i], "metric %d (%s)", i, key);
        cr_assert_str_eq(key, keys[i + 1]);
    }
    kc_dataset d = {.count = 10, .x_shape = kc_shape1(4), .x_dtype = KC_FLOAT32, .x = x,
                    .y_shape = kc_shape1(5), .y_dtype = KC_FLOAT32, .y = y};
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &d, &(kc_evaluate_opts){.batch_size = 4}, &r));
    cr_assert_eq(r.n_values, n);
    for (int i = 0; i < n; i++) {
        double v;
        cr_assert(kc_metrics_get(&r, keys[i], &v), "no %s", keys[i]);
        cr_expect(close_rel(v, want[i]), "%s: kerac %.9g, tf.keras 2 %.9g", keys[i], v, want[i]);
    }
    cr_assert(close_rel(r.accuracy, want[1]), "acc is kc_metrics.accuracy");
    kc_model_free(m);
}
