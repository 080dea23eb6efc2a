/* common.h: what the kerac program's subcommands share: option parsing with Unix exit codes,
 * messages, model loading (files and built-in networks), losses and optimizers by name, data. */
#ifndef KERAC_CLI_COMMON_H
#define KERAC_CLI_COMMON_H
#include <stddef.h>
#include <stdio.h>

#include "kerac.h"

/* exit codes: 0 success, 1 failure, 2 usage error; 130 training stopped by Ctrl-C */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_INTERRUPTED = 130 };

/* "kerac <cmd>: message\n" on stderr; returns CLI_FAIL */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* the same for a usage error (returns CLI_USAGE) */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* the library's last error after a failed kerac call (returns CLI_FAIL) */
int cli_kc_fail(const char *cmd);
/* kerac's warnings to stderr as "kerac <cmd>: warning: ..." */
void cli_set_warnings(const char *cmd);

/* The value of option argv[*i] (argv[*i + 1]; *i advances), or NULL after a usage message */
const char *cli_value(const char *cmd, int argc, char **argv, int *i);
/* whole number in [lo, hi] / finite float in [lo, hi]: 0, or CLI_USAGE after a message naming
 * the option and the value */
int cli_long(const char *cmd, const char *opt, const char *text, long lo, long hi, long *out);
int cli_float(const char *cmd, const char *opt, const char *text, double lo, double hi,
              double *out);
int cli_is_help(const char *arg); /* --help or -h */
int cli_ends_with(const char *s, const char *suffix);

/* Built-in networks (examples/mnist_models.h): mlp0, mlp1, mlp2, cnn (Keras 2's mnist_cnn.py)
 * and convnet (keras.io's simple MNIST convnet), with the examples' training defaults. */
typedef struct {
    const char *name, *what;
    int epochs, batch_size;
    int validation; /* 0 none, 1 the test set, 2 validation_split 0.1 */
} cli_builtin;
const cli_builtin *cli_find_builtin(const char *name);
extern const char cli_builtin_help[];

/* MODEL: a model.to_json() file (.json), a .keras or .h5 file, or a built-in name. Built-ins
 * and JSON models come uncompiled; *builtin (optional) is set for a built-in, else NULL.
 * Returns 0 or CLI_FAIL after a message naming the file. */
int cli_load_model(const char *cmd, const char *spec, kc_model **out, const cli_builtin **builtin);
int cli_model_compiled(const kc_model *m);
/* Compiles m with the built-in's settings, or with loss / optimizer names (NULL: defaults for
 * labels: sparse categorical crossentropy for class indices into a softmax of several units,
 * binary crossentropy for one unit, else categorical crossentropy; RMSprop, Keras's compile
 * default), learning_rate (0: the optimizer's default), metric accuracy. 0 or CLI_FAIL/USAGE. */
int cli_compile(const char *cmd, kc_model *m, const cli_builtin *builtin, const char *loss,
                const char *optimizer, double learning_rate, const kc_dataset *labels);
int cli_loss_by_name(const char *name, kc_loss *out);
kc_optimizer *cli_optimizer_by_name(const char *name, float learning_rate);
int cli_optimizer_known(const char *name);
extern const char cli_optimizer_names[];

/* ---- data (cli/data.c) ---- */
/* Reads data SPEC (kc_data_load: mnist, mnist:test, cifar10, IDX folders, X.npy[,Y.npy],
 * .npz[:test], .csv[:LABEL], image folders); model (optional) gives image folders their size and
 * color mode. 0, or -1 with a message in err. */
int cli_read_data(const char *spec, const kc_model *model, kc_dataset *out, char *err,
                  size_t errlen);
/* cli_read_data, then with model (compiled) makes it fit the model: cli_data_fit_model */
int cli_load_data(const char *spec, const kc_model *model, kc_dataset *out, char *err,
                  size_t errlen);
/* x reshaped to the model's input shape, uint8 scaled by 1/255, class-index labels one-hot
 * (kc_to_categorical) unless the loss is sparse; 0, or -1 with a message in err */
int cli_data_fit_model(const kc_model *model, kc_dataset *ds, char *err, size_t errlen);
/* 1 when the model's first layer is a Rescaling or a Normalization: it takes pixels as they
 * are (0..255), so bytes are not scaled by 1/255 for it */
int cli_model_scales_inputs(const kc_model *model);
/* keeps the first n samples (n <= 0: all) */
void cli_data_limit(kc_dataset *ds, long n);

/* subcommands */
int cmd_summary(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_confusion(int argc, char **argv);
int cmd_show(int argc, char **argv);
#endif
