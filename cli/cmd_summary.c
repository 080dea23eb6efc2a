/* cmd_summary.c: kerac summary MODEL */
#include <stdio.h>
#include <string.h>

#include "common.h"

static const char help[] =
    "usage: kerac summary MODEL\n"
    "Prints the model's summary as Keras's model.summary() does. MODEL: a model.to_json()\n"
    "file (.json), a .keras or .h5 file, or a built-in name (mlp0, mlp1, mlp2, cnn, convnet).\n";

int cmd_summary(int argc, char **argv) {
    const char *cmd = "summary", *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return fputs(help, stdout), CLI_OK;
        if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error(cmd, "unknown option '%s'", argv[i]);
        if (path) return cli_usage_error(cmd, "one MODEL only, got '%s' too", argv[i]);
        path = argv[i];
    }
    if (!path) return cli_usage_error(cmd, "missing MODEL");
    kc_model *m;
    if (cli_load_model(cmd, path, &m, NULL)) return CLI_FAIL;
    int rc = kc_summary(m, stdout) == KC_OK ? CLI_OK : cli_kc_fail(cmd);
    kc_model_free(m);
    return rc;
}
