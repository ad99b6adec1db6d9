/* autodiff.h — reverse-mode automatic differentiation as a graph pass, and
 * the node builders that gradient rules use.
 *
 * The autodiff pass replaces every `gradients` node by ordinary nodes: it
 * walks the nodes between the xs and the ys in reverse topological order,
 * asks each op's gradient rule (the op table's `grad` column) for the
 * gradients of its operands, and sums the contributions.  Everything it
 * builds is named under the gradients node's name (`g/...`) and is visible with
 * `--print-after=autodiff`. */
#ifndef KILN_AUTODIFF_H
#define KILN_AUTODIFF_H

#include "ir/ir.h"
#include "ir/ops.h"

struct kc_expr;

typedef struct kc_grad_ctx {
  kg_module *m;
  kc_diag *d;
  const char *prefix; /* name prefix of built nodes: "gradients/<node>" */
  kc_loc loc;         /* where errors point: the gradients node */
  bool failed;
} kc_grad_ctx;

/* The null reference: no gradient flows here. */
#define KG_NOREF ((kg_ref){-1, 0})

/* Adds a node op(in) with attrs, infers its type, and returns its output 0.
 * Pointers into m->nodes are invalid afterwards.  On error g->failed. */
kg_ref kb_node(kc_grad_ctx *g, int op, const kg_ref *in, int n_in, const kg_attr *attrs, int n_attrs);
kg_ref kb_unary(kc_grad_ctx *g, int op, kg_ref x);
kg_ref kb_binary(kc_grad_ctx *g, int op, kg_ref x, kg_ref y);
/* A scalar constant of dtype dt. */
kg_ref kb_scalar(kc_grad_ctx *g, kiln_dtype dt, double v);
/* reshape(x) to shape s (no node when it already has it). */
kg_ref kb_reshape(kc_grad_ctx *g, kg_ref x, const kg_shape *s);
/* Sums x over the dimensions it was broadcast along to reach its shape
 * from `to`, and reshapes to `to` (the gradient of broadcasting). */
kg_ref kb_sum_to(kc_grad_ctx *g, kg_ref x, const kg_shape *to);
/* x broadcast to shape s. */
kg_ref kb_broadcast(kc_grad_ctx *g, kg_ref x, const kg_shape *s);
/* zeros of the given type. */
kg_ref kb_zeros(kc_grad_ctx *g, const kg_type *t);
/* A fused elementwise node computing `expr` over `in` with result dtype dt. */
kg_ref kb_fused(kc_grad_ctx *g, const struct kc_expr *expr, const kg_ref *in, int n_in, kiln_dtype dt,
                const kg_shape *shape);
/* Attribute values for kb_node. */
kg_attr kb_attr_int(const char *name, int64_t v);
kg_attr kb_attr_bool(const char *name, bool v);
kg_attr kb_attr_float(const char *name, double v);
kg_attr kb_attr_ints(kc_grad_ctx *g, const char *name, const int64_t *v, int n);
kg_attr kb_attr_dtype(const char *name, kiln_dtype dt);
/* Type of a reference. */
const kg_type *kb_type(kc_grad_ctx *g, kg_ref r);
/* A new variable named exactly `name` (an error if the name is taken) of
 * type t, with the initializer attributes given (init="zeros" | "ones" |
 * "value" with a value tensor | a random initializer and its attributes;
 * none: zeros), always trainable=false: optimizer slots, EMA shadows. */
kg_ref kb_variable(kc_grad_ctx *g, const char *name, const kg_type *t, const kg_attr *init, int n_init);

/* Like kb_node, for an op whose result type must be declared
 * (KC_OP_NEEDS_TYPE: random_uniform, zeros, ...): the node gets type t. */
kg_ref kb_typed_node(kc_grad_ctx *g, int op, const kg_type *t, const kg_ref *in, int n_in, const kg_attr *attrs,
                     int n_attrs);

/* Expands every `gradients` node of the module. */
bool kc_pass_autodiff(kg_module *m, kc_diag *d);

#endif
