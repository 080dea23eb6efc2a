/* common.c: option parsing, messages, models by file or name, losses and optimizers by name */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mnist_models.h"

static int vmsg(int code, const char *cmd, const char *fmt, va_list ap) {
    fprintf(stderr, "kerac %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    return code;
}

int cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int r = vmsg(CLI_FAIL, cmd, fmt, ap);
    va_end(ap);
    return r;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int r = vmsg(CLI_USAGE, cmd, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'kerac %s --help'.\n", cmd);
    return r;
}

int cli_kc_fail(const char *cmd) { return cli_fail(cmd, "%s", kc_last_error()); }

static void print_warning(const char *message, void *user) {
    fprintf(stderr, "kerac %s: warning: %s\n", (const char *)user, message);
}

void cli_set_warnings(const char *cmd) { kc_set_warning_handler(print_warning, (void *)cmd); }

const char *cli_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "option '%s' needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_long(const char *cmd, const char *opt, const char *text, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || end == text || v < lo || v > hi)
        return cli_usage_error(cmd, "%s needs a whole number in [%ld, %ld], got '%s'", opt, lo,
                               hi, text);
    *out = v;
    return 0;
}

int cli_float(const char *cmd, const char *opt, const char *text, double lo, double hi,
              double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || *end || end == text || !isfinite(v) || v < lo || v > hi)
        return cli_usage_error(cmd, "%s needs a number in [%g, %g], got '%s'", opt, lo, hi, text);
    *out = v;
    return 0;
}

int cli_is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h"); }

int cli_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static const cli_builtin builtins[] = {
    {"mlp0", "784 -> Dense(10, softmax); RMSprop", 20, 128, 1},
    {"mlp1", "784 -> Dense(512, relu), Dropout(0.2), Dense(10, softmax); RMSprop", 20, 128, 1},
    {"mlp2", "784 -> 2 x [Dense(512, relu), Dropout(0.2)], Dense(10, softmax); RMSprop", 20,
     128, 1},
    {"cnn", "Keras 2's mnist_cnn.py convnet; Adadelta(1.0)", 12, 128, 1},
    {"convnet", "keras.io's simple MNIST convnet; Adam", 15, 128, 2},
};

const char cli_builtin_help[] =
    "built-in models (MNIST networks of examples/mnist_mlp.c and examples/mnist_cnn.c):\n"
    "  mlp0, mlp1, mlp2  0, 1 or 2 hidden Dense(512, relu) + Dropout(0.2), softmax;\n"
    "                    RMSprop, 20 epochs, batch 128, the test set as validation data\n"
    "  cnn               Keras 2's mnist_cnn.py: Adadelta(1.0), 12 epochs, batch 128,\n"
    "                    the test set as validation data\n"
    "  convnet           keras.io's simple MNIST convnet: Adam, 15 epochs, batch 128,\n"
    "                    validation_split 0.1\n";

const cli_builtin *cli_find_builtin(const char *name) {
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
        if (!strcmp(builtins[i].name, name)) return &builtins[i];
    return NULL;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[65536];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!buf && !(buf = malloc(1))) return NULL;
    buf[len] = 0;
    return buf;
}

int cli_load_model(const char *cmd, const char *spec, kc_model **out,
                   const cli_builtin **builtin) {
    const cli_builtin *b = cli_find_builtin(spec);
    if (builtin) *builtin = b;
    *out = NULL;
    if (b) {
        if (!strncmp(b->name, "mlp", 3)) *out = mnist_mlp_build(b->name[3] - '0');
        else *out = mnist_cnn_build(!strcmp(b->name, "cnn"));
        if (!*out) return cli_kc_fail(cmd);
        return 0;
    }
    FILE *probe = fopen(spec, "rb");
    if (!probe)
        return cli_fail(cmd, "cannot open model '%s': %s (a .json, .keras or .h5 file, or a "
                             "built-in: mlp0, mlp1, mlp2, cnn, convnet)",
                        spec, strerror(errno));
    fclose(probe);
    if (cli_ends_with(spec, ".weights.h5"))
        return cli_fail(cmd, "'%s' holds weights only, not a model: give a .json, .keras or "
                             ".h5 model file", spec);
    if (cli_ends_with(spec, ".json")) {
        char *text = read_text(spec);
        if (!text) return cli_fail(cmd, "cannot read '%s': %s", spec, strerror(errno));
        kc_status st = kc_model_from_json(text, out);
        free(text);
        if (st != KC_OK) return cli_fail(cmd, "%s: %s", spec, kc_last_error());
        return 0;
    }
    if (kc_load(spec, out) != KC_OK) return cli_fail(cmd, "%s", kc_last_error());
    return 0;
}

int cli_model_compiled(const kc_model *m) {
    return kc_model_loss_spec(m, 0).kind != KC_LOSS_NONE;
}

int cli_loss_by_name(const char *name, kc_loss *out) {
    static const struct {
        const char *alias;
        kc_loss loss;
    } aliases[] = {{"mse", KC_MEAN_SQUARED_ERROR}, {"mae", KC_MEAN_ABSOLUTE_ERROR},
                   {"bce", KC_BINARY_CROSSENTROPY}, {"kld", KC_KL_DIVERGENCE},
                   {"mape", KC_MEAN_ABSOLUTE_PERCENTAGE_ERROR},
                   {"msle", KC_MEAN_SQUARED_LOGARITHMIC_ERROR}};
    for (int l = 1; l < KC_LOSS_COUNT; l++)
        if (!strcmp(kc_loss_name((kc_loss)l), name)) return *out = (kc_loss)l, 1;
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (!strcmp(aliases[i].alias, name)) return *out = aliases[i].loss, 1;
    return 0;
}

const char cli_optimizer_names[] =
    "sgd, rmsprop, adam, adadelta, adagrad, nadam, adamw, adamax, ftrl, lion, lamb";

int cli_optimizer_known(const char *name) {
    size_t n = strlen(name);
    const char *p = cli_optimizer_names;
    while ((p = strstr(p, name)))
        if ((p == cli_optimizer_names || p[-1] == ' ') && (p[n] == ',' || !p[n])) return 1;
        else p++;
    return 0;
}

kc_optimizer *cli_optimizer_by_name(const char *name, float lr) {
    if (!strcmp(name, "sgd")) return kc_sgd(&(kc_sgd_opts){.learning_rate = lr});
    if (!strcmp(name, "rmsprop")) return kc_rmsprop(&(kc_rmsprop_opts){.learning_rate = lr});
    if (!strcmp(name, "adam")) return kc_adam(&(kc_adam_opts){.learning_rate = lr});
    if (!strcmp(name, "adadelta")) return kc_adadelta(&(kc_adadelta_opts){.learning_rate = lr});
    if (!strcmp(name, "adagrad")) return kc_adagrad(&(kc_adagrad_opts){.learning_rate = lr});
    if (!strcmp(name, "nadam")) return kc_nadam(&(kc_nadam_opts){.learning_rate = lr});
    if (!strcmp(name, "adamw")) return kc_adamw(&(kc_adamw_opts){.learning_rate = lr});
    if (!strcmp(name, "adamax")) return kc_adamax(&(kc_adamax_opts){.learning_rate = lr});
    if (!strcmp(name, "ftrl")) return kc_ftrl(&(kc_ftrl_opts){.learning_rate = lr});
    if (!strcmp(name, "lion")) return kc_lion(&(kc_lion_opts){.learning_rate = lr});
    if (!strcmp(name, "lamb")) return kc_lamb(&(kc_lamb_opts){.learning_rate = lr});
    return NULL;
}

int cli_compile(const char *cmd, kc_model *m, const cli_builtin *builtin, const char *loss_name,
                const char *opt_name, double learning_rate, const kc_dataset *labels) {
    kc_loss loss;
    kc_optimizer *opt;
    if (loss_name) {
        if (!cli_loss_by_name(loss_name, &loss))
            return cli_usage_error(cmd, "--loss: unknown loss '%s'", loss_name);
    } else if (builtin) {
        loss = KC_CATEGORICAL_CROSSENTROPY;
    } else {
        /* what a Keras user compiles for the labels at hand */
        kc_shape out = kc_output_shape(m);
        int units = out.rank ? out.dims[out.rank - 1] : 1;
        int indices = !labels || labels->y_shape.rank == 0;
        loss = units == 1            ? KC_BINARY_CROSSENTROPY
               : indices             ? KC_SPARSE_CATEGORICAL_CROSSENTROPY
                                     : KC_CATEGORICAL_CROSSENTROPY;
    }
    if (opt_name) {
        if (!cli_optimizer_known(opt_name))
            return cli_usage_error(cmd, "--optimizer: unknown optimizer '%s' (%s)", opt_name,
                                   cli_optimizer_names);
        opt = cli_optimizer_by_name(opt_name, (float)learning_rate);
    } else if (builtin) {
        opt = !strncmp(builtin->name, "mlp", 3) ? mnist_mlp_optimizer()
                                               : mnist_cnn_optimizer(!strcmp(builtin->name, "cnn"));
        if (opt && learning_rate > 0) kc_optimizer_set_learning_rate(opt, (float)learning_rate);
    } else {
        opt = cli_optimizer_by_name("rmsprop", (float)learning_rate);
    }
    if (!opt) return cli_kc_fail(cmd);
    if (kc_compile(m, loss, opt, KC_METRIC_ACCURACY) != KC_OK) return cli_kc_fail(cmd);
    return 0;
}
