/* cmd_train.c: kerac train MODEL --data SPEC ... and kerac evaluate MODEL --data SPEC */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "plot.h"

static const char train_help[] =
    "usage: kerac train MODEL --data SPEC [options]\n"
    "Trains MODEL (as Keras's model.fit()) and saves it with --save.\n"
    "MODEL: a model.to_json() file (.json; compiled with --loss and --optimizer, by default\n"
    "  sparse categorical crossentropy for class-index labels into several units, binary\n"
    "  crossentropy into one unit, RMSprop: Keras's compile default), a .keras or .h5 file\n"
    "  (training goes on from its compile settings, optimizer state and epoch; --loss,\n"
    "  --optimizer or --learning-rate change them), or a built-in name (below).\n"
    "Data: x is reshaped to the model's input shape and scaled by 1/255 when it is bytes; y is\n"
    "  one-hot (to_categorical) unless the loss is sparse.\n"
    "  --data SPEC            training data: mnist, mnist:test, cifar10, cifar10:test, a\n"
    "                         folder of IDX files (DIR, DIR:test), x.npy, x.npy,y.npy,\n"
    "                         d.npz, d.npz:test, data.csv, data.csv:LABEL_COLUMN, or a\n"
    "                         folder with a subfolder of images per class (read at the\n"
    "                         model's input size, grayscale or RGB as it takes)\n"
    "  --validation-data SPEC validation data (built-ins mlp*, cnn default to mnist:test\n"
    "                         when --data is MNIST's training set, as the examples)\n"
    "  --validation-split F   the last fraction F of the training data, as Keras\n"
    "  --no-validation        no validation data, not even a built-in's default\n"
    "  --limit N              use the first N samples of each data set only\n"
    "  --epochs N             epochs to run (default 1; a built-in's own: 20, 12, 15)\n"
    "  --batch-size N         (default 32; built-ins 128)\n"
    "  --optimizer NAME       sgd, rmsprop, adam, adadelta, adagrad, nadam, adamw, adamax,\n"
    "                         ftrl, lion, lamb\n"
    "  --learning-rate F      the optimizer's learning rate\n"
    "  --loss NAME            a Keras loss name: categorical_crossentropy, mse, ...\n"
    "  --seed N               random seed: weights, shuffling, dropout (default 1337)\n"
    "  --threads N            threads (default $KERAC_NUM_THREADS or all cores)\n"
    "  --verbose 0|1|2        0 silent, 1 progress bar, 2 a line per epoch (default 1)\n"
    "  --save OUT             save the model at the end (.keras, .h5, .weights.h5), also\n"
    "                         after Ctrl-C\n"
    "  --checkpoint PATTERN   ModelCheckpoint(PATTERN) each epoch: {epoch:02d}, {val_loss:.4f}\n"
    "  --early-stopping P     EarlyStopping(patience=P) on val_loss (loss without validation)\n"
    "  --csv-log FILE         CSVLogger(FILE)\n"
    "  --plot FILE.png        plot the training history into FILE.png\n"
    "  --distributed          data-parallel training under mpirun (mpirun -np 4 kerac train\n"
    "                         ... --distributed): the same weights, bit for bit, for any\n"
    "                         number of ranks; rank 0 prints, saves, checkpoints and plots\n"
    "Ctrl-C finishes the current step, stops, saves to --save and exits with status 130.\n";

static const char evaluate_help[] =
    "usage: kerac evaluate MODEL --data SPEC [--batch-size N] [--limit N] [--loss NAME]\n"
    "Evaluates MODEL (as Keras's model.evaluate()) on SPEC (as train's --data: mnist:test, a\n"
    ".npz, a .csv, a folder of images per class, ...) and\n"
    "prints the loss and every metric. A model without compile settings (.json, a built-in) is\n"
    "compiled with --loss or the default train uses.\n";

/* Ctrl-C: the handler only sets the flag; a callback stops training after the current step */
static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}
static kc_status stop_if_interrupted(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    (void)cb, (void)logs;
    if (interrupted) kc_stop_training(m);
    return KC_OK;
}

int cmd_train(int argc, char **argv) {
    const char *cmd = "train";
    const char *model_path = NULL, *data = NULL, *val_data = NULL, *optimizer = NULL,
               *loss = NULL, *save = NULL, *checkpoint = NULL, *csv_log = NULL, *plot = NULL;
    long epochs = -1, batch_size = -1, seed = 1337, threads = 0, verbose = 1, patience = -1,
         limit = 0;
    double lr = 0, split = -1;
    int no_val = 0, distributed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int bad = 0;
        if (cli_is_help(a)) return printf("%s%s", train_help, cli_builtin_help), CLI_OK;
        if (a[0] != '-' || !a[1]) {
            if (model_path) return cli_usage_error(cmd, "one MODEL only, got '%s' too", a);
            model_path = a;
            continue;
        }
        if (!strcmp(a, "--no-validation")) {
            no_val = 1;
            continue;
        }
        if (!strcmp(a, "--distributed")) {
            distributed = 1;
            continue;
        }
        static const char *known[] = {"--data", "--validation-data", "--validation-split",
                                      "--epochs", "--batch-size", "--optimizer",
                                      "--learning-rate", "--loss", "--seed", "--threads",
                                      "--save", "--checkpoint", "--early-stopping", "--csv-log",
                                      "--plot", "--verbose", "--limit"};
        int found = 0;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++) found |= !strcmp(a, known[k]);
        if (!found) return cli_usage_error(cmd, "unknown option '%s'", a);
        if (!(v = cli_value(cmd, argc, argv, &i))) return CLI_USAGE;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--validation-data")) val_data = v;
        else if (!strcmp(a, "--validation-split")) bad = cli_float(cmd, a, v, 0, 0.999, &split);
        else if (!strcmp(a, "--epochs")) bad = cli_long(cmd, a, v, 0, 1000000, &epochs);
        else if (!strcmp(a, "--batch-size")) bad = cli_long(cmd, a, v, 1, 1 << 24, &batch_size);
        else if (!strcmp(a, "--optimizer")) optimizer = v;
        else if (!strcmp(a, "--learning-rate")) bad = cli_float(cmd, a, v, 1e-12, 1e6, &lr);
        else if (!strcmp(a, "--loss")) loss = v;
        else if (!strcmp(a, "--seed")) bad = cli_long(cmd, a, v, 0, 0x7fffffffL, &seed);
        else if (!strcmp(a, "--threads")) bad = cli_long(cmd, a, v, 1, 1024, &threads);
        else if (!strcmp(a, "--verbose")) bad = cli_long(cmd, a, v, 0, 2, &verbose);
        else if (!strcmp(a, "--limit")) bad = cli_long(cmd, a, v, 1, 0x7fffffffL, &limit);
        else if (!strcmp(a, "--early-stopping"))
            bad = cli_long(cmd, a, v, 0, 1000000, &patience);
        else if (!strcmp(a, "--save")) save = v;
        else if (!strcmp(a, "--checkpoint")) checkpoint = v;
        else if (!strcmp(a, "--csv-log")) csv_log = v;
        else if (!strcmp(a, "--plot")) plot = v;
        if (bad) return CLI_USAGE;
    }
    if (!model_path) return cli_usage_error(cmd, "missing MODEL");
    if (!data) return cli_usage_error(cmd, "missing --data SPEC");
    if (val_data && split >= 0)
        return cli_usage_error(cmd, "--validation-data and --validation-split exclude each other");
    if (loss) {
        kc_loss l;
        if (!cli_loss_by_name(loss, &l)) return cli_usage_error(cmd, "--loss: unknown loss '%s'", loss);
    }
    if (optimizer && !cli_optimizer_known(optimizer))
        return cli_usage_error(cmd, "--optimizer: unknown optimizer '%s' (%s)", optimizer,
                               cli_optimizer_names);

    if (distributed) {
        if (kc_distributed_init(&argc, &argv) != KC_OK) {
            cli_fail(cmd, "--distributed: %s", kc_last_error());
            return CLI_FAIL;
        }
        if (kc_distributed_rank() > 0 && !freopen("/dev/null", "w", stdout)) return CLI_FAIL;
    }
    kc_set_random_seed((uint64_t)seed);
    kc_set_num_threads((int)threads);
    kc_model *m;
    const cli_builtin *builtin;
    if (cli_load_model(cmd, model_path, &m, &builtin)) {
        if (distributed) kc_distributed_finalize();
        return CLI_FAIL;
    }
    int rc = CLI_FAIL;
    char err[1024];
    kc_dataset train = {0}, val = {0};
    int have_val = 0;
    kc_callback *cbs[5];
    int ncb = 0;

    if (cli_read_data(data, m, &train, err, sizeof err)) {
        cli_fail(cmd, "--data: %s", err);
        goto done;
    }
    cli_data_limit(&train, limit);
    /* a built-in's validation as its example: the test set, or validation_split 0.1 */
    if (builtin && !no_val && !val_data && split < 0) {
        if (builtin->validation == 2) split = 0.1;
        else if (builtin->validation == 1 &&
                 (!strcmp(data, "mnist") || !strcmp(data, "mnist:train")))
            val_data = "mnist:test";
    }
    if (no_val) val_data = NULL, split = -1;
    int compiled = cli_model_compiled(m);
    if (!compiled || loss || optimizer) {
        if (cli_compile(cmd, m, builtin, loss, optimizer, lr, &train)) goto done;
    } else if (lr > 0 && kc_set_learning_rate(m, (float)lr) != KC_OK) {
        cli_kc_fail(cmd);
        goto done;
    }
    if (cli_data_fit_model(m, &train, err, sizeof err)) {
        cli_fail(cmd, "--data %s: %s", data, err);
        goto done;
    }
    if (val_data) {
        if (cli_load_data(val_data, m, &val, err, sizeof err)) {
            cli_fail(cmd, "--validation-data: %s", err);
            goto done;
        }
        cli_data_limit(&val, limit);
        have_val = 1;
    }
    printf("%lld train samples\n", (long long)train.count);
    if (have_val) printf("%lld validation samples\n", (long long)val.count);
    int first = kc_model_epoch(m);
    if (first) printf("loaded %s (epoch %d)\n", model_path, first);
    kc_summary(m, stdout);

    int validating = have_val || split > 0;
    const char *monitor = validating ? "val_loss" : "loss";
    static kc_callback stopper = {.on_batch_end = stop_if_interrupted};
    cbs[ncb++] = &stopper;
    if (checkpoint &&
        !(cbs[ncb++] = kc_model_checkpoint(checkpoint,
                                           &(kc_model_checkpoint_opts){.monitor = monitor}))) {
        ncb--;
        cli_kc_fail(cmd);
        goto done;
    }
    if (patience >= 0 &&
        !(cbs[ncb++] = kc_early_stopping(&(kc_early_stopping_opts){
              .monitor = monitor, .patience = (int)patience, .verbose = 1}))) {
        ncb--;
        cli_kc_fail(cmd);
        goto done;
    }
    if (csv_log && !(cbs[ncb++] = kc_csv_logger(csv_log, ',', 0))) {
        ncb--;
        cli_kc_fail(cmd);
        goto done;
    }
    if (epochs < 0) epochs = builtin ? builtin->epochs : 1;
    if (batch_size < 0) batch_size = builtin ? builtin->batch_size : 32;
    kc_fit_opts fit = {.batch_size = (int)batch_size,
                       .initial_epoch = first,
                       .epochs = first + (int)epochs,
                       .verbose = verbose ? (int)verbose : -1,
                       .validation = have_val ? &val : NULL,
                       .validation_split = split > 0 ? (float)split : 0,
                       .callbacks = cbs,
                       .n_callbacks = ncb};
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    kc_history *history = NULL;
    kc_status st = epochs > 0 ? kc_fit(m, &train, &fit, &history) : KC_OK;
    sigaction(SIGINT, &old, NULL);
    if (st != KC_OK) cli_kc_fail(cmd); /* and nothing is saved */
    if (interrupted) fprintf(stderr, "kerac train: interrupted, training stopped\n");
    if (save && st == KC_OK && kc_distributed_rank() == 0) {
        if (kc_save(m, save) != KC_OK) {
            cli_kc_fail(cmd);
            st = KC_EIO;
        } else {
            printf("saved %s (epoch %d)\n", save, kc_model_epoch(m));
        }
    }
    if (plot && history && history->epochs > 0 && kc_distributed_rank() == 0) {
        char perr[1024];
        if (kp_plot_history((const char *const *)history->keys,
                            (const double *const *)history->values, history->n_keys,
                            history->epochs, kc_model_epoch(m) - history->epochs, NULL, plot,
                            perr, sizeof perr)) {
            fprintf(stderr, "kerac train: --plot: %s\n", perr);
            if (st == KC_OK && !interrupted) st = KC_EIO;
        } else {
            printf("plotted %s\n", plot);
        }
    }
    kc_history_free(history);
    rc = st != KC_OK ? CLI_FAIL : interrupted ? CLI_INTERRUPTED : CLI_OK;
done:
    for (int c = 1; c < ncb; c++) kc_callback_free(cbs[c]);
    kc_dataset_free(&train);
    kc_dataset_free(&val);
    kc_model_free(m);
    if (distributed && kc_distributed_finalize() != KC_OK && rc == CLI_OK) {
        cli_kc_fail(cmd);
        rc = CLI_FAIL;
    }
    return rc;
}

int cmd_evaluate(int argc, char **argv) {
    const char *cmd = "evaluate", *model_path = NULL, *data = NULL, *loss = NULL;
    long batch_size = 32, limit = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int bad = 0;
        if (cli_is_help(a)) return fputs(evaluate_help, stdout), CLI_OK;
        if (a[0] != '-' || !a[1]) {
            if (model_path) return cli_usage_error(cmd, "one MODEL only, got '%s' too", a);
            model_path = a;
            continue;
        }
        if (strcmp(a, "--data") && strcmp(a, "--batch-size") && strcmp(a, "--limit") &&
            strcmp(a, "--loss") && strcmp(a, "--threads"))
            return cli_usage_error(cmd, "unknown option '%s'", a);
        if (!(v = cli_value(cmd, argc, argv, &i))) return CLI_USAGE;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--loss")) loss = v;
        else if (!strcmp(a, "--batch-size")) bad = cli_long(cmd, a, v, 1, 1 << 24, &batch_size);
        else if (!strcmp(a, "--threads")) bad = cli_long(cmd, a, v, 1, 1024, &threads);
        else bad = cli_long(cmd, a, v, 1, 0x7fffffffL, &limit);
        if (bad) return CLI_USAGE;
    }
    if (!model_path) return cli_usage_error(cmd, "missing MODEL");
    if (!data) return cli_usage_error(cmd, "missing --data SPEC");
    kc_loss l;
    if (loss && !cli_loss_by_name(loss, &l))
        return cli_usage_error(cmd, "--loss: unknown loss '%s'", loss);
    kc_set_num_threads((int)threads);
    kc_model *m;
    const cli_builtin *builtin;
    if (cli_load_model(cmd, model_path, &m, &builtin)) return CLI_FAIL;
    int rc = CLI_FAIL;
    char err[1024];
    kc_dataset ds = {0};
    if (cli_read_data(data, m, &ds, err, sizeof err)) {
        cli_fail(cmd, "--data: %s", err);
        goto done;
    }
    cli_data_limit(&ds, limit);
    if ((!cli_model_compiled(m) || loss) && cli_compile(cmd, m, builtin, loss, NULL, 0, &ds))
        goto done;
    if (cli_data_fit_model(m, &ds, err, sizeof err)) {
        cli_fail(cmd, "--data %s: %s", data, err);
        goto done;
    }
    kc_metrics r;
    if (kc_evaluate(m, &ds, &(kc_evaluate_opts){.batch_size = (int)batch_size, .verbose = 1},
                    &r) != KC_OK) {
        cli_kc_fail(cmd);
        goto done;
    }
    for (int k = 0; k < r.n_values; k++) printf("%s: %.6f\n", r.keys[k], r.values[k]);
    rc = CLI_OK;
done:
    kc_dataset_free(&ds);
    kc_model_free(m);
    return rc;
}
