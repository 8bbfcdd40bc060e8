/* norm.cu -- the CUDA twin of norm.c: batch normalisation over (N, C, S) per channel and layer
 * normalisation over the rows of an (R, D) view, forward and backward. One block reduces one
 * channel (or row): the mean first, then the squared deviations around it (two passes, in
 * double), so the statistics are as safe as the CPU's; parameter gradients of layer norm are
 * column sums in row order, one thread per column. No atomics anywhere: fixed-order sums. */
#include "internal.cuh"

#define BLOCK 256

static int check_channel_vector(const pf_tensor *t, int64_t C, const char *what, int dtype) {
    PF_TRY(pf_check_contiguous(t, what));
    if (dtype >= 0) PF_TRY(pf_check_dtype(t, dtype, what));
    else PF_TRY(pf_check_float(t, what));
    PF_CHECK(pf_numel(t) == C, PF_ERR_SHAPE, "%s has %lld elements for %lld channels", what,
             (long long)pf_numel(t), (long long)C);
    return PF_OK;
}

static int check_eps(double eps) {
    PF_CHECK(eps >= 0 && isfinite(eps), PF_ERR_ARGUMENT, "eps must be finite and >= 0, got %g",
             eps);
    return PF_OK;
}

/* a float vector of either dtype (running statistics may differ from x's dtype) */
__device__ __forceinline__ double load_f(const void *p, int dtype, int64_t i) {
    return dtype == PF_FLOAT32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
__device__ __forceinline__ void store_f(void *p, int dtype, int64_t i, double v) {
    if (dtype == PF_FLOAT32) ((float *)p)[i] = (float)v;
    else ((double *)p)[i] = v;
}

/* ---- batch norm: block c owns channel c; element e of the channel is (n, s) ---- */
template <typename T>
__device__ void channel_stats(const T *x, int64_t N, int64_t C, int64_t S, int64_t c,
                              double *mean, double *var) {
    int64_t M = N * S;
    double s = 0;
    for (int64_t e = threadIdx.x; e < M; e += blockDim.x)
        s += (double)x[((e / S) * C + c) * S + e % S];
    *mean = pf_block_sum(s) / (double)M;
    double q = 0;
    for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
        double d = (double)x[((e / S) * C + c) * S + e % S] - *mean;
        q += d * d;
    }
    *var = pf_block_sum(q) / (double)M;
}

template <typename T>
__global__ void bn_train_kernel(int64_t N, int64_t C, int64_t S, const T *x, const T *gamma,
                                const T *beta, T *y, T *mean_out, T *invstd_out, void *rmean,
                                void *rvar, int rdtype, double eps, double momentum) {
    for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
        double mean, var;
        channel_stats(x, N, C, S, c, &mean, &var);
        double invstd = 1.0 / sqrt(var + eps);
        double scale = (double)gamma[c] * invstd, shift = (double)beta[c] - mean * scale;
        for (int64_t e = threadIdx.x; e < N * S; e += blockDim.x) {
            int64_t i = ((e / S) * C + c) * S + e % S;
            y[i] = (T)((double)x[i] * scale + shift);
        }
        if (threadIdx.x == 0) {
            mean_out[c] = (T)mean;
            invstd_out[c] = (T)invstd;
            if (rmean) {
                double M = (double)(N * S), unbiased = M > 1 ? var * M / (M - 1) : var;
                store_f(rmean, rdtype, c,
                        (1 - momentum) * load_f(rmean, rdtype, c) + momentum * mean);
                store_f(rvar, rdtype, c,
                        (1 - momentum) * load_f(rvar, rdtype, c) + momentum * unbiased);
            }
        }
        __syncthreads();
    }
}

template <typename T>
__global__ void bn_grad_kernel(int64_t N, int64_t C, int64_t S, const T *x, const T *gamma,
                               const T *mean_in, const T *invstd_in, const T *g, T *dx,
                               T *dgamma, T *dbeta) {
    for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
        double mean = (double)mean_in[c], invstd = (double)invstd_in[c], M = (double)(N * S);
        double sg = 0, sgx = 0;
        for (int64_t e = threadIdx.x; e < N * S; e += blockDim.x) {
            int64_t i = ((e / S) * C + c) * S + e % S;
            sg += (double)g[i];
            sgx += (double)g[i] * ((double)x[i] - mean);
        }
        sg = pf_block_sum(sg);
        sgx = pf_block_sum(sgx);
        /* dx = gamma*invstd * (g - sg/M - (x - mean) * invstd^2 * sgx/M) */
        double k = (double)gamma[c] * invstd, cx = -k * invstd * invstd * sgx / M;
        for (int64_t e = threadIdx.x; e < N * S; e += blockDim.x) {
            int64_t i = ((e / S) * C + c) * S + e % S;
            dx[i] = (T)(k * (double)g[i] - k * sg / M + cx * ((double)x[i] - mean));
        }
        if (threadIdx.x == 0) {
            dgamma[c] = (T)(sgx * invstd);
            dbeta[c] = (T)sg;
        }
        __syncthreads();
    }
}

template <typename T>
__global__ void bn_eval_kernel(int64_t N, int64_t C, int64_t S, const T *x, const T *gamma,
                               const T *beta, const void *rmean, const void *rvar, int rdtype,
                               double eps, T *y) {
    PF_GRID_LOOP(i, N * C * S) {
        int64_t c = (i / S) % C;
        double scale = (double)gamma[c] / sqrt(load_f(rvar, rdtype, c) + eps);
        double shift = (double)beta[c] - load_f(rmean, rdtype, c) * scale;
        y[i] = (T)((double)x[i] * scale + shift);
    }
}

static int check_bn_input(const pf_tensor *x, const char *what) {
    PF_TRY(pf_check_contiguous(x, what));
    PF_TRY(pf_check_float(x, what));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "%s must be viewed as (batch, channels, spatial), got %d "
             "dims", what, x->ndim);
    return PF_OK;
}

static unsigned channel_grid(int64_t C) { return (unsigned)(C < 65535 ? C : 65535); }

static int k_batch_norm_train(const pf_args *a) {
    PF_CHECK(a != NULL, PF_ERR_ARGUMENT, "null argument block");
    PF_CHECK(a->n_out == 3 || a->n_out == 5, PF_ERR_ARGUMENT,
             "expected 3 outputs (y, mean, invstd) or 5 (with running_mean, running_var), got %d",
             a->n_out);
    PF_TRY(pf_check_arity(a, 3, 3, a->n_out));
    PF_TRY(pf_check_attrs(a, 0, 2));
    const pf_tensor *x = a->inputs[0];
    PF_TRY(check_bn_input(x, "x"));
    int64_t N = x->shape[0], C = x->shape[1], S = x->shape[2];
    PF_TRY(check_channel_vector(a->inputs[1], C, "gamma", x->dtype));
    PF_TRY(check_channel_vector(a->inputs[2], C, "beta", x->dtype));
    PF_TRY(pf_check_contiguous(a->outputs[0], "y"));
    PF_TRY(pf_check_same_shape(x, a->outputs[0], "x", "y"));
    PF_TRY(pf_check_dtype(a->outputs[0], x->dtype, "y"));
    PF_TRY(check_channel_vector(a->outputs[1], C, "mean", x->dtype));
    PF_TRY(check_channel_vector(a->outputs[2], C, "invstd", x->dtype));
    int update = a->n_out == 5;
    if (update) {
        PF_TRY(check_channel_vector(a->outputs[3], C, "running_mean", -1));
        PF_TRY(check_channel_vector(a->outputs[4], C, "running_var", -1));
        PF_TRY(pf_check_dtype(a->outputs[4], a->outputs[3]->dtype, "running_var"));
    }
    double eps = a->fattr[0], momentum = a->fattr[1];
    PF_TRY(check_eps(eps));
    PF_CHECK(momentum >= 0 && momentum <= 1, PF_ERR_ARGUMENT, "momentum must be in [0, 1], got %g",
             momentum);
    PF_CHECK(N * S > 1 || C == 0, PF_ERR_SHAPE,
             "training needs more than one value per channel, got input (%lld, %lld, %lld)",
             (long long)N, (long long)C, (long long)S);
    if (C == 0) return PF_OK;
    void *rmean = update ? a->outputs[3]->data : NULL, *rvar = update ? a->outputs[4]->data : NULL;
    int rdtype = update ? a->outputs[3]->dtype : PF_FLOAT32;
    PF_FLOAT_DISPATCH(x->dtype, T, bn_train_kernel<T><<<channel_grid(C), BLOCK, 0, pf_stream()>>>(
        N, C, S, (const T *)x->data, (const T *)a->inputs[1]->data,
        (const T *)a->inputs[2]->data, (T *)a->outputs[0]->data, (T *)a->outputs[1]->data,
        (T *)a->outputs[2]->data, rmean, rvar, rdtype, eps, momentum));
    return PF_LAUNCHED();
}

static int k_batch_norm_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 5, 5, 3));
    const pf_tensor *x = a->inputs[0], *g = a->inputs[4];
    PF_TRY(check_bn_input(x, "x"));
    int64_t N = x->shape[0], C = x->shape[1], S = x->shape[2];
    PF_TRY(check_channel_vector(a->inputs[1], C, "gamma", x->dtype));
    PF_TRY(check_channel_vector(a->inputs[2], C, "mean", x->dtype));
    PF_TRY(check_channel_vector(a->inputs[3], C, "invstd", x->dtype));
    PF_TRY(pf_check_contiguous(g, "grad"));
    PF_TRY(pf_check_same_shape(x, g, "x", "grad"));
    PF_TRY(pf_check_dtype(g, x->dtype, "grad"));
    PF_TRY(pf_check_contiguous(a->outputs[0], "dx"));
    PF_TRY(pf_check_same_shape(x, a->outputs[0], "x", "dx"));
    PF_TRY(pf_check_dtype(a->outputs[0], x->dtype, "dx"));
    PF_TRY(check_channel_vector(a->outputs[1], C, "dgamma", x->dtype));
    PF_TRY(check_channel_vector(a->outputs[2], C, "dbeta", x->dtype));
    PF_CHECK(N * S > 0 || C == 0, PF_ERR_SHAPE, "the batch is empty");
    if (C == 0) return PF_OK;
    PF_FLOAT_DISPATCH(x->dtype, T, bn_grad_kernel<T><<<channel_grid(C), BLOCK, 0, pf_stream()>>>(
        N, C, S, (const T *)x->data, (const T *)a->inputs[1]->data,
        (const T *)a->inputs[2]->data, (const T *)a->inputs[3]->data, (const T *)g->data,
        (T *)a->outputs[0]->data, (T *)a->outputs[1]->data, (T *)a->outputs[2]->data));
    return PF_LAUNCHED();
}

static int k_batch_norm_eval(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 5, 5, 1));
    PF_TRY(pf_check_attrs(a, 0, 1));
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    PF_TRY(check_bn_input(x, "x"));
    int64_t N = x->shape[0], C = x->shape[1], S = x->shape[2];
    PF_TRY(check_channel_vector(a->inputs[1], C, "gamma", x->dtype));
    PF_TRY(check_channel_vector(a->inputs[2], C, "beta", x->dtype));
    PF_TRY(check_channel_vector(a->inputs[3], C, "running_mean", -1));
    PF_TRY(check_channel_vector(a->inputs[4], C, "running_var", -1));
    PF_TRY(pf_check_dtype(a->inputs[4], a->inputs[3]->dtype, "running_var"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_same_shape(x, y, "x", "y"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    PF_TRY(check_eps(a->fattr[0]));
    int64_t n = N * C * S;
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(x->dtype, T, bn_eval_kernel<T><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
        N, C, S, (const T *)x->data, (const T *)a->inputs[1]->data,
        (const T *)a->inputs[2]->data, a->inputs[3]->data, a->inputs[4]->data,
        a->inputs[3]->dtype, a->fattr[0], (T *)y->data));
    return PF_LAUNCHED();
}

/* ---- layer norm: block r owns row r ---- */
template <typename T>
__global__ void ln_kernel(int64_t R, int64_t D, const T *x, const T *gamma, const T *beta, T *y,
                          T *mean_out, T *rstd_out, double eps) {
    for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
        const T *xr = x + r * D;
        double s = 0;
        for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += (double)xr[i];
        double mean = pf_block_sum(s) / (double)D, q = 0;
        for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
            double d = (double)xr[i] - mean;
            q += d * d;
        }
        double rstd = 1.0 / sqrt(pf_block_sum(q) / (double)D + eps);
        for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
            y[r * D + i] = (T)(((double)xr[i] - mean) * rstd * (double)gamma[i] +
                               (double)beta[i]);
        if (threadIdx.x == 0) {
            mean_out[r] = (T)mean;
            rstd_out[r] = (T)rstd;
        }
        __syncthreads();
    }
}

/* dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = g * gamma */
template <typename T>
__global__ void ln_grad_kernel(int64_t R, int64_t D, const T *x, const T *gamma,
                               const T *mean_in, const T *rstd_in, const T *g, T *dx) {
    for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
        double mean = (double)mean_in[r], rstd = (double)rstd_in[r], a = 0, b = 0;
        for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
            double xhat = ((double)x[r * D + i] - mean) * rstd;
            double dxhat = (double)g[r * D + i] * (double)gamma[i];
            a += dxhat;
            b += dxhat * xhat;
        }
        a = pf_block_sum(a) / (double)D;
        b = pf_block_sum(b) / (double)D;
        for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
            double xhat = ((double)x[r * D + i] - mean) * rstd;
            double dxhat = (double)g[r * D + i] * (double)gamma[i];
            dx[r * D + i] = (T)(rstd * (dxhat - a - xhat * b));
        }
        __syncthreads();
    }
}

template <typename T>
__global__ void ln_param_grad_kernel(int64_t R, int64_t D, const T *x, const T *mean_in,
                                     const T *rstd_in, const T *g, T *dgamma, T *dbeta) {
    PF_GRID_LOOP(i, D) {
        double sg = 0, sb = 0;
        for (int64_t r = 0; r < R; r++) {
            double gi = (double)g[r * D + i];
            sg += gi * ((double)x[r * D + i] - (double)mean_in[r]) * (double)rstd_in[r];
            sb += gi;
        }
        dgamma[i] = (T)sg;
        dbeta[i] = (T)sb;
    }
}

static int check_ln_rows(const pf_tensor *x, const char *what) {
    PF_TRY(pf_check_contiguous(x, what));
    PF_TRY(pf_check_float(x, what));
    PF_CHECK(x->ndim == 2, PF_ERR_SHAPE, "%s must be viewed as (rows, normalized), got %d dims",
             what, x->ndim);
    return PF_OK;
}

static unsigned row_grid(int64_t R) { return (unsigned)(R < 65535 * 16 ? R : 65535 * 16); }

static int k_layer_norm(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 3, 3, 3));
    PF_TRY(pf_check_attrs(a, 0, 1));
    const pf_tensor *x = a->inputs[0];
    PF_TRY(check_ln_rows(x, "x"));
    int64_t R = x->shape[0], D = x->shape[1];
    PF_TRY(check_channel_vector(a->inputs[1], D, "gamma", x->dtype));
    PF_TRY(check_channel_vector(a->inputs[2], D, "beta", x->dtype));
    PF_TRY(pf_check_contiguous(a->outputs[0], "y"));
    PF_TRY(pf_check_same_shape(x, a->outputs[0], "x", "y"));
    PF_TRY(pf_check_dtype(a->outputs[0], x->dtype, "y"));
    PF_TRY(check_channel_vector(a->outputs[1], R, "mean", x->dtype));
    PF_TRY(check_channel_vector(a->outputs[2], R, "rstd", x->dtype));
    PF_TRY(check_eps(a->fattr[0]));
    PF_CHECK(D > 0 || R == 0, PF_ERR_SHAPE, "cannot normalise over zero elements");
    if (R == 0) return PF_OK;
    PF_FLOAT_DISPATCH(x->dtype, T, ln_kernel<T><<<row_grid(R), BLOCK, 0, pf_stream()>>>(
        R, D, (const T *)x->data, (const T *)a->inputs[1]->data, (const T *)a->inputs[2]->data,
        (T *)a->outputs[0]->data, (T *)a->outputs[1]->data, (T *)a->outputs[2]->data,
        a->fattr[0]));
    return PF_LAUNCHED();
}

static int k_layer_norm_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 5, 5, 3));
    const pf_tensor *x = a->inputs[0], *g = a->inputs[4];
    PF_TRY(check_ln_rows(x, "x"));
    int64_t R = x->shape[0], D = x->shape[1];
    PF_TRY(check_channel_vector(a->inputs[1], D, "gamma", x->dtype));
    PF_TRY(check_channel_vector(a->inputs[2], R, "mean", x->dtype));
    PF_TRY(check_channel_vector(a->inputs[3], R, "rstd", x->dtype));
    PF_TRY(pf_check_contiguous(g, "grad"));
    PF_TRY(pf_check_same_shape(x, g, "x", "grad"));
    PF_TRY(pf_check_dtype(g, x->dtype, "grad"));
    PF_TRY(pf_check_contiguous(a->outputs[0], "dx"));
    PF_TRY(pf_check_same_shape(x, a->outputs[0], "x", "dx"));
    PF_TRY(pf_check_dtype(a->outputs[0], x->dtype, "dx"));
    PF_TRY(check_channel_vector(a->outputs[1], D, "dgamma", x->dtype));
    PF_TRY(check_channel_vector(a->outputs[2], D, "dbeta", x->dtype));
    if (D == 0) return PF_OK;
    PF_FLOAT_DISPATCH(x->dtype, T,
        if (R > 0)
            ln_grad_kernel<T><<<row_grid(R), BLOCK, 0, pf_stream()>>>(
                R, D, (const T *)x->data, (const T *)a->inputs[1]->data,
                (const T *)a->inputs[2]->data, (const T *)a->inputs[3]->data,
                (const T *)g->data, (T *)a->outputs[0]->data);
        ln_param_grad_kernel<T><<<pf_blocks(D), PF_THREADS, 0, pf_stream()>>>(
            R, D, (const T *)x->data, (const T *)a->inputs[2]->data,
            (const T *)a->inputs[3]->data, (const T *)g->data, (T *)a->outputs[1]->data,
            (T *)a->outputs[2]->data));
    return PF_LAUNCHED();
}

const pf_kernel_entry pf_cuda_kernels_norm[] = {
    {"batch_norm_train", k_batch_norm_train, NULL},
    {"batch_norm_eval", k_batch_norm_eval, NULL},
    {"batch_norm_grad", k_batch_norm_grad, NULL},
    {"layer_norm", k_layer_norm, NULL},
    {"layer_norm_grad", k_layer_norm_grad, NULL},
    {NULL, NULL, NULL},
};
