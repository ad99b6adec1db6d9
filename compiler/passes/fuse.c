/* fuse.c — elementwise fusion: an elementwise node whose only reader is
 * another elementwise node of the same shape and device is merged into that
 * reader's scalar expression, so the chain becomes one loop (one pass over
 * memory) instead of one loop and one temporary per op.
 *
 * The merged node is an ordinary `fused` node whose `expr` attribute is
 * the combined expression (printed, it parses back).  Inner expressions keep
 * their own dtypes with `as.DT(...)` and `cast.DT(...)`, so a merge never
 * changes arithmetic.  Scalar constants are written into the expression as
 * numbers (the dce pass after this one drops them).  Nodes that something else needs by name — fetched by
 * an entry, a control dependency, stateful — are never merged away. */
#include "ir/expr.h"
#include "ir/ops.h"
#include "passes/passes.h"
#include <stdlib.h>
#include <string.h>

#define MAX_FUSED_INPUTS 32

static bool is_map(const kg_node *n) { return !n->dead && (kc_ops[n->op].flags & KC_OP_ELEMENTWISE); }

/* Assignments compute their new value elementwise too, in place: elementwise
 * producers merge into them (operand 0, the variable, stays). */
static bool is_assign(const kg_node *n) {
  return !n->dead && (n->op == KC_OP_ASSIGN || n->op == KC_OP_ASSIGN_ADD || n->op == KC_OP_ASSIGN_SUB ||
                      n->op == KC_OP_ASSIGN_MAP);
}

static bool is_consumer(const kg_node *n) { return is_map(n) || is_assign(n); }

static bool same_device(const kg_node *a, const kg_node *b) {
  return (!a->device && !b->device) || (a->device && b->device && !strcmp(a->device, b->device));
}

/* Gives every implicit cast target and the root an explicit dtype, so the
 * expression means the same thing wherever it is pasted. */
static void pin_dtypes(kc_expr *e, kiln_dtype out) {
  if (e->kind == KC_EXPR_CALL && !strcmp(e->prim, "cast") && e->to < 0) e->to = out;
  for (int i = 0; i < e->n_args; i++) pin_dtypes(e->args[i], out);
}

/* Replaces var `k` by `sub`, shifting other vars: i<k stays, i>k += shift. */
static kc_expr *substitute(kc_arena *a, const kc_expr *e, int k, const kc_expr *sub, int shift) {
  if (e->kind == KC_EXPR_VAR) {
    if (e->var == k) return kc_expr_copy(a, sub);
    kc_expr *c = kc_expr_copy(a, e);
    if (c->var > k) c->var += shift;
    return c;
  }
  kc_expr *c = kc_expr_copy(a, e);
  for (int i = 0; i < e->n_args; i++) c->args[i] = substitute(a, e->args[i], k, sub, shift);
  return c;
}

static void offset_vars(kc_expr *e, int by) {
  if (e->kind == KC_EXPR_VAR) e->var += by;
  for (int i = 0; i < e->n_args; i++) offset_vars(e->args[i], by);
}

static void remap_vars(kc_expr *e, const int *map) {
  if (e->kind == KC_EXPR_VAR) e->var = map[e->var];
  for (int i = 0; i < e->n_args; i++) remap_vars(e->args[i], map);
}

/* The expression of n with dtypes pinned, in the module's arena. */
static kc_expr *pinned_expr(kg_module *m, const kg_node *n) {
  char err[160];
  const kc_expr *e = kc_node_expr(m->arena, n, err, sizeof err);
  if (!e) return NULL;
  kc_expr *c = kc_expr_copy(m->arena, e);
  pin_dtypes(c, n->out[0].dtype);
  c->hint = n->out[0].dtype;
  return c;
}

/* Makes c a fused node computing e over `in`. */
static void set_fused(kg_module *m, kg_node *c, const kc_expr *e, kg_ref *in, int n_in) {
  kg_attr *at = kc_alloc(m->arena, sizeof *at);
  at->name = "expr";
  at->kind = KG_ATTR_STRING;
  at->s = kc_expr_print(m->arena, e);
  at->loc = c->loc;
  c->op = is_assign(c) ? KC_OP_ASSIGN_MAP : KC_OP_FUSED;
  c->in = in;
  c->n_in = n_in;
  c->attrs = at;
  c->n_attrs = 1;
  c->out_declared = true;
}

/* Merges producer p (operand k of consumer c) into c. */
static bool merge(kg_module *m, int ci, int k) {
  kg_node *c = &m->nodes[ci];
  const kg_node *p = &m->nodes[c->in[k].node];
  kc_expr *ce = pinned_expr(m, c), *pe = pinned_expr(m, p);
  if (!ce || !pe) return false;
  ce->hint = -1; /* the consumer's result dtype is its node's */
  offset_vars(pe, k);
  kc_expr *e = substitute(m->arena, ce, k, pe, p->n_in - 1);
  int n = c->n_in - 1 + p->n_in;
  kg_ref *in = kc_alloc(m->arena, sizeof(kg_ref) * (size_t)n);
  int w = 0;
  for (int i = 0; i < k; i++) in[w++] = c->in[i];
  for (int i = 0; i < p->n_in; i++) in[w++] = p->in[i];
  for (int i = k + 1; i < c->n_in; i++) in[w++] = c->in[i];
  /* the same tensor twice (x*x after merging) becomes one operand */
  int map[2 * MAX_FUSED_INPUTS + 2], u = 0;
  for (int i = 0; i < n; i++) {
    int j = 0;
    while (j < u && (in[j].node != in[i].node || in[j].index != in[i].index)) j++;
    if (j == u) in[u++] = in[i];
    map[i] = j;
  }
  remap_vars(e, map);
  if (u > MAX_FUSED_INPUTS) return false;
  set_fused(m, c, e, in, u);
  m->nodes[(int)(p - m->nodes)].dead = true;
  return true;
}

/* Scalar constants become numbers inside the expression: one operand (and,
 * on the GPU, one upload) fewer, and LLVM sees the value. */
static bool inline_scalar_const(kg_module *m, int ci, int k) {
  kg_node *c = &m->nodes[ci];
  const kg_node *p = &m->nodes[c->in[k].node];
  const kg_attr *v = kg_node_attr(p, "value");
  if (p->op != KC_OP_CONST || !v || kg_shape_numel(&p->out[0].shape) != 1 || c->n_in < 2) return false;
  kc_expr *ce = pinned_expr(m, c);
  if (!ce) return false;
  ce->hint = -1;
  kc_expr *num = kc_alloc(m->arena, sizeof *num);
  num->kind = KC_EXPR_NUM;
  num->num = kg_tensor_get_f(&v->tensor, 0);
  num->to = -1;
  num->hint = p->out[0].dtype;
  if (p->out[0].dtype == KILN_I64 && (double)(int64_t)num->num != num->num) return false; /* beyond 2^53 */
  kc_expr *e = substitute(m->arena, ce, k, num, -1);
  kg_ref *in = kc_alloc(m->arena, sizeof(kg_ref) * (size_t)c->n_in);
  int w = 0;
  for (int i = 0; i < c->n_in; i++)
    if (i != k) in[w++] = c->in[i];
  set_fused(m, c, e, in, w);
  return true;
}

bool kc_pass_fuse(kg_module *m, kc_diag *d) {
  int N = m->n_nodes;
  int *uses = calloc((size_t)N + 1, sizeof(int));
  char *pinned = calloc((size_t)N + 1, 1); /* needed by name: never merged away */
  if (!uses || !pinned) {
    free(uses), free(pinned);
    return kc_error(d, (kc_loc){0}, "out of memory");
  }
  for (int v = 0; v < N; v++) {
    const kg_node *n = &m->nodes[v];
    for (int k = 0; k < n->n_in; k++) uses[n->in[k].node]++;
    for (int k = 0; k < n->n_ctrl; k++) pinned[n->ctrl[k]] = 1;
    if (n->n_ctrl) pinned[v] = 1;
  }
  for (int e = 0; e < m->n_entries; e++)
    for (int i = 0; i < m->entries[e].n_fetches; i++) pinned[m->entries[e].fetches[i].node] = 1;
  bool changed = false;
  for (int ci = 0; ci < N; ci++) {
    for (int k = 0; is_consumer(&m->nodes[ci]) && k < m->nodes[ci].n_in; k++) {
      kg_node *c = &m->nodes[ci];
      if (is_assign(c) && k == 0) continue; /* the variable itself */
      int pi = c->in[k].node;
      const kg_node *p = &m->nodes[pi];
      if (inline_scalar_const(m, ci, k)) {
        changed = true;
        k = -1;
        continue;
      }
      if (!is_map(p) || uses[pi] != 1 || pinned[pi] || !same_device(p, c) ||
          !kg_shape_eq(&p->out[0].shape, &c->out[0].shape) || c->n_in + p->n_in > MAX_FUSED_INPUTS)
        continue;
      if (merge(m, ci, k)) {
        changed = true;
        k = -1; /* the operand list changed: look again from the start */
      }
    }
  }
  free(uses);
  free(pinned);
  if (changed) kc_module_compact(m);
  return true;
}
