/* rnn.h: the recurrent layers' link to their kernels (rnn.c) */
#ifndef KERAC_LAYERS_RNN_H
#define KERAC_LAYERS_RNN_H
#include "layer.h"
#include "../ops/rnn.h"
/* the kernels' arguments for a call of recurrent layer l on batch sequences (ctx NULL:
 * inference, no mask); ws is the layer's scratch */
kc_rnn_args kc_rnn_layer_args(const kc_layer *l, int batch, const kc_forward_ctx *ctx);
/* 1 for SimpleRNN, LSTM, GRU */
int kc_is_rnn(const kc_layer *l);
int kc_rnn_return_sequences(const kc_layer *l);
/* the states a call returns: 0 without return_state, else 1 (2 for LSTM: h, c) */
int kc_rnn_state_count(const kc_layer *l);
/* a new layer of l's class and options (its weights not copied), go_backwards flipped when
 * flip; NULL when out of memory */
kc_layer *kc_rnn_copy(const kc_layer *l, int flip);
/* Keras's zero_output_for_mask (Bidirectional sets it to return_sequences) */
void kc_rnn_set_zero_output(kc_layer *l, int on);
/* its legacy weight name prefix: "lstm_cell" */
const char *kc_rnn_cell_name(const kc_layer *l);
/* the batch size a stateful recurrent layer's state holds (a Bidirectional's or
 * TimeDistributed's: its inner layers'), 0 when none has run or l is not stateful */
int kc_rnn_state_batch(const kc_layer *l);
/* a test hook: when set, a training call's dropout masks are copied from these (the
 * kernels' layout, kc_rnn_in_keep / kc_rnn_rec_keep: batch x kc_rnn_mask_count x F or u)
 * instead of drawn; NULL (the default): drawn */
typedef struct {
    const float *in, *rec;
} kc_rnn_masks;
extern kc_rnn_masks kc_rnn_test_masks;
#endif
