/* test_optimizers.c: each optimizer's steps against Keras 3's update rules worked by hand in
 * double, and the optimizers' defaults and option validation. */
#include "testutil.h"
/* after criterion.h (from testutil.h): included first, it breaks Criterion 2.4's Test() */
#include <criterion/parameterized.h>

/* Dense(1, linear) on 2 inputs under mean squared error: kernel (2, 1), then the bias */
#define INPUTS 2
#define N_WEIGHTS 3
/* the two-layer model of per_step_scalars_shared_by_layers: Dense(2) (6 weights), Dense(1) (3) */
#define N_WEIGHTS_2 9
#define MAX_WEIGHTS N_WEIGHTS_2
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

typedef enum {
    RULE_SGD,
    RULE_RMSPROP,
    RULE_ADAM, /* and AdamW: weight_decay > 0 */
    RULE_ADADELTA,
    RULE_ADAGRAD,
    RULE_NADAM
} rule_kind;

/* Keras's hyperparameters, written out (no zero-means-default here). */
typedef struct {
    rule_kind kind;
    double learning_rate, momentum;
    int nesterov;
    double rho, epsilon;
    int centered;
    double beta_1, beta_2;
    int amsgrad;
    double weight_decay;              /* base_optimizer's _apply_weight_decay; 0: None */
    double initial_accumulator_value; /* Adagrad */
} update_rule;

/* The weights and Keras's optimizer variables, all starting at 0 (Adagrad's accumulator at
 * initial_accumulator_value, set by hand_init; Nadam's u_product at 1). */
typedef struct {
    double w[MAX_WEIGHTS];
    double momentum[MAX_WEIGHTS], velocity[MAX_WEIGHTS], average_gradient[MAX_WEIGHTS],
        velocity_hat[MAX_WEIGHTS];
    double accumulated_delta[MAX_WEIGHTS]; /* Adadelta's accumulated_delta_var */
    double u_product;                      /* Nadam */
    int iterations;
} hand_state;

static void hand_init(const update_rule *r, hand_state *s, const float *weights, int n) {
    *s = (hand_state){.u_product = 1.0, .iterations = 0};
    for (int i = 0; i < n; i++) {
        s->w[i] = weights[i];
        /* Adagrad's accumulator (Keras's variable "accumulator") is kept in velocity */
        if (r->kind == RULE_ADAGRAD) s->velocity[i] = r->initial_accumulator_value;
    }
}

/* keras/src/optimizers/{sgd,rmsprop,adam,adadelta,adagrad,nadam}.py update_step, one variable
 * at a time, after base_optimizer's weight decay (AdamW) and Nadam's _backend_update_step. */
static void hand_step(const update_rule *r, hand_state *s, const float *gradient, int n) {
    double lr = r->learning_rate;
    /* Nadam advances u_product once per step, before any variable's update_step */
    double u_t = 0, u_t_1 = 0, u_product_t = 0, u_product_t_1 = 0;
    if (r->kind == RULE_NADAM) {
        double t = s->iterations + 1;
        u_t = r->beta_1 * (1.0 - 0.5 * pow(0.96, t));
        u_t_1 = r->beta_1 * (1.0 - 0.5 * pow(0.96, t + 1));
        s->u_product *= u_t;
        u_product_t = s->u_product;
        u_product_t_1 = u_product_t * u_t_1;
    }
    /* _apply_weight_decay: every variable, before the update steps */
    if (r->weight_decay != 0.0)
        for (int i = 0; i < n; i++) s->w[i] -= s->w[i] * r->weight_decay * lr;
    for (int i = 0; i < n; i++) {
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
        case RULE_ADADELTA: {
            double *acc_g = v, *acc_d = &s->accumulated_delta[i];
            *acc_g = r->rho * *acc_g + (1.0 - r->rho) * g * g;
            double delta = -(sqrt(*acc_d + r->epsilon) * g) / sqrt(*acc_g + r->epsilon);
            *acc_d = r->rho * *acc_d + (1.0 - r->rho) * delta * delta;
            *w += lr * delta;
            break;
        }
        case RULE_ADAGRAD: {
            double *accumulator = v;
            *accumulator += g * g;
            *w -= lr * g / sqrt(*accumulator + r->epsilon);
            break;
        }
        case RULE_NADAM: {
            double t = s->iterations + 1;
            *m += (g - *m) * (1.0 - r->beta_1);
            *v += (g * g - *v) * (1.0 - r->beta_2);
            double m_hat = u_t_1 * *m / (1.0 - u_product_t_1) + (1.0 - u_t) * g / (1.0 - u_product_t);
            double v_hat = *v / (1.0 - pow(r->beta_2, t));
            *w -= m_hat * lr / (sqrt(v_hat) + r->epsilon);
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
    char name[80];
    kc_sgd_opts sgd;
    kc_rmsprop_opts rmsprop;
    kc_adam_opts adam;
    kc_adadelta_opts adadelta;
    kc_adagrad_opts adagrad;
    kc_nadam_opts nadam;
    kc_adamw_opts adamw;
    update_rule rule;
} optimizer_case;

#define KERAS_SGD(...) {.kind = RULE_SGD, .learning_rate = 0.01, __VA_ARGS__}
#define KERAS_RMSPROP(...) \
    {.kind = RULE_RMSPROP, .learning_rate = 0.001, .rho = 0.9, .epsilon = 1e-7, __VA_ARGS__}
#define KERAS_ADAM(...)                                                                   \
    {.kind = RULE_ADAM, .learning_rate = 0.001, .beta_1 = 0.9, .beta_2 = 0.999,        \
     .epsilon = 1e-7, __VA_ARGS__}
/* The newer rules with every hyperparameter given (Keras's defaults in the comments); float
 * values that kerac gets as floats are written as (double)<float> so both see the same number. */
#define KERAS_ADADELTA(lr, rho_, eps) /* 0.001, 0.95, 1e-7 */ \
    {.kind = RULE_ADADELTA, .learning_rate = (lr), .rho = (rho_), .epsilon = (eps)}
#define KERAS_ADAGRAD(lr, initial, eps) /* 0.001, 0.1, 1e-7 */                    \
    {.kind = RULE_ADAGRAD, .learning_rate = (lr), .initial_accumulator_value = (initial), \
     .epsilon = (eps)}
#define KERAS_NADAM(lr, b1, b2, eps) /* 0.001, 0.9, 0.999, 1e-7 */                      \
    {.kind = RULE_NADAM, .learning_rate = (lr), .beta_1 = (b1), .beta_2 = (b2), .epsilon = (eps)}
#define KERAS_ADAMW(lr, wd, b2, ams) /* 0.001, 0.004, 0.999, False; beta_1 0.9, epsilon 1e-7 */ \
    {.kind = RULE_ADAM, .learning_rate = (lr), .weight_decay = (wd), .beta_1 = 0.9,             \
     .beta_2 = (b2), .epsilon = 1e-7, .amsgrad = (ams)}

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
        /* Adadelta's default step, lr sqrt(eps) g / sqrt(acc_g + eps), is ~1e-7 of a weight:
         * below this test's tolerance; at the paper's learning rate 1.0 it shows */
        {.name = "Adadelta(learning_rate=1.0)", .adadelta = {.learning_rate = 1.0f},
         .rule = KERAS_ADADELTA(1.0, (double)0.95f, (double)1e-7f)},
        {.name = "Adadelta(learning_rate=1.0, rho=0.5, epsilon=1e-4)",
         .adadelta = {.learning_rate = 1.0f, .rho = 0.5f, .epsilon = 1e-4f},
         .rule = KERAS_ADADELTA(1.0, 0.5, (double)1e-4f)},
        {.name = "Adagrad()", .rule = KERAS_ADAGRAD((double)0.001f, (double)0.1f, (double)1e-7f)},
        {.name = "Adagrad(learning_rate=0.1, initial_accumulator_value=0.5, epsilon=1e-3)",
         .adagrad = {.learning_rate = 0.1f, .initial_accumulator_value = 0.5f, .epsilon = 1e-3f},
         .rule = KERAS_ADAGRAD((double)0.1f, 0.5, (double)1e-3f)},
        {.name = "Nadam()", .rule = KERAS_NADAM((double)0.001f, (double)0.9f, (double)0.999f, (double)1e-7f)},
        {.name = "Nadam(learning_rate=0.01, beta_1=0.5, beta_2=0.5)",
         .nadam = {.learning_rate = 0.01f, .beta_1 = 0.5f, .beta_2 = 0.5f},
         .rule = KERAS_NADAM((double)0.01f, 0.5, 0.5, (double)1e-7f)},
        /* the default decay, 0.004 * 0.001 a step, is 4e-6 of a weight: just above the
         * tolerance; 0.1 * 0.01 (1e-3 a step) makes a wrong decay plain */
        {.name = "AdamW()", .rule = KERAS_ADAMW(0.001, (double)0.004f, 0.999, 0)},
        {.name = "AdamW(learning_rate=0.01, weight_decay=0.1)",
         .adamw = {.learning_rate = 0.01f, .weight_decay = 0.1f},
         .rule = KERAS_ADAMW((double)0.01f, (double)0.1f, 0.999, 0)},
        {.name = "AdamW(weight_decay=0.1, beta_2=0.5, amsgrad=True)",
         .adamw = {.weight_decay = 0.1f, .beta_2 = 0.5f, .amsgrad = 1},
         .rule = KERAS_ADAMW(0.001, (double)0.1f, 0.5, 1)},
    };
    return cr_make_param_array(optimizer_case, cases, sizeof cases / sizeof cases[0]);
}

static kc_optimizer *make_optimizer(const optimizer_case *c) {
    switch (c->rule.kind) {
    case RULE_SGD: return kc_sgd(&c->sgd);
    case RULE_RMSPROP: return kc_rmsprop(&c->rmsprop);
    case RULE_ADAM:
        return c->rule.weight_decay != 0.0 ? kc_adamw(&c->adamw) : kc_adam(&c->adam);
    case RULE_ADADELTA: return kc_adadelta(&c->adadelta);
    case RULE_ADAGRAD: return kc_adagrad(&c->adagrad);
    case RULE_NADAM: return kc_nadam(&c->nadam);
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
    hand_state hand;
    hand_init(&c->rule, &hand, INITIAL_WEIGHTS, N_WEIGHTS);
    double largest_move = 0.0; /* relative, over the steps and weights */
    for (int step = 0; step < STEPS; step++) {
        float y[BATCH], gradient[N_WEIGHTS], w[N_WEIGHTS];
        step_targets(m, step, y);
        double loss;
        KC_CHECK(kc_compute_gradients(m, X, y, BATCH, 1, &loss, gradient, N_WEIGHTS));
        double before_step[N_WEIGHTS];
        memcpy(before_step, hand.w, sizeof before_step);
        hand_step(&c->rule, &hand, gradient, N_WEIGHTS);
        for (int i = 0; i < N_WEIGHTS; i++)
            largest_move = fmax(largest_move, fabs(hand.w[i] - before_step[i]) / fabs(hand.w[i]));
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
    /* steps lost in the tolerance would make the comparison above say nothing */
    cr_expect(largest_move > 100 * REL_TOL, "%s: the largest step moves a weight by %.3g only",
              c->name, largest_move);
    kc_model_free(m);
}

/* The model updates one layer's range at a time (kc_optimizer_update per layer, then
 * kc_optimizer_finish_step): every layer of a step must see that step's scalars (Adam's and
 * Nadam's step count, Nadam's u_product, AdamW's decay), however many layers there are. */
ParameterizedTestParameters(optimizer, per_step_scalars_shared_by_layers) {
    static optimizer_case cases[] = {
        {.name = "Adam()", .rule = KERAS_ADAM(.amsgrad = 0)},
        {.name = "Nadam(learning_rate=0.01, beta_1=0.5, beta_2=0.5)",
         .nadam = {.learning_rate = 0.01f, .beta_1 = 0.5f, .beta_2 = 0.5f},
         .rule = KERAS_NADAM((double)0.01f, 0.5, 0.5, (double)1e-7f)},
        {.name = "AdamW(learning_rate=0.01, weight_decay=0.1)",
         .adamw = {.learning_rate = 0.01f, .weight_decay = 0.1f},
         .rule = KERAS_ADAMW((double)0.01f, (double)0.1f, 0.999, 0)},
        {.name = "Adadelta(learning_rate=1.0)", .adadelta = {.learning_rate = 1.0f},
         .rule = KERAS_ADADELTA(1.0, (double)0.95f, (double)1e-7f)},
        {.name = "Adagrad()", .rule = KERAS_ADAGRAD((double)0.001f, (double)0.1f, (double)1e-7f)},
    };
    return cr_make_param_array(optimizer_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(optimizer_case *c, optimizer, per_step_scalars_shared_by_layers) {
    /* Dense(2) kernel (2, 2), bias; Dense(1) kernel (2, 1), bias */
    static const float initial[N_WEIGHTS_2] = {0.5f, -0.4f, 0.3f, 0.6f, 0.2f, -0.3f,
                                               0.55f, -0.45f, 0.35f};
    cr_log_info("%s", c->name);
    kc_optimizer *opt = make_optimizer(c);
    cr_assert_not_null(opt, "%s: %s", c->name, kc_last_error());
    kc_model *m = kc_sequential(kc_shape1(INPUTS));
    cr_assert_not_null(m);
    KC_CHECK(kc_add(m, kc_dense(2, KC_LINEAR)));
    KC_CHECK(kc_add(m, kc_dense(1, KC_LINEAR)));
    KC_CHECK(kc_compile(m, KC_MEAN_SQUARED_ERROR, opt, 0));
    cr_assert_eq(kc_count_params(m), N_WEIGHTS_2);
    KC_CHECK(kc_set_weights(m, initial, N_WEIGHTS_2));
    hand_state hand;
    hand_init(&c->rule, &hand, initial, N_WEIGHTS_2);
    for (int step = 0; step < STEPS; step++) {
        float y[BATCH], gradient[N_WEIGHTS_2], w[N_WEIGHTS_2];
        step_targets(m, step, y);
        double loss;
        KC_CHECK(kc_compute_gradients(m, X, y, BATCH, 1, &loss, gradient, N_WEIGHTS_2));
        hand_step(&c->rule, &hand, gradient, N_WEIGHTS_2);
        KC_CHECK(kc_train_on_batch(m, X, y, BATCH, NULL));
        KC_CHECK(kc_get_weights(m, w, N_WEIGHTS_2));
        for (int i = 0; i < N_WEIGHTS_2; i++)
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
        {kc_adadelta(NULL), 0.001f, "kc_adadelta(NULL)"},
        {kc_adadelta(&(kc_adadelta_opts){0}), 0.001f, "kc_adadelta(&{0})"},
        {kc_adagrad(NULL), 0.001f, "kc_adagrad(NULL)"},
        {kc_adagrad(&(kc_adagrad_opts){0}), 0.001f, "kc_adagrad(&{0})"},
        {kc_nadam(NULL), 0.001f, "kc_nadam(NULL)"},
        {kc_nadam(&(kc_nadam_opts){0}), 0.001f, "kc_nadam(&{0})"},
        {kc_adamw(NULL), 0.001f, "kc_adamw(NULL)"},
        {kc_adamw(&(kc_adamw_opts){0}), 0.001f, "kc_adamw(&{0})"},
        {kc_adamw(&(kc_adamw_opts){.learning_rate = 0.02f}), 0.02f, "kc_adamw(learning_rate 0.02)"},
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
        /* Adadelta's default steps are tiny (~1e-7 of a weight) but still move float weights */
        {kc_adadelta(NULL), kc_adadelta(&(kc_adadelta_opts){0}),
         kc_adadelta(&(kc_adadelta_opts){.learning_rate = 0.001f, .rho = 0.95f, .epsilon = 1e-7f}),
         "Adadelta"},
        {kc_adagrad(NULL), kc_adagrad(&(kc_adagrad_opts){0}),
         kc_adagrad(&(kc_adagrad_opts){.learning_rate = 0.001f, .initial_accumulator_value = 0.1f,
                                       .epsilon = 1e-7f}),
         "Adagrad"},
        {kc_nadam(NULL), kc_nadam(&(kc_nadam_opts){0}),
         kc_nadam(&(kc_nadam_opts){.learning_rate = 0.001f, .beta_1 = 0.9f, .beta_2 = 0.999f,
                                   .epsilon = 1e-7f}),
         "Nadam"},
        {kc_adamw(NULL), kc_adamw(&(kc_adamw_opts){0}),
         kc_adamw(&(kc_adamw_opts){.learning_rate = 0.001f, .weight_decay = 0.004f,
                                   .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = 1e-7f,
                                   .amsgrad = 0}),
         "AdamW"},
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
    EXPECT_REJECTED(kc_adadelta(&(kc_adadelta_opts){.learning_rate = -1.0f}), "learning_rate");
    EXPECT_REJECTED(kc_adadelta(&(kc_adadelta_opts){.rho = 1.0f}), "rho");
    EXPECT_REJECTED(kc_adadelta(&(kc_adadelta_opts){.rho = -0.5f}), "rho");
    EXPECT_REJECTED(kc_adadelta(&(kc_adadelta_opts){.epsilon = -1e-7f}), "epsilon");
    EXPECT_REJECTED(kc_adagrad(&(kc_adagrad_opts){.learning_rate = NAN}), "learning_rate");
    EXPECT_REJECTED(kc_adagrad(&(kc_adagrad_opts){.initial_accumulator_value = -0.1f}),
                    "initial_accumulator_value");
    EXPECT_REJECTED(kc_adagrad(&(kc_adagrad_opts){.initial_accumulator_value = INFINITY}),
                    "initial_accumulator_value");
    EXPECT_REJECTED(kc_adagrad(&(kc_adagrad_opts){.epsilon = NAN}), "epsilon");
    EXPECT_REJECTED(kc_nadam(&(kc_nadam_opts){.learning_rate = INFINITY}), "learning_rate");
    EXPECT_REJECTED(kc_nadam(&(kc_nadam_opts){.beta_1 = 1.0f}), "beta_1");
    EXPECT_REJECTED(kc_nadam(&(kc_nadam_opts){.beta_2 = 1.5f}), "beta_2");
    EXPECT_REJECTED(kc_nadam(&(kc_nadam_opts){.epsilon = -1.0f}), "epsilon");
    EXPECT_REJECTED(kc_adamw(&(kc_adamw_opts){.learning_rate = -0.001f}), "learning_rate");
    EXPECT_REJECTED(kc_adamw(&(kc_adamw_opts){.weight_decay = -0.004f}), "weight_decay");
    EXPECT_REJECTED(kc_adamw(&(kc_adamw_opts){.weight_decay = NAN}), "weight_decay");
    EXPECT_REJECTED(kc_adamw(&(kc_adamw_opts){.beta_2 = 1.0f}), "beta_2");
}

/* ---- setting the learning rate --------------------------------------------------------------- */

Test(optimizer, set_learning_rate) {
    kc_optimizer *opt = kc_adamw(NULL);
    cr_assert_not_null(opt);
    kc_optimizer_set_learning_rate(opt, 0.25f);
    cr_expect_eq(kc_optimizer_get_learning_rate(opt), 0.25f);
    /* 0 is a learning rate here, not "the default" */
    kc_optimizer_set_learning_rate(opt, 0.0f);
    cr_expect_eq(kc_optimizer_get_learning_rate(opt), 0.0f);
    kc_optimizer_set_learning_rate(opt, 0.5f);
    /* what the constructors reject changes nothing, and says why */
    float bad[] = {-0.1f, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set_unrelated_error();
        kc_optimizer_set_learning_rate(opt, bad[i]);
        cr_expect_eq(kc_optimizer_get_learning_rate(opt), 0.5f, "%g was taken", (double)bad[i]);
        cr_expect(strstr(kc_last_error(), "learning_rate") != NULL, "%g: message \"%s\"",
                  (double)bad[i], kc_last_error());
    }
    kc_optimizer_set_learning_rate(NULL, 0.1f); /* no crash */
    kc_optimizer_free(opt);
}

/* Set on a compiled model's optimizer before training, the new rate is the one that trains:
 * the weights end where an optimizer built with that rate takes them (AdamW: the decay too). */
Test(optimizer, set_learning_rate_takes_effect) {
    float built[N_WEIGHTS], set[N_WEIGHTS], frozen[N_WEIGHTS];
    weights_after_steps(kc_adamw(&(kc_adamw_opts){.learning_rate = 0.01f, .weight_decay = 0.1f}),
                        built);
    kc_optimizer *opt = kc_adamw(&(kc_adamw_opts){.weight_decay = 0.1f});
    kc_optimizer_set_learning_rate(opt, 0.01f);
    weights_after_steps(opt, set);
    opt = kc_sgd(NULL);
    kc_optimizer_set_learning_rate(opt, 0.0f);
    weights_after_steps(opt, frozen);
    for (int i = 0; i < N_WEIGHTS; i++) {
        cr_expect_eq(set[i], built[i], "weight %d: set %.9g, built %.9g", i, (double)set[i],
                     (double)built[i]);
        cr_expect_eq(frozen[i], INITIAL_WEIGHTS[i], "weight %d moved at learning rate 0", i);
    }
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
