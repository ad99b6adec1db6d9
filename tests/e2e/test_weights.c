/* test_weights.c — `kiln build --weights-file`: the constants go to
 * <output>.weights instead of the binary (docs/runtime.md, "Weights files").
 * The binary shrinks by about the weights' size and prints what the embedded
 * build prints; the file follows the documented format (checked from Python
 * with zlib); a binary without its file, or with a corrupt, truncated or
 * foreign one, says which file is wrong and exits 1 without running; the
 * file is found through $KILN_WEIGHTS and by embedding programs (-c). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"

static void build(const char *kg, const char *out, bool weights) {
  char *argv[] = {(char *)tu_kiln(), "build", (char *)kg, "-o", (char *)out, weights ? "--weights-file" : NULL,
                  NULL};
  tu_result r = tu_run(argv, 180);
  cr_assert_eq(r.status, 0, "kiln build %s%s failed:\n%s", kg, weights ? " --weights-file" : "", r.err);
  tu_free(&r);
}

static tu_result run(const char *exe) {
  char *argv[] = {(char *)exe, NULL};
  return tu_run(argv, 120);
}

static long long file_size(const char *path) {
  struct stat sb;
  cr_assert_eq(stat(path, &sb), 0, "%s is missing", path);
  return (long long)sb.st_size;
}

static char *cat(const char *a, const char *b) {
  char *s = NULL;
  cr_assert(asprintf(&s, "%s%s", a, b) > 0);
  return s;
}

static void copy_file(const char *from, const char *to) {
  size_t n = 0;
  char *data = tu_read_file(from, &n);
  cr_assert_not_null(data, "cannot read %s", from);
  FILE *f = fopen(to, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(data, 1, n, f), n);
  fclose(f);
  free(data);
  if (access(from, X_OK) == 0) chmod(to, 0755);
}

/* W[i][j] = ((31i + 17j) mod 101 - 50) / 64 + k: exact in f32, different
 * for another k; V a 128x128 variable with a literal initializer. */
static void write_big(const char *path, int k) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("module big\nvar v : f32[128,128] = [", f);
  for (int i = 0; i < 128; i++) {
    fputs(i ? ",\n [" : "[", f);
    for (int j = 0; j < 128; j++) fprintf(f, "%s%g", j ? ", " : "", (double)((i * 7 + j * 3) % 29 - 14) / 8);
    fputs("]", f);
  }
  fputs("]\ngraph {\n  w = const<f32[256,256]>([", f);
  for (int i = 0; i < 256; i++) {
    fputs(i ? ",\n    [" : "[", f);
    for (int j = 0; j < 256; j++) fprintf(f, "%s%.9g", j ? ", " : "", (double)((31 * i + 17 * j) % 101 - 50) / 64 + k);
    fputs("]", f);
  }
  fputs("])\n"
        "  x = const<f32[1,256]>(1)\n"
        "  y = matmul(x, w)\n"
        "  head = slice(y) {begin=[0, 0], size=[1, 8]}\n"
        "  total = sum(w)\n"
        "  vsum = sum(v)\n"
        "}\n"
        "program {\n  run head, total, vsum\n  print head\n  print total\n  print vsum\n}\n",
        f);
  fclose(f);
}

/* The data bytes a build with --weights-file moves out of the binary. */
#define BIG_WEIGHTS (256 * 256 * 4 + 128 * 128 * 4 + 256 * 4)

typedef struct fixture {
  char *dir, *kg, *emb, *side, *weights;
} fixture;

static fixture big_fixture(void) {
  fixture x = {tu_tmpdir(), NULL, NULL, NULL, NULL};
  x.kg = cat(x.dir, "/big.kg");
  x.emb = cat(x.dir, "/embedded");
  x.side = cat(x.dir, "/side");
  x.weights = cat(x.dir, "/side.weights");
  write_big(x.kg, 0);
  build(x.kg, x.emb, false);
  build(x.kg, x.side, true);
  return x;
}

static void fixture_free(fixture *x) {
  tu_rmtree(x->dir);
  free(x->dir), free(x->kg), free(x->emb), free(x->side), free(x->weights);
}

/* The binary runs, failing: exit 1, nothing printed, the file and `what` in the message. */
static void refuses(const char *exe, const char *weights, const char *what) {
  tu_result r = run(exe);
  cr_assert_eq(r.status, 1, "expected exit status 1, got %d\nstdout: %s\nstderr: %s", r.status, r.out, r.err);
  cr_assert_str_eq(r.out, "", "the program ran:\n%s", r.out);
  cr_assert(strstr(r.err, weights), "the message does not name %s:\n%s", weights, r.err);
  cr_assert(strstr(r.err, what), "the message does not say '%s':\n%s", what, r.err);
  cr_assert(!strncmp(r.err, "error: weights file '", 21), "unexpected message:\n%s", r.err);
  tu_free(&r);
}

static void flip_byte(const char *path, long at) {
  FILE *f = fopen(path, "r+b");
  cr_assert_not_null(f);
  fseek(f, at, SEEK_SET);
  int c = fgetc(f);
  fseek(f, at, SEEK_SET);
  fputc(c ^ 0x5a, f);
  fclose(f);
}

Test(weights, classifier_same_output) {
  char *dir = tu_tmpdir();
  char *emb = cat(dir, "/embedded"), *side = cat(dir, "/classifier"), *w = cat(dir, "/classifier.weights");
  build("examples/classifier.kg", emb, false);
  build("examples/classifier.kg", side, true);
  char *none = cat(dir, "/embedded.weights");
  cr_assert_eq(access(none, F_OK), -1, "an embedded build wrote a weights file");
  free(none);
  /* batch f32[2,4], w f32[4,3], b f32[3], seen i64: 4 constants, 128 bytes of
   * header and 4 x 64 bytes of data */
  cr_assert_eq(file_size(w), 128 + 4 * 64);
  tu_result a = run(emb), b = run(side);
  char *expected = tu_read_file("examples/classifier.expected", NULL);
  cr_assert_eq(a.status, 0, "%s", a.err);
  cr_assert_eq(b.status, 0, "%s", b.err);
  cr_assert_str_eq(b.out, a.out);
  cr_assert_str_eq(b.out, expected);
  cr_log_info("classifier: embedded %lld bytes, with --weights-file %lld + %lld", file_size(emb), file_size(side),
              file_size(w));
  free(expected);
  tu_free(&a), tu_free(&b);
  tu_rmtree(dir);
  free(dir), free(emb), free(side), free(w);
}

Test(weights, big_model_smaller_same_output) {
  fixture x = big_fixture();
  long long e = file_size(x.emb), s = file_size(x.side), w = file_size(x.weights);
  cr_log_info("big: embedded %lld bytes, with --weights-file %lld + %lld", e, s, w);
  cr_assert_geq(w, BIG_WEIGHTS);
  cr_assert_lt(w, BIG_WEIGHTS + 4096);
  /* the binary shrinks by the weights, give or take the descriptor table */
  cr_assert_geq(e - s, BIG_WEIGHTS - 4096, "embedded %lld, side %lld", e, s);
  cr_assert_leq(e - s, BIG_WEIGHTS + 4096, "embedded %lld, side %lld", e, s);
  tu_result a = run(x.emb), b = run(x.side);
  cr_assert_eq(a.status, 0, "%s", a.err);
  cr_assert_eq(b.status, 0, "%s", b.err);
  cr_assert_str_eq(b.out, a.out);
  /* sum(w) and sum(v), computed here */
  double tw = 0, tv = 0;
  for (int i = 0; i < 256; i++)
    for (int j = 0; j < 256; j++) tw += (double)((31 * i + 17 * j) % 101 - 50) / 64;
  for (int i = 0; i < 128; i++)
    for (int j = 0; j < 128; j++) tv += (double)((i * 7 + j * 3) % 29 - 14) / 8;
  char *nl = strrchr(b.out, ']');
  cr_assert_not_null(nl);
  double gw = 0, gv = 0;
  cr_assert_eq(sscanf(nl + 1, "%lf %lf", &gw, &gv), 2, "%s", b.out);
  cr_assert_eq(gw, tw, "sum(w) %g, expected %g", gw, tw);
  cr_assert_eq(gv, tv, "sum(v) %g, expected %g", gv, tv);
  tu_free(&a), tu_free(&b);
  fixture_free(&x);
}

/* The documented format, read by Python's zlib and struct alone. */
static const char format_py[] =
    "import struct, sys, zlib\n"
    "b = open(sys.argv[1], 'rb').read()\n"
    "magic, ver, n, hs, ds, total, dcrc, res = struct.unpack_from('<8sIIQQQII', b, 0)\n"
    "assert magic == b'KILNWGTS' and ver == 1 and res == 0, (magic, ver, res)\n"
    "assert hs % 64 == 0 and hs == (48 + 16 * n + 4 + 63) // 64 * 64, hs\n"
    "assert ds % 64 == 0 and total == hs + ds == len(b), (hs, ds, total, len(b))\n"
    "assert struct.unpack_from('<I', b, hs - 4)[0] == zlib.crc32(b[:hs - 4])\n"
    "assert b[48 + 16 * n:hs - 4] == bytes(hs - 4 - 48 - 16 * n)\n"
    "assert zlib.crc32(b[hs:]) == dcrc\n"
    "end = 0\n"
    "sizes = []\n"
    "for i in range(n):\n"
    "    off, size = struct.unpack_from('<QQ', b, 48 + 16 * i)\n"
    "    assert off % 64 == 0 and off >= end and off + size <= ds, (off, size)\n"
    "    assert b[hs + end:hs + off] == bytes(off - end)\n"
    "    end = off + size\n"
    "    sizes.append(size)\n"
    "    if size == 256 * 256 * 4:\n"
    "        w = struct.unpack_from('<65536f', b, hs + off)\n"
    "        assert all(w[256 * i + j] == ((31 * i + 17 * j) % 101 - 50) / 64 for i in range(256) for j in range(256))\n"
    "assert b[hs + end:] == bytes(ds - end)\n"
    "print(sorted(sizes))\n";

Test(weights, documented_format) {
  fixture x = big_fixture();
  const char *py = getenv("PYTHON") && *getenv("PYTHON") ? getenv("PYTHON") : "/usr/bin/python3";
  char *argv[] = {(char *)py, "-c", (char *)format_py, x.weights, NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, "[1024, 65536, 262144]\n");
  tu_free(&r);
  fixture_free(&x);
}

Test(weights, moved_binary_without_its_file) {
  fixture x = big_fixture();
  char *sub = cat(x.dir, "/elsewhere"), *moved = cat(x.dir, "/elsewhere/side");
  cr_assert_eq(mkdir(sub, 0755), 0);
  cr_assert_eq(rename(x.side, moved), 0);
  char *expect = cat(sub, "/side.weights");
  refuses(moved, expect, "cannot open: No such file or directory");
  /* $KILN_WEIGHTS names the file, or its directory */
  tu_result ref = run(x.emb);
  setenv("KILN_WEIGHTS", x.weights, 1);
  tu_result a = run(moved);
  setenv("KILN_WEIGHTS", x.dir, 1);
  tu_result b = run(moved);
  unsetenv("KILN_WEIGHTS");
  cr_assert_eq(a.status, 0, "%s", a.err);
  cr_assert_eq(b.status, 0, "%s", b.err);
  cr_assert_str_eq(a.out, ref.out);
  cr_assert_str_eq(b.out, ref.out);
  /* moved together, they work again */
  cr_assert_eq(rename(x.weights, expect), 0);
  tu_result c = run(moved);
  cr_assert_eq(c.status, 0, "%s", c.err);
  cr_assert_str_eq(c.out, ref.out);
  tu_free(&ref), tu_free(&a), tu_free(&b), tu_free(&c);
  free(sub), free(moved), free(expect);
  fixture_free(&x);
}

Test(weights, wrong_checksum) {
  fixture x = big_fixture();
  long long n = file_size(x.weights);
  flip_byte(x.weights, (long)(n / 2)); /* in the data */
  refuses(x.side, x.weights, "data checksum mismatch");
  flip_byte(x.weights, (long)(n / 2));
  flip_byte(x.weights, 50); /* in the header's table */
  refuses(x.side, x.weights, "header checksum mismatch");
  flip_byte(x.weights, 50);
  tu_result ok = run(x.side);
  cr_assert_eq(ok.status, 0, "restored file refused: %s", ok.err);
  tu_free(&ok);
  fixture_free(&x);
}

Test(weights, truncated) {
  fixture x = big_fixture();
  long long n = file_size(x.weights);
  cr_assert_eq(truncate(x.weights, n - 1), 0);
  refuses(x.side, x.weights, "truncated");
  cr_assert_eq(truncate(x.weights, n / 2), 0);
  refuses(x.side, x.weights, "truncated");
  cr_assert_eq(truncate(x.weights, 20), 0);
  refuses(x.side, x.weights, "truncated");
  cr_assert_eq(truncate(x.weights, 0), 0);
  refuses(x.side, x.weights, "truncated");
  fixture_free(&x);
}

Test(weights, another_builds_file) {
  fixture x = big_fixture();
  char *kg2 = cat(x.dir, "/big2.kg"), *other = cat(x.dir, "/other"), *ow = cat(x.dir, "/other.weights");
  write_big(kg2, 1); /* the same shapes, other values */
  build(kg2, other, true);
  copy_file(ow, x.weights);
  refuses(x.side, x.weights, "not the weights of this binary");
  /* a file with bytes after its data */
  copy_file(ow, x.weights);
  FILE *f = fopen(x.weights, "ab");
  fputs("extra", f);
  fclose(f);
  refuses(x.side, x.weights, "bytes after the data");
  /* not a weights file at all */
  copy_file(x.kg, x.weights);
  refuses(x.side, x.weights, "not a kiln weights file");
  free(kg2), free(other), free(ow);
  fixture_free(&x);
}

/* An embedding program (-c) finds the file beside its executable, through
 * $KILN_WEIGHTS, or where <module>_create_with_weights says. */
static const char embed_c[] =
    "#include <stdio.h>\n"
    "#include \"model.h\"\n"
    "int main(int argc, char **argv) {\n"
    "  int st = 0;\n"
    "  kiln_inst *m = kiln_inst_create_with_weights(&model_desc, argc > 1 ? argv[1] : NULL, &st);\n"
    "  if (!m || st) { fprintf(stderr, \"error: %s\\n\", m ? kiln_inst_error(m) : \"oom\"); kiln_inst_destroy(m); return 1; }\n"
    "  model_predict_in in = {{{1, 2, 3}, {-1, 0, 4}}};\n"
    "  model_predict_out out;\n"
    "  if (model_predict(m, &in, &out)) { fprintf(stderr, \"predict: %s\\n\", model_error(m)); return 1; }\n"
    "  printf(\"%g %g %g\\n\", out.y[0][0], out.y[0][1], out.y[0][2]);\n"
    "  kiln_inst *again = model_create_with_weights(\"/nonexistent\"); /* loaded already: the path is not read */\n"
    "  printf(\"%s\\n\", again ? \"again\" : \"failed\");\n"
    "  model_destroy(again);\n"
    "  model_destroy(m);\n"
    "  return 0;\n"
    "}\n";

Test(weights, embedding_library) {
  char *dir = tu_tmpdir();
  char *obj = cat(dir, "/model.o"), *src = cat(dir, "/main.c"), *exe = cat(dir, "/embed"), *inc = cat("-I", dir);
  char *w = cat(dir, "/model.weights"), *rt = cat(tu_build_dir(), "/libkilnrt.a");
  char *b[] = {(char *)tu_kiln(), "build", "-c", "--weights-file", "examples/embed/model.kg", "-o", obj, NULL};
  tu_result r = tu_run(b, 120);
  cr_assert_eq(r.status, 0, "kiln build -c --weights-file failed:\n%s", r.err);
  tu_free(&r);
  cr_assert_eq(access(w, R_OK), 0, "no %s", w);
  FILE *f = fopen(src, "w");
  fputs(embed_c, f);
  fclose(f);
  char *cc[40] = {"cc", "-std=c17", "-Wall", "-Wextra", "-Werror", inc, "-Iruntime", src, obj, rt,
                  "-lopenblas", "-lpthread", "-lm", "-o", exe};
  int ncc = 15;
  char *extra = getenv("KILN_LDFLAGS") ? strdup(getenv("KILN_LDFLAGS")) : NULL;
  for (char *t = extra ? strtok(extra, " ") : NULL; t && ncc < 38; t = strtok(NULL, " ")) cc[ncc++] = t;
  cc[ncc] = NULL;
  r = tu_run(cc, 120);
  cr_assert_eq(r.status, 0, "compiling the embedding program failed:\n%s", r.err);
  tu_free(&r);
  free(extra);
  static const char expected[] = "2 0 2\nagain\n";
  /* beside the executable */
  char *a1[] = {exe, NULL};
  r = tu_run(a1, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, expected);
  tu_free(&r);
  /* elsewhere: named by the argument (file or directory), or missing */
  char *hidden = cat(dir, "/hidden.bin");
  cr_assert_eq(rename(w, hidden), 0);
  char *a2[] = {exe, hidden, NULL};
  r = tu_run(a2, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, expected);
  tu_free(&r);
  r = tu_run(a1, 60);
  cr_assert_eq(r.status, 1);
  cr_assert(strstr(r.err, "weights file '") && strstr(r.err, "/model.weights': cannot open"), "%s", r.err);
  tu_free(&r);
  char *a3[] = {exe, dir, NULL};
  r = tu_run(a3, 60);
  cr_assert_eq(r.status, 1);
  cr_assert(strstr(r.err, w), "the message does not name %s:\n%s", w, r.err);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir), free(obj), free(src), free(exe), free(inc), free(w), free(rt), free(hidden);
}

Test(weights, other_emits) {
  /* the IR shows zeroed buffers and the file's name; no file is written */
  char *dir = tu_tmpdir();
  char *ll = cat(dir, "/c.ll");
  char *e[] = {(char *)tu_kiln(), "emit", "--emit=llvm", "--weights-file", "examples/classifier.kg", "-o", ll, NULL};
  tu_result r = tu_run(e, 60);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tu_free(&r);
  char *text = tu_read_file(ll, NULL);
  cr_assert(strstr(text, "@w = internal global [48 x i8] zeroinitializer, align 64"), "%s", text);
  cr_assert(strstr(text, "c\"classifier.weights\\00\""), "%s", text);
  free(text);
  int n = 0;
  char **left = tu_list(dir, ".weights", &n);
  cr_assert_eq(n, 0, "a weights file was written for --emit=llvm");
  free(left);
  /* stages before code generation reject it */
  const char *kinds[] = {"--emit=graph", "--emit=opt-graph", "--emit=dot", "--emit=ptx"};
  for (int i = 0; i < 4; i++) {
    char *g[] = {(char *)tu_kiln(), "emit", (char *)kinds[i], "--weights-file", "examples/classifier.kg", NULL};
    r = tu_run(g, 60);
    cr_assert_eq(r.status, 2, "%s: status %d", kinds[i], r.status);
    cr_assert(strstr(r.err, "--weights-file needs generated code"), "%s", r.err);
    tu_free(&r);
  }
  char *c[] = {(char *)tu_kiln(), "check", "--weights-file", "examples/classifier.kg", NULL};
  r = tu_run(c, 60);
  cr_assert_eq(r.status, 2);
  tu_free(&r);
  tu_rmtree(dir);
  free(dir), free(ll);
}
