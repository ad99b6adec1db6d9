/* test_onnx_errors.c — the ONNX importer meeting bad models and options,
 * and `kiln import`'s .kg compiling to the same results.
 *
 * tests/onnx_errors/make_bad.py writes the models (with Debian's
 * python3-onnx) into a fresh temporary directory; each must fail to build
 * with status 1 (never a signal) and a message that names what is wrong:
 * the op and opset, the node, the input and its dimension, the file. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

static char *dir;

static const char *python(void) {
  const char *p = getenv("PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

static char *path_of(const char *name) { return tu_path(dir, name); }

static void setup(void) {
  dir = tu_tmpdir();
  char *argv[] = {(char *)python(), "tests/onnx_errors/make_bad.py", dir, NULL};
  tu_result r = tu_run(argv, 120);
  cr_assert_eq(r.status, 0, "make_bad.py failed:\n%s", r.err);
  tu_free(&r);
}

static void teardown(void) { tu_rmtree(dir); }

TestSuite(onnx_errors, .init = setup, .fini = teardown);

/* kiln build MODEL [extra options]: status 1 and `want` in the message. */
static void expect_error(const char *model, const char *want, const char *opt1, const char *opt2) {
  char *argv[] = {(char *)tu_kiln(), "build", path_of(model), "-o", path_of("out"), (char *)opt1, (char *)opt2, NULL};
  tu_result r = tu_run(argv, 120);
  cr_expect_eq(r.status, 1, "%s: status %d, want 1; stderr:\n%s", model, r.status, r.err);
  cr_expect(strstr(r.err, want) != NULL, "%s: message lacks '%s':\n%s", model, want, r.err);
  tu_free(&r);
}

Test(onnx_errors, truncated) { expect_error("truncated.onnx", "not a valid ONNX model", NULL, NULL); }
Test(onnx_errors, garbage) { expect_error("garbage.onnx", "not a valid ONNX model", NULL, NULL); }
Test(onnx_errors, empty) { expect_error("empty.onnx", "empty file", NULL, NULL); }
Test(onnx_errors, cycle) { expect_error("cycle.onnx", "the graph has a cycle through input", NULL, NULL); }
Test(onnx_errors, dangling) { expect_error("dangling.onnx", "input 'nowhere' is not a graph input", NULL, NULL); }
Test(onnx_errors, dynamic_dim) {
  expect_error("dynamic.onnx", "input 'x' has a dynamic dimension 'batch' (dimension 0)", NULL, NULL);
  expect_error("dynamic.onnx", "--input-shape x=d0,d1", NULL, NULL);
}
Test(onnx_errors, unsupported_dtype) { expect_error("float16.onnx", "unsupported data type float16", NULL, NULL); }
Test(onnx_errors, unknown_op) {
  expect_error("unknown_op.onnx", "node 'y' (FancyNewOp): unsupported ONNX op 'FancyNewOp' (opset 13)", NULL, NULL);
}
Test(onnx_errors, custom_domain) { expect_error("custom_domain.onnx", "unsupported ONNX op 'com.example.Relu'", NULL, NULL); }
Test(onnx_errors, external_missing) { expect_error("external_missing.onnx", "cannot open external data file", NULL, NULL); }
Test(onnx_errors, external_short) { expect_error("external_short.onnx", "is 10 bytes, but the tensor needs", NULL, NULL); }
Test(onnx_errors, runtime_shape) { expect_error("runtime_shape.onnx", "must be known at compile time", NULL, NULL); }
Test(onnx_errors, shape_mismatch) { expect_error("mismatch.onnx", "do not broadcast", NULL, NULL); }
Test(onnx_errors, shape_mismatch_in_variadic) {
  expect_error("mean_mismatch.onnx", "do not broadcast", NULL, NULL);
  expect_error("mean_mismatch.onnx", "while converting node 'y' (Mean)", NULL, NULL);
}
Test(onnx_errors, huge_initializer_without_data) {
  expect_error("huge_initializer.onnx", "initializer 'w': holds 0 values, but its shape needs 2147483648", NULL, NULL);
}
Test(onnx_errors, quantize_to_int32) {
  expect_error("quantize_int32.onnx", "quantizes only to uint8 or int8", NULL, NULL);
}
Test(onnx_errors, input_shape_wrong_rank) {
  expect_error("dynamic.onnx", "--input-shape x gives rank 3, but the model's input has rank 2", "--input-shape", "x=1,2,3");
}
Test(onnx_errors, input_shape_conflicts) {
  expect_error("dynamic.onnx", "dimension 1 is 3 in the model, not 4", "--input-shape", "x=2,4");
}
Test(onnx_errors, input_shape_unknown_name) {
  expect_error("good.onnx", "the model has no input named 'nope'", "--input-shape", "nope=1");
}
Test(onnx_errors, input_value_count) { expect_error("good.onnx", "--input-value x gives 2 values", "--input-value", "x=1,2"); }

/* A bad option value is a usage error (status 2) before any model is read. */
Test(onnx_errors, input_shape_not_numbers) {
  char *argv[] = {(char *)tu_kiln(), "build", path_of("good.onnx"), "--input-shape", "x=a,b", NULL};
  tu_result r = tu_run(argv, 60);
  cr_expect_eq(r.status, 2);
  cr_expect(strstr(r.err, "not a comma-separated list of numbers") != NULL, "%s", r.err);
  tu_free(&r);
}

/* Builds MODEL and runs it on x34.npy and the index file IDX: its status,
 * and what it printed (stdout, then stderr). */
static int run_indexed(const char *model, const char *idx, char **out) {
  char *exe = strdup(path_of("idx")), fx[700], fi[700];
  char *b[] = {(char *)tu_kiln(), "build", path_of(model), "-o", exe, NULL};
  tu_result r = tu_run(b, 120);
  cr_assert_eq(r.status, 0, "%s does not build:\n%s", model, r.err);
  tu_free(&r);
  snprintf(fx, sizeof fx, "x=%s", path_of("x34.npy"));
  snprintf(fi, sizeof fi, "i=%s", path_of(idx));
  char *run[] = {exe, "--run", "main", "--feed", fx, "--feed", fi, NULL};
  r = tu_run(run, 60);
  cr_assert(asprintf(out, "%s%s", r.out, r.err) > 0);
  int st = r.status;
  tu_free(&r);
  free(exe);
  return st;
}

/* An index out of range in its own dimension fails the run, even where its
 * flat offset would land inside the data; in-range (and negative) indices
 * give the right elements. */
Test(onnx_errors, gather_index_out_of_range_per_dimension) {
  char *out;
  cr_expect_eq(run_indexed("gathernd_idx.onnx", "nd_ok.npy", &out), 0, "%s", out);
  cr_expect(strstr(out, "[11.0]"), "GatherND x[2, -1] printed:\n%s", out);
  free(out);
  cr_expect_eq(run_indexed("gathernd_idx.onnx", "nd_bad.npy", &out), 1, "GatherND x[0, 5] of f32[3,4]:\n%s", out);
  cr_expect(strstr(out, "out of range"), "%s", out);
  free(out);
  cr_expect_eq(run_indexed("gather_elements_idx.onnx", "el_ok.npy", &out), 0, "%s", out);
  cr_expect(strstr(out, "[[0.0]") && strstr(out, "[7.0]") && strstr(out, "[9.0]]"), "GatherElements printed:\n%s", out);
  free(out);
  cr_expect_eq(run_indexed("gather_elements_idx.onnx", "el_bad.npy", &out), 1, "GatherElements column 4 of 4:\n%s", out);
  cr_expect(strstr(out, "out of range"), "%s", out);
  free(out);
}

/* Runs exe on feed x (f32[2,3]) and returns what it printed. */
static char *run_exe(const char *exe, const char *feed) {
  char fetch[700];
  snprintf(fetch, sizeof fetch, "x=%s", feed);
  char *argv[] = {(char *)exe, "--run", "main", "--feed", fetch, NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 0, "%s failed:\n%s", exe, r.err);
  char *out = strdup(r.out);
  tu_free(&r);
  return out;
}

/* The dynamic model with its size given, external data, and `kiln import`
 * (whose .kg compiles to a binary printing the same results). */
Test(onnx_errors, good_models_build_and_agree) {
  char *npy = strdup(path_of("x.npy")); /* path_of's buffers rotate */
  char *gen[] = {(char *)python(), "-c",
                 "import numpy as np, sys; np.save(sys.argv[1], np.array([[-1,2,-3],[4,-5,6]], np.float32))",
                 (char *)npy, NULL};
  tu_result r = tu_run(gen, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);

  char *b1[] = {(char *)tu_kiln(), "build", path_of("dynamic.onnx"), "--input-shape", "x=2,3", "-o", path_of("dyn"), NULL};
  r = tu_run(b1, 120);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  char *relu = run_exe(path_of("dyn"), npy);
  cr_expect(strstr(relu, "[[0.0 2.0 0.0]") && strstr(relu, "[4.0 0.0 6.0]]"), "relu printed:\n%s", relu);

  char *b2[] = {(char *)tu_kiln(), "build", path_of("external_ok.onnx"), "-o", path_of("ext"), NULL};
  r = tu_run(b2, 120);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  char *plus = run_exe(path_of("ext"), npy);
  cr_expect(strstr(plus, "[[0.0 3.0 -2.0]") && strstr(plus, "[5.0 -4.0 7.0]]"), "x + 1 printed:\n%s", plus);

  char *imp[] = {(char *)tu_kiln(), "import", path_of("external_ok.onnx"), "-o", path_of("ext.kg"), NULL};
  r = tu_run(imp, 120);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  char *b3[] = {(char *)tu_kiln(), "build", path_of("ext.kg"), "-o", path_of("extkg"), NULL};
  r = tu_run(b3, 120);
  cr_assert_eq(r.status, 0, "the imported .kg does not build:\n%s", r.err);
  tu_free(&r);
  /* QuantizeLinear with no zero point: uint8, round(x / 0.5) saturated */
  char *bq[] = {(char *)tu_kiln(), "build", path_of("quantize_nozp.onnx"), "-o", path_of("quant"), NULL};
  r = tu_run(bq, 120);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  char *quant = run_exe(path_of("quant"), npy);
  cr_expect(strstr(quant, "[[0 4 0]") && strstr(quant, "[8 0 12]]"), "QuantizeLinear printed:\n%s", quant);
  free(quant);

  char *again = run_exe(path_of("extkg"), npy);
  cr_expect_str_eq(again, plus, "the .kg of kiln import prints\n%s\nthe .onnx build\n%s", again, plus);
  free(npy);
  free(relu);
  free(plus);
  free(again);
}
