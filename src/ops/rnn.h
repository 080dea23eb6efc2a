/* rnn.h: the recurrent kernels of SimpleRNN, LSTM and GRU over a whole batch of sequences
 * (rnn.c). The input projection of every timestep is one matrix product; each step is one
 * recurrent product h_{t-1} @ U followed by one fused pass of the gate math; backward through
 * time writes the gate gradients of every step in place and takes the weight gradients with
 * one product each over all steps. No allocation: the workspace (kc_rnn_workspace floats) is
 * kept from forward to backward. */
#ifndef KERAC_OPS_RNN_H
#define KERAC_OPS_RNN_H
#include "kerac.h"

typedef enum { KC_CELL_SIMPLE = 0, KC_CELL_LSTM, KC_CELL_GRU } kc_cell_kind;

typedef struct {
    kc_cell_kind cell;
    int reset_after; /* GRU */
    int B, T, F, u;  /* batch, timesteps, input features, units */
    kc_act act, rec_act;
    int go_backwards, return_sequences;
    /* Keras's zero_output_for_mask: a masked step's output is 0 instead of the previous output
     * (the state is kept either way) */
    int zero_output;
    /* kernel (F, G u), recurrent_kernel (u, G u), bias (G u) or NULL; GRU reset_after: bias
     * (2, 3 u), the input bias then the recurrent one. Gates i f c o (LSTM), z r h (GRU). */
    const float *W, *U, *b;
    const uint8_t *mask; /* B x T bytes, nonzero where the step is real; NULL: none */
    /* dropout: per (sample, feature) factors (0 or 1 / (1 - rate)) reused at every step, B x F
     * for the inputs and B x u for the recurrent state; NULL: none. They live in the
     * workspace (kc_rnn_in_keep / kc_rnn_rec_keep): the caller fills them before forward. */
    int in_dropout, rec_dropout;
    /* Keras 3's implementation 1 (an LSTM or GRU with recurrent_dropout): a mask of its own
     * per gate, G of them for the inputs (B x G x F) and G for the state (B x G x u); gate g's
     * input and recurrent products take mask g (GRU reset_after=False: r * (h m_h)). 0: one
     * mask for all gates. */
    int per_gate;
    float *ws;
} kc_rnn_args;

/* gates per unit: 1, 4, 3 */
int kc_rnn_gates(kc_cell_kind cell);
/* floats of workspace for a's shapes and options */
int64_t kc_rnn_workspace(const kc_rnn_args *a);
/* the masks' count: G with per_gate, else 1 */
int kc_rnn_mask_count(const kc_rnn_args *a);
float *kc_rnn_in_keep(const kc_rnn_args *a);  /* B x count x F, when in_dropout */
float *kc_rnn_rec_keep(const kc_rnn_args *a); /* B x count x u, when rec_dropout */
/* x (B, T, F) -> out (B, T, u) (return_sequences: by processing step) or (B, u); h0 (and c0,
 * LSTM) the initial state (B, u) or NULL for zeros; h_last, c_last (optional) the final
 * state. */
void kc_rnn_forward(const kc_rnn_args *a, const float *x, const float *h0, const float *c0,
                    float *out, float *h_last, float *c_last);
/* after kc_rnn_forward with the same a and x: dx (optional), dW, dU, db (NULL without bias)
 * written, from dout (as out) */
void kc_rnn_backward(const kc_rnn_args *a, const float *x, const float *dout, float *dx,
                     float *dW, float *dU, float *db);
/* the same with the final state's gradients added (dh_last, dc_last (LSTM): (B, u), NULL for
 * none), and the initial state's gradients written to dh0, dc0 (optional) */
void kc_rnn_backward_ex(const kc_rnn_args *a, const float *x, const float *dout,
                        const float *dh_last, const float *dc_last, float *dx, float *dW,
                        float *dU, float *db, float *dh0, float *dc0);
/* activations the recurrent kernels take (derivative from the output) */
int kc_rnn_act_ok(kc_act act);
#endif
