/* test_initreg.c: Keras's initializers (the statistics of each distribution, Orthogonal's
 * orthogonality, the exact constant ones, seeds), the regularizers (penalty, gradient, finite
 * differences, the layers' gradients), their configs in every form Keras and tf.keras write,
 * and use_bias=False Dense and Conv2D (forward, gradients, files), with Keras 3's own file
 * (tests/gen_keras_initreg_files.py). */
#include "testutil.h"
#include "initializers.h"
#include "io/io.h"
#include "layers/layer.h"
#include <cjson/cJSON.h>

#define FIX "tests/fixtures/saved/"

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct {
    double mean, var, min, max;
    double beyond2; /* fraction of values beyond 2 standard deviations of the mean */
} stats;

static stats stats_of(const float *w, int64_t n) {
    stats s = {0, 0, INFINITY, -INFINITY, 0};
    for (int64_t i = 0; i < n; i++) {
        s.mean += w[i];
        s.min = fmin(s.min, w[i]);
        s.max = fmax(s.max, w[i]);
    }
    s.mean /= (double)n;
    for (int64_t i = 0; i < n; i++) s.var += (w[i] - s.mean) * (w[i] - s.mean);
    s.var /= (double)n;
    double sd = sqrt(s.var);
    for (int64_t i = 0; i < n; i++) s.beyond2 += fabs(w[i] - s.mean) > 2.0 * sd;
    s.beyond2 /= (double)n;
    return s;
}

static int64_t count_of(int rank, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    return n;
}

/* init filled into a new array of Keras shape shape[rank], from a stream seeded with seed */
static float *filled(kc_initializer init, kc_init_kind dflt, int rank, const int64_t *shape,
                     uint64_t seed) {
    float *w = malloc(sizeof(float) * (size_t)count_of(rank, shape));
    kc_rng rng;
    kc_rng_seed(&rng, seed);
    KC_CHECK(kc_init_check(&init, dflt, rank, shape, "test"));
    KC_CHECK(kc_init_fill(&init, dflt, w, rank, shape, &rng));
    return w;
}

/* n values with mean and variance within tolerance of the distribution's; all within [lo, hi] */
static void expect_distribution(const char *what, const float *w, int64_t n, double mean,
                                double var, double lo, double hi) {
    stats s = stats_of(w, n);
    double sd = sqrt(var);
    cr_expect(fabs(s.mean - mean) <= 0.02 * sd + 1e-9, "%s: mean %g, want %g (sd %g)", what,
              s.mean, mean, sd);
    cr_expect(fabs(s.var / var - 1.0) <= 0.03, "%s: variance %g, want %g", what, s.var, var);
    /* the bounds with float rounding's slack */
    cr_expect(s.min >= lo - 1e-6 * fabs(lo) && s.max <= hi + 1e-6 * fabs(hi),
              "%s: values in [%g, %g], want within [%g, %g]", what, s.min, s.max, lo, hi);
}

static const double TRUNC = 0.87962566103423978; /* sd of N(0, 1) truncated to [-2, 2] */

/* ---- the variance-scaling family ---------------------------------------------------------- */

typedef struct {
    kc_initializer init;
    int rank;
    int64_t shape[4];
    double var;   /* Keras's variance: scale / n */
    int uniform;  /* else normal */
    int truncated;
    char name[48];
} vs_case;

Test(initializers, variance_scaling_family) {
    /* Dense kernels (256, 512): fan_in 256, fan_out 512; conv kernels (3, 3, 32, 64): fan_in
     * 288, fan_out 576; a bias (4096): fan_in = fan_out = 4096 */
    const double fi = 256, fo = 512, cfi = 3 * 3 * 32, cfo = 3 * 3 * 64;
    vs_case cases[] = {
        {kc_glorot_uniform(), 2, {256, 512}, 2 / (fi + fo), 1, 0, "glorot_uniform"},
        {kc_glorot_normal(), 2, {256, 512}, 2 / (fi + fo), 0, 1, "glorot_normal"},
        {kc_he_uniform(), 2, {256, 512}, 2 / fi, 1, 0, "he_uniform"},
        {kc_he_normal(), 2, {256, 512}, 2 / fi, 0, 1, "he_normal"},
        {kc_lecun_uniform(), 2, {256, 512}, 1 / fi, 1, 0, "lecun_uniform"},
        {kc_lecun_normal(), 2, {256, 512}, 1 / fi, 0, 1, "lecun_normal"},
        {kc_he_normal(), 4, {3, 3, 32, 64}, 2 / cfi, 0, 1, "he_normal conv"},
        {kc_glorot_uniform(), 4, {3, 3, 32, 64}, 2 / (cfi + cfo), 1, 0, "glorot_uniform conv"},
        {kc_lecun_uniform(), 1, {4096}, 1 / 4096.0, 1, 0, "lecun_uniform rank 1"},
        {kc_variance_scaling(3.0, KC_FAN_OUT, KC_UNTRUNCATED_NORMAL), 2, {256, 512}, 3 / fo, 0, 0,
         "VS(3, fan_out, untruncated)"},
        {kc_variance_scaling(0.5, KC_FAN_AVG, KC_UNIFORM), 4, {3, 3, 32, 64}, 0.5 / ((cfi + cfo) / 2),
         1, 0, "VS(0.5, fan_avg, uniform) conv"},
        {kc_variance_scaling(2.0, KC_FAN_IN, KC_TRUNCATED_NORMAL), 2, {256, 512}, 2 / fi, 0, 1,
         "VS(2, fan_in, truncated)"},
        {kc_init(KC_INIT_VARIANCE_SCALING), 2, {256, 512}, 1 / fi, 0, 1, "VS() defaults"},
        /* fans below 1 count as 1 */
        {kc_variance_scaling(0.01, KC_FAN_IN, KC_UNIFORM), 2, {0 + 1, 100000}, 0.01, 1, 0,
         "VS fan_in 1"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        vs_case *k = &cases[c];
        int64_t n = count_of(k->rank, k->shape);
        float *w = filled(k->init, KC_INIT_DEFAULT, k->rank, k->shape, 100 + c);
        if (k->uniform) {
            double limit = sqrt(3 * k->var);
            expect_distribution(k->name, w, n, 0, k->var, -limit, limit);
            /* a uniform has nothing beyond sqrt(3) sd; |x| > 2 sd never */
            cr_expect(stats_of(w, n).beyond2 == 0.0, "%s: not uniform", k->name);
        } else if (k->truncated) {
            double sd_param = sqrt(k->var) / TRUNC;
            expect_distribution(k->name, w, n, 0, k->var, -2 * sd_param, 2 * sd_param);
        } else {
            expect_distribution(k->name, w, n, 0, k->var, -INFINITY, INFINITY);
            /* N(0, 1): 4.55% beyond 2 sd */
            double b = stats_of(w, n).beyond2;
            cr_expect(fabs(b - 0.0455) < 0.004, "%s: %g beyond 2 sd, want 0.0455", k->name, b);
        }
        free(w);
    }
}

Test(initializers, random_uniform_normal_truncated) {
    int64_t shape[] = {400, 300};
    int64_t n = 400 * 300;
    float *w = filled(kc_init(KC_INIT_RANDOM_UNIFORM), KC_INIT_DEFAULT, 2, shape, 1);
    expect_distribution("RandomUniform()", w, n, 0, 0.1 * 0.1 / 12, -0.05, 0.05);
    free(w);
    w = filled((kc_initializer){.kind = KC_INIT_RANDOM_UNIFORM}, KC_INIT_DEFAULT, 2, shape, 2);
    expect_distribution("RandomUniform zero value", w, n, 0, 0.1 * 0.1 / 12, -0.05, 0.05);
    free(w);
    w = filled(kc_random_uniform(1.0, 3.0), KC_INIT_DEFAULT, 2, shape, 3);
    expect_distribution("RandomUniform(1, 3)", w, n, 2, 4.0 / 12, 1, 3);
    free(w);
    w = filled(kc_init(KC_INIT_RANDOM_NORMAL), KC_INIT_DEFAULT, 2, shape, 4);
    expect_distribution("RandomNormal()", w, n, 0, 0.05 * 0.05, -INFINITY, INFINITY);
    cr_expect(fabs(stats_of(w, n).beyond2 - 0.0455) < 0.004);
    free(w);
    w = filled(kc_random_normal(2.0, 0.5), KC_INIT_DEFAULT, 2, shape, 5);
    expect_distribution("RandomNormal(2, 0.5)", w, n, 2, 0.25, -INFINITY, INFINITY);
    free(w);
    /* TruncatedNormal(1, 0.1): within 1 +- 0.2, variance (0.1 * 0.8796)^2 */
    w = filled(kc_truncated_normal(1.0, 0.1), KC_INIT_DEFAULT, 2, shape, 6);
    expect_distribution("TruncatedNormal(1, 0.1)", w, n, 1, 0.1 * 0.1 * TRUNC * TRUNC, 0.8, 1.2);
    free(w);
    w = filled(kc_init(KC_INIT_TRUNCATED_NORMAL), KC_INIT_DEFAULT, 2, shape, 7);
    expect_distribution("TruncatedNormal()", w, n, 0, 0.05 * 0.05 * TRUNC * TRUNC, -0.1, 0.1);
    free(w);
}

/* max |W^T W - gain^2 I| over the columns (rows when transposed_rows) */
static double orthogonality_error(const float *w, int64_t rows, int64_t cols, double gain,
                                  int by_rows) {
    int64_t k = by_rows ? rows : cols, len = by_rows ? cols : rows;
    double worst = 0;
    for (int64_t a = 0; a < k; a++)
        for (int64_t b = 0; b < k; b++) {
            double dot = 0;
            for (int64_t i = 0; i < len; i++) {
                double x = by_rows ? w[a * cols + i] : w[i * cols + a];
                double y = by_rows ? w[b * cols + i] : w[i * cols + b];
                dot += x * y;
            }
            worst = fmax(worst, fabs(dot - (a == b ? gain * gain : 0.0)));
        }
    return worst;
}

Test(initializers, orthogonal) {
    struct {
        int rank;
        int64_t shape[4];
        double gain;
    } cases[] = {{2, {64, 32}, 1}, {2, {32, 64}, 1}, {2, {50, 50}, 2},
                 {4, {3, 3, 4, 8}, 1}, {4, {1, 1, 4, 16}, 0.5}, {2, {1, 7}, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int rank = cases[c].rank;
        int64_t cols = cases[c].shape[rank - 1], rows = count_of(rank, cases[c].shape) / cols;
        float *w = filled(kc_orthogonal(cases[c].gain), KC_INIT_DEFAULT, rank, cases[c].shape,
                          10 + c);
        /* orthonormal columns when rows >= cols, else orthonormal rows (Keras's transpose) */
        double e = orthogonality_error(w, rows, cols, cases[c].gain, rows < cols);
        cr_expect(e < 1e-5, "Orthogonal case %zu (%lld x %lld): error %g", c, (long long)rows,
                  (long long)cols, e);
        free(w);
    }
    /* Haar-distributed: the entries of a 200 x 200 orthogonal matrix have mean 0 and variance
     * 1/200, with no sign bias on the diagonal */
    int64_t sq[] = {200, 200};
    float *w = filled(kc_orthogonal(1.0), KC_INIT_DEFAULT, 2, sq, 77);
    expect_distribution("Orthogonal 200 x 200 entries", w, 200 * 200, 0, 1.0 / 200, -1, 1);
    double diag = 0;
    for (int i = 0; i < 200; i++) diag += w[i * 200 + i];
    cr_expect(fabs(diag) < 4.0, "diagonal sum %g: biased", diag);
    free(w);
    /* the zero value's gain is 1 */
    int64_t s2[] = {6, 4};
    w = filled((kc_initializer){.kind = KC_INIT_ORTHOGONAL}, KC_INIT_DEFAULT, 2, s2, 3);
    cr_expect(orthogonality_error(w, 6, 4, 1.0, 0) < 1e-6);
    free(w);
}

Test(initializers, constant_kinds_exact) {
    int64_t shape[] = {3, 5};
    float *w = filled(kc_init_identity(2.0), KC_INIT_DEFAULT, 2, shape, 1);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 5; c++) cr_expect_eq(w[r * 5 + c], r == c ? 2.0f : 0.0f);
    free(w);
    w = filled((kc_initializer){.kind = KC_INIT_IDENTITY}, KC_INIT_DEFAULT, 2, shape, 1);
    for (int r = 0; r < 3; r++) cr_expect_eq(w[r * 5 + r], 1.0f);
    free(w);
    w = filled(kc_init_constant(0.3), KC_INIT_DEFAULT, 2, shape, 1);
    for (int i = 0; i < 15; i++) cr_expect_eq(w[i], 0.3f);
    free(w);
    w = filled(kc_init_ones(), KC_INIT_DEFAULT, 2, shape, 1);
    for (int i = 0; i < 15; i++) cr_expect_eq(w[i], 1.0f);
    free(w);
    w = filled(kc_init_zeros(), KC_INIT_GLOROT_UNIFORM, 2, shape, 1);
    for (int i = 0; i < 15; i++) cr_expect_eq(w[i], 0.0f);
    free(w);
    /* the zero value is the default kind */
    w = filled((kc_initializer){0}, KC_INIT_ONES, 2, shape, 1);
    for (int i = 0; i < 15; i++) cr_expect_eq(w[i], 1.0f);
    free(w);
}

Test(initializers, checks_refuse_with_names) {
    int64_t conv[] = {3, 3, 2, 4}, bias[] = {4};
    KC_EXPECT_ERR(kc_init_check(&(kc_initializer){.kind = KC_INIT_IDENTITY}, 0, 4, conv, "w"),
                  KC_EINVAL, "w: Identity can only initialize 2-D matrices");
    KC_EXPECT_ERR(kc_init_check(&(kc_initializer){.kind = KC_INIT_ORTHOGONAL}, 0, 1, bias, "b"),
                  KC_EINVAL, "b: Orthogonal needs a weight of at least 2 dimensions");
    KC_EXPECT_ERR(kc_init_check(&(kc_initializer){.kind = KC_INIT_VARIANCE_SCALING,
                                                  .scale = -1},
                                0, 4, conv, "k"),
                  KC_EINVAL, "k: VarianceScaling scale must be positive");
    KC_EXPECT_ERR(kc_init_check(&(kc_initializer){.kind = KC_INIT_VARIANCE_SCALING,
                                                  .mode = (kc_fan_mode)7},
                                0, 4, conv, "k"),
                  KC_EINVAL, "mode 7");
    KC_EXPECT_ERR(kc_init_check(&(kc_initializer){.kind = (kc_init_kind)99}, 0, 4, conv, "k"),
                  KC_EINVAL, "unknown initializer kind 99");
    KC_EXPECT_ERR(kc_init_check(&(kc_initializer){.kind = KC_INIT_CONSTANT, .value = NAN}, 0, 1,
                                bias, "k"),
                  KC_EINVAL, "Constant has a parameter that is not finite");
    /* in layers: kc_add reports the layer and the field */
    kc_model *m = kc_sequential(kc_shape3(5, 5, 2));
    KC_EXPECT_ERR(kc_add(m, kc_conv2d_ex(4, &(kc_conv2d_opts){.kernel_size = {3, 3},
                                                              .kernel_initializer =
                                                                  kc_init_identity(1)})),
                  KC_EINVAL, "layer conv2d (Conv2D): kernel_initializer: Identity can only");
    kc_model_free(m);
    m = kc_sequential(kc_shape1(4));
    KC_EXPECT_ERR(kc_add(m, kc_dense_ex(3, &(kc_dense_opts){.bias_initializer = kc_orthogonal(1)})),
                  KC_EINVAL, "layer dense (Dense): bias_initializer: Orthogonal needs");
    kc_model_free(m);
    m = kc_sequential(kc_shape1(4));
    KC_EXPECT_ERR(kc_add(m, kc_dense_ex(3, &(kc_dense_opts){.kernel_regularizer = kc_l2(-1)})),
                  KC_EINVAL, "layer dense (Dense): kernel_regularizer: l2 must be a finite");
    kc_model_free(m);
    m = kc_sequential(kc_shape1(4));
    KC_EXPECT_ERR(kc_add(m, kc_dense_ex(3, &(kc_dense_opts){.activity_regularizer =
                                                                kc_l1(NAN)})),
                  KC_EINVAL, "layer dense (Dense): activity_regularizer: l1 must be");
    kc_model_free(m);
    /* an orthogonal bias is fine when there is no bias */
    m = kc_sequential(kc_shape1(4));
    KC_CHECK(kc_add(m, kc_dense_ex(3, &(kc_dense_opts){.use_bias = KC_ZERO,
                                                       .bias_initializer = kc_orthogonal(1)})));
    kc_model_free(m);
}

Test(initializers, seeds) {
    int64_t shape[] = {20, 30};
    kc_initializer kinds[] = {kc_he_normal(), kc_glorot_uniform(), kc_random_normal(0, 1),
                              kc_random_uniform(-1, 1), kc_truncated_normal(0, 1),
                              kc_orthogonal(1), kc_variance_scaling(1, KC_FAN_OUT, KC_UNIFORM)};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        /* a seeded initializer gives the same values whatever the stream it is handed */
        float *a = filled(kc_init_seed(kinds[k], 42), 0, 2, shape, 1);
        float *b = filled(kc_init_seed(kinds[k], 42), 0, 2, shape, 2);
        float *c = filled(kc_init_seed(kinds[k], 43), 0, 2, shape, 1);
        float *d = filled(kinds[k], 0, 2, shape, 1);
        float *e = filled(kinds[k], 0, 2, shape, 2);
        cr_expect(!memcmp(a, b, sizeof(float) * 600), "kind %zu: seed 42 differs", k);
        cr_expect(memcmp(a, c, sizeof(float) * 600), "kind %zu: seeds 42 and 43 agree", k);
        cr_expect(memcmp(d, e, sizeof(float) * 600), "kind %zu: streams 1 and 2 agree", k);
        free(a), free(b), free(c), free(d), free(e);
    }
    /* in a model: a seeded kernel does not depend on the model's seed; an unseeded one does */
    float w[2][4 * 3 + 3 + 3 * 2 + 2];
    for (int i = 0; i < 2; i++) {
        kc_set_random_seed(100 + i);
        kc_model *m = kc_sequential(kc_shape1(4));
        kc_add(m, kc_dense_ex(3, &(kc_dense_opts){.kernel_initializer =
                                                      kc_init_seed(kc_he_normal(), 9)}));
        kc_add(m, kc_dense(2, KC_SOFTMAX));
        KC_CHECK(kc_get_weights(m, w[i], 23));
        kc_model_free(m);
    }
    kc_set_random_seed(1337);
    cr_expect(!memcmp(w[0], w[1], sizeof(float) * 12), "the seeded kernel changed");
    cr_expect(memcmp(w[0] + 15, w[1] + 15, sizeof(float) * 6), "the unseeded kernel agreed");
}

Test(initializers, layers_use_them) {
    /* Dense: he_normal kernel, Constant(0.1) bias; the default Dense is glorot_uniform, and the
     * same values as kc_glorot_uniform() spelled out */
    kc_model *m = kc_sequential(kc_shape1(300));
    kc_add(m, kc_dense_ex(400, &(kc_dense_opts){.kernel_initializer = kc_he_normal(),
                                                .bias_initializer = kc_init_constant(0.1)}));
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_get_weights(m, w, n));
    expect_distribution("Dense he_normal", w, 300 * 400, 0, 2.0 / 300,
                        -2 * sqrt(2.0 / 300) / TRUNC, 2 * sqrt(2.0 / 300) / TRUNC);
    for (int i = 0; i < 400; i++) cr_expect_eq(w[300 * 400 + i], 0.1f);
    kc_model_free(m);
    free(w);

    float a[4 * 5 + 5], b[4 * 5 + 5];
    kc_model *m1 = kc_sequential(kc_shape1(4)), *m2 = kc_sequential(kc_shape1(4));
    kc_add(m1, kc_dense(5, KC_RELU));
    kc_add(m2, kc_dense_ex(5, &(kc_dense_opts){.activation = KC_RELU,
                                               .kernel_initializer = kc_glorot_uniform(),
                                               .bias_initializer = kc_init_zeros()}));
    KC_CHECK(kc_get_weights(m1, a, 25));
    KC_CHECK(kc_get_weights(m2, b, 25));
    cr_expect(!memcmp(a, b, sizeof a), "kc_dense and kc_dense_ex(glorot, zeros) differ");
    kc_model_free(m1);
    kc_model_free(m2);

    /* Conv2D: ones bias, lecun_uniform kernel (fan_in 3 * 3 * 8) */
    m = kc_sequential(kc_shape3(9, 9, 8));
    kc_add(m, kc_conv2d_ex(256, &(kc_conv2d_opts){.kernel_size = {3},
                                                  .kernel_initializer = kc_lecun_uniform(),
                                                  .bias_initializer = kc_init_ones()}));
    n = kc_count_params(m);
    cr_assert_eq(n, 3 * 3 * 8 * 256 + 256);
    w = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_get_weights(m, w, n));
    double lim = sqrt(3.0 / 72);
    expect_distribution("Conv2D lecun_uniform", w, n - 256, 0, 1.0 / 72, -lim, lim);
    for (int i = 0; i < 256; i++) cr_expect_eq(w[n - 256 + i], 1.0f);
    kc_model_free(m);
    free(w);
}

/* ---- regularizers ------------------------------------------------------------------------- */

Test(regularizers, penalty_and_gradient_values) {
    const float w[] = {1.0f, -2.0f, 0.0f, 0.5f};
    cr_expect(fabs(kc_regularizer_penalty(&(kc_regularizer){.l1 = 0.1f}, w, 4) -
                   0.1f * 3.5) < 1e-9);
    cr_expect(fabs(kc_regularizer_penalty(&(kc_regularizer){.l2 = 0.01f}, w, 4) -
                   0.01f * 5.25) < 1e-9);
    kc_regularizer both = kc_l1_l2(0.1f, 0.01f);
    cr_expect(fabs(kc_regularizer_penalty(&both, w, 4) - (0.1f * 3.5 + 0.01f * 5.25)) < 1e-9);
    cr_expect_eq(kc_regularizer_penalty(&(kc_regularizer){0}, w, 4), 0.0);
    cr_expect_eq(kc_regularizer_penalty(NULL, w, 4), 0.0);
    cr_expect(!kc_regularizer_active(&(kc_regularizer){0}));
    cr_expect(kc_regularizer_active(&(kc_regularizer){.l2 = 1e-9f}));
    cr_expect(!kc_regularizer_active(NULL));
    /* g += l1 sign(w) + 2 l2 w, sign(0) = 0 */
    float g[] = {1, 1, 1, 1};
    kc_regularizer_grad_add(&both, w, g, 4);
    const float want[] = {1 + 0.1f + 0.02f, 1 - 0.1f - 0.04f, 1, 1 + 0.1f + 0.01f};
    for (int i = 0; i < 4; i++) cr_expect(fabsf(g[i] - want[i]) < 1e-6f, "g[%d] %g", i, g[i]);
    float h[] = {0, 0, 0, 0};
    kc_regularizer_grad_add_scaled(&both, w, h, 4, 0.25f);
    for (int i = 0; i < 4; i++) cr_expect(fabsf(h[i] - 0.25f * (want[i] - 1)) < 1e-6f);
    kc_regularizer_grad_add(&(kc_regularizer){0}, w, h, 4); /* none: unchanged */
    cr_expect(fabsf(h[2]) == 0.0f);
    /* the builders and Keras's defaults */
    cr_expect(kc_l1(0.01f).l1 == 0.01f && kc_l1(0.01f).l2 == 0.0f);
    cr_expect(kc_l2(0.5f).l2 == 0.5f && kc_l2(0.5f).l1 == 0.0f);
    KC_EXPECT_ERR(kc_regularizer_check(&(kc_regularizer){.l1 = -0.1f}, "kr"), KC_EINVAL,
                  "kr: l1 must be a finite number >= 0");
    KC_EXPECT_ERR(kc_regularizer_check(&(kc_regularizer){.l2 = INFINITY}, "kr"), KC_EINVAL,
                  "kr: l2 must be");
}

Test(regularizers, gradient_matches_finite_differences) {
    /* values away from 0 (|w|'s kink) */
    float w[64], g[64];
    for (int i = 0; i < 64; i++) w[i] = (float)((i * 37 % 64) - 31.5) / 20.0f;
    kc_regularizer regs[] = {kc_l1(0.3f), kc_l2(0.2f), kc_l1_l2(0.05f, 0.7f)};
    for (int r = 0; r < 3; r++) {
        memset(g, 0, sizeof g);
        kc_regularizer_grad_add(&regs[r], w, g, 64);
        for (int i = 0; i < 64; i++) {
            float saved = w[i], up = saved + 1e-2f, down = saved - 1e-2f;
            w[i] = up;
            double pu = kc_regularizer_penalty(&regs[r], w, 64);
            w[i] = down;
            double pd = kc_regularizer_penalty(&regs[r], w, 64);
            w[i] = saved;
            double fd = (pu - pd) / ((double)up - (double)down);
            cr_expect(fabs(fd - g[i]) < 1e-4, "reg %d weight %d: analytic %g, numeric %g", r, i,
                      (double)g[i], fd);
        }
    }
}

/* the per-layer helpers: penalties and the activity gradient, by hand */
Test(regularizers, layer_helpers) {
    const float w[] = {1, -2, 3, 0.5f, -1, 2};
    /* a Dense (2 -> 2) whose views point at w */
    kc_layer *l = kc_dense_ex(2, &(kc_dense_opts){.kernel_regularizer = kc_l2(0.5f),
                                                  .bias_regularizer = kc_l1(0.25f),
                                                  .activity_regularizer = kc_l1_l2(0.1f, 0.2f)});
    float params[6];
    memcpy(params, w, sizeof params);
    l->kernel = params;
    l->bias = params + 4;
    l->kernel_size = 4;
    l->units = 2;
    l->out_size = 2;
    l->param_count = 6;
    cr_expect(fabs(kc_layer_weight_penalty(l) - (0.5 * (1 + 4 + 9 + 0.25) + 0.25 * 3)) < 1e-6);
    l->frozen = 1; /* Keras counts trainable weights' penalties only */
    cr_expect_eq(kc_layer_weight_penalty(l), 0.0);
    l->frozen = 0;
    l->no_bias = 1;
    cr_expect(fabs(kc_layer_weight_penalty(l) - 0.5 * 14.25) < 1e-6);
    const float out[] = {1, -1, 0.5f, 2}; /* batch 2 */
    double act = (0.1 * (1 + 1 + 0.5 + 2) + 0.2 * (1 + 1 + 0.25 + 4)) / 2;
    cr_expect(fabs(kc_layer_activity_penalty(l, out, 2) - act) < 1e-6);
    float dout[4] = {0};
    kc_layer_activity_grad(l, out, dout, 2);
    for (int i = 0; i < 4; i++) {
        float s = out[i] > 0 ? 1.0f : -1.0f;
        cr_expect(fabsf(dout[i] - (0.1f * s + 0.4f * out[i]) / 2) < 1e-6f);
    }
    free(l);
}

/* ---- models: fixed weights and data ------------------------------------------------------- */

static void fill_values(float *out, int64_t n, uint32_t seed, float scale) {
    uint32_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        out[i] = scale * ((float)(s >> 8) / 8388608.0f - 1.0f);
    }
}

static void one_hot(float *y, int batch, int cols) {
    for (int i = 0; i < batch; i++)
        for (int j = 0; j < cols; j++) y[i * cols + j] = (float)((2 * i + 1) % cols == j);
}

static double loss_at(kc_model *m, const float *w, int64_t n, const float *x, const float *y,
                      int batch) {
    double loss;
    KC_CHECK(kc_set_weights(m, w, n));
    KC_CHECK(kc_compute_gradients(m, x, y, batch, 0, &loss, NULL, 0));
    return loss;
}

/* kc_compute_gradients against central differences of the loss, for every weight */
static void check_gradients(kc_model *m, const float *x, const float *y, int batch) {
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_get_weights(m, w, n));
    KC_CHECK(kc_compute_gradients(m, x, y, batch, 0, NULL, g, n));
    double largest = 0;
    for (int64_t i = 0; i < n; i++) {
        float saved = w[i], up = saved + 1e-2f, down = saved - 1e-2f;
        w[i] = up;
        double lu = loss_at(m, w, n, x, y, batch);
        w[i] = down;
        double ld = loss_at(m, w, n, x, y, batch);
        w[i] = saved;
        double fd = (lu - ld) / ((double)up - (double)down);
        cr_expect(fabs(g[i] - fd) <= 2e-2 * fmax(fabs(fd), 1e-2) + 1e-4,
                  "weight %lld of %lld: analytic %.7g, finite difference %.7g", (long long)i,
                  (long long)n, (double)g[i], fd);
        largest = fmax(largest, fabs(fd));
    }
    KC_CHECK(kc_set_weights(m, w, n));
    cr_expect(largest > 1e-3, "vacuous gradient check");
    free(w);
    free(g);
}

/* ---- use_bias=False ----------------------------------------------------------------------- */

Test(use_bias_false, dense_forward_and_counts) {
    kc_model *m = kc_sequential(kc_shape1(4));
    KC_CHECK(kc_add(m, kc_dense_ex(3, &(kc_dense_opts){.activation = KC_TANH,
                                                       .use_bias = KC_ZERO})));
    /* the next layer's weights come right after the kernel: its bias of ones must survive the
     * first layer's init */
    KC_CHECK(kc_add(m, kc_dense_ex(2, &(kc_dense_opts){.bias_initializer = kc_init_ones(),
                                                       .kernel_initializer = kc_init_ones()})));
    cr_expect_eq(kc_layer_param_count(m, 0), 12);
    cr_expect_eq(kc_layer_trainable_count(m, 0), 12);
    cr_expect_eq(kc_count_params(m), 12 + 3 * 2 + 2);
    float w[20];
    KC_CHECK(kc_get_weights(m, w, 20));
    for (int i = 12; i < 20; i++) cr_expect_eq(w[i], 1.0f, "weight %d: %g", i, w[i]);
    fill_values(w, 20, 7, 0.9f);
    KC_CHECK(kc_set_weights(m, w, 20));
    float x[5 * 4], out[5 * 2];
    fill_values(x, 20, 99, 1.0f);
    KC_CHECK(kc_predict(m, x, 5, out));
    for (int i = 0; i < 5; i++) {
        double h[3];
        for (int j = 0; j < 3; j++) {
            double z = 0;
            for (int k = 0; k < 4; k++) z += (double)x[i * 4 + k] * w[k * 3 + j];
            h[j] = tanh(z);
        }
        for (int j = 0; j < 2; j++) {
            double z = w[18 + j];
            for (int k = 0; k < 3; k++) z += h[k] * w[12 + k * 2 + j];
            cr_expect(fabs(out[i * 2 + j] - z) < 1e-5, "sample %d out %d: %g, want %g", i, j,
                      (double)out[i * 2 + j], z);
        }
    }
    kc_model_free(m);
}

Test(use_bias_false, dense_gradients) {
    /* Dense(5, tanh, no bias) -> Dense(4, sigmoid, no bias) -> Dense(3, softmax) */
    kc_model *m = kc_sequential(kc_shape1(4));
    kc_add(m, kc_dense_ex(5, &(kc_dense_opts){.activation = KC_TANH, .use_bias = KC_ZERO}));
    kc_add(m, kc_dense_ex(4, &(kc_dense_opts){.activation = KC_SIGMOID, .use_bias = KC_ZERO}));
    kc_add(m, kc_dense(3, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
    int64_t n = kc_count_params(m);
    cr_assert_eq(n, 20 + 20 + 15);
    float w[55], x[6 * 4], y[6 * 3];
    fill_values(w, n, 12345, 0.8f);
    KC_CHECK(kc_set_weights(m, w, n));
    fill_values(x, 24, 777, 1.0f);
    one_hot(y, 6, 3);
    check_gradients(m, x, y, 6);
    kc_model_free(m);
}

static kc_model *conv_nobias_model(kc_regularizer kreg, kc_regularizer breg) {
    kc_model *m = kc_sequential(kc_shape3(5, 5, 2));
    kc_add(m, kc_conv2d_ex(3, &(kc_conv2d_opts){.kernel_size = {3}, .activation = KC_TANH,
                                                .use_bias = KC_ZERO, .kernel_regularizer = kreg}));
    kc_add(m, kc_conv2d_ex(2, &(kc_conv2d_opts){.kernel_size = {2}, .padding = KC_SAME,
                                                .activation = KC_SIGMOID,
                                                .kernel_regularizer = kreg,
                                                .bias_regularizer = breg}));
    kc_add(m, kc_flatten());
    kc_add(m, kc_dense_ex(3, &(kc_dense_opts){.activation = KC_SOFTMAX,
                                              .kernel_regularizer = kreg,
                                              .bias_regularizer = breg}));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_sgd(NULL), 0));
    return m;
}

Test(use_bias_false, conv_forward_and_gradients) {
    kc_model *m = conv_nobias_model((kc_regularizer){0}, (kc_regularizer){0});
    cr_expect_eq(kc_layer_param_count(m, 0), 3 * 3 * 2 * 3);
    cr_expect_eq(kc_layer_param_count(m, 1), 2 * 2 * 3 * 2 + 2);
    int64_t n = kc_count_params(m);
    cr_assert_eq(n, 54 + 26 + 18 * 3 + 3);
    float *w = malloc(sizeof(float) * (size_t)n), x[4 * 50], y[4 * 3];
    fill_values(w, n, 4242, 0.6f);
    KC_CHECK(kc_set_weights(m, w, n));
    fill_values(x, 200, 31, 1.0f);
    one_hot(y, 4, 3);
    /* the first layer by hand: out (3, 3, 3) per image, no bias */
    kc_model *first = kc_sequential(kc_shape3(5, 5, 2));
    kc_add(first, kc_conv2d_ex(3, &(kc_conv2d_opts){.kernel_size = {3}, .activation = KC_TANH,
                                                    .use_bias = KC_ZERO}));
    KC_CHECK(kc_set_weights(first, w, 54));
    float out[4 * 27];
    KC_CHECK(kc_predict(first, x, 4, out));
    for (int s = 0; s < 4; s++)
        for (int oy = 0; oy < 3; oy++)
            for (int ox = 0; ox < 3; ox++)
                for (int f = 0; f < 3; f++) {
                    double z = 0;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++)
                            for (int c = 0; c < 2; c++)
                                z += (double)x[s * 50 + ((oy + ky) * 5 + ox + kx) * 2 + c] *
                                     w[((ky * 3 + kx) * 2 + c) * 3 + f];
                    float got = out[s * 27 + (oy * 3 + ox) * 3 + f];
                    cr_expect(fabs(got - tanh(z)) < 1e-5, "image %d (%d, %d, %d): %g, want %g",
                              s, oy, ox, f, (double)got, tanh(z));
                }
    kc_model_free(first);
    check_gradients(m, x, y, 4);
    free(w);
    kc_model_free(m);
}

/* The layers add their weight regularizers' gradients: a regularized model's gradients are the
 * plain model's plus l1 sign(w) + 2 l2 w, for Dense (both its paths: kc_compute_gradients and
 * the step inside the product) and Conv2D, with and without a bias */
Test(regularizers, layers_add_their_gradients) {
    kc_regularizer kreg = kc_l1_l2(0.01f, 0.05f), breg = kc_l2(0.2f);
    kc_model *plain = conv_nobias_model((kc_regularizer){0}, (kc_regularizer){0});
    kc_model *reg = conv_nobias_model(kreg, breg);
    int64_t n = kc_count_params(plain);
    float *w = malloc(sizeof(float) * (size_t)n), *g0 = malloc(sizeof(float) * (size_t)n),
          *g1 = malloc(sizeof(float) * (size_t)n), *want = malloc(sizeof(float) * (size_t)n);
    fill_values(w, n, 4242, 0.6f);
    KC_CHECK(kc_set_weights(plain, w, n));
    KC_CHECK(kc_set_weights(reg, w, n));
    float x[4 * 50], y[4 * 3];
    fill_values(x, 200, 31, 1.0f);
    one_hot(y, 4, 3);
    KC_CHECK(kc_compute_gradients(plain, x, y, 4, 0, NULL, g0, n));
    KC_CHECK(kc_compute_gradients(reg, x, y, 4, 0, NULL, g1, n));
    /* layout: conv0 kernel 54 (no bias); conv1 kernel 24, bias 2; dense kernel 54, bias 3 */
    memcpy(want, g0, sizeof(float) * (size_t)n);
    kc_regularizer_grad_add(&kreg, w, want, 54);
    kc_regularizer_grad_add(&kreg, w + 54, want + 54, 24);
    kc_regularizer_grad_add(&breg, w + 78, want + 78, 2);
    kc_regularizer_grad_add(&kreg, w + 80, want + 80, 54);
    kc_regularizer_grad_add(&breg, w + 134, want + 134, 3);
    for (int64_t i = 0; i < n; i++)
        cr_expect(fabsf(g1[i] - want[i]) <= 1e-6f * fmaxf(1.0f, fabsf(want[i])),
                  "weight %lld: %g, want %g", (long long)i, (double)g1[i], (double)want[i]);
    /* one SGD step (lr 0.01) applies the same gradient, the Dense's kernel inside its product */
    KC_CHECK(kc_train_on_batch(reg, x, y, 4, NULL));
    float *after = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_get_weights(reg, after, n));
    for (int64_t i = 0; i < n; i++) {
        float expect = w[i] - 0.01f * want[i];
        cr_expect(fabsf(after[i] - expect) <= 1e-6f, "weight %lld after the step: %g, want %g",
                  (long long)i, (double)after[i], (double)expect);
    }
    free(after);
    free(w), free(g0), free(g1), free(want);
    kc_model_free(plain);
    kc_model_free(reg);
}

/* ---- configs ------------------------------------------------------------------------------ */

static kc_initializer parse_init(const char *json, kc_initializer dflt) {
    cJSON *j = cJSON_Parse(json);
    cr_assert_not_null(j, "bad test JSON %s", json);
    kc_initializer out = dflt;
    KC_CHECK(kc_initializer_from_json(j, "layer 'd'", "kernel_initializer", &out));
    cJSON_Delete(j);
    return out;
}

static int same_init(const kc_initializer *a, const kc_initializer *b) {
    return a->kind == b->kind && a->minval == b->minval && a->maxval == b->maxval &&
           a->mean == b->mean && a->stddev == b->stddev && a->scale == b->scale &&
           a->mode == b->mode && a->distribution == b->distribution && a->gain == b->gain &&
           a->value == b->value && a->has_seed == b->has_seed && a->seed == b->seed;
}

static char *compact(const cJSON *j) { return cJSON_PrintUnformatted(j); }

/* parse, emit (Keras 3 form), parse again: the same initializer; returns the emitted text */
static char *init_round_trip(const char *json, kc_initializer *parsed) {
    kc_initializer a = parse_init(json, (kc_initializer){0});
    cJSON *e = kc_initializer_to_json(&a, KC_INIT_GLOROT_UNIFORM);
    cr_assert_not_null(e);
    char *text = compact(e);
    kc_initializer b = parse_init(text, (kc_initializer){0});
    cr_expect(same_init(&a, &b), "%s -> %s does not read back the same", json, text);
    cJSON_Delete(e);
    if (parsed) *parsed = a;
    return text;
}

Test(configs, initializer_forms) {
    struct {
        const char *in, *out;
    } cases[] = {
        {"\"he_normal\"",
         "{\"module\":\"keras.initializers\",\"class_name\":\"HeNormal\",\"config\":{\"seed\":null},"
         "\"registered_name\":null}"},
        {"{\"module\": \"keras.initializers\", \"class_name\": \"HeNormal\", \"config\": "
         "{\"seed\": null}, \"registered_name\": null}",
         "{\"module\":\"keras.initializers\",\"class_name\":\"HeNormal\",\"config\":{\"seed\":null},"
         "\"registered_name\":null}"},
        {"{\"class_name\": \"HeNormal\", \"config\": {\"seed\": 12}}",
         "{\"module\":\"keras.initializers\",\"class_name\":\"HeNormal\",\"config\":{\"seed\":12},"
         "\"registered_name\":null}"},
        {"{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 2.0, \"mode\": \"fan_out\", "
         "\"distribution\": \"untruncated_normal\", \"seed\": 7, \"input_axes\": null, "
         "\"output_axes\": null}}",
         "{\"module\":\"keras.initializers\",\"class_name\":\"VarianceScaling\",\"config\":{"
         "\"seed\":7,\"scale\":2,\"mode\":\"fan_out\",\"distribution\":\"untruncated_normal\"},"
         "\"registered_name\":null}"},
        {"{\"class_name\": \"VarianceScaling\", \"config\": {\"distribution\": \"normal\"}}",
         "{\"module\":\"keras.initializers\",\"class_name\":\"VarianceScaling\",\"config\":{"
         "\"seed\":null,\"scale\":1,\"mode\":\"fan_in\",\"distribution\":\"truncated_normal\"},"
         "\"registered_name\":null}"},
        {"\"variance_scaling\"",
         "{\"module\":\"keras.initializers\",\"class_name\":\"VarianceScaling\",\"config\":{"
         "\"seed\":null,\"scale\":1,\"mode\":\"fan_in\",\"distribution\":\"truncated_normal\"},"
         "\"registered_name\":null}"},
        {"\"uniform\"",
         "{\"module\":\"keras.initializers\",\"class_name\":\"RandomUniform\",\"config\":{"
         "\"seed\":null,\"minval\":-0.05,\"maxval\":0.05},\"registered_name\":null}"},
        {"{\"class_name\": \"RandomUniform\", \"config\": {\"minval\": -0.2, \"maxval\": 0.3, "
         "\"seed\": 3}}",
         "{\"module\":\"keras.initializers\",\"class_name\":\"RandomUniform\",\"config\":{"
         "\"seed\":3,\"minval\":-0.2,\"maxval\":0.3},\"registered_name\":null}"},
        {"\"normal\"",
         "{\"module\":\"keras.initializers\",\"class_name\":\"RandomNormal\",\"config\":{"
         "\"seed\":null,\"mean\":0,\"stddev\":0.05},\"registered_name\":null}"},
        {"{\"class_name\": \"TruncatedNormal\", \"config\": {\"mean\": 1.5, \"stddev\": 0.25}}",
         "{\"module\":\"keras.initializers\",\"class_name\":\"TruncatedNormal\",\"config\":{"
         "\"seed\":null,\"mean\":1.5,\"stddev\":0.25},\"registered_name\":null}"},
        {"\"orthogonal\"",
         "{\"module\":\"keras.initializers\",\"class_name\":\"Orthogonal\",\"config\":{"
         "\"seed\":null,\"gain\":1},\"registered_name\":null}"},
        {"{\"class_name\": \"OrthogonalInitializer\", \"config\": {\"gain\": 1.5, \"seed\": 2}}",
         "{\"module\":\"keras.initializers\",\"class_name\":\"Orthogonal\",\"config\":{"
         "\"seed\":2,\"gain\":1.5},\"registered_name\":null}"},
        {"{\"module\": \"keras.initializers\", \"class_name\": \"Identity\", \"config\": {}, "
         "\"registered_name\": null}",
         "{\"module\":\"keras.initializers\",\"class_name\":\"Identity\",\"config\":{\"gain\":1},"
         "\"registered_name\":null}"},
        {"{\"class_name\": \"Identity\", \"config\": {\"gain\": 2.0}}",
         "{\"module\":\"keras.initializers\",\"class_name\":\"Identity\",\"config\":{\"gain\":2},"
         "\"registered_name\":null}"},
        {"{\"class_name\": \"Constant\", \"config\": {\"value\": 0.3}}",
         "{\"module\":\"keras.initializers\",\"class_name\":\"Constant\",\"config\":{\"value\":0.3},"
         "\"registered_name\":null}"},
        {"\"zero\"",
         "{\"module\":\"keras.initializers\",\"class_name\":\"Zeros\",\"config\":{},"
         "\"registered_name\":null}"},
        {"{\"class_name\": \"OnesV2\", \"config\": {}}",
         "{\"module\":\"keras.initializers\",\"class_name\":\"Ones\",\"config\":{},"
         "\"registered_name\":null}"},
        {"null",
         "{\"module\":\"keras.initializers\",\"class_name\":\"GlorotUniform\",\"config\":{"
         "\"seed\":null},\"registered_name\":null}"},
        {"{\"class_name\": \"glorot_normal\"}",
         "{\"module\":\"keras.initializers\",\"class_name\":\"GlorotNormal\",\"config\":{"
         "\"seed\":null},\"registered_name\":null}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *text = init_round_trip(cases[i].in, NULL);
        cr_expect_str_eq(text, cases[i].out, "%s", cases[i].in);
        free(text);
    }
    /* absent keeps the layer's default */
    kc_initializer keep = kc_init_ones();
    KC_CHECK(kc_initializer_from_json(NULL, "w", "f", &keep));
    cr_expect_eq(keep.kind, KC_INIT_ONES);
    /* the default kind is written as what it stands for, with its seed */
    cJSON *sd = kc_initializer_to_json(&(kc_initializer){.has_seed = 1, .seed = 8},
                                       KC_INIT_HE_NORMAL);
    char *sdt = compact(sd);
    cr_expect_str_eq(sdt, "{\"module\":\"keras.initializers\",\"class_name\":\"HeNormal\","
                          "\"config\":{\"seed\":8},\"registered_name\":null}");
    free(sdt);
    cJSON_Delete(sd);
    cJSON *z = kc_initializer_to_json(&(kc_initializer){0}, KC_INIT_ZEROS);
    char *zt = compact(z);
    cr_expect(strstr(zt, "\"Zeros\"") != NULL, "%s", zt);
    free(zt);
    cJSON_Delete(z);
}

Test(configs, every_initializer_name) {
    struct {
        const char *name;
        kc_init_kind kind;
    } names[] = {
        {"GlorotUniform", KC_INIT_GLOROT_UNIFORM}, {"glorot_uniform", KC_INIT_GLOROT_UNIFORM},
        {"GlorotNormal", KC_INIT_GLOROT_NORMAL},   {"glorot_normal", KC_INIT_GLOROT_NORMAL},
        {"HeUniform", KC_INIT_HE_UNIFORM},         {"he_uniform", KC_INIT_HE_UNIFORM},
        {"HeNormal", KC_INIT_HE_NORMAL},           {"he_normal", KC_INIT_HE_NORMAL},
        {"LecunUniform", KC_INIT_LECUN_UNIFORM},   {"lecun_uniform", KC_INIT_LECUN_UNIFORM},
        {"LecunNormal", KC_INIT_LECUN_NORMAL},     {"lecun_normal", KC_INIT_LECUN_NORMAL},
        {"RandomUniform", KC_INIT_RANDOM_UNIFORM}, {"random_uniform", KC_INIT_RANDOM_UNIFORM},
        {"uniform", KC_INIT_RANDOM_UNIFORM},       {"RandomNormal", KC_INIT_RANDOM_NORMAL},
        {"random_normal", KC_INIT_RANDOM_NORMAL},  {"normal", KC_INIT_RANDOM_NORMAL},
        {"TruncatedNormal", KC_INIT_TRUNCATED_NORMAL},
        {"truncated_normal", KC_INIT_TRUNCATED_NORMAL},
        {"VarianceScaling", KC_INIT_VARIANCE_SCALING},
        {"variance_scaling", KC_INIT_VARIANCE_SCALING}, {"Orthogonal", KC_INIT_ORTHOGONAL},
        {"orthogonal", KC_INIT_ORTHOGONAL},        {"OrthogonalInitializer", KC_INIT_ORTHOGONAL},
        {"Identity", KC_INIT_IDENTITY},            {"identity", KC_INIT_IDENTITY},
        {"IdentityInitializer", KC_INIT_IDENTITY}, {"Zeros", KC_INIT_ZEROS},
        {"zeros", KC_INIT_ZEROS},                  {"zero", KC_INIT_ZEROS},
        {"Ones", KC_INIT_ONES},                    {"ones", KC_INIT_ONES},
        {"one", KC_INIT_ONES},                     {"Constant", KC_INIT_CONSTANT},
        {"constant", KC_INIT_CONSTANT},            {"he_normalV2", KC_INIT_HE_NORMAL},
        {"GlorotUniformV2", KC_INIT_GLOROT_UNIFORM}, {"VarianceScalingV2", KC_INIT_VARIANCE_SCALING},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char json[64];
        snprintf(json, sizeof json, "\"%s\"", names[i].name);
        kc_initializer a = parse_init(json, (kc_initializer){0});
        cr_expect_eq(a.kind, names[i].kind, "%s", names[i].name);
        /* the string form means the class with its defaults */
        kc_initializer d = kc_init(names[i].kind);
        cr_expect(same_init(&a, &d), "%s: not the defaults", names[i].name);
        snprintf(json, sizeof json, "{\"class_name\": \"%s\", \"config\": {}}", names[i].name);
        cr_expect_eq(parse_init(json, (kc_initializer){0}).kind, names[i].kind);
    }
}

static void expect_init_error(const char *json, const char *needle) {
    cJSON *j = cJSON_Parse(json);
    cr_assert_not_null(j, "bad test JSON %s", json);
    kc_initializer out = {0};
    KC_EXPECT_ERR(kc_initializer_from_json(j, "layer 1 'dense'", "kernel_initializer", &out),
                  KC_EFORMAT, needle);
    cJSON_Delete(j);
}

static void expect_reg_error(const char *json, const char *needle) {
    cJSON *j = cJSON_Parse(json);
    cr_assert_not_null(j, "bad test JSON %s", json);
    kc_regularizer out = {0};
    KC_EXPECT_ERR(kc_regularizer_from_json(j, "layer 1 'dense'", "kernel_regularizer", &out),
                  KC_EFORMAT, needle);
    cJSON_Delete(j);
}

Test(configs, initializer_errors_name_the_field) {
    expect_init_error("\"foo\"", "layer 1 'dense': kernel_initializer: unknown initializer 'foo'");
    expect_init_error("{\"class_name\": \"Foo\", \"config\": {}}",
                      "kernel_initializer: unknown initializer 'Foo'");
    expect_init_error("\"STFT\"", "kernel_initializer: the initializer 'STFT' is not supported");
    expect_init_error("{\"class_name\": \"HeNormal\", \"config\": {\"seed\": null, \"bogus\": 1}}",
                      "kernel_initializer: unknown config field 'bogus' of HeNormal");
    expect_init_error("{\"class_name\": \"HeNormal\", \"config\": {\"stddev\": 1}}",
                      "unknown config field 'stddev' of HeNormal");
    expect_init_error("{\"class_name\": \"Identity\", \"config\": {\"seed\": 1}}",
                      "unknown config field 'seed' of Identity");
    expect_init_error("{\"class_name\": \"HeNormal\", \"config\": {\"seed\": {\"module\": "
                      "\"keras.random\", \"class_name\": \"SeedGenerator\", \"config\": {}}}}",
                      "HeNormal's seed is a SeedGenerator");
    expect_init_error("{\"class_name\": \"HeNormal\", \"config\": {\"seed\": -3}}",
                      "HeNormal's seed must be null or a whole number >= 0");
    expect_init_error("{\"class_name\": \"GlorotUniform\", \"config\": {\"input_axes\": [0]}}",
                      "GlorotUniform's input_axes is not supported by kerac");
    expect_init_error("{\"class_name\": \"VarianceScaling\", \"config\": {\"mode\": \"fan_mid\"}}",
                      "VarianceScaling's mode 'fan_mid' is not");
    expect_init_error("{\"class_name\": \"VarianceScaling\", \"config\": {\"distribution\": "
                      "\"cauchy\"}}",
                      "VarianceScaling's distribution 'cauchy'");
    expect_init_error("{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 0}}",
                      "VarianceScaling's scale must be positive");
    expect_init_error("{\"class_name\": \"RandomNormal\", \"config\": {\"stddev\": \"x\"}}",
                      "RandomNormal's stddev is not a finite number");
    expect_init_error("{\"class_name\": \"RandomNormal\", \"config\": {\"stddev\": 0}}",
                      "RandomNormal's stddev 0 is not supported");
    expect_init_error("{\"class_name\": \"RandomUniform\", \"config\": {\"minval\": 0, "
                      "\"maxval\": 0}}",
                      "RandomUniform with minval = maxval = 0");
    expect_init_error("{\"class_name\": \"Orthogonal\", \"config\": {\"gain\": 0}}",
                      "Orthogonal's gain 0 is not supported");
    expect_init_error("{\"module\": \"my_pkg\", \"class_name\": \"HeNormal\", \"config\": {}}",
                      "kernel_initializer: module 'my_pkg' (a custom object)");
    expect_init_error("{\"module\": \"keras.initializers\", \"class_name\": \"MyInit\", "
                      "\"config\": {}, \"registered_name\": \"pkg>MyInit\"}",
                      "registered_name 'pkg>MyInit'");
    expect_init_error("{\"class_name\": \"HeNormal\", \"config\": {}, \"extra\": 1}",
                      "unknown key 'extra'");
    expect_init_error("{\"config\": {}}", "kernel_initializer: class_name is missing");
    expect_init_error("3", "kernel_initializer is neither null, a name nor an object");
    expect_init_error("{\"class_name\": \"Constant\", \"config\": {\"value\": [1, 2]}}",
                      "Constant's value is not a finite number");
}

static kc_regularizer parse_reg(const char *json) {
    cJSON *j = cJSON_Parse(json);
    cr_assert_not_null(j, "bad test JSON %s", json);
    kc_regularizer out = {0};
    KC_CHECK(kc_regularizer_from_json(j, "w", "kernel_regularizer", &out));
    cJSON_Delete(j);
    return out;
}

Test(configs, regularizer_forms) {
    struct {
        const char *in;
        float l1, l2;
        const char *out;
    } cases[] = {
        {"\"l1\"", 0.01f, 0, "{\"module\":\"keras.regularizers\",\"class_name\":\"L1\",\"config\":"
                             "{\"l1\":0.01},\"registered_name\":null}"},
        {"\"L2\"", 0, 0.01f, "{\"module\":\"keras.regularizers\",\"class_name\":\"L2\",\"config\":"
                             "{\"l2\":0.01},\"registered_name\":null}"},
        /* Keras 3's "l1l2" is L1L2() (no penalty); tf.keras 2's "l1_l2" is 0.01 and 0.01 */
        {"\"l1l2\"", 0, 0, "null"},
        {"\"l1_l2\"", 0.01f, 0.01f,
         "{\"module\":\"keras.regularizers\",\"class_name\":\"L1L2\",\"config\":{\"l1\":0.01,"
         "\"l2\":0.01},\"registered_name\":null}"},
        {"null", 0, 0, "null"},
        {"{\"module\": \"keras.regularizers\", \"class_name\": \"L2\", \"config\": {\"l2\": 0.01}, "
         "\"registered_name\": null}",
         0, 0.01f,
         "{\"module\":\"keras.regularizers\",\"class_name\":\"L2\",\"config\":{\"l2\":0.01},"
         "\"registered_name\":null}"},
        {"{\"class_name\": \"L1\", \"config\": {\"l1\": 0.009999999776482582}}", 0.01f, 0,
         "{\"module\":\"keras.regularizers\",\"class_name\":\"L1\",\"config\":{\"l1\":0.01},"
         "\"registered_name\":null}"},
        {"{\"class_name\": \"L1L2\", \"config\": {\"l1\": 0.0, \"l2\": 0.5}}", 0, 0.5f,
         "{\"module\":\"keras.regularizers\",\"class_name\":\"L2\",\"config\":{\"l2\":0.5},"
         "\"registered_name\":null}"},
        {"{\"class_name\": \"L1L2\", \"config\": {\"l2\": 0.02}}", 0, 0.02f,
         "{\"module\":\"keras.regularizers\",\"class_name\":\"L2\",\"config\":{\"l2\":0.02},"
         "\"registered_name\":null}"},
        {"{\"class_name\": \"L1L2\", \"config\": {\"l1\": 0.1, \"l2\": 0.2}}", 0.1f, 0.2f,
         "{\"module\":\"keras.regularizers\",\"class_name\":\"L1L2\",\"config\":{\"l1\":0.1,"
         "\"l2\":0.2},\"registered_name\":null}"},
        {"{\"class_name\": \"L1\", \"config\": {\"l1\": null}}", 0.01f, 0,
         "{\"module\":\"keras.regularizers\",\"class_name\":\"L1\",\"config\":{\"l1\":0.01},"
         "\"registered_name\":null}"},
        {"{\"class_name\": \"l2\", \"config\": {}}", 0, 0.01f,
         "{\"module\":\"keras.regularizers\",\"class_name\":\"L2\",\"config\":{\"l2\":0.01},"
         "\"registered_name\":null}"},
        {"{\"class_name\": \"l1_l2\", \"config\": {\"l1\": 0.5}}", 0.5f, 0.01f,
         "{\"module\":\"keras.regularizers\",\"class_name\":\"L1L2\",\"config\":{\"l1\":0.5,"
         "\"l2\":0.01},\"registered_name\":null}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kc_regularizer r = parse_reg(cases[i].in);
        cr_expect(r.l1 == cases[i].l1 && r.l2 == cases[i].l2, "%s: l1 %g l2 %g", cases[i].in,
                  (double)r.l1, (double)r.l2);
        cJSON *e = kc_regularizer_to_json(&r);
        char *text = compact(e);
        cr_expect_str_eq(text, cases[i].out, "%s", cases[i].in);
        kc_regularizer again = parse_reg(text);
        cr_expect(again.l1 == r.l1 && again.l2 == r.l2, "%s does not read back", text);
        free(text);
        cJSON_Delete(e);
    }
}

Test(configs, regularizer_errors_name_the_field) {
    expect_reg_error("\"l3\"", "layer 1 'dense': kernel_regularizer: unknown regularizer 'l3'");
    expect_reg_error("\"orthogonal_regularizer\"",
                     "kernel_regularizer: the regularizer 'orthogonal_regularizer' is not "
                     "supported");
    expect_reg_error("{\"class_name\": \"OrthogonalRegularizer\", \"config\": {\"factor\": 0.01, "
                     "\"mode\": \"rows\"}}",
                     "the regularizer 'OrthogonalRegularizer' is not supported");
    expect_reg_error("{\"class_name\": \"L2\", \"config\": {\"l1\": 0.1}}",
                     "kernel_regularizer: unknown config field 'l1' of L2");
    expect_reg_error("{\"class_name\": \"L1L2\", \"config\": {\"l3\": 0.1}}",
                     "unknown config field 'l3' of L1L2");
    expect_reg_error("{\"class_name\": \"L2\", \"config\": {\"l2\": -0.1}}",
                     "L2's l2 must be a finite number >= 0");
    expect_reg_error("{\"class_name\": \"L2\", \"config\": {\"l2\": \"big\"}}",
                     "L2's l2 must be a finite number >= 0");
    expect_reg_error("{\"module\": \"my.regs\", \"class_name\": \"L2\", \"config\": {}}",
                     "module 'my.regs' (a custom object)");
    expect_reg_error("[1]", "kernel_regularizer is neither null, a name nor an object");
}

/* the same layers through kc_model_to_json: fields, and the errors the layer entries give */
Test(configs, layer_configs) {
    kc_model *m = kc_sequential(kc_shape3(6, 6, 2));
    kc_add(m, kc_conv2d_ex(4, &(kc_conv2d_opts){
                                  .kernel_size = {3},
                                  .use_bias = KC_ZERO,
                                  .kernel_initializer = kc_init_seed(kc_he_uniform(), 5),
                                  .kernel_regularizer = kc_l1_l2(0.01f, 0.02f),
                                  .activity_regularizer = kc_l2(0.01f)}));
    kc_add(m, kc_flatten());
    kc_add(m, kc_dense_ex(3, &(kc_dense_opts){.activation = KC_SOFTMAX,
                                              .kernel_initializer = kc_orthogonal(1.5),
                                              .bias_initializer = kc_init_constant(0.1),
                                              .bias_regularizer = kc_l1(0.01f)}));
    char *js;
    KC_CHECK(kc_model_to_json(m, &js));
    const char *want[] = {
        "\"use_bias\":false",
        "\"kernel_initializer\":{\"module\":\"keras.initializers\",\"class_name\":\"HeUniform\","
        "\"config\":{\"seed\":5},\"registered_name\":null}",
        "\"kernel_regularizer\":{\"module\":\"keras.regularizers\",\"class_name\":\"L1L2\","
        "\"config\":{\"l1\":0.01,\"l2\":0.02},\"registered_name\":null}",
        "\"activity_regularizer\":{\"module\":\"keras.regularizers\",\"class_name\":\"L2\","
        "\"config\":{\"l2\":0.01},\"registered_name\":null}",
        "\"class_name\":\"Orthogonal\",\"config\":{\"seed\":null,\"gain\":1.5}",
        "\"bias_initializer\":{\"module\":\"keras.initializers\",\"class_name\":\"Constant\","
        "\"config\":{\"value\":0.1},\"registered_name\":null}",
        "\"bias_regularizer\":{\"module\":\"keras.regularizers\",\"class_name\":\"L1\","
        "\"config\":{\"l1\":0.01},\"registered_name\":null}",
        "\"kernel_constraint\":null,\"bias_constraint\":null",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_expect(strstr(js, want[i]) != NULL, "the JSON lacks %s:\n%s", want[i], js);
    /* read back: the same JSON */
    kc_model *b;
    KC_CHECK(kc_model_from_json(js, &b));
    char *js2;
    KC_CHECK(kc_model_to_json(b, &js2));
    cr_expect_str_eq(js2, js);
    cr_expect_eq(kc_layer_param_count(b, 0), 3 * 3 * 2 * 4);
    /* a seeded kernel initializer gives the same kernel in both */
    int64_t nw = kc_count_params(m);
    cr_assert_eq(kc_count_params(b), nw);
    float *wa = malloc(sizeof(float) * (size_t)nw), *wb = malloc(sizeof(float) * (size_t)nw);
    KC_CHECK(kc_get_weights(m, wa, nw));
    KC_CHECK(kc_get_weights(b, wb, nw));
    cr_expect(!memcmp(wa, wb, sizeof(float) * 72));
    free(wa), free(wb);
    free(js2);
    kc_model_free(b);

    /* errors through the layer entries */
    struct {
        const char *from, *to, *needle;
    } bad[] = {
        {"\"kernel_constraint\":null", "\"kernel_constraint\":{\"class_name\":\"NonNeg\"}",
         "layer 1 'conv2d': kernel_constraint is not supported by kerac"},
        {"\"bias_constraint\":null", "\"bias_constraint\":\"max_norm\"",
         "'conv2d': bias_constraint is not supported"},
        {"\"HeUniform\"", "\"HeUniformish\"",
         "layer 1 'conv2d': kernel_initializer: unknown initializer 'HeUniformish'"},
        {"\"seed\":5", "\"seed\":5,\"color\":1",
         "'conv2d': kernel_initializer: unknown config field 'color' of HeUniform"},
        {"\"class_name\":\"L1\",\"config\":{\"l1\":0.01}", "\"class_name\":\"L1\",\"config\":{\"l2\":1}",
         "'dense': bias_regularizer: unknown config field 'l2' of L1"},
        {"\"use_bias\":false", "\"use_bias\":\"no\"", "'conv2d': use_bias is not true or false"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *at = strstr(js, bad[i].from);
        cr_assert_not_null(at, "the JSON lacks %s", bad[i].from);
        size_t n = strlen(js) + strlen(bad[i].to) + 1;
        char *s = malloc(n);
        snprintf(s, n, "%.*s%s%s", (int)(at - js), js, bad[i].to, at + strlen(bad[i].from));
        kc_model *c = NULL;
        KC_EXPECT_ERR(kc_model_from_json(s, &c), KC_EFORMAT, bad[i].needle);
        cr_expect_null(c);
        free(s);
    }
    free(js);
    kc_model_free(m);
}

/* ---- files -------------------------------------------------------------------------------- */

static kc_model *file_model(void) {
    kc_model *m = kc_sequential(kc_shape3(5, 5, 2));
    kc_add(m, kc_conv2d_ex(3, &(kc_conv2d_opts){.kernel_size = {3}, .activation = KC_RELU,
                                                .use_bias = KC_ZERO,
                                                .kernel_initializer = kc_orthogonal(1),
                                                .kernel_regularizer = kc_l2(0.001f),
                                                .activity_regularizer = kc_l1(0.01f)}));
    kc_add(m, kc_flatten());
    kc_add(m, kc_dense_ex(4, &(kc_dense_opts){.activation = KC_TANH, .use_bias = KC_ZERO,
                                              .kernel_initializer =
                                                  kc_init_seed(kc_he_normal(), 11),
                                              .kernel_regularizer = kc_l1_l2(0.01f, 0.02f)}));
    kc_add(m, kc_dense_ex(3, &(kc_dense_opts){.activation = KC_SOFTMAX,
                                              .kernel_initializer =
                                                  kc_variance_scaling(2, KC_FAN_AVG,
                                                                      KC_UNTRUNCATED_NORMAL),
                                              .bias_initializer = kc_random_normal(0.1, 0.2),
                                              .bias_regularizer = kc_l2(0.1f)}));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY,
                        kc_adam(&(kc_adam_opts){.learning_rate = 0.01f}), 0));
    return m;
}

Test(use_bias_false, save_load_round_trips) {
    const char *exts[] = {".keras", ".h5"};
    float x[6 * 50], y[6 * 3];
    fill_values(x, 300, 5, 1.0f);
    one_hot(y, 6, 3);
    for (int e = 0; e < 2; e++) {
        kc_model *m = file_model();
        cr_expect_eq(kc_count_params(m), 54 + 27 * 4 + 4 * 3 + 3);
        KC_CHECK(kc_train_on_batch(m, x, y, 6, NULL));
        char path[128];
        snprintf(path, sizeof path, "%s/m%s", tu_tmpdir(), exts[e]);
        KC_CHECK(kc_save(m, path));
        kc_model *b;
        KC_CHECK(kc_load(path, &b));
        char *ja, *jb;
        KC_CHECK(kc_model_to_json(m, &ja));
        KC_CHECK(kc_model_to_json(b, &jb));
        cr_expect_str_eq(jb, ja, "%s: the config changed", exts[e]);
        cr_expect(strstr(jb, "\"use_bias\":false") && strstr(jb, "\"Orthogonal\"") &&
                      strstr(jb, "\"seed\":11") && strstr(jb, "\"L1L2\"") &&
                      strstr(jb, "\"activity_regularizer\":{"),
                  "%s", jb);
        int64_t n = kc_count_params(m);
        cr_assert_eq(kc_count_params(b), n);
        float *wa = malloc(sizeof(float) * (size_t)n), *wb = malloc(sizeof(float) * (size_t)n);
        KC_CHECK(kc_get_weights(m, wa, n));
        KC_CHECK(kc_get_weights(b, wb, n));
        cr_expect(!memcmp(wa, wb, sizeof(float) * (size_t)n), "%s: weights differ", exts[e]);
        float pa[18], pb[18];
        KC_CHECK(kc_predict(m, x, 6, pa));
        KC_CHECK(kc_predict(b, x, 6, pb));
        cr_expect(!memcmp(pa, pb, sizeof pa), "%s: predictions differ", exts[e]);
        /* and training continues the same */
        KC_CHECK(kc_train_on_batch(m, x, y, 6, NULL));
        KC_CHECK(kc_train_on_batch(b, x, y, 6, NULL));
        KC_CHECK(kc_get_weights(m, wa, n));
        KC_CHECK(kc_get_weights(b, wb, n));
        cr_expect(!memcmp(wa, wb, sizeof(float) * (size_t)n), "%s: a step after loading differs",
                  exts[e]);
        free(wa), free(wb), free(ja), free(jb);
        kc_model_free(m);
        kc_model_free(b);
    }
}

/* ---- Keras's own files -------------------------------------------------------------------- */

static cJSON *load_json(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    cr_assert_not_null(j, "%s is not JSON", path);
    return j;
}

static float *json_floats(const cJSON *j, const char *name, int *count) {
    const cJSON *a = cJSON_GetObjectItem(j, name);
    cr_assert(cJSON_IsArray(a), "no %s", name);
    int n = cJSON_GetArraySize(a);
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) v[i] = (float)cJSON_GetArrayItem(a, i)->valuedouble;
    if (count) *count = n;
    return v;
}

static double json_num(const cJSON *j, const char *name) {
    const cJSON *v = cJSON_GetObjectItem(j, name);
    cr_assert(cJSON_IsNumber(v), "no %s", name);
    return v->valuedouble;
}

Test(keras_files, keras3_dense_no_bias_l2) {
    /* Dense(5, tanh, use_bias=False, HeNormal(seed=1), L2(0.01)) -> Dense(3, softmax,
     * orthogonal, Constant(0.1), bias L1(0.01)), SGD(0.1), written by Keras 3 */
    kc_model *m;
    KC_CHECK(kc_load(FIX "k3_initreg.keras", &m));
    cr_assert_eq(kc_count_params(m), 4 * 5 + 5 * 3 + 3);
    cr_expect_eq(kc_layer_param_count(m, 0), 20);
    char *js;
    KC_CHECK(kc_model_to_json(m, &js));
    const char *want[] = {"\"use_bias\":false", "\"class_name\":\"HeNormal\",\"config\":{\"seed\":1}",
                          "\"class_name\":\"L2\",\"config\":{\"l2\":0.01}",
                          "\"class_name\":\"Orthogonal\"",
                          "\"class_name\":\"Constant\",\"config\":{\"value\":0.1}",
                          "\"class_name\":\"L1\",\"config\":{\"l1\":0.01}"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_expect(strstr(js, want[i]) != NULL, "the config lacks %s:\n%s", want[i], js);
    free(js);
    cJSON *j = load_json(FIX "k3_initreg.json");
    int nx, np, na, ny;
    float *x = json_floats(j, "x", &nx), *y = json_floats(j, "y", &ny),
          *pred = json_floats(j, "pred", &np), *after = json_floats(j, "after_step", &na);
    int batch = nx / 4;
    float out[64];
    cr_assert(np <= 64);
    KC_CHECK(kc_predict(m, x, batch, out));
    for (int i = 0; i < np; i++)
        cr_expect(fabsf(out[i] - pred[i]) < 1e-5f, "prediction %d: %g, Keras %g", i,
                  (double)out[i], (double)pred[i]);
    /* the penalties before the step, as Keras computed them */
    float w[38];
    KC_CHECK(kc_get_weights(m, w, 38));
    double penalty = 0.0;
    for (int i = 0; i < 20; i++) penalty += 0.01 * (double)w[i] * w[i];
    for (int i = 35; i < 38; i++) penalty += 0.01 * fabs((double)w[i]);
    cr_expect(fabs(penalty - json_num(j, "penalty")) < 1e-6, "penalty %g, Keras %g", penalty,
              json_num(j, "penalty"));
    /* Keras's loss is the mean loss plus the penalties, unscaled (asserted by the generator) */
    cr_expect(fabs(json_num(j, "loss") - (json_num(j, "mean_loss") + penalty)) < 1e-5);
    /* one SGD step: the regularizers' gradients included, the weights as Keras's */
    kc_metrics r;
    KC_CHECK(kc_train_on_batch(m, x, y, batch, &r));
    /* kerac's reported loss: the mean loss, or (once the model adds the penalties) Keras's */
    cr_expect(fabs(r.loss - json_num(j, "mean_loss")) < 1e-5 ||
                  fabs(r.loss - json_num(j, "loss")) < 1e-5,
              "loss %g: neither Keras's mean loss %g nor its total %g", r.loss,
              json_num(j, "mean_loss"), json_num(j, "loss"));
    KC_CHECK(kc_get_weights(m, w, 38));
    cr_assert_eq(na, 38);
    for (int i = 0; i < 38; i++)
        cr_expect(fabsf(w[i] - after[i]) < 1e-5f, "weight %d after the step: %g, Keras %g", i,
                  (double)w[i], (double)after[i]);
    free(x), free(y), free(pred), free(after);
    cJSON_Delete(j);
    kc_model_free(m);
}

/* the config of a model using every form, from Keras 3's to_json() and from a tf.keras 2
 * legacy .h5 (the {"class_name", "config"} forms) */
static void check_config_model(const char *key) {
    cJSON *j = load_json(FIX "k3_initreg.json");
    const cJSON *c = cJSON_GetObjectItem(j, key);
    cr_assert(cJSON_IsString(c), "no %s", key);
    kc_model *m;
    KC_CHECK(kc_model_from_json(c->valuestring, &m));
    cr_assert_eq(kc_layer_count(m), 9);
    int64_t counts[] = {3 * 3 * 2 * 4, 2 * 2 * 4 * 3 + 3, 0, 27 * 6 + 6, 36 + 6, 24 + 4,
                        12 + 3, 6, 4 + 2};
    for (int i = 0; i < 9; i++)
        cr_expect_eq(kc_layer_param_count(m, i), counts[i], "%s: layer %d", key, i);
    int64_t n = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_get_weights(m, w, n));
    /* conv2d_1's bias "ones"; dense_2's Identity kernel (tf.keras 2 keeps gain 2, Keras 3 writes
     * {} and loses it); dense_4's Constant(-0.25) bias */
    int64_t at = 72 + 48;
    for (int i = 0; i < 3; i++) cr_expect_eq(w[at + i], 1.0f);
    at = 72 + 51 + 168;
    float gain = strcmp(key, "tf2_config") ? 1.0f : 2.0f;
    for (int r = 0; r < 6; r++)
        for (int k = 0; k < 6; k++) cr_expect_eq(w[at + r * 6 + k], r == k ? gain : 0.0f);
    at = 72 + 51 + 168 + 42 + 28 + 12;
    for (int i = 0; i < 3; i++) cr_expect_eq(w[at + i], -0.25f);
    /* the seeded VarianceScaling kernel: the same in another model of the same config */
    kc_set_random_seed(77);
    kc_model *m2;
    KC_CHECK(kc_model_from_json(c->valuestring, &m2));
    float *w2 = malloc(sizeof(float) * (size_t)n);
    KC_CHECK(kc_get_weights(m2, w2, n));
    cr_expect(!memcmp(w, w2, sizeof(float) * 72), "%s: the seeded kernel changed", key);
    cr_expect(memcmp(w + 72, w2 + 72, sizeof(float) * 48), "%s: the unseeded kernel agreed",
              key);
    free(w2);
    kc_set_random_seed(1337);
    /* written back in Keras 3's form and read again: the same */
    char *js, *js2;
    KC_CHECK(kc_model_to_json(m, &js));
    kc_model *b;
    KC_CHECK(kc_model_from_json(js, &b));
    KC_CHECK(kc_model_to_json(b, &js2));
    cr_expect_str_eq(js2, js);
    const char *want[] = {
        "\"class_name\":\"VarianceScaling\",\"config\":{\"seed\":7,\"scale\":2,\"mode\":"
        "\"fan_out\",\"distribution\":\"untruncated_normal\"}",
        "\"kernel_regularizer\":{\"module\":\"keras.regularizers\",\"class_name\":\"L1L2\","
        "\"config\":{\"l1\":0.01,\"l2\":0.02}",
        "\"activity_regularizer\":{\"module\":\"keras.regularizers\",\"class_name\":\"L2\","
        "\"config\":{\"l2\":0.01}",
        "\"class_name\":\"RandomUniform\",\"config\":{\"seed\":3,\"minval\":-0.2,\"maxval\":0.3}",
        "\"class_name\":\"RandomNormal\",\"config\":{\"seed\":null,\"mean\":0.5,\"stddev\":0.25}",
        "\"class_name\":\"Orthogonal\",\"config\":{\"seed\":2,\"gain\":1.5}",
        "\"class_name\":\"TruncatedNormal\",\"config\":{\"seed\":null,\"mean\":0,\"stddev\":0.1}",
        "\"class_name\":\"L1\",\"config\":{\"l1\":0.02}",
        "\"class_name\":\"LecunNormal\"", "\"class_name\":\"HeUniform\"",
        "\"class_name\":\"GlorotNormal\"", "\"class_name\":\"LecunUniform\"",
        "\"class_name\":\"Ones\"", "\"class_name\":\"Identity\"",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_expect(strstr(js, want[i]) != NULL, "%s: the JSON lacks %s", key, want[i]);
    free(js), free(js2), free(w);
    kc_model_free(b);
    kc_model_free(m2);
    kc_model_free(m);
    cJSON_Delete(j);
}

Test(keras_files, keras3_config_every_form) { check_config_model("k3_config"); }
Test(keras_files, tf2_legacy_config_every_form) { check_config_model("tf2_config"); }
