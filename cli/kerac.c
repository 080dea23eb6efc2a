/* kerac.c: the kerac program: `kerac COMMAND [options]`, one subcommand per cli/cmd_*.c.
 * Exit codes: 0 success, 1 failure, 2 usage error, 130 training stopped by Ctrl-C. */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "plot.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *what;
} commands[] = {
    {"summary", cmd_summary, "print a model's summary (as Keras's model.summary())"},
    {"train", cmd_train, "train a model on data (as Keras's model.fit())"},
    {"evaluate", cmd_evaluate, "evaluate a model on data (as Keras's model.evaluate())"},
    {"predict", cmd_predict, "predict classes of inputs (.npy, .csv)"},
    {"convert", cmd_convert, "convert a model between .keras, .h5, .weights.h5 and .json"},
    {"plot", cmd_plot, "draw learning curves from a CSVLogger file into a PNG"},
    {"confusion", cmd_confusion, "draw a model's confusion matrix on data into a PNG"},
    {"show", cmd_show, "draw a grid of samples (and a model's predictions) into a PNG"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: kerac COMMAND [options]   (kerac COMMAND --help for its options)\n\n"
                 "Keras in C from the command line. Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].what);
    fprintf(out, "\nMODEL is a model.to_json() file (.json), a .keras or .h5 file, or a built-in "
                 "name.\n%s\nExit status: 0 success, 1 failure, 2 usage error, 130 training "
                 "stopped by Ctrl-C.\n",
            cli_builtin_help);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (cli_is_help(argv[1]) || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            cli_set_warnings(commands[i].name);
            int rc = commands[i].run(argc - 1, argv + 1);
            kp_plot_cleanup(); /* the font caches: nothing left for a leak checker */
            return rc;
        }
    fprintf(stderr, "kerac: unknown command '%s'\nTry 'kerac --help'.\n", argv[1]);
    return CLI_USAGE;
}
