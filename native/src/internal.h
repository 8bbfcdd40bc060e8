/* internal.h -- what the kernel files share: errors, argument checks, the thread pool, BLAS
 * pointers and vectorisable float math. Not part of the ABI. */
#ifndef PF_INTERNAL_H
#define PF_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pyfront.h"

/* ---- errors ---- */
int pf_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define PF_CHECK(cond, status, ...) \
    do { if (!(cond)) return pf_fail((status), __VA_ARGS__); } while (0)
#define PF_TRY(expr) \
    do { int pf_try_status_ = (expr); if (pf_try_status_ != PF_OK) return pf_try_status_; } while (0)

/* ---- argument checks shared by kernels ---- */
/* An int64 attribute read as an enum code: values beyond int become -1, which every range
 * check refuses (a plain cast would wrap 2^40 to a valid code 0). */
static inline int pf_code(int64_t v) { return v >= 0 && v <= 0x7fffffff ? (int)v : -1; }
int pf_check_arity(const pf_args *a, int n_in_min, int n_in_max, int n_out);
int pf_check_attrs(const pf_args *a, int n_iattr, int n_fattr);
int pf_check_tensor(const pf_tensor *t, const char *what);     /* non-null, sane ndim, data */
int pf_check_contiguous(const pf_tensor *t, const char *what);
int pf_check_same_shape(const pf_tensor *a, const pf_tensor *b, const char *wa, const char *wb);
int pf_check_float(const pf_tensor *t, const char *what);
int pf_check_dtype(const pf_tensor *t, int dtype, const char *what);
int64_t pf_numel(const pf_tensor *t);
int pf_is_contiguous(const pf_tensor *t);
const char *pf_dtype_name(int dtype);
size_t pf_dtype_size(int dtype);

/* ---- kernels: each source file exports a table ending with {NULL, NULL, NULL} ---- */
typedef int (*pf_kernel_fn)(const pf_args *args);
typedef int (*pf_workspace_fn)(const pf_args *args, int64_t *bytes);
typedef struct pf_kernel_entry {
    const char *name;
    pf_kernel_fn run;
    pf_workspace_fn workspace;   /* NULL: needs none */
} pf_kernel_entry;

extern const pf_kernel_entry pf_kernels_elementwise[];
extern const pf_kernel_entry pf_kernels_reduce[];
extern const pf_kernel_entry pf_kernels_linalg[];
extern const pf_kernel_entry pf_kernels_layout[];
extern const pf_kernel_entry pf_kernels_nn[];
extern const pf_kernel_entry pf_kernels_optim[];
extern const pf_kernel_entry pf_kernels_conv[];
extern const pf_kernel_entry pf_kernels_pool[];
extern const pf_kernel_entry pf_kernels_norm[];
extern const pf_kernel_entry pf_kernels_random[];
extern const pf_kernel_entry pf_kernels_rnn[];
extern const pf_kernel_entry pf_kernels_scan[];
/* y = op(x) for a pf_unary_op over n contiguous elements (x may be y): the elementwise
 * kernel's own loops, for kernels that apply an activation to a block they just computed. */
void pf_unary_apply_f32(int op, int64_t n, const float *x, float *y, float p0, float p1);
void pf_unary_apply_f64(int op, int64_t n, const double *x, double *y, double p0, double p1);

/* ---- threads ---- */
/* fn(ctx, begin, end) over [0, n) split into contiguous ranges of at least `grain` items, on
 * the library's pool. Runs inline for small n, one thread, or when already inside a task. */
typedef void (*pf_task_fn)(void *ctx, int64_t begin, int64_t end);
void pf_parallel_for(int64_t n, int64_t grain, pf_task_fn fn, void *ctx);
/* y (planes, h / 2, w / 2) = the 2x2/2 max pool (floor; a NaN wins) of x (planes, h, w),
 * float32 or float64: pool.c's loops, for a convolution's fused pool (conv.c). */
void pf_max_pool_2x2(int dtype, const void *x, int64_t planes, int64_t h, int64_t w, void *y);
int pf_threads(void);

/* ---- strided iteration over several operands of one shape ----
 * The shape is collapsed (unit dims dropped, mergeable dims merged); rows of the last dim are
 * handed to fn with each operand's element offset and inner stride, in parallel over rows (or
 * over chunks of a long single row). At most PF_WALK_MAX_OPS operands (pyfront.h). */
typedef struct pf_walk {
    int ndim, nops;
    int64_t shape[PF_MAX_DIMS];
    int64_t strides[PF_WALK_MAX_OPS][PF_MAX_DIMS];
} pf_walk;
typedef void (*pf_row_fn)(void *ctx, int64_t n, const int64_t *offsets, const int64_t *inner_strides);
void pf_walk_init(pf_walk *w, int ndim, const int64_t *shape, int nops,
                  const int64_t *const *strides);
void pf_walk_run(const pf_walk *w, int64_t min_parallel, pf_row_fn fn, void *ctx);

/* ---- BLAS (loaded by pf_load_blas) ---- */
int pf_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
             int64_t ldc);
int pf_dgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
             const double *a, int64_t lda, const double *b, int64_t ldb, double beta, double *c,
             int64_t ldc);
/* The same product, single-threaded (for callers that already run inside a pool task). */
int pf_sgemm_serial(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                    float *c, int64_t ldc);
int pf_dgemm_serial(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                    const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                    double *c, int64_t ldc);

/* C = A @ B (+ bias per column, then ReLU when relu) for untransposed float32 A (m, k) and
 * B (k, n), single-threaded, in AVX-512 register tiles with the epilogue fused. Returns 0 (and
 * computes nothing) where the CPU or the shape is not one the tiles serve: the caller goes the
 * BLAS way. */
int pf_sgemm_tiles(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                   int64_t ldb, const float *bias, int relu, float *c, int64_t ldc);

/* ---- hot loops: compiled for several instruction sets, chosen at load time ---- */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PF_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PF_HOT
#endif

/* ---- float32 math that vectorises (libm's scalar calls do not); a few ulp ----
 * Measured against float64 references by tests/ops/test_elementwise.py (accuracy test). */

/* exp(hi + lo) where hi + lo is not rounded to one float first: lo carries the bits of an
 * argument that one float cannot hold (exp(-z*z) for large z needs them). hi must be exact,
 * |lo| small, and hi + lo in [-110, 88] (unchecked: the callers' arguments are bounded). */
static inline float pf_expf_hl(float hi, float lo) {
    float n = floorf((hi + lo) * 1.44269504089f + 0.5f);
    float r = (hi - n * 0.693359375f) + lo;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t ni = (int32_t)n;
    int32_t n1 = ni / 2, n2 = ni - ni / 2;
    union { int32_t i; float f; } s1, s2;
    s1.i = (n1 + 127) << 23;
    s2.i = (n2 + 127) << 23;
    return p * s1.f * s2.f;
}

static inline float pf_expf(float x) {
    /* Clamped so that the result still overflows to inf (n = 128, r > 0) and underflows to 0
     * (n = -159) exactly where exp does; NaN passes through the comparisons. */
    x = x > 89.0f ? 89.0f : x;
    x = x < -110.0f ? -110.0f : x;
    return pf_expf_hl(x, 0.0f);
}

/* v where c is 1, +0 where c is 0, with bits: short masked loops stay branch-free, and GCC
 * 12.2 miscompiles the float-select form of a masked double sum in target_clones copies. */
static inline float pf_keep_f32(int c, float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    u &= (uint32_t)0 - (uint32_t)c;
    memcpy(&v, &u, sizeof u);
    return v;
}
static inline double pf_keep_f64(int c, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    u &= (uint64_t)0 - (uint64_t)c;
    memcpy(&v, &u, sizeof u);
    return v;
}

static inline float pf_tanhf(float x) {
    float ax = fabsf(x);
    /* small |x|: odd minimax polynomial keeps relative accuracy near 0 */
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float e = pf_expf(2.0f * ax);
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = x < 0 ? -big : big;
    return ax < 0.625f ? small : big;
}

static inline float pf_sigmoidf(float x) { return 1.0f / (1.0f + pf_expf(-x)); }

/* z with the low 12 bits of its significand cleared: z*z of the result is exact in float */
static inline float pf_split12f(float z) {
    union { float f; uint32_t i; } u = {z};
    u.i &= 0xfffff000u;
    return u.f;
}

/* erf(x)/x near 0 as a polynomial in x*x (relative error ~1e-9 on |x| < 1, fitted here) */
static inline float pf_erf_smallf(float x) {
    float s = x * x;
    float p = 7.853860734030604e-05f;
    p = p * s - 8.010193705558777e-04f;
    p = p * s + 5.188327748328447e-03f;
    p = p * s - 2.685381285846233e-02f;
    p = p * s + 1.128358542919159e-01f;
    p = p * s - 3.761262595653534e-01f;
    p = p * s + 1.128379106521606e+00f;
    return x * p;
}

/* erfc(z) for 0.25 <= z <= 10.5, given z*z as zz_hi + zz_lo with zz_hi exact:
 * exp(-z^2) P(z)/Q(z), a rational fit of erfcx = exp(z^2) erfc(z) made for this library
 * (relative error 2.2e-9 on that range). P/Q is evaluated in double: in float its rounding
 * alone reaches 6 ulp. The Gaussian factor takes z*z in two parts, or rounding z*z would
 * cost ~z^2 ulp. */
static inline float pf_erfc_tailf(float z, float zz_hi, float zz_lo) {
    double zd = z;
    double p = 0.038474102275423819;
    p = p * zd + 0.25330525664461678;
    p = p * zd + 0.77940070237746095;
    p = p * zd + 1.2810559277699292;
    p = p * zd + 1.0000014274467903;
    double q = 0.06819316508947379;
    q = q * zd + 0.44898838542317365;
    q = q * zd + 1.4152574682543855;
    q = q * zd + 2.4980647170475647;
    q = q * zd + 2.4094545796911717;
    q = q * zd + 1;
    return (float)((double)pf_expf_hl(-zz_hi, -zz_lo) * (p / q));
}

static inline float pf_erff(float x) {
    float z = fabsf(x);
    float zc = z > 10.0f ? 10.0f : z;          /* erfc(10) is below the float range */
    float zh = pf_split12f(zc);
    float tail = pf_erfc_tailf(zc, zh * zh, (zc - zh) * (zc + zh));
    float big = 1.0f - tail;
    big = x < 0 ? -big : big;
    return z < 1.0f ? pf_erf_smallf(x) : big;
}

/* Phi(x), the standard normal CDF, with relative accuracy in the lower tail too:
 * 0.5 erfc(|x|/sqrt2) there, with x*x/2 carried exactly into the Gaussian factor. */
static inline float pf_normal_cdff(float x) {
    float u = x * 0.70710678118654752f;
    float ax = fabsf(x);
    float axc = ax > 14.0f ? 14.0f : ax;
    float xh = pf_split12f(axc);
    float tail = 0.5f * pf_erfc_tailf(axc * 0.70710678118654752f, 0.5f * (xh * xh),
                                      0.5f * ((axc - xh) * (axc + xh)));
    float big = x < 0 ? tail : 1.0f - tail;
    /* the series only where 0.5 + 0.5 erf(u) does not cancel much; the tail from |u| = 0.3 */
    return u > -0.3f && u < 1.0f ? 0.5f + 0.5f * pf_erf_smallf(u) : big;
}

static inline float pf_geluf(float x) {
    /* below -14 the true value is under 1e-43: return -0 rather than x * (a denormal) */
    float y = x * pf_normal_cdff(x);
    return x < -14.0f ? -0.0f : y;
}
static inline double pf_gelu(double x) { return 0.5 * x * erfc(-x * 0.70710678118654752); }

static inline float pf_gelu_gradf(float x) {
    float ax = fabsf(x);
    float axc = ax > 14.0f ? 14.0f : ax;
    float xh = pf_split12f(axc);
    float pdf = 0.3989422804014327f * pf_expf_hl(-0.5f * (xh * xh), -0.5f * ((axc - xh) * (axc + xh)));
    float y = pf_normal_cdff(x) + x * pdf;
    return x < -14.0f ? 0.0f : (x > 14.0f ? 1.0f : y);
}
static inline double pf_gelu_grad(double x) {
    double cdf = 0.5 * erfc(-x * 0.70710678118654752);
    double pdf = 0.3989422804014327 * exp(-0.5 * x * x);
    return cdf + x * pdf;
}

static inline float pf_softplusf(float x) {
    /* log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|) */
    float m = x > 0 ? x : 0.0f;
    return m + log1pf(pf_expf(-fabsf(x)));
}
static inline double pf_softplus(double x) {
    double m = x > 0 ? x : 0.0;
    return m + log1p(exp(-fabs(x)));
}

/* double twins so that templated code can call one name */
static inline double pf_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

#endif
