/* initializers.c: Keras 3's initializers (keras/src/initializers/random_initializers.py,
 * constant_initializers.py) and regularizers (keras/src/regularizers/regularizers.py), the
 * public builders of kerac.h, and the per-layer penalty helpers. */
#include "initializers.h"
#include "layers/layer.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- builders (kerac.h) ---- */

kc_initializer kc_init(kc_init_kind kind) {
    kc_initializer i = {.kind = kind};
    switch (kind) {
    case KC_INIT_RANDOM_UNIFORM: i.minval = -0.05, i.maxval = 0.05; break;
    case KC_INIT_RANDOM_NORMAL:
    case KC_INIT_TRUNCATED_NORMAL: i.stddev = 0.05; break;
    case KC_INIT_VARIANCE_SCALING: i.scale = 1.0; break;
    case KC_INIT_ORTHOGONAL:
    case KC_INIT_IDENTITY: i.gain = 1.0; break;
    default: break;
    }
    return i;
}
kc_initializer kc_glorot_uniform(void) { return kc_init(KC_INIT_GLOROT_UNIFORM); }
kc_initializer kc_glorot_normal(void) { return kc_init(KC_INIT_GLOROT_NORMAL); }
kc_initializer kc_he_uniform(void) { return kc_init(KC_INIT_HE_UNIFORM); }
kc_initializer kc_he_normal(void) { return kc_init(KC_INIT_HE_NORMAL); }
kc_initializer kc_lecun_uniform(void) { return kc_init(KC_INIT_LECUN_UNIFORM); }
kc_initializer kc_lecun_normal(void) { return kc_init(KC_INIT_LECUN_NORMAL); }
kc_initializer kc_init_zeros(void) { return kc_init(KC_INIT_ZEROS); }
kc_initializer kc_init_ones(void) { return kc_init(KC_INIT_ONES); }
kc_initializer kc_random_uniform(double minval, double maxval) {
    return (kc_initializer){.kind = KC_INIT_RANDOM_UNIFORM, .minval = minval, .maxval = maxval};
}
kc_initializer kc_random_normal(double mean, double stddev) {
    return (kc_initializer){.kind = KC_INIT_RANDOM_NORMAL, .mean = mean, .stddev = stddev};
}
kc_initializer kc_truncated_normal(double mean, double stddev) {
    return (kc_initializer){.kind = KC_INIT_TRUNCATED_NORMAL, .mean = mean, .stddev = stddev};
}
kc_initializer kc_variance_scaling(double scale, kc_fan_mode mode, kc_distribution distribution) {
    return (kc_initializer){.kind = KC_INIT_VARIANCE_SCALING, .scale = scale, .mode = mode,
                            .distribution = distribution};
}
kc_initializer kc_orthogonal(double gain) {
    return (kc_initializer){.kind = KC_INIT_ORTHOGONAL, .gain = gain};
}
kc_initializer kc_init_identity(double gain) {
    return (kc_initializer){.kind = KC_INIT_IDENTITY, .gain = gain};
}
kc_initializer kc_init_constant(double value) {
    return (kc_initializer){.kind = KC_INIT_CONSTANT, .value = value};
}
kc_initializer kc_init_seed(kc_initializer init, uint64_t seed) {
    init.has_seed = 1;
    init.seed = seed;
    return init;
}
kc_regularizer kc_l1(float l1) { return (kc_regularizer){.l1 = l1}; }
kc_regularizer kc_l2(float l2) { return (kc_regularizer){.l2 = l2}; }
kc_regularizer kc_l1_l2(float l1, float l2) { return (kc_regularizer){.l1 = l1, .l2 = l2}; }

/* ---- initializers ---- */

static const char *const class_names[] = {
    [KC_INIT_GLOROT_UNIFORM] = "GlorotUniform",   [KC_INIT_GLOROT_NORMAL] = "GlorotNormal",
    [KC_INIT_HE_UNIFORM] = "HeUniform",           [KC_INIT_HE_NORMAL] = "HeNormal",
    [KC_INIT_LECUN_UNIFORM] = "LecunUniform",     [KC_INIT_LECUN_NORMAL] = "LecunNormal",
    [KC_INIT_RANDOM_UNIFORM] = "RandomUniform",   [KC_INIT_RANDOM_NORMAL] = "RandomNormal",
    [KC_INIT_TRUNCATED_NORMAL] = "TruncatedNormal", [KC_INIT_VARIANCE_SCALING] = "VarianceScaling",
    [KC_INIT_ORTHOGONAL] = "Orthogonal",          [KC_INIT_IDENTITY] = "Identity",
    [KC_INIT_ZEROS] = "Zeros",                    [KC_INIT_ONES] = "Ones",
    [KC_INIT_CONSTANT] = "Constant"};
_Static_assert(sizeof class_names / sizeof *class_names == KC_INIT_COUNT,
               "class_names needs a row per kc_init_kind (kerac.h)");

const char *kc_init_class_name(kc_init_kind kind) {
    return (unsigned)kind < KC_INIT_COUNT ? class_names[kind] : NULL;
}

kc_init_kind kc_init_resolve(const kc_initializer *init, kc_init_kind default_kind) {
    return !init || init->kind == KC_INIT_DEFAULT ? default_kind : init->kind;
}

/* VarianceScaling's parameters of the named variants (Keras's constructors) */
typedef struct {
    double scale;
    kc_fan_mode mode;
    kc_distribution distribution;
} vs_params;

static int variance_scaling_of(const kc_initializer *init, kc_init_kind kind, vs_params *p) {
    switch (kind) {
    case KC_INIT_GLOROT_UNIFORM: *p = (vs_params){1.0, KC_FAN_AVG, KC_UNIFORM}; return 1;
    case KC_INIT_GLOROT_NORMAL: *p = (vs_params){1.0, KC_FAN_AVG, KC_TRUNCATED_NORMAL}; return 1;
    case KC_INIT_HE_UNIFORM: *p = (vs_params){2.0, KC_FAN_IN, KC_UNIFORM}; return 1;
    case KC_INIT_HE_NORMAL: *p = (vs_params){2.0, KC_FAN_IN, KC_TRUNCATED_NORMAL}; return 1;
    case KC_INIT_LECUN_UNIFORM: *p = (vs_params){1.0, KC_FAN_IN, KC_UNIFORM}; return 1;
    case KC_INIT_LECUN_NORMAL: *p = (vs_params){1.0, KC_FAN_IN, KC_TRUNCATED_NORMAL}; return 1;
    case KC_INIT_VARIANCE_SCALING:
        *p = (vs_params){init->scale != 0.0 ? init->scale : 1.0, init->mode, init->distribution};
        return 1;
    default: return 0;
    }
}

kc_status kc_init_check(const kc_initializer *init, kc_init_kind default_kind, int rank,
                        const int64_t *shape, const char *where) {
    kc_init_kind kind = kc_init_resolve(init, default_kind);
    if (kind <= KC_INIT_DEFAULT || kind >= KC_INIT_COUNT)
        return kc_err(KC_EINVAL, "%s: unknown initializer kind %d", where, (int)kind);
    if (!init || init->kind == KC_INIT_DEFAULT) return KC_OK; /* the defaults are valid */
    const char *cls = class_names[kind];
    double params[] = {init->minval, init->maxval, init->mean, init->stddev,
                       init->scale,  init->gain,   init->value};
    for (size_t i = 0; i < sizeof params / sizeof *params; i++)
        if (!isfinite(params[i]))
            return kc_err(KC_EINVAL, "%s: %s has a parameter that is not finite", where, cls);
    vs_params vs;
    if (variance_scaling_of(init, kind, &vs)) {
        if (!(vs.scale > 0.0))
            return kc_err(KC_EINVAL, "%s: VarianceScaling scale must be positive, got %g", where,
                          vs.scale);
        if ((unsigned)vs.mode > KC_FAN_AVG)
            return kc_err(KC_EINVAL, "%s: VarianceScaling mode %d is not fan_in, fan_out or "
                                     "fan_avg", where, (int)vs.mode);
        if ((unsigned)vs.distribution > KC_UNIFORM)
            return kc_err(KC_EINVAL,
                          "%s: VarianceScaling distribution %d is not truncated_normal, "
                          "untruncated_normal or uniform",
                          where, (int)vs.distribution);
    }
    if (kind == KC_INIT_IDENTITY && rank != 2)
        return kc_err(KC_EINVAL,
                      "%s: Identity can only initialize 2-D matrices, this weight has rank %d",
                      where, rank);
    if (kind == KC_INIT_ORTHOGONAL && rank < 2)
        return kc_err(KC_EINVAL,
                      "%s: Orthogonal needs a weight of at least 2 dimensions, this one has "
                      "rank %d",
                      where, rank);
    (void)shape;
    return KC_OK;
}

/* a double in (0, 1) from the top 53 bits */
static double u01_open(kc_rng *r) { return ((double)(kc_rng_next(r) >> 11) + 0.5) * 0x1p-53; }

/* standard normal draws by Box-Muller, in pairs */
typedef struct {
    kc_rng *rng;
    int has_spare;
    double spare;
} normal_gen;

static double gauss(normal_gen *g) {
    if (g->has_spare) {
        g->has_spare = 0;
        return g->spare;
    }
    double rad = sqrt(-2.0 * log(u01_open(g->rng))), th = 2.0 * M_PI * u01_open(g->rng);
    g->spare = rad * sin(th);
    g->has_spare = 1;
    return rad * cos(th);
}

/* a standard normal draw within [-2, 2]: the ones outside are drawn again (JAX's
 * truncated_normal(lower=-2, upper=2), which Keras scales by stddev) */
static double gauss_truncated(normal_gen *g) {
    for (;;) {
        double z = gauss(g);
        if (fabs(z) <= 2.0) return z;
    }
}

static void fill_normal(float *w, int64_t n, double mean, double stddev, int truncated,
                        kc_rng *rng) {
    normal_gen g = {rng, 0, 0.0};
    for (int64_t i = 0; i < n; i++)
        w[i] = (float)(mean + stddev * (truncated ? gauss_truncated(&g) : gauss(&g)));
}

/* Keras's compute_fans */
static void compute_fans(int rank, const int64_t *shape, double *fan_in, double *fan_out) {
    if (rank < 1) {
        *fan_in = *fan_out = 1;
    } else if (rank == 1) {
        *fan_in = *fan_out = (double)shape[0];
    } else if (rank == 2) {
        *fan_in = (double)shape[0];
        *fan_out = (double)shape[1];
    } else {
        double receptive = 1;
        for (int i = 0; i < rank - 2; i++) receptive *= (double)shape[i];
        *fan_in = (double)shape[rank - 2] * receptive;
        *fan_out = (double)shape[rank - 1] * receptive;
    }
}

static void fill_variance_scaling(float *w, int64_t n, const vs_params *p, int rank,
                                  const int64_t *shape, kc_rng *rng) {
    double fan_in, fan_out, denom;
    compute_fans(rank, shape, &fan_in, &fan_out);
    switch (p->mode) {
    case KC_FAN_IN: denom = fan_in; break;
    case KC_FAN_OUT: denom = fan_out; break;
    default: denom = (fan_in + fan_out) / 2.0; break;
    }
    double scale = p->scale / fmax(1.0, denom);
    switch (p->distribution) {
    case KC_TRUNCATED_NORMAL: /* the stddev of N(0, 1) truncated to [-2, 2] is 0.8796... */
        fill_normal(w, n, 0.0, sqrt(scale) / 0.87962566103423978, 1, rng);
        break;
    case KC_UNTRUNCATED_NORMAL: fill_normal(w, n, 0.0, sqrt(scale), 0, rng); break;
    default: {
        /* U[-limit, limit), limit = sqrt(3 * scale): glorot_uniform is sqrt(6 / (in + out));
         * the same float draws (2u - 1) * limit as kerac's glorot always took */
        float limit = sqrtf((float)(3.0 * p->scale / fmax(1.0, denom)));
        for (int64_t i = 0; i < n; i++) w[i] = (2.0f * kc_rng_uniform(rng) - 1.0f) * limit;
        break;
    }
    }
}

/* Keras's Orthogonal: a normal matrix (max(rows, cols), min(rows, cols)), rows =
 * prod(shape[:-1]), cols = shape[-1]; its QR; q's columns times the signs of r's diagonal
 * (so that the factorisation is the unique one with a positive diagonal); transposed when
 * rows < cols; times gain. Householder QR (LAPACK's geqr2 and org2r) in double. */
static kc_status fill_orthogonal(float *w, double gain, int rank, const int64_t *shape,
                                 kc_rng *rng) {
    int64_t rows = 1, cols = shape[rank - 1];
    for (int i = 0; i < rank - 1; i++) rows *= shape[i];
    int64_t m = rows > cols ? rows : cols, n = rows > cols ? cols : rows;
    double *a = malloc(sizeof(double) * (size_t)(m * n + 2 * n));
    if (!a) {
        for (int64_t i = 0; i < rows * cols; i++) w[i] = NAN;
        return kc_err(KC_ENOMEM, "Orthogonal: out of memory for a %lld x %lld matrix",
                      (long long)m, (long long)n);
    }
    double *tau = a + m * n, *rdiag = tau + n;
    /* column-major, so that the reflectors' loops run along contiguous columns; drawn in the
     * row-major order of the (m, n) matrix */
#define A(r, c) a[(c) * m + (r)]
    normal_gen g = {rng, 0, 0.0};
    for (int64_t r = 0; r < m; r++)
        for (int64_t c = 0; c < n; c++) A(r, c) = gauss(&g);
    /* H_i = I - tau_i v v^T, v = (1, a[i+1:m, i]) */
    for (int64_t i = 0; i < n; i++) {
        double alpha = A(i, i), xnorm = 0;
        for (int64_t r = i + 1; r < m; r++) xnorm = hypot(xnorm, A(r, i));
        if (xnorm == 0.0) {
            tau[i] = 0.0;
        } else {
            double beta = -copysign(hypot(alpha, xnorm), alpha);
            tau[i] = (beta - alpha) / beta;
            double s = 1.0 / (alpha - beta);
            for (int64_t r = i + 1; r < m; r++) A(r, i) *= s;
            A(i, i) = beta;
        }
        rdiag[i] = A(i, i);
        for (int64_t c = i + 1; c < n && tau[i] != 0.0; c++) {
            double dot = A(i, c);
            for (int64_t r = i + 1; r < m; r++) dot += A(r, i) * A(r, c);
            dot *= tau[i];
            A(i, c) -= dot;
            for (int64_t r = i + 1; r < m; r++) A(r, c) -= dot * A(r, i);
        }
    }
    /* Q = H_0 ... H_{n-1} I[:, :n], formed in place from the last reflector back */
    for (int64_t i = n - 1; i >= 0; i--) {
        if (i < n - 1) {
            A(i, i) = 1.0;
            for (int64_t c = i + 1; c < n; c++) {
                double dot = 0;
                for (int64_t r = i; r < m; r++) dot += A(r, i) * A(r, c);
                dot *= tau[i];
                for (int64_t r = i; r < m; r++) A(r, c) -= dot * A(r, i);
            }
        }
        for (int64_t r = i + 1; r < m; r++) A(r, i) *= -tau[i];
        A(i, i) = 1.0 - tau[i];
        for (int64_t r = 0; r < i; r++) A(r, i) = 0.0;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            /* q (m, n); the weight is q when rows >= cols, else q^T */
            int64_t qr = rows >= cols ? r : c, qc = rows >= cols ? c : r;
            double sign = rdiag[qc] > 0 ? 1.0 : rdiag[qc] < 0 ? -1.0 : 0.0;
            w[r * cols + c] = (float)(gain * sign * A(qr, qc));
        }
#undef A
    free(a);
    return KC_OK;
}

kc_status kc_init_fill(const kc_initializer *init, kc_init_kind default_kind, float *w, int rank,
                       const int64_t *shape, kc_rng *rng) {
    static const kc_initializer none = {0};
    if (!init) init = &none;
    kc_init_kind kind = kc_init_resolve(init, default_kind);
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    kc_rng own;
    if (init->has_seed) {
        kc_rng_seed(&own, init->seed);
        rng = &own;
    }
    double gain = init->gain != 0.0 ? init->gain : 1.0;
    vs_params vs;
    if (kc_init_check(init, default_kind, rank, shape, "initializer")) {
        for (int64_t i = 0; i < n; i++) w[i] = NAN;
        return KC_OK;
    }
    if (variance_scaling_of(init, kind, &vs)) {
        fill_variance_scaling(w, n, &vs, rank, shape, rng);
        return KC_OK;
    }
    switch (kind) {
    case KC_INIT_RANDOM_UNIFORM: {
        double lo = init->minval, hi = init->maxval;
        if (lo == 0.0 && hi == 0.0) lo = -0.05, hi = 0.05;
        for (int64_t i = 0; i < n; i++) w[i] = (float)(lo + (hi - lo) * kc_rng_uniform(rng));
        return KC_OK;
    }
    case KC_INIT_RANDOM_NORMAL:
    case KC_INIT_TRUNCATED_NORMAL:
        fill_normal(w, n, init->mean, init->stddev != 0.0 ? init->stddev : 0.05,
                    kind == KC_INIT_TRUNCATED_NORMAL, rng);
        return KC_OK;
    case KC_INIT_ORTHOGONAL: return fill_orthogonal(w, gain, rank, shape, rng);
    case KC_INIT_IDENTITY:
        for (int64_t r = 0; r < shape[0]; r++)
            for (int64_t c = 0; c < shape[1]; c++)
                w[r * shape[1] + c] = r == c ? (float)gain : 0.0f;
        return KC_OK;
    case KC_INIT_ONES:
        for (int64_t i = 0; i < n; i++) w[i] = 1.0f;
        return KC_OK;
    case KC_INIT_CONSTANT:
        for (int64_t i = 0; i < n; i++) w[i] = (float)init->value;
        return KC_OK;
    default: /* zeros */
        for (int64_t i = 0; i < n; i++) w[i] = 0.0f;
        return KC_OK;
    }
}

/* ---- regularizers ---- */

int kc_regularizer_active(const kc_regularizer *r) {
    return r && (r->l1 != 0.0f || r->l2 != 0.0f);
}

kc_status kc_regularizer_check(const kc_regularizer *r, const char *where) {
    if (!r) return KC_OK;
    if (!(isfinite(r->l1) && r->l1 >= 0.0f))
        return kc_err(KC_EINVAL, "%s: l1 must be a finite number >= 0, got %g", where,
                      (double)r->l1);
    if (!(isfinite(r->l2) && r->l2 >= 0.0f))
        return kc_err(KC_EINVAL, "%s: l2 must be a finite number >= 0, got %g", where,
                      (double)r->l2);
    return KC_OK;
}

double kc_regularizer_penalty(const kc_regularizer *r, const float *w, int64_t n) {
    if (!kc_regularizer_active(r)) return 0.0;
    double s1 = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double x = w[i];
        s1 += fabs(x);
        s2 += x * x;
    }
    double p = 0.0;
    if (r->l1 != 0.0f) p += (double)r->l1 * s1;
    if (r->l2 != 0.0f) p += (double)r->l2 * s2;
    return p;
}

void kc_regularizer_grad_add_scaled(const kc_regularizer *r, const float *w, float *g, int64_t n,
                                    float scale) {
    if (!kc_regularizer_active(r)) return;
    const float a = r->l1 * scale, b = 2.0f * r->l2 * scale;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float x = w[i];
        float sign = x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : 0.0f;
        g[i] += a * sign + b * x;
    }
}

void kc_regularizer_grad_add(const kc_regularizer *r, const float *w, float *g, int64_t n) {
    kc_regularizer_grad_add_scaled(r, w, g, n, 1.0f);
}

/* ---- per layer ---- */

/* the bias: units values after the kernel (Dense, Conv2D) */
static int has_bias(const kc_layer *l) { return !l->no_bias && l->bias; }

double kc_layer_weight_penalty(const kc_layer *l) {
    if (!l || l->frozen || !l->kernel) return 0.0;
    double p = kc_regularizer_penalty(&l->kernel_reg, l->kernel, l->kernel_size);
    if (has_bias(l))
        p += kc_regularizer_penalty(&l->bias_reg, l->bias, l->units);
    return p;
}

double kc_layer_activity_penalty(const kc_layer *l, const float *out, int batch) {
    if (!l || batch <= 0 || !kc_regularizer_active(&l->activity_reg)) return 0.0;
    return kc_regularizer_penalty(&l->activity_reg, out, (int64_t)batch * l->out_size) /
           (double)batch;
}

void kc_layer_activity_grad(const kc_layer *l, const float *out, float *dout, int batch) {
    if (!l || batch <= 0 || !kc_regularizer_active(&l->activity_reg)) return;
    kc_regularizer_grad_add_scaled(&l->activity_reg, out, dout, (int64_t)batch * l->out_size,
                                   1.0f / (float)batch);
}

void kc_layer_weight_reg_grad(kc_layer *l) {
    if (!l || l->frozen || !l->kernel || !l->dkernel) return;
    kc_regularizer_grad_add(&l->kernel_reg, l->kernel, l->dkernel, l->kernel_size);
    if (has_bias(l) && l->dbias)
        kc_regularizer_grad_add(&l->bias_reg, l->bias, l->dbias, l->units);
}

kc_status kc_layer_check_init_reg(const kc_layer *l, int krank, const int64_t *kshape) {
    char where[96];
    snprintf(where, sizeof where, "layer %s (%s): kernel_initializer", l->name, l->ops->type_name);
    kc_status st = kc_init_check(&l->kernel_init, KC_INIT_GLOROT_UNIFORM, krank, kshape, where);
    if (st) return st;
    if (!l->no_bias) {
        int64_t units = l->units;
        snprintf(where, sizeof where, "layer %s (%s): bias_initializer", l->name,
                 l->ops->type_name);
        st = kc_init_check(&l->bias_init, KC_INIT_ZEROS, 1, &units, where);
        if (st) return st;
    }
    const kc_regularizer *regs[] = {&l->kernel_reg, &l->bias_reg, &l->activity_reg};
    const char *names[] = {"kernel_regularizer", "bias_regularizer", "activity_regularizer"};
    for (int i = 0; i < 3; i++) {
        snprintf(where, sizeof where, "layer %s (%s): %s", l->name, l->ops->type_name, names[i]);
        st = kc_regularizer_check(regs[i], where);
        if (st) return st;
    }
    return KC_OK; /* without a bias, bias_initializer and bias_regularizer are kept, unused */
}

void kc_layer_init_weights(kc_layer *l, int krank, const int64_t *kshape, kc_rng *rng) {
    kc_status st = kc_init_fill(&l->kernel_init, KC_INIT_GLOROT_UNIFORM, l->kernel, krank, kshape,
                                rng);
    if (st) kc_err_prefix(st, "layer %s (%s): kernel_initializer", l->name, l->ops->type_name);
    if (l->no_bias) {
        l->bias = l->dbias = NULL;
        return;
    }
    int64_t units = l->units;
    kc_init_fill(&l->bias_init, KC_INIT_ZEROS, l->bias, 1, &units, rng);
}
