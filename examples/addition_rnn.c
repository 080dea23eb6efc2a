/* addition_rnn.c: keras.io's "Sequence to sequence learning for performing number addition"
 * (examples/nlp/addition_rnn.py, Keras 2's examples/addition_rnn.py), in C. A model learns to
 * add two numbers given as a string, "535+61" -> "596":
 *
 *   TRAINING_SIZE = 50000; DIGITS = 3; REVERSE = True; MAXLEN = DIGITS + 1 + DIGITS
 *   chars = "0123456789+ " (one-hot in sorted order: " +0123456789")
 *   questions "a+b" (a, b of 1 to DIGITS random digits; no pair twice, a+b and b+a counting
 *   as one) padded with spaces to MAXLEN and reversed; answers str(a + b) padded to DIGITS + 1
 *   shuffled, the last 10% set apart for validation
 *   model = Sequential([LSTM(128, input_shape=(MAXLEN, len(chars))), RepeatVector(DIGITS + 1),
 *                       LSTM(128, return_sequences=True), Dense(len(chars), "softmax")])
 *   model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
 *   for epoch in range(1, 30):   # 29 iterations
 *       model.fit(x_train, y_train, batch_size=32, epochs=1, validation_data=(x_val, y_val))
 *       10 random validation questions: Q question T answer ☑/☒ guess
 *
 * The loss is categorical crossentropy at every output step, averaged over samples and steps;
 * the accuracy is per character (each (sample, step) pair), as Keras on a 3-D output. The data
 * come from a small seeded generator here (numpy's draws cannot be reproduced), so the
 * questions differ from Keras's but are drawn the same way.
 * Options: --epochs N (29 iterations: Keras's range(1, 30)), --seed N, --digits N (1..4),
 * --training-size N, --batch-size N (32), --units N (128), --time-distributed (Keras 2's
 * TimeDistributed(Dense) in place of Dense on the sequence: the same model), --threads N,
 * --verbose 0|1|2, --quick (2 iterations on 5000 questions). */
#include <kerac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCHARS 12
static const char CHARS[NCHARS + 1] = " +0123456789"; /* sorted(set("0123456789+ ")) */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void print_warning(const char *message, void *user) {
    fprintf(stderr, "addition_rnn: warning: %s\n", message);
}

static int parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > hi) {
        fprintf(stderr, "addition_rnn: %s needs a whole number in [%ld, %ld]\n", opt, lo, hi);
        return 0;
    }
    *out = x;
    return 1;
}

/* splitmix64: the example's own generator for the questions and the shown samples */
static uint64_t rng_state;
static uint64_t next_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static long randint(long n) { return (long)(next_u64() % (uint64_t)n); } /* [0, n) */

/* f(): a number of 1 to digits random digits (leading zeros allowed, as Keras's int("007")) */
static long random_number(int digits) {
    long v = 0, len = 1 + randint(digits);
    for (long i = 0; i < len; i++) v = 10 * v + randint(10);
    return v;
}

static int char_index(char c) { return (int)(strchr(CHARS, c) - CHARS); }

/* one-hot rows of s (len rows) */
static void encode(const char *s, int len, float *out) {
    memset(out, 0, sizeof(float) * (size_t)len * NCHARS);
    for (int i = 0; i < len; i++) out[i * NCHARS + char_index(s[i])] = 1.0f;
}

static void decode(const float *x, int len, char *s) {
    for (int i = 0; i < len; i++) {
        int best = 0;
        for (int j = 1; j < NCHARS; j++)
            if (x[i * NCHARS + j] > x[i * NCHARS + best]) best = j;
        s[i] = CHARS[best];
    }
    s[len] = 0;
}

int main(int argc, char **argv) {
    kc_set_warning_handler(print_warning, NULL);
    long epochs = 29, seed = 1337, digits = 3, training_size = 50000, batch_size = 32;
    long units = 128, threads = 0, verbose = 1, time_distributed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help")) {
            printf("usage: addition_rnn [--epochs N (29)] [--seed N] [--digits N (3)] "
                   "[--training-size N (50000)] [--batch-size N (32)] [--units N (128)] "
                   "[--time-distributed] [--threads N] [--verbose 0|1|2] [--quick]\n");
            return 0;
        } else if (!strcmp(a, "--quick")) epochs = 2, training_size = 5000;
        else if (!strcmp(a, "--time-distributed")) time_distributed = 1;
        else if (!strcmp(a, "--epochs")) ok = parse_int(a, v, 0, 100000, &epochs), i++;
        else if (!strcmp(a, "--seed")) ok = parse_int(a, v, 0, 1L << 40, &seed), i++;
        else if (!strcmp(a, "--digits")) ok = parse_int(a, v, 1, 4, &digits), i++;
        else if (!strcmp(a, "--training-size"))
            ok = parse_int(a, v, 10, 10000000, &training_size), i++;
        else if (!strcmp(a, "--batch-size")) ok = parse_int(a, v, 1, 1 << 20, &batch_size), i++;
        else if (!strcmp(a, "--units")) ok = parse_int(a, v, 1, 4096, &units), i++;
        else if (!strcmp(a, "--threads")) ok = parse_int(a, v, 0, 1024, &threads), i++;
        else if (!strcmp(a, "--verbose")) ok = parse_int(a, v, 0, 2, &verbose), i++;
        else {
            fprintf(stderr, "addition_rnn: unknown option '%s' (--help lists them)\n", a);
            return 2;
        }
        if (!ok) return 2;
    }
    int D = (int)digits, maxlen = 2 * D + 1, outlen = D + 1;
    long top = 1;
    for (int i = 0; i < D; i++) top *= 10;
    /* distinct unordered pairs (a, b), a and b in [0, 10^D): questions there can be */
    if ((double)training_size > 0.5 * (double)top * (double)(top + 1)) {
        fprintf(stderr, "addition_rnn: only %ld distinct questions of %d digit(s)\n",
                top * (top + 1) / 2, D);
        return 2;
    }
    rng_state = (uint64_t)seed;
    kc_set_random_seed((uint64_t)seed);
    kc_set_num_threads((int)threads);

    printf("Generating data...\n");
    int64_t n = training_size;
    size_t seen_bytes = (size_t)((top * top + 7) / 8);
    uint8_t *seen = calloc(seen_bytes, 1);
    char *questions = malloc((size_t)n * (size_t)(maxlen + 1));
    char *answers = malloc((size_t)n * (size_t)(outlen + 1));
    if (!seen || !questions || !answers) {
        fprintf(stderr, "addition_rnn: out of memory\n");
        return 1;
    }
    for (int64_t q = 0; q < n;) {
        long a = random_number(D), b = random_number(D);
        long lo = a < b ? a : b, hi = a < b ? b : a; /* key = tuple(sorted((a, b))) */
        long key = lo * top + hi;
        if (seen[key / 8] & (1u << (key % 8))) continue;
        seen[key / 8] |= (uint8_t)(1u << (key % 8));
        char query[32], ans[32], *qs = questions + q * (maxlen + 1);
        int len = snprintf(query, sizeof query, "%ld+%ld", a, b);
        memset(query + len, ' ', (size_t)(maxlen - len));
        for (int i = 0; i < maxlen; i++) qs[i] = query[maxlen - 1 - i]; /* REVERSE */
        qs[maxlen] = 0;
        len = snprintf(ans, sizeof ans, "%ld", a + b);
        memset(ans + len, ' ', (size_t)(outlen - len));
        memcpy(answers + q * (outlen + 1), ans, (size_t)outlen);
        answers[q * (outlen + 1) + outlen] = 0;
        q++;
    }
    free(seen);
    printf("Total questions: %lld\n", (long long)n);

    printf("Vectorization...\n");
    int64_t xs = (int64_t)maxlen * NCHARS, ys = (int64_t)outlen * NCHARS;
    float *x = malloc(sizeof(float) * (size_t)(n * xs));
    float *y = malloc(sizeof(float) * (size_t)(n * ys));
    int64_t *order = malloc(sizeof(int64_t) * (size_t)n);
    if (!x || !y || !order) {
        fprintf(stderr, "addition_rnn: out of memory\n");
        return 1;
    }
    /* shuffle (x, y) in unison: the later questions are the larger ones */
    for (int64_t i = 0; i < n; i++) order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)randint((long)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int64_t i = 0; i < n; i++) {
        encode(questions + order[i] * (maxlen + 1), maxlen, x + i * xs);
        encode(answers + order[i] * (outlen + 1), outlen, y + i * ys);
    }
    free(order);
    free(questions);
    free(answers);
    /* the last 10% for validation, never trained on */
    int64_t split_at = n - n / 10;
    kc_dataset train = {.count = split_at, .x_shape = kc_shape2(maxlen, NCHARS),
                        .x_dtype = KC_FLOAT32, .x = x, .y_shape = kc_shape2(outlen, NCHARS),
                        .y_dtype = KC_FLOAT32, .y = y};
    kc_dataset val = train;
    val.count = n - split_at;
    val.x = x + split_at * xs;
    val.y = y + split_at * ys;
    printf("Training Data:\n(%lld, %d, %d)\n(%lld, %d, %d)\n", (long long)train.count, maxlen,
           NCHARS, (long long)train.count, outlen, NCHARS);
    printf("Validation Data:\n(%lld, %d, %d)\n(%lld, %d, %d)\n", (long long)val.count, maxlen,
           NCHARS, (long long)val.count, outlen, NCHARS);

    printf("Build model...\n");
    kc_model *model = kc_sequential(kc_shape2(maxlen, NCHARS));
    kc_status st = model ? KC_OK : KC_ENOMEM;
    /* "encode" the question into 128 values, repeat them DIGITS + 1 times as the decoder's
     * input, decode with return_sequences, then a softmax over the characters at every step */
    if (!st) st = kc_add(model, kc_lstm((int)units, NULL));
    if (!st) st = kc_add(model, kc_repeat_vector(outlen));
    if (!st) st = kc_add(model, kc_lstm((int)units, &(kc_rnn_opts){.return_sequences = 1}));
    if (!st)
        st = kc_add(model, time_distributed ? kc_time_distributed(kc_dense(NCHARS, KC_SOFTMAX))
                                            : kc_dense(NCHARS, KC_SOFTMAX));
    if (!st)
        st = kc_compile(model, KC_CATEGORICAL_CROSSENTROPY, kc_adam(NULL), KC_METRIC_ACCURACY);
    if (!st) st = kc_summary(model, stdout);
    if (st) {
        fprintf(stderr, "addition_rnn: %s\n", kc_last_error());
        return 1;
    }

    double t0 = now(), best = 0.0;
    int status = 0;
    float pred[10 * 5 * NCHARS], rows[10 * 9 * NCHARS];
    for (long it = 1; it <= epochs && !status; it++) {
        printf("\nIteration %ld\n", it);
        fflush(stdout);
        kc_history *h = NULL;
        if (kc_fit(model, &train,
                   &(kc_fit_opts){.batch_size = (int)batch_size, .epochs = 1,
                                  .verbose = verbose ? (int)verbose : -1, .validation = &val},
                   &h)) {
            fprintf(stderr, "addition_rnn: %s\n", kc_last_error());
            status = 1;
            break;
        }
        const double *va = kc_history_get(h, "val_accuracy");
        if (va && va[0] > best) best = va[0];
        kc_history_free(h);
        /* 10 validation questions at random, to see the errors */
        long pick[10];
        for (int i = 0; i < 10; i++) {
            pick[i] = randint((long)val.count);
            memcpy(rows + i * xs, (const float *)val.x + pick[i] * xs, sizeof(float) * (size_t)xs);
        }
        if (kc_predict(model, rows, 10, pred)) {
            fprintf(stderr, "addition_rnn: %s\n", kc_last_error());
            status = 1;
            break;
        }
        for (int i = 0; i < 10; i++) {
            char q[16], qr[16], correct[8], guess[8];
            decode(rows + i * xs, maxlen, q);
            for (int k = 0; k < maxlen; k++) qr[k] = q[maxlen - 1 - k];
            qr[maxlen] = 0;
            decode((const float *)val.y + pick[i] * ys, outlen, correct);
            decode(pred + i * ys, outlen, guess);
            printf("Q %s T %s %s %s\n", qr, correct, strcmp(correct, guess) ? "☒" : "☑", guess);
        }
    }
    double seconds = now() - t0;
    kc_metrics score;
    if (!status) {
        if (kc_evaluate(model, &val, &(kc_evaluate_opts){.batch_size = (int)batch_size},
                        &score)) {
            fprintf(stderr, "addition_rnn: %s\n", kc_last_error());
            status = 1;
        } else {
            printf("\nTraining: %ld iterations in %.1f s (%.1f s each)\n", epochs, seconds,
                   epochs ? seconds / (double)epochs : 0.0);
            printf("Best validation accuracy: %.6f\n", best);
            printf("Validation loss: %.6f\nValidation accuracy: %.6f\n", score.loss,
                   score.accuracy);
        }
    }
    kc_model_free(model);
    free(x);
    free(y);
    return status;
}
