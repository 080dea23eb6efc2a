/* dist_fit.c: the distributed-training test's program (tests/test_mpi.sh). Trains the MNIST
 * MLP or convnet (examples/mnist_models.h) on the first --samples images and writes the final
 * weights as raw float32 (rank 0), so that runs under `mpirun -np N` can be compared with one
 * process byte for byte (cmp). Options:
 *   --model mlp|cnn|cnn-classic|mlp-bn|cnn-bn|mlp-syncbn|cnn-syncbn  --samples N  --epochs N
 *   --batch N  --seed N  --threads N  (*-bn: small networks with BatchNormalization, below;
 *                        *-syncbn: the same with synchronized=True)
 *   --out PATH           the weights, raw (rank 0)
 *   --distributed        kc_distributed_init (else one process in the plain order)
 *   --group-rows G       without --distributed: one process in the grouped order (no MPI)
 *   --seed-rank R:S      rank R takes seed S instead (the mismatch test)
 *   --model-rank R:NAME  rank R builds model NAME instead (the mismatch test)
 *   --die R:K            rank R kills itself (SIGKILL) after step K (the fault test)
 *   --validation         validate on the next --samples images each epoch (sharded)
 *   --pred PATH          after training, kc_predict on the next --samples images (sharded
 *                        across ranks), the outputs written raw (rank 0)
 *   --save PATH          after training, kc_save (a .keras: weights, optimizer state and
 *                        kerac's resume state) on rank 0 only
 *   --save-each-rank P   after training every rank calls kc_save(P-rank<r>.keras) and
 *                        kc_save_weights(P-rank<r>.weights.h5): rank 0 alone writes
 *   --load PATH          start from a saved model (kc_load, compiled with its optimizer
 *                        state) instead of building one; --model still names the data's shape
 *   --initial-epoch N    kc_fit's initial_epoch (resuming: --epochs is the last epoch's index)
 *   --stats PATH         after training, every BatchNormalization's moving_mean and
 *                        moving_variance as text (rank 0), and on stdout a line "eval loss L
 *                        accuracy A" from kc_evaluate on the next --samples images */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kerac.h"
#include "../../examples/mnist_models.h"

/* an MLP and a small convnet with BatchNormalization (between the layer and its activation) */
static kc_model *bn_build(int cnn, int sync) {
    kc_model *m = kc_sequential(cnn ? kc_shape3(28, 28, 1) : kc_shape1(784));
    if (!m) return NULL;
    if (cnn) {
        kc_add(m, kc_conv2d(8, 3, KC_LINEAR));
        kc_add(m, kc_batch_normalization(&(kc_batchnorm_opts){.synchronized = sync}));
        kc_add(m, kc_activation(KC_RELU));
        kc_add(m, kc_max_pooling2d(2));
        kc_add(m, kc_flatten());
    } else {
        kc_add(m, kc_dense(64, KC_LINEAR));
        kc_add(m, kc_batch_normalization(
                      &(kc_batchnorm_opts){.momentum = 0.9f, .synchronized = sync}));
        kc_add(m, kc_activation(KC_RELU));
        kc_add(m, kc_dropout(0.2f));
    }
    kc_add(m, kc_dense(10, KC_SOFTMAX));
    return m;
}

static int die_rank = -1, die_step = -1, steps_seen;

static kc_status maybe_die(kc_callback *cb, kc_model *m, const kc_logs *logs) {
    if (kc_distributed_rank() == die_rank && ++steps_seen == die_step) {
        fprintf(stderr, "dist_fit: rank %d kills itself after step %d\n", die_rank, die_step);
        fflush(stderr);
        raise(SIGKILL);
    }
    return KC_OK;
}

/* the BatchNormalization layers' moving statistics (rank 0), and kc_evaluate (every rank: it
 * is sharded) on the validation images, so that the test can see that they moved and are used */
static kc_status write_stats(kc_model *m, const char *path, const kc_dataset *val, int rank) {
    int64_t n = kc_count_params(m), at = 0;
    float *w = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!w || kc_get_weights(m, w, n) != KC_OK) {
        free(w);
        return KC_ENOMEM;
    }
    FILE *f = rank == 0 ? fopen(path, "w") : NULL;
    if (rank == 0 && !f) {
        fprintf(stderr, "dist_fit: cannot write %s\n", path);
        free(w);
        return KC_EIO;
    }
    for (int i = 0; i < kc_layer_count(m); i++) {
        int64_t pc = kc_layer_param_count(m, i), c = pc / 4;
        if (f && !strcmp(kc_layer_class(m, i), "BatchNormalization"))
            for (int64_t k = 0; k < c; k++)
                fprintf(f, "%s %lld mean %.9g var %.9g\n", kc_layer_name(m, i), (long long)k,
                        w[at + 2 * c + k], w[at + 3 * c + k]);
        at += pc;
    }
    free(w);
    if (f && fclose(f)) return KC_EIO;
    kc_metrics r;
    kc_status st = kc_evaluate(m, val, &(kc_evaluate_opts){.batch_size = 128}, &r);
    if (!st && rank == 0) printf("eval loss %.17g accuracy %.17g\n", r.loss, r.accuracy);
    return st;
}

int main(int argc, char **argv) {
    const char *model_name = "mlp", *out = NULL, *pred = NULL, *save = NULL, *load = NULL, *save_each = NULL,
               *stats = NULL;
    long samples = 1000, epochs = 2, batch = 128, seed = 1337, threads = 1, group_rows = 0,
         initial_epoch = 0;
    int distributed = 0, validation = 0, seed_rank = -1, model_rank = -1;
    static char other_model[32];
    long seed_other = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--model")) model_name = v, i++;
        else if (!strcmp(a, "--samples")) samples = atol(v), i++;
        else if (!strcmp(a, "--epochs")) epochs = atol(v), i++;
        else if (!strcmp(a, "--batch")) batch = atol(v), i++;
        else if (!strcmp(a, "--seed")) seed = atol(v), i++;
        else if (!strcmp(a, "--threads")) threads = atol(v), i++;
        else if (!strcmp(a, "--group-rows")) group_rows = atol(v), i++;
        else if (!strcmp(a, "--out")) out = v, i++;
        else if (!strcmp(a, "--pred")) pred = v, i++;
        else if (!strcmp(a, "--save")) save = v, i++;
        else if (!strcmp(a, "--save-each-rank")) save_each = v, i++;
        else if (!strcmp(a, "--load")) load = v, i++;
        else if (!strcmp(a, "--stats")) stats = v, i++;
        else if (!strcmp(a, "--initial-epoch")) initial_epoch = atol(v), i++;
        else if (!strcmp(a, "--distributed")) distributed = 1;
        else if (!strcmp(a, "--validation")) validation = 1;
        else if (!strcmp(a, "--seed-rank") && sscanf(v, "%d:%ld", &seed_rank, &seed_other) == 2) i++;
        else if (!strcmp(a, "--model-rank") && sscanf(v, "%d:%31s", &model_rank, other_model) == 2) i++;
        else if (!strcmp(a, "--die") && sscanf(v, "%d:%d", &die_rank, &die_step) == 2) i++;
        else {
            fprintf(stderr, "dist_fit: bad option '%s'\n", a);
            return 2;
        }
    }
    if (distributed && kc_distributed_init(&argc, &argv) != KC_OK) {
        fprintf(stderr, "dist_fit: %s\n", kc_last_error());
        return 1;
    }
    if (group_rows && kc_distributed_set_group_rows((int)group_rows) != KC_OK) {
        fprintf(stderr, "dist_fit: %s\n", kc_last_error());
        return 1;
    }
    int rank = kc_distributed_rank();
    if (rank == model_rank) model_name = other_model;
    kc_set_random_seed((uint64_t)(rank == seed_rank ? seed_other : seed));
    kc_set_num_threads((int)threads);
    kc_dataset train, test;
    if (kc_mnist_load(NULL, &train, &test) != KC_OK) {
        fprintf(stderr, "dist_fit: %s\n", kc_last_error());
        return 1;
    }
    int cnn = strncmp(model_name, "cnn", 3) == 0, classic = !strcmp(model_name, "cnn-classic");
    int sync = strstr(model_name, "-syncbn") != NULL, bn = sync || strstr(model_name, "-bn");
    kc_model *m = NULL;
    kc_dataset val = train; /* the next samples, a view */
    int status = 1;
    if (load) { /* the saved model, compiled, with its optimizer and resume state */
        if (kc_load(load, &m) != KC_OK) goto done;
    } else {
        m = bn ? bn_build(cnn, sync) : cnn ? mnist_cnn_build(classic) : mnist_mlp_build(2);
        kc_optimizer *opt = bn ? kc_adam(&(kc_adam_opts){0})
                               : cnn ? mnist_cnn_optimizer(classic) : mnist_mlp_optimizer();
        if (!m || kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, opt, KC_METRIC_ACCURACY) != KC_OK)
            goto done;
    }
    if (kc_dataset_reshape(&train, cnn ? kc_shape3(28, 28, 1) : kc_shape1(784)) ||
        kc_dataset_scale(&train, 1.0f / 255) || kc_to_categorical(&train, 10))
        goto done;
    val = train;
    val.owned_x = val.owned_y = NULL;
    val.x = (uint8_t *)train.x + (size_t)samples * 784;
    val.y = (float *)train.y + (size_t)samples * 10;
    val.count = samples;
    train.count = samples;
    kc_callback die = {.on_batch_end = maybe_die};
    kc_callback *cbs[] = {&die};
    kc_history *h = NULL;
    if (kc_fit(m, &train,
               &(kc_fit_opts){.batch_size = (int)batch, .epochs = (int)epochs, .verbose = 2,
                              .initial_epoch = (int)initial_epoch,
                              .validation = validation ? &val : NULL,
                              .callbacks = die_rank >= 0 ? cbs : NULL,
                              .n_callbacks = die_rank >= 0 ? 1 : 0},
               &h) != KC_OK)
        goto done;
    if (rank == 0 && h)
        for (int e = 0; e < h->epochs; e++)
            printf("epoch %d loss %.17g accuracy %.17g val_loss %.17g val_accuracy %.17g\n",
                   (int)initial_epoch + e + 1,
                   h->loss[e], h->accuracy[e], h->val_loss[e], h->val_accuracy[e]);
    if (rank == 0 && h) /* the training part of each epoch (bench/dist.sh) */
        for (int e = 0; e < h->epochs; e++) fprintf(stderr, "seconds %.4f\n", h->seconds[e]);
    kc_history_free(h);
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n);
    if (!w || kc_get_weights(m, w, n) != KC_OK) goto done;
    if (rank == 0 && out) {
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(w, sizeof(float), (size_t)n, f) != (size_t)n || fclose(f)) {
            fprintf(stderr, "dist_fit: cannot write %s\n", out);
            free(w);
            goto done;
        }
    }
    free(w);
    if (save && rank == 0 && kc_save(m, save) != KC_OK) goto done;
    if (save_each) { /* every rank saves to its own name: kc_save writes on rank 0 only */
        char path[1024];
        snprintf(path, sizeof path, "%s-rank%d.keras", save_each, rank);
        if (kc_save(m, path) != KC_OK) goto done;
        snprintf(path, sizeof path, "%s-rank%d.weights.h5", save_each, rank);
        if (kc_save_weights(m, path) != KC_OK) goto done;
    }
    if (stats && write_stats(m, stats, &val, rank) != KC_OK) goto done;
    if (pred) {
        float *xf = malloc(sizeof(float) * (size_t)samples * 784);
        float *p = malloc(sizeof(float) * (size_t)samples * 10);
        if (!xf || !p) goto done;
        for (int64_t i = 0; i < samples * 784; i++) xf[i] = ((uint8_t *)val.x)[i] / 255.0f;
        kc_status ps = kc_predict(m, xf, samples, p);
        FILE *f = ps || rank ? NULL : fopen(pred, "wb");
        if (f) {
            fwrite(p, sizeof(float), (size_t)samples * 10, f);
            fclose(f);
        }
        free(xf);
        free(p);
        if (ps) goto done;
    }
    status = 0;
done:
    if (status) fprintf(stderr, "dist_fit (rank %d): %s\n", rank, kc_last_error());
    kc_model_free(m);
    kc_dataset_free(&train);
    kc_dataset_free(&test);
    if (distributed) kc_distributed_finalize();
    return status;
}
