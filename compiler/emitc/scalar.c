/* scalar.c — the scalar primitives of ir/expr.h as C99 expressions: the C
 * backend's counterpart of kl_prim (lower/math.c), with the same semantics:
 * integer arithmetic wraps (computed in the unsigned type), integer
 * division and modulo floor and give 0 for a zero divisor, float modulo
 * takes the divisor's sign, max/min propagate NaN and order -0 below +0
 * (llvm.maximum/minimum), shifts by a count outside [0, bits) shift
 * everything out, round is half-to-even, float-to-int casts saturate.
 * Anything beyond one C operator is a small static helper, written once
 * into the translation unit when first used.  An unknown primitive is an
 * error (a new primitive in ir/expr.c needs a line here). */
#include "emitc/ke.h"
#include <string.h>

static const char *T(kiln_dtype dt) { return ke_ctype(dt); }
static const char *dn(kiln_dtype dt) { return kg_dtype_name(dt); }

/* The unsigned type arithmetic on dt wraps in (NULL: int promotion makes
 * the narrow types safe already). */
static const char *wrap_type(kiln_dtype dt) {
  if (dt == KILN_I32) return "uint32_t";
  if (dt == KILN_I64) return "uint64_t";
  return NULL;
}

static const char *arith(ke_ctx *E, kiln_dtype dt, const char *op, const char *a, const char *b) {
  if (kg_dtype_is_float(dt)) return ke_str(E, "(%s %s %s)", a, op, b);
  const char *u = wrap_type(dt);
  if (u) return ke_str(E, "(%s)((%s)%s %s (%s)%s)", T(dt), u, a, op, u, b);
  return ke_str(E, "(%s)(%s %s %s)", T(dt), a, op, b);
}

/* libm's name of a function for dt: expf / exp. */
static const char *libm(ke_ctx *E, const char *fn, kiln_dtype dt) { return ke_str(E, "%s%s", fn, dt == KILN_F32 ? "f" : ""); }

static const char *int_divmod(ke_ctx *E, kiln_dtype dt, bool mod, const char *a, const char *b) {
  const char *name = ke_str(E, "kiln_floor%s_%s", mod ? "mod" : "div", dn(dt));
  if (!kg_dtype_is_signed(dt)) {
    ke_helper(E, name, "/* %s, 0 for a zero divisor */\nstatic %s %s(%s a, %s b) { return b == 0 ? 0 : (%s)(a %s b); }\n",
              mod ? "a mod b" : "a / b", T(dt), name, T(dt), T(dt), T(dt), mod ? "%" : "/");
  } else {
    const char *u = wrap_type(dt) ? wrap_type(dt) : "unsigned";
    ke_helper(E, name,
              "/* floor %s as Python and TF's floor%s define them; 0 for a zero divisor,\n"
              " * and dividing by -1 negates (INT_MIN / -1 wraps instead of trapping) */\n"
              "static %s %s(%s a, %s b) {\n"
              "  %s q, r;\n"
              "  if (b == 0) return 0;\n"
              "  if (b == -1) return %s;\n"
              "  q = (%s)(a / b);\n"
              "  r = (%s)(a %% b);\n"
              "  if (r != 0 && ((r < 0) != (b < 0))) { q = (%s)(q - 1); r = (%s)(r + b); }\n"
              "  return %s;\n"
              "}\n",
              mod ? "modulo" : "division", mod ? "mod" : "div", T(dt), name, T(dt), T(dt), T(dt),
              mod ? "0" : ke_str(E, "(%s)(0u - (%s)a)", T(dt), u), T(dt), T(dt), T(dt), T(dt), mod ? "r" : "q");
  }
  return ke_str(E, "%s(%s, %s)", name, a, b);
}

static const char *float_mod(ke_ctx *E, kiln_dtype dt, const char *a, const char *b) {
  const char *name = ke_str(E, "kiln_floormod_%s", dn(dt));
  ke_helper(E, name,
            "/* float modulo with the divisor's sign (floormod) */\n"
            "static %s %s(%s a, %s b) {\n"
            "  %s r = %s(a, b);\n"
            "  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;\n"
            "}\n",
            T(dt), name, T(dt), T(dt), T(dt), libm(E, "fmod", dt));
  return ke_str(E, "%s(%s, %s)", name, a, b);
}

static const char *float_minmax(ke_ctx *E, kiln_dtype dt, bool mx, const char *a, const char *b) {
  const char *name = ke_str(E, "kiln_%s_%s", mx ? "max" : "min", dn(dt));
  ke_helper(E, name,
            "/* %s propagating NaN, -0 %s +0 (llvm.%s) */\n"
            "static %s %s(%s a, %s b) {\n"
            "  if (a != a) return a;\n"
            "  if (b != b) return b;\n"
            "  if (a == b) return %s(a) ? %s : %s;\n"
            "  return a %s b ? a : b;\n"
            "}\n",
            mx ? "maximum" : "minimum", mx ? "below" : "below", mx ? "maximum" : "minimum", T(dt), name, T(dt), T(dt),
            "signbit", mx ? "b" : "a", mx ? "a" : "b", mx ? ">" : "<");
  return ke_str(E, "%s(%s, %s)", name, a, b);
}

static const char *int_pow(ke_ctx *E, kiln_dtype dt, const char *a, const char *b) {
  const char *to = ke_convert(E, "round(pow((double)a, (double)b))", KILN_F64, dt);
  const char *name = ke_str(E, "kiln_pow_%s", dn(dt));
  ke_helper(E, name, "/* integer power through double, rounded */\nstatic %s %s(%s a, %s b) { return %s; }\n", T(dt),
            name, T(dt), T(dt), to);
  return ke_str(E, "%s(%s, %s)", name, a, b);
}

static const char *int_abs(ke_ctx *E, kiln_dtype dt, const char *a) {
  if (!kg_dtype_is_signed(dt)) return a;
  const char *name = ke_str(E, "kiln_abs_%s", dn(dt));
  const char *u = wrap_type(dt) ? wrap_type(dt) : "unsigned";
  ke_helper(E, name, "/* |a|, wrapping for the most negative value (llvm.abs) */\nstatic %s %s(%s a) { return a < 0 ? (%s)(0u - (%s)a) : a; }\n",
            T(dt), name, T(dt), T(dt), u);
  return ke_str(E, "%s(%s)", name, a);
}

static const char *shift(ke_ctx *E, kiln_dtype dt, bool left, const char *a, const char *b) {
  int bits = (int)kg_dtype_size(dt) * 8;
  const char *name = ke_str(E, "kiln_sh%s_%s", left ? "l" : "r", dn(dt));
  bool narrow = dt == KILN_I8 || dt == KILN_U8, sgn = kg_dtype_is_signed(dt);
  const char *cnt = narrow ? "uint8_t" : dt == KILN_I64 ? "uint64_t" : "uint32_t"; /* the count, as unsigned */
  const char *w = narrow ? "unsigned" : cnt;                                     /* the value, as unsigned */
  const char *body;
  if (left) body = ke_str(E, "(%s)((%s)a << n)", T(dt), w);
  else if (sgn) body = ke_str(E, "a < 0 ? (%s)~(~(%s)a >> n) : (%s)((%s)a >> n)", T(dt), w, T(dt), w);
  else body = ke_str(E, "(%s)(a >> n)", T(dt));
  ke_helper(E, name,
            "/* a %s b as NumPy: a count outside [0, %d) gives %s */\n"
            "static %s %s(%s a, %s b) {\n"
            "  %s n = (%s)b;\n"
            "  if (n >= %d) return %s;\n"
            "  return %s;\n"
            "}\n",
            left ? "<<" : ">>", bits, !left && sgn ? "0, or -1 for negative a" : "0", T(dt), name, T(dt), T(dt), cnt,
            cnt, bits, !left && sgn ? "a < 0 ? -1 : 0" : "0", body);
  return ke_str(E, "%s(%s, %s)", name, a, b);
}

static const char *const libm_unary[] = {"exp", "log", "sqrt", "tanh", "floor", "ceil", "sin", "cos", "erf", "tan",
                                         "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "trunc"};

static const char *const compares[][2] = {{"lt", "<"}, {"le", "<="}, {"gt", ">"}, {"ge", ">="}, {"eq", "=="}, {"ne", "!="}};

const char *ke_prim(ke_ctx *E, const char *p, kiln_dtype dt, kiln_dtype out, const char *const *a, int n) {
  bool f = kg_dtype_is_float(dt);
  if (!strcmp(p, "add")) return arith(E, dt, "+", a[0], a[1]);
  if (!strcmp(p, "sub")) return arith(E, dt, "-", a[0], a[1]);
  if (!strcmp(p, "mul")) return arith(E, dt, "*", a[0], a[1]);
  if (!strcmp(p, "div")) return f ? ke_str(E, "(%s / %s)", a[0], a[1]) : int_divmod(E, dt, false, a[0], a[1]);
  if (!strcmp(p, "mod")) return f ? float_mod(E, dt, a[0], a[1]) : int_divmod(E, dt, true, a[0], a[1]);
  if (!strcmp(p, "pow")) return f ? ke_str(E, "%s(%s, %s)", libm(E, "pow", dt), a[0], a[1]) : int_pow(E, dt, a[0], a[1]);
  if (!strcmp(p, "max") || !strcmp(p, "min")) {
    bool mx = p[1] == 'a';
    if (f) return float_minmax(E, dt, mx, a[0], a[1]);
    return ke_str(E, "(%s %s %s ? %s : %s)", a[0], mx ? ">" : "<", a[1], a[0], a[1]);
  }
  if (!strcmp(p, "neg")) {
    if (f) return ke_str(E, "(-%s)", a[0]);
    const char *u = wrap_type(dt);
    return u ? ke_str(E, "(%s)(0u - (%s)%s)", T(dt), u, a[0]) : ke_str(E, "(%s)(-%s)", T(dt), a[0]);
  }
  if (!strcmp(p, "abs")) return f ? ke_str(E, "%s(%s)", libm(E, "fabs", dt), a[0]) : int_abs(E, dt, a[0]);
  for (size_t i = 0; i < sizeof libm_unary / sizeof *libm_unary; i++)
    if (!strcmp(p, libm_unary[i])) {
      if (!f) return a[0]; /* trunc, floor, ... of an integer */
      return ke_str(E, "%s(%s)", libm(E, p, dt), a[0]);
    }
  /* half to even (ONNX, NumPy): nearbyint in the default rounding mode */
  if (!strcmp(p, "round")) return f ? ke_str(E, "%s(%s)", libm(E, "nearbyint", dt), a[0]) : a[0];
  if (!strcmp(p, "shl") || !strcmp(p, "shr")) return shift(E, dt, p[2] == 'l', a[0], a[1]);
  if (!strcmp(p, "not")) return dt == KILN_BOOL ? ke_str(E, "(!%s)", a[0]) : ke_str(E, "(%s)~%s", T(dt), a[0]);
  if (!strcmp(p, "and") || !strcmp(p, "or") || !strcmp(p, "xor")) {
    const char *op = p[0] == 'a' ? "&" : p[0] == 'o' ? "|" : "^";
    return dt == KILN_BOOL ? ke_str(E, "(%s %s %s)", a[0], op, a[1]) : ke_str(E, "(%s)(%s %s %s)", T(dt), a[0], op, a[1]);
  }
  if (!strcmp(p, "select")) return ke_str(E, "(%s ? %s : %s)", a[0], a[1], a[2]);
  if (!strcmp(p, "cast")) return ke_convert(E, a[0], dt, out);
  for (size_t i = 0; n == 2 && i < sizeof compares / sizeof *compares; i++)
    if (!strcmp(p, compares[i][0])) return ke_str(E, "(%s %s %s)", a[0], compares[i][1], a[1]);
  kc_error(E->diag, (kc_loc){E->m->file, 0, 0},
           "the C backend has no rendering for the scalar primitive '%s' (add it to compiler/emitc/scalar.c)", p);
  E->failed = true;
  return NULL;
}

const char *ke_prim2(ke_ctx *E, const char *prim, kiln_dtype dt, const char *a, const char *b) {
  const char *args[2] = {a, b};
  return ke_prim(E, prim, dt, dt, args, 2);
}

const char *ke_prim1(ke_ctx *E, const char *prim, kiln_dtype dt, const char *a) { return ke_prim(E, prim, dt, dt, &a, 1); }
