/* test_fitopts.c: fit's sample_weight, class_weight, steps_per_epoch and validation options,
 * evaluate's and train_on_batch's sample weights, against Keras 3 (the fixtures of
 * tests/gen_keras_fitopts_fixtures.py): History, evaluate's results and the final weights of
 * each case within 1e-5 relative; the fusions give the same bits with weights; bad input. */
#include "testutil.h"

#ifndef KERAC_FIXTURES
#define KERAC_FIXTURES "tests/fixtures"
#endif
#define FIX KERAC_FIXTURES "/keras_fitopts/cases.txt"

#define N 10
#define D 6
#define H 5
#define C 3
#define NV 6
#define TOL 1e-5
#define FLOOR 1e-3 /* relative error is |a - b| / max(|b|, FLOOR) */

/* ---- the fixture: "key values..." lines, cases opened by "case <name>" -------------------- */

static char *fx_text;

static void fx_load(void) {
    if (fx_text) return;
    FILE *f = fopen(FIX, "rb");
    cr_assert_not_null(f, "cannot open %s (run from the repository root)", FIX);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    fx_text = malloc((size_t)size + 1);
    cr_assert_eq(fread(fx_text, 1, (size_t)size, f), (size_t)size);
    fx_text[size] = 0;
    fclose(f);
}

/* the start of case name's block (NULL: the data lines before the first case) */
static const char *fx_case(const char *name) {
    fx_load();
    if (!name) return fx_text;
    char head[80];
    snprintf(head, sizeof head, "\ncase %s\n", name);
    const char *p = strstr(fx_text, head);
    cr_assert_not_null(p, "no case %s in %s", name, FIX);
    return p + strlen(head);
}

/* the line "key ..." in the block at start (up to the next case); returns its values' text */
static const char *fx_line(const char *start, const char *key) {
    size_t n = strlen(key);
    for (const char *p = start; p && *p;) {
        if (!strncmp(p, "case ", 5) && p != start) return NULL;
        if (!strncmp(p, key, n) && (p[n] == ' ' || p[n] == '\n')) return p + n;
        p = strchr(p, '\n');
        if (p) p++;
    }
    return NULL;
}

/* reads up to max floats of key's line into out; returns how many (-1: no such line) */
static int fx_floats(const char *start, const char *key, float *out, int max) {
    const char *p = fx_line(start, key);
    if (!p) return -1;
    int n = 0;
    while (*p && *p != '\n') {
        char *end;
        double v = strtod(p, &end);
        if (end == p) break;
        cr_assert_lt(n, max, "%s has more than %d values", key, max);
        out[n++] = (float)v;
        p = end;
    }
    return n;
}

static int fx_word(const char *start, const char *key, char *out, size_t size) {
    const char *p = fx_line(start, key);
    if (!p) return 0;
    while (*p == ' ') p++;
    size_t n = strcspn(p, " \n");
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p);
    return 1;
}

static double fx_num(const char *start, const char *key, double dflt) {
    float v;
    return fx_floats(start, key, &v, 1) == 1 ? v : dflt;
}

/* ---- the data and the model --------------------------------------------------------------- */

static float X[N * D], Y[N], YBIN[N], W[N], XV[NV * D], YV[NV], WV[NV];
static float ONEHOT[N * C], ONEHOT_V[NV * C];
static int32_t YI[N], YVI[NV];
static float INIT_SOFTMAX[D * H + H + H * C + C], INIT_SIGMOID[D * H + H + H + 1];

static void load_data(void) {
    const char *d = fx_case(NULL);
    cr_assert_eq(fx_floats(d, "x", X, N * D), N * D);
    cr_assert_eq(fx_floats(d, "y", Y, N), N);
    cr_assert_eq(fx_floats(d, "ybin", YBIN, N), N);
    cr_assert_eq(fx_floats(d, "w", W, N), N);
    cr_assert_eq(fx_floats(d, "xv", XV, NV * D), NV * D);
    cr_assert_eq(fx_floats(d, "yv", YV, NV), NV);
    cr_assert_eq(fx_floats(d, "wv", WV, NV), NV);
    cr_assert_eq(fx_floats(d, "init_softmax", INIT_SOFTMAX, 64), D * H + H + H * C + C);
    cr_assert_eq(fx_floats(d, "init_sigmoid", INIT_SIGMOID, 64), D * H + H + H + 1);
    memset(ONEHOT, 0, sizeof ONEHOT);
    memset(ONEHOT_V, 0, sizeof ONEHOT_V);
    for (int i = 0; i < N; i++) YI[i] = (int32_t)Y[i], ONEHOT[i * C + YI[i]] = 1.0f;
    for (int i = 0; i < NV; i++) YVI[i] = (int32_t)YV[i], ONEHOT_V[i * C + YVI[i]] = 1.0f;
}

static kc_loss loss_named(const char *name) {
    if (!strcmp(name, "categorical_crossentropy")) return KC_CATEGORICAL_CROSSENTROPY;
    if (!strcmp(name, "sparse_categorical_crossentropy")) return KC_SPARSE_CATEGORICAL_CROSSENTROPY;
    if (!strcmp(name, "binary_crossentropy")) return KC_BINARY_CROSSENTROPY;
    if (!strcmp(name, "mean_squared_error")) return KC_MEAN_SQUARED_ERROR;
    cr_assert_fail("unknown loss %s", name);
    return KC_LOSS_NONE;
}

/* the case's model with the fixture's initial weights, compiled as the generator did */
static kc_model *case_model(const char *c, int fusion) {
    char kind[16], loss[64], red[32];
    cr_assert(fx_word(c, "model", kind, sizeof kind));
    const char *l = fx_line(c, "loss");
    cr_assert_not_null(l);
    int from_logits, ignore;
    cr_assert_eq(sscanf(l, "%63s %d %31s %d", loss, &from_logits, red, &ignore), 4);
    int sigmoid = !strcmp(kind, "sigmoid");
    kc_model *m = kc_sequential(kc_shape1(D));
    KC_CHECK(kc_add(m, kc_dense(H, KC_RELU)));
    KC_CHECK(kc_add(m, kc_dense(sigmoid ? 1 : C,
                                sigmoid ? KC_SIGMOID : !strcmp(kind, "softmax") ? KC_SOFTMAX : KC_LINEAR)));
    if (!fusion) KC_CHECK(kc_set_fusion(m, 0));
    kc_compile_opts co = {.optimizer = kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}),
                          .metrics = {KC_METRIC_ACCURACY}};
    co.loss_specs[0] = (kc_loss_spec){
        .kind = loss_named(loss), .from_logits = from_logits,
        .reduction = !strcmp(red, "sum")                       ? KC_REDUCTION_SUM
                     : !strcmp(red, "mean_with_sample_weight") ? KC_REDUCTION_MEAN_WITH_SAMPLE_WEIGHT
                                                               : KC_REDUCTION_SUM_OVER_BATCH_SIZE,
        .has_ignore_class = ignore >= 0, .ignore_class = ignore >= 0 ? ignore : 0};
    KC_CHECK(kc_compile_ex(m, &co));
    if (sigmoid) KC_CHECK(kc_set_weights(m, INIT_SIGMOID, D * H + H + H + 1));
    else KC_CHECK(kc_set_weights(m, INIT_SOFTMAX, D * H + H + H * C + C));
    return m;
}

/* the case's targets on x (or on the validation data) */
static kc_dataset case_data(const char *c, int validation) {
    char targets[16];
    cr_assert(fx_word(c, "targets", targets, sizeof targets));
    kc_dataset ds = {.count = validation ? NV : N, .x_shape = kc_shape1(D),
                     .x_dtype = KC_FLOAT32, .x = validation ? XV : X};
    if (!strcmp(targets, "sparse")) {
        ds.y_shape = (kc_shape){0};
        ds.y_dtype = KC_INT32;
        ds.y = validation ? YVI : YI;
        ds.num_classes = C;
    } else if (!strcmp(targets, "onehot")) {
        ds.y_shape = kc_shape1(C);
        ds.y_dtype = KC_FLOAT32;
        ds.y = validation ? ONEHOT_V : ONEHOT;
    } else {
        cr_assert(!validation, "no validation data for binary targets");
        ds.y_shape = kc_shape1(1);
        ds.y_dtype = KC_FLOAT32;
        ds.y = YBIN;
    }
    return ds;
}

static int warnings_seen;
static char last_warning[512];
static void on_warning(const char *message, void *user) {
    (void)user;
    warnings_seen++;
    snprintf(last_warning, sizeof last_warning, "%s", message);
}

static double rel_err(double a, double b) { return fabs(a - b) / fmax(fabs(b), FLOOR); }

/* compares the History's values and the final weights with the case's; returns the largest
 * relative error */
static double check_results(const char *name, const char *c, kc_model *m, const kc_history *h) {
    double worst = 0.0;
    float want[64], got[64];
    const char *keys[] = {"loss", "accuracy", "val_loss", "val_accuracy"};
    for (int k = 0; h && k < 4; k++) {
        char line[32];
        snprintf(line, sizeof line, "hist_%s", keys[k]);
        int n = fx_floats(c, line, want, 64);
        const double *v = kc_history_get(h, keys[k]);
        if (n < 0) {
            /* Keras has no such key: kerac's are NaN throughout (or absent) */
            for (int e = 0; v && e < h->epochs; e++)
                cr_assert(isnan(v[e]), "%s: %s[%d] is %g, Keras has none", name, keys[k], e, v[e]);
            continue;
        }
        cr_assert_not_null(v, "%s: the History lacks %s", name, keys[k]);
        cr_assert_eq(h->epochs, n, "%s: %d epochs, Keras %d", name, h->epochs, n);
        for (int e = 0; e < n; e++) {
            double err = rel_err(v[e], want[e]);
            worst = fmax(worst, err);
            cr_expect(err <= TOL, "%s: %s[%d] = %.9g, Keras %.9g (rel %.3g)", name, keys[k], e,
                      v[e], (double)want[e], err);
        }
    }
    int n = fx_floats(c, "final", want, 64);
    cr_assert_gt(n, 0);
    KC_CHECK(kc_get_weights(m, got, n));
    for (int i = 0; i < n; i++) {
        double err = rel_err(got[i], want[i]);
        worst = fmax(worst, err);
        cr_expect(err <= TOL, "%s: weight %d = %.9g, Keras %.9g (rel %.3g)", name, i,
                  (double)got[i], (double)want[i], err);
    }
    return worst;
}

/* runs a fit case; *out_hist (optional) keeps the History, *out_model the model */
static double run_fit_case(const char *name, int fusion, kc_model **out_model, kc_history **out_hist) {
    load_data();
    const char *c = fx_case(name);
    kc_model *m = case_model(c, fusion);
    kc_dataset train = case_data(c, 0), val;
    kc_fit_opts o = {.no_shuffle = 1, .verbose = -1};
    o.batch_size = (int)fx_num(c, "opt_batch_size", 0);
    o.epochs = (int)fx_num(c, "opt_epochs", 1);
    o.steps_per_epoch = (int)fx_num(c, "opt_steps_per_epoch", 0);
    o.validation_split = (float)fx_num(c, "opt_validation_split", 0);
    o.validation_steps = (int)fx_num(c, "opt_validation_steps", 0);
    o.validation_batch_size = (int)fx_num(c, "opt_validation_batch_size", 0);
    if (fx_line(c, "opt_sample_weight")) train.sample_weight = W;
    char v[16];
    if (fx_word(c, "opt_validation", v, sizeof v)) {
        val = case_data(c, 1);
        if (!strcmp(v, "weighted")) val.sample_weight = WV;
        o.validation = &val;
    }
    float cw[16];
    int n_cw = fx_floats(c, "opt_class_weight", cw, 16);
    if (n_cw > 0) {
        for (int i = 0; i < n_cw; i++)
            if (cw[i] < 0) cw[i] = 1.0f; /* absent from Keras's dict: weight 1 */
        o.class_weight = cw;
        o.n_class_weight = n_cw;
    }
    warnings_seen = 0;
    kc_set_warning_handler(on_warning, NULL);
    kc_history *h = NULL;
    KC_CHECK(kc_fit(m, &train, &o, &h));
    kc_set_warning_handler(NULL, NULL);
    int warned = (int)fx_num(c, "warned", 0);
    cr_expect_eq(warnings_seen > 0, warned, "%s: warned %d, Keras %d (%s)", name, warnings_seen,
                 warned, last_warning);
    if (warned) cr_expect(strstr(last_warning, "ran out of data"), "%s: %s", name, last_warning);
    double worst = check_results(name, c, m, h);
    if (out_hist) *out_hist = h;
    else kc_history_free(h);
    if (out_model) *out_model = m;
    else kc_model_free(m);
    return worst;
}

static void fit_case(const char *name) {
    double worst = run_fit_case(name, 1, NULL, NULL);
    fprintf(stderr, "fitopts %-18s max rel err vs Keras %.3g\n", name, worst);
}

/* (a) sample_weight */
Test(fitopts, sample_weight_onehot_with_weighted_validation) { fit_case("sw_onehot"); }
Test(fitopts, sample_weight_validation_split) { fit_case("sw_split"); }
Test(fitopts, sample_weight_sparse) { fit_case("sw_sparse"); }
Test(fitopts, sample_weight_reduction_sum) { fit_case("sw_sum"); }
Test(fitopts, sample_weight_reduction_mean_with_sample_weight) { fit_case("sw_mean_sw"); }
Test(fitopts, sample_weight_mse) { fit_case("sw_mse"); }
Test(fitopts, sample_weight_ignore_class_logits) { fit_case("sw_ignore"); }
Test(fitopts, sample_weight_binary) { fit_case("sw_bce"); }
/* (b), (c), (f) class_weight */
Test(fitopts, class_weight_onehot) { fit_case("cw_onehot"); }
Test(fitopts, class_weight_sparse_from_logits) { fit_case("cw_sparse_logits"); }
Test(fitopts, class_weight_binary_one_column) { fit_case("cw_bce"); }
/* (d) steps_per_epoch, and the validation options */
Test(fitopts, steps_per_epoch_fewer_than_the_data) { fit_case("steps_less"); }
Test(fitopts, steps_per_epoch_more_than_the_data) { fit_case("steps_more"); }
Test(fitopts, steps_per_epoch_without_batch_size) { fit_case("steps_no_batch"); }
Test(fitopts, validation_steps_and_batch_size) { fit_case("val_opts"); }

/* (e) evaluate with sample_weight: the loss weighted, accuracy not */
static void eval_case(const char *name) {
    load_data();
    const char *c = fx_case(name);
    kc_model *m = case_model(c, 1);
    kc_dataset ds = case_data(c, 0);
    ds.sample_weight = W;
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &ds, &(kc_evaluate_opts){.batch_size = (int)fx_num(c, "opt_batch_size", 0)}, &r));
    double want_loss = fx_num(c, "eval_loss", NAN), want_acc = fx_num(c, "eval_accuracy", NAN);
    double worst = fmax(rel_err(r.loss, want_loss), rel_err(r.accuracy, want_acc));
    cr_expect(rel_err(r.loss, want_loss) <= TOL, "%s: loss %.9g, Keras %.9g", name, r.loss, want_loss);
    cr_expect(rel_err(r.accuracy, want_acc) <= TOL, "%s: accuracy %.9g, Keras %.9g", name,
              r.accuracy, want_acc);
    fprintf(stderr, "fitopts %-18s max rel err vs Keras %.3g\n", name, worst);
    kc_model_free(m);
}
Test(fitopts, evaluate_sample_weight) { eval_case("eval_sw"); }
Test(fitopts, evaluate_sample_weight_sparse) { eval_case("eval_sw_sparse"); }

Test(fitopts, train_on_batch_weighted) {
    load_data();
    const char *c = fx_case("tob_sw");
    kc_model *m = case_model(c, 1);
    int b = (int)fx_num(c, "opt_batch_size", 0);
    kc_metrics r;
    KC_CHECK(kc_train_on_batch_weighted(m, X, ONEHOT, W, b, &r));
    double want = fx_num(c, "tob_loss", NAN);
    double worst = rel_err(r.loss, want);
    cr_expect(worst <= TOL, "loss %.9g, Keras %.9g", r.loss, want);
    cr_expect(rel_err(r.accuracy, fx_num(c, "tob_accuracy", NAN)) <= TOL);
    worst = fmax(worst, check_results("tob_sw", c, m, NULL));
    fprintf(stderr, "fitopts %-18s max rel err vs Keras %.3g\n", "tob_sw", worst);
    kc_model_free(m);
}

/* The fusions (softmax / sigmoid folded into the loss gradient) scale each row by its weight:
 * the same bits as the plain path */
Test(fitopts, fusion_same_bits_with_weights) {
    const char *cases[] = {"sw_onehot", "sw_sparse", "sw_bce", "cw_onehot", "cw_bce"};
    for (int k = 0; k < 5; k++) {
        kc_model *a, *b;
        kc_history *ha, *hb;
        run_fit_case(cases[k], 1, &a, &ha);
        run_fit_case(cases[k], 0, &b, &hb);
        float wa[64], wb[64];
        int n = (int)kc_count_params(a);
        KC_CHECK(kc_get_weights(a, wa, n));
        KC_CHECK(kc_get_weights(b, wb, n));
        cr_expect(!memcmp(wa, wb, sizeof(float) * (size_t)n), "%s: fused and plain weights differ",
                  cases[k]);
        for (int e = 0; e < ha->epochs; e++)
            cr_expect(!memcmp(&ha->loss[e], &hb->loss[e], sizeof(double)),
                      "%s: epoch %d loss %.17g fused, %.17g plain", cases[k], e, ha->loss[e],
                      hb->loss[e]);
        kc_history_free(ha);
        kc_history_free(hb);
        kc_model_free(a);
        kc_model_free(b);
    }
}

/* weights of 1 are the unweighted run, bit for bit in the weights */
Test(fitopts, unit_weights_are_no_weights) {
    load_data();
    const char *c = fx_case("sw_onehot");
    float ones[N];
    for (int i = 0; i < N; i++) ones[i] = 1.0f;
    float wa[64], wb[64];
    kc_model *a = case_model(c, 1), *b = case_model(c, 1);
    kc_dataset da = case_data(c, 0), db = da;
    db.sample_weight = ones;
    kc_fit_opts o = {.batch_size = 4, .epochs = 2, .no_shuffle = 1, .verbose = -1};
    KC_CHECK(kc_fit(a, &da, &o, NULL));
    KC_CHECK(kc_fit(b, &db, &o, NULL));
    int n = (int)kc_count_params(a);
    KC_CHECK(kc_get_weights(a, wa, n));
    KC_CHECK(kc_get_weights(b, wb, n));
    for (int i = 0; i < n; i++) cr_expect(tu_close(wa[i], wb[i], 1e-6), "weight %d", i);
    kc_model_free(a);
    kc_model_free(b);
}

/* ---- multi-output: one sample_weight for every output, or one per output ----------------- */

static kc_model *two_heads(void) {
    kc_tensor *in = kc_input(kc_shape1(D));
    kc_tensor *h = kc_call(kc_dense(H, KC_RELU), in);
    kc_tensor *outs[2] = {kc_call(kc_dense(C, KC_SOFTMAX), h), kc_call(kc_dense(C, KC_SOFTMAX), h)};
    kc_model *m = kc_functional(&in, 1, outs, 2);
    cr_assert_not_null(m, "%s", kc_last_error());
    kc_compile_opts co = {.optimizer = kc_sgd(NULL), .loss = {KC_CATEGORICAL_CROSSENTROPY}};
    KC_CHECK(kc_compile_ex(m, &co));
    return m;
}

Test(fitopts, per_output_sample_weights) {
    load_data();
    kc_model *m = two_heads();
    kc_dataset ds = {.count = N, .n_inputs = 1, .n_targets = 2};
    ds.inputs[0] = (kc_array){kc_shape1(D), KC_FLOAT32, X, 0, 0};
    ds.targets[0] = ds.targets[1] = (kc_array){kc_shape1(C), KC_FLOAT32, ONEHOT, 0, 0};
    kc_metrics plain, one, per;
    kc_evaluate_opts eo = {.batch_size = 4};
    KC_CHECK(kc_evaluate(m, &ds, &eo, &plain));
    ds.sample_weight = W; /* every output */
    KC_CHECK(kc_evaluate(m, &ds, &eo, &one));
    ds.sample_weight = NULL;
    ds.output_sample_weight[0] = W; /* output 0 only */
    KC_CHECK(kc_evaluate(m, &ds, &eo, &per));
    cr_expect(tu_close(per.output_loss[0], one.output_loss[0], 1e-12));
    cr_expect(tu_close(per.output_loss[1], plain.output_loss[1], 1e-12));
    cr_expect(tu_close(one.output_loss[1], one.output_loss[1], 1e-12));
    cr_expect(!tu_close(one.output_loss[0], plain.output_loss[0], 1e-6));
    cr_expect(tu_close(per.loss, per.output_loss[0] + per.output_loss[1], 1e-9));
    /* class_weight: single-output models only (Keras) */
    kc_dataset plain_ds = ds;
    plain_ds.output_sample_weight[0] = NULL;
    float cw[3] = {1, 2, 3};
    KC_EXPECT_ERR(kc_fit(m, &plain_ds,
                         &(kc_fit_opts){.class_weight = cw, .n_class_weight = 3, .verbose = -1}, NULL),
                  KC_EINVAL, "only supported for models with a single output");
    ds.output_sample_weight[2] = W;
    KC_EXPECT_ERR(kc_evaluate(m, &ds, &eo, NULL), KC_EINVAL, "output_sample_weight[2]");
    kc_model_free(m);
}

/* ---- bad input ----------------------------------------------------------------------------- */

Test(fitopts, bad_input) {
    load_data();
    const char *c = fx_case("sw_onehot");
    kc_model *m = case_model(c, 1);
    kc_dataset ds = case_data(c, 0);
    float bad[N];
    memcpy(bad, W, sizeof bad);
    kc_fit_opts o = {.batch_size = 4, .verbose = -1};
    bad[3] = -0.5f;
    ds.sample_weight = bad;
    KC_EXPECT_ERR(kc_fit(m, &ds, &o, NULL), KC_EINVAL, "sample_weight[3] is -0.5");
    bad[3] = NAN;
    KC_EXPECT_ERR(kc_fit(m, &ds, &o, NULL), KC_EINVAL, "sample_weight[3] is nan");
    KC_EXPECT_ERR(kc_evaluate(m, &ds, NULL, NULL), KC_EINVAL, "sample_weight[3]");
    kc_dataset val = ds;
    ds.sample_weight = NULL;
    o.validation = &val;
    KC_EXPECT_ERR(kc_fit(m, &ds, &o, NULL), KC_EINVAL, "validation data): sample_weight[3]");
    o.validation = NULL;
    KC_EXPECT_ERR(kc_train_on_batch_weighted(m, X, ONEHOT, bad, 4, NULL), KC_EINVAL,
                  "sample_weight[3] is nan");
    /* class_weight */
    float cw[3] = {1.0f, -2.0f, 1.0f};
    o.class_weight = cw;
    o.n_class_weight = 3;
    KC_EXPECT_ERR(kc_fit(m, &ds, &o, NULL), KC_EINVAL, "class_weight[1] (class 1) is -2");
    cw[1] = INFINITY;
    KC_EXPECT_ERR(kc_fit(m, &ds, &o, NULL), KC_EINVAL, "class_weight[1] (class 1) is inf");
    cw[1] = 2.0f;
    ds.sample_weight = W;
    KC_EXPECT_ERR(kc_fit(m, &ds, &o, NULL), KC_EINVAL, "class_weight and the data's sample_weight");
    ds.sample_weight = NULL;
    o.n_class_weight = -1;
    KC_EXPECT_ERR(kc_fit(m, &ds, &o, NULL), KC_EINVAL, "n_class_weight is -1");
    o.class_weight = NULL;
    o.n_class_weight = 0;
    o.steps_per_epoch = -1;
    KC_EXPECT_ERR(kc_fit(m, &ds, &o, NULL), KC_EINVAL, "steps_per_epoch (-1)");
    o.steps_per_epoch = 0;
    o.validation_freq = -2;
    KC_EXPECT_ERR(kc_fit(m, &ds, &o, NULL), KC_EINVAL, "validation_freq (-2)");
    KC_EXPECT_ERR(kc_evaluate(m, &ds, &(kc_evaluate_opts){.steps = -1}, NULL), KC_EINVAL,
                  "steps is -1");
    kc_model_free(m);
}

/* validation_freq: the val_ values of the epochs not validated are NaN (Keras leaves them out) */
Test(fitopts, validation_freq) {
    load_data();
    const char *c = fx_case("sw_onehot");
    kc_model *m = case_model(c, 1);
    kc_dataset ds = case_data(c, 0), val = case_data(c, 1);
    kc_history *h;
    KC_CHECK(kc_fit(m, &ds, &(kc_fit_opts){.batch_size = 4, .epochs = 4, .verbose = -1,
                                           .validation = &val, .validation_freq = 2}, &h));
    const double *vl = kc_history_get(h, "val_loss");
    cr_assert_not_null(vl);
    cr_expect(isnan(vl[0]) && !isnan(vl[1]) && isnan(vl[2]) && !isnan(vl[3]));
    kc_history_free(h);
    kc_model_free(m);
}

/* evaluate's steps: the first steps batches */
Test(fitopts, evaluate_steps) {
    load_data();
    const char *c = fx_case("sw_onehot");
    kc_model *m = case_model(c, 1);
    kc_dataset ds = case_data(c, 0), first = ds;
    first.count = 4;
    kc_metrics a, b;
    KC_CHECK(kc_evaluate(m, &ds, &(kc_evaluate_opts){.batch_size = 2, .steps = 2}, &a));
    KC_CHECK(kc_evaluate(m, &first, &(kc_evaluate_opts){.batch_size = 2}, &b));
    cr_expect(tu_close(a.loss, b.loss, 1e-12), "%g vs %g", a.loss, b.loss);
    warnings_seen = 0;
    kc_set_warning_handler(on_warning, NULL);
    KC_CHECK(kc_evaluate(m, &ds, &(kc_evaluate_opts){.batch_size = 4, .steps = 9}, &a));
    kc_set_warning_handler(NULL, NULL);
    cr_expect_eq(warnings_seen, 1);
    kc_model_free(m);
}

/* Keras's weighted_metrics take fit's and evaluate's sample weights (a Mean metric divides by
 * the weights' sum), its metrics do not: an identity model makes both values known by hand. */
#define WN 6
#define WC 2
Test(fitopts, weighted_metrics_take_the_sample_weights) {
    float x[WN * WC], y[WN * WC], sw[WN] = {1, 0, 2, 0.5f, 3, 0};
    for (int i = 0; i < WN * WC; i++) {
        x[i] = (float)((i * 7) % 5) / 4.0f;
        y[i] = (float)((i * 3) % 4) / 3.0f;
    }
    kc_model *m = kc_sequential(kc_shape1(WC));
    KC_CHECK(kc_add(m, kc_dense(WC, KC_LINEAR)));
    float eye[WC * WC + WC] = {1, 0, 0, 1, 0, 0};
    KC_CHECK(kc_set_weights(m, eye, WC * WC + WC));
    kc_compile_opts o = {.optimizer = kc_sgd(NULL), .loss = {KC_MEAN_SQUARED_ERROR}};
    o.metric_specs[0][0] = (kc_metric_spec){.kind = KC_METRIC_MEAN_ABSOLUTE_ERROR};
    o.weighted_metric_specs[0][0] = (kc_metric_spec){.kind = KC_METRIC_MEAN_ABSOLUTE_ERROR};
    KC_CHECK(kc_compile_ex(m, &o));
    kc_dataset ds = {.count = WN, .x_shape = kc_shape1(WC), .x_dtype = KC_FLOAT32, .x = x,
                     .y_shape = kc_shape1(WC), .y_dtype = KC_FLOAT32, .y = y, .sample_weight = sw};
    double plain = 0, weighted = 0, wsum = 0;
    for (int i = 0; i < WN; i++) {
        double mae = 0;
        for (int j = 0; j < WC; j++) mae += fabs((double)x[i * WC + j] - y[i * WC + j]) / WC;
        plain += mae / WN;
        weighted += sw[i] * mae;
        wsum += sw[i];
    }
    weighted /= wsum;
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &ds, &(kc_evaluate_opts){.batch_size = 4}, &r));
    double a = NAN, b = NAN;
    cr_assert(kc_metrics_get(&r, "mean_absolute_error", &a), "no key mean_absolute_error");
    cr_assert(kc_metrics_get(&r, "weighted_mean_absolute_error", &b),
              "no key weighted_mean_absolute_error");
    cr_expect(tu_close(a, plain, 1e-6), "unweighted metric %g, expected %g", a, plain);
    cr_expect(tu_close(b, weighted, 1e-6), "weighted metric %g, expected %g", b, weighted);
    kc_model_free(m);
}
