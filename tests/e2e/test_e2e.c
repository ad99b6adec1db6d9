/* test_e2e.c — end-to-end tests: every example compiles and prints its
 * expected output; every example round-trips through the printer; every
 * file in tests/errors/ fails with its expected message; every NumPy
 * reference file passes; every example assembles for the cross targets;
 * GPU-placed examples give PTX that ptxas accepts. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "driver/pipeline.h"
#include "ir/parse.h"
#include "ir/print.h"
#include "passes/verify.h"
#include "testutil.h"

typedef struct path_param {
  char path[256];
} path_param;

static struct criterion_test_params files_param(const char *dir, const char *suffix) {
  int n = 0;
  char **files = tu_list(dir, suffix, &n);
  path_param *p = cr_malloc(sizeof(path_param) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) {
    snprintf(p[i].path, sizeof p[i].path, "%s", files[i]);
    free(files[i]);
  }
  free(files);
  return cr_make_param_array(path_param, p, (size_t)n, tu_free_params);
}

static char *replace_ext(const char *path, const char *ext) {
  char *s = malloc(strlen(path) + strlen(ext) + 1);
  strcpy(s, path);
  char *dot = strrchr(s, '.');
  strcpy(dot ? dot : s + strlen(s), ext);
  return s;
}

/* ---- examples: compile, run, compare with examples/NAME.expected ---- */

ParameterizedTestParameters(examples, run) { return files_param("examples", ".kg"); }

ParameterizedTest(path_param *p, examples, run) {
  char *expected_path = replace_ext(p->path, ".expected");
  char *expected = tu_read_file(expected_path, NULL);
  if (!expected) {
    free(expected_path);
    cr_skip_test("%s has no .expected file (a library-style module)", p->path);
  }
  char *dir = tu_tmpdir();
  char exe[512];
  snprintf(exe, sizeof exe, "%s/prog", dir);
  /* soft placement: a GPU example runs its CPU code where there is no GPU */
  char *build[] = {(char *)tu_kiln(), "build", "--soft-placement", p->path, "-o", exe, NULL};
  tu_result r = tu_run(build, 120);
  cr_assert_eq(r.status, 0, "kiln build %s failed:\n%s", p->path, r.err);
  tu_free(&r);
  char *run[] = {exe, NULL};
  r = tu_run(run, 60);
  cr_assert_eq(r.status, 0, "%s exited %d:\n%s", p->path, r.status, r.err);
  cr_assert_str_eq(r.out, expected, "%s printed:\n%s\nexpected:\n%s", p->path, r.out, expected);
  tu_free(&r);
  free(expected);
  free(expected_path);
  tu_rmtree(dir);
  free(dir);
}

/* ---- round trip: print(parse(print(parse(x)))) == print(parse(x)) ---- */

static char *print_to_string(const char *file, const char *src, size_t len) {
  kc_diag d = {0};
  kg_module *m = kc_parse(file, src, len, &d);
  cr_assert(m, "parse failed:\n%s", d.text ? d.text : "");
  cr_assert(kc_verify(m, &d), "verify failed:\n%s", d.text ? d.text : "");
  char *out = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&out, &n);
  kc_print_module(m, f);
  fclose(f);
  kc_module_free(m);
  kc_diag_clear(&d);
  return out;
}

ParameterizedTestParameters(roundtrip, examples) { return files_param("examples", ".kg"); }

ParameterizedTest(path_param *p, roundtrip, examples) {
  size_t len;
  char *src = tu_read_file(p->path, &len);
  cr_assert(src, "cannot read %s", p->path);
  char *once = print_to_string(p->path, src, len);
  char *twice = print_to_string("<printed>", once, strlen(once));
  cr_assert_str_eq(once, twice, "printing %s is not stable:\n--- first\n%s\n--- second\n%s", p->path, once, twice);
  free(src);
  free(once);
  free(twice);
}

/* the optimized graph (fused nodes, plan comments) parses back too */
ParameterizedTestParameters(roundtrip, optimized) { return files_param("examples", ".kg"); }

ParameterizedTest(path_param *p, roundtrip, optimized) {
  char *dir = tu_tmpdir();
  char out[512];
  snprintf(out, sizeof out, "%s/opt.kg", dir);
  char *emit[] = {(char *)tu_kiln(), "emit", "--emit=opt-graph", p->path, "-o", out, NULL};
  tu_result r = tu_run(emit, 60);
  cr_assert_eq(r.status, 0, "%s: %s", p->path, r.err);
  tu_free(&r);
  size_t len;
  char *src = tu_read_file(out, &len);
  char *once = print_to_string(out, src, len);
  char *twice = print_to_string("<printed>", once, strlen(once));
  cr_assert_str_eq(once, twice);
  free(src), free(once), free(twice);
  tu_rmtree(dir);
  free(dir);
}

/* ---- errors: each tests/errors/X.kg starts with `# expect: TEXT` ---- */

ParameterizedTestParameters(errors, reported) { return files_param("tests/errors", ".kg"); }

ParameterizedTest(path_param *p, errors, reported) {
  char *src = tu_read_file(p->path, NULL);
  cr_assert(src, "cannot read %s", p->path);
  const char *tag = strstr(src, "# expect: ");
  cr_assert(tag, "%s has no '# expect: ' line", p->path);
  tag += 10;
  char want[512];
  size_t k = 0;
  while (tag[k] && tag[k] != '\n' && k < sizeof want - 1) want[k] = tag[k], k++;
  want[k] = 0;
  char *dir = tu_tmpdir();
  char exe[512];
  snprintf(exe, sizeof exe, "%s/prog", dir);
  char *build[] = {(char *)tu_kiln(), "build", p->path, "-o", exe, NULL};
  tu_result r = tu_run(build, 60);
  cr_assert_eq(r.status, 1, "%s: expected exit status 1, got %d\nstderr:\n%s", p->path, r.status, r.err);
  cr_assert(strstr(r.err, want), "%s: expected a message containing\n  %s\ngot:\n%s", p->path, want, r.err);
  cr_assert(strstr(r.err, "error:"), "%s: the message does not say 'error:':\n%s", p->path, r.err);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
  free(src);
}

/* ---- NumPy reference cases ---- */

ParameterizedTestParameters(reference, numpy) { return files_param("tests/ref", ".py"); }

ParameterizedTest(path_param *p, reference, numpy) {
  const char *base = strrchr(p->path, '/') ? strrchr(p->path, '/') + 1 : p->path;
  if (strncmp(base, "cases_", 6) && strncmp(base, "grads_", 6))
    cr_skip_test("%s is not a case file (cases_*.py, grads_*.py)", p->path);
  const char *py = getenv("PYTHON");
  if (!py || !*py) py = "/usr/bin/python3";
  char *argv[] = {(char *)py, "tests/ref/refkit.py", "--kiln",
                  (char *)tu_kiln(), p->path, NULL};
  tu_result r = tu_run(argv, 600);
  cr_assert_eq(r.status, 0, "%s:\n%s%s", p->path, r.out, r.err);
  cr_assert(strstr(r.out, " passed, 0 failed"), "%s printed no summary:\n%s", p->path, r.out);
  tu_free(&r);
}

/* ---- cross targets: every example assembles for aarch64 and riscv64 ---- */

static void emit_for(const char *path, const char *triple) {
  char *dir = tu_tmpdir();
  char out[512];
  snprintf(out, sizeof out, "%s/out.s", dir);
  char target[64];
  snprintf(target, sizeof target, "--target=%s", triple);
  char *argv[] = {(char *)tu_kiln(), "emit", "--emit=asm", target, (char *)path, "-o", out, NULL};
  tu_result r = tu_run(argv, 120);
  cr_assert_eq(r.status, 0, "%s for %s:\n%s", path, triple, r.err);
  size_t len = 0;
  char *s = tu_read_file(out, &len);
  cr_assert(s && len > 0, "no assembly written for %s", triple);
  cr_assert(strstr(s, "_desc"), "%s assembly for %s has no module descriptor", path, triple);
  free(s);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}

ParameterizedTestParameters(targets, aarch64) { return files_param("examples", ".kg"); }
ParameterizedTest(path_param *p, targets, aarch64) { emit_for(p->path, "aarch64-linux-gnu"); }
ParameterizedTestParameters(targets, riscv64) { return files_param("examples", ".kg"); }
ParameterizedTest(path_param *p, targets, riscv64) { emit_for(p->path, "riscv64-linux-gnu"); }

/* ---- GPU: PTX of every GPU-placed example assembles with ptxas ---- */

static const char *ptxas_path(void) {
  const char *env = getenv("PTXAS");
  if (env && *env) return env;
  return access("/usr/local/cuda/bin/ptxas", X_OK) == 0 ? "/usr/local/cuda/bin/ptxas" : NULL;
}

static void ptx_for(const char *path, const char *arch) {
  char *src = tu_read_file(path, NULL);
  cr_assert(src);
  bool gpu = strstr(src, "@gpu") || strstr(src, "device gpu");
  free(src);
  if (!gpu) cr_skip_test("%s places nothing on a GPU", path);
  const char *ptxas = ptxas_path();
  if (!ptxas) cr_skip_test("ptxas not found (no CUDA toolkit at /usr/local/cuda; set PTXAS)");
  char *dir = tu_tmpdir();
  char ptx[512], cubin[512], garch[64];
  snprintf(ptx, sizeof ptx, "%s/k.ptx", dir);
  snprintf(cubin, sizeof cubin, "%s/k.cubin", dir);
  snprintf(garch, sizeof garch, "--gpu-arch=%s", arch);
  char *emit[] = {(char *)tu_kiln(), "emit", "--emit=ptx", garch, (char *)path, "-o", ptx, NULL};
  tu_result r = tu_run(emit, 120);
  cr_assert_eq(r.status, 0, "%s: --emit=ptx failed:\n%s", path, r.err);
  tu_free(&r);
  char *text = tu_read_file(ptx, NULL);
  cr_assert(text && strstr(text, ".entry"), "%s: the PTX has no kernel (.entry)", path);
  cr_assert(!strstr(text, ".extern .func"), "%s: the PTX calls functions that are not linked in", path);
  free(text);
  char a[32];
  snprintf(a, sizeof a, "-arch=%s", arch);
  char *as[] = {(char *)ptxas, a, ptx, "-o", cubin, NULL};
  r = tu_run(as, 120);
  cr_assert_eq(r.status, 0, "%s: ptxas %s rejected the PTX:\n%s", path, arch, r.err);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}

ParameterizedTestParameters(ptx, sm_80) { return files_param("examples", ".kg"); }
ParameterizedTest(path_param *p, ptx, sm_80) { ptx_for(p->path, "sm_80"); }
ParameterizedTestParameters(ptx, sm_90) { return files_param("examples", ".kg"); }
ParameterizedTest(path_param *p, ptx, sm_90) { ptx_for(p->path, "sm_90"); }

/* ---- LLVM: elementwise loops come out vectorized at -O2 ---- */

Test(llvm, elementwise_vectorizes) {
  char *dir = tu_tmpdir();
  char ll[512];
  snprintf(ll, sizeof ll, "%s/v.ll", dir);
  char *kg = tu_write(dir, "v.kg",
                      "module v\ngraph {\n  x = placeholder() : f32[1024]\n  y = placeholder() : f32[1024]\n"
                      "  z = add(mul(x, y), const<f32[]>(1.0))\n}\nentry f(x, y) -> (z)\n");
  cr_assert(kg);
  char *argv[] = {(char *)tu_kiln(), "emit", "--emit=opt-llvm", kg, "-o", ll, NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  char *ir = tu_read_file(ll, NULL);
  cr_assert(ir && strstr(ir, " x float>"), "no vector type in the optimized IR:\n%s", ir ? ir : "");
  free(ir);
  free(kg);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}

/* ---- embedding: kiln build -c gives an object + header a C program uses ---- */

Test(embed, c_program) {
  char *dir = tu_tmpdir();
  char obj[512], exe[512], inc[512], rt[512];
  snprintf(obj, sizeof obj, "%s/model.o", dir);
  snprintf(exe, sizeof exe, "%s/embed", dir);
  snprintf(inc, sizeof inc, "-I%s", dir);
  snprintf(rt, sizeof rt, "%s/libkilnrt.a", tu_build_dir());
  char *build[] = {(char *)tu_kiln(), "build", "-c", "examples/embed/model.kg", "-o", obj, NULL};
  tu_result r = tu_run(build, 120);
  cr_assert_eq(r.status, 0, "kiln build -c failed:\n%s", r.err);
  tu_free(&r);
  char *cc[40] = {"cc", "-std=c17", "-Wall", "-Wextra", "-Werror", inc, "-Iruntime", "examples/embed/main.c", obj,
                  rt, "-lopenblas", "-lpthread", "-lm", "-o", exe};
  int ncc = 15;
  /* the sanitizer builds link the sanitizer runtimes too */
  char *extra = getenv("KILN_LDFLAGS") ? strdup(getenv("KILN_LDFLAGS")) : NULL;
  for (char *w = extra ? strtok(extra, " ") : NULL; w && ncc < 38; w = strtok(NULL, " ")) cc[ncc++] = w;
  cc[ncc] = NULL;
  r = tu_run(cc, 120);
  cr_assert_eq(r.status, 0, "compiling the embedding program failed:\n%s", r.err);
  tu_free(&r);
  free(extra);
  char *run[] = {exe, NULL};
  r = tu_run(run, 60);
  char *expected = tu_read_file("examples/embed/expected.txt", NULL);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, expected);
  free(expected);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}
ParameterizedTestParameters(ptx, gpu_kernels) { return files_param("tests/gpu", ".kg"); }
ParameterizedTest(path_param *p, ptx, gpu_kernels) {
  ptx_for(p->path, "sm_80");
  ptx_for(p->path, "sm_90");
}

/* ---- random numbers: reproducible across processes, new on each run ---- */

/* Writes src to dir/name.kg and builds dir/name; returns the executable's path. */
static char *build_kg(const char *dir, const char *name, const char *src) {
  char file[256];
  snprintf(file, sizeof file, "%s.kg", name);
  char *kg = tu_write(dir, file, src), *exe = NULL;
  cr_assert(kg && asprintf(&exe, "%s/%s", dir, name) >= 0);
  char *build[] = {(char *)tu_kiln(), "build", kg, "-o", exe, NULL};
  tu_result r = tu_run(build, 60);
  cr_assert_eq(r.status, 0, "kiln build %s failed:\n%s", kg, r.err);
  tu_free(&r);
  free(kg);
  return exe;
}

Test(random, reproducible_and_advancing) {
  char *dir = tu_tmpdir();
  char *exe = build_kg(dir, "r", "module r\ngraph {\n  u = random_uniform<f32[4]>() {seed=42}\n}\nentry draw() -> (u)\n");
  char *twice[] = {exe, "--repeat", "2", NULL};
  tu_result a = tu_run(twice, 30), b = tu_run(twice, 30);
  cr_assert_eq(a.status, 0, "%s", a.err);
  cr_assert_str_eq(a.out, b.out, "two processes drew different numbers");
  char *nl = strchr(a.out, '\n');
  cr_assert(nl && strlen(nl + 1) > 0, "expected two lines:\n%s", a.out);
  cr_assert(strncmp(a.out, nl + 1, (size_t)(nl - a.out)) != 0, "the second run repeated the first:\n%s", a.out);
  tu_free(&a);
  tu_free(&b);
  free(exe);
  tu_rmtree(dir);
  free(dir);
}

/* ---- make install gives a kiln that finds its runtime ---- */

Test(install, prefix_works) {
  char *dir = tu_tmpdir();
  char prefix[512], b[512], kiln[512], exe[512];
  snprintf(prefix, sizeof prefix, "PREFIX=%s", dir);
  snprintf(b, sizeof b, "B=%s", tu_build_dir());
  snprintf(kiln, sizeof kiln, "%s/bin/kiln", dir);
  snprintf(exe, sizeof exe, "%s/fifo", dir);
  char *inst[] = {"make", "-s", "install", prefix, b, NULL};
  tu_result r = tu_run(inst, 300);
  cr_assert_eq(r.status, 0, "make install failed:\n%s%s", r.out, r.err);
  tu_free(&r);
  char hdr[600];
  snprintf(hdr, sizeof hdr, "%s/include/kiln/kilnrt.h", dir);
  cr_assert_eq(access(hdr, R_OK), 0, "kilnrt.h not installed");
  char *build[] = {kiln, "build", "examples/fifo_queue.kg", "-o", exe, NULL};
  r = tu_run(build, 60);
  cr_assert_eq(r.status, 0, "the installed kiln failed:\n%s", r.err);
  tu_free(&r);
  char *run[] = {exe, NULL};
  r = tu_run(run, 30);
  cr_assert_str_eq(r.out, "0\n10\n20\n1\n11\n");
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}

/* ---- the command line: bad options are clear errors, never crashes ---- */

static void cli_fails(int want_status, const char *want, char *const *argv) {
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, want_status, "%s %s: status %d\n%s", argv[1], argv[2], r.status, r.err);
  cr_assert(strstr(r.err, want), "expected '%s' in:\n%s", want, r.err);
  tu_free(&r);
}

Test(cli, bad_options) {
  char *k = (char *)tu_kiln(), *f = "examples/counter.kg";
  cli_fails(1, "LLVM rejects --cpu=bogus", (char *[]){k, "emit", "--emit=asm", "--cpu=bogus", f, "-o", "/dev/null", NULL});
  cli_fails(1, "'+nonsense' is not a recognized feature",
            (char *[]){k, "emit", "--emit=asm", "--features=+nonsense", f, "-o", "/dev/null", NULL});
  cli_fails(1, "unknown target 'frob-unknown-linux'",
            (char *[]){k, "emit", "--emit=asm", "--target=frob-unknown-linux", f, "-o", "/dev/null", NULL});
  cli_fails(2, "unsupported --gpu-arch 'sm_999'", (char *[]){k, "emit", "--emit=ptx", "--gpu-arch=sm_999", f, NULL});
  cli_fails(2, "unknown --emit kind 'bytecode'", (char *[]){k, "emit", "--emit=bytecode", f, NULL});
  cli_fails(2, "unknown pass 'inline'", (char *[]){k, "emit", "--print-after=inline", f, NULL});
  cli_fails(2, "unknown option '--frobnicate'", (char *[]){k, "build", "--frobnicate", f, NULL});
  cli_fails(2, "no input file", (char *[]){k, "build", NULL});
  cli_fails(2, "unknown command 'compile'", (char *[]){k, "compile", f, NULL});
  cli_fails(1, "cannot open", (char *[]){k, "build", "no/such/file.kg", NULL});
  cli_fails(2, "unknown --cpu-dispatch 'avx9'", (char *[]){k, "build", "--cpu-dispatch=avx9", f, NULL});
  cli_fails(2, "unknown --cpu-dispatch 'x86-64-v4,x86-64-v4'",
            (char *[]){k, "build", "--cpu-dispatch=x86-64-v4,x86-64-v4", f, NULL});
  cli_fails(1, "kernel variants exist for x86-64 targets only",
            (char *[]){k, "emit", "--emit=llvm", "--target=aarch64-linux-gnu", "--cpu-dispatch=x86-64-v4", f, "-o",
                       "/dev/null", NULL});
}

/* ---- --cpu-dispatch: which kernel variants a module carries ---- */

/* The LLVM IR of examples/train_digits_cnn.kg (conv2d kernels, generated
 * GEMMs) built with extra options a, b (NULL: none). */
static char *cnn_ir(const char *a, const char *b) {
  char *argv[] = {(char *)tu_kiln(), "emit", "--emit=llvm", "--blas=generated", "examples/train_digits_cnn.kg",
                  "-o", "-", (char *)a, (char *)b, NULL};
  tu_result r = tu_run(argv, 120);
  cr_assert_eq(r.status, 0, "kiln emit %s %s:\n%s", a ? a : "", b ? b : "", r.err);
  char *ir = r.out;
  r.out = NULL;
  tu_free(&r);
  return ir;
}

Test(cli, cpu_dispatch_variants) {
  /* the default for this machine: the baseline, x86-64-v3 and x86-64-v4, chosen by kiln_cpu_level */
  char *ir = cnn_ir(NULL, NULL);
  cr_assert(strstr(ir, "\"target-cpu\"=\"x86-64-v3\"") && strstr(ir, "\"target-cpu\"=\"x86-64-v4\""),
            "the default build has no x86-64-v3/v4 kernel variants");
  cr_assert(strstr(ir, "@kiln_cpu_level = external global i32"), "no run-time choice of the variant");
  cr_assert(strstr(ir, "_l4(") && strstr(ir, "_l3("), "variant kernels are not named by level");
  free(ir);
  /* one variant only */
  ir = cnn_ir("--cpu-dispatch=x86-64-v4", NULL);
  cr_assert(strstr(ir, "\"target-cpu\"=\"x86-64-v4\"") && !strstr(ir, "\"target-cpu\"=\"x86-64-v3\""));
  free(ir);
  /* none: with the option, with a CPU given, for another target */
  const char *none[][2] = {{"--cpu-dispatch=none", NULL}, {"--cpu=x86-64-v3", NULL},
                           {"--target=aarch64-linux-gnu", NULL}};
  for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
    ir = cnn_ir(none[i][0], none[i][1]);
    cr_assert(!strstr(ir, "\"target-cpu\"") && !strstr(ir, "kiln_cpu_level"), "%s still dispatches", none[i][0]);
    free(ir);
  }
}

/* ---- run-time checks: a gather index out of range ends the run cleanly ---- */

Test(runtime_checks, gather_index_out_of_range) {
  char *dir = tu_tmpdir();
  char *exe = build_kg(dir, "g",
                       "module g\nvar i : i32[2] = [1, 5]\ngraph {\n  p = const<f32[5,2]>(1.0)\n  y = gather(p, i)\n}\n"
                       "program {\n  run y\n  print y\n}\n");
  char *run[] = {exe, NULL};
  tu_result r = tu_run(run, 30);
  cr_assert_eq(r.status, 1, "status %d\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "node 'y' (gather): gather index out of range [0, 5) for axis 0"), "%s", r.err);
  tu_free(&r);
  free(exe);
  tu_rmtree(dir);
  free(dir);
}
