/* gpu_kernels.c — which nodes have GPU kernels, and the per-thread bodies
 * of those kernels (nvptx.c wraps them into PTX kernel functions).
 *
 * Every kernel has the parameters (ptr operand..., ptr result..., i64 n)
 * and thread i < n does one unit of work:
 *   map       elementwise ops, fused chains, bias_add and the assignments
 *             (optimizer updates after expansion): element i, through the
 *             CPU's own expression emitter (kl_emit_map);
 *   reduce    sum, mean, max, min, prod: output element i, a loop over the
 *             elements reduced into it;
 *   softmax   softmax, log_softmax: row i (max, sum of exp, normalize);
 *   strided  transpose, slice, broadcast_to: output element i, read
 *             through the input strides the op implies;
 *   matmul    output element (batch, row, column) i: a dot product over K
 *             (batches broadcast as the CPU's matmul does).
 * Scalar math is kl_prim's, with libdevice for the GPU, so the results are
 * the CPU's up to the order of floating-point sums. */
#include "lower/nvptx.h"
#include "ir/expr.h"
#include "lower/lower.h"
#include "ops/ops_util.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

static bool is_assign(int op) {
  return op == KC_OP_ASSIGN || op == KC_OP_ASSIGN_ADD || op == KC_OP_ASSIGN_SUB || op == KC_OP_ASSIGN_MAP;
}

static int softmax_axis(const kg_node *n, int rank) {
  int64_t a = kg_attr_int(n, "axis", -1);
  return (int)(a < 0 ? a + rank : a);
}

static void split_axis(const kg_shape *s, int axis, int64_t *outer, int64_t *mid, int64_t *inner) {
  *outer = *inner = 1;
  *mid = s->dim[axis];
  for (int d = 0; d < axis; d++) *outer *= s->dim[d];
  for (int d = axis + 1; d < s->rank; d++) *inner *= s->dim[d];
}

/* ---- helpers ---- */

/* A scalar slot in the kernel's entry block (so SROA promotes it). */
static LLVMValueRef slot(kl_ctx *L, kiln_dtype dt, LLVMValueRef init, const char *name) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(L->B);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(L->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(L->B, first);
  else LLVMPositionBuilderAtEnd(L->B, entry);
  LLVMValueRef a = LLVMBuildAlloca(L->B, kl_value_type(L, dt), name);
  LLVMPositionBuilderAtEnd(L->B, cur);
  LLVMBuildStore(L->B, init, a);
  return a;
}

static LLVMValueRef get(kl_ctx *L, kiln_dtype dt, LLVMValueRef s) {
  return LLVMBuildLoad2(L->B, kl_value_type(L, dt), s, "");
}

static LLVMValueRef prim2(kl_ctx *L, const char *p, kiln_dtype dt, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef args[] = {a, b};
  return kl_prim(L, p, dt, dt, args, 2);
}

static LLVMValueRef prim1(kl_ctx *L, const char *p, kiln_dtype dt, LLVMValueRef a) {
  return kl_prim(L, p, dt, dt, &a, 1);
}

/* (i / div) % ext * stride, skipping what constants make trivial. */
static LLVMValueRef coord_term(kl_ctx *L, LLVMValueRef i, int64_t div, int64_t ext, int64_t stride) {
  LLVMValueRef c = div == 1 ? i : LLVMBuildUDiv(L->B, i, kl_i64(L, div), "");
  c = LLVMBuildURem(L->B, c, kl_i64(L, ext), "");
  return stride == 1 ? c : LLVMBuildMul(L->B, c, kl_i64(L, stride), "");
}

static void row_strides(const kg_shape *s, int64_t *st) {
  int64_t a = 1;
  for (int d = s->rank - 1; d >= 0; d--) st[d] = a, a *= s->dim[d];
}

/* ---- reduce ---- */

static LLVMValueRef reduce_identity(kl_ctx *L, const char *prim, kiln_dtype dt) {
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

/* ---- softmax ---- */

static bool emit_softmax(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *t = kl_in_type(L, v, 0);
  kiln_dtype dt = t->dtype;
  int64_t outer = 1, mid = 1, inner = 1;
  if (t->shape.rank) split_axis(&t->shape, softmax_axis(n, t->shape.rank), &outer, &mid, &inner);
  bool log_sm = n->op == KC_OP_LOG_SOFTMAX;
  LLVMValueRef x = kl_in(L, v, 0), out = kl_out(L, v, 0);
  /* row i: elements base + a*inner, a < mid */
  LLVMValueRef base = inner == 1 ? LLVMBuildMul(L->B, i, kl_i64(L, mid), "")
                                 : LLVMBuildAdd(L->B, LLVMBuildMul(L->B, LLVMBuildUDiv(L->B, i, kl_i64(L, inner), ""),
                                                                   kl_i64(L, mid * inner), ""),
                                                LLVMBuildURem(L->B, i, kl_i64(L, inner), ""), "");
  LLVMValueRef mx = slot(L, dt, kl_const_f(L, dt, -INFINITY), "mx");
  kl_loop l1 = kl_for(L, kl_i64(L, mid), "smmax");
  LLVMValueRef i1 = LLVMBuildAdd(L->B, base, LLVMBuildMul(L->B, l1.index, kl_i64(L, inner), ""), "");
  LLVMBuildStore(L->B, prim2(L, "max", dt, get(L, dt, mx), kl_load(L, dt, x, i1)), mx);
  kl_for_end(L, &l1);
  LLVMValueRef m = get(L, dt, mx);
  LLVMValueRef sum = slot(L, dt, kl_const_f(L, dt, 0), "sum");
  kl_loop l2 = kl_for(L, kl_i64(L, mid), "smexp");
  LLVMValueRef i2 = LLVMBuildAdd(L->B, base, LLVMBuildMul(L->B, l2.index, kl_i64(L, inner), ""), "");
  LLVMValueRef y = prim2(L, "sub", dt, kl_load(L, dt, x, i2), m);
  LLVMValueRef ey = prim1(L, "exp", dt, y);
  kl_store(L, dt, out, i2, log_sm ? y : ey);
  LLVMBuildStore(L->B, prim2(L, "add", dt, get(L, dt, sum), ey), sum);
  kl_for_end(L, &l2);
  LLVMValueRef s = get(L, dt, sum);
  LLVMValueRef ls = log_sm ? prim1(L, "log", dt, s) : NULL;
  kl_loop l3 = kl_for(L, kl_i64(L, mid), "smnorm");
  LLVMValueRef i3 = LLVMBuildAdd(L->B, base, LLVMBuildMul(L->B, l3.index, kl_i64(L, inner), ""), "");
  LLVMValueRef o = kl_load(L, dt, out, i3);
  kl_store(L, dt, out, i3, log_sm ? prim2(L, "sub", dt, o, ls) : prim2(L, "div", dt, o, s));
  kl_for_end(L, &l3);
  return true;
}

/* ---- strided reads: transpose, slice, broadcast_to ---- */

static bool emit_strided(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *x = kl_in_type(L, v, 0), *y = kl_out_type(L, v, 0);
  int rank = y->shape.rank, xr = x->shape.rank;
  int64_t ist[KILN_MAX_RANK], ost[KILN_MAX_RANK], src_stride[KILN_MAX_RANK] = {0}, base = 0;
  row_strides(&x->shape, ist);
  row_strides(&y->shape, ost);
  int cnt = 0;
  const int64_t *av = NULL;
  if (n->op == KC_OP_TRANSPOSE) {
    bool given = kc_attr_ints(n, "perm", &cnt, &av);
    for (int d = 0; d < rank; d++) src_stride[d] = ist[given ? (int)(av[d] < 0 ? av[d] + rank : av[d]) : rank - 1 - d];
  } else if (n->op == KC_OP_SLICE) {
    kc_attr_ints(n, "begin", &cnt, &av);
    for (int d = 0; d < rank && d < cnt; d++) base += av[d] * ist[d], src_stride[d] = ist[d];
  } else { /* broadcast_to: the input's dims align right; size-1 dims repeat */
    int lead = rank - xr;
    for (int d = lead; d < rank; d++) src_stride[d] = x->shape.dim[d - lead] == 1 ? 0 : ist[d - lead];
  }
  LLVMValueRef src = kl_i64(L, base);
  for (int d = 0; d < rank; d++)
    if (y->shape.dim[d] > 1 && src_stride[d])
      src = LLVMBuildAdd(L->B, src, coord_term(L, i, ost[d], y->shape.dim[d], src_stride[d]), "");
  kl_store(L, x->dtype, kl_out(L, v, 0), i, kl_load(L, x->dtype, kl_in(L, v, 0), src));
  return true;
}

/* ---- small control-flow helpers ---- */

static LLVMValueRef zero_of(kl_ctx *L, kiln_dtype dt) {
  return kg_dtype_is_float(dt) ? kl_const_f(L, dt, 0) : kl_const_i(L, dt, 0);
}

/* if (cond) { ... }: the builder is left inside; if_end continues after. */
static LLVMBasicBlockRef if_begin(kl_ctx *L, LLVMValueRef cond, const char *name) {
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(L->C, L->fn, name);
  LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(L->C, L->fn, "endif");
  LLVMBuildCondBr(L->B, cond, then, after);
  LLVMPositionBuilderAtEnd(L->B, then);
  return after;
}

static void if_end(kl_ctx *L, LLVMBasicBlockRef after) {
  LLVMBuildBr(L->B, after);
  LLVMPositionBuilderAtEnd(L->B, after);
}

static LLVMValueRef ult(kl_ctx *L, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildICmp(L->B, LLVMIntULT, a, b, ""); }
static LLVMValueRef add(kl_ctx *L, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(L->B, a, b, ""); }
static LLVMValueRef mul(kl_ctx *L, LLVMValueRef a, int64_t b) {
  return b == 1 ? a : LLVMBuildMul(L->B, a, kl_i64(L, b), "");
}
static LLVMValueRef udiv(kl_ctx *L, LLVMValueRef a, int64_t b) {
  return b == 1 ? a : LLVMBuildUDiv(L->B, a, kl_i64(L, b), "");
}
static LLVMValueRef urem(kl_ctx *L, LLVMValueRef a, int64_t b) { return LLVMBuildURem(L->B, a, kl_i64(L, b), ""); }

/* ---- block-synchronous kernels ----
 *
 * A block kernel (the tiled GEMM, the block reductions) is written as
 * block-uniform code (the same for every thread of a block: loops over K
 * tiles, the steps of a reduction tree) holding per-thread regions that
 * barriers separate.  On the GPU a region is plain code run by each thread
 * with its own tid and a barrier is llvm.nvvm.barrier0 (__syncthreads).  In
 * the CPU emulation a region is a loop over the block's threads and the
 * barrier is the end of that loop: every thread finishes the region before
 * any starts the next, which is exactly what a barrier guarantees (and no
 * more: a kernel that relied on an order within a region would be wrong on
 * both).  The blocks of the grid run one after another.  State a thread
 * keeps across a barrier lives in `priv` arrays: registers on the GPU (the
 * indices are constants, so SROA promotes them), [threads][count] in the
 * emulation.  `shared` arrays are addrspace(3) globals on the GPU and one
 * stack array per kernel in the emulation. */

#define GPU_BLOCK 256 /* threads of every block kernel */

typedef struct blk {
  kl_ctx *L;
  bool emu;
  LLVMValueRef block; /* the block index (i64) */
  LLVMValueRef tid;   /* inside a region: the thread index (i64) */
  LLVMValueRef gpu_tid;
  kl_loop tl;
} blk;

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

static void thr_begin(blk *B) {
  if (B->emu) {
    B->tl = kl_for(B->L, kl_i64(B->L, GPU_BLOCK), "thread");
    B->tid = B->tl.index;
  } else {
    B->tid = B->gpu_tid;
  }
}

static void thr_end(blk *B) {
  if (B->emu) kl_for_end(B->L, &B->tl);
  B->tid = NULL;
}

static void barrier(blk *B) {
  if (B->emu) return;
  kl_ctx *L = B->L;
  LLVMTypeRef fty = LLVMFunctionType(L->t_void, NULL, 0, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(L->M, "llvm.nvvm.barrier0");
  if (!fn) fn = LLVMAddFunction(L->M, "llvm.nvvm.barrier0", fty);
  LLVMBuildCall2(L->B, fty, fn, NULL, 0, "");
}

/* Per-thread storage of `count` elements kept across barriers. */
static LLVMValueRef priv(blk *B, kiln_dtype dt, int count, const char *name) {
  kl_ctx *L = B->L;
  return entry_alloca(L, LLVMArrayType2(kl_value_type(L, dt), (uint64_t)count * (B->emu ? GPU_BLOCK : 1)), name);
}

static LLVMValueRef priv_at(blk *B, kiln_dtype dt, LLVMValueRef p, int count, int j) {
  kl_ctx *L = B->L;
  LLVMValueRef idx = B->emu ? add(L, mul(L, B->tid, count), kl_i64(L, j)) : kl_i64(L, j);
  return LLVMBuildGEP2(L->B, kl_value_type(L, dt), p, &idx, 1, "");
}

/* A block-shared array of `count` elements. */
static LLVMValueRef shared(blk *B, kiln_dtype dt, int64_t count, const char *name) {
  kl_ctx *L = B->L;
  LLVMTypeRef at = LLVMArrayType2(kl_value_type(L, dt), (uint64_t)count);
  if (B->emu) return entry_alloca(L, at, name);
  LLVMValueRef g = LLVMAddGlobalInAddressSpace(L->M, at, kc_sprintf(L->m->arena, "%s_%s", LLVMGetValueName(L->fn), name), 3);
  LLVMSetInitializer(g, LLVMGetUndef(at));
  LLVMSetLinkage(g, LLVMInternalLinkage);
  LLVMSetAlignment(g, 16);
  return g;
}

static LLVMValueRef sh_ptr(blk *B, kiln_dtype dt, LLVMValueRef sh, LLVMValueRef idx) {
  return LLVMBuildGEP2(B->L->B, kl_value_type(B->L, dt), sh, &idx, 1, "");
}
static LLVMValueRef sh_load(blk *B, kiln_dtype dt, LLVMValueRef sh, LLVMValueRef idx) {
  return LLVMBuildLoad2(B->L->B, kl_value_type(B->L, dt), sh_ptr(B, dt, sh, idx), "");
}
static void sh_store(blk *B, kiln_dtype dt, LLVMValueRef sh, LLVMValueRef idx, LLVMValueRef v) {
  LLVMBuildStore(B->L->B, v, sh_ptr(B, dt, sh, idx));
}

/* ---- reductions: one output element per thread, or one per block ---- */

typedef struct red_geom {
  kiln_dtype dt;
  int rank;
  bool red[KILN_MAX_RANK];
  int64_t ist[KILN_MAX_RANK];
  int64_t count; /* elements reduced into each output */
  const char *prim;
} red_geom;

static void red_geom_of(const kg_module *m, int v, red_geom *g) {
  const kg_node *n = &m->nodes[v];
  const kg_type *it = kg_ref_type(m, n->in[0]);
  memset(g, 0, sizeof *g);
  g->dt = it->dtype;
  g->rank = it->shape.rank;
  int cnt = 0;
  const int64_t *axes = NULL;
  if (!kc_attr_ints(n, "axes", &cnt, &axes))
    for (int d = 0; d < g->rank; d++) g->red[d] = true;
  for (int k = 0; k < cnt; k++) g->red[axes[k] < 0 ? axes[k] + g->rank : axes[k]] = true;
  row_strides(&it->shape, g->ist);
  g->count = 1;
  for (int d = 0; d < g->rank; d++)
    if (g->red[d]) g->count *= it->shape.dim[d];
  g->prim = n->op == KC_OP_PROD ? "mul" : n->op == KC_OP_MAX ? "max" : n->op == KC_OP_MIN ? "min" : "add";
}

/* The input offset of the first element reduced into output element i (the
 * kept dimensions, in order, are the output's; keepdims adds ones). */
static LLVMValueRef red_base(kl_ctx *L, const red_geom *g, const kg_shape *s, LLVMValueRef i) {
  LLVMValueRef base = kl_i64(L, 0);
  int64_t div = 1;
  for (int d = g->rank - 1; d >= 0; d--) {
    if (g->red[d]) continue;
    if (s->dim[d] > 1) base = add(L, base, coord_term(L, i, div, s->dim[d], g->ist[d]));
    div *= s->dim[d];
  }
  return base;
}

/* ... plus the offset of the j-th reduced element. */
static LLVMValueRef red_off(kl_ctx *L, const red_geom *g, const kg_shape *s, LLVMValueRef base, LLVMValueRef j) {
  LLVMValueRef off = base;
  int64_t rdiv = 1;
  for (int d = g->rank - 1; d >= 0; d--) {
    if (!g->red[d] || s->dim[d] == 1) continue;
    off = add(L, off, coord_term(L, j, rdiv, s->dim[d], g->ist[d]));
    rdiv *= s->dim[d];
  }
  return off;
}

static LLVMValueRef red_finish(kl_ctx *L, int v, const red_geom *g, LLVMValueRef r) {
  if (L->m->nodes[v].op != KC_OP_MEAN) return r;
  kiln_dtype dt = g->dt;
  if (kg_dtype_is_float(dt)) return prim2(L, "div", dt, r, kl_const_f(L, dt, (double)g->count));
  if (!g->count) return kl_const_i(L, dt, 0);
  /* integer mean truncates toward zero, as TF's */
  return kg_dtype_is_signed(dt) ? LLVMBuildSDiv(L->B, r, kl_const_i(L, dt, g->count), "")
                                : LLVMBuildUDiv(L->B, r, kl_const_i(L, dt, g->count), "");
}

static bool emit_reduce(kl_ctx *L, int v, LLVMValueRef i) {
  red_geom g;
  red_geom_of(L->m, v, &g);
  const kg_shape *s = &kl_in_type(L, v, 0)->shape;
  kiln_dtype dt = g.dt;
  LLVMValueRef base = red_base(L, &g, s, i);
  LLVMValueRef acc = slot(L, dt, reduce_identity(L, g.prim, dt), "acc");
  if (g.count > 0) {
    kl_loop lp = kl_for(L, kl_i64(L, g.count), "red");
    LLVMValueRef off = red_off(L, &g, s, base, lp.index);
    LLVMBuildStore(L->B, prim2(L, g.prim, dt, get(L, dt, acc), kl_load(L, dt, kl_in(L, v, 0), off)), acc);
    kl_for_end(L, &lp);
  }
  kl_store(L, dt, kl_out(L, v, 0), i, red_finish(L, v, &g, get(L, dt, acc)));
  return true;
}

/* A reduction of at least this many elements per output takes a block of
 * GPU_BLOCK threads per output: each thread reduces a strided share, then a
 * shared-memory tree combines the shares. */
#define BLOCK_REDUCE_MIN 512

static bool reduce_blocked(const kg_module *m, int v) {
  red_geom g;
  red_geom_of(m, v, &g);
  return g.count >= BLOCK_REDUCE_MIN;
}

static bool emit_reduce_block(kl_ctx *L, blk *B, int v) {
  red_geom g;
  red_geom_of(L->m, v, &g);
  const kg_shape *s = &kl_in_type(L, v, 0)->shape;
  kiln_dtype dt = g.dt;
  LLVMValueRef sh = shared(B, dt, GPU_BLOCK, "red");
  LLVMValueRef base = red_base(L, &g, s, B->block);
  thr_begin(B);
  LLVMValueRef acc = slot(L, dt, reduce_identity(L, g.prim, dt), "acc");
  kl_loop lp = kl_for(L, kl_i64(L, (g.count + GPU_BLOCK - 1) / GPU_BLOCK), "share");
  LLVMValueRef j = add(L, mul(L, lp.index, GPU_BLOCK), B->tid);
  LLVMBasicBlockRef in = if_begin(L, ult(L, j, kl_i64(L, g.count)), "in_range");
  LLVMValueRef x = kl_load(L, dt, kl_in(L, v, 0), red_off(L, &g, s, base, j));
  LLVMBuildStore(L->B, prim2(L, g.prim, dt, get(L, dt, acc), x), acc);
  if_end(L, in);
  kl_for_end(L, &lp);
  sh_store(B, dt, sh, B->tid, get(L, dt, acc));
  thr_end(B);
  for (int step = GPU_BLOCK / 2; step >= 1; step /= 2) {
    barrier(B);
    thr_begin(B);
    LLVMBasicBlockRef act = if_begin(L, ult(L, B->tid, kl_i64(L, step)), "tree");
    LLVMValueRef o = add(L, B->tid, kl_i64(L, step));
    sh_store(B, dt, sh, B->tid, prim2(L, g.prim, dt, sh_load(B, dt, sh, B->tid), sh_load(B, dt, sh, o)));
    if_end(L, act);
    thr_end(B);
  }
  barrier(B);
  thr_begin(B);
  LLVMBasicBlockRef first = if_begin(L, LLVMBuildICmp(L->B, LLVMIntEQ, B->tid, kl_i64(L, 0), ""), "write");
  kl_store(L, dt, kl_out(L, v, 0), B->block, red_finish(L, v, &g, sh_load(B, dt, sh, kl_i64(L, 0))));
  if_end(L, first);
  thr_end(B);
  return true;
}

/* ---- matmul: a tiled GEMM in shared memory ----
 *
 * Each block computes a TILE x TILE tile of C (one matrix of the batch):
 * per step it stages a TILE x KSTEP slice of A and a KSTEP x TILE slice of B
 * in shared memory (zero outside the matrices), and each of its 256 threads
 * accumulates a 4 x 4 micro-tile from them; rows tr + 16r and columns
 * tc + 16c, so the threads of a warp read consecutive columns of the B tile
 * and write consecutive columns of C.  Where cuBLAS is present the runtime
 * calls it instead (the launch carries a kiln_gpu_gemm). */

#define TILE 64
#define KSTEP 16
#define MICRO 4

typedef struct mm_geom {
  kiln_dtype dt;
  bool ta, tb;
  int64_t M, N, K, batch, tiles_m, tiles_n;
  kg_shape ab, bb, ob;
} mm_geom;

static void mm_geom_of(const kg_module *m, int v, mm_geom *g) {
  const kg_node *n = &m->nodes[v];
  const kg_type *at = kg_ref_type(m, n->in[0]), *bt = kg_ref_type(m, n->in[1]), *yt = &n->out[0];
  g->dt = at->dtype;
  g->ta = kg_attr_bool(n, "transpose_a", false);
  g->tb = kg_attr_bool(n, "transpose_b", false);
  int ar = at->shape.rank, br = bt->shape.rank, yr = yt->shape.rank;
  g->M = yt->shape.dim[yr - 2];
  g->N = yt->shape.dim[yr - 1];
  g->K = g->ta ? at->shape.dim[ar - 2] : at->shape.dim[ar - 1];
  g->ab = (kg_shape){.rank = ar - 2};
  g->bb = (kg_shape){.rank = br - 2};
  g->ob = (kg_shape){.rank = yr - 2};
  for (int d = 0; d < ar - 2; d++) g->ab.dim[d] = at->shape.dim[d];
  for (int d = 0; d < br - 2; d++) g->bb.dim[d] = bt->shape.dim[d];
  g->batch = 1;
  for (int d = 0; d < yr - 2; d++) g->ob.dim[d] = yt->shape.dim[d], g->batch *= yt->shape.dim[d];
  g->tiles_m = (g->M + TILE - 1) / TILE;
  g->tiles_n = (g->N + TILE - 1) / TILE;
}

/* The element offset of batch `b` (of the output's batch shape ob) in an
 * operand with batch shape opb and matrices of `mat` elements. */
static LLVMValueRef batch_off(kl_ctx *L, LLVMValueRef b, const kg_shape *opb, const kg_shape *ob, int64_t mat) {
  LLVMValueRef off = kl_i64(L, 0);
  int64_t div = 1, stride = mat;
  for (int d = ob->rank - 1; d >= 0; d--) {
    int od = d - (ob->rank - opb->rank);
    int64_t ext = od >= 0 ? opb->dim[od] : 1;
    if (ext > 1) off = add(L, off, coord_term(L, b, div, ob->dim[d], stride));
    stride *= ext;
    div *= ob->dim[d];
  }
  return off;
}

/* Thread tid's element j of a TILE x KSTEP staging: (r, kk) with the
 * operand's contiguous dimension fastest, so the global reads coalesce. */
static void stage_coords(kl_ctx *L, LLVMValueRef e, bool k_fastest, LLVMValueRef *r, LLVMValueRef *kk) {
  if (k_fastest) *r = udiv(L, e, KSTEP), *kk = urem(L, e, KSTEP);
  else *kk = udiv(L, e, TILE), *r = urem(L, e, TILE);
}

static bool emit_matmul_tiled(kl_ctx *L, blk *B, int v) {
  mm_geom g;
  mm_geom_of(L->m, v, &g);
  kiln_dtype dt = g.dt;
  LLVMValueRef A = kl_in(L, v, 0), Bm = kl_in(L, v, 1), C = kl_out(L, v, 0);
  /* uniform: which tile of which matrix */
  LLVMValueRef bn = urem(L, B->block, g.tiles_n);
  LLVMValueRef bm = urem(L, udiv(L, B->block, g.tiles_n), g.tiles_m);
  LLVMValueRef bi = udiv(L, B->block, g.tiles_n * g.tiles_m);
  LLVMValueRef a0 = batch_off(L, bi, &g.ab, &g.ob, g.M * g.K), b0 = batch_off(L, bi, &g.bb, &g.ob, g.K * g.N);
  LLVMValueRef c0 = mul(L, bi, g.M * g.N);
  LLVMValueRef row0 = mul(L, bm, TILE), col0 = mul(L, bn, TILE);
  LLVMValueRef As = shared(B, dt, KSTEP * TILE, "As"), Bs = shared(B, dt, KSTEP * TILE, "Bs");
  const int NACC = MICRO * MICRO;
  LLVMValueRef acc = priv(B, dt, NACC, "acc");
  LLVMValueRef zero = zero_of(L, dt);
  thr_begin(B);
  for (int j = 0; j < NACC; j++) LLVMBuildStore(L->B, zero, priv_at(B, dt, acc, NACC, j));
  thr_end(B);
  LLVMValueRef vM = kl_i64(L, g.M), vN = kl_i64(L, g.N), vK = kl_i64(L, g.K);
  kl_loop kt = kl_for(L, kl_i64(L, (g.K + KSTEP - 1) / KSTEP), "ktile");
  LLVMValueRef k0 = mul(L, kt.index, KSTEP);
  /* stage: A[row0.., k0..] into As[kk][r], B[k0.., col0..] into Bs[kk][c] */
  thr_begin(B);
  for (int j = 0; j < TILE * KSTEP / GPU_BLOCK; j++) {
    LLVMValueRef e = add(L, B->tid, kl_i64(L, (int64_t)j * GPU_BLOCK)), r, kk;
    stage_coords(L, e, !g.ta, &r, &kk);
    LLVMValueRef row = add(L, row0, r), k = add(L, k0, kk);
    LLVMValueRef inb = LLVMBuildAnd(L->B, ult(L, row, vM), ult(L, k, vK), "");
    LLVMValueRef ai = add(L, a0, g.ta ? add(L, mul(L, k, g.M), row) : add(L, mul(L, row, g.K), k));
    LLVMValueRef x = kl_load(L, dt, A, LLVMBuildSelect(L->B, inb, ai, a0, ""));
    sh_store(B, dt, As, add(L, mul(L, kk, TILE), r), LLVMBuildSelect(L->B, inb, x, zero, ""));
    LLVMValueRef c;
    stage_coords(L, e, g.tb, &c, &kk);
    LLVMValueRef col = add(L, col0, c);
    k = add(L, k0, kk);
    inb = LLVMBuildAnd(L->B, ult(L, col, vN), ult(L, k, vK), "");
    LLVMValueRef bidx = add(L, b0, g.tb ? add(L, mul(L, col, g.K), k) : add(L, mul(L, k, g.N), col));
    LLVMValueRef y = kl_load(L, dt, Bm, LLVMBuildSelect(L->B, inb, bidx, b0, ""));
    sh_store(B, dt, Bs, add(L, mul(L, kk, TILE), c), LLVMBuildSelect(L->B, inb, y, zero, ""));
  }
  thr_end(B);
  barrier(B);
  /* compute: the 4 x 4 micro-tile from the staged slices */
  thr_begin(B);
  LLVMValueRef tr = udiv(L, B->tid, TILE / MICRO), tc = urem(L, B->tid, TILE / MICRO);
  LLVMValueRef sum[MICRO * MICRO];
  for (int j = 0; j < NACC; j++) sum[j] = LLVMBuildLoad2(L->B, kl_value_type(L, dt), priv_at(B, dt, acc, NACC, j), "");
  for (int kk = 0; kk < KSTEP; kk++) {
    LLVMValueRef a[MICRO], b[MICRO];
    for (int r = 0; r < MICRO; r++)
      a[r] = sh_load(B, dt, As, add(L, tr, kl_i64(L, (int64_t)kk * TILE + r * (TILE / MICRO))));
    for (int c = 0; c < MICRO; c++)
      b[c] = sh_load(B, dt, Bs, add(L, tc, kl_i64(L, (int64_t)kk * TILE + c * (TILE / MICRO))));
    for (int r = 0; r < MICRO; r++)
      for (int c = 0; c < MICRO; c++) sum[r * MICRO + c] = prim2(L, "add", dt, sum[r * MICRO + c], prim2(L, "mul", dt, a[r], b[c]));
  }
  for (int j = 0; j < NACC; j++) LLVMBuildStore(L->B, sum[j], priv_at(B, dt, acc, NACC, j));
  thr_end(B);
  barrier(B);
  kl_for_end(L, &kt);
  /* write the micro-tile's elements that lie inside C */
  thr_begin(B);
  tr = udiv(L, B->tid, TILE / MICRO), tc = urem(L, B->tid, TILE / MICRO);
  for (int r = 0; r < MICRO; r++)
    for (int c = 0; c < MICRO; c++) {
      LLVMValueRef row = add(L, add(L, row0, tr), kl_i64(L, r * (TILE / MICRO)));
      LLVMValueRef col = add(L, add(L, col0, tc), kl_i64(L, c * (TILE / MICRO)));
      LLVMBasicBlockRef after = if_begin(L, LLVMBuildAnd(L->B, ult(L, row, vM), ult(L, col, vN), ""), "store");
      LLVMValueRef val = LLVMBuildLoad2(L->B, kl_value_type(L, dt), priv_at(B, dt, acc, NACC, r * MICRO + c), "");
      kl_store(L, dt, C, add(L, c0, add(L, mul(L, row, g.N), col)), val);
      if_end(L, after);
    }
  thr_end(B);
  return true;
}

bool kc_gpu_gemm_of(const kg_module *m, int v, kc_gpu_gemm *out) {
  if (kc_gpu_kind_of(m, v) != KC_GPU_MATMUL) return false;
  mm_geom g;
  mm_geom_of(m, v, &g);
  if (g.dt != KILN_F32 && g.dt != KILN_F64) return false;
  if (g.M > INT32_MAX || g.N > INT32_MAX || g.K > INT32_MAX || g.batch > INT32_MAX) return false;
  /* cuBLAS takes a batch as a constant stride: each operand's batch shape
   * is the output's, or it has none (its matrix repeats) */
  const kg_shape *ops[2] = {&g.ab, &g.bb};
  int64_t strides[2] = {g.M * g.K, g.K * g.N};
  for (int k = 0; k < 2; k++) {
    int64_t nb = kg_shape_numel(ops[k]);
    if (nb == 1) strides[k] = 0;
    else if (!kg_shape_eq(ops[k], &g.ob)) return false;
  }
  *out = (kc_gpu_gemm){g.dt, g.ta, g.tb, (int32_t)g.batch, g.M, g.N, g.K, strides[0], strides[1], g.M * g.N};
  return true;
}

/* ---- concat, gather: one output element per thread ---- */

static bool emit_concat(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *y = kl_out_type(L, v, 0);
  int rank = y->shape.rank;
  int ax = (int)kg_attr_int(n, "axis", 0);
  if (ax < 0) ax += rank;
  int64_t inner = 1;
  for (int d = ax + 1; d < rank; d++) inner *= y->shape.dim[d];
  int64_t D = y->shape.dim[ax];
  LLVMValueRef o = udiv(L, i, D * inner), a = urem(L, udiv(L, i, inner), D), in = urem(L, i, inner);
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(L->C, L->fn, "concat_done");
  int64_t lo = 0;
  for (int k = 0; k < n->n_in; k++) {
    int64_t Dk = kl_in_type(L, v, k)->shape.dim[ax];
    if (!Dk) continue;
    LLVMBasicBlockRef take = LLVMAppendBasicBlockInContext(L->C, L->fn, "concat_take");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(L->C, L->fn, "concat_next");
    LLVMBuildCondBr(L->B, ult(L, a, kl_i64(L, lo + Dk)), take, next);
    LLVMPositionBuilderAtEnd(L->B, take);
    LLVMValueRef src = add(L, mul(L, add(L, mul(L, o, Dk), LLVMBuildSub(L->B, a, kl_i64(L, lo), "")), inner), in);
    kl_store(L, y->dtype, kl_out(L, v, 0), i, kl_load(L, y->dtype, kl_in(L, v, k), src));
    LLVMBuildBr(L->B, done);
    LLVMPositionBuilderAtEnd(L->B, next);
    lo += Dk;
  }
  LLVMBuildBr(L->B, done);
  LLVMPositionBuilderAtEnd(L->B, done);
  return true;
}

/* out[o, k, :] = params[o, indices[k], :]; an index out of range gives
 * zeros on the GPU (as TF's GPU kernel does: a kernel cannot fail a run). */
static bool emit_gather(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *pt = kl_in_type(L, v, 0), *it = kl_in_type(L, v, 1);
  int ax = (int)kg_attr_int(n, "axis", 0);
  if (ax < 0) ax += pt->shape.rank;
  int64_t inner = 1, A = pt->shape.dim[ax], N = kg_shape_numel(&it->shape);
  for (int d = ax + 1; d < pt->shape.rank; d++) inner *= pt->shape.dim[d];
  LLVMValueRef o = udiv(L, i, N * inner), k = urem(L, udiv(L, i, inner), N), in = urem(L, i, inner);
  LLVMValueRef idx = kl_load(L, it->dtype, kl_in(L, v, 1), k);
  if (it->dtype != KILN_I64) idx = LLVMBuildSExt(L->B, idx, L->t_i64, "");
  LLVMValueRef ok = ult(L, idx, kl_i64(L, A)); /* unsigned: negative indices too */
  LLVMValueRef src = add(L, mul(L, add(L, mul(L, o, A), LLVMBuildSelect(L->B, ok, idx, kl_i64(L, 0), "")), inner), in);
  LLVMValueRef x = kl_load(L, pt->dtype, kl_in(L, v, 0), src);
  kl_store(L, pt->dtype, kl_out(L, v, 0), i, LLVMBuildSelect(L->B, ok, x, zero_of(L, pt->dtype), ""));
  return true;
}

/* ---- conv2d and the pools (NHWC): one output element per thread ---- */

/* (n, oh, ow, ch) of output element i of shape [N, OH, OW, CH] */
static void nhwc_coords(kl_ctx *L, const kc_window *g, int64_t CH, LLVMValueRef i, LLVMValueRef c[4]) {
  c[3] = urem(L, i, CH);
  LLVMValueRef r = udiv(L, i, CH);
  c[2] = urem(L, r, g->OW);
  r = udiv(L, r, g->OW);
  c[1] = urem(L, r, g->OH);
  c[0] = udiv(L, r, g->OH);
}

/* ih = oh*sh - pt + kh*dh as a signed i64, and whether it lies in [0, H) */
static LLVMValueRef tap(kl_ctx *L, LLVMValueRef o, int64_t s, int64_t pad, LLVMValueRef k, int64_t d, int64_t H,
                        LLVMValueRef *inside) {
  LLVMValueRef x = LLVMBuildSub(L->B, add(L, mul(L, o, s), mul(L, k, d)), kl_i64(L, pad), "");
  *inside = ult(L, x, kl_i64(L, H));
  return x;
}

static bool emit_conv2d(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *xt = kl_in_type(L, v, 0), *ft = kl_in_type(L, v, 1);
  kiln_dtype dt = xt->dtype;
  kc_window g;
  if (!kc_window_of(n, &xt->shape, ft->shape.dim[0], ft->shape.dim[1], true, &g))
    return kc_error(L->diag, n->loc, "internal: invalid conv2d geometry of '%s'", n->name);
  int64_t O = ft->shape.dim[3];
  LLVMValueRef c[4];
  nhwc_coords(L, &g, O, i, c);
  LLVMValueRef acc = slot(L, dt, kl_const_f(L, dt, 0), "acc");
  kl_loop lh = kl_for(L, kl_i64(L, g.KH), "kh");
  LLVMValueRef inh, ih = tap(L, c[1], g.sh, g.pt, lh.index, g.dh, g.H, &inh);
  LLVMBasicBlockRef endh = if_begin(L, inh, "row_in");
  kl_loop lw = kl_for(L, kl_i64(L, g.KW), "kw");
  LLVMValueRef inw, iw = tap(L, c[2], g.sw, g.pl, lw.index, g.dw, g.W, &inw);
  LLVMBasicBlockRef endw = if_begin(L, inw, "col_in");
  LLVMValueRef xb = mul(L, add(L, mul(L, add(L, mul(L, c[0], g.H), ih), g.W), iw), g.C);
  LLVMValueRef fb = add(L, mul(L, add(L, mul(L, lh.index, g.KW), lw.index), g.C * O), c[3]);
  kl_loop lc = kl_for(L, kl_i64(L, g.C), "ci");
  LLVMValueRef x = kl_load(L, dt, kl_in(L, v, 0), add(L, xb, lc.index));
  LLVMValueRef f = kl_load(L, dt, kl_in(L, v, 1), add(L, fb, mul(L, lc.index, O)));
  LLVMBuildStore(L->B, prim2(L, "add", dt, get(L, dt, acc), prim2(L, "mul", dt, x, f)), acc);
  kl_for_end(L, &lc);
  if_end(L, endw);
  kl_for_end(L, &lw);
  if_end(L, endh);
  kl_for_end(L, &lh);
  kl_store(L, dt, kl_out(L, v, 0), i, get(L, dt, acc));
  return true;
}

/* max_pool: the maximum of the window's taps inside the input; avg_pool:
 * their mean (padding is not counted), as the CPU's lowering. */
static bool emit_pool(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *xt = kl_in_type(L, v, 0);
  kiln_dtype dt = xt->dtype;
  bool max = n->op == KC_OP_MAX_POOL;
  int cnt = 0;
  const int64_t *ks = NULL;
  kc_attr_ints(n, "ksize", &cnt, &ks);
  int64_t kh = cnt == 4 ? ks[1] : cnt >= 2 ? ks[0] : 1, kw = cnt == 4 ? ks[2] : cnt >= 2 ? ks[1] : 1;
  kc_window g;
  if (!kc_window_of(n, &xt->shape, kh, kw, false, &g))
    return kc_error(L->diag, n->loc, "internal: invalid pooling geometry of '%s'", n->name);
  LLVMValueRef c[4];
  nhwc_coords(L, &g, g.C, i, c);
  LLVMValueRef acc = slot(L, dt, kl_const_f(L, dt, max ? -INFINITY : 0), "acc");
  LLVMValueRef taps = slot(L, KILN_I64, kl_i64(L, 0), "taps");
  kl_loop lh = kl_for(L, kl_i64(L, g.KH), "kh");
  LLVMValueRef inh, ih = tap(L, c[1], g.sh, g.pt, lh.index, 1, g.H, &inh);
  LLVMBasicBlockRef endh = if_begin(L, inh, "row_in");
  kl_loop lw = kl_for(L, kl_i64(L, g.KW), "kw");
  LLVMValueRef inw, iw = tap(L, c[2], g.sw, g.pl, lw.index, 1, g.W, &inw);
  LLVMBasicBlockRef endw = if_begin(L, inw, "col_in");
  LLVMValueRef xi = add(L, mul(L, add(L, mul(L, add(L, mul(L, c[0], g.H), ih), g.W), iw), g.C), c[3]);
  LLVMBuildStore(L->B, prim2(L, max ? "max" : "add", dt, get(L, dt, acc), kl_load(L, dt, kl_in(L, v, 0), xi)), acc);
  LLVMBuildStore(L->B, add(L, get(L, KILN_I64, taps), kl_i64(L, 1)), taps);
  if_end(L, endw);
  kl_for_end(L, &lw);
  if_end(L, endh);
  kl_for_end(L, &lh);
  LLVMValueRef r = get(L, dt, acc);
  if (!max) r = prim2(L, "div", dt, r, kl_convert(L, get(L, KILN_I64, taps), KILN_I64, dt));
  kl_store(L, dt, kl_out(L, v, 0), i, r);
  return true;
}

/* ---- kinds, geometry, whole kernels ---- */

kc_gpu_kind kc_gpu_kind_of(const kg_module *m, int v) {
  const kg_node *n = &m->nodes[v];
  unsigned f = kc_ops[n->op].flags;
  if (n->op == KC_OP_VARIABLE || n->op == KC_OP_NO_OP || n->op == KC_OP_DEVICE_COPY || (f & KC_OP_ALIAS))
    return KC_GPU_NOCODE;
  if ((f & KC_OP_ELEMENTWISE) || is_assign(n->op)) return KC_GPU_MAP;
  switch (n->op) {
  case KC_OP_SUM: case KC_OP_MEAN: case KC_OP_MAX: case KC_OP_MIN: case KC_OP_PROD: return KC_GPU_REDUCE;
  case KC_OP_SOFTMAX: case KC_OP_LOG_SOFTMAX: return KC_GPU_SOFTMAX;
  case KC_OP_TRANSPOSE: case KC_OP_SLICE: case KC_OP_BROADCAST_TO: return KC_GPU_STRIDED;
  case KC_OP_MATMUL: return KC_GPU_MATMUL;
  case KC_OP_CONCAT: return KC_GPU_CONCAT;
  case KC_OP_GATHER: return KC_GPU_GATHER;
  case KC_OP_CONV2D: return KC_GPU_CONV2D;
  case KC_OP_MAX_POOL: case KC_OP_AVG_POOL: return KC_GPU_POOL;
  default: return KC_GPU_NONE;
  }
}

int64_t kc_gpu_threads(const kg_module *m, int v) {
  const kg_node *n = &m->nodes[v];
  switch (kc_gpu_kind_of(m, v)) {
  case KC_GPU_MAP: case KC_GPU_REDUCE: case KC_GPU_STRIDED: case KC_GPU_MATMUL: case KC_GPU_CONCAT:
  case KC_GPU_GATHER: case KC_GPU_CONV2D: case KC_GPU_POOL:
    return kg_shape_numel(&n->out[0].shape);
  case KC_GPU_SOFTMAX: {
    const kg_shape *s = &n->out[0].shape;
    if (!s->rank) return 1;
    int64_t outer, mid, inner;
    split_axis(s, softmax_axis(n, s->rank), &outer, &mid, &inner);
    return mid ? outer * inner : 0;
  }
  default: return 0;
  }
}

/* Block kernels: the tiled GEMM and the large reductions. */
static bool is_blocked(const kg_module *m, int v) {
  kc_gpu_kind k = kc_gpu_kind_of(m, v);
  return k == KC_GPU_MATMUL || (k == KC_GPU_REDUCE && reduce_blocked(m, v));
}

kc_gpu_geom kc_gpu_geometry(const kg_module *m, int v) {
  kc_gpu_geom g = {.block = GPU_BLOCK};
  if (!is_blocked(m, v)) {
    g.n = kc_gpu_threads(m, v);
    g.grid = g.n > 0 ? (g.n + GPU_BLOCK - 1) / GPU_BLOCK : 0;
    return g;
  }
  g.blocked = true;
  if (kc_gpu_kind_of(m, v) == KC_GPU_MATMUL) {
    mm_geom mg;
    mm_geom_of(m, v, &mg);
    g.grid = mg.batch * mg.tiles_m * mg.tiles_n;
  } else {
    g.grid = kg_shape_numel(&m->nodes[v].out[0].shape);
  }
  g.n = g.grid * GPU_BLOCK;
  return g;
}

static bool emit_body(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  switch (kc_gpu_kind_of(L->m, v)) {
  case KC_GPU_MAP: {
    char err[160];
    const kc_expr *e = kc_node_expr(L->m->arena, n, err, sizeof err);
    return e ? kl_emit_map(L, v, e) : kc_error(L->diag, n->loc, "%s", err);
  }
  case KC_GPU_REDUCE: return emit_reduce(L, v, i);
  case KC_GPU_SOFTMAX: return emit_softmax(L, v, i);
  case KC_GPU_STRIDED: return emit_strided(L, v, i);
  case KC_GPU_CONCAT: return emit_concat(L, v, i);
  case KC_GPU_GATHER: return emit_gather(L, v, i);
  case KC_GPU_CONV2D: return emit_conv2d(L, v, i);
  case KC_GPU_POOL: return emit_pool(L, v, i);
  default: return kc_error(L->diag, n->loc, "internal: '%s' (%s) has no GPU kernel", n->name, kc_ops[n->op].name);
  }
}

static LLVMValueRef sreg(kl_ctx *L, const char *name) {
  LLVMTypeRef fty = LLVMFunctionType(L->t_i32, NULL, 0, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(L->M, name);
  if (!fn) fn = LLVMAddFunction(L->M, name, fty);
  return LLVMBuildZExt(L->B, LLVMBuildCall2(L->B, fty, fn, NULL, 0, ""), L->t_i64, "");
}

bool kl_gpu_emit_kernel(kl_ctx *L, int v, LLVMValueRef *args, LLVMValueRef n, bool emulate) {
  L->kernel_args = args;
  bool ok;
  if (is_blocked(L->m, v)) {
    blk B = {.L = L, .emu = emulate};
    kl_loop gl;
    if (emulate) {
      gl = kl_for(L, LLVMBuildUDiv(L->B, n, kl_i64(L, GPU_BLOCK), ""), "block");
      B.block = gl.index;
    } else {
      B.block = sreg(L, "llvm.nvvm.read.ptx.sreg.ctaid.x");
      B.gpu_tid = sreg(L, "llvm.nvvm.read.ptx.sreg.tid.x");
    }
    ok = kc_gpu_kind_of(L->m, v) == KC_GPU_MATMUL ? emit_matmul_tiled(L, &B, v) : emit_reduce_block(L, &B, v);
    if (emulate) kl_for_end(L, &gl);
  } else if (emulate) {
    kl_loop lp = kl_for(L, n, "emulated");
    L->kernel_index = lp.index;
    ok = emit_body(L, v, lp.index);
    kl_for_end(L, &lp);
  } else {
    LLVMValueRef i = add(L, LLVMBuildMul(L->B, sreg(L, "llvm.nvvm.read.ptx.sreg.ctaid.x"),
                                         sreg(L, "llvm.nvvm.read.ptx.sreg.ntid.x"), ""),
                         sreg(L, "llvm.nvvm.read.ptx.sreg.tid.x"));
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(L->C, L->fn, "body");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(L->C, L->fn, "done");
    LLVMBuildCondBr(L->B, LLVMBuildICmp(L->B, LLVMIntSLT, i, n, ""), body, done);
    LLVMPositionBuilderAtEnd(L->B, body);
    L->kernel_index = i;
    ok = emit_body(L, v, i);
    LLVMBuildBr(L->B, done);
    LLVMPositionBuilderAtEnd(L->B, done);
  }
  L->kernel_args = NULL;
  L->kernel_index = NULL;
  return ok;
}
