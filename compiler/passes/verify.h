/* verify.h — the verifier: every user mistake in a graph becomes a
 * diagnostic here, before any pass or lowering sees the module. */
#ifndef KILN_VERIFY_H
#define KILN_VERIFY_H

#include "ir/ir.h"

/* Checks structure, attributes, dtypes and cycles, and infers every node's
 * result types (in place).  False after reporting errors to d. */
bool kc_verify(kg_module *m, kc_diag *d);

#endif
