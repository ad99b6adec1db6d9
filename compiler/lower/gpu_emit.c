/* gpu_emit.c — the building blocks of the GPU kernel bodies (gpu_emit.h):
 * index arithmetic, slots, guarded regions, block-synchronous regions with
 * barriers and shared memory, and folds in one thread or one block. */
#include "lower/gpu_emit.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- scalars and index arithmetic ---- */

static LLVMValueRef entry_alloca(kl_ctx *L, LLVMTypeRef t, const char *name) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(L->B);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(L->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(L->B, first);
  else LLVMPositionBuilderAtEnd(L->B, entry);
  LLVMValueRef a = LLVMBuildAlloca(L->B, t, name);
  LLVMSetAlignment(a, 16);
  LLVMPositionBuilderAtEnd(L->B, cur);
  return a;
}

LLVMValueRef gk_slot(kl_ctx *L, kiln_dtype dt, LLVMValueRef init, const char *name) {
  LLVMValueRef a = entry_alloca(L, kl_value_type(L, dt), name);
  LLVMBuildStore(L->B, init, a);
  return a;
}

LLVMValueRef gk_get(kl_ctx *L, kiln_dtype dt, LLVMValueRef s) {
  return LLVMBuildLoad2(L->B, kl_value_type(L, dt), s, "");
}

LLVMValueRef gk_prim2(kl_ctx *L, const char *p, kiln_dtype dt, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef args[] = {a, b};
  return kl_prim(L, p, dt, dt, args, 2);
}

LLVMValueRef gk_prim1(kl_ctx *L, const char *p, kiln_dtype dt, LLVMValueRef a) {
  return kl_prim(L, p, dt, dt, &a, 1);
}

LLVMValueRef gk_zero(kl_ctx *L, kiln_dtype dt) {
  return kg_dtype_is_float(dt) ? kl_const_f(L, dt, 0) : kl_const_i(L, dt, 0);
}

LLVMValueRef gk_ult(kl_ctx *L, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildICmp(L->B, LLVMIntULT, a, b, ""); }
LLVMValueRef gk_add(kl_ctx *L, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(L->B, a, b, ""); }
LLVMValueRef gk_mul(kl_ctx *L, LLVMValueRef a, int64_t b) {
  return b == 1 ? a : LLVMBuildMul(L->B, a, kl_i64(L, b), "");
}
LLVMValueRef gk_udiv(kl_ctx *L, LLVMValueRef a, int64_t b) {
  return b == 1 ? a : LLVMBuildUDiv(L->B, a, kl_i64(L, b), "");
}
LLVMValueRef gk_urem(kl_ctx *L, LLVMValueRef a, int64_t b) { return LLVMBuildURem(L->B, a, kl_i64(L, b), ""); }

LLVMValueRef gk_coord_term(kl_ctx *L, LLVMValueRef i, int64_t div, int64_t ext, int64_t stride) {
  return gk_mul(L, gk_urem(L, gk_udiv(L, i, div), ext), stride);
}

void gk_row_strides(const kg_shape *s, int64_t *st) {
  int64_t a = 1;
  for (int d = s->rank - 1; d >= 0; d--) st[d] = a, a *= s->dim[d];
}

LLVMBasicBlockRef gk_if_begin(kl_ctx *L, LLVMValueRef cond, const char *name) {
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(L->C, L->fn, name);
  LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(L->C, L->fn, "endif");
  LLVMBuildCondBr(L->B, cond, then, after);
  LLVMPositionBuilderAtEnd(L->B, then);
  return after;
}

void gk_if_end(kl_ctx *L, LLVMBasicBlockRef after) {
  LLVMBuildBr(L->B, after);
  LLVMPositionBuilderAtEnd(L->B, after);
}

/* ---- block-synchronous code ---- */

void gk_thr_begin(gk_blk *B) {
  if (B->emu) {
    B->tl = kl_for(B->L, kl_i64(B->L, GK_BLOCK), "thread");
    B->tid = B->tl.index;
  } else {
    B->tid = B->gpu_tid;
  }
}

void gk_thr_end(gk_blk *B) {
  if (B->emu) kl_for_end(B->L, &B->tl);
  B->tid = NULL;
}

void gk_barrier(gk_blk *B) {
  if (B->emu) return;
  kl_ctx *L = B->L;
  LLVMTypeRef fty = LLVMFunctionType(L->t_void, NULL, 0, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(L->M, "llvm.nvvm.barrier0");
  if (!fn) fn = LLVMAddFunction(L->M, "llvm.nvvm.barrier0", fty);
  LLVMBuildCall2(L->B, fty, fn, NULL, 0, "");
}

LLVMValueRef gk_priv(gk_blk *B, kiln_dtype dt, int count, const char *name) {
  kl_ctx *L = B->L;
  return entry_alloca(L, LLVMArrayType2(kl_value_type(L, dt), (uint64_t)count * (B->emu ? GK_BLOCK : 1)), name);
}

LLVMValueRef gk_priv_at(gk_blk *B, kiln_dtype dt, LLVMValueRef p, int count, int j) {
  kl_ctx *L = B->L;
  LLVMValueRef idx = B->emu ? gk_add(L, gk_mul(L, B->tid, count), kl_i64(L, j)) : kl_i64(L, j);
  return LLVMBuildGEP2(L->B, kl_value_type(L, dt), p, &idx, 1, "");
}

LLVMValueRef gk_shared(gk_blk *B, kiln_dtype dt, int64_t count, const char *name) {
  kl_ctx *L = B->L;
  LLVMTypeRef at = LLVMArrayType2(kl_value_type(L, dt), (uint64_t)count);
  if (B->emu) return entry_alloca(L, at, name);
  LLVMValueRef g = LLVMAddGlobalInAddressSpace(L->M, at, kc_sprintf(L->m->arena, "%s_%s", LLVMGetValueName(L->fn), name), 3);
  LLVMSetInitializer(g, LLVMGetUndef(at));
  LLVMSetLinkage(g, LLVMInternalLinkage);
  LLVMSetAlignment(g, 16);
  return g;
}

static LLVMValueRef sh_ptr(gk_blk *B, kiln_dtype dt, LLVMValueRef sh, LLVMValueRef idx) {
  return LLVMBuildGEP2(B->L->B, kl_value_type(B->L, dt), sh, &idx, 1, "");
}
LLVMValueRef gk_sh_load(gk_blk *B, kiln_dtype dt, LLVMValueRef sh, LLVMValueRef idx) {
  return LLVMBuildLoad2(B->L->B, kl_value_type(B->L, dt), sh_ptr(B, dt, sh, idx), "");
}
void gk_sh_store(gk_blk *B, kiln_dtype dt, LLVMValueRef sh, LLVMValueRef idx, LLVMValueRef v) {
  LLVMBuildStore(B->L->B, v, sh_ptr(B, dt, sh, idx));
}

/* ---- folds ---- */

LLVMValueRef gk_identity(kl_ctx *L, const char *prim, kiln_dtype dt) {
  bool is_max = !strcmp(prim, "max"), is_min = !strcmp(prim, "min");
  if (kg_dtype_is_float(dt)) return kl_const_f(L, dt, is_max ? -INFINITY : is_min ? INFINITY : !strcmp(prim, "mul"));
  if (!is_max && !is_min) return kl_const_i(L, dt, !strcmp(prim, "mul"));
  int bits = (int)kg_dtype_size(dt) * 8;
  if (kg_dtype_is_signed(dt)) {
    int64_t hi = (int64_t)(UINT64_MAX >> (65 - bits));
    return kl_const_i(L, dt, is_max ? -hi - 1 : hi);
  }
  return kl_const_i(L, dt, is_max ? 0 : (int64_t)(UINT64_MAX >> (64 - bits)));
}

static LLVMValueRef fold_finish(kl_ctx *L, const gk_fold *f, LLVMValueRef r) {
  return f->finish ? f->finish(L, f->arg, r) : r;
}

void gk_fold_thread(kl_ctx *L, const gk_fold *f, LLVMValueRef i, LLVMValueRef out) {
  LLVMValueRef acc = gk_slot(L, f->dt, gk_identity(L, f->prim, f->dt), "acc");
  if (f->count > 0) {
    kl_loop lp = kl_for(L, kl_i64(L, f->count), "fold");
    LLVMBuildStore(L->B, gk_prim2(L, f->prim, f->dt, gk_get(L, f->dt, acc), f->term(L, f->arg, i, lp.index)), acc);
    kl_for_end(L, &lp);
  }
  kl_store(L, f->dt, out, i, fold_finish(L, f, gk_get(L, f->dt, acc)));
}

void gk_fold_block(gk_blk *B, const gk_fold *f, LLVMValueRef out) {
  kl_ctx *L = B->L;
  kiln_dtype dt = f->dt;
  LLVMValueRef sh = gk_shared(B, dt, GK_BLOCK, "fold");
  gk_thr_begin(B);
  LLVMValueRef acc = gk_slot(L, dt, gk_identity(L, f->prim, dt), "acc");
  kl_loop lp = kl_for(L, kl_i64(L, (f->count + GK_BLOCK - 1) / GK_BLOCK), "share");
  LLVMValueRef j = gk_add(L, gk_mul(L, lp.index, GK_BLOCK), B->tid);
  LLVMBasicBlockRef in = gk_if_begin(L, gk_ult(L, j, kl_i64(L, f->count)), "in_range");
  LLVMBuildStore(L->B, gk_prim2(L, f->prim, dt, gk_get(L, dt, acc), f->term(L, f->arg, B->block, j)), acc);
  gk_if_end(L, in);
  kl_for_end(L, &lp);
  gk_sh_store(B, dt, sh, B->tid, gk_get(L, dt, acc));
  gk_thr_end(B);
  for (int step = GK_BLOCK / 2; step >= 1; step /= 2) {
    gk_barrier(B);
    gk_thr_begin(B);
    LLVMBasicBlockRef act = gk_if_begin(L, gk_ult(L, B->tid, kl_i64(L, step)), "tree");
    LLVMValueRef o = gk_add(L, B->tid, kl_i64(L, step));
    gk_sh_store(B, dt, sh, B->tid, gk_prim2(L, f->prim, dt, gk_sh_load(B, dt, sh, B->tid), gk_sh_load(B, dt, sh, o)));
    gk_if_end(L, act);
    gk_thr_end(B);
  }
  gk_barrier(B);
  gk_thr_begin(B);
  LLVMBasicBlockRef first = gk_if_begin(L, LLVMBuildICmp(L->B, LLVMIntEQ, B->tid, kl_i64(L, 0), ""), "write");
  kl_store(L, dt, out, B->block, fold_finish(L, f, gk_sh_load(B, dt, sh, kl_i64(L, 0))));
  gk_if_end(L, first);
  gk_thr_end(B);
}
