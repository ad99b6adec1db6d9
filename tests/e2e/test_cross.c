/* test_cross.c — cross-compilation under emulation (docs/cross.md).
 *
 * Every examples/NAME.kg with a NAME.expected is built with
 * `kiln build --target` for aarch64-linux-gnu, riscv64-linux-gnu and
 * riscv64-linux-gnu with the vector extension (--features +m,+a,+f,+d,+c,+v),
 * run once under qemu-user from the repository root (the digits examples
 * read the .npy files in build/digits), and its output compared with NAME.expected:
 * lines exactly, except that numbers printed as floats (with a '.', an
 * exponent, inf or nan) may differ by a relative CROSS_RTOL (absolute
 * CROSS_ATOL near zero).  Also: --static binaries run without the target's
 * libraries, --emit for a target, and the errors for an unknown triple, a
 * missing cross compiler and --blas=openblas.
 *
 * qemu is called explicitly (binfmt is not assumed):
 *   qemu-aarch64 -L /usr/aarch64-linux-gnu PROG
 *   qemu-riscv64 -L /usr/riscv64-linux-gnu [-cpu rv64,v=true,vlen=128] PROG */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"

#define CROSS_RTOL 1e-4
#define CROSS_ATOL 1e-6

typedef struct cross_param {
  char path[256];
  char triple[32];   /* Debian's name, e.g. aarch64-linux-gnu */
  char arch[16];     /* qemu-ARCH */
  char features[64]; /* --features, or "" for the target's default */
  char qemu_cpu[64]; /* qemu -cpu, or "" */
} cross_param;

static const cross_param configs[] = {
    {"", "aarch64-linux-gnu", "aarch64", "", ""},
    {"", "riscv64-linux-gnu", "riscv64", "", ""},
    {"", "riscv64-linux-gnu", "riscv64", "+m,+a,+f,+d,+c,+v", "rv64,v=true,vlen=128"},
};

Test(cross, compare_tolerance) {
  char gl[256], wl[256];
  const double r = CROSS_RTOL, a = CROSS_ATOL;
  cr_assert(tu_same_output("[0.0 2.3759 0.05 0.1]\n", "[0.0 2.3759 0.05 0.1]\n", r, a, gl, wl, sizeof gl));
  cr_assert(tu_same_output("[1.0 0.880797]\n", "[1.0 0.880798]\n", r, a, gl, wl, sizeof gl));
  cr_assert(tu_same_output("nan -inf 1e+10\n", "nan -inf 1.00001e+10\n", r, a, gl, wl, sizeof gl));
  cr_assert(!tu_same_output("0.2854\n", "0.2855\n", r, a, gl, wl, sizeof gl));
  cr_assert(!tu_same_output("step 10\n", "step 11\n", r, a, gl, wl, sizeof gl)); /* integers exactly */
  cr_assert(!tu_same_output("[1 2]\n3\n", "[1 2]\n", r, a, gl, wl, sizeof gl));
  cr_assert_str_eq(gl, "3");
  cr_assert(!tu_same_output("info\n", "inf\n", r, a, gl, wl, sizeof gl)); /* not a number inside a word */
}

/* ---- every example, built for each target and run under qemu ---- */

ParameterizedTestParameters(cross, examples) {
  int n = 0;
  char **files = tu_list("examples", ".kg", &n);
  size_t nc = sizeof configs / sizeof *configs;
  cross_param *p = cr_malloc(sizeof(cross_param) * (size_t)(n ? n : 1) * nc);
  size_t k = 0;
  for (int i = 0; i < n; i++) {
    for (size_t c = 0; c < nc; c++) {
      p[k] = configs[c];
      snprintf(p[k].path, sizeof p[k].path, "%s", files[i]);
      k++;
    }
    free(files[i]);
  }
  free(files);
  return cr_make_param_array(cross_param, p, k, tu_free_params);
}

/* A module that opens a TensorBoard event file (`summary "LOGDIR"` in its
 * program) needs protobuf-c, which the cross runtimes are built without. */
static bool writes_event_file(const char *src) {
  for (const char *s = src; (s = strstr(s, "summary \"")); s++) {
    const char *b = s;
    while (b > src && (b[-1] == ' ' || b[-1] == '\t')) b--;
    if (b == src || b[-1] == '\n') return true;
  }
  return false;
}

/* The name of a config in messages: "riscv64-linux-gnu +m,+a,+f,+d,+c,+v". */
static const char *config_name(const cross_param *p, char *buf, size_t cap) {
  snprintf(buf, cap, "%s%s%s", p->triple, *p->features ? " " : "", p->features);
  return buf;
}

/* qemu's command line for prog: -L SYSROOT unless static, -cpu if given. */
static void qemu_argv(const cross_param *p, const char *prog, bool with_sysroot, char *qemu, char *sysroot,
                      char **argv) {
  int n = 0;
  sprintf(qemu, "qemu-%s", p->arch);
  sprintf(sysroot, "/usr/%s", p->triple);
  argv[n++] = qemu;
  if (with_sysroot) argv[n++] = "-L", argv[n++] = sysroot;
  if (*p->qemu_cpu) argv[n++] = "-cpu", argv[n++] = (char *)p->qemu_cpu;
  argv[n++] = (char *)prog;
  argv[n] = NULL;
}

/* kiln build --target=TRIPLE [--features=F] [extra] SRC -o OUT */
static tu_result build_for(const cross_param *p, const char *src, const char *out, const char *extra) {
  char target[64], features[96];
  snprintf(target, sizeof target, "--target=%s", p->triple);
  snprintf(features, sizeof features, "--features=%s", p->features);
  char *argv[10];
  int n = 0;
  argv[n++] = (char *)tu_kiln();
  argv[n++] = "build";
  argv[n++] = target;
  if (*p->features) argv[n++] = features;
  if (extra) argv[n++] = (char *)extra;
  argv[n++] = (char *)src;
  argv[n++] = "-o";
  argv[n++] = (char *)out;
  argv[n] = NULL;
  /* not the host's $KILN_LDFLAGS (sanitizer flags): the cross runtimes are built without sanitizers */
  unsetenv("KILN_LDFLAGS");
  return tu_run(argv, 300);
}

ParameterizedTest(cross_param *p, cross, examples, .timeout = 600) {
  char cfg[128];
  config_name(p, cfg, sizeof cfg);
  char expected_path[300];
  snprintf(expected_path, sizeof expected_path, "%.*s.expected", (int)(strlen(p->path) - 3), p->path);
  char *expected = tu_read_file(expected_path, NULL);
  if (!expected) cr_skip_test("%s has no .expected file (a library-style module)", p->path);
  tu_need_cross_tools(p->triple, p->arch);
  char *src = tu_read_file(p->path, NULL);
  cr_assert(src, "cannot read %s", p->path);
  bool no_events = writes_event_file(src);
  free(src);
  /* train_digits_cnn with RVV: ~100 s under qemu 7.2's vector emulation */
  if (*p->qemu_cpu && strstr(p->path, "train_digits_cnn") && !getenv("KILN_CROSS_SLOW"))
    cr_skip_test("%s for %s takes about 100 s under qemu's RVV emulation; set KILN_CROSS_SLOW=1 to run it "
                 "(it is run without +v)",
                 p->path, cfg);

  bool was_sanitized = tu_sanitized();
  char *dir = tu_tmpdir();
  char exe[512];
  snprintf(exe, sizeof exe, "%s/prog", dir);
  tu_result r = build_for(p, p->path, exe, NULL);
  cr_assert_eq(r.status, 0, "kiln build %s for %s failed:\n%s", p->path, cfg, r.err);
  tu_free(&r);
  if (was_sanitized) {
    tu_rmtree(dir);
    cr_skip_test("%s built for %s; not run under qemu again in the sanitizer pass (make test runs it)", p->path,
                 cfg);
  }
  char qemu[64], sysroot[64], *argv[8];
  qemu_argv(p, exe, true, qemu, sysroot, argv);
  r = tu_run(argv, 300);
  if (no_events) {
    cr_assert_eq(r.status, 1, "%s for %s: expected exit status 1 (no event files), got %d:\n%s", p->path, cfg,
                 r.status, r.err);
    cr_assert(strstr(r.err, "built without protobuf-c"), "%s for %s: no clear error about protobuf-c:\n%s", p->path,
              cfg, r.err);
    tu_free(&r);
    tu_rmtree(dir);
    cr_skip_test("%s writes a TensorBoard event file, which needs protobuf-c; the cross runtime is built without it "
                 "(Debian 12 has no protobuf-c for %s): checked that it fails with the runtime's clear error, output "
                 "not compared",
                 p->path, p->triple);
  }
  cr_assert_eq(r.status, 0, "%s for %s exited %d under %s:\n%s", p->path, cfg, r.status, qemu, r.err);
  char gl[512], wl[512];
  cr_assert(tu_same_output(r.out, expected, CROSS_RTOL, CROSS_ATOL, gl, wl, sizeof gl),
            "%s for %s differs from %s (floats within %g relative):\n  got:      %s\n  expected: %s\nfull output:\n%s",
            p->path, cfg, expected_path, CROSS_RTOL, gl, wl, r.out);
  tu_free(&r);
  free(expected);
  tu_rmtree(dir);
  free(dir);
}

/* ---- --static: nothing needed from the target's sysroot ---- */

/* The ELF machine (e_machine) of a file, and whether it asks for a dynamic
 * loader (a PT_INTERP program header); little-endian ELF64 only. */
static bool elf_info(const char *path, int *machine, bool *interp) {
  size_t len = 0;
  unsigned char *f = (unsigned char *)tu_read_file(path, &len);
  if (!f || len < 64 || memcmp(f, "\177ELF", 4) || f[4] != 2 || f[5] != 1) {
    free(f);
    return false;
  }
  uint64_t phoff;
  uint16_t phentsize, phnum, mach;
  memcpy(&mach, f + 18, 2);
  memcpy(&phoff, f + 32, 8);
  memcpy(&phentsize, f + 54, 2);
  memcpy(&phnum, f + 56, 2);
  *machine = mach;
  *interp = false;
  for (uint16_t i = 0; i < phnum && phoff + (uint64_t)(i + 1) * phentsize <= len; i++) {
    uint32_t type;
    memcpy(&type, f + phoff + (uint64_t)i * phentsize, 4);
    if (type == 3 /* PT_INTERP */) *interp = true;
  }
  free(f);
  return true;
}

enum { EM_X86_64_ = 62, EM_AARCH64_ = 183, EM_RISCV_ = 243 };

static void static_run(const cross_param *p, int machine) {
  tu_need_cross_tools(p->triple, p->arch);
  if (tu_sanitized()) cr_skip_test("the sanitizer pass builds no static executables");
  char *expected = tu_read_file("examples/train_step.expected", NULL);
  cr_assert(expected);
  char *dir = tu_tmpdir();
  char exe[512];
  snprintf(exe, sizeof exe, "%s/prog", dir);
  tu_result r = build_for(p, "examples/train_step.kg", exe, "--static");
  cr_assert_eq(r.status, 0, "kiln build --static for %s failed:\n%s", p->triple, r.err);
  tu_free(&r);
  int mach = 0;
  bool interp = true;
  cr_assert(elf_info(exe, &mach, &interp), "%s is not a little-endian ELF64 file", exe);
  cr_assert_eq(mach, machine, "e_machine %d, expected %d", mach, machine);
  cr_assert(!interp, "the --static executable asks for a dynamic loader (PT_INTERP)");
  char qemu[64], sysroot[64], *argv[8];
  qemu_argv(p, exe, false, qemu, sysroot, argv); /* no -L: the binary needs nothing */
  r = tu_run(argv, 300);
  cr_assert_eq(r.status, 0, "static train_step for %s exited %d:\n%s", p->triple, r.status, r.err);
  char gl[512], wl[512];
  cr_assert(tu_same_output(r.out, expected, CROSS_RTOL, CROSS_ATOL, gl, wl, sizeof gl),
            "got: %s\nexpected: %s", gl, wl);
  tu_free(&r);
  free(expected);
  tu_rmtree(dir);
  free(dir);
}

Test(cross, static_aarch64, .timeout = 600) { static_run(&configs[0], EM_AARCH64_); }
Test(cross, static_riscv64, .timeout = 600) { static_run(&configs[1], EM_RISCV_); }

Test(cross, static_host) {
  if (tu_sanitized()) cr_skip_test("static linking does not mix with the sanitizer runtimes");
  char *dir = tu_tmpdir();
  char exe[512];
  snprintf(exe, sizeof exe, "%s/prog", dir);
  /* train_step multiplies f32 matrices: OpenBLAS is linked statically too */
  char *argv[] = {(char *)tu_kiln(), "build", "--static", "examples/train_step.kg", "-o", exe, NULL};
  tu_result r = tu_run(argv, 300);
  cr_assert_eq(r.status, 0, "kiln build --static failed:\n%s", r.err);
  tu_free(&r);
  int mach = 0;
  bool interp = true;
  cr_assert(elf_info(exe, &mach, &interp));
  cr_assert(!interp, "the --static executable asks for a dynamic loader (PT_INTERP)");
  char *run[] = {exe, NULL};
  r = tu_run(run, 60);
  char *expected = tu_read_file("examples/train_step.expected", NULL);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, expected);
  free(expected);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}

/* --cpu for a target: a named Arm core */
Test(cross, cpu_cortex_a72, .timeout = 300) {
  const cross_param *p = &configs[0];
  tu_need_cross_tools(p->triple, p->arch);
  if (tu_sanitized()) cr_skip_test("not run under qemu again in the sanitizer pass");
  char *dir = tu_tmpdir();
  char exe[512];
  snprintf(exe, sizeof exe, "%s/prog", dir);
  tu_result r = build_for(p, "examples/train_step.kg", exe, "--cpu=cortex-a72");
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  char qemu[64], sysroot[64], *argv[8];
  qemu_argv(p, exe, true, qemu, sysroot, argv);
  r = tu_run(argv, 300);
  char *expected = tu_read_file("examples/train_step.expected", NULL);
  char gl[512], wl[512];
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(tu_same_output(r.out, expected, CROSS_RTOL, CROSS_ATOL, gl, wl, sizeof gl),
            "got: %s\nexpected: %s", gl, wl);
  free(expected);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}

/* ---- --emit for a target shows the target's code ---- */

static void emit_obj(const char *triple, int machine) {
  char *dir = tu_tmpdir();
  char obj[512], target[64];
  snprintf(obj, sizeof obj, "%s/m.o", dir);
  snprintf(target, sizeof target, "--target=%s", triple);
  char *argv[] = {(char *)tu_kiln(), "build", "--emit=obj", target, "examples/train_step.kg", "-o", obj, NULL};
  tu_result r = tu_run(argv, 120);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  int mach = 0;
  bool interp;
  cr_assert(elf_info(obj, &mach, &interp), "not an ELF64 object");
  cr_assert_eq(mach, machine, "%s: e_machine %d, expected %d", triple, mach, machine);
  char *ll[] = {(char *)tu_kiln(), "build", "--emit=opt-llvm", target, "examples/train_step.kg", NULL};
  r = tu_run(ll, 120);
  cr_assert_eq(r.status, 0, "%s", r.err);
  char want[128];
  snprintf(want, sizeof want, "target triple = \"%.*s-unknown-linux-gnu\"", (int)strcspn(triple, "-"), triple);
  cr_assert(strstr(r.out, want), "--emit=opt-llvm for %s lacks '%s'", triple, want);
  /* the generated GEMM, not cblas */
  cr_assert(!strstr(r.out, "cblas_sgemm"), "--emit=opt-llvm for %s calls cblas_sgemm", triple);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}

Test(cross, emit_aarch64) { emit_obj("aarch64-linux-gnu", EM_AARCH64_); }
Test(cross, emit_riscv64) { emit_obj("riscv64-linux-gnu", EM_RISCV_); }

/* ---- bad input ---- */

Test(cross, unknown_triple) {
  char *argv[] = {(char *)tu_kiln(), "build", "--target=foo-bar-baz", "examples/fifo_queue.kg", "-o", "/dev/null",
                  NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 1, "exit status %d:\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "kiln: error: unknown target 'foo-bar-baz'"), "%s", r.err);
  tu_free(&r);
}

/* A PATH without the cross compiler: kiln says which Debian package to
 * install.  (kiln itself is run by its path, build/kiln.) */
static void missing_toolchain(const char *triple, const char *debarch) {
  char *dir = tu_tmpdir();
  char exe[512], target[64];
  snprintf(exe, sizeof exe, "%s/prog", dir);
  snprintf(target, sizeof target, "--target=%s", triple);
  char *saved = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
  char *argv[] = {(char *)tu_kiln(), "build", target, "examples/fifo_queue.kg", "-o", exe, NULL};
  setenv("PATH", dir, 1); /* an empty directory */
  tu_result r = tu_run(argv, 60);
  setenv("PATH", saved, 1);
  free(saved);
  char want[512];
  snprintf(want, sizeof want,
           "kiln: error: linking for %s needs the cross compiler %s-gcc: install the Debian package gcc-%s (and "
           "libc6-dev-%s-cross)",
           triple, triple, triple, debarch);
  cr_assert_eq(r.status, 1, "exit status %d:\n%s", r.status, r.err);
  cr_assert(strstr(r.err, want), "expected\n  %s\ngot:\n%s", want, r.err);
  cr_assert(access(exe, F_OK) != 0, "an executable was written anyway");
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}

Test(cross, missing_toolchain_aarch64) { missing_toolchain("aarch64-linux-gnu", "arm64"); }
Test(cross, missing_toolchain_riscv64) { missing_toolchain("riscv64-linux-gnu", "riscv64"); }

/* the vendor LLVM adds is dropped again: the same Debian names */
Test(cross, missing_toolchain_normalized_triple) {
  char *dir = tu_tmpdir();
  char *saved = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
  char exe[512];
  snprintf(exe, sizeof exe, "%s/prog", dir);
  char *argv[] = {(char *)tu_kiln(), "build", "--target=aarch64-unknown-linux-gnu", "examples/fifo_queue.kg", "-o",
                  exe, NULL};
  setenv("PATH", dir, 1);
  tu_result r = tu_run(argv, 60);
  setenv("PATH", saved, 1);
  free(saved);
  cr_assert_eq(r.status, 1, "%s", r.err);
  cr_assert(strstr(r.err, "needs the cross compiler aarch64-linux-gnu-gcc: install the Debian package "
                          "gcc-aarch64-linux-gnu"),
            "%s", r.err);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}

Test(cross, openblas_for_target) {
  char *dir = tu_tmpdir();
  char exe[512];
  snprintf(exe, sizeof exe, "%s/prog", dir);
  char *argv[] = {(char *)tu_kiln(), "build", "--target=aarch64-linux-gnu", "--blas=openblas",
                  "examples/train_step.kg", "-o", exe, NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 1, "exit status %d:\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "OpenBLAS for aarch64-linux-gnu is not available"), "%s", r.err);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}

/* a triple LLVM knows but kiln builds no runtime for */
Test(cross, target_without_runtime) {
  char *dir = tu_tmpdir();
  char exe[512];
  snprintf(exe, sizeof exe, "%s/prog", dir);
  char *argv[] = {(char *)tu_kiln(), "build", "--target=powerpc64le-linux-gnu", "examples/fifo_queue.kg", "-o", exe,
                  NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 1, "exit status %d:\n%s", r.status, r.err);
  cr_assert(strstr(r.err, "linking for powerpc64le-linux-gnu needs libkilnrt.a built for it"), "%s", r.err);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}
