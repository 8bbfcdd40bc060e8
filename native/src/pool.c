/* pool.c -- max/average pooling (1-D, 2-D, 3-D) and global pooling. */
#include "internal.h"

const pf_kernel_entry pf_kernels_pool[] = {
    {NULL, NULL, NULL},
};
