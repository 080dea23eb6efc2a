/* test_seq.c: the engine's sequence support: int32 token inputs, None lengths bound per call,
 * masks through the graph (forward and backward, into the loss), Embedding's sparse step, and
 * the errors bad sequence data gets (an id out of range by sample and position, a wrong rank,
 * floats into an int input, a sequence longer than a fixed-length model, a None length where
 * a layer needs a fixed one, masks a layer refuses). Values against Keras: test_keras_seq.c. */
#include "testutil.h"
#include "layers/layer.h"
#include "model/model.h"

/* a dataset of count int32 sequences of length len (ids[count * len]) with targets */
static kc_dataset seqs(int count, int len, int32_t *ids, kc_array target) {
    kc_dataset d = {.count = count, .n_inputs = 1, .n_targets = 1};
    d.inputs[0] = (kc_array){kc_shape1(len), KC_INT32, ids, 0, 0};
    d.targets[0] = target;
    return d;
}

static kc_model *tagger(int vocab, int mask_zero) {
    kc_tensor *in = kc_input_ex(kc_shape1(KC_NONE), KC_INT32, "tokens");
    kc_layer *e = kc_embedding(vocab, 6, &(kc_embedding_opts){.mask_zero = mask_zero});
    kc_layer_set_name(e, "embed");
    kc_tensor *h = kc_call(kc_dense(5, KC_TANH), kc_call(e, in));
    kc_tensor *out = kc_call(kc_dense(3, KC_SOFTMAX), h);
    kc_model *m = kc_functional(&in, 1, &out, 1);
    cr_assert_not_null(m, "%s", kc_last_error());
    return m;
}

Test(seq, shapes_dtypes_and_summary) {
    kc_model *m = tagger(20, 1);
    kc_shape s = kc_model_input_shape_at(m, 0);
    cr_assert_eq(s.rank, 1);
    cr_assert_eq(s.dims[0], KC_NONE);
    cr_assert_eq(kc_model_input_dtype(m, 0), KC_INT32);
    kc_shape o = kc_model_output_shape_at(m, 0);
    cr_assert(o.rank == 2 && o.dims[0] == KC_NONE && o.dims[1] == 3);
    char buf[64];
    cr_assert_str_eq(kc_shape_str(o, buf, sizeof buf), "(None, 3)");
    cr_assert_eq(kc_shape_size(o), -1);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    KC_CHECK(kc_summary(m, f));
    fclose(f);
    cr_assert(strstr(text, "(None, None, 6)") && strstr(text, "(None, None, 3)"), "%s", text);
    cr_assert(strstr(text, "[(None, None)]"), "%s", text);
    free(text);
    /* the output shapes for a length */
    kc_shape outs[1];
    KC_CHECK(kc_model_output_shapes_for(m, (kc_shape[]){kc_shape1(7)}, outs));
    cr_assert(outs[0].rank == 2 && outs[0].dims[0] == 7 && outs[0].dims[1] == 3);
    kc_model_free(m);
}

/* token ids out of range: refused by name, sample and position, on every path */
Test(seq, token_id_out_of_range) {
    kc_model *m = tagger(20, 1);
    KC_CHECK(kc_compile(m, KC_SPARSE_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
    int32_t ids[4 * 5] = {1, 2, 3, 0, 0, 4, 5, 6, 7, 0, 8, 9, 20, 1, 0, 1, 1, 1, 1, 1};
    int32_t tags[4 * 5] = {0};
    kc_dataset d = seqs(4, 5, ids, (kc_array){kc_shape1(5), KC_INT32, tags, 0, 0});
    KC_EXPECT_ERR(kc_fit(m, &d, &(kc_fit_opts){.verbose = -1, .no_shuffle = 1}, NULL), KC_EINVAL,
                  "token id 20 at sample 2, position 2");
    cr_assert(strstr(kc_last_error(), "embed (Embedding)") && strstr(kc_last_error(), "[0, 20)"),
              "%s", kc_last_error());
    KC_EXPECT_ERR(kc_evaluate(m, &d, NULL, NULL), KC_EINVAL, "sample 2, position 2");
    KC_EXPECT_ERR(kc_train_on_batch_ex(m, &d, NULL), KC_EINVAL, "sample 2, position 2");
    float out[4 * 5 * 3];
    KC_EXPECT_ERR(kc_predict_ex(m, d.inputs, 4, (float *[]){out}, NULL), KC_EINVAL,
                  "token id 20 at sample 2, position 2");
    ids[12] = -3;
    KC_EXPECT_ERR(kc_predict_ex(m, d.inputs, 4, (float *[]){out}, NULL), KC_EINVAL,
                  "token id -3 at sample 2, position 2");
    ids[12] = 19;
    KC_CHECK(kc_predict_ex(m, d.inputs, 4, (float *[]){out}, NULL));
    KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.verbose = -1}, NULL));
    kc_model_free(m);
    /* a fixed-length model's float path: the same check */
    m = kc_sequential_ex(kc_shape1(3), KC_INT32);
    KC_CHECK(kc_add(m, kc_embedding(10, 2, NULL)));
    float x[6] = {1, 2, 3, 4, 5, 10}, y[12];
    KC_EXPECT_ERR(kc_predict(m, x, 2, y), KC_EINVAL, "token id 10 at sample 1, position 2");
    x[5] = 9;
    KC_CHECK(kc_predict(m, x, 2, y));
    kc_model_free(m);
}

Test(seq, bad_sequence_data) {
    kc_model *m = tagger(20, 1);
    KC_CHECK(kc_compile(m, KC_SPARSE_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
    int32_t ids[4 * 6] = {0}, tags[4 * 6] = {0};
    for (int i = 0; i < 24; i++) ids[i] = 1 + i % 19;
    /* wrong rank */
    kc_dataset d = seqs(4, 6, ids, (kc_array){kc_shape1(6), KC_INT32, tags, 0, 0});
    d.inputs[0].shape = kc_shape2(2, 3);
    KC_EXPECT_ERR(kc_fit(m, &d, NULL, NULL), KC_EINVAL, "(2, 3)");
    cr_assert(strstr(kc_last_error(), "(None)"), "%s", kc_last_error());
    /* targets of another length than the input's */
    d.inputs[0].shape = kc_shape1(6);
    d.targets[0].shape = kc_shape1(5);
    KC_EXPECT_ERR(kc_fit(m, &d, NULL, NULL), KC_EINVAL, "sparse_categorical_crossentropy");
    cr_assert(strstr(kc_last_error(), "(6, 3)"), "%s", kc_last_error());
    d.targets[0].shape = kc_shape1(6);
    /* a label out of range names its position */
    tags[9] = 3;
    KC_EXPECT_ERR(kc_fit(m, &d, NULL, NULL), KC_EINVAL, "label 3 of sample 1, position 3");
    tags[9] = 0;
    /* int32 beyond 2^24 */
    ids[7] = 16777217;
    KC_EXPECT_ERR(kc_fit(m, &d, NULL, NULL), KC_EINVAL, "value 16777217 at sample 1, position 1");
    ids[7] = 1;
    /* float data into an int input: whole numbers only */
    float fx[4 * 6];
    for (int i = 0; i < 24; i++) fx[i] = (float)ids[i];
    fx[13] = 2.5f;
    d.inputs[0] = (kc_array){kc_shape1(6), KC_FLOAT32, fx, 0, 0};
    KC_EXPECT_ERR(kc_fit(m, &d, NULL, NULL), KC_EINVAL, "2.5 at sample 2, position 1");
    cr_assert(strstr(kc_last_error(), "int32"), "%s", kc_last_error());
    fx[13] = 2.0f;
    KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.verbose = -1}, NULL));
    /* the whole floats give what the ids give */
    float a[4 * 6 * 3], b[4 * 6 * 3];
    ids[13] = 2;
    kc_array ia = {kc_shape1(6), KC_INT32, ids, 0, 0};
    KC_CHECK(kc_predict_ex(m, &d.inputs[0], 4, (float *[]){a}, NULL));
    KC_CHECK(kc_predict_ex(m, &ia, 4, (float *[]){b}, NULL));
    cr_assert(!memcmp(a, b, sizeof a));
    /* a None model needs the data's length: the float calls say where to go */
    KC_EXPECT_ERR(kc_predict(m, fx, 4, a), KC_EINVAL, "kc_predict_ex");
    KC_EXPECT_ERR(kc_train_on_batch(m, fx, fx, 4, NULL), KC_EINVAL, "None dimension");
    /* a data shape with None */
    ia.shape = kc_shape1(KC_NONE);
    KC_EXPECT_ERR(kc_predict_ex(m, &ia, 4, (float *[]){a}, NULL), KC_EINVAL, "None");
    kc_model_free(m);
}

Test(seq, longer_than_a_fixed_length) {
    kc_model *m = kc_sequential_ex(kc_shape1(6), KC_INT32);
    KC_CHECK(kc_add(m, kc_embedding(30, 4, NULL)));
    KC_CHECK(kc_add(m, kc_flatten()));
    KC_CHECK(kc_add(m, kc_dense(3, KC_SOFTMAX)));
    KC_CHECK(kc_compile(m, KC_SPARSE_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
    int32_t ids[2 * 8] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8}, labels[2] = {0, 1};
    kc_dataset d = seqs(2, 8, ids, (kc_array){{0}, KC_INT32, labels, 0, 3});
    KC_EXPECT_ERR(kc_fit(m, &d, NULL, NULL), KC_EINVAL, "longer than the model's fixed length");
    cr_assert(strstr(kc_last_error(), "(8)") && strstr(kc_last_error(), "(6)"), "%s",
              kc_last_error());
    float out[2 * 3];
    KC_EXPECT_ERR(kc_predict_ex(m, d.inputs, 2, (float *[]){out}, NULL), KC_EINVAL, "(8)");
    d.inputs[0].shape = kc_shape1(6);
    KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.verbose = -1}, NULL));
    kc_model_free(m);
    /* input_length (tf.keras 2's): the input must have that length */
    m = kc_sequential_ex(kc_shape1(5), KC_INT32);
    KC_EXPECT_ERR(kc_add(m, kc_embedding(30, 4, &(kc_embedding_opts){.input_length = 6})),
                  KC_EINVAL, "input_length is 6");
    kc_model_free(m);
}

Test(seq, layers_that_need_a_fixed_length) {
    kc_model *m = kc_sequential(kc_shape3(KC_NONE, 8, 1));
    KC_EXPECT_ERR(kc_add(m, kc_conv2d(2, 3, KC_RELU)), KC_EINVAL, "layer conv2d (Conv2D)");
    cr_assert(strstr(kc_last_error(), "(None, 8, 1)"), "%s", kc_last_error());
    kc_model_free(m);
    kc_tensor *in = kc_input(kc_shape2(KC_NONE, 4));
    kc_tensor *h = kc_call(kc_flatten(), in);
    cr_assert(kc_tensor_shape(h).rank == 1 && kc_tensor_shape(h).dims[0] == KC_NONE);
    kc_tensor *o = kc_call(kc_dense(2, KC_LINEAR), h);
    cr_assert_null(o);
    cr_assert(strstr(kc_last_error(), "should be defined"), "%s", kc_last_error());
    kc_tensor_free(h); /* and the input it holds */
}

static char last_warning[1024];
static void keep_warning(const char *msg, void *user) {
    snprintf(last_warning, sizeof last_warning, "%s", msg);
}

Test(seq, masks_refused_and_dropped) {
    kc_set_warning_handler(keep_warning, NULL);
    /* Keras 3: a layer without masking drops the mask, with a warning */
    last_warning[0] = 0;
    kc_model *m = kc_sequential_ex(kc_shape1(5), KC_INT32);
    KC_CHECK(kc_add(m, kc_embedding(10, 4, &(kc_embedding_opts){.mask_zero = 1})));
    KC_CHECK(kc_add(m, kc_flatten()));
    cr_assert(strstr(last_warning, "'flatten' (of type Flatten)") &&
              strstr(last_warning, "does not support masking"), "%s", last_warning);
    KC_CHECK(kc_add(m, kc_dense(2, KC_LINEAR)));
    cr_assert(!m->tensors[m->outputs[0]].has_mask, "the mask was dropped");
    kc_model_free(m);
    /* what kerac does not reproduce is refused by name */
    m = kc_sequential_ex(kc_shape1(KC_NONE), KC_INT32);
    KC_CHECK(kc_add(m, kc_embedding(10, 4, &(kc_embedding_opts){.mask_zero = 1})));
    KC_EXPECT_ERR(kc_add(m, kc_batch_normalization(NULL)), KC_EINVAL,
                  "layer batch_normalization (BatchNormalization) is given a masked input");
    kc_model_free(m);
    kc_tensor *a = kc_input_ex(kc_shape1(KC_NONE), KC_INT32, NULL);
    kc_tensor *ea = kc_call(kc_embedding(10, 4, &(kc_embedding_opts){.mask_zero = 1}), a);
    kc_tensor *d = kc_call(kc_dense(4, KC_LINEAR), ea);
    kc_tensor *mx = kc_call_n(kc_merge_maximum(), (kc_tensor *[]){ea, d}, 2);
    kc_tensor *sum = kc_call_n(kc_merge_add(), (kc_tensor *[]){ea, d}, 2);
    kc_model *bad = kc_functional(&a, 1, &mx, 1);
    cr_assert_null(bad);
    cr_assert(strstr(kc_last_error(), "(Maximum) is given a masked input"), "%s", kc_last_error());
    kc_model *good = kc_functional(&a, 1, &sum, 1);
    cr_assert_not_null(good, "%s", kc_last_error());
    cr_assert(good->tensors[good->outputs[0]].has_mask, "Add passes the OR'ed mask on");
    kc_model_free(good);
    kc_tensor_free(mx);
    kc_set_warning_handler(NULL, NULL);
}

/* a layer that supports masking sees the mask in forward and in backward (the rnn and conv1d
 * layers rely on it) */
static int64_t seen_fwd, seen_bwd;
static int calls_fwd, calls_bwd;
static void probe_forward(kc_layer *l, const float *in, float *out, int batch,
                          const kc_forward_ctx *ctx) {
    calls_fwd++;
    seen_fwd = -1;
    if (ctx->mask) {
        seen_fwd = 0;
        for (int64_t i = 0; i < (int64_t)batch * l->in_shape.dims[0]; i++) seen_fwd += ctx->mask[i];
    }
    memcpy(out, in, sizeof(float) * (size_t)(batch * l->out_size));
}
static void probe_backward(kc_layer *l, const float *in, const float *out, float *dout,
                           float *din, int batch, int pre, const kc_forward_ctx *ctx) {
    calls_bwd++;
    seen_bwd = -1;
    if (ctx->mask) {
        seen_bwd = 0;
        for (int64_t i = 0; i < (int64_t)batch * l->in_shape.dims[0]; i++) seen_bwd += ctx->mask[i];
    }
    if (din) memcpy(din, dout, sizeof(float) * (size_t)(batch * l->out_size));
}
static kc_status probe_from(const struct cJSON *c, const char *w, kc_layer **out) { return KC_EINVAL; }
static kc_status probe_to(const kc_layer *l, struct cJSON *c) { return KC_OK; }
static const kc_layer_ops probe_ops = {.type_name = "Probe",
                                       .base_name = "probe",
                                       .build = kc_same_shape_build,
                                       .init = kc_no_init,
                                       .forward = probe_forward,
                                       .backward = probe_backward,
                                       .supports_masking = 1,
                                       .allows_none = 1,
                                       .io = {probe_from, probe_to}};

Test(seq, masks_reach_forward_and_backward) {
    kc_tensor *in = kc_input_ex(kc_shape1(KC_NONE), KC_INT32, NULL);
    kc_tensor *e = kc_call(kc_embedding(10, 3, &(kc_embedding_opts){.mask_zero = 1}), in);
    kc_tensor *p = kc_call(kc_layer_new(&probe_ops), kc_call(kc_dense(4, KC_TANH), e));
    kc_tensor *out = kc_call(kc_dense(2, KC_LINEAR), p);
    kc_model *m = kc_functional(&in, 1, &out, 1);
    cr_assert_not_null(m, "%s", kc_last_error());
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(NULL), 0));
    int32_t ids[3 * 4] = {1, 2, 0, 0, 3, 0, 4, 5, 0, 0, 0, 0};
    float y[3 * 4 * 2] = {0};
    kc_dataset d = seqs(3, 4, ids, (kc_array){kc_shape2(4, 2), KC_FLOAT32, y, 0, 0});
    kc_metrics r;
    KC_CHECK(kc_train_on_batch_ex(m, &d, &r));
    cr_assert_eq(calls_fwd, 1);
    cr_assert_eq(calls_bwd, 1);
    cr_assert_eq(seen_fwd, 5, "forward saw %lld unmasked steps", (long long)seen_fwd);
    cr_assert_eq(seen_bwd, 5, "backward saw %lld unmasked steps", (long long)seen_bwd);
    /* another length, the same */
    int32_t ids2[2 * 2] = {0, 7, 8, 9};
    d = seqs(2, 2, ids2, (kc_array){kc_shape2(2, 2), KC_FLOAT32, y, 0, 0});
    KC_CHECK(kc_train_on_batch_ex(m, &d, &r));
    cr_assert_eq(seen_fwd, 3);
    cr_assert_eq(seen_bwd, 3);
    kc_model_free(m);
}

/* Keras 3: every row masked gives loss 0 and no gradient (divide_no_nan) */
Test(seq, all_masked_batch) {
    kc_model *m = tagger(20, 1);
    KC_CHECK(kc_compile(m, KC_SPARSE_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), KC_METRIC_ACCURACY));
    int32_t ids[2 * 3] = {0}, tags[2 * 3] = {1, 2, 0, 1, 1, 1};
    kc_dataset d = seqs(2, 3, ids, (kc_array){kc_shape1(3), KC_INT32, tags, 0, 0});
    int64_t n = kc_count_params(m);
    float *g = malloc(sizeof(float) * (size_t)n);
    double loss;
    KC_CHECK(kc_compute_gradients_ex(m, &d, 1, &loss, g, n));
    cr_assert_eq(loss, 0.0);
    for (int64_t i = 0; i < n; i++) cr_assert_eq(g[i], 0.0f);
    free(g);
    /* half masked: accuracy over the real steps only */
    ids[0] = ids[1] = 3;
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &d, NULL, &r));
    cr_assert(isfinite(r.loss) && r.loss > 0);
    cr_assert(r.accuracy == 0.0 || r.accuracy == 0.5 || r.accuracy == 1.0, "%g", r.accuracy);
    kc_model_free(m);
}

/* plain SGD steps only the rows a batch used, with the dense step's numbers */
Test(seq, sparse_embedding_step_is_the_dense_step) {
    int32_t ids[8 * 7], tags[8 * 7];
    for (int i = 0; i < 8 * 7; i++) {
        ids[i] = i % 7 > 4 ? 0 : 1 + (i * 11) % 50;
        tags[i] = i % 3;
    }
    kc_dataset d = seqs(8, 7, ids, (kc_array){kc_shape1(7), KC_INT32, tags, 0, 0});
    float *w[2];
    int64_t n = 0;
    for (int fused = 0; fused < 2; fused++) {
        kc_set_random_seed(5);
        kc_model *m = tagger(60, 1);
        KC_CHECK(kc_set_fusion(m, fused));
        KC_CHECK(kc_compile(m, KC_SPARSE_CATEGORICAL_CROSSENTROPY,
                            kc_sgd(&(kc_sgd_opts){.learning_rate = 0.5f}), 0));
        cr_assert_eq(m->nodes[0].fused_step, 0, "planned at the first step");
        for (int s = 0; s < 3; s++) KC_CHECK(kc_train_on_batch_ex(m, &d, NULL));
        cr_assert_eq(m->nodes[0].fused_step, fused, "the Embedding's row step is %s",
                     fused ? "planned" : "off on the plain path");
        n = kc_count_params(m);
        w[fused] = malloc(sizeof(float) * (size_t)n);
        KC_CHECK(kc_get_weights(m, w[fused], n));
        kc_model_free(m);
    }
    cr_assert(!memcmp(w[0], w[1], sizeof(float) * (size_t)n), "sparse and dense steps differ");
    free(w[0]);
    free(w[1]);
}

Test(seq, fit_evaluate_predict_at_several_lengths) {
    enum { N = 64 };
    static int32_t ids[N * 10], vids[N * 7], tags[N * 10], vtags[N * 7];
    for (int i = 0; i < N * 10; i++) {
        ids[i] = i % 10 >= 6 + i / 10 % 4 ? 0 : 1 + (i * 7) % 19;
        tags[i] = ids[i] % 3;
    }
    for (int i = 0; i < N * 7; i++) {
        vids[i] = 1 + (i * 5) % 19;
        vtags[i] = vids[i] % 3;
    }
    kc_model *m = tagger(20, 1);
    KC_CHECK(kc_compile(m, KC_SPARSE_CATEGORICAL_CROSSENTROPY,
                        kc_adam(&(kc_adam_opts){.learning_rate = 0.05f}), KC_METRIC_ACCURACY));
    kc_dataset train = seqs(N, 10, ids, (kc_array){kc_shape1(10), KC_INT32, tags, 0, 0});
    kc_dataset val = seqs(N, 7, vids, (kc_array){kc_shape1(7), KC_INT32, vtags, 0, 0});
    kc_history *h;
    KC_CHECK(kc_fit(m, &train, &(kc_fit_opts){.epochs = 8, .batch_size = 16, .verbose = -1,
                                              .validation = &val}, &h));
    cr_assert(h->loss[7] < h->loss[0], "the loss fell: %g -> %g", h->loss[0], h->loss[7]);
    cr_assert(isfinite(h->val_loss[7]) && h->val_accuracy[7] > 0.6, "val %g %g", h->val_loss[7],
              h->val_accuracy[7]);
    kc_history_free(h);
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &val, NULL, &r));
    cr_assert(r.accuracy > 0.6, "%g", r.accuracy);
    /* the id -> tag rule holds at any length */
    int32_t x[3] = {4, 5, 6};
    float out[3 * 3];
    kc_shape shapes[1];
    kc_array a = {kc_shape1(3), KC_INT32, x, 0, 0};
    KC_CHECK(kc_predict_ex(m, &a, 1, (float *[]){out}, shapes));
    cr_assert(shapes[0].rank == 2 && shapes[0].dims[0] == 3 && shapes[0].dims[1] == 3);
    for (int t = 0; t < 3; t++) {
        int best = 0;
        for (int c = 1; c < 3; c++) best = out[t * 3 + c] > out[t * 3 + best] ? c : best;
        cr_expect_eq(best, x[t] % 3, "step %d", t);
    }
    kc_model_free(m);
}

/* a layer called on two inputs: one length per call */
Test(seq, shared_layer_one_length_per_call) {
    kc_tensor *a = kc_input_ex(kc_shape1(KC_NONE), KC_INT32, "a");
    kc_tensor *b = kc_input_ex(kc_shape1(KC_NONE), KC_INT32, "b");
    kc_layer *e = kc_embedding(10, 3, NULL);
    kc_tensor *ea = kc_call(e, a), *eb = kc_call(e, b);
    kc_tensor *ins[2] = {a, b}, *outs[2] = {ea, eb};
    kc_model *m = kc_functional(ins, 2, outs, 2);
    cr_assert_not_null(m, "%s", kc_last_error());
    int32_t x[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3};
    float o1[12 * 3], o2[12 * 3];
    kc_array arrays[2] = {{kc_shape1(3), KC_INT32, x, 0, 0}, {kc_shape1(3), KC_INT32, x, 0, 0}};
    KC_CHECK(kc_predict_ex(m, arrays, 2, (float *[]){o1, o2}, NULL));
    cr_assert(!memcmp(o1, o2, sizeof(float) * 6 * 3));
    arrays[1].shape = kc_shape1(6);
    KC_EXPECT_ERR(kc_predict_ex(m, arrays, 2, (float *[]){o1, o2}, NULL), KC_EINVAL,
                  "one length per call");
    kc_model_free(m);
}

/* Masking zeroes and masks the timesteps equal to mask_value; its gradient stops there */
Test(seq, masking_layer) {
    kc_model *m = kc_sequential(kc_shape2(KC_NONE, 2));
    KC_CHECK(kc_add(m, kc_masking(0.0f)));
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_sgd(NULL), 0));
    float x[2 * 3 * 2] = {1, 2, 0, 0, 0, 3, 0, 0, 4, 0, 0, 0};
    float out[12];
    kc_array a = {kc_shape2(3, 2), KC_FLOAT32, x, 0, 0};
    KC_CHECK(kc_predict_ex(m, &a, 2, (float *[]){out}, NULL));
    cr_assert(!memcmp(out, x, sizeof x), "masked steps are 0 already");
    const uint8_t *mask = m->tensors[m->outputs[0]].mask;
    uint8_t want[6] = {1, 0, 1, 0, 1, 0};
    cr_assert(!memcmp(mask, want, 6));
    /* the loss over the 3 real steps: ((1-y)^2 + (2-y)^2 + ...) / (3 * 2) with y = 0 */
    float y[12] = {0};
    kc_dataset d = {.count = 2, .n_inputs = 1, .n_targets = 1};
    d.inputs[0] = a;
    d.targets[0] = (kc_array){kc_shape2(3, 2), KC_FLOAT32, y, 0, 0};
    kc_metrics r;
    KC_CHECK(kc_evaluate(m, &d, NULL, &r));
    cr_assert(fabs(r.loss - (1 + 4 + 0 + 9 + 16 + 0) / 6.0) < 1e-6, "%g", r.loss);
    kc_model_free(m);
}

/* a model of None length nested in a fixed-length one (Keras calls it on any length) */
Test(seq, none_model_nested_in_a_fixed_one) {
    kc_model *inner = kc_sequential_ex(kc_shape1(KC_NONE), KC_INT32);
    KC_CHECK(kc_add(inner, kc_embedding(10, 3, NULL)));
    KC_CHECK(kc_add(inner, kc_dense(2, KC_LINEAR)));
    kc_model *outer = kc_sequential_ex(kc_shape1(4), KC_INT32);
    KC_CHECK(kc_add(outer, kc_model_as_layer(inner)));
    KC_CHECK(kc_add(outer, kc_flatten()));
    float x[2 * 4] = {1, 2, 3, 4, 5, 6, 7, 8}, a[2 * 8], b[2 * 4 * 2];
    KC_CHECK(kc_predict(outer, x, 2, a));
    int32_t ids[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    kc_array arr = {kc_shape1(4), KC_INT32, ids, 0, 0};
    KC_CHECK(kc_predict_ex(inner, &arr, 2, (float *[]){b}, NULL));
    cr_assert(!memcmp(a, b, sizeof a));
    kc_model_free(outer);
    kc_model_free(inner);
}

/* Embedding's and Masking's configs: Keras 3's fields; what kerac cannot honour is refused */
Test(seq, embedding_config) {
    kc_model *m = kc_sequential_ex(kc_shape1(KC_NONE), KC_INT32);
    KC_CHECK(kc_add(m, kc_embedding(7, 2, &(kc_embedding_opts){
                                              .mask_zero = 1,
                                              .embeddings_regularizer = kc_l2(0.01f)})));
    KC_CHECK(kc_add(m, kc_masking(0.5f)));
    char *json;
    KC_CHECK(kc_model_to_json(m, &json));
    const char *want[] = {"\"input_dim\":7", "\"output_dim\":2", "\"mask_zero\":true",
                          "\"RandomUniform\"", "\"minval\":-0.05", "\"embeddings_regularizer\":{",
                          "\"mask_value\":0.5", "\"dtype\":\"int32\"", "\"batch_shape\":[null,null]"};
    char *flat = malloc(strlen(json) + 1);
    size_t k = 0;
    for (const char *c = json; *c; c++)
        if (*c != ' ' && *c != '\n' && *c != '\t') flat[k++] = *c;
    flat[k] = 0;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_expect(strstr(flat, want[i]), "%s not in %s", want[i], flat);
    kc_model *back;
    KC_CHECK(kc_model_from_json(json, &back));
    cr_assert_eq(kc_model_input_dtype(back, 0), KC_INT32);
    cr_assert_eq(kc_model_input_shape_at(back, 0).dims[0], KC_NONE);
    cr_assert_eq(kc_count_params(back), 14);
    kc_model_free(back);
    /* a constraint kerac lacks is refused by name */
    char *bad = malloc(strlen(json) + 64);
    const char *null_field = "\"embeddings_constraint\":null";
    char *at = strstr(json, null_field);
    cr_assert_not_null(at, "%s", json);
    snprintf(bad, strlen(json) + 64, "%.*s\"embeddings_constraint\":\"non_neg\"%s",
             (int)(at - json), json, at + strlen(null_field));
    KC_EXPECT_ERR(kc_model_from_json(bad, &back), KC_EFORMAT, "embeddings_constraint");
    free(bad);
    free(flat);
    free(json);
    kc_model_free(m);
}
