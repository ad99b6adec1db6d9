/* lower.c — whole-module lowering: one native function per entry point,
 * the variable initializer, the program, the module descriptor that
 * libkilnrt reads, and `main` for standalone binaries.
 *
 * Entry functions follow the schedule of the plan and call each node's
 * lowering from the op table; buffers are arena/variable/feed offsets that
 * the planner fixed, so the generated code allocates nothing. */
#include "lower/lower.h"
#include "lower/symbols.h"
#include "driver/graphproto.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void init_ctx(kl_ctx *L, kg_module *m, const kc_plan *plan, const kc_target *t, LLVMContextRef C,
                     LLVMModuleRef M, kc_diag *d) {
  memset(L, 0, sizeof *L);
  L->diag = d;
  L->m = m;
  L->plan = plan;
  L->target = t;
  L->C = C;
  L->M = M;
  L->B = LLVMCreateBuilderInContext(C);
  L->t_void = LLVMVoidTypeInContext(C);
  L->t_i1 = LLVMInt1TypeInContext(C);
  L->t_i8 = LLVMInt8TypeInContext(C);
  L->t_i32 = LLVMInt32TypeInContext(C);
  L->t_i64 = LLVMInt64TypeInContext(C);
  L->t_f32 = LLVMFloatTypeInContext(C);
  L->t_f64 = LLVMDoubleTypeInContext(C);
  L->t_ptr = LLVMPointerTypeInContext(C, 0);
  L->node_const = calloc((size_t)m->n_nodes + 1, sizeof(LLVMValueRef));
}

/* Opens a function returning i32 status with an exit block; loads the
 * instance's base pointers. */
static void begin_function(kl_ctx *L, LLVMValueRef fn) {
  L->fn = fn;
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(L->C, fn, "entry");
  L->exit_bb = LLVMAppendBasicBlockInContext(L->C, fn, "exit");
  LLVMPositionBuilderAtEnd(L->B, entry);
  L->inst = LLVMGetParam(fn, 0);
  L->status_slot = LLVMBuildAlloca(L->B, L->t_i32, "status");
  LLVMBuildStore(L->B, kl_i32(L, 0), L->status_slot);
  LLVMTypeRef it = kl_inst_type(L);
  L->vars = LLVMBuildLoad2(L->B, L->t_ptr, LLVMBuildStructGEP2(L->B, it, L->inst, 0, ""), "vars");
  L->arena = LLVMBuildLoad2(L->B, L->t_ptr, LLVMBuildStructGEP2(L->B, it, L->inst, 1, ""), "arena");
}

static void end_function(kl_ctx *L) {
  LLVMBuildBr(L->B, L->exit_bb);
  LLVMPositionBuilderAtEnd(L->B, L->exit_bb);
  LLVMBuildRet(L->B, LLVMBuildLoad2(L->B, L->t_i32, L->status_slot, ""));
}

static LLVMTypeRef entry_fn_type(kl_ctx *L) {
  LLVMTypeRef p[] = {L->t_ptr, L->t_ptr, L->t_ptr};
  return LLVMFunctionType(L->t_i32, p, 3, 0);
}

/* if (tracing) kiln_rt_trace_begin/end(...) around node v. */
static void trace_call(kl_ctx *L, LLVMValueRef tracing, int v, bool begin) {
  const kg_node *n = &L->m->nodes[v];
  LLVMBasicBlockRef on = LLVMAppendBasicBlockInContext(L->C, L->fn, "trace");
  LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(L->C, L->fn, "traced");
  LLVMBuildCondBr(L->B, tracing, on, cont);
  LLVMPositionBuilderAtEnd(L->B, on);
  if (begin) {
    kl_call(L, "kiln_rt_trace_begin", L->t_void, &L->inst, 1);
  } else {
    int64_t bytes = 0;
    for (int k = 0; k < n->n_out; k++) bytes += kg_type_bytes(&n->out[k]);
    LLVMValueRef args[] = {L->inst, LLVMBuildGlobalStringPtr(L->B, n->name, "node"),
                           LLVMBuildGlobalStringPtr(L->B, kc_ops[n->op].name, "op"), kl_i64(L, bytes)};
    kl_call(L, "kiln_rt_trace_end", L->t_void, args, 4);
  }
  LLVMBuildBr(L->B, cont);
  LLVMPositionBuilderAtEnd(L->B, cont);
}

static bool lower_entry(kl_ctx *L, int ei, LLVMValueRef fn) {
  const kg_entry *e = &L->m->entries[ei];
  const kc_entry_plan *ep = &L->plan->entries[ei];
  bool part_ok;
  if (kl_lower_partitioned_entry(L, ei, fn, &part_ok)) return part_ok; /* several CPU devices */
  L->entry = e;
  L->ep = ep;
  begin_function(L, fn);
  L->in_struct = LLVMGetParam(fn, 1);
  L->out_struct = LLVMGetParam(fn, 2);
  /* a traced run reports each node's times; untraced runs pay one
   * predictable branch per node */
  LLVMValueRef tr = LLVMBuildLoad2(L->B, L->t_i32, LLVMBuildStructGEP2(L->B, kl_inst_type(L), L->inst, 4, ""), "tracing");
  LLVMValueRef tracing = LLVMBuildICmp(L->B, LLVMIntNE, tr, kl_i32(L, 0), "");
  for (int i = 0; i < ep->n_sched; i++) {
    int v = ep->sched[i];
    const kg_node *n = &L->m->nodes[v];
    bool work = n->op != KC_OP_VARIABLE && n->op != KC_OP_PLACEHOLDER && n->op != KC_OP_CONST && n->op != KC_OP_QUEUE;
    if (work) trace_call(L, tracing, v, true);
    if (!kl_lower_node(L, v)) return false;
    if (work) trace_call(L, tracing, v, false);
  }
  for (int i = 0; i < e->n_fetches; i++) {
    if (ep->out_offset[i] < 0 || ep->fetch_direct[i]) continue;
    LLVMValueRef idx = kl_i64(L, ep->out_offset[i]);
    LLVMValueRef dst = LLVMBuildGEP2(L->B, L->t_i8, L->out_struct, &idx, 1, "");
    kl_memcpy(L, dst, kl_ref_ptr(L, e->fetches[i]), kg_type_bytes(kg_ref_type(L->m, e->fetches[i])));
  }
  kl_gpu_entry_end(L);
  end_function(L);
  L->ep = NULL;
  L->entry = NULL;
  return true;
}

/* ---- variable initializers ---- */

static void random_fill(kl_ctx *L, int v, int kind, double a, double b) {
  const kg_node *n = &L->m->nodes[v];
  LLVMValueRef args[] = {L->inst,
                         kl_i32(L, n->out[0].dtype),
                         kl_i32(L, kind),
                         kl_i64(L, kg_shape_numel(&n->out[0].shape)),
                         kl_ref_ptr(L, (kg_ref){v, 0}),
                         LLVMConstReal(L->t_f64, a),
                         LLVMConstReal(L->t_f64, b),
                         kl_i64(L, (int64_t)kc_node_seed(n)),
                         kl_random_counter(L, v)};
  kl_check(L, kl_call(L, "kiln_rt_random", L->t_i32, args, 9));
}

/* Glorot/Xavier uniform as Keras computes fans: the last two dimensions,
 * times the receptive field of any leading ones. */
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

static bool lower_init(kl_ctx *L, LLVMValueRef fn) {
  begin_function(L, fn);
  for (int v = 0; v < L->m->n_nodes; v++) {
    const kg_node *n = &L->m->nodes[v];
    if (n->op != KC_OP_VARIABLE) continue;
    const char *init = kg_attr_str(n, "init", "zeros");
    const kg_type *t = &n->out[0];
    LLVMValueRef dst = kl_ref_ptr(L, (kg_ref){v, 0});
    if (!strcmp(init, "zeros")) {
      kl_memset0(L, dst, kg_type_bytes(t));
    } else if (!strcmp(init, "ones")) {
      kl_loop lp = kl_for(L, kl_i64(L, kg_shape_numel(&t->shape)), "ones");
      kl_store(L, t->dtype, dst, lp.index, kl_const_f(L, t->dtype, 1));
      kl_for_end(L, &lp);
    } else if (!strcmp(init, "value")) {
      const kg_attr *val = kg_node_attr(n, "value");
      kl_memcpy(L, dst, kl_const_data(L, val->tensor.data, kg_type_bytes(t), n->name), kg_type_bytes(t));
    } else if (!strcmp(init, "random_uniform")) {
      random_fill(L, v, 0, kg_attr_float(n, "minval", 0), kg_attr_float(n, "maxval", 1));
    } else if (!strcmp(init, "random_normal")) {
      random_fill(L, v, 1, kg_attr_float(n, "mean", 0), kg_attr_float(n, "stddev", 1));
    } else if (!strcmp(init, "npy")) { /* read at start-up, relative to the working directory */
      LLVMValueRef dims = t->shape.rank ? kl_const_i64s(L, t->shape.dim, t->shape.rank, "dims") : LLVMConstNull(L->t_ptr);
      LLVMValueRef args[] = {L->inst, LLVMBuildGlobalStringPtr(L->B, kg_attr_str(n, "path", ""), "path"),
                             kl_i32(L, t->dtype), kl_i32(L, t->shape.rank), dims, dst};
      kl_check(L, kl_call(L, "kiln_npy_read", L->t_i32, args, 6));
    } else if (!strcmp(init, "truncated_normal")) {
      random_fill(L, v, 2, kg_attr_float(n, "mean", 0), kg_attr_float(n, "stddev", 1));
    } else if (!strcmp(init, "glorot_uniform")) {
      double lim = glorot_limit(&t->shape);
      random_fill(L, v, 0, -lim, lim);
    } else {
      return kc_error(L->diag, n->loc, "internal: initializer '%s' has no lowering", init);
    }
  }
  end_function(L);
  return true;
}

/* ---- the program ---- */

typedef struct prog_ctx {
  kl_ctx *L;
  LLVMValueRef *run_out; /* per run statement (by address order): its out struct */
  const kg_stmt **runs;
  int n_runs;
  LLVMValueRef *entry_fns;
  LLVMBasicBlockRef loop_exit; /* innermost `loop`: where OutOfRange goes */
} prog_ctx;

static LLVMValueRef out_of(prog_ctx *P, const kg_stmt *run) {
  for (int i = 0; i < P->n_runs; i++)
    if (P->runs[i] == run) return P->run_out[i];
  return NULL;
}

static void collect_runs(kl_ctx *L, prog_ctx *P, kg_stmt *const *s, int n) {
  for (int i = 0; i < n; i++) {
    if (s[i]->kind == KG_STMT_RUN) {
      const kc_entry_plan *ep = &L->plan->entries[s[i]->entry];
      LLVMTypeRef ty = LLVMArrayType2(L->t_i8, (uint64_t)(ep->out_size ? ep->out_size : 1));
      LLVMValueRef a = LLVMBuildAlloca(L->B, ty, "out");
      LLVMSetAlignment(a, 64);
      P->runs[P->n_runs] = s[i];
      P->run_out[P->n_runs++] = a;
    }
    collect_runs(L, P, s[i]->body, s[i]->n_body);
  }
}

static int count_runs(kg_stmt *const *s, int n) {
  int k = 0;
  for (int i = 0; i < n; i++) k += (s[i]->kind == KG_STMT_RUN) + count_runs(s[i]->body, s[i]->n_body);
  return k;
}

static void emit_stmts(prog_ctx *P, kg_stmt *const *s, int n);

/* The value of a scalar integer step variable as i64, or -1 when none. */
static LLVMValueRef step_value(kl_ctx *L, int node) {
  if (node < 0) return kl_i64(L, -1);
  kiln_dtype dt = L->m->nodes[node].out[0].dtype;
  return kl_convert(L, kl_load(L, dt, kl_ref_ptr(L, (kg_ref){node, 0}), kl_i64(L, 0)), dt, KILN_I64);
}

static void emit_stmt(prog_ctx *P, const kg_stmt *st) {
  kl_ctx *L = P->L;
  switch (st->kind) {
  case KG_STMT_RUN: {
    if (st->trace) kl_check(L, kl_call(L, "kiln_rt_trace_start", L->t_i32, &L->inst, 1));
    LLVMValueRef args[] = {L->inst, LLVMConstNull(L->t_ptr), out_of(P, st)};
    LLVMValueRef status = LLVMBuildCall2(L->B, entry_fn_type(L), P->entry_fns[st->entry], args, 3, "");
    if (st->trace) {
      LLVMValueRef fa[] = {L->inst, st->text ? LLVMBuildGlobalStringPtr(L->B, st->text, "tag") : LLVMConstNull(L->t_ptr)};
      LLVMValueRef ts = kl_call(L, "kiln_rt_trace_finish", L->t_i32, fa, 2);
      /* the run's own failure matters more than the trace's */
      status = LLVMBuildSelect(L->B, LLVMBuildICmp(L->B, LLVMIntNE, status, kl_i32(L, 0), ""), status, ts, "");
    }
    if (P->loop_exit) { /* OutOfRange ends the innermost loop */
      LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(L->C, L->fn, "go");
      LLVMValueRef oor = LLVMBuildICmp(L->B, LLVMIntEQ, status, kl_i32(L, 1), "");
      LLVMBuildCondBr(L->B, oor, P->loop_exit, go);
      LLVMPositionBuilderAtEnd(L->B, go);
    }
    kl_check(L, status);
    break;
  }
  case KG_STMT_REPEAT: {
    kl_loop lp = kl_for(L, kl_i64(L, st->count), "repeat");
    emit_stmts(P, st->body, st->n_body);
    kl_for_end(L, &lp);
    break;
  }
  case KG_STMT_LOOP: {
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(L->C, L->fn, "loop");
    LLVMBasicBlockRef work = LLVMAppendBasicBlockInContext(L->C, L->fn, "loop_body");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(L->C, L->fn, "loop_done");
    LLVMBasicBlockRef outer = P->loop_exit;
    LLVMBuildBr(L->B, body);
    LLVMPositionBuilderAtEnd(L->B, body);
    /* a loop also ends when the coordinator was asked to stop */
    LLVMValueRef stop = kl_call(L, "kiln_rt_should_stop", L->t_i32, &L->inst, 1);
    LLVMBuildCondBr(L->B, LLVMBuildICmp(L->B, LLVMIntNE, stop, kl_i32(L, 0), ""), done, work);
    LLVMPositionBuilderAtEnd(L->B, work);
    P->loop_exit = done;
    emit_stmts(P, st->body, st->n_body);
    P->loop_exit = outer;
    LLVMBuildBr(L->B, body);
    LLVMPositionBuilderAtEnd(L->B, done);
    break;
  }
  case KG_STMT_PRINT: {
    const kg_type *t = kg_ref_type(L->m, st->ref);
    const kc_entry_plan *ep = &L->plan->entries[st->source->entry];
    LLVMValueRef idx = kl_i64(L, ep->out_offset[st->fetch_index]);
    LLVMValueRef data = LLVMBuildGEP2(L->B, L->t_i8, out_of(P, st->source), &idx, 1, "");
    LLVMValueRef dims = t->shape.rank ? kl_const_i64s(L, t->shape.dim, t->shape.rank, "dims") : LLVMConstNull(L->t_ptr);
    LLVMValueRef args[] = {L->inst, kl_i32(L, t->dtype), kl_i32(L, t->shape.rank), dims, data};
    kl_check(L, kl_call(L, "kiln_rt_print", L->t_i32, args, 5));
    break;
  }
  case KG_STMT_PRINT_TEXT: {
    LLVMValueRef s = LLVMBuildGlobalStringPtr(L->B, st->text, "text");
    LLVMValueRef args[] = {L->inst, s};
    kl_check(L, kl_call(L, "kiln_rt_print_text", L->t_i32, args, 2));
    break;
  }
  case KG_STMT_CLOSE: {
    LLVMValueRef args[] = {L->inst, kl_i32(L, L->plan->queue_id[st->node]), kl_i32(L, st->count)};
    kl_check(L, kl_call(L, "kiln_rt_queue_close", L->t_i32, args, 3));
    break;
  }
  case KG_STMT_SAVE: {
    /* a step counter on a GPU is read from the host copy: bring it up to date */
    const char *sdev = st->node >= 0 ? L->m->nodes[st->node].device : NULL;
    if (L->gpu_host && sdev && !strncmp(sdev, "gpu:", 4))
      kl_check(L, kl_call(L, "kiln_rt_gpu_vars_to_host", L->t_i32, &L->inst, 1));
    LLVMValueRef args[] = {L->inst, LLVMBuildGlobalStringPtr(L->B, st->text, "ckpt"), step_value(L, st->node),
                           kl_i32(L, st->count)};
    kl_check(L, kl_call(L, "kiln_rt_save", L->t_i32, args, 4));
    break;
  }
  case KG_STMT_RESTORE: {
    LLVMValueRef args[] = {L->inst, LLVMBuildGlobalStringPtr(L->B, st->text, "ckpt")};
    kl_check(L, kl_call(L, "kiln_rt_restore", L->t_i32, args, 2));
    break;
  }
  case KG_STMT_SPAWN: {
    LLVMValueRef args[] = {L->inst, kl_i32(L, st->count), kl_i32(L, st->entry),
                           kl_i32(L, st->node >= 0 ? L->plan->queue_id[st->node] : -1)};
    kl_check(L, kl_call(L, "kiln_rt_spawn", L->t_i32, args, 4));
    break;
  }
  case KG_STMT_STOP: kl_check(L, kl_call(L, "kiln_rt_request_stop", L->t_i32, &L->inst, 1)); break;
  case KG_STMT_JOIN: {
    LLVMValueRef args[] = {L->inst, kl_i64(L, st->count)};
    kl_check(L, kl_call(L, "kiln_rt_join", L->t_i32, args, 2));
    break;
  }
  case KG_STMT_SUMMARY_OPEN: {
    LLVMValueRef args[] = {L->inst, LLVMBuildGlobalStringPtr(L->B, st->text, "logdir")};
    kl_check(L, kl_call(L, "kiln_rt_summary_open", L->t_i32, args, 2));
    break;
  }
  case KG_STMT_SUMMARY_WRITE: {
    LLVMValueRef args[] = {L->inst, step_value(L, st->node)};
    kl_check(L, kl_call(L, "kiln_rt_summary_write", L->t_i32, args, 2));
    break;
  }
  case KG_STMT_SUMMARY_GRAPH: {
    size_t n = 0;
    const void *bytes = kc_graph_proto(L->m, &n);
    LLVMValueRef args[] = {L->inst, n ? kl_const_data(L, bytes, (int64_t)n, "graph_def") : LLVMConstNull(L->t_ptr),
                           kl_i64(L, (int64_t)n)};
    kl_check(L, kl_call(L, "kiln_rt_summary_graph", L->t_i32, args, 3));
    break;
  }
  case KG_STMT_SUMMARY_CLOSE: kl_check(L, kl_call(L, "kiln_rt_summary_close", L->t_i32, &L->inst, 1)); break;
  }
}

static void emit_stmts(prog_ctx *P, kg_stmt *const *s, int n) {
  for (int i = 0; i < n; i++) emit_stmt(P, s[i]);
}

static void lower_program(kl_ctx *L, LLVMValueRef fn, LLVMValueRef *entry_fns) {
  begin_function(L, fn);
  prog_ctx P = {L, NULL, NULL, 0, entry_fns, NULL};
  int nr = count_runs(L->m->program, L->m->n_program);
  P.run_out = calloc((size_t)nr + 1, sizeof(LLVMValueRef));
  P.runs = calloc((size_t)nr + 1, sizeof(kg_stmt *));
  collect_runs(L, &P, L->m->program, L->m->n_program);
  emit_stmts(&P, L->m->program, L->m->n_program);
  end_function(L);
  free(P.run_out);
  free(P.runs);
}

/* ---- the module ---- */

LLVMModuleRef kl_lower_module(kg_module *m, const kc_plan *plan, const kc_target *t, LLVMContextRef C,
                              bool with_main, kc_diag *d) {
  LLVMModuleRef M = LLVMModuleCreateWithNameInContext(m->name, C);
  kc_target_configure(t, M);
  kl_ctx L;
  init_ctx(&L, m, plan, t, C, M, d);
  const char *sym = kc_symbol_prefix(m);
  bool ok = kl_gpu_host_begin(&L);
  LLVMValueRef *fns = calloc((size_t)m->n_entries + 1, sizeof(LLVMValueRef));
  for (int i = 0; i < m->n_entries; i++) {
    char name[512];
    snprintf(name, sizeof name, "%s_%s", sym, kc_symbol(m->arena, m->entries[i].name));
    fns[i] = LLVMAddFunction(M, name, entry_fn_type(&L));
    if (m->entries[i].synthesized) LLVMSetLinkage(fns[i], LLVMInternalLinkage);
  }
  for (int i = 0; ok && i < m->n_entries; i++) ok = lower_entry(&L, i, fns[i]);
  LLVMTypeRef pty[] = {L.t_ptr};
  LLVMTypeRef init_ty = LLVMFunctionType(L.t_i32, pty, 1, 0);
  LLVMValueRef init = LLVMAddFunction(M, kc_sprintf(m->arena, "%s__init", sym), init_ty);
  LLVMSetLinkage(init, LLVMInternalLinkage);
  if (ok) ok = lower_init(&L, init);
  LLVMValueRef program = NULL;
  if (ok && m->has_program) {
    program = LLVMAddFunction(M, kc_sprintf(m->arena, "%s__program", sym), init_ty);
    LLVMSetLinkage(program, LLVMInternalLinkage);
    lower_program(&L, program, fns);
  }
  if (ok) {
    LLVMValueRef desc = kl_emit_descriptor(&L, sym, fns, init, program);
    if (with_main) {
      LLVMTypeRef mp[] = {L.t_i32, L.t_ptr};
      LLVMValueRef mainf = LLVMAddFunction(M, "main", LLVMFunctionType(L.t_i32, mp, 2, 0));
      LLVMPositionBuilderAtEnd(L.B, LLVMAppendBasicBlockInContext(C, mainf, "entry"));
      L.fn = mainf;
      LLVMValueRef args[] = {LLVMGetParam(mainf, 0), LLVMGetParam(mainf, 1), desc};
      LLVMBuildRet(L.B, kl_call(&L, "kiln_main", L.t_i32, args, 3));
    }
  }
  free(fns);
  free(L.node_const);
  kl_gpu_host_end(&L);
  LLVMDisposeBuilder(L.B);
  if (!ok || d->n_errors) {
    LLVMDisposeModule(M);
    return NULL;
  }
  return M;
}
