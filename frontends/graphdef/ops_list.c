/* ops_list.c — TensorFlow's TensorList ops (what tf.map_fn and TensorArray
 * become in TF2-converted graphs) inside unrolled while loops:
 * TensorListReserve, TensorListFromTensor, TensorListGetItem,
 * TensorListSetItem, TensorListStack, TensorListLength.
 *
 * Since loops are unrolled (control.c), a TensorList exists only while
 * importing: a fixed number of kiln references (gd_list in gd.h), passed
 * between nodes as a kg_ref of node GD_LIST_NODE.  Indices must fold to
 * constants; a list is never changed in place (SetItem makes a new one), as
 * TensorFlow's are values.  Only the list ops, the loop plumbing and the
 * identities take a list; any other op taking one is refused. */
#include "frontends/graphdef/gd.h"
#include <string.h>

/* The longest TensorList kiln unrolls (as Unpack's limit). */
#define GD_MAX_LIST 4096

static kg_ref new_list(gd_ctx *c, int n, const kg_type *elem, bool known) {
  if (c->n_lists == c->cap_lists) {
    int cap = c->cap_lists ? c->cap_lists * 2 : 16;
    gd_list *l = kc_alloc(c->m->arena, sizeof(gd_list) * (size_t)cap);
    if (c->n_lists) memcpy(l, c->lists, sizeof(gd_list) * (size_t)c->n_lists);
    c->lists = l, c->cap_lists = cap;
  }
  gd_list *l = &c->lists[c->n_lists];
  *l = (gd_list){.n = n, .item = kc_alloc(c->m->arena, sizeof(kg_ref) * (size_t)(n + 1)), .elem_known = known};
  if (elem) l->elem = *elem;
  for (int i = 0; i < n; i++) l->item[i] = KG_NOREF;
  return (kg_ref){GD_LIST_NODE, c->n_lists++};
}

/* Operand i as a list; fails naming the node when it is not one. */
static gd_list *list_in(gd_ctx *c, gd_node *n, int i) {
  if (i < n->n_in && gd_is_list(n->in[i])) return &c->lists[n->in[i].index];
  gd_fail(c, n, "input %d is not a TensorList", i);
  return NULL;
}

/* An element_shape operand as a full shape; false when unknown (-1 anywhere,
 * or a scalar -1 for an unknown rank). */
static bool elem_shape(gd_ctx *c, gd_node *n, int i, kg_shape *s) {
  const kg_tensor *t = i < n->n_in ? gd_const(c, n->in[i]) : NULL;
  if (!t || t->type.shape.rank > 1 || kg_dtype_is_float(t->type.dtype)) return false;
  int64_t cnt = kg_shape_numel(&t->type.shape);
  if (!t->type.shape.rank || cnt > KILN_MAX_RANK) return false;
  *s = (kg_shape){.rank = (int)cnt};
  for (int d = 0; d < s->rank; d++)
    if ((s->dim[d] = kg_tensor_get_i(t, d)) < 0) return false;
  return true;
}

/* A constant index into l (operand i), checked. */
static bool list_index(gd_ctx *c, gd_node *n, const gd_list *l, int i, int *out) {
  int64_t *v;
  int cnt;
  if (!gd_const_ints(c, n, i, &v, &cnt)) return false;
  if (cnt != 1) return gd_fail(c, n, "the index must be one integer");
  if (v[0] < 0 || v[0] >= l->n)
    return gd_fail(c, n, "index %lld is outside the TensorList's %d elements", (long long)v[0], l->n);
  *out = (int)v[0];
  return true;
}

/* Element i of l, zeros of the element type where it was never set. */
static kg_ref item(gd_ctx *c, gd_node *n, const gd_list *l, int i) {
  if (l->item[i].node != KG_NOREF.node) return l->item[i];
  if (!l->elem_known) {
    gd_fail(c, n, "element %d of the TensorList was never set and its element shape is unknown", i);
    return KG_NOREF;
  }
  return kb_typed_node(&c->g, KC_OP_ZEROS, &l->elem, NULL, 0, NULL, 0);
}

/* TensorListReserve(element_shape, num_elements) {element_dtype} */
static bool cv_reserve(gd_ctx *c, gd_node *n) {
  int64_t *num;
  int cnt;
  kg_type elem = {0};
  if (!gd_inputs(c, n, 2, false) || !gd_attr_dtype(c, n, "element_dtype", KILN_F32, &elem.dtype) ||
      !gd_const_ints(c, n, 1, &num, &cnt))
    return false;
  if (cnt != 1 || num[0] < 0 || num[0] > GD_MAX_LIST)
    return gd_fail(c, n, "num_elements must be one count from 0 to %d (kiln unrolls TensorLists)", GD_MAX_LIST);
  bool known = elem_shape(c, n, 0, &elem.shape);
  gd_outputs(c, n, 1);
  n->out[0] = new_list(c, (int)num[0], &elem, known);
  return true;
}

/* TensorListFromTensor(tensor, element_shape): the rows of tensor. */
static bool cv_from_tensor(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 2, false)) return false;
  kg_type t = *gd_type(c, n->in[0]), elem = {t.dtype, {.rank = t.shape.rank - 1}};
  if (t.shape.rank < 1) return gd_fail(c, n, "the tensor must have rank 1 or more");
  if (t.shape.dim[0] > GD_MAX_LIST)
    return gd_fail(c, n, "%lld elements: kiln unrolls TensorLists up to %d", (long long)t.shape.dim[0], GD_MAX_LIST);
  for (int d = 1; d < t.shape.rank; d++) elem.shape.dim[d - 1] = t.shape.dim[d];
  gd_outputs(c, n, 1);
  n->out[0] = new_list(c, (int)t.shape.dim[0], &elem, true);
  gd_list *l = &c->lists[n->out[0].index];
  for (int i = 0; i < l->n; i++) l->item[i] = gd_reshape(c, gd_slice_axis(c, n->in[0], 0, i, 1), &elem.shape);
  return !c->g.failed;
}

/* TensorListGetItem(list, index, element_shape) */
static bool cv_get_item(gd_ctx *c, gd_node *n) {
  gd_list *l;
  int i;
  if (!gd_inputs(c, n, 2, true) || !(l = list_in(c, n, 0)) || !list_index(c, n, l, 1, &i)) return false;
  gd_outputs(c, n, 1);
  n->out[0] = item(c, n, l, i);
  return !c->g.failed;
}

/* TensorListSetItem(list, index, item): a new list. */
static bool cv_set_item(gd_ctx *c, gd_node *n) {
  gd_list *l;
  int i;
  if (!gd_inputs(c, n, 3, false) || !(l = list_in(c, n, 0)) || !list_index(c, n, l, 1, &i)) return false;
  const kg_type *t = gd_type(c, n->in[2]);
  if (l->elem_known && (t->dtype != l->elem.dtype || !kg_shape_eq(&t->shape, &l->elem.shape)))
    return gd_fail(c, n, "the item does not have the TensorList's element type");
  gd_list old = *l; /* new_list may move the table */
  kg_type elem = old.elem_known ? old.elem : *t;
  gd_outputs(c, n, 1);
  n->out[0] = new_list(c, old.n, &elem, true);
  gd_list *nl = &c->lists[n->out[0].index];
  memcpy(nl->item, old.item, sizeof(kg_ref) * (size_t)old.n);
  nl->item[i] = n->in[2];
  return true;
}

/* TensorListStack(list, element_shape) {num_elements}: the elements stacked
 * along a new first axis. */
static bool cv_stack(gd_ctx *c, gd_node *n) {
  gd_list *l;
  if (!gd_inputs(c, n, 2, false) || !(l = list_in(c, n, 0))) return false;
  int64_t want = gd_attr_int(n, "num_elements", -1);
  if (want >= 0 && want != l->n)
    return gd_fail(c, n, "num_elements is %lld, but the TensorList has %d", (long long)want, l->n);
  if (!l->n) return gd_fail(c, n, "the TensorList is empty (kiln has no tensors of size 0)");
  kg_shape s;
  if (!l->elem_known && elem_shape(c, n, 1, &s)) {
    l->elem_known = true;
    l->elem.shape = s;
  }
  gd_outputs(c, n, 1);
  kg_ref *parts = kc_alloc(c->m->arena, sizeof(kg_ref) * (size_t)l->n);
  for (int i = 0; i < l->n && !c->g.failed; i++) parts[i] = gd_expand(c, item(c, n, l, i), 0);
  if (!c->g.failed) n->out[0] = gd_concat(c, parts, l->n, 0);
  return !c->g.failed;
}

static bool cv_length(gd_ctx *c, gd_node *n) {
  gd_list *l;
  if (!gd_inputs(c, n, 1, false) || !(l = list_in(c, n, 0))) return false;
  gd_outputs(c, n, 1);
  double v = l->n;
  n->out[0] = gd_const_from(c, KILN_I32, &(kg_shape){0}, &v);
  return !c->g.failed;
}

const gd_op gd_ops_list[] = {
    {"TensorListReserve", cv_reserve},
    {"TensorListFromTensor", cv_from_tensor},
    {"TensorListGetItem", cv_get_item},
    {"TensorListSetItem", cv_set_item},
    {"TensorListStack", cv_stack},
    {"TensorListLength", cv_length},
    {NULL, NULL},
};
