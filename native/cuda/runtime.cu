/* runtime.cu -- the CUDA twin's runtime: errors (thread-local last error naming the kernel and
 * the CUDA error), argument checks, the stream, device-side error reports, cuBLAS bound with
 * dlopen, the kernel table, the plan runner and CUDA-graph capture. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.cuh"

/* ------------------------------------------------------------------------------------------ */
/* errors                                                                                      */

static __thread char tls_error[1024];
static __thread const char *tls_kernel;
static __thread int tls_kernel_id = -1;

extern "C" const char *pf_cuda_last_error(void) { return tls_error; }
extern "C" void pf_cuda_clear_error(void) { tls_error[0] = 0; }
extern "C" int pf_cuda_abi_version(void) { return PF_CUDA_ABI_VERSION; }
int pf_current_kernel(void) { return tls_kernel_id; }

int pf_fail(int status, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (tls_kernel)
        snprintf(tls_error, sizeof tls_error, "kernel '%s' (CUDA): %s", tls_kernel, msg);
    else
        snprintf(tls_error, sizeof tls_error, "%s", msg);
    return status;
}

static int cuda_status(cudaError_t e) {
    return e == cudaErrorMemoryAllocation ? PF_ERR_MEMORY : PF_ERR_INTERNAL;
}

static int fail_cuda(cudaError_t e, const char *what) {
    return pf_fail(cuda_status(e), "%s: CUDA error %s (%s)", what, cudaGetErrorName(e),
                   cudaGetErrorString(e));
}

int pf_cuda_check_launch(const char *what) {
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? PF_OK : fail_cuda(e, what);
}

/* ------------------------------------------------------------------------------------------ */
/* argument checks: the C library's, message for message                                       */

const char *pf_dtype_name(int dtype) {
    switch (dtype) {
    case PF_FLOAT32: return "float32";
    case PF_FLOAT64: return "float64";
    case PF_INT32: return "int32";
    case PF_INT64: return "int64";
    case PF_BOOL: return "bool";
    default: return "unknown dtype";
    }
}

size_t pf_dtype_size(int dtype) {
    switch (dtype) {
    case PF_FLOAT32: case PF_INT32: return 4;
    case PF_FLOAT64: case PF_INT64: return 8;
    case PF_BOOL: return 1;
    default: return 0;
    }
}

int64_t pf_numel(const pf_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

int pf_is_contiguous(const pf_tensor *t) {
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != expect) return 0;
        expect *= t->shape[i];
    }
    return 1;
}

int pf_check_arity(const pf_args *a, int n_in_min, int n_in_max, int n_out) {
    PF_CHECK(a != NULL, PF_ERR_ARGUMENT, "null argument block");
    PF_CHECK(a->n_in >= n_in_min && a->n_in <= n_in_max && a->n_in <= PF_MAX_IN, PF_ERR_ARGUMENT,
             "expected %d..%d inputs, got %d", n_in_min, n_in_max, a->n_in);
    PF_CHECK(a->n_out == n_out, PF_ERR_ARGUMENT, "expected %d outputs, got %d", n_out, a->n_out);
    for (int i = 0; i < a->n_in; i++)
        PF_CHECK(a->inputs[i] != NULL, PF_ERR_ARGUMENT, "input %d is null", i);
    for (int i = 0; i < a->n_out; i++)
        PF_CHECK(a->outputs[i] != NULL, PF_ERR_ARGUMENT, "output %d is null", i);
    return PF_OK;
}

int pf_check_attrs(const pf_args *a, int n_iattr, int n_fattr) {
    PF_CHECK(a->n_iattr >= n_iattr && (n_iattr == 0 || a->iattr != NULL), PF_ERR_ARGUMENT,
             "expected %d integer attributes, got %d", n_iattr, a->n_iattr);
    PF_CHECK(a->n_fattr >= n_fattr && (n_fattr == 0 || a->fattr != NULL), PF_ERR_ARGUMENT,
             "expected %d float attributes, got %d", n_fattr, a->n_fattr);
    return PF_OK;
}

#define PF_MAX_ELEMENTS ((int64_t)1 << 56)

int pf_check_tensor(const pf_tensor *t, const char *what) {
    PF_CHECK(t->ndim >= 0 && t->ndim <= PF_MAX_DIMS, PF_ERR_ARGUMENT, "%s has ndim %d (0..%d)",
             what, t->ndim, PF_MAX_DIMS);
    PF_CHECK(pf_dtype_size(t->dtype) != 0, PF_ERR_DTYPE, "%s has unknown dtype code %d", what,
             t->dtype);
    int empty = 0;
    for (int i = 0; i < t->ndim; i++) {
        PF_CHECK(t->shape[i] >= 0, PF_ERR_SHAPE, "%s has negative size %lld in dim %d", what,
                 (long long)t->shape[i], i);
        PF_CHECK(t->shape[i] <= PF_MAX_ELEMENTS && (t->shape[i] <= 1 ||
                 (t->strides[i] <= PF_MAX_ELEMENTS && t->strides[i] >= -PF_MAX_ELEMENTS)),
                 PF_ERR_SHAPE, "%s is too large: size %lld, stride %lld in dim %d", what,
                 (long long)t->shape[i], (long long)t->strides[i], i);
        empty |= t->shape[i] == 0;
    }
    if (empty) return PF_OK;
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        int64_t extent = t->shape[i] - 1;
        int64_t stride = t->strides[i] < 0 ? -t->strides[i] : t->strides[i];
        PF_CHECK(n <= PF_MAX_ELEMENTS / t->shape[i] &&
                 (extent == 0 || stride <= PF_MAX_ELEMENTS / extent), PF_ERR_SHAPE,
                 "%s is too large: size %lld, stride %lld in dim %d", what,
                 (long long)t->shape[i], (long long)t->strides[i], i);
        n *= t->shape[i];
    }
    PF_CHECK(t->data != NULL, PF_ERR_ARGUMENT, "%s has no data", what);
    return PF_OK;
}

int pf_check_contiguous(const pf_tensor *t, const char *what) {
    PF_TRY(pf_check_tensor(t, what));
    PF_CHECK(pf_is_contiguous(t), PF_ERR_ARGUMENT, "%s must be contiguous", what);
    return PF_OK;
}

static void format_shape(const pf_tensor *t, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld",
                                 (long long)t->shape[i]);
    if (used < n) snprintf(buf + used, n - used, t->ndim == 1 ? ",)" : ")");
}

int pf_check_same_shape(const pf_tensor *a, const pf_tensor *b, const char *wa, const char *wb) {
    int same = a->ndim == b->ndim;
    for (int i = 0; same && i < a->ndim; i++) same = a->shape[i] == b->shape[i];
    if (!same) {
        char sa[160], sb[160];
        format_shape(a, sa, sizeof sa);
        format_shape(b, sb, sizeof sb);
        return pf_fail(PF_ERR_SHAPE, "%s has shape %s but %s has shape %s", wa, sa, wb, sb);
    }
    return PF_OK;
}

int pf_check_float(const pf_tensor *t, const char *what) {
    PF_CHECK(t->dtype == PF_FLOAT32 || t->dtype == PF_FLOAT64, PF_ERR_DTYPE,
             "%s must be float32 or float64, got %s", what, pf_dtype_name(t->dtype));
    return PF_OK;
}

int pf_check_dtype(const pf_tensor *t, int dtype, const char *what) {
    PF_CHECK(t->dtype == dtype, PF_ERR_DTYPE, "%s must be %s, got %s", what, pf_dtype_name(dtype),
             pf_dtype_name(t->dtype));
    return PF_OK;
}

int pf_check_broadcast_input(const pf_tensor *in, const pf_tensor *out, const char *what) {
    PF_TRY(pf_check_tensor(in, what));
    PF_CHECK(in->ndim == out->ndim, PF_ERR_SHAPE,
             "%s has %d dims but the output has %d (broadcast inputs carry the output's shape)",
             what, in->ndim, out->ndim);
    for (int d = 0; d < in->ndim; d++)
        PF_CHECK(in->shape[d] == out->shape[d], PF_ERR_SHAPE,
                 "%s has size %lld in dim %d but the output has %lld", what,
                 (long long)in->shape[d], d, (long long)out->shape[d]);
    return PF_OK;
}

/* the C library's pf_walk_init: unit dims dropped, dims merged where every operand allows */
void pf_dwalk_init(pf_dwalk *w, int ndim, const int64_t *shape, int nops,
                   const int64_t *const *strides) {
    w->nops = nops;
    w->ndim = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) continue;
        int k = w->ndim;
        if (k > 0) {
            int mergeable = 1;
            for (int o = 0; o < nops && mergeable; o++)
                mergeable = w->strides[o][k - 1] == strides[o][d] * shape[d];
            if (mergeable) {
                w->shape[k - 1] *= shape[d];
                for (int o = 0; o < nops; o++) w->strides[o][k - 1] = strides[o][d];
                continue;
            }
        }
        w->shape[k] = shape[d];
        for (int o = 0; o < nops; o++) w->strides[o][k] = strides[o][d];
        w->ndim++;
    }
    if (w->ndim == 0) {
        w->ndim = 1;
        w->shape[0] = 1;
        for (int o = 0; o < nops; o++) w->strides[o][0] = 1;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* devices, the stream, device-side errors                                                     */

static cudaStream_t lib_stream;   /* shared by all threads: pyfront sets it from CuPy's */

cudaStream_t pf_stream(void) { return lib_stream; }

extern "C" int pf_cuda_device_count(int *count) {
    if (count == NULL) return pf_fail(PF_ERR_ARGUMENT, "pf_cuda_device_count: null result");
    *count = 0;
    cudaError_t e = cudaGetDeviceCount(count);
    if (e != cudaSuccess) {
        *count = 0;
        cudaGetLastError();   /* not sticky: clear it so later calls do not report it */
        return fail_cuda(e, "counting CUDA devices");
    }
    return PF_OK;
}

extern "C" int pf_cuda_set_device(int device) {
    cudaError_t e = cudaSetDevice(device);
    return e == cudaSuccess ? PF_OK : fail_cuda(e, "selecting the CUDA device");
}

extern "C" int pf_cuda_set_stream(void *stream) {
    lib_stream = (cudaStream_t)stream;
    return PF_OK;
}

extern "C" void *pf_cuda_get_stream(void) { return (void *)lib_stream; }

__device__ pf_dev_error pf_dev_error_record;
__device__ int pf_dev_error_flag;

extern "C" const char *pf_cuda_kernel_name(int32_t kernel);

extern "C" int pf_cuda_check_device_errors(void) {
    int flag = 0;
    pf_dev_error rec;
    cudaError_t e = cudaMemcpyFromSymbolAsync(&flag, pf_dev_error_flag, sizeof flag, 0,
                                              cudaMemcpyDeviceToHost, lib_stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(lib_stream);
    if (e != cudaSuccess) return fail_cuda(e, "reading the device error record");
    if (!flag) return PF_OK;
    e = cudaMemcpyFromSymbol(&rec, pf_dev_error_record, sizeof rec);
    int zero = 0;
    if (e == cudaSuccess) e = cudaMemcpyToSymbol(pf_dev_error_flag, &zero, sizeof zero);
    if (e != cudaSuccess) return fail_cuda(e, "reading the device error record");
    const char *name = pf_cuda_kernel_name(rec.kernel);
    const char *saved = tls_kernel;
    tls_kernel = name ? name : "?";
    int status;
    switch (rec.kind) {
    case PF_DEV_INDEX:
        status = pf_fail(PF_ERR_INDEX, "index %lld at position %lld is out of range for an axis "
                         "of size %lld", rec.a, rec.b, rec.c);
        break;
    case PF_DEV_LABEL:
        status = pf_fail(PF_ERR_INDEX, "label %lld in row %lld is out of range for %lld classes",
                         rec.a, rec.b, rec.c);
        break;
    case PF_DEV_CAST:
        status = pf_fail(PF_ERR_NUMERIC, "cannot convert the value at flat index %lld to an "
                         "integer (NaN, Inf or out of range)", rec.b);
        break;
    case PF_DEV_ZERO_DIVISOR:
        status = pf_fail(PF_ERR_NUMERIC, "integer division by zero (flat index %lld)", rec.b);
        break;
    case PF_DEV_LOSS:
        status = pf_fail(PF_ERR_NUMERIC, "the loss is NaN or Inf: row (or element) %lld of the "
                         "inputs holds NaN or Inf", rec.b);
        break;
    default:
        status = pf_fail(PF_ERR_NUMERIC, "output %lld holds NaN or Inf at flat index %lld",
                         rec.a, rec.b);
        break;
    }
    tls_kernel = saved;
    return status;
}

extern "C" int pf_cuda_synchronize(void) {
    cudaError_t e = cudaStreamSynchronize(lib_stream);
    if (e != cudaSuccess) return fail_cuda(e, "synchronizing the stream");
    return pf_cuda_check_device_errors();
}

/* ------------------------------------------------------------------------------------------ */
/* cuBLAS, bound at run time                                                                   */

typedef int (*cublas_create_fn)(void **);
typedef int (*cublas_set_stream_fn)(void *, cudaStream_t);
typedef int (*cublas_set_math_mode_fn)(void *, int);
typedef int (*cublas_set_workspace_fn)(void *, void *, size_t);
typedef int (*cublas_sgemm_fn)(void *, int, int, int, int, int, const float *, const float *,
                               int, long long, const float *, int, long long, const float *,
                               float *, int, long long, int);
typedef int (*cublas_dgemm_fn)(void *, int, int, int, int, int, const double *, const double *,
                               int, long long, const double *, int, long long, const double *,
                               double *, int, long long, int);

static struct {
    void *lib;
    cublas_create_fn create;
    cublas_set_stream_fn set_stream;
    cublas_set_math_mode_fn set_math_mode;
    cublas_set_workspace_fn set_workspace;
    cublas_sgemm_fn sgemm;
    cublas_dgemm_fn dgemm;
    int tf32;
    char info[600];
} blas;

/* A cuBLAS handle belongs to the device that was current when it was made: one per device,
 * made at the first product there (or by pf_cuda_load_cublas for the current one). */
#define PF_CUDA_MAX_DEVICES 64
static struct blas_device {
    void *handle;
    void *workspace;       /* our own, so that cuBLAS allocates nothing while a graph records */
    cudaStream_t stream;   /* the stream the handle was last given */
    int tf32;              /* the math mode the handle was last given */
} blas_devices[PF_CUDA_MAX_DEVICES];

/* cuBLAS' recommended workspace for Hopper; enough for the other architectures too */
#define CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20)
static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;

enum { CUBLAS_OP_N_ = 0, CUBLAS_OP_T_ = 1, CUBLAS_DEFAULT_MATH_ = 0,
       CUBLAS_TF32_TENSOR_OP_MATH_ = 3 };

/* The current device's handle, made on first use (call with blas_lock held). */
static int blas_device_handle(struct blas_device **out) {
    int device = 0;
    cudaError_t ce = cudaGetDevice(&device);
    if (ce != cudaSuccess) return fail_cuda(ce, "finding the current device for cuBLAS");
    PF_CHECK(device >= 0 && device < PF_CUDA_MAX_DEVICES, PF_ERR_BLAS, "device %d is beyond "
             "the %d devices pyfront's cuBLAS binding serves", device, PF_CUDA_MAX_DEVICES);
    struct blas_device *d = &blas_devices[device];
    if (d->handle == NULL) {
        /* making a handle allocates, which a CUDA-graph capture on this thread forbids */
        cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
        cudaStreamIsCapturing(lib_stream, &capturing);
        PF_CHECK(capturing == cudaStreamCaptureStatusNone, PF_ERR_BLAS, "cuBLAS has no handle "
                 "for device %d yet, and one cannot be made while a CUDA graph is captured: "
                 "run the plan once uncaptured on that device first", device);
        void *handle = NULL;
        int e = blas.create(&handle);
        if (e == 0 && cudaMalloc(&d->workspace, CUBLAS_WORKSPACE_BYTES) != cudaSuccess) {
            cudaGetLastError();
            e = -1;
        }
        PF_CHECK(e == 0, PF_ERR_BLAS, "cublasCreate or its workspace failed on device %d "
                 "(status %d): no GPU, no memory, or a driver older than this cuBLAS", device, e);
        d->handle = handle;
        d->stream = (cudaStream_t)-1;   /* handed over at the first product */
        d->tf32 = -1;
    }
    if (d->tf32 != blas.tf32) {
        blas.set_math_mode(d->handle, blas.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH_
                                                : CUBLAS_DEFAULT_MATH_);
        d->tf32 = blas.tf32;
    }
    if (d->stream != lib_stream) {
        /* cublasSetStream puts the handle back on cuBLAS' own workspace pool: ours again */
        blas.set_stream(d->handle, lib_stream);
        blas.set_workspace(d->handle, d->workspace, CUBLAS_WORKSPACE_BYTES);
        d->stream = lib_stream;
    }
    *out = d;
    return PF_OK;
}

extern "C" int pf_cuda_load_cublas(const char *path) {
    PF_CHECK(path != NULL, PF_ERR_ARGUMENT, "pf_cuda_load_cublas: null path");
    pthread_mutex_lock(&blas_lock);
    int status = PF_OK;
    if (blas.lib == NULL) {
        void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (lib == NULL) {
            status = pf_fail(PF_ERR_BLAS, "cannot load cuBLAS from %s: %s", path, dlerror());
        } else {
            blas.create = (cublas_create_fn)dlsym(lib, "cublasCreate_v2");
            blas.set_stream = (cublas_set_stream_fn)dlsym(lib, "cublasSetStream_v2");
            blas.set_math_mode = (cublas_set_math_mode_fn)dlsym(lib, "cublasSetMathMode");
            blas.set_workspace = (cublas_set_workspace_fn)dlsym(lib, "cublasSetWorkspace_v2");
            blas.sgemm = (cublas_sgemm_fn)dlsym(lib, "cublasSgemmStridedBatched");
            blas.dgemm = (cublas_dgemm_fn)dlsym(lib, "cublasDgemmStridedBatched");
            if (!blas.create || !blas.set_stream || !blas.set_math_mode || !blas.set_workspace ||
                !blas.sgemm || !blas.dgemm) {
                status = pf_fail(PF_ERR_BLAS, "%s lacks the cuBLAS functions pyfront needs "
                                 "(cublasCreate_v2, cublasSgemmStridedBatched, ...)", path);
                dlclose(lib);
            } else {
                /* the current device's handle now, so that a library this GPU's driver cannot
                 * run is refused here (and the next candidate tried) */
                struct blas_device *d;
                status = blas_device_handle(&d);
                if (status != PF_OK) {
                    dlclose(lib);
                } else {
                    blas.lib = lib;
                    snprintf(blas.info, sizeof blas.info, "cuBLAS from %s", path);
                }
            }
        }
    }
    pthread_mutex_unlock(&blas_lock);
    return status;
}

extern "C" int pf_cuda_set_tf32(int enabled) {
    blas.tf32 = enabled != 0;   /* each device's handle takes it at its next product */
    return PF_OK;
}

extern "C" const char *pf_cuda_info(void) { return blas.lib ? blas.info : "cuBLAS not loaded"; }

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the operands swap. */
int pf_cublas_gemm(int dtype, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                   const void *a, int64_t lda, int64_t sa, const void *b, int64_t ldb,
                   int64_t sb, double beta, void *c, int64_t ldc, int64_t sc, int64_t batch) {
    PF_CHECK(blas.lib != NULL, PF_ERR_BLAS, "cuBLAS is not loaded (pf_cuda_load_cublas was "
             "not called)");
    PF_CHECK(m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX && lda <= INT32_MAX &&
             ldb <= INT32_MAX && ldc <= INT32_MAX && batch <= INT32_MAX, PF_ERR_BLAS,
             "a size beyond cuBLAS' 32-bit range (m %lld, n %lld, k %lld)", (long long)m,
             (long long)n, (long long)k);
    if (m == 0 || n == 0 || batch == 0) return PF_OK;
    struct blas_device *d;
    pthread_mutex_lock(&blas_lock);
    int status = blas_device_handle(&d);
    pthread_mutex_unlock(&blas_lock);
    if (status != PF_OK) return status;
    int opa = ta ? CUBLAS_OP_T_ : CUBLAS_OP_N_, opb = tb ? CUBLAS_OP_T_ : CUBLAS_OP_N_;
    int e;
    if (dtype == PF_FLOAT32) {
        float al = (float)alpha, be = (float)beta;
        e = blas.sgemm(d->handle, opb, opa, (int)n, (int)m, (int)k, &al, (const float *)b,
                       (int)ldb, sb, (const float *)a, (int)lda, sa, &be, (float *)c, (int)ldc,
                       sc, (int)batch);
    } else {
        e = blas.dgemm(d->handle, opb, opa, (int)n, (int)m, (int)k, &alpha, (const double *)b,
                       (int)ldb, sb, (const double *)a, (int)lda, sa, &beta, (double *)c,
                       (int)ldc, sc, (int)batch);
    }
    PF_CHECK(e == 0, PF_ERR_BLAS, "cuBLAS gemm failed with status %d", e);
    return PF_LAUNCHED();
}

/* ------------------------------------------------------------------------------------------ */
/* kernel table                                                                                */

static const pf_kernel_entry *const tables[] = {
    pf_cuda_kernels_elementwise, pf_cuda_kernels_reduce, pf_cuda_kernels_nn,
    pf_cuda_kernels_layout, pf_cuda_kernels_linalg, pf_cuda_kernels_optim,
    pf_cuda_kernels_random, pf_cuda_kernels_pool, pf_cuda_kernels_norm, pf_cuda_kernels_conv,
    pf_cuda_kernels_scan, pf_cuda_kernels_rnn,
};

#define MAX_KERNELS 512
static const pf_kernel_entry *kernels[MAX_KERNELS];
static int n_kernels;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void) {
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const pf_kernel_entry *e = tables[t]; e->name != NULL && n_kernels < MAX_KERNELS; e++)
            kernels[n_kernels++] = e;
}

extern "C" int pf_cuda_kernel_count(void) {
    pthread_once(&table_once, build_table);
    return n_kernels;
}

extern "C" const char *pf_cuda_kernel_name(int32_t kernel) {
    pthread_once(&table_once, build_table);
    return kernel >= 0 && kernel < n_kernels ? kernels[kernel]->name : NULL;
}

extern "C" int pf_cuda_kernel_lookup(const char *name) {
    pthread_once(&table_once, build_table);
    if (name == NULL) return -1;
    for (int i = 0; i < n_kernels; i++)
        if (strcmp(kernels[i]->name, name) == 0) return i;
    return -1;
}

extern "C" int pf_cuda_kernel_has_workspace(int32_t kernel) {
    pthread_once(&table_once, build_table);
    return kernel >= 0 && kernel < n_kernels && kernels[kernel]->workspace != NULL;
}

extern "C" int pf_cuda_workspace_size(int32_t kernel, const pf_args *args, int64_t *bytes) {
    pthread_once(&table_once, build_table);
    if (bytes == NULL) return pf_fail(PF_ERR_ARGUMENT, "pf_cuda_workspace_size: null result");
    *bytes = 0;
    if (kernel < 0 || kernel >= n_kernels)
        return pf_fail(PF_ERR_UNKNOWN_KERNEL, "no CUDA kernel with id %d", kernel);
    if (kernels[kernel]->workspace == NULL) return PF_OK;
    tls_kernel = kernels[kernel]->name;
    int status = kernels[kernel]->workspace(args, bytes);
    tls_kernel = NULL;
    return status;
}

static int debug_level;
extern "C" int pf_cuda_set_debug(int level) {
    debug_level = level;
    return PF_OK;
}

template <typename T>
__global__ void nonfinite_kernel(const T *x, int64_t n, int output, int kernel) {
    PF_GRID_LOOP(i, n) {
        if (!isfinite((double)x[i])) {
            pf_dev_fail(PF_DEV_NONFINITE, kernel, output, i, 0);
            return;
        }
    }
}

static int check_outputs_finite(const pf_args *a) {
    for (int o = 0; o < a->n_out; o++) {
        const pf_tensor *t = a->outputs[o];
        if ((t->dtype != PF_FLOAT32 && t->dtype != PF_FLOAT64) || !pf_is_contiguous(t)) continue;
        int64_t n = pf_numel(t);
        if (n == 0) continue;
        PF_FLOAT_DISPATCH(t->dtype, T, nonfinite_kernel<T><<<pf_blocks(n), PF_THREADS, 0,
                          lib_stream>>>((const T *)t->data, n, o, tls_kernel_id));
        PF_TRY(pf_cuda_check_launch("the PYFRONT_DEBUG check"));
    }
    return pf_cuda_synchronize();
}

static int run_one(int32_t kernel, const pf_args *args) {
    if (kernel < 0 || kernel >= n_kernels)
        return pf_fail(PF_ERR_UNKNOWN_KERNEL, "no CUDA kernel with id %d", kernel);
    if (args == NULL) return pf_fail(PF_ERR_ARGUMENT, "null argument block");
    tls_kernel = kernels[kernel]->name;
    tls_kernel_id = kernel;
    int status = kernels[kernel]->run(args);
    if (status == PF_OK && debug_level > 0) status = check_outputs_finite(args);
    tls_kernel = NULL;
    tls_kernel_id = -1;
    return status;
}

extern "C" int pf_cuda_run(int32_t kernel, const pf_args *args) {
    pthread_once(&table_once, build_table);
    return run_one(kernel, args);
}

extern "C" int pf_cuda_run_steps(const pf_step *steps, int64_t begin, int64_t end,
                                 int64_t *failed_step) {
    pthread_once(&table_once, build_table);
    if (failed_step) *failed_step = -1;
    if (steps == NULL && end > begin) return pf_fail(PF_ERR_ARGUMENT, "null plan");
    for (int64_t i = begin; i < end; i++) {
        int status = run_one(steps[i].kernel, &steps[i].args);
        if (status != PF_OK) {
            if (failed_step) *failed_step = i;
            return status;
        }
    }
    return PF_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* CUDA graphs                                                                                 */

extern "C" int pf_cuda_graph_capture(const pf_step *steps, int64_t begin, int64_t end,
                                     void **graph, int64_t *failed_step) {
    pthread_once(&table_once, build_table);
    PF_CHECK(graph != NULL, PF_ERR_ARGUMENT, "pf_cuda_graph_capture: null result");
    *graph = NULL;
    PF_CHECK(lib_stream != NULL, PF_ERR_ARGUMENT, "CUDA-graph capture needs a stream of its "
             "own: the legacy default stream cannot be captured (pf_cuda_set_stream)");
    PF_CHECK(debug_level == 0, PF_ERR_ARGUMENT, "CUDA-graph capture is off under PYFRONT_DEBUG "
             "(its checks wait for every kernel)");
    cudaError_t e = cudaStreamBeginCapture(lib_stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) return fail_cuda(e, "beginning a CUDA-graph capture");
    int status = pf_cuda_run_steps(steps, begin, end, failed_step);
    cudaGraph_t g = NULL;
    e = cudaStreamEndCapture(lib_stream, &g);
    if (status != PF_OK) {
        if (g) cudaGraphDestroy(g);
        return status;
    }
    if (e != cudaSuccess) return fail_cuda(e, "ending a CUDA-graph capture");
    cudaGraphExec_t exec = NULL;
    e = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) return fail_cuda(e, "instantiating a CUDA graph");
    *graph = (void *)exec;
    return PF_OK;
}

extern "C" int pf_cuda_graph_launch(void *graph) {
    PF_CHECK(graph != NULL, PF_ERR_ARGUMENT, "pf_cuda_graph_launch: null graph");
    cudaError_t e = cudaGraphLaunch((cudaGraphExec_t)graph, lib_stream);
    return e == cudaSuccess ? PF_OK : fail_cuda(e, "launching a CUDA graph");
}

extern "C" int pf_cuda_graph_destroy(void *graph) {
    if (graph == NULL) return PF_OK;
    cudaError_t e = cudaGraphExecDestroy((cudaGraphExec_t)graph);
    return e == cudaSuccess ? PF_OK : fail_cuda(e, "destroying a CUDA graph");
}
