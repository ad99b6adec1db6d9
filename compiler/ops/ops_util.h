/* ops_util.h — helpers shared by the op families' shape rules (compiler/ops/).
 * Each family file (elementwise.c, reduce.c, shape.c, ...) holds, for its
 * ops, both the shape rule and the lowering that the op table names. */
#ifndef KILN_OPS_UTIL_H
#define KILN_OPS_UTIL_H

#include "ir/ir.h"
#include "ir/ops.h"

/* Type of operand k of n. */
const kg_type *kc_in_type(kc_infer_ctx *c, const kg_node *n, int k);
/* Sets n to one output of type t. */
void kc_set_out(kc_infer_ctx *c, kg_node *n, kiln_dtype dt, const kg_shape *s);
/* Normalizes a possibly negative axis against rank (for insertion
 * positions pass rank+1); false with an error naming the node if out of range. */
bool kc_axis(kc_infer_ctx *c, const kg_node *n, int64_t axis, int rank, int *out);
/* NumPy broadcast of two shapes; false with an error naming the node. */
bool kc_broadcast(kc_infer_ctx *c, const kg_node *n, const kg_shape *a, const kg_shape *b,
                  kg_shape *out);
/* Reports an error at the node: "node 'x' (op): ..." */
bool kc_node_error(kc_infer_ctx *c, const kg_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ints attribute as an array (n elements); false if absent. */
bool kc_attr_ints(const kg_node *n, const char *name, int *count, const int64_t **v);
/* Formats integers as "[1,-1,3]" into buf (attribute values; may be negative). */
const char *kc_ints_str(const int64_t *v, int n, char *buf, size_t len);
/* Formats a shape as "[2,3]" into buf. */
const char *kc_shape_str(const kg_shape *s, char *buf, size_t len);

#endif
