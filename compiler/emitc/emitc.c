/* emitc.c — the C backend's driver: writes the whole translation unit for
 * a scheduled, planned module, mirroring lower/lower.c function for
 * function:
 *
 *   prelude      includes, the ABI structs of runtime/kilnrt.h, the runtime
 *                functions used, the scalar helpers used
 *   data         constants as static arrays (or zeroed buffers the runtime
 *                fills from the --weights-file side file), index tables
 *   entries      int SYM_ENTRY(kiln_inst *, const void *in, void *out): one
 *                block per scheduled node, headed by a comment with the
 *                node's name, op, types and places in the memory plan
 *   SYM__init    the variable initializers
 *   SYM__program the module's program, when it has one
 *   SYM_desc     the kiln_module_desc libkilnrt reads
 *   main         under #ifdef KILN_MAIN (kiln build --backend c defines it)
 *
 * The nodes are rendered by the table in table.c; an op without a C
 * rendering is an error naming the op and the node. */
#include "emitc/emitc.h"
#include "emitc/ke.h"
#include "driver/graphproto.h"
#include "lower/symbols.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- node blocks ---- */

static const char *place_str(ke_ctx *E, kg_ref r) {
  const kg_node *n = &E->m->nodes[r.node];
  if (n->op == KC_OP_CONST) return "const";
  if (n->op == KC_OP_VARIABLE) return ke_str(E, "var@%lld", (long long)E->plan->var_offset[r.node]);
  if (kc_ops[n->op].flags & KC_OP_ALIAS) return place_str(E, n->in[0]);
  if (!E->ep) return "-";
  const kc_slot *s = &E->ep->slots[E->plan->out_base[r.node] + r.index];
  static const char *const names[] = {"-", "arena", "var", "feed", "out"};
  if (s->place == KC_PLACE_NONE) return "-";
  return ke_str(E, "%s@%lld", names[s->place], (long long)s->offset);
}

/* The comment above a node's block: name, op, result and operand types,
 * where the results live, and a fused node's expression. */
static void node_comment(ke_ctx *E, int v) {
  const kg_node *n = &E->m->nodes[v];
  ke_buf b = {0};
  char t[160];
  ke_printf(&b, "%s: %s", n->name, kc_ops[n->op].name);
  if (n->n_out) {
    ke_puts(&b, " ->");
    for (int k = 0; k < n->n_out; k++)
      ke_printf(&b, "%s %s (%s)", k ? "," : "", kg_type_str(&n->out[k], t, sizeof t), place_str(E, (kg_ref){v, k}));
  }
  if (n->n_in) {
    ke_puts(&b, " <-");
    for (int k = 0; k < n->n_in; k++) {
      const kg_type *it = kg_ref_type(E->m, n->in[k]);
      ke_printf(&b, "%s %s %s", k ? "," : "", E->m->nodes[n->in[k].node].name, it ? kg_type_str(it, t, sizeof t) : "queue");
    }
  }
  const kg_attr *ex = kg_node_attr(n, "expr");
  if (ex && ex->kind == KG_ATTR_STRING) ke_printf(&b, "; %s", ex->s);
  else if (kc_ops[n->op].expr) ke_printf(&b, "; %s", kc_ops[n->op].expr);
  ke_line(E, "/* %s */", ke_comment(E, b.p));
  ke_buf_free(&b);
}

static bool render_node(ke_ctx *E, int v) {
  const kg_node *n = &E->m->nodes[v];
  ke_render_fn fn = ke_rendering(n->op);
  if (!fn)
    return ke_node_error(E, v, "no C rendering for op '%s' (node '%s'): the C backend cannot compile this graph yet; "
                               "use the LLVM backend",
                         kc_ops[n->op].name, n->name);
  node_comment(E, v);
  /* the block goes to a buffer of its own first: a node without code gets
   * its comment only */
  ke_buf block = {0}, *outer = E->b;
  E->b = &block;
  E->ind++;
  bool ok = fn(E, v);
  E->ind--;
  E->b = outer;
  if (!block.len) {
    ke_buf_free(&block);
    return ok && !E->failed;
  }
  bool work = n->op != KC_OP_VARIABLE && n->op != KC_OP_PLACEHOLDER && n->op != KC_OP_CONST && n->op != KC_OP_QUEUE;
  if (work) ke_line(E, "KILN_TRACE_BEGIN();");
  ke_line(E, "{");
  ke_puts(E->b, block.p);
  ke_line(E, "}");
  ke_buf_free(&block);
  if (work) {
    int64_t bytes = 0;
    for (int k = 0; k < n->n_out; k++) bytes += kg_type_bytes(&n->out[k]);
    ke_line(E, "KILN_TRACE_END(%s, %s, %lld);", ke_cstring(E, n->name), ke_cstring(E, kc_ops[n->op].name),
            (long long)bytes);
  }
  return ok && !E->failed;
}

/* ---- functions ---- */

static bool is_ident_char(char c) { return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Whether identifier `id` occurs in text as a whole token. */
static bool uses(const char *text, const char *id) {
  size_t n = strlen(id);
  for (const char *p = text ? strstr(text, id) : NULL; p; p = strstr(p + 1, id))
    if ((p == text || !is_ident_char(p[-1])) && !is_ident_char(p[n])) return true;
  return false;
}

/* Writes a function: signature, the base pointers its body uses, the body,
 * and the `done:` exit. */
static void write_function(ke_ctx *E, ke_buf *out, const char *signature, const char *body, bool entry) {
  ke_printf(out, "%s {\n", signature);
  if (!uses(body, "inst") && !E->used_done && !uses(body, "vars") && !uses(body, "arena")) ke_puts(out, "  (void)inst;\n");
  if (uses(body, "vars")) ke_puts(out, "  uint8_t *vars = inst->vars;\n");
  if (uses(body, "arena")) ke_puts(out, "  uint8_t *arena = inst->arena;\n");
  if (entry) {
    if (uses(body, "in_")) ke_puts(out, "  const uint8_t *in_ = (const uint8_t *)in;\n");
    else ke_puts(out, "  (void)in;\n");
    if (uses(body, "out_")) ke_puts(out, "  uint8_t *out_ = (uint8_t *)out;\n");
    else ke_puts(out, "  (void)out;\n");
  }
  ke_puts(out, "  int st = 0;\n");
  ke_puts(out, body ? body : "");
  if (E->used_done) ke_puts(out, "done:\n");
  ke_puts(out, "  return st;\n}\n\n");
}

static const char *entry_name(ke_ctx *E, int i) {
  return ke_str(E, "%s_%s", E->sym, kc_symbol(E->m->arena, E->m->entries[i].name));
}

static bool write_entry(ke_ctx *E, int ei, ke_buf *out) {
  const kg_entry *e = &E->m->entries[ei];
  const kc_entry_plan *ep = &E->plan->entries[ei];
  ke_buf body = {0};
  E->b = &body;
  E->ind = 1;
  E->entry = e;
  E->ep = ep;
  E->used_done = false;
  bool ok = true;
  for (int i = 0; ok && i < ep->n_sched; i++) ok = render_node(E, ep->sched[i]);
  bool any = false;
  for (int i = 0; i < e->n_fetches; i++) {
    if (ep->out_offset[i] < 0 || ep->fetch_direct[i]) continue;
    if (!any) ke_line(E, "/* fetches not computed in place */");
    any = true;
    const char *dst = ep->out_offset[i] ? ke_str(E, "(out_ + %lld)", (long long)ep->out_offset[i]) : "out_";
    ke_memcpy(E, dst, ke_ref_ptr(E, e->fetches[i]), kg_type_bytes(kg_ref_type(E->m, e->fetches[i])));
  }
  char t[160];
  ke_printf(out, "/* entry '%s'%s: arena %lld bytes, in %lld, out %lld", ke_comment(E, e->name),
            e->synthesized ? " (a run statement of the program)" : "", (long long)ep->arena_size, (long long)ep->in_size,
            (long long)ep->out_size);
  for (int i = 0; i < e->n_feeds; i++)
    ke_printf(out, "\n *   in  %s %s @%lld", ke_comment(E, E->m->nodes[e->feeds[i]].name),
              kg_type_str(&E->m->nodes[e->feeds[i]].out[0], t, sizeof t), (long long)ep->in_offset[i]);
  for (int i = 0; i < e->n_fetches; i++) {
    const kg_type *ft = kg_ref_type(E->m, e->fetches[i]);
    if (ft)
      ke_printf(out, "\n *   out %s %s @%lld", ke_comment(E, kc_fetch_name(E->m, e, i)), kg_type_str(ft, t, sizeof t),
                (long long)ep->out_offset[i]);
  }
  ke_puts(out, " */\n");
  write_function(E, out,
                 ke_str(E, "%sint %s(kiln_inst *inst, const void *in, void *out)", e->synthesized ? "static " : "",
                        entry_name(E, ei)),
                 body.p, true);
  ke_buf_free(&body);
  E->entry = NULL;
  E->ep = NULL;
  return ok;
}

/* ---- the variable initializer ---- */

static double glorot_limit(const kg_shape *s) {
  double fan_in, fan_out;
  if (s->rank == 1) {
    fan_in = fan_out = (double)s->dim[0];
  } else {
    double receptive = 1;
    for (int i = 0; i < s->rank - 2; i++) receptive *= (double)s->dim[i];
    fan_in = (double)s->dim[s->rank - 2] * receptive;
    fan_out = (double)s->dim[s->rank - 1] * receptive;
  }
  return fan_in + fan_out > 0 ? sqrt(6.0 / (fan_in + fan_out)) : 0;
}

static void random_fill(ke_ctx *E, int v, int kind, double a, double b) {
  const kg_node *n = &E->m->nodes[v];
  ke_declare(E, "kiln_rt_random",
             "int kiln_rt_random(kiln_inst *inst, int32_t dtype, int32_t kind, int64_t n, void *out, double a, "
             "double b, uint64_t seed, uint64_t *counter)");
  ke_check(E, ke_str(E, "kiln_rt_random(inst, %d, %d, %s, %s, %s, %s, %lluULL, &inst->random_counters[%d])",
                     n->out[0].dtype, kind, ke_i64(E, kg_shape_numel(&n->out[0].shape)), ke_ref_ptr(E, (kg_ref){v, 0}),
                     ke_const_f(E, KILN_F64, a), ke_const_f(E, KILN_F64, b), (unsigned long long)kc_node_seed(n),
                     E->plan->random_slot[v]));
}

static const char *dims_table(ke_ctx *E, const kg_type *t) {
  return t->shape.rank ? ke_table(E, t->shape.dim, t->shape.rank, "dims") : "0";
}

static bool write_init(ke_ctx *E, ke_buf *out) {
  ke_buf body = {0};
  E->b = &body;
  E->ind = 1;
  E->used_done = false;
  for (int v = 0; v < E->m->n_nodes; v++) {
    const kg_node *n = &E->m->nodes[v];
    if (n->op != KC_OP_VARIABLE) continue;
    const char *init = kg_attr_str(n, "init", "zeros");
    const kg_type *t = &n->out[0];
    const char *dst = ke_ref_ptr(E, (kg_ref){v, 0});
    char ts[160];
    ke_line(E, "/* %s %s = %s */", ke_comment(E, n->name), kg_type_str(t, ts, sizeof ts), init);
    if (!strcmp(init, "zeros")) {
      ke_memset0(E, dst, kg_type_bytes(t));
    } else if (!strcmp(init, "ones")) {
      ke_line(E, "for (int64_t i = 0; i < %s; i++) ((%s *)%s)[i] = %s;", ke_i64(E, kg_shape_numel(&t->shape)),
              ke_ctype(t->dtype), dst, ke_const_f(E, t->dtype, 1));
    } else if (!strcmp(init, "value")) {
      const kg_attr *val = kg_node_attr(n, "value");
      ke_memcpy(E, dst, ke_const_data(E, val->tensor.data, kg_type_bytes(t), t->dtype, n->name), kg_type_bytes(t));
    } else if (!strcmp(init, "random_uniform")) {
      random_fill(E, v, 0, kg_attr_float(n, "minval", 0), kg_attr_float(n, "maxval", 1));
    } else if (!strcmp(init, "random_normal")) {
      random_fill(E, v, 1, kg_attr_float(n, "mean", 0), kg_attr_float(n, "stddev", 1));
    } else if (!strcmp(init, "npy")) {
      ke_declare(E, "kiln_npy_read",
                 "int kiln_npy_read(kiln_inst *inst, const char *path, int32_t dtype, int32_t rank, const int64_t "
                 "*dims, void *out)");
      ke_check(E, ke_str(E, "kiln_npy_read(inst, %s, %d, %d, %s, %s)", ke_cstring(E, kg_attr_str(n, "path", "")),
                         t->dtype, t->shape.rank, dims_table(E, t), dst));
    } else if (!strcmp(init, "truncated_normal")) {
      random_fill(E, v, 2, kg_attr_float(n, "mean", 0), kg_attr_float(n, "stddev", 1));
    } else if (!strcmp(init, "glorot_uniform")) {
      double lim = glorot_limit(&t->shape);
      random_fill(E, v, 0, -lim, lim);
    } else {
      ke_buf_free(&body);
      return ke_node_error(E, v, "internal: initializer '%s' has no C rendering", init);
    }
  }
  ke_puts(out, "/* the variable initializers (kiln_inst_create runs them once) */\n");
  write_function(E, out, ke_str(E, "static int %s__init(kiln_inst *inst)", E->sym), body.p, false);
  ke_buf_free(&body);
  return true;
}

/* ---- the program ---- */

typedef struct prog {
  ke_ctx *E;
  const kg_stmt **runs;
  int n_runs;
  const char *loop_exit; /* the innermost `loop`'s label, or NULL */
  bool *exit_used;
} prog;

static const char *out_of(prog *P, const kg_stmt *run) {
  for (int i = 0; i < P->n_runs; i++)
    if (P->runs[i] == run) return ke_str(P->E, "r%d", i);
  return "0";
}

static void collect_runs(prog *P, kg_stmt *const *s, int n) {
  for (int i = 0; i < n; i++) {
    if (s[i]->kind == KG_STMT_RUN) P->runs[P->n_runs++] = s[i];
    collect_runs(P, s[i]->body, s[i]->n_body);
  }
}

static int count_runs(kg_stmt *const *s, int n) {
  int k = 0;
  for (int i = 0; i < n; i++) k += (s[i]->kind == KG_STMT_RUN) + count_runs(s[i]->body, s[i]->n_body);
  return k;
}

static void stmts(prog *P, kg_stmt *const *s, int n);

static const char *step_value(ke_ctx *E, int node) {
  if (node < 0) return "(-1)";
  kiln_dtype dt = E->m->nodes[node].out[0].dtype;
  return ke_convert(E, ke_load(E, dt, ke_str(E, "((const %s *)%s)", ke_ctype(dt), ke_ref_ptr(E, (kg_ref){node, 0})), "0"),
                    dt, KILN_I64);
}

static void decl(ke_ctx *E, const char *name, const char *proto) { ke_declare(E, name, proto); }

static void stmt(prog *P, const kg_stmt *st) {
  ke_ctx *E = P->E;
  switch (st->kind) {
  case KG_STMT_RUN: {
    const char *fn = entry_name(E, st->entry);
    const char *call = ke_str(E, "%s(inst, 0, %s)", fn, out_of(P, st));
    ke_line(E, "/* run %s */", ke_comment(E, E->m->entries[st->entry].name));
    if (st->trace) {
      decl(E, "kiln_rt_trace_start", "int kiln_rt_trace_start(kiln_inst *inst)");
      decl(E, "kiln_rt_trace_finish", "int kiln_rt_trace_finish(kiln_inst *inst, const char *tag)");
      ke_check(E, "kiln_rt_trace_start(inst)");
      ke_block(E);
      ke_line(E, "int ts;");
      ke_line(E, "st = %s;", call);
      ke_line(E, "ts = kiln_rt_trace_finish(inst, %s);", st->text ? ke_cstring(E, st->text) : "0");
      ke_line(E, "if (st == 0) st = ts; /* the run's own failure matters more than the trace's */");
      ke_close(E);
    } else {
      ke_line(E, "st = %s;", call);
    }
    if (P->loop_exit) {
      ke_line(E, "if (st == 1) { st = 0; goto %s; } /* OutOfRange ends the loop */", P->loop_exit);
      *P->exit_used = true;
    }
    ke_line(E, "if (st != 0) goto done;");
    E->used_done = true;
    break;
  }
  case KG_STMT_REPEAT: {
    const char *r = ke_fresh(E, "rep");
    ke_open(E, "for (int64_t %s = 0; %s < %s; %s++)", r, r, ke_i64(E, st->count), r);
    stmts(P, st->body, st->n_body);
    ke_close(E);
    break;
  }
  case KG_STMT_LOOP: {
    const char *label = ke_fresh(E, "loop_end");
    const char *outer = P->loop_exit;
    bool *outer_used = P->exit_used, used = false;
    decl(E, "kiln_rt_should_stop", "int32_t kiln_rt_should_stop(kiln_inst *inst)");
    ke_open(E, "for (;;)");
    ke_line(E, "if (kiln_rt_should_stop(inst)) break; /* the coordinator asked to stop */");
    P->loop_exit = label;
    P->exit_used = &used;
    stmts(P, st->body, st->n_body);
    P->loop_exit = outer;
    P->exit_used = outer_used;
    ke_close(E);
    if (used) ke_line(E, "%s:;", label);
    break;
  }
  case KG_STMT_PRINT: {
    const kg_type *t = kg_ref_type(E->m, st->ref);
    const kc_entry_plan *ep = &E->plan->entries[st->source->entry];
    decl(E, "kiln_rt_print",
         "int kiln_rt_print(kiln_inst *inst, int32_t dtype, int32_t rank, const int64_t *dims, const void *data)");
    ke_check(E, ke_str(E, "kiln_rt_print(inst, %d, %d, %s, (uint8_t *)%s + %lld)", t->dtype, t->shape.rank,
                       dims_table(E, t), out_of(P, st->source), (long long)ep->out_offset[st->fetch_index]));
    break;
  }
  case KG_STMT_PRINT_TEXT:
    decl(E, "kiln_rt_print_text", "int kiln_rt_print_text(kiln_inst *inst, const char *text)");
    ke_check(E, ke_str(E, "kiln_rt_print_text(inst, %s)", ke_cstring(E, st->text)));
    break;
  case KG_STMT_CLOSE:
    decl(E, "kiln_rt_queue_close", "int kiln_rt_queue_close(kiln_inst *inst, int32_t qid, int32_t cancel_pending)");
    ke_check(E, ke_str(E, "kiln_rt_queue_close(inst, %d, %d)", E->plan->queue_id[st->node], (int)st->count));
    break;
  case KG_STMT_SAVE:
    decl(E, "kiln_rt_save", "int kiln_rt_save(kiln_inst *inst, const char *prefix, int64_t step, int32_t max_to_keep)");
    ke_check(E, ke_str(E, "kiln_rt_save(inst, %s, %s, %d)", ke_cstring(E, st->text), step_value(E, st->node), (int)st->count));
    break;
  case KG_STMT_RESTORE:
    decl(E, "kiln_rt_restore", "int kiln_rt_restore(kiln_inst *inst, const char *prefix)");
    ke_check(E, ke_str(E, "kiln_rt_restore(inst, %s)", ke_cstring(E, st->text)));
    break;
  case KG_STMT_SPAWN:
    decl(E, "kiln_rt_spawn", "int kiln_rt_spawn(kiln_inst *inst, int32_t count, int32_t entry, int32_t close_queue)");
    ke_check(E, ke_str(E, "kiln_rt_spawn(inst, %d, %d, %d)", (int)st->count, st->entry,
                       st->node >= 0 ? E->plan->queue_id[st->node] : -1));
    break;
  case KG_STMT_STOP:
    decl(E, "kiln_rt_request_stop", "int kiln_rt_request_stop(kiln_inst *inst)");
    ke_check(E, "kiln_rt_request_stop(inst)");
    break;
  case KG_STMT_JOIN:
    decl(E, "kiln_rt_join", "int kiln_rt_join(kiln_inst *inst, int64_t grace_ms)");
    ke_check(E, ke_str(E, "kiln_rt_join(inst, %s)", ke_i64(E, st->count)));
    break;
  case KG_STMT_SUMMARY_OPEN:
    decl(E, "kiln_rt_summary_open", "int kiln_rt_summary_open(kiln_inst *inst, const char *logdir)");
    ke_check(E, ke_str(E, "kiln_rt_summary_open(inst, %s)", ke_cstring(E, st->text)));
    break;
  case KG_STMT_SUMMARY_WRITE:
    decl(E, "kiln_rt_summary_write", "int kiln_rt_summary_write(kiln_inst *inst, int64_t step)");
    ke_check(E, ke_str(E, "kiln_rt_summary_write(inst, %s)", step_value(E, st->node)));
    break;
  case KG_STMT_SUMMARY_GRAPH: {
    size_t n = 0;
    const void *bytes = kc_graph_proto(E->m, &n);
    decl(E, "kiln_rt_summary_graph", "int kiln_rt_summary_graph(kiln_inst *inst, const void *graph_def, int64_t n)");
    ke_check(E, ke_str(E, "kiln_rt_summary_graph(inst, %s, %lld)",
                       n ? ke_const_data(E, bytes, (int64_t)n, KILN_U8, "graph_def") : "0", (long long)n));
    break;
  }
  case KG_STMT_SUMMARY_CLOSE:
    decl(E, "kiln_rt_summary_close", "int kiln_rt_summary_close(kiln_inst *inst)");
    ke_check(E, "kiln_rt_summary_close(inst)");
    break;
  }
}

static void stmts(prog *P, kg_stmt *const *s, int n) {
  for (int i = 0; i < n; i++) stmt(P, s[i]);
}

static void write_program(ke_ctx *E, ke_buf *out) {
  ke_buf body = {0};
  E->b = &body;
  E->ind = 1;
  E->used_done = false;
  int nr = count_runs(E->m->program, E->m->n_program);
  prog P = {E, calloc((size_t)nr + 1, sizeof(kg_stmt *)), 0, NULL, NULL};
  collect_runs(&P, E->m->program, E->m->n_program);
  for (int i = 0; i < P.n_runs; i++) {
    int64_t size = E->plan->entries[P.runs[i]->entry].out_size;
    ke_line(E, "uint64_t r%d[%lld]; /* the outputs of run %s (8-byte aligned) */", i,
            (long long)(size ? (size + 7) / 8 : 1), ke_comment(E, E->m->entries[P.runs[i]->entry].name));
  }
  stmts(&P, E->m->program, E->m->n_program);
  free(P.runs);
  ke_puts(out, "/* the module's program (the loop around sess.run) */\n");
  write_function(E, out, ke_str(E, "static int %s__program(kiln_inst *inst)", E->sym), body.p, false);
  ke_buf_free(&body);
}

/* ---- the module descriptor ---- */

static void tensor_desc(ke_ctx *E, ke_buf *b, const char *name, const kg_type *t, int64_t offset) {
  ke_printf(b, "  {%s, %d, %d, %s, %lld, %lld},\n", ke_cstring(E, name), t->dtype, t->shape.rank, dims_table(E, t),
            (long long)offset, (long long)kg_type_bytes(t));
}

static void write_descriptor(ke_ctx *E, ke_buf *out, bool program) {
  kg_module *m = E->m;
  ke_buf b = {0};
  int nv = 0, nq = 0;
  ke_buf vars = {0};
  for (int v = 0; v < m->n_nodes; v++)
    if (m->nodes[v].op == KC_OP_VARIABLE) {
      tensor_desc(E, &vars, m->nodes[v].name, &m->nodes[v].out[0], E->plan->var_offset[v]);
      nv++;
    }
  if (nv) ke_printf(&b, "static const kiln_tensor_desc %s__vars[] = {\n%s};\n", E->sym, vars.p);
  ke_buf_free(&vars);
  /* queues in queue-id order */
  const char **qtext = calloc((size_t)m->n_nodes + 1, sizeof *qtext);
  for (int v = 0; v < m->n_nodes; v++) {
    const kg_node *n = &m->nodes[v];
    if (n->op != KC_OP_QUEUE) continue;
    ke_buf comp = {0};
    for (int i = 0; i < n->n_comp; i++) tensor_desc(E, &comp, n->name, &n->comp[i], 0);
    const char *cname = ke_fresh(E, ke_str(E, "%s__qcomp", E->sym));
    if (n->n_comp) ke_printf(&b, "static const kiln_tensor_desc %s[] = {\n%s};\n", cname, comp.p);
    ke_buf_free(&comp);
    bool shuffle = !strcmp(kg_attr_str(n, "kind", "fifo"), "random_shuffle");
    qtext[E->plan->queue_id[v]] =
        ke_str(E, "  {%s, %s, %d, %d, %s, %s, %lluULL},\n", ke_cstring(E, n->name), ke_i64(E, kg_attr_int(n, "capacity", 1)),
               n->n_comp, shuffle ? 1 : 0, n->n_comp ? cname : "0", ke_i64(E, kg_attr_int(n, "min_after_dequeue", 0)),
               (unsigned long long)(shuffle ? kc_node_seed(n) : 0));
    nq++;
  }
  if (nq) {
    ke_printf(&b, "static const kiln_queue_desc %s__queues[] = {\n", E->sym);
    for (int i = 0; i < nq; i++) ke_puts(&b, qtext[i]);
    ke_puts(&b, "};\n");
  }
  free(qtext);
  for (int ei = 0; ei < m->n_entries; ei++) {
    const kg_entry *e = &m->entries[ei];
    const kc_entry_plan *ep = &E->plan->entries[ei];
    ke_buf in = {0}, outs = {0};
    int n_out = 0;
    for (int i = 0; i < e->n_feeds; i++)
      tensor_desc(E, &in, m->nodes[e->feeds[i]].name, &m->nodes[e->feeds[i]].out[0], ep->in_offset[i]);
    for (int i = 0; i < e->n_fetches; i++) {
      const kg_type *t = kg_ref_type(m, e->fetches[i]);
      if (!t) continue;
      tensor_desc(E, &outs, kc_fetch_name(m, e, i), t, ep->out_offset[i]);
      n_out++;
    }
    if (e->n_feeds) ke_printf(&b, "static const kiln_tensor_desc %s__in%d[] = {\n%s};\n", E->sym, ei, in.p);
    if (n_out) ke_printf(&b, "static const kiln_tensor_desc %s__out%d[] = {\n%s};\n", E->sym, ei, outs.p);
    ke_buf_free(&in);
    ke_buf_free(&outs);
  }
  if (m->n_entries) {
    ke_printf(&b, "static const kiln_entry_desc %s__entries[] = {\n", E->sym);
    for (int ei = 0; ei < m->n_entries; ei++) {
      const kg_entry *e = &m->entries[ei];
      const kc_entry_plan *ep = &E->plan->entries[ei];
      int n_out = 0;
      for (int i = 0; i < e->n_fetches; i++) n_out += kg_ref_type(m, e->fetches[i]) != NULL;
      ke_printf(&b, "  {%s, %s, %d, %d, %s, %s, %lld, %lld},\n", ke_cstring(E, e->name), entry_name(E, ei), e->n_feeds,
                n_out, e->n_feeds ? ke_str(E, "%s__in%d", E->sym, ei) : "0",
                n_out ? ke_str(E, "%s__out%d", E->sym, ei) : "0", (long long)ep->in_size, (long long)ep->out_size);
    }
    ke_puts(&b, "};\n");
  }
  const char *weights = ke_weights_desc(E);
  /* the constants and tables the functions and the descriptor use, first */
  ke_puts(out, "/* ---- constants and index tables ---- */\n\n");
  ke_puts(out, E->data.p ? E->data.p : "");
  ke_buf_free(&E->data);
  ke_puts(out, "\n/* ---- the module descriptor libkilnrt reads (struct kiln_module_desc) ---- */\n\n");
  ke_puts(out, b.p ? b.p : "");
  ke_printf(out,
            "const kiln_module_desc %s_desc = {\n  %s, %lld, %lld, %d, %d, %d, %d,\n  %s, %s, %s,\n  %s__init, %s, %s, 0\n};\n\n",
            E->sym, ke_cstring(E, m->name), (long long)E->plan->vars_size, (long long)E->plan->arena_size, nv, nq,
            m->n_entries, E->plan->n_random, nv ? ke_str(E, "%s__vars", E->sym) : "0",
            nq ? ke_str(E, "%s__queues", E->sym) : "0", m->n_entries ? ke_str(E, "%s__entries", E->sym) : "0", E->sym,
            program ? ke_str(E, "%s__program", E->sym) : "0", weights);
  ke_buf_free(&b);
}

/* ---- the translation unit ---- */

static const char abi[] =
    "/* ---- the ABI of libkilnrt (runtime/kilnrt.h), declared here so that this file\n"
    " * needs no header: the layouts must match kilnrt.h field for field ---- */\n"
    "typedef struct kiln_inst kiln_inst;\n"
    "struct kiln_inst { /* the leading fields; the runtime's private ones follow */\n"
    "  uint8_t *vars;              /* variable storage (the plan's var@ offsets) */\n"
    "  uint8_t *arena;             /* scratch (the plan's arena@ offsets) */\n"
    "  void **queues;\n"
    "  uint64_t *random_counters;  /* one per random op */\n"
    "  int32_t tracing;            /* non-zero during a traced run */\n"
    "};\n"
    "typedef struct kiln_tensor_desc {\n"
    "  const char *name;\n  int32_t dtype, rank;\n  const int64_t *dims;\n  int64_t offset, nbytes;\n"
    "} kiln_tensor_desc;\n"
    "typedef struct kiln_entry_desc {\n"
    "  const char *name;\n  int (*fn)(kiln_inst *inst, const void *in, void *out);\n  int32_t n_in, n_out;\n"
    "  const kiln_tensor_desc *in, *out;\n  int64_t in_size, out_size;\n"
    "} kiln_entry_desc;\n"
    "typedef struct kiln_queue_desc {\n"
    "  const char *name;\n  int64_t capacity;\n  int32_t n_comp, kind;\n  const kiln_tensor_desc *comp;\n"
    "  int64_t min_after_dequeue;\n  uint64_t seed;\n"
    "} kiln_queue_desc;\n"
    "typedef struct kiln_weights_desc {\n"
    "  const char *file;\n  int64_t total_size;\n  uint32_t data_crc;\n  int32_t n_blobs;\n"
    "  uint8_t *const *blobs;\n  const int64_t *sizes;\n  int32_t *loaded;\n"
    "} kiln_weights_desc;\n"
    "typedef struct kiln_module_desc {\n"
    "  const char *name;\n  int64_t vars_size, arena_size;\n  int32_t n_vars, n_queues, n_entries, n_random;\n"
    "  const kiln_tensor_desc *vars;\n  const kiln_queue_desc *queues;\n  const kiln_entry_desc *entries;\n"
    "  int (*init)(kiln_inst *inst);\n  int (*program)(kiln_inst *inst);\n  const kiln_weights_desc *weights;\n"
    "  const void *gpu; /* kiln_gpu_desc: always 0 here, every node runs on the CPU */\n"
    "} kiln_module_desc;\n"
    "int kiln_fail(kiln_inst *inst, int status, const char *fmt, ...);\n"
    "void kiln_rt_trace_begin(kiln_inst *inst);\n"
    "void kiln_rt_trace_end(kiln_inst *inst, const char *node, const char *op, int64_t bytes);\n"
    "/* a traced run (--trace, RunOptions FULL_TRACE) times every node */\n"
    "#define KILN_TRACE_BEGIN() if (inst->tracing) kiln_rt_trace_begin(inst)\n"
    "#define KILN_TRACE_END(node, op, bytes) if (inst->tracing) kiln_rt_trace_end(inst, node, op, bytes)\n";

bool kc_emitc_write(kg_module *m, const kc_plan *p, const kc_emitc_options *co, FILE *f, kc_diag *d) {
  ke_ctx E = {0};
  E.diag = d;
  E.m = m;
  E.plan = p;
  E.sym = kc_symbol_prefix(m);
  E.generated_blas = co->generated_blas;
  E.weights_file = co->weights_file;
  E.static_limit = co->static_limit ? co->static_limit : KC_EMITC_STATIC_LIMIT;
  E.node_const = calloc((size_t)m->n_nodes + 1, sizeof *E.node_const);
  ke_buf fns = {0};
  bool ok = true;
  for (int i = 0; ok && i < m->n_entries; i++) ok = write_entry(&E, i, &fns);
  if (ok) ok = write_init(&E, &fns);
  if (ok && m->has_program) write_program(&E, &fns);
  if (ok && !E.failed && !E.weights_file && E.const_bytes > E.static_limit)
    ok = kc_error(d, (kc_loc){m->file, 0, 0},
                  "module '%s' has %lld bytes of constants, over the C backend's limit of %lld bytes for static arrays "
                  "(docs/c-backend.md): build with --weights-file to put them in the checksummed side file",
                  m->name, (long long)E.const_bytes, (long long)E.static_limit);
  ok = ok && !E.failed && !d->n_errors;
  if (ok) {
    ke_buf desc = {0};
    write_descriptor(&E, &desc, m->has_program);
    fprintf(f, "/* %s.c — generated by kiln's C backend from %s; do not edit.\n", E.sym, m->file ? ke_comment(&E, m->file) : "?");
    fputs(" *\n"
          " * One C99 translation unit: the module's entry points (one block per node of the\n"
          " * schedule, over the offsets the memory plan chose), its variable initializer, its\n"
          " * program and the descriptor libkilnrt reads; the header of `kiln build -c` declares\n"
          " * the entry points.  Build:\n"
          " *   cc -std=c99 -O2 -fno-strict-aliasing -c MODEL.c                  (embedding; with MODEL.h)\n"
          " *   cc -std=c99 -O2 -fno-strict-aliasing -DKILN_MAIN MODEL.c libkilnrt.a -lopenblas -lpthread -lm\n"
          " * -fno-strict-aliasing: the scratch arena holds tensors of different dtypes at the\n"
          " * same offsets over a run.  -lopenblas only when the code calls cblas_sgemm/dgemm. */\n",
          f);
    fputs("#include <math.h>\n#include <stdint.h>\n#include <string.h>\n\n", f);
    fputs(abi, f);
    if (E.decls.p) fprintf(f, "\n/* ---- the runtime and library functions this module calls ---- */\n%s", E.decls.p);
    if (E.helpers.p) fprintf(f, "\n/* ---- scalar helpers (kiln's arithmetic, as the LLVM backend's kl_prim) ---- */\n\n%s", E.helpers.p);
    fputs("\n/* ---- entry points ---- */\n", f);
    for (int i = 0; i < m->n_entries; i++)
      fprintf(f, "%sint %s(kiln_inst *inst, const void *in, void *out);\n", m->entries[i].synthesized ? "static " : "",
              entry_name(&E, i));
    fprintf(f, "static int %s__init(kiln_inst *inst);\n", E.sym);
    if (m->has_program) fprintf(f, "static int %s__program(kiln_inst *inst);\n", E.sym);
    fprintf(f, "extern const kiln_module_desc %s_desc;\n\n", E.sym);
    fputs(desc.p, f);
    fputs("\n/* ---- functions ---- */\n\n", f);
    fputs(fns.p ? fns.p : "", f);
    fprintf(f, "#ifdef KILN_MAIN\n/* a standalone binary: libkilnrt's main (runtime/main.c) */\n"
               "int kiln_main(int argc, char **argv, const kiln_module_desc *desc);\n"
               "int main(int argc, char **argv) { return kiln_main(argc, argv, &%s_desc); }\n#endif\n",
            E.sym);
    ke_buf_free(&desc);
    if (co->weights_path && E.weights_file) ok = ke_weights_write(&E, co->weights_path);
  }
  ke_buf_free(&fns);
  ke_buf_free(&E.data);
  ke_buf_free(&E.helpers);
  ke_buf_free(&E.decls);
  free(E.helper_names);
  free(E.node_const);
  free(E.blobs);
  return ok && fflush(f) == 0;
}
