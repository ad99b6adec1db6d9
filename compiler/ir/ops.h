/* ops.h — the op table: one entry per op, carrying everything about it.
 *
 * The table itself is ir/ops.def (an X-macro list); this header gives the
 * entry's shape.  An entry has:
 *   name      the .kg spelling
 *   operands  a spec string: "x, y"  |  "values..." (variadic)  |
 *             "ref:var, value" (first operand must be a variable node)  |
 *             "q:queue, components..." (a queue node, then tensors)
 *   attrs     a spec string: "axes:ints=[], keepdims:bool=false, to:dtype";
 *             kinds int float bool string ints floats dtype shape tensor;
 *             a name without a default is required; a trailing "?" makes it
 *             optional with no default.
 *   dtypes    which operand dtypes are accepted: "any", "num" (not bool),
 *             "float", "int", "bool", "intbool" (integers or bool)
 *   expr      for elementwise ops, the scalar math as a prefix expression
 *             over the operand names (see ir/expr.h); NULL otherwise
 *   flags     KC_OP_* below
 *   infer     shape/type rule: fills node->out (or reports an error)
 *   lower     LLVM lowering; elementwise ops all name kl_lower_elementwise,
 *             the generic loop-nest emitter that renders `expr`
 *   grad      gradient rule for the autodiff pass; elementwise ops all name
 *             kc_grad_elementwise, which differentiates `expr` symbolically;
 *             kc_grad_none marks an op gradients cannot pass through
 *   expand    for composite ops, the expansion into primitive ops (the
 *             expand pass runs it, so such ops need no lowering or
 *             gradient of their own); kc_expand_none otherwise
 *   doc       one line for docs/ops.md and `kiln ops`
 */
#ifndef KILN_OPS_H
#define KILN_OPS_H

#include "ir/ir.h"

struct kl_ctx;
struct kc_grad_ctx;

enum {
  KC_OP_STATEFUL = 1 << 0,    /* touches variables/queues/RNG: never folded, CSE'd or skipped */
  KC_OP_ELEMENTWISE = 1 << 1, /* broadcasting map of `expr` over its operands */
  KC_OP_OUT_BOOL = 1 << 2,    /* elementwise result is bool (comparisons) */
  KC_OP_ALIAS = 1 << 3,       /* output 0 is operand 0's buffer (reshape, identity) */
  KC_OP_NEEDS_TYPE = 1 << 4,  /* result type must be written in the text (`<T>` or `: T`) */
  KC_OP_GPU = 1 << 5,         /* has a GPU kernel (elementwise ones do by construction) */
  KC_OP_NO_OUTPUT = 1 << 6,   /* an op without tensor results (no_op, enqueue, assign-like targets) */
  KC_OP_RANDOM = 1 << 7,      /* draws random numbers: gets a counter slot */
};

/* Shape inference sees the module (for operand types) and the node. */
typedef struct kc_infer_ctx {
  kg_module *m;
  kc_diag *diag;
} kc_infer_ctx;

typedef bool (*kc_infer_fn)(kc_infer_ctx *c, kg_node *n);
typedef bool (*kc_lower_fn)(struct kl_ctx *L, int node);
/* Gradient rule: given the gradients dy[k] of the node's outputs (node -1:
 * none flows there), builds nodes computing the gradient of each operand
 * into dx[i] (leave node -1 where none flows, e.g. integer operands).
 * See passes/autodiff.h for the context and the node builders. */
typedef bool (*kc_grad_fn)(struct kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx);
/* Expansion of a composite op (batch_norm, apply_momentum, ...) into
 * primitive nodes, run by the expand pass before autodiff: builds the
 * replacement and writes the refs that stand for each output into out[]. */
typedef bool (*kc_expand_fn)(struct kc_grad_ctx *g, int node, kg_ref *out);

typedef struct kc_op {
  const char *name;
  const char *operands;
  const char *attrs;
  const char *dtypes;
  const char *expr;
  unsigned flags;
  kc_infer_fn infer;
  kc_lower_fn lower;
  kc_grad_fn grad;
  kc_expand_fn expand; /* kc_expand_none for every op that is not composite */
  const char *doc;
} kc_op;

enum {
#define OP(id, name, operands, attrs, dtypes, expr, flags, infer, lower, grad, expand, doc) KC_OP_##id,
#include "ir/ops.def"
#undef OP
  KC_OP_COUNT
};

extern const kc_op kc_ops[KC_OP_COUNT];

/* The op named `name` (length len), or -1. */
int kc_op_find(const char *name, size_t len);

/* Operand spec queries. */
int kc_op_min_operands(int op);
int kc_op_max_operands(int op); /* -1: variadic */

/* Declarations of the shape rules and lowerings the table names. */
#define OP(id, name, operands, attrs, dtypes, expr, flags, infer, lower, grad, expand, doc) \
  bool infer(kc_infer_ctx *c, kg_node *n);
#include "ir/ops.def"
#undef OP
#define OP(id, name, operands, attrs, dtypes, expr, flags, infer, lower, grad, expand, doc) \
  bool lower(struct kl_ctx *L, int node);
#include "ir/ops.def"
#undef OP
#define OP(id, name, operands, attrs, dtypes, expr, flags, infer, lower, grad, expand, doc) \
  bool grad(struct kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx);                  \
  bool expand(struct kc_grad_ctx *g, int node, kg_ref *out);
#include "ir/ops.def"
#undef OP

#endif
