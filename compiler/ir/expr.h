/* expr.h — scalar expressions: how elementwise ops carry their math once.
 *
 * An op table entry writes its math as a prefix expression over its operand
 * names, e.g. sigmoid = "div(1, add(1, exp(neg(x))))".  Primitives:
 *   add sub mul div mod pow max min          (binary, operand dtype)
 *   neg abs exp log sqrt tanh floor ceil sin cos not   (unary)
 *   erf round trunc tan asin acos atan sinh cosh asinh acosh atanh
 *                                            (unary, float; round: half to even)
 *   shl shr                                  (integer shifts; a count outside
 *                                            [0, bits) gives 0, or -1 for shr of
 *                                            a negative signed x, as NumPy)
 *   lt le gt ge eq ne                        (comparisons, yield bool)
 *   and or xor                               (bool)
 *   select(c, a, b)                          (c ? a : b)
 *   cast(x)                                  (to the node's result dtype)
 * Numbers are constants of the dtype of their context.  A primitive may
 * carry a dtype suffix: `cast.f32(x)` converts to f32, and `as.i32(e)`
 * evaluates e in i32 (fusion writes these so that an expression merged into
 * another keeps its own dtypes).  Each backend maps
 * the primitives (LLVM: kl_prim); fusion substitutes one expression into
 * another before any loop is emitted. */
#ifndef KILN_EXPR_H
#define KILN_EXPR_H

#include <stdbool.h>
#include "ir/ir.h"

typedef enum kc_expr_kind { KC_EXPR_CALL, KC_EXPR_VAR, KC_EXPR_NUM } kc_expr_kind;

typedef struct kc_expr {
  kc_expr_kind kind;
  const char *prim; /* CALL: primitive name */
  int n_args;
  struct kc_expr *args[3];
  int var;          /* VAR: operand index */
  double num;       /* NUM */
  int to;           /* cast: target dtype, or -1 for the node's result dtype */
  int hint;         /* dtype this subexpression computes in, or -1: inferred */
} kc_expr;

/* Parses `text` whose variables are the comma-separated names in `vars`.
 * Returns NULL (with a message in err) on a malformed expression. */
kc_expr *kc_expr_parse(kc_arena *a, const char *text, const char *vars, char *err, size_t errlen);
/* Writes e as text (operands named x0, x1, ...) into a NUL-terminated
 * arena string; kc_expr_parse(..., kc_expr_var_names(n)) reads it back. */
const char *kc_expr_print(kc_arena *a, const kc_expr *e);
/* "x0, x1, ..., x{n-1}" in the arena. */
const char *kc_expr_var_names(kc_arena *a, int n);
/* A deep copy of e in arena a. */
kc_expr *kc_expr_copy(kc_arena *a, const kc_expr *e);
/* The expression of an elementwise node: the op's, or a fused node's `expr`
 * attribute.  NULL (with err) if it does not parse. */
const kc_expr *kc_node_expr(kc_arena *a, const kg_node *n, char *err, size_t errlen);
/* d e / d var, symbolically (an expression over the same variables); NULL
 * with a message for a primitive without a derivative. */
kc_expr *kc_expr_diff(kc_arena *a, const kc_expr *e, int var, char *err, size_t errlen);
/* The parsed expression of an elementwise op (cached; NULL if none). */
const kc_expr *kc_op_expr(int op);
/* Number of operands a primitive takes, or -1 if unknown. */
int kc_prim_arity(const char *prim);
/* True for comparison primitives (result is bool). */
bool kc_prim_is_compare(const char *prim);

/* The dtype rules every evaluator of an expression follows (the LLVM loop
 * emitter, the C backend, the constant folder), with var_dt[i] the dtype of
 * operand i and out_dt the node's result dtype:
 *   a subexpression computes in its hint, else its first typed operand's
 *   dtype (a cast: its target; a comparison: bool), else the context's;
 *   numbers take their context's dtype; a comparison's or a cast's operands
 *   follow their first typed operand; a select's condition is bool. */
typedef struct kc_expr_typing {
  const kiln_dtype *var_dt;
  kiln_dtype out_dt;
} kc_expr_typing;
/* The context dtype a call's operands are evaluated in, given the call's
 * own context dtype `hint` (after applying e->hint). */
kiln_dtype kc_expr_arg_hint(const kc_expr_typing *t, const kc_expr *e, kiln_dtype hint);
/* The dtype call e computes in and the dtype it yields (*out), from its
 * operands' dtypes dts[]. */
kiln_dtype kc_expr_call_dtype(const kc_expr_typing *t, const kc_expr *e, const kiln_dtype *dts, kiln_dtype *out);

#endif
