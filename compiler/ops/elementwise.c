/* elementwise.c — the elementwise family: NumPy-broadcasting maps of the
 * scalar expression each op carries in the op table.  No op here has
 * lowering code of its own: kl_lower_elementwise hands the op's parsed
 * expression to the generic loop-nest emitter (lower/elementwise.c). */
#include "ir/expr.h"
#include "lower/lower.h"
#include "ops/ops_util.h"

bool kc_infer_elementwise(kc_infer_ctx *c, kg_node *n) {
  kg_shape s = kc_in_type(c, n, 0)->shape;
  for (int i = 1; i < n->n_in; i++)
    if (!kc_broadcast(c, n, &s, &kc_in_type(c, n, i)->shape, &s)) return false;
  kiln_dtype dt = (kc_ops[n->op].flags & KC_OP_OUT_BOOL) ? KILN_BOOL : kc_in_type(c, n, 0)->dtype;
  kc_set_out(c, n, dt, &s);
  return true;
}

bool kc_infer_cast(kc_infer_ctx *c, kg_node *n) {
  const kg_attr *to = kg_node_attr(n, "to");
  kc_set_out(c, n, to->dtype, &kc_in_type(c, n, 0)->shape);
  return true;
}

bool kc_infer_select(kc_infer_ctx *c, kg_node *n) {
  if (kc_in_type(c, n, 0)->dtype != KILN_BOOL)
    return kc_node_error(c, n, "the condition must be bool, not %s",
                         kg_dtype_name(kc_in_type(c, n, 0)->dtype));
  kg_shape s = kc_in_type(c, n, 0)->shape;
  for (int i = 1; i < 3; i++)
    if (!kc_broadcast(c, n, &s, &kc_in_type(c, n, i)->shape, &s)) return false;
  kc_set_out(c, n, kc_in_type(c, n, 1)->dtype, &s);
  return true;
}

bool kc_infer_same(kc_infer_ctx *c, kg_node *n) {
  const kg_type *t = kc_in_type(c, n, 0);
  if ((n->op == KC_OP_SOFTMAX || n->op == KC_OP_LOG_SOFTMAX)) {
    int axis;
    if (!kc_axis(c, n, kg_attr_int(n, "axis", -1), t->shape.rank, &axis)) return false;
  }
  kc_set_out(c, n, t->dtype, &t->shape);
  return true;
}

/* A fused node's result type is written down (the pass computed it); its
 * operands must broadcast to that shape and its expression must parse. */
bool kc_infer_fused(kc_infer_ctx *c, kg_node *n) {
  char err[160];
  if (n->n_in < 1) return kc_node_error(c, n, "a fused node needs operands");
  if (!kc_node_expr(c->m->arena, n, err, sizeof err)) return kc_node_error(c, n, "bad expr: %s", err);
  kg_shape s = kc_in_type(c, n, 0)->shape;
  for (int i = 1; i < n->n_in; i++)
    if (!kc_broadcast(c, n, &s, &kc_in_type(c, n, i)->shape, &s)) return false;
  if (!kg_shape_eq(&s, &n->out[0].shape)) {
    char a[96], b[96];
    return kc_node_error(c, n, "operands broadcast to %s, not the declared %s", kc_shape_str(&s, a, sizeof a),
                         kc_shape_str(&n->out[0].shape, b, sizeof b));
  }
  return true;
}

bool kl_lower_elementwise(kl_ctx *L, int node) {
  return kl_emit_map(L, node, kc_op_expr(L->m->nodes[node].op));
}

bool kl_lower_fused(kl_ctx *L, int node) {
  char err[160];
  const kc_expr *e = kc_node_expr(L->m->arena, &L->m->nodes[node], err, sizeof err);
  if (!e) return kc_error(L->diag, L->m->nodes[node].loc, "%s", err);
  return kl_emit_map(L, node, e);
}
