/* emitc.h — the portable C backend: the planned graph as one C99
 * translation unit (docs/c-backend.md).
 *
 * `kiln emit --emit=c` writes FILE.c and the header of `kiln build -c`;
 * `kiln build --backend c` (exe, -c) compiles that C with the system (or
 * cross) compiler and links libkilnrt.  The code has the LLVM lowering's
 * ABI: the same entry functions, module descriptor and runtime calls. */
#ifndef KILN_EMITC_H
#define KILN_EMITC_H

#include <stdio.h>
#include "driver/pipeline.h"
#include "passes/plan.h"

/* Constants above this many bytes in all cannot be static arrays: the
 * module needs --weights-file (compilers slow down badly on huge
 * initializers, and microcontroller images rarely hold them). */
#define KC_EMITC_STATIC_LIMIT (64ll << 20)

typedef struct kc_emitc_options {
  bool generated_blas;      /* --blas generated: kiln's GEMM in C, no cblas */
  const char *weights_file; /* --weights-file: the side file's name as recorded (no directory); NULL: static arrays */
  const char *weights_path; /* where to write the side file (NULL: nowhere) */
  int64_t static_limit;     /* 0: KC_EMITC_STATIC_LIMIT */
} kc_emitc_options;

/* Writes the C translation unit of a planned module to f; false after
 * reporting errors (an op without a C rendering names the op and node). */
bool kc_emitc_write(kg_module *m, const kc_plan *p, const kc_emitc_options *co, FILE *f, kc_diag *d);

/* The C backend's part of kc_compile: --emit=c, or --backend c with
 * exe, obj or lib. */
bool kc_emitc_compile(const kc_options *o, kg_module *m, const kc_plan *p, kc_diag *d);

#endif
