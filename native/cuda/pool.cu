/* pool.cu -- the CUDA twin of pool.c: max and average pooling over 1 to 3 spatial dims
 * (window, stride, begin/end padding), channels first, with their gradients. One thread per
 * output element for the forward passes; the backward passes give each thread one input
 * element, which adds up the outputs whose windows hold it (max pooling recomputes each of
 * those windows' argmax): no atomics, so the sums are in a fixed order. The argmax is the first
 * maximum in row-major window order, the last NaN when there are NaNs, as in pool.c. */
#include "internal.cuh"

#define POOL_DIMS 3

struct pool_geom {
    int64_t planes, in[POOL_DIMS], k[POOL_DIMS], out[POOL_DIMS], st[POOL_DIMS], pb[POOL_DIMS];
    int64_t in_size, out_size, k_size;
    int include_pad;
};

static void format_dims(const pf_tensor *t, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld",
                                 (long long)t->shape[i]);
    if (used < n) snprintf(buf + used, n - used, ")");
}

/* pool.c's pool_geometry, message for message */
static int pool_geometry(const pf_args *a, const pf_tensor *x, const pf_tensor *y,
                         const char *xn, const char *yn, pool_geom *g) {
    PF_CHECK(a->n_iattr >= 1 && a->iattr != NULL, PF_ERR_ARGUMENT, "missing the window attributes");
    int nd = (int)a->iattr[0];
    PF_CHECK(nd >= 1 && nd <= POOL_DIMS, PF_ERR_ARGUMENT, "%d spatial dims (1..3 supported)", nd);
    PF_TRY(pf_check_attrs(a, 1 + 4 * nd, 0));
    PF_TRY(pf_check_contiguous(x, xn));
    PF_TRY(pf_check_contiguous(y, yn));
    PF_TRY(pf_check_float(x, xn));
    PF_TRY(pf_check_dtype(y, x->dtype, yn));
    char sx[160], sy[160];
    format_dims(x, sx, sizeof sx);
    format_dims(y, sy, sizeof sy);
    PF_CHECK(x->ndim == nd + 2 && y->ndim == nd + 2, PF_ERR_SHAPE,
             "%d-D pooling needs %d-dim tensors: %s %s, %s %s", nd, nd + 2, xn, sx, yn, sy);
    PF_CHECK(x->shape[0] == y->shape[0] && x->shape[1] == y->shape[1], PF_ERR_SHAPE,
             "%s %s and %s %s differ in batch or channels", xn, sx, yn, sy);
    memset(g, 0, sizeof *g);
    g->planes = x->shape[0] * x->shape[1];
    g->include_pad = a->n_iattr > 1 + 4 * nd ? a->iattr[1 + 4 * nd] != 0 : 1;
    int off = POOL_DIMS - nd;
    for (int d = 0; d < POOL_DIMS; d++) {
        g->in[d] = g->k[d] = g->out[d] = g->st[d] = 1;
        g->pb[d] = 0;
    }
    for (int d = 0; d < nd; d++) {
        int64_t in = x->shape[2 + d], k = a->iattr[1 + d], st = a->iattr[1 + nd + d];
        int64_t pb = a->iattr[1 + 2 * nd + d], pe = a->iattr[1 + 3 * nd + d];
        PF_CHECK(k >= 1 && st >= 1, PF_ERR_ARGUMENT,
                 "window and stride must be positive (dim %d: window %lld, stride %lld)", d,
                 (long long)k, (long long)st);
        PF_CHECK(pb >= 0 && pe >= 0 && pb < k && pe < k, PF_ERR_ARGUMENT,
                 "padding (%lld, %lld) in dim %d must be below the window %lld", (long long)pb,
                 (long long)pe, d, (long long)k);
        PF_CHECK(in + pb + pe >= k, PF_ERR_SHAPE,
                 "the window %lld in spatial dim %d is larger than the padded input %s (%lld)",
                 (long long)k, d, sx, (long long)(in + pb + pe));
        int64_t out = (in + pb + pe - k) / st + 1;
        PF_CHECK(y->shape[2 + d] == out, PF_ERR_SHAPE,
                 "%s %s should have size %lld in spatial dim %d for %s %s", yn, sy,
                 (long long)out, d, xn, sx);
        g->in[off + d] = in;
        g->k[off + d] = k;
        g->out[off + d] = out;
        g->st[off + d] = st;
        g->pb[off + d] = pb;
    }
    g->in_size = g->in[0] * g->in[1] * g->in[2];
    g->out_size = g->out[0] * g->out[1] * g->out[2];
    g->k_size = g->k[0] * g->k[1] * g->k[2];
    return PF_OK;
}

/* the inputs of output o's window in dim d: [lo, hi) */
__device__ __forceinline__ void window(const pool_geom &g, int d, int64_t o, int64_t *lo,
                                       int64_t *hi) {
    int64_t first = o * g.st[d] - g.pb[d];
    *lo = first < 0 ? 0 : first;
    int64_t end = first + g.k[d];
    *hi = end > g.in[d] ? g.in[d] : end;
}

/* max of output (o0, o1, o2)'s window in one plane x, and its flat index there */
template <typename T>
__device__ T window_max(const pool_geom &g, const T *x, int64_t o0, int64_t o1, int64_t o2,
                        int64_t *index) {
    int64_t a[3], b[3];
    window(g, 0, o0, &a[0], &b[0]);
    window(g, 1, o1, &a[1], &b[1]);
    window(g, 2, o2, &a[2], &b[2]);
    T best = -INFINITY;
    int64_t at = (a[0] * g.in[1] + a[1]) * g.in[2] + a[2], nan_at = -1;
    for (int64_t i0 = a[0]; i0 < b[0]; i0++)
        for (int64_t i1 = a[1]; i1 < b[1]; i1++) {
            int64_t base = (i0 * g.in[1] + i1) * g.in[2];
            for (int64_t i2 = a[2]; i2 < b[2]; i2++) {
                T v = x[base + i2];
                if (v > best) { best = v; at = base + i2; }
                if (v != v) nan_at = base + i2;
            }
        }
    if (nan_at >= 0) { best = (T)NAN; at = nan_at; }
    *index = at;
    return best;
}

__device__ __forceinline__ void unflatten(const pool_geom &g, int64_t e, int64_t *plane,
                                          int64_t *o0, int64_t *o1, int64_t *o2) {
    *o2 = e % g.out[2];
    *o1 = (e / g.out[2]) % g.out[1];
    *o0 = (e / (g.out[2] * g.out[1])) % g.out[0];
    *plane = e / g.out_size;
}

/* forward max (gather: the values at the argmaxes of x, from another tensor) */
template <typename T>
__global__ void max_pool_kernel(pool_geom g, const T *x, const T *values, T *y) {
    PF_GRID_LOOP(e, g.planes * g.out_size) {
        int64_t p, o0, o1, o2, at;
        unflatten(g, e, &p, &o0, &o1, &o2);
        T best = window_max(g, x + p * g.in_size, o0, o1, o2, &at);
        y[e] = values ? values[p * g.in_size + at] : best;
    }
}

/* outputs whose window holds input i in dim d: [lo, hi) */
__device__ __forceinline__ void holders(const pool_geom &g, int d, int64_t i, int64_t *lo,
                                        int64_t *hi) {
    int64_t num = i + g.pb[d] - g.k[d] + 1;   /* o * st >= num */
    int64_t l = num <= 0 ? 0 : (num + g.st[d] - 1) / g.st[d];
    int64_t h = (i + g.pb[d]) / g.st[d] + 1;
    *lo = l;
    *hi = h > g.out[d] ? g.out[d] : h;
}

template <typename T>
__global__ void max_pool_grad_kernel(pool_geom g, const T *x, const T *gy, T *gx) {
    PF_GRID_LOOP(e, g.planes * g.in_size) {
        int64_t p = e / g.in_size, flat = e % g.in_size;
        int64_t i2 = flat % g.in[2], i1 = (flat / g.in[2]) % g.in[1], i0 = flat / (g.in[2] * g.in[1]);
        int64_t l0, h0, l1, h1, l2, h2;
        holders(g, 0, i0, &l0, &h0);
        holders(g, 1, i1, &l1, &h1);
        holders(g, 2, i2, &l2, &h2);
        T sum = 0;
        for (int64_t o0 = l0; o0 < h0; o0++)
            for (int64_t o1 = l1; o1 < h1; o1++)
                for (int64_t o2 = l2; o2 < h2; o2++) {
                    int64_t at;
                    window_max(g, x + p * g.in_size, o0, o1, o2, &at);
                    if (at == flat)
                        sum += gy[p * g.out_size + (o0 * g.out[1] + o1) * g.out[2] + o2];
                }
        gx[e] = sum;
    }
}

__device__ __forceinline__ int64_t divisor(const pool_geom &g, int64_t o0, int64_t o1,
                                           int64_t o2) {
    if (g.include_pad) return g.k_size;
    int64_t a, b, n = 1, o[3] = {o0, o1, o2};
    for (int d = 0; d < 3; d++) {
        window(g, d, o[d], &a, &b);
        n *= b - a;
    }
    return n;
}

template <typename T>
__global__ void avg_pool_kernel(pool_geom g, const T *x, T *y) {
    PF_GRID_LOOP(e, g.planes * g.out_size) {
        int64_t p, o0, o1, o2, a[3], b[3];
        unflatten(g, e, &p, &o0, &o1, &o2);
        window(g, 0, o0, &a[0], &b[0]);
        window(g, 1, o1, &a[1], &b[1]);
        window(g, 2, o2, &a[2], &b[2]);
        const T *xp = x + p * g.in_size;
        T sum = 0;
        for (int64_t i0 = a[0]; i0 < b[0]; i0++)
            for (int64_t i1 = a[1]; i1 < b[1]; i1++)
                for (int64_t i2 = a[2]; i2 < b[2]; i2++)
                    sum += xp[(i0 * g.in[1] + i1) * g.in[2] + i2];
        y[e] = sum / (T)divisor(g, o0, o1, o2);
    }
}

template <typename T>
__global__ void avg_pool_grad_kernel(pool_geom g, const T *gy, T *gx) {
    PF_GRID_LOOP(e, g.planes * g.in_size) {
        int64_t p = e / g.in_size, flat = e % g.in_size;
        int64_t i2 = flat % g.in[2], i1 = (flat / g.in[2]) % g.in[1], i0 = flat / (g.in[2] * g.in[1]);
        int64_t l0, h0, l1, h1, l2, h2;
        holders(g, 0, i0, &l0, &h0);
        holders(g, 1, i1, &l1, &h1);
        holders(g, 2, i2, &l2, &h2);
        T sum = 0;
        for (int64_t o0 = l0; o0 < h0; o0++)
            for (int64_t o1 = l1; o1 < h1; o1++)
                for (int64_t o2 = l2; o2 < h2; o2++)
                    sum += gy[p * g.out_size + (o0 * g.out[1] + o1) * g.out[2] + o2] /
                           (T)divisor(g, o0, o1, o2);
        gx[e] = sum;
    }
}

static int k_max_pool(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    pool_geom g;
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    PF_TRY(pool_geometry(a, x, y, "x", "y", &g));
    int64_t n = g.planes * g.out_size;
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(x->dtype, T, max_pool_kernel<T><<<pf_blocks(n), PF_THREADS, 0,
                      pf_stream()>>>(g, (const T *)x->data, (const T *)NULL, (T *)y->data));
    return PF_LAUNCHED();
}

static int k_max_pool_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    pool_geom g;
    const pf_tensor *x = a->inputs[0], *gy = a->inputs[1], *gx = a->outputs[0];
    PF_TRY(pool_geometry(a, x, gy, "x", "grad_y", &g));
    PF_TRY(pf_check_contiguous(gx, "grad_x"));
    PF_TRY(pf_check_same_shape(x, gx, "x", "grad_x"));
    PF_TRY(pf_check_dtype(gx, x->dtype, "grad_x"));
    int64_t n = g.planes * g.in_size;
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(x->dtype, T, max_pool_grad_kernel<T><<<pf_blocks(n), PF_THREADS, 0,
                      pf_stream()>>>(g, (const T *)x->data, (const T *)gy->data,
                                     (T *)gx->data));
    return PF_LAUNCHED();
}

static int k_max_pool_gather(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    pool_geom g;
    const pf_tensor *x = a->inputs[0], *v = a->inputs[1], *y = a->outputs[0];
    PF_TRY(pool_geometry(a, x, y, "x", "y", &g));
    PF_TRY(pf_check_contiguous(v, "values"));
    PF_TRY(pf_check_same_shape(x, v, "x", "values"));
    PF_TRY(pf_check_dtype(v, x->dtype, "values"));
    int64_t n = g.planes * g.out_size;
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(x->dtype, T, max_pool_kernel<T><<<pf_blocks(n), PF_THREADS, 0,
                      pf_stream()>>>(g, (const T *)x->data, (const T *)v->data, (T *)y->data));
    return PF_LAUNCHED();
}

static int k_avg_pool(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    pool_geom g;
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    PF_TRY(pool_geometry(a, x, y, "x", "y", &g));
    int64_t n = g.planes * g.out_size;
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(x->dtype, T, avg_pool_kernel<T><<<pf_blocks(n), PF_THREADS, 0,
                      pf_stream()>>>(g, (const T *)x->data, (T *)y->data));
    return PF_LAUNCHED();
}

static int k_avg_pool_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    pool_geom g;
    const pf_tensor *gy = a->inputs[0], *gx = a->outputs[0];
    PF_TRY(pool_geometry(a, gx, gy, "grad_x", "grad_y", &g));
    int64_t n = g.planes * g.in_size;
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(gx->dtype, T, avg_pool_grad_kernel<T><<<pf_blocks(n), PF_THREADS, 0,
                      pf_stream()>>>(g, (const T *)gy->data, (T *)gx->data));
    return PF_LAUNCHED();
}

const pf_kernel_entry pf_cuda_kernels_pool[] = {
    {"max_pool", k_max_pool, NULL},
    {"max_pool_grad", k_max_pool_grad, NULL},
    {"max_pool_gather", k_max_pool_gather, NULL},
    {"avg_pool", k_avg_pool, NULL},
    {"avg_pool_grad", k_avg_pool_grad, NULL},
    {NULL, NULL, NULL},
};
