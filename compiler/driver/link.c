/* link.c — the last step of `kiln build`: the model's object plus
 * libkilnrt.a, linked by the C compiler driver of the target. */
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

bool kc_link(const kc_target *t, const char *cc, const char *obj, const char *out, kc_diag *d) {
  if (!cc) cc = getenv("KILN_CC");
  if (!cc || !*cc) cc = "cc";
  if (!t->is_host)
    return kc_error(d, (kc_loc){0}, "linking for %s is not supported yet; use --emit=obj or --emit=asm", t->triple);
  char rt[PATH_MAX + 32];
  snprintf(rt, sizeof rt, "%s/libkilnrt.a", kc_runtime_dir());
  if (access(rt, R_OK) != 0)
    return kc_error(d, (kc_loc){0}, "cannot find the runtime library %s (set KILN_RUNTIME_DIR)", rt);
  /* $KILN_LDFLAGS: extra words for the link (the sanitizer builds use it) */
  char *argv[64] = {(char *)cc, "-o", (char *)out, (char *)obj, rt, "-Wl,--as-needed", "-lopenblas",
                    "-lpthread", "-lm"};
  int argc = 9;
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
