/* differentiation.c — the `gradients` and `stop_gradient` ops, and the
 * gradient rules shared by many ops: sources, identity, fill, and every
 * elementwise op, whose rule differentiates its scalar expression
 * symbolically (ir/expr.c), so adding an elementwise op brings its gradient
 * along. */
#include "ir/expr.h"
#include "lower/lower.h"
#include "ops/ops_util.h"
#include "passes/autodiff.h"
#include <string.h>

bool kc_infer_gradients(kc_infer_ctx *c, kg_node *n) {
  int n_ys = (int)kg_attr_int(n, "ys", 1);
  bool gys = kg_attr_bool(n, "grad_ys", false);
  int n_xs = n->n_in - n_ys - (gys ? n_ys : 0);
  if (n_ys < 1 || n_ys > 64) return kc_node_error(c, n, "ys must be between 1 and 64");
  if (n_xs < 1 || n_xs > 256)
    return kc_node_error(c, n, "needs ys, then 1 to 256 xs%s; %d operands given", gys ? ", then one initial gradient per y" : "",
                         n->n_in);
  for (int i = 0; i < n->n_in; i++)
    if (!kg_dtype_is_float(kc_in_type(c, n, i)->dtype))
      return kc_node_error(c, n, "operand %d ('%s') is %s: gradients flow through f32/f64 tensors only", i,
                           c->m->nodes[n->in[i].node].name, kg_dtype_name(kc_in_type(c, n, i)->dtype));
  for (int i = 0; gys && i < n_ys; i++)
    if (!kg_type_eq(kc_in_type(c, n, i), kc_in_type(c, n, n_ys + n_xs + i))) {
      char a[128], b[128];
      return kc_node_error(c, n, "initial gradient %d is %s but y %d is %s", i,
                           kg_type_str(kc_in_type(c, n, n_ys + n_xs + i), a, sizeof a), i,
                           kg_type_str(kc_in_type(c, n, i), b, sizeof b));
    }
  n->out = kc_alloc(c->m->arena, sizeof(kg_type) * (size_t)n_xs);
  n->n_out = n_xs;
  for (int k = 0; k < n_xs; k++) n->out[k] = *kc_in_type(c, n, n_ys + k);
  return true;
}

bool kl_lower_unexpanded(kl_ctx *L, int node) {
  return kc_error(L->diag, L->m->nodes[node].loc, "internal: '%s' reached lowering without the autodiff pass",
                  L->m->nodes[node].name);
}

/* The autodiff pass reports an error before calling this. */
bool kc_grad_none(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) { return false; }

/* Sources have no operands to pass a gradient to. */
bool kc_grad_source(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) { return true; }

/* stop_gradient: nothing flows back, and that is not an error. */
bool kc_grad_stop(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) { return true; }

bool kc_grad_identity(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  dx[0] = dy[0];
  return true;
}

bool kc_grad_fill(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  kg_shape scalar = {0};
  dx[0] = kb_sum_to(g, dy[0], &scalar);
  return true;
}

/* Unary ops whose derivative is cheapest in terms of their own result y (as
 * TF's ReluGrad, SigmoidGrad, TanhGrad do): the gradient reads y, not x, so
 * x is free to fuse into the op in the forward pass and nothing transcendental
 * is computed twice. */
static const struct {
  int op;
  const char *dydx; /* over x0 = y */
} output_form[] = {
    {KC_OP_RELU, "select(gt(x0, 0), 1, 0)"},
    {KC_OP_SIGMOID, "mul(x0, sub(1, x0))"},
    {KC_OP_TANH, "sub(1, mul(x0, x0))"},
    {KC_OP_EXP, "x0"},
};

/* dx_i = sum_to(shape of x_i, dy * d expr / d x_i), the product being one
 * fused node over the op's operands and dy. */
bool kc_grad_elementwise(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  kg_module *m = g->m;
  const kg_node *n = &m->nodes[node];
  int n_in = n->n_in, op = n->op;
  kg_type out = n->out[0];
  for (size_t i = 0; i < sizeof output_form / sizeof *output_form; i++)
    if (output_form[i].op == op) {
      char err[64];
      kc_expr *e = kc_expr_parse(m->arena, kc_sprintf(m->arena, "mul(x1, %s)", output_form[i].dydx), "x0,x1", err, sizeof err);
      kg_ref in[] = {{node, 0}, dy[0]};
      dx[0] = kb_fused(g, e, in, 2, out.dtype, &out.shape);
      return true;
    }
  kg_ref in[64];
  if (n_in > 63) return kc_error(g->d, n->loc, "too many operands to differentiate '%s'", n->name);
  memcpy(in, n->in, sizeof(kg_ref) * (size_t)n_in);
  if (op == KC_OP_CAST) { /* a float-to-float cast passes the gradient back, converted */
    kiln_dtype from = kg_ref_type(m, in[0])->dtype;
    if (!kg_dtype_is_float(from) || !kg_dtype_is_float(out.dtype)) return true;
    kg_attr to = kb_attr_dtype("to", from);
    dx[0] = kb_node(g, KC_OP_CAST, dy, 1, &to, 1);
    return true;
  }
  char err[160];
  const kc_expr *e = kc_node_expr(m->arena, n, err, sizeof err);
  if (!e) return kc_error(g->d, n->loc, "%s", err);
  in[n_in] = dy[0];
  kc_expr *dyv = kc_alloc(m->arena, sizeof *dyv);
  dyv->kind = KC_EXPR_VAR;
  dyv->var = n_in;
  dyv->to = dyv->hint = -1;
  for (int i = 0; i < n_in; i++) {
    const kg_type *it = kg_ref_type(m, in[i]);
    if (!kg_dtype_is_float(it->dtype)) continue;
    kc_expr *d = kc_expr_diff(m->arena, e, i, err, sizeof err);
    if (!d) return kc_error(g->d, m->nodes[node].loc, "%s", err);
    if (d->kind == KC_EXPR_NUM && d->num == 0) continue; /* piecewise constant */
    kg_shape to = it->shape;
    if (d->kind == KC_EXPR_NUM && d->num == 1 && kg_shape_eq(&kg_ref_type(m, dy[0])->shape, &out.shape)) {
      dx[i] = kb_sum_to(g, dy[0], &to); /* add, identity-like: dy itself */
      continue;
    }
    kc_expr *prod = kc_alloc(m->arena, sizeof *prod);
    prod->kind = KC_EXPR_CALL;
    prod->prim = "mul";
    prod->n_args = 2;
    prod->args[0] = dyv;
    prod->args[1] = d;
    prod->to = prod->hint = -1;
    kg_ref full = kb_fused(g, prod, in, n_in + 1, it->dtype, &out.shape);
    dx[i] = kb_sum_to(g, full, &to);
  }
  return true;
}
