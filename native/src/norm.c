/* norm.c -- batch normalisation over the channel axis of an (N, C, S) view and layer
 * normalisation over the trailing D elements of an (R, D) view, forward and backward.
 *
 * Statistics are numerically safe and read the data once: a channel (or row) is cut into
 * tiles of at most NORM_TILE elements; each tile gets a corrected two-pass mean and sum of
 * squared deviations while it sits in L1, and tiles are merged with Chan's formula in double.
 * Batch norm runs one task per channel, so the normalising pass (and the second pass of the
 * backward) finds the channel still in L2. Inputs whose spatial size is small ((N, C) from a
 * dense layer) take a column path that vectorises across channels instead.
 */
#include <stdlib.h>

#include "internal.h"

#define NORM_TILE 4096
#define NORM_LANES 32
#define NORM_PARALLEL_MIN 16384
/* below this spatial size a channel's elements are too scattered for one task per channel */
#define NORM_COLUMN_PATH_BELOW 32
#define NORM_COLUMNS_MAX 256

/* ------------------------------------------------------------------------------------------ */
/* per-type primitives on contiguous runs                                                      */

/* Chan et al.: merge (nb, mb, m2b) into the running (n, mean, m2). */
typedef struct { double n, mean, m2; } moments;

static inline void moments_merge(moments *a, double nb, double mb, double m2b) {
    double n = a->n + nb;
    if (n == 0) return;
    double d = mb - a->mean;
    a->mean += d * nb / n;
    a->m2 += m2b + d * d * a->n * nb / n;
    a->n = n;
}

#define DEFINE_NORM_PRIMITIVES(T, SUF)                                                         \
    /* mean and sum of squared deviations of x[0..n), n <= NORM_TILE: corrected two-pass */     \
    static PF_HOT void tile_moments_##SUF(const T *x, int64_t n, double *mean, double *m2) {   \
        T acc[NORM_LANES] = {0};                                                               \
        int64_t i = 0;                                                                         \
        for (; i + NORM_LANES <= n; i += NORM_LANES)                                           \
            for (int k = 0; k < NORM_LANES; k++) acc[k] += x[i + k];                           \
        T s = 0;                                                                               \
        for (int k = 0; k < NORM_LANES; k++) s += acc[k];                                      \
        for (; i < n; i++) s += x[i];                                                          \
        T mb = s / (T)n;                                                                       \
        T dev[NORM_LANES] = {0}, sq[NORM_LANES] = {0};                                         \
        for (i = 0; i + NORM_LANES <= n; i += NORM_LANES)                                      \
            for (int k = 0; k < NORM_LANES; k++) {                                             \
                T d = x[i + k] - mb;                                                           \
                dev[k] += d;                                                                   \
                sq[k] += d * d;                                                                \
            }                                                                                  \
        double ds = 0, qs = 0;                                                                 \
        for (int k = 0; k < NORM_LANES; k++) { ds += dev[k]; qs += sq[k]; }                    \
        for (; i < n; i++) { double d = (double)(x[i] - mb); ds += d; qs += d * d; }          \
        *mean = (double)mb + ds / (double)n;                                                   \
        *m2 = qs - ds * ds / (double)n;                                                        \
        if (*m2 < 0) *m2 = 0;                                                                  \
    }                                                                                          \
    /* fold a contiguous run of any length into m */                                           \
    static void run_moments_##SUF(const T *x, int64_t n, moments *m) {                         \
        for (int64_t t = 0; t < n; t += NORM_TILE) {                                           \
            int64_t len = n - t < NORM_TILE ? n - t : NORM_TILE;                               \
            double mb, m2b;                                                                    \
            tile_moments_##SUF(x + t, len, &mb, &m2b);                                         \
            moments_merge(m, (double)len, mb, m2b);                                            \
        }                                                                                      \
    }                                                                                          \
    static PF_HOT void run_affine_##SUF(const T *x, T *y, int64_t n, T scale, T shift) {       \
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale + shift;                           \
    }                                                                                          \
    /* sum of g and of g * (x - mean) over a run */                                            \
    static PF_HOT void run_grad_sums_##SUF(const T *x, const T *g, int64_t n, T mean,          \
                                           double *sg, double *sgx) {                          \
        for (int64_t t = 0; t < n; t += NORM_TILE) {                                           \
            int64_t len = n - t < NORM_TILE ? n - t : NORM_TILE;                               \
            const T *xt = x + t, *gt = g + t;                                                  \
            T a[NORM_LANES] = {0}, b[NORM_LANES] = {0};                                        \
            int64_t i = 0;                                                                     \
            for (; i + NORM_LANES <= len; i += NORM_LANES)                                     \
                for (int k = 0; k < NORM_LANES; k++) {                                         \
                    a[k] += gt[i + k];                                                         \
                    b[k] += gt[i + k] * (xt[i + k] - mean);                                    \
                }                                                                              \
            double sa = 0, sb = 0;                                                             \
            for (int k = 0; k < NORM_LANES; k++) { sa += a[k]; sb += b[k]; }                   \
            for (; i < len; i++) { sa += gt[i]; sb += (double)(gt[i] * (xt[i] - mean)); }     \
            *sg += sa;                                                                         \
            *sgx += sb;                                                                        \
        }                                                                                      \
    }                                                                                          \
    /* dx = k * g + cx * x + c0 */                                                             \
    static PF_HOT void run_grad_apply_##SUF(const T *x, const T *g, T *dx, int64_t n, T k,     \
                                            T cx, T c0) {                                      \
        for (int64_t i = 0; i < n; i++) dx[i] = k * g[i] + cx * x[i] + c0;                     \
    }

DEFINE_NORM_PRIMITIVES(float, f32)
DEFINE_NORM_PRIMITIVES(double, f64)

static double load_f(const pf_tensor *t, int64_t i) {
    return t->dtype == PF_FLOAT32 ? (double)((const float *)t->data)[i]
                                  : ((const double *)t->data)[i];
}

static void store_f(const pf_tensor *t, int64_t i, double v) {
    if (t->dtype == PF_FLOAT32) ((float *)t->data)[i] = (float)v;
    else ((double *)t->data)[i] = v;
}

/* ------------------------------------------------------------------------------------------ */
/* batch normalisation                                                                         */

typedef struct {
    int dtype, update;
    int64_t N, C, S;
    double eps, momentum;
    const pf_tensor *x, *gamma, *beta, *g, *mean_in, *invstd_in;
    const pf_tensor *y, *mean, *invstd, *rmean, *rvar;   /* outputs (forward) */
    const pf_tensor *dx, *dgamma, *dbeta;                /* outputs (backward) */
    int64_t chunk;                                       /* channels per task (column path) */
} bn_job;

/* per-channel results of the statistics: store them and update the running statistics */
static void bn_finish_channel(const bn_job *j, int64_t c, double mean, double var) {
    double invstd = 1.0 / sqrt(var + j->eps);
    store_f(j->mean, c, mean);
    store_f(j->invstd, c, invstd);
    if (j->update) {
        double m = (double)(j->N * j->S), mom = j->momentum;
        double unbiased = var * m / (m - 1.0);
        store_f(j->rmean, c, (1.0 - mom) * load_f(j->rmean, c) + mom * mean);
        store_f(j->rvar, c, (1.0 - mom) * load_f(j->rvar, c) + mom * unbiased);
    }
}

#define DEFINE_BN_CHANNELS(T, SUF)                                                             \
    static void bn_forward_channels_##SUF(const bn_job *j, int64_t c0, int64_t c1) {           \
        int64_t N = j->N, C = j->C, S = j->S;                                                  \
        const T *x = (const T *)j->x->data;                                                    \
        T *y = (T *)j->y->data;                                                                \
        for (int64_t c = c0; c < c1; c++) {                                                    \
            moments m = {0, 0, 0};                                                             \
            for (int64_t n = 0; n < N; n++) run_moments_##SUF(x + (n * C + c) * S, S, &m);     \
            double var = m.m2 / m.n;                                                           \
            bn_finish_channel(j, c, m.mean, var);                                              \
            double scale = load_f(j->gamma, c) / sqrt(var + j->eps);                           \
            double shift = load_f(j->beta, c) - m.mean * scale;                                \
            for (int64_t n = 0; n < N; n++)                                                    \
                run_affine_##SUF(x + (n * C + c) * S, y + (n * C + c) * S, S, (T)scale,        \
                                 (T)shift);                                                    \
        }                                                                                      \
    }                                                                                          \
    static void bn_backward_channels_##SUF(const bn_job *j, int64_t c0, int64_t c1) {          \
        int64_t N = j->N, C = j->C, S = j->S;                                                  \
        const T *x = (const T *)j->x->data, *g = (const T *)j->g->data;                        \
        T *dx = (T *)j->dx->data;                                                              \
        double M = (double)(N * S);                                                            \
        for (int64_t c = c0; c < c1; c++) {                                                    \
            T mean = ((const T *)j->mean_in->data)[c];                                         \
            double invstd = load_f(j->invstd_in, c), sg = 0, sgx = 0;                          \
            for (int64_t n = 0; n < N; n++)                                                    \
                run_grad_sums_##SUF(x + (n * C + c) * S, g + (n * C + c) * S, S, mean, &sg,    \
                                    &sgx);                                                     \
            store_f(j->dgamma, c, sgx * invstd);                                               \
            store_f(j->dbeta, c, sg);                                                          \
            /* dx = gamma*invstd * (g - sg/M - (x - mean) * invstd^2 * sgx/M) */               \
            double k = load_f(j->gamma, c) * invstd;                                           \
            double cx = -k * invstd * invstd * sgx / M;                                        \
            double c0v = -k * sg / M - cx * (double)mean;                                      \
            for (int64_t n = 0; n < N; n++)                                                    \
                run_grad_apply_##SUF(x + (n * C + c) * S, g + (n * C + c) * S,                 \
                                     dx + (n * C + c) * S, S, (T)k, (T)cx, (T)c0v);            \
        }                                                                                      \
    }

DEFINE_BN_CHANNELS(float, f32)
DEFINE_BN_CHANNELS(double, f64)

/* Column path: a task owns channels [c0, c1), i.e. columns [c0*S, c1*S) of the (N, C*S)
 * matrix, and walks the rows; sums are per column in double, vectorised across columns. */
#define DEFINE_BN_COLUMNS(T, SUF)                                                              \
    static PF_HOT void bn_col_sum_##SUF(const T *x, int64_t N, int64_t ld, int64_t w,          \
                                        double *s) {                                           \
        for (int64_t n = 0; n < N; n++) {                                                      \
            const T *row = x + n * ld;                                                         \
            for (int64_t i = 0; i < w; i++) s[i] += row[i];                                    \
        }                                                                                      \
    }                                                                                          \
    static PF_HOT void bn_col_dev_##SUF(const T *x, int64_t N, int64_t ld, int64_t w,          \
                                        const double *center, double *q) {                     \
        for (int64_t n = 0; n < N; n++) {                                                      \
            const T *row = x + n * ld;                                                         \
            for (int64_t i = 0; i < w; i++) {                                                  \
                double d = (double)row[i] - center[i];                                         \
                q[i] += d * d;                                                                 \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    static PF_HOT void bn_col_affine_##SUF(const T *x, T *y, int64_t N, int64_t ld, int64_t w, \
                                           const T *scale, const T *shift) {                   \
        for (int64_t n = 0; n < N; n++) {                                                      \
            const T *xr = x + n * ld;                                                          \
            T *yr = y + n * ld;                                                                \
            for (int64_t i = 0; i < w; i++) yr[i] = xr[i] * scale[i] + shift[i];               \
        }                                                                                      \
    }                                                                                          \
    static PF_HOT void bn_col_grad_sums_##SUF(const T *x, const T *g, int64_t N, int64_t ld,   \
                                              int64_t w, const double *center, double *sg,     \
                                              double *sgx) {                                   \
        for (int64_t n = 0; n < N; n++) {                                                      \
            const T *xr = x + n * ld, *gr = g + n * ld;                                        \
            for (int64_t i = 0; i < w; i++) {                                                  \
                sg[i] += gr[i];                                                                \
                sgx[i] += (double)gr[i] * ((double)xr[i] - center[i]);                         \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    static PF_HOT void bn_col_grad_apply_##SUF(const T *x, const T *g, T *dx, int64_t N,       \
                                               int64_t ld, int64_t w, const T *k, const T *cx, \
                                               const T *c0) {                                  \
        for (int64_t n = 0; n < N; n++) {                                                      \
            const T *xr = x + n * ld, *gr = g + n * ld;                                        \
            T *dr = dx + n * ld;                                                               \
            for (int64_t i = 0; i < w; i++) dr[i] = k[i] * gr[i] + cx[i] * xr[i] + c0[i];      \
        }                                                                                      \
    }                                                                                          \
    static void bn_forward_columns_##SUF(const bn_job *j, int64_t c0, int64_t c1) {            \
        int64_t N = j->N, S = j->S, ld = j->C * S, w = (c1 - c0) * S;                          \
        const T *x = (const T *)j->x->data + c0 * S;                                           \
        T *y = (T *)j->y->data + c0 * S;                                                       \
        double s[NORM_COLUMNS_MAX] = {0}, q[NORM_COLUMNS_MAX] = {0};                           \
        double center[NORM_COLUMNS_MAX] = {0};                                                 \
        T scale[NORM_COLUMNS_MAX], shift[NORM_COLUMNS_MAX];                                    \
        double M = (double)(N * S);                                                            \
        bn_col_sum_##SUF(x, N, ld, w, s);                                                      \
        for (int64_t c = 0; c < c1 - c0; c++) {                                                \
            double t = 0;                                                                      \
            for (int64_t i = 0; i < S; i++) t += s[c * S + i];                                 \
            for (int64_t i = 0; i < S; i++) center[c * S + i] = t / M;                         \
        }                                                                                      \
        bn_col_dev_##SUF(x, N, ld, w, center, q);                                              \
        for (int64_t c = 0; c < c1 - c0; c++) {                                                \
            double t = 0, mean = center[c * S];                                                \
            for (int64_t i = 0; i < S; i++) t += q[c * S + i];                                 \
            double var = t / M;                                                                \
            bn_finish_channel(j, c0 + c, mean, var);                                           \
            double sc = load_f(j->gamma, c0 + c) / sqrt(var + j->eps);                         \
            double sh = load_f(j->beta, c0 + c) - mean * sc;                                   \
            for (int64_t i = 0; i < S; i++) { scale[c * S + i] = (T)sc; shift[c * S + i] = (T)sh; } \
        }                                                                                      \
        bn_col_affine_##SUF(x, y, N, ld, w, scale, shift);                                     \
    }                                                                                          \
    static void bn_backward_columns_##SUF(const bn_job *j, int64_t c0, int64_t c1) {           \
        int64_t N = j->N, S = j->S, ld = j->C * S, w = (c1 - c0) * S;                          \
        const T *x = (const T *)j->x->data + c0 * S, *g = (const T *)j->g->data + c0 * S;      \
        T *dx = (T *)j->dx->data + c0 * S;                                                     \
        double sg[NORM_COLUMNS_MAX] = {0}, sgx[NORM_COLUMNS_MAX] = {0};                        \
        double center[NORM_COLUMNS_MAX] = {0};                                                 \
        T k[NORM_COLUMNS_MAX], cx[NORM_COLUMNS_MAX], cc[NORM_COLUMNS_MAX];                     \
        double M = (double)(N * S);                                                            \
        for (int64_t c = 0; c < c1 - c0; c++)                                                  \
            for (int64_t i = 0; i < S; i++)                                                    \
                center[c * S + i] = (double)((const T *)j->mean_in->data)[c0 + c];             \
        bn_col_grad_sums_##SUF(x, g, N, ld, w, center, sg, sgx);                               \
        for (int64_t c = 0; c < c1 - c0; c++) {                                                \
            double a = 0, b = 0, mean = center[c * S];                                         \
            for (int64_t i = 0; i < S; i++) { a += sg[c * S + i]; b += sgx[c * S + i]; }       \
            double invstd = load_f(j->invstd_in, c0 + c);                                      \
            store_f(j->dgamma, c0 + c, b * invstd);                                            \
            store_f(j->dbeta, c0 + c, a);                                                      \
            double kk = load_f(j->gamma, c0 + c) * invstd;                                     \
            double kx = -kk * invstd * invstd * b / M;                                         \
            double k0 = -kk * a / M - kx * mean;                                               \
            for (int64_t i = 0; i < S; i++) {                                                  \
                k[c * S + i] = (T)kk; cx[c * S + i] = (T)kx; cc[c * S + i] = (T)k0;            \
            }                                                                                  \
        }                                                                                      \
        bn_col_grad_apply_##SUF(x, g, dx, N, ld, w, k, cx, cc);                                \
    }

DEFINE_BN_COLUMNS(float, f32)
DEFINE_BN_COLUMNS(double, f64)

static int bn_column_path(int64_t S) { return S < NORM_COLUMN_PATH_BELOW; }

static void bn_forward_task(void *p, int64_t b, int64_t e) {
    const bn_job *j = (const bn_job *)p;
    if (bn_column_path(j->S)) {
        int64_t c0 = b * j->chunk, c1 = e * j->chunk > j->C ? j->C : e * j->chunk;
        for (int64_t c = c0; c < c1; c += j->chunk) {
            int64_t hi = c + j->chunk > c1 ? c1 : c + j->chunk;
            if (j->dtype == PF_FLOAT32) bn_forward_columns_f32(j, c, hi);
            else bn_forward_columns_f64(j, c, hi);
        }
    } else if (j->dtype == PF_FLOAT32) {
        bn_forward_channels_f32(j, b, e);
    } else {
        bn_forward_channels_f64(j, b, e);
    }
}

static void bn_backward_task(void *p, int64_t b, int64_t e) {
    const bn_job *j = (const bn_job *)p;
    if (bn_column_path(j->S)) {
        int64_t c0 = b * j->chunk, c1 = e * j->chunk > j->C ? j->C : e * j->chunk;
        for (int64_t c = c0; c < c1; c += j->chunk) {
            int64_t hi = c + j->chunk > c1 ? c1 : c + j->chunk;
            if (j->dtype == PF_FLOAT32) bn_backward_columns_f32(j, c, hi);
            else bn_backward_columns_f64(j, c, hi);
        }
    } else if (j->dtype == PF_FLOAT32) {
        bn_backward_channels_f32(j, b, e);
    } else {
        bn_backward_channels_f64(j, b, e);
    }
}

/* Tasks for the pool: channels (channel path) or chunks of channels (column path). */
static void bn_schedule(bn_job *j, pf_task_fn fn) {
    int64_t N = j->N, C = j->C, S = j->S;
    if (bn_column_path(S)) {
        int64_t width = NORM_COLUMNS_MAX / S;      /* channels whose columns fit the buffers */
        int64_t spread = (C + 2 * pf_threads() - 1) / (2 * pf_threads());
        j->chunk = spread < width ? spread : width;
        if (j->chunk < 1) j->chunk = 1;
        int64_t tasks = (C + j->chunk - 1) / j->chunk;
        int64_t per_task = N * S * j->chunk;
        pf_parallel_for(tasks, per_task >= NORM_PARALLEL_MIN ? 1 : NORM_PARALLEL_MIN / (per_task + 1) + 1,
                        fn, j);
    } else {
        int64_t per_channel = N * S;
        pf_parallel_for(C, per_channel >= NORM_PARALLEL_MIN ? 1 : NORM_PARALLEL_MIN / per_channel + 1,
                        fn, j);
    }
}

static int check_channel_vector(const pf_tensor *t, int64_t C, const char *what, int dtype) {
    PF_TRY(pf_check_contiguous(t, what));
    if (dtype >= 0) PF_TRY(pf_check_dtype(t, dtype, what));
    else PF_TRY(pf_check_float(t, what));
    PF_CHECK(pf_numel(t) == C, PF_ERR_SHAPE, "%s has %lld elements for %lld channels", what,
             (long long)pf_numel(t), (long long)C);
    return PF_OK;
}

static int check_bn_input(const pf_tensor *x, const char *what) {
    PF_TRY(pf_check_contiguous(x, what));
    PF_TRY(pf_check_float(x, what));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "%s must be viewed as (batch, channels, spatial), got %d "
             "dims", what, x->ndim);
    return PF_OK;
}

static int check_eps(double eps) {
    PF_CHECK(eps >= 0 && isfinite(eps), PF_ERR_ARGUMENT, "eps must be finite and >= 0, got %g",
             eps);
    return PF_OK;
}

/* "batch_norm_train": inputs x (N, C, S) contiguous, gamma (C), beta (C); outputs y (N, C, S),
 * mean (C), invstd (C) -- the batch statistics, biased variance -- and, when there are five
 * outputs, running_mean (C) and running_var (C) updated in place with momentum from the
 * unbiased variance (PyTorch's rule). Running statistics may be float32 or float64 whatever
 * x is. fattr: eps, momentum. */
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
    }
    double eps = a->fattr[0], momentum = a->fattr[1];
    PF_TRY(check_eps(eps));
    PF_CHECK(momentum >= 0 && momentum <= 1, PF_ERR_ARGUMENT, "momentum must be in [0, 1], got %g",
             momentum);
    PF_CHECK(N * S > 1 || C == 0, PF_ERR_SHAPE,
             "training needs more than one value per channel, got input (%lld, %lld, %lld)",
             (long long)N, (long long)C, (long long)S);
    bn_job j = {0};
    j.dtype = x->dtype;
    j.update = update;
    j.N = N; j.C = C; j.S = S;
    j.eps = eps; j.momentum = momentum;
    j.x = x; j.gamma = a->inputs[1]; j.beta = a->inputs[2];
    j.y = a->outputs[0]; j.mean = a->outputs[1]; j.invstd = a->outputs[2];
    j.rmean = update ? a->outputs[3] : NULL;
    j.rvar = update ? a->outputs[4] : NULL;
    if (C == 0) return PF_OK;
    bn_schedule(&j, bn_forward_task);
    return PF_OK;
}

/* "batch_norm_grad": inputs x (N, C, S), gamma (C), mean (C), invstd (C) (the forward's batch
 * statistics), g (N, C, S); outputs dx (N, C, S), dgamma (C), dbeta (C). */
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
    bn_job j = {0};
    j.dtype = x->dtype;
    j.N = N; j.C = C; j.S = S;
    j.x = x; j.gamma = a->inputs[1]; j.mean_in = a->inputs[2]; j.invstd_in = a->inputs[3];
    j.g = g;
    j.dx = a->outputs[0]; j.dgamma = a->outputs[1]; j.dbeta = a->outputs[2];
    if (C == 0) return PF_OK;
    bn_schedule(&j, bn_backward_task);
    return PF_OK;
}

/* ---- inference: y = x * scale[c] + shift[c] from the running statistics ---- */
typedef struct {
    int dtype;
    int64_t N, C, S;
    const void *x;
    void *y;
    const double *scale, *shift;
} bn_eval_job;

#define DEFINE_BN_EVAL(T, SUF)                                                                 \
    static PF_HOT void bn_eval_rows_##SUF(const bn_eval_job *j, int64_t b, int64_t e) {        \
        int64_t C = j->C, S = j->S;                                                            \
        for (int64_t n = b; n < e; n++) {                                                      \
            const T *x = (const T *)j->x + n * C * S;                                          \
            T *y = (T *)j->y + n * C * S;                                                      \
            if (S == 1) {                                                                      \
                for (int64_t c = 0; c < C; c++)                                                \
                    y[c] = (T)(x[c] * (T)j->scale[c] + (T)j->shift[c]);                        \
            } else {                                                                           \
                for (int64_t c = 0; c < C; c++)                                                \
                    run_affine_##SUF(x + c * S, y + c * S, S, (T)j->scale[c], (T)j->shift[c]); \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    static void bn_eval_blocks_##SUF(const bn_eval_job *j, int64_t b, int64_t e) {             \
        int64_t C = j->C, S = j->S;                                                            \
        for (int64_t blk = b; blk < e; blk++) {                                                \
            int64_t c = blk % C;                                                               \
            run_affine_##SUF((const T *)j->x + blk * S, (T *)j->y + blk * S, S,                \
                             (T)j->scale[c], (T)j->shift[c]);                                  \
        }                                                                                      \
    }

DEFINE_BN_EVAL(float, f32)
DEFINE_BN_EVAL(double, f64)

static void bn_eval_rows_task(void *p, int64_t b, int64_t e) {
    const bn_eval_job *j = (const bn_eval_job *)p;
    if (j->dtype == PF_FLOAT32) bn_eval_rows_f32(j, b, e);
    else bn_eval_rows_f64(j, b, e);
}

static void bn_eval_blocks_task(void *p, int64_t b, int64_t e) {
    const bn_eval_job *j = (const bn_eval_job *)p;
    if (j->dtype == PF_FLOAT32) bn_eval_blocks_f32(j, b, e);
    else bn_eval_blocks_f64(j, b, e);
}

/* "batch_norm_eval": inputs x (N, C, S), gamma (C), beta (C), running_mean (C), running_var (C)
 * (the statistics float32 or float64); outputs y (N, C, S). fattr: eps. */
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
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_same_shape(x, y, "x", "y"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    double eps = a->fattr[0];
    PF_TRY(check_eps(eps));
    if (N * C * S == 0) return PF_OK;
    double *coef = (double *)malloc(2 * (size_t)C * sizeof(double));
    PF_CHECK(coef != NULL, PF_ERR_MEMORY, "no memory for %lld channel coefficients", (long long)C);
    for (int64_t c = 0; c < C; c++) {
        double var = load_f(a->inputs[4], c);
        if (var + eps < 0) {
            free(coef);
            return pf_fail(PF_ERR_NUMERIC, "running_var[%lld] = %g is negative", (long long)c, var);
        }
        double sc = load_f(a->inputs[1], c) / sqrt(var + eps);
        coef[c] = sc;
        coef[C + c] = load_f(a->inputs[2], c) - load_f(a->inputs[3], c) * sc;
    }
    bn_eval_job j = {x->dtype, N, C, S, x->data, y->data, coef, coef + C};
    if (S >= NORM_COLUMN_PATH_BELOW) {
        int64_t grain = NORM_PARALLEL_MIN / S + 1;
        pf_parallel_for(N * C, grain, bn_eval_blocks_task, &j);
    } else {
        int64_t grain = NORM_PARALLEL_MIN / (C * S) + 1;
        pf_parallel_for(N, grain, bn_eval_rows_task, &j);
    }
    free(coef);
    return PF_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* layer normalisation                                                                         */

typedef struct {
    int dtype;
    int64_t R, D, chunks;
    double eps;
    const pf_tensor *x, *gamma, *beta, *g, *mean_in, *rstd_in;
    const pf_tensor *y, *mean, *rstd, *dx;
    double *partials;   /* backward: per chunk, D sums of g * xhat then D sums of g */
} ln_job;

#define DEFINE_LN(T, SUF)                                                                      \
    static PF_HOT void ln_row_apply_##SUF(const T *x, T *y, const T *gamma, const T *beta,     \
                                          int64_t D, T a, T b) {                               \
        for (int64_t i = 0; i < D; i++) y[i] = (x[i] * a + b) * gamma[i] + beta[i];            \
    }                                                                                          \
    static void ln_forward_rows_##SUF(const ln_job *j, int64_t r0, int64_t r1) {               \
        int64_t D = j->D;                                                                      \
        const T *gamma = (const T *)j->gamma->data, *beta = (const T *)j->beta->data;          \
        for (int64_t r = r0; r < r1; r++) {                                                    \
            const T *x = (const T *)j->x->data + r * D;                                        \
            moments m = {0, 0, 0};                                                             \
            run_moments_##SUF(x, D, &m);                                                       \
            double rstd = 1.0 / sqrt(m.m2 / (double)D + j->eps);                               \
            ((T *)j->mean->data)[r] = (T)m.mean;                                               \
            ((T *)j->rstd->data)[r] = (T)rstd;                                                 \
            ln_row_apply_##SUF(x, (T *)j->y->data + r * D, gamma, beta, D, (T)rstd,            \
                               (T)(-m.mean * rstd));                                           \
        }                                                                                      \
    }                                                                                          \
    /* one row of the backward: h = g * gamma, xhat = (x - mean) * rstd,                       \
     * dx = rstd * (h - mean(h) - xhat * mean(h * xhat)); gamma/beta sums go to pg/pb */      \
    static PF_HOT void ln_backward_row_##SUF(const T *x, const T *g, const T *gamma, T *dx,    \
                                             int64_t D, T mean, T rstd, double *pg,            \
                                             double *pb) {                                     \
        T sa[NORM_LANES] = {0}, sb[NORM_LANES] = {0};                                          \
        int64_t i = 0;                                                                         \
        for (; i + NORM_LANES <= D; i += NORM_LANES)                                           \
            for (int k = 0; k < NORM_LANES; k++) {                                             \
                T xh = (x[i + k] - mean) * rstd, h = g[i + k] * gamma[i + k];                  \
                sa[k] += h;                                                                    \
                sb[k] += h * xh;                                                               \
            }                                                                                  \
        double A = 0, B = 0;                                                                   \
        for (int k = 0; k < NORM_LANES; k++) { A += sa[k]; B += sb[k]; }                       \
        for (; i < D; i++) {                                                                   \
            T xh = (x[i] - mean) * rstd, h = g[i] * gamma[i];                                  \
            A += h;                                                                            \
            B += (double)(h * xh);                                                             \
        }                                                                                      \
        T ma = (T)(A / (double)D), mb = (T)(B / (double)D);                                    \
        for (i = 0; i < D; i++) {                                                              \
            T xh = (x[i] - mean) * rstd;                                                       \
            dx[i] = rstd * (g[i] * gamma[i] - ma - xh * mb);                                   \
            pg[i] += (double)(g[i] * xh);                                                      \
            pb[i] += (double)g[i];                                                             \
        }                                                                                      \
    }                                                                                          \
    static void ln_backward_chunk_##SUF(const ln_job *j, int64_t chunk) {                      \
        int64_t R = j->R, D = j->D;                                                            \
        int64_t per = (R + j->chunks - 1) / j->chunks;                                         \
        int64_t r0 = chunk * per, r1 = r0 + per > R ? R : r0 + per;                            \
        double *pg = j->partials + chunk * 2 * D, *pb = pg + D;                                \
        for (int64_t i = 0; i < 2 * D; i++) pg[i] = 0;                                         \
        for (int64_t r = r0; r < r1; r++)                                                      \
            ln_backward_row_##SUF((const T *)j->x->data + r * D, (const T *)j->g->data + r * D,\
                                  (const T *)j->gamma->data, (T *)j->dx->data + r * D, D,      \
                                  ((const T *)j->mean_in->data)[r],                            \
                                  ((const T *)j->rstd_in->data)[r], pg, pb);                   \
    }

DEFINE_LN(float, f32)
DEFINE_LN(double, f64)

static void ln_forward_task(void *p, int64_t b, int64_t e) {
    const ln_job *j = (const ln_job *)p;
    if (j->dtype == PF_FLOAT32) ln_forward_rows_f32(j, b, e);
    else ln_forward_rows_f64(j, b, e);
}

static void ln_backward_task(void *p, int64_t b, int64_t e) {
    const ln_job *j = (const ln_job *)p;
    for (int64_t c = b; c < e; c++) {
        if (j->dtype == PF_FLOAT32) ln_backward_chunk_f32(j, c);
        else ln_backward_chunk_f64(j, c);
    }
}

static int check_ln_rows(const pf_tensor *x, const char *what) {
    PF_TRY(pf_check_contiguous(x, what));
    PF_TRY(pf_check_float(x, what));
    PF_CHECK(x->ndim == 2, PF_ERR_SHAPE, "%s must be viewed as (rows, normalized), got %d dims",
             what, x->ndim);
    return PF_OK;
}

/* "layer_norm": inputs x (R, D) contiguous, gamma (D), beta (D); outputs y (R, D), mean (R),
 * rstd (R) (biased variance, as PyTorch). fattr: eps. */
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
    ln_job j = {0};
    j.dtype = x->dtype;
    j.R = R; j.D = D; j.eps = a->fattr[0];
    j.x = x; j.gamma = a->inputs[1]; j.beta = a->inputs[2];
    j.y = a->outputs[0]; j.mean = a->outputs[1]; j.rstd = a->outputs[2];
    pf_parallel_for(R, NORM_PARALLEL_MIN / D + 1, ln_forward_task, &j);
    return PF_OK;
}

/* "layer_norm_grad": inputs x (R, D), gamma (D), mean (R), rstd (R), g (R, D); outputs
 * dx (R, D), dgamma (D), dbeta (D). Rows are cut into a number of chunks that depends on R
 * and the thread count only; each chunk sums its gamma/beta gradients in double, and the
 * chunks are added in order. */
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
    if (R == 0) {
        for (int64_t i = 0; i < D; i++) { store_f(a->outputs[1], i, 0); store_f(a->outputs[2], i, 0); }
        return PF_OK;
    }
    int64_t chunks = 2 * pf_threads();
    if (chunks < 16) chunks = 16;
    if (chunks > R) chunks = R;
    /* fewer chunks when rows are short, so that each chunk is worth a task */
    while (chunks > 1 && (R / chunks) * D < NORM_PARALLEL_MIN / 4) chunks /= 2;
    double *partials = (double *)malloc((size_t)chunks * 2 * (size_t)D * sizeof(double));
    PF_CHECK(partials != NULL, PF_ERR_MEMORY, "no memory for %lld x %lld partial sums",
             (long long)chunks, (long long)(2 * D));
    ln_job j = {0};
    j.dtype = x->dtype;
    j.R = R; j.D = D; j.chunks = chunks;
    j.x = x; j.gamma = a->inputs[1]; j.mean_in = a->inputs[2]; j.rstd_in = a->inputs[3];
    j.g = g; j.dx = a->outputs[0];
    j.partials = partials;
    pf_parallel_for(chunks, 1, ln_backward_task, &j);
    for (int64_t i = 0; i < D; i++) {
        double sg = 0, sb = 0;
        for (int64_t c = 0; c < chunks; c++) {
            sg += partials[c * 2 * D + i];
            sb += partials[c * 2 * D + D + i];
        }
        store_f(a->outputs[1], i, sg);
        store_f(a->outputs[2], i, sb);
    }
    free(partials);
    return PF_OK;
}

const pf_kernel_entry pf_kernels_norm[] = {
    {"batch_norm_train", k_batch_norm_train, NULL},
    {"batch_norm_eval", k_batch_norm_eval, NULL},
    {"batch_norm_grad", k_batch_norm_grad, NULL},
    {"layer_norm", k_layer_norm, NULL},
    {"layer_norm_grad", k_layer_norm_grad, NULL},
    {NULL, NULL, NULL},
};
