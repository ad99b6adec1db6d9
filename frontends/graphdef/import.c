/* import.c — the TensorFlow frontend's driver: decode the GraphDef (binary
 * through protobuf-c with the project's proto/graph.proto, or the TF.js
 * model.json through json.c), then convert the nodes the fetches need, in
 * dependency order, each by its converter from the op tables, folding what
 * is constant.
 *
 * Inputs are spelled as TensorFlow spells them: "node" is output 0,
 * "node:k" output k, "^node" a control input (the node runs first; kiln's
 * imported ops are pure, so it only has to exist and be computable).  The
 * kiln node computing output 0 of a TensorFlow node carries the node's name
 * (other outputs "name:k", written name_k); `device` fields become device
 * annotations ("/device:GPU:1" -> gpu:1).
 *
 * What each node converted to is recorded in a scope (gd.h): the root for
 * the graph, one per iteration for the nodes inside a TensorFlow 1.x while
 * loop, which control.c unrolls by walking the loop's nodes again in a
 * fresh scope each iteration.  A node taking a dead value (the untaken side
 * of a tf.cond's Switch, cond.c) is dead itself and is not converted; a
 * Merge alone takes dead inputs, and decides. */
#include "frontends/common/frontend.h"
#include "frontends/graphdef/gd.h"
#include "passes/fold.h"
#include "passes/verify.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const gd_op *ops;
  bool lists; /* its converters take TensorList operands */
} families[] = {{gd_ops_math, false}, {gd_ops_nn, false}, {gd_ops_array, false}, {gd_ops_control, true},
                {gd_ops_list, true}};

/* The converter of op `name`, and whether it takes TensorLists. */
static const gd_op *find_op(const char *name, bool *lists) {
  for (size_t f = 0; f < sizeof families / sizeof *families; f++)
    for (const gd_op *o = families[f].ops; o->name; o++)
      if (!strcmp(o->name, name)) {
        *lists = families[f].lists || o->convert == gd_cv_identity;
        return o;
      }
  return NULL;
}

bool kc_is_graphdef_path(const char *path) {
  size_t n = strlen(path);
  return (n > 3 && !strcmp(path + n - 3, ".pb")) || (n > 5 && !strcmp(path + n - 5, ".json"));
}

static const char *str(const char *s) { return s ? s : ""; }

/* ---- names ---- */

static const char *sanitize(gd_ctx *c, const char *name) { return kc_fe_sanitize(c->m->arena, name, true); }

static const char *fresh_name(gd_ctx *c, const char *tf_name) { return kc_fe_fresh_name(c->m, tf_name, true); }

/* ---- the node index ---- */

static uint64_t hash(const char *s, size_t n) { return kc_fe_hash(s, n); }

/* Index of the node named s[0..n), or -1. */
static int find_node(gd_ctx *c, const char *s, size_t n) {
  uint64_t mask = (uint64_t)c->cap_index - 1;
  for (uint64_t i = hash(s, n) & mask;; i = (i + 1) & mask) {
    int k = c->index[i];
    if (k < 0) return -1;
    const char *nm = str(c->gdef->node[k]->name);
    if (strlen(nm) == n && !memcmp(nm, s, n)) return k;
  }
}

static bool build_index(gd_ctx *c) {
  size_t nn = c->gdef->n_node;
  c->cap_index = 16;
  while ((size_t)c->cap_index < 2 * nn + 2) c->cap_index *= 2;
  c->index = kc_alloc(c->m->arena, sizeof(int) * (size_t)c->cap_index);
  for (int i = 0; i < c->cap_index; i++) c->index[i] = -1;
  uint64_t mask = (uint64_t)c->cap_index - 1;
  for (size_t k = 0; k < nn; k++) {
    const Tensorflow__NodeDef *p = c->gdef->node[k];
    const char *nm = str(p->name);
    if (!*nm) return kc_error(c->d, (kc_loc){c->path, 0, 0}, "node %zu (%s) has no name", k, str(p->op));
    if (find_node(c, nm, strlen(nm)) >= 0)
      return kc_error(c->d, (kc_loc){c->path, 0, 0}, "two nodes are named '%s'", nm);
    uint64_t i = hash(nm, strlen(nm)) & mask;
    while (c->index[i] >= 0) i = (i + 1) & mask;
    c->index[i] = (int)k;
  }
  c->root = (gd_scope){.val = kc_alloc(c->m->arena, sizeof(gd_val) * (nn + 1))};
  return gd_ctl_analyze(c);
}

gd_val *gd_val_of(const gd_scope *s, int k) { return &s->val[s->slot ? s->slot[k] : k]; }

bool gd_parse_input(gd_ctx *c, const char *s, int *node, int *index, bool *ctrl) {
  *ctrl = *s == '^';
  if (*ctrl) s++;
  size_t n = strlen(s);
  *index = 0;
  const char *colon = strrchr(s, ':');
  if (colon && !*ctrl) {
    char *end;
    long k = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || k < 0 || k > 1 << 20) return false;
    *index = (int)k;
    n = (size_t)(colon - s);
  }
  *node = find_node(c, s, n);
  return true;
}

const char *gd_node_label(gd_ctx *c, int k) {
  const Tensorflow__NodeDef *p = c->gdef->node[k];
  return kc_sprintf(c->m->arena, "node '%s' (%s)", str(p->name), str(p->op));
}

/* ---- feeds ---- */

static const kc_input_spec *spec_for(gd_ctx *c, const char *name) {
  for (int i = 0; c->opts && i < c->opts->n_inputs; i++) {
    const char *s = c->opts->inputs[i].name;
    size_t n = strlen(name);
    if (!strcmp(s, name) || (!strncmp(s, name, n) && !strcmp(s + n, ":0"))) return &c->opts->inputs[i];
  }
  return NULL;
}

static bool is_fed(gd_ctx *c, int k) {
  if (!c->opts || !c->opts->n_feeds) return !strcmp(str(c->gdef->node[k]->op), "Placeholder");
  for (int i = 0; i < c->opts->n_feeds; i++) {
    int node, index;
    bool ctrl;
    if (gd_parse_input(c, c->opts->feeds[i], &node, &index, &ctrl) && node == k) return true;
  }
  return false;
}

/* The type of a fed node: --input-shape, else its shape attribute (a
 * Placeholder's `shape`, or `_output_shapes`); an unknown leading (batch)
 * dimension is 1, any other unknown dimension needs --input-shape. */
static bool feed_type(gd_ctx *c, gd_node *n, kg_type *t) {
  const char *nm = str(n->p->name);
  kiln_dtype dt = KILN_F32;
  if (!gd_attr_dtype(c, n, gd_attr(n, "dtype") ? "dtype" : "T", KILN_F32, &dt)) return false;
  t->dtype = dt;
  const kc_input_spec *sp = spec_for(c, nm);
  const Tensorflow__AttrValue *a = gd_attr(n, "shape");
  const Tensorflow__TensorShapeProto *shp = a && a->value_case == TENSORFLOW__ATTR_VALUE__VALUE_SHAPE ? a->shape : NULL;
  if (!shp && (a = gd_attr(n, "_output_shapes")) && a->value_case == TENSORFLOW__ATTR_VALUE__VALUE_LIST && a->list &&
      a->list->n_shape)
    shp = a->list->shape[0];
  bool known_rank = shp && !shp->unknown_rank;
  if (sp && sp->has_shape) {
    if (known_rank && (int)shp->n_dim != sp->shape.rank)
      return gd_fail(c, n, "--input-shape %s gives rank %d, but the graph's has rank %zu", nm, sp->shape.rank, shp->n_dim);
    for (int d = 0; known_rank && d < sp->shape.rank; d++)
      if (shp->dim[d] && shp->dim[d]->size >= 0 && shp->dim[d]->size != sp->shape.dim[d])
        return gd_fail(c, n, "--input-shape %s: dimension %d is %lld in the graph, not %lld", nm, d,
                       (long long)shp->dim[d]->size, (long long)sp->shape.dim[d]);
    t->shape = sp->shape;
    return true;
  }
  if (!known_rank) return gd_fail(c, n, "the feed has no known shape; give it with --input-shape %s=d0,d1,...", nm);
  if (shp->n_dim > KILN_MAX_RANK) return gd_fail(c, n, "rank %zu is above kiln's %d", shp->n_dim, KILN_MAX_RANK);
  t->shape.rank = (int)shp->n_dim;
  for (int d = 0; d < t->shape.rank; d++) {
    int64_t v = shp->dim[d] ? shp->dim[d]->size : -1;
    if (v < 0 && d == 0 && t->shape.rank > 1) v = 1; /* batch 1 */
    if (v < 0)
      return gd_fail(c, n, "dimension %d of the feed is unknown; kiln compiles static shapes: give its size with "
                           "--input-shape %s=d0,d1,...", d, nm);
    t->shape.dim[d] = v;
  }
  return true;
}

/* ---- conversion ---- */

static bool convert(gd_ctx *c, gd_scope *s, int k) {
  const Tensorflow__NodeDef *p = c->gdef->node[k];
  gd_node n = {.p = p, .k = k, .label = gd_node_label(c, k)};
  const char *op_name = str(p->op);
  bool fed = gd_val_of(s, k)->state == 3, merge = !strcmp(op_name, "Merge");
  kg_ref dead = KG_NOREF; /* a dead input (data or control) */
  n.in = kc_alloc(c->m->arena, sizeof(kg_ref) * (p->n_input + 1));
  n.in_guard = kc_alloc(c->m->arena, sizeof(gd_guard *) * (p->n_input + 1));
  for (size_t i = 0; !fed && i < p->n_input; i++) { /* a fed node's inputs are not computed */
    int src, idx;
    bool ctrl;
    gd_parse_input(c, p->input[i], &src, &idx, &ctrl); /* checked by the walk */
    gd_scope *o = gd_ctl_scope(c, s, src);
    const gd_val *v = o ? gd_val_of(o, src) : NULL;
    if (!v || v->state < 2) { /* left to control.c (a loop's Merge) */
      if (!ctrl) n.in_guard[n.n_in] = NULL, n.in[n.n_in++] = KG_NOREF;
      continue;
    }
    kg_ref r = gd_val_out(v, ctrl ? 0 : idx);
    if (!ctrl && r.node == KG_NOREF.node)
      return gd_fail(c, &n, "input '%s': %s has no output %d", p->input[i], gd_node_label(c, src), idx);
    const gd_guard *g = gd_val_guard(v, ctrl ? 0 : idx);
    if (gd_is_dead(r)) dead = r;
    else if (!merge && !gd_guard_join(c, k, n.guard, g, &n.guard)) return false;
    if (!ctrl) n.in_guard[n.n_in] = g, n.in[n.n_in++] = r;
  }
  if (gd_is_dead(dead) && !merge) { /* on a side not taken: never converted */
    gd_val_of(s, k)->dead = dead.index + 1;
    return true;
  }
  int before = c->m->n_nodes;
  const char *name = gd_ctl_name(c, s, str(p->name));
  c->g.prefix = sanitize(c, name);
  c->g.failed = false;
  c->scope = s;
  int errors = c->d->n_errors;
  if (fed) {
    kg_type t;
    if (!feed_type(c, &n, &t)) return false;
    gd_outputs(c, &n, 1);
    n.out[0] = kb_typed_node(&c->g, KC_OP_PLACEHOLDER, &t, NULL, 0, NULL, 0);
  } else {
    bool lists = false;
    const gd_op *op = find_op(op_name, &lists);
    if (!op)
      return gd_fail(c, &n, "unsupported TensorFlow op '%s' (kiln converts the ops listed in docs/tensorflow.md)", op_name);
    for (int i = 0; !lists && i < n.n_in; i++)
      if (gd_is_list(n.in[i]))
        return gd_fail(c, &n, "input %d ('%s') is a TensorList: kiln keeps TensorLists only while importing, for the "
                              "TensorList ops and while loops, and %s cannot take one", i, p->input[i], op_name);
    if (!op->convert(c, &n) || c->g.failed) {
      if (c->d->n_errors == errors) gd_fail(c, &n, "conversion failed");
      else if (!strstr(c->d->text ? c->d->text : "", n.label))
        kc_note(c->d, (kc_loc){c->path, 0, 0}, "while converting %s", n.label);
      return false;
    }
  }
  for (int i = before; i < c->m->n_nodes; i++) kc_fold_node(c->m, i);
  /* devices: "/job:x/replica:0/task:0/device:GPU:1" or "/gpu:1" -> gpu:1 */
  const char *dev = str(p->device), *kind = NULL;
  int dev_idx = 0;
  for (const char *s = dev; *s; s++) {
    if (!strncasecmp(s, "GPU:", 4) || !strncasecmp(s, "CPU:", 4)) {
      kind = tolower((unsigned char)*s) == 'g' ? "gpu" : "cpu";
      dev_idx = atoi(s + 4);
    }
  }
  if (kind)
    for (int i = before; i < c->m->n_nodes; i++)
      if (c->m->nodes[i].op != KC_OP_CONST) c->m->nodes[i].device = kc_sprintf(c->m->arena, "%s:%d", kind, dev_idx);
  gd_val *v = gd_val_of(s, k);
  gd_cond_record(c, &n, v);
  size_t pl = strlen(c->g.prefix);
  for (int i = 0; i < n.n_out; i++) {
    kg_ref r = n.out[i];
    if (r.node < before || r.index != 0) continue;
    kg_node *made = &c->m->nodes[r.node];
    if (made->n_out != 1 || strncmp(made->name, c->g.prefix, pl) || made->name[pl] != '/') continue;
    made->name = ""; /* so that fresh_name may give it back its own name */
    made->name = fresh_name(c, i ? kc_sprintf(c->m->arena, "%s:%d", name, i) : name);
  }
  return true;
}

/* Converts node `root` and everything it depends on in scope s, depth first
 * without recursion (graphs are deep); what an input needs from an outer
 * scope (a loop's Enter takes a value from outside) is walked there. */
bool gd_walk(gd_ctx *c, gd_scope *s, int root) {
  if (gd_ctl_scope(c, s, root) != s) return gd_ctl_bad_input(c, -1, root);
  if (gd_val_of(s, root)->state >= 2) return true;
  size_t cap = 64, sp = 0;
  int *stack = malloc(sizeof(int) * cap);
  bool *expanded = malloc(cap);
  bool ok = stack && expanded;
  if (ok) {
    stack[sp] = root;
    expanded[sp++] = false;
  }
  while (ok && sp) {
    int k = stack[sp - 1];
    gd_val *v = gd_val_of(s, k);
    if (v->state == 2 || (v->state == 3 && !expanded[sp - 1])) {
      sp--;
      continue;
    }
    if (expanded[sp - 1]) {
      bool fed = v->state == 3;
      ok = strcmp(str(c->gdef->node[k]->op), "Exit") ? convert(c, s, k) : gd_ctl_exit(c, s, k);
      v->state = fed ? 3 : 2;
      sp--;
      continue;
    }
    expanded[sp - 1] = true;
    if (is_fed(c, k)) {
      if (s != &c->root) {
        ok = kc_error(c->d, (kc_loc){c->path, 0, 0}, "%s: is fed, but it is inside a while loop", gd_node_label(c, k));
        break;
      }
      v->state = 3;
      continue;
    }
    v->state = 1;
    const Tensorflow__NodeDef *p = c->gdef->node[k];
    bool opaque = gd_ctl_opaque(c, k);
    for (size_t i = p->n_input; ok && i-- > 0;) {
      int src, idx;
      bool ctrl;
      if (!gd_parse_input(c, str(p->input[i]), &src, &idx, &ctrl))
        ok = kc_error(c->d, (kc_loc){c->path, 0, 0}, "%s: input '%s' is malformed (want name, name:k or ^name)",
                      gd_node_label(c, k), str(p->input[i]));
      else if (src < 0) {
        const char *nm = p->input[i] + ctrl, *colon = ctrl ? NULL : strrchr(nm, ':');
        ok = kc_error(c->d, (kc_loc){c->path, 0, 0}, "%s: input '%s' is dangling: the graph has no node named '%.*s'",
                      gd_node_label(c, k), p->input[i], colon ? (int)(colon - nm) : (int)strlen(nm), nm);
      }
      if (!ok || opaque) continue; /* an Exit, a loop's Merge: control.c computes them */
      gd_scope *o = gd_ctl_scope(c, s, src);
      const gd_val *w = o ? gd_val_of(o, src) : NULL;
      if (!o) ok = gd_ctl_bad_input(c, k, src);
      else if (w->state == 1)
        ok = kc_error(c->d, (kc_loc){c->path, 0, 0}, "%s: the graph has a cycle through input '%s'", gd_node_label(c, k),
                      p->input[i]);
      else if (w->state == 0 && o != s)
        ok = gd_walk(c, o, src);
      else if (w->state == 0) {
        if (sp == cap) {
          cap *= 2;
          int *s2 = realloc(stack, sizeof(int) * cap);
          bool *e2 = s2 ? realloc(expanded, cap) : NULL;
          if (s2) stack = s2;
          if (e2) expanded = e2;
          ok = s2 && e2;
          if (!ok) {
            kc_error(c->d, (kc_loc){c->path, 0, 0}, "out of memory");
            break;
          }
        }
        stack[sp] = src;
        expanded[sp++] = false;
      }
    }
  }
  free(stack);
  free(expanded);
  return ok;
}

/* ---- fetches and the entry ---- */

static bool add_fetch(gd_ctx *c, kg_entry *e, kg_ref r, const char *tf_name) {
  for (int i = 0; i < e->n_fetches; i++)
    if (e->fetches[i].node == r.node && e->fetches[i].index == r.index &&
        !strcmp(e->fetch_names[i], sanitize(c, tf_name)))
      return true;
  const kg_node *src = &c->m->nodes[r.node];
  bool shared = src->op == KC_OP_PLACEHOLDER || r.index != 0 || strcmp(src->name, sanitize(c, tf_name)) != 0;
  for (int i = 0; i < e->n_fetches; i++) shared |= e->fetches[i].node == r.node;
  if (shared) { /* a fetch of its own name: an identity of the value */
    c->g.prefix = "fetch";
    r = kb_node(&c->g, KC_OP_IDENTITY, &r, 1, NULL, 0);
    if (c->g.failed) return false;
    c->m->nodes[r.node].name = fresh_name(c, tf_name);
  }
  e->fetches[e->n_fetches] = r;
  e->fetch_names[e->n_fetches++] = c->m->nodes[r.node].name;
  return true;
}

/* The value fetch `name` names; a dead one is an error, or (skip_dead: the
 * fetches by default) a dead *r. */
static bool fetch_ref(gd_ctx *c, const char *name, bool skip_dead, kg_ref *r, int *node) {
  int k, idx;
  bool ctrl;
  kc_loc at = {c->path, 0, 0};
  if (!gd_parse_input(c, name, &k, &idx, &ctrl) || ctrl)
    return kc_error(c->d, at, "fetch '%s' is malformed (want name or name:k)", name);
  if (k < 0) return kc_error(c->d, at, "fetch '%s': the graph has no node named so", name);
  if (!gd_walk(c, &c->root, k)) return false;
  const gd_val *v = gd_val_of(&c->root, k);
  *r = gd_val_out(v, idx);
  if (gd_is_dead(*r)) return skip_dead || gd_cond_dead_use(c, -1, name, *r);
  if (idx < v->n_out && gd_is_list(v->out[idx]))
    return kc_error(c->d, at, "fetch '%s': %s gives a TensorList, which kiln keeps only while importing (fetch its "
                              "TensorListStack)", name, gd_node_label(c, k));
  if (idx >= v->n_out || v->out[idx].node < 0)
    return kc_error(c->d, at, "fetch '%s': %s has no output %d", name, gd_node_label(c, k), idx);
  *r = v->out[idx];
  *node = k;
  return true;
}

static bool import_graph(gd_ctx *c) {
  kc_loc at = {c->path, 0, 0};
  if (!build_index(c)) return false;
  size_t nn = c->gdef->n_node;
  for (int i = 0; c->opts && i < c->opts->n_feeds; i++) {
    int k, idx;
    bool ctrl;
    if (!gd_parse_input(c, c->opts->feeds[i], &k, &idx, &ctrl) || ctrl)
      return kc_error(c->d, at, "--feed '%s' is malformed (want name or name:0)", c->opts->feeds[i]);
    if (k < 0) return kc_error(c->d, at, "--feed '%s': the graph has no node named so", c->opts->feeds[i]);
    if (idx) return kc_error(c->d, at, "--feed '%s': only output 0 of a node can be fed", c->opts->feeds[i]);
  }
  for (int i = 0; c->opts && i < c->opts->n_inputs; i++) {
    int k, idx;
    bool ctrl;
    if (!gd_parse_input(c, c->opts->inputs[i].name, &k, &idx, &ctrl) || k < 0)
      return kc_error(c->d, at, "the graph has no node named '%s' (given by --input-shape or --input-value)",
                      c->opts->inputs[i].name);
    if (c->opts->inputs[i].has_value)
      return kc_error(c->d, at, "--input-value applies to ONNX models; a TensorFlow graph's feeds are chosen with --feed");
  }
  /* the fetch list: --fetch, the signature, or every node nothing consumes */
  int n_f = 0;
  bool by_default = false;
  const char **fetch = kc_alloc(c->m->arena, sizeof(char *) * (nn + 1 + (size_t)c->n_sig_outputs +
                                                                (size_t)(c->opts ? c->opts->n_fetches : 0)));
  if (c->opts && c->opts->n_fetches)
    for (int i = 0; i < c->opts->n_fetches; i++) fetch[n_f++] = c->opts->fetches[i];
  else if (c->n_sig_outputs)
    for (int i = 0; i < c->n_sig_outputs; i++) fetch[n_f++] = c->sig_outputs[i];
  else {
    bool *used = kc_alloc(c->m->arena, nn + 1);
    for (size_t k = 0; k < nn; k++)
      for (size_t i = 0; i < c->gdef->node[k]->n_input; i++) {
        int src, idx;
        bool ctrl;
        if (gd_parse_input(c, str(c->gdef->node[k]->input[i]), &src, &idx, &ctrl) && src >= 0) used[src] = true;
      }
    for (size_t k = 0; k < nn; k++) {
      const char *op = str(c->gdef->node[k]->op);
      if (!used[k] && strcmp(op, "NoOp") && strcmp(op, "Const") && strcmp(op, "Placeholder")) fetch[n_f++] = c->gdef->node[k]->name;
    }
    by_default = true;
  }
  kg_ref *refs = kc_alloc(c->m->arena, sizeof(kg_ref) * (size_t)(n_f + 1));
  int *nodes = kc_alloc(c->m->arena, sizeof(int) * (size_t)(n_f + 1));
  int kept = 0; /* by default, a dead value (a tf.cond's side not taken) is left out */
  for (int i = 0; i < n_f; i++) {
    if (!fetch_ref(c, fetch[i], by_default, &refs[kept], &nodes[kept])) return false;
    if (!gd_is_dead(refs[kept])) fetch[kept++] = fetch[i];
  }
  n_f = kept;
  if (!n_f) return kc_error(c->d, at, "no node computes an output (each is consumed, or a Const, Placeholder or NoOp, "
                                      "or on the side of a tf.cond not taken); name what to compute with --fetch");
  kg_entry e = {.name = "main", .loc = at};
  e.feeds = kc_alloc(c->m->arena, sizeof(int) * (nn + 1));
  /* feeds: --feed's order, else the graph's */
  for (int i = 0; c->opts && i < c->opts->n_feeds; i++) {
    int k, idx;
    bool ctrl;
    gd_parse_input(c, c->opts->feeds[i], &k, &idx, &ctrl);
    const gd_val *v = gd_val_of(&c->root, k);
    if (v->state != 3 || !v->n_out)
      return kc_error(c->d, at, "--feed '%s': the fetches do not depend on it", c->opts->feeds[i]);
    e.feeds[e.n_feeds++] = v->out[0].node;
  }
  if (!c->opts || !c->opts->n_feeds)
    for (size_t k = 0; k < nn; k++)
      if (gd_val_of(&c->root, k)->state == 3 && gd_val_of(&c->root, k)->n_out)
        e.feeds[e.n_feeds++] = gd_val_of(&c->root, k)->out[0].node;
  size_t cap = (size_t)n_f + (c->opts && c->opts->fetch_all ? (size_t)c->m->n_nodes * 2 : 0) + 1;
  e.fetches = kc_alloc(c->m->arena, sizeof(kg_ref) * cap);
  e.fetch_names = kc_alloc(c->m->arena, sizeof(char *) * cap);
  for (int i = 0; i < n_f; i++) {
    const char *nm = fetch[i];
    size_t l = strlen(nm);
    if (l > 2 && !strcmp(nm + l - 2, ":0")) nm = kc_strndup(c->m->arena, nm, l - 2);
    if (!add_fetch(c, &e, refs[i], nm)) return false;
  }
  if (c->opts && c->opts->fetch_all) /* every converted tensor, in graph order */
    for (size_t k = 0; k < nn; k++) {
      const gd_val *v = gd_val_of(&c->root, k);
      if (v->state != 2) continue;
      const char *op = str(c->gdef->node[k]->op);
      if (!strcmp(op, "Const") || !strcmp(op, "Identity")) continue;
      for (int i = 0; i < v->n_out && (size_t)e.n_fetches + 1 < cap; i++) {
        kg_ref r = v->out[i];
        if (r.node < 0 || c->m->nodes[r.node].op == KC_OP_CONST) continue;
        const char *nm = i ? kc_sprintf(c->m->arena, "%s:%d", c->gdef->node[k]->name, i) : c->gdef->node[k]->name;
        bool dup = false;
        for (int j = 0; j < e.n_fetches; j++) dup |= e.fetches[j].node == r.node && e.fetches[j].index == r.index;
        if (!dup && !add_fetch(c, &e, r, nm)) return false;
      }
    }
  kc_module_add_entry(c->m, &e);
  return true;
}

/* ---- the model ---- */

static uint8_t *read_file(const char *path, size_t *len, kc_diag *d) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    kc_error(d, (kc_loc){path, 0, 0}, "cannot open: %s", strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap + 1);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap) {
      uint8_t *g = realloc(buf, (cap *= 2) + 1);
      if (!g) free(buf);
      buf = g;
    }
  }
  fclose(f);
  if (!buf) kc_error(d, (kc_loc){path, 0, 0}, "out of memory reading the model");
  else buf[n] = 0;
  *len = n;
  return buf;
}

static const char *module_name(gd_ctx *c, const char *path) {
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  const char *dot = strrchr(b, '.');
  return sanitize(c, kc_strndup(c->m->arena, b, dot ? (size_t)(dot - b) : strlen(b)));
}

static kg_module *start(gd_ctx *c, const char *path, const kc_import_options *o, kc_diag *d) {
  kg_module *m = kc_module_new("model");
  *c = (gd_ctx){.m = m, .d = d, .path = path, .opts = o};
  c->g = (kc_grad_ctx){.m = m, .d = d, .prefix = "tf", .loc = {path, 0, 0}};
  m->name = module_name(c, path);
  m->file = kc_strdup(m->arena, path);
  return m;
}

static kg_module *finish(gd_ctx *c, bool ok) {
  ok = ok && import_graph(c) && kc_verify(c->m, c->d);
  if (!ok) {
    kc_module_free(c->m);
    return NULL;
  }
  return c->m;
}

kg_module *kc_graphdef_import_buffer(const char *path, const void *data, size_t len, const kc_import_options *o,
                                     kc_diag *d) {
  gd_ctx c;
  kg_module *m = start(&c, path, o, d);
  Tensorflow__GraphDef *g = len ? tensorflow__graph_def__unpack(NULL, len, data) : NULL;
  if (!g) kc_error(d, (kc_loc){path, 0, 0}, len ? "not a valid GraphDef: protobuf decoding failed (truncated or corrupt "
                                                  "file, or not a frozen graph?)" : "empty file: not a GraphDef");
  c.gdef = g;
  m = finish(&c, g != NULL);
  if (g) tensorflow__graph_def__free_unpacked(g, NULL);
  return m;
}

kg_module *kc_tfjs_import_buffer(const char *path, const char *json, size_t len, const kc_import_options *o,
                                 kc_diag *d) {
  gd_ctx c;
  start(&c, path, o, d);
  const char *slash = strrchr(path, '/');
  const char *dir = slash ? kc_strndup(c.m->arena, path, (size_t)(slash - path)) : ".";
  return finish(&c, gd_tfjs_parse(&c, json, len, dir));
}

kg_module *kc_graphdef_import(const char *path, const kc_import_options *o, kc_diag *d) {
  size_t len = 0;
  uint8_t *buf = read_file(path, &len, d);
  if (!buf) return NULL;
  size_t n = strlen(path);
  kg_module *m = n > 5 && !strcmp(path + n - 5, ".json") ? kc_tfjs_import_buffer(path, (const char *)buf, len, o, d)
                                                         : kc_graphdef_import_buffer(path, buf, len, o, d);
  free(buf);
  return m;
}
