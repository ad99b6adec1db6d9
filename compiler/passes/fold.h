/* fold.h — constant folding: a pure node whose operands are all constants
 * becomes a constant holding its value, computed at compile time.
 *
 * Frontends fold as they build (an ONNX Reshape's shape operand is usually a
 * small computation over Shape results, and must be known to type the node);
 * the elementwise math is the op table's scalar expression, evaluated here
 * with the same dtype rules as the loop emitter of lower/elementwise.c. */
#ifndef KILN_FOLD_H
#define KILN_FOLD_H

#include "ir/ir.h"

/* Largest result (elements) folded; bigger nodes are left to run time. */
#define KC_FOLD_MAX_ELEMS (1 << 24)

/* If node idx is foldable, turns it into a `const` node in place (its name,
 * type and uses stay) and returns true; false leaves it untouched. */
bool kc_fold_node(kg_module *m, int idx);
/* Sets element i of t from a double (floats) or an int64 (integers, bool). */
void kg_tensor_set(kg_tensor *t, int64_t i, double f, int64_t v);

#endif
