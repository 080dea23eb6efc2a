/* test_rnn.c: SimpleRNN, LSTM and GRU (src/layers/rnn.c, src/ops/rnn.c):
 *   - against Keras 3 (tests/gen_keras_rnn_fixtures.py, fixtures/keras_rnn/): for each case
 *     the layer read from Keras's to_json gives Keras's output, loss, weight gradients and
 *     SGD step through the model; the kernels give the output, d loss / d x and d loss / d
 *     weights, masks included; the layer called with ctx.mask (as the engine will) gives the
 *     masked output and gradients;
 *   - finite differences through time (weights and inputs, masked and go_backwards);
 *   - dropout (one mask per sequence, reused at every step), stateful layers and
 *     kc_rnn_reset_states;
 *   - files: Keras 3's .keras and .h5 and tf.keras 2's .h5 load and predict as Keras did;
 *     kerac's own files round trip. */
#include "testutil.h"
#include "fixture.h"
#include "layers/layer.h"
#include "layers/rnn.h"

#define FIXTURE_DIR "tests/fixtures/keras_rnn/"

/* ---- fixtures ------------------------------------------------------------------------------ */

static void load_fixture(const char *name, fixture *fx) {
    char path[256];
    snprintf(path, sizeof path, FIXTURE_DIR "%s.txt", name);
    tu_fixture_load(path, fx);
}
#define find tu_fixture_find
#define get tu_fixture_get
#define free_fixture tu_fixture_free
#define read_text tu_read_text

static double worst_rel; /* the largest relative error seen against Keras (printed) */

/* within 1e-5 of Keras's value, relative to the larger of |value| and 1e-2 of the tensor's
 * largest magnitude, plus an absolute floor of 1e-6 of that magnitude (float32 rounding of
 * sums through time: a gradient 50x below the tensor's largest differs in its 7th digit) */
static void expect_close(const char *what, const float *got, const float *want, long n) {
    double largest = 0.0;
    for (long i = 0; i < n; i++) largest = fmax(largest, fabs(want[i]));
    for (long i = 0; i < n; i++) {
        double den = fmax(fabs(want[i]), 1e-2 * largest), err = fabs((double)got[i] - want[i]);
        if (den > 0) worst_rel = fmax(worst_rel, err / den);
        cr_expect(err <= 1e-5 * den + 1e-6 * largest, "%s[%ld]: kerac %.9g, keras %.9g", what, i, (double)got[i],
                  (double)want[i]);
    }
}

enum { B = 3, T = 5, F = 3 };

static void keras_case(const char *name) {
    worst_rel = 0;
    fixture fx;
    load_fixture(name, &fx);
    const tensor *x = get(&fx, "x"), *y = get(&fx, "y"), *want = get(&fx, "output");
    const tensor *w = get(&fx, "weights"), *g = get(&fx, "grads"), *mk = find(&fx, "mask");
    /* the dropout cases: training mode, Keras's fixed masks injected */
    const tensor *im = find(&fx, "in_masks"), *rm = find(&fx, "rec_masks");
    const int drop = im || rm;
    kc_rnn_test_masks = (kc_rnn_masks){.in = im ? im->data : NULL, .rec = rm ? rm->data : NULL};
    char path[256];
    snprintf(path, sizeof path, FIXTURE_DIR "%s.json", name);
    char *js = read_text(path);
    kc_model *m;
    KC_CHECK(kc_model_from_json(js, &m));
    free(js);
    cr_assert_eq(kc_count_params(m), w->count, "%s: %lld weights, keras %ld", name,
                 (long long)kc_count_params(m), w->count);
    KC_CHECK(kc_set_weights(m, w->data, w->count));
    kc_layer *l = NULL;
    const char *names[] = {"simple_rnn", "lstm", "gru", "bidirectional", "time_distributed"};
    for (int i = 0; i < 5 && !l; i++)
        for (int k = 0; k < 40 && !l; k++) {
            char nm[32];
            if (k) snprintf(nm, sizeof nm, "%s_%d", names[i], k);
            else snprintf(nm, sizeof nm, "%s", names[i]);
            l = kc_get_layer(m, nm);
        }
    cr_assert_not_null(l);
    long n_out = want->count;
    float *out = malloc(sizeof(float) * (size_t)n_out);
    uint8_t mask[B * T];
    for (int i = 0; i < B * T; i++) mask[i] = mk ? mk->data[i] != 0 : 1;

    float *dout = malloc(sizeof(float) * (size_t)n_out), *dx = malloc(sizeof(float) * x->count);
    float *dw = malloc(sizeof(float) * (size_t)w->count);
    /* d MSE / d output at Keras's output */
    for (long i = 0; i < n_out; i++)
        dout[i] = (float)(2.0 * ((double)want->data[i] - y->data[i]) / (double)n_out);
    if (kc_is_rnn(l)) { /* the kernels */
        kc_forward_ctx c0 = {.mask = mk ? mask : NULL, .training = drop};
        kc_rnn_args a = kc_rnn_layer_args(l, B, &c0);
        a.ws = malloc(sizeof(float) * (size_t)kc_rnn_workspace(&a));
        cr_assert_eq(a.in_dropout, im != NULL);
        cr_assert_eq(a.rec_dropout, rm != NULL);
        if (im) {
            cr_assert_eq(im->count, (long)B * kc_rnn_mask_count(&a) * F);
            memcpy(kc_rnn_in_keep(&a), im->data, sizeof(float) * (size_t)im->count);
        }
        if (rm) {
            cr_assert_eq(rm->count, (long)B * kc_rnn_mask_count(&a) * l->units);
            memcpy(kc_rnn_rec_keep(&a), rm->data, sizeof(float) * (size_t)rm->count);
        }
        kc_rnn_forward(&a, x->data, NULL, NULL, out, NULL, NULL);
        expect_close("output (kernels)", out, want->data, n_out);
        double loss = 0;
        for (long i = 0; i < n_out; i++) {
            double d = (double)out[i] - y->data[i];
            loss += d * d / (double)n_out;
        }
        float lf = (float)loss;
        expect_close("loss (kernels)", &lf, get(&fx, "loss")->data, 1);
        int G = kc_rnn_gates(a.cell);
        kc_rnn_backward(&a, x->data, dout, dx, dw, dw + F * G * l->units,
                        l->no_bias ? NULL : dw + l->kernel_size);
        expect_close("dx (kernels)", dx, get(&fx, "dx")->data, x->count);
        expect_close("grads (kernels)", dw, g->data, g->count);
        free(a.ws);
    }

    /* the layer itself, ctx.mask set as the engine sets it */
    l->scratch = malloc(sizeof(float) * (size_t)l->ops->scratch_size(l, B, 1));
    l->scratch_parts = 1;
    kc_forward_ctx ctx = {.mask = mk ? mask : NULL, .training = drop};
    float *lout = malloc(sizeof(float) * (size_t)n_out);
    l->ops->forward(l, x->data, lout, B, &ctx);
    expect_close("output (layer)", lout, want->data, n_out);
    l->ops->backward(l, x->data, lout, dout, dx, B, 0, &ctx);
    expect_close("dx (layer)", dx, get(&fx, "dx")->data, x->count);
    float *lg = l->dkernel;
    cr_assert_not_null(lg);
    expect_close("grads (layer)", lg, g->data, g->count);
    free(l->scratch);
    l->scratch = NULL;

    kc_rnn_test_masks = (kc_rnn_masks){0};
    if (!mk && !drop) { /* the model: predict, gradients, one SGD step */
        KC_CHECK(kc_predict(m, x->data, B, out));
        expect_close("output (model)", out, want->data, n_out);
        KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR,
                            kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f}), 0));
        double mloss;
        KC_CHECK(kc_compute_gradients(m, x->data, y->data, B, 0, &mloss, dw, w->count));
        float lf = (float)mloss;
        expect_close("loss (model)", &lf, get(&fx, "loss")->data, 1);
        expect_close("grads (model)", dw, g->data, g->count);
        KC_CHECK(kc_train_on_batch(m, x->data, y->data, B, NULL));
        KC_CHECK(kc_get_weights(m, dw, w->count));
        expect_close("weights after one SGD step", dw, get(&fx, "stepped")->data, w->count);
    }
    kc_model_free(m);
    free(out), free(dout), free(dx), free(dw), free(lout);
    free_fixture(&fx);
    if (getenv("KERAC_RNN_REPORT"))
        fprintf(stderr, "rnn %s: worst relative error against Keras %.3g\n", name, worst_rel);
}

#define KERAS_CASE(name) \
    Test(rnn_keras, name) { keras_case(#name); }
KERAS_CASE(simple_rnn)
KERAS_CASE(simple_rnn_seq_back_relu)
KERAS_CASE(simple_rnn_mask_seq)
KERAS_CASE(lstm)
KERAS_CASE(lstm_seq_back)
KERAS_CASE(lstm_nobias_hs)
KERAS_CASE(lstm_mask)
KERAS_CASE(lstm_mask_seq_back)
KERAS_CASE(gru)
KERAS_CASE(gru_seq_back_nobias)
KERAS_CASE(gru_v1)
KERAS_CASE(gru_v1_back)
KERAS_CASE(gru_mask_seq)
KERAS_CASE(gru_v1_mask)
KERAS_CASE(bidi_lstm_concat_seq)
KERAS_CASE(bidi_gru_sum)
KERAS_CASE(bidi_simple_rnn_mul_seq)
KERAS_CASE(bidi_lstm_ave_mask_seq)
KERAS_CASE(bidi_gru_backward_layer)
KERAS_CASE(td_dense)
/* dropout + recurrent_dropout in training mode, Keras's masks fixed: LSTM and GRU a mask per
 * gate (Keras 3's implementation 1), SimpleRNN one */
KERAS_CASE(lstm_drop_seq)
KERAS_CASE(lstm_drop_mask_back)
KERAS_CASE(gru_drop_seq)
KERAS_CASE(gru_v1_drop_mask)
KERAS_CASE(gru_recdrop_only)
KERAS_CASE(simple_rnn_drop_seq)

/* ---- finite differences ---------------------------------------------------------------------- */

static void fill(float *out, int64_t n, uint32_t seed, float scale) {
    uint32_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        out[i] = scale * ((float)(s >> 8) / 8388608.0f - 1.0f);
    }
}

/* L = sum(out * r) in double, through the kernels */
static double fd_loss(kc_rnn_args *a, const float *x, const float *r, float *out, long n_out) {
    kc_rnn_forward(a, x, NULL, NULL, out, NULL, NULL);
    double s = 0;
    for (long i = 0; i < n_out; i++) s += (double)out[i] * r[i];
    return s;
}

/* the kernels' gradients of every weight and input against central differences */
static void fd_kernels(kc_cell_kind cell, int reset_after, int back, int seq, int masked,
                       int dropout) {
    const int u = 3, G = kc_rnn_gates(cell);
    long nw = (long)F * G * u + (long)u * G * u, nb = (cell == KC_CELL_GRU && reset_after ? 2 : 1) * G * u;
    float *w = malloc(sizeof(float) * (size_t)(nw + nb)), x[B * T * F];
    fill(w, nw + nb, 11u + (unsigned)cell, 0.6f);
    fill(x, B * T * F, 5u, 1.0f);
    uint8_t mask[B * T] = {1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0};
    kc_rnn_args a = {.cell = cell, .reset_after = reset_after, .B = B, .T = T, .F = F, .u = u,
                     .act = KC_TANH, .rec_act = KC_SIGMOID, .go_backwards = back,
                     .return_sequences = seq, .W = w, .U = w + F * G * u, .b = w + nw,
                     .mask = masked ? mask : NULL, .in_dropout = dropout,
                     .rec_dropout = dropout, .per_gate = dropout == 2};
    a.ws = malloc(sizeof(float) * (size_t)kc_rnn_workspace(&a));
    if (dropout) { /* fixed masks: some zeros, the rest 1 / (1 - 0.3); 2: one per gate */
        float *ik = kc_rnn_in_keep(&a), *rk = kc_rnn_rec_keep(&a);
        int M = kc_rnn_mask_count(&a);
        for (int i = 0; i < B * M * F; i++) ik[i] = i % 3 == 1 || i % 7 == 3 ? 0.0f : 1.0f / 0.7f;
        for (int i = 0; i < B * M * u; i++) rk[i] = i % 4 == 2 || i % 5 == 1 ? 0.0f : 1.0f / 0.7f;
    }
    long n_out = (long)B * (seq ? T : 1) * u;
    float *out = malloc(sizeof(float) * (size_t)n_out), *r = malloc(sizeof(float) * (size_t)n_out);
    fill(r, n_out, 77u, 1.0f);
    fd_loss(&a, x, r, out, n_out);
    float *dw = malloc(sizeof(float) * (size_t)(nw + nb)), dx[B * T * F];
    kc_rnn_backward(&a, x, r, dx, dw, dw + F * G * u, dw + nw);
    const float h = getenv("FD_H") ? (float)atof(getenv("FD_H")) : 1e-2f;
    double worst = 0;
    for (long i = 0; i < nw + nb + B * T * F; i++) {
        float *p = i < nw + nb ? &w[i] : &x[i - nw - nb];
        float g = i < nw + nb ? dw[i] : dx[i - nw - nb];
        float keep = *p;
        double l[4];
        const float steps[4] = {h, -h, 2 * h, -2 * h};
        for (int k = 0; k < 4; k++) {
            *p = keep + steps[k];
            l[k] = fd_loss(&a, x, r, out, n_out);
        }
        *p = keep;
        /* fourth-order central difference: the truncation error is O(h^4) */
        double num = (8.0 * (l[0] - l[1]) - (l[2] - l[3])) / (12.0 * h);
        double err = fabs(num - g) / fmax(1e-2, fabs(num));
        worst = fmax(worst, err);
        cr_expect(err < 2e-3, "cell %d ra %d back %d seq %d mask %d drop %d: %s %ld: analytic "
                              "%.7g numeric %.7g", cell, reset_after, back, seq, masked, dropout,
                  i < nw + nb ? "weight" : "input", i < nw + nb ? i : i - nw - nb, g, num);
    }
    if (masked) { /* a masked input step gets no gradient */
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                if (!mask[b * T + t])
                    for (int f = 0; f < F; f++) cr_expect_eq(dx[(b * T + t) * F + f], 0.0f);
    }
    free(w), free(a.ws), free(out), free(r), free(dw);
}

Test(rnn_grad, simple_rnn) {
    fd_kernels(KC_CELL_SIMPLE, 0, 0, 1, 0, 0);
    fd_kernels(KC_CELL_SIMPLE, 0, 1, 0, 1, 0);
    fd_kernels(KC_CELL_SIMPLE, 0, 0, 1, 1, 1);
}
Test(rnn_grad, lstm) {
    fd_kernels(KC_CELL_LSTM, 0, 0, 1, 0, 0);
    fd_kernels(KC_CELL_LSTM, 0, 1, 0, 1, 0);
    fd_kernels(KC_CELL_LSTM, 0, 1, 1, 1, 1);
    fd_kernels(KC_CELL_LSTM, 0, 0, 1, 1, 2);
}
Test(rnn_grad, gru) {
    fd_kernels(KC_CELL_GRU, 1, 0, 1, 0, 0);
    fd_kernels(KC_CELL_GRU, 1, 1, 0, 1, 0);
    fd_kernels(KC_CELL_GRU, 1, 0, 1, 1, 1);
    fd_kernels(KC_CELL_GRU, 1, 1, 0, 1, 2);
}
Test(rnn_grad, gru_reset_before) {
    fd_kernels(KC_CELL_GRU, 0, 0, 1, 0, 0);
    fd_kernels(KC_CELL_GRU, 0, 1, 0, 1, 0);
    fd_kernels(KC_CELL_GRU, 0, 1, 1, 1, 1);
    fd_kernels(KC_CELL_GRU, 0, 0, 1, 1, 2);
}

/* stacks through the model: kc_compute_gradients against differences */
static void fd_model(kc_model *m) {
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(NULL), 0));
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_get_weights(m, w, n));
    float x[B * T * F], y[B * 2];
    fill(x, B * T * F, 3u, 1.0f);
    fill(y, B * 2, 4u, 1.0f);
    double loss, lp, lm;
    KC_CHECK(kc_compute_gradients(m, x, y, B, 0, &loss, g, n));
    const float h = 1e-2f;
    for (int64_t i = 0; i < n; i += 3) {
        float keep = w[i];
        w[i] = keep + h;
        KC_CHECK(kc_set_weights(m, w, n));
        KC_CHECK(kc_compute_gradients(m, x, y, B, 0, &lp, NULL, 0));
        w[i] = keep - h;
        KC_CHECK(kc_set_weights(m, w, n));
        KC_CHECK(kc_compute_gradients(m, x, y, B, 0, &lm, NULL, 0));
        w[i] = keep;
        double num = (lp - lm) / (2.0 * h);
        cr_expect(fabs(num - g[i]) <= 2e-3 * fmax(fabs(num), 1e-2), "weight %lld: %.7g vs %.7g",
                  (long long)i, g[i], num);
    }
    KC_CHECK(kc_set_weights(m, w, n));
    kc_model_free(m);
    free(w), free(g);
}

Test(rnn_grad, model_stack) {
    kc_model *m = kc_sequential(kc_shape2(T, F));
    KC_CHECK(kc_add(m, kc_lstm(4, &(kc_rnn_opts){.return_sequences = 1})));
    KC_CHECK(kc_add(m, kc_gru(3, &(kc_rnn_opts){.return_sequences = 1, .go_backwards = 1,
                                                 .reset_after = KC_ZERO})));
    KC_CHECK(kc_add(m, kc_simple_rnn(3, NULL)));
    KC_CHECK(kc_add(m, kc_dense(2, KC_LINEAR)));
    fd_model(m);
}

Test(rnn_grad, wrappers) {
    kc_model *m = kc_sequential(kc_shape2(T, F));
    KC_CHECK(kc_add(m, kc_time_distributed(kc_dense(4, KC_TANH))));
    KC_CHECK(kc_add(m, kc_bidirectional(kc_lstm(3, &(kc_rnn_opts){.return_sequences = 1}),
                                        KC_MERGE_MUL, NULL)));
    KC_CHECK(kc_add(m, kc_bidirectional(kc_gru(2, NULL), KC_MERGE_CONCAT,
                                        kc_simple_rnn(3, &(kc_rnn_opts){.go_backwards = 1}))));
    KC_CHECK(kc_add(m, kc_dense(2, KC_LINEAR)));
    fd_model(m);
}

Test(rnn_grad, bidirectional_refuses_other_layers) {
    kc_layer *d = kc_dense(2, KC_LINEAR);
    cr_expect_null(kc_bidirectional(d, KC_MERGE_SUM, NULL));
    cr_expect(strstr(kc_last_error(), "recurrent layer") != NULL);
    kc_layer_free(d);
}

/* ---- dropout, state ------------------------------------------------------------------------- */

/* the input dropout mask is one per (sample, feature), the same at every step: the kernels
 * with it equal the kernels without it on x times the mask */
Test(rnn_state, dropout_mask_per_sequence) {
    const int u = 4, G = 4;
    float w[F * G * u + u * G * u + G * u], x[B * T * F], xm[B * T * F];
    fill(w, sizeof w / sizeof *w, 9u, 0.5f);
    fill(x, B * T * F, 8u, 1.0f);
    kc_rnn_args a = {.cell = KC_CELL_LSTM, .B = B, .T = T, .F = F, .u = u, .act = KC_TANH,
                     .rec_act = KC_SIGMOID, .return_sequences = 1, .W = w,
                     .U = w + F * G * u, .b = w + F * G * u + u * G * u, .in_dropout = 1};
    a.ws = malloc(sizeof(float) * (size_t)kc_rnn_workspace(&a));
    float *keep = kc_rnn_in_keep(&a);
    for (int i = 0; i < B * F; i++) keep[i] = i % 2 ? 2.0f : 0.0f;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int f = 0; f < F; f++)
                xm[(b * T + t) * F + f] = x[(b * T + t) * F + f] * keep[b * F + f];
    float o1[B * T * u], o2[B * T * u];
    kc_rnn_forward(&a, x, NULL, NULL, o1, NULL, NULL);
    kc_rnn_args plain = a;
    plain.in_dropout = 0;
    float *ws2 = malloc(sizeof(float) * (size_t)kc_rnn_workspace(&plain));
    plain.ws = ws2;
    kc_rnn_forward(&plain, xm, NULL, NULL, o2, NULL, NULL);
    for (int i = 0; i < B * T * u; i++) cr_expect_float_eq(o1[i], o2[i], 1e-6);
    free(a.ws), free(ws2);
}

/* a model's dropout: inference ignores it, training drops about the rate */
Test(rnn_state, dropout_in_model) {
    kc_model *m = kc_sequential(kc_shape2(T, F));
    KC_CHECK(kc_add(m, kc_gru(4, &(kc_rnn_opts){.dropout = 0.5f, .recurrent_dropout = 0.3f})));
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(NULL), 0));
    kc_model *p = kc_sequential(kc_shape2(T, F));
    KC_CHECK(kc_add(p, kc_gru(4, NULL)));
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_get_weights(m, w, n));
    KC_CHECK(kc_set_weights(p, w, n));
    float x[B * T * F], o1[B * 4], o2[B * 4], y[B * 4] = {0}, *g = malloc(sizeof(float) * n);
    fill(x, B * T * F, 2u, 1.0f);
    KC_CHECK(kc_predict(m, x, B, o1));
    KC_CHECK(kc_predict(p, x, B, o2));
    for (int i = 0; i < B * 4; i++) cr_expect_eq(o1[i], o2[i]);
    double lt, li;
    KC_CHECK(kc_compute_gradients(m, x, y, B, 1, &lt, g, n));
    KC_CHECK(kc_compute_gradients(m, x, y, B, 0, &li, g, n));
    cr_expect(lt != li, "training with dropout gives the inference loss %g", li);
    kc_model_free(m), kc_model_free(p), free(w), free(g);
}

/* stateful: the second batch continues from the first one's final state; reset_states goes
 * back to zeros. The same as one sequence of twice the length. */
Test(rnn_state, stateful) {
    kc_model *m = kc_sequential(kc_shape2(T, F));
    KC_CHECK(kc_add(m, kc_lstm(4, &(kc_rnn_opts){.stateful = 1})));
    kc_model *l2 = kc_sequential(kc_shape2(2 * T, F));
    KC_CHECK(kc_add(l2, kc_lstm(4, NULL)));
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_get_weights(m, w, n));
    KC_CHECK(kc_set_weights(l2, w, n));
    float x[B * 2 * T * F], x1[B * T * F], x2[B * T * F], o1[B * 4], o2[B * 4], o3[B * 4];
    fill(x, B * 2 * T * F, 6u, 1.0f);
    for (int b = 0; b < B; b++) {
        memcpy(x1 + b * T * F, x + b * 2 * T * F, sizeof(float) * T * F);
        memcpy(x2 + b * T * F, x + b * 2 * T * F + T * F, sizeof(float) * T * F);
    }
    KC_CHECK(kc_predict(m, x1, B, o1));
    KC_CHECK(kc_predict(m, x2, B, o2));
    KC_CHECK(kc_predict(l2, x, B, o3));
    for (int i = 0; i < B * 4; i++) cr_expect_float_eq(o2[i], o3[i], 1e-5);
    KC_CHECK(kc_rnn_reset_states(kc_get_layer(m, "lstm")));
    KC_CHECK(kc_predict(m, x1, B, o2));
    for (int i = 0; i < B * 4; i++) cr_expect_eq(o1[i], o2[i]);
    KC_EXPECT_ERR(kc_rnn_reset_states(NULL), KC_EINVAL, "not a recurrent layer");
    kc_model_free(m), kc_model_free(l2), free(w);
}

/* a stateful Bidirectional: both directions keep their state; reset_states resets both */
Test(rnn_state, stateful_bidirectional) {
    kc_model *m = kc_sequential(kc_shape2(T, F));
    kc_layer *bi = kc_bidirectional(kc_gru(3, &(kc_rnn_opts){.stateful = 1}), KC_MERGE_CONCAT,
                                    NULL);
    KC_CHECK(kc_add(m, bi));
    float x[B * T * F], o1[B * 6], o2[B * 6], o3[B * 6];
    fill(x, B * T * F, 12u, 1.0f);
    KC_CHECK(kc_predict(m, x, B, o1));
    KC_CHECK(kc_predict(m, x, B, o2));
    int differ = 0;
    for (int i = 0; i < B * 6; i++) differ += o1[i] != o2[i];
    cr_expect(differ > 0, "the second call starts from the first one's state");
    KC_CHECK(kc_rnn_reset_states(bi));
    KC_CHECK(kc_predict(m, x, B, o3));
    for (int i = 0; i < B * 6; i++) cr_expect_eq(o1[i], o3[i]);
    kc_model_free(m);
}

/* ---- files ------------------------------------------------------------------------------------ */

static void predict_file(const char *file, const char *expect) {
    fixture fx;
    load_fixture(expect, &fx);
    kc_model *m;
    KC_CHECK(kc_load(file, &m));
    const tensor *x = get(&fx, "x"), *want = get(&fx, "output");
    float *out = malloc(sizeof(float) * (size_t)want->count);
    KC_CHECK(kc_predict(m, x->data, B, out));
    expect_close(file, out, want->data, want->count);
    free(out);
    kc_model_free(m);
    free_fixture(&fx);
}

Test(rnn_files, keras3_keras) { predict_file(FIXTURE_DIR "k3_model.keras", "k3_files"); }
Test(rnn_files, keras3_h5) { predict_file(FIXTURE_DIR "k3_model.h5", "k3_files"); }
Test(rnn_files, tf_keras2_h5) { predict_file(FIXTURE_DIR "tf2_model.h5", "tf2_files"); }

/* kerac's files: the model of the Keras files, saved and read back, both formats */
Test(rnn_files, round_trip) {
    kc_model *m;
    KC_CHECK(kc_load(FIXTURE_DIR "k3_model.keras", &m));
    char *dir = tu_tmpdir(), path[128];
    fixture fx;
    load_fixture("k3_files", &fx);
    const tensor *x = get(&fx, "x"), *want = get(&fx, "output");
    const char *ext[] = {"keras", "h5"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/m.%s", dir, ext[i]);
        KC_CHECK(kc_save(m, path));
        kc_model *r;
        KC_CHECK(kc_load(path, &r));
        float out[B * 2];
        KC_CHECK(kc_predict(r, x->data, B, out));
        expect_close(path, out, want->data, want->count);
        kc_model_free(r);
    }
    if (getenv("KERAC_KEEP_RNN_FILES")) { /* for tests/check_kerac_saved_rnn.py */
        KC_CHECK(kc_save(m, "/tmp/kerac_rnn_saved.keras"));
        KC_CHECK(kc_save(m, "/tmp/kerac_rnn_saved.h5"));
    }
    kc_model_free(m);
    free_fixture(&fx);
}

Test(rnn_files, refused_options) {
    kc_model *m;
    const char *js =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"batch_shape\": [null, 5, 3]}},"
        "{\"class_name\": \"LSTM\", \"config\": {\"name\": \"lstm\", \"units\": 4, "
        "\"return_state\": true}}]}}";
    /* return_state works in a Functional model (test_rstate.c); a Sequential, as Keras's,
     * takes layers of one output */
    KC_EXPECT_ERR(kc_model_from_json(js, &m), KC_EINVAL, "a Sequential takes layers of one output");
    kc_model *s = kc_sequential(kc_shape1(4));
    KC_EXPECT_ERR(kc_add(s, kc_lstm(4, NULL)), KC_EINVAL, "(timesteps, features)");
    kc_model_free(s);
}
