/* rnn.c -- recurrent layers (LSTM, GRU, SimpleRNN) over whole sequences. */
#include "internal.h"

const pf_kernel_entry pf_kernels_rnn[] = {
    {NULL, NULL, NULL},
};
