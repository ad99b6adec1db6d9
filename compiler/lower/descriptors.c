/* descriptors.c — the module descriptor (struct kiln_module_desc of
 * runtime/kilnrt.h) as LLVM constants: what libkilnrt's main and the
 * embedding header need to know about entries, variables and queues.
 * The struct layouts here mirror kilnrt.h field for field. */
#include "lower/lower.h"
#include "lower/weights.h"
#include <stdlib.h>
#include <string.h>

static LLVMTypeRef tensor_desc_type(kl_ctx *L) {
  LLVMTypeRef f[] = {L->t_ptr, L->t_i32, L->t_i32, L->t_ptr, L->t_i64, L->t_i64};
  return LLVMStructTypeInContext(L->C, f, 6, 0);
}

static LLVMValueRef tensor_desc(kl_ctx *L, const char *name, const kg_type *t, int64_t offset) {
  LLVMValueRef dims = t->shape.rank ? kl_const_i64s(L, t->shape.dim, t->shape.rank, "dims") : LLVMConstNull(L->t_ptr);
  LLVMValueRef f[] = {kl_const_string(L, name, "str"), kl_i32(L, t->dtype), kl_i32(L, t->shape.rank), dims, kl_i64(L, offset),
                      kl_i64(L, kg_type_bytes(t))};
  return LLVMConstNamedStruct(tensor_desc_type(L), f, 6);
}

static LLVMValueRef entry_desc(kl_ctx *L, int ei, LLVMValueRef fn, LLVMTypeRef ety) {
  const kg_entry *e = &L->m->entries[ei];
  const kc_entry_plan *ep = &L->plan->entries[ei];
  LLVMValueRef *in = calloc((size_t)e->n_feeds + 1, sizeof(LLVMValueRef));
  LLVMValueRef *out = calloc((size_t)e->n_fetches + 1, sizeof(LLVMValueRef));
  int n_out = 0;
  for (int i = 0; i < e->n_feeds; i++)
    in[i] = tensor_desc(L, L->m->nodes[e->feeds[i]].name, &L->m->nodes[e->feeds[i]].out[0], ep->in_offset[i]);
  for (int i = 0; i < e->n_fetches; i++) {
    const kg_type *t = kg_ref_type(L->m, e->fetches[i]);
    if (!t) continue;
    const char *name = kc_fetch_name(L->m, e, i);
    out[n_out++] = tensor_desc(L, name, t, ep->out_offset[i]);
  }
  LLVMValueRef f[] = {kl_const_string(L, e->name, "str"),
                      fn,
                      kl_i32(L, e->n_feeds),
                      kl_i32(L, n_out),
                      kl_const_array(L, tensor_desc_type(L), in, e->n_feeds, "in"),
                      kl_const_array(L, tensor_desc_type(L), out, n_out, "out"),
                      kl_i64(L, ep->in_size),
                      kl_i64(L, ep->out_size)};
  free(in);
  free(out);
  return LLVMConstNamedStruct(ety, f, 8);
}

LLVMValueRef kl_emit_descriptor(kl_ctx *L, const char *sym, LLVMValueRef *entry_fns, LLVMValueRef init,
                                LLVMValueRef program) {
  kg_module *m = L->m;
  LLVMTypeRef tdt = tensor_desc_type(L);
  LLVMTypeRef ety = LLVMStructCreateNamed(L->C, "kiln_entry_desc");
  LLVMTypeRef ef[] = {L->t_ptr, L->t_ptr, L->t_i32, L->t_i32, L->t_ptr, L->t_ptr, L->t_i64, L->t_i64};
  LLVMStructSetBody(ety, ef, 8, 0);
  LLVMTypeRef qty = LLVMStructCreateNamed(L->C, "kiln_queue_desc");
  LLVMTypeRef qf[] = {L->t_ptr, L->t_i64, L->t_i32, L->t_i32, L->t_ptr, L->t_i64, L->t_i64};
  LLVMStructSetBody(qty, qf, 7, 0);
  LLVMTypeRef mty = LLVMStructCreateNamed(L->C, "kiln_module_desc");
  LLVMTypeRef mf[] = {L->t_ptr, L->t_i64, L->t_i64, L->t_i32, L->t_i32, L->t_i32, L->t_i32,
                      L->t_ptr, L->t_ptr, L->t_ptr, L->t_ptr, L->t_ptr, L->t_ptr, L->t_ptr};
  LLVMStructSetBody(mty, mf, 14, 0);

  int nv = 0, nq = 0;
  LLVMValueRef *vars = calloc((size_t)m->n_nodes + 1, sizeof(LLVMValueRef));
  LLVMValueRef *queues = calloc((size_t)m->n_nodes + 1, sizeof(LLVMValueRef));
  for (int v = 0; v < m->n_nodes; v++) {
    const kg_node *n = &m->nodes[v];
    if (n->op == KC_OP_VARIABLE) vars[nv++] = tensor_desc(L, n->name, &n->out[0], L->plan->var_offset[v]);
    if (n->op == KC_OP_QUEUE) {
      LLVMValueRef *comp = calloc((size_t)n->n_comp + 1, sizeof(LLVMValueRef));
      for (int i = 0; i < n->n_comp; i++) comp[i] = tensor_desc(L, n->name, &n->comp[i], 0);
      bool shuffle = !strcmp(kg_attr_str(n, "kind", "fifo"), "random_shuffle");
      LLVMValueRef f[] = {kl_const_string(L, n->name, "str"), kl_i64(L, kg_attr_int(n, "capacity", 1)), kl_i32(L, n->n_comp),
                          kl_i32(L, shuffle ? 1 : 0), kl_const_array(L, tdt, comp, n->n_comp, "comp"),
                          kl_i64(L, kg_attr_int(n, "min_after_dequeue", 0)),
                          kl_i64(L, shuffle ? (int64_t)kc_node_seed(n) : 0)};
      queues[L->plan->queue_id[v]] = LLVMConstNamedStruct(qty, f, 7);
      nq++;
      free(comp);
    }
  }
  LLVMValueRef *entries = calloc((size_t)m->n_entries + 1, sizeof(LLVMValueRef));
  for (int i = 0; i < m->n_entries; i++) entries[i] = entry_desc(L, i, entry_fns[i], ety);
  LLVMValueRef f[] = {kl_const_string(L, m->name, "str"),
                      kl_i64(L, L->plan->vars_size),
                      kl_i64(L, L->plan->arena_size),
                      kl_i32(L, nv),
                      kl_i32(L, nq),
                      kl_i32(L, m->n_entries),
                      kl_i32(L, L->plan->n_random),
                      kl_const_array(L, tdt, vars, nv, "vars"),
                      kl_const_array(L, qty, queues, nq, "queues"),
                      kl_const_array(L, ety, entries, m->n_entries, "entries"),
                      init,
                      program ? program : LLVMConstNull(L->t_ptr),
                      L->target->weights ? kl_emit_weights_desc(L, L->target->weights, sym) : LLVMConstNull(L->t_ptr),
                      kl_gpu_descriptor(L)};
  free(vars);
  free(queues);
  free(entries);
  LLVMValueRef desc = LLVMAddGlobal(L->M, mty, kc_sprintf(m->arena, "%s_desc", sym));
  LLVMSetInitializer(desc, LLVMConstNamedStruct(mty, f, 14));
  LLVMSetGlobalConstant(desc, 1);
  return desc;
}
