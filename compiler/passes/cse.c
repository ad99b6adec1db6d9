/* cse.c — common subexpression elimination: two pure nodes with the same
 * op, operands, attributes, device and result types compute the same thing,
 * so every use of the later one is pointed at the earlier.  Autodiff in
 * particular builds the same reshapes, broadcasts and constants more than
 * once.  Stateful and random ops, and nodes with control dependencies, are
 * never merged: running them is the point. */
#include "ir/ops.h"
#include "passes/passes.h"
#include <stdlib.h>
#include <string.h>

static bool attr_eq(const kg_attr *a, const kg_attr *b) {
  if (strcmp(a->name, b->name) || a->kind != b->kind) return false;
  switch (a->kind) {
  case KG_ATTR_INT: return a->i == b->i;
  case KG_ATTR_FLOAT: return a->f == b->f || (a->f != a->f && b->f != b->f);
  case KG_ATTR_BOOL: return a->b == b->b;
  case KG_ATTR_STRING: return !strcmp(a->s, b->s);
  case KG_ATTR_INTS:
    return a->ints.n == b->ints.n && !memcmp(a->ints.v, b->ints.v, sizeof(int64_t) * (size_t)a->ints.n);
  case KG_ATTR_FLOATS:
    return a->floats.n == b->floats.n && !memcmp(a->floats.v, b->floats.v, sizeof(double) * (size_t)a->floats.n);
  case KG_ATTR_DTYPE: return a->dtype == b->dtype;
  case KG_ATTR_SHAPE: return kg_shape_eq(&a->shape, &b->shape);
  case KG_ATTR_TENSOR:
    return kg_type_eq(&a->tensor.type, &b->tensor.type) &&
           !memcmp(a->tensor.data, b->tensor.data, (size_t)kg_type_bytes(&a->tensor.type));
  }
  return false;
}

/* Attributes are compared as sets: their order in the text does not matter. */
static bool same_node(const kg_node *a, const kg_node *b) {
  if (a->op != b->op || a->n_in != b->n_in || a->n_out != b->n_out || a->n_attrs != b->n_attrs) return false;
  if ((a->device == NULL) != (b->device == NULL) || (a->device && strcmp(a->device, b->device))) return false;
  for (int i = 0; i < a->n_in; i++)
    if (a->in[i].node != b->in[i].node || a->in[i].index != b->in[i].index) return false;
  for (int i = 0; i < a->n_out; i++)
    if (!kg_type_eq(&a->out[i], &b->out[i])) return false;
  for (int i = 0; i < a->n_attrs; i++) {
    bool found = false;
    for (int j = 0; j < b->n_attrs && !found; j++) found = attr_eq(&a->attrs[i], &b->attrs[j]);
    if (!found) return false;
  }
  return true;
}

static bool pure(const kg_node *n) {
  unsigned f = kc_ops[n->op].flags;
  return !n->dead && !n->n_ctrl && n->n_out && !(f & (KC_OP_STATEFUL | KC_OP_RANDOM | KC_OP_NO_OUTPUT)) &&
         n->op != KC_OP_PLACEHOLDER;
}

static uint64_t hash_node(const kg_node *n) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)n->op;
  for (int i = 0; i < n->n_in; i++) h = (h ^ (uint64_t)(n->in[i].node * 31 + n->in[i].index)) * 1099511628211ull;
  return (h ^ (uint64_t)n->n_attrs) * 1099511628211ull;
}

bool kc_pass_cse(kg_module *m, kc_diag *d) {
  int N = m->n_nodes;
  size_t cap = 1;
  while (cap < (size_t)N * 2) cap <<= 1;
  int *table = malloc(sizeof(int) * cap);
  if (!table) return kc_error(d, (kc_loc){0}, "out of memory");
  bool any = false;
  /* operands may be declared after their users, so repeat until stable */
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < cap; i++) table[i] = -1;
    for (int v = 0; v < N; v++) {
      const kg_node *n = &m->nodes[v];
      if (!pure(n)) continue;
      size_t slot = hash_node(n) & (cap - 1);
      while (table[slot] >= 0 && !same_node(&m->nodes[table[slot]], n)) slot = (slot + 1) & (cap - 1);
      if (table[slot] < 0) {
        table[slot] = v;
        continue;
      }
      for (int k = 0; k < n->n_out; k++) kc_module_redirect(m, (kg_ref){v, k}, (kg_ref){table[slot], k});
      kc_module_redirect_ctrl(m, v, table[slot]);
      m->nodes[v].dead = true;
      changed = any = true;
    }
  }
  free(table);
  if (any) kc_module_compact(m);
  return true;
}
