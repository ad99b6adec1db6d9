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
  /* --cpu-dispatch: the generated GEMM and convolution kernels are also
   * emitted for these CPUs (lowest level first), and each call picks the
   * best the machine has at run time (runtime kiln_cpu_level) */
  int n_variants;
  struct kc_variant {
    const char *cpu;    /* an LLVM CPU name: x86-64-v3, x86-64-v4 */
    int level;          /* the kiln_cpu_level that runs it */
  } variant[2];
  /* set in the copy of the target a variant's kernels are emitted for: its
   * functions get these as "target-cpu" / "target-features" and names end in
   * fn_suffix (the base copy: fn_cpu NULL, suffix "") */
  const char *fn_cpu, *fn_suffix;
} kc_target;

/* The variants of a comma-separated list of x86-64-v3 / x86-64-v4 (each
 * at most once) into out, lowest level first; their count, or -1 when the
 * list is malformed. */
int kc_dispatch_list(const char *value, struct kc_variant out[2]);
/* Parses a --cpu-dispatch value for t (after kc_target_init): "none", "auto"
 * (NULL: x86-64-v3 and x86-64-v4 for a host x86-64 build at the default
 * CPU, none otherwise) or a comma-separated list of x86-64-v3 / x86-64-v4
 * (x86-64 targets only).  False with an error for anything else. */
bool kc_target_set_dispatch(kc_target *t, const char *value, bool cpu_given, kc_diag *diag);

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
