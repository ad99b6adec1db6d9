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
  int pi = (int)(p - m->nodes), ci_ = (int)(c - m->nodes);
  /* the merged node runs after whatever the producer ran after, and the
   * no_ops that waited for the producer now wait for it */
  if (p->n_ctrl) {
    int *ctrl = kc_alloc(m->arena, sizeof(int) * (size_t)(c->n_ctrl + p->n_ctrl));
    int nc = 0;
    for (int i = 0; i < c->n_ctrl; i++) ctrl[nc++] = c->ctrl[i];
    for (int i = 0; i < p->n_ctrl; i++) {
      bool dup = false;
      for (int j = 0; j < nc; j++) dup |= ctrl[j] == p->ctrl[i];
      if (!dup) ctrl[nc++] = p->ctrl[i];
    }
    c->ctrl = ctrl;
    c->n_ctrl = nc;
  }
  for (int v = 0; v < m->n_nodes; v++) {
    kg_node *w = &m->nodes[v];
    bool has_c = false;
    for (int k = 0; k < w->n_ctrl; k++) has_c |= w->ctrl[k] == ci_;
    for (int k = 0; k < w->n_ctrl; k++)
      if (w->ctrl[k] == pi) {
        if (has_c) w->ctrl[k] = w->ctrl[--w->n_ctrl], k--; /* already waits for c */
        else w->ctrl[k] = ci_, has_c = true;
      }
  }
  m->nodes[pi].dead = true;
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

/* True when some no_op waiting for p (after [p]) is an ancestor of c, through
 * data or control edges: then moving its wait onto c would make a cycle. */
static bool waiter_feeds(const kg_module *m, int pi, int ci) {
  bool any = false;
  for (int v = 0; v < m->n_nodes && !any; v++)
    for (int k = 0; k < m->nodes[v].n_ctrl; k++) any |= m->nodes[v].ctrl[k] == pi && !m->nodes[v].dead;
  if (!any) return false;
  char *seen = calloc((size_t)m->n_nodes + 1, 1);
  int *stack = malloc(sizeof(int) * ((size_t)m->n_nodes + 1)), sp = 0;
  bool found = !seen || !stack; /* out of memory: do not merge */
  if (!found) seen[stack[sp++] = ci] = 1;
  while (sp && !found) {
    const kg_node *n = &m->nodes[stack[--sp]];
    for (int k = 0; k < n->n_in + n->n_ctrl && !found; k++) {
      int w = k < n->n_in ? n->in[k].node : n->ctrl[k - n->n_in];
      if (seen[w]) continue;
      seen[stack[sp++] = w] = 1;
      for (int j = 0; j < m->nodes[w].n_ctrl; j++) found |= m->nodes[w].ctrl[j] == pi && w != ci;
    }
  }
  free(seen);
  free(stack);
  return found;
}

bool kc_pass_fuse(kg_module *m, kc_diag *d) {
  int N = m->n_nodes;
  int *uses = calloc((size_t)N + 1, sizeof(int));
  char *pinned = calloc((size_t)N + 1, 1); /* needed by name: never merged away */
  if (!uses || !pinned) {
    free(uses), free(pinned);
    return kc_error(d, (kc_loc){0}, "out of memory");
  }
  /* A node that something must run `after` can still be merged when only
   * no_ops wait for it (their wait moves to the merged node, which does the
   * same work and more); waited on by anything else, it stays. */
  for (int v = 0; v < N; v++) {
    const kg_node *n = &m->nodes[v];
    for (int k = 0; k < n->n_in; k++) uses[n->in[k].node]++;
    for (int k = 0; k < n->n_ctrl; k++)
      if (n->op != KC_OP_NO_OP) pinned[n->ctrl[k]] = 1;
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
      if (waiter_feeds(m, pi, ci)) continue;
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
