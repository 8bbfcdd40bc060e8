/* conv.c -- convolutions (1-D, 2-D, 3-D; stride, padding, dilation, groups). */
#include "internal.h"

const pf_kernel_entry pf_kernels_conv[] = {
    {NULL, NULL, NULL},
};
