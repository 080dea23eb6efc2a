/* test_optimizers.c: each optimizer's steps against Keras 3's update rules worked by hand in
 * double, and the optimizers' defaults and option validation. */
#include "testutil.h"
/* after criterion.h (from testutil.h): included first, it breaks Criterion 2.4's Test() */
#include <criterion/parameterized.h>

/* Dense(1, linear) on 2 inputs under mean squared error: kernel (2, 1), then the bias */
#define INPUTS 2
#define N_WEIGHTS 3
#define BATCH 4
#define STEPS 3
/* kerac runs in float32 and the hand rules in double; both take the same float gradient, so
 * they part only by float rounding (~1e-7 of a weight). |weights| stay within 0.3-0.65. */
#define REL_TOL 1e-6

static const float INITIAL_WEIGHTS[N_WEIGHTS] = {0.5f, -0.4f, 0.3f};
/* The second feature is tiny, so its gradient's square (~1e-7) is comparable with epsilon:
 * where epsilon goes (inside the square root for RMSprop, outside for Adam) shows in that
 * weight. Features are positive so every gradient has the sign of the prediction error. */
static const float X[BATCH * INPUTS] = {1.0f, 2e-4f, 0.5f, 1e-4f, 0.8f, 3e-4f, 1.2f, 1.5e-4f};
/* Step s targets the current prediction plus TARGET_OFFSET[s]: a large gradient first, then
 * ones 100 times smaller, so Adam's velocity shrinks and AMSGrad's maximum departs from it
 * (by 0.1% a step at beta_2 0.999, by half at 0.5). */
static const float TARGET_OFFSET[STEPS] = {2.0f, 0.02f, -0.02f};

/* ---- Keras's update rules, by hand ------------------------------------------------------ */

typedef enum { RULE_SGD, RULE_RMSPROP, RULE_ADAM } rule_kind;

/* Keras's hyperparameters, written out (no zero-means-default here). */
typedef struct {
    rule_kind kind;
    double learning_rate, momentum;
    int nesterov;
    double rho, epsilon;
    int centered;
    double beta_1, beta_2;
    int amsgrad;
} update_rule;

/* The weights and Keras's optimizer variables, all starting at 0. */
typedef struct {
    double w[N_WEIGHTS];
    double momentum[N_WEIGHTS], velocity[N_WEIGHTS], average_gradient[N_WEIGHTS],
        velocity_hat[N_WEIGHTS];
    int iterations;
} hand_state;

/* keras/src/optimizers/{sgd,rmsprop,adam}.py update_step, one variable at a time. */
static void hand_step(const update_rule *r, hand_state *s, const float *gradient) {
    double lr = r->learning_rate;
    for (int i = 0; i < N_WEIGHTS; i++) {
        double g = gradient[i];
        double *w = &s->w[i], *m = &s->momentum[i], *v = &s->velocity[i];
        switch (r->kind) {
        case RULE_SGD:
            if (r->momentum != 0.0) {
                *m = *m * r->momentum - g * lr;
                *w += r->nesterov ? *m * r->momentum - g * lr : *m;
            } else {
                *w -= g * lr;
            }
            break;
        case RULE_RMSPROP: {
            *v = r->rho * *v + (1.0 - r->rho) * g * g;
            double denominator = *v + r->epsilon;
            if (r->centered) {
                double *avg = &s->average_gradient[i];
                *avg = r->rho * *avg + (1.0 - r->rho) * g;
                denominator = *v - *avg * *avg + r->epsilon;
            }
            double increment = lr * g / sqrt(denominator);
            if (r->momentum > 0.0) {
                *m = r->momentum * *m + increment;
                *w -= *m;
            } else {
                *w -= increment;
            }
            break;
        }
        case RULE_ADAM: {
            double t = s->iterations + 1;
            double alpha = lr * sqrt(1.0 - pow(r->beta_2, t)) / (1.0 - pow(r->beta_1, t));
            *m += (g - *m) * (1.0 - r->beta_1);
            *v += (g * g - *v) * (1.0 - r->beta_2);
            double denominator_v = *v;
            if (r->amsgrad) {
                s->velocity_hat[i] = fmax(s->velocity_hat[i], *v);
                denominator_v = s->velocity_hat[i];
            }
            *w -= *m * alpha / (sqrt(denominator_v) + r->epsilon);
            break;
        }
        }
    }
    s->iterations++;
}

/* ---- the model the steps run on ------------------------------------------------------------ */

static kc_model *tiny_model(kc_optimizer *opt) {
    kc_model *m = kc_sequential(kc_shape1(INPUTS));
    cr_assert_not_null(m);
    KC_CHECK(kc_add(m, kc_dense(1, KC_LINEAR)));
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, opt, 0));
    cr_assert_eq(kc_count_params(m), N_WEIGHTS);
    KC_CHECK(kc_set_weights(m, INITIAL_WEIGHTS, N_WEIGHTS));
    return m;
}

/* Step step's targets: the model's current predictions plus that step's offset. */
static void step_targets(kc_model *m, int step, float *y) {
    KC_CHECK(kc_predict(m, X, BATCH, y));
    for (int i = 0; i < BATCH; i++) y[i] += TARGET_OFFSET[step];
}

static void weights_after_steps(kc_optimizer *opt, float *w) {
    kc_model *m = tiny_model(opt);
    for (int step = 0; step < STEPS; step++) {
        float y[BATCH];
        step_targets(m, step, y);
        KC_CHECK(kc_train_on_batch(m, X, y, BATCH, NULL));
    }
    KC_CHECK(kc_get_weights(m, w, N_WEIGHTS));
    kc_model_free(m);
}

/* ---- each optimizer against its rule ------------------------------------------------------- */

/* What kerac is given (zero fields meaning Keras's defaults) and the rule with Keras's values
 * spelled out. The name is inline: Criterion re-executes the binary per test, so a pointer to a
 * string literal would not survive into the test (address randomisation). */
typedef struct {
    char name[48];
    kc_sgd_opts sgd;
    kc_rmsprop_opts rmsprop;
    kc_adam_opts adam;
    update_rule rule;
} optimizer_case;

#define KERAS_SGD(...) {.kind = RULE_SGD, .learning_rate = 0.01, __VA_ARGS__}
#define KERAS_RMSPROP(...) \
    {.kind = RULE_RMSPROP, .learning_rate = 0.001, .rho = 0.9, .epsilon = 1e-7, __VA_ARGS__}
#define KERAS_ADAM(...)                                                                   \
    {.kind = RULE_ADAM, .learning_rate = 0.001, .beta_1 = 0.9, .beta_2 = 0.999,        \
     .epsilon = 1e-7, __VA_ARGS__}

ParameterizedTestParameters(optimizer, follows_keras_rule) {
    static optimizer_case cases[] = {
        {.name = "SGD()", .rule = KERAS_SGD(.momentum = 0.0)},
        {.name = "SGD(momentum=0.9)", .sgd = {.momentum = 0.9f},
         .rule = KERAS_SGD(.momentum = 0.9)},
        {.name = "SGD(momentum=0.9, nesterov=True)", .sgd = {.momentum = 0.9f, .nesterov = 1},
         .rule = KERAS_SGD(.momentum = 0.9, .nesterov = 1)},
        {.name = "RMSprop()", .rule = KERAS_RMSPROP(.centered = 0)},
        {.name = "RMSprop(centered=True)", .rmsprop = {.centered = 1},
         .rule = KERAS_RMSPROP(.centered = 1)},
        {.name = "RMSprop(momentum=0.9)", .rmsprop = {.momentum = 0.9f},
         .rule = KERAS_RMSPROP(.momentum = 0.9)},
        {.name = "Adam()", .rule = KERAS_ADAM(.amsgrad = 0)},
        {.name = "Adam(amsgrad=True)", .adam = {.amsgrad = 1}, .rule = KERAS_ADAM(.amsgrad = 1)},
        /* with beta_2 0.999 the velocity shrinks by at most 0.1% a step, too little for AMSGrad's
         * maximum to show in 3 steps; at 0.5 it halves (see amsgrad_keeps_the_largest_velocity) */
        {.name = "Adam(beta_2=0.5, amsgrad=True)", .adam = {.beta_2 = 0.5f, .amsgrad = 1},
         .rule = {.kind = RULE_ADAM, .learning_rate = 0.001, .beta_1 = 0.9, .beta_2 = 0.5,
                  .epsilon = 1e-7, .amsgrad = 1}},
    };
    return cr_make_param_array(optimizer_case, cases, sizeof cases / sizeof cases[0]);
}

static kc_optimizer *make_optimizer(const optimizer_case *c) {
    switch (c->rule.kind) {
    case RULE_SGD: return kc_sgd(&c->sgd);
    case RULE_RMSPROP: return kc_rmsprop(&c->rmsprop);
    case RULE_ADAM: return kc_adam(&c->adam);
    }
    return NULL;
}

/* Each step: the gradient at kerac's current weights feeds the hand rule, then kerac takes its
 * own step on the same batch; the weights must agree after every step (1, 2 and 3). */
ParameterizedTest(optimizer_case *c, optimizer, follows_keras_rule) {
    cr_log_info("%s", c->name);
    kc_optimizer *opt = make_optimizer(c);
    cr_assert_not_null(opt, "%s: %s", c->name, kc_last_error());
    kc_model *m = tiny_model(opt);
    hand_state hand = {.iterations = 0};
    for (int i = 0; i < N_WEIGHTS; i++) hand.w[i] = INITIAL_WEIGHTS[i];
    for (int step = 0; step < STEPS; step++) {
        float y[BATCH], gradient[N_WEIGHTS], w[N_WEIGHTS];
        step_targets(m, step, y);
        double loss;
        KC_CHECK(kc_compute_gradients(m, X, y, BATCH, 1, &loss, gradient, N_WEIGHTS));
        hand_step(&c->rule, &hand, gradient);
        kc_metrics before;
        KC_CHECK(kc_train_on_batch(m, X, y, BATCH, &before));
        cr_assert_eq(before.loss, loss, "%s step %d: kc_train_on_batch saw another loss",
                     c->name, step + 1);
        KC_CHECK(kc_get_weights(m, w, N_WEIGHTS));
        for (int i = 0; i < N_WEIGHTS; i++)
            cr_expect(fabs(w[i] - hand.w[i]) <= REL_TOL * fabs(hand.w[i]),
                      "%s after %d step(s), weight %d: kerac %.9g, Keras's rule %.9g", c->name,
                      step + 1, i, (double)w[i], hand.w[i]);
    }
    kc_model_free(m);
}

/* The small later gradients shrink the velocity; AMSGrad divides by the earlier, larger one, so
 * it must end elsewhere than Adam, or the amsgrad cases above would not tell the two apart. */
Test(optimizer, amsgrad_keeps_the_largest_velocity) {
    float adam[N_WEIGHTS], amsgrad[N_WEIGHTS];
    weights_after_steps(kc_adam(&(kc_adam_opts){.beta_2 = 0.5f}), adam);
    weights_after_steps(kc_adam(&(kc_adam_opts){.beta_2 = 0.5f, .amsgrad = 1}), amsgrad);
    for (int i = 0; i < N_WEIGHTS; i++)
        cr_expect(fabsf(adam[i] - amsgrad[i]) > 1e-4f * fabsf(adam[i]),
                  "weight %d: Adam %.9g, AMSGrad %.9g", i, (double)adam[i], (double)amsgrad[i]);
}

/* ---- defaults ------------------------------------------------------------------------------- */

Test(optimizer, default_learning_rates) {
    struct {
        kc_optimizer *opt;
        float expected;
        const char *what;
    } cases[] = {
        {kc_sgd(NULL), 0.01f, "kc_sgd(NULL)"},
        {kc_sgd(&(kc_sgd_opts){0}), 0.01f, "kc_sgd(&{0})"},
        {kc_rmsprop(NULL), 0.001f, "kc_rmsprop(NULL)"},
        {kc_rmsprop(&(kc_rmsprop_opts){0}), 0.001f, "kc_rmsprop(&{0})"},
        {kc_adam(NULL), 0.001f, "kc_adam(NULL)"},
        {kc_adam(&(kc_adam_opts){0}), 0.001f, "kc_adam(&{0})"},
        {kc_sgd(&(kc_sgd_opts){.learning_rate = 0.5f}), 0.5f, "kc_sgd(learning_rate 0.5)"},
        {kc_adam(&(kc_adam_opts){.learning_rate = 0.25f}), 0.25f, "kc_adam(learning_rate 0.25)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_not_null(cases[i].opt, "%s: %s", cases[i].what, kc_last_error());
        cr_expect_eq(kc_optimizer_get_learning_rate(cases[i].opt), cases[i].expected,
                     "%s: learning rate %g", cases[i].what,
                     (double)kc_optimizer_get_learning_rate(cases[i].opt));
        kc_optimizer_free(cases[i].opt);
    }
}

/* NULL options, a zero struct and Keras's defaults written out must train identically: every
 * default, not only the learning rate, is the Keras one. */
Test(optimizer, zero_opts_equal_null_equal_keras_defaults) {
    struct {
        kc_optimizer *from_null, *from_zero, *from_explicit;
        const char *what;
    } cases[] = {
        {kc_sgd(NULL), kc_sgd(&(kc_sgd_opts){0}),
         kc_sgd(&(kc_sgd_opts){.learning_rate = 0.01f, .momentum = 0.0f, .nesterov = 0}), "SGD"},
        {kc_rmsprop(NULL), kc_rmsprop(&(kc_rmsprop_opts){0}),
         kc_rmsprop(&(kc_rmsprop_opts){.learning_rate = 0.001f, .rho = 0.9f, .momentum = 0.0f,
                                       .epsilon = 1e-7f, .centered = 0}),
         "RMSprop"},
        {kc_adam(NULL), kc_adam(&(kc_adam_opts){0}),
         kc_adam(&(kc_adam_opts){.learning_rate = 0.001f, .beta_1 = 0.9f, .beta_2 = 0.999f,
                                 .epsilon = 1e-7f, .amsgrad = 0}),
         "Adam"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float from_null[N_WEIGHTS], from_zero[N_WEIGHTS], from_explicit[N_WEIGHTS];
        weights_after_steps(cases[i].from_null, from_null);
        weights_after_steps(cases[i].from_zero, from_zero);
        weights_after_steps(cases[i].from_explicit, from_explicit);
        for (int k = 0; k < N_WEIGHTS; k++) {
            cr_expect_eq(from_zero[k], from_null[k], "%s weight %d: {0} %.9g, NULL %.9g",
                         cases[i].what, k, (double)from_zero[k], (double)from_null[k]);
            cr_expect_eq(from_explicit[k], from_null[k], "%s weight %d: explicit %.9g, NULL %.9g",
                         cases[i].what, k, (double)from_explicit[k], (double)from_null[k]);
            cr_expect_neq(from_null[k], INITIAL_WEIGHTS[k], "%s weight %d never moved",
                          cases[i].what, k);
        }
    }
}

/* ---- invalid options ------------------------------------------------------------------------ */

/* Leaves an unrelated message behind, so the needle can only come from the call under test. */
static void set_unrelated_error(void) { kc_summary(NULL, stdout); }

#define EXPECT_REJECTED(constructor_call, needle)                                               \
    do {                                                                                        \
        set_unrelated_error();                                                                  \
        kc_optimizer *opt_ = (constructor_call);                                                \
        cr_expect_null(opt_, "%s was accepted", #constructor_call);                             \
        cr_expect(strstr(kc_last_error(), (needle)) != NULL, "%s: message \"%s\" lacks \"%s\"", \
                  #constructor_call, kc_last_error(), (needle));                                \
        kc_optimizer_free(opt_);                                                                \
    } while (0)

Test(optimizer, invalid_options_rejected) {
    EXPECT_REJECTED(kc_sgd(&(kc_sgd_opts){.learning_rate = -0.01f}), "learning_rate");
    EXPECT_REJECTED(kc_sgd(&(kc_sgd_opts){.learning_rate = NAN}), "learning_rate");
    EXPECT_REJECTED(kc_rmsprop(&(kc_rmsprop_opts){.learning_rate = NAN}), "learning_rate");
    EXPECT_REJECTED(kc_adam(&(kc_adam_opts){.learning_rate = -1.0f}), "learning_rate");
    EXPECT_REJECTED(kc_adam(&(kc_adam_opts){.learning_rate = INFINITY}), "learning_rate");
    EXPECT_REJECTED(kc_sgd(&(kc_sgd_opts){.momentum = 1.5f}), "momentum");
    EXPECT_REJECTED(kc_rmsprop(&(kc_rmsprop_opts){.momentum = 1.5f}), "momentum");
    EXPECT_REJECTED(kc_adam(&(kc_adam_opts){.beta_1 = 1.0f}), "beta_1");
}

Test(optimizer, compile_rejects_null_optimizer) {
    kc_model *m = kc_sequential(kc_shape1(INPUTS));
    KC_CHECK(kc_add(m, kc_dense(1, KC_LINEAR)));
    KC_EXPECT_ERR(kc_compile(m, KC_MEAN_SQUARED_ERROR, NULL, 0), KC_EINVAL, "optimizer is NULL");
    /* the usual way to get there: a constructor's NULL passed straight in */
    KC_EXPECT_ERR(kc_compile(m, KC_MEAN_SQUARED_ERROR, kc_adam(&(kc_adam_opts){.beta_1 = 1.0f}), 0),
                  KC_EINVAL, "optimizer is NULL");
    float y[BATCH] = {0};
    KC_EXPECT_ERR(kc_train_on_batch(m, X, y, BATCH, NULL), KC_ESTATE, "not compiled");
    kc_model_free(m);
}
