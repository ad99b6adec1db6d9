/* test_print.c — exact text of printed tensors (NumPy str() nesting, kiln's
 * float format) and of run-failure reports. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "kilnrt.h"
#include "rt_internal.h"

/* Prints into a string; the caller frees it. */
static char *pr_str(int32_t dt, int32_t rank, const int64_t *dims, const void *data) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cr_assert_not_null(f);
  int st = kiln_rt_fprint(f, NULL, dt, rank, dims, data);
  fclose(f);
  cr_assert_eq(st, KILN_OK);
  return buf;
}

static void pr_expect(int32_t dt, int32_t rank, const int64_t *dims, const void *data,
                      const char *want) {
  char *got = pr_str(dt, rank, dims, data);
  cr_assert_str_eq(got, want);
  free(got);
}

Test(print, scalars) {
  int32_t i = -42;
  pr_expect(KILN_I32, 0, NULL, &i, "-42\n");
  int64_t l = 9000000000LL;
  pr_expect(KILN_I64, 0, NULL, &l, "9000000000\n");
  float three = 3.0f;
  pr_expect(KILN_F32, 0, NULL, &three, "3.0\n");
  double half = 0.5;
  pr_expect(KILN_F64, 0, NULL, &half, "0.5\n");
  _Bool t = 1;
  pr_expect(KILN_BOOL, 0, NULL, &t, "True\n");
  uint8_t u = 250;
  pr_expect(KILN_U8, 0, NULL, &u, "250\n");
  int8_t s = -7;
  pr_expect(KILN_I8, 0, NULL, &s, "-7\n");
}

Test(print, float_formats) {
  double v[8] = {1.0 / 3.0, 1e20, -0.0, NAN, -NAN, INFINITY, -INFINITY, 1234567.0};
  int64_t dims[1] = {8};
  pr_expect(KILN_F64, 1, dims, v, "[0.333333 1e+20 -0.0 nan nan inf -inf 1.23457e+06]\n");
}

Test(print, vectors) {
  _Bool b[2] = {1, 0};
  int64_t d2[1] = {2};
  pr_expect(KILN_BOOL, 1, d2, b, "[True False]\n");
  int32_t v[3] = {1, 2, 3};
  int64_t d3[1] = {3};
  pr_expect(KILN_I32, 1, d3, v, "[1 2 3]\n");
  float f[3] = {1.5f, 2.0f, -3.25f};
  pr_expect(KILN_F32, 1, d3, f, "[1.5 2.0 -3.25]\n");
}

Test(print, matrix) {
  int32_t m[4] = {1, 2, 3, 4};
  int64_t dims[2] = {2, 2};
  pr_expect(KILN_I32, 2, dims, m, "[[1 2]\n [3 4]]\n");
  int64_t col[2] = {3, 1};
  pr_expect(KILN_I32, 2, col, m, "[[1]\n [2]\n [3]]\n");
}

Test(print, rank3_has_blank_lines) {
  int64_t v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  int64_t dims[3] = {2, 2, 2};
  pr_expect(KILN_I64, 3, dims, v, "[[[1 2]\n  [3 4]]\n\n [[5 6]\n  [7 8]]]\n");
  int64_t d4[4] = {2, 1, 1, 2};
  pr_expect(KILN_I64, 4, d4, v, "[[[[1 2]]]\n\n\n [[[3 4]]]]\n");
}

Test(print, empty_arrays) {
  int64_t d0[1] = {0}, d20[2] = {2, 0}, d03[2] = {0, 3};
  pr_expect(KILN_F32, 1, d0, NULL, "[]\n");
  pr_expect(KILN_F32, 2, d20, NULL, "[]\n");
  pr_expect(KILN_I32, 2, d03, NULL, "[]\n");
}

Test(print, bad_arguments_fail) {
  int st;
  static const kiln_module_desc m = {.name = "p"};
  kiln_inst *inst = kiln_inst_create(&m, &st);
  int64_t neg[1] = {-1};
  int32_t x = 0;
  cr_assert_eq(kiln_rt_print(inst, KILN_I32, 1, neg, &x), KILN_ERROR);
  cr_assert_eq(kiln_rt_print(inst, 99, 0, NULL, &x), KILN_ERROR);
  cr_assert(strstr(kiln_inst_error(inst), "dtype 99") != NULL, "%s", kiln_inst_error(inst));
  cr_assert_eq(kiln_rt_print(inst, KILN_I32, KILN_MAX_RANK + 1, neg, &x), KILN_ERROR);
  kiln_inst_destroy(inst);
}

static void pr_redirect(void) {
  cr_redirect_stdout();
  cr_redirect_stderr();
}

Test(print, stdout_text_and_tensor, .init = pr_redirect) {
  int32_t m[4] = {1, 2, 3, 4};
  int64_t dims[2] = {2, 2};
  cr_assert_eq(kiln_rt_print_text(NULL, "hello"), KILN_OK);
  cr_assert_eq(kiln_rt_print(NULL, KILN_I32, 2, dims, m), KILN_OK);
  fflush(stdout);
  cr_assert_stdout_eq_str("hello\n[[1 2]\n [3 4]]\n");
}

Test(print, report_messages, .init = pr_redirect) {
  int st;
  static const kiln_module_desc m = {.name = "p"};
  kiln_inst *inst = kiln_inst_create(&m, &st);
  cr_assert_eq(kiln_rt_report(inst, KILN_OUT_OF_RANGE), KILN_OUT_OF_RANGE);
  kiln_fail(inst, KILN_ERROR, "boom %d", 7);
  cr_assert_eq(kiln_rt_report(inst, KILN_ERROR), KILN_ERROR);
  cr_assert_eq(kiln_rt_report(inst, KILN_OK), KILN_OK);
  kiln_inst_destroy(inst);
  fflush(stderr);
  cr_assert_stderr_eq_str(
      "error: out of range: a queue is closed and has too few elements (OutOfRange)\n"
      "error: boom 7\n");
}
