/* linalg.c — matmul: its shape rule and lowering.
 *
 * Semantics are np.matmul's for rank >= 2 operands: the last two dims are
 * the matrices (after transpose_a / transpose_b), the leading "batch" dims
 * broadcast NumPy-style.  f32/f64 call OpenBLAS once per batch element
 * (cblas_sgemm / cblas_dgemm, row-major), or with `--blas generated` kiln's
 * own GEMM specialized for the shape (lower/gemm.c); integer dtypes, which
 * BLAS lacks, get a generated i-k-j triple loop whose inner loop is
 * contiguous. */
#include <stdint.h>
#include "ir/expr.h" /* before lower.h, which names struct kc_expr */
#include "lower/lower.h"
#include "lower/gemm.h"
#include "ops/ops_util.h"

/* CBLAS enum values (cblas.h), passed as i32. */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

/* The geometry of one matmul: op(A) is M x K, op(B) is K x N. */
typedef struct mm_geom {
  bool ta, tb;
  int64_t M, K, Kb, N;
  kg_shape abatch, bbatch; /* leading dims of each operand */
} mm_geom;

static kg_shape leading(const kg_shape *s) {
  kg_shape b = *s;
  b.rank -= 2;
  return b;
}

static void mm_geom_of(const kg_node *n, const kg_shape *a, const kg_shape *b, mm_geom *g) {
  g->ta = kg_attr_bool(n, "transpose_a", false);
  g->tb = kg_attr_bool(n, "transpose_b", false);
  int64_t a0 = a->dim[a->rank - 2], a1 = a->dim[a->rank - 1];
  int64_t b0 = b->dim[b->rank - 2], b1 = b->dim[b->rank - 1];
  g->M = g->ta ? a1 : a0;
  g->K = g->ta ? a0 : a1;
  g->Kb = g->tb ? b1 : b0;
  g->N = g->tb ? b0 : b1;
  g->abatch = leading(a);
  g->bbatch = leading(b);
}

/* NumPy broadcast compatibility of two batch shapes (right-aligned). */
static bool batches_broadcast(const kg_shape *a, const kg_shape *b) {
  for (int i = a->rank - 1, j = b->rank - 1; i >= 0 && j >= 0; i--, j--)
    if (a->dim[i] != b->dim[j] && a->dim[i] != 1 && b->dim[j] != 1)
      return false;
  return true;
}

bool kc_infer_matmul(kc_infer_ctx *c, kg_node *n) {
  const kg_type *a = kc_in_type(c, n, 0), *b = kc_in_type(c, n, 1);
  char sa[96], sb[96];
  kg_type_str(a, sa, sizeof sa);
  kg_type_str(b, sb, sizeof sb);
  if (a->shape.rank < 2 || b->shape.rank < 2)
    return kc_node_error(c, n, "matmul needs rank >= 2; use expand_dims (a is %s, b is %s)",
                         sa, sb);
  if (a->dtype != b->dtype)
    return kc_node_error(c, n, "matmul operands differ in dtype: a is %s, b is %s", sa, sb);
  mm_geom g;
  mm_geom_of(n, &a->shape, &b->shape, &g);
  if (g.K != g.Kb)
    return kc_node_error(c, n, "matmul inner dimensions differ: "
                         "a %s%s has %lld columns, b %s%s has %lld rows",
                         sa, g.ta ? " (transposed)" : "", (long long)g.K,
                         sb, g.tb ? " (transposed)" : "", (long long)g.Kb);
  if (!batches_broadcast(&g.abatch, &g.bbatch)) { /* say which dims, with the whole shapes */
    char ba[96], bb[96];
    return kc_node_error(c, n, "matmul batch dims %s of a %s and %s of b %s do not broadcast",
                         kc_shape_str(&g.abatch, ba, sizeof ba), sa,
                         kc_shape_str(&g.bbatch, bb, sizeof bb), sb);
  }
  kg_shape s;
  if (!kc_broadcast(c, n, &g.abatch, &g.bbatch, &s))
    return false;
  s.dim[s.rank++] = g.M;
  s.dim[s.rank++] = g.N;
  kc_set_out(c, n, a->dtype, &s);
  return true;
}

/* Element offset of operand batch element for output batch index bi: the
 * operand's batch dims align right against the output's and broadcast
 * where they are 1.  Computed here in C; emitted as arithmetic when there is
 * no broadcasting, else as a lookup in a constant table. */
static LLVMValueRef batch_offset(kl_ctx *L, LLVMValueRef bi, const kg_shape *opb,
                                 const kg_shape *ob, int64_t mat, const char *name) {
  int64_t nb = kg_shape_numel(ob), nop = kg_shape_numel(opb);
  if (nop == 1)
    return kl_i64(L, 0);
  if (nop == nb)
    return LLVMBuildNSWMul(L->B, bi, kl_i64(L, mat), "");
  int64_t *tab = kc_alloc(L->m->arena, (size_t)nb * sizeof *tab);
  for (int64_t i = 0; i < nb; i++) {
    int64_t rem = i, off = 0, stride = mat;
    for (int d = ob->rank - 1, e = opb->rank - 1; d >= 0; d--, e--) {
      int64_t idx = rem % ob->dim[d];
      rem /= ob->dim[d];
      if (e >= 0) {
        if (opb->dim[e] != 1)
          off += idx * stride;
        stride *= opb->dim[e];
      }
    }
    tab[i] = off;
  }
  LLVMValueRef t = kl_const_i64s(L, tab, (int)nb, name);
  return LLVMBuildLoad2(L->B, L->t_i64, LLVMBuildGEP2(L->B, L->t_i64, t, &bi, 1, ""), "");
}

/* C = op(A) * op(B) for one batch element, through cblas_{s,d}gemm. */
static void gemm_blas(kl_ctx *L, kiln_dtype dt, const mm_geom *g, LLVMValueRef A, LLVMValueRef B,
                      LLVMValueRef C) {
  bool f32 = dt == KILN_F32;
  LLVMTypeRef ft = f32 ? L->t_f32 : L->t_f64;
  int64_t lda = g->ta ? g->M : g->K, ldb = g->tb ? g->K : g->N;
  LLVMValueRef args[14] = {
      kl_i32(L, CBLAS_ROW_MAJOR),
      kl_i32(L, g->ta ? CBLAS_TRANS : CBLAS_NO_TRANS),
      kl_i32(L, g->tb ? CBLAS_TRANS : CBLAS_NO_TRANS),
      kl_i32(L, g->M), kl_i32(L, g->N), kl_i32(L, g->K),
      LLVMConstReal(ft, 1.0), A, kl_i32(L, lda),
      B, kl_i32(L, ldb),
      LLVMConstReal(ft, 0.0), C, kl_i32(L, g->N)};
  kl_call(L, f32 ? "cblas_sgemm" : "cblas_dgemm", L->t_void, args, 14);
}

/* A matrix-vector product (M == 1 or N == 1: batch-1 inference layers)
 * through cblas_{s,d}gemv, which skips the packing a GEMM does; false when
 * the shape is not one. */
static bool gemv_blas(kl_ctx *L, kiln_dtype dt, const mm_geom *g, LLVMValueRef A, LLVMValueRef B, LLVMValueRef C) {
  bool f32 = dt == KILN_F32;
  LLVMTypeRef ft = f32 ? L->t_f32 : L->t_f64;
  LLVMValueRef mat, vec;
  int trans;
  int64_t rows, cols;
  if (g->M == 1) { /* c = op(B)^T a: B is K x N (N x K when transposed), a contiguous */
    mat = B, vec = A, trans = g->tb ? CBLAS_NO_TRANS : CBLAS_TRANS;
    rows = g->tb ? g->N : g->K, cols = g->tb ? g->K : g->N;
  } else if (g->N == 1) { /* c = op(A) b: A is M x K (K x M when transposed), b contiguous */
    mat = A, vec = B, trans = g->ta ? CBLAS_TRANS : CBLAS_NO_TRANS;
    rows = g->ta ? g->K : g->M, cols = g->ta ? g->M : g->K;
  } else {
    return false;
  }
  LLVMValueRef args[11] = {kl_i32(L, CBLAS_ROW_MAJOR), kl_i32(L, trans), kl_i32(L, rows), kl_i32(L, cols),
                           LLVMConstReal(ft, 1.0), mat, kl_i32(L, cols), vec, kl_i32(L, 1),
                           LLVMConstReal(ft, 0.0), C};
  LLVMValueRef all[12];
  for (int i = 0; i < 11; i++) all[i] = args[i];
  all[11] = kl_i32(L, 1);
  kl_call(L, f32 ? "cblas_sgemv" : "cblas_dgemv", L->t_void, all, 12);
  return true;
}

/* Element index r * ld + c of a row-major matrix. */
static LLVMValueRef at2(kl_ctx *L, LLVMValueRef r, LLVMValueRef c, int64_t ld) {
  return LLVMBuildNSWAdd(L->B, LLVMBuildNSWMul(L->B, r, kl_i64(L, ld), ""), c, "");
}

/* C += op(A) * op(B) for one batch element, C already zeroed: i-k-j order so
 * the inner loop walks rows of C (and of B unless transposed) contiguously
 * and vectorizes. */
static void gemm_loops(kl_ctx *L, kiln_dtype dt, const mm_geom *g, LLVMValueRef A, LLVMValueRef B,
                       LLVMValueRef C) {
  kl_loop li = kl_for(L, kl_i64(L, g->M), "mmi");
  kl_loop lk = kl_for(L, kl_i64(L, g->K), "mmk");
  LLVMValueRef i = li.index, k = lk.index;
  LLVMValueRef aik = kl_load(L, dt, A, g->ta ? at2(L, k, i, g->M) : at2(L, i, k, g->K));
  kl_loop lj = kl_for(L, kl_i64(L, g->N), "mmj");
  LLVMValueRef j = lj.index;
  LLVMValueRef bkj = kl_load(L, dt, B, g->tb ? at2(L, j, k, g->K) : at2(L, k, j, g->N));
  LLVMValueRef ci = at2(L, i, j, g->N);
  LLVMValueRef prod_args[2] = {aik, bkj};
  LLVMValueRef add_args[2] = {kl_load(L, dt, C, ci), kl_prim(L, "mul", dt, dt, prod_args, 2)};
  kl_store(L, dt, C, ci, kl_prim(L, "add", dt, dt, add_args, 2));
  kl_for_end(L, &lj);
  kl_for_end(L, &lk);
  kl_for_end(L, &li);
}

bool kl_lower_matmul(kl_ctx *L, int node) {
  const kg_node *n = &L->m->nodes[node];
  const kg_type *at = kl_in_type(L, node, 0), *bt = kl_in_type(L, node, 1);
  const kg_type *ct = kl_out_type(L, node, 0);
  kiln_dtype dt = ct->dtype;
  mm_geom g;
  mm_geom_of(n, &at->shape, &bt->shape, &g);
  kg_shape ob = leading(&ct->shape);
  int64_t nb = kg_shape_numel(&ob);
  if (nb * g.M * g.N == 0)
    return true;
  LLVMValueRef A = kl_in(L, node, 0), B = kl_in(L, node, 1), C = kl_out(L, node, 0);
  bool blas = dt == KILN_F32 || dt == KILN_F64;
  bool generated = blas && L->target->generated_blas && kl_gemm_supports(dt);
  if (blas && !generated && (g.M > INT32_MAX || g.N > INT32_MAX || g.K > INT32_MAX)) {
    kc_error_node(L->diag, n->loc, n->name, "matmul dimensions exceed BLAS's 32-bit int range");
    return false;
  }
  /* An empty inner dimension, or the integer path's accumulation: zeros. */
  if (g.K == 0 || !blas)
    kl_memset0(L, C, kg_type_bytes(ct));
  if (g.K == 0)
    return true;
  kl_loop lb = {0};
  LLVMValueRef bi = kl_i64(L, 0);
  if (nb > 1) {
    lb = kl_for(L, kl_i64(L, nb), "mmb");
    bi = lb.index;
  }
  LLVMValueRef Ab = kl_gep(L, dt, A, batch_offset(L, bi, &g.abatch, &ob, g.M * g.K, "mm_aoff"));
  LLVMValueRef Bb = kl_gep(L, dt, B, batch_offset(L, bi, &g.bbatch, &ob, g.K * g.N, "mm_boff"));
  LLVMValueRef Cb = kl_gep(L, dt, C, LLVMBuildNSWMul(L->B, bi, kl_i64(L, g.M * g.N), ""));
  if (generated) {
    kl_gemm gg = {.dt = dt, .ta = g.ta, .tb = g.tb, .M = g.M, .N = g.N, .K = g.K};
    if (kg_shape_numel(&g.bbatch) == 1) Bb = kl_gemm_constant_b(L, &gg, n->in[1], Bb, n->name);
    if (!kl_emit_gemm(L, &gg, Ab, Bb, Cb))
      return false;
  } else if (blas) {
    if (!gemv_blas(L, dt, &g, Ab, Bb, Cb)) gemm_blas(L, dt, &g, Ab, Bb, Cb);
  }
  else
    gemm_loops(L, dt, &g, Ab, Bb, Cb);
  if (nb > 1)
    kl_for_end(L, &lb);
  return true;
}

/* ---- gradient ---- */

#include "passes/autodiff.h"

static kg_ref mm(kc_grad_ctx *g, kg_ref a, kg_ref b, bool ta, bool tb) {
  kg_ref in[] = {a, b};
  kg_attr at[] = {kb_attr_bool("transpose_a", ta), kb_attr_bool("transpose_b", tb)};
  return kb_node(g, KC_OP_MATMUL, in, 2, at, 2);
}

/* TF's MatMul gradient for each transpose combination; broadcast batch
 * dimensions are summed back to each operand's shape. */
bool kc_grad_matmul(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  const kg_node *n = &g->m->nodes[node];
  kg_ref a = n->in[0], b = n->in[1], c = dy[0];
  bool ta = kg_attr_bool(n, "transpose_a", false), tb = kg_attr_bool(n, "transpose_b", false);
  kg_shape sa = kb_type(g, a)->shape, sb = kb_type(g, b)->shape;
  kg_ref da, db;
  if (!ta && !tb) da = mm(g, c, b, false, true), db = mm(g, a, c, true, false);
  else if (!ta && tb) da = mm(g, c, b, false, false), db = mm(g, c, a, true, false);
  else if (ta && !tb) da = mm(g, b, c, false, true), db = mm(g, a, c, false, false);
  else da = mm(g, b, c, true, true), db = mm(g, c, a, true, true);
  dx[0] = kb_sum_to(g, da, &sa);
  dx[1] = kb_sum_to(g, db, &sb);
  return true;
}
