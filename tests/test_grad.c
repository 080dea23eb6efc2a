/* test_grad.c: every analytic weight gradient of kc_compute_gradients against a central finite
 * difference of the loss, for each activation, loss and weightless layer (public API only). */
#include <stdarg.h>

#include "testutil.h"
/* after criterion.h (from testutil.h): included first, it breaks Criterion 2.4's Test() */
#include <criterion/parameterized.h>

#define MAX_PARAMS 256
#define MAX_TARGETS 64 /* per batch */
#define BATCH 4
#define FEATURES 4

/* The loss is computed in float32: each evaluation carries a rounding error of roughly 1e-7 for
 * the O(1) losses here, so the central difference (L(w+h) - L(w-h)) / 2h has a rounding error
 * near 1e-7 / h and a truncation error near h^2 |L'''| / 6. h = 1e-2 keeps both around 1e-5.
 * The relative 2e-2 leaves room for the curvature of softmax and sigmoid; the absolute 1e-4
 * (and the 1e-2 floor) for the rounding noise on gradients that are close to zero. */
#define FD_STEP 1e-2f
#define REL_TOL 2e-2
#define ABS_TOL 1e-4
/* a check in which every gradient is below this would pass without testing anything */
#define MIN_LARGEST_GRADIENT 1e-3

/* ---- deterministic data ------------------------------------------------------------------- */

/* xorshift32 into [-scale, scale): the same values on every run and platform */
static float next_value(uint32_t *state, float scale) {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return scale * ((float)(*state >> 8) / 8388608.0f - 1.0f);
}

static void fill_values(float *out, int64_t n, uint32_t seed, float scale) {
    uint32_t state = seed;
    for (int64_t i = 0; i < n; i++) out[i] = next_value(&state, scale);
}

/* Targets of the form each loss expects, chosen so no probability is near the clip range. */
static void make_targets(kc_loss loss, int batch, int cols, float *y) {
    for (int i = 0; i < batch; i++) {
        float *row = y + i * cols;
        switch (loss) {
        case KC_CATEGORICAL_CROSSENTROPY:
            /* soft labels with two classes, so more than one term enters the sum */
            for (int j = 0; j < cols; j++) row[j] = 0.0f;
            row[i % cols] = 0.7f;
            row[(i + 1) % cols] += 0.3f;
            break;
        case KC_SPARSE_CATEGORICAL_CROSSENTROPY: y[i] = (float)((2 * i + 1) % cols); break;
        case KC_BINARY_CROSSENTROPY:
            /* alternating 0/1; with two columns every row is one-hot, as for a softmax output */
            for (int j = 0; j < cols; j++) row[j] = (float)((i + j) % 2);
            break;
        case KC_MEAN_SQUARED_ERROR: fill_values(row, cols, 977u + (uint32_t)i, 0.9f); break;
        default: break; /* test_losses.c checks the others */
        }
    }
}

/* A batch of inputs in [-1, 1) (in values per sample) and targets for cols outputs. */
static void make_batch(kc_loss loss, int batch, int in, int cols, float *x, float *y) {
    fill_values(x, (int64_t)batch * in, 777u, 1.0f);
    make_targets(loss, batch, cols, y);
}

/* ---- models ------------------------------------------------------------------------------- */

/* Sequential(input, layers...) compiled with loss and plain SGD, weights (biases included) set
 * to fixed values in [-0.8, 0.8). The layer list ends with NULL. */
static kc_model *build_model(kc_shape input, kc_loss loss, ...) {
    kc_model *m = kc_sequential(input);
    cr_assert_not_null(m, "kc_sequential: %s", kc_last_error());
    va_list ap;
    va_start(ap, loss);
    for (kc_layer *layer; (layer = va_arg(ap, kc_layer *)) != NULL;) KC_CHECK(kc_add(m, layer));
    va_end(ap);
    KC_CHECK(kc_compile(m, loss, kc_sgd(NULL), 0));
    int64_t n = kc_count_params(m);
    cr_assert(n > 0 && n <= MAX_PARAMS, "the model has %lld weights", (long long)n);
    float w[MAX_PARAMS];
    fill_values(w, n, 12345u, 0.8f);
    KC_CHECK(kc_set_weights(m, w, n));
    return m;
}

/* ReLU has a kink at 0 where the central difference is wrong by design. When the first layer is
 * Dense(units, relu) on in inputs, one perturbed first-layer weight moves a pre-activation by at
 * most FD_STEP * max(|x|, 1) (the bias by FD_STEP), so every pre-activation must stay twice that
 * far from 0. Later layers' weights leave these pre-activations alone. */
static void assert_first_layer_clear_of_kink(kc_model *m, const float *x, int batch, int in,
                                             int units) {
    float w[MAX_PARAMS];
    int64_t n = kc_count_params(m);
    KC_CHECK(kc_get_weights(m, w, n));
    const float *kernel = w, *bias = w + in * units;
    float largest_x = 1.0f;
    for (int i = 0; i < batch * in; i++) largest_x = fmaxf(largest_x, fabsf(x[i]));
    double margin = 2.0 * FD_STEP * largest_x;
    for (int i = 0; i < batch; i++)
        for (int j = 0; j < units; j++) {
            double z = bias[j];
            for (int k = 0; k < in; k++) z += (double)x[i * in + k] * kernel[k * units + j];
            cr_assert(fabs(z) > margin,
                      "sample %d unit %d: pre-activation %g lies within %g of the ReLU kink; "
                      "change the test's weights or inputs",
                      i, j, z, margin);
        }
}

/* ---- the check ---------------------------------------------------------------------------- */

static double loss_at(kc_model *m, float *w, int64_t n, const float *x, const float *y,
                      int batch, int training) {
    double loss;
    KC_CHECK(kc_set_weights(m, w, n));
    KC_CHECK(kc_compute_gradients(m, x, y, batch, training, &loss, NULL, 0));
    cr_assert(isfinite(loss), "the loss is %g", loss);
    return loss;
}

/* Compares each analytic gradient with (L(w+h) - L(w-h)) / 2h and restores the weights. Every
 * mismatch is reported (cr_expect) before the test fails. */
static void check_model_gradients(kc_model *m, const float *x, const float *y, int batch,
                                  int training) {
    int64_t n = kc_count_params(m);
    cr_assert(n > 0 && n <= MAX_PARAMS);
    float w[MAX_PARAMS], analytic[MAX_PARAMS];
    KC_CHECK(kc_get_weights(m, w, n));
    KC_CHECK(kc_compute_gradients(m, x, y, batch, training, NULL, analytic, n));
    double largest = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float saved = w[i];
        /* divide by the step the float weights really took, not the nominal 2h */
        float up = saved + FD_STEP, down = saved - FD_STEP;
        w[i] = up;
        double loss_up = loss_at(m, w, n, x, y, batch, training);
        w[i] = down;
        double loss_down = loss_at(m, w, n, x, y, batch, training);
        w[i] = saved;
        double numeric = (loss_up - loss_down) / ((double)up - (double)down);
        double diff = fabs((double)analytic[i] - numeric);
        cr_expect(diff <= REL_TOL * fmax(fabs(numeric), 1e-2) + ABS_TOL,
                  "weight %lld of %lld: analytic %.7g, finite difference %.7g", (long long)i,
                  (long long)n, (double)analytic[i], numeric);
        largest = fmax(largest, fabs(numeric));
    }
    KC_CHECK(kc_set_weights(m, w, n));
    cr_assert(largest > MIN_LARGEST_GRADIENT, "every gradient is below %g: the check is vacuous",
              MIN_LARGEST_GRADIENT);
}

/* ---- each activation in a hidden Dense ---------------------------------------------------- */

ParameterizedTestParameters(grad, hidden_activation) {
    static kc_act acts[] = {KC_LINEAR, KC_RELU, KC_SIGMOID, KC_TANH, KC_SOFTMAX};
    return cr_make_param_array(kc_act, acts, sizeof acts / sizeof acts[0]);
}

ParameterizedTest(kc_act *act, grad, hidden_activation) {
    cr_log_info("hidden activation %s", kc_act_name(*act));
    kc_model *m = build_model(kc_shape1(FEATURES), KC_CATEGORICAL_CROSSENTROPY,
                              kc_dense(5, *act), kc_dense(3, KC_SOFTMAX), NULL);
    float x[BATCH * FEATURES], y[BATCH * 3];
    make_batch(KC_CATEGORICAL_CROSSENTROPY, BATCH, FEATURES, 3, x, y);
    if (*act == KC_RELU) assert_first_layer_clear_of_kink(m, x, BATCH, FEATURES, 5);
    check_model_gradients(m, x, y, BATCH, 0);
    kc_model_free(m);
}

/* ---- each loss, fused with its output activation and not ---------------------------------- */

/* The name is stored inline: Criterion re-executes the binary per test, so a pointer to a
 * string literal would not survive into the test (address randomisation). */
typedef struct {
    char name[64];
    kc_loss loss;
    kc_act output_act;
    int outputs;
} loss_case;

ParameterizedTestParameters(grad, loss) {
    static loss_case cases[] = {
        {"categorical_crossentropy + softmax (fused)", KC_CATEGORICAL_CROSSENTROPY, KC_SOFTMAX, 4},
        /* sigmoid outputs do not sum to 1: exercises the p / sum(p) normalisation's gradient */
        {"categorical_crossentropy + sigmoid (unfused)", KC_CATEGORICAL_CROSSENTROPY,
         KC_SIGMOID, 4},
        {"sparse_categorical_crossentropy + softmax", KC_SPARSE_CATEGORICAL_CROSSENTROPY,
         KC_SOFTMAX, 4},
        {"binary_crossentropy + sigmoid (fused)", KC_BINARY_CROSSENTROPY, KC_SIGMOID, 3},
        {"binary_crossentropy + 2-unit softmax (unfused)", KC_BINARY_CROSSENTROPY, KC_SOFTMAX, 2},
        {"mean_squared_error + linear", KC_MEAN_SQUARED_ERROR, KC_LINEAR, 3},
        {"mean_squared_error + tanh", KC_MEAN_SQUARED_ERROR, KC_TANH, 3},
    };
    return cr_make_param_array(loss_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(loss_case *c, grad, loss) {
    cr_log_info("%s", c->name);
    kc_model *m = build_model(kc_shape1(FEATURES), c->loss, kc_dense(5, KC_TANH),
                              kc_dense(c->outputs, c->output_act), NULL);
    float x[BATCH * FEATURES], y[MAX_TARGETS];
    make_batch(c->loss, BATCH, FEATURES, c->outputs, x, y);
    check_model_gradients(m, x, y, BATCH, 0);
    kc_model_free(m);
}

/* ---- weightless layers -------------------------------------------------------------------- */

/* Activation layers in both places: tanh between Dense layers, softmax last and fused with
 * categorical crossentropy through the Activation layer rather than a Dense. */
Test(grad, activation_layers_fused_softmax) {
    kc_model *m = build_model(kc_shape1(FEATURES), KC_CATEGORICAL_CROSSENTROPY,
                              kc_dense(5, KC_LINEAR), kc_activation(KC_TANH),
                              kc_dense(3, KC_LINEAR), kc_activation(KC_SOFTMAX), NULL);
    float x[BATCH * FEATURES], y[BATCH * 3];
    make_batch(KC_CATEGORICAL_CROSSENTROPY, BATCH, FEATURES, 3, x, y);
    check_model_gradients(m, x, y, BATCH, 0);
    kc_model_free(m);
}

/* Under mean squared error nothing fuses: the Activation layer's own softmax derivative runs. */
Test(grad, activation_layer_softmax_unfused) {
    kc_model *m = build_model(kc_shape1(FEATURES), KC_MEAN_SQUARED_ERROR, kc_dense(3, KC_LINEAR),
                              kc_activation(KC_SOFTMAX), NULL);
    float x[BATCH * FEATURES], y[BATCH * 3];
    make_batch(KC_MEAN_SQUARED_ERROR, BATCH, FEATURES, 3, x, y);
    check_model_gradients(m, x, y, BATCH, 0);
    kc_model_free(m);
}

/* In training mode the dropout mask depends only on the step count, which kc_compute_gradients
 * does not advance, so the loss is a fixed function of the weights and finite differences hold.
 * The Dense before the Dropout receives its gradient through the mask. */
Test(grad, dropout_training_mode) {
    kc_set_random_seed(42);
    kc_model *m = build_model(kc_shape1(FEATURES), KC_CATEGORICAL_CROSSENTROPY,
                              kc_dense(6, KC_TANH), kc_dropout(0.5f), kc_dense(3, KC_SOFTMAX),
                              NULL);
    float x[BATCH * FEATURES], y[BATCH * 3];
    make_batch(KC_CATEGORICAL_CROSSENTROPY, BATCH, FEATURES, 3, x, y);
    double first, again, inference;
    KC_CHECK(kc_compute_gradients(m, x, y, BATCH, 1, &first, NULL, 0));
    KC_CHECK(kc_compute_gradients(m, x, y, BATCH, 1, &again, NULL, 0));
    KC_CHECK(kc_compute_gradients(m, x, y, BATCH, 0, &inference, NULL, 0));
    cr_assert_eq(first, again, "the mask changed between two calls: %.9g then %.9g", first, again);
    cr_assert_neq(first, inference, "training mode gave the inference loss: nothing was dropped?");
    check_model_gradients(m, x, y, BATCH, 1);
    kc_model_free(m);
}

/* Dropout straight on the input, one sample: an input the mask drops contributes nothing, so its
 * kernel row's gradient is exactly 0 in training mode and not in inference mode. Some inputs,
 * but not all, must be dropped at rate 0.5. */
Test(grad, dropout_zeroes_dropped_inputs) {
    enum { IN = 8, OUT = 2 };
    kc_set_random_seed(42);
    kc_model *m = build_model(kc_shape1(IN), KC_MEAN_SQUARED_ERROR, kc_dropout(0.5f),
                              kc_dense(OUT, KC_LINEAR), NULL);
    float x[IN], y[OUT], training[MAX_PARAMS], inference[MAX_PARAMS];
    /* nonzero inputs: a row of the kernel's gradient can only vanish by dropping */
    for (int k = 0; k < IN; k++) x[k] = 0.5f + 0.1f * (float)k;
    make_targets(KC_MEAN_SQUARED_ERROR, 1, OUT, y);
    int64_t n = kc_count_params(m);
    KC_CHECK(kc_compute_gradients(m, x, y, 1, 1, NULL, training, n));
    KC_CHECK(kc_compute_gradients(m, x, y, 1, 0, NULL, inference, n));
    int dropped = 0;
    for (int k = 0; k < IN; k++) {
        int zeros_training = 0, zeros_inference = 0;
        for (int j = 0; j < OUT; j++) {
            zeros_training += training[k * OUT + j] == 0.0f;
            zeros_inference += inference[k * OUT + j] == 0.0f;
        }
        cr_assert_eq(zeros_inference, 0, "input %d: an inference-mode gradient is 0", k);
        cr_assert(zeros_training == 0 || zeros_training == OUT,
                  "input %d: %d of %d gradients are 0; a mask drops whole inputs", k,
                  zeros_training, OUT);
        dropped += zeros_training == OUT;
    }
    cr_assert(dropped > 0 && dropped < IN, "%d of %d inputs dropped at rate 0.5", dropped, IN);
    check_model_gradients(m, x, y, 1, 1);
    kc_model_free(m);
}

/* Flatten turns each (2, 3) sample into the 6 inputs of the first Dense. The first layer's
 * input gradient is never needed, so a second Flatten (a no-op on a flat input, as in Keras)
 * sits between the Dense layers to put Flatten's backward pass on the gradient's path. */
Test(grad, flatten_2d_input) {
    kc_model *m = build_model(kc_shape2(2, 3), KC_CATEGORICAL_CROSSENTROPY, kc_flatten(),
                              kc_dense(4, KC_SIGMOID), kc_flatten(), kc_dense(3, KC_SOFTMAX),
                              NULL);
    float x[BATCH * 6], y[BATCH * 3];
    make_batch(KC_CATEGORICAL_CROSSENTROPY, BATCH, 6, 3, x, y);
    check_model_gradients(m, x, y, BATCH, 0);
    kc_model_free(m);
}

/* Four Dense layers: the first layer's gradients are right only if every later layer passes
 * the right input gradient (din) back. */
Test(grad, deep_model_propagates_input_gradients) {
    kc_model *m = build_model(kc_shape1(FEATURES), KC_CATEGORICAL_CROSSENTROPY,
                              kc_dense(6, KC_RELU), kc_dense(5, KC_SIGMOID), kc_dense(4, KC_TANH),
                              kc_dense(3, KC_SOFTMAX), NULL);
    float x[BATCH * FEATURES], y[BATCH * 3];
    make_batch(KC_CATEGORICAL_CROSSENTROPY, BATCH, FEATURES, 3, x, y);
    assert_first_layer_clear_of_kink(m, x, BATCH, FEATURES, 6);
    check_model_gradients(m, x, y, BATCH, 0);
    kc_model_free(m);
}
