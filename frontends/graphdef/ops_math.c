/* ops_math.c — TensorFlow's math ops: elementwise unary and binary ops
 * (NumPy broadcasting, as TensorFlow's), comparisons and logic, Select,
 * AddN, Cast, the reductions over a compile-time axis operand (Mean, Sum,
 * Max, Min, Prod, ArgMax) and Softmax / LogSoftmax. */
#include "frontends/graphdef/gd.h"
#include <string.h>

static const struct {
  const char *tf;
  int op;
} unary[] = {
    {"Neg", KC_OP_NEG},       {"Abs", KC_OP_ABS},     {"Sign", KC_OP_SIGN},         {"Exp", KC_OP_EXP},
    {"Log", KC_OP_LOG},       {"Sqrt", KC_OP_SQRT},   {"Rsqrt", KC_OP_RSQRT},       {"Square", KC_OP_SQUARE},
    {"Reciprocal", KC_OP_RECIPROCAL}, {"Inv", KC_OP_RECIPROCAL}, {"Floor", KC_OP_FLOOR}, {"Ceil", KC_OP_CEIL},
    {"Round", KC_OP_ROUND},   {"Sin", KC_OP_SIN},     {"Cos", KC_OP_COS},           {"Tan", KC_OP_TAN},
    {"LogicalNot", KC_OP_LOGICAL_NOT}, {"Erf", KC_OP_ERF}, {"Asin", KC_OP_ASIN},   {"Acos", KC_OP_ACOS},
    {"Atan", KC_OP_ATAN},     {"Sinh", KC_OP_SINH},   {"Cosh", KC_OP_COSH},
};

static const struct {
  const char *tf;
  int op;
} binary[] = {
    {"Add", KC_OP_ADD},          {"AddV2", KC_OP_ADD},          {"Sub", KC_OP_SUB},
    {"Mul", KC_OP_MUL},          {"RealDiv", KC_OP_DIV},        {"Maximum", KC_OP_MAXIMUM},
    {"Minimum", KC_OP_MINIMUM},  {"Pow", KC_OP_POW},            {"FloorMod", KC_OP_MOD},
    {"Less", KC_OP_LESS},        {"LessEqual", KC_OP_LESS_EQUAL}, {"Greater", KC_OP_GREATER},
    {"GreaterEqual", KC_OP_GREATER_EQUAL}, {"Equal", KC_OP_EQUAL}, {"NotEqual", KC_OP_NOT_EQUAL},
    {"LogicalAnd", KC_OP_LOGICAL_AND}, {"LogicalOr", KC_OP_LOGICAL_OR},
};

static bool cv_unary(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 1, false)) return false;
  gd_outputs(c, n, 1);
  for (size_t i = 0; i < sizeof unary / sizeof *unary; i++)
    if (!strcmp(unary[i].tf, n->p->op)) n->out[0] = kb_unary(&c->g, unary[i].op, n->in[0]);
  return !c->g.failed;
}

static bool cv_binary(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 2, false)) return false;
  gd_outputs(c, n, 1);
  for (size_t i = 0; i < sizeof binary / sizeof *binary; i++)
    if (!strcmp(binary[i].tf, n->p->op)) n->out[0] = kb_binary(&c->g, binary[i].op, n->in[0], n->in[1]);
  return !c->g.failed;
}

/* Ops whose math is one expression over the operands. */
static const struct {
  const char *tf;
  int n_in;
  const char *expr;
} exprs[] = {
    {"SquaredDifference", 2, "mul(sub(x0, x1), sub(x0, x1))"},
    {"Softplus", 1, "log(add(exp(x0), 1))"},
    {"Log1p", 1, "log(add(x0, 1))"},
    {"Expm1", 1, "sub(exp(x0), 1)"},
    {"Selu", 1, "select(gt(x0, 0), mul(x0, 1.0507009873554805), mul(1.7580993408473766, sub(exp(x0), 1)))"},
    {"DivNoNan", 2, "select(eq(x1, 0), 0, div(x0, x1))"},
    {"ClipByValue", 3, "min(max(x0, x1), x2)"},
};

static bool cv_expr(gd_ctx *c, gd_node *n) {
  for (size_t i = 0; i < sizeof exprs / sizeof *exprs; i++)
    if (!strcmp(exprs[i].tf, n->p->op)) {
      if (!gd_inputs(c, n, exprs[i].n_in, false)) return false;
      gd_outputs(c, n, 1);
      n->out[0] = gd_expr(c, exprs[i].expr, n->in, n->n_in, gd_type(c, n->in[0])->dtype);
    }
  return !c->g.failed;
}

/* Div and FloorDiv: kiln's integer div is floor division; TensorFlow's Div
 * of integers truncates toward zero. */
static bool cv_div(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 2, false)) return false;
  gd_outputs(c, n, 1);
  kiln_dtype dt = gd_type(c, n->in[0])->dtype;
  if (kg_dtype_is_float(dt))
    n->out[0] = !strcmp(n->p->op, "FloorDiv") ? gd_expr(c, "floor(div(x0, x1))", n->in, 2, dt)
                                              : kb_binary(&c->g, KC_OP_DIV, n->in[0], n->in[1]);
  else if (!strcmp(n->p->op, "FloorDiv") || !kg_dtype_is_signed(dt))
    n->out[0] = kb_binary(&c->g, KC_OP_DIV, n->in[0], n->in[1]);
  else /* truncating: floor division, plus one where the signs differ and it is inexact */
    n->out[0] = gd_expr(c, "select(and(ne(mod(x0, x1), 0), ne(lt(x0, 0), lt(x1, 0))), add(div(x0, x1), 1), div(x0, x1))",
                        n->in, 2, dt);
  return !c->g.failed;
}

static bool cv_cast(gd_ctx *c, gd_node *n) {
  kiln_dtype to;
  if (!gd_inputs(c, n, 1, false) || !gd_attr_dtype(c, n, "DstT", KILN_F32, &to)) return false;
  gd_outputs(c, n, 1);
  n->out[0] = gd_cast(c, n->in[0], to);
  if (n->out[0].node == n->in[0].node) n->out[0] = kb_unary(&c->g, KC_OP_IDENTITY, n->in[0]);
  return !c->g.failed;
}

static bool cv_select(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 3, false)) return false;
  gd_outputs(c, n, 1);
  kg_ref cond = n->in[0];
  kg_shape cs = gd_type(c, cond)->shape, xs = gd_type(c, n->in[1])->shape;
  if (!strcmp(n->p->op, "Select") && cs.rank == 1 && xs.rank > 1) { /* v1: a vector picks rows */
    kg_shape s = {.rank = xs.rank};
    s.dim[0] = cs.dim[0];
    for (int d = 1; d < s.rank; d++) s.dim[d] = 1;
    cond = gd_reshape(c, cond, &s);
  }
  kg_ref in[3] = {cond, n->in[1], n->in[2]};
  n->out[0] = kb_node(&c->g, KC_OP_SELECT, in, 3, NULL, 0);
  return !c->g.failed;
}

static bool cv_add_n(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 1, true)) return false;
  gd_outputs(c, n, 1);
  kg_ref s = n->in[0];
  for (int i = 1; i < n->n_in; i++) s = kb_binary(&c->g, KC_OP_ADD, s, n->in[i]);
  n->out[0] = n->n_in == 1 ? kb_unary(&c->g, KC_OP_IDENTITY, s) : s;
  return !c->g.failed;
}

/* ---- reductions ---- */

static bool cv_reduce(gd_ctx *c, gd_node *n) {
  static const struct {
    const char *tf;
    int op;
  } ops[] = {{"Mean", KC_OP_MEAN}, {"Sum", KC_OP_SUM}, {"Max", KC_OP_MAX}, {"Min", KC_OP_MIN}, {"Prod", KC_OP_PROD}};
  int64_t *axes;
  int cnt;
  if (!gd_inputs(c, n, 2, false) || !gd_const_ints(c, n, 1, &axes, &cnt)) return false;
  gd_outputs(c, n, 1);
  int rank = gd_type(c, n->in[0])->shape.rank, norm;
  for (int i = 0; i < cnt; i++) {
    if (!gd_axis(c, n, axes[i], rank, &norm)) return false;
    axes[i] = norm;
  }
  bool keep = gd_attr_bool(n, "keep_dims", false);
  if (!cnt) { /* over no axes: the input */
    n->out[0] = kb_unary(&c->g, KC_OP_IDENTITY, n->in[0]);
    return !c->g.failed;
  }
  int op = -1;
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (!strcmp(ops[i].tf, n->p->op)) op = ops[i].op;
  kg_attr a[2] = {kb_attr_ints(&c->g, "axes", axes, cnt), kb_attr_bool("keepdims", keep)};
  n->out[0] = kb_node(&c->g, op, &n->in[0], 1, a, 2);
  return !c->g.failed;
}

static bool cv_argmax(gd_ctx *c, gd_node *n) {
  int64_t *axis;
  int cnt, ax;
  kiln_dtype to;
  if (!gd_inputs(c, n, 2, false) || !gd_const_ints(c, n, 1, &axis, &cnt)) return false;
  if (cnt != 1) return gd_fail(c, n, "the axis must be one integer");
  if (!gd_axis(c, n, axis[0], gd_type(c, n->in[0])->shape.rank, &ax) ||
      !gd_attr_dtype(c, n, "output_type", KILN_I64, &to))
    return false;
  gd_outputs(c, n, 1);
  kg_attr a = kb_attr_int("axis", ax);
  kg_ref x = n->in[0];
  if (!strcmp(n->p->op, "ArgMin")) x = kb_unary(&c->g, KC_OP_NEG, x);
  n->out[0] = gd_cast(c, kb_node(&c->g, KC_OP_ARGMAX, &x, 1, &a, 1), to);
  return !c->g.failed;
}

static bool cv_softmax(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 1, false)) return false;
  gd_outputs(c, n, 1);
  kg_attr a = kb_attr_int("axis", -1);
  n->out[0] = kb_node(&c->g, !strcmp(n->p->op, "Softmax") ? KC_OP_SOFTMAX : KC_OP_LOG_SOFTMAX, &n->in[0], 1, &a, 1);
  return !c->g.failed;
}

const gd_op gd_ops_math[] = {
    {"Neg", cv_unary}, {"Abs", cv_unary}, {"Sign", cv_unary}, {"Exp", cv_unary}, {"Log", cv_unary},
    {"Sqrt", cv_unary}, {"Rsqrt", cv_unary}, {"Square", cv_unary}, {"Reciprocal", cv_unary}, {"Inv", cv_unary},
    {"Floor", cv_unary}, {"Ceil", cv_unary}, {"Round", cv_unary}, {"Sin", cv_unary}, {"Cos", cv_unary},
    {"Tan", cv_unary}, {"LogicalNot", cv_unary}, {"Erf", cv_unary}, {"Asin", cv_unary}, {"Acos", cv_unary},
    {"Atan", cv_unary}, {"Sinh", cv_unary}, {"Cosh", cv_unary},
    {"Add", cv_binary}, {"AddV2", cv_binary}, {"Sub", cv_binary}, {"Mul", cv_binary}, {"RealDiv", cv_binary},
    {"Maximum", cv_binary}, {"Minimum", cv_binary}, {"Pow", cv_binary}, {"FloorMod", cv_binary},
    {"Less", cv_binary}, {"LessEqual", cv_binary}, {"Greater", cv_binary}, {"GreaterEqual", cv_binary},
    {"Equal", cv_binary}, {"NotEqual", cv_binary}, {"LogicalAnd", cv_binary}, {"LogicalOr", cv_binary},
    {"SquaredDifference", cv_expr}, {"Softplus", cv_expr}, {"Log1p", cv_expr}, {"Expm1", cv_expr},
    {"Selu", cv_expr}, {"DivNoNan", cv_expr}, {"ClipByValue", cv_expr},
    {"Div", cv_div}, {"FloorDiv", cv_div},
    {"Cast", cv_cast},
    {"Select", cv_select}, {"SelectV2", cv_select},
    {"AddN", cv_add_n},
    {"Mean", cv_reduce}, {"Sum", cv_reduce}, {"Max", cv_reduce}, {"Min", cv_reduce}, {"Prod", cv_reduce},
    {"ArgMax", cv_argmax}, {"ArgMin", cv_argmax},
    {"Softmax", cv_softmax}, {"LogSoftmax", cv_softmax},
    {NULL, NULL},
};
