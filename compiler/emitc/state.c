/* state.c — C renderings of the sources and stateful ops, beside their
 * LLVM lowerings in ops/source.c, ops/state.c and ops/summary.c: copies,
 * fills, ranges, random ops, queue ops and summaries.  The stateful ones
 * call the same libkilnrt functions the LLVM code calls. */
#include "emitc/ke.h"
#include <string.h>

bool ke_render_copy(ke_ctx *E, int node) {
  const char *dst = ke_out_ptr(E, node, 0), *src = ke_in_ptr(E, node, 0);
  if (strcmp(dst, src)) ke_memcpy(E, dst, src, kg_type_bytes(ke_out_type(E, node, 0)));
  return true;
}

bool ke_render_fill(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  const kg_type *t = ke_out_type(E, node, 0);
  const char *v;
  if (n->op == KC_OP_FILL) {
    ke_decl_in(E, "x", node, 0);
    v = ke_load(E, t->dtype, "x", "0");
  } else {
    v = ke_const_f(E, t->dtype, n->op == KC_OP_ONES ? 1.0 : 0.0);
  }
  ke_decl_out(E, "y", node, 0);
  ke_open(E, "for (int64_t i = 0; i < %s; i++)", ke_i64(E, kg_shape_numel(&t->shape)));
  ke_store(E, t->dtype, "y", "i", v);
  ke_close(E);
  return true;
}

bool ke_render_random(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  const kg_type *t = ke_out_type(E, node, 0);
  bool normal = n->op == KC_OP_RANDOM_NORMAL;
  double a = normal ? kg_attr_float(n, "mean", 0) : kg_attr_float(n, "minval", 0);
  double b = normal ? kg_attr_float(n, "stddev", 1) : kg_attr_float(n, "maxval", 1);
  ke_declare(E, "kiln_rt_random",
             "int kiln_rt_random(kiln_inst *inst, int32_t dtype, int32_t kind, int64_t n, void *out, double a, "
             "double b, uint64_t seed, uint64_t *counter)");
  ke_check(E, ke_str(E, "kiln_rt_random(inst, %d, %d, %s, %s, %s, %s, %lluULL, &inst->random_counters[%d])", t->dtype,
                     normal, ke_i64(E, kg_shape_numel(&t->shape)), ke_out_ptr(E, node, 0), ke_const_f(E, KILN_F64, a),
                     ke_const_f(E, KILN_F64, b), (unsigned long long)kc_node_seed(n), E->plan->random_slot[node]));
  return true;
}

/* computed in double and converted, so integer and float ranges share one rule */
bool ke_render_range(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  const kg_type *t = ke_out_type(E, node, 0);
  ke_decl_out(E, "y", node, 0);
  ke_open(E, "for (int64_t i = 0; i < %s; i++)", ke_i64(E, kg_shape_numel(&t->shape)));
  const char *v = ke_str(E, "%s + (double)i * %s", ke_const_f(E, KILN_F64, kg_attr_float(n, "start", 0)),
                         ke_const_f(E, KILN_F64, kg_attr_float(n, "delta", 1)));
  ke_store(E, t->dtype, "y", "i", ke_convert(E, ke_str(E, "(%s)", v), KILN_F64, t->dtype));
  ke_close(E);
  return true;
}

bool ke_render_queue(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  int qid = E->plan->queue_id[n->in[0].node];
  ke_buf ptrs = {0};
  switch (n->op) {
  case KC_OP_ENQUEUE:
  case KC_OP_ENQUEUE_MANY: {
    for (int i = 1; i < n->n_in; i++) ke_printf(&ptrs, "%s(void *)%s", i > 1 ? ", " : "", ke_in_ptr(E, node, i));
    ke_line(E, "void *const comps[] = {%s};", ptrs.p ? ptrs.p : "0");
    if (n->op == KC_OP_ENQUEUE) {
      ke_declare(E, "kiln_rt_enqueue", "int kiln_rt_enqueue(kiln_inst *inst, int32_t qid, void *const *comps)");
      ke_check(E, ke_str(E, "kiln_rt_enqueue(inst, %d, comps)", qid));
    } else {
      ke_declare(E, "kiln_rt_enqueue_many",
                 "int kiln_rt_enqueue_many(kiln_inst *inst, int32_t qid, void *const *comps, int64_t n)");
      ke_check(E, ke_str(E, "kiln_rt_enqueue_many(inst, %d, comps, %s)", qid, ke_i64(E, ke_in_type(E, node, 1)->shape.dim[0])));
    }
    break;
  }
  case KC_OP_DEQUEUE:
  case KC_OP_DEQUEUE_MANY: {
    for (int i = 0; i < n->n_out; i++) ke_printf(&ptrs, "%s(void *)%s", i ? ", " : "", ke_out_ptr(E, node, i));
    ke_line(E, "void *const comps[] = {%s};", ptrs.p ? ptrs.p : "0");
    if (n->op == KC_OP_DEQUEUE) {
      ke_declare(E, "kiln_rt_dequeue", "int kiln_rt_dequeue(kiln_inst *inst, int32_t qid, void *const *out)");
      ke_check(E, ke_str(E, "kiln_rt_dequeue(inst, %d, comps)", qid));
    } else {
      ke_declare(E, "kiln_rt_dequeue_many",
                 "int kiln_rt_dequeue_many(kiln_inst *inst, int32_t qid, void *const *out, int64_t n)");
      ke_check(E, ke_str(E, "kiln_rt_dequeue_many(inst, %d, comps, %s)", qid, ke_i64(E, kg_attr_int(n, "n", 0))));
    }
    break;
  }
  case KC_OP_QUEUE_SIZE:
    ke_declare(E, "kiln_rt_queue_size", "int kiln_rt_queue_size(kiln_inst *inst, int32_t qid, int32_t *out)");
    ke_check(E, ke_str(E, "kiln_rt_queue_size(inst, %d, (int32_t *)%s)", qid, ke_out_ptr(E, node, 0)));
    break;
  case KC_OP_QUEUE_CLOSE:
    ke_declare(E, "kiln_rt_queue_close", "int kiln_rt_queue_close(kiln_inst *inst, int32_t qid, int32_t cancel_pending)");
    ke_check(E, ke_str(E, "kiln_rt_queue_close(inst, %d, %d)", qid, (int)kg_attr_bool(n, "cancel_pending_enqueues", false)));
    break;
  default: ke_buf_free(&ptrs); return ke_node_error(E, node, "internal: not a queue op");
  }
  ke_buf_free(&ptrs);
  return true;
}

bool ke_render_summary(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  const char *tag = ke_cstring(E, kg_attr_str(n, "tag", n->name));
  if (n->op == KC_OP_TEXT_SUMMARY) {
    ke_declare(E, "kiln_rt_summary_text", "int kiln_rt_summary_text(kiln_inst *inst, const char *tag, const char *text)");
    ke_check(E, ke_str(E, "kiln_rt_summary_text(inst, %s, %s)", tag, ke_cstring(E, kg_attr_str(n, "text", ""))));
  } else {
    const kg_type *t = ke_in_type(E, node, 0);
    if (n->op == KC_OP_SCALAR_SUMMARY) {
      ke_declare(E, "kiln_rt_summary_scalar",
                 "int kiln_rt_summary_scalar(kiln_inst *inst, const char *tag, int32_t dtype, const void *value)");
      ke_check(E, ke_str(E, "kiln_rt_summary_scalar(inst, %s, %d, %s)", tag, t->dtype, ke_in_ptr(E, node, 0)));
    } else {
      ke_declare(E, "kiln_rt_summary_histogram",
                 "int kiln_rt_summary_histogram(kiln_inst *inst, const char *tag, int32_t dtype, int64_t n, const void *data)");
      ke_check(E, ke_str(E, "kiln_rt_summary_histogram(inst, %s, %d, %s, %s)", tag, t->dtype,
                         ke_i64(E, kg_shape_numel(&t->shape)), ke_in_ptr(E, node, 0)));
    }
  }
  ke_line(E, "*%s = 1; /* the summary's token */", ke_out_ptr(E, node, 0));
  return true;
}
