/*
 * pyfront_cuda.h -- the ABI of libpyfront_cuda.so, the CUDA twin of the native kernel library.
 *
 * The kernels have the same names and the same calling convention as the C library's
 * (pyfront.h: pf_tensor, pf_args, pf_step, the status codes), with device pointers in the
 * descriptors. Attribute arrays (iattr, fattr) stay in host memory, as in C. Everything runs
 * on the library's stream (pf_cuda_set_stream), asynchronously: argument checks that need only
 * shapes fail at once with a status and a last error naming the kernel; checks that need the
 * data (an index out of range, a float that cannot become an integer) are made on the device
 * and reported by the next pf_cuda_check_device_errors / pf_cuda_synchronize, naming the
 * kernel that found them.
 *
 * pyfront/backend/cuda.py declares these functions to cffi (ABI mode); a test keeps the two
 * in step.
 */
#ifndef PYFRONT_CUDA_H
#define PYFRONT_CUDA_H

#include "pyfront.h"

/* only these names leave the library (built with -fvisibility=hidden): its internal helpers
 * (pf_fail, pf_check_*) must never interpose on the C library's of the same names */
#define PF_CUDA_API __attribute__((visibility("default")))

#ifdef __cplusplus
extern "C" {
#endif

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
PF_CUDA_API int pf_cuda_run_steps(const pf_step *steps, int64_t begin, int64_t end, int64_t *failed_step);

/* ---- CUDA graphs: a plan captured once, replayed with one launch ----
 * pf_cuda_graph_capture records steps [begin, end) on the library's stream (nothing runs) and
 * instantiates them; pf_cuda_graph_launch replays the recording on the stream. A replay reads
 * the same device addresses and attribute values as the capture: valid while the plan's arena
 * and parameter storage are unchanged (learning rates live in device "hyper" tensors, so
 * schedules still apply). */
PF_CUDA_API int pf_cuda_graph_capture(const pf_step *steps, int64_t begin, int64_t end, void **graph,
                          int64_t *failed_step);
PF_CUDA_API int pf_cuda_graph_launch(void *graph);
PF_CUDA_API int pf_cuda_graph_destroy(void *graph);

#ifdef __cplusplus
}
#endif

#endif
