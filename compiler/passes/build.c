/* build.c — building verified nodes from passes (see autodiff.h): each new
 * node is checked and typed at once, so the next builder can read its type. */
#include "ir/expr.h"
#include "passes/autodiff.h"
#include "passes/verify.h"
#include <stdint.h>
#include <string.h>

const kg_type *kb_type(kc_grad_ctx *g, kg_ref r) {
  /* a failed builder returns KG_NOREF, and a caller may ask its type before
   * it checks g->failed: an empty type, not a read outside the node array */
  static const kg_type none = {0};
  const kg_type *t = r.node >= 0 && r.node < g->m->n_nodes ? kg_ref_type(g->m, r) : NULL;
  return t ? t : &none;
}

/* Adds op(in) {attrs}, with result type t declared when t is not NULL (for
 * ops that need one), and verifies it. */
static kg_ref add_node(kc_grad_ctx *g, int op, const kg_type *t, const kg_ref *in, int n_in, const kg_attr *attrs,
                       int n_attrs) {
  if (g->failed) return KG_NOREF;
  for (int i = 0; i < n_in; i++)
    if (in[i].node < 0) {
      g->failed = true;
      kc_error(g->d, g->loc, "internal: a gradient builder got a missing operand for '%s'", kc_ops[op].name);
      return KG_NOREF;
    }
  kg_node n = {0};
  const char *base = kc_sprintf(g->m->arena, "%s/%s", g->prefix, kc_ops[op].name);
  n.name = base;
  for (int k = 1; kc_module_find(g->m, n.name, strlen(n.name)) >= 0; k++)
    n.name = kc_sprintf(g->m->arena, "%s_%d", base, k);
  n.op = op;
  n.loc = g->loc;
  n.n_in = n_in;
  n.in = kc_alloc(g->m->arena, sizeof(kg_ref) * (size_t)(n_in ? n_in : 1));
  if (n_in) memcpy(n.in, in, sizeof(kg_ref) * (size_t)n_in);
  n.n_attrs = n_attrs;
  n.attrs = kc_alloc(g->m->arena, sizeof(kg_attr) * (size_t)(n_attrs ? n_attrs : 1));
  if (n_attrs) memcpy(n.attrs, attrs, sizeof(kg_attr) * (size_t)n_attrs);
  for (int i = 0; i < n_attrs; i++) n.attrs[i].loc = g->loc;
  if (t) {
    n.out = kc_alloc(g->m->arena, sizeof(kg_type));
    n.out[0] = *t;
    n.n_out = 1;
    n.out_declared = true;
  }
  int idx = kc_module_add_node(g->m, &n);
  if (!kc_verify_node(g->m, idx, g->d)) {
    g->failed = true;
    return KG_NOREF;
  }
  return (kg_ref){idx, 0};
}

kg_ref kb_node(kc_grad_ctx *g, int op, const kg_ref *in, int n_in, const kg_attr *attrs, int n_attrs) {
  return add_node(g, op, NULL, in, n_in, attrs, n_attrs);
}

kg_ref kb_typed_node(kc_grad_ctx *g, int op, const kg_type *t, const kg_ref *in, int n_in, const kg_attr *attrs,
                     int n_attrs) {
  return add_node(g, op, t, in, n_in, attrs, n_attrs);
}

kg_ref kb_unary(kc_grad_ctx *g, int op, kg_ref x) { return kb_node(g, op, &x, 1, NULL, 0); }

kg_ref kb_binary(kc_grad_ctx *g, int op, kg_ref x, kg_ref y) {
  kg_ref in[] = {x, y};
  return kb_node(g, op, in, 2, NULL, 0);
}

kg_ref kb_scalar(kc_grad_ctx *g, kiln_dtype dt, double v) {
  kg_type t = {dt, {0}};
  kg_attr a = {0};
  a.name = "value";
  a.kind = KG_ATTR_TENSOR;
  a.tensor.type = t;
  a.tensor.data = kc_alloc(g->m->arena, 8);
  switch (dt) {
  case KILN_F32: *(float *)a.tensor.data = (float)v; break;
  case KILN_F64: *(double *)a.tensor.data = v; break;
  /* integers: the value is a whole number by the builders' contract; clamp
   * so a stray fraction or range can never be undefined behaviour */
  case KILN_I32: *(int32_t *)a.tensor.data = (int32_t)(v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : v); break;
  case KILN_I64: *(int64_t *)a.tensor.data = (int64_t)(v < -9.2e18 ? -9.2e18 : v > 9.2e18 ? 9.2e18 : v); break;
  case KILN_I8: *(int8_t *)a.tensor.data = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v); break;
  default: *(uint8_t *)a.tensor.data = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); break;
  }
  return add_node(g, KC_OP_CONST, &t, NULL, 0, &a, 1);
}

kg_ref kb_zeros(kc_grad_ctx *g, const kg_type *t) { return add_node(g, KC_OP_ZEROS, t, NULL, 0, NULL, 0); }

kg_attr kb_attr_int(const char *name, int64_t v) {
  kg_attr a = {0};
  a.name = name;
  a.kind = KG_ATTR_INT;
  a.i = v;
  return a;
}

kg_attr kb_attr_bool(const char *name, bool v) {
  kg_attr a = {0};
  a.name = name;
  a.kind = KG_ATTR_BOOL;
  a.b = v;
  return a;
}

kg_attr kb_attr_float(const char *name, double v) {
  kg_attr a = {0};
  a.name = name;
  a.kind = KG_ATTR_FLOAT;
  a.f = v;
  return a;
}

kg_attr kb_attr_dtype(const char *name, kiln_dtype dt) {
  kg_attr a = {0};
  a.name = name;
  a.kind = KG_ATTR_DTYPE;
  a.dtype = dt;
  return a;
}

kg_attr kb_attr_ints(kc_grad_ctx *g, const char *name, const int64_t *v, int n) {
  kg_attr a = {0};
  a.name = name;
  a.kind = KG_ATTR_INTS;
  a.ints.n = n;
  a.ints.v = kc_alloc(g->m->arena, sizeof(int64_t) * (size_t)(n ? n : 1));
  if (n) memcpy(a.ints.v, v, sizeof(int64_t) * (size_t)n);
  return a;
}

kg_ref kb_reshape(kc_grad_ctx *g, kg_ref x, const kg_shape *s) {
  if (x.node < 0) return x;
  if (kg_shape_eq(&kb_type(g, x)->shape, s)) return x;
  kg_attr a = kb_attr_ints(g, "shape", s->dim, s->rank);
  return kb_node(g, KC_OP_RESHAPE, &x, 1, &a, 1);
}

kg_ref kb_sum_to(kc_grad_ctx *g, kg_ref x, const kg_shape *to) {
  if (x.node < 0) return x;
  const kg_shape *from = &kb_type(g, x)->shape;
  if (kg_shape_eq(from, to)) return x;
  int64_t axes[KILN_MAX_RANK];
  int n = 0;
  for (int d = 0; d < from->rank; d++) {
    int td = to->rank - from->rank + d;
    if (td < 0 || (to->dim[td] == 1 && from->dim[d] != 1)) axes[n++] = d;
  }
  kg_ref r = x;
  if (n) {
    kg_attr a[] = {kb_attr_ints(g, "axes", axes, n), kb_attr_bool("keepdims", false)};
    r = kb_node(g, KC_OP_SUM, &x, 1, a, 2);
  }
  return kb_reshape(g, r, to);
}

kg_ref kb_broadcast(kc_grad_ctx *g, kg_ref x, const kg_shape *s) {
  if (x.node < 0 || kg_shape_eq(&kb_type(g, x)->shape, s)) return x;
  kg_attr a = kb_attr_ints(g, "shape", s->dim, s->rank);
  return kb_node(g, KC_OP_BROADCAST_TO, &x, 1, &a, 1);
}

static void mark_vars(const kc_expr *e, bool *used) {
  if (e->kind == KC_EXPR_VAR) used[e->var] = true;
  for (int i = 0; i < e->n_args; i++) mark_vars(e->args[i], used);
}

static void renumber_vars(kc_expr *e, const int *map) {
  if (e->kind == KC_EXPR_VAR) e->var = map[e->var];
  for (int i = 0; i < e->n_args; i++) renumber_vars(e->args[i], map);
}

/* Operands the expression does not read are dropped (one is kept so the
 * node still has a shape to broadcast to). */
kg_ref kb_fused(kc_grad_ctx *g, const kc_expr *expr, const kg_ref *in, int n_in, kiln_dtype dt, const kg_shape *shape) {
  bool used[64] = {0};
  int map[64], k = 0;
  kg_ref kept[64];
  if (n_in > 64) n_in = 64;
  mark_vars(expr, used);
  for (int i = 0; i < n_in; i++)
    if (used[i]) map[i] = k, kept[k++] = in[i];
  if (!k && n_in) kept[k++] = in[n_in - 1];
  kc_expr *e = kc_expr_copy(g->m->arena, expr);
  renumber_vars(e, map);
  kg_attr a = {0};
  a.name = "expr";
  a.kind = KG_ATTR_STRING;
  a.s = kc_expr_print(g->m->arena, e);
  kg_type t = {dt, *shape};
  return add_node(g, KC_OP_FUSED, &t, kept, k, &a, 1);
}

kg_ref kb_variable(kc_grad_ctx *g, const char *name, const kg_type *t, const kg_attr *init, int n_init) {
  if (g->failed) return KG_NOREF;
  int prev = kc_module_find(g->m, name, strlen(name));
  if (prev >= 0) {
    g->failed = true;
    kc_error(g->d, g->loc, "cannot create variable '%s': the name is taken by a %s", name, kc_ops[g->m->nodes[prev].op].name);
    return KG_NOREF;
  }
  kg_node n = {0};
  n.name = kc_strdup(g->m->arena, name);
  n.op = KC_OP_VARIABLE;
  n.loc = g->loc;
  n.in = kc_alloc(g->m->arena, sizeof(kg_ref));
  n.out = kc_alloc(g->m->arena, sizeof(kg_type));
  n.out[0] = *t;
  n.n_out = 1;
  n.out_declared = true;
  n.attrs = kc_alloc(g->m->arena, sizeof(kg_attr) * (size_t)(n_init + 1));
  for (int i = 0; i < n_init; i++)
    if (strcmp(init[i].name, "trainable")) n.attrs[n.n_attrs++] = init[i];
  n.attrs[n.n_attrs++] = kb_attr_bool("trainable", false);
  for (int i = 0; i < n.n_attrs; i++) n.attrs[i].loc = g->loc;
  int idx = kc_module_add_node(g->m, &n);
  if (!kc_verify_node(g->m, idx, g->d)) {
    g->failed = true;
    return KG_NOREF;
  }
  return (kg_ref){idx, 0};
}
