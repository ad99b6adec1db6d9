/* math.c — the scalar primitives of ir/expr.h rendered as LLVM IR.  One
 * definition serves elementwise ops, fused expressions, reductions and GPU
 * kernels (which call libdevice instead of libm for transcendental math). */
#include "lower/lower.h"
#include <stdio.h>
#include <string.h>

static bool is_f(kiln_dtype dt) { return kg_dtype_is_float(dt); }

/* exp, log, tanh, sin, cos: libm on the CPU (LLVM knows and vectorizes the
 * llvm.* forms where it can), libdevice on the GPU. */
static LLVMValueRef math_fn(kl_ctx *L, const char *fn, kiln_dtype dt, LLVMValueRef x) {
  bool f32 = dt == KILN_F32;
  if (L->gpu) {
    char name[32];
    snprintf(name, sizeof name, "__nv_%s%s", fn, f32 ? "f" : "");
    return kl_call(L, name, LLVMTypeOf(x), &x, 1);
  }
  if (!strcmp(fn, "tanh")) return kl_call(L, f32 ? "tanhf" : "tanh", LLVMTypeOf(x), &x, 1);
  char name[32];
  snprintf(name, sizeof name, "llvm.%s", fn);
  return kl_intrinsic(L, name, &x, 1);
}

/* The ONNX importer's functions (erf, tan, asin, ..., atanh) have no LLVM
 * intrinsic that every back end lowers, so they call libm directly on the
 * CPU (linked on every target) and libdevice on the GPU. */
static const char *const libm_fns[] = {"erf", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh"};

static bool is_libm_fn(const char *p) {
  for (size_t i = 0; i < sizeof libm_fns / sizeof *libm_fns; i++)
    if (!strcmp(p, libm_fns[i])) return true;
  return false;
}

static LLVMValueRef libm_call(kl_ctx *L, const char *fn, kiln_dtype dt, LLVMValueRef x) {
  char name[32];
  snprintf(name, sizeof name, "%s%s%s", L->gpu ? "__nv_" : "", fn, dt == KILN_F32 ? "f" : "");
  return kl_call(L, name, LLVMTypeOf(x), &x, 1);
}

/* NumPy's shifts: a count outside [0, bits) shifts everything out (0, or -1
 * for a right shift of a negative signed value) instead of LLVM's poison. */
static LLVMValueRef shift(kl_ctx *L, kiln_dtype dt, bool left, LLVMValueRef x, LLVMValueRef n) {
  LLVMTypeRef t = LLVMTypeOf(x);
  unsigned bits = LLVMGetIntTypeWidth(t);
  LLVMValueRef in_range = LLVMBuildICmp(L->B, LLVMIntULT, n, LLVMConstInt(t, bits, 0), "");
  LLVMValueRef safe = LLVMBuildSelect(L->B, in_range, n, LLVMConstInt(t, 0, 0), "");
  bool sgn = kg_dtype_is_signed(dt);
  LLVMValueRef r = left  ? LLVMBuildShl(L->B, x, safe, "")
                   : sgn ? LLVMBuildAShr(L->B, x, safe, "")
                         : LLVMBuildLShr(L->B, x, safe, "");
  LLVMValueRef out = LLVMConstInt(t, 0, 0);
  if (!left && sgn) /* all sign bits */
    out = LLVMBuildAShr(L->B, x, LLVMConstInt(t, bits - 1, 0), "");
  return LLVMBuildSelect(L->B, in_range, r, out, "");
}

/* Integer floor division and modulo as Python and TF's floordiv/floormod
 * define them; a zero divisor yields 0 instead of trapping. */
static LLVMValueRef int_divmod(kl_ctx *L, kiln_dtype dt, LLVMValueRef a, LLVMValueRef b, bool want_mod) {
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef zero = LLVMConstInt(t, 0, 0), one = LLVMConstInt(t, 1, 0);
  LLVMValueRef bz = LLVMBuildICmp(L->B, LLVMIntEQ, b, zero, "");
  LLVMValueRef bs = LLVMBuildSelect(L->B, bz, one, b, "");
  if (!kg_dtype_is_signed(dt)) {
    LLVMValueRef r = want_mod ? LLVMBuildURem(L->B, a, bs, "") : LLVMBuildUDiv(L->B, a, bs, "");
    return LLVMBuildSelect(L->B, bz, zero, r, "");
  }
  /* INT_MIN / -1 overflows in hardware: divide by -1 as negation instead */
  LLVMValueRef bm1 = LLVMBuildICmp(L->B, LLVMIntEQ, bs, LLVMConstAllOnes(t), "");
  LLVMValueRef bsafe = LLVMBuildSelect(L->B, bm1, one, bs, "");
  LLVMValueRef q = LLVMBuildSDiv(L->B, a, bsafe, "");
  q = LLVMBuildSelect(L->B, bm1, LLVMBuildNeg(L->B, a, ""), q, "");
  LLVMValueRef r = LLVMBuildSRem(L->B, a, bsafe, "");
  r = LLVMBuildSelect(L->B, bm1, zero, r, "");
  /* floor: when the remainder is non-zero and its sign differs from b's */
  LLVMValueRef rnz = LLVMBuildICmp(L->B, LLVMIntNE, r, zero, "");
  LLVMValueRef diff = LLVMBuildICmp(L->B, LLVMIntNE, LLVMBuildICmp(L->B, LLVMIntSLT, r, zero, ""),
                                    LLVMBuildICmp(L->B, LLVMIntSLT, bs, zero, ""), "");
  LLVMValueRef adj = LLVMBuildAnd(L->B, rnz, diff, "");
  LLVMValueRef res = want_mod ? LLVMBuildSelect(L->B, adj, LLVMBuildAdd(L->B, r, bs, ""), r, "")
                              : LLVMBuildSelect(L->B, adj, LLVMBuildSub(L->B, q, one, ""), q, "");
  return LLVMBuildSelect(L->B, bz, zero, res, "");
}

static LLVMValueRef float_mod(kl_ctx *L, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef r = LLVMBuildFRem(L->B, a, b, "");
  LLVMValueRef zero = LLVMConstReal(LLVMTypeOf(a), 0);
  LLVMValueRef rnz = LLVMBuildFCmp(L->B, LLVMRealONE, r, zero, "");
  LLVMValueRef diff = LLVMBuildXor(L->B, LLVMBuildFCmp(L->B, LLVMRealOLT, r, zero, ""),
                                   LLVMBuildFCmp(L->B, LLVMRealOLT, b, zero, ""), "");
  return LLVMBuildSelect(L->B, LLVMBuildAnd(L->B, rnz, diff, ""), LLVMBuildFAdd(L->B, r, b, ""), r, "");
}

static LLVMValueRef compare(kl_ctx *L, const char *p, kiln_dtype dt, LLVMValueRef a, LLVMValueRef b) {
  static const struct {
    const char *name;
    LLVMRealPredicate f;
    LLVMIntPredicate s, u;
  } preds[] = {{"lt", LLVMRealOLT, LLVMIntSLT, LLVMIntULT}, {"le", LLVMRealOLE, LLVMIntSLE, LLVMIntULE},
               {"gt", LLVMRealOGT, LLVMIntSGT, LLVMIntUGT}, {"ge", LLVMRealOGE, LLVMIntSGE, LLVMIntUGE},
               {"eq", LLVMRealOEQ, LLVMIntEQ, LLVMIntEQ},   {"ne", LLVMRealUNE, LLVMIntNE, LLVMIntNE}};
  for (size_t i = 0; i < sizeof preds / sizeof *preds; i++)
    if (!strcmp(p, preds[i].name)) {
      if (is_f(dt)) return LLVMBuildFCmp(L->B, preds[i].f, a, b, "");
      return LLVMBuildICmp(L->B, kg_dtype_is_signed(dt) ? preds[i].s : preds[i].u, a, b, "");
    }
  return NULL;
}

LLVMValueRef kl_prim(kl_ctx *L, const char *p, kiln_dtype dt, kiln_dtype out, LLVMValueRef *a, int n) {
  LLVMBuilderRef B = L->B;
  bool f = is_f(dt);
  if (!strcmp(p, "add")) return f ? LLVMBuildFAdd(B, a[0], a[1], "") : LLVMBuildAdd(B, a[0], a[1], "");
  if (!strcmp(p, "sub")) return f ? LLVMBuildFSub(B, a[0], a[1], "") : LLVMBuildSub(B, a[0], a[1], "");
  if (!strcmp(p, "mul")) return f ? LLVMBuildFMul(B, a[0], a[1], "") : LLVMBuildMul(B, a[0], a[1], "");
  if (!strcmp(p, "div")) return f ? LLVMBuildFDiv(B, a[0], a[1], "") : int_divmod(L, dt, a[0], a[1], false);
  if (!strcmp(p, "mod")) return f ? float_mod(L, a[0], a[1]) : int_divmod(L, dt, a[0], a[1], true);
  if (!strcmp(p, "pow")) {
    if (f && L->gpu) return kl_call(L, dt == KILN_F32 ? "__nv_powf" : "__nv_pow", LLVMTypeOf(a[0]), a, 2);
    if (f) return kl_intrinsic(L, "llvm.pow", a, 2);
    LLVMValueRef x[2] = {kl_convert(L, a[0], dt, KILN_F64), kl_convert(L, a[1], dt, KILN_F64)};
    LLVMValueRef r = L->gpu ? kl_call(L, "__nv_pow", L->t_f64, x, 2) : kl_intrinsic(L, "llvm.pow", x, 2);
    return kl_convert(L, kl_intrinsic(L, "llvm.round", &r, 1), KILN_F64, dt);
  }
  if (!strcmp(p, "max") || !strcmp(p, "min")) {
    bool mx = p[1] == 'a';
    if (f) return kl_intrinsic(L, mx ? "llvm.maximum" : "llvm.minimum", a, 2);
    const char *name = kg_dtype_is_signed(dt) ? (mx ? "llvm.smax" : "llvm.smin") : (mx ? "llvm.umax" : "llvm.umin");
    return kl_intrinsic(L, name, a, 2);
  }
  if (!strcmp(p, "neg")) return f ? LLVMBuildFNeg(B, a[0], "") : LLVMBuildNeg(B, a[0], "");
  if (!strcmp(p, "abs")) {
    if (f) return kl_intrinsic(L, "llvm.fabs", a, 1);
    if (!kg_dtype_is_signed(dt)) return a[0];
    LLVMValueRef args[] = {a[0], LLVMConstInt(L->t_i1, 0, 0)};
    return kl_intrinsic(L, "llvm.abs", args, 2);
  }
  if (!strcmp(p, "sqrt")) return kl_intrinsic(L, "llvm.sqrt", a, 1);
  if (!strcmp(p, "floor")) return kl_intrinsic(L, "llvm.floor", a, 1);
  if (!strcmp(p, "ceil")) return kl_intrinsic(L, "llvm.ceil", a, 1);
  if (!strcmp(p, "exp") || !strcmp(p, "log") || !strcmp(p, "tanh") || !strcmp(p, "sin") || !strcmp(p, "cos"))
    return math_fn(L, p, dt, a[0]);
  if (is_libm_fn(p)) return libm_call(L, p, dt, a[0]);
  /* half to even (ONNX, NumPy): rint in the default rounding mode */
  if (!strcmp(p, "round"))
    return !f ? a[0] : L->gpu ? libm_call(L, "rint", dt, a[0]) : kl_intrinsic(L, "llvm.roundeven", a, 1);
  if (!strcmp(p, "trunc")) return f ? kl_intrinsic(L, "llvm.trunc", a, 1) : a[0];
  if (!strcmp(p, "shl") || !strcmp(p, "shr")) return shift(L, dt, p[2] == 'l', a[0], a[1]);
  if (!strcmp(p, "not")) return LLVMBuildNot(B, a[0], "");
  if (!strcmp(p, "and")) return LLVMBuildAnd(B, a[0], a[1], "");
  if (!strcmp(p, "or")) return LLVMBuildOr(B, a[0], a[1], "");
  if (!strcmp(p, "xor")) return LLVMBuildXor(B, a[0], a[1], "");
  if (!strcmp(p, "select")) return LLVMBuildSelect(B, a[0], a[1], a[2], "");
  if (!strcmp(p, "cast")) return kl_convert(L, a[0], dt, out);
  LLVMValueRef c = n == 2 ? compare(L, p, dt, a[0], a[1]) : NULL;
  if (c) return c;
  kc_error(L->diag, (kc_loc){0}, "internal: unknown primitive '%s'", p);
  return LLVMGetUndef(kl_value_type(L, out));
}
