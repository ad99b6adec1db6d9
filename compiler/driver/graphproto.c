/* graphproto.c — the module's graph as a serialized TensorFlow GraphDef
 * (proto/graph.proto, TensorFlow's field numbers), for `summary graph`:
 * TensorBoard's graph view reads it from the event file.
 *
 * Every live node becomes a NodeDef:
 *   name    the node's name (scopes are already "a/b/c", as TF's)
 *   op      kiln's op name ("matmul", "apply_momentum", ...)
 *   input   "src" or "src:N" per operand, then "^ctrl" per control dependency
 *   device  "/device:GPU:0" for @gpu:0 (TF's spelling), empty when unplaced
 *   attr    the node's own attributes (int, float, bool, string, ints,
 *           floats, dtype, shape; tensors of at most MAX_TENSOR_ATTR values),
 *           plus what TF would carry: dtype and shape on variables and
 *           placeholders, dtype on constants, component_types and shapes on
 *           queues, T (the operand type) on the rest, and _output_shapes
 *           (which TensorBoard draws on the edges).
 * Everything is allocated in the module's arena. */
#include "driver/graphproto.h"
#include <stdio.h>
#include <string.h>
#include "graph.pb-c.h"
#include "ir/ops.h"

/* Larger tensor attributes (a constant data set) are left out. */
#define MAX_TENSOR_ATTR 64

typedef struct gp {
  kc_arena *a;
  Tensorflow__NodeDef__AttrEntry **attrs;
  size_t n_attrs;
} gp;

static void *zalloc(gp *g, size_t n) { return kc_alloc(g->a, n ? n : 1); }

static Tensorflow__DataType tf_dtype(kiln_dtype d) {
  switch (d) {
  case KILN_BOOL: return TENSORFLOW__DATA_TYPE__DT_BOOL;
  case KILN_I8: return TENSORFLOW__DATA_TYPE__DT_INT8;
  case KILN_U8: return TENSORFLOW__DATA_TYPE__DT_UINT8;
  case KILN_I32: return TENSORFLOW__DATA_TYPE__DT_INT32;
  case KILN_I64: return TENSORFLOW__DATA_TYPE__DT_INT64;
  case KILN_F32: return TENSORFLOW__DATA_TYPE__DT_FLOAT;
  case KILN_F64: return TENSORFLOW__DATA_TYPE__DT_DOUBLE;
  default: return TENSORFLOW__DATA_TYPE__DT_INVALID;
  }
}

static Tensorflow__TensorShapeProto *shape_proto(gp *g, const kg_shape *s) {
  Tensorflow__TensorShapeProto *p = zalloc(g, sizeof *p);
  tensorflow__tensor_shape_proto__init(p);
  p->n_dim = (size_t)s->rank;
  p->dim = zalloc(g, sizeof *p->dim * (size_t)s->rank);
  for (int i = 0; i < s->rank; i++) {
    Tensorflow__TensorShapeProto__Dim *d = zalloc(g, sizeof *d);
    tensorflow__tensor_shape_proto__dim__init(d);
    d->size = s->dim[i];
    p->dim[i] = d;
  }
  return p;
}

static Tensorflow__TensorProto *tensor_proto(gp *g, const kg_tensor *t) {
  Tensorflow__TensorProto *p = zalloc(g, sizeof *p);
  tensorflow__tensor_proto__init(p);
  p->dtype = tf_dtype(t->type.dtype);
  p->tensor_shape = shape_proto(g, &t->type.shape);
  size_t n = (size_t)kg_shape_numel(&t->type.shape);
  switch (t->type.dtype) {
  case KILN_F32:
    p->n_float_val = n, p->float_val = zalloc(g, sizeof(float) * n);
    for (size_t i = 0; i < n; i++) p->float_val[i] = (float)kg_tensor_get_f(t, (int64_t)i);
    break;
  case KILN_F64:
    p->n_double_val = n, p->double_val = zalloc(g, sizeof(double) * n);
    for (size_t i = 0; i < n; i++) p->double_val[i] = kg_tensor_get_f(t, (int64_t)i);
    break;
  case KILN_I64:
    p->n_int64_val = n, p->int64_val = zalloc(g, sizeof(int64_t) * n);
    for (size_t i = 0; i < n; i++) p->int64_val[i] = kg_tensor_get_i(t, (int64_t)i);
    break;
  case KILN_BOOL:
    p->n_bool_val = n, p->bool_val = zalloc(g, sizeof(protobuf_c_boolean) * n);
    for (size_t i = 0; i < n; i++) p->bool_val[i] = kg_tensor_get_i(t, (int64_t)i) != 0;
    break;
  default: /* i8, u8, i32: TF's int_val */
    p->n_int_val = n, p->int_val = zalloc(g, sizeof(int32_t) * n);
    for (size_t i = 0; i < n; i++) p->int_val[i] = (int32_t)kg_tensor_get_i(t, (int64_t)i);
    break;
  }
  return p;
}

static bool has_attr(gp *g, const char *key) {
  for (size_t i = 0; i < g->n_attrs; i++)
    if (!strcmp(g->attrs[i]->key, key)) return true;
  return false;
}

/* A new attribute `key` (unless the node already has one); NULL if taken. */
static Tensorflow__AttrValue *add_attr(gp *g, const char *key) {
  if (has_attr(g, key)) return NULL;
  Tensorflow__NodeDef__AttrEntry *e = zalloc(g, sizeof *e);
  tensorflow__node_def__attr_entry__init(e);
  e->key = (char *)key;
  e->value = zalloc(g, sizeof *e->value);
  tensorflow__attr_value__init(e->value);
  g->attrs[g->n_attrs++] = e;
  return e->value;
}

static Tensorflow__AttrValue__ListValue *add_list(gp *g, const char *key) {
  Tensorflow__AttrValue *v = add_attr(g, key);
  if (!v) return NULL;
  v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_LIST;
  v->list = zalloc(g, sizeof *v->list);
  tensorflow__attr_value__list_value__init(v->list);
  return v->list;
}

static void set_type(gp *g, const char *key, kiln_dtype d) {
  Tensorflow__AttrValue *v = add_attr(g, key);
  if (!v) return;
  v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_TYPE;
  v->type = tf_dtype(d);
}

static void set_shape(gp *g, const char *key, const kg_shape *s) {
  Tensorflow__AttrValue *v = add_attr(g, key);
  if (!v) return;
  v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_SHAPE;
  v->shape = shape_proto(g, s);
}

static void own_attr(gp *g, const kg_attr *a) {
  if (a->kind == KG_ATTR_TENSOR && kg_shape_numel(&a->tensor.type.shape) > MAX_TENSOR_ATTR) return;
  if (a->kind == KG_ATTR_INTS || a->kind == KG_ATTR_FLOATS) {
    Tensorflow__AttrValue__ListValue *l = add_list(g, a->name);
    if (!l) return;
    if (a->kind == KG_ATTR_INTS) {
      l->n_i = (size_t)a->ints.n, l->i = zalloc(g, sizeof(int64_t) * (size_t)a->ints.n);
      for (int i = 0; i < a->ints.n; i++) l->i[i] = a->ints.v[i];
    } else {
      l->n_f = (size_t)a->floats.n, l->f = zalloc(g, sizeof(float) * (size_t)a->floats.n);
      for (int i = 0; i < a->floats.n; i++) l->f[i] = (float)a->floats.v[i];
    }
    return;
  }
  Tensorflow__AttrValue *v = add_attr(g, a->name);
  if (!v) return;
  switch (a->kind) {
  case KG_ATTR_INT: v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_I, v->i = a->i; break;
  case KG_ATTR_FLOAT: v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_F, v->f = (float)a->f; break;
  case KG_ATTR_BOOL: v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_B, v->b = a->b; break;
  case KG_ATTR_STRING:
    v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_S;
    v->s.data = (uint8_t *)(a->s ? a->s : "");
    v->s.len = strlen((const char *)v->s.data);
    break;
  case KG_ATTR_DTYPE: v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_TYPE, v->type = tf_dtype(a->dtype); break;
  case KG_ATTR_SHAPE: v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_SHAPE, v->shape = shape_proto(g, &a->shape); break;
  case KG_ATTR_TENSOR: v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_TENSOR, v->tensor = tensor_proto(g, &a->tensor); break;
  default: break;
  }
}

static char *device_name(gp *g, const char *dev) {
  if (!dev) return "";
  if (dev[0] == '/') return (char *)dev;
  /* "gpu:0" -> "/device:GPU:0" */
  const char *colon = strchr(dev, ':');
  size_t kind = colon ? (size_t)(colon - dev) : strlen(dev);
  char *s = kc_sprintf(g->a, "/device:%.*s%s", (int)kind, dev, colon ? colon : ":0");
  for (size_t i = 8; i < 8 + kind; i++)
    if (s[i] >= 'a' && s[i] <= 'z') s[i] = (char)(s[i] - 'a' + 'A');
  return s;
}

static Tensorflow__NodeDef *node_def(gp *g, const kg_module *m, const kg_node *n) {
  Tensorflow__NodeDef *d = zalloc(g, sizeof *d);
  tensorflow__node_def__init(d);
  d->name = (char *)n->name;
  d->op = (char *)kc_ops[n->op].name;
  d->device = device_name(g, n->device);
  d->input = zalloc(g, sizeof(char *) * (size_t)(n->n_in + n->n_ctrl));
  for (int i = 0; i < n->n_in; i++) {
    const kg_node *src = &m->nodes[n->in[i].node];
    d->input[d->n_input++] =
        n->in[i].index ? kc_sprintf(g->a, "%s:%d", src->name, n->in[i].index) : (char *)src->name;
  }
  for (int i = 0; i < n->n_ctrl; i++) {
    if (m->nodes[n->ctrl[i]].dead) continue;
    d->input[d->n_input++] = kc_sprintf(g->a, "^%s", m->nodes[n->ctrl[i]].name);
  }

  g->attrs = zalloc(g, sizeof *g->attrs * (size_t)(n->n_attrs + 8));
  g->n_attrs = 0;
  for (int i = 0; i < n->n_attrs; i++) own_attr(g, &n->attrs[i]);
  if (n->op == KC_OP_VARIABLE || n->op == KC_OP_PLACEHOLDER) {
    if (n->n_out) set_type(g, "dtype", n->out[0].dtype), set_shape(g, "shape", &n->out[0].shape);
  } else if (n->op == KC_OP_CONST) {
    if (n->n_out) set_type(g, "dtype", n->out[0].dtype);
  } else if (n->op == KC_OP_QUEUE) {
    Tensorflow__AttrValue__ListValue *types = add_list(g, "component_types");
    Tensorflow__AttrValue__ListValue *shapes = add_list(g, "shapes");
    if (types) types->type = zalloc(g, sizeof *types->type * (size_t)n->n_comp);
    if (shapes) shapes->shape = zalloc(g, sizeof *shapes->shape * (size_t)n->n_comp);
    for (int i = 0; i < n->n_comp; i++) {
      if (types) types->type[types->n_type++] = tf_dtype(n->comp[i].dtype);
      if (shapes) shapes->shape[shapes->n_shape++] = shape_proto(g, &n->comp[i].shape);
    }
  } else if (n->n_in > 0) {
    set_type(g, "T", kg_ref_type(m, n->in[0])->dtype);
  } else if (n->n_out > 0) {
    set_type(g, "T", n->out[0].dtype);
  }
  if (n->n_out > 0) {
    Tensorflow__AttrValue__ListValue *l = add_list(g, "_output_shapes");
    if (l) {
      l->shape = zalloc(g, sizeof *l->shape * (size_t)n->n_out);
      for (int i = 0; i < n->n_out; i++) l->shape[l->n_shape++] = shape_proto(g, &n->out[i].shape);
    }
  }
  d->n_attr = g->n_attrs;
  d->attr = g->attrs;
  return d;
}

const void *kc_graph_proto(kg_module *m, size_t *len) {
  *len = 0;
  gp g = {.a = m->arena};
  Tensorflow__GraphDef graph;
  tensorflow__graph_def__init(&graph);
  graph.node = zalloc(&g, sizeof *graph.node * (size_t)m->n_nodes);
  for (int i = 0; i < m->n_nodes; i++)
    if (!m->nodes[i].dead) graph.node[graph.n_node++] = node_def(&g, m, &m->nodes[i]);
  size_t n = protobuf_c_message_get_packed_size(&graph.base);
  uint8_t *bytes = zalloc(&g, n);
  if (protobuf_c_message_pack(&graph.base, bytes) != n) return NULL;
  *len = n;
  return bytes;
}
