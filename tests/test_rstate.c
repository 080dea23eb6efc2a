/* test_rstate.c: the recurrent layers' return_state and initial_state, and Bidirectional's
 * merge_mode=None, against Keras 3 (tests/gen_keras_rstate_fixtures.py writes the fixtures):
 * each model loaded from Keras 3's .keras and .h5 predicts as Keras, its loss gradient wrt every
 * weight and one SGD step agree, and kerac's saves load back equal. The C API: kc_call_multi
 * with the outputs, initial_state as further inputs, and what is refused. */
#include "testutil.h"
#include "fixture.h"
#include <math.h>

#define FIX "tests/fixtures/rstate/"
#define B 3

static void expect_close(const char *what, const float *got, const float *want, long n,
                         double tol) {
    double worst = 0;
    for (long i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]) / fmax(1.0, fabs(want[i]));
        if (err > worst) worst = err;
        cr_expect(err <= tol, "%s[%ld]: %.9g, Keras %.9g", what, i, got[i], want[i]);
    }
    cr_log_info("%s: worst relative error %.3g", what, worst);
}

static void inputs_of(const fixture *f, const float **x, int *n) {
    *n = 0;
    char nm[16];
    for (int i = 0; i < 4; i++) {
        snprintf(nm, sizeof nm, "x%d", i);
        const tensor *t = tu_fixture_find(f, nm);
        if (t) x[(*n)++] = t->data;
    }
}

static void check_predict(kc_model *m, const fixture *f, const char *what) {
    const float *x[4];
    int n;
    inputs_of(f, x, &n);
    cr_assert_eq(kc_model_input_count(m), n, "%s: inputs", what);
    const tensor *want = tu_fixture_get(f, "output");
    float *out = malloc(sizeof(float) * (size_t)want->count);
    KC_CHECK(kc_predict_multi(m, x, B, (float *const[]){out}));
    expect_close(what, out, want->data, want->count, 1e-5);
    free(out);
}

static void check_case(const char *name, const char *ext) {
    char path[256], what[300];
    snprintf(path, sizeof path, FIX "%s.txt", name);
    fixture f;
    tu_fixture_load(path, &f);
    snprintf(path, sizeof path, FIX "%s%s", name, ext);
    kc_model *m;
    KC_CHECK(kc_load(path, &m));
    int64_t n = kc_count_params(m);
    const tensor *tw = tu_fixture_get(&f, "weights");
    cr_assert_eq(n, tw->count, "%s: %lld weights, Keras %ld", path, (long long)n, tw->count);
    float *w = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_get_weights(m, w, n));
    for (int64_t k = 0; k < n; k++) cr_assert_eq(w[k], tw->data[k], "%s: weight %lld", path, (long long)k);
    snprintf(what, sizeof what, "%s: predict", path);
    check_predict(m, &f, what);
    /* MSE's loss and gradients, then one SGD(0.1) step */
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}), 0));
    const float *x[4];
    int nx;
    inputs_of(&f, x, &nx);
    const float *y[1] = {tu_fixture_get(&f, "y")->data};
    double loss;
    KC_CHECK(kc_compute_gradients_multi(m, x, y, B, 1, &loss, g, n));
    double want_loss = tu_fixture_get(&f, "loss")->data[0];
    cr_expect(fabs(loss - want_loss) <= 1e-5 * fmax(1.0, fabs(want_loss)), "%s: loss %.9g, Keras %.9g",
              path, loss, want_loss);
    snprintf(what, sizeof what, "%s: grads", path);
    expect_close(what, g, tu_fixture_get(&f, "grads")->data, n, 1e-5);
    KC_CHECK(kc_train_on_batch_multi(m, x, y, B, NULL));
    KC_CHECK(kc_get_weights(m, w, n));
    snprintf(what, sizeof what, "%s: after_sgd", path);
    expect_close(what, w, tu_fixture_get(&f, "after_sgd")->data, n, 1e-5);
    kc_model_free(m);
    /* kerac's saves load back equal (and, with KERAC_RSTATE_SAVE_DIR, are kept for Keras 3's
     * check: gen_keras_rstate_fixtures.py check DIR) */
    const char *keep = getenv("KERAC_RSTATE_SAVE_DIR");
    const char *exts[] = {".keras", ".h5"};
    for (int e = 0; e < 2; e++) {
        kc_model *a, *b;
        KC_CHECK(kc_load(path, &a));
        char out[512];
        snprintf(out, sizeof out, "%s/%s%s", keep ? keep : tu_tmpdir(), name, exts[e]);
        KC_CHECK(kc_save(a, out));
        KC_CHECK(kc_load(out, &b));
        snprintf(what, sizeof what, "%s saved by kerac as %s", path, exts[e]);
        check_predict(b, &f, what);
        cr_expect_eq(kc_count_params(a), kc_count_params(b));
        kc_model_free(a);
        kc_model_free(b);
    }
    free(w);
    free(g);
    tu_fixture_free(&f);
}

/* tf.keras 2.15's .h5 (initial_state as the call's further inputs): loaded, predicting as
 * tf.keras, and kerac's .h5 of it loading back equal (tf.keras 2 reads it: the generator's
 * check) */
static void check_tf2(const char *name) {
    char path[256], what[300];
    snprintf(path, sizeof path, FIX "%s.tf2.txt", name);
    fixture f;
    tu_fixture_load(path, &f);
    snprintf(path, sizeof path, FIX "%s.tf2.h5", name);
    kc_model *m, *b;
    KC_CHECK(kc_load(path, &m));
    snprintf(what, sizeof what, "%s: predict", path);
    check_predict(m, &f, what);
    const char *keep = getenv("KERAC_RSTATE_SAVE_DIR");
    char out[512];
    snprintf(out, sizeof out, "%s/%s.tf2.h5", keep ? keep : tu_tmpdir(), name);
    KC_CHECK(kc_save(m, out));
    KC_CHECK(kc_load(out, &b));
    snprintf(what, sizeof what, "%s saved by kerac", path);
    check_predict(b, &f, what);
    kc_model_free(m);
    kc_model_free(b);
    tu_fixture_free(&f);
}

#define CASE(name)                                                                           \
    Test(rstate_keras3, name) { check_case(#name, ".keras"); }                                \
    Test(rstate_keras3_h5, name) { check_case(#name, ".h5"); }                                \
    Test(rstate_tf_keras2, name) { check_tf2(#name); }
CASE(enc_lstm)
CASE(gru_seq)
CASE(bidi_none)
CASE(seq2seq)
CASE(bidi_state)

/* the C API: outputs and shapes, initial_state, and the refusals */
Test(rstate_api, outputs_and_refusals) {
    kc_tensor *x = kc_input(kc_shape2(5, 3));
    kc_tensor *o[3];
    kc_layer *lstm = kc_lstm(4, &(kc_rnn_opts){.return_state = 1, .return_sequences = 1});
    KC_CHECK(kc_call_multi(lstm, &x, 1, o, 3));
    kc_tensor *o2[2];
    KC_EXPECT_ERR(kc_call_multi(lstm, &x, 1, o2, 2), KC_EINVAL, "3 outputs"); /* held: kept */
    kc_shape s0 = kc_tensor_shape(o[0]), s1 = kc_tensor_shape(o[1]), s2 = kc_tensor_shape(o[2]);
    cr_expect(s0.rank == 2 && s0.dims[0] == 5 && s0.dims[1] == 4);
    cr_expect(s1.rank == 1 && s1.dims[0] == 4 && s2.rank == 1 && s2.dims[0] == 4);
    /* initial_state: the decoder takes h and c */
    kc_tensor *y = kc_input(kc_shape2(2, 3));
    kc_tensor *dec_out;
    KC_CHECK(kc_call_multi(kc_lstm(4, NULL), (kc_tensor *[]){y, o[1], o[2]}, 3, &dec_out, 1));
    kc_tensor *bad;
    KC_EXPECT_ERR(kc_call_multi(kc_gru(4, NULL), (kc_tensor *[]){y, o[1], o[2]}, 3, &bad, 1),
                  KC_EINVAL, "at least 1 input");
    KC_EXPECT_ERR(kc_call_multi(kc_gru(3, NULL), (kc_tensor *[]){y, o[1]}, 2, &bad, 1), KC_EINVAL,
                  "initial state 0 has shape");
    kc_model *m = kc_functional((kc_tensor *[]){x, y}, 2, (kc_tensor *[]){dec_out, o[0]}, 2);
    cr_assert_not_null(m, "%s", kc_last_error());
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    KC_CHECK(kc_summary(m, mem));
    fclose(mem);
    /* tf.keras 2.15's list of output shapes, an item a line */
    cr_expect(strstr(buf, " lstm (LSTM)                 [(None, 5, 4),               128       "
                          "['input_layer[0][0]']") != NULL &&
                  strstr(buf, "                              (None, 4),    ") != NULL &&
                  strstr(buf, "                              (None, 4)]    ") != NULL,
              "summary:\n%s", buf);
    free(buf);
    kc_model_free(m);
    /* Sequential takes layers of one output; Bidirectional's two layers return_state alike */
    kc_model *s = kc_sequential(kc_shape2(5, 3));
    KC_EXPECT_ERR(kc_add(s, kc_gru(2, &(kc_rnn_opts){.return_state = 1})), KC_EINVAL,
                  "outputs");
    kc_model_free(s);
    cr_expect_null(kc_bidirectional(kc_gru(2, &(kc_rnn_opts){.return_state = 1}),
                                    KC_MERGE_CONCAT, kc_gru(2, NULL)));
}

/* a None length: the sequence output's slice follows the bound length */
Test(rstate_api, none_length) {
    kc_tensor *x = kc_input(kc_shape2(KC_NONE, 2));
    kc_tensor *o[2], *b[2];
    KC_CHECK(kc_call_multi(kc_gru(3, &(kc_rnn_opts){.return_state = 1, .return_sequences = 1}),
                           &x, 1, o, 2));
    KC_CHECK(kc_call_multi(kc_bidirectional(kc_simple_rnn(2, &(kc_rnn_opts){.return_sequences = 1}),
                                            KC_MERGE_NONE, NULL),
                           &o[0], 1, b, 2));
    kc_model *m = kc_functional(&x, 1, (kc_tensor *[]){b[1], o[1]}, 2);
    cr_assert_not_null(m, "%s", kc_last_error());
    float xs[2 * 4 * 2];
    for (int i = 0; i < 16; i++) xs[i] = 0.1f * (float)(i % 7) - 0.3f;
    float out0[2 * 4 * 2], out1[2 * 3];
    kc_array arr = {.shape = kc_shape2(4, 2), .dtype = KC_FLOAT32, .data = xs};
    KC_CHECK(kc_predict_ex(m, &arr, 2, (float *const[]){out0, out1}, NULL));
    /* the state is the sequence's last step */
    kc_model *seq = kc_functional(&x, 1, &o[0], 1);
    cr_assert_not_null(seq, "%s", kc_last_error());
    float full[2 * 4 * 3];
    KC_CHECK(kc_predict_ex(seq, &arr, 2, (float *const[]){full}, NULL));
    for (int bi = 0; bi < 2; bi++)
        for (int j = 0; j < 3; j++)
            cr_expect_float_eq(out1[bi * 3 + j], full[bi * 12 + 9 + j], 1e-6);
    kc_model_free(seq);
    kc_model_free(m);
}

/* Bidirectional(GRU, merge_mode=None) after Masking, built here (Keras 3's file of it records
 * its mask as op layers, NotEqual and Any, which kerac does not read): both outputs carry the
 * mask, so the sequence loss leaves the masked steps out, as Keras 3 (the fixture's weights,
 * predictions, loss, gradients and SGD step are Keras 3's); tf.keras 2's file loads too */
Test(rstate_api, bidi_none_masked) {
    fixture f;
    tu_fixture_load(FIX "bidi_mask.txt", &f);
    kc_tensor *x = kc_input(kc_shape2(5, 3));
    kc_tensor *m0 = kc_call(kc_masking(0.0f), x), *fb[2];
    KC_CHECK(kc_call_multi(kc_bidirectional(kc_gru(3, &(kc_rnn_opts){.return_sequences = 1}),
                                            KC_MERGE_NONE, NULL),
                           &m0, 1, fb, 2));
    kc_tensor *cat = kc_call_n(kc_concatenate(-1), fb, 2);
    kc_model *m = kc_functional(&x, 1, (kc_tensor *[]){kc_call(kc_dense(2, KC_LINEAR), cat)}, 1);
    cr_assert_not_null(m, "%s", kc_last_error());
    const tensor *tw = tu_fixture_get(&f, "weights");
    int64_t n = kc_count_params(m);
    cr_assert_eq(n, tw->count);
    KC_CHECK(kc_set_weights(m, tw->data, n));
    check_predict(m, &f, "bidi_mask: predict");
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}), 0));
    const float *xs[1] = {tu_fixture_get(&f, "x0")->data}, *y[1] = {tu_fixture_get(&f, "y")->data};
    float *w = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
    double loss;
    KC_CHECK(kc_compute_gradients_multi(m, xs, y, B, 1, &loss, g, n));
    double want_loss = tu_fixture_get(&f, "loss")->data[0];
    cr_expect(fabs(loss - want_loss) <= 1e-5 * fmax(1.0, fabs(want_loss)), "bidi_mask: loss %.9g, Keras %.9g",
              loss, want_loss);
    expect_close("bidi_mask: grads", g, tu_fixture_get(&f, "grads")->data, n, 1e-5);
    KC_CHECK(kc_train_on_batch_multi(m, xs, y, B, NULL));
    KC_CHECK(kc_get_weights(m, w, n));
    expect_close("bidi_mask: after_sgd", w, tu_fixture_get(&f, "after_sgd")->data, n, 1e-5);
    free(w);
    free(g);
    kc_model_free(m);
    tu_fixture_free(&f);
}
Test(rstate_tf_keras2, bidi_mask) { check_tf2("bidi_mask"); }

/* a masked model built here (Keras 3's files of these record the mask as op layers, NotEqual
 * and Any, which kerac does not read): predictions, loss, gradients and an SGD step against
 * Keras 3's fixture, kerac's files of it loading back (and, with KERAC_RSTATE_SAVE_DIR, in
 * Keras 3: the generator's check) */
static void check_built(const char *name, kc_model *m) {
    char path[256];
    snprintf(path, sizeof path, FIX "%s.txt", name);
    fixture f;
    tu_fixture_load(path, &f);
    cr_assert_not_null(m, "%s", kc_last_error());
    const tensor *tw = tu_fixture_get(&f, "weights");
    int64_t n = kc_count_params(m);
    cr_assert_eq(n, tw->count);
    KC_CHECK(kc_set_weights(m, tw->data, n));
    check_predict(m, &f, name);
    const char *keep = getenv("KERAC_RSTATE_SAVE_DIR");
    const char *exts[] = {".keras", ".h5"};
    for (int e = 0; e < 2; e++) {
        char out[512];
        snprintf(out, sizeof out, "%s/%s%s", keep ? keep : tu_tmpdir(), name, exts[e]);
        KC_CHECK(kc_save(m, out));
        kc_model *b;
        KC_CHECK(kc_load(out, &b));
        check_predict(b, &f, out);
        kc_model_free(b);
    }
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}), 0));
    const float *xs[1] = {tu_fixture_get(&f, "x0")->data}, *y[1] = {tu_fixture_get(&f, "y")->data};
    float *w = malloc(sizeof(float) * (size_t)n), *gr = malloc(sizeof(float) * (size_t)n);
    double loss;
    KC_CHECK(kc_compute_gradients_multi(m, xs, y, B, 1, &loss, gr, n));
    double want_loss = tu_fixture_get(&f, "loss")->data[0];
    cr_expect(fabs(loss - want_loss) <= 1e-5 * fmax(1.0, fabs(want_loss)),
              "%s: loss %.9g, Keras %.9g", name, loss, want_loss);
    char what[300];
    snprintf(what, sizeof what, "%s: grads", name);
    expect_close(what, gr, tu_fixture_get(&f, "grads")->data, n, 1e-5);
    KC_CHECK(kc_train_on_batch_multi(m, xs, y, B, NULL));
    KC_CHECK(kc_get_weights(m, w, n));
    snprintf(what, sizeof what, "%s: after_sgd", name);
    expect_close(what, w, tu_fixture_get(&f, "after_sgd")->data, n, 1e-5);
    free(w);
    free(gr);
    kc_model_free(m);
    tu_fixture_free(&f);
}

/* LSTM(return_sequences, return_state) after Masking: its sequence output carries the mask
 * (the GRU after it skips the masked steps), its states none, as Keras 3's */
Test(rstate_api, state_seq_masked) {
    kc_tensor *x = kc_input(kc_shape2(5, 3));
    kc_tensor *m0 = kc_call(kc_masking(0.0f), x), *shc[3];
    KC_CHECK(kc_call_multi(kc_lstm(4, &(kc_rnn_opts){.return_sequences = 1, .return_state = 1}),
                           &m0, 1, shc, 3));
    kc_tensor *g = kc_call(kc_gru(3, NULL), shc[0]);
    kc_tensor *cat = kc_call_n(kc_concatenate(-1), (kc_tensor *[]){g, shc[1], shc[2]}, 3);
    check_built("mask_state",
                kc_functional(&x, 1, (kc_tensor *[]){kc_call(kc_dense(2, KC_LINEAR), cat)}, 1));
}

/* the same on a None length (the mask's rows bound per call): Keras's predictions at length 5 */
Test(rstate_api, state_seq_masked_none) {
    kc_tensor *x = kc_input(kc_shape2(KC_NONE, 3));
    kc_tensor *m0 = kc_call(kc_masking(0.0f), x), *shc[3];
    KC_CHECK(kc_call_multi(kc_lstm(4, &(kc_rnn_opts){.return_sequences = 1, .return_state = 1}),
                           &m0, 1, shc, 3));
    kc_tensor *g = kc_call(kc_gru(3, NULL), shc[0]);
    kc_tensor *cat = kc_call_n(kc_concatenate(-1), (kc_tensor *[]){g, shc[1], shc[2]}, 3);
    kc_model *m = kc_functional(&x, 1, (kc_tensor *[]){kc_call(kc_dense(2, KC_LINEAR), cat)}, 1);
    cr_assert_not_null(m, "%s", kc_last_error());
    fixture f;
    tu_fixture_load(FIX "mask_state.txt", &f);
    const tensor *tw = tu_fixture_get(&f, "weights"), *want = tu_fixture_get(&f, "output");
    KC_CHECK(kc_set_weights(m, tw->data, tw->count));
    float out[B * 2];
    /* a longer call first: the buffers then hold more rows than length 5 needs */
    float longer[B * 9 * 3] = {0};
    kc_array al = {.shape = kc_shape2(9, 3), .dtype = KC_FLOAT32, .data = longer};
    KC_CHECK(kc_predict_ex(m, &al, B, (float *const[]){out}, NULL));
    kc_array arr = {.shape = kc_shape2(5, 3), .dtype = KC_FLOAT32,
                    .data = tu_fixture_get(&f, "x0")->data};
    KC_CHECK(kc_predict_ex(m, &arr, B, (float *const[]){out}, NULL));
    expect_close("mask_state at a None length", out, want->data, want->count, 1e-5);
    kc_model_free(m);
    tu_fixture_free(&f);
}

/* Bidirectional with return_state after Masking: its outputs (merge_mode None and concat)
 * carry the mask, its states none */
Test(rstate_api, bidi_state_seq_masked) {
    kc_rnn_opts so = {.return_sequences = 1, .return_state = 1};
    kc_tensor *x = kc_input(kc_shape2(5, 3));
    kc_tensor *m0 = kc_call(kc_masking(0.0f), x), *bi[6], *bi2[3];
    KC_CHECK(kc_call_multi(kc_bidirectional(kc_lstm(3, &so), KC_MERGE_NONE, NULL), &m0, 1, bi, 6));
    KC_CHECK(kc_call_multi(kc_bidirectional(kc_gru(2, &so), KC_MERGE_CONCAT, NULL), &bi[0], 1,
                           bi2, 3));
    /* named as Keras's fixture: Keras 3 loading a file of auto-named Concatenates
     * (concatenate, concatenate_1) after Bidirectional(merge_mode concat) refuses it, its own
     * symbolic concatenate op taking the name concatenate_1 too */
    kc_layer *c1 = kc_concatenate(-1), *c2 = kc_concatenate(-1);
    KC_CHECK(kc_layer_set_name(c1, "ob"));
    KC_CHECK(kc_layer_set_name(c2, "cat"));
    kc_tensor *ob = kc_call_n(c1, (kc_tensor *[]){bi2[0], bi[1]}, 2);
    kc_tensor *g = kc_call(kc_simple_rnn(2, NULL), ob);
    kc_tensor *cat = kc_call_n(c2, (kc_tensor *[]){g, bi[2], bi[3], bi[4], bi[5], bi2[1], bi2[2]}, 7);
    check_built("bidi_mask_state",
                kc_functional(&x, 1, (kc_tensor *[]){kc_call(kc_dense(2, KC_LINEAR), cat)}, 1));
}
Test(rstate_tf_keras2, bidi_mask_state) { check_tf2("bidi_mask_state"); }
Test(rstate_tf_keras2, mask_state) { check_tf2("mask_state"); }
