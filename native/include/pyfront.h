/*
 * pyfront.h -- the one ABI of the pyfront native kernel library.
 *
 * Everything that crosses between Python (cffi, API mode) and C is declared here: flat
 * functions, plain structs of pointers and integers, an int status on every call and a
 * thread-local last-error message. No Python object ever crosses.
 *
 * Kernels are reached by name through one table (pf_kernel_lookup) and one calling convention
 * (pf_args), so that eager code (one pf_run per op) and compiled plans (pf_run_steps, one call
 * per training step) execute the very same kernels. A CUDA twin implements the same table.
 *
 * cffi parses this file, so it keeps to declarations cffi understands: no function-like macros
 * and no preprocessor conditionals below the includes, except the one around the CUDA twin's
 * section at the end (native/build.py leaves it out of the C library's declarations).
 */
#ifndef PYFRONT_H
#define PYFRONT_H

#include <stdint.h>

/* Bumped whenever a declaration below changes; pyfront/backend/cpu.py names the version it
 * was written for and refuses a library built from another (a stale build). */
#define PF_ABI_VERSION 5
#define PF_MAX_DIMS 8
#define PF_MAX_IN 16
#define PF_MAX_OUT 8

/* ---- status codes: every function returns one; pf_last_error() says more ---- */
enum pf_status {
    PF_OK = 0,
    PF_ERR_ARGUMENT = 1,     /* wrong number of tensors, bad attribute, null data */
    PF_ERR_SHAPE = 2,        /* shapes that do not fit together */
    PF_ERR_DTYPE = 3,        /* dtype the kernel does not support, or mismatched dtypes */
    PF_ERR_INDEX = 4,        /* an index or label out of range */
    PF_ERR_NUMERIC = 5,      /* NaN or Inf where it is not allowed (debug checks, losses) */
    PF_ERR_MEMORY = 6,       /* allocation failed */
    PF_ERR_BLAS = 7,         /* no BLAS bound, or a size beyond the BLAS integer range */
    PF_ERR_UNKNOWN_KERNEL = 8,
    PF_ERR_INTERNAL = 9
};

enum pf_dtype { PF_FLOAT32 = 0, PF_FLOAT64 = 1, PF_INT32 = 2, PF_INT64 = 3,
                PF_BOOL = 4          /* one byte, 0 or 1 */
};

/* A view of memory: data points at element [0,...,0]; strides are in elements and may be 0
 * (broadcast). Kernels state which inputs they require to be contiguous. */
typedef struct pf_tensor {
    void *data;
    int32_t dtype;
    int32_t ndim;
    int64_t shape[PF_MAX_DIMS];
    int64_t strides[PF_MAX_DIMS];
} pf_tensor;

/* The one calling convention of every kernel. In-place kernels name the updated tensors as
 * outputs. Attributes are kernel-specific (documented beside each kernel in native/src). */
typedef struct pf_args {
    int32_t n_in;
    int32_t n_out;
    int32_t n_iattr;
    int32_t n_fattr;
    pf_tensor *inputs[PF_MAX_IN];
    pf_tensor *outputs[PF_MAX_OUT];
    const int64_t *iattr;
    const double *fattr;
    void *workspace;          /* scratch memory of pf_workspace_size bytes, or NULL */
    int64_t workspace_bytes;
} pf_args;

/* One instruction of a compiled plan. */
typedef struct pf_step {
    int32_t kernel;
    int32_t reserved;
    pf_args args;
} pf_step;

/* ---- elementwise opcodes (iattr[0] of "unary", "unary_grad", "binary"; fused programs) ---- */
enum pf_unary_op {
    PF_U_IDENTITY = 0, PF_U_NEG = 1, PF_U_EXP = 2, PF_U_LOG = 3, PF_U_SQRT = 4, PF_U_RSQRT = 5,
    PF_U_ABS = 6, PF_U_SIGN = 7, PF_U_SQUARE = 8, PF_U_RECIPROCAL = 9, PF_U_SIN = 10,
    PF_U_COS = 11, PF_U_TANH = 12, PF_U_SIGMOID = 13, PF_U_RELU = 14,
    PF_U_LEAKY_RELU = 15,      /* fattr: alpha */
    PF_U_GELU = 16, PF_U_SOFTPLUS = 17, PF_U_ERF = 18, PF_U_FLOOR = 19, PF_U_CEIL = 20,
    PF_U_AFFINE = 21,          /* y = a*x + b; fattr: a, b */
    PF_U_POW_SCALAR = 22,      /* y = x**p; fattr: p */
    PF_U_CLIP = 23,            /* fattr: lo, hi */
    PF_U_LOG1P = 24, PF_U_EXPM1 = 25, PF_U_ROUND = 26,
    PF_U_TRUNC = 27, PF_U_TAN = 28, PF_U_ASIN = 29, PF_U_ACOS = 30, PF_U_ATAN = 31,
    PF_U_SINH = 32, PF_U_COSH = 33, PF_U_ASINH = 34, PF_U_ACOSH = 35, PF_U_ATANH = 36,
    PF_U_LOG2 = 37, PF_U_LOG10 = 38, PF_U_EXP2 = 39,
    PF_U_ELU = 40,             /* fattr: alpha */
    PF_U_SELU = 41,
    PF_U_CELU = 42,            /* fattr: alpha */
    PF_U_SILU = 43, PF_U_MISH = 44, PF_U_SOFTSIGN = 45, PF_U_LOGSIGMOID = 46,
    PF_U_HARDSIGMOID = 47, PF_U_HARDSWISH = 48,
    PF_U_GELU_TANH = 49,       /* gelu with the tanh approximation */
    PF_U_COUNT = 50
};

/* Gradients of activations: dx = g * f'(.) computed from x or from y = f(x) as noted. */
enum pf_unary_grad_op {
    PF_G_RELU = 0,             /* from y (or x: same mask) */
    PF_G_LEAKY_RELU = 1,       /* from x; fattr: alpha */
    PF_G_SIGMOID = 2,          /* from y */
    PF_G_TANH = 3,             /* from y */
    PF_G_GELU = 4,             /* from x */
    PF_G_SOFTPLUS = 5,         /* from x */
    PF_G_ELU = 6,              /* from x; fattr: alpha */
    PF_G_SELU = 7,             /* from x */
    PF_G_CELU = 8,             /* from x; fattr: alpha */
    PF_G_SILU = 9, PF_G_MISH = 10, PF_G_SOFTSIGN = 11, PF_G_LOGSIGMOID = 12,
    PF_G_HARDSIGMOID = 13, PF_G_HARDSWISH = 14, PF_G_GELU_TANH = 15,   /* from x */
    PF_G_COUNT = 16
};

enum pf_binary_op {
    PF_B_ADD = 0, PF_B_SUB = 1, PF_B_MUL = 2, PF_B_DIV = 3, PF_B_POW = 4, PF_B_MAX = 5,
    PF_B_MIN = 6, PF_B_EQ = 7, PF_B_NE = 8, PF_B_LT = 9, PF_B_LE = 10, PF_B_GT = 11,
    PF_B_GE = 12,
    PF_B_FMOD = 13,            /* C's fmod: the sign of a */
    PF_B_REMAINDER = 14,       /* Python's %: the sign of b */
    PF_B_FLOOR_DIVIDE = 15,    /* Python's // */
    PF_B_ATAN2 = 16, PF_B_HYPOT = 17,
    PF_B_BITWISE_AND = 18, PF_B_BITWISE_OR = 19, PF_B_BITWISE_XOR = 20,   /* integers only */
    PF_B_COUNT = 21
};

enum pf_reduce_op {
    PF_R_SUM = 0, PF_R_MEAN = 1, PF_R_MAX = 2, PF_R_MIN = 3, PF_R_ARGMAX = 4, PF_R_ARGMIN = 5,
    PF_R_PROD = 6,
    PF_R_COUNT = 7
};

/* Activation fused into "linear" (iattr[0]). */
enum pf_activation {
    PF_ACT_NONE = 0, PF_ACT_RELU = 1, PF_ACT_SIGMOID = 2, PF_ACT_TANH = 3, PF_ACT_GELU = 4,
    PF_ACT_LEAKY_RELU = 5,     /* fattr[0]: alpha */
    PF_ACT_UNARY = 6           /* iattr[1]: any pf_unary_op; fattr[0], fattr[1]: its parameters */
};

/* A fused elementwise program ("fused" kernel) is a sequence of instructions of six int64 words:
 * opcode, dst, a, b, op, fslot. Registers hold tiles of the output's elements; operator
 * parameters (alpha, p, lo/hi...) are read from fattr[fslot], fattr[fslot + 1]. */
enum pf_fused_opcode {
    PF_F_LOAD = 0,             /* reg[dst] = inputs[a] (broadcast to the output shape) */
    PF_F_CONST = 1,            /* reg[dst] = fattr[fslot] */
    PF_F_UNARY = 2,            /* reg[dst] = unary[op](reg[a]) */
    PF_F_BINARY = 3,           /* reg[dst] = binary[op](reg[a], reg[b]) */
    PF_F_UNARY_GRAD = 4,       /* reg[dst] = unary_grad[op](reg[a], g = reg[b]) */
    PF_F_STORE = 5             /* outputs[b] = reg[a] */
};
#define PF_FUSED_WORDS 6
#define PF_FUSED_REGS 8
/* Operands (inputs plus outputs) that one strided walk iterates together: a fused program
 * ("fused" kernel) has at most this many inputs and outputs in all. */
#define PF_WALK_MAX_OPS 12

/* ---- library ---- */
int pf_abi_version(void);
const char *pf_last_error(void);
void pf_clear_error(void);

/* Load the BLAS from a shared library: symbols <prefix>cblas_sgemm, <prefix>cblas_dgemm (32-bit
 * integers) and, if present, <prefix>openblas_set_num_threads. The library keeps the BLAS
 * single-threaded and splits large products over its own thread pool, so one pool serves both.
 * pf_blas_info() describes what was loaded. */
int pf_load_blas(const char *library_path, const char *symbol_prefix);
const char *pf_blas_info(void);

/* Set the thread count of another OpenBLAS already loaded in the process (numpy's own), so
 * that its idle pool does not spin against ours. PF_ERR_BLAS if path is not loaded or has no
 * set-threads function. */
int pf_cap_foreign_blas(const char *library_path, int threads);
int pf_blas_bound(void);

int pf_set_num_threads(int n);
int pf_get_num_threads(void);

/* Spin until file descriptor fd has bytes to read (or is closed or failed: the read that
 * follows says which), for at most spin_ns nanoseconds, yielding the CPU between checks (a
 * thread that wants the core gets it). 1 once readable, 0 when the spin ended first (block then).
 * For servers of back-to-back requests on a local socket (the JVM bridge's worker): a blocking
 * read pays the hypervisor's wake-up, 20-50 us on the VMs measured, where the next request
 * comes microseconds after the reply. Called without the GIL (cffi releases it). */
int pf_wait_readable(int fd, int64_t spin_ns);

/* Debug level 1: after every kernel, check float outputs for NaN/Inf and fail naming the
 * kernel (PYFRONT_DEBUG=1). */
int pf_set_debug(int level);

/* ---- kernels ---- */
int pf_kernel_count(void);
const char *pf_kernel_name(int32_t kernel);
int pf_kernel_lookup(const char *name);             /* id, or -1 */
int pf_workspace_size(int32_t kernel, const pf_args *args, int64_t *bytes);
int pf_kernel_has_workspace(int32_t kernel);          /* 1 if it may ask for scratch memory */
int pf_run(int32_t kernel, const pf_args *args);

/* Kernels compiled outside the library (a user's C, built with cffi against this header) join
 * the one table by name: eager calls and compiled plans then run them like the built-in ones.
 * workspace may be NULL. PF_ERR_ARGUMENT for a name in use (built-in or registered), a name
 * longer than 63 bytes, or a full table. Registered kernels stay for the process's life. */
typedef int (*pf_user_kernel)(const pf_args *args);
typedef int (*pf_user_workspace)(const pf_args *args, int64_t *bytes);
int pf_register_kernel(const char *name, pf_user_kernel run, pf_user_workspace workspace);
/* A registered kernel's failure: records message as the thread's last error (after the
 * running kernel's name, as the built-in kernels' messages) and returns status, for
 * `return pf_set_error(PF_ERR_ARGUMENT, "...")`. */
int pf_set_error(int status, const char *message);

/* Run steps [begin, end) of a plan; on failure *failed_step names the step. */
int pf_run_steps(const pf_step *steps, int64_t begin, int64_t end, int64_t *failed_step);

/* Eager replays: the kernel calls an op made on its first call with given shapes, dtypes and
 * attributes, run again on new memory. The caller sets buffers[] (the op's inputs, then its
 * outputs); each patch points its descriptor at buffers[buffer] + offset bytes; then the steps
 * run in order (as pf_run_steps). */
typedef struct pf_patch {
    pf_tensor *desc;
    int32_t buffer;
    int32_t reserved;
    int64_t offset;
} pf_patch;
typedef struct pf_replay {
    const pf_step *steps;
    const pf_patch *patches;
    void *const *buffers;
    int32_t n_steps;
    int32_t n_patches;
    int32_t n_buffers;
    int32_t reserved;
} pf_replay;
int pf_replay_run(const pf_replay *replay);

/* ==== the CUDA twin: libpyfront_cuda.so, built from native/cuda ====
 *
 * The kernels have the same names and the same calling convention as the C library's (pf_args,
 * pf_step, the status codes above), with device pointers in the descriptors. Attribute arrays
 * (iattr, fattr) stay in host memory, as in C. Everything runs on the library's stream
 * (pf_cuda_set_stream), asynchronously: argument checks that need only shapes fail at once with
 * a status and a last error naming the kernel; checks that need the data (an index out of
 * range, a float that cannot become an integer) are made on the device and reported by the next
 * pf_cuda_check_device_errors / pf_cuda_synchronize, naming the kernel that found them.
 *
 * The CUDA sources define PF_CUDA_API (default visibility: only these names leave a library
 * built with -fvisibility=hidden, so its internal helpers never interpose on the C library's
 * of the same names); C compiles skip the section. native/build.py strips it from the C
 * library's cdef; pyfront/backend/cuda.py reads it, from the header installed with the library,
 * as the cdef of libpyfront_cuda.so (ABI mode). Keep it one block ending with the marked
 * #endif. */
#ifdef PF_CUDA_API

/* Bumped whenever a declaration below changes (pyfront/backend/cuda.py checks it). */
#define PF_CUDA_ABI_VERSION 1

PF_CUDA_API int pf_cuda_abi_version(void);
PF_CUDA_API const char *pf_cuda_last_error(void);
PF_CUDA_API void pf_cuda_clear_error(void);

/* Devices visible to the CUDA runtime; a status (with the CUDA error in the last error) when
 * there is no driver or no device. */
PF_CUDA_API int pf_cuda_device_count(int *count);
/* Make `device` current for this thread. */
PF_CUDA_API int pf_cuda_set_device(int device);
/* The stream every kernel is launched on (a cudaStream_t; NULL is the legacy default stream).
 * pyfront passes CuPy's current stream, so kernels order with CuPy's memory pool. */
PF_CUDA_API int pf_cuda_set_stream(void *stream);
PF_CUDA_API void *pf_cuda_get_stream(void);
/* Wait for the stream, then report device-side errors (see above). */
PF_CUDA_API int pf_cuda_synchronize(void);
/* Report (and clear) a device-side error without waiting for anything else: it copies the
 * error record with the stream's order, so it sees errors of kernels launched before it. */
PF_CUDA_API int pf_cuda_check_device_errors(void);

/* Load cuBLAS from a shared library (libcublas.so.N of the nvidia-cublas wheel). */
PF_CUDA_API int pf_cuda_load_cublas(const char *library_path);
/* 1: TF32 tensor cores for float32 GEMM (faster, ~10 bits of mantissa); 0 (default): exact
 * float32, as the CPU. */
PF_CUDA_API int pf_cuda_set_tf32(int enabled);
PF_CUDA_API const char *pf_cuda_info(void);

/* Debug level 1: after every kernel, wait for it and check its float outputs for NaN/Inf and
 * device-side errors, failing naming the kernel (PYFRONT_DEBUG=1). */
PF_CUDA_API int pf_cuda_set_debug(int level);

/* ---- kernels: the same names as pf_kernel_lookup's (a subset while the twin grows) ---- */
PF_CUDA_API int pf_cuda_kernel_count(void);
PF_CUDA_API const char *pf_cuda_kernel_name(int32_t kernel);
PF_CUDA_API int pf_cuda_kernel_lookup(const char *name);
PF_CUDA_API int pf_cuda_workspace_size(int32_t kernel, const pf_args *args, int64_t *bytes);
PF_CUDA_API int pf_cuda_kernel_has_workspace(int32_t kernel);
PF_CUDA_API int pf_cuda_run(int32_t kernel, const pf_args *args);
PF_CUDA_API int pf_cuda_run_steps(const pf_step *steps, int64_t begin, int64_t end,
                                  int64_t *failed_step);

/* ---- CUDA graphs: a plan captured once, replayed with one launch ----
 * pf_cuda_graph_capture records steps [begin, end) on the library's stream (nothing runs) and
 * instantiates them; pf_cuda_graph_launch replays the recording on the stream. A replay reads
 * the same device addresses and attribute values as the capture: valid while the plan's arena
 * and parameter storage are unchanged (learning rates live in device "hyper" tensors, so
 * schedules still apply). */
PF_CUDA_API int pf_cuda_graph_capture(const pf_step *steps, int64_t begin, int64_t end,
                                      void **graph, int64_t *failed_step);
PF_CUDA_API int pf_cuda_graph_launch(void *graph);
PF_CUDA_API int pf_cuda_graph_destroy(void *graph);

#endif /* PF_CUDA_API */

#endif
