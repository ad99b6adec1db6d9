/* cuda.c — the CUDA runtime path of libkilnrt (docs/gpu.md).
 *
 * The driver API is loaded with dlopen("libcuda.so.1"), so a binary needs
 * no CUDA library to start: the entry points and their types are the list
 * in gpu_api.h (checked against cuda.h by the tests; cuda.h is not needed).  Per GPU the
 * instance holds the primary context, the module loaded from the PTX that
 * the compiler embedded, one stream, a device copy of the variable block
 * and, per instance view (spawned threads have their own arenas), a device
 * copy of the arena.  A buffer's device address is its host offset in the
 * device's copy, so the memory plan of the compiler serves both sides.
 *
 * Kernels and host-to-device copies are queued on the device's stream;
 * device-to-host copies wait for it.  Failing to find a driver or enough
 * GPUs falls back to the CPU code when the module was built with soft
 * placement (said once), and is an error otherwise; KILN_GPU=0 asks for
 * the CPU code.  KILN_GPU_SYNC=1 waits after every launch, so a failing
 * kernel is named exactly. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gpu_api.h"
#include "rt_internal.h"

#define API_FIELD(field, symbol, params) CUresult(*field) params;
typedef struct cuda_api {
  KILN_CUDA_DRIVER_API(API_FIELD)
} cuda_api;
#undef API_FIELD

typedef struct view_arena {
  const uint8_t *host; /* the view's host arena: the key */
  CUdeviceptr *dev;    /* per device */
} view_arena;

typedef struct kiln_gpu {
  int active;
  int n_dev;
  int *used;          /* per device: something runs there */
  CUdevice *device;
  CUcontext *ctx;
  CUmodule *module;
  CUstream *stream;
  CUdeviceptr *vars;  /* per device: its copy of the variable block */
  CUfunction *fn;     /* per kernel, resolved at start */
  pthread_mutex_t lock;
  view_arena *arenas;
  int n_arenas, cap_arenas;
  int sync_each;      /* KILN_GPU_SYNC */
  const char *last_node; /* the last kernel queued, for messages about asynchronous failures */
  int vars_dirty;     /* device work ran since the host copy of the variables was last brought up to date */
  int use_blas;       /* cuBLAS loaded: matmuls with a kiln_gpu_gemm use it */
  void **blas;        /* per device: its cuBLAS handle (created on first use) */
  int *blas_failed;   /* per device: creating the handle failed; the tiled kernel runs */
} kiln_gpu;

/* runtime/cublas.c */
int kiln_cublas_load(const char **which);
int kiln_cublas_create(void *stream, void **handle);
void kiln_cublas_destroy(void *handle);
int kiln_cublas_gemm(void *handle, const kiln_gpu_gemm *gm, uint64_t a, uint64_t b, uint64_t c);

static cuda_api cu;
static void *cu_lib;
static int cu_loaded; /* 0: not tried, 1: loaded, -1: failed */
static char cu_why[512];
static pthread_mutex_t cu_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *err_text(CUresult r, char *buf, size_t n) {
  const char *name = NULL, *msg = NULL;
  if (cu.GetErrorName) cu.GetErrorName(r, &name);
  if (cu.GetErrorString) cu.GetErrorString(r, &msg);
  snprintf(buf, n, "%s (%d)%s%s", name ? name : "CUDA error", r, msg ? ": " : "", msg ? msg : "");
  return buf;
}

const char *kiln_dl_bind(void *lib, const kiln_dl_sym *syms, size_t n, void *table) {
  for (size_t i = 0; i < n; i++) {
    void *p = dlsym(lib, syms[i].name);
    if (!p) return syms[i].name;
    memcpy((char *)table + syms[i].offset, &p, sizeof p);
  }
  return NULL;
}

/* Loads libcuda.so.1 and every entry point, once per process. */
static int load_driver(void) {
  pthread_mutex_lock(&cu_lock);
  if (cu_loaded) {
    pthread_mutex_unlock(&cu_lock);
    return cu_loaded;
  }
  const char *lib = getenv("KILN_LIBCUDA");
  cu_lib = dlopen(lib && *lib ? lib : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!cu_lib) {
    const char *e = dlerror();
    snprintf(cu_why, sizeof cu_why, "there is no CUDA driver (%s)", e ? e : "libcuda.so.1 not found");
    cu_loaded = -1;
    pthread_mutex_unlock(&cu_lock);
    return cu_loaded;
  }
#define SYM(field, symbol, params) KILN_DL_SYM(cuda_api, field, symbol),
  static const kiln_dl_sym syms[] = {KILN_CUDA_DRIVER_API(SYM)};
#undef SYM
  const char *missing = kiln_dl_bind(cu_lib, syms, sizeof syms / sizeof *syms, &cu);
  cu_loaded = missing ? -1 : 1;
  if (missing) snprintf(cu_why, sizeof cu_why, "the CUDA driver lacks %s (too old?)", missing);
  if (cu_loaded == 1) {
    CUresult r = cu.Init(0);
    if (r) {
      char b[256];
      snprintf(cu_why, sizeof cu_why, "the CUDA driver did not start: %s", err_text(r, b, sizeof b));
      cu_loaded = -1;
    }
  }
  pthread_mutex_unlock(&cu_lock);
  return cu_loaded;
}

static kiln_gpu *gpu_of(kiln_inst *inst) {
  return inst && inst->services ? inst->services->gpu : NULL;
}

int32_t kiln_rt_gpu_active(kiln_inst *inst) {
  kiln_gpu *g = gpu_of(inst);
  return g && g->active;
}

static const char *mod_name(kiln_inst *inst) { return inst->desc && inst->desc->name ? inst->desc->name : "?"; }

/* The device side of an arg: the device's copy of the arena of this view
 * (allocated on first use) or of the variable block. */
static int dev_ptr(kiln_inst *inst, kiln_gpu *g, int dev, const kiln_gpu_arg *a, const char *node, CUdeviceptr *out) {
  if (a->space == KILN_GPU_VARS) {
    *out = g->vars[dev] + (CUdeviceptr)a->offset;
    return KILN_OK;
  }
  pthread_mutex_lock(&g->lock);
  view_arena *va = NULL;
  for (int i = 0; i < g->n_arenas && !va; i++)
    if (g->arenas[i].host == inst->arena) va = &g->arenas[i];
  if (!va) {
    if (g->n_arenas == g->cap_arenas) {
      int cap = g->cap_arenas ? 2 * g->cap_arenas : 4;
      view_arena *n = realloc(g->arenas, sizeof *n * (size_t)cap);
      if (!n) {
        pthread_mutex_unlock(&g->lock);
        return kiln_fail(inst, KILN_ERROR, "out of memory");
      }
      g->arenas = n;
      g->cap_arenas = cap;
    }
    va = &g->arenas[g->n_arenas];
    va->host = inst->arena;
    va->dev = calloc((size_t)g->n_dev, sizeof(CUdeviceptr));
    if (!va->dev) {
      pthread_mutex_unlock(&g->lock);
      return kiln_fail(inst, KILN_ERROR, "out of memory");
    }
    g->n_arenas++;
  }
  if (!va->dev[dev]) {
    int64_t size = inst->desc->arena_size > 0 ? inst->desc->arena_size : 1;
    cu.CtxSetCurrent(g->ctx[dev]);
    CUresult r = cu.MemAlloc(&va->dev[dev], (size_t)size);
    if (r) {
      va->dev[dev] = 0;
      pthread_mutex_unlock(&g->lock);
      char b[256];
      return kiln_fail(inst, KILN_ERROR, "out of memory on gpu:%d: %lld bytes for the arena of module '%s' (node '%s'): %s",
                       dev, (long long)size, mod_name(inst), node, err_text(r, b, sizeof b));
    }
  }
  *out = va->dev[dev] + (CUdeviceptr)a->offset;
  pthread_mutex_unlock(&g->lock);
  return KILN_OK;
}

static int sync_dev(kiln_inst *inst, kiln_gpu *g, int dev, const char *what) {
  cu.CtxSetCurrent(g->ctx[dev]);
  CUresult r = cu.StreamSynchronize(g->stream[dev]);
  if (!r) return KILN_OK;
  char b[256];
  return kiln_fail(inst, KILN_ERROR, "gpu:%d failed (%s; the last kernel queued was node '%s'): %s", dev, what,
                   g->last_node ? g->last_node : "-", err_text(r, b, sizeof b));
}

int kiln_rt_gpu_launch(kiln_inst *inst, int32_t k) {
  kiln_gpu *g = gpu_of(inst);
  const kiln_gpu_desc *gd = inst->desc->gpu;
  if (!g || !g->active || k < 0 || k >= gd->n_kernels)
    return kiln_fail(inst, KILN_ERROR, "internal: GPU launch %d without an active GPU", (int)k);
  const kiln_gpu_kernel *kd = &gd->kernels[k];
  int dev = kd->device, np = 0;
  CUdeviceptr ptrs[64];
  uint32_t words[2];
  uint64_t *counter = NULL, advance = 0;
  void *params[66];
  if (kd->n_args > 64) return kiln_fail(inst, KILN_ERROR, "node '%s': too many kernel arguments", kd->node);
  for (int i = 0; i < kd->n_args; i++) {
    const kiln_gpu_arg *a = &kd->args[i];
    if (a->space == KILN_GPU_COUNTER) { /* by value, advanced below */
      counter = &inst->random_counters[a->slot];
      advance = (uint64_t)a->offset;
      words[0] = (uint32_t)*counter, words[1] = (uint32_t)(*counter >> 32);
      params[np++] = &words[0];
      params[np++] = &words[1];
      continue;
    }
    int st = dev_ptr(inst, g, dev, a, kd->node, &ptrs[i]);
    if (st) return st;
    params[np++] = &ptrs[i];
  }
  int64_t n = kd->n;
  params[np] = &n;
  if (n <= 0) return KILN_OK;
  if (counter) *counter += advance; /* cuLaunchKernel copies the parameters: the next launch draws on */
  cu.CtxSetCurrent(g->ctx[dev]);
  __atomic_store_n(&g->vars_dirty, 1, __ATOMIC_RELAXED);
  if (kd->gemm && kd->n_args == 3 && g->use_blas && !g->blas_failed[dev]) {
    if (!g->blas[dev] && kiln_cublas_create(g->stream[dev], &g->blas[dev])) g->blas_failed[dev] = 1;
    if (g->blas[dev]) {
      int bs = kiln_cublas_gemm(g->blas[dev], kd->gemm, ptrs[0], ptrs[1], ptrs[2]);
      if (bs) return kiln_fail(inst, KILN_ERROR, "cuBLAS GEMM of node '%s' on gpu:%d failed (cublasStatus %d)",
                               kd->node, dev, bs);
      g->last_node = kd->node;
      return g->sync_each ? sync_dev(inst, g, dev, kd->node) : KILN_OK;
    }
  }
  CUresult r = cu.LaunchKernel(g->fn[k], (unsigned)kd->grid, 1, 1, (unsigned)kd->block, 1, 1, 0, g->stream[dev], params,
                               NULL);
  char b[256];
  if (r)
    return kiln_fail(inst, KILN_ERROR, "the GPU kernel of node '%s' on gpu:%d failed to launch: %s", kd->node, dev,
                     err_text(r, b, sizeof b));
  g->last_node = kd->node;
  if (g->sync_each && (r = cu.StreamSynchronize(g->stream[dev])))
    return kiln_fail(inst, KILN_ERROR, "the GPU kernel of node '%s' on gpu:%d failed: %s", kd->node, dev,
                     err_text(r, b, sizeof b));
  return KILN_OK;
}

int kiln_rt_gpu_copy(kiln_inst *inst, int32_t c, const void *host_src, void *host_dst) {
  kiln_gpu *g = gpu_of(inst);
  const kiln_gpu_desc *gd = inst->desc->gpu;
  if (!g || !g->active || c < 0 || c >= gd->n_copies)
    return kiln_fail(inst, KILN_ERROR, "internal: GPU copy %d without an active GPU", (int)c);
  const kiln_gpu_copy *cd = &gd->copies[c];
  int s = cd->src_device, d = cd->dst_device;
  CUdeviceptr sp = 0, dp = 0;
  int st;
  if (s >= 0 && (st = dev_ptr(inst, g, s, &cd->src, cd->node, &sp))) return st;
  if (d >= 0 && (st = dev_ptr(inst, g, d, &cd->dst, cd->node, &dp))) return st;
  size_t n = (size_t)cd->nbytes;
  if (!n) return KILN_OK;
  CUresult r = 0;
  char b[256];
  if (s < 0 && d < 0) {
    memcpy(host_dst, host_src, n);
    return KILN_OK;
  }
  if (d >= 0 && cd->dst.space == KILN_GPU_VARS) __atomic_store_n(&g->vars_dirty, 1, __ATOMIC_RELAXED);
  if (s < 0) { /* host to device, queued behind the device's earlier work */
    cu.CtxSetCurrent(g->ctx[d]);
    r = cu.MemcpyHtoDAsync(dp, host_src, n, g->stream[d]);
  } else if (d < 0) { /* device to host: waits for the producer */
    cu.CtxSetCurrent(g->ctx[s]);
    r = cu.MemcpyDtoHAsync(host_dst, sp, n, g->stream[s]);
    if (!r) r = cu.StreamSynchronize(g->stream[s]);
  } else if (s == d) {
    cu.CtxSetCurrent(g->ctx[d]);
    r = cu.MemcpyDtoDAsync(dp, sp, n, g->stream[d]);
  } else { /* between GPUs: neither side's later work may overtake it */
    if ((st = sync_dev(inst, g, d, cd->node))) return st;
    cu.CtxSetCurrent(g->ctx[s]);
    r = cu.MemcpyPeerAsync(dp, g->ctx[d], sp, g->ctx[s], n, g->stream[s]);
    if (!r) r = cu.StreamSynchronize(g->stream[s]);
  }
  if (r)
    return kiln_fail(inst, KILN_ERROR, "copy '%s' (%lld bytes, %s%d to %s%d) failed: %s", cd->node, (long long)cd->nbytes,
                     s < 0 ? "host" : "gpu:", s < 0 ? 0 : s, d < 0 ? "host" : "gpu:", d < 0 ? 0 : d,
                     err_text(r, b, sizeof b));
  return KILN_OK;
}

int kiln_rt_gpu_sync(kiln_inst *inst) {
  kiln_gpu *g = gpu_of(inst);
  if (!g || !g->active) return KILN_OK;
  for (int dev = 0; dev < g->n_dev; dev++)
    if (g->used[dev]) {
      int st = sync_dev(inst, g, dev, "while running the entry");
      if (st) return st;
    }
  return KILN_OK;
}

static int move_vars(kiln_inst *inst, int to_host) {
  kiln_gpu *g = gpu_of(inst);
  if (!g || !g->active) return KILN_OK;
  const kiln_gpu_desc *gd = inst->desc->gpu;
  for (int i = 0; i < gd->n_vars; i++) {
    const kiln_gpu_var *v = &gd->vars[i];
    int dev = v->device;
    if (!v->nbytes) continue;
    cu.CtxSetCurrent(g->ctx[dev]);
    CUdeviceptr p = g->vars[dev] + (CUdeviceptr)v->offset;
    CUresult r = to_host ? cu.MemcpyDtoHAsync(inst->vars + v->offset, p, (size_t)v->nbytes, g->stream[dev])
                         : cu.MemcpyHtoDAsync(p, inst->vars + v->offset, (size_t)v->nbytes, g->stream[dev]);
    if (!r) r = cu.StreamSynchronize(g->stream[dev]);
    char b[256];
    if (r)
      return kiln_fail(inst, KILN_ERROR, "copying variable '%s' %s gpu:%d failed: %s", v->name,
                       to_host ? "from" : "to", dev, err_text(r, b, sizeof b));
  }
  return KILN_OK;
}


int kiln_gpu_sync_vars(kiln_inst *inst, int to_host) {
  kiln_gpu *g = gpu_of(inst);
  if (!g || !g->active || !inst->desc->gpu || !inst->desc->gpu->n_vars) return KILN_OK;
  if (to_host && !__atomic_exchange_n(&g->vars_dirty, 0, __ATOMIC_ACQ_REL)) return KILN_OK;
  int st = move_vars(inst, to_host);
  if (st && to_host) __atomic_store_n(&g->vars_dirty, 1, __ATOMIC_RELAXED);
  return st;
}

int kiln_rt_gpu_vars_to_host(kiln_inst *inst) { return kiln_gpu_sync_vars(inst, 1); }
int kiln_rt_gpu_vars_to_device(kiln_inst *inst) { return kiln_gpu_sync_vars(inst, 0); }

/* ---- start and stop ---- */

static void free_gpu(kiln_gpu *g) {
  if (!g) return;
  if (cu_loaded == 1) {
    for (int i = 0; i < g->n_arenas; i++)
      for (int dev = 0; dev < g->n_dev; dev++)
        if (g->arenas[i].dev[dev]) {
          cu.CtxSetCurrent(g->ctx[dev]);
          cu.MemFree(g->arenas[i].dev[dev]);
        }
    for (int dev = 0; dev < g->n_dev; dev++) {
      if (!g->ctx || !g->ctx[dev]) continue;
      cu.CtxSetCurrent(g->ctx[dev]);
      if (g->stream[dev]) cu.StreamSynchronize(g->stream[dev]);
      if (g->blas && g->blas[dev]) kiln_cublas_destroy(g->blas[dev]);
      if (g->vars[dev]) cu.MemFree(g->vars[dev]);
      if (g->module[dev]) cu.ModuleUnload(g->module[dev]);
      if (g->stream[dev]) cu.StreamDestroy(g->stream[dev]);
      cu.DevicePrimaryCtxRelease(g->device[dev]);
    }
  }
  for (int i = 0; i < g->n_arenas; i++) free(g->arenas[i].dev);
  free(g->arenas);
  free(g->used);
  free(g->device);
  free(g->ctx);
  free(g->module);
  free(g->stream);
  free(g->vars);
  free(g->fn);
  free(g->blas);
  free(g->blas_failed);
  pthread_mutex_destroy(&g->lock);
  free(g);
}

void kiln_gpu_stop(kiln_inst *inst) {
  if (!inst || !inst->services) return;
  free_gpu(inst->services->gpu);
  inst->services->gpu = NULL;
}

/* No usable GPU: the CPU code, or a failure naming the reason. */
static int no_gpu(kiln_inst *inst, kiln_gpu *g, const char *why, int forced) {
  const kiln_gpu_desc *gd = inst->desc->gpu;
  g->active = 0;
  if (gd->soft_placement || forced) {
    static int said;
    if (!__atomic_exchange_n(&said, 1, __ATOMIC_ACQ_REL))
      fprintf(stderr, "kiln: %s: %s; running the GPU-placed nodes on the CPU%s\n", mod_name(inst), why,
              forced ? "" : " (built with --soft-placement)");
    return KILN_OK;
  }
  return kiln_fail(inst, KILN_ERROR,
                   "module '%s' places nodes on a GPU, but %s; build it with --soft-placement to run them on the "
                   "CPU instead (or set KILN_GPU=0)",
                   mod_name(inst), why);
}

static int start_device(kiln_inst *inst, kiln_gpu *g, int dev) {
  const kiln_gpu_desc *gd = inst->desc->gpu;
  char b[256];
  CUresult r = cu.DeviceGet(&g->device[dev], dev);
  if (!r) r = cu.DevicePrimaryCtxRetain(&g->ctx[dev], g->device[dev]);
  if (r) {
    g->ctx[dev] = NULL;
    return kiln_fail(inst, KILN_ERROR, "gpu:%d: cannot open a context: %s", dev, err_text(r, b, sizeof b));
  }
  cu.CtxSetCurrent(g->ctx[dev]);
  static char log[8192];
  log[0] = 0;
  int opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *vals[] = {log, (void *)(uintptr_t)sizeof log};
  r = cu.ModuleLoadDataEx(&g->module[dev], gd->ptx, 2, opts, vals);
  if (r)
    return kiln_fail(inst, KILN_ERROR, "gpu:%d cannot load the kernels of module '%s' (PTX for %s): %s%s%s", dev,
                     mod_name(inst), gd->arch ? gd->arch : "?", err_text(r, b, sizeof b), log[0] ? "\n" : "", log);
  if ((r = cu.StreamCreate(&g->stream[dev], 0)))
    return kiln_fail(inst, KILN_ERROR, "gpu:%d: cannot create a stream: %s", dev, err_text(r, b, sizeof b));
  int64_t vsize = inst->desc->vars_size > 0 ? inst->desc->vars_size : 1;
  if ((r = cu.MemAlloc(&g->vars[dev], (size_t)vsize))) {
    size_t fr = 0, tot = 0;
    cu.MemGetInfo(&fr, &tot);
    g->vars[dev] = 0;
    return kiln_fail(inst, KILN_ERROR,
                     "out of memory on gpu:%d: %lld bytes for the variables of module '%s' (%zu of %zu bytes free): %s",
                     dev, (long long)vsize, mod_name(inst), fr, tot, err_text(r, b, sizeof b));
  }
  return KILN_OK;
}

int kiln_gpu_start(kiln_inst *inst) {
  const kiln_gpu_desc *gd = inst->desc->gpu;
  if (!gd) return KILN_OK;
  struct kiln_services *sv = kiln_services(inst);
  if (!sv) return kiln_fail(inst, KILN_ERROR, "out of memory");
  kiln_gpu *g = calloc(1, sizeof *g);
  if (!g) return kiln_fail(inst, KILN_ERROR, "out of memory");
  pthread_mutex_init(&g->lock, NULL);
  sv->gpu = g;
  int n = gd->n_devices > 0 ? gd->n_devices : 1;
  g->n_dev = n;
  g->used = calloc((size_t)n, sizeof *g->used);
  g->device = calloc((size_t)n, sizeof *g->device);
  g->ctx = calloc((size_t)n, sizeof *g->ctx);
  g->module = calloc((size_t)n, sizeof *g->module);
  g->stream = calloc((size_t)n, sizeof *g->stream);
  g->vars = calloc((size_t)n, sizeof *g->vars);
  g->fn = calloc((size_t)(gd->n_kernels > 0 ? gd->n_kernels : 1), sizeof *g->fn);
  g->blas = calloc((size_t)n, sizeof *g->blas);
  g->blas_failed = calloc((size_t)n, sizeof *g->blas_failed);
  if (!g->used || !g->device || !g->ctx || !g->module || !g->stream || !g->vars || !g->fn || !g->blas ||
      !g->blas_failed)
    return kiln_fail(inst, KILN_ERROR, "out of memory");
  const char *env = getenv("KILN_GPU_SYNC");
  g->sync_each = env && *env && strcmp(env, "0");
  /* which devices the module uses; a malformed descriptor is a compiler bug */
  for (int i = 0; i < gd->n_kernels; i++) {
    if (gd->kernels[i].device < 0 || gd->kernels[i].device >= n)
      return kiln_fail(inst, KILN_ERROR, "module '%s': malformed GPU descriptor", mod_name(inst));
    g->used[gd->kernels[i].device] = 1;
  }
  for (int i = 0; i < gd->n_copies; i++) {
    int s = gd->copies[i].src_device, d = gd->copies[i].dst_device;
    if (s >= n || d >= n) return kiln_fail(inst, KILN_ERROR, "module '%s': malformed GPU descriptor", mod_name(inst));
    if (s >= 0) g->used[s] = 1;
    if (d >= 0) g->used[d] = 1;
  }
  for (int i = 0; i < gd->n_vars; i++) {
    if (gd->vars[i].device < 0 || gd->vars[i].device >= n)
      return kiln_fail(inst, KILN_ERROR, "module '%s': malformed GPU descriptor", mod_name(inst));
    g->used[gd->vars[i].device] = 1;
  }
  env = getenv("KILN_GPU");
  if (env && (!strcmp(env, "0") || !strcmp(env, "off") || !strcmp(env, "cpu")))
    return no_gpu(inst, g, "KILN_GPU asks for the CPU", 1);
  if (load_driver() < 0) return no_gpu(inst, g, cu_why, 0);
  int count = 0;
  CUresult r = cu.DeviceGetCount(&count);
  char why[512], b[256];
  if (r) {
    snprintf(why, sizeof why, "the CUDA driver cannot count the GPUs: %s", err_text(r, b, sizeof b));
    return no_gpu(inst, g, why, 0);
  }
  for (int dev = n - 1; dev >= 0; dev--)
    if (g->used[dev] && dev >= count) {
      snprintf(why, sizeof why, "gpu:%d is not available (this machine has %d GPU%s)", dev, count,
               count == 1 ? "" : "s");
      return no_gpu(inst, g, why, 0);
    }
  for (int dev = 0; dev < n; dev++) {
    if (!g->used[dev]) continue;
    int st = start_device(inst, g, dev);
    if (st) return st;
  }
  for (int i = 0; i < gd->n_kernels; i++) {
    const kiln_gpu_kernel *k = &gd->kernels[i];
    cu.CtxSetCurrent(g->ctx[k->device]);
    if ((r = cu.ModuleGetFunction(&g->fn[i], g->module[k->device], k->symbol)))
      return kiln_fail(inst, KILN_ERROR, "gpu:%d: the kernel of node '%s' (%s) is not in the PTX: %s", k->device,
                       k->node, k->symbol, err_text(r, b, sizeof b));
  }
  int gemms = 0;
  for (int i = 0; i < gd->n_kernels; i++) gemms += gd->kernels[i].gemm != NULL;
  const char *blas = NULL;
  g->use_blas = gemms && kiln_cublas_load(&blas);
  env = getenv("KILN_GPU_LOG");
  if (gemms && env && *env && strcmp(env, "0"))
    fprintf(stderr, "kiln: %s: GEMM through %s%s\n", mod_name(inst), g->use_blas ? "cuBLAS, " : "kiln's tiled kernel",
            g->use_blas ? blas : "");
  g->active = 1;
  return kiln_rt_gpu_vars_to_device(inst);
}
