/* abi_check.c — checks runtime/gpu_api.h, the CUDA driver and cuBLAS entry
 * points libkilnrt loads with dlopen, against NVIDIA's own cuda.h and
 * cublas_api.h: every symbol is declared there with exactly the parameter
 * list kiln calls it with, kiln's stand-in types have the headers' sizes,
 * and its constants the headers' values.  It only has to compile:
 *
 *   cc -std=c17 -fsyntax-only -I$CUDA/include -Iruntime tests/gpu/abi_check.c
 *
 * (tests/e2e/test_gpu_devices.c, gpu_abi; skipped where the headers are
 * absent).  -DKILN_ABI_BROKEN adds one wrong entry, which must not compile. */
#include <cuda.h>
#include <cublas_api.h>
#define KILN_WITH_CUDA_HEADERS
#include "gpu_api.h"

#define SAME_TYPE(result, symbol, params)                                                   \
  _Static_assert(__builtin_types_compatible_p(result(*) params, __typeof__(&symbol)), \
                 #symbol " is not declared as " #params " in the CUDA headers");
#define DRIVER(field, symbol, params) SAME_TYPE(CUresult, symbol, params)
#define CUBLAS(field, symbol, params) SAME_TYPE(cublasStatus_t, symbol, params)
KILN_CUDA_DRIVER_API(DRIVER)
KILN_CUBLAS_API(CUBLAS)
#ifdef KILN_ABI_BROKEN
DRIVER(MemAlloc, cuMemAlloc_v2, (unsigned int *, unsigned int))
#endif

#define VALUE(name, value) _Static_assert(name == value, #name " is not " #value " in the CUDA headers");
KILN_GPU_CONSTANTS(VALUE)

/* without the headers, gpu_api.h stands in int for these enums and typedefs */
_Static_assert(sizeof(CUresult) == sizeof(int), "CUresult is not int-sized");
_Static_assert(sizeof(CUjit_option) == sizeof(int), "CUjit_option is not int-sized");
_Static_assert(sizeof(cublasStatus_t) == sizeof(int), "cublasStatus_t is not int-sized");
_Static_assert(sizeof(cublasOperation_t) == sizeof(int), "cublasOperation_t is not int-sized");
_Static_assert(__builtin_types_compatible_p(CUdevice, int), "CUdevice is not int");
_Static_assert(__builtin_types_compatible_p(CUdeviceptr, unsigned long long), "CUdeviceptr is not unsigned long long");
_Static_assert(__builtin_types_compatible_p(cudaStream_t, CUstream), "cudaStream_t is not CUstream");
