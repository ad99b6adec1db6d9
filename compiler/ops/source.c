/* source.c — ops that make tensors from nothing but their declared type:
 * placeholder, const, fill, zeros, ones, the random generators, plus the
 * trivial identity/no_op and the shared "alias" lowering. */
#include "lower/lower.h"
#include "ops/ops_util.h"

bool kc_infer_declared(kc_infer_ctx *c, kg_node *n) {
  if (n->n_out != 1) return kc_node_error(c, n, "needs exactly one result type");
  return true;
}

bool kc_infer_nothing(kc_infer_ctx *c, kg_node *n) {
  if (n->out_declared && n->n_out)
    return kc_node_error(c, n, "has no result, but a type is declared");
  n->n_out = 0;
  return true;
}

bool kc_infer_fill(kc_infer_ctx *c, kg_node *n) {
  const kg_type *v = kc_in_type(c, n, 0);
  if (!kc_infer_declared(c, n)) return false;
  if (v->shape.rank != 0) return kc_node_error(c, n, "the fill value must be a scalar");
  if (v->dtype != n->out[0].dtype)
    return kc_node_error(c, n, "fill value is %s but the result is %s", kg_dtype_name(v->dtype),
                         kg_dtype_name(n->out[0].dtype));
  return true;
}

bool kl_lower_nothing(kl_ctx *L, int node) { return true; }

/* The planner gives an aliasing op's output its operand's buffer. */
bool kl_lower_alias(kl_ctx *L, int node) { return true; }

/* Constants live in read-only globals that kl_out() points at. */
bool kl_lower_const(kl_ctx *L, int node) { return true; }

bool kl_lower_copy(kl_ctx *L, int node) {
  LLVMValueRef dst = kl_out(L, node, 0), src = kl_in(L, node, 0);
  if (dst != src) kl_memcpy(L, dst, src, kg_type_bytes(kl_out_type(L, node, 0)));
  return true;
}

LLVMValueRef kl_fill_value(kl_ctx *L, int node) {
  const kg_node *n = &L->m->nodes[node];
  kiln_dtype dt = kl_out_type(L, node, 0)->dtype;
  if (n->op == KC_OP_FILL) return kl_load(L, dt, kl_in(L, node, 0), kl_i64(L, 0));
  return kl_const_f(L, dt, n->op == KC_OP_ONES ? 1.0 : 0.0);
}

bool kl_lower_fill(kl_ctx *L, int node) {
  const kg_type *t = kl_out_type(L, node, 0);
  LLVMValueRef v = kl_fill_value(L, node);
  LLVMValueRef out = kl_out(L, node, 0);
  kl_loop lp = kl_for(L, kl_i64(L, kg_shape_numel(&t->shape)), "fill");
  kl_store(L, t->dtype, out, lp.index, v);
  kl_for_end(L, &lp);
  return true;
}

bool kl_lower_random(kl_ctx *L, int node) {
  const kg_node *n = &L->m->nodes[node];
  const kg_type *t = kl_out_type(L, node, 0);
  bool normal = n->op == KC_OP_RANDOM_NORMAL;
  double a = normal ? kg_attr_float(n, "mean", 0) : kg_attr_float(n, "minval", 0);
  double b = normal ? kg_attr_float(n, "stddev", 1) : kg_attr_float(n, "maxval", 1);
  LLVMValueRef args[] = {L->inst,
                         kl_i32(L, t->dtype),
                         kl_i32(L, normal),
                         kl_i64(L, kg_shape_numel(&t->shape)),
                         kl_out(L, node, 0),
                         LLVMConstReal(L->t_f64, a),
                         LLVMConstReal(L->t_f64, b),
                         kl_i64(L, (int64_t)kc_node_seed(n)),
                         kl_random_counter(L, node)};
  kl_check(L, kl_call(L, "kiln_rt_random", L->t_i32, args, 9));
  return true;
}

/* computed in f64 and converted, so integer and float ranges share one rule */
LLVMValueRef kl_range_value(kl_ctx *L, int node, LLVMValueRef index) {
  const kg_node *n = &L->m->nodes[node];
  LLVMValueRef i = LLVMBuildSIToFP(L->B, index, L->t_f64, "");
  LLVMValueRef v = LLVMBuildFAdd(L->B, LLVMConstReal(L->t_f64, kg_attr_float(n, "start", 0)),
                                 LLVMBuildFMul(L->B, i, LLVMConstReal(L->t_f64, kg_attr_float(n, "delta", 1)), ""), "");
  return kl_convert(L, v, KILN_F64, kl_out_type(L, node, 0)->dtype);
}

bool kl_lower_range(kl_ctx *L, int node) {
  const kg_type *t = kl_out_type(L, node, 0);
  LLVMValueRef out = kl_out(L, node, 0);
  kl_loop lp = kl_for(L, kl_i64(L, kg_shape_numel(&t->shape)), "range");
  kl_store(L, t->dtype, out, lp.index, kl_range_value(L, node, lp.index));
  kl_for_end(L, &lp);
  return true;
}
