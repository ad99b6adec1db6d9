/* gpu_emit.h — the building blocks the GPU kernel bodies share
 * (lower/gpu_kernels.c, lower/gpu_window.c): index arithmetic, scalar
 * slots, guarded regions, block-synchronous code with barriers and shared
 * memory, and folds (one output element as the sum, product, max or min of
 * `count` terms), which run in one thread or across a block.
 *
 * A block kernel is written as block-uniform code holding per-thread
 * regions that barriers separate.  On the GPU a region is plain code run by
 * each thread with its own tid, and a barrier is llvm.nvvm.barrier0
 * (__syncthreads).  In the CPU emulation (KILN_GPU_EMULATE) a region is a
 * loop over the block's threads and the barrier is the end of that loop:
 * every thread finishes a region before any starts the next, which is
 * exactly what a barrier guarantees (and no more).  The blocks of the grid
 * run one after another.  State a thread keeps across a barrier lives in
 * gk_priv arrays: registers on the GPU, [threads][count] in the emulation.
 * gk_shared arrays are addrspace(3) globals on the GPU and one stack array
 * per kernel in the emulation. */
#ifndef KILN_GPU_EMIT_H
#define KILN_GPU_EMIT_H

#include "lower/lower.h"

#define GK_BLOCK 256 /* threads of every block */

/* ---- scalars and index arithmetic ---- */

/* A scalar slot in the kernel's entry block (so SROA promotes it), set to init here. */
LLVMValueRef gk_slot(kl_ctx *L, kiln_dtype dt, LLVMValueRef init, const char *name);
/* The slot's value. */
LLVMValueRef gk_get(kl_ctx *L, kiln_dtype dt, LLVMValueRef slot);
/* kl_prim with one or two operands of dtype dt and a result of dt. */
LLVMValueRef gk_prim1(kl_ctx *L, const char *prim, kiln_dtype dt, LLVMValueRef a);
LLVMValueRef gk_prim2(kl_ctx *L, const char *prim, kiln_dtype dt, LLVMValueRef a, LLVMValueRef b);
/* 0 of dt. */
LLVMValueRef gk_zero(kl_ctx *L, kiln_dtype dt);
/* i64 arithmetic; constants that make an operation trivial skip it. */
LLVMValueRef gk_add(kl_ctx *L, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef gk_mul(kl_ctx *L, LLVMValueRef a, int64_t b);
LLVMValueRef gk_udiv(kl_ctx *L, LLVMValueRef a, int64_t b);
LLVMValueRef gk_urem(kl_ctx *L, LLVMValueRef a, int64_t b);
/* a < b, unsigned (so a negative a is never below b). */
LLVMValueRef gk_ult(kl_ctx *L, LLVMValueRef a, LLVMValueRef b);
/* (i / div) % ext * stride: one coordinate's share of an offset. */
LLVMValueRef gk_coord_term(kl_ctx *L, LLVMValueRef i, int64_t div, int64_t ext, int64_t stride);
/* Row-major element strides of s. */
void gk_row_strides(const kg_shape *s, int64_t *st);

/* if (cond) { ... }: gk_if_begin leaves the builder inside; gk_if_end
 * continues after, with the block gk_if_begin returned. */
LLVMBasicBlockRef gk_if_begin(kl_ctx *L, LLVMValueRef cond, const char *name);
void gk_if_end(kl_ctx *L, LLVMBasicBlockRef after);

/* ---- block-synchronous code ---- */

typedef struct gk_blk {
  kl_ctx *L;
  bool emu;
  LLVMValueRef block; /* the block index (i64) */
  LLVMValueRef tid;   /* inside a region: the thread index (i64) */
  LLVMValueRef gpu_tid;
  kl_loop tl;
} gk_blk;

/* A per-thread region: between these, B->tid is the thread. */
void gk_thr_begin(gk_blk *B);
void gk_thr_end(gk_blk *B);
/* Every thread of the block has finished the region before (a no-op when emulated). */
void gk_barrier(gk_blk *B);
/* Per-thread storage of `count` elements kept across barriers, and element j of it. */
LLVMValueRef gk_priv(gk_blk *B, kiln_dtype dt, int count, const char *name);
LLVMValueRef gk_priv_at(gk_blk *B, kiln_dtype dt, LLVMValueRef p, int count, int j);
/* A block-shared array of `count` elements, with its loads and stores. */
LLVMValueRef gk_shared(gk_blk *B, kiln_dtype dt, int64_t count, const char *name);
LLVMValueRef gk_sh_load(gk_blk *B, kiln_dtype dt, LLVMValueRef sh, LLVMValueRef idx);
void gk_sh_store(gk_blk *B, kiln_dtype dt, LLVMValueRef sh, LLVMValueRef idx, LLVMValueRef v);

/* ---- folds ----
 * out[i] = finish(term(i, 0) prim term(i, 1) prim ... term(i, count-1)),
 * starting from prim's identity.  A term that does not exist (a tap in the
 * padding) returns the identity. */
typedef struct gk_fold {
  kiln_dtype dt;    /* of the terms and of the accumulator */
  const char *prim; /* add, mul, max, min (kl_prim names) */
  int64_t count;
  LLVMValueRef (*term)(kl_ctx *L, const void *arg, LLVMValueRef i, LLVMValueRef j);
  LLVMValueRef (*finish)(kl_ctx *L, const void *arg, LLVMValueRef r); /* NULL: r itself */
  const void *arg;
} gk_fold;
/* prim's identity in dt (0, 1, -inf / the type's minimum, +inf / its maximum). */
LLVMValueRef gk_identity(kl_ctx *L, const char *prim, kiln_dtype dt);
/* A fold of at least this many terms takes a whole block per output. */
#define GK_FOLD_BLOCK_MIN 512
/* Output element i folded by one thread, stored at out[i]. */
void gk_fold_thread(kl_ctx *L, const gk_fold *f, LLVMValueRef i, LLVMValueRef out);
/* Output element B->block folded by the whole block: each thread folds a
 * strided share, then a shared-memory tree combines the shares; thread 0
 * stores out[block]. */
void gk_fold_block(gk_blk *B, const gk_fold *f, LLVMValueRef out);

/* ---- kernel families in files of their own ---- */

/* The windowed ops (gpu_window.c): the body of node v's kernel for output
 * element i, or with B set (a filter gradient of kc_gpu_window_fold_terms
 * >= GK_FOLD_BLOCK_MIN terms) output element B->block by the whole block. */
bool kl_gpu_emit_window(kl_ctx *L, gk_blk *B, int v, LLVMValueRef i);
/* The terms each output element of a filter gradient folds (-1: not one). */
int64_t kc_gpu_window_fold_terms(const kg_module *m, int v);

#endif
