/* summary.c — the summary ops (tf.summary.scalar/histogram/text/merge).
 * No strings flow through the graph: each summary op hands its value to
 * libkilnrt when it runs, and the program's `summary write` turns what was
 * recorded into one Event.  The ops yield a bool[] token so merge_summary
 * can gather them as operands, as TF's merge takes their string tensors. */
#include "lower/lower.h"
#include "ops/ops_util.h"

bool kc_infer_summary(kc_infer_ctx *c, kg_node *n) {
  if (n->op == KC_OP_SCALAR_SUMMARY && kc_in_type(c, n, 0)->shape.rank != 0)
    return kc_node_error(c, n, "scalar_summary needs a scalar; use histogram_summary for a tensor");
  if (n->op == KC_OP_MERGE_SUMMARY)
    for (int i = 0; i < n->n_in; i++) {
      int op = c->m->nodes[n->in[i].node].op;
      if (op != KC_OP_SCALAR_SUMMARY && op != KC_OP_HISTOGRAM_SUMMARY && op != KC_OP_TEXT_SUMMARY &&
          op != KC_OP_MERGE_SUMMARY)
        return kc_node_error(c, n, "operand %d ('%s') is not a summary", i, c->m->nodes[n->in[i].node].name);
    }
  kg_shape scalar = {0};
  kc_set_out(c, n, KILN_BOOL, &scalar);
  return true;
}

bool kl_lower_summary(kl_ctx *L, int node) {
  const kg_node *n = &L->m->nodes[node];
  LLVMValueRef tag = LLVMBuildGlobalStringPtr(L->B, kg_attr_str(n, "tag", n->name), "tag");
  LLVMValueRef status;
  if (n->op == KC_OP_TEXT_SUMMARY) {
    LLVMValueRef args[] = {L->inst, tag, LLVMBuildGlobalStringPtr(L->B, kg_attr_str(n, "text", ""), "text")};
    status = kl_call(L, "kiln_rt_summary_text", L->t_i32, args, 3);
  } else {
    const kg_type *t = kl_in_type(L, node, 0);
    if (n->op == KC_OP_SCALAR_SUMMARY) {
      LLVMValueRef args[] = {L->inst, tag, kl_i32(L, t->dtype), kl_in(L, node, 0)};
      status = kl_call(L, "kiln_rt_summary_scalar", L->t_i32, args, 4);
    } else {
      LLVMValueRef args[] = {L->inst, tag, kl_i32(L, t->dtype), kl_i64(L, kg_shape_numel(&t->shape)), kl_in(L, node, 0)};
      status = kl_call(L, "kiln_rt_summary_histogram", L->t_i32, args, 5);
    }
  }
  kl_check(L, status);
  kl_store(L, KILN_BOOL, kl_out(L, node, 0), kl_i64(L, 0), LLVMConstInt(L->t_i1, 1, 0));
  return true;
}
