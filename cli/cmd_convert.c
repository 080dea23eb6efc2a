/* cmd_convert.c: kerac convert IN OUT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static const char help[] =
    "usage: kerac convert IN OUT\n"
    "Converts a model between formats, chosen by the extensions:\n"
    "  .keras       Keras 3's file: architecture, weights, compile settings, optimizer state\n"
    "  .h5, .hdf5   the legacy full-model HDF5 file\n"
    "  .weights.h5  weights only, Keras 3's layout (model.save_weights); OUT only\n"
    "  .json        the architecture only, as model.to_json()\n"
    "IN may also be a built-in name (mlp0, mlp1, mlp2, cnn, convnet). Nothing is written\n"
    "when the conversion fails.\n";

/* text into path through a temporary file in the same directory, renamed over path */
static int write_atomic(const char *cmd, const char *path, const char *text) {
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp) return cli_fail(cmd, "out of memory");
    snprintf(tmp, n + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return cli_fail(cmd, "cannot write '%s': %s", path, strerror(e));
    }
    FILE *f = fdopen(fd, "w");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0 &&
             fsync(fileno(f)) == 0;
    int e = errno;
    if (f) ok = (fclose(f) == 0) && ok;
    else close(fd);
    if (ok && rename(tmp, path) != 0) ok = 0, e = errno;
    if (!ok) {
        unlink(tmp);
        free(tmp);
        return cli_fail(cmd, "cannot write '%s': %s", path, strerror(e));
    }
    free(tmp);
    return 0;
}

int cmd_convert(int argc, char **argv) {
    const char *cmd = "convert", *paths[2] = {NULL, NULL};
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return fputs(help, stdout), CLI_OK;
        if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error(cmd, "unknown option '%s'", argv[i]);
        if (n == 2) return cli_usage_error(cmd, "IN and OUT only, got '%s' too", argv[i]);
        paths[n++] = argv[i];
    }
    if (n < 2) return cli_usage_error(cmd, "missing %s", n ? "OUT" : "IN and OUT");
    const char *out = paths[1];
    int json = cli_ends_with(out, ".json"), weights = cli_ends_with(out, ".weights.h5");
    if (!json && !weights && !cli_ends_with(out, ".keras") && !cli_ends_with(out, ".h5") &&
        !cli_ends_with(out, ".hdf5"))
        return cli_usage_error(cmd, "OUT '%s': the extension must be .keras, .h5, .hdf5, "
                                    ".weights.h5 or .json", out);
    kc_model *m;
    if (cli_load_model(cmd, paths[0], &m, NULL)) return CLI_FAIL;
    int rc = CLI_OK;
    if (json) {
        char *text = NULL;
        if (kc_model_to_json(m, &text) != KC_OK) rc = cli_kc_fail(cmd);
        else rc = write_atomic(cmd, out, text);
        free(text);
    } else if ((weights ? kc_save_weights(m, out) : kc_save(m, out)) != KC_OK) {
        rc = cli_kc_fail(cmd);
    }
    kc_model_free(m);
    return rc;
}
