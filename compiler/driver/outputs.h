/* outputs.h — the artifacts besides LLVM's: Graphviz, the embedding
 * header, PTX, and the final link. */
#ifndef KILN_OUTPUTS_H
#define KILN_OUTPUTS_H

#include <stdio.h>
#include "ir/ir.h"
#include "passes/plan.h"
#include "lower/target.h"

/* Writes the graph in Graphviz dot. */
void kc_print_dot(const kg_module *m, FILE *f);
/* Writes the C header of a module compiled with -c: typed in/out structs per
 * entry point, create/destroy, sizes. */
void kc_write_header(const kg_module *m, const kc_plan *p, FILE *f);
/* Links `obj` with libkilnrt into an executable; cc is the driver (NULL:
 * $KILN_CC or cc for the host, <triple>-gcc for another target); static_link
 * adds -static (--static). */
bool kc_link(const kc_target *t, const char *cc, bool static_link, const char *obj, const char *out, kc_diag *d);
/* The directory holding libkilnrt.a for the host (next to the kiln binary,
 * or ../lib from it, or $KILN_RUNTIME_DIR); a target's runtime is in its
 * <triple>/ (build tree) or kiln/<triple>/ (installed) subdirectory. */
const char *kc_runtime_dir(void);

#endif
