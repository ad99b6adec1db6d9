/* test_runtime_errors.c — a compiled binary meeting bad run-time input.
 *
 * Each test compiles a tiny module (entry f(x) -> (y), x a f32[2,3]
 * placeholder, y = x * 2) into a fresh temporary directory and runs the
 * binary with a wrong command line or a wrong .npy feed.  Every failure must
 * be a clean exit (status 1 or 2, never a signal) with a message that names
 * the file, feed or option at fault.  The .npy files are written here by
 * hand (no NumPy needed): magic, version 1.0, header dict padded with
 * spaces and a newline so that the data starts at a multiple of 16 bytes.
 * The last tests run module programs over a closed queue: a dequeue from a
 * closed, empty queue outside any loop fails with OutOfRange; a `loop`
 * ends cleanly once the closed queue is drained. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

static const char *const module_src =
    "module rt\n"
    "graph {\n"
    "  x = placeholder() : f32[2,3]\n"
    "  y = mul(x, const<f32[]>(2))\n"
    "}\n"
    "entry f(x) -> (y)\n";

static char *rt_dir;     /* the test's temporary directory */
static char rt_exe[512]; /* the compiled binary */

static char *rt_path(const char *name) {
  static char buf[4][512];
  static int k;
  char *p = buf[k++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", rt_dir, name);
  return p;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "cannot create %s", path);
  fputs(text, f);
  fclose(f);
}

/* Compiles `src` into rt_dir/NAME; returns the binary's path. */
static const char *build_module(const char *name, const char *src) {
  char kg[512];
  snprintf(kg, sizeof kg, "%s/%s.kg", rt_dir, name);
  write_text(kg, src);
  snprintf(rt_exe, sizeof rt_exe, "%s/%s", rt_dir, name);
  char *argv[] = {(char *)tu_kiln(), "build", kg, "-o", rt_exe, NULL};
  tu_result r = tu_run(argv, 120);
  cr_assert_eq(r.status, 0, "kiln build %s failed (status %d):\n%s", kg, r.status, r.err);
  tu_free(&r);
  return rt_exe;
}

static void rt_setup(void) {
  rt_dir = tu_tmpdir();
  cr_assert_not_null(rt_dir, "cannot create a temporary directory");
  build_module("prog", module_src);
}

static void rt_teardown(void) {
  tu_rmtree(rt_dir);
  free(rt_dir);
  rt_dir = NULL;
}

TestSuite(runtime, .init = rt_setup, .fini = rt_teardown, .timeout = 180);

/* ---- a hand-made .npy writer ---- */

typedef struct npy_spec {
  const char *descr;  /* "<f4" */
  bool fortran;
  int rank;
  int64_t dims[8];
  const void *data;
  size_t nbytes;      /* bytes of data written */
} npy_spec;

static void write_npy(const char *path, const npy_spec *s) {
  char dict[256];
  int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': (", s->descr,
                     s->fortran ? "True" : "False");
  for (int i = 0; i < s->rank; i++)
    len += snprintf(dict + len, sizeof dict - (size_t)len, i ? ", %lld" : "%lld", (long long)s->dims[i]);
  len += snprintf(dict + len, sizeof dict - (size_t)len, "%s), }", s->rank == 1 ? "," : "");
  /* 6 magic + 2 version + 2 length + dict + padding + '\n' = a multiple of 16 */
  size_t total = 10 + (size_t)len + 1;
  size_t pad = (16 - total % 16) % 16;
  size_t hlen = (size_t)len + pad + 1;
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "cannot create %s", path);
  fwrite("\x93NUMPY", 1, 6, f);
  fputc(1, f);
  fputc(0, f);
  fputc((int)(hlen & 0xff), f);
  fputc((int)(hlen >> 8), f);
  fwrite(dict, 1, (size_t)len, f);
  for (size_t i = 0; i < pad; i++) fputc(' ', f);
  fputc('\n', f);
  if (s->nbytes) fwrite(s->data, 1, s->nbytes, f);
  fclose(f);
}

static const float x_values[6] = {0.5f, 1, -2, 3.25f, 4, -5.5f};

/* A correct feed for x: f32[2,3]. */
static const char *good_feed(void) {
  const char *p = rt_path("x.npy");
  npy_spec s = {"<f4", false, 2, {2, 3}, x_values, sizeof x_values};
  write_npy(p, &s);
  return p;
}

/* ---- running the binary ---- */

static tu_result run_prog(char **args) {
  char *argv[16];
  int n = 0;
  argv[n++] = rt_exe;
  for (int i = 0; args && args[i] && n < 15; i++) argv[n++] = args[i];
  argv[n] = NULL;
  return tu_run(argv, 60);
}

/* A failed run: non-zero exit, no signal, `error:` and each fragment in stderr. */
static void expect_failure(tu_result *r, int want_status, const char *what, const char *frag1,
                           const char *frag2) {
  cr_assert(r->status > 0 && r->status < 128,
            "%s: expected a clean failure, got exit status %d\nstderr:\n%s", what, r->status, r->err);
  if (want_status)
    cr_assert_eq(r->status, want_status, "%s: expected exit status %d, got %d\nstderr:\n%s", what,
                 want_status, r->status, r->err);
  cr_assert(strstr(r->err, "error:"), "%s: the message does not say 'error:':\n%s", what, r->err);
  if (frag1)
    cr_assert(strstr(r->err, frag1), "%s: expected a message containing\n  %s\ngot:\n%s", what, frag1,
              r->err);
  if (frag2)
    cr_assert(strstr(r->err, frag2), "%s: expected a message containing\n  %s\ngot:\n%s", what, frag2,
              r->err);
}

static char *feed_arg(const char *name, const char *file) {
  static char buf[4][600];
  static int k;
  char *p = buf[k++ % 4];
  snprintf(p, sizeof buf[0], "%s=%s", name, file);
  return p;
}

/* ---- a hand-made .npy reader for the fetched result ---- */

/* Reads an f32 .npy file written by the binary; checks its header; returns
 * the data (malloc'd) and its element count. */
static float *read_npy_f32(const char *path, const char *want_shape, size_t *count) {
  size_t len = 0;
  char *s = tu_read_file(path, &len);
  cr_assert_not_null(s, "the binary wrote no %s", path);
  cr_assert(len >= 10 && !memcmp(s, "\x93NUMPY", 6), "%s: no .npy magic", path);
  cr_assert_eq(s[6], 1, "%s: format version %d.%d, expected 1.0", path, s[6], s[7]);
  size_t hlen = (size_t)(unsigned char)s[8] | (size_t)(unsigned char)s[9] << 8;
  cr_assert(10 + hlen <= len, "%s: header runs past the end", path);
  cr_assert_eq((10 + hlen) % 16, 0, "%s: data does not start at a multiple of 16 (%zu)", path,
               10 + hlen);
  char *header = strndup(s + 10, hlen);
  cr_assert(strstr(header, "'descr': '<f4'"), "%s: header %s", path, header);
  cr_assert(strstr(header, "'fortran_order': False"), "%s: header %s", path, header);
  cr_assert(strstr(header, want_shape), "%s: header %s lacks %s", path, header, want_shape);
  cr_assert_eq(header[hlen - 1], '\n', "%s: header does not end in a newline", path);
  free(header);
  size_t nbytes = len - 10 - hlen;
  cr_assert_eq(nbytes % sizeof(float), 0, "%s: %zu data bytes", path, nbytes);
  float *v = malloc(nbytes ? nbytes : 1);
  memcpy(v, s + 10 + hlen, nbytes);
  free(s);
  *count = nbytes / sizeof(float);
  return v;
}

/* ---- a good run ---- */

Test(runtime, good_run_fetch_to_npy) {
  const char *x = good_feed();
  const char *out = rt_path("y.npy");
  tu_result r = run_prog((char *[]){"--run", "f", "--feed", feed_arg("x", x), "--fetch",
                                    feed_arg("y", out), NULL});
  cr_assert_eq(r.status, 0, "good run exited %d:\n%s", r.status, r.err);
  cr_assert_str_empty(r.err, "good run wrote to stderr:\n%s", r.err);
  tu_free(&r);
  size_t n = 0;
  float *y = read_npy_f32(out, "'shape': (2, 3)", &n);
  cr_assert_eq(n, 6, "y has %zu elements, expected 6", n);
  for (size_t i = 0; i < 6; i++)
    cr_assert_eq(y[i], 2 * x_values[i], "y[%zu] = %g, expected %g", i, (double)y[i],
                 (double)(2 * x_values[i]));
  free(y);
}

Test(runtime, good_run_prints_and_repeats) {
  const char *x = good_feed();
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", x), "--fetch", "y", "--repeat", "2", NULL});
  cr_assert_eq(r.status, 0, "run exited %d:\n%s", r.status, r.err);
  /* y = [[1, 2, -4], [6.5, 8, -11]], printed twice */
  const char *first = strstr(r.out, "6.5");
  cr_assert(first && strstr(first + 1, "6.5"), "expected y printed twice, got:\n%s", r.out);
  cr_assert(strstr(r.out, "-11"), "expected -11 in the output:\n%s", r.out);
  tu_free(&r);
}

/* ---- the command line ---- */

Test(runtime, missing_feed) {
  tu_result r = run_prog((char *[]){"--run", "f", NULL});
  expect_failure(&r, 2, "no --feed", "missing feed 'x'", "--feed x=");
  tu_free(&r);
}

Test(runtime, unknown_feed_name) {
  const char *x = good_feed();
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", x), "--feed", feed_arg("z", x), NULL});
  expect_failure(&r, 2, "--feed z=", "no input 'z'", "inputs: x");
  tu_free(&r);
}

Test(runtime, duplicate_feed) {
  const char *x = good_feed();
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", x), "--feed", feed_arg("x", x), NULL});
  expect_failure(&r, 2, "--feed x twice", "feed 'x' given more than once", NULL);
  tu_free(&r);
}

Test(runtime, malformed_feed) {
  tu_result r = run_prog((char *[]){"--feed", "x", NULL});
  expect_failure(&r, 2, "--feed without =FILE", "--feed expects NAME=FILE.npy", "'x'");
  tu_free(&r);
}

Test(runtime, unknown_fetch_name) {
  const char *x = good_feed();
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", x), "--fetch", "z", NULL});
  expect_failure(&r, 2, "--fetch z", "no output 'z'", "outputs: y");
  tu_free(&r);
}

Test(runtime, unknown_option) {
  tu_result r = run_prog((char *[]){"--bogus", NULL});
  expect_failure(&r, 2, "--bogus", "unknown option '--bogus'", NULL);
  tu_free(&r);
}

Test(runtime, option_without_value) {
  tu_result r = run_prog((char *[]){"--run", NULL});
  expect_failure(&r, 2, "--run without a value", "--run needs a value", NULL);
  tu_free(&r);
}

Test(runtime, bad_repeat) {
  const char *x = good_feed();
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", x), "--repeat", "0", NULL});
  expect_failure(&r, 2, "--repeat 0", "--repeat needs a positive integer", "'0'");
  tu_free(&r);
}

Test(runtime, unknown_entry) {
  const char *x = good_feed();
  tu_result r = run_prog((char *[]){"--run", "g", "--feed", feed_arg("x", x), NULL});
  expect_failure(&r, 2, "--run g", "no entry 'g'", "entries: f");
  tu_free(&r);
}

/* ---- bad feed files ---- */

Test(runtime, feed_wrong_shape) {
  const char *p = rt_path("shape.npy");
  npy_spec s = {"<f4", false, 2, {3, 2}, x_values, sizeof x_values};
  write_npy(p, &s);
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", p), NULL});
  expect_failure(&r, 1, "feed of shape [3,2]", p, "expected f32[2,3], found f32[3,2]");
  tu_free(&r);
}

Test(runtime, feed_wrong_rank) {
  const char *p = rt_path("rank.npy");
  npy_spec s = {"<f4", false, 1, {6}, x_values, sizeof x_values};
  write_npy(p, &s);
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", p), NULL});
  expect_failure(&r, 1, "feed of shape [6]", p, "expected f32[2,3], found f32[6]");
  tu_free(&r);
}

Test(runtime, feed_wrong_dtype) {
  const char *p = rt_path("dtype.npy");
  double d[6] = {0};
  npy_spec s = {"<f8", false, 2, {2, 3}, d, sizeof d};
  write_npy(p, &s);
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", p), NULL});
  expect_failure(&r, 1, "feed of dtype f64", p, "expected f32[2,3], found f64[2,3]");
  tu_free(&r);
}

Test(runtime, feed_unsupported_dtype) {
  const char *p = rt_path("u16.npy");
  uint16_t d[6] = {0};
  npy_spec s = {"<u2", false, 2, {2, 3}, d, sizeof d};
  write_npy(p, &s);
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", p), NULL});
  expect_failure(&r, 1, "feed of dtype <u2", p, "unsupported");
  tu_free(&r);
}

Test(runtime, feed_big_endian) {
  const char *p = rt_path("be.npy");
  npy_spec s = {">f4", false, 2, {2, 3}, x_values, sizeof x_values};
  write_npy(p, &s);
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", p), NULL});
  expect_failure(&r, 1, "big-endian feed", p, "big-endian");
  tu_free(&r);
}

Test(runtime, feed_truncated_data) {
  const char *p = rt_path("trunc.npy");
  npy_spec s = {"<f4", false, 2, {2, 3}, x_values, 10}; /* 10 of 24 bytes */
  write_npy(p, &s);
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", p), NULL});
  expect_failure(&r, 1, "truncated feed", p, "truncated: expected 24 bytes of data, found 10");
  tu_free(&r);
}

Test(runtime, feed_truncated_header) {
  const char *p = rt_path("hdr.npy");
  FILE *f = fopen(p, "wb");
  cr_assert_not_null(f);
  fwrite("\x93NUMPY\x01\x00\x76\x00{'descr'", 1, 18, f); /* the header claims 118 bytes */
  fclose(f);
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", p), NULL});
  expect_failure(&r, 1, "truncated header", p, "truncated header");
  tu_free(&r);
}

Test(runtime, feed_extra_bytes) {
  const char *p = rt_path("extra.npy");
  float more[7] = {0};
  npy_spec s = {"<f4", false, 2, {2, 3}, more, sizeof more};
  write_npy(p, &s);
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", p), NULL});
  expect_failure(&r, 1, "feed with bytes after the data", p, "unexpected bytes");
  tu_free(&r);
}

Test(runtime, feed_not_npy) {
  const char *p = rt_path("text.npy");
  write_text(p, "x,y\n1,2\n3,4\n");
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", p), NULL});
  expect_failure(&r, 1, "a text file as feed", p, "not a .npy file");
  tu_free(&r);
}

Test(runtime, feed_empty_file) {
  const char *p = rt_path("empty.npy");
  write_text(p, "");
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", p), NULL});
  expect_failure(&r, 1, "an empty feed file", p, "not a .npy file");
  tu_free(&r);
}

Test(runtime, feed_missing_file) {
  const char *p = rt_path("nowhere.npy");
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", p), NULL});
  expect_failure(&r, 1, "a missing feed file", p, "cannot open");
  tu_free(&r);
}

Test(runtime, feed_fortran_order) {
  const char *p = rt_path("fortran.npy");
  npy_spec s = {"<f4", true, 2, {2, 3}, x_values, sizeof x_values};
  write_npy(p, &s);
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", p), NULL});
  expect_failure(&r, 1, "a fortran-order feed", p, "fortran_order");
  tu_free(&r);
}

Test(runtime, feed_malformed_header) {
  const char *p = rt_path("badhdr.npy");
  npy_spec s = {"<f4', 'shape': [2", false, 2, {2, 3}, x_values, sizeof x_values};
  write_npy(p, &s);
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", p), NULL});
  expect_failure(&r, 1, "a malformed header", p, NULL);
  tu_free(&r);
}

Test(runtime, fetch_unwritable) {
  const char *x = good_feed();
  const char *out = rt_path("no/such/dir/y.npy");
  tu_result r = run_prog((char *[]){"--feed", feed_arg("x", x), "--fetch", feed_arg("y", out), NULL});
  expect_failure(&r, 1, "--fetch to a missing directory", out, "cannot create");
  tu_free(&r);
}

/* ---- programs over a closed queue ---- */

Test(runtime, dequeue_closed_empty_queue) {
  const char *exe = build_module("closed",
                                 "module closed\n"
                                 "queue q : fifo(capacity=2) of (i32[])\n"
                                 "graph {\n"
                                 "  x = dequeue(q) : i32[]\n"
                                 "}\n"
                                 "program {\n"
                                 "  close q\n"
                                 "  run x\n"
                                 "  print x\n"
                                 "}\n");
  char *argv[] = {(char *)exe, NULL};
  tu_result r = tu_run(argv, 60);
  expect_failure(&r, 1, "dequeue from a closed, empty queue", "OutOfRange", NULL);
  cr_assert_str_empty(r.out, "nothing should be printed, got:\n%s", r.out);
  tu_free(&r);
}

Test(runtime, dequeue_closed_after_draining) {
  /* outside a loop, running past the end of a closed queue is an error */
  const char *exe = build_module("past_end",
                                 "module past_end\n"
                                 "queue q : fifo(capacity=2) of (i32[])\n"
                                 "graph {\n"
                                 "  fill = enqueue(q, const<i32[]>(7))\n"
                                 "  x = dequeue(q) : i32[]\n"
                                 "}\n"
                                 "program {\n"
                                 "  run fill\n"
                                 "  close q\n"
                                 "  repeat 2 {\n"
                                 "    run x\n"
                                 "    print x\n"
                                 "  }\n"
                                 "}\n");
  char *argv[] = {(char *)exe, NULL};
  tu_result r = tu_run(argv, 60);
  expect_failure(&r, 1, "a second dequeue from a closed queue", "OutOfRange", NULL);
  cr_assert_str_eq(r.out, "7\n", "expected the one element before the error, got:\n%s", r.out);
  tu_free(&r);
}

Test(runtime, loop_ends_when_queue_drained) {
  const char *exe = build_module("drain",
                                 "module drain\n"
                                 "queue q : fifo(capacity=3) of (i32[])\n"
                                 "graph {\n"
                                 "  fill = enqueue_many(q, const<i32[3]>([1, 2, 3]))\n"
                                 "  x = dequeue(q) : i32[]\n"
                                 "  y = mul(x, const<i32[]>(10))\n"
                                 "}\n"
                                 "program {\n"
                                 "  run fill\n"
                                 "  close q\n"
                                 "  loop {\n"
                                 "    run y\n"
                                 "    print y\n"
                                 "  }\n"
                                 "  print \"done\"\n"
                                 "}\n");
  char *argv[] = {(char *)exe, NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 0, "the drained loop exited %d:\n%s", r.status, r.err);
  cr_assert_str_eq(r.out, "10\n20\n30\ndone\n", "printed:\n%s", r.out);
  cr_assert_str_empty(r.err, "stderr:\n%s", r.err);
  tu_free(&r);
}
