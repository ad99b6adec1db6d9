/* util.c — what every ONNX converter uses: messages that name the node,
 * attribute lookup with defaults, constant operands, small builders. */
#include "frontends/onnx/ox.h"
#include "frontends/common/frontend.h"
#include "ir/expr.h"
#include "passes/fold.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool ox_fail(ox_ctx *c, const ox_node *n, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  c->g.failed = true;
  return kc_error(c->d, (kc_loc){c->path, 0, 0}, "%s: %s", n ? n->label : "model", msg);
}

const Onnx__AttributeProto *ox_attr(const ox_node *n, const char *name) {
  for (size_t i = 0; i < n->p->n_attribute; i++)
    if (n->p->attribute[i]->name && !strcmp(n->p->attribute[i]->name, name)) return n->p->attribute[i];
  return NULL;
}

int64_t ox_attr_int(const ox_node *n, const char *name, int64_t dflt) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  return a ? a->i : dflt;
}

double ox_attr_float(const ox_node *n, const char *name, double dflt) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  return a ? a->f : dflt;
}

const char *ox_attr_string(ox_ctx *c, const ox_node *n, const char *name, const char *dflt) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  if (!a || !a->has_s) return dflt;
  return kc_strndup(c->m->arena, (const char *)a->s.data, a->s.len);
}

const int64_t *ox_attr_ints(const ox_node *n, const char *name, int *count) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  *count = a ? (int)a->n_ints : 0;
  return a ? a->ints : NULL;
}

const float *ox_attr_floats(const ox_node *n, const char *name, int *count) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  *count = a ? (int)a->n_floats : 0;
  return a ? a->floats : NULL;
}

bool ox_has(const ox_node *n, int i) { return i < n->n_in && n->in[i].node >= 0; }

const kg_type *ox_type(ox_ctx *c, kg_ref r) {
  /* after a builder failed a converter may still ask for its (missing)
   * result's type before it checks c->g.failed: an empty type, not a crash */
  static const kg_type none = {0};
  const kg_type *t = r.node >= 0 && r.node < c->m->n_nodes ? kg_ref_type(c->m, r) : NULL;
  return t ? t : &none;
}

const kg_tensor *ox_const(ox_ctx *c, kg_ref r) {
  if (r.node < 0) return NULL;
  const kg_node *n = &c->m->nodes[r.node];
  if (n->op != KC_OP_CONST) return NULL;
  return &kg_node_attr(n, "value")->tensor;
}

bool ox_const_ints(ox_ctx *c, ox_node *n, int i, int64_t **v, int *count) {
  if (!ox_has(n, i)) return ox_fail(c, n, "input %d is required", i);
  const kg_tensor *t = ox_const(c, n->in[i]);
  if (!t)
    return ox_fail(c, n, "input %d ('%s') must be known at compile time (kiln compiles static shapes; "
                         "it is computed from a graph input)", i, n->p->input[i]);
  if (kg_dtype_is_float(t->type.dtype) || t->type.shape.rank > 1)
    return ox_fail(c, n, "input %d ('%s') must be a list of integers", i, n->p->input[i]);
  int64_t cnt = kg_shape_numel(&t->type.shape);
  *v = kc_alloc(c->m->arena, sizeof(int64_t) * (size_t)(cnt ? cnt : 1));
  for (int64_t k = 0; k < cnt; k++) (*v)[k] = kg_tensor_get_i(t, k);
  *count = (int)cnt;
  return true;
}

bool ox_axis(ox_ctx *c, ox_node *n, int64_t axis, int rank, int *out) {
  if (axis < -rank || axis >= rank) return ox_fail(c, n, "axis %lld is out of range for rank %d", (long long)axis, rank);
  *out = (int)(axis < 0 ? axis + rank : axis);
  return true;
}

kg_ref ox_tensor_const(ox_ctx *c, const kg_tensor *t) { return kc_fe_tensor_const(&c->g, t); }

kg_ref ox_const_from(ox_ctx *c, kiln_dtype dt, const kg_shape *s, const double *v) {
  return kc_fe_const_from(&c->g, dt, s, v);
}

kg_ref ox_expr(ox_ctx *c, const char *expr, const kg_ref *in, int n_in, kiln_dtype dt) {
  return kc_fe_expr(&c->g, expr, in, n_in, dt);
}

kg_ref ox_reshape(ox_ctx *c, kg_ref x, const kg_shape *s) { return kb_reshape(&c->g, x, s); }

kg_ref ox_transpose(ox_ctx *c, kg_ref x, const int64_t *perm, int rank) {
  return kc_fe_transpose(&c->g, x, perm, rank);
}

kg_ref ox_cast(ox_ctx *c, kg_ref x, kiln_dtype to) { return kc_fe_cast(&c->g, x, to); }
