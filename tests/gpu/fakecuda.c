/* fakecuda.c — a stand-in for libcuda.so.1 on machines without a GPU, so
 * the tests can drive libkilnrt's CUDA path (runtime/cuda.c) here.
 *
 * Device memory is host memory; copies copy.  A kernel runs when the
 * binary exports its CPU emulation kiln_emu_<kernel>(void **params) (built
 * with KILN_GPU_EMULATE=1 and linked with -rdynamic, i.e.
 * KILN_LDFLAGS=-rdynamic): the launch calls it with the launch's own
 * parameter array, so the binary computes "on the GPU" with the device
 * memory, copies and launch tables of the real path.  Otherwise kernels do
 * not run (their results are garbage).  Every launch is checked against the
 * PTX the binary loaded: the kernel exists as an `.entry`, it has as many
 * parameters as the launch passes (its .u64 parameters but the last are
 * pointers into blocks from cuMemAlloc, .u32 ones a random kernel's counter;
 * the last is the thread count n > 0, covered by grid * block).  A violation makes the call fail with CUDA_ERROR_INVALID_VALUE
 * and a line on stderr.  At exit it prints "fakecuda: L launches, C copies"
 * ("L launches (E executed), C copies") when FAKECUDA_LOG is set.  Faults on request:
 *   FAKECUDA_DEVICES=N   the number of GPUs (default 1)
 *   FAKECUDA_OOM=1       cuMemAlloc fails with CUDA_ERROR_OUT_OF_MEMORY
 *   FAKECUDA_FAIL=NAME   launching kernel NAME fails (CUDA_ERROR_LAUNCH_FAILED)
 * Built by the tests: cc -shared -fPIC fakecuda.c -o DIR/libcuda.so.1,
 * and found through KILN_LIBCUDA. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
enum { OK = 0, INVALID_VALUE = 1, OUT_OF_MEMORY = 2, NOT_FOUND = 500, LAUNCH_FAILED = 719 };

typedef struct block {
  char *p;
  size_t n;
} block;
static block blocks[4096];
static int n_blocks;
static const char *ptx_text;
static long launches, executed, copies;

static void report(void) {
  if (getenv("FAKECUDA_LOG")) fprintf(stderr, "fakecuda: %ld launches (%ld executed), %ld copies\n", launches, executed, copies);
}

CUresult cuInit(unsigned f) {
  (void)f;
  atexit(report);
  return OK;
}
CUresult cuDeviceGetCount(int *n) {
  const char *e = getenv("FAKECUDA_DEVICES");
  *n = e ? atoi(e) : 1;
  return OK;
}
CUresult cuDeviceGet(int *d, int i) {
  *d = i;
  return OK;
}
CUresult cuDeviceGetName(char *name, int len, int d) {
  snprintf(name, (size_t)len, "fake GPU %d", d);
  return OK;
}
CUresult cuDevicePrimaryCtxRetain(void **ctx, int d) {
  *ctx = (void *)(intptr_t)(d + 1);
  return OK;
}
CUresult cuDevicePrimaryCtxRelease_v2(int d) {
  (void)d;
  return OK;
}
CUresult cuCtxSetCurrent(void *c) {
  (void)c;
  return OK;
}
CUresult cuModuleLoadDataEx(void **m, const void *image, unsigned n, int *o, void **v) {
  (void)n, (void)o, (void)v;
  ptx_text = image;
  *m = (void *)image;
  return strstr(ptx_text, ".version") ? OK : INVALID_VALUE;
}
typedef struct fn {
  char name[256];
  int params;
  char pointer[64]; /* per parameter: .u64 (a device pointer, but for the last: n) or .u32 (a counter word) */
  void (*emu)(void **params);
} fn;
CUresult cuModuleGetFunction(fn **f, void *m, const char *name) {
  (void)m;
  char pat[300];
  snprintf(pat, sizeof pat, ".entry %s(", name);
  const char *s = strstr(ptx_text, pat);
  if (!s) return NOT_FOUND;
  const char *end = strchr(s, ')');
  *f = calloc(1, sizeof **f);
  int params = 0;
  for (const char *p = strstr(s, ".param"); p && p < end; p = strstr(p + 1, ".param")) {
    if (params < 64) (*f)->pointer[params] = !strncmp(p, ".param .u64", 11);
    params++;
  }
  snprintf((*f)->name, sizeof (*f)->name, "%s", name);
  (*f)->params = params;
  char sym[300];
  snprintf(sym, sizeof sym, "kiln_emu_%s", name);
  void *e = dlsym(RTLD_DEFAULT, sym);
  memcpy(&(*f)->emu, &e, sizeof e);
  return OK;
}
CUresult cuModuleUnload(void *m) {
  (void)m;
  return OK;
}
static int in_block(uint64_t p) {
  for (int i = 0; i < n_blocks; i++)
    if (p >= (uint64_t)(uintptr_t)blocks[i].p && p < (uint64_t)(uintptr_t)blocks[i].p + blocks[i].n) return 1;
  return 0;
}
CUresult cuLaunchKernel(fn *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shm, void *stream, void **params, void **extra) {
  (void)gy, (void)gz, (void)by, (void)bz, (void)shm, (void)stream, (void)extra;
  launches++;
  const char *failing = getenv("FAKECUDA_FAIL");
  if (failing && !strcmp(failing, f->name)) return LAUNCH_FAILED;
  for (int i = 0; i < f->params - 1 && i < 64; i++)
    if (f->pointer[i] && !in_block(*(uint64_t *)params[i])) {
      fprintf(stderr, "fakecuda: %s: parameter %d is not device memory\n", f->name, i);
      return INVALID_VALUE;
    }
  int64_t n = *(int64_t *)params[f->params - 1];
  if (n <= 0 || (uint64_t)gx * bx < (uint64_t)n) {
    fprintf(stderr, "fakecuda: %s: n = %lld with %u x %u threads\n", f->name, (long long)n, gx, bx);
    return INVALID_VALUE;
  }
  if (f->emu) {
    f->emu(params);
    executed++;
  }
  return OK;
}
CUresult cuMemAlloc_v2(uint64_t *p, size_t n) {
  if (getenv("FAKECUDA_OOM") || n_blocks == 4096) return OUT_OF_MEMORY;
  char *m = calloc(1, n);
  if (!m) return OUT_OF_MEMORY;
  blocks[n_blocks++] = (block){m, n};
  *p = (uint64_t)(uintptr_t)m;
  return OK;
}
CUresult cuMemFree_v2(uint64_t p) {
  for (int i = 0; i < n_blocks; i++)
    if ((uint64_t)(uintptr_t)blocks[i].p == p) {
      free(blocks[i].p);
      blocks[i] = blocks[--n_blocks];
      return OK;
    }
  return INVALID_VALUE;
}
CUresult cuMemGetInfo_v2(size_t *fr, size_t *tot) {
  *fr = 1 << 20, *tot = 1 << 30;
  return OK;
}
static CUresult copy(uint64_t dst, uint64_t src, size_t n, int dev_dst, int dev_src) {
  copies++;
  if ((dev_dst && !in_block(dst)) || (dev_src && !in_block(src)) || (n && ((dev_dst && !in_block(dst + n - 1)) ||
                                                                            (dev_src && !in_block(src + n - 1))))) {
    fprintf(stderr, "fakecuda: copy of %zu bytes outside device memory\n", n);
    return INVALID_VALUE;
  }
  memcpy((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
  return OK;
}
CUresult cuMemcpyHtoDAsync_v2(uint64_t d, const void *s, size_t n, void *st) {
  (void)st;
  return copy(d, (uint64_t)(uintptr_t)s, n, 1, 0);
}
CUresult cuMemcpyDtoHAsync_v2(void *d, uint64_t s, size_t n, void *st) {
  (void)st;
  return copy((uint64_t)(uintptr_t)d, s, n, 0, 1);
}
CUresult cuMemcpyDtoDAsync_v2(uint64_t d, uint64_t s, size_t n, void *st) {
  (void)st;
  return copy(d, s, n, 1, 1);
}
CUresult cuMemcpyPeerAsync(uint64_t d, void *dc, uint64_t s, void *sc, size_t n, void *st) {
  (void)dc, (void)sc, (void)st;
  return copy(d, s, n, 1, 1);
}
CUresult cuStreamCreate(void **s, unsigned f) {
  (void)f;
  *s = malloc(1);
  return OK;
}
CUresult cuStreamSynchronize(void *s) {
  (void)s;
  return OK;
}
CUresult cuStreamDestroy_v2(void *s) {
  free(s);
  return OK;
}
CUresult cuGetErrorName(CUresult r, const char **s) {
  *s = r == OUT_OF_MEMORY ? "CUDA_ERROR_OUT_OF_MEMORY" : r == LAUNCH_FAILED ? "CUDA_ERROR_LAUNCH_FAILED"
     : r == NOT_FOUND ? "CUDA_ERROR_NOT_FOUND" : "CUDA_ERROR_INVALID_VALUE";
  return OK;
}
CUresult cuGetErrorString(CUresult r, const char **s) {
  *s = r == OUT_OF_MEMORY ? "out of memory" : r == LAUNCH_FAILED ? "unspecified launch failure" : "invalid argument";
  return OK;
}
