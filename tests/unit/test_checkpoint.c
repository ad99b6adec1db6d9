/* test_checkpoint.c — kiln_rt_save / kiln_rt_restore (runtime/checkpoint.c)
 * with hand-written module descriptors: round trips of every dtype, file
 * names, the `checkpoint` index and max_to_keep, which file a prefix
 * restores, and refusals (truncated, flipped bytes, wrong magic or version,
 * missing variables, wrong shapes or dtypes, hostile header fields, random
 * mutations), each with its message and with no variable changed. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "kilnrt.h"
#include "testutil.h"

/* ---- modules ---- */

static const int64_t d5[1] = {5}, d0[1] = {0}, d23[2] = {2, 3}, d32[2] = {3, 2};

/* Every dtype, a scalar, an empty tensor, a scoped name. */
static const kiln_tensor_desc all_vars[] = {
    {"flag", KILN_BOOL, 1, d5, 0, 5},     {"layer/q", KILN_I8, 1, d5, 64, 5},
    {"pixels", KILN_U8, 2, d23, 128, 6},  {"counts", KILN_I32, 2, d23, 192, 24},
    {"global_step", KILN_I64, 0, NULL, 256, 8}, {"w", KILN_F32, 2, d23, 320, 24},
    {"acc", KILN_F64, 1, d5, 384, 40},    {"empty", KILN_F32, 1, d0, 448, 0},
};
static const kiln_module_desc all_mod = {.name = "all", .vars_size = 512, .n_vars = 8, .vars = all_vars};

/* all_mod plus a variable the checkpoints lack. */
static const kiln_tensor_desc more_vars[] = {
    {"flag", KILN_BOOL, 1, d5, 0, 5},     {"layer/q", KILN_I8, 1, d5, 64, 5},
    {"pixels", KILN_U8, 2, d23, 128, 6},  {"counts", KILN_I32, 2, d23, 192, 24},
    {"global_step", KILN_I64, 0, NULL, 256, 8}, {"w", KILN_F32, 2, d23, 320, 24},
    {"acc", KILN_F64, 1, d5, 384, 40},    {"empty", KILN_F32, 1, d0, 448, 0},
    {"bias", KILN_F32, 1, d5, 512, 20},
};
static const kiln_module_desc more_mod = {.name = "more", .vars_size = 576, .n_vars = 9, .vars = more_vars};

/* A subset (the checkpoint's other variables are extra: ignored). */
static const kiln_tensor_desc few_vars[] = {
    {"w", KILN_F32, 2, d23, 0, 24}, {"global_step", KILN_I64, 0, NULL, 64, 8}};
static const kiln_module_desc few_mod = {.name = "few", .vars_size = 128, .n_vars = 2, .vars = few_vars};

/* w with another shape, and with another dtype. */
static const kiln_tensor_desc shape_vars[] = {{"w", KILN_F32, 2, d32, 0, 24}};
static const kiln_module_desc shape_mod = {.name = "shape", .vars_size = 64, .n_vars = 1, .vars = shape_vars};
static const kiln_tensor_desc dtype_vars[] = {{"w", KILN_F64, 2, d23, 0, 48}};
static const kiln_module_desc dtype_mod = {.name = "dtype", .vars_size = 64, .n_vars = 1, .vars = dtype_vars};

/* Larger than the saver's 1 MiB staging chunk, and not a multiple of 8. */
static const int64_t dbig[1] = {300001};
static const kiln_tensor_desc big_vars[] = {{"a", KILN_U8, 1, d5, 0, 5},
                                            {"big", KILN_F32, 1, dbig, 64, 1200004}};
static const kiln_module_desc big_mod = {.name = "big", .vars_size = 1200128, .n_vars = 2, .vars = big_vars};

/* ---- helpers ---- */

static char *ck_dir;

static void ck_setup(void) { cr_assert_not_null(ck_dir = tu_tmpdir()); }
static void ck_teardown(void) {
  tu_rmtree(ck_dir);
  free(ck_dir);
}

TestSuite(checkpoint, .init = ck_setup, .fini = ck_teardown);

/* A path under the test's directory (one of a few rotating buffers). */
__attribute__((format(printf, 1, 2))) static const char *P(const char *fmt, ...) {
  static char bufs[8][512];
  static int next;
  char *b = bufs[next++ % 8];
  int n = snprintf(b, sizeof bufs[0], "%s/", ck_dir);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b + n, sizeof bufs[0] - (size_t)n, fmt, ap);
  va_end(ap);
  return b;
}

/* Variable values that depend on `seed`: bools alternate, other bytes count. */
static void fill(kiln_inst *inst, int seed) {
  const kiln_module_desc *d = inst->desc;
  for (int32_t i = 0; i < d->n_vars; i++) {
    const kiln_tensor_desc *v = &d->vars[i];
    for (int64_t k = 0; k < v->nbytes; k++)
      inst->vars[v->offset + k] =
          v->dtype == KILN_BOOL ? (uint8_t)((k + seed) & 1) : (uint8_t)(seed * 31 + i * 7 + k * 13);
  }
}

static kiln_inst *make(const kiln_module_desc *d, int seed) {
  int st;
  kiln_inst *inst = kiln_inst_create(d, &st);
  cr_assert_not_null(inst);
  cr_assert_eq(st, KILN_OK);
  fill(inst, seed);
  return inst;
}

/* Do the variables of `a` hold what `fill(seed)` gave them? */
static int holds(kiln_inst *a, int seed) {
  kiln_inst *want = make(a->desc, seed);
  int same = 1;
  for (int32_t i = 0; i < a->desc->n_vars; i++) {
    const kiln_tensor_desc *v = &a->desc->vars[i];
    same &= memcmp(a->vars + v->offset, want->vars + v->offset, (size_t)v->nbytes) == 0;
  }
  kiln_inst_destroy(want);
  return same;
}

static void save(const kiln_module_desc *d, int seed, const char *prefix, int64_t step, int32_t keep) {
  kiln_inst *inst = make(d, seed);
  cr_assert_eq(kiln_rt_save(inst, prefix, step, keep), KILN_OK, "save %s: %s", prefix,
               kiln_inst_error(inst));
  kiln_inst_destroy(inst);
}

/* Restores `prefix` into a fresh instance of d; asserts it gets `seed`'s values. */
static void restores(const kiln_module_desc *d, const char *prefix, int seed) {
  kiln_inst *inst = make(d, 1000);
  cr_assert_eq(kiln_rt_restore(inst, prefix), KILN_OK, "restore %s: %s", prefix, kiln_inst_error(inst));
  cr_assert(holds(inst, seed), "restore %s: wrong values", prefix);
  kiln_inst_destroy(inst);
}

/* Restoring `prefix` fails with a message containing each of the strings
 * (NULL-terminated list) and leaves every variable as it was. */
static void refused(const kiln_module_desc *d, const char *prefix, ...) {
  kiln_inst *inst = make(d, 1000);
  cr_assert_eq(kiln_rt_restore(inst, prefix), KILN_ERROR, "restore %s succeeded", prefix);
  const char *msg = kiln_inst_error(inst);
  va_list ap;
  va_start(ap, prefix);
  for (const char *s; (s = va_arg(ap, const char *));)
    cr_assert(strstr(msg, s), "restore %s: message '%s' lacks '%s'", prefix, msg, s);
  va_end(ap);
  cr_assert(holds(inst, 1000), "restore %s failed but changed variables", prefix);
  kiln_inst_destroy(inst);
}
#define REFUSED(d, prefix, ...) refused(d, prefix, __VA_ARGS__, (const char *)NULL)

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static uint8_t *slurp(const char *path, size_t *len) {
  uint8_t *b = (uint8_t *)tu_read_file(path, len);
  cr_assert_not_null(b, "cannot read %s", path);
  return b;
}

static void spit(const char *path, const void *b, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(b, 1, len, f), len);
  cr_assert_eq(fclose(f), 0);
}

/* An independent, bitwise CRC-32 (zlib's). */
static uint32_t ref_crc(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return ~c;
}

static uint64_t le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static void put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Where the fields of a table entry are in the file. */
typedef struct {
  size_t name_len, name, dtype, rank, dims, offset, nbytes, crc;
} field_pos;

static int walk(const uint8_t *b, field_pos *out, int cap) {
  uint32_t n = (uint32_t)le(b + 12, 4);
  size_t at = 48;
  for (uint32_t i = 0; i < n && (int)i < cap; i++) {
    field_pos *f = &out[i];
    f->name_len = at;
    f->name = at + 4;
    at += 4 + le(b + at, 4);
    f->dtype = at;
    f->rank = at + 8;
    f->dims = at + 12;
    at += 12 + 8 * le(b + at + 8, 4);
    f->offset = at, f->nbytes = at + 8, f->crc = at + 16;
    at += 20;
  }
  return (int)n;
}

/* Makes the header checksum right again (when header_size fits the file). */
static void fix_header_crc(uint8_t *b, size_t n) {
  if (n < 48) return;
  uint64_t hs = le(b + 16, 8);
  if (hs >= 52 && hs <= n) put_le(b + hs - 4, ref_crc(b, hs - 4), 4);
}

/* ---- round trips, names, the index ---- */

Test(checkpoint, round_trip_every_dtype) {
  save(&all_mod, 1, P("model"), 7, 5);
  cr_assert(exists(P("model-7.kckpt")));
  restores(&all_mod, P("model"), 1);
  restores(&all_mod, P("model-7"), 1);
  restores(&all_mod, P("model-7.kckpt"), 1);
}

Test(checkpoint, round_trip_larger_than_a_chunk) {
  save(&big_mod, 3, P("big"), 1, 5);
  restores(&big_mod, P("big"), 3);
}

Test(checkpoint, layout_aligned_and_checksummed) {
  save(&all_mod, 1, P("model"), 42, 5);
  size_t len;
  uint8_t *b = slurp(P("model-42.kckpt"), &len);
  cr_assert_eq(memcmp(b, "KILNCKPT", 8), 0);
  cr_assert_eq(le(b + 8, 4), 1);
  cr_assert_eq(le(b + 12, 4), 8);
  uint64_t hs = le(b + 16, 8), ds = le(b + 24, 8);
  cr_assert_eq((int64_t)le(b + 32, 8), 42);
  cr_assert_eq(hs % 64, 0);
  cr_assert_eq(ds % 64, 0);
  cr_assert_eq(hs + ds, len);
  cr_assert_eq(le(b + hs - 4, 4), ref_crc(b, hs - 4));
  cr_assert_eq(ref_crc((const uint8_t *)"123456789", 9), 0xCBF43926u);
  field_pos f[8];
  cr_assert_eq(walk(b, f, 8), 8);
  for (int i = 0; i < 8; i++) {
    const kiln_tensor_desc *v = &all_vars[i];
    cr_assert_eq(le(b + f[i].name_len, 4), strlen(v->name));
    cr_assert_eq(memcmp(b + f[i].name, v->name, strlen(v->name)), 0);
    cr_assert_str_eq((const char *)b + f[i].dtype, kiln_dtype_name(v->dtype));
    cr_assert_eq(le(b + f[i].rank, 4), (uint64_t)v->rank);
    uint64_t off = le(b + f[i].offset, 8), nb = le(b + f[i].nbytes, 8);
    cr_assert_eq(off % 64, 0, "variable %s at %llu", v->name, (unsigned long long)off);
    cr_assert_eq(nb, (uint64_t)v->nbytes);
    cr_assert_eq(le(b + f[i].crc, 4), ref_crc(b + hs + off, nb));
  }
  free(b);
}

Test(checkpoint, negative_step_names_the_prefix) {
  save(&all_mod, 2, P("sub/model"), -1, 5);
  cr_assert(exists(P("sub/model.kckpt")));
  char *ix = tu_read_file(P("sub/checkpoint"), NULL);
  cr_assert_str_eq(ix, "model_checkpoint_path: \"model\"\nall_model_checkpoint_paths: \"model\"\n");
  free(ix);
  restores(&all_mod, P("sub/model"), 2);
  /* Saving again replaces it; it is listed once. */
  save(&all_mod, 3, P("sub/model"), -1, 5);
  ix = tu_read_file(P("sub/checkpoint"), NULL);
  cr_assert_str_eq(ix, "model_checkpoint_path: \"model\"\nall_model_checkpoint_paths: \"model\"\n");
  free(ix);
  restores(&all_mod, P("sub/model"), 3);
}

Test(checkpoint, creates_directories) {
  save(&all_mod, 4, P("a/b/c/model"), 1, 5);
  cr_assert(exists(P("a/b/c/model-1.kckpt")));
  cr_assert(exists(P("a/b/c/checkpoint")));
  restores(&all_mod, P("a/b/c/model"), 4);
}

Test(checkpoint, max_to_keep_deletes_oldest) {
  for (int s = 1; s <= 5; s++) save(&all_mod, s, P("model"), s * 10, 2);
  int n;
  char **files = tu_list(ck_dir, ".kckpt", &n);
  cr_assert_eq(n, 2);
  cr_assert_str_eq(files[0], P("model-40.kckpt"));
  cr_assert_str_eq(files[1], P("model-50.kckpt"));
  for (int i = 0; i < n; i++) free(files[i]);
  free(files);
  char *ix = tu_read_file(P("checkpoint"), NULL);
  cr_assert_str_eq(ix, "model_checkpoint_path: \"model-50\"\n"
                       "all_model_checkpoint_paths: \"model-40\"\n"
                       "all_model_checkpoint_paths: \"model-50\"\n");
  free(ix);
  restores(&all_mod, P("model"), 5);
  restores(&all_mod, P("model-40"), 4);
  REFUSED(&all_mod, P("model-30"), "no checkpoint", "names none of prefix 'model-30'");
}

Test(checkpoint, resaving_a_step_moves_it_last) {
  save(&all_mod, 1, P("model"), 1, 5);
  save(&all_mod, 2, P("model"), 2, 5);
  save(&all_mod, 3, P("model"), 1, 5);
  char *ix = tu_read_file(P("checkpoint"), NULL);
  cr_assert_str_eq(ix, "model_checkpoint_path: \"model-1\"\n"
                       "all_model_checkpoint_paths: \"model-2\"\n"
                       "all_model_checkpoint_paths: \"model-1\"\n");
  free(ix);
  restores(&all_mod, P("model"), 3);
}

Test(checkpoint, restore_by_prefix_picks_the_latest) {
  save(&all_mod, 1, P("model"), 1, 5);
  save(&all_mod, 2, P("model"), 2, 5);
  save(&all_mod, 3, P("model"), 3, 5);
  restores(&all_mod, P("model"), 3);
  restores(&all_mod, P("model-1"), 1);
  restores(&all_mod, P("model-2.kckpt"), 2);
  restores(&all_mod, ck_dir, 3); /* a directory: its index's latest */
  /* The index, not the step numbers, says which is the latest. */
  save(&all_mod, 4, P("model"), 2, 5);
  restores(&all_mod, P("model"), 4);
}

Test(checkpoint, prefixes_sharing_a_directory) {
  save(&all_mod, 1, P("model"), 1, 1);
  save(&all_mod, 2, P("model"), 2, 1);
  save(&all_mod, 3, P("model2"), 5, 1);
  save(&all_mod, 4, P("model2"), 6, 1);
  /* keep 1 counts each prefix alone; the index lists both. */
  char *ix = tu_read_file(P("checkpoint"), NULL);
  cr_assert_str_eq(ix, "model_checkpoint_path: \"model2-6\"\n"
                       "all_model_checkpoint_paths: \"model-2\"\n"
                       "all_model_checkpoint_paths: \"model2-6\"\n");
  free(ix);
  restores(&all_mod, P("model"), 2); /* not model2-6, the index's latest */
  restores(&all_mod, P("model2"), 4);
  REFUSED(&all_mod, P("mod"), "names none of prefix 'mod'");
}

Test(checkpoint, index_drops_deleted_files_and_escapes_names) {
  save(&all_mod, 1, P("we\"ird\\name"), 1, 5);
  save(&all_mod, 2, P("we\"ird\\name"), 2, 5);
  cr_assert_eq(remove(P("we\"ird\\name-1.kckpt")), 0);
  save(&all_mod, 3, P("we\"ird\\name"), 3, 5);
  char *ix = tu_read_file(P("checkpoint"), NULL);
  cr_assert_str_eq(ix, "model_checkpoint_path: \"we\\\"ird\\\\name-3\"\n"
                       "all_model_checkpoint_paths: \"we\\\"ird\\\\name-2\"\n"
                       "all_model_checkpoint_paths: \"we\\\"ird\\\\name-3\"\n");
  free(ix);
  restores(&all_mod, P("we\"ird\\name"), 3);
}

Test(checkpoint, index_written_by_hand) {
  /* TF's form: other keys, absolute paths, octal escapes, blank lines. */
  save(&all_mod, 5, P("model"), 1, 5);
  save(&all_mod, 6, P("other"), 1, 5);
  char text[2048];
  snprintf(text, sizeof text,
           "model_checkpoint_path: \"%s/\\157ther-1\"\n\n"
           "all_model_checkpoint_paths: \"model-1.kckpt\"\n"
           "all_model_checkpoint_paths: \"%s/other-1\"\n"
           "garbage line\n"
           "all_model_checkpoint_timestamps: 1700000000.5\n",
           ck_dir, ck_dir);
  spit(P("checkpoint"), text, strlen(text));
  restores(&all_mod, P("model"), 5);
  restores(&all_mod, ck_dir, 6);
  /* A save rewrites it in kiln's form, keeping the other entries. */
  save(&all_mod, 7, P("model"), 2, 5);
  char *ix = tu_read_file(P("checkpoint"), NULL);
  snprintf(text, sizeof text,
           "model_checkpoint_path: \"model-2\"\n"
           "all_model_checkpoint_paths: \"model-1.kckpt\"\n"
           "all_model_checkpoint_paths: \"%s/other-1\"\n"
           "all_model_checkpoint_paths: \"model-2\"\n",
           ck_dir);
  cr_assert_str_eq(ix, text);
  free(ix);
}

Test(checkpoint, stale_temporary_files) {
  /* A dead saver's temporary file: a pid that no longer exists. */
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, NULL, 0);
  save(&all_mod, 1, P("model"), 1, 5);
  size_t len;
  uint8_t *b = slurp(P("model-1.kckpt"), &len);
  char dead[64], live[64];
  snprintf(dead, sizeof dead, ".model-2.kckpt.tmp.%ld.0", (long)child);
  snprintf(live, sizeof live, ".model-3.kckpt.tmp.%ld.0", (long)getppid());
  spit(P("%s", dead), b, len / 2);
  spit(P("%s", live), b, len);
  spit(P(".checkpoint.tmp.%ld.3", (long)child), "junk", 4);
  free(b);
  /* Never taken for checkpoints... */
  restores(&all_mod, P("model"), 1);
  REFUSED(&all_mod, P("model-2"), "no checkpoint");
  /* ...and the next save removes those of dead processes only. */
  save(&all_mod, 2, P("model"), 4, 5);
  cr_assert(!exists(P("%s", dead)));
  cr_assert(!exists(P(".checkpoint.tmp.%ld.3", (long)child)));
  cr_assert(exists(P("%s", live)));
  int n;
  char **files = tu_list(ck_dir, ".kckpt", &n);
  cr_assert_eq(n, 2);
  for (int i = 0; i < n; i++) free(files[i]);
  free(files);
}

Test(checkpoint, save_errors) {
  kiln_inst *inst = make(&all_mod, 1);
  cr_assert_eq(kiln_rt_save(inst, P("dir/"), 1, 5), KILN_ERROR);
  cr_assert(strstr(kiln_inst_error(inst), "must end in a file name"), "%s", kiln_inst_error(inst));
  spit(P("file"), "x", 1);
  cr_assert_eq(kiln_rt_save(inst, P("file/model"), 1, 5), KILN_ERROR);
  cr_assert(strstr(kiln_inst_error(inst), "cannot create directory"), "%s", kiln_inst_error(inst));
  cr_assert_eq(kiln_rt_save(inst, "", 1, 5), KILN_ERROR);
  cr_assert_eq(kiln_rt_save(NULL, P("model"), 1, 5), KILN_ERROR);
  kiln_inst_destroy(inst);
}

/* ---- refusals ---- */

Test(checkpoint, no_checkpoint) {
  REFUSED(&all_mod, P("model"), P("model"), "no checkpoint", "no index");
  REFUSED(&all_mod, P("model-3.kckpt"), "cannot open");
  REFUSED(&all_mod, ck_dir, "no checkpoint index");
  kiln_inst *inst = make(&all_mod, 1);
  cr_assert_eq(kiln_rt_restore(inst, ""), KILN_ERROR);
  cr_assert_eq(kiln_rt_restore(inst, NULL), KILN_ERROR);
  kiln_inst_destroy(inst);
}

Test(checkpoint, truncated) {
  save(&all_mod, 1, P("model"), 1, 5);
  size_t len;
  uint8_t *b = slurp(P("model-1.kckpt"), &len);
  size_t hs = (size_t)le(b + 16, 8);
  size_t cuts[] = {0, 5, 8, 11, 30, 47, 48, 63, hs - 1, hs, hs + 10, len - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
    spit(P("model-1.kckpt"), b, cuts[i]);
    REFUSED(&all_mod, P("model"), P("model-1.kckpt"), "truncated");
  }
  free(b);
}

Test(checkpoint, bytes_after_the_data) {
  save(&all_mod, 1, P("model"), 1, 5);
  size_t len;
  uint8_t *b = slurp(P("model-1.kckpt"), &len);
  uint8_t *c = calloc(1, len + 64);
  memcpy(c, b, len);
  spit(P("model-1.kckpt"), c, len + 64);
  REFUSED(&all_mod, P("model"), "64 unexpected bytes");
  free(b), free(c);
}

Test(checkpoint, flipped_data_byte) {
  save(&all_mod, 1, P("model"), 1, 5);
  size_t len;
  uint8_t *b = slurp(P("model-1.kckpt"), &len);
  field_pos f[8];
  walk(b, f, 8);
  b[le(b + 16, 8) + le(b + f[5].offset, 8) + 3] ^= 0x10; /* a byte of w */
  spit(P("model-1.kckpt"), b, len);
  REFUSED(&all_mod, P("model"), P("model-1.kckpt"), "checksum mismatch in variable 'w'");
  free(b);
}

Test(checkpoint, flipped_header_byte) {
  save(&all_mod, 1, P("model"), 1, 5);
  size_t len;
  uint8_t *b = slurp(P("model-1.kckpt"), &len);
  field_pos f[8];
  walk(b, f, 8);
  b[f[3].dims + 1] ^= 0x01; /* a dim of counts */
  spit(P("model-1.kckpt"), b, len);
  REFUSED(&all_mod, P("model"), "header checksum mismatch");
  free(b);
}

/* Every byte of the file is checked: flipping any one bit of any byte is refused. */
Test(checkpoint, every_flipped_byte_refused) {
  save(&all_mod, 1, P("model"), 1, 5);
  size_t len;
  uint8_t *b = slurp(P("model-1.kckpt"), &len);
  for (size_t i = 0; i < len; i++) {
    for (int bit = 0; bit < 8; bit += 7) {
      b[i] ^= (uint8_t)(1u << bit);
      spit(P("model-1.kckpt"), b, len);
      kiln_inst *inst = make(&all_mod, 1000);
      cr_assert_eq(kiln_rt_restore(inst, P("model-1")), KILN_ERROR, "byte %zu bit %d was accepted", i, bit);
      cr_assert(holds(inst, 1000));
      kiln_inst_destroy(inst);
      b[i] ^= (uint8_t)(1u << bit);
    }
  }
  free(b);
}

Test(checkpoint, wrong_magic) {
  save(&all_mod, 1, P("model"), 1, 5);
  size_t len;
  uint8_t *b = slurp(P("model-1.kckpt"), &len);
  b[0] = 'X';
  spit(P("model-1.kckpt"), b, len);
  REFUSED(&all_mod, P("model"), P("model-1.kckpt"), "not a kiln checkpoint (bad magic)");
  spit(P("model-1.kckpt"), "\x93NUMPY", 6);
  REFUSED(&all_mod, P("model"), "bad magic");
  free(b);
}

Test(checkpoint, wrong_version) {
  save(&all_mod, 1, P("model"), 1, 5);
  size_t len;
  uint8_t *b = slurp(P("model-1.kckpt"), &len);
  put_le(b + 8, 2, 4);
  spit(P("model-1.kckpt"), b, len);
  REFUSED(&all_mod, P("model"), "unsupported checkpoint format version 2 (this runtime reads version 1)");
  fix_header_crc(b, len);
  spit(P("model-1.kckpt"), b, len);
  REFUSED(&all_mod, P("model"), "unsupported checkpoint format version 2");
  free(b);
}

Test(checkpoint, missing_variable) {
  save(&all_mod, 1, P("model"), 1, 5);
  REFUSED(&more_mod, P("model"), P("model-1.kckpt"), "variable 'bias' not found in the checkpoint");
}

Test(checkpoint, wrong_shape) {
  save(&all_mod, 1, P("model"), 1, 5);
  REFUSED(&shape_mod, P("model"), P("model-1.kckpt"), "variable 'w': expected f32[3,2], found f32[2,3]");
}

Test(checkpoint, wrong_dtype) {
  save(&all_mod, 1, P("model"), 1, 5);
  REFUSED(&dtype_mod, P("model"), "variable 'w': expected f64[2,3], found f32[2,3]");
}

Test(checkpoint, extra_variables_ignored) {
  save(&all_mod, 1, P("model"), 1, 5);
  kiln_inst *src = make(&all_mod, 1), *dst = make(&few_mod, 9);
  cr_assert_eq(kiln_rt_restore(dst, P("model")), KILN_OK, "%s", kiln_inst_error(dst));
  cr_assert_eq(memcmp(dst->vars, src->vars + 320, 24), 0);
  cr_assert_eq(memcmp(dst->vars + 64, src->vars + 256, 8), 0);
  kiln_inst_destroy(src), kiln_inst_destroy(dst);
}

/* Header fields that lie, with the header checksum made right again. */
Test(checkpoint, hostile_header_fields) {
  save(&all_mod, 1, P("model"), 1, 5);
  size_t len;
  uint8_t *orig = slurp(P("model-1.kckpt"), &len);
  uint8_t *b = malloc(len);
  field_pos f[8];
  walk(orig, f, 8);
  struct {
    size_t at;
    int width;
    uint64_t value;
    const char *why;
  } cases[] = {
      {12, 4, 0xffffffffu, "cannot fit"},
      {12, 4, 9, "corrupt header"},
      {f[0].name_len, 4, 0xfffffff0u, "runs past the header"},
      {f[0].name_len, 4, 0, "invalid name"},
      {f[1].rank, 4, 9, "rank 9"},
      {f[1].rank, 4, 0xffffffffu, "rank 4294967295"},
      {f[5].dims, 8, 0x8000000000000000u, "disagree"},
      {f[5].dims, 8, 0x4000000000000000u, "disagree"},
      {f[5].nbytes, 8, 25, "disagree"},
      {f[5].offset, 8, 8, "outside the data section"},
      {f[5].offset, 8, 0xffffffffffffffc0u, "outside the data section"},
      {f[6].offset, 8, 0, "outside the data section"}, /* overlaps */
      {f[5].crc, 4, 0, "checksum mismatch in variable 'w'"},
      {f[2].dtype, 8, 0x363166, "unknown dtype 'f16'"},
      {f[2].dtype, 8, 0x4000323369, "unknown dtype 'i32'"},          /* junk after the NUL */
      {f[3].name, 6, 0x736c65786970, "variable 'pixels' appears twice"}, /* counts -> pixels */
      {f[7].name_len, 4, 4, "unknown dtype 'yf32'"},                 /* "empt", then 'y' */
      {16, 8, 0, "corrupt header"},
      {16, 8, 100, "corrupt header"},
      {16, 8, 0xffffffffffffffc0u, "truncated"},
      {24, 8, 0xffffffffffffffc0u, "truncated"},
      {24, 8, 64, "unexpected bytes"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    memcpy(b, orig, len);
    put_le(b + cases[i].at, cases[i].value, cases[i].width);
    fix_header_crc(b, len);
    spit(P("model-1.kckpt"), b, len);
    kiln_inst *inst = make(&all_mod, 1000);
    cr_assert_eq(kiln_rt_restore(inst, P("model")), KILN_ERROR, "case %zu accepted", i);
    cr_assert(strstr(kiln_inst_error(inst), cases[i].why), "case %zu: '%s' lacks '%s'", i,
              kiln_inst_error(inst), cases[i].why);
    cr_assert(holds(inst, 1000));
    kiln_inst_destroy(inst);
  }
  free(b), free(orig);
}

static uint64_t rnd_state = 0x9E3779B97F4A7C15u;
static uint64_t RND(void) { /* xorshift64 */
  rnd_state ^= rnd_state << 13;
  rnd_state ^= rnd_state >> 7;
  rnd_state ^= rnd_state << 17;
  return rnd_state;
}

/* A small fuzz: random mutations, with and without a repaired header
 * checksum.  Never a crash (run it under ASan); either refused with the
 * variables unchanged, or accepted with exactly the saved values. */
Test(checkpoint, random_mutations) {
  save(&all_mod, 1, P("model"), 1, 5);
  size_t len;
  uint8_t *orig = slurp(P("model-1.kckpt"), &len);
  uint8_t *b = malloc(len + 256);
  int accepted = 0;
  for (int iter = 0; iter < 3000; iter++) {
    memcpy(b, orig, len);
    size_t n = len;
    int muts = 1 + (int)(RND() % 4);
    for (int m = 0; m < muts; m++) {
      switch (RND() % 4) {
      case 0: b[RND() % n] = (uint8_t)RND(); break;
      case 1: b[RND() % 160] ^= (uint8_t)(1u << (RND() % 8)); break; /* in the table */
      case 2: n = (size_t)(RND() % (len + 1)); if (!n) n = 1; break;
      default: put_le(b + 48 + (RND() % 100), RND() % 300, 1); break;
      }
    }
    if (RND() % 2) fix_header_crc(b, n);
    spit(P("model-1.kckpt"), b, n);
    kiln_inst *inst = make(&all_mod, 1000);
    int rc = kiln_rt_restore(inst, P("model"));
    if (rc == KILN_OK) {
      accepted++;
      cr_assert(holds(inst, 1), "iteration %d: accepted with other values", iter);
    } else {
      cr_assert_eq(rc, KILN_ERROR);
      cr_assert(holds(inst, 1000), "iteration %d: refused but changed variables", iter);
      cr_assert(strstr(kiln_inst_error(inst), "model-1.kckpt"), "%s", kiln_inst_error(inst));
    }
    kiln_inst_destroy(inst);
  }
  cr_assert_lt(accepted, 3000);
  free(b), free(orig);
}
