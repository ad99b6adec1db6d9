/* nvptx.c — GPU kernels through LLVM's NVPTX back end.
 *
 * Each GPU-placed node with a kernel (lower/gpu_kernels.c says which)
 * becomes one kernel
 *     <module>_<node>(ptr operand..., ptr result..., i64 n)
 * in which thread i < n does unit i of the node's work; elementwise work
 * goes through the same loop-nest emitter (kl_emit_map) that the CPU uses,
 * in its one-element form.  Kernels carry the PTX kernel calling convention
 * (LLVM 22 ignores nvvm.annotations); transcendental math is linked from
 * libdevice, and everything but the kernels is internalized so the
 * optimizer drops what is unused.  Host binaries embed the same PTX
 * (lower/gpu_host.c). */
#include "lower/nvptx.h"
#include "ir/expr.h"
#include "lower/lower.h"
#include "lower/symbols.h"
#include <llvm-c/BitReader.h>
#include <llvm-c/Linker.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PTX_KERNEL_CC 71

const char *kc_libdevice_path(void) {
  const char *env = getenv("KILN_LIBDEVICE");
  return env && *env ? env : "/usr/local/cuda/nvvm/libdevice/libdevice.10.bc";
}

const char *kc_gpu_kernel_symbol(kg_module *m, int v) {
  return kc_sprintf(m->arena, "%s_%s", kc_symbol_prefix(m), kc_symbol(m->arena, m->nodes[v].name));
}

bool kc_gpu_is_kernel(const kg_module *m, int v) {
  const kg_node *n = &m->nodes[v];
  kc_gpu_kind k = kc_gpu_kind_of(m, v);
  return !n->dead && n->device && !strncmp(n->device, "gpu:", 4) && k != KC_GPU_NONE && k != KC_GPU_NOCODE;
}

static bool emit_kernel(kl_ctx *L, int v) {
  const kg_node *n = &L->m->nodes[v];
  int np = n->n_in + n->n_out, nc = kc_gpu_counter_params(L->m, v);
  if (np > 64) return kc_error(L->diag, n->loc, "'%s' has too many operands for a GPU kernel (%d; at most 64)", n->name, np);
  /* (ptr operand..., ptr result..., [u32 counter low, u32 high,] i64 n) */
  LLVMTypeRef params[67];
  for (int i = 0; i < np; i++) params[i] = L->t_ptr;
  for (int i = 0; i < nc; i++) params[np + i] = L->t_i32;
  params[np + nc] = L->t_i64;
  LLVMValueRef fn = LLVMAddFunction(L->M, kc_gpu_kernel_symbol(L->m, v),
                                    LLVMFunctionType(L->t_void, params, (unsigned)(np + nc + 1), 0));
  LLVMSetFunctionCallConv(fn, PTX_KERNEL_CC);
  L->fn = fn;
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(L->C, fn, "entry");
  LLVMPositionBuilderAtEnd(L->B, entry);
  LLVMValueRef args[66];
  for (int k = 0; k < np; k++) args[k] = LLVMGetParam(fn, (unsigned)k);
  if (nc) args[np] = kl_gpu_join_counter(L, LLVMGetParam(fn, (unsigned)np), LLVMGetParam(fn, (unsigned)np + 1));
  bool ok = kl_gpu_emit_kernel(L, v, args, LLVMGetParam(fn, (unsigned)(np + nc)), false);
  LLVMBuildRetVoid(L->B);
  return ok;
}

static bool uses_libdevice(LLVMModuleRef M) {
  for (LLVMValueRef f = LLVMGetFirstFunction(M); f; f = LLVMGetNextFunction(f)) {
    size_t len;
    const char *name = LLVMGetValueName2(f, &len);
    if (LLVMIsDeclaration(f) && len > 5 && !strncmp(name, "__nv_", 5)) return true;
  }
  return false;
}

static bool link_libdevice(LLVMContextRef C, LLVMModuleRef M, kc_diag *d) {
  const char *path = kc_libdevice_path();
  LLVMMemoryBufferRef buf;
  char *err = NULL;
  if (LLVMCreateMemoryBufferWithContentsOfFile(path, &buf, &err)) {
    kc_error(d, (kc_loc){path, 0, 0}, "cannot read libdevice (needed for GPU math): %s; set KILN_LIBDEVICE",
             err ? err : "?");
    LLVMDisposeMessage(err);
    return false;
  }
  LLVMModuleRef lib;
  if (LLVMParseBitcodeInContext2(C, buf, &lib)) {
    LLVMDisposeMemoryBuffer(buf);
    return kc_error(d, (kc_loc){path, 0, 0}, "libdevice is not valid bitcode");
  }
  LLVMDisposeMemoryBuffer(buf);
  LLVMSetTarget(lib, LLVMGetTarget(M));
  LLVMSetDataLayout(lib, LLVMGetDataLayoutStr(M));
  if (LLVMLinkModules2(M, lib)) return kc_error(d, (kc_loc){path, 0, 0}, "linking libdevice failed");
  return true;
}

int kc_emit_ptx(kg_module *m, const kc_plan *p, const char *arch, int opt_level, FILE *f, kc_diag *d) {
  kc_target t;
  if (!kc_target_init(&t, "nvptx64-nvidia-cuda", arch ? arch : "sm_80", "+ptx78", opt_level, d)) return -1;
  LLVMContextRef C = LLVMContextCreate();
  LLVMModuleRef M = LLVMModuleCreateWithNameInContext(m->name, C);
  kc_target_configure(&t, M);
  kl_ctx L;
  memset(&L, 0, sizeof L);
  L.diag = d;
  L.m = m;
  L.plan = p;
  L.target = &t;
  L.C = C;
  L.M = M;
  L.B = LLVMCreateBuilderInContext(C);
  L.t_void = LLVMVoidTypeInContext(C);
  L.t_i1 = LLVMInt1TypeInContext(C);
  L.t_i8 = LLVMInt8TypeInContext(C);
  L.t_i32 = LLVMInt32TypeInContext(C);
  L.t_i64 = LLVMInt64TypeInContext(C);
  L.t_f32 = LLVMFloatTypeInContext(C);
  L.t_f64 = LLVMDoubleTypeInContext(C);
  L.t_ptr = LLVMPointerTypeInContext(C, 0);
  L.gpu = true;
  int kernels = 0;
  bool ok = true;
  for (int v = 0; ok && v < m->n_nodes; v++) {
    if (!kc_gpu_is_kernel(m, v)) continue;
    ok = emit_kernel(&L, v);
    kernels++;
  }
  LLVMDisposeBuilder(L.B);
  if (ok && uses_libdevice(M)) {
    ok = link_libdevice(C, M, d);
    /* keep only the kernels visible, so unused libdevice code is dropped */
    for (LLVMValueRef fn = LLVMGetFirstFunction(M); ok && fn; fn = LLVMGetNextFunction(fn))
      if (!LLVMIsDeclaration(fn) && LLVMGetFunctionCallConv(fn) != PTX_KERNEL_CC)
        LLVMSetLinkage(fn, LLVMInternalLinkage);
  }
  if (ok) ok = kc_target_optimize(&t, M, d);
  if (ok) {
    char path[] = "/tmp/kiln-ptx-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) ok = kc_error(d, (kc_loc){0}, "cannot create a temporary file");
    else {
      close(fd);
      ok = kc_target_emit(&t, M, true, path, d);
      FILE *in = ok ? fopen(path, "rb") : NULL;
      if (in) {
        char buf[65536];
        size_t r;
        while ((r = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, r, f);
        fclose(in);
      }
      unlink(path);
    }
  }
  LLVMDisposeModule(M);
  LLVMContextDispose(C);
  kc_target_dispose(&t);
  return ok ? kernels : -1;
}

char *kc_emit_ptx_string(kg_module *m, const kc_plan *p, const char *arch, int opt_level, int *kernels, kc_diag *d) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) {
    kc_error(d, (kc_loc){0}, "out of memory");
    return NULL;
  }
  int k = kc_emit_ptx(m, p, arch, opt_level, f, d);
  fclose(f);
  if (k < 0) {
    free(text);
    return NULL;
  }
  if (kernels) *kernels = k;
  return text;
}
