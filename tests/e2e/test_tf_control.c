/* test_tf_control.c — TensorFlow 1.x control flow in the TensorFlow importer
 * (frontends/graphdef/control.c unrolls while loops; ops_list.c holds
 * TensorLists; cond.c converts tf.cond): the hand-written graphs
 * tests/tf/graphs/while_*.pbtxt, cond_*.pbtxt and the malformed ones,
 * encoded with protoc --encode as in test_tf_import.c.
 *
 * tf_control: a counter loop (i < 5: x = 2x + 1), a loop-invariant Enter
 * (is_constant) with the counter used in the body, a loop that runs no
 * iteration (its body, an op kiln lacks, is never converted), two loops one
 * after the other, a loop inside a loop, and a tf.map_fn-style loop over the rows of a fed [3, 4]
 * tensor through TensorLists; each binary's outputs against values this
 * file computes itself.  `kiln import` of a loop gives a .kg that builds to
 * the same results; --max-loop-iterations allows exactly that many.
 *
 * tf_control_errors: a condition that depends on a feed, a loop over the
 * iteration limit, an Exit outside any loop, a Merge of a NextIteration
 * with no Enter, a TensorList into a non-list op, a fetch from inside a
 * loop: each exit status 1 with its message.  handtrack (@vladmandic/human,
 * when `make tf-ref` fetched it) gets through its map loop and stops at
 * NonMaxSuppressionV5, whose output size depends on the data.
 *
 * tf_cond: constant predicates each way (the untaken branches hold an op
 * kiln lacks), a predicate fed at run time with true and with false,
 * Merge's value_index, conds inside a while loop body (one constant in each
 * iteration, one fed), while loops inside branches (one taken, one dead),
 * a batch-norm-like is_training switch, and the .kg of
 * `kiln import`.  tf_cond_errors: branches of different shapes under a
 * run-time predicate, a Merge of Switches of two predicates, a fetch of a
 * dead value. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"

static char *dir;

static void setup(void) { dir = tu_tmpdir(); }
static void teardown(void) { tu_rmtree(dir); }

TestSuite(tf_control, .init = setup, .fini = teardown);
TestSuite(tf_control_errors, .init = setup, .fini = teardown);
TestSuite(tf_cond, .init = setup, .fini = teardown);
TestSuite(tf_cond_errors, .init = setup, .fini = teardown);

static const char *path_of(const char *name) { return tu_path(dir, name); }

static const char *encode(const char *name) { return tu_encode_graphdef(dir, name); }

/* kiln build IN -o OUT [a b] */
static void build(const char *in, const char *out, const char *a, const char *b) {
  char *argv[] = {(char *)tu_kiln(), "build", (char *)in, "-o", (char *)out, (char *)a, (char *)b, NULL};
  tu_result r = tu_run(argv, 300);
  cr_assert_eq(r.status, 0, "kiln build %s:\n%s", in, r.err);
  tu_free(&r);
}

/* Runs bin with feeds "NAME=FILE" (up to two) and fetches output `fetch`
 * as float32 values: exactly n of them. */
static float *run_fetch(const char *bin, const char *feed1, const char *feed2, const char *fetch, long n) {
  char f1[700], f2[700], out[700];
  snprintf(f1, sizeof f1, "%s", feed1);
  snprintf(f2, sizeof f2, "%s", feed2 ? feed2 : "");
  snprintf(out, sizeof out, "%s=%s/%s.npy", fetch, dir, fetch);
  char *argv[] = {(char *)bin, "--feed", f1, "--fetch", out, feed2 ? "--feed" : NULL, f2, NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 0, "%s:\n%s", bin, r.err);
  tu_free(&r);
  long count;
  char file[700];
  snprintf(file, sizeof file, "%s/%s.npy", dir, fetch);
  float *v = tu_read_npy_f32(file, &count);
  cr_assert(v && count == n, "%s: %ld values, want %ld", file, v ? count : -1, n);
  return v;
}

/* "NAME=DIR/NAME.npy" holding v (float32, shape dims). */
static const char *feed(const char *name, const float *v, int rank, const long *dims) {
  char file[200];
  snprintf(file, sizeof file, "%s.npy", name);
  char *p = tu_write_npy_f32(dir, file, v, rank, dims);
  cr_assert(p);
  static char buf[4][700];
  static int k;
  char *s = buf[k++ % 4];
  snprintf(s, sizeof buf[0], "%s=%s", name, p);
  free(p);
  return s;
}

static void expect_values(const char *what, const float *got, const float *want, int n) {
  for (int i = 0; i < n; i++)
    cr_expect(fabsf(got[i] - want[i]) <= 1e-6f * (1 + fabsf(want[i])), "%s[%d] = %g, want %g", what, i, got[i], want[i]);
}

/* Runs bin (feeds as run_fetch's) and expects its `fetch` to be want[0..n). */
static void expect_fetch(const char *what, const char *bin, const char *feed1, const char *feed2, const char *fetch,
                         const float *want, int n) {
  float *got = run_fetch(bin, feed1, feed2, fetch, n);
  expect_values(what, got, want, n);
  free(got);
}

/* ---- loops that unroll ---- */

static const float X3[3] = {1, 0, -0.5f};

/* i = 0; while i < 5: i += 1; x = x * 2 + 1 */
static void counter_want(float *want) {
  for (int k = 0; k < 3; k++) {
    want[k] = X3[k];
    for (int i = 0; i < 5; i++) want[k] = want[k] * 2 + 1;
  }
}

Test(tf_control, counter_loop) {
  const char *pb = encode("while_counter");
  build(pb, path_of("counter"), NULL, NULL);
  float want[3];
  counter_want(want);
  expect_fetch("y", path_of("counter"), feed("x", X3, 2, (long[]){1, 3}), NULL, "y", want, 3);
  /* the counter is a constant after unrolling: printed as 5 */
  char f[700];
  snprintf(f, sizeof f, "%s", feed("x", X3, 2, (long[]){1, 3}));
  char *argv[] = {(char *)path_of("counter"), "--feed", f, "--fetch", "i", NULL};
  tu_result r = tu_run(argv, 60);
  cr_expect(r.status == 0 && !strncmp(r.out, "5", 1), "i:\n%s%s", r.out, r.err);
  tu_free(&r);
  /* five copies of the body, each named after its iteration */
  char *imp[] = {(char *)tu_kiln(), "import", (char *)pb, NULL};
  r = tu_run(imp, 120);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_expect(strstr(r.out, "while/add_1/iter4 = add(") && !strstr(r.out, "while/add_1/iter5"), "%s", r.out);
  tu_free(&r);
}

Test(tf_control, import_kg_builds_the_same) {
  const char *pb = encode("while_counter");
  char *argv[] = {(char *)tu_kiln(), "import", (char *)pb, "-o", (char *)path_of("counter.kg"), NULL};
  tu_result r = tu_run(argv, 120);
  cr_assert_eq(r.status, 0, "kiln import:\n%s", r.err);
  tu_free(&r);
  build(path_of("counter.kg"), path_of("from_kg"), NULL, NULL);
  build(pb, path_of("from_pb"), NULL, NULL);
  const char *x = feed("x", X3, 2, (long[]){1, 3});
  float *a = run_fetch(path_of("from_kg"), x, NULL, "y", 3);
  float *b = run_fetch(path_of("from_pb"), x, NULL, "y", 3);
  float want[3];
  counter_want(want);
  expect_values("y (.kg)", a, want, 3);
  cr_expect(!memcmp(a, b, sizeof(float) * 3), "the .kg and the .pb binaries differ");
  free(a);
  free(b);
}

Test(tf_control, iteration_limit_allows_exactly_that_many) {
  build(encode("while_counter"), path_of("counter5"), "--max-loop-iterations", "5");
}

/* acc = x; for i in 0..2: acc += b * i, with b an is_constant Enter */
Test(tf_control, loop_invariant_enter) {
  build(encode("while_invariant"), path_of("inv"), NULL, NULL);
  float x[2] = {1.5f, -2}, b[2] = {0.5f, 4}, want[2];
  for (int k = 0; k < 2; k++) {
    want[k] = x[k];
    for (int i = 0; i < 3; i++) want[k] += b[k] * (float)i;
  }
  expect_fetch("out", path_of("inv"), feed("x", x, 2, (long[]){1, 2}), feed("b", b, 2, (long[]){1, 2}), "out", want, 2);
}

Test(tf_control, zero_trip_loop) {
  build(encode("while_zero"), path_of("zero"), NULL, NULL); /* its body (FancyOp) is never converted */
  expect_fetch("y", path_of("zero"), feed("x", X3, 2, (long[]){1, 3}), NULL, "y", X3, 3);
}

Test(tf_control, two_loops_in_sequence) {
  build(encode("while_two"), path_of("two"), NULL, NULL);
  float x[2] = {3, -0.25f}, mid[2], want[2];
  for (int k = 0; k < 2; k++) {
    mid[k] = x[k];
    for (int i = 0; i < 3; i++) mid[k] *= 2;
    want[k] = mid[k];
    for (int i = 0; i < 2; i++) want[k] += 1;
  }
  const char *fx = feed("x", x, 1, (long[]){2});
  expect_fetch("mid", path_of("two"), fx, NULL, "mid", mid, 2);
  expect_fetch("y", path_of("two"), fx, NULL, "y", want, 2);
}

/* for i in 0..1: for j in 0..2: x = x * 2 + i (a loop inside a loop) */
Test(tf_control, nested_loops) {
  build(encode("while_nested"), path_of("nested"), NULL, NULL);
  float x[2] = {1, -3}, want[2] = {1, -3};
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 2; k++) want[k] = want[k] * 2 + (float)i;
  expect_fetch("y", path_of("nested"), feed("x", x, 1, (long[]){2}), NULL, "y", want, 2);
}

/* tf.map_fn(lambda r: r * 2, x) through TensorLists */
Test(tf_control, tensorlist_map_over_rows) {
  const char *pb = encode("while_map");
  build(pb, path_of("map"), NULL, NULL);
  float x[12], want[12];
  for (int i = 0; i < 12; i++) x[i] = (float)(i * i) / 4 - 3, want[i] = x[i] * 2;
  expect_fetch("y", path_of("map"), feed("x", x, 2, (long[]){3, 4}), NULL, "y", want, 12);
}

/* ---- what kiln refuses ---- */

static void expect_error(const char *in, const char *want, const char *a, const char *b) {
  char *argv[] = {(char *)tu_kiln(), "build", (char *)in, "-o", (char *)path_of("out"), (char *)a, (char *)b, NULL};
  tu_result r = tu_run(argv, 300);
  cr_expect_eq(r.status, 1, "%s: status %d, want 1; stderr:\n%s", in, r.status, r.err);
  cr_expect(strstr(r.err, want) != NULL, "%s: message lacks '%s':\n%s", in, want, r.err);
  tu_free(&r);
}

Test(tf_control_errors, condition_depends_on_a_feed) {
  expect_error(encode("while_data_cond"), "node 'D/LoopCond' (LoopCond): the while loop 'D' has a trip count that "
               "depends on run-time data; kiln unrolls only loops whose condition folds to a constant", NULL, NULL);
}

Test(tf_control_errors, iteration_limit) {
  expect_error(encode("while_counter"), "node 'while/LoopCond' (LoopCond): the while loop 'while/while_context' runs "
               "more than 4 iterations", "--max-loop-iterations", "4");
}

Test(tf_control_errors, exit_without_a_frame) {
  expect_error(encode("exit_no_frame"), "node 'e' (Exit): is not the end of a while loop", NULL, NULL);
}

Test(tf_control_errors, merge_without_enter) {
  expect_error(encode("merge_no_enter"), "node 'm' (Merge): merges a NextIteration, but no Enter leads to it", NULL,
               NULL);
}

Test(tf_control_errors, tensorlist_into_another_op) {
  expect_error(encode("list_escape"), "node 'y' (Neg): input 0 ('rows') is a TensorList", NULL, NULL);
}

Test(tf_control_errors, fetch_inside_a_loop) {
  expect_error(encode("while_counter"), "node 'while/mul' (Mul) is inside the while loop 'while/while_context': its "
               "values leave the loop only through an Exit", "--fetch", "while/mul");
}

Test(tf_control_errors, handtrack_stops_at_non_max_suppression) {
  const char *model = "build/npm-cache/tfjs/node_modules/@vladmandic/human/models/handtrack.json";
  if (access(model, R_OK)) cr_skip_test("%s is absent (make tf-ref fetches it)", model);
  char *argv[] = {(char *)tu_kiln(), "import", (char *)model, "--input-shape", "input_tensor=1,320,320,3", NULL};
  tu_result r = tu_run(argv, 300);
  cr_expect_eq(r.status, 1, "status %d:\n%s", r.status, r.err);
  cr_expect(strstr(r.err, "(NonMaxSuppressionV5): NonMaxSuppressionV5's output size is the number of boxes it keeps"),
            "%s", r.err);
  tu_free(&r);
  /* its map loop (TensorLists in a while frame) converts */
  char *map[] = {(char *)tu_kiln(), "import", (char *)model, "--input-shape", "input_tensor=1,320,320,3", "--fetch",
                 "StatefulPartitionedCall/map/TensorArrayV2Stack/TensorListStack", NULL};
  r = tu_run(map, 300);
  cr_expect_eq(r.status, 0, "the map loop:\n%s", r.err);
  cr_expect(strstr(r.out, "f32[1,320,320,3]"), "%s", r.out);
  tu_free(&r);
}

/* ---- tf.cond ---- */

/* "NAME=DIR/NAME.npy" holding the bool scalar v. */
static const char *feed_bool(const char *name, bool v) {
  char file[200];
  snprintf(file, sizeof file, "%s_%d.npy", name, v);
  unsigned char b = v;
  char *p = tu_write_npy(dir, file, "|b1", 1, &b, 0, NULL);
  cr_assert(p);
  static char buf[4][700];
  static int k;
  char *s = buf[k++ % 4];
  snprintf(s, sizeof buf[0], "%s=%s", name, p);
  free(p);
  return s;
}

/* The integer `fetch` prints (feeds as run_fetch's). */
static long run_print(const char *bin, const char *feed1, const char *feed2, const char *fetch) {
  char f1[700], f2[700];
  snprintf(f1, sizeof f1, "%s", feed1);
  snprintf(f2, sizeof f2, "%s", feed2 ? feed2 : "");
  char *argv[] = {(char *)bin, "--feed", f1, "--fetch", (char *)fetch, feed2 ? "--feed" : NULL, f2, NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 0, "%s:\n%s", bin, r.err);
  char *end;
  long v = strtol(r.out, &end, 10);
  cr_assert(end != r.out, "%s --fetch %s printed '%s'", bin, fetch, r.out);
  tu_free(&r);
  return v;
}

/* a: pred true, x * 2 (false branch: FancyOp); b: pred false, x + 1 (true
 * branch: FancyOp). */
Test(tf_cond, constant_predicate_each_way) {
  const char *pb = encode("cond_const");
  build(pb, path_of("cconst"), NULL, NULL);
  const char *fx = feed("x", X3, 2, (long[]){1, 3});
  float wa[3], wb[3];
  for (int k = 0; k < 3; k++) wa[k] = X3[k] * 2, wb[k] = X3[k] + 1;
  expect_fetch("ya", path_of("cconst"), fx, NULL, "ya", wa, 3);
  expect_fetch("yb", path_of("cconst"), fx, NULL, "yb", wb, 3);
  /* value_index: the input taken (the Merges are (false, true)) */
  cr_expect_eq(run_print(path_of("cconst"), fx, NULL, "ia"), 1);
  cr_expect_eq(run_print(path_of("cconst"), fx, NULL, "ib"), 0);
  /* only the taken branches are converted; the Merges become their value */
  char *imp[] = {(char *)tu_kiln(), "import", (char *)pb, NULL};
  tu_result r = tu_run(imp, 120);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_expect(!strstr(r.out, "fancy") && !strstr(r.out, "select("), "%s", r.out);
  cr_expect(strstr(r.out, "ia = const<i32[]>(1)") && strstr(r.out, "ib = const<i32[]>(0)"), "%s", r.out);
  tu_free(&r);
}

/* p ? 3 x + 1 : -x, and value_index p ? 1 : 0, for both feeds */
Test(tf_cond, runtime_predicate) {
  const char *pb = encode("cond_runtime");
  build(pb, path_of("crt"), NULL, NULL);
  const char *fx = feed("x", X3, 2, (long[]){1, 3});
  for (int p = 0; p < 2; p++) {
    float want[3];
    for (int k = 0; k < 3; k++) want[k] = p ? X3[k] * 3 + 1 : -X3[k];
    expect_fetch(p ? "y (p true)" : "y (p false)", path_of("crt"), fx, feed_bool("p", p), "y", want, 3);
    cr_expect_eq(run_print(path_of("crt"), fx, feed_bool("p", p), "index"), p, "index with p = %d", p);
  }
}

Test(tf_cond, import_kg_builds_the_same) {
  const char *pb = encode("cond_runtime");
  char *argv[] = {(char *)tu_kiln(), "import", (char *)pb, "-o", (char *)path_of("crt.kg"), NULL};
  tu_result r = tu_run(argv, 120);
  cr_assert_eq(r.status, 0, "kiln import:\n%s", r.err);
  tu_free(&r);
  build(path_of("crt.kg"), path_of("crt_kg"), NULL, NULL);
  const char *fx = feed("x", X3, 2, (long[]){1, 3});
  for (int p = 0; p < 2; p++) {
    float want[3];
    for (int k = 0; k < 3; k++) want[k] = p ? X3[k] * 3 + 1 : -X3[k];
    expect_fetch("y (.kg)", path_of("crt_kg"), fx, feed_bool("p", p), "y", want, 3);
  }
}

/* i = 0..3: x = i < 2 ? x * 2 : x + 1 (folds each iteration); z = p ? z + 1 : z - 1 */
Test(tf_cond, cond_inside_a_while_loop) {
  build(encode("cond_in_while"), path_of("ciw"), NULL, NULL);
  const char *fx = feed("x", X3, 2, (long[]){1, 3});
  float wy[3];
  for (int k = 0; k < 3; k++) wy[k] = X3[k] * 4 + 2;
  for (int p = 0; p < 2; p++) {
    float ww[3];
    for (int k = 0; k < 3; k++) ww[k] = X3[k] + (p ? 4 : -4);
    expect_fetch("y", path_of("ciw"), fx, feed_bool("p", p), "y", wy, 3);
    expect_fetch(p ? "w (p true)" : "w (p false)", path_of("ciw"), fx, feed_bool("p", p), "w", ww, 3);
  }
}

/* a: pred true, a loop in the true branch (v += v, 3 times); b: pred false,
 * a loop of FancyOp in the untaken true branch (dead: never unrolled). */
Test(tf_cond, while_loop_inside_a_branch) {
  build(encode("cond_while_inside"), path_of("cwi"), NULL, NULL);
  const char *fx = feed("x", X3, 2, (long[]){1, 3});
  float wa[3], wb[3];
  for (int k = 0; k < 3; k++) wa[k] = X3[k] * 8, wb[k] = X3[k] * 2;
  expect_fetch("ya", path_of("cwi"), fx, NULL, "ya", wa, 3);
  expect_fetch("yb", path_of("cwi"), fx, NULL, "yb", wb, 3);
}

/* training ? (x - mean) / sqrt(var + eps) : (x - mm) / sqrt(mv + eps) */
Test(tf_cond, batch_norm_is_training_switch) {
  build(encode("cond_batchnorm"), path_of("cbn"), NULL, NULL);
  float x[6] = {1, -2, 0.5f, 3, 4, -1.5f}, mm[3] = {0.5f, -1, 2}, mv[3] = {4, 0.25f, 1};
  const char *fx = feed("x", x, 2, (long[]){2, 3});
  for (int t = 0; t < 2; t++) {
    float want[6];
    for (int j = 0; j < 3; j++) {
      float mean = (x[j] + x[3 + j]) / 2, var = 0;
      for (int i = 0; i < 2; i++) var += (x[3 * i + j] - mean) * (x[3 * i + j] - mean) / 2;
      for (int i = 0; i < 2; i++)
        want[3 * i + j] = t ? (x[3 * i + j] - mean) / sqrtf(var + 0.001f) : (x[3 * i + j] - mm[j]) / sqrtf(mv[j] + 0.001f);
    }
    float *y = run_fetch(path_of("cbn"), fx, feed_bool("training", t), "y", 6);
    for (int i = 0; i < 6; i++)
      cr_expect(fabsf(y[i] - want[i]) <= 1e-5f * (1 + fabsf(want[i])), "y[%d] = %g, want %g (training %d)", i, y[i],
                want[i], t);
    free(y);
  }
}

Test(tf_cond_errors, branch_shapes_differ) {
  expect_error(encode("cond_shape_mismatch"), "node 'c/Merge' (Merge): the predicate is known only at run time, so "
               "both branches are computed and the result selected, which needs one type, but the true branch (input "
               "1, 'c/mul') gives f32[1,3] and the false branch (input 0, 'c/sum') f32[1,1]", NULL, NULL);
}

Test(tf_cond_errors, merge_of_two_predicates) {
  expect_error(encode("cond_two_preds"), "node 'm' (Merge): cannot tell which input is which branch: a tf.cond's Merge "
               "takes the results of its two branches, each from one side of Switch nodes of the same predicate, but "
               "input 0 ('a') comes from output 0 of node 'sp' (Switch) and input 1 ('b') from output 1 of node 'sq' "
               "(Switch)", NULL, NULL);
}

Test(tf_cond_errors, fetch_of_a_dead_value) {
  expect_error(encode("cond_const"), "fetch 'a/fancy' is dead: it depends on the side of node 'a/fancy/Switch' "
               "(Switch) that is not taken (its predicate is a constant), so it is never computed", "--fetch", "a/fancy");
}
