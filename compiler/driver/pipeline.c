/* pipeline.c — the compiler as one visible sequence (see pipeline.h).
 *
 *   parse -> verify -> [passes: expand, autodiff, cse, dce, fuse, dce, place] -> plan -> lower -> opt -> emit -> link
 *
 * The pass list is the table `passes` below: adding a pass means adding a
 * line.  `--print-after=NAME` prints the graph after that pass ("all":
 * after every pass). */
#include "driver/pipeline.h"
#include "driver/outputs.h"
#include "emitc/emitc.h"
#include "frontends/graphdef/graphdef_import.h"
#include "frontends/onnx/onnx_import.h"
#include "ir/parse.h"
#include "ir/print.h"
#include "lower/lower.h"
#include "lower/nvptx.h"
#include "lower/weights.h"
#include "passes/autodiff.h"
#include "passes/passes.h"
#include "passes/place.h"
#include "passes/plan.h"
#include "passes/verify.h"
#include <llvm-c/Analysis.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
  const char *name;
  bool (*run)(kg_module *m, kc_diag *d);
} passes[] = {
    {"expand", kc_pass_expand},
    {"autodiff", kc_pass_autodiff},
    {"cse", kc_pass_cse},
    {"dce", kc_pass_dce},
    {"fuse", kc_pass_fuse},
    {"dce", kc_pass_dce}, /* what fusion left unused */
    {"place", NULL},      /* kc_pass_place, with its options: devices, copies (passes/place.c) */
};

static const char *const pass_names[] = {"parse", "verify", "expand", "autodiff", "cse", "dce", "fuse", "place", "plan", NULL};

const char *const *kc_pass_names(void) { return pass_names; }

bool kc_emit_parse(const char *name, kc_emit *out) {
  static const struct {
    const char *name;
    kc_emit e;
  } names[] = {{"graph", KC_EMIT_GRAPH}, {"opt-graph", KC_EMIT_OPT_GRAPH}, {"llvm", KC_EMIT_LLVM},
               {"opt-llvm", KC_EMIT_OPT_LLVM}, {"asm", KC_EMIT_ASM}, {"obj", KC_EMIT_OBJ},
               {"ptx", KC_EMIT_PTX}, {"dot", KC_EMIT_DOT}, {"exe", KC_EMIT_EXE}, {"lib", KC_EMIT_LIB},
               {"c", KC_EMIT_C}};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (!strcmp(name, names[i].name)) {
      *out = names[i].e;
      return true;
    }
  return false;
}

static bool wants(const char *print_after, const char *pass) {
  return print_after && (!strcmp(print_after, "all") || !strcmp(print_after, pass));
}

static void dump(FILE *f, const char *pass, const kg_module *m) {
  fprintf(f, "# ---- after %s ----\n", pass);
  kc_print_module(m, f);
}

kg_module *kc_read_input(const char *path, const kc_import_options *io, kc_diag *d) {
  if (kc_is_graphdef_path(path)) return kc_graphdef_import(path, io, d); /* TensorFlow: .pb, TF.js model.json */
  if (io && (io->n_feeds || io->n_fetches || io->fetch_all || io->max_loop_iterations)) {
    kc_error(d, (kc_loc){path, 0, 0}, "--feed, --fetch, --fetch-all and --max-loop-iterations apply to TensorFlow graphs "
                                      "(.pb, model.json)");
    return NULL;
  }
  if (kc_is_onnx_path(path)) return kc_onnx_import(path, io, d);
  if (io && io->n_inputs) {
    kc_error(d, (kc_loc){path, 0, 0}, "--input-shape and --input-value apply to imported models (.onnx), not to .kg files");
    return NULL;
  }
  return kc_parse_file(path, d);
}

kg_module *kc_load(const char *path, const kc_import_options *io, kc_diag *d) {
  kg_module *m = kc_read_input(path, io, d);
  if (m && !kc_verify(m, d)) {
    kc_module_free(m);
    return NULL;
  }
  return m;
}

bool kc_run_passes(kg_module *m, const char *print_after, FILE *out, kc_diag *d) {
  return kc_run_passes_with(m, NULL, print_after, out, d);
}

kc_place_options kc_options_place(const kc_options *o) {
  return (kc_place_options){.soft = o->soft_placement, .device_map = o->device_map, .device = o->device};
}

bool kc_run_passes_with(kg_module *m, const kc_place_options *po, const char *print_after, FILE *out, kc_diag *d) {
  for (size_t i = 0; i < sizeof passes / sizeof *passes; i++) {
    bool ok = passes[i].run ? passes[i].run(m, d) : kc_pass_place(m, po, d);
    if (!ok || !kc_verify(m, d)) return false;
    if (wants(print_after, passes[i].name)) dump(out, passes[i].name, m);
  }
  return true;
}

/* Text outputs go to -o FILE, or stdout. */
static FILE *open_out(const char *path, kc_diag *d) {
  if (!path || !strcmp(path, "-")) return stdout;
  FILE *f = fopen(path, "w");
  if (!f) kc_error(d, (kc_loc){path, 0, 0}, "cannot write");
  return f;
}

static bool close_out(FILE *f) { return f == stdout ? fflush(f) == 0 : fclose(f) == 0; }

static bool print_llvm(LLVMModuleRef M, const char *path, kc_diag *d) {
  FILE *f = open_out(path, d);
  if (!f) return false;
  char *s = LLVMPrintModuleToString(M);
  fputs(s, f);
  LLVMDisposeMessage(s);
  return close_out(f);
}

/* `x.kg` -> `x` (exe) or `x.o` (lib) when -o is absent. */
static const char *default_output(kg_module *m, const char *input, const char *ext) {
  const char *base = strrchr(input, '/');
  base = base ? base + 1 : input;
  const char *dot = strrchr(base, '.');
  size_t n = dot ? (size_t)(dot - base) : strlen(base);
  return kc_sprintf(m->arena, "%.*s%s", (int)n, base, ext);
}

static bool emit_lib(kc_target *t, LLVMModuleRef M, kg_module *m, const kc_plan *p, const char *obj, kc_diag *d) {
  if (!kc_target_emit(t, M, false, obj, d)) return false;
  const char *dot = strrchr(obj, '.');
  const char *h = kc_sprintf(m->arena, "%.*s.h", dot ? (int)(dot - obj) : (int)strlen(obj), obj);
  FILE *f = fopen(h, "w");
  if (!f) return kc_error(d, (kc_loc){h, 0, 0}, "cannot write");
  kc_write_header(m, p, f);
  return fclose(f) == 0;
}

static bool emit_exe(kc_target *t, const kc_options *o, LLVMModuleRef M, const char *out, kc_diag *d) {
  char obj[] = "/tmp/kiln-XXXXXX.o";
  int fd = mkstemps(obj, 2);
  if (fd < 0) return kc_error(d, (kc_loc){0}, "cannot create a temporary file");
  close(fd);
  bool ok = kc_target_emit(t, M, false, obj, d) && kc_link(t, o->cc, o->static_link, obj, out, d);
  unlink(obj);
  return ok;
}

static bool backend(const kc_options *o, kg_module *m, const kc_plan *p, kc_diag *d) {
  kc_target t;
  if (!kc_target_init(&t, o->triple, o->cpu, o->features, o->opt_level, d)) {
    kc_target_dispose(&t);
    return false;
  }
  if (!kc_target_set_dispatch(&t, o->cpu_dispatch, o->cpu || o->features, d)) {
    kc_target_dispose(&t);
    return false;
  }
  t.generated_blas = o->blas ? !strcmp(o->blas, "generated") : !t.is_host;
  t.gpu_arch = o->gpu_arch;
  t.soft_placement = o->soft_placement;
  LLVMContextRef C = LLVMContextCreate();
  bool exe = o->emit == KC_EMIT_EXE;
  /* --weights-file: beside the executable or object; the IR forms only name it */
  kl_weights w = {0};
  bool obj = o->emit == KC_EMIT_OBJ || o->emit == KC_EMIT_LIB;
  if (o->weights_file) {
    const char *out = (exe || obj) && o->output ? o->output : default_output(m, o->input, obj ? ".o" : "");
    kl_weights_init(&w, m->arena, out, obj, exe || obj);
    t.weights = &w;
  }
  LLVMModuleRef M = kl_lower_module(m, p, &t, C, exe, d);
  bool ok = M != NULL;
  char *err = NULL;
  if (ok && LLVMVerifyModule(M, LLVMReturnStatusAction, &err)) {
    ok = kc_error(d, (kc_loc){m->file, 0, 0}, "internal error: invalid LLVM IR generated:\n%s", err);
  }
  LLVMDisposeMessage(err);
  if (ok && o->emit == KC_EMIT_LLVM) ok = print_llvm(M, o->output, d);
  else if (ok) {
    ok = kc_target_optimize(&t, M, d);
    if (!ok) {
    } else if (o->emit == KC_EMIT_OPT_LLVM) ok = print_llvm(M, o->output, d);
    else if (o->emit == KC_EMIT_ASM) ok = kc_target_emit(&t, M, true, o->output ? o->output : "/dev/stdout", d);
    else if (o->emit == KC_EMIT_OBJ) ok = kc_target_emit(&t, M, false, o->output ? o->output : default_output(m, o->input, ".o"), d);
    else if (o->emit == KC_EMIT_LIB) ok = emit_lib(&t, M, m, p, o->output ? o->output : default_output(m, o->input, ".o"), d);
    else if (exe) ok = emit_exe(&t, o, M, o->output ? o->output : default_output(m, o->input, ""), d);
  }
  if (t.weights) {
    if (ok) ok = kl_weights_write(&w, d);
    kl_weights_free(&w);
  }
  if (M) LLVMDisposeModule(M);
  LLVMContextDispose(C);
  kc_target_dispose(&t);
  return ok;
}

bool kc_compile(const kc_options *o, kc_diag *d) {
  FILE *dumpf = o->dump ? o->dump : stderr;
  kg_module *m = kc_read_input(o->input, o->import, d);
  if (!m) return false;
  if (wants(o->print_after, "parse")) dump(dumpf, "parse", m);
  bool ok = kc_verify(m, d);
  if (ok && wants(o->print_after, "verify")) dump(dumpf, "verify", m);
  if (ok && o->emit == KC_EMIT_GRAPH) {
    FILE *f = open_out(o->output, d);
    if ((ok = f != NULL)) {
      kc_print_module(m, f);
      ok = close_out(f);
    }
    kc_module_free(m);
    return ok;
  }
  kc_place_options po = kc_options_place(o);
  ok = ok && kc_run_passes_with(m, &po, o->print_after, dumpf, d);
  kc_plan *p = ok ? kc_plan_module(m, d) : NULL;
  ok = p != NULL;
  if (ok && wants(o->print_after, "plan")) {
    dump(dumpf, "plan", m);
    kc_plan_print(m, p, dumpf);
  }
  if (ok && (o->emit == KC_EMIT_OPT_GRAPH || o->emit == KC_EMIT_DOT || o->emit == KC_EMIT_PTX)) {
    FILE *f = open_out(o->output, d);
    if ((ok = f != NULL)) {
      if (o->emit == KC_EMIT_OPT_GRAPH) {
        kc_print_module(m, f);
        kc_plan_print(m, p, f);
      } else if (o->emit == KC_EMIT_DOT) {
        kc_print_dot(m, f);
      } else {
        ok = kc_emit_ptx(m, p, o->gpu_arch, o->opt_level, f, d) >= 0;
      }
      ok = close_out(f) && ok;
    }
  } else if (ok && (o->emit == KC_EMIT_C || (o->backend && !strcmp(o->backend, "c")))) {
    ok = kc_emitc_compile(o, m, p, d); /* the portable C backend (compiler/emitc/) */
  } else if (ok) {
    ok = backend(o, m, p, d);
  }
  kc_module_free(m);
  return ok;
}
