/* test_npy.c — .npy reading and writing: round trips of every dtype and
 * rank, files numpy itself would write (v2/v3, odd spacing, key order), and
 * the message for each way a user's file can be wrong. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kilnrt.h"

static char npy_dir[64];
static kiln_inst *npy_inst;
static const kiln_module_desc npy_module = {.name = "npytest"};

static void npy_setup(void) {
  strcpy(npy_dir, "/tmp/kiln-npy-XXXXXX");
  cr_assert_not_null(mkdtemp(npy_dir));
  int st;
  npy_inst = kiln_inst_create(&npy_module, &st);
  cr_assert_not_null(npy_inst);
}

static int npy_rm(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static void npy_teardown(void) {
  kiln_inst_destroy(npy_inst);
  nftw(npy_dir, npy_rm, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(npy, .init = npy_setup, .fini = npy_teardown);

static char *npy_path(const char *name) {
  static char buf[4][128];
  static int k;
  char *p = buf[k++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", npy_dir, name);
  return p;
}

/* Writes a hand-made file: version, header text (padded as given), data. */
static void npy_raw(const char *path, int major, const char *header, const void *data,
                    size_t nbytes) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  size_t hl = strlen(header);
  fwrite("\x93NUMPY", 1, 6, f);
  fputc(major, f);
  fputc(0, f);
  if (major == 1) {
    fputc((int)(hl & 0xff), f);
    fputc((int)(hl >> 8), f);
  } else {
    for (int i = 0; i < 4; i++) fputc((int)((hl >> (8 * i)) & 0xff), f);
  }
  fwrite(header, 1, hl, f);
  if (nbytes) fwrite(data, 1, nbytes, f);
  fclose(f);
}

static void expect_error(int st, const char *needle) {
  cr_assert_eq(st, KILN_ERROR, "expected KILN_ERROR, got %d", st);
  cr_assert(strstr(kiln_inst_error(npy_inst), needle) != NULL, "message '%s' lacks '%s'",
            kiln_inst_error(npy_inst), needle);
}

/* Fills n elements with distinct, dtype-appropriate values. */
static void npy_fill(int32_t dt, void *p, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    switch (dt) {
    case KILN_BOOL: ((_Bool *)p)[i] = (i % 3) == 1; break;
    case KILN_I8: ((int8_t *)p)[i] = (int8_t)(-60 + i); break;
    case KILN_U8: ((uint8_t *)p)[i] = (uint8_t)(200 + i); break;
    case KILN_I32: ((int32_t *)p)[i] = (int32_t)(-100000 * i + 7); break;
    case KILN_I64: ((int64_t *)p)[i] = (int64_t)i * 3000000000LL - 5; break;
    case KILN_F32: ((float *)p)[i] = 0.25f * (float)i - 1.5f; break;
    case KILN_F64: ((double *)p)[i] = 1e-3 * (double)i + 1e10; break;
    default: cr_assert_fail("dtype %d", dt);
    }
  }
}

Test(npy, round_trip_every_dtype_and_rank) {
  static const int64_t shapes[4][3] = {{0}, {5}, {2, 3}, {2, 1, 4}};
  for (int32_t dt = 0; dt < KILN_DTYPE_COUNT; dt++) {
    for (int32_t rank = 0; rank <= 3; rank++) {
      const int64_t *dims = shapes[rank];
      int64_t n = 1;
      for (int i = 0; i < rank; i++) n *= dims[i];
      size_t bytes = (size_t)n * kiln_dtype_size(dt);
      uint8_t *src = malloc(bytes), *dst = malloc(bytes);
      npy_fill(dt, src, n);
      memset(dst, 0xAB, bytes);
      char name[32];
      snprintf(name, sizeof name, "rt_%d_%d.npy", dt, rank);
      const char *p = npy_path(name);
      cr_assert_eq(kiln_npy_write(npy_inst, p, dt, rank, dims, src), KILN_OK, "%s",
                   kiln_inst_error(npy_inst));
      /* numpy aligns the data to 64 bytes; so do we. */
      FILE *f = fopen(p, "rb");
      fseek(f, 0, SEEK_END);
      long size = ftell(f);
      fclose(f);
      cr_assert_eq((size_t)size % 64, bytes % 64, "%s: header not 64-aligned", name);
      cr_assert_eq(kiln_npy_read(npy_inst, p, dt, rank, dims, dst), KILN_OK, "%s: %s", name,
                   kiln_inst_error(npy_inst));
      cr_assert_eq(memcmp(src, dst, bytes), 0, "%s: data differs", name);
      free(src);
      free(dst);
    }
  }
}

Test(npy, header_text_matches_numpy) {
  int64_t dims[2] = {2, 3};
  float data[6] = {0};
  const char *p = npy_path("h.npy");
  cr_assert_eq(kiln_npy_write(npy_inst, p, KILN_F32, 2, dims, data), KILN_OK);
  char buf[200] = {0};
  FILE *f = fopen(p, "rb");
  cr_assert_eq(fread(buf, 1, 199, f), 128 + sizeof data);
  fclose(f);
  cr_assert_eq(memcmp(buf, "\x93NUMPY\x01\x00\x76\x00", 10), 0);
  cr_assert_eq(strncmp(buf + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                       59),
               0, "%s", buf + 10);
  cr_assert_eq(buf[127], '\n');
  memset(buf, 0, sizeof buf);
  int64_t one[1] = {4};
  p = npy_path("v.npy");
  cr_assert_eq(kiln_npy_write(npy_inst, p, KILN_BOOL, 1, one, data), KILN_OK);
  f = fopen(p, "rb");
  cr_assert_eq(fread(buf, 1, 199, f), 128 + 4);
  fclose(f);
  cr_assert(strstr(buf + 10, "'descr': '|b1'") && strstr(buf + 10, "'shape': (4,)"), "%s",
            buf + 10);
}

Test(npy, reads_v2_v3_and_odd_spacing) {
  int32_t data[3] = {4, -5, 6}, got[3] = {0};
  int64_t dims[1] = {3};
  const char *p = npy_path("v2.npy");
  npy_raw(p, 2, "{\"shape\":(3,),'fortran_order' :False , 'descr':'<i4'}   \n", data,
          sizeof data);
  cr_assert_eq(kiln_npy_read(npy_inst, p, KILN_I32, 1, dims, got), KILN_OK, "%s",
               kiln_inst_error(npy_inst));
  cr_assert_eq(got[1], -5);
  memset(got, 0, sizeof got);
  p = npy_path("v3.npy");
  npy_raw(p, 3, "{'descr': '<i4', 'fortran_order': False, 'shape': (3L,), }\n", data,
          sizeof data);
  cr_assert_eq(kiln_npy_read(npy_inst, p, KILN_I32, 1, dims, got), KILN_OK, "%s",
               kiln_inst_error(npy_inst));
  cr_assert_eq(got[2], 6);
}

Test(npy, bool_bytes_normalized) {
  uint8_t raw[3] = {0, 1, 7};
  _Bool got[3];
  int64_t dims[1] = {3};
  const char *p = npy_path("b.npy");
  npy_raw(p, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }\n", raw, 3);
  cr_assert_eq(kiln_npy_read(npy_inst, p, KILN_BOOL, 1, dims, got), KILN_OK);
  uint8_t bytes[3];
  memcpy(bytes, got, 3);
  cr_assert_eq(bytes[0], 0);
  cr_assert_eq(bytes[1], 1);
  cr_assert_eq(bytes[2], 1);
}

Test(npy, wrong_dtype) {
  double data[6] = {0};
  int64_t dims[2] = {2, 3};
  const char *p = npy_path("x.npy");
  cr_assert_eq(kiln_npy_write(npy_inst, p, KILN_F64, 2, dims, data), KILN_OK);
  float out[6];
  char want[256];
  snprintf(want, sizeof want, "%s: expected f32[2,3], found f64[2,3]", p);
  cr_assert_eq(kiln_npy_read(npy_inst, p, KILN_F32, 2, dims, out), KILN_ERROR);
  cr_assert_str_eq(kiln_inst_error(npy_inst), want);
}

Test(npy, wrong_shape) {
  int32_t data[6] = {0};
  int64_t dims[2] = {3, 2}, want_dims[2] = {2, 3};
  const char *p = npy_path("s.npy");
  cr_assert_eq(kiln_npy_write(npy_inst, p, KILN_I32, 2, dims, data), KILN_OK);
  int32_t out[6];
  expect_error(kiln_npy_read(npy_inst, p, KILN_I32, 2, want_dims, out),
               "expected i32[2,3], found i32[3,2]");
  int64_t scalar_dims[1] = {0};
  expect_error(kiln_npy_read(npy_inst, p, KILN_I32, 0, scalar_dims, out),
               "expected i32[], found i32[3,2]");
}

Test(npy, unsupported_and_big_endian_dtype) {
  uint16_t data[4] = {1, 2, 3, 4};
  int64_t dims[1] = {2};
  float out[2];
  const char *p = npy_path("u2.npy");
  npy_raw(p, 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }\n", data, 4);
  expect_error(kiln_npy_read(npy_inst, p, KILN_F32, 1, dims, out),
               "expected f32[2], found unsupported dtype '<u2'");
  p = npy_path("be.npy");
  npy_raw(p, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", data, 8);
  expect_error(kiln_npy_read(npy_inst, p, KILN_F32, 1, dims, out), "big-endian");
}

Test(npy, truncated_data) {
  uint8_t data[10] = {0};
  int64_t dims[2] = {2, 3};
  float out[6];
  const char *p = npy_path("t.npy");
  npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", data, 10);
  char want[256];
  snprintf(want, sizeof want, "%s: truncated: expected 24 bytes of data, found 10", p);
  cr_assert_eq(kiln_npy_read(npy_inst, p, KILN_F32, 2, dims, out), KILN_ERROR);
  cr_assert_str_eq(kiln_inst_error(npy_inst), want);
}

Test(npy, trailing_data) {
  uint8_t data[12] = {0};
  int64_t dims[1] = {2};
  float out[2];
  const char *p = npy_path("tr.npy");
  npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", data, 12);
  expect_error(kiln_npy_read(npy_inst, p, KILN_F32, 1, dims, out), "4 unexpected bytes");
}

Test(npy, bad_magic) {
  const char *p = npy_path("m.npy");
  FILE *f = fopen(p, "wb");
  fputs("PK\x03\x04 this is a zip", f);
  fclose(f);
  int64_t dims[1] = {1};
  float out[1];
  char want[256];
  snprintf(want, sizeof want, "%s: not a .npy file (bad magic)", p);
  cr_assert_eq(kiln_npy_read(npy_inst, p, KILN_F32, 1, dims, out), KILN_ERROR);
  cr_assert_str_eq(kiln_inst_error(npy_inst), want);
  /* An empty file is not a .npy file either. */
  p = npy_path("empty.npy");
  fclose(fopen(p, "wb"));
  expect_error(kiln_npy_read(npy_inst, p, KILN_F32, 1, dims, out), "bad magic");
}

Test(npy, missing_file) {
  int64_t dims[1] = {1};
  float out[1];
  const char *p = npy_path("nope.npy");
  char want[256];
  snprintf(want, sizeof want, "%s: cannot open: No such file or directory", p);
  cr_assert_eq(kiln_npy_read(npy_inst, p, KILN_F32, 1, dims, out), KILN_ERROR);
  cr_assert_str_eq(kiln_inst_error(npy_inst), want);
}

Test(npy, fortran_order_rejected) {
  float data[6] = {0};
  int64_t dims[2] = {2, 3};
  float out[6];
  const char *p = npy_path("f.npy");
  npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", data,
          sizeof data);
  expect_error(kiln_npy_read(npy_inst, p, KILN_F32, 2, dims, out),
               "fortran_order arrays are not supported");
}

Test(npy, malformed_headers) {
  static const char *const bad[] = {
      "",
      "{",
      "{'descr': '<f4', 'fortran_order': False}\n",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, }\n",
      "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }\n",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n",
      "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }\n",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}\n",
      "{'descr: '<f4'",
  };
  int64_t dims[1] = {2};
  float data[2] = {1, 2}, out[2];
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    const char *p = npy_path("bad.npy");
    npy_raw(p, 1, bad[i], data, sizeof data);
    int st = kiln_npy_read(npy_inst, p, KILN_F32, 1, dims, out);
    cr_assert_eq(st, KILN_ERROR, "header %zu accepted: %s", i, bad[i]);
    cr_assert(strstr(kiln_inst_error(npy_inst), p) == kiln_inst_error(npy_inst),
              "message does not start with the path: %s", kiln_inst_error(npy_inst));
  }
  /* A header length pointing past the end of the file. */
  const char *p = npy_path("short.npy");
  FILE *f = fopen(p, "wb");
  fwrite("\x93NUMPY\x01\x00\xff\x7f{'de", 1, 14, f);
  fclose(f);
  expect_error(kiln_npy_read(npy_inst, p, KILN_F32, 1, dims, out), "truncated header");
  p = npy_path("ver.npy");
  npy_raw(p, 9, "{}", NULL, 0);
  expect_error(kiln_npy_read(npy_inst, p, KILN_F32, 1, dims, out), "version 9.0");
}

Test(npy, write_to_missing_directory) {
  int64_t dims[1] = {1};
  float data[1] = {1};
  const char *p = npy_path("no/such/dir/x.npy");
  expect_error(kiln_npy_write(npy_inst, p, KILN_F32, 1, dims, data), "cannot create");
}
