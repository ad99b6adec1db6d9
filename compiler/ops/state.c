/* state.c — ops on state: assignments to variables and the queue ops.
 * Variables live in the instance's variable block, so an assignment writes
 * there in place and yields that storage (the planner aliases its output);
 * queue ops are calls into libkilnrt, whose status ends the run on
 * OutOfRange or cancellation. */
#include "ir/expr.h"
#include "lower/lower.h"
#include "ops/ops_util.h"

bool kc_infer_assign(kc_infer_ctx *c, kg_node *n) {
  const kg_type *ref = kc_in_type(c, n, 0), *v = kc_in_type(c, n, 1);
  if (!kg_type_eq(ref, v)) {
    char a[160], b[160];
    return kc_node_error(c, n, "the value %s does not match the variable '%s' %s",
                         kg_type_str(v, a, sizeof a), c->m->nodes[n->in[0].node].name,
                         kg_type_str(ref, b, sizeof b));
  }
  kc_set_out(c, n, ref->dtype, &ref->shape);
  return true;
}

/* ref = f(ref, value) in place, through the same loop emitter as every
 * elementwise op (the expressions are kc_node_expr's), so updates vectorize. */
bool kl_lower_assign(kl_ctx *L, int node) { return kl_lower_assign_map(L, node); }

/* assign_map: the fuse pass's merge of an assignment with the elementwise
 * work that computes its value; the expression reads the variable as x0. */
bool kc_infer_assign_map(kc_infer_ctx *c, kg_node *n) {
  char err[160];
  const kg_type *ref = kc_in_type(c, n, 0);
  if (!kc_node_expr(c->m->arena, n, err, sizeof err)) return kc_node_error(c, n, "bad expr: %s", err);
  for (int i = 1; i < n->n_in; i++) {
    kg_shape s;
    if (!kc_broadcast(c, n, &ref->shape, &kc_in_type(c, n, i)->shape, &s)) return false;
    if (!kg_shape_eq(&s, &ref->shape)) return kc_node_error(c, n, "operand %d does not broadcast to the variable's shape", i);
  }
  kc_set_out(c, n, ref->dtype, &ref->shape);
  return true;
}

bool kl_lower_assign_map(kl_ctx *L, int node) {
  char err[160];
  const kc_expr *e = kc_node_expr(L->m->arena, &L->m->nodes[node], err, sizeof err);
  if (!e) return kc_error(L->diag, L->m->nodes[node].loc, "%s", err);
  return kl_emit_map(L, node, e);
}

static const kg_node *queue_of(kc_infer_ctx *c, const kg_node *n) { return &c->m->nodes[n->in[0].node]; }

bool kc_infer_enqueue(kc_infer_ctx *c, kg_node *n) {
  const kg_node *q = queue_of(c, n);
  bool many = n->op == KC_OP_ENQUEUE_MANY;
  if (n->n_in - 1 != q->n_comp)
    return kc_node_error(c, n, "queue '%s' holds %d component%s, %d given", q->name, q->n_comp,
                         q->n_comp == 1 ? "" : "s", n->n_in - 1);
  int64_t count = -1;
  for (int i = 0; i < q->n_comp; i++) {
    const kg_type *t = kc_in_type(c, n, i + 1);
    kg_type want = q->comp[i];
    if (many) {
      if (t->shape.rank < 1)
        return kc_node_error(c, n, "enqueue_many needs a leading batch dimension on component %d", i);
      if (count >= 0 && t->shape.dim[0] != count)
        return kc_node_error(c, n, "components have different batch sizes (%lld and %lld)",
                             (long long)count, (long long)t->shape.dim[0]);
      count = t->shape.dim[0];
      want.shape.rank = q->comp[i].shape.rank + 1;
      want.shape.dim[0] = count;
      for (int d = 0; d < q->comp[i].shape.rank; d++) want.shape.dim[d + 1] = q->comp[i].shape.dim[d];
    }
    if (!kg_type_eq(t, &want)) {
      char a[160], b[160];
      return kc_node_error(c, n, "component %d is %s, but queue '%s' expects %s", i,
                           kg_type_str(t, a, sizeof a), q->name, kg_type_str(&want, b, sizeof b));
    }
  }
  n->n_out = 0;
  return true;
}

bool kc_infer_dequeue(kc_infer_ctx *c, kg_node *n) {
  const kg_node *q = queue_of(c, n);
  int64_t count = n->op == KC_OP_DEQUEUE_MANY ? kg_attr_int(n, "n", 0) : -1;
  if (n->op == KC_OP_DEQUEUE_MANY && count < 0) return kc_node_error(c, n, "n must not be negative");
  n->out = kc_alloc(c->m->arena, sizeof(kg_type) * (size_t)q->n_comp);
  n->n_out = q->n_comp;
  for (int i = 0; i < q->n_comp; i++) {
    n->out[i] = q->comp[i];
    if (count >= 0) {
      if (q->comp[i].shape.rank == KILN_MAX_RANK) return kc_node_error(c, n, "rank too large");
      n->out[i].shape.rank = q->comp[i].shape.rank + 1;
      n->out[i].shape.dim[0] = count;
      for (int d = 0; d < q->comp[i].shape.rank; d++) n->out[i].shape.dim[d + 1] = q->comp[i].shape.dim[d];
    }
  }
  return true;
}

bool kc_infer_queue_size(kc_infer_ctx *c, kg_node *n) {
  kg_shape s = {0};
  kc_set_out(c, n, KILN_I32, &s);
  return true;
}

bool kl_lower_queue_op(kl_ctx *L, int node) {
  const kg_node *n = &L->m->nodes[node];
  LLVMValueRef qid = kl_i32(L, L->plan->queue_id[n->in[0].node]);
  LLVMValueRef ptrs[256];
  switch (n->op) {
  case KC_OP_ENQUEUE:
  case KC_OP_ENQUEUE_MANY: {
    int nc = n->n_in - 1;
    for (int i = 0; i < nc; i++) ptrs[i] = kl_in(L, node, i + 1);
    LLVMValueRef arr = kl_ptr_array(L, ptrs, nc);
    if (n->op == KC_OP_ENQUEUE) {
      LLVMValueRef args[] = {L->inst, qid, arr};
      kl_check(L, kl_call(L, "kiln_rt_enqueue", L->t_i32, args, 3));
    } else {
      LLVMValueRef args[] = {L->inst, qid, arr, kl_i64(L, kl_in_type(L, node, 1)->shape.dim[0])};
      kl_check(L, kl_call(L, "kiln_rt_enqueue_many", L->t_i32, args, 4));
    }
    return true;
  }
  case KC_OP_DEQUEUE:
  case KC_OP_DEQUEUE_MANY: {
    for (int i = 0; i < n->n_out; i++) ptrs[i] = kl_out(L, node, i);
    LLVMValueRef arr = kl_ptr_array(L, ptrs, n->n_out);
    if (n->op == KC_OP_DEQUEUE) {
      LLVMValueRef args[] = {L->inst, qid, arr};
      kl_check(L, kl_call(L, "kiln_rt_dequeue", L->t_i32, args, 3));
    } else {
      LLVMValueRef args[] = {L->inst, qid, arr, kl_i64(L, kg_attr_int(n, "n", 0))};
      kl_check(L, kl_call(L, "kiln_rt_dequeue_many", L->t_i32, args, 4));
    }
    return true;
  }
  case KC_OP_QUEUE_SIZE: {
    LLVMValueRef args[] = {L->inst, qid, kl_out(L, node, 0)};
    kl_check(L, kl_call(L, "kiln_rt_queue_size", L->t_i32, args, 3));
    return true;
  }
  case KC_OP_QUEUE_CLOSE: {
    LLVMValueRef args[] = {L->inst, qid, kl_i32(L, kg_attr_bool(n, "cancel_pending_enqueues", false))};
    kl_check(L, kl_call(L, "kiln_rt_queue_close", L->t_i32, args, 3));
    return true;
  }
  default:
    return kc_error(L->diag, n->loc, "internal: not a queue op");
  }
}
