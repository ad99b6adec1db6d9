/* cublas.c — cuBLAS for the GPU matmuls of libkilnrt (docs/gpu.md).
 *
 * Loaded with dlopen like the driver (runtime/cuda.c): $KILN_LIBCUBLAS, else
 * libcublas.so.12, .11, libcublas.so; where none loads, the matmuls run
 * kiln's own tiled kernel.  cuBLAS is column-major and kiln row-major: a
 * row-major C = A B is the column-major C^T = B^T A^T, so the call passes
 * B then A with m and n swapped, and an operand kiln stores transposed is
 * cuBLAS's CUBLAS_OP_T.  The entry points are the _v2 API's, listed in
 * gpu_api.h (checked against cublas_api.h by the tests; it is not needed). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kiln_dtype.h"
#include "gpu_api.h"
#include "kilnrt.h"

#define API_FIELD(field, symbol, params) cublasStatus_t(*field) params;
static struct {
  KILN_CUBLAS_API(API_FIELD)
} bl;
#undef API_FIELD
static int bl_loaded; /* 0: not tried, 1: loaded, -1: absent */
static char bl_name[256];
static pthread_mutex_t bl_lock = PTHREAD_MUTEX_INITIALIZER;

/* 1 when cuBLAS is usable (*which: the library), 0 when absent or off
 * (KILN_CUBLAS=0). */
int kiln_cublas_load(const char **which) {
  const char *off = getenv("KILN_CUBLAS");
  if (off && (!strcmp(off, "0") || !strcmp(off, "off"))) return 0;
  pthread_mutex_lock(&bl_lock);
  if (!bl_loaded) {
    const char *env = getenv("KILN_LIBCUBLAS");
    const char *names[] = {env && *env ? env : NULL, "libcublas.so.12", "libcublas.so.11", "libcublas.so"};
    void *lib = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !lib; i++)
      if (names[i] && (lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL))) snprintf(bl_name, sizeof bl_name, "%s", names[i]);
    bl_loaded = -1;
    if (lib) {
#define SYM(field, symbol, params) KILN_DL_SYM(__typeof__(bl), field, symbol),
      static const kiln_dl_sym syms[] = {KILN_CUBLAS_API(SYM)};
#undef SYM
      if (!kiln_dl_bind(lib, syms, sizeof syms / sizeof *syms, &bl)) {
        bl_loaded = 1;
      } else {
        dlclose(lib);
      }
    }
  }
  int ok = bl_loaded == 1;
  pthread_mutex_unlock(&bl_lock);
  if (ok && which) *which = bl_name;
  return ok;
}

/* A handle on the current context, bound to `stream`; 0 or cuBLAS's status. */
int kiln_cublas_create(void *stream, void **handle) {
  cublasHandle_t h = NULL;
  int st = bl.Create(&h);
  if (!st) st = bl.SetStream(h, (cudaStream_t)stream);
  if (st && h) bl.Destroy(h);
  *handle = st ? NULL : h;
  return st;
}

void kiln_cublas_destroy(void *handle) {
  if (handle && bl_loaded == 1) bl.Destroy((cublasHandle_t)handle);
}

/* Queues C = A B (row-major, as gm describes) on the handle's stream; 0 or
 * cuBLAS's status. */
int kiln_cublas_gemm(void *handle, const kiln_gpu_gemm *gm, uint64_t a, uint64_t b, uint64_t c) {
  int m = (int)gm->m, n = (int)gm->n, k = (int)gm->k;
  /* column-major: C^T[n x m] = op(B^T)[n x k] op(A^T)[k x m] */
  int opb = gm->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, opa = gm->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  int ldb = gm->trans_b ? k : n, lda = gm->trans_a ? m : k, ldc = n;
  size_t es = gm->dtype == KILN_F64 ? 8 : 4;
  for (int32_t i = 0; i < gm->batch; i++) {
    uint64_t ai = a + (uint64_t)(gm->stride_a * i) * es, bi = b + (uint64_t)(gm->stride_b * i) * es;
    uint64_t ci = c + (uint64_t)(gm->stride_c * i) * es;
    int st;
    if (gm->dtype == KILN_F64) {
      const double one = 1, zero = 0;
      st = bl.Dgemm((cublasHandle_t)handle, opb, opa, n, m, k, &one, (const double *)(uintptr_t)bi, ldb,
                    (const double *)(uintptr_t)ai, lda, &zero, (double *)(uintptr_t)ci, ldc);
    } else {
      const float one = 1, zero = 0;
      st = bl.Sgemm((cublasHandle_t)handle, opb, opa, n, m, k, &one, (const float *)(uintptr_t)bi, ldb,
                    (const float *)(uintptr_t)ai, lda, &zero, (float *)(uintptr_t)ci, ldc);
    }
    if (st) return st;
  }
  return 0;
}
