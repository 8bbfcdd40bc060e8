/* random.c -- random ops (dropout masks from a counter-based generator). */
#include "internal.h"

const pf_kernel_entry pf_kernels_random[] = {
    {NULL, NULL, NULL},
};
