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
#define POOL_KMAX 64              /* window offsets of the last dim whose ranges are cached */

typedef struct {
    int dtype, include_pad;
    int64_t planes;
    int64_t in[POOL_DIMS], k[POOL_DIMS], out[POOL_DIMS], st[POOL_DIMS], pb[POOL_DIMS];
    int64_t in_size, out_size, k_size;
    int is_2x2;   /* 2x2 windows, stride 2, no padding, in the last two dims only */
    int simd;     /* the CPU has AVX-512: float32 2x2 rows take the vector versions */
    /* outputs [lo2, hi2) of a row read inside the input at last-dim window offset k2 */
    int64_t lo2[POOL_KMAX], hi2[POOL_KMAX];
} pool_geom;

/* ---- AVX-512 rows of the 2x2 kernels (float32), chosen at run time ----
 * Rows are short (13 outputs for 26 inputs), under one vector, so the portable loops run as
 * scalar code. Here 16 outputs take masked loads of 32 inputs per row, even/odd lane
 * permutes, and mask logic equal to pick_2x2's; masked-off lanes never touch memory. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define POOL_AVX512 __attribute__((target("avx512f")))
static int pool_has_avx512(void) { return __builtin_cpu_supports("avx512f"); }

/* lanes [0, n) of 16; n may be <= 0 or >= 16 */
static inline POOL_AVX512 __mmask16 first_lanes(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* even and odd elements of the 2m inputs at p (m <= 16 outputs) */
static inline POOL_AVX512 void split_pairs(const float *p, int64_t m, __m512 *even,
                                           __m512 *odd) {
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2,
                                        0);
    const __m512i od = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3,
                                        1);
    __m512 lo = _mm512_maskz_loadu_ps(first_lanes(2 * m), p);
    __m512 hi = _mm512_maskz_loadu_ps(first_lanes(2 * m - 16), p + 16);
    *even = _mm512_permutex2var_ps(lo, ev, hi);
    *odd = _mm512_permutex2var_ps(lo, od, hi);
}

static inline POOL_AVX512 __mmask16 is_nan(__m512 v) {
    return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
}

static POOL_AVX512 void max_row_2x2_avx512(const float *r0, const float *r1, float *out,
                                           int64_t n) {
    for (int64_t o = 0; o < n; o += 16) {
        int64_t m = n - o < 16 ? n - o : 16;
        __m512 a, b, c, e;
        split_pairs(r0 + 2 * o, m, &a, &b);
        split_pairs(r1 + 2 * o, m, &c, &e);
        __m512 best = _mm512_max_ps(_mm512_max_ps(a, b), _mm512_max_ps(c, e));
        __mmask16 nan = is_nan(a) | is_nan(b) | is_nan(c) | is_nan(e);
        best = _mm512_mask_mov_ps(best, nan, _mm512_set1_ps(NAN));
        _mm512_mask_storeu_ps(out + o, first_lanes(m), best);
    }
}

static POOL_AVX512 void grad_row_2x2_avx512(const float *r0, const float *r1, const float *gy,
                                            float *g0, float *g1, int64_t n) {
    const __m512i lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16,
                                            0);
    const __m512i hi_idx = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25,
                                            9, 24, 8);
    for (int64_t o = 0; o < n; o += 16) {
        int64_t m = n - o < 16 ? n - o : 16;
        __m512 a, b, c, e;
        split_pairs(r0 + 2 * o, m, &a, &b);
        split_pairs(r1 + 2 * o, m, &c, &e);
        /* first maximum in the order a, b, c, e; else the last NaN */
        __mmask16 gb = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ);
        __m512 m1 = _mm512_mask_mov_ps(a, gb, b);
        __mmask16 gc = _mm512_cmp_ps_mask(c, m1, _CMP_GT_OQ);
        __m512 m2 = _mm512_mask_mov_ps(m1, gc, c);
        __mmask16 ge = _mm512_cmp_ps_mask(e, m2, _CMP_GT_OQ);
        __mmask16 na = is_nan(a), nb = is_nan(b), nc = is_nan(c), ne = is_nan(e);
        __mmask16 nan = na | nb | nc | ne;
        __mmask16 fe = (nan & ne) | (~nan & ge);
        __mmask16 fc = ((nan & nc) | (~nan & gc)) & ~fe;
        __mmask16 fb = ((nan & nb) | (~nan & gb)) & ~fc & ~fe;
        __mmask16 fa = ~(fb | fc | fe);
        __m512 gv = _mm512_maskz_loadu_ps(first_lanes(m), gy + o);
        __m512 ga = _mm512_maskz_mov_ps(fa, gv), gbv = _mm512_maskz_mov_ps(fb, gv);
        __m512 gc_ = _mm512_maskz_mov_ps(fc, gv), gev = _mm512_maskz_mov_ps(fe, gv);
        __mmask16 lo = first_lanes(2 * m), hi = first_lanes(2 * m - 16);
        _mm512_mask_storeu_ps(g0 + 2 * o, lo, _mm512_permutex2var_ps(ga, lo_idx, gbv));
        _mm512_mask_storeu_ps(g0 + 2 * o + 16, hi, _mm512_permutex2var_ps(ga, hi_idx, gbv));
        _mm512_mask_storeu_ps(g1 + 2 * o, lo, _mm512_permutex2var_ps(gc_, lo_idx, gev));
        _mm512_mask_storeu_ps(g1 + 2 * o + 16, hi, _mm512_permutex2var_ps(gc_, hi_idx, gev));
    }
}
#else
static int pool_has_avx512(void) { return 0; }
#endif

static void format_dims(const pf_tensor *t, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld",
                                 (long long)t->shape[i]);
    if (used < n) snprintf(buf + used, n - used, ")");
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
    g->simd = pool_has_avx512();
    g->is_2x2 = g->k[0] == 1 && g->st[0] == 1 && g->pb[0] == 0 && g->in[0] == g->out[0];
    for (int d = 1; d < POOL_DIMS; d++)
        g->is_2x2 = g->is_2x2 && g->k[d] == 2 && g->st[d] == 2 && g->pb[d] == 0 &&
                    g->in[d] >= 2 * g->out[d];   /* else end padding: the last window would
                                                   * read past x; an odd size leaves one row or
                                                   * column unread (its gradient zeroed) */
    for (int64_t k2 = 0; k2 < g->k[2] && k2 < POOL_KMAX; k2++)
        valid_range(g->in[2], g->out[2], g->st[2], g->pb[2], k2, &g->lo2[k2], &g->hi2[k2]);
    return PF_OK;
}

static inline void row_range(const pool_geom *g, int64_t k2, int64_t *lo, int64_t *hi) {
    if (k2 < POOL_KMAX) {
        *lo = g->lo2[k2];
        *hi = g->hi2[k2];
    } else {
        valid_range(g->in[2], g->out[2], g->st[2], g->pb[2], k2, lo, hi);
    }
}

static inline int64_t clamp_lo(int64_t v) { return v < 0 ? 0 : v; }

typedef struct {
    pool_geom g;
    const void *x, *v;   /* input, and the values gathered or spread (gradient) */
    void *y;
} pool_job;

/* A window's extent inside the input along one dim: [lo, hi), from its start o*st - pb. */
static inline void window_span(int64_t o, int64_t st, int64_t pb, int64_t k, int64_t in,
                               int64_t *lo, int64_t *hi) {
    int64_t s = o * st - pb, e = s + k;
    *lo = s < 0 ? 0 : s;
    *hi = e > in ? in : e;
}

/* a + b where at most one of them is nonzero bits (a sum of keep()s) */
static inline float either_f32(float a, float b) {
    uint32_t x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    x |= y;
    memcpy(&a, &x, sizeof x);
    return a;
}
static inline double either_f64(double a, double b) {
    uint64_t x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    x |= y;
    memcpy(&a, &x, sizeof x);
    return a;
}


#ifdef POOL_AVX512
#define MAX_ROW_2X2_f32(g, ...) ((g)->simd ? max_row_2x2_avx512(__VA_ARGS__)                   \
                                           : max_row_2x2_f32(__VA_ARGS__))
#define GRAD_ROW_2X2_f32(g, ...) ((g)->simd ? grad_row_2x2_avx512(__VA_ARGS__)                 \
                                            : grad_row_2x2_f32(__VA_ARGS__))
#else
#define MAX_ROW_2X2_f32(g, ...) max_row_2x2_f32(__VA_ARGS__)
#define GRAD_ROW_2X2_f32(g, ...) grad_row_2x2_f32(__VA_ARGS__)
#endif
#define MAX_ROW_2X2_f64(g, ...) max_row_2x2_f64(__VA_ARGS__)
#define GRAD_ROW_2X2_f64(g, ...) grad_row_2x2_f64(__VA_ARGS__)

#define DEFINE_POOL(T, SUF, NEG_INF)                                                           \
    /* The maximum of one output's window and, when index is given, the flat index of its     \
     * first occurrence in row-major window order; a NaN wins, the last one when there are     \
     * several (PyTorch's rules). Selects, not branches: the winner's position is random, so   \
     * a branch would be mispredicted about every other element. NaNs take a second scan. */  \
    static inline T window_max_##SUF(const pool_geom *g, const T *x, int64_t a0, int64_t b0,   \
                                     int64_t a1, int64_t b1, int64_t a2, int64_t b2,           \
                                     int64_t *index) {                                         \
        T best = NEG_INF;                                                                      \
        int nan = 0;                                                                           \
        int64_t at = (a0 * g->in[1] + a1) * g->in[2] + a2;                                     \
        for (int64_t i0 = a0; i0 < b0; i0++)                                                   \
            for (int64_t i1 = a1; i1 < b1; i1++) {                                             \
                int64_t base = (i0 * g->in[1] + i1) * g->in[2];                                \
                for (int64_t i2 = a2; i2 < b2; i2++) {                                         \
                    T v = x[base + i2];                                                        \
                    int64_t gt = v > best;                                                     \
                    at = gt ? base + i2 : at;                                                  \
                    best = v > best ? v : best;                                                \
                    nan |= v != v;                                                             \
                }                                                                              \
            }                                                                                  \
        if (nan) {                                                                             \
            for (int64_t i0 = a0; i0 < b0; i0++)                                               \
                for (int64_t i1 = a1; i1 < b1; i1++) {                                         \
                    int64_t base = (i0 * g->in[1] + i1) * g->in[2];                            \
                    for (int64_t i2 = a2; i2 < b2; i2++)                                       \
                        if (x[base + i2] != x[base + i2]) at = base + i2;                      \
                }                                                                              \
            best = (T)NAN;                                                                     \
        }                                                                                      \
        if (index) *index = at;                                                                \
        return best;                                                                           \
    }                                                                                          \
    /* 2x2 windows, stride 2, no padding, over the last two dims: the common case. Each input  \
     * is in at most one window, so the backward writes grad_x directly (no zeroing, no       \
     * scatter). Row functions of pure selects, which the compiler vectorises; the winner     \
     * follows window_max's rules: first maximum of (a, b; c, e), else the last NaN. */       \
    static inline void pick_2x2_##SUF(T a, T b, T c, T e, int *sa, int *sb, int *sc, int *se) { \
        T m1 = b > a ? b : a, m2 = c > m1 ? c : m1;                                            \
        int gb = b > a, gc = c > m1, ge = e > m2;                                              \
        int na = a != a, nb = b != b, nc = c != c, ne = e != e, nan = na | nb | nc | ne;       \
        int fe = nan ? ne : ge;                                                                \
        int fc = (nan ? nc : gc) & !fe;                                                        \
        int fb = (nan ? nb : gb) & !fc & !fe;                                                  \
        *se = fe; *sc = fc; *sb = fb; *sa = !fb & !fc & !fe;                                   \
    }                                                                                          \
    static PF_HOT void max_row_2x2_##SUF(const T *restrict r0, const T *restrict r1,           \
                                         T *restrict out, int64_t n) {                         \
        for (int64_t o = 0; o < n; o++) {                                                      \
            T a = r0[2 * o], b = r0[2 * o + 1], c = r1[2 * o], e = r1[2 * o + 1];              \
            T m = a > b ? a : b, k = c > e ? c : e;                                            \
            m = m > k ? m : k;                                                                 \
            int nan = (a != a) | (b != b) | (c != c) | (e != e);                               \
            out[o] = either_##SUF(pf_keep_##SUF(!nan, m), pf_keep_##SUF(nan, (T)NAN));               \
        }                                                                                      \
    }                                                                                          \
    static PF_HOT void grad_row_2x2_##SUF(const T *restrict r0, const T *restrict r1,          \
                                          const T *restrict gy, T *restrict g0,                \
                                          T *restrict g1, int64_t n) {                         \
        for (int64_t o = 0; o < n; o++) {                                                      \
            int sa, sb, sc, se;                                                                \
            pick_2x2_##SUF(r0[2 * o], r0[2 * o + 1], r1[2 * o], r1[2 * o + 1],                 \
                           &sa, &sb, &sc, &se);                                                \
            T gv = gy[o];                                                                      \
            g0[2 * o] = pf_keep_##SUF(sa, gv);                                                    \
            g0[2 * o + 1] = pf_keep_##SUF(sb, gv);                                                \
            g1[2 * o] = pf_keep_##SUF(sc, gv);                                                    \
            g1[2 * o + 1] = pf_keep_##SUF(se, gv);                                                \
        }                                                                                      \
    }                                                                                          \
    static PF_HOT void gather_row_2x2_##SUF(const T *restrict r0, const T *restrict r1,        \
                                            const T *restrict v0, const T *restrict v1,        \
                                            T *restrict out, int64_t n) {                      \
        for (int64_t o = 0; o < n; o++) {                                                      \
            int sa, sb, sc, se;                                                                \
            pick_2x2_##SUF(r0[2 * o], r0[2 * o + 1], r1[2 * o], r1[2 * o + 1],                 \
                           &sa, &sb, &sc, &se);                                                \
            T top = either_##SUF(pf_keep_##SUF(sa, v0[2 * o]), pf_keep_##SUF(sb, v0[2 * o + 1]));    \
            T bottom = either_##SUF(pf_keep_##SUF(sc, v1[2 * o]), pf_keep_##SUF(se, v1[2 * o + 1])); \
            out[o] = either_##SUF(top, bottom);                                                \
        }                                                                                      \
    }                                                                                          \
    static void max_pool_2x2_##SUF(const pool_job *j, int64_t p0, int64_t p1, int mode) {      \
        const pool_geom *g = &j->g;                                                            \
        int64_t in1 = g->in[1], in2 = g->in[2], out1 = g->out[1], out2 = g->out[2];            \
        int64_t in_plane = in1 * in2, out_plane = out1 * out2;                                 \
        for (int64_t p = p0 * g->in[0]; p < p1 * g->in[0]; p++) {                              \
            const T *x = (const T *)j->x + p * in_plane;                                       \
            for (int64_t o1 = 0; o1 < out1; o1++) {                                            \
                const T *r0 = x + 2 * o1 * in2, *r1 = r0 + in2;                                \
                if (mode == 0) {                                                               \
                    MAX_ROW_2X2_##SUF(g, r0, r1, (T *)j->y + p * out_plane + o1 * out2, out2); \
                } else if (mode == 2) {                                                        \
                    const T *v0 = (const T *)j->v + p * in_plane + 2 * o1 * in2;               \
                    gather_row_2x2_##SUF(r0, r1, v0, v0 + in2,                                 \
                                         (T *)j->y + p * out_plane + o1 * out2, out2);         \
                } else {                                                                       \
                    T *g0 = (T *)j->y + p * in_plane + 2 * o1 * in2, *g1 = g0 + in2;           \
                    GRAD_ROW_2X2_##SUF(g, r0, r1, (const T *)j->v + p * out_plane + o1 * out2, \
                                       g0, g1, out2);                                          \
                    if (in2 > 2 * out2) g0[in2 - 1] = g1[in2 - 1] = 0;   /* unread column */ \
                }                                                                              \
            }                                                                                  \
            if (mode == 1 && in1 > 2 * out1)                             /* unread row */    \
                memset((T *)j->y + p * in_plane + (in1 - 1) * in2, 0, (size_t)in2 * sizeof(T)); \
        }                                                                                      \
    }                                                                                          \
    /* mode 0: y = window maxima; 1: grad_x (zeroed here) += grad_y at each argmax;            \
     * 2: y = values at each argmax */                                                         \
    static PF_HOT void max_pool_run_##SUF(const pool_job *j, int64_t p0, int64_t p1, int mode) { \
        const pool_geom *g = &j->g;                                                            \
        if (g->is_2x2) { max_pool_2x2_##SUF(j, p0, p1, mode); return; }                        \
        const int64_t *in = g->in, *out = g->out, *st = g->st, *pb = g->pb, *k = g->k;         \
        for (int64_t plane = p0; plane < p1; plane++) {                                        \
            const T *x = (const T *)j->x + plane * g->in_size;                                 \
            const T *v = (const T *)j->v + plane * (mode == 1 ? g->out_size : g->in_size);     \
            T *dst = (T *)j->y + plane * (mode == 1 ? g->in_size : g->out_size);               \
            if (mode == 1) memset(dst, 0, (size_t)g->in_size * sizeof(T));                     \
            int64_t o = 0;                                                                     \
            for (int64_t o0 = 0; o0 < out[0]; o0++) {                                          \
                int64_t a0, b0;                                                                \
                window_span(o0, st[0], pb[0], k[0], in[0], &a0, &b0);                          \
                for (int64_t o1 = 0; o1 < out[1]; o1++) {                                      \
                    int64_t a1, b1;                                                            \
                    window_span(o1, st[1], pb[1], k[1], in[1], &a1, &b1);                      \
                    for (int64_t o2 = 0; o2 < out[2]; o2++, o++) {                             \
                        int64_t a2, b2, at;                                                    \
                        window_span(o2, st[2], pb[2], k[2], in[2], &a2, &b2);                  \
                        if (mode == 0) {                                                       \
                            dst[o] = window_max_##SUF(g, x, a0, b0, a1, b1, a2, b2, NULL);     \
                        } else {                                                               \
                            window_max_##SUF(g, x, a0, b0, a1, b1, a2, b2, &at);               \
                            if (mode == 1) dst[at] += v[o];                                    \
                            else dst[o] = v[at];                                               \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    static void max_pool_planes_##SUF(void *p, int64_t p0, int64_t p1) {                       \
        max_pool_run_##SUF((const pool_job *)p, p0, p1, 0);                                    \
    }                                                                                          \
    static void max_pool_grad_planes_##SUF(void *p, int64_t p0, int64_t p1) {                  \
        max_pool_run_##SUF((const pool_job *)p, p0, p1, 1);                                    \
    }                                                                                          \
    static void max_pool_gather_planes_##SUF(void *p, int64_t p0, int64_t p1) {                \
        max_pool_run_##SUF((const pool_job *)p, p0, p1, 2);                                    \
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
                                    row_range(g, k2, &lo, &hi);        \
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

void pf_max_pool_2x2(int dtype, const void *x, int64_t planes, int64_t h, int64_t w, void *y) {
    pool_job j = {0};
    pool_geom *g = &j.g;
    g->dtype = dtype;
    g->planes = planes;
    g->in[0] = g->out[0] = g->k[0] = g->st[0] = 1;
    g->in[1] = h;
    g->in[2] = w;
    g->out[1] = h / 2;
    g->out[2] = w / 2;
    g->k[1] = g->k[2] = g->st[1] = g->st[2] = 2;
    g->in_size = h * w;
    g->out_size = g->out[1] * g->out[2];
    g->k_size = 4;
    g->is_2x2 = 1;
    g->simd = pool_has_avx512();
    j.x = x;
    j.y = y;
    run_planes(&j, g->out_size * g->k_size,
               dtype == PF_FLOAT32 ? max_pool_planes_f32 : max_pool_planes_f64);
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
