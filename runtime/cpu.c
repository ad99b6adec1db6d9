/* cpu.c — which of kiln's kernel variants this machine runs (`kiln build
 * --cpu-dispatch`, docs/cli.md).  A binary for the fixed baseline CPU
 * (x86-64-v2) also carries its GEMM and convolution kernels built for
 * x86-64-v3 (AVX2, FMA) and x86-64-v4 (AVX-512); each call picks the best
 * the CPU and the operating system support, by kiln_cpu_level, set once
 * before main.  Valgrind hides AVX-512 from CPUID, so a binary under it
 * takes a variant it can run.  KILN_CPU_LEVEL=N (0, 3 or 4) lowers the
 * level, never raises it: for tests of every variant on one machine, and
 * for bit-reproducible runs across machines (KILN_CPU_LEVEL=0). */
#include <stdint.h>
#include <stdlib.h>
#include "kilnrt.h"

int32_t kiln_cpu_level;

static int32_t detected(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  /* libgcc also checks that the OS saves the wider registers (XGETBV) */
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
    return 4;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
      __builtin_cpu_supports("bmi2"))
    return 3;
#endif
  return 0;
}

__attribute__((constructor)) static void init_cpu_level(void) {
  int32_t level = detected();
  const char *env = getenv("KILN_CPU_LEVEL");
  if (env && *env) {
    char *end;
    long want = strtol(env, &end, 10);
    if (!*end && want >= 0 && want < level) level = (int32_t)want;
  }
  kiln_cpu_level = level;
}

int32_t kiln_rt_cpu_level(void) { return kiln_cpu_level; }
