/* gpu_api.h — the CUDA driver and cuBLAS entry points libkilnrt loads with
 * dlopen (runtime/cuda.c, runtime/cublas.c): one list of symbols and
 * parameter lists, which the loaders turn into their tables of function
 * pointers and tests/gpu/abi_check.c checks against NVIDIA's own cuda.h and
 * cublas_api.h, so a wrong symbol version or parameter type is caught where
 * the CUDA headers exist, without a GPU.
 *
 * X(field, symbol, (parameters)): the result is CUresult (driver) or
 * cublasStatus_t (cuBLAS).  The types are the headers' names; without the
 * headers (KILN_WITH_CUDA_HEADERS undefined) the ABI-equal definitions
 * below stand in for them. */
#ifndef KILN_GPU_API_H
#define KILN_GPU_API_H

#include <stddef.h>

#ifndef KILN_WITH_CUDA_HEADERS
typedef int CUresult; /* an enum of non-negative values: 4 bytes */
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef int CUjit_option;
typedef int cublasStatus_t;
typedef int cublasOperation_t;
typedef struct cublasContext *cublasHandle_t;
typedef struct CUstream_st *cudaStream_t;
#endif

/* The headers' constants libkilnrt uses, with their values. */
#define KILN_GPU_CONSTANTS(X)             \
  X(CU_JIT_ERROR_LOG_BUFFER, 5)           \
  X(CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, 6) \
  X(CUBLAS_OP_N, 0)                       \
  X(CUBLAS_OP_T, 1)
#ifndef KILN_WITH_CUDA_HEADERS
#define KILN_GPU_CONSTANT(name, value) name = value,
enum { KILN_GPU_CONSTANTS(KILN_GPU_CONSTANT) };
#undef KILN_GPU_CONSTANT
#endif

/* One entry of a loader's table: the symbol and where its pointer goes. */
typedef struct kiln_dl_sym {
  const char *name;
  size_t offset;
} kiln_dl_sym;
#define KILN_DL_SYM(table_type, field, symbol) {#symbol, offsetof(table_type, field)}
/* Stores each symbol's address from the dlopen'd lib at table + offset;
 * NULL when all were found, else the first missing name (runtime/cuda.c). */
const char *kiln_dl_bind(void *lib, const kiln_dl_sym *syms, size_t n, void *table);

#define KILN_CUDA_DRIVER_API(X)                                                                              \
  X(Init, cuInit, (unsigned int))                                                                            \
  X(DeviceGetCount, cuDeviceGetCount, (int *))                                                               \
  X(DeviceGet, cuDeviceGet, (CUdevice *, int))                                                               \
  X(DeviceGetName, cuDeviceGetName, (char *, int, CUdevice))                                                 \
  X(DevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain, (CUcontext *, CUdevice))                               \
  X(DevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease_v2, (CUdevice))                                       \
  X(CtxSetCurrent, cuCtxSetCurrent, (CUcontext))                                                             \
  X(ModuleLoadDataEx, cuModuleLoadDataEx, (CUmodule *, const void *, unsigned int, CUjit_option *, void **)) \
  X(ModuleGetFunction, cuModuleGetFunction, (CUfunction *, CUmodule, const char *))                          \
  X(ModuleUnload, cuModuleUnload, (CUmodule))                                                                \
  X(LaunchKernel, cuLaunchKernel,                                                                            \
    (CUfunction, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int,         \
     unsigned int, CUstream, void **, void **))                                                              \
  X(MemAlloc, cuMemAlloc_v2, (CUdeviceptr *, size_t))                                                        \
  X(MemFree, cuMemFree_v2, (CUdeviceptr))                                                                    \
  X(MemGetInfo, cuMemGetInfo_v2, (size_t *, size_t *))                                                       \
  X(MemcpyHtoDAsync, cuMemcpyHtoDAsync_v2, (CUdeviceptr, const void *, size_t, CUstream))                    \
  X(MemcpyDtoHAsync, cuMemcpyDtoHAsync_v2, (void *, CUdeviceptr, size_t, CUstream))                          \
  X(MemcpyDtoDAsync, cuMemcpyDtoDAsync_v2, (CUdeviceptr, CUdeviceptr, size_t, CUstream))                     \
  X(MemcpyPeerAsync, cuMemcpyPeerAsync, (CUdeviceptr, CUcontext, CUdeviceptr, CUcontext, size_t, CUstream))  \
  X(StreamCreate, cuStreamCreate, (CUstream *, unsigned int))                                                \
  X(StreamSynchronize, cuStreamSynchronize, (CUstream))                                                      \
  X(StreamDestroy, cuStreamDestroy_v2, (CUstream))                                                           \
  X(GetErrorName, cuGetErrorName, (CUresult, const char **))                                                 \
  X(GetErrorString, cuGetErrorString, (CUresult, const char **))

#define KILN_CUBLAS_API(X)                                                                                   \
  X(Create, cublasCreate_v2, (cublasHandle_t *))                                                             \
  X(Destroy, cublasDestroy_v2, (cublasHandle_t))                                                             \
  X(SetStream, cublasSetStream_v2, (cublasHandle_t, cudaStream_t))                                           \
  X(Sgemm, cublasSgemm_v2,                                                                                   \
    (cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const float *, const float *, int, \
     const float *, int, const float *, float *, int))                                                       \
  X(Dgemm, cublasDgemm_v2,                                                                                   \
    (cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const double *, const double *,    \
     int, const double *, int, const double *, double *, int))

#endif
