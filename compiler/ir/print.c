/* print.c — the .kg printer (see print.h).  Every node is printed flat, in
 * index order, with its types, so parse(print(m)) rebuilds m exactly. */
#include "ir/print.h"
#include "ir/ops.h"
#include <math.h>
#include <string.h>

static void print_float(double v, bool f32, FILE *f) {
  if (isnan(v)) { fputs("nan", f); return; }
  if (isinf(v)) { fputs(v < 0 ? "-inf" : "inf", f); return; }
  char buf[40];
  snprintf(buf, sizeof buf, f32 ? "%.9g" : "%.17g", v);
  fputs(buf, f);
  if (!strpbrk(buf, ".e")) fputs(".0", f);
}

static void print_elem(const kg_tensor *t, int64_t i, FILE *f) {
  kiln_dtype dt = t->type.dtype;
  if (dt == KILN_BOOL) fputs(((const _Bool *)t->data)[i] ? "true" : "false", f);
  else if (kg_dtype_is_float(dt)) print_float(kg_tensor_get_f(t, i), dt == KILN_F32, f);
  else fprintf(f, "%lld", (long long)kg_tensor_get_i(t, i));
}

static void print_lit_rec(const kg_tensor *t, int d, int64_t *k, FILE *f) {
  if (d == t->type.shape.rank) {
    print_elem(t, (*k)++, f);
    return;
  }
  fputc('[', f);
  for (int64_t i = 0; i < t->type.shape.dim[d]; i++) {
    if (i) fputs(", ", f);
    print_lit_rec(t, d + 1, k, f);
  }
  fputc(']', f);
}

void kc_print_literal(const kg_tensor *t, FILE *f) {
  int64_t k = 0;
  print_lit_rec(t, 0, &k, f);
}

static void print_type(const kg_type *t, FILE *f) {
  char buf[160];
  fputs(kg_type_str(t, buf, sizeof buf), f);
}

static void print_types(const kg_type *t, int n, FILE *f) {
  if (n != 1) fputc('(', f);
  for (int i = 0; i < n; i++) {
    if (i) fputs(", ", f);
    print_type(&t[i], f);
  }
  if (n != 1) fputc(')', f);
}

void kc_print_ref(const kg_module *m, kg_ref r, FILE *f) {
  fputs(m->nodes[r.node].name, f);
  if (r.index) fprintf(f, ".%d", r.index);
}

static void print_string(const char *s, FILE *f) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f), fputc(*s, f);
    else if (*s == '\n') fputs("\\n", f);
    else if (*s == '\t') fputs("\\t", f);
    else fputc(*s, f);
  }
  fputc('"', f);
}

static void print_attr_value(const kg_attr *a, FILE *f) {
  switch (a->kind) {
  case KG_ATTR_INT: fprintf(f, "%lld", (long long)a->i); break;
  case KG_ATTR_FLOAT: print_float(a->f, false, f); break;
  case KG_ATTR_BOOL: fputs(a->b ? "true" : "false", f); break;
  case KG_ATTR_STRING: print_string(a->s, f); break;
  case KG_ATTR_DTYPE: fputs(kg_dtype_name(a->dtype), f); break;
  case KG_ATTR_INTS:
    fputc('[', f);
    for (int i = 0; i < a->ints.n; i++) fprintf(f, "%s%lld", i ? ", " : "", (long long)a->ints.v[i]);
    fputc(']', f);
    break;
  case KG_ATTR_FLOATS:
    fputc('[', f);
    for (int i = 0; i < a->floats.n; i++) {
      if (i) fputs(", ", f);
      print_float(a->floats.v[i], false, f);
    }
    fputc(']', f);
    break;
  case KG_ATTR_SHAPE:
    fputc('[', f);
    for (int i = 0; i < a->shape.rank; i++) fprintf(f, "%s%lld", i ? ", " : "", (long long)a->shape.dim[i]);
    fputc(']', f);
    break;
  case KG_ATTR_TENSOR: kc_print_literal(&a->tensor, f); break;
  }
}

/* Prints `{a=1, b=2}` for the attributes not named in `skip`. */
static void print_attrs(const kg_node *n, const char *skip, FILE *f) {
  int k = 0;
  for (int i = 0; i < n->n_attrs; i++) {
    const kg_attr *a = &n->attrs[i];
    if (!strcmp(a->name, skip)) continue;
    fprintf(f, "%s%s=", k++ ? ", " : " {", a->name);
    print_attr_value(a, f);
  }
  if (k) fputc('}', f);
}

static void print_var(const kg_module *m, const kg_node *n, FILE *f) {
  fprintf(f, "var %s : ", n->name);
  print_type(&n->out[0], f);
  const char *init = kg_attr_str(n, "init", "zeros");
  const kg_attr *v = kg_node_attr(n, "value");
  if (!strcmp(init, "value") && v && v->kind == KG_ATTR_TENSOR) {
    fputs(" = ", f);
    kc_print_literal(&v->tensor, f);
  } else {
    fprintf(f, " = %s", init);
    int extra = 0;
    for (int i = 0; i < n->n_attrs; i++) {
      const char *a = n->attrs[i].name;
      if (strcmp(a, "init") && strcmp(a, "value") && strcmp(a, "trainable")) extra++;
    }
    if (extra) {
      fputc('(', f);
      int k = 0;
      for (int i = 0; i < n->n_attrs; i++) {
        const kg_attr *a = &n->attrs[i];
        if (!strcmp(a->name, "init") || !strcmp(a->name, "value") || !strcmp(a->name, "trainable"))
          continue;
        fprintf(f, "%s%s=", k++ ? ", " : "", a->name);
        print_attr_value(a, f);
      }
      fputc(')', f);
    }
  }
  const kg_attr *tr = kg_node_attr(n, "trainable");
  if (tr) {
    fputs(" {trainable=", f);
    print_attr_value(tr, f);
    fputc('}', f);
  }
  if (n->device) fprintf(f, " @%s", n->device);
  fputc('\n', f);
  (void)m;
}

static void print_queue(const kg_node *n, FILE *f) {
  fprintf(f, "queue %s : %s(", n->name, kg_attr_str(n, "kind", "fifo"));
  int k = 0;
  for (int i = 0; i < n->n_attrs; i++) {
    const kg_attr *a = &n->attrs[i];
    if (!strcmp(a->name, "kind")) continue;
    fprintf(f, "%s%s=", k++ ? ", " : "", a->name);
    print_attr_value(a, f);
  }
  fputs(") of (", f);
  for (int i = 0; i < n->n_comp; i++) {
    if (i) fputs(", ", f);
    print_type(&n->comp[i], f);
  }
  fputc(')', f);
  if (n->device) fprintf(f, " @%s", n->device);
  fputc('\n', f);
}

static void print_node(const kg_module *m, const kg_node *n, FILE *f) {
  const kc_op *op = &kc_ops[n->op];
  fprintf(f, "  %s = %s", n->name, op->name);
  if (n->op == KC_OP_CONST) {
    fputc('<', f);
    print_type(&n->out[0], f);
    fputs(">(", f);
    const kg_attr *v = kg_node_attr(n, "value");
    if (v) kc_print_literal(&v->tensor, f);
    fputc(')', f);
    print_attrs(n, "value", f);
  } else {
    fputc('(', f);
    for (int i = 0; i < n->n_in; i++) {
      if (i) fputs(", ", f);
      kc_print_ref(m, n->in[i], f);
    }
    fputc(')', f);
    print_attrs(n, "", f);
    if (n->n_out > 0) {
      fputs(" : ", f);
      print_types(n->out, n->n_out, f);
    }
  }
  if (n->n_ctrl) {
    fputs(" after [", f);
    for (int i = 0; i < n->n_ctrl; i++) fprintf(f, "%s%s", i ? ", " : "", m->nodes[n->ctrl[i]].name);
    fputc(']', f);
  }
  if (n->device) fprintf(f, " @%s", n->device);
  fputc('\n', f);
}

static void print_stmts(const kg_module *m, kg_stmt *const *s, int n, int depth, FILE *f) {
  for (int i = 0; i < n; i++) {
    const kg_stmt *st = s[i];
    fprintf(f, "%*s", 2 * depth, "");
    switch (st->kind) {
    case KG_STMT_RUN:
    case KG_STMT_SPAWN: {
      const kg_entry *e = &m->entries[st->entry];
      if (st->kind == KG_STMT_SPAWN) fprintf(f, "spawn %lld ", (long long)st->count);
      fputs("run ", f);
      for (int k = 0; k < e->n_fetches; k++) {
        if (k) fputs(", ", f);
        kc_print_ref(m, e->fetches[k], f);
      }
      if (st->trace) {
        fputs(" trace", f);
        if (st->text) fputc(' ', f), print_string(st->text, f);
      }
      if (st->kind == KG_STMT_SPAWN && st->node >= 0) fprintf(f, " close %s", m->nodes[st->node].name);
      fputc('\n', f);
      break;
    }
    case KG_STMT_SAVE:
    case KG_STMT_RESTORE:
      fputs(st->kind == KG_STMT_SAVE ? "save " : "restore ", f);
      print_string(st->text, f);
      if (st->kind == KG_STMT_SAVE && st->node >= 0) fprintf(f, " step %s", m->nodes[st->node].name);
      if (st->kind == KG_STMT_SAVE) fprintf(f, " keep %lld", (long long)st->count);
      fputc('\n', f);
      break;
    case KG_STMT_STOP: fputs("stop\n", f); break;
    case KG_STMT_JOIN: fprintf(f, "join grace %lld\n", (long long)(st->count / 1000)); break;
    case KG_STMT_SUMMARY_OPEN:
      fputs("summary ", f);
      print_string(st->text, f);
      fputc('\n', f);
      break;
    case KG_STMT_SUMMARY_WRITE:
      fputs("summary write", f);
      if (st->node >= 0) fprintf(f, " step %s", m->nodes[st->node].name);
      fputc('\n', f);
      break;
    case KG_STMT_SUMMARY_GRAPH: fputs("summary graph\n", f); break;
    case KG_STMT_SUMMARY_CLOSE: fputs("summary close\n", f); break;
    case KG_STMT_REPEAT:
    case KG_STMT_LOOP:
      if (st->kind == KG_STMT_REPEAT) fprintf(f, "repeat %lld {\n", (long long)st->count);
      else fputs("loop {\n", f);
      print_stmts(m, st->body, st->n_body, depth + 1, f);
      fprintf(f, "%*s}\n", 2 * depth, "");
      break;
    case KG_STMT_PRINT:
      fputs("print ", f);
      kc_print_ref(m, st->ref, f);
      fputc('\n', f);
      break;
    case KG_STMT_PRINT_TEXT:
      fputs("print ", f);
      print_string(st->text, f);
      fputc('\n', f);
      break;
    case KG_STMT_CLOSE:
      fprintf(f, "close %s%s\n", m->nodes[st->node].name, st->count ? " cancel_pending" : "");
      break;
    }
  }
}

void kc_print_module(const kg_module *m, FILE *f) {
  fprintf(f, "module %s\n", m->name);
  bool decl = false;
  for (int i = 0; i < m->n_nodes; i++) {
    const kg_node *n = &m->nodes[i];
    if (n->dead) continue;
    if (n->op == KC_OP_VARIABLE || n->op == KC_OP_QUEUE) {
      if (!decl) fputc('\n', f);
      decl = true;
      if (n->op == KC_OP_VARIABLE) print_var(m, n, f);
      else print_queue(n, f);
    }
  }
  fputs("\ngraph {\n", f);
  for (int i = 0; i < m->n_nodes; i++) {
    const kg_node *n = &m->nodes[i];
    if (!n->dead && n->op != KC_OP_VARIABLE && n->op != KC_OP_QUEUE) print_node(m, n, f);
  }
  fputs("}\n", f);
  bool first = true;
  for (int i = 0; i < m->n_entries; i++) {
    const kg_entry *e = &m->entries[i];
    if (e->synthesized) continue;
    if (first) fputc('\n', f);
    first = false;
    fprintf(f, "entry %s(", e->name);
    for (int k = 0; k < e->n_feeds; k++) fprintf(f, "%s%s", k ? ", " : "", m->nodes[e->feeds[k]].name);
    fputs(") -> (", f);
    for (int k = 0; k < e->n_fetches; k++) {
      if (k) fputs(", ", f);
      kc_print_ref(m, e->fetches[k], f);
    }
    fputs(")\n", f);
  }
  if (m->has_program) {
    fputs("\nprogram {\n", f);
    print_stmts(m, m->program, m->n_program, 1, f);
    fputs("}\n", f);
  }
}
