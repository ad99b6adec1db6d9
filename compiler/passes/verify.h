/* verify.h — the verifier: every user mistake in a graph becomes a
 * diagnostic here, before any pass or lowering sees the module. */
#ifndef KILN_VERIFY_H
#define KILN_VERIFY_H

#include "ir/ir.h"

/* Checks structure, attributes, dtypes and cycles, and infers every node's
 * result types (in place).  False after reporting errors to d. */
bool kc_verify(kg_module *m, kc_diag *d);

/* Checks one node and infers its result types; its operands must already
 * be verified (builders of new nodes use this). */
bool kc_verify_node(kg_module *m, int idx, kc_diag *d);

#endif
