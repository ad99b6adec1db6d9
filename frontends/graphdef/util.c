/* util.c — what every TensorFlow converter uses: messages that name the
 * node, attribute lookup with TensorFlow's defaults, constant operands,
 * small builders and the activations of the fused ops. */
#include "frontends/common/frontend.h"
#include "frontends/graphdef/gd.h"
#include "ir/expr.h"
#include "passes/fold.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool gd_fail(gd_ctx *c, const gd_node *n, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  c->g.failed = true;
  return kc_error(c->d, (kc_loc){c->path, 0, 0}, "%s: %s", n ? n->label : "graph", msg);
}

const Tensorflow__AttrValue *gd_attr(const gd_node *n, const char *name) {
  for (size_t i = 0; i < n->p->n_attr; i++)
    if (n->p->attr[i] && n->p->attr[i]->key && !strcmp(n->p->attr[i]->key, name)) return n->p->attr[i]->value;
  return NULL;
}

int64_t gd_attr_int(const gd_node *n, const char *name, int64_t dflt) {
  const Tensorflow__AttrValue *a = gd_attr(n, name);
  return a && a->value_case == TENSORFLOW__ATTR_VALUE__VALUE_I ? a->i : dflt;
}

double gd_attr_float(const gd_node *n, const char *name, double dflt) {
  const Tensorflow__AttrValue *a = gd_attr(n, name);
  return a && a->value_case == TENSORFLOW__ATTR_VALUE__VALUE_F ? a->f : dflt;
}

bool gd_attr_bool(const gd_node *n, const char *name, bool dflt) {
  const Tensorflow__AttrValue *a = gd_attr(n, name);
  return a && a->value_case == TENSORFLOW__ATTR_VALUE__VALUE_B ? a->b : dflt;
}

const char *gd_attr_string(gd_ctx *c, const gd_node *n, const char *name, const char *dflt) {
  const Tensorflow__AttrValue *a = gd_attr(n, name);
  if (!a || a->value_case != TENSORFLOW__ATTR_VALUE__VALUE_S) return dflt;
  return kc_strndup(c->m->arena, (const char *)a->s.data, a->s.len);
}

const int64_t *gd_attr_ints(const gd_node *n, const char *name, int *count) {
  const Tensorflow__AttrValue *a = gd_attr(n, name);
  bool ok = a && a->value_case == TENSORFLOW__ATTR_VALUE__VALUE_LIST && a->list;
  *count = ok ? (int)a->list->n_i : 0;
  return ok ? a->list->i : NULL;
}

const char *gd_attr_list_string(gd_ctx *c, const gd_node *n, const char *name, int i, int *count) {
  const Tensorflow__AttrValue *a = gd_attr(n, name);
  bool ok = a && a->value_case == TENSORFLOW__ATTR_VALUE__VALUE_LIST && a->list;
  *count = ok ? (int)a->list->n_s : 0;
  if (!ok || i < 0 || (size_t)i >= a->list->n_s) return NULL;
  return kc_strndup(c->m->arena, (const char *)a->list->s[i].data, a->list->s[i].len);
}

bool gd_attr_dtype(gd_ctx *c, gd_node *n, const char *name, kiln_dtype dflt, kiln_dtype *out) {
  const Tensorflow__AttrValue *a = gd_attr(n, name);
  if (!a || a->value_case != TENSORFLOW__ATTR_VALUE__VALUE_TYPE) {
    *out = dflt;
    return true;
  }
  if (!gd_dtype(a->type, out))
    return gd_fail(c, n, "attribute '%s' is %s, a type kiln lacks (it has DT_BOOL, DT_INT8, DT_UINT8, DT_INT32, "
                         "DT_INT64, DT_FLOAT, DT_DOUBLE)", name, gd_dtype_name(a->type));
  return true;
}

/* A failed builder's KG_NOREF has an empty type (the failure is reported;
 * converters need not check every intermediate result). */
const kg_type *gd_type(gd_ctx *c, kg_ref r) {
  static const kg_type none = {KILN_F32, {0}};
  return r.node < 0 || r.node >= c->m->n_nodes ? &none : kg_ref_type(c->m, r);
}

bool gd_inputs(gd_ctx *c, gd_node *n, int k, bool at_least) {
  if (n->n_in == k || (at_least && n->n_in > k)) return true;
  return gd_fail(c, n, "has %d inputs; %s needs %s%d", n->n_in, n->p->op, at_least ? "at least " : "", k);
}

const kg_tensor *gd_const(gd_ctx *c, kg_ref r) {
  if (r.node < 0) return NULL;
  const kg_node *n = &c->m->nodes[r.node];
  if (n->op != KC_OP_CONST) return NULL;
  return &kg_node_attr(n, "value")->tensor;
}

bool gd_const_ints(gd_ctx *c, gd_node *n, int i, int64_t **v, int *count) {
  if (i >= n->n_in) return gd_fail(c, n, "input %d is required", i);
  const kg_tensor *t = gd_const(c, n->in[i]);
  if (!t)
    return gd_fail(c, n, "input %d ('%s') must be known at compile time (kiln compiles static shapes; it is computed "
                         "from a feed)", i, n->p->input[i]);
  if (kg_dtype_is_float(t->type.dtype))
    return gd_fail(c, n, "input %d ('%s') must be integers", i, n->p->input[i]);
  int64_t cnt = kg_shape_numel(&t->type.shape);
  *v = kc_alloc(c->m->arena, sizeof(int64_t) * (size_t)(cnt ? cnt : 1));
  for (int64_t k = 0; k < cnt; k++) (*v)[k] = kg_tensor_get_i(t, k);
  *count = (int)cnt;
  return true;
}

bool gd_axis(gd_ctx *c, gd_node *n, int64_t axis, int rank, int *out) {
  if (axis < -rank || axis >= rank) return gd_fail(c, n, "axis %lld is out of range for rank %d", (long long)axis, rank);
  *out = (int)(axis < 0 ? axis + rank : axis);
  return true;
}

void gd_outputs(gd_ctx *c, gd_node *n, int count) {
  n->n_out = count;
  n->out = kc_alloc(c->m->arena, sizeof(kg_ref) * (size_t)(count ? count : 1));
  for (int i = 0; i < count; i++) n->out[i] = KG_NOREF;
}

kg_ref gd_tensor_const(gd_ctx *c, const kg_tensor *t) { return kc_fe_tensor_const(&c->g, t); }

kg_ref gd_const_from(gd_ctx *c, kiln_dtype dt, const kg_shape *s, const double *v) {
  return kc_fe_const_from(&c->g, dt, s, v);
}

kg_ref gd_expr(gd_ctx *c, const char *expr, const kg_ref *in, int n_in, kiln_dtype dt) {
  return kc_fe_expr(&c->g, expr, in, n_in, dt);
}

kg_ref gd_reshape(gd_ctx *c, kg_ref x, const kg_shape *s) { return kb_reshape(&c->g, x, s); }

kg_ref gd_transpose(gd_ctx *c, kg_ref x, const int64_t *perm, int rank) {
  return kc_fe_transpose(&c->g, x, perm, rank);
}

kg_ref gd_cast(gd_ctx *c, kg_ref x, kiln_dtype to) { return kc_fe_cast(&c->g, x, to); }

kg_attr gd_kattr_str(const char *name, const char *v) { return (kg_attr){.name = name, .kind = KG_ATTR_STRING, .s = v}; }

kg_ref gd_activation(gd_ctx *c, gd_node *n, const char *act, kg_ref x, kg_ref alpha, double leaky) {
  if (c->g.failed) return KG_NOREF;
  kiln_dtype dt = gd_type(c, x)->dtype;
  if (!strcmp(act, "Relu")) return kb_unary(&c->g, KC_OP_RELU, x);
  if (!strcmp(act, "Relu6")) return gd_expr(c, "min(max(x0, 0), 6)", &x, 1, dt);
  if (!strcmp(act, "Elu")) return gd_expr(c, "select(gt(x0, 0), x0, sub(exp(x0), 1))", &x, 1, dt);
  if (!strcmp(act, "Sigmoid")) return kb_unary(&c->g, KC_OP_SIGMOID, x);
  if (!strcmp(act, "Tanh")) return kb_unary(&c->g, KC_OP_TANH, x);
  if (!strcmp(act, "LeakyRelu")) {
    kg_ref in[2] = {x, kb_scalar(&c->g, dt, leaky)};
    return gd_expr(c, "select(lt(x0, 0), mul(x1, x0), x0)", in, 2, dt);
  }
  if (!strcmp(act, "Prelu")) {
    if (alpha.node < 0) {
      gd_fail(c, n, "Prelu needs its alpha operand");
      return KG_NOREF;
    }
    kg_ref in[2] = {x, alpha};
    return gd_expr(c, "select(lt(x0, 0), mul(x1, x0), x0)", in, 2, dt);
  }
  gd_fail(c, n, "unsupported fused activation '%s' (kiln has Relu, Relu6, Elu, LeakyRelu, Prelu, Sigmoid, Tanh)", act);
  return KG_NOREF;
}
