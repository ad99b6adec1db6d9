/* link.c — the last step of `kiln build`: the model's object plus
 * libkilnrt.a, linked by the C compiler driver of the target.
 *
 * For the host: CC (--cc, $KILN_CC, cc) with RUNTIME_DIR/libkilnrt.a and
 * OpenBLAS.  For another target (docs/cross.md): Debian's cross compiler
 * `<triple>-gcc` (aarch64-linux-gnu-gcc, riscv64-linux-gnu-gcc; --cc
 * overrides it) with the runtime the Makefile built for that triple,
 * RUNTIME_DIR/<triple>/libkilnrt.a (build tree) or
 * RUNTIME_DIR/kiln/<triple>/libkilnrt.a (installed), and no BLAS library:
 * target builds use kiln's generated GEMM. */
#include "driver/outputs.h"
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *kc_runtime_dir(void) {
  static char dir[PATH_MAX + 32];
  const char *env = getenv("KILN_RUNTIME_DIR");
  if (env && *env) return env;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return ".";
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (slash) *slash = 0;
  snprintf(dir, sizeof dir, "%s/libkilnrt.a", exe);
  if (access(dir, R_OK) == 0) {
    snprintf(dir, sizeof dir, "%s", exe);
    return dir;
  }
  snprintf(dir, sizeof dir, "%s/../lib", exe);
  return dir;
}

/* Runs argv, waiting for it; false with its exit status in *status. */
static bool run(char *const *argv, int *status) {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    execvp(argv[0], argv);
    _exit(127);
  }
  int st;
  if (waitpid(pid, &st, 0) < 0) return false;
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return *status == 0;
}

/* The GNU name of an LLVM triple, as Debian names its cross toolchains:
 * the vendor dropped ("aarch64-unknown-linux-gnu" -> "aarch64-linux-gnu"). */
static void gnu_triple(const char *triple, char *buf, size_t cap) {
  const char *p[4] = {0};
  size_t len[4] = {0};
  int n = 0;
  for (const char *s = triple; n < 4;) {
    const char *dash = strchr(s, '-');
    p[n] = s;
    len[n++] = dash ? (size_t)(dash - s) : strlen(s);
    if (!dash) break;
    s = dash + 1;
  }
  if (n == 4)
    snprintf(buf, cap, "%.*s-%.*s-%.*s", (int)len[0], p[0], (int)len[2], p[2], (int)len[3], p[3]);
  else
    snprintf(buf, cap, "%s", triple);
}

/* Debian's architecture name for a GNU triple's CPU (libc6-dev-<arch>-cross),
 * or NULL when we do not know it. */
static const char *debian_arch(const char *gnu) {
  static const struct {
    const char *prefix, *arch;
  } archs[] = {{"aarch64-", "arm64"},          {"riscv64-", "riscv64"}, {"x86_64-", "amd64"},
               {"arm-linux-gnueabihf", "armhf"}, {"arm-linux-gnueabi", "armel"}, {"i686-", "i386"},
               {"powerpc64le-", "ppc64el"},    {"s390x-", "s390x"},     {"mips64el-", "mips64el"}};
  for (size_t i = 0; i < sizeof archs / sizeof *archs; i++)
    if (!strncmp(gnu, archs[i].prefix, strlen(archs[i].prefix))) return archs[i].arch;
  return NULL;
}

/* True when `prog` runs: a path that is executable, or a name on $PATH. */
static bool on_path(const char *prog) {
  if (strchr(prog, '/')) return access(prog, X_OK) == 0;
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  char file[PATH_MAX];
  for (const char *s = path;;) {
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    snprintf(file, sizeof file, "%.*s/%s", (int)n, n ? s : ".", prog);
    if (access(file, X_OK) == 0) return true;
    if (!colon) return false;
    s = colon + 1;
  }
}

bool kc_link(const kc_target *t, const char *cc, bool static_link, const char *obj, const char *out, kc_diag *d) {
  /* a --target naming this machine (x86_64-linux-gnu here) links as the host */
  char gnu[128], host_gnu[128];
  gnu_triple(t->triple, gnu, sizeof gnu);
  char *host = LLVMGetDefaultTargetTriple();
  gnu_triple(host, host_gnu, sizeof host_gnu);
  LLVMDisposeMessage(host);
  bool cross = !t->is_host && strcmp(gnu, host_gnu) != 0;

  char rt[PATH_MAX + 160], cross_cc[160];
  if (!cross) {
    if (!cc) cc = getenv("KILN_CC");
    if (!cc || !*cc) cc = "cc";
    snprintf(rt, sizeof rt, "%s/libkilnrt.a", kc_runtime_dir());
    if (access(rt, R_OK) != 0)
      return kc_error(d, (kc_loc){0}, "cannot find the runtime library %s (set KILN_RUNTIME_DIR)", rt);
  } else {
    if (!t->generated_blas)
      return kc_error(d, (kc_loc){0},
                      "--blas=openblas: OpenBLAS for %s is not available to kiln; target executables use "
                      "kiln's generated GEMM (--blas=generated, the default with --target), or link an "
                      "object from -c with your own OpenBLAS for the target",
                      gnu);
    const char *dir = kc_runtime_dir();
    char alt[PATH_MAX + 160];
    snprintf(rt, sizeof rt, "%s/%s/libkilnrt.a", dir, gnu);
    snprintf(alt, sizeof alt, "%s/kiln/%s/libkilnrt.a", dir, gnu);
    if (access(rt, R_OK) != 0) {
      if (access(alt, R_OK) != 0)
        return kc_error(d, (kc_loc){0},
                        "linking for %s needs libkilnrt.a built for it, found neither %s nor %s; the Makefile "
                        "builds it for aarch64-linux-gnu and riscv64-linux-gnu (set KILN_RUNTIME_DIR)",
                        gnu, rt, alt);
      snprintf(rt, sizeof rt, "%s", alt);
    }
    bool debian_cc = !cc;
    if (debian_cc) {
      snprintf(cross_cc, sizeof cross_cc, "%s-gcc", gnu);
      cc = cross_cc;
    }
    if (!on_path(cc)) {
      const char *arch = debian_arch(gnu);
      if (debian_cc && arch)
        return kc_error(d, (kc_loc){0},
                        "linking for %s needs the cross compiler %s: install the Debian package gcc-%s (and "
                        "libc6-dev-%s-cross)",
                        gnu, cc, gnu, arch);
      return kc_error(d, (kc_loc){0}, "linking for %s needs the cross compiler %s, which is not installed", gnu,
                      cc);
    }
  }
  /* $KILN_LDFLAGS: extra words for the link (the sanitizer builds use it) */
  char *argv[64] = {(char *)cc, "-o", (char *)out, (char *)obj, rt};
  int argc = 5;
  if (static_link) argv[argc++] = "-static";
  if (!cross) {
    argv[argc++] = "-Wl,--as-needed";
    argv[argc++] = "-lopenblas";
  }
  argv[argc++] = "-lpthread";
  argv[argc++] = "-lm";
  char *extra = getenv("KILN_LDFLAGS") ? strdup(getenv("KILN_LDFLAGS")) : NULL;
  for (char *w = extra ? strtok(extra, " ") : NULL; w && argc < 62; w = strtok(NULL, " ")) argv[argc++] = w;
  argv[argc] = NULL;
  int status = 0;
  bool ok = run(argv, &status);
  free(extra);
  if (!ok)
    return kc_error(d, (kc_loc){0}, "linking with '%s' failed (exit status %d)", cc, status);
  return true;
}
