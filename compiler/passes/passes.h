/* passes.h — the graph passes.  Each takes a verified module and leaves it
 * verified; pipeline.c lists them in order in one table. */
#ifndef KILN_PASSES_H
#define KILN_PASSES_H

#include "ir/ir.h"

/* Rewrites composite ops into primitive ones (before autodiff). */
bool kc_pass_expand(kg_module *m, kc_diag *d);
/* Removes nodes unreachable from entries and the program. */
bool kc_pass_dce(kg_module *m, kc_diag *d);

/* Merges pure nodes that compute the same thing (common subexpressions). */
bool kc_pass_cse(kg_module *m, kc_diag *d);
/* Merges single-use elementwise producers into their elementwise readers. */
bool kc_pass_fuse(kg_module *m, kc_diag *d);

#endif
