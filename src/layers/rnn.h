/* rnn.h: the recurrent layers' link to their kernels (rnn.c) */
#ifndef KERAC_LAYERS_RNN_H
#define KERAC_LAYERS_RNN_H
#include "layer.h"
#include "../ops/rnn.h"
/* the kernels' arguments for a call of recurrent layer l on batch sequences (ctx NULL:
 * inference, no mask); ws is the layer's scratch */
kc_rnn_args kc_rnn_layer_args(const kc_layer *l, int batch, const kc_forward_ctx *ctx);
#endif
