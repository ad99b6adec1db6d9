/* reduce_onnx.c — top_k, added for ONNX's TopK: the k largest (or smallest)
 * elements along an axis and their i64 indices, sorted, ties broken by the
 * lower index; its shape rule, lowering and gradient.
 *
 * The lowering keeps, per row, the best elements seen so far sorted in the
 * output buffers themselves and inserts each new element at its place
 * (O(n*k) per row, no scratch memory): kiln compiles small k well, and a
 * full sort would be wasted when k is much smaller than the row. */
#include <math.h>
#include <stdint.h>
#include "ir/expr.h" /* before lower.h, which names struct kc_expr */
#include "lower/lower.h"
#include "ops/ops_util.h"
#include "passes/autodiff.h"

bool kc_infer_top_k(kc_infer_ctx *c, kg_node *n) {
  const kg_type *t = kc_in_type(c, n, 0);
  int axis;
  if (t->shape.rank == 0) return kc_node_error(c, n, "top_k needs an input of rank >= 1 (got a scalar)");
  if (!kc_axis(c, n, kg_attr_int(n, "axis", -1), t->shape.rank, &axis)) return false;
  int64_t k = kg_attr_int(n, "k", 0), d = t->shape.dim[axis];
  if (k < 0 || k > d) return kc_node_error(c, n, "k=%lld is out of range [0, %lld] for axis %d", (long long)k, (long long)d, axis);
  kg_shape s = t->shape;
  s.dim[axis] = k;
  n->n_out = 2;
  n->out = kc_alloc(c->m->arena, sizeof(kg_type) * 2);
  n->out[0] = (kg_type){t->dtype, s};
  n->out[1] = (kg_type){KILN_I64, s};
  return true;
}

/* Whether the kept element b stays ahead of the newer element v: b >= v
 * for largest (b <= v for smallest), so equal values keep index order.
 * NaN counts as the largest value (NumPy's sort order). */
LLVMValueRef kl_top_k_stays_ahead(kl_ctx *L, kiln_dtype dt, bool largest, LLVMValueRef b, LLVMValueRef v) {
  LLVMValueRef args[2] = {b, v};
  LLVMValueRef r = kl_prim(L, largest ? "ge" : "le", dt, KILN_BOOL, args, 2);
  if (!kg_dtype_is_float(dt)) return r;
  LLVMValueRef nan = largest ? b : v;
  return LLVMBuildOr(L->B, r, LLVMBuildFCmp(L->B, LLVMRealUNO, nan, nan, ""), "");
}

static LLVMValueRef idx_at(kl_ctx *L, LLVMValueRef base, LLVMValueRef j, int64_t stride) {
  return LLVMBuildNSWAdd(L->B, base, LLVMBuildNSWMul(L->B, j, kl_i64(L, stride), ""), "");
}

/* Inserts element e (value v) of a row into the sorted best-so-far list
 * vals/idxs[obase + j*inner], j < f = min(e, k): p = how many stay ahead;
 * entries from p on move down one place (the last falls off), v goes to p. */
static void insert_one(kl_ctx *L, kiln_dtype dt, bool largest, LLVMValueRef vals, LLVMValueRef idxs,
                       LLVMValueRef obase, int64_t inner, int64_t k, LLVMValueRef e, LLVMValueRef v) {
  LLVMBuilderRef B = L->B;
  LLVMValueRef kk = kl_i64(L, k);
  LLVMValueRef f = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, e, kk, ""), e, kk, "");
  /* p: the list is sorted, so counting is finding the place */
  LLVMBasicBlockRef eb = LLVMGetEntryBasicBlock(L->fn);
  LLVMBuilderRef eb_b = LLVMCreateBuilderInContext(L->C);
  LLVMValueRef first = LLVMGetFirstInstruction(eb);
  if (first) LLVMPositionBuilderBefore(eb_b, first);
  else LLVMPositionBuilderAtEnd(eb_b, eb);
  LLVMValueRef pslot = LLVMBuildAlloca(eb_b, L->t_i64, "topk_p");
  LLVMDisposeBuilder(eb_b);
  LLVMBuildStore(B, kl_i64(L, 0), pslot);
  kl_loop lp = kl_for(L, f, "topk_place");
  LLVMValueRef b = kl_load(L, dt, vals, idx_at(L, obase, lp.index, inner));
  LLVMValueRef ahead = LLVMBuildZExt(B, kl_top_k_stays_ahead(L, dt, largest, b, v), L->t_i64, "");
  LLVMBuildStore(B, LLVMBuildAdd(B, LLVMBuildLoad2(B, L->t_i64, pslot, ""), ahead, ""), pslot);
  kl_for_end(L, &lp);
  LLVMValueRef p = LLVMBuildLoad2(B, L->t_i64, pslot, "");
  /* j = k-1 down to 0: new[j] = j == p ? v : j > p ? old[j-1] : old[j];
   * slots j > f are unused yet and may take anything */
  kl_loop lj = kl_for(L, kk, "topk_shift");
  LLVMValueRef j = LLVMBuildSub(B, kl_i64(L, k - 1), lj.index, "");
  LLVMValueRef jm1 = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSGT, j, kl_i64(L, 0), ""),
                                     LLVMBuildSub(B, j, kl_i64(L, 1), ""), kl_i64(L, 0), "");
  LLVMValueRef at = idx_at(L, obase, j, inner), prev = idx_at(L, obase, jm1, inner);
  LLVMValueRef is_p = LLVMBuildICmp(B, LLVMIntEQ, j, p, ""), after = LLVMBuildICmp(B, LLVMIntSGT, j, p, "");
  LLVMValueRef nv = LLVMBuildSelect(B, is_p, v, LLVMBuildSelect(B, after, kl_load(L, dt, vals, prev), kl_load(L, dt, vals, at), ""), "");
  LLVMValueRef ni = LLVMBuildSelect(B, is_p, e, LLVMBuildSelect(B, after, kl_load(L, KILN_I64, idxs, prev), kl_load(L, KILN_I64, idxs, at), ""), "");
  kl_store(L, dt, vals, at, nv);
  kl_store(L, KILN_I64, idxs, at, ni);
  kl_for_end(L, &lj);
}

bool kl_lower_top_k(kl_ctx *L, int node) {
  const kg_node *n = &L->m->nodes[node];
  const kg_type *t = kl_in_type(L, node, 0);
  kiln_dtype dt = t->dtype;
  int64_t axis = kg_attr_int(n, "axis", -1), k = kg_attr_int(n, "k", 0);
  if (axis < 0) axis += t->shape.rank;
  bool largest = kg_attr_bool(n, "largest", true);
  int64_t outer = 1, inner = 1, mid = t->shape.dim[axis];
  for (int d = 0; d < axis; d++) outer *= t->shape.dim[d];
  for (int d = (int)axis + 1; d < t->shape.rank; d++) inner *= t->shape.dim[d];
  if (outer * inner * k == 0) return true;
  LLVMValueRef x = kl_in(L, node, 0), vals = kl_out(L, node, 0), idxs = kl_out(L, node, 1);
  kl_loop lo = kl_for(L, kl_i64(L, outer), "topk_o");
  kl_loop li = kl_for(L, kl_i64(L, inner), "topk_i");
  LLVMValueRef base = LLVMBuildNSWAdd(L->B, LLVMBuildNSWMul(L->B, lo.index, kl_i64(L, mid * inner), ""), li.index, "");
  LLVMValueRef obase = LLVMBuildNSWAdd(L->B, LLVMBuildNSWMul(L->B, lo.index, kl_i64(L, k * inner), ""), li.index, "");
  kl_loop le = kl_for(L, kl_i64(L, mid), "topk_e");
  LLVMValueRef v = kl_load(L, dt, x, idx_at(L, base, le.index, inner));
  insert_one(L, dt, largest, vals, idxs, obase, inner, k, le.index, v);
  kl_for_end(L, &le);
  kl_for_end(L, &li);
  kl_for_end(L, &lo);
  return true;
}

/* d values / d x: each dy goes back to the element it was taken from:
 * sum over the k axis of one_hot(indices) * dy.  Indices get none. */
bool kc_grad_top_k(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  if (dy[0].node < 0) return true;
  const kg_node *n = &g->m->nodes[node];
  kg_type xt = *kb_type(g, n->in[0]);
  if (!kg_dtype_is_float(xt.dtype)) return true;
  int64_t axis = kg_attr_int(n, "axis", -1);
  if (axis < 0) axis += xt.shape.rank;
  kg_ref idx = {node, 1};
  kg_attr oa[3] = {kb_attr_int("depth", xt.shape.dim[axis]), kb_attr_int("axis", axis + 1), kb_attr_dtype("dtype", xt.dtype)};
  kg_ref oh = kb_node(g, KC_OP_ONE_HOT, &idx, 1, oa, 3);
  kg_shape ds = *(&kb_type(g, dy[0])->shape), es = {.rank = ds.rank + 1};
  for (int d = 0, k = 0; d < es.rank; d++) es.dim[d] = d == axis + 1 ? 1 : ds.dim[k++];
  kg_ref prod = kb_binary(g, KC_OP_MUL, oh, kb_reshape(g, dy[0], &es));
  kg_attr ra[2] = {kb_attr_ints(g, "axes", &axis, 1), kb_attr_bool("keepdims", false)};
  dx[0] = kb_node(g, KC_OP_SUM, &prod, 1, ra, 2);
  return !g->failed;
}
