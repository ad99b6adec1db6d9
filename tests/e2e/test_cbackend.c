/* test_cbackend.c — the portable C backend (docs/c-backend.md).
 *
 *   cbackend/examples       every examples/NAME.kg with NAME.expected, built with
 *                           `--backend c` and with the LLVM backend and run from the
 *                           repository root: the outputs agree (integers and text
 *                           exactly, floats within a relative 1e-5), and with
 *                           --blas generated (kiln's GEMM in C) too
 *   cbackend/warnings       the emitted C of every example compiles with gcc, clang
 *                           and the aarch64 / riscv64 cross compilers under
 *                           -std=c99 -Wall -Wextra -pedantic -Werror
 *   cbackend/qemu           every example built --backend c for aarch64 and riscv64,
 *                           run under qemu-user, output as NAME.expected (floats within
 *                           1e-4, as tests/e2e/test_cross.c)
 *   cbackend/embed          `kiln build -c --backend c` with examples/embed/main.c
 *   cbackend/weights_file   --weights-file: the side file, and the binary runs from it
 *   cbackend/no_rendering, cbackend/too_large, cbackend/llvm_stage: the errors
 *   cbackend/onnx_equal     tests/cbackend/onnx_equal.py: every case of
 *                           tests/onnx/passing.txt gives the same outputs with both
 *                           backends (integers exactly, floats within 1e-5 relative)
 *
 * Run from the repository root (the digits examples read build/digits/). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "driver/pipeline.h"
#include "emitc/emitc.h"
#include "passes/plan.h"
#include "testutil.h"

#define C_RTOL 1e-5
#define C_ATOL 1e-6
#define QEMU_RTOL 1e-4
#define QEMU_ATOL 1e-6

/* ---- the examples ---- */

typedef struct ex_param {
  char name[64];
  char triple[32]; /* cbackend/qemu: the target; else "" */
  char arch[16];
} ex_param;

/* The examples with an .expected file, once per triple in `triples` ("" alone: the host). */
static struct criterion_test_params example_params(const char *const *triples, const char *const *archs, int nt) {
  int n = 0;
  char **files = tu_list("examples", ".expected", &n);
  ex_param *p = cr_malloc(sizeof(ex_param) * (size_t)(n ? n * nt : 1));
  int k = 0;
  for (int i = 0; i < n; i++) {
    const char *base = strrchr(files[i], '/') + 1;
    for (int t = 0; t < nt; t++) {
      memset(&p[k], 0, sizeof p[k]);
      snprintf(p[k].name, sizeof p[k].name, "%.*s", (int)(strlen(base) - strlen(".expected")), base);
      snprintf(p[k].triple, sizeof p[k].triple, "%s", triples[t]);
      snprintf(p[k].arch, sizeof p[k].arch, "%s", archs[t]);
      k++;
    }
    free(files[i]);
  }
  free(files);
  return cr_make_param_array(ex_param, p, (size_t)k, tu_free_params);
}

/* Builds examples/NAME.kg with extra options into dir/exe and runs it from the repository root. */
static tu_result build_and_run(const char *name, const char *dir, const char *exe, char *const *extra, int n_extra) {
  char src[256], out[512];
  snprintf(src, sizeof src, "examples/%s.kg", name);
  snprintf(out, sizeof out, "%s/%s", dir, exe);
  char *argv[16] = {(char *)tu_kiln(), "build", src, "-o", out};
  int n = 5;
  for (int i = 0; i < n_extra; i++) argv[n++] = extra[i];
  argv[n] = NULL;
  tu_result b = tu_run(argv, 300);
  if (b.status != 0) return b;
  tu_free(&b);
  char *run[] = {out, NULL};
  return tu_run(run, 600);
}

ParameterizedTestParameters(cbackend, examples) {
  static const char *const host[] = {""};
  return example_params(host, host, 1);
}

ParameterizedTest(ex_param *p, cbackend, examples) {
  /* the C backend computes GPU-placed nodes on the CPU; so does the LLVM
   * backend's binary with KILN_GPU=0, on machines with or without a GPU */
  setenv("KILN_GPU", "0", 1);
  char *dir = tu_tmpdir();
  char *c_args[] = {"--backend", "c"}, *gen_args[] = {"--backend", "c", "--blas", "generated"};
  tu_result l = build_and_run(p->name, dir, "llvm", NULL, 0);
  cr_assert_eq(l.status, 0, "%s: the LLVM build or run failed: %s%s", p->name, l.out, l.err);
  for (int pass = 0; pass < 2; pass++) {
    tu_result c = build_and_run(p->name, dir, pass ? "c-gen" : "c", pass ? gen_args : c_args, pass ? 4 : 2);
    cr_assert_eq(c.status, 0, "%s (--backend c%s): exit %d: %s%s", p->name, pass ? " --blas generated" : "", c.status,
                 c.out, c.err);
    char gl[512], wl[512];
    cr_assert(tu_same_output(c.out, l.out, C_RTOL, C_ATOL, gl, wl, sizeof gl),
              "%s (--backend c%s) differs from the LLVM backend:\n  c:    %s\n  llvm: %s", p->name,
              pass ? " --blas generated" : "", gl, wl);
    tu_free(&c);
  }
  tu_free(&l);
  tu_rmtree(dir);
  free(dir);
}

ParameterizedTestParameters(cbackend, warnings) {
  static const char *const host[] = {""};
  return example_params(host, host, 1);
}

ParameterizedTest(ex_param *p, cbackend, warnings) {
  char *dir = tu_tmpdir();
  char src[256], c_file[512], gen_file[512];
  snprintf(src, sizeof src, "examples/%s.kg", p->name);
  snprintf(c_file, sizeof c_file, "%s/%s.c", dir, p->name);
  snprintf(gen_file, sizeof gen_file, "%s/%s_gen.c", dir, p->name);
  char *emit[] = {(char *)tu_kiln(), "emit", "--emit=c", src, "-o", c_file, NULL};
  tu_result r = tu_run(emit, 120);
  cr_assert_eq(r.status, 0, "%s: kiln emit --emit=c: %s", p->name, r.err);
  tu_free(&r);
  char *emit_gen[] = {(char *)tu_kiln(), "emit", "--emit=c", "--blas=generated", src, "-o", gen_file, NULL};
  r = tu_run(emit_gen, 120);
  cr_assert_eq(r.status, 0, "%s: kiln emit --emit=c --blas=generated: %s", p->name, r.err);
  tu_free(&r);
  static const char *const compilers[] = {"gcc", "clang-19", "clang", "aarch64-linux-gnu-gcc", "riscv64-linux-gnu-gcc"};
  int tried = 0;
  bool clang_done = false;
  for (size_t i = 0; i < sizeof compilers / sizeof *compilers; i++) {
    bool is_clang = !strncmp(compilers[i], "clang", 5);
    if ((is_clang && clang_done) || !tu_have(compilers[i])) continue;
    clang_done |= is_clang;
    for (int g = 0; g < 2; g++) {
      char *cc[] = {(char *)compilers[i], "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-O2",
                    "-fno-strict-aliasing", "-DKILN_MAIN", "-c", g ? gen_file : c_file, "-o", "/dev/null", NULL};
      r = tu_run(cc, 300);
      cr_assert_eq(r.status, 0, "%s: %s -std=c99 -Wall -Wextra -pedantic -Werror on %s:\n%s%s", p->name, compilers[i],
                   g ? "the --blas=generated C" : "the C", r.out, r.err);
      tu_free(&r);
    }
    tried++;
  }
  cr_assert(tried >= 2, "fewer than two C compilers found (make deps installs gcc, clang-19 and the cross compilers)");
  tu_rmtree(dir);
  free(dir);
}

/* ---- aarch64 and riscv64 under qemu ---- */

ParameterizedTestParameters(cbackend, qemu) {
  static const char *const triples[] = {"aarch64-linux-gnu", "riscv64-linux-gnu"};
  static const char *const archs[] = {"aarch64", "riscv64"};
  return example_params(triples, archs, 2);
}

ParameterizedTest(ex_param *p, cbackend, qemu) {
  char qemu[64], sysroot[64];
  snprintf(qemu, sizeof qemu, "qemu-%s", p->arch);
  snprintf(sysroot, sizeof sysroot, "/usr/%s", p->triple);
  tu_need_cross_tools(p->triple, p->arch);
  if (tu_sanitized()) cr_skip_test("the cross runtimes are built without sanitizers");
  char src[256], want_path[256];
  snprintf(src, sizeof src, "examples/%s.kg", p->name);
  snprintf(want_path, sizeof want_path, "examples/%s.expected", p->name);
  char *text = tu_read_file(src, NULL);
  cr_assert(text);
  bool events = strstr(text, "\n  summary \"") != NULL;
  free(text);
  if (events) cr_skip_test("%s writes an event file: the cross runtimes have no protobuf-c", p->name);
  char *dir = tu_tmpdir();
  char exe[512], target[64];
  snprintf(exe, sizeof exe, "%s/%s", dir, p->name);
  snprintf(target, sizeof target, "--target=%s", p->triple);
  unsetenv("KILN_LDFLAGS");
  setenv("KILN_GPU", "0", 1);
  char *build[] = {(char *)tu_kiln(), "build", "--backend", "c", target, src, "-o", exe, NULL};
  tu_result r = tu_run(build, 300);
  cr_assert_eq(r.status, 0, "%s for %s: kiln build --backend c failed: %s", p->name, p->triple, r.err);
  tu_free(&r);
  char *run[] = {qemu, "-L", sysroot, exe, NULL};
  r = tu_run(run, 900);
  cr_assert_eq(r.status, 0, "%s under %s: exit %d: %s", p->name, qemu, r.status, r.err);
  char *want = tu_read_file(want_path, NULL);
  char gl[512], wl[512];
  cr_assert(tu_same_output(r.out, want, QEMU_RTOL, QEMU_ATOL, gl, wl, sizeof gl),
            "%s under %s differs from %s:\n  got:  %s\n  want: %s", p->name, qemu, want_path, gl, wl);
  free(want);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}

/* ---- embedding, the weights file ---- */

Test(cbackend, embed) {
  char *dir = tu_tmpdir();
  char obj[512], exe[512], inc[512], rt[512];
  snprintf(obj, sizeof obj, "%s/model.o", dir);
  snprintf(exe, sizeof exe, "%s/main", dir);
  snprintf(inc, sizeof inc, "-I%s", dir);
  snprintf(rt, sizeof rt, "%s/libkilnrt.a", tu_build_dir());
  char *build[] = {(char *)tu_kiln(), "build", "-c", "--backend", "c", "examples/embed/model.kg", "-o", obj, NULL};
  tu_result r = tu_run(build, 120);
  cr_assert_eq(r.status, 0, "kiln build -c --backend c: %s", r.err);
  tu_free(&r);
  char h[512];
  snprintf(h, sizeof h, "%s/model.h", dir);
  cr_assert_eq(access(h, R_OK), 0, "no header beside the object");
  /* the sanitizer builds' runtime needs their flags at the link too */
  const char *ld = getenv("KILN_LDFLAGS");
  char *cc[16] = {"cc", inc, "-Iruntime", "examples/embed/main.c", obj, rt, "-lopenblas", "-lpthread", "-lm", "-o", exe};
  char *words = ld ? strdup(ld) : NULL;
  int k = 11;
  for (char *w = words ? strtok(words, " ") : NULL; w && k < 15; w = strtok(NULL, " ")) cc[k++] = w;
  cc[k] = NULL;
  r = tu_run(cc, 120);
  free(words);
  cr_assert_eq(r.status, 0, "compiling examples/embed/main.c with the C backend's object: %s", r.err);
  tu_free(&r);
  char *run[] = {exe, NULL};
  r = tu_run(run, 60);
  char *want = tu_read_file("examples/embed/expected.txt", NULL);
  cr_assert_eq(r.status, 0);
  cr_assert_str_eq(r.out, want);
  free(want);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}

Test(cbackend, weights_file) {
  char *dir = tu_tmpdir();
  char exe[512], w[512], c_file[512];
  snprintf(exe, sizeof exe, "%s/classifier", dir);
  snprintf(w, sizeof w, "%s/classifier.weights", dir);
  snprintf(c_file, sizeof c_file, "%s/classifier.c", dir);
  char *build[] = {(char *)tu_kiln(), "build", "--backend", "c", "--weights-file", "examples/classifier.kg", "-o", exe, NULL};
  tu_result r = tu_run(build, 120);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  cr_assert_eq(access(w, R_OK), 0, "no weights file beside the executable");
  char *run[] = {exe, NULL};
  r = tu_run(run, 60);
  char *want = tu_read_file("examples/classifier.expected", NULL);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, want);
  free(want);
  tu_free(&r);
  unlink(w); /* a missing side file stops the binary, naming it */
  r = tu_run(run, 60);
  cr_assert_eq(r.status, 1);
  cr_assert(strstr(r.err, "classifier.weights"), "%s", r.err);
  tu_free(&r);
  /* the C names the buffers the runtime fills */
  char *emit[] = {(char *)tu_kiln(), "emit", "--emit=c", "--weights-file", "examples/classifier.kg", "-o", c_file, NULL};
  r = tu_run(emit, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  char *text = tu_read_file(c_file, NULL);
  cr_assert(text && strstr(text, "kiln_weights_desc classifier__weights"), "no weights descriptor in the C");
  free(text);
  tu_rmtree(dir);
  free(dir);
}

/* ---- errors ---- */

/* Loads a .kg text and plans it (no passes: composite ops stay). */
static kg_module *load_planned(const char *dir, const char *text, kc_plan **p, kc_diag *d, bool passes) {
  char *path = tu_write(dir, "m.kg", text);
  kg_module *m = kc_load(path, NULL, d);
  free(path);
  cr_assert(m, "the test module does not load");
  if (passes) cr_assert(kc_run_passes(m, NULL, stderr, d));
  *p = kc_plan_module(m, d);
  cr_assert(*p, "the test module does not plan");
  return m;
}

Test(cbackend, no_rendering) {
  char *dir = tu_tmpdir();
  kc_diag d = {0};
  kc_plan *p;
  /* l2_loss is composite: the expand pass rewrites it, so it has no C (nor
   * LLVM) rendering of its own; without the passes it reaches the backend */
  kg_module *m = load_planned(dir,
                              "module m\ngraph {\n  x = placeholder() : f32[3]\n  l = l2_loss(x)\n}\n"
                              "entry e(x) -> (l)\n",
                              &p, &d, false);
  kc_emitc_options co = {0};
  FILE *f = tmpfile();
  cr_assert_not(kc_emitc_write(m, p, &co, f, &d));
  fclose(f);
  char buf[2048] = "";
  FILE *mf = fmemopen(buf, sizeof buf, "w");
  kc_diag_print(&d, mf);
  fclose(mf);
  cr_assert(strstr(buf, "no C rendering for op 'l2_loss' (node 'l')"), "%s", buf);
  kc_diag_clear(&d);
  kc_module_free(m);
  tu_rmtree(dir);
  free(dir);
}

Test(cbackend, too_large) {
  char *dir = tu_tmpdir();
  kc_diag d = {0};
  kc_plan *p;
  kg_module *m = load_planned(dir,
                              "module m\ngraph {\n  x = placeholder() : f32[4]\n"
                              "  y = add(x, const<f32[4]>([1, 2, 3, 4]))\n}\nentry e(x) -> (y)\n",
                              &p, &d, true);
  kc_emitc_options co = {.static_limit = 8}; /* 16 bytes of constants, over a limit of 8 */
  FILE *f = tmpfile();
  cr_assert_not(kc_emitc_write(m, p, &co, f, &d));
  fclose(f);
  char buf[2048] = "";
  FILE *mf = fmemopen(buf, sizeof buf, "w");
  kc_diag_print(&d, mf);
  fclose(mf);
  cr_assert(strstr(buf, "16 bytes of constants") && strstr(buf, "--weights-file"), "%s", buf);
  kc_diag_clear(&d);
  /* with the side file the same limit does not apply */
  co.weights_file = "m.weights";
  f = tmpfile();
  cr_assert(kc_emitc_write(m, p, &co, f, &d));
  fclose(f);
  kc_diag_clear(&d);
  kc_module_free(m);
  tu_rmtree(dir);
  free(dir);
}

Test(cbackend, llvm_stage) {
  char *argv[] = {(char *)tu_kiln(), "emit", "--emit=llvm", "--backend", "c", "examples/counter.kg", NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 1);
  cr_assert(strstr(r.err, "--backend c writes C"), "%s", r.err);
  tu_free(&r);
  char *bad[] = {(char *)tu_kiln(), "build", "--backend", "fortran", "examples/counter.kg", NULL};
  r = tu_run(bad, 60);
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "unknown --backend 'fortran'"), "%s", r.err);
  tu_free(&r);
}

/* ---- the ONNX conformance cases: both backends agree ---- */

Test(cbackend, onnx_equal) {
  if (access("/usr/share/libonnx-testdata/data/node", R_OK) != 0)
    cr_skip_test("libonnx-testdata is missing (make deps installs it)");
  const char *py = getenv("PYTHON") && *getenv("PYTHON") ? getenv("PYTHON") : "/usr/bin/python3";
  char work[512];
  snprintf(work, sizeof work, "%s/cbackend-onnx", tu_build_dir());
  char *argv[] = {(char *)py, "tests/cbackend/onnx_equal.py", "--kiln", (char *)tu_kiln(), "--build", work, "-j", "2", NULL};
  tu_result r = tu_run(argv, 3000);
  fprintf(stderr, "%s%s", r.out, r.err);
  cr_assert_eq(r.status, 0, "tests/cbackend/onnx_equal.py exited %d: a listed case differs between the backends "
                            "(see above; 124: it ran past 3000 s)", r.status);
  tu_free(&r);
}
