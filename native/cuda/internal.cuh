/* internal.cuh -- what the CUDA kernel files share: errors and argument checks (the C library's
 * messages, reimplemented: the two libraries are separate shared objects), launch helpers, the
 * device-side error record and the strided index walk. Not part of the ABI. */
#ifndef PF_CUDA_INTERNAL_CUH
#define PF_CUDA_INTERNAL_CUH

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* the ABI header's CUDA section is compiled in (its functions exported by name, C linkage) */
#define PF_CUDA_API __attribute__((visibility("default")))
extern "C" {
#include "pyfront.h"
}

/* ---- errors ---- */
int pf_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* After a launch: a CUDA error becomes a status whose message names the kernel and the error. */
int pf_cuda_check_launch(const char *what);

#define PF_CHECK(cond, status, ...) \
    do { if (!(cond)) return pf_fail((status), __VA_ARGS__); } while (0)
#define PF_TRY(expr) \
    do { int pf_try_status_ = (expr); if (pf_try_status_ != PF_OK) return pf_try_status_; } while (0)
#define PF_LAUNCHED() pf_cuda_check_launch(__func__)

static inline int pf_code(int64_t v) { return v >= 0 && v <= 0x7fffffff ? (int)v : -1; }
int pf_check_arity(const pf_args *a, int n_in_min, int n_in_max, int n_out);
int pf_check_attrs(const pf_args *a, int n_iattr, int n_fattr);
int pf_check_tensor(const pf_tensor *t, const char *what);
int pf_check_contiguous(const pf_tensor *t, const char *what);
int pf_check_same_shape(const pf_tensor *a, const pf_tensor *b, const char *wa, const char *wb);
int pf_check_float(const pf_tensor *t, const char *what);
int pf_check_dtype(const pf_tensor *t, int dtype, const char *what);
int pf_check_broadcast_input(const pf_tensor *in, const pf_tensor *out, const char *what);
int64_t pf_numel(const pf_tensor *t);
int pf_is_contiguous(const pf_tensor *t);
const char *pf_dtype_name(int dtype);
size_t pf_dtype_size(int dtype);
static inline double pf_fattr_or(const pf_args *a, int i, double dflt) {
    return a->n_fattr > i && a->fattr ? a->fattr[i] : dflt;
}

/* ---- the stream and the running kernel ---- */
cudaStream_t pf_stream(void);
/* Table id of the kernel running on this thread (-1 outside pf_cuda_run): kernels that check
 * data on the device pass it along so that the error names them. */
int pf_current_kernel(void);

/* ---- device-side errors: the first kernel to find bad data records it; the host reads the
 * record at pf_cuda_check_device_errors ---- */
enum pf_dev_error_kind {
    PF_DEV_INDEX = 1,        /* a: the index, b: its position, c: the axis size */
    PF_DEV_LABEL = 2,        /* a: the label, b: its row, c: the number of classes */
    PF_DEV_CAST = 3,         /* b: the flat position of a float that does not fit the integer type */
    PF_DEV_ZERO_DIVISOR = 4, /* b: the flat position of an integer zero divisor */
    PF_DEV_NONFINITE = 5,    /* a: output number, b: flat position (debug checks) */
    PF_DEV_LOSS = 6,         /* b: the row (or element) whose loss is NaN or Inf */
};
typedef struct pf_dev_error {
    int kind, kernel;
    long long a, b, c;
} pf_dev_error;
extern __device__ pf_dev_error pf_dev_error_record;
extern __device__ int pf_dev_error_flag;

__device__ __forceinline__ void pf_dev_fail(int kind, int kernel, long long a, long long b,
                                            long long c) {
    if (atomicCAS(&pf_dev_error_flag, 0, 1) == 0) {
        pf_dev_error_record.kind = kind;
        pf_dev_error_record.kernel = kernel;
        pf_dev_error_record.a = a;
        pf_dev_error_record.b = b;
        pf_dev_error_record.c = c;
    }
}

/* ---- block-wide sums in a fixed order (deterministic: a CUDA-graph replay gives the same
 * bits), for blocks of a multiple of 32 threads up to 1024; every thread gets the total ---- */
__device__ __forceinline__ double pf_block_sum(double v) {
    __shared__ double partial[32];
    for (int s = 16; s > 0; s >>= 1) v += __shfl_down_sync(0xffffffffu, v, s);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();   /* partial may still be read by a previous call */
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    double total = 0;
    int warps = (blockDim.x + 31) >> 5;
    for (int w = 0; w < warps; w++) total += partial[w];
    return total;
}

/* ---- launches ---- */
#define PF_THREADS 256
static inline unsigned pf_blocks(int64_t n, int threads = PF_THREADS) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    return (unsigned)(b > 65535LL * 32 ? 65535LL * 32 : b);   /* grid-stride loops do the rest */
}
#define PF_GRID_LOOP(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (int64_t)blockDim.x * gridDim.x)

/* ---- strided iteration: element i of a contiguous output reaches each operand at
 * sum(idx_d * stride[o][d]); the shape is collapsed on the host first ---- */
#define PF_WALK_OPS PF_WALK_MAX_OPS
struct pf_dwalk {
    int ndim, nops;
    int64_t shape[PF_MAX_DIMS];
    int64_t strides[PF_WALK_OPS][PF_MAX_DIMS];
};
void pf_dwalk_init(pf_dwalk *w, int ndim, const int64_t *shape, int nops,
                   const int64_t *const *strides);

__device__ __forceinline__ void pf_dwalk_offsets(const pf_dwalk &w, int64_t i, int64_t *off) {
    for (int o = 0; o < w.nops; o++) off[o] = 0;
    for (int d = w.ndim - 1; d >= 0; d--) {
        int64_t n = w.shape[d];
        int64_t k = i % n;
        i /= n;
        for (int o = 0; o < w.nops; o++) off[o] += k * w.strides[o][d];
    }
}

/* dispatch a templated launch over the float types */
#define PF_FLOAT_DISPATCH(dtype, T, ...)                                                       \
    do {                                                                                       \
        if ((dtype) == PF_FLOAT32) { typedef float T; __VA_ARGS__; }                          \
        else { typedef double T; __VA_ARGS__; }                                               \
    } while (0)

#define PF_ANY_DISPATCH(dtype, T, ...)                                                         \
    do {                                                                                       \
        switch (dtype) {                                                                       \
        case PF_FLOAT32: { typedef float T; __VA_ARGS__; break; }                             \
        case PF_FLOAT64: { typedef double T; __VA_ARGS__; break; }                            \
        case PF_INT32: { typedef int32_t T; __VA_ARGS__; break; }                             \
        case PF_INT64: { typedef int64_t T; __VA_ARGS__; break; }                             \
        default: { typedef uint8_t T; __VA_ARGS__; break; }                                   \
        }                                                                                      \
    } while (0)

/* ---- the kernel tables: each .cu file exports one ending with {NULL, NULL, NULL} ---- */
typedef int (*pf_kernel_fn)(const pf_args *args);
typedef int (*pf_workspace_fn)(const pf_args *args, int64_t *bytes);
typedef struct pf_kernel_entry {
    const char *name;
    pf_kernel_fn run;
    pf_workspace_fn workspace;
} pf_kernel_entry;

extern const pf_kernel_entry pf_cuda_kernels_elementwise[];
extern const pf_kernel_entry pf_cuda_kernels_reduce[];
extern const pf_kernel_entry pf_cuda_kernels_nn[];
extern const pf_kernel_entry pf_cuda_kernels_layout[];
extern const pf_kernel_entry pf_cuda_kernels_linalg[];
extern const pf_kernel_entry pf_cuda_kernels_optim[];
extern const pf_kernel_entry pf_cuda_kernels_random[];
extern const pf_kernel_entry pf_cuda_kernels_pool[];
extern const pf_kernel_entry pf_cuda_kernels_norm[];
extern const pf_kernel_entry pf_cuda_kernels_conv[];
extern const pf_kernel_entry pf_cuda_kernels_scan[];
extern const pf_kernel_entry pf_cuda_kernels_rnn[];

/* ---- cuBLAS (loaded by pf_cuda_load_cublas) ---- */
int pf_cublas_gemm(int dtype, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                   const void *a, int64_t lda, int64_t sa, const void *b, int64_t ldb,
                   int64_t sb, double beta, void *c, int64_t ldc, int64_t sc, int64_t batch);

/* ---- device math shared by the elementwise and nn kernels ---- */
template <typename T> __device__ __forceinline__ T pf_sigmoid(T x) { return (T)1 / ((T)1 + exp(-x)); }
template <typename T> __device__ __forceinline__ T pf_softplus(T x) {
    T m = x > 0 ? x : (T)0;
    return m + log1p(exp(-fabs(x)));
}
template <typename T> __device__ __forceinline__ T pf_gelu(T x) {
    return (T)0.5 * x * erfc(-x * (T)0.70710678118654752);
}
template <typename T> __device__ __forceinline__ T pf_gelu_grad(T x) {
    T cdf = (T)0.5 * erfc(-x * (T)0.70710678118654752);
    T pdf = (T)0.3989422804014327 * exp((T)-0.5 * x * x);
    return cdf + x * pdf;
}

#endif
