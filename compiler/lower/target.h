/* target.h — the target machine as a parameter: triple, CPU and features
 * flow from the command line through lowering to emission.  The host default
 * is a fixed baseline CPU (x86-64-v2 for x86-64, generic elsewhere) so output
 * is reproducible and runs under valgrind; `--cpu native` tunes for the build
 * machine. */
#ifndef KILN_TARGET_H
#define KILN_TARGET_H

#include <llvm-c/TargetMachine.h>
#include <stdbool.h>
#include <llvm-c/Core.h>
#include "ir/diag.h"

typedef struct kc_target {
  const char *triple;   /* normalized LLVM triple */
  const char *cpu;
  const char *features;
  int opt_level;        /* 0..3 */
  bool is_host;
  bool generated_blas;  /* f32/f64 matmul as generated loops (lower/gemm.c), not cblas (--blas) */
  struct kl_weights *weights; /* --weights-file: constants go there, not into the object (lower/weights.h) */
  LLVMTargetMachineRef tm;
  const char *gpu_arch; /* --gpu-arch of the kernels a host binary embeds (NULL: sm_80) */
  bool soft_placement;  /* --soft-placement: the binary may run its GPU nodes' CPU code (docs/gpu.md) */
} kc_target;

/* Resolves a user triple ("aarch64-linux-gnu", NULL for the host), CPU and
 * features into a target machine.  False with an error if LLVM rejects them. */
bool kc_target_init(kc_target *t, const char *triple, const char *cpu, const char *features,
                    int opt_level, kc_diag *diag);
void kc_target_dispose(kc_target *t);
/* Sets the module's triple and data layout (before optimizing: the
 * vectorizer's cost model needs them). */
void kc_target_configure(const kc_target *t, LLVMModuleRef mod);
/* Runs the new-pass-manager pipeline "default<On>" on the module. */
bool kc_target_optimize(kc_target *t, LLVMModuleRef mod, kc_diag *diag);
/* Writes the module as assembly (asm=true) or an object file. */
bool kc_target_emit(kc_target *t, LLVMModuleRef mod, bool asm_, const char *path, kc_diag *diag);

#endif
