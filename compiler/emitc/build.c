/* build.c — the C backend inside kc_compile: `--emit=c` writes FILE.c and
 * FILE.h; `--backend c` with exe, obj or lib (-c) writes the C to a
 * temporary file, compiles it with the system compiler ($KILN_CC, --cc, cc;
 * <triple>-gcc with --target) and, for an executable, links it with
 * libkilnrt exactly as the LLVM backend's objects are linked
 * (driver/link.c). */
#include "emitc/emitc.h"
#include "driver/outputs.h"
#include "lower/target.h"
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* `x.kg` -> `x` + ext when there is no -o. */
static const char *default_output(kg_module *m, const char *input, const char *ext) {
  const char *base = strrchr(input, '/');
  base = base ? base + 1 : input;
  const char *dot = strrchr(base, '.');
  size_t n = dot ? (size_t)(dot - base) : strlen(base);
  return kc_sprintf(m->arena, "%.*s%s", (int)n, base, ext);
}

/* path with its extension (after the last '/') replaced by ext */
static const char *with_ext(kg_module *m, const char *path, const char *ext) {
  const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
  const char *dot = strrchr(base, '.');
  int n = dot && dot != base ? (int)(dot - path) : (int)strlen(path);
  return kc_sprintf(m->arena, "%.*s%s", n, path, ext);
}

static bool write_c(kg_module *m, const kc_plan *p, const kc_emitc_options *co, const char *path, kc_diag *d) {
  FILE *f = fopen(path, "w");
  if (!f) return kc_error(d, (kc_loc){path, 0, 0}, "cannot write");
  bool ok = kc_emitc_write(m, p, co, f, d);
  ok = fclose(f) == 0 && ok;
  if (!ok) unlink(path);
  return ok;
}

static bool write_header(kg_module *m, const kc_plan *p, const char *path, kc_diag *d) {
  FILE *f = fopen(path, "w");
  if (!f) return kc_error(d, (kc_loc){path, 0, 0}, "cannot write");
  kc_write_header(m, p, f);
  return fclose(f) == 0;
}

/* The C compiler: --cc, else $KILN_CC or cc for the host, <gnu triple>-gcc
 * (Debian's cross compilers) for another target. */
static const char *c_compiler(const kc_options *o, const kc_target *t, kg_module *m) {
  if (o->cc) return o->cc;
  if (!o->triple || t->is_host) {
    const char *cc = getenv("KILN_CC");
    return cc && *cc ? cc : "cc";
  }
  /* drop the vendor of a four-part triple: aarch64-unknown-linux-gnu -> aarch64-linux-gnu */
  const char *tr = o->triple;
  int dashes = 0;
  for (const char *s = tr; *s; s++) dashes += *s == '-';
  if (dashes == 3) {
    const char *d1 = strchr(tr, '-'), *d2 = strchr(d1 + 1, '-');
    return kc_sprintf(m->arena, "%.*s%s-gcc", (int)(d1 - tr), tr, d2);
  }
  return kc_sprintf(m->arena, "%s-gcc", tr);
}

static bool run(char *const *argv, kc_diag *d) {
  pid_t pid = fork();
  if (pid < 0) return kc_error(d, (kc_loc){0}, "cannot start %s", argv[0]);
  if (pid == 0) {
    execvp(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return kc_error(d, (kc_loc){0}, "compiling the generated C with '%s' failed (exit status %d)", argv[0],
                    WIFEXITED(st) ? WEXITSTATUS(st) == 127 ? 127 : WEXITSTATUS(st) : 128);
  return true;
}

/* cc -std=c99 -O<n> [-march=CPU] -fno-strict-aliasing [-DKILN_MAIN] -c SRC -o OBJ */
static bool compile_c(const kc_options *o, const kc_target *t, kg_module *m, const char *src, const char *obj,
                      bool with_main, kc_diag *d) {
  char opt[8], march[160] = "";
  snprintf(opt, sizeof opt, "-O%d", o->opt_level);
  if (!strncmp(t->triple, "x86_64", 6) && t->cpu && *t->cpu && strcmp(t->cpu, "generic"))
    snprintf(march, sizeof march, "-march=%s", t->cpu);
  char *argv[16] = {(char *)c_compiler(o, t, m), "-std=c99", opt, "-fno-strict-aliasing"};
  int argc = 4;
  if (*march) argv[argc++] = march;
  if (with_main) argv[argc++] = "-DKILN_MAIN";
  argv[argc++] = "-c";
  argv[argc++] = (char *)src;
  argv[argc++] = "-o";
  argv[argc++] = (char *)obj;
  argv[argc] = NULL;
  return run(argv, d);
}

bool kc_emitc_compile(const kc_options *o, kg_module *m, const kc_plan *p, kc_diag *d) {
  bool exe = o->emit == KC_EMIT_EXE, lib = o->emit == KC_EMIT_LIB, obj = o->emit == KC_EMIT_OBJ;
  if (o->emit != KC_EMIT_C && !exe && !lib && !obj)
    return kc_error(d, (kc_loc){0}, "--backend c writes C: use --emit=c, or build an executable, -c or --emit=obj "
                                    "(the LLVM stages llvm, opt-llvm and asm need --backend llvm)");
  kc_target t = {0};
  if (!kc_target_init(&t, o->triple, o->cpu, o->features, o->opt_level, d)) {
    kc_target_dispose(&t);
    return false;
  }
  t.generated_blas = o->blas ? !strcmp(o->blas, "generated") : !t.is_host;
  kc_emitc_options co = {.generated_blas = t.generated_blas};
  const char *out = o->output ? o->output : default_output(m, o->input, o->emit == KC_EMIT_C ? ".c" : exe ? "" : ".o");
  if (o->weights_file) {
    /* beside the output, named as the LLVM backend names it */
    const char *w = exe ? kc_sprintf(m->arena, "%s.weights", out) : with_ext(m, out, ".weights");
    co.weights_path = w;
    co.weights_file = strrchr(w, '/') ? strrchr(w, '/') + 1 : w;
  }
  bool ok;
  if (o->emit == KC_EMIT_C) {
    ok = !strcmp(out, "-") ? kc_emitc_write(m, p, &co, stdout, d)
                           : write_c(m, p, &co, out, d) && write_header(m, p, with_ext(m, out, ".h"), d);
  } else {
    char dir[] = "/tmp/kiln-c-XXXXXX";
    if (!mkdtemp(dir)) {
      kc_target_dispose(&t);
      return kc_error(d, (kc_loc){0}, "cannot create a temporary directory");
    }
    const char *src = kc_sprintf(m->arena, "%s/%s.c", dir, m->name[0] ? "model" : "model");
    const char *o_file = exe ? kc_sprintf(m->arena, "%s/model.o", dir) : out;
    ok = write_c(m, p, &co, src, d) && compile_c(o, &t, m, src, o_file, exe, d);
    if (ok && exe) ok = kc_link(&t, o->cc, o->static_link, o_file, out, d);
    if (ok && lib) ok = write_header(m, p, with_ext(m, out, ".h"), d);
    unlink(src);
    if (exe) unlink(o_file);
    rmdir(dir);
  }
  kc_target_dispose(&t);
  return ok;
}
