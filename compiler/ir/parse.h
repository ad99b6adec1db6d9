/* parse.h — reading .kg text into a module (grammar: docs/ir.md). */
#ifndef KILN_PARSE_H
#define KILN_PARSE_H

#include "ir/ir.h"

/* Parses `len` bytes of .kg text; NULL after reporting errors to diag.  The
 * module is syntactically complete; run the verifier before using it. */
kg_module *kc_parse(const char *file, const char *src, size_t len, kc_diag *diag);
/* Reads and parses a file. */
kg_module *kc_parse_file(const char *path, kc_diag *diag);

#endif
