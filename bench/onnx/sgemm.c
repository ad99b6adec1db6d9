/* sgemm.c — the plain-BLAS baseline of the GEMM-bound ONNX model: the same
 * GEMMs one run of the model performs, each a single cblas_sgemm call
 * (row-major, C[M,N] = A[M,K] * B[N,K]^T, as ONNX's Gemm with transB=1
 * stores its weights), in sequence, without bias or activation.
 *
 *   sgemm [--time N] [--warmup W] M,N,K...
 *
 * prints {"median_ms":..,"min_ms":..,"gflops":..} for the whole sequence
 * (GFLOP/s from the median, 2*M*N*K per GEMM).  Threads: OPENBLAS_NUM_THREADS. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

int main(int argc, char **argv) {
  long runs = 50, warmup = 10;
  int n = 0;
  long mnk[16][3];
  for (int i = 1; i < argc; i++) {
    if ((strcmp(argv[i], "--time") == 0 || strcmp(argv[i], "--warmup") == 0) && i + 1 < argc) {
      long v = atol(argv[i + 1]);
      *(argv[i][2] == 't' ? &runs : &warmup) = v;
      i++;
    } else if (n < 16 && sscanf(argv[i], "%ld,%ld,%ld", &mnk[n][0], &mnk[n][1], &mnk[n][2]) == 3) {
      n++;
    } else {
      fprintf(stderr, "usage: sgemm [--time N] [--warmup W] M,N,K...\n");
      return 2;
    }
  }
  if (!n || runs < 1) {
    fprintf(stderr, "usage: sgemm [--time N] [--warmup W] M,N,K...\n");
    return 2;
  }
  float *a[16], *b[16], *c[16];
  double flops = 0;
  for (int g = 0; g < n; g++) {
    long m = mnk[g][0], nn = mnk[g][1], k = mnk[g][2];
    a[g] = aligned_alloc(64, (size_t)(m * k * 4 + 64));
    b[g] = aligned_alloc(64, (size_t)(nn * k * 4 + 64));
    c[g] = aligned_alloc(64, (size_t)(m * nn * 4 + 64));
    for (long i = 0; i < m * k; i++) a[g][i] = (float)((i * 7 % 13) - 6) / 13.0f;
    for (long i = 0; i < nn * k; i++) b[g][i] = (float)((i * 5 % 11) - 5) / 110.0f;
    flops += 2.0 * m * nn * k;
  }
  double *ms = malloc((size_t)runs * sizeof *ms);
  for (long r = -warmup; r < runs; r++) {
    double t0 = now_ms();
    for (int g = 0; g < n; g++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mnk[g][0], (int)mnk[g][1], (int)mnk[g][2],
                  1.0f, a[g], (int)mnk[g][2], b[g], (int)mnk[g][2], 0.0f, c[g], (int)mnk[g][1]);
    if (r >= 0) ms[r] = now_ms() - t0;
  }
  qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
  double med = runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2;
  printf("{\"runs\":%ld,\"median_ms\":%.6f,\"min_ms\":%.6f,\"gflops\":%.3f}\n", runs, med, ms[0],
         flops / (med * 1e-3) / 1e9);
  for (int g = 0; g < n; g++) free(a[g]), free(b[g]), free(c[g]);
  free(ms);
  return 0;
}
