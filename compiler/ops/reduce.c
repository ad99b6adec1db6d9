/* reduce.c — reductions (sum, mean, max, min, prod), argmax, and the
 * normalizers softmax / log_softmax: their shape rules and lowerings.
 *
 * Shapes are static, so every lowering first views its input as a few
 * "groups" of dimensions (size-1 dims dropped, neighbours of the same kind
 * merged) and computes all strides here in C; the emitted code is plain
 * counted loops over constants.  The scalar math is always kl_prim, so these
 * ops share one definition of add/max/exp/... with the elementwise ops. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "ir/expr.h" /* before lower.h, which names struct kc_expr */
#include "lower/lower.h"
#include "ops/ops_util.h"

/* ======================================================================
 * shared helpers
 * ====================================================================== */

/* Normalizes a possibly negative axis.  With a context it reports errors;
 * without one (lowering, after inference accepted the node) it only maps. */
static bool norm_axis(kc_infer_ctx *c, const kg_node *n, int64_t axis, int rank, int *out) {
  if (c)
    return kc_axis(c, n, axis, rank, out);
  if (axis < 0)
    axis += rank;
  *out = (int)axis;
  return axis >= 0 && axis < rank;
}

/* Marks the axes reduced by node n in red[0..rank); absent `axes` = all. */
static bool reduce_mask(kc_infer_ctx *c, const kg_node *n, int rank, bool *red) {
  int cnt;
  const int64_t *v;
  bool all = !kc_attr_ints(n, "axes", &cnt, &v);
  for (int d = 0; d < rank; d++)
    red[d] = all;
  if (all)
    return true;
  for (int i = 0; i < cnt; i++) {
    int a;
    if (!norm_axis(c, n, v[i], rank, &a))
      return false; /* kc_axis has reported it */
    if (red[a])
      return c ? kc_node_error(c, n, "axis %lld is listed twice in axes (as axis %d)",
                               (long long)v[i], a)
               : false;
    red[a] = true;
  }
  return true;
}

/* An alloca in the entry block, so mem2reg turns accumulators into phis. */
static LLVMValueRef entry_alloca(kl_ctx *L, LLVMTypeRef ty, const char *name) {
  LLVMBasicBlockRef eb = LLVMGetEntryBasicBlock(L->fn);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(L->C);
  LLVMValueRef first = LLVMGetFirstInstruction(eb);
  if (first)
    LLVMPositionBuilderBefore(b, first);
  else
    LLVMPositionBuilderAtEnd(b, eb);
  LLVMValueRef a = LLVMBuildAlloca(b, ty, name);
  LLVMDisposeBuilder(b);
  return a;
}

/* A binary primitive on dtype dt.  `reassoc` marks a float accumulation as
 * reorderable: LLVM only vectorizes fadd/fmul reductions with that flag, and
 * TF's own reductions do not sum in order either. */
static LLVMValueRef prim2(kl_ctx *L, const char *p, kiln_dtype dt, LLVMValueRef a, LLVMValueRef b,
                          bool reassoc) {
  LLVMValueRef args[2] = {a, b};
  LLVMValueRef v = kl_prim(L, p, dt, dt, args, 2);
  if (reassoc && LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v))
    LLVMSetFastMathFlags(v, LLVMGetFastMathFlags(v) | LLVMFastMathAllowReassoc);
  return v;
}

static LLVMValueRef prim1(kl_ctx *L, const char *p, kiln_dtype dt, LLVMValueRef a) {
  return kl_prim(L, p, dt, dt, &a, 1);
}

static LLVMValueRef mul_add(kl_ctx *L, LLVMValueRef base, LLVMValueRef idx, int64_t stride) {
  LLVMValueRef t = stride == 1 ? idx : LLVMBuildNSWMul(L->B, idx, kl_i64(L, stride), "");
  return base ? LLVMBuildNSWAdd(L->B, base, t, "") : t;
}

/* A load / store through an entry-block slot (the accumulator idiom). */
static LLVMValueRef slot_get(kl_ctx *L, kiln_dtype dt, LLVMValueRef slot) {
  return LLVMBuildLoad2(L->B, kl_value_type(L, dt), slot, "");
}

static LLVMValueRef new_slot(kl_ctx *L, kiln_dtype dt, LLVMValueRef init, const char *name) {
  LLVMValueRef s = entry_alloca(L, kl_value_type(L, dt), name);
  LLVMBuildStore(L->B, init, s);
  return s;
}

/* Views a shape as [outer, extent of axis, inner]. */
static void split_at_axis(const kg_shape *s, int axis, int64_t *outer, int64_t *mid,
                          int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < axis; d++)
    *outer *= s->dim[d];
  for (int d = axis + 1; d < s->rank; d++)
    *inner *= s->dim[d];
  *mid = s->dim[axis];
}

static void node_error(kl_ctx *L, int node, const char *msg) {
  const kg_node *n = &L->m->nodes[node];
  kc_error_node(L->diag, n->loc, n->name, "%s", msg);
}

/* ======================================================================
 * sum, mean, max, min, prod
 * ====================================================================== */

bool kc_infer_reduce(kc_infer_ctx *c, kg_node *n) {
  const kg_type *t = kc_in_type(c, n, 0);
  bool red[KILN_MAX_RANK];
  if (!reduce_mask(c, n, t->shape.rank, red))
    return false;
  bool keep = kg_attr_bool(n, "keepdims", false);
  kg_shape s = {0};
  for (int d = 0; d < t->shape.rank; d++) {
    if (!red[d])
      s.dim[s.rank++] = t->shape.dim[d];
    else if (keep)
      s.dim[s.rank++] = 1;
  }
  kc_set_out(c, n, t->dtype, &s);
  return true;
}

/* The input as alternating groups of kept / reduced dimensions. */
typedef struct rview {
  int n;
  int64_t ext[KILN_MAX_RANK];
  bool red[KILN_MAX_RANK];
  int64_t istride[KILN_MAX_RANK]; /* elements, in the input */
  int64_t ostride[KILN_MAX_RANK]; /* elements, in the output (kept groups) */
  int n_red_groups;
  int64_t count; /* reduced elements per output element */
} rview;

static void make_rview(const kg_shape *s, const bool *red, rview *v) {
  v->n = 0;
  v->count = 1;
  for (int d = 0; d < s->rank; d++) {
    if (red[d])
      v->count *= s->dim[d];
    if (s->dim[d] == 1)
      continue; /* index always 0: contributes nothing to any stride */
    if (v->n > 0 && v->red[v->n - 1] == red[d]) {
      v->ext[v->n - 1] *= s->dim[d];
    } else {
      v->ext[v->n] = s->dim[d];
      v->red[v->n++] = red[d];
    }
  }
  if (v->n == 0) { /* a single element: reduce a group of one */
    v->ext[0] = 1;
    v->red[v->n++] = true;
  }
  int64_t is = 1, os = 1;
  v->n_red_groups = 0;
  for (int g = v->n - 1; g >= 0; g--) {
    v->istride[g] = is;
    is *= v->ext[g];
    v->ostride[g] = v->red[g] ? 0 : os;
    if (!v->red[g])
      os *= v->ext[g];
    v->n_red_groups += v->red[g];
  }
}

typedef struct rop {
  kiln_dtype dt;
  const char *prim; /* the combining primitive */
  bool mean;
  int64_t count;
} rop;

static rop rop_of(kl_ctx *L, int node, int64_t count) {
  int op = L->m->nodes[node].op;
  rop r = {kl_in_type(L, node, 0)->dtype, "add", op == KC_OP_MEAN, count};
  if (op == KC_OP_PROD)
    r.prim = "mul";
  else if (op == KC_OP_MAX)
    r.prim = "max";
  else if (op == KC_OP_MIN)
    r.prim = "min";
  return r;
}

/* The identity of the combining primitive: 0, 1, or the dtype's extreme. */
static LLVMValueRef rop_identity(kl_ctx *L, const rop *r) {
  bool is_max = !strcmp(r->prim, "max"), is_min = !strcmp(r->prim, "min");
  if (kg_dtype_is_float(r->dt))
    return kl_const_f(L, r->dt, is_max ? -INFINITY : is_min ? INFINITY : !strcmp(r->prim, "mul"));
  if (!is_max && !is_min)
    return kl_const_i(L, r->dt, !strcmp(r->prim, "mul"));
  int bits = (int)kg_dtype_size(r->dt) * 8;
  if (kg_dtype_is_signed(r->dt)) {
    int64_t hi = (int64_t)(UINT64_MAX >> (65 - bits));
    return kl_const_i(L, r->dt, is_max ? -hi - 1 : hi);
  }
  return kl_const_i(L, r->dt, is_max ? 0 : (int64_t)(UINT64_MAX >> (64 - bits)));
}

/* Turns an accumulated value into the result: mean divides by the count.
 * Integer mean truncates toward zero (C division), as TF's does. */
static LLVMValueRef rop_finish(kl_ctx *L, const rop *r, LLVMValueRef acc) {
  if (!r->mean)
    return acc;
  if (kg_dtype_is_float(r->dt))
    return prim2(L, "div", r->dt, acc, kl_const_f(L, r->dt, (double)r->count), false);
  if (r->count == 0)
    return kl_const_i(L, r->dt, 0); /* an empty integer mean has no value; 0, not a trap */
  /* kl_prim's integer "div" floors (TF's floordiv); mean truncates instead. */
  LLVMValueRef n = kl_const_i(L, r->dt, r->count);
  return kg_dtype_is_signed(r->dt) ? LLVMBuildSDiv(L->B, acc, n, "")
                                   : LLVMBuildUDiv(L->B, acc, n, "");
}

/* out[i] = f(out[i]) for every output element, f = identity-store or finish. */
static void fill_out(kl_ctx *L, const rop *r, LLVMValueRef out, int64_t n, bool init) {
  kl_loop lp = kl_for(L, kl_i64(L, n), init ? "rinit" : "rfin");
  LLVMValueRef v = init ? rop_identity(L, r) : rop_finish(L, r, kl_load(L, r->dt, out, lp.index));
  kl_store(L, r->dt, out, lp.index, v);
  kl_for_end(L, &lp);
}

/* The innermost group.  Reduced: an accumulator loop over contiguous input
 * (a vectorizable reduction).  Kept: out[o+i] op= x[x0+i] over contiguous
 * memory on both sides (a vectorizable map).  `fused` means the accumulator
 * starts at the identity and the result is finished here, with no separate
 * init / finish passes (the common "reduce the trailing axes" case). */
static void reduce_inner(kl_ctx *L, const rop *r, const rview *v, LLVMValueRef x, LLVMValueRef out,
                         LLVMValueRef xo, LLVMValueRef oo, bool fused) {
  int g = v->n - 1;
  if (v->red[g]) {
    LLVMValueRef oidx = oo ? oo : kl_i64(L, 0);
    LLVMValueRef init = fused ? rop_identity(L, r) : kl_load(L, r->dt, out, oidx);
    LLVMValueRef acc = new_slot(L, r->dt, init, "racc");
    kl_loop lp = kl_for(L, kl_i64(L, v->ext[g]), "rred");
    LLVMValueRef e = kl_load(L, r->dt, x, mul_add(L, xo, lp.index, 1));
    LLVMBuildStore(L->B, prim2(L, r->prim, r->dt, slot_get(L, r->dt, acc), e, true), acc);
    kl_for_end(L, &lp);
    LLVMValueRef res = slot_get(L, r->dt, acc);
    kl_store(L, r->dt, out, oidx, fused ? rop_finish(L, r, res) : res);
    return;
  }
  kl_loop lp = kl_for(L, kl_i64(L, v->ext[g]), "rmap");
  LLVMValueRef oi = mul_add(L, oo, lp.index, 1);
  LLVMValueRef e = kl_load(L, r->dt, x, mul_add(L, xo, lp.index, 1));
  kl_store(L, r->dt, out, oi, prim2(L, r->prim, r->dt, kl_load(L, r->dt, out, oi), e, false));
  kl_for_end(L, &lp);
}

bool kl_lower_reduce(kl_ctx *L, int node) {
  const kg_type *it = kl_in_type(L, node, 0);
  int64_t on = kg_shape_numel(&kl_out_type(L, node, 0)->shape);
  if (on == 0)
    return true;
  bool red[KILN_MAX_RANK];
  if (!reduce_mask(NULL, &L->m->nodes[node], it->shape.rank, red)) {
    node_error(L, node, "invalid axes reached lowering");
    return false;
  }
  rview v;
  make_rview(&it->shape, red, &v);
  rop r = rop_of(L, node, v.count);
  LLVMValueRef x = kl_in(L, node, 0), out = kl_out(L, node, 0);
  if (v.count == 0) { /* nothing to reduce: every result is the (finished) identity */
    kl_loop lp = kl_for(L, kl_i64(L, on), "rempty");
    kl_store(L, r.dt, out, lp.index, rop_finish(L, &r, rop_identity(L, &r)));
    kl_for_end(L, &lp);
    return true;
  }
  bool fused = v.n_red_groups == 1 && v.red[v.n - 1];
  if (!fused)
    fill_out(L, &r, out, on, true);
  /* Outer groups in input order, so the input is walked front to back. */
  kl_loop loops[KILN_MAX_RANK];
  LLVMValueRef xo = NULL, oo = NULL;
  for (int g = 0; g < v.n - 1; g++) {
    loops[g] = kl_for(L, kl_i64(L, v.ext[g]), "rout");
    xo = mul_add(L, xo, loops[g].index, v.istride[g]);
    if (!v.red[g])
      oo = mul_add(L, oo, loops[g].index, v.ostride[g]);
  }
  if (!xo)
    xo = kl_i64(L, 0);
  reduce_inner(L, &r, &v, x, out, xo, oo, fused);
  for (int g = v.n - 2; g >= 0; g--)
    kl_for_end(L, &loops[g]);
  if (!fused && r.mean)
    fill_out(L, &r, out, on, false);
  return true;
}

/* ======================================================================
 * argmax
 * ====================================================================== */

bool kc_infer_argmax(kc_infer_ctx *c, kg_node *n) {
  const kg_type *t = kc_in_type(c, n, 0);
  int axis;
  if (t->shape.rank == 0)
    return kc_node_error(c, n, "argmax needs an input of rank >= 1 (got a scalar)");
  if (!kc_axis(c, n, kg_attr_int(n, "axis", 0), t->shape.rank, &axis))
    return false;
  if (t->shape.dim[axis] == 0) {
    char buf[128];
    return kc_node_error(c, n, "argmax over axis %d of %s: the axis is empty", axis,
                         kc_shape_str(&t->shape, buf, sizeof buf));
  }
  kg_shape s = {0};
  for (int d = 0; d < t->shape.rank; d++)
    if (d != axis)
      s.dim[s.rank++] = t->shape.dim[d];
  kc_set_out(c, n, KILN_I64, &s);
  return true;
}

/* Whether v should replace best: strictly greater (so the first maximum
 * wins), or, for floats, the first NaN (NumPy's argmax treats NaN as max). */
LLVMValueRef kl_argmax_takes(kl_ctx *L, kiln_dtype dt, LLVMValueRef v, LLVMValueRef best) {
  LLVMValueRef args[2] = {v, best};
  LLVMValueRef gt = kl_prim(L, "gt", dt, KILN_BOOL, args, 2);
  if (!kg_dtype_is_float(dt))
    return gt;
  LLVMValueRef v_nan = LLVMBuildFCmp(L->B, LLVMRealUNO, v, v, "");
  LLVMValueRef b_num = LLVMBuildFCmp(L->B, LLVMRealORD, best, best, "");
  return LLVMBuildOr(L->B, gt, LLVMBuildAnd(L->B, v_nan, b_num, ""), "");
}

bool kl_lower_argmax(kl_ctx *L, int node) {
  const kg_type *t = kl_in_type(L, node, 0);
  kiln_dtype dt = t->dtype;
  int axis;
  if (!norm_axis(NULL, &L->m->nodes[node], kg_attr_int(&L->m->nodes[node], "axis", 0),
                 t->shape.rank, &axis)) {
    node_error(L, node, "argmax axis out of range");
    return false;
  }
  int64_t outer, mid, inner;
  split_at_axis(&t->shape, axis, &outer, &mid, &inner);
  if (outer * inner == 0)
    return true;
  LLVMValueRef x = kl_in(L, node, 0), out = kl_out(L, node, 0);
  kl_loop lo = kl_for(L, kl_i64(L, outer), "amo");
  kl_loop li = kl_for(L, kl_i64(L, inner), "ami");
  LLVMValueRef base = mul_add(L, li.index, lo.index, mid * inner);
  LLVMValueRef best = new_slot(L, dt, kl_load(L, dt, x, base), "ambest");
  LLVMValueRef bi = new_slot(L, KILN_I64, kl_i64(L, 0), "amidx");
  kl_loop la = kl_for(L, kl_i64(L, mid), "ama");
  LLVMValueRef v = kl_load(L, dt, x, mul_add(L, base, la.index, inner));
  LLVMValueRef b = slot_get(L, dt, best);
  LLVMValueRef take = kl_argmax_takes(L, dt, v, b);
  LLVMBuildStore(L->B, LLVMBuildSelect(L->B, take, v, b, ""), best);
  LLVMBuildStore(L->B, LLVMBuildSelect(L->B, take, la.index, slot_get(L, KILN_I64, bi), ""), bi);
  kl_for_end(L, &la);
  kl_store(L, KILN_I64, out, mul_add(L, li.index, lo.index, inner), slot_get(L, KILN_I64, bi));
  kl_for_end(L, &li);
  kl_for_end(L, &lo);
  return true;
}

/* ======================================================================
 * softmax, log_softmax
 * ====================================================================== */

/* The shape rule is kc_infer_same (elementwise.c), which checks the axis. */

/* One row of softmax along an axis: elements base + a*stride, a < len.
 *   m = max(x);  y = x - m;  s = sum(exp(y))
 *   softmax = exp(y) / s,  log_softmax = y - log(s)
 * Subtracting the max keeps exp() from overflowing; the middle pass stores
 * exp(y) (or y) in the output so the last pass does not recompute it. */
static void softmax_row(kl_ctx *L, kiln_dtype dt, bool log_sm, LLVMValueRef x, LLVMValueRef out,
                        LLVMValueRef base, int64_t len, int64_t stride) {
  LLVMValueRef mx = new_slot(L, dt, kl_const_f(L, dt, -INFINITY), "smmax");
  kl_loop l1 = kl_for(L, kl_i64(L, len), "smmax");
  LLVMValueRef e1 = kl_load(L, dt, x, mul_add(L, base, l1.index, stride));
  LLVMBuildStore(L->B, prim2(L, "max", dt, slot_get(L, dt, mx), e1, true), mx);
  kl_for_end(L, &l1);
  LLVMValueRef m = slot_get(L, dt, mx);

  LLVMValueRef sum = new_slot(L, dt, kl_const_f(L, dt, 0), "smsum");
  kl_loop l2 = kl_for(L, kl_i64(L, len), "smexp");
  LLVMValueRef i2 = mul_add(L, base, l2.index, stride);
  LLVMValueRef y = prim2(L, "sub", dt, kl_load(L, dt, x, i2), m, false);
  LLVMValueRef ey = prim1(L, "exp", dt, y);
  kl_store(L, dt, out, i2, log_sm ? y : ey);
  LLVMBuildStore(L->B, prim2(L, "add", dt, slot_get(L, dt, sum), ey, true), sum);
  kl_for_end(L, &l2);
  LLVMValueRef s = slot_get(L, dt, sum);
  LLVMValueRef ls = log_sm ? prim1(L, "log", dt, s) : NULL;

  kl_loop l3 = kl_for(L, kl_i64(L, len), "smnorm");
  LLVMValueRef i3 = mul_add(L, base, l3.index, stride);
  LLVMValueRef o = kl_load(L, dt, out, i3);
  kl_store(L, dt, out, i3,
           log_sm ? prim2(L, "sub", dt, o, ls, false) : prim2(L, "div", dt, o, s, false));
  kl_for_end(L, &l3);
}

bool kl_lower_softmax(kl_ctx *L, int node) {
  const kg_node *n = &L->m->nodes[node];
  const kg_type *t = kl_in_type(L, node, 0);
  int axis;
  if (!norm_axis(NULL, n, kg_attr_int(n, "axis", -1), t->shape.rank, &axis)) {
    node_error(L, node, "softmax axis out of range for the input's rank");
    return false;
  }
  int64_t outer, mid, inner;
  split_at_axis(&t->shape, axis, &outer, &mid, &inner);
  if (outer * mid * inner == 0)
    return true;
  LLVMValueRef x = kl_in(L, node, 0), out = kl_out(L, node, 0);
  kl_loop lo = kl_for(L, kl_i64(L, outer), "smo");
  kl_loop li = kl_for(L, kl_i64(L, inner), "smi");
  softmax_row(L, t->dtype, n->op == KC_OP_LOG_SOFTMAX, x, out,
              mul_add(L, li.index, lo.index, mid * inner), mid, inner);
  kl_for_end(L, &li);
  kl_for_end(L, &lo);
  return true;
}

/* ---- gradients ---- */

#include "passes/autodiff.h"

/* The reduced result with its reduced dimensions back as size 1. */
static kg_shape kept_shape(const kg_node *n, const kg_shape *in) {
  int cnt = 0;
  const int64_t *axes = NULL;
  bool all = !kc_attr_ints(n, "axes", &cnt, &axes);
  kg_shape s = *in;
  for (int d = 0; d < in->rank; d++) {
    bool red = all;
    for (int i = 0; i < cnt; i++) red |= (axes[i] < 0 ? axes[i] + in->rank : axes[i]) == d;
    if (red) s.dim[d] = 1;
  }
  return s;
}

bool kc_grad_reduce(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  const kg_node *n = &g->m->nodes[node];
  int op = n->op;
  kg_ref x = n->in[0], y = {node, 0};
  kg_type xt = *kb_type(g, x);
  kg_shape kept = kept_shape(n, &xt.shape);
  kg_ref d = kb_broadcast(g, kb_reshape(g, dy[0], &kept), &xt.shape);
  switch (op) {
  case KC_OP_SUM: dx[0] = d; return true;
  case KC_OP_MEAN: {
    double count = (double)kg_shape_numel(&xt.shape) / (double)kg_shape_numel(&kept);
    dx[0] = kb_binary(g, KC_OP_DIV, d, kb_scalar(g, xt.dtype, count ? count : 1));
    return true;
  }
  case KC_OP_PROD: {
    /* d prod / d x_i is the product of the others: prod / x_i without
     * zeros; with one zero, the product of the non-zeros at the zero and 0
     * elsewhere; with more, 0 (as TF's exclusive products give) */
    const kg_node *pn = &g->m->nodes[node];
    int cnt = 0;
    const int64_t *ax = NULL;
    int64_t all[KILN_MAX_RANK];
    if (!kc_attr_ints(pn, "axes", &cnt, &ax)) {
      for (int i = 0; i < xt.shape.rank; i++) all[i] = i;
      ax = all, cnt = xt.shape.rank;
    }
    kg_attr red[] = {kb_attr_ints(g, "axes", ax, cnt), kb_attr_bool("keepdims", true)};
    kg_ref zero = kb_scalar(g, xt.dtype, 0), one = kb_scalar(g, xt.dtype, 1);
    kg_ref is0 = kb_binary(g, KC_OP_EQUAL, x, zero);
    kg_ref sel_in[] = {is0, one, x};
    kg_ref nonzero = kb_node(g, KC_OP_SELECT, sel_in, 3, NULL, 0);
    kg_ref nz_prod = kb_broadcast(g, kb_node(g, KC_OP_PROD, &nonzero, 1, red, 2), &xt.shape);
    kg_attr to = kb_attr_dtype("to", xt.dtype);
    kg_ref zeros_f = kb_node(g, KC_OP_CAST, &is0, 1, &to, 1);
    kg_ref n0 = kb_broadcast(g, kb_node(g, KC_OP_SUM, &zeros_f, 1, red, 2), &xt.shape);
    kg_ref yb = kb_broadcast(g, kb_reshape(g, y, &kept), &xt.shape);
    kg_ref safe_x[] = {is0, one, x};
    kg_ref ratio = kb_binary(g, KC_OP_DIV, yb, kb_node(g, KC_OP_SELECT, safe_x, 3, NULL, 0));
    kg_ref one_zero_in[] = {is0, nz_prod, zero};
    kg_ref at_zero = kb_node(g, KC_OP_SELECT, one_zero_in, 3, NULL, 0);
    kg_ref c1[] = {kb_binary(g, KC_OP_EQUAL, n0, one), at_zero, zero};
    kg_ref c0[] = {kb_binary(g, KC_OP_EQUAL, n0, zero), ratio, kb_node(g, KC_OP_SELECT, c1, 3, NULL, 0)};
    dx[0] = kb_binary(g, KC_OP_MUL, d, kb_node(g, KC_OP_SELECT, c0, 3, NULL, 0));
    return true;
  }
  default: { /* max/min: shared equally among the elements that attain it, as TF */
    kg_ref yb = kb_broadcast(g, kb_reshape(g, y, &kept), &xt.shape);
    kg_attr to = kb_attr_dtype("to", xt.dtype);
    kg_ref eq = kb_binary(g, KC_OP_EQUAL, x, yb);
    kg_ref ind = kb_node(g, KC_OP_CAST, &eq, 1, &to, 1);
    kg_attr attrs[] = {kb_attr_ints(g, "axes", NULL, 0), kb_attr_bool("keepdims", true)};
    int cnt = 0;
    const int64_t *axes = NULL;
    if (kc_attr_ints(&g->m->nodes[node], "axes", &cnt, &axes)) attrs[0] = kb_attr_ints(g, "axes", axes, cnt);
    else {
      int64_t all[KILN_MAX_RANK];
      for (int i = 0; i < xt.shape.rank; i++) all[i] = i;
      attrs[0] = kb_attr_ints(g, "axes", all, xt.shape.rank);
    }
    kg_ref count = kb_broadcast(g, kb_node(g, KC_OP_SUM, &ind, 1, attrs, 2), &xt.shape);
    dx[0] = kb_binary(g, KC_OP_DIV, kb_binary(g, KC_OP_MUL, d, ind), count);
    return true;
  }
  }
}

bool kc_grad_softmax(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  const kg_node *n = &g->m->nodes[node];
  bool logsm = n->op == KC_OP_LOG_SOFTMAX;
  int rank = kb_type(g, n->in[0])->shape.rank;
  int64_t axis = kg_attr_int(n, "axis", -1);
  if (axis < 0) axis += rank;
  kg_ref y = {node, 0};
  kg_shape shape = kb_type(g, y)->shape;
  kg_attr attrs[] = {kb_attr_ints(g, "axes", &axis, 1), kb_attr_bool("keepdims", true)};
  if (logsm) { /* dx = dy - exp(y) * sum(dy) */
    kg_ref s = kb_broadcast(g, kb_node(g, KC_OP_SUM, dy, 1, attrs, 2), &shape);
    dx[0] = kb_binary(g, KC_OP_SUB, dy[0], kb_binary(g, KC_OP_MUL, kb_unary(g, KC_OP_EXP, y), s));
  } else { /* dx = (dy - sum(dy * y)) * y */
    kg_ref p = kb_binary(g, KC_OP_MUL, dy[0], y);
    kg_ref s = kb_broadcast(g, kb_node(g, KC_OP_SUM, &p, 1, attrs, 2), &shape);
    dx[0] = kb_binary(g, KC_OP_MUL, kb_binary(g, KC_OP_SUB, dy[0], s), y);
  }
  return true;
}
