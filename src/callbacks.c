/* callbacks.c: the hooks kc_fit calls, and Keras's callbacks with Keras's names and defaults:
 * EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, CSVLogger, LearningRateScheduler,
 * TerminateOnNaN (the files of keras/src/callbacks). Each is a kc_callback whose user pointer holds its
 * state; kc_callback_free releases it. */
#include "model_view.h"
#include "metrics.h"
#include "dist/dist.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

kc_logs kc_logs_empty(const kc_model *m) {
    return (kc_logs){0, -1, NAN, NAN, NAN, NAN, (double)kc_get_learning_rate(m), 0, NULL, NULL};
}

static int logs_find(const kc_logs *logs, const char *key, double *v) {
    for (int i = 0; i < logs->n_values; i++)
        if (!strcmp(logs->keys[i], key)) {
            *v = logs->values[i];
            return 1;
        }
    return 0;
}

int kc_logs_get(const kc_logs *logs, const char *key, double *value) {
    if (!logs || !key) return 0;
    double v;
    /* the keys the logs carry, then the fields, then "acc" and "accuracy" for each other */
    const char *other = !strcmp(key, "acc")            ? "accuracy"
                        : !strcmp(key, "accuracy")     ? "acc"
                        : !strcmp(key, "val_acc")      ? "val_accuracy"
                        : !strcmp(key, "val_accuracy") ? "val_acc"
                                                       : NULL;
    if (logs_find(logs, key, &v)) {
    } else if (!strcmp(key, "loss")) v = logs->loss;
    else if (!strcmp(key, "accuracy") || !strcmp(key, "acc")) v = logs->accuracy;
    else if (!strcmp(key, "val_loss")) v = logs->val_loss;
    else if (!strcmp(key, "val_accuracy") || !strcmp(key, "val_acc")) v = logs->val_accuracy;
    else if (!strcmp(key, "learning_rate") || !strcmp(key, "lr")) v = logs->learning_rate;
    else if (!other || !logs_find(logs, other, &v)) return 0;
    if (isnan(v) && other) logs_find(logs, other, &v); /* "acc" absent: "accuracy"'s */
    if (isnan(v) && strcmp(key, "loss")) return 0;
    if (value) *value = v;
    return 1;
}

kc_status kc_callbacks_run(const kc_fit_opts *o, kc_cb_event event, kc_model *m,
                           const kc_logs *logs) {
    if (o->n_callbacks < 0 || (o->n_callbacks && !o->callbacks))
        return kc_err(KC_EINVAL, "kc_fit: n_callbacks is %d but callbacks is %s", o->n_callbacks,
                      o->callbacks ? "set" : "NULL");
    for (int i = 0; i < o->n_callbacks; i++) {
        kc_callback *cb = o->callbacks[i];
        if (!cb) return kc_err(KC_EINVAL, "kc_fit: callback %d is NULL", i);
        kc_callback_fn fn = event == KC_CB_TRAIN_BEGIN   ? cb->on_train_begin
                            : event == KC_CB_TRAIN_END   ? cb->on_train_end
                            : event == KC_CB_EPOCH_BEGIN ? cb->on_epoch_begin
                            : event == KC_CB_EPOCH_END   ? cb->on_epoch_end
                                                         : cb->on_batch_end;
        if (!fn) continue;
        kc_status st = fn(cb, m, logs);
        if (st) return st;
    }
    return KC_OK;
}

void kc_callback_free(kc_callback *cb) {
    if (!cb) return;
    if (cb->destroy) cb->destroy(cb);
    else free(cb);
}


/* a callback and its state in one allocation: free(cb) releases both */
static void *cb_new(size_t state_size) {
    kc_callback *cb = calloc(1, sizeof(kc_callback) + state_size);
    if (!cb) {
        kc_err(KC_ENOMEM, "out of memory creating a callback");
        return NULL;
    }
    cb->user = cb + 1;
    return cb;
}

static char *dup_str(const char *s) {
    char *d = malloc(strlen(s) + 1);
    if (d) strcpy(d, s);
    return d;
}

/* the logs' keys as "a, b, c" (a static buffer) */
static const char *logs_list(const kc_logs *logs) {
    static _Thread_local char buf[1024];
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < logs->n_values && n + 4 < sizeof buf; i++) {
        if (isnan(logs->values[i])) continue;
        int w = snprintf(buf + n, sizeof buf - n, "%s%s", n ? ", " : "", logs->keys[i]);
        if (w < 0) break;
        n += (size_t)w;
        if (n >= sizeof buf) {
            n = sizeof buf - 1;
            break;
        }
    }
    return buf;
}

/* ---- MonitorCallback: the comparison EarlyStopping, ReduceLROnPlateau and ModelCheckpoint
 * share: mode auto is max for accuracy, min for loss (and for anything else kerac logs) ---- */

typedef struct {
    char monitor[KC_METRIC_KEY_MAX + 4];
    kc_monitor_mode mode;
    int maximize;
    double min_delta; /* signed as Keras: negative when minimising */
    int has_best;
    double best;
    int warned; /* the monitor was missing from the logs once (warned) */
} monitor_state;

static kc_status monitor_init(monitor_state *s, const char *monitor, kc_monitor_mode mode,
                              double min_delta, const char *who) {
    if (!monitor) monitor = "val_loss";
    if (!*monitor || strlen(monitor) >= sizeof s->monitor)
        return kc_err(KC_EINVAL, "%s: monitor '%s' is empty or too long", who, monitor);
    if ((unsigned)mode > KC_MODE_MAX) return kc_err(KC_EINVAL, "%s: unknown mode %d", who, mode);
    strcpy(s->monitor, monitor);
    s->mode = mode;
    s->maximize = mode == KC_MODE_MAX;
    s->min_delta = fabs(min_delta);
    return KC_OK;
}

/* At training's start, as Keras 3's MonitorCallback: mode auto takes the direction of the
 * compiled metric the monitor names (up for accuracy, AUC, precision ...; down for the losses
 * and error metrics); a key the model does not log is an error in auto mode (Keras: "isn't
 * able to automatically determine whether that metric should be maximized or minimized") */
static kc_status monitor_start(monitor_state *s, const kc_model *m, const char *who) {
    s->warned = 0;
    if (s->mode == KC_MODE_AUTO) {
        int dir = kc_model_metric_direction(m, s->monitor);
        if (!dir)
            return kc_err(KC_EINVAL,
                          "%s: unknown monitor '%s': the model logs %s (with validation, the "
                          "same with \"val_\"); pass mode min or max to monitor another key",
                          who, s->monitor, kc_model_log_keys(m));
        s->maximize = dir > 0;
    }
    s->min_delta = s->maximize ? fabs(s->min_delta) : -fabs(s->min_delta);
    return KC_OK;
}

/* the monitored value, or 0 with a warning (once per fit) when the logs lack it, as Keras */
static int monitor_value(monitor_state *s, const kc_logs *logs, const char *who, double *v) {
    if (kc_logs_get(logs, s->monitor, v)) return 1;
    if (!s->warned)
        kc_warn("%s conditioned on metric '%s' which is not available; available metrics are: %s",
                who, s->monitor, logs_list(logs));
    s->warned = 1;
    return 0;
}

static int is_improvement(const monitor_state *s, double value, int has_reference,
                          double reference) {
    if (!has_reference) return 1;
    return s->maximize ? value - s->min_delta > reference : value - s->min_delta < reference;
}

/* ---- EarlyStopping ---- */

typedef struct {
    monitor_state mon;
    kc_early_stopping_opts o;
    int wait, stopped_epoch, best_epoch;
    float *best_weights;
    int64_t n_weights;
} early_state;

static kc_status es_train_begin(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    early_state *s = cb->user;
    s->wait = s->stopped_epoch = s->best_epoch = 0;
    s->mon.has_best = 0;
    free(s->best_weights);
    s->best_weights = NULL;
    return monitor_start(&s->mon, m, "EarlyStopping");
}

static kc_status es_snapshot(early_state *s, kc_model *m) {
    int64_t n = kc_count_params(m);
    if (!s->best_weights) {
        s->best_weights = malloc(sizeof(float) * (size_t)(n ? n : 1));
        if (!s->best_weights) return kc_err(KC_ENOMEM, "EarlyStopping: out of memory");
        s->n_weights = n;
    }
    return kc_get_weights(m, s->best_weights, n);
}

static kc_status es_epoch_end(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    early_state *s = cb->user;
    double current;
    if (!monitor_value(&s->mon, logs, "Early stopping", &current) ||
        logs->epoch < s->o.start_from_epoch)
        return KC_OK;
    kc_status st;
    if (s->o.restore_best_weights && !s->best_weights) {
        if ((st = es_snapshot(s, m))) return st;
        s->best_epoch = logs->epoch;
    }
    s->wait++;
    if (is_improvement(&s->mon, current, s->mon.has_best, s->mon.best)) {
        s->mon.best = current;
        s->mon.has_best = 1;
        s->best_epoch = logs->epoch;
        if (s->o.restore_best_weights && (st = es_snapshot(s, m))) return st;
        if (!s->o.has_baseline || is_improvement(&s->mon, current, 1, s->o.baseline)) s->wait = 0;
        return KC_OK;
    }
    if (s->wait >= s->o.patience && logs->epoch > 0) {
        s->stopped_epoch = logs->epoch;
        kc_stop_training(m);
    }
    return KC_OK;
}

static kc_status es_train_end(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    early_state *s = cb->user;
    if (s->stopped_epoch > 0 && s->o.verbose > 0)
        printf("Epoch %d: early stopping\n", s->stopped_epoch + 1);
    if (s->o.restore_best_weights && s->best_weights) {
        if (s->o.verbose > 0)
            printf("Restoring model weights from the end of the best epoch: %d.\n",
                   s->best_epoch + 1);
        return kc_set_weights(m, s->best_weights, s->n_weights);
    }
    return KC_OK;
}

static void es_destroy(kc_callback *cb) {
    early_state *s = cb->user;
    free(s->best_weights);
    free(cb);
}

kc_callback *kc_early_stopping(const kc_early_stopping_opts *opts) {
    kc_early_stopping_opts o = opts ? *opts : (kc_early_stopping_opts){0};
    if (o.patience < 0 && o.patience != KC_ZERO) {
        kc_err(KC_EINVAL, "EarlyStopping: patience must be >= 0, got %d", o.patience);
        return NULL;
    }
    if (o.patience == KC_ZERO) o.patience = 0;
    monitor_state mon = {0};
    if (monitor_init(&mon, o.monitor, o.mode, o.min_delta, "EarlyStopping")) return NULL;
    kc_callback *cb = cb_new(sizeof(early_state));
    if (!cb) return NULL;
    early_state *s = cb->user;
    s->mon = mon;
    s->o = o;
    s->o.monitor = NULL;
    cb->on_train_begin = es_train_begin;
    cb->on_epoch_end = es_epoch_end;
    cb->on_train_end = es_train_end;
    cb->destroy = es_destroy;
    return cb;
}

/* ---- ReduceLROnPlateau ---- */

typedef struct {
    monitor_state mon;
    kc_reduce_lr_on_plateau_opts o;
    int wait, cooldown_counter;
} plateau_state;

static kc_status rl_train_begin(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    plateau_state *s = cb->user;
    s->mon.has_best = 0;
    s->cooldown_counter = s->wait = 0;
    return monitor_start(&s->mon, m, "ReduceLROnPlateau");
}

static kc_status rl_epoch_end(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    plateau_state *s = cb->user;
    double current;
    if (!monitor_value(&s->mon, logs, "Learning rate reduction", &current)) return KC_OK;
    if (s->cooldown_counter > 0) {
        s->cooldown_counter--;
        s->wait = 0;
    }
    if (is_improvement(&s->mon, current, s->mon.has_best, s->mon.best)) {
        s->mon.best = current;
        s->mon.has_best = 1;
        s->wait = 0;
    } else if (s->cooldown_counter <= 0) {
        s->wait++;
        if (s->wait >= s->o.patience) {
            double old_lr = kc_get_learning_rate(m);
            if (old_lr > (double)(float)s->o.min_lr) {
                double new_lr = fmax(old_lr * s->o.factor, s->o.min_lr);
                kc_status st = kc_set_learning_rate(m, (float)new_lr);
                if (st) return st;
                if (s->o.verbose > 0)
                    printf("\nEpoch %d: ReduceLROnPlateau reducing learning rate to %g.\n",
                           logs->epoch + 1, new_lr);
                s->cooldown_counter = s->o.cooldown;
                s->wait = 0;
            }
        }
    }
    return KC_OK;
}

kc_callback *kc_reduce_lr_on_plateau(const kc_reduce_lr_on_plateau_opts *opts) {
    kc_reduce_lr_on_plateau_opts o = opts ? *opts : (kc_reduce_lr_on_plateau_opts){0};
    if (o.factor == 0.0) o.factor = 0.1;
    if (o.patience == 0) o.patience = 10;
    else if (o.patience == KC_ZERO) o.patience = 0;
    if (o.min_delta == 0.0) o.min_delta = 1e-4;
    else if (o.min_delta < 0.0) o.min_delta = 0.0;
    if (!(o.factor > 0.0 && o.factor < 1.0)) {
        kc_err(KC_EINVAL, "ReduceLROnPlateau does not support a factor >= 1.0 (or <= 0). "
                          "Received factor=%g", o.factor);
        return NULL;
    }
    if (o.patience < 0 || o.cooldown < 0 || !(o.min_lr >= 0.0)) {
        kc_err(KC_EINVAL, "ReduceLROnPlateau: patience, cooldown and min_lr must be >= 0");
        return NULL;
    }
    monitor_state mon = {0};
    if (monitor_init(&mon, o.monitor, o.mode, o.min_delta, "ReduceLROnPlateau")) return NULL;
    kc_callback *cb = cb_new(sizeof(plateau_state));
    if (!cb) return NULL;
    plateau_state *s = cb->user;
    s->mon = mon;
    s->o = o;
    s->o.monitor = NULL;
    cb->on_train_begin = rl_train_begin;
    cb->on_epoch_end = rl_epoch_end;
    return cb;
}

/* ---- ModelCheckpoint ---- */

typedef struct {
    monitor_state mon;
    kc_model_checkpoint_opts o;
    char *filepath;
} checkpoint_state;

/* Keras's filepath.format(epoch=epoch + 1, **logs) for the fields kerac knows: {name} and
 * {name:spec} with spec a printf conversion (02d, .4f, ...) */
static kc_status format_path(const char *tmpl, const kc_logs *logs, char *out, size_t size) {
    size_t n = 0;
    for (const char *p = tmpl; *p;) {
        if (*p != '{') {
            if (n + 1 >= size) goto too_long;
            out[n++] = *p++;
            continue;
        }
        const char *close = strchr(p, '}');
        if (!close || close - p > 60)
            return kc_err(KC_EINVAL, "ModelCheckpoint: unterminated field in filepath '%s'", tmpl);
        char field[64], name[64], spec[32] = "";
        memcpy(field, p + 1, (size_t)(close - p - 1));
        field[close - p - 1] = 0;
        char *colon = strchr(field, ':');
        if (colon) {
            *colon = 0;
            snprintf(spec, sizeof spec, "%s", colon + 1);
        }
        snprintf(name, sizeof name, "%s", field);
        char fmt[40], piece[128];
        int w;
        if (!strcmp(name, "epoch")) {
            size_t len = strlen(spec);
            if (len && spec[len - 1] != 'd')
                return kc_err(KC_EINVAL, "ModelCheckpoint: {epoch:%s} needs an integer format", spec);
            snprintf(fmt, sizeof fmt, "%%%s%s", len ? "" : "d", spec);
            if (strspn(spec, "0123456789d") != len)
                return kc_err(KC_EINVAL, "ModelCheckpoint: bad format {epoch:%s}", spec);
            w = snprintf(piece, sizeof piece, fmt, logs->epoch + 1);
        } else {
            double v;
            if (!kc_logs_get(logs, name, &v))
                return kc_err(KC_EINVAL, "ModelCheckpoint: filepath '%s' names '%s', which the "
                                         "logs do not hold", tmpl, name);
            size_t len = strlen(spec);
            if (len && (strspn(spec, "0123456789.") != len - 1 || !strchr("fgeFGE", spec[len - 1])))
                return kc_err(KC_EINVAL, "ModelCheckpoint: bad format {%s:%s}", name, spec);
            snprintf(fmt, sizeof fmt, "%%%s", len ? spec : "g");
            w = snprintf(piece, sizeof piece, fmt, v);
        }
        if (w < 0 || n + (size_t)w + 1 >= size) goto too_long;
        memcpy(out + n, piece, (size_t)w);
        n += (size_t)w;
        p = close + 1;
    }
    out[n] = 0;
    return KC_OK;
too_long:
    return kc_err(KC_EINVAL, "ModelCheckpoint: the file path from '%s' is too long", tmpl);
}

static kc_status mc_train_begin(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    checkpoint_state *s = cb->user;
    return s->o.save_best_only ? monitor_start(&s->mon, m, "ModelCheckpoint") : KC_OK;
}

static kc_status mc_epoch_end(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    checkpoint_state *s = cb->user;
    if (s->o.save_best_only) {
        double current;
        if (!monitor_value(&s->mon, logs, "ModelCheckpoint (save_best_only)", &current)) return KC_OK;
        if (!is_improvement(&s->mon, current, s->mon.has_best, s->mon.best)) {
            if (s->o.verbose > 0)
                printf("\nEpoch %d: %s did not improve from %.5f\n", logs->epoch + 1,
                       s->mon.monitor, s->mon.best);
            return KC_OK;
        }
        if (s->o.verbose > 0) {
            if (s->mon.has_best)
                printf("\nEpoch %d: %s improved from %.5f to %.5f, saving model\n",
                       logs->epoch + 1, s->mon.monitor, s->mon.best, current);
            else
                printf("\nEpoch %d: %s improved from None to %.5f, saving model\n",
                       logs->epoch + 1, s->mon.monitor, current);
        }
        s->mon.best = current;
        s->mon.has_best = 1;
    }
    char path[4096];
    kc_status st = format_path(s->filepath, logs, path, sizeof path);
    if (st) return st;
    if (!s->o.save_best_only && s->o.verbose > 0)
        printf("\nEpoch %d: saving model to %s\n", logs->epoch + 1, path);
    st = s->o.save_weights_only ? kc_save_weights(m, path) : kc_save(m, path);
    return st ? kc_err_prefix(st, "ModelCheckpoint") : KC_OK;
}

static void mc_destroy(kc_callback *cb) {
    checkpoint_state *s = cb->user;
    free(s->filepath);
    free(cb);
}

kc_callback *kc_model_checkpoint(const char *filepath, const kc_model_checkpoint_opts *opts) {
    kc_model_checkpoint_opts o = opts ? *opts : (kc_model_checkpoint_opts){0};
    if (!filepath || !*filepath) {
        kc_err(KC_EINVAL, "ModelCheckpoint: filepath is empty");
        return NULL;
    }
    monitor_state mon = {0};
    if (monitor_init(&mon, o.monitor, o.mode, 0.0, "ModelCheckpoint")) return NULL;
    mon.has_best = o.has_initial_value_threshold;
    mon.best = o.initial_value_threshold;
    kc_callback *cb = cb_new(sizeof(checkpoint_state));
    if (!cb) return NULL;
    checkpoint_state *s = cb->user;
    s->mon = mon;
    s->o = o;
    s->o.monitor = NULL;
    s->filepath = dup_str(filepath);
    if (!s->filepath) {
        free(cb);
        kc_err(KC_ENOMEM, "out of memory creating a callback");
        return NULL;
    }
    cb->on_train_begin = mc_train_begin;
    cb->on_epoch_end = mc_epoch_end;
    cb->destroy = mc_destroy;
    return cb;
}

/* ---- CSVLogger ---- */

typedef struct {
    char *filename;
    char sep;
    int append;
    FILE *f;
    int header;
    /* the columns, fixed at the first epoch: the logs' keys sorted, and without validation
     * their "val_" twins (Keras's CSVLogger adds them, written NA) */
    int n_named;
    char (*named)[KC_METRIC_KEY_MAX + 4];
} csv_state;

static void print_repr(FILE *f, double v);

static int cmp_key(const void *a, const void *b) { return strcmp(a, b); }

static void csv_row(csv_state *s, const kc_logs *logs) {
    if (!s->n_named) {
        int n = 0, val = 0;
        for (int i = 0; i < logs->n_values; i++) {
            snprintf(s->named[n++], sizeof s->named[0], "%s", logs->keys[i]);
            val |= !strncmp(logs->keys[i], "val_", 4);
        }
        if (!n) snprintf(s->named[n++], sizeof s->named[0], "loss");
        qsort(s->named, (size_t)n, sizeof s->named[0], cmp_key);
        if (!val)
            for (int i = 0, k = n; i < k; i++) {
                char v[sizeof s->named[0]];
                snprintf(v, sizeof v, "val_%.*s", (int)sizeof v - 5, s->named[i]);
                memcpy(s->named[n++], v, sizeof v);
            }
        s->n_named = n;
        if (s->header) {
            fprintf(s->f, "epoch");
            for (int k = 0; k < s->n_named; k++) fprintf(s->f, "%c%s", s->sep, s->named[k]);
            fputc('\n', s->f);
        }
    }
    fprintf(s->f, "%d", logs->epoch);
    for (int k = 0; k < s->n_named; k++) {
        double v = NAN;
        fputc(s->sep, s->f);
        if (kc_logs_get(logs, s->named[k], &v) && !isnan(v)) print_repr(s->f, v);
        else if (!strcmp(s->named[k], "loss")) print_repr(s->f, logs->loss);
        else fputs("NA", s->f);
    }
    fputc('\n', s->f);
}

/* Keras 3's epoch logs are loss, the compiled metrics and, with validation, their val_
 * twins (no learning_rate); CSVLogger writes them sorted */
static kc_status csv_train_begin(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    csv_state *s = cb->user;
    if (s->f) fclose(s->f);
    s->header = 1;
    if (s->append) {
        FILE *r = fopen(s->filename, "r");
        if (r) {
            s->header = fgetc(r) == EOF;
            fclose(r);
        }
    }
    s->f = fopen(s->filename, s->append ? "a" : "w");
    s->n_named = 0;
    if (!s->f) return kc_err(KC_EIO, "CSVLogger: cannot open %s for writing", s->filename);
    return KC_OK;
}

/* Python's repr of a float: the shortest digits that read back as the same double */
static void print_repr(FILE *f, double v) {
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!strchr(buf, '.') && !strchr(buf, 'e') && !strchr(buf, 'n') && !strchr(buf, 'i'))
        strcat(buf, ".0");
    fputs(buf, f);
}

static kc_status csv_epoch_end(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    csv_state *s = cb->user;
    if (!s->f) return kc_err(KC_ESTATE, "CSVLogger: the file is not open (on_train_begin)");
    if (!s->named) {
        s->named = calloc(2 * KC_MAX_METRIC_VALUES + 2, sizeof *s->named);
        if (!s->named) return kc_err(KC_ENOMEM, "CSVLogger: out of memory");
    }
    csv_row(s, logs);
    fflush(s->f);
    return ferror(s->f) ? kc_err(KC_EIO, "CSVLogger: writing %s failed", s->filename) : KC_OK;
}

static kc_status csv_train_end(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    csv_state *s = cb->user;
    int bad = 0;
    if (s->f) bad = fclose(s->f) != 0;
    s->f = NULL;
    return bad ? kc_err(KC_EIO, "CSVLogger: closing %s failed", s->filename) : KC_OK;
}

static void csv_destroy(kc_callback *cb) {
    csv_state *s = cb->user;
    if (s->f) fclose(s->f);
    free(s->named);
    free(s->filename);
    free(cb);
}

kc_callback *kc_csv_logger(const char *filename, char separator, int append) {
    if (!filename || !*filename) {
        kc_err(KC_EINVAL, "CSVLogger: filename is empty");
        return NULL;
    }
    kc_callback *cb = cb_new(sizeof(csv_state));
    if (!cb) return NULL;
    csv_state *s = cb->user;
    s->sep = separator ? separator : ',';
    s->append = append;
    s->filename = dup_str(filename);
    if (!s->filename) {
        free(cb);
        kc_err(KC_ENOMEM, "out of memory creating a callback");
        return NULL;
    }
    cb->on_train_begin = csv_train_begin;
    cb->on_epoch_end = csv_epoch_end;
    cb->on_train_end = csv_train_end;
    cb->destroy = csv_destroy;
    return cb;
}

/* ---- LearningRateScheduler ---- */

typedef struct {
    kc_schedule_fn schedule;
    void *user;
    int verbose;
} schedule_state;

static kc_status ls_epoch_begin(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    schedule_state *s = cb->user;
    float lr = s->schedule(logs->epoch, kc_get_learning_rate(m), s->user);
    kc_status st = kc_set_learning_rate(m, lr);
    if (st) return kc_err_prefix(st, "LearningRateScheduler (epoch %d)", logs->epoch);
    if (s->verbose > 0)
        printf("\nEpoch %d: LearningRateScheduler setting learning rate to %g.\n",
               logs->epoch + 1, (double)lr);
    return KC_OK;
}

kc_callback *kc_learning_rate_scheduler(kc_schedule_fn schedule, void *user, int verbose) {
    if (!schedule) {
        kc_err(KC_EINVAL, "LearningRateScheduler: schedule is NULL");
        return NULL;
    }
    kc_callback *cb = cb_new(sizeof(schedule_state));
    if (!cb) return NULL;
    *(schedule_state *)cb->user = (schedule_state){schedule, user, verbose};
    cb->on_epoch_begin = ls_epoch_begin;
    return cb;
}

/* ---- TerminateOnNaN ---- */

static kc_status tn_batch_end(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    /* Keras also prints "Batch N: Invalid loss, terminating training"; kerac's library
     * prints nothing unless asked */
    if (isnan(logs->loss) || isinf(logs->loss)) kc_stop_training(m);
    return KC_OK;
}

kc_callback *kc_terminate_on_nan(void) {
    kc_callback *cb = cb_new(0);
    if (cb) cb->on_batch_end = tn_batch_end;
    return cb;
}

/* distributed fit runs these on rank 0 only (src/dist/dist.h) */
int kc_callback_writes_files(const kc_callback *cb) {
    return cb->on_epoch_end == mc_epoch_end || cb->on_epoch_end == csv_epoch_end;
}
