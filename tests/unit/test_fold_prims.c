/* test_fold_prims.c — the constant folder's interpreter of the scalar
 * primitives the ONNX importer added (erf, round, trunc, tan, asin, ...,
 * shl, shr): a node over constants folds to what libm and NumPy give, with
 * round's halves to even and shifts by counts outside [0, bits) as NumPy.
 * (The generated code for the same primitives is checked against NumPy in
 * tests/ref/cases_onnx_elementwise.py; the .kg pipeline itself never folds.) */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "ir/ops.h"
#include "ir/parse.h"
#include "passes/fold.h"
#include "passes/verify.h"

/* Parses `graph { k = <k>; y = <y> }`, folds y and returns its literal. */
static const kg_tensor *fold_y(kg_module **mp, kc_diag *d, const char *k, const char *y) {
  char src[512];
  snprintf(src, sizeof src, "graph {\n  k = %s\n  y = %s\n}\n", k, y);
  kg_module *m = kc_parse("t.kg", src, strlen(src), d);
  cr_assert(m, "parse failed: %s", d->text ? d->text : "");
  cr_assert(kc_verify(m, d), "verify failed: %s", d->text ? d->text : "");
  int yi = kc_module_find(m, "y", 1);
  cr_assert(kc_fold_node(m, yi), "%s did not fold", y);
  cr_assert_eq(m->nodes[yi].op, KC_OP_CONST);
  *mp = m;
  return &kg_node_attr(&m->nodes[yi], "value")->tensor;
}

static const double X[] = {-0.9, -0.5, -0.25, 0.0, 0.3, 0.5, 0.75, 0.95};
#define NX (sizeof X / sizeof *X)

static void check_unary(const char *op, double (*ref)(double), double shift) {
  for (int f32 = 0; f32 < 2; f32++) {
    char k[256], y[64];
    int len = snprintf(k, sizeof k, "const<%s[%zu]>([", f32 ? "f32" : "f64", NX);
    for (size_t i = 0; i < NX; i++)
      len += snprintf(k + len, sizeof k - (size_t)len, "%s%.17g", i ? ", " : "", X[i] + shift);
    snprintf(k + len, sizeof k - (size_t)len, "])");
    snprintf(y, sizeof y, "%s(k)", op);
    kc_diag d = {0};
    kg_module *m;
    const kg_tensor *t = fold_y(&m, &d, k, y);
    for (size_t i = 0; i < NX; i++) {
      double x = f32 ? (double)(float)(X[i] + shift) : X[i] + shift;
      double want = f32 ? (double)(float)ref(x) : ref(x), got = kg_tensor_get_f(t, (int64_t)i);
      cr_assert(fabs(got - want) <= 1e-12 * fabs(want) + 1e-300, "%s(%.17g) %s: %.17g, want %.17g", op, x,
                f32 ? "f32" : "f64", got, want);
    }
    kc_module_free(m);
    kc_diag_clear(&d);
  }
}

Test(fold, inverse_and_hyperbolic_functions) {
  check_unary("erf", erf, 0);
  check_unary("tan", tan, 0);
  check_unary("asin", asin, 0);
  check_unary("acos", acos, 0);
  check_unary("atan", atan, 0);
  check_unary("sinh", sinh, 0);
  check_unary("cosh", cosh, 0);
  check_unary("asinh", asinh, 0);
  check_unary("acosh", acosh, 2);
  check_unary("atanh", atanh, 0);
}

Test(fold, round_halves_to_even_and_trunc) {
  kc_diag d = {0};
  kg_module *m;
  const char *k = "const<f32[8]>([0.5, 1.5, 2.5, -0.5, -2.5, 2.4, -2.6, 3.7])";
  const kg_tensor *t = fold_y(&m, &d, k, "round(k)");
  const double want[] = {0, 2, 2, -0.0, -2, 2, -3, 4};
  for (int i = 0; i < 8; i++) cr_assert_eq(kg_tensor_get_f(t, i), want[i], "round element %d", i);
  kc_module_free(m);
  t = fold_y(&m, &d, k, "trunc(k)");
  const double want_t[] = {0, 1, 2, 0, -2, 2, -2, 3};
  for (int i = 0; i < 8; i++) cr_assert_eq(kg_tensor_get_f(t, i), want_t[i], "trunc element %d", i);
  kc_module_free(m);
  kc_diag_clear(&d);
}

/* NumPy: np.left_shift / np.right_shift on the same int8 values. */
Test(fold, shifts_as_numpy) {
  kc_diag d = {0};
  kg_module *m;
  const char *k = "const<i8[6]>([1, -1, 100, -100, 5, 3])";
  const kg_tensor *t = fold_y(&m, &d, k, "left_shift(k, const<i8[6]>([9, 9, -1, -1, 7, 2]))");
  const int64_t shl[] = {0, 0, 0, 0, -128, 12};
  for (int i = 0; i < 6; i++) cr_assert_eq(kg_tensor_get_i(t, i), shl[i], "shl element %d", i);
  kc_module_free(m);
  t = fold_y(&m, &d, k, "right_shift(k, const<i8[6]>([9, 9, -1, -1, 7, 1]))");
  const int64_t shr[] = {0, -1, 0, -1, 0, 1};
  for (int i = 0; i < 6; i++) cr_assert_eq(kg_tensor_get_i(t, i), shr[i], "shr element %d", i);
  kc_module_free(m);
  t = fold_y(&m, &d, "const<u8[4]>([1, 7, 128, 255])", "left_shift(k, const<u8[4]>([1, 5, 1, 8]))");
  const int64_t ushl[] = {2, 224, 0, 0};
  for (int i = 0; i < 4; i++) cr_assert_eq(kg_tensor_get_i(t, i), ushl[i], "u8 shl element %d", i);
  kc_module_free(m);
  t = fold_y(&m, &d, "const<u8[4]>([1, 7, 128, 255])", "right_shift(k, const<u8[4]>([1, 1, 7, 200]))");
  const int64_t ushr[] = {0, 3, 1, 0};
  for (int i = 0; i < 4; i++) cr_assert_eq(kg_tensor_get_i(t, i), ushr[i], "u8 shr element %d", i);
  kc_module_free(m);
  kc_diag_clear(&d);
}
