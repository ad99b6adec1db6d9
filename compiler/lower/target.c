/* target.c — target machines, the LLVM optimization pipeline, and emission
 * of assembly and object files (see target.h). */
#include "lower/target.h"
#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdlib.h>
#include <string.h>

static void init_llvm(void) {
  static bool done;
  if (done) return;
  done = true;
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
  LLVMInitializeAllAsmParsers();
}

/* Debian's cross toolchains name triples without a vendor; LLVM wants one. */
static char *normalize(const char *triple) {
  if (!triple) return LLVMGetDefaultTargetTriple();
  char *t = LLVMNormalizeTargetTriple(triple);
  return t;
}

static const char *default_cpu(const char *triple) {
  if (!strncmp(triple, "x86_64", 6)) return "x86-64-v2";
  if (!strncmp(triple, "aarch64", 7)) return "generic";
  if (!strncmp(triple, "riscv64", 7)) return "generic-rv64";
  if (!strncmp(triple, "nvptx64", 7)) return "sm_80";
  return "generic";
}

static const char *default_features(const char *triple) {
  if (!strncmp(triple, "riscv64", 7)) return "+m,+a,+f,+d,+c";
  if (!strncmp(triple, "nvptx64", 7)) return "+ptx78";
  return "";
}

bool kc_target_init(kc_target *t, const char *triple, const char *cpu, const char *features, int opt_level,
                    kc_diag *d) {
  init_llvm();
  memset(t, 0, sizeof *t);
  t->is_host = triple == NULL;
  char *norm = normalize(triple);
  t->triple = strdup(norm);
  LLVMDisposeMessage(norm);
  LLVMTargetRef target;
  char *err = NULL;
  if (LLVMGetTargetFromTriple(t->triple, &target, &err)) {
    kc_error(d, (kc_loc){0}, "unknown target '%s': %s", triple ? triple : t->triple, err ? err : "");
    LLVMDisposeMessage(err);
    return false;
  }
  char *host_cpu = NULL, *host_features = NULL;
  if (cpu && !strcmp(cpu, "native")) {
    if (!t->is_host) return kc_error(d, (kc_loc){0}, "--cpu native only makes sense for the host target");
    cpu = host_cpu = LLVMGetHostCPUName();
    if (!features) features = host_features = LLVMGetHostCPUFeatures();
  }
  t->cpu = strdup(cpu ? cpu : default_cpu(t->triple));
  t->features = strdup(features ? features : default_features(t->triple));
  if (host_cpu) LLVMDisposeMessage(host_cpu);
  if (host_features) LLVMDisposeMessage(host_features);
  t->opt_level = opt_level;
  LLVMCodeGenOptLevel lvl = opt_level == 0 ? LLVMCodeGenLevelNone
                            : opt_level == 1 ? LLVMCodeGenLevelLess
                            : opt_level == 2 ? LLVMCodeGenLevelDefault
                                             : LLVMCodeGenLevelAggressive;
  t->tm = LLVMCreateTargetMachine(target, t->triple, t->cpu, t->features, lvl, LLVMRelocPIC, LLVMCodeModelDefault);
  if (!t->tm) return kc_error(d, (kc_loc){0}, "LLVM cannot create a target machine for %s", t->triple);
  return true;
}

void kc_target_dispose(kc_target *t) {
  if (t->tm) LLVMDisposeTargetMachine(t->tm);
  free((char *)t->triple);
  free((char *)t->cpu);
  free((char *)t->features);
  memset(t, 0, sizeof *t);
}

bool kc_target_optimize(kc_target *t, LLVMModuleRef mod, kc_diag *d) {
  char pipeline[32];
  snprintf(pipeline, sizeof pipeline, "default<O%d>", t->opt_level);
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(opts, t->opt_level >= 2);
  LLVMPassBuilderOptionsSetSLPVectorization(opts, t->opt_level >= 2);
  LLVMErrorRef e = LLVMRunPasses(mod, pipeline, t->tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  if (e) {
    char *msg = LLVMGetErrorMessage(e);
    kc_error(d, (kc_loc){0}, "LLVM optimization failed: %s", msg);
    LLVMDisposeErrorMessage(msg);
    return false;
  }
  return true;
}

bool kc_target_emit(kc_target *t, LLVMModuleRef mod, bool asm_, const char *path, kc_diag *d) {
  char *err = NULL;
  kc_target_configure(t, mod);
  if (LLVMTargetMachineEmitToFile(t->tm, mod, (char *)path, asm_ ? LLVMAssemblyFile : LLVMObjectFile, &err)) {
    kc_error(d, (kc_loc){path, 0, 0}, "cannot write: %s", err ? err : "unknown error");
    LLVMDisposeMessage(err);
    return false;
  }
  return true;
}

void kc_target_configure(const kc_target *t, LLVMModuleRef mod) {
  LLVMSetTarget(mod, t->triple);
  LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(t->tm);
  char *dls = LLVMCopyStringRepOfTargetData(dl);
  LLVMSetDataLayout(mod, dls);
  LLVMDisposeMessage(dls);
  LLVMDisposeTargetData(dl);
}
