/* import.c — the ONNX frontend's driver: decode the model with protobuf-c
 * (the codec generated at build time from the onnx.proto Debian installs),
 * then walk the graph once in topological order, converting each node with
 * its converter from the family tables and folding what is constant.
 *
 * Names: kiln identifiers are [A-Za-z_][A-Za-z0-9_/]*, ONNX names are any
 * string, so every name is sanitized (other characters become '_', a
 * leading digit gets a 'v' in front, clashes get _1, _2, ...).  The node
 * computing an ONNX value carries that value's sanitized name, so
 * `--fetch` and `kiln import` speak the model's own names. */
#include "frontends/onnx/ox.h"
#include "frontends/common/frontend.h"
#include "passes/fold.h"
#include "passes/verify.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Control flow converts subgraphs, so it lives here with the graph walk. */
static bool cv_if(ox_ctx *c, ox_node *n);
static const ox_op control_ops[] = {{"If", cv_if}, {NULL, NULL}};

static const ox_op *const families[] = {ox_ops_elementwise, ox_ops_shape, ox_ops_nn, ox_ops_reduce, ox_ops_misc, ox_ops_linalg, ox_ops_quant,
                                        control_ops};

static const ox_op *find_op(const char *name) {
  for (size_t f = 0; f < sizeof families / sizeof *families; f++)
    for (const ox_op *o = families[f]; o->name; o++)
      if (!strcmp(o->name, name)) return o;
  return NULL;
}

bool kc_is_onnx_path(const char *path) {
  size_t n = strlen(path);
  return n > 5 && !strcmp(path + n - 5, ".onnx");
}

/* proto2 leaves absent strings NULL; a model may omit any of them. */
static const char *str(const char *s) { return s ? s : ""; }

/* ---- the value table ---- */

static uint64_t hash(const char *s) { return kc_fe_hash(s, strlen(s)); }

static ox_value *slot(ox_ctx *c, const char *name) {
  uint64_t i = hash(name) & (uint64_t)(c->cap_values - 1);
  while (c->values[i].name && strcmp(c->values[i].name, name)) i = (i + 1) & (uint64_t)(c->cap_values - 1);
  return &c->values[i];
}

static void define(ox_ctx *c, const char *name, kg_ref r) {
  if (c->n_values * 2 >= c->cap_values) {
    ox_value *old = c->values;
    int oldcap = c->cap_values;
    c->cap_values = oldcap ? oldcap * 2 : 256;
    c->values = kc_alloc(c->m->arena, sizeof(ox_value) * (size_t)c->cap_values);
    c->n_values = 0;
    for (int i = 0; i < oldcap; i++)
      if (old[i].name) {
        *slot(c, old[i].name) = old[i];
        c->n_values++;
      }
  }
  ox_value *v = slot(c, name);
  if (!v->name) c->n_values++;
  v->name = name;
  v->ref = r;
}

static const ox_value *lookup(ox_ctx *c, const char *name) {
  if (!c->cap_values) return NULL;
  const ox_value *v = slot(c, name);
  return v->name ? v : NULL;
}

/* ---- names ---- */

static const char *sanitize(ox_ctx *c, const char *name) { return kc_fe_sanitize(c->m->arena, name, false); }

/* A sanitized name not yet used by a node. */
static const char *fresh_name(ox_ctx *c, const char *onnx_name) { return kc_fe_fresh_name(c->m, onnx_name, false); }

/* ---- inputs ---- */

static const kc_input_spec *spec_for(ox_ctx *c, const char *name) {
  for (int i = 0; c->opts && i < c->opts->n_inputs; i++)
    if (!strcmp(c->opts->inputs[i].name, name)) return &c->opts->inputs[i];
  return NULL;
}

static bool input_type(ox_ctx *c, const Onnx__ValueInfoProto *vi, kg_type *t) {
  kc_loc at = {c->path, 0, 0};
  const Onnx__TypeProto *tp = vi->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
    return kc_error(c->d, at, "input '%s': only tensor inputs are supported (not sequences, maps or optionals)",
                    str(vi->name));
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  if (!ox_dtype(tt->elem_type, &t->dtype))
    return kc_error(c->d, at, "input '%s': unsupported data type %s (kiln has bool, int8, uint8, int32, int64, "
                              "float, double)", str(vi->name), ox_dtype_name(tt->elem_type));
  const kc_input_spec *sp = spec_for(c, str(vi->name));
  if (sp && sp->has_shape) {
    if (tt->shape && (int)tt->shape->n_dim != sp->shape.rank)
      return kc_error(c->d, at, "--input-shape %s gives rank %d, but the model's input has rank %zu", str(vi->name),
                      sp->shape.rank, tt->shape->n_dim);
    for (int d = 0; tt->shape && d < sp->shape.rank; d++) {
      const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
      if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value != sp->shape.dim[d])
        return kc_error(c->d, at, "--input-shape %s: dimension %d is %lld in the model, not %lld", str(vi->name), d,
                        (long long)dim->dim_value, (long long)sp->shape.dim[d]);
    }
    t->shape = sp->shape;
    return true;
  }
  if (!tt->shape)
    return kc_error(c->d, at, "input '%s' has no shape in the model; give it with --input-shape %s=d0,d1,...", str(vi->name),
                    str(vi->name));
  if (tt->shape->n_dim > KILN_MAX_RANK)
    return kc_error(c->d, at, "input '%s': rank %zu is above kiln's %d", str(vi->name), tt->shape->n_dim, KILN_MAX_RANK);
  t->shape.rank = (int)tt->shape->n_dim;
  for (int d = 0; d < t->shape.rank; d++) {
    const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
    if (dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || dim->dim_value < 0) {
      const char *sym = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM ? dim->dim_param : "?";
      return kc_error(c->d, at, "input '%s' has a dynamic dimension '%s' (dimension %d); kiln compiles static "
                                "shapes: give its size with --input-shape %s=d0,d1,...", str(vi->name), sym, d, str(vi->name));
    }
    t->shape.dim[d] = dim->dim_value;
  }
  return true;
}

/* An input given by --input-value becomes a constant. */
static kg_ref input_const(ox_ctx *c, const kc_input_spec *sp, const kg_type *t) {
  int64_t n = kg_shape_numel(&t->shape);
  if (n != sp->n_values) {
    kc_error(c->d, (kc_loc){c->path, 0, 0}, "--input-value %s gives %d values, but %s needs %lld", sp->name,
             sp->n_values, kg_type_str(t, (char[64]){0}, 64), (long long)n);
    c->g.failed = true;
    return KG_NOREF;
  }
  return ox_const_from(c, t->dtype, &t->shape, sp->values);
}

/* ---- nodes ---- */

/* What messages call a node: its name, else its first output's. */
static const char *node_name(const Onnx__NodeProto *p) {
  return p->name && *p->name ? p->name : p->n_output ? p->output[0] : str(p->op_type);
}

/* The nodes in an order where every input is defined first (ONNX requires
 * topological order, but a model may break it); NULL after reporting a cycle
 * or an input that nothing defines. */
static int *topo_order(ox_ctx *c, const Onnx__GraphProto *g) {
  size_t n = g->n_node;
  int *order = kc_alloc(c->m->arena, sizeof(int) * (n ? n : 1));
  bool *done = kc_alloc(c->m->arena, n ? n : 1);
  size_t k = 0;
  for (bool progress = true; progress && k < n;) {
    progress = false;
    for (size_t i = 0; i < n; i++) {
      if (done[i]) continue;
      const Onnx__NodeProto *p = g->node[i];
      bool ready = true;
      for (size_t j = 0; j < p->n_input && ready; j++) ready = !*p->input[j] || lookup(c, p->input[j]);
      if (!ready) continue;
      for (size_t j = 0; j < p->n_output; j++)
        if (*p->output[j]) define(c, p->output[j], KG_NOREF);
      done[i] = true;
      order[k++] = (int)i;
      progress = true;
    }
  }
  if (k == n) return order;
  for (size_t i = 0; i < n; i++) {
    if (done[i]) continue;
    const Onnx__NodeProto *p = g->node[i];
    for (size_t j = 0; j < p->n_input; j++) {
      if (!*p->input[j] || lookup(c, p->input[j])) continue;
      bool produced = false;
      for (size_t q = 0; q < n && !produced; q++)
        for (size_t o = 0; o < g->node[q]->n_output; o++) produced |= !strcmp(g->node[q]->output[o], p->input[j]);
      if (produced)
        kc_error(c->d, (kc_loc){c->path, 0, 0}, "node '%s' (%s): the graph has a cycle through input '%s'",
                 node_name(p), str(p->op_type), p->input[j]);
      else
        kc_error(c->d, (kc_loc){c->path, 0, 0}, "node '%s' (%s): input '%s' is not a graph input, an initializer "
                 "or the output of any node", node_name(p), str(p->op_type), p->input[j]);
      return NULL;
    }
  }
  return NULL;
}

static bool convert_node(ox_ctx *c, const Onnx__NodeProto *p) {
  const char *domain = p->domain && *p->domain ? p->domain : "";
  const char *nm = node_name(p);
  ox_node n = {.p = p};
  n.label = kc_sprintf(c->m->arena, "node '%s' (%s)", nm, str(p->op_type));
  const ox_op *op = strcmp(domain, "") && strcmp(domain, "ai.onnx") ? NULL : find_op(str(p->op_type));
  if (!op)
    return ox_fail(c, &n, "unsupported ONNX op '%s%s%s' (opset %d)", domain, *domain ? "." : "", str(p->op_type),
                   c->opset);
  n.n_in = (int)p->n_input;
  n.in = kc_alloc(c->m->arena, sizeof(kg_ref) * (p->n_input + 1));
  for (size_t i = 0; i < p->n_input; i++) {
    n.in[i] = KG_NOREF;
    if (!*p->input[i]) continue;
    const ox_value *v = lookup(c, p->input[i]);
    if (!v || v->ref.node < 0) return ox_fail(c, &n, "input '%s' is not defined before the node", p->input[i]);
    n.in[i] = v->ref;
  }
  n.n_out = (int)p->n_output;
  n.out = kc_alloc(c->m->arena, sizeof(kg_ref) * (p->n_output + 1));
  for (size_t i = 0; i < p->n_output; i++) n.out[i] = KG_NOREF;
  int before = c->m->n_nodes;
  c->g.prefix = sanitize(c, nm);
  c->g.failed = false;
  int errors = c->d->n_errors;
  if (!op->convert(c, &n) || c->g.failed) {
    if (c->d->n_errors == errors) ox_fail(c, &n, "conversion failed");
    else if (!strstr(c->d->text ? c->d->text : "", n.label)) /* a kiln rule failed: say which ONNX node */
      kc_note(c->d, (kc_loc){c->path, 0, 0}, "while converting %s", n.label);
    return false;
  }
  for (int i = before; i < c->m->n_nodes; i++) kc_fold_node(c->m, i);
  for (size_t i = 0; i < p->n_output; i++) {
    if (!*p->output[i]) continue;
    kg_ref r = n.out[i];
    if (r.node < 0) return ox_fail(c, &n, "output %zu ('%s') is not produced (kiln does not compute it)", i, p->output[i]);
    /* the node computing a value takes the value's name, where that node is new */
    kg_node *made = &c->m->nodes[r.node];
    size_t pl = strlen(c->g.prefix);
    bool builder_named = !strncmp(made->name, c->g.prefix, pl) && made->name[pl] == '/';
    if (r.node >= before && r.index == 0 && made->n_out == 1 && builder_named) {
      made->name = ""; /* so that fresh_name may give it back its own name */
      made->name = fresh_name(c, p->output[i]);
    }
    define(c, p->output[i], r);
  }
  return true;
}

/* ---- the model ---- */

static const char *module_name(ox_ctx *c, const char *path) {
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  size_t n = strlen(b);
  if (n > 5 && !strcmp(b + n - 5, ".onnx")) n -= 5;
  return sanitize(c, kc_strndup(c->m->arena, b, n));
}

static uint8_t *read_file(const char *path, size_t *len, kc_diag *d) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    kc_error(d, (kc_loc){path, 0, 0}, "cannot open: %s", strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap) {
      uint8_t *g = realloc(buf, cap *= 2);
      if (!g) free(buf);
      buf = g;
    }
  }
  fclose(f);
  if (!buf) kc_error(d, (kc_loc){path, 0, 0}, "out of memory reading the model");
  *len = n;
  return buf;
}

/* A graph's initializers, as constants named after them. */
static bool import_initializers(ox_ctx *c, const Onnx__GraphProto *g) {
  for (size_t i = 0; i < g->n_initializer; i++) {
    const Onnx__TensorProto *tp = g->initializer[i];
    kg_tensor t;
    if (!ox_tensor(c, tp, kc_sprintf(c->m->arena, "initializer '%s'", tp->name ? tp->name : ""), &t)) return false;
    c->g.prefix = "initializer";
    kg_ref r = ox_tensor_const(c, &t);
    if (c->g.failed) return false;
    c->m->nodes[r.node].name = fresh_name(c, tp->name ? tp->name : "");
    define(c, tp->name ? tp->name : "", r);
  }
  if (g->n_sparse_initializer) return kc_error(c->d, (kc_loc){c->path, 0, 0}, "sparse initializers are not supported");
  return true;
}

/* A graph's nodes, in dependency order; names of enclosing graphs are
 * visible (the one value table serves every scope: ONNX names are unique). */
static bool import_nodes(ox_ctx *c, const Onnx__GraphProto *g) {
  int *order = topo_order(c, g);
  if (!order) return false;
  for (size_t i = 0; i < g->n_node; i++)
    if (!convert_node(c, g->node[order[i]])) return false;
  return true;
}

/* If: a constant condition (the usual case once inputs such as a sample
 * rate are given with --input-value) imports only the branch taken; a
 * run-time condition imports both and selects, which needs their outputs to
 * agree in type. */
static bool cv_if(ox_ctx *c, ox_node *n) {
  const Onnx__AttributeProto *ta = ox_attr(n, "then_branch"), *ea = ox_attr(n, "else_branch");
  if (!ta || !ta->g || !ea || !ea->g) return ox_fail(c, n, "needs then_branch and else_branch graphs");
  if (!ox_has(n, 0)) return ox_fail(c, n, "needs a condition");
  const kg_tensor *cond = ox_const(c, n->in[0]);
  const Onnx__GraphProto *br[2] = {ta->g, ea->g};
  kg_ref outs[2][64];
  if (n->n_out > 64) return ox_fail(c, n, "too many outputs");
  const char *prefix = c->g.prefix;
  for (int b = 0; b < 2; b++) {
    if (cond && (kg_tensor_get_i(cond, 0) != 0) != (b == 0)) continue;
    if ((int)br[b]->n_output != n->n_out)
      return ox_fail(c, n, "%s has %zu outputs, the node %d", b ? "else_branch" : "then_branch", br[b]->n_output, n->n_out);
    if (!import_initializers(c, br[b]) || !import_nodes(c, br[b])) return false;
    for (int k = 0; k < n->n_out; k++) {
      const ox_value *v = lookup(c, str(br[b]->output[k]->name));
      if (!v || v->ref.node < 0) return ox_fail(c, n, "branch output '%s' is not computed", str(br[b]->output[k]->name));
      outs[b][k] = v->ref;
    }
  }
  c->g.prefix = prefix;
  for (int k = 0; k < n->n_out; k++) {
    if (cond) {
      n->out[k] = kb_unary(&c->g, KC_OP_IDENTITY, outs[kg_tensor_get_i(cond, 0) ? 0 : 1][k]);
      continue;
    }
    if (!kg_type_eq(ox_type(c, outs[0][k]), ox_type(c, outs[1][k])))
      return ox_fail(c, n, "the condition is only known at run time and output %d differs between the branches "
                           "(%s vs %s); give the inputs it depends on with --input-value", k,
                     kg_type_str(ox_type(c, outs[0][k]), (char[64]){0}, 64),
                     kg_type_str(ox_type(c, outs[1][k]), (char[64]){0}, 64));
    n->out[k] = kc_fe_select(&c->g, n->in[0], outs[0][k], outs[1][k]);
  }
  return !c->g.failed;
}

static bool import_graph(ox_ctx *c, const Onnx__GraphProto *g) {
  kc_loc at = {c->path, 0, 0};
  if (!import_initializers(c, g)) return false;
  /* inputs not backed by an initializer: placeholders (the entry's feeds) */
  kg_entry e = {.name = "main", .loc = at};
  e.feeds = kc_alloc(c->m->arena, sizeof(int) * (g->n_input + 1));
  for (size_t i = 0; i < g->n_input; i++) {
    const Onnx__ValueInfoProto *vi = g->input[i];
    if (lookup(c, str(vi->name))) continue;
    kg_type t;
    if (!input_type(c, vi, &t)) return false;
    c->g.prefix = "input";
    const kc_input_spec *sp = spec_for(c, str(vi->name));
    kg_ref r = sp && sp->has_value ? input_const(c, sp, &t) : kb_typed_node(&c->g, KC_OP_PLACEHOLDER, &t, NULL, 0, NULL, 0);
    if (c->g.failed) return false;
    c->m->nodes[r.node].name = fresh_name(c, str(vi->name));
    if (!(sp && sp->has_value)) e.feeds[e.n_feeds++] = r.node;
    define(c, str(vi->name), r);
  }
  for (int i = 0; c->opts && i < c->opts->n_inputs; i++) {
    bool found = false;
    for (size_t j = 0; j < g->n_input; j++) found |= !strcmp(str(g->input[j]->name), c->opts->inputs[i].name);
    if (!found) return kc_error(c->d, at, "the model has no input named '%s' (given by --input-shape or --input-value)",
                                c->opts->inputs[i].name);
  }
  if (!import_nodes(c, g)) return false;
  /* outputs: the entry's fetches */
  e.fetches = kc_alloc(c->m->arena, sizeof(kg_ref) * (g->n_output + 1));
  e.fetch_names = kc_alloc(c->m->arena, sizeof(char *) * (g->n_output + 1));
  for (size_t i = 0; i < g->n_output; i++) {
    const Onnx__ValueInfoProto *vi = g->output[i];
    const ox_value *v = lookup(c, str(vi->name));
    if (!v || v->ref.node < 0) return kc_error(c->d, at, "graph output '%s' is not computed by any node", str(vi->name));
    kg_ref r = v->ref;
    kiln_dtype want;
    if (vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
        vi->type->tensor_type->has_elem_type && ox_dtype(vi->type->tensor_type->elem_type, &want) &&
        kg_ref_type(c->m, r)->dtype != want)
      return kc_error(c->d, at, "graph output '%s' is %s in the model, but its computation gives %s", str(vi->name),
                      kg_dtype_name(want), kg_dtype_name(kg_ref_type(c->m, r)->dtype));
    const kg_node *src = &c->m->nodes[r.node];
    bool shared = src->op == KC_OP_PLACEHOLDER || strcmp(src->name, sanitize(c, str(vi->name))) != 0;
    if (shared) { /* a fetch of its own name: an identity of the value */
      c->g.prefix = "output";
      r = kb_node(&c->g, KC_OP_IDENTITY, &r, 1, NULL, 0);
      if (c->g.failed) return false;
      c->m->nodes[r.node].name = fresh_name(c, str(vi->name));
    }
    e.fetches[e.n_fetches] = r;
    e.fetch_names[e.n_fetches++] = c->m->nodes[r.node].name;
  }
  kc_module_add_entry(c->m, &e);
  return true;
}

kg_module *kc_onnx_import(const char *path, const kc_import_options *o, kc_diag *d) {
  size_t len = 0;
  uint8_t *buf = read_file(path, &len, d);
  if (!buf) return NULL;
  kg_module *m = kc_onnx_import_buffer(path, buf, len, o, d);
  free(buf);
  return m;
}

kg_module *kc_onnx_import_buffer(const char *path, const void *data, size_t len, const kc_import_options *o,
                                 kc_diag *d) {
  kc_loc at = {path, 0, 0};
  if (!len) {
    kc_error(d, at, "empty file: not an ONNX model");
    return NULL;
  }
  Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, data);
  if (!mp) {
    kc_error(d, at, "not a valid ONNX model: protobuf decoding failed (truncated or corrupt file?)");
    return NULL;
  }
  kg_module *m = kc_module_new("model");
  ox_ctx c = {.m = m, .d = d, .path = path, .opts = o};
  c.g = (kc_grad_ctx){.m = m, .d = d, .prefix = "onnx", .loc = at};
  const char *slash = strrchr(path, '/');
  c.dir = slash ? kc_strndup(m->arena, path, (size_t)(slash - path)) : ".";
  m->name = module_name(&c, path);
  m->file = kc_strdup(m->arena, path);
  bool ok = true;
  c.opset = -1;
  for (size_t i = 0; i < mp->n_opset_import; i++) {
    const char *dom = mp->opset_import[i]->domain ? mp->opset_import[i]->domain : "";
    if (!*dom || !strcmp(dom, "ai.onnx")) c.opset = (int)mp->opset_import[i]->version;
  }
  if (!mp->graph) ok = kc_error(d, at, "the model has no graph");
  else if (c.opset > 18) ok = kc_error(d, at, "opset %d is newer than kiln knows (1 to 18)", c.opset);
  if (c.opset < 0) c.opset = 1;
  ok = ok && import_graph(&c, mp->graph) && kc_verify(m, d);
  onnx__model_proto__free_unpacked(mp, NULL);
  if (!ok) {
    kc_module_free(m);
    return NULL;
  }
  return m;
}
