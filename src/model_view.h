/* model_view.h: what saving, loading and callbacks may see of a model (the struct itself stays
 * private to model.c), and the callback dispatch kc_fit calls. */
#ifndef KERAC_MODEL_VIEW_H
#define KERAC_MODEL_VIEW_H
#include "internal.h"
#include "layers/layer.h"
#include "optimizers.h"

typedef struct {
    kc_shape input_shape;
    kc_layer **layers;
    int n_layers;
    float *params; /* the flat weights, Keras order */
    int64_t n_params;
    kc_optimizer *opt; /* NULL when not compiled */
    kc_loss loss;
    kc_rng *rng;       /* the shuffling stream */
    uint64_t *step;    /* training steps taken: keys dropout masks */
    int *epoch;        /* epochs completed */
    int *stop_training;
    kc_model *model;
} kc_model_view;

/* Fills v, creating the weights first if needed (an error when the model is not built). */
kc_status kc_model_view_get(kc_model *m, kc_model_view *v);
/* layer i (NULL when out of range), also before the weights exist */
kc_layer *kc_model_layer(kc_model *m, int i);

/* which way a log key improves (train.c): 1 up (accuracy, AUC, ...), -1 down (the losses, the
 * error metrics; also learning_rate), 0 when the model does not log it */
int kc_model_metric_direction(const kc_model *m, const char *key);
/* the keys the model logs, "loss, accuracy, ..." (a static buffer) */
const char *kc_model_log_keys(const kc_model *m);

/* ---- callbacks (callbacks.c) ---- */
typedef enum {
    KC_CB_TRAIN_BEGIN,
    KC_CB_TRAIN_END,
    KC_CB_EPOCH_BEGIN,
    KC_CB_EPOCH_END,
    KC_CB_BATCH_END
} kc_cb_event;
/* logs with every value absent, epoch 0, batch -1 and the current learning rate */
kc_logs kc_logs_empty(const kc_model *m);
/* runs the hook of every callback in opts in order; the first failure ends the run */
kc_status kc_callbacks_run(const kc_fit_opts *opts, kc_cb_event event, kc_model *m,
                           const kc_logs *logs);
#endif
