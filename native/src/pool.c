/* pool.c -- max and average pooling over 1, 2 or 3 spatial dims (window, stride, separate
 * begin and end padding), channels first, with their gradients.
 *
 * Max pooling's backward recomputes each window's argmax from the input instead of storing
 * indices in the forward: inference then writes no index tensor, training keeps no extra
 * buffer alive (the pooled input is held anyway by the gradient of the activation before
 * it), and the recomputation is one more read of the input. The argmax is the first maximum
 * in row-major window order, a NaN winning, as in PyTorch. "max_pool_gather" reads values at
 * those argmaxes: the gradient of the backward, for second-order gradients.
 *
 * Loops run over output rows: for each window offset, a whole row of outputs is updated from
 * a row of inputs, so the inner loop is long and vectorises. Geometry is handled as 3-D, missing
 * leading dims having size 1. Work is split over the (batch x channel) planes.
 */
#include <stdio.h>

#include "internal.h"

#define POOL_DIMS 3
#define POOL_CHUNK 256            /* outputs per row handled at once by the argmax kernels */
#define POOL_PARALLEL_MIN 32768   /* elements of work below which one thread does it all */

typedef struct {
    int dtype, include_pad;
    int64_t planes;
    int64_t in[POOL_DIMS], k[POOL_DIMS], out[POOL_DIMS], st[POOL_DIMS], pb[POOL_DIMS];
    int64_t in_size, out_size, k_size;
} pool_geom;

static void format_dims(const pf_tensor *t, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld",
                                 (long long)t->shape[i]);
    if (used < n) snprintf(buf + used, n - used, ")");
}

/* iattr: nd, window[nd], stride[nd], pad_begin[nd], pad_end[nd][, count_include_pad].
 * x is (N, C, *in) and y (N, C, *out); a window must never lie wholly in the padding. */
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
    g->dtype = x->dtype;
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

static inline int64_t ceil_div(int64_t a, int64_t b) {
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

/* Outputs o in [lo, hi) read input o*st - pb + kk inside [0, in). */
static inline void valid_range(int64_t in, int64_t out, int64_t st, int64_t pb, int64_t kk,
                               int64_t *lo, int64_t *hi) {
    int64_t shift = kk - pb;
    int64_t l = ceil_div(-shift, st), h = ceil_div(in - shift, st);
    *lo = l < 0 ? 0 : (l > out ? out : l);
    *hi = h < *lo ? *lo : (h > out ? out : h);
}

static inline int64_t clamp_lo(int64_t v) { return v < 0 ? 0 : v; }

typedef struct {
    pool_geom g;
    const void *x, *v;   /* input, and the values gathered or spread (gradient) */
    void *y;
} pool_job;

#define DEFINE_POOL(T, SUF, NEG_INF)                                                           \
    static PF_HOT void max_pool_planes_##SUF(void *p, int64_t p0, int64_t p1) {                \
        const pool_job *j = (const pool_job *)p;                                               \
        const pool_geom *g = &j->g;                                                            \
        const int64_t *in = g->in, *out = g->out, *st = g->st, *pb = g->pb;                    \
        for (int64_t plane = p0; plane < p1; plane++) {                                        \
            const T *x = (const T *)j->x + plane * g->in_size;                                 \
            T *y = (T *)j->y + plane * g->out_size;                                            \
            for (int64_t o0 = 0; o0 < out[0]; o0++)                                            \
                for (int64_t o1 = 0; o1 < out[1]; o1++) {                                      \
                    T *row = y + (o0 * out[1] + o1) * out[2];                                  \
                    for (int64_t o2 = 0; o2 < out[2]; o2++) row[o2] = NEG_INF;                 \
                    for (int64_t k0 = 0; k0 < g->k[0]; k0++) {                                 \
                        int64_t i0 = o0 * st[0] - pb[0] + k0;                                  \
                        if (i0 < 0 || i0 >= in[0]) continue;                                   \
                        for (int64_t k1 = 0; k1 < g->k[1]; k1++) {                             \
                            int64_t i1 = o1 * st[1] - pb[1] + k1;                              \
                            if (i1 < 0 || i1 >= in[1]) continue;                               \
                            const T *line = x + (i0 * in[1] + i1) * in[2];                     \
                            for (int64_t k2 = 0; k2 < g->k[2]; k2++) {                         \
                                int64_t lo, hi, shift = k2 - pb[2], s = st[2];                 \
                                valid_range(in[2], out[2], s, pb[2], k2, &lo, &hi);            \
                                for (int64_t o2 = lo; o2 < hi; o2++) {                         \
                                    T v = line[o2 * s + shift];                                \
                                    row[o2] = (v > row[o2] || v != v) ? v : row[o2];           \
                                }                                                              \
                            }                                                                  \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
        }                                                                                      \
    }                                                                                          \
    /* the flat input index of each output's argmax in outputs [c0, c1) of one row */          \
    static PF_HOT void row_argmax_##SUF(const pool_geom *g, const T *x, int64_t o0, int64_t o1, \
                                        int64_t c0, int64_t c1, int64_t *idx) {                \
        const int64_t *in = g->in, *st = g->st, *pb = g->pb;                                   \
        T best[POOL_CHUNK];                                                                    \
        int64_t first0 = clamp_lo(o0 * st[0] - pb[0]), first1 = clamp_lo(o1 * st[1] - pb[1]);  \
        for (int64_t o2 = c0; o2 < c1; o2++) {                                                 \
            best[o2 - c0] = NEG_INF;                                                           \
            idx[o2 - c0] = (first0 * in[1] + first1) * in[2] + clamp_lo(o2 * st[2] - pb[2]);   \
        }                                                                                      \
        for (int64_t k0 = 0; k0 < g->k[0]; k0++) {                                             \
            int64_t i0 = o0 * st[0] - pb[0] + k0;                                              \
            if (i0 < 0 || i0 >= in[0]) continue;                                               \
            for (int64_t k1 = 0; k1 < g->k[1]; k1++) {                                         \
                int64_t i1 = o1 * st[1] - pb[1] + k1;                                          \
                if (i1 < 0 || i1 >= in[1]) continue;                                           \
                int64_t base = (i0 * in[1] + i1) * in[2];                                      \
                for (int64_t k2 = 0; k2 < g->k[2]; k2++) {                                     \
                    int64_t lo, hi, shift = k2 - pb[2], s = st[2];                             \
                    valid_range(in[2], g->out[2], s, pb[2], k2, &lo, &hi);                     \
                    if (lo < c0) lo = c0;                                                      \
                    if (hi > c1) hi = c1;                                                      \
                    for (int64_t o2 = lo; o2 < hi; o2++) {                                     \
                        int64_t at = base + o2 * s + shift;                                    \
                        T v = x[at];                                                           \
                        if (v > best[o2 - c0] || v != v) { best[o2 - c0] = v; idx[o2 - c0] = at; } \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    /* grad_x (zeroed here) += grad_y at each window's argmax */                               \
    static PF_HOT void max_pool_grad_planes_##SUF(void *p, int64_t p0, int64_t p1) {           \
        const pool_job *j = (const pool_job *)p;                                               \
        const pool_geom *g = &j->g;                                                            \
        int64_t idx[POOL_CHUNK];                                                               \
        for (int64_t plane = p0; plane < p1; plane++) {                                        \
            const T *x = (const T *)j->x + plane * g->in_size;                                 \
            const T *gy = (const T *)j->v + plane * g->out_size;                               \
            T *gx = (T *)j->y + plane * g->in_size;                                            \
            memset(gx, 0, (size_t)g->in_size * sizeof(T));                                     \
            for (int64_t o0 = 0; o0 < g->out[0]; o0++)                                         \
                for (int64_t o1 = 0; o1 < g->out[1]; o1++) {                                   \
                    const T *grow = gy + (o0 * g->out[1] + o1) * g->out[2];                    \
                    for (int64_t c0 = 0; c0 < g->out[2]; c0 += POOL_CHUNK) {                   \
                        int64_t c1 = c0 + POOL_CHUNK < g->out[2] ? c0 + POOL_CHUNK : g->out[2]; \
                        row_argmax_##SUF(g, x, o0, o1, c0, c1, idx);                           \
                        for (int64_t o2 = c0; o2 < c1; o2++) gx[idx[o2 - c0]] += grow[o2];     \
                    }                                                                          \
                }                                                                              \
        }                                                                                      \
    }                                                                                          \
    /* y = values at each window's argmax of x (values shaped like x) */                       \
    static PF_HOT void max_pool_gather_planes_##SUF(void *p, int64_t p0, int64_t p1) {         \
        const pool_job *j = (const pool_job *)p;                                               \
        const pool_geom *g = &j->g;                                                            \
        int64_t idx[POOL_CHUNK];                                                               \
        for (int64_t plane = p0; plane < p1; plane++) {                                        \
            const T *x = (const T *)j->x + plane * g->in_size;                                 \
            const T *vals = (const T *)j->v + plane * g->in_size;                              \
            T *y = (T *)j->y + plane * g->out_size;                                            \
            for (int64_t o0 = 0; o0 < g->out[0]; o0++)                                         \
                for (int64_t o1 = 0; o1 < g->out[1]; o1++) {                                   \
                    T *row = y + (o0 * g->out[1] + o1) * g->out[2];                            \
                    for (int64_t c0 = 0; c0 < g->out[2]; c0 += POOL_CHUNK) {                   \
                        int64_t c1 = c0 + POOL_CHUNK < g->out[2] ? c0 + POOL_CHUNK : g->out[2]; \
                        row_argmax_##SUF(g, x, o0, o1, c0, c1, idx);                           \
                        for (int64_t o2 = c0; o2 < c1; o2++) row[o2] = vals[idx[o2 - c0]];     \
                    }                                                                          \
                }                                                                              \
        }                                                                                      \
    }                                                                                          \
    /* 1 / divisor of outputs [c0, c1) of one row: the whole window, or its part inside */ \
    static void row_divisors_##SUF(const pool_geom *g, int64_t o0, int64_t o1, int64_t c0,     \
                                   int64_t c1, T *inv) {                                       \
        const int64_t *in = g->in, *st = g->st, *pb = g->pb, *k = g->k;                        \
        int64_t n0 = k[0], n1 = k[1];                                                          \
        if (!g->include_pad) {                                                                 \
            int64_t s0 = o0 * st[0] - pb[0], s1 = o1 * st[1] - pb[1];                          \
            n0 = (s0 + k[0] < in[0] ? s0 + k[0] : in[0]) - clamp_lo(s0);                       \
            n1 = (s1 + k[1] < in[1] ? s1 + k[1] : in[1]) - clamp_lo(s1);                       \
        }                                                                                      \
        for (int64_t o2 = c0; o2 < c1; o2++) {                                                 \
            int64_t n2 = k[2];                                                                 \
            if (!g->include_pad) {                                                             \
                int64_t s2 = o2 * st[2] - pb[2];                                               \
                n2 = (s2 + k[2] < in[2] ? s2 + k[2] : in[2]) - clamp_lo(s2);                   \
            }                                                                                  \
            inv[o2 - c0] = (T)1 / (T)(n0 * n1 * n2);                                           \
        }                                                                                      \
    }                                                                                          \
    /* avg_pool (scatter = 0): y = window sums / divisor; avg_pool_grad (scatter = 1): grad_x  \
     * (zeroed here) += grad_y / divisor over each window. Rows go in chunks of outputs. */     \
    static PF_HOT void avg_pool_planes_##SUF(const pool_job *j, int64_t p0, int64_t p1,        \
                                             int scatter) {                                    \
        const pool_geom *g = &j->g;                                                            \
        const int64_t *in = g->in, *out = g->out, *st = g->st, *pb = g->pb;                    \
        T inv[POOL_CHUNK], acc[POOL_CHUNK];                                                    \
        for (int64_t plane = p0; plane < p1; plane++) {                                        \
            const T *src = (const T *)(scatter ? j->v : j->x) +                                \
                           plane * (scatter ? g->out_size : g->in_size);                       \
            T *dst = (T *)j->y + plane * (scatter ? g->in_size : g->out_size);                 \
            if (scatter) memset(dst, 0, (size_t)g->in_size * sizeof(T));                      \
            for (int64_t o0 = 0; o0 < out[0]; o0++)                                            \
                for (int64_t o1 = 0; o1 < out[1]; o1++)                                        \
                    for (int64_t c0 = 0; c0 < out[2]; c0 += POOL_CHUNK) {                      \
                        int64_t c1 = c0 + POOL_CHUNK < out[2] ? c0 + POOL_CHUNK : out[2];      \
                        int64_t r = (o0 * out[1] + o1) * out[2];                               \
                        row_divisors_##SUF(g, o0, o1, c0, c1, inv);                            \
                        for (int64_t o2 = c0; o2 < c1; o2++)                                   \
                            acc[o2 - c0] = scatter ? src[r + o2] * inv[o2 - c0] : (T)0;        \
                        for (int64_t k0 = 0; k0 < g->k[0]; k0++) {                             \
                            int64_t i0 = o0 * st[0] - pb[0] + k0;                              \
                            if (i0 < 0 || i0 >= in[0]) continue;                               \
                            for (int64_t k1 = 0; k1 < g->k[1]; k1++) {                         \
                                int64_t i1 = o1 * st[1] - pb[1] + k1;                          \
                                if (i1 < 0 || i1 >= in[1]) continue;                           \
                                int64_t base = (i0 * in[1] + i1) * in[2];                      \
                                for (int64_t k2 = 0; k2 < g->k[2]; k2++) {                     \
                                    int64_t lo, hi, at = base + k2 - pb[2], s = st[2];         \
                                    valid_range(in[2], out[2], s, pb[2], k2, &lo, &hi);        \
                                    if (lo < c0) lo = c0;                                      \
                                    if (hi > c1) hi = c1;                                      \
                                    if (scatter)                                               \
                                        for (int64_t o2 = lo; o2 < hi; o2++)                   \
                                            dst[at + o2 * s] += acc[o2 - c0];                  \
                                    else                                                       \
                                        for (int64_t o2 = lo; o2 < hi; o2++)                   \
                                            acc[o2 - c0] += src[at + o2 * s];                  \
                                }                                                              \
                            }                                                                  \
                        }                                                                      \
                        if (!scatter)                                                          \
                            for (int64_t o2 = c0; o2 < c1; o2++)                               \
                                dst[r + o2] = acc[o2 - c0] * inv[o2 - c0];                     \
                    }                                                                          \
        }                                                                                      \
    }

DEFINE_POOL(float, f32, -INFINITY)
DEFINE_POOL(double, f64, -(double)INFINITY)

/* ---- kernels ---- */
static void run_planes(const pool_job *j, int64_t work_per_plane, pf_task_fn fn) {
    int64_t per = work_per_plane > 0 ? work_per_plane : 1;
    int64_t grain = POOL_PARALLEL_MIN / per;
    pf_parallel_for(j->g.planes, grain > 0 ? grain : 1, fn, (void *)j);
}

/* "max_pool": inputs x (N, C, *in); outputs y (N, C, *out). iattr: nd, window[nd],
 * stride[nd], pad_begin[nd], pad_end[nd]. */
static int k_max_pool(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    pool_job j = {0};
    PF_TRY(pool_geometry(a, a->inputs[0], a->outputs[0], "x", "y", &j.g));
    j.x = a->inputs[0]->data;
    j.y = a->outputs[0]->data;
    run_planes(&j, j.g.out_size * j.g.k_size,
               j.g.dtype == PF_FLOAT32 ? max_pool_planes_f32 : max_pool_planes_f64);
    return PF_OK;
}

/* "max_pool_grad": inputs x, grad_y; outputs grad_x (shaped like x). iattr as max_pool. */
static int k_max_pool_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    pool_job j = {0};
    PF_TRY(pool_geometry(a, a->inputs[0], a->inputs[1], "x", "grad_y", &j.g));
    PF_TRY(pf_check_contiguous(a->outputs[0], "grad_x"));
    PF_TRY(pf_check_same_shape(a->inputs[0], a->outputs[0], "x", "grad_x"));
    PF_TRY(pf_check_dtype(a->outputs[0], j.g.dtype, "grad_x"));
    j.x = a->inputs[0]->data;
    j.v = a->inputs[1]->data;
    j.y = a->outputs[0]->data;
    run_planes(&j, j.g.out_size * j.g.k_size,
               j.g.dtype == PF_FLOAT32 ? max_pool_grad_planes_f32 : max_pool_grad_planes_f64);
    return PF_OK;
}

/* "max_pool_gather": inputs x, values (shaped like x); outputs y (pooled shape) = values at
 * each window's argmax of x. iattr as max_pool. */
static int k_max_pool_gather(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    pool_job j = {0};
    PF_TRY(pool_geometry(a, a->inputs[0], a->outputs[0], "x", "y", &j.g));
    PF_TRY(pf_check_contiguous(a->inputs[1], "values"));
    PF_TRY(pf_check_same_shape(a->inputs[0], a->inputs[1], "x", "values"));
    PF_TRY(pf_check_dtype(a->inputs[1], j.g.dtype, "values"));
    j.x = a->inputs[0]->data;
    j.v = a->inputs[1]->data;
    j.y = a->outputs[0]->data;
    run_planes(&j, j.g.out_size * j.g.k_size,
               j.g.dtype == PF_FLOAT32 ? max_pool_gather_planes_f32 : max_pool_gather_planes_f64);
    return PF_OK;
}

static void avg_forward_task(void *p, int64_t p0, int64_t p1) {
    const pool_job *j = (const pool_job *)p;
    if (j->g.dtype == PF_FLOAT32) avg_pool_planes_f32(j, p0, p1, 0);
    else avg_pool_planes_f64(j, p0, p1, 0);
}
static void avg_grad_task(void *p, int64_t p0, int64_t p1) {
    const pool_job *j = (const pool_job *)p;
    if (j->g.dtype == PF_FLOAT32) avg_pool_planes_f32(j, p0, p1, 1);
    else avg_pool_planes_f64(j, p0, p1, 1);
}

/* "avg_pool": inputs x; outputs y. iattr as max_pool, then count_include_pad (default 1:
 * divide by the whole window, as PyTorch; 0: by the part of the window inside the input). */
static int k_avg_pool(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    pool_job j = {0};
    PF_TRY(pool_geometry(a, a->inputs[0], a->outputs[0], "x", "y", &j.g));
    j.x = a->inputs[0]->data;
    j.y = a->outputs[0]->data;
    run_planes(&j, j.g.out_size * j.g.k_size, avg_forward_task);
    return PF_OK;
}

/* "avg_pool_grad": inputs grad_y; outputs grad_x, whose shape fixes the input geometry. */
static int k_avg_pool_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    pool_job j = {0};
    PF_TRY(pool_geometry(a, a->outputs[0], a->inputs[0], "grad_x", "grad_y", &j.g));
    j.v = a->inputs[0]->data;
    j.y = a->outputs[0]->data;
    run_planes(&j, j.g.out_size * j.g.k_size, avg_grad_task);
    return PF_OK;
}

const pf_kernel_entry pf_kernels_pool[] = {
    {"max_pool", k_max_pool, NULL},
    {"max_pool_grad", k_max_pool_grad, NULL},
    {"max_pool_gather", k_max_pool_gather, NULL},
    {"avg_pool", k_avg_pool, NULL},
    {"avg_pool_grad", k_avg_pool_grad, NULL},
    {NULL, NULL, NULL},
};
