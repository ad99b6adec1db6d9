/* bench.c — kiln's benchmarks, each printed as a ratio against a baseline
 * measured in the same run (these machines are shared and noisy):
 *   elementwise  z = x*y + 1 over 4M floats  vs  a plain C loop doing the same
 *                (and the memory traffic as a fraction of memcpy bandwidth)
 *   matmul       512^3 through kiln         vs  cblas_sgemm called directly
 *   train        one SGD step of a 784-512-10 MLP, batch 256 (`bench train`
 *                prints its time alone, for bench/torch_train.py to compare
 *                against the same step in PyTorch)
 *   mlp          one plain-SGD step of a 784-512-512-10 MLP at batch 128 and
 *                at batch 8 (bench/train128.kg, bench/train8.kg); `bench mlp`
 *                prints the two times (ms) for bench/torch_train.py, which
 *                times the same steps in PyTorch on one thread
 *   generated    kiln's own GEMM (`--blas generated --cpu native`): a
 *                1024^3 matmul (bench/mmgen.kg) vs cblas_sgemm on one
 *                thread, and the train/mlp steps above built that way (the
 *                Makefile renames their modules traing, mlp128g, mlp8g) vs
 *                the same steps through OpenBLAS; `bench train-gen` and
 *                `bench mlp-gen` print their times like `train` and `mlp`
 * Each figure is the best of several repetitions. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ew.h"
#include "mm.h"
#include "train.h"
#include "train128.h"
#include "train8.h"
#include "mmgen.h"
#include "traing.h"
#include "train128g.h"
#include "train8g.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define BEST_OF(reps, stmt)                          \
  ({                                                 \
    double best_ = 1e30;                             \
    for (int r_ = 0; r_ < (reps); r_++) {            \
      double t0_ = now();                            \
      stmt;                                          \
      double dt_ = now() - t0_;                      \
      if (dt_ < best_) best_ = dt_;                  \
    }                                                \
    best_;                                           \
  })

static void plain_loop(const float *x, const float *y, float *z, long n) {
  for (long i = 0; i < n; i++) z[i] = x[i] * y[i] + 1.0f;
}

/* Milliseconds of one training step (best of 20 after a warm-up), of the
 * module `train` or, with the generated GEMM, `traing`. */
#define TRAIN_STEP_MS(M)                                                             \
  ({                                                                                 \
    M##_t *t_ = M##_create();                                                        \
    M##_run_in *in_ = calloc(1, sizeof *in_);                                        \
    M##_run_out out_;                                                                \
    for (int i = 0; i < 256; i++) {                                                  \
      for (int j = 0; j < 784; j++) in_->x[i][j] = (float)((i * 7 + j * 3) % 17) / 17.0f; \
      in_->labels[i][i % 10] = 1.0f;                                                 \
    }                                                                                \
    M##_run(t_, in_, &out_);                                                         \
    double best_ = BEST_OF(20, M##_run(t_, in_, &out_));                             \
    M##_destroy(t_);                                                                 \
    free(in_);                                                                       \
    best_ * 1e3;                                                                     \
  })

static double train_step_ms(void) { return TRAIN_STEP_MS(train); }

/* The inputs of the MLP steps, the same as bench/torch_train.py's: pixel i,j
 * of example i is ((i*7 + j*3) % 17) / 17, the label of example i is i % 10. */
static void mlp_inputs(int batch, float *x, int32_t *labels) {
  for (int i = 0; i < batch; i++) {
    for (int j = 0; j < 784; j++) x[(long)i * 784 + j] = (float)((i * 7 + j * 3) % 17) / 17.0f;
    labels[i] = i % 10;
  }
}

/* Milliseconds of one MLP training step: best of `reps` after 3 warm-up steps. */
#define MLP_STEP_MS(M, BATCH, REPS)                                  \
  ({                                                                 \
    M##_t *t_ = M##_create();                                        \
    M##_run_in *in_ = calloc(1, sizeof *in_);                        \
    M##_run_out out_;                                                \
    mlp_inputs(BATCH, &in_->x[0][0], in_->labels);                   \
    for (int w_ = 0; w_ < 3; w_++) M##_run(t_, in_, &out_);          \
    double best_ = BEST_OF(REPS, M##_run(t_, in_, &out_));           \
    M##_destroy(t_);                                                 \
    free(in_);                                                       \
    best_ * 1e3;                                                     \
  })

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "train")) {
    printf("%.3f\n", train_step_ms());
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "mlp")) {
    printf("%.4f %.4f\n", MLP_STEP_MS(mlp128, 128, 50), MLP_STEP_MS(mlp8, 8, 500));
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "train-gen")) {
    printf("%.3f\n", TRAIN_STEP_MS(traing));
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "mlp-gen")) {
    printf("%.4f %.4f\n", MLP_STEP_MS(mlp128g, 128, 50), MLP_STEP_MS(mlp8g, 8, 500));
    return 0;
  }
  const long N = 4194304;
  ew_t *e = ew_create();
  mm_t *m = mm_create();
  ew_run_in *ein = malloc(sizeof *ein);
  ew_run_out *eout = malloc(sizeof *eout);
  float *z = malloc(sizeof(float) * N), *buf = malloc(sizeof(float) * N * 3);
  for (long i = 0; i < N; i++) ein->x[i] = (float)(i % 7), ein->y[i] = (float)(i % 5);
  double t_kiln = BEST_OF(10, ew_run(e, ein, eout));
  double t_loop = BEST_OF(10, plain_loop(ein->x, ein->y, z, N));
  double t_copy = BEST_OF(10, memcpy(buf, ein->x, sizeof(float) * N * 2));
  /* bytes moved: kiln reads x and y and writes z (fused, straight into the
   * output struct); memcpy reads and writes 2N floats */
  double kiln_bw = (double)N * 4 * 3 / t_kiln, copy_bw = (double)N * 4 * 2 * 2 / t_copy;

  mm_run_in *min = malloc(sizeof *min);
  mm_run_out *mout = malloc(sizeof *mout);
  for (int i = 0; i < 512 * 512; i++) min->a[i / 512][i % 512] = (float)(i % 13) / 13, min->b[i / 512][i % 512] = (float)(i % 11) / 11;
  float *c = malloc(sizeof(float) * 512 * 512);
  double t_mm = BEST_OF(10, mm_run(m, min, mout));
  double t_blas = BEST_OF(10, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 512, 512, 512, 1.0f,
                                          &min->a[0][0], 512, &min->b[0][0], 512, 0.0f, c, 512));
  printf("%-34s %12s %12s %8s\n", "benchmark", "kiln (ms)", "base (ms)", "ratio");
  printf("%-34s %12.3f %12.3f %8.2f\n", "elementwise 4M vs plain C loop", t_kiln * 1e3, t_loop * 1e3, t_loop / t_kiln);
  printf("%-34s %12.1f %12.1f %8.2f\n", "elementwise GB/s vs memcpy GB/s", kiln_bw / 1e9, copy_bw / 1e9, kiln_bw / copy_bw);
  printf("%-34s %12.3f %12.3f %8.2f\n", "matmul 512^3 vs cblas_sgemm", t_mm * 1e3, t_blas * 1e3, t_blas / t_mm);

  /* kiln's generated GEMM (one thread) vs OpenBLAS held to one thread */
  enum { G = 1024 };
  mmgen_t *mg = mmgen_create();
  mmgen_run_in *gin = malloc(sizeof *gin);
  mmgen_run_out *gout = malloc(sizeof *gout);
  float *gc = malloc(sizeof(float) * G * G);
  for (long i = 0; i < (long)G * G; i++) gin->a[i / G][i % G] = (float)(i % 13) / 13, gin->b[i / G][i % G] = (float)(i % 11) / 11;
  int threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  mmgen_run(mg, gin, gout);
  double t_gen = BEST_OF(10, mmgen_run(mg, gin, gout));
  double t_sgemm = BEST_OF(10, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, G, G, G, 1.0f, &gin->a[0][0], G,
                                          &gin->b[0][0], G, 0.0f, gc, G));
  openblas_set_num_threads(threads);
  double gflop = 2.0 * G * G * G / 1e9;
  printf("%-34s %12.3f %12.3f %8.2f\n", "matmul 1024^3 generated vs sgemm x1", t_gen * 1e3, t_sgemm * 1e3, t_sgemm / t_gen);
  printf("%-34s %12.1f %12.1f %8.2f\n", "  GFLOP/s generated vs sgemm x1", gflop / t_gen, gflop / t_sgemm, t_sgemm / t_gen);
  /* the training steps with the generated GEMM vs through OpenBLAS */
  double tr = TRAIN_STEP_MS(train), trg = TRAIN_STEP_MS(traing);
  double m128 = MLP_STEP_MS(mlp128, 128, 50), m128g = MLP_STEP_MS(mlp128g, 128, 50);
  double m8 = MLP_STEP_MS(mlp8, 8, 500), m8g = MLP_STEP_MS(mlp8g, 8, 500);
  printf("%-34s %12.3f %12.3f %8.2f\n", "train b256 step generated vs sgemm", trg, tr, tr / trg);
  printf("%-34s %12.3f %12.3f %8.2f\n", "mlp b128 step generated vs sgemm", m128g, m128, m128 / m128g);
  printf("%-34s %12.3f %12.3f %8.2f\n", "mlp b8 step generated vs sgemm", m8g, m8, m8 / m8g);
  printf("(ratio > 1: kiln faster than the baseline; OpenBLAS threads: %s; OpenBLAS core: %s;\n"
         " \"generated\": --blas generated --cpu native)\n",
         getenv("OPENBLAS_NUM_THREADS") ? getenv("OPENBLAS_NUM_THREADS") : "default", openblas_get_corename());
  ew_destroy(e);
  mm_destroy(m);
  mmgen_destroy(mg);
  free(ein), free(eout), free(z), free(buf), free(min), free(mout), free(c);
  free(gin), free(gout), free(gc);
  return 0;
}
