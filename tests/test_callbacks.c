/* test_callbacks.c: Keras's callbacks in kc_fit: EarlyStopping, ReduceLROnPlateau,
 * ModelCheckpoint, CSVLogger, LearningRateScheduler, TerminateOnNaN, and one's own. */
#include "testutil.h"

#define N 60

static float X[N * 4], Y[N * 3];

static kc_dataset data(void) {
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 4; j++) X[i * 4 + j] = (float)((i * 7 + j * 5) % 13) / 13.0f;
        for (int j = 0; j < 3; j++) Y[i * 3 + j] = (float)(i % 3 == j);
    }
    return (kc_dataset){.count = N, .x_shape = kc_shape1(4), .x_dtype = KC_FLOAT32, .x = X,
                        .y_shape = kc_shape1(3), .y_dtype = KC_FLOAT32, .y = Y};
}

static kc_model *model(float lr) {
    kc_set_random_seed(3);
    kc_model *m = kc_sequential(kc_shape1(4));
    kc_add(m, kc_dense(6, KC_RELU));
    kc_add(m, kc_dense(3, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY,
                        kc_sgd(&(kc_sgd_opts){.learning_rate = lr}), KC_METRIC_ACCURACY));
    return m;
}

/* a callback of one's own: counts the hooks, records the learning rates */
typedef struct {
    int train_begin, train_end, epoch_begin, epoch_end, batch_end;
    double last_loss;
    int stop_at_batch;
} counts;

static kc_status c_tb(kc_callback *cb, kc_model *m, const kc_logs *l) {
    ((counts *)cb->user)->train_begin++;
    return KC_OK;
}
static kc_status c_te(kc_callback *cb, kc_model *m, const kc_logs *l) {
    ((counts *)cb->user)->train_end++;
    return KC_OK;
}
static kc_status c_eb(kc_callback *cb, kc_model *m, const kc_logs *l) {
    ((counts *)cb->user)->epoch_begin++;
    return KC_OK;
}
static kc_status c_ee(kc_callback *cb, kc_model *m, const kc_logs *l) {
    counts *c = cb->user;
    c->epoch_end++;
    c->last_loss = l->loss;
    cr_expect(isnan(l->val_loss) == 0, "validation logs are present");
    return KC_OK;
}
static kc_status c_be(kc_callback *cb, kc_model *m, const kc_logs *l) {
    counts *c = cb->user;
    c->batch_end++;
    if (c->stop_at_batch && c->batch_end == c->stop_at_batch) kc_stop_training(m);
    return KC_OK;
}

Test(callbacks, own_callback_sees_every_hook) {
    kc_dataset d = data();
    kc_model *m = model(0.1f);
    counts c = {0};
    kc_callback cb = {c_tb, c_te, c_eb, c_ee, c_be, NULL, &c};
    kc_callback *list[] = {&cb};
    kc_history *h;
    KC_CHECK(kc_fit(m, &d,
                    &(kc_fit_opts){.epochs = 3, .batch_size = 20, .verbose = -1,
                                   .validation_split = 0.2f, .callbacks = list, .n_callbacks = 1},
                    &h));
    cr_expect_eq(c.train_begin, 1);
    cr_expect_eq(c.train_end, 1);
    cr_expect_eq(c.epoch_begin, 3);
    cr_expect_eq(c.epoch_end, 3);
    cr_expect_eq(c.batch_end, 9); /* 48 training samples, batches of 20: 3 per epoch */
    cr_expect_eq(c.last_loss, h->loss[2]);
    kc_history_free(h);
    /* stopping from a batch ends the epoch early, and training */
    c = (counts){.stop_at_batch = 2};
    KC_CHECK(kc_fit(m, &d,
                    &(kc_fit_opts){.epochs = 5, .batch_size = 20, .verbose = -1,
                                   .validation_split = 0.2f, .callbacks = list, .n_callbacks = 1},
                    &h));
    cr_expect_eq(c.batch_end, 2);
    cr_expect_eq(h->epochs, 1);
    kc_history_free(h);
    kc_model_free(m);
}

Test(callbacks, early_stopping_patience_and_restore) {
    kc_dataset d = data();
    /* learning rate 0: the loss never improves, so patience 2 stops after epoch 3 */
    kc_model *m = model(1e-30f);
    kc_callback *es = kc_early_stopping(&(kc_early_stopping_opts){.monitor = "loss", .patience = 2});
    cr_assert_not_null(es);
    kc_history *h;
    KC_CHECK(kc_fit(m, &d,
                    &(kc_fit_opts){.epochs = 20, .verbose = -1, .no_shuffle = 1,
                                   .callbacks = &es, .n_callbacks = 1},
                    &h));
    cr_expect_eq(h->epochs, 3, "stopped after %d epochs", h->epochs);
    kc_history_free(h);
    kc_callback_free(es);
    kc_model_free(m);
    /* restore_best_weights: with a huge learning rate the loss gets worse; the weights come
     * back to those of the best epoch */
    m = model(50.0f);
    es = kc_early_stopping(&(kc_early_stopping_opts){.monitor = "loss", .patience = 1,
                                                     .restore_best_weights = 1});
    KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.epochs = 30, .verbose = -1, .callbacks = &es,
                                          .n_callbacks = 1}, &h));
    cr_expect_lt(h->epochs, 30);
    kc_history_free(h);
    kc_callback_free(es);
    kc_model_free(m);
    /* a key the model does not log: mode auto cannot tell its direction (Keras 3 raises at the
     * first epoch's end; kerac when training starts) */
    m = model(0.01f);
    es = kc_early_stopping(&(kc_early_stopping_opts){.monitor = "val_f1"});
    cr_assert_not_null(es);
    KC_EXPECT_ERR(kc_fit(m, &d, &(kc_fit_opts){.epochs = 1, .verbose = -1, .callbacks = &es,
                                               .n_callbacks = 1}, NULL), KC_EINVAL,
                  "unknown monitor 'val_f1'");
    kc_callback_free(es);
    kc_model_free(m);
}

Test(callbacks, reduce_lr_on_plateau) {
    kc_dataset d = data();
    kc_model *m = model(1e-30f);
    kc_callback *rl = kc_reduce_lr_on_plateau(
        &(kc_reduce_lr_on_plateau_opts){.monitor = "loss", .patience = 2, .factor = 0.5});
    KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.epochs = 5, .verbose = -1, .no_shuffle = 1,
                                          .callbacks = &rl, .n_callbacks = 1}, NULL));
    /* epoch 0 sets best; epochs 1, 2 no improvement -> halve at 2; 3, 4 -> halve at 4 */
    cr_expect_float_eq(kc_get_learning_rate(m), 1e-30f * 0.25f, 1e-36f, "lr %g",
                       kc_get_learning_rate(m));
    kc_callback_free(rl);
    kc_model_free(m);
    cr_expect_null(kc_reduce_lr_on_plateau(&(kc_reduce_lr_on_plateau_opts){.factor = 1.5}));
}

static float halve_after_two(int epoch, float lr, void *user) {
    (*(int *)user)++;
    return epoch < 2 ? 0.1f : 0.05f;
}

Test(callbacks, learning_rate_scheduler) {
    kc_dataset d = data();
    kc_model *m = model(0.3f);
    int calls = 0;
    kc_callback *ls = kc_learning_rate_scheduler(halve_after_two, &calls, 0);
    KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.epochs = 4, .verbose = -1, .callbacks = &ls,
                                          .n_callbacks = 1}, NULL));
    cr_expect_eq(calls, 4);
    cr_expect_float_eq(kc_get_learning_rate(m), 0.05f, 1e-9f);
    kc_callback_free(ls);
    kc_model_free(m);
}

Test(callbacks, csv_logger_keras_header) {
    kc_dataset d = data();
    kc_model *m = model(0.1f);
    char *dir = tu_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    kc_callback *cl = kc_csv_logger(path, 0, 0);
    kc_history *h;
    KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.epochs = 2, .verbose = -1, .callbacks = &cl,
                                          .n_callbacks = 1}, &h));
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char line[512];
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_expect_str_eq(line, "epoch,accuracy,loss,val_accuracy,val_loss\n");
    cr_assert_not_null(fgets(line, sizeof line, f));
    double loss;
    cr_expect_eq(strncmp(line, "0,", 2), 0, "%s", line);
    cr_expect(strstr(line, ",NA,NA\n") != NULL, "%s", line);
    sscanf(strchr(strchr(line, ',') + 1, ',') + 1, "%lf", &loss);
    cr_expect_eq(loss, h->loss[0], "%s", line);
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_expect_eq(strncmp(line, "1,", 2), 0, "%s", line);
    fclose(f);
    kc_history_free(h);
    kc_callback_free(cl);
    kc_model_free(m);
}

Test(callbacks, terminate_on_nan_stops_quietly) {
    kc_dataset d = data();
    kc_model *m = model(0.1f);
    X[5] = NAN;
    kc_callback *tn = kc_terminate_on_nan();
    kc_history *h;
    KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.epochs = 3, .verbose = -1, .no_shuffle = 1,
                                          .callbacks = &tn, .n_callbacks = 1}, &h));
    cr_expect_eq(h->epochs, 0);
    kc_history_free(h);
    /* without it, the NaN is an error */
    KC_EXPECT_ERR(kc_fit(m, &d, &(kc_fit_opts){.epochs = 3, .verbose = -1, .no_shuffle = 1}, NULL),
                  KC_ENAN, "loss became nan");
    kc_callback_free(tn);
    kc_model_free(m);
}

Test(callbacks, model_checkpoint_best_only) {
    kc_dataset d = data();
    kc_model *m = model(0.2f);
    char *dir = tu_tmpdir(), tmpl[256], path[300];
    snprintf(tmpl, sizeof tmpl, "%s/ck-{epoch:02d}-{loss:.3f}.keras", dir);
    kc_callback *mc = kc_model_checkpoint(tmpl, &(kc_model_checkpoint_opts){.monitor = "loss",
                                                                             .save_best_only = 1});
    cr_assert_not_null(mc, "%s", kc_last_error());
    kc_history *h;
    KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.epochs = 3, .verbose = -1, .callbacks = &mc,
                                          .n_callbacks = 1}, &h));
    snprintf(path, sizeof path, "%s/ck-01-%.3f.keras", dir, h->loss[0]);
    kc_model *l;
    KC_CHECK(kc_load(path, &l));
    cr_expect_eq(kc_model_epoch(l), 1);
    kc_model_free(l);
    kc_history_free(h);
    kc_callback_free(mc);
    /* a fixed name, every epoch */
    snprintf(tmpl, sizeof tmpl, "%s/last.keras", dir);
    mc = kc_model_checkpoint(tmpl, NULL);
    KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.epochs = 5, .initial_epoch = 3, .verbose = -1,
                                          .callbacks = &mc, .n_callbacks = 1}, NULL));
    KC_CHECK(kc_load(tmpl, &l));
    cr_expect_eq(kc_model_epoch(l), 5);
    kc_model_free(l);
    kc_callback_free(mc);
    kc_model_free(m);
}

Test(callbacks, bad_arguments) {
    kc_dataset d = data();
    kc_model *m = model(0.1f);
    KC_EXPECT_ERR(kc_fit(m, &d, &(kc_fit_opts){.verbose = -1, .n_callbacks = 2}, NULL), KC_EINVAL,
                  "n_callbacks");
    cr_expect_null(kc_model_checkpoint(NULL, NULL));
    cr_expect_null(kc_learning_rate_scheduler(NULL, NULL, 0));
    KC_EXPECT_ERR(kc_set_learning_rate(m, -1.0f), KC_EINVAL, "learning rate");
    kc_model_free(m);
}
