/* test_tf_import.c — the TensorFlow importer (frontends/graphdef) on
 * hand-made graphs, and on bad input.
 *
 * tf_import: tests/tf/graphs/small.pbtxt, encoded as a binary GraphDef with
 * `protoc --encode=tensorflow.GraphDef` and the project's proto/graph.proto,
 * builds with --fetch (a `:0` index and a second output `sp:1` behind an
 * Identity), its Placeholder's unknown batch dimension becomes 1, a `^init`
 * control input and a device field are read; a TF.js model.json written here
 * with two shards holds float32, float16-quantized and uint8-quantized
 * weights, dequantized at compile time.
 *
 * tf_errors: an op kiln lacks, a dangling input, a cycle, a corrupt .pb, a
 * weight shard of the wrong size (short and long), a missing shard, a
 * quantization entry without scale: each exit status 1 with a message naming
 * what is wrong. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"

static char *dir;

static char *path_of(const char *name) { return tu_path(dir, name); }

static void setup(void) { dir = tu_tmpdir(); }
static void teardown(void) { tu_rmtree(dir); }

TestSuite(tf_import, .init = setup, .fini = teardown);
TestSuite(tf_errors, .init = setup, .fini = teardown);

/* tests/tf/graphs/NAME.pbtxt -> DIR/NAME.pb (protoc --encode). */
static const char *encode(const char *name) { return tu_encode_graphdef(dir, name); }

/* A float32 .npy of shape [1, n]. */
static const char *write_npy(const char *name, const float *v, int n) {
  char *p = tu_write_npy_f32(dir, name, v, 2, (long[]){1, n});
  cr_assert(p, "cannot write %s", name);
  free(p);
  return path_of(name);
}

static tu_result kiln(const char *cmd, const char *in, const char *a, const char *b, const char *c, const char *d) {
  char *argv[] = {(char *)tu_kiln(), (char *)cmd, (char *)in, (char *)a, (char *)b, (char *)c, (char *)d, NULL};
  return tu_run(argv, 300);
}

Test(tf_import, binary_graphdef_feeds_fetches_control_device) {
  const char *pb = encode("small");
  char *argv[] = {(char *)tu_kiln(), "build", (char *)pb, "--fetch", "sp:0", "--fetch", "out", "-o", path_of("small"), NULL};
  tu_result r = tu_run(argv, 300);
  cr_assert_eq(r.status, 0, "kiln build small.pb:\n%s", r.err);
  tu_free(&r);
  char *list[] = {path_of("small"), "--list", NULL};
  r = tu_run(list, 60);
  cr_expect(strstr(r.out, "in  x f32[1,3]"), "the feed x with batch 1:\n%s", r.out);
  cr_expect(strstr(r.out, "out sp f32[1,1]") && strstr(r.out, "out out f32[1,1]"), "the fetches:\n%s", r.out);
  tu_free(&r);
  /* x = [1, 1, 0]: x.w = [4, 6], + 0.5 = [4.5, 6.5], relu6 = [4.5, 6], split */
  const char *x = write_npy("x.npy", (float[]){1, 1, 0}, 3);
  char feed[700];
  snprintf(feed, sizeof feed, "x=%s", x);
  char *run[] = {path_of("small"), "--feed", feed, "--fetch", "sp", "--fetch", "out", NULL};
  r = tu_run(run, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_expect(strstr(r.out, "[[4.5]]") && strstr(r.out, "[[6.0]]"), "outputs:\n%s", r.out);
  tu_free(&r);
  /* kiln import: the device field and the names */
  r = kiln("import", pb, "--fetch", "out", NULL, NULL);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_expect(strstr(r.out, "cpu:0"), "the device annotation:\n%s", r.out);
  cr_expect(strstr(r.out, "mm ") || strstr(r.out, "mm="), "a node named mm:\n%s", r.out);
  tu_free(&r);
}

/* ---- a TF.js model.json with two shards ---- */

static const char *model_json(const char *quant_q) {
  static char buf[4096];
  snprintf(buf, sizeof buf,
           "{\"format\": \"graph-model\", \"modelTopology\": {\"node\": [\n"
           " {\"name\": \"x\", \"op\": \"Placeholder\", \"attr\": {\"dtype\": {\"type\": \"DT_FLOAT\"},\n"
           "   \"shape\": {\"shape\": {\"dim\": [{\"size\": \"-1\"}, {\"size\": \"4\"}]}}}},\n"
           " {\"name\": \"a\", \"op\": \"Const\", \"attr\": {\"dtype\": {\"type\": \"DT_FLOAT\"}, \"value\": {\"tensor\": "
           "{\"dtype\": \"DT_FLOAT\", \"tensorShape\": {\"dim\": [{\"size\": \"4\"}]}}}}},\n"
           " {\"name\": \"h\", \"op\": \"Const\", \"attr\": {\"dtype\": {\"type\": \"DT_FLOAT\"}}},\n"
           " {\"name\": \"q\", \"op\": \"Const\", \"attr\": {\"dtype\": {\"type\": \"DT_FLOAT\"}}},\n"
           " {\"name\": \"m1\", \"op\": \"Mul\", \"input\": [\"x\", \"a\"], \"attr\": {\"T\": {\"type\": \"DT_FLOAT\"}}},\n"
           " {\"name\": \"m2\", \"op\": \"AddV2\", \"input\": [\"m1\", \"h\"]},\n"
           " {\"name\": \"y\", \"op\": \"Sub\", \"input\": [\"m2\", \"q\"]}]},\n"
           " \"weightsManifest\": [{\"paths\": [\"group1-shard1of2.bin\", \"group1-shard2of2.bin\"], \"weights\": [\n"
           "  {\"name\": \"a\", \"shape\": [4], \"dtype\": \"float32\"},\n"
           "  {\"name\": \"h\", \"shape\": [4], \"dtype\": \"float32\", \"quantization\": {\"dtype\": \"float16\"}},\n"
           "  {\"name\": \"q\", \"shape\": [4], \"dtype\": \"float32\", \"quantization\": %s}]}]}\n",
           quant_q);
  return buf;
}

/* The shards: a = [1, 2, 3, 4] (float32), h = [0.5, -2, 3.25, 1] (float16),
 * q = [0, 2, 4, 10] (uint8; min -1, scale 0.5: [-1, 0, 1, 4]); 28 bytes,
 * split 16 + 12, the second `extra` bytes longer (negative: shorter). */
static void write_model(const char *quant_q, int extra) {
  free(tu_write(dir, "model.json", model_json(quant_q)));
  uint8_t bytes[40] = {0};
  float a[4] = {1, 2, 3, 4};
  uint16_t h[4] = {0x3800, 0xC000, 0x4280, 0x3C00};
  uint8_t q[4] = {0, 2, 4, 10};
  memcpy(bytes, a, 16);
  memcpy(bytes + 16, h, 8);
  memcpy(bytes + 24, q, 4);
  FILE *f = fopen(path_of("group1-shard1of2.bin"), "wb");
  fwrite(bytes, 1, 16, f);
  fclose(f);
  f = fopen(path_of("group1-shard2of2.bin"), "wb");
  fwrite(bytes + 16, 1, (size_t)(12 + extra), f);
  fclose(f);
}

static const char *Q_OK = "{\"dtype\": \"uint8\", \"min\": -1.0, \"scale\": 0.5, \"original_dtype\": \"float32\"}";

Test(tf_import, tfjs_shards_float32_float16_uint8) {
  write_model(Q_OK, 0);
  char *argv[] = {(char *)tu_kiln(), "build", path_of("model.json"), "-o", path_of("m"), NULL};
  tu_result r = tu_run(argv, 300);
  cr_assert_eq(r.status, 0, "kiln build model.json:\n%s", r.err);
  tu_free(&r);
  /* x = 1: a + h - q = [2.5, 0, 5.25, 1] */
  const char *x = write_npy("x1.npy", (float[]){1, 1, 1, 1}, 4);
  char feed[700];
  snprintf(feed, sizeof feed, "x=%s", x);
  char *run[] = {path_of("m"), "--feed", feed, NULL};
  r = tu_run(run, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_expect(strstr(r.out, "[[2.5 0.0 5.25 1.0]]"), "output:\n%s", r.out);
  tu_free(&r);
}

Test(tf_import, fetch_all_adds_every_tensor) {
  write_model(Q_OK, 0);
  char *argv[] = {(char *)tu_kiln(), "build", "--fetch-all", path_of("model.json"), "-o", path_of("m"), NULL};
  tu_result r = tu_run(argv, 300);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  char *list[] = {path_of("m"), "--list", NULL};
  r = tu_run(list, 60);
  cr_expect(strstr(r.out, "out y f32[1,4]") && strstr(r.out, "out m1 f32[1,4]") && strstr(r.out, "out m2 f32[1,4]"),
            "--fetch-all outputs:\n%s", r.out);
  tu_free(&r);
}

/* ---- bad input ---- */

static void expect_error(const char *in, const char *want, const char *opt1, const char *opt2) {
  char *argv[] = {(char *)tu_kiln(), "build", (char *)in, "-o", path_of("out"), (char *)opt1, (char *)opt2, NULL};
  tu_result r = tu_run(argv, 120);
  cr_expect_eq(r.status, 1, "%s: status %d, want 1; stderr:\n%s", in, r.status, r.err);
  cr_expect(strstr(r.err, want) != NULL, "%s: message lacks '%s':\n%s", in, want, r.err);
  tu_free(&r);
}

Test(tf_errors, unknown_op) {
  expect_error(encode("unknown_op"), "node 'fancy' (FancyOp): unsupported TensorFlow op 'FancyOp'", NULL, NULL);
}
Test(tf_errors, dangling_input) {
  expect_error(encode("dangling"), "node 'y' (AddV2): input 'nowhere:0' is dangling: the graph has no node named 'nowhere'",
               NULL, NULL);
}
Test(tf_errors, cycle) {
  expect_error(encode("cycle"), "the graph has a cycle through input", "--fetch", "a");
}
Test(tf_errors, huge_splat_constant) {
  expect_error(encode("huge_const"), "above kiln's limit of 1073741824 bytes for one constant", NULL, NULL);
}
Test(tf_errors, corrupt_pb) {
  free(tu_write(dir, "bad.pb", "\x0a\xff\xff\x01"));
  expect_error(path_of("bad.pb"), "not a valid GraphDef", NULL, NULL);
}
Test(tf_errors, unknown_fetch) {
  expect_error(encode("small"), "fetch 'nothere': the graph has no node named so", "--fetch", "nothere");
}
Test(tf_errors, shard_too_short) {
  write_model(Q_OK, -1);
  expect_error(path_of("model.json"), "weight 'q': weightsManifest[0]: the shards end inside this weight", NULL, NULL);
  expect_error(path_of("model.json"), "a weight shard of the wrong size", NULL, NULL);
}
Test(tf_errors, shard_too_long) {
  write_model(Q_OK, 1);
  expect_error(path_of("model.json"), "the shards hold 29 bytes, but the weights listed need 28: a weight shard of the "
                                      "wrong size", NULL, NULL);
}
Test(tf_errors, missing_shard) {
  write_model(Q_OK, 0);
  unlink(path_of("group1-shard2of2.bin"));
  expect_error(path_of("model.json"), "cannot open weight shard", NULL, NULL);
  expect_error(path_of("model.json"), "group1-shard2of2.bin", NULL, NULL);
}
Test(tf_errors, quantization_without_scale) {
  write_model("{\"dtype\": \"uint8\", \"min\": -1.0}", 0);
  expect_error(path_of("model.json"), "weight 'q': quantization uint8 without scale", NULL, NULL);
}
Test(tf_errors, not_json) {
  free(tu_write(dir, "model.json", "{\"modelTopology\": [1, 2"));
  expect_error(path_of("model.json"), "not valid JSON", NULL, NULL);
}

/* --feed of an intermediate tensor cuts the graph there: its producers are
 * not converted, its shape comes from --input-shape. */
Test(tf_import, feed_intermediate_tensor) {
  const char *pb = encode("small");
  char *argv[] = {(char *)tu_kiln(), "build", (char *)pb, "--feed", "r6", "--fetch", "out", "--input-shape", "r6=1,2",
                  "-o", path_of("cut"), NULL};
  tu_result r = tu_run(argv, 300);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  char *list[] = {path_of("cut"), "--list", NULL};
  r = tu_run(list, 60);
  cr_expect(strstr(r.out, "in  r6 f32[1,2]") && strstr(r.out, "out out f32[1,1]"), "%s", r.out);
  tu_free(&r);
  expect_error(pb, "node 'r6' (Relu6): the feed has no known shape; give it with --input-shape r6=", "--feed", "r6");
}
