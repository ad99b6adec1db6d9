/* fakecublas.c — a stand-in for libcublas.so on machines without a GPU,
 * with tests/gpu/fakecuda.c (whose device memory is host memory): the
 * _v2 calls libkilnrt makes (runtime/cublas.c), computing the column-major
 * GEMM on the host, so the cuBLAS path of a matmul — the row-major trick,
 * transposes, leading dimensions, batches — is checked against NumPy.
 * Prints "fakecublas: G gemms" at exit when FAKECUDA_LOG is set.
 * Built by the tests: cc -shared -fPIC fakecublas.c -o DIR/libcublas.so.12,
 * and found through KILN_LIBCUBLAS. */
#include <stdio.h>
#include <stdlib.h>

enum { OK = 0, NOT_INITIALIZED = 1, INVALID_VALUE = 7 };
static long gemms;
static int handles;

static void report(void) {
  if (getenv("FAKECUDA_LOG")) fprintf(stderr, "fakecublas: %ld gemms\n", gemms);
}

int cublasCreate_v2(void **h) {
  if (!handles++) atexit(report);
  *h = malloc(1);
  return *h ? OK : NOT_INITIALIZED;
}
int cublasDestroy_v2(void *h) {
  free(h);
  return OK;
}
int cublasSetStream_v2(void *h, void *s) {
  (void)s;
  return h ? OK : NOT_INITIALIZED;
}

/* column-major C[m x n] = alpha op(A)[m x k] op(B)[k x n] + beta C */
#define GEMM(NAME, T)                                                                                              \
  int NAME(void *h, int ta, int tb, int m, int n, int k, const T *alpha, const T *A, int lda, const T *B, int ldb,   \
           const T *beta, T *C, int ldc) {                                                                           \
    if (!h) return NOT_INITIALIZED;                                                                                  \
    if (m < 0 || n < 0 || k < 0 || lda < (ta ? k : m) || ldb < (tb ? n : k) || ldc < m || lda < 1 || ldb < 1)       \
      return INVALID_VALUE;                                                                                          \
    gemms++;                                                                                                         \
    for (int j = 0; j < n; j++)                                                                                      \
      for (int i = 0; i < m; i++) {                                                                                  \
        double s = 0;                                                                                                \
        for (int p = 0; p < k; p++)                                                                                  \
          s += (double)(ta ? A[p + (long)i * lda] : A[i + (long)p * lda]) *                                          \
               (double)(tb ? B[j + (long)p * ldb] : B[p + (long)j * ldb]);                                           \
        C[i + (long)j * ldc] = (T)(*alpha * s + (*beta != 0 ? *beta * C[i + (long)j * ldc] : 0));                   \
      }                                                                                                              \
    return OK;                                                                                                       \
  }
GEMM(cublasSgemm_v2, float)
GEMM(cublasDgemm_v2, double)
