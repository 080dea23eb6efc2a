/* metrics.h: Keras's metrics (src/metrics.c): the table of kc_metric, a metric's state over an
 * epoch (reset, update with a batch, result) and the lookup by name the C API and the file
 * readers share. */
#ifndef KERAC_METRICS_H
#define KERAC_METRICS_H
#include "internal.h"
#include "losses.h"

#define KC_METRIC_KEY_MAX 128

/* the options a metric's Keras class takes (kc_metric_info.opts) */
enum {
    KC_MOPT_THRESHOLD = 1,   /* threshold (BinaryAccuracy, F-scores) or thresholds (Precision, Recall) */
    KC_MOPT_K = 2,           /* k */
    KC_MOPT_TOP_K = 4,       /* top_k */
    KC_MOPT_CLASS_ID = 8,    /* class_id */
    KC_MOPT_AUC = 16,        /* num_thresholds, curve, summation_method */
    KC_MOPT_LOGITS = 32,     /* from_logits */
    KC_MOPT_SMOOTHING = 64,  /* label_smoothing */
    KC_MOPT_BETA = 128,      /* beta */
    KC_MOPT_AVERAGE = 256,   /* average */
    KC_MOPT_AXIS = 512       /* axis (written in the config: -1) */
};
/* the targets a metric reads: the output's shape, or class indices */
enum { KC_MT_DENSE = 1, KC_MT_SPARSE = 2 };

typedef struct kc_metric_state kc_metric_state;

typedef struct {
    const char *name;       /* the class's default name: the config's "name", the log key */
    const char *class_name; /* Keras's class; NULL for a loss function Keras wraps in a Mean */
    const char *snake;      /* the class's snake-case name (Keras 3's string) when not name */
    unsigned opts;          /* KC_MOPT_* */
    int up;                 /* Keras's _direction "up": higher is better */
    unsigned targets;       /* KC_MT_* */
    kc_loss loss;           /* a Mean of this loss's values (kc_loss_row_value), or NONE */
    /* A Mean metric (Keras's MeanMetricWrapper): each row's value; the result is the mean over
     * samples of their rows' mean (weighted by the sample weights) */
    void (*values)(kc_metric_state *st, const float *pred, const float *y, int rows, double *out);
    /* any other: doubles of state (kept in st->acc), the update (w: a weight per row, or
     * NULL) and the result. result alone on a Mean metric maps its mean (RootMeanSquaredError) */
    int64_t (*state_size)(const kc_metric_state *st);
    void (*update)(kc_metric_state *st, const float *pred, const float *y, int rows,
                   const float *w);
    double (*result)(const kc_metric_state *st);
} kc_metric_info;

struct kc_metric_state {
    kc_metric_spec spec;        /* resolved: defaults filled in, name pointing at name[] */
    const kc_metric_info *info; /* the kind it runs as ("accuracy" resolves to one) */
    kc_loss_spec loss;          /* the loss whose values a loss metric averages */
    int output, weighted;
    kc_loss loss_kind;          /* the output's loss (what "accuracy" resolved from) */
    int cols, rows_per_sample, sparse;
    int hinge_binary;           /* this batch's labels are all 0 or 1 */
    char name[KC_METRIC_KEY_MAX]; /* before the output's prefix and the "_1" of a duplicate */
    char key[KC_METRIC_KEY_MAX];  /* the log key */
    double total, count;        /* a Mean metric */
    double *acc;                /* other state: state_size doubles */
    int64_t n_acc;
    double *work;               /* AUC's result: 4 * num_thresholds doubles (kept: fit asks
                                   for results every step and allocates nothing there) */
    float *scratch;             /* 2 * cols floats */
    double *vals;               /* a batch's row values */
    int64_t cap_vals;
};

const kc_metric_info *kc_metric_info_of(kc_metric kind); /* NULL when not a metric */
/* a name: the default name, class name, snake-case class name, Keras 3's aliases and tf.keras
 * 2's names; KC_METRIC_NONE when unknown; *canonical (optional): the static copy of name */
kc_metric kc_metric_find(const char *name, const char **canonical);
/* Is name one Keras 3's compile reads as this metric (with its default options)? */
int kc_metric_keras3_string(kc_metric kind, const char *name);
/* What "accuracy" runs as on an output of this loss and last axis: kerac's choice, as tf.keras
 * 2's (binary for one column or a binary crossentropy, sparse for sparse categorical
 * crossentropy, else categorical), or with keras3 Keras 3's, from the shapes alone (a binary
 * crossentropy over several columns gets categorical accuracy there) */
kc_metric kc_metric_accuracy_kind(kc_loss loss, int cols, int keras3);
/* Resolves and checks spec for an output (its loss and shape); st's memory is its own */
kc_status kc_metric_init(kc_metric_state *st, const kc_metric_spec *spec, const kc_loss_spec *loss,
                         kc_shape out, int output, int weighted, const char *where);
void kc_metric_free(kc_metric_state *st);
void kc_metric_reset(kc_metric_state *st);
/* pred: batch * rows_per_sample rows of cols; y: as many rows of targets (or one class index
 * per sample); sample_weight: one per sample, or NULL. NaN when out of memory. */
/* room for rows row values (kc_model_ensure_workspace: the training loop allocates nothing) */
kc_status kc_metric_reserve(kc_metric_state *st, int64_t rows);
void kc_metric_update(kc_metric_state *st, const float *pred, const float *y, int batch,
                      const float *sample_weight, const uint8_t *mask);
double kc_metric_result(const kc_metric_state *st);
/* Are the resolved spec's options Keras's defaults (so that a name can stand for it)? */
int kc_metric_spec_default(const kc_metric_spec *resolved);
#endif
