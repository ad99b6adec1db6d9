/* ops_elementwise.c — ONNX's elementwise ops: each is a kiln elementwise op
 * or one scalar expression (ir/expr.h) over its operands, so activations
 * such as Selu or HardSwish become a single fused loop with no new kiln op.
 * Where ONNX and kiln differ in integer semantics (Div truncates, Mod with
 * fmod=1 takes the dividend's sign, Pow of an integer base by a float
 * exponent truncates) the expression says so.  The old forms are accepted
 * too: binary ops' `broadcast`/`axis` before opset 7, PRelu's per-channel
 * slope before opset 7, Cast-1's type name. */
#include "frontends/onnx/ox.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Operand dtype check: "float" ops reject integer operands with a clear message. */
static bool want_float(ox_ctx *c, ox_node *n, int i) {
  if (!kg_dtype_is_float(ox_type(c, n->in[i])->dtype))
    return ox_fail(c, n, "input %d is %s; this op needs float or double", i, kg_dtype_name(ox_type(c, n->in[i])->dtype));
  return true;
}

static bool need_inputs(ox_ctx *c, ox_node *n, int k) {
  for (int i = 0; i < k; i++)
    if (!ox_has(n, i)) return ox_fail(c, n, "input %d is required", i);
  return true;
}

static bool set(ox_ctx *c, ox_node *n, kg_ref r) {
  n->out[0] = r;
  return !c->g.failed;
}

/* ---- kiln ops one to one ---- */

#define KILN_UNARY(fn, op)                                           \
  static bool fn(ox_ctx *c, ox_node *n) {                            \
    if (!need_inputs(c, n, 1)) return false;                         \
    return set(c, n, kb_unary(&c->g, op, n->in[0]));                 \
  }
KILN_UNARY(cv_abs, KC_OP_ABS)
KILN_UNARY(cv_neg, KC_OP_NEG)
KILN_UNARY(cv_exp, KC_OP_EXP)
KILN_UNARY(cv_log, KC_OP_LOG)
KILN_UNARY(cv_sqrt, KC_OP_SQRT)
KILN_UNARY(cv_reciprocal, KC_OP_RECIPROCAL)
KILN_UNARY(cv_tanh, KC_OP_TANH)
KILN_UNARY(cv_sigmoid, KC_OP_SIGMOID)
KILN_UNARY(cv_relu, KC_OP_RELU)
KILN_UNARY(cv_floor, KC_OP_FLOOR)
KILN_UNARY(cv_ceil, KC_OP_CEIL)
KILN_UNARY(cv_sin, KC_OP_SIN)
KILN_UNARY(cv_cos, KC_OP_COS)
KILN_UNARY(cv_sign, KC_OP_SIGN)
KILN_UNARY(cv_not, KC_OP_LOGICAL_NOT)
KILN_UNARY(cv_erf, KC_OP_ERF)
KILN_UNARY(cv_round, KC_OP_ROUND)
KILN_UNARY(cv_tan, KC_OP_TAN)
KILN_UNARY(cv_asin, KC_OP_ASIN)
KILN_UNARY(cv_acos, KC_OP_ACOS)
KILN_UNARY(cv_atan, KC_OP_ATAN)
KILN_UNARY(cv_sinh, KC_OP_SINH)
KILN_UNARY(cv_cosh, KC_OP_COSH)
KILN_UNARY(cv_asinh, KC_OP_ASINH)
KILN_UNARY(cv_acosh, KC_OP_ACOSH)
KILN_UNARY(cv_atanh, KC_OP_ATANH)

/* Operand 1 of a binary op.  Before opset 7, `broadcast=1` with `axis`
 * aligns B's dimensions with A's starting at axis (B [3,4] against
 * A [2,3,4,5] with axis=1), which NumPy broadcasting gets once B has
 * trailing 1s. */
static kg_ref operand_b(ox_ctx *c, ox_node *n) {
  kg_ref b = n->in[1];
  if (c->opset >= 7 || !ox_attr_int(n, "broadcast", 0) || !ox_attr(n, "axis")) return b;
  int ra = ox_type(c, n->in[0])->shape.rank;
  kg_shape s = ox_type(c, b)->shape;
  int axis;
  if (!ox_axis(c, n, ox_attr_int(n, "axis", 0), ra, &axis)) return b;
  if (axis + s.rank > ra) {
    ox_fail(c, n, "B of rank %d does not fit A of rank %d at axis %d", s.rank, ra, axis);
    return b;
  }
  while (s.rank < ra - axis) s.dim[s.rank++] = 1;
  return ox_reshape(c, b, &s);
}

/* Binary ops: ONNX requires equal dtypes (kiln's ops check it too). */
#define KILN_BINARY(fn, op)                                          \
  static bool fn(ox_ctx *c, ox_node *n) {                            \
    if (!need_inputs(c, n, 2)) return false;                         \
    return set(c, n, kb_binary(&c->g, op, n->in[0], operand_b(c, n))); \
  }
KILN_BINARY(cv_add, KC_OP_ADD)
KILN_BINARY(cv_sub, KC_OP_SUB)
KILN_BINARY(cv_mul, KC_OP_MUL)
KILN_BINARY(cv_equal, KC_OP_EQUAL)
KILN_BINARY(cv_less, KC_OP_LESS)
KILN_BINARY(cv_less_equal, KC_OP_LESS_EQUAL)
KILN_BINARY(cv_greater, KC_OP_GREATER)
KILN_BINARY(cv_greater_equal, KC_OP_GREATER_EQUAL)
KILN_BINARY(cv_and, KC_OP_LOGICAL_AND)
KILN_BINARY(cv_or, KC_OP_LOGICAL_OR)
KILN_BINARY(cv_xor, KC_OP_LOGICAL_XOR)

/* ---- expressions ---- */

/* The node's result from `expr` over its first k operands, in the dtype of
 * operand 0. */
static bool expr_k(ox_ctx *c, ox_node *n, int k, const char *expr) {
  if (!need_inputs(c, n, k)) return false;
  kg_ref in[3] = {n->in[0], k > 1 ? operand_b(c, n) : KG_NOREF, k > 2 ? n->in[2] : KG_NOREF};
  return set(c, n, ox_expr(c, expr, in, k, ox_type(c, n->in[0])->dtype));
}

/* A float-only activation with its attributes printed into the expression. */
static bool activation(ox_ctx *c, ox_node *n, const char *fmt, double a, double b) {
  if (!need_inputs(c, n, 1) || !want_float(c, n, 0)) return false;
  char e[512];
  snprintf(e, sizeof e, fmt, a, b, a, b, a, b);
  return expr_k(c, n, 1, e);
}

static bool cv_div(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 2)) return false;
  kiln_dtype dt = ox_type(c, n->in[0])->dtype;
  if (kg_dtype_is_float(dt) || !kg_dtype_is_signed(dt))
    return set(c, n, kb_binary(&c->g, KC_OP_DIV, n->in[0], operand_b(c, n)));
  /* ONNX (as C) truncates integer quotients; kiln's div floors */
  return expr_k(c, n, 2, "add(div(x0, x1), cast(and(ne(mod(x0, x1), 0), xor(lt(x0, 0), lt(x1, 0)))))");
}

static bool cv_mod(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 2)) return false;
  kiln_dtype dt = ox_type(c, n->in[0])->dtype;
  bool fmod_ = ox_attr_int(n, "fmod", 0) != 0;
  if (kg_dtype_is_float(dt) && !fmod_) return ox_fail(c, n, "fmod=0 is only defined for integers");
  if (!fmod_) return set(c, n, kb_binary(&c->g, KC_OP_MOD, n->in[0], n->in[1]));
  /* fmod: the sign of the dividend (C's fmod and %) */
  return expr_k(c, n, 2, "sub(mod(x0, x1), select(and(ne(mod(x0, x1), 0), xor(lt(x0, 0), lt(x1, 0))), x1, 0))");
}

/* The result has the base's dtype.  An integer base with a float exponent
 * is computed in double and truncated (NumPy's pow(x, y).astype(x.dtype),
 * which ONNX's cases use); otherwise the exponent is converted to the base's
 * dtype. */
static bool cv_pow(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 2)) return false;
  kiln_dtype dt = ox_type(c, n->in[0])->dtype, et = ox_type(c, n->in[1])->dtype;
  kg_ref b = operand_b(c, n);
  if (!kg_dtype_is_float(dt) && kg_dtype_is_float(et)) {
    kg_ref in[2] = {n->in[0], b};
    return set(c, n, ox_expr(c, "cast(pow(cast.f64(x0), cast.f64(x1)))", in, 2, dt));
  }
  return set(c, n, kb_binary(&c->g, KC_OP_POW, n->in[0], ox_cast(c, b, dt)));
}

/* Max, Min, Sum, Mean: variadic, broadcasting. */
static bool variadic(ox_ctx *c, ox_node *n, int op, bool mean) {
  if (n->n_in < 1 || !ox_has(n, 0)) return ox_fail(c, n, "needs at least one input");
  kg_ref r = n->in[0];
  for (int i = 1; i < n->n_in; i++) r = kb_binary(&c->g, op, r, n->in[i]);
  if (n->n_in == 1) r = kb_unary(&c->g, KC_OP_IDENTITY, r);
  if (mean) r = kb_binary(&c->g, KC_OP_DIV, r, kb_scalar(&c->g, ox_type(c, r)->dtype, n->n_in));
  return set(c, n, r);
}
static bool cv_bitshift(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 2)) return false;
  const char *dir = ox_attr_string(c, n, "direction", NULL);
  if (!dir || (strcmp(dir, "LEFT") && strcmp(dir, "RIGHT")))
    return ox_fail(c, n, "attribute 'direction' must be LEFT or RIGHT");
  int op = !strcmp(dir, "LEFT") ? KC_OP_LEFT_SHIFT : KC_OP_RIGHT_SHIFT;
  return set(c, n, kb_binary(&c->g, op, n->in[0], n->in[1]));
}

static bool cv_max(ox_ctx *c, ox_node *n) { return variadic(c, n, KC_OP_MAXIMUM, false); }
static bool cv_min(ox_ctx *c, ox_node *n) { return variadic(c, n, KC_OP_MINIMUM, false); }
static bool cv_sum(ox_ctx *c, ox_node *n) { return variadic(c, n, KC_OP_ADD, false); }
static bool cv_mean(ox_ctx *c, ox_node *n) { return variadic(c, n, KC_OP_ADD, true); }

static bool cv_where(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 3)) return false;
  kg_ref in[3] = {n->in[0], n->in[1], n->in[2]};
  return set(c, n, kb_node(&c->g, KC_OP_SELECT, in, 3, NULL, 0));
}

static bool cv_clip(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 1)) return false;
  kiln_dtype dt = ox_type(c, n->in[0])->dtype;
  kg_ref r = n->in[0];
  kg_shape scalar = {0};
  kg_ref lo = KG_NOREF, hi = KG_NOREF;
  if (ox_attr(n, "min")) lo = ox_const_from(c, dt, &scalar, (double[]){ox_attr_float(n, "min", 0)});
  if (ox_attr(n, "max")) hi = ox_const_from(c, dt, &scalar, (double[]){ox_attr_float(n, "max", 0)});
  if (ox_has(n, 1)) lo = n->in[1];
  if (ox_has(n, 2)) hi = n->in[2];
  if (lo.node >= 0) r = kb_binary(&c->g, KC_OP_MAXIMUM, r, lo);
  if (hi.node >= 0) r = kb_binary(&c->g, KC_OP_MINIMUM, r, hi);
  if (lo.node < 0 && hi.node < 0) r = kb_unary(&c->g, KC_OP_IDENTITY, r);
  return set(c, n, r);
}

static bool cv_leaky_relu(ox_ctx *c, ox_node *n) {
  return activation(c, n, "select(lt(x0, 0), mul(x0, %.17g), x0)", ox_attr_float(n, "alpha", 0.01), 0);
}
static bool cv_elu(ox_ctx *c, ox_node *n) {
  return activation(c, n, "select(lt(x0, 0), mul(%.17g, sub(exp(x0), 1)), x0)", ox_attr_float(n, "alpha", 1.0), 0);
}
static bool cv_selu(ox_ctx *c, ox_node *n) {
  double a = ox_attr_float(n, "alpha", 1.67326319217681884765625), g = ox_attr_float(n, "gamma", 1.05070102214813232421875);
  char e[256];
  snprintf(e, sizeof e, "mul(%.17g, select(gt(x0, 0), x0, mul(%.17g, sub(exp(x0), 1))))", g, a);
  return want_float(c, n, 0) && expr_k(c, n, 1, e);
}
static bool cv_hard_sigmoid(ox_ctx *c, ox_node *n) {
  return activation(c, n, "max(0, min(1, add(mul(%.17g, x0), %.17g)))", ox_attr_float(n, "alpha", 0.2),
                    ox_attr_float(n, "beta", 0.5));
}
static bool cv_hard_swish(ox_ctx *c, ox_node *n) {
  return activation(c, n, "mul(x0, max(0, min(1, add(div(x0, 6), 0.5))))", 0, 0);
}
static bool cv_softplus(ox_ctx *c, ox_node *n) {
  return activation(c, n, "add(max(x0, 0), log(add(1, exp(neg(abs(x0))))))", 0, 0);
}
static bool cv_softsign(ox_ctx *c, ox_node *n) { return activation(c, n, "div(x0, add(1, abs(x0)))", 0, 0); }
static bool cv_thresholded_relu(ox_ctx *c, ox_node *n) {
  return activation(c, n, "select(gt(x0, %.17g), x0, 0)", ox_attr_float(n, "alpha", 1.0), 0);
}
static bool cv_celu(ox_ctx *c, ox_node *n) {
  double a = ox_attr_float(n, "alpha", 1.0);
  char e[256];
  snprintf(e, sizeof e, "add(max(0, x0), min(0, mul(%.17g, sub(exp(div(x0, %.17g)), 1))))", a, a);
  return want_float(c, n, 0) && expr_k(c, n, 1, e);
}
static bool cv_shrink(ox_ctx *c, ox_node *n) {
  double l = ox_attr_float(n, "lambd", 0.5), b = ox_attr_float(n, "bias", 0.0);
  char e[256];
  snprintf(e, sizeof e, "select(lt(x0, neg(%.17g)), add(x0, %.17g), select(gt(x0, %.17g), sub(x0, %.17g), 0))", l, b, l, b);
  return expr_k(c, n, 1, e);
}
static bool cv_prelu(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 2)) return false;
  const kg_type *xt = ox_type(c, n->in[0]), *st = ox_type(c, n->in[1]);
  kg_ref slope = n->in[1];
  /* before opset 7 a slope of C values is per channel (axis 1), not NumPy-broadcast */
  if (c->opset < 7 && st->shape.rank == 1 && xt->shape.rank >= 2 && st->shape.dim[0] == xt->shape.dim[1] &&
      st->shape.dim[0] != 1) {
    kg_shape s = {.rank = xt->shape.rank - 1};
    s.dim[0] = st->shape.dim[0];
    for (int d = 1; d < s.rank; d++) s.dim[d] = 1;
    slope = ox_reshape(c, slope, &s);
  }
  kg_ref in[2] = {n->in[0], slope};
  return set(c, n, ox_expr(c, "select(lt(x0, 0), mul(x0, x1), x0)", in, 2, xt->dtype));
}

static bool cv_isnan(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 1) || !want_float(c, n, 0)) return false;
  return set(c, n, ox_expr(c, "ne(x0, x0)", n->in, 1, KILN_BOOL));
}
static bool cv_isinf(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 1) || !want_float(c, n, 0)) return false;
  bool pos = ox_attr_int(n, "detect_positive", 1), neg = ox_attr_int(n, "detect_negative", 1);
  const char *e = pos && neg ? "eq(abs(x0), div(1, 0))" : pos ? "eq(x0, div(1, 0))" : neg ? "eq(x0, neg(div(1, 0)))"
                                                                                              : "ne(x0, x0)";
  if (!pos && !neg) e = "and(ne(x0, x0), eq(x0, x0))";
  return set(c, n, ox_expr(c, e, n->in, 1, KILN_BOOL));
}

/* Cast-1 names its type ("FLOAT", "INT32", ...): the TensorProto number,
 * or 0 when unknown. */
static int64_t dtype_by_name(const Onnx__AttributeProto *a) {
  for (int32_t t = 1; t <= 16; t++) {
    const char *name = ox_dtype_name(t);
    if (strlen(name) == a->s.len && !strncasecmp(name, (const char *)a->s.data, a->s.len)) return t;
  }
  return 0;
}

static bool cv_cast(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 1)) return false;
  int64_t to = ox_attr_int(n, "to", 0);
  const Onnx__AttributeProto *a = ox_attr(n, "to");
  if (a && a->has_s) to = dtype_by_name(a);
  kiln_dtype dt;
  if (!ox_dtype((int32_t)to, &dt)) return ox_fail(c, n, "unsupported data type %s for 'to'", ox_dtype_name((int32_t)to));
  kg_ref r = ox_cast(c, n->in[0], dt);
  if (r.node == n->in[0].node && r.index == n->in[0].index) r = kb_unary(&c->g, KC_OP_IDENTITY, r);
  return set(c, n, r);
}

static bool cv_cast_like(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 2)) return false;
  kg_ref r = ox_cast(c, n->in[0], ox_type(c, n->in[1])->dtype);
  if (r.node == n->in[0].node && r.index == n->in[0].index) r = kb_unary(&c->g, KC_OP_IDENTITY, r);
  return set(c, n, r);
}

const ox_op ox_ops_elementwise[] = {
    {"Abs", cv_abs},
    {"Neg", cv_neg},
    {"Exp", cv_exp},
    {"Log", cv_log},
    {"Sqrt", cv_sqrt},
    {"Reciprocal", cv_reciprocal},
    {"Tanh", cv_tanh},
    {"Sigmoid", cv_sigmoid},
    {"Relu", cv_relu},
    {"Floor", cv_floor},
    {"Ceil", cv_ceil},
    {"Sin", cv_sin},
    {"Cos", cv_cos},
    {"Sign", cv_sign},
    {"Not", cv_not},
    {"Erf", cv_erf},
    {"Round", cv_round},
    {"Tan", cv_tan},
    {"Asin", cv_asin},
    {"Acos", cv_acos},
    {"Atan", cv_atan},
    {"Sinh", cv_sinh},
    {"Cosh", cv_cosh},
    {"Asinh", cv_asinh},
    {"Acosh", cv_acosh},
    {"Atanh", cv_atanh},
    {"BitShift", cv_bitshift},
    {"Add", cv_add},
    {"Sub", cv_sub},
    {"Mul", cv_mul},
    {"Div", cv_div},
    {"Mod", cv_mod},
    {"Pow", cv_pow},
    {"Equal", cv_equal},
    {"Less", cv_less},
    {"LessOrEqual", cv_less_equal},
    {"Greater", cv_greater},
    {"GreaterOrEqual", cv_greater_equal},
    {"And", cv_and},
    {"Or", cv_or},
    {"Xor", cv_xor},
    {"Max", cv_max},
    {"Min", cv_min},
    {"Sum", cv_sum},
    {"Mean", cv_mean},
    {"Where", cv_where},
    {"Clip", cv_clip},
    {"LeakyRelu", cv_leaky_relu},
    {"Elu", cv_elu},
    {"Selu", cv_selu},
    {"HardSigmoid", cv_hard_sigmoid},
    {"HardSwish", cv_hard_swish},
    {"Softplus", cv_softplus},
    {"Softsign", cv_softsign},
    {"ThresholdedRelu", cv_thresholded_relu},
    {"Celu", cv_celu},
    {"Shrink", cv_shrink},
    {"PRelu", cv_prelu},
    {"IsNaN", cv_isnan},
    {"IsInf", cv_isinf},
    {"Cast", cv_cast},
    {"CastLike", cv_cast_like},
    {NULL, NULL},
};
