/* reduce.cu -- the CUDA twin of reduce.c and nn.c: sum/mean/max/min/argmax/argmin/prod over
 * the middle axis of an (O, R, I) view; softmax and log-softmax with their gradients; the fused
 * losses (cross-entropy from logits, mean squared error) with theirs. Sums run in double in a
 * fixed order, so results do not depend on scheduling (a CUDA-graph replay repeats the bits). */
#include "internal.cuh"

#define BLOCK 256
enum { RED_NONE = 0, RED_MEAN = 1, RED_SUM = 2 };

template <typename T> struct acc_of { typedef double type; };
template <> struct acc_of<int32_t> { typedef int64_t type; };
template <> struct acc_of<int64_t> { typedef int64_t type; };

/* a running extreme: NaN wins (numpy), then the larger (smaller) value, then the lower index */
template <typename T> struct extreme {
    T v;
    int64_t i;
};
template <typename T>
__device__ __forceinline__ extreme<T> better(extreme<T> a, extreme<T> b, int is_max) {
    bool an = a.v != a.v, bn = b.v != b.v;
    if (an || bn) return an && (!bn || a.i < b.i) ? a : b;
    if (a.v == b.v) return a.i < b.i ? a : b;
    return (is_max ? a.v > b.v : a.v < b.v) ? a : b;
}

template <typename T>
__device__ __forceinline__ extreme<T> block_extreme(extreme<T> e, int is_max) {
    __shared__ T vals[BLOCK];
    __shared__ int64_t idx[BLOCK];
    vals[threadIdx.x] = e.v;
    idx[threadIdx.x] = e.i;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            extreme<T> a = {vals[threadIdx.x], idx[threadIdx.x]};
            extreme<T> b = {vals[threadIdx.x + s], idx[threadIdx.x + s]};
            extreme<T> r = better(a, b, is_max);
            vals[threadIdx.x] = r.v;
            idx[threadIdx.x] = r.i;
        }
        __syncthreads();
    }
    extreme<T> r = {vals[0], idx[0]};
    return r;
}

/* block-wide sum/product of an integer accumulator, in a fixed order */
__device__ __forceinline__ int64_t block_int(int64_t v, int prod) {
    __shared__ int64_t vals[BLOCK];
    vals[threadIdx.x] = v;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s)
            vals[threadIdx.x] = prod ? (int64_t)((uint64_t)vals[threadIdx.x] *
                                                 (uint64_t)vals[threadIdx.x + s])
                                     : (int64_t)((uint64_t)vals[threadIdx.x] +
                                                 (uint64_t)vals[threadIdx.x + s]);
        __syncthreads();
    }
    return vals[0];
}

template <typename T> __device__ __forceinline__ double block_acc(double v, int prod) {
    if (!prod) return pf_block_sum(v);
    __shared__ double vals[BLOCK];
    vals[threadIdx.x] = v;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) vals[threadIdx.x] *= vals[threadIdx.x + s];
        __syncthreads();
    }
    return vals[0];
}
template <> __device__ __forceinline__ double block_acc<int32_t>(double v, int prod) { return v; }
template <> __device__ __forceinline__ double block_acc<int64_t>(double v, int prod) { return v; }

/* one block per output element: a strided run of R values */
template <typename T>
__global__ void reduce_block_kernel(int op, int64_t O, int64_t R, int64_t I, const T *x,
                                    void *y) {
    typedef typename acc_of<T>::type ACC;
    for (int64_t out = blockIdx.x; out < O * I; out += gridDim.x) {
        int64_t o = out / I, i = out % I;
        const T *row = x + o * R * I + i;
        if (op == PF_R_SUM || op == PF_R_MEAN || op == PF_R_PROD) {
            int prod = op == PF_R_PROD;
            ACC acc = prod ? (ACC)1 : (ACC)0;
            for (int64_t r = threadIdx.x; r < R; r += BLOCK)
                acc = prod ? (ACC)(acc * (ACC)row[r * I]) : (ACC)(acc + (ACC)row[r * I]);
            ACC total;
            if (sizeof(ACC) == sizeof(int64_t) && (ACC)0.5 == 0)
                total = (ACC)block_int((int64_t)acc, prod);
            else
                total = (ACC)block_acc<T>((double)acc, prod);
            if (threadIdx.x == 0)
                ((T *)y)[out] = (T)(op == PF_R_MEAN ? total / (ACC)R : total);
        } else {
            int is_max = op == PF_R_MAX || op == PF_R_ARGMAX;
            extreme<T> e = {row[0], 0};
            for (int64_t r = threadIdx.x; r < R; r += BLOCK) {
                extreme<T> c = {row[r * I], r};
                e = better(e, c, is_max);
            }
            e = block_extreme(e, is_max);
            if (threadIdx.x == 0) {
                if (op == PF_R_ARGMAX || op == PF_R_ARGMIN) ((int64_t *)y)[out] = e.i;
                else ((T *)y)[out] = e.v;
            }
        }
        __syncthreads();
    }
}

static int k_reduce(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "x must be viewed as (outer, reduced, inner), got %d dims",
             x->ndim);
    int op = pf_code(a->iattr[0]);
    PF_CHECK(op >= 0 && op < PF_R_COUNT, PF_ERR_ARGUMENT, "unknown reduce op %d", op);
    int64_t O = x->shape[0], R = x->shape[1], I = x->shape[2];
    PF_CHECK(pf_numel(y) == O * I, PF_ERR_SHAPE, "y has %lld elements, expected %lld",
             (long long)pf_numel(y), (long long)(O * I));
    int arg = op == PF_R_ARGMAX || op == PF_R_ARGMIN;
    PF_TRY(pf_check_dtype(y, arg ? PF_INT64 : x->dtype, "y"));
    PF_CHECK(x->dtype != PF_BOOL, PF_ERR_DTYPE, "reduce does not take bool inputs");
    PF_CHECK(R > 0 || op == PF_R_SUM || op == PF_R_PROD || op == PF_R_MEAN || O * I == 0,
             PF_ERR_SHAPE, "cannot take %s over an empty axis",
             op == PF_R_MEAN ? "the mean" : op == PF_R_MAX || op == PF_R_ARGMAX ? "the maximum"
                                                                               : "the minimum");
    PF_CHECK(!(op == PF_R_MEAN && (x->dtype == PF_INT32 || x->dtype == PF_INT64)), PF_ERR_DTYPE,
             "mean needs a float input, got %s", pf_dtype_name(x->dtype));
    if (O * I == 0) return PF_OK;
    unsigned grid = (unsigned)(O * I < 65535 * 16 ? O * I : 65535 * 16);
    switch (x->dtype) {
    case PF_FLOAT32:
        reduce_block_kernel<float><<<grid, BLOCK, 0, pf_stream()>>>(op, O, R, I,
            (const float *)x->data, y->data);
        break;
    case PF_FLOAT64:
        reduce_block_kernel<double><<<grid, BLOCK, 0, pf_stream()>>>(op, O, R, I,
            (const double *)x->data, y->data);
        break;
    case PF_INT32:
        reduce_block_kernel<int32_t><<<grid, BLOCK, 0, pf_stream()>>>(op, O, R, I,
            (const int32_t *)x->data, y->data);
        break;
    default:
        reduce_block_kernel<int64_t><<<grid, BLOCK, 0, pf_stream()>>>(op, O, R, I,
            (const int64_t *)x->data, y->data);
        break;
    }
    return PF_LAUNCHED();
}

const pf_kernel_entry pf_cuda_kernels_reduce[] = {
    {"reduce", k_reduce, NULL},
    {NULL, NULL, NULL},
};

/* ---- softmax family: x viewed as (O, R, I), normalised over R; one thread per line ---- */
template <typename T>
__global__ void softmax_kernel(int log_, int grad, int64_t O, int64_t R, int64_t I, const T *xs,
                               const T *gs, T *ys) {
    PF_GRID_LOOP(l, O * I) {
        int64_t o = l / I, i = l % I;
        const T *x = xs + o * R * I + i;
        T *y = ys + o * R * I + i;
        if (!grad) {
            T m = x[0];
            for (int64_t r = 1; r < R; r++) m = x[r * I] > m ? x[r * I] : m;
            T s = 0;
            if (log_) {
                for (int64_t r = 0; r < R; r++) s += exp(x[r * I] - m);
                T ls = log(s);     /* (x - m) - log(s): m + log(s) would round log(s) away */
                for (int64_t r = 0; r < R; r++) y[r * I] = (x[r * I] - m) - ls;
            } else {
                for (int64_t r = 0; r < R; r++) { T e = exp(x[r * I] - m); y[r * I] = e; s += e; }
                T inv = (T)1 / s;
                for (int64_t r = 0; r < R; r++) y[r * I] *= inv;
            }
        } else {
            const T *g = gs + o * R * I + i;
            T s = 0;
            if (log_) {
                for (int64_t r = 0; r < R; r++) s += g[r * I];
                for (int64_t r = 0; r < R; r++) y[r * I] = g[r * I] - exp(x[r * I]) * s;
            } else {
                for (int64_t r = 0; r < R; r++) s += g[r * I] * x[r * I];
                for (int64_t r = 0; r < R; r++) y[r * I] = x[r * I] * (g[r * I] - s);
            }
        }
    }
}

static int softmax_common(const pf_args *a, int log_, int grad) {
    PF_TRY(pf_check_arity(a, grad ? 2 : 1, grad ? 2 : 1, 1));
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(x, grad ? "y" : "x"));
    PF_TRY(pf_check_contiguous(y, grad ? "dx" : "y"));
    PF_TRY(pf_check_float(x, "x"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "x must be viewed as (outer, axis, inner)");
    PF_CHECK(pf_numel(y) == pf_numel(x), PF_ERR_SHAPE, "output size differs from input size");
    const void *g = NULL;
    if (grad) {
        PF_TRY(pf_check_contiguous(a->inputs[1], "grad"));
        PF_TRY(pf_check_dtype(a->inputs[1], x->dtype, "grad"));
        PF_CHECK(pf_numel(a->inputs[1]) == pf_numel(x), PF_ERR_SHAPE, "grad size differs");
        g = a->inputs[1]->data;
    }
    int64_t O = x->shape[0], R = x->shape[1], I = x->shape[2];
    if (O * I == 0 || R == 0) return PF_OK;
    PF_FLOAT_DISPATCH(x->dtype, T, softmax_kernel<T><<<pf_blocks(O * I), PF_THREADS, 0,
                      pf_stream()>>>(log_, grad, O, R, I, (const T *)x->data, (const T *)g,
                                     (T *)y->data));
    return PF_LAUNCHED();
}
static int k_softmax(const pf_args *a) { return softmax_common(a, 0, 0); }
static int k_log_softmax(const pf_args *a) { return softmax_common(a, 1, 0); }
static int k_softmax_grad(const pf_args *a) { return softmax_common(a, 0, 1); }
static int k_log_softmax_grad(const pf_args *a) { return softmax_common(a, 1, 1); }

/* ---- cross-entropy from logits ----
 * Labels live on the device, so their range is checked there (reported by the next
 * synchronize, naming the kernel). The loss is one block's fixed-order sum. */
template <typename L>
__device__ __forceinline__ int64_t label_ok(const L *lab, int64_t n, int64_t C, int64_t ignore,
                                            int kernel) {
    int64_t t = (int64_t)lab[n];
    if (t == ignore) return -1;
    if (t < 0 || t >= C) {
        pf_dev_fail(PF_DEV_LABEL, kernel, t, n, C);
        return -1;
    }
    return t;
}

template <typename T, typename L>
__global__ void ce_kernel(int red, int64_t N, int64_t C, int64_t ignore, const T *z, const L *lab,
                          T *out, int kernel) {
    double total = 0, count = 0;
    for (int64_t n = threadIdx.x; n < N; n += blockDim.x) {
        int64_t t = label_ok(lab, n, C, ignore, kernel);
        double loss = 0;
        if (t >= 0) {
            const T *row = z + n * C;
            T m = row[0];
            for (int64_t c = 1; c < C; c++) m = row[c] > m ? row[c] : m;
            T s = 0;
            for (int64_t c = 0; c < C; c++) s += exp(row[c] - m);
            loss = (double)m + log((double)s) - (double)row[t];
            if (!isfinite(loss)) pf_dev_fail(PF_DEV_LOSS, kernel, 0, n, 0);
            count += 1;
        }
        if (red == RED_NONE) out[n] = (T)loss;
        total += loss;
    }
    total = pf_block_sum(total);
    count = pf_block_sum(count);
    if (red != RED_NONE && threadIdx.x == 0)
        out[0] = (T)(red == RED_MEAN ? (count > 0 ? total / count : NAN) : total);
}

template <typename T, typename L>
__global__ void ce_grad_kernel(int red, int64_t N, int64_t C, int64_t ignore, const T *z,
                               const L *lab, const T *g, T *dz, int kernel) {
    double scale = 1;
    if (red == RED_MEAN) {   /* every block counts the labels: no scratch memory needed */
        double count = 0;
        for (int64_t n = threadIdx.x; n < N; n += blockDim.x)
            count += (int64_t)lab[n] != ignore;
        count = pf_block_sum(count);
        scale = count > 0 ? 1.0 / count : 0.0;
    }
    for (int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; n < N;
         n += (int64_t)blockDim.x * gridDim.x) {
        const T *row = z + n * C;
        T *d = dz + n * C;
        int64_t t = label_ok(lab, n, C, ignore, kernel);
        if (t < 0) {
            for (int64_t c = 0; c < C; c++) d[c] = 0;
            continue;
        }
        T gs = (T)((red == RED_NONE ? (double)g[n] : (double)g[0]) * scale);
        T m = row[0];
        for (int64_t c = 1; c < C; c++) m = row[c] > m ? row[c] : m;
        T s = 0;
        for (int64_t c = 0; c < C; c++) { T e = exp(row[c] - m); d[c] = e; s += e; }
        T k = gs / s;
        for (int64_t c = 0; c < C; c++) d[c] *= k;
        d[t] -= gs;
    }
}

static int check_ce_args(const pf_args *a, int64_t *N, int64_t *C, int *reduction,
                         int64_t *ignore) {
    const pf_tensor *z = a->inputs[0], *lab = a->inputs[1];
    PF_TRY(pf_check_contiguous(z, "logits"));
    PF_TRY(pf_check_float(z, "logits"));
    PF_CHECK(z->ndim == 2, PF_ERR_SHAPE, "logits must be (batch, classes), got %d dims", z->ndim);
    PF_TRY(pf_check_contiguous(lab, "labels"));
    PF_CHECK(lab->dtype == PF_INT32 || lab->dtype == PF_INT64, PF_ERR_DTYPE,
             "labels must be int32 or int64, got %s", pf_dtype_name(lab->dtype));
    *N = z->shape[0];
    *C = z->shape[1];
    PF_CHECK(pf_numel(lab) == *N, PF_ERR_SHAPE, "%lld labels for %lld rows of logits",
             (long long)pf_numel(lab), (long long)*N);
    *reduction = a->n_iattr > 0 && a->iattr ? pf_code(a->iattr[0]) : RED_MEAN;
    *ignore = a->n_iattr > 1 && a->iattr ? a->iattr[1] : -100;
    PF_CHECK(*reduction >= RED_NONE && *reduction <= RED_SUM, PF_ERR_ARGUMENT,
             "unknown reduction %d", *reduction);
    PF_CHECK(*C > 0 || *N == 0, PF_ERR_SHAPE, "logits have no classes");
    return PF_OK;
}

static int k_cross_entropy(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    int64_t N = 0, C = 0, ignore = -100;
    int red = RED_MEAN;
    PF_TRY(check_ce_args(a, &N, &C, &red, &ignore));
    const pf_tensor *z = a->inputs[0], *lab = a->inputs[1], *out = a->outputs[0];
    PF_TRY(pf_check_contiguous(out, "loss"));
    PF_TRY(pf_check_dtype(out, z->dtype, "loss"));
    PF_CHECK(pf_numel(out) == (red == RED_NONE ? N : 1), PF_ERR_SHAPE,
             "loss has %lld elements, expected %lld", (long long)pf_numel(out),
             (long long)(red == RED_NONE ? N : 1));
    if (N == 0 && red == RED_NONE) return PF_OK;
    int k = pf_current_kernel();
    PF_FLOAT_DISPATCH(z->dtype, T,
        if (lab->dtype == PF_INT32)
            ce_kernel<T, int32_t><<<1, 1024, 0, pf_stream()>>>(red, N, C, ignore,
                (const T *)z->data, (const int32_t *)lab->data, (T *)out->data, k);
        else
            ce_kernel<T, int64_t><<<1, 1024, 0, pf_stream()>>>(red, N, C, ignore,
                (const T *)z->data, (const int64_t *)lab->data, (T *)out->data, k));
    return PF_LAUNCHED();
}

static int k_cross_entropy_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 3, 3, 1));
    int64_t N = 0, C = 0, ignore = -100;
    int red = RED_MEAN;
    PF_TRY(check_ce_args(a, &N, &C, &red, &ignore));
    const pf_tensor *z = a->inputs[0], *lab = a->inputs[1], *g = a->inputs[2], *dz = a->outputs[0];
    PF_TRY(pf_check_contiguous(g, "grad"));
    PF_TRY(pf_check_dtype(g, z->dtype, "grad"));
    PF_CHECK(pf_numel(g) == (red == RED_NONE ? N : 1), PF_ERR_SHAPE,
             "grad has %lld elements, expected %lld", (long long)pf_numel(g),
             (long long)(red == RED_NONE ? N : 1));
    PF_TRY(pf_check_contiguous(dz, "dlogits"));
    PF_TRY(pf_check_same_shape(z, dz, "logits", "dlogits"));
    PF_TRY(pf_check_dtype(dz, z->dtype, "dlogits"));
    if (N == 0) return PF_OK;
    int k = pf_current_kernel();
    unsigned grid = pf_blocks(N);
    PF_FLOAT_DISPATCH(z->dtype, T,
        if (lab->dtype == PF_INT32)
            ce_grad_kernel<T, int32_t><<<grid, PF_THREADS, 0, pf_stream()>>>(red, N, C, ignore,
                (const T *)z->data, (const int32_t *)lab->data, (const T *)g->data,
                (T *)dz->data, k);
        else
            ce_grad_kernel<T, int64_t><<<grid, PF_THREADS, 0, pf_stream()>>>(red, N, C, ignore,
                (const T *)z->data, (const int64_t *)lab->data, (const T *)g->data,
                (T *)dz->data, k));
    return PF_LAUNCHED();
}

/* ---- mean squared error ---- */
template <typename T>
__global__ void mse_kernel(int red, int64_t n, const T *p, const T *t, T *out, int kernel) {
    double total = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        double d = (double)p[i] - (double)t[i];
        if (!isfinite(d)) pf_dev_fail(PF_DEV_LOSS, kernel, 0, i, 0);
        if (red == RED_NONE) out[i] = (T)(d * d);
        total += d * d;
    }
    total = pf_block_sum(total);
    if (red != RED_NONE && threadIdx.x == 0)
        out[0] = (T)(red == RED_MEAN ? total / (double)n : total);
}

template <typename T>
__global__ void mse_grad_kernel(int red, int64_t n, double scale, const T *p, const T *t,
                                const T *g, T *d) {
    PF_GRID_LOOP(i, n) {
        if (red == RED_NONE) d[i] = (T)2 * (p[i] - t[i]) * g[i];
        else d[i] = (T)(scale * (double)g[0]) * (p[i] - t[i]);
    }
}

static int k_mse(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    const pf_tensor *p = a->inputs[0], *t = a->inputs[1], *out = a->outputs[0];
    PF_TRY(pf_check_contiguous(p, "prediction"));
    PF_TRY(pf_check_contiguous(t, "target"));
    PF_TRY(pf_check_contiguous(out, "loss"));
    PF_TRY(pf_check_float(p, "prediction"));
    PF_TRY(pf_check_dtype(t, p->dtype, "target"));
    PF_TRY(pf_check_dtype(out, p->dtype, "loss"));
    PF_TRY(pf_check_same_shape(p, t, "prediction", "target"));
    int red = a->n_iattr > 0 && a->iattr ? pf_code(a->iattr[0]) : RED_MEAN;
    PF_CHECK(red >= RED_NONE && red <= RED_SUM, PF_ERR_ARGUMENT, "unknown reduction %d", red);
    int64_t n = pf_numel(p);
    PF_CHECK(pf_numel(out) == (red == RED_NONE ? n : 1), PF_ERR_SHAPE, "loss has the wrong size");
    if (n == 0 && red == RED_NONE) return PF_OK;
    PF_FLOAT_DISPATCH(p->dtype, T, mse_kernel<T><<<1, 1024, 0, pf_stream()>>>(
        red, n, (const T *)p->data, (const T *)t->data, (T *)out->data, pf_current_kernel()));
    return PF_LAUNCHED();
}

static int k_mse_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 3, 3, 1));
    const pf_tensor *p = a->inputs[0], *t = a->inputs[1], *g = a->inputs[2], *d = a->outputs[0];
    PF_TRY(pf_check_contiguous(p, "prediction"));
    PF_TRY(pf_check_contiguous(t, "target"));
    PF_TRY(pf_check_contiguous(g, "grad"));
    PF_TRY(pf_check_contiguous(d, "dprediction"));
    PF_TRY(pf_check_float(p, "prediction"));
    PF_TRY(pf_check_dtype(t, p->dtype, "target"));
    PF_TRY(pf_check_dtype(g, p->dtype, "grad"));
    PF_TRY(pf_check_dtype(d, p->dtype, "dprediction"));
    PF_TRY(pf_check_same_shape(p, t, "prediction", "target"));
    PF_TRY(pf_check_same_shape(p, d, "prediction", "dprediction"));
    int red = a->n_iattr > 0 && a->iattr ? pf_code(a->iattr[0]) : RED_MEAN;
    PF_CHECK(red >= RED_NONE && red <= RED_SUM, PF_ERR_ARGUMENT, "unknown reduction %d", red);
    int64_t n = pf_numel(p);
    PF_CHECK(pf_numel(g) == (red == RED_NONE ? n : 1), PF_ERR_SHAPE, "grad has the wrong size");
    if (n == 0) return PF_OK;
    double scale = red == RED_MEAN ? 2.0 / (double)n : 2.0;
    PF_FLOAT_DISPATCH(p->dtype, T, mse_grad_kernel<T><<<pf_blocks(n), PF_THREADS, 0,
                      pf_stream()>>>(red, n, scale, (const T *)p->data, (const T *)t->data,
                                     (const T *)g->data, (T *)d->data));
    return PF_LAUNCHED();
}

const pf_kernel_entry pf_cuda_kernels_nn[] = {
    {"softmax", k_softmax, NULL},
    {"log_softmax", k_log_softmax, NULL},
    {"softmax_grad", k_softmax_grad, NULL},
    {"log_softmax_grad", k_log_softmax_grad, NULL},
    {"cross_entropy", k_cross_entropy, NULL},
    {"cross_entropy_grad", k_cross_entropy_grad, NULL},
    {"mse", k_mse, NULL},
    {"mse_grad", k_mse_grad, NULL},
    {NULL, NULL, NULL},
};
