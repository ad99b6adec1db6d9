/* test_gpu_devices.c — device placement and the GPU runtime path on a
 * machine without a GPU (docs/gpu.md).
 *
 *   gpu_place    the placement pass: copies in --emit=opt-graph, errors and
 *                soft placement, --device-map
 *   gpu_runtime  a GPU binary where there is no CUDA driver: a clear error,
 *                or (soft placement, KILN_GPU=0) its CPU code
 *   gpu_fake     the CUDA path itself against tests/gpu/fakecuda.c (a
 *                stand-in libcuda.so.1 that checks every launch against the
 *                PTX, and executes it where the binary exports the kernel's
 *                emulation): launches, a missing GPU, out of memory, a
 *                failing kernel, checkpoints of GPU-resident variables, and
 *                ops.kg computed through the launch tables with the tiled
 *                GEMM and with cuBLAS (tests/gpu/fakecublas.c) against NumPy
 *   gpu_tower    examples/multi_tower.kg on virtual CPU devices, concurrent,
 *                against one device and against one full-batch tower
 *   gpu_ptx      every kernel of the GPU programs is an .entry that ptxas
 *                assembles for sm_80 and sm_90
 *   gpu_abi      runtime/gpu_api.h's entry points against NVIDIA's cuda.h
 *                and cublas_api.h (tests/gpu/abi_check.c)
 *   gpu_emulated the kernels' own code run on the CPU (KILN_GPU_EMULATE)
 *                against NumPy: the GPU test modules, and every case of the
 *                NumPy reference files with its nodes on gpu:0 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"

static char *dir;

static void setup(void) {
  dir = tu_tmpdir();
  setenv("KILN_LIBCUDA", "/nonexistent/libcuda.so.1", 1); /* no driver, even on a GPU machine */
  unsetenv("KILN_GPU");
}

static void teardown(void) {
  tu_rmtree(dir);
  free(dir);
}

TestSuite(gpu_place, .init = setup, .fini = teardown);
TestSuite(gpu_runtime, .init = setup, .fini = teardown);
TestSuite(gpu_fake, .init = setup, .fini = teardown);
TestSuite(gpu_tower, .init = setup, .fini = teardown);
TestSuite(gpu_ptx, .init = setup, .fini = teardown);

static char *path_in(const char *name) {
  char *p = malloc(strlen(dir) + strlen(name) + 2);
  sprintf(p, "%s/%s", dir, name);
  return p;
}

/* kiln ARGS...: the result (status, out, err) */
static tu_result kiln(const char *a0, const char *a1, const char *a2, const char *a3, const char *a4,
                      const char *a5) {
  char *argv[] = {(char *)tu_kiln(), (char *)a0, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, NULL};
  return tu_run(argv, 180);
}

static tu_result run(const char *exe) {
  char *argv[] = {(char *)exe, NULL};
  return tu_run(argv, 60);
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
  return n;
}

/* ---- placement ---- */

Test(gpu_place, copies_where_data_crosses_devices) {
  tu_result r = kiln("emit", "--emit=opt-graph", "examples/gpu_elementwise.kg", NULL, NULL, NULL);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.out, "x/to_gpu0 = device_copy(x) : f32[8] @gpu:0"), "%s", r.out);
  cr_assert(strstr(r.out, "s = sigmoid(x/to_gpu0) : f32[8] @gpu:0"), "%s", r.out);
  cr_assert(strstr(r.out, "s/to_cpu0 = device_copy(s) : f32[8]\n"), "%s", r.out);
  /* one copy per value and device */
  cr_assert_eq(count(r.out, "= device_copy(x)"), 1, "%s", r.out);
  tu_free(&r);
}

Test(gpu_place, fetched_gpu_results_come_back) {
  tu_result r = kiln("emit", "--emit=opt-graph", "tests/gpu/kernels.kg", NULL, NULL, NULL);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.out, "k_add/to_cpu0 = device_copy(k_add)"), "%s", r.out);
  cr_assert(strstr(r.out, "-> (k_add/to_cpu0,"), "%s", r.out);
  tu_free(&r);
}

Test(gpu_place, no_kernel_is_an_error_naming_the_node) {
  char *f = tu_write(dir, "a.kg",
                     "module a\ngraph {\n  x = placeholder() : f32[4,3]\n  i = random_uniform() {maxval=9.0, seed=1} : i32[4] @gpu:0\n"
                     "  y = relu(x) @gpu:0\n}\nentry f(x) -> (i, y)\n");
  tu_result r = kiln("check", f, NULL, NULL, NULL, NULL);
  cr_assert_eq(r.status, 1);
  cr_assert(strstr(r.err, "a.kg:4:3: error: 'i' (random_uniform) has no GPU kernel yet; place it on the CPU, or build with "
                          "--soft-placement"), "%s", r.err);
  tu_free(&r);
  r = kiln("emit", "--emit=opt-graph", "--soft-placement", f, NULL, NULL);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.err, "note: 'i' (random_uniform) has no GPU kernel: placed on the CPU instead of gpu:0 (--soft-placement)"),
            "%s", r.err);
  cr_assert(strstr(r.out, "i = random_uniform() {maxval=9.0, seed=1} : i32[4]\n"), "%s", r.out);
  cr_assert(strstr(r.out, "y = relu(x/to_gpu0) : f32[4,3] @gpu:0"), "%s", r.out);
  tu_free(&r);
  free(f);
}

Test(gpu_place, writers_follow_their_variable) {
  char *f = tu_write(dir, "v.kg",
                     "module v\nvar w : f32[4] = ones @gpu:0\ngraph {\n  d = placeholder() : f32[4]\n"
                     "  u = assign_add(w, d)\n}\nentry f(d) -> (u)\n");
  tu_result r = kiln("emit", "--emit=opt-graph", f, NULL, NULL, NULL);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.out, "u = assign_add(w, d/to_gpu0) : f32[4] @gpu:0"), "%s", r.out);
  cr_assert(strstr(r.out, "u/to_cpu0 = device_copy(u)"), "%s", r.out);
  tu_free(&r);
  free(f);
}

Test(gpu_place, device_map) {
  tu_result r = kiln("emit", "--emit=opt-graph", "--device-map=gpu=cpu", "examples/gpu_elementwise.kg", NULL, NULL);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.out, "s = sigmoid(x/to_cpu0) : f32[8] @cpu:0") || strstr(r.out, "s = sigmoid(x) : f32[8] @cpu:0"),
            "%s", r.out);
  cr_assert(!strstr(r.out, "@gpu"), "%s", r.out);
  tu_free(&r);
  r = kiln("emit", "--emit=opt-graph", "--device-map=tpu=cpu", "examples/gpu_elementwise.kg", NULL, NULL);
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "bad --device-map item 'tpu=cpu'"), "%s", r.err);
  tu_free(&r);
}

/* ---- the runtime without a GPU ---- */

static char *build(const char *kg, const char *flag, const char *name) {
  char *exe = path_in(name);
  tu_result r = flag ? kiln("build", flag, kg, "-o", exe, NULL) : kiln("build", kg, "-o", exe, NULL, NULL);
  cr_assert_eq(r.status, 0, "kiln build %s %s:\n%s", flag ? flag : "", kg, r.err);
  tu_free(&r);
  return exe;
}

/* kg built with KILN_GPU_EMULATE=1 and -rdynamic, so the stand-in driver
 * can execute its kernels through the exported emulations. */
static char *build_emulated(const char *kg, const char *flag, const char *name) {
  char *exe = path_in(name);
  const char *ld = getenv("KILN_LDFLAGS");
  char *saved = ld ? strdup(ld) : NULL, flags[512];
  snprintf(flags, sizeof flags, "%s -rdynamic", saved ? saved : ""); /* keep the sanitizer builds' flags */
  setenv("KILN_GPU_EMULATE", "1", 1);
  setenv("KILN_LDFLAGS", flags, 1);
  tu_result r = flag ? kiln("build", flag, kg, "-o", exe, NULL) : kiln("build", kg, "-o", exe, NULL, NULL);
  unsetenv("KILN_GPU_EMULATE");
  if (saved) setenv("KILN_LDFLAGS", saved, 1);
  else unsetenv("KILN_LDFLAGS");
  free(saved);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  return exe;
}

Test(gpu_runtime, no_driver_is_a_clear_error) {
  char *exe = build("examples/gpu_elementwise.kg", NULL, "ge");
  tu_result r = run(exe);
  cr_assert_neq(r.status, 0);
  cr_assert_str_eq(r.out, "");
  cr_assert(strstr(r.err, "module 'gpu_elementwise' places nodes on a GPU, but there is no CUDA driver"), "%s", r.err);
  cr_assert(strstr(r.err, "--soft-placement"), "%s", r.err);
  tu_free(&r);
  free(exe);
}

Test(gpu_runtime, soft_placement_runs_the_cpu_code_and_says_so_once) {
  char *exe = build("examples/gpu_elementwise.kg", "--soft-placement", "ge");
  char *want = tu_read_file("examples/gpu_elementwise.expected", NULL);
  tu_result r = run(exe);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, want);
  cr_assert_eq(count(r.err, "running the GPU-placed nodes on the CPU (built with --soft-placement)"), 1, "%s", r.err);
  tu_free(&r);
  free(want);
  free(exe);
}

Test(gpu_runtime, kiln_gpu_0_asks_for_the_cpu) {
  char *exe = build("examples/gpu_elementwise.kg", NULL, "ge");
  setenv("KILN_GPU", "0", 1);
  char *want = tu_read_file("examples/gpu_elementwise.expected", NULL);
  tu_result r = run(exe);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, want);
  tu_free(&r);
  free(want);
  free(exe);
}

/* ---- the CUDA path against a stand-in driver ---- */

/* The tests whose stand-in driver runs the binaries' kernels in-process
 * (through their -rdynamic exports) or counts what they execute: under the
 * sanitizer builds (make test-sanitize) the binaries link the sanitizer
 * runtimes and the test doubles do not; make test runs them. */
static void skip_when_sanitized(void) {
  if (tu_sanitized())
    cr_skip_test("the stand-in libcuda/libcublas run kernels without sanitizers; make test runs this test");
}

static void fake_driver(void) {
  char *so = path_in("libcuda.so.1");
  char *cc[] = {"cc", "-std=c17", "-shared", "-fPIC", "tests/gpu/fakecuda.c", "-o", so, NULL};
  tu_result r = tu_run(cc, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  setenv("KILN_LIBCUDA", so, 1);
  setenv("FAKECUDA_LOG", "1", 1);
  free(so);
}

static long launches(const char *err) {
  const char *p = strstr(err, "fakecuda: ");
  return p ? strtol(p + 10, NULL, 10) : -1;
}

Test(gpu_fake, every_launch_matches_its_kernel) {
  skip_when_sanitized();
  char *exe = build("examples/multi_tower.kg", NULL, "mt");
  fake_driver();
  setenv("FAKECUDA_DEVICES", "2", 1);
  tu_result r = run(exe);
  cr_assert_eq(r.status, 0, "%s", r.err);
  /* 100 steps, both towers' kernels every step */
  cr_assert_gt(launches(r.err), 1000, "%s", r.err);
  cr_assert(!strstr(r.err, "not device memory") && !strstr(r.err, "outside device memory"), "%s", r.err);
  tu_free(&r);
  free(exe);
}

Test(gpu_fake, a_missing_gpu_is_named) {
  char *exe = build("examples/multi_tower.kg", NULL, "mt");
  fake_driver();
  setenv("FAKECUDA_DEVICES", "1", 1);
  tu_result r = run(exe);
  cr_assert_neq(r.status, 0);
  cr_assert(strstr(r.err, "gpu:1 is not available (this machine has 1 GPU)"), "%s", r.err);
  tu_free(&r);
  free(exe);
  /* with soft placement the binary runs its CPU code instead */
  exe = build("examples/multi_tower.kg", "--soft-placement", "mt_soft");
  char *want = tu_read_file("examples/multi_tower.expected", NULL);
  r = run(exe);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, want);
  cr_assert(strstr(r.err, "gpu:1 is not available (this machine has 1 GPU); running the GPU-placed nodes on the CPU"),
            "%s", r.err);
  tu_free(&r);
  free(want);
  free(exe);
}

/* A library that is no CUDA driver (it exports none of the entry points,
 * runtime/gpu_api.h): the first missing symbol is named. */
Test(gpu_fake, a_driver_without_the_entry_points_is_named) {
  char *src = tu_write(dir, "empty.c", "int kiln_not_a_driver;\n"), *so = path_in("libcuda.so.1");
  char *cc[] = {"cc", "-shared", "-fPIC", src, "-o", so, NULL};
  tu_result r = tu_run(cc, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  setenv("KILN_LIBCUDA", so, 1);
  char *exe = build("examples/gpu_elementwise.kg", NULL, "ge");
  r = run(exe);
  cr_assert_neq(r.status, 0);
  cr_assert(strstr(r.err, "the CUDA driver lacks cuInit (too old?)"), "%s", r.err);
  tu_free(&r);
  free(exe), free(so), free(src);
}

Test(gpu_fake, out_of_memory_names_the_device) {
  char *exe = build("examples/gpu_elementwise.kg", NULL, "ge");
  fake_driver();
  setenv("FAKECUDA_OOM", "1", 1);
  tu_result r = run(exe);
  cr_assert_neq(r.status, 0);
  cr_assert(strstr(r.err, "out of memory on gpu:0"), "%s", r.err);
  tu_free(&r);
  free(exe);
}

Test(gpu_fake, a_failing_kernel_names_its_node) {
  char *exe = build("examples/gpu_elementwise.kg", NULL, "ge");
  fake_driver();
  setenv("FAKECUDA_FAIL", "gpu_elementwise_t", 1);
  tu_result r = run(exe);
  cr_assert_neq(r.status, 0);
  cr_assert(strstr(r.err, "the GPU kernel of node 't' on gpu:0 failed to launch: CUDA_ERROR_LAUNCH_FAILED"), "%s",
            r.err);
  tu_free(&r);
  free(exe);
}

/* ---- kernels executed through the fake driver ---- */

static char *fake_cublas(void) {
  char *so = path_in("libcublas.so.12");
  char *cc[] = {"cc", "-std=c17", "-shared", "-fPIC", "tests/gpu/fakecublas.c", "-o", so, NULL};
  tu_result r = tu_run(cc, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  return so;
}

static void fake_ops(bool cublas) {
  skip_when_sanitized();
  fake_driver();
  char *so = cublas ? fake_cublas() : NULL;
  if (so) setenv("KILN_LIBCUBLAS", so, 1);
  else unsetenv("KILN_LIBCUBLAS");
  const char *py = getenv("PYTHON");
  if (!py || !*py) py = "/usr/bin/python3";
  char *work = path_in("fake");
  char *argv[] = {(char *)py, "tests/gpu/run_kernels.py", "--fake", (char *)tu_kiln(), "tests/gpu/ops.kg", work, NULL};
  tu_result r = tu_run(argv, 300);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, " passed, 0 failed"), "%s", r.out);
  cr_assert(strstr(r.err, cublas ? "GEMM through cuBLAS" : "GEMM through kiln's tiled kernel"), "%s", r.err);
  unsetenv("KILN_LIBCUBLAS");
  tu_free(&r);
  free(work);
  free(so);
}

Test(gpu_fake, ops_with_the_tiled_gemm) { fake_ops(false); }
Test(gpu_fake, ops_with_cublas) { fake_ops(true); }

/* --device=gpu:0 puts a whole imported model on the GPU (TF's outermost
 * tf.device): the exported CNN (tests/onnx_models/export.py) through the
 * CUDA path gives the CPU build's output. */
Test(gpu_fake, an_onnx_model_on_the_gpu_with_device) {
  skip_when_sanitized();
  const char *model = "build/onnx-models/cnn_b1.onnx", *x = "build/onnx-models/cnn_b1.x.npy";
  if (access(model, R_OK) || access(x, R_OK)) cr_skip_test("%s is absent (make test exports it with torch)", model);
  tu_result g = kiln("emit", "--emit=opt-graph", "--device=gpu:0", model, NULL, NULL);
  cr_assert_eq(g.status, 0, "%s", g.err);
  cr_assert(strstr(g.out, "= conv2d(") && strstr(g.out, "] @gpu:0\n") && !strstr(g.out, "has no GPU kernel"), "%s", g.err);
  tu_free(&g);
  char *cpu = build(model, NULL, "cnn_cpu"), *gpu = build_emulated(model, "--device=gpu:0", "cnn_gpu");
  char *yc = path_in("yc.npy"), *yg = path_in("yg.npy"), feed[600], fc[600], fg[600];
  snprintf(feed, sizeof feed, "x=%s", x);
  snprintf(fc, sizeof fc, "y=%s", yc);
  snprintf(fg, sizeof fg, "y=%s", yg);
  char *run_cpu[] = {cpu, "--run", "main", "--feed", feed, "--fetch", fc, NULL};
  tu_result r = tu_run(run_cpu, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  fake_driver();
  setenv("KILN_CUBLAS", "0", 1);
  char *run_gpu[] = {gpu, "--run", "main", "--feed", feed, "--fetch", fg, NULL};
  r = tu_run(run_gpu, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_gt(launches(r.err), 5, "%s", r.err);
  tu_free(&r);
  long nc = 0, ng = 0;
  float *a = tu_read_npy_f32(yc, &nc), *b = tu_read_npy_f32(yg, &ng);
  cr_assert(a && b && nc == 10 && ng == nc);
  for (long i = 0; i < nc; i++) cr_assert_float_eq(a[i], b[i], 1e-5, "logit %ld: cpu %g, gpu %g", i, a[i], b[i]);
  free(a), free(b), free(yc), free(yg), free(cpu), free(gpu);
}

Test(gpu_place, a_bad_device_is_a_usage_error) {
  tu_result r = kiln("check", "--device=tpu:0", "examples/counter.kg", NULL, NULL, NULL);
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "bad --device 'tpu:0' (expected cpu:N or gpu:N)"), "%s", r.err);
  tu_free(&r);
}

/* tests/gpu/run.sh, the script for a machine with a GPU, is only ever run
 * there: its GPU checks run here against the stand-in driver, so the script
 * itself does not rot (its --stand-in mode skips the unit tests and the
 * timings). */
Test(gpu_fake, run_sh_passes_against_the_stand_in) {
  skip_when_sanitized();
  setenv("KILN", tu_kiln(), 1);
  char *argv[] = {"bash", "tests/gpu/run.sh", "--stand-in", NULL};
  tu_result r = tu_run(argv, 400);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, " passed, 0 failed in "), "%s", r.out);
  cr_assert_eq(count(r.out, "\nPASS  "), 10, "%s", r.out);
  tu_free(&r);
}

/* Variables trained on the GPU: `save` writes the device's values (and the
 * step counter, also on the GPU, names the file), `restore` updates the
 * device's copy, and training continues from it. */
static const char gtrain_kg[] =
    "module gtrain\n"
    "var global_step : i64[] = 0 {trainable=false} @gpu:0\n"
    "var w : f32[2,2] = %s @gpu:0\n"
    "graph {\n"
    "  target = const<f32[2,2]>([[0.5, -1.0], [2.0, 0.25]])\n"
    "  device gpu:0 {\n"
    "    d = sub(w, target)\n"
    "    g = gradients(sum(mul(d, d)), w)\n"
    "    step = apply_gradient_descent(w, const<f32[]>(0.25), g)\n"
    "    inc = assign_add(global_step, const<i64[]>(1)) after [step]\n"
    "    train = no_op() after [inc]\n"
    "  }\n"
    "}\n"
    "program {\n%s"
    "  run w, global_step\n  print w\n  print global_step\n"
    "}\n";

static char *build_gtrain(const char *name, const char *init, const char *prog) {
  char kg[4096], file[64];
  snprintf(kg, sizeof kg, gtrain_kg, init, prog);
  snprintf(file, sizeof file, "%s.kg", name);
  char *f = tu_write(dir, file, kg);
  char *exe = build_emulated(f, NULL, name);
  tu_result g = kiln("emit", "--emit=opt-graph", f, NULL, NULL, NULL);
  cr_assert(strstr(g.out, "step/assign_sub = assign_map(w, ") && strstr(g.out, "] @gpu:0\n"), "%s", g.out);
  tu_free(&g);
  free(f);
  return exe;
}

/* The random ops' kernels draw the CPU's stream: tests/gpu/random.kg run
 * through the CUDA path prints random.expected (the CPU's output) exactly,
 * both draws: the launches advance the counters as the CPU does. */
Test(gpu_fake, random_draws_match_the_cpu) {
  skip_when_sanitized();
  char *exe = build_emulated("tests/gpu/random.kg", NULL, "random");
  fake_driver();
  tu_result r = run(exe);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_eq(launches(r.err), 8, "%s", r.err);
  char *want = tu_read_file("tests/gpu/random.expected", NULL);
  cr_assert_str_eq(r.out, want);
  free(want);
  tu_free(&r);
  free(exe);
}

/* examples/gpu_train_cnn.kg trained through the CUDA path, every kernel
 * (the conv, pool and depthwise gradients, the Momentum updates) executed
 * by the stand-in driver: the losses of its CPU code within rounding. */
Test(gpu_fake, a_cnn_trains_on_the_gpu) {
  skip_when_sanitized();
  char *exe = build_emulated("examples/gpu_train_cnn.kg", NULL, "cnn");
  fake_driver();
  setenv("KILN_CUBLAS", "0", 1);
  tu_result r = run(exe);
  cr_assert_eq(r.status, 0, "%s", r.err);
  long n = launches(r.err);
  cr_assert_gt(n, 3600, "%s", r.err); /* 120 training steps of about 40 kernels */
  cr_assert(strstr(r.err, "launches (") && !strstr(r.err, "on the CPU"), "%s", r.err);
  char *want = tu_read_file("examples/gpu_train_cnn.expected", NULL);
  char gl[256], wl[256];
  cr_assert(tu_same_output(r.out, want, 1e-4, 1e-6, gl, wl, sizeof gl), "got  %s\nwant %s", gl, wl);
  free(want);
  tu_free(&r);
  free(exe);
}

Test(gpu_fake, checkpoints_of_gpu_variables) {
  skip_when_sanitized();
  fake_driver();
  char prog[1024];
  snprintf(prog, sizeof prog, "  repeat 3 {\n    run train\n  }\n  save \"%s/ckpt/model\" step global_step\n", dir);
  char *trainer = build_gtrain("trainer", "[[1.0, 2.0], [3.0, 4.0]]", prog);
  snprintf(prog, sizeof prog,
           "  restore \"%s/ckpt/model-3\"\n  run w, global_step\n  print w\n  print global_step\n  run train\n", dir);
  char *restorer = build_gtrain("restorer", "zeros", prog);
  tu_result r = run(trainer);
  cr_assert_eq(r.status, 0, "%s", r.err);
  const char *trained = "[[0.5625 -0.625]\n [2.125 0.71875]]\n3\n";
  cr_assert_str_eq(r.out, trained, "%s", r.err);
  cr_assert(strstr(r.err, "launches (") && !strstr(r.err, "(0 executed)"), "%s", r.err);
  tu_free(&r);
  /* the file is model-3: the step was read from the GPU; its values are the trained ones */
  char *ck = path_in("ckpt/model-3.kckpt");
  cr_assert_eq(access(ck, R_OK), 0, "no %s", ck);
  free(ck);
  r = run(restorer);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, "[[0.5625 -0.625]\n [2.125 0.71875]]\n3\n[[0.53125 -0.8125]\n [2.0625 0.484375]]\n4\n",
                   "%s", r.err);
  tu_free(&r);
  /* the same binaries on the CPU (KILN_GPU=0) print the same */
  setenv("KILN_GPU", "0", 1);
  r = run(trainer);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, trained);
  tu_free(&r);
  free(trainer), free(restorer);
}

/* ---- towers on virtual CPU devices ---- */

Test(gpu_tower, concurrent_towers_match_one_device) {
  char *two = build("examples/multi_tower.kg", "--device-map=gpu=cpu", "two");
  char *one = build("examples/multi_tower.kg", "--device-map=gpu=cpu:0", "one");
  char *full = build("tests/gpu/single_tower.kg", NULL, "full");
  char *want = tu_read_file("examples/multi_tower.expected", NULL);
  tu_result a = run(two), b = run(one), c = run(full);
  cr_assert_eq(a.status, 0, "%s", a.err);
  cr_assert_eq(b.status, 0, "%s", b.err);
  cr_assert_eq(c.status, 0, "%s", c.err);
  cr_assert_str_eq(a.out, want);
  cr_assert_str_eq(b.out, want);
  /* one tower over the whole batch: the same losses within rounding */
  char *pa = a.out, *pc = c.out;
  int lines = 0;
  for (;;) {
    char *ea, *ec;
    double x = strtod(pa, &ea), y = strtod(pc, &ec);
    if (ea == pa || ec == pc) break;
    cr_assert(fabs(x - y) <= 1e-5 * fabs(y) + 1e-7, "loss %d: towers %g, one tower %g", lines, x, y);
    pa = ea, pc = ec, lines++;
  }
  cr_assert_eq(lines, 10);
  tu_free(&a), tu_free(&b), tu_free(&c);
  free(two), free(one), free(full), free(want);
}

Test(gpu_tower, devices_are_partitions) {
  tu_result r = kiln("emit", "--emit=llvm", "--device-map=gpu=cpu", "examples/multi_tower.kg", NULL, NULL);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.out, "__cpu1(ptr"), "no partition function for cpu:1");
  cr_assert(strstr(r.out, "call i32 @kiln_rt_run_parts("));
  cr_assert(strstr(r.out, "call i32 @kiln_rt_part_wait("));
  tu_free(&r);
  r = kiln("emit", "--emit=llvm", "--device-map=gpu=cpu:0", "examples/multi_tower.kg", NULL, NULL);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(!strstr(r.out, "kiln_rt_run_parts"));
  tu_free(&r);
}

/* cpu:0 dequeues what cpu:1 enqueues, with no edge between them: run one
 * after the other in schedule order (the dequeue first) this would block
 * forever; the devices run concurrently, so it finishes. */
Test(gpu_tower, devices_run_concurrently) {
  char *f = tu_write(dir, "c.kg",
                     "module c\nqueue q : fifo(capacity=2) of (f32[])\ngraph {\n"
                     "  a = dequeue(q) @cpu:0\n  b = enqueue(q, const<f32[]>(7.0)) @cpu:1\n"
                     "  s = add(a, const<f32[]>(1.0)) @cpu:0\n}\n"
                     "program {\n  repeat 3 {\n    run s, b\n    print s\n  }\n}\n");
  char *exe = build(f, NULL, "c");
  tu_result r = run(exe);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, "8.0\n8.0\n8.0\n");
  tu_free(&r);
  free(exe);
  free(f);
}

/* a failing device ends the run; the others stop waiting (no hang) */
Test(gpu_tower, a_failing_device_ends_the_run) {
  char *f = tu_write(dir, "e.kg",
                     "module e\nqueue q : fifo(capacity=2) of (f32[])\ngraph {\n"
                     "  a = dequeue(q) @cpu:1\n  b = add(a, const<f32[]>(1.0)) @cpu:1\n"
                     "  c = mul(b, const<f32[]>(2.0)) @cpu:0\n}\n"
                     "program {\n  close q\n  run c\n  print c\n}\n");
  char *exe = build(f, NULL, "e");
  tu_result r = run(exe);
  cr_assert_neq(r.status, 0);
  cr_assert_neq(r.status, 137, "the run hung");
  tu_free(&r);
  free(exe);
  free(f);
}

/* ---- PTX ---- */

/* Every GPU-placed node with a kernel in `kg`'s optimized graph is an
 * .entry of its PTX, which ptxas assembles for sm_80 and sm_90. */
static void entries_for(const char *kg) {
  const char *ptxas = getenv("PTXAS");
  if (!ptxas || !*ptxas) ptxas = "/usr/local/cuda/bin/ptxas";
  if (access(ptxas, X_OK)) cr_skip_test("ptxas not found (no CUDA toolkit at /usr/local/cuda; set PTXAS)");
  static const char *arch[] = {"sm_80", "sm_90"};
  for (int a = 0; a < 2; a++) {
    tu_result g = kiln("emit", "--emit=opt-graph", kg, NULL, NULL, NULL);
    cr_assert_eq(g.status, 0, "%s", g.err);
    const char *mod = strstr(g.out, "module ") + 7;
    char modname[128];
    snprintf(modname, sizeof modname, "%.*s", (int)strcspn(mod, "\n"), mod);
    char *ptx = path_in("k.ptx"), *cubin = path_in("k.cubin"), garch[32], parch[32];
    snprintf(garch, sizeof garch, "--gpu-arch=%s", arch[a]);
    snprintf(parch, sizeof parch, "-arch=%s", arch[a]);
    tu_result r = kiln("emit", "--emit=ptx", garch, kg, "-o", ptx);
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_free(&r);
    char *text = tu_read_file(ptx, NULL);
    int kernels = 0;
    for (char *line = strtok(g.out, "\n"); line; line = strtok(NULL, "\n")) {
      char name[256], op[64];
      if (line[0] != ' ' || !strstr(line, " @gpu:") || sscanf(line, " %255s = %63[a-z_0-9]", name, op) != 2) continue;
      if (!strcmp(op, "device_copy") || !strcmp(op, "reshape") || !strcmp(op, "expand_dims") ||
          !strcmp(op, "squeeze") || !strcmp(op, "no_op") || !strcmp(op, "stop_gradient") || !strcmp(op, "variable"))
        continue;
      char entry[400];
      int k = snprintf(entry, sizeof entry, ".entry %s_", modname);
      for (char *c = name; *c && k < (int)sizeof entry - 2; c++) entry[k++] = (*c == '/' || *c == '.') ? '_' : *c;
      entry[k++] = '(';
      entry[k] = 0;
      cr_assert(strstr(text, entry), "%s: no '%s' in the PTX for %s", kg, entry, arch[a]);
      kernels++;
    }
    cr_assert_gt(kernels, 0, "%s has no GPU kernels", kg);
    free(text);
    char *as[] = {(char *)ptxas, parch, ptx, "-o", cubin, NULL};
    r = tu_run(as, 180);
    cr_assert_eq(r.status, 0, "%s: ptxas %s:\n%s", kg, arch[a], r.err);
    tu_free(&r);
    tu_free(&g);
    free(ptx), free(cubin);
  }
}

Test(gpu_ptx, gpu_elementwise) { entries_for("examples/gpu_elementwise.kg"); }
Test(gpu_ptx, multi_tower) { entries_for("examples/multi_tower.kg"); }
Test(gpu_ptx, gpu_train_cnn) { entries_for("examples/gpu_train_cnn.kg"); }
Test(gpu_ptx, random) { entries_for("tests/gpu/random.kg"); }
Test(gpu_ptx, kernels) { entries_for("tests/gpu/kernels.kg"); }
Test(gpu_ptx, onnx_math) { entries_for("tests/gpu/onnx_math.kg"); }
Test(gpu_ptx, ops) { entries_for("tests/gpu/ops.kg"); }

/* ---- the kernels' code, run on the CPU (KILN_GPU_EMULATE) ---- */

static void emulate(const char *kg) {
  const char *py = getenv("PYTHON");
  if (!py || !*py) py = "/usr/bin/python3";
  char *work = path_in("emu");
  char *argv[] = {(char *)py, "tests/gpu/run_kernels.py", "--emulate", (char *)tu_kiln(), (char *)kg, work, NULL};
  tu_result r = tu_run(argv, 300);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, " passed, 0 failed"), "%s", r.out);
  tu_free(&r);
  free(work);
}

TestSuite(gpu_emulated, .init = setup, .fini = teardown);
Test(gpu_emulated, ops) { emulate("tests/gpu/ops.kg"); }
Test(gpu_emulated, kernels) { emulate("tests/gpu/kernels.kg"); }

/* ---- every NumPy reference case with its nodes on gpu:0 (refkit --gpu) ----
 * Each case file's module is built with its nodes placed on gpu:0 and soft
 * placement; its PTX must assemble with ptxas (one .entry per kernel node)
 * and every case must match NumPy with the kernels' own code, run through
 * the CUDA path against the stand-in driver (refkit --gpu=fake: launch
 * geometry, device memory, copies).  Under the sanitizers, whose binaries
 * the stand-in cannot run, the kernels' code runs in place of the CPU code
 * (--gpu=emulate).  `moved` is exactly the ops soft placement may leave on
 * the CPU: a kernel that goes missing fails the test. */
static void gpu_cases(const char *file, const char *moved) {
  const char *py = getenv("PYTHON");
  if (!py || !*py) py = "/usr/bin/python3";
  bool sanitized = tu_sanitized();
  if (!sanitized) fake_driver();
  char *argv[] = {(char *)py,       "tests/ref/refkit.py", sanitized ? "--gpu=emulate" : "--gpu=fake",
                  "--kiln",         (char *)tu_kiln(),     (char *)file,
                  NULL};
  tu_result r = tu_run(argv, 600);
  cr_assert_eq(r.status, 0, "%s:\n%s%s", file, r.out, r.err);
  cr_assert(strstr(r.out, " passed, 0 failed"), "%s printed no summary:\n%s", file, r.out);
  char want[256];
  snprintf(want, sizeof want, "moved to the CPU: %s\n", moved);
  cr_assert(strstr(r.out, want), "%s: expected '%s', got:\n%s", file, want, r.out);
  cr_assert(strstr(r.out, "kernels assemble") || strstr(r.out, "ptxas: skipped"), "%s:\n%s", file, r.out);
  tu_free(&r);
}

Test(gpu_emulated, cases_elementwise) { gpu_cases("tests/ref/cases_elementwise.py", "nothing"); }
Test(gpu_emulated, cases_reduce) { gpu_cases("tests/ref/cases_reduce.py", "nothing"); }
Test(gpu_emulated, cases_shape) { gpu_cases("tests/ref/cases_shape.py", "nothing"); }
Test(gpu_emulated, cases_linalg) { gpu_cases("tests/ref/cases_linalg.py", "nothing"); }
Test(gpu_emulated, cases_nn) { gpu_cases("tests/ref/cases_nn.py", "nothing"); }
Test(gpu_emulated, cases_conv_generated) { gpu_cases("tests/ref/cases_conv_generated.py", "nothing"); }
/* integer random_uniform (a rejection sampler) has no GPU kernel */
Test(gpu_emulated, cases_source) { gpu_cases("tests/ref/cases_source.py", "random_uniform"); }
Test(gpu_emulated, cases_train) { gpu_cases("tests/ref/cases_train.py", "nothing"); }
Test(gpu_emulated, cases_onnx_elementwise) { gpu_cases("tests/ref/cases_onnx_elementwise.py", "nothing"); }
Test(gpu_emulated, cases_onnx_reduce) { gpu_cases("tests/ref/cases_onnx_reduce.py", "nothing"); }
Test(gpu_emulated, grads_basic) { gpu_cases("tests/ref/grads_basic.py", "nothing"); }
Test(gpu_emulated, grads_nn) { gpu_cases("tests/ref/grads_nn.py", "nothing"); }
Test(gpu_emulated, grads_onnx_elementwise) { gpu_cases("tests/ref/grads_onnx_elementwise.py", "nothing"); }
Test(gpu_emulated, grads_onnx_reduce) { gpu_cases("tests/ref/grads_onnx_reduce.py", "nothing"); }

/* ---- the driver and cuBLAS entry points against NVIDIA's headers ---- */

static tu_result abi_compile(const char *inc, bool broken) {
  char *cc[] = {"cc", "-std=c17", "-fsyntax-only", "-I", (char *)inc, "-Iruntime", "tests/gpu/abi_check.c",
                broken ? "-DKILN_ABI_BROKEN" : NULL, NULL};
  return tu_run(cc, 60);
}

Test(gpu_abi, entry_points_match_the_cuda_headers) {
  const char *home = getenv("CUDA_HOME");
  char inc[512], h1[600], h2[600];
  snprintf(inc, sizeof inc, "%s/include", home && *home ? home : "/usr/local/cuda");
  snprintf(h1, sizeof h1, "%s/cuda.h", inc);
  snprintf(h2, sizeof h2, "%s/cublas_api.h", inc);
  if (access(h1, R_OK) || access(h2, R_OK))
    cr_skip_test("no CUDA headers in %s (cuda.h, cublas_api.h; set CUDA_HOME): the loaders' types are unchecked", inc);
  tu_result r = abi_compile(inc, false);
  cr_assert_eq(r.status, 0, "runtime/gpu_api.h disagrees with the CUDA headers:\n%s", r.err);
  tu_free(&r);
  /* and the check can fail: a wrong parameter list does not compile */
  r = abi_compile(inc, true);
  cr_assert_neq(r.status, 0);
  cr_assert(strstr(r.err, "cuMemAlloc_v2 is not declared as"), "%s", r.err);
  tu_free(&r);
}
