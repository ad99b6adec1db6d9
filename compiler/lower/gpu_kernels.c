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
  default: return KC_GPU_NONE;
  }
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

int64_t kc_gpu_threads(const kg_module *m, int v) {
  const kg_node *n = &m->nodes[v];
  switch (kc_gpu_kind_of(m, v)) {
  case KC_GPU_MAP: case KC_GPU_REDUCE: case KC_GPU_STRIDED: case KC_GPU_MATMUL:
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

static bool emit_reduce(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *it = kl_in_type(L, v, 0);
  kiln_dtype dt = it->dtype;
  int rank = it->shape.rank;
  bool red[KILN_MAX_RANK] = {0};
  int cnt = 0;
  const int64_t *axes = NULL;
  if (!kc_attr_ints(n, "axes", &cnt, &axes))
    for (int d = 0; d < rank; d++) red[d] = true;
  for (int k = 0; k < cnt; k++) red[axes[k] < 0 ? axes[k] + rank : axes[k]] = true;
  int64_t ist[KILN_MAX_RANK];
  row_strides(&it->shape, ist);
  /* the kept dimensions, in order, are the output's (keepdims adds ones) */
  LLVMValueRef base = kl_i64(L, 0);
  int64_t div = 1, count = 1;
  for (int d = rank - 1; d >= 0; d--) {
    if (red[d]) {
      count *= it->shape.dim[d];
      continue;
    }
    if (it->shape.dim[d] > 1) base = LLVMBuildAdd(L->B, base, coord_term(L, i, div, it->shape.dim[d], ist[d]), "");
    div *= it->shape.dim[d];
  }
  const char *prim = n->op == KC_OP_PROD ? "mul" : n->op == KC_OP_MAX ? "max" : n->op == KC_OP_MIN ? "min" : "add";
  LLVMValueRef acc = slot(L, dt, reduce_identity(L, prim, dt), "acc");
  if (count > 0) {
    kl_loop lp = kl_for(L, kl_i64(L, count), "red");
    LLVMValueRef off = base;
    int64_t rdiv = 1;
    for (int d = rank - 1; d >= 0; d--) {
      if (!red[d] || it->shape.dim[d] == 1) continue;
      off = LLVMBuildAdd(L->B, off, coord_term(L, lp.index, rdiv, it->shape.dim[d], ist[d]), "");
      rdiv *= it->shape.dim[d];
    }
    LLVMBuildStore(L->B, prim2(L, prim, dt, get(L, dt, acc), kl_load(L, dt, kl_in(L, v, 0), off)), acc);
    kl_for_end(L, &lp);
  }
  LLVMValueRef r = get(L, dt, acc);
  if (n->op == KC_OP_MEAN) { /* integer mean truncates toward zero, as TF's */
    if (kg_dtype_is_float(dt)) r = prim2(L, "div", dt, r, kl_const_f(L, dt, (double)count));
    else if (!count) r = kl_const_i(L, dt, 0);
    else r = kg_dtype_is_signed(dt) ? LLVMBuildSDiv(L->B, r, kl_const_i(L, dt, count), "")
                                    : LLVMBuildUDiv(L->B, r, kl_const_i(L, dt, count), "");
  }
  kl_store(L, dt, kl_out(L, v, 0), i, r);
  return true;
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

/* ---- matmul: one output element per thread ---- */

/* The element offset of batch `b` (of the output's batch shape ob) in an
 * operand with batch shape opb and matrices of `mat` elements. */
static LLVMValueRef batch_off(kl_ctx *L, LLVMValueRef b, const kg_shape *opb, const kg_shape *ob, int64_t mat) {
  LLVMValueRef off = kl_i64(L, 0);
  int64_t div = 1, stride = mat;
  for (int d = ob->rank - 1; d >= 0; d--) {
    int od = d - (ob->rank - opb->rank);
    int64_t ext = od >= 0 ? opb->dim[od] : 1;
    if (ext > 1) off = LLVMBuildAdd(L->B, off, coord_term(L, b, div, ob->dim[d], stride), "");
    stride *= ext;
    div *= ob->dim[d];
  }
  return off;
}

static bool emit_matmul(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *at = kl_in_type(L, v, 0), *bt = kl_in_type(L, v, 1), *yt = kl_out_type(L, v, 0);
  kiln_dtype dt = at->dtype;
  bool ta = kg_attr_bool(n, "transpose_a", false), tb = kg_attr_bool(n, "transpose_b", false);
  int ar = at->shape.rank, br = bt->shape.rank, yr = yt->shape.rank;
  int64_t M = yt->shape.dim[yr - 2], N = yt->shape.dim[yr - 1];
  int64_t K = ta ? at->shape.dim[ar - 2] : at->shape.dim[ar - 1];
  kg_shape ab = {.rank = ar - 2}, bb = {.rank = br - 2}, ob = {.rank = yr - 2};
  for (int d = 0; d < ar - 2; d++) ab.dim[d] = at->shape.dim[d];
  for (int d = 0; d < br - 2; d++) bb.dim[d] = bt->shape.dim[d];
  for (int d = 0; d < yr - 2; d++) ob.dim[d] = yt->shape.dim[d];
  LLVMValueRef col = LLVMBuildURem(L->B, i, kl_i64(L, N), "col");
  LLVMValueRef rowb = LLVMBuildUDiv(L->B, i, kl_i64(L, N), "");
  LLVMValueRef row = LLVMBuildURem(L->B, rowb, kl_i64(L, M), "row");
  LLVMValueRef b = LLVMBuildUDiv(L->B, rowb, kl_i64(L, M), "batch");
  LLVMValueRef a0 = batch_off(L, b, &ab, &ob, M * K), b0 = batch_off(L, b, &bb, &ob, K * N);
  /* a[row, k] at row*K + k (row + k*M transposed); b[k, col] at k*N + col (k + col*K transposed) */
  a0 = LLVMBuildAdd(L->B, a0, LLVMBuildMul(L->B, row, kl_i64(L, ta ? 1 : K), ""), "");
  b0 = LLVMBuildAdd(L->B, b0, LLVMBuildMul(L->B, col, kl_i64(L, tb ? K : 1), ""), "");
  LLVMValueRef acc = slot(L, dt, kl_const_f(L, dt, 0), "acc");
  kl_loop lp = kl_for(L, kl_i64(L, K), "dot");
  LLVMValueRef ai = LLVMBuildAdd(L->B, a0, LLVMBuildMul(L->B, lp.index, kl_i64(L, ta ? M : 1), ""), "");
  LLVMValueRef bi = LLVMBuildAdd(L->B, b0, LLVMBuildMul(L->B, lp.index, kl_i64(L, tb ? 1 : N), ""), "");
  LLVMValueRef p = prim2(L, "mul", dt, kl_load(L, dt, kl_in(L, v, 0), ai), kl_load(L, dt, kl_in(L, v, 1), bi));
  LLVMBuildStore(L->B, prim2(L, "add", dt, get(L, dt, acc), p), acc);
  kl_for_end(L, &lp);
  kl_store(L, dt, kl_out(L, v, 0), i, get(L, dt, acc));
  return true;
}

bool kl_gpu_emit_body(kl_ctx *L, int v, LLVMValueRef i) {
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
  case KC_GPU_MATMUL: return emit_matmul(L, v, i);
  default: return kc_error(L->diag, n->loc, "internal: '%s' (%s) has no GPU kernel", n->name, kc_ops[n->op].name);
  }
}
