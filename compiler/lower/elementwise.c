/* elementwise.c — the generic loop-nest emitter: turns an op's scalar
 * expression (ir/expr.h) into a NumPy-broadcasting loop.
 *
 * When every operand has the result's shape (or is a scalar), one flat loop
 * with unit or zero strides is emitted, which LLVM's loop vectorizer turns
 * into vector code.  Otherwise the loop nest follows the result's
 * dimensions and each operand advances by its own (possibly zero) stride.
 * Inside a GPU kernel the loop is replaced by the thread's index. */
#include "ir/expr.h"
#include "lower/lower.h"
#include <string.h>

typedef struct operand {
  kiln_dtype dt;
  LLVMValueRef base;
  int64_t stride[KILN_MAX_RANK]; /* element stride per result dimension (0: broadcast) */
  bool scalar, same;             /* numel 1 / same shape as the result */
  LLVMValueRef idx;
} operand;

typedef struct map_ctx {
  kl_ctx *L;
  operand *ops;
  kiln_dtype out_dt;
  kc_expr_typing typing; /* the operands' dtypes, for ir/expr.h's rules */
} map_ctx;

/* Evaluates e; constants take the dtype `hint` of their context. */
static LLVMValueRef eval(map_ctx *c, const kc_expr *e, kiln_dtype hint, kiln_dtype *dt_out) {
  kl_ctx *L = c->L;
  if (e->hint >= 0) hint = (kiln_dtype)e->hint;
  if (e->kind == KC_EXPR_VAR) {
    operand *o = &c->ops[e->var];
    *dt_out = o->dt;
    return kl_load(L, o->dt, o->base, o->idx);
  }
  if (e->kind == KC_EXPR_NUM) {
    *dt_out = hint;
    return kl_const_f(L, hint, e->num);
  }
  bool sel = !strcmp(e->prim, "select");
  kiln_dtype arg_hint = kc_expr_arg_hint(&c->typing, e, hint);
  LLVMValueRef args[3];
  kiln_dtype dts[3] = {hint, hint, hint}, out;
  for (int i = 0; i < e->n_args; i++)
    args[i] = eval(c, e->args[i], sel && i == 0 ? KILN_BOOL : arg_hint, &dts[i]);
  kiln_dtype dt = kc_expr_call_dtype(&c->typing, e, dts, &out);
  *dt_out = out;
  return kl_prim(L, e->prim, dt, out, args, e->n_args);
}

static void emit_body(map_ctx *c, const kg_type *t, LLVMValueRef out, LLVMValueRef out_idx, const kc_expr *e) {
  kiln_dtype dt;
  LLVMValueRef v = eval(c, e, t->dtype, &dt);
  v = kl_convert(c->L, v, dt, t->dtype);
  kl_store(c->L, t->dtype, out, out_idx, v);
}

/* Nested loops over dims [d, rank): `lin` is the result's linear index so far. */
static void emit_nest(map_ctx *c, const kg_type *t, LLVMValueRef out, int n_ops, int d, LLVMValueRef lin,
                      LLVMValueRef *idx, const kc_expr *e) {
  kl_ctx *L = c->L;
  if (d == t->shape.rank) {
    for (int k = 0; k < n_ops; k++) c->ops[k].idx = idx[k];
    emit_body(c, t, out, lin, e);
    return;
  }
  kl_loop lp = kl_for(L, kl_i64(L, t->shape.dim[d]), "dim");
  LLVMValueRef nlin = LLVMBuildAdd(L->B, LLVMBuildMul(L->B, lin, kl_i64(L, t->shape.dim[d]), ""), lp.index, "");
  LLVMValueRef nidx[64];
  for (int k = 0; k < n_ops; k++)
    nidx[k] = c->ops[k].stride[d] ? LLVMBuildAdd(L->B, idx[k], LLVMBuildMul(L->B, lp.index, kl_i64(L, c->ops[k].stride[d]), ""), "")
                                  : idx[k];
  emit_nest(c, t, out, n_ops, d + 1, nlin, nidx, e);
  kl_for_end(L, &lp);
}

bool kl_emit_map(kl_ctx *L, int node, const kc_expr *e) {
  const kg_node *n = &L->m->nodes[node];
  const kg_type *t = &n->out[0];
  if (!e) return kc_error(L->diag, n->loc, "internal: op '%s' has no expression", kc_ops[n->op].name);
  operand ops[64];
  kiln_dtype var_dt[64];
  if (n->n_in > 64) return kc_error(L->diag, n->loc, "too many operands for an elementwise op");
  bool flat = true;
  for (int k = 0; k < n->n_in; k++) {
    const kg_type *it = kl_in_type(L, node, k);
    operand *o = &ops[k];
    memset(o, 0, sizeof *o);
    o->dt = var_dt[k] = it->dtype;
    o->base = kl_in(L, node, k);
    o->scalar = kg_shape_numel(&it->shape) == 1;
    o->same = kg_shape_eq(&it->shape, &t->shape);
    flat &= o->scalar || o->same;
    /* broadcasting strides, aligned at the trailing dimension */
    int64_t s = 1;
    for (int d = t->shape.rank - 1; d >= 0; d--) {
      int id = it->shape.rank - t->shape.rank + d;
      int64_t dim = id >= 0 ? it->shape.dim[id] : 1;
      o->stride[d] = dim == 1 ? 0 : s;
      s *= dim;
    }
  }
  map_ctx c = {L, ops, t->dtype, {var_dt, t->dtype}};
  LLVMValueRef out = kl_out(L, node, 0);
  if (L->kernel_index) { /* one element per GPU thread; the launch covers numel */
    LLVMValueRef i = L->kernel_index;
    for (int k = 0; k < n->n_in; k++) ops[k].idx = ops[k].scalar ? kl_i64(L, 0) : i;
    if (!flat) { /* broadcasting: split i into coordinates, innermost first */
      LLVMValueRef rem = i;
      for (int k = 0; k < n->n_in; k++) ops[k].idx = kl_i64(L, 0);
      for (int d = t->shape.rank - 1; d >= 0; d--) {
        LLVMValueRef dim = kl_i64(L, t->shape.dim[d]);
        LLVMValueRef coord = LLVMBuildURem(L->B, rem, dim, "");
        rem = LLVMBuildUDiv(L->B, rem, dim, "");
        for (int k = 0; k < n->n_in; k++)
          if (ops[k].stride[d])
            ops[k].idx = LLVMBuildAdd(L->B, ops[k].idx, LLVMBuildMul(L->B, coord, kl_i64(L, ops[k].stride[d]), ""), "");
      }
    }
    emit_body(&c, t, out, i, e);
    return true;
  }
  if (flat) {
    kl_loop lp = kl_for(L, kl_i64(L, kg_shape_numel(&t->shape)), "map");
    for (int k = 0; k < n->n_in; k++) ops[k].idx = ops[k].scalar ? kl_i64(L, 0) : lp.index;
    emit_body(&c, t, out, lp.index, e);
    kl_for_end(L, &lp);
    return true;
  }
  LLVMValueRef idx[64];
  for (int k = 0; k < n->n_in; k++) idx[k] = kl_i64(L, 0);
  emit_nest(&c, t, out, n->n_in, 0, kl_i64(L, 0), idx, e);
  return true;
}
