/* symbols.h — C symbol names for a module's generated functions, shared by
 * the lowering and the header generator so both spell them alike. */
#ifndef KILN_SYMBOLS_H
#define KILN_SYMBOLS_H

#include "ir/ir.h"

/* `name` made a C identifier (non-alphanumerics become '_'). */
const char *kc_symbol(kc_arena *a, const char *name);
/* The prefix of every symbol of a module: its name as a C identifier. */
const char *kc_symbol_prefix(const kg_module *m);

#endif
