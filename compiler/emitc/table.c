/* table.c — which C rendering each op has, keyed by its KC_OP_* id (kept
 * here rather than as a column of ir/ops.def).  Elementwise ops need no
 * entry: every op with KC_OP_ELEMENTWISE is rendered from its `expr` by
 * map.c, so a new elementwise op in the table works in both backends with
 * no change here.  Aliasing ops (KC_OP_ALIAS) compute nothing.  An op with
 * neither an entry nor one of those flags has no C rendering, which
 * emitc.c reports naming the op and the node.  Ops whose LLVM lowering is a
 * generic one (kl_lower_copy, kl_lower_nothing, ...) get the generic C
 * rendering too. */
#include "emitc/ke.h"

static const ke_render_fn table[KC_OP_COUNT] = {
    /* sources and state */
    [KC_OP_PLACEHOLDER] = ke_render_nothing,
    [KC_OP_CONST] = ke_render_nothing,
    [KC_OP_VARIABLE] = ke_render_nothing,
    [KC_OP_QUEUE] = ke_render_nothing,
    [KC_OP_NO_OP] = ke_render_nothing,
    [KC_OP_MERGE_SUMMARY] = ke_render_nothing,
    [KC_OP_IDENTITY] = ke_render_copy,
    [KC_OP_FILL] = ke_render_fill,
    [KC_OP_ZEROS] = ke_render_fill,
    [KC_OP_ONES] = ke_render_fill,
    [KC_OP_RANDOM_UNIFORM] = ke_render_random,
    [KC_OP_RANDOM_NORMAL] = ke_render_random,
    [KC_OP_RANGE] = ke_render_range,
    [KC_OP_ASSIGN] = ke_render_elementwise,
    [KC_OP_ASSIGN_ADD] = ke_render_elementwise,
    [KC_OP_ASSIGN_SUB] = ke_render_elementwise,
    [KC_OP_ASSIGN_MAP] = ke_render_elementwise,
    [KC_OP_ENQUEUE] = ke_render_queue,
    [KC_OP_ENQUEUE_MANY] = ke_render_queue,
    [KC_OP_DEQUEUE] = ke_render_queue,
    [KC_OP_DEQUEUE_MANY] = ke_render_queue,
    [KC_OP_QUEUE_SIZE] = ke_render_queue,
    [KC_OP_QUEUE_CLOSE] = ke_render_queue,
    [KC_OP_SCALAR_SUMMARY] = ke_render_summary,
    [KC_OP_HISTOGRAM_SUMMARY] = ke_render_summary,
    [KC_OP_TEXT_SUMMARY] = ke_render_summary,
    /* reductions */
    [KC_OP_SUM] = ke_render_reduce,
    [KC_OP_MEAN] = ke_render_reduce,
    [KC_OP_MAX] = ke_render_reduce,
    [KC_OP_MIN] = ke_render_reduce,
    [KC_OP_PROD] = ke_render_reduce,
    [KC_OP_ARGMAX] = ke_render_argmax,
    [KC_OP_SOFTMAX] = ke_render_softmax,
    [KC_OP_LOG_SOFTMAX] = ke_render_softmax,
    [KC_OP_TOP_K] = ke_render_top_k,
    /* linear algebra */
    [KC_OP_MATMUL] = ke_render_matmul,
    /* data movement */
    [KC_OP_TRANSPOSE] = ke_render_transpose,
    [KC_OP_CONCAT] = ke_render_concat,
    [KC_OP_SLICE] = ke_render_slice,
    [KC_OP_STRIDED_SLICE] = ke_render_strided_slice,
    [KC_OP_STRIDED_SLICE_GRAD] = ke_render_strided_slice_grad,
    [KC_OP_GATHER] = ke_render_gather,
    [KC_OP_SCATTER_ADD] = ke_render_scatter_add,
    [KC_OP_PAD] = ke_render_pad,
    [KC_OP_BROADCAST_TO] = ke_render_broadcast_to,
    [KC_OP_ONE_HOT] = ke_render_one_hot,
    /* neural networks */
    [KC_OP_CONV2D] = ke_render_conv2d,
    [KC_OP_CONV2D_BACKPROP_INPUT] = ke_render_conv2d,
    [KC_OP_CONV2D_BACKPROP_FILTER] = ke_render_conv2d,
    [KC_OP_DEPTHWISE_CONV2D] = ke_render_depthwise,
    [KC_OP_DEPTHWISE_CONV2D_BACKPROP_INPUT] = ke_render_depthwise,
    [KC_OP_DEPTHWISE_CONV2D_BACKPROP_FILTER] = ke_render_depthwise,
    [KC_OP_MAX_POOL] = ke_render_pool,
    [KC_OP_AVG_POOL] = ke_render_pool,
    [KC_OP_MAX_POOL_GRAD] = ke_render_pool,
    [KC_OP_AVG_POOL_GRAD] = ke_render_pool,
};

ke_render_fn ke_rendering(int op) {
  if (op < 0 || op >= KC_OP_COUNT) return NULL;
  if (table[op]) return table[op];
  if (kc_ops[op].flags & KC_OP_ELEMENTWISE) return ke_render_elementwise;
  if (kc_ops[op].flags & KC_OP_ALIAS) return ke_render_nothing;
  /* an op whose LLVM lowering is one of the generic ones (a copy, nothing,
   * an expression) gets the matching generic rendering: device_copy is a
   * copy on the CPU, as kl_lower_copy makes it */
  kc_lower_fn lower = kc_ops[op].lower;
  if (lower == kl_lower_copy) return ke_render_copy;
  if (lower == kl_lower_nothing || lower == kl_lower_alias || lower == kl_lower_const) return ke_render_nothing;
  if (lower == kl_lower_elementwise || lower == kl_lower_fused || lower == kl_lower_assign_map) return ke_render_elementwise;
  return NULL;
}

bool ke_render_nothing(ke_ctx *E, int node) { return true; }

/* Elementwise ops, fused nodes and assignments: the node's expression
 * (kc_node_expr: the op's `expr`, a fused node's attribute, or an
 * assignment's update) as a loop nest. */
bool ke_render_elementwise(ke_ctx *E, int node) {
  char err[160];
  const kc_expr *e = kc_node_expr(E->m->arena, &E->m->nodes[node], err, sizeof err);
  if (!e) return ke_node_error(E, node, "%s", err);
  return ke_emit_map(E, node, e);
}
