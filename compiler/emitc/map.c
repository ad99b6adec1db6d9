/* map.c — the C loop nest of an elementwise expression: every elementwise
 * op (from its `expr` in the op table), every fused node and every
 * assignment (kc_node_expr), rendered the way lower/elementwise.c renders
 * them for LLVM: one flat loop when each operand has the result's shape or
 * is a scalar, else a loop per result dimension with each operand advancing
 * by its own (possibly zero) stride.  The dtype rules of the expression
 * (constants take their context's dtype, comparisons yield bool, cast.DT and
 * as.DT pin dtypes) are the same as there, so an op added to the table with
 * an `expr` needs nothing here. */
#include "emitc/ke.h"
#include <string.h>

typedef struct operand {
  kiln_dtype dt;
  const char *name;              /* the local pointer */
  int64_t stride[KILN_MAX_RANK]; /* element stride per result dimension (0: broadcast) */
  bool scalar, same;
  const char *idx;               /* index expression in the current loop */
} operand;

typedef struct map_ctx {
  ke_ctx *E;
  operand *ops;
  kiln_dtype out_dt;
  kc_expr_typing typing; /* the operands' dtypes, for ir/expr.h's rules */
} map_ctx;

/* The C expression of e; constants take the dtype `hint` of their context.
 * NULL after an error. */
static const char *eval(map_ctx *c, const kc_expr *e, kiln_dtype hint, kiln_dtype *dt_out) {
  ke_ctx *E = c->E;
  if (e->hint >= 0) hint = (kiln_dtype)e->hint;
  if (e->kind == KC_EXPR_VAR) {
    operand *o = &c->ops[e->var];
    *dt_out = o->dt;
    return ke_load(E, o->dt, o->name, o->idx);
  }
  if (e->kind == KC_EXPR_NUM) {
    *dt_out = hint;
    return ke_const_f(E, hint, e->num);
  }
  bool sel = !strcmp(e->prim, "select");
  kiln_dtype arg_hint = kc_expr_arg_hint(&c->typing, e, hint);
  const char *args[3];
  kiln_dtype dts[3] = {hint, hint, hint}, out;
  for (int i = 0; i < e->n_args; i++)
    if (!(args[i] = eval(c, e->args[i], sel && i == 0 ? KILN_BOOL : arg_hint, &dts[i]))) return NULL;
  kiln_dtype dt = kc_expr_call_dtype(&c->typing, e, dts, &out);
  *dt_out = out;
  return ke_prim(E, e->prim, dt, out, args, e->n_args);
}

static void mark_used(const kc_expr *e, bool *used) {
  if (e->kind == KC_EXPR_VAR) used[e->var] = true;
  for (int i = 0; e->kind == KC_EXPR_CALL && i < e->n_args; i++) mark_used(e->args[i], used);
}

static bool body(map_ctx *c, const kg_type *t, const char *out_idx, const kc_expr *e) {
  kiln_dtype dt;
  const char *v = eval(c, e, t->dtype, &dt);
  if (!v) return false;
  ke_store(c->E, t->dtype, "y", out_idx, ke_convert(c->E, v, dt, t->dtype));
  return true;
}

bool ke_emit_map(ke_ctx *E, int node, const kc_expr *e) {
  const kg_node *n = &E->m->nodes[node];
  const kg_type *t = &n->out[0];
  if (!e) return ke_node_error(E, node, "internal: op '%s' has no expression", kc_ops[n->op].name);
  if (n->n_in > 64) return ke_node_error(E, node, "too many operands for an elementwise op");
  operand ops[64];
  kiln_dtype var_dt[64];
  bool flat = true;
  for (int k = 0; k < n->n_in; k++) {
    const kg_type *it = ke_in_type(E, node, k);
    operand *o = &ops[k];
    memset(o, 0, sizeof *o);
    o->dt = var_dt[k] = it->dtype;
    o->name = ke_str(E, "x%d", k);
    o->scalar = kg_shape_numel(&it->shape) == 1;
    o->same = kg_shape_eq(&it->shape, &t->shape);
    flat &= o->scalar || o->same;
    int64_t s = 1;
    for (int d = t->shape.rank - 1; d >= 0; d--) {
      int id = it->shape.rank - t->shape.rank + d;
      int64_t dim = id >= 0 ? it->shape.dim[id] : 1;
      o->stride[d] = dim == 1 ? 0 : s;
      s *= dim;
    }
  }
  /* assignments read the variable they write (x0 is the output): the
   * pointers are declared from the plan either way */
  bool used[64] = {0};
  mark_used(e, used);
  for (int k = 0; k < n->n_in; k++)
    if (used[k]) ke_decl_in(E, ops[k].name, node, k);
  ke_decl_out(E, "y", node, 0);
  map_ctx c = {E, ops, t->dtype, {var_dt, t->dtype}};
  if (flat) {
    ke_open(E, "for (int64_t i = 0; i < %s; i++)", ke_i64(E, kg_shape_numel(&t->shape)));
    for (int k = 0; k < n->n_in; k++) ops[k].idx = ops[k].scalar ? "0" : "i";
    bool ok = body(&c, t, "i", e);
    ke_close(E);
    return ok;
  }
  const char *lin = "0";
  const char *idx[64];
  for (int k = 0; k < n->n_in; k++) idx[k] = "0";
  for (int d = 0; d < t->shape.rank; d++) {
    const char *i = ke_str(E, "i%d", d);
    ke_open(E, "for (int64_t %s = 0; %s < %s; %s++)", i, i, ke_i64(E, t->shape.dim[d]), i);
    lin = ke_madd(E, lin, t->shape.dim[d], i);
    for (int k = 0; k < n->n_in; k++) idx[k] = ke_madd(E, i, ops[k].stride[d], idx[k]);
  }
  for (int k = 0; k < n->n_in; k++) ops[k].idx = idx[k];
  bool ok = body(&c, t, lin, e);
  for (int d = 0; d < t->shape.rank; d++) ke_close(E);
  return ok;
}
