/* print.h — writing a module back as .kg text.  The printed form parses
 * back to the same graph (tested over every example). */
#ifndef KILN_PRINT_H
#define KILN_PRINT_H

#include <stdio.h>
#include "ir/ir.h"

/* Writes the whole module. */
void kc_print_module(const kg_module *m, FILE *f);
/* Writes one tensor literal (nested lists). */
void kc_print_literal(const kg_tensor *t, FILE *f);
/* Writes a reference as `name` or `name.N`. */
void kc_print_ref(const kg_module *m, kg_ref r, FILE *f);

#endif
