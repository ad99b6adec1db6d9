/* nvptx.h — GPU kernels through LLVM's NVPTX back end. */
#ifndef KILN_NVPTX_H
#define KILN_NVPTX_H

#include <stdio.h>
#include "ir/ir.h"
#include "passes/plan.h"

struct kl_ctx;
struct LLVMOpaqueValue;

/* What a node placed on a GPU does there (lower/gpu_kernels.c). */
typedef enum kc_gpu_kind {
  KC_GPU_NONE,      /* no GPU kernel: the placement pass moves it or fails */
  KC_GPU_NOCODE,    /* runs nowhere: variables, no_op, aliases (device_copy: the runtime copies) */
  KC_GPU_MAP,       /* elementwise, fused, bias_add, assignments: element i per thread */
  KC_GPU_REDUCE,    /* sum mean max min prod: output element i per thread */
  KC_GPU_SOFTMAX,   /* softmax, log_softmax: row i per thread */
  KC_GPU_STRIDED,   /* transpose, slice, broadcast_to: output element i per thread */
  KC_GPU_MATMUL     /* output element i per thread: a dot product */
} kc_gpu_kind;

kc_gpu_kind kc_gpu_kind_of(const kg_module *m, int node);
/* The threads that do work in the node's kernel (the kernel's `n`). */
int64_t kc_gpu_threads(const kg_module *m, int node);
/* True when a GPU-placed node becomes a kernel of the PTX module. */
bool kc_gpu_is_kernel(const kg_module *m, int node);
/* Emits thread i's work for node v inside a kernel (L->kernel_args set). */
bool kl_gpu_emit_body(struct kl_ctx *L, int node, struct LLVMOpaqueValue *i);
/* The kernel's symbol: <module>_<node>. */
const char *kc_gpu_kernel_symbol(kg_module *m, int node);

/* Compiles every GPU-placed kernel node into one PTX module for `arch`
 * (sm_80 default) and writes it to f.  Kernels are marked with the PTX
 * kernel calling convention; math comes from libdevice.  Returns the number
 * of kernels (0 is a valid, empty module), or -1 after errors. */
int kc_emit_ptx(kg_module *m, const kc_plan *p, const char *arch, int opt_level, FILE *f, kc_diag *d);
/* The same PTX as a malloc'd, NUL-terminated string (NULL after errors);
 * *kernels gets the count. */
char *kc_emit_ptx_string(kg_module *m, const kc_plan *p, const char *arch, int opt_level, int *kernels, kc_diag *d);
/* Where libdevice lives ($KILN_LIBDEVICE or the CUDA toolkit's). */
const char *kc_libdevice_path(void);

#endif
