/* peak.c — the single-core f32 multiply-add peak of this machine, the
 * ceiling for the GEMM-bound rows of the ONNX benchmark (bench.py): the
 * fastest any program, kiln or ONNX Runtime, can do a model's FLOPs on one
 * thread.  Twelve independent chains of vector multiply-adds (enough to
 * cover the latency of two FMA pipes), built with -O2 -march=native so the
 * compiler uses the widest vectors and FMA the CPU has.
 *
 * With --read BYTES it measures instead how fast one core reads a buffer of
 * that size over and over (vector loads, eight partial sums), as a model
 * reads its weights run after run: the ceiling for the memory-bound rows
 * (an MLP at batch 1, whose weights just miss L2).
 *
 *   peak [--seconds S]     prints {"gflops":..} (the best of 20 rounds)
 *   peak --read BYTES      prints {"gbps":..}  (the best of 20 rounds) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef float vf __attribute__((vector_size(64)));
enum { CHAINS = 12, LANES = sizeof(vf) / sizeof(float) };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int read_bandwidth(long bytes) {
  long n = bytes / (long)sizeof(vf);
  if (n < 8) n = 8;
  vf *buf = aligned_alloc(64, (size_t)n * sizeof(vf));
  if (!buf) return 1;
  for (long i = 0; i < n; i++)
    for (int l = 0; l < LANES; l++) buf[i][l] = (float)((i + l) % 7);
  vf s[8] = {0};
  double best = 0;
  for (int round = 0; round < 20; round++) {
    long passes = 1 + (50L << 20) / (n * (long)sizeof(vf)); /* about 50 MB per round */
    double t0 = now();
    for (long p = 0; p < passes; p++)
      for (long i = 0; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += buf[i + j];
    double gbps = (double)passes * (double)(n / 8 * 8) * sizeof(vf) / (now() - t0) / 1e9;
    if (gbps > best) best = gbps;
  }
  float sum = 0;
  for (int j = 0; j < 8; j++)
    for (int l = 0; l < LANES; l++) sum += s[j][l];
  printf("{\"gbps\":%.2f,\"bytes\":%ld,\"check\":%g}\n", best, n * (long)sizeof(vf), (double)sum);
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--read")) return read_bandwidth(atol(argv[2]));
  double seconds = argc == 3 && !strcmp(argv[1], "--seconds") ? atof(argv[2]) : 0.5;
  vf acc[CHAINS], a, b, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11;
  /* distinct run-time starting values: the chains cannot be merged */
  for (int l = 0; l < LANES; l++) a[l] = 1.0f - (float)argc * 1e-9f, b[l] = 1e-7f;
  for (int i = 0; i < CHAINS; i++)
    for (int l = 0; l < LANES; l++) acc[i][l] = (float)(argc + i + l) * 1e-3f;
  c0 = acc[0], c1 = acc[1], c2 = acc[2], c3 = acc[3], c4 = acc[4], c5 = acc[5];
  c6 = acc[6], c7 = acc[7], c8 = acc[8], c9 = acc[9], c10 = acc[10], c11 = acc[11];
  double best = 0;
  long steps = 1 << 18;
  for (int round = 0; round < 20; round++) {
    double t0 = now();
    /* named chains, not an array: registers, not memory */
    for (long k = 0; k < steps; k++) {
      c0 = c0 * a + b, c1 = c1 * a + b, c2 = c2 * a + b, c3 = c3 * a + b, c4 = c4 * a + b, c5 = c5 * a + b;
      c6 = c6 * a + b, c7 = c7 * a + b, c8 = c8 * a + b, c9 = c9 * a + b, c10 = c10 * a + b, c11 = c11 * a + b;
    }
    double t = now() - t0, gflops = (double)steps * CHAINS * LANES * 2 / t / 1e9;
    if (gflops > best) best = gflops;
    if (round == 0 && t * 20 > seconds) steps = (long)((double)steps * seconds / (t * 20)) + 1;
  }
  acc[0] = c0, acc[1] = c1, acc[2] = c2, acc[3] = c3, acc[4] = c4, acc[5] = c5;
  acc[6] = c6, acc[7] = c7, acc[8] = c8, acc[9] = c9, acc[10] = c10, acc[11] = c11;
  float sum = 0; /* keeps the chains live */
  for (int i = 0; i < CHAINS; i++)
    for (int l = 0; l < LANES; l++) sum += acc[i][l];
  printf("{\"gflops\":%.2f,\"check\":%g}\n", best, (double)sum);
  return 0;
}
