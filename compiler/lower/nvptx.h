/* nvptx.h — GPU kernels through LLVM's NVPTX back end. */
#ifndef KILN_NVPTX_H
#define KILN_NVPTX_H

#include <stdio.h>
#include "ir/ir.h"
#include "passes/plan.h"

/* Compiles every GPU-placed kernel node into one PTX module for `arch`
 * (sm_80 default) and writes it to f.  Kernels are marked with the PTX
 * kernel calling convention; math comes from libdevice.  Returns the number
 * of kernels (0 is a valid, empty module), or -1 after errors. */
int kc_emit_ptx(kg_module *m, const kc_plan *p, const char *arch, int opt_level, FILE *f, kc_diag *d);
/* Where libdevice lives ($KILN_LIBDEVICE or the CUDA toolkit's). */
const char *kc_libdevice_path(void);

#endif
