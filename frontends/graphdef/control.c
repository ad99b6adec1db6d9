/* control.c — TensorFlow 1.x while loops, unrolled at import time.
 *
 * A while loop is a frame: Enter (frame_name) -> Merge(Enter, NextIteration)
 * -> Switch(Merge, LoopCond) -> output 1 into the body, output 0 into Exit;
 * the body ends in NextIteration, whose value the Merge takes next time.
 * kiln has no loop construct, so the loop is unrolled while importing: its
 * nodes are converted once per iteration in a scope of their own (gd.h),
 * with the Merges holding the Enter values first, then the previous
 * iteration's NextIteration values.  The LoopCond must fold to a constant
 * (passes/fold.c runs after each node); when it is false the Exits take the
 * Merge values.  Nodes outside the loop keep their single conversion.
 *
 * Which frame a node is in is found once, before converting (gd_ctl_analyze):
 * an Enter is in its frame_name's frame, an Exit in the frame around its
 * input's, a Merge where its Enter input is, any other node in the innermost
 * frame among its inputs (data and control).  Loops may nest.
 *
 * A Switch whose predicate is not a LoopCond, and a Merge without a
 * NextIteration, belong to a tf.cond: cond.c converts them.  A loop inside
 * a conditional's branch is dead when a value entering it is (the branch
 * is not taken), and carries the branch's guard to its Exits. */
#include "frontends/graphdef/gd.h"
#include <stdlib.h>
#include <string.h>

/* The iterations kiln unrolls when --max-loop-iterations does not say. */
#define GD_MAX_ITERATIONS 10000

typedef struct frame {
  const char *name;     /* frame_name ("" for the root) */
  int parent, depth;
  bool bad;             /* its Enters take values from different frames */
  bool running;         /* being unrolled (a second run is a cycle) */
  int n_members;        /* its nodes (slots of a scope's val) */
  int n_merges, n_exits, n_conds;
  int *merges, *exits, *conds;
} frame;

struct gd_frames {
  int n, cap;
  frame *f;             /* f[0]: the root */
  int *of;              /* node -> frame; -1: it mixes frames that do not nest */
  int *slot;            /* node -> its index among its frame's nodes */
};

static const char *op_of(gd_ctx *c, int k) { return c->gdef->node[k]->op ? c->gdef->node[k]->op : ""; }

static bool is_op(gd_ctx *c, int k, const char *op) { return k >= 0 && !strcmp(op_of(c, k), op); }

/* Data input i of node k (control inputs skipped); false when absent. */
static bool data_input(gd_ctx *c, int k, int i, int *src, int *idx) {
  const Tensorflow__NodeDef *p = c->gdef->node[k];
  for (size_t j = 0; j < p->n_input; j++) {
    bool ctrl;
    if (!gd_parse_input(c, p->input[j] ? p->input[j] : "", src, idx, &ctrl) || ctrl) continue;
    if (i-- == 0) return *src >= 0;
  }
  return false;
}

/* A Merge input from a NextIteration: the loop's back edge. */
static bool back_edge(gd_ctx *c, int k, int src) { return is_op(c, k, "Merge") && is_op(c, src, "NextIteration"); }

static bool has_back_edge(gd_ctx *c, int k) {
  int src, idx;
  for (int i = 0; data_input(c, k, i, &src, &idx); i++)
    if (back_edge(c, k, src)) return true;
  return false;
}

static const char *frame_name(gd_ctx *c, int f) { return f >= 0 && c->frames ? c->frames->f[f].name : "?"; }

/* ---- finding the frames ---- */

/* The innermost of frames a and b when one holds the other; else -1. */
static int join(struct gd_frames *F, int a, int b) {
  if (a < 0 || b < 0) return -1;
  int x = F->f[a].depth >= F->f[b].depth ? a : b, y = x == a ? b : a, in = x;
  while (F->f[x].depth > F->f[y].depth) x = F->f[x].parent;
  return x == y ? in : -1;
}

static int add_frame(gd_ctx *c, const char *name, int parent) {
  struct gd_frames *F = c->frames;
  for (int f = 1; f < F->n; f++)
    if (!strcmp(F->f[f].name, name)) {
      if (F->f[f].parent != parent) F->f[f].bad = true;
      return f;
    }
  if (F->n == F->cap) {
    frame *g = kc_alloc(c->m->arena, sizeof(frame) * (size_t)(F->cap *= 2));
    memcpy(g, F->f, sizeof(frame) * (size_t)F->n);
    F->f = g;
  }
  F->f[F->n] = (frame){.name = name, .parent = parent, .depth = F->f[parent].depth + 1};
  return F->n++;
}

/* Node k's frame from its inputs' (those with mark 2; the others are on a
 * cycle, which the walk reports). */
static int frame_of(gd_ctx *c, int k, const unsigned char *mark) {
  struct gd_frames *F = c->frames;
  int src, idx;
  if (is_op(c, k, "Enter")) {
    int parent = data_input(c, k, 0, &src, &idx) && mark[src] == 2 ? F->of[src] : 0;
    gd_node n = {.p = c->gdef->node[k]};
    return parent < 0 ? -1 : add_frame(c, gd_attr_string(c, &n, "frame_name", ""), parent);
  }
  if (is_op(c, k, "Exit")) {
    int in = data_input(c, k, 0, &src, &idx) && mark[src] == 2 ? F->of[src] : 0;
    return in > 0 ? F->f[in].parent : in;
  }
  int f = 0;
  const Tensorflow__NodeDef *p = c->gdef->node[k];
  for (size_t i = 0; i < p->n_input; i++) {
    bool ctrl;
    if (gd_parse_input(c, p->input[i] ? p->input[i] : "", &src, &idx, &ctrl) && src >= 0 && mark[src] == 2 &&
        !back_edge(c, k, src))
      f = join(F, f, F->of[src]);
  }
  return f;
}

static int *list_of(gd_ctx *c, int n) { return kc_alloc(c->m->arena, sizeof(int) * (size_t)(n ? n : 1)); }

bool gd_ctl_analyze(gd_ctx *c) {
  size_t nn = c->gdef->n_node;
  bool any = false;
  for (size_t k = 0; k < nn; k++) any |= is_op(c, (int)k, "Enter");
  if (!any) return true;
  struct gd_frames *F = c->frames = kc_alloc(c->m->arena, sizeof *F);
  F->cap = 8;
  F->f = kc_alloc(c->m->arena, sizeof(frame) * (size_t)F->cap);
  F->f[0] = (frame){.name = ""};
  F->n = 1;
  F->of = list_of(c, (int)nn);
  F->slot = list_of(c, (int)nn);
  /* depth first over the inputs (not the back edges), without recursion */
  unsigned char *mark = calloc(nn + 1, 1); /* 1 on the stack, 2 done */
  int *stack = malloc(sizeof(int) * (nn + 1));
  size_t *next = malloc(sizeof(size_t) * (nn + 1));
  if (!mark || !stack || !next) {
    free(mark), free(stack), free(next);
    return kc_error(c->d, (kc_loc){c->path, 0, 0}, "out of memory");
  }
  for (size_t k0 = 0; k0 < nn; k0++) {
    if (mark[k0]) continue;
    size_t sp = 0;
    stack[sp] = (int)k0, next[sp++] = 0, mark[k0] = 1;
    while (sp) {
      int k = stack[sp - 1];
      const Tensorflow__NodeDef *p = c->gdef->node[k];
      bool pushed = false;
      while (!pushed && next[sp - 1] < p->n_input) {
        int src, idx;
        bool ctrl;
        const char *in = p->input[next[sp - 1]++];
        if (!gd_parse_input(c, in ? in : "", &src, &idx, &ctrl) || src < 0 || mark[src] || back_edge(c, k, src))
          continue;
        stack[sp] = src, next[sp++] = 0, mark[src] = 1;
        pushed = true;
      }
      if (pushed) continue;
      F->of[k] = frame_of(c, k, mark);
      mark[k] = 2;
      sp--;
    }
  }
  free(stack);
  free(next);
  free(mark);
  /* each frame's nodes, Merges (with a back edge), Exits and LoopConds */
  for (size_t k = 0; k < nn; k++) {
    int f = F->of[k], src, idx;
    if (f > 0) F->slot[k] = F->f[f].n_members++;
    if (f > 0 && is_op(c, (int)k, "Merge") && has_back_edge(c, (int)k)) F->f[f].n_merges++;
    if (f > 0 && is_op(c, (int)k, "LoopCond")) F->f[f].n_conds++;
    if (is_op(c, (int)k, "Exit") && data_input(c, (int)k, 0, &src, &idx) && F->of[src] > 0) F->f[F->of[src]].n_exits++;
  }
  for (int f = 1; f < F->n; f++) {
    frame *fr = &F->f[f];
    fr->merges = list_of(c, fr->n_merges), fr->exits = list_of(c, fr->n_exits), fr->conds = list_of(c, fr->n_conds);
    fr->n_merges = fr->n_exits = fr->n_conds = 0;
  }
  for (size_t k = 0; k < nn; k++) {
    int f = F->of[k], src, idx;
    frame *fr = &F->f[f > 0 ? f : 0];
    if (f > 0 && is_op(c, (int)k, "Merge") && has_back_edge(c, (int)k)) fr->merges[fr->n_merges++] = (int)k;
    if (f > 0 && is_op(c, (int)k, "LoopCond")) fr->conds[fr->n_conds++] = (int)k;
    if (is_op(c, (int)k, "Exit") && data_input(c, (int)k, 0, &src, &idx) && F->of[src] > 0) {
      frame *in = &F->f[F->of[src]];
      in->exits[in->n_exits++] = (int)k;
    }
  }
  return true;
}

/* ---- scopes ---- */

gd_scope *gd_ctl_scope(gd_ctx *c, gd_scope *s, int k) {
  if (!c->frames) return s;
  int f = c->frames->of[k];
  for (gd_scope *t = f >= 0 ? s : NULL; t; t = t->parent)
    if (t->frame == f) return t;
  return NULL;
}

bool gd_ctl_bad_input(gd_ctx *c, int k, int src) {
  kc_loc at = {c->path, 0, 0};
  int f = c->frames ? c->frames->of[src] : 0;
  if (f < 0)
    return kc_error(c->d, at, "%s takes values from different while loops (neither inside the other)",
                    gd_node_label(c, src));
  if (k < 0)
    return kc_error(c->d, at, "%s is inside the while loop '%s': its values leave the loop only through an Exit",
                    gd_node_label(c, src), frame_name(c, f));
  return kc_error(c->d, at, "%s: its input %s is inside the while loop '%s', whose values leave it only through an "
                            "Exit", gd_node_label(c, k), gd_node_label(c, src), frame_name(c, f));
}

bool gd_ctl_opaque(gd_ctx *c, int k) { return is_op(c, k, "Exit") || (is_op(c, k, "Merge") && has_back_edge(c, k)); }

const char *gd_ctl_name(gd_ctx *c, const gd_scope *s, const char *name) {
  if (!s->parent) return name;
  const char *iters = kc_sprintf(c->m->arena, "%d", s->iter);
  for (const gd_scope *t = s->parent; t->parent; t = t->parent) iters = kc_sprintf(c->m->arena, "%d_%s", t->iter, iters);
  return kc_sprintf(c->m->arena, "%s/iter%s", name, iters);
}

/* ---- unrolling ---- */

/* Output idx of node k, converted in its scope as seen from s, and its
 * guard (cond.c); user >= 0: the node needing it, for which a dead value
 * is an error; user < 0: a dead value is returned (gd_is_dead). */
static bool value(gd_ctx *c, gd_scope *s, int user, int k, int idx, kg_ref *r, const gd_guard **g) {
  gd_scope *o = gd_ctl_scope(c, s, k);
  if (!o) return gd_ctl_bad_input(c, -1, k);
  if (!gd_walk(c, o, k)) return false;
  const gd_val *v = gd_val_of(o, k);
  *r = gd_val_out(v, idx);
  if (r->node == KG_NOREF.node)
    return kc_error(c->d, (kc_loc){c->path, 0, 0}, "%s has no output %d", gd_node_label(c, k), idx);
  if (gd_is_dead(*r) && user >= 0) return gd_cond_dead_use(c, user, NULL, *r);
  if (g) *g = gd_val_guard(v, idx);
  return true;
}

/* Gives node k in scope s one output r with guard g (dead: r dead). */
static void set_value(gd_ctx *c, gd_scope *s, int k, kg_ref r, const gd_guard *g) {
  gd_val *v = gd_val_of(s, k);
  gd_node n = {.n_out = 1, .out = kc_alloc(c->m->arena, sizeof(kg_ref)), .guard = g};
  n.out[0] = r;
  gd_cond_record(c, &n, v);
  if (!v->state) v->state = 2;
}

static long max_iterations(gd_ctx *c) {
  return c->opts && c->opts->max_loop_iterations > 0 ? c->opts->max_loop_iterations : GD_MAX_ITERATIONS;
}

/* The two inputs of a loop's Merge: the entering value and the NextIteration. */
static bool merge_inputs(gd_ctx *c, int m, int *enter, int *enter_idx, int *next) {
  int a, ai, b, bi, extra, ei;
  gd_node n = {.p = c->gdef->node[m], .k = m, .label = gd_node_label(c, m)};
  if (!data_input(c, m, 0, &a, &ai) || !data_input(c, m, 1, &b, &bi) || data_input(c, m, 2, &extra, &ei))
    return gd_fail(c, &n, "a while loop's Merge takes two inputs: its Enter and its NextIteration");
  if (back_edge(c, m, a)) {
    int t = a;
    a = b, ai = bi, b = t;
  }
  if (back_edge(c, m, a)) return gd_fail(c, &n, "both inputs are NextIteration nodes: no value enters the loop");
  *enter = a, *enter_idx = ai, *next = b;
  return true;
}

/* Unrolls loop f inside scope s: converts its body while its LoopCond folds
 * to true, then gives every Exit of f (in s) the Merge values. */
static bool run_loop(gd_ctx *c, gd_scope *s, int f, gd_node *exit) {
  struct gd_frames *F = c->frames;
  frame *fr = &F->f[f];
  if (fr->bad)
    return gd_fail(c, exit, "the Enter nodes of the while loop '%s' take values from different frames", fr->name);
  if (fr->n_conds != 1)
    return gd_fail(c, exit, "the while loop '%s' has %d LoopCond nodes; kiln converts loops with exactly one",
                   fr->name, fr->n_conds);
  if (fr->running) return gd_fail(c, exit, "the while loop '%s' depends on its own result (a cycle)", fr->name);
  int cond = fr->conds[0];
  gd_node cn = {.p = c->gdef->node[cond], .k = cond, .label = gd_node_label(c, cond)};
  gd_scope in = {.parent = s, .frame = f, .slot = F->slot};
  in.val = kc_alloc(c->m->arena, sizeof(gd_val) * (size_t)(fr->n_members + 1));
  kg_ref *cur = kc_alloc(c->m->arena, sizeof(kg_ref) * (size_t)(fr->n_merges + 1));
  kg_ref *next = kc_alloc(c->m->arena, sizeof(kg_ref) * (size_t)(fr->n_merges + 1));
  int *nexts = kc_alloc(c->m->arena, sizeof(int) * (size_t)(fr->n_merges + 1));
  fr->running = true;
  bool ok = true, own = false; /* own: the message is about the loop itself */
  kg_ref dead = KG_NOREF;
  const gd_guard *guard = NULL, *g = NULL; /* the entering values', together */
  for (int i = 0; ok && i < fr->n_merges; i++) {
    int e = -1, ei = 0;
    ok = merge_inputs(c, fr->merges[i], &e, &ei, &nexts[i]) && value(c, &in, -1, e, ei, &cur[i], &g);
    if (ok && gd_is_dead(cur[i])) dead = cur[i];
    else if (ok) ok = gd_guard_join(c, fr->merges[i], guard, g, &guard);
  }
  if (ok && gd_is_dead(dead)) { /* inside a conditional's branch not taken */
    for (int i = 0; i < fr->n_exits; i++) set_value(c, s, fr->exits[i], dead, NULL);
    fr->running = false;
    return true;
  }
  long max = max_iterations(c);
  for (in.iter = 0; ok;) {
    if (in.iter) memset(in.val, 0, sizeof(gd_val) * (size_t)fr->n_members);
    for (int i = 0; i < fr->n_merges; i++) {
      gd_val *v = gd_val_of(&in, fr->merges[i]);
      gd_node n = {.n_out = 2, .out = kc_alloc(c->m->arena, sizeof(kg_ref) * 2), .guard = guard};
      n.out[0] = cur[i], n.out[1] = KG_NOREF; /* value_index: not converted */
      gd_cond_record(c, &n, v);
      v->state = 2;
    }
    kg_ref r;
    if (!(ok = value(c, &in, cond, cond, 0, &r, NULL))) break;
    const kg_tensor *t = gd_is_list(r) ? NULL : gd_const(c, r);
    if (!t || kg_shape_numel(&t->type.shape) != 1) {
      gd_fail(c, &cn, "the while loop '%s' has a trip count that depends on run-time data; kiln unrolls only loops "
                      "whose condition folds to a constant", fr->name);
      ok = false, own = true;
      break;
    }
    if (!kg_tensor_get_i(t, 0)) break;
    if (in.iter >= max) {
      gd_fail(c, &cn, "the while loop '%s' runs more than %ld iterations, kiln's limit for unrolling it (raise it "
                      "with --max-loop-iterations)", fr->name, max);
      ok = false, own = true;
      break;
    }
    for (int i = 0; ok && i < fr->n_merges; i++) ok = value(c, &in, nexts[i], nexts[i], 0, &next[i], NULL);
    if (!ok) break;
    kg_ref *t2 = cur;
    cur = next, next = t2;
    in.iter++;
  }
  if (!ok && !own)
    kc_note(c->d, (kc_loc){c->path, 0, 0}, "while unrolling iteration %d of the while loop '%s'", in.iter, fr->name);
  for (int i = 0; ok && i < fr->n_exits; i++) {
    int x = fr->exits[i], src, idx;
    kg_ref r;
    data_input(c, x, 0, &src, &idx);
    if (!(ok = value(c, &in, x, src, idx, &r, NULL))) break;
    set_value(c, s, x, r, guard);
  }
  fr->running = false;
  return ok;
}

bool gd_ctl_exit(gd_ctx *c, gd_scope *s, int k) {
  gd_node n = {.p = c->gdef->node[k], .k = k, .label = gd_node_label(c, k)};
  int src, idx;
  if (!data_input(c, k, 0, &src, &idx)) return gd_fail(c, &n, "has no input; an Exit takes one");
  int f = c->frames ? c->frames->of[src] : 0;
  if (f <= 0)
    return gd_fail(c, &n, "is not the end of a while loop: its input %s is not inside one (an Exit takes a Switch of "
                          "a loop that starts with Enter)", gd_node_label(c, src));
  if (c->frames->f[f].parent != s->frame) return gd_ctl_bad_input(c, k, src);
  return gd_val_of(s, k)->out || run_loop(c, s, f, &n);
}

/* ---- the converters: values pass through ---- */

static bool pass(gd_ctx *c, gd_node *n, int count) {
  gd_outputs(c, n, count);
  for (int i = 0; i < count; i++) n->out[i] = n->in[0];
  return true;
}

static bool cv_enter(gd_ctx *c, gd_node *n) {
  int f = c->frames ? c->frames->of[n->k] : -1;
  if (!gd_inputs(c, n, 1, false)) return false;
  if (f <= 0 || c->frames->f[f].bad)
    return gd_fail(c, n, "the Enter nodes of the while loop '%s' take values from different frames", frame_name(c, f));
  return pass(c, n, 1);
}

static bool cv_next_iteration(gd_ctx *c, gd_node *n) { return gd_inputs(c, n, 1, false) && pass(c, n, 1); }

static bool cv_loop_cond(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 1, false)) return false;
  if (!c->scope->parent) return gd_fail(c, n, "is not inside a while loop (no Enter leads to it)");
  return pass(c, n, 1);
}

/* Inside a loop both outputs carry the value: the body (output 1) is only
 * converted while the condition holds, the Exits (output 0) after.  A
 * Switch of another predicate is a tf.cond's (cond.c). */
static bool cv_switch(gd_ctx *c, gd_node *n) {
  int src, idx;
  if (!gd_inputs(c, n, 2, false)) return false;
  if (!data_input(c, n->k, 1, &src, &idx) || !is_op(c, src, "LoopCond")) return gd_cond_switch(c, n);
  return pass(c, n, 2);
}

/* A loop's Merge gets its values from run_loop (reaching this one, it has
 * no Enter); a Merge without a NextIteration is a tf.cond's (cond.c). */
static bool cv_merge(gd_ctx *c, gd_node *n) {
  if (!has_back_edge(c, n->k)) return gd_cond_merge(c, n);
  return gd_fail(c, n, "merges a NextIteration, but no Enter leads to it: not a while loop kiln understands (a "
                       "loop's Merge takes its Enter and its NextIteration)");
}

const gd_op gd_ops_control[] = {
    {"Enter", cv_enter},
    {"RefEnter", cv_enter},
    {"Merge", cv_merge},
    {"Switch", cv_switch},
    {"LoopCond", cv_loop_cond},
    {"NextIteration", cv_next_iteration},
    {NULL, NULL},
};
