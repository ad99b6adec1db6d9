/* verify.c — the verifier: structure, attributes, dtypes, shapes, cycles.
 *
 * It runs after parsing (and after every pass that builds nodes) and is the
 * one place where user mistakes in the graph become diagnostics.  Generic
 * checks come from the op table's spec strings; op-specific shape rules
 * come from the table's `infer` functions, called in topological order so
 * every operand's type is known.  A declared result type must equal the
 * inferred one. */
#include "passes/verify.h"
#include "ir/ops.h"
#include <stdlib.h>
#include <string.h>

typedef struct attr_spec {
  char name[40];
  char kind[12];
  bool required;
} attr_spec;

/* Parses "a:int, b:ints?, c:bool=false" into specs. */
static int parse_attr_spec(const char *spec, attr_spec *out, int max) {
  int n = 0;
  const char *p = spec;
  while (*p && n < max) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    attr_spec *s = &out[n++];
    memset(s, 0, sizeof *s);
    size_t k = 0;
    while (*p && *p != ':' && k < sizeof s->name - 1) s->name[k++] = *p++;
    if (*p == ':') p++;
    k = 0;
    while (*p && *p != ',' && *p != '=' && *p != '?' && *p != ' ' && k < sizeof s->kind - 1)
      s->kind[k++] = *p++;
    s->required = true;
    if (*p == '?' || *p == '=') s->required = false;
    if (*p == '=' && p[1] == '[') { /* a list default: skip to its closing bracket */
      while (*p && *p != ']') p++;
    }
    while (*p && *p != ',') p++;
  }
  return n;
}

static bool kind_matches(kg_attr *a, const char *kind) {
  switch (a->kind) {
  case KG_ATTR_INT:
    if (!strcmp(kind, "float")) {
      double v = (double)a->i;
      a->kind = KG_ATTR_FLOAT;
      a->f = v;
      return true;
    }
    return !strcmp(kind, "int");
  case KG_ATTR_FLOAT: return !strcmp(kind, "float");
  case KG_ATTR_BOOL: return !strcmp(kind, "bool");
  case KG_ATTR_STRING:
    if (!strcmp(kind, "dtype")) {
      kiln_dtype dt;
      if (!kg_dtype_parse(a->s, strlen(a->s), &dt)) return false;
      a->kind = KG_ATTR_DTYPE;
      a->dtype = dt;
      return true;
    }
    return !strcmp(kind, "string");
  case KG_ATTR_INTS:
    if (!strcmp(kind, "floats") && a->ints.n == 0) {
      a->kind = KG_ATTR_FLOATS;
      a->floats.n = 0;
      return true;
    }
    return !strcmp(kind, "ints");
  case KG_ATTR_FLOATS: return !strcmp(kind, "floats");
  case KG_ATTR_DTYPE: return !strcmp(kind, "dtype");
  case KG_ATTR_SHAPE: return !strcmp(kind, "shape");
  case KG_ATTR_TENSOR: return !strcmp(kind, "tensor");
  }
  return false;
}

static const char *kind_name(kg_attr_kind k) {
  static const char *names[] = {"int", "float", "bool", "string", "ints", "floats", "dtype", "shape", "tensor"};
  return names[k];
}

static bool check_attrs(kc_diag *d, kg_node *n) {
  const kc_op *op = &kc_ops[n->op];
  attr_spec specs[24];
  int ns = parse_attr_spec(op->attrs, specs, 24);
  bool ok = true;
  for (int i = 0; i < n->n_attrs; i++) {
    kg_attr *a = &n->attrs[i];
    int k = 0;
    while (k < ns && strcmp(specs[k].name, a->name)) k++;
    if (k == ns) {
      ok = kc_error(d, a->loc, "op '%s' has no attribute '%s'", op->name, a->name);
      continue;
    }
    kg_attr_kind was = a->kind;
    if (!kind_matches(a, specs[k].kind)) {
      if (!strcmp(specs[k].kind, "dtype") && was == KG_ATTR_STRING)
        ok = kc_error(d, a->loc, "attribute '%s': unknown dtype '%s'", a->name, a->s);
      else
        ok = kc_error(d, a->loc, "attribute '%s' of '%s' must be %s, not %s", a->name, op->name,
                      specs[k].kind, kind_name(was));
    }
  }
  for (int k = 0; k < ns; k++)
    if (specs[k].required && !kg_node_attr(n, specs[k].name))
      ok = kc_error_node(d, n->loc, n->name, "op '%s' needs attribute '%s'", op->name, specs[k].name);
  return ok;
}

/* The kind an operand must have, from the spec ("ref:var" / "q:queue"). */
static const char *operand_kind(const char *spec, int k) {
  const char *p = spec;
  for (int i = 0; i < k && p; i++) {
    p = strchr(p, ',');
    if (p) p++;
  }
  if (!p) return "";
  const char *colon = strchr(p, ':'), *comma = strchr(p, ',');
  if (colon && (!comma || colon < comma)) return colon[1] == 'v' ? "var" : "queue";
  if (strstr(p, "...") && (!comma || strstr(p, "...") < comma)) return "";
  return "";
}

static bool check_operands(kc_diag *d, kg_module *m, kg_node *n) {
  const kc_op *op = &kc_ops[n->op];
  int lo = kc_op_min_operands(n->op), hi = kc_op_max_operands(n->op);
  if (n->n_in < lo || (hi >= 0 && n->n_in > hi)) {
    if (hi == lo)
      return kc_error(d, n->loc, "'%s' takes %d operand%s, %d given", op->name, lo, lo == 1 ? "" : "s",
                      n->n_in);
    return kc_error(d, n->loc, "'%s' takes at least %d operands, %d given", op->name, lo, n->n_in);
  }
  bool ok = true;
  for (int i = 0; i < n->n_in; i++) {
    const kg_node *src = &m->nodes[n->in[i].node];
    const char *want = operand_kind(op->operands, i);
    if (!strcmp(want, "var") && src->op != KC_OP_VARIABLE) {
      ok = kc_error(d, n->loc, "operand %d of '%s' must be a variable; '%s' is a %s", i + 1, op->name,
                    src->name, kc_ops[src->op].name);
      continue;
    }
    if (!strcmp(want, "queue") && src->op != KC_OP_QUEUE) {
      ok = kc_error(d, n->loc, "operand %d of '%s' must be a queue; '%s' is a %s", i + 1, op->name,
                    src->name, kc_ops[src->op].name);
      continue;
    }
    if (!*want && src->op == KC_OP_QUEUE) {
      ok = kc_error(d, n->loc, "queue '%s' used as a tensor operand of '%s'", src->name, op->name);
      continue;
    }
    if (!*want && n->in[i].index >= src->n_out) {
      if (src->n_out == 0)
        ok = kc_error(d, n->loc, "'%s' (%s) has no result to use as an operand", src->name,
                      kc_ops[src->op].name);
      else
        ok = kc_error(d, n->loc, "'%s' has %d result%s; output %d does not exist", src->name, src->n_out,
                      src->n_out == 1 ? "" : "s", n->in[i].index);
    }
  }
  return ok;
}

static bool dtype_allowed(const char *spec, kiln_dtype dt) {
  if (!strcmp(spec, "any")) return true;
  if (!strcmp(spec, "num")) return dt != KILN_BOOL;
  if (!strcmp(spec, "float")) return kg_dtype_is_float(dt);
  if (!strcmp(spec, "int")) return kg_dtype_is_int(dt);
  if (!strcmp(spec, "bool")) return dt == KILN_BOOL;
  if (!strcmp(spec, "intbool")) return !kg_dtype_is_float(dt);
  return true;
}

static bool check_dtypes(kc_diag *d, kg_module *m, kg_node *n) {
  const kc_op *op = &kc_ops[n->op];
  /* the principal operand: the first one that is used as a tensor (a
   * variable read as a value counts; `ref:var` and `q:queue` operands do
   * not, except that an assignment checks its variable) */
  int first = -1;
  for (int i = 0; i < n->n_in && first < 0; i++)
    if (!*operand_kind(op->operands, i)) first = i;
  if (n->op == KC_OP_SELECT) first = n->n_in > 1 ? 1 : -1;
  if (n->op == KC_OP_ASSIGN || n->op == KC_OP_ASSIGN_ADD || n->op == KC_OP_ASSIGN_SUB) first = 0;
  if (n->op == KC_OP_ASSIGN_MAP) return true; /* mixed dtypes, like fused */
  kiln_dtype dt;
  if (first >= 0) dt = kg_ref_type(m, n->in[first])->dtype;
  else if (n->out_declared && n->n_out) dt = n->out[0].dtype;
  else return true;
  if (!dtype_allowed(op->dtypes, dt))
    return kc_error(d, n->loc, "'%s' does not accept dtype %s (it takes %s)", op->name, kg_dtype_name(dt),
                    !strcmp(op->dtypes, "num") ? "numbers, not bool" :
                    !strcmp(op->dtypes, "float") ? "f32 or f64" :
                    !strcmp(op->dtypes, "int") ? "integers" : op->dtypes);
  if ((op->flags & KC_OP_ELEMENTWISE) && n->op != KC_OP_FUSED) {
    for (int i = first; i < n->n_in; i++) {
      kiln_dtype o = kg_ref_type(m, n->in[i])->dtype;
      if (o != dt)
        return kc_error(d, n->loc, "'%s' operands must have one dtype: %s and %s", op->name,
                        kg_dtype_name(dt), kg_dtype_name(o));
    }
  }
  return true;
}

/* Depth-first search over data and control edges; reports the first cycle
 * found with the nodes on it.  Writes a topological order into `order`. */
static bool topo_order(kc_diag *d, kg_module *m, int *order) {
  int n = m->n_nodes, k = 0;
  char *state = calloc((size_t)n + 1, 1); /* 0 new, 1 on stack, 2 done */
  int *stack = malloc(sizeof(int) * ((size_t)n + 1)), *edge = malloc(sizeof(int) * ((size_t)n + 1));
  bool ok = state && stack && edge;
  for (int root = 0; ok && root < n; root++) {
    if (state[root] || m->nodes[root].dead) continue;
    int sp = 0;
    stack[sp] = root;
    edge[sp] = 0;
    state[root] = 1;
    while (sp >= 0 && ok) {
      kg_node *v = &m->nodes[stack[sp]];
      int e = edge[sp]++;
      if (e < v->n_in + v->n_ctrl) {
        int w = e < v->n_in ? v->in[e].node : v->ctrl[e - v->n_in];
        if (state[w] == 1) {
          char path[512];
          size_t pl = 0;
          int from = sp;
          while (from > 0 && stack[from] != w) from--;
          for (int i = from; i <= sp && pl < sizeof path - 64; i++)
            pl += (size_t)snprintf(path + pl, sizeof path - pl, "'%s' -> ", m->nodes[stack[i]].name);
          snprintf(path + pl, sizeof path - pl, "'%s'", m->nodes[w].name);
          ok = kc_error(d, m->nodes[w].loc, "the graph has a cycle: %s", path);
        } else if (!state[w]) {
          state[w] = 1;
          stack[++sp] = w;
          edge[sp] = 0;
        }
      } else {
        state[stack[sp]] = 2;
        order[k++] = stack[sp];
        sp--;
      }
    }
  }
  if (!state || !stack || !edge) kc_error(d, (kc_loc){0}, "out of memory");
  free(state);
  free(stack);
  free(edge);
  return ok;
}

static bool check_var(kc_diag *d, kg_node *n) {
  static const char *inits[] = {"zeros", "ones", "value", "random_uniform", "random_normal",
                                "truncated_normal", "glorot_uniform", "npy"};
  const char *init = kg_attr_str(n, "init", "zeros");
  for (size_t i = 0; i < sizeof inits / sizeof *inits; i++)
    if (!strcmp(init, inits[i])) {
      if (!strcmp(init, "value") && !kg_node_attr(n, "value"))
        return kc_error_node(d, n->loc, n->name, "initializer 'value' needs a literal");
      if (!strcmp(init, "npy") && !kg_attr_str(n, "path", NULL))
        return kc_error_node(d, n->loc, n->name, "initializer 'npy' needs a file: npy(path=\"data.npy\")");
      if (strncmp(init, "random", 6) && strcmp(init, "truncated_normal") && strcmp(init, "glorot_uniform"))
        return true;
      if (!kg_dtype_is_float(n->out[0].dtype) && strcmp(init, "random_uniform"))
        return kc_error_node(d, n->loc, n->name, "initializer '%s' needs a float variable", init);
      if (!strcmp(init, "glorot_uniform") && n->out[0].shape.rank < 1)
        return kc_error_node(d, n->loc, n->name, "glorot_uniform needs a variable of rank >= 1");
      return true;
    }
  return kc_error_node(d, n->loc, n->name,
                       "unknown initializer '%s' (zeros, ones, a literal, random_uniform, "
                       "random_normal, truncated_normal, glorot_uniform, npy)",
                       init);
}

static bool check_queue(kc_diag *d, kg_node *n) {
  const char *kind = kg_attr_str(n, "kind", "fifo");
  bool shuffle = !strcmp(kind, "random_shuffle");
  if (strcmp(kind, "fifo") && !shuffle)
    return kc_error_node(d, n->loc, n->name, "unknown queue kind '%s' (expected fifo or random_shuffle)", kind);
  if (kg_attr_int(n, "capacity", 0) <= 0)
    return kc_error_node(d, n->loc, n->name, "queue capacity must be positive");
  if (!shuffle && (kg_node_attr(n, "min_after_dequeue") || kg_node_attr(n, "seed")))
    return kc_error_node(d, n->loc, n->name, "min_after_dequeue and seed are attributes of random_shuffle queues");
  int64_t mad = kg_attr_int(n, "min_after_dequeue", 0);
  if (shuffle && (mad < 0 || mad >= kg_attr_int(n, "capacity", 0)))
    return kc_error_node(d, n->loc, n->name, "min_after_dequeue must be at least 0 and less than the capacity (%lld)",
                         (long long)kg_attr_int(n, "capacity", 0));
  if (n->n_comp == 0) return kc_error_node(d, n->loc, n->name, "a queue needs at least one element type");
  return true;
}

bool kc_verify_node(kg_module *m, int idx, kc_diag *d) {
  kg_node *n = &m->nodes[idx];
  const kc_op *op = &kc_ops[n->op];
  if (!check_operands(d, m, n) || !check_attrs(d, n)) return false;
  if ((op->flags & KC_OP_NEEDS_TYPE) && !n->out_declared)
    return kc_error(d, n->loc, "'%s' needs its result type: write %s<T>(...) or '... : T'", op->name,
                    op->name);
  if (n->op == KC_OP_VARIABLE && !check_var(d, n)) return false;
  if (n->op == KC_OP_QUEUE && !check_queue(d, n)) return false;
  if (!check_dtypes(d, m, n)) return false;
  int declared_n = n->out_declared ? n->n_out : 0;
  kg_type *declared = n->out;
  kc_infer_ctx c = {m, d};
  if (!op->infer(&c, n)) return false;
  n = &m->nodes[idx];
  if (n->out_declared && n->out != declared) {
    if (declared_n != n->n_out)
      return kc_error(d, n->loc, "'%s' yields %d result%s, but %d type%s declared", n->name, n->n_out,
                      n->n_out == 1 ? "" : "s", declared_n, declared_n == 1 ? " is" : "s are");
    for (int i = 0; i < n->n_out; i++)
      if (!kg_type_eq(&declared[i], &n->out[i])) {
        char a[160], b[160];
        return kc_error(d, n->loc, "'%s' is declared %s but its operands give %s", n->name,
                        kg_type_str(&declared[i], a, sizeof a), kg_type_str(&n->out[i], b, sizeof b));
      }
  }
  /* whether a GPU-placed node has a GPU kernel is the placement pass's
   * question (passes/place.c): with soft placement it moves to the CPU */
  return true;
}

static bool verify_entries(kc_diag *d, kg_module *m) {
  bool ok = true;
  for (int i = 0; i < m->n_entries; i++) {
    kg_entry *e = &m->entries[i];
    for (int k = 0; k < e->n_feeds; k++) {
      kg_node *f = &m->nodes[e->feeds[k]];
      if (f->op != KC_OP_PLACEHOLDER)
        ok = kc_error(d, e->loc, "entry '%s' feeds '%s', which is a %s, not a placeholder", e->name,
                      f->name, kc_ops[f->op].name);
      for (int j = 0; j < k; j++)
        if (e->feeds[j] == e->feeds[k]) ok = kc_error(d, e->loc, "entry '%s' feeds '%s' twice", e->name, f->name);
    }
    for (int k = 0; k < e->n_fetches; k++) {
      kg_ref r = e->fetches[k];
      kg_node *f = &m->nodes[r.node];
      if (f->op == KC_OP_QUEUE)
        ok = kc_error(d, e->loc, "'%s' is a queue and cannot be fetched", f->name);
      else if (r.index > 0 && r.index >= f->n_out)
        ok = kc_error(d, e->loc, "'%s' has no output %d", f->name, r.index);
    }
    if (!e->n_fetches) ok = kc_error(d, e->loc, "entry '%s' fetches nothing", e->name);
    for (int k = 0; k < e->n_fetches; k++) /* each becomes a field of the output struct */
      for (int j = 0; j < k; j++)
        if (!e->synthesized && !strcmp(kc_fetch_name(m, e, j), kc_fetch_name(m, e, k)))
          ok = kc_error(d, e->loc, "entry '%s' fetches '%s' twice", e->name, kc_fetch_name(m, e, k));
  }
  return ok;
}

static bool verify_stmts(kc_diag *d, kg_module *m, kg_stmt *const *s, int n) {
  bool ok = true;
  for (int i = 0; i < n; i++) {
    if (s[i]->kind == KG_STMT_PRINT && !kg_ref_type(m, s[i]->ref))
      ok = kc_error(d, s[i]->loc, "print '%s': it has no result to print (%s)", m->nodes[s[i]->ref.node].name,
                    kc_ops[m->nodes[s[i]->ref.node].op].name);
    ok &= verify_stmts(d, m, s[i]->body, s[i]->n_body);
  }
  return ok;
}

bool kc_verify(kg_module *m, kc_diag *d) {
  int errors = d->n_errors;
  int *order = malloc(sizeof(int) * ((size_t)m->n_nodes + 1));
  if (!order) return kc_error(d, (kc_loc){0}, "out of memory");
  /* unresolved references (only after a failed parse) are not verified */
  for (int i = 0; i < m->n_nodes; i++)
    for (int k = 0; k < m->nodes[i].n_in; k++)
      if (m->nodes[i].in[k].node < 0) {
        free(order);
        return kc_error(d, m->nodes[i].loc, "unresolved operand");
      }
  if (topo_order(d, m, order)) {
    int live = 0;
    for (int i = 0; i < m->n_nodes; i++) live += !m->nodes[i].dead;
    for (int i = 0; i < live && d->n_errors == errors; i++) kc_verify_node(m, order[i], d);
  }
  free(order);
  if (d->n_errors == errors) verify_entries(d, m);
  if (d->n_errors == errors) verify_stmts(d, m, m->program, m->n_program);
  return d->n_errors == errors;
}
