/* conv.c -- convolutions over 1, 2 or 3 spatial dims, channels first (stride, separate begin
 * and end padding, dilation, groups): forward with fused bias and activation, the gradients
 * with respect to input, weight and bias.
 *
 * Lowering: im2col into a per-thread scratch block, then one BLAS product per block. When one
 * image's output is narrow (11x11), a block holds several images side by side (columns
 * b*P .. (b+1)*P) so the product is wide enough for the BLAS to run near its peak, and stays
 * in the core's L2 cache between im2col and the product; a wide output is its own block and
 * the product writes y in place. Work is split over the pool by images; each part owns one
 * slot of the workspace (pf_args.workspace, sized by the kernel table's workspace function,
 * or allocated here when the caller gave none). The bias and activation are applied while a
 * block's output is in cache; a fused ReLU's gradient is applied by the gradient kernels as
 * they gather grad_y, and the bias gradient is summed by the weight-gradient kernel there.
 *
 * Every spatial geometry is handled as 3-D, missing leading dims having size 1, so one code
 * path serves 1-D, 2-D and 3-D; one and two spatial dims have faster im2col/col2im.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "conv_direct.h"
#include "internal.h"

#define CONV_DIMS 3
/* Target bytes of one part's scratch block (im2col columns plus the product's output). */
#define CONV_BLOCK_BYTES (384 * 1024)
/* Products at least this wide run near the BLAS's peak (measured with OpenBLAS, SkylakeX). */
#define CONV_WIDE_COLUMNS 320
#define CONV_ALIGN 64

typedef struct {
    int nd, act, dtype;
    int64_t N, C, O, G, Cg, Og;
    int64_t in[CONV_DIMS], k[CONV_DIMS], out[CONV_DIMS], st[CONV_DIMS], dil[CONV_DIMS],
        pb[CONV_DIMS];
    int64_t in_size, out_size, k_size, rows;   /* rows = Cg * k_size: im2col rows per group */
    int pool;        /* forward only: 2 = y holds the 2x2/2 max pool of the output (floor) */
    int64_t pooled_size;                       /* y's plane when pooled */
    int pointwise;   /* 1x1 kernel, unit stride, no padding: the input is its own im2col */
    int masked;      /* gradient kernels: grad_y is masked by y > 0 (a fused ReLU's gradient) */
    int simd;        /* the CPU has AVX-512: float32 col2im gathers with masked loads */
} conv_geom;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define CONV_AVX512 __attribute__((target("avx512f")))
static int conv_has_avx512(void) { return __builtin_cpu_supports("avx512f"); }
#else
static int conv_has_avx512(void) { return 0; }
#endif

static void format_dims(const pf_tensor *t, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld",
                                 (long long)t->shape[i]);
    if (used < n) snprintf(buf + used, n - used, ")");
}

/* iattr: nd, stride[nd], dilation[nd], pad_begin[nd], pad_end[nd], groups[, activation].
 * x is (N, C, *in), w (O, C/groups, *k), y (N, O, *out); the three names say which tensor of
 * the call plays each role (the gradient kernels take them in other places). */
static int conv_geometry(const pf_args *a, const pf_tensor *x, const pf_tensor *w,
                         const pf_tensor *y, const char *xn, const char *wn, const char *yn,
                         conv_geom *g) {
    PF_CHECK(a->n_iattr >= 1 && a->iattr != NULL, PF_ERR_ARGUMENT,
             "missing the geometry attributes");
    int nd = (int)a->iattr[0];
    PF_CHECK(nd >= 1 && nd <= CONV_DIMS, PF_ERR_ARGUMENT, "%d spatial dims (1..3 supported)", nd);
    PF_TRY(pf_check_attrs(a, 2 + 4 * nd, 0));
    PF_TRY(pf_check_contiguous(x, xn));
    PF_TRY(pf_check_contiguous(w, wn));
    PF_TRY(pf_check_contiguous(y, yn));
    PF_TRY(pf_check_float(x, xn));
    PF_TRY(pf_check_dtype(w, x->dtype, wn));
    PF_TRY(pf_check_dtype(y, x->dtype, yn));
    char sx[160], sw[160], sy[160];
    format_dims(x, sx, sizeof sx);
    format_dims(w, sw, sizeof sw);
    format_dims(y, sy, sizeof sy);
    PF_CHECK(x->ndim == nd + 2 && w->ndim == nd + 2 && y->ndim == nd + 2, PF_ERR_SHAPE,
             "%d-D convolution needs %d-dim tensors: %s %s, %s %s, %s %s", nd, nd + 2, xn, sx,
             wn, sw, yn, sy);
    memset(g, 0, sizeof *g);
    g->nd = nd;
    g->dtype = x->dtype;
    g->N = x->shape[0];
    g->C = x->shape[1];
    g->O = w->shape[0];
    g->Cg = w->shape[1];
    g->G = a->iattr[1 + 4 * nd];
    g->act = a->n_iattr > 2 + 4 * nd ? (int)a->iattr[2 + 4 * nd] : PF_ACT_NONE;
    g->pool = a->n_iattr > 3 + 4 * nd ? (int)a->iattr[3 + 4 * nd] : 0;
    PF_CHECK(g->pool == 0 || (g->pool == 2 && nd == 2), PF_ERR_ARGUMENT,
             "a fused max pool must be 2x2 after a 2-D convolution (pool %d, %d-D)", g->pool,
             nd);
    PF_CHECK(g->G >= 1, PF_ERR_ARGUMENT, "groups must be positive, got %lld", (long long)g->G);
    PF_CHECK(g->Cg >= 1 && g->C == g->Cg * g->G, PF_ERR_SHAPE,
             "%s %s has %lld channels but %s %s with %lld groups expects %lld", xn, sx,
             (long long)g->C, wn, sw, (long long)g->G, (long long)(g->Cg * g->G));
    PF_CHECK(g->O % g->G == 0, PF_ERR_SHAPE,
             "%lld output channels of %s %s do not split into %lld groups", (long long)g->O, wn,
             sw, (long long)g->G);
    g->Og = g->O / g->G;
    PF_CHECK(y->shape[0] == g->N && y->shape[1] == g->O, PF_ERR_SHAPE,
             "%s %s does not match %s %s and %s %s", yn, sy, xn, sx, wn, sw);
    int off = CONV_DIMS - nd;
    for (int d = 0; d < CONV_DIMS; d++) {
        g->in[d] = g->k[d] = g->out[d] = g->st[d] = g->dil[d] = 1;
        g->pb[d] = 0;
    }
    for (int d = 0; d < nd; d++) {
        int64_t in = x->shape[2 + d], k = w->shape[2 + d];
        int64_t st = a->iattr[1 + d], dil = a->iattr[1 + nd + d];
        int64_t pb = a->iattr[1 + 2 * nd + d], pe = a->iattr[1 + 3 * nd + d];
        PF_CHECK(st >= 1 && dil >= 1, PF_ERR_ARGUMENT,
                 "stride and dilation must be positive (dim %d: stride %lld, dilation %lld)", d,
                 (long long)st, (long long)dil);
        PF_CHECK(pb >= 0 && pe >= 0, PF_ERR_ARGUMENT, "negative padding in dim %d", d);
        PF_CHECK(k >= 1, PF_ERR_SHAPE, "%s %s has an empty kernel", wn, sw);
        int64_t span = dil * (k - 1) + 1, padded = in + pb + pe;
        PF_CHECK(padded >= span, PF_ERR_SHAPE,
                 "the kernel spans %lld in spatial dim %d (dilation %lld) but the padded input "
                 "%s has only %lld there", (long long)span, d, (long long)dil, sx,
                 (long long)padded);
        int64_t out = (padded - span) / st + 1;
        int64_t want = g->pool ? out / g->pool : out;
        PF_CHECK(y->shape[2 + d] == want, PF_ERR_SHAPE,
                 "%s %s should have size %lld in spatial dim %d for %s %s and %s %s%s", yn, sy,
                 (long long)want, d, xn, sx, wn, sw, g->pool ? " (max-pooled 2x2)" : "");
        g->in[off + d] = in;
        g->k[off + d] = k;
        g->out[off + d] = out;
        g->st[off + d] = st;
        g->dil[off + d] = dil;
        g->pb[off + d] = pb;
    }
    g->in_size = g->in[0] * g->in[1] * g->in[2];
    g->out_size = g->out[0] * g->out[1] * g->out[2];
    g->pooled_size = g->pool ? (g->out[1] / 2) * (g->out[2] / 2) : g->out_size;
    g->k_size = g->k[0] * g->k[1] * g->k[2];
    g->rows = g->Cg * g->k_size;
    g->simd = conv_has_avx512();
    g->pointwise = g->k_size == 1;
    for (int d = 0; d < CONV_DIMS; d++)
        g->pointwise = g->pointwise && g->st[d] == 1 && g->pb[d] == 0 && g->in[d] == g->out[d];
    PF_CHECK(g->act >= PF_ACT_NONE && g->act <= PF_ACT_TANH, PF_ERR_ARGUMENT,
             "activation %d cannot be fused into a convolution", g->act);
    return PF_OK;
}

/* Sums of rows in 16 independent lanes: the compiler may not reorder a float sum, and one
 * running total is one add per element latency-bound. */
#define DEFINE_ROW_SUM(T, SUF)                                                                 \
    static PF_HOT T row_sum_##SUF(const T *row, int64_t n) {                                   \
        T lane[16] = {0};                                                                      \
        int64_t i = 0;                                                                         \
        for (; i + 16 <= n; i += 16)                                                           \
            for (int l = 0; l < 16; l++) lane[l] += row[i + l];                                \
        T s = 0;                                                                               \
        for (; i < n; i++) s += row[i];                                                        \
        for (int l = 0; l < 16; l++) s += lane[l];                                             \
        return s;                                                                              \
    }
DEFINE_ROW_SUM(float, f32)
DEFINE_ROW_SUM(double, f64)

static inline int64_t ceil_div(int64_t a, int64_t b) {   /* b > 0 */
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

/* Output positions o in [lo, hi) read input o*st - pb + kk*dil inside [0, in). */
static inline void valid_range(int64_t in, int64_t out, int64_t st, int64_t pb, int64_t kk,
                               int64_t dil, int64_t *lo, int64_t *hi) {
    int64_t shift = kk * dil - pb;
    int64_t l = ceil_div(-shift, st), h = ceil_div(in - shift, st);
    *lo = l < 0 ? 0 : (l > out ? out : l);
    *hi = h < *lo ? *lo : (h > out ? out : h);
}

/* ---- im2col / col2im over one image's group of channels ----
 * cols row r = (c, k0, k1, k2), column p = (o0, o1, o2); ldc is the row stride. */
#define DEFINE_IM2COL(T, SUF)                                                                  \
    static PF_HOT void im2col_##SUF(const conv_geom *g, const T *src, T *cols, int64_t ldc) {  \
        const int64_t *in = g->in, *out = g->out, *st = g->st, *dil = g->dil, *pb = g->pb;     \
        int64_t r = 0;                                                                         \
        for (int64_t c = 0; c < g->Cg; c++)                                                    \
            for (int64_t k0 = 0; k0 < g->k[0]; k0++)                                           \
                for (int64_t k1 = 0; k1 < g->k[1]; k1++)                                       \
                    for (int64_t k2 = 0; k2 < g->k[2]; k2++, r++) {                            \
                        T *row = cols + r * ldc;                                               \
                        int64_t lo2, hi2, shift2 = k2 * dil[2] - pb[2];                        \
                        valid_range(in[2], out[2], st[2], pb[2], k2, dil[2], &lo2, &hi2);      \
                        for (int64_t o0 = 0; o0 < out[0]; o0++) {                              \
                            int64_t i0 = o0 * st[0] - pb[0] + k0 * dil[0];                     \
                            for (int64_t o1 = 0; o1 < out[1]; o1++) {                          \
                                T *dst = row + (o0 * out[1] + o1) * out[2];                    \
                                int64_t i1 = o1 * st[1] - pb[1] + k1 * dil[1];                 \
                                if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1]) {         \
                                    memset(dst, 0, (size_t)out[2] * sizeof(T));                \
                                    continue;                                                  \
                                }                                                              \
                                const T *line = src + ((c * in[0] + i0) * in[1] + i1) * in[2]; \
                                for (int64_t o2 = 0; o2 < lo2; o2++) dst[o2] = 0;              \
                                if (st[2] == 1) {   /* short runs: a loop beats memcpy */ \
                                    const T *from = line + shift2;                             \
                                    for (int64_t o2 = lo2; o2 < hi2; o2++) dst[o2] = from[o2]; \
                                } else {                                                       \
                                    int64_t s = st[2];                                         \
                                    for (int64_t o2 = lo2; o2 < hi2; o2++)                     \
                                        dst[o2] = line[o2 * s + shift2];                       \
                                }                                                              \
                                for (int64_t o2 = hi2; o2 < out[2]; o2++) dst[o2] = 0;         \
                            }                                                                  \
                        }                                                                      \
                    }                                                                          \
    }                                                                                          \
    /* dst (one image's group of channels) = the sum of the columns' contributions */          \
    static PF_HOT void col2im_##SUF(const conv_geom *g, const T *cols, int64_t ldc, T *dst) {  \
        const int64_t *in = g->in, *out = g->out, *st = g->st, *dil = g->dil, *pb = g->pb;     \
        memset(dst, 0, (size_t)(g->Cg * g->in_size) * sizeof(T));                              \
        int64_t r = 0;                                                                         \
        for (int64_t c = 0; c < g->Cg; c++)                                                    \
            for (int64_t k0 = 0; k0 < g->k[0]; k0++)                                           \
                for (int64_t k1 = 0; k1 < g->k[1]; k1++)                                       \
                    for (int64_t k2 = 0; k2 < g->k[2]; k2++, r++) {                            \
                        const T *row = cols + r * ldc;                                         \
                        int64_t lo2, hi2, shift2 = k2 * dil[2] - pb[2];                        \
                        valid_range(in[2], out[2], st[2], pb[2], k2, dil[2], &lo2, &hi2);      \
                        for (int64_t o0 = 0; o0 < out[0]; o0++) {                              \
                            int64_t i0 = o0 * st[0] - pb[0] + k0 * dil[0];                     \
                            if (i0 < 0 || i0 >= in[0]) continue;                               \
                            for (int64_t o1 = 0; o1 < out[1]; o1++) {                          \
                                int64_t i1 = o1 * st[1] - pb[1] + k1 * dil[1];                 \
                                if (i1 < 0 || i1 >= in[1]) continue;                           \
                                const T *s = row + (o0 * out[1] + o1) * out[2];                \
                                T *line = dst + ((c * in[0] + i0) * in[1] + i1) * in[2];       \
                                int64_t step = st[2];                                          \
                                for (int64_t o2 = lo2; o2 < hi2; o2++)                         \
                                    line[o2 * step + shift2] += s[o2];                         \
                            }                                                                  \
                        }                                                                      \
                    }                                                                          \
    }

/* Runs of an output row are short (11 elements for a 3x3 kernel on 13x13), so moving them is
 * most of im2col's time: a short run is copied in one fixed-size move of IM2COL_RUN elements
 * when the excess lands on runs written right after (those of this image's part of the cols
 * row), and exactly otherwise. */
#define IM2COL_RUN 16


/* im2col for one or two spatial dims (depth 1), the common case, with the geometry in
 * locals. */
#define DEFINE_IM2COL_2D(T, SUF)                                                               \
    static PF_HOT void im2col_2d_##SUF(const conv_geom *g, const T *restrict src,                \
                                     const T *src_end, T *restrict cols, int64_t ldc) {        \
        const int64_t in1 = g->in[1], in2 = g->in[2], out1 = g->out[1], out2 = g->out[2];      \
        const int64_t st1 = g->st[1], st2 = g->st[2], d1 = g->dil[1], d2 = g->dil[2];          \
        const int64_t pb1 = g->pb[1], pb2 = g->pb[2], k1n = g->k[1], k2n = g->k[2];            \
        T *row = cols;                                                                         \
        for (int64_t c = 0; c < g->Cg; c++) {                                                  \
            const T *plane = src + c * in1 * in2;                                              \
            for (int64_t k1 = 0; k1 < k1n; k1++)                                               \
                for (int64_t k2 = 0; k2 < k2n; k2++, row += ldc) {                             \
                    int64_t lo, hi, shift = k2 * d2 - pb2;                                     \
                    valid_range(in2, out2, st2, pb2, k2, d2, &lo, &hi);                        \
                    int whole = st2 == 1 && lo == 0 && hi == out2 && out2 <= IM2COL_RUN;       \
                    T *dst = row;                                                              \
                    for (int64_t o1 = 0; o1 < out1; o1++, dst += out2) {                       \
                        int64_t i1 = o1 * st1 - pb1 + k1 * d1;                                 \
                        if (i1 < 0 || i1 >= in1) {                                             \
                            memset(dst, 0, (size_t)out2 * sizeof(T));                          \
                            continue;                                                          \
                        }                                                                      \
                        const T *line = plane + i1 * in2 + shift;                              \
                        int overrun = whole && o1 * out2 + IM2COL_RUN <= out1 * out2 &&        \
                                      line + IM2COL_RUN <= src_end;                            \
                        for (int64_t o2 = 0; o2 < lo; o2++) dst[o2] = 0;                       \
                        if (st2 == 1)                                                          \
                            if (overrun)   /* constant size: one inlined vector move */     \
                                memcpy(dst, line, IM2COL_RUN * sizeof(T));                     \
                            else                                                               \
                                memcpy(dst + lo, line + lo, (size_t)(hi - lo) * sizeof(T));    \
                        else                                                                   \
                            for (int64_t o2 = lo; o2 < hi; o2++) dst[o2] = line[o2 * st2];     \
                        for (int64_t o2 = hi; o2 < out2; o2++) dst[o2] = 0;                    \
                    }                                                                          \
                }                                                                              \
        }                                                                                      \
    }

/* col2im for one or two spatial dims: dst (one image's group of channels) = the sum of the
 * columns' contributions, scattered row run by row run. */
#define DEFINE_COL2IM_2D(T, SUF)                                                               \
    static PF_HOT void col2im_2d_##SUF(const conv_geom *g, const T *restrict cols, int64_t ldc, \
                                       T *restrict dst) {                                      \
        memset(dst, 0, (size_t)(g->Cg * g->in_size) * sizeof(T));                              \
        const int64_t in1 = g->in[1], in2 = g->in[2], out1 = g->out[1], out2 = g->out[2];      \
        const int64_t st1 = g->st[1], st2 = g->st[2], d1 = g->dil[1], d2 = g->dil[2];          \
        const int64_t pb1 = g->pb[1], pb2 = g->pb[2], k1n = g->k[1], k2n = g->k[2];            \
        const T *row = cols;                                                                   \
        for (int64_t c = 0; c < g->Cg; c++) {                                                  \
            T *plane = dst + c * in1 * in2;                                                    \
            for (int64_t k1 = 0; k1 < k1n; k1++)                                               \
                for (int64_t k2 = 0; k2 < k2n; k2++, row += ldc) {                             \
                    int64_t lo, hi, shift = k2 * d2 - pb2;                                     \
                    valid_range(in2, out2, st2, pb2, k2, d2, &lo, &hi);                        \
                    const T *from = row;                                                       \
                    for (int64_t o1 = 0; o1 < out1; o1++, from += out2) {                      \
                        int64_t i1 = o1 * st1 - pb1 + k1 * d1;                                 \
                        if (i1 < 0 || i1 >= in1) continue;                                     \
                        T *line = plane + i1 * in2;                                            \
                        for (int64_t o2 = lo; o2 < hi; o2++) line[o2 * st2 + shift] += from[o2]; \
                    }                                                                          \
                }                                                                              \
        }                                                                                      \
    }

DEFINE_COL2IM_2D(float, f32)
DEFINE_COL2IM_2D(double, f64)
DEFINE_IM2COL_2D(float, f32)
DEFINE_IM2COL_2D(double, f64)

#ifdef CONV_AVX512
/* col2im as a gather, for unit stride along rows: each 16-wide piece of an input row sums, in
 * a register, the column runs of every kernel offset that reaches it, and is stored once: no
 * zeroing pass and no read-modify-write (masked stores followed by overlapping loads defeat
 * store forwarding). Lanes outside a run are masked off, and masked-off lanes are never read,
 * so a run's start may lie before its row. */
static CONV_AVX512 void col2im_2d_f32_strided(const conv_geom *g, const float *restrict cols,
                                              int64_t ldc, float *restrict dst);

static CONV_AVX512 void col2im_2d_f32_avx512(const conv_geom *g, const float *restrict cols,
                                             int64_t ldc, float *restrict dst) {
    if (g->st[2] != 1) {
        col2im_2d_f32_strided(g, cols, ldc, dst);
        return;
    }
    const int64_t in1 = g->in[1], in2 = g->in[2], out1 = g->out[1], out2 = g->out[2];
    const int64_t st1 = g->st[1], d1 = g->dil[1], d2 = g->dil[2];
    const int64_t pb1 = g->pb[1], pb2 = g->pb[2], k1n = g->k[1], k2n = g->k[2];
    for (int64_t c = 0; c < g->Cg; c++)
        for (int64_t i1 = 0; i1 < in1; i1++) {
            float *line = dst + (c * in1 + i1) * in2;
            for (int64_t j0 = 0; j0 < in2; j0 += 16) {
                int64_t nj = in2 - j0 < 16 ? in2 - j0 : 16;
                __m512 acc = _mm512_setzero_ps();
                for (int64_t k1 = 0; k1 < k1n; k1++) {
                    int64_t t = i1 + pb1 - k1 * d1;
                    if (t < 0 || t % st1) continue;
                    int64_t o1 = t / st1;
                    if (o1 >= out1) continue;
                    const float *runs = cols + (c * k1n + k1) * k2n * ldc + o1 * out2;
                    for (int64_t k2 = 0; k2 < k2n; k2++) {
                        int64_t off = j0 + pb2 - k2 * d2;      /* the run index of lane 0 */
                        int64_t lo = off < 0 ? -off : 0, hi = out2 - off < nj ? out2 - off : nj;
                        if (lo >= hi) continue;
                        __mmask16 m = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
                        const float *at = (const float *)((uintptr_t)(runs + k2 * ldc) +
                                                          (intptr_t)off * (intptr_t)sizeof(float));
                        acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, at));
                    }
                }
                _mm512_mask_storeu_ps(line + j0, (__mmask16)((1u << nj) - 1), acc);
            }
        }
}

/* The same gather for a row stride s > 1 (transposed convolutions that upsample): lane l of a
 * piece is input position j0 + l, which kernel column k2 reaches from run element
 * (j0 + l + pb - k2*d) / s when that divides; those lanes are every s-th from the first that
 * does, and their run elements are consecutive, so one expanding load spreads them out. */
static CONV_AVX512 void col2im_2d_f32_strided(const conv_geom *g, const float *restrict cols,
                                              int64_t ldc, float *restrict dst) {
    const int64_t in1 = g->in[1], in2 = g->in[2], out1 = g->out[1], out2 = g->out[2];
    const int64_t st1 = g->st[1], st2 = g->st[2], d1 = g->dil[1], d2 = g->dil[2];
    const int64_t pb1 = g->pb[1], pb2 = g->pb[2], k1n = g->k[1], k2n = g->k[2];
    enum { MAX_PIECE_TAPS = 1024 };
    int64_t pieces = (in2 + 15) / 16;
    if (pieces * k2n > MAX_PIECE_TAPS || k1n > 64) {   /* beyond the tables: scalar loops */
        col2im_2d_f32(g, cols, ldc, dst);
        return;
    }
    /* per 16-lane piece of a row and kernel column: the lanes it reaches and the run element
     * of the first (the same for every channel and row, so found once, without divisions in
     * the loop) */
    __mmask16 lanes[MAX_PIECE_TAPS];
    int64_t first[MAX_PIECE_TAPS];
    unsigned every = 0;                       /* lanes 0, s, 2s, ... */
    for (int64_t l = 0; l < 16; l += st2) every |= 1u << l;
    for (int64_t p = 0; p < pieces; p++) {
        int64_t j0 = p * 16, nj = in2 - j0 < 16 ? in2 - j0 : 16;
        for (int64_t k2 = 0; k2 < k2n; k2++) {
            int64_t off = j0 + pb2 - k2 * d2;         /* s * (run index) of lane 0 */
            int64_t l0 = off >= 0 ? (st2 - off % st2) % st2 : -off;
            /* lanes past the run's end: (off + l) / s >= out2 */
            int64_t hi = st2 * out2 - off < nj ? st2 * out2 - off : nj;
            lanes[p * k2n + k2] = l0 < hi ? (__mmask16)((every << l0) & ((1u << hi) - 1)) : 0;
            first[p * k2n + k2] = l0 < hi ? k2 * ldc + (off + l0) / st2 : 0;
        }
    }
    for (int64_t c = 0; c < g->Cg; c++)
        for (int64_t i1 = 0; i1 < in1; i1++) {
            float *line = dst + (c * in1 + i1) * in2;
            const float *runs[64];
            int nk = 0;
            for (int64_t k1 = 0; k1 < k1n; k1++) {
                int64_t t = i1 + pb1 - k1 * d1;
                if (t < 0 || t % st1 || t / st1 >= out1) continue;
                runs[nk++] = cols + (c * k1n + k1) * k2n * ldc + t / st1 * out2;
            }
            for (int64_t p = 0; p < pieces; p++) {
                int64_t nj = in2 - p * 16 < 16 ? in2 - p * 16 : 16;
                const __mmask16 *m = lanes + p * k2n;
                const int64_t *at = first + p * k2n;
                __m512 acc = _mm512_setzero_ps();
                for (int r = 0; r < nk; r++)
                    for (int64_t k2 = 0; k2 < k2n; k2++)
                        if (m[k2])
                            acc = _mm512_add_ps(acc, _mm512_maskz_expandloadu_ps(m[k2],
                                                                                 runs[r] + at[k2]));
                _mm512_mask_storeu_ps(line + p * 16, (__mmask16)((1u << nj) - 1), acc);
            }
        }
}

/* im2col with a row stride s > 1 (downsampling convolutions, and the gradient of transposed
 * ones): 16 strided elements of an input row per move, picked from two loads by one permute
 * when s is 2, by a gather otherwise. */
static CONV_AVX512 void im2col_2d_f32_strided(const conv_geom *g, const float *restrict src,
                                              const float *src_end, float *restrict cols,
                                              int64_t ldc) {
    const int64_t in1 = g->in[1], in2 = g->in[2], out1 = g->out[1], out2 = g->out[2];
    const int64_t st1 = g->st[1], st2 = g->st[2], d1 = g->dil[1], d2 = g->dil[2];
    const int64_t pb1 = g->pb[1], pb2 = g->pb[2], k1n = g->k[1], k2n = g->k[2];
    const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4,
                                           2, 0);
    const __m512i steps = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7,
                                                              6, 5, 4, 3, 2, 1, 0),
                                             _mm512_set1_epi32((int)st2));
    enum { MAX_PIECES = 64 };
    int64_t pieces = (out2 + 15) / 16;
    if (pieces > MAX_PIECES) {                 /* rows too wide for the mask table */
        im2col_2d_f32(g, src, src_end, cols, ldc);
        return;
    }
    /* per kernel column and 16-lane piece of an output row: the lanes to store, the lanes in
     * [lo, hi) that read the input (the others are zero) and, for stride 2, which of the 32
     * elements under the piece they read; the same for every channel and row */
    typedef struct { __mmask16 store, read; uint32_t elements; } piece_masks;
    piece_masks masks[MAX_PIECES];
    float *row = cols;
    for (int64_t c = 0; c < g->Cg; c++) {
        const float *plane = src + c * in1 * in2;
        for (int64_t k1 = 0; k1 < k1n; k1++)
            for (int64_t k2 = 0; k2 < k2n; k2++, row += ldc) {
                int64_t lo, hi, shift = k2 * d2 - pb2;
                valid_range(in2, out2, st2, pb2, k2, d2, &lo, &hi);
                for (int64_t p = 0; p < pieces; p++) {
                    int64_t o2 = p * 16, n = out2 - o2 < 16 ? out2 - o2 : 16;
                    int64_t a = lo - o2 > 0 ? lo - o2 : 0, b = hi - o2 < n ? hi - o2 : n;
                    masks[p].store = (__mmask16)((1u << n) - 1);
                    masks[p].read = a < b ? (__mmask16)(((1u << b) - 1) & ~((1u << a) - 1)) : 0;
                    /* lane l reads element 2l: elements [2a, 2b - 1) */
                    masks[p].elements = a < b ? (uint32_t)(((1ull << (2 * b - 1)) - 1) &
                                                            ~((1ull << (2 * a)) - 1)) : 0;
                }
                float *dst = row;
                for (int64_t o1 = 0; o1 < out1; o1++, dst += out2) {
                    int64_t i1 = o1 * st1 - pb1 + k1 * d1;
                    if (i1 < 0 || i1 >= in1) {
                        memset(dst, 0, (size_t)out2 * sizeof(float));
                        continue;
                    }
                    /* whole pieces, the lanes outside [lo, hi) zero: masked lanes are never
                       read, so no scalar edge loops */
                    const float *line = plane + i1 * in2 + shift;
                    for (int64_t p = 0; p < pieces; p++) {
                        const float *from = line + p * 16 * st2;
                        __m512 v;
                        if (st2 == 2) {
                            uint32_t e = masks[p].elements;
                            __m512 lo16 = _mm512_maskz_loadu_ps((__mmask16)(e & 0xffffu), from);
                            __m512 hi16 = _mm512_maskz_loadu_ps((__mmask16)(e >> 16), from + 16);
                            v = _mm512_maskz_permutex2var_ps(masks[p].read, lo16, evens, hi16);
                        } else {
                            v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), masks[p].read,
                                                         steps, from, 4);
                        }
                        _mm512_mask_storeu_ps(dst + p * 16, masks[p].store, v);
                    }
                }
            }
    }
}
#else
#define col2im_2d_f32_avx512 col2im_2d_f32
#define im2col_2d_f32_strided im2col_2d_f32
#endif
/* float32 takes the AVX-512 col2im where the CPU has it (g->simd); float64 serves only
 * gradient checks */
#define IM2COL_2D_f32(g, ...) ((g)->simd && (g)->st[2] > 1 ? im2col_2d_f32_strided(g, __VA_ARGS__) \
                                                             : im2col_2d_f32(g, __VA_ARGS__))
#define IM2COL_2D_f64(g, ...) im2col_2d_f64(g, __VA_ARGS__)
#define COL2IM_2D_f32(g, ...) ((g)->simd ? col2im_2d_f32_avx512(g, __VA_ARGS__)               \
                                         : col2im_2d_f32(g, __VA_ARGS__))
#define COL2IM_2D_f64(g, ...) col2im_2d_f64(g, __VA_ARGS__)

DEFINE_IM2COL(float, f32)
DEFINE_IM2COL(double, f64)

#define IM2COL(SUF, g, src, src_end, cols, ldc)                                                \
    ((g)->out[0] == 1 && (g)->k[0] == 1 ? IM2COL_2D_##SUF(g, src, src_end, cols, ldc)          \
                                        : im2col_##SUF(g, src, cols, ldc))

#define COL2IM(SUF, g, cols, ldc, dst)                                                         \
    ((g)->out[0] == 1 && (g)->k[0] == 1 ? COL2IM_2D_##SUF(g, cols, ldc, dst)                   \
                                        : col2im_##SUF(g, cols, ldc, dst))

/* ---- block sizes and the workspace ---- */
enum { CONV_FORWARD = 0, CONV_GRAD_INPUT = 1, CONV_GRAD_WEIGHT = 2 };

/* Images per block: one when an image's output is wide enough for the BLAS on its own (the
 * product then writes y in place, no copy); else enough images for about CONV_WIDE_COLUMNS
 * columns, as long as the block stays in L2. The count does not depend on the number of
 * parts, so a workspace sized for one thread count fits any other. */
static int64_t conv_block_images(const conv_geom *g) {
    if (g->out_size >= CONV_WIDE_COLUMNS) return 1;
    int64_t per_image = (g->rows + g->Og) * g->out_size * (int64_t)pf_dtype_size(g->dtype);
    int64_t b = (CONV_WIDE_COLUMNS + g->out_size - 1) / (g->out_size > 0 ? g->out_size : 1);
    if (per_image > 0 && b * per_image > CONV_BLOCK_BYTES) b = CONV_BLOCK_BYTES / per_image;
    if (b > g->N) b = g->N;
    return b < 1 ? 1 : b;
}

static int64_t align_up(int64_t n) { return (n + CONV_ALIGN - 1) & ~(int64_t)(CONV_ALIGN - 1); }

typedef struct {
    int64_t block;         /* images per block */
    int64_t cols, gy, out, partial, gwt;   /* element offsets of the pieces inside a slot */
    int64_t slot_bytes;
} conv_slot;

static conv_slot conv_slot_layout(const conv_geom *g, int kind) {
    conv_slot s;
    int64_t es = (int64_t)pf_dtype_size(g->dtype);
    s.block = conv_block_images(g);
    int64_t width = s.block * g->out_size;
    int64_t cols = g->rows * width, gy = 0, out = 0, partial = 0, gwt = 0;
    if (kind == CONV_FORWARD && s.block > 1) out = g->Og * width;
    if (kind != CONV_FORWARD && (s.block > 1 || g->masked)) gy = g->Og * width;
    if (kind == CONV_GRAD_WEIGHT) {
        partial = g->O * g->rows + g->O;   /* weight, bias */
        if (g->rows > g->Og) gwt = g->O * g->rows;   /* gw transposed, per group */
    }
    int64_t at = 0;
    s.cols = at; at += align_up(cols * es) / es;
    s.gy = at; at += align_up(gy * es) / es;
    s.out = at; at += align_up(out * es) / es;
    s.partial = at; at += align_up(partial * es) / es;
    s.gwt = at; at += align_up(gwt * es) / es;
    s.slot_bytes = at * es;
    return s;
}

static int64_t conv_parts_wanted(const conv_geom *g) {
    int64_t parts = pf_threads();
    return parts > g->N ? (g->N > 0 ? g->N : 1) : parts;
}

/* ---- per-part work ---- */
typedef struct {
    conv_geom g;
    int kind;
    int64_t parts;
    conv_slot slot;
    char *scratch;
    const void *x, *w, *b, *gy, *mask;
    void *y;   /* forward output, grad input, or grad weight */
    void *gb;  /* grad bias, when conv_grad_weight also sums it */
} conv_job;

/* Products run single-threaded inside a part when the parts share the pool, and split over
 * the pool when one part does all the work (a single image). Sizes were checked against the
 * BLAS integer range up front, so the products cannot fail. */
static inline void gemm_f32(int serial, int ta, int tb, int64_t m, int64_t n, int64_t k,
                            float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                            float beta, float *c, int64_t ldc) {
    if (serial) (void)pf_sgemm_serial(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else (void)pf_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static inline void gemm_f64(int serial, int ta, int tb, int64_t m, int64_t n, int64_t k,
                            double alpha, const double *a, int64_t lda, const double *b,
                            int64_t ldb, double beta, double *c, int64_t ldc) {
    if (serial) (void)pf_dgemm_serial(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else (void)pf_dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#define DEFINE_CONV_PARTS(T, SUF, GEMM, TANHF, SIGF)                                            \
    static PF_HOT void epilogue_##SUF(T *dst, const T *src, int64_t n, T bias, int act) {       \
        switch (act) {                                                                          \
        case PF_ACT_RELU:                                                                       \
            for (int64_t i = 0; i < n; i++) { T v = src[i] + bias; dst[i] = v > 0 ? v : 0; }    \
            break;                                                                              \
        case PF_ACT_SIGMOID: for (int64_t i = 0; i < n; i++) dst[i] = SIGF(src[i] + bias); break; \
        case PF_ACT_TANH: for (int64_t i = 0; i < n; i++) dst[i] = TANHF(src[i] + bias); break; \
        default: for (int64_t i = 0; i < n; i++) dst[i] = src[i] + bias; break;                 \
        }                                                                                       \
    }                                                                                           \
    static void conv_forward_part_##SUF(const conv_job *j, T *slot, int64_t n0, int64_t n1) {   \
        const conv_geom *g = &j->g;                                                             \
        const int serial = j->parts > 1;                                                        \
        const T *x = (const T *)j->x, *w = (const T *)j->w, *b = (const T *)j->b;               \
        const T *x_end = x + g->N * g->C * g->in_size;                                          \
        T *y = (T *)j->y;                                                                       \
        int64_t P = g->out_size, rows = g->rows, Og = g->Og;                                    \
        T *cols = slot + j->slot.cols, *tmp = slot + j->slot.out;                               \
        for (int64_t n = n0; n < n1; n += j->slot.block) {                                      \
            int64_t nb = n1 - n < j->slot.block ? n1 - n : j->slot.block, width = nb * P;       \
            for (int64_t grp = 0; grp < g->G; grp++) {                                          \
                const T *wg = w + grp * Og * rows;                                              \
                const T *src = cols;                                                            \
                if (g->pointwise && nb == 1)                                                    \
                    src = x + (n * g->C + grp * g->Cg) * g->in_size;                            \
                else                                                                            \
                    for (int64_t i = 0; i < nb; i++)                                            \
                        IM2COL(SUF, g, x + ((n + i) * g->C + grp * g->Cg) * g->in_size,         \
                               x_end, cols + i * P, width);                                     \
                if (nb == 1) {                                                                  \
                    /* one image: the product lands in y, epilogue in place */                  \
                    T *yg = y + (n * g->O + grp * Og) * P;                                      \
                    GEMM(serial, 0, 0, Og, P, rows, (T)1, wg, rows, src, width, (T)0, yg, P);   \
                    if (b || g->act != PF_ACT_NONE)                                             \
                        for (int64_t o = 0; o < Og; o++)                                        \
                            epilogue_##SUF(yg + o * P, yg + o * P, P,                           \
                                           b ? b[grp * Og + o] : (T)0, g->act);                 \
                } else {                                                                        \
                    GEMM(serial, 0, 0, Og, width, rows, (T)1, wg, rows, src, width, (T)0, tmp,  \
                         width);                                                                \
                    for (int64_t i = 0; i < nb; i++)                                            \
                        for (int64_t o = 0; o < Og; o++)                                        \
                            epilogue_##SUF(y + ((n + i) * g->O + grp * Og + o) * P,             \
                                           tmp + o * width + i * P, P,                          \
                                           b ? b[grp * Og + o] : (T)0, g->act);                 \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    /* the block's output gradient for one group as an (Og, nb*P) matrix: gathered when the     \
     * block spans several images or a ReLU mask applies, else read in place (row stride P) */  \
    static const T *gather_gy_##SUF(const conv_job *j, T *slot, int64_t n, int64_t nb,          \
                                    int64_t grp, int64_t *ld) {                                 \
        const conv_geom *g = &j->g;                                                             \
        const T *gy = (const T *)j->gy;                                                         \
        int64_t P = g->out_size, Og = g->Og;                                                    \
        if (nb == 1 && !g->masked) { *ld = P; return gy + (n * g->O + grp * Og) * P; }          \
        T *buf = slot + j->slot.gy;                                                             \
        int64_t width = nb * P;                                                                 \
        for (int64_t i = 0; i < nb; i++)                                                        \
            for (int64_t o = 0; o < Og; o++) {                                                  \
                int64_t at = ((n + i) * g->O + grp * Og + o) * P;                               \
                T *dst = buf + o * width + i * P;                                               \
                if (g->masked) {                                                                \
                    const T *y = (const T *)j->mask + at;                                       \
                    for (int64_t p = 0; p < P; p++) dst[p] = pf_keep_##SUF(y[p] > 0, gy[at + p]);  \
                } else {                                                                        \
                    memcpy(dst, gy + at, (size_t)P * sizeof(T));                                \
                }                                                                               \
            }                                                                                   \
        *ld = width;                                                                            \
        return buf;                                                                             \
    }                                                                                           \
    static void conv_grad_input_part_##SUF(const conv_job *j, T *slot, int64_t n0, int64_t n1) { \
        const conv_geom *g = &j->g;                                                             \
        const int serial = j->parts > 1;                                                        \
        const T *w = (const T *)j->w;                                                           \
        T *gx = (T *)j->y;                                                                      \
        int64_t P = g->out_size, rows = g->rows, Og = g->Og;                                    \
        T *cols = slot + j->slot.cols;                                                          \
        for (int64_t n = n0; n < n1; n += j->slot.block) {                                      \
            int64_t nb = n1 - n < j->slot.block ? n1 - n : j->slot.block, width = nb * P, ld;   \
            for (int64_t grp = 0; grp < g->G; grp++) {                                          \
                const T *wg = w + grp * Og * rows;                                              \
                const T *gyg = gather_gy_##SUF(j, slot, n, nb, grp, &ld);                       \
                if (g->pointwise && nb == 1) {                                                  \
                    GEMM(serial, 1, 0, rows, P, Og, (T)1, wg, rows, gyg, ld, (T)0,              \
                         gx + (n * g->C + grp * g->Cg) * g->in_size, P);                        \
                    continue;                                                                   \
                }                                                                               \
                GEMM(serial, 1, 0, rows, width, Og, (T)1, wg, rows, gyg, ld, (T)0, cols, width); \
                for (int64_t i = 0; i < nb; i++) {                                              \
                    COL2IM(SUF, g, cols + i * P, width,                                         \
                           gx + ((n + i) * g->C + grp * g->Cg) * g->in_size);                   \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    /* accumulates this part's images into gw (O, rows) and, when given, gb (O), which it       \
     * overwrites first; gb sums the gathered grad_y rows while they are in cache. When rows   \
     * outnumber the output channels the product is formed transposed, (rows, Og) = cols x     \
     * grad_y^T per group, and transposed into gw at the end: the BLAS ran that orientation    \
     * 1.06-1.8x faster on such layer shapes (and 0.9-1.0x on the others, which keep gw's). */  \
    static void conv_grad_weight_part_##SUF(const conv_job *j, T *slot, T *gw, T *gb,           \
                                            int64_t n0, int64_t n1) {                           \
        const conv_geom *g = &j->g;                                                             \
        const int serial = j->parts > 1;                                                        \
        const T *x = (const T *)j->x;                                                           \
        const T *x_end = x + g->N * g->C * g->in_size;                                          \
        int64_t P = g->out_size, rows = g->rows, Og = g->Og;                                    \
        T *cols = slot + j->slot.cols, *gwt = slot + j->slot.gwt;                               \
        const int transposed = rows > Og;                                                       \
        if (gb) memset(gb, 0, (size_t)g->O * sizeof(T));                                        \
        if (n0 >= n1) { memset(gw, 0, (size_t)(g->O * rows) * sizeof(T)); return; }             \
        for (int64_t n = n0; n < n1; n += j->slot.block) {                                      \
            int64_t nb = n1 - n < j->slot.block ? n1 - n : j->slot.block, width = nb * P, ld;   \
            T beta = n == n0 ? (T)0 : (T)1;                                                     \
            for (int64_t grp = 0; grp < g->G; grp++) {                                          \
                const T *src = cols;                                                            \
                if (g->pointwise && nb == 1)                                                    \
                    src = x + (n * g->C + grp * g->Cg) * g->in_size;                            \
                else                                                                            \
                    for (int64_t i = 0; i < nb; i++)                                            \
                        IM2COL(SUF, g, x + ((n + i) * g->C + grp * g->Cg) * g->in_size,         \
                               x_end, cols + i * P, width);                                     \
                const T *gyg = gather_gy_##SUF(j, slot, n, nb, grp, &ld);                       \
                if (transposed)                                                                 \
                    GEMM(serial, 0, 1, rows, Og, width, (T)1, src, width, gyg, ld, beta,        \
                         gwt + grp * Og * rows, Og);                                            \
                else                                                                            \
                    GEMM(serial, 0, 1, Og, rows, width, (T)1, gyg, ld, src, width, beta,        \
                         gw + grp * Og * rows, rows);                                           \
                if (gb)                                                                         \
                    for (int64_t o = 0; o < Og; o++)                                            \
                        gb[grp * Og + o] += row_sum_##SUF(gyg + o * ld, width);                 \
            }                                                                                   \
        }                                                                                       \
        for (int64_t grp = 0; transposed && grp < g->G; grp++) {                                \
            const T *from = gwt + grp * Og * rows;                                              \
            T *to = gw + grp * Og * rows;                                                       \
            for (int64_t r = 0; r < rows; r++)                                                  \
                for (int64_t o = 0; o < Og; o++) to[o * rows + r] = from[r * Og + o];           \
        }                                                                                       \
    }

DEFINE_CONV_PARTS(float, f32, gemm_f32, pf_tanhf, pf_sigmoidf)
DEFINE_CONV_PARTS(double, f64, gemm_f64, tanh, pf_sigmoid)

static void conv_task(void *p, int64_t part0, int64_t part1) {
    const conv_job *j = (const conv_job *)p;
    int64_t N = j->g.N, partial = j->slot.partial, weights = j->g.O * j->g.rows;
    for (int64_t part = part0; part < part1; part++) {
        int64_t n0 = N * part / j->parts, n1 = N * (part + 1) / j->parts;
        char *slot = j->scratch + part * j->slot.slot_bytes;
        if (j->g.dtype == PF_FLOAT32) {
            float *s = (float *)slot;
            if (j->kind == CONV_FORWARD) conv_forward_part_f32(j, s, n0, n1);
            else if (j->kind == CONV_GRAD_INPUT) conv_grad_input_part_f32(j, s, n0, n1);
            else conv_grad_weight_part_f32(j, s, part == 0 ? (float *)j->y : s + partial,
                                           !j->gb ? NULL : part == 0 ? (float *)j->gb
                                                                     : s + partial + weights,
                                           n0, n1);
        } else {
            double *s = (double *)slot;
            if (j->kind == CONV_FORWARD) conv_forward_part_f64(j, s, n0, n1);
            else if (j->kind == CONV_GRAD_INPUT) conv_grad_input_part_f64(j, s, n0, n1);
            else conv_grad_weight_part_f64(j, s, part == 0 ? (double *)j->y : s + partial,
                                           !j->gb ? NULL : part == 0 ? (double *)j->gb
                                                                     : s + partial + weights,
                                           n0, n1);
        }
    }
}

/* The roles of the call's tensors for each kind, validated. */
static int conv_setup(const pf_args *a, int kind, conv_geom *g) {
    if (kind == CONV_FORWARD) {
        PF_TRY(pf_check_arity(a, 2, 3, 1));
        PF_TRY(conv_geometry(a, a->inputs[0], a->inputs[1], a->outputs[0], "x", "kernel", "y", g));
        if (a->n_in > 2) {
            const pf_tensor *b = a->inputs[2];
            PF_TRY(pf_check_contiguous(b, "bias"));
            PF_TRY(pf_check_dtype(b, g->dtype, "bias"));
            PF_CHECK(b->ndim == 1 && b->shape[0] == g->O, PF_ERR_SHAPE,
                     "bias has %lld elements for %lld output channels", (long long)pf_numel(b),
                     (long long)g->O);
        }
    } else if (kind == CONV_GRAD_INPUT) {
        PF_TRY(pf_check_arity(a, 2, 3, 1));
        PF_TRY(conv_geometry(a, a->outputs[0], a->inputs[1], a->inputs[0], "grad_x", "kernel",
                             "grad_y", g));
    } else {
        PF_CHECK(a != NULL && (a->n_out == 1 || a->n_out == 2), PF_ERR_ARGUMENT,
                 "expected 1 or 2 outputs (grad_kernel[, grad_bias])");
        PF_TRY(pf_check_arity(a, 2, 3, a->n_out));
        PF_TRY(conv_geometry(a, a->inputs[0], a->outputs[0], a->inputs[1], "x", "grad_kernel",
                             "grad_y", g));
        if (a->n_out == 2) {
            const pf_tensor *gb = a->outputs[1];
            PF_TRY(pf_check_contiguous(gb, "grad_bias"));
            PF_TRY(pf_check_dtype(gb, g->dtype, "grad_bias"));
            PF_CHECK(gb->ndim == 1 && gb->shape[0] == g->O, PF_ERR_SHAPE,
                     "grad_bias has %lld elements for %lld output channels",
                     (long long)pf_numel(gb), (long long)g->O);
        }
    }
    PF_CHECK(kind == CONV_FORWARD || g->pool == 0, PF_ERR_ARGUMENT,
             "a fused max pool belongs to the forward convolution only");
    if (kind != CONV_FORWARD && a->n_in > 2) {
        const pf_tensor *y = a->inputs[2], *gy = a->inputs[kind == CONV_GRAD_INPUT ? 0 : 1];
        PF_TRY(pf_check_contiguous(y, "y"));
        PF_TRY(pf_check_dtype(y, g->dtype, "y"));
        PF_TRY(pf_check_same_shape(y, gy, "y", "grad_y"));
        g->masked = 1;
    }
    return PF_OK;
}

/* ---- the direct path (conv_direct.c): float32 2-D, unit width stride, AVX-512 ----
 * The forward; the input gradient of a stride-1 convolution (a convolution of the padded
 * output gradient with the flipped kernel); the weight gradient of a 3x3 kernel. Chosen where
 * it measured faster than im2col + BLAS: enough work per broadcast input value (rows) and per
 * tile (output channels). Forward kernels with few rows (a first layer on 1 or 3 input
 * channels) take the spatial-lane loops instead, where output rows are wide enough to fill
 * the lanes: im2col + BLAS spends most of its time copying there (1.2-1.6x measured). Their
 * weight gradient stays with im2col + BLAS, which is bound by reading grad_y either way.
 * 3x3 kernels with unit stride and dilation and at least WINO_MIN_CHANNELS channels each way,
 * forward and input gradient, run Winograd's F(2x2, 3x3) (conv_winograd.c): measured 1.1-1.8x
 * the direct loops from 7x7 to 112x112 planes and 16 to 256 channels, even on the smallest
 * (the input gradient of a 13x13 plane); their weight gradient too: 1.2-1.75x the direct
 * loops from 13x13 to 112x112 planes. */
#define DIRECT_MIN_ROWS 64
#define DIRECT_MIN_CHANNELS 16
#define SPATIAL_MIN_WIDTH 8
#define WINO_MIN_CHANNELS 16

typedef struct {
    const conv_job *j;
    pf_direct_geom d;
    int padded;
    int spatial;                /* the spatial-lane loops (pf_direct_spatial_*) */
    int wino;                   /* Winograd F(2x2, 3x3) (pf_wino_*) */
    int wino_gw;                /* the weight gradient by Winograd (pf_wino_grad_weight) */
    int64_t gw_acc;             /* floats of one group's Winograd sums M */
    pf_wino_geom wg;
    int64_t top, left;          /* where the source plane lands in the padded one */
    int64_t packed;             /* floats of one group's packed weights (forward, input grad) */
    /* floats of the pieces of one part's slot: the padded plane; for the weight gradient the
     * transposed output gradient, the accumulated (G, Cg, 3, 3, lanes) and the bias sums */
    int64_t pad_floats, gyt_floats, acc_floats, gb_floats, wino_floats, part_floats;
    float *weights, *parts;
} direct_job;

static int64_t round16(int64_t n) { return (n + 15) & ~(int64_t)15; }

/* Fills dj for this kind, or returns 0 where the direct path does not apply. */
static int direct_plan(const conv_geom *g, int kind, direct_job *dj) {
    memset(dj, 0, sizeof *dj);
    if (g->dtype != PF_FLOAT32 || !g->simd || !pf_direct_available()) return 0;
    /* a row stride of 2 in the channel-lane forward (downsampling convolutions, and the input
     * gradient of transposed ones) and the weight gradient; not in the input gradient */
    if (g->nd > 2 || g->st[2] > 2 || (g->st[2] == 2 && kind == CONV_GRAD_INPUT)) return 0;
    pf_direct_geom *d = &dj->d;
    int64_t span1 = g->dil[1] * (g->k[1] - 1), span2 = g->dil[2] * (g->k[2] - 1);
    if (kind != CONV_GRAD_INPUT) {
        if (kind == CONV_FORWARD && g->act != PF_ACT_NONE && g->act != PF_ACT_RELU) return 0;
        /* channel lanes: enough rows and output channels per tile; the weight gradient for
         * the kernel shapes and strides its loops cover, with enough input channels to pay
         * for transposing grad_y. A forward with few rows takes spatial lanes. */
        if (kind == CONV_GRAD_WEIGHT &&
            (!pf_direct_grad_weight_fits(g->k[1], g->k[2], g->st[2], g->dil[2]) ||
             g->Cg < DIRECT_MIN_CHANNELS || g->Og < DIRECT_MIN_CHANNELS))
            return 0;
        if (kind == CONV_FORWARD && g->rows < DIRECT_MIN_ROWS) {
            if (g->out[2] < SPATIAL_MIN_WIDTH || g->st[2] != 1) return 0;
            dj->spatial = 1;
        } else if (g->Og < DIRECT_MIN_CHANNELS) {
            return 0;
        }
        int64_t pe1 = (g->out[1] - 1) * g->st[1] + span1 + 1 - g->in[1] - g->pb[1];
        int64_t pe2 = (g->out[2] - 1) * g->st[2] + span2 + 1 - g->in[2] - g->pb[2];
        *d = (pf_direct_geom){g->Cg, g->Og, g->in[1] + g->pb[1] + (pe1 > 0 ? pe1 : 0),
                              g->in[2] + g->pb[2] + (pe2 > 0 ? pe2 : 0), g->out[1], g->out[2],
                              g->k[1], g->k[2], g->st[1], g->dil[1], g->dil[2], g->pb[1],
                              g->in[1], 0, g->st[2]};
        dj->top = g->pb[1];
        dj->left = g->pb[2];
        dj->padded = d->H != g->in[1] || d->W != g->in[2];
    } else {
        /* the output gradient padded by span - pad_begin before and span - pad_end after */
        int64_t pe1 = g->out[1] - 1 + span1 + 1 - g->in[1] - g->pb[1];
        int64_t pe2 = g->out[2] - 1 + span2 + 1 - g->in[2] - g->pb[2];
        if (g->st[1] != 1 || g->pb[1] > span1 || g->pb[2] > span2 || pe1 > span1 ||
            pe2 > span2)
            return 0;
        if (g->Og * g->k_size < DIRECT_MIN_ROWS || g->Cg < DIRECT_MIN_CHANNELS) return 0;
        *d = (pf_direct_geom){g->Og, g->Cg, g->in[1] + span1, g->in[2] + span2, g->in[1],
                              g->in[2], g->k[1], g->k[2], 1, g->dil[1], g->dil[2],
                              span1 - g->pb[1], g->out[1], 0, 1};
        dj->top = span1 - g->pb[1];
        dj->left = span2 - g->pb[2];
        dj->padded = 1;
    }
    /* source offsets and the scatter's channel offsets are 32-bit */
    if (d->C * d->H * d->W > INT_MAX || 32 * d->OH * d->OW > INT_MAX) return 0;
    dj->pad_floats = dj->padded ? round16(d->C * d->H * d->W) : 0;
    if (kind == CONV_GRAD_WEIGHT) {
        int64_t lanes = pf_direct_lanes(g->Og);
        dj->gyt_floats = round16(g->out_size * lanes);
        dj->acc_floats = round16(g->G * g->rows * lanes);
        dj->gb_floats = round16(g->O);
        /* 3x3 at unit stride and dilation: Winograd's 16 products a tile where the direct
         * loops take 36 (reads the source with masks: no padded copy) */
        if (g->k[1] == 3 && g->k[2] == 3 && g->st[1] == 1 && g->st[2] == 1 &&
            g->dil[1] == 1 && g->dil[2] == 1 && g->Cg >= WINO_MIN_CHANNELS &&
            g->Og >= WINO_MIN_CHANNELS && pf_wino_available()) {
            dj->wino_gw = 1;
            dj->wg = (pf_wino_geom){g->Cg, g->Og, g->in[1], g->in[2], g->pb[1], g->pb[2],
                                    g->out[1], g->out[2], 0};
            dj->gw_acc = round16(pf_wino_gw_acc_floats(&dj->wg, lanes));
            dj->acc_floats = g->G * dj->gw_acc;
            dj->wino_floats = round16(pf_wino_gw_scratch_floats(&dj->wg, lanes));
            dj->padded = 0;
            dj->pad_floats = 0;
        }
    } else {
        dj->packed = round16(dj->spatial ? pf_direct_spatial_packed_floats(d)
                                         : pf_direct_packed_floats(d));
    }
    if (kind != CONV_GRAD_WEIGHT && !dj->spatial && g->k[1] == 3 && g->k[2] == 3 &&
        g->st[1] == 1 && g->st[2] == 1 && g->dil[1] == 1 && g->dil[2] == 1 &&
        d->C >= WINO_MIN_CHANNELS &&
        d->O >= WINO_MIN_CHANNELS && pf_wino_available()) {
        int fwd = kind == CONV_FORWARD;
        dj->wino = 1;
        dj->wg = (pf_wino_geom){d->C, d->O, fwd ? g->in[1] : g->out[1],
                                fwd ? g->in[2] : g->out[2], dj->top, dj->left, d->OH, d->OW};
        dj->wg.pool = g->pool;
        dj->padded = 0;           /* the transform reads around the edges with masks */
        dj->pad_floats = 0;
        dj->packed = round16(pf_wino_packed_floats(&dj->wg));
        dj->wino_floats = round16(pf_wino_scratch_floats(&dj->wg));
    }
    /* a fused max pool: the Winograd and spatial-lane loops write it; the others do not */
    if (g->pool && !dj->wino && !dj->spatial) return 0;
    dj->d.pool = g->pool;
    dj->part_floats = dj->pad_floats + dj->gyt_floats + dj->acc_floats + dj->gb_floats +
                      dj->wino_floats;
    return 1;
}

/* Parts of the direct path: images, as conv_parts_wanted says; a Winograd or spatial-lane
 * convolution of fewer images than threads (batch-1 inference) splits each image's output
 * channels among the threads instead (Winograd: every part transforms the whole input, a small
 * share of the work), unless it is too small to pay for waking them: the reference CNN's first
 * convolution of one image (0.2M multiply-adds, 12 us on one thread) took 15-47 us split. */
#define DIRECT_SPLIT_MIN_MACS (1 << 20)
static int64_t direct_parts(const conv_geom *g, const direct_job *dj) {
    int64_t parts = conv_parts_wanted(g);
    double macs = (double)g->N * (double)g->O * (double)g->out_size * (double)g->rows;
    return (dj->wino || dj->spatial) && g->N < pf_threads() && macs >= DIRECT_SPLIT_MIN_MACS
        ? pf_threads() : parts;
}

/* How many shares of the output channels the parts split (direct_parts): 1 where the parts
 * split the images. */
static int64_t channel_shares(const conv_job *j) { return j->parts > j->g.N ? j->parts : 1; }

static void direct_task(void *p, int64_t part0, int64_t part1) {
    const direct_job *dj = (const direct_job *)p;
    const conv_job *j = dj->j;
    const conv_geom *g = &j->g;
    const pf_direct_geom *d = &dj->d;
    int kind = j->kind;
    /* the source and output of one image's group, in channels of d */
    int64_t src_plane = kind == CONV_GRAD_INPUT ? g->out_size : g->in_size;
    int64_t dst_plane = kind == CONV_GRAD_INPUT ? g->in_size : g->pooled_size;
    int64_t src_ch = kind == CONV_GRAD_INPUT ? g->O : g->C;
    int64_t dst_ch = kind == CONV_GRAD_INPUT ? g->C : g->O;
    int64_t src_h = kind == CONV_GRAD_INPUT ? g->out[1] : g->in[1];
    int64_t src_w = kind == CONV_GRAD_INPUT ? g->out[2] : g->in[2];
    const float *src_all = (const float *)(kind == CONV_GRAD_INPUT ? j->gy : j->x);
    const float *mask = (const float *)j->mask, *b = (const float *)j->b;
    const float *gy = (const float *)j->gy;
    int64_t lanes = pf_direct_lanes(g->Og);
    int64_t o_parts = channel_shares(j);
    for (int64_t part = part0; part < part1; part++) {
        int64_t n0 = o_parts > 1 ? 0 : g->N * part / j->parts;
        int64_t n1 = o_parts > 1 ? g->N : g->N * (part + 1) / j->parts;
        float *pad = dj->parts + part * dj->part_floats, *gyt = pad + dj->pad_floats;
        float *acc = gyt + dj->gyt_floats, *gb = acc + dj->acc_floats;
        float *wino_scratch = gb + dj->gb_floats;
        if (kind == CONV_GRAD_WEIGHT) memset(acc, 0, (size_t)(dj->acc_floats + dj->gb_floats) *
                                                         sizeof(float));
        if (dj->wino_gw) pf_wino_gw_begin(&dj->wg, wino_scratch);
        if (dj->wino) {
            for (int64_t grp = 0; grp < g->G && n1 > n0; grp++) {
                int64_t at = (n0 * src_ch + grp * d->C) * src_plane;
                if (o_parts > 1)    /* each share's weights packed where they are read */
                    pf_wino_pack(&dj->wg, (const float *)j->w + grp * g->Og * g->rows,
                                 kind != CONV_FORWARD, g->Cg, dj->weights + grp * dj->packed,
                                 part, o_parts);
                pf_wino_run(&dj->wg, n1 - n0, src_all + at,
                            kind == CONV_GRAD_INPUT && mask ? mask + at : NULL, src_ch * src_plane,
                            dj->weights + grp * dj->packed,
                            b && kind == CONV_FORWARD ? b + grp * d->O : NULL,
                            kind == CONV_FORWARD ? g->act : PF_ACT_NONE,
                            (float *)j->y + (n0 * dst_ch + grp * d->O) * dst_plane,
                            dst_ch * dst_plane, dj->parts + part * dj->part_floats,
                            o_parts > 1 ? part : 0, o_parts);
            }
            continue;
        }
        for (int64_t n = n0; n < n1; n++)
            for (int64_t grp = 0; grp < g->G; grp++) {
                int64_t at = (n * src_ch + grp * d->C) * src_plane;
                const float *src = src_all + at;
                if (dj->padded) {
                    pf_direct_pad(src, kind == CONV_GRAD_INPUT && mask ? mask + at : NULL, d->C,
                                  src_h, src_w, dj->top, dj->left, d->H, d->W, pad);
                    src = pad;
                }
                if (kind == CONV_GRAD_WEIGHT) {
                    int64_t gat = (n * g->O + grp * g->Og) * g->out_size;
                    pf_direct_transpose(gy + gat, mask ? mask + gat : NULL, g->Og, g->out_size,
                                        gyt, j->gb ? gb + grp * g->Og : NULL);
                    if (dj->wino_gw)
                        pf_wino_grad_weight(&dj->wg, src, gyt, lanes, acc + grp * dj->gw_acc,
                                            wino_scratch);
                    else
                        pf_direct_grad_weight(d, src, gyt, acc + grp * g->rows * lanes);
                    continue;
                }
                const float *bias = b && kind == CONV_FORWARD ? b + grp * d->O : NULL;
                int act = kind == CONV_FORWARD ? g->act : PF_ACT_NONE;
                float *dst = (float *)j->y + (n * dst_ch + grp * d->O) * dst_plane;
                if (dj->spatial)
                    pf_direct_spatial_run(d, src, dj->weights + grp * dj->packed, bias, act, dst,
                                          o_parts > 1 ? part : 0, o_parts);
                else
                    pf_direct_run(d, src, dj->weights + grp * dj->packed, bias, act, dst);
            }
    }
}

static int64_t direct_bytes(const direct_job *dj, const conv_geom *g, int64_t parts) {
    return (g->G * dj->packed + parts * dj->part_floats) * (int64_t)sizeof(float);
}

/* The weight gradient: the parts' sums, from (G, Cg, KH, KW, lanes) to the kernel's layout. */
static void direct_grad_weight_finish(const direct_job *dj) {
    const conv_job *j = dj->j;
    const conv_geom *g = &j->g;
    int64_t lanes = pf_direct_lanes(g->Og);
    float *acc = dj->parts + dj->pad_floats + dj->gyt_floats, *gb = acc + dj->acc_floats;
    for (int64_t part = 1; part < j->parts; part++) {
        const float *other = acc + part * dj->part_floats;
        for (int64_t i = 0; i < dj->acc_floats + dj->gb_floats; i++) acc[i] += other[i];
    }
    float *gw = (float *)j->y;
    for (int64_t grp = 0; dj->wino_gw && grp < g->G; grp++)
        pf_wino_grad_weight_finish(&dj->wg, acc + grp * dj->gw_acc, lanes,
                                   gw + grp * g->Og * g->rows);
    for (int64_t grp = 0; !dj->wino_gw && grp < g->G; grp++)
        for (int64_t o = 0; o < g->Og; o++)
            for (int64_t r = 0; r < g->rows; r++)
                gw[(grp * g->Og + o) * g->rows + r] = acc[(grp * g->rows + r) * lanes + o];
    if (j->gb) memcpy(j->gb, gb, (size_t)g->O * sizeof(float));
}

static int direct_run(conv_job *j, direct_job *dj, const pf_args *a) {
    const conv_geom *g = &j->g;
    dj->j = j;
    j->parts = direct_parts(g, dj);
    void *owned = NULL;
    char *scratch;
    int64_t fit = dj->part_floats > 0
        ? (a->workspace_bytes / (int64_t)sizeof(float) - g->G * dj->packed) / dj->part_floats
        : j->parts;
    if (a->workspace != NULL && a->workspace_bytes >= direct_bytes(dj, g, 1) && fit >= 1) {
        if (fit < j->parts) j->parts = fit;
        scratch = (char *)a->workspace;
    } else {
        int64_t bytes = direct_bytes(dj, g, j->parts);
        if (posix_memalign(&owned, CONV_ALIGN, (size_t)bytes) != 0)
            return pf_fail(PF_ERR_MEMORY, "cannot allocate %lld bytes of convolution scratch",
                           (long long)bytes);
        scratch = (char *)owned;
    }
    dj->weights = (float *)scratch;
    dj->parts = dj->weights + g->G * dj->packed;
    const float *w = (const float *)j->w;
    for (int64_t grp = 0; dj->packed && grp < g->G; grp++) {
        if (dj->wino && channel_shares(j) > 1)
            continue;           /* packed by the parts, share by share (direct_task) */
        else if (dj->wino)
            pf_wino_pack(&dj->wg, w + grp * g->Og * g->rows, j->kind != CONV_FORWARD, g->Cg,
                         dj->weights + grp * dj->packed, 0, 1);
        else if (dj->spatial)
            pf_direct_spatial_pack(&dj->d, w + grp * g->Og * g->rows,
                                   dj->weights + grp * dj->packed);
        else
            pf_direct_pack(&dj->d, w + grp * g->Og * g->rows, j->kind != CONV_FORWARD, g->Cg,
                           dj->weights + grp * dj->packed);
    }
    if (j->parts > 1) pf_parallel_for(j->parts, 1, direct_task, dj);
    else direct_task(dj, 0, 1);
    if (j->kind == CONV_GRAD_WEIGHT) direct_grad_weight_finish(dj);
    free(owned);
    return PF_OK;
}

static int conv_workspace(const pf_args *a, int kind, int64_t *bytes) {
    conv_geom g;
    PF_TRY(conv_setup(a, kind, &g));
    int64_t parts = conv_parts_wanted(&g);
    direct_job dj;
    int direct = direct_plan(&g, kind, &dj);
    if (!direct && g.pool) {     /* conv_pool_apart: the plain convolution's scratch */
        g.pool = 0;
        direct = direct_plan(&g, kind, &dj);
    }
    if (direct) {
        *bytes = direct_bytes(&dj, &g, direct_parts(&g, &dj));
        return PF_OK;
    }
    conv_slot s = conv_slot_layout(&g, kind);
    *bytes = parts * s.slot_bytes;
    return PF_OK;
}

static int conv_run(const pf_args *a, int kind);

/* A fused max pool where the convolution's loops cannot write it (float64, the channel-lane
 * loops, im2col): the convolution into a buffer of its own, then the pool. */
static int conv_pool_apart(const pf_args *a, const conv_geom *g) {
    const pf_tensor *y = a->outputs[0];
    int64_t h = g->out[1], w = g->out[2], planes = g->N * g->O;
    int64_t bytes = planes * h * w * (int64_t)pf_dtype_size(g->dtype);
    void *buf = NULL;
    if (posix_memalign(&buf, CONV_ALIGN, (size_t)(bytes > 0 ? bytes : CONV_ALIGN)) != 0)
        return pf_fail(PF_ERR_MEMORY, "cannot allocate %lld bytes for a convolution's output",
                       (long long)bytes);
    pf_tensor full = *y;
    full.data = buf;
    full.shape[2] = h;
    full.shape[3] = w;
    full.strides[3] = 1;
    full.strides[2] = w;
    full.strides[1] = h * w;
    full.strides[0] = g->O * h * w;
    pf_args inner = *a;
    inner.outputs[0] = &full;
    inner.n_iattr = 3 + 4 * g->nd;          /* the same attributes but the pool */
    int status = conv_run(&inner, CONV_FORWARD);
    if (status == PF_OK) pf_max_pool_2x2(g->dtype, buf, planes, h, w, y->data);
    free(buf);
    return status;
}

static int conv_run(const pf_args *a, int kind) {
    conv_job j;
    memset(&j, 0, sizeof j);
    PF_TRY(conv_setup(a, kind, &j.g));
    PF_CHECK(pf_blas_bound(), PF_ERR_BLAS, "no BLAS is loaded (pf_load_blas was not called)");
    j.kind = kind;
    const conv_geom *g = &j.g;
    int64_t es = (int64_t)pf_dtype_size(g->dtype);
    if (kind == CONV_FORWARD) {
        j.x = a->inputs[0]->data; j.w = a->inputs[1]->data; j.y = a->outputs[0]->data;
        j.b = a->n_in > 2 ? a->inputs[2]->data : NULL;
    } else if (kind == CONV_GRAD_INPUT) {
        j.gy = a->inputs[0]->data; j.w = a->inputs[1]->data; j.y = a->outputs[0]->data;
    } else {
        j.x = a->inputs[0]->data; j.gy = a->inputs[1]->data; j.y = a->outputs[0]->data;
        j.gb = a->n_out > 1 ? a->outputs[1]->data : NULL;
    }
    if (g->masked) j.mask = a->inputs[2]->data;
    if (g->N == 0 || g->O == 0) {
        if (kind == CONV_GRAD_WEIGHT) memset(j.y, 0, (size_t)(g->O * g->rows * es));
        if (j.gb) memset(j.gb, 0, (size_t)(g->O * es));
        return PF_OK;
    }
    if (kind == CONV_GRAD_INPUT && g->C * g->in_size == 0) return PF_OK;
    direct_job dj;
    if (direct_plan(g, kind, &dj)) return direct_run(&j, &dj, a);
    if (g->pool) return conv_pool_apart(a, g);
    j.parts = conv_parts_wanted(g);
    j.slot = conv_slot_layout(g, kind);
    int64_t width = j.slot.block * g->out_size;
    PF_CHECK(g->rows <= INT_MAX && width <= INT_MAX && g->Og <= INT_MAX, PF_ERR_BLAS,
             "convolution products of (%lld x %lld x %lld) exceed the 32-bit BLAS range",
             (long long)g->Og, (long long)width, (long long)g->rows);
    /* a workspace sized for fewer threads than now run: use fewer parts */
    void *owned = NULL;
    int64_t fit = j.slot.slot_bytes > 0 ? a->workspace_bytes / j.slot.slot_bytes : 0;
    if (a->workspace != NULL && fit >= 1) {
        if (fit < j.parts) j.parts = fit;
        j.scratch = (char *)a->workspace;
    } else {
        if (posix_memalign(&owned, CONV_ALIGN, (size_t)(j.parts * j.slot.slot_bytes)) != 0)
            return pf_fail(PF_ERR_MEMORY, "cannot allocate %lld bytes of convolution scratch",
                           (long long)(j.parts * j.slot.slot_bytes));
        j.scratch = (char *)owned;
    }
    if (j.parts > 1) pf_parallel_for(j.parts, 1, conv_task, &j);
    else conv_task(&j, 0, 1);
    if (kind == CONV_GRAD_WEIGHT && j.parts > 1) {
        /* part 0 wrote gw (and gb); add the other parts' partial sums */
        int64_t n = g->O * g->rows;
        for (int64_t part = 1; part < j.parts; part++) {
            char *slot = j.scratch + part * j.slot.slot_bytes;
            if (g->dtype == PF_FLOAT32) {
                float *dst = (float *)j.y, *src = (float *)slot + j.slot.partial;
                for (int64_t i = 0; i < n; i++) dst[i] += src[i];
                for (int64_t o = 0; j.gb && o < g->O; o++) ((float *)j.gb)[o] += src[n + o];
            } else {
                double *dst = (double *)j.y, *src = (double *)slot + j.slot.partial;
                for (int64_t i = 0; i < n; i++) dst[i] += src[i];
                for (int64_t o = 0; j.gb && o < g->O; o++) ((double *)j.gb)[o] += src[n + o];
            }
        }
    }
    free(owned);
    return PF_OK;
}

/* "conv": inputs x (N, C, *in), kernel (O, C/groups, *k)[, bias (O)]; outputs y (N, O, *out).
 * iattr: nd, stride[nd], dilation[nd], pad_begin[nd], pad_end[nd], groups, activation
 * (pf_activation: none, relu, sigmoid or tanh, applied after the bias). */
static int k_conv(const pf_args *a) { return conv_run(a, CONV_FORWARD); }
static int ws_conv(const pf_args *a, int64_t *bytes) {
    return conv_workspace(a, CONV_FORWARD, bytes);
}

/* "conv_grad_input": inputs grad_y (N, O, *out), kernel[, y]; outputs grad_x (N, C, *in),
 * whose shape fixes the input geometry. With y (the forward's output after a fused ReLU),
 * grad_y counts only where y > 0. iattr as "conv" (the activation is ignored). */
static int k_conv_grad_input(const pf_args *a) { return conv_run(a, CONV_GRAD_INPUT); }
static int ws_conv_grad_input(const pf_args *a, int64_t *bytes) {
    return conv_workspace(a, CONV_GRAD_INPUT, bytes);
}

/* "conv_grad_weight": inputs x, grad_y[, y]; outputs grad_kernel (O, C/groups, *k)[,
 * grad_bias (O)]. y masks grad_y as for conv_grad_input. The bias gradient comes almost free
 * here: the kernel sums grad_y rows it has in cache anyway. */
static int k_conv_grad_weight(const pf_args *a) { return conv_run(a, CONV_GRAD_WEIGHT); }
static int ws_conv_grad_weight(const pf_args *a, int64_t *bytes) {
    return conv_workspace(a, CONV_GRAD_WEIGHT, bytes);
}

/* "conv_grad_bias": inputs grad_y viewed as (N, O, P)[, y of that shape: only y > 0 counts];
 * outputs grad_bias (O): the sum over batch and positions, split over channels. */
typedef struct {
    int dtype;
    int64_t N, O, P;
    const void *gy, *mask;
    void *gb;
} bias_job;


/* The mask is applied with bits (pf_keep_*), not a float select: see internal.h. */
#define DEFINE_MASKED_ROW_SUM(T, SUF)                                                          \
    static PF_HOT T masked_row_sum_##SUF(const T *row, const T *y, int64_t n) {                \
        T lane[16] = {0};                                                                      \
        int64_t i = 0;                                                                         \
        for (; i + 16 <= n; i += 16)                                                           \
            for (int l = 0; l < 16; l++) lane[l] += pf_keep_##SUF(y[i + l] > 0, row[i + l]);      \
        T s = 0;                                                                               \
        for (; i < n; i++) s += pf_keep_##SUF(y[i] > 0, row[i]);                                  \
        for (int l = 0; l < 16; l++) s += lane[l];                                             \
        return s;                                                                              \
    }
DEFINE_MASKED_ROW_SUM(float, f32)
DEFINE_MASKED_ROW_SUM(double, f64)

static void bias_task(void *p, int64_t o0, int64_t o1) {
    const bias_job *j = (const bias_job *)p;
    for (int64_t o = o0; o < o1; o++) {
        double total = 0;
        for (int64_t n = 0; n < j->N; n++) {
            int64_t at = (n * j->O + o) * j->P;
            if (j->dtype == PF_FLOAT32)
                total += j->mask ? masked_row_sum_f32((const float *)j->gy + at,
                                                      (const float *)j->mask + at, j->P)
                                 : row_sum_f32((const float *)j->gy + at, j->P);
            else
                total += j->mask ? masked_row_sum_f64((const double *)j->gy + at,
                                                      (const double *)j->mask + at, j->P)
                                 : row_sum_f64((const double *)j->gy + at, j->P);
        }
        if (j->dtype == PF_FLOAT32) ((float *)j->gb)[o] = (float)total;
        else ((double *)j->gb)[o] = total;
    }
}

static int k_conv_grad_bias(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 2, 1));
    const pf_tensor *gy = a->inputs[0], *gb = a->outputs[0];
    PF_TRY(pf_check_contiguous(gy, "grad_y"));
    PF_TRY(pf_check_contiguous(gb, "grad_bias"));
    PF_TRY(pf_check_float(gy, "grad_y"));
    PF_TRY(pf_check_dtype(gb, gy->dtype, "grad_bias"));
    PF_CHECK(gy->ndim == 3, PF_ERR_SHAPE, "grad_y must be viewed as (batch, channels, positions)");
    PF_CHECK(gb->ndim == 1 && gb->shape[0] == gy->shape[1], PF_ERR_SHAPE,
             "grad_bias has %lld elements for %lld channels", (long long)pf_numel(gb),
             (long long)gy->shape[1]);
    const void *mask = NULL;
    if (a->n_in > 1) {
        PF_TRY(pf_check_contiguous(a->inputs[1], "y"));
        PF_TRY(pf_check_dtype(a->inputs[1], gy->dtype, "y"));
        PF_CHECK(pf_numel(a->inputs[1]) == pf_numel(gy), PF_ERR_SHAPE,
                 "y has %lld elements, grad_y %lld", (long long)pf_numel(a->inputs[1]),
                 (long long)pf_numel(gy));
        mask = a->inputs[1]->data;
    }
    bias_job j = {gy->dtype, gy->shape[0], gy->shape[1], gy->shape[2], gy->data, mask, gb->data};
    int64_t per_channel = j.N * j.P > 0 ? j.N * j.P : 1;
    int64_t grain = 65536 / per_channel;
    pf_parallel_for(j.O, grain > 0 ? grain : 1, bias_task, &j);
    return PF_OK;
}

const pf_kernel_entry pf_kernels_conv[] = {
    {"conv", k_conv, ws_conv},
    {"conv_grad_input", k_conv_grad_input, ws_conv_grad_input},
    {"conv_grad_weight", k_conv_grad_weight, ws_conv_grad_weight},
    {"conv_grad_bias", k_conv_grad_bias, NULL},
    {NULL, NULL, NULL},
};
