/* target.c — target machines, the LLVM optimization pipeline, and emission
 * of assembly and object files (see target.h). */
#include "lower/target.h"
#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* LLVM reports an unknown CPU or feature only on stderr, and may then abort
 * in code generation (x86: "64-bit code requested on a subtarget that doesn't
 * support it").  So a user-given CPU or feature list is tried first in a
 * child process on an empty module; what LLVM printed becomes our error. */
static bool probe(kc_target *t, kc_diag *d) {
  int fds[2];
  if (pipe(fds)) return true;
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]), close(fds[1]);
    return true;
  }
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    LLVMContextRef C = LLVMContextCreate();
    LLVMModuleRef M = LLVMModuleCreateWithNameInContext("probe", C);
    LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(C), NULL, 0, 0);
    LLVMValueRef fn = LLVMAddFunction(M, "probe", fty);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(C);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(C, fn, "entry"));
    LLVMBuildRetVoid(b);
    kc_target_configure(t, M);
    char *err = NULL;
    LLVMMemoryBufferRef buf;
    _exit(LLVMTargetMachineEmitToMemoryBuffer(t->tm, M, LLVMAssemblyFile, &err, &buf) ? 3 : 0);
  }
  close(fds[1]);
  char text[2048];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof text - 1 && (r = read(fds[0], text + n, sizeof text - 1 - n)) > 0) n += (size_t)r;
  text[n] = 0;
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  bool bad = !WIFEXITED(st) || WEXITSTATUS(st) != 0 || strstr(text, "not a recognized");
  if (!bad) return true;
  /* LLVM repeats itself: keep each distinct line once */
  char msg[2048] = "";
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
    if (!strstr(msg, line) && strlen(msg) + strlen(line) + 3 < sizeof msg) {
      if (*msg) strcat(msg, "; ");
      strcat(msg, line);
    }
  return kc_error(d, (kc_loc){0}, "LLVM rejects --cpu=%s --features=%s for %s: %s", t->cpu,
                  *t->features ? t->features : "(none)", t->triple, *msg ? msg : "code generation failed");
}

int kc_dispatch_list(const char *value, struct kc_variant out[2]) {
  static const struct kc_variant known[] = {{"x86-64-v3", 3}, {"x86-64-v4", 4}};
  bool seen[2] = {false, false};
  for (const char *p = value;;) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    int k = -1;
    for (int i = 0; i < 2; i++)
      if (n == strlen(known[i].cpu) && !strncmp(p, known[i].cpu, n)) k = i;
    if (k < 0 || seen[k]) return -1;
    seen[k] = true;
    if (!e) break;
    p = e + 1;
  }
  int count = 0; /* lowest level first, whatever the list's order */
  for (int i = 0; i < 2; i++)
    if (seen[i]) out[count++] = known[i];
  return count;
}

bool kc_target_set_dispatch(kc_target *t, const char *value, bool cpu_given, kc_diag *d) {
  bool x86 = !strncmp(t->triple, "x86_64", 6);
  t->n_variants = 0;
  if (value && !strcmp(value, "none")) return true;
  if (!value || !strcmp(value, "auto")) {
    if (t->is_host && x86 && !cpu_given) t->n_variants = kc_dispatch_list("x86-64-v3,x86-64-v4", t->variant);
    return true;
  }
  if (!x86) return kc_error(d, (kc_loc){0}, "--cpu-dispatch=%s: kernel variants exist for x86-64 targets only, not %s", value, t->triple);
  int n = kc_dispatch_list(value, t->variant);
  if (n < 0)
    return kc_error(d, (kc_loc){0}, "--cpu-dispatch=%s: expected none, auto, or a list of x86-64-v3 and x86-64-v4", value);
  t->n_variants = n;
  return true;
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
  /* LLVM may complain about a user's CPU on stderr here; probe() reports it */
  int saved = -1, null = -1;
  if ((cpu || features) && !host_cpu) {
    fflush(stderr);
    saved = dup(2);
    null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2);
  }
  t->tm = LLVMCreateTargetMachine(target, t->triple, t->cpu, t->features, lvl, LLVMRelocPIC, LLVMCodeModelDefault);
  if (saved >= 0) {
    dup2(saved, 2);
    close(saved);
  }
  if (null >= 0) close(null);
  if (!t->tm) return kc_error(d, (kc_loc){0}, "LLVM cannot create a target machine for %s", t->triple);
  if ((cpu || features) && !host_cpu) return probe(t, d);
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
