/* autodiff.c — reverse-mode automatic differentiation (see autodiff.h).
 *
 * For one `gradients` node: the nodes that matter are those on a data path
 * from some x to some y.  They are visited in reverse topological order;
 * each output's gradient is the sum of its readers' contributions, and each
 * op's rule turns its outputs' gradients into its operands'.  Integer and
 * bool tensors carry no gradient, as in TensorFlow.  The gradients node's
 * outputs are then replaced everywhere by the computed gradients. */
#include "passes/autodiff.h"
#include "passes/passes.h"
#include <stdlib.h>
#include <string.h>

typedef struct adctx {
  kc_grad_ctx g;
  int n;        /* nodes before expansion: only these are differentiated */
  int *base;    /* per node: first output slot */
  kg_ref *acc;  /* per slot: accumulated gradient, or KG_NOREF */
  char *on_path;
} adctx;

static bool is_float_ref(kg_module *m, kg_ref r) {
  const kg_type *t = kg_ref_type(m, r);
  return t && kg_dtype_is_float(t->dtype);
}

static void accumulate(adctx *a, kg_ref into, kg_ref grad) {
  kg_ref *slot = &a->acc[a->base[into.node] + into.index];
  if (grad.node < 0) return;
  *slot = slot->node < 0 ? grad : kb_binary(&a->g, KC_OP_ADD, *slot, grad);
}

/* Reverse-postorder DFS from the ys over on-path nodes: a topological order. */
static int topo(adctx *a, const kg_ref *ys, int n_ys, int *order) {
  kg_module *m = a->g.m;
  char *seen = calloc((size_t)a->n + 1, 1);
  int *stack = malloc(sizeof(int) * ((size_t)a->n + 1)), *edge = malloc(sizeof(int) * ((size_t)a->n + 1));
  int k = 0;
  for (int r = 0; r < n_ys && seen && stack && edge; r++) {
    int root = ys[r].node;
    if (seen[root] || !a->on_path[root]) continue;
    int sp = 0;
    stack[0] = root;
    edge[0] = 0;
    seen[root] = 1;
    while (sp >= 0) {
      const kg_node *v = &m->nodes[stack[sp]];
      int e = edge[sp]++;
      if (e < v->n_in) {
        int w = v->in[e].node;
        if (!seen[w] && a->on_path[w]) {
          seen[w] = 1;
          stack[++sp] = w;
          edge[sp] = 0;
        }
      } else {
        order[k++] = stack[sp--];
      }
    }
  }
  free(seen);
  free(stack);
  free(edge);
  return k;
}

/* Marks in `up` the ys and every node they read, through data edges
 * (stack: scratch for one int per node). */
static void mark_upstream(const kg_module *m, const kg_ref *ys, int n_ys, char *up, int *stack) {
  int sp = 0;
  for (int i = 0; i < n_ys; i++)
    if (!up[ys[i].node]) up[stack[sp++] = ys[i].node] = 1;
  while (sp) {
    const kg_node *v = &m->nodes[stack[--sp]];
    for (int k = 0; k < v->n_in; k++)
      if (!up[v->in[k].node]) up[stack[sp++] = v->in[k].node] = 1;
  }
}

/* Marks nodes downstream of the xs and upstream of the ys. */
static void mark_path(adctx *a, const kg_ref *xs, int n_xs, const kg_ref *ys, int n_ys) {
  kg_module *m = a->g.m;
  char *fwd = calloc((size_t)a->n + 1, 1), *bwd = calloc((size_t)a->n + 1, 1);
  int *stack = malloc(sizeof(int) * ((size_t)a->n + 1));
  if (!fwd || !bwd || !stack) goto out;
  for (int i = 0; i < n_xs; i++) fwd[xs[i].node] = 1;
  /* forward: node indices are not topological, so iterate to a fixpoint */
  for (bool changed = true; changed;) {
    changed = false;
    for (int v = 0; v < a->n; v++) {
      if (fwd[v] || m->nodes[v].dead) continue;
      for (int k = 0; k < m->nodes[v].n_in; k++)
        if (fwd[m->nodes[v].in[k].node] && is_float_ref(m, m->nodes[v].in[k])) {
          fwd[v] = changed = 1;
          break;
        }
    }
  }
  mark_upstream(m, ys, n_ys, bwd, stack);
  for (int v = 0; v < a->n; v++) a->on_path[v] = fwd[v] && bwd[v];
out:
  free(fwd);
  free(bwd);
  free(stack);
}

/* When x reaches the ys only through integer or bool tensors (argmax,
 * comparisons, casts to int), the first node on such a path whose result is
 * not float: the op to name in the error.  -1 when x does not reach at all. */
static int blocking_node(adctx *a, kg_ref x, const kg_ref *ys, int n_ys) {
  kg_module *m = a->g.m;
  char *fwd = calloc((size_t)a->n + 1, 1), *bwd = calloc((size_t)a->n + 1, 1);
  int *stack = malloc(sizeof(int) * ((size_t)a->n + 1)), found = -1;
  if (!fwd || !bwd || !stack) goto out;
  mark_upstream(m, ys, n_ys, bwd, stack);
  fwd[x.node] = 1;
  for (bool changed = true; changed && found < 0;) {
    changed = false;
    for (int v = 0; v < a->n && found < 0; v++) {
      const kg_node *n = &m->nodes[v];
      if (fwd[v] || n->dead) continue;
      for (int k = 0; k < n->n_in; k++)
        if (fwd[n->in[k].node]) {
          fwd[v] = changed = 1;
          if (bwd[v] && n->n_out && !kg_dtype_is_float(n->out[0].dtype)) found = v;
          break;
        }
    }
  }
out:
  free(fwd);
  free(bwd);
  free(stack);
  return found;
}

static bool expand(kg_module *m, int gi, kc_diag *d) {
  const kg_node *G = &m->nodes[gi];
  int n_ys = (int)kg_attr_int(G, "ys", 1);
  bool with_grad_ys = kg_attr_bool(G, "grad_ys", false);
  int n_xs = G->n_in - n_ys - (with_grad_ys ? n_ys : 0);
  kg_ref ys[64], xs[256], gys[64];
  memcpy(ys, G->in, sizeof(kg_ref) * (size_t)n_ys);
  memcpy(xs, G->in + n_ys, sizeof(kg_ref) * (size_t)n_xs);
  if (with_grad_ys) memcpy(gys, G->in + n_ys + n_xs, sizeof(kg_ref) * (size_t)n_ys);
  const char *gname = G->name;
  kc_loc gloc = G->loc;

  adctx a = {{m, d, gname, gloc, false}, m->n_nodes, NULL, NULL, NULL};
  a.base = malloc(sizeof(int) * ((size_t)a.n + 1));
  a.on_path = calloc((size_t)a.n + 1, 1);
  int *order = malloc(sizeof(int) * ((size_t)a.n + 1));
  int slots = 0;
  for (int v = 0; v < a.n; v++) a.base[v] = slots, slots += m->nodes[v].n_out;
  a.acc = malloc(sizeof(kg_ref) * ((size_t)slots + 1));
  bool ok = a.base && a.on_path && order && a.acc;
  for (int s = 0; ok && s < slots; s++) a.acc[s] = KG_NOREF;
  if (ok) mark_path(&a, xs, n_xs, ys, n_ys);

  /* seeds: d(y)/d(y) = 1 for scalar ys, else the given initial gradients */
  for (int i = 0; ok && i < n_ys; i++) {
    const kg_type *t = kg_ref_type(m, ys[i]);
    if (with_grad_ys) {
      accumulate(&a, ys[i], gys[i]);
    } else if (t->shape.rank != 0) {
      char buf[128];
      ok = kc_error(d, gloc, "gradients of '%s', which is %s, not a scalar: give initial gradients (grad_ys=true and one more operand per y)",
                    m->nodes[ys[i].node].name, kg_type_str(t, buf, sizeof buf));
    } else {
      accumulate(&a, ys[i], kb_scalar(&a.g, t->dtype, 1.0));
    }
  }
  int n_order = ok ? topo(&a, ys, n_ys, order) : 0;
  for (int i = n_order; ok && i-- > 0 && !a.g.failed;) {
    int v = order[i];
    const kg_node *n = &m->nodes[v];
    if (!n->n_in) continue;
    kg_ref dy[256], dx[256];
    bool any = false;
    for (int k = 0; k < n->n_out && k < 256; k++) any |= (dy[k] = a.acc[a.base[v] + k]).node >= 0;
    if (!any) continue;
    bool wants = false; /* does any float operand on the path need a gradient? */
    for (int k = 0; k < n->n_in; k++) wants |= a.on_path[n->in[k].node] && is_float_ref(m, n->in[k]);
    if (!wants) continue;
    if (kc_ops[n->op].grad == kc_grad_none) {
      ok = kc_error(d, n->loc, "cannot differentiate through '%s': op '%s' has no gradient (on the path from the xs of '%s' to its ys)",
                    n->name, kc_ops[n->op].name, gname);
      break;
    }
    for (int k = 0; k < n->n_in; k++) dx[k] = KG_NOREF;
    a.g.prefix = kc_sprintf(m->arena, "%s/%s", gname, n->name);
    a.g.loc = n->loc;
    if (!kc_ops[n->op].grad(&a.g, v, dy, dx) || a.g.failed) {
      ok = false;
      break;
    }
    n = &m->nodes[v];
    for (int k = 0; k < n->n_in; k++)
      if (dx[k].node >= 0 && a.on_path[n->in[k].node] && is_float_ref(m, n->in[k])) accumulate(&a, n->in[k], dx[k]);
  }
  a.g.prefix = gname;
  a.g.loc = gloc;
  ok = ok && !a.g.failed;
  kg_ref results[256];
  for (int k = 0; ok && k < n_xs; k++) {
    kg_ref r = a.acc[a.base[xs[k].node] + xs[k].index];
    const kg_node *x = &m->nodes[xs[k].node];
    if (r.node < 0) {
      int blocker = blocking_node(&a, xs[k], ys, n_ys);
      if (blocker >= 0) {
        ok = kc_error(d, gloc, "'%s' cannot differentiate with respect to '%s': its paths to the ys pass through '%s' (%s), whose result (%s) carries no gradient",
                      gname, x->name, m->nodes[blocker].name, kc_ops[m->nodes[blocker].op].name,
                      kg_dtype_name(m->nodes[blocker].n_out ? m->nodes[blocker].out[0].dtype : KILN_BOOL));
        break;
      }
      if (x->op != KC_OP_VARIABLE) {
        ok = kc_error(d, gloc, "'%s' asks for the gradient with respect to '%s', which does not reach its ys", gname,
                      x->name);
        break;
      }
      r = kb_zeros(&a.g, kg_ref_type(m, xs[k])); /* a variable the loss does not use: zero gradient */
    }
    results[k] = r;
  }
  if (ok && !a.g.failed) {
    for (int k = 0; k < n_xs; k++) {
      kc_module_redirect(m, (kg_ref){gi, k}, results[k]);
    }
    /* `after [g]` means after every gradient: a no_op standing for them */
    kg_node done = {0};
    done.name = kc_sprintf(m->arena, "%s/done", gname);
    done.op = KC_OP_NO_OP;
    done.loc = gloc;
    done.n_ctrl = n_xs;
    done.ctrl = kc_alloc(m->arena, sizeof(int) * (size_t)n_xs);
    for (int k = 0; k < n_xs; k++) done.ctrl[k] = results[k].node;
    done.in = kc_alloc(m->arena, sizeof(kg_ref));
    int di = kc_module_add_node(m, &done);
    kc_module_redirect_ctrl(m, gi, di);
    m->nodes[gi].dead = true;
  }
  free(a.base);
  free(a.on_path);
  free(a.acc);
  free(order);
  return ok && !a.g.failed;
}

bool kc_pass_autodiff(kg_module *m, kc_diag *d) {
  int n = m->n_nodes;
  bool any = false;
  for (int v = 0; v < n; v++)
    if (!m->nodes[v].dead && m->nodes[v].op == KC_OP_GRADIENTS) {
      int first = m->n_nodes;
      const char *dev = m->nodes[v].device;
      if (!expand(m, v, d)) return false;
      /* TF places gradient ops under the device scope gradients() was
       * called in: the nodes built here take the gradients node's device */
      for (int w = first; dev && w < m->n_nodes; w++)
        if (!m->nodes[w].device) m->nodes[w].device = dev;
      any = true;
    }
  /* a gradients node may have been fed to another: those refs moved, so
   * a later expansion sees plain nodes */
  if (any) kc_module_compact(m);
  return true;
}
