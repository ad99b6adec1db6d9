/* cond.c — TensorFlow 1.x conditionals: tf.cond (and tf.case and
 * smart_cond, which lower to the same ops) in a frozen graph.
 *
 * tf.cond(pred, true_fn, false_fn) is a Switch(x, pred) for every value
 * entering the branches (output 0 the false branch's view of x, output 1
 * the true branch's), the two branch bodies, and Merge(false, true): output
 * 0 is the value of the branch that ran, output 1 (value_index) the index of
 * the input it came from.
 *
 * - A predicate that folds to a constant (passes/fold.c runs after every
 *   node) takes one side: the other output of the Switch is dead, and so is
 *   every node taking a dead value (data or control input); import.c never
 *   converts a dead node, so the untaken branch may hold ops kiln lacks.  A
 *   Merge takes its one live input; value_index is that input's index.
 * - A predicate known only at run time converts both branches.  Each value
 *   carries a guard (gd.h): the run-time predicates, and their sides, under
 *   which it exists; a Switch adds (pred, false) to output 0 and (pred, true)
 *   to output 1, any other node takes its inputs' guards together.  A Merge
 *   of two live inputs finds the one predicate whose sides tell them apart,
 *   and becomes select(pred, true input, false input) (kc_fe_select, as
 *   ONNX's If); value_index is 1 or 0 from pred.  Both branches run, so ops
 *   with side effects in them would all happen: frozen inference graphs
 *   have none.
 *
 * Deadness and guards flow through while loops too (control.c): a loop
 * whose entering values are dead is dead, and a loop inside a run-time
 * branch carries the branch's guard to its Exits. */
#include "frontends/common/frontend.h"
#include "frontends/graphdef/gd.h"
#include <string.h>

/* ---- values and guards ---- */

kg_ref gd_val_out(const gd_val *v, int idx) {
  if (v->dead) return gd_dead(v->dead - 1);
  return idx >= 0 && idx < v->n_out ? v->out[idx] : KG_NOREF;
}

/* (A node of no output, NoOp, keeps its guard in slot 0 for control edges.) */
const gd_guard *gd_val_guard(const gd_val *v, int idx) {
  return v->guard && idx >= 0 && idx < (v->n_out ? v->n_out : 1) ? v->guard[idx] : NULL;
}

static bool same_ref(kg_ref a, kg_ref b) { return a.node == b.node && a.index == b.index; }

/* g's condition on predicate p, or NULL. */
static const gd_guard *on_pred(const gd_guard *g, kg_ref p) {
  for (; g; g = g->next)
    if (same_ref(g->pred, p)) return g;
  return NULL;
}

bool gd_guard_join(gd_ctx *c, int k, const gd_guard *a, const gd_guard *b, const gd_guard **out) {
  const gd_guard *r = a;
  for (const gd_guard *x = b; x && x != a; x = x->next) {
    const gd_guard *y = on_pred(r, x->pred);
    if (y && y->side == x->side) continue;
    if (y)
      return kc_error(c->d, (kc_loc){c->path, 0, 0}, "%s takes values from both sides of a conditional (output %d of %s "
                      "and output %d of %s, whose predicate is the same): it could never run", gd_node_label(c, k),
                      y->side, gd_node_label(c, y->sw), x->side, gd_node_label(c, x->sw));
    gd_guard *g = kc_alloc(c->m->arena, sizeof *g);
    *g = *x;
    g->next = r;
    r = g;
  }
  *out = r;
  return true;
}

void gd_cond_record(gd_ctx *c, const gd_node *n, gd_val *v) {
  v->n_out = n->n_out;
  v->out = n->out;
  v->guard = NULL;
  if (!n->out_guard && !n->guard) return;
  v->guard = kc_alloc(c->m->arena, sizeof(gd_guard *) * (size_t)(n->n_out + 1));
  for (int i = 0; i < (n->n_out ? n->n_out : 1); i++) v->guard[i] = n->out_guard ? n->out_guard[i] : n->guard;
}

bool gd_cond_dead_use(gd_ctx *c, int k, const char *what, kg_ref r) {
  int sw = r.index;
  const char *why = kc_sprintf(c->m->arena, "it depends on the side of %s that is not taken (its predicate is a "
                               "constant), so it is never computed", gd_node_label(c, sw));
  kc_loc at = {c->path, 0, 0};
  if (k < 0) return kc_error(c->d, at, "fetch '%s' is dead: %s", what, why);
  return kc_error(c->d, at, "%s needs a dead value: %s", gd_node_label(c, k), why);
}

/* ---- Switch ---- */

/* The predicate as the guards name it: identities of it are the same value. */
static kg_ref pred_root(gd_ctx *c, kg_ref r) {
  while (r.node >= 0 && c->m->nodes[r.node].op == KC_OP_IDENTITY && c->m->nodes[r.node].n_in == 1)
    r = c->m->nodes[r.node].in[0];
  return r;
}

bool gd_cond_switch(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 2, false)) return false;
  kg_ref x = n->in[0], p = n->in[1];
  if (gd_is_list(p)) return gd_fail(c, n, "its predicate (input 1) is a TensorList");
  const kg_type *pt = gd_type(c, p);
  if (kg_shape_numel(&pt->shape) != 1)
    return gd_fail(c, n, "its predicate (input 1) has %lld elements; a Switch takes a scalar bool",
                   (long long)kg_shape_numel(&pt->shape));
  gd_outputs(c, n, 2);
  const kg_tensor *t = gd_const(c, p);
  if (t) { /* one side is taken: the other is dead */
    bool side = kg_tensor_get_i(t, 0) != 0;
    n->out[side] = x, n->out[!side] = gd_dead(n->k);
    return true;
  }
  if (pt->dtype != KILN_BOOL)
    return gd_fail(c, n, "its predicate (input 1) is %s; a Switch takes a scalar bool", kg_dtype_name(pt->dtype));
  p = pred_root(c, p);
  const gd_guard *in = on_pred(n->guard, p);
  n->out_guard = kc_alloc(c->m->arena, sizeof(gd_guard *) * 2);
  for (int side = 0; side < 2; side++) {
    if (in) { /* already inside one side of this predicate: the other never runs */
      n->out[side] = in->side == side ? x : gd_dead(n->k);
      n->out_guard[side] = n->guard;
      continue;
    }
    gd_guard *g = kc_alloc(c->m->arena, sizeof *g);
    *g = (gd_guard){.pred = p, .side = side, .sw = n->k, .next = n->guard};
    n->out[side] = x;
    n->out_guard[side] = g;
  }
  return true;
}

/* ---- Merge ---- */

/* Data input i's spelling ("name:k"). */
static const char *input_name(const gd_node *n, int i) {
  for (size_t j = 0; j < n->p->n_input; j++) {
    const char *s = n->p->input[j] ? n->p->input[j] : "";
    if (*s != '^' && i-- == 0) return s;
  }
  return "?";
}

/* The conditions of a that b lacks: how many, and the first. */
static int only_in(const gd_guard *a, const gd_guard *b, const gd_guard **first) {
  int count = 0;
  *first = NULL;
  for (; a; a = a->next) {
    const gd_guard *y = on_pred(b, a->pred);
    if (y && y->side == a->side) continue;
    if (!count++) *first = a;
  }
  return count;
}

/* "output 1 of node 'cond/Switch' (Switch)" and the like, for messages. */
static const char *origin(gd_ctx *c, int count, const gd_guard *g) {
  if (!count) return "no Switch of a run-time predicate";
  return kc_sprintf(c->m->arena, "output %d of %s%s", g->side, gd_node_label(c, g->sw),
                    count > 1 ? " and other Switches" : "");
}

/* a without condition x (a new list; the others are shared where they can be). */
static const gd_guard *without(gd_ctx *c, const gd_guard *a, const gd_guard *x) {
  if (!a) return NULL;
  if (a == x) return a->next;
  gd_guard *g = kc_alloc(c->m->arena, sizeof *g);
  *g = *a;
  g->next = without(c, a->next, x);
  return g;
}

/* Both inputs a and b exist at run time: select between them by the
 * predicate that tells them apart. */
static bool merge_runtime(gd_ctx *c, gd_node *n, int a, int b) {
  const gd_guard *da, *db, *ga = n->in_guard[a], *gb = n->in_guard[b];
  int ca = only_in(ga, gb, &da), cb = only_in(gb, ga, &db);
  if (ca != 1 || cb != 1 || !same_ref(da->pred, db->pred))
    return gd_fail(c, n, "cannot tell which input is which branch: a tf.cond's Merge takes the results of its two "
                         "branches, each from one side of Switch nodes of the same predicate, but input %d ('%s') comes "
                         "from %s and input %d ('%s') from %s", a, input_name(n, a), origin(c, ca, da), b,
                   input_name(n, b), origin(c, cb, db));
  int t = da->side ? a : b, f = da->side ? b : a;
  if (gd_is_list(n->in[a]) || gd_is_list(n->in[b]))
    return gd_fail(c, n, "its inputs are TensorLists, which kiln keeps only while importing: it cannot select between "
                         "them by a predicate known only at run time");
  const kg_type *tt = gd_type(c, n->in[t]), *ft = gd_type(c, n->in[f]);
  if (!kg_type_eq(tt, ft))
    return gd_fail(c, n, "the predicate is known only at run time, so both branches are computed and the result "
                         "selected, which needs one type, but the true branch (input %d, '%s') gives %s and the false "
                         "branch (input %d, '%s') %s", t, input_name(n, t), kg_type_str(tt, (char[64]){0}, 64), f,
                   input_name(n, f), kg_type_str(ft, (char[64]){0}, 64));
  kg_ref p = da->pred;
  n->out[0] = kc_fe_select(&c->g, p, n->in[t], n->in[f]);
  if (gd_type(c, p)->shape.rank) p = gd_reshape(c, p, &(kg_shape){0});
  n->out[1] = gd_expr(c, t == 1 ? "select(x0, 1, 0)" : "select(x0, 0, 1)", &p, 1, KILN_I32);
  n->guard = without(c, ga, da);
  return !c->g.failed;
}

bool gd_cond_merge(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 1, true)) return false;
  int live[2] = {-1, -1}, n_live = 0;
  for (int i = 0; i < n->n_in; i++)
    if (!gd_is_dead(n->in[i]) && n_live++ < 2) live[n_live - 1] = i;
  gd_outputs(c, n, 2);
  n->guard = NULL;
  if (!n_live) { /* every input is dead: so is the Merge */
    n->out[0] = n->out[1] = n->in[0];
    return true;
  }
  if (n_live > 2)
    return gd_fail(c, n, "%d of its inputs exist at run time; kiln converts the Merge of a tf.cond, whose inputs are "
                         "its two branches' results", n_live);
  if (n_live == 2) return merge_runtime(c, n, live[0], live[1]);
  int i = live[0];
  n->out[0] = n->in[i];
  n->out[1] = gd_const_from(c, KILN_I32, &(kg_shape){0}, (double[]){i});
  n->guard = n->in_guard[i];
  return !c->g.failed;
}
