/* builder.c — the helpers every op lowering uses (lower.h): buffers, types,
 * loads and stores, loops, runtime calls and status checks. */
#include "lower/lower.h"
#include "lower/weights.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers ---- */

static LLVMValueRef byte_gep(kl_ctx *L, LLVMValueRef base, int64_t off) {
  if (!off) return base;
  LLVMValueRef idx = kl_i64(L, off);
  return LLVMBuildGEP2(L->B, L->t_i8, base, &idx, 1, "");
}

LLVMValueRef kl_ref_ptr(kl_ctx *L, kg_ref r) {
  const kg_node *n = &L->m->nodes[r.node];
  if (n->op == KC_OP_CONST) {
    if (!L->node_const[r.node]) {
      const kg_attr *v = kg_node_attr(n, "value");
      L->node_const[r.node] = kl_const_data(L, v->tensor.data, kg_type_bytes(&n->out[0]), n->name);
    }
    return L->node_const[r.node];
  }
  if (n->op == KC_OP_VARIABLE) return byte_gep(L, L->vars, L->plan->var_offset[r.node]);
  /* an aliasing op's result is its operand's buffer, wherever that lives */
  if (kc_ops[n->op].flags & KC_OP_ALIAS) return kl_ref_ptr(L, n->in[0]);
  if (!L->ep) return NULL;
  const kc_slot *s = &L->ep->slots[L->plan->out_base[r.node] + r.index];
  switch (s->place) {
  case KC_PLACE_ARENA: return byte_gep(L, L->arena, s->offset);
  case KC_PLACE_VAR: return byte_gep(L, L->vars, s->offset);
  case KC_PLACE_FEED: return byte_gep(L, L->in_struct, s->offset);
  case KC_PLACE_OUT: return byte_gep(L, L->out_struct, s->offset);
  default: return LLVMConstNull(L->t_ptr);
  }
}

const void *kl_ref_literal(kl_ctx *L, kg_ref r) {
  for (;;) {
    const kg_node *n = &L->m->nodes[r.node];
    if (n->op == KC_OP_CONST) return kg_node_attr(n, "value")->tensor.data;
    if (!(kc_ops[n->op].flags & KC_OP_ALIAS)) return NULL;
    r = n->in[0];
  }
}

LLVMValueRef kl_in(kl_ctx *L, int node, int k) {
  if (L->kernel_args) return L->kernel_args[k];
  return kl_ref_ptr(L, L->m->nodes[node].in[k]);
}

LLVMValueRef kl_out(kl_ctx *L, int node, int k) {
  if (L->kernel_args) return L->kernel_args[L->m->nodes[node].n_in + k];
  return kl_ref_ptr(L, (kg_ref){node, k});
}

const kg_type *kl_in_type(kl_ctx *L, int node, int k) { return kg_ref_type(L->m, L->m->nodes[node].in[k]); }
const kg_type *kl_out_type(kl_ctx *L, int node, int k) { return &L->m->nodes[node].out[k]; }

/* ---- types and constants ---- */

LLVMTypeRef kl_elem_type(kl_ctx *L, kiln_dtype dt) {
  switch (dt) {
  case KILN_BOOL:
  case KILN_I8:
  case KILN_U8: return L->t_i8;
  case KILN_I32: return L->t_i32;
  case KILN_I64: return L->t_i64;
  case KILN_F32: return L->t_f32;
  case KILN_F64: return L->t_f64;
  default: return L->t_i8;
  }
}

LLVMTypeRef kl_value_type(kl_ctx *L, kiln_dtype dt) { return dt == KILN_BOOL ? L->t_i1 : kl_elem_type(L, dt); }

LLVMValueRef kl_i32(kl_ctx *L, int64_t v) { return LLVMConstInt(L->t_i32, (unsigned long long)v, 1); }
LLVMValueRef kl_i64(kl_ctx *L, int64_t v) { return LLVMConstInt(L->t_i64, (unsigned long long)v, 1); }

LLVMValueRef kl_const_f(kl_ctx *L, kiln_dtype dt, double v) {
  if (kg_dtype_is_float(dt)) return LLVMConstReal(kl_value_type(L, dt), v);
  if (dt == KILN_BOOL) return LLVMConstInt(L->t_i1, v != 0, 0);
  return LLVMConstInt(kl_value_type(L, dt), (unsigned long long)(int64_t)v, 1);
}

LLVMValueRef kl_const_i(kl_ctx *L, kiln_dtype dt, int64_t v) {
  if (kg_dtype_is_float(dt)) return LLVMConstReal(kl_value_type(L, dt), (double)v);
  if (dt == KILN_BOOL) return LLVMConstInt(L->t_i1, v != 0, 0);
  return LLVMConstInt(kl_value_type(L, dt), (unsigned long long)v, 1);
}

LLVMValueRef kl_convert(kl_ctx *L, LLVMValueRef v, kiln_dtype from, kiln_dtype to) {
  if (from == to) return v;
  LLVMTypeRef tt = kl_value_type(L, to);
  bool ff = kg_dtype_is_float(from), tf = kg_dtype_is_float(to);
  if (to == KILN_BOOL) {
    if (ff) return LLVMBuildFCmp(L->B, LLVMRealUNE, v, LLVMConstReal(LLVMTypeOf(v), 0), "");
    return LLVMBuildICmp(L->B, LLVMIntNE, v, LLVMConstInt(LLVMTypeOf(v), 0, 0), "");
  }
  if (from == KILN_BOOL) return tf ? LLVMBuildUIToFP(L->B, v, tt, "") : LLVMBuildZExt(L->B, v, tt, "");
  if (ff && tf) {
    return kg_dtype_size(to) > kg_dtype_size(from) ? LLVMBuildFPExt(L->B, v, tt, "")
                                                   : LLVMBuildFPTrunc(L->B, v, tt, "");
  }
  if (!ff && tf)
    return kg_dtype_is_signed(from) ? LLVMBuildSIToFP(L->B, v, tt, "") : LLVMBuildUIToFP(L->B, v, tt, "");
  if (ff && !tf) {
    /* saturating, so out-of-range floats and NaN are defined (no poison) */
    LLVMValueRef args[] = {v};
    LLVMTypeRef tys[] = {tt, LLVMTypeOf(v)};
    const char *name = kg_dtype_is_signed(to) ? "llvm.fptosi.sat" : "llvm.fptoui.sat";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(L->M, id, tys, 2);
    return LLVMBuildCall2(L->B, LLVMIntrinsicGetType(L->C, id, tys, 2), fn, args, 1, "");
  }
  size_t fs = kg_dtype_size(from), ts = kg_dtype_size(to);
  if (ts == fs) return v;
  if (ts < fs) return LLVMBuildTrunc(L->B, v, tt, "");
  return kg_dtype_is_signed(from) ? LLVMBuildSExt(L->B, v, tt, "") : LLVMBuildZExt(L->B, v, tt, "");
}

/* ---- memory ---- */

LLVMValueRef kl_gep(kl_ctx *L, kiln_dtype dt, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(L->B, kl_elem_type(L, dt), base, &idx, 1, "");
}

LLVMValueRef kl_load(kl_ctx *L, kiln_dtype dt, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef v = LLVMBuildLoad2(L->B, kl_elem_type(L, dt), kl_gep(L, dt, base, idx), "");
  if (dt == KILN_BOOL) v = LLVMBuildICmp(L->B, LLVMIntNE, v, LLVMConstInt(L->t_i8, 0, 0), "");
  return v;
}

void kl_store(kl_ctx *L, kiln_dtype dt, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v) {
  if (dt == KILN_BOOL) v = LLVMBuildZExt(L->B, v, L->t_i8, "");
  LLVMBuildStore(L->B, v, kl_gep(L, dt, base, idx));
}

void kl_memcpy(kl_ctx *L, LLVMValueRef dst, LLVMValueRef src, int64_t bytes) {
  if (bytes > 0) LLVMBuildMemCpy(L->B, dst, 1, src, 1, kl_i64(L, bytes));
}

void kl_memset0(kl_ctx *L, LLVMValueRef dst, int64_t bytes) {
  if (bytes > 0) LLVMBuildMemSet(L->B, dst, LLVMConstInt(L->t_i8, 0, 0), kl_i64(L, bytes), 1);
}

/* ---- loops ---- */

kl_loop kl_for(kl_ctx *L, LLVMValueRef n, const char *name) {
  kl_loop lp;
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(L->B);
  lp.header = LLVMAppendBasicBlockInContext(L->C, L->fn, name);
  lp.body = LLVMAppendBasicBlockInContext(L->C, L->fn, "body");
  lp.exit = LLVMAppendBasicBlockInContext(L->C, L->fn, "done");
  LLVMBuildBr(L->B, lp.header);
  LLVMPositionBuilderAtEnd(L->B, lp.header);
  lp.index = LLVMBuildPhi(L->B, L->t_i64, "i");
  LLVMValueRef zero = kl_i64(L, 0);
  LLVMAddIncoming(lp.index, &zero, &pre, 1);
  LLVMValueRef more = LLVMBuildICmp(L->B, LLVMIntSLT, lp.index, n, "");
  LLVMBuildCondBr(L->B, more, lp.body, lp.exit);
  LLVMPositionBuilderAtEnd(L->B, lp.body);
  return lp;
}

void kl_for_end(kl_ctx *L, kl_loop *lp) {
  LLVMValueRef next = LLVMBuildNUWAdd(L->B, lp->index, kl_i64(L, 1), "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(L->B);
  LLVMBuildBr(L->B, lp->header);
  LLVMAddIncoming(lp->index, &next, &latch, 1);
  LLVMPositionBuilderAtEnd(L->B, lp->exit);
}

/* ---- calls and status ---- */

LLVMValueRef kl_call(kl_ctx *L, const char *name, LLVMTypeRef ret, LLVMValueRef *args, int n) {
  LLVMTypeRef params[16];
  for (int i = 0; i < n && i < 16; i++) params[i] = LLVMTypeOf(args[i]);
  LLVMTypeRef fty = LLVMFunctionType(ret, params, (unsigned)n, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(L->M, name);
  if (!fn) fn = LLVMAddFunction(L->M, name, fty);
  return LLVMBuildCall2(L->B, fty, fn, args, (unsigned)n, "");
}

LLVMValueRef kl_intrinsic(kl_ctx *L, const char *name, LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef ty = LLVMTypeOf(args[0]);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(L->M, id, &ty, 1);
  return LLVMBuildCall2(L->B, LLVMIntrinsicGetType(L->C, id, &ty, 1), fn, args, (unsigned)n, "");
}

void kl_check(kl_ctx *L, LLVMValueRef status) {
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(L->C, L->fn, "ok");
  LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(L->C, L->fn, "fail");
  LLVMValueRef isbad = LLVMBuildICmp(L->B, LLVMIntNE, status, kl_i32(L, 0), "");
  LLVMBuildCondBr(L->B, isbad, bad, ok);
  LLVMPositionBuilderAtEnd(L->B, bad);
  LLVMBuildStore(L->B, status, L->status_slot);
  LLVMBuildBr(L->B, L->exit_bb);
  LLVMPositionBuilderAtEnd(L->B, ok);
}

LLVMValueRef kl_const_string(kl_ctx *L, const char *s, const char *name) {
  LLVMValueRef str = LLVMConstStringInContext(L->C, s, (unsigned)strlen(s), 0);
  LLVMValueRef g = LLVMAddGlobal(L->M, LLVMTypeOf(str), name);
  LLVMSetInitializer(g, str);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
  return g;
}

void kl_fail_if(kl_ctx *L, LLVMValueRef cond, int node, const char *message) {
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(L->C, L->fn, "ok");
  LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(L->C, L->fn, "fail");
  LLVMBuildCondBr(L->B, cond, bad, ok);
  LLVMPositionBuilderAtEnd(L->B, bad);
  char text[600];
  snprintf(text, sizeof text, "node '%s' (%s): %s", L->m->nodes[node].name, kc_ops[L->m->nodes[node].op].name,
           message);
  LLVMValueRef args[] = {L->inst, kl_i32(L, 3), kl_const_string(L, "%s", "fmt"), kl_const_string(L, text, "msg")};
  LLVMTypeRef params[] = {L->t_ptr, L->t_i32, L->t_ptr};
  LLVMTypeRef fty = LLVMFunctionType(L->t_i32, params, 3, 1);
  LLVMValueRef fn = LLVMGetNamedFunction(L->M, "kiln_fail");
  if (!fn) fn = LLVMAddFunction(L->M, "kiln_fail", fty);
  LLVMValueRef st = LLVMBuildCall2(L->B, fty, fn, args, 4, "");
  LLVMBuildStore(L->B, st, L->status_slot);
  LLVMBuildBr(L->B, L->exit_bb);
  LLVMPositionBuilderAtEnd(L->B, ok);
}

LLVMValueRef kl_const_data(kl_ctx *L, const void *bytes, int64_t n, const char *name) {
  if (L->target && L->target->weights && !L->target->weights->sealed)
    return kl_weights_add(L, L->target->weights, bytes, n, name);
  LLVMValueRef data = LLVMConstStringInContext(L->C, (const char *)bytes, (unsigned)n, 1);
  LLVMValueRef g = LLVMAddGlobal(L->M, LLVMTypeOf(data), name);
  LLVMSetInitializer(g, data);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetAlignment(g, 64);
  return g;
}

LLVMValueRef kl_const_array(kl_ctx *L, LLVMTypeRef elem, LLVMValueRef *v, int n, const char *name) {
  if (!n) return LLVMConstNull(L->t_ptr);
  LLVMValueRef arr = LLVMConstArray2(elem, v, (uint64_t)n);
  LLVMValueRef g = LLVMAddGlobal(L->M, LLVMTypeOf(arr), name);
  LLVMSetInitializer(g, arr);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  return g;
}

LLVMValueRef kl_const_i64s(kl_ctx *L, const int64_t *v, int n, const char *name) {
  LLVMValueRef vals[KILN_MAX_RANK * 4 + 1];
  LLVMValueRef *vv = n <= (int)(sizeof vals / sizeof *vals) ? vals : malloc(sizeof(LLVMValueRef) * (size_t)n);
  for (int i = 0; i < n; i++) vv[i] = kl_i64(L, v[i]);
  LLVMValueRef g = kl_const_array(L, L->t_i64, vv, n, name);
  if (vv != vals) free(vv);
  return g;
}

LLVMValueRef kl_random_counter(kl_ctx *L, int node) {
  LLVMValueRef field = LLVMBuildStructGEP2(L->B, kl_inst_type(L), L->inst, 3, "");
  LLVMValueRef base = LLVMBuildLoad2(L->B, L->t_ptr, field, "counters");
  LLVMValueRef k = kl_i64(L, L->plan->random_slot[node]);
  return LLVMBuildInBoundsGEP2(L->B, L->t_i64, base, &k, 1, "");
}

LLVMValueRef kl_ptr_array(kl_ctx *L, LLVMValueRef *ptrs, int n) {
  /* allocas go in the entry block so loops do not grow the stack */
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(L->B);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(L->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(L->B, first);
  else LLVMPositionBuilderAtEnd(L->B, entry);
  LLVMTypeRef aty = LLVMArrayType2(L->t_ptr, (uint64_t)(n ? n : 1));
  LLVMValueRef arr = LLVMBuildAlloca(L->B, aty, "ptrs");
  LLVMPositionBuilderAtEnd(L->B, cur);
  for (int i = 0; i < n; i++) {
    LLVMValueRef idx[] = {kl_i32(L, 0), kl_i32(L, i)};
    LLVMBuildStore(L->B, ptrs[i], LLVMBuildInBoundsGEP2(L->B, aty, arr, idx, 2, ""));
  }
  return arr;
}

/* The first fields of struct kiln_inst (kilnrt.h): vars, arena, queues,
 * random_counters, tracing. */
LLVMTypeRef kl_inst_type(kl_ctx *L) {
  LLVMTypeRef f[] = {L->t_ptr, L->t_ptr, L->t_ptr, L->t_ptr, L->t_i32};
  return LLVMStructTypeInContext(L->C, f, 5, 0);
}
